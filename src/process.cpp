/* uvasync — child processes (posix_spawn), their reaping, and the reaper.
 *
 * Spawning is glibc's (or musl's) posix_spawn: a vfork-style child
 * (clone(CLONE_VM|CLONE_VFORK)) that shares the parent's memory until its
 * exec, so a spawn costs the same whatever the size of the parent, where
 * libuv's uv_spawn forks (copies the page tables) on Linux. posix_spawn
 * reports a failed exec, chdir or dup2 as its result and reaps that child
 * itself, so a failure is the spawn's error with nothing left behind.
 *
 * Waiting for the exit is an I/O-style wait (see sync.cpp): a waiter stays
 * registered and is woken when the child is reaped (or the handle
 * closes), and its repeated call completes.
 *
 * No zombies. libuv does not know these children, so the loop reaps them:
 * a SIGCHLD watcher of its own (libuv serves several watchers of a signal,
 * so signal watchers of the program and libuv's own children are not
 * disturbed) calls waitpid(pid, WNOHANG) for each child on the loop's
 * list, never waitpid(-1), which would steal other code's children. A
 * handle closed while its child runs stays on the list, unreferenced, and
 * the child's exit closes it. If the loop closes first, uva_loop_close
 * hands those pids to the reaper, a detached thread of the core that
 * waits for exactly those pids and ends when none is left.
 *
 * Pipes are made here (pipe2, close-on-exec); the child's end is dup2'ed
 * onto 0..2 by posix_spawn, and the parent's end becomes an ordinary
 * stream (stream_open_pipe), so both read engines serve it.
 */
#include "internal.h"
#include "fault.h"

#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <vector>
#ifndef _WIN32
#include <fcntl.h>
#include <pthread.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#endif

/* posix_spawn with what the spawn needs: POSIX_SPAWN_SETSID (glibc 2.26)
 * and posix_spawn_file_actions_addchdir_np (glibc 2.29; recent musl has
 * both). Without them this file does not build, as it did not without
 * pipe2 before: there is no fork-based fallback to keep working. */
#if !defined(POSIX_SPAWN_SETSID) || \
    (defined(__GLIBC__) && !__GLIBC_PREREQ(2, 29))
#error \
    "process.cpp needs POSIX_SPAWN_SETSID and posix_spawn_file_actions_addchdir_np"
#endif

