/* uvasync — waiting for readiness of a descriptor the program owns (the
 * seed's IORead/IOWrite). One uv_poll_t per descriptor, started only while
 * a task waits, stopped once it fired: a ready descriptor nobody waits for
 * costs nothing. */
#include "internal.h"
#include "fault.h"

#include <cstdlib>

namespace uva {
namespace detail {

static Poll *of(uv_handle_t *h) { return static_cast<Poll *>(h->data); }

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

int poll_wait(int *revents, Poll *p, Task *t, int events) {
  Wait *w = sync_find(t, p);
  int rc = 0;
  if (p->closed) {
    rc = UVA_ECLOSED;
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
    int uv_events = ((events & UVA_READABLE) ? UV_READABLE : 0) |
                    ((events & UVA_WRITABLE) ? UV_WRITABLE : 0);
    rc = FAULT_UV(uv_poll_start(&p->uv, uv_events, on_poll));
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
