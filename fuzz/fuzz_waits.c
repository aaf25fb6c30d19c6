/* libFuzzer target: the "call again" protocol, followed to the letter,
 * while objects close under their waiters.
 *
 * Every wait a task makes is remembered (object, call, arguments), and the
 * task's step repeats it after every wake, as the header asks, until it
 * returns something other than UVA_EAGAIN, or the step withdraws it. Around
 * those tasks the input closes objects (the owner forgets them at once; a
 * task that still waits keeps its call), drives the far end of each stream
 * (writes bytes, reads, half-closes, closes it, which resets a socketpair
 * that holds unread bytes), and cancels, wakes, withdraws and releases
 * tasks, from the top level, from task steps, from timer callbacks and from
 * call_soon callbacks. Waits: event, lock, semaphore, queue get and put,
 * thread-safe flag, stream read, read_spill, peek, read_line, read_exactly,
 * read_to_eof, drain, write_drain and shutdown (over a socketpair or
 * either end of a pipe); a pool job's end (jobs held at a gate until the
 * input opens it, cancelled or closed meanwhile, on a pool of 2), a child
 * process's exit (killed, or closed with UVA_PROCESS_KILL_ON_CLOSE) and a
 * signal watcher's next arrival (the input raises the signal). Tasks also
 * sleep and join.
 *
 * What may be used when comes from the header alone: an object's owner
 * never touches it after closing it (a stream or a timer: after its close
 * callback); a task's pending call is repeated as long as the task has a
 * wait node on the object, which ends when a call returns other than
 * UVA_EAGAIN, when a cancellation is delivered (the step sees
 * UVA_ECANCELED), when the task finishes, or when uva_task_withdraw
 * returns 0. Checked: no sanitizer report; no positive result; a repeated
 * call on an object its owner closed completes (never UVA_EAGAIN);
 * uva_task_withdraw finds exactly the waits the model says exist; a wait
 * call for a finished task is UVA_EINVAL; queue items leave in the order
 * they were put; stream bytes arrive in the order the peer wrote them; at
 * the end uva_loop_close returns 0 and nothing leaks (LeakSanitizer).
 * FUZZ_TRACE=1 prints what an input does. */
#include <uvasync.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_OBJS 12
#define MAX_TASKS 16
#define MAX_PEND 4     /* waits of one task at a time (select!) */
#define QMODEL 64      /* items a queue's model holds */
#define MAX_CHILDREN 3 /* child processes one input may spawn */

enum kind {
  K_NONE,
  K_EVENT,
  K_LOCK,
  K_SEM,
  K_QUEUE,
  K_FLAG,
  K_STREAM,
  K_TIMER,
  K_WORK,
  K_PROC,
  K_SIG
};

/* The wait calls. */
enum call {
  C_EVENT,
  C_LOCK,
  C_SEM,
  C_GET,
  C_PUT,
  C_FLAG,
  C_READ,
  C_SPILL,
  C_PEEK,
  C_LINE,
  C_EXACT,
  C_TO_EOF,
  C_DRAIN,
  C_WRITE_DRAIN,
  C_SHUTDOWN,
  C_WORK,
  C_PROC,
  C_SIG,
  C_CALLS
};

static const char *const call_name[C_CALLS] = {
    "event_wait",   "lock_acquire", "sem_acquire", "queue_get",   "queue_put",
    "flag_wait",    "read",         "read_spill",  "peek",        "read_line",
    "read_exactly", "read_to_eof",  "drain",       "write_drain", "shutdown",
    "work_wait",    "process_wait", "signal_wait"};

struct obj {
  int kind;
  void *p;
  int closed;     /* the owner closed it and no longer uses it */
  int close_done; /* stream, timer: its close callback ran */
  int nwaits;     /* pending calls of tasks on it (they keep it alive) */
  /* streams */
  int peer;     /* far end (socketpair or pipe), -1 once closed */
  int pipe_dir; /* 0 socketpair, 1 we read a pipe, 2 we write a pipe */
  size_t rpos;  /* bytes consumed by reads (the model) */
  size_t wpos;  /* bytes the peer wrote */
  /* queues */
  size_t maxsize;
  uintptr_t q[QMODEL];
  int qhead, qlen;
};

struct pend {
  int obj;
  int call;
  size_t n;       /* length argument */
  uintptr_t item; /* C_PUT */
};

struct ftask {
  uva_task_t *t;
  int used;
  int held;  /* the fuzzer holds a reference */
  int done;  /* the step returned a result */
  int freed; /* the task's memory went (dtor ran) */
  struct pend p[MAX_PEND];
  int npend;
};

static struct {
  const uint8_t *in;
  size_t len, at;
  uva_loop_t *loop;
  struct obj o[MAX_OBJS];
  struct ftask t[MAX_TASKS];
  int ntasks;
  int running; /* index of the task whose step runs, or -1 */
  int depth;   /* actions nested in the current one */
  int in_cb;   /* a timer or call_soon callback runs */
  int cleanup;
  uintptr_t next_item;
  int children; /* spawned by this input */
} F;

/* Gated pool jobs wait on a pool thread until the input (or the cleanup)
 * opens the gate; the others return at once. */
static atomic_int gate;

