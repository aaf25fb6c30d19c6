/* uvasync — Event, Lock, Semaphore, Queue and ThreadSafeFlag.
 *
 * One implementation for every binding. The waiting protocol is "call
 * again": an operation that cannot complete registers a wait node for the
 * task and returns UVA_EAGAIN; the task is woken (queued at the back of the
 * run queue, never ahead of tasks already ready) when the object has
 * something for it, and the repeated call then completes.
 *
 * Hand-off, not wake-and-race: a release, put or set grants the resource to
 * the first waiter directly (lock ownership, a permit, a claim on the next
 * queued item, a reserved queue slot), so a task that was ready earlier
 * cannot steal it and waiters are served in FIFO order. If a granted task is
 * cancelled, or finishes, before it took the grant, the grant goes back (to
 * the next waiter): a cancelled waiter never consumes anything and no
 * wake-up is lost. Queue items never leave the queue before a get takes
 * them, so their order is always the order they were put in.
 */
#include "internal.h"
#include "fault.h"

#include <cstdlib>
#include <cstring>
#include <new>

namespace uva {
namespace detail {

/* ---- common ------------------------------------------------------------- */

static Wait *find(Task *t, Sync *s);
static int enlist(Sync *s, Task *t, WaitKind kind);
static void drop(Wait *w);
static void give_back(Wait *w);

/* Shared by every object with waiters (sync primitives and I/O objects):
 * the owner's reference, no waiters, counted as a live handle. */
void sync_init(Sync *s, Loop *l, uint32_t magic) {
  s->qnext = nullptr;
  s->magic = magic;
  s->flags = 0;
  s->state = 0;
  s->spare_ = 0;
  new (&s->refs) std::atomic<uint32_t>(1);
  s->result = 0;
  s->loop = l;
  s->data = nullptr;
  s->dtor = nullptr;
  s->waiters = nullptr;
  l->handles++;
}

static void destroy(Sync *s) {
  Loop *l = s->loop;
  if (s->magic == MAGIC_WORK) {
    work_destroy(static_cast<Work *>(s));
    return;
  }
  if (s->magic >= MAGIC_STREAM) {
    io_destroy(s);
    return;
  }
  if (s->magic == MAGIC_QUEUE) {
    Queue *q = static_cast<Queue *>(s);
    if (q->item_dtor != nullptr)
      for (size_t i = 0; i < q->size; i++)
        q->item_dtor(q->ring[(q->head + i) % q->cap]);
    std::free(q->ring);
  }
  s->magic = MAGIC_FREED;
  l->handles--;
  std::free(s);
}

static void unref(Sync *s) {
  if (s->refs.fetch_sub(1, std::memory_order_acq_rel) == 1) destroy(s);
}

void sync_unref(Sync *s) { unref(s); }

static Wait **list_of(Sync *s, WaitKind kind) {
  if (kind == WaitKind::PUT) return &static_cast<Queue *>(s)->putters;
  return &s->waiters;
}

/* The task's node on this object, if it has one. */
static Wait *find(Task *t, Sync *s) {
  for (Wait *w = t->waits; w != nullptr; w = w->tnext)
    if (w->on == s) return w;
  return nullptr;
}

Wait *sync_find(Task *t, Sync *s) { return find(t, s); }

int sync_enlist(Sync *s, Task *t, WaitKind kind) { return enlist(s, t, kind); }

void sync_drop(Wait *w) { drop(w); }

/* I/O objects keep their waiters registered until the repeated call is
 * satisfied: a change wakes them all to check again. */
void io_wake_all(Sync *s) {
  Wait *head = s->waiters;
  if (head == nullptr) return;
  Wait *w = head;
  do {
    task_wake_local(w->task);
    w = w->next;
  } while (w != head);
}

static int enlist(Sync *s, Task *t, WaitKind kind) {
  Wait *w = wait_alloc(s->loop, t, s, kind);
  if (w == nullptr) return UVA_ENOMEM;
  s->refs.fetch_add(1, std::memory_order_relaxed);
  wlist_append(list_of(s, kind), w);
  return UVA_EAGAIN;
}

/* Drop a node the task is done with (still listed if it was waiting). */
static void drop(Wait *w) {
  Sync *s = static_cast<Sync *>(w->on);
  if (w->state == WaitState::WAITING) wlist_remove(list_of(s, w->kind), w);
  wait_free(s->loop, w);
  unref(s);
}

/* Hand the object's offer to the first waiter of `list`. */
static Wait *grant_first(Wait **list, void *item = nullptr) {
  Wait *w = *list;
  wlist_remove(list, w);
  w->state = WaitState::GRANTED;
  w->item = item;
  task_wake_local(w->task);
  return w;
}

/* The state of a node found for a repeated call: 0 to complete, or the
 * code to return. Once the object is closed the answer is UVA_ECLOSED,
 * even for what it granted before the close: that goes back into the
 * object (a queue's item to its item_dtor), so the task knows the call
 * was its last use of the object. The node is dropped last: after a
 * close it may hold the last reference, and the drop frees the object. */
static int settle(Wait *w) {
  Sync *s = static_cast<Sync *>(w->on);
  if (s->flags & F_CLOSING) {
    if (w->state == WaitState::GRANTED) give_back(w);
    drop(w);
    return UVA_ECLOSED;
  }
  switch (w->state) {
    case WaitState::GRANTED:
      if (w->kind == WaitKind::SEM) static_cast<Sem *>(s)->granted--;
      drop(w);
      return 0;
    case WaitState::CLOSED:
      drop(w);
      return UVA_ECLOSED;
    default:
      return UVA_EAGAIN; /* still waiting (woken for another reason) */
  }
}

void sync_close(Sync *s) {
  if (s->flags & F_CLOSING) return;
  s->flags |= F_CLOSING;
  Wait **lists[2] = {&s->waiters, nullptr};
  if (s->magic == MAGIC_QUEUE) lists[1] = &static_cast<Queue *>(s)->putters;
  for (Wait **list : lists) {
    while (list != nullptr && *list != nullptr) {
      Wait *w = *list;
      wlist_remove(list, w);
      w->state = WaitState::CLOSED;
      task_wake_local(w->task);
    }
  }
  unref(s); /* the owner's reference */
}

/* ---- Event -------------------------------------------------------------- */

int event_new(Event **out, Loop *l) {
  Event *e = static_cast<Event *>(fault_malloc(sizeof(Event)));
  if (e == nullptr) return UVA_ENOMEM;
  sync_init(e, l, MAGIC_EVENT);
  e->is_set = false;
  *out = e;
  return 0;
}

void event_set(Event *e) {
  e->is_set = true;
  while (e->waiters != nullptr)
    grant_first(&e->waiters);
}

int event_wait(Event *e, Task *t) {
  if (Wait *w = find(t, e)) return settle(w);
  if (e->flags & F_CLOSING) return UVA_ECLOSED;
  if (e->is_set) return 0;
  return enlist(e, t, WaitKind::EVENT);
}

/* ---- Lock --------------------------------------------------------------- */

int lock_new(Lock **out, Loop *l) {
  Lock *k = static_cast<Lock *>(fault_malloc(sizeof(Lock)));
  if (k == nullptr) return UVA_ENOMEM;
  sync_init(k, l, MAGIC_LOCK);
  k->locked = false;
  *out = k;
  return 0;
}

int lock_acquire(Lock *k, Task *t) {
  if (Wait *w = find(t, k)) return settle(w);
  if (k->flags & F_CLOSING) return UVA_ECLOSED;
  if (!k->locked) { /* unlocked implies nobody waits: releases hand off */
    k->locked = true;
    return 0;
  }
  return enlist(k, t, WaitKind::LOCK);
}

int lock_release(Lock *k) {
  if (!k->locked) return UVA_EINVAL;
  if (k->waiters != nullptr)
    grant_first(&k->waiters); /* stays locked: ownership moves */
  else
    k->locked = false;
  return 0;
}

/* ---- Semaphore ---------------------------------------------------------- */

int sem_new(Sem **out, Loop *l, int64_t value, int64_t bound) {
  Sem *s = static_cast<Sem *>(fault_malloc(sizeof(Sem)));
  if (s == nullptr) return UVA_ENOMEM;
  sync_init(s, l, MAGIC_SEM);
  s->value = value;
  s->bound = bound;
  s->granted = 0;
  *out = s;
  return 0;
}

int sem_acquire(Sem *s, Task *t) {
  if (Wait *w = find(t, s)) return settle(w);
  if (s->flags & F_CLOSING) return UVA_ECLOSED;
  if (s->value > 0) { /* a positive count implies nobody waits */
    s->value--;
    return 0;
  }
  return enlist(s, t, WaitKind::SEM);
}

/* Return a permit: to the first waiter, or to the count. */
static void sem_put_back(Sem *s) {
  if (s->waiters != nullptr) {
    s->granted++;
    grant_first(&s->waiters); /* the permit goes straight to the waiter */
  } else {
    s->value++;
  }
}

int sem_release(Sem *s) {
  /* Permits handed to waiters that have not run yet still count. An
   * unbounded semaphore stops at INT64_MAX (value + granted never exceed
   * the limit, so the subtraction cannot overflow). */
  int64_t limit = s->bound > 0 ? s->bound : INT64_MAX;
  if (s->value >= limit - s->granted) return UVA_EOVERFLOW;
  sem_put_back(s);
  return 0;
}

/* ---- Queue -------------------------------------------------------------- */

int queue_new(Queue **out, Loop *l, size_t maxsize, uva_free_cb item_dtor) {
  Queue *q = static_cast<Queue *>(fault_malloc(sizeof(Queue)));
  if (q == nullptr) return UVA_ENOMEM;
  sync_init(q, l, MAGIC_QUEUE);
  q->putters = nullptr;
  q->ring = nullptr;
  q->cap = q->head = q->size = 0;
  q->maxsize = maxsize;
  q->reserved = 0;
  q->claimed = 0;
  q->item_dtor = item_dtor;
  *out = q;
  return 0;
}

bool queue_full(const Queue *q) {
  return q->maxsize > 0 && q->size + q->reserved >= q->maxsize;
}

static int ring_grow(Queue *q) {
  if (q->size < q->cap) return 0;
  size_t cap = q->cap == 0 ? 16 : q->cap * 2;
  void **ring = static_cast<void **>(fault_malloc(cap * sizeof(void *)));
  if (ring == nullptr) return UVA_ENOMEM;
  for (size_t i = 0; i < q->size; i++)
    ring[i] = q->ring[(q->head + i) % q->cap];
  std::free(q->ring);
  q->ring = ring;
  q->cap = cap;
  q->head = 0;
  return 0;
}

static int push_back(Queue *q, void *item) {
  int rc = ring_grow(q);
  if (rc != 0) return rc;
  q->ring[(q->head + q->size) % q->cap] = item;
  q->size++;
  return 0;
}

static void *pop_front(Queue *q) {
  void *item = q->ring[q->head];
  q->head = (q->head + 1) % q->cap;
  q->size--;
  return item;
}

/* Room appeared: promise it to the first waiting putter. */
static void offer_room(Queue *q) {
  if (q->putters != nullptr && !queue_full(q)) {
    q->reserved++;
    grant_first(&q->putters);
  }
}

/* Items nobody has claimed: give each to a waiting getter (a claim on the
 * front item, taken when the getter runs). */
static void offer_items(Queue *q) {
  while (q->waiters != nullptr && q->size > q->claimed) {
    q->claimed++;
    grant_first(&q->waiters);
  }
}

int queue_put(Queue *q, Task *t, void *item) {
  if (Wait *w = find(t, q)) {
    /* The task waits in a get: */
    if (w->kind != WaitKind::PUT) return UVA_EBUSY;
    if (w->state != WaitState::GRANTED || (q->flags & F_CLOSING))
      return settle(w);
    /* Our reserved slot: fill it. */
    int rc = push_back(q, item);
    q->reserved--;
    if (rc != 0)
      offer_room(q);
    else
      offer_items(q);
    drop(w); /* last, as in settle */
    return rc;
  }
  int rc = queue_put_nowait(q, item);
  if (rc != UVA_EQUEUEFULL) return rc;
  return enlist(q, t, WaitKind::PUT);
}

int queue_put_nowait(Queue *q, void *item) {
  if (q->flags & F_CLOSING) return UVA_ECLOSED;
  if (queue_full(q) || q->putters != nullptr) return UVA_EQUEUEFULL;
  int rc = push_back(q, item);
  if (rc == 0) offer_items(q);
  return rc;
}

/* Take the front item (the caller holds a claim on it, or it is free). */
static void *take_front(Queue *q) {
  void *item = pop_front(q);
  offer_room(q);
  return item;
}

int queue_get(void **out, Queue *q, Task *t) {
  if (Wait *w = find(t, q)) {
    /* The task waits in a put: */
    if (w->kind != WaitKind::GET) return UVA_EBUSY;
    if (w->state != WaitState::GRANTED || (q->flags & F_CLOSING))
      return settle(w);
    q->claimed--;
    *out = take_front(q);
    drop(w); /* last, as in settle */
    return 0;
  }
  if (q->flags & F_CLOSING) return UVA_ECLOSED;
  int rc = queue_get_nowait(out, q);
  if (rc != UVA_EQUEUEEMPTY) return rc;
  return enlist(q, t, WaitKind::GET);
}

int queue_get_nowait(void **out, Queue *q) {
  if (q->size <= q->claimed) return UVA_EQUEUEEMPTY;
  *out = take_front(q);
  return 0;
}

/* ---- ThreadSafeFlag ----------------------------------------------------- */

int flag_new(Flag **out, Loop *l) {
  Flag *f = static_cast<Flag *>(fault_malloc(sizeof(Flag)));
  if (f == nullptr) return UVA_ENOMEM;
  sync_init(f, l, MAGIC_FLAG);
  new (&f->set) std::atomic<uint8_t>(0);
  new (&f->queued) std::atomic<uint8_t>(0);
  f->xnext = nullptr;
  *out = f;
  return 0;
}

/* Loop thread: if a task waits and the flag is set, the set is its. */
void flag_check(Loop *, Flag *f) {
  if (f->waiters != nullptr && f->set.exchange(0) != 0)
    grant_first(&f->waiters);
}

/* Only atomics and uv_async_send (which libuv documents as async-signal-
 * safe): callable from any thread and from a signal handler. No lock, so
 * the set counts itself in l->xsenders until its uv_async_send is made:
 * the loop's close shuts the door and then waits for the count to drop
 * (seq_cst on both sides: either the close sees us, or we see it shut). */
int flag_set(Flag *f) {
  Loop *l = f->loop;
  f->set.store(1);
  if (f->queued.exchange(1) != 0) return 0; /* a check is already pending */
  l->xsenders.fetch_add(1);
  if (l->xclosed.load()) {
    /* Not while the flag is open: an open flag keeps its loop from
     * closing. Checked all the same, so no set ever sends to a loop whose
     * door is shut. */
    f->queued.store(0);
    l->xsenders.fetch_sub(1);
    return UVA_ECLOSED;
  }
  f->refs.fetch_add(1, std::memory_order_relaxed); /* held while queued */
  Flag *old = l->xflags.load();
  do {
    f->xnext = old;
  } while (!l->xflags.compare_exchange_weak(old, f));
  uv_async_send(&l->async);
  l->xsenders.fetch_sub(1, std::memory_order_release);
  return 0;
}

/* Called by the loop's async callback. */
void flags_drain(Loop *l) {
  Flag *f = l->xflags.exchange(nullptr);
  while (f != nullptr) {
    Flag *next = f->xnext;
    f->queued.store(0); /* sets after this queue the flag again */
    flag_check(l, f);
    unref(f);
    f = next;
  }
}

int flag_wait(Flag *f, Task *t) {
  if (Wait *w = find(t, f)) return settle(w);
  if (f->flags & F_CLOSING) return UVA_ECLOSED;
  /* One waiting task: a set that arrives for it is its own. */
  if (f->waiters != nullptr) return UVA_EBUSY;
  if (f->set.exchange(0) != 0) return 0;
  return enlist(f, t, WaitKind::FLAG);
}

/* ---- cancellation ------------------------------------------------------- */

/* Give back what a granted node holds, to the next waiter if any. */
static void give_back(Wait *w) {
  Sync *s = static_cast<Sync *>(w->on);
  switch (w->kind) {
    case WaitKind::LOCK:
      lock_release(static_cast<Lock *>(s));
      break;
    case WaitKind::SEM: {
      Sem *sem = static_cast<Sem *>(s);
      sem->granted--;
      sem_put_back(sem);
      break;
    }
    case WaitKind::GET: { /* the claim goes to the next getter */
      Queue *q = static_cast<Queue *>(s);
      q->claimed--;
      offer_items(q);
      break;
    }
    case WaitKind::PUT: {
      Queue *q = static_cast<Queue *>(s);
      q->reserved--;
      offer_room(q);
      break;
    }
    case WaitKind::FLAG:
      static_cast<Flag *>(s)->set.store(1);
      flag_check(s->loop, static_cast<Flag *>(s));
      break;
    default: /* WaitKind::EVENT: a set is not consumed */
      break;
  }
}

/* Withdraw one node: a grant not yet taken goes to the next waiter, and an
 * I/O wait that will not complete lets flow control apply again. */
static void undo(Wait *w) {
  if (w->state == WaitState::GRANTED) give_back(w);
  Sync *obj = static_cast<Sync *>(w->on);
  bool stream = obj->magic == MAGIC_STREAM && w->state == WaitState::WAITING;
  if (stream) obj->refs.fetch_add(1, std::memory_order_relaxed);
  drop(w); /* unlinks it from the object and from the task's list */
  if (stream) {
    stream_waiter_gone(static_cast<Stream *>(obj));
    unref(obj);
  }
}

void sync_undo_waits(Loop *, Task *t) {
  Wait **pp = &t->waits;
  while (*pp != nullptr) {
    Wait *w = *pp;
    /* A sleep or a join is the task's own business: */
    if (w->kind == WaitKind::JOIN) {
      pp = &w->tnext;
      continue;
    }
    undo(w);
  }
}

/* Compares pointers only: `obj` is never read, so it may be freed already
 * (the task then has no node on it). */
int sync_withdraw(Task *t, const void *obj) {
  for (Wait *w = t->waits; w != nullptr; w = w->tnext) {
    if (w->kind != WaitKind::JOIN && w->on == obj) {
      undo(w);
      return 0;
    }
  }
  return UVA_ENOENT;
}

}  // namespace detail
}  // namespace uva
