/* Reads from a stream's buffer (uvasync.h "Streams"): up to n bytes, exactly
 * n, to end of stream, big and small reads mixed, the read hint; a
 * cancelled read loses no byte; resets and an early end of stream; reads
 * after one edge-triggered report take all it covered.
 *
 * Waiting follows the "call again" protocol: a call that cannot complete
 * registers the task and returns UVA_EAGAIN, the step returns
 * UVA_TASK_PENDING, and the repeated call after the wake-up completes.
 * Helpers: support.h. */
#include "support.h"

static int step_read_up_to_n(uva_task_t *t, int status, void *d) {
  struct rd *c = (struct rd *) d;
  (void) status;
  CO_BEGIN(c);
  /* len = 0 reads nothing and returns at once. */
  c->n = 99;
  UVT_OK(uva_stream_read(&c->n, c->s, t, c->buf, 0));
  cr_assert_eq(c->n, 0);
  for (;;) {
    CO_CALL(c, uva_stream_read(&c->n, c->s, t, c->buf, 4));
    UVT_OK(c->rc);
    if (c->n == 0) break;
    cr_assert(c->n >= 1 && c->n <= 4, "read(4) gave %zu", c->n);
    memcpy(c->all + c->total, c->buf, c->n);
    c->total += c->n;
    c->reads++;
  }
  /* EOF again on a repeated read. */
  CO_CALL(c, uva_stream_read(&c->n, c->s, t, c->buf, sizeof c->buf));
  UVT_OK(c->rc);
  cr_assert_eq(c->n, 0);
  UVT_OK(uva_stream_close(c->s, NULL, NULL));
  CO_END(c);
}

Test(stream, read_returns_up_to_n_then_zero_at_eof, .timeout = 20) {
  uva_loop_t *loop = uvt_loop_new();
  int fds[2];
  struct rd c;
  memset(&c, 0, sizeof c);
  tcp_fd_pair(fds);
  c.s = adopt(loop, fds[1]);
  send_all(fds[0], "0123456789", 10);
  close(fds[0]);
  spawn(loop, step_read_up_to_n, &c);
  run(loop);
  cr_assert_eq(c.total, 10);
  cr_assert(c.reads >= 3, "10 bytes in reads of <= 4 need >= 3 reads");
  cr_assert_eq(memcmp(c.all, "0123456789", 10), 0);
  UVT_CLOSE_LOOP(loop);
}

/* Reads into big buffers (the core reads into them directly while its own
 * buffer is empty) and small ones (served from the core's buffer),
 * interleaved, get every byte once and in order, then EOF. */
struct rd_mixed {
  int pc, rc;
  uva_stream_t *s;
  size_t n, total;
  int reads, bad, eofs;
  unsigned char buf[200 * 1024];
};

static const size_t mixed_lens[] = {64 * 1024, 100, 5000, 3000, 200 * 1024, 1};

static int step_read_mixed(uva_task_t *t, int status, void *d) {
  struct rd_mixed *c = (struct rd_mixed *) d;
  (void) status;
  CO_BEGIN(c);
  for (;;) {
    CO_CALL(c,
            uva_stream_read(&c->n, c->s, t, c->buf, mixed_lens[c->reads % 6]));
    UVT_OK(c->rc);
    if (c->n == 0) break;
    cr_assert(c->n <= mixed_lens[c->reads % 6]);
    if (!pattern_ok(c->buf, c->total, c->n)) c->bad = 1;
    c->total += c->n;
    c->reads++;
  }
  CO_CALL(c, uva_stream_read(&c->n, c->s, t, c->buf, sizeof c->buf));
  UVT_OK(c->rc);
  cr_assert_eq(c->n, 0, "EOF again on a repeated read");
  UVT_OK(uva_stream_close(c->s, NULL, NULL));
  CO_END(c);
}

Test(stream, big_and_small_reads_interleaved_keep_every_byte, .timeout = 30) {
  uva_loop_t *loop = uvt_loop_new();
  int fds[2];
  struct rd_mixed *c = calloc(1, sizeof *c);
  cr_assert_not_null(c);
  tcp_fd_pair(fds);
  c->s = adopt(loop, fds[1]);
  struct peer p;
  peer_write_pattern(&p, fds[0], 3 * 1024 * 1024 + 17, 0, 1);
  spawn(loop, step_read_mixed, c);
  run(loop);
  peer_join(&p);
  cr_assert_eq(p.err, 0);
  cr_assert_eq(c->total, p.total);
  cr_assert_eq(c->bad, 0, "a byte lost, repeated or out of order");
  free(c);
  UVT_CLOSE_LOOP(loop);
}

