/* Fault injection for child processes and signal watchers: a scenario — a
 * signal watcher waited on, and a child (sh running cat) with its stdin
 * and stdout on pipes, fed a line and read to its end, waited for — run
 * once with no fault to count the core's allocations and libuv calls,
 * then once for every N up to that count with the Nth call failing (first
 * allocations, then libuv calls: uv_spawn, uv_signal_init/start, the
 * streams' calls).
 *
 * Each run checks: the scenario ends (an alarm fails the program
 * otherwise), it either completed exactly or an API call reported an
 * error, uva_loop_close returns 0 at the end, no descriptor is left open
 * (/proc/self/fd counted before and after) and no child is left unreaped.
 * Leaks are LeakSanitizer's job (built with -DUVA_SANITIZE=address).
 *
 *   test_fault_process            all N
 *   test_fault_process alloc 17   one run, the 17th allocation fails
 */
#define _GNU_SOURCE
#include <uvasync.h>

#include "co.h"

#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Internal, test-build only (src/fault.cpp). */
void uva__fault_arm(int kinds, long n);
long uva__fault_calls(void);
#define FAULT_ALLOC 1
#define FAULT_IO 2

static struct {
  uva_loop_t *loop;
  uva_process_t *proc;
  uva_signal_t *sig;
  int errors; /* API calls that returned an error */
  int verbose;
  /* what the scenario saw */
  uint64_t sig_count;
  int64_t status;
  int exited;
  char out[64];
  size_t outlen;
} R;

static int current_kind;
static long current_n;
static int warming_up; /* the first run: descriptors not counted */

static void fail(const char *what, int rc) {
  R.errors++;
  if (R.verbose) fprintf(stderr, "  %s: %s\n", what, uva_err_name(rc));
}

static void on_alarm(int sig) {
  (void) sig;
  static const char msg[] = "FAIL: a run hung (lost wake-up?)\n";
  if (write(2, msg, sizeof msg - 1) < 0) _exit(3);
  fprintf(stderr, "kind %d, n %ld\n", current_kind, current_n);
  _exit(2);
}

static int count_fds(void) {
  DIR *d = opendir("/proc/self/fd");
  if (d == NULL) abort();
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL)
    if (e->d_name[0] != '.') n++;
  closedir(d);
  return n - 1;
}

