/* Child processes (uvasync.h "Child processes"): what the child gets
 * (program, argv, environment, directory, session, descriptors 0..2) and
 * what its end reports (exit code, signal), waits of several tasks, and
 * uva_process_kill. */
#include "process_support.h"

Test(process, exit_code_is_reported, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  const char *argv[8];
  uva_process_options_t o = sh_options(argv, "exit 7");
  struct exit_waiter w;
  memset(&w, 0, sizeof w);
  w.p = spawn_ok(loop, &o);
  int pid = 0;
  UVT_OK(uva_process_pid(&pid, w.p));
  cr_assert_gt(pid, 0);
  spawn(loop, step_wait_exit, &w);
  run(loop);
  UVT_OK(w.rc);
  cr_assert_eq(w.status, 7);
  cr_assert_eq(w.sig, 0);
  cr_assert(!is_our_child(pid), "the child is reaped once the wait returns");
  UVT_OK(uva_process_close(w.p, NULL, NULL));
  run(loop);
  UVT_CLOSE_LOOP(loop);
}

Test(process, args_reach_the_program, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  const char *argv[8];
  uva_process_options_t o =
      sh_options(argv, "printf '%s|' \"$0\" \"$@\"; printf '%s' \"$#\"");
  argv[3] = "name";
  argv[4] = "a";
  argv[5] = "b c";
  argv[6] = "";
  argv[7] = NULL;
  int64_t status;
  char *out = sh_output(loop, &o, &status, NULL);
  cr_assert_str_eq(out, "name|a|b c||3");
  cr_assert_eq(status, 0);
  free(out);
  UVT_CLOSE_LOOP(loop);
}

Test(process, program_looked_up_in_path, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  const char *argv[] = {"sh", "-c", "echo found", NULL};
  uva_process_options_t o = UVA_PROCESS_OPTIONS_INIT;
  o.args = argv; /* file NULL: args[0], looked up in PATH */
  char *out = sh_output(loop, &o, NULL, NULL);
  cr_assert_str_eq(out, "found\n");
  free(out);
  UVT_CLOSE_LOOP(loop);
}

Test(process, environment_given_or_inherited, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  const char *argv[8];
  const char *env[] = {"UVA_T_A=one", "UVA_T_B=two words", NULL};
  uva_process_options_t o =
      sh_options(argv,
                 "printf '%s/%s/%s' \"$UVA_T_A\" \"$UVA_T_B\" "
                 "\"${UVA_T_PARENT-unset}\"");
  setenv("UVA_T_PARENT", "parent", 1);
  o.env = env;
  char *out = sh_output(loop, &o, NULL, NULL);
  cr_assert_str_eq(out, "one/two words/unset");
  free(out);
  o.env = NULL; /* the parent's environment */
  out = sh_output(loop, &o, NULL, NULL);
  cr_assert_str_eq(out, "//parent");
  free(out);
  unsetenv("UVA_T_PARENT");
  UVT_CLOSE_LOOP(loop);
}

Test(process, working_directory, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  const char *argv[8];
  uva_process_options_t o = sh_options(argv, "pwd -P");
  o.cwd = "/";
  char *out = sh_output(loop, &o, NULL, NULL);
  cr_assert_str_eq(out, "/\n");
  free(out);
  char here[4096];
  cr_assert_not_null(getcwd(here, sizeof here - 1));
  strcat(here, "\n");
  o.cwd = NULL; /* the parent's */
  out = sh_output(loop, &o, NULL, NULL);
  char real[4096];
  cr_assert_not_null(realpath(".", real));
  strcat(real, "\n");
  cr_assert_str_eq(out, real);
  free(out);
  UVT_CLOSE_LOOP(loop);
}

Test(process, exit_by_signal, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  const char *argv[8];
  uva_process_options_t o = sh_options(argv, "kill -TERM $$; sleep 5");
  int64_t status = -1;
  int sig = -1;
  free(sh_output(loop, &o, &status, &sig));
  cr_assert_eq(sig, SIGTERM);
  cr_assert_eq(status, 0);
  UVT_CLOSE_LOOP(loop);
}

