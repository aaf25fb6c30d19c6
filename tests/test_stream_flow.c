/* Flow control of reads: reading pauses at the high-water mark and goes on
 * when the buffer empties, reads beyond it, a cancelled read restores it,
 * RSS stays bounded under a slow reader; how a young stream reads ahead and
 * an outgrown one reads two chunks at once.
 *
 * Waiting follows the "call again" protocol: a call that cannot complete
 * registers the task and returns UVA_EAGAIN, the step returns
 * UVA_TASK_PENDING, and the repeated call after the wake-up completes.
 * Helpers: support.h. */
#include "support.h"

/* A young stream whose reads fill the caller's buffer reads ahead into its
 * own, so that Linux's receive-buffer autotuning sees how fast the
 * application reads (stream_engine.h, YOUNG_READS_AHEAD = 8 times); after that,
 * reads go straight to the caller's buffer again. Every byte arrives in
 * order either way. */
struct rd_ahead {
  int pc, rc;
  uva_stream_t *s;
  int fd, round;
  bool from_empty;
  size_t n, got, buffered;
  int aheads, direct_after;
  unsigned char sent[24 * 1024];
  unsigned char buf[8 * 1024];
};

static int step_read_ahead(uva_task_t *t, int status, void *d) {
  struct rd_ahead *c = (struct rd_ahead *) d;
  (void) status;
  CO_BEGIN(c);
  for (c->round = 0; c->round < 12; c->round++) {
    for (size_t i = 0; i < sizeof c->sent; i++)
      c->sent[i] = (unsigned char) (c->round * 31 + i * 7);
    send_all(c->fd, c->sent, sizeof c->sent);
    for (c->got = 0; c->got < sizeof c->sent; c->got += c->n) {
      UVT_OK(uva_stream_buffered(&c->buffered, c->s));
      c->from_empty = c->buffered == 0;
      CO_CALL(c, uva_stream_read(&c->n, c->s, t, c->buf, sizeof c->buf));
      UVT_OK(c->rc);
      cr_assert(c->n > 0 && c->got + c->n <= sizeof c->sent);
      cr_assert(memcmp(c->buf, c->sent + c->got, c->n) == 0,
                "round %d: bytes out of order at %zu", c->round, c->got);
      if (c->from_empty) { /* a read from the kernel: direct or ahead */
        UVT_OK(uva_stream_buffered(&c->buffered, c->s));
        if (c->buffered > 0)
          c->aheads++;
        else if (c->aheads > 0)
          c->direct_after++;
      }
    }
  }
  UVT_OK(uva_stream_close(c->s, NULL, NULL));
  CO_END(c);
}

Test(stream, young_stream_reads_ahead_past_an_outgrown_buffer, .timeout = 20) {
  uva_loop_t *loop = uvt_loop_new();
  int fds[2];
  struct rd_ahead c;
  memset(&c, 0, sizeof c);
  tcp_fd_pair(fds);
  c.s = adopt(loop, fds[1]);
  c.fd = fds[0];
  spawn(loop, step_read_ahead, &c);
  run(loop);
  close(fds[0]);
  cr_assert_eq(c.aheads, 8, "read ahead %d times", c.aheads);
  /* 4 rounds of 24 KiB after the eighth, each 3 direct 8 KiB reads */
  cr_assert_eq(c.direct_after, 12, "direct reads after: %d", c.direct_after);
  UVT_CLOSE_LOOP(loop);
}

/* A reader that peeks: once a read from the kernel fills a whole 64 KiB
 * chunk of the stream's buffer, later reads take up to two chunks at once,
 * for good (they once went back to one chunk after a young stream's few:
 * a 100 KiB message then came in two reads and a zero-copy echo wrote it
 * back in two sends, bench/README.md). Rounds of 160 KiB, all in the
 * kernel before the reader looks: 64 + 96 KiB, then 128 + 32 KiB per
 * round, in the first rounds as in the last. */
#define PEEK_ROUND (160 * 1024)

struct peek_ahead {
  int pc, rc;
  uva_stream_t *s;
  int fd, round;
  const void *p;
  size_t n, got, off, buffered;
  size_t largest_early, largest_late;
};