/* Reads into a buffer plus a spill (uva_stream_read_spill), of sizes that
 * straddle the core's direct-read threshold and its 64 KiB chunks: every
 * byte arrives once and in order, and the spill is written only once the
 * buffer is full. */
struct rd_spill {
  int pc, rc;
  uva_stream_t *s;
  size_t n, total, len, spill_len;
  int reads, bad, spilled, spill_early;
  unsigned char buf[100 * 1024];
  unsigned char spill[100 * 1024];
};

static const size_t spill_lens[][2] = {
    {1000, 100 * 1024}, {100, 50},    {100 * 1024, 100 * 1024},
    {0, 5000},          {3000, 2000}, {1, 1},
    {70000, 0},
};
#define N_SPILL_LENS (sizeof spill_lens / sizeof spill_lens[0])

static int step_read_spill(uva_task_t *t, int status, void *d) {
  struct rd_spill *c = (struct rd_spill *) d;
  (void) status;
  CO_BEGIN(c);
  for (;;) {
    c->len = spill_lens[c->reads % N_SPILL_LENS][0];
    c->spill_len = spill_lens[c->reads % N_SPILL_LENS][1];
    memset(c->spill, 0xee, sizeof c->spill);
    CO_CALL(c, uva_stream_read_spill(&c->n, c->s, t, c->buf, c->len, c->spill,
                                     c->spill_len));
    UVT_OK(c->rc);
    if (c->n == 0) break;
    cr_assert(c->n <= c->len + c->spill_len);
    if (c->n <= c->len) {
      if (!pattern_ok(c->buf, c->total, c->n)) c->bad = 1;
      if (c->spill_len > 0 && c->spill[0] != 0xee) c->spill_early = 1;
    } else {
      if (!pattern_ok(c->buf, c->total, c->len) ||
          !pattern_ok(c->spill, c->total + c->len, c->n - c->len))
        c->bad = 1;
      c->spilled++;
    }
    c->total += c->n;
    c->reads++;
  }
  UVT_OK(uva_stream_close(c->s, NULL, NULL));
  CO_END(c);
}

/* fds: a connected pair, TCP (recvmsg) or a Unix socket pair (readv). */
static void check_read_spill(int fds[2]) {
  uva_loop_t *loop = uvt_loop_new();
  struct rd_spill *c = calloc(1, sizeof *c);
  cr_assert_not_null(c);
  c->s = adopt(loop, fds[1]);
  struct peer p;
  peer_write_pattern(&p, fds[0], 3 * 1024 * 1024 + 17, 0, 1);
  spawn(loop, step_read_spill, c);
  run(loop);
  peer_join(&p);
  cr_assert_eq(p.err, 0);
  cr_assert_eq(c->total, p.total);
  cr_assert_eq(c->bad, 0, "a byte lost, repeated or out of order");
  cr_assert_eq(c->spill_early, 0, "spill written before the buffer filled");
  cr_assert(c->spilled > 0, "no read went on into the spill");
  free(c);
  UVT_CLOSE_LOOP(loop);
}

Test(stream, read_spill_fills_buffer_then_spill_in_order, .timeout = 30) {
  int fds[2];
  tcp_fd_pair(fds);
  check_read_spill(fds);
}

Test(stream, read_spill_over_a_unix_socket_pair, .timeout = 30) {
  int fds[2];
  cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
  check_read_spill(fds);
}

/* The read hint: what is buffered, else what the last read from the kernel
 * got; and read_spill's bad arguments. */
struct rd_hint {
  int pc, rc;
  uva_stream_t *s;
  int fd;
  size_t n, hint_before, hint_buffered, hint_after;
  unsigned char buf[64 * 1024];
};

