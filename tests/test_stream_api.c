/* Streams, second part (uvasync.h "Streams"): vectored writes
 * (uva_stream_writev), reads up to a separator (uva_stream_read_until), the
 * descriptor (uva_stream_fileno), the read side's state
 * (uva_stream_read_state, uva_stream_feed_eof), and read_line when the
 * connection fails in the middle of a line.
 *
 * Steps are small state machines (co.h); peers are plain POSIX sockets. */
#include "support.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/un.h>
#include <unistd.h>

/* ---- raw sockets (tcp_fd_pair, close_reset, adopt, send_all: support.h) */

/* Read from a blocking fd until `len` bytes or the end. */
static size_t recv_all(int fd, char *buf, size_t len) {
  size_t got = 0;
  while (got < len) {
    ssize_t n = recv(fd, buf + got, len - got, 0);
    if (n <= 0) break;
    got += (size_t) n;
  }
  return got;
}

/* ---- read_line after a partial line and a reset ------------------------ */

/* The peer sends "partial" (no line end) and resets the connection. The
 * line never completed: read_line fails with the reset (as asyncio's
 * readline raises ConnectionResetError), instead of passing the fragment
 * off as a last line, and the fragment stays buffered. */
struct reset_line {
  int pc, rc;
  uva_stream_t *s;
  int raw;
  size_t n, left;
  int rc1, rc2, state;
  char buf[64];
};

static int step_reset_line_reader(uva_task_t *t, int status, void *d) {
  struct reset_line *c = (struct reset_line *) d;
  (void) status;
  CO_BEGIN(c);
  CO_CALL(c, uva_stream_read_line(&c->n, c->s, t, c->buf, sizeof c->buf));
  c->rc1 = c->rc;
  UVT_OK(uva_stream_buffered(&c->left, c->s));
  UVT_OK(uva_stream_read_state(&c->state, c->s));
  CO_CALL(c, uva_stream_read_line(&c->n, c->s, t, c->buf, sizeof c->buf));
  c->rc2 = c->rc;
  UVT_OK(uva_stream_close(c->s, NULL, NULL));
  CO_END(c);
}

/* The peer: "partial" at once, the reset once the reader waits (wait_ms
 * > 0) or right after the bytes (both in the kernel before the first
 * read). */
static void reset_line_case(int wait_ms) {
  uva_loop_t *loop = uvt_loop_new();
  int fds[2];
  struct reset_line c;
  memset(&c, 0, sizeof c);
  tcp_fd_pair(fds);
  c.s = adopt(loop, fds[1]);
  c.raw = fds[0];
  send_all(fds[0], "partial", 7);
  if (wait_ms == 0) {
    usleep(20000);
    close_reset(fds[0]);
    usleep(20000);
  }
  spawn(loop, step_reset_line_reader, &c);
  if (wait_ms > 0) {
    /* the reader takes "partial" and waits for the rest of the line */
    UVT_OK(uva_loop_run(loop, UVA_RUN_NOWAIT));
    usleep((useconds_t) wait_ms * 1000);
    UVT_OK(uva_loop_run(loop, UVA_RUN_NOWAIT));
    close_reset(fds[0]);
  }
  run(loop);
  UVT_EQ(c.rc1, UVA_ECONNRESET);
  UVT_EQ(c.rc2, UVA_ECONNRESET);
  UVT_EQ(c.state, UVA_ECONNRESET);
  cr_assert_eq(c.left, 7, "the fragment stays buffered: %zu", c.left);
  UVT_CLOSE_LOOP(loop);
}

Test(stream_api, read_line_partial_then_reset_is_econnreset, .timeout = 20) {
  reset_line_case(0);
}

Test(stream_api, read_line_waiting_on_partial_then_reset_is_econnreset,
     .timeout = 20) {
  reset_line_case(50);
}

/* ---- vectored writes ---------------------------------------------------- */

/* Write system calls this process made so far (/proc/self/io: write,
 * writev, ...; not send/sendmsg). */
static long syscw(void) {
  char line[128];
  long n = -1;
  FILE *f = fopen("/proc/self/io", "r");
  cr_assert_not_null(f, "/proc/self/io");
  while (fgets(line, sizeof line, f) != NULL)
    if (sscanf(line, "syscw: %ld", &n) == 1) break;
  fclose(f);
  return n;
}

