/* Cancellation leaves no trace: a cancelled waiter of every kind of
 * synchronisation object, also one already granted before it ran, gives
 * back what it was granted (to the next waiter, in order).
 *
 * Waiting follows the "call again" protocol: a call that cannot complete
 * registers the task and returns UVA_EAGAIN, the step returns
 * UVA_TASK_PENDING, and the repeated call after the wake-up completes. Most
 * tests drive the loop one pass at a time (UVA_RUN_NOWAIT) so that every
 * hand-off, wake-up and cancellation happens at a known point. Helpers:
 * support.h. */
#include "support.h"

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
  UVT_OK(uva_event_set(ev));          /* wakes all three */
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
Test(sync, cancel_sem_granted_waiter_keeps_value_within_bound, .timeout = 10) {
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
  cr_assert_leq(v, 1,
                "value %lld exceeds bound 1 (second release returned "
                "%s)",
                (long long) v, uva_err_name(rc2));
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

Test(sync, cancel_queue_getter_handed_an_item_before_it_ran, .timeout = 10) {
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

Test(sync, cancel_queue_putter_granted_a_slot_before_it_ran, .timeout = 10) {
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
  if (++k->runs == 1) return UVA_TASK_YIELD;
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
