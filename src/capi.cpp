/* uvasync — the extern "C" boundary: the only file that defines uva_*.
 *
 * Each function validates its arguments (NULL, handle kind, closed state,
 * owning thread), calls into uva::detail, and converts any C++ exception to
 * an error code, so nothing unwinds into the caller.
 */
#include "internal.h"

#include <cstring>
#include <new>

using namespace uva::detail;

#define API_BEGIN try {
#define API_END                    \
  }                                \
  catch (const std::bad_alloc &) { \
    return UVA_ENOMEM;             \
  }                                \
  catch (...) {                    \
    return UVA_EINTERNAL;          \
  }

/* Validation, in the order the header documents: NULL, kind, thread. */
static inline int check_loop(const void *p) {
  if (p == nullptr) return UVA_EINVAL;
  const Loop *l = static_cast<const Loop *>(p);
  if (l->magic != MAGIC_LOOP)
    return l->magic == MAGIC_LOOP_CLOSED ? UVA_ECLOSED : UVA_EHANDLEKIND;
  if (!on_owner(l)) return UVA_EWRONGTHREAD;
  return 0;
}

/* For the loop calls that any thread may make: the owner's close rewrites
 * the magic meanwhile, so it is read atomically. A loop seen open here may
 * still be closing; the call itself checks the loop's door. */
static inline int check_loop_any_thread(const void *p) {
  if (p == nullptr) return UVA_EINVAL;
  uint32_t magic =
      __atomic_load_n(&static_cast<const Loop *>(p)->magic, __ATOMIC_RELAXED);
  if (magic == MAGIC_LOOP_CLOSED) return UVA_ECLOSED;
  if (magic != MAGIC_LOOP) return UVA_EHANDLEKIND;
  return 0;
}

static inline int check_task(const void *p, bool owner_thread = true) {
  if (p == nullptr) return UVA_EINVAL;
  const Task *t = static_cast<const Task *>(p);
  if (t->magic != MAGIC_TASK) return UVA_EHANDLEKIND;
  if (owner_thread && !on_owner(t->loop)) return UVA_EWRONGTHREAD;
  return 0;
}

static inline int check_timer(const void *p) {
  if (p == nullptr) return UVA_EINVAL;
  const Timer *t = static_cast<const Timer *>(p);
  if (t->magic != MAGIC_TIMER) return UVA_EHANDLEKIND;
  if (!on_owner(t->loop)) return UVA_EWRONGTHREAD;
  if (state_of(t) == TimerState::CLOSING) return UVA_ECLOSED;
  return 0;
}

/* A C caller may pass any int for an enum parameter (a C enum is an int),
 * but in C++ a value outside the enumerators' range is undefined behaviour
 * (UBSan's -fsanitize=enum reports the load): look at the bits, not at the
 * enum, until the value is known to be valid. */
template <class E>
static inline int enum_bits(const E &e) {
  static_assert(sizeof(E) == sizeof(int), "C enums are int-sized here");
  int v;
  std::memcpy(&v, &e, sizeof v);
  return v;
}

static inline bool valid_option(int o) {
  return o >= UVA_STREAM_HIGH_WATER && o <= UVA_STREAM_NODELAY;
}

#define CHECK(expr)                       \
  do {                                    \
    int check_rc_ = (expr);               \
    if (check_rc_ != 0) return check_rc_; \
  } while (0)

/* The core's object behind each opaque handle of the API: as_<noun>
 * turns a uva_<noun>_t pointer into the object it is (checked first by
 * the check_* helpers below). */
static inline Loop *as_loop(uva_loop_t *p) {
  return static_cast<Loop *>(static_cast<void *>(p));
}
static inline Task *as_task(uva_task_t *p) {
  return static_cast<Task *>(static_cast<void *>(p));
}
static inline Timer *as_timer(uva_timer_t *p) {
  return static_cast<Timer *>(static_cast<void *>(p));
}
static inline Event *as_event(uva_event_t *p) {
  return static_cast<Event *>(static_cast<void *>(p));
}
static inline Lock *as_lock(uva_lock_t *p) {
  return static_cast<Lock *>(static_cast<void *>(p));
}
static inline Sem *as_sem(uva_sem_t *p) {
  return static_cast<Sem *>(static_cast<void *>(p));
}
static inline Queue *as_queue(uva_queue_t *p) {
  return static_cast<Queue *>(static_cast<void *>(p));
}
static inline Flag *as_flag(uva_flag_t *p) {
  return static_cast<Flag *>(static_cast<void *>(p));
}
static inline Stream *as_stream(uva_stream_t *p) {
  return static_cast<Stream *>(static_cast<void *>(p));
}
static inline Server *as_server(uva_server_t *p) {
  return static_cast<Server *>(static_cast<void *>(p));
}
static inline Udp *as_udp(uva_udp_t *p) {
  return static_cast<Udp *>(static_cast<void *>(p));
}
static inline Poll *as_poll(uva_poll_t *p) {
  return static_cast<Poll *>(static_cast<void *>(p));
}
static inline Process *as_process(uva_process_t *p) {
  return static_cast<Process *>(static_cast<void *>(p));
}
static inline Signal *as_signal(uva_signal_t *p) {
  return static_cast<Signal *>(static_cast<void *>(p));
}
static inline Work *as_work(uva_work_t *p) {
  return static_cast<Work *>(static_cast<void *>(p));
}

/* NULL, kind, thread; closed objects are refused unless `closed_ok` (the
 * wait calls, whose repeated call must see UVA_ECLOSED from the core). */
static inline int check_sync(const void *p, uint32_t magic,
                             bool closed_ok = false) {
  if (p == nullptr) return UVA_EINVAL;
  const Sync *s = static_cast<const Sync *>(p);
  if (s->magic != magic) return UVA_EHANDLEKIND;
  if (!on_owner(s->loop)) return UVA_EWRONGTHREAD;
  if (!closed_ok && (s->flags & F_CLOSING)) return UVA_ECLOSED;
  return 0;
}

/* A `task` argument of NULL names the task whose step is running in the
 * calling thread (bindings then need not track it). */
static inline int resolve_task(uva_task_t *&task) {
  if (task == nullptr) {
    task = reinterpret_cast<uva_task_t *>(running_task());
    if (task == nullptr) return UVA_EINVAL;
  }
  return check_task(task);
}

/* The waiting task must be a live task of the object's loop. Called after
 * the object's checks: a task of the same loop is on the owner thread
 * already, so only another loop's task needs the thread check (which
 * check_task makes first, as for any task argument). */
static inline int check_waiter(const void *obj, uva_task_t *&task) {
  if (task == nullptr) {
    task = reinterpret_cast<uva_task_t *>(running_task());
    if (task == nullptr) return UVA_EINVAL;
  }
  const Task *t = as_task(task);
  if (t->magic != MAGIC_TASK) return UVA_EHANDLEKIND;
  if (t->loop != static_cast<const Sync *>(obj)->loop) {
    CHECK(check_task(task));
    return UVA_EINVAL;
  }
  if (state_of(t) == TaskState::DONE) return UVA_EINVAL;
  return 0;
}

/* As check_waiter, for the sync objects' waits, which also take NULL
 * outside a step: no task, and task stays NULL (see no_task_wait). */
static inline int check_sync_waiter(const void *obj, uva_task_t *&task) {
  if (task == nullptr && running_task() == nullptr) return 0;
  return check_waiter(obj, task);
}

/* A sync wait with no task (NULL outside a step): what can complete at once
 * completes, as for a task; what would have to wait has no task to
 * register, UVA_EINVAL. */
static int no_task_wait(Sync *s, void **out, void *item) {
  if (s->flags & F_CLOSING) return UVA_ECLOSED;
  switch (s->magic) {
    case MAGIC_EVENT:
      return static_cast<Event *>(s)->is_set ? 0 : UVA_EINVAL;
    case MAGIC_LOCK: { /* unlocked implies nobody waits */
      Lock *k = static_cast<Lock *>(s);
      if (k->locked) return UVA_EINVAL;
      k->locked = true;
      return 0;
    }
    case MAGIC_SEM: { /* a positive count implies nobody waits */
      Sem *m = static_cast<Sem *>(s);
      if (m->value <= 0) return UVA_EINVAL;
      m->value--;
      return 0;
    }
    case MAGIC_QUEUE: {
      Queue *q = static_cast<Queue *>(s);
      int rc =
          out != nullptr ? queue_get_nowait(out, q) : queue_put_nowait(q, item);
      return rc == UVA_EQUEUEEMPTY || rc == UVA_EQUEUEFULL ? UVA_EINVAL : rc;
    }
    case MAGIC_FLAG: {
      Flag *f = static_cast<Flag *>(s);
      if (f->waiters != nullptr) return UVA_EBUSY;
      return f->set.exchange(0) != 0 ? 0 : UVA_EINVAL;
    }
    default:
      return UVA_EINVAL;
  }
}

