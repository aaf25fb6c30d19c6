/* libFuzzer target: random sequences of public calls on one loop,
 * misuse included.
 *
 * Every input byte picks a call (task, timer, event, lock, semaphore,
 * queue, thread-safe flag, stream over a socketpair, loop) and the next
 * bytes its arguments: a live handle of the right kind, NULL, a handle of
 * another kind, a handle whose close is pending, absurd sizes and delays.
 * Task steps run more of the same calls (so calls that need the running
 * task are reached) and end in every way a step can. The rules checked are
 * the header's: nothing crashes or trips a sanitizer; a NULL handle gives
 * UVA_EINVAL (NULL is a no-op for close and release); a handle of the wrong
 * kind gives UVA_EHANDLEKIND; a timer or stream being closed gives
 * UVA_ECLOSED; no call returns a positive value; at the end, after
 * cancelling and closing everything, uva_loop_close returns 0 and nothing
 * leaks (LeakSanitizer).
 *
 * What the header leaves undefined is not done: a pointer is never used
 * after its memory may have been freed (a closed synchronisation object,
 * a released task, a timer or stream after the pass that completed its
 * close), and buffers are always as large as the length passed. A task
 * that still waits on an object when it closes, and repeats its call after
 * the close, is fuzz_waits.c's subject. */
#include <uvasync.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

enum kind {
  K_NONE,
  K_LOOP,
  K_TASK,
  K_TIMER,
  K_EVENT,
  K_LOCK,
  K_SEM,
  K_QUEUE,
  K_FLAG,
  K_STREAM,
  K_KINDS
};

#define SLOTS 24
#define MAX_TASKS 64

struct slot {
  int kind;
  void *p;
  int closing; /* timer or stream: close requested, memory still there */
};

static struct {
  const uint8_t *in;
  size_t len, at;
  uva_loop_t *loop;
  struct slot s[SLOTS];
  uva_task_t *all[MAX_TASKS]; /* every task, with a reference of our own */
  int ntasks;
  int fds[SLOTS]; /* far ends of the streams' socketpairs */
  int nfds;
  int cleanup; /* steps finish at once */
  int depth;   /* steps run calls; a step's calls do not nest further */
} F;

static void fail(const char *what, int line, int rc) {
  fprintf(stderr, "API rule broken at line %d: %s (rc %d %s)\n", line, what, rc,
          uva_err_name(rc));
  abort();
}

static unsigned byte(void) { return F.at < F.len ? F.in[F.at++] : 0; }

/* ---- argument choice ------------------------------------------------------ */

/* ARG_ANY: NULL as a task inside a step, which a core may take to name the
 * running task (EINVAL outside a step): no particular code expected. */
enum { ARG_OK, ARG_NULL, ARG_WRONG, ARG_CLOSING, ARG_ANY };

struct arg {
  void *p;
  int how;
  int slot; /* -1 unless a table slot */
};

/* Inside a step, a handle whose close is pending may be freed at any
 * moment (its close completes during this run): do not touch it. */
static int usable(int j) {
  return F.s[j].kind != K_NONE && !(F.s[j].closing && F.depth > 0);
}

static int find(int kind, unsigned b) {
  for (int i = 0; i < SLOTS; i++) {
    int j = (int) ((b + (unsigned) i) % SLOTS);
    if (F.s[j].kind == kind && usable(j)) return j;
  }
  return -1;
}

