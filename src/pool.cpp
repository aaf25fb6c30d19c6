/* uvasync — the loop's thread pool and its jobs (uva_work_t).
 *
 * Each loop has its own pool: threads start when jobs need them, up to the
 * pool size, and take jobs from one FIFO under a mutex and a condition
 * variable. A job that ended goes back to the loop thread on the loop's
 * completion list (Loop::xwork, under xmu), with one wake-up for any
 * number of completions: on Linux a write to the pool's eventfd, which is
 * in the loop's own epoll set (loop.cpp), so the loop's wait drains the
 * list itself; with libuv's poll phase, the loop's async handle. Posting
 * needs no memory, so a pool thread never fails to report.
 *
 * Threads start as the work needs them, not as jobs are queued: jobs
 * that end in microseconds are best served by the fewest threads that
 * keep up (more only contend for the CPUs), jobs that block by as many as
 * the size allows. A job goes to a thread at once when no thread is busy;
 * otherwise it waits for the busy ones, watched by one idle thread (the
 * watcher, started if none is idle): when no thread took a job for
 * STUCK_AFTER while jobs wait, the busy threads are taken to block, and
 * the watcher takes the job and calls up the next watcher. So short jobs
 * keep one or two threads busy, and blocking jobs bring in a thread every
 * STUCK_AFTER up to the size.
 *
 * Wake-ups cost more than the no-op job itself (futex calls, context
 * switches on a small machine), so each is made only when needed, as in
 * libuv's threadpool and a bit further: a submit signals the condition
 * variable only for a waiting thread that no earlier signal is already
 * waking (ThreadPool::waking); a thread takes jobs until the queue is
 * empty before it waits; it posts a completion without holding the
 * pool's mutex, and wakes the loop only when the completion list was
 * empty (a non-empty list has a wake-up on its way that the loop has not
 * drained yet).
 *
 * On the loop thread a job's completion is a call in the run queue (the
 * Call embedded in the job): the done callback runs first, then the
 * waiting tasks are woken, and the pool's reference on the job is
 * dropped. Waiting is the sync objects' "call again" (sync.cpp): a task
 * registers, is granted the end with every other waiter, and its repeated
 * call returns the job's status; a close wakes the waiters with
 * UVA_ECLOSED; a cancellation or uva_task_withdraw withdraws the node.
 */
#include "internal.h"
#include "fault.h"

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstdlib>
#include <new>

