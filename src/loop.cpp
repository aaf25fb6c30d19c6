/* uvasync — the loop: run queue, passes, liveness and cross-thread queue.
 *
 * One libuv iteration is one pass. libuv runs, in order: its timers (our one
 * uv_timer_t moves due heap entries to the run queue), idle (active only to
 * keep the poll from blocking while work is queued), poll (I/O), and check,
 * where the pass runs: every node that was queued when the pass began, in
 * FIFO order. Nodes queued during the pass wait for the next one, so a task
 * that yields forever still lets I/O and timers in on every pass. On Linux
 * the loop waits in an epoll set of its own instead of libuv's poll phase
 * and runs libuv only when it has work (run_edge, below); a pass is the
 * same there.
 *
 * Liveness: the core's libuv handles are all unreferenced except the async
 * handle, which is referenced exactly while `alive` (referenced tasks, active
 * referenced timers, queued calls) is non-zero. So uv_run(DEFAULT) returns
 * when the core has no referenced work left.
 */
#include "internal.h"
#include "fault.h"

#include <csignal>
#include <cstdlib>
#include <new>
#include <thread>
#ifndef _WIN32
#include <pthread.h>
#endif
#ifdef __linux__
#include <cerrno>
#include <cstring>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>
#endif

namespace uva {
namespace detail {

#ifdef _WIN32
const void *thread_token() {
  static thread_local char token;
  return &token;
}
#endif

/* The loop running in this thread, if any: one running loop per thread. */
static thread_local Loop *tls_running = nullptr;

#ifndef _WIN32
/* fork() copies the forking thread's tls_running into the child, where no
 * loop runs: a child forked from a callback or a task (a process pool's
 * worker) starts with none, so that it can run a loop of its own. */
static void forget_running_loop_in_child() { tls_running = nullptr; }
#endif

Task *running_task() {
  return tls_running != nullptr ? tls_running->current : nullptr;
}

uint64_t now_ns() { return uv_hrtime(); }

/* ---- pool --------------------------------------------------------------- */

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define UVA_POOL_PASSTHROUGH 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define UVA_POOL_PASSTHROUGH 1
#endif
#endif

static constexpr size_t SLAB_BYTES = 64 * 1024;

Pool::Pool(size_t block, size_t align)
    : block_((block + align - 1) & ~(align - 1)), align_(align) {}

Pool::~Pool() {
  while (slabs_ != nullptr) {
    void *next = *static_cast<void **>(slabs_);
    std::free(slabs_);
    slabs_ = next;
  }
}

void *Pool::alloc() {
#ifdef UVA_POOL_PASSTHROUGH
  return fault_malloc(block_);
#else
  if (freelist_ == nullptr) {
    char *slab = static_cast<char *>(fault_malloc(SLAB_BYTES));
    if (slab == nullptr) return nullptr;
    *reinterpret_cast<void **>(slab) = slabs_;
    slabs_ = slab;
    /* Blocks start on `align` boundaries of the slab (malloc aligns it to
     * 16; the first 16 bytes link the slabs). They are pushed last first,
     * so tasks spawned one after another lie at ascending addresses and a
     * pass walks memory forwards, as hardware prefetchers like. */
    size_t first = align_ > 16 ? align_ : 16;
    uintptr_t mis = reinterpret_cast<uintptr_t>(slab + first) % align_;
    if (mis != 0) first += align_ - mis;
    size_t count = (SLAB_BYTES - first) / block_;
    for (size_t i = count; i-- > 0;) {
      char *block = slab + first + i * block_;
      *reinterpret_cast<void **>(block) = freelist_;
      freelist_ = block;
    }
  }
  void *p = freelist_;
  freelist_ = *static_cast<void **>(p);
  return p;
#endif
}

void Pool::free(void *p) {
#ifdef UVA_POOL_PASSTHROUGH
  std::free(p);
#else
  *static_cast<void **>(p) = freelist_;
  freelist_ = p;
#endif
}

/* ---- run queue ---------------------------------------------------------- */

void loop_push_first(Loop *l, QNode *n) {
  l->runq_head = l->runq_tail = n;
  /* Work is queued: the next poll must not block (run_edge looks at the
   * queue itself: an active idle handle would make libuv run each pass). */
  if (l->epfd < 0) uv_idle_start(&l->idle, [](uv_idle_t *) {});
}

void alive_inc(Loop *l) {
  if (l->alive++ == 0) uv_ref(reinterpret_cast<uv_handle_t *>(&l->async));
}

void alive_dec(Loop *l) {
  if (--l->alive == 0) uv_unref(reinterpret_cast<uv_handle_t *>(&l->async));
}

int loop_call_soon(Loop *l, void (*fn)(Loop *, Call *), void *a, void *b,
                   void *c) {
  Call *call = static_cast<Call *>(l->small_pool.alloc());
  if (call == nullptr) return UVA_ENOMEM;
  call->magic = MAGIC_CALL;
  call->pooled = 1;
  call->fn = fn;
  call->a = a;
  call->b = b;
  call->c = c;
  alive_inc(l);
  loop_push(l, call);
  return 0;
}

static void run_call(Loop *l, Call *call) {
  alive_dec(l);
  bool pooled = call->pooled; /* an embedded call may be freed by fn */
  call->fn(l, call);
  if (pooled) {
    call->magic = MAGIC_FREED;
    l->small_pool.free(call);
  }
}

/* ---- timer heap driver -------------------------------------------------- */

void fire_due(Loop *l) {
  if (l->heap.empty()) return;
  uint64_t now = now_ns();
  while (!l->heap.empty() && l->heap.top().deadline <= now) {
    Timed *h = l->heap.pop();
    if (h->magic == MAGIC_TASK)
      task_timer_due(l, static_cast<Task *>(h));
    else
      timer_due(l, static_cast<Timer *>(h));
  }
}

static void arm_timer(Loop *l);

static void on_uv_timer(uv_timer_t *handle) {
  Loop *l = static_cast<Loop *>(handle->data);
  l->armed = UINT64_MAX;
  fire_due(l);
  /* Re-arm now, not in the pass: the poll that follows must wake for the
   * next deadline (libuv's ms clock may fire us a little early). */
  arm_timer(l);
}

/* Point the single uv_timer_t at the earliest deadline. (With the loop's
 * own epoll set the wait's timeout comes from the heap: edge_timeout.) */
static void arm_timer(Loop *l) {
  if (l->epfd >= 0) return;
  if (l->heap.empty()) {
    if (l->armed != UINT64_MAX) {
      uv_timer_stop(&l->timer);
      l->armed = UINT64_MAX;
    }
    return;
  }
  uint64_t deadline = l->heap.top().deadline;
  if (deadline == l->armed) return;
  uv_update_time(&l->uv);
  uint64_t now = now_ns();
  /* Round up: libuv's clock is in ms; firing early only costs a re-arm. */
  uint64_t ms = deadline > now ? (deadline - now + 999999) / 1000000 : 0;
  uv_timer_start(&l->timer, on_uv_timer, ms, 0);
  l->armed = deadline;
}

/* ---- the pass ----------------------------------------------------------- */

static void run_pass(Loop *l) {
  fire_due(l);
  QNode *n = l->runq_head;
  if (n != nullptr) l->runq_tail->qnext = nullptr; /* loop_push leaves it */
  l->runq_head = l->runq_tail = nullptr;
  while (n != nullptr) {
    QNode *next = n->qnext; /* n may be requeued (and relinked) below */
    /* Start fetching the next node while this one runs: with many tasks the
     * queue does not fit in L1, and the walk is a chain of dependent loads.
     * (A prefetch of NULL is harmless: it never faults.) */
    __builtin_prefetch(next);
    switch (n->magic) {
      case MAGIC_TASK:
        task_run(l, static_cast<Task *>(n));
        break;
      case MAGIC_TIMER:
        l->current = nullptr; /* a task step may have left it set */
        timer_run(l, static_cast<Timer *>(n));
        break;
      default:
        l->current = nullptr;
        run_call(l, static_cast<Call *>(n));
        break;
    }
    n = next;
  }
  l->current = nullptr;
  if (l->runq_head == nullptr) uv_idle_stop(&l->idle);
  arm_timer(l);
}

/* The wait hooks bracket libuv's poll phase: prepare runs right before it,
 * check right after it, in every iteration. */
static void begin_wait(Loop *l) {
  if (l->wait_before != nullptr && !l->in_wait) {
    l->in_wait = true;
    l->wait_before(l->wait_data);
  }
}

static void on_prepare(uv_prepare_t *handle) {
  begin_wait(static_cast<Loop *>(handle->data));
}

static void end_wait(Loop *l) {
  if (l->in_wait) {
    l->in_wait = false;
    l->wait_after(l->wait_data);
  }
}

static void on_check(uv_check_t *handle) {
  Loop *l = static_cast<Loop *>(handle->data);
  end_wait(l);
  l->passes++;
  run_pass(l);
}

int loop_set_wait_hooks(Loop *l, uva_callback_cb before, uva_callback_cb after,
                        void *data) {
  if ((before == nullptr) != (after == nullptr)) return UVA_EINVAL;
  if (l->in_wait) return UVA_EBUSY; /* cannot happen from the loop thread */
  l->wait_before = before;
  l->wait_after = after;
  l->wait_data = data;
  if (l->epfd >= 0) return 0; /* edge_wait calls them */
  if (before != nullptr)
    uv_prepare_start(&l->prepare, on_prepare);
  else
    uv_prepare_stop(&l->prepare);
  return 0;
}

/* ---- the edge-triggered poll (Linux) -------------------------------------
 *
 * libuv's epoll set is level-triggered: a socket it reported is polled
 * again by the kernel at the next wait, even when nothing new came, and an
 * echo round trip pays for that poll (about 40-60 ns of its 7 us on
 * loopback TCP, bench/README.md). tokio's is edge-triggered. So on Linux
 * the loop waits in an epoll set of its own: stream sockets and pipes, and
 * UDP sockets, are in it edge-triggered (stream_edge.cpp and udp.cpp read
 * them themselves), and libuv's backend descriptor is in it
 * level-triggered.
 * libuv runs, without waiting, only when that descriptor is ready (its own
 * handles and requests: servers, descriptor polls, TTYs, writes and
 * datagrams that queued, cross-thread wake-ups, resolvers) or when
 * uv_backend_timeout says callbacks or closes are due; the pass runs after
 * it, as after a libuv poll. The wait's timeout is the timer heap's
 * (edge_timeout): no uv_timer_t is armed.
 * UVA_POLLER=libuv in the environment keeps libuv's poll phase (the tests
 * run both ways). */

#ifdef __linux__
/* Whether this loop polls edge-triggered (decided once per loop). */
static bool edge_wanted() {
  const char *p = std::getenv("UVA_POLLER");
  return p == nullptr || std::strcmp(p, "libuv") != 0;
}

static void edge_open(Loop *l) {
  if (!edge_wanted()) return;
  int ep = epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0) return; /* libuv's poll phase it is */
  struct epoll_event ev;
  std::memset(&ev, 0, sizeof ev);
  ev.events = EPOLLIN;
  ev.data.ptr = nullptr; /* libuv's descriptor: no stream */
  if (epoll_ctl(ep, EPOLL_CTL_ADD, uv_backend_fd(&l->uv), &ev) != 0) {
    close(ep);
    return;
  }
  l->epfd = ep;
  /* The pool's wake-up (below); without it, the async handle serves. */
  int wfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wfd < 0) return;
  ev.events = EPOLLIN | EPOLLET;
  ev.data.ptr = l;
  if (epoll_ctl(ep, EPOLL_CTL_ADD, wfd, &ev) != 0) {
    close(wfd);
    return;
  }
  l->wakefd = wfd;
}

