/* Synchronisation: event, lock, semaphore, queue, thread-safe flag
 * (uvasync.h "Synchronisation"). Waiting follows the "call again" protocol:
 * a call that cannot complete registers the task and returns UVA_EAGAIN, the
 * step returns UVA_TASK_PENDING, and the repeated call after the wake-up
 * completes. Most tests drive the loop one pass at a time (UVA_RUN_NOWAIT)
 * so that every hand-off, wake-up and cancellation happens at a known point. */
#include "helpers.h"

/* ---- shared scaffolding ------------------------------------------------ */

/* A printable trace of who did what, in order. */
struct trace {
  char s[512];
  int n;
};

static void tr_add(struct trace *tr, char c) {
  if (tr != NULL && tr->n < (int) sizeof tr->s - 1) {
    tr->s[tr->n++] = c;
    tr->s[tr->n] = '\0';
  }
}

#define TR_EQ(tr, want)                                                       \
  cr_assert_str_eq((tr)->s, (want), "trace: got \"%s\", want \"%s\"",         \
                   (tr)->s, (want))

/* One pass of the loop. */
static void pass(uva_loop_t *loop) {
  UVT_OK(uva_loop_run(loop, UVA_RUN_NOWAIT));
}

/* Passes until no referenced work is left (every task finished), at most
 * max passes; returns 1 if the loop went idle. Tests that expect parked
 * tasks to remain use pass() instead. */
static int run_idle(uva_loop_t *loop, int max) {
  int alive = 1;
  for (int i = 0; i < max; i++) {
    UVT_OK(uva_loop_alive(&alive, loop));
    if (!alive)
      return 1;
    pass(loop);
  }
  UVT_OK(uva_loop_alive(&alive, loop));
  return !alive;
}

#define RUN_IDLE(loop)                                                        \
  cr_assert(run_idle((loop), 200),                                            \
            "tasks still alive after 200 passes (a lost wake-up?)")

/* A generic waiting task: calls one wait function ("call again" protocol)
 * until it returns something other than UVA_EAGAIN, then finishes with that
 * result. Records everything a test may want to assert. */
enum wop { OP_EVENT, OP_LOCK, OP_SEM, OP_GET, OP_PUT, OP_FLAG };

struct waiter {
  char id;          /* appended to the trace when the call returns 0 */
  enum wop op;
  void *obj;        /* the primitive */
  void *item;       /* OP_PUT: item to put; OP_GET: item received */
  struct trace *tr; /* may be NULL */
  int release;      /* OP_LOCK/OP_SEM: release right after acquiring */
  int skip_take;    /* when resumed, finish with 0 without calling again */
  int runs;         /* step runs */
  int calls;        /* calls of the wait function */
  int first_rc;     /* result of the first call */
  int rc;           /* result of the last call */
  int status;       /* status of the last run */
  int cancelled;    /* runs that saw UVA_ECANCELED */
  int got;          /* the call returned 0 */
  uva_task_t *task;
};

static void waiter_init(struct waiter *w, char id, enum wop op, void *obj,
                        struct trace *tr) {
  memset(w, 0, sizeof *w);
  w->id = id;
  w->op = op;
  w->obj = obj;
  w->tr = tr;
  w->rc = 1;       /* "never called" */
  w->first_rc = 1; /* idem */
}

static int waiter_call(struct waiter *w, uva_task_t *t) {
  switch (w->op) {
    case OP_EVENT:
      return uva_event_wait((uva_event_t *) w->obj, t);
    case OP_LOCK:
      return uva_lock_acquire((uva_lock_t *) w->obj, t);
    case OP_SEM:
      return uva_sem_acquire((uva_sem_t *) w->obj, t);
    case OP_GET:
      return uva_queue_get(&w->item, (uva_queue_t *) w->obj, t);
    case OP_PUT:
      return uva_queue_put((uva_queue_t *) w->obj, t, w->item);
    case OP_FLAG:
      return uva_flag_wait((uva_flag_t *) w->obj, t);
  }
  return UVA_EINTERNAL;
}

static int step_waiter(uva_task_t *t, int status, void *d) {
  struct waiter *w = (struct waiter *) d;
  w->runs++;
  w->status = status;
  if (status == UVA_ECANCELED) {
    w->cancelled++;
    return UVA_ECANCELED;
  }
  if (w->skip_take && w->runs > 1)
    return 0; /* resumed with a grant it never takes */
  int rc = waiter_call(w, t);
  if (++w->calls == 1)
    w->first_rc = rc;
  w->rc = rc;
  if (rc == UVA_EAGAIN)
    return UVA_TASK_PENDING;
  if (rc == 0) {
    w->got = 1;
    tr_add(w->tr, w->id);
    if (w->release && w->op == OP_LOCK)
      cr_assert_eq(uva_lock_release((uva_lock_t *) w->obj), 0);
    if (w->release && w->op == OP_SEM)
      cr_assert_eq(uva_sem_release((uva_sem_t *) w->obj), 0);
  }
  return rc;
}

static uva_task_t *spawn_waiter(uva_loop_t *loop, struct waiter *w) {
  UVT_OK(uva_task_spawn(&w->task, loop, step_waiter, w, NULL));
  return w->task;
}

static void release_waiters(struct waiter *w, int n) {
  for (int i = 0; i < n; i++) {
    UVT_OK(uva_task_release(w[i].task));
    w[i].task = NULL;
  }
}

/* The result a finished task returned. */
static int task_rc(uva_task_t *t) {
  int r = 12345;
  UVT_OK(uva_task_result(&r, t));
  return r;
}

/* A task that yields once, appending `upper` then `lower` to the trace. */
struct yielder {
  char upper, lower;
  struct trace *tr;
  int runs;
};

static int step_yielder(uva_task_t *t, int status, void *d) {
  struct yielder *y = (struct yielder *) d;
  (void) t;
  (void) status;
  if (++y->runs == 1) {
    tr_add(y->tr, y->upper);
    return UVA_TASK_YIELD;
  }
  tr_add(y->tr, y->lower);
  return 0;
}

/* ======================================================================== */
/* Event                                                                    */
/* ======================================================================== */

Test(sync, event_set_clear_is_set, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  uva_event_t *ev = NULL;
  int set = -1;
  UVT_OK(uva_event_new(&ev, loop));
  cr_assert_not_null(ev);
  UVT_OK(uva_event_is_set(&set, ev));
  cr_assert_eq(set, 0, "a new event is clear");
  UVT_OK(uva_event_set(ev));
  UVT_OK(uva_event_is_set(&set, ev));
  cr_assert_eq(set, 1);
  UVT_OK(uva_event_set(ev)); /* idempotent */
  UVT_OK(uva_event_is_set(&set, ev));
  cr_assert_eq(set, 1);
  UVT_OK(uva_event_clear(ev));
  UVT_OK(uva_event_is_set(&set, ev));
  cr_assert_eq(set, 0);
  UVT_OK(uva_event_clear(ev)); /* idempotent */
  UVT_OK(uva_event_is_set(&set, ev));
  cr_assert_eq(set, 0);
  UVT_OK(uva_event_close(ev));
  UVT_CLOSE_LOOP(loop);
}

Test(sync, event_wait_on_set_event_completes_at_once, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  uva_event_t *ev;
  struct waiter w;
  int set = 0;
  UVT_OK(uva_event_new(&ev, loop));
  UVT_OK(uva_event_set(ev));
  waiter_init(&w, 'a', OP_EVENT, ev, NULL);
  spawn_waiter(loop, &w);
  RUN_IDLE(loop);
  cr_assert_eq(w.runs, 1, "a wait on a set event must not park");
  cr_assert_eq(w.first_rc, 0);
  cr_assert_eq(task_rc(w.task), 0);
  UVT_OK(uva_event_is_set(&set, ev));
  cr_assert_eq(set, 1, "waiting does not clear an event");
  release_waiters(&w, 1);
  UVT_OK(uva_event_close(ev));
  UVT_CLOSE_LOOP(loop);
}

Test(sync, event_set_wakes_all_waiters_in_fifo_order, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  uva_event_t *ev;
  struct waiter w[4];
  struct trace tr = {{0}, 0};
  const char *ids = "cadb";
  UVT_OK(uva_event_new(&ev, loop));
  for (int i = 0; i < 4; i++) {
    waiter_init(&w[i], ids[i], OP_EVENT, ev, &tr);
    spawn_waiter(loop, &w[i]);
  }
  pass(loop);
  pass(loop);
  pass(loop);
  for (int i = 0; i < 4; i++) {
    cr_assert_eq(w[i].runs, 1, "waiter %c ran %d times while parked", ids[i],
                 w[i].runs);
    cr_assert_eq(w[i].first_rc, UVA_EAGAIN);
  }
  TR_EQ(&tr, "");
  UVT_OK(uva_event_set(ev));
  RUN_IDLE(loop);
  TR_EQ(&tr, "cadb");
  for (int i = 0; i < 4; i++) {
    cr_assert_eq(w[i].runs, 2);
    cr_assert_eq(w[i].rc, 0);
    cr_assert_eq(task_rc(w[i].task), 0);
  }
  release_waiters(w, 4);
  UVT_OK(uva_event_close(ev));
  UVT_CLOSE_LOOP(loop);
}

Test(sync, event_wait_completes_even_if_cleared_before_waiter_ran,
     .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  uva_event_t *ev;
  struct waiter w[2];
  int set = 1;
  UVT_OK(uva_event_new(&ev, loop));
  waiter_init(&w[0], 'a', OP_EVENT, ev, NULL);
  waiter_init(&w[1], 'b', OP_EVENT, ev, NULL);
  spawn_waiter(loop, &w[0]);
  spawn_waiter(loop, &w[1]);
  pass(loop);
  cr_assert_eq(w[0].first_rc, UVA_EAGAIN);
  cr_assert_eq(w[1].first_rc, UVA_EAGAIN);
  UVT_OK(uva_event_set(ev));
  UVT_OK(uva_event_clear(ev)); /* before either waiter ran again */
  UVT_OK(uva_event_is_set(&set, ev));
  cr_assert_eq(set, 0);
  RUN_IDLE(loop);
  for (int i = 0; i < 2; i++) {
    cr_assert_eq(w[i].runs, 2);
    cr_assert_eq(w[i].rc, 0, "waiter %d: got %d (%s), want 0", i, w[i].rc,
                 uva_err_name(w[i].rc));
  }
  release_waiters(w, 2);
  UVT_OK(uva_event_close(ev));
  UVT_CLOSE_LOOP(loop);
}

Test(sync, event_close_wakes_waiters_with_eclosed, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  uva_event_t *ev;
  struct waiter w[3];
  UVT_OK(uva_event_new(&ev, loop));
  for (int i = 0; i < 3; i++) {
    waiter_init(&w[i], (char) ('a' + i), OP_EVENT, ev, NULL);
    spawn_waiter(loop, &w[i]);
  }
  pass(loop);
  UVT_OK(uva_event_close(ev));
  /* The waiters keep the memory alive until they ran: nothing else may touch
   * ev from here on. */
  RUN_IDLE(loop);
  for (int i = 0; i < 3; i++) {
    cr_assert_eq(w[i].runs, 2);
    cr_assert_eq(w[i].rc, UVA_ECLOSED, "waiter %d: got %d (%s)", i, w[i].rc,
                 uva_err_name(w[i].rc));
    cr_assert_eq(task_rc(w[i].task), UVA_ECLOSED);
  }
  release_waiters(w, 3);
  UVT_CLOSE_LOOP(loop);
}

/* ======================================================================== */
/* Lock                                                                     */
/* ======================================================================== */

Test(sync, lock_acquire_try_acquire_release_locked, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  uva_lock_t *lk = NULL;
  struct waiter w;
  int locked = -1;
  UVT_OK(uva_lock_new(&lk, loop));
  cr_assert_not_null(lk);
  UVT_OK(uva_lock_locked(&locked, lk));
  cr_assert_eq(locked, 0);
  UVT_EQ(uva_lock_release(lk), UVA_EINVAL); /* not locked */
  UVT_OK(uva_lock_try_acquire(lk));
  UVT_OK(uva_lock_locked(&locked, lk));
  cr_assert_eq(locked, 1);
  UVT_EQ(uva_lock_try_acquire(lk), UVA_EBUSY);
  UVT_OK(uva_lock_release(lk));
  UVT_OK(uva_lock_locked(&locked, lk));
  cr_assert_eq(locked, 0);
  UVT_EQ(uva_lock_release(lk), UVA_EINVAL);

  /* A task acquires an unlocked lock at once. The lock is not owned by the
   * task: it stays locked after the task finished, and anyone releases it. */
  waiter_init(&w, 'a', OP_LOCK, lk, NULL);
  spawn_waiter(loop, &w);
  RUN_IDLE(loop);
  cr_assert_eq(w.runs, 1);
  cr_assert_eq(w.first_rc, 0);
  UVT_OK(uva_lock_locked(&locked, lk));
  cr_assert_eq(locked, 1);
  UVT_OK(uva_lock_release(lk));
  UVT_OK(uva_lock_locked(&locked, lk));
  cr_assert_eq(locked, 0);
  release_waiters(&w, 1);
  UVT_OK(uva_lock_close(lk));
  UVT_CLOSE_LOOP(loop);
}

