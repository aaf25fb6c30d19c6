/* Descriptors adopted as streams (uva_stream_open_fd): both ends of a pipe,
 * a socketpair, what is refused (a regular file, a descriptor adopted
 * twice), and an idle adopted stream that does not keep the loop running.
 *
 * Waiting follows the "call again" protocol: a call that cannot complete
 * registers the task and returns UVA_EAGAIN, the step returns
 * UVA_TASK_PENDING, and the repeated call after the wake-up completes.
 * Helpers: support.h. */
#include "support.h"

/* Both ends of pipe(2) adopted: what is written arrives, closing the write
 * end (gracefully, with bytes still queued) gives the reader EOF. */
struct pipe_ctx {
  int pc, rc;
  uva_stream_t *s;
  unsigned char *data;
  size_t len, got, n;
  int closes;
};

static int step_pipe_writer(uva_task_t *t, int status, void *d) {
  struct pipe_ctx *c = (struct pipe_ctx *) d;
  (void) status;
  CO_BEGIN(c);
  CO_CALL(c, uva_stream_write_drain(c->s, t, c->data, c->len));
  UVT_OK(c->rc);
  UVT_OK(uva_stream_close(c->s, count_stream_close, &c->closes));
  CO_END(c);
}

static int step_pipe_reader(uva_task_t *t, int status, void *d) {
  struct pipe_ctx *c = (struct pipe_ctx *) d;
  (void) status;
  CO_BEGIN(c);
  CO_CALL(c, uva_stream_read_to_eof(&c->n, c->s, t));
  UVT_OK(c->rc);
  cr_assert_eq(c->n, c->len, "read_to_eof buffered %zu of %zu", c->n, c->len);
  c->data = malloc(c->len);
  cr_assert_not_null(c->data);
  while (c->got < c->len) {
    CO_CALL(c,
            uva_stream_read(&c->n, c->s, t, c->data + c->got, c->len - c->got));
    UVT_OK(c->rc);
    cr_assert(c->n > 0);
    c->got += c->n;
  }
  cr_assert(pattern_ok(c->data, 0, c->len));
  CO_CALL(c, uva_stream_read(&c->n, c->s, t, c->data, 1));
  UVT_OK(c->rc);
  cr_assert_eq(c->n, 0, "expected EOF after the data");
  free(c->data);
  c->data = NULL;
  UVT_OK(uva_stream_close(c->s, count_stream_close, &c->closes));
  CO_END(c);
}

Test(stream, pipe_fds_adopted_both_ends, .timeout = 20) {
  uva_loop_t *loop = uvt_loop_new();
  int p[2];
  struct pipe_ctx w, r;
  cr_assert_eq(pipe(p), 0);
  memset(&w, 0, sizeof w);
  memset(&r, 0, sizeof r);
  r.s = adopt(loop, p[0]);
  w.s = adopt(loop, p[1]);
  w.len = r.len = 300 * 1024; /* more than a pipe holds */
  w.data = pattern_buf(w.len);
  spawn(loop, step_pipe_writer, &w);
  spawn(loop, step_pipe_reader, &r);
  run(loop);
  cr_assert_eq(r.got, r.len);
  cr_assert_eq(w.closes, 1);
  cr_assert_eq(r.closes, 1);
  free(w.data);
  UVT_CLOSE_LOOP(loop);
}

/* uva_stream_shutdown of a pipe's write end: the queued bytes go first,
 * then the stream lets go of the pipe and the reader sees EOF while the
 * writer's stream stays open (a pipe has no half-close of its own). With
 * a copy of the write end kept elsewhere, EOF comes when it closes. */
struct shut_ctx {
  int pc, rc;
  uva_stream_t *s;
  unsigned char *data;
  size_t len;
  int copy; /* a dup of the write end, closed after the shutdown, or -1 */
  int shutdown_rc, write_after_rc, done;
  size_t queued;
};

static int step_pipe_shutter(uva_task_t *t, int status, void *d) {
  struct shut_ctx *c = (struct shut_ctx *) d;
  (void) status;
  CO_BEGIN(c);
  UVT_OK(uva_stream_write(&c->queued, c->s, c->data, c->len));
  cr_assert(c->queued > 0, "more than a pipe holds: some bytes queue");
  CO_CALL(c, uva_stream_shutdown(c->s, t));
  c->shutdown_rc = c->rc;
  c->write_after_rc = uva_stream_write(NULL, c->s, "x", 1);
  if (c->copy >= 0) close(c->copy);
  c->done = 1;
  CO_END(c);
}

