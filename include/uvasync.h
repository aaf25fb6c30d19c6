/* uvasync — the uasyncio model on libuv, behind a small, stable C ABI.
 *
 * This header is the whole public API: anything not declared here is not API.
 * It compiles on its own as C99 and as C++.
 *
 * General rules (they hold for every function unless its comment says other):
 *
 *  - Every fallible function returns int: 0 on success or a negative error
 *    code (UVA_E*). A negative result is always an error. The codes equal
 *    libuv's (so -errno on Unix); see UVA_ERRNO_MAP below.
 *  - If a call that takes a callback fails, that callback never fires.
 *  - Outputs go through out-parameters, the out pointer first.
 *  - Handles are opaque. Pointer arguments are borrowed for the duration of
 *    the call unless the comment says "transferred".
 *  - Threads: a loop belongs to the thread that created it. No function is
 *    thread-safe unless its comment says "Thread-safe". A call on a loop (or
 *    on one of its handles) from another thread returns UVA_EWRONGTHREAD.
 *  - Bad input (NULL, wrong handle kind, a handle whose close was requested,
 *    a negative or overflowing size or delay) returns an error code; it never
 *    crashes or aborts. Using a pointer after its memory was freed is the one
 *    thing that cannot be detected: the comments say when memory is freed.
 *  - "Since" gives the version in which a declaration appeared.
 */
#ifndef UVASYNC_H
#define UVASYNC_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>

#include "uvasync/version.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------ */
/* Visibility                                                               */
/* ------------------------------------------------------------------------ */

/* UVA_EXTERN marks every exported function. Define it yourself to override
 * (for example as empty when you compile the sources into your program).
 * Nested directives are indented here, as in libuv, by hand. */
/* clang-format off */
#ifndef UVA_EXTERN
# if defined(_WIN32)
#  if defined(BUILDING_UVA_SHARED) && defined(USING_UVA_SHARED)
#   error "Define either BUILDING_UVA_SHARED or USING_UVA_SHARED, not both."
#  elif defined(BUILDING_UVA_SHARED)
#   define UVA_EXTERN __declspec(dllexport)
#  elif defined(USING_UVA_SHARED)
#   define UVA_EXTERN __declspec(dllimport)
#  else
#   define UVA_EXTERN /* nothing */
#  endif
# elif __GNUC__ >= 4
#  define UVA_EXTERN __attribute__((visibility("default")))
# else
#  define UVA_EXTERN /* nothing */
# endif
#endif

/* UVA_DEPRECATED(msg) marks a declaration that is going away; define
 * UVA_DEPRECATE_HARD to 0 to silence the warnings. */
#ifndef UVA_DEPRECATE_HARD
# define UVA_DEPRECATE_HARD 1
#endif
#if UVA_DEPRECATE_HARD && defined(__GNUC__)
# define UVA_DEPRECATED(msg) __attribute__((deprecated(msg)))
#else
# define UVA_DEPRECATED(msg)
#endif
/* clang-format on */

/* ------------------------------------------------------------------------ */
/* Version                                                                  */
/* ------------------------------------------------------------------------ */

/* The run-time library version as UVA_VERSION_HEX (0xMMmmpp). Cannot fail;
 * thread-safe. Since 1.0. */
UVA_EXTERN unsigned int uva_version(void);

/* The run-time version as a static string ("1.0.0" or "1.0.0-dev"); never
 * NULL, never freed. Thread-safe. Since 1.0. */
UVA_EXTERN const char *uva_version_string(void);

/* ------------------------------------------------------------------------ */
/* Errors                                                                   */
/* ------------------------------------------------------------------------ */

/* XX(name, value, message). UVA_ERRNO_MAP lists every code: libuv's codes
 * (UVA_ERRNO_MAP_LIBUV, values equal to libuv's UV_<name> on this platform)
 * then uvasync's own (UVA_ERRNO_MAP_OWN, the disjoint range -5000 .. -5099).
 * Values never change within a major version; new codes are only added. */
#define UVA_ERRNO_MAP(XX) UVA_ERRNO_MAP_LIBUV(XX) UVA_ERRNO_MAP_OWN(XX)

#define UVA_ERRNO_MAP_LIBUV(XX)                                               \
  XX(E2BIG, (-E2BIG), "argument list too long")                               \
  XX(EACCES, (-EACCES), "permission denied")                                  \
  XX(EADDRINUSE, (-EADDRINUSE), "address already in use")                     \
  XX(EADDRNOTAVAIL, (-EADDRNOTAVAIL), "address not available")                \
  XX(EAFNOSUPPORT, (-EAFNOSUPPORT), "address family not supported")           \
  XX(EAGAIN, (-EAGAIN), "resource temporarily unavailable")                   \
  XX(EAI_ADDRFAMILY, (-3000), "address family not supported")                 \
  XX(EAI_AGAIN, (-3001), "temporary failure")                                 \
  XX(EAI_BADFLAGS, (-3002), "bad ai_flags value")                             \
  XX(EAI_BADHINTS, (-3013), "invalid value for hints")                        \
  XX(EAI_CANCELED, (-3003), "request canceled")                               \
  XX(EAI_FAIL, (-3004), "permanent failure")                                  \
  XX(EAI_FAMILY, (-3005), "ai_family not supported")                          \
  XX(EAI_MEMORY, (-3006), "out of memory")                                    \
  XX(EAI_NODATA, (-3007), "no address")                                       \
  XX(EAI_NONAME, (-3008), "unknown node or service")                          \
  XX(EAI_OVERFLOW, (-3009), "argument buffer overflow")                       \
  XX(EAI_PROTOCOL, (-3014), "resolved protocol is unknown")                   \
  XX(EAI_SERVICE, (-3010), "service not available for socket type")           \
  XX(EAI_SOCKTYPE, (-3011), "socket type not supported")                      \
  XX(EALREADY, (-EALREADY), "connection already in progress")                 \
  XX(EBADF, (-EBADF), "bad file descriptor")                                  \
  XX(EBUSY, (-EBUSY), "resource busy or locked")                              \
  XX(ECANCELED, (-ECANCELED), "operation canceled")                           \
  XX(ECHARSET, (-4080), "invalid Unicode character")                          \
  XX(ECONNABORTED, (-ECONNABORTED), "software caused connection abort")       \
  XX(ECONNREFUSED, (-ECONNREFUSED), "connection refused")                     \
  XX(ECONNRESET, (-ECONNRESET), "connection reset by peer")                   \
  XX(EDESTADDRREQ, (-EDESTADDRREQ), "destination address required")           \
  XX(EEXIST, (-EEXIST), "file already exists")                                \
  XX(EFAULT, (-EFAULT), "bad address in system call argument")                \
  XX(EFBIG, (-EFBIG), "file too large")                                       \
  XX(EHOSTUNREACH, (-EHOSTUNREACH), "host is unreachable")                    \
  XX(EINTR, (-EINTR), "interrupted system call")                              \
  XX(EINVAL, (-EINVAL), "invalid argument")                                   \
  XX(EIO, (-EIO), "i/o error")                                                \
  XX(EISCONN, (-EISCONN), "socket is already connected")                      \
  XX(EISDIR, (-EISDIR), "illegal operation on a directory")                   \
  XX(ELOOP, (-ELOOP), "too many symbolic links encountered")                  \
  XX(EMFILE, (-EMFILE), "too many open files")                                \
  XX(EMSGSIZE, (-EMSGSIZE), "message too long")                               \
  XX(ENAMETOOLONG, (-ENAMETOOLONG), "name too long")                          \
  XX(ENETDOWN, (-ENETDOWN), "network is down")                                \
  XX(ENETUNREACH, (-ENETUNREACH), "network is unreachable")                   \
  XX(ENFILE, (-ENFILE), "file table overflow")                                \
  XX(ENOBUFS, (-ENOBUFS), "no buffer space available")                        \
  XX(ENODEV, (-ENODEV), "no such device")                                     \
  XX(ENOENT, (-ENOENT), "no such file or directory")                          \
  XX(ENOEXEC, (-ENOEXEC), "exec format error")                                \
  XX(ENOMEM, (-ENOMEM), "not enough memory")                                  \
  XX(ENONET, (-ENONET), "machine is not on the network")                      \
  XX(ENOPROTOOPT, (-ENOPROTOOPT), "protocol not available")                   \
  XX(ENOSPC, (-ENOSPC), "no space left on device")                            \
  XX(ENOSYS, (-ENOSYS), "function not implemented")                           \
  XX(ENOTCONN, (-ENOTCONN), "socket is not connected")                        \
  XX(ENOTDIR, (-ENOTDIR), "not a directory")                                  \
  XX(ENOTEMPTY, (-ENOTEMPTY), "directory not empty")                          \
  XX(ENOTSOCK, (-ENOTSOCK), "socket operation on non-socket")                 \
  XX(ENOTSUP, (-ENOTSUP), "operation not supported on socket")                \
  XX(EOVERFLOW, (-EOVERFLOW), "value too large for defined data type")        \
  XX(EPERM, (-EPERM), "operation not permitted")                              \
  XX(EPIPE, (-EPIPE), "broken pipe")                                          \
  XX(EPROTO, (-EPROTO), "protocol error")                                     \
  XX(EPROTONOSUPPORT, (-EPROTONOSUPPORT), "protocol not supported")           \
  XX(EPROTOTYPE, (-EPROTOTYPE), "protocol wrong type for socket")             \
  XX(ERANGE, (-ERANGE), "result too large")                                   \
  XX(EROFS, (-EROFS), "read-only file system")                                \
  XX(ESHUTDOWN, (-ESHUTDOWN),                                                 \
     "cannot send after transport endpoint shutdown")                         \
  XX(ESPIPE, (-ESPIPE), "invalid seek")                                       \
  XX(ESRCH, (-ESRCH), "no such process")                                      \
  XX(ETIMEDOUT, (-ETIMEDOUT), "connection timed out")                         \
  XX(ETXTBSY, (-ETXTBSY), "text file is busy")                                \
  XX(EXDEV, (-EXDEV), "cross-device link not permitted")                      \
  XX(UNKNOWN, (-4094), "unknown error")                                       \
  XX(EOF, (-4095), "end of file")                                             \
  XX(ENXIO, (-ENXIO), "no such device or address")                            \
  XX(EMLINK, (-EMLINK), "too many links")                                     \
  XX(EHOSTDOWN, (-EHOSTDOWN), "host is down")                                 \
  XX(EREMOTEIO, (-EREMOTEIO), "remote I/O error")                             \
  XX(ENOTTY, (-ENOTTY), "inappropriate ioctl for device")                     \
  XX(EFTYPE, (-4028), "inappropriate file type or format")                    \
  XX(EILSEQ, (-EILSEQ), "illegal byte sequence")                              \
  XX(ESOCKTNOSUPPORT, (-ESOCKTNOSUPPORT), "socket type not supported")

#define UVA_ERRNO_MAP_OWN(XX)                                                 \
  XX(EINTERNAL, (-5000), "internal error in uvasync")                         \
  XX(EWRONGTHREAD, (-5001),                                                   \
     "called from a thread that does not own the loop")                       \
  XX(ECLOSED, (-5002), "handle is closing or closed")                         \
  XX(EHANDLEKIND, (-5003), "wrong kind of handle")                            \
  XX(EUSER, (-5004), "a user callback failed")                                \
  XX(ERUNNING, (-5005), "a loop is already running in this thread")           \
  XX(EQUEUEFULL, (-5010), "queue is full")                                    \
  XX(EQUEUEEMPTY, (-5011), "queue is empty")                                  \
  XX(EINCOMPLETE, (-5012), "end of stream before the requested bytes")        \
  XX(ELINETOOLONG, (-5013), "line longer than the stream's line limit")       \
  XX(ETLS, (-5020), "TLS protocol error")                                     \
  XX(ETLSUNTRUSTED, (-5021),                                                  \
     "TLS certificate not trusted (unknown issuer or self-signed)")           \
  XX(ETLSEXPIRED, (-5022), "TLS certificate expired or not yet valid")        \
  XX(ETLSHOSTNAME, (-5023), "TLS certificate does not match the host name")   \
  XX(ETLSCERT, (-5024), "TLS certificate verify failed")                      \
  XX(ETLSNOCERT, (-5025), "TLS peer sent no certificate")                     \
  XX(ETLSVERSION, (-5026), "no TLS protocol version in common")               \
  XX(ETLSALERT, (-5027), "TLS peer sent a fatal alert")                       \
  XX(ETLSEOF, (-5028), "TLS connection closed without close_notify")

typedef enum {
#define UVA__ERRNO_XX(name, value, msg) UVA_##name = value,
  UVA_ERRNO_MAP(UVA__ERRNO_XX)
#undef UVA__ERRNO_XX
} uva_errno_t;