Test(sync, lock_release_hands_lock_to_waiters_in_fifo_order, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  uva_lock_t *lk;
  struct waiter w[5];
  struct trace tr = {{0}, 0};
  const char *ids = "31524";
  int locked = 0;
  UVT_OK(uva_lock_new(&lk, loop));
  UVT_OK(uva_lock_try_acquire(lk));
  for (int i = 0; i < 5; i++) {
    waiter_init(&w[i], ids[i], OP_LOCK, lk, &tr);
    w[i].release = 1;
    spawn_waiter(loop, &w[i]);
  }
  pass(loop);
  pass(loop);
  for (int i = 0; i < 5; i++) {
    cr_assert_eq(w[i].runs, 1);
    cr_assert_eq(w[i].first_rc, UVA_EAGAIN);
  }
  /* Ownership moves to the first waiter: the lock stays locked. */
  UVT_OK(uva_lock_release(lk));
  UVT_OK(uva_lock_locked(&locked, lk));
  cr_assert_eq(locked, 1, "a release with waiters hands the lock over");
  RUN_IDLE(loop);
  TR_EQ(&tr, "31524");
  for (int i = 0; i < 5; i++) {
    cr_assert_eq(w[i].runs, 2, "waiter %c ran %d times", ids[i], w[i].runs);
    cr_assert_eq(w[i].rc, 0);
  }
  UVT_OK(uva_lock_locked(&locked, lk));
  cr_assert_eq(locked, 0);
  release_waiters(w, 5);
  UVT_OK(uva_lock_close(lk));
  UVT_CLOSE_LOOP(loop);
}

/* W waits; R yields (so it is ready before the release); H releases: the lock
 * goes to W, and R, which runs first, finds it taken. */
struct steal {
  uva_lock_t *lk;
  struct trace tr;
  int r_try_rc;
  int r_locked;
  int r_runs;
};

static int step_steal_ready(uva_task_t *t, int status, void *d) {
  struct steal *s = (struct steal *) d;
  (void) t;
  (void) status;
  if (++s->r_runs == 1) {
    tr_add(&s->tr, 'R');
    return UVA_TASK_YIELD;
  }
  tr_add(&s->tr, 'r');
  s->r_try_rc = uva_lock_try_acquire(s->lk);
  if (s->r_try_rc == 0)
    uva_lock_release(s->lk);
  uva_lock_locked(&s->r_locked, s->lk);
  return 0;
}

static int step_steal_releaser(uva_task_t *t, int status, void *d) {
  struct steal *s = (struct steal *) d;
  (void) t;
  (void) status;
  tr_add(&s->tr, 'H');
  return uva_lock_release(s->lk);
}

Test(sync, lock_ready_task_cannot_steal_handed_off_lock, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  struct steal s;
  struct waiter w;
  uva_task_t *r, *h;
  int locked = 1;
  memset(&s, 0, sizeof s);
  UVT_OK(uva_lock_new(&s.lk, loop));
  UVT_OK(uva_lock_try_acquire(s.lk));
  waiter_init(&w, 'W', OP_LOCK, s.lk, &s.tr);
  w.release = 1;
  spawn_waiter(loop, &w);
  UVT_OK(uva_task_spawn(&r, loop, step_steal_ready, &s, NULL));
  UVT_OK(uva_task_spawn(&h, loop, step_steal_releaser, &s, NULL));
  RUN_IDLE(loop);
  /* Pass 1: W registers, R yields, H releases (hand-off to W).
   * Pass 2: R (ready first) tries and fails, then W completes. */
  TR_EQ(&s.tr, "RHrW");
  UVT_EQ(s.r_try_rc, UVA_EBUSY);
  cr_assert_eq(s.r_locked, 1);
  cr_assert_eq(w.first_rc, UVA_EAGAIN);
  cr_assert_eq(w.rc, 0);
  cr_assert_eq(w.runs, 2);
  cr_assert_eq(task_rc(h), 0);
  UVT_OK(uva_lock_locked(&locked, s.lk));
  cr_assert_eq(locked, 0);
  UVT_OK(uva_task_release(r));
  UVT_OK(uva_task_release(h));
  release_waiters(&w, 1);
  UVT_OK(uva_lock_close(s.lk));
  UVT_CLOSE_LOOP(loop);
}

/* ======================================================================== */
/* Semaphore                                                                */
/* ======================================================================== */

Test(sync, sem_counting, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  uva_sem_t *sm = NULL;
  struct waiter w;
  int64_t v = -1;
  UVT_OK(uva_sem_new(&sm, loop, 2, 0));
  cr_assert_not_null(sm);
  UVT_OK(uva_sem_value(&v, sm));
  cr_assert_eq(v, 2);
  UVT_OK(uva_sem_try_acquire(sm));
  UVT_OK(uva_sem_try_acquire(sm));
  UVT_EQ(uva_sem_try_acquire(sm), UVA_EBUSY);
  UVT_OK(uva_sem_value(&v, sm));
  cr_assert_eq(v, 0);
  for (int i = 0; i < 3; i++)
    UVT_OK(uva_sem_release(sm)); /* unbounded: above the start value */
  UVT_OK(uva_sem_value(&v, sm));
  cr_assert_eq(v, 3);
  waiter_init(&w, 'a', OP_SEM, sm, NULL);
  spawn_waiter(loop, &w);
  RUN_IDLE(loop);
  cr_assert_eq(w.runs, 1);
  cr_assert_eq(w.first_rc, 0);
  UVT_OK(uva_sem_value(&v, sm));
  cr_assert_eq(v, 2);
  release_waiters(&w, 1);
  UVT_OK(uva_sem_close(sm));
  UVT_CLOSE_LOOP(loop);
}

Test(sync, sem_bounded_release_above_bound_overflows, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  uva_sem_t *sm, *s1;
  int64_t v = -1;
  UVT_OK(uva_sem_new(&sm, loop, 1, 2));
  UVT_OK(uva_sem_release(sm));
  UVT_OK(uva_sem_value(&v, sm));
  cr_assert_eq(v, 2);
  UVT_EQ(uva_sem_release(sm), UVA_EOVERFLOW);
  UVT_OK(uva_sem_value(&v, sm));
  cr_assert_eq(v, 2, "a failed release must not change the value");
  UVT_OK(uva_sem_try_acquire(sm));
  UVT_OK(uva_sem_release(sm));
  UVT_EQ(uva_sem_release(sm), UVA_EOVERFLOW);

  UVT_OK(uva_sem_new(&s1, loop, 0, 1));
  UVT_OK(uva_sem_release(s1));
  UVT_EQ(uva_sem_release(s1), UVA_EOVERFLOW);
  UVT_OK(uva_sem_value(&v, s1));
  cr_assert_eq(v, 1);
  UVT_OK(uva_sem_close(sm));
  UVT_OK(uva_sem_close(s1));
  UVT_CLOSE_LOOP(loop);
}

Test(sync, sem_new_invalid_args, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  uva_sem_t *sm = (uva_sem_t *) &sm, *ok = NULL;
  uva_sem_t *const sentinel = sm;
  UVT_EQ(uva_sem_new(&sm, loop, -1, 0), UVA_EINVAL);  /* value < 0 */
  UVT_EQ(uva_sem_new(&sm, loop, 3, 2), UVA_EINVAL);   /* value > bound */
  UVT_EQ(uva_sem_new(&sm, loop, 0, -1), UVA_EINVAL);  /* negative bound */
  UVT_EQ(uva_sem_new(&sm, loop, INT64_MIN, 0), UVA_EINVAL);
  UVT_EQ(uva_sem_new(NULL, loop, 1, 0), UVA_EINVAL);
  UVT_EQ(uva_sem_new(&sm, NULL, 1, 0), UVA_EINVAL);
  cr_assert_eq(sm, sentinel, "*out written on error");
  /* Edge values that are valid. */
  UVT_OK(uva_sem_new(&ok, loop, 2, 2));
  UVT_OK(uva_sem_close(ok));
  UVT_OK(uva_sem_new(&ok, loop, 0, 0));
  UVT_OK(uva_sem_close(ok));
  UVT_OK(uva_sem_new(&ok, loop, INT64_MAX, 0));
  UVT_OK(uva_sem_close(ok));
  UVT_CLOSE_LOOP(loop); /* nothing was created by the failed calls */
}

Test(sync, sem_waiters_served_in_fifo_order, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  uva_sem_t *sm;
  struct waiter w[4];
  struct trace tr = {{0}, 0};
  const char *ids = "bdac";
  int64_t v = -1;
  UVT_OK(uva_sem_new(&sm, loop, 0, 0));
  for (int i = 0; i < 4; i++) {
    waiter_init(&w[i], ids[i], OP_SEM, sm, &tr);
    w[i].release = 1; /* each passes its permit on */
    spawn_waiter(loop, &w[i]);
  }
  pass(loop);
  for (int i = 0; i < 4; i++)
    cr_assert_eq(w[i].first_rc, UVA_EAGAIN);
  UVT_OK(uva_sem_release(sm));
  UVT_OK(uva_sem_release(sm));
  UVT_OK(uva_sem_value(&v, sm));
  cr_assert_eq(v, 0, "permits go straight to waiters, not to the count");
  RUN_IDLE(loop);
  TR_EQ(&tr, "bdac");
  UVT_OK(uva_sem_value(&v, sm));
  cr_assert_eq(v, 2);
  release_waiters(w, 4);
  UVT_OK(uva_sem_close(sm));
  UVT_CLOSE_LOOP(loop);
}

/* ======================================================================== */
/* Queue                                                                    */
/* ======================================================================== */

static int items[64]; /* item i is &items[i] */
#define ITEM(i) ((void *) &items[(i)])

Test(sync, queue_maxsize_0_is_unbounded, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  uva_queue_t *q = NULL;
  static int many[5000];
  size_t size = 1;
  int full = -1, empty = -1;
  void *out = NULL;
  struct waiter w;
  UVT_OK(uva_queue_new(&q, loop, 0, NULL));
  cr_assert_not_null(q);
  for (int i = 0; i < 5000; i++)
    UVT_OK(uva_queue_put_nowait(q, &many[i]));
  UVT_OK(uva_queue_size(&size, q));
  cr_assert_eq(size, 5000);
  UVT_OK(uva_queue_full(&full, q));
  cr_assert_eq(full, 0, "an unbounded queue is never full");
  /* A task's put completes at once too. */
  waiter_init(&w, 'p', OP_PUT, q, NULL);
  w.item = ITEM(0);
  spawn_waiter(loop, &w);
  RUN_IDLE(loop);
  cr_assert_eq(w.runs, 1);
  cr_assert_eq(w.first_rc, 0);
  for (int i = 0; i < 5000; i++) {
    UVT_OK(uva_queue_get_nowait(&out, q));
    cr_assert_eq(out, &many[i], "item %d out of order", i);
  }
  UVT_OK(uva_queue_get_nowait(&out, q));
  cr_assert_eq(out, ITEM(0));
  UVT_OK(uva_queue_empty(&empty, q));
  cr_assert_eq(empty, 1);
  UVT_EQ(uva_queue_get_nowait(&out, q), UVA_EQUEUEEMPTY);
  release_waiters(&w, 1);
  UVT_OK(uva_queue_close(q));
  UVT_CLOSE_LOOP(loop);
}

Test(sync, queue_getter_parks_without_polling_and_runs_twice, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  uva_queue_t *q;
  struct waiter g, p;
  size_t size = 9;
  UVT_OK(uva_queue_new(&q, loop, 0, NULL));
  waiter_init(&g, 'g', OP_GET, q, NULL);
  spawn_waiter(loop, &g);
  for (int i = 0; i < 10; i++)
    pass(loop);
  cr_assert_eq(g.runs, 1, "a parked getter must not be polled");
  cr_assert_eq(g.first_rc, UVA_EAGAIN);
  waiter_init(&p, 'p', OP_PUT, q, NULL);
  p.item = ITEM(7);
  spawn_waiter(loop, &p);
  pass(loop);
  cr_assert_eq(p.runs, 1);
  cr_assert_eq(p.first_rc, 0);
  UVT_OK(uva_queue_size(&size, q));
  cr_assert_eq(size, 0, "the item went straight to the waiting getter");
  RUN_IDLE(loop);
  cr_assert_eq(g.runs, 2, "getter: the run that registers, the one after "
                          "the put (got %d)", g.runs);
  cr_assert_eq(g.rc, 0);
  cr_assert_eq(g.item, ITEM(7));
  release_waiters(&g, 1);
  release_waiters(&p, 1);
  UVT_OK(uva_queue_close(q));
  UVT_CLOSE_LOOP(loop);
}

Test(sync, queue_nowait_variants_size_empty_full, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  uva_queue_t *q;
  size_t size = 9;
  int full = -1, empty = -1;
  void *out = NULL;
  UVT_OK(uva_queue_new(&q, loop, 2, NULL));
  UVT_OK(uva_queue_size(&size, q));
  UVT_OK(uva_queue_empty(&empty, q));
  UVT_OK(uva_queue_full(&full, q));
  cr_assert(size == 0 && empty == 1 && full == 0);
  UVT_EQ(uva_queue_get_nowait(&out, q), UVA_EQUEUEEMPTY);
  UVT_OK(uva_queue_put_nowait(q, ITEM(1)));
  UVT_OK(uva_queue_size(&size, q));
  UVT_OK(uva_queue_empty(&empty, q));
  UVT_OK(uva_queue_full(&full, q));
  cr_assert(size == 1 && empty == 0 && full == 0);
  UVT_OK(uva_queue_put_nowait(q, ITEM(2)));
  UVT_OK(uva_queue_full(&full, q));
  cr_assert_eq(full, 1);
  UVT_EQ(uva_queue_put_nowait(q, ITEM(3)), UVA_EQUEUEFULL);
  UVT_OK(uva_queue_size(&size, q));
  cr_assert_eq(size, 2, "a refused put must not add the item");
  UVT_OK(uva_queue_get_nowait(&out, q));
  cr_assert_eq(out, ITEM(1));
  UVT_OK(uva_queue_full(&full, q));
  cr_assert_eq(full, 0);
  UVT_OK(uva_queue_get_nowait(&out, q));
  cr_assert_eq(out, ITEM(2));
  out = ITEM(60);
  UVT_EQ(uva_queue_get_nowait(&out, q), UVA_EQUEUEEMPTY);
  UVT_OK(uva_queue_size(&size, q));
  UVT_OK(uva_queue_empty(&empty, q));
  cr_assert(size == 0 && empty == 1);
  UVT_OK(uva_queue_close(q));
  UVT_CLOSE_LOOP(loop);
}

