/* Ending a stream: shutdown, graceful close (the queue is flushed), abort
 * (it is dropped), close while connecting, calls after close, nothing heard
 * through a dup of a closed stream's descriptor, and a stream closed under
 * a task waiting on it.
 *
 * Waiting follows the "call again" protocol: a call that cannot complete
 * registers the task and returns UVA_EAGAIN, the step returns
 * UVA_TASK_PENDING, and the repeated call after the wake-up completes.
 * Helpers: support.h. */
#include "support.h"

/* shutdown: the peer sees EOF, and we still read its reply. */
struct shut_ctx {
  int pc, rc;
  uva_stream_t *s;
  size_t n;
  char buf[64];
  int ok;
};

static int step_shut_client(uva_task_t *t, int status, void *d) {
  struct shut_ctx *c = (struct shut_ctx *) d;
  (void) status;
  CO_BEGIN(c);
  CO_CALL(c, uva_stream_write_drain(c->s, t, "request", 7));
  UVT_OK(c->rc);
  CO_CALL(c, uva_stream_shutdown(c->s, t));
  UVT_OK(c->rc);
  CO_CALL(c, uva_stream_read_to_eof(&c->n, c->s, t));
  UVT_OK(c->rc);
  cr_assert_eq(c->n, 5);
  CO_CALL(c, uva_stream_read_exactly(c->s, t, c->buf, 5));
  UVT_OK(c->rc);
  cr_assert_eq(memcmp(c->buf, "reply", 5), 0);
  UVT_OK(uva_stream_close(c->s, NULL, NULL));
  c->ok = 1;
  CO_END(c);
}

static int step_shut_server(uva_task_t *t, int status, void *d) {
  struct shut_ctx *c = (struct shut_ctx *) d;
  (void) status;
  CO_BEGIN(c);
  CO_CALL(c, uva_stream_read_to_eof(&c->n, c->s, t)); /* needs the EOF */
  UVT_OK(c->rc);
  cr_assert_eq(c->n, 7);
  CO_CALL(c, uva_stream_read(&c->n, c->s, t, c->buf, sizeof c->buf));
  UVT_OK(c->rc);
  cr_assert_eq(c->n, 7);
  cr_assert_eq(memcmp(c->buf, "request", 7), 0);
  CO_CALL(c, uva_stream_write_drain(c->s, t, "reply", 5));
  UVT_OK(c->rc);
  UVT_OK(uva_stream_close(c->s, NULL, NULL));
  c->ok = 1;
  CO_END(c);
}

Test(stream, shutdown_peer_sees_eof_reply_still_readable, .timeout = 20) {
  uva_loop_t *loop = uvt_loop_new();
  int fds[2];
  struct shut_ctx cl, sv;
  memset(&cl, 0, sizeof cl);
  memset(&sv, 0, sizeof sv);
  tcp_fd_pair(fds);
  cl.s = adopt(loop, fds[0]);
  sv.s = adopt(loop, fds[1]);
  spawn(loop, step_shut_client, &cl);
  spawn(loop, step_shut_server, &sv);
  run(loop);
  cr_assert(cl.ok && sv.ok);
  UVT_CLOSE_LOOP(loop);
}

Test(stream, graceful_close_flushes_queued_data, .timeout = 60) {
  uva_loop_t *loop = uvt_loop_new();
  int fds[2], closes = 0;
  size_t queued = 0;
  struct peer p;
  memset(&p, 0, sizeof p);
  tcp_fd_pair(fds);
  uva_stream_t *s = adopt(loop, fds[1]);
  unsigned char *data = pattern_buf(BIG);
  UVT_OK(uva_stream_write(&queued, s, data, BIG));
  free(data);
  cr_assert(queued > 0, "nothing queued: the test needs a queue");
  UVT_OK(uva_stream_close(s, count_stream_close, &closes));
  UVT_OK(uva_stream_close(s, count_stream_close, &closes)); /* no-op */
  p.fd = fds[0];
  p.delay_ms = 100;
  peer_start(&p, peer_reader);
  run(loop);
  peer_join(&p);
  cr_assert_eq(closes, 1);
  UVT_EQ(p.err, 0);
  cr_assert_eq(p.done, BIG, "the peer received %zu of %zu", p.done, BIG);
  cr_assert(!p.bad);
  UVT_CLOSE_LOOP(loop);
}

