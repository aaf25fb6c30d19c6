/* Child processes: the pipes of UVA_STDIO_PIPE are ordinary streams. Much
 * more data than a pipe's buffer flows both ways at once without a
 * deadlock, every byte intact; a stream outlives its process handle; pipes
 * not taken are closed with the handle. */
#include "process_support.h"

#define MIB (1024 * 1024)

/* Writes `total` pattern bytes to the child's stdin, then closes it (the
 * child reads end of file once the queue is written). */
struct feeder {
  int pc, rc;
  uva_stream_t *s;
  size_t total, off, chunk;
  int done;
};

static int step_feed(uva_task_t *t, int status, void *d) {
  struct feeder *f = (struct feeder *) d;
  if (status == UVA_ECANCELED) return status;
  CO_BEGIN(f);
  while (f->off < f->total) {
    f->chunk = f->total - f->off < 65536 ? f->total - f->off : 65536;
    CO_CALL(
        f, uva_stream_write_drain(f->s, t, pattern() + f->off % 251, f->chunk));
    UVT_OK(f->rc);
    f->off += f->chunk;
  }
  UVT_OK(uva_stream_close(f->s, NULL, NULL)); /* flushes, then closes */
  f->done = 1;
  CO_END(f);
}

/* The child copies its stdin to stdout (and, with tee, to stderr too);
 * the parent writes and reads at the same time. */
static void pump(const char *script, int with_stderr) {
  uva_loop_t *loop = uvt_loop_new();
  const char *argv[8];
  uva_process_options_t o = sh_options(argv, script);
  o.stdio[0].kind = UVA_STDIO_PIPE;
  o.stdio[1].kind = UVA_STDIO_PIPE;
  if (with_stderr) o.stdio[2].kind = UVA_STDIO_PIPE;
  struct feeder f;
  struct reader out, err;
  struct exit_waiter w;
  memset(&f, 0, sizeof f);
  memset(&out, 0, sizeof out);
  memset(&err, 0, sizeof err);
  memset(&w, 0, sizeof w);
  w.p = spawn_ok(loop, &o);
  UVT_OK(uva_process_stream(&f.s, w.p, 0));
  UVT_OK(uva_process_stream(&out.s, w.p, 1));
  f.total = MIB;
  spawn(loop, step_feed, &f);
  spawn(loop, step_read_all, &out);
  if (with_stderr) {
    UVT_OK(uva_process_stream(&err.s, w.p, 2));
    spawn(loop, step_read_all, &err);
  }
  spawn(loop, step_wait_exit, &w);
  run(loop);
  cr_assert(f.done && out.done && w.done);
  UVT_OK(w.rc);
  cr_assert_eq(w.status, 0);
  cr_assert_eq(out.len, (size_t) MIB, "stdout: %zu bytes", out.len);
  cr_assert(pattern_ok(out.data, 0, out.len), "stdout bytes differ");
  if (with_stderr) {
    cr_assert_eq(err.len, (size_t) MIB, "stderr: %zu bytes", err.len);
    cr_assert(pattern_ok(err.data, 0, err.len), "stderr bytes differ");
  }
  free(out.data);
  free(err.data);
  UVT_OK(uva_process_close(w.p, NULL, NULL));
  run(loop);
  UVT_CLOSE_LOOP(loop);
}

Test(process_pipes, a_mebibyte_through_cat_both_ways_at_once, .timeout = 20) {
  pump("cat", 0);
}

/* tee writes each block to stdout, then to stderr: a parent that read
 * only one of them would block the child, and the child the parent. */
Test(process_pipes, a_mebibyte_on_stdout_and_stderr, .timeout = 20) {
  pump("tee /dev/stderr", 1);
}

/* The child writes far more than the pipe holds before it reads its
 * stdin at all. */
Test(process_pipes, output_first_then_input, .timeout = 20) {
  pump("head -c 1048576 /dev/zero >/dev/null; cat", 0);
}