Test(sync, queue_fifo_of_items_and_waiting_getters, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  uva_queue_t *q;
  struct waiter g[3];
  struct trace tr = {{0}, 0};
  const char *ids = "zxy";
  UVT_OK(uva_queue_new(&q, loop, 0, NULL));
  for (int i = 0; i < 3; i++) {
    waiter_init(&g[i], ids[i], OP_GET, q, &tr);
    spawn_waiter(loop, &g[i]);
  }
  pass(loop);
  for (int i = 0; i < 3; i++)
    cr_assert_eq(g[i].first_rc, UVA_EAGAIN);
  UVT_OK(uva_queue_put_nowait(q, ITEM(1)));
  UVT_OK(uva_queue_put_nowait(q, ITEM(2)));
  UVT_OK(uva_queue_put_nowait(q, ITEM(3)));
  UVT_OK(uva_queue_put_nowait(q, ITEM(4))); /* nobody waits: queued */
  RUN_IDLE(loop);
  TR_EQ(&tr, "zxy");
  for (int i = 0; i < 3; i++) {
    cr_assert_eq(g[i].rc, 0);
    cr_assert_eq(g[i].item, ITEM(i + 1), "getter %c got item %d", ids[i],
                 (int) ((int *) g[i].item - items));
  }
  void *out = NULL;
  UVT_OK(uva_queue_get_nowait(&out, q));
  cr_assert_eq(out, ITEM(4));
  release_waiters(g, 3);
  UVT_OK(uva_queue_close(q));
  UVT_CLOSE_LOOP(loop);
}

/* A consumer task that gets `want` items in a loop, recording them. */
struct consumer {
  uva_queue_t *q;
  void *got[64];
  int n, want, runs;
  int rc;
};

static int step_consumer(uva_task_t *t, int status, void *d) {
  struct consumer *c = (struct consumer *) d;
  c->runs++;
  if (status != 0)
    return status;
  while (c->n < c->want) {
    void *item = NULL;
    int rc = uva_queue_get(&item, c->q, t);
    c->rc = rc;
    if (rc == UVA_EAGAIN)
      return UVA_TASK_PENDING;
    if (rc != 0)
      return rc;
    c->got[c->n++] = item;
  }
  return 0;
}

Test(sync, queue_fifo_of_waiting_putters, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  uva_queue_t *q;
  struct waiter p[3];
  struct consumer c;
  uva_task_t *ct;
  int full = 0;
  const char *ids = "qrp";
  UVT_OK(uva_queue_new(&q, loop, 1, NULL));
  UVT_OK(uva_queue_put_nowait(q, ITEM(0)));
  for (int i = 0; i < 3; i++) {
    waiter_init(&p[i], ids[i], OP_PUT, q, NULL);
    p[i].item = ITEM(i + 1);
    spawn_waiter(loop, &p[i]);
  }
  pass(loop);
  for (int i = 0; i < 3; i++)
    cr_assert_eq(p[i].first_rc, UVA_EAGAIN);
  UVT_OK(uva_queue_full(&full, q));
  cr_assert_eq(full, 1);
  /* Putters wait: a put_nowait may not jump the line. */
  UVT_EQ(uva_queue_put_nowait(q, ITEM(9)), UVA_EQUEUEFULL);
  memset(&c, 0, sizeof c);
  c.q = q;
  c.want = 4;
  UVT_OK(uva_task_spawn(&ct, loop, step_consumer, &c, NULL));
  int idle = run_idle(loop, 200);
  cr_assert_eq(c.n, 4, "consumer got %d of 4 items (last rc %d %s) and "
               "%d of 3 putters completed: parked with an item in the queue "
               "(lost wake-up)", c.n, c.rc, uva_err_name(c.rc),
               p[0].got + p[1].got + p[2].got);
  for (int i = 0; i < 4; i++)
    cr_assert_eq(c.got[i], ITEM(i), "item %d: got item %d", i,
                 (int) ((int *) c.got[i] - items));
  for (int i = 0; i < 3; i++) {
    cr_assert_eq(p[i].rc, 0);
    cr_assert_eq(p[i].runs, 2, "putter %c ran %d times", ids[i], p[i].runs);
  }
  cr_assert(idle);
  UVT_OK(uva_task_release(ct));
  release_waiters(p, 3);
  UVT_OK(uva_queue_close(q));
  UVT_CLOSE_LOOP(loop);
}

/* The benchmark's pattern: one producer, one consumer, maxsize 1. */
struct producer {
  uva_queue_t *q;
  int i, n, runs;
};

static int step_producer(uva_task_t *t, int status, void *d) {
  struct producer *p = (struct producer *) d;
  p->runs++;
  if (status != 0)
    return status;
  while (p->i < p->n) {
    int rc = uva_queue_put(p->q, t, ITEM(p->i));
    if (rc == UVA_EAGAIN)
      return UVA_TASK_PENDING;
    if (rc != 0)
      return rc;
    p->i++;
  }
  return 0;
}

Test(sync, queue_producer_consumer_maxsize_1_keeps_order, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  uva_queue_t *q;
  struct producer p;
  struct consumer c;
  uva_task_t *pt, *ct;
  int idle;
  UVT_OK(uva_queue_new(&q, loop, 1, NULL));
  memset(&p, 0, sizeof p);
  memset(&c, 0, sizeof c);
  p.q = c.q = q;
  p.n = c.want = 64;
  UVT_OK(uva_task_spawn(&pt, loop, step_producer, &p, NULL));
  UVT_OK(uva_task_spawn(&ct, loop, step_consumer, &c, NULL));
  idle = run_idle(loop, 1000);
  cr_assert_eq(p.i, 64, "producer put %d of 64", p.i);
  for (int i = 0; i < c.n; i++)
    cr_assert_eq(c.got[i], ITEM(i), "item %d: got item %d", i,
                 (int) ((int *) c.got[i] - items));
  cr_assert_eq(c.n, 64, "consumer got %d of 64 items: parked with an item "
               "in the queue (lost wake-up)", c.n);
  cr_assert(idle);
  UVT_OK(uva_task_release(pt));
  UVT_OK(uva_task_release(ct));
  UVT_OK(uva_queue_close(q));
  UVT_CLOSE_LOOP(loop);
}

Test(sync, queue_full_putter_resumes_when_get_makes_room, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  uva_queue_t *q;
  struct waiter p;
  size_t size = 9;
  int full = 0;
  void *out = NULL;
  UVT_OK(uva_queue_new(&q, loop, 1, NULL));
  UVT_OK(uva_queue_put_nowait(q, ITEM(1)));
  waiter_init(&p, 'p', OP_PUT, q, NULL);
  p.item = ITEM(2);
  spawn_waiter(loop, &p);
  for (int i = 0; i < 5; i++)
    pass(loop);
  cr_assert_eq(p.runs, 1, "a parked putter must not be polled");
  cr_assert_eq(p.first_rc, UVA_EAGAIN);
  UVT_OK(uva_queue_size(&size, q));
  cr_assert_eq(size, 1, "a put that returned EAGAIN did not take the item");
  UVT_OK(uva_queue_get_nowait(&out, q));
  cr_assert_eq(out, ITEM(1));
  /* The freed slot is reserved for the woken putter. */
  UVT_OK(uva_queue_size(&size, q));
  cr_assert_eq(size, 0);
  UVT_OK(uva_queue_full(&full, q));
  cr_assert_eq(full, 1, "full counts the slot reserved for the putter");
  UVT_EQ(uva_queue_put_nowait(q, ITEM(3)), UVA_EQUEUEFULL);
  RUN_IDLE(loop);
  cr_assert_eq(p.runs, 2);
  cr_assert_eq(p.rc, 0);
  UVT_OK(uva_queue_size(&size, q));
  cr_assert_eq(size, 1);
  UVT_OK(uva_queue_get_nowait(&out, q));
  cr_assert_eq(out, ITEM(2));
  release_waiters(&p, 1);
  UVT_OK(uva_queue_close(q));
  UVT_CLOSE_LOOP(loop);
}

Test(sync, queue_close_wakes_getters_and_putters_with_eclosed,
     .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  uva_queue_t *qg, *qp;
  struct waiter g[2], p[2];
  int queued_item = 0;
  UVT_OK(uva_queue_new(&qg, loop, 0, uvt_count_dtor));
  UVT_OK(uva_queue_new(&qp, loop, 1, uvt_count_dtor));
  UVT_OK(uva_queue_put_nowait(qp, &queued_item));
  for (int i = 0; i < 2; i++) {
    waiter_init(&g[i], 'g', OP_GET, qg, NULL);
    waiter_init(&p[i], 'p', OP_PUT, qp, NULL);
    p[i].item = &queued_item; /* never taken: must not reach the dtor */
    spawn_waiter(loop, &g[i]);
    spawn_waiter(loop, &p[i]);
  }
  pass(loop);
  for (int i = 0; i < 2; i++) {
    cr_assert_eq(g[i].first_rc, UVA_EAGAIN);
    cr_assert_eq(p[i].first_rc, UVA_EAGAIN);
  }
  UVT_OK(uva_queue_close(qg));
  UVT_OK(uva_queue_close(qp));
  cr_assert_eq(queued_item, 0,
               "the queue's memory is still referenced by its waiters");
  RUN_IDLE(loop);
  for (int i = 0; i < 2; i++) {
    cr_assert_eq(g[i].runs, 2);
    cr_assert_eq(p[i].runs, 2);
    UVT_EQ(g[i].rc, UVA_ECLOSED);
    UVT_EQ(p[i].rc, UVA_ECLOSED);
  }
  cr_assert_eq(queued_item, 1, "the queued item went to item_dtor %d times",
               queued_item);
  release_waiters(g, 2);
  release_waiters(p, 2);
  UVT_CLOSE_LOOP(loop);
  cr_assert_eq(queued_item, 1);
}

Test(sync, queue_items_left_go_to_item_dtor_exactly_once, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  uva_queue_t *q, *qn;
  int cnt[5] = {0, 0, 0, 0, 0};
  void *out = NULL;
  UVT_OK(uva_queue_new(&q, loop, 0, uvt_count_dtor));
  for (int i = 0; i < 5; i++)
    UVT_OK(uva_queue_put_nowait(q, &cnt[i]));
  UVT_OK(uva_queue_get_nowait(&out, q)); /* taken: the caller owns it */
  cr_assert_eq(out, &cnt[0]);
  UVT_OK(uva_queue_close(q)); /* no waiter: memory freed now */
  cr_assert_eq(cnt[0], 0, "an item taken by get must not be destroyed");
  for (int i = 1; i < 5; i++)
    cr_assert_eq(cnt[i], 1, "item %d destroyed %d times", i, cnt[i]);
  /* item_dtor may be NULL. */
  UVT_OK(uva_queue_new(&qn, loop, 0, NULL));
  UVT_OK(uva_queue_put_nowait(qn, ITEM(1)));
  UVT_OK(uva_queue_close(qn));
  UVT_CLOSE_LOOP(loop);
  for (int i = 1; i < 5; i++)
    cr_assert_eq(cnt[i], 1);
}

/* ======================================================================== */
/* Thread-safe flag                                                         */
/* ======================================================================== */

/* Waits `waits` times (each must complete), then optionally registers once
 * more and finishes while still registered. */
struct flagw {
  uva_flag_t *f;
  int waits, done_waits, runs;
  int last_rc;
  int end_registered; /* finish right after one more EAGAIN */
  int rcs[16];
  int ncalls;
};

static int step_flagw(uva_task_t *t, int status, void *d) {
  struct flagw *w = (struct flagw *) d;
  w->runs++;
  if (status != 0)
    return status;
  for (;;) {
    int rc = uva_flag_wait(w->f, t);
    if (w->ncalls < 16)
      w->rcs[w->ncalls++] = rc;
    w->last_rc = rc;
    if (rc == UVA_EAGAIN)
      return w->done_waits == w->waits && w->end_registered ? 0
                                                           : UVA_TASK_PENDING;
    if (rc != 0)
      return rc;
    if (++w->done_waits == w->waits && !w->end_registered)
      return 0;
  }
}

Test(sync, flag_set_before_wait_returns_at_once_and_clears, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  uva_flag_t *f = NULL;
  struct flagw w;
  uva_task_t *t;
  memset(&w, 0, sizeof w);
  UVT_OK(uva_flag_new(&f, loop));
  cr_assert_not_null(f);
  UVT_OK(uva_flag_set(f));
  w.f = f;
  w.waits = 2;
  UVT_OK(uva_task_spawn(&t, loop, step_flagw, &w, NULL));
  pass(loop);
  pass(loop);
  /* Run 1: wait -> 0 at once (and clears), wait again -> EAGAIN. */
  cr_assert_eq(w.runs, 1);
  cr_assert_eq(w.ncalls, 2);
  UVT_EQ(w.rcs[0], 0);
  UVT_EQ(w.rcs[1], UVA_EAGAIN);
  UVT_OK(uva_flag_set(f));
  RUN_IDLE(loop);
  cr_assert_eq(w.runs, 2);
  cr_assert_eq(w.done_waits, 2);
  cr_assert_eq(task_rc(t), 0);
  UVT_OK(uva_task_release(t));
  UVT_OK(uva_flag_close(f));
  UVT_CLOSE_LOOP(loop);
}

