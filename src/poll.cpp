/* uvasync — waiting for readiness of a descriptor the program owns (the
 * seed's IORead/IOWrite). A poll is armed only while a task waits, and
 * one-shot: a ready descriptor nobody waits for costs nothing.
 *
 * The program may close the descriptor at any time, under a wait or
 * between waits, and reuse its number. libuv's uv_poll_t cannot take
 * that: it queues epoll_ctl for its next poll phase and aborts the process
 * when the call fails (EBADF for a closed number, EPERM for a regular
 * file). So on Linux the polls live in an epoll set of their own, which
 * one uv_poll_t on the set's descriptor watches: every epoll_ctl is made
 * at once, in the call that wants it, and its error is returned. A poll
 * watches a number: a wait after the number was closed returns UVA_EBADF,
 * a wait after it was reused watches the new file, and a new poll on a
 * reused number takes it over from the old poll (whose waits then return
 * UVA_EBADF). Elsewhere a poll is a uv_poll_t, with libuv's rules. */
#include "internal.h"
#include "fault.h"

#include <cerrno>
#include <cstdlib>

#ifdef __linux__
#include <sys/epoll.h>
#include <unistd.h>
#endif

namespace uva {
namespace detail {

static Poll *of(uv_handle_t *h) { return static_cast<Poll *>(h->data); }

#ifdef __linux__

/* The set's events: one pass over what is ready, the waiters woken. */
static void on_set(uv_poll_t *h, int status, int) {
  Loop *l = static_cast<Loop *>(h->data);
  if (status < 0) return; /* an epoll descriptor has no error to report */
  struct epoll_event ev[64];
  int n;
  do {
    n = epoll_wait(l->pollset, ev, 64, 0);
    for (int i = 0; i < n; i++) {
      auto it = l->polls.find(ev[i].data.fd);
      if (it == l->polls.end()) continue; /* a closed poll's last event */
      Poll *p = it->second;
      uint32_t e = ev[i].events;
      p->armed = 0; /* one-shot: disarmed by the kernel */
      /* An error or hang-up: both, as asyncio's selectors report it; the
       * caller's own call then meets the error. */
      if (e & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
        p->revents |= UVA_READABLE;
      if (e & (EPOLLOUT | EPOLLHUP | EPOLLERR)) p->revents |= UVA_WRITABLE;
      io_wake_all(p);
    }
  } while (n == 64);
}

static int pollset_of(Loop *l) {
  if (l->pollset >= 0) return 0;
  int ep = epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0) return -errno;
  int rc = FAULT_UV(uv_poll_init(&l->uv, &l->pollset_uv, ep));
  if (rc != 0) {
    close(ep);
    return rc;
  }
  l->pollset_uv.data = l;
  uv_poll_start(&l->pollset_uv, UV_READABLE, on_set);        /* cannot fail */
  uv_unref(reinterpret_cast<uv_handle_t *>(&l->pollset_uv)); /* tasks do */
  l->pollset = ep;
  return 0;
}

static void set_event(struct epoll_event *ev, uint32_t events, int fd) {
  std::memset(ev, 0, sizeof *ev);
  ev->events = events;
  ev->data.fd = fd;
}

int poll_new(Poll **out, Loop *l, int fd) {
  if (fd < 0) return UVA_EBADF;
  int rc = pollset_of(l);
  if (rc != 0) return rc;
  /* The set took the lowest free number: fd was closed. */
  if (fd == l->pollset) return UVA_EBADF;
  auto it = l->polls.find(fd);
  Poll *old = it != l->polls.end() ? it->second : nullptr;
  /* In the set disarmed: one-shot with no event asked (an error or
   * hang-up may still come once, which nobody waits for). This checks
   * the descriptor too: EBADF, EPERM for a regular file. */
  struct epoll_event ev;
  set_event(&ev, EPOLLONESHOT, fd);
  if (epoll_ctl(l->pollset, EPOLL_CTL_ADD, fd, &ev) != 0) {
    int e = errno;
    /* EEXIST: this file is in the set under this number. A live poll
     * holds it (refused), or a closed poll left it there because the
     * number was closed before its poll was (a dup kept the file open,
     * and it came back to the number): take it. */
    if (e != EEXIST || old != nullptr ||
        epoll_ctl(l->pollset, EPOLL_CTL_MOD, fd, &ev) != 0)
      return -e;
  }
  Poll *p = static_cast<Poll *>(fault_calloc(1, sizeof(Poll)));
  if (p == nullptr) {
    if (old == nullptr) epoll_ctl(l->pollset, EPOLL_CTL_DEL, fd, nullptr);
    return UVA_ENOMEM;
  }
  sync_init(p, l, MAGIC_POLL);
  uv_check_init(&l->uv, &p->uv);
  p->uv.data = p;
  p->fd = fd;
  if (old != nullptr) {
    /* The old poll's file left the number (else the set would have
     * refused this one): this poll has the number now. */
    old->lost = true;
    old->armed = 0;
    io_wake_all(old);
  }
  l->polls[fd] = p;
  *out = p;
  return 0;
}

/* Arm the one-shot registration for `events`. A number whose file was
 * closed and replaced is no longer in the set (the kernel dropped the
 * closed file): the new file goes in. A new wait always asks the kernel
 * (the file may have changed since the last one); a call again of a wait
 * that is still armed does not. */
static int arm(Poll *p, int events, bool again) {
  uint32_t want = EPOLLONESHOT;
  if (events & UVA_READABLE) want |= EPOLLIN | EPOLLRDHUP;
  if (events & UVA_WRITABLE) want |= EPOLLOUT;
  if (again && p->armed == want) return 0;
  int set = p->loop->pollset;
  struct epoll_event ev;
  set_event(&ev, want, p->fd);
  if (epoll_ctl(set, EPOLL_CTL_MOD, p->fd, &ev) != 0) {
    if (errno != ENOENT) return -errno; /* EBADF: the number is closed */
    if (epoll_ctl(set, EPOLL_CTL_ADD, p->fd, &ev) != 0) return -errno;
  }
  p->armed = want;
  return 0;
}

bool poll_holds(Loop *l, int fd) {
  auto it = l->polls.find(fd);
  if (it == l->polls.end()) return false;
  Poll *p = it->second;
  struct epoll_event ev;
  set_event(&ev, p->armed != 0 ? p->armed : EPOLLONESHOT, fd);
  if (epoll_ctl(l->pollset, EPOLL_CTL_MOD, fd, &ev) == 0) return true;
  /* Its file was closed: the caller takes the number over. */
  p->lost = true;
  p->armed = 0;
  io_wake_all(p);
  l->polls.erase(it);
  return false;
}

#else

static void on_poll(uv_poll_t *h, int status, int events) {
  Poll *p = of(reinterpret_cast<uv_handle_t *>(h));
  if (status < 0) {
    p->err = status;
  } else {
    if (events & (UV_READABLE | UV_DISCONNECT)) p->revents |= UVA_READABLE;
    if (events & UV_WRITABLE) p->revents |= UVA_WRITABLE;
  }
  uv_poll_stop(h); /* one-shot: the next wait starts it again */
  io_wake_all(p);
}

int poll_new(Poll **out, Loop *l, int fd) {
  if (fd < 0) return UVA_EBADF;
  Poll *p = static_cast<Poll *>(fault_calloc(1, sizeof(Poll)));
  if (p == nullptr) return UVA_ENOMEM;
  sync_init(p, l, MAGIC_POLL);
  int rc = FAULT_UV(uv_poll_init(&l->uv, &p->uv, fd));
  if (rc != 0) {
    l->handles--;
    std::free(p);
    return rc;
  }
  p->uv.data = p;
  uv_unref(reinterpret_cast<uv_handle_t *>(&p->uv)); /* tasks keep it alive */
  *out = p;
  return 0;
}

static int arm(Poll *p, int events, bool) {
  int uv_events = ((events & UVA_READABLE) ? UV_READABLE : 0) |
                  ((events & UVA_WRITABLE) ? UV_WRITABLE : 0);
  return FAULT_UV(uv_poll_start(&p->uv, uv_events, on_poll));
}

#endif

int poll_wait(int *revents, Poll *p, Task *t, int events) {
  Wait *w = sync_find(t, p);
  int rc = 0;
  if (p->closed) {
    rc = UVA_ECLOSED;
#ifdef __linux__
  } else if (p->lost) {
    rc = UVA_EBADF;
#endif
  } else if (p->err != 0) {
    rc = p->err;
    p->err = 0;
  } else if (w != nullptr && (p->revents & p->events) != 0) {
    *revents = p->revents & p->events;
    p->revents = 0;
  } else {
    if (w == nullptr) {
      if (p->waiters != nullptr) return UVA_EBUSY; /* one waiting task */
      p->events = events;
      p->revents = 0;
    }
    rc = arm(p, events, w != nullptr);
    if (rc == 0)
      return w != nullptr ? UVA_EAGAIN : sync_enlist(p, t, WaitKind::IO);
  }
  if (w != nullptr) sync_drop(w);
  return rc;
}

void poll_close(Poll *p, uva_poll_close_cb cb, void *data) {
  if (p->closed) return;
  p->closed = true;
  p->close_cb = cb;
  p->close_data = data;
  io_wake_all(p);
#ifdef __linux__
  Loop *l = p->loop;
  auto it = l->polls.find(p->fd);
  if (it != l->polls.end() && it->second == p) {
    l->polls.erase(it);
    /* Fails (ignored) when the number was closed; the kernel dropped the
     * file then, unless a dup keeps it open (see poll_new). */
    epoll_ctl(l->pollset, EPOLL_CTL_DEL, p->fd, nullptr);
  }
#endif
  uv_close(reinterpret_cast<uv_handle_t *>(&p->uv), [](uv_handle_t *h) {
    Poll *p = of(h);
    io_wake_all(p);
    if (p->close_cb != nullptr)
      p->close_cb(reinterpret_cast<uva_poll_t *>(p), p->close_data);
    sync_unref(p);
  });
}

}  // namespace detail
}  // namespace uva
