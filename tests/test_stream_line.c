/* Line reads (uva_stream_read_line): delimiters, a line longer than the
 * caller's buffer or the line limit, a line longer than the high-water
 * mark, and a limit of SIZE_MAX.
 *
 * Waiting follows the "call again" protocol: a call that cannot complete
 * registers the task and returns UVA_EAGAIN, the step returns
 * UVA_TASK_PENDING, and the repeated call after the wake-up completes.
 * Helpers: support.h. */
#include "support.h"

/* read_line: collects the lines into `all`, separated by '|'. */
static int step_read_lines(uva_task_t *t, int status, void *d) {
  struct rd *c = (struct rd *) d;
  (void) status;
  CO_BEGIN(c);
  for (;;) {
    CO_CALL(c, uva_stream_read_line(&c->n, c->s, t, c->buf, sizeof c->buf));
    UVT_OK(c->rc);
    if (c->n == 0) break;
    memcpy(c->all + c->total, c->buf, c->n);
    c->total += c->n;
    c->all[c->total++] = '|';
    c->reads++;
  }
  UVT_OK(uva_stream_close(c->s, NULL, NULL));
  CO_END(c);
}

static void lines_case(int delim, const char *input, const char *want) {
  uva_loop_t *loop = uvt_loop_new();
  int fds[2];
  struct rd c;
  memset(&c, 0, sizeof c);
  tcp_fd_pair(fds);
  c.s = adopt(loop, fds[1]);
  if (delim >= 0)
    UVT_OK(uva_stream_set(c.s, UVA_STREAM_DELIMITER, (size_t) delim));
  send_all(fds[0], input, strlen(input));
  close(fds[0]);
  spawn(loop, step_read_lines, &c);
  run(loop);
  cr_assert_str_eq(c.all, want);
  UVT_CLOSE_LOOP(loop);
}

Test(stream, read_line_default_newline, .timeout = 20) {
  lines_case(-1, "a\nbb\n\nccc", "a\n|bb\n|\n|ccc|");
}

Test(stream, read_line_custom_delimiter, .timeout = 20) {
  lines_case(';', "x;yy;zz\nw", "x;|yy;|zz\nw|");
}

/* A line longer than line_limit: UVA_ELINETOOLONG, and the core does not
 * buffer the flood (reading stays paused). */
struct longline {
  int pc, rc;
  uva_stream_t *s;
  size_t n, b1, b2;
  int rc1, rc2;
  char buf[256];
};

static int step_long_line(uva_task_t *t, int status, void *d) {
  struct longline *c = (struct longline *) d;
  (void) status;
  CO_BEGIN(c);
  CO_CALL(c, uva_stream_read_line(&c->n, c->s, t, c->buf, sizeof c->buf));
  c->rc1 = c->rc;
  UVT_OK(uva_stream_buffered(&c->b1, c->s));
  CO_SLEEP(c, t, 200); /* the peer keeps sending meanwhile */
  UVT_OK(uva_stream_buffered(&c->b2, c->s));
  /* Nothing was consumed: the same error again. */
  CO_CALL(c, uva_stream_read_line(&c->n, c->s, t, c->buf, sizeof c->buf));
  c->rc2 = c->rc;
  /* The bytes are readable with read. */
  CO_CALL(c, uva_stream_read(&c->n, c->s, t, c->buf, sizeof c->buf));
  UVT_OK(c->rc);
  cr_assert(c->n > 0 && pattern_ok(c->buf, 0, c->n));
  UVT_OK(uva_stream_abort(c->s, NULL, NULL));
  CO_END(c);
}

Test(stream, read_line_too_long_fails_without_growing_memory, .timeout = 30) {
  uva_loop_t *loop = uvt_loop_new();
  int fds[2];
  struct longline c;
  struct peer p;
  memset(&c, 0, sizeof c);
  memset(&p, 0, sizeof p);
  tcp_fd_pair(fds);
  c.s = adopt(loop, fds[1]);
  UVT_OK(uva_stream_set(c.s, UVA_STREAM_LINE_LIMIT, 1000));
  p.fd = fds[0];
  p.total = 64 * 1024 * 1024;
  p.close_after = 1;
  /* The pattern's bytes run 0..250: 255 never occurs, so it is one line. */
  UVT_OK(uva_stream_set(c.s, UVA_STREAM_DELIMITER, 255));
  peer_start(&p, peer_writer);
  spawn(loop, step_long_line, &c);
  run(loop);
  peer_join(&p);
  UVT_EQ(c.rc1, UVA_ELINETOOLONG);
  UVT_EQ(c.rc2, UVA_ELINETOOLONG);
  cr_assert(c.b1 > 1000 && c.b1 <= 256 * 1024,
            "buffered %zu after ELINETOOLONG", c.b1);
  cr_assert(c.b2 <= 256 * 1024, "buffer grew to %zu while the line went on",
            c.b2);
  cr_assert(p.done < p.total, "the whole flood was taken in");
  UVT_CLOSE_LOOP(loop);
}

struct enobufs_ctx {
  int pc, rc;
  uva_stream_t *s;
  size_t n, n_small;
  int rc_small;
  char small[10];
  char big[200];
};

static int step_read_line_enobufs(uva_task_t *t, int status, void *d) {
  struct enobufs_ctx *c = (struct enobufs_ctx *) d;
  (void) status;
  CO_BEGIN(c);
  CO_CALL(
      c, uva_stream_read_line(&c->n_small, c->s, t, c->small, sizeof c->small));
  c->rc_small = c->rc;
  CO_CALL(c, uva_stream_read_line(&c->n, c->s, t, c->big, sizeof c->big));
  UVT_OK(c->rc);
  UVT_OK(uva_stream_close(c->s, NULL, NULL));
  CO_END(c);
}