static int step_peek_ahead(uva_task_t *t, int status, void *d) {
  struct peek_ahead *c = (struct peek_ahead *) d;
  (void) status;
  CO_BEGIN(c);
  for (c->round = 0; c->round < 12; c->round++) {
    send_all(c->fd, pattern() + c->off % 251, PEEK_ROUND);
    for (c->got = 0; c->got < PEEK_ROUND; c->got += c->n) {
      UVT_OK(uva_stream_buffered(&c->buffered, c->s));
      CO_CALL(c, uva_stream_peek(&c->p, &c->n, c->s, t));
      UVT_OK(c->rc);
      cr_assert(c->n > 0 && c->got + c->n <= PEEK_ROUND);
      cr_assert(pattern_ok(c->p, c->off, c->n),
                "round %d: bytes out of order at %zu", c->round, c->got);
      if (c->buffered == 0) { /* this peek read from the kernel */
        size_t *largest = c->round < 6 ? &c->largest_early : &c->largest_late;
        if (c->n > *largest) *largest = c->n;
      }
      c->off += c->n;
      UVT_OK(uva_stream_consume(c->s, c->n));
    }
  }
  UVT_OK(uva_stream_close(c->s, NULL, NULL));
  CO_END(c);
}

Test(stream, outgrown_stream_peeks_read_two_chunks_at_once, .timeout = 20) {
  uva_loop_t *loop = uvt_loop_new();
  int fds[2];
  struct peek_ahead c;
  memset(&c, 0, sizeof c);
  roomy_tcp_fd_pair(fds); /* room in the kernel for a whole round */
  c.s = adopt(loop, fds[1]);
  c.fd = fds[0];
  spawn(loop, step_peek_ahead, &c);
  run(loop);
  close(fds[0]);
  cr_assert_eq(c.largest_early, 128 * 1024, "early reads: at most %zu",
               c.largest_early);
  cr_assert_eq(c.largest_late, 128 * 1024, "later reads: at most %zu",
               c.largest_late);
  UVT_CLOSE_LOOP(loop);
}

/* The young reads' size stays right while another task waits in
 * read_to_eof, which lifts the flow-control limit to SIZE_MAX (the size
 * was once computed as that limit plus a chunk, which wrapped to 64 KiB
 * less one byte). 320 KiB wait in the kernel; one task peeks until it has
 * had 256 KiB: a read that fills a 64 KiB chunk comes first (the core's
 * or libuv's), then young reads of 128 KiB. The other task gets the rest
 * at the end of the stream. */
#define EOF_PEEK_SENT (320 * 1024)
#define EOF_PEEK_TAKEN (256 * 1024)

struct eof_peek {
  int fd;
  uva_stream_t *s;
  size_t taken, largest, rest;
  int bad, finished;
};

struct eof_waiter {
  int pc, rc;
  struct eof_peek *c;
  size_t len, n;
  unsigned char buf[EOF_PEEK_SENT];
};

struct eof_peeker {
  int pc, rc;
  struct eof_peek *c;
  const void *p;
  size_t n;
};

static int step_eof_waiter(uva_task_t *t, int status, void *d) {
  struct eof_waiter *w = (struct eof_waiter *) d;
  (void) status;
  CO_BEGIN(w);
  CO_CALL(w, uva_stream_read_to_eof(&w->len, w->c->s, t));
  UVT_OK(w->rc);
  w->c->rest = w->len;
  if (w->len > 0) {
    CO_CALL(w, uva_stream_read(&w->n, w->c->s, t, w->buf, sizeof w->buf));
    UVT_OK(w->rc);
    if (w->n != w->len || !pattern_ok(w->buf, w->c->taken, w->n)) w->c->bad = 1;
  }
  w->c->finished = 1;
  UVT_OK(uva_stream_close(w->c->s, NULL, NULL));
  CO_END(w);
}

static int step_eof_peeker(uva_task_t *t, int status, void *d) {
  struct eof_peeker *b = (struct eof_peeker *) d;
  struct eof_peek *c = b->c;
  (void) status;
  CO_BEGIN(b);
  while (c->taken < EOF_PEEK_TAKEN) {
    CO_CALL(b, uva_stream_peek(&b->p, &b->n, c->s, t));
    UVT_OK(b->rc);
    cr_assert(b->n > 0);
    if (!pattern_ok(b->p, c->taken, b->n)) c->bad = 1;
    if (b->n > c->largest) c->largest = b->n;
    c->taken += b->n;
    UVT_OK(uva_stream_consume(c->s, b->n));
  }
  cr_assert_eq(shutdown(c->fd, SHUT_WR), 0); /* the waiter's EOF */
  CO_END(b);
}

