/* Child processes: what a spawn refuses, a spawn that fails leaves nothing
 * behind, and the waits end as the other waits of the core do (closed
 * under a waiting task, cancelled, withdrawn). */
#include "process_support.h"

#include <stddef.h>

Test(process_errors, bad_options, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  uva_process_t *p = NULL;
  const char *argv[] = {"true", NULL};
  const char *empty[] = {NULL};
  uva_process_options_t o = UVA_PROCESS_OPTIONS_INIT;
  o.args = argv;
  UVT_EQ(uva_process_spawn(NULL, loop, &o), UVA_EINVAL);
  UVT_EQ(uva_process_spawn(&p, loop, NULL), UVA_EINVAL);
  UVT_EQ(uva_process_spawn(&p, NULL, &o), UVA_EINVAL);
  UVT_EQ(uva_process_spawn(&p, (uva_loop_t *) &o, &o), UVA_EHANDLEKIND);
  o.size = offsetof(uva_process_options_t, flags);
  UVT_EQ(uva_process_spawn(&p, loop, &o), UVA_EINVAL); /* too small */
  o.size = sizeof o;
  o.args = NULL;
  UVT_EQ(uva_process_spawn(&p, loop, &o), UVA_EINVAL);
  o.args = empty;
  UVT_EQ(uva_process_spawn(&p, loop, &o), UVA_EINVAL);
  o.args = argv;
  o.flags = 4; /* not a flag */
  UVT_EQ(uva_process_spawn(&p, loop, &o), UVA_EINVAL);
  o.flags = 0;
  int bad_kind = 5;
  memcpy(&o.stdio[1].kind, &bad_kind, sizeof bad_kind);
  UVT_EQ(uva_process_spawn(&p, loop, &o), UVA_EINVAL);
  bad_kind = -1;
  memcpy(&o.stdio[1].kind, &bad_kind, sizeof bad_kind);
  UVT_EQ(uva_process_spawn(&p, loop, &o), UVA_EINVAL);
  o.stdio[1].kind = UVA_STDIO_FD;
  o.stdio[1].fd = -1;
  UVT_EQ(uva_process_spawn(&p, loop, &o), UVA_EINVAL);
  o.stdio[1].kind = UVA_STDIO_STDOUT; /* descriptor 2 only */
  UVT_EQ(uva_process_spawn(&p, loop, &o), UVA_EINVAL);
  o.stdio[1].kind = UVA_STDIO_INHERIT;
  o.stdio[0].kind = UVA_STDIO_STDOUT;
  UVT_EQ(uva_process_spawn(&p, loop, &o), UVA_EINVAL);
  cr_assert_null(p);
  UVT_CLOSE_LOOP(loop);
}

Test(process_errors, bad_handles, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  uva_process_t *notp = (uva_process_t *) loop;
  int pid;
  uva_stream_t *s;
  UVT_EQ(uva_process_pid(&pid, NULL), UVA_EINVAL);
  UVT_EQ(uva_process_pid(&pid, notp), UVA_EHANDLEKIND);
  UVT_EQ(uva_process_stream(&s, notp, 1), UVA_EHANDLEKIND);
  UVT_EQ(uva_process_wait(NULL, NULL, NULL, NULL), UVA_EINVAL);
  UVT_EQ(uva_process_wait(NULL, NULL, notp, NULL), UVA_EHANDLEKIND);
  UVT_EQ(uva_process_kill(NULL, SIGTERM), UVA_EINVAL);
  UVT_EQ(uva_process_kill(notp, SIGTERM), UVA_EHANDLEKIND);
  UVT_OK(uva_process_close(NULL, NULL, NULL));
  UVT_EQ(uva_process_close(notp, NULL, NULL), UVA_EHANDLEKIND);
  UVT_CLOSE_LOOP(loop);
}

/* A missing program: UVA_ENOENT, no descriptor of the pipes left open,
 * and the loop closes at once. */
