/* Timers: one-shot, repeat, timeout 0, stop, restart, close, ordering,
 * precision (uvasync.h "Timer"). */
#include "helpers.h"

struct tprobe {
  int fired;
  double t[16];
  int stop_at;  /* stop inside the callback at this count (0: never) */
  int close_at; /* close inside the callback at this count (0: never) */
  int rc;
};

static void probe_cb(uva_timer_t *tm, void *d) {
  struct tprobe *p = (struct tprobe *) d;
  if (p->fired < 16) p->t[p->fired] = uvt_ms();
  p->fired++;
  if (p->stop_at != 0 && p->fired == p->stop_at) p->rc = uva_timer_stop(tm);
  if (p->close_at != 0 && p->fired == p->close_at)
    p->rc = uva_timer_close(tm, NULL);
}

Test(timer, one_shot_fires_once_after_timeout, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  struct tprobe p;
  uva_timer_t *tm;
  int active = -1;
  double t0;
  memset(&p, 0, sizeof p);
  UVT_OK(uva_timer_new(&tm, loop, probe_cb, &p, NULL));
  UVT_OK(uva_timer_active(&active, tm));
  cr_assert_eq(active, 0);
  t0 = uvt_ms();
  UVT_OK(uva_timer_start(tm, 30, 0));
  UVT_OK(uva_timer_active(&active, tm));
  cr_assert_eq(active, 1);
  UVT_OK(uva_loop_run(loop, UVA_RUN_DEFAULT));
  cr_assert_eq(p.fired, 1);
  cr_assert_geq(p.t[0] - t0, 30.0, "fired after %.3f ms", p.t[0] - t0);
  cr_assert_lt(p.t[0] - t0, 30 + 500 * uvt_mult());
  UVT_OK(uva_timer_active(&active, tm));
  cr_assert_eq(active, 0);
  UVT_OK(uva_loop_run(loop, UVA_RUN_NOWAIT));
  cr_assert_eq(p.fired, 1);
  UVT_OK(uva_timer_close(tm, NULL));
  UVT_OK(uva_loop_run(loop, UVA_RUN_DEFAULT));
  UVT_CLOSE_LOOP(loop);
}

Test(timer, repeating_fires_until_stopped_in_callback, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  struct tprobe p;
  uva_timer_t *tm;
  int active = -1;
  double t0;
  memset(&p, 0, sizeof p);
  p.stop_at = 5;
  UVT_OK(uva_timer_new(&tm, loop, probe_cb, &p, NULL));
  t0 = uvt_ms();
  UVT_OK(uva_timer_start(tm, 10, 5));
  UVT_OK(uva_loop_run(loop, UVA_RUN_DEFAULT));
  cr_assert_eq(p.rc, 0);
  cr_assert_eq(p.fired, 5);
  cr_assert_geq(p.t[0] - t0, 10.0);
  cr_assert_geq(p.t[4] - t0, 10.0 + 4 * 5, "5th fire after %.3f ms",
                p.t[4] - t0);
  UVT_OK(uva_timer_active(&active, tm));
  cr_assert_eq(active, 0);
  UVT_OK(uva_timer_close(tm, NULL));
  UVT_OK(uva_loop_run(loop, UVA_RUN_DEFAULT));
  cr_assert_eq(p.fired, 5);
  UVT_CLOSE_LOOP(loop);
}

Test(timer, repeating_timer_stays_active, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  struct tprobe p;
  uva_timer_t *tm;
  int active = -1;
  memset(&p, 0, sizeof p);
  UVT_OK(uva_timer_new(&tm, loop, probe_cb, &p, NULL));
  UVT_OK(uva_timer_start(tm, 1, 1));
  while (p.fired < 3)
    UVT_OK(uva_loop_run(loop, UVA_RUN_ONCE));
  UVT_OK(uva_timer_active(&active, tm));
  cr_assert_eq(active, 1);
  UVT_OK(uva_timer_close(tm, NULL));
  UVT_OK(uva_loop_run(loop, UVA_RUN_DEFAULT));
  UVT_CLOSE_LOOP(loop);
}

Test(timer, timeout_0_fires_at_next_pass, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  struct tprobe p;
  uva_timer_t *tm;
  memset(&p, 0, sizeof p);
  UVT_OK(uva_timer_new(&tm, loop, probe_cb, &p, NULL));
  UVT_OK(uva_timer_start(tm, 0, 0));
  cr_assert_eq(p.fired, 0, "fired inside uva_timer_start");
  UVT_OK(uva_loop_run(loop, UVA_RUN_NOWAIT));
  cr_assert_eq(p.fired, 1);
  UVT_OK(uva_loop_run(loop, UVA_RUN_NOWAIT));
  cr_assert_eq(p.fired, 1);
  UVT_OK(uva_timer_close(tm, NULL));
  UVT_OK(uva_loop_run(loop, UVA_RUN_DEFAULT));
  UVT_CLOSE_LOOP(loop);
}

