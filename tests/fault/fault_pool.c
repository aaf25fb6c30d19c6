/* Fault injection of the loop's thread pool and its file jobs: a scenario
 * that submits jobs and runs every file operation and a sendfile, run
 * once with no fault to count the core's allocations (and pool thread
 * starts), then once for every N up to that count with the Nth failing.
 *
 * Each run checks: every starting call returns 0 or the fault's code
 * (UVA_ENOMEM for an allocation; UVA_EAGAIN when no pool thread could
 * start and none runs, be it its start or its allocation that failed), every job that started ends with its operation's
 * result (a readdir may end with UVA_ENOMEM: it allocates on the pool
 * thread), a job's dtor runs exactly once for each submit that succeeded
 * and never for one that failed, no descriptor is left open, the scenario
 * does not hang (an alarm fails it), and uva_loop_close returns 0. Leaks
 * are LeakSanitizer's job (built with -DUVA_SANITIZE=address).
 *
 * Needs -DUVA_FAULT_INJECTION=ON (cmake/uvasync_tests.cmake).
 *
 *   test_fault_pool             all N, for both kinds
 *   test_fault_pool alloc 17    one run, the 17th allocation fails */
#define _GNU_SOURCE
#include <uvasync.h>

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

/* Internal, test-build only (src/fault.cpp). */
void uva__fault_arm(int kinds, long n);
long uva__fault_calls(void);
#define FAULT_ALLOC 1
#define FAULT_THREAD 4

static struct {
  uva_loop_t *loop;
  int kind;
  long n;
  int problems;
  int faults; /* codes the fault explains */
  int dtors, submitted;
  int verbose;
  char dir[64];
} R;

static void problem(const char *what, int rc) {
  fprintf(stderr, "FAIL (%s fault at call %ld): %s: %s\n",
          R.kind == FAULT_ALLOC ? "allocation" : "thread", R.n, what,
          uva_err_name(rc));
  R.problems++;
}

static void on_alarm(int sig) {
  (void) sig;
  static const char msg[] = "FAIL: the pool scenario hangs\n";
  if (write(2, msg, sizeof msg - 1) < 0) _exit(3);
  _exit(2);
}

/* A starting call's code: 1 if the job exists, 0 if the fault explains
 * the failure. */
static int started(const char *what, int rc) {
  if (rc == 0) return 1;
  /* An allocation: ENOMEM, or EAGAIN when it was the first pool thread's
   * (no thread could start). A thread start: EAGAIN. */
  int explained =
      rc == UVA_EAGAIN || (rc == UVA_ENOMEM && R.kind == FAULT_ALLOC);
  if (explained && R.n > 0)
    R.faults++;
  else
    problem(what, rc);
  return 0;
}

/* Run the job to its end and check its status; close it. */
static void finish(const char *what, uva_work_t *w, int want) {
  if (uva_loop_run(R.loop, UVA_RUN_DEFAULT) != 0) problem("run", -1);
  int rc = uva_work_wait(w, NULL);
  if (rc != want) problem(what, rc);
  uva_work_close(w);
}

static void count_dtor(void *d) {
  (void) d;
  R.dtors++;
}

static void set_value(void *d) { *(int *) d = 42; }

static char *in_dir(char *buf, const char *name) {
  snprintf(buf, 128, "%s/%s", R.dir, name);
  return buf;
}

static int count_fds(void) {
  int n = 0;
  DIR *d = opendir("/proc/self/fd");
  if (d == NULL) return -1;
  while (readdir(d) != NULL)
    n++;
  closedir(d);
  return n;
}

/* The scenario, with everything it needs prepared before the fault is
 * armed: one run of every operation, each independent of the others. */
