/* The scheduling promises of the uasyncio model: passes, fairness, no
 * starvation, blocking in the kernel, prompt cancellation. */
#include "helpers.h"

/* ---- each pass runs only what was ready when it began ------------------ */

/* The pass number is the count of uva_loop_run(NOWAIT) calls made so far:
 * ONCE and NOWAIT do exactly one pass. */
static int pass;

struct seen {
  int pass_of_run[8];
  int runs;
};

static void seen_put(struct seen *s) {
  if (s->runs < 8) s->pass_of_run[s->runs] = pass;
  s->runs++;
}

static int step_seen_park(uva_task_t *t, int status, void *d) {
  (void) t;
  seen_put((struct seen *) d);
  if (status != 0 || ((struct seen *) d)->runs >= 2) return status;
  return UVA_TASK_PENDING;
}

static int step_seen_finish(uva_task_t *t, int status, void *d) {
  (void) t;
  seen_put((struct seen *) d);
  return status;
}

static void call_seen(void *d) { seen_put((struct seen *) d); }

struct spawner {
  uva_loop_t *loop;
  uva_task_t *parked;
  struct seen self, child, woken, call, timer0;
  uva_timer_t *tm;
  int rc;
};

static void timer_seen(uva_timer_t *tm, void *d) {
  (void) tm;
  seen_put((struct seen *) d);
}

static int step_spawner(uva_task_t *t, int status, void *d) {
  struct spawner *s = (struct spawner *) d;
  (void) t;
  seen_put(&s->self);
  if (status != 0) return status;
  if (s->self.runs == 1) {
    s->rc |= uva_task_spawn(NULL, s->loop, step_seen_finish, &s->child, NULL);
    s->rc |= uva_task_wake(s->parked);
    s->rc |= uva_loop_call_soon(s->loop, call_seen, &s->call);
    s->rc |= uva_timer_start(s->tm, 0, 0);
    return UVA_TASK_YIELD;
  }
  return 0;
}

Test(sched, work_made_ready_during_a_pass_runs_in_the_next, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  struct spawner s;
  memset(&s, 0, sizeof s);
  s.loop = loop;
  UVT_OK(uva_timer_new(&s.tm, loop, timer_seen, &s.timer0, NULL));
  /* The parked task runs first in pass 1, then the spawner. */
  UVT_OK(uva_task_spawn(&s.parked, loop, step_seen_park, &s.woken, NULL));
  UVT_OK(uva_task_spawn(NULL, loop, step_spawner, &s, NULL));
  for (pass = 1; pass <= 4; pass++)
    UVT_OK(uva_loop_run(loop, UVA_RUN_NOWAIT));
  cr_assert_eq(s.rc, 0);
  cr_assert_eq(s.self.runs, 2);
  cr_assert_eq(s.self.pass_of_run[0], 1);
  cr_assert_eq(s.self.pass_of_run[1], 2, "yielded task ran in pass %d",
               s.self.pass_of_run[1]);
  cr_assert_eq(s.woken.runs, 2);
  cr_assert_eq(s.woken.pass_of_run[0], 1);
  cr_assert_eq(s.woken.pass_of_run[1], 2, "woken task ran in pass %d",
               s.woken.pass_of_run[1]);
  cr_assert_eq(s.child.runs, 1);
  cr_assert_eq(s.child.pass_of_run[0], 2, "spawned task ran in pass %d",
               s.child.pass_of_run[0]);
  cr_assert_eq(s.call.runs, 1);
  cr_assert_eq(s.call.pass_of_run[0], 2, "call_soon ran in pass %d",
               s.call.pass_of_run[0]);
  cr_assert_eq(s.timer0.runs, 1);
  cr_assert_eq(s.timer0.pass_of_run[0], 2, "0 ms timer ran in pass %d",
               s.timer0.pass_of_run[0]);
  UVT_OK(uva_task_release(s.parked));
  UVT_OK(uva_timer_close(s.tm, NULL));
  UVT_OK(uva_loop_run(loop, UVA_RUN_DEFAULT));
  UVT_CLOSE_LOOP(loop);
}