Test(process, kill_sends_a_signal_then_esrch, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  const char *argv[] = {"sleep", "30", NULL};
  uva_process_options_t o = UVA_PROCESS_OPTIONS_INIT;
  o.args = argv;
  struct exit_waiter w;
  memset(&w, 0, sizeof w);
  w.p = spawn_ok(loop, &o);
  UVT_OK(uva_process_kill(w.p, 0)); /* it exists */
  UVT_EQ(uva_process_kill(w.p, -1), UVA_EINVAL);
  UVT_EQ(uva_process_kill(w.p, 100000), UVA_EINVAL);
  UVT_OK(uva_process_kill(w.p, SIGUSR1));
  spawn(loop, step_wait_exit, &w);
  run(loop);
  UVT_OK(w.rc);
  cr_assert_eq(w.sig, SIGUSR1);
  /* Reaped: its pid may be another process's now. */
  UVT_EQ(uva_process_kill(w.p, SIGKILL), UVA_ESRCH);
  UVT_EQ(uva_process_kill(w.p, 0), UVA_ESRCH);
  UVT_OK(uva_process_close(w.p, NULL, NULL));
  run(loop);
  UVT_CLOSE_LOOP(loop);
}

Test(process, several_tasks_wait_for_one_child, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  const char *argv[8];
  uva_process_options_t o = sh_options(argv, "sleep 0.05; exit 3");
  struct exit_waiter w[4];
  memset(w, 0, sizeof w);
  uva_process_t *p = spawn_ok(loop, &o);
  for (int i = 0; i < 4; i++) {
    w[i].p = p;
    spawn(loop, step_wait_exit, &w[i]);
  }
  run(loop);
  for (int i = 0; i < 4; i++) {
    UVT_EQ(w[i].first_rc, UVA_EAGAIN);
    UVT_OK(w[i].rc);
    cr_assert_eq(w[i].status, 3);
    cr_assert_eq(w[i].calls, 2, "task %d: one wake-up each: %d calls", i,
                 w[i].calls);
  }
  /* After the exit every call completes at once, a task's or none. */
  int64_t status = -1;
  int sig = -1;
  UVT_OK(uva_process_wait(&status, &sig, p, NULL));
  cr_assert_eq(status, 3);
  cr_assert_eq(sig, 0);
  UVT_OK(uva_process_wait(NULL, NULL, p, NULL));
  UVT_OK(uva_process_close(p, NULL, NULL));
  run(loop);
  UVT_CLOSE_LOOP(loop);
}

Test(process, wait_without_a_task_while_running, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  const char *argv[] = {"sleep", "30", NULL};
  uva_process_options_t o = UVA_PROCESS_OPTIONS_INIT;
  o.args = argv;
  o.flags = UVA_PROCESS_KILL_ON_CLOSE;
  uva_process_t *p = spawn_ok(loop, &o);
  UVT_EQ(uva_process_wait(NULL, NULL, p, NULL), UVA_EINVAL);
  UVT_OK(uva_process_close(p, NULL, NULL));
  run(loop);
  UVT_CLOSE_LOOP(loop);
}

/* A waiting task keeps uva_loop_run going; the child alone does not. */
Test(process, waiting_task_keeps_the_loop_running, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  const char *argv[8];
  uva_process_options_t o = sh_options(argv, "sleep 0.3");
  struct exit_waiter w;
  memset(&w, 0, sizeof w);
  w.p = spawn_ok(loop, &o);
  double t0 = uvt_ms();
  run(loop); /* nothing waits: returns at once */
  cr_assert_lt(uvt_ms() - t0, 250);
  spawn(loop, step_wait_exit, &w);
  run(loop);
  cr_assert(w.done);
  UVT_OK(w.rc);
  cr_assert_geq(uvt_ms() - t0, 250);
  UVT_OK(uva_process_close(w.p, NULL, NULL));
  run(loop);
  UVT_CLOSE_LOOP(loop);
}

Test(process, setsid_starts_a_session, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  const char *argv[8];
  /* Field 6 of /proc/<pid>/stat is the session id (the name "(sh)" has
   * no space). */
  uva_process_options_t o =
      sh_options(argv,
                 "read -r a b c d e sid rest < /proc/$$/stat; "
                 "echo \"$$ $sid\"");
  o.flags = UVA_PROCESS_SETSID;
  char *out = sh_output(loop, &o, NULL, NULL);
  int pid = 0, sid = -1;
  cr_assert_eq(sscanf(out, "%d %d", &pid, &sid), 2, "%s", out);
  cr_assert_eq(sid, pid, "the child leads its own session");
  free(out);
  o.flags = 0;
  out = sh_output(loop, &o, NULL, NULL);
  cr_assert_eq(sscanf(out, "%d %d", &pid, &sid), 2, "%s", out);
  cr_assert_eq(sid, (int) getsid(0), "without SETSID: the parent's session");
  free(out);
  UVT_CLOSE_LOOP(loop);
}