/* A static English message for an error code; never NULL. An unknown code
 * gives "unknown uvasync error <n>" from a static buffer owned by the
 * library (use uva_strerror_r when unknown codes matter across threads).
 * Thread-safe for known codes. Since 1.0. */
UVA_EXTERN const char *uva_strerror(int err);

/* The code's name ("EINVAL") as a static string; never NULL. Unknown codes
 * as uva_strerror. Thread-safe for known codes. Since 1.0. */
UVA_EXTERN const char *uva_err_name(int err);

/* Re-entrant forms: write the message or name into buf (always
 * NUL-terminated when buflen > 0) and return buf. A NULL buf (whatever
 * buflen) writes nothing and returns NULL. Thread-safe. Since 1.0. */
UVA_EXTERN char *uva_strerror_r(int err, char *buf, size_t buflen);
UVA_EXTERN char *uva_err_name_r(int err, char *buf, size_t buflen);

/* ------------------------------------------------------------------------ */
/* Opaque handles and callbacks                                             */
/* ------------------------------------------------------------------------ */

typedef struct uva_loop_s uva_loop_t;
typedef struct uva_task_s uva_task_t;
typedef struct uva_timer_s uva_timer_t;
typedef struct uva_event_s uva_event_t;
typedef struct uva_lock_s uva_lock_t;
typedef struct uva_sem_s uva_sem_t;
typedef struct uva_queue_s uva_queue_t;
typedef struct uva_flag_s uva_flag_t;
typedef struct uva_stream_s uva_stream_t;
typedef struct uva_server_s uva_server_t;
typedef struct uva_udp_s uva_udp_t;
typedef struct uva_poll_s uva_poll_t;

/* Destroys user data given to the library; called exactly once, on the loop
 * thread (or the thread that called uva_loop_close), when the owning handle's
 * memory is freed. */
typedef void (*uva_free_cb)(void *data);

/* A plain callback (call_soon). */
typedef void (*uva_callback_cb)(void *data);

/* What a task step returns: UVA_TASK_PENDING, UVA_TASK_YIELD, or a result
 * <= 0 that finishes the task (0 = success, negative = an error code).
 * UVA_TASK_PENDING: stay alive; resume when the wait set up by the step ends
 * or when somebody wakes the task. UVA_TASK_YIELD: go to the back of the run
 * queue (= call uva_task_yield, then return PENDING). */
#define UVA_TASK_PENDING 1
#define UVA_TASK_YIELD 2

/* The step function of a task. Called on the loop thread whenever the task is
 * runnable, never re-entered for the same task. `status` says why it runs:
 * 0 (first run, yield, sleep ended, joined task finished, woken) or
 * UVA_ECANCELED (a cancellation is being delivered; the task may ignore it
 * and go on). `data` is the user data given to uva_task_spawn. */
typedef int (*uva_task_step_cb)(uva_task_t *task, int status, void *data);

/* Called once when a task finishes, with its result. */
typedef void (*uva_task_done_cb)(uva_task_t *task, int result, void *data);

/* Called when a timer fires. */
typedef void (*uva_timer_cb)(uva_timer_t *timer, void *data);

/* Called once the close of a timer has completed. */
typedef void (*uva_timer_close_cb)(uva_timer_t *timer, void *data);

/* ------------------------------------------------------------------------ */
/* Loop                                                                     */
/* ------------------------------------------------------------------------ */

typedef enum {
  UVA_RUN_DEFAULT = 0, /* run until no referenced work is left, or stopped */
  UVA_RUN_ONCE = 1,    /* one pass; block for I/O or timers if nothing is
                          ready */
  UVA_RUN_NOWAIT = 2   /* one pass; never block */
} uva_run_mode;

/* Create a loop owned by the calling thread. *out receives the loop (caller
 * owns it and must uva_loop_close it). Any thread may create its own loops.
 * If SIGPIPE still has its default action, it is set to ignored, so a write
 * to a reset peer returns UVA_EPIPE instead of killing the process.
 * On Linux the loop waits in an epoll set of its own, in which stream
 * sockets, pipes and UDP sockets are edge-triggered (libuv's is
 * level-triggered, which costs every ready socket a second poll in the
 * kernel); libuv's poll phase runs only when libuv's own handles have
 * work. Behaviour is the same either way. UVA_POLLER=libuv in the environment when the loop is created
 * makes it wait in libuv's poll phase, as on other systems; so does an
 * epoll set that cannot be created.
 * Errors: UVA_EINVAL (out NULL), UVA_ENOMEM, or a libuv error. Since 1.0. */
UVA_EXTERN int uva_loop_new(uva_loop_t **out);

/* Run the loop. Each pass runs the tasks and callbacks that were ready when
 * the pass began (what becomes ready during a pass waits for the next one)
 * and polls I/O. DEFAULT returns when no referenced task, timer or callback is
 * left, or after uva_loop_stop; ONCE and NOWAIT return after one pass. As in
 * libuv, no mode makes a pass when no referenced work is left.
 * Owner thread only; not from inside a step or callback of a running loop.
 * Errors: UVA_EINVAL (NULL), UVA_EHANDLEKIND, UVA_EWRONGTHREAD, UVA_ERUNNING
 * (re-entered, or another loop already runs in this thread). Since 1.0. */
UVA_EXTERN int uva_loop_run(uva_loop_t *loop, uva_run_mode mode);

/* Make the current (or next) uva_loop_run return after its current pass.
 * Thread-safe: another thread needs a pointer that stays valid, so it
 * holds a reference (uva_loop_retain) when its call may race
 * uva_loop_close; a call made while or after the loop closes does nothing
 * and returns UVA_ECLOSED. Errors: UVA_EINVAL, UVA_EHANDLEKIND,
 * UVA_ECLOSED. Since 1.0. */
UVA_EXTERN int uva_loop_stop(uva_loop_t *loop);

/* Whether the loop still has referenced work: *out = 1 or 0. Owner thread.
 * Errors: UVA_EINVAL, UVA_EHANDLEKIND, UVA_EWRONGTHREAD. Since 1.0. */
UVA_EXTERN int uva_loop_alive(int *out, uva_loop_t *loop);

/* The monotonic clock in milliseconds (libuv's high-resolution clock,
 * truncated). Owner thread. Errors: UVA_EINVAL, UVA_EHANDLEKIND,
 * UVA_EWRONGTHREAD. Since 1.0. */
UVA_EXTERN int uva_loop_now(uint64_t *out, uva_loop_t *loop);

/* Run cb(data) on the loop thread at the next pass, in FIFO order with the
 * tasks made ready before it. Not cancellable. Owner thread.
 * Errors: UVA_EINVAL (NULL loop or cb), UVA_EHANDLEKIND, UVA_EWRONGTHREAD,
 * UVA_ENOMEM. Since 1.0. */
UVA_EXTERN int uva_loop_call_soon(uva_loop_t *loop, uva_callback_cb cb,
                                  void *data);

/* As uva_loop_call_soon, from any thread: wakes a blocked loop. The callback
 * is called exactly once, on the loop thread, at a later pass or while
 * uva_loop_close drains the loop (it must then not start new work).
 * Thread-safe, as uva_loop_stop: with a reference (uva_loop_retain) the
 * call is safe while and after the loop closes. Once uva_loop_close has
 * begun to close the loop (and after), the call returns UVA_ECLOSED and
 * cb is never called; a call that returned 0 always gets its callback.
 * Errors: UVA_EINVAL, UVA_EHANDLEKIND, UVA_ECLOSED, UVA_ENOMEM.
 * Since 1.0. */
UVA_EXTERN int uva_loop_call_soon_threadsafe(uva_loop_t *loop,
                                             uva_callback_cb cb, void *data);

/* Attach user data; the previous data's destructor is NOT called. dtor (may
 * be NULL) runs once in uva_loop_close. Owner thread. Errors: UVA_EINVAL,
 * UVA_EHANDLEKIND, UVA_EWRONGTHREAD. Since 1.0. */
UVA_EXTERN int uva_loop_set_data(uva_loop_t *loop, void *data,
                                 uva_free_cb dtor);
UVA_EXTERN int uva_loop_get_data(void **out, uva_loop_t *loop);

/* Hooks around the loop's wait for I/O: before(data) runs on the loop
 * thread just before a pass of uva_loop_run may block in the kernel (it
 * runs in every pass, blocking or not), after(data) right after the wait,
 * before the tasks of the pass run; they always come in pairs. I/O
 * callbacks of the loop (connection callbacks, cross-thread calls) may run
 * between the two. For runtimes with a global lock: a binding runs the loop
 * holding its lock (its callbacks then need not take it), releases it in
 * before and takes it back in after, so other threads run while the loop
 * waits. Both NULL removes the hooks. Owner thread, not from inside the
 * hooks. Errors: UVA_EINVAL (only one of before/after NULL, NULL loop),
 * UVA_EHANDLEKIND, UVA_EWRONGTHREAD. Since 1.0. */
UVA_EXTERN int uva_loop_set_wait_hooks(uva_loop_t *loop,
                                       uva_callback_cb before,
                                       uva_callback_cb after, void *data);

/* Make the calling thread the loop's owner: from then on the owner-only
 * calls are accepted from this thread and refused (UVA_EWRONGTHREAD) in the
 * one that owned it before. For runtimes whose loops may be made in one
 * thread and run or closed in another (an asyncio event loop). Not while
 * the loop runs. The hand-over is not synchronised: the caller makes sure
 * the previous owner makes no owner-only call meanwhile (it hands the loop
 * over, e.g. by starting the new thread after its last call). Does nothing
 * on the owner thread. Any thread. Errors: UVA_EINVAL (NULL),
 * UVA_EHANDLEKIND, UVA_ECLOSED, UVA_ERUNNING. Since 1.0. */
UVA_EXTERN int uva_loop_adopt(uva_loop_t *loop);

/* Close the loop and drop the creator's reference (the memory is freed
 * with the last reference, see uva_loop_retain). Runs queued cross-thread
 * callbacks first, then refuses further thread-safe calls (UVA_ECLOSED)
 * and waits for those under way, so none touches the closed loop. If a
 * callback run here starts new work, the close fails with UVA_EBUSY and
 * the loop stays open (thread-safe calls made meanwhile got UVA_ECLOSED).
 * Accepts NULL, and a closed loop that a reference still keeps (returns
 * 0). Owner thread, not while running. After success the pointer is
 * invalid, unless the caller holds a reference from uva_loop_retain.
 * Errors: UVA_EBUSY (tasks, timers or other objects still exist: release
 * or close them and run the loop until their closes complete),
 * UVA_ERUNNING, UVA_EHANDLEKIND, UVA_EWRONGTHREAD. Since 1.0. */
UVA_EXTERN int uva_loop_close(uva_loop_t *loop);

/* Take one more reference on the loop's memory, for code that makes the
 * thread-safe calls (uva_loop_stop, uva_loop_call_soon_threadsafe) from
 * other threads and cannot know when the owner closes the loop. After
 * uva_loop_close the memory stays until every reference is dropped with
 * uva_loop_release; meanwhile those calls return UVA_ECLOSED, as does every
 * other call but uva_loop_close (0), retain and release. Thread-safe: the
 * caller must hold a reference already, or know that the loop is open.
 * Errors: UVA_EINVAL, UVA_EHANDLEKIND. Since 1.0. */
UVA_EXTERN int uva_loop_retain(uva_loop_t *loop);

/* Drop a reference taken with uva_loop_retain; the last one frees a closed
 * loop's memory. Accepts NULL. Thread-safe. Errors: UVA_EHANDLEKIND.
 * Since 1.0. */
UVA_EXTERN int uva_loop_release(uva_loop_t *loop);

/* ------------------------------------------------------------------------ */
/* Task                                                                     */
/* ------------------------------------------------------------------------ */

/* Create a task and make it runnable: its step runs at the next pass.
 * *out receives a reference the caller must drop with uva_task_release;
 * pass out = NULL for a detached task. `data` is transferred to the task:
 * dtor(data) (if not NULL) runs exactly once, when the task's memory is
 * freed (after it finished and every reference was released).
 * Owner thread. Errors: UVA_EINVAL (NULL loop or step), UVA_EHANDLEKIND,
 * UVA_EWRONGTHREAD, UVA_ENOMEM; on error dtor is not called and nothing is
 * created. Since 1.0. */
UVA_EXTERN int uva_task_spawn(uva_task_t **out, uva_loop_t *loop,
                              uva_task_step_cb step, void *data,
                              uva_free_cb dtor);