/* Started during pass k, a 0 ms timer fires in pass k+1, not k. */
static int step_start_timer0(uva_task_t *t, int status, void *d) {
  (void) t;
  (void) status;
  return uva_timer_start((uva_timer_t *) d, 0, 0);
}

Test(timer, timeout_0_started_in_a_step_fires_next_pass, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  struct tprobe p;
  uva_timer_t *tm;
  uva_task_t *t;
  int r = 1;
  memset(&p, 0, sizeof p);
  UVT_OK(uva_timer_new(&tm, loop, probe_cb, &p, NULL));
  UVT_OK(uva_task_spawn(&t, loop, step_start_timer0, tm, NULL));
  UVT_OK(uva_loop_run(loop, UVA_RUN_NOWAIT));
  UVT_OK(uva_task_result(&r, t));
  cr_assert_eq(r, 0);
  cr_assert_eq(p.fired, 0, "fired in the pass that started it");
  UVT_OK(uva_loop_run(loop, UVA_RUN_NOWAIT));
  cr_assert_eq(p.fired, 1);
  UVT_OK(uva_task_release(t));
  UVT_OK(uva_timer_close(tm, NULL));
  UVT_OK(uva_loop_run(loop, UVA_RUN_DEFAULT));
  UVT_CLOSE_LOOP(loop);
}

Test(timer, stop_prevents_firing, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  struct tprobe p;
  uva_timer_t *tm;
  int active = -1;
  double t0;
  memset(&p, 0, sizeof p);
  UVT_OK(uva_timer_new(&tm, loop, probe_cb, &p, NULL));
  UVT_OK(uva_timer_stop(tm)); /* stopping a stopped timer does nothing */
  UVT_OK(uva_timer_start(tm, 20, 0));
  UVT_OK(uva_timer_stop(tm));
  UVT_OK(uva_timer_active(&active, tm));
  cr_assert_eq(active, 0);
  t0 = uvt_ms();
  UVT_OK(uva_loop_run(loop, UVA_RUN_DEFAULT)); /* nothing keeps it alive */
  cr_assert_lt(uvt_ms() - t0, 1000 * uvt_mult(),
               "a stopped timer kept the loop running");
  cr_assert_eq(p.fired, 0);
  uvt_sleep_ms(30);
  UVT_OK(uva_loop_run(loop, UVA_RUN_NOWAIT));
  cr_assert_eq(p.fired, 0);
  UVT_OK(uva_timer_stop(tm));
  /* And it can be started again. */
  UVT_OK(uva_timer_start(tm, 1, 0));
  UVT_OK(uva_loop_run(loop, UVA_RUN_DEFAULT));
  cr_assert_eq(p.fired, 1);
  UVT_OK(uva_timer_close(tm, NULL));
  UVT_OK(uva_loop_run(loop, UVA_RUN_DEFAULT));
  UVT_CLOSE_LOOP(loop);
}

/* A stops B when both are due in the same pass: B does not fire. */
struct pair {
  uva_timer_t *other;
  int fired_a, fired_b;
  int close_other; /* 1: close B, 0: stop B */
};

static void pair_a_cb(uva_timer_t *tm, void *d) {
  struct pair *p = (struct pair *) d;
  (void) tm;
  p->fired_a++;
  if (p->close_other)
    uva_timer_close(p->other, NULL);
  else
    uva_timer_stop(p->other);
}

static void pair_b_cb(uva_timer_t *tm, void *d) {
  (void) tm;
  ((struct pair *) d)->fired_b++;
}

static void pair_scenario(int close_other) {
  uva_loop_t *loop = uvt_loop_new();
  struct pair p;
  uva_timer_t *a;
  memset(&p, 0, sizeof p);
  p.close_other = close_other;
  UVT_OK(uva_timer_new(&a, loop, pair_a_cb, &p, NULL));
  UVT_OK(uva_timer_new(&p.other, loop, pair_b_cb, &p, NULL));
  UVT_OK(uva_timer_start(a, 10, 0));
  UVT_OK(uva_timer_start(p.other, 10, 0));
  UVT_OK(uva_loop_run(loop, UVA_RUN_DEFAULT));
  cr_assert_eq(p.fired_a, 1);
  cr_assert_eq(p.fired_b, 0, "B fired after A %s it",
               close_other ? "closed" : "stopped");
  UVT_OK(uva_timer_close(a, NULL));
  if (!close_other) UVT_OK(uva_timer_close(p.other, NULL));
  UVT_OK(uva_loop_run(loop, UVA_RUN_DEFAULT));
  UVT_CLOSE_LOOP(loop);
}

