/* Semaphores (uvasync.h "Synchronisation"): counting, bounded and
 * unbounded overflow, arguments, waiters served in FIFO order.
 *
 * Waiting follows the "call again" protocol: a call that cannot complete
 * registers the task and returns UVA_EAGAIN, the step returns
 * UVA_TASK_PENDING, and the repeated call after the wake-up completes. Most
 * tests drive the loop one pass at a time (UVA_RUN_NOWAIT) so that every
 * hand-off, wake-up and cancellation happens at a known point. Helpers:
 * support.h. */
#include "support.h"

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
  UVT_EQ(uva_sem_new(&sm, loop, -1, 0), UVA_EINVAL); /* value < 0 */
  UVT_EQ(uva_sem_new(&sm, loop, 3, 2), UVA_EINVAL);  /* value > bound */
  UVT_EQ(uva_sem_new(&sm, loop, 0, -1), UVA_EINVAL); /* negative bound */
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
