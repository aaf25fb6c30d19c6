/* uvasync — streams: the loop's own edge-triggered reading (Linux), and
 * the reads a waiting reader makes itself under either engine.
 *
 * On Linux, libuv does not read sockets and pipes at all: the loop polls
 * them edge-triggered (loop.cpp), an event only sets `more`, and reads are
 * ours: a waiting reader's call (read_now, read_direct), or a read-ahead
 * up to high_water when nobody waits (edge_fill). The kernel reports
 * bytes once, so a read that leaves some there comes back for them itself
 * (wait_more, stream.cpp). How much each read takes: stream_engine.h,
 * "read-ahead".
 */
#include "stream_engine.h"

#include <cerrno>
#ifndef _WIN32
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>
#endif

namespace uva {
namespace detail {

/* Take the stream out of the loop's epoll set while its descriptor is
 * still open: a set keeps a descriptor that a dup or a child process
 * still holds, with our pointer in it. */
void edge_read_on_close(Stream *s) {
  if (!s->edge) return;
  s->edge = false;
  edge_remove(s->loop, s->fd);
}

/* Put an open socket or pipe in the loop's epoll set, edge-triggered
 * (loop.cpp): from then on the kernel reports new bytes once, as `more`,
 * and the readers read them (read_now, edge_fill); libuv never reads it.
 * False where that cannot be (no set, a TTY, epoll refuses it): libuv's
 * level-triggered reading then, as on other systems. */
bool edge_read_start(Stream *s) {
#ifndef _WIN32
  if (s->loop->epfd < 0 || s->no_edge) return false;
  int fd = (s->type == UV_TCP || s->type == UV_NAMED_PIPE) ? fd_of(s) : -1;
  if (!edge_add(s->loop, fd, s)) {
    s->no_edge = true;
    return false;
  }
  s->edge = true; /* the add reports bytes already there as an event */
  return true;
#else
  (void) s;
  return false;
#endif
}

void stream_edge_event(Stream *s, bool end) {
  if (!s->edge) return;
  s->more = true;
  if (s->tls != nullptr) tls_kernel_more(s);
  /* The end or an error stays in the kernel after its one report: keep
   * `more` until a read returns it (a short read would clear it). */
  if (end) s->hup = true;
  /* Nobody reads: read ahead, up to high_water, as libuv would. A waiting
   * reader reads in its own call, right before it uses the bytes (see
   * on_alloc, stream_libuv.cpp). */
  if (s->want == 0 && !s->to_eof) edge_fill(s);
  io_wake_all(s);
}

/* ---- a waiting reader's own reads --------------------------------------- */

static size_t read_into(Stream *s, char *buf, size_t len, char *spill,
                        size_t spill_len);

/* One read of up to `chunk` bytes into the buffer's free tail (*len: the
 * room it had; 0 with UV_ENOBUFS recorded when memory runs out): the bytes
 * read, added to the buffer. Callers clear `more` first. */
static size_t read_chunk(Stream *s, size_t chunk, size_t *len) {
  uv_buf_t b = room(s, chunk);
  *len = b.len;
  if (b.base == nullptr) { /* no memory: a read error, as from on_alloc */
    s->read_err = UV_ENOBUFS;
    libuv_read_stop(s);
    return 0;
  }
  size_t n = read_into(s, b.base, b.len, nullptr, 0);
  s->rlen += n;
  return n;
}

/* A reader found the buffer empty while the kernel has bytes for it
 * (s->more): an edge event, or libuv reported the socket readable (see
 * on_alloc, stream_libuv.cpp), or the last read filled a whole chunk.
 * Read them now, into the buffer, and the caller uses them at once: no
 * task step, loop pass or (in Python) coroutine switch waits in between,
 * and the bytes are still in the cache when an echo writes them back. It is the read the next poll would make
 * anyway (reading is still on), made earlier; it comes up empty only when
 * the data ended exactly at a chunk's end. libuv has no "try read", so
 * this is recv(2) (TCP) or read(2) on the descriptor, as libuv's own
 * reads are on Unix; on Windows it does nothing and libuv reads. */
void read_now(Stream *s) {
  s->more = false;
  s->signaled = false;
#ifndef _WIN32
  if (s->st != StreamState::OPEN || s->eof || s->read_err != 0) return;
  size_t len; /* a wide read once the stream outgrew one chunk */
  size_t n = read_chunk(s, readahead_chunk(s), &len);
  readahead_after_chunk(s, n, len);
#endif
}

/* As read_now, but straight into a reader's own buffer (at least
 * READ_DIRECT_MIN bytes with the spill; the stream's is empty; see
 * "read-ahead" in stream_engine.h). Returns the bytes read (0: none, or
 * EOF or an error recorded). */
size_t read_direct(Stream *s, void *buf, size_t len, void *spill,
                   size_t spill_len) {
  s->more = false;
  s->signaled = false;
#ifndef _WIN32
  if (s->st != StreamState::OPEN || s->eof || s->read_err != 0) return 0;
  return read_into(s, static_cast<char *>(buf), len, static_cast<char *>(spill),
                   spill_len);
#else
  (void) buf;
  (void) len;
  (void) spill;
  (void) spill_len;
  return 0;
#endif
}

/* One recv(2) (TCP) or read(2) of up to `len` bytes on the descriptor, and
 * past them up to spill_len more into `spill` (recvmsg/readv, one system
 * call): the count, with s->more set if it filled both, or 0 with EOF or
 * an error recorded (nothing is recorded for "nothing yet"). */
static size_t read_into(Stream *s, char *buf, size_t len, char *spill,
                        size_t spill_len) {
#ifndef _WIN32
  /* TLS: ciphertext from the kernel, plaintext into buf (tls.cpp). */
  if (s->tls != nullptr) return tls_read_into(s, buf, len);
  int fd = fd_of(s);
  if (fd < 0) return 0;
  ssize_t n;
  struct iovec iov[2] = {{buf, len}, {spill, spill_len}};
  do { /* recv on sockets: send/recv skip the VFS layer read/write pass */
    if (spill_len == 0)
      n = s->type == UV_TCP ? ::recv(fd, buf, len, 0) : ::read(fd, buf, len);
    else if (s->type == UV_TCP) {
      struct msghdr mh = {};
      mh.msg_iov = iov;
      mh.msg_iovlen = 2;
      n = ::recvmsg(fd, &mh, 0);
    } else {
      n = ::readv(fd, iov, 2);
    }
  } while (n < 0 && errno == EINTR);
  if (n > 0) {
    /* All full: there may be more; and an end reported stays to read. */
    s->more = size_t(n) == len + spill_len || s->hup;
    s->last_read = size_t(n);
    return size_t(n);
  }
  if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) {
    if (n == 0)
      s->eof = true;
    else
      s->read_err = -errno;
    libuv_read_stop(s);
  }
#else
  (void) s;
  (void) buf;
  (void) len;
  (void) spill;
  (void) spill_len;
#endif
  return 0;
}

/* ---- the edge engine's read-ahead -------------------------------------- */

/* Edge-triggered: read what the kernel holds into the buffer, up to the
 * flow-control limit, a chunk per read and EDGE_FILL_READS reads at most
 * (a fast peer must not keep one call reading). */
static constexpr int EDGE_FILL_READS = 16;

void edge_fill(Stream *s) {
  for (int i = 0; i < EDGE_FILL_READS && s->more; i++) {
    if (s->st != StreamState::OPEN || s->eof || s->read_err != 0) return;
    if (s->rlen >= read_limit(s)) return;
    size_t len;
    s->more = false; /* read_into sets it again if the read filled the room */
    if (read_chunk(s, READ_CHUNK, &len) == 0) return;
  }
}

}  // namespace detail
}  // namespace uva