Test(timer, stop_of_a_due_timer_prevents_its_callback, .timeout = 10) {
  pair_scenario(0);
}

Test(timer, close_of_a_due_timer_prevents_its_callback, .timeout = 10) {
  pair_scenario(1);
}

/* ---- restart ----------------------------------------------------------- */

struct restarter {
  uva_timer_t *tm;
  int64_t new_timeout;
  int rc;
  int runs;
  double restarted_at;
};

static int step_restart_after_20ms(uva_task_t *t, int status, void *d) {
  struct restarter *r = (struct restarter *) d;
  if (status != 0) return status;
  if (++r->runs == 1) {
    if (uva_task_sleep(t, 20) != 0) return UVA_EINTERNAL;
    return UVA_TASK_PENDING;
  }
  r->restarted_at = uvt_ms();
  r->rc = uva_timer_start(r->tm, r->new_timeout, 0);
  return 0;
}

Test(timer, start_on_active_timer_reschedules_later, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  struct tprobe p;
  struct restarter r;
  double t0;
  memset(&p, 0, sizeof p);
  memset(&r, 0, sizeof r);
  r.new_timeout = 50;
  r.rc = 1;
  UVT_OK(uva_timer_new(&r.tm, loop, probe_cb, &p, NULL));
  t0 = uvt_ms();
  UVT_OK(uva_timer_start(r.tm, 50, 0));
  UVT_OK(uva_task_spawn(NULL, loop, step_restart_after_20ms, &r, NULL));
  UVT_OK(uva_loop_run(loop, UVA_RUN_DEFAULT));
  cr_assert_eq(r.rc, 0);
  cr_assert_eq(p.fired, 1, "fired %d times", p.fired);
  cr_assert_geq(p.t[0] - r.restarted_at, 50.0,
                "fired %.3f ms after the restart", p.t[0] - r.restarted_at);
  cr_assert_geq(p.t[0] - t0, 70.0);
  UVT_OK(uva_timer_close(r.tm, NULL));
  UVT_OK(uva_loop_run(loop, UVA_RUN_DEFAULT));
  UVT_CLOSE_LOOP(loop);
}

Test(timer, start_on_active_timer_reschedules_earlier, .timeout = 20) {
  uva_loop_t *loop = uvt_loop_new();
  struct tprobe p;
  struct restarter r;
  double t0;
  memset(&p, 0, sizeof p);
  memset(&r, 0, sizeof r);
  r.new_timeout = 10;
  r.rc = 1;
  UVT_OK(uva_timer_new(&r.tm, loop, probe_cb, &p, NULL));
  t0 = uvt_ms();
  UVT_OK(uva_timer_start(r.tm, 10000, 0));
  UVT_OK(uva_task_spawn(NULL, loop, step_restart_after_20ms, &r, NULL));
  UVT_OK(uva_loop_run(loop, UVA_RUN_DEFAULT));
  cr_assert_eq(r.rc, 0);
  cr_assert_eq(p.fired, 1);
  cr_assert_geq(p.t[0] - r.restarted_at, 10.0);
  cr_assert_lt(p.t[0] - t0, 1000 * uvt_mult(), "the old 10 s deadline held");
  UVT_OK(uva_timer_close(r.tm, NULL));
  UVT_OK(uva_loop_run(loop, UVA_RUN_DEFAULT));
  UVT_CLOSE_LOOP(loop);
}

static void restart_self_cb(uva_timer_t *tm, void *d) {
  struct tprobe *p = (struct tprobe *) d;
  if (++p->fired < 4) p->rc |= uva_timer_start(tm, 2, 0);
}

Test(timer, restart_from_own_callback, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  struct tprobe p;
  uva_timer_t *tm;
  memset(&p, 0, sizeof p);
  UVT_OK(uva_timer_new(&tm, loop, restart_self_cb, &p, NULL));
  UVT_OK(uva_timer_start(tm, 2, 0));
  UVT_OK(uva_loop_run(loop, UVA_RUN_DEFAULT));
  cr_assert_eq(p.rc, 0);
  cr_assert_eq(p.fired, 4);
  UVT_OK(uva_timer_close(tm, NULL));
  UVT_OK(uva_loop_run(loop, UVA_RUN_DEFAULT));
  UVT_CLOSE_LOOP(loop);
}