static int step_read_hint(uva_task_t *t, int status, void *d) {
  struct rd_hint *c = (struct rd_hint *) d;
  (void) status;
  CO_BEGIN(c);
  UVT_OK(uva_stream_read_hint(&c->hint_before, c->s));
  send_all(c->fd, c->buf, 5000);
  /* a small read first: the rest stays buffered in the core */
  CO_CALL(c, uva_stream_read(&c->n, c->s, t, c->buf, 100));
  UVT_OK(c->rc);
  UVT_OK(uva_stream_read_hint(&c->hint_buffered, c->s));
  CO_CALL(c, uva_stream_read(&c->n, c->s, t, c->buf, sizeof c->buf));
  UVT_OK(c->rc);
  send_all(c->fd, c->buf, 7000);
  /* a direct read (over 4 KiB, the core's buffer empty) of all 7000 */
  CO_CALL(c, uva_stream_read_spill(&c->n, c->s, t, c->buf, 1000, c->buf + 1000,
                                   sizeof c->buf - 1000));
  UVT_OK(c->rc);
  cr_assert(c->n > 0);
  UVT_OK(uva_stream_read_hint(&c->hint_after, c->s));
  cr_assert_eq(c->hint_after, c->n, "the hint is the last read's count");
  UVT_EQ(uva_stream_read_spill(&c->n, c->s, t, c->buf, 10, NULL, 1),
         UVA_EINVAL);
  UVT_EQ(uva_stream_read_spill(&c->n, c->s, t, c->buf, SIZE_MAX, c->buf, 2),
         UVA_EINVAL);
  UVT_EQ(uva_stream_read_spill(NULL, c->s, t, c->buf, 10, NULL, 0), UVA_EINVAL);
  UVT_EQ(uva_stream_read_hint(NULL, c->s), UVA_EINVAL);
  UVT_OK(uva_stream_close(c->s, NULL, NULL));
  CO_END(c);
}

Test(stream, read_hint_is_buffered_bytes_else_last_read, .timeout = 20) {
  uva_loop_t *loop = uvt_loop_new();
  int fds[2];
  struct rd_hint c;
  memset(&c, 0, sizeof c);
  tcp_fd_pair(fds);
  c.s = adopt(loop, fds[1]);
  c.fd = fds[0];
  spawn(loop, step_read_hint, &c);
  run(loop);
  close(fds[0]);
  cr_assert_eq(c.hint_before, 0, "no read yet: no hint");
  cr_assert_eq(c.hint_buffered, 4900, "the bytes still buffered");
  UVT_CLOSE_LOOP(loop);
}

/* A reset seen by reads into a big buffer: ECONNRESET, sticky. */
struct rd_reset_big {
  int pc, rc;
  uva_stream_t *s;
  size_t n, total;
  int rc1, rc2;
  unsigned char buf[64 * 1024];
};

static int step_read_reset_big(uva_task_t *t, int status, void *d) {
  struct rd_reset_big *c = (struct rd_reset_big *) d;
  (void) status;
  CO_BEGIN(c);
  for (;;) {
    CO_CALL(c, uva_stream_read(&c->n, c->s, t, c->buf, sizeof c->buf));
    if (c->rc != 0 || c->n == 0) break;
    c->total += c->n;
  }
  c->rc1 = c->rc;
  CO_CALL(c, uva_stream_read(&c->n, c->s, t, c->buf, sizeof c->buf));
  c->rc2 = c->rc;
  UVT_OK(uva_stream_close(c->s, NULL, NULL));
  CO_END(c);
}

Test(stream, peer_reset_seen_by_big_reads_econnreset, .timeout = 20) {
  uva_loop_t *loop = uvt_loop_new();
  int fds[2];
  struct rd_reset_big *c = calloc(1, sizeof *c);
  cr_assert_not_null(c);
  tcp_fd_pair(fds);
  c->s = adopt(loop, fds[1]);
  struct peer p;
  /* after 50 ms, when the reader waits in read already; then a reset */
  peer_write_pattern(&p, fds[0], 1000, 50, 2);
  spawn(loop, step_read_reset_big, c);
  run(loop);
  peer_join(&p);
  cr_assert(c->total <= 1000);
  UVT_EQ(c->rc1, UVA_ECONNRESET);
  UVT_EQ(c->rc2, UVA_ECONNRESET);
  free(c);
  UVT_CLOSE_LOOP(loop);
}

struct rd_eof {
  int pc, rc;
  uva_stream_t *s;
  size_t n, len, got;
  unsigned char *data;
};

