/* uvasync — private declarations shared by the core's translation units.
 * Plays the role of libuv's src/uv-common.h. Nothing here is API. */
#ifndef UVASYNC_INTERNAL_H
#define UVASYNC_INTERNAL_H

#include "uvasync.h"

#include <uv.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <unordered_map>
#include <vector>
#ifndef _WIN32
#include <pthread.h>
#endif

namespace uva {
namespace detail {

/* ---- object identity ---------------------------------------------------- */

/* Every object begins with a QNode, so one run queue holds tasks, timers and
 * internal calls, and a handle's kind can be checked from any pointer. */
enum : uint32_t {
  MAGIC_BASE = 0x55564100u, /* "UVA\0" */
  MAGIC_LOOP = MAGIC_BASE | 1,
  MAGIC_TASK = MAGIC_BASE | 2,
  MAGIC_TIMER = MAGIC_BASE | 3,
  MAGIC_CALL = MAGIC_BASE | 4,
  MAGIC_EVENT = MAGIC_BASE | 5,
  MAGIC_LOCK = MAGIC_BASE | 6,
  MAGIC_SEM = MAGIC_BASE | 7,
  MAGIC_QUEUE = MAGIC_BASE | 8,
  MAGIC_FLAG = MAGIC_BASE | 9,
  MAGIC_STREAM = MAGIC_BASE | 10,
  MAGIC_SERVER = MAGIC_BASE | 11,
  MAGIC_UDP = MAGIC_BASE | 12,
  MAGIC_POLL = MAGIC_BASE | 13,
  MAGIC_LOOP_CLOSED = MAGIC_BASE | 14, /* closed, memory kept by a retain */
  MAGIC_PROCESS = MAGIC_BASE | 15,
  MAGIC_SIGNAL = MAGIC_BASE | 16,
  MAGIC_WORK = MAGIC_BASE | 20, /* a pool job (pool.cpp, fs.cpp) */
  MAGIC_FREED = 0xDEADDEADu,
};

struct QNode {
  QNode *qnext;
  uint32_t magic;
  /* Handle fields, kept here so they share the 16 bytes with the link: */
  uint16_t flags;
  uint8_t state;
  uint8_t spare_; /* keeps flags and state one plain 32-bit word (below) */
};

/* flags and state of a node as one word, read with one load: a task
 * switch checks both at once (quiet_after_step). */
inline uint32_t flags_and_state(const QNode *n) {
  uint32_t w;
  std::memcpy(&w, &n->flags, sizeof w);
  return w;
}
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
#define UVA_STATE_SHIFT 8 /* state is the third byte of the word */
#else
#define UVA_STATE_SHIFT 16
#endif

struct Loop;

/* Handle flags. */
enum : uint16_t {
  F_REF = 1 << 0,     /* counts towards loop liveness */
  F_CANCEL = 1 << 1,  /* task: cancellation requested, not yet delivered */
  F_WOKEN = 1 << 2,   /* task: woken while its step ran */
  F_YIELD = 1 << 3,   /* task: uva_task_yield called during the step */
  F_INQ = 1 << 4,     /* timer: physically linked in the run queue */
  F_COUNTED = 1 << 5, /* timer: counted in loop->alive */
  F_CLOSING = 1 << 6, /* sync object: closed by its owner */
};

/* A task's QNode::state. */
enum class TaskState : uint8_t {
  QUEUED,   /* in the run queue, or running (then it is loop->current) */
  SLEEPING, /* in the timer heap */
  JOINING,  /* has a WaitKind::JOIN wait on another task */
  PARKED,   /* waits for uva_task_wake or uva_task_cancel */
  DONE,
};

/* A timer's QNode::state. */
enum class TimerState : uint8_t {
  IDLE,    /* stopped */
  HEAP,    /* waiting in the timer heap */
  DUE,     /* in the run queue, fires when reached */
  CLOSING, /* close requested, close callback pending */
};

/* Field order matters: what a task switch touches (the link, flags, state,
 * step and data) sits in the first 32 bytes, so most tasks need one cache
 * line per switch. */
struct Handle : QNode {
  union {
    uva_task_step_cb step;
    uva_timer_cb timer_cb;
  } fn;
  void *data;
  std::atomic<uint32_t> refs; /* references to the memory */
  int32_t result;             /* task: the finished step's result */
  Loop *loop;
  uva_free_cb dtor;
};

/* Position in the timer heap; seq keeps FIFO order among equal deadlines. */
struct TNode {
  uint32_t heap_idx;
  uint32_t pad_;
  uint64_t seq;
};

struct Task;

/* A wait node: one pending wait of a task on an object (a task to join, a
 * sync primitive), or a done callback registered on a task. It sits in the
 * object's FIFO (circular, doubly linked: O(1) unlink when cancelled) and,
 * for task waits, in the task's own list of waits. A task may wait on
 * several objects at once (Rust's select!); one node per (task, object). */
enum class WaitKind : uint8_t {
  DONE_CB, /* done callback on a task (no waiting task) */
  JOIN,    /* task waits for another task to finish */
  EVENT,
  LOCK,
  SEM,
  GET, /* queue get */
  PUT, /* queue put: granted = a slot is reserved */
  FLAG,
  IO,   /* stream, server, UDP or poll wait: the object wakes every waiter
         on any change and each repeated call checks its own condition */
  WORK, /* a pool job's end: every waiter is granted it (nothing to give
           back when withdrawn) */
};
enum class WaitState : uint8_t {
  WAITING, /* in the object's list */
  GRANTED, /* handed what it waited for; the task has not taken it yet */
  CLOSED,  /* the object was closed while this node waited */
};

struct Wait {
  Wait *next; /* object's list */
  Wait *prev;
  Wait *tnext; /* task's list of its waits */
  Task *task;  /* the waiting task; NULL for DONE_CB */
  Handle *on;  /* the object waited on */
  void *item;  /* GET: the item handed over; DONE_CB: user data */
  uva_task_done_cb cb;
  WaitKind kind;
  WaitState state;
};

/* Circular list helpers: `head` is the oldest node. */
inline void wlist_append(Wait **head, Wait *n) {
  if (*head == nullptr) {
    n->next = n->prev = n;
    *head = n;
  } else {
    Wait *tail = (*head)->prev;
    n->next = *head;
    n->prev = tail;
    tail->next = n;
    (*head)->prev = n;
  }
}

inline void wlist_remove(Wait **head, Wait *n) {
  if (n->next == n) {
    *head = nullptr;
  } else {
    n->prev->next = n->next;
    n->next->prev = n->prev;
    if (*head == n) *head = n->next;
  }
  n->next = n->prev = nullptr;
}

/* A handle that can sit in the timer heap: tasks (sleep) and timers. Both
 * share this prefix so the heap needs no per-kind code. */
struct Timed : Handle {
  TNode tn;
};

struct Task : Timed {
  Wait *waiters; /* joiners and done callbacks, in the order added */
  Wait *waits;   /* this task's own pending waits */
  std::atomic<uint8_t> xwake; /* a cross-thread wake is queued */
};

/* A task's or a timer's state, typed (QNode keeps it as a byte, read
 * with the flags in one load). */
inline TaskState state_of(const Task *t) { return TaskState(t->state); }
inline void set_state(Task *t, TaskState st) { t->state = uint8_t(st); }

/* An internal one-shot callback in the run queue (call_soon, deferred done
 * callbacks, timer close callbacks). */
struct Call : QNode {
  uint32_t pooled; /* 1: from loop->small_pool, freed after it runs */
  void (*fn)(Loop *loop, Call *call);
  void *a;
  void *b;
  void *c;
};

struct Timer : Timed {
  int64_t repeat_ms;
  uva_timer_close_cb close_cb;
  Call close_call; /* embedded: closing never needs memory */
};

inline TimerState state_of(const Timer *t) { return TimerState(t->state); }
inline void set_state(Timer *t, TimerState st) { t->state = uint8_t(st); }
/* Started: in the heap or due in the run queue. */
inline bool timer_active(const Timer *t) {
  return state_of(t) == TimerState::HEAP || state_of(t) == TimerState::DUE;
}

/* ---- synchronisation objects (sync.cpp) -------------------------------- */

/* Memory references: the owner's, plus one per wait node on the object
 * (and one while a thread-safe flag is queued for the loop). */
struct Sync : Handle {
  Wait *waiters; /* FIFO of WAITING nodes (getters, for a queue) */
};

struct Event : Sync {
  bool is_set;
};

struct Lock : Sync {
  bool locked;
};

struct Sem : Sync {
  int64_t value;
  int64_t bound;   /* 0: unbounded */
  int64_t granted; /* permits handed to waiters that have not taken them */
};

struct Queue : Sync {
  Wait *putters; /* tasks waiting for room */
  void **ring;   /* items, oldest at ring[head] */
  size_t cap;
  size_t head;
  size_t size;
  size_t maxsize;  /* 0: unbounded */
  size_t reserved; /* slots promised to granted putters */
  size_t claimed;  /* front items promised to granted getters */
  uva_free_cb item_dtor;
};

struct Flag : Sync {
  std::atomic<uint8_t> set;
  std::atomic<uint8_t> queued; /* on the loop's list of flags to check */
  Flag *xnext;
};

/* ---- I/O objects (stream*.cpp, udp.cpp, poll.cpp) ----------------------- */

/* Memory references: the owner's (dropped when the libuv close completes),
 * one per wait node, one per request in flight that outlives the handle
 * (name resolution). */
enum class StreamState : uint8_t {
  CONNECTING, /* resolving or connecting */
  OPEN,
  CLOSING, /* graceful close: flushing queued writes */
  CLOSED,  /* uv_close issued */
};

/* Why the libuv engine's on_alloc gave libuv no room (on_read then gets
 * UV_ENOBUFS; stream_libuv.cpp). */
enum class NoRoom : uint8_t {
  NONE,
  FULL,         /* the buffer holds the flow-control limit: a soft pause */
  READER_READS, /* a reader waits: it reads the bytes itself (read_now) */
};

struct WriteReq; /* stream.cpp: a queued write */
struct Work;     /* a pool job (below) */

/* The stream files: stream.cpp (buffer, API, connect, close), the read
 * engines stream_libuv.cpp and stream_edge.cpp, and stream_engine.h
 * between them. The flags are grouped by who owns them. */
struct Stream : Sync {
  union {
    uv_handle_t h;
    uv_stream_t s;
    uv_tcp_t tcp;
    uv_pipe_t pipe;
    uv_tty_t tty;
  } uv;
  uv_handle_type type;
  StreamState st;
  /* The API half (stream.cpp): */
  bool eof;    /* the peer finished; no more bytes will come */
  bool to_eof; /* a reader waits for EOF: ignore high_water */
  bool shut_requested;
  bool shut_done;
  bool retrying; /* TCP connect: the failed socket is closing, next follows */
  bool asked;    /* a read was made: a TTY reads ahead only from then on */
  /* Both engines: */
  bool more; /* the kernel likely holds bytes: a reader finding the
                    buffer empty reads them at once (see read_now) */
  /* The libuv engine (stream_libuv.cpp): */
  bool reading;  /* uv_read_start is active */
  bool signaled; /* readiness went to the readers instead of a read */
  NoRoom nobuf;  /* why on_alloc gave no room */
  /* The edge engine (stream_edge.cpp): */
  bool edge;    /* in the loop's epoll set (Loop::epfd): we read, not libuv */
  bool hup;     /* the peer's end or an error is waiting in the kernel */
  bool no_edge; /* the epoll set refused it: libuv reads */
  /* Read-ahead (stream_engine.h): */
  bool outgrown;       /* a read filled the caller's buffer or a whole chunk */
  uint8_t reads_ahead; /* young reads that read past it */
  int fd;              /* the descriptor once known (fd_of), else -1 */
  int read_err;        /* sticky: the read side failed */
  int write_err;       /* sticky: a write failed */
  int conn_err;        /* the connect failed */
  int shut_err;
  /* A sendfile (fs.cpp) running or waiting for the writes ahead of it:
   * writes queue behind it (in the tail) and a close waits for its end. */
  Work *sf;
  bool sf_close; /* closed while it ran: the close finishes at its end */
  bool sf_abort; /* ... as uva_stream_abort */
  char *rbuf;    /* buffered bytes are rbuf[rstart, rstart + rlen) */
  size_t rstart, rlen, rcap;
  size_t scanned;   /* read_line: bytes known to hold no delimiter */
  char scan_sep[8]; /* the separator `scanned` is about */
  uint8_t scan_seplen;
  size_t want; /* bytes a waiting read needs (may exceed high_water) */
  size_t high_water, low_water, line_limit;
  int delim;
  size_t last_read;   /* bytes the last read from the kernel got (hint) */
  size_t wqueued;     /* bytes in uv_write requests not completed yet, and in
                     the tail */
  WriteReq *wtail;    /* writes made while one is in flight */
  size_t wtail_cap;   /* room in wtail's data */
  uint64_t full_pass; /* Loop::passes when a read reached the limit */
  struct addrinfo *ai_list, *ai_next; /* TCP connect: addresses to try */
  int ai_err;                         /* last connect error while trying */
  uv_connect_t creq;
  uv_shutdown_t sreq;
  struct Tls *tls; /* TLS runs on the stream (tls.cpp), else NULL */
  uva_stream_close_cb close_cb;
  void *close_data;
};

struct Server : Sync {
  union {
    uv_handle_t h;
    uv_stream_t s;
    uv_tcp_t tcp;
    uv_pipe_t pipe;
  } uv;
  uv_handle_type type;
  bool closed;
  int pending; /* connections libuv holds for us to accept */
  int err;     /* sticky listen error */
  uva_server_connection_cb on_conn;
  void *on_conn_data;
  uva_server_close_cb close_cb;
  void *close_data;
};

struct Datagram {
  Datagram *next;
  size_t len;
  struct sockaddr_storage addr;
  char data[1];
};

struct Udp : Sync {
  uv_udp_t uv;
  bool closed;
  bool receiving;
  bool edge;    /* in the loop's epoll set (Loop::epfd): we read, not libuv */
  bool no_edge; /* the epoll set refused it: libuv reads (udp.cpp) */
  bool more;    /* edge: the kernel may hold datagrams we have not read */
  int fd;       /* edge: the socket's descriptor */
  int err;
  Datagram *head, *tail;
  size_t qbytes, high_water;
  uva_udp_close_cb close_cb;
  void *close_data;
};

struct Poll : Sync {
#ifdef __linux__
  /* Never started: only its close callback (a poll's close completes in a
   * later pass, as a libuv handle's). Readiness comes from the loop's
   * poll set (poll.cpp). */
  uv_check_t uv;
  int fd;
  uint32_t armed; /* epoll events it is armed for, one-shot; 0: none */
  bool lost;      /* a newer poll took the number over: UVA_EBADF */
#else
  uv_poll_t uv;
#endif
  bool closed;
  int events;  /* what the waiting task asked for */
  int revents; /* what was seen since */
  int err;
  uva_poll_close_cb close_cb;
  void *close_data;
};

/* ---- child processes and signal watchers (process.cpp, signal.cpp) ------ */

/* Memory references as for I/O objects: the owner's (dropped when libuv is
 * done with the handle: after the child's exit, or at the loop's close)
 * and one per wait node. */
struct Process : Sync {
  /* Never started: closed through libuv so that close_cb runs from the
   * loop, as every handle's, and uva_loop_close finishes it. */
  uv_idle_t uv;
  bool closed;          /* uva_process_close was called (or the spawn failed) */
  bool exited;          /* reaped (Loop::chld): status and signal are known */
  bool orphaned;        /* closed while the child runs */
  unsigned int options; /* UVA_PROCESS_* */
  int pid;
  int term_signal;
  int64_t exit_status;
  Stream *pipes[3]; /* the parent's ends not taken by uva_process_stream */
  Process *cnext, *cprev; /* Loop::children while not reaped */
  uva_process_close_cb close_cb;
  void *close_data;
};

struct Signal : Sync {
  uv_signal_t uv;
  bool closed;
  int signum;
  uint64_t count;   /* arrivals since the last completed wait */
  uint64_t cb_pass; /* Loop::passes + 1 when the callback last ran */
  uva_signal_cb cb;
  void *cb_data;
  uva_signal_close_cb close_cb;
  void *close_data;
};

/* ---- the loop's thread pool (pool.cpp) and its jobs (pool.cpp, fs.cpp) */

/* Memory references of a job: the owner's (uva_work_close), one per wait
 * node, and the pool's, held from the submit until the job's completion
 * ran on the loop thread. The memory (and dtor(data)) goes with the last,
 * always on the loop thread. */
struct ThreadPool;

/* Where a job is, for the pool (read and written under ThreadPool::mu). */
enum class JobPlace : uint8_t {
  QUEUED,  /* in the pool's FIFO */
  RUNNING, /* a pool thread runs it */
  OFF,     /* not in the pool: ended, dropped, or held (Work::held) */
};

struct Work : Sync {
  Work *jnext, *jprev; /* the pool's FIFO; then the loop's completion list */
  void (*run)(Work *); /* pool thread: the job itself */
  void (*cleanup)(Work *); /* loop thread, when the memory goes (or NULL) */
  void (*on_end)(Work *);  /* loop thread, as soon as it ended (or NULL) */
  uva_work_fn fn;          /* a user job's function (run calls it) */
  uva_work_done_cb done;
  JobPlace place;
  bool ended;     /* loop thread: fn returned or the job was dropped */
  bool delivered; /* loop thread: the completion ran (done, waiters) */
  bool is_fs;     /* a file job (fs.cpp): the uva_fs_* getters apply */
  bool orphaned;  /* closed before it ended: nobody takes what it made */
  bool held;      /* loop thread: its start waits for something there (a
                     sendfile for the stream's queued writes) */
  /* Set on the loop thread when the job is closed while it runs: a long
   * job (sendfile) looks at it between chunks and stops. */
  std::atomic<bool> stop;
  Call completion; /* embedded: completing never needs memory */
};

/* Queue a prepared job (run, cleanup, data set by the caller; sync_init
 * done) on the loop's pool: 0, UVA_ENOMEM, UVA_EAGAIN (no thread). On
 * failure nothing is queued and the job is left to the caller. */
int work_init(Work *w, Loop *l);
int work_queue(Work *w);
/* A job that starts later: counted as queued (the pool's reference, the
 * loop alive), held, until work_start_held queues it (or ends it
 * with the error if it cannot be queued) or work_end_held ends it. */
void work_hold(Work *w);
void work_start_held(Work *w);
void work_end_held(Work *w, int status);
void work_free_failed(Work *w); /* a job work_queue refused */
int work_submit(Work **out, Loop *l, uva_work_fn fn, void *data,
                uva_free_cb dtor, uva_work_done_cb done);
int work_wait(Work *w, Task *t);
int work_wait_no_task(Work *w);
int work_cancel(Work *w);
void work_close(Work *w);
void work_destroy(Work *w); /* sync.cpp's destroy, last reference */
void work_drain(Loop *l);   /* loop thread: completions from the pool */
/* Loop thread, edge poller: run the pool's completions now (before the
 * pass), instead of queuing them as work_drain does. */
void work_complete_posted(Loop *l);
/* Pool thread: wake the loop for the completions just posted on xwork
 * (Loop::wakefd, or `async`; loop.cpp). */
void loop_wake_for_work(Loop *l);
void pool_stop(Loop *l); /* uva_loop_close: join the pool's threads */
uint64_t pool_size(Loop *l);
int pool_set_size(Loop *l, uint64_t size);

/* fs.cpp: the file operations as jobs. */
enum class FsOp : uint8_t {
  OPEN,
  CLOSE,
  READ,
  WRITE,
  FSYNC,
  FTRUNCATE,
  STAT,
  LSTAT,
  FSTAT,
  RENAME,
  UNLINK,
  MKDIR,
  RMDIR,
  READDIR,
  SENDFILE,
};

/* The arguments of one operation (those it does not use are ignored). */
struct FsArgs {
  FsOp op;
  int fd = -1;
  int flags = 0;
  int mode = 0;
  int64_t offset = -1; /* READ, WRITE; FTRUNCATE: the length */
  size_t len = 0;
  const char *path = nullptr;
  const char *path2 = nullptr;
  const void *data = nullptr;
};

int fs_start(Work **out, Loop *l, const FsArgs &a);
void fs_free_bufs(Loop *l); /* uva_loop_close */
int fs_result(int64_t *out, Work *w);
int fs_data(const void **data, size_t *len, Work *w);
int fs_statbuf(uva_stat_t *out, Work *w);
int fs_dirent(const char **name, uva_file_type *type, Work *w, size_t i);

/* ---- small-object pool -------------------------------------------------- */

/* Fixed-size blocks carved from 64 KiB slabs, owned by one loop and used on
 * its thread only: no malloc header per task, and spawn/finish skip malloc.
 * Sanitizer builds use plain malloc so use-after-free stays detectable. */
class Pool {
 public:
  explicit Pool(size_t block, size_t align = 8);
  ~Pool();
  void *alloc();
  void free(void *p);

