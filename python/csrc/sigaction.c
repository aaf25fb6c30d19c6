/* A signal's action, saved and put back, for the loop's
 * add_signal_handler (uvasync/_signals.py). The core installs its own
 * action while it watches a signal and resets it to SIG_DFL when its last
 * watcher closes; Python's handler (its C function, with the flags Python
 * gave it) is what was there before, and only sigaction(2) can put that
 * back from any thread: signal.signal() works in the main thread only. */
#include "uvapy.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>

/* The current action of signum, in memory the caller frees with
 * _uvapy_sigaction_free; NULL with errno set on error. */
void *_uvapy_sigaction_get(int signum) {
  struct sigaction *sa = malloc(sizeof *sa);
  if (sa == NULL) return NULL;
  if (sigaction(signum, NULL, sa) != 0) {
    int e = errno;
    free(sa);
    errno = e;
    return NULL;
  }
  return sa;
}

/* Install an action saved by _uvapy_sigaction_get: 0 or -errno. */
int _uvapy_sigaction_set(int signum, void *saved) {
  if (saved == NULL) return -EINVAL;
  return sigaction(signum, (const struct sigaction *) saved, NULL) == 0
             ? 0
             : -errno;
}

/* 1 if signum's action is SIG_DFL, 0 if not, -errno on error. */
int _uvapy_sigaction_is_default(int signum) {
  struct sigaction sa;
  if (sigaction(signum, NULL, &sa) != 0) return -errno;
  return !(sa.sa_flags & SA_SIGINFO) && sa.sa_handler == SIG_DFL;
}

void _uvapy_sigaction_free(void *saved) { free(saved); }