/* A handle argument for a call taking `kind`. */
static struct arg pick(int kind) {
  unsigned b = byte();
  struct arg a = {NULL, ARG_NULL, -1};
  if (kind == K_TASK && F.depth > 0) a.how = ARG_ANY;
  if ((b & 7) == 0) return a; /* NULL */
  if ((b & 7) == 1) {         /* another kind */
    if ((b >> 3) % 4 == 0 && kind != K_LOOP) {
      a.p = F.loop;
      a.how = ARG_WRONG;
      return a;
    }
    for (int i = 0; i < SLOTS; i++) {
      int j = (int) ((b / 8 + (unsigned) i) % SLOTS);
      if (usable(j) && F.s[j].kind != kind) {
        a.p = F.s[j].p;
        a.how = ARG_WRONG;
        return a;
      }
    }
  }
  if (kind == K_LOOP) {
    a.p = F.loop;
    a.how = ARG_OK;
    return a;
  }
  int j = find(kind, b >> 3);
  if (j < 0) return a; /* none alive: NULL */
  a.p = F.s[j].p;
  a.slot = j;
  a.how = F.s[j].closing ? ARG_CLOSING : ARG_OK;
  return a;
}

/* The task of a sync wait (event, lock, semaphore, queue, flag): NULL is
 * "no task" there, which completes a wait that need not wait and is EINVAL
 * otherwise, so no particular code is expected for it. */
static struct arg pick_waiter(void) {
  struct arg a = pick(K_TASK);
  if (a.how == ARG_NULL) a.how = ARG_ANY;
  return a;
}

static int add(int kind, void *p) {
  for (int i = 0; i < SLOTS; i++)
    if (F.s[i].kind == K_NONE) {
      F.s[i].kind = kind;
      F.s[i].p = p;
      F.s[i].closing = 0;
      return i;
    }
  return -1;
}

static void forget(int slot) {
  if (slot >= 0) memset(&F.s[slot], 0, sizeof F.s[slot]);
}

/* Check rc against the rules for one handle argument. */
static int trace = -1; /* FUZZ_TRACE=1: print each call (reproducing) */

static void expect(int line, int rc, struct arg a, int closing_rc) {
  if (trace > 0)
    fprintf(stderr, "    line %d: rc %s, arg %d\n", line, uva_err_name(rc),
            a.how);
  if (rc > 0) fail("positive result", line, rc);
  if (a.how == ARG_NULL && rc != UVA_EINVAL) fail("NULL accepted", line, rc);
  if (a.how == ARG_WRONG && rc != UVA_EHANDLEKIND)
    fail("wrong kind accepted", line, rc);
  if (a.how == ARG_CLOSING && closing_rc != 0 && rc != closing_rc)
    fail("closing handle accepted", line, rc);
}

/* Two handle arguments: specific codes only when one of them is bad. */
static void expect2(int line, int rc, struct arg a, struct arg b) {
  if (rc > 0) fail("positive result", line, rc);
  if (trace > 0)
    fprintf(stderr, "    line %d: rc %s, args %d %d\n", line, uva_err_name(rc),
            a.how, b.how);
  if (a.how == ARG_ANY || b.how == ARG_ANY) return;
  if (a.how == ARG_OK)
    expect(line, rc, b, 0);
  else if (b.how == ARG_OK)
    expect(line, rc, a, 0);
  else if (rc == 0)
    fail("bad handles accepted", line, rc);
}

/* Closing: NULL is accepted. */
static void expect_close(int line, int rc, struct arg a) {
  if (a.how == ARG_NULL) {
    if (rc != 0) fail("close(NULL)", line, rc);
  } else if (a.how == ARG_WRONG) {
    if (rc != UVA_EHANDLEKIND) fail("close of wrong kind", line, rc);
  } else if (rc != 0) {
    fail("close failed", line, rc);
  }
}

static int64_t delay(void) {
  static const int64_t d[8] = {
      0,        1, 3, 100000, -1, (int64_t) 1 << 40, ((int64_t) 1 << 40) + 1,
      INT64_MIN};
  return d[byte() & 7];
}

static size_t size_arg(void) {
  static const size_t z[8] = {0, 1, 2, 7, 100, 65536, SIZE_MAX / 2, SIZE_MAX};
  return z[byte() & 7];
}

/* ---- callbacks -------------------------------------------------------------- */