Test(stream, abort_drops_queue, .timeout = 60) {
  uva_loop_t *loop = uvt_loop_new();
  int fds[2], closes = 0;
  size_t queued = 0;
  struct peer p;
  memset(&p, 0, sizeof p);
  tcp_fd_pair(fds);
  uva_stream_t *s = adopt(loop, fds[1]);
  unsigned char *data = pattern_buf(BIG);
  UVT_OK(uva_stream_write(&queued, s, data, BIG));
  free(data);
  cr_assert(queued > 0);
  UVT_OK(uva_stream_abort(s, count_stream_close, &closes));
  p.fd = fds[0];
  peer_start(&p, peer_reader);
  run(loop);
  peer_join(&p);
  cr_assert_eq(closes, 1);
  cr_assert(p.done < BIG, "the peer got everything despite the abort");
  cr_assert(p.err == -ECONNRESET || p.err == 0, "peer ended with %s",
            strerror(-p.err));
  cr_assert(!p.bad);
  UVT_CLOSE_LOOP(loop);
}

/* uva_stream_abort after uva_stream_close stops waiting for the flush
 * (the peer never reads): the close completes, one close callback. */
Test(stream, abort_after_graceful_close_stops_the_flush, .timeout = 30) {
  uva_loop_t *loop = uvt_loop_new();
  int fds[2], closes1 = 0, closes2 = 0;
  size_t queued = 0;
  char b[4096];
  tcp_fd_pair(fds);
  uva_stream_t *s = adopt(loop, fds[1]);
  unsigned char *data = pattern_buf(BIG);
  UVT_OK(uva_stream_write(&queued, s, data, BIG));
  free(data);
  cr_assert(queued > 0);
  UVT_OK(uva_stream_close(s, count_stream_close, &closes1));
  for (int i = 0; i < 20; i++)
    UVT_OK(uva_loop_run(loop, UVA_RUN_NOWAIT));
  cr_assert_eq(closes1, 0, "closed before the queue was flushed");
  UVT_OK(uva_stream_abort(s, count_stream_close, &closes2));
  run(loop);
  cr_assert_eq(closes1 + closes2, 1, "close callbacks: %d + %d", closes1,
               closes2);
  /* The peer got part of the data, then a reset or EOF. */
  ssize_t n;
  size_t total = 0;
  while ((n = recv(fds[0], b, sizeof b, 0)) > 0)
    total += (size_t) n;
  cr_assert(total < BIG);
  close(fds[0]);
  UVT_CLOSE_LOOP(loop);
}

/* Closing a stream that is still connecting wakes its waiter with
 * UVA_ECLOSED; nothing leaks. */
struct conn_close {
  int pc, rc;
  uva_loop_t *loop;
  int port;
  uva_stream_t *s;
  int wait_rc;
};

static int step_closer_of(uva_task_t *t, int status, void *d) {
  struct side *sd = (struct side *) d;
  struct conn_close *c = (struct conn_close *) sd->c;
  (void) t;
  (void) status;
  UVT_OK(uva_stream_close(c->s, NULL, NULL));
  return 0;
}

static int step_connect_then_closed(uva_task_t *t, int status, void *d) {
  struct conn_close *c = (struct conn_close *) d;
  static struct side sd;
  (void) status;
  CO_BEGIN(c);
  UVT_OK(uva_tcp_connect(&c->s, c->loop, "127.0.0.1", c->port));
  sd.c = c;
  spawn(c->loop, step_closer_of, &sd);
  CO_CALL(c, uva_stream_wait_connected(c->s, t));
  c->wait_rc = c->rc;
  CO_END(c);
}