/* ---- close ------------------------------------------------------------- */

struct close_log {
  char seq[16];
  int n;
  int close_calls;
  int dtor_calls;
  uva_timer_t *closed_handle;
  void *close_data;
};

static struct close_log cl;

static void log_close_cb(uva_timer_t *tm, void *d) {
  cl.close_calls++;
  cl.closed_handle = tm;
  cl.close_data = d;
  if (cl.n < 15) cl.seq[cl.n++] = 'c';
}

static void log_dtor(void *d) {
  (void) d;
  cl.dtor_calls++;
  if (cl.n < 15) cl.seq[cl.n++] = 'd';
}

Test(timer, close_before_it_fires, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  struct tprobe p;
  uva_timer_t *tm;
  memset(&p, 0, sizeof p);
  memset(&cl, 0, sizeof cl);
  UVT_OK(uva_timer_new(&tm, loop, probe_cb, &p, log_dtor));
  UVT_OK(uva_timer_start(tm, 10, 0));
  UVT_OK(uva_timer_close(tm, log_close_cb));
  cr_assert_eq(cl.close_calls, 0, "close_cb ran inside uva_timer_close");
  cr_assert_eq(cl.dtor_calls, 0);
  UVT_OK(uva_loop_run(loop, UVA_RUN_DEFAULT));
  uvt_sleep_ms(20);
  UVT_OK(uva_loop_run(loop, UVA_RUN_NOWAIT));
  cr_assert_eq(p.fired, 0, "fired after close");
  cr_assert_eq(cl.close_calls, 1);
  cr_assert_eq(cl.closed_handle, tm);
  cr_assert_eq(cl.close_data, &p);
  UVT_CLOSE_LOOP(loop);
  cr_assert_eq(cl.close_calls, 1);
  cr_assert_eq(cl.dtor_calls, 1);
  cr_assert_str_eq(cl.seq, "cd", "close_cb then destructor, got %s", cl.seq);
}

Test(timer, close_inside_own_callback, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  struct tprobe p;
  uva_timer_t *tm;
  memset(&p, 0, sizeof p);
  p.close_at = 3;
  UVT_OK(uva_timer_new(&tm, loop, probe_cb, &p, NULL));
  UVT_OK(uva_timer_start(tm, 1, 1));
  UVT_OK(uva_loop_run(loop, UVA_RUN_DEFAULT));
  cr_assert_eq(p.rc, 0);
  cr_assert_eq(p.fired, 3);
  UVT_CLOSE_LOOP(loop);
  cr_assert_eq(p.fired, 3);
}

Test(timer, close_without_close_cb_still_destroys_data, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  uva_timer_t *tm;
  int fired = 0;
  memset(&cl, 0, sizeof cl);
  UVT_OK(uva_timer_new(&tm, loop, uvt_timer_count_cb, &fired, log_dtor));
  UVT_OK(uva_timer_close(tm, NULL));
  UVT_OK(uva_timer_close(tm, log_close_cb)); /* pending: does nothing */
  UVT_OK(uva_loop_run(loop, UVA_RUN_DEFAULT));
  UVT_CLOSE_LOOP(loop);
  cr_assert_eq(cl.dtor_calls, 1);
  cr_assert_eq(cl.close_calls, 0, "the second close's callback ran");
  cr_assert_eq(fired, 0);
}

Test(timer, get_data, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  uva_timer_t *tm;
  int x;
  void *p = NULL;
  UVT_OK(uva_timer_new(&tm, loop, uvt_timer_count_cb, &x, NULL));
  UVT_OK(uva_timer_get_data(&p, tm));
  cr_assert_eq(p, &x);
  UVT_OK(uva_timer_close(tm, NULL));
  UVT_OK(uva_loop_run(loop, UVA_RUN_DEFAULT));
  UVT_CLOSE_LOOP(loop);
}

/* ---- ordering ---------------------------------------------------------- */

static char order[64];
static int order_len;

static void order_put(char c) {
  if (order_len < (int) sizeof order - 1) order[order_len++] = c;
  order[order_len] = '\0';
}

static void order_timer_cb(uva_timer_t *tm, void *d) {
  (void) tm;
  order_put(*(const char *) d);
}

struct order_task {
  uva_timer_t *a, *b;
  int runs;
  int rc;
};

