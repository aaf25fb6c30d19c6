/* uvasync — streams (TCP, Unix sockets, pipes, TTYs) and servers.
 *
 * Reads: bytes are read straight into the free tail of the stream's
 * buffer (no copy on the way in); read calls copy out of it. While a reader
 * waits on an empty buffer, the poll only tells it the socket is readable
 * and its own call reads (read_now), so the bytes are used while they are
 * in the cache; otherwise libuv reads. Reading pauses while the buffer
 * holds high_water bytes, or what a waiting read needs if that is more,
 * and resumes when a read brings it below. On Linux, libuv does not read
 * sockets and pipes at all: the loop polls them edge-triggered (loop.cpp),
 * an event only sets `more`, and reads are ours (read_now, edge_fill): a
 * waiting reader's call, or a read-ahead up to high_water when nobody
 * waits. The kernel reports bytes once, so a read that leaves some there
 * comes back for them itself (wait_more).
 *
 * Writes: an immediate write first (send(2) on TCP, else uv_try_write);
 * only what the kernel did not take is copied into a request and queued.
 * drain waits for the queue to fall to low_water.
 *
 * Waiting uses the "call again" protocol (see sync.cpp): a read registers
 * a W_IO node and returns UVA_EAGAIN; every change (data, EOF, error, write
 * progress, close) wakes all waiters, and each repeated call checks its own
 * condition. Nothing is taken from the buffer until a call completes, so a
 * cancelled read loses no byte.
 */
#include "internal.h"
#include "fault.h"

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#ifndef _WIN32
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>
#endif