Test(sync, flag_sets_coalesce, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  uva_flag_t *f;
  struct flagw w, w2;
  uva_task_t *t, *t2;
  memset(&w, 0, sizeof w);
  memset(&w2, 0, sizeof w2);
  UVT_OK(uva_flag_new(&f, loop));
  for (int i = 0; i < 3; i++)
    UVT_OK(uva_flag_set(f));
  w.f = f;
  w.waits = 2;
  UVT_OK(uva_task_spawn(&t, loop, step_flagw, &w, NULL));
  for (int i = 0; i < 5; i++)
    pass(loop);
  /* Three sets, one completed wait; the second wait parks. */
  cr_assert_eq(w.runs, 1, "three sets before the wait count as one");
  cr_assert_eq(w.done_waits, 1);
  UVT_EQ(w.last_rc, UVA_EAGAIN);
  /* Sets while it waits coalesce too: one wake-up, one completed wait. */
  UVT_OK(uva_flag_set(f));
  UVT_OK(uva_flag_set(f));
  RUN_IDLE(loop);
  cr_assert_eq(w.runs, 2);
  cr_assert_eq(w.done_waits, 2);
  cr_assert_eq(task_rc(t), 0);
  /* Nothing is left over: a new waiter finds the flag clear. */
  w2.f = f;
  w2.waits = 0;
  w2.end_registered = 1;
  UVT_OK(uva_task_spawn(&t2, loop, step_flagw, &w2, NULL));
  RUN_IDLE(loop);
  UVT_EQ(w2.rcs[0], UVA_EAGAIN);
  UVT_OK(uva_task_release(t));
  UVT_OK(uva_task_release(t2));
  UVT_OK(uva_flag_close(f));
  UVT_CLOSE_LOOP(loop);
}

Test(sync, flag_second_waiting_task_gets_ebusy, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  uva_flag_t *f;
  struct waiter a, b;
  UVT_OK(uva_flag_new(&f, loop));
  waiter_init(&a, 'a', OP_FLAG, f, NULL);
  waiter_init(&b, 'b', OP_FLAG, f, NULL);
  spawn_waiter(loop, &a);
  spawn_waiter(loop, &b);
  pass(loop);
  UVT_EQ(a.first_rc, UVA_EAGAIN);
  UVT_EQ(b.first_rc, UVA_EBUSY);
  cr_assert_eq(task_rc(b.task), UVA_EBUSY);
  UVT_OK(uva_flag_set(f));
  RUN_IDLE(loop);
  cr_assert_eq(a.runs, 2);
  UVT_EQ(a.rc, 0);
  release_waiters(&a, 1);
  release_waiters(&b, 1);
  UVT_OK(uva_flag_close(f));
  UVT_CLOSE_LOOP(loop);
}

/* A set made while a task waits belongs to that task: a second task that
 * calls wait before the set reached the waiter must not take it. */
static int step_set_flag(uva_task_t *t, int status, void *d) {
  (void) t;
  (void) status;
  return uva_flag_set((uva_flag_t *) d);
}

Test(sync, flag_set_while_task_waits_is_not_taken_by_another_task,
     .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  uva_flag_t *f;
  struct waiter a, b;
  uva_task_t *s;
  UVT_OK(uva_flag_new(&f, loop));
  waiter_init(&a, 'a', OP_FLAG, f, NULL);
  spawn_waiter(loop, &a);
  pass(loop);
  UVT_EQ(a.first_rc, UVA_EAGAIN);
  /* In one pass: S sets the flag (loop thread), then B calls wait. */
  UVT_OK(uva_task_spawn(&s, loop, step_set_flag, f, NULL));
  waiter_init(&b, 'b', OP_FLAG, f, NULL);
  spawn_waiter(loop, &b);
  pass(loop);
  UVT_EQ(b.first_rc, UVA_EBUSY);
  if (b.first_rc == UVA_EAGAIN) /* keep the cleanup below from hanging */
    UVT_OK(uva_flag_set(f));
  if (a.rc == UVA_EAGAIN)
    UVT_OK(uva_flag_set(f));
  RUN_IDLE(loop);
  UVT_EQ(a.rc, 0);
  UVT_OK(uva_task_release(s));
  release_waiters(&a, 1);
  release_waiters(&b, 1);
  UVT_OK(uva_flag_close(f));
  UVT_CLOSE_LOOP(loop);
}

static void *thread_set_flag_later(void *d) {
  uvt_sleep_ms(20);
  if (uva_flag_set((uva_flag_t *) d) != 0)
    abort();
  return NULL;
}

Test(sync, flag_set_from_another_thread_wakes_parked_waiter, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  uva_flag_t *f;
  struct waiter a;
  pthread_t th;
  double t0;
  UVT_OK(uva_flag_new(&f, loop));
  waiter_init(&a, 'a', OP_FLAG, f, NULL);
  spawn_waiter(loop, &a);
  cr_assert_eq(pthread_create(&th, NULL, thread_set_flag_later, f), 0);
  t0 = uvt_ms();
  UVT_OK(uva_loop_run(loop, UVA_RUN_DEFAULT)); /* blocks until the set */
  cr_assert_eq(pthread_join(th, NULL), 0);
  cr_assert_eq(a.runs, 2, "parked, then woken once (ran %d times)", a.runs);
  UVT_EQ(a.first_rc, UVA_EAGAIN);
  UVT_EQ(a.rc, 0);
  cr_assert_lt(uvt_ms() - t0, 2000.0 * uvt_mult());
  release_waiters(&a, 1);
  UVT_OK(uva_flag_close(f));
  UVT_CLOSE_LOOP(loop);
}

/* ======================================================================== */
/* Cancellation leaves no trace                                             */
/* ======================================================================== */

Test(sync, cancel_event_waiter, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  uva_event_t *ev;
  struct waiter w[3];
  struct trace tr = {{0}, 0};
  UVT_OK(uva_event_new(&ev, loop));
  for (int i = 0; i < 3; i++) {
    waiter_init(&w[i], (char) ('a' + i), OP_EVENT, ev, &tr);
    spawn_waiter(loop, &w[i]);
  }
  pass(loop);
  UVT_OK(uva_task_cancel(w[1].task)); /* b, while waiting */
  pass(loop);
  cr_assert_eq(w[1].runs, 2);
  cr_assert_eq(w[1].cancelled, 1);
  cr_assert_eq(task_rc(w[1].task), UVA_ECANCELED);
  UVT_OK(uva_event_set(ev));
  RUN_IDLE(loop);
  TR_EQ(&tr, "ac");
  cr_assert_eq(w[1].got, 0);
  release_waiters(w, 3);
  UVT_OK(uva_event_close(ev));
  UVT_CLOSE_LOOP(loop);
}

Test(sync, cancel_event_waiter_after_set_before_it_ran, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  uva_event_t *ev;
  struct waiter w[3];
  struct trace tr = {{0}, 0};
  int set = 0;
  UVT_OK(uva_event_new(&ev, loop));
  for (int i = 0; i < 3; i++) {
    waiter_init(&w[i], (char) ('a' + i), OP_EVENT, ev, &tr);
    spawn_waiter(loop, &w[i]);
  }
  pass(loop);
  UVT_OK(uva_event_set(ev));           /* wakes all three */
  UVT_OK(uva_task_cancel(w[0].task)); /* a: woken, not yet run */
  RUN_IDLE(loop);
  TR_EQ(&tr, "bc");
  cr_assert_eq(w[0].cancelled, 1);
  cr_assert_eq(w[0].got, 0);
  cr_assert_eq(task_rc(w[0].task), UVA_ECANCELED);
  UVT_OK(uva_event_is_set(&set, ev));
  cr_assert_eq(set, 1, "a cancelled waiter does not consume a set");
  release_waiters(w, 3);
  UVT_OK(uva_event_close(ev));
  UVT_CLOSE_LOOP(loop);
}

Test(sync, cancel_lock_waiter, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  uva_lock_t *lk;
  struct waiter w[2];
  struct trace tr = {{0}, 0};
  int locked = 0;
  UVT_OK(uva_lock_new(&lk, loop));
  UVT_OK(uva_lock_try_acquire(lk)); /* A (the test) holds it */
  waiter_init(&w[0], 'B', OP_LOCK, lk, &tr);
  waiter_init(&w[1], 'C', OP_LOCK, lk, &tr);
  w[1].release = 1;
  spawn_waiter(loop, &w[0]);
  spawn_waiter(loop, &w[1]);
  pass(loop);
  UVT_OK(uva_task_cancel(w[0].task));
  pass(loop); /* B resumes with ECANCELED and finishes */
  cr_assert_eq(w[0].cancelled, 1);
  UVT_OK(uva_lock_release(lk)); /* must go to C */
  RUN_IDLE(loop);
  TR_EQ(&tr, "C");
  cr_assert_eq(w[0].got, 0);
  cr_assert_eq(task_rc(w[0].task), UVA_ECANCELED);
  cr_assert_eq(w[1].rc, 0);
  UVT_OK(uva_lock_locked(&locked, lk));
  cr_assert_eq(locked, 0);
  release_waiters(w, 2);
  UVT_OK(uva_lock_close(lk));
  UVT_CLOSE_LOOP(loop);
}

Test(sync, cancel_lock_waiter_granted_before_it_ran, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  uva_lock_t *lk, *lk2;
  struct waiter w[3];
  struct trace tr = {{0}, 0};
  int locked = 1;
  UVT_OK(uva_lock_new(&lk, loop));
  UVT_OK(uva_lock_new(&lk2, loop));
  UVT_OK(uva_lock_try_acquire(lk));
  UVT_OK(uva_lock_try_acquire(lk2));
  waiter_init(&w[0], 'B', OP_LOCK, lk, &tr);
  waiter_init(&w[1], 'C', OP_LOCK, lk, &tr);
  waiter_init(&w[2], 'D', OP_LOCK, lk2, &tr); /* alone on lk2 */
  for (int i = 0; i < 3; i++)
    spawn_waiter(loop, &w[i]);
  pass(loop);
  /* Hand-off to B (and D), then cancel them before they ran. */
  UVT_OK(uva_lock_release(lk));
  UVT_OK(uva_lock_release(lk2));
  UVT_OK(uva_task_cancel(w[0].task));
  UVT_OK(uva_task_cancel(w[2].task));
  RUN_IDLE(loop);
  TR_EQ(&tr, "C");
  cr_assert_eq(w[0].cancelled, 1);
  cr_assert_eq(w[0].got, 0);
  cr_assert_eq(w[2].cancelled, 1);
  cr_assert_eq(w[1].rc, 0, "C: %d (%s)", w[1].rc, uva_err_name(w[1].rc));
  UVT_OK(uva_lock_locked(&locked, lk));
  cr_assert_eq(locked, 1, "C holds lk");
  UVT_OK(uva_lock_locked(&locked, lk2));
  cr_assert_eq(locked, 0, "nobody else waited: lk2 must be free again");
  UVT_OK(uva_lock_release(lk));
  release_waiters(w, 3);
  UVT_OK(uva_lock_close(lk));
  UVT_OK(uva_lock_close(lk2));
  UVT_CLOSE_LOOP(loop);
}

Test(sync, cancel_sem_waiter, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  uva_sem_t *sm;
  struct waiter w[2];
  struct trace tr = {{0}, 0};
  int64_t v = -1;
  UVT_OK(uva_sem_new(&sm, loop, 0, 0));
  waiter_init(&w[0], 'B', OP_SEM, sm, &tr);
  waiter_init(&w[1], 'C', OP_SEM, sm, &tr);
  spawn_waiter(loop, &w[0]);
  spawn_waiter(loop, &w[1]);
  pass(loop);
  UVT_OK(uva_task_cancel(w[0].task));
  pass(loop);
  cr_assert_eq(w[0].cancelled, 1);
  UVT_OK(uva_sem_release(sm));
  RUN_IDLE(loop);
  TR_EQ(&tr, "C");
  UVT_OK(uva_sem_value(&v, sm));
  cr_assert_eq(v, 0, "the one permit went to C");
  release_waiters(w, 2);
  UVT_OK(uva_sem_close(sm));
  UVT_CLOSE_LOOP(loop);
}

Test(sync, cancel_sem_waiter_granted_before_it_ran, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  uva_sem_t *sm, *s2;
  struct waiter w[3];
  struct trace tr = {{0}, 0};
  int64_t v = -1;
  UVT_OK(uva_sem_new(&sm, loop, 0, 0));
  UVT_OK(uva_sem_new(&s2, loop, 0, 0));
  waiter_init(&w[0], 'B', OP_SEM, sm, &tr);
  waiter_init(&w[1], 'C', OP_SEM, sm, &tr);
  waiter_init(&w[2], 'D', OP_SEM, s2, &tr);
  for (int i = 0; i < 3; i++)
    spawn_waiter(loop, &w[i]);
  pass(loop);
  UVT_OK(uva_sem_release(sm)); /* permit handed to B */
  UVT_OK(uva_sem_release(s2)); /* permit handed to D */
  UVT_OK(uva_task_cancel(w[0].task));
  UVT_OK(uva_task_cancel(w[2].task));
  RUN_IDLE(loop);
  TR_EQ(&tr, "C");
  cr_assert_eq(w[0].got, 0);
  cr_assert_eq(w[2].got, 0);
  UVT_OK(uva_sem_value(&v, sm));
  cr_assert_eq(v, 0, "C holds the only permit");
  UVT_OK(uva_sem_value(&v, s2));
  cr_assert_eq(v, 1, "D's permit came back");
  release_waiters(w, 3);
  UVT_OK(uva_sem_close(sm));
  UVT_OK(uva_sem_close(s2));
  UVT_CLOSE_LOOP(loop);
}

/* Bounded: a permit handed to a waiter that is then cancelled comes back,
 * and the value still never exceeds the bound. */