static int step_order(uva_task_t *t, int status, void *d) {
  struct order_task *o = (struct order_task *) d;
  if (status != 0) return status;
  if (++o->runs == 1) {
    o->rc |= uva_timer_start(o->a, 20, 0);
    o->rc |= uva_task_sleep(t, 20);
    o->rc |= uva_timer_start(o->b, 20, 0);
    return UVA_TASK_PENDING;
  }
  order_put('T');
  return 0;
}

Test(timer, same_deadline_fires_in_start_order_with_sleeps, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  struct order_task o;
  memset(&o, 0, sizeof o);
  order_len = 0;
  order[0] = '\0';
  UVT_OK(uva_timer_new(&o.a, loop, order_timer_cb, "A", NULL));
  UVT_OK(uva_timer_new(&o.b, loop, order_timer_cb, "B", NULL));
  UVT_OK(uva_task_spawn(NULL, loop, step_order, &o, NULL));
  UVT_OK(uva_loop_run(loop, UVA_RUN_DEFAULT));
  cr_assert_eq(o.rc, 0);
  cr_assert_str_eq(order, "ATB");
  UVT_OK(uva_timer_close(o.a, NULL));
  UVT_OK(uva_timer_close(o.b, NULL));
  UVT_OK(uva_loop_run(loop, UVA_RUN_DEFAULT));
  UVT_CLOSE_LOOP(loop);
}

Test(timer, same_deadline_fifo, .timeout = 10) {
  static const char names[] = "abcdefghijklmnopqrstuvwxyz";
  uva_loop_t *loop = uvt_loop_new();
  uva_timer_t *tm[26];
  int i;
  order_len = 0;
  order[0] = '\0';
  for (i = 0; i < 26; i++) {
    UVT_OK(
        uva_timer_new(&tm[i], loop, order_timer_cb, (void *) &names[i], NULL));
  }
  /* Started one after the other: deadlines never decrease, and equal ones
   * keep the start order. */
  for (i = 0; i < 26; i++)
    UVT_OK(uva_timer_start(tm[i], 15, 0));
  UVT_OK(uva_loop_run(loop, UVA_RUN_DEFAULT));
  cr_assert_str_eq(order, names);
  for (i = 0; i < 26; i++)
    UVT_OK(uva_timer_close(tm[i], NULL));
  UVT_OK(uva_loop_run(loop, UVA_RUN_DEFAULT));
  UVT_CLOSE_LOOP(loop);
}

/* A 0 ms timer started after another timer became due fires after it: the
 * earlier deadline (and the earlier start) goes first. */
Test(timer, zero_timeout_does_not_overtake_a_due_timer, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  uva_timer_t *a, *b;
  double t0;
  order_len = 0;
  order[0] = '\0';
  UVT_OK(uva_timer_new(&a, loop, order_timer_cb, "A", NULL));
  UVT_OK(uva_timer_new(&b, loop, order_timer_cb, "B", NULL));
  UVT_OK(uva_timer_start(a, 1, 0));
  t0 = uvt_ms();
  while (uvt_ms() - t0 < 5) {
  } /* A is due now */
  UVT_OK(uva_timer_start(b, 0, 0));
  UVT_OK(uva_loop_run(loop, UVA_RUN_DEFAULT));
  cr_assert_str_eq(order, "AB");
  UVT_OK(uva_timer_close(a, NULL));
  UVT_OK(uva_timer_close(b, NULL));
  UVT_OK(uva_loop_run(loop, UVA_RUN_DEFAULT));
  UVT_CLOSE_LOOP(loop);
}

/* The same between a task's sleep(1) and a later 0 ms timer. */
struct sleep_then_timer {
  uva_timer_t *b;
  int runs;
  int rc;
};

static int step_sleep1_then_start_b(uva_task_t *t, int status, void *d) {
  struct sleep_then_timer *s = (struct sleep_then_timer *) d;
  double t0;
  if (status != 0) return status;
  if (++s->runs == 1) {
    s->rc |= uva_task_sleep(t, 1);
    t0 = uvt_ms();
    while (uvt_ms() - t0 < 5) {
    } /* the sleep is over */
    s->rc |= uva_timer_start(s->b, 0, 0);
    return UVA_TASK_PENDING;
  }
  order_put('T');
  return 0;
}

Test(timer, zero_timeout_does_not_overtake_an_ended_sleep, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  struct sleep_then_timer s;
  memset(&s, 0, sizeof s);
  order_len = 0;
  order[0] = '\0';
  UVT_OK(uva_timer_new(&s.b, loop, order_timer_cb, "B", NULL));
  UVT_OK(uva_task_spawn(NULL, loop, step_sleep1_then_start_b, &s, NULL));
  UVT_OK(uva_loop_run(loop, UVA_RUN_DEFAULT));
  cr_assert_eq(s.rc, 0);
  cr_assert_str_eq(order, "TB");
  UVT_OK(uva_timer_close(s.b, NULL));
  UVT_OK(uva_loop_run(loop, UVA_RUN_DEFAULT));
  UVT_CLOSE_LOOP(loop);
}