Test(stream, close_while_connecting_wakes_waiter_eclosed, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  struct conn_close c;
  int port;
  int l = raw_bound(8, &port);
  memset(&c, 0, sizeof c);
  c.loop = loop;
  c.port = port;
  c.wait_rc = 1;
  spawn(loop, step_connect_then_closed, &c);
  run(loop);
  UVT_EQ(c.wait_rc, UVA_ECLOSED);
  close(l);
  UVT_CLOSE_LOOP(loop);
}

struct after_close {
  int pc, rc;
  uva_stream_t *s;
  size_t n;
  int write_rc, read_rc, exactly_rc, line_rc, drain_rc, closes;
  char buf[16];
};

static int step_use_after_close(uva_task_t *t, int status, void *d) {
  struct after_close *c = (struct after_close *) d;
  (void) status;
  CO_BEGIN(c);
  UVT_OK(uva_stream_close(c->s, count_stream_close, &c->closes));
  /* Closing has begun: the memory lives until the close completes. */
  c->write_rc = uva_stream_write(NULL, c->s, "x", 1);
  c->read_rc = uva_stream_read(&c->n, c->s, t, c->buf, sizeof c->buf);
  c->exactly_rc = uva_stream_read_exactly(c->s, t, c->buf, 1);
  c->line_rc = uva_stream_read_line(&c->n, c->s, t, c->buf, sizeof c->buf);
  c->drain_rc = uva_stream_drain(c->s, t);
  CO_END(c);
}

Test(stream, write_and_read_after_close_eclosed, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  int sp[2];
  struct after_close c;
  memset(&c, 0, sizeof c);
  cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sp), 0);
  c.s = adopt(loop, sp[0]);
  send_all(sp[1], "buffered", 8); /* even buffered bytes are not served */
  spawn(loop, step_use_after_close, &c);
  run(loop);
  close(sp[1]);
  UVT_EQ(c.write_rc, UVA_ECLOSED);
  UVT_EQ(c.read_rc, UVA_ECLOSED);
  UVT_EQ(c.exactly_rc, UVA_ECLOSED);
  UVT_EQ(c.line_rc, UVA_ECLOSED);
  UVT_EQ(c.drain_rc, UVA_ECLOSED);
  cr_assert_eq(c.closes, 1);
  UVT_CLOSE_LOOP(loop);
}

/* A stream closed while a duplicate of its descriptor stays open: the
 * socket stays in any epoll set it is in, so the close must take it out,
 * or the peer's next bytes would be reported for freed memory (an ASan
 * report in the asan suite). */
static int step_sleep_50(uva_task_t *t, int status, void *d) {
  struct edge_case *c = (struct edge_case *) d;
  (void) status;
  CO_BEGIN(c);
  CO_SLEEP(c, t, 50);
  CO_END(c);
}

Test(stream, closed_stream_hears_nothing_through_a_dup, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  struct edge_case c;
  int fds[2], closes = 0;
  memset(&c, 0, sizeof c);
  tcp_fd_pair(fds);
  uva_stream_t *s = adopt(loop, fds[1]);
  int dup_fd = dup(fds[1]);
  cr_assert(dup_fd >= 0);
  run(loop); /* the stream is watched */
  UVT_OK(uva_stream_close(s, count_stream_close, &closes));
  run(loop); /* closed and freed */
  cr_assert_eq(closes, 1);
  send_all(fds[0], "late", 4);
  spawn(loop, step_sleep_50, &c);
  run(loop); /* polls while "late" is readable on the dup */
  char got[8];
  cr_assert_eq(recv(dup_fd, got, sizeof got, 0), 4);
  close(dup_fd);
  close(fds[0]);
  UVT_CLOSE_LOOP(loop);
}

/* ---- a stream closed under a waiting task (use after free) ------------- */

/* A task waits on a stream; another closes it. The waiting task makes its
 * repeated call only after the close completed, so its wait node holds the
 * stream's last reference: the call used to drop the node (freeing the
 * stream) and then write the freed stream (ASan: heap-use-after-free). */
