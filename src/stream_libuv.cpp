/* uvasync — streams: libuv's level-triggered reading (uv_read_start).
 *
 * The engine where the loop has no epoll set of its own (other systems,
 * UVA_POLLER=libuv) or the set refused the descriptor (a TTY): libuv's
 * poll phase reads into the buffer's free tail (on_alloc, on_read), up to
 * the flow-control limit, where it pauses softly. Even here a reader
 * waiting on an empty buffer on Unix reads the bytes itself (read_now,
 * stream_edge.cpp): see on_alloc.
 */
#include "stream_engine.h"
#include "fault.h"

#ifndef _WIN32
#include <sys/socket.h>
#endif

namespace uva {
namespace detail {

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  (void) suggested;
  Stream *s = stream_of(h);
  if (s->rlen >= read_limit(s)) { /* paused softly: on_read decides */
    s->nobuf = NoRoom::FULL;
    *buf = uv_buf_init(nullptr, 0);
    return;
  }
#ifndef _WIN32
  /* A reader waits on an empty buffer: only tell it the socket is
   * readable, and let its call read (read_now) right before it uses the
   * bytes. Read here, every ready connection's chunk would be read before
   * any is written back, and the kernel would copy an echo's bytes out of
   * memory that other reads had pushed out of the cache (2x the cost of
   * the write's copy at 10 x 10 KiB, measured). Once per readiness: if the
   * reader did not read by the next poll, libuv reads as usual. */
  if (s->rlen == 0 && s->want > 0 && !s->signaled) {
    s->nobuf = NoRoom::READER_READS;
    *buf = uv_buf_init(nullptr, 0);
    return;
  }
#endif
  if (s->tls != nullptr) { /* ciphertext, for tls_feed */
    *buf = tls_cipher_room(s);
    if (buf->base == nullptr)
      s->nobuf = NoRoom::FULL; /* OpenSSL holds plenty */
    return;
  }
  *buf = room(s); /* {NULL, 0}: libuv reports UV_ENOBUFS, a read error */
}

/* A TCP socket's pending error (SO_ERROR), as a negative code; 0 if none.
 * libuv reports a hang-up that follows a short read as the end of the
 * stream without reading on (uv__stream_io), so a reset looks like a FIN
 * there: the error still pending tells them apart. */
static int pending_error(Stream *s) {
#ifndef _WIN32
  int fd = s->type == UV_TCP ? fd_of(s) : -1;
  int err = 0;
  socklen_t len = sizeof err;
  if (fd >= 0 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0)
    return -err;
#else
  (void) s;
#endif
  return 0;
}

static void on_read(uv_stream_t *h, ssize_t nread, const uv_buf_t *buf) {
  Stream *s = stream_of(reinterpret_cast<uv_handle_t *>(h));
  if (nread != UV_ENOBUFS) s->signaled = false;
  if (s->tls != nullptr && nread != UV_ENOBUFS) {
    if (nread == 0) return; /* EAGAIN; `more` also counts OpenSSL's bytes */
    if (nread > 0) {
      tls_feed(s, buf->base, size_t(nread)); /* decrypts up to the limit */
      if (s->rlen >= read_limit(s)) s->full_pass = s->loop->passes;
    } else {
      uv_read_stop(h);
      s->reading = false;
      tls_kernel_end(s, nread == UV_EOF ? pending_error(s) : int(nread));
    }
    io_wake_all(s);
    return;
  }
  if (nread > 0) {
    s->rlen += size_t(nread);
    s->last_read = size_t(nread);
    /* A full chunk that reached the limit: more is probably waiting in
     * the kernel, and read_now may fetch it for the reader at once. */
    s->more = size_t(nread) == buf->len && s->rlen >= read_limit(s);
    /* Stop at the limit, even with a reader waiting: the reader takes the
     * bytes at this pass and reading resumes into the same, still cached,
     * memory. Reading on (libuv reads up to 32 times per poll) kept a
     * second chunk per connection live and cost the kernel's copies their
     * cache: 1.5x the system time of raw libuv per 100 KiB echo.
     * The stop is soft: on_alloc hands libuv no room (UV_ENOBUFS below),
     * which ends this poll's reads but keeps the socket watched. A reader
     * usually empties the buffer in this pass, and a uv_read_stop then
     * uv_read_start pair would cost two epoll_ctl calls per refill. */
    if (s->rlen >= read_limit(s)) s->full_pass = s->loop->passes;
  } else if (nread == 0) {
    s->more = false; /* EAGAIN: the kernel has nothing */
    return;
  } else if (nread == UV_ENOBUFS && s->nobuf == NoRoom::READER_READS) {
    s->nobuf = NoRoom::NONE;
    s->signaled = true;
    s->more = true;
    if (s->tls != nullptr) tls_kernel_more(s);
    io_wake_all(s);
    return;
  } else if (nread == UV_ENOBUFS && s->nobuf == NoRoom::FULL) {
    s->nobuf = NoRoom::NONE;
    /* No room (see on_alloc). In the poll that filled the buffer this is
     * libuv asking for the next chunk: keep watching. In a later poll the
     * buffer is still full and the peer sent more: stop for real, or the
     * level-triggered poll would wake the loop for it on every pass. */
    if (s->full_pass != s->loop->passes) {
      uv_read_stop(h);
      s->reading = false;
    }
    return;
  } else {
    s->more = false;
    if (nread == UV_EOF && (s->read_err = pending_error(s)) == 0)
      s->eof = true;
    else if (nread != UV_EOF)
      s->read_err = int(nread);
    uv_read_stop(h);
    s->reading = false;
  }
  io_wake_all(s);
}

int libuv_read_start(Stream *s) {
  int rc = FAULT_UV(uv_read_start(&s->uv.s, on_alloc, on_read));
  if (rc == 0) s->reading = true;
  return rc;
}

void libuv_read_stop(Stream *s) {
  if (s->reading) uv_read_stop(&s->uv.s);
  s->reading = false;
}

void libuv_read_pause_if_full(Stream *s) {
  if (s->reading && s->rlen >= read_limit(s)) {
    uv_read_stop(&s->uv.s);
    s->reading = false;
  }
}

}  // namespace detail
}  // namespace uva