static int step_read_to_eof(uva_task_t *t, int status, void *d) {
  struct rd_eof *c = (struct rd_eof *) d;
  (void) status;
  CO_BEGIN(c);
  CO_CALL(c, uva_stream_read_to_eof(&c->len, c->s, t));
  UVT_OK(c->rc);
  c->data = malloc(c->len + 1);
  cr_assert_not_null(c->data);
  for (;;) {
    CO_CALL(c, uva_stream_read(&c->n, c->s, t, c->data + c->got,
                               c->len + 1 - c->got));
    UVT_OK(c->rc);
    if (c->n == 0) break;
    c->got += c->n;
    cr_assert(c->got <= c->len, "more bytes than read_to_eof reported");
  }
  UVT_OK(uva_stream_close(c->s, NULL, NULL));
  CO_END(c);
}

Test(stream, read_to_eof_buffers_everything, .timeout = 30) {
  uva_loop_t *loop = uvt_loop_new();
  int fds[2];
  struct rd_eof c;
  struct peer p;
  memset(&c, 0, sizeof c);
  memset(&p, 0, sizeof p);
  tcp_fd_pair(fds);
  c.s = adopt(loop, fds[1]);
  p.fd = fds[0];
  p.total = 3 * 1024 * 1024 + 17; /* far beyond high_water */
  p.close_after = 1;
  peer_start(&p, peer_writer);
  spawn(loop, step_read_to_eof, &c);
  run(loop);
  peer_join(&p);
  UVT_EQ(p.err, 0);
  cr_assert_eq(c.len, p.total, "read_to_eof: %zu of %zu", c.len, p.total);
  cr_assert_eq(c.got, p.total);
  cr_assert(pattern_ok(c.data, 0, c.got));
  free(c.data);
  UVT_CLOSE_LOOP(loop);
}

static int step_read_exactly_short(uva_task_t *t, int status, void *d) {
  struct rd *c = (struct rd *) d;
  (void) status;
  CO_BEGIN(c);
  CO_CALL(c, uva_stream_read_exactly(c->s, t, c->buf, 10));
  UVT_EQ(c->rc, UVA_EINCOMPLETE);
  /* The 5 bytes that arrived are still there. */
  UVT_OK(uva_stream_buffered(&c->buffered, c->s));
  cr_assert_eq(c->buffered, 5);
  CO_CALL(c, uva_stream_read(&c->n, c->s, t, c->buf, sizeof c->buf));
  UVT_OK(c->rc);
  cr_assert_eq(c->n, 5);
  cr_assert_eq(memcmp(c->buf, "hello", 5), 0);
  CO_CALL(c, uva_stream_read(&c->n, c->s, t, c->buf, sizeof c->buf));
  UVT_OK(c->rc);
  cr_assert_eq(c->n, 0);
  UVT_OK(uva_stream_close(c->s, NULL, NULL));
  c->eofs++;
  CO_END(c);
}

Test(stream, read_exactly_eof_first_gives_eincomplete_bytes_kept,
     .timeout = 20) {
  uva_loop_t *loop = uvt_loop_new();
  int fds[2];
  struct rd c;
  memset(&c, 0, sizeof c);
  tcp_fd_pair(fds);
  c.s = adopt(loop, fds[1]);
  send_all(fds[0], "hello", 5);
  close(fds[0]);
  spawn(loop, step_read_exactly_short, &c);
  run(loop);
  cr_assert_eq(c.eofs, 1);
  UVT_CLOSE_LOOP(loop);
}

/* Cancelling a waiting read loses no byte. A victim task waits in the
 * read (read_exactly and read_line with part of what they need already
 * buffered) and is cancelled, first with no new data, then in the same step
 * in which the rest of the data is sent. The driver then reads everything
 * itself: all 80 bytes, in order. */
enum rop { R_READ, R_EXACTLY, R_LINE };

struct cancel_ctx {
  int pc, rc;
  enum rop op;
  uva_loop_t *loop;
  uva_stream_t *s;
  int raw;
  uva_task_t *victim;
  int victim_runs, victim_status, victim_rc;
  size_t n, got, prefix;
  char vbuf[256];
  char buf[256];
};

/* Two 40-byte lines; the first 10 bytes hold no '\n'. */
static const char cancel_data[] =
    "first part|second part, the rest.......\n"
    "tail of it: 40 more bytes here.........\n";