 private:
  size_t block_;
  size_t align_;
  void *freelist_ = nullptr;
  void *slabs_ = nullptr;
};

/* ---- timer heap: 4-ary min-heap of (deadline, handle) ------------------- */

struct HeapEntry {
  uint64_t deadline; /* uv_hrtime() nanoseconds */
  Timed *h;
};

class TimerHeap {
 public:
  ~TimerHeap();
  bool empty() const { return n_ == 0; }
  size_t size() const { return n_; }
  const HeapEntry &top() const { return a_[0]; }
  int insert(uint64_t deadline, Timed *h); /* 0 or UVA_ENOMEM */
  void remove(Timed *h);
  Timed *pop();

 private:
  void sift_up(uint32_t i);
  void sift_down(uint32_t i);
  uint32_t least_child(uint32_t i, uint32_t n) const;
  void place(uint32_t i, const HeapEntry &e) {
    a_[i] = e;
    e.h->tn.heap_idx = i;
  }
  HeapEntry *a_ = nullptr;
  uint32_t n_ = 0;
  uint32_t cap_ = 0;
};

/* ---- loop ------------------------------------------------------------- */

enum XOpKind : uint8_t { X_WAKE, X_CALL, X_FREE };

struct XOp {
  XOpKind kind;
  void *p;
  uva_callback_cb cb;
};

struct Loop : QNode {
  uv_loop_t uv;
  uv_timer_t timer; /* drives the core's timer heap */
  uv_idle_t idle;   /* active while the run queue is not empty: no blocking */
  uv_check_t check; /* runs one pass after each poll */
  uv_async_t async; /* cross-thread wake-ups, calls and stop */
  uv_prepare_t prepare; /* calls wait_before just before the poll */