Test(stream, read_line_small_buffer_enobufs_then_success, .timeout = 20) {
  uva_loop_t *loop = uvt_loop_new();
  int fds[2];
  char line[100];
  struct enobufs_ctx c;
  memset(&c, 0, sizeof c);
  memset(line, 'x', sizeof line);
  line[99] = '\n';
  tcp_fd_pair(fds);
  c.s = adopt(loop, fds[1]);
  send_all(fds[0], line, sizeof line);
  close(fds[0]);
  spawn(loop, step_read_line_enobufs, &c);
  run(loop);
  UVT_EQ(c.rc_small, UVA_ENOBUFS);
  cr_assert_eq(c.n_small, 100, "*len on ENOBUFS: %zu", c.n_small);
  cr_assert_eq(c.n, 100);
  cr_assert_eq(memcmp(c.big, line, 100), 0);
  UVT_CLOSE_LOOP(loop);
}

/* A line longer than high_water but within line_limit is read whole. */
struct big_line {
  int pc, rc;
  uva_stream_t *s;
  size_t n;
  char *buf;
  size_t buflen;
};

static int step_big_line(uva_task_t *t, int status, void *d) {
  struct big_line *c = (struct big_line *) d;
  (void) status;
  CO_BEGIN(c);
  CO_CALL(c, uva_stream_read_line(&c->n, c->s, t, c->buf, c->buflen));
  UVT_OK(c->rc);
  UVT_OK(uva_stream_close(c->s, NULL, NULL));
  CO_END(c);
}

Test(stream, read_line_longer_than_high_water_within_limit, .timeout = 20) {
  uva_loop_t *loop = uvt_loop_new();
  int fds[2];
  struct big_line c;
  struct peer p;
  size_t len = 200 * 1024;
  unsigned char *line = malloc(len);
  memset(line, 'a', len - 1);
  line[len - 1] = '\n';
  memset(&c, 0, sizeof c);
  memset(&p, 0, sizeof p);
  tcp_fd_pair(fds);
  c.s = adopt(loop, fds[1]);
  UVT_OK(uva_stream_set(c.s, UVA_STREAM_HIGH_WATER, 4096));
  UVT_OK(uva_stream_set(c.s, UVA_STREAM_LINE_LIMIT, 1024 * 1024));
  c.buflen = len + 10;
  c.buf = malloc(c.buflen);
  p.fd = fds[0];
  p.total = len;
  p.data = line;
  p.close_after = 1;
  peer_start(&p, peer_writer);
  spawn(loop, step_big_line, &c);
  run(loop);
  peer_join(&p);
  cr_assert_eq(c.n, len);
  cr_assert_eq(memcmp(c.buf, line, len), 0);
  free(c.buf);
  free(line);
  UVT_CLOSE_LOOP(loop);
}

/* ---- limits at SIZE_MAX ------------------------------------------------- */

struct huge_line {
  uva_stream_t *s;
  int pc, rc;
  size_t n;
  char buf[4096];
  int peer; /* sends the line's second part */
  const char *rest;
  size_t rest_len;
  struct side sender;
};

static int step_huge_line_sender(uva_task_t *t, int status, void *d) {
  struct huge_line *c = (struct huge_line *) d;
  (void) status;
  CO_BEGIN(&c->sender);
  CO_SLEEP(&c->sender, t, 20); /* the reader waits with part one read */
  send_all(c->peer, c->rest, c->rest_len);
  CO_END(&c->sender);
}

static int step_huge_line(uva_task_t *t, int status, void *d) {
  struct huge_line *c = (struct huge_line *) d;
  (void) status;
  CO_BEGIN(c);
  CO_CALL(c, uva_stream_read_line(&c->n, c->s, t, c->buf, sizeof c->buf));
  CO_END(c);
}

/* A line limit of SIZE_MAX means no limit: the wait for more asked for
 * line_limit + 1 bytes, which wrapped to 0, so reading stopped at the
 * high-water mark before the newline and read_line never returned. */
Test(stream, read_line_with_size_max_line_limit, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  struct huge_line c;
  char line[3001];
  int sp[2];
  memset(&c, 0, sizeof c);
  cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sp), 0);
  memset(line, 'a', sizeof line - 1);
  line[sizeof line - 1] = '\n';
  send_all(sp[1], line, 1000); /* part one: more than high water */
  c.peer = sp[1];
  c.rest = line + 1000;
  c.rest_len = sizeof line - 1000;
  c.s = adopt(loop, sp[0]);
  UVT_OK(uva_stream_set(c.s, UVA_STREAM_HIGH_WATER, 100));
  UVT_OK(uva_stream_set(c.s, UVA_STREAM_LINE_LIMIT, SIZE_MAX));
  spawn(loop, step_huge_line, &c);
  spawn(loop, step_huge_line_sender, &c);
  run(loop);
  UVT_EQ(c.rc, 0);
  cr_assert_eq(c.n, sizeof line);
  cr_assert_eq(memcmp(c.buf, line, sizeof line), 0);
  UVT_OK(uva_stream_close(c.s, NULL, NULL));
  run(loop);
  close(sp[1]);
  UVT_CLOSE_LOOP(loop);
}
