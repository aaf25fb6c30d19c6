/* uvasync — signal watchers (uv_signal_t).
 *
 * libuv's handler writes each arrival to a pipe of every loop that
 * watches the signal, so any number of watchers on any number of loops
 * each see every arrival, in their own thread. Here arrivals are counted
 * (they coalesce until a wait takes the count, as pending signals do in
 * the kernel), a waiting task is woken (an I/O-style wait, see sync.cpp),
 * and the callback runs once per loop pass that saw arrivals.
 */
#include "internal.h"
#include "fault.h"

#include <csignal>
#include <cstdlib>

namespace uva {
namespace detail {

static Signal *of(uv_handle_t *h) { return static_cast<Signal *>(h->data); }

static void on_closed(uv_handle_t *h) {
  Signal *s = of(h);
  if (s->close_cb != nullptr)
    s->close_cb(reinterpret_cast<uva_signal_t *>(s), s->close_data);
  sync_unref(s); /* the owner's reference */
}

static void on_signal(uv_signal_t *h, int signum) {
  Signal *s = of(reinterpret_cast<uv_handle_t *>(h));
  s->count++;
  io_wake_all(s);
  /* libuv calls us once per arrival; the callback hears of them once per
   * pass (Loop::passes moves on after libuv's part of the pass). */
  uint64_t pass = s->loop->passes + 1;
  if (s->cb != nullptr && s->cb_pass != pass) {
    s->cb_pass = pass;
    s->cb(reinterpret_cast<uva_signal_t *>(s), signum, s->cb_data);
  }
}

int signal_new(Signal **out, Loop *l, int signum) {
  if (signum <= 0 || signum >= NSIG || signum == SIGKILL || signum == SIGSTOP)
    return UVA_EINVAL;
  Signal *s = static_cast<Signal *>(fault_calloc(1, sizeof(Signal)));
  if (s == nullptr) return UVA_ENOMEM;
  sync_init(s, l, MAGIC_SIGNAL);
  s->signum = signum;
  int rc = FAULT_UV(uv_signal_init(&l->uv, &s->uv));
  if (rc != 0) {
    l->handles--;
    std::free(s);
    return rc;
  }
  s->uv.data = s;
  rc = FAULT_UV(uv_signal_start(&s->uv, on_signal, signum));
  if (rc != 0) {
    /* The handle is libuv's until its close: the memory lingers until
     * then (uva_loop_close finishes it). */
    s->closed = true;
    l->lingering++;
    uv_close(reinterpret_cast<uv_handle_t *>(&s->uv), on_closed);
    return rc;
  }
  uv_unref(reinterpret_cast<uv_handle_t *>(&s->uv)); /* waiters keep it */
  *out = s;
  return 0;
}

int signal_wait(uint64_t *count, Signal *s, Task *t) {
  Wait *w = sync_find(t, s);
  int rc;
  if (s->closed) {
    rc = UVA_ECLOSED;
  } else if (s->count > 0) {
    if (count != nullptr) *count = s->count;
    s->count = 0;
    rc = 0;
  } else if (w != nullptr) {
    return UVA_EAGAIN;
  } else {
    if (s->waiters != nullptr) return UVA_EBUSY; /* one waiting task */
    return sync_enlist(s, t, WaitKind::IO);
  }
  if (w != nullptr) sync_drop(w);
  return rc;
}

void signal_on_signal(Signal *s, uva_signal_cb cb, void *data) {
  s->cb = cb;
  s->cb_data = cb != nullptr ? data : nullptr;
}

void signal_close(Signal *s, uva_signal_close_cb cb, void *data) {
  if (s->closed) return;
  s->closed = true;
  s->close_cb = cb;
  s->close_data = data;
  s->cb = nullptr;
  s->loop->lingering++;
  io_wake_all(s); /* their repeated calls return UVA_ECLOSED */
  /* The last watcher of the signal gone, libuv resets it to SIG_DFL. */
  uv_close(reinterpret_cast<uv_handle_t *>(&s->uv), on_closed);
}

}  // namespace detail
}  // namespace uva