Test(stream, young_read_beside_a_reader_waiting_for_eof, .timeout = 20) {
  uva_loop_t *loop = uvt_loop_new();
  int fds[2], queued = 0;
  struct eof_peek c;
  struct eof_waiter *w = calloc(1, sizeof *w);
  struct eof_peeker b;
  cr_assert_not_null(w);
  memset(&c, 0, sizeof c);
  memset(&b, 0, sizeof b);
  roomy_tcp_fd_pair(fds);
  send_all(fds[0], pattern(), EOF_PEEK_SENT);
  /* All of it in the receive queue before the reads (the window opens as
   * the bytes come): bounded, 2 s at most. */
  for (int i = 0; i < 2000 && queued < EOF_PEEK_SENT; i++) {
    cr_assert_eq(ioctl(fds[1], FIONREAD, &queued), 0);
    if (queued < EOF_PEEK_SENT) usleep(1000);
  }
  cr_assert_eq(queued, EOF_PEEK_SENT);
  c.s = adopt(loop, fds[1]);
  c.fd = fds[0];
  w->c = b.c = &c;
  spawn(loop, step_eof_waiter, w);
  spawn(loop, step_eof_peeker, &b);
  run(loop);
  close(fds[0]);
  free(w);
  cr_assert(c.finished && !c.bad);
  cr_assert_eq(c.taken + c.rest, EOF_PEEK_SENT, "%zu + %zu bytes", c.taken,
               c.rest);
  /* Polled edge-triggered, the reads the waiter's call makes take all the
   * kernel holds (its limit is lifted), and a peek may see all of it. */
  if (uvt_edge_poller())
    cr_assert_leq(c.largest, EOF_PEEK_SENT, "largest read %zu", c.largest);
  else
    cr_assert_eq(c.largest, 128 * 1024, "largest read %zu", c.largest);
  UVT_CLOSE_LOOP(loop);
}

struct flow {
  int pc, rc;
  uva_stream_t *s;
  size_t n, b1, b2, got, total, max_buffered;
  int bad;
  char buf[64 * 1024];
};

static int step_flow_small(uva_task_t *t, int status, void *d) {
  struct flow *c = (struct flow *) d;
  (void) status;
  CO_BEGIN(c);
  CO_SLEEP(c, t, 300); /* nobody reads: the core must stop reading */
  UVT_OK(uva_stream_buffered(&c->b1, c->s));
  CO_SLEEP(c, t, 200);
  UVT_OK(uva_stream_buffered(&c->b2, c->s));
  /* Reading resumes as we consume: everything arrives, intact. */
  for (;;) {
    CO_CALL(c, uva_stream_read(&c->n, c->s, t, c->buf, sizeof c->buf));
    UVT_OK(c->rc);
    if (c->n == 0) break;
    if (!pattern_ok(c->buf, c->got, c->n)) c->bad = 1;
    c->got += c->n;
  }
  UVT_OK(uva_stream_close(c->s, NULL, NULL));
  CO_END(c);
}

/* Run `step` on a TCP stream with high_water 16 KiB that a peer thread
 * writes `total` bytes of the pattern into, then closes. */
static void run_flow(uva_task_step_cb step, struct flow *c, struct peer *p,
                     size_t total) {
  uva_loop_t *loop = uvt_loop_new();
  int fds[2];
  memset(p, 0, sizeof *p);
  tcp_fd_pair(fds);
  c->s = adopt(loop, fds[1]);
  UVT_OK(uva_stream_set(c->s, UVA_STREAM_HIGH_WATER, 16 * 1024));
  p->fd = fds[0];
  p->total = total;
  p->close_after = 1;
  peer_start(p, peer_writer);
  spawn(loop, step, c);
  run(loop);
  peer_join(p);
  UVT_CLOSE_LOOP(loop);
}

Test(stream, reading_pauses_at_high_water, .timeout = 30) {
  struct flow *c = calloc(1, sizeof *c);
  struct peer p;
  run_flow(step_flow_small, c, &p, 32 * 1024 * 1024);
  cr_assert(c->b1 >= 16 * 1024, "buffered %zu: reading stopped too early",
            c->b1);
  cr_assert(c->b1 <= 16 * 1024 + 128 * 1024,
            "buffered %zu with high_water 16 KiB", c->b1);
  cr_assert_eq(c->b2, c->b1, "the buffer grew from %zu to %zu while paused",
               c->b1, c->b2);
  cr_assert_eq(c->got, p.total);
  cr_assert(!c->bad, "data corrupted");
  free(c);
}

