/* demo — a tour of uvasync's task model through the public C API.
 *
 * Tasks in this program (each one is a step function + a small struct):
 *
 *   ticker      prints a tick every 100 ms (drift-free: it sleeps until the
 *               next multiple of 100 ms); at tick 10 it cancels `sleeper`.
 *   worker-A/B  two workers that yield to each other round-robin.
 *   job-fast    "fetches" something in 200 ms.
 *   job-slow    "fetches" something in 800 ms.
 *   wait-fast   wait_for(job-fast, 500 ms): joins job-fast with a timeout.
 *   wait-slow   wait_for(job-slow, 300 ms): the timeout wins, so it cancels
 *               job-slow, waits for the cancellation to land, and finishes
 *               with UVA_ETIMEDOUT.
 *   sleeper     starts a 10 s sleep and gets cancelled after about 1 s.
 *
 * wait_for is built from the primitives: the waiter joins the target and
 * starts a uva_timer_t; if the timer fires first, its callback cancels the
 * waiter, whose step then sees status UVA_ECANCELED.
 *
 * Every event is printed as it happens, stamped with milliseconds since the
 * start (uva_loop_now). The program ends with a summary, releases everything
 * and checks that uva_loop_close() returns 0. Runs in about 1.1 s.
 *
 * Build: part of the CMake build (examples/demo), or
 *   cc -std=c99 demo.c -I include -L build -luvasync -o demo
 */
#include <uvasync.h>

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

/* ------------------------------------------------------------------ util */

static uva_loop_t *loop;
static uint64_t t_start;

/* Abort the demo with a message if an API call fails. */
#define CHECK(expr)                                                   \
  do {                                                                \
    int rc_ = (expr);                                                 \
    if (rc_ < 0) {                                                    \
      fprintf(stderr, "demo: %s failed: %s (%s) at line %d\n", #expr, \
              uva_err_name(rc_), uva_strerror(rc_), __LINE__);        \
      exit(1);                                                        \
    }                                                                 \
  } while (0)

static uint64_t now_ms(void) {
  uint64_t now = 0;
  CHECK(uva_loop_now(&now, loop));
  return now - t_start;
}

/* One line per event: "[  123 ms] who        what". Flushed at once. */
static void say(const char *who, const char *fmt, ...) {
  va_list ap;
  printf("[%5llu ms] %-10s ", (unsigned long long) now_ms(), who);
  va_start(ap, fmt);
  vprintf(fmt, ap);
  va_end(ap);
  putchar('\n');
  fflush(stdout);
}

static const char *result_name(int result) {
  return result == 0 ? "ok" : uva_err_name(result);
}

/* Every task in the demo starts with this header, so one done callback and
 * one summary serve them all. */
typedef struct {
  const char *name;
  uva_task_t *task; /* our reference, released at the end */
  int state;        /* where the step function resumes */
  int finished;
  int result;
  uint64_t finished_ms;
} info_t;

static void on_done(uva_task_t *task, int result, void *data) {
  info_t *info = (info_t *) data;
  (void) task;
  info->finished = 1;
  info->result = result;
  info->finished_ms = now_ms();
  say(info->name, "finished -> %s", result_name(result));
}

/* Spawn a task whose user data begins with an info_t, and log its end. */
static void spawn(info_t *info, const char *name, uva_task_step_cb step) {
  info->name = name;
  CHECK(uva_task_spawn(&info->task, loop, step, info, NULL));
  CHECK(uva_task_add_done_cb(info->task, on_done, info));
}

/* --------------------------------------------------------------- sleeper */

typedef struct {
  info_t info;
  int64_t ms;
  uint64_t began_ms;
} sleeper_t;

static sleeper_t sleeper = {{0}, 10000, 0};

static int sleeper_step(uva_task_t *task, int status, void *data) {
  sleeper_t *s = (sleeper_t *) data;
  if (s->info.state == 0) {
    s->info.state = 1;
    s->began_ms = now_ms();
    say(s->info.name, "going to sleep for %lld ms", (long long) s->ms);
    CHECK(uva_task_sleep(task, s->ms));
    return UVA_TASK_PENDING;
  }
  if (status == UVA_ECANCELED) {
    say(s->info.name, "cancelled after %llu ms of its %lld ms sleep",
        (unsigned long long) (now_ms() - s->began_ms), (long long) s->ms);
    return UVA_ECANCELED; /* accept the cancellation */
  }
  say(s->info.name, "woke up normally (unexpected in this demo)");
  return 0;
}

