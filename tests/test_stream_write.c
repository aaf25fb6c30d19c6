/* Writes (uvasync.h "Streams"): what the kernel takes at once, queued
 * writes and draining, and a write to a peer that reset or after a
 * shutdown.
 *
 * Waiting follows the "call again" protocol: a call that cannot complete
 * registers the task and returns UVA_EAGAIN, the step returns
 * UVA_TASK_PENDING, and the repeated call after the wake-up completes.
 * Helpers: support.h. */
#include "support.h"

Test(stream, write_taken_by_kernel_reports_zero_queued, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  int fds[2];
  size_t queued = 99;
  char buf[8];
  tcp_fd_pair(fds);
  uva_stream_t *s = adopt(loop, fds[1]);
  UVT_OK(uva_stream_write(&queued, s, "hello", 5));
  cr_assert_eq(queued, 0);
  UVT_OK(uva_stream_write(NULL, s, "", 0));
  cr_assert_eq(recv(fds[0], buf, 5, MSG_WAITALL), 5);
  cr_assert_eq(memcmp(buf, "hello", 5), 0);
  UVT_OK(uva_stream_close(s, NULL, NULL));
  run(loop);
  close(fds[0]);
  UVT_CLOSE_LOOP(loop);
}

struct drain_ctx {
  int pc, rc;
  uva_stream_t *s;
  struct peer *p;
  int first_rc, eagains, peer_started_at_end;
};

static int step_drain_waits_for_peer(uva_task_t *t, int status, void *d) {
  struct drain_ctx *c = (struct drain_ctx *) d;
  (void) status;
  CO_BEGIN(c);
  c->first_rc = uva_stream_drain(c->s, t);
  c->rc = c->first_rc;
  if (c->rc == UVA_EAGAIN) /* registered; the repeated call waits on */
    CO_CALL(c, uva_stream_drain(c->s, t));
  UVT_OK(c->rc);
  c->peer_started_at_end = __atomic_load_n(&c->p->started, __ATOMIC_SEQ_CST);
  UVT_OK(uva_stream_close(c->s, NULL, NULL)); /* flushes the rest */
  CO_END(c);
}

Test(stream, large_write_queues_and_drain_waits_for_peer, .timeout = 60) {
  uva_loop_t *loop = uvt_loop_new();
  int fds[2];
  size_t queued = 0;
  struct drain_ctx c;
  struct peer p;
  memset(&c, 0, sizeof c);
  memset(&p, 0, sizeof p);
  tcp_fd_pair(fds);
  uva_stream_t *s = adopt(loop, fds[1]);
  unsigned char *data = pattern_buf(BIG);
  UVT_OK(uva_stream_write(&queued, s, data, BIG));
  free(data); /* queued bytes were copied */
  cr_assert(queued > 0 && queued <= BIG, "queued %zu", queued);
  p.fd = fds[0];
  p.delay_ms = 300; /* doesn't read for a while */
  peer_start(&p, peer_reader);
  c.s = s;
  c.p = &p;
  spawn(loop, step_drain_waits_for_peer, &c);
  run(loop);
  peer_join(&p);
  UVT_EQ(c.first_rc, UVA_EAGAIN);
  cr_assert(c.peer_started_at_end, "drain completed before the peer read");
  UVT_EQ(p.err, 0);
  cr_assert_eq(p.done, BIG, "peer got %zu of %zu", p.done, BIG);
  cr_assert(!p.bad);
  UVT_CLOSE_LOOP(loop);
}

struct wd_ctx {
  int pc, rc;
  uva_stream_t *s;
  unsigned char *data;
  size_t len;
};

static int step_write_drain(uva_task_t *t, int status, void *d) {
  struct wd_ctx *c = (struct wd_ctx *) d;
  (void) status;
  CO_BEGIN(c);
  CO_CALL(c, uva_stream_write_drain(c->s, t, c->data, c->len));
  UVT_OK(c->rc);
  /* buf is not read again by the repeated calls: scribble over it */
  memset(c->data, 0xEE, c->len);
  CO_CALL(c, uva_stream_write_drain(c->s, t, "", 0));
  UVT_OK(c->rc);
  UVT_OK(uva_stream_close(c->s, NULL, NULL));
  CO_END(c);
}