/* 1000 pieces of 1 to 10 bytes on a pipe with room for them: one writev,
 * nothing queued, every byte in order. */
Test(stream_api, writev_many_small_pieces_leave_in_one_write, .timeout = 20) {
  uva_loop_t *loop = uvt_loop_new();
  int p[2];
  static char data[6000];
  static char got[6000];
  uva_buf_t bufs[1000];
  size_t total = 0, queued = 99;
  cr_assert_eq(pipe(p), 0);
  uva_stream_t *s = adopt(loop, p[1]);
  for (int i = 0; i < 1000; i++) {
    size_t len = (size_t) (i % 10) + 1;
    for (size_t k = 0; k < len; k++)
      data[total + k] = (char) ('a' + (total + k) % 26);
    bufs[i].base = data + total;
    bufs[i].len = len;
    total += len;
  }
  long before = syscw();
  UVT_OK(uva_stream_writev(&queued, s, bufs, 1000));
  long after = syscw();
  cr_assert_eq(after - before, 1, "%ld write calls for 1000 pieces",
               after - before);
  cr_assert_eq(queued, 0);
  cr_assert_eq(read(p[0], got, sizeof got), (ssize_t) total);
  cr_assert_eq(memcmp(got, data, total), 0);
  /* more pieces than one writev takes (IOV_MAX): joined, still one call */
  {
    static uva_buf_t many[5000];
    for (int i = 0; i < 5000; i++) {
      many[i].base = data + i;
      many[i].len = 1;
    }
    before = syscw();
    UVT_OK(uva_stream_writev(&queued, s, many, 5000));
    after = syscw();
    cr_assert_eq(after - before, 1, "%ld write calls for 5000 pieces",
                 after - before);
    cr_assert_eq(queued, 0);
    cr_assert_eq(read(p[0], got, sizeof got), 5000);
    cr_assert_eq(memcmp(got, data, 5000), 0);
  }
  /* no pieces, or only empty ones: nothing to do */
  UVT_OK(uva_stream_writev(&queued, s, NULL, 0));
  bufs[0].len = 0;
  UVT_OK(uva_stream_writev(&queued, s, bufs, 1));
  cr_assert_eq(queued, 0);
  UVT_OK(uva_stream_close(s, NULL, NULL));
  run(loop);
  close(p[0]);
  UVT_CLOSE_LOOP(loop);
}

/* The writer: writev of `pieces` pieces cut from a pattern while the peer
 * does not read (part goes out, the rest is queued), then more writev and
 * write calls on top of the queue, then a drain; the peer must read every
 * byte in order. */
#define PAT_TOTAL (4 * 1024 * 1024)
static unsigned char pat[PAT_TOTAL];

struct wv {
  int pc, rc;
  uva_stream_t *s;
  size_t queued1, queued2;
  uva_buf_t *bufs;
  size_t nbufs;
};

struct reader {
  int fd;
  size_t got;
  int bad_at;
  pthread_t th;
};