static void pipe_shutdown_case(int keep_copy) {
  uva_loop_t *loop = uvt_loop_new();
  int p[2];
  struct shut_ctx w;
  struct pipe_ctx r;
  cr_assert_eq(pipe(p), 0);
  memset(&w, 0, sizeof w);
  memset(&r, 0, sizeof r);
  w.copy = keep_copy ? dup(p[1]) : -1;
  r.s = adopt(loop, p[0]);
  w.s = adopt(loop, p[1]);
  w.len = r.len = 300 * 1024;
  w.data = pattern_buf(w.len);
  spawn(loop, step_pipe_shutter, &w);
  spawn(loop, step_pipe_reader, &r); /* reads to EOF, checks, closes */
  run(loop);
  cr_assert(w.done);
  UVT_OK(w.shutdown_rc);
  UVT_EQ(w.write_after_rc, UVA_EPIPE);
  cr_assert_eq(r.got, r.len);
  cr_assert_eq(r.closes, 1);
  int closes = 0;
  UVT_OK(uva_stream_close(w.s, count_stream_close, &closes));
  run(loop);
  cr_assert_eq(closes, 1);
  free(w.data);
  UVT_CLOSE_LOOP(loop);
}

Test(stream, pipe_shutdown_flushes_then_the_reader_sees_eof, .timeout = 20) {
  pipe_shutdown_case(0);
}

Test(stream, pipe_shutdown_with_a_copy_of_the_write_end, .timeout = 20) {
  pipe_shutdown_case(1);
}

/* A pipe's read end has no write side to shut down. */
struct shut_ro {
  int pc, rc;
  uva_stream_t *s;
};

static int step_shut_ro(uva_task_t *t, int status, void *d) {
  struct shut_ro *c = (struct shut_ro *) d;
  (void) status;
  CO_BEGIN(c);
  CO_CALL(c, uva_stream_shutdown(c->s, t));
  CO_END(c);
}

Test(stream, pipe_read_end_shutdown_enotconn, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  int p[2];
  cr_assert_eq(pipe(p), 0);
  struct shut_ro c = {0};
  c.s = adopt(loop, p[0]);
  spawn(loop, step_shut_ro, &c);
  run(loop);
  UVT_EQ(c.rc, UVA_ENOTCONN);
  UVT_OK(uva_stream_close(c.s, NULL, NULL));
  close(p[1]);
  run(loop);
  UVT_CLOSE_LOOP(loop);
}

/* A socketpair adopted: both directions work; shutdown gives EOF. */
struct sp_ctx {
  int pc, rc;
  uva_stream_t *a, *b;
  size_t n;
  char buf[64];
  int done;
};

static int step_sp_a(uva_task_t *t, int status, void *d) {
  struct sp_ctx *c = (struct sp_ctx *) d;
  (void) status;
  CO_BEGIN(c);
  CO_CALL(c, uva_stream_write_drain(c->a, t, "ping\n", 5));
  UVT_OK(c->rc);
  CO_CALL(c, uva_stream_read_line(&c->n, c->a, t, c->buf, sizeof c->buf));
  UVT_OK(c->rc);
  cr_assert_eq(c->n, 5);
  cr_assert_eq(memcmp(c->buf, "pong\n", 5), 0);
  CO_CALL(c, uva_stream_shutdown(c->a, t));
  UVT_OK(c->rc);
  CO_CALL(c, uva_stream_read(&c->n, c->a, t, c->buf, sizeof c->buf));
  UVT_OK(c->rc);
  cr_assert_eq(c->n, 0, "b closed: a expects EOF");
  UVT_OK(uva_stream_close(c->a, NULL, NULL));
  c->done++;
  CO_END(c);
}

struct sp_b {
  int pc, rc;
  struct sp_ctx *c;
  size_t n;
  char buf[64];
};

static int step_sp_b(uva_task_t *t, int status, void *d) {
  struct sp_b *b = (struct sp_b *) d;
  (void) status;
  CO_BEGIN(b);
  CO_CALL(b, uva_stream_read_line(&b->n, b->c->b, t, b->buf, sizeof b->buf));
  UVT_OK(b->rc);
  cr_assert_eq(b->n, 5);
  cr_assert_eq(memcmp(b->buf, "ping\n", 5), 0);
  CO_CALL(b, uva_stream_write_drain(b->c->b, t, "pong\n", 5));
  UVT_OK(b->rc);
  CO_CALL(b, uva_stream_read(&b->n, b->c->b, t, b->buf, sizeof b->buf));
  UVT_OK(b->rc);
  cr_assert_eq(b->n, 0, "a shut down: b expects EOF");
  UVT_OK(uva_stream_close(b->c->b, NULL, NULL));
  b->c->done++;
  CO_END(b);
}

