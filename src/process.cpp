/* uvasync — child processes (uv_spawn) and the reaper.
 *
 * Waiting for the exit is an I/O-style wait (see sync.cpp): a waiter stays
 * registered and is woken when libuv reports the exit (or the handle
 * closes), and its repeated call completes.
 *
 * No zombies. libuv reaps a child (waitpid on its pid, at SIGCHLD) only
 * while the child's uv_process_t is open, so the handle stays open until
 * the exit even after uva_process_close: the Process then sits on the
 * loop's orphans list, unreferenced, and its exit closes it. If the loop
 * closes first, uva_loop_close hands the orphans' pids to the reaper, a
 * detached thread of the core that waits for exactly those pids (never
 * waitpid(-1), which would steal other code's children) and ends when
 * none is left.
 *
 * Pipes are made here (pipe2, close-on-exec), the child's end is given to
 * uv_spawn as an inherited descriptor, and the parent's end becomes an
 * ordinary stream (stream_open_pipe), so both read engines serve it.
 */
#include "internal.h"
#include "fault.h"

#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <mutex>
#include <vector>
#ifndef _WIN32
#include <fcntl.h>
#include <pthread.h>
#include <sys/wait.h>
#include <unistd.h>
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

/* ---- the handle ----------------------------------------------------------- */

static Process *of(uv_handle_t *h) { return static_cast<Process *>(h->data); }

static void on_closed(uv_handle_t *h) {
  Process *p = of(h);
  if (p->close_cb != nullptr)
    p->close_cb(reinterpret_cast<uva_process_t *>(p), p->close_data);
  sync_unref(p); /* the owner's reference */
}

static void orphan_unlink(Process *p) {
  Loop *l = p->loop;
  if (p->oprev != nullptr)
    p->oprev->onext = p->onext;
  else
    l->orphans = p->onext;
  if (p->onext != nullptr) p->onext->oprev = p->oprev;
  p->onext = p->oprev = nullptr;
  p->orphaned = false;
}

static void on_exit(uv_process_t *h, int64_t exit_status, int term_signal) {
  Process *p = of(reinterpret_cast<uv_handle_t *>(h));
  p->exited = true;
  p->exit_status = exit_status;
  p->term_signal = term_signal;
  io_wake_all(p);
  if (p->orphaned) { /* closed by its owner: libuv has nothing left to do */
    orphan_unlink(p);
    uv_close(reinterpret_cast<uv_handle_t *>(&p->uv), on_closed);
  }
}

/* ---- spawning ------------------------------------------------------------- */

/* One of the child's descriptors 0..2 while spawning: what uv_spawn gets,
 * and for a pipe both ends and the parent's stream-to-be. */