static void *reader_main(void *arg) {
  struct reader *r = (struct reader *) arg;
  static unsigned char buf[65536];
  r->bad_at = -1;
  usleep(100000); /* let the writer fill the kernel and queue */
  for (;;) {
    ssize_t n = recv(r->fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    for (ssize_t i = 0; i < n; i++)
      if (r->bad_at < 0 && (r->got + (size_t) i >= PAT_TOTAL ||
                            buf[i] != pat[r->got + (size_t) i]))
        r->bad_at = (int) (r->got + (size_t) i);
    r->got += (size_t) n;
  }
  return NULL;
}

static int step_writev(uva_task_t *t, int status, void *d) {
  struct wv *c = (struct wv *) d;
  (void) status;
  CO_BEGIN(c);
  /* first 3/4 of the pieces: part is sent, the rest queued */
  UVT_OK(uva_stream_writev(&c->queued1, c->s, c->bufs, c->nbufs * 3 / 4));
  /* the rest after the queue: half by writev, half piece by piece */
  {
    size_t from = c->nbufs * 3 / 4, mid = from + (c->nbufs - from) / 2;
    UVT_OK(uva_stream_writev(&c->queued2, c->s, c->bufs + from, mid - from));
    for (size_t i = mid; i < c->nbufs; i++)
      UVT_OK(uva_stream_write(NULL, c->s, c->bufs[i].base, c->bufs[i].len));
  }
  CO_CALL(c, uva_stream_drain(c->s, t));
  UVT_OK(c->rc);
  UVT_OK(uva_stream_close(c->s, NULL, NULL));
  CO_END(c);
}

Test(stream_api, writev_partial_write_keeps_byte_order, .timeout = 60) {
  uva_loop_t *loop = uvt_loop_new();
  int fds[2], small = 16384;
  struct wv c;
  struct reader r;
  memset(&c, 0, sizeof c);
  memset(&r, 0, sizeof r);
  for (size_t i = 0; i < PAT_TOTAL; i++)
    pat[i] = (unsigned char) (i % 251);
  tcp_fd_pair(fds);
  cr_assert_eq(setsockopt(fds[1], SOL_SOCKET, SO_SNDBUF, &small, sizeof small),
               0);
  cr_assert_eq(setsockopt(fds[0], SOL_SOCKET, SO_RCVBUF, &small, sizeof small),
               0);
  /* pieces of 1 to 3000 bytes, 3000 of them at least (past IOV_MAX) */
  c.bufs = calloc(PAT_TOTAL, sizeof *c.bufs);
  cr_assert_not_null(c.bufs);
  for (size_t off = 0; off < PAT_TOTAL; c.nbufs++) {
    size_t len = c.nbufs < 3000 ? (c.nbufs % 7) + 1 : (c.nbufs * 37) % 3000 + 1;
    if (len > PAT_TOTAL - off) len = PAT_TOTAL - off;
    c.bufs[c.nbufs].base = pat + off;
    c.bufs[c.nbufs].len = len;
    off += len;
  }
  c.s = adopt(loop, fds[1]);
  r.fd = fds[0];
  cr_assert_eq(pthread_create(&r.th, NULL, reader_main, &r), 0);
  spawn(loop, step_writev, &c);
  run(loop);
  pthread_join(r.th, NULL);
  close(fds[0]);
  cr_assert(c.queued1 > 0, "the first writev was not partial");
  cr_assert(c.queued2 > c.queued1, "the second writev did not queue");
  cr_assert_eq(r.got, PAT_TOTAL, "peer got %zu of %d", r.got, PAT_TOTAL);
  cr_assert_eq(r.bad_at, -1, "wrong byte at %d", r.bad_at);
  free(c.bufs);
  UVT_CLOSE_LOOP(loop);
}

Test(stream_api, writev_errors, .timeout = 20) {
  uva_loop_t *loop = uvt_loop_new();
  int fds[2];
  uva_buf_t bufs[2] = {{"ab", 2}, {NULL, 1}};
  tcp_fd_pair(fds);
  uva_stream_t *s = adopt(loop, fds[1]);
  UVT_EQ(uva_stream_writev(NULL, s, NULL, 1), UVA_EINVAL);
  UVT_EQ(uva_stream_writev(NULL, s, bufs, 2), UVA_EINVAL); /* NULL base */
  bufs[1].base = "c";
  bufs[1].len = (size_t) UINT32_MAX; /* with the first: over 4 GiB - 1 */
  UVT_EQ(uva_stream_writev(NULL, s, bufs, 2), UVA_EINVAL);
  UVT_EQ(uva_stream_writev(NULL, NULL, bufs, 1), UVA_EINVAL);
  UVT_EQ(uva_stream_writev(NULL, (uva_stream_t *) loop, bufs, 1),
         UVA_EHANDLEKIND);
  /* nothing of a refused call went out */
  bufs[1].len = 1;
  UVT_OK(uva_stream_writev(NULL, s, bufs, 2));
  char got[8] = {0};
  cr_assert_eq(recv_all(fds[0], got, 3), 3);
  cr_assert_str_eq(got, "abc");
  UVT_OK(uva_stream_close(s, NULL, NULL));
  UVT_EQ(uva_stream_writev(NULL, s, bufs, 2), UVA_ECLOSED);
  run(loop);
  close(fds[0]);
  UVT_CLOSE_LOOP(loop);
}

/* A peer that reset the connection: the write error, as uva_stream_write
 * gives it, then again from the next call. */
Test(stream_api, writev_after_peer_reset_fails, .timeout = 20) {
  uva_loop_t *loop = uvt_loop_new();
  int fds[2];
  uva_buf_t bufs[2] = {{"ab", 2}, {"cd", 2}};
  tcp_fd_pair(fds);
  uva_stream_t *s = adopt(loop, fds[1]);
  close_reset(fds[0]);
  usleep(20000);
  int rc = uva_stream_writev(NULL, s, bufs, 2);
  cr_assert(rc == UVA_ECONNRESET || rc == UVA_EPIPE, "writev: %s",
            uva_err_name(rc));
  UVT_EQ(uva_stream_writev(NULL, s, bufs, 2), rc);
  UVT_EQ(uva_stream_write(NULL, s, "x", 1), rc);
  UVT_OK(uva_stream_abort(s, NULL, NULL));
  run(loop);
  UVT_CLOSE_LOOP(loop);
}

/* ---- read_until --------------------------------------------------------- */

/* The peer sends its input in 1-byte sends, with a pause in the middle of
 * the separator, so that it straddles reads; then ends the stream. */
struct until {
  int pc, rc;
  uva_stream_t *s;
  size_t n, left;
  int rc_small, rc_end, rc_long;
  size_t n_small, n_long;
  char lines[4][64];
  size_t lens[4];
  int count;
  char buf[64];
};

static int step_until(uva_task_t *t, int status, void *d) {
  struct until *c = (struct until *) d;
  (void) status;
  CO_BEGIN(c);
  /* a buffer too small: UVA_ENOBUFS with the length, nothing consumed */
  CO_CALL(c, uva_stream_read_until(&c->n_small, c->s, t, "\r\n", 2, c->buf, 3));
  c->rc_small = c->rc;
  for (c->count = 0; c->count < 2; c->count++) {
    CO_CALL(c, uva_stream_read_until(&c->n, c->s, t, "\r\n", 2, c->buf,
                                     sizeof c->buf));
    UVT_OK(c->rc);
    memcpy(c->lines[c->count], c->buf, c->n);
    c->lens[c->count] = c->n;
  }
  /* the rest ends without a separator: UVA_EINCOMPLETE, kept buffered */
  CO_CALL(c, uva_stream_read_until(&c->n, c->s, t, "\r\n", 2, c->buf,
                                   sizeof c->buf));
  c->rc_end = c->rc;
  UVT_OK(uva_stream_buffered(&c->left, c->s));
  c->lens[2] = c->n;
  UVT_OK(uva_stream_close(c->s, NULL, NULL));
  CO_END(c);
}

Test(stream_api, read_until_multibyte_separator_across_reads, .timeout = 20) {
  uva_loop_t *loop = uvt_loop_new();
  int fds[2];
  struct until c;
  const char *in = "GET / HTTP/1.0\r\nHost: x\r\r\n\rtail\r";
  memset(&c, 0, sizeof c);
  tcp_fd_pair(fds);
  c.s = adopt(loop, fds[1]);
  spawn(loop, step_until, &c);
  for (const char *p = in; *p != '\0'; p++) {
    send_all(fds[0], p, 1);
    UVT_OK(uva_loop_run(loop, UVA_RUN_NOWAIT));
    if (*p == '\r') usleep(2000); /* the separator's halves in two reads */
  }
  close(fds[0]);
  run(loop);
  UVT_EQ(c.rc_small, UVA_ENOBUFS);
  cr_assert_eq(c.n_small, 16);
  cr_assert_eq(c.lens[0], 16);
  cr_assert_eq(memcmp(c.lines[0], "GET / HTTP/1.0\r\n", 16), 0);
  cr_assert_eq(c.lens[1], 10);
  cr_assert_eq(memcmp(c.lines[1], "Host: x\r\r\n", 10), 0);
  UVT_EQ(c.rc_end, UVA_EINCOMPLETE);
  cr_assert_eq(c.lens[2], 6, "*len at the end: %zu", c.lens[2]);
  cr_assert_eq(c.left, 6);
  UVT_CLOSE_LOOP(loop);
}

struct until_long {
  int pc, rc;
  uva_stream_t *s;
  size_t n1, n2, n3;
  int rc1, rc2, rc3;
  char buf[256];
};

static int step_until_long(uva_task_t *t, int status, void *d) {
  struct until_long *c = (struct until_long *) d;
  (void) status;
  CO_BEGIN(c);
  /* separator found past the limit: consumed = the bytes before it */
  CO_CALL(c, uva_stream_read_until(&c->n1, c->s, t, "--", 2, c->buf,
                                   sizeof c->buf));
  c->rc1 = c->rc;
  UVT_OK(uva_stream_consume(c->s, c->n1 + 2));
  /* none within the limit: consumed = the bytes that cannot begin one */
  CO_CALL(c, uva_stream_read_until(&c->n2, c->s, t, "--", 2, c->buf,
                                   sizeof c->buf));
  c->rc2 = c->rc;
  UVT_OK(uva_stream_consume(c->s, c->n2));
  /* a different separator after "--" scans from the start */
  CO_CALL(
      c, uva_stream_read_until(&c->n3, c->s, t, "!", 1, c->buf, sizeof c->buf));
  c->rc3 = c->rc;
  UVT_OK(uva_stream_close(c->s, NULL, NULL));
  CO_END(c);
}

Test(stream_api, read_until_limit_reports_asyncio_consumed, .timeout = 20) {
  uva_loop_t *loop = uvt_loop_new();
  int fds[2];
  struct until_long c;
  char in[64];
  memset(&c, 0, sizeof c);
  /* 12 x, "--", 20 y, "!" */
  memset(in, 'x', 12);
  memcpy(in + 12, "--", 2);
  memset(in + 14, 'y', 20);
  in[34] = '!';
  tcp_fd_pair(fds);
  c.s = adopt(loop, fds[1]);
  UVT_OK(uva_stream_set(c.s, UVA_STREAM_LINE_LIMIT, 10));
  send_all(fds[0], in, 35);
  close(fds[0]);
  spawn(loop, step_until_long, &c);
  run(loop);
  UVT_EQ(c.rc1, UVA_ELINETOOLONG);
  cr_assert_eq(c.n1, 12);
  UVT_EQ(c.rc2, UVA_ELINETOOLONG);
  cr_assert_eq(c.n2, 20, "consumed %zu", c.n2); /* 21 buffered, 20 safe */
  UVT_EQ(c.rc3, 0);
  cr_assert_eq(c.n3, 1); /* "!" */
  UVT_CLOSE_LOOP(loop);
}

Test(stream_api, read_until_bad_arguments, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  int fds[2];
  size_t n;
  char buf[4];
  tcp_fd_pair(fds);
  uva_stream_t *s = adopt(loop, fds[1]);
  UVT_EQ(uva_stream_read_until(&n, s, NULL, "", 0, buf, 4), UVA_EINVAL);
  UVT_EQ(uva_stream_read_until(&n, s, NULL, NULL, 1, buf, 4), UVA_EINVAL);
  UVT_EQ(uva_stream_read_until(NULL, s, NULL, "\n", 1, buf, 4), UVA_EINVAL);
  UVT_EQ(uva_stream_read_until(&n, s, NULL, "\n", 1, NULL, 4), UVA_EINVAL);
  UVT_OK(uva_stream_close(s, NULL, NULL));
  run(loop);
  close(fds[0]);
  UVT_CLOSE_LOOP(loop);
}

/* ---- the descriptor and the read side's state -------------------------- */

Test(stream_api, fileno_is_the_socket_stream_keeps_it, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  int fds[2], fd = -1, type = 0, one = 1;
  socklen_t len = sizeof type;
  tcp_fd_pair(fds);
  uva_stream_t *s = adopt(loop, fds[1]);
  UVT_OK(uva_stream_fileno(&fd, s));
  cr_assert_eq(fd, fds[1]);
  cr_assert_eq(getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len), 0);
  cr_assert_eq(type, SOCK_STREAM);
  cr_assert_eq(setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one), 0);
  UVT_EQ(uva_stream_fileno(NULL, s), UVA_EINVAL);
  UVT_OK(uva_stream_close(s, NULL, NULL));
  UVT_EQ(uva_stream_fileno(&fd, s), UVA_ECLOSED);
  run(loop);
  close(fds[0]);
  UVT_CLOSE_LOOP(loop);
}