static int step(uva_task_t *t, int status, void *d);
static void noop_timer(uva_timer_t *t, void *d) {
  (void) t;
  (void) d;
}
static void noop_call(void *d) { (void) d; }
static void noop_done(uva_task_t *t, int r, void *d) {
  (void) t;
  (void) r;
  (void) d;
}

static void spawn_task(void) {
  uva_task_t *t;
  if (F.ntasks >= MAX_TASKS) return;
  struct arg l = pick(K_LOOP);
  int rc = uva_task_spawn(&t, l.p, step, NULL, NULL);
  expect(__LINE__, rc, l, 0);
  if (rc != 0) return;
  if (uva_task_retain(t) != 0) abort();
  F.all[F.ntasks++] = t;
  if (add(K_TASK, t) < 0) uva_task_release(t); /* table full: drop ours */
}

/* ---- one call ------------------------------------------------------------ */

static void run_pass(uva_run_mode mode);

static void one_call(uva_task_t *self) {
  unsigned op = byte();
  if (trace < 0) trace = getenv("FUZZ_TRACE") != NULL;
  if (trace) fprintf(stderr, "%scall %u\n", self ? "  step: " : "", op % 40);
  int rc, i = 0;
  size_t z = 0;
  int64_t v = 0;
  void *p = NULL;
  struct arg a, b;
  switch (op % 40) {
    /* loop */
    case 0:
      a = pick(K_LOOP);
      if (self == NULL && a.how == ARG_OK) {
        run_pass(UVA_RUN_NOWAIT); /* forgets handles whose close completed */
        break;
      }
      rc = uva_loop_run(a.p, UVA_RUN_NOWAIT);
      if (self != NULL && a.how == ARG_OK && rc != UVA_ERUNNING)
        fail("loop_run inside a step", __LINE__, rc);
      expect(__LINE__, rc, a, 0);
      break;
    case 1:
      a = pick(K_LOOP);
      expect(__LINE__, uva_loop_call_soon(a.p, noop_call, NULL), a, 0);
      break;
    case 2:
      a = pick(K_LOOP);
      expect(__LINE__, uva_loop_call_soon_threadsafe(a.p, noop_call, NULL), a,
             0);
      break;
    case 3:
      a = pick(K_LOOP);
      expect(__LINE__, uva_loop_alive(&i, a.p), a, 0);
      break;
    case 4:
      if (self != NULL) { /* closing a running loop */
        a = pick(K_LOOP);
        rc = uva_loop_close(a.p);
        if (a.how == ARG_OK && rc == 0)
          fail("loop_close while running", __LINE__, rc);
        if (a.how == ARG_WRONG && rc != UVA_EHANDLEKIND)
          fail("loop_close kind", __LINE__, rc);
      }
      break;
    /* tasks */
    case 5:
    case 6:
      spawn_task();
      break;
    case 7:
      a = pick(K_TASK);
      expect(__LINE__, uva_task_cancel(a.p), a, 0);
      break;
    case 8:
      a = pick(K_TASK);
      expect(__LINE__, uva_task_wake(a.p), a, 0);
      break;
    case 9:
      a = pick(K_TASK);
      rc = uva_task_release(a.p);
      if (a.how == ARG_NULL    ? rc != 0
          : a.how == ARG_WRONG ? rc != UVA_EHANDLEKIND
                               : rc != 0)
        fail("release", __LINE__, rc);
      forget(a.slot);
      break;
    case 10:
      a = pick(K_TASK);
      expect(__LINE__, uva_task_add_done_cb(a.p, noop_done, NULL), a, 0);
      break;
    case 11:
      a = pick(K_TASK);
      rc = uva_task_remove_done_cb(a.p, noop_done, NULL);
      if (rc == UVA_ENOENT && a.how == ARG_OK) rc = 0;
      expect(__LINE__, rc, a, 0);
      break;
    case 12:
      a = pick(K_TASK);
      rc = uva_task_result(&i, a.p);
      if (rc == UVA_EAGAIN && a.how == ARG_OK) rc = 0;
      expect(__LINE__, rc, a, 0);
      break;
    case 13:
      a = pick(K_TASK);
      expect(__LINE__, (byte() & 1) ? uva_task_unref(a.p) : uva_task_ref(a.p),
             a, 0);
      break;
    case 14: /* sleep: only the running task may; absurd delays */
      a = pick(K_TASK);
      v = delay();
      rc = uva_task_sleep(a.p, v);
      if (a.how == ARG_OK && (v < 0 || v > ((int64_t) 1 << 40)) &&
          rc != UVA_EINVAL)
        fail("sleep with a bad delay", __LINE__, rc);
      if (a.how == ARG_OK && a.p != self && rc != UVA_EINVAL)
        fail("sleep of another task", __LINE__, rc);
      expect(__LINE__, rc, a, 0);
      break;
    case 15:
      a = pick(K_TASK);
      rc = uva_task_yield(a.p);
      if (a.how == ARG_OK && a.p != self && rc != UVA_EINVAL)
        fail("yield of another task", __LINE__, rc);
      expect(__LINE__, rc, a, 0);
      break;
    case 16:
      a = pick(K_TASK);
      b = pick(K_TASK);
      rc = uva_task_join(a.p, b.p);
      if (a.how == ARG_OK && a.p != self && b.how == ARG_OK && rc != UVA_EINVAL)
        fail("join from another task", __LINE__, rc);
      expect2(__LINE__, rc, a, b);
      break;
    /* timers */
    case 17: {
      uva_timer_t *tm;
      a = pick(K_LOOP);
      rc = uva_timer_new(&tm, a.p, noop_timer, NULL, NULL);
      expect(__LINE__, rc, a, 0);
      if (rc == 0 && add(K_TIMER, tm) < 0) uva_timer_close(tm, NULL);
      break;
    }
    case 18: {
      a = pick(K_TIMER);
      int64_t t0 = delay(), t1 = delay();
      rc = uva_timer_start(a.p, t0, t1);
      if (a.how == ARG_OK &&
          (t0 < 0 || t1 < 0 || t0 > ((int64_t) 1 << 40) ||
           t1 > ((int64_t) 1 << 40)) &&
          rc != UVA_EINVAL)
        fail("timer_start with a bad delay", __LINE__, rc);
      expect(__LINE__, rc, a, UVA_ECLOSED);
      break;
    }
    case 19:
      a = pick(K_TIMER);
      expect(__LINE__, uva_timer_stop(a.p), a, UVA_ECLOSED);
      break;
    case 20:
      a = pick(K_TIMER);
      expect(__LINE__, uva_timer_active(&i, a.p), a, UVA_ECLOSED);
      break;
    case 21:
      a = pick(K_TIMER);
      expect_close(__LINE__, uva_timer_close(a.p, NULL), a);
      if (a.slot >= 0) F.s[a.slot].closing = 1;
      break;
    /* synchronisation objects */
    case 22: {
      static const int kinds[5] = {K_EVENT, K_LOCK, K_SEM, K_QUEUE, K_FLAG};
      int k = kinds[byte() % 5];
      void *obj = NULL;
      a = pick(K_LOOP);
      if (k == K_EVENT)
        rc = uva_event_new((uva_event_t **) &obj, a.p);
      else if (k == K_LOCK)
        rc = uva_lock_new((uva_lock_t **) &obj, a.p);
      else if (k == K_SEM) {
        int64_t value = delay(), bound = delay();
        rc = uva_sem_new((uva_sem_t **) &obj, a.p, value, bound);
        if ((value < 0 || bound < 0 || (bound > 0 && value > bound))) {
          if (a.how == ARG_OK ? rc != UVA_EINVAL : rc == 0)
            fail("sem_new with bad values", __LINE__, rc);
          a.how = ARG_OK; /* two bad arguments: either code will do */
        }
      } else if (k == K_QUEUE)
        rc = uva_queue_new((uva_queue_t **) &obj, a.p, byte() % 4, NULL);
      else
        rc = uva_flag_new((uva_flag_t **) &obj, a.p);
      expect(__LINE__, rc, a, 0);
      if (rc == 0 && add(k, obj) < 0) { /* table full */
        if (k == K_EVENT)
          uva_event_close(obj);
        else if (k == K_LOCK)
          uva_lock_close(obj);
        else if (k == K_SEM)
          uva_sem_close(obj);
        else if (k == K_QUEUE)
          uva_queue_close(obj);
        else
          uva_flag_close(obj);
      }
      break;
    }
    case 23:
      a = pick(K_EVENT);
      expect(__LINE__, (byte() & 1) ? uva_event_set(a.p) : uva_event_clear(a.p),
             a, 0);
      break;
    case 24:
      a = pick(K_EVENT);
      b = pick_waiter();
      rc = uva_event_wait(a.p, b.p);
      if (rc == UVA_EAGAIN) rc = 0;
      expect2(__LINE__, rc, a, b);
      break;
    case 25:
      a = pick(K_LOCK);
      b = pick_waiter();
      rc = uva_lock_acquire(a.p, b.p);
      if (rc == UVA_EAGAIN) rc = 0;
      expect2(__LINE__, rc, a, b);
      break;
    case 26:
      a = pick(K_LOCK);
      rc = (byte() & 1) ? uva_lock_release(a.p) : uva_lock_try_acquire(a.p);
      if (a.how == ARG_OK && (rc == UVA_EINVAL || rc == UVA_EBUSY)) rc = 0;
      expect(__LINE__, rc, a, 0);
      break;
    case 27:
      a = pick(K_SEM);
      b = pick_waiter();
      rc = uva_sem_acquire(a.p, b.p);
      if (rc == UVA_EAGAIN) rc = 0;
      expect2(__LINE__, rc, a, b);
      break;
    case 28:
      a = pick(K_SEM);
      rc = (byte() & 1) ? uva_sem_release(a.p) : uva_sem_value(&v, a.p);
      if (a.how == ARG_OK && rc == UVA_EOVERFLOW) rc = 0;
      expect(__LINE__, rc, a, 0);
      break;
    case 29:
      a = pick(K_QUEUE);
      b = pick_waiter();
      if (byte() & 1) {
        rc = uva_queue_put(a.p, b.p, (void *) (uintptr_t) 1);
      } else {
        rc = uva_queue_get(&p, a.p, b.p);
      }
      if (rc == UVA_EAGAIN) rc = 0;
      expect2(__LINE__, rc, a, b);
      break;
    case 30:
      a = pick(K_QUEUE);
      if (byte() & 1)
        rc = uva_queue_put_nowait(a.p, (void *) (uintptr_t) 2);
      else
        rc = uva_queue_get_nowait(&p, a.p);
      if (a.how == ARG_OK && (rc == UVA_EQUEUEFULL || rc == UVA_EQUEUEEMPTY))
        rc = 0;
      expect(__LINE__, rc, a, 0);
      if (uva_queue_size(&z, a.p) != 0 && a.how == ARG_OK)
        fail("queue_size", __LINE__, 0);
      break;
    case 31:
      a = pick(K_FLAG);
      if (byte() & 1) {
        expect(__LINE__, uva_flag_set(a.p), a, 0);
      } else {
        b = pick_waiter();
        rc = uva_flag_wait(a.p, b.p);
        if (rc == UVA_EAGAIN || rc == UVA_EBUSY) rc = 0;
        expect2(__LINE__, rc, a, b);
      }
      break;
    case 32: { /* close any synchronisation object: its memory may go now */
      static const int kinds[5] = {K_EVENT, K_LOCK, K_SEM, K_QUEUE, K_FLAG};
      int k = kinds[byte() % 5];
      a = pick(k);
      if (k == K_EVENT)
        rc = uva_event_close(a.p);
      else if (k == K_LOCK)
        rc = uva_lock_close(a.p);
      else if (k == K_SEM)
        rc = uva_sem_close(a.p);
      else if (k == K_QUEUE)
        rc = uva_queue_close(a.p);
      else
        rc = uva_flag_close(a.p);
      expect_close(__LINE__, rc, a);
      forget(a.slot);
      break;
    }
    /* streams over a socketpair */
    case 33: {
      int fds[2];
      uva_stream_t *st;
      if (F.nfds >= SLOTS || socketpair(AF_UNIX, SOCK_STREAM, 0, fds) != 0)
        break;
      a = pick(K_LOOP);
      rc = uva_stream_open_fd(&st, a.p, fds[0]);
      expect(__LINE__, rc, a, 0);
      if (rc != 0) {
        close(fds[0]);
        close(fds[1]);
        break;
      }
      F.fds[F.nfds++] = fds[1];
      if (write(fds[1], "line one\nline two\npartial", 26) < 0) abort();
      if (add(K_STREAM, st) < 0) uva_stream_abort(st, NULL, NULL);
      break;
    }
    case 34: {
      char buf[128];
      a = pick(K_STREAM);
      b = pick(K_TASK);
      switch (byte() % 4) {
        case 0:
          rc = uva_stream_read(&z, a.p, b.p, buf, sizeof buf);
          break;
        case 1:
          rc = uva_stream_read_line(&z, a.p, b.p, buf, byte() % sizeof buf);
          break;
        case 2:
          rc = uva_stream_read_exactly(a.p, b.p, buf,
                                       byte() % 2 ? sizeof buf : size_arg());
          break;
        default:
          rc = uva_stream_read_to_eof(&z, a.p, b.p);
          break;
      }
      if (a.how == ARG_CLOSING && b.how == ARG_OK && rc != UVA_ECLOSED &&
          rc != UVA_EINVAL) /* EINVAL: the task has finished */
        fail("read on a closing stream", __LINE__, rc);
      if (rc == UVA_EAGAIN) rc = 0;
      expect2(__LINE__, rc,
              a.how == ARG_CLOSING ? (struct arg){a.p, ARG_OK, a.slot} : a, b);
      break;
    }
    case 35:
      a = pick(K_STREAM);
      rc = uva_stream_write(&z, a.p, "pong\n", 5);
      expect(__LINE__, rc, a, UVA_ECLOSED);
      break;
    case 36: {
      static const uva_stream_option opts[7] = {
          UVA_STREAM_HIGH_WATER, UVA_STREAM_LOW_WATER, UVA_STREAM_LINE_LIMIT,
          UVA_STREAM_DELIMITER,  UVA_STREAM_NODELAY,   (uva_stream_option) 0,
          (uva_stream_option) 99};
      a = pick(K_STREAM);
      uva_stream_option o = opts[byte() % 7];
      z = size_arg();
      rc = uva_stream_set(a.p, o, z);
      if (a.how == ARG_OK && (o == 0 || o == 99) && rc != UVA_EINVAL)
        fail("unknown option accepted", __LINE__, rc);
      if (a.how == ARG_OK && o == UVA_STREAM_DELIMITER && z > 255 &&
          rc != UVA_EINVAL)
        fail("delimiter > 255 accepted", __LINE__, rc);
      expect(__LINE__, rc, a, 0);
      break;
    }
    case 37: {
      const void *d = NULL;
      a = pick(K_STREAM);
      if (byte() & 1) {
        b = pick(K_TASK);
        rc = uva_stream_peek(&d, &z, a.p, b.p);
        if (rc == UVA_EAGAIN) rc = 0;
        expect2(__LINE__, rc,
                a.how == ARG_CLOSING ? (struct arg){a.p, ARG_OK, a.slot} : a,
                b);
      } else {
        size_t n = size_arg();
        rc = uva_stream_consume(a.p, n);
        if (a.how == ARG_OK && rc == UVA_EINVAL) rc = 0; /* n > buffered */
        expect(__LINE__, rc, a, 0);
      }
      break;
    }
    case 38:
      a = pick(K_STREAM);
      rc = uva_stream_buffered(&z, a.p);
      expect(__LINE__, rc, a, 0);
      break;
    case 39:
      a = pick(K_STREAM);
      rc = (byte() & 1) ? uva_stream_close(a.p, NULL, NULL)
                        : uva_stream_abort(a.p, NULL, NULL);
      expect_close(__LINE__, rc, a);
      if (a.slot >= 0) F.s[a.slot].closing = 1;
      break;
  }
}