static int victim_call(struct cancel_ctx *c, uva_task_t *t) {
  size_t n;
  switch (c->op) {
    case R_READ:
      return uva_stream_read(&n, c->s, t, c->vbuf, sizeof c->vbuf);
    case R_EXACTLY:
      return uva_stream_read_exactly(c->s, t, c->vbuf, 40);
    case R_LINE:
      return uva_stream_read_line(&n, c->s, t, c->vbuf, sizeof c->vbuf);
  }
  return UVA_EINTERNAL;
}

static int step_victim(uva_task_t *t, int status, void *d) {
  struct cancel_ctx *c = (struct cancel_ctx *) d;
  c->victim_runs++;
  c->victim_status = status;
  if (status == UVA_ECANCELED) return UVA_ECANCELED;
  c->victim_rc = victim_call(c, t);
  return c->victim_rc == UVA_EAGAIN ? UVA_TASK_PENDING : c->victim_rc;
}

static void spawn_victim(struct cancel_ctx *c) {
  c->victim_runs = 0;
  c->victim_rc = 1;
  UVT_OK(uva_task_spawn(&c->victim, c->loop, step_victim, c, NULL));
}

static void victim_reap(struct cancel_ctx *c) {
  int done = 0, res = 0;
  UVT_OK(uva_task_done(&done, c->victim));
  cr_assert(done, "the cancelled reader did not finish");
  UVT_OK(uva_task_result(&res, c->victim));
  UVT_EQ(res, UVA_ECANCELED);
  UVT_EQ(c->victim_rc, UVA_EAGAIN); /* it never completed a read */
  UVT_OK(uva_task_release(c->victim));
  c->victim = NULL;
}

static int driver_read(struct cancel_ctx *c, uva_task_t *t) {
  switch (c->op) {
    case R_READ:
      return uva_stream_read(&c->n, c->s, t, c->buf + c->got, 80 - c->got);
    case R_EXACTLY:
      c->n = 40;
      return uva_stream_read_exactly(c->s, t, c->buf + c->got, 40);
    case R_LINE:
      return uva_stream_read_line(&c->n, c->s, t, c->buf + c->got,
                                  sizeof c->buf - c->got);
  }
  return UVA_EINTERNAL;
}

static int step_cancel_driver(uva_task_t *t, int status, void *d) {
  struct cancel_ctx *c = (struct cancel_ctx *) d;
  (void) status;
  CO_BEGIN(c);
  cr_assert_eq(strlen(cancel_data), 80);
  c->prefix = c->op == R_READ ? 0 : 10;
  if (c->prefix > 0) send_all(c->raw, cancel_data, c->prefix);
  /* Round 1: cancelled while nothing new arrives. */
  spawn_victim(c);
  CO_SLEEP(c, t, 30);
  UVT_EQ(c->victim_rc, UVA_EAGAIN);
  UVT_OK(uva_task_cancel(c->victim));
  CO_SLEEP(c, t, 10);
  victim_reap(c);
  /* Round 2: the rest of the data is sent and the victim cancelled in the
   * same step. */
  spawn_victim(c);
  CO_SLEEP(c, t, 30);
  UVT_EQ(c->victim_rc, UVA_EAGAIN);
  send_all(c->raw, cancel_data + c->prefix, 80 - c->prefix);
  UVT_OK(uva_task_cancel(c->victim));
  CO_SLEEP(c, t, 30);
  victim_reap(c);
  /* Everything is still there. */
  while (c->got < 80) {
    CO_CALL(c, driver_read(c, t));
    UVT_OK(c->rc);
    cr_assert(c->n > 0);
    c->got += c->n;
  }
  cr_assert_eq(c->got, 80);
  cr_assert_eq(memcmp(c->buf, cancel_data, 80), 0,
               "bytes lost or reordered: \"%.80s\"", c->buf);
  UVT_OK(uva_stream_buffered(&c->n, c->s));
  cr_assert_eq(c->n, 0);
  UVT_OK(uva_stream_close(c->s, NULL, NULL));
  close(c->raw);
  CO_END(c);
}

static void cancel_case(enum rop op) {
  uva_loop_t *loop = uvt_loop_new();
  int fds[2];
  struct cancel_ctx c;
  memset(&c, 0, sizeof c);
  tcp_fd_pair(fds);
  c.op = op;
  c.loop = loop;
  c.s = adopt(loop, fds[1]);
  c.raw = fds[0];
  spawn(loop, step_cancel_driver, &c);
  run(loop);
  cr_assert_eq(c.got, 80);
  UVT_CLOSE_LOOP(loop);
}