/* A reader at the limit: the core pauses reading while high_water bytes
 * are buffered (softly, without leaving the poll, while the reader drains
 * the buffer in the same pass; for real when the buffer stays full into a
 * later poll). Small and large reads alike get every byte in order, and the
 * buffer never grows past high_water plus one read. */
static int step_flow_mixed(uva_task_t *t, int status, void *d) {
  struct flow *c = (struct flow *) d;
  (void) status;
  CO_BEGIN(c);
  for (;;) {
    UVT_OK(uva_stream_buffered(&c->b1, c->s));
    if (c->b1 > c->max_buffered) c->max_buffered = c->b1;
    /* Mostly small reads, which leave the buffer full across passes;
     * every 16th read takes all there is. */
    c->total = (c->b2++ % 16 == 0) ? sizeof c->buf : 1000;
    CO_CALL(c, uva_stream_read(&c->n, c->s, t, c->buf, c->total));
    UVT_OK(c->rc);
    if (c->n == 0) break;
    if (!pattern_ok(c->buf, c->got, c->n)) c->bad = 1;
    c->got += c->n;
  }
  UVT_OK(uva_stream_close(c->s, NULL, NULL));
  CO_END(c);
}

Test(stream, reader_at_high_water_gets_everything_bounded, .timeout = 60) {
  struct flow *c = calloc(1, sizeof *c);
  struct peer p;
  run_flow(step_flow_mixed, c, &p, 8 * 1024 * 1024 + 3);
  UVT_EQ(p.err, 0);
  cr_assert_eq(c->got, p.total, "received %zu of %zu", c->got, p.total);
  cr_assert(!c->bad, "data corrupted");
  cr_assert(c->max_buffered <= 16 * 1024 + 64 * 1024,
            "buffered %zu with high_water 16 KiB", c->max_buffered);
  free(c);
}

/* A reader that empties a buffer refilled to high_water gets the bytes the
 * kernel still holds at once, without waiting for the next poll: the
 * second peek below answers with the rest instead of UVA_EAGAIN. */
struct read_on {
  int pc, rc;
  uva_stream_t *s;
  const void *p;
  size_t n, first, second, total;
  int again_rc;
  int bad;
};

static int step_read_on(uva_task_t *t, int status, void *d) {
  struct read_on *c = (struct read_on *) d;
  (void) status;
  CO_BEGIN(c);
  CO_CALL(c, uva_stream_peek(&c->p, &c->n, c->s, t));
  UVT_OK(c->rc);
  c->first = c->n;
  if (!pattern_ok(c->p, 0, c->n)) c->bad = 1;
  UVT_OK(uva_stream_consume(c->s, c->n));
  /* Not CO_CALL: this call must not wait. */
  c->again_rc = uva_stream_peek(&c->p, &c->n, c->s, t);
  if (c->again_rc == 0) {
    c->second = c->n;
    if (!pattern_ok(c->p, c->first, c->n)) c->bad = 1;
    UVT_OK(uva_stream_consume(c->s, c->n));
  }
  /* Read the rest (if any) the usual way, so the peer's bytes all arrive. */
  c->total = c->first + c->second;
  while (c->total < 80 * 1024) {
    CO_CALL(c, uva_stream_peek(&c->p, &c->n, c->s, t));
    UVT_OK(c->rc);
    if (c->n == 0) break;
    c->total += c->n;
    UVT_OK(uva_stream_consume(c->s, c->n));
  }
  UVT_OK(uva_stream_close(c->s, NULL, NULL));
  CO_END(c);
}

Test(stream, emptying_a_full_buffer_reads_on_at_once, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  int fds[2];
  struct read_on c;
  memset(&c, 0, sizeof c);
  tcp_fd_pair(fds);
  /* 80 KiB wait in the kernel before the loop first polls: its first read
   * fills the 64 KiB of high_water, 16 KiB stay behind. */
  size_t sent = 0;
  while (sent < 80 * 1024) {
    ssize_t k =
        send(fds[0], pattern() + sent % 251, 80 * 1024 - sent, MSG_NOSIGNAL);
    cr_assert(k > 0, "send: %s", strerror(errno));
    sent += (size_t) k;
  }
  c.s = adopt(loop, fds[1]);
  spawn(loop, step_read_on, &c);
  run(loop);
  close(fds[0]);
  cr_assert_eq(c.first, 64 * 1024, "first peek: %zu bytes", c.first);
  UVT_EQ(c.again_rc, 0);
  cr_assert_eq(c.second, 16 * 1024, "second peek: %zu bytes", c.second);
  cr_assert_eq(c.total, 80 * 1024);
  cr_assert(!c.bad, "data corrupted");
  UVT_CLOSE_LOOP(loop);
}