Test(stream, write_drain_delivers_everything, .timeout = 30) {
  uva_loop_t *loop = uvt_loop_new();
  int fds[2];
  struct wd_ctx c;
  struct peer p;
  memset(&c, 0, sizeof c);
  memset(&p, 0, sizeof p);
  tcp_fd_pair(fds);
  c.s = adopt(loop, fds[1]);
  c.len = 8 * 1024 * 1024;
  c.data = pattern_buf(c.len);
  p.fd = fds[0];
  p.delay_ms = 50;
  peer_start(&p, peer_reader);
  spawn(loop, step_write_drain, &c);
  run(loop);
  peer_join(&p);
  UVT_EQ(p.err, 0);
  cr_assert_eq(p.done, c.len);
  cr_assert(!p.bad);
  free(c.data);
  UVT_CLOSE_LOOP(loop);
}

static int step_reset_writer(uva_task_t *t, int status, void *d) {
  struct reset_ctx *c = (struct reset_ctx *) d;
  (void) status;
  CO_BEGIN(c);
  while (c->sent < (size_t) 256 * 1024 * 1024) {
    CO_CALL(c, uva_stream_write_drain(c->s, t, c->chunk, 1024 * 1024));
    if (c->rc != 0) break;
    c->sent += 1024 * 1024;
  }
  c->rc1 = c->rc;
  c->write_rc = uva_stream_write(NULL, c->s, "x", 1);
  UVT_OK(uva_stream_close(c->s, NULL, NULL));
  CO_END(c);
}

/* The peer, which never reads, goes away with a reset while the writer's
 * queue is full. */
static int step_reset_later(uva_task_t *t, int status, void *d) {
  struct side *sd = (struct side *) d;
  struct reset_ctx *c = (struct reset_ctx *) sd->c;
  (void) status;
  CO_BEGIN(sd);
  CO_SLEEP(sd, t, 100);
  close_reset(c->raw);
  CO_END(sd);
}

Test(stream, peer_reset_during_write_econnreset_or_epipe, .timeout = 30) {
  uva_loop_t *loop = uvt_loop_new();
  int fds[2];
  struct reset_ctx c;
  memset(&c, 0, sizeof c);
  tcp_fd_pair(fds);
  c.s = adopt(loop, fds[1]);
  c.raw = fds[0];
  c.chunk = pattern_buf(1024 * 1024);
  struct side sd = {0, 0, &c};
  spawn(loop, step_reset_writer, &c);
  spawn(loop, step_reset_later, &sd);
  run(loop);
  cr_assert(c.rc1 == UVA_ECONNRESET || c.rc1 == UVA_EPIPE,
            "write/drain after the reset gave %s", uva_err_name(c.rc1));
  cr_assert(c.write_rc == UVA_ECONNRESET || c.write_rc == UVA_EPIPE,
            "a later write gave %s (errors are sticky)",
            uva_err_name(c.write_rc));
  free(c.chunk);
  UVT_CLOSE_LOOP(loop);
}

struct after_shut {
  int pc, rc;
  uva_stream_t *s;
  int write_rc_pending, write_rc_done;
};

static int step_write_after_shutdown(uva_task_t *t, int status, void *d) {
  struct after_shut *c = (struct after_shut *) d;
  (void) status;
  CO_BEGIN(c);
  c->rc = uva_stream_shutdown(c->s, t);
  c->write_rc_pending = uva_stream_write(NULL, c->s, "x", 1);
  if (c->rc == UVA_EAGAIN) CO_CALL(c, uva_stream_shutdown(c->s, t));
  UVT_OK(c->rc);
  c->write_rc_done = uva_stream_write(NULL, c->s, "x", 1);
  UVT_OK(uva_stream_close(c->s, NULL, NULL));
  CO_END(c);
}

Test(stream, write_after_shutdown_epipe, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  int fds[2];
  char b;
  struct after_shut c;
  memset(&c, 0, sizeof c);
  tcp_fd_pair(fds);
  c.s = adopt(loop, fds[1]);
  spawn(loop, step_write_after_shutdown, &c);
  run(loop);
  UVT_EQ(c.write_rc_pending, UVA_EPIPE);
  UVT_EQ(c.write_rc_done, UVA_EPIPE);
  cr_assert_eq(recv(fds[0], &b, 1, 0), 0, "the peer should see only EOF");
  close(fds[0]);
  UVT_CLOSE_LOOP(loop);
}