Test(sync, cancel_sem_granted_waiter_keeps_value_within_bound,
     .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  uva_sem_t *sm;
  struct waiter b;
  int64_t v = -1;
  int rc2;
  UVT_OK(uva_sem_new(&sm, loop, 0, 1));
  waiter_init(&b, 'B', OP_SEM, sm, NULL);
  spawn_waiter(loop, &b);
  pass(loop);
  UVT_OK(uva_sem_release(sm)); /* handed to B */
  rc2 = uva_sem_release(sm);   /* a second release: 0 or UVA_EOVERFLOW */
  cr_assert(rc2 == 0 || rc2 == UVA_EOVERFLOW, "second release: %d (%s)", rc2,
            uva_err_name(rc2));
  UVT_OK(uva_task_cancel(b.task));
  RUN_IDLE(loop);
  cr_assert_eq(b.got, 0);
  UVT_OK(uva_sem_value(&v, sm));
  cr_assert_leq(v, 1, "value %lld exceeds bound 1 (second release returned "
                "%s)", (long long) v, uva_err_name(rc2));
  release_waiters(&b, 1);
  UVT_OK(uva_sem_close(sm));
  UVT_CLOSE_LOOP(loop);
}

Test(sync, cancel_queue_getter, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  uva_queue_t *q;
  struct waiter g[2];
  size_t size = 9;
  UVT_OK(uva_queue_new(&q, loop, 0, NULL));
  waiter_init(&g[0], 'B', OP_GET, q, NULL);
  waiter_init(&g[1], 'C', OP_GET, q, NULL);
  spawn_waiter(loop, &g[0]);
  spawn_waiter(loop, &g[1]);
  pass(loop);
  UVT_OK(uva_task_cancel(g[0].task));
  pass(loop);
  cr_assert_eq(g[0].cancelled, 1);
  UVT_OK(uva_queue_put_nowait(q, ITEM(1)));
  RUN_IDLE(loop);
  cr_assert_eq(g[0].got, 0);
  cr_assert_eq(g[1].rc, 0);
  cr_assert_eq(g[1].item, ITEM(1));
  UVT_OK(uva_queue_size(&size, q));
  cr_assert_eq(size, 0);
  release_waiters(g, 2);
  UVT_OK(uva_queue_close(q));
  UVT_CLOSE_LOOP(loop);
}

Test(sync, cancel_queue_getter_handed_an_item_before_it_ran,
     .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  uva_queue_t *q, *q2;
  struct waiter g[3];
  size_t size = 9;
  void *out = NULL;
  UVT_OK(uva_queue_new(&q, loop, 0, NULL));
  UVT_OK(uva_queue_new(&q2, loop, 0, NULL));
  waiter_init(&g[0], 'B', OP_GET, q, NULL);
  waiter_init(&g[1], 'C', OP_GET, q, NULL);
  waiter_init(&g[2], 'D', OP_GET, q2, NULL); /* alone on q2 */
  for (int i = 0; i < 3; i++)
    spawn_waiter(loop, &g[i]);
  pass(loop);
  UVT_OK(uva_queue_put_nowait(q, ITEM(1)));  /* handed to B */
  UVT_OK(uva_queue_put_nowait(q2, ITEM(2))); /* handed to D */
  UVT_OK(uva_queue_put_nowait(q2, ITEM(3))); /* queued behind it */
  UVT_OK(uva_task_cancel(g[0].task));
  UVT_OK(uva_task_cancel(g[2].task));
  RUN_IDLE(loop);
  /* q: B's item goes to the next getter. */
  cr_assert_eq(g[0].got, 0);
  cr_assert_eq(g[1].rc, 0);
  cr_assert_eq(g[1].item, ITEM(1));
  /* q2: D's item goes back to the FRONT of the queue. */
  cr_assert_eq(g[2].got, 0);
  UVT_OK(uva_queue_size(&size, q2));
  cr_assert_eq(size, 2);
  UVT_OK(uva_queue_get_nowait(&out, q2));
  cr_assert_eq(out, ITEM(2), "the returned item must be first");
  UVT_OK(uva_queue_get_nowait(&out, q2));
  cr_assert_eq(out, ITEM(3));
  release_waiters(g, 3);
  UVT_OK(uva_queue_close(q));
  UVT_OK(uva_queue_close(q2));
  UVT_CLOSE_LOOP(loop);
}

Test(sync, cancel_queue_putter, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  uva_queue_t *q;
  struct waiter p[2];
  void *out = NULL;
  size_t size = 9;
  UVT_OK(uva_queue_new(&q, loop, 1, NULL));
  UVT_OK(uva_queue_put_nowait(q, ITEM(0)));
  waiter_init(&p[0], 'B', OP_PUT, q, NULL);
  waiter_init(&p[1], 'C', OP_PUT, q, NULL);
  p[0].item = ITEM(1);
  p[1].item = ITEM(2);
  spawn_waiter(loop, &p[0]);
  spawn_waiter(loop, &p[1]);
  pass(loop);
  UVT_OK(uva_task_cancel(p[0].task));
  pass(loop);
  cr_assert_eq(p[0].cancelled, 1);
  UVT_OK(uva_queue_get_nowait(&out, q));
  cr_assert_eq(out, ITEM(0));
  RUN_IDLE(loop);
  cr_assert_eq(p[0].got, 0);
  cr_assert_eq(p[1].rc, 0);
  UVT_OK(uva_queue_size(&size, q));
  cr_assert_eq(size, 1);
  UVT_OK(uva_queue_get_nowait(&out, q));
  cr_assert_eq(out, ITEM(2), "only C's item may be in the queue");
  release_waiters(p, 2);
  UVT_OK(uva_queue_close(q));
  UVT_CLOSE_LOOP(loop);
}

Test(sync, cancel_queue_putter_granted_a_slot_before_it_ran,
     .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  uva_queue_t *q, *q2;
  struct waiter p[3];
  void *out = NULL;
  size_t size = 9;
  int full = -1;
  UVT_OK(uva_queue_new(&q, loop, 1, NULL));
  UVT_OK(uva_queue_new(&q2, loop, 1, NULL));
  UVT_OK(uva_queue_put_nowait(q, ITEM(0)));
  UVT_OK(uva_queue_put_nowait(q2, ITEM(0)));
  waiter_init(&p[0], 'B', OP_PUT, q, NULL);
  waiter_init(&p[1], 'C', OP_PUT, q, NULL);
  waiter_init(&p[2], 'D', OP_PUT, q2, NULL); /* alone on q2 */
  for (int i = 0; i < 3; i++) {
    p[i].item = ITEM(i + 1);
    spawn_waiter(loop, &p[i]);
  }
  pass(loop);
  UVT_OK(uva_queue_get_nowait(&out, q));  /* slot reserved for B */
  UVT_OK(uva_queue_get_nowait(&out, q2)); /* slot reserved for D */
  UVT_OK(uva_task_cancel(p[0].task));
  UVT_OK(uva_task_cancel(p[2].task));
  RUN_IDLE(loop);
  cr_assert_eq(p[0].got, 0);
  cr_assert_eq(p[2].got, 0);
  cr_assert_eq(p[1].rc, 0, "C: %d (%s)", p[1].rc, uva_err_name(p[1].rc));
  UVT_OK(uva_queue_get_nowait(&out, q));
  cr_assert_eq(out, ITEM(2), "B's slot went to C");
  /* q2: the reserved slot is free again. */
  UVT_OK(uva_queue_size(&size, q2));
  cr_assert_eq(size, 0);
  UVT_OK(uva_queue_full(&full, q2));
  cr_assert_eq(full, 0, "the slot reserved for D was not given back");
  UVT_OK(uva_queue_put_nowait(q2, ITEM(9)));
  release_waiters(p, 3);
  UVT_OK(uva_queue_close(q));
  UVT_OK(uva_queue_close(q2));
  UVT_CLOSE_LOOP(loop);
}

Test(sync, cancel_flag_waiter, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  uva_flag_t *f;
  struct waiter a, b;
  UVT_OK(uva_flag_new(&f, loop));
  waiter_init(&a, 'a', OP_FLAG, f, NULL);
  spawn_waiter(loop, &a);
  pass(loop);
  UVT_OK(uva_task_cancel(a.task));
  pass(loop);
  cr_assert_eq(a.cancelled, 1);
  /* a's registration is gone: b may wait (not EBUSY) and gets the set. */
  waiter_init(&b, 'b', OP_FLAG, f, NULL);
  spawn_waiter(loop, &b);
  pass(loop);
  UVT_EQ(b.first_rc, UVA_EAGAIN);
  UVT_OK(uva_flag_set(f));
  RUN_IDLE(loop);
  UVT_EQ(b.rc, 0);
  cr_assert_eq(a.got, 0);
  release_waiters(&a, 1);
  release_waiters(&b, 1);
  UVT_OK(uva_flag_close(f));
  UVT_CLOSE_LOOP(loop);
}

/* K was made ready (by yielding) before the set reached A, so in the pass
 * where the set is handed to A, K runs first and cancels A. */
struct kcancel {
  uva_task_t *victim;
  int runs;
};

static int step_yield_then_cancel(uva_task_t *t, int status, void *d) {
  struct kcancel *k = (struct kcancel *) d;
  (void) t;
  (void) status;
  if (++k->runs == 1)
    return UVA_TASK_YIELD;
  return uva_task_cancel(k->victim);
}

Test(sync, cancel_flag_waiter_granted_before_it_ran, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  uva_flag_t *f;
  struct waiter a, b;
  struct kcancel k = {NULL, 0};
  uva_task_t *kt;
  UVT_OK(uva_flag_new(&f, loop));
  waiter_init(&a, 'a', OP_FLAG, f, NULL);
  spawn_waiter(loop, &a);
  k.victim = a.task;
  UVT_OK(uva_task_spawn(&kt, loop, step_yield_then_cancel, &k, NULL));
  pass(loop); /* a registers, K yields */
  UVT_OK(uva_flag_set(f));
  pass(loop); /* the set is handed to a; K runs first and cancels a */
  RUN_IDLE(loop);
  cr_assert_eq(k.runs, 2);
  cr_assert_eq(task_rc(kt), 0);
  cr_assert_eq(a.cancelled, 1);
  cr_assert_eq(a.got, 0);
  /* The set came back: a new waiter completes at once. */
  waiter_init(&b, 'b', OP_FLAG, f, NULL);
  spawn_waiter(loop, &b);
  RUN_IDLE(loop);
  cr_assert_eq(b.runs, 1);
  UVT_EQ(b.first_rc, 0);
  UVT_OK(uva_task_release(kt));
  release_waiters(&a, 1);
  release_waiters(&b, 1);
  UVT_OK(uva_flag_close(f));
  UVT_CLOSE_LOOP(loop);
}

/* A task that finishes while holding a grant it never took passes it on. */
Test(sync, task_finishing_with_untaken_grant_passes_it_on, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  uva_lock_t *lk;
  uva_sem_t *sm;
  uva_queue_t *q;
  struct waiter w[5];
  struct trace tr = {{0}, 0};
  int locked = 1;
  int64_t v = -1;
  size_t size = 9;
  UVT_OK(uva_lock_new(&lk, loop));
  UVT_OK(uva_sem_new(&sm, loop, 0, 0));
  UVT_OK(uva_queue_new(&q, loop, 0, NULL));
  UVT_OK(uva_lock_try_acquire(lk));
  waiter_init(&w[0], 'L', OP_LOCK, lk, &tr);
  waiter_init(&w[1], 'l', OP_LOCK, lk, &tr);
  waiter_init(&w[2], 'S', OP_SEM, sm, &tr); /* alone: permit goes back */
  waiter_init(&w[3], 'Q', OP_GET, q, &tr);
  waiter_init(&w[4], 'q', OP_GET, q, &tr);
  w[0].skip_take = w[2].skip_take = w[3].skip_take = 1;
  w[1].release = 1;
  for (int i = 0; i < 5; i++)
    spawn_waiter(loop, &w[i]);
  pass(loop);
  UVT_OK(uva_lock_release(lk));             /* to L, who drops it */
  UVT_OK(uva_sem_release(sm));              /* to S, who drops it */
  UVT_OK(uva_queue_put_nowait(q, ITEM(1))); /* to Q, who drops it */
  RUN_IDLE(loop);
  for (int i = 0; i < 5; i++) {
    cr_assert_eq(w[i].runs, 2);
    cr_assert_eq(task_rc(w[i].task), 0);
  }
  TR_EQ(&tr, "lq");
  cr_assert_eq(w[4].item, ITEM(1));
  UVT_OK(uva_lock_locked(&locked, lk));
  cr_assert_eq(locked, 0);
  UVT_OK(uva_sem_value(&v, sm));
  cr_assert_eq(v, 1, "S's permit came back");
  UVT_OK(uva_queue_size(&size, q));
  cr_assert_eq(size, 0);
  release_waiters(w, 5);
  UVT_OK(uva_lock_close(lk));
  UVT_OK(uva_sem_close(sm));
  UVT_OK(uva_queue_close(q));
  UVT_CLOSE_LOOP(loop);
}

/* Claims of cancelled getters lapse without disturbing the queue: items
 * still leave in the order they were put (FIFO). */
Test(sync, queue_items_given_back_keep_fifo_order, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  uva_queue_t *q;
  struct waiter g[3];
  void *out[3] = {NULL, NULL, NULL};
  size_t size = 9;
  UVT_OK(uva_queue_new(&q, loop, 0, NULL));
  for (int i = 0; i < 3; i++) {
    waiter_init(&g[i], (char) ('A' + i), OP_GET, q, NULL);
    spawn_waiter(loop, &g[i]);
  }
  pass(loop);
  UVT_OK(uva_queue_put_nowait(q, ITEM(1))); /* claimed by A */
  UVT_OK(uva_queue_put_nowait(q, ITEM(2))); /* claimed by B */
  UVT_OK(uva_queue_put_nowait(q, ITEM(3))); /* claimed by C */
  UVT_OK(uva_queue_put_nowait(q, ITEM(4))); /* free */
  UVT_OK(uva_task_cancel(g[0].task));
  UVT_OK(uva_task_cancel(g[2].task));
  RUN_IDLE(loop);
  /* A's and C's claims lapse; B, the only getter left, takes the front. */
  cr_assert_eq(g[1].item, ITEM(1));
  UVT_OK(uva_queue_size(&size, q));
  cr_assert_eq(size, 3);
  for (int i = 0; i < 3; i++)
    UVT_OK(uva_queue_get_nowait(&out[i], q));
  cr_assert(out[0] == ITEM(2) && out[1] == ITEM(3) && out[2] == ITEM(4),
            "queue order after give-backs: %d %d %d, want 2 3 4",
            (int) ((int *) out[0] - items), (int) ((int *) out[1] - items),
            (int) ((int *) out[2] - items));
  release_waiters(g, 3);
  UVT_OK(uva_queue_close(q));
  UVT_CLOSE_LOOP(loop);
}