/* ---- precision --------------------------------------------------------- */

static const int64_t precision_ms[] = {1, 2, 5, 10, 25};
#define PREC_N ((int) (sizeof precision_ms / sizeof precision_ms[0]))
#define PREC_REPS 5

struct precision {
  int i;
  double started;
  double worst_early; /* most negative (elapsed - ms) */
  int early;
  int64_t early_ms;
  double early_elapsed;
  int rc;
};

static int step_precision(uva_task_t *t, int status, void *d) {
  struct precision *p = (struct precision *) d;
  if (status != 0) return status;
  if (p->i > 0) {
    int64_t ms = precision_ms[(p->i - 1) % PREC_N];
    double el = uvt_ms() - p->started;
    if (el < (double) ms) {
      p->early++;
      p->early_ms = ms;
      p->early_elapsed = el;
    }
  }
  if (p->i == PREC_N * PREC_REPS) return 0;
  p->started = uvt_ms();
  p->rc = uva_task_sleep(t, precision_ms[p->i % PREC_N]);
  p->i++;
  return p->rc == 0 ? UVA_TASK_PENDING : p->rc;
}

Test(timer, sleep_never_ends_early, .timeout = 20) {
  uva_loop_t *loop = uvt_loop_new();
  struct precision p;
  memset(&p, 0, sizeof p);
  UVT_OK(uva_task_spawn(NULL, loop, step_precision, &p, NULL));
  UVT_OK(uva_loop_run(loop, UVA_RUN_DEFAULT));
  cr_assert_eq(p.rc, 0);
  cr_assert_eq(p.i, PREC_N * PREC_REPS);
  cr_assert_eq(p.early, 0,
               "%d sleeps ended early, e.g. sleep(%lld) after %.3f ms", p.early,
               (long long) p.early_ms, p.early_elapsed);
  UVT_CLOSE_LOOP(loop);
}

static void precision_timer_cb(uva_timer_t *tm, void *d) {
  struct precision *p = (struct precision *) d;
  int64_t ms = precision_ms[p->i % PREC_N];
  double el = uvt_ms() - p->started;
  if (el < (double) ms) {
    p->early++;
    p->early_ms = ms;
    p->early_elapsed = el;
  }
  if (++p->i < PREC_N * PREC_REPS) {
    p->started = uvt_ms();
    p->rc |= uva_timer_start(tm, precision_ms[p->i % PREC_N], 0);
  }
}

Test(timer, timer_never_fires_early, .timeout = 20) {
  uva_loop_t *loop = uvt_loop_new();
  struct precision p;
  uva_timer_t *tm;
  memset(&p, 0, sizeof p);
  UVT_OK(uva_timer_new(&tm, loop, precision_timer_cb, &p, NULL));
  p.started = uvt_ms();
  UVT_OK(uva_timer_start(tm, precision_ms[0], 0));
  UVT_OK(uva_loop_run(loop, UVA_RUN_DEFAULT));
  cr_assert_eq(p.rc, 0);
  cr_assert_eq(p.i, PREC_N * PREC_REPS);
  cr_assert_eq(p.early, 0,
               "%d timers fired early, e.g. start(%lld) after %.3f ms", p.early,
               (long long) p.early_ms, p.early_elapsed);
  UVT_OK(uva_timer_close(tm, NULL));
  UVT_OK(uva_loop_run(loop, UVA_RUN_DEFAULT));
  UVT_CLOSE_LOOP(loop);
}

/* ---- deadlines that fall inside a millisecond ---------------------------- */

/* libuv's clock counts whole milliseconds. A deadline set late in one
 * millisecond must still wake a loop that re-enters run after the next tick
 * but before the deadline: the loop may not sleep in the kernel without a
 * timeout while a timer or sleep is pending. A watchdog thread stops the
 * loop after 2 s so that a failure reports instead of hanging. */
struct watchdog {
  uva_loop_t *loop;
  int done;  /* set by the test when the run returned */
  int fired; /* set by the watchdog when it had to stop the loop */
};