/* A task that wakes itself, or a callback that re-posts itself, runs once
 * per pass: a pass always ends. */
static int step_wake_self_forever(uva_task_t *t, int status, void *d) {
  ++*(int *) d;
  if (status != 0) return status;
  return uva_task_wake(t) == 0 ? UVA_TASK_PENDING : UVA_EINTERNAL;
}

struct repost {
  uva_loop_t *loop;
  int runs;
  int stop;
};

static void call_repost(void *d) {
  struct repost *r = (struct repost *) d;
  r->runs++;
  if (!r->stop) uva_loop_call_soon(r->loop, call_repost, r);
}

Test(sched, self_rescheduling_work_runs_once_per_pass, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  struct repost rp = {NULL, 0, 0};
  uva_task_t *t;
  int runs = 0;
  rp.loop = loop;
  UVT_OK(uva_task_spawn(&t, loop, step_wake_self_forever, &runs, NULL));
  UVT_OK(uva_loop_call_soon(loop, call_repost, &rp));
  for (pass = 1; pass <= 5; pass++)
    UVT_OK(uva_loop_run(loop, UVA_RUN_NOWAIT));
  cr_assert_eq(runs, 5);
  cr_assert_eq(rp.runs, 5);
  rp.stop = 1;
  UVT_OK(uva_task_cancel(t));
  UVT_OK(uva_loop_run(loop, UVA_RUN_DEFAULT));
  cr_assert_eq(runs, 6);
  cr_assert_eq(rp.runs, 6);
  UVT_OK(uva_task_release(t));
  UVT_OK(uva_loop_run(loop, UVA_RUN_DEFAULT));
  UVT_CLOSE_LOOP(loop);
}

/* ---- fairness ---------------------------------------------------------- */

static char trace[256];
static int trace_len;

struct rr {
  char name;
  int left;
};

static int step_rr(uva_task_t *t, int status, void *d) {
  struct rr *r = (struct rr *) d;
  (void) t;
  if (status != 0) return status;
  if (trace_len < (int) sizeof trace - 1) trace[trace_len++] = r->name;
  trace[trace_len] = '\0';
  return --r->left > 0 ? UVA_TASK_YIELD : 0;
}

Test(sched, yielding_tasks_run_round_robin, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  struct rr r[5];
  char want[64];
  int i;
  trace_len = 0;
  trace[0] = '\0';
  for (i = 0; i < 5; i++) {
    r[i].name = (char) ('A' + i);
    r[i].left = 10;
    UVT_OK(uva_task_spawn(NULL, loop, step_rr, &r[i], NULL));
  }
  UVT_OK(uva_loop_run(loop, UVA_RUN_DEFAULT));
  for (i = 0; i < 50; i++)
    want[i] = (char) ('A' + i % 5);
  want[50] = '\0';
  cr_assert_str_eq(trace, want);
  UVT_CLOSE_LOOP(loop);
}

/* Uneven lengths: the rest keep their order when one finishes. */
Test(sched, round_robin_survives_finishing_tasks, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  struct rr r[3] = {{'A', 3}, {'B', 1}, {'C', 2}};
  int i;
  trace_len = 0;
  trace[0] = '\0';
  for (i = 0; i < 3; i++)
    UVT_OK(uva_task_spawn(NULL, loop, step_rr, &r[i], NULL));
  UVT_OK(uva_loop_run(loop, UVA_RUN_DEFAULT));
  cr_assert_str_eq(trace, "ABCACA");
  UVT_CLOSE_LOOP(loop);
}

/* ---- no starvation ----------------------------------------------------- */

struct starve {
  uva_task_t *spinner;
  int spins;
  int spinner_status;
  int sleeper_runs;
  int timer_fired;
  double t0, sleeper_woke, timer_at;
  int cancel_rc;
};

static int step_spinner(uva_task_t *t, int status, void *d) {
  struct starve *s = (struct starve *) d;
  (void) t;
  if (status != 0) {
    s->spinner_status = status;
    return status;
  }
  s->spins++;
  return UVA_TASK_YIELD;
}

