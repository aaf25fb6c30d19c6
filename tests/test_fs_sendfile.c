/* uva_fs_sendfile: a file sent to a stream from a pool thread. Writes
 * queued before it go first, writes made while it runs queue behind it and
 * follow it, every byte arrives once and in order (TCP and Unix sockets);
 * the file position and offsets; the end of the file; the fallback for a
 * descriptor sendfile(2) does not take (a pipe); a sendfile held behind
 * queued writes and cancelled; closing the stream under a running
 * sendfile (UVA_ECLOSED, the close completes); a peer that resets.
 *
 * Every byte of a test's stream is the support pattern (byte o is o % 251),
 * whoever wrote it: the bytes written before the file, the file, and those
 * written after, so the peer (a plain thread) checks order and content. */
#include "support.h"

#define MIB ((size_t) 1024 * 1024)

/* A temporary file (already unlinked) holding the pattern's bytes from
 * stream offset `from` on, `len` of them. */
static int pattern_file(size_t from, size_t len) {
  char path[] = "/tmp/uva_sendfile_XXXXXX";
  int fd = mkstemp(path);
  cr_assert(fd >= 0);
  unlink(path);
  for (size_t done = 0; done < len;) {
    size_t n = len - done < PAT_CHUNK ? len - done : PAT_CHUNK;
    const unsigned char *p = pattern() + (from + done) % 251;
    cr_assert_eq(write(fd, p, n), (ssize_t) n);
    done += n;
  }
  return fd;
}

/* Write the pattern's bytes [from, from + len) to the stream. */
static void write_pattern(uva_stream_t *s, size_t from, size_t len) {
  for (size_t done = 0; done < len;) {
    size_t n = len - done < PAT_CHUNK ? len - done : PAT_CHUNK;
    UVT_OK(uva_stream_write(NULL, s, pattern() + (from + done) % 251, n));
    done += n;
  }
}

/* Small, fixed socket buffers (no autotuning): most of a few MiB written
 * before the peer reads stays queued in the stream. */
