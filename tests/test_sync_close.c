/* Closing a synchronisation object: waiters of every kind are woken with
 * UVA_ECLOSED, memory is freed once the last waiter is gone, a grant the
 * task never took is not used after the close, a queue's items go to its
 * item_dtor once, and open objects keep the loop's close busy.
 *
 * Waiting follows the "call again" protocol: a call that cannot complete
 * registers the task and returns UVA_EAGAIN, the step returns
 * UVA_TASK_PENDING, and the repeated call after the wake-up completes. Most
 * tests drive the loop one pass at a time (UVA_RUN_NOWAIT) so that every
 * hand-off, wake-up and cancellation happens at a known point. Helpers:
 * support.h. */
#include "support.h"

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

Test(sync, queue_close_wakes_getters_and_putters_with_eclosed, .timeout = 10) {
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