static void *watchdog_main(void *arg) {
  struct watchdog *w = (struct watchdog *) arg;
  double t0 = uvt_ms();
  while (!__atomic_load_n(&w->done, __ATOMIC_ACQUIRE)) {
    if (uvt_ms() - t0 > 2000 * uvt_mult()) {
      __atomic_store_n(&w->fired, 1, __ATOMIC_RELEASE);
      uva_loop_stop(w->loop);
      t0 = uvt_ms();
    }
    uvt_sleep_ms(5);
  }
  return NULL;
}

/* Busy-wait until the fraction of the current millisecond is >= f. */
static double wait_for_fraction(double f) {
  double t;
  for (;;) {
    t = uvt_ms();
    if (t - (double) (int64_t) t >= f) return t;
  }
}

/* Busy-wait until the millisecond after the one t lies in has begun. */
static void wait_past_tick(double t) {
  double next = (double) ((int64_t) t + 1) + 0.05;
  while (uvt_ms() < next) {
  }
}

struct late_sleep {
  int runs;
  double set_at, woke_at;
  int rc;
};

static int step_late_sleep(uva_task_t *t, int status, void *d) {
  struct late_sleep *s = (struct late_sleep *) d;
  if (status != 0) return status;
  if (++s->runs == 1) {
    s->set_at = wait_for_fraction(0.7);
    s->rc = uva_task_sleep(t, 1);
    return UVA_TASK_PENDING;
  }
  s->woke_at = uvt_ms();
  return 0;
}

Test(timer, sleep_wakes_a_loop_reentered_between_ticks, .timeout = 30) {
  uva_loop_t *loop = uvt_loop_new();
  struct watchdog w;
  struct late_sleep s;
  pthread_t th;
  int round, late = 0, bad_round = -1;
  w.loop = loop;
  w.done = 0;
  w.fired = 0;
  cr_assert_eq(pthread_create(&th, NULL, watchdog_main, &w), 0);
  for (round = 0; round < 20 && !w.fired; round++) {
    memset(&s, 0, sizeof s);
    UVT_OK(uva_task_spawn(NULL, loop, step_late_sleep, &s, NULL));
    UVT_OK(uva_loop_run(loop, UVA_RUN_NOWAIT)); /* sets the sleep */
    cr_assert_eq(s.runs, 1);
    cr_assert_eq(s.rc, 0);
    wait_past_tick(s.set_at); /* a new ms has begun; the deadline has not */
    UVT_OK(uva_loop_run(loop, UVA_RUN_DEFAULT));
    if (s.runs != 2 || s.woke_at - s.set_at > 1000 * uvt_mult()) {
      late++;
      bad_round = round;
    }
  }
  __atomic_store_n(&w.done, 1, __ATOMIC_RELEASE);
  cr_assert_eq(pthread_join(th, NULL), 0);
  cr_assert_eq(w.fired, 0,
               "round %d: the loop slept past a 1 ms sleep until "
               "uva_loop_stop woke it (%.0f ms)",
               bad_round, s.woke_at > 0 ? s.woke_at - s.set_at : -1.0);
  cr_assert_eq(late, 0);
  UVT_OK(uva_loop_run(loop, UVA_RUN_DEFAULT));
  UVT_CLOSE_LOOP(loop);
}

struct late_timer {
  int fired;
  double fired_at;
};

static void late_timer_cb(uva_timer_t *tm, void *d) {
  struct late_timer *lt = (struct late_timer *) d;
  (void) tm;
  lt->fired++;
  lt->fired_at = uvt_ms();
}

Test(timer, timer_wakes_a_loop_reentered_between_ticks, .timeout = 30) {
  uva_loop_t *loop = uvt_loop_new();
  struct watchdog w;
  struct late_timer lt;
  uva_timer_t *tm;
  pthread_t th;
  int round, missed = 0, bad_round = -1;
  double set_at = 0;
  memset(&lt, 0, sizeof lt);
  w.loop = loop;
  w.done = 0;
  w.fired = 0;
  UVT_OK(uva_timer_new(&tm, loop, late_timer_cb, &lt, NULL));
  cr_assert_eq(pthread_create(&th, NULL, watchdog_main, &w), 0);
  for (round = 0; round < 20 && !w.fired; round++) {
    int before = lt.fired;
    set_at = wait_for_fraction(0.7);
    UVT_OK(uva_timer_start(tm, 1, 0));
    UVT_OK(uva_loop_run(loop, UVA_RUN_NOWAIT)); /* arms the loop's timer */
    if (lt.fired != before)
      continue; /* too slow to land between the ticks: try again */
    wait_past_tick(set_at);
    UVT_OK(uva_loop_run(loop, UVA_RUN_DEFAULT));
    if (lt.fired != before + 1 || lt.fired_at - set_at > 1000 * uvt_mult()) {
      missed++;
      bad_round = round;
    }
  }
  __atomic_store_n(&w.done, 1, __ATOMIC_RELEASE);
  cr_assert_eq(pthread_join(th, NULL), 0);
  cr_assert_eq(w.fired, 0,
               "round %d: the loop slept past a 1 ms timer until "
               "uva_loop_stop woke it (%.0f ms)",
               bad_round, lt.fired_at - set_at);
  cr_assert_eq(missed, 0);
  UVT_OK(uva_timer_close(tm, NULL));
  UVT_OK(uva_loop_run(loop, UVA_RUN_DEFAULT));
  UVT_CLOSE_LOOP(loop);
}