/* Go to the back of the run queue after the current step returns (which
 * must then return UVA_TASK_PENDING). Only from the task's own step.
 * Here and in uva_task_sleep and uva_task_join (first argument), NULL names
 * the task whose step is running in the calling thread.
 * Errors: UVA_EINVAL (NULL, or not the running task), UVA_EBUSY (a sleep or
 * join is already set up), UVA_EHANDLEKIND, UVA_EWRONGTHREAD. Since 1.0. */
UVA_EXTERN int uva_task_yield(uva_task_t *task);

/* Resume the task no sooner than ms milliseconds from now (0 <= ms <= 2^40),
 * with status 0, or earlier with UVA_ECANCELED if cancelled. Only from the
 * task's own step, which then returns UVA_TASK_PENDING. A sleeping task costs
 * a heap node, no libuv handle. Errors: UVA_EINVAL (NULL, not the running
 * task, ms out of range), UVA_EBUSY (already waiting, or uva_task_yield was
 * called in this step), UVA_EHANDLEKIND,
 * UVA_EWRONGTHREAD, UVA_ENOMEM. Since 1.0. */
UVA_EXTERN int uva_task_sleep(uva_task_t *task, int64_t ms);

/* Resume the task (status 0) once `other` has finished, at once if it has.
 * Only from the task's own step, which then returns UVA_TASK_PENDING.
 * Read other's result with uva_task_result. Errors: UVA_EINVAL (NULL, not
 * the running task, other == task, other on another loop), UVA_EBUSY,
 * UVA_EHANDLEKIND, UVA_EWRONGTHREAD. Since 1.0. */
UVA_EXTERN int uva_task_join(uva_task_t *task, uva_task_t *other);

/* Make the task runnable. Wake-ups coalesce (a task queued once runs once)
 * and are never lost: waking a running task runs it again after its step
 * returns. A pending sleep or join is abandoned (the step sees status 0).
 * Waking a finished task does nothing. Thread-safe: from another thread the
 * caller must hold a reference (uva_task_retain) for the duration of the
 * call; that reference keeps the loop from closing (uva_loop_close returns
 * UVA_EBUSY), and a close that races the wake waits for it to finish.
 * Errors: UVA_EINVAL, UVA_EHANDLEKIND, UVA_ENOMEM, UVA_ECLOSED (not while
 * the reference is held). Since 1.0. */
UVA_EXTERN int uva_task_wake(uva_task_t *task);

/* Request cancellation: the step's next run gets status UVA_ECANCELED. A
 * pending sleep or join ends at once (the task runs at the next pass); a
 * parked task is made runnable. Cancelling a finished task, or one already
 * cancelled but not yet resumed, does nothing. Owner thread.
 * Errors: UVA_EINVAL, UVA_EHANDLEKIND, UVA_EWRONGTHREAD.
 * Since 1.0. */
UVA_EXTERN int uva_task_cancel(uva_task_t *task);

/* Call cb(task, result, data) once when the task finishes, after the step
 * that finished it returns; callbacks run in the order added. If the task
 * has already finished, cb runs at the next pass (never from inside this
 * call). Owner thread. Errors: UVA_EINVAL, UVA_EHANDLEKIND,
 * UVA_EWRONGTHREAD, UVA_ENOMEM. Since 1.0. */
UVA_EXTERN int uva_task_add_done_cb(uva_task_t *task, uva_task_done_cb cb,
                                    void *data);

/* Remove the first not yet called done callback equal to (cb, data).
 * Errors: UVA_ENOENT (none), UVA_EINVAL, UVA_EHANDLEKIND,
 * UVA_EWRONGTHREAD. Since 1.0. */
UVA_EXTERN int uva_task_remove_done_cb(uva_task_t *task, uva_task_done_cb cb,
                                       void *data);

/* *out = 1 if the task has finished, else 0. Owner thread. Errors:
 * UVA_EINVAL, UVA_EHANDLEKIND, UVA_EWRONGTHREAD. Since 1.0. */
UVA_EXTERN int uva_task_done(int *out, uva_task_t *task);

/* *out = the result the step returned when it finished (0 or an error code).
 * The result is kept until the last reference is released. Owner thread.
 * Errors: UVA_EAGAIN (not finished yet), UVA_EINVAL, UVA_EHANDLEKIND,
 * UVA_EWRONGTHREAD. Since 1.0. */
UVA_EXTERN int uva_task_result(int *out, uva_task_t *task);

/* *out = the task whose step is running on this loop, or NULL between
 * steps. The pointer is borrowed. Owner thread. Errors: UVA_EINVAL,
 * UVA_EHANDLEKIND, UVA_EWRONGTHREAD. Since 1.0. */
UVA_EXTERN int uva_task_current(uva_task_t **out, uva_loop_t *loop);

/* *out = the task's user data (borrowed). Owner thread. Since 1.0. */
UVA_EXTERN int uva_task_get_data(void **out, uva_task_t *task);

/* *out = the task's loop (borrowed). Owner thread. Since 1.0. */
UVA_EXTERN int uva_task_get_loop(uva_loop_t **out, uva_task_t *task);

/* A task that is unreferenced does not keep uva_loop_run(DEFAULT) alive
 * (a daemon task). Tasks start referenced. Owner thread. Errors:
 * UVA_EINVAL, UVA_EHANDLEKIND, UVA_EWRONGTHREAD. Since 1.0. */
UVA_EXTERN int uva_task_ref(uva_task_t *task);
UVA_EXTERN int uva_task_unref(uva_task_t *task);

/* Take one more reference on the task's memory; each must be dropped with
 * uva_task_release. Thread-safe (for waker objects of other runtimes).
 * Errors: UVA_EINVAL, UVA_EHANDLEKIND. Since 1.0. */
UVA_EXTERN int uva_task_retain(uva_task_t *task);

/* Drop one reference. A running task keeps running (a released task is
 * detached); its memory, and the user data via its destructor, are freed on
 * the loop thread once it has finished and no reference is left. Accepts
 * NULL. After the caller's last reference is gone, using the pointer is
 * undefined. Thread-safe: a last release from another thread hands the
 * free to the loop, whose close waits for it (the task's memory keeps the
 * loop from closing until then). Errors: UVA_EHANDLEKIND. Since 1.0. */
UVA_EXTERN int uva_task_release(uva_task_t *task);

/* ------------------------------------------------------------------------ */
/* Timer                                                                    */
/* ------------------------------------------------------------------------ */

/* Create a stopped timer. *out receives it (close it with uva_timer_close).
 * `data` is transferred: dtor(data) runs once when the timer's memory is
 * freed, after its close completed. Owner thread. Errors: UVA_EINVAL (NULL
 * out, loop or cb), UVA_EHANDLEKIND, UVA_EWRONGTHREAD, UVA_ENOMEM.
 * Since 1.0. */
UVA_EXTERN int uva_timer_new(uva_timer_t **out, uva_loop_t *loop,
                             uva_timer_cb cb, void *data, uva_free_cb dtor);

/* (Re)start the timer: it fires no sooner than timeout_ms from now, then
 * every repeat_ms (0 = one-shot). timeout_ms = 0 is call_soon: the callback
 * runs at the next pass. Timers and task sleeps due at the same time fire in
 * the order they were started. Starting an active timer restarts it.
 * 0 <= timeout_ms, repeat_ms <= 2^40. Owner thread. Errors: UVA_EINVAL,
 * UVA_EHANDLEKIND, UVA_ECLOSED, UVA_EWRONGTHREAD, UVA_ENOMEM. Since 1.0. */
UVA_EXTERN int uva_timer_start(uva_timer_t *timer, int64_t timeout_ms,
                               int64_t repeat_ms);

/* Stop the timer; its callback will not fire until started again. Stopping
 * a stopped timer does nothing. Owner thread. Errors: UVA_EINVAL,
 * UVA_EHANDLEKIND, UVA_ECLOSED, UVA_EWRONGTHREAD. Since 1.0. */
UVA_EXTERN int uva_timer_stop(uva_timer_t *timer);

/* *out = 1 if the timer is started (waiting to fire), else 0. */
UVA_EXTERN int uva_timer_active(int *out, uva_timer_t *timer);

/* *out = the timer's user data (borrowed). Owner thread. Since 1.0. */
UVA_EXTERN int uva_timer_get_data(void **out, uva_timer_t *timer);

/* An unreferenced active timer does not keep uva_loop_run(DEFAULT) alive.
 * Timers start referenced. Owner thread. Since 1.0. */
UVA_EXTERN int uva_timer_ref(uva_timer_t *timer);
UVA_EXTERN int uva_timer_unref(uva_timer_t *timer);

/* Stop and close the timer. close_cb (may be NULL) runs at a later pass;
 * then the memory is freed and dtor(data) runs. The timer callback never
 * fires after this call. Accepts NULL; closing a timer whose close is
 * pending does nothing (returns 0). Owner thread. Errors: UVA_EHANDLEKIND,
 * UVA_EWRONGTHREAD. Since 1.0. */
UVA_EXTERN int uva_timer_close(uva_timer_t *timer,
                               uva_timer_close_cb close_cb);

/* ------------------------------------------------------------------------ */
/* Synchronisation: event, lock, semaphore, queue, thread-safe flag          */
/* ------------------------------------------------------------------------ */

/* How a task waits on these objects ("call again"). A call that cannot
 * complete at once registers the task as a waiter and returns UVA_EAGAIN;
 * the step then returns UVA_TASK_PENDING. When the object has something for
 * the task it hands it over directly (lock ownership, a permit, an item, a
 * queue slot, a set) and wakes the task, which runs after the tasks that
 * were already ready; the step makes the same call again and it completes
 * (returns 0). Waiters are served in FIFO order. A repeated call that finds
 * the task still waiting (it was woken for another reason) returns
 * UVA_EAGAIN again and keeps its place.
 *
 * Cancellation leaves no trace: when a cancellation is delivered to a task
 * (or it finishes) its registrations are withdrawn, and whatever was already
 * handed to it and not yet taken goes to the next waiter (or back into the
 * object). A task may wait on several objects at once, but on one object at
 * a time. The `task` argument need not be the running task; it must belong
 * to the object's loop (else UVA_EINVAL). NULL names the task whose step is
 * running in the calling thread; so do the wait calls of streams, servers,
 * UDP and poll handles below (UVA_EINVAL outside a step). Outside a step
 * the waits of this section take NULL as "no task": a call
 * that can complete at once does, as it would for a task (an event that
 * is set, a free lock or permit, room in the queue or an item in it, a set
 * flag), and one that would have to wait returns UVA_EINVAL and registers
 * nothing. Code that runs outside tasks (a callback, a test driving a
 * coroutine by hand) can so use them without a task.
 *
 * Closing: uva_<x>_close closes the object and ends the owner's use of the
 * pointer, as the close callback ends it for a libuv handle: the memory
 * may be freed inside the call (at once when no task waits), so no call
 * may pass the pointer afterwards, a second close included (undefined, as
 * for any freed pointer; a binding closes once). NULL is accepted (no-op).
 * Tasks waiting on it are woken and make one more call, their last use of
 * the pointer: it returns UVA_ECLOSED, also when the object had handed
 * them something before it closed (that goes back into the object, a
 * queued item to item_dtor), and the last such call frees the memory.
 * Until then the object counts as a handle for uva_loop_close.
 *
 * Every function here is owner-thread only (else UVA_EWRONGTHREAD) except
 * uva_flag_set. Common errors: UVA_EINVAL (NULL argument), UVA_EHANDLEKIND,
 * UVA_EWRONGTHREAD, UVA_ENOMEM (a wait could not be registered). Since 1.0.
 */

/* Withdraw the task's wait on one object (event, lock, semaphore, queue,
 * flag, stream, server, UDP socket or poll handle) without cancelling the
 * task, as a cancellation would: whatever was already handed to it and not
 * yet taken goes to the next waiter (or back into the object), and the
 * task is not woken for it any more. For a task that gives up one wait and
 * goes on (a Rust future dropped inside a select or a timeout). `object` is
 * only compared, never read, so it may already be closed. Owner thread.
 * Errors: UVA_ENOENT (the task does not wait on it), UVA_EINVAL (NULL),
 * UVA_EHANDLEKIND, UVA_EWRONGTHREAD. Since 1.0. */
UVA_EXTERN int uva_task_withdraw(uva_task_t *task, const void *object);

/* Event: set wakes every waiter; waiting on a set event completes at once. */
UVA_EXTERN int uva_event_new(uva_event_t **out, uva_loop_t *loop);
UVA_EXTERN int uva_event_set(uva_event_t *event);
UVA_EXTERN int uva_event_clear(uva_event_t *event);
UVA_EXTERN int uva_event_is_set(int *out, uva_event_t *event);
/* 0 once set (even if cleared again before the task ran), UVA_EAGAIN,
 * UVA_ECLOSED. */