/* ======================================================================== */
/* Fairness and starvation                                                  */
/* ======================================================================== */

static int step_set_event(uva_task_t *t, int status, void *d) {
  (void) t;
  (void) status;
  return uva_event_set((uva_event_t *) d);
}

Test(sync, woken_task_runs_after_tasks_already_ready, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  uva_event_t *ev;
  struct trace tr = {{0}, 0};
  struct waiter z;
  struct yielder x = {'X', 'x', &tr, 0}, y = {'Y', 'y', &tr, 0};
  uva_task_t *xt, *yt, *st;
  UVT_OK(uva_event_new(&ev, loop));
  waiter_init(&z, 'z', OP_EVENT, ev, &tr);
  spawn_waiter(loop, &z);
  UVT_OK(uva_task_spawn(&xt, loop, step_yielder, &x, NULL));
  UVT_OK(uva_task_spawn(&yt, loop, step_yielder, &y, NULL));
  UVT_OK(uva_task_spawn(&st, loop, step_set_event, ev, NULL));
  /* Pass 1: z waits; X and Y yield (ready for pass 2); the setter wakes z.
   * Pass 2: x, y, then z. */
  pass(loop);
  TR_EQ(&tr, "XY");
  pass(loop);
  TR_EQ(&tr, "XYxyz");
  RUN_IDLE(loop);
  cr_assert_eq(z.runs, 2);
  cr_assert_eq(z.rc, 0);
  UVT_OK(uva_task_release(xt));
  UVT_OK(uva_task_release(yt));
  UVT_OK(uva_task_release(st));
  release_waiters(&z, 1);
  UVT_OK(uva_event_close(ev));
  UVT_CLOSE_LOOP(loop);
}

#define RING 50

struct ring {
  uva_event_t *ev[RING];
  int stop;
  long steps;
};

struct ring_task {
  struct ring *r;
  int i;
  int rc;
};

/* Wait for my event; when it fires, clear it and set two others. The ring
 * never runs dry: there is always a ready task. */
static int step_ring(uva_task_t *t, int status, void *d) {
  struct ring_task *rt = (struct ring_task *) d;
  struct ring *r = rt->r;
  if (status != 0)
    return rt->rc = status;
  for (;;) {
    if (r->stop)
      return rt->rc = 0;
    int rc = uva_event_wait(r->ev[rt->i], t);
    if (rc == UVA_EAGAIN)
      return UVA_TASK_PENDING;
    if (rc != 0)
      return rt->rc = rc;
    r->steps++;
    uva_event_clear(r->ev[rt->i]);
    uva_event_set(r->ev[(rt->i + 1) % RING]);
    uva_event_set(r->ev[(rt->i + 7) % RING]);
  }
}

struct sleeper {
  struct ring *r;
  int rounds, runs;
  double t0, worst_ms;
  long steps_at_start;
};

static int step_sleeper(uva_task_t *t, int status, void *d) {
  struct sleeper *s = (struct sleeper *) d;
  (void) status;
  double now = uvt_ms();
  if (s->runs++ > 0) {
    double late = now - s->t0 - 20.0;
    if (late > s->worst_ms)
      s->worst_ms = late;
  } else {
    s->steps_at_start = s->r->steps;
  }
  if (s->runs > s->rounds) {
    s->r->stop = 1;
    for (int i = 0; i < RING; i++)
      uva_event_set(s->r->ev[i]); /* wake the parked ones so they stop */
    return 0;
  }
  s->t0 = uvt_ms();
  int rc = uva_task_sleep(t, 20);
  return rc != 0 ? rc : UVA_TASK_PENDING;
}

Test(sync, busy_event_tasks_do_not_starve_a_sleeping_task, .timeout = 30) {
  uva_loop_t *loop = uvt_loop_new();
  static struct ring r;
  static struct ring_task rt[RING];
  uva_task_t *tasks[RING], *st;
  struct sleeper s;
  memset(&r, 0, sizeof r);
  memset(&s, 0, sizeof s);
  for (int i = 0; i < RING; i++) {
    UVT_OK(uva_event_new(&r.ev[i], loop));
    UVT_OK(uva_event_set(r.ev[i]));
    rt[i].r = &r;
    rt[i].i = i;
    rt[i].rc = 1;
    UVT_OK(uva_task_spawn(&tasks[i], loop, step_ring, &rt[i], NULL));
  }
  s.r = &r;
  s.rounds = 5;
  UVT_OK(uva_task_spawn(&st, loop, step_sleeper, &s, NULL));
  UVT_OK(uva_loop_run(loop, UVA_RUN_DEFAULT));
  cr_assert_eq(s.runs, 6);
  cr_assert_eq(task_rc(st), 0);
  cr_assert_lt(s.worst_ms, 200.0 * uvt_mult(),
               "a 20 ms sleep woke %.1f ms late", s.worst_ms);
  /* They really were busy meanwhile (~100 ms of back-to-back steps). */
  cr_assert_gt(r.steps - s.steps_at_start, 1000, "only %ld steps",
               r.steps - s.steps_at_start);
  cr_log_info("starvation: worst wake-up %.2f ms late, %ld ring steps while "
              "sleeping", s.worst_ms, r.steps - s.steps_at_start);
  for (int i = 0; i < RING; i++) {
    cr_assert_eq(rt[i].rc, 0, "ring task %d: %d", i, rt[i].rc);
    UVT_OK(uva_task_release(tasks[i]));
    UVT_OK(uva_event_close(r.ev[i]));
  }
  UVT_OK(uva_task_release(st));
  UVT_CLOSE_LOOP(loop);
}

/* ======================================================================== */
/* Thread safety                                                            */
/* ======================================================================== */

#define SETTERS 4
#define SETS_PER_THREAD 250000

struct xflag {
  uva_flag_t *f;
  int done;    /* atomic: all threads joined, the final set follows */
  int errors;  /* atomic */
  long wakes;  /* loop thread */
  int runs;    /* loop thread */
  int saw_done;
};

static void *thread_setter(void *d) {
  struct xflag *x = (struct xflag *) d;
  for (int i = 0; i < SETS_PER_THREAD; i++)
    if (uva_flag_set(x->f) != 0)
      __atomic_add_fetch(&x->errors, 1, __ATOMIC_SEQ_CST);
  return NULL;
}

static void *thread_controller(void *d) {
  struct xflag *x = (struct xflag *) d;
  pthread_t th[SETTERS];
  int n = 0;
  for (int i = 0; i < SETTERS; i++)
    if (pthread_create(&th[i], NULL, thread_setter, x) == 0)
      n++;
    else
      __atomic_add_fetch(&x->errors, 1, __ATOMIC_SEQ_CST);
  for (int i = 0; i < n; i++)
    pthread_join(th[i], NULL);
  __atomic_store_n(&x->done, 1, __ATOMIC_SEQ_CST);
  if (uva_flag_set(x->f) != 0) /* the final set: must not be lost */
    __atomic_add_fetch(&x->errors, 1, __ATOMIC_SEQ_CST);
  return NULL;
}

static int step_flag_counter(uva_task_t *t, int status, void *d) {
  struct xflag *x = (struct xflag *) d;
  x->runs++;
  if (status != 0)
    return status;
  for (;;) {
    int rc = uva_flag_wait(x->f, t);
    if (rc == UVA_EAGAIN)
      return UVA_TASK_PENDING;
    if (rc != 0)
      return rc;
    x->wakes++;
    if (__atomic_load_n(&x->done, __ATOMIC_SEQ_CST)) {
      x->saw_done = 1;
      return 0;
    }
  }
}

Test(sync, flag_set_from_4_threads_no_lost_final_wakeup, .timeout = 60) {
  uva_loop_t *loop = uvt_loop_new();
  struct xflag x;
  uva_task_t *t;
  pthread_t ctl;
  memset(&x, 0, sizeof x);
  UVT_OK(uva_flag_new(&x.f, loop));
  UVT_OK(uva_task_spawn(&t, loop, step_flag_counter, &x, NULL));
  cr_assert_eq(pthread_create(&ctl, NULL, thread_controller, &x), 0);
  /* Runs until the task finished: it only does after a wake that followed
   * `done`, so a lost final set shows up as a timeout here. */
  UVT_OK(uva_loop_run(loop, UVA_RUN_DEFAULT));
  cr_assert_eq(pthread_join(ctl, NULL), 0);
  cr_assert_eq(x.errors, 0);
  cr_assert_eq(x.saw_done, 1);
  cr_assert_eq(task_rc(t), 0);
  cr_assert_geq(x.wakes, 1);
  cr_assert_leq(x.wakes, (long) SETTERS * SETS_PER_THREAD + 1);
  cr_log_info("flag: %ld completed waits, %d step runs for %d sets", x.wakes,
              x.runs, SETTERS * SETS_PER_THREAD + 1);
  UVT_OK(uva_task_release(t));
  UVT_OK(uva_flag_close(x.f));
  UVT_CLOSE_LOOP(loop);
}

/* ======================================================================== */
/* Bad input                                                                */
/* ======================================================================== */

Test(sync, null_arguments, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  uva_event_t *ev;
  uva_lock_t *lk;
  uva_sem_t *sm;
  uva_queue_t *q;
  uva_flag_t *f;
  uva_task_t *t;
  int i;
  int64_t v;
  size_t sz;
  void *out;
  UVT_OK(uva_event_new(&ev, loop));
  UVT_OK(uva_lock_new(&lk, loop));
  UVT_OK(uva_sem_new(&sm, loop, 1, 0));
  UVT_OK(uva_queue_new(&q, loop, 1, NULL));
  UVT_OK(uva_flag_new(&f, loop));
  UVT_OK(uva_task_spawn(&t, loop, uvt_step_finish, NULL, NULL)); /* not run */

  UVT_EXPECT(uva_event_new(NULL, loop), UVA_EINVAL);
  UVT_EXPECT(uva_event_new(&ev, NULL), UVA_EINVAL);
  UVT_EXPECT(uva_event_set(NULL), UVA_EINVAL);
  UVT_EXPECT(uva_event_clear(NULL), UVA_EINVAL);
  UVT_EXPECT(uva_event_is_set(NULL, ev), UVA_EINVAL);
  UVT_EXPECT(uva_event_is_set(&i, NULL), UVA_EINVAL);
  UVT_EXPECT(uva_event_wait(NULL, t), UVA_EINVAL);
  UVT_EXPECT(uva_event_wait(ev, NULL), UVA_EINVAL);
  UVT_EXPECT(uva_event_close(NULL), 0);

  UVT_EXPECT(uva_lock_new(NULL, loop), UVA_EINVAL);
  UVT_EXPECT(uva_lock_new(&lk, NULL), UVA_EINVAL);
  UVT_EXPECT(uva_lock_acquire(NULL, t), UVA_EINVAL);
  UVT_EXPECT(uva_lock_acquire(lk, NULL), UVA_EINVAL);
  UVT_EXPECT(uva_lock_try_acquire(NULL), UVA_EINVAL);
  UVT_EXPECT(uva_lock_release(NULL), UVA_EINVAL);
  UVT_EXPECT(uva_lock_locked(NULL, lk), UVA_EINVAL);
  UVT_EXPECT(uva_lock_locked(&i, NULL), UVA_EINVAL);
  UVT_EXPECT(uva_lock_close(NULL), 0);

  UVT_EXPECT(uva_sem_acquire(NULL, t), UVA_EINVAL);
  UVT_EXPECT(uva_sem_acquire(sm, NULL), UVA_EINVAL);
  UVT_EXPECT(uva_sem_try_acquire(NULL), UVA_EINVAL);
  UVT_EXPECT(uva_sem_release(NULL), UVA_EINVAL);
  UVT_EXPECT(uva_sem_value(NULL, sm), UVA_EINVAL);
  UVT_EXPECT(uva_sem_value(&v, NULL), UVA_EINVAL);
  UVT_EXPECT(uva_sem_close(NULL), 0);

  UVT_EXPECT(uva_queue_new(NULL, loop, 0, NULL), UVA_EINVAL);
  UVT_EXPECT(uva_queue_new(&q, NULL, 0, NULL), UVA_EINVAL);
  UVT_EXPECT(uva_queue_put(NULL, t, ITEM(1)), UVA_EINVAL);
  UVT_EXPECT(uva_queue_put(q, NULL, ITEM(1)), UVA_EINVAL);
  UVT_EXPECT(uva_queue_get(NULL, q, t), UVA_EINVAL);
  UVT_EXPECT(uva_queue_get(&out, NULL, t), UVA_EINVAL);
  UVT_EXPECT(uva_queue_get(&out, q, NULL), UVA_EINVAL);
  UVT_EXPECT(uva_queue_put_nowait(NULL, ITEM(1)), UVA_EINVAL);
  UVT_EXPECT(uva_queue_get_nowait(NULL, q), UVA_EINVAL);
  UVT_EXPECT(uva_queue_get_nowait(&out, NULL), UVA_EINVAL);
  UVT_EXPECT(uva_queue_size(NULL, q), UVA_EINVAL);
  UVT_EXPECT(uva_queue_size(&sz, NULL), UVA_EINVAL);
  UVT_EXPECT(uva_queue_empty(NULL, q), UVA_EINVAL);
  UVT_EXPECT(uva_queue_empty(&i, NULL), UVA_EINVAL);
  UVT_EXPECT(uva_queue_full(NULL, q), UVA_EINVAL);
  UVT_EXPECT(uva_queue_full(&i, NULL), UVA_EINVAL);
  UVT_EXPECT(uva_queue_close(NULL), 0);

  UVT_EXPECT(uva_flag_new(NULL, loop), UVA_EINVAL);
  UVT_EXPECT(uva_flag_new(&f, NULL), UVA_EINVAL);
  UVT_EXPECT(uva_flag_set(NULL), UVA_EINVAL);
  UVT_EXPECT(uva_flag_wait(NULL, t), UVA_EINVAL);
  UVT_EXPECT(uva_flag_wait(f, NULL), UVA_EINVAL);
  UVT_EXPECT(uva_flag_close(NULL), 0);

  /* A NULL `out` pointer with a non-empty queue takes nothing. */
  UVT_OK(uva_queue_put_nowait(q, ITEM(1)));
  UVT_EXPECT(uva_queue_get_nowait(NULL, q), UVA_EINVAL);
  UVT_EXPECT(uva_queue_get(NULL, q, t), UVA_EINVAL);
  UVT_OK(uva_queue_size(&sz, q));
  cr_expect_eq(sz, 1);

  RUN_IDLE(loop);
  UVT_OK(uva_task_release(t));
  UVT_OK(uva_event_close(ev));
  UVT_OK(uva_lock_close(lk));
  UVT_OK(uva_sem_close(sm));
  UVT_OK(uva_queue_close(q));
  UVT_OK(uva_flag_close(f));
  UVT_CLOSE_LOOP(loop);
}