static int step_canceller(uva_task_t *t, int status, void *d) {
  struct starve *s = (struct starve *) d;
  if (status != 0) return status;
  if (++s->sleeper_runs == 1) {
    if (uva_task_sleep(t, 20) != 0) return UVA_EINTERNAL;
    return UVA_TASK_PENDING;
  }
  s->sleeper_woke = uvt_ms();
  s->cancel_rc = uva_task_cancel(s->spinner);
  return 0;
}

static void starve_timer_cb(uva_timer_t *tm, void *d) {
  struct starve *s = (struct starve *) d;
  (void) tm;
  s->timer_fired++;
  s->timer_at = uvt_ms();
}

Test(sched, yielding_task_does_not_starve_timers_or_sleepers, .timeout = 20) {
  uva_loop_t *loop = uvt_loop_new();
  struct starve s;
  uva_timer_t *tm;
  int r = 1;
  memset(&s, 0, sizeof s);
  s.cancel_rc = 1;
  s.t0 = uvt_ms();
  UVT_OK(uva_task_spawn(&s.spinner, loop, step_spinner, &s, NULL));
  UVT_OK(uva_task_spawn(NULL, loop, step_canceller, &s, NULL));
  UVT_OK(uva_timer_new(&tm, loop, starve_timer_cb, &s, NULL));
  UVT_OK(uva_timer_start(tm, 15, 0));
  UVT_OK(uva_loop_run(loop, UVA_RUN_DEFAULT));
  cr_assert_eq(s.timer_fired, 1);
  cr_assert_eq(s.sleeper_runs, 2);
  cr_assert_eq(s.cancel_rc, 0);
  cr_assert_eq(s.spinner_status, UVA_ECANCELED);
  cr_assert_gt(s.spins, 1);
  cr_assert_geq(s.timer_at - s.t0, 15.0);
  cr_assert_lt(s.timer_at - s.t0, 500 * uvt_mult(), "timer late by %.1f ms",
               s.timer_at - s.t0 - 15);
  cr_assert_geq(s.sleeper_woke - s.t0, 20.0);
  cr_assert_lt(s.sleeper_woke - s.t0, 500 * uvt_mult(),
               "sleeper late by %.1f ms", s.sleeper_woke - s.t0 - 20);
  UVT_OK(uva_task_result(&r, s.spinner));
  cr_assert_eq(r, UVA_ECANCELED);
  UVT_OK(uva_timer_close(tm, NULL));
  UVT_OK(uva_task_release(s.spinner));
  UVT_OK(uva_loop_run(loop, UVA_RUN_DEFAULT));
  UVT_CLOSE_LOOP(loop);
}

/* A cross-thread call is not starved by a yielding task either. */
struct xstarve {
  uva_loop_t *loop;
  uva_task_t *spinner;
  int called;
};

static void xcall_cancel(void *d) {
  struct xstarve *x = (struct xstarve *) d;
  x->called++;
  uva_task_cancel(x->spinner);
}

static void *xstarve_thread(void *arg) {
  struct xstarve *x = (struct xstarve *) arg;
  uvt_sleep_ms(20);
  return (void *) (intptr_t) uva_loop_call_soon_threadsafe(x->loop,
                                                           xcall_cancel, x);
}

Test(sched, yielding_task_does_not_starve_threadsafe_calls, .timeout = 20) {
  struct xstarve x;
  struct starve s;
  pthread_t th;
  void *rc;
  memset(&s, 0, sizeof s);
  x.loop = uvt_loop_new();
  x.called = 0;
  UVT_OK(uva_task_spawn(&x.spinner, x.loop, step_spinner, &s, NULL));
  cr_assert_eq(pthread_create(&th, NULL, xstarve_thread, &x), 0);
  UVT_OK(uva_loop_run(x.loop, UVA_RUN_DEFAULT));
  cr_assert_eq(pthread_join(th, &rc), 0);
  cr_assert_eq((int) (intptr_t) rc, 0);
  cr_assert_eq(x.called, 1);
  cr_assert_eq(s.spinner_status, UVA_ECANCELED);
  UVT_OK(uva_task_release(x.spinner));
  UVT_OK(uva_loop_run(x.loop, UVA_RUN_DEFAULT));
  UVT_CLOSE_LOOP(x.loop);
}

