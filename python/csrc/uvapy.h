/* uvapy.h: what the files of the Python binding's C share (private: only
 * the .c files beside it include it). The binding is ONE extension,
 * uvasync._uvasync, built by python/build_ffi.py: these files are compiled
 * next to cffi's own C file and linked with the core's static archive, so
 * the core is linked once. A function used by another file is declared
 * here, keeps its uvapy_ name and is hidden, as a static one was: nothing
 * here is exported from the extension but what cffi declares (GLUE_CDEF).
 *
 *   task.c       TaskBase: a Task's state, start, end and step
 *   loop.c       LoopBase; _uvapy_run (the loop run holding the GIL)
 *   sleep.c      sleep, sleep_ms and their awaitable
 *   gather.c     Gathering: gather's state
 *   stream_io.c  _read_bytes, _write_bytes, _writev_bytes
 *   sigaction.c  a signal's action saved and put back (add_signal_handler)
 *   work.c       _work_submit: a Python call as a job of the loop's pool
 *   transport.c  TransportCore: an asyncio stream transport's read task
 *                and writes
 *   handle.c     the asyncio loop's call_soon/call_at and their handles
 *   module.c     the module uvasync._cext; _uvapy_types, _uvapy_setup
 */
#ifndef UVAPY_H
#define UVAPY_H

#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <structmember.h>
#include <uvasync.h>

#pragma GCC visibility push(hidden)

/* The step of every Python task. The task's data is its Task object (a
 * TaskBase, below). The common step -- send None into the
 * coroutine, which yields None (UVA_TASK_YIELD) or _PENDING
 * (UVA_TASK_PENDING) -- is done here with the C API; everything else (a
 * cancellation to throw, another yielded value, the end of the coroutine)
 * goes to uvasync.core._drive, which owns those semantics. Either way the
 * step enters Python once. The loop runs holding the GIL (_uvapy_run), so
 * a step takes it only when run from elsewhere. */
extern PyObject *uvapy_pending;      /* uvasync.core._PENDING */
extern PyObject *uvapy_drive;        /* uvasync.core._drive */
extern PyObject *uvapy_finish;       /* "_finish" */
extern PyObject *uvapy_result;       /* _ST_RESULT */
extern PyObject *uvapy_task_cls;     /* uvasync.core.Task */
extern PyObject *uvapy_loop_cls;     /* uvasync.core.Loop */
extern PyObject *uvapy_error;        /* uvasync._ffi.error */
extern PyObject *uvapy_exclog;       /* uvasync.core._ExcLog */
extern PyObject *uvapy_extra;        /* uvasync.core._TaskExtra */
extern PyObject *uvapy_as_coro;      /* uvasync.core._task_coro */
extern PyObject *uvapy_default_loop; /* uvasync.core._task_loop */
extern PyObject *uvapy_s_call_soon;
extern PyObject *uvapy_zero;

/* Type checks that try the usual exact class first: PyObject_TypeCheck on
 * a subclass walks its MRO, several times per task. */
#define UVAPY_IS(o, cls, base) \
  (Py_IS_TYPE((o), (PyTypeObject *) (cls)) || PyObject_TypeCheck((o), (base)))
#define UVAPY_IS_TASK(o) UVAPY_IS(o, uvapy_task_cls, &uvapy_task_type)
#define UVAPY_IS_LOOP(o) UVAPY_IS(o, uvapy_loop_cls, &uvapy_loop_type)

/* This thread's: the task whose step runs (NULL outside steps), set by
 * _uvapy_step_c and read by current_task() and gather; and whether
 * _uvapy_run holds the GIL for this thread's loop just now, when a step
 * needs no PyGILState_Ensure. One thread-local: a step reads both at once. */
typedef struct {
  PyObject *running;
  int loop_has_gil;
} uvapy_thread_state;
extern __thread uvapy_thread_state uvapy_ts;

/* ---- TaskBase: the state of a Task, in C ---------------------------------
 * uvasync.core.Task subclasses it and keeps its methods in Python; what
 * runs on every task -- making it, its steps, its end -- reads and writes
 * these fields directly. The core task's data is the object itself: the
 * list of live tasks (all loops, under the GIL) holds it until it ends. */
