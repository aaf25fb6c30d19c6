/* A program that uses the *installed* uvasync, as a user would: built by
 * tests/install/CMakeLists.txt (find_package) and by run.sh (pkg-config),
 * against the shared and the static library. It checks the run-time
 * version against the header, then runs a loop with one task that sleeps
 * once and finishes. */
#include <stdio.h>

#include <uvasync.h>

#define CHECK(call)                                            \
  do {                                                         \
    int rc_ = (call);                                          \
    if (rc_ != 0) {                                            \
      fprintf(stderr, "consumer: %s failed: %s (%s)\n", #call, \
              uva_strerror(rc_), uva_err_name(rc_));           \
      return 1;                                                \
    }                                                          \
  } while (0)

static int step(uva_task_t *task, int status, void *data) {
  int *steps = (int *) data;
  (void) status;
  if ((*steps)++ == 0) {
    int rc = uva_task_sleep(task, 5);
    return rc != 0 ? rc : UVA_TASK_PENDING;
  }
  return 0; /* finished, success */
}

int main(void) {
  uva_loop_t *loop = NULL;
  uva_task_t *task = NULL;
  int steps = 0, done = 0, result = -1;
  unsigned int version = uva_version();

  if ((version >> 16) != UVA_VERSION_MAJOR || version < UVA_VERSION_HEX) {
    fprintf(stderr, "consumer: library version %#x, header %#x\n", version,
            (unsigned int) UVA_VERSION_HEX);
    return 1;
  }

  CHECK(uva_loop_new(&loop));
  CHECK(uva_task_spawn(&task, loop, step, &steps, NULL));
  CHECK(uva_loop_run(loop, UVA_RUN_DEFAULT));
  CHECK(uva_task_done(&done, task));
  CHECK(uva_task_result(&result, task));
  CHECK(uva_task_release(task));
  CHECK(uva_loop_run(loop, UVA_RUN_DEFAULT)); /* reap the released task */
  CHECK(uva_loop_close(loop));

  if (!done || result != 0 || steps != 2) {
    fprintf(stderr, "consumer: done=%d result=%d steps=%d (want 1 0 2)\n", done,
            result, steps);
    return 1;
  }
  printf("consumer: uvasync %s (%#x) ok, task finished after %d steps\n",
         uva_version_string(), version, steps);
  return 0;
}