Test(process_errors, missing_program_enoent_leaks_nothing, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  /* A first child sets up what lives as long as the loop or the process
   * (libuv's signal pipes). */
  const char *argv0[] = {"true", NULL};
  uva_process_options_t o0 = UVA_PROCESS_OPTIONS_INIT;
  o0.args = argv0;
  struct exit_waiter w;
  memset(&w, 0, sizeof w);
  w.p = spawn_ok(loop, &o0);
  spawn(loop, step_wait_exit, &w);
  run(loop);
  UVT_OK(uva_process_close(w.p, NULL, NULL));
  run(loop);

  int before = count_fds();
  const char *argv[] = {"uvasync-no-such-program", "x", NULL};
  uva_process_options_t o = UVA_PROCESS_OPTIONS_INIT;
  o.args = argv;
  for (int i = 0; i < 3; i++)
    o.stdio[i].kind = UVA_STDIO_PIPE;
  uva_process_t *p = NULL;
  UVT_EQ(uva_process_spawn(&p, loop, &o), UVA_ENOENT);
  cr_assert_null(p);
  o.file = "/nonexistent/dir/prog"; /* a path: no PATH lookup */
  UVT_EQ(uva_process_spawn(&p, loop, &o), UVA_ENOENT);
  o.file = NULL;
  o.stdio[1].kind = UVA_STDIO_NULL;
  o.stdio[2].kind = UVA_STDIO_STDOUT;
  UVT_EQ(uva_process_spawn(&p, loop, &o), UVA_ENOENT);
  cr_assert_eq(count_fds(), before, "descriptors: %d before, %d after", before,
               count_fds());
  UVT_CLOSE_LOOP(loop); /* nothing left to run first */
}

Test(process_errors, bad_cwd_not_executable_bad_fd, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  const char *argv[] = {"true", NULL};
  uva_process_options_t o = UVA_PROCESS_OPTIONS_INIT;
  o.args = argv;
  o.cwd = "/nonexistent-uvasync-dir";
  uva_process_t *p = NULL;
  UVT_EQ(uva_process_spawn(&p, loop, &o), UVA_ENOENT);
  char path[] = "/tmp/uvasync-noexec-XXXXXX";
  int fd = mkstemp(path);
  cr_assert_geq(fd, 0);
  cr_assert_eq(write(fd, "#!/bin/sh\n", 10), 10);
  close(fd);
  chmod(path, 0644);
  const char *argv2[] = {path, NULL};
  o.args = argv2;
  o.cwd = NULL;
  UVT_EQ(uva_process_spawn(&p, loop, &o), UVA_EACCES);
  /* Executable, but neither a binary nor a script with "#!": the exec
   * fails (as for CPython's subprocess; execvp's /bin/sh retry is not
   * done), with a code of its own that has a name and a message. */
  fd = open(path, O_WRONLY | O_TRUNC);
  cr_assert_geq(fd, 0);
  cr_assert_eq(write(fd, "echo hi\n", 8), 8);
  close(fd);
  chmod(path, 0755);
  UVT_EQ(uva_process_spawn(&p, loop, &o), UVA_ENOEXEC);
  cr_assert_str_eq(uva_err_name(UVA_ENOEXEC), "ENOEXEC");
  cr_assert_str_eq(uva_strerror(UVA_ENOEXEC), "exec format error");
  unlink(path);
  /* UVA_STDIO_FD of a descriptor that is not open. */
  o.args = argv;
  o.stdio[1].kind = UVA_STDIO_FD;
  o.stdio[1].fd = 1000;
  cr_assert_eq(fcntl(1000, F_GETFD), -1);
  UVT_EQ(uva_process_spawn(&p, loop, &o), UVA_EBADF);
  cr_assert_null(p);
  UVT_CLOSE_LOOP(loop);
}

Test(process_errors, loop_close_refuses_an_open_process, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  const char *argv[] = {"true", NULL};
  uva_process_options_t o = UVA_PROCESS_OPTIONS_INIT;
  o.args = argv;
  struct exit_waiter w;
  memset(&w, 0, sizeof w);
  w.p = spawn_ok(loop, &o);
  spawn(loop, step_wait_exit, &w);
  run(loop);
  UVT_EQ(uva_loop_close(loop), UVA_EBUSY);
  UVT_OK(uva_process_close(w.p, NULL, NULL));
  UVT_OK(uva_process_close(w.p, NULL, NULL)); /* a second close: nothing */
  UVT_CLOSE_LOOP(loop);
}

/* Closed under a waiting task: the repeated call returns UVA_ECLOSED, the
 * close callback runs once, nothing is used after it is freed (ASan). */
