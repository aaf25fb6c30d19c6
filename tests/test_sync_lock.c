/* Locks (uvasync.h "Synchronisation"): acquire and release, the lock
 * handed to waiters in FIFO order, and a ready task cannot steal a lock
 * handed to another.
 *
 * Waiting follows the "call again" protocol: a call that cannot complete
 * registers the task and returns UVA_EAGAIN, the step returns
 * UVA_TASK_PENDING, and the repeated call after the wake-up completes. Most
 * tests drive the loop one pass at a time (UVA_RUN_NOWAIT) so that every
 * hand-off, wake-up and cancellation happens at a known point. Helpers:
 * support.h. */
#include "support.h"

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
  if (s->r_try_rc == 0) uva_lock_release(s->lk);
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
