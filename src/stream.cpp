/* uvasync — streams (TCP, Unix sockets, pipes, TTYs) and servers: the
 * buffer, the read and write API, connecting and closing.
 *
 * Reads: bytes are read straight into the free tail of the stream's
 * buffer (no copy on the way in); read calls copy out of it. While a reader
 * waits on an empty buffer, the poll only tells it the socket is readable
 * and its own call reads (read_now), so the bytes are used while they are
 * in the cache. Reading pauses while the buffer holds high_water bytes, or
 * what a waiting read needs if that is more, and resumes when a read
 * brings it below. Who reads from the kernel is a read engine's business
 * (stream_engine.h): libuv's level-triggered reading (stream_libuv.cpp),
 * or on Linux the loop's own edge-triggered epoll set (stream_edge.cpp),
 * where the kernel reports bytes once, so a read that leaves some there
 * comes back for them itself (wait_more).
 *
 * Writes: an immediate write first (send(2) on TCP, else uv_try_write);
 * only what the kernel did not take is copied into a request and queued.
 * Writes made while a request is in flight gather in one more (the tail),
 * handed to libuv when the queue ahead of it is written. drain waits for
 * the queue to fall to low_water.
 *
 * Waiting uses the "call again" protocol (see sync.cpp): a read registers
 * a WaitKind::IO node and returns UVA_EAGAIN; every change (data, EOF,
 * error, write progress, close) wakes all waiters, and each repeated call
 * checks its own condition. Nothing is taken from the buffer until a call
 * completes, so a cancelled read loses no byte.
 */
#include "stream_engine.h"
#include "fault.h"

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#ifndef _WIN32
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>
#endif
#ifdef __linux__
#include <sys/epoll.h>
#endif