static void job_fn(void *data) {
  if (data == NULL) return;
  while (!atomic_load(&gate)) {
    struct timespec ts = {0, 100000};
    nanosleep(&ts, NULL);
  }
}

static int trace = -1;
static uint8_t rbuf[256 * 1024];
static uint8_t spill[1024];
static uint8_t wsrc[320 * 1024];

#define TR(...)                                  \
  do {                                           \
    if (trace > 0) fprintf(stderr, __VA_ARGS__); \
  } while (0)

static void fail(const char *what, int line, int rc) {
  fprintf(stderr, "fuzz_waits: rule broken at line %d: %s (rc %d %s)\n", line,
          what, rc, uva_err_name(rc));
  abort();
}

#define REQUIRE(cond, rc)                     \
  do {                                        \
    if (!(cond)) fail(#cond, __LINE__, (rc)); \
  } while (0)

static unsigned byte(void) { return F.at < F.len ? F.in[F.at++] : 0; }

static uint8_t pattern(size_t i) { return (uint8_t) (i % 251); }

/* ---- objects --------------------------------------------------------------- */

/* The slot is free again once nothing may refer to the object: its owner
 * closed it, no task waits on it, and a stream's or timer's close ran. */
static void maybe_forget(int i) {
  struct obj *o = &F.o[i];
  if (!o->closed || o->nwaits > 0) return;
  if ((o->kind == K_STREAM || o->kind == K_TIMER) && !o->close_done) return;
  if (o->peer >= 0) close(o->peer);
  memset(o, 0, sizeof *o);
  o->peer = -1;
}

static int free_slot(void) {
  for (int i = 0; i < MAX_OBJS; i++)
    if (F.o[i].kind == K_NONE) return i;
  return -1;
}

/* An object the owner may use: of kind k (K_NONE: any), open. */
static int pick_open(int k) {
  unsigned b = byte();
  for (int i = 0; i < MAX_OBJS; i++) {
    int j = (int) ((b + (unsigned) i) % MAX_OBJS);
    if (F.o[j].kind != K_NONE && F.o[j].kind != K_TIMER && !F.o[j].closed &&
        (k == K_NONE || F.o[j].kind == k))
      return j;
  }
  return -1;
}

static void on_stream_closed(uva_stream_t *s, void *data) {
  int i = (int) (intptr_t) data;
  (void) s;
  TR("  stream %d: close done\n", i);
  F.o[i].close_done = 1;
  maybe_forget(i);
}

static void on_timer_closed(uva_timer_t *t, void *data) {
  (void) data;
  int i = 0;
  while (F.o[i].kind != K_TIMER || F.o[i].p != (void *) t)
    i++;
  TR("  timer %d: close done\n", i);
  F.o[i].close_done = 1;
  maybe_forget(i);
}

/* The owner closes object i and forgets it. */
static void owner_close(int i, int how) {
  struct obj *o = &F.o[i];
  int rc = 0;
  TR("  close %d (kind %d)\n", i, o->kind);
  switch (o->kind) {
    case K_EVENT:
      rc = uva_event_close(o->p);
      break;
    case K_LOCK:
      rc = uva_lock_close(o->p);
      break;
    case K_SEM:
      rc = uva_sem_close(o->p);
      break;
    case K_QUEUE:
      rc = uva_queue_close(o->p);
      break;
    case K_FLAG:
      rc = uva_flag_close(o->p);
      break;
    case K_STREAM:
      rc =
          how ? uva_stream_abort(o->p, on_stream_closed, (void *) (intptr_t) i)
              : uva_stream_close(o->p, on_stream_closed, (void *) (intptr_t) i);
      break;
    case K_TIMER:
      rc = uva_timer_close(o->p, on_timer_closed);
      break;
    case K_WORK: /* one not started is dropped; a running one finishes */
      rc = uva_work_close(o->p);
      break;
    case K_PROC: /* spawned with UVA_PROCESS_KILL_ON_CLOSE */
      rc = uva_process_close(o->p, NULL, NULL);
      break;
    case K_SIG:
      rc = uva_signal_close(o->p, NULL, NULL);
      break;
  }
  REQUIRE(rc == 0, rc);
  o->closed = 1;
  maybe_forget(i);
}

/* ---- the model's checks ------------------------------------------------------ */

static void stream_took(struct obj *o, const uint8_t *got, size_t n) {
  for (size_t k = 0; k < n; k++)
    if (got[k] != pattern(o->rpos + k)) {
      fprintf(stderr, "stream byte %zu: got %u, peer wrote %u\n", o->rpos + k,
              got[k], pattern(o->rpos + k));
      abort();
    }
  o->rpos += n;
}

static void queue_push(struct obj *o, uintptr_t item) {
  REQUIRE(o->qlen < QMODEL, 0);
  o->q[(o->qhead + o->qlen) % QMODEL] = item;
  o->qlen++;
}

static void queue_took(struct obj *o, uintptr_t item) {
  if (o->qlen == 0 || o->q[o->qhead] != item) {
    fprintf(stderr, "queue gave %lu, expected %lu (%d queued)\n",
            (unsigned long) item,
            o->qlen ? (unsigned long) o->q[o->qhead] : 0ul, o->qlen);
    abort();
  }
  o->qhead = (o->qhead + 1) % QMODEL;
  o->qlen--;
}

/* ---- waits ------------------------------------------------------------------- */

static struct pend *find_pend(struct ftask *ft, int obj) {
  for (int i = 0; i < ft->npend; i++)
    if (ft->p[i].obj == obj) return &ft->p[i];
  return NULL;
}

static void remove_pend(struct ftask *ft, struct pend *p) {
  int obj = p->obj;
  *p = ft->p[--ft->npend];
  F.o[obj].nwaits--;
  maybe_forget(obj);
}

/* The core withdrew every wait of the task (cancellation delivered, or the
 * task finished). */
static void drop_all(struct ftask *ft) {
  while (ft->npend > 0)
    remove_pend(ft, &ft->p[0]);
}

/* Coverage for the model's state at a repeated call (which call, whether
 * the owner closed the object, whether a queue holds what the waiter
 * wants): code coverage alone does not tell "a getter was handed an item
 * and then the queue closed" from the two separately, so libFuzzer would
 * not keep inputs that reach the first half of such a sequence. Each case
 * is an edge of its own. */
static volatile unsigned state_sink;
#define CASE4(n)           \
  case (n):                \
    state_sink += (n);     \
    break;                 \
  case (n) + 1:            \
    state_sink += (n) + 1; \
    break;                 \
  case (n) + 2:            \
    state_sink += (n) + 2; \
    break;                 \
  case (n) + 3:            \
    state_sink += (n) + 3; \
    break;
__attribute__((noinline)) static void state_edge(unsigned k) {
  switch (k) {
    /* A macro per four cases reads as a table. */
    // clang-format off
    CASE4(0) CASE4(4) CASE4(8) CASE4(12) CASE4(16) CASE4(20) CASE4(24)
    CASE4(28) CASE4(32) CASE4(36) CASE4(40) CASE4(44) CASE4(48) CASE4(52)
    CASE4(56) CASE4(60)
    default: break;
  }
  // clang-format on
}

static void repeat_state(const struct pend *p) {
  const struct obj *o = &F.o[p->obj];
  unsigned has = 0;
  if (p->call == C_GET) has = o->qlen > 0;
  if (p->call == C_PUT) has = (size_t) o->qlen < o->maxsize;
  state_edge((unsigned) p->call * 4 + (unsigned) o->closed * 2 + has);
}

/* Make call p for task ft: a first call (p not yet recorded) or a repeat.
 * `arg` is the task argument: ft->t, or NULL inside ft's own step. */
static void make_call(struct ftask *ft, struct pend *p, int repeat,
                      uva_task_t *arg) {
  struct obj *o = &F.o[p->obj];
  void *h = o->p;
  size_t z = 0;
  void *item = NULL;
  const void *data = NULL;
  int64_t status = -1;
  int term = -1;
  uint64_t count = 0;
  int rc;
  if (repeat) repeat_state(p);
  switch (p->call) {
    case C_EVENT:
      rc = uva_event_wait(h, arg);
      break;
    case C_LOCK:
      rc = uva_lock_acquire(h, arg);
      break;
    case C_SEM:
      rc = uva_sem_acquire(h, arg);
      break;
    case C_GET:
      rc = uva_queue_get(&item, h, arg);
      break;
    case C_PUT:
      rc = uva_queue_put(h, arg, (void *) p->item);
      break;
    case C_FLAG:
      rc = uva_flag_wait(h, arg);
      break;
    case C_READ:
      rc = uva_stream_read(&z, h, arg, rbuf, p->n);
      break;
    case C_SPILL:
      rc = uva_stream_read_spill(&z, h, arg, rbuf, p->n, spill, sizeof spill);
      break;
    case C_PEEK:
      rc = uva_stream_peek(&data, &z, h, arg);
      break;
    case C_LINE:
      rc = uva_stream_read_line(&z, h, arg, rbuf, p->n);
      break;
    case C_EXACT:
      rc = uva_stream_read_exactly(h, arg, rbuf, p->n);
      break;
    case C_TO_EOF:
      rc = uva_stream_read_to_eof(&z, h, arg);
      break;
    case C_DRAIN:
      rc = uva_stream_drain(h, arg);
      break;
    case C_WRITE_DRAIN:
      rc = uva_stream_write_drain(h, arg, wsrc, p->n);
      break;
    case C_SHUTDOWN:
      rc = uva_stream_shutdown(h, arg);
      break;
    case C_WORK:
      rc = uva_work_wait(h, arg);
      /* the job's status: fn returned, or it was dropped, or closed */
      REQUIRE(rc == 0 || rc == UVA_ECANCELED || rc == UVA_ECLOSED ||
                  rc == UVA_EAGAIN,
              rc);
      break;
    case C_PROC:
      rc = uva_process_wait(&status, &term, h, arg);
      /* true, exit 3, or killed by SIGTERM or SIGKILL */
      if (rc == 0)
        REQUIRE((status == 0 && term == 0) || (status == 3 && term == 0) ||
                    (status == 0 && (term == SIGTERM || term == SIGKILL)),
                (int) status);
      break;
    default:
      rc = uva_signal_wait(&count, h, arg);
      if (rc == 0) REQUIRE(count >= 1, (int) count);
      break;
  }
  TR("    task %d %s %s(obj %d, n %zu) -> %s\n", (int) (ft - F.t),
     repeat ? "repeats" : "calls", call_name[p->call], p->obj, p->n,
     rc ? uva_err_name(rc) : "0");
  REQUIRE(rc <= 0, rc);
  if (rc == UVA_EAGAIN) {
    /* The owner closed it: the close woke the task and settled its wait. */
    REQUIRE(!o->closed, rc);
    if (!repeat) {
      REQUIRE(ft->npend < MAX_PEND, rc);
      ft->p[ft->npend++] = *p;
      o->nwaits++;
    }
    return;
  }
  if (rc == 0) {
    switch (p->call) {
      case C_GET:
        queue_took(o, (uintptr_t) item);
        break;
      case C_PUT:
        queue_push(o, p->item);
        break;
      case C_READ:
      case C_EXACT:
        stream_took(o, rbuf, p->call == C_READ ? z : p->n);
        break;
      case C_SPILL:
        if (z <= p->n) {
          stream_took(o, rbuf, z);
        } else {
          stream_took(o, rbuf, p->n);
          stream_took(o, spill, z - p->n);
        }
        break;
      case C_LINE:
        stream_took(o, rbuf, z);
        break;
      case C_PEEK: /* checked, not consumed */
        for (size_t k = 0; k < z; k++)
          REQUIRE(((const uint8_t *) data)[k] == pattern(o->rpos + k), 0);
        break;
      default:
        break;
    }
  }
  if (repeat) remove_pend(ft, p);
}

/* A held task (one the fuzzer may name), or -1. */
static int pick_task(void) {
  unsigned b = byte();
  for (int i = 0; i < F.ntasks; i++) {
    int j = (int) ((b + (unsigned) i) % (unsigned) F.ntasks);
    if (F.t[j].held) return j;
  }
  return -1;
}

/* A new wait call of task ti on an open object, or the repeat of its
 * pending call there (a task waits on one object with one call). */
static void wait_call(int ti) {
  static const size_t read_n[8] = {0, 1, 7, 100, 4096, 65536, 70000, 200000};
  static const size_t write_n[4] = {1, 100, 70000, 300000};
  struct ftask *ft = &F.t[ti];
  int oi = pick_open(K_NONE);
  unsigned how = byte();
  if (oi < 0) return;
  struct obj *o = &F.o[oi];
  uva_task_t *arg = (F.running == ti && (how & 1)) ? NULL : ft->t;
  struct pend *old = find_pend(ft, oi);
  if (old != NULL) {
    if (o->kind == K_QUEUE && (how & 2)) {
      /* the other direction while waiting: refused, the wait stays */
      void *item;
      int rc = old->call == C_GET ? uva_queue_put(o->p, arg, (void *) 1)
                                  : uva_queue_get(&item, o->p, arg);
      TR("    task %d mixes put and get on %d -> %s\n", ti, oi,
         uva_err_name(rc));
      REQUIRE(rc == UVA_EBUSY, rc);
      return;
    }
    make_call(ft, old, 1, arg);
    return;
  }
  if (ft->npend >= MAX_PEND) return;
  struct pend p = {oi, 0, 0, 0};
  switch (o->kind) {
    case K_EVENT:
      p.call = C_EVENT;
      break;
    case K_LOCK:
      p.call = C_LOCK;
      break;
    case K_SEM:
      p.call = C_SEM;
      break;
    case K_FLAG:
      p.call = C_FLAG;
      break;
    case K_WORK:
      p.call = C_WORK;
      break;
    case K_PROC:
      p.call = C_PROC;
      break;
    case K_SIG:
      p.call = C_SIG;
      break;
    case K_QUEUE:
      if (how & 4) {
        if (o->qlen >= QMODEL - MAX_TASKS) return; /* keep the model bounded */
        p.call = C_PUT;
        p.item = ++F.next_item;
      } else {
        p.call = C_GET;
      }
      break;
    default: { /* stream */
      static const int calls[10] = {
          C_READ,   C_SPILL, C_PEEK,        C_LINE,     C_EXACT,
          C_TO_EOF, C_DRAIN, C_WRITE_DRAIN, C_SHUTDOWN, C_READ};
      unsigned nb = byte();
      p.call = calls[(how >> 3) % 10];
      p.n = p.call == C_WRITE_DRAIN ? write_n[nb & 3] : read_n[nb & 7];
      break;
    }
  }
  if (ft->done) {
    /* a finished task cannot wait */
    int rc;
    if (o->kind == K_EVENT)
      rc = uva_event_wait(o->p, ft->t);
    else if (o->kind == K_STREAM)
      rc = uva_stream_drain(o->p, ft->t);
    else
      return;
    TR("    finished task %d waits -> %s\n", ti, uva_err_name(rc));
    REQUIRE(rc == UVA_EINVAL, rc);
    return;
  }
  make_call(ft, &p, 0, arg);
}

/* ---- actions ------------------------------------------------------------------- */

static int step(uva_task_t *t, int status, void *d);
static void act(int ti);

static void task_freed(void *d) {
  int i = (int) (intptr_t) d;
  TR("  task %d: freed\n", i);
  REQUIRE(F.t[i].npend == 0, F.t[i].npend);
  F.t[i].freed = 1;
}

static void timer_fired(uva_timer_t *tm, void *d) {
  (void) tm;
  if (F.cleanup || F.in_cb) return;
  TR("  timer %d fires\n", (int) (intptr_t) d);
  F.in_cb = 1;
  act(-1);
  F.in_cb = 0;
}

static void soon(void *d) {
  (void) d;
  if (F.cleanup || F.in_cb) return;
  TR("  call_soon runs\n");
  F.in_cb = 1;
  act(-1);
  F.in_cb = 0;
}

static void spawn(void) {
  if (F.ntasks >= MAX_TASKS) return;
  int i = F.ntasks;
  struct ftask *ft = &F.t[i];
  int rc =
      uva_task_spawn(&ft->t, F.loop, step, (void *) (intptr_t) i, task_freed);
  REQUIRE(rc == 0, rc);
  F.ntasks++;
  ft->used = 1;
  ft->held = 1;
  TR("  spawn task %d\n", i);
}

/* A pool job, a child process or a signal watcher in slot o. */
static void new_os_object(struct obj *o, unsigned which) {
  unsigned b = byte();
  int rc;
  if (which == 0) {
    o->kind = K_WORK;
    rc = uva_work_submit((uva_work_t **) &o->p, F.loop, job_fn,
                         (b & 1) ? (void *) 1 : NULL, NULL, NULL);
  } else if (which == 1) {
    static const char *const progs[3][4] = {
        {"true", NULL}, {"sh", "-c", "exit 3", NULL}, {"sleep", "5", NULL}};
    if (F.children >= MAX_CHILDREN) {
      memset(o, 0, sizeof *o);
      o->peer = -1;
      return;
    }
    uva_process_options_t opt = UVA_PROCESS_OPTIONS_INIT;
    opt.args = progs[b % 3];
    opt.stdio[0].kind = UVA_STDIO_NULL;
    opt.stdio[1].kind = UVA_STDIO_NULL;
    opt.stdio[2].kind = UVA_STDIO_NULL;
    opt.flags = UVA_PROCESS_KILL_ON_CLOSE; /* no sleep outlives the input */
    o->kind = K_PROC;
    rc = uva_process_spawn((uva_process_t **) &o->p, F.loop, &opt);
    F.children++;
  } else {
    /* Signals whose default action is to do nothing, and that libFuzzer
     * leaves alone (it takes SIGUSR1 and SIGUSR2). */
    o->kind = K_SIG;
    rc = uva_signal_new((uva_signal_t **) &o->p, F.loop,
                        (b & 1) ? SIGWINCH : SIGURG);
  }
  TR("  new object %d kind %d -> %s\n", (int) (o - F.o), o->kind,
     rc ? uva_err_name(rc) : "0");
  REQUIRE(rc == 0, rc);
}

static void on_signal(uva_signal_t *sig, int signum, void *data) {
  (void) sig;
  (void) data;
  TR("  signal %d callback\n", signum);
}

static void new_object(void) {
  int i = free_slot();
  unsigned b = byte();
  if (i < 0) return;
  struct obj *o = &F.o[i];
  int rc = 0;
  memset(o, 0, sizeof *o);
  o->peer = -1;
  switch (b % 8) {
    case 0:
      o->kind = K_EVENT;
      rc = uva_event_new((uva_event_t **) &o->p, F.loop);
      break;
    case 1:
      o->kind = K_LOCK;
      rc = uva_lock_new((uva_lock_t **) &o->p, F.loop);
      break;
    case 2:
      o->kind = K_SEM;
      /* 0 or 1 permit; unbounded, or bounded by 1..3 */
      rc =
          uva_sem_new((uva_sem_t **) &o->p, F.loop, (b >> 3) & 1, (b >> 4) & 3);
      break;
    case 3:
      o->kind = K_QUEUE;
      o->maxsize = (b >> 3) & 3;
      rc = uva_queue_new((uva_queue_t **) &o->p, F.loop, o->maxsize, NULL);
      break;
    case 4:
      if (b & 128) { /* a job, a child or a signal watcher */
        new_os_object(o, (b >> 3) % 3);
        return;
      }
      o->kind = K_FLAG;
      rc = uva_flag_new((uva_flag_t **) &o->p, F.loop);
      break;
    case 5: {
      o->kind = K_TIMER;
      rc = uva_timer_new((uva_timer_t **) &o->p, F.loop, timer_fired,
                         (void *) (intptr_t) i, NULL);
      break;
    }
    default: { /* a stream over a socketpair or a pipe, and its far end */
      int fds[2], ours, peer;
      int dir = (b >> 3) % 3;
      if (dir == 0) {
        if (socketpair(AF_UNIX, SOCK_STREAM, 0, fds) != 0) abort();
        ours = fds[0];
        peer = fds[1];
      } else {
        if (pipe(fds) != 0) abort();
        ours = dir == 1 ? fds[0] : fds[1];
        peer = dir == 1 ? fds[1] : fds[0];
      }
      fcntl(peer, F_SETFL, fcntl(peer, F_GETFL) | O_NONBLOCK);
      o->kind = K_STREAM;
      rc = uva_stream_open_fd((uva_stream_t **) &o->p, F.loop, ours);
      if (rc != 0) {
        close(ours);
        close(peer);
      } else {
        o->peer = peer;
        o->pipe_dir = dir;
      }
      break;
    }
  }
  TR("  new object %d kind %d -> %s\n", i, o->kind,
     rc ? uva_err_name(rc) : "0");
  REQUIRE(rc == 0, rc);
}

/* The far end of a stream. */
static void peer_action(void) {
  static const size_t sizes[8] = {1, 9, 251, 300, 5000, 65536, 70000, 300000};
  static uint8_t tmp[300000];
  int oi = pick_open(K_STREAM);
  unsigned b = byte();
  if (oi < 0) return;
  struct obj *o = &F.o[oi];
  if (o->peer < 0) return;
  size_t n = sizes[(b >> 2) & 7];
  switch (b & 3) {
    case 0:
    case 1: {                      /* write the pattern */
      if (o->pipe_dir == 2) break; /* the far end reads */
      for (size_t k = 0; k < n; k++)
        tmp[k] = pattern(o->wpos + k);
      ssize_t w = write(o->peer, tmp, n);
      TR("  peer %d writes %zu -> %zd\n", oi, n, w);
      if (w > 0) o->wpos += (size_t) w;
      break;
    }
    case 2: { /* read what the stream wrote */
      if (o->pipe_dir == 1) break;
      ssize_t r = read(o->peer, tmp, n);
      TR("  peer %d reads %zu -> %zd\n", oi, n, r);
      break;
    }
    default: /* half-close, or close (a reset if it holds unread bytes) */
      if (o->pipe_dir == 0 && (b & 4)) {
        TR("  peer %d shuts down\n", oi);
        shutdown(o->peer, SHUT_WR);
      } else {
        TR("  peer %d closes\n", oi);
        close(o->peer);
        o->peer = -1;
      }
      break;
  }
}

/* What the owner does with an open object besides waiting on it. */
static void owner_action(void) {
  static const size_t wsizes[4] = {1, 100, 70000, 300000};
  int oi = pick_open(K_NONE);
  unsigned b = byte();
  if (oi < 0) return;
  struct obj *o = &F.o[oi];
  int rc = 0;
  int64_t v;
  void *item;
  size_t z;
  switch (o->kind) {
    case K_EVENT:
      rc = (b & 1) ? uva_event_set(o->p) : uva_event_clear(o->p);
      break;
    case K_LOCK:
      rc = (b & 1) ? uva_lock_release(o->p) : uva_lock_try_acquire(o->p);
      if (rc == UVA_EINVAL || rc == UVA_EBUSY) rc = 0;
      break;
    case K_SEM:
      rc = (b & 1) ? uva_sem_release(o->p) : uva_sem_try_acquire(o->p);
      if (rc == UVA_EOVERFLOW || rc == UVA_EBUSY) rc = 0;
      REQUIRE(uva_sem_value(&v, o->p) == 0 && v >= 0, (int) v);
      break;
    case K_QUEUE:
      if (b & 1) {
        if (o->qlen >= QMODEL - MAX_TASKS) break;
        uintptr_t it = ++F.next_item;
        rc = uva_queue_put_nowait(o->p, (void *) it);
        if (rc == 0) queue_push(o, it);
        if (rc == UVA_EQUEUEFULL) rc = 0;
      } else {
        rc = uva_queue_get_nowait(&item, o->p);
        if (rc == 0) queue_took(o, (uintptr_t) item);
        if (rc == UVA_EQUEUEEMPTY) rc = 0;
      }
      break;
    case K_FLAG:
      rc = uva_flag_set(o->p);
      break;
    case K_WORK:
      if (b & 1) {
        rc = uva_work_cancel(o->p);
        if (rc == UVA_EBUSY) rc = 0; /* running or ended */
      } else {
        atomic_store(&gate, 1);
      }
      break;
    case K_PROC:
      rc = uva_process_kill(o->p, (b & 2) ? SIGTERM : 0);
      if (rc == UVA_ESRCH) rc = 0; /* it exited */
      break;
    case K_SIG:
      if (b & 1) {
        int signum = 0;
        rc = uva_signal_signum(&signum, o->p);
        if (rc == 0) rc = kill(getpid(), signum) == 0 ? 0 : -errno;
      } else {
        rc = uva_signal_on_signal(o->p, (b & 2) ? on_signal : NULL, NULL);
      }
      break;
    case K_STREAM:
      switch ((b >> 1) % 4) {
        case 0:
          rc = uva_stream_write(&z, o->p, wsrc, wsizes[(b >> 3) & 3]);
          REQUIRE(rc <= 0, rc);
          rc = 0; /* EPIPE, ECONNRESET, EBADF...: the peer's doing */
          break;
        case 1: { /* settings that make reads wait or fail */
          static const uva_stream_option opt[4] = {
              UVA_STREAM_HIGH_WATER, UVA_STREAM_LINE_LIMIT,
              UVA_STREAM_LOW_WATER, UVA_STREAM_DELIMITER};
          static const size_t val[4] = {1, 20, 300, 65536};
          uva_stream_option op = opt[(b >> 3) & 3];
          size_t value = op == UVA_STREAM_DELIMITER ? ((b & 32) ? 10 : 3)
                                                    : val[(b >> 5) & 3];
          rc = uva_stream_set(o->p, op, value);
          break;
        }
        case 2: { /* consume some of what a peek showed */
          rc = uva_stream_buffered(&z, o->p);
          size_t n = (b & 8) ? z : (z < 10 ? z : 10);
          if (rc == 0 && uva_stream_consume(o->p, n) == 0) o->rpos += n;
          break;
        }
        default:
          rc = uva_stream_read_hint(&z, o->p);
          break;
      }
      break;
  }
  TR("  owner acts on %d (kind %d, byte %u) -> %s\n", oi, o->kind, b,
     rc ? uva_err_name(rc) : "0");
  REQUIRE(rc == 0, rc);
}

static void timer_action(void) {
  /* timers live in the object table too; pick_open skips them */
  unsigned b = byte();
  for (int i = 0; i < MAX_OBJS; i++) {
    int j = (int) ((b + (unsigned) i) % MAX_OBJS);
    struct obj *o = &F.o[j];
    if (o->kind != K_TIMER || o->closed) continue;
    int rc;
    if (b & 128) {
      owner_close(j, 0);
      return;
    }
    rc = uva_timer_start(o->p, (b & 64) ? 1 : 0, (b & 32) ? 1 : 0);
    TR("  timer %d start -> %s\n", j, rc ? uva_err_name(rc) : "0");
    REQUIRE(rc == 0, rc);
    return;
  }
}

/* Task ti is given up by the fuzzer: woken (a sleep, join or park ends),
 * then our reference goes. Its step keeps repeating its pending calls and
 * finishes when none is left. */
static void release_task(int ti) {
  struct ftask *ft = &F.t[ti];
  TR("  release task %d\n", ti);
  REQUIRE(uva_task_wake(ft->t) == 0, 0);
  ft->held = 0;
  REQUIRE(uva_task_release(ft->t) == 0, 0);
}

/* One action; self is the index of the task whose step runs, or -1. */
static void act(int self) {
  unsigned op = byte();
  int ti, oi, rc;
  F.depth++;
  switch (op % 24) {
    case 0:
      if (F.depth == 1 && F.running < 0 && !F.in_cb) {
        /* a loop pass, only from the top level */
        rc = uva_loop_run(F.loop, UVA_RUN_NOWAIT);
        TR("  pass -> %d\n", rc);
        REQUIRE(rc == 0, rc);
      }
      break;
    case 1:
    case 2:
      spawn();
      break;
    case 3:
    case 4:
      new_object();
      break;
    case 5:
    case 6:
    case 7:
    case 8: /* waits: the running task's own, mostly */
      ti = (self >= 0 && (op & 32)) ? self : pick_task();
      if (ti >= 0) wait_call(ti);
      break;
    case 9:
      oi = pick_open(K_NONE);
      if (oi >= 0) owner_close(oi, (int) (byte() & 1));
      break;
    case 10:
    case 11:
    case 12:
      owner_action();
      break;
    case 13:
    case 14:
      peer_action();
      break;
    case 15:
      ti = pick_task();
      if (ti >= 0) {
        TR("  cancel task %d\n", ti);
        REQUIRE(uva_task_cancel(F.t[ti].t) == 0, 0);
      }
      break;
    case 16:
      ti = pick_task();
      if (ti >= 0) {
        TR("  wake task %d\n", ti);
        REQUIRE(uva_task_wake(F.t[ti].t) == 0, 0);
      }
      break;
    case 17: { /* withdraw: exactly the waits the model knows */
      ti = pick_task();
      if (ti < 0) break;
      struct ftask *ft = &F.t[ti];
      unsigned b = byte();
      if (ft->npend > 0 && (b & 1)) {
        struct pend *p = &ft->p[(b >> 1) % (unsigned) ft->npend];
        rc = uva_task_withdraw(ft->t, F.o[p->obj].p);
        TR("  withdraw task %d from %d -> %s\n", ti, p->obj, uva_err_name(rc));
        REQUIRE(rc == 0, rc);
        remove_pend(ft, p);
      } else {
        oi = pick_open(K_NONE);
        if (oi < 0) break;
        rc = uva_task_withdraw(ft->t, F.o[oi].p);
        TR("  withdraw task %d from %d -> %s\n", ti, oi, uva_err_name(rc));
        struct pend *p = find_pend(ft, oi);
        REQUIRE(rc == (p ? 0 : UVA_ENOENT), rc);
        if (p) remove_pend(ft, p);
      }
      break;
    }
    case 18:
      ti = pick_task();
      if (ti >= 0 && (byte() & 3) == 0) release_task(ti);
      break;
    case 19:
      timer_action();
      break;
    case 20: /* sleep: the running task only */
      if (self >= 0) {
        static const int64_t d[4] = {0, 0, 1, 100000};
        rc = uva_task_sleep((byte() & 1) ? NULL : F.t[self].t, d[byte() & 3]);
        TR("  task %d sleeps -> %s\n", self, rc ? uva_err_name(rc) : "0");
        REQUIRE(rc == 0 || rc == UVA_EBUSY, rc);
      }
      break;
    case 21: /* join another task */
      ti = pick_task();
      if (self >= 0 && ti >= 0) {
        rc = uva_task_join(NULL, F.t[ti].t);
        TR("  task %d joins %d -> %s\n", self, ti, rc ? uva_err_name(rc) : "0");
        REQUIRE(rc == 0 || rc == UVA_EBUSY || (rc == UVA_EINVAL && ti == self),
                rc);
      }
      break;
    case 22:
      rc = uva_loop_call_soon(F.loop, soon, NULL);
      REQUIRE(rc == 0, rc);
      break;
    default: /* the running task's result, another's done state */
      ti = pick_task();
      if (ti >= 0) {
        int done = -1;
        REQUIRE(uva_task_done(&done, F.t[ti].t) == 0, 0);
        REQUIRE(done == F.t[ti].done, done);
      }
      break;
  }
  F.depth--;
}

/* ---- the task step ------------------------------------------------------------ */

static int finish(struct ftask *ft, int result) {
  drop_all(ft); /* finishing withdraws every wait */
  ft->done = 1;
  TR("  task %d finishes (%d)\n", (int) (ft - F.t), result);
  return result;
}

static int step(uva_task_t *t, int status, void *d) {
  int ti = (int) (intptr_t) d;
  struct ftask *ft = &F.t[ti];
  REQUIRE(ft->t == t, 0);
  TR("  step of task %d (status %s, %d waits)\n", ti,
     status ? uva_err_name(status) : "0", ft->npend);
  if (status == UVA_ECANCELED) drop_all(ft); /* delivery withdrew them */
  if (F.cleanup) return finish(ft, status);
  int prev = F.running;
  F.running = ti;
  /* The protocol: every pending call is made again after a wake (or
   * withdrawn, which a held task may choose). */
  for (int i = 0; i < ft->npend;) {
    int n = ft->npend;
    unsigned b = ft->held ? byte() : 2;
    if ((b & 15) == 1) {
      int rc = uva_task_withdraw(t, F.o[ft->p[i].obj].p);
      TR("    task %d withdraws from %d -> %s\n", ti, ft->p[i].obj,
         uva_err_name(rc));
      REQUIRE(rc == 0, rc);
      remove_pend(ft, &ft->p[i]);
      continue;
    }
    make_call(ft, &ft->p[i], 1, (b & 1) ? NULL : t);
    if (ft->npend == n) i++;
  }
  int r = UVA_TASK_PENDING;
  if (!ft->held) {
    /* released: only its waits keep it; never parked (nobody could wake
     * it) */
    if (ft->npend == 0) r = finish(ft, 0);
  } else {
    for (int n = byte() % 4; n > 0 && ft->held; n--)
      act(ti);
    if (!ft->held) { /* it released itself */
      if (ft->npend == 0) r = finish(ft, 0);
    } else {
      switch (byte() % 8) {
        case 0:
          r = finish(ft, 0);
          break;
        case 1:
          r = finish(ft, UVA_ECANCELED);
          break;
        case 2:
          r = UVA_TASK_YIELD;
          break;
        default:
          r = UVA_TASK_PENDING;
          break; /* parked unless it waits */
      }
    }
  }
  F.running = prev;
  return r;
}

/* ---- one input ------------------------------------------------------------------ */

int LLVMFuzzerTestOneInput(const uint8_t *in, size_t size) {
  if (trace < 0) {
    trace = getenv("FUZZ_TRACE") != NULL;
    for (size_t k = 0; k < sizeof wsrc; k++)
      wsrc[k] = (uint8_t) k;
  }
  memset(&F, 0, sizeof F);
  for (int i = 0; i < MAX_OBJS; i++)
    F.o[i].peer = -1;
  F.in = in;
  F.len = size;
  F.running = -1;
  atomic_store(&gate, 0);
  if (uva_loop_new(&F.loop) != 0) abort();
  /* A small pool: jobs queue behind the gated ones, and can be dropped. */
  if (uva_loop_configure(F.loop, UVA_LOOP_POOL_SIZE, 2) != 0) abort();
  while (F.at < F.len)
    act(-1);

  /* Cleanup: cancel our tasks, close what is open, close the far ends
   * (queued writes then fail, so graceful closes complete), run the loop
   * until everything finished, then close it. */
  TR("cleanup\n");
  F.cleanup = 1;
  atomic_store(&gate, 1); /* running jobs end */
  for (int i = 0; i < F.ntasks; i++)
    if (F.t[i].held) uva_task_cancel(F.t[i].t);
  for (int i = 0; i < MAX_OBJS; i++) {
    struct obj *o = &F.o[i];
    if (o->kind == K_NONE) continue;
    if (o->peer >= 0) {
      close(o->peer);
      o->peer = -1;
    }
    if (!o->closed)
      owner_close(i, 1);
    else if (o->kind == K_STREAM && !o->close_done)
      REQUIRE(
          uva_stream_abort(o->p, on_stream_closed, (void *) (intptr_t) i) == 0,
          0);
  }
  int rc = uva_loop_run(F.loop, UVA_RUN_DEFAULT);
  REQUIRE(rc == 0, rc);
  for (int i = 0; i < F.ntasks; i++)
    if (F.t[i].held) {
      REQUIRE(F.t[i].done, i);
      F.t[i].held = 0;
      uva_task_release(F.t[i].t);
    }
  rc = uva_loop_run(F.loop, UVA_RUN_DEFAULT);
  REQUIRE(rc == 0, rc);
  for (int i = 0; i < F.ntasks; i++)
    REQUIRE(F.t[i].freed, i);
  for (int i = 0; i < MAX_OBJS; i++)
    REQUIRE(F.o[i].kind == K_NONE, i);
  rc = uva_loop_close(F.loop);
  REQUIRE(rc == 0, rc);
  return 0;
}