/* The pool's completions wake the loop on an eventfd of its own in the
 * loop's set, not through libuv's async handle, whose eventfd is in
 * libuv's set, nested in ours: that took two wake-ups and a libuv pass
 * with a second epoll_wait per completion. The eventfd is edge-triggered
 * and never read: every write is a new event for an edge-triggered member
 * whatever the counter holds (as mio's waker, tokio's), so a wake-up
 * costs the pool thread one write and the loop nothing but its wait.
 * post_done writes only when the completion list was empty. */
static void wake_eventfd(int fd) {
  uint64_t one = 1;
  while (write(fd, &one, sizeof one) < 0) {
    if (errno == EINTR) continue;
    if (errno != EAGAIN) return; /* cannot happen with a valid eventfd */
    /* The counter is full (after 2^64 - 2 wake-ups): empty it, and write
     * again so the loop sees an event. */
    uint64_t count;
    if (read(fd, &count, sizeof count) < 0 && errno != EAGAIN) return;
  }
}

/* How long the wait may block, in ms (-1: no limit): until the heap's
 * first deadline, rounded up, or 0 if libuv has callbacks or closes due
 * (the core's heap is the loop's only timer; libuv has none of its own). */
static int edge_timeout(Loop *l) {
  int t = uv_backend_timeout(&l->uv);
  if (t == 0 || l->heap.empty()) return t;
  uint64_t deadline = l->heap.top().deadline;
  uint64_t now = now_ns();
  if (deadline <= now) return 0;
  uint64_t ms = (deadline - now + 999999) / 1000000;
  if (ms > INT32_MAX) ms = INT32_MAX;
  return t < 0 || int(ms) < t ? int(ms) : t;
}