#define NO_TASK_WAIT(obj, out, item)                                     \
  do {                                                                   \
    if (task == nullptr)                                                 \
      return no_task_wait(static_cast<Sync *>(static_cast<void *>(obj)), \
                          (out), (item));                                \
  } while (0)

static int close_sync(void *p, uint32_t magic) {
  if (p == nullptr) return 0;
  CHECK(check_sync(p, magic, true));
  sync_close(static_cast<Sync *>(p));
  return 0;
}

/* new() for every primitive: checks, then the kind's constructor. */
template <class Obj, class Out, class Make>
static int new_sync(Out **out, uva_loop_t *loop, Make make) {
  if (out == nullptr) return UVA_EINVAL;
  CHECK(check_loop(loop));
  Obj *obj;
  int rc = make(&obj, as_loop(loop));
  if (rc == 0) *out = reinterpret_cast<Out *>(obj);
  return rc;
}

extern "C" {

/* ---- version ------------------------------------------------------------ */

UVA_EXTERN unsigned int uva_version(void) { return uva::detail::version(); }

UVA_EXTERN const char *uva_version_string(void) {
  return uva::detail::version_string();
}

/* ---- errors ------------------------------------------------------------- */

static thread_local char unknown_buf[64];

UVA_EXTERN const char *uva_strerror(int err) {
  const char *s = uva::detail::strerror(err);
  return s != nullptr ? s
                      : format_unknown(err, unknown_buf, sizeof unknown_buf,
                                       "uvasync error");
}

UVA_EXTERN const char *uva_err_name(int err) {
  const char *s = uva::detail::err_name(err);
  return s != nullptr ? s
                      : format_unknown(err, unknown_buf, sizeof unknown_buf,
                                       "uvasync error");
}

static char *copy_out(const char *s, char *buf, size_t len) {
  if (buf == nullptr || len == 0) return buf;
  size_t n = std::strlen(s);
  if (n >= len) n = len - 1;
  std::memcpy(buf, s, n);
  buf[n] = '\0';
  return buf;
}

UVA_EXTERN char *uva_strerror_r(int err, char *buf, size_t buflen) {
  const char *s = uva::detail::strerror(err);
  if (s == nullptr) return format_unknown(err, buf, buflen, "uvasync error");
  return copy_out(s, buf, buflen);
}

UVA_EXTERN char *uva_err_name_r(int err, char *buf, size_t buflen) {
  const char *s = uva::detail::err_name(err);
  if (s == nullptr) return format_unknown(err, buf, buflen, "uvasync error");
  return copy_out(s, buf, buflen);
}

/* ---- loop --------------------------------------------------------------- */

UVA_EXTERN int uva_loop_new(uva_loop_t **out) {
  if (out == nullptr) return UVA_EINVAL;
  API_BEGIN
  Loop *l;
  int rc = loop_new(&l);
  if (rc == 0) *out = reinterpret_cast<uva_loop_t *>(l);
  return rc;
  API_END
}

UVA_EXTERN int uva_loop_run(uva_loop_t *loop, uva_run_mode mode) {
  CHECK(check_loop(loop));
  int m = enum_bits(mode);
  if (m != UVA_RUN_DEFAULT && m != UVA_RUN_ONCE && m != UVA_RUN_NOWAIT)
    return UVA_EINVAL;
  API_BEGIN
  return loop_run(as_loop(loop), static_cast<uva_run_mode>(m));
  API_END
}

UVA_EXTERN int uva_loop_stop(uva_loop_t *loop) {
  CHECK(check_loop_any_thread(loop));
  API_BEGIN
  return loop_stop(as_loop(loop));
  API_END
}

UVA_EXTERN int uva_loop_alive(int *out, uva_loop_t *loop) {
  if (out == nullptr) return UVA_EINVAL;
  CHECK(check_loop(loop));
  *out = as_loop(loop)->alive != 0;
  return 0;
}

UVA_EXTERN int uva_loop_now(uint64_t *out, uva_loop_t *loop) {
  if (out == nullptr) return UVA_EINVAL;
  CHECK(check_loop(loop));
  *out = now_ns() / 1000000u;
  return 0;
}

static void run_user_call(Loop *, Call *call) {
  reinterpret_cast<uva_callback_cb>(call->a)(call->b);
}

UVA_EXTERN int uva_loop_call_soon(uva_loop_t *loop, uva_callback_cb cb,
                                  void *data) {
  CHECK(check_loop(loop));
  if (cb == nullptr) return UVA_EINVAL;
  API_BEGIN
  return loop_call_soon(as_loop(loop), run_user_call,
                        reinterpret_cast<void *>(cb), data, nullptr);
  API_END
}

UVA_EXTERN int uva_loop_call_soon_threadsafe(uva_loop_t *loop,
                                             uva_callback_cb cb, void *data) {
  if (cb == nullptr) return UVA_EINVAL;
  CHECK(check_loop_any_thread(loop));
  API_BEGIN
  return loop_post(as_loop(loop), X_CALL, data, cb);
  API_END
}

UVA_EXTERN int uva_loop_adopt(uva_loop_t *loop) {
  int rc = check_loop_any_thread(loop);
  if (rc != 0) return rc;
  Loop *l = as_loop(loop);
  if (__atomic_load_n(&l->running, __ATOMIC_RELAXED)) return UVA_ERUNNING;
  __atomic_store_n(&l->owner, thread_token(), __ATOMIC_RELAXED);
  return 0;
}

UVA_EXTERN int uva_loop_retain(uva_loop_t *loop) {
  int rc = check_loop_any_thread(loop);
  if (rc != 0 && rc != UVA_ECLOSED) return rc;
  as_loop(loop)->refs.fetch_add(1, std::memory_order_relaxed);
  return 0;
}

UVA_EXTERN int uva_loop_release(uva_loop_t *loop) {
  if (loop == nullptr) return 0;
  int rc = check_loop_any_thread(loop);
  if (rc != 0 && rc != UVA_ECLOSED) return rc;
  loop_release(as_loop(loop));
  return 0;
}

UVA_EXTERN int uva_loop_set_data(uva_loop_t *loop, void *data,
                                 uva_free_cb dtor) {
  CHECK(check_loop(loop));
  as_loop(loop)->data = data;
  as_loop(loop)->dtor = dtor;
  return 0;
}

UVA_EXTERN int uva_loop_set_wait_hooks(uva_loop_t *loop, uva_callback_cb before,
                                       uva_callback_cb after, void *data) {
  CHECK(check_loop(loop));
  return loop_set_wait_hooks(as_loop(loop), before, after, data);
}

UVA_EXTERN int uva_loop_get_data(void **out, uva_loop_t *loop) {
  if (out == nullptr) return UVA_EINVAL;
  CHECK(check_loop(loop));
  *out = as_loop(loop)->data;
  return 0;
}

UVA_EXTERN int uva_loop_close(uva_loop_t *loop) {
  if (loop == nullptr) return 0;
  int rc = check_loop(loop);
  if (rc == UVA_ECLOSED) return 0; /* a retained loop closed before */
  CHECK(rc);
  API_BEGIN
  return loop_close(as_loop(loop));
  API_END
}

/* ---- task --------------------------------------------------------------- */

UVA_EXTERN int uva_task_spawn(uva_task_t **out, uva_loop_t *loop,
                              uva_task_step_cb step, void *data,
                              uva_free_cb dtor) {
  CHECK(check_loop(loop));
  if (step == nullptr) return UVA_EINVAL;
  API_BEGIN
  Task *t;
  int rc = task_spawn(out != nullptr ? &t : nullptr, as_loop(loop), step, data,
                      dtor);
  if (rc == 0 && out != nullptr) *out = reinterpret_cast<uva_task_t *>(t);
  return rc;
  API_END
}

UVA_EXTERN int uva_task_yield(uva_task_t *task) {
  CHECK(resolve_task(task));
  return task_yield(as_task(task));
}

UVA_EXTERN int uva_task_sleep(uva_task_t *task, int64_t ms) {
  CHECK(resolve_task(task));
  API_BEGIN
  return task_sleep(as_task(task), ms);
  API_END
}

UVA_EXTERN int uva_task_join(uva_task_t *task, uva_task_t *other) {
  CHECK(resolve_task(task));
  CHECK(check_task(other));
  return task_join(as_task(task), as_task(other));
}

UVA_EXTERN int uva_task_wake(uva_task_t *task) {
  CHECK(check_task(task, false));
  API_BEGIN
  return task_wake(as_task(task));
  API_END
}

UVA_EXTERN int uva_task_cancel(uva_task_t *task) {
  CHECK(check_task(task));
  return task_cancel(as_task(task));
}

UVA_EXTERN int uva_task_withdraw(uva_task_t *task, const void *object) {
  CHECK(check_task(task));
  if (object == nullptr) return UVA_EINVAL;
  return sync_withdraw(as_task(task), object);
}

UVA_EXTERN int uva_task_add_done_cb(uva_task_t *task, uva_task_done_cb cb,
                                    void *data) {
  CHECK(check_task(task));
  if (cb == nullptr) return UVA_EINVAL;
  API_BEGIN
  return task_add_done(as_task(task), cb, data);
  API_END
}

UVA_EXTERN int uva_task_remove_done_cb(uva_task_t *task, uva_task_done_cb cb,
                                       void *data) {
  CHECK(check_task(task));
  if (cb == nullptr) return UVA_EINVAL;
  return task_remove_done(as_task(task), cb, data);
}

UVA_EXTERN int uva_task_done(int *out, uva_task_t *task) {
  if (out == nullptr) return UVA_EINVAL;
  CHECK(check_task(task));
  *out = state_of(as_task(task)) == TaskState::DONE;
  return 0;
}

UVA_EXTERN int uva_task_result(int *out, uva_task_t *task) {
  if (out == nullptr) return UVA_EINVAL;
  CHECK(check_task(task));
  if (state_of(as_task(task)) != TaskState::DONE) return UVA_EAGAIN;
  *out = as_task(task)->result;
  return 0;
}

UVA_EXTERN int uva_task_current(uva_task_t **out, uva_loop_t *loop) {
  if (out == nullptr) return UVA_EINVAL;
  CHECK(check_loop(loop));
  *out = reinterpret_cast<uva_task_t *>(as_loop(loop)->current);
  return 0;
}

UVA_EXTERN int uva_task_get_data(void **out, uva_task_t *task) {
  if (out == nullptr) return UVA_EINVAL;
  CHECK(check_task(task));
  *out = as_task(task)->data;
  return 0;
}

UVA_EXTERN int uva_task_get_loop(uva_loop_t **out, uva_task_t *task) {
  if (out == nullptr) return UVA_EINVAL;
  CHECK(check_task(task));
  *out = reinterpret_cast<uva_loop_t *>(as_task(task)->loop);
  return 0;
}

UVA_EXTERN int uva_task_ref(uva_task_t *task) {
  CHECK(check_task(task));
  task_set_ref(as_task(task), true);
  return 0;
}

UVA_EXTERN int uva_task_unref(uva_task_t *task) {
  CHECK(check_task(task));
  task_set_ref(as_task(task), false);
  return 0;
}

UVA_EXTERN int uva_task_retain(uva_task_t *task) {
  CHECK(check_task(task, false));
  task_retain(as_task(task));
  return 0;
}

UVA_EXTERN int uva_task_release(uva_task_t *task) {
  if (task == nullptr) return 0;
  CHECK(check_task(task, false));
  API_BEGIN
  task_release(as_task(task));
  return 0;
  API_END
}

/* ---- timer -------------------------------------------------------------- */

UVA_EXTERN int uva_timer_new(uva_timer_t **out, uva_loop_t *loop,
                             uva_timer_cb cb, void *data, uva_free_cb dtor) {
  if (out == nullptr) return UVA_EINVAL;
  CHECK(check_loop(loop));
  if (cb == nullptr) return UVA_EINVAL;
  API_BEGIN
  Timer *t;
  int rc = timer_new(&t, as_loop(loop), cb, data, dtor);
  if (rc == 0) *out = reinterpret_cast<uva_timer_t *>(t);
  return rc;
  API_END
}

UVA_EXTERN int uva_timer_start(uva_timer_t *timer, int64_t timeout_ms,
                               int64_t repeat_ms) {
  CHECK(check_timer(timer));
  API_BEGIN
  return timer_start(as_timer(timer), timeout_ms, repeat_ms);
  API_END
}

UVA_EXTERN int uva_timer_stop(uva_timer_t *timer) {
  CHECK(check_timer(timer));
  timer_stop(as_timer(timer));
  return 0;
}

UVA_EXTERN int uva_timer_active(int *out, uva_timer_t *timer) {
  if (out == nullptr) return UVA_EINVAL;
  CHECK(check_timer(timer));
  *out = timer_active(as_timer(timer));
  return 0;
}

UVA_EXTERN int uva_timer_get_data(void **out, uva_timer_t *timer) {
  if (out == nullptr) return UVA_EINVAL;
  CHECK(check_timer(timer));
  *out = as_timer(timer)->data;
  return 0;
}

UVA_EXTERN int uva_timer_ref(uva_timer_t *timer) {
  CHECK(check_timer(timer));
  timer_set_ref(as_timer(timer), true);
  return 0;
}

UVA_EXTERN int uva_timer_unref(uva_timer_t *timer) {
  CHECK(check_timer(timer));
  timer_set_ref(as_timer(timer), false);
  return 0;
}

UVA_EXTERN int uva_timer_close(uva_timer_t *timer,
                               uva_timer_close_cb close_cb) {
  if (timer == nullptr) return 0;
  int rc = check_timer(timer);
  if (rc == UVA_ECLOSED) return 0; /* a second close is a no-op */
  if (rc != 0) return rc;
  timer_close(as_timer(timer), close_cb);
  return 0;
}

/* ---- synchronisation ---------------------------------------------------- */

UVA_EXTERN int uva_event_new(uva_event_t **out, uva_loop_t *loop) {
  return new_sync<Event>(out, loop, event_new);
}

UVA_EXTERN int uva_event_set(uva_event_t *event) {
  CHECK(check_sync(event, MAGIC_EVENT));
  event_set(as_event(event));
  return 0;
}

UVA_EXTERN int uva_event_clear(uva_event_t *event) {
  CHECK(check_sync(event, MAGIC_EVENT));
  as_event(event)->is_set = false;
  return 0;
}

UVA_EXTERN int uva_event_is_set(int *out, uva_event_t *event) {
  if (out == nullptr) return UVA_EINVAL;
  CHECK(check_sync(event, MAGIC_EVENT));
  *out = as_event(event)->is_set;
  return 0;
}

UVA_EXTERN int uva_event_wait(uva_event_t *event, uva_task_t *task) {
  CHECK(check_sync(event, MAGIC_EVENT, true));
  CHECK(check_sync_waiter(event, task));
  NO_TASK_WAIT(event, nullptr, nullptr);
  return event_wait(as_event(event), as_task(task));
}

UVA_EXTERN int uva_event_close(uva_event_t *event) {
  return close_sync(event, MAGIC_EVENT);
}

UVA_EXTERN int uva_lock_new(uva_lock_t **out, uva_loop_t *loop) {
  return new_sync<Lock>(out, loop, lock_new);
}

UVA_EXTERN int uva_lock_acquire(uva_lock_t *lock, uva_task_t *task) {
  CHECK(check_sync(lock, MAGIC_LOCK, true));
  CHECK(check_sync_waiter(lock, task));
  NO_TASK_WAIT(lock, nullptr, nullptr);
  return lock_acquire(as_lock(lock), as_task(task));
}

UVA_EXTERN int uva_lock_try_acquire(uva_lock_t *lock) {
  CHECK(check_sync(lock, MAGIC_LOCK));
  if (as_lock(lock)->locked) return UVA_EBUSY;
  as_lock(lock)->locked = true;
  return 0;
}

UVA_EXTERN int uva_lock_release(uva_lock_t *lock) {
  CHECK(check_sync(lock, MAGIC_LOCK));
  return lock_release(as_lock(lock));
}

UVA_EXTERN int uva_lock_locked(int *out, uva_lock_t *lock) {
  if (out == nullptr) return UVA_EINVAL;
  CHECK(check_sync(lock, MAGIC_LOCK));
  *out = as_lock(lock)->locked;
  return 0;
}

UVA_EXTERN int uva_lock_close(uva_lock_t *lock) {
  return close_sync(lock, MAGIC_LOCK);
}

UVA_EXTERN int uva_sem_new(uva_sem_t **out, uva_loop_t *loop, int64_t value,
                           int64_t bound) {
  if (value < 0 || bound < 0 || (bound > 0 && value > bound)) return UVA_EINVAL;
  return new_sync<Sem>(
      out, loop, [=](Sem **s, Loop *l) { return sem_new(s, l, value, bound); });
}

UVA_EXTERN int uva_sem_acquire(uva_sem_t *sem, uva_task_t *task) {
  CHECK(check_sync(sem, MAGIC_SEM, true));
  CHECK(check_sync_waiter(sem, task));
  NO_TASK_WAIT(sem, nullptr, nullptr);
  return sem_acquire(as_sem(sem), as_task(task));
}

UVA_EXTERN int uva_sem_try_acquire(uva_sem_t *sem) {
  CHECK(check_sync(sem, MAGIC_SEM));
  if (as_sem(sem)->value <= 0) return UVA_EBUSY;
  as_sem(sem)->value--;
  return 0;
}

UVA_EXTERN int uva_sem_release(uva_sem_t *sem) {
  CHECK(check_sync(sem, MAGIC_SEM));
  return sem_release(as_sem(sem));
}

UVA_EXTERN int uva_sem_value(int64_t *out, uva_sem_t *sem) {
  if (out == nullptr) return UVA_EINVAL;
  CHECK(check_sync(sem, MAGIC_SEM));
  *out = as_sem(sem)->value;
  return 0;
}

UVA_EXTERN int uva_sem_close(uva_sem_t *sem) {
  return close_sync(sem, MAGIC_SEM);
}

UVA_EXTERN int uva_queue_new(uva_queue_t **out, uva_loop_t *loop,
                             size_t maxsize, uva_free_cb item_dtor) {
  return new_sync<Queue>(out, loop, [=](Queue **q, Loop *l) {
    return queue_new(q, l, maxsize, item_dtor);
  });
}

UVA_EXTERN int uva_queue_put(uva_queue_t *queue, uva_task_t *task, void *item) {
  CHECK(check_sync(queue, MAGIC_QUEUE, true));
  CHECK(check_sync_waiter(queue, task));
  NO_TASK_WAIT(queue, nullptr, item);
  return queue_put(as_queue(queue), as_task(task), item);
}

UVA_EXTERN int uva_queue_get(void **out, uva_queue_t *queue, uva_task_t *task) {
  if (out == nullptr) return UVA_EINVAL;
  CHECK(check_sync(queue, MAGIC_QUEUE, true));
  CHECK(check_sync_waiter(queue, task));
  NO_TASK_WAIT(queue, out, nullptr);
  return queue_get(out, as_queue(queue), as_task(task));
}

UVA_EXTERN int uva_queue_put_nowait(uva_queue_t *queue, void *item) {
  CHECK(check_sync(queue, MAGIC_QUEUE));
  return queue_put_nowait(as_queue(queue), item);
}

UVA_EXTERN int uva_queue_get_nowait(void **out, uva_queue_t *queue) {
  if (out == nullptr) return UVA_EINVAL;
  CHECK(check_sync(queue, MAGIC_QUEUE));
  return queue_get_nowait(out, as_queue(queue));
}

UVA_EXTERN int uva_queue_size(size_t *out, uva_queue_t *queue) {
  if (out == nullptr) return UVA_EINVAL;
  CHECK(check_sync(queue, MAGIC_QUEUE));
  /* The items a get can take: */
  *out = as_queue(queue)->size - as_queue(queue)->claimed;
  return 0;
}

UVA_EXTERN int uva_queue_empty(int *out, uva_queue_t *queue) {
  if (out == nullptr) return UVA_EINVAL;
  CHECK(check_sync(queue, MAGIC_QUEUE));
  *out = as_queue(queue)->size == as_queue(queue)->claimed;
  return 0;
}

UVA_EXTERN int uva_queue_full(int *out, uva_queue_t *queue) {
  if (out == nullptr) return UVA_EINVAL;
  CHECK(check_sync(queue, MAGIC_QUEUE));
  *out = queue_full(as_queue(queue));
  return 0;
}

UVA_EXTERN int uva_queue_close(uva_queue_t *queue) {
  return close_sync(queue, MAGIC_QUEUE);
}

UVA_EXTERN int uva_flag_new(uva_flag_t **out, uva_loop_t *loop) {
  return new_sync<Flag>(out, loop, flag_new);
}

UVA_EXTERN int uva_flag_set(uva_flag_t *flag) {
  /* No thread check and no allocation: this runs in signal handlers. */
  if (flag == nullptr) return UVA_EINVAL;
  if (as_flag(flag)->magic != MAGIC_FLAG) return UVA_EHANDLEKIND;
  return flag_set(as_flag(flag));
}

UVA_EXTERN int uva_flag_wait(uva_flag_t *flag, uva_task_t *task) {
  CHECK(check_sync(flag, MAGIC_FLAG, true));
  CHECK(check_sync_waiter(flag, task));
  NO_TASK_WAIT(flag, nullptr, nullptr);
  return flag_wait(as_flag(flag), as_task(task));
}

UVA_EXTERN int uva_flag_close(uva_flag_t *flag) {
  return close_sync(flag, MAGIC_FLAG);
}

/* ---- streams, servers, UDP, poll ---------------------------------------- */

/* I/O objects report their closed state themselves (UVA_ECLOSED). */
#define CHECK_IO(p, m) CHECK(check_sync(p, m, true))
#define CHECK_IO_WAITER(p, m, t) \
  do {                           \
    CHECK_IO(p, m);              \
    CHECK(check_waiter(p, t));   \
  } while (0)

UVA_EXTERN int uva_tcp_connect(uva_stream_t **out, uva_loop_t *loop,
                               const char *host, int port) {
  if (out == nullptr || host == nullptr) return UVA_EINVAL;
  return new_sync<Stream>(out, loop, [=](Stream **s, Loop *l) {
    return tcp_connect(s, l, host, port);
  });
}

UVA_EXTERN int uva_pipe_connect(uva_stream_t **out, uva_loop_t *loop,
                                const char *path) {
  if (out == nullptr || path == nullptr) return UVA_EINVAL;
  return new_sync<Stream>(
      out, loop, [=](Stream **s, Loop *l) { return pipe_connect(s, l, path); });
}

UVA_EXTERN int uva_stream_wait_connected(uva_stream_t *stream,
                                         uva_task_t *task) {
  CHECK_IO_WAITER(stream, MAGIC_STREAM, task);
  API_BEGIN
  return stream_wait_connected(as_stream(stream), as_task(task));
  API_END
}

UVA_EXTERN int uva_stream_open_fd(uva_stream_t **out, uva_loop_t *loop,
                                  int fd) {
  return new_sync<Stream>(
      out, loop, [=](Stream **s, Loop *l) { return stream_open_fd(s, l, fd); });
}

UVA_EXTERN int uva_stream_set(uva_stream_t *stream, uva_stream_option option,
                              size_t value) {
  CHECK_IO(stream, MAGIC_STREAM);
  int o = enum_bits(option);
  if (!valid_option(o)) return UVA_EINVAL;
  return stream_set(as_stream(stream), static_cast<uva_stream_option>(o),
                    value);
}

UVA_EXTERN int uva_stream_read(size_t *nread, uva_stream_t *stream,
                               uva_task_t *task, void *buf, size_t len) {
  if (nread == nullptr || (buf == nullptr && len > 0)) return UVA_EINVAL;
  CHECK_IO_WAITER(stream, MAGIC_STREAM, task);
  API_BEGIN
  return stream_read(nread, as_stream(stream), as_task(task), buf, len, nullptr,
                     0);
  API_END
}

UVA_EXTERN int uva_stream_read_spill(size_t *nread, uva_stream_t *stream,
                                     uva_task_t *task, void *buf, size_t len,
                                     void *spill, size_t spill_len) {
  if (nread == nullptr || (buf == nullptr && len > 0) ||
      (spill == nullptr && spill_len > 0) || len > SIZE_MAX - spill_len)
    return UVA_EINVAL;
  CHECK_IO_WAITER(stream, MAGIC_STREAM, task);
  API_BEGIN
  return stream_read(nread, as_stream(stream), as_task(task), buf, len, spill,
                     spill_len);
  API_END
}

UVA_EXTERN int uva_stream_read_hint(size_t *out, uva_stream_t *stream) {
  if (out == nullptr) return UVA_EINVAL;
  CHECK_IO(stream, MAGIC_STREAM);
  *out = stream_read_hint(as_stream(stream));
  return 0;
}

UVA_EXTERN int uva_stream_peek(const void **data, size_t *len,
                               uva_stream_t *stream, uva_task_t *task) {
  if (data == nullptr || len == nullptr) return UVA_EINVAL;
  CHECK_IO_WAITER(stream, MAGIC_STREAM, task);
  API_BEGIN
  return stream_peek(data, len, as_stream(stream), as_task(task));
  API_END
}

UVA_EXTERN int uva_stream_consume(uva_stream_t *stream, size_t n) {
  CHECK_IO(stream, MAGIC_STREAM);
  return stream_consume(as_stream(stream), n);
}

UVA_EXTERN int uva_stream_read_exactly(uva_stream_t *stream, uva_task_t *task,
                                       void *buf, size_t n) {
  if (buf == nullptr && n > 0) return UVA_EINVAL;
  CHECK_IO_WAITER(stream, MAGIC_STREAM, task);
  API_BEGIN
  return stream_read_exactly(as_stream(stream), as_task(task), buf, n);
  API_END
}

UVA_EXTERN int uva_stream_read_line(size_t *len, uva_stream_t *stream,
                                    uva_task_t *task, void *buf,
                                    size_t buflen) {
  if (len == nullptr || (buf == nullptr && buflen > 0)) return UVA_EINVAL;
  CHECK_IO_WAITER(stream, MAGIC_STREAM, task);
  API_BEGIN
  return stream_read_line(len, as_stream(stream), as_task(task), buf, buflen);
  API_END
}

UVA_EXTERN int uva_stream_read_until(size_t *len, uva_stream_t *stream,
                                     uva_task_t *task, const void *sep,
                                     size_t seplen, void *buf, size_t buflen) {
  if (len == nullptr || sep == nullptr || seplen == 0 ||
      (buf == nullptr && buflen > 0))
    return UVA_EINVAL;
  CHECK_IO_WAITER(stream, MAGIC_STREAM, task);
  API_BEGIN
  return stream_read_until(len, as_stream(stream), as_task(task),
                           static_cast<const char *>(sep), seplen, buf, buflen);
  API_END
}

UVA_EXTERN int uva_stream_read_state(int *state, uva_stream_t *stream) {
  if (state == nullptr) return UVA_EINVAL;
  CHECK_IO(stream, MAGIC_STREAM);
  *state = stream_read_state(as_stream(stream));
  return 0;
}

UVA_EXTERN int uva_stream_feed_eof(uva_stream_t *stream) {
  CHECK_IO(stream, MAGIC_STREAM);
  stream_feed_eof(as_stream(stream));
  return 0;
}

UVA_EXTERN int uva_stream_read_to_eof(size_t *len, uva_stream_t *stream,
                                      uva_task_t *task) {
  if (len == nullptr) return UVA_EINVAL;
  CHECK_IO_WAITER(stream, MAGIC_STREAM, task);
  API_BEGIN
  return stream_read_to_eof(len, as_stream(stream), as_task(task));
  API_END
}

UVA_EXTERN int uva_stream_buffered(size_t *out, uva_stream_t *stream) {
  if (out == nullptr) return UVA_EINVAL;
  CHECK_IO(stream, MAGIC_STREAM);
  *out = as_stream(stream)->rlen;
  return 0;
}

UVA_EXTERN int uva_stream_write(size_t *queued, uva_stream_t *stream,
                                const void *buf, size_t len) {
  if (buf == nullptr && len > 0) return UVA_EINVAL;
  if (len > UINT32_MAX) return UVA_EINVAL; /* libuv buffers are 32-bit */
  CHECK_IO(stream, MAGIC_STREAM);
  return stream_write(queued, as_stream(stream), buf, len);
}

UVA_EXTERN int uva_stream_writev(size_t *queued, uva_stream_t *stream,
                                 const uva_buf_t *bufs, size_t nbufs) {
  if (bufs == nullptr && nbufs > 0) return UVA_EINVAL;
  size_t total = 0;
  for (size_t i = 0; i < nbufs; i++) {
    if (bufs[i].base == nullptr && bufs[i].len > 0) return UVA_EINVAL;
    /* libuv buffers are 32-bit: the queued copy must fit one */
    if (bufs[i].len > UINT32_MAX - total) return UVA_EINVAL;
    total += bufs[i].len;
  }
  CHECK_IO(stream, MAGIC_STREAM);
  API_BEGIN
  return stream_writev(queued, as_stream(stream), bufs, nbufs, total);
  API_END
}

UVA_EXTERN int uva_stream_fileno(int *fd, uva_stream_t *stream) {
  if (fd == nullptr) return UVA_EINVAL;
  CHECK_IO(stream, MAGIC_STREAM);
  return stream_fileno(fd, as_stream(stream));
}

UVA_EXTERN int uva_stream_drain(uva_stream_t *stream, uva_task_t *task) {
  CHECK_IO_WAITER(stream, MAGIC_STREAM, task);
  API_BEGIN
  return stream_drain(as_stream(stream), as_task(task));
  API_END
}

UVA_EXTERN int uva_stream_write_drain(uva_stream_t *stream, uva_task_t *task,
                                      const void *buf, size_t len) {
  if ((buf == nullptr && len > 0) || len > UINT32_MAX) return UVA_EINVAL;
  CHECK_IO_WAITER(stream, MAGIC_STREAM, task);
  API_BEGIN
  return stream_write_drain(as_stream(stream), as_task(task), buf, len);
  API_END
}

UVA_EXTERN int uva_stream_shutdown(uva_stream_t *stream, uva_task_t *task) {
  CHECK_IO_WAITER(stream, MAGIC_STREAM, task);
  API_BEGIN
  return stream_shutdown(as_stream(stream), as_task(task));
  API_END
}

UVA_EXTERN int uva_stream_peer_address(uva_stream_t *stream, char *host,
                                       size_t hostlen, int *port) {
  if (host == nullptr || hostlen == 0) return UVA_EINVAL;
  CHECK_IO(stream, MAGIC_STREAM);
  return stream_address(as_stream(stream), true, host, hostlen, port);
}

UVA_EXTERN int uva_stream_local_address(uva_stream_t *stream, char *host,
                                        size_t hostlen, int *port) {
  if (host == nullptr || hostlen == 0) return UVA_EINVAL;
  CHECK_IO(stream, MAGIC_STREAM);
  return stream_address(as_stream(stream), false, host, hostlen, port);
}

UVA_EXTERN int uva_stream_close(uva_stream_t *stream,
                                uva_stream_close_cb close_cb, void *data) {
  if (stream == nullptr) return 0;
  CHECK_IO(stream, MAGIC_STREAM);
  return stream_close(as_stream(stream), close_cb, data, false);
}

UVA_EXTERN int uva_stream_abort(uva_stream_t *stream,
                                uva_stream_close_cb close_cb, void *data) {
  if (stream == nullptr) return 0;
  CHECK_IO(stream, MAGIC_STREAM);
  return stream_close(as_stream(stream), close_cb, data, true);
}

UVA_EXTERN int uva_tcp_listen(uva_server_t **out, uva_loop_t *loop,
                              const char *host, int port, int backlog) {
  if (port < 0 || port > 65535) return UVA_EINVAL;
  return new_sync<Server>(out, loop, [=](Server **s, Loop *l) {
    return tcp_listen(s, l, host, port, backlog);
  });
}

UVA_EXTERN int uva_pipe_listen(uva_server_t **out, uva_loop_t *loop,
                               const char *path, int backlog) {
  if (path == nullptr) return UVA_EINVAL;
  return new_sync<Server>(out, loop, [=](Server **s, Loop *l) {
    return pipe_listen(s, l, path, backlog);
  });
}

UVA_EXTERN int uva_server_accept(uva_stream_t **out, uva_server_t *server,
                                 uva_task_t *task) {
  if (out == nullptr) return UVA_EINVAL;
  CHECK_IO_WAITER(server, MAGIC_SERVER, task);
  API_BEGIN
  Stream *s;
  int rc = server_accept(&s, as_server(server), as_task(task));
  if (rc == 0) *out = reinterpret_cast<uva_stream_t *>(s);
  return rc;
  API_END
}

UVA_EXTERN int uva_server_on_connection(uva_server_t *server,
                                        uva_server_connection_cb cb,
                                        void *data) {
  CHECK_IO(server, MAGIC_SERVER);
  if (as_server(server)->closed) return UVA_ECLOSED;
  server_on_connection(as_server(server), cb, data);
  return 0;
}

UVA_EXTERN int uva_server_address(uva_server_t *server, char *host,
                                  size_t hostlen, int *port) {
  if ((host == nullptr) != (hostlen == 0)) return UVA_EINVAL;
  CHECK_IO(server, MAGIC_SERVER);
  return server_address(as_server(server), host, hostlen, port);
}

UVA_EXTERN int uva_server_close(uva_server_t *server,
                                uva_server_close_cb close_cb, void *data) {
  if (server == nullptr) return 0;
  CHECK_IO(server, MAGIC_SERVER);
  server_close(as_server(server), close_cb, data);
  return 0;
}

UVA_EXTERN int uva_udp_new(uva_udp_t **out, uva_loop_t *loop) {
  return new_sync<Udp>(out, loop, udp_new);
}

UVA_EXTERN int uva_udp_bind(uva_udp_t *udp, const char *host, int port) {
  CHECK_IO(udp, MAGIC_UDP);
  if (as_udp(udp)->closed) return UVA_ECLOSED;
  return udp_bind(as_udp(udp), host, port);
}

UVA_EXTERN int uva_udp_connect(uva_udp_t *udp, const char *host, int port) {
  if (host == nullptr) return UVA_EINVAL;
  CHECK_IO(udp, MAGIC_UDP);
  if (as_udp(udp)->closed) return UVA_ECLOSED;
  return udp_connect(as_udp(udp), host, port);
}

UVA_EXTERN int uva_udp_set(uva_udp_t *udp, uva_stream_option option,
                           size_t value) {
  CHECK_IO(udp, MAGIC_UDP);
  int o = enum_bits(option);
  if (!valid_option(o)) return UVA_EINVAL;
  return udp_set(as_udp(udp), static_cast<uva_stream_option>(o), value);
}

UVA_EXTERN int uva_udp_send(uva_udp_t *udp, const void *buf, size_t len,
                            const char *host, int port) {
  if ((buf == nullptr && len > 0) || len > UINT32_MAX) return UVA_EINVAL;
  CHECK_IO(udp, MAGIC_UDP);
  if (as_udp(udp)->closed) return UVA_ECLOSED;
  return udp_send(as_udp(udp), buf, len, host, port);
}

UVA_EXTERN int uva_udp_recv(size_t *len, uva_udp_t *udp, uva_task_t *task,
                            void *buf, size_t buflen, char *host,
                            size_t hostlen, int *port) {
  if (len == nullptr || (buf == nullptr && buflen > 0)) return UVA_EINVAL;
  if (host != nullptr && hostlen == 0) return UVA_EINVAL;
  CHECK_IO_WAITER(udp, MAGIC_UDP, task);
  API_BEGIN
  return udp_recv(len, as_udp(udp), as_task(task), buf, buflen, host, hostlen,
                  port);
  API_END
}

UVA_EXTERN int uva_udp_local_address(uva_udp_t *udp, char *host, size_t hostlen,
                                     int *port) {
  if (host == nullptr || hostlen == 0) return UVA_EINVAL;
  CHECK_IO(udp, MAGIC_UDP);
  if (as_udp(udp)->closed) return UVA_ECLOSED;
  return udp_local_address(as_udp(udp), host, hostlen, port);
}

UVA_EXTERN int uva_udp_fileno(int *fd, uva_udp_t *udp) {
  if (fd == nullptr) return UVA_EINVAL;
  CHECK_IO(udp, MAGIC_UDP);
  if (as_udp(udp)->closed) return UVA_ECLOSED;
  return udp_fileno(fd, as_udp(udp));
}

UVA_EXTERN int uva_udp_close(uva_udp_t *udp, uva_udp_close_cb close_cb,
                             void *data) {
  if (udp == nullptr) return 0;
  CHECK_IO(udp, MAGIC_UDP);
  udp_close(as_udp(udp), close_cb, data);
  return 0;
}

UVA_EXTERN int uva_poll_new(uva_poll_t **out, uva_loop_t *loop, int fd) {
  return new_sync<Poll>(out, loop,
                        [=](Poll **p, Loop *l) { return poll_new(p, l, fd); });
}

UVA_EXTERN int uva_poll_wait(int *revents, uva_poll_t *poll, uva_task_t *task,
                             int events) {
  if (revents == nullptr) return UVA_EINVAL;
  if (events == 0 || (events & ~(UVA_READABLE | UVA_WRITABLE)) != 0)
    return UVA_EINVAL;
  CHECK_IO_WAITER(poll, MAGIC_POLL, task);
  API_BEGIN
  return poll_wait(revents, as_poll(poll), as_task(task), events);
  API_END
}

UVA_EXTERN int uva_poll_close(uva_poll_t *poll, uva_poll_close_cb close_cb,
                              void *data) {
  if (poll == nullptr) return 0;
  CHECK_IO(poll, MAGIC_POLL);
  poll_close(as_poll(poll), close_cb, data);
  return 0;
}

/* ---- child processes ---------------------------------------------------- */

UVA_EXTERN int uva_process_spawn(uva_process_t **out, uva_loop_t *loop,
                                 const uva_process_options_t *options) {
  if (out == nullptr || options == nullptr) return UVA_EINVAL;
  API_BEGIN
  return new_sync<Process>(out, loop, [=](Process **p, Loop *l) {
    return process_spawn(p, l, options);
  });
  API_END
}

UVA_EXTERN int uva_process_pid(int *pid, uva_process_t *process) {
  if (pid == nullptr) return UVA_EINVAL;
  CHECK_IO(process, MAGIC_PROCESS);
  if (as_process(process)->closed) return UVA_ECLOSED;
  *pid = as_process(process)->pid;
  return 0;
}

UVA_EXTERN int uva_process_stream(uva_stream_t **out, uva_process_t *process,
                                  int fd) {
  if (out == nullptr) return UVA_EINVAL;
  CHECK_IO(process, MAGIC_PROCESS);
  if (as_process(process)->closed) return UVA_ECLOSED;
  Stream *s;
  int rc = process_stream(&s, as_process(process), fd);
  if (rc == 0) *out = reinterpret_cast<uva_stream_t *>(s);
  return rc;
}

UVA_EXTERN int uva_process_wait(int64_t *exit_status, int *term_signal,
                                uva_process_t *process, uva_task_t *task) {
  CHECK_IO(process, MAGIC_PROCESS);
  CHECK(check_sync_waiter(process, task));
  API_BEGIN
  return process_wait(exit_status, term_signal, as_process(process),
                      as_task(task));
  API_END
}

UVA_EXTERN int uva_process_kill(uva_process_t *process, int signum) {
  CHECK_IO(process, MAGIC_PROCESS);
  if (as_process(process)->closed) return UVA_ECLOSED;
  return process_kill(as_process(process), signum);
}

UVA_EXTERN int uva_process_close(uva_process_t *process,
                                 uva_process_close_cb close_cb, void *data) {
  if (process == nullptr) return 0;
  CHECK_IO(process, MAGIC_PROCESS);
  process_close(as_process(process), close_cb, data);
  return 0;
}

/* ---- signals ------------------------------------------------------------ */

UVA_EXTERN int uva_signal_new(uva_signal_t **out, uva_loop_t *loop,
                              int signum) {
  if (out == nullptr) return UVA_EINVAL;
  return new_sync<Signal>(
      out, loop, [=](Signal **s, Loop *l) { return signal_new(s, l, signum); });
}

UVA_EXTERN int uva_signal_wait(uint64_t *count, uva_signal_t *sig,
                               uva_task_t *task) {
  CHECK_IO_WAITER(sig, MAGIC_SIGNAL, task);
  API_BEGIN
  return signal_wait(count, as_signal(sig), as_task(task));
  API_END
}

UVA_EXTERN int uva_signal_on_signal(uva_signal_t *sig, uva_signal_cb cb,
                                    void *data) {
  CHECK_IO(sig, MAGIC_SIGNAL);
  if (as_signal(sig)->closed) return UVA_ECLOSED;
  signal_on_signal(as_signal(sig), cb, data);
  return 0;
}

UVA_EXTERN int uva_signal_signum(int *signum, uva_signal_t *sig) {
  if (signum == nullptr) return UVA_EINVAL;
  CHECK_IO(sig, MAGIC_SIGNAL);
  if (as_signal(sig)->closed) return UVA_ECLOSED;
  *signum = as_signal(sig)->signum;
  return 0;
}

UVA_EXTERN int uva_signal_close(uva_signal_t *sig, uva_signal_close_cb close_cb,
                                void *data) {
  if (sig == nullptr) return 0;
  CHECK_IO(sig, MAGIC_SIGNAL);
  signal_close(as_signal(sig), close_cb, data);
  return 0;
}

/* ---- the loop's thread pool ------------------------------------------- */

UVA_EXTERN int uva_work_submit(uva_work_t **out, uva_loop_t *loop,
                               uva_work_fn fn, void *data, uva_free_cb dtor,
                               uva_work_done_cb done) {
  if (out == nullptr || fn == nullptr) return UVA_EINVAL;
  CHECK(check_loop(loop));
  API_BEGIN
  Work *w;
  int rc = work_submit(&w, as_loop(loop), fn, data, dtor, done);
  if (rc == 0) *out = reinterpret_cast<uva_work_t *>(w);
  return rc;
  API_END
}

UVA_EXTERN int uva_work_wait(uva_work_t *work, uva_task_t *task) {
  CHECK(check_sync(work, MAGIC_WORK, true));
  CHECK(check_sync_waiter(work, task));
  if (task == nullptr) return work_wait_no_task(as_work(work));
  API_BEGIN
  return work_wait(as_work(work), as_task(task));
  API_END
}

UVA_EXTERN int uva_work_cancel(uva_work_t *work) {
  CHECK(check_sync(work, MAGIC_WORK));
  return work_cancel(as_work(work));
}

UVA_EXTERN int uva_work_done(int *out, uva_work_t *work) {
  if (out == nullptr) return UVA_EINVAL;
  CHECK(check_sync(work, MAGIC_WORK));
  *out = as_work(work)->ended;
  return 0;
}

UVA_EXTERN int uva_work_close(uva_work_t *work) {
  if (work == nullptr) return 0;
  CHECK(check_sync(work, MAGIC_WORK, true));
  work_close(as_work(work));
  return 0;
}

UVA_EXTERN int uva_loop_configure(uva_loop_t *loop, uva_loop_option option,
                                  uint64_t value) {
  CHECK(check_loop(loop));
  if (enum_bits(option) != UVA_LOOP_POOL_SIZE) return UVA_EINVAL;
  API_BEGIN
  return pool_set_size(as_loop(loop), value);
  API_END
}

UVA_EXTERN int uva_loop_get_option(uint64_t *out, uva_loop_t *loop,
                                   uva_loop_option option) {
  if (out == nullptr) return UVA_EINVAL;
  CHECK(check_loop(loop));
  if (enum_bits(option) != UVA_LOOP_POOL_SIZE) return UVA_EINVAL;
  *out = pool_size(as_loop(loop));
  return 0;
}

/* ---- files ---------------------------------------------------------------- */

static int fs_call(uva_work_t **out, uva_loop_t *loop, const FsArgs &a) {
  if (out == nullptr) return UVA_EINVAL;
  CHECK(check_loop(loop));
  API_BEGIN
  Work *w;
  int rc = fs_start(&w, as_loop(loop), a);
  if (rc == 0) *out = reinterpret_cast<uva_work_t *>(w);
  return rc;
  API_END
}

UVA_EXTERN int uva_fs_open(uva_work_t **out, uva_loop_t *loop, const char *path,
                           int flags, int mode) {
  FsArgs a{FsOp::OPEN};
  a.path = path;
  a.flags = flags;
  a.mode = mode;
  return fs_call(out, loop, a);
}

UVA_EXTERN int uva_fs_close(uva_work_t **out, uva_loop_t *loop, int fd) {
  FsArgs a{FsOp::CLOSE};
  a.fd = fd;
  return fs_call(out, loop, a);
}

UVA_EXTERN int uva_fs_read(uva_work_t **out, uva_loop_t *loop, int fd,
                           size_t len, int64_t offset) {
  FsArgs a{FsOp::READ};
  a.fd = fd;
  a.len = len;
  a.offset = offset;
  return fs_call(out, loop, a);
}

UVA_EXTERN int uva_fs_write(uva_work_t **out, uva_loop_t *loop, int fd,
                            const void *data, size_t len, int64_t offset) {
  FsArgs a{FsOp::WRITE};
  a.fd = fd;
  a.data = data;
  a.len = len;
  a.offset = offset;
  return fs_call(out, loop, a);
}

UVA_EXTERN int uva_fs_fsync(uva_work_t **out, uva_loop_t *loop, int fd,
                            int datasync) {
  FsArgs a{FsOp::FSYNC};
  a.fd = fd;
  a.flags = datasync != 0;
  return fs_call(out, loop, a);
}

UVA_EXTERN int uva_fs_ftruncate(uva_work_t **out, uva_loop_t *loop, int fd,
                                int64_t length) {
  FsArgs a{FsOp::FTRUNCATE};
  a.fd = fd;
  a.offset = length;
  return fs_call(out, loop, a);
}

static int fs_path_call(uva_work_t **out, uva_loop_t *loop, FsOp op,
                        const char *path, int mode = 0) {
  FsArgs a{op};
  a.path = path;
  a.mode = mode;
  return fs_call(out, loop, a);
}

UVA_EXTERN int uva_fs_stat(uva_work_t **out, uva_loop_t *loop,
                           const char *path) {
  return fs_path_call(out, loop, FsOp::STAT, path);
}

UVA_EXTERN int uva_fs_lstat(uva_work_t **out, uva_loop_t *loop,
                            const char *path) {
  return fs_path_call(out, loop, FsOp::LSTAT, path);
}

UVA_EXTERN int uva_fs_fstat(uva_work_t **out, uva_loop_t *loop, int fd) {
  FsArgs a{FsOp::FSTAT};
  a.fd = fd;
  return fs_call(out, loop, a);
}

UVA_EXTERN int uva_fs_rename(uva_work_t **out, uva_loop_t *loop,
                             const char *from, const char *to) {
  FsArgs a{FsOp::RENAME};
  a.path = from;
  a.path2 = to;
  return fs_call(out, loop, a);
}

UVA_EXTERN int uva_fs_unlink(uva_work_t **out, uva_loop_t *loop,
                             const char *path) {
  return fs_path_call(out, loop, FsOp::UNLINK, path);
}

UVA_EXTERN int uva_fs_mkdir(uva_work_t **out, uva_loop_t *loop,
                            const char *path, int mode) {
  return fs_path_call(out, loop, FsOp::MKDIR, path, mode);
}

UVA_EXTERN int uva_fs_rmdir(uva_work_t **out, uva_loop_t *loop,
                            const char *path) {
  return fs_path_call(out, loop, FsOp::RMDIR, path);
}

UVA_EXTERN int uva_fs_readdir(uva_work_t **out, uva_loop_t *loop,
                              const char *path) {
  return fs_path_call(out, loop, FsOp::READDIR, path);
}

UVA_EXTERN int uva_fs_sendfile(uva_work_t **out, uva_stream_t *stream,
                               int in_fd, int64_t offset, size_t len) {
  if (out == nullptr) return UVA_EINVAL;
  CHECK_IO(stream, MAGIC_STREAM);
  API_BEGIN
  Work *w;
  int rc = fs_sendfile(&w, as_stream(stream), in_fd, offset, len);
  if (rc == 0) *out = reinterpret_cast<uva_work_t *>(w);
  return rc;
  API_END
}

UVA_EXTERN int uva_fs_result(int64_t *out, uva_work_t *work) {
  if (out == nullptr) return UVA_EINVAL;
  CHECK(check_sync(work, MAGIC_WORK));
  return fs_result(out, as_work(work));
}

UVA_EXTERN int uva_fs_data(const void **data, size_t *len, uva_work_t *work) {
  if (data == nullptr || len == nullptr) return UVA_EINVAL;
  CHECK(check_sync(work, MAGIC_WORK));
  return fs_data(data, len, as_work(work));
}

UVA_EXTERN int uva_fs_statbuf(uva_stat_t *out, uva_work_t *work) {
  if (out == nullptr) return UVA_EINVAL;
  CHECK(check_sync(work, MAGIC_WORK));
  return fs_statbuf(out, as_work(work));
}

UVA_EXTERN int uva_fs_dirent(const char **name, uva_file_type *type,
                             uva_work_t *work, size_t i) {
  if (name == nullptr || type == nullptr) return UVA_EINVAL;
  CHECK(check_sync(work, MAGIC_WORK));
  return fs_dirent(name, type, as_work(work), i);
}

/* ---- ticks -------------------------------------------------------------- */

UVA_EXTERN long uva_ticks_ms(void) { return ticks_ms(); }

UVA_EXTERN long uva_ticks_add(long ticks, long delta) {
  return ticks_add(ticks, delta);
}

UVA_EXTERN long uva_ticks_diff(long a, long b) { return ticks_diff(a, b); }

/* ---- TLS ------------------------------------------------------------------ */

/* A context: NULL, kind. Contexts belong to no loop (no thread check). */
#define CHECK_TLS_CTX(p)                              \
  TlsCtx *c_ = nullptr;                               \
  do {                                                \
    int rc_;                                          \
    c_ = tls_ctx_check(static_cast<void *>(p), &rc_); \
    if (c_ == nullptr) return rc_;                    \
  } while (0)

UVA_EXTERN int uva_tls_available(void) { return tls_available() ? 1 : 0; }

UVA_EXTERN int uva_tls_ctx_new(uva_tls_ctx_t **out, uva_tls_role role) {
  if (out == nullptr) return UVA_EINVAL;
  int r = enum_bits(role);
  if (r != UVA_TLS_CLIENT && r != UVA_TLS_SERVER) return UVA_EINVAL;
  API_BEGIN
  TlsCtx *c;
  int rc = tls_ctx_new(&c, uva_tls_role(r));
  if (rc == 0) *out = reinterpret_cast<uva_tls_ctx_t *>(c);
  return rc;
  API_END
}

UVA_EXTERN void uva_tls_ctx_free(uva_tls_ctx_t *ctx) {
  if (ctx == nullptr) return;
  int rc;
  TlsCtx *c = tls_ctx_check(static_cast<void *>(ctx), &rc);
  if (c != nullptr) tls_ctx_free(c);
}

UVA_EXTERN int uva_tls_ctx_set_verify(uva_tls_ctx_t *ctx, int mode) {
  CHECK_TLS_CTX(ctx);
  return tls_ctx_set_verify(c_, mode);
}

UVA_EXTERN int uva_tls_ctx_set_verify_flags(uva_tls_ctx_t *ctx, int flags) {
  CHECK_TLS_CTX(ctx);
  return tls_ctx_set_verify_flags(c_, flags);
}

UVA_EXTERN int uva_tls_ctx_load_ca(uva_tls_ctx_t *ctx, const char *file,
                                   const char *dir) {
  CHECK_TLS_CTX(ctx);
  if (file == nullptr && dir == nullptr) return UVA_EINVAL;
  return tls_ctx_load_ca(c_, file, dir);
}

UVA_EXTERN int uva_tls_ctx_load_ca_pem(uva_tls_ctx_t *ctx, const void *pem,
                                       size_t len) {
  CHECK_TLS_CTX(ctx);
  if (pem == nullptr || len == 0) return UVA_EINVAL;
  return tls_ctx_load_ca_pem(c_, pem, len);
}

UVA_EXTERN int uva_tls_ctx_use_cert_file(uva_tls_ctx_t *ctx,
                                         const char *chain_file,
                                         const char *key_file,
                                         const char *password) {
  CHECK_TLS_CTX(ctx);
  if (chain_file == nullptr) return UVA_EINVAL;
  return tls_ctx_use_cert_file(c_, chain_file, key_file, password);
}

UVA_EXTERN int uva_tls_ctx_use_cert_pem(uva_tls_ctx_t *ctx,
                                        const void *chain_pem, size_t chain_len,
                                        const void *key_pem, size_t key_len,
                                        const char *password) {
  CHECK_TLS_CTX(ctx);
  if (chain_pem == nullptr || chain_len == 0 || key_pem == nullptr ||
      key_len == 0)
    return UVA_EINVAL;
  return tls_ctx_use_cert_pem(c_, chain_pem, chain_len, key_pem, key_len,
                              password);
}

UVA_EXTERN int uva_tls_ctx_set_versions(uva_tls_ctx_t *ctx, int min_version,
                                        int max_version) {
  CHECK_TLS_CTX(ctx);
  return tls_ctx_set_versions(c_, min_version, max_version);
}

UVA_EXTERN int uva_tls_ctx_set_ciphers(uva_tls_ctx_t *ctx, const char *tls12,
                                       const char *tls13) {
  CHECK_TLS_CTX(ctx);
  return tls_ctx_set_ciphers(c_, tls12, tls13);
}

UVA_EXTERN int uva_tls_ctx_set_alpn(uva_tls_ctx_t *ctx,
                                    const char *const *protos, size_t count) {
  CHECK_TLS_CTX(ctx);
  if (protos == nullptr && count > 0) return UVA_EINVAL;
  API_BEGIN
  return tls_ctx_set_alpn(c_, protos, count);
  API_END
}

UVA_EXTERN int uva_tls_ctx_set_session_cache(uva_tls_ctx_t *ctx, size_t size) {
  CHECK_TLS_CTX(ctx);
  return tls_ctx_set_session_cache(c_, size);
}

UVA_EXTERN int uva_tls_start(uva_stream_t *stream, uva_tls_ctx_t *ctx,
                             const char *server_name) {
  if (!tls_available()) return UVA_ENOTSUP;
  CHECK_IO(stream, MAGIC_STREAM);
  CHECK_TLS_CTX(ctx);
  API_BEGIN
  return tls_start(as_stream(stream), c_, server_name);
  API_END
}

UVA_EXTERN int uva_tls_handshake(uva_stream_t *stream, uva_task_t *task) {
  if (!tls_available()) return UVA_ENOTSUP;
  CHECK_IO_WAITER(stream, MAGIC_STREAM, task);
  return tls_handshake(as_stream(stream), as_task(task));
}

/* The queries: a stream (any state), then the core. */
#define TLS_QUERY(stream)                     \
  do {                                        \
    if (!tls_available()) return UVA_ENOTSUP; \
    CHECK_IO(stream, MAGIC_STREAM);           \
  } while (0)

UVA_EXTERN int uva_tls_version(int *out, uva_stream_t *stream) {
  if (out == nullptr) return UVA_EINVAL;
  TLS_QUERY(stream);
  return tls_version(out, as_stream(stream));
}

UVA_EXTERN int uva_tls_alpn(uva_stream_t *stream, char *buf, size_t buflen) {
  if (buf == nullptr || buflen == 0) return UVA_EINVAL;
  TLS_QUERY(stream);
  return tls_alpn(as_stream(stream), buf, buflen);
}

UVA_EXTERN int uva_tls_cipher(uva_stream_t *stream, char *buf, size_t buflen) {
  if (buf == nullptr || buflen == 0) return UVA_EINVAL;
  TLS_QUERY(stream);
  return tls_cipher(as_stream(stream), buf, buflen);
}

UVA_EXTERN int uva_tls_server_name(uva_stream_t *stream, char *buf,
                                   size_t buflen) {
  if (buf == nullptr || buflen == 0) return UVA_EINVAL;
  TLS_QUERY(stream);
  return tls_server_name(as_stream(stream), buf, buflen);
}

UVA_EXTERN int uva_tls_peer_cert(size_t *len, uva_stream_t *stream, void *buf,
                                 size_t buflen) {
  if (len == nullptr || (buf == nullptr && buflen > 0)) return UVA_EINVAL;
  TLS_QUERY(stream);
  return tls_peer_cert(len, as_stream(stream), buf, buflen);
}

UVA_EXTERN int uva_tls_verify_result(int *code, uva_stream_t *stream, char *buf,
                                     size_t buflen) {
  if (code == nullptr || (buf == nullptr && buflen > 0)) return UVA_EINVAL;
  TLS_QUERY(stream);
  return tls_verify_result(code, as_stream(stream), buf, buflen);
}

UVA_EXTERN int uva_tls_error_text(uva_stream_t *stream, char *buf,
                                  size_t buflen) {
  if (buf == nullptr && buflen > 0) return UVA_EINVAL;
  TLS_QUERY(stream);
  return tls_error_text(as_stream(stream), buf, buflen);
}

UVA_EXTERN int uva_tls_session_reused(int *out, uva_stream_t *stream) {
  if (out == nullptr) return UVA_EINVAL;
  TLS_QUERY(stream);
  return tls_session_reused(out, as_stream(stream));
}

}  // extern "C"