/* feed_eof wakes a reader waiting for a line: it gets what is buffered as
 * the last line, then the end; the state says UVA_EOF; bytes the peer sends
 * after it are not read. */
struct fed {
  int pc, rc;
  uva_stream_t *s;
  size_t n1, n2;
  int state0, state1;
  char buf[64];
};

static int step_fed_reader(uva_task_t *t, int status, void *d) {
  struct fed *c = (struct fed *) d;
  (void) status;
  CO_BEGIN(c);
  UVT_OK(uva_stream_read_state(&c->state0, c->s));
  CO_CALL(c, uva_stream_read_line(&c->n1, c->s, t, c->buf, sizeof c->buf));
  UVT_OK(c->rc);
  CO_CALL(c, uva_stream_read(&c->n2, c->s, t, c->buf, sizeof c->buf));
  UVT_OK(c->rc);
  UVT_OK(uva_stream_read_state(&c->state1, c->s));
  UVT_OK(uva_stream_close(c->s, NULL, NULL));
  CO_END(c);
}

static int step_feeder(uva_task_t *t, int status, void *d) {
  struct side {
    int pc, rc;
    struct fed *c;
    int raw;
  } *sd = (struct side *) d;
  (void) status;
  CO_BEGIN(sd);
  send_all(sd->raw, "abc", 3);
  CO_SLEEP(sd, t, 50); /* the reader waits for the line's end */
  UVT_OK(uva_stream_feed_eof(sd->c->s));
  send_all(sd->raw, "more\n", 5);
  CO_END(sd);
}