bool edge_add(Loop *l, int fd, Sync *obj) {
  if (l->epfd < 0 || fd < 0) return false;
  struct epoll_event ev;
  std::memset(&ev, 0, sizeof ev);
  /* EPOLLRDHUP: a stream's peer end comes with its last bytes' event. */
  ev.events = EPOLLIN | EPOLLRDHUP | EPOLLET;
  ev.data.ptr = obj;
  return epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev) == 0;
}

void edge_remove(Loop *l, int fd) {
  epoll_ctl(l->epfd, EPOLL_CTL_DEL, fd, nullptr);
}

/* One wait of up to timeout ms (-1: no limit) in the loop's set; the
 * members' events are handed out here. Returns whether libuv has I/O to
 * run. */
static bool edge_wait(Loop *l, int timeout) {
  struct epoll_event ev[64];
  begin_wait(l);
  int n = epoll_wait(l->epfd, ev, 64, timeout);
  end_wait(l);
  bool uv_ready = false;
  for (int i = 0; i < n; i++) { /* n < 0 (EINTR): no events */
    Sync *obj = static_cast<Sync *>(ev[i].data.ptr);
    if (obj == nullptr)
      uv_ready = true;
    else if (ev[i].data.ptr == l) /* the pool's wakefd */
      l->work_posted = true;
    else if (obj->magic == MAGIC_STREAM)
      stream_edge_event(static_cast<Stream *>(obj),
                        ev[i].events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR));
    else
      udp_edge_event(static_cast<Udp *>(obj));
  }
  return uv_ready;
}