  /* uva_loop_set_wait_hooks: around the wait for I/O (a binding's global
   * lock is released in before and taken back in after). */
  uva_callback_cb wait_before = nullptr;
  uva_callback_cb wait_after = nullptr;
  void *wait_data = nullptr;
  bool in_wait = false; /* before ran, after not yet */

  QNode *runq_head = nullptr;
  QNode *runq_tail = nullptr;
  TimerHeap heap;
  uint64_t next_seq = 0;
  uint64_t armed = UINT64_MAX; /* deadline the uv timer is armed for */
  uint64_t passes = 0; /* poll phases seen (counted in the check phase) */

  /* Processes and signal watchers closed by their owner (or that failed to
   * start) whose memory only waits for libuv: a close callback, or the
   * exit of a child still running). They do not keep uva_loop_close from
   * closing the loop, which hands their children to the reaper
   * (process.cpp) and finishes the closes. */
  size_t lingering = 0;
  /* Children spawned and not reaped yet, open or closed, and the SIGCHLD
   * watcher that reaps them (process.cpp; initialised at the first spawn,
   * unreferenced). */
  Process *children = nullptr;
  uv_signal_t chld;
  bool chld_init = false;
  bool chld_started = false;

  /* Linux: the loop's own epoll set (loop.cpp), or -1 where libuv's poll
   * phase waits instead. Stream sockets are in it edge-triggered; libuv's
   * backend descriptor is in it too, and libuv runs (uv_run NOWAIT) only
   * when that is ready or its callbacks or closes are due; the wait's
   * timeout comes from the timer heap, and `timer` stays unused. */
  int epfd = -1;
  bool stop_flag = false; /* epfd: uva_loop_stop during a run */
  /* Linux, with epfd: the pool's eventfd, in epfd edge-triggered, that
   * pool threads write when they post a completion to an empty xwork list
   * (pool.cpp); the loop's wait drains xwork on its event, with no libuv
   * pass. -1 otherwise: completions wake the loop through `async`. Closed
   * by uva_loop_close after the pool's threads were joined. */
  int wakefd = -1;
  bool work_posted = false; /* wakefd's event came in this wait */
  /* Linux: the descriptor polls' own epoll set (poll.cpp), made by the
   * first uva_poll_new, watched by `pollset_uv` in libuv's poll phase;
   * -1 before. `polls`: which poll holds each number in it. */
  int pollset = -1;
  uv_poll_t pollset_uv;
  std::unordered_map<int, Poll *> polls;