static void timer_noop(uva_timer_t *tm, void *d) {
  (void) tm;
  (void) d;
}

Test(sync, wrong_handle_kinds, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  uva_event_t *ev, *e2 = NULL;
  uva_lock_t *lk;
  uva_sem_t *sm;
  uva_queue_t *q;
  uva_flag_t *f;
  uva_task_t *t;
  uva_timer_t *tm;
  int i = 0, locked = 0;
  int64_t v = 0;
  size_t sz = 0;
  void *out = NULL;
  UVT_OK(uva_event_new(&ev, loop));
  UVT_OK(uva_lock_new(&lk, loop));
  UVT_OK(uva_sem_new(&sm, loop, 1, 0));
  UVT_OK(uva_queue_new(&q, loop, 1, NULL));
  UVT_OK(uva_flag_new(&f, loop));
  UVT_OK(uva_timer_new(&tm, loop, timer_noop, NULL, NULL));
  UVT_OK(uva_task_spawn(&t, loop, uvt_step_finish, NULL, NULL));

  /* The loop argument. */
  UVT_EXPECT(uva_event_new(&e2, (uva_loop_t *) t), UVA_EHANDLEKIND);
  UVT_EXPECT(uva_lock_new((uva_lock_t **) &e2, (uva_loop_t *) ev),
             UVA_EHANDLEKIND);
  UVT_EXPECT(uva_sem_new((uva_sem_t **) &e2, (uva_loop_t *) tm, 0, 0),
             UVA_EHANDLEKIND);
  UVT_EXPECT(uva_queue_new((uva_queue_t **) &e2, (uva_loop_t *) q, 0, NULL),
             UVA_EHANDLEKIND);
  UVT_EXPECT(uva_flag_new((uva_flag_t **) &e2, (uva_loop_t *) f),
             UVA_EHANDLEKIND);
  cr_expect_null(e2);

  /* A lock where an event is expected, and so on round the kinds. */
  UVT_EXPECT(uva_event_set((uva_event_t *) lk), UVA_EHANDLEKIND);
  UVT_EXPECT(uva_event_clear((uva_event_t *) sm), UVA_EHANDLEKIND);
  UVT_EXPECT(uva_event_is_set(&i, (uva_event_t *) q), UVA_EHANDLEKIND);
  UVT_EXPECT(uva_event_wait((uva_event_t *) f, t), UVA_EHANDLEKIND);
  UVT_EXPECT(uva_event_wait((uva_event_t *) t, t), UVA_EHANDLEKIND);
  UVT_EXPECT(uva_event_close((uva_event_t *) lk), UVA_EHANDLEKIND);
  UVT_EXPECT(uva_event_close((uva_event_t *) loop), UVA_EHANDLEKIND);

  UVT_EXPECT(uva_lock_acquire((uva_lock_t *) ev, t), UVA_EHANDLEKIND);
  UVT_EXPECT(uva_lock_try_acquire((uva_lock_t *) sm), UVA_EHANDLEKIND);
  UVT_EXPECT(uva_lock_release((uva_lock_t *) q), UVA_EHANDLEKIND);
  UVT_EXPECT(uva_lock_locked(&i, (uva_lock_t *) f), UVA_EHANDLEKIND);
  UVT_EXPECT(uva_lock_close((uva_lock_t *) tm), UVA_EHANDLEKIND);

  UVT_EXPECT(uva_sem_acquire((uva_sem_t *) lk, t), UVA_EHANDLEKIND);
  UVT_EXPECT(uva_sem_try_acquire((uva_sem_t *) ev), UVA_EHANDLEKIND);
  UVT_EXPECT(uva_sem_release((uva_sem_t *) lk), UVA_EHANDLEKIND);
  UVT_EXPECT(uva_sem_value(&v, (uva_sem_t *) q), UVA_EHANDLEKIND);
  UVT_EXPECT(uva_sem_close((uva_sem_t *) f), UVA_EHANDLEKIND);

  UVT_EXPECT(uva_queue_put((uva_queue_t *) ev, t, ITEM(1)), UVA_EHANDLEKIND);
  UVT_EXPECT(uva_queue_get(&out, (uva_queue_t *) lk, t), UVA_EHANDLEKIND);
  UVT_EXPECT(uva_queue_put_nowait((uva_queue_t *) sm, ITEM(1)),
             UVA_EHANDLEKIND);
  UVT_EXPECT(uva_queue_get_nowait(&out, (uva_queue_t *) f), UVA_EHANDLEKIND);
  UVT_EXPECT(uva_queue_size(&sz, (uva_queue_t *) t), UVA_EHANDLEKIND);
  UVT_EXPECT(uva_queue_empty(&i, (uva_queue_t *) tm), UVA_EHANDLEKIND);
  UVT_EXPECT(uva_queue_full(&i, (uva_queue_t *) loop), UVA_EHANDLEKIND);
  UVT_EXPECT(uva_queue_close((uva_queue_t *) ev), UVA_EHANDLEKIND);

  UVT_EXPECT(uva_flag_set((uva_flag_t *) ev), UVA_EHANDLEKIND);
  UVT_EXPECT(uva_flag_set((uva_flag_t *) t), UVA_EHANDLEKIND);
  UVT_EXPECT(uva_flag_wait((uva_flag_t *) lk, t), UVA_EHANDLEKIND);
  UVT_EXPECT(uva_flag_close((uva_flag_t *) q), UVA_EHANDLEKIND);

  /* The task argument. */
  UVT_EXPECT(uva_event_wait(ev, (uva_task_t *) lk), UVA_EHANDLEKIND);
  UVT_EXPECT(uva_lock_acquire(lk, (uva_task_t *) ev), UVA_EHANDLEKIND);
  UVT_EXPECT(uva_sem_acquire(sm, (uva_task_t *) tm), UVA_EHANDLEKIND);
  UVT_EXPECT(uva_queue_put(q, (uva_task_t *) loop, ITEM(1)),
             UVA_EHANDLEKIND);
  UVT_EXPECT(uva_queue_get(&out, q, (uva_task_t *) f), UVA_EHANDLEKIND);
  UVT_EXPECT(uva_flag_wait(f, (uva_task_t *) sm), UVA_EHANDLEKIND);

  /* Nothing changed and nothing was closed. */
  UVT_OK(uva_event_is_set(&i, ev));
  cr_expect_eq(i, 0);
  UVT_OK(uva_lock_locked(&locked, lk));
  cr_expect_eq(locked, 0);
  UVT_OK(uva_sem_value(&v, sm));
  cr_expect_eq(v, 1);
  UVT_OK(uva_queue_size(&sz, q));
  cr_expect_eq(sz, 0);

  RUN_IDLE(loop);
  UVT_OK(uva_task_release(t));
  UVT_OK(uva_timer_close(tm, NULL));
  UVT_OK(uva_event_close(ev));
  UVT_OK(uva_lock_close(lk));
  UVT_OK(uva_sem_close(sm));
  UVT_OK(uva_queue_close(q));
  UVT_OK(uva_flag_close(f));
  UVT_OK(uva_loop_run(loop, UVA_RUN_DEFAULT)); /* timer close completes */
  UVT_CLOSE_LOOP(loop);
}

/* Every call made from a thread that does not own the loop. */
struct foreign {
  uva_loop_t *loop;
  uva_event_t *ev;
  uva_lock_t *lk;
  uva_sem_t *sm;
  uva_queue_t *q;
  uva_flag_t *f;
  uva_task_t *t;
  int rc[64];
  const char *what[64];
  int n;
};

#define FOREIGN(x, expr)                                                      \
  do {                                                                        \
    (x)->what[(x)->n] = #expr;                                                \
    (x)->rc[(x)->n++] = (expr);                                               \
  } while (0)

static void *thread_foreign_calls(void *d) {
  struct foreign *x = (struct foreign *) d;
  uva_event_t *e2 = NULL;
  uva_lock_t *l2 = NULL;
  uva_sem_t *s2 = NULL;
  uva_queue_t *q2 = NULL;
  uva_flag_t *f2 = NULL;
  int i;
  int64_t v;
  size_t sz;
  void *out;
  FOREIGN(x, uva_event_new(&e2, x->loop));
  FOREIGN(x, uva_event_set(x->ev));
  FOREIGN(x, uva_event_clear(x->ev));
  FOREIGN(x, uva_event_is_set(&i, x->ev));
  FOREIGN(x, uva_event_wait(x->ev, x->t));
  FOREIGN(x, uva_event_close(x->ev));
  FOREIGN(x, uva_lock_new(&l2, x->loop));
  FOREIGN(x, uva_lock_acquire(x->lk, x->t));
  FOREIGN(x, uva_lock_try_acquire(x->lk));
  FOREIGN(x, uva_lock_release(x->lk));
  FOREIGN(x, uva_lock_locked(&i, x->lk));
  FOREIGN(x, uva_lock_close(x->lk));
  FOREIGN(x, uva_sem_new(&s2, x->loop, 1, 0));
  FOREIGN(x, uva_sem_acquire(x->sm, x->t));
  FOREIGN(x, uva_sem_try_acquire(x->sm));
  FOREIGN(x, uva_sem_release(x->sm));
  FOREIGN(x, uva_sem_value(&v, x->sm));
  FOREIGN(x, uva_sem_close(x->sm));
  FOREIGN(x, uva_queue_new(&q2, x->loop, 0, NULL));
  FOREIGN(x, uva_queue_put(x->q, x->t, ITEM(1)));
  FOREIGN(x, uva_queue_get(&out, x->q, x->t));
  FOREIGN(x, uva_queue_put_nowait(x->q, ITEM(1)));
  FOREIGN(x, uva_queue_get_nowait(&out, x->q));
  FOREIGN(x, uva_queue_size(&sz, x->q));
  FOREIGN(x, uva_queue_empty(&i, x->q));
  FOREIGN(x, uva_queue_full(&i, x->q));
  FOREIGN(x, uva_queue_close(x->q));
  FOREIGN(x, uva_flag_new(&f2, x->loop));
  FOREIGN(x, uva_flag_wait(x->f, x->t));
  FOREIGN(x, uva_flag_close(x->f));
  x->what[x->n] = "uva_flag_set(x->f) [thread-safe: 0]";
  x->rc[x->n++] = uva_flag_set(x->f) == 0 ? UVA_EWRONGTHREAD : -1;
  if (e2 != NULL || l2 != NULL || s2 != NULL || q2 != NULL || f2 != NULL) {
    x->what[x->n] = "an object was created from the foreign thread";
    x->rc[x->n++] = 0;
  }
  return NULL;
}

Test(sync, calls_from_a_foreign_thread_ewrongthread, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  struct foreign x;
  struct waiter a;
  int i = -1;
  int64_t v = -1;
  size_t sz = 9;
  memset(&x, 0, sizeof x);
  x.loop = loop;
  UVT_OK(uva_event_new(&x.ev, loop));
  UVT_OK(uva_lock_new(&x.lk, loop));
  UVT_OK(uva_sem_new(&x.sm, loop, 1, 0));
  UVT_OK(uva_queue_new(&x.q, loop, 2, NULL));
  UVT_OK(uva_flag_new(&x.f, loop));
  UVT_OK(uva_lock_try_acquire(x.lk));
  UVT_OK(uva_queue_put_nowait(x.q, ITEM(0)));
  UVT_OK(uva_task_spawn(&x.t, loop, uvt_step_finish, NULL, NULL));
  uvt_thread_run(thread_foreign_calls, &x);
  for (int k = 0; k < x.n; k++)
    cr_expect_eq(x.rc[k], UVA_EWRONGTHREAD, "%s: got %d (%s)", x.what[k],
                 x.rc[k], uva_err_name(x.rc[k]));
  /* Nothing changed. */
  UVT_OK(uva_event_is_set(&i, x.ev));
  cr_expect_eq(i, 0);
  UVT_OK(uva_lock_locked(&i, x.lk));
  cr_expect_eq(i, 1);
  UVT_OK(uva_sem_value(&v, x.sm));
  cr_expect_eq(v, 1);
  UVT_OK(uva_queue_size(&sz, x.q));
  cr_expect_eq(sz, 1);
  RUN_IDLE(loop);
  /* The foreign set counts: a waiter on this thread gets it. */
  waiter_init(&a, 'a', OP_FLAG, x.f, NULL);
  spawn_waiter(loop, &a);
  RUN_IDLE(loop);
  UVT_EQ(a.first_rc, 0);
  release_waiters(&a, 1);
  UVT_OK(uva_task_release(x.t));
  UVT_OK(uva_event_close(x.ev));
  UVT_OK(uva_lock_close(x.lk));
  UVT_OK(uva_sem_close(x.sm));
  UVT_OK(uva_queue_close(x.q));
  UVT_OK(uva_flag_close(x.f));
  UVT_CLOSE_LOOP(loop);
}