/* loop_run with the loop's own poll: as uv_run(mode), one pass per
 * iteration, libuv's phases only when they have something to do. */
static void run_edge(Loop *l, uv_run_mode mode) {
  bool alive = uv_loop_alive(&l->uv) != 0;
  while (alive && !l->stop_flag) {
    int timeout = 0;
    if (mode != UV_RUN_NOWAIT && l->runq_head == nullptr)
      timeout = edge_timeout(l);
    bool uv_ready = edge_wait(l, timeout);
    /* libuv's callbacks and closes that are due run as in its own pass. */
    if (uv_ready || uv_backend_timeout(&l->uv) == 0)
      uv_run(&l->uv, UV_RUN_NOWAIT);
    if (l->work_posted) { /* after the other events were handed out */
      l->work_posted = false;
      /* With nothing queued, the pool's completions run now and the
       * tasks they wake run in this pass; behind queued work they queue
       * too, so nothing ready before them is overtaken. */
      if (l->runq_head == nullptr)
        work_complete_posted(l);
      else
        work_drain(l);
    }
    l->passes++;
    run_pass(l); /* its fire_due queues what the heap has due */
    alive = uv_loop_alive(&l->uv) != 0;
    if (mode != UV_RUN_DEFAULT) break;
  }
  l->stop_flag = false;
}

#else
bool edge_add(Loop *, int, Sync *) { return false; }
void edge_remove(Loop *, int) {}
#endif

void loop_wake_for_work(Loop *l) {
#ifdef __linux__
  if (l->wakefd >= 0) {
    wake_eventfd(l->wakefd);
    return;
  }
#endif
  uv_async_send(&l->async);
}

/* Stop the running loop after the current pass. */
static void stop_running(Loop *l) {
  if (l->epfd >= 0)
    l->stop_flag = true;
  else
    uv_stop(&l->uv);
}

