/* uvasync — tasks: spawn, step, yield, sleep, join, wake, cancel, finish.
 *
 * A task is a step function the loop calls whenever the task is runnable.
 * The step returns UVA_TASK_PENDING (something will make it runnable again),
 * UVA_TASK_YIELD (requeue at the back) or a result <= 0 (finished).
 *
 * References: the caller of spawn holds one (unless detached) and the loop
 * holds one until the task finishes. Memory goes back to the loop's pool
 * when the last reference is dropped; that happens on the loop thread (a
 * release on another thread that drops the last one posts the free there).
 */
#include "internal.h"

namespace uva {
namespace detail {

/* A sleeping task must stay small: one 96-byte pool block plus its 16-byte
 * heap entry (the budget is 128 bytes in all). */
static_assert(sizeof(Task) <= 96, "Task grew: check the sleeping-task budget");

static void enqueue(Loop *l, Task *t) {
  set_state(t, TaskState::QUEUED);
  loop_push(l, t);
}

Wait *wait_alloc(Loop *l, Task *task, Handle *on, WaitKind kind) {
  Wait *w = static_cast<Wait *>(l->small_pool.alloc());
  if (w == nullptr) return nullptr;
  w->next = w->prev = nullptr;
  w->tnext = nullptr;
  w->task = task;
  w->on = on;
  w->item = nullptr;
  w->cb = nullptr;
  w->kind = kind;
  w->state = WaitState::WAITING;
  if (task != nullptr) { /* push on the task's own list */
    w->tnext = task->waits;
    task->waits = w;
  }
  return w;
}

void wait_free(Loop *l, Wait *w) {
  if (w->task != nullptr) {
    Wait **pp = &w->task->waits;
    while (*pp != w)
      pp = &(*pp)->tnext;
    *pp = w->tnext;
  }
  l->small_pool.free(w);
}

/* Give up a pending sleep or join without resuming. */
static void abandon_wait(Loop *l, Task *t) {
  if (state_of(t) == TaskState::SLEEPING) {
    l->heap.remove(t);
  } else if (state_of(t) == TaskState::JOINING) {
    Wait *w = t->waits;
    while (w->kind != WaitKind::JOIN)
      w = w->tnext;
    wlist_remove(&static_cast<Task *>(w->on)->waiters, w);
    wait_free(l, w);
  }
}

int task_spawn(Task **out, Loop *l, uva_task_step_cb step, void *data,
               uva_free_cb dtor) {
  Task *t = static_cast<Task *>(l->task_pool.alloc());
  if (t == nullptr) return UVA_ENOMEM;
  t->magic = MAGIC_TASK;
  t->flags = F_REF;
  t->spare_ = 0;
  new (&t->xwake) std::atomic<uint8_t>(0);
  new (&t->refs) std::atomic<uint32_t>(out != nullptr ? 2 : 1);
  t->result = 0;
  t->loop = l;
  t->data = data;
  t->dtor = dtor;
  t->fn.step = step;
  t->waiters = nullptr;
  t->waits = nullptr;
  l->handles++;
  alive_inc(l);
  enqueue(l, t);
  if (out != nullptr) *out = t;
  return 0;
}

/* Out of line: keeps the hot yield path of task_run free of its register
 * pressure. */
[[gnu::noinline]] static void finish(Loop *l, Task *t, int result) {
  l->current = nullptr;
  abandon_wait(l, t);
  sync_undo_waits(l, t); /* what it was granted but never took goes on */
  set_state(t, TaskState::DONE);
  t->result = result;
  if (t->flags & F_REF) alive_dec(l);
  /* Done callbacks and joiners, in the order added. Each node is unlinked
   * before its callback, so a callback may add or remove others safely;
   * joiners resume at the next pass. */
  while (t->waiters != nullptr) {
    Wait *w = t->waiters;
    wlist_remove(&t->waiters, w);
    if (w->kind == WaitKind::DONE_CB) {
      uva_task_done_cb cb = w->cb;
      void *data = w->item;
      wait_free(l, w);
      cb(reinterpret_cast<uva_task_t *>(t), result, data);
    } else {
      Task *j = w->task;
      wait_free(l, w);
      enqueue(l, j);
    }
  }
  task_release(t); /* the loop's reference */
}

/* Deliver a pending cancellation: returns the step's status. A cancelled
 * task leaves no trace: pending sync waits are withdrawn and anything
 * already handed to it goes to the next waiter. */
[[gnu::noinline]] static int deliver_cancel(Loop *l, Task *t) {
  t->flags &= ~F_CANCEL;
  if (t->waits != nullptr) sync_undo_waits(l, t);
  return UVA_ECANCELED;
}

/* Everything after a step other than "yield again" (kept out of line). */
[[gnu::noinline]] static void after_step(Loop *l, Task *t, int r) {
  l->current = nullptr;
  uint16_t f = t->flags;
  t->flags = f & ~(F_YIELD | F_WOKEN);
  if (r <= 0) {
    finish(l, t, r);
  } else if (state_of(t) == TaskState::QUEUED) { /* no sleep or join set up */
    if (r == UVA_TASK_YIELD || (f & (F_YIELD | F_WOKEN | F_CANCEL)))
      loop_push(l, t);
    else
      set_state(t, TaskState::PARKED);
  } else if (f & (F_WOKEN | F_CANCEL)) {
    /* Woken or cancelled after it set up a sleep or join: run again. */
    abandon_wait(l, t);
    enqueue(l, t);
  }
}

/* One step. The common case, a step that yields, is the straight line.
 * While its step runs a task stays QUEUED and is l->current (that is what
 * "running" means); l->current is left set after the step (the pass clears
 * it before anything that is not a task step runs, and when it ends). */
void task_run(Loop *l, Task *t) {
  int status = 0;
  if (__builtin_expect(t->flags & F_CANCEL, 0)) status = deliver_cancel(l, t);
  l->current = t;
  int r;
  try {
    r = t->fn.step(reinterpret_cast<uva_task_t *>(t), status, t->data);
  } catch (...) {
    r = UVA_EUSER; /* a C++ step threw: never let it unwind into libuv */
  }
  /* The common switch: yielded, still queued (QUEUED is 0), no yield
   * or wake-up recorded during the step: one load checks all three. */
  static_assert(uint8_t(TaskState::QUEUED) == 0, "the check below needs it");
  if (__builtin_expect(
          r == UVA_TASK_YIELD &&
              (flags_and_state(t) &
               (uint32_t(F_YIELD | F_WOKEN) | (0xFFu << UVA_STATE_SHIFT))) == 0,
          1)) {
    loop_push(l, t);
    return;
  }
  after_step(l, t, r);
}

void task_timer_due(Loop *l, Task *t) { enqueue(l, t); }

int task_yield(Task *t) {
  if (t->loop->current != t) return UVA_EINVAL;
  if (state_of(t) != TaskState::QUEUED || (t->flags & F_YIELD))
    return UVA_EBUSY;
  t->flags |= F_YIELD;
  return 0;
}

int task_sleep(Task *t, int64_t ms) {
  Loop *l = t->loop;
  if (l->current != t || ms < 0 || ms > MAX_DELAY_MS) return UVA_EINVAL;
  if (state_of(t) != TaskState::QUEUED || (t->flags & F_YIELD))
    return UVA_EBUSY;
  t->tn.seq = l->next_seq++;
  int rc = l->heap.insert(now_ns() + uint64_t(ms) * 1000000u, t);
  if (rc != 0) return rc;
  set_state(t, TaskState::SLEEPING);
  return 0;
}

int task_join(Task *t, Task *other) {
  Loop *l = t->loop;
  if (l->current != t || other == t || other->loop != l) return UVA_EINVAL;
  if (state_of(t) != TaskState::QUEUED || (t->flags & F_YIELD))
    return UVA_EBUSY;
  if (state_of(other) == TaskState::DONE) {
    t->flags |= F_YIELD; /* resume at the next pass */
    return 0;
  }
  Wait *w = wait_alloc(l, t, other, WaitKind::JOIN);
  if (w == nullptr) return UVA_ENOMEM;
  wlist_append(&other->waiters, w);
  set_state(t, TaskState::JOINING);
  return 0;
}

void task_wake_local(Task *t) {
  if (t->loop->current == t) { /* running: run again after this step */
    t->flags |= F_WOKEN;
    return;
  }
  switch (state_of(t)) {
    case TaskState::SLEEPING:
    case TaskState::JOINING:
      abandon_wait(t->loop, t);
      enqueue(t->loop, t);
      break;
    case TaskState::PARKED:
      enqueue(t->loop, t);
      break;
    default: /* queued already, or done */
      break;
  }
}

int task_wake(Task *t) {
  Loop *l = t->loop;
  if (on_owner(l)) {
    task_wake_local(t);
    return 0;
  }
  /* Coalesce: one queued cross-thread wake per task is enough. */
  if (t->xwake.exchange(1, std::memory_order_acq_rel) != 0) return 0;
  task_retain(t); /* the queued wake holds the task */
  int rc;
  try {
    rc = loop_post(l, X_WAKE, t, nullptr);
  } catch (...) {
    rc = UVA_ENOMEM;
  }
  if (rc != 0) { /* UVA_ECLOSED cannot happen: a task keeps its loop open */
    t->xwake.store(0);
    task_release(t);
  }
  return rc;
}

int task_cancel(Task *t) {
  if (state_of(t) == TaskState::DONE || (t->flags & F_CANCEL)) return 0;
  t->flags |= F_CANCEL;
  if (t->loop->current == t) return 0; /* after_step requeues it */
  switch (state_of(t)) {
    case TaskState::SLEEPING:
    case TaskState::JOINING:
      abandon_wait(t->loop, t);
      enqueue(t->loop, t);
      break;
    case TaskState::PARKED:
      enqueue(t->loop, t);
      break;
    default: /* queued or running: delivered at the next resume */
      break;
  }
  return 0;
}

static void run_deferred_done(Loop *, Call *call) {
  Task *t = static_cast<Task *>(call->a);
  uva_task_done_cb cb = reinterpret_cast<uva_task_done_cb>(call->b);
  cb(reinterpret_cast<uva_task_t *>(t), t->result, call->c);
  task_release(t);
}

int task_add_done(Task *t, uva_task_done_cb cb, void *data) {
  Loop *l = t->loop;
  if (state_of(t) == TaskState::DONE) {
    /* Never call back from inside the registering call. */
    task_retain(t);
    int rc = loop_call_soon(l, run_deferred_done, t,
                            reinterpret_cast<void *>(cb), data);
    if (rc != 0) task_release(t);
    return rc;
  }
  Wait *w = wait_alloc(l, nullptr, t, WaitKind::DONE_CB);
  if (w == nullptr) return UVA_ENOMEM;
  w->cb = cb;
  w->item = data;
  wlist_append(&t->waiters, w);
  return 0;
}

int task_remove_done(Task *t, uva_task_done_cb cb, void *data) {
  Wait *head = t->waiters;
  if (head == nullptr) return UVA_ENOENT;
  Wait *w = head;
  do {
    if (w->kind == WaitKind::DONE_CB && w->cb == cb && w->item == data) {
      wlist_remove(&t->waiters, w);
      wait_free(t->loop, w);
      return 0;
    }
    w = w->next;
  } while (w != head);
  return UVA_ENOENT;
}

void task_set_ref(Task *t, bool ref) {
  bool has = (t->flags & F_REF) != 0;
  if (ref == has) return;
  if (ref) {
    t->flags |= F_REF;
    if (state_of(t) != TaskState::DONE) alive_inc(t->loop);
  } else {
    t->flags &= ~F_REF;
    if (state_of(t) != TaskState::DONE) alive_dec(t->loop);
  }
}

void task_retain(Task *t) { t->refs.fetch_add(1, std::memory_order_relaxed); }

void task_release(Task *t) {
  if (t->refs.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
  Loop *l = t->loop;
  if (on_owner(l)) {
    task_destroy(t);
    return;
  }
  try {
    loop_post(l, X_FREE, t, nullptr);
  } catch (...) {
    /* Out of memory posting the free: leaking beats freeing on a thread
     * that does not own the pool. (UVA_ECLOSED cannot happen: the task's
     * memory keeps the loop open.) */
  }
}

void task_destroy(Task *t) {
  Loop *l = t->loop;
  if (t->dtor != nullptr) t->dtor(t->data);
  t->magic = MAGIC_FREED;
  l->handles--;
  l->task_pool.free(t);
}

}  // namespace detail
}  // namespace uva