Test(sync, task_of_another_loop_einval, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new(), *loop2 = uvt_loop_new();
  uva_event_t *ev;
  uva_lock_t *lk;
  uva_sem_t *sm;
  uva_queue_t *q;
  uva_flag_t *f;
  uva_task_t *t2;
  void *out = NULL;
  int locked = 0;
  int64_t v = -1;
  size_t sz = 9;
  UVT_OK(uva_event_new(&ev, loop));
  UVT_OK(uva_lock_new(&lk, loop));
  UVT_OK(uva_sem_new(&sm, loop, 1, 0));
  UVT_OK(uva_queue_new(&q, loop, 0, NULL));
  UVT_OK(uva_flag_new(&f, loop));
  UVT_OK(uva_event_set(ev));
  UVT_OK(uva_queue_put_nowait(q, ITEM(1)));
  UVT_OK(uva_flag_set(f));
  UVT_OK(uva_task_spawn(&t2, loop2, uvt_step_finish, NULL, NULL));
  /* Every call would complete at once for a task of the right loop. */
  UVT_EXPECT(uva_event_wait(ev, t2), UVA_EINVAL);
  UVT_EXPECT(uva_lock_acquire(lk, t2), UVA_EINVAL);
  UVT_EXPECT(uva_sem_acquire(sm, t2), UVA_EINVAL);
  UVT_EXPECT(uva_queue_put(q, t2, ITEM(2)), UVA_EINVAL);
  UVT_EXPECT(uva_queue_get(&out, q, t2), UVA_EINVAL);
  UVT_EXPECT(uva_flag_wait(f, t2), UVA_EINVAL);
  /* Nothing was taken. */
  UVT_OK(uva_lock_locked(&locked, lk));
  cr_expect_eq(locked, 0);
  UVT_OK(uva_sem_value(&v, sm));
  cr_expect_eq(v, 1);
  UVT_OK(uva_queue_size(&sz, q));
  cr_expect_eq(sz, 1);
  RUN_IDLE(loop2);
  UVT_OK(uva_task_release(t2));
  UVT_OK(uva_event_close(ev));
  UVT_OK(uva_lock_close(lk));
  UVT_OK(uva_sem_close(sm));
  UVT_OK(uva_queue_close(q));
  UVT_OK(uva_flag_close(f));
  UVT_CLOSE_LOOP(loop2);
  UVT_CLOSE_LOOP(loop);
}

/* Calls on a closed object, while a parked waiter still keeps its memory
 * (after the last waiter is gone the pointer must not be used at all). */
/* The rule for closing (uvasync.h "Synchronisation"): close ends the
 * owner's use of the pointer; the tasks that were waiting make one more
 * call, which returns UVA_ECLOSED and is their last use of it. A second
 * close would be a use after free (ASan), so nothing here calls the
 * pointer after close except those repeated calls. */
Test(sync, close_wakes_every_kind_of_waiter_with_eclosed, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  uva_event_t *ev;
  uva_lock_t *lk;
  uva_sem_t *sm;
  uva_queue_t *q;
  uva_flag_t *f;
  struct waiter w[5];
  UVT_OK(uva_event_new(&ev, loop));
  UVT_OK(uva_lock_new(&lk, loop));
  UVT_OK(uva_sem_new(&sm, loop, 0, 0));
  UVT_OK(uva_queue_new(&q, loop, 1, NULL));
  UVT_OK(uva_flag_new(&f, loop));
  UVT_OK(uva_lock_try_acquire(lk));
  UVT_OK(uva_queue_put_nowait(q, ITEM(1)));
  waiter_init(&w[0], 'e', OP_EVENT, ev, NULL);
  waiter_init(&w[1], 'l', OP_LOCK, lk, NULL);
  waiter_init(&w[2], 's', OP_SEM, sm, NULL);
  waiter_init(&w[3], 'p', OP_PUT, q, NULL);
  waiter_init(&w[4], 'f', OP_FLAG, f, NULL);
  for (int k = 0; k < 5; k++)
    spawn_waiter(loop, &w[k]);
  pass(loop);
  for (int k = 0; k < 5; k++)
    UVT_EQ(w[k].first_rc, UVA_EAGAIN);

  UVT_OK(uva_event_close(ev));
  UVT_OK(uva_lock_close(lk));
  UVT_OK(uva_sem_close(sm));
  UVT_OK(uva_queue_close(q));
  UVT_OK(uva_flag_close(f));
  UVT_OK(uva_event_close(NULL)); /* NULL is accepted */

  RUN_IDLE(loop);
  for (int k = 0; k < 5; k++) {
    cr_expect_eq(w[k].runs, 2, "waiter %c ran %d times", w[k].id, w[k].runs);
    UVT_EXPECT(w[k].rc, UVA_ECLOSED);
  }
  release_waiters(w, 5);
  UVT_CLOSE_LOOP(loop); /* every object was freed by its last waiter */
}

/* With no task waiting, close frees the object at once: nothing keeps the
 * loop busy afterwards (uva_loop_close succeeds without a run). */
Test(sync, close_without_waiters_frees_at_once, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  uva_event_t *ev;
  uva_lock_t *lk;
  uva_sem_t *sm;
  uva_queue_t *q;
  uva_flag_t *f;
  UVT_OK(uva_event_new(&ev, loop));
  UVT_OK(uva_lock_new(&lk, loop));
  UVT_OK(uva_sem_new(&sm, loop, 3, 0));
  UVT_OK(uva_queue_new(&q, loop, 0, NULL));
  UVT_OK(uva_flag_new(&f, loop));
  UVT_OK(uva_lock_try_acquire(lk)); /* closing a held lock is allowed */
  UVT_EQ(uva_loop_close(loop), UVA_EBUSY);
  UVT_OK(uva_event_close(ev));
  UVT_OK(uva_lock_close(lk));
  UVT_OK(uva_sem_close(sm));
  UVT_OK(uva_queue_close(q));
  UVT_OK(uva_flag_close(f));
  UVT_CLOSE_LOOP(loop);
}

/* Granted, then closed before the task ran: the repeated call says
 * UVA_ECLOSED, not 0, so it is the task's last use of the pointer (a lock
 * or permit it believed it held would be released on freed memory). */
Test(sync, grant_then_close_before_the_task_ran_eclosed, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  uva_event_t *ev;
  uva_lock_t *lk;
  uva_sem_t *sm;
  struct waiter w[3];
  UVT_OK(uva_event_new(&ev, loop));
  UVT_OK(uva_lock_new(&lk, loop));
  UVT_OK(uva_sem_new(&sm, loop, 0, 0));
  UVT_OK(uva_lock_try_acquire(lk));
  waiter_init(&w[0], 'e', OP_EVENT, ev, NULL);
  waiter_init(&w[1], 'l', OP_LOCK, lk, NULL);
  waiter_init(&w[2], 's', OP_SEM, sm, NULL);
  for (int k = 0; k < 3; k++)
    spawn_waiter(loop, &w[k]);
  pass(loop);
  for (int k = 0; k < 3; k++)
    UVT_EQ(w[k].first_rc, UVA_EAGAIN);
  UVT_OK(uva_event_set(ev));
  UVT_OK(uva_lock_release(lk)); /* ownership moves to w[1] */
  UVT_OK(uva_sem_release(sm));  /* the permit goes to w[2] */
  UVT_OK(uva_event_close(ev));
  UVT_OK(uva_lock_close(lk));
  UVT_OK(uva_sem_close(sm));
  RUN_IDLE(loop);
  for (int k = 0; k < 3; k++) {
    cr_expect_eq(w[k].runs, 2);
    UVT_EXPECT(w[k].rc, UVA_ECLOSED);
  }
  release_waiters(w, 3);
  UVT_CLOSE_LOOP(loop);
}

/* A getter handed the front item, then the queue closed before the getter
 * ran: its repeated get dropped its node (the queue's last reference) and
 * then took the item from the freed queue. Now: UVA_ECLOSED, and the item
 * stays in the queue and reaches item_dtor once. */
Test(sync, queue_getter_granted_then_closed, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  uva_queue_t *q;
  struct waiter g;
  int cnt = 0;
  UVT_OK(uva_queue_new(&q, loop, 0, uvt_count_dtor));
  waiter_init(&g, 'g', OP_GET, q, NULL);
  spawn_waiter(loop, &g);
  pass(loop);
  UVT_EQ(g.first_rc, UVA_EAGAIN);
  UVT_OK(uva_queue_put_nowait(q, &cnt)); /* handed to g */
  UVT_OK(uva_queue_close(q));
  cr_assert_eq(cnt, 0, "g's node still holds the queue");
  RUN_IDLE(loop);
  cr_assert_eq(g.runs, 2);
  UVT_EQ(g.rc, UVA_ECLOSED);
  cr_assert_eq(cnt, 1, "the item went to item_dtor %d times", cnt);
  release_waiters(&g, 1);
  UVT_CLOSE_LOOP(loop);
  cr_assert_eq(cnt, 1);
}

/* A putter granted a slot, then the queue closed before it ran: its
 * repeated put dropped its node (freeing the queue) and then offered the
 * item to getters of the freed queue. Now: UVA_ECLOSED, the item is not
 * taken (the caller still owns it). */
Test(sync, queue_putter_granted_then_closed, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  uva_queue_t *q;
  struct waiter p;
  int first = 0, second = 0;
  void *out = NULL;
  UVT_OK(uva_queue_new(&q, loop, 1, uvt_count_dtor));
  UVT_OK(uva_queue_put_nowait(q, &first));
  waiter_init(&p, 'p', OP_PUT, q, NULL);
  p.item = &second;
  spawn_waiter(loop, &p);
  pass(loop);
  UVT_EQ(p.first_rc, UVA_EAGAIN);
  UVT_OK(uva_queue_get_nowait(&out, q)); /* the slot goes to p */
  cr_assert_eq(out, &first);
  UVT_OK(uva_queue_close(q));
  RUN_IDLE(loop);
  cr_assert_eq(p.runs, 2);
  UVT_EQ(p.rc, UVA_ECLOSED);
  release_waiters(&p, 1);
  UVT_CLOSE_LOOP(loop);
  cr_assert_eq(first, 0, "an item taken by get must not be destroyed");
  cr_assert_eq(second, 0, "a refused put must not hand over its item");
}

/* An unbounded semaphore stops at INT64_MAX (was signed overflow). */
Test(sync, sem_unbounded_release_at_int64_max_overflows, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  uva_sem_t *sm;
  int64_t v = -1;
  UVT_OK(uva_sem_new(&sm, loop, INT64_MAX, 0));
  UVT_EQ(uva_sem_release(sm), UVA_EOVERFLOW);
  UVT_OK(uva_sem_value(&v, sm));
  cr_assert_eq(v, INT64_MAX);
  UVT_OK(uva_sem_try_acquire(sm));
  UVT_OK(uva_sem_release(sm));
  UVT_EQ(uva_sem_release(sm), UVA_EOVERFLOW);
  UVT_OK(uva_sem_close(sm));
  UVT_CLOSE_LOOP(loop);
}

/* A closed queue that still holds items (kept alive by a waiting putter):
 * a fresh get must refuse like get_nowait does, not hand out an item.
 * Using the pointer after close is outside the contract (only the woken
 * waiters may); this checks the core stays safe while one holds it. */
Test(sync, closed_queue_with_items_refuses_get, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  uva_queue_t *q;
  struct waiter p;
  uva_task_t *t;
  int cnt = 0;
  void *out = NULL;
  int rc;
  UVT_OK(uva_queue_new(&q, loop, 1, uvt_count_dtor));
  UVT_OK(uva_queue_put_nowait(q, &cnt));
  waiter_init(&p, 'p', OP_PUT, q, NULL);
  p.item = ITEM(1);
  spawn_waiter(loop, &p);
  pass(loop);
  UVT_EQ(p.first_rc, UVA_EAGAIN);
  UVT_OK(uva_task_spawn(&t, loop, uvt_step_finish, NULL, NULL));
  UVT_OK(uva_queue_close(q));
  UVT_EXPECT(uva_queue_get_nowait(&out, q), UVA_ECLOSED);
  rc = uva_queue_get(&out, q, t);
  UVT_EXPECT(rc, UVA_ECLOSED);
  RUN_IDLE(loop);
  UVT_EQ(p.rc, UVA_ECLOSED);
  /* Either way the item is destroyed or handed out exactly once. */
  cr_expect_eq(cnt + (rc == 0 && out == &cnt), 1);
  release_waiters(&p, 1);
  UVT_OK(uva_task_release(t));
  UVT_CLOSE_LOOP(loop);
}

Test(sync, open_objects_keep_loop_close_busy, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  uva_event_t *ev;
  uva_queue_t *q;
  UVT_OK(uva_event_new(&ev, loop));
  UVT_OK(uva_queue_new(&q, loop, 0, NULL));
  UVT_EQ(uva_loop_close(loop), UVA_EBUSY);
  UVT_OK(uva_event_close(ev));
  UVT_EQ(uva_loop_close(loop), UVA_EBUSY);
  UVT_OK(uva_queue_close(q));
  UVT_CLOSE_LOOP(loop);
}
