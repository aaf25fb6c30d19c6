/* bench_os — the uvasync side of the operating-system benchmarks (C API
 * only): child processes, the loop's thread pool and file reads. Does the
 * same work as bench_raw_os.c (raw libuv) and prints one line:
 *   impl=uvasync name=spawn n=1000 rate=... wall_s=... cpu_s=... ok=1
 *
 *   spawn N            one task spawns /bin/true (stdio inherited),
 *                      waits for its exit (uva_process_wait), closes it,
 *                      N times: rate = processes per second
 *   work N INFLIGHT    INFLIGHT tasks each submit a no-op job
 *                      (uva_work_submit), wait for it (uva_work_wait) and
 *                      close it, N jobs in all: rate = jobs per second
 *                      (INFLIGHT 1: the round-trip latency)
 *   read PATH CHUNK    one task opens PATH (uva_fs_open), reads it to the
 *                      end CHUNK bytes a job (uva_fs_read at the file
 *                      position; the data is looked at through
 *                      uva_fs_data, not copied) and closes it:
 *                      rate = MB/s (10^6 bytes)
 * Time: CLOCK_MONOTONIC around spawning the tasks and uva_loop_run; the
 * loop's creation and closing are outside it on both sides.
 */
#define _POSIX_C_SOURCE 200809L /* clock_gettime; before any header */
#include <fcntl.h>
#include <uvasync.h>

#include "bench_common.h"