/* ---- cross-thread queue ------------------------------------------------- */

static void drain_xq(Loop *l) {
  std::vector<XOp> ops;
  {
    std::lock_guard<std::mutex> lock(l->xmu);
    ops.swap(l->xq);
  }
  for (const XOp &op : ops) {
    switch (op.kind) {
      case X_WAKE: {
        Task *t = static_cast<Task *>(op.p);
        t->xwake.store(0, std::memory_order_release);
        task_wake_local(t);
        task_release(t);
        break;
      }
      case X_CALL:
        op.cb(op.p);
        break;
      case X_FREE:
        task_destroy(static_cast<Task *>(op.p));
        break;
    }
  }
}

static void on_async(uv_async_t *handle) {
  Loop *l = static_cast<Loop *>(handle->data);
  if (l->xstop.exchange(false)) stop_running(l);
  flags_drain(l);
  drain_xq(l);
  work_drain(l);
}

/* The send happens under xmu, where loop_close shuts the door: once it is
 * shut no thread is between its push and its uv_async_send. */
int loop_post(Loop *l, XOpKind kind, void *p, uva_callback_cb cb) {
  std::lock_guard<std::mutex> lock(l->xmu);
  if (l->xclosed.load(std::memory_order_relaxed)) return UVA_ECLOSED;
  if (fault_hit(FAULT_ALLOC)) throw std::bad_alloc();
  l->xq.push_back(XOp{kind, p, cb}); /* may throw bad_alloc: capi maps it */
  uv_async_send(&l->async);
  return 0;
}

/* ---- lifecycle ---------------------------------------------------------- */

/* A write to a reset socket raises SIGPIPE, whose default action kills the
 * process; streams report UVA_EPIPE instead. Ignore it unless the program
 * installed a handler of its own (as Node.js and uvloop do). */
static void ignore_sigpipe() {
#ifdef SIGPIPE
  struct sigaction sa;
  if (sigaction(SIGPIPE, nullptr, &sa) == 0 && sa.sa_handler == SIG_DFL &&
      !(sa.sa_flags & SA_SIGINFO)) {
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, nullptr);
  }
#endif
}

int loop_new(Loop **out) {
  ignore_sigpipe();
#ifndef _WIN32
  static const int at_fork =
      pthread_atfork(nullptr, nullptr, forget_running_loop_in_child);
  (void) at_fork;
#endif
  Loop *l = fault_hit(FAULT_ALLOC) ? nullptr : new (std::nothrow) Loop();
  if (l == nullptr) return UVA_ENOMEM;
  l->magic = MAGIC_LOOP;
  l->qnext = nullptr;
  l->owner = thread_token();
  int rc = uv_loop_init(&l->uv);
  if (rc != 0) {
    delete l;
    return rc;
  }
  l->uv.data = l;
  uv_timer_init(&l->uv, &l->timer);
  uv_idle_init(&l->uv, &l->idle);
  uv_check_init(&l->uv, &l->check);
  uv_prepare_init(&l->uv, &l->prepare);
  rc = uv_async_init(&l->uv, &l->async, on_async);
  if (rc != 0) {
    /* Only the async handle can fail (it opens an eventfd). */
    uv_close(reinterpret_cast<uv_handle_t *>(&l->timer), nullptr);
    uv_close(reinterpret_cast<uv_handle_t *>(&l->idle), nullptr);
    uv_close(reinterpret_cast<uv_handle_t *>(&l->check), nullptr);
    uv_close(reinterpret_cast<uv_handle_t *>(&l->prepare), nullptr);
    uv_run(&l->uv, UV_RUN_DEFAULT);
    uv_loop_close(&l->uv);
    delete l;
    return rc;
  }
  l->timer.data = l->idle.data = l->check.data = l->async.data = l;
  l->prepare.data = l;
#ifdef __linux__
  edge_open(l);
#endif
  if (l->epfd < 0) uv_check_start(&l->check, on_check);
  uv_unref(reinterpret_cast<uv_handle_t *>(&l->timer));
  uv_unref(reinterpret_cast<uv_handle_t *>(&l->idle));
  uv_unref(reinterpret_cast<uv_handle_t *>(&l->check));
  uv_unref(reinterpret_cast<uv_handle_t *>(&l->prepare));
  uv_unref(reinterpret_cast<uv_handle_t *>(&l->async));
  *out = l;
  return 0;
}