  const void *owner; /* thread token of the owning thread */
  bool running = false;
  bool stop_next = false; /* uva_loop_stop was called between runs */
  Task *current = nullptr;
  size_t alive = 0;   /* referenced work: keeps uva_loop_run alive */
  size_t handles = 0; /* tasks and timers whose memory is not freed yet */

  /* Other threads reach the loop only through these. uva_loop_close shuts
   * the door (xclosed) before it closes `async`, and waits for the calls
   * already inside: those that post do their uv_async_send under xmu,
   * flag_set (which may not lock: signal handlers) counts itself in
   * xsenders. So no uv_async_send ever meets a closed or freed handle. */
  std::mutex xmu;
  std::vector<XOp> xq;
  std::atomic<bool> xstop{false};
  std::atomic<Flag *> xflags{nullptr}; /* flags set from other threads */
  std::atomic<bool> xclosed{false};
  std::atomic<uint32_t> xsenders{0};
  /* References to the memory: the creator's (dropped by uva_loop_close)
   * and uva_loop_retain's, so a late thread-safe call finds the loop
   * closed instead of freed. */
  std::atomic<uint32_t> refs{1};

  /* The thread pool (pool.cpp), made by the first job; its jobs come back
   * on xwork (under xmu, as xq), with a write to wakefd, or a
   * uv_async_send where the loop has none. */
  ThreadPool *tpool = nullptr;
  uint32_t pool_size = 0; /* UVA_LOOP_POOL_SIZE; 0: the default */
  Work *xwork_head = nullptr;
  Work *xwork_tail = nullptr;
  /* File jobs' buffers kept for the next job of the same size (fs.cpp):
   * a file read or copied in chunks reuses them instead of having fresh
   * pages zeroed and mapped for every chunk. */
  static constexpr int FS_BUFS = 4;
  void *fs_buf[FS_BUFS] = {};
  size_t fs_buf_len[FS_BUFS] = {};