Test(stream, cancel_waiting_read_loses_no_byte, .timeout = 20) {
  cancel_case(R_READ);
}

Test(stream, cancel_waiting_read_exactly_loses_no_byte, .timeout = 20) {
  cancel_case(R_EXACTLY);
}

Test(stream, cancel_waiting_read_line_loses_no_byte, .timeout = 20) {
  cancel_case(R_LINE);
}

/* A reader waits; the peer closes with SO_LINGER 0: ECONNRESET, sticky. */
static int step_reset_reader(uva_task_t *t, int status, void *d) {
  struct reset_ctx *c = (struct reset_ctx *) d;
  (void) status;
  CO_BEGIN(c);
  CO_CALL(c, uva_stream_read_exactly(c->s, t, c->buf, 4));
  UVT_OK(c->rc);
  CO_CALL(c, uva_stream_read(&c->n, c->s, t, c->buf, sizeof c->buf));
  c->rc1 = c->rc;
  CO_CALL(c, uva_stream_read(&c->n, c->s, t, c->buf, sizeof c->buf));
  c->rc2 = c->rc;
  UVT_OK(uva_stream_close(c->s, NULL, NULL));
  CO_END(c);
}

static int step_reset_peer(uva_task_t *t, int status, void *d) {
  struct side *sd = (struct side *) d;
  struct reset_ctx *c = (struct reset_ctx *) sd->c;
  (void) status;
  CO_BEGIN(sd);
  send_all(c->raw, "data", 4);
  CO_SLEEP(sd, t, 50); /* the reader now waits in read */
  close_reset(c->raw);
  CO_END(sd);
}

Test(stream, peer_reset_mid_read_econnreset, .timeout = 20) {
  uva_loop_t *loop = uvt_loop_new();
  int fds[2];
  struct reset_ctx c;
  memset(&c, 0, sizeof c);
  tcp_fd_pair(fds);
  c.s = adopt(loop, fds[1]);
  c.raw = fds[0];
  struct side sd = {0, 0, &c};
  spawn(loop, step_reset_reader, &c);
  spawn(loop, step_reset_peer, &sd);
  run(loop);
  UVT_EQ(c.rc1, UVA_ECONNRESET);
  UVT_EQ(c.rc2, UVA_ECONNRESET);
  UVT_CLOSE_LOOP(loop);
}

struct exact_eof {
  int pc, rc;
  uva_stream_t *s;
  int raw;
  size_t buffered, n;
  char buf[128];
};

static int step_exactly_waiting(uva_task_t *t, int status, void *d) {
  struct exact_eof *c = (struct exact_eof *) d;
  (void) status;
  CO_BEGIN(c);
  CO_CALL(c, uva_stream_read_exactly(c->s, t, c->buf, 100));
  UVT_EQ(c->rc, UVA_EINCOMPLETE);
  UVT_OK(uva_stream_buffered(&c->buffered, c->s));
  cr_assert_eq(c->buffered, 10);
  CO_CALL(c, uva_stream_read(&c->n, c->s, t, c->buf, sizeof c->buf));
  UVT_OK(c->rc);
  cr_assert_eq(c->n, 10);
  cr_assert_eq(memcmp(c->buf, "0123456789", 10), 0);
  UVT_OK(uva_stream_close(c->s, NULL, NULL));
  CO_END(c);
}

static int step_exactly_peer(uva_task_t *t, int status, void *d) {
  struct side *sd = (struct side *) d;
  struct exact_eof *c = (struct exact_eof *) sd->c;
  (void) status;
  CO_BEGIN(sd);
  CO_SLEEP(sd, t, 20);
  send_all(c->raw, "0123456789", 10);
  CO_SLEEP(sd, t, 30);
  close(c->raw);
  CO_END(sd);
}

Test(stream, peer_closes_during_read_exactly_eincomplete, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  int fds[2];
  struct exact_eof c;
  memset(&c, 0, sizeof c);
  tcp_fd_pair(fds);
  c.s = adopt(loop, fds[1]);
  c.raw = fds[0];
  struct side sd = {0, 0, &c};
  spawn(loop, step_exactly_waiting, &c);
  spawn(loop, step_exactly_peer, &sd);
  run(loop);
  cr_assert_eq(c.n, 10);
  UVT_CLOSE_LOOP(loop);
}