/* read_exactly may ask for more than high_water: reading goes on until
 * the request can be served. */
struct big_exact {
  int pc, rc;
  uva_stream_t *s;
  size_t n;
  unsigned char *buf;
};

static int step_big_exactly(uva_task_t *t, int status, void *d) {
  struct big_exact *c = (struct big_exact *) d;
  (void) status;
  CO_BEGIN(c);
  CO_CALL(c, uva_stream_read_exactly(c->s, t, c->buf, c->n));
  UVT_OK(c->rc);
  UVT_OK(uva_stream_close(c->s, NULL, NULL));
  CO_END(c);
}

Test(stream, read_exactly_beyond_high_water, .timeout = 20) {
  uva_loop_t *loop = uvt_loop_new();
  int fds[2];
  struct big_exact c;
  struct peer p;
  memset(&c, 0, sizeof c);
  memset(&p, 0, sizeof p);
  tcp_fd_pair(fds);
  c.s = adopt(loop, fds[1]);
  UVT_OK(uva_stream_set(c.s, UVA_STREAM_HIGH_WATER, 16 * 1024));
  c.n = 1024 * 1024;
  c.buf = malloc(c.n);
  p.fd = fds[0];
  p.total = c.n;
  p.close_after = 1;
  peer_start(&p, peer_writer);
  spawn(loop, step_big_exactly, &c);
  run(loop);
  peer_join(&p);
  cr_assert(pattern_ok(c.buf, 0, c.n));
  free(c.buf);
  UVT_CLOSE_LOOP(loop);
}

/* Flow control survives a cancelled read_to_eof or a cancelled large
 * read_exactly: once no read waits, reading pauses at high_water again. */
struct cancel_flow {
  int pc, rc;
  uva_loop_t *loop;
  uva_stream_t *s;
  int exactly; /* the victim: read_exactly(8 MiB) instead of read_to_eof */
  uva_task_t *victim;
  size_t n, buffered, got;
  int bad;
  unsigned char *vbuf;
  char buf[64 * 1024];
};

static int step_flow_victim(uva_task_t *t, int status, void *d) {
  struct cancel_flow *c = (struct cancel_flow *) d;
  size_t n;
  int rc;
  if (status == UVA_ECANCELED) return status;
  rc = c->exactly ? uva_stream_read_exactly(c->s, t, c->vbuf, 8 << 20)
                  : uva_stream_read_to_eof(&n, c->s, t);
  return rc == UVA_EAGAIN ? UVA_TASK_PENDING : rc;
}

static int step_cancel_flow(uva_task_t *t, int status, void *d) {
  struct cancel_flow *c = (struct cancel_flow *) d;
  (void) status;
  CO_BEGIN(c);
  UVT_OK(uva_task_spawn(&c->victim, c->loop, step_flow_victim, c, NULL));
  CO_SLEEP(c, t, 20);
  UVT_OK(uva_task_cancel(c->victim));
  CO_SLEEP(c, t, 400); /* the peer floods from 100 ms on */
  UVT_OK(uva_stream_buffered(&c->buffered, c->s));
  {
    int res = 0;
    UVT_OK(uva_task_result(&res, c->victim));
    UVT_EQ(res, UVA_ECANCELED);
    UVT_OK(uva_task_release(c->victim));
  }
  for (;;) { /* drain it all so the peer can finish */
    CO_CALL(c, uva_stream_read(&c->n, c->s, t, c->buf, sizeof c->buf));
    UVT_OK(c->rc);
    if (c->n == 0) break;
    if (!pattern_ok(c->buf, c->got, c->n)) c->bad = 1;
    c->got += c->n;
  }
  UVT_OK(uva_stream_close(c->s, NULL, NULL));
  CO_END(c);
}