/* ---- descriptors 0..2 --------------------------------------------------- */

/* What the child's descriptor fd is, as readlink sees it, printed on the
 * pipe that is its stdout (or stderr when fd is 1). */
static char *child_fd_target(uva_loop_t *loop, uva_process_options_t *o,
                             int fd) {
  const char *argv[8];
  char script[128];
  /* The shell's own descriptor, read before any redirection (dash
   * redirects a command's descriptors in the shell itself). */
  snprintf(script, sizeof script, "x=$(readlink /proc/$$/fd/%d); echo \"$x\"%s",
           fd, fd == 1 ? " >&2" : "");
  uva_process_options_t so = sh_options(argv, script);
  so.stdio[0] = o->stdio[0];
  so.stdio[1] = o->stdio[1];
  so.stdio[2] = o->stdio[2];
  struct reader r;
  struct exit_waiter w;
  memset(&r, 0, sizeof r);
  memset(&w, 0, sizeof w);
  int via = fd == 1 ? 2 : 1;
  so.stdio[via].kind = UVA_STDIO_PIPE;
  w.p = spawn_ok(loop, &so);
  UVT_OK(uva_process_stream(&r.s, w.p, via));
  spawn(loop, step_read_all, &r);
  spawn(loop, step_wait_exit, &w);
  run(loop);
  UVT_OK(w.rc);
  cr_assert_eq(w.status, 0);
  UVT_OK(uva_process_close(w.p, NULL, NULL));
  run(loop);
  char *nl = strchr(r.data, '\n');
  if (nl != NULL) *nl = '\0';
  return r.data;
}

Test(process, stdio_null_is_dev_null, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  uva_process_options_t o = UVA_PROCESS_OPTIONS_INIT;
  o.stdio[0].kind = UVA_STDIO_NULL;
  o.stdio[1].kind = UVA_STDIO_NULL;
  char *t = child_fd_target(loop, &o, 0);
  cr_assert_str_eq(t, "/dev/null");
  free(t);
  t = child_fd_target(loop, &o, 1);
  cr_assert_str_eq(t, "/dev/null");
  free(t);
  UVT_CLOSE_LOOP(loop);
}

Test(process, stdio_inherit_is_the_parents, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  uva_process_options_t o = UVA_PROCESS_OPTIONS_INIT;
  char mine[512];
  ssize_t n = readlink("/proc/self/fd/0", mine, sizeof mine - 1);
  if (n > 0)
    mine[n] = '\0';
  else /* ours is closed: the child gets /dev/null, never another file */
    strcpy(mine, "/dev/null");
  char *t = child_fd_target(loop, &o, 0);
  cr_assert_str_eq(t, mine);
  free(t);
  UVT_CLOSE_LOOP(loop);
}

/* Our descriptor 2 closed: a pipe made for the spawn may take its number,
 * but the child's inherited stderr is /dev/null, not that pipe. */
Test(process, stdio_inherit_of_a_closed_descriptor_is_dev_null, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  uva_process_options_t o = UVA_PROCESS_OPTIONS_INIT;
  int saved = dup(2);
  cr_assert_geq(saved, 0);
  close(2);
  char *t = child_fd_target(loop, &o, 2);
  dup2(saved, 2);
  close(saved);
  cr_assert_str_eq(t, "/dev/null");
  free(t);
  UVT_CLOSE_LOOP(loop);
}

Test(process, stdio_fd_is_a_copy_the_parent_keeps, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  int fds[2];
  cr_assert_eq(pipe(fds), 0);
  const char *argv[8];
  uva_process_options_t o = sh_options(argv, "echo to-fd; echo err >&2");
  o.stdio[1].kind = UVA_STDIO_FD;
  o.stdio[1].fd = fds[1];
  o.stdio[2].kind = UVA_STDIO_STDOUT; /* the same as its stdout */
  struct exit_waiter w;
  memset(&w, 0, sizeof w);
  w.p = spawn_ok(loop, &o);
  uva_stream_t *s;
  UVT_EQ(uva_process_stream(&s, w.p, 1), UVA_ENOENT); /* not a pipe */
  UVT_EQ(uva_process_stream(&s, w.p, 2), UVA_ENOENT);
  spawn(loop, step_wait_exit, &w);
  run(loop);
  UVT_OK(w.rc);
  UVT_OK(uva_process_close(w.p, NULL, NULL));
  run(loop);
  cr_assert_neq(fcntl(fds[1], F_GETFD), -1, "the parent's fd stays open");
  close(fds[1]);
  char buf[64];
  size_t got = 0;
  ssize_t n;
  while ((n = read(fds[0], buf + got, sizeof buf - 1 - got)) > 0)
    got += (size_t) n;
  buf[got] = '\0';
  cr_assert_str_eq(buf, "to-fd\nerr\n");
  close(fds[0]);
  UVT_CLOSE_LOOP(loop);
}

