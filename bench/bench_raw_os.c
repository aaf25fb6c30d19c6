/* bench_raw_os — the raw libuv side of the operating-system benchmarks: the
 * work of bench_os.c written directly on libuv, as a libuv program would
 * (callbacks, no tasks). Same command line and output line.
 *
 *   spawn N            uv_spawn of /bin/true (stdio inherited); its exit
 *                      callback closes the handle and spawns the next
 *   work N INFLIGHT    INFLIGHT uv_work_t, each resubmitted with
 *                      uv_queue_work from its after-work callback until N
 *                      jobs ran (libuv's pool: UV_THREADPOOL_SIZE, default 4)
 *   read PATH CHUNK    uv_fs_open, then uv_fs_read of CHUNK bytes into one
 *                      reused page-aligned buffer at the file position, from
 *                      each read's callback, to the end; uv_fs_close
 */
#define _POSIX_C_SOURCE 200809L /* clock_gettime; before any header */
#include <fcntl.h>
#include <uv.h>

#include "bench_common.h"

#define CHECK(expr)                                                        \
  do {                                                                     \
    int rc_ = (expr);                                                      \
    if (rc_ < 0) {                                                         \
      fprintf(stderr, "%s:%d: %s failed: %s\n", __FILE__, __LINE__, #expr, \
              uv_err_name(rc_));                                           \
      exit(2);                                                             \
    }                                                                      \
  } while (0)

static uv_loop_t loop;
static long g_n, g_started, g_done;
static int g_ok = 1;

/* ----------------------------------------------------------------- spawn */

static void on_exit_cb(uv_process_t *p, int64_t status, int sig);

static void on_proc_closed(uv_handle_t *h) { free(h); }

static void spawn_one(void) {
  static char *args[] = {"/bin/true", NULL};
  uv_process_options_t opts;
  uv_process_t *p = (uv_process_t *) malloc(sizeof *p);
  if (p == NULL) {
    fprintf(stderr, "out of memory\n");
    exit(2);
  }
  memset(&opts, 0, sizeof opts);
  opts.file = args[0];
  opts.args = args;
  opts.exit_cb = on_exit_cb;
  /* stdio_count 0: the child inherits descriptors 0-2, as bench_os's. */
  {
    uv_stdio_container_t stdio[3];
    int i;
    for (i = 0; i < 3; i++) {
      stdio[i].flags = UV_INHERIT_FD;
      stdio[i].data.fd = i;
    }
    opts.stdio = stdio;
    opts.stdio_count = 3;
    CHECK(uv_spawn(&loop, p, &opts));
  }
  g_started++;
}

static void on_exit_cb(uv_process_t *p, int64_t status, int sig) {
  if (status != 0 || sig != 0) g_ok = 0;
  uv_close((uv_handle_t *) p, on_proc_closed);
  g_done++;
  if (g_started < g_n) spawn_one();
}

static void bench_spawn(uint64_t *wall, uint64_t *cpu) {
  uint64_t t0 = bench_now_ns(), c0 = bench_cpu_ns();
  spawn_one();
  CHECK(uv_run(&loop, UV_RUN_DEFAULT));
  *wall = bench_now_ns() - t0;
  *cpu = bench_cpu_ns() - c0;
  g_ok = g_ok && g_done == g_n;
}

/* ------------------------------------------------------------------ work */

static void noop_job(uv_work_t *req) { (void) req; }

static void after_job(uv_work_t *req, int status) {
  CHECK(status);
  g_done++;
  if (g_started < g_n) {
    g_started++;
    CHECK(uv_queue_work(&loop, req, noop_job, after_job));
  }
}

static void bench_work(long inflight, uint64_t *wall, uint64_t *cpu) {
  long i;
  uint64_t t0, c0;
  uv_work_t *reqs = (uv_work_t *) calloc((size_t) inflight, sizeof *reqs);
  if (reqs == NULL) {
    fprintf(stderr, "out of memory\n");
    exit(2);
  }
  t0 = bench_now_ns();
  c0 = bench_cpu_ns();
  for (i = 0; i < inflight && g_started < g_n; i++) {
    g_started++;
    CHECK(uv_queue_work(&loop, &reqs[i], noop_job, after_job));
  }
  CHECK(uv_run(&loop, UV_RUN_DEFAULT));
  *wall = bench_now_ns() - t0;
  *cpu = bench_cpu_ns() - c0;
  g_ok = g_ok && g_done == g_n;
  free(reqs);
}

/* ------------------------------------------------------------------ read */

static uv_fs_t read_req;
static uv_file read_fd;
static uv_buf_t read_buf;
static uint64_t read_total;
static unsigned char read_check;
static int read_closed;

static void on_read(uv_fs_t *req);

static void on_close(uv_fs_t *req) {
  CHECK((int) req->result);
  uv_fs_req_cleanup(req);
  read_closed = 1;
}

static void read_next(void) {
  CHECK(uv_fs_read(&loop, &read_req, read_fd, &read_buf, 1, -1, on_read));
}

static void on_read(uv_fs_t *req) {
  ssize_t n = req->result;
  CHECK((int) (n < 0 ? n : 0));
  uv_fs_req_cleanup(req);
  if (n == 0) {
    CHECK(uv_fs_close(&loop, &read_req, read_fd, on_close));
    return;
  }
  read_check ^= ((unsigned char *) read_buf.base)[n - 1];
  read_total += (uint64_t) n;
  read_next();
}

static void on_open(uv_fs_t *req) {
  CHECK((int) req->result);
  read_fd = (uv_file) req->result;
  uv_fs_req_cleanup(req);
  read_next();
}

static void bench_read(const char *path, long chunk, uint64_t *wall,
                       uint64_t *cpu) {
  uint64_t t0 = bench_now_ns(), c0 = bench_cpu_ns();
  /* Page-aligned, as a careful program's buffer: the kernel's copy out of
   * the page cache (rep movsb) runs several times slower into a
   * destination 16 bytes past a 64-byte boundary, where malloc puts a
   * chunk of this size (bench/README.md, "Reading the 100 KiB echo
   * figures"). */
  void *base = NULL;
  if (posix_memalign(&base, 4096, (size_t) chunk) != 0) base = NULL;
  read_buf = uv_buf_init((char *) base, (unsigned) chunk);
  if (read_buf.base == NULL) {
    fprintf(stderr, "out of memory\n");
    exit(2);
  }
  CHECK(uv_fs_open(&loop, &read_req, path, O_RDONLY, 0, on_open));
  CHECK(uv_run(&loop, UV_RUN_DEFAULT));
  *wall = bench_now_ns() - t0;
  *cpu = bench_cpu_ns() - c0;
  g_n = (long) read_total;
  g_ok = g_ok && read_closed && read_total > 0;
  if (getenv("BENCH_VERBOSE")) fprintf(stderr, "check byte %u\n", read_check);
  free(read_buf.base);
}

/* ------------------------------------------------------------------ main */

int main(int argc, char **argv) {
  const char *name = argc > 1 ? argv[1] : "";
  uint64_t wall = 0, cpu = 0;
  double rate;
  long arg = 0;
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
  CHECK(uv_loop_init(&loop));
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
  if (uv_loop_close(&loop) != 0) g_ok = 0;
  rate = (double) g_n / ((double) wall / 1e9);
  if (strcmp(name, "read") == 0) rate /= 1e6;
  bench_print_rate("libuv", name, g_n, rate, wall, cpu, g_ok);
  return g_ok ? 0 : 1;
}