static long run_once(int kind, long n) {
  char p[128], q[128];
  memset(&R, 0, sizeof R);
  R.kind = kind;
  R.n = n;
  R.verbose = getenv("FAULT_VERBOSE") != NULL;
  strcpy(R.dir, "/tmp/uva_fault_pool_XXXXXX");
  if (mkdtemp(R.dir) == NULL) abort();
  int fds_before = count_fds();
  int fd = open(in_dir(p, "f"), O_CREAT | O_RDWR, 0600);
  if (fd < 0 || write(fd, "0123456789", 10) != 10) abort();
  int fd_close = open(p, O_RDONLY);
  if (fd_close < 0 || mkdir(in_dir(p, "r"), 0700) != 0) abort();
  close(open(in_dir(p, "a"), O_CREAT | O_WRONLY, 0600));
  close(open(in_dir(p, "u"), O_CREAT | O_WRONLY, 0600));
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0) abort();
  uva_stream_t *s;
  if (uva_loop_new(&R.loop) != 0 || uva_stream_open_fd(&s, R.loop, sv[0]))
    abort();
  uva_loop_configure(R.loop, UVA_LOOP_POOL_SIZE, 2);
  alarm(20);

  uva__fault_arm(kind, n);
  uva_work_t *w;
  int values[3] = {0, 0, 0};
  for (int i = 0; i < 3; i++) {
    if (started("submit", uva_work_submit(&w, R.loop, set_value, &values[i],
                                          count_dtor, NULL))) {
      R.submitted++;
      finish("job", w, 0);
      if (values[i] != 42) problem("job value", values[i]);
    }
  }
  if (started("open", uva_fs_open(&w, R.loop, in_dir(p, "f"), O_RDONLY, 0))) {
    int64_t got = -1;
    if (uva_loop_run(R.loop, UVA_RUN_DEFAULT) != 0) problem("run", -1);
    if (uva_work_wait(w, NULL) != 0 || uva_fs_result(&got, w) != 0)
      problem("open", -1);
    else
      close((int) got);
    uva_work_close(w);
  }
  if (started("read", uva_fs_read(&w, R.loop, fd, 10, 0))) {
    const void *data;
    size_t len = 0;
    if (uva_loop_run(R.loop, UVA_RUN_DEFAULT) != 0) problem("run", -1);
    if (uva_work_wait(w, NULL) != 0 || uva_fs_data(&data, &len, w) != 0 ||
        len != 10 || memcmp(data, "0123456789", 10) != 0)
      problem("read", -1);
    uva_work_close(w);
  }
  if (started("write", uva_fs_write(&w, R.loop, fd, "abc", 3, 20)))
    finish("write", w, 0);
  if (started("fsync", uva_fs_fsync(&w, R.loop, fd, 1))) finish("fsync", w, 0);
  if (started("ftruncate", uva_fs_ftruncate(&w, R.loop, fd, 12)))
    finish("ftruncate", w, 0);
  if (started("fstat", uva_fs_fstat(&w, R.loop, fd))) finish("fstat", w, 0);
  if (started("stat", uva_fs_stat(&w, R.loop, in_dir(p, "f"))))
    finish("stat", w, 0);
  if (started("lstat", uva_fs_lstat(&w, R.loop, in_dir(p, "f"))))
    finish("lstat", w, 0);
  if (started("mkdir", uva_fs_mkdir(&w, R.loop, in_dir(p, "m"), 0700)))
    finish("mkdir", w, 0);
  if (started("rmdir", uva_fs_rmdir(&w, R.loop, in_dir(p, "r"))))
    finish("rmdir", w, 0);
  if (started("rename",
              uva_fs_rename(&w, R.loop, in_dir(p, "a"), in_dir(q, "b"))))
    finish("rename", w, 0);
  if (started("unlink", uva_fs_unlink(&w, R.loop, in_dir(p, "u"))))
    finish("unlink", w, 0);
  if (started("readdir", uva_fs_readdir(&w, R.loop, R.dir))) {
    if (uva_loop_run(R.loop, UVA_RUN_DEFAULT) != 0) problem("run", -1);
    int rc = uva_work_wait(w, NULL);
    if (rc == UVA_ENOMEM && kind == FAULT_ALLOC && n > 0)
      R.faults++; /* on the pool thread */
    else if (rc != 0)
      problem("readdir", rc);
    uva_work_close(w);
  }
  if (started("close", uva_fs_close(&w, R.loop, fd_close)))
    finish("close", w, 0);
  else
    close(fd_close);
  if (started("sendfile", uva_fs_sendfile(&w, s, fd, 0, 10))) {
    char buf[16];
    finish("sendfile", w, 0);
    if (recv(sv[1], buf, sizeof buf, 0) != 10) problem("sendfile bytes", -1);
  }
  long calls = uva__fault_calls();
  uva__fault_arm(0, 0);

  uva_stream_close(s, NULL, NULL);
  uva_loop_run(R.loop, UVA_RUN_DEFAULT);
  int rc = uva_loop_close(R.loop);
  if (rc != 0) problem("loop close", rc);
  alarm(0);
  if (R.dtors != R.submitted) problem("dtor calls", R.dtors);
  /* A fault may pass unseen (a second pool thread that does not start
   * while one runs: the job waits for that one), so n > 0 need not show
   * an error; n == 0 must not. */
  if (n == 0 && R.faults != 0) problem("error without a fault", 0);
  close(fd);
  close(sv[1]);
  if (count_fds() != fds_before) problem("descriptors left open", 0);
  const char *names[] = {"f", "a", "b", "u", "m", "r"};
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
    if (unlink(in_dir(p, names[i])) != 0) rmdir(p);
  rmdir(R.dir);
  if (R.verbose)
    fprintf(stderr, "  %ld calls, %d faults explained\n", calls, R.faults);
  return calls;
}

/* libuv opens descriptors of its own once per process (its signal
 * handling's lock pipe) with the first loop: open them before counting. */
static void warm_up(void) {
  uva_loop_t *loop;
  if (uva_loop_new(&loop) != 0 || uva_loop_close(loop) != 0) abort();
}

int main(int argc, char **argv) {
  signal(SIGALRM, on_alarm);
  warm_up();
  int problems = 0;
  if (argc == 3) { /* one run, for debugging */
    int kind = strcmp(argv[1], "alloc") == 0 ? FAULT_ALLOC : FAULT_THREAD;
    setenv("FAULT_VERBOSE", "1", 1);
    run_once(kind, atol(argv[2]));
    return R.problems != 0;
  }
  static const int kinds[] = {FAULT_ALLOC, FAULT_THREAD};
  long injected = 0;
  for (int k = 0; k < 2; k++) {
    long total = run_once(kinds[k], 0);
    problems += R.problems;
    long these = 0, seen = 0;
    for (long n = 1; n <= total; n++) {
      long calls = run_once(kinds[k], n);
      problems += R.problems;
      if (n <= calls) these++;
      if (R.faults > 0) seen++;
      if (calls > total) total = calls;
    }
    injected += these;
    printf("%s faults: N = 1..%ld, %ld injected, %ld returned an error\n",
           kinds[k] == FAULT_ALLOC ? "allocation" : "thread start", total,
           these, seen);
  }
  printf("pool fault injection: %ld faults injected, %d problems\n", injected,
         problems);
  return problems != 0;
}
