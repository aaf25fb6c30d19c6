/* Child processes: no zombie is ever left. Children are reaped when they
 * exit while the loop runs, also after uva_process_close; children still
 * running when their loop closes are reaped by the core's reaper thread
 * whenever they exit; a thousand children come and go. */
#include "process_support.h"

#define CHILDREN 1000
#define BATCH 50

Test(process_reap, a_thousand_children_spawned_and_reaped, .timeout = 60) {
  uva_loop_t *loop = uvt_loop_new();
  const char *argv[] = {"/bin/true", NULL};
  uva_process_options_t o = UVA_PROCESS_OPTIONS_INIT;
  o.args = argv;
  o.stdio[0].kind = UVA_STDIO_NULL;
  static int pids[CHILDREN];
  static struct exit_waiter w[BATCH];
  double t0 = uvt_ms();
  for (int done = 0; done < CHILDREN; done += BATCH) {
    memset(w, 0, sizeof w);
    for (int i = 0; i < BATCH; i++) {
      w[i].p = spawn_ok(loop, &o);
      UVT_OK(uva_process_pid(&pids[done + i], w[i].p));
      spawn(loop, step_wait_exit, &w[i]);
    }
    run(loop);
    for (int i = 0; i < BATCH; i++) {
      cr_assert(w[i].done);
      UVT_OK(w[i].rc);
      cr_assert_eq(w[i].status, 0);
      UVT_OK(uva_process_close(w[i].p, NULL, NULL));
    }
  }
  run(loop);
  double ms = uvt_ms() - t0;
  for (int i = 0; i < CHILDREN; i++)
    cr_assert(!is_our_child(pids[i]) && proc_state(pids[i]) != 'Z',
              "child %d (pid %d) left unreaped", i, pids[i]);
  cr_log_info("%d children spawned, waited for and reaped in %.0f ms", CHILDREN,
              ms);
  UVT_CLOSE_LOOP(loop);
}

/* Closed while running, the child is reaped by its loop when it exits. */
Test(process_reap, closed_handle_child_reaped_by_the_loop, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  const char *argv[8];
  uva_process_options_t o = sh_options(argv, "sleep 0.3");
  uva_process_t *p = spawn_ok(loop, &o);
  int pid;
  UVT_OK(uva_process_pid(&pid, p));
  int closed = 0;
  UVT_OK(uva_process_close(p, count_process_close, &closed));
  double t0 = uvt_ms();
  run(loop); /* the closed child keeps nothing running */
  cr_assert_lt(uvt_ms() - t0, 250);
  cr_assert_eq(closed, 0, "its memory lives until the exit");
  cr_assert(run_until_gone(loop, pid, 5000));
  cr_assert_eq(closed, 1);
  UVT_CLOSE_LOOP(loop);
}

/* The loop closes with the child running (not killed: no KILL_ON_CLOSE).
 * Killed from outside afterwards, it is reaped by the core's reaper. */
Test(process_reap, child_outliving_its_loop_is_reaped, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  const char *argv[] = {"sleep", "30", NULL};
  uva_process_options_t o = UVA_PROCESS_OPTIONS_INIT;
  o.args = argv;
  uva_process_t *p = spawn_ok(loop, &o);
  int pid;
  UVT_OK(uva_process_pid(&pid, p));
  int closed = 0;
  UVT_OK(uva_process_close(p, count_process_close, &closed));
  run(loop);
  UVT_CLOSE_LOOP(loop);
  cr_assert_eq(closed, 1, "the close callback ran in uva_loop_close");
  uvt_sleep_ms(20);
  cr_assert(is_our_child(pid) && proc_state(pid) != 'Z',
            "still running: closing is not killing");
  cr_assert_eq(kill(pid, SIGKILL), 0);
  cr_assert(gone_within(pid, 5000), "reaped after the loop closed");
}

/* Many children hand over at once, exiting at different times, some after
 * a second loop closed and handed over its own. */
Test(process_reap, reaper_serves_several_loops_and_children, .timeout = 20) {
  enum { N = 20 };
  int pids[2][N];
  for (int k = 0; k < 2; k++) {
    uva_loop_t *loop = uvt_loop_new();
    for (int i = 0; i < N; i++) {
      const char *argv[8];
      char script[64];
      snprintf(script, sizeof script, "sleep 0.%02d", (i * 7 + k * 3) % 30);
      uva_process_options_t o = sh_options(argv, script);
      uva_process_t *p = spawn_ok(loop, &o);
      UVT_OK(uva_process_pid(&pids[k][i], p));
      UVT_OK(uva_process_close(p, NULL, NULL));
    }
    UVT_CLOSE_LOOP(loop);
  }
  for (int k = 0; k < 2; k++)
    for (int i = 0; i < N; i++)
      cr_assert(gone_within(pids[k][i], 5000), "loop %d child %d unreaped", k,
                i);
}

/* KILL_ON_CLOSE at the loop's close: killed at uva_process_close, reaped by
 * the reaper if the loop closed before the exit was seen. */
Test(process_reap, kill_on_close_then_loop_close, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  const char *argv[] = {"sleep", "30", NULL};
  uva_process_options_t o = UVA_PROCESS_OPTIONS_INIT;
  o.args = argv;
  o.flags = UVA_PROCESS_KILL_ON_CLOSE;
  uva_process_t *p = spawn_ok(loop, &o);
  int pid;
  UVT_OK(uva_process_pid(&pid, p));
  UVT_OK(uva_process_close(p, NULL, NULL));
  UVT_CLOSE_LOOP(loop);
  cr_assert(gone_within(pid, 5000));
}

/* Other code reaped the child first (here a waitpid on its pid): its
 * status is lost, and its waiters get exit code 255 instead of waiting
 * for ever. */
Test(process_reap, child_reaped_by_other_code_reads_as_255, .timeout = 10) {
  uva_loop_t *loop = uvt_loop_new();
  const char *argv[8];
  uva_process_options_t o = sh_options(argv, "exit 3");
  struct exit_waiter w;
  memset(&w, 0, sizeof w);
  w.p = spawn_ok(loop, &o);
  int pid;
  UVT_OK(uva_process_pid(&pid, w.p));
  int st = 0;
  cr_assert_eq(waitpid(pid, &st, 0), pid);
  cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 3);
  spawn(loop, step_wait_exit, &w);
  run(loop);
  UVT_OK(w.rc);
  cr_assert_eq(w.status, 255);
  cr_assert_eq(w.sig, 0);
  UVT_OK(uva_process_close(w.p, NULL, NULL));
  run(loop);
  UVT_CLOSE_LOOP(loop);
}