static int is_our_child(int pid) {
  siginfo_t si;
  memset(&si, 0, sizeof si);
  return waitid(P_PID, (id_t) pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0;
}

/* ---- tasks ------------------------------------------------------------- */

struct ctx {
  int pc, rc;
  uva_stream_t *s;
  size_t n;
  char buf[64];
};

/* Write a line to the child's stdin, then close it (cat sees its end). */
static int feeder(uva_task_t *t, int status, void *d) {
  struct ctx *c = d;
  if (status == UVA_ECANCELED) return status;
  CO_BEGIN(c);
  CO_CALL(c, uva_stream_write_drain(c->s, t, "hello\n", 6));
  if (c->rc != 0) fail("write", c->rc);
  uva_stream_close(c->s, NULL, NULL);
  CO_END(c);
}

static int reader(uva_task_t *t, int status, void *d) {
  struct ctx *c = d;
  if (status == UVA_ECANCELED) return status;
  CO_BEGIN(c);
  for (;;) {
    CO_CALL(c, uva_stream_read(&c->n, c->s, t, c->buf, sizeof c->buf));
    if (c->rc != 0) {
      fail("read", c->rc);
      break;
    }
    if (c->n == 0) break;
    if (R.outlen + c->n < sizeof R.out) {
      memcpy(R.out + R.outlen, c->buf, c->n);
      R.outlen += c->n;
    }
  }
  uva_stream_close(c->s, NULL, NULL);
  CO_END(c);
}

static int exit_waiter(uva_task_t *t, int status, void *d) {
  struct ctx *c = d;
  if (status == UVA_ECANCELED) return status;
  CO_BEGIN(c);
  CO_CALL(c, uva_process_wait(&R.status, NULL, R.proc, t));
  if (c->rc != 0)
    fail("process_wait", c->rc);
  else
    R.exited = 1;
  CO_END(c);
}

static int sig_waiter(uva_task_t *t, int status, void *d) {
  struct ctx *c = d;
  if (status == UVA_ECANCELED) return status;
  CO_BEGIN(c);
  raise(SIGUSR1);
  CO_CALL(c, uva_signal_wait(&R.sig_count, R.sig, t));
  if (c->rc != 0) fail("signal_wait", c->rc);
  CO_END(c);
}

static void spawn_task(uva_task_step_cb step, struct ctx *c) {
  int rc = uva_task_spawn(NULL, R.loop, step, c, NULL);
  if (rc != 0) {
    fail("task_spawn", rc);
    if (c->s != NULL) uva_stream_close(c->s, NULL, NULL);
  }
}

/* ---- one run -------------------------------------------------------------- */

/* Returns the calls counted (to find the range of N). */
static long run_once(int kind, long n, int *problems) {
  current_kind = kind;
  current_n = n;
  memset(&R, 0, sizeof R);
  R.verbose = getenv("FAULT_VERBOSE") != NULL;
  R.status = -1;
  int fds_before = count_fds();
  if (uva_loop_new(&R.loop) != 0) abort();
  struct ctx feed, rd, wt, sg;
  memset(&feed, 0, sizeof feed);
  memset(&rd, 0, sizeof rd);
  memset(&wt, 0, sizeof wt);
  memset(&sg, 0, sizeof sg);
  int pid = -1;
  alarm(20);
  uva__fault_arm(kind, n);

  int rc = uva_signal_new(&R.sig, R.loop, SIGUSR1);
  if (rc != 0) {
    fail("signal_new", rc);
    R.sig = NULL;
  }
  const char *argv[] = {"sh", "-c", "cat; echo done", NULL};
  uva_process_options_t o = UVA_PROCESS_OPTIONS_INIT;
  o.file = "/bin/sh";
  o.args = argv;
  o.stdio[0].kind = UVA_STDIO_PIPE;
  o.stdio[1].kind = UVA_STDIO_PIPE;
  o.stdio[2].kind = UVA_STDIO_STDOUT;
  o.flags = UVA_PROCESS_KILL_ON_CLOSE;
  rc = uva_process_spawn(&R.proc, R.loop, &o);
  if (rc != 0) {
    fail("process_spawn", rc);
    R.proc = NULL;
  } else {
    if (uva_process_pid(&pid, R.proc) != 0) abort();
    if (uva_process_stream(&feed.s, R.proc, 0) != 0 ||
        uva_process_stream(&rd.s, R.proc, 1) != 0)
      abort();
    spawn_task(feeder, &feed);
    spawn_task(reader, &rd);
    spawn_task(exit_waiter, &wt);
  }
  if (R.sig != NULL) spawn_task(sig_waiter, &sg);
  rc = uva_loop_run(R.loop, UVA_RUN_DEFAULT);
  if (rc != 0) fail("loop_run", rc);
  long calls = uva__fault_calls();
  uva__fault_arm(0, 0);

  /* Exactly right, or an error was reported. */
  int complete = R.proc != NULL && R.exited && R.status == 0 &&
                 R.outlen == 11 && memcmp(R.out, "hello\ndone\n", 11) == 0 &&
                 R.sig != NULL && R.sig_count == 1;
  if (!complete && R.errors == 0) {
    fprintf(stderr, "FAIL: kind %d n %ld: incomplete without an error\n", kind,
            n);
    (*problems)++;
  }
  if (n == 0 && !complete) {
    fprintf(stderr, "FAIL: the clean run did not complete\n");
    (*problems)++;
  }

  uva_process_close(R.proc, NULL, NULL);
  uva_signal_close(R.sig, NULL, NULL);
  uva_loop_run(R.loop, UVA_RUN_DEFAULT);
  rc = uva_loop_close(R.loop);
  if (rc != 0) {
    fprintf(stderr, "FAIL: kind %d n %ld: uva_loop_close: %s\n", kind, n,
            uva_err_name(rc));
    (*problems)++;
  }
  alarm(0);
  if (!warming_up && count_fds() != fds_before) {
    fprintf(stderr, "FAIL: kind %d n %ld: %d descriptors before, %d after\n",
            kind, n, fds_before, count_fds());
    (*problems)++;
  }
  if (pid > 0) { /* killed on close if it ran on; the reaper takes it */
    struct timespec ts = {0, 1000000};
    int i = 0;
    while (is_our_child(pid) && i++ < 5000)
      nanosleep(&ts, NULL);
    if (is_our_child(pid)) {
      fprintf(stderr, "FAIL: kind %d n %ld: child %d left unreaped\n", kind, n,
              pid);
      (*problems)++;
    }
  }
  return calls;
}

int main(int argc, char **argv) {
  signal(SIGALRM, on_alarm);
  int problems = 0;
  /* What lives as long as the process (libuv's signal lock pipe) comes
   * into being in a first run, before descriptors are counted. */
  warming_up = 1;
  run_once(FAULT_ALLOC, 0, &problems);
  warming_up = 0;
  if (argc == 3) { /* one run, for debugging */
    int kind = strcmp(argv[1], "alloc") == 0 ? FAULT_ALLOC : FAULT_IO;
    setenv("FAULT_VERBOSE", "1", 1);
    run_once(kind, atol(argv[2]), &problems);
    return problems != 0;
  }
  static const int kinds[] = {FAULT_ALLOC, FAULT_IO};
  long injected = 0;
  /* Both pollers: libuv's reads the pipes through other libuv calls. */
  for (int poller = 0; poller < 2; poller++) {
    if (poller == 1) setenv("UVA_POLLER", "libuv", 1);
    for (int k = 0; k < 2; k++) {
      long total = run_once(kinds[k], 0, &problems);
      long these = 0;
      for (long n = 1; n <= total; n++) {
        long calls = run_once(kinds[k], n, &problems);
        if (n <= calls) these++;
        if (calls > total) total = calls;
      }
      injected += these;
      printf("%s poller, %s faults: N = 1..%ld, %ld injected\n",
             poller == 0 ? "default" : "libuv",
             kinds[k] == FAULT_ALLOC ? "allocation" : "libuv call", total,
             these);
    }
  }
  printf("process fault injection: %ld faults injected, %d problems\n",
         injected, problems);
  return problems != 0;
}