Test(stream_api, feed_eof_ends_reads_after_the_buffered_bytes, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  int fds[2];
  struct fed c;
  struct {
    int pc, rc;
    struct fed *c;
    int raw;
  } sd = {0, 0, &c, 0};
  memset(&c, 0, sizeof c);
  tcp_fd_pair(fds);
  c.s = adopt(loop, fds[1]);
  sd.raw = fds[0];
  spawn(loop, step_fed_reader, &c);
  spawn(loop, step_feeder, &sd);
  run(loop);
  cr_assert_eq(c.state0, 0);
  cr_assert_eq(c.n1, 3);
  cr_assert_eq(memcmp(c.buf, "abc", 3), 0);
  cr_assert_eq(c.n2, 0);
  UVT_EQ(c.state1, UVA_EOF);
  close(fds[0]);
  UVT_CLOSE_LOOP(loop);
}

/* ---- writes behind a full queue gather in one request ----------------- */

/* A pipe whose reader starts late: the first writes fill it and queue;
 * the 1000 small writes after them gather behind the queue and leave in a
 * few write calls once the reader drains the pipe (before: one each). The
 * bytes arrive in order. */
struct gather {
  int pc, rc;
  uva_stream_t *s;
  int mode; /* 0 drain, 1 shutdown, 2 graceful close */
};