/* ---- sleeping costs no CPU --------------------------------------------- */

struct sleep1 {
  int runs;
  int *finished;
};

static int step_sleep_once_1s(uva_task_t *t, int status, void *d) {
  struct sleep1 *s = (struct sleep1 *) d;
  if (status != 0) return status;
  if (++s->runs == 1) {
    if (uva_task_sleep(t, 1000) != 0) return UVA_EINTERNAL;
    return UVA_TASK_PENDING;
  }
  ++*s->finished;
  return 0;
}

#define SLEEPERS 1000

Test(sched, sleeping_tasks_block_in_the_kernel, .timeout = 30) {
  uva_loop_t *loop = uvt_loop_new();
  static struct sleep1 s[SLEEPERS];
  int finished = 0, i;
  double cpu0, wall0, cpu, wall;
  for (i = 0; i < SLEEPERS; i++) {
    s[i].runs = 0;
    s[i].finished = &finished;
    UVT_OK(uva_task_spawn(NULL, loop, step_sleep_once_1s, &s[i], NULL));
  }
  cpu0 = uvt_cpu_ms();
  wall0 = uvt_ms();
  UVT_OK(uva_loop_run(loop, UVA_RUN_DEFAULT));
  cpu = uvt_cpu_ms() - cpu0;
  wall = uvt_ms() - wall0;
  cr_assert_eq(finished, SLEEPERS);
  cr_assert_geq(wall, 1000.0);
  /* Under 5 % of one core over the ~1 s run. */
  cr_assert_lt(cpu, 50 * uvt_mult(),
               "%d sleepers burnt %.1f ms of CPU in %.1f ms", SLEEPERS, cpu,
               wall);
  UVT_CLOSE_LOOP(loop);
}

/* ---- prompt cancellation ----------------------------------------------- */

struct prompt {
  uva_task_t *sleeper;
  double cancelled_at, resumed_at;
  int status2;
  int runs;
  int canceller_runs;
};

static int step_prompt_sleeper(uva_task_t *t, int status, void *d) {
  struct prompt *p = (struct prompt *) d;
  if (++p->runs == 1 && status == 0) {
    if (uva_task_sleep(t, 10000) != 0) return UVA_EINTERNAL;
    return UVA_TASK_PENDING;
  }
  p->resumed_at = uvt_ms();
  p->status2 = status;
  return status;
}

static int step_prompt_canceller(uva_task_t *t, int status, void *d) {
  struct prompt *p = (struct prompt *) d;
  if (status != 0) return status;
  if (++p->canceller_runs == 1) {
    if (uva_task_sleep(t, 20) != 0) return UVA_EINTERNAL;
    return UVA_TASK_PENDING;
  }
  p->cancelled_at = uvt_ms();
  return uva_task_cancel(p->sleeper);
}

Test(sched, cancel_of_a_10s_sleep_resumes_within_10ms, .timeout = 20) {
  uva_loop_t *loop = uvt_loop_new();
  struct prompt p;
  double lag;
  memset(&p, 0, sizeof p);
  p.status2 = 1;
  UVT_OK(uva_task_spawn(&p.sleeper, loop, step_prompt_sleeper, &p, NULL));
  UVT_OK(uva_task_spawn(NULL, loop, step_prompt_canceller, &p, NULL));
  UVT_OK(uva_loop_run(loop, UVA_RUN_DEFAULT));
  cr_assert_eq(p.runs, 2);
  cr_assert_eq(p.status2, UVA_ECANCELED);
  lag = p.resumed_at - p.cancelled_at;
  /* The promise is 10 ms; 50 ms (scaled) leaves room for a loaded CI box. */
  cr_assert_lt(lag, 50 * uvt_mult(), "resumed %.2f ms after the cancel", lag);
  UVT_OK(uva_task_release(p.sleeper));
  UVT_OK(uva_loop_run(loop, UVA_RUN_DEFAULT));
  UVT_CLOSE_LOOP(loop);
}
