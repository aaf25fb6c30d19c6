/* libFuzzer target: the stream read path against a model.
 *
 * The input chooses the stream's limits (high-water mark, line limit,
 * delimiter), the chunk sizes the peer writes in, a list of read operations
 * and the data itself. A socketpair's far end is written by a feeder task in
 * those chunks (then shut down); the near end is adopted with
 * uva_stream_open_fd and consumed by a reader task with the operations in
 * turn: read, read_line (with small and large buffers), read_until a
 * two-byte separator, read_exactly, peek + consume, and cancellation of a
 * read that has to wait. Each result
 * is checked against the data: no byte lost, duplicated or reordered; a
 * line never longer than the limit; ENOBUFS and ELINETOOLONG consume
 * nothing; EINCOMPLETE only at the end; the buffer stays bounded by the
 * high-water mark. Any mismatch aborts (a crash for libFuzzer).
 *
 * Input layout: [hw][limit][delim][seed][nops] ops[nops] data... */
#include <uvasync.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define CHECK(cond)                                                     \
  do {                                                                  \
    if (!(cond)) {                                                      \
      fprintf(stderr, "model mismatch at %s:%d: %s (pos %zu of %zu)\n", \
              __FILE__, __LINE__, #cond, M.pos, M.len);                 \
      abort();                                                          \
    }                                                                   \
  } while (0)

static struct {
  const uint8_t *data; /* what the peer sends */
  size_t len;
  size_t pos;   /* bytes the reader has consumed (the model) */
  size_t sent;  /* bytes the feeder has written */
  int wfd;      /* the feeder's end; -1 once shut down */
  uint32_t rng; /* chunk sizes */
  const uint8_t *ops;
  size_t nops, op;
  size_t steps;
  size_t hw, limit;
  int delim;
  int cancel_req; /* the reader waits and wants to be cancelled */
  int reader_done;
  uva_stream_t *s;
  uva_task_t *reader;
  uint8_t buf[4096];
} M;

static uint32_t next_rand(void) {
  M.rng ^= M.rng << 13;
  M.rng ^= M.rng >> 17;
  M.rng ^= M.rng << 5;
  return M.rng;
}

/* Length of the line starting at pos: through the delimiter, or to the end
 * of the data if none follows. */
static size_t model_line(void) {
  const void *hit = memchr(M.data + M.pos, M.delim, M.len - M.pos);
  if (hit == NULL) return M.len - M.pos;
  return (size_t) ((const uint8_t *) hit - (M.data + M.pos)) + 1;
}

/* As model_line, through the first two-byte separator sep (0: none,
 * the rest of the data ends without it). */
static size_t model_until(const uint8_t sep[2]) {
  for (size_t i = M.pos; i + 1 < M.len; i++)
    if (M.data[i] == sep[0] && M.data[i + 1] == sep[1]) return i + 2 - M.pos;
  return 0;
}

static void took(const void *got, size_t n) {
  CHECK(M.pos + n <= M.len);
  if (got != NULL) CHECK(memcmp(got, M.data + M.pos, n) == 0);
  M.pos += n;
}

/* The buffer holds no more than flow control allows: the larger of the
 * high-water mark and what a waiting read needs (at most 405 bytes here),
 * twice over (a waiting reader may take a second read), plus one read of
 * 64 KiB. */
static void check_bounded(void) {
  size_t buffered = 0;
  CHECK(uva_stream_buffered(&buffered, M.s) == 0);
  size_t limit = M.hw > 512 ? M.hw : 512;
  CHECK(buffered <= 2 * limit + 65536);
  CHECK(buffered <= M.sent - M.pos);
}

/* Writes the data in chunks of random size, one chunk per pass, then shuts
 * its end down; cancels the reader when asked. */
static int feeder(uva_task_t *t, int status, void *d) {
  (void) t;
  (void) status;
  (void) d;
  if (M.cancel_req) {
    M.cancel_req = 0;
    CHECK(uva_task_cancel(M.reader) == 0);
  }
  if (M.wfd >= 0) {
    if (M.sent < M.len) {
      size_t n = 1 + next_rand() % 700;
      if (n > M.len - M.sent) n = M.len - M.sent;
      ssize_t w = write(M.wfd, M.data + M.sent, n);
      if (w > 0) M.sent += (size_t) w;
    } else {
      shutdown(M.wfd, SHUT_WR);
      M.wfd = -1;
    }
  }
  if (M.reader_done) return 0;
  return UVA_TASK_YIELD;
}

/* The next operation byte; after the list is used up a few times, plain
 * large reads drain the stream. */
static int next_op(void) {
  if (M.nops == 0 || M.op >= 8 * M.nops) return 0;
  return M.ops[M.op++ % M.nops];
}

static int reader(uva_task_t *t, int status, void *d) {
  (void) d;
  int op = 0;
  if (status == UVA_ECANCELED) { /* the waiting read was withdrawn */
    size_t buffered = 0;
    CHECK(uva_stream_buffered(&buffered, M.s) == 0);
    CHECK(buffered <= M.sent - M.pos);
  }
  for (;;) {
    if (++M.steps > 200000) abort(); /* no progress: a lost wake-up */
    op = next_op();
    size_t n = 1 + (size_t) (op >> 3) * 13; /* 1 .. 404 */
    int rc;
    switch (op & 7) {
      case 0:
      case 1: { /* read(n) */
        size_t got = 0;
        rc = uva_stream_read(&got, M.s, t, M.buf, op == 0 ? sizeof M.buf : n);
        if (rc == UVA_EAGAIN) break;
        CHECK(rc == 0);
        if (got == 0) { /* end of stream: everything was consumed */
          CHECK(M.pos == M.len);
          M.reader_done = 1;
          return 0;
        }
        took(M.buf, got);
        break;
      }
      case 3:
        if ((op >> 3) & 1) { /* read_until {delim, delim} (shares `scanned`) */
          uint8_t sep[2] = {(uint8_t) M.delim, (uint8_t) M.delim};
          size_t len = 0, before = M.pos, buffered = 0;
          rc = uva_stream_read_until(&len, M.s, t, sep, 2, M.buf, sizeof M.buf);
          if (rc == UVA_EAGAIN) break;
          size_t line = model_until(sep);
          size_t rest = M.len - M.pos;
          if (rc == UVA_ELINETOOLONG) {
            CHECK(line == 0 ? rest > M.limit : line > M.limit);
            CHECK(M.pos == before);
            size_t skip = 0;
            size_t most = M.limit < sizeof M.buf ? M.limit : sizeof M.buf;
            CHECK(uva_stream_read(&skip, M.s, t, M.buf, most) == 0);
            took(M.buf, skip);
            break;
          }
          if (rc == UVA_EINCOMPLETE) { /* the end, without a separator */
            CHECK(line == 0 && len == rest && rest <= M.limit);
            CHECK(uva_stream_buffered(&buffered, M.s) == 0 && buffered == rest);
            size_t got = 0;
            if (rest > 0) {
              CHECK(uva_stream_read(&got, M.s, t, M.buf, sizeof M.buf) == 0);
              took(M.buf, got);
            }
            break;
          }
          CHECK(rc == 0 && len == line && len <= M.limit);
          took(M.buf, len);
          break;
        }
        /* fall through */
      case 2: { /* read_line, buffer of n bytes or the whole buffer */
        size_t len = 0, before = M.pos;
        size_t buflen = (op & 7) == 2 ? n : sizeof M.buf;
        rc = uva_stream_read_line(&len, M.s, t, M.buf, buflen);
        if (rc == UVA_EAGAIN) break;
        size_t line = model_line();
        if (rc == UVA_ELINETOOLONG) {
          CHECK(line > M.limit);
          CHECK(M.pos == before);
          /* skip the long line's first bytes, as a user would */
          size_t skip = 0;
          CHECK(uva_stream_read(
                    &skip, M.s, t, M.buf,
                    M.limit < sizeof M.buf ? M.limit : sizeof M.buf) == 0);
          took(M.buf, skip);
          break;
        }
        if (rc == UVA_ENOBUFS) {
          CHECK(len == line && len > buflen && len <= M.limit);
          break;
        }
        CHECK(rc == 0);
        if (len == 0) {
          CHECK(M.pos == M.len);
          break; /* at the end: the next read sees it too */
        }
        CHECK(len == line && len <= M.limit && len <= buflen);
        took(M.buf, len);
        break;
      }
      case 4: { /* read_exactly(n) */
        rc = uva_stream_read_exactly(M.s, t, M.buf, n);
        if (rc == UVA_EAGAIN) {
          check_bounded();
          break;
        }
        if (rc == UVA_EINCOMPLETE) {
          size_t buffered = 0;
          CHECK(M.len - M.pos < n);
          CHECK(uva_stream_buffered(&buffered, M.s) == 0);
          CHECK(buffered == M.len - M.pos); /* nothing lost */
          break;
        }
        CHECK(rc == 0);
        took(M.buf, n);
        break;
      }
      case 5: { /* peek, then consume part of it */
        const void *p = NULL;
        size_t len = 0;
        rc = uva_stream_peek(&p, &len, M.s, t);
        if (rc == UVA_EAGAIN) break;
        CHECK(rc == 0);
        if (len == 0) {
          CHECK(M.pos == M.len);
          break;
        }
        CHECK(len <= M.len - M.pos);
        CHECK(memcmp(p, M.data + M.pos, len) == 0);
        size_t k = n < len ? n : len;
        CHECK(uva_stream_consume(M.s, k) == 0);
        M.pos += k;
        CHECK(uva_stream_consume(M.s, len - k + 1) == UVA_EINVAL);
        break;
      }
      case 6: /* buffered never exceeds what was sent and not consumed */
        check_bounded();
        continue;
      case 7: /* a read that waits is cancelled (if it has to wait) */
        rc = uva_stream_read_exactly(M.s, t, M.buf, n);
        if (rc == UVA_EAGAIN) {
          M.cancel_req = 1;
          return UVA_TASK_PENDING;
        }
        if (rc == 0)
          took(M.buf, n);
        else
          CHECK(rc == UVA_EINCOMPLETE && M.len - M.pos < n);
        continue;
    }
    if (rc == UVA_EAGAIN) return UVA_TASK_PENDING; /* woken with news */
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *in, size_t size) {
  if (size < 5) return 0;
  memset(&M, 0, sizeof M);
  static const size_t hws[8] = {1, 2, 7, 16, 100, 1000, 4096, 65536};
  M.hw = hws[in[0] & 7];
  M.limit = 1 + in[1] % 300;
  M.delim = (in[2] & 1) ? '\n' : in[2];
  M.rng = 0x9e3779b9u ^ in[3];
  M.nops = in[4] % 64;
  if (M.nops > size - 5) M.nops = size - 5;
  M.ops = in + 5;
  M.data = in + 5 + M.nops;
  M.len = size - 5 - M.nops;

  int fds[2];
  if (socketpair(AF_UNIX, SOCK_STREAM, 0, fds) != 0) abort();
  M.wfd = fds[1];
  uva_loop_t *loop;
  if (uva_loop_new(&loop) != 0) abort();
  if (uva_stream_open_fd(&M.s, loop, fds[0]) != 0) abort();
  CHECK(uva_stream_set(M.s, UVA_STREAM_HIGH_WATER, M.hw) == 0);
  CHECK(uva_stream_set(M.s, UVA_STREAM_LINE_LIMIT, M.limit) == 0);
  CHECK(uva_stream_set(M.s, UVA_STREAM_DELIMITER, (size_t) M.delim) == 0);
  if (uva_task_spawn(&M.reader, loop, reader, NULL, NULL) != 0) abort();
  if (uva_task_spawn(NULL, loop, feeder, NULL, NULL) != 0) abort();
  if (uva_loop_run(loop, UVA_RUN_DEFAULT) != 0) abort();
  CHECK(M.reader_done && M.pos == M.len);
  uva_task_release(M.reader);
  uva_stream_close(M.s, NULL, NULL);
  uva_loop_run(loop, UVA_RUN_DEFAULT);
  if (uva_loop_close(loop) != 0) abort();
  close(fds[1]);
  return 0;
}