struct Seat {
  uv_stdio_container_t uv{};
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

/* /dev/null for the seats that get it, opened once per spawn: ours, not
 * libuv's UV_IGNORE, whose child-side handling of descriptors 0..2 varies
 * (under ASan, 1.44 left the parent's pipe end on an ignored 2). */
static int dev_null(int *fd) {
  if (*fd < 0) *fd = open("/dev/null", O_RDWR | O_CLOEXEC);
  return *fd >= 0 ? 0 : -errno;
}

/* Set up seat i (kinds are valid). seats[1] is ready when i == 2.
 * ours_open: whether our descriptor i was open before any pipe was made
 * (a pipe may take the number of a closed one). *null: see dev_null. */
static int prepare_seat(Seat *seats, int i, const uva_stdio_t &io,
                        bool ours_open, int *null, Loop *l) {
  Seat &s = seats[i];
  s.uv.flags = UV_INHERIT_FD;
  switch (io.kind) {
    case UVA_STDIO_INHERIT:
      /* A closed descriptor of ours is /dev/null for the child: a child
       * must not find an unrelated file there. */
      if (ours_open) {
        s.uv.data.fd = i;
        return 0;
      }
      [[fallthrough]];
    case UVA_STDIO_NULL: {
      int rc = dev_null(null);
      s.uv.data.fd = *null;
      return rc;
    }
    case UVA_STDIO_FD:
      s.uv.data.fd = io.fd; /* dup2'ed onto i in the child */
      return 0;
    case UVA_STDIO_STDOUT:
      s.uv = seats[1].uv;
      return 0;
    case UVA_STDIO_PIPE: {
      s.stream = stream_reserve(l);
      if (s.stream == nullptr) return UVA_ENOMEM;
      int fds[2];
      if (pipe2(fds, O_CLOEXEC) != 0) return -errno;
      /* The child reads descriptor 0 and writes 1 and 2. */
      s.child_end = i == 0 ? fds[0] : fds[1];
      s.parent_end = i == 0 ? fds[1] : fds[0];
      s.uv.data.fd = s.child_end;
      return 0;
    }
  }
  return UVA_EINVAL;
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
  for (int i = 0; i < 3 && rc == 0; i++)
    rc = prepare_seat(seats, i, o->stdio[i], ours_open[i], &null, l);

  if (rc == 0) {
    uv_process_options_t uo;
    std::memset(&uo, 0, sizeof uo);
    uo.exit_cb = on_exit;
    uo.file = o->file != nullptr ? o->file : o->args[0];
    uo.args = const_cast<char **>(o->args); /* libuv only reads them */
    uo.env = const_cast<char **>(o->env);
    uo.cwd = o->cwd;
    uo.flags = (o->flags & UVA_PROCESS_SETSID) ? UV_PROCESS_DETACHED : 0;
    uo.stdio_count = 3;
    uv_stdio_container_t stdio[3] = {seats[0].uv, seats[1].uv, seats[2].uv};
    uo.stdio = stdio;
    p->uv.data = p;
    /* libuv reports a failed exec (ENOENT, EACCES...) here; the child
     * that failed is reaped by uv_spawn already. */
    rc = fault_hit(FAULT_IO) ? UV_EIO : uv_spawn(&l->uv, &p->uv, &uo);
  }
  for (Seat &s : seats)
    if (s.child_end >= 0) close(s.child_end);
  if (null >= 0) close(null);

  if (rc == 0) {
    p->pid = p->uv.pid;
    uv_unref(reinterpret_cast<uv_handle_t *>(&p->uv)); /* waiters keep it */
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
  if (p->uv.type == UV_PROCESS) {
    /* uv_spawn initialised the handle: only libuv's close releases it.
     * The memory lingers until then (uva_loop_close finishes it). */
    p->closed = true;
    l->lingering++;
    uv_close(reinterpret_cast<uv_handle_t *>(&p->uv), on_closed);
  } else {
    l->handles--;
    std::free(p);
  }
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
  return uv_process_kill(&p->uv, signum);
}

void process_close(Process *p, uva_process_close_cb cb, void *data) {
  if (p->closed) return;
  p->closed = true;
  p->close_cb = cb;
  p->close_data = data;
  Loop *l = p->loop;
  l->lingering++;
  if (!p->exited && (p->options & UVA_PROCESS_KILL_ON_CLOSE))
    uv_process_kill(&p->uv, SIGKILL);
  for (Stream *&s : p->pipes) {
    if (s != nullptr) stream_close(s, nullptr, nullptr, true);
    s = nullptr;
  }
  io_wake_all(p); /* their repeated calls return UVA_ECLOSED */
  if (p->exited) {
    uv_close(reinterpret_cast<uv_handle_t *>(&p->uv), on_closed);
  } else {
    /* libuv reaps it while the handle is open: keep it so. */
    p->orphaned = true;
    p->oprev = nullptr;
    p->onext = l->orphans;
    if (l->orphans != nullptr) l->orphans->oprev = p;
    l->orphans = p;
  }
}

void process_hand_off(Loop *l) {
  if (l->orphans == nullptr) return;
  std::vector<int> pids;
  while (Process *p = l->orphans) {
    orphan_unlink(p);
    try {
      pids.push_back(p->pid);
    } catch (...) {
      /* Out of memory: this child is left unreaped rather than the loop
       * unclosable. */
    }
    uv_close(reinterpret_cast<uv_handle_t *>(&p->uv), on_closed);
  }
  try {
    reap_later(pids);
  } catch (...) {
  }
}

}  // namespace detail
}  // namespace uva