enum outlived_op {
  OUT_READ,
  OUT_READ_LINE,
  OUT_READ_EXACTLY,
  OUT_READ_TO_EOF,
  OUT_PEEK,
  OUT_SHUTDOWN
};

struct outlived {
  enum outlived_op op;
  uva_stream_t *s;
  int calls, closed, rc;
  char buf[64];
  size_t n;
  const void *p;
};

static int outlived_call(struct outlived *c, uva_task_t *t) {
  c->calls++;
  switch (c->op) {
    case OUT_READ:
      return uva_stream_read(&c->n, c->s, t, c->buf, sizeof c->buf);
    case OUT_READ_LINE:
      return uva_stream_read_line(&c->n, c->s, t, c->buf, sizeof c->buf);
    case OUT_READ_EXACTLY:
      return uva_stream_read_exactly(c->s, t, c->buf, 10);
    case OUT_READ_TO_EOF:
      return uva_stream_read_to_eof(&c->n, c->s, t);
    case OUT_PEEK:
      return uva_stream_peek(&c->p, &c->n, c->s, t);
    case OUT_SHUTDOWN:
      return uva_stream_shutdown(c->s, t);
  }
  return UVA_EINTERNAL;
}

static void outlived_closed(uva_stream_t *s, void *data) {
  (void) s;
  ((struct outlived *) data)->closed = 1;
}

/* Waits, then (its node still registered) sleeps until the close has
 * completed, then makes the repeated call. */
static int step_outlived_waiter(uva_task_t *t, int status, void *d) {
  struct outlived *c = (struct outlived *) d;
  cr_assert_eq(status, 0);
  if (c->calls == 0) {
    int rc = outlived_call(c, t);
    cr_assert_eq(rc, UVA_EAGAIN, "first call: %s", uva_err_name(rc));
    return UVA_TASK_PENDING;
  }
  if (!c->closed) {
    UVT_OK(uva_task_sleep(t, 5));
    return UVA_TASK_PENDING;
  }
  c->rc = outlived_call(c, t);
  return 0;
}

static int step_outlived_closer(uva_task_t *t, int status, void *d) {
  struct outlived *c = (struct outlived *) d;
  (void) t;
  (void) status;
  UVT_OK(uva_stream_close(c->s, outlived_closed, c));
  return 0;
}

static void stream_closed_under_waiter(enum outlived_op op) {
  uva_loop_t *loop = uvt_loop_new();
  struct outlived c;
  int sp[2];
  memset(&c, 0, sizeof c);
  c.op = op;
  c.rc = 1;
  cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sp), 0);
  c.s = adopt(loop, sp[0]);
  /* The closer runs in the waiter's pass: a shutdown is still queued in
   * libuv then (it waits for a poll), and the close cancels it. */
  spawn(loop, step_outlived_waiter, &c);
  spawn(loop, step_outlived_closer, &c);
  run(loop);
  cr_assert_eq(c.closed, 1);
  cr_assert_eq(c.calls, 2);
  UVT_EQ(c.rc, UVA_ECLOSED);
  close(sp[1]);
  UVT_CLOSE_LOOP(loop);
}

Test(stream, closed_under_waiting_read, .timeout = 10) {
  stream_closed_under_waiter(OUT_READ);
}

Test(stream, closed_under_waiting_read_line, .timeout = 10) {
  stream_closed_under_waiter(OUT_READ_LINE);
}

Test(stream, closed_under_waiting_read_exactly, .timeout = 10) {
  stream_closed_under_waiter(OUT_READ_EXACTLY);
}

Test(stream, closed_under_waiting_read_to_eof, .timeout = 10) {
  stream_closed_under_waiter(OUT_READ_TO_EOF);
}

Test(stream, closed_under_waiting_peek, .timeout = 10) {
  stream_closed_under_waiter(OUT_PEEK);
}

Test(stream, closed_under_waiting_shutdown, .timeout = 10) {
  stream_closed_under_waiter(OUT_SHUTDOWN);
}