/* ---------------------------------------------------------------- ticker */

typedef struct {
  info_t info;
  int ticks;
  int max_ticks;
  int cancel_at;
} ticker_t;

static ticker_t ticker = {{0}, 0, 11, 10};

static int ticker_step(uva_task_t *task, int status, void *data) {
  ticker_t *t = (ticker_t *) data;
  uint64_t now, next;
  if (status == UVA_ECANCELED) return UVA_ECANCELED;
  if (t->info.state == 1) {
    t->ticks++;
    say(t->info.name, "tick %d", t->ticks);
    if (t->ticks == t->cancel_at) {
      say(t->info.name, "cancelling %s", sleeper.info.name);
      CHECK(uva_task_cancel(sleeper.info.task));
    }
    if (t->ticks == t->max_ticks) return 0;
  }
  t->info.state = 1;
  /* Sleep until the next multiple of 100 ms, so the ticks do not drift. */
  now = now_ms();
  next = (uint64_t) (t->ticks + 1) * 100u;
  CHECK(uva_task_sleep(task, next > now ? (int64_t) (next - now) : 0));
  return UVA_TASK_PENDING;
}

/* --------------------------------------------------------------- workers */

typedef struct {
  info_t info;
  int rounds;
  int done_rounds;
} worker_t;

static worker_t worker_a = {{0}, 4, 0};
static worker_t worker_b = {{0}, 4, 0};
static int total_yields;

static int worker_step(uva_task_t *task, int status, void *data) {
  worker_t *w = (worker_t *) data;
  (void) task;
  if (status == UVA_ECANCELED) return UVA_ECANCELED;
  if (w->done_rounds == w->rounds) {
    say(w->info.name, "all %d rounds done", w->rounds);
    return 0;
  }
  w->done_rounds++;
  total_yields++;
  say(w->info.name, "round %d/%d, yielding", w->done_rounds, w->rounds);
  return UVA_TASK_YIELD; /* to the back of the run queue */
}

/* ------------------------------------------------------------------ jobs */

typedef struct {
  info_t info;
  int64_t ms;
} job_t;

static job_t job_fast = {{0}, 200};
static job_t job_slow = {{0}, 800};

static int job_step(uva_task_t *task, int status, void *data) {
  job_t *j = (job_t *) data;
  if (j->info.state == 0) {
    j->info.state = 1;
    say(j->info.name, "working for %lld ms", (long long) j->ms);
    CHECK(uva_task_sleep(task, j->ms));
    return UVA_TASK_PENDING;
  }
  if (status == UVA_ECANCELED) {
    say(j->info.name, "cancelled before it was done");
    return UVA_ECANCELED;
  }
  say(j->info.name, "work done");
  return 0;
}

/* -------------------------------------------------------------- wait_for */

typedef struct {
  info_t info;
  job_t *target;
  int64_t timeout_ms;
  uva_timer_t *timer; /* the timeout; NULL once closed */
  int timed_out;
} waitfor_t;

static waitfor_t wait_fast = {{0}, &job_fast, 500, NULL, 0};
static waitfor_t wait_slow = {{0}, &job_slow, 300, NULL, 0};

/* The timeout fired before the target finished: cancel the waiter. */
static void waitfor_timeout_cb(uva_timer_t *timer, void *data) {
  waitfor_t *w = (waitfor_t *) data;
  say(w->info.name, "timeout of %lld ms expired, cancelling the waiter",
      (long long) w->timeout_ms);
  w->timed_out = 1;
  CHECK(uva_task_cancel(w->info.task));
  CHECK(uva_timer_close(timer, NULL));
  w->timer = NULL;
}