UVA_EXTERN int uva_event_wait(uva_event_t *event, uva_task_t *task);
UVA_EXTERN int uva_event_close(uva_event_t *event);

/* Lock (not owned by a task: any code may release it). A release with
 * waiters hands the lock to the first waiter. */
UVA_EXTERN int uva_lock_new(uva_lock_t **out, uva_loop_t *loop);
/* 0 = the lock is now held for the task; UVA_EAGAIN; UVA_ECLOSED. */
UVA_EXTERN int uva_lock_acquire(uva_lock_t *lock, uva_task_t *task);
/* 0, or UVA_EBUSY when locked. */
UVA_EXTERN int uva_lock_try_acquire(uva_lock_t *lock);
/* UVA_EINVAL when not locked. */
UVA_EXTERN int uva_lock_release(uva_lock_t *lock);
UVA_EXTERN int uva_lock_locked(int *out, uva_lock_t *lock);
UVA_EXTERN int uva_lock_close(uva_lock_t *lock);

/* Counting semaphore starting at `value` (>= 0). bound > 0 makes it bounded:
 * value <= bound, and a release that would exceed it fails with
 * UVA_EOVERFLOW; bound = 0 is unbounded (a release past INT64_MAX gives
 * UVA_EOVERFLOW). UVA_EINVAL for value < 0 or value > bound. */
UVA_EXTERN int uva_sem_new(uva_sem_t **out, uva_loop_t *loop, int64_t value,
                           int64_t bound);
UVA_EXTERN int uva_sem_acquire(uva_sem_t *sem, uva_task_t *task);
/* 0, or UVA_EBUSY when no permit is free. */
UVA_EXTERN int uva_sem_try_acquire(uva_sem_t *sem);
UVA_EXTERN int uva_sem_release(uva_sem_t *sem);
UVA_EXTERN int uva_sem_value(int64_t *out, uva_sem_t *sem);
UVA_EXTERN int uva_sem_close(uva_sem_t *sem);

/* FIFO queue of opaque items. maxsize = 0 is unbounded. Items are
 * transferred: put gives the item to the queue, get gives it to the caller;
 * items still queued when the queue's memory is freed are passed to
 * item_dtor (may be NULL). */
UVA_EXTERN int uva_queue_new(uva_queue_t **out, uva_loop_t *loop,
                             size_t maxsize, uva_free_cb item_dtor);
/* 0 = the item is in the queue; UVA_EAGAIN = full: the item was NOT taken,
 * call again with it when the task runs (a slot is then reserved for it);
 * UVA_ECLOSED. */
UVA_EXTERN int uva_queue_put(uva_queue_t *queue, uva_task_t *task, void *item);
/* 0 with *out = the oldest item; UVA_EAGAIN (empty); UVA_ECLOSED. A woken
 * getter holds a claim on the front item until it runs, so items always
 * leave in the order they were put. A task that waits in a put on this
 * queue gets UVA_EBUSY from a get, and the other way round. */
UVA_EXTERN int uva_queue_get(void **out, uva_queue_t *queue, uva_task_t *task);
/* UVA_EQUEUEFULL when full (or putters wait), UVA_ECLOSED. */
UVA_EXTERN int uva_queue_put_nowait(uva_queue_t *queue, void *item);
/* UVA_EQUEUEEMPTY when empty. */
UVA_EXTERN int uva_queue_get_nowait(void **out, uva_queue_t *queue);
/* Items a get could take now (claimed ones excluded). */
UVA_EXTERN int uva_queue_size(size_t *out, uva_queue_t *queue);
UVA_EXTERN int uva_queue_empty(int *out, uva_queue_t *queue);
/* Full counts slots reserved for woken putters. */
UVA_EXTERN int uva_queue_full(int *out, uva_queue_t *queue);
UVA_EXTERN int uva_queue_close(uva_queue_t *queue);

/* Thread-safe flag (MicroPython's ThreadSafeFlag): one waiting task; a wait
 * that returns 0 clears the flag; sets before a wait coalesce into one. */
UVA_EXTERN int uva_flag_new(uva_flag_t **out, uva_loop_t *loop);
/* Thread-safe and async-signal-safe (only atomics and uv_async_send): may
 * be called from any thread or a signal handler until uva_flag_close is
 * called (the caller orders the two; an open flag keeps the loop from
 * closing, and a close of the loop that races a set waits for the set to
 * finish). Errors: UVA_EINVAL, UVA_EHANDLEKIND, UVA_ECLOSED (the flag's
 * loop is closing: cannot happen while the flag is open). */
UVA_EXTERN int uva_flag_set(uva_flag_t *flag);
/* 0 (was set; now cleared), UVA_EAGAIN, UVA_EBUSY (another task waits),
 * UVA_ECLOSED. */
UVA_EXTERN int uva_flag_wait(uva_flag_t *flag, uva_task_t *task);
UVA_EXTERN int uva_flag_close(uva_flag_t *flag);

/* ------------------------------------------------------------------------ */
/* Streams: TCP, Unix-domain sockets, pipes, TTYs, adopted descriptors       */
/* ------------------------------------------------------------------------ */

/* A stream reads into a buffer in the core and serves reads from it; writes
 * go out at once where the kernel takes them and are queued (copied) for the
 * rest. Waiting follows the "call again" protocol of the synchronisation
 * section: UVA_EAGAIN means the task now waits on the stream and will be
 * woken; the step calls again. Reads never lose bytes: a read that fails or
 * is cancelled leaves the buffer as it was.
 *
 * Flow control: the core stops reading from the socket while the buffer
 * holds `high_water` bytes or more (or what a waiting read_exactly or
 * read_line needs, if larger) and resumes below it. One read from the
 * socket takes up to 64 KiB, so the buffer may hold that much more.
 *
 * Liveness: an open stream, UDP socket or poll handle does not by itself
 * keep uva_loop_run(DEFAULT) running; the tasks waiting on it do, and so do
 * pending connects, writes and shutdowns. A listening server does, until it
 * is closed (as in libuv).
 *
 * Errors of the connection (ECONNRESET, EPIPE, ...) are returned by the read
 * or write call that meets them, and by later ones. After uva_stream_close
 * or uva_stream_abort, calls return UVA_ECLOSED; tasks waiting on the stream
 * are woken and their repeated call returns UVA_ECLOSED. Owner thread only,
 * as everything; common errors UVA_EINVAL, UVA_EHANDLEKIND, UVA_EWRONGTHREAD,
 * UVA_ENOMEM. Since 1.0. */

typedef void (*uva_stream_close_cb)(uva_stream_t *stream, void *data);

/* Connect to host:port over TCP (host is a name, resolved asynchronously,
 * or a numeric IPv4/IPv6 address; each resolved address is tried in turn).
 * *out receives the stream at once; uva_stream_wait_connected tells when it
 * is connected. The caller owns the stream (uva_stream_close).
 * Errors: UVA_EINVAL (NULL host, port outside 0..65535). Name-resolution
 * failures (UVA_EAI_*) and connect failures (UVA_ECONNREFUSED, ...) are
 * returned by uva_stream_wait_connected. */
UVA_EXTERN int uva_tcp_connect(uva_stream_t **out, uva_loop_t *loop,
                               const char *host, int port);

/* Connect to a Unix-domain socket at `path`. As uva_tcp_connect. */
UVA_EXTERN int uva_pipe_connect(uva_stream_t **out, uva_loop_t *loop,
                                const char *path);

/* 0 once connected; UVA_EAGAIN (registered); the connect error. A stream
 * made by accept or uva_stream_open_fd is connected from the start. */
UVA_EXTERN int uva_stream_wait_connected(uva_stream_t *stream,
                                         uva_task_t *task);

/* Adopt an open descriptor: a TTY, a pipe or a socket (TCP or Unix).
 * The stream owns the descriptor from then on and closes it. A regular
 * file cannot be a stream (UVA_EINVAL; use uva_poll_t or plain I/O).
 * A descriptor that a handle of the loop holds already (a stream, server,
 * UDP socket or poll handle not closed yet) is refused with UVA_EEXIST,
 * with either poller. A TTY is read only from the first read on (other
 * streams read ahead at once): a stream only written to leaves the
 * terminal's input to its readers. Errors: UVA_EBADF, UVA_EINVAL,
 * UVA_EEXIST, libuv's errors. */
UVA_EXTERN int uva_stream_open_fd(uva_stream_t **out, uva_loop_t *loop,
                                  int fd);

/* Settings. high_water: reading pauses at this many buffered bytes
 * (default 65536, >= 1). low_water: uva_stream_drain completes when queued
 * write bytes are at or below it (default 16384). line_limit: the longest
 * line read_line accepts, delimiter included (default 65536, >= 1;
 * SIZE_MAX: no limit but memory).
 * delimiter: the line end (default '\n'). nodelay: 1 disables Nagle's
 * algorithm on a TCP stream (UVA_ENOTSUP on other kinds), 0 enables it. */
typedef enum {
  UVA_STREAM_HIGH_WATER = 1,
  UVA_STREAM_LOW_WATER = 2,
  UVA_STREAM_LINE_LIMIT = 3,
  UVA_STREAM_DELIMITER = 4,
  UVA_STREAM_NODELAY = 5
} uva_stream_option;
UVA_EXTERN int uva_stream_set(uva_stream_t *stream, uva_stream_option option,
                              size_t value);

/* Read up to len bytes into buf: *nread >= 1, or 0 at end of stream.
 * UVA_EAGAIN while nothing is buffered. (len = 0 reads nothing and returns
 * 0 at once.) A read may also take bytes past len from the kernel into the
 * stream's buffer (uva_stream_buffered counts them; the next reads return
 * them first): a young connection whose reads fill buf does, a few times,
 * so that Linux sizes its receive window for them. */
UVA_EXTERN int uva_stream_read(size_t *nread, uva_stream_t *stream,
                               uva_task_t *task, void *buf, size_t len);

/* As uva_stream_read, but the bytes that do not fit in buf go on into
 * spill, in the same call (one system call when the core reads straight
 * from the kernel): spill is written only once buf is full, and *nread
 * (<= len + spill_len) counts both. For a caller that sizes buf by a guess
 * (uva_stream_read_hint), so that a right guess needs no copy after and a
 * wrong one no second read. spill may be NULL when spill_len is 0. Errors
 * as uva_stream_read, and UVA_EINVAL if len + spill_len overflows. */
UVA_EXTERN int uva_stream_read_spill(size_t *nread, uva_stream_t *stream,
                                     uva_task_t *task, void *buf, size_t len,
                                     void *spill, size_t spill_len);

/* *out = a guess at what the next read returns, to size its buffer: the
 * bytes buffered, or while none are, the count of the stream's last read
 * from the kernel (0 before the first). A hint only: messages of one size
 * are read that size at a time, others need not be. */
UVA_EXTERN int uva_stream_read_hint(size_t *out, uva_stream_t *stream);

/* Zero-copy read: *data and *len describe every buffered byte (*len >= 1;
 * *len = 0 at end of stream); UVA_EAGAIN while nothing is buffered. Nothing
 * is consumed: call uva_stream_consume with what was used. The bytes stay
 * valid until the stream's next read, peek, consume, feed_eof, close or
 * abort, or the end of the step, whichever comes first; uva_stream_write,
 * uva_stream_writev and the getters do not move them, so they can be passed
 * straight to a write (an echo copies nothing).
 * Reads from the socket fill up to 64 KiB of the buffer at a time; once one
 * fills that, later ones take up to 128 KiB (still at most 64 KiB past the
 * flow-control limit), so that a message of up to 128 KiB comes in one
 * read and an echo writes it back in one call. */
UVA_EXTERN int uva_stream_peek(const void **data, size_t *len,
                               uva_stream_t *stream, uva_task_t *task);

/* Drop the first n buffered bytes (n <= buffered, else UVA_EINVAL). */
UVA_EXTERN int uva_stream_consume(uva_stream_t *stream, size_t n);

/* Fill buf with exactly n bytes. UVA_EINCOMPLETE if the stream ends first:
 * the bytes that did arrive stay buffered (uva_stream_buffered tells how
 * many). n may exceed high_water. */
UVA_EXTERN int uva_stream_read_exactly(uva_stream_t *stream, uva_task_t *task,
                                       void *buf, size_t n);

/* Read one line, delimiter included (at end of stream: what is left, and
 * *len = 0 once nothing is). If the line is longer than buflen, nothing is
 * consumed, *len is set to its length and UVA_ENOBUFS is returned: call
 * again with a larger buffer. A line longer than line_limit fails with
 * UVA_ELINETOOLONG (nothing consumed; read it with uva_stream_read). A
 * connection error met before the line's delimiter (ECONNRESET, ...) is
 * returned as such, not the unterminated part as a last line; that part
 * stays buffered. */
