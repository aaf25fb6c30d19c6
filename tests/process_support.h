/* uvasync C test suite — helpers of the child process suites
 * (tests/test_process_*.c): spawning /bin/sh scripts, a task that waits
 * for a child, a task that reads a stream to its end, and checks on
 * /proc that no zombie or descriptor is left. */
#ifndef UVASYNC_TESTS_PROCESS_SUPPORT_H
#define UVASYNC_TESTS_PROCESS_SUPPORT_H

#include "support.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>

/* /bin/sh -c script [extra args...]: the options for it (stdio inherited
 * unless changed by the caller). argv must hold 8 pointers. */
static UVT_UNUSED uva_process_options_t sh_options(const char **argv,
                                                   const char *script) {
  uva_process_options_t o = UVA_PROCESS_OPTIONS_INIT;
  argv[0] = "sh";
  argv[1] = "-c";
  argv[2] = script;
  argv[3] = NULL;
  o.file = "/bin/sh";
  o.args = argv;
  return o;
}

static UVT_UNUSED uva_process_t *spawn_ok(uva_loop_t *loop,
                                          const uva_process_options_t *o) {
  uva_process_t *p = NULL;
  UVT_OK(uva_process_spawn(&p, loop, o));
  cr_assert_not_null(p);
  return p;
}

/* A task that waits for a process to exit. */
struct exit_waiter {
  int pc, rc;
  uva_process_t *p;
  int64_t status;
  int sig;
  int first_rc; /* the first call's result */
  int calls;
  int done;
};

static UVT_UNUSED int exit_waiter_call(struct exit_waiter *w, uva_task_t *t) {
  int rc = uva_process_wait(&w->status, &w->sig, w->p, t);
  if (w->calls++ == 0) w->first_rc = rc;
  return rc;
}

static UVT_UNUSED int step_wait_exit(uva_task_t *t, int status, void *d) {
  struct exit_waiter *w = (struct exit_waiter *) d;
  if (status == UVA_ECANCELED) {
    w->rc = status;
    w->done = 1;
    return status;
  }
  CO_BEGIN(w);
  w->status = -1;
  w->sig = -1;
  CO_CALL(w, exit_waiter_call(w, t));
  w->done = 1;
  CO_END(w);
}

/* A task that reads a stream to its end into a growing buffer, then
 * closes it. */
struct reader {
  int pc, rc;
  uva_stream_t *s;
  char *data;
  size_t len, cap;
  size_t n;
  int done;
};

static UVT_UNUSED int step_read_all(uva_task_t *t, int status, void *d) {
  struct reader *r = (struct reader *) d;
  if (status == UVA_ECANCELED) return status;
  CO_BEGIN(r);
  for (;;) {
    if (r->cap - r->len < 65536) {
      r->cap = r->cap * 2 + 65536;
      r->data = (char *) realloc(r->data, r->cap + 1);
      cr_assert_not_null(r->data);
    }
    CO_CALL(r,
            uva_stream_read(&r->n, r->s, t, r->data + r->len, r->cap - r->len));
    if (r->rc != 0 || r->n == 0) break;
    r->len += r->n;
  }
  r->data[r->len] = '\0';
  UVT_OK(uva_stream_close(r->s, NULL, NULL));
  r->done = 1;
  CO_END(r);
}

/* Spawn script with stdout (and stderr, as UVA_STDIO_STDOUT) on a pipe,
 * run the loop until it ended, and return what it printed (malloc'd).
 * *status and *sig receive its end. */
static UVT_UNUSED char *sh_output(uva_loop_t *loop, uva_process_options_t *o,
                                  int64_t *status, int *sig) {
  struct reader r;
  struct exit_waiter w;
  memset(&r, 0, sizeof r);
  memset(&w, 0, sizeof w);
  o->stdio[1].kind = UVA_STDIO_PIPE;
  if (o->stdio[2].kind == UVA_STDIO_INHERIT)
    o->stdio[2].kind = UVA_STDIO_STDOUT;
  w.p = spawn_ok(loop, o);
  UVT_OK(uva_process_stream(&r.s, w.p, 1));
  spawn(loop, step_read_all, &r);
  spawn(loop, step_wait_exit, &w);
  run(loop);
  cr_assert(r.done && w.done);
  UVT_OK(w.rc);
  UVT_OK(r.rc);
  if (status != NULL) *status = w.status;
  if (sig != NULL) *sig = w.sig;
  UVT_OK(uva_process_close(w.p, NULL, NULL));
  run(loop);
  return r.data;
}

/* The state letter of process pid from /proc (0 if there is no such
 * process: it was reaped). */
static UVT_UNUSED char proc_state(int pid) {
  char path[64], buf[512];
  snprintf(path, sizeof path, "/proc/%d/stat", pid);
  FILE *f = fopen(path, "r");
  if (f == NULL) return 0;
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = '\0';
  const char *close_paren = strrchr(buf, ')'); /* the name may hold spaces */
  if (close_paren == NULL || close_paren[1] == '\0') return 0;
  return close_paren[2];
}

/* Whether pid is a child of ours that nobody reaped yet (a zombie, or
 * still running): waitpid(WNOHANG) would say 0 or return it. Does not
 * reap. */
static UVT_UNUSED int is_our_child(int pid) {
  siginfo_t si;
  memset(&si, 0, sizeof si);
  return waitid(P_PID, (id_t) pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0;
}

/* Wait up to ms for pid to be gone (reaped by someone: no /proc entry and
 * not our child any more). */
static UVT_UNUSED int gone_within(int pid, double ms) {
  double end = uvt_ms() + ms;
  for (;;) {
    if (!is_our_child(pid) && proc_state(pid) == 0) return 1;
    if (uvt_ms() > end) return 0;
    uvt_sleep_ms(2);
  }
}

/* A task that polls, every millisecond up to a deadline, until pid is
 * gone: while it runs the loop runs, and a closed handle's child is reaped
 * by the loop it was spawned on (a loop with nothing to do does not poll,
 * as in libuv). */
struct gone_watch {
  int pid;
  double end;
  int gone;
};

static UVT_UNUSED int step_watch_gone(uva_task_t *t, int status, void *d) {
  struct gone_watch *g = (struct gone_watch *) d;
  (void) status;
  if (!is_our_child(g->pid) && proc_state(g->pid) == 0) {
    g->gone = 1;
    return 0;
  }
  if (uvt_ms() > g->end) return 0;
  UVT_OK(uva_task_sleep(t, 1));
  return UVA_TASK_PENDING;
}

static UVT_UNUSED int run_until_gone(uva_loop_t *loop, int pid, double ms) {
  struct gone_watch g = {pid, uvt_ms() + ms, 0};
  spawn(loop, step_watch_gone, &g);
  run(loop);
  return g.gone;
}

static UVT_UNUSED void count_process_close(uva_process_t *p, void *data) {
  (void) p;
  ++*(int *) data;
}

/* Descriptors open in this process. */
static UVT_UNUSED int count_fds(void) {
  DIR *d = opendir("/proc/self/fd");
  cr_assert_not_null(d);
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL)
    if (e->d_name[0] != '.') n++;
  closedir(d);
  return n - 1; /* the directory's own descriptor */
}

#endif /* UVASYNC_TESTS_PROCESS_SUPPORT_H */