/* On Linux the loop polls stream sockets edge-triggered (loop.cpp): the
 * kernel reports bytes once, so every read that leaves some in the kernel
 * must come back for them by itself. These run under both pollers (the
 * *_libuv ctest runs set UVA_POLLER=libuv). */

/* The peer's bytes and its FIN, already in the kernel together when the
 * stream starts: one report for both. The read that takes the bytes is
 * short, and the end must still come to the next read. */
static int step_bytes_then_end(uva_task_t *t, int status, void *d) {
  struct edge_case *c = (struct edge_case *) d;
  (void) status;
  CO_BEGIN(c);
  for (;;) {
    CO_CALL(c, uva_stream_read(&c->n, c->s, t, c->buf + c->got, 4096));
    UVT_OK(c->rc);
    if (c->n == 0) break;
    c->got += c->n;
  }
  c->eof = 1;
  UVT_OK(uva_stream_close(c->s, NULL, NULL));
  CO_END(c);
}

Test(stream, end_after_bytes_in_one_report, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  struct edge_case c;
  unsigned char buf[4096];
  int fds[2];
  memset(&c, 0, sizeof c);
  c.buf = buf;
  tcp_fd_pair(fds);
  send_all(fds[0], "hello", 5);
  cr_assert_eq(shutdown(fds[0], SHUT_WR), 0);
  usleep(10000); /* both in the receive queue before the stream exists */
  c.s = adopt(loop, fds[1]);
  spawn(loop, step_bytes_then_end, &c);
  run(loop);
  close(fds[0]);
  cr_assert(c.eof, "the end never came");
  cr_assert_eq(c.got, 5);
  cr_assert_eq(memcmp(buf, "hello", 5), 0);
  UVT_CLOSE_LOOP(loop);
}

/* 300 KiB in the kernel before the first read, nothing sent after: a
 * read_exactly of all of it, then a read_line whose line is longer than a
 * read's chunk, both need several reads after one report. */
#define EDGE_BIG (300 * 1024)

static int step_exactly_then_line(uva_task_t *t, int status, void *d) {
  struct edge_case *c = (struct edge_case *) d;
  (void) status;
  CO_BEGIN(c);
  CO_CALL(c, uva_stream_read_exactly(c->s, t, c->buf, EDGE_BIG));
  UVT_OK(c->rc);
  if (!pattern_ok(c->buf, 0, EDGE_BIG)) c->bad = 1;
  UVT_OK(uva_stream_set(c->s, UVA_STREAM_LINE_LIMIT, 2 * EDGE_BIG));
  CO_CALL(c, uva_stream_read_line(&c->len, c->s, t, c->buf, 2 * EDGE_BIG));
  UVT_OK(c->rc);
  c->got = c->len;
  UVT_OK(uva_stream_close(c->s, NULL, NULL));
  CO_END(c);
}

Test(stream, reads_after_one_report_take_all_it_covered, .timeout = 20) {
  uva_loop_t *loop = uvt_loop_new();
  struct edge_case c;
  int fds[2], queued = 0;
  memset(&c, 0, sizeof c);
  c.buf = malloc(2 * EDGE_BIG);
  cr_assert_not_null(c.buf);
  unsigned char *line = malloc(EDGE_BIG);
  cr_assert_not_null(line);
  memset(line, 'x', EDGE_BIG - 1);
  line[EDGE_BIG - 1] = '\n';
  roomy_tcp_fd_pair(fds);
  send_all(fds[0], pattern(), EDGE_BIG);
  send_all(fds[0], line, EDGE_BIG);
  /* All of it queued before the stream exists: bounded, 2 s at most. */
  for (int i = 0; i < 2000 && queued < 2 * EDGE_BIG; i++) {
    cr_assert_eq(ioctl(fds[1], FIONREAD, &queued), 0);
    if (queued < 2 * EDGE_BIG) usleep(1000);
  }
  cr_assert_eq(queued, 2 * EDGE_BIG);
  c.s = adopt(loop, fds[1]);
  spawn(loop, step_exactly_then_line, &c);
  run(loop);
  close(fds[0]);
  cr_assert(!c.bad, "read_exactly: data corrupted");
  cr_assert_eq(c.got, EDGE_BIG, "read_line: %zu bytes", c.got);
  cr_assert_eq(memcmp(c.buf, line, EDGE_BIG), 0);
  free(line);
  free(c.buf);
  UVT_CLOSE_LOOP(loop);
}