Test(process, stderr_on_the_stdout_pipe, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  const char *argv[8];
  uva_process_options_t o =
      sh_options(argv, "echo out; echo err >&2; echo out2");
  o.stdio[2].kind = UVA_STDIO_STDOUT;
  char *out = sh_output(loop, &o, NULL, NULL);
  cr_assert_str_eq(out, "out\nerr\nout2\n");
  free(out);
  UVT_CLOSE_LOOP(loop);
}

Test(process, separate_stdout_and_stderr_pipes, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  const char *argv[8];
  uva_process_options_t o = sh_options(argv, "echo out; echo err >&2");
  o.stdio[1].kind = UVA_STDIO_PIPE;
  o.stdio[2].kind = UVA_STDIO_PIPE;
  struct reader r1, r2;
  struct exit_waiter w;
  memset(&r1, 0, sizeof r1);
  memset(&r2, 0, sizeof r2);
  memset(&w, 0, sizeof w);
  w.p = spawn_ok(loop, &o);
  UVT_OK(uva_process_stream(&r1.s, w.p, 1));
  UVT_OK(uva_process_stream(&r2.s, w.p, 2));
  UVT_EQ(uva_process_stream(&r2.s, w.p, 2), UVA_ENOENT); /* taken */
  UVT_EQ(uva_process_stream(&r2.s, w.p, 3), UVA_EINVAL);
  UVT_EQ(uva_process_stream(&r2.s, w.p, -1), UVA_EINVAL);
  spawn(loop, step_read_all, &r1);
  spawn(loop, step_read_all, &r2);
  spawn(loop, step_wait_exit, &w);
  run(loop);
  cr_assert_str_eq(r1.data, "out\n");
  cr_assert_str_eq(r2.data, "err\n");
  free(r1.data);
  free(r2.data);
  UVT_OK(uva_process_close(w.p, NULL, NULL));
  run(loop);
  UVT_CLOSE_LOOP(loop);
}

/* With env given, the program is looked up in env's PATH. */
Test(process, path_of_the_given_environment, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  const char *argv[] = {"sh", "-c", "exit 0", NULL};
  const char *env[] = {"PATH=/nonexistent-uvasync", NULL};
  uva_process_options_t o = UVA_PROCESS_OPTIONS_INIT;
  o.args = argv;
  o.env = env;
  uva_process_t *p = NULL;
  UVT_EQ(uva_process_spawn(&p, loop, &o), UVA_ENOENT);
  o.file = "/bin/sh"; /* a path: no lookup */
  p = spawn_ok(loop, &o);
  UVT_OK(uva_process_close(p, NULL, NULL));
  UVT_CLOSE_LOOP(loop);
}

/* The loop ignores SIGPIPE in this process; the child starts with every
 * signal's default action (libuv resets them) and an empty mask. */
Test(process, child_starts_with_default_signal_actions, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  struct sigaction sa;
  cr_assert_eq(sigaction(SIGPIPE, NULL, &sa), 0);
  cr_assert_eq(sa.sa_handler, SIG_IGN, "the loop ignores SIGPIPE here");
  sigset_t block, old;
  sigemptyset(&block);
  sigaddset(&block, SIGUSR2);
  cr_assert_eq(pthread_sigmask(SIG_BLOCK, &block, &old), 0);
  const char *argv[8];
  uva_process_options_t o =
      sh_options(argv, "grep -E '^Sig(Ign|Blk)' /proc/self/status");
  char *out = sh_output(loop, &o, NULL, NULL);
  cr_assert_eq(pthread_sigmask(SIG_SETMASK, &old, NULL), 0);
  unsigned long long ign = ~0ull, blk = ~0ull;
  const char *i = strstr(out, "SigIgn:");
  const char *b = strstr(out, "SigBlk:");
  cr_assert(i != NULL && b != NULL, "%s", out);
  ign = strtoull(i + 7, NULL, 16);
  blk = strtoull(b + 7, NULL, 16);
  cr_assert_eq(ign & (1ull << (SIGPIPE - 1)), 0, "SIGPIPE ignored: %s", out);
  cr_assert_eq(blk, 0, "signals blocked: %s", out);
  free(out);
  UVT_CLOSE_LOOP(loop);
}