Test(process_errors, close_under_a_waiting_task, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  const char *argv[] = {"sleep", "30", NULL};
  uva_process_options_t o = UVA_PROCESS_OPTIONS_INIT;
  o.args = argv;
  o.flags = UVA_PROCESS_KILL_ON_CLOSE;
  struct exit_waiter w[2];
  memset(w, 0, sizeof w);
  uva_process_t *p = spawn_ok(loop, &o);
  int pid;
  UVT_OK(uva_process_pid(&pid, p));
  for (int i = 0; i < 2; i++) {
    w[i].p = p;
    spawn(loop, step_wait_exit, &w[i]);
  }
  UVT_OK(uva_loop_run(loop, UVA_RUN_NOWAIT));
  UVT_EQ(w[0].first_rc, UVA_EAGAIN);
  int closed = 0;
  UVT_OK(uva_process_close(p, count_process_close, &closed));
  UVT_EQ(uva_process_kill(p, 0), UVA_ECLOSED);
  UVT_EQ(uva_process_pid(&pid, p), UVA_ECLOSED);
  cr_assert(run_until_gone(loop, pid, 5000), "killed on close and reaped");
  for (int i = 0; i < 2; i++) {
    cr_assert(w[i].done);
    UVT_EQ(w[i].rc, UVA_ECLOSED);
  }
  run(loop);
  cr_assert_eq(closed, 1);
  UVT_CLOSE_LOOP(loop);
}

/* Cancelled out of its wait, the task is gone from the process's waiters;
 * the child runs on until it is killed. */
static int step_cancel_after(uva_task_t *t, int status, void *d) {
  uva_task_t *victim = (uva_task_t *) d;
  (void) status;
  static int slept;
  if (!slept) {
    slept = 1;
    UVT_OK(uva_task_sleep(t, 20));
    return UVA_TASK_PENDING;
  }
  UVT_OK(uva_task_cancel(victim));
  return 0;
}

Test(process_errors, cancelled_wait_then_kill_on_close, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  const char *argv[] = {"sleep", "30", NULL};
  uva_process_options_t o = UVA_PROCESS_OPTIONS_INIT;
  o.args = argv;
  o.flags = UVA_PROCESS_KILL_ON_CLOSE;
  struct exit_waiter w;
  memset(&w, 0, sizeof w);
  w.p = spawn_ok(loop, &o);
  int pid;
  UVT_OK(uva_process_pid(&pid, w.p));
  uva_task_t *t;
  UVT_OK(uva_task_spawn(&t, loop, step_wait_exit, &w, NULL));
  spawn(loop, step_cancel_after, t);
  run(loop); /* ends: the waiter is cancelled, nothing else keeps it */
  UVT_EQ(w.rc, UVA_ECANCELED);
  UVT_EQ(w.first_rc, UVA_EAGAIN);
  UVT_OK(uva_task_release(t));
  cr_assert(is_our_child(pid), "still running");
  UVT_OK(uva_process_kill(w.p, 0));
  UVT_OK(uva_process_close(w.p, NULL, NULL));
  cr_assert(run_until_gone(loop, pid, 5000), "killed on close and reaped");
  UVT_CLOSE_LOOP(loop);
}

/* uva_task_withdraw: the task leaves the wait and is not woken by the
 * exit; a second withdraw finds nothing. */
struct once {
  uva_process_t *p;
  int runs, first_rc;
};

static int step_wait_once(uva_task_t *t, int status, void *d) {
  struct once *o = (struct once *) d;
  (void) status;
  if (o->runs++ > 0) return 0;
  o->first_rc = uva_process_wait(NULL, NULL, o->p, t);
  return UVA_TASK_PENDING;
}

Test(process_errors, withdraw_a_wait, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  const char *argv[8];
  uva_process_options_t o = sh_options(argv, "sleep 0.05");
  struct once once = {NULL, 0, 0};
  once.p = spawn_ok(loop, &o);
  uva_task_t *t;
  UVT_OK(uva_task_spawn(&t, loop, step_wait_once, &once, NULL));
  UVT_OK(uva_loop_run(loop, UVA_RUN_NOWAIT));
  UVT_EQ(once.first_rc, UVA_EAGAIN);
  UVT_OK(uva_task_withdraw(t, once.p));
  UVT_EQ(uva_task_withdraw(t, once.p), UVA_ENOENT);
  /* The exit wakes nobody: the parked task stays parked. */
  struct exit_waiter w;
  memset(&w, 0, sizeof w);
  w.p = once.p;
  spawn(loop, step_wait_exit, &w);
  while (!w.done) /* `t` keeps the loop alive: pass by pass */
    UVT_OK(uva_loop_run(loop, UVA_RUN_ONCE));
  UVT_OK(w.rc);
  UVT_OK(uva_loop_run(loop, UVA_RUN_NOWAIT));
  cr_assert_eq(once.runs, 1, "the withdrawn task was not woken");
  UVT_OK(uva_task_cancel(t));
  run(loop);
  UVT_OK(uva_task_release(t));
  UVT_OK(uva_process_close(once.p, NULL, NULL));
  UVT_CLOSE_LOOP(loop);
}
