/* Everything that crosses threads, as a plain program (no Criterion, which
 * cannot start under ThreadSanitizer): uva_loop_stop, uva_task_wake,
 * uva_loop_call_soon_threadsafe, uva_flag_set, uva_task_retain/release from
 * other threads, and loops running side by side in several threads.
 * CTest runs it in every build; under -DUVA_SANITIZE=thread it is the
 * ThreadSanitizer check of the core. Prints "N passed, N failed". */
#define _POSIX_C_SOURCE 200809L
#include <uvasync.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int failures;

#define CHECK(cond)                                                   \
  do {                                                                \
    if (!(cond)) {                                                    \
      fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, \
              #cond);                                                 \
      failures++;                                                     \
      return;                                                         \
    }                                                                 \
  } while (0)

#define OK(expr) CHECK((expr) == 0)

#define NTHREADS 4

static void sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

/* ---- stop from another thread ------------------------------------------ */

static int sleeper_step(uva_task_t *t, int status, void *d) {
  int *runs = d;
  if ((*runs)++ == 0) {
    if (uva_task_sleep(t, 10000) != 0) return UVA_EINVAL;
    return UVA_TASK_PENDING;
  }
  return status; /* cancelled after the stop */
}

static void *stopper(void *arg) {
  sleep_ms(50);
  uva_loop_stop(arg);
  return NULL;
}

static void test_stop_from_thread(void) {
  uva_loop_t *loop;
  uva_task_t *t;
  pthread_t th;
  int runs = 0;
  OK(uva_loop_new(&loop));
  OK(uva_task_spawn(&t, loop, sleeper_step, &runs, NULL));
  CHECK(pthread_create(&th, NULL, stopper, loop) == 0);
  OK(uva_loop_run(loop, UVA_RUN_DEFAULT)); /* returns on the stop */
  pthread_join(th, NULL);
  CHECK(runs == 1);
  OK(uva_task_cancel(t));
  OK(uva_loop_run(loop, UVA_RUN_DEFAULT));
  OK(uva_task_release(t));
  OK(uva_loop_close(loop));
}

/* ---- wake, call_soon_threadsafe, retain/release from threads ----------- */

struct shared {
  uva_loop_t *loop;
  uva_task_t *task;
  atomic_int wakes_sent;
  atomic_int calls_run;
  atomic_int threads_done;
  int steps;
};

static int parked_step(uva_task_t *t, int status, void *d) {
  struct shared *s = d;
  (void)t;
  (void)status;
  s->steps++;
  /* Finish once every thread is done and every call has run: the final
   * wake of each thread comes after its last call, so it is not lost. */
  if (atomic_load(&s->threads_done) == NTHREADS &&
      atomic_load(&s->calls_run) == NTHREADS * 1000)
    return 0;
  return UVA_TASK_PENDING;
}

static void count_call(void *d) {
  struct shared *s = d;
  atomic_fetch_add(&s->calls_run, 1);
  uva_task_wake(s->task); /* on the loop thread: the local path */
}

static void *waker(void *arg) {
  struct shared *s = arg;
  for (int i = 0; i < 1000; i++) {
    uva_task_retain(s->task);
    uva_loop_call_soon_threadsafe(s->loop, count_call, s);
    uva_task_wake(s->task);
    atomic_fetch_add(&s->wakes_sent, 1);
    uva_task_release(s->task);
  }
  atomic_fetch_add(&s->threads_done, 1);
  uva_task_wake(s->task); /* the final wake must not be lost */
  return NULL;
}

static void test_wakes_and_calls_from_threads(void) {
  struct shared s;
  pthread_t th[NTHREADS];
  memset(&s, 0, sizeof s);
  OK(uva_loop_new(&s.loop));
  OK(uva_task_spawn(&s.task, s.loop, parked_step, &s, NULL));
  OK(uva_loop_run(s.loop, UVA_RUN_NOWAIT)); /* the task parks */
  for (int i = 0; i < NTHREADS; i++)
    CHECK(pthread_create(&th[i], NULL, waker, &s) == 0);
  OK(uva_loop_run(s.loop, UVA_RUN_DEFAULT)); /* until the task finishes */
  for (int i = 0; i < NTHREADS; i++) pthread_join(th[i], NULL);
  int done = 0;
  OK(uva_task_done(&done, s.task));
  CHECK(done == 1);
  CHECK(atomic_load(&s.calls_run) == NTHREADS * 1000);
  CHECK(s.steps >= 2);
  OK(uva_task_release(s.task));
  OK(uva_loop_close(s.loop));
}