int loop_run(Loop *l, uva_run_mode mode) {
  if (l->running || tls_running != nullptr) return UVA_ERUNNING;
  uv_run_mode m = mode == UVA_RUN_ONCE     ? UV_RUN_ONCE
                  : mode == UVA_RUN_NOWAIT ? UV_RUN_NOWAIT
                                           : UV_RUN_DEFAULT;
  l->running = true;
  tls_running = l;
  arm_timer(l);
  /* As in libuv, no mode iterates when no referenced work is left. */
  if (l->stop_next) {
    l->stop_next = false;
    m = UV_RUN_NOWAIT;
  }
#ifdef __linux__
  if (l->epfd >= 0)
    run_edge(l, m);
  else
#endif
    uv_run(&l->uv, m);
  end_wait(l); /* prepare and check pair up in every iteration; be sure */
  tls_running = nullptr;
  l->running = false;
  return 0;
}

int loop_stop(Loop *l) {
  if (on_owner(l)) {
    if (l->running)
      stop_running(l);
    else
      l->stop_next = true; /* the next run makes one pass, as asyncio */
    return 0;
  }
  std::lock_guard<std::mutex> lock(l->xmu); /* as loop_post */
  if (l->xclosed.load(std::memory_order_relaxed)) return UVA_ECLOSED;
  l->xstop.store(true);
  uv_async_send(&l->async);
  return 0;
}

/* Shut the door for other threads and wait for the calls inside it. */
static void shut_door(Loop *l) {
  {
    std::lock_guard<std::mutex> lock(l->xmu);
    l->xclosed.store(true); /* seq_cst: pairs with flag_set's check */
  }
  while (l->xsenders.load() != 0)
    std::this_thread::yield();
}

static bool busy(const Loop *l) {
  return l->handles != l->lingering || l->alive != 0 || l->runq_head != nullptr;
}

int loop_close(Loop *l) {
  if (l->running) return UVA_ERUNNING;
  flags_drain(l);
  drain_xq(l);
  work_drain(l);
  if (busy(l)) return UVA_EBUSY;
  /* Only calls on the loop itself can still come (a task or flag would
   * make it busy): shut the door, then run what came in before. If that
   * started new work the loop stays open, door open again. */
  shut_door(l);
  drain_xq(l);
  if (busy(l)) {
    l->xclosed.store(false);
    return UVA_EBUSY;
  }
  l->xstop.store(false);
  process_hand_off(l); /* children still running: to the reaper */
  pool_stop(l);        /* no job is left: its threads only wait */
  fs_free_bufs(l);
  uv_close(reinterpret_cast<uv_handle_t *>(&l->timer), nullptr);
  uv_close(reinterpret_cast<uv_handle_t *>(&l->idle), nullptr);
  uv_close(reinterpret_cast<uv_handle_t *>(&l->check), nullptr);
  uv_close(reinterpret_cast<uv_handle_t *>(&l->async), nullptr);
  uv_close(reinterpret_cast<uv_handle_t *>(&l->prepare), nullptr);
#ifdef __linux__
  if (l->pollset >= 0)
    uv_close(reinterpret_cast<uv_handle_t *>(&l->pollset_uv), nullptr);
#endif
  l->wait_before = l->wait_after = nullptr;
  uv_run(&l->uv, UV_RUN_DEFAULT);
  int rc = uv_loop_close(&l->uv);
  if (rc != 0) return UVA_EINTERNAL; /* a libuv handle leaked: our bug */
#ifdef __linux__
  if (l->wakefd >= 0) close(l->wakefd); /* after pool_stop joined its users */
  if (l->epfd >= 0) close(l->epfd);
  if (l->pollset >= 0) close(l->pollset);
#endif
  if (l->dtor != nullptr) l->dtor(l->data);
  /* Atomic: the thread-safe calls of other threads read it. */
  __atomic_store_n(&l->magic, uint32_t(MAGIC_LOOP_CLOSED), __ATOMIC_RELAXED);
  loop_release(l); /* the creator's reference */
  return 0;
}

void loop_release(Loop *l) {
  if (l->refs.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
  l->magic = MAGIC_FREED;
  delete l;
}

}  // namespace detail
}  // namespace uva