UVA_EXTERN int uva_stream_read_line(size_t *len, uva_stream_t *stream,
                                    uva_task_t *task, void *buf,
                                    size_t buflen);

/* Read through the first occurrence of the separator sep[0..seplen) (any
 * bytes, seplen >= 1), separator included: asyncio's readuntil. As
 * uva_stream_read_line (UVA_ENOBUFS, the connection error, line_limit,
 * counting the separator), except at the end of the stream: if the
 * separator did not come, UVA_EINCOMPLETE with *len = the bytes buffered
 * (not consumed; read them with uva_stream_read). On UVA_ELINETOOLONG
 * *len = asyncio's LimitOverrunError.consumed: the bytes before the
 * separator, or when none is buffered, those that cannot begin one. sep is
 * borrowed for the call (a repeated call passes it again). Errors also:
 * UVA_EINVAL (sep NULL, seplen 0). Since 1.0. */
UVA_EXTERN int uva_stream_read_until(size_t *len, uva_stream_t *stream,
                                     uva_task_t *task, const void *sep,
                                     size_t seplen, void *buf, size_t buflen);

/* *state = 0 while more bytes may come, UVA_EOF once the end of the stream
 * was read (or fed, uva_stream_feed_eof), or the read error met (sticky:
 * ECONNRESET, ...). Bytes may still be buffered (uva_stream_buffered): the
 * reads return them first. Never waits. Since 1.0. */
UVA_EXTERN int uva_stream_read_state(int *state, uva_stream_t *stream);

/* End the read side here, as if the peer had: the core stops reading from
 * the descriptor, reads return what is buffered, then end of stream, and
 * waiting readers are woken (asyncio's StreamReader.feed_eof). Writing is
 * not affected. 0; UVA_ECLOSED. Since 1.0. */
UVA_EXTERN int uva_stream_feed_eof(uva_stream_t *stream);

/* Wait for the end of the stream, buffering everything (high_water does
 * not apply); *len = the bytes buffered. Then read them with
 * uva_stream_read. */
UVA_EXTERN int uva_stream_read_to_eof(size_t *len, uva_stream_t *stream,
                                      uva_task_t *task);

/* *out = bytes buffered and not yet read. */
UVA_EXTERN int uva_stream_buffered(size_t *out, uva_stream_t *stream);

/* Write len bytes: what the kernel takes now is written, the rest is copied
 * and queued. *queued (may be NULL) = bytes queued after this call. Errors:
 * a connection error met earlier, UVA_EPIPE after uva_stream_shutdown,
 * UVA_ECLOSED. */
UVA_EXTERN int uva_stream_write(size_t *queued, uva_stream_t *stream,
                                const void *buf, size_t len);

/* A piece of memory for uva_stream_writev: len bytes at base (borrowed for
 * the call). Its layout is part of the ABI. Since 1.0. */
typedef struct uva_buf_s {
  const void *base;
  size_t len;
} uva_buf_t;

/* Write bufs[0..nbufs) in order, as uva_stream_write of their
 * concatenation: with nothing queued, one vectored system call
 * (sendmsg/writev) takes what the kernel accepts, and the rest is copied
 * into one queued request, so many small pieces cost one system call and
 * at most one allocation, not one each. More pieces than one vectored call
 * takes (IOV_MAX, 1024 on Linux) are all copied into that request's buffer
 * first and sent from it in one call.
 * bufs and the memory they point to are borrowed for the call only.
 * *queued (may be NULL) = bytes queued after this call. Errors as
 * uva_stream_write, and UVA_EINVAL (bufs NULL with nbufs > 0, a NULL base
 * with len > 0, a total over 4 GiB - 1). Since 1.0. */
UVA_EXTERN int uva_stream_writev(size_t *queued, uva_stream_t *stream,
                                 const uva_buf_t *bufs, size_t nbufs);

/* 0 once the queued bytes are at or below low_water; UVA_EAGAIN; a write
 * error. */
UVA_EXTERN int uva_stream_drain(uva_stream_t *stream, uva_task_t *task);

/* Write, then drain, in one call (the seed's awrite): the first call writes
 * and the repeated calls (after UVA_EAGAIN) only wait; buf is not read
 * again. */
UVA_EXTERN int uva_stream_write_drain(uva_stream_t *stream, uva_task_t *task,
                                      const void *buf, size_t len);

/* Half-close: after the queued bytes are written the peer sees end of
 * stream; reading goes on. On a pipe (a child's stdin, or a pipe or FIFO
 * adopted with uva_stream_open_fd), which has no half-close, the stream
 * lets go of the pipe once the queue is written: the reader sees end of
 * stream when no other descriptor holds the write end, and the stream's
 * descriptor (uva_stream_fileno) names an empty pipe from then on; the
 * stream stays open until uva_stream_close. Writes after it fail with
 * UVA_EPIPE. 0 once done (then again at once); UVA_EAGAIN (registered)
 * while the queue is written; a write error; UVA_ENOTCONN on a stream not
 * open for writing (a pipe's read end); UVA_ENOTSOCK on a TTY; UVA_ECLOSED.
 * Since 1.0. */
UVA_EXTERN int uva_stream_shutdown(uva_stream_t *stream, uva_task_t *task);

/* The peer's or the local address: numeric host into `host` (NUL-
 * terminated, hostlen >= 46 suffices) and *port (0 for Unix sockets, whose
 * path goes to host). Errors: UVA_ENOTCONN, UVA_ENOBUFS, UVA_ENOTSUP. */
UVA_EXTERN int uva_stream_peer_address(uva_stream_t *stream, char *host,
                                       size_t hostlen, int *port);
UVA_EXTERN int uva_stream_local_address(uva_stream_t *stream, char *host,
                                        size_t hostlen, int *port);

/* *fd = the stream's descriptor (a socket or a pipe), for the options a
 * program sets on it itself (setsockopt) or to ask about it. The stream
 * keeps owning it: do not close it, read from it or write to it; it is
 * valid until the stream's close. Errors: UVA_ENOTCONN (still connecting:
 * the descriptor may change), UVA_ENOTSUP (no descriptor on this system),
 * UVA_ECLOSED. Since 1.0. */
UVA_EXTERN int uva_stream_fileno(int *fd, uva_stream_t *stream);

/* Graceful close: queued writes are flushed first, then the stream is
 * closed; close_cb (may be NULL) runs once the close completed, then the
 * memory is freed. Accepts NULL; a second close is a no-op. */
UVA_EXTERN int uva_stream_close(uva_stream_t *stream,
                                uva_stream_close_cb close_cb, void *data);

/* Close now: queued writes are dropped (a TCP peer sees a reset).
 * Otherwise as uva_stream_close; also valid after uva_stream_close, to
 * stop waiting for the flush. */
UVA_EXTERN int uva_stream_abort(uva_stream_t *stream,
                                uva_stream_close_cb close_cb, void *data);

/* ---- servers ----------------------------------------------------------- */

typedef void (*uva_server_connection_cb)(uva_server_t *server,
                                         uva_stream_t *stream, void *data);
typedef void (*uva_server_close_cb)(uva_server_t *server, void *data);

/* Listen on host:port (numeric address or a name, resolved here; NULL or ""
 * for all IPv4 addresses; port 0 picks a free port) with SO_REUSEADDR and
 * the given backlog (<= 0: 511). Errors: UVA_EADDRINUSE, UVA_EACCES,
 * UVA_EAI_*. */
UVA_EXTERN int uva_tcp_listen(uva_server_t **out, uva_loop_t *loop,
                              const char *host, int port, int backlog);

/* Listen on a Unix-domain socket path. */
UVA_EXTERN int uva_pipe_listen(uva_server_t **out, uva_loop_t *loop,
                               const char *path, int backlog);

/* Accept one connection: 0 with *out = a new connected stream the caller
 * owns; UVA_EAGAIN (registered). Not with a connection callback set. */
UVA_EXTERN int uva_server_accept(uva_stream_t **out, uva_server_t *server,
                                 uva_task_t *task);

/* Hand every new connection to cb (which owns the stream; it typically
 * spawns one handler task per connection, as start_server does). NULL goes
 * back to uva_server_accept. Running out of descriptors (UVA_EMFILE) does
 * not stop the server: it serves again once descriptors are free. */
UVA_EXTERN int uva_server_on_connection(uva_server_t *server,
                                        uva_server_connection_cb cb,
                                        void *data);

/* The bound address, as uva_stream_local_address (the port chosen for 0).
 * host may be NULL (with hostlen 0) to ask for the port alone. */
UVA_EXTERN int uva_server_address(uva_server_t *server, char *host,
                                  size_t hostlen, int *port);

/* Stop listening and close; waiting acceptors get UVA_ECLOSED. Accepts
 * NULL; a second close is a no-op. */
UVA_EXTERN int uva_server_close(uva_server_t *server,
                                uva_server_close_cb close_cb, void *data);

/* ---- UDP --------------------------------------------------------------- */

typedef void (*uva_udp_close_cb)(uva_udp_t *udp, void *data);

/* A datagram socket; bind or connect it (or send, which binds to any
 * address). Received datagrams are buffered whole (up to high_water bytes,
 * option UVA_STREAM_HIGH_WATER; further datagrams wait in the kernel). */
UVA_EXTERN int uva_udp_new(uva_udp_t **out, uva_loop_t *loop);
UVA_EXTERN int uva_udp_bind(uva_udp_t *udp, const char *host, int port);
UVA_EXTERN int uva_udp_connect(uva_udp_t *udp, const char *host, int port);
UVA_EXTERN int uva_udp_set(uva_udp_t *udp, uva_stream_option option,
                           size_t value);
/* Send one datagram to host:port (numeric), or to the connected peer with
 * host NULL. Errors: UVA_EMSGSIZE, UVA_EINVAL, libuv's. */
UVA_EXTERN int uva_udp_send(uva_udp_t *udp, const void *buf, size_t len,
                            const char *host, int port);
/* Receive one whole datagram: 0 with *len and the source address (host may
 * be NULL); UVA_EAGAIN (registered); UVA_ENOBUFS when buflen is smaller
 * than the datagram (*len = its size, nothing consumed). */
UVA_EXTERN int uva_udp_recv(size_t *len, uva_udp_t *udp, uva_task_t *task,
                            void *buf, size_t buflen, char *host,
                            size_t hostlen, int *port);
UVA_EXTERN int uva_udp_local_address(uva_udp_t *udp, char *host,
                                     size_t hostlen, int *port);
/* *fd = the UDP socket's descriptor, for the options a program sets on it
 * itself (setsockopt) or to ask about it. The UDP socket keeps owning it:
 * do not close it, read from it or write to it; it is valid until
 * uva_udp_close. Errors: UVA_ENOTCONN (no socket yet: neither bound,
 * connected nor sent from), UVA_ENOTSUP (no descriptor on this system),
 * UVA_ECLOSED, UVA_EINVAL (fd NULL). Since 1.0. */
UVA_EXTERN int uva_udp_fileno(int *fd, uva_udp_t *udp);
UVA_EXTERN int uva_udp_close(uva_udp_t *udp, uva_udp_close_cb close_cb,
                             void *data);

/* ---- readiness of an arbitrary descriptor (the seed's IORead/IOWrite) --- */

#define UVA_READABLE 1
#define UVA_WRITABLE 2

typedef void (*uva_poll_close_cb)(uva_poll_t *poll, void *data);

/* A poll watches a descriptor number that the caller keeps owning (a
 * socket, pipe, TTY, eventfd...; not a regular file); it never closes it.
 * The caller may close the descriptor at any time, under a wait or between
 * waits, and reuse its number: no sequence of uva_poll_* calls and
 * close(2)s aborts the process (libuv's own poll handle would). On Linux:
 * - a wait on a closed number returns UVA_EBADF (UVA_EPERM if the number
 *   now names a regular file); the poll stays usable and is closed as
 *   usual;
 * - a wait after the number was reused watches the new file;
 * - a task waiting when the descriptor is closed is not woken by it (no
 *   event comes from a closed file, as with epoll and select): the caller
 *   withdraws the wait or closes the poll (UVA_ECLOSED);
 * - a new poll on a number whose file was closed takes the number over
 *   from the poll that held it: that poll's waiter is woken, and its
 *   waits return UVA_EBADF from then on; close it as usual. A second poll
 *   on a descriptor whose file is still open under its number is refused
 *   with UVA_EEXIST;
 * - a descriptor closed under a wait while a dup (or a child process)
 *   keeps the file open may wake the poll's next wait on that number once
 *   spuriously (the kernel keeps the old file in the poll's epoll set):
 *   readiness is a hint, the caller's non-blocking call decides.
 * An error or hang-up reports the asked events as ready (the caller's own
 * call then meets the error). Elsewhere a poll is libuv's uv_poll_t and
 * libuv's rules hold: close the poll before the descriptor.
 * Owner thread only. Errors: UVA_EBADF (fd < 0 or closed), UVA_EPERM (a
 * regular file), UVA_EEXIST, UVA_ENOMEM, libuv's. */