/* ---- thread-safe flag: 1M sets from 4 threads --------------------------- */

struct flagged {
  uva_flag_t *flag;
  atomic_int final_phase; /* set by the finisher before its last set */
  pthread_t setters[NTHREADS];
  long wakes;
};

static int flag_step(uva_task_t *t, int status, void *d) {
  struct flagged *f = d;
  if (status != 0) return status;
  for (;;) {
    int rc = uva_flag_wait(f->flag, t);
    if (rc == UVA_EAGAIN) return UVA_TASK_PENDING;
    if (rc != 0) return rc;
    f->wakes++;
    /* The finisher's set follows its store: if we read 0 here, that set
     * is still to come and must wake us (a lost wake-up hangs the test). */
    if (atomic_load(&f->final_phase)) return 0;
  }
}

static void *setter(void *arg) {
  struct flagged *f = arg;
  for (int i = 0; i < 250000; i++) uva_flag_set(f->flag);
  return NULL;
}

static void *finisher(void *arg) {
  struct flagged *f = arg;
  for (int i = 0; i < NTHREADS; i++) pthread_join(f->setters[i], NULL);
  atomic_store(&f->final_phase, 1);
  uva_flag_set(f->flag); /* the final set */
  return NULL;
}

static void test_flag_from_threads(void) {
  uva_loop_t *loop;
  uva_task_t *t;
  struct flagged f;
  pthread_t fin;
  memset(&f, 0, sizeof f);
  OK(uva_loop_new(&loop));
  OK(uva_flag_new(&f.flag, loop));
  OK(uva_task_spawn(&t, loop, flag_step, &f, NULL));
  for (int i = 0; i < NTHREADS; i++)
    CHECK(pthread_create(&f.setters[i], NULL, setter, &f) == 0);
  CHECK(pthread_create(&fin, NULL, finisher, &f) == 0);
  OK(uva_loop_run(loop, UVA_RUN_DEFAULT));
  pthread_join(fin, NULL);
  int result = -1;
  OK(uva_task_result(&result, t));
  CHECK(result == 0);
  CHECK(f.wakes >= 1 && f.wakes <= NTHREADS * 250000 + 1);
  OK(uva_task_release(t));
  OK(uva_flag_close(f.flag));
  OK(uva_loop_close(loop));
}

/* ---- several loops side by side ----------------------------------------- */

static int yielder(uva_task_t *t, int status, void *d) {
  int *left = d;
  (void)t;
  (void)status;
  return --*left > 0 ? UVA_TASK_YIELD : 0;
}

static void tick(uva_timer_t *tm, void *d) {
  int *ticks = d;
  if (++*ticks == 5) uva_timer_close(tm, NULL);
}

static void *own_loop(void *arg) {
  atomic_int *ok = arg;
  uva_loop_t *loop;
  uva_timer_t *tm;
  int left[10], ticks = 0;
  if (uva_loop_new(&loop) != 0) return NULL;
  for (int i = 0; i < 10; i++) {
    left[i] = 10000;
    uva_task_spawn(NULL, loop, yielder, &left[i], NULL);
  }
  uva_timer_new(&tm, loop, tick, &ticks, NULL);
  uva_timer_start(tm, 1, 1);
  uva_loop_run(loop, UVA_RUN_DEFAULT);
  if (ticks == 5 && left[9] == 0 && uva_loop_close(loop) == 0)
    atomic_fetch_add(ok, 1);
  return NULL;
}

static void test_loops_side_by_side(void) {
  pthread_t th[NTHREADS];
  atomic_int ok = 0;
  for (int i = 0; i < NTHREADS; i++)
    CHECK(pthread_create(&th[i], NULL, own_loop, &ok) == 0);
  for (int i = 0; i < NTHREADS; i++) pthread_join(th[i], NULL);
  CHECK(atomic_load(&ok) == NTHREADS);
}

int main(void) {
  void (*tests[])(void) = {test_stop_from_thread,
                           test_wakes_and_calls_from_threads,
                           test_flag_from_threads, test_loops_side_by_side};
  int n = (int)(sizeof tests / sizeof tests[0]), failed = 0;
  for (int i = 0; i < n; i++) {
    int before = failures;
    tests[i]();
    if (failures != before) failed++;
  }
  printf("threads: %d passed, %d failed\n", n - failed, failed);
  return failed != 0;
}