static void cancel_flow_case(int exactly) {
  uva_loop_t *loop = uvt_loop_new();
  int fds[2];
  struct cancel_flow *c = calloc(1, sizeof *c);
  struct peer p;
  memset(&p, 0, sizeof p);
  tcp_fd_pair(fds);
  c->loop = loop;
  c->exactly = exactly;
  c->vbuf = malloc(8 << 20);
  c->s = adopt(loop, fds[1]);
  UVT_OK(uva_stream_set(c->s, UVA_STREAM_HIGH_WATER, 16 * 1024));
  p.fd = fds[0];
  p.total = 32 * 1024 * 1024;
  p.delay_ms = 100; /* after the cancel */
  p.close_after = 1;
  peer_start(&p, peer_writer);
  spawn(loop, step_cancel_flow, c);
  run(loop);
  peer_join(&p);
  size_t got = c->got, buffered = c->buffered;
  int bad = c->bad;
  free(c->vbuf);
  free(c);
  UVT_CLOSE_LOOP(loop);
  cr_assert_eq(got, p.total);
  cr_assert(!bad);
  cr_assert(buffered <= 16 * 1024 + 128 * 1024,
            "%zu bytes buffered with high_water 16 KiB after the cancelled "
            "%s: flow control is off",
            buffered, exactly ? "read_exactly(8 MiB)" : "read_to_eof");
}

Test(stream, cancelled_read_to_eof_restores_flow_control, .timeout = 30) {
  cancel_flow_case(0);
}

Test(stream, cancelled_read_exactly_restores_flow_control, .timeout = 30) {
  cancel_flow_case(1);
}

/* The test: 1 GiB sent as fast as possible by another process to a
 * slow reader grows this process's peak RSS by less than 16 MiB. */
#define GIB ((size_t) 1 << 30)

static int step_slow_reader(uva_task_t *t, int status, void *d) {
  struct flow *c = (struct flow *) d;
  (void) status;
  CO_BEGIN(c);
  for (;;) {
    CO_CALL(c, uva_stream_read(&c->n, c->s, t, c->buf, 16 * 1024));
    UVT_OK(c->rc);
    if (c->n == 0) break;
    if (!c->bad && memcmp(c->buf, pattern() + c->got % 251, c->n) != 0)
      c->bad = 1;
    UVT_OK(uva_stream_buffered(&c->b1, c->s));
    if (c->b1 > c->max_buffered) c->max_buffered = c->b1;
    c->got += c->n;
    if (c->got / (64 * 1024) != (c->got - c->n) / (64 * 1024))
      CO_SLEEP(c, t, 1); /* slow: 1 ms per 64 KiB */
  }
  UVT_OK(uva_stream_close(c->s, NULL, NULL));
  CO_END(c);
}

static long maxrss_kib(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss;
}

Test(stream, flow_control_1gib_slow_reader_bounded_rss, .timeout = 150) {
  int fds[2];
  tcp_fd_pair(fds);
  (void) pattern();
  pid_t pid = fork();
  cr_assert(pid >= 0);
  if (pid == 0) { /* the sender: its memory does not count */
    size_t done = 0;
    close(fds[1]);
    while (done < GIB) {
      size_t k = GIB - done < PAT_CHUNK ? GIB - done : PAT_CHUNK;
      ssize_t n = send(fds[0], pattern() + done % 251, k, MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) _exit(1);
      done += (size_t) n;
    }
    close(fds[0]);
    _exit(0);
  }
  close(fds[0]);
  uva_loop_t *loop = uvt_loop_new();
  struct flow *c = calloc(1, sizeof *c);
  cr_assert_not_null(c);
  memset(c->buf, 1, sizeof c->buf);
  c->s = adopt(loop, fds[1]);
  spawn(loop, step_slow_reader, c);
  long before = maxrss_kib();
  double t0 = uvt_ms();
  run(loop);
  double secs = (uvt_ms() - t0) / 1e3;
  long after = maxrss_kib();
  int st = 0;
  cr_assert_eq(waitpid(pid, &st, 0), pid);
  cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "sender failed");
  cr_log_info(
      "1 GiB to a slow reader: peak RSS %ld KiB -> %ld KiB "
      "(+%ld KiB), max buffered %zu bytes, %.1f s\n",
      before, after, after - before, c->max_buffered, secs);
  fprintf(stderr,
          "[flow] 1 GiB to a slow reader: peak RSS %ld KiB -> %ld KiB "
          "(+%ld KiB), max buffered %zu bytes, %.1f s\n",
          before, after, after - before, c->max_buffered, secs);
  cr_assert_eq(c->got, GIB, "received %zu of %zu", c->got, GIB);
  cr_assert(!c->bad, "data corrupted");
  cr_assert(after - before < 16 * 1024, "peak RSS grew by %ld KiB",
            after - before);
  cr_assert(c->max_buffered <= 64 * 1024 + 128 * 1024,
            "the core buffered %zu bytes (high_water 64 KiB)", c->max_buffered);
  free(c);
  UVT_CLOSE_LOOP(loop);
}
