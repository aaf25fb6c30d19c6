/* uvasync — UDP sockets.
 *
 * Received datagrams are kept whole in a FIFO in the core (a datagram is
 * never split or merged). Receiving stops while the FIFO holds high_water
 * bytes; further datagrams wait in the kernel's buffer (and are dropped
 * there if it overflows, as UDP does). Sends try the kernel at once and
 * copy only when it would block.
 *
 * On Linux the socket is in the loop's epoll set, edge-triggered (see
 * loop.cpp), and the datagrams are read here (edge_recv), not by libuv:
 * the kernel reports new ones once, so every read goes on until it runs
 * dry or the FIFO is full, and a recv that makes room reads on.
 */
#include "internal.h"
#include "fault.h"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#ifndef _WIN32
#include <sys/socket.h>
#endif

namespace uva {
namespace detail {

static constexpr size_t DEFAULT_UDP_HIGH_WATER = 256 * 1024;
static constexpr size_t RECV_BUF = 64 * 1024; /* the largest datagram */

static Udp *of(uv_handle_t *h) { return static_cast<Udp *>(h->data); }

int udp_new(Udp **out, Loop *l) {
  Udp *u = static_cast<Udp *>(fault_calloc(1, sizeof(Udp)));
  if (u == nullptr) return UVA_ENOMEM;
  sync_init(u, l, MAGIC_UDP);
  u->high_water = DEFAULT_UDP_HIGH_WATER;
  u->fd = -1;
  int rc = FAULT_UV(uv_udp_init(&l->uv, &u->uv));
  if (rc != 0) {
    l->handles--;
    std::free(u);
    return rc;
  }
  u->uv.data = u;
  uv_unref(reinterpret_cast<uv_handle_t *>(&u->uv)); /* tasks keep it alive */
  *out = u;
  return 0;
}

/* One scratch buffer per loop would do; a static one per thread avoids
 * even that, since callbacks of one loop never overlap. */
static thread_local char scratch[RECV_BUF];

static void on_alloc(uv_handle_t *h, size_t, uv_buf_t *buf) {
  (void) h;
  *buf = uv_buf_init(scratch, sizeof scratch);
}

/* A received datagram to the FIFO (copied out of the scratch buffer). */
static void queue_datagram(Udp *u, const char *data, size_t n,
                           const struct sockaddr *addr) {
  auto *d = static_cast<Datagram *>(fault_malloc(offsetof(Datagram, data) + n));
  if (d == nullptr) {
    u->err = UVA_ENOMEM; /* this datagram is lost: say so */
    return;
  }
  d->next = nullptr;
  d->len = n;
  std::memset(&d->addr, 0, sizeof d->addr);
  std::memcpy(
      &d->addr, addr,
      addr->sa_family == AF_INET6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in));
  std::memcpy(d->data, data, n);
  if (u->tail != nullptr)
    u->tail->next = d;
  else
    u->head = d;
  u->tail = d;
  u->qbytes += d->len;
}

static void on_recv(uv_udp_t *h, ssize_t nread, const uv_buf_t *buf,
                    const struct sockaddr *addr, unsigned flags) {
  Udp *u = of(reinterpret_cast<uv_handle_t *>(h));
  (void) flags;
  if (nread < 0) {
    u->err = int(nread);
  } else if (addr != nullptr) {
    queue_datagram(u, buf->base, size_t(nread), addr);
    if (u->qbytes >= u->high_water) {
      uv_udp_recv_stop(&u->uv);
      u->receiving = false;
    }
  } else {
    return; /* nothing to read */
  }
  io_wake_all(u);
}

/* Edge-triggered: read datagrams until the kernel has none or the FIFO
 * holds high_water bytes (then `more` stays set, and a recv that makes
 * room reads on). Returns whether anything changed for the waiters. */
static bool edge_recv(Udp *u) {
#ifndef _WIN32
  bool changed = false;
  while (u->more && !u->closed && u->qbytes < u->high_water) {
    struct sockaddr_storage from;
    socklen_t fromlen = sizeof from;
    ssize_t n;
    do {
      n = ::recvfrom(u->fd, scratch, sizeof scratch, 0,
                     reinterpret_cast<sockaddr *>(&from), &fromlen);
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
      u->more = false;
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      u->err = -errno; /* e.g. ECONNREFUSED on a connected socket */
    } else {
      queue_datagram(u, scratch, size_t(n),
                     reinterpret_cast<sockaddr *>(&from));
    }
    changed = true;
  }
  return changed;
#else
  (void) u;
  return false;
#endif
}

void udp_edge_event(Udp *u) {
  if (!u->edge) return;
  u->more = true;
  if (edge_recv(u)) io_wake_all(u);
}

/* Put the bound socket in the loop's epoll set (false: libuv receives). */
static bool edge_watch(Udp *u) {
#ifndef _WIN32
  uv_os_fd_t fd;
  if (u->loop->epfd < 0 || u->no_edge) return false;
  if (uv_fileno(reinterpret_cast<uv_handle_t *>(&u->uv), &fd) != 0)
    return false; /* no socket yet (not bound): try again later */
  if (!edge_add(u->loop, fd, u)) {
    u->no_edge = true;
    return false;
  }
  u->fd = fd;
  u->edge = true; /* the add reports datagrams already there */
  return true;
#else
  (void) u;
  return false;
#endif
}

static void maybe_recv(Udp *u) {
  if (u->edge) {
    if (edge_recv(u)) io_wake_all(u);
    return;
  }
  if (u->receiving || u->closed) return;
  if (edge_watch(u)) return;
  if (u->qbytes >= u->high_water) return;
  int rc = FAULT_UV(uv_udp_recv_start(&u->uv, on_alloc, on_recv));
  if (rc == 0)
    u->receiving = true;
  else
    u->err = rc; /* the next recv reports it (and a later one retries) */
}

int udp_bind(Udp *u, const char *host, int port) {
  struct sockaddr_storage ss;
  int rc = addr_parse(&ss, host, port);
  if (rc == 0)
    rc = FAULT_UV(uv_udp_bind(&u->uv, reinterpret_cast<sockaddr *>(&ss), 0));
  if (rc == 0) maybe_recv(u);
  return rc;
}

int udp_connect(Udp *u, const char *host, int port) {
  struct sockaddr_storage ss;
  int rc = addr_parse(&ss, host, port);
  if (rc == 0)
    rc = FAULT_UV(uv_udp_connect(&u->uv, reinterpret_cast<sockaddr *>(&ss)));
  if (rc == 0) maybe_recv(u);
  return rc;
}

int udp_set(Udp *u, uva_stream_option option, size_t value) {
  if (option != UVA_STREAM_HIGH_WATER || value == 0) return UVA_EINVAL;
  u->high_water = value;
  maybe_recv(u);
  return 0;
}

struct SendReq {
  uv_udp_send_t req;
  char data[1];
};

int udp_send(Udp *u, const void *buf, size_t len, const char *host, int port) {
  struct sockaddr_storage ss;
  const struct sockaddr *to = nullptr;
  if (host != nullptr) {
    int rc = addr_parse(&ss, host, port);
    if (rc != 0) return rc;
    to = reinterpret_cast<sockaddr *>(&ss);
  }
  uv_buf_t b = uv_buf_init(const_cast<char *>(static_cast<const char *>(buf)),
                           unsigned(len));
  int n = FAULT_UV(uv_udp_try_send(&u->uv, &b, 1, to));
  if (n >= 0) {
    maybe_recv(u); /* sending bound the socket: replies can come */
    return 0;
  }
  if (n != UV_EAGAIN && n != UV_ENOSYS) return n;
  auto *req =
      static_cast<SendReq *>(fault_malloc(offsetof(SendReq, data) + len));
  if (req == nullptr) return UVA_ENOMEM;
  std::memcpy(req->data, buf, len);
  b = uv_buf_init(req->data, unsigned(len));
  int rc = FAULT_UV(uv_udp_send(&req->req, &u->uv, &b, 1, to,
                                [](uv_udp_send_t *r, int) { std::free(r); }));
  if (rc != 0) {
    std::free(req);
    return rc;
  }
  maybe_recv(u);
  return 0;
}

int udp_recv(size_t *len, Udp *u, Task *t, void *buf, size_t buflen, char *host,
             size_t hostlen, int *port) {
  Wait *w = sync_find(t, u);
  if (u->head == nullptr && u->more) edge_recv(u); /* edge: what it holds */
  Datagram *d = u->head;
  int rc;
  if (d != nullptr) {
    *len = d->len;
    if (d->len > buflen) {
      rc = UVA_ENOBUFS;
    } else {
      rc = addr_format(reinterpret_cast<sockaddr *>(&d->addr), host, hostlen,
                       port);
      if (rc == 0 || rc == UVA_ENOTSUP) {
        rc = 0;
        std::memcpy(buf, d->data, d->len);
        u->head = d->next;
        if (u->head == nullptr) u->tail = nullptr;
        u->qbytes -= d->len;
        std::free(d);
        maybe_recv(u);
      }
    }
  } else if (u->closed) {
    rc = UVA_ECLOSED;
  } else if (u->err != 0) {
    rc = u->err; /* reported once (e.g. ECONNREFUSED on a connected one) */
    u->err = 0;
  } else {
    maybe_recv(u);
    if (u->err != 0) { /* could not start receiving: nothing would come */
      rc = u->err;
      u->err = 0;
    } else {
      if (w != nullptr) return UVA_EAGAIN;
      return sync_enlist(u, t, WaitKind::IO);
    }
  }
  if (w != nullptr) sync_drop(w);
  return rc;
}

int udp_local_address(Udp *u, char *host, size_t hostlen, int *port) {
  struct sockaddr_storage ss;
  int n = sizeof ss;
  int rc = uv_udp_getsockname(&u->uv, reinterpret_cast<sockaddr *>(&ss), &n);
  if (rc != 0) return rc;
  return addr_format(reinterpret_cast<sockaddr *>(&ss), host, hostlen, port);
}

int udp_fileno(int *fd, Udp *u) {
  uv_os_fd_t ofd;
  /* libuv makes the socket at bind (or connect, or the first send) */
  if (uv_fileno(reinterpret_cast<uv_handle_t *>(&u->uv), &ofd) != 0)
    return UVA_ENOTCONN;
#ifdef _WIN32
  (void) fd;
  return UVA_ENOTSUP;
#else
  *fd = ofd;
  return 0;
#endif
}

void udp_close(Udp *u, uva_udp_close_cb cb, void *data) {
  if (u->closed) return;
  u->closed = true;
  if (u->edge) { /* out of the set while the descriptor is open */
    u->edge = false;
    edge_remove(u->loop, u->fd);
  }
  u->close_cb = cb;
  u->close_data = data;
  io_wake_all(u);
  uv_close(reinterpret_cast<uv_handle_t *>(&u->uv), [](uv_handle_t *h) {
    Udp *u = of(h);
    io_wake_all(u);
    if (u->close_cb != nullptr)
      u->close_cb(reinterpret_cast<uva_udp_t *>(u), u->close_data);
    sync_unref(u);
  });
}

}  // namespace detail
}  // namespace uva
