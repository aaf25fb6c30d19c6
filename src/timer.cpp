/* uvasync — timers and the core's timer heap.
 *
 * One libuv timer drives a 4-ary min-heap of (deadline, handle) entries;
 * a sleeping task or a started timer is one 16-byte entry, not a libuv
 * handle. Equal deadlines keep start order through a sequence number (as
 * libuv's start_id). Deadlines are uv_hrtime() nanoseconds, so a sleep of
 * N ms never ends before N ms have passed, whatever libuv's ms clock says.
 *
 * A due timer goes through the run queue like a task, so timers and sleeps
 * due together fire in the order they were started.
 */
#include "internal.h"
#include "fault.h"

#include <cstdlib>
#include <new>

namespace uva {
namespace detail {

/* ---- heap --------------------------------------------------------------- */

static inline bool less(const HeapEntry &a, const HeapEntry &b) {
  if (a.deadline != b.deadline) return a.deadline < b.deadline;
  return a.h->tn.seq < b.h->tn.seq;
}

TimerHeap::~TimerHeap() { std::free(a_); }

int TimerHeap::insert(uint64_t deadline, Timed *h) {
  if (n_ == cap_) {
    uint32_t cap = cap_ == 0 ? 64 : cap_ * 2;
    void *p = fault_realloc(a_, size_t(cap) * sizeof(HeapEntry));
    if (p == nullptr) return UVA_ENOMEM;
    a_ = static_cast<HeapEntry *>(p);
    cap_ = cap;
  }
  place(n_, HeapEntry{deadline, h});
  sift_up(n_++);
  return 0;
}

void TimerHeap::sift_up(uint32_t i) {
  HeapEntry e = a_[i];
  while (i > 0) {
    uint32_t parent = (i - 1) / 4;
    if (!less(e, a_[parent])) break;
    place(i, a_[parent]);
    i = parent;
  }
  place(i, e);
}

/* The least of the (up to 4) children of i among the first n entries;
 * 0 when i has none. */
uint32_t TimerHeap::least_child(uint32_t i, uint32_t n) const {
  uint32_t first = 4 * i + 1;
  if (first >= n) return 0;
  uint32_t end = first + 4 < n ? first + 4 : n;
  uint32_t best = first;
  for (uint32_t c = first + 1; c < end; c++)
    if (less(a_[c], a_[best])) best = c;
  return best;
}

void TimerHeap::sift_down(uint32_t i) {
  HeapEntry e = a_[i];
  for (uint32_t best; (best = least_child(i, n_)) != 0 && less(a_[best], e);
       i = best)
    place(i, a_[best]);
  place(i, e);
}

void TimerHeap::remove(Timed *h) {
  uint32_t i = h->tn.heap_idx;
  uint32_t last = --n_;
  if (i != last) {
    place(i, a_[last]);
    if (i > 0 && less(a_[i], a_[(i - 1) / 4]))
      sift_up(i);
    else
      sift_down(i);
  }
}

/* The hole left at the root goes down to a leaf, always taking the least
 * child up, and only then is the last entry put in it and sifted up:
 * that entry comes from the bottom and rarely rises, so this saves
 * sift_down's comparison with it at every level (libstdc++'s pop_heap
 * does the same). */
Timed *TimerHeap::pop() {
  Timed *h = a_[0].h;
  uint32_t last = --n_;
  if (last == 0) return h;
  uint32_t i = 0;
  for (uint32_t best; (best = least_child(i, last)) != 0; i = best)
    place(i, a_[best]);
  place(i, a_[last]);
  sift_up(i);
  return h;
}

/* ---- timers ------------------------------------------------------------- */

/* Keep loop liveness in step with "active and referenced". */
static void update_count(Timer *t) {
  bool want = (t->flags & F_REF) && timer_active(t);
  bool has = (t->flags & F_COUNTED) != 0;
  if (want == has) return;
  if (want) {
    t->flags |= F_COUNTED;
    alive_inc(t->loop);
  } else {
    t->flags &= ~F_COUNTED;
    alive_dec(t->loop);
  }
}

int timer_new(Timer **out, Loop *l, uva_timer_cb cb, void *data,
              uva_free_cb dtor) {
  Timer *t = static_cast<Timer *>(fault_malloc(sizeof(Timer)));
  if (t == nullptr) return UVA_ENOMEM;
  t->qnext = nullptr;
  t->magic = MAGIC_TIMER;
  t->flags = F_REF;
  set_state(t, TimerState::IDLE);
  t->spare_ = 0;
  new (&t->refs) std::atomic<uint32_t>(1);
  t->result = 0;
  t->loop = l;
  t->data = data;
  t->dtor = dtor;
  t->fn.timer_cb = cb;
  t->repeat_ms = 0;
  t->close_cb = nullptr;
  l->handles++;
  *out = t;
  return 0;
}

/* Put a due timer in the run queue (once: it may still be linked there
 * from an earlier firing that was stopped). */
static void make_due(Loop *l, Timer *t) {
  set_state(t, TimerState::DUE);
  if (!(t->flags & F_INQ)) {
    t->flags |= F_INQ;
    loop_push(l, t);
  }
}

int timer_start(Timer *t, int64_t timeout_ms, int64_t repeat_ms) {
  Loop *l = t->loop;
  if (timeout_ms < 0 || timeout_ms > MAX_DELAY_MS || repeat_ms < 0 ||
      repeat_ms > MAX_DELAY_MS)
    return UVA_EINVAL;
  if (state_of(t) == TimerState::HEAP) l->heap.remove(t);
  set_state(t, TimerState::IDLE);
  t->repeat_ms = repeat_ms;
  t->tn.seq = l->next_seq++;
  /* Even a 0 ms timer goes through the heap: everything due fires in
   * deadline order, whatever the order the starts were made in. */
  int rc = l->heap.insert(now_ns() + uint64_t(timeout_ms) * 1000000u, t);
  if (rc == 0) set_state(t, TimerState::HEAP);
  update_count(t);
  return rc;
}

void timer_stop(Timer *t) {
  if (state_of(t) == TimerState::HEAP) t->loop->heap.remove(t);
  if (timer_active(t)) set_state(t, TimerState::IDLE);
  update_count(t);
}

void timer_due(Loop *l, Timer *t) { make_due(l, t); }

void timer_run(Loop *l, Timer *t) {
  t->flags &= ~F_INQ;
  /* Stopped, restarted or closing since: */
  if (state_of(t) != TimerState::DUE) return;
  if (t->repeat_ms > 0) {
    t->tn.seq = l->next_seq++;
    /* Out of memory for the heap stops the timer rather than losing it
     * silently in a bad state. */
    if (l->heap.insert(now_ns() + uint64_t(t->repeat_ms) * 1000000u, t) == 0)
      set_state(t, TimerState::HEAP);
    else
      set_state(t, TimerState::IDLE);
  } else {
    set_state(t, TimerState::IDLE);
  }
  update_count(t);
  t->fn.timer_cb(reinterpret_cast<uva_timer_t *>(t), t->data);
}

static void run_close(Loop *l, Call *call) {
  Timer *t = static_cast<Timer *>(call->a);
  if (t->close_cb != nullptr)
    t->close_cb(reinterpret_cast<uva_timer_t *>(t), t->data);
  if (t->dtor != nullptr) t->dtor(t->data);
  t->magic = MAGIC_FREED;
  l->handles--;
  std::free(t);
}

void timer_close(Timer *t, uva_timer_close_cb cb) {
  Loop *l = t->loop;
  timer_stop(t);
  set_state(t, TimerState::CLOSING);
  t->close_cb = cb;
  /* The close call is embedded in the timer, so closing cannot fail. It is
   * queued after any run-queue link the timer still has, so that link is
   * skipped before the memory goes. */
  Call *call = &t->close_call;
  call->magic = MAGIC_CALL;
  call->pooled = 0;
  call->fn = run_close;
  call->a = t;
  alive_inc(l);
  loop_push(l, call);
}

void timer_set_ref(Timer *t, bool ref) {
  if (ref)
    t->flags |= F_REF;
  else
    t->flags &= ~F_REF;
  update_count(t);
}

}  // namespace detail
}  // namespace uva

/* ---- wrap-around ticks (MicroPython's time.ticks_*) --------------------- */

namespace uva {
namespace detail {

static constexpr long TICKS_MASK = UVA_TICKS_PERIOD - 1;
static constexpr long TICKS_HALF = UVA_TICKS_PERIOD / 2;

long ticks_ms() { return long((uv_hrtime() / 1000000u) & TICKS_MASK); }

/* Unsigned arithmetic: any long is accepted, and a sum or difference that
 * would overflow a long (undefined) wraps, which the mask makes exact. */
long ticks_add(long ticks, long delta) {
  return long(
      (static_cast<unsigned long>(ticks) + static_cast<unsigned long>(delta)) &
      TICKS_MASK);
}

long ticks_diff(long a, long b) {
  unsigned long d = static_cast<unsigned long>(a) -
                    static_cast<unsigned long>(b) + TICKS_HALF;
  return long(d & TICKS_MASK) - TICKS_HALF;
}

}  // namespace detail
}  // namespace uva