/* UVA_STDIO_FD may name another of the parent's 0..2: here the child's
 * stdout is the parent's 2 and its stderr the parent's 1, swapped, and
 * neither is overwritten by the other on the way. */
Test(process, stdio_fds_among_0_to_2_may_be_swapped, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  int on1[2], on2[2];
  cr_assert_eq(pipe(on1), 0);
  cr_assert_eq(pipe(on2), 0);
  int saved1 = dup(1), saved2 = dup(2);
  cr_assert(saved1 >= 0 && saved2 >= 0);
  cr_assert_eq(dup2(on1[1], 1), 1);
  cr_assert_eq(dup2(on2[1], 2), 2);
  const char *argv[8];
  uva_process_options_t o = sh_options(argv, "echo out; echo err >&2");
  o.stdio[1].kind = UVA_STDIO_FD;
  o.stdio[1].fd = 2;
  o.stdio[2].kind = UVA_STDIO_FD;
  o.stdio[2].fd = 1;
  uva_process_t *p = NULL;
  int rc = uva_process_spawn(&p, loop, &o);
  dup2(saved1, 1); /* the test's own output back first */
  dup2(saved2, 2);
  close(saved1);
  close(saved2);
  close(on1[1]);
  close(on2[1]);
  UVT_OK(rc);
  struct exit_waiter w;
  memset(&w, 0, sizeof w);
  w.p = p;
  spawn(loop, step_wait_exit, &w);
  run(loop);
  UVT_OK(w.rc);
  UVT_OK(uva_process_close(p, NULL, NULL));
  run(loop);
  char buf[2][64];
  int fds[2] = {on1[0], on2[0]};
  for (int i = 0; i < 2; i++) {
    ssize_t n = read(fds[i], buf[i], sizeof buf[i] - 1);
    buf[i][n > 0 ? n : 0] = '\0';
    close(fds[i]);
  }
  cr_assert_str_eq(buf[0], "err\n", "the parent's 1 got the child's 2");
  cr_assert_str_eq(buf[1], "out\n", "the parent's 2 got the child's 1");
  UVT_CLOSE_LOOP(loop);
}

/* A file `name` in dir with the given mode and contents. */
static void write_file(const char *dir, const char *name, mode_t mode,
                       const char *text) {
  char path[256];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
  cr_assert(fd >= 0);
  cr_assert_eq(write(fd, text, strlen(text)), (ssize_t) strlen(text));
  close(fd);
}

/* The lookup in env's PATH is execvp's: a program found but not executable
 * is passed over for a later one, and alone it is UVA_EACCES. */
Test(process, path_of_the_environment_skips_what_cannot_run, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  char a[] = "/tmp/uvasync-path-a-XXXXXX", b[] = "/tmp/uvasync-path-b-XXXXXX";
  cr_assert_not_null(mkdtemp(a));
  cr_assert_not_null(mkdtemp(b));
  write_file(a, "uvaprog", 0644, "#!/bin/sh\nexit 5\n");
  write_file(b, "uvaprog", 0755, "#!/bin/sh\nexit 7\n");
  char path_ab[128], path_a[128];
  snprintf(path_ab, sizeof path_ab, "PATH=%s:%s", a, b);
  snprintf(path_a, sizeof path_a, "PATH=%s", a);
  const char *argv[] = {"uvaprog", NULL};
  const char *env[] = {path_ab, NULL};
  uva_process_options_t o = UVA_PROCESS_OPTIONS_INIT;
  o.args = argv;
  o.env = env;
  struct exit_waiter w;
  memset(&w, 0, sizeof w);
  w.p = spawn_ok(loop, &o);
  spawn(loop, step_wait_exit, &w);
  run(loop);
  UVT_OK(w.rc);
  cr_assert_eq(w.status, 7, "the executable one in the second directory");
  UVT_OK(uva_process_close(w.p, NULL, NULL));
  env[0] = path_a;
  uva_process_t *p = NULL;
  UVT_EQ(uva_process_spawn(&p, loop, &o), UVA_EACCES);
  cr_assert_null(p);
  char file[256];
  snprintf(file, sizeof file, "%s/uvaprog", a);
  unlink(file);
  rmdir(a);
  snprintf(file, sizeof file, "%s/uvaprog", b);
  unlink(file);
  rmdir(b);
  run(loop);
  UVT_CLOSE_LOOP(loop);
}