UVA_EXTERN int uva_poll_new(uva_poll_t **out, uva_loop_t *loop, int fd);
/* Wait until the descriptor is readable and/or writable (events: a mask of
 * UVA_READABLE, UVA_WRITABLE): 0 with *revents; UVA_EAGAIN (registered);
 * UVA_EBADF / UVA_EPERM (the number was closed, see above); UVA_ECLOSED
 * (the poll was closed). One waiting task per poll handle (else
 * UVA_EBUSY). A poll is armed one-shot only while a task waits. */
UVA_EXTERN int uva_poll_wait(int *revents, uva_poll_t *poll, uva_task_t *task,
                             int events);
/* Close the poll (never the descriptor): a waiting task is woken with
 * UVA_ECLOSED; close_cb runs in a later pass. May be called before or
 * after the descriptor was closed. */
UVA_EXTERN int uva_poll_close(uva_poll_t *poll, uva_poll_close_cb close_cb,
                              void *data);

/* ------------------------------------------------------------------------ */
/* Child processes                                                          */
/* ------------------------------------------------------------------------ */

/* A child process started with uva_process_spawn. Waiting for its exit is
 * a wait of the "call again" kind (see Synchronisation), which a task can
 * be cancelled out of or withdraw from; its pipes are ordinary streams.
 * A process handle does not keep uva_loop_run(DEFAULT) running by itself;
 * a task waiting for the exit does (as for streams).
 *
 * No zombie is left behind: the core reaps every child it started, also
 * after uva_process_close and after uva_loop_close. A child that is still
 * running when its handle is closed is watched on by its loop, which reaps
 * it when it exits during a later run (a run with nothing to do does not
 * poll, as in libuv); uva_loop_close does not wait for it (an unclosed
 * process handle makes it return UVA_EBUSY, a closed one does not), and
 * hands it to a thread of the core that waits for exactly the pids handed
 * to it (never waitpid(-1): other code's children are left alone) and
 * reaps them whenever they exit. The child is not killed unless the handle
 * was spawned with UVA_PROCESS_KILL_ON_CLOSE.
 *
 * The child is started with posix_spawn (vfork-style, on Linux glibc's
 * clone(CLONE_VM|CLONE_VFORK)) with every signal's default action and an
 * empty signal mask. SIGCHLD: each loop that spawned watches it and
 * reaps its own children (waitpid on their pids); signal watchers on
 * SIGCHLD (below) still see it. A child reaped by other code first (a
 * waitpid on its pid or on -1, SIGCHLD set to SIG_IGN) leaves no status:
 * its wait reports exit code 255 (as asyncio's). Owner thread only, as
 * everything; common errors UVA_EINVAL, UVA_EHANDLEKIND, UVA_EWRONGTHREAD,
 * UVA_ENOMEM. Since 1.0. */

typedef struct uva_process_s uva_process_t;
typedef void (*uva_process_close_cb)(uva_process_t *process, void *data);

/* How the child's descriptor 0, 1 or 2 is set up. */
typedef enum {
  UVA_STDIO_INHERIT = 0, /* the parent's descriptor of the same number
                            (/dev/null if the parent's is closed) */
  UVA_STDIO_NULL = 1,    /* /dev/null (the seat of a closed one: a child must
                            not get an unrelated file on 0..2) */
  UVA_STDIO_FD = 2,      /* the parent's descriptor `fd` (duplicated; the
                            parent keeps owning it) */
  UVA_STDIO_PIPE = 3,    /* a pipe; the parent's end is a uva_stream_t
                            (uva_process_stream) */
  UVA_STDIO_STDOUT = 4   /* descriptor 2 only: the same as the child's
                            descriptor 1 (subprocess.STDOUT) */
} uva_stdio_kind;

typedef struct {
  uva_stdio_kind kind;
  int fd; /* for UVA_STDIO_FD */
} uva_stdio_t;

/* Flags of uva_process_options_t. UVA_PROCESS_SETSID: the child starts a
 * new session (and process group), as a shell's job.
 * UVA_PROCESS_KILL_ON_CLOSE: uva_process_close sends SIGKILL to a child
 * still running. */
#define UVA_PROCESS_SETSID 1
#define UVA_PROCESS_KILL_ON_CLOSE 2

/* Options of uva_process_spawn. An option struct: set size to its sizeof
 * (UVA_PROCESS_OPTIONS_INIT does, with every other field zero, which means
 * "as the parent": stdio inherited, environment and directory the
 * parent's). Later versions only add fields at the end. */
typedef struct {
  size_t size;             /* sizeof(uva_process_options_t) */
  const char *file;        /* the program; looked up in PATH unless it
                               contains '/' (the PATH of env when env is
                               given). NULL: args[0] */
  const char *const *args; /* argv, NULL-terminated, args[0] the name the
                               program sees; required (at least args[0]) */
  const char *const *env;  /* "NAME=value" strings, NULL-terminated; NULL:
                               the parent's environment */
  const char *cwd;         /* working directory; NULL: the parent's */
  uva_stdio_t stdio[3];    /* descriptors 0, 1, 2 */
  unsigned int flags;      /* UVA_PROCESS_* */
} uva_process_options_t;

#define UVA_PROCESS_OPTIONS_INIT                                              \
  {                                                                           \
    sizeof(uva_process_options_t), 0, 0, 0, 0,                                \
        {{UVA_STDIO_INHERIT, 0},                                              \
         {UVA_STDIO_INHERIT, 0},                                              \
         {UVA_STDIO_INHERIT, 0}},                                             \
        0                                                                     \
  }

/* Start a child process. *out receives the process; the caller owns it
 * (uva_process_close). Every pointer in options is read during the call
 * only. Errors: UVA_EINVAL (NULL args, size too small, a bad stdio kind,
 * UVA_STDIO_FD with a negative fd, UVA_STDIO_STDOUT not on descriptor 2,
 * an unknown flag), UVA_ENOENT (no such program, or no such cwd),
 * UVA_EACCES, UVA_EBADF (a UVA_STDIO_FD descriptor that is not open),
 * UVA_ENOMEM, UVA_EMFILE, or another libuv spawn error (a
 * failed exec is reported here, not as an exit); on error nothing was
 * started and nothing is left open (and uva_loop_close needs no run of the
 * loop first). */
UVA_EXTERN int uva_process_spawn(uva_process_t **out, uva_loop_t *loop,
                                 const uva_process_options_t *options);

/* The child's process id. Errors: UVA_EINVAL, UVA_EHANDLEKIND. */
UVA_EXTERN int uva_process_pid(int *pid, uva_process_t *process);

/* Take the parent's end of the pipe on the child's descriptor fd (0, 1 or
 * 2) spawned as UVA_STDIO_PIPE: a stream of the same loop (write to fd 0,
 * read from 1 and 2). Ownership passes to the caller (uva_stream_close),
 * and the stream outlives the process handle. A pipe not taken is closed
 * by uva_process_close. The child reads the end of its input once the
 * stream of descriptor 0 is shut down (uva_stream_shutdown) or closed
 * (uva_stream_close); both write what is queued first. Errors: UVA_ENOENT (not a pipe, or already taken),
 * UVA_EINVAL (fd not 0..2). */
UVA_EXTERN int uva_process_stream(uva_stream_t **out, uva_process_t *process,
                                  int fd);

/* Wait for the child's exit: 0 with *exit_status (its exit code, 0 when
 * killed) and *term_signal (the signal that ended it, else 0); either
 * pointer may be NULL. UVA_EAGAIN (registered) while it runs. Any number
 * of tasks may wait; all complete. After the exit every call returns 0 at
 * once; NULL task outside a step then works as "no task" (and returns
 * UVA_EINVAL while the child runs). */
UVA_EXTERN int uva_process_wait(int64_t *exit_status, int *term_signal,
                                uva_process_t *process, uva_task_t *task);

/* Send signal signum to the child (0 checks that it exists).
 * Errors: UVA_ESRCH once it exited (it is reaped, its pid may be reused),
 * UVA_EINVAL (bad signum). */
UVA_EXTERN int uva_process_kill(uva_process_t *process, int signum);

/* Close the handle: sends SIGKILL first if spawned with
 * UVA_PROCESS_KILL_ON_CLOSE and still running; closes pipes not taken;
 * tasks waiting are woken and their repeated call returns UVA_ECLOSED.
 * The child is reaped whenever it exits (see above). close_cb(process,
 * data) runs once the handle's memory is about to be freed. Accepts NULL;
 * a second close does nothing. */
UVA_EXTERN int uva_process_close(uva_process_t *process,
                                 uva_process_close_cb close_cb, void *data);

/* ------------------------------------------------------------------------ */
/* Signals                                                                  */
/* ------------------------------------------------------------------------ */

/* Watch a signal on a loop. Any number of watchers, on any number of loops
 * in any threads, may watch the same signal: each gets every arrival.
 * While a watcher of a signal exists, the signal's default action (e.g.
 * termination for SIGTERM, SIGINT) does not happen; when the last watcher
 * of a signal closes, the action is reset to SIG_DFL (a binding that had
 * its own handler installs it again). Arrivals that come before the
 * watcher is waited on are counted and coalesce, as the kernel coalesces
 * signals: one completed wait reports how many arrived since the last.
 *
 * A watcher is used either by a waiting task (uva_signal_wait) or by a
 * callback (uva_signal_on_signal), or both. A watcher does not keep
 * uva_loop_run(DEFAULT) running; a task waiting on it does.
 * Owner thread only. Since 1.0. */

typedef struct uva_signal_s uva_signal_t;
typedef void (*uva_signal_cb)(uva_signal_t *sig, int signum, void *data);
typedef void (*uva_signal_close_cb)(uva_signal_t *sig, void *data);

/* Start watching signum. Errors: UVA_EINVAL (not a signal that can be
 * caught: 0, SIGKILL, SIGSTOP, out of range), libuv's errors. */
UVA_EXTERN int uva_signal_new(uva_signal_t **out, uva_loop_t *loop,
                              int signum);

/* Wait for the next arrival: 0 with *count (>= 1, arrivals since the last
 * completed wait; may be NULL); UVA_EAGAIN (registered). One waiting task
 * per watcher (else UVA_EBUSY). */
UVA_EXTERN int uva_signal_wait(uint64_t *count, uva_signal_t *sig,
                               uva_task_t *task);

/* Call cb(sig, signum, data) on the loop thread at each arrival (once per
 * loop pass that saw one or more), after waiting tasks were woken. NULL cb
 * removes it. */
UVA_EXTERN int uva_signal_on_signal(uva_signal_t *sig, uva_signal_cb cb,
                                    void *data);

/* The watched signal number. */
UVA_EXTERN int uva_signal_signum(int *signum, uva_signal_t *sig);

/* Stop watching; a waiting task's repeated call returns UVA_ECLOSED.
 * Accepts NULL; a second close does nothing. */
UVA_EXTERN int uva_signal_close(uva_signal_t *sig,
                                uva_signal_close_cb close_cb, void *data);

/* ------------------------------------------------------------------------ */
/* Blocking work on the loop's thread pool                                  */
/* ------------------------------------------------------------------------ */

/* Each loop has a bounded pool of threads for blocking work (its own job
 * functions, and the file operations below). Threads start when jobs
 * need them, up to the pool size (uva_loop_configure, UVA_LOOP_POOL_SIZE;
 * default min(32, CPUs + 4), as asyncio's default executor), and jobs
 * beyond that wait in FIFO order. Why not libuv's 4: jobs that block
 * (a lookup, a file, a driver) finish in proportion to the threads (64
 * jobs of 2 ms in flight on 2 CPUs: 1.4x the jobs per second of 4
 * threads), while only jobs that do nothing gain from fewer threads than
 * that (1.4x at 4 threads on 2 CPUs). Threads start as the work needs
 * them, not one per queued job: a job goes to a thread at once when no
 * thread is busy; otherwise it waits for the busy ones, and one more
 * thread takes it only when none of them took a job for 150 us (they
 * block), then the next 150 us later while jobs wait, up to the size. So
 * jobs that end in microseconds run on one or two threads however many
 * are in flight, and blocking jobs bring the pool to its size within a
 * millisecond or two. Threads stay until the loop closes (or the size is
 * lowered). A job is a uva_work_t: waiting for it is a wait of the "call
 * again" kind (see Synchronisation).
 *
 * Cancellation: a job not yet started can be dropped (uva_work_cancel,
 * uva_work_close); one running always runs to its end, and its result is
 * discarded if its handle was closed. A task cancelled while it waits
 * only stops waiting (the job goes on): a binding that wants the job
 * dropped calls uva_work_cancel.
 *
 * Closing: as the sync objects (see Synchronisation): uva_work_close ends
 * the owner's use of the pointer (no second close); tasks waiting get one
 * more call returning UVA_ECLOSED. Jobs count as handles for
 * uva_loop_close (UVA_EBUSY) until they ended and were closed; closing the
 * loop joins the pool's threads. Since 1.0. */