static int waitfor_step(uva_task_t *task, int status, void *data) {
  waitfor_t *w = (waitfor_t *) data;
  int result = 0;
  switch (w->info.state) {
    case 0: /* join the target, arm the timeout */
      say(w->info.name, "waiting for %s, at most %lld ms", w->target->info.name,
          (long long) w->timeout_ms);
      CHECK(uva_task_join(task, w->target->info.task));
      CHECK(uva_timer_new(&w->timer, loop, waitfor_timeout_cb, w, NULL));
      CHECK(uva_timer_start(w->timer, w->timeout_ms, 0));
      w->info.state = 1;
      return UVA_TASK_PENDING;

    case 1: /* the target finished, or the timeout cancelled us */
      if (status == 0) {
        CHECK(uva_timer_close(w->timer, NULL)); /* disarm the timeout */
        w->timer = NULL;
        CHECK(uva_task_result(&result, w->target->info.task));
        say(w->info.name, "%s finished in time with %s", w->target->info.name,
            result_name(result));
        return result;
      }
      /* status == UVA_ECANCELED. Like asyncio.wait_for: cancel the target
     * and wait until the cancellation has landed before reporting. */
      say(w->info.name, "gave up on %s, cancelling it", w->target->info.name);
      CHECK(uva_task_cancel(w->target->info.task));
      CHECK(uva_task_join(task, w->target->info.task));
      w->info.state = 2;
      return UVA_TASK_PENDING;

    default: /* the cancelled target has finished */
      CHECK(uva_task_result(&result, w->target->info.task));
      say(w->info.name, "%s ended with %s; reporting ETIMEDOUT",
          w->target->info.name, result_name(result));
      return w->timed_out ? UVA_ETIMEDOUT : UVA_ECANCELED;
  }
}

/* ------------------------------------------------------------------ main */

int main(void) {
  info_t *all[] = {&ticker.info,    &worker_a.info, &worker_b.info,
                   &job_fast.info,  &job_slow.info, &wait_fast.info,
                   &wait_slow.info, &sleeper.info};
  const int n_all = (int) (sizeof all / sizeof all[0]);
  uint64_t wall_ms;
  int i, rc, alive = 1, unfinished = 0;

  CHECK(uva_loop_new(&loop));
  CHECK(uva_loop_now(&t_start, loop));
  printf("uvasync %s demo\n", uva_version_string());
  fflush(stdout);

  spawn(&ticker.info, "ticker", ticker_step);
  spawn(&worker_a.info, "worker-A", worker_step);
  spawn(&worker_b.info, "worker-B", worker_step);
  spawn(&job_fast.info, "job-fast", job_step);
  spawn(&job_slow.info, "job-slow", job_step);
  spawn(&wait_fast.info, "wait-fast", waitfor_step);
  spawn(&wait_slow.info, "wait-slow", waitfor_step);
  spawn(&sleeper.info, "sleeper", sleeper_step);
  say("main", "spawned %d tasks, running the loop", n_all);

  CHECK(uva_loop_run(loop, UVA_RUN_DEFAULT));
  wall_ms = now_ms();
  CHECK(uva_loop_alive(&alive, loop));
  say("main", "loop has no work left (alive=%d)", alive);

  /* Summary. */
  printf("\nsummary after %llu ms:\n", (unsigned long long) wall_ms);
  printf("  %-10s %-10s %s\n", "task", "result", "finished at");
  for (i = 0; i < n_all; i++) {
    int done = 0;
    CHECK(uva_task_done(&done, all[i]->task));
    if (!done || !all[i]->finished) unfinished++;
    printf("  %-10s %-10s %5llu ms\n", all[i]->name,
           result_name(all[i]->result),
           (unsigned long long) all[i]->finished_ms);
  }
  printf("  ticks: %d, worker yields: %d, unfinished tasks: %d\n", ticker.ticks,
         total_yields, unfinished);
  fflush(stdout);

  /* Drop our references; the memory of finished, released tasks is freed
   * by the loop, so let it run once more before closing. */
  for (i = 0; i < n_all; i++) {
    CHECK(uva_task_release(all[i]->task));
    all[i]->task = NULL;
  }
  CHECK(uva_loop_run(loop, UVA_RUN_NOWAIT));
  rc = uva_loop_close(loop);
  printf("uva_loop_close() = %d (%s)\n", rc, rc == 0 ? "ok" : uva_err_name(rc));
  fflush(stdout);
  return rc == 0 && unfinished == 0 ? 0 : 1;
}