typedef struct uvapy_task_s {
  PyObject_HEAD PyObject *coro;
  PyObject *loop;
  PyObject *value;     /* result or exception, once done */
  PyObject *callbacks; /* add_done_callback: list, or NULL */
  PyObject *notify;    /* internal: called at once when done (list) */
  PyObject *log_exc;   /* an _ExcLog while an exception is unretrieved */
  PyObject *extra;     /* a _TaskExtra (name, cancellation), or NULL */
  PyObject *context;   /* the contextvars.Context its steps run in */
  PyObject *weakrefs;
  uva_task_t *ctask;      /* NULL once done: the core frees it */
  signed char state;      /* _ST_PENDING, _RESULT, _EXCEPTION, _CANCELLED */
  char live;              /* in the list of live tasks (which holds a ref) */
  char coro_untracked;    /* this task took coro out of the cyclic GC */
  char context_untracked; /* ... and its own copy of the context */
  char sleeping;          /* a Sleep made it wait: its next resume ends it */
  uint32_t gather_idx;    /* its slot in the last gather that watched it */
  struct uvapy_task_s *live_prev, *live_next;
} uvapy_task;

enum { UVAPY_PENDING, UVAPY_RESULT, UVAPY_EXCEPTION, UVAPY_CANCELLED };

/* ---- LoopBase: the loop's core handle, in C ------------------------------
 * uvasync.core.Loop subclasses it; _addr is the uva_loop_t address (0 once
 * closed) and _main the task run_until_complete waits for, both read at a
 * task's end without an attribute lookup. */
typedef struct {
  PyObject_HEAD uva_loop_t *h;
  PyObject *main; /* a Task or NULL (None) */
  /* The asyncio loop's (aio_loop.EventLoop, handle.c): */
  struct uvapy_aio_timer *aio_armed; /* armed timers (a list) */
  struct uvapy_aio_timer *aio_idle;  /* stopped timers kept for reuse */
  Py_ssize_t aio_narmed, aio_nidle;
  char aio_debug;   /* debug mode: handles are made and run in Python */
  char aio_closing; /* close() began: what is still queued is dropped */
} uvapy_loop;

/* ---- Across files ------------------------------------------------------ */

/* module.c */
void uvapy_raise(int rc, const char *what);
int _uvapy_types(void);
int _uvapy_setup(void);

/* task.c */
extern PyTypeObject uvapy_task_type;
PyObject *uvapy_spawn_coros_fn(PyObject *mod, PyObject *const *args,
                               Py_ssize_t nargs);
PyObject *uvapy_create_task_fn(PyObject *mod, PyObject *const *args,
                               Py_ssize_t nargs, PyObject *kwnames);
PyObject *uvapy_live_tasks_fn(PyObject *mod, PyObject *u);
PyObject *uvapy_current_task_fn(PyObject *mod, PyObject *u);
void _uvapy_wake_on_done(uva_task_t *task, int result, void *data);

/* loop.c */
extern PyTypeObject uvapy_loop_type;
uva_loop_t *uvapy_loop_ptr(PyObject *loop);
int _uvapy_run(uva_loop_t *loop, int mode);

/* sleep.c */
extern PyTypeObject uvapy_sleep_type;
PyObject *uvapy_sleep_fn(PyObject *mod, PyObject *const *args, Py_ssize_t nargs,
                         PyObject *kwnames);
PyObject *uvapy_sleep_ms_fn(PyObject *mod, PyObject *const *args,
                            Py_ssize_t nargs, PyObject *kwnames);

/* gather.c */
extern PyTypeObject uvapy_gathering_type;
extern PyObject *uvapy_s_notify, *uvapy_s_state;
void uvapy_gathering_ended(PyObject *gathering, PyObject *child, int st);

/* stream_io.c */
PyObject *uvapy_read_bytes(PyObject *self, PyObject *const *args,
                           Py_ssize_t nargs);
PyObject *uvapy_write_bytes(PyObject *self, PyObject *const *args,
                            Py_ssize_t nargs);
PyObject *uvapy_writev_bytes(PyObject *self, PyObject *const *args,
                             Py_ssize_t nargs);
PyObject *uvapy_read_into_bytes(uva_stream_t *stream, Py_ssize_t n);

/* sigaction.c */
void *_uvapy_sigaction_get(int signum);
int _uvapy_sigaction_set(int signum, void *saved);
int _uvapy_sigaction_is_default(int signum);
void _uvapy_sigaction_free(void *saved);

/* handle.c */
extern PyMethodDef uvapy_aio_methods[];
PyObject *uvapy_aio_setup(PyObject *mod, PyObject *const *args,
                          Py_ssize_t nargs);
int uvapy_aio_traverse(uvapy_loop *l, visitproc visit, void *arg);
void uvapy_aio_clear(uvapy_loop *l);

/* work.c */
PyObject *uvapy_work_submit(PyObject *self, PyObject *const *args,
                            Py_ssize_t nargs);

/* transport.c */
extern PyTypeObject uvapy_transport_type;
int uvapy_transport_init(void);

#pragma GCC visibility pop

#endif /* UVAPY_H */
