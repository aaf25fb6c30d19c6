/* Events (uvasync.h "Synchronisation"): set, clear, waiters woken in FIFO
 * order, and the fairness of wake-ups (a woken task runs after the tasks
 * already ready; busy event tasks do not starve a sleeping one).
 *
 * Waiting follows the "call again" protocol: a call that cannot complete
 * registers the task and returns UVA_EAGAIN, the step returns
 * UVA_TASK_PENDING, and the repeated call after the wake-up completes. Most
 * tests drive the loop one pass at a time (UVA_RUN_NOWAIT) so that every
 * hand-off, wake-up and cancellation happens at a known point. Helpers:
 * support.h. */
#include "support.h"

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
  if (status != 0) return rt->rc = status;
  for (;;) {
    if (r->stop) return rt->rc = 0;
    int rc = uva_event_wait(r->ev[rt->i], t);
    if (rc == UVA_EAGAIN) return UVA_TASK_PENDING;
    if (rc != 0) return rt->rc = rc;
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
    if (late > s->worst_ms) s->worst_ms = late;
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
  cr_log_info(
      "starvation: worst wake-up %.2f ms late, %ld ring steps while "
      "sleeping",
      s.worst_ms, r.steps - s.steps_at_start);
  for (int i = 0; i < RING; i++) {
    cr_assert_eq(rt[i].rc, 0, "ring task %d: %d", i, rt[i].rc);
    UVT_OK(uva_task_release(tasks[i]));
    UVT_OK(uva_event_close(r.ev[i]));
  }
  UVT_OK(uva_task_release(st));
  UVT_CLOSE_LOOP(loop);
}