Test(stream, socketpair_adopted, .timeout = 20) {
  uva_loop_t *loop = uvt_loop_new();
  int sp[2];
  struct sp_ctx c;
  struct sp_b b;
  cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sp), 0);
  memset(&c, 0, sizeof c);
  memset(&b, 0, sizeof b);
  c.a = adopt(loop, sp[0]);
  c.b = adopt(loop, sp[1]);
  b.c = &c;
  spawn(loop, step_sp_a, &c);
  spawn(loop, step_sp_b, &b);
  run(loop);
  cr_assert_eq(c.done, 2);
  UVT_CLOSE_LOOP(loop);
}

Test(stream, regular_file_fd_refused, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  char path[] = "/tmp/uvast-file-XXXXXX";
  uva_stream_t *s = NULL;
  int fd = mkstemp(path);
  cr_assert(fd >= 0);
  unlink(path);
  UVT_EQ(uva_stream_open_fd(&s, loop, fd), UVA_EINVAL);
  cr_assert_null(s);
  /* Refused: the caller still owns the descriptor. */
  cr_assert_neq(fcntl(fd, F_GETFD), -1, "the refused fd was closed");
  close(fd);
  UVT_EQ(uva_stream_open_fd(&s, loop, -1), UVA_EBADF);
  UVT_CLOSE_LOOP(loop);
}

/* The loop's liveness is tasks, timers and callbacks (uva_loop_run): an
 * open stream that nobody waits on does not keep DEFAULT running. */
Test(stream, idle_open_stream_does_not_keep_loop_running, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  int sp[2];
  cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sp), 0);
  uva_stream_t *s = adopt(loop, sp[0]);
  double t0 = uvt_ms();
  run(loop); /* no task: returns at once */
  cr_assert(uvt_ms() - t0 < 1000,
            "uva_loop_run(DEFAULT) blocked on a "
            "stream with no task waiting");
  UVT_OK(uva_stream_close(s, NULL, NULL));
  run(loop);
  close(sp[1]);
  UVT_CLOSE_LOOP(loop);
}

/* ---- one descriptor, one stream ----------------------------------------- */

/* Adopting a descriptor that a stream of the loop already owns is refused
 * with UVA_EEXIST by both pollers: the edge-triggered one accepted it (and
 * libuv aborted later), libuv's only while the first stream's watcher ran. */
Test(stream, same_descriptor_adopted_twice_eexist, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  uva_stream_t *s1, *s2 = NULL;
  int sp[2], closes = 0;
  cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sp), 0);
  s1 = adopt(loop, sp[0]);
  UVT_EQ(uva_stream_open_fd(&s2, loop, sp[0]), UVA_EEXIST);
  cr_assert_null(s2);
  UVT_OK(uva_loop_run(loop, UVA_RUN_NOWAIT)); /* reading has started */
  UVT_EQ(uva_stream_open_fd(&s2, loop, sp[0]), UVA_EEXIST);
  cr_assert_null(s2);
  /* Still refused while s1's buffer is at high water and its reading
   * paused (libuv's own check looks only at a started watcher). */
  UVT_OK(uva_stream_set(s1, UVA_STREAM_HIGH_WATER, 1));
  send_all(sp[1], "abc", 3);
  for (int i = 0; i < 5; i++) {
    send_all(sp[1], "d", 1);
    UVT_OK(uva_loop_run(loop, UVA_RUN_NOWAIT));
  }
  UVT_EQ(uva_stream_open_fd(&s2, loop, sp[0]), UVA_EEXIST);
  cr_assert_null(s2);
  /* A poll handle's descriptor too, until the poll handle closed. */
  uva_poll_t *poll = NULL;
  UVT_OK(uva_poll_new(&poll, loop, sp[1]));
  UVT_EQ(uva_stream_open_fd(&s2, loop, sp[1]), UVA_EEXIST);
  cr_assert_null(s2);
  UVT_OK(uva_poll_close(poll, NULL, NULL));
  UVT_OK(uva_loop_run(loop, UVA_RUN_NOWAIT)); /* the close completes */
  s2 = adopt(loop, sp[1]);
  UVT_OK(uva_stream_close(s1, count_stream_close, &closes));
  UVT_OK(uva_stream_close(s2, count_stream_close, &closes));
  run(loop);
  cr_assert_eq(closes, 2);
  UVT_CLOSE_LOOP(loop);
}