static int step_gather(uva_task_t *t, int status, void *d) {
  struct gather *c = (struct gather *) d;
  (void) status;
  CO_BEGIN(c);
  if (c->mode == 0) {
    CO_CALL(c, uva_stream_drain(c->s, t));
    UVT_OK(c->rc);
    UVT_OK(uva_stream_close(c->s, NULL, NULL));
  } else if (c->mode == 1) {
    CO_CALL(c, uva_stream_shutdown(c->s, t));
    UVT_OK(c->rc);
    UVT_OK(uva_stream_close(c->s, NULL, NULL));
  } else {
    UVT_OK(uva_stream_close(c->s, NULL, NULL));
  }
  CO_END(c);
}

struct late_reader {
  int fd;
  size_t want, got;
  int bad_at;
  pthread_t th;
};

static void *late_reader_main(void *arg) {
  struct late_reader *r = (struct late_reader *) arg;
  static unsigned char buf[65536];
  r->bad_at = -1;
  usleep(50000);
  for (;;) {
    ssize_t n = read(r->fd, buf, sizeof buf);
    if (n <= 0) break;
    for (ssize_t i = 0; i < n; i++)
      if (r->bad_at < 0 && buf[i] != pat[r->got + (size_t) i])
        r->bad_at = (int) (r->got + (size_t) i);
    r->got += (size_t) n;
  }
  return NULL;
}