namespace uva {
namespace detail {

/* One pool thread; joined by the loop thread once it left. */
struct ThreadPool;
struct PoolThread {
  pthread_t tid;
  ThreadPool *pool;
  PoolThread *next; /* ThreadPool::all */
  bool left;        /* the thread is past its last use of the pool */
};

struct ThreadPool {
  Loop *loop;
  std::mutex mu;
  std::condition_variable cv;
  Work *head = nullptr; /* jobs not started, oldest first */
  Work *tail = nullptr;
  size_t queued = 0;
  size_t threads = 0;    /* started and not left */
  size_t idle = 0;       /* threads waiting for a job */
  size_t waking = 0;     /* of those, signalled and not yet awake */
  size_t starting = 0;   /* started, not yet looking for a job */
  size_t running = 0;    /* took a job, not back under the mutex yet */
  bool watching = false; /* an idle thread watches the queue (timed wait) */
  /* When a thread last took a job: jobs waiting STUCK_AFTER past it mean
   * the busy threads block. */
  std::chrono::steady_clock::time_point last_take{};
  /* Threads whose job ended, on their way back to the queue: they posted
   * the completion (without the mutex), so the loop may submit the next
   * job before they wait again, and must not start a thread for it. */
  std::atomic<size_t> returning{0};
  /* Threads that left and are not joined yet; read by submits without
   * the mutex (most of them find 0), written under it. */
  std::atomic<size_t> gone{0};
  size_t max = 1;
  bool stopping = false; /* uva_loop_close: every thread leaves */
  PoolThread *all = nullptr;
};

static constexpr uint64_t POOL_SIZE_MAX = 1024;

/* How long jobs wait with every busy thread taking none before one more
 * thread serves them: far above a short job's time (a few microseconds),
 * far below a blocking job's (a lookup, a disk read). */
static constexpr std::chrono::microseconds STUCK_AFTER{150};

uint64_t pool_size(Loop *l) {
  if (l->pool_size != 0) return l->pool_size;
  /* asyncio's default executor: min(32, CPUs + 4). */
  return std::min<uint64_t>(32, uint64_t(uv_available_parallelism()) + 4);
}

/* ---- pool threads ------------------------------------------------------- */

/* Hand an ended job to the loop thread. */
static void post_done(Loop *l, Work *w) {
  {
    std::lock_guard<std::mutex> lock(l->xmu);
    w->jnext = nullptr;
    if (l->xwork_tail != nullptr) {
      /* The list's first job woke the loop, and the loop has not taken
       * the list yet (work_drain empties it under xmu): it takes this one
       * with it. The list's emptiness is the "wake-up pending" flag. */
      l->xwork_tail->jnext = w;
      l->xwork_tail = w;
      return;
    }
    l->xwork_head = l->xwork_tail = w;
  }
  /* Outside the mutex, so the loop's drain does not wait for the syscall.
   * The loop cannot close meanwhile: uva_loop_close joins every pool
   * thread before it closes what this wakes. */
  loop_wake_for_work(l);
}

/* Whether to wake one waiting thread for a queued job (mu held): not if
 * every waiting thread is already being woken. The caller signals with mu
 * still held: signalling after unlocking made 64 no-op jobs in flight
 * 3.4x slower (bench/tools/ab_os.py, 2 cores; not looked into further). */
static bool take_wake(ThreadPool *p) {
  if (p->idle <= p->waking) return false;
  p->waking++;
  return true;
}

static void unlink_job(ThreadPool *p, Work *w) {
  if (w->jprev != nullptr)
    w->jprev->jnext = w->jnext;
  else
    p->head = w->jnext;
  if (w->jnext != nullptr)
    w->jnext->jprev = w->jprev;
  else
    p->tail = w->jprev;
  w->jnext = w->jprev = nullptr;
  p->queued--;
}

static bool start_thread(ThreadPool *p);

/* Jobs wait and every thread is busy (mu held): make sure one thread
 * looks at the queue, an idle one woken or a new one, unless one already
 * watches or is on its way (woken, starting, or back from a job). */
static void call_watcher(ThreadPool *p) {
  if (p->watching || p->waking > 0 || p->starting > 0 ||
      p->returning.load(std::memory_order_relaxed) > 0)
    return;
  if (p->idle > 0) {
    p->waking++;
    p->cv.notify_one();
  } else if (p->threads < p->max) {
    start_thread(p); /* none could start: the busy threads serve the queue */
  }
}

/* Wait for a signal, or until `due` if it is set (mu held). */
static void idle_wait(ThreadPool *p, std::unique_lock<std::mutex> &lock,
                      const std::chrono::steady_clock::time_point *due) {
  p->idle++;
  if (due != nullptr)
    p->cv.wait_until(lock, *due);
  else
    p->cv.wait(lock);
  p->idle--;
  /* Woken by a signal, or spuriously, or the watcher's time: counting each
   * as a signal at worst lets a later submit signal once more than needed,
   * where a signal lost in a timeout would leave `waking` above the
   * threads on their way and stop every later call. */
  if (p->waking > 0) p->waking--;
}

static void *thread_main(void *arg) {
  PoolThread *self = static_cast<PoolThread *>(arg);
  ThreadPool *p = self->pool;
  std::unique_lock<std::mutex> lock(p->mu);
  p->starting--;
  /* Back from a job that took STUCK_AFTER or more: it takes the next job
   * at once (it blocks; threads for such jobs are throughput). Back from
   * a short one, it takes the next only if no other thread serves the
   * queue, else it goes idle: short jobs shrink back to the threads that
   * keep up. */
  bool from_job = false;
  for (;;) {
    /* A lowered size: threads above it leave between jobs. */
    if (p->stopping || p->threads > p->max) break;
    Work *w = p->head;
    if (w == nullptr) {
      from_job = false;
      idle_wait(p, lock, nullptr);
      continue;
    }
    auto now = std::chrono::steady_clock::now();
    if (!from_job && p->running > 0 && now < p->last_take + STUCK_AFTER) {
      /* An idle thread: the busy threads may yet take the job. Watch, or
       * leave that to the watcher. */
      if (p->watching) {
        idle_wait(p, lock, nullptr);
      } else {
        p->watching = true;
        auto due = p->last_take + STUCK_AFTER;
        idle_wait(p, lock, &due);
        p->watching = false;
      }
      continue;
    }
    unlink_job(p, w);
    w->place = JobPlace::RUNNING; /* stays so: the job ends off the queue */
    p->running++;
    p->last_take = now;
    if (p->head != nullptr) call_watcher(p);
    lock.unlock();
    w->run(w);
    p->returning.fetch_add(1, std::memory_order_relaxed);
    post_done(p->loop, w); /* w may be gone now */
    lock.lock();
    p->returning.fetch_sub(1, std::memory_order_relaxed);
    p->running--;
    from_job = std::chrono::steady_clock::now() - now >= STUCK_AFTER;
  }
  p->threads--;
  p->gone.fetch_add(1, std::memory_order_relaxed);
  self->left = true;
  return nullptr;
}

/* Start one more thread (mu held): false if none could be started. The
 * thread starts with every signal blocked, so signals go to the program's
 * own threads (and a binding's handlers run where it expects them). */
static bool start_thread(ThreadPool *p) {
  if (fault_hit(FAULT_THREAD)) return false;
  PoolThread *t = static_cast<PoolThread *>(fault_malloc(sizeof(PoolThread)));
  if (t == nullptr) return false;
  t->left = false;
  t->pool = p;
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  int rc = pthread_create(&t->tid, nullptr, thread_main, t);
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  if (rc != 0) {
    std::free(t);
    return false;
  }
  t->next = p->all; /* linked by the creator: pool_stop joins every thread */
  p->all = t;
  p->threads++;
  p->starting++;
  return true;
}

/* A job was queued or the size raised (mu held): a thread for the queue
 * if none is busy (an idle one, else a new one), else the watcher. */
static void serve_queue(ThreadPool *p) {
  if (p->head == nullptr) return;
  if (p->running > 0) {
    call_watcher(p);
  } else if (p->idle > 0 || p->starting > 0) {
    if (p->starting == 0 && take_wake(p)) p->cv.notify_one();
  } else if (p->threads < p->max) {
    start_thread(p);
  }
}

/* Join the threads that left (loop thread). */
static void reap(ThreadPool *p) {
  PoolThread *gone = nullptr;
  /* The common case: a submit neither walks nor locks. A thread leaving
   * meanwhile is joined by a later call. */
  if (p->gone.load(std::memory_order_relaxed) == 0) return;
  {
    std::lock_guard<std::mutex> lock(p->mu);
    p->gone.store(0, std::memory_order_relaxed);
    PoolThread **pp = &p->all;
    while (*pp != nullptr) {
      PoolThread *t = *pp;
      if (t->left) {
        *pp = t->next;
        t->next = gone;
        gone = t;
      } else {
        pp = &t->next;
      }
    }
  }
  while (gone != nullptr) {
    PoolThread *next = gone->next;
    pthread_join(gone->tid, nullptr);
    std::free(gone);
    gone = next;
  }
}

int pool_set_size(Loop *l, uint64_t size) {
  if (size < 1 || size > POOL_SIZE_MAX) return UVA_EINVAL;
  l->pool_size = uint32_t(size);
  ThreadPool *p = l->tpool;
  if (p == nullptr) return 0;
  {
    std::lock_guard<std::mutex> lock(p->mu);
    p->max = size;
    serve_queue(p);     /* a raised size serves the queue */
    p->cv.notify_all(); /* threads above a lowered size leave */
  }
  reap(p);
  return 0;
}

void pool_stop(Loop *l) {
  ThreadPool *p = l->tpool;
  if (p == nullptr) return;
  {
    std::lock_guard<std::mutex> lock(p->mu);
    p->stopping = true;
    p->cv.notify_all();
  }
  /* Every thread leaves now: no job is queued or running (the loop has no
   * handle left). */
  PoolThread *t = p->all;
  while (t != nullptr) {
    PoolThread *next = t->next;
    pthread_join(t->tid, nullptr);
    std::free(t);
    t = next;
  }
  delete p;
  l->tpool = nullptr;
}

/* ---- jobs --------------------------------------------------------------- */

static void run_user_job(Work *w) { w->fn(w->data); }

static void complete(Loop *l, Call *call);

int work_init(Work *w, Loop *l) {
  sync_init(w, l, MAGIC_WORK);
  w->jnext = w->jprev = nullptr;
  w->run = nullptr;
  w->cleanup = nullptr;
  w->on_end = nullptr;
  w->fn = nullptr;
  w->done = nullptr;
  w->place = JobPlace::OFF;
  w->ended = false;
  w->delivered = false;
  w->is_fs = false;
  w->orphaned = false;
  w->held = false;
  new (&w->stop) std::atomic<bool>(false);
  w->completion.qnext = nullptr;
  w->completion.magic = MAGIC_CALL;
  w->completion.flags = 0;
  w->completion.state = 0;
  w->completion.spare_ = 0;
  w->completion.pooled = 0;
  w->completion.fn = complete;
  w->completion.a = w;
  w->completion.b = w->completion.c = nullptr;
  return 0;
}

/* Memory of a job that never ran or was refused: no dtor (the caller
 * keeps its data when the submit fails). */
void work_free_failed(Work *w) {
  if (w->cleanup != nullptr) w->cleanup(w);
  w->magic = MAGIC_FREED;
  w->loop->handles--;
  std::free(w);
}

void work_destroy(Work *w) {
  Loop *l = w->loop;
  if (w->dtor != nullptr) w->dtor(w->data);
  if (w->cleanup != nullptr) w->cleanup(w);
  w->magic = MAGIC_FREED;
  l->handles--;
  std::free(w);
}

/* Into the pool's FIFO, starting a thread if it needs one. */
static int pool_push(Work *w) {
  Loop *l = w->loop;
  ThreadPool *p = l->tpool;
  if (p == nullptr) {
    p = fault_hit(FAULT_ALLOC) ? nullptr : new (std::nothrow) ThreadPool();
    if (p == nullptr) return UVA_ENOMEM;
    p->loop = l;
    p->max = pool_size(l);
    l->tpool = p;
  }
  reap(p);
  std::lock_guard<std::mutex> lock(p->mu);
  w->jprev = p->tail;
  w->jnext = nullptr;
  if (p->tail != nullptr)
    p->tail->jnext = w;
  else
    p->head = w;
  p->tail = w;
  p->queued++;
  w->place = JobPlace::QUEUED;
  serve_queue(p);
  if (p->threads == 0) { /* no thread could start, and none runs */
    unlink_job(p, w);
    w->place = JobPlace::OFF;
    return UVA_EAGAIN;
  }
  return 0;
}

/* Queued (or held): the pool's reference, and the loop stays alive. */
static void count_queued(Work *w) {
  w->refs.fetch_add(1, std::memory_order_relaxed);
  alive_inc(w->loop);
}

int work_queue(Work *w) {
  int rc = pool_push(w);
  if (rc == 0) count_queued(w);
  return rc;
}

void work_hold(Work *w) {
  count_queued(w);
  w->held = true;
}

static void end_job(Loop *l, Work *w);

void work_start_held(Work *w) {
  if (!w->held) return;
  w->held = false;
  int rc = pool_push(w);
  if (rc != 0) {
    w->result = rc;
    end_job(w->loop, w);
  }
}

void work_end_held(Work *w, int status) {
  if (!w->held) return;
  w->held = false;
  w->result = status;
  end_job(w->loop, w);
}

int work_submit(Work **out, Loop *l, uva_work_fn fn, void *data,
                uva_free_cb dtor, uva_work_done_cb done) {
  Work *w = static_cast<Work *>(fault_malloc(sizeof(Work)));
  if (w == nullptr) return UVA_ENOMEM;
  work_init(w, l);
  w->run = run_user_job;
  w->fn = fn;
  w->done = done;
  w->data = data;
  w->dtor = dtor; /* not called if the submit fails: data stays the caller's */
  int rc = work_queue(w);
  if (rc != 0) {
    work_free_failed(w);
    return rc;
  }
  *out = w;
  return 0;
}

/* The job ended (status in w->result): its completion goes in the run
 * queue, counted in `alive` as the job was. */
static void end_job(Loop *l, Work *w) {
  w->ended = true;
  if (w->on_end != nullptr) w->on_end(w);
  loop_push(l, &w->completion);
}

/* The completions posted by pool threads (loop thread). */
static Work *take_posted(Loop *l) {
  std::lock_guard<std::mutex> lock(l->xmu);
  Work *w = l->xwork_head;
  l->xwork_head = l->xwork_tail = nullptr;
  return w;
}

/* Loop thread, from the async callback and uva_loop_close: into the run
 * queue. */
void work_drain(Loop *l) {
  Work *w = take_posted(l);
  while (w != nullptr) {
    Work *next = w->jnext;
    w->jnext = nullptr;
    end_job(l, w);
    w = next;
  }
}

/* Loop thread, after the wait saw the pool's eventfd with nothing in the
 * run queue: each completion runs now, before the pass, as libuv runs its
 * after-work callbacks in its poll phase, so the tasks it wakes run in the
 * pass that follows, not one pass later (a pass more per round trip, with
 * its epoll_wait). */
void work_complete_posted(Loop *l) {
  Work *w = take_posted(l);
  while (w != nullptr) {
    Work *next = w->jnext;
    w->jnext = nullptr;
    w->ended = true;
    if (w->on_end != nullptr) w->on_end(w);
    alive_dec(l); /* as run_call, for the queued job's count */
    complete(l, &w->completion);
    w = next;
  }
}

/* In the run queue: done first (unless closed), then every waiter is
 * granted the end, then the pool's reference goes (the memory with it if
 * the owner closed the job and nobody waits). */
static void complete(Loop *, Call *call) {
  Work *w = static_cast<Work *>(call->a);
  w->delivered = true;
  if (w->done != nullptr && !(w->flags & F_CLOSING))
    w->done(reinterpret_cast<uva_work_t *>(w), w->result, w->data);
  while (w->waiters != nullptr) {
    Wait *n = w->waiters;
    wlist_remove(&w->waiters, n);
    n->state = WaitState::GRANTED;
    task_wake_local(n->task);
  }
  sync_unref(w);
}

int work_wait(Work *w, Task *t) {
  if (Wait *n = sync_find(t, w)) {
    int rc = UVA_EAGAIN;
    if ((w->flags & F_CLOSING) || n->state == WaitState::CLOSED)
      rc = UVA_ECLOSED;
    else if (n->state == WaitState::GRANTED)
      rc = w->result;
    if (rc != UVA_EAGAIN) sync_drop(n); /* last: it may free the job */
    return rc;
  }
  if (w->flags & F_CLOSING) return UVA_ECLOSED;
  if (w->delivered) return w->result;
  return sync_enlist(w, t, WaitKind::WORK);
}

int work_wait_no_task(Work *w) {
  if (w->flags & F_CLOSING) return UVA_ECLOSED;
  return w->delivered ? w->result : UVA_EINVAL;
}

/* Take the job out of the pool's FIFO if it has not started. */
static bool drop_queued(Work *w) {
  if (w->held) { /* not in the pool yet */
    w->held = false;
    return true;
  }
  ThreadPool *p = w->loop->tpool;
  if (p == nullptr) return false;
  std::lock_guard<std::mutex> lock(p->mu);
  if (w->place != JobPlace::QUEUED) return false;
  unlink_job(p, w);
  w->place = JobPlace::OFF;
  return true;
}

int work_cancel(Work *w) {
  if (w->ended || !drop_queued(w)) return UVA_EBUSY;
  w->result = UVA_ECANCELED;
  end_job(w->loop, w);
  return 0;
}

void work_close(Work *w) {
  if (!w->ended) {
    w->orphaned = true;
    if (drop_queued(w)) {
      w->result = UVA_ECANCELED;
      end_job(w->loop, w);
    } else {
      w->stop.store(true, std::memory_order_relaxed);
    }
  }
  sync_close(w);
}

}  // namespace detail
}  // namespace uva