/* ---- many timers ------------------------------------------------------- */

#define MANY 100000

struct many {
  uva_loop_t *loop;
  /* Each deadline lies in [lo, hi]: the loop clock read just before and just
   * after uva_timer_start, plus the delay. */
  uint64_t *lo, *hi;
  int64_t *delay;
  uint64_t max_lo; /* largest lo among the timers fired so far */
  int max_lo_i;    /* ... and its timer */
  int bad_after;   /* the timer the first out-of-order one fired after */
  int fired;
  int out_of_order;
  int early;
  int first_bad;
};

static struct many mt;

static void many_cb(uva_timer_t *tm, void *d) {
  size_t i = (size_t) (uintptr_t) d;
  uint64_t now = 0;
  (void) tm;
  uva_loop_now(&now, mt.loop);
  /* Fired after a timer whose deadline is surely later than its own? */
  if (mt.hi[i] < mt.max_lo) {
    if (mt.out_of_order++ == 0) {
      mt.first_bad = (int) i;
      mt.bad_after = mt.max_lo_i;
    }
  }
  if (now < mt.lo[i]) mt.early++;
  if (mt.lo[i] > mt.max_lo) {
    mt.max_lo = mt.lo[i];
    mt.max_lo_i = (int) i;
  }
  mt.fired++;
}

Test(timer, many_timers_fire_in_deadline_order, .timeout = 60) {
  uva_timer_t **tms;
  size_t i;
  unsigned seed = 12345;
  memset(&mt, 0, sizeof mt);
  mt.loop = uvt_loop_new();
  tms = (uva_timer_t **) calloc(MANY, sizeof *tms);
  mt.lo = (uint64_t *) calloc(MANY, sizeof *mt.lo);
  mt.hi = (uint64_t *) calloc(MANY, sizeof *mt.hi);
  mt.delay = (int64_t *) calloc(MANY, sizeof *mt.delay);
  cr_assert_not_null(mt.delay);
  cr_assert_not_null(tms);
  cr_assert_not_null(mt.lo);
  cr_assert_not_null(mt.hi);
  for (i = 0; i < MANY; i++) {
    int64_t delay;
    uint64_t before = 0, after = 0;
    seed = seed * 1103515245u + 12345u;
    delay = (int64_t) ((seed >> 8) % 500);
    UVT_OK(
        uva_timer_new(&tms[i], mt.loop, many_cb, (void *) (uintptr_t) i, NULL));
    UVT_OK(uva_loop_now(&before, mt.loop));
    UVT_OK(uva_timer_start(tms[i], delay, 0));
    UVT_OK(uva_loop_now(&after, mt.loop));
    mt.lo[i] = before + (uint64_t) delay;
    mt.hi[i] = after + (uint64_t) delay;
    mt.delay[i] = delay;
  }
  UVT_OK(uva_loop_run(mt.loop, UVA_RUN_DEFAULT));
  cr_assert_eq(mt.fired, MANY);
  cr_assert_eq(mt.out_of_order, 0,
               "%d timers fired after a later deadline (first: #%d, delay "
               "%lld, due by %llu, fired after #%d, delay %lld, due at %llu)",
               mt.out_of_order, mt.first_bad,
               (long long) mt.delay[mt.first_bad],
               (unsigned long long) mt.hi[mt.first_bad], mt.bad_after,
               (long long) mt.delay[mt.bad_after],
               (unsigned long long) mt.lo[mt.bad_after]);
  cr_assert_eq(mt.early, 0, "%d timers fired before their deadline", mt.early);
  for (i = 0; i < MANY; i++)
    UVT_OK(uva_timer_close(tms[i], NULL));
  UVT_OK(uva_loop_run(mt.loop, UVA_RUN_DEFAULT));
  UVT_CLOSE_LOOP(mt.loop);
  free(tms);
  free(mt.lo);
  free(mt.hi);
  free(mt.delay);
}
