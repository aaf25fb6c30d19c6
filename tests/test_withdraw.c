/* uva_task_withdraw: a task gives up one wait and goes on, as a Rust future
 * dropped inside a select or a timeout does. What was handed to it and not
 * taken goes to the next waiter, exactly as on cancellation. */
#include "helpers.h"

/* Calls acquire/get once (registering), then on its next run finishes
 * without calling again: the wait was withdrawn from outside. */
struct once {
  int (*call)(struct once *o, uva_task_t *t);
  void *obj;
  void *item;
  int first_rc, runs, calls_done;
};

static int step_once(uva_task_t *t, int status, void *d) {
  struct once *o = d;
  (void) status;
  if (o->runs++ > 0) return 0;
  o->first_rc = o->call(o, t);
  return o->first_rc == UVA_EAGAIN ? UVA_TASK_PENDING : o->first_rc;
}

/* Calls until the call completes (the normal call-again waiter). */
static int step_until(uva_task_t *t, int status, void *d) {
  struct once *o = d;
  (void) status;
  o->runs++;
  int rc = o->call(o, t);
  if (rc == UVA_EAGAIN) return UVA_TASK_PENDING;
  o->calls_done = 1;
  return rc;
}

static int call_lock(struct once *o, uva_task_t *t) {
  return uva_lock_acquire(o->obj, t);
}
static int call_sem(struct once *o, uva_task_t *t) {
  return uva_sem_acquire(o->obj, t);
}
static int call_get(struct once *o, uva_task_t *t) {
  return uva_queue_get(&o->item, o->obj, t);
}
static int call_read(struct once *o, uva_task_t *t) {
  size_t n;
  char buf[8];
  return uva_stream_read(&n, o->obj, t, buf, sizeof buf);
}

static void pass(uva_loop_t *loop) {
  UVT_OK(uva_loop_run(loop, UVA_RUN_NOWAIT));
}

Test(withdraw, granted_lock_goes_to_the_next_waiter, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  uva_lock_t *lk;
  uva_task_t *a, *b;
  struct once oa = {call_lock, NULL, NULL, 0, 0, 0};
  struct once ob = {call_lock, NULL, NULL, 0, 0, 0};
  int locked = 0;
  UVT_OK(uva_lock_new(&lk, loop));
  oa.obj = ob.obj = lk;
  UVT_OK(uva_lock_try_acquire(lk));
  UVT_OK(uva_task_spawn(&a, loop, step_once, &oa, NULL));
  UVT_OK(uva_task_spawn(&b, loop, step_until, &ob, NULL));
  pass(loop);
  UVT_EQ(oa.first_rc, UVA_EAGAIN);
  UVT_OK(uva_lock_release(lk));     /* handed to a */
  UVT_OK(uva_task_withdraw(a, lk)); /* ... which gives it up */
  UVT_EQ(uva_task_withdraw(a, lk), UVA_ENOENT);
  UVT_OK(uva_loop_run(loop, UVA_RUN_DEFAULT));
  cr_assert_eq(ob.calls_done, 1, "b got the lock");
  UVT_OK(uva_lock_locked(&locked, lk));
  cr_assert_eq(locked, 1);
  UVT_OK(uva_lock_release(lk));
  UVT_OK(uva_task_release(a));
  UVT_OK(uva_task_release(b));
  UVT_OK(uva_lock_close(lk));
  UVT_CLOSE_LOOP(loop);
}

Test(withdraw, waiting_sem_and_queue_waits_leave_no_trace, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  uva_sem_t *sm;
  uva_queue_t *q;
  uva_task_t *a, *b;
  struct once oa = {call_sem, NULL, NULL, 0, 0, 0};
  struct once ob = {call_get, NULL, NULL, 0, 0, 0};
  int64_t v = -1;
  size_t size = 0;
  UVT_OK(uva_sem_new(&sm, loop, 0, 0));
  UVT_OK(uva_queue_new(&q, loop, 0, NULL));
  oa.obj = sm;
  ob.obj = q;
  UVT_OK(uva_task_spawn(&a, loop, step_once, &oa, NULL));
  UVT_OK(uva_task_spawn(&b, loop, step_once, &ob, NULL));
  pass(loop);
  UVT_OK(uva_task_withdraw(a, sm)); /* still waiting: nothing granted yet */
  UVT_OK(uva_task_withdraw(b, q));
  UVT_OK(uva_sem_release(sm));
  UVT_OK(uva_queue_put_nowait(q, &size));
  UVT_OK(uva_sem_value(&v, sm));
  cr_assert_eq(v, 1, "the permit stays in the semaphore");
  UVT_OK(uva_queue_size(&size, q));
  cr_assert_eq(size, 1, "the item is not claimed");
  /* Neither task is woken by the object any more: wake them to finish. */
  UVT_OK(uva_task_wake(a));
  UVT_OK(uva_task_wake(b));
  UVT_OK(uva_loop_run(loop, UVA_RUN_DEFAULT));
  cr_assert_eq(oa.runs, 2);
  cr_assert_eq(ob.runs, 2);
  UVT_OK(uva_task_release(a));
  UVT_OK(uva_task_release(b));
  UVT_OK(uva_sem_close(sm));
  UVT_OK(uva_queue_close(q));
  UVT_CLOSE_LOOP(loop);
}

Test(withdraw, stream_read_wait, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  uva_server_t *sv;
  uva_stream_t *c;
  uva_task_t *a;
  struct once oa = {call_read, NULL, NULL, 0, 0, 0};
  int port = 0;
  UVT_OK(uva_tcp_listen(&sv, loop, "127.0.0.1", 0, 0));
  UVT_OK(uva_server_address(sv, NULL, 0, &port));
  UVT_OK(uva_tcp_connect(&c, loop, "127.0.0.1", port));
  oa.obj = c;
  UVT_OK(uva_task_spawn(&a, loop, step_once, &oa, NULL));
  pass(loop);
  UVT_EQ(oa.first_rc, UVA_EAGAIN);
  UVT_OK(uva_task_withdraw(a, c));
  UVT_EQ(uva_task_withdraw(a, c), UVA_ENOENT);
  UVT_OK(uva_task_wake(a));
  pass(loop);
  cr_assert_eq(oa.runs, 2);
  UVT_OK(uva_task_release(a));
  UVT_OK(uva_stream_abort(c, NULL, NULL));
  UVT_OK(uva_server_close(sv, NULL, NULL));
  UVT_OK(uva_loop_run(loop, UVA_RUN_DEFAULT));
  UVT_CLOSE_LOOP(loop);
}

Test(withdraw, bad_input, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  uva_event_t *ev;
  UVT_OK(uva_event_new(&ev, loop));
  UVT_EQ(uva_task_withdraw(NULL, ev), UVA_EINVAL);
  UVT_EQ(uva_task_withdraw((uva_task_t *) (void *) ev, ev), UVA_EHANDLEKIND);
  UVT_OK(uva_event_close(ev));
  UVT_CLOSE_LOOP(loop);
}