typedef struct uva_work_s uva_work_t;

/* Runs on a pool thread with the job's data. It must not call into the
 * loop, except the thread-safe calls. */
typedef void (*uva_work_fn)(void *data);

/* Called on the loop thread when the job has ended: status 0 (fn
 * returned) or UVA_ECANCELED (dropped before it started). Runs before
 * waiting tasks are woken; never for a job already closed. */
typedef void (*uva_work_done_cb)(uva_work_t *work, int status, void *data);

/* Queue fn(data) on the loop's pool. `data` is transferred: dtor(data) (if
 * not NULL) runs exactly once, on the loop thread, when the job's memory
 * is freed (after it ended and was closed), never while fn runs. done may
 * be NULL. Errors: UVA_EINVAL (NULL fn), UVA_ENOMEM, UVA_EAGAIN (no pool
 * thread could be started and none exists; nothing queued, dtor not
 * called). Owner thread. */
UVA_EXTERN int uva_work_submit(uva_work_t **out, uva_loop_t *loop,
                               uva_work_fn fn, void *data, uva_free_cb dtor,
                               uva_work_done_cb done);

/* Wait for the job's end: 0 once fn returned, or the file operation's
 * result (0 or its error code); UVA_ECANCELED if it was dropped before it
 * started; UVA_EAGAIN (registered) until then. Any number of tasks may
 * wait. After the end every call returns at once; NULL task outside a
 * step works as "no task". */
UVA_EXTERN int uva_work_wait(uva_work_t *work, uva_task_t *task);

/* Drop the job if it has not started: 0 (waiters complete with
 * UVA_ECANCELED, done runs with UVA_ECANCELED); UVA_EBUSY if it is
 * running or has ended (nothing changes). */
UVA_EXTERN int uva_work_cancel(uva_work_t *work);

/* 1 once the job has ended (fn returned or it was dropped), else 0. */
UVA_EXTERN int uva_work_done(int *out, uva_work_t *work);

/* Close the job (see above): one not started is dropped; one running
 * finishes on its thread and its memory is freed then. Accepts NULL. */
UVA_EXTERN int uva_work_close(uva_work_t *work);

/* Loop settings. UVA_LOOP_POOL_SIZE: the most pool threads (1..1024); may
 * be changed any time: threads above a lowered size leave once idle. */
typedef enum { UVA_LOOP_POOL_SIZE = 1 } uva_loop_option;
UVA_EXTERN int uva_loop_configure(uva_loop_t *loop, uva_loop_option option,
                                  uint64_t value);
UVA_EXTERN int uva_loop_get_option(uint64_t *out, uva_loop_t *loop,
                                   uva_loop_option option);

/* ------------------------------------------------------------------------ */
/* Files                                                                    */
/* ------------------------------------------------------------------------ */

/* File operations run on the loop's pool (as libuv runs uv_fs_*), each as
 * a job: uva_fs_<op> starts it and gives a uva_work_t, uva_work_wait waits
 * for it and returns the operation's result (0 or an error code such as
 * UVA_ENOENT, UVA_EACCES, UVA_EISDIR), the getters below read what it
 * produced, and uva_work_close frees it (dropping it if not started). The
 * job owns copies of its arguments (paths, data to write) and the buffer
 * it reads into, so nothing of the caller's need live while it runs, and
 * a task cancelled while it waits leaves nothing dangling. Files are plain
 * descriptors: `flags` are the platform's O_* flags (O_CLOEXEC is always
 * added), `mode` the permission bits of a file created. Reads and writes
 * of len bytes are one job each: read large files in chunks (a reader that
 * asks for 1 GiB gets a 1 GiB buffer). Offsets: -1 uses and advances the
 * file position (read/write), >= 0 reads or writes at that offset
 * (pread/pwrite) and leaves the position alone. Owner thread; errors of
 * the starting call: UVA_EINVAL (NULL path, negative offset other than
 * -1, len > SSIZE_MAX), UVA_ENOMEM, UVA_EAGAIN (as uva_work_submit).
 * Since 1.0. */

UVA_EXTERN int uva_fs_open(uva_work_t **out, uva_loop_t *loop,
                           const char *path, int flags, int mode);
UVA_EXTERN int uva_fs_close(uva_work_t **out, uva_loop_t *loop, int fd);
UVA_EXTERN int uva_fs_read(uva_work_t **out, uva_loop_t *loop, int fd,
                           size_t len, int64_t offset);
/* data is copied into the job. */
UVA_EXTERN int uva_fs_write(uva_work_t **out, uva_loop_t *loop, int fd,
                            const void *data, size_t len, int64_t offset);
UVA_EXTERN int uva_fs_fsync(uva_work_t **out, uva_loop_t *loop, int fd,
                            int datasync);
UVA_EXTERN int uva_fs_ftruncate(uva_work_t **out, uva_loop_t *loop, int fd,
                                int64_t length);
UVA_EXTERN int uva_fs_stat(uva_work_t **out, uva_loop_t *loop,
                           const char *path);
UVA_EXTERN int uva_fs_lstat(uva_work_t **out, uva_loop_t *loop,
                            const char *path);
UVA_EXTERN int uva_fs_fstat(uva_work_t **out, uva_loop_t *loop, int fd);
UVA_EXTERN int uva_fs_rename(uva_work_t **out, uva_loop_t *loop,
                             const char *from, const char *to);
UVA_EXTERN int uva_fs_unlink(uva_work_t **out, uva_loop_t *loop,
                             const char *path);
UVA_EXTERN int uva_fs_mkdir(uva_work_t **out, uva_loop_t *loop,
                            const char *path, int mode);
UVA_EXTERN int uva_fs_rmdir(uva_work_t **out, uva_loop_t *loop,
                            const char *path);
/* The whole directory, without "." and "..", in the order the system
 * gives (uva_fs_dirent). */
UVA_EXTERN int uva_fs_readdir(uva_work_t **out, uva_loop_t *loop,
                              const char *path);

/* Send len bytes of file in_fd from offset (-1: its position, advanced)
 * to the stream, zero-copy where the system can (sendfile(2) to a socket
 * or pipe). Bytes already queued on the stream go first; writes made
 * while it runs are queued behind it. The result is the count sent
 * (uva_fs_result): fewer than len only at end of file. A stream error
 * (UVA_EPIPE, UVA_ECONNRESET) ends it; closing the stream under it ends it
 * with UVA_ECLOSED. A sendfile that fails or is stopped part-way (its job
 * closed while it runs) fails the stream's writing as a write error
 * would: the writes queued behind it are dropped, not sent after a partial
 * file, and later writes return its error (UVA_ECANCELED for a stopped
 * one); one dropped before it started (uva_work_cancel) changes nothing.
 * Errors also UVA_EBUSY (another sendfile on the stream runs), UVA_ENOTSUP
 * (a stream with no descriptor, or a TLS stream: the file would go out
 * unencrypted). */
UVA_EXTERN int uva_fs_sendfile(uva_work_t **out, uva_stream_t *stream,
                               int in_fd, int64_t offset, size_t len);

/* After the job ended with 0: open gives the descriptor (the caller owns
 * it: uva_fs_close or close(2)), read/write/sendfile the byte count (0 at
 * end of file), readdir the number of entries, others 0.
 * Errors: UVA_EAGAIN (not ended), UVA_EINVAL (not a file job), the
 * operation's error. A sendfile that ended with an error still sets *out
 * to the bytes it sent before it (0 if none): the file's bytes past
 * offset + *out did not go out. */
UVA_EXTERN int uva_fs_result(int64_t *out, uva_work_t *work);

/* The bytes a read job read: *data points into the job (valid until
 * uva_work_close), *len as uva_fs_result. */
UVA_EXTERN int uva_fs_data(const void **data, size_t *len, uva_work_t *work);

/* File types of uva_stat_t.type and uva_fs_dirent. */
typedef enum {
  UVA_FILE_UNKNOWN = 0,
  UVA_FILE_REGULAR = 1,
  UVA_FILE_DIR = 2,
  UVA_FILE_LINK = 3,
  UVA_FILE_FIFO = 4,
  UVA_FILE_SOCKET = 5,
  UVA_FILE_CHAR = 6,
  UVA_FILE_BLOCK = 7
} uva_file_type;

/* What stat, lstat and fstat give: an option struct (set size). */
typedef struct {
  size_t size; /* sizeof(uva_stat_t), set by the caller */
  uva_file_type type;
  uint64_t mode; /* st_mode, type bits included */
  uint64_t dev, ino, nlink, uid, gid, rdev;
  uint64_t file_size, blksize, blocks;
  int64_t atime_ns, mtime_ns, ctime_ns; /* since the Unix epoch */
} uva_stat_t;

/* Copy a stat job's result into *out (out->size set by the caller; only
 * that many bytes are written). */
UVA_EXTERN int uva_fs_statbuf(uva_stat_t *out, uva_work_t *work);

/* Entry i (0 <= i < the count from uva_fs_result) of a readdir job: its
 * name (valid until uva_work_close) and type (UVA_FILE_UNKNOWN where the
 * file system does not say). Errors: UVA_EINVAL (i out of range). */
UVA_EXTERN int uva_fs_dirent(const char **name, uva_file_type *type,
                             uva_work_t *work, size_t i);

/* ------------------------------------------------------------------------ */
/* TLS                                                                      */
/* ------------------------------------------------------------------------ */

/* TLS runs inside a stream: uva_tls_start turns a connected TCP stream (or
 * any other stream) into a TLS one, uva_tls_handshake waits for the
 * handshake, and from then on the stream calls above (read, read_exactly,
 * read_line, read_until, peek/consume, read_to_eof, write, writev, drain,
 * write_drain, shutdown, close, abort) carry plaintext over it, with the
 * same buffering, flow control (high_water counts plaintext, the write
 * queue counts the encrypted bytes) and errors as on a plain stream. The
 * core runs OpenSSL on memory buffers: encrypted bytes from the kernel go
 * through OpenSSL into the stream's read buffer, writes through OpenSSL
 * into the stream's write path; nothing blocks. TLS 1.2 and 1.3 only; no
 * renegotiation.
 *
 * Built without OpenSSL, every uva_tls_* call returns UVA_ENOTSUP
 * (uva_tls_available says which build this is).
 *
 * The end of a TLS stream: uva_stream_shutdown sends the TLS close_notify
 * alert, then shuts the TCP write side down; uva_stream_close sends it too
 * (after the queued writes), uva_stream_abort does not. A peer's
 * close_notify reads as the end of the stream (0 / UVA_EOF); a connection
 * that ends without one reads as UVA_ETLSEOF after the bytes that came (it
 * may have been cut short by an attacker: a protocol that frames its own
 * end may treat it as the end).
 *
 * Errors of the handshake (and of reads, for alerts that come later):
 * UVA_ETLSUNTRUSTED, UVA_ETLSEXPIRED, UVA_ETLSHOSTNAME, UVA_ETLSCERT
 * (the peer's certificate; uva_tls_verify_result says why in OpenSSL's
 * words), UVA_ETLSNOCERT (a server requiring a client certificate got
 * none), UVA_ETLSVERSION (no protocol version in common), UVA_ETLSALERT
 * (the peer sent a fatal alert, e.g. it rejected our certificate),
 * UVA_ETLSEOF (the peer closed during the handshake or without
 * close_notify), UVA_ETLS (any other failure of the TLS protocol);
 * uva_tls_error_text gives OpenSSL's reason for the last one. Since 1.0. */

typedef struct uva_tls_ctx_s uva_tls_ctx_t;

/* Which side of the handshake a context's streams take. */
typedef enum { UVA_TLS_CLIENT = 0, UVA_TLS_SERVER = 1 } uva_tls_role;

/* Verification of the peer's certificate (uva_tls_ctx_set_verify).
 * NONE: none (a client accepts any server; a server asks for no client
 * certificate). PEER: a client verifies the server's chain against the
 * trust store and its name against the name given to uva_tls_start; a
 * server asks for a client certificate and verifies it if one comes.
 * REQUIRE: as PEER, and a server fails the handshake without a client
 * certificate (UVA_ETLSNOCERT; a client is the same as PEER).
 * NO_HOSTNAME may be or'ed to PEER or REQUIRE: the chain is verified, the
 * host name is not (Python's check_hostname = False). */
