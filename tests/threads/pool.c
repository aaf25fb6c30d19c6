/* The loop's thread pool across threads, as a plain program (Criterion
 * cannot start under ThreadSanitizer): jobs with random cancellations and
 * closes, the pool's size changed while jobs run, file jobs, a sendfile
 * with writes queued behind it and a stream closed under one, and loops
 * with pools of their own in several threads, each closed (its threads
 * joined) at the end. CTest runs it in every build; under
 * -DUVA_SANITIZE=thread (scripts/tsan.sh) it is the ThreadSanitizer check
 * of pool.cpp and fs.cpp. Prints "N passed, N failed"; an argument runs
 * only the tests whose name contains it. */
#define _GNU_SOURCE
#include <uvasync.h>

#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static int failures;

#define CHECK(cond)                                                            \
  do {                                                                         \
    if (!(cond)) {                                                             \
      fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
      failures++;                                                              \
      return;                                                                  \
    }                                                                          \
  } while (0)

#define CHECK_NULL(cond)                                                       \
  do {                                                                         \
    if (!(cond)) {                                                             \
      fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
      failures++;                                                              \
      return NULL;                                                             \
    }                                                                          \
  } while (0)

#define OK(expr) CHECK((expr) == 0)

static void sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (long) (ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

/* ---- many jobs ------------------------------------------------------------ */

#define JOBS 2000

struct jobs {
  uint64_t out[JOBS];
  int status[JOBS], done[JOBS], dropped[JOBS], closed[JOBS];
  uva_work_t *w[JOBS];
  atomic_int dtors;
};

static uint64_t value_of(size_t i) { return i * 2654435761u + 7; }

static void job_fn(void *d) {
  struct jobs *J = *(struct jobs **) d;
  size_t i = (size_t) ((uintptr_t *) d)[1];
  J->out[i] = value_of(i);
}

static void job_done(uva_work_t *w, int status, void *d) {
  struct jobs *J = *(struct jobs **) d;
  size_t i = (size_t) ((uintptr_t *) d)[1];
  (void) w;
  J->done[i]++;
  J->status[i] = status;
}

static void job_dtor(void *d) {
  struct jobs *J = *(struct jobs **) d;
  atomic_fetch_add(&J->dtors, 1);
  free(d);
}

/* JOBS jobs, some cancelled and some closed at random, the size changed
 * while they run; every result checked. */
static void run_jobs(uva_loop_t *loop, unsigned seed) {
  struct jobs *J = calloc(1, sizeof *J);
  CHECK(J != NULL);
  OK(uva_loop_configure(loop, UVA_LOOP_POOL_SIZE, 4));
  for (size_t i = 0; i < JOBS; i++) {
    void **d = malloc(2 * sizeof *d);
    CHECK(d != NULL);
    d[0] = J;
    d[1] = (void *) (uintptr_t) i;
    OK(uva_work_submit(&J->w[i], loop, job_fn, d, job_dtor, job_done));
    unsigned r = (unsigned) rand_r(&seed);
    if (i > 0 && r % 4 == 0) {
      size_t k = (size_t) rand_r(&seed) % i;
      if (!J->closed[k] && uva_work_cancel(J->w[k]) == 0) J->dropped[k] = 1;
    }
    if (i > 0 && r % 11 == 0) {
      size_t k = (size_t) rand_r(&seed) % i;
      if (!J->closed[k]) {
        OK(uva_work_close(J->w[k]));
        J->closed[k] = 1;
      }
    }
    if (i % 500 == 250)
      OK(uva_loop_configure(loop, UVA_LOOP_POOL_SIZE, 1 + i % 6));
    if (i % 100 == 0) uva_loop_run(loop, UVA_RUN_NOWAIT);
  }
  OK(uva_loop_run(loop, UVA_RUN_DEFAULT));
  for (size_t i = 0; i < JOBS; i++) {
    if (J->closed[i]) {
      CHECK(J->done[i] <= 1);
      continue;
    }
    CHECK(J->done[i] == 1);
    if (J->dropped[i]) {
      CHECK(J->status[i] == UVA_ECANCELED && J->out[i] == 0);
    } else {
      CHECK(J->status[i] == 0 && J->out[i] == value_of(i));
    }
    OK(uva_work_close(J->w[i]));
  }
  CHECK(atomic_load(&J->dtors) == JOBS);
  free(J);
}

static void test_jobs(void) {
  uva_loop_t *loop;
  OK(uva_loop_new(&loop));
  run_jobs(loop, 1);
  OK(uva_loop_close(loop));
}

/* ---- loops with pools of their own in several threads ----------------- */

#define LOOPS 3

/* The loops are all made before any is closed: ThreadSanitizer cannot see
 * that the kernel orders a descriptor's close in one thread before its
 * number's reuse in another, and would report the reuse as a race. */
static pthread_barrier_t made, ran;

static void *own_loop(void *arg) {
  uva_loop_t *loop;
  int rc = uva_loop_new(&loop);
  pthread_barrier_wait(&made);
  CHECK_NULL(rc == 0);
  run_jobs(loop, (unsigned) (uintptr_t) arg);
  pthread_barrier_wait(&ran);
  CHECK_NULL(uva_loop_close(loop) == 0);
  return NULL;
}

static void test_loops_with_pools(void) {
  pthread_t th[LOOPS];
  pthread_barrier_init(&made, NULL, LOOPS);
  pthread_barrier_init(&ran, NULL, LOOPS);
  for (uintptr_t i = 0; i < LOOPS; i++)
    CHECK(pthread_create(&th[i], NULL, own_loop, (void *) (i + 10)) == 0);
  for (int i = 0; i < LOOPS; i++)
    pthread_join(th[i], NULL);
  pthread_barrier_destroy(&made);
  pthread_barrier_destroy(&ran);
}

/* ---- jobs closed while they run ------------------------------------------ */

/* 1 while it runs, 2 once it ended. */
static void slow_fn(void *d) {
  atomic_store((atomic_int *) d, 1);
  sleep_ms(5);
  atomic_store((atomic_int *) d, 2);
}

/* A job closed before it started never runs (0); one that started must
 * have ended (2) before its dtor. */
static void check_ran(void *d) {
  if (atomic_load((atomic_int *) d) == 1) {
    fprintf(stderr, "dtor while the job runs\n");
    failures++;
  }
}

static void test_close_while_running(void) {
  uva_loop_t *loop;
  OK(uva_loop_new(&loop));
  atomic_int ran[8];
  for (int i = 0; i < 8; i++) {
    uva_work_t *w;
    atomic_init(&ran[i], 0);
    OK(uva_work_submit(&w, loop, slow_fn, &ran[i], check_ran, NULL));
    sleep_ms(1);
    OK(uva_work_close(w));
  }
  OK(uva_loop_run(loop, UVA_RUN_DEFAULT));
  OK(uva_loop_close(loop));
}

/* ---- files -------------------------------------------------------------------- */

static int await(uva_loop_t *loop, uva_work_t *w) {
  uva_loop_run(loop, UVA_RUN_DEFAULT);
  return uva_work_wait(w, NULL);
}

static void test_files(void) {
  uva_loop_t *loop;
  OK(uva_loop_new(&loop));
  char path[] = "/tmp/uva_tsan_XXXXXX";
  int fd = mkstemp(path);
  CHECK(fd >= 0);
  uva_work_t *w[16];
  char data[16][64];
  for (int i = 0; i < 16; i++) { /* writes at offsets, side by side */
    memset(data[i], 'a' + i, 64);
    OK(uva_fs_write(&w[i], loop, fd, data[i], 64, i * 64));
  }
  OK(uva_loop_run(loop, UVA_RUN_DEFAULT));
  for (int i = 0; i < 16; i++) {
    OK(uva_work_wait(w[i], NULL));
    OK(uva_work_close(w[i]));
  }
  for (int i = 0; i < 16; i++)
    OK(uva_fs_read(&w[i], loop, fd, 64, i * 64));
  OK(uva_loop_run(loop, UVA_RUN_DEFAULT));
  for (int i = 0; i < 16; i++) {
    const void *p;
    size_t n;
    OK(uva_work_wait(w[i], NULL));
    OK(uva_fs_data(&p, &n, w[i]));
    CHECK(n == 64 && memcmp(p, data[i], 64) == 0);
    OK(uva_work_close(w[i]));
  }
  uva_work_t *st;
  OK(uva_fs_readdir(&st, loop, "/tmp"));
  OK(await(loop, st));
  OK(uva_work_close(st));
  close(fd);
  unlink(path);
  OK(uva_loop_close(loop));
}

/* ---- sendfile ----------------------------------------------------------------- */

struct reader {
  int fd;
  size_t got;
};

static void *read_all(void *arg) {
  struct reader *r = arg;
  char buf[65536];
  ssize_t n;
  while ((n = read(r->fd, buf, sizeof buf)) > 0)
    r->got += (size_t) n;
  close(r->fd);
  return NULL;
}

static void test_sendfile(void) {
  uva_loop_t *loop;
  OK(uva_loop_new(&loop));
  int sv[2];
  CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
  char path[] = "/tmp/uva_tsan_XXXXXX";
  int in = mkstemp(path);
  CHECK(in >= 0);
  unlink(path);
  CHECK(ftruncate(in, 4 << 20) == 0);
  uva_stream_t *s;
  OK(uva_stream_open_fd(&s, loop, sv[0]));
  struct reader r = {sv[1], 0};
  pthread_t th;
  CHECK(pthread_create(&th, NULL, read_all, &r) == 0);
  OK(uva_stream_write(NULL, s, "before", 6));
  uva_work_t *w;
  OK(uva_fs_sendfile(&w, s, in, 0, 4 << 20));
  OK(uva_stream_write(NULL, s, "after", 5));
  OK(uva_loop_run(loop, UVA_RUN_DEFAULT));
  OK(uva_work_wait(w, NULL));
  OK(uva_work_close(w));
  /* A second one, with the stream closed under it. */
  OK(uva_fs_sendfile(&w, s, in, 0, 4 << 20));
  sleep_ms(2);
  OK(uva_stream_close(s, NULL, NULL));
  OK(uva_loop_run(loop, UVA_RUN_DEFAULT));
  int rc = uva_work_wait(w, NULL);
  CHECK(rc == 0 || rc == UVA_ECLOSED);
  OK(uva_work_close(w));
  pthread_join(th, NULL);
  CHECK(r.got >= 6 + (4u << 20) + 5);
  close(in);
  OK(uva_loop_close(loop));
}

#define TEST(name) \
  { #name, name }

int main(int argc, char **argv) {
  struct {
    const char *name;
    void (*fn)(void);
  } tests[] = {TEST(test_jobs), TEST(test_loops_with_pools),
               TEST(test_close_while_running), TEST(test_files),
               TEST(test_sendfile)};
  int n = (int) (sizeof tests / sizeof tests[0]), ran = 0, failed = 0;
  for (int i = 0; i < n; i++) {
    if (argc > 1 && strstr(tests[i].name, argv[1]) == NULL) continue;
    int before = failures;
    tests[i].fn();
    ran++;
    if (failures != before) failed++;
  }
  printf("pool threads: %d passed, %d failed\n", ran - failed, failed);
  return failed != 0;
}