static void small_buffers(int fds[2]) {
  int small = 64 * 1024;
  cr_assert_eq(setsockopt(fds[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof small),
               0);
  cr_assert_eq(setsockopt(fds[1], SOL_SOCKET, SO_RCVBUF, &small, sizeof small),
               0);
}

/* ---- the sender task ------------------------------------------------------ */

struct sender {
  int pc, rc;
  uva_stream_t *s;
  int in_fd;
  int64_t offset;
  size_t pre, file_len, post; /* pattern bytes before, of, after the file */
  size_t post_now;            /* of `post`: written right after the start */
  uva_work_t *w;
  int start_rc, wait_rc, drain_rc;
  int64_t sent;
};

static int step_sender(uva_task_t *t, int status, void *d) {
  struct sender *c = d;
  if (status != 0) return status;
  CO_BEGIN(c);
  write_pattern(c->s, 0, c->pre);
  c->start_rc = uva_fs_sendfile(&c->w, c->s, c->in_fd, c->offset, c->file_len);
  if (c->start_rc != 0) return c->start_rc;
  write_pattern(c->s, c->pre + c->file_len, c->post_now);
  uva_task_yield(t); /* the file goes on meanwhile */
  CO_WAIT(c);
  write_pattern(c->s, c->pre + c->file_len + c->post_now,
                c->post - c->post_now);
  CO_CALL(c, uva_work_wait(c->w, t));
  c->wait_rc = c->rc;
  uva_fs_result(&c->sent, c->w);
  uva_work_close(c->w);
  CO_CALL(c, uva_stream_drain(c->s, t));
  c->drain_rc = c->rc;
  uva_stream_close(c->s, NULL, NULL);
  CO_END(c);
}

/* Send pre + file + post over the connected pair fds (fds[0] ours). */
static void send_and_check(int fds[2], size_t pre, size_t file_len,
                           size_t post) {
  uva_loop_t *loop = uvt_loop_new();
  struct peer p;
  memset(&p, 0, sizeof p);
  p.fd = fds[1];
  p.delay_ms = 50; /* the bytes before the file are still queued */
  peer_start(&p, peer_reader);
  struct sender c;
  memset(&c, 0, sizeof c);
  c.s = adopt(loop, fds[0]);
  c.in_fd = pattern_file(pre, file_len);
  c.offset = 0;
  c.pre = pre;
  c.file_len = file_len;
  c.post = post;
  c.post_now = post / 2;
  uva_task_t *t;
  UVT_OK(uva_task_spawn(&t, loop, step_sender, &c, NULL));
  run(loop);
  UVT_OK(task_rc(t));
  uva_task_release(t);
  UVT_OK(c.wait_rc);
  cr_assert_eq(c.sent, (int64_t) file_len);
  UVT_OK(c.drain_rc);
  peer_join(&p);
  UVT_OK(p.err);
  cr_assert_eq(p.done, pre + file_len + post, "peer got %zu bytes", p.done);
  cr_assert_eq(p.bad, 0, "bytes out of order or wrong");
  close(c.in_fd);
  UVT_CLOSE_LOOP(loop);
}

Test(sendfile, tcp_bytes_before_during_and_after_arrive_in_order,
     .timeout = 20) {
  int fds[2];
  tcp_fd_pair(fds);
  small_buffers(fds); /* the file waits for the bytes queued before it */
  send_and_check(fds, 3 * MIB + 17, 8 * MIB + 5, MIB + 3);
}

Test(sendfile, unix_socket_bytes_in_order, .timeout = 20) {
  int fds[2];
  cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
  send_and_check(fds, 2 * MIB + 1, 6 * MIB + 7, MIB);
}

Test(sendfile, nothing_queued_before, .timeout = 20) {
  int fds[2];
  tcp_fd_pair(fds);
  send_and_check(fds, 0, 4 * MIB, 0);
}

/* ---- position, offsets and end of file ------------------------------------ */

/* Send len bytes from offset (-1: the position) and wait: the count. */
static int64_t send_one(uva_loop_t *loop, uva_stream_t *s, int in_fd,
                        int64_t offset, size_t len, int want) {
  uva_work_t *w;
  UVT_OK(uva_fs_sendfile(&w, s, in_fd, offset, len));
  run(loop);
  int64_t n = -1;
  UVT_EQ(uva_work_wait(w, NULL), want);
  UVT_EQ(uva_fs_result(&n, w), want);
  UVT_OK(uva_work_close(w));
  return n;
}

static void recv_exactly(int fd, char *buf, size_t n) {
  size_t got = 0;
  while (got < n) {
    ssize_t r = recv(fd, buf + got, n - got, 0);
    cr_assert(r > 0, "recv: %zd", r);
    got += (size_t) r;
  }
}

Test(sendfile, position_offsets_and_end_of_file, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  int fds[2];
  tcp_fd_pair(fds);
  uva_stream_t *s = adopt(loop, fds[0]);
  char path[] = "/tmp/uva_sendfile_XXXXXX";
  int in = mkstemp(path);
  unlink(path);
  cr_assert_eq(write(in, "0123456789", 10), 10);
  char buf[16] = {0};
  cr_assert_eq(lseek(in, 2, SEEK_SET), 2);
  cr_assert_eq(send_one(loop, s, in, -1, 3, 0), 3); /* at the position */
  recv_exactly(fds[1], buf, 3);
  cr_assert_eq(memcmp(buf, "234", 3), 0);
  cr_assert_eq(lseek(in, 0, SEEK_CUR), 5, "-1 advances the position");
  cr_assert_eq(send_one(loop, s, in, 7, 2, 0), 2); /* at an offset */
  recv_exactly(fds[1], buf, 2);
  cr_assert_eq(memcmp(buf, "78", 2), 0);
  cr_assert_eq(lseek(in, 0, SEEK_CUR), 5, "an offset leaves the position");
  cr_assert_eq(send_one(loop, s, in, 6, 100, 0), 4, "fewer at end of file");
  recv_exactly(fds[1], buf, 4);
  cr_assert_eq(memcmp(buf, "6789", 4), 0);
  cr_assert_eq(send_one(loop, s, in, 10, 5, 0), 0, "at the end: 0");
  cr_assert_eq(send_one(loop, s, in, 0, 0, 0), 0, "nothing asked");
  UVT_OK(uva_stream_close(s, NULL, NULL));
  run(loop);
  close(in);
  close(fds[1]);
  UVT_CLOSE_LOOP(loop);
}

Test(sendfile, from_a_pipe_falls_back_to_read_and_write, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  int fds[2], pfd[2];
  tcp_fd_pair(fds);
  cr_assert_eq(pipe(pfd), 0);
  uva_stream_t *s = adopt(loop, fds[0]);
  cr_assert_eq(write(pfd[1], "from a pipe", 11), 11);
  close(pfd[1]);
  cr_assert_eq(send_one(loop, s, pfd[0], -1, 100, 0), 11);
  char buf[16] = {0};
  recv_exactly(fds[1], buf, 11);
  cr_assert_str_eq(buf, "from a pipe");
  UVT_OK(uva_stream_close(s, NULL, NULL));
  run(loop);
  close(pfd[0]);
  close(fds[1]);
  UVT_CLOSE_LOOP(loop);
}

Test(sendfile, starting_errors, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  int fds[2];
  tcp_fd_pair(fds);
  uva_stream_t *s = adopt(loop, fds[0]);
  int in = pattern_file(0, 64 * MIB); /* more than the socket takes */
  uva_work_t *w, *w2 = NULL;
  UVT_EQ(uva_fs_sendfile(NULL, s, in, 0, 10), UVA_EINVAL);
  UVT_EQ(uva_fs_sendfile(&w, NULL, in, 0, 10), UVA_EINVAL);
  UVT_EQ(uva_fs_sendfile(&w, s, in, -2, 10), UVA_EINVAL);
  UVT_EQ(uva_fs_sendfile(&w, (uva_stream_t *) loop, in, 0, 10),
         UVA_EHANDLEKIND);
  UVT_OK(uva_fs_sendfile(&w, s, in, 0, 64 * MIB));
  UVT_EQ(uva_fs_sendfile(&w2, s, in, 0, 10), UVA_EBUSY);
  cr_assert_null(w2);
  UVT_OK(uva_stream_close(s, NULL, NULL)); /* ends the first (ECLOSED) */
  run(loop);
  UVT_EQ(uva_work_wait(w, NULL), UVA_ECLOSED);
  UVT_OK(uva_work_close(w));
  close(in);
  close(fds[1]);
  UVT_CLOSE_LOOP(loop);
}

/* ---- closing and cancelling ----------------------------------------------- */

static void count_close(uva_stream_t *s, void *data) {
  (void) s;
  ++*(int *) data;
}

struct closer {
  int pc, rc;
  uva_stream_t *s;
  uva_work_t *w;
  int closes;
  double closed_at;
};

static int step_wait_send(uva_task_t *t, int status, void *d) {
  struct closer *c = d;
  if (status != 0) return status;
  CO_BEGIN(c);
  CO_CALL(c, uva_work_wait(c->w, t));
  return c->rc;
  CO_END(c);
}

static void on_timer_close(uva_timer_t *timer, void *data) {
  struct closer *c = data;
  c->closed_at = uvt_ms();
  UVT_OK(uva_stream_close(c->s, count_close, &c->closes));
  uva_timer_close(timer, NULL);
}

Test(sendfile, stream_closed_under_a_running_sendfile, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  int fds[2];
  tcp_fd_pair(fds); /* the peer never reads: the socket fills up */
  struct closer c = {0};
  c.s = adopt(loop, fds[0]);
  int in = pattern_file(0, 64 * MIB);
  UVT_OK(uva_fs_sendfile(&c.w, c.s, in, 0, 64 * MIB));
  uva_task_t *t;
  UVT_OK(uva_task_spawn(&t, loop, step_wait_send, &c, NULL));
  uva_timer_t *timer;
  UVT_OK(uva_timer_new(&timer, loop, on_timer_close, &c, NULL));
  UVT_OK(uva_timer_start(timer, 100, 0));
  run(loop);
  double took = uvt_ms() - c.closed_at;
  UVT_EQ(task_rc(t), UVA_ECLOSED);
  uva_task_release(t);
  cr_assert_eq(c.closes, 1, "the stream's close completed");
  cr_assert(took < 1000 * uvt_mult(), "the close took %.0f ms", took);
  int64_t n = -1;
  UVT_EQ(uva_fs_result(&n, c.w), UVA_ECLOSED);
  UVT_OK(uva_work_close(c.w));
  /* The pool thread let go of the descriptor before it was closed: the
   * peer sees the end (or a reset) of the stream. */
  char buf[65536];
  ssize_t r;
  size_t got = 0;
  while ((r = recv(fds[1], buf, sizeof buf, 0)) > 0)
    got += (size_t) r;
  cr_assert(got < 64 * MIB);
  close(in);
  close(fds[1]);
  UVT_CLOSE_LOOP(loop);
}

Test(sendfile, job_closed_while_it_runs, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  int fds[2];
  tcp_fd_pair(fds); /* nobody reads yet: the socket fills up */
  uva_stream_t *s = adopt(loop, fds[0]);
  int in = pattern_file(0, 64 * MIB);
  uva_work_t *w;
  UVT_OK(uva_fs_sendfile(&w, s, in, 0, 64 * MIB));
  uvt_sleep_ms(20);
  UVT_OK(uva_work_close(w)); /* stops it; the stream stays open */
  run(loop);
  /* The peer gets a prefix of the file, then the end of the stream. */
  struct peer p;
  memset(&p, 0, sizeof p);
  p.fd = fds[1];
  peer_start(&p, peer_reader);
  UVT_OK(uva_stream_close(s, NULL, NULL));
  run(loop);
  peer_join(&p);
  UVT_OK(p.err);
  cr_assert_eq(p.bad, 0);
  cr_assert(p.done > 0 && p.done < 64 * MIB, "got %zu bytes", p.done);
  close(in);
  UVT_CLOSE_LOOP(loop);
}

Test(sendfile, held_behind_queued_writes_and_cancelled, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  int fds[2];
  tcp_fd_pair(fds);
  small_buffers(fds);
  uva_stream_t *s = adopt(loop, fds[0]);
  size_t pre = 8 * MIB; /* far more than the socket takes: stays queued */
  write_pattern(s, 0, pre);
  int in = pattern_file(0, MIB);
  uva_work_t *w;
  UVT_OK(uva_fs_sendfile(&w, s, in, 0, MIB));
  write_pattern(s, pre, MIB); /* behind the file */
  UVT_OK(uva_work_cancel(w)); /* not started: dropped */
  pass(loop);
  UVT_EQ(uva_work_wait(w, NULL), UVA_ECANCELED);
  UVT_OK(uva_work_close(w));
  /* The bytes written after it follow those before it. */
  struct peer p;
  memset(&p, 0, sizeof p);
  p.fd = fds[1];
  peer_start(&p, peer_reader);
  UVT_OK(uva_stream_close(s, NULL, NULL)); /* flushes, then closes */
  run(loop);
  peer_join(&p);
  cr_assert_eq(p.done, pre + MIB);
  cr_assert_eq(p.bad, 0);
  close(in);
  UVT_CLOSE_LOOP(loop);
}

Test(sendfile, peer_reset_ends_it_with_the_error, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  int fds[2];
  tcp_fd_pair(fds);
  struct closer c = {0};
  c.s = adopt(loop, fds[0]);
  int in = pattern_file(0, 64 * MIB);
  UVT_OK(uva_fs_sendfile(&c.w, c.s, in, 0, 64 * MIB));
  uva_task_t *t;
  UVT_OK(uva_task_spawn(&t, loop, step_wait_send, &c, NULL));
  uvt_sleep_ms(20);
  close_reset(fds[1]);
  run(loop);
  int rc = task_rc(t);
  cr_assert(rc == UVA_ECONNRESET || rc == UVA_EPIPE, "got %s",
            uva_err_name(rc));
  uva_task_release(t);
  UVT_OK(uva_work_close(c.w));
  UVT_OK(uva_stream_close(c.s, NULL, NULL));
  run(loop);
  close(in);
  UVT_CLOSE_LOOP(loop);
}

/* A sendfile that failed part-way still tells how much went out (the
 * caller advances the file by it): at least what the peer read, less
 * than the file. */
Test(sendfile, failed_part_way_reports_the_bytes_sent, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  int fds[2];
  tcp_fd_pair(fds);
  struct closer c = {0};
  c.s = adopt(loop, fds[0]);
  int in = pattern_file(0, 64 * MIB);
  UVT_OK(uva_fs_sendfile(&c.w, c.s, in, 0, 64 * MIB));
  uva_task_t *t;
  UVT_OK(uva_task_spawn(&t, loop, step_wait_send, &c, NULL));
  static char buf[MIB];
  recv_exactly(fds[1], buf, MIB); /* the pool thread sends meanwhile */
  close_reset(fds[1]);
  run(loop);
  int rc = task_rc(t);
  cr_assert(rc == UVA_ECONNRESET || rc == UVA_EPIPE, "got %s",
            uva_err_name(rc));
  uva_task_release(t);
  int64_t n = -1;
  UVT_EQ(uva_fs_result(&n, c.w), rc);
  cr_assert(n >= (int64_t) MIB && n < (int64_t) (64 * MIB), "sent %lld",
            (long long) n);
  UVT_OK(uva_work_close(c.w));
  UVT_OK(uva_stream_close(c.s, NULL, NULL));
  run(loop);
  close(in);
  UVT_CLOSE_LOOP(loop);
}

/* A shutdown made while the file goes out waits for it: the peer gets the
 * whole file, then the end of the stream. */
struct shutter {
  int pc, rc;
  uva_stream_t *s;
  int in_fd;
  uva_work_t *w;
  int shut_rc, done_at_shut;
};

static int step_shutter(uva_task_t *t, int status, void *d) {
  struct shutter *c = d;
  if (status != 0) return status;
  CO_BEGIN(c);
  c->rc = uva_fs_sendfile(&c->w, c->s, c->in_fd, 0, 6 * MIB);
  if (c->rc != 0) return c->rc;
  CO_CALL(c, uva_stream_shutdown(c->s, t));
  c->shut_rc = c->rc;
  uva_work_done(&c->done_at_shut, c->w);
  CO_CALL(c, uva_work_wait(c->w, t));
  uva_work_close(c->w);
  if (c->rc != 0) return c->rc;
  uva_stream_close(c->s, NULL, NULL);
  CO_END(c);
}

Test(sendfile, shutdown_waits_for_the_file, .timeout = 20) {
  uva_loop_t *loop = uvt_loop_new();
  int fds[2];
  tcp_fd_pair(fds);
  struct peer p;
  memset(&p, 0, sizeof p);
  p.fd = fds[1];
  p.delay_ms = 20;
  peer_start(&p, peer_reader);
  struct shutter c = {0};
  c.s = adopt(loop, fds[0]);
  c.in_fd = pattern_file(0, 6 * MIB);
  uva_task_t *t;
  UVT_OK(uva_task_spawn(&t, loop, step_shutter, &c, NULL));
  run(loop);
  UVT_OK(task_rc(t));
  uva_task_release(t);
  UVT_OK(c.shut_rc);
  cr_assert_eq(c.done_at_shut, 1, "the shutdown completed before the file");
  peer_join(&p);
  UVT_OK(p.err);
  cr_assert_eq(p.done, 6 * MIB);
  cr_assert_eq(p.bad, 0);
  close(c.in_fd);
  UVT_CLOSE_LOOP(loop);
}

/* Closed while the file waits for the bytes queued before it: it ends with
 * UVA_ECLOSED without starting, and the graceful close still sends those
 * bytes (only them) before the end of the stream. */
Test(sendfile, stream_closed_while_it_waits_for_queued_writes, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  int fds[2];
  tcp_fd_pair(fds);
  small_buffers(fds);
  uva_stream_t *s = adopt(loop, fds[0]);
  size_t pre = 8 * MIB;
  write_pattern(s, 0, pre);
  int in = pattern_file(pre, MIB);
  uva_work_t *w;
  UVT_OK(uva_fs_sendfile(&w, s, in, 0, MIB));
  write_pattern(s, pre + MIB, 4096); /* behind the file: dropped too */
  UVT_OK(uva_stream_close(s, NULL, NULL));
  int done = 0;
  UVT_OK(uva_work_done(&done, w));
  cr_assert_eq(done, 1, "a sendfile not started ends with the close");
  struct peer p;
  memset(&p, 0, sizeof p);
  p.fd = fds[1];
  peer_start(&p, peer_reader);
  run(loop);
  UVT_EQ(uva_work_wait(w, NULL), UVA_ECLOSED);
  UVT_OK(uva_work_close(w));
  peer_join(&p);
  cr_assert_eq(p.done, pre);
  cr_assert_eq(p.bad, 0);
  close(in);
  UVT_CLOSE_LOOP(loop);
}

/* A file cut short (its job closed while it ran, or an error) leaves the
 * stream's bytes different from what was written: the writes queued
 * behind it are dropped and later ones fail, instead of following a
 * partial file as if it had all gone (the peer's framing would be off). */
Test(sendfile, writes_behind_a_file_cut_short_do_not_follow_it, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  int fds[2];
  tcp_fd_pair(fds); /* nobody reads yet: the socket fills up */
  uva_stream_t *s = adopt(loop, fds[0]);
  int in = pattern_file(0, 64 * MIB);
  uva_work_t *w;
  UVT_OK(uva_fs_sendfile(&w, s, in, 0, 64 * MIB));
  write_pattern(s, 64 * MIB, MIB); /* behind the file */
  uvt_sleep_ms(20);
  UVT_OK(uva_work_close(w)); /* stops it mid-way */
  run(loop);
  UVT_EQ(uva_stream_write(NULL, s, "x", 1), UVA_ECANCELED);
  struct peer p;
  memset(&p, 0, sizeof p);
  p.fd = fds[1];
  peer_start(&p, peer_reader);
  UVT_OK(uva_stream_close(s, NULL, NULL));
  run(loop);
  peer_join(&p);
  cr_assert_eq(p.bad, 0, "bytes after a partial file");
  cr_assert(p.done > 0 && p.done < 64 * MIB, "got %zu bytes", p.done);
  close(in);
  UVT_CLOSE_LOOP(loop);
}

Test(sendfile, a_file_that_cannot_be_read_fails_the_writes_behind_it,
     .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  int fds[2];
  tcp_fd_pair(fds);
  uva_stream_t *s = adopt(loop, fds[0]);
  char path[] = "/tmp/uva_sendfile_XXXXXX";
  int in = mkstemp(path);
  unlink(path);
  char proc[64];
  snprintf(proc, sizeof proc, "/proc/self/fd/%d", in);
  int out_only = open(proc, O_WRONLY);
  cr_assert(out_only >= 0);
  uva_work_t *w;
  UVT_OK(uva_fs_sendfile(&w, s, out_only, 0, 10));
  UVT_OK(uva_stream_write(NULL, s, "after", 5)); /* behind the file */
  run(loop);
  UVT_EQ(uva_work_wait(w, NULL), UVA_EBADF);
  UVT_OK(uva_work_close(w));
  UVT_EQ(uva_stream_write(NULL, s, "x", 1), UVA_EBADF);
  UVT_OK(uva_stream_close(s, NULL, NULL));
  run(loop);
  char buf[8];
  cr_assert_eq(recv(fds[1], buf, sizeof buf, 0), 0, "nothing, then EOF");
  close(out_only);
  close(in);
  close(fds[1]);
  UVT_CLOSE_LOOP(loop);
}
