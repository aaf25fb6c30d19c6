/* Synchronisation calls given bad input: NULL arguments, handles of the
 * wrong kind, calls from a foreign thread, a task of another loop.
 *
 * Waiting follows the "call again" protocol: a call that cannot complete
 * registers the task and returns UVA_EAGAIN, the step returns
 * UVA_TASK_PENDING, and the repeated call after the wake-up completes. Most
 * tests drive the loop one pass at a time (UVA_RUN_NOWAIT) so that every
 * hand-off, wake-up and cancellation happens at a known point. Helpers:
 * support.h. */
#include "support.h"

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
  UVT_EXPECT(uva_event_wait(ev, NULL), UVA_EINVAL); /* no task, not set */
  UVT_EXPECT(uva_event_close(NULL), 0);

  UVT_EXPECT(uva_lock_new(NULL, loop), UVA_EINVAL);
  UVT_EXPECT(uva_lock_new(&lk, NULL), UVA_EINVAL);
  UVT_EXPECT(uva_lock_acquire(NULL, t), UVA_EINVAL);
  UVT_EXPECT(uva_lock_try_acquire(NULL), UVA_EINVAL);
  UVT_EXPECT(uva_lock_release(NULL), UVA_EINVAL);
  UVT_EXPECT(uva_lock_locked(NULL, lk), UVA_EINVAL);
  UVT_EXPECT(uva_lock_locked(&i, NULL), UVA_EINVAL);
  UVT_EXPECT(uva_lock_close(NULL), 0);

  UVT_EXPECT(uva_sem_acquire(NULL, t), UVA_EINVAL);
  UVT_EXPECT(uva_sem_try_acquire(NULL), UVA_EINVAL);
  UVT_EXPECT(uva_sem_release(NULL), UVA_EINVAL);
  UVT_EXPECT(uva_sem_value(NULL, sm), UVA_EINVAL);
  UVT_EXPECT(uva_sem_value(&v, NULL), UVA_EINVAL);
  UVT_EXPECT(uva_sem_close(NULL), 0);

  UVT_EXPECT(uva_queue_new(NULL, loop, 0, NULL), UVA_EINVAL);
  UVT_EXPECT(uva_queue_new(&q, NULL, 0, NULL), UVA_EINVAL);
  UVT_EXPECT(uva_queue_put(NULL, t, ITEM(1)), UVA_EINVAL);
  UVT_EXPECT(uva_queue_get(NULL, q, t), UVA_EINVAL);
  UVT_EXPECT(uva_queue_get(&out, NULL, t), UVA_EINVAL);
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
  UVT_EXPECT(uva_flag_wait(f, NULL), UVA_EINVAL); /* no task, not set */
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

/* Outside a step the waits take NULL as "no task": what can complete at
 * once completes (a test that drives a coroutine by hand, a callback); what
 * would have to wait is refused and registers nothing. A no-task call never
 * takes what was handed to a waiting task. */
Test(sync, wait_without_a_task_completes_when_it_can, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  uva_event_t *ev;
  uva_lock_t *lk;
  uva_sem_t *sm;
  uva_queue_t *q;
  uva_flag_t *f;
  struct waiter g;
  void *out = NULL;
  int i = -1;
  int64_t v = -1;
  size_t sz = 9;
  UVT_OK(uva_event_new(&ev, loop));
  UVT_OK(uva_lock_new(&lk, loop));
  UVT_OK(uva_sem_new(&sm, loop, 1, 0));
  UVT_OK(uva_queue_new(&q, loop, 1, NULL));
  UVT_OK(uva_flag_new(&f, loop));

  UVT_EXPECT(uva_event_wait(ev, NULL), UVA_EINVAL);
  UVT_OK(uva_event_set(ev));
  UVT_OK(uva_event_wait(ev, NULL));

  UVT_OK(uva_lock_acquire(lk, NULL));
  UVT_OK(uva_lock_locked(&i, lk));
  cr_assert_eq(i, 1);
  UVT_EXPECT(uva_lock_acquire(lk, NULL), UVA_EINVAL);
  UVT_OK(uva_lock_release(lk));
  UVT_OK(uva_lock_locked(&i, lk));
  cr_assert_eq(i, 0);

  UVT_OK(uva_sem_acquire(sm, NULL));
  UVT_EXPECT(uva_sem_acquire(sm, NULL), UVA_EINVAL);
  UVT_OK(uva_sem_value(&v, sm));
  cr_assert_eq(v, 0);
  UVT_OK(uva_sem_release(sm));

  UVT_EXPECT(uva_queue_get(&out, q, NULL), UVA_EINVAL);
  UVT_OK(uva_queue_put(q, NULL, ITEM(7)));
  UVT_EXPECT(uva_queue_put(q, NULL, ITEM(8)), UVA_EINVAL); /* full */
  UVT_OK(uva_queue_size(&sz, q));
  cr_assert_eq(sz, 1);
  UVT_OK(uva_queue_get(&out, q, NULL));
  cr_assert_eq(out, ITEM(7));
  UVT_OK(uva_queue_size(&sz, q));
  cr_assert_eq(sz, 0);

  UVT_EXPECT(uva_flag_wait(f, NULL), UVA_EINVAL);
  UVT_OK(uva_flag_set(f));
  UVT_OK(uva_flag_wait(f, NULL));
  UVT_EXPECT(uva_flag_wait(f, NULL), UVA_EINVAL); /* the wait cleared it */

  /* An item handed to a waiting getter is its own. */
  waiter_init(&g, 'g', OP_GET, q, NULL);
  spawn_waiter(loop, &g);
  pass(loop);
  cr_assert_eq(g.first_rc, UVA_EAGAIN);
  UVT_OK(uva_queue_put(q, NULL, ITEM(9))); /* claimed by g at once */
  out = NULL;
  UVT_EXPECT(uva_queue_get(&out, q, NULL), UVA_EINVAL);
  cr_assert_null(out);
  RUN_IDLE(loop);
  cr_assert_eq(g.rc, 0);
  cr_assert_eq(g.item, ITEM(9));
  release_waiters(&g, 1);

  UVT_OK(uva_queue_close(q));
  UVT_OK(uva_event_close(ev));
  UVT_OK(uva_lock_close(lk));
  UVT_OK(uva_sem_close(sm));
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
  UVT_EXPECT(uva_queue_put(q, (uva_task_t *) loop, ITEM(1)), UVA_EHANDLEKIND);
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

#define FOREIGN(x, expr)        \
  do {                          \
    (x)->what[(x)->n] = #expr;  \
    (x)->rc[(x)->n++] = (expr); \
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