#define UVA_TLS_VERIFY_NONE 0
#define UVA_TLS_VERIFY_PEER 1
#define UVA_TLS_VERIFY_REQUIRE 2
#define UVA_TLS_VERIFY_NO_HOSTNAME 0x10

/* Extra checks of the peer's chain (uva_tls_ctx_set_verify_flags), as
 * OpenSSL's X509_V_FLAG_* (Python's ssl.VERIFY_X509_*). X509_STRICT: the
 * certificates must follow RFC 5280 strictly (e.g. a CA certificate needs
 * keyUsage keyCertSign, a leaf an authorityKeyIdentifier; Python 3.13's
 * ssl.create_default_context sets it). X509_PARTIAL_CHAIN: a trusted
 * intermediate (or leaf) certificate ends the chain, with no self-signed
 * root needed. */
#define UVA_TLS_X509_STRICT 0x1
#define UVA_TLS_X509_PARTIAL_CHAIN 0x2

/* Protocol versions, as on the wire (uva_tls_ctx_set_versions,
 * uva_tls_version). */
#define UVA_TLS_VERSION_1_2 0x0303
#define UVA_TLS_VERSION_1_3 0x0304

/* 1 if this build has TLS (OpenSSL), else 0. Never fails; thread-safe. */
UVA_EXTERN int uva_tls_available(void);

/* A new context: *out receives it; the caller owns it (uva_tls_ctx_free).
 * A client context verifies the server (UVA_TLS_VERIFY_PEER) against the
 * system's trust store (OpenSSL's default paths, SSL_CERT_FILE and
 * SSL_CERT_DIR honoured), offers TLS 1.2 and 1.3 and keeps sessions to
 * resume (uva_tls_ctx_set_session_cache). A server context needs a
 * certificate and key (uva_tls_ctx_use_cert_*) before its first stream and
 * asks for no client certificate (UVA_TLS_VERIFY_NONE).
 *
 * Threads: a context belongs to no loop. Configure it (the set/load/use
 * calls) from one thread at a time, before the streams that use it start;
 * then streams of any loops on any threads may use it at once. A stream
 * keeps what it needs of its context: uva_tls_ctx_free may come while
 * streams still use it (from any thread), and the memory goes with the
 * last of them. Errors: UVA_EINVAL (out NULL, bad role), UVA_ENOMEM,
 * UVA_ETLS (OpenSSL failed to set up), UVA_ENOTSUP (no TLS in this
 * build). Since 1.0. */
UVA_EXTERN int uva_tls_ctx_new(uva_tls_ctx_t **out, uva_tls_role role);

/* Drop the owner's reference (see above). Accepts NULL. Since 1.0. */
UVA_EXTERN void uva_tls_ctx_free(uva_tls_ctx_t *ctx);

/* Verification mode: UVA_TLS_VERIFY_* (above). Errors: UVA_EINVAL.
 * Since 1.0. */
UVA_EXTERN int uva_tls_ctx_set_verify(uva_tls_ctx_t *ctx, int mode);

/* Extra checks of the peer's chain: UVA_TLS_X509_* or'ed (0: none, the
 * default); each call replaces the set. Applies to streams started after
 * it. Errors: UVA_EINVAL (an unknown flag), UVA_ENOTSUP (no TLS in this
 * build). Since 1.0. */
UVA_EXTERN int uva_tls_ctx_set_verify_flags(uva_tls_ctx_t *ctx, int flags);

/* Trust these CA certificates instead of the system's store: a PEM file
 * and/or a directory in OpenSSL's hashed layout (c_rehash); either may be
 * NULL, not both. Further calls add to what the first one loaded. The
 * _pem form reads PEM certificates from memory (len bytes, copied).
 * Errors: UVA_EINVAL, UVA_ENOENT (a file or directory missing), UVA_ETLS
 * (not PEM, or no certificate in it). Since 1.0. */
UVA_EXTERN int uva_tls_ctx_load_ca(uva_tls_ctx_t *ctx, const char *file,
                                   const char *dir);
UVA_EXTERN int uva_tls_ctx_load_ca_pem(uva_tls_ctx_t *ctx, const void *pem,
                                       size_t len);

/* This side's certificate chain (PEM: the leaf first, then intermediates)
 * and private key (PEM; key NULL: from the chain's file), checked against
 * each other. password decrypts an encrypted key (NULL: none). The _pem
 * form reads both from memory (copied). Errors: UVA_EINVAL, UVA_ENOENT (a
 * file missing), UVA_ETLS (not PEM, a wrong password, a key that does not
 * match the certificate). Since 1.0. */
UVA_EXTERN int uva_tls_ctx_use_cert_file(uva_tls_ctx_t *ctx,
                                         const char *chain_file,
                                         const char *key_file,
                                         const char *password);
UVA_EXTERN int uva_tls_ctx_use_cert_pem(uva_tls_ctx_t *ctx,
                                        const void *chain_pem,
                                        size_t chain_len, const void *key_pem,
                                        size_t key_len, const char *password);

/* The protocol versions allowed: min and max are UVA_TLS_VERSION_* or 0
 * for the default (TLS 1.2 and the newest, 1.3). Errors: UVA_EINVAL (an
 * unknown version, min > max). Since 1.0. */
UVA_EXTERN int uva_tls_ctx_set_versions(uva_tls_ctx_t *ctx, int min_version,
                                        int max_version);

/* Cipher suites, in OpenSSL's syntax: tls12 for TLS 1.2
 * ("ECDHE+AESGCM"), tls13 for TLS 1.3 ("TLS_AES_128_GCM_SHA256:...");
 * NULL keeps that list as it is. Errors: UVA_EINVAL (a list that selects
 * nothing). Since 1.0. */
UVA_EXTERN int uva_tls_ctx_set_ciphers(uva_tls_ctx_t *ctx, const char *tls12,
                                       const char *tls13);

/* Application protocols (ALPN), most preferred first (e.g. "h2",
 * "http/1.1"; each 1..255 bytes; count 0 clears the list). A client
 * offers them; a server picks the first of its list that the client
 * offered, and goes on without ALPN when none is (as Python's ssl).
 * protos is copied. Errors: UVA_EINVAL. Since 1.0. */
UVA_EXTERN int uva_tls_ctx_set_alpn(uva_tls_ctx_t *ctx,
                                    const char *const *protos, size_t count);

/* Session resumption. A client keeps the last session per server (the
 * name given to uva_tls_start and the peer's port), up to `size` servers
 * (the oldest is forgotten), and offers it on the next connection to the
 * same server; a server keeps up to `size` sessions and issues TLS 1.3
 * tickets. 0 turns resumption off. Default: 256. uva_tls_session_reused
 * tells whether a handshake resumed. Errors: UVA_EINVAL. Since 1.0. */
UVA_EXTERN int uva_tls_ctx_set_session_cache(uva_tls_ctx_t *ctx, size_t size);

/* Run TLS over an open stream, as ctx's role. The handshake starts at
 * once (a client sends its hello); uva_tls_handshake waits for its end.
 * Bytes already buffered on the stream are taken as the peer's first TLS
 * records (STARTTLS: read the plaintext command's reply first, exactly).
 * server_name: a client's SNI and the name its certificate is verified
 * against (an IP address literal is verified against the certificate's IP
 * addresses and sent as no SNI); NULL: no SNI and no name verified. A
 * server ignores it. The stream keeps a reference to ctx. Until the
 * handshake completes, reads and writes of the stream fail with
 * UVA_ENOTCONN (the handshake's error after it failed).
 * Errors: UVA_EINVAL (NULL stream or ctx), UVA_ENOTCONN (still
 * connecting), UVA_ECLOSED, UVA_EALREADY (TLS runs on it already),
 * UVA_EBUSY (a uva_fs_sendfile runs on the stream), UVA_ENOMEM,
 * UVA_ETLS (a server context with no certificate). Owner thread.
 * Since 1.0. */
UVA_EXTERN int uva_tls_start(uva_stream_t *stream, uva_tls_ctx_t *ctx,
                             const char *server_name);

/* Wait for the end of the handshake: 0 once done; UVA_EAGAIN (registered);
 * its error (see above; also a connection error, UVA_ECLOSED). The
 * handshake goes on while nobody waits: a task cancelled out of this wait
 * (the way to put a timeout on it: a timer that cancels the task, or the
 * binding's wait_for) leaves it running, and a later call waits again.
 * Errors also: UVA_EINVAL (no TLS on the stream). Since 1.0. */
UVA_EXTERN int uva_tls_handshake(uva_stream_t *stream, uva_task_t *task);

/* After the handshake: *out = the negotiated protocol version
 * (UVA_TLS_VERSION_*). Errors: UVA_EINVAL (no TLS on the stream),
 * UVA_ENOTCONN (handshake not done). Since 1.0. */
UVA_EXTERN int uva_tls_version(int *out, uva_stream_t *stream);

/* The negotiated application protocol (ALPN) into buf, NUL-terminated;
 * "" when none was. The cipher suite's name (OpenSSL's, e.g.
 * "TLS_AES_256_GCM_SHA384"). The server name a client sent (SNI; "" if
 * none), on either side. Errors: UVA_EINVAL, UVA_ENOTCONN, UVA_ENOBUFS
 * (buflen too small: 256 always suffices). Since 1.0. */
UVA_EXTERN int uva_tls_alpn(uva_stream_t *stream, char *buf, size_t buflen);
UVA_EXTERN int uva_tls_cipher(uva_stream_t *stream, char *buf, size_t buflen);
UVA_EXTERN int uva_tls_server_name(uva_stream_t *stream, char *buf,
                                   size_t buflen);

/* The peer's certificate, DER-encoded: *len = its size, copied into buf if
 * buflen suffices (UVA_ENOBUFS if not, *len still set: call again). 0 with
 * *len = 0 when the peer sent none. buf may be NULL with buflen 0 to ask
 * the size. Errors: UVA_EINVAL, UVA_ENOTCONN. Since 1.0. */
UVA_EXTERN int uva_tls_peer_cert(size_t *len, uva_stream_t *stream, void *buf,
                                 size_t buflen);

/* The result of verifying the peer's certificate, once the handshake ended
 * (also when it failed): *code = OpenSSL's X509_V_* code (0: verified, or
 * not verified at all), and its text into buf (may be NULL with buflen
 * 0; truncated to fit, always NUL-terminated when buflen > 0), e.g.
 * "certificate has expired". Errors: UVA_EINVAL, UVA_ENOTCONN (handshake
 * still running). Since 1.0. */
UVA_EXTERN int uva_tls_verify_result(int *code, uva_stream_t *stream,
                                     char *buf, size_t buflen);

/* OpenSSL's reason for the stream's last TLS error (the handshake's or a
 * later alert), e.g. "certificate verify failed: certificate has expired"
 * or "tlsv1 alert protocol version"; "" if none. Truncated to fit, always
 * NUL-terminated when buflen > 0. Errors: UVA_EINVAL. Since 1.0. */
UVA_EXTERN int uva_tls_error_text(uva_stream_t *stream, char *buf,
                                  size_t buflen);

/* *out = 1 if the handshake resumed an earlier session, else 0. Errors:
 * UVA_EINVAL, UVA_ENOTCONN. Since 1.0. */
UVA_EXTERN int uva_tls_session_reused(int *out, uva_stream_t *stream);

/* ------------------------------------------------------------------------ */
/* Wrap-around ticks (MicroPython's time.ticks_*)                           */
/* ------------------------------------------------------------------------ */

/* Period of the tick counter: values lie in [0, UVA_TICKS_PERIOD). */
#define UVA_TICKS_PERIOD (1L << 30)

/* Milliseconds of the monotonic clock modulo UVA_TICKS_PERIOD. Cannot fail;
 * thread-safe. Since 1.0. */
UVA_EXTERN long uva_ticks_ms(void);

/* ticks + delta, wrapped into the period. delta may be negative; it must lie
 * within +-UVA_TICKS_PERIOD/2 for the result to be meaningful. Any two
 * longs are accepted (the sum wraps modulo the period, never overflows).
 * Pure. Since 1.0. */
UVA_EXTERN long uva_ticks_add(long ticks, long delta);

/* The signed difference a - b, for values at most half a period apart:
 * the result lies in [-UVA_TICKS_PERIOD/2, UVA_TICKS_PERIOD/2) for any
 * two longs. Pure. Since 1.0. */
UVA_EXTERN long uva_ticks_diff(long a, long b);

#ifdef __cplusplus
}
#endif
#endif /* UVASYNC_H */