/* Fill the kernel, then `small` writes of 10 bytes (every other one a
 * writev of two 5-byte pieces): returns the bytes written. */
static size_t fill_then_small_writes(uva_stream_t *s, int small) {
  size_t off = 0, queued = 0;
  while (queued == 0) {
    UVT_OK(uva_stream_write(&queued, s, pat + off, 65536));
    off += 65536;
  }
  for (int i = 0; i < small; i++) {
    if (i % 2 == 0) {
      UVT_OK(uva_stream_write(&queued, s, pat + off, 10));
    } else {
      uva_buf_t two[2] = {{pat + off, 5}, {pat + off + 5, 5}};
      UVT_OK(uva_stream_writev(&queued, s, two, 2));
    }
    off += 10;
  }
  return off;
}

Test(stream_api, small_writes_behind_a_full_pipe_leave_in_few_calls,
     .timeout = 30) {
  uva_loop_t *loop = uvt_loop_new();
  int p[2];
  struct gather c = {0, 0, NULL, 0};
  struct late_reader r;
  memset(&r, 0, sizeof r);
  for (size_t i = 0; i < PAT_TOTAL; i++)
    pat[i] = (unsigned char) (i % 251);
  cr_assert_eq(pipe(p), 0);
  c.s = adopt(loop, p[1]);
  UVT_OK(uva_stream_set(c.s, UVA_STREAM_LOW_WATER, 0));
  size_t total = fill_then_small_writes(c.s, 1000);
  r.fd = p[0];
  long before = syscw();
  cr_assert_eq(pthread_create(&r.th, NULL, late_reader_main, &r), 0);
  spawn(loop, step_gather, &c);
  run(loop);
  long after = syscw();
  pthread_join(r.th, NULL);
  close(p[0]);
  cr_assert(after - before <= 20, "%ld write calls for 1000 small writes",
            after - before);
  cr_assert_eq(r.got, total, "read %zu of %zu", r.got, total);
  cr_assert_eq(r.bad_at, -1, "wrong byte at %d", r.bad_at);
  UVT_CLOSE_LOOP(loop);
}

/* The gathered writes go out before a shutdown or a graceful close, and
 * an abort drops them (no leak: ASan). */
static void gather_then(int mode) {
  uva_loop_t *loop = uvt_loop_new();
  int fds[2], small = 16384;
  struct gather c = {0, 0, NULL, mode};
  struct late_reader r;
  memset(&r, 0, sizeof r);
  for (size_t i = 0; i < PAT_TOTAL; i++)
    pat[i] = (unsigned char) (i % 251);
  tcp_fd_pair(fds);
  cr_assert_eq(setsockopt(fds[1], SOL_SOCKET, SO_SNDBUF, &small, sizeof small),
               0);
  c.s = adopt(loop, fds[1]);
  size_t total = fill_then_small_writes(c.s, 1000);
  r.fd = fds[0];
  cr_assert_eq(pthread_create(&r.th, NULL, late_reader_main, &r), 0);
  if (mode == 3)
    UVT_OK(uva_stream_abort(c.s, NULL, NULL));
  else
    spawn(loop, step_gather, &c);
  run(loop);
  if (mode == 3)
    shutdown(fds[0], SHUT_RDWR); /* the reader may wait on a reset socket */
  pthread_join(r.th, NULL);
  close(fds[0]);
  if (mode != 3) cr_assert_eq(r.got, total, "read %zu of %zu", r.got, total);
  cr_assert_eq(r.bad_at, -1, "wrong byte at %d", r.bad_at);
  UVT_CLOSE_LOOP(loop);
}

Test(stream_api, gathered_writes_go_out_before_shutdown, .timeout = 30) {
  gather_then(1);
}

Test(stream_api, gathered_writes_go_out_before_graceful_close, .timeout = 30) {
  gather_then(2);
}

Test(stream_api, abort_drops_gathered_writes, .timeout = 30) { gather_then(3); }