#define CHECK(expr)                                                      \
  do {                                                                   \
    int rc_ = (expr);                                                    \
    if (rc_ < 0) {                                                       \
      fprintf(stderr, "%s:%d: %s failed: %s (%s)\n", __FILE__, __LINE__, \
              #expr, uva_err_name(rc_), uva_strerror(rc_));              \
      exit(2);                                                           \
    }                                                                    \
  } while (0)

static uva_loop_t *loop;
static long g_n, g_done;
static int g_ok = 1;

/* ----------------------------------------------------------------- spawn */

static const char *const true_args[] = {"/bin/true", NULL};

static int spawn_step(uva_task_t *task, int status, void *data) {
  uva_process_t **proc = (uva_process_t **) data;
  (void) status;
  for (;;) {
    int64_t code;
    int sig, rc;
    if (*proc == NULL) {
      uva_process_options_t opts = UVA_PROCESS_OPTIONS_INIT;
      if (g_done == g_n) return 0;
      opts.args = true_args;
      CHECK(uva_process_spawn(proc, loop, &opts));
    }
    rc = uva_process_wait(&code, &sig, *proc, task);
    if (rc == UVA_EAGAIN) return UVA_TASK_PENDING;
    CHECK(rc);
    if (code != 0 || sig != 0) g_ok = 0;
    CHECK(uva_process_close(*proc, NULL, NULL));
    *proc = NULL;
    g_done++;
  }
}

static void bench_spawn(uint64_t *wall, uint64_t *cpu) {
  uva_process_t *proc = NULL;
  uint64_t t0 = bench_now_ns(), c0 = bench_cpu_ns();
  CHECK(uva_task_spawn(NULL, loop, spawn_step, &proc, NULL));
  CHECK(uva_loop_run(loop, UVA_RUN_DEFAULT));
  *wall = bench_now_ns() - t0;
  *cpu = bench_cpu_ns() - c0;
  g_ok = g_ok && g_done == g_n;
}

/* ------------------------------------------------------------------ work */

typedef struct {
  uva_work_t *job; /* the job waited for, or NULL */
  long left;       /* jobs this task still submits */
} worker_t;

static void noop_job(void *data) { (void) data; }

static int work_step(uva_task_t *task, int status, void *data) {
  worker_t *w = (worker_t *) data;
  (void) status;
  for (;;) {
    int rc;
    if (w->job == NULL) {
      if (w->left == 0) return 0;
      CHECK(uva_work_submit(&w->job, loop, noop_job, NULL, NULL, NULL));
    }
    rc = uva_work_wait(w->job, task);
    if (rc == UVA_EAGAIN) return UVA_TASK_PENDING;
    CHECK(rc);
    CHECK(uva_work_close(w->job));
    w->job = NULL;
    w->left--;
    g_done++;
  }
}

static void bench_work(long inflight, uint64_t *wall, uint64_t *cpu) {
  long i;
  uint64_t t0, c0;
  worker_t *w = (worker_t *) calloc((size_t) inflight, sizeof *w);
  if (w == NULL) {
    fprintf(stderr, "out of memory\n");
    exit(2);
  }
  for (i = 0; i < inflight; i++) /* N shared out, the rest to the first */
    w[i].left = g_n / inflight + (i < g_n % inflight ? 1 : 0);
  t0 = bench_now_ns();
  c0 = bench_cpu_ns();
  for (i = 0; i < inflight; i++)
    CHECK(uva_task_spawn(NULL, loop, work_step, &w[i], NULL));
  CHECK(uva_loop_run(loop, UVA_RUN_DEFAULT));
  *wall = bench_now_ns() - t0;
  *cpu = bench_cpu_ns() - c0;
  g_ok = g_ok && g_done == g_n;
  free(w);
}

/* ------------------------------------------------------------------ read */

typedef struct {
  const char *path;
  size_t chunk;
  int state; /* 0 opening, 1 reading, 2 closing */
  int fd;
  uva_work_t *job;
  uint64_t total;
  unsigned char check; /* one byte of every chunk, so the data is used */
} reader_t;

static int read_step(uva_task_t *task, int status, void *data) {
  reader_t *r = (reader_t *) data;
  (void) status;
  for (;;) {
    int64_t res;
    int rc;
    if (r->job == NULL) {
      if (r->state == 0)
        CHECK(uva_fs_open(&r->job, loop, r->path, O_RDONLY, 0));
      else if (r->state == 1)
        CHECK(uva_fs_read(&r->job, loop, r->fd, r->chunk, -1));
      else
        CHECK(uva_fs_close(&r->job, loop, r->fd));
    }
    rc = uva_work_wait(r->job, task);
    if (rc == UVA_EAGAIN) return UVA_TASK_PENDING;
    CHECK(rc);
    CHECK(uva_fs_result(&res, r->job));
    if (r->state == 1 && res > 0) {
      const void *p;
      size_t len;
      CHECK(uva_fs_data(&p, &len, r->job));
      r->check ^= ((const unsigned char *) p)[len - 1];
      r->total += len;
    }
    CHECK(uva_work_close(r->job));
    r->job = NULL;
    if (r->state == 0) {
      r->fd = (int) res;
      r->state = 1;
    } else if (r->state == 1) {
      if (res == 0) r->state = 2; /* end of file */
    } else {
      return 0;
    }
  }
}

static void bench_read(const char *path, long chunk, uint64_t *wall,
                       uint64_t *cpu) {
  reader_t r;
  uint64_t t0 = bench_now_ns(), c0 = bench_cpu_ns();
  memset(&r, 0, sizeof r);
  r.path = path;
  r.chunk = (size_t) chunk;
  CHECK(uva_task_spawn(NULL, loop, read_step, &r, NULL));
  CHECK(uva_loop_run(loop, UVA_RUN_DEFAULT));
  *wall = bench_now_ns() - t0;
  *cpu = bench_cpu_ns() - c0;
  g_n = (long) r.total;
  g_ok = g_ok && r.state == 2 && r.total > 0;
  if (getenv("BENCH_VERBOSE")) fprintf(stderr, "check byte %u\n", r.check);
}

/* ------------------------------------------------------------------ main */

int main(int argc, char **argv) {
  const char *name = argc > 1 ? argv[1] : "";
  uint64_t wall = 0, cpu = 0;
  double rate;
  long arg = 0;
  int rc;
  if (argc != 3 && argc != 4) {
    fprintf(stderr, BENCH_OS_USAGE, argv[0]);
    return 2;
  }
  if (strcmp(name, "read") != 0 && (g_n = bench_parse_n(argv[2])) < 0) {
    fprintf(stderr, BENCH_OS_USAGE, argv[0]);
    return 2;
  }
  if (argc == 4 && (arg = bench_parse_n(argv[3])) < 0) {
    fprintf(stderr, BENCH_OS_USAGE, argv[0]);
    return 2;
  }
  CHECK(uva_loop_new(&loop));
  if (strcmp(name, "spawn") == 0) {
    bench_spawn(&wall, &cpu);
  } else if (strcmp(name, "work") == 0) {
    bench_work(arg > 0 ? arg : 1, &wall, &cpu);
  } else if (strcmp(name, "read") == 0) {
    bench_read(argv[2], arg > 0 ? arg : 256 * 1024, &wall, &cpu);
  } else {
    fprintf(stderr, BENCH_OS_USAGE, argv[0]);
    return 2;
  }
  rc = uva_loop_close(loop);
  if (rc != 0) {
    fprintf(stderr, "uva_loop_close: %s\n", uva_err_name(rc));
    g_ok = 0;
  }
  rate = (double) g_n / ((double) wall / 1e9);
  if (strcmp(name, "read") == 0) rate /= 1e6;
  bench_print_rate("uvasync", name, g_n, rate, wall, cpu, g_ok);
  return g_ok ? 0 : 1;
}