namespace uva {
namespace detail {

static constexpr size_t DEFAULT_HIGH_WATER = 64 * 1024;
static constexpr size_t DEFAULT_LOW_WATER = 16 * 1024;
static constexpr size_t DEFAULT_LINE_LIMIT = 64 * 1024;

/* ---- addresses ---------------------------------------------------------- */

int addr_format(const struct sockaddr *sa, char *host, size_t hostlen,
                int *port) {
  char tmp[INET6_ADDRSTRLEN];
  int rc;
  if (sa->sa_family == AF_INET) {
    auto *in = reinterpret_cast<const struct sockaddr_in *>(sa);
    rc = uv_ip4_name(in, tmp, sizeof tmp);
    if (port != nullptr) *port = ntohs(in->sin_port);
  } else if (sa->sa_family == AF_INET6) {
    auto *in6 = reinterpret_cast<const struct sockaddr_in6 *>(sa);
    rc = uv_ip6_name(in6, tmp, sizeof tmp);
    if (port != nullptr) *port = ntohs(in6->sin6_port);
  } else {
    return UVA_ENOTSUP;
  }
  if (rc != 0) return rc;
  if (host != nullptr) {
    if (std::strlen(tmp) >= hostlen) return UVA_ENOBUFS;
    std::strcpy(host, tmp);
  }
  return 0;
}

int addr_parse(struct sockaddr_storage *out, const char *host, int port) {
  if (port < 0 || port > 65535) return UVA_EINVAL;
  std::memset(out, 0, sizeof *out);
  if (host == nullptr || host[0] == '\0') host = "0.0.0.0";
  if (uv_ip4_addr(host, port, reinterpret_cast<sockaddr_in *>(out)) == 0)
    return 0;
  if (uv_ip6_addr(host, port, reinterpret_cast<sockaddr_in6 *>(out)) == 0)
    return 0;
  /* A name: resolve it here (servers and UDP bind synchronously). */
  uv_getaddrinfo_t req;
  struct addrinfo hints;
  std::memset(&hints, 0, sizeof hints);
  hints.ai_family = AF_UNSPEC;
  hints.ai_flags = AI_PASSIVE;
  char service[16];
  std::snprintf(service, sizeof service, "%d", port);
  uv_loop_t tmp_loop;
  int rc = uv_loop_init(&tmp_loop);
  if (rc != 0) return rc;
  rc = uv_getaddrinfo(&tmp_loop, &req, nullptr, host, service, &hints);
  if (rc == 0) {
    std::memcpy(out, req.addrinfo->ai_addr, req.addrinfo->ai_addrlen);
    uv_freeaddrinfo(req.addrinfo);
  }
  uv_loop_close(&tmp_loop);
  return rc;
}

/* ---- lifecycle ---------------------------------------------------------- */

static Stream *stream_alloc(Loop *l) {
  Stream *s = static_cast<Stream *>(fault_calloc(1, sizeof(Stream)));
  if (s == nullptr) return nullptr;
  sync_init(s, l, MAGIC_STREAM);
  s->high_water = DEFAULT_HIGH_WATER;
  s->low_water = DEFAULT_LOW_WATER;
  s->line_limit = DEFAULT_LINE_LIMIT;
  s->delim = '\n';
  s->fd = -1;
  return s;
}

void io_destroy(Sync *obj) {
  Loop *l = obj->loop;
  if (obj->magic == MAGIC_STREAM) {
    Stream *s = static_cast<Stream *>(obj);
    tls_free(s);
    std::free(s->rbuf);
    std::free(s->wtail); /* dropped by on_write already; for safety */
    if (s->ai_list != nullptr) uv_freeaddrinfo(s->ai_list);
  } else if (obj->magic == MAGIC_UDP) {
    Udp *u = static_cast<Udp *>(obj);
    while (u->head != nullptr) {
      Datagram *d = u->head;
      u->head = d->next;
      std::free(d);
    }
  } else if (obj->magic == MAGIC_PROCESS || obj->magic == MAGIC_SIGNAL) {
    l->lingering--; /* freed only after their owner closed them */
  }
  obj->magic = MAGIC_FREED;
  l->handles--;
  std::free(obj);
}

/* Streams do not keep the loop alive by themselves: the tasks waiting on
 * them do, and libuv's pending requests (connect, write, shutdown) do. */
static void bind_handle(Stream *s) {
  s->uv.h.data = s;
  uv_unref(&s->uv.h);
}

/* A wait on the stream went away without completing (cancelled, or its
 * task finished): forget what it wanted, so flow control applies again. */
void stream_waiter_gone(Stream *s) {
  if (s->waiters != nullptr) return;
  s->want = 0;
  s->to_eof = false;
  libuv_read_pause_if_full(s);
}

static void on_stream_closed(uv_handle_t *h) {
  Stream *s = stream_of(h);
  s->st = StreamState::CLOSED;
  io_wake_all(s);
  if (s->close_cb != nullptr)
    s->close_cb(reinterpret_cast<uva_stream_t *>(s), s->close_data);
  sync_unref(s); /* the owner's reference */
}

static void close_now(Stream *s) {
  if (s->st == StreamState::CLOSED) return;
  s->st = StreamState::CLOSED;
  libuv_read_on_close(s);
  edge_read_on_close(s);
  io_wake_all(s);
  /* Between two connect attempts the handle is already closing; its close
   * callback sees the stream closed and finishes the close instead of
   * retrying. */
  if (!s->retrying) uv_close(&s->uv.h, on_stream_closed);
}

/* ---- reading ------------------------------------------------------------ */

/* Room for the next read of up to `chunk` bytes: the buffer's free tail,
 * slid or grown as needed; {NULL, 0} when memory runs out. */
uv_buf_t room(Stream *s, size_t chunk) {
  size_t tail = s->rcap - s->rstart - s->rlen;
  /* Under a quarter of a normal chunk is too little to read into; a
   * larger chunk (read_now's wide reads) wants all its room. */
  size_t least = chunk > READ_CHUNK ? chunk : READ_CHUNK / 4;
  if (tail < least) {
    if (s->rstart > 0) { /* slide the unread bytes to the front */
      std::memmove(s->rbuf, s->rbuf + s->rstart, s->rlen);
      s->rstart = 0;
      tail = s->rcap - s->rlen;
    }
    if (tail < least) {
      size_t cap = s->rcap == 0 ? READ_CHUNK : s->rcap * 2;
      while (cap - s->rlen < chunk)
        cap *= 2;
      /* Page-aligned, not malloc's 16 bytes: the kernel's copies into
       * and out of this buffer (every read, and an echo's write straight
       * from it) ran 1.5-2x slower into memory 16 bytes off a cache line
       * (perf, 10 x 10 KiB echo on AMD EPYC). */
      char *p = static_cast<char *>(fault_aligned_alloc(4096, cap));
      if (p == nullptr) return uv_buf_init(nullptr, 0);
      if (s->rlen > 0) std::memcpy(p, s->rbuf + s->rstart, s->rlen);
      std::free(s->rbuf);
      s->rstart = 0;
      s->rbuf = p;
      s->rcap = cap;
      tail = cap - s->rlen;
    }
  }
  /* A chunk at most per read, 64 KiB as libuv suggests (but for read_now's
   * wide reads): one huge read costs the kernel more than two of this size
   * (measured on the echo benchmark). */
  if (tail > chunk) tail = chunk;
  return uv_buf_init(s->rbuf + s->rstart + s->rlen, unsigned(tail));
}

/* Start reading if there is room and a reason: the edge engine where it
 * takes the stream, else libuv's. */
static void maybe_read(Stream *s) {
  if (s->reading || s->edge || s->st != StreamState::OPEN || s->eof ||
      s->read_err != 0)
    return;
  /* A TTY is shared: a stream only written to (asyncio's write pipe on a
   * pty, beside a reader of the same terminal) must not take the input. */
  if (s->type == UV_TTY && !s->asked) return;
  if (edge_read_start(s)) return;
  if (s->rlen >= read_limit(s)) return;
  int rc = libuv_read_start(s);
  if (rc != 0) s->read_err = rc;
}

void stream_maybe_read(Stream *s) { maybe_read(s); }

static void consume(Stream *s, void *buf, size_t n) {
  /* n = 0 may come with no buffer at all yet (rbuf NULL): memcpy's
   * arguments must not be NULL even for 0 bytes. */
  if (buf != nullptr && n > 0) std::memcpy(buf, s->rbuf + s->rstart, n);
  s->rstart += n;
  s->rlen -= n;
  s->scanned = s->scanned > n ? s->scanned - n : 0;
  if (s->rlen == 0) s->rstart = 0;
  maybe_read(s);
}

/* Wait for more: register (once) and make sure bytes keep coming. */
static int wait_more(Stream *s, Task *t, Wait *w, size_t want) {
  if (want > s->want) s->want = want;
  s->asked = true;
  /* (TLS: `more` also counts what OpenSSL holds, which no poll reports,
   * under either engine.) */
  if ((s->edge || s->tls != nullptr) && s->more) {
    /* The kernel reported these bytes once and will not again: read them
     * now, and the call, repeated at the next pass, finds them. */
    edge_fill(s);
    int rc = w != nullptr ? UVA_EAGAIN : sync_enlist(s, t, WaitKind::IO);
    if (rc == UVA_EAGAIN) task_wake_local(t);
    return rc;
  }
  maybe_read(s);
  if (w != nullptr) return UVA_EAGAIN;
  return sync_enlist(s, t, WaitKind::IO);
}

/* A repeated call is done: forget what it wanted and its node. The node
 * goes last: on a stream closed under the waiting task it holds the last
 * reference, and dropping it frees the stream. */
static void done_waiting(Stream *s, Wait *w) {
  bool last =
      w == nullptr ? s->waiters == nullptr : s->waiters == w && w->next == w;
  if (last) {
    s->want = 0;
    s->to_eof = false;
  }
  if (w != nullptr) sync_drop(w);
}

/* What ends every read early: closed, failed, or not connected (yet). */
static int read_blocked(Stream *s, Wait *w) {
  if (s->st >= StreamState::CLOSING) {
    done_waiting(s, w);
    return UVA_ECLOSED;
  }
  if (s->st == StreamState::CONNECTING && s->conn_err != 0) {
    done_waiting(s, w);
    return s->conn_err;
  }
  if (s->tls != nullptr && s->st == StreamState::OPEN) {
    int rc = tls_io_blocked(s); /* handshake running or failed */
    if (rc != 0) {
      done_waiting(s, w);
      return rc;
    }
  }
  return 0;
}

/* n buffered bytes into buf, and those past its len on into spill. */
static void consume_spill(Stream *s, void *buf, size_t len, void *spill,
                          size_t n) {
  if (n <= len) {
    consume(s, buf, n);
    return;
  }
  const char *from = s->rbuf + s->rstart;
  if (len > 0) std::memcpy(buf, from, len);
  std::memcpy(spill, from + len, n - len);
  consume(s, nullptr, n);
}

int stream_read(size_t *nread, Stream *s, Task *t, void *buf, size_t len,
                void *spill, size_t spill_len) {
  Wait *w = sync_find(t, s);
  int rc = read_blocked(s, w);
  if (rc != 0) return rc;
  *nread = 0;
  size_t total = len + spill_len;
  if (s->rlen == 0 && s->more && total >= READ_DIRECT_MIN &&
      s->tls == nullptr) { /* (TLS decrypts into the buffer) */
    size_t n;
    if (spill_len == 0 && readahead_young(s)) {
      /* A young stream whose messages outgrow the caller's buffer: take
       * what the kernel holds past it too, into ours, in the same call
       * (why: "read-ahead" in stream_engine.h). */
      uv_buf_t ours = room(s); /* {NULL, 0} without memory: a plain read */
      n = read_direct(s, buf, len, ours.base, ours.len);
      if (n > len) {
        s->rlen += n - len;
        n = len;
      }
    } else {
      n = read_direct(s, buf, len, spill, spill_len);
      if (spill_len == 0) readahead_after_direct(s, n, len);
    }
    if (n > 0) {
      *nread = n;
      done_waiting(s, w);
      return 0;
    }
  } else if (s->rlen == 0 && s->more && total > 0) {
    read_now(s);
  }
  if (total == 0 || s->rlen > 0) {
    size_t n = total < s->rlen ? total : s->rlen;
    consume_spill(s, buf, len, spill, n);
    *nread = n;
    done_waiting(s, w);
    return 0;
  }
  if (s->read_err != 0 || s->eof) {
    done_waiting(s, w);
    return s->read_err; /* 0 with *nread = 0 at EOF */
  }
  return wait_more(s, t, w, 1);
}

size_t stream_read_hint(Stream *s) {
  return s->rlen > 0 ? s->rlen : s->last_read;
}

int stream_peek(const void **data, size_t *len, Stream *s, Task *t) {
  Wait *w = sync_find(t, s);
  int rc = read_blocked(s, w);
  if (rc != 0) return rc;
  if (s->rlen == 0 && s->more) read_now(s);
  *data = s->rbuf + s->rstart;
  *len = s->rlen;
  if (s->rlen > 0 || s->read_err != 0 || s->eof) {
    done_waiting(s, w);
    return s->rlen > 0 ? 0 : s->read_err;
  }
  return wait_more(s, t, w, 1);
}

int stream_consume(Stream *s, size_t n) {
  if (n > s->rlen) return UVA_EINVAL;
  consume(s, nullptr, n);
  return 0;
}

int stream_read_exactly(Stream *s, Task *t, void *buf, size_t n) {
  Wait *w = sync_find(t, s);
  int rc = read_blocked(s, w);
  if (rc != 0) return rc;
  if (s->rlen == 0 && s->more && n > 0) read_now(s);
  if (s->rlen >= n) {
    consume(s, buf, n);
    done_waiting(s, w);
    return 0;
  }
  if (s->read_err != 0 || s->eof) {
    done_waiting(s, w);
    return s->read_err != 0 ? s->read_err : UVA_EINCOMPLETE;
  }
  return wait_more(s, t, w, n);
}

/* The length of the buffered line through the first separator sep (0:
 * none yet). `scanned` counts the bytes known to hold no separator, for
 * the one last looked for (scan_sep): a read waiting for a long line
 * searches only what arrived since, in linear time. A separator longer
 * than scan_sep is searched from the start each time. */
static size_t find_sep(Stream *s, const char *sep, size_t seplen) {
  if (seplen != s->scan_seplen || std::memcmp(sep, s->scan_sep, seplen) != 0) {
    s->scanned = 0;
    s->scan_seplen = seplen <= sizeof s->scan_sep ? uint8_t(seplen) : 0;
    if (s->scan_seplen != 0) std::memcpy(s->scan_sep, sep, seplen);
  }
  if (s->rlen < seplen) return 0;
  const char *p = s->rbuf + s->rstart;
  size_t last = s->rlen - seplen; /* the last offset a separator fits at */
  size_t from = s->scanned;
  while (from <= last) {
    const void *hit = std::memchr(p + from, sep[0], last + 1 - from);
    if (hit == nullptr) break;
    size_t at = size_t(static_cast<const char *>(hit) - p);
    if (std::memcmp(p + at + 1, sep + 1, seplen - 1) == 0) return at + seplen;
    from = at + 1;
  }
  /* The last seplen - 1 bytes may begin a separator that the next bytes
   * complete. */
  if (s->scan_seplen != 0) s->scanned = last + 1;
  return 0;
}

/* read_line (tail: the unterminated rest at the end of the stream is a
 * last line) and read_until (it is UVA_EINCOMPLETE). */
static int read_through(size_t *len, Stream *s, Task *t, const char *sep,
                        size_t seplen, void *buf, size_t buflen, bool tail) {
  Wait *w = sync_find(t, s);
  int rc = read_blocked(s, w);
  if (rc != 0) return rc;
  *len = 0;
  if (s->rlen == 0 && s->more) read_now(s);
  size_t line = find_sep(s, sep, seplen);
  if (line == 0 && s->read_err != 0) {
    /* The connection failed before the line ended: its error, as asyncio
     * raises it, not the fragment passed off as a line. The fragment
     * stays buffered (reads never lose bytes). */
    done_waiting(s, w);
    return s->read_err;
  }
  if (line == 0 && s->rlen > s->line_limit) { /* also at the end, as asyncio */
    *len = s->rlen >= seplen ? s->rlen - seplen + 1 : 0;
    done_waiting(s, w);
    return UVA_ELINETOOLONG;
  }
  if (line == 0 && s->eof) {
    if (!tail) { /* asyncio's IncompleteReadError: the caller takes them */
      *len = s->rlen;
      done_waiting(s, w);
      return UVA_EINCOMPLETE;
    }
    if (s->rlen == 0) { /* 0 with *len = 0 at EOF */
      done_waiting(s, w);
      return 0;
    }
    line = s->rlen; /* the unterminated tail */
  }
  if (line == 0) {
    /* One byte past the limit tells a too-long line; a limit of SIZE_MAX
     * has no byte past it (and + 1 would wrap to 0, stopping the reads). */
    size_t need = s->line_limit < SIZE_MAX ? s->line_limit + 1 : SIZE_MAX;
    return wait_more(s, t, w, need);
  }
  if (line > s->line_limit) {
    *len = line - seplen;
    done_waiting(s, w);
    return UVA_ELINETOOLONG;
  }
  *len = line;
  if (line > buflen) {
    done_waiting(s, w);
    return UVA_ENOBUFS;
  }
  consume(s, buf, line);
  s->scanned = 0;
  done_waiting(s, w);
  return 0;
}

int stream_read_line(size_t *len, Stream *s, Task *t, void *buf,
                     size_t buflen) {
  char delim = char(s->delim);
  return read_through(len, s, t, &delim, 1, buf, buflen, true);
}

int stream_read_until(size_t *len, Stream *s, Task *t, const char *sep,
                      size_t seplen, void *buf, size_t buflen) {
  return read_through(len, s, t, sep, seplen, buf, buflen, false);
}

int stream_read_to_eof(size_t *len, Stream *s, Task *t) {
  Wait *w = sync_find(t, s);
  int rc = read_blocked(s, w);
  if (rc != 0) return rc;
  if (s->eof || s->read_err != 0) {
    *len = s->rlen;
    done_waiting(s, w);
    return s->read_err;
  }
  s->to_eof = true;
  return wait_more(s, t, w, 0);
}

int stream_read_state(Stream *s) {
  if (s->read_err != 0) return s->read_err;
  return s->eof ? UVA_EOF : 0;
}

/* The end of the stream, from the program: no more reads from the kernel
 * (what it holds stays there), and the readers see the end after what is
 * buffered. */
void stream_feed_eof(Stream *s) {
  s->eof = true;
  s->more = false;
  libuv_read_stop(s);
  io_wake_all(s);
}

/* ---- writing ------------------------------------------------------------ */

struct WriteReq {
  uv_write_t req;
  size_t len;
  char data[1];
};

static void finish_close(Stream *s, bool abort, bool connecting);

static void maybe_finish_close(Stream *s) {
  if (s->st == StreamState::CLOSING && s->wqueued == 0 && s->sf == nullptr)
    close_now(s);
}

/* ---- the tail: writes made while a request is in flight --------------
 *
 * libuv writes each request with a system call of its own, so a burst of
 * small writes behind a full socket, one request each, cost one call per
 * write once the socket drained (100k writes: 61k write(2) calls after the
 * first 39k sends, where asyncio's transport buffer makes a handful).
 * While a request is in flight, writes are copied into one growing request
 * instead, handed to libuv when the requests ahead of it are done
 * (on_write): a burst leaves in as few calls as the kernel takes it in. */

static void on_write(uv_write_t *req, int status);

/* Hand the tail to libuv now, behind the requests in flight. */
static int tail_flush(Stream *s) {
  WriteReq *t = s->wtail;
  s->wtail = nullptr;
  s->wtail_cap = 0;
  uv_buf_t b = uv_buf_init(t->data, unsigned(t->len));
  int rc = FAULT_UV(uv_write(&t->req, &s->uv.s, &b, 1, on_write));
  if (rc != 0) {
    s->wqueued -= t->len;
    std::free(t);
  }
  return rc;
}

static void tail_drop(Stream *s) {
  if (s->wtail == nullptr) return;
  s->wqueued -= s->wtail->len;
  std::free(s->wtail);
  s->wtail = nullptr;
  s->wtail_cap = 0;
}

/* Copy total bytes of bufs (from `off` into bufs[0]) to the end of the
 * tail, grown as needed. total fits a libuv buffer (the caller checks);
 * a tail that would not is handed to libuv first. */
static int tail_add(Stream *s, const uva_buf_t *bufs, size_t nbufs, size_t off,
                    size_t total) {
  if (s->wtail != nullptr && s->wtail->len > UINT32_MAX - total) {
    int rc = tail_flush(s);
    if (rc != 0) return rc;
  }
  size_t used = s->wtail != nullptr ? s->wtail->len : 0;
  if (s->wtail == nullptr || s->wtail_cap - used < total) {
    size_t cap = s->wtail_cap > 0 ? s->wtail_cap : 4096;
    while (cap - used < total)
      cap *= 2;
    auto *t = static_cast<WriteReq *>(
        fault_realloc(s->wtail, offsetof(WriteReq, data) + cap));
    if (t == nullptr) return UVA_ENOMEM; /* the tail stays as it was */
    if (s->wtail == nullptr) t->len = 0;
    s->wtail = t;
    s->wtail_cap = cap;
  }
  char *p = s->wtail->data + used;
  for (size_t i = 0; i < nbufs; i++, off = 0) {
    size_t n = bufs[i].len - off;
    const char *from = static_cast<const char *>(bufs[i].base) + off;
    if (n > 0) std::memcpy(p, from, n);
    p += n;
  }
  s->wtail->len += total;
  s->wqueued += total;
  return 0;
}

static void on_write(uv_write_t *req, int status) {
  WriteReq *wr = reinterpret_cast<WriteReq *>(req);
  Stream *s = stream_of(reinterpret_cast<uv_handle_t *>(req->handle));
  s->wqueued -= wr->len;
  std::free(wr);
  if (status < 0 && status != UV_ECANCELED && s->write_err == 0)
    s->write_err = status;
  if (s->wtail != nullptr) {
    if (status < 0 || s->write_err != 0 || s->st == StreamState::CLOSED) {
      tail_drop(s); /* failed or closed: it cannot go out either */
    } else if (s->wqueued == s->wtail->len && s->sf == nullptr) {
      /* nothing else in flight, and no sendfile the tail waits for */
      int rc = tail_flush(s);
      if (rc != 0 && s->write_err == 0) s->write_err = rc;
    }
  }
  if (s->sf != nullptr && s->sf->held) { /* a sendfile waits for these */
    if (s->write_err != 0)
      work_end_held(s->sf, s->write_err);
    else if (s->wqueued == (s->wtail != nullptr ? s->wtail->len : 0))
      work_start_held(s->sf);
  }
  if (s->wqueued <= s->low_water || status < 0) io_wake_all(s);
  maybe_finish_close(s);
}

/* uv_try_write for a TCP stream with nothing queued, as send(2): on a
 * socket it costs the kernel less than the write(2) libuv makes (no VFS
 * layer: about 2 % of an echo round trip's system time, measured). */
static int try_send(Stream *s, const char *p, size_t len) {
  if (len > INT32_MAX) len = INT32_MAX; /* the count fits the int result */
#ifndef _WIN32
  int fd = fd_of(s);
  if (fd >= 0) {
    ssize_t n;
    do {
      n = ::send(fd, p, len, MSG_NOSIGNAL);
    } while (n < 0 && errno == EINTR);
    if (n >= 0) return int(n);
    return errno == EAGAIN || errno == EWOULDBLOCK ? UV_EAGAIN : -errno;
  }
#endif
  uv_buf_t b = uv_buf_init(const_cast<char *>(p), unsigned(len));
  return uv_try_write(&s->uv.s, &b, 1);
}

int stream_write(size_t *queued, Stream *s, const void *buf, size_t len) {
  if (s->tls != nullptr && s->st == StreamState::OPEN) {
    uva_buf_t b = {buf, len};
    return tls_write(queued, s, &b, 1);
  }
  return stream_write_raw(queued, s, buf, len);
}

/* The bytes as they are (TLS: its records), to the kernel or the queue. */
int stream_write_raw(size_t *queued, Stream *s, const void *buf, size_t len) {
  if (s->st >= StreamState::CLOSING) return UVA_ECLOSED;
  if (s->st == StreamState::CONNECTING)
    return s->conn_err != 0 ? s->conn_err : UVA_ENOTCONN;
  if (s->write_err != 0) return s->write_err;
  if (s->shut_requested) return UVA_EPIPE;
  const char *p = static_cast<const char *>(buf);
  if (s->wqueued == 0 && s->sf == nullptr && len > 0) {
    int n;
    if (s->type == UV_TCP) {
      n = FAULT_UV(try_send(s, p, len));
    } else {
      uv_buf_t b = uv_buf_init(const_cast<char *>(p), unsigned(len));
      n = FAULT_UV(uv_try_write(&s->uv.s, &b, 1));
    }
    if (n >= 0) {
      p += n;
      len -= size_t(n);
    } else if (n != UV_EAGAIN) {
      s->write_err = n;
      return n;
    }
  }
  if (len > 0 && (s->wqueued > 0 || s->sf != nullptr)) {
    /* behind a request in flight, or a sendfile */
    uva_buf_t piece = {p, len};
    int rc = tail_add(s, &piece, 1, 0, len);
    if (rc != 0) return rc;
  } else if (len > 0) { /* copy only what the kernel did not take */
    WriteReq *wr =
        static_cast<WriteReq *>(fault_malloc(offsetof(WriteReq, data) + len));
    if (wr == nullptr) return UVA_ENOMEM;
    std::memcpy(wr->data, p, len);
    wr->len = len;
    uv_buf_t b = uv_buf_init(wr->data, unsigned(len));
    int rc = FAULT_UV(uv_write(&wr->req, &s->uv.s, &b, 1, on_write));
    if (rc != 0) {
      std::free(wr);
      s->write_err = rc;
      return rc;
    }
    s->wqueued += len;
  }
  if (queued != nullptr) *queued = s->wqueued;
  return 0;
}

/* The most pieces one vectored system call takes (Linux's IOV_MAX). */
#if defined(IOV_MAX) && IOV_MAX < 1024
static constexpr size_t WRITEV_MAX = IOV_MAX;
#else
static constexpr size_t WRITEV_MAX = 1024;
#endif

/* One vectored write of bufs[0..n) (n <= WRITEV_MAX): the count written,
 * UV_EAGAIN, or an error, as uv_try_write. sendmsg on a TCP socket (see
 * try_send), writev on other descriptors, else uv_try_write. */
static int try_writev(Stream *s, const uva_buf_t *bufs, size_t n) {
#ifndef _WIN32
  int fd = fd_of(s);
  if (fd >= 0) {
    struct iovec iov[WRITEV_MAX];
    size_t sum = 0, k = 0;
    for (size_t i = 0; i < n && sum < INT32_MAX; i++) {
      if (bufs[i].len == 0) continue;
      iov[k].iov_base = const_cast<void *>(bufs[i].base);
      iov[k].iov_len = bufs[i].len;
      sum += bufs[i].len;
      k++;
    }
    if (sum > INT32_MAX) /* the count fits the int result */
      iov[k - 1].iov_len -= sum - INT32_MAX;
    ssize_t w;
    do {
      if (s->type == UV_TCP) {
        struct msghdr mh = {};
        mh.msg_iov = iov;
        mh.msg_iovlen = k;
        w = ::sendmsg(fd, &mh, MSG_NOSIGNAL);
      } else {
        w = ::writev(fd, iov, int(k));
      }
    } while (w < 0 && errno == EINTR);
    if (w >= 0) return int(w);
    return errno == EAGAIN || errno == EWOULDBLOCK ? UV_EAGAIN : -errno;
  }
#endif
  uv_buf_t ub[WRITEV_MAX];
  size_t sum = 0;
  for (size_t i = 0; i < n; i++) {
    ub[i] = uv_buf_init(static_cast<char *>(const_cast<void *>(bufs[i].base)),
                        unsigned(bufs[i].len));
    sum += bufs[i].len;
  }
  if (sum > INT32_MAX) return UV_EAGAIN; /* rare: let the queue write it */
  return uv_try_write(&s->uv.s, ub, unsigned(n));
}

/* What stream_write tries first: send(2) on TCP, else uv_try_write. */
static int try_write_flat(Stream *s, const char *p, size_t len) {
  if (s->type == UV_TCP) return try_send(s, p, len);
  if (len > INT32_MAX) len = INT32_MAX; /* the count fits the int result */
  uv_buf_t b = uv_buf_init(const_cast<char *>(p), unsigned(len));
  return uv_try_write(&s->uv.s, &b, 1);
}

/* stream_write of the concatenation of bufs (total bytes, checked by the
 * caller to fit a libuv buffer). Up to WRITEV_MAX pieces: one vectored
 * write, then one request with a copy of the rest. More pieces than one
 * vectored call takes: all are copied into the request's buffer first (a
 * queued rest needs that copy anyway) and sent from there in one call;
 * copying small pieces costs less than a system call per WRITEV_MAX of
 * them (100k items of 14 bytes: 98 sendmsg calls, against one send). */
int stream_writev(size_t *queued, Stream *s, const uva_buf_t *bufs,
                  size_t nbufs, size_t total) {
  if (s->tls != nullptr && s->st == StreamState::OPEN)
    return tls_write(queued, s, bufs, nbufs);
  if (s->st >= StreamState::CLOSING) return UVA_ECLOSED;
  if (s->st == StreamState::CONNECTING)
    return s->conn_err != 0 ? s->conn_err : UVA_ENOTCONN;
  if (s->write_err != 0) return s->write_err;
  if (s->shut_requested) return UVA_EPIPE;
  size_t i = 0;   /* the first piece not yet written */
  size_t off = 0; /* bytes of bufs[i] written */
  if (s->wqueued == 0 && s->sf == nullptr && nbufs <= WRITEV_MAX && total > 0) {
    int w = FAULT_UV(try_writev(s, bufs, nbufs));
    if (w < 0 && w != UV_EAGAIN) {
      s->write_err = w;
      return w;
    }
    if (w > 0) { /* step over what went out: whole pieces, then part of one */
      total -= size_t(w);
      size_t left = size_t(w);
      while (i < nbufs && left >= bufs[i].len)
        left -= bufs[i++].len;
      off = left;
    }
  }
  if (total > 0 && (s->wqueued > 0 || s->sf != nullptr)) {
    /* behind a request in flight, or a sendfile */
    int rc = tail_add(s, bufs, nbufs, 0, total);
    if (rc != 0) return rc;
  } else if (total > 0) { /* one request: a copy of what was not taken */
    WriteReq *wr =
        static_cast<WriteReq *>(fault_malloc(offsetof(WriteReq, data) + total));
    if (wr == nullptr) return UVA_ENOMEM;
    char *p = wr->data;
    for (; i < nbufs; i++, off = 0) {
      size_t n = bufs[i].len - off;
      const char *from = static_cast<const char *>(bufs[i].base) + off;
      if (n > 0) std::memcpy(p, from, n);
      p += n;
    }
    size_t sent = 0;
    if (s->wqueued == 0 && nbufs > WRITEV_MAX) {
      int w = FAULT_UV(try_write_flat(s, wr->data, total));
      if (w < 0 && w != UV_EAGAIN) {
        std::free(wr);
        s->write_err = w;
        return w;
      }
      if (w > 0) sent = size_t(w);
    }
    if (sent == total) {
      std::free(wr);
    } else {
      wr->len = total - sent;
      uv_buf_t b = uv_buf_init(wr->data + sent, unsigned(total - sent));
      int rc = FAULT_UV(uv_write(&wr->req, &s->uv.s, &b, 1, on_write));
      if (rc != 0) {
        std::free(wr);
        s->write_err = rc;
        return rc;
      }
      s->wqueued += total - sent;
    }
  }
  if (queued != nullptr) *queued = s->wqueued;
  return 0;
}

int stream_fileno(int *fd, Stream *s) {
  if (s->st >= StreamState::CLOSING) return UVA_ECLOSED;
  if (s->st == StreamState::CONNECTING) return UVA_ENOTCONN;
#ifndef _WIN32
  int f = fd_of(s);
  if (f < 0) return UVA_ENOTSUP;
  *fd = f;
  return 0;
#else
  (void) fd;
  return UVA_ENOTSUP;
#endif
}

/* The drain condition, for a task that may hold a node already. */
static int drain_check(Stream *s, Task *t, Wait *w) {
  if (s->write_err != 0 || s->st >= StreamState::CLOSING ||
      (s->wqueued <= s->low_water && s->sf == nullptr)) {
    int rc = s->write_err != 0               ? s->write_err
             : s->st >= StreamState::CLOSING ? UVA_ECLOSED
                                             : 0;
    if (w != nullptr) sync_drop(w);
    return rc;
  }
  if (w != nullptr) return UVA_EAGAIN;
  return sync_enlist(s, t, WaitKind::IO);
}

int stream_drain(Stream *s, Task *t) {
  return drain_check(s, t, sync_find(t, s));
}

int stream_write_drain(Stream *s, Task *t, const void *buf, size_t len) {
  Wait *w = sync_find(t, s);
  if (w == nullptr) { /* first call: write, then wait */
    int rc = stream_write(nullptr, s, buf, len);
    if (rc != 0) return rc;
  }
  return drain_check(s, t, w);
}

/* A pipe's shutdown: shutdown(2) is for sockets, and a pipe's write side
 * is its descriptor, so once libuv has written the queue (on_shutdown,
 * where libuv's shutdown(2) failed with ENOTSOCK) the stream lets go of
 * the pipe: the descriptor's number, which the libuv handle keeps until
 * uva_stream_close, is made to refer to the read end of an empty pipe
 * with no writer (reading it finds the end, writing it fails), so the
 * reader sees the end once no other descriptor holds the write end. First
 * the descriptor leaves both epoll sets while it still names the pipe (a
 * copy of it elsewhere would keep the entry alive, naming a freed stream
 * or making libuv spin). libuv's watcher is stopped by then (reading is
 * stopped here, and the write queue is empty), so its next start adds the
 * new descriptor afresh. */
static int pipe_release_write(Stream *s) {
#if defined(_WIN32)
  (void) s;
  return UVA_ENOTSOCK;
#else
  int fd = fd_of(s);
  if (fd < 0) return UVA_EBADF;
  int empty[2];
#ifdef __linux__
  if (pipe2(empty, O_CLOEXEC | O_NONBLOCK) != 0) return -errno;
#else
  if (pipe(empty) != 0) return -errno;
  fcntl(empty[0], F_SETFD, FD_CLOEXEC);
  fcntl(empty[0], F_SETFL, O_NONBLOCK);
#endif
  close(empty[1]);
  edge_read_on_close(s);
  if (s->reading) libuv_read_stop(s);
#ifdef __linux__
  epoll_ctl(uv_backend_fd(&s->loop->uv), EPOLL_CTL_DEL, fd, nullptr);
#endif
  int rc; /* atomic: fd never names nothing, nor another file */
  do {
#ifdef __linux__
    rc = dup3(empty[0], fd, O_CLOEXEC);
#else
    rc = dup2(empty[0], fd);
#endif
  } while (rc < 0 && errno == EINTR);
  int err = rc < 0 ? -errno : 0;
  close(empty[0]);
  if (err != 0) return err;
#ifndef __linux__
  fcntl(fd, F_SETFD, FD_CLOEXEC);
#endif
  maybe_read(s); /* a reader waiting finds the end */
  return 0;
#endif
}

static void on_shutdown(uv_shutdown_t *req, int status) {
  Stream *s = stream_of(reinterpret_cast<uv_handle_t *>(req->handle));
  if (status == UV_ENOTSOCK && s->type == UV_NAMED_PIPE &&
      s->st == StreamState::OPEN)
    status = pipe_release_write(s);
  s->shut_done = true;
  s->shut_err = status == UV_ECANCELED ? UVA_ECLOSED : status;
  io_wake_all(s);
  sync_unref(s); /* the request's reference */
}

int stream_shutdown(Stream *s, Task *t) {
  Wait *w = sync_find(t, s);
  if (s->shut_done) {
    int rc = s->shut_err; /* read first: the drop may free the stream */
    if (w != nullptr) sync_drop(w);
    return rc;
  }
  if (s->st >= StreamState::CLOSING) {
    if (w != nullptr) sync_drop(w);
    return UVA_ECLOSED;
  }
  if (!s->shut_requested) {
    if (s->st == StreamState::CONNECTING)
      return s->conn_err != 0 ? s->conn_err : UVA_ENOTCONN;
    if (s->sf != nullptr) { /* the end goes after the file: wait for it */
      if (w != nullptr) return UVA_EAGAIN;
      return sync_enlist(s, t, WaitKind::IO);
    }
    /* TLS: close_notify first, queued like any record. */
    tls_close_notify(s);
    /* The tail must be in libuv's queue, ahead of the shutdown. */
    int rc = s->wtail != nullptr ? tail_flush(s) : 0;
    if (rc != 0) {
      s->write_err = rc; /* the tail's bytes are lost */
      return rc;
    }
    rc = FAULT_UV(uv_shutdown(&s->sreq, &s->uv.s, on_shutdown));
    if (rc != 0) return rc;
    s->refs.fetch_add(1, std::memory_order_relaxed);
    s->shut_requested = true;
  }
  if (w != nullptr) return UVA_EAGAIN;
  return sync_enlist(s, t, WaitKind::IO);
}

/* ---- connecting --------------------------------------------------------- */

static void opened(Stream *s) {
  s->st = StreamState::OPEN;
  maybe_read(s);
  io_wake_all(s);
}

static void connect_failed(Stream *s, int err) {
  s->conn_err = err;
  io_wake_all(s);
}

static void try_next_address(Stream *s);

static void on_connect(uv_connect_t *req, int status) {
  Stream *s = stream_of(reinterpret_cast<uv_handle_t *>(req->handle));
  if (s->st != StreamState::CONNECTING) return; /* closed meanwhile */
  if (status == 0) {
    if (s->ai_list != nullptr) {
      uv_freeaddrinfo(s->ai_list);
      s->ai_list = s->ai_next = nullptr;
    }
    opened(s);
    return;
  }
  s->ai_err = status;
  if (s->ai_next == nullptr) {
    connect_failed(s, status);
    return;
  }
  /* A failed socket cannot connect again: close it, then a fresh one. */
  s->retrying = true;
  uv_close(&s->uv.h, [](uv_handle_t *h) {
    Stream *s = stream_of(h);
    s->retrying = false;
    if (s->st != StreamState::CONNECTING) { /* closed by its owner meanwhile */
      on_stream_closed(h);
      return;
    }
    int rc = uv_tcp_init(&s->loop->uv, &s->uv.tcp);
    if (rc != 0) {
      connect_failed(s, rc);
      return;
    }
    bind_handle(s);
    try_next_address(s);
  });
}

static void try_next_address(Stream *s) {
  while (s->ai_next != nullptr) {
    struct addrinfo *ai = s->ai_next;
    s->ai_next = ai->ai_next;
    int rc =
        FAULT_UV(uv_tcp_connect(&s->creq, &s->uv.tcp, ai->ai_addr, on_connect));
    if (rc == 0) return;
    s->ai_err = rc;
  }
  connect_failed(s, s->ai_err != 0 ? s->ai_err : UVA_EAI_NONAME);
}

static void on_resolved(uv_getaddrinfo_t *req, int status,
                        struct addrinfo *res) {
  Stream *s = static_cast<Stream *>(req->data);
  std::free(req);
  if (s->st != StreamState::CONNECTING) { /* closed while resolving */
    if (res != nullptr) uv_freeaddrinfo(res);
  } else if (status != 0) {
    connect_failed(s, status);
  } else {
    s->ai_list = s->ai_next = res;
    try_next_address(s);
  }
  sync_unref(s); /* the resolver's reference */
}

int tcp_connect(Stream **out, Loop *l, const char *host, int port) {
  if (port < 0 || port > 65535) return UVA_EINVAL;
  Stream *s = stream_alloc(l);
  if (s == nullptr) return UVA_ENOMEM;
  s->type = UV_TCP;
  s->st = StreamState::CONNECTING;
  int rc = FAULT_UV(uv_tcp_init(&l->uv, &s->uv.tcp));
  if (rc != 0) {
    io_destroy(s);
    return rc;
  }
  bind_handle(s);
  auto *req =
      static_cast<uv_getaddrinfo_t *>(fault_malloc(sizeof(uv_getaddrinfo_t)));
  struct addrinfo hints;
  std::memset(&hints, 0, sizeof hints);
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  char service[16];
  std::snprintf(service, sizeof service, "%d", port);
  rc = req == nullptr ? UVA_ENOMEM : 0;
  if (rc == 0) {
    req->data = s;
    rc = FAULT_UV(
        uv_getaddrinfo(&l->uv, req, on_resolved, host, service, &hints));
  }
  if (rc != 0) {
    std::free(req);
    s->st = StreamState::CLOSED;
    uv_close(&s->uv.h, on_stream_closed); /* frees the stream */
    return rc;
  }
  s->refs.fetch_add(1, std::memory_order_relaxed); /* held by the resolver */
  *out = s;
  return 0;
}

static void on_pipe_connect(uv_connect_t *req, int status) {
  Stream *s = stream_of(reinterpret_cast<uv_handle_t *>(req->handle));
  if (s->st != StreamState::CONNECTING) return;
  if (status == 0)
    opened(s);
  else
    connect_failed(s, status);
}

int pipe_connect(Stream **out, Loop *l, const char *path) {
  Stream *s = stream_alloc(l);
  if (s == nullptr) return UVA_ENOMEM;
  s->type = UV_NAMED_PIPE;
  s->st = StreamState::CONNECTING;
  int rc = uv_pipe_init(&l->uv, &s->uv.pipe, 0);
  if (rc != 0) {
    io_destroy(s);
    return rc;
  }
  bind_handle(s);
  uv_pipe_connect(&s->creq, &s->uv.pipe, path, on_pipe_connect);
  *out = s;
  return 0;
}

int stream_wait_connected(Stream *s, Task *t) {
  Wait *w = sync_find(t, s);
  int rc = 0;
  if (s->st >= StreamState::CLOSING)
    rc = UVA_ECLOSED;
  else if (s->st == StreamState::CONNECTING)
    rc = s->conn_err;
  if (rc != 0 || s->st == StreamState::OPEN) {
    if (w != nullptr) sync_drop(w);
    return rc;
  }
  if (w != nullptr) return UVA_EAGAIN;
  return sync_enlist(s, t, WaitKind::IO);
}

/* Whether a handle of the loop that is not closing holds fd. */
static bool fd_in_use(Loop *l, int fd) {
#ifdef _WIN32
  (void) l;
  (void) fd;
  return false; /* descriptors are CRT numbers there, handles in libuv */
#else
#ifdef __linux__
  if (poll_holds(l, fd)) return true; /* polls are no libuv handles here */
#endif
  struct Probe {
    int fd;
    bool found;
  } probe = {fd, false};
  uv_walk(
      &l->uv,
      [](uv_handle_t *h, void *arg) {
        Probe *p = static_cast<Probe *>(arg);
        uv_os_fd_t hfd;
        /* uv_fileno fails for closing handles and kinds without one. */
        if (uv_fileno(h, &hfd) == 0 && hfd == p->fd) p->found = true;
      },
      &probe);
  return probe.found;
#endif
}

int stream_open_fd(Stream **out, Loop *l, int fd) {
  if (fd < 0) return UVA_EBADF;
  uv_handle_type type = uv_guess_handle(fd);
  if (type != UV_TTY && type != UV_NAMED_PIPE && type != UV_TCP)
    return type == UV_UNKNOWN_HANDLE ? UVA_EBADF : UVA_EINVAL;
  /* A descriptor one handle owns already: libuv refuses it only while that
   * handle's watcher is started (its poll phase reading it), and never when
   * the loop's own epoll set reads it. Both pollers refuse it always. */
  if (fd_in_use(l, fd)) return UVA_EEXIST;
  Stream *s = stream_alloc(l);
  if (s == nullptr) return UVA_ENOMEM;
  s->type = type;
  int rc;
  if (type == UV_TTY) {
    rc = uv_tty_init(&l->uv, &s->uv.tty, fd, 0);
  } else if (type == UV_NAMED_PIPE) {
    rc = uv_pipe_init(&l->uv, &s->uv.pipe, 0);
    if (rc == 0 && (rc = uv_pipe_open(&s->uv.pipe, fd)) != 0) {
      s->st = StreamState::CLOSED;
      s->uv.h.data = s;
      uv_close(&s->uv.h, on_stream_closed);
      return rc;
    }
  } else {
    rc = uv_tcp_init(&l->uv, &s->uv.tcp);
    if (rc == 0 && (rc = uv_tcp_open(&s->uv.tcp, fd)) != 0) {
      s->st = StreamState::CLOSED;
      s->uv.h.data = s;
      uv_close(&s->uv.h, on_stream_closed);
      return rc;
    }
  }
  if (rc != 0) {
    io_destroy(s);
    return rc;
  }
  bind_handle(s);
  opened(s);
  *out = s;
  return 0;
}

/* A child process's pipe (process.cpp): the memory is taken before the
 * child starts (stream_reserve), so running out of it starts nothing; the
 * descriptor, the parent's end of a fresh pipe, is adopted after
 * (stream_open_pipe). A reserved stream not opened goes back with
 * io_destroy. On failure of the open the stream closes itself and fd stays
 * the caller's. */
Stream *stream_reserve(Loop *l) { return stream_alloc(l); }

int stream_open_pipe(Stream *s, int fd) {
  s->type = UV_NAMED_PIPE;
  int rc = uv_pipe_init(&s->loop->uv, &s->uv.pipe, 0);
  if (rc != 0) {
    io_destroy(s);
    return rc;
  }
  rc = uv_pipe_open(&s->uv.pipe, fd);
  if (rc != 0) {
    s->st = StreamState::CLOSED;
    s->uv.h.data = s;
    uv_close(&s->uv.h, on_stream_closed);
    return rc;
  }
  bind_handle(s);
  opened(s);
  return 0;
}

/* ---- settings, addresses, close ----------------------------------------- */

int stream_set(Stream *s, uva_stream_option option, size_t value) {
  switch (option) {
    case UVA_STREAM_HIGH_WATER:
      if (value == 0) return UVA_EINVAL;
      s->high_water = value;
      break;
    case UVA_STREAM_LOW_WATER:
      s->low_water = value;
      break;
    case UVA_STREAM_LINE_LIMIT:
      if (value == 0) return UVA_EINVAL;
      s->line_limit = value;
      break;
    case UVA_STREAM_DELIMITER:
      if (value > 255) return UVA_EINVAL;
      s->delim = int(value);
      s->scanned = 0;
      break;
    case UVA_STREAM_NODELAY:
      if (value > 1) return UVA_EINVAL;
      if (s->type != UV_TCP) return UVA_ENOTSUP;
      if (s->st >= StreamState::CLOSING) return UVA_ECLOSED;
      return uv_tcp_nodelay(&s->uv.tcp, int(value));
    default:
      return UVA_EINVAL;
  }
  libuv_read_pause_if_full(s);
  maybe_read(s);
  return 0;
}

int stream_address(Stream *s, bool peer, char *host, size_t hostlen,
                   int *port) {
  if (s->st == StreamState::CONNECTING) return UVA_ENOTCONN;
  if (s->st != StreamState::OPEN) return UVA_ECLOSED;
  if (s->type == UV_TCP) {
    struct sockaddr_storage ss;
    int len = sizeof ss;
    int rc = peer ? uv_tcp_getpeername(&s->uv.tcp,
                                       reinterpret_cast<sockaddr *>(&ss), &len)
                  : uv_tcp_getsockname(&s->uv.tcp,
                                       reinterpret_cast<sockaddr *>(&ss), &len);
    if (rc != 0) return rc;
    return addr_format(reinterpret_cast<sockaddr *>(&ss), host, hostlen, port);
  }
  if (s->type == UV_NAMED_PIPE) {
    size_t n = hostlen;
    int rc = peer ? uv_pipe_getpeername(&s->uv.pipe, host, &n)
                  : uv_pipe_getsockname(&s->uv.pipe, host, &n);
    if (rc == UV_ENOBUFS) return UVA_ENOBUFS;
    if (rc != 0) return rc;
    if (n < hostlen) host[n] = '\0';
    if (port != nullptr) *port = 0;
    return 0;
  }
  return UVA_ENOTSUP;
}

int stream_close(Stream *s, uva_stream_close_cb cb, void *data, bool abort) {
  if (s->st == StreamState::CLOSED) return 0;
  /* A graceful close of a TLS stream says so (the peer then reads the
   * end, not a truncation); an abort does not. */
  if (!abort && s->st == StreamState::OPEN && s->sf == nullptr)
    tls_close_notify(s);
  if (s->st == StreamState::CLOSING && !abort) return 0;
  if (s->st != StreamState::CLOSING) {
    s->close_cb = cb;
    s->close_data = data;
  } else if (cb != nullptr) {
    s->close_cb = cb;
    s->close_data = data;
  }
  bool connecting = s->st == StreamState::CONNECTING;
  s->st = StreamState::CLOSING;
  io_wake_all(s);
  if (s->sf != nullptr) {
    /* A pool thread may be writing to the descriptor: stop it, and close
     * once it let go (stream_sendfile_end). What was queued behind the
     * file cannot follow a file cut short. */
    s->sf_close = true;
    s->sf_abort = abort;
    tail_drop(s);
    s->sf->stop.store(true, std::memory_order_relaxed);
    work_end_held(s->sf, UVA_ECLOSED); /* not started: it ends now */
    return 0;
  }
  finish_close(s, abort, connecting);
  return 0;
}

/* The rest of stream_close, once no sendfile uses the descriptor. */
static void finish_close(Stream *s, bool abort, bool connecting) {
  if (abort && !connecting && s->type == UV_TCP && !s->retrying) {
    /* Drop the queue and tell the peer with a reset. */
    s->st = StreamState::CLOSED;
    libuv_read_on_close(s);
    edge_read_on_close(s);
    if (uv_tcp_close_reset(&s->uv.tcp, on_stream_closed) == 0) return;
    s->st = StreamState::CLOSING;
  }
  if (abort || connecting || s->wqueued == 0 || s->write_err != 0) close_now(s);
  /* else: on_write closes once the queue is flushed */
}

/* ---- sendfile (the job is fs.cpp's) --------------------------------------- */

int stream_sendfile_prepare(Stream *s, int *fd, bool *now) {
  if (s->st >= StreamState::CLOSING) return UVA_ECLOSED;
  if (s->st == StreamState::CONNECTING)
    return s->conn_err != 0 ? s->conn_err : UVA_ENOTCONN;
  if (s->write_err != 0) return s->write_err;
  if (s->shut_requested) return UVA_EPIPE;
  if (s->sf != nullptr) return UVA_EBUSY;
  if (s->tls != nullptr) return UVA_ENOTSUP; /* the file would go in clear */
#ifndef _WIN32
  int f = fd_of(s);
#else
  int f = -1;
#endif
  if (f < 0) return UVA_ENOTSUP;
  /* The bytes queued before the file go first: the tail joins libuv's
   * queue now (writes made from here on wait behind the file). */
  if (s->wtail != nullptr) {
    int rc = tail_flush(s);
    if (rc != 0) {
      s->write_err = rc;
      return rc;
    }
  }
  *fd = f;
  *now = s->wqueued == 0;
  return 0;
}

void stream_sendfile_end(Stream *s, int result, int64_t sent) {
  s->sf = nullptr;
  if (s->sf_close) {
    s->sf_close = false;
    finish_close(s, s->sf_abort, false);
    return;
  }
  /* A file that failed or was stopped part-way leaves the stream's bytes
   * other than what was written: what was queued behind it must not
   * follow as if it had all gone, so the write side fails from here on
   * (as after a write error). Only a job dropped before it started sent
   * nothing and changes nothing. */
  bool dropped = result == UVA_ECANCELED && sent == 0;
  if (result < 0 && !dropped && s->write_err == 0) {
    s->write_err = result == UVA_ECLOSED ? UVA_ECANCELED : result;
    tail_drop(s);
  }
  /* The writes made meanwhile go out now, if nothing else is in flight. */
  if (s->wtail != nullptr && s->wqueued == s->wtail->len) {
    int rc = tail_flush(s);
    if (rc != 0 && s->write_err == 0) s->write_err = rc;
  }
  io_wake_all(s); /* drains and shutdowns waiting for the file */
}

/* ---- servers ------------------------------------------------------------ */

static void on_server_closed(uv_handle_t *h) {
  Server *sv = static_cast<Server *>(h->data);
  io_wake_all(sv);
  if (sv->close_cb != nullptr)
    sv->close_cb(reinterpret_cast<uva_server_t *>(sv), sv->close_data);
  sync_unref(sv);
}

/* Accept one pending connection into a new open stream. *taken (may be
 * NULL) says whether the connection left libuv, even if the call failed. */
static int accept_one(Stream **out, Server *sv, bool *taken = nullptr) {
  Loop *l = sv->loop;
  Stream *s = stream_alloc(l);
  if (s == nullptr) return UVA_ENOMEM;
  s->type = sv->type;
  int rc = FAULT_UV(sv->type == UV_TCP ? uv_tcp_init(&l->uv, &s->uv.tcp)
                                       : uv_pipe_init(&l->uv, &s->uv.pipe, 0));
  if (rc != 0) {
    io_destroy(s);
    return rc;
  }
  bind_handle(s);
  if (taken != nullptr) *taken = true;
  rc = uv_accept(&sv->uv.s, &s->uv.s);
  /* An injected fault drops the accepted connection, as a real failure of
   * uv_accept does (libuv closes the descriptor). */
  if (rc == 0 && fault_hit(FAULT_IO)) rc = UV_EIO;
  if (rc != 0) {
    s->st = StreamState::CLOSED;
    uv_close(&s->uv.h, on_stream_closed);
    return rc;
  }
  opened(s);
  *out = s;
  return 0;
}

static void serve_pending(Server *sv);

static void retry_pending(Loop *, Call *call) {
  Server *sv = static_cast<Server *>(call->a);
  serve_pending(sv);
  sync_unref(sv); /* the retry's reference */
}

/* Hand the connections libuv holds to the connection callback. One that
 * cannot be taken now (no memory for its stream) stays pending and is
 * tried again at the next pass: libuv stops watching the listening socket
 * until it is accepted, so dropping it would stop the server. */
static void serve_pending(Server *sv) {
  while (sv->on_conn != nullptr && sv->pending > 0 && !sv->closed) {
    Stream *s;
    bool taken = false;
    int rc = accept_one(&s, sv, &taken);
    if (taken) sv->pending--;
    if (rc == 0) {
      sv->on_conn(reinterpret_cast<uva_server_t *>(sv),
                  reinterpret_cast<uva_stream_t *>(s), sv->on_conn_data);
    } else if (!taken) {
      if (loop_call_soon(sv->loop, retry_pending, sv, nullptr, nullptr) == 0)
        sv->refs.fetch_add(1, std::memory_order_relaxed);
      return;
    }
  }
}

static void on_connection(uv_stream_t *h, int status) {
  Server *sv = static_cast<Server *>(h->data);
  if (status < 0) return; /* e.g. EMFILE: libuv sheds it; keep serving */
  /* libuv stops watching the socket until this one is accepted. */
  sv->pending++;
  if (sv->on_conn != nullptr) {
    serve_pending(sv);
    return;
  }
  io_wake_all(sv);
}

static int listen_common(Server **out, Loop *l, uv_handle_type type,
                         const struct sockaddr *addr, const char *path,
                         int backlog) {
  Server *sv = static_cast<Server *>(fault_calloc(1, sizeof(Server)));
  if (sv == nullptr) return UVA_ENOMEM;
  sync_init(sv, l, MAGIC_SERVER);
  sv->type = type;
  int rc = FAULT_UV(type == UV_TCP ? uv_tcp_init(&l->uv, &sv->uv.tcp)
                                   : uv_pipe_init(&l->uv, &sv->uv.pipe, 0));
  if (rc != 0) {
    l->handles--;
    std::free(sv);
    return rc;
  }
  sv->uv.h.data = sv;
  rc = FAULT_UV(type == UV_TCP ? uv_tcp_bind(&sv->uv.tcp, addr, 0)
                               : uv_pipe_bind(&sv->uv.pipe, path));
  if (rc == 0)
    rc = FAULT_UV(
        uv_listen(&sv->uv.s, backlog > 0 ? backlog : 511, on_connection));
  if (rc != 0) {
    /* Detached: the close completes later (uva_loop_close reaps it). */
    sv->closed = true;
    l->handles--;
    sv->magic = MAGIC_FREED;
    uv_close(&sv->uv.h, [](uv_handle_t *h) { std::free(h->data); });
    return rc;
  }
  *out = sv;
  return 0;
}

int tcp_listen(Server **out, Loop *l, const char *host, int port, int backlog) {
  struct sockaddr_storage ss;
  int rc = addr_parse(&ss, host, port);
  if (rc != 0) return rc;
  return listen_common(out, l, UV_TCP, reinterpret_cast<sockaddr *>(&ss),
                       nullptr, backlog);
}

int pipe_listen(Server **out, Loop *l, const char *path, int backlog) {
  return listen_common(out, l, UV_NAMED_PIPE, nullptr, path, backlog);
}

int server_accept(Stream **out, Server *sv, Task *t) {
  Wait *w = sync_find(t, sv);
  if (sv->closed) {
    if (w != nullptr) sync_drop(w);
    return UVA_ECLOSED;
  }
  if (sv->on_conn != nullptr) return UVA_EINVAL;
  if (sv->pending > 0) {
    /* A connection we could not take (no memory for its stream) stays with
     * libuv for the next call: libuv stops watching the listening socket
     * until it is accepted, so forgetting it would stop the server. */
    bool taken = false;
    int rc = accept_one(out, sv, &taken);
    if (taken) sv->pending--;
    if (w != nullptr) sync_drop(w);
    return rc;
  }
  if (w != nullptr) return UVA_EAGAIN;
  return sync_enlist(sv, t, WaitKind::IO);
}

void server_on_connection(Server *sv, uva_server_connection_cb cb, void *data) {
  sv->on_conn = cb;
  sv->on_conn_data = data;
  /* A connection libuv is holding for accept goes to the callback now. */
  serve_pending(sv);
}

int server_address(Server *sv, char *host, size_t hostlen, int *port) {
  if (sv->closed) return UVA_ECLOSED;
  if (sv->type == UV_TCP) {
    struct sockaddr_storage ss;
    int len = sizeof ss;
    int rc = uv_tcp_getsockname(&sv->uv.tcp, reinterpret_cast<sockaddr *>(&ss),
                                &len);
    if (rc != 0) return rc;
    return addr_format(reinterpret_cast<sockaddr *>(&ss), host, hostlen, port);
  }
  if (port != nullptr) *port = 0;
  if (host == nullptr) return 0;
  size_t n = hostlen;
  int rc = uv_pipe_getsockname(&sv->uv.pipe, host, &n);
  if (rc != 0) return rc;
  if (n < hostlen) host[n] = '\0';
  return 0;
}

void server_close(Server *sv, uva_server_close_cb cb, void *data) {
  if (sv->closed) return;
  sv->closed = true;
  sv->close_cb = cb;
  sv->close_data = data;
  io_wake_all(sv);
  uv_close(&sv->uv.h, on_server_closed);
}

}  // namespace detail
}  // namespace uva
