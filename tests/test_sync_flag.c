/* Thread-safe flags (uvasync.h "Synchronisation"): set before and while a
 * task waits, sets coalesce, one waiting task at a time, sets from other
 * threads (no lost final wake-up).
 *
 * Waiting follows the "call again" protocol: a call that cannot complete
 * registers the task and returns UVA_EAGAIN, the step returns
 * UVA_TASK_PENDING, and the repeated call after the wake-up completes. Most
 * tests drive the loop one pass at a time (UVA_RUN_NOWAIT) so that every
 * hand-off, wake-up and cancellation happens at a known point. Helpers:
 * support.h. */
#include "support.h"

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
  if (status != 0) return status;
  for (;;) {
    int rc = uva_flag_wait(w->f, t);
    if (w->ncalls < 16) w->rcs[w->ncalls++] = rc;
    w->last_rc = rc;
    if (rc == UVA_EAGAIN)
      return w->done_waits == w->waits && w->end_registered ? 0
                                                            : UVA_TASK_PENDING;
    if (rc != 0) return rc;
    if (++w->done_waits == w->waits && !w->end_registered) return 0;
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
  if (a.rc == UVA_EAGAIN) UVT_OK(uva_flag_set(f));
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
  if (uva_flag_set((uva_flag_t *) d) != 0) abort();
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

#define SETTERS 4
#define SETS_PER_THREAD 250000

struct xflag {
  uva_flag_t *f;
  int done;   /* atomic: all threads joined, the final set follows */
  int errors; /* atomic */
  long wakes; /* loop thread */
  int runs;   /* loop thread */
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
  if (status != 0) return status;
  for (;;) {
    int rc = uva_flag_wait(x->f, t);
    if (rc == UVA_EAGAIN) return UVA_TASK_PENDING;
    if (rc != 0) return rc;
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