/* A loop pass completes pending closes: forget those handles. */
static void run_pass(uva_run_mode mode) {
  int rc = uva_loop_run(F.loop, mode);
  if (rc != 0) fail("loop_run", __LINE__, rc);
  for (int i = 0; i < SLOTS; i++)
    if (F.s[i].closing) forget(i);
}

static int step(uva_task_t *t, int status, void *d) {
  (void) d;
  if (F.cleanup) return status == UVA_ECANCELED ? UVA_ECANCELED : 0;
  if (F.depth == 0) {
    F.depth++;
    for (int n = byte() % 4; n > 0; n--)
      one_call(t);
    F.depth--;
  }
  switch (byte() % 6) {
    case 0:
      return 0;
    case 1:
      return UVA_ECANCELED;
    case 2:
      return UVA_TASK_YIELD;
    case 3:
      return UVA_EINTERNAL;
    default:
      return UVA_TASK_PENDING; /* parked unless a wait was set up */
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *in, size_t size) {
  memset(&F, 0, sizeof F);
  F.in = in;
  F.len = size;
  if (uva_loop_new(&F.loop) != 0) abort();
  while (F.at < F.len) {
    if ((byte() & 7) == 0)
      run_pass(UVA_RUN_NOWAIT);
    else
      one_call(NULL);
  }
  /* Cleanup: cancel every task, close every handle, then close the loop. */
  F.cleanup = 1;
  for (int i = 0; i < F.ntasks; i++) {
    /* a daemon task would not make the loop run: reference it again */
    if (uva_task_ref(F.all[i]) != 0) abort();
    uva_task_cancel(F.all[i]);
  }
  for (int i = 0; i < SLOTS; i++) {
    struct slot *s = &F.s[i];
    if (s->closing) continue;
    switch (s->kind) {
      case K_TASK:
        uva_task_release(s->p);
        break;
      case K_TIMER:
        uva_timer_close(s->p, NULL);
        break;
      case K_EVENT:
        uva_event_close(s->p);
        break;
      case K_LOCK:
        uva_lock_close(s->p);
        break;
      case K_SEM:
        uva_sem_close(s->p);
        break;
      case K_QUEUE:
        uva_queue_close(s->p);
        break;
      case K_FLAG:
        uva_flag_close(s->p);
        break;
      case K_STREAM:
        uva_stream_abort(s->p, NULL, NULL);
        break;
    }
  }
  memset(F.s, 0, sizeof F.s);
  for (int i = 0; i < F.nfds; i++)
    close(F.fds[i]);
  if (uva_loop_run(F.loop, UVA_RUN_DEFAULT) != 0) abort();
  for (int i = 0; i < F.ntasks; i++)
    uva_task_release(F.all[i]);
  if (uva_loop_run(F.loop, UVA_RUN_DEFAULT) != 0) abort();
  int rc = uva_loop_close(F.loop);
  if (rc != 0) fail("loop_close after cleanup", __LINE__, rc);
  return 0;
}