namespace uva {
namespace detail {

static constexpr size_t DEFAULT_HIGH_WATER = 64 * 1024;
static constexpr size_t DEFAULT_LOW_WATER = 16 * 1024;
static constexpr size_t DEFAULT_LINE_LIMIT = 64 * 1024;
static constexpr size_t READ_CHUNK = 64 * 1024;
/* A read into a buffer this big, while ours is empty, reads into it
 * directly (read_direct): smaller ones are better served from ours. */
static constexpr size_t READ_DIRECT_MIN = 4096;
/* How many of a stream's first reads that outgrow the caller's buffer
 * (stream_read) or our chunk (read_now) read ahead past it, and how much
 * read_now's then take at once. */
static constexpr uint8_t YOUNG_READS_AHEAD = 8;
static constexpr size_t YOUNG_READ_CHUNK = 2 * READ_CHUNK;

static Stream *of(uv_handle_t *h) { return static_cast<Stream *>(h->data); }

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

#ifndef _WIN32
/* The stream's descriptor (uv_fileno, looked up once: it does not change
 * while the stream is open); -1 if it has none. */
static int fd_of(Stream *s) {
  if (s->fd < 0) {
    uv_os_fd_t fd;
    if (uv_fileno(&s->uv.h, &fd) == 0) s->fd = fd;
  }
  return s->fd;
}
#endif

void io_destroy(Sync *obj) {
  Loop *l = obj->loop;
  if (obj->magic == MAGIC_STREAM) {
    Stream *s = static_cast<Stream *>(obj);
    std::free(s->rbuf);
    if (s->ai_list != nullptr) uv_freeaddrinfo(s->ai_list);
  } else if (obj->magic == MAGIC_UDP) {
    Udp *u = static_cast<Udp *>(obj);
    while (u->head != nullptr) {
      Datagram *d = u->head;
      u->head = d->next;
      std::free(d);
    }
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
  if (s->reading && s->rlen >= s->high_water) {
    uv_read_stop(&s->uv.s);
    s->reading = false;
  }
}

static void on_stream_closed(uv_handle_t *h) {
  Stream *s = of(h);
  s->st = ST_CLOSED;
  io_wake_all(s);
  if (s->close_cb != nullptr)
    s->close_cb(reinterpret_cast<uva_stream_t *>(s), s->close_data);
  sync_unref(s); /* the owner's reference */
}

/* Take the stream out of the loop's epoll set while its descriptor is
 * still open: a set keeps a descriptor that a dup or a child process
 * still holds, with our pointer in it. */
static void edge_forget(Stream *s) {
  if (!s->edge) return;
  s->edge = false;
  edge_remove(s->loop, s->fd);
}

static void close_now(Stream *s) {
  if (s->st == ST_CLOSED) return;
  s->st = ST_CLOSED;
  s->reading = false;
  edge_forget(s);
  io_wake_all(s);
  /* Between two connect attempts the handle is already closing; its close
   * callback sees ST_CLOSED and finishes the close instead of retrying. */
  if (!s->retrying) uv_close(&s->uv.h, on_stream_closed);
}

/* ---- reading ------------------------------------------------------------ */

static size_t read_limit(const Stream *s) {
  if (s->to_eof) return SIZE_MAX;
  return s->want > s->high_water ? s->want : s->high_water;
}

/* Room for the next read of up to `chunk` bytes: the buffer's free tail,
 * slid or grown as needed; {NULL, 0} when memory runs out. */
static uv_buf_t room(Stream *s, size_t chunk = READ_CHUNK) {
  size_t tail = s->rcap - s->rstart - s->rlen;
  /* Under a quarter of a normal chunk is too little to read into; a
   * larger chunk (read_now's young reads) wants all its room. */
  size_t least = chunk > READ_CHUNK ? chunk : READ_CHUNK / 4;
  if (tail < least) {
    if (s->rstart > 0) { /* slide the unread bytes to the front */
      std::memmove(s->rbuf, s->rbuf + s->rstart, s->rlen);
      s->rstart = 0;
      tail = s->rcap - s->rlen;
    }
    if (tail < least) {
      size_t cap = s->rcap == 0 ? READ_CHUNK : s->rcap * 2;
      while (cap - s->rlen < chunk) cap *= 2;
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
  /* A chunk at most per read, 64 KiB as libuv suggests (but for a young
   * stream's few reads): one huge read costs the kernel more than two of
   * this size (measured on the echo benchmark). */
  if (tail > chunk) tail = chunk;
  return uv_buf_init(s->rbuf + s->rstart + s->rlen, unsigned(tail));
}

/* Why on_alloc gave libuv no room (on_read then gets UV_ENOBUFS). */
enum : uint8_t { NOBUF_NONE, NOBUF_FULL, NOBUF_READY };

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  (void)suggested;
  Stream *s = of(h);
  if (s->rlen >= read_limit(s)) { /* paused softly: on_read decides */
    s->nobuf = NOBUF_FULL;
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
    s->nobuf = NOBUF_READY;
    *buf = uv_buf_init(nullptr, 0);
    return;
  }
#endif
  *buf = room(s); /* {NULL, 0}: libuv reports UV_ENOBUFS, a read error */
}

static void on_read(uv_stream_t *h, ssize_t nread, const uv_buf_t *buf) {
  Stream *s = of(reinterpret_cast<uv_handle_t *>(h));
  if (nread != UV_ENOBUFS) s->signaled = false;
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
  } else if (nread == UV_ENOBUFS && s->nobuf == NOBUF_READY) {
    s->nobuf = NOBUF_NONE;
    s->signaled = true;
    s->more = true;
    io_wake_all(s);
    return;
  } else if (nread == UV_ENOBUFS && s->nobuf == NOBUF_FULL) {
    s->nobuf = NOBUF_NONE;
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
    if (nread == UV_EOF)
      s->eof = true;
    else
      s->read_err = int(nread);
    uv_read_stop(h);
    s->reading = false;
  }
  io_wake_all(s);
}

static void edge_fill(Stream *s);

/* Put an open socket or pipe in the loop's epoll set, edge-triggered
 * (loop.cpp): from then on the kernel reports new bytes once, as `more`,
 * and the readers read them (read_now, edge_fill); libuv never reads it.
 * False where that cannot be (no set, a TTY, epoll refuses it): libuv's
 * level-triggered reading then, as on other systems. */
static bool edge_watch(Stream *s) {
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
  (void)s;
  return false;
#endif
}

void stream_edge_event(Stream *s, bool end) {
  if (!s->edge) return;
  s->more = true;
  /* The end or an error stays in the kernel after its one report: keep
   * `more` until a read returns it (a short read would clear it). */
  if (end) s->hup = true;
  /* Nobody reads: read ahead, up to high_water, as libuv would. A waiting
   * reader reads in its own call, right before it uses the bytes (see
   * on_alloc). */
  if (s->want == 0 && !s->to_eof) edge_fill(s);
  io_wake_all(s);
}

/* Start reading if there is room and a reason. */
static void maybe_read(Stream *s) {
  if (s->reading || s->edge || s->st != ST_OPEN || s->eof || s->read_err != 0)
    return;
  if (edge_watch(s)) return;
  if (s->rlen >= read_limit(s)) return;
  int rc = FAULT_UV(uv_read_start(&s->uv.s, on_alloc, on_read));
  if (rc == 0)
    s->reading = true;
  else
    s->read_err = rc;
}

/* A reader found the buffer empty while the kernel has bytes for it
 * (s->more): the socket was reported readable (see on_alloc), or the last
 * read filled a whole chunk. Read them now, into the buffer, and the
 * caller uses them at once: no task step, loop pass or (in Python)
 * coroutine switch waits in between, and the bytes are still in the cache
 * when an echo writes them back. It is the read the next poll would make
 * anyway (reading is still on), made earlier; it comes up empty only when
 * the data ended exactly at a chunk's end. libuv has no "try read", so
 * this is recv(2) (TCP) or read(2) on the descriptor, as libuv's own
 * reads are on Unix; on Windows it does nothing and libuv reads. */
static size_t read_into(Stream *s, char *buf, size_t len, char *spill,
                        size_t spill_len);

/* Whether this read from the kernel is one of a young stream's few that
 * read ahead (stream_read, read_now), counting it if so: the stream's
 * reads have outgrown their buffer, and it has not used them all. */
static bool young_read(Stream *s) {
  if (!s->outgrown || s->reads_ahead >= YOUNG_READS_AHEAD) return false;
  s->reads_ahead++;
  return true;
}

/* One read of up to `chunk` bytes into the buffer's free tail (*len: the
 * room it had; 0 with UV_ENOBUFS recorded when memory runs out): the bytes
 * read, added to the buffer. Callers clear `more` first. */
static size_t read_chunk(Stream *s, size_t chunk, size_t *len) {
  uv_buf_t b = room(s, chunk);
  *len = b.len;
  if (b.base == nullptr) { /* no memory: a read error, as from on_alloc */
    s->read_err = UV_ENOBUFS;
    if (s->reading) uv_read_stop(&s->uv.s);
    s->reading = false;
    return 0;
  }
  size_t n = read_into(s, b.base, b.len, nullptr, 0);
  s->rlen += n;
  return n;
}

static void read_now(Stream *s) {
  s->more = false;
  s->signaled = false;
#ifndef _WIN32
  if (s->st != ST_OPEN || s->eof || s->read_err != 0) return;
  /* A young stream whose reads fill a whole chunk reads two at once, a few
   * times, for the reason given at stream_read's read-ahead (the bytes
   * land in our buffer either way). After those reads the buffer goes
   * back to one chunk's size: it is empty here (callers read only then),
   * and the next room() allocates it afresh. */
  size_t chunk = READ_CHUNK;
  if (young_read(s)) {
    /* Still at most a chunk past the flow-control limit (uvasync.h); the
     * limit may be SIZE_MAX (a reader waits for EOF): compare, not add. */
    size_t limit = read_limit(s);
    chunk = limit >= YOUNG_READ_CHUNK - READ_CHUNK ? YOUNG_READ_CHUNK
                                                   : limit + READ_CHUNK;
  } else if (s->reads_ahead == YOUNG_READS_AHEAD) {
    s->reads_ahead++; /* only once: a buffer grown later serves a reader */
    if (s->rcap > READ_CHUNK && s->rlen == 0) {
      std::free(s->rbuf);
      s->rbuf = nullptr;
      s->rstart = s->rcap = 0;
    }
  }
  size_t len;
  size_t n = read_chunk(s, chunk, &len);
  if (n == len && n >= READ_CHUNK) s->outgrown = true;
#endif
}

/* As read_now, but straight into a reader's own buffer (at least
 * READ_DIRECT_MIN bytes with the spill; the stream's is empty): the kernel
 * copies the bytes where the caller wants them, with no copy out of ours
 * after. A smaller buffer goes through ours, where one read may serve
 * several calls. Returns the bytes read (0: none, or EOF or an error
 * recorded). */
static size_t read_direct(Stream *s, void *buf, size_t len, void *spill,
                          size_t spill_len) {
  s->more = false;
  s->signaled = false;
#ifndef _WIN32
  if (s->st != ST_OPEN || s->eof || s->read_err != 0) return 0;
  return read_into(s, static_cast<char *>(buf), len,
                   static_cast<char *>(spill), spill_len);
#else
  (void)buf;
  (void)len;
  (void)spill;
  (void)spill_len;
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
    if (s->reading) uv_read_stop(&s->uv.s);
    s->reading = false;
  }
#else
  (void)s;
  (void)buf;
  (void)len;
  (void)spill;
  (void)spill_len;
#endif
  return 0;
}

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

/* Edge-triggered: read what the kernel holds into the buffer, up to the
 * flow-control limit, a chunk per read and EDGE_FILL_READS reads at most
 * (a fast peer must not keep one call reading). */
static constexpr int EDGE_FILL_READS = 16;

static void edge_fill(Stream *s) {
  for (int i = 0; i < EDGE_FILL_READS && s->more; i++) {
    if (s->st != ST_OPEN || s->eof || s->read_err != 0) return;
    if (s->rlen >= read_limit(s)) return;
    size_t len;
    s->more = false; /* read_into sets it again if the read filled the room */
    if (read_chunk(s, READ_CHUNK, &len) == 0) return;
  }
}

/* Wait for more: register (once) and make sure bytes keep coming. */
static int wait_more(Stream *s, Task *t, Wait *w, size_t want) {
  if (want > s->want) s->want = want;
  if (s->edge && s->more) {
    /* The kernel reported these bytes once and will not again: read them
     * now, and the call, repeated at the next pass, finds them. */
    edge_fill(s);
    int rc = w != nullptr ? UVA_EAGAIN : sync_enlist(s, t, W_IO);
    if (rc == UVA_EAGAIN) task_wake_local(t);
    return rc;
  }
  maybe_read(s);
  if (w != nullptr) return UVA_EAGAIN;
  return sync_enlist(s, t, W_IO);
}

/* A repeated call is done: forget what it wanted and its node. The node
 * goes last: on a stream closed under the waiting task it holds the last
 * reference, and dropping it frees the stream. */
static void done_waiting(Stream *s, Wait *w) {
  bool last = w == nullptr ? s->waiters == nullptr
                           : s->waiters == w && w->next == w;
  if (last) {
    s->want = 0;
    s->to_eof = false;
  }
  if (w != nullptr) sync_drop(w);
}

/* What ends every read early: closed, failed, or not connected (yet). */
static int read_blocked(Stream *s, Wait *w) {
  if (s->st >= ST_CLOSING) {
    done_waiting(s, w);
    return UVA_ECLOSED;
  }
  if (s->st == ST_CONNECTING && s->conn_err != 0) {
    done_waiting(s, w);
    return s->conn_err;
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
  if (s->rlen == 0 && s->more && total >= READ_DIRECT_MIN) {
    size_t n;
    if (spill_len == 0 && young_read(s)) {
      /* A young stream whose messages outgrow the caller's buffer: take
       * what the kernel holds past it too, into ours, in the same call.
       * Linux grows a connection's receive buffer only when the
       * application reads more than its last measured amount within one
       * round trip, not counting what it leaves queued; reads of a
       * 64 KiB buffer from 100 KiB messages never show that, and a
       * connection that did not grow early kept the initial 128 KiB
       * buffer for good. Its window then split every message in three
       * with a window update between: 3-8% of a 10 x 100 KiB echo's
       * throughput, against tokio (bench/README.md). A few such reads
       * let it grow; after them reads go straight to the caller's buffer
       * again, with no copy out of ours. */
      uv_buf_t ours = room(s); /* {NULL, 0} without memory: a plain read */
      n = read_direct(s, buf, len, ours.base, ours.len);
      if (n > len) {
        s->rlen += n - len;
        n = len;
      }
    } else {
      n = read_direct(s, buf, len, spill, spill_len);
      if (spill_len == 0 && n == len) s->outgrown = true;
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

int stream_read_line(size_t *len, Stream *s, Task *t, void *buf,
                     size_t buflen) {
  Wait *w = sync_find(t, s);
  int rc = read_blocked(s, w);
  if (rc != 0) return rc;
  *len = 0;
  if (s->rlen == 0 && s->more) read_now(s);
  const char *p = s->rbuf + s->rstart;
  size_t line = 0;
  if (s->rlen > s->scanned) {
    const void *hit = std::memchr(p + s->scanned, s->delim,
                                  s->rlen - s->scanned);
    if (hit != nullptr)
      line = size_t(static_cast<const char *>(hit) - p) + 1;
    else
      s->scanned = s->rlen;
  }
  if (line == 0 && (s->eof || s->read_err != 0)) {
    if (s->rlen == 0) { /* 0 with *len = 0 at EOF, else the error */
      done_waiting(s, w);
      return s->read_err;
    }
    line = s->rlen; /* the unterminated tail; an error comes after it */
  }
  if (line == 0) {
    if (s->rlen > s->line_limit) {
      done_waiting(s, w);
      return UVA_ELINETOOLONG;
    }
    /* One byte past the limit tells a too-long line; a limit of SIZE_MAX
     * has no byte past it (and + 1 would wrap to 0, stopping the reads). */
    size_t need = s->line_limit < SIZE_MAX ? s->line_limit + 1 : SIZE_MAX;
    return wait_more(s, t, w, need);
  }
  if (line > s->line_limit) {
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

/* ---- writing ------------------------------------------------------------ */

struct WriteReq {
  uv_write_t req;
  size_t len;
  char data[1];
};

static void maybe_finish_close(Stream *s) {
  if (s->st == ST_CLOSING && s->wqueued == 0) close_now(s);
}

static void on_write(uv_write_t *req, int status) {
  WriteReq *wr = reinterpret_cast<WriteReq *>(req);
  Stream *s = of(reinterpret_cast<uv_handle_t *>(req->handle));
  s->wqueued -= wr->len;
  std::free(wr);
  if (status < 0 && status != UV_ECANCELED && s->write_err == 0)
    s->write_err = status;
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
  if (s->st >= ST_CLOSING) return UVA_ECLOSED;
  if (s->st == ST_CONNECTING)
    return s->conn_err != 0 ? s->conn_err : UVA_ENOTCONN;
  if (s->write_err != 0) return s->write_err;
  if (s->shut_requested) return UVA_EPIPE;
  const char *p = static_cast<const char *>(buf);
  if (s->wqueued == 0 && len > 0) {
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
  if (len > 0) { /* copy only what the kernel did not take */
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

/* The drain condition, for a task that may hold a node already. */
static int drain_check(Stream *s, Task *t, Wait *w) {
  if (s->write_err != 0 || s->st >= ST_CLOSING || s->wqueued <= s->low_water) {
    int rc = s->write_err != 0 ? s->write_err
             : s->st >= ST_CLOSING ? UVA_ECLOSED
                                   : 0;
    if (w != nullptr) sync_drop(w);
    return rc;
  }
  if (w != nullptr) return UVA_EAGAIN;
  return sync_enlist(s, t, W_IO);
}

int stream_drain(Stream *s, Task *t) { return drain_check(s, t, sync_find(t, s)); }

int stream_write_drain(Stream *s, Task *t, const void *buf, size_t len) {
  Wait *w = sync_find(t, s);
  if (w == nullptr) { /* first call: write, then wait */
    int rc = stream_write(nullptr, s, buf, len);
    if (rc != 0) return rc;
  }
  return drain_check(s, t, w);
}

static void on_shutdown(uv_shutdown_t *req, int status) {
  Stream *s = of(reinterpret_cast<uv_handle_t *>(req->handle));
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
  if (s->st >= ST_CLOSING) {
    if (w != nullptr) sync_drop(w);
    return UVA_ECLOSED;
  }
  if (!s->shut_requested) {
    if (s->st == ST_CONNECTING)
      return s->conn_err != 0 ? s->conn_err : UVA_ENOTCONN;
    int rc = FAULT_UV(uv_shutdown(&s->sreq, &s->uv.s, on_shutdown));
    if (rc != 0) return rc;
    s->refs.fetch_add(1, std::memory_order_relaxed);
    s->shut_requested = true;
  }
  if (w != nullptr) return UVA_EAGAIN;
  return sync_enlist(s, t, W_IO);
}

/* ---- connecting --------------------------------------------------------- */

static void opened(Stream *s) {
  s->st = ST_OPEN;
  maybe_read(s);
  io_wake_all(s);
}

static void connect_failed(Stream *s, int err) {
  s->conn_err = err;
  io_wake_all(s);
}

static void try_next_address(Stream *s);

static void on_connect(uv_connect_t *req, int status) {
  Stream *s = of(reinterpret_cast<uv_handle_t *>(req->handle));
  if (s->st != ST_CONNECTING) return; /* closed meanwhile */
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
    Stream *s = of(h);
    s->retrying = false;
    if (s->st != ST_CONNECTING) { /* closed by its owner meanwhile */
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
    int rc = FAULT_UV(
        uv_tcp_connect(&s->creq, &s->uv.tcp, ai->ai_addr, on_connect));
    if (rc == 0) return;
    s->ai_err = rc;
  }
  connect_failed(s, s->ai_err != 0 ? s->ai_err : UVA_EAI_NONAME);
}

static void on_resolved(uv_getaddrinfo_t *req, int status,
                        struct addrinfo *res) {
  Stream *s = static_cast<Stream *>(req->data);
  std::free(req);
  if (s->st != ST_CONNECTING) { /* closed while resolving */
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
  s->st = ST_CONNECTING;
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
    s->st = ST_CLOSED;
    uv_close(&s->uv.h, on_stream_closed); /* frees the stream */
    return rc;
  }
  s->refs.fetch_add(1, std::memory_order_relaxed); /* held by the resolver */
  *out = s;
  return 0;
}

static void on_pipe_connect(uv_connect_t *req, int status) {
  Stream *s = of(reinterpret_cast<uv_handle_t *>(req->handle));
  if (s->st != ST_CONNECTING) return;
  if (status == 0)
    opened(s);
  else
    connect_failed(s, status);
}

int pipe_connect(Stream **out, Loop *l, const char *path) {
  Stream *s = stream_alloc(l);
  if (s == nullptr) return UVA_ENOMEM;
  s->type = UV_NAMED_PIPE;
  s->st = ST_CONNECTING;
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
  if (s->st >= ST_CLOSING)
    rc = UVA_ECLOSED;
  else if (s->st == ST_CONNECTING)
    rc = s->conn_err;
  if (rc != 0 || s->st == ST_OPEN) {
    if (w != nullptr) sync_drop(w);
    return rc;
  }
  if (w != nullptr) return UVA_EAGAIN;
  return sync_enlist(s, t, W_IO);
}

/* Whether a handle of the loop that is not closing holds fd. */
static bool fd_in_use(Loop *l, int fd) {
#ifdef _WIN32
  (void)l;
  (void)fd;
  return false; /* descriptors are CRT numbers there, handles in libuv */
#else
  struct Probe {
    int fd;
    bool found;
  } probe = {fd, false};
  uv_walk(&l->uv, [](uv_handle_t *h, void *arg) {
    Probe *p = static_cast<Probe *>(arg);
    uv_os_fd_t hfd;
    /* uv_fileno fails for closing handles and kinds without one. */
    if (uv_fileno(h, &hfd) == 0 && hfd == p->fd) p->found = true;
  }, &probe);
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
      s->st = ST_CLOSED;
      s->uv.h.data = s;
      uv_close(&s->uv.h, on_stream_closed);
      return rc;
    }
  } else {
    rc = uv_tcp_init(&l->uv, &s->uv.tcp);
    if (rc == 0 && (rc = uv_tcp_open(&s->uv.tcp, fd)) != 0) {
      s->st = ST_CLOSED;
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
      if (s->st >= ST_CLOSING) return UVA_ECLOSED;
      return uv_tcp_nodelay(&s->uv.tcp, int(value));
    default:
      return UVA_EINVAL;
  }
  if (s->reading && s->rlen >= read_limit(s)) {
    uv_read_stop(&s->uv.s);
    s->reading = false;
  }
  maybe_read(s);
  return 0;
}

int stream_address(Stream *s, bool peer, char *host, size_t hostlen,
                   int *port) {
  if (s->st != ST_OPEN) return s->st == ST_CONNECTING ? UVA_ENOTCONN : UVA_ECLOSED;
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
  if (s->st == ST_CLOSED) return 0;
  if (s->st == ST_CLOSING && !abort) return 0;
  if (s->st != ST_CLOSING) {
    s->close_cb = cb;
    s->close_data = data;
  } else if (cb != nullptr) {
    s->close_cb = cb;
    s->close_data = data;
  }
  bool connecting = s->st == ST_CONNECTING;
  s->st = ST_CLOSING;
  io_wake_all(s);
  if (abort && !connecting && s->type == UV_TCP && !s->retrying) {
    /* Drop the queue and tell the peer with a reset. */
    s->st = ST_CLOSED;
    s->reading = false;
    edge_forget(s);
    if (uv_tcp_close_reset(&s->uv.tcp, on_stream_closed) == 0) return 0;
    s->st = ST_CLOSING;
  }
  if (abort || connecting || s->wqueued == 0 || s->write_err != 0)
    close_now(s);
  /* else: on_write closes once the queue is flushed */
  return 0;
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
    s->st = ST_CLOSED;
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
    rc = FAULT_UV(uv_listen(&sv->uv.s, backlog > 0 ? backlog : 511,
                            on_connection));
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

int tcp_listen(Server **out, Loop *l, const char *host, int port,
               int backlog) {
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
  return sync_enlist(sv, t, W_IO);
}

void server_on_connection(Server *sv, uva_server_connection_cb cb,
                          void *data) {
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
    int rc = uv_tcp_getsockname(&sv->uv.tcp,
                                reinterpret_cast<sockaddr *>(&ss), &len);
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