Test(process_pipes, stream_outlives_the_process_handle, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  const char *argv[8];
  uva_process_options_t o = sh_options(argv, "sleep 0.05; echo late");
  o.stdio[1].kind = UVA_STDIO_PIPE;
  struct reader r;
  memset(&r, 0, sizeof r);
  uva_process_t *p = spawn_ok(loop, &o);
  int pid;
  UVT_OK(uva_process_pid(&pid, p));
  UVT_OK(uva_process_stream(&r.s, p, 1));
  int closed = 0;
  UVT_OK(uva_process_close(p, count_process_close, &closed));
  spawn(loop, step_read_all, &r);
  run(loop);
  cr_assert(r.done);
  cr_assert_str_eq(r.data, "late\n");
  free(r.data);
  cr_assert(run_until_gone(loop, pid, 5000), "reaped after its exit");
  run(loop);
  cr_assert_eq(closed, 1, "close callback once the child is reaped");
  UVT_CLOSE_LOOP(loop);
}

/* A pipe not taken is closed by uva_process_close: cat sees end of file
 * on its stdin and exits by itself. */
Test(process_pipes, untaken_pipes_close_with_the_handle, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  const char *argv[] = {"cat", NULL};
  uva_process_options_t o = UVA_PROCESS_OPTIONS_INIT;
  o.args = argv;
  o.stdio[0].kind = UVA_STDIO_PIPE;
  o.stdio[1].kind = UVA_STDIO_PIPE;
  uva_process_t *p = spawn_ok(loop, &o);
  int pid;
  UVT_OK(uva_process_pid(&pid, p));
  UVT_OK(uva_process_close(p, NULL, NULL));
  run(loop);
  cr_assert(run_until_gone(loop, pid, 5000),
            "cat saw end of file and was reaped");
  UVT_CLOSE_LOOP(loop);
}

/* End of input for the child: uva_stream_shutdown of the stdin stream
 * writes what is queued, then lets go of the pipe, while the stream stays
 * open (closed by the test only after the child ended). */
struct ender {
  int pc, rc;
  uva_stream_t *in;
  int shutdown_rc, write_after_rc, again_rc;
};

static int step_end_input(uva_task_t *t, int status, void *d) {
  struct ender *e = (struct ender *) d;
  if (status == UVA_ECANCELED) return status;
  CO_BEGIN(e);
  UVT_OK(uva_stream_write(NULL, e->in, "abc\n", 4));
  CO_CALL(e, uva_stream_shutdown(e->in, t));
  e->shutdown_rc = e->rc;
  e->write_after_rc = uva_stream_write(NULL, e->in, "x", 1);
  CO_CALL(e, uva_stream_shutdown(e->in, t)); /* done: at once */
  e->again_rc = e->rc;
  CO_END(e);
}

Test(process_pipes, shutdown_of_stdin_ends_the_childs_input, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  const char *argv[] = {"cat", NULL};
  uva_process_options_t o = UVA_PROCESS_OPTIONS_INIT;
  o.args = argv;
  o.stdio[0].kind = UVA_STDIO_PIPE;
  o.stdio[1].kind = UVA_STDIO_PIPE;
  struct ender e;
  struct reader r;
  struct exit_waiter w;
  memset(&e, 0, sizeof e);
  memset(&r, 0, sizeof r);
  memset(&w, 0, sizeof w);
  w.p = spawn_ok(loop, &o);
  UVT_OK(uva_process_stream(&e.in, w.p, 0));
  UVT_OK(uva_process_stream(&r.s, w.p, 1));
  spawn(loop, step_end_input, &e);
  spawn(loop, step_read_all, &r);
  spawn(loop, step_wait_exit, &w);
  run(loop); /* returns once cat saw its end of input and exited */
  UVT_OK(e.shutdown_rc);
  UVT_EQ(e.write_after_rc, UVA_EPIPE);
  UVT_OK(e.again_rc);
  cr_assert_str_eq(r.data, "abc\n");
  free(r.data);
  UVT_OK(w.rc);
  cr_assert_eq(w.status, 0);
  UVT_OK(uva_stream_close(e.in, NULL, NULL));
  UVT_OK(uva_process_close(w.p, NULL, NULL));
  run(loop);
  UVT_CLOSE_LOOP(loop);
}