  void *data = nullptr;
  uva_free_cb dtor = nullptr;

  /* 32-byte aligned 96-byte blocks: a task's hot first 32 bytes (link,
   * flags, state, step, data) never straddle two cache lines. */
  Pool task_pool{sizeof(Task), 32};
  Pool small_pool{sizeof(Call) > sizeof(Wait) ? sizeof(Call) : sizeof(Wait)};
};

/* Loop::epfd membership (loop.cpp). edge_add puts fd in the set,
 * edge-triggered for reading, reporting obj (a Stream or a Udp, told apart
 * by its magic): false if the loop has no set or epoll refuses fd. A
 * member leaves with edge_remove while its descriptor is still open (a dup
 * or a child process would keep it in the set, with obj). */
bool edge_add(Loop *l, int fd, Sync *obj);
void edge_remove(Loop *l, int fd);

/* An event for a member of Loop::epfd; `end`: the peer's end or an error
 * (stream_edge.cpp, udp.cpp). */
void stream_edge_event(Stream *s, bool end);
void udp_edge_event(Udp *u);

/* The task whose step runs in the calling thread (NULL outside steps). */
Task *running_task();

/* The calling thread's identity (pthread_self() on Unix: one load, where
 * a thread_local's address in a shared library costs a call). Inline on
 * Unix: every API call checks it. */
#ifdef _WIN32
const void *thread_token();
#else
inline const void *thread_token() {
  return reinterpret_cast<const void *>(pthread_self());
}
#endif
/* owner changes only by uva_loop_adopt, from another thread: read it as
 * an atomic (a plain load on the usual targets). */
inline bool on_owner(const Loop *l) {
  return __atomic_load_n(&l->owner, __ATOMIC_RELAXED) == thread_token();
}

/* version.cpp, error.cpp */
unsigned int version();
const char *version_string();
const char *err_name(int err); /* NULL if unknown */
const char *strerror(int err); /* NULL if unknown */
char *format_unknown(int err, char *buf, size_t len, const char *what);

/* loop.cpp */
int loop_new(Loop **out);
int loop_run(Loop *l, uva_run_mode mode);
int loop_stop(Loop *l);
int loop_set_wait_hooks(Loop *l, uva_callback_cb before, uva_callback_cb after,
                        void *data);
int loop_close(Loop *l);
void loop_release(Loop *l); /* any thread; frees with the last reference */
void loop_push_first(Loop *l, QNode *n); /* run queue was empty */
/* Append to the run queue (inline: it is on every task switch). The tail's
 * qnext is left stale: run_pass ends the list when it takes it, so a push
 * stores one link, not two. */
inline void loop_push(Loop *l, QNode *n) {
  if (l->runq_tail == nullptr) {
    loop_push_first(l, n);
  } else {
    l->runq_tail->qnext = n;
    l->runq_tail = n;
  }
}
void alive_inc(Loop *l);
void alive_dec(Loop *l);
int loop_post(Loop *l, XOpKind kind, void *p, uva_callback_cb cb);
int loop_call_soon(Loop *l, void (*fn)(Loop *, Call *), void *a, void *b,
                   void *c);
uint64_t now_ns();
void fire_due(Loop *l); /* move due heap entries to the run queue */

/* task.cpp */
int task_spawn(Task **out, Loop *l, uva_task_step_cb step, void *data,
               uva_free_cb dtor);
void task_run(Loop *l, Task *t); /* one step; called by the pass */
void task_timer_due(Loop *l, Task *t);
int task_yield(Task *t);
int task_sleep(Task *t, int64_t ms);
int task_join(Task *t, Task *other);
void task_wake_local(Task *t);
int task_wake(Task *t); /* any thread */
int task_cancel(Task *t);
int task_add_done(Task *t, uva_task_done_cb cb, void *data);
int task_remove_done(Task *t, uva_task_done_cb cb, void *data);
void task_set_ref(Task *t, bool ref);
void task_retain(Task *t);
void task_release(Task *t); /* any thread */
void task_destroy(Task *t); /* loop thread, refs == 0 */

Wait *wait_alloc(Loop *l, Task *task, Handle *on, WaitKind kind);
void wait_free(Loop *l, Wait *w); /* unlinks from the task's list only */

/* sync.cpp */
void sync_undo_waits(Loop *l, Task *t); /* withdraw/return all sync waits */
int sync_withdraw(Task *t, const void *obj); /* one of them; UVA_ENOENT */
void flag_check(Loop *l, Flag *f);           /* loop thread: a set arrived */
int event_new(Event **out, Loop *l);
void event_set(Event *e);
int event_wait(Event *e, Task *t);
int lock_new(Lock **out, Loop *l);
int lock_acquire(Lock *k, Task *t);
int lock_release(Lock *k);
int sem_new(Sem **out, Loop *l, int64_t value, int64_t bound);
int sem_acquire(Sem *s, Task *t);
int sem_release(Sem *s);
int queue_new(Queue **out, Loop *l, size_t maxsize, uva_free_cb item_dtor);
int queue_put(Queue *q, Task *t, void *item);
int queue_get(void **out, Queue *q, Task *t);
int queue_put_nowait(Queue *q, void *item);
int queue_get_nowait(void **out, Queue *q);
bool queue_full(const Queue *q);
int flag_new(Flag **out, Loop *l);
int flag_set(Flag *f);     /* any thread, async-signal-safe */
void flags_drain(Loop *l); /* loop thread: process flags set elsewhere */
int flag_wait(Flag *f, Task *t);
void sync_init(Sync *s, Loop *l, uint32_t magic);
void sync_close(Sync *s);
void sync_unref(Sync *s);
Wait *sync_find(Task *t, Sync *s);
int sync_enlist(Sync *s, Task *t, WaitKind kind); /* UVA_EAGAIN, ENOMEM */
void sync_drop(Wait *w);
void io_wake_all(Sync *s); /* wake every waiter, leaving them registered */

/* tls.cpp: TLS contexts, and TLS inside a stream (the hooks stream*.cpp
 * call when Stream::tls is set). Without OpenSSL the API calls return
 * UVA_ENOTSUP and the hooks are never reached. */
struct TlsCtx;
struct Tls;
bool tls_available();
int tls_ctx_new(TlsCtx **out, uva_tls_role role);
TlsCtx *tls_ctx_check(void *p, int *rc); /* NULL with *rc on a bad handle */
void tls_ctx_free(TlsCtx *c);            /* any thread */
int tls_ctx_set_verify(TlsCtx *c, int mode);
int tls_ctx_set_verify_flags(TlsCtx *c, int flags);
int tls_ctx_load_ca(TlsCtx *c, const char *file, const char *dir);
int tls_ctx_load_ca_pem(TlsCtx *c, const void *pem, size_t len);
int tls_ctx_use_cert_file(TlsCtx *c, const char *chain, const char *key,
                          const char *password);
int tls_ctx_use_cert_pem(TlsCtx *c, const void *chain, size_t chain_len,
                         const void *key, size_t key_len, const char *password);
int tls_ctx_set_versions(TlsCtx *c, int min, int max);
int tls_ctx_set_ciphers(TlsCtx *c, const char *tls12, const char *tls13);
int tls_ctx_set_alpn(TlsCtx *c, const char *const *protos, size_t count);
int tls_ctx_set_session_cache(TlsCtx *c, size_t size);
int tls_start(Stream *s, TlsCtx *c, const char *server_name);
int tls_handshake(Stream *s, Task *t);
int tls_io_blocked(Stream *s); /* 0 once reads and writes may go */
/* The read engines' hooks: decrypt into buf, receiving ciphertext as
 * needed (replaces the plain read from the kernel); the kernel has new
 * bytes (edge event); the libuv engine's room for ciphertext, what it
 * read into it, and the kernel's end (0) or error. */
size_t tls_read_into(Stream *s, char *buf, size_t len);
void tls_kernel_more(Stream *s);
uv_buf_t tls_cipher_room(Stream *s);
void tls_feed(Stream *s, const char *data, size_t n);
void tls_kernel_end(Stream *s, int err);
int tls_write(size_t *queued, Stream *s, const uva_buf_t *bufs, size_t nbufs);
void tls_close_notify(Stream *s); /* once, before shutdown or close */
void tls_free(Stream *s);
int tls_version(int *out, Stream *s);
int tls_alpn(Stream *s, char *buf, size_t buflen);
int tls_cipher(Stream *s, char *buf, size_t buflen);
int tls_server_name(Stream *s, char *buf, size_t buflen);
int tls_peer_cert(size_t *len, Stream *s, void *buf, size_t buflen);
int tls_verify_result(int *code, Stream *s, char *buf, size_t buflen);
int tls_error_text(Stream *s, char *buf, size_t buflen);
int tls_session_reused(int *out, Stream *s);

/* stream*.cpp, udp.cpp, poll.cpp */
/* The plain write (TLS hands its records to it) and the start of reading
 * if there is room (stream.cpp). */
int stream_write_raw(size_t *queued, Stream *s, const void *buf, size_t len);
void stream_maybe_read(Stream *s);
void io_destroy(Sync *s); /* free an I/O object's own memory */
void stream_waiter_gone(Stream *s);
int addr_format(const struct sockaddr *sa, char *host, size_t hostlen,
                int *port);
int addr_parse(struct sockaddr_storage *out, const char *host, int port);
int tcp_connect(Stream **out, Loop *l, const char *host, int port);
int pipe_connect(Stream **out, Loop *l, const char *path);
int stream_wait_connected(Stream *s, Task *t);
int stream_open_fd(Stream **out, Loop *l, int fd);
int stream_set(Stream *s, uva_stream_option option, size_t value);
int stream_read(size_t *nread, Stream *s, Task *t, void *buf, size_t len,
                void *spill, size_t spill_len);
size_t stream_read_hint(Stream *s);
int stream_read_exactly(Stream *s, Task *t, void *buf, size_t n);
int stream_peek(const void **data, size_t *len, Stream *s, Task *t);
int stream_consume(Stream *s, size_t n);
int stream_read_line(size_t *len, Stream *s, Task *t, void *buf, size_t buflen);
int stream_read_until(size_t *len, Stream *s, Task *t, const char *sep,
                      size_t seplen, void *buf, size_t buflen);
int stream_read_to_eof(size_t *len, Stream *s, Task *t);
int stream_read_state(Stream *s);
void stream_feed_eof(Stream *s);
int stream_write(size_t *queued, Stream *s, const void *buf, size_t len);
int stream_writev(size_t *queued, Stream *s, const uva_buf_t *bufs,
                  size_t nbufs, size_t total);
int stream_fileno(int *fd, Stream *s);
/* A sendfile may start on the stream: its descriptor in *fd, the bytes
 * queued before it handed to libuv; *now is false while they are in
 * flight (the job is then held, and started once they left). */
int stream_sendfile_prepare(Stream *s, int *fd, bool *now);
/* Its job ended with `result` after `sent` bytes. */
void stream_sendfile_end(Stream *s, int result, int64_t sent);
int fs_sendfile(Work **out, Stream *s, int in_fd, int64_t offset, size_t len);
int stream_drain(Stream *s, Task *t);
int stream_write_drain(Stream *s, Task *t, const void *buf, size_t len);
int stream_shutdown(Stream *s, Task *t);
int stream_address(Stream *s, bool peer, char *host, size_t hostlen, int *port);
int stream_close(Stream *s, uva_stream_close_cb cb, void *data, bool abort);
int tcp_listen(Server **out, Loop *l, const char *host, int port, int backlog);
int pipe_listen(Server **out, Loop *l, const char *path, int backlog);
int server_accept(Stream **out, Server *sv, Task *t);
void server_on_connection(Server *sv, uva_server_connection_cb cb, void *data);
int server_address(Server *sv, char *host, size_t hostlen, int *port);
void server_close(Server *sv, uva_server_close_cb cb, void *data);
int udp_new(Udp **out, Loop *l);
int udp_bind(Udp *u, const char *host, int port);
int udp_connect(Udp *u, const char *host, int port);
int udp_set(Udp *u, uva_stream_option option, size_t value);
int udp_send(Udp *u, const void *buf, size_t len, const char *host, int port);
int udp_recv(size_t *len, Udp *u, Task *t, void *buf, size_t buflen, char *host,
             size_t hostlen, int *port);
int udp_local_address(Udp *u, char *host, size_t hostlen, int *port);
int udp_fileno(int *fd, Udp *u);
void udp_close(Udp *u, uva_udp_close_cb cb, void *data);
int poll_new(Poll **out, Loop *l, int fd);
int poll_wait(int *revents, Poll *p, Task *t, int events);
void poll_close(Poll *p, uva_poll_close_cb cb, void *data);
/* Whether a poll that is not closed holds fd (and its file is still
 * open under that number); a poll whose file is gone no longer does. */
bool poll_holds(Loop *l, int fd);
Stream *stream_reserve(Loop *l); /* a pipe's stream, before its fd */
int stream_open_pipe(Stream *s, int fd);

/* process.cpp */
int process_spawn(Process **out, Loop *l, const uva_process_options_t *o);
int process_stream(Stream **out, Process *p, int fd);
int process_wait(int64_t *exit_status, int *term_signal, Process *p, Task *t);
int process_kill(Process *p, int signum);
void process_close(Process *p, uva_process_close_cb cb, void *data);
void process_hand_off(Loop *l); /* loop_close: children to the reaper */

/* signal.cpp */
int signal_new(Signal **out, Loop *l, int signum);
int signal_wait(uint64_t *count, Signal *s, Task *t);
void signal_on_signal(Signal *s, uva_signal_cb cb, void *data);
void signal_close(Signal *s, uva_signal_close_cb cb, void *data);

/* timer.cpp */
constexpr int64_t MAX_DELAY_MS = int64_t(1) << 40;
int timer_new(Timer **out, Loop *l, uva_timer_cb cb, void *data,
              uva_free_cb dtor);
int timer_start(Timer *t, int64_t timeout_ms, int64_t repeat_ms);
void timer_stop(Timer *t);
void timer_close(Timer *t, uva_timer_close_cb cb);
void timer_run(Loop *l, Timer *t); /* it reached the front of the run queue */
void timer_due(Loop *l, Timer *t);
void timer_set_ref(Timer *t, bool ref);
long ticks_ms();
long ticks_add(long ticks, long delta);
long ticks_diff(long a, long b);

}  // namespace detail
}  // namespace uva

#endif /* UVASYNC_INTERNAL_H */