namespace uva {
namespace detail {

/* ---- the reaper ----------------------------------------------------------- */

namespace {
/* Never destroyed: the thread may outlive main's return. */
struct Reaper {
  std::mutex mu;
  std::vector<int> pids;
  bool running = false;
};

Reaper &reaper() {
  static Reaper *r = new Reaper;
  return *r;
}
}  // namespace

/* Sweep the pids with WNOHANG, sleeping between sweeps (1 ms growing to
 * 100 ms): one thread serves any number of children, and a child that
 * runs for long costs a wake-up a tenth of a second. */
static void *reap(void *) {
  Reaper &r = reaper();
  unsigned delay_us = 1000;
  for (;;) {
    {
      std::lock_guard<std::mutex> lock(r.mu);
      for (size_t i = 0; i < r.pids.size();) {
        int status;
        pid_t got = waitpid(r.pids[i], &status, WNOHANG);
        if (got == 0 || (got < 0 && errno == EINTR)) {
          i++;
          continue;
        }
        /* Reaped, or not our child any more (ECHILD): done with it. */
        r.pids[i] = r.pids.back();
        r.pids.pop_back();
      }
      if (r.pids.empty()) {
        r.running = false;
        return nullptr;
      }
    }
    usleep(delay_us);
    if (delay_us < 100000) delay_us *= 2;
  }
}

/* Add pids; start the thread unless it runs. If it cannot start, the pids
 * wait for the next hand-off (a process out of threads has bigger
 * problems than a zombie). */
static void reap_later(const std::vector<int> &pids) {
  Reaper &r = reaper();
  std::lock_guard<std::mutex> lock(r.mu);
  r.pids.insert(r.pids.end(), pids.begin(), pids.end());
  if (r.running || r.pids.empty()) return;
  pthread_attr_t attr;
  if (pthread_attr_init(&attr) != 0) return;
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  /* Signals go to the program's threads, not to this one. */
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  pthread_t th;
  r.running = pthread_create(&th, &attr, reap, nullptr) == 0;
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  pthread_attr_destroy(&attr);
}

/* ---- the handle and the loop's reaping ------------------------------------ */

static Process *of(uv_handle_t *h) { return static_cast<Process *>(h->data); }

static void on_closed(uv_handle_t *h) {
  Process *p = of(h);
  if (p->close_cb != nullptr)
    p->close_cb(reinterpret_cast<uva_process_t *>(p), p->close_data);
  sync_unref(p); /* the owner's reference */
}

static void close_handle(Process *p) {
  uv_close(reinterpret_cast<uv_handle_t *>(&p->uv), on_closed);
}

static void children_unlink(Process *p) {
  Loop *l = p->loop;
  if (p->cprev != nullptr)
    p->cprev->cnext = p->cnext;
  else
    l->children = p->cnext;
  if (p->cnext != nullptr) p->cnext->cprev = p->cprev;
  p->cnext = p->cprev = nullptr;
}

/* The child was reaped (status as waitpid's), or, with known false, is
 * not ours to wait for any more: someone else reaped it (a waitpid(-1)
 * elsewhere, SIGCHLD set to SIG_IGN). Its status is lost then; it is
 * reported as exit code 255, as asyncio does, rather than leaving its
 * waiters hanging. */
static void on_exit(Process *p, bool known, int status) {
  children_unlink(p);
  p->exited = true;
  p->exit_status = 255;
  p->term_signal = 0;
  if (known && WIFEXITED(status)) {
    p->exit_status = WEXITSTATUS(status);
  } else if (known && WIFSIGNALED(status)) {
    p->exit_status = 0;
    p->term_signal = WTERMSIG(status);
  }
  io_wake_all(p);
  if (p->orphaned) { /* closed by its owner: nothing is left to do */
    p->orphaned = false;
    close_handle(p);
  }
}

/* SIGCHLD: one arrival may stand for several exits, so every child of the
 * loop is asked. */
static void on_sigchld(uv_signal_t *h, int) {
  Loop *l = static_cast<Loop *>(h->data);
  Process *next;
  for (Process *p = l->children; p != nullptr; p = next) {
    next = p->cnext;
    int status = 0;
    pid_t got;
    do {
      got = waitpid(p->pid, &status, WNOHANG);
    } while (got < 0 && errno == EINTR);
    if (got == p->pid) {
      on_exit(p, true, status);
    } else if (got < 0) {
      on_exit(p, false, 0);
    }
  }
}

/* Start the loop's SIGCHLD watcher before its first child can exit. */
static int watch_children(Loop *l) {
  if (l->chld_started) return 0;
  if (!l->chld_init) {
    int rc = FAULT_UV(uv_signal_init(&l->uv, &l->chld));
    if (rc != 0) return rc;
    l->chld.data = l;
    uv_unref(reinterpret_cast<uv_handle_t *>(&l->chld)); /* waiters keep it */
    l->chld_init = true;
  }
  int rc = FAULT_UV(uv_signal_start(&l->chld, on_sigchld, SIGCHLD));
  if (rc != 0) return rc;
  l->chld_started = true;
  return 0;
}

/* ---- spawning ------------------------------------------------------------- */

/* One of the child's descriptors 0..2 while spawning: the descriptor
 * posix_spawn dup2's onto it, and for a pipe both ends and the parent's
 * stream-to-be. */
struct Seat {
  int src = -1;        /* dup2'ed onto the seat; -1: the child's 1 (STDOUT) */
  int copy = -1;       /* ours to close after the spawn: a moved src */
  int child_end = -1;  /* ours to close after the spawn */
  int parent_end = -1; /* a pipe's end that becomes the stream */
  Stream *stream = nullptr;
};

static bool fd_open(int fd) { return fcntl(fd, F_GETFD) != -1; }

static int check_options(const uva_process_options_t *o) {
  if (o->size < sizeof(uva_process_options_t)) return UVA_EINVAL;
  if (o->args == nullptr || o->args[0] == nullptr) return UVA_EINVAL;
  if ((o->flags & ~unsigned(UVA_PROCESS_SETSID | UVA_PROCESS_KILL_ON_CLOSE)) !=
      0)
    return UVA_EINVAL;
  for (int i = 0; i < 3; i++) {
    int kind;
    std::memcpy(&kind, &o->stdio[i].kind, sizeof kind); /* any int from C */
    if (kind < UVA_STDIO_INHERIT || kind > UVA_STDIO_STDOUT) return UVA_EINVAL;
    if (kind == UVA_STDIO_FD && o->stdio[i].fd < 0) return UVA_EINVAL;
    if (kind == UVA_STDIO_STDOUT && i != 2) return UVA_EINVAL;
  }
  return 0;
}

/* /dev/null for the seats that get it, opened once per spawn. */
static int dev_null(int *fd) {
  if (*fd < 0) *fd = open("/dev/null", O_RDWR | O_CLOEXEC);
  return *fd >= 0 ? 0 : -errno;
}

/* Set up seat i (kinds are valid). ours_open: whether our descriptor i was
 * open before any pipe was made (a pipe may take the number of a closed
 * one). *null: see dev_null. */
static int prepare_seat(Seat *seats, int i, const uva_stdio_t &io,
                        bool ours_open, int *null, Loop *l) {
  Seat &s = seats[i];
  switch (io.kind) {
    case UVA_STDIO_INHERIT:
      /* A closed descriptor of ours is /dev/null for the child: a child
       * must not find an unrelated file there. */
      if (ours_open) {
        s.src = i;
        return 0;
      }
      [[fallthrough]];
    case UVA_STDIO_NULL: {
      int rc = dev_null(null);
      s.src = *null;
      return rc;
    }
    case UVA_STDIO_FD:
      s.src = io.fd;
      return 0;
    case UVA_STDIO_STDOUT:
      s.src = -1;
      return 0;
    case UVA_STDIO_PIPE: {
      s.stream = stream_reserve(l);
      if (s.stream == nullptr) return UVA_ENOMEM;
      int fds[2];
      if (pipe2(fds, O_CLOEXEC) != 0) return -errno;
      /* The child reads descriptor 0 and writes 1 and 2. */
      s.child_end = i == 0 ? fds[0] : fds[1];
      s.parent_end = i == 0 ? fds[1] : fds[0];
      s.src = s.child_end;
      return 0;
    }
  }
  return UVA_EINVAL;
}

/* The child's dup2's run in order 0, 1, 2, so a source among 0..2 other
 * than its own seat could be overwritten by an earlier one: such sources
 * are copied above 2 first (close-on-exec, closed after the spawn). A
 * source equal to its seat is dup2'ed onto itself, which clears its
 * close-on-exec flag. */
static int move_sources(Seat *seats) {
  for (int i = 0; i < 3; i++) {
    Seat &s = seats[i];
    if (s.src < 0 || s.src > 2 || s.src == i) continue;
    s.copy = fcntl(s.src, F_DUPFD_CLOEXEC, 3);
    if (s.copy < 0) return -errno; /* EBADF: a UVA_STDIO_FD not open */
    s.src = s.copy;
  }
  return 0;
}

static int add_actions(posix_spawn_file_actions_t *fa, const Seat *seats,
                       const uva_process_options_t *o) {
  int rc = 0;
  if (o->cwd != nullptr) rc = posix_spawn_file_actions_addchdir_np(fa, o->cwd);
  for (int i = 0; i < 3 && rc == 0; i++)
    rc = posix_spawn_file_actions_adddup2(
        fa, seats[i].src < 0 ? 1 : seats[i].src, i);
  /* The caller's UVA_STDIO_FD descriptors above 2 are only sources: close
   * them in the child (once each) in case they are not close-on-exec. */
  for (int i = 0; i < 3 && rc == 0; i++) {
    int fd = seats[i].src;
    bool first = o->stdio[i].kind == UVA_STDIO_FD && fd > 2;
    for (int j = 0; j < i && first; j++)
      first = seats[j].src != fd;
    if (first) rc = posix_spawn_file_actions_addclose(fa, fd);
  }
  return -rc;
}

/* posix_spawnp would search the parent's PATH: with an environment of its
 * own, the program is looked up in that one's PATH here (as execvp does,
 * "/bin:/usr/bin" without one): the first candidate that is an executable
 * regular file; UVA_EACCES if only ones that may not be run were found. */
static int find_in_env(std::string *out, const char *file,
                       const char *const *env) {
  const char *path = "/bin:/usr/bin";
  for (const char *const *e = env; *e != nullptr; e++)
    if (std::strncmp(*e, "PATH=", 5) == 0) path = *e + 5;
  bool denied = false;
  for (;;) {
    const char *end = std::strchr(path, ':');
    size_t n = end != nullptr ? size_t(end - path) : std::strlen(path);
    /* An empty entry is the current directory, as for execvp. */
    out->assign(path, n);
    out->append(n == 0 ? "" : "/");
    out->append(file);
    struct stat st;
    if (stat(out->c_str(), &st) == 0 && S_ISREG(st.st_mode)) {
      if (access(out->c_str(), X_OK) == 0) return 0;
      denied = true;
    }
    if (end == nullptr) break;
    path = end + 1;
  }
  return denied ? UVA_EACCES : UVA_ENOENT;
}

/* Start the child: 0 and *pid, or the error of the spawn (of a failed
 * exec, chdir or dup2 too, that child reaped by posix_spawn). */
static int start_child(pid_t *pid, const Seat *seats,
                       const uva_process_options_t *o) {
  const char *file = o->file != nullptr ? o->file : o->args[0];
  std::string found;
  bool search = std::strchr(file, '/') == nullptr;
  if (search && o->env != nullptr) {
    try {
      int rc = find_in_env(&found, file, o->env);
      if (rc != 0) return rc;
    } catch (...) {
      return UVA_ENOMEM;
    }
    file = found.c_str();
    search = false;
  }

  posix_spawnattr_t attr;
  posix_spawn_file_actions_t fa;
  int rc = posix_spawnattr_init(&attr);
  if (rc != 0) return -rc;
  rc = posix_spawn_file_actions_init(&fa);
  if (rc != 0) {
    posix_spawnattr_destroy(&attr);
    return -rc;
  }
  /* The child starts as a fresh program would: every signal's default
   * action (the loop ignores SIGPIPE, watchers catch others) and an empty
   * mask. */
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  short flags = POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF;
  if (o->flags & UVA_PROCESS_SETSID) flags |= POSIX_SPAWN_SETSID;
  rc = -posix_spawnattr_setflags(&attr, flags);
  if (rc == 0) rc = -posix_spawnattr_setsigmask(&attr, &none);
  if (rc == 0) rc = -posix_spawnattr_setsigdefault(&attr, &all);
  if (rc == 0) rc = add_actions(&fa, seats, o);
  if (rc == 0) {
    char *const *argv = const_cast<char *const *>(o->args); /* only read */
    char *const *envp =
        o->env != nullptr ? const_cast<char *const *>(o->env) : environ;
    if (fault_hit(FAULT_IO))
      rc = UVA_EIO;
    else if (search)
      rc = -posix_spawnp(pid, file, &fa, &attr, argv, envp);
    else
      rc = -posix_spawn(pid, file, &fa, &attr, argv, envp);
  }
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  return rc;
}

int process_spawn(Process **out, Loop *l, const uva_process_options_t *o) {
  int rc = check_options(o);
  if (rc != 0) return rc;
  Process *p = static_cast<Process *>(fault_calloc(1, sizeof(Process)));
  if (p == nullptr) return UVA_ENOMEM;
  sync_init(p, l, MAGIC_PROCESS);
  p->options = o->flags;
  Seat seats[3];
  bool ours_open[3] = {fd_open(0), fd_open(1), fd_open(2)};
  int null = -1;
  rc = watch_children(l);
  for (int i = 0; i < 3 && rc == 0; i++)
    rc = prepare_seat(seats, i, o->stdio[i], ours_open[i], &null, l);
  if (rc == 0) rc = move_sources(seats);
  pid_t pid = 0;
  if (rc == 0) rc = start_child(&pid, seats, o);
  for (Seat &s : seats) {
    if (s.child_end >= 0) close(s.child_end);
    if (s.copy >= 0) close(s.copy);
  }
  if (null >= 0) close(null);

  if (rc == 0) {
    p->pid = pid;
    uv_idle_init(&l->uv, &p->uv); /* cannot fail */
    p->uv.data = p;
    p->cnext = l->children;
    if (l->children != nullptr) l->children->cprev = p;
    l->children = p;
    /* Adopt the parent's ends. This cannot fail for a fresh pipe short of
     * a libuv bug; if it does, the child is killed (and reaped later) and
     * the spawn fails all the same. */
    for (int i = 0; i < 3; i++) {
      Seat &s = seats[i];
      if (s.stream == nullptr) continue;
      if (rc == 0) {
        rc = stream_open_pipe(s.stream, s.parent_end);
        if (rc == 0) {
          p->pipes[i] = s.stream;
          s.parent_end = -1;
        }
      } else {
        io_destroy(s.stream);
      }
      s.stream = nullptr;
      if (s.parent_end >= 0) close(s.parent_end);
    }
    if (rc == 0) {
      *out = p;
      return 0;
    }
    p->options |= UVA_PROCESS_KILL_ON_CLOSE;
    process_close(p, nullptr, nullptr);
    return rc;
  }

  /* Nothing started: give everything back. */
  for (Seat &s : seats) {
    if (s.parent_end >= 0) close(s.parent_end);
    if (s.stream != nullptr) io_destroy(s.stream);
  }
  l->handles--;
  std::free(p);
  return rc;
}

/* ---- the API -------------------------------------------------------------- */

int process_stream(Stream **out, Process *p, int fd) {
  if (fd < 0 || fd > 2) return UVA_EINVAL;
  if (p->pipes[fd] == nullptr) return UVA_ENOENT;
  *out = p->pipes[fd];
  p->pipes[fd] = nullptr;
  return 0;
}

int process_wait(int64_t *exit_status, int *term_signal, Process *p, Task *t) {
  Wait *w = t != nullptr ? sync_find(t, p) : nullptr;
  int rc;
  if (p->closed) {
    rc = UVA_ECLOSED;
  } else if (p->exited) {
    if (exit_status != nullptr) *exit_status = p->exit_status;
    if (term_signal != nullptr) *term_signal = p->term_signal;
    rc = 0;
  } else if (t == nullptr) {
    return UVA_EINVAL; /* no task to register */
  } else {
    return w != nullptr ? UVA_EAGAIN : sync_enlist(p, t, WaitKind::IO);
  }
  if (w != nullptr) sync_drop(w);
  return rc;
}

int process_kill(Process *p, int signum) {
  if (signum < 0 || signum >= NSIG) return UVA_EINVAL;
  if (p->exited) return UVA_ESRCH; /* reaped: the pid may be another's */
  return uv_kill(p->pid, signum);
}

void process_close(Process *p, uva_process_close_cb cb, void *data) {
  if (p->closed) return;
  p->closed = true;
  p->close_cb = cb;
  p->close_data = data;
  Loop *l = p->loop;
  l->lingering++;
  if (!p->exited && (p->options & UVA_PROCESS_KILL_ON_CLOSE))
    uv_kill(p->pid, SIGKILL);
  for (Stream *&s : p->pipes) {
    if (s != nullptr) stream_close(s, nullptr, nullptr, true);
    s = nullptr;
  }
  io_wake_all(p); /* their repeated calls return UVA_ECLOSED */
  if (p->exited)
    close_handle(p);
  else
    p->orphaned = true; /* stays on the list: its exit closes it */
}

void process_hand_off(Loop *l) {
  std::vector<int> pids;
  /* Every child still listed is an orphan (an open handle would have made
   * uva_loop_close return UVA_EBUSY). */
  while (Process *p = l->children) {
    children_unlink(p);
    p->orphaned = false;
    try {
      pids.push_back(p->pid);
    } catch (...) {
      /* Out of memory: this child is left unreaped rather than the loop
       * unclosable. */
    }
    close_handle(p);
  }
  if (l->chld_init) {
    uv_close(reinterpret_cast<uv_handle_t *>(&l->chld), nullptr);
    l->chld_init = l->chld_started = false;
  }
  if (pids.empty()) return;
  try {
    reap_later(pids);
  } catch (...) {
  }
}

}  // namespace detail
}  // namespace uva
