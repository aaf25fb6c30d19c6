"""cffi (API mode) build of `uvasync._uvasync`: the declarations come from
bindings/uvasync.cdef.h, generated from include/uvasync.h, so the Python
package never keeps its own copy of the C API."""
import hashlib
import os

from cffi import FFI

HERE = os.path.dirname(os.path.abspath(__file__))
VENDOR = os.path.join(HERE, "_vendor")

with open(os.path.join(VENDOR, "bindings", "uvasync.cdef.h")) as f:
    CDEF = f.read()


def core_digest(root):
    """sha256 of the core's sources under root (src/ and include/): built
    into the extension, so that a test can tell an extension linked from
    an older core (a stale build directory) from a fresh one."""
    h = hashlib.sha256()
    for sub in ("src", "include"):
        base = os.path.join(root, sub)
        for d, _, files in sorted(os.walk(base)):
            for name in sorted(files):
                if name.endswith((".cpp", ".h")):
                    path = os.path.join(d, name)
                    h.update(os.path.relpath(path, root).encode())
                    with open(path, "rb") as f:
                        h.update(f.read())
    return h.hexdigest()

# What the Python layer adds: its callbacks into Python (one per kind of
# event) and one C helper that wakes a task without entering Python.
GLUE_CDEF = """
int _uvapy_types(void);
int _uvapy_setup(void);
extern "Python" void _uvapy_call(void *data);
extern "Python" void _uvapy_timer(uva_timer_t *timer, void *data);
extern "Python" void _uvapy_connection(uva_server_t *server,
                                       uva_stream_t *stream, void *data);
extern "Python" void _uvapy_stream_closed(uva_stream_t *stream, void *data);
extern "Python" void _uvapy_server_closed(uva_server_t *server, void *data);
void _uvapy_wake_on_done(uva_task_t *task, int result, void *data);
int _uvapy_run(uva_loop_t *loop, int mode);
const char *_uvapy_core_digest(void);
"""

GLUE_SOURCE = r"""
#include <math.h>
#include <stdint.h>
#include <structmember.h>
#include <uvasync.h>

/* The step of every Python task. The task's data is its Task object (a
 * TaskBase, below). The common step -- send None into the
 * coroutine, which yields None (UVA_TASK_YIELD) or _PENDING
 * (UVA_TASK_PENDING) -- is done here with the C API; everything else (a
 * cancellation to throw, another yielded value, the end of the coroutine)
 * goes to uvasync.core._drive, which owns those semantics. Either way the
 * step enters Python once. The loop runs holding the GIL (_uvapy_run), so
 * a step takes it only when run from elsewhere. */
static PyObject *uvapy_pending; /* uvasync.core._PENDING */
static PyObject *uvapy_drive;   /* uvasync.core._drive */
static PyObject *uvapy_finish;  /* "_finish" */
static PyObject *uvapy_result;  /* _ST_RESULT */
static PyObject *uvapy_task_cls; /* uvasync.core.Task */
static PyObject *uvapy_loop_cls; /* uvasync.core.Loop */
static PyObject *uvapy_error;    /* uvasync._ffi.error */
static PyObject *uvapy_exclog;   /* uvasync.core._ExcLog */
static PyObject *uvapy_extra;    /* uvasync.core._TaskExtra */
static PyObject *uvapy_as_coro;  /* uvasync.core._task_coro */
static PyObject *uvapy_default_loop; /* uvasync.core._task_loop */
static PyObject *uvapy_s_call_soon;
static PyObject *uvapy_zero;

static int _uvapy_step_c(uva_task_t *ctask, int status, void *data);

/* Type checks that try the usual exact class first: PyObject_TypeCheck on
 * a subclass walks its MRO, several times per task. */
#define UVAPY_IS(o, cls, base) \
    (Py_IS_TYPE((o), (PyTypeObject *)(cls)) || PyObject_TypeCheck((o), (base)))
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
static __thread uvapy_thread_state uvapy_ts;

/* Raise error(rc, what) of uvasync._ffi: the one error mapping. */
static void uvapy_raise(int rc, const char *what) {
    PyObject *e = PyObject_CallFunction(uvapy_error, "is", rc, what);
    if (e != NULL) {
        PyErr_SetObject((PyObject *)Py_TYPE(e), e);
        Py_DECREF(e);
    }
}

/* ---- TaskBase: the state of a Task, in C ---------------------------------
 * uvasync.core.Task subclasses it and keeps its methods in Python; what
 * runs on every task -- making it, its steps, its end -- reads and writes
 * these fields directly. The core task's data is the object itself: the
 * list of live tasks (all loops, under the GIL) holds it until it ends. */
typedef struct uvapy_task_s {
    PyObject_HEAD
    PyObject *coro;
    PyObject *loop;
    PyObject *value;     /* result or exception, once done */
    PyObject *callbacks; /* add_done_callback: list, or NULL */
    PyObject *notify;    /* internal: called at once when done (list) */
    PyObject *log_exc;   /* an _ExcLog while an exception is unretrieved */
    PyObject *extra;     /* a _TaskExtra (name, cancellation), or NULL */
    PyObject *context;   /* the contextvars.Context its steps run in */
    PyObject *weakrefs;
    uva_task_t *ctask;   /* NULL once done: the core frees it */
    signed char state;   /* _ST_PENDING, _RESULT, _EXCEPTION, _CANCELLED */
    char live;           /* in the list of live tasks (which holds a ref) */
    char coro_untracked; /* this task took coro out of the cyclic GC */
    char context_untracked; /* ... and its own copy of the context */
    char sleeping;       /* a Sleep made it wait: its next resume ends it */
    uint32_t gather_idx; /* its slot in the last gather that watched it */
    struct uvapy_task_s *live_prev, *live_next;
} uvapy_task;

enum { UVAPY_PENDING, UVAPY_RESULT, UVAPY_EXCEPTION, UVAPY_CANCELLED };

static int uvapy_task_traverse(uvapy_task *t, visitproc visit, void *arg) {
    Py_VISIT(t->coro);
    Py_VISIT(t->loop);
    Py_VISIT(t->value);
    Py_VISIT(t->callbacks);
    Py_VISIT(t->notify);
    Py_VISIT(t->log_exc);
    Py_VISIT(t->extra);
    Py_VISIT(t->context);
    return 0;
}

/* A pending task's coroutine is reachable (task <- live list), so the
 * cyclic GC has nothing to find in it either; it goes back into the GC
 * before the task lets go of it, as CPython frees only tracked ones. */
static void uvapy_coro_retrack(uvapy_task *t) {
    if (t->coro_untracked) {
        t->coro_untracked = 0;
        if (!PyObject_GC_IsTracked(t->coro))
            PyObject_GC_Track(t->coro);
    }
}

/* The same for the task's own copy of the context. */
static void uvapy_context_retrack(uvapy_task *t) {
    if (t->context_untracked) {
        t->context_untracked = 0;
        if (!PyObject_GC_IsTracked(t->context))
            PyObject_GC_Track(t->context);
    }
}

static int uvapy_task_clear(uvapy_task *t) {
    if (t->coro != NULL)
        uvapy_coro_retrack(t);
    if (t->context != NULL)
        uvapy_context_retrack(t);
    Py_CLEAR(t->coro);
    Py_CLEAR(t->loop);
    Py_CLEAR(t->value);
    Py_CLEAR(t->callbacks);
    Py_CLEAR(t->notify);
    Py_CLEAR(t->log_exc);
    Py_CLEAR(t->extra);
    Py_CLEAR(t->context);
    return 0;
}

static void uvapy_task_dealloc(uvapy_task *t) {
    PyObject_GC_UnTrack(t);
    if (t->weakrefs != NULL)
        PyObject_ClearWeakRefs((PyObject *)t);
    uvapy_task_clear(t);
    Py_TYPE(t)->tp_free((PyObject *)t);
}

static uvapy_task *uvapy_live_first; /* the live tasks, newest first */

static void uvapy_live_add(uvapy_task *t) {
    Py_INCREF(t);
    t->live = 1;
    t->live_prev = NULL;
    t->live_next = uvapy_live_first;
    if (uvapy_live_first != NULL)
        uvapy_live_first->live_prev = t;
    uvapy_live_first = t;
}

/* Unlink; the caller drops the list's reference when done with t. */
static int uvapy_live_remove(uvapy_task *t) {
    if (!t->live)
        return 0;
    t->live = 0;
    if (t->live_prev != NULL)
        t->live_prev->live_next = t->live_next;
    else
        uvapy_live_first = t->live_next;
    if (t->live_next != NULL)
        t->live_next->live_prev = t->live_prev;
    t->live_prev = t->live_next = NULL;
    return 1;
}

/* ---- LoopBase: the loop's core handle, in C ------------------------------
 * uvasync.core.Loop subclasses it; _addr is the uva_loop_t address (0 once
 * closed) and _main the task run_until_complete waits for, both read at a
 * task's end without an attribute lookup. */
typedef struct {
    PyObject_HEAD
    uva_loop_t *h;
    PyObject *main; /* a Task or NULL (None) */
} uvapy_loop;

static PyObject *uvapy_loop_get_addr(uvapy_loop *l, void *u) {
    (void)u;
    return PyLong_FromVoidPtr(l->h);
}

static int uvapy_loop_set_addr(uvapy_loop *l, PyObject *v, void *u) {
    void *p;
    (void)u;
    if (v == NULL) {
        l->h = NULL;
        return 0;
    }
    p = PyLong_AsVoidPtr(v);
    if (p == NULL && PyErr_Occurred())
        return -1;
    l->h = (uva_loop_t *)p;
    return 0;
}

static PyObject *uvapy_loop_get_main(uvapy_loop *l, void *u) {
    PyObject *m = l->main != NULL ? l->main : Py_None;
    (void)u;
    Py_INCREF(m);
    return m;
}

static int uvapy_loop_set_main(uvapy_loop *l, PyObject *v, void *u) {
    (void)u;
    if (v == Py_None)
        v = NULL;
    Py_XINCREF(v);
    Py_XSETREF(l->main, v);
    return 0;
}

static int uvapy_loop_traverse(uvapy_loop *l, visitproc visit, void *arg) {
    Py_VISIT(l->main);
    return 0;
}

static int uvapy_loop_clear(uvapy_loop *l) {
    Py_CLEAR(l->main);
    return 0;
}

static void uvapy_loop_dealloc(uvapy_loop *l) {
    PyObject_GC_UnTrack(l);
    uvapy_loop_clear(l);
    Py_TYPE(l)->tp_free((PyObject *)l);
}

static PyGetSetDef uvapy_loop_getset[] = {
    {"_addr", (getter)uvapy_loop_get_addr, (setter)uvapy_loop_set_addr, NULL,
     NULL},
    {"_main", (getter)uvapy_loop_get_main, (setter)uvapy_loop_set_main, NULL,
     NULL},
    {NULL}};

static PyTypeObject uvapy_loop_type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "uvasync._cext.LoopBase",
    .tp_basicsize = sizeof(uvapy_loop),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "The core handle of a uvasync Loop (see uvasync.core.Loop).",
    .tp_new = PyType_GenericNew,
    .tp_traverse = (traverseproc)uvapy_loop_traverse,
    .tp_clear = (inquiry)uvapy_loop_clear,
    .tp_dealloc = (destructor)uvapy_loop_dealloc,
    .tp_getset = uvapy_loop_getset,
};

/* The loop's core handle (NULL and RuntimeError once closed). */
static uva_loop_t *uvapy_loop_ptr(PyObject *loop) {
    uva_loop_t *p = NULL;
    if (UVAPY_IS_LOOP(loop))
        p = ((uvapy_loop *)loop)->h;
    else
        PyErr_SetString(PyExc_TypeError, "a uvasync loop was expected");
    if (p == NULL && !PyErr_Occurred())
        PyErr_SetString(PyExc_RuntimeError, "Event loop is closed");
    return p;
}

static int uvapy_task_start(uvapy_task *t, PyObject *coro, PyObject *loop,
                            PyObject *name, PyObject *context);

/* Task(coro, loop=None, name=None, context=None): register and spawn the
 * core task. */
static int uvapy_task_init(uvapy_task *t, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"coro", "loop", "name", "context", NULL};
    PyObject *coro, *loop = Py_None, *name = Py_None, *context = Py_None;
    Py_ssize_t n = PyTuple_GET_SIZE(args);
    if (kwds == NULL && n >= 1 && n <= 4) { /* Task(coro, loop): no parsing */
        coro = PyTuple_GET_ITEM(args, 0);
        if (n > 1)
            loop = PyTuple_GET_ITEM(args, 1);
        if (n > 2)
            name = PyTuple_GET_ITEM(args, 2);
        if (n > 3)
            context = PyTuple_GET_ITEM(args, 3);
    } else if (!PyArg_ParseTupleAndKeywords(args, kwds, "O|OOO:Task", kwlist,
                                            &coro, &loop, &name, &context)) {
        return -1;
    }
    return uvapy_task_start(t, coro, loop, name, context);
}

/* A task runs in a copy of the context current when it is made (or in the
 * one given), as in asyncio: a ContextVar set in it stays in it. */
static int uvapy_task_start(uvapy_task *t, PyObject *coro, PyObject *loop,
                            PyObject *name, PyObject *context) {
    int own_context = 0;
    uva_loop_t *l;
    uva_task_t *ct = NULL;
    int rc;
    if (t->coro != NULL) {
        PyErr_SetString(PyExc_RuntimeError, "the task is already running");
        return -1;
    }
    if (context == Py_None) {
        context = PyContext_CopyCurrent();
        if (context == NULL)
            return -1;
        own_context = 1;
    } else if (PyContext_CheckExact(context)) {
        Py_INCREF(context);
    } else {
        PyErr_SetString(PyExc_TypeError,
                        "context must be a contextvars.Context");
        return -1;
    }
    Py_XSETREF(t->context, context);
    if (PyCoro_CheckExact(coro)) /* else: check it, or wrap an awaitable */
        Py_INCREF(coro);
    else if ((coro = PyObject_CallOneArg(uvapy_as_coro, coro)) == NULL)
        return -1;
    t->coro = coro;
    if (loop == Py_None) /* the running loop, or the thread's */
        loop = PyObject_CallNoArgs(uvapy_default_loop);
    else
        Py_INCREF(loop);
    if (loop == NULL)
        return -1;
    t->loop = loop;
    if (name != Py_None &&
        (t->extra = PyObject_CallOneArg(uvapy_extra, name)) == NULL)
        return -1;
    if ((l = uvapy_loop_ptr(loop)) == NULL)
        return -1;
    rc = uva_task_spawn(&ct, l, _uvapy_step_c, t, NULL);
    if (rc != 0) {
        t->state = UVAPY_CANCELLED;
        uvapy_raise(rc, "spawn");
        return -1;
    }
    uva_task_release(ct); /* detached: valid until it ends */
    t->ctask = ct;
    uvapy_live_add(t); /* before its first step, which finds it by data */
    /* A pending task is held by the live list: the cyclic GC has nothing
     * to find in it, and 100k pending tasks would make every collection
     * walk them. It is tracked again when it ends (uvapy_task_end). */
    PyObject_GC_UnTrack(t);
    if (PyObject_GC_IsTracked(coro)) {
        PyObject_GC_UnTrack(coro);
        t->coro_untracked = 1;
    }
    /* Its own context copy too: one more tracked object per task would
     * make spawning start collections more often (-14% tasks/s). */
    if (own_context && PyObject_GC_IsTracked(t->context)) {
        PyObject_GC_UnTrack(t->context);
        t->context_untracked = 1;
    }
    return 0;
}

/* _spawn_coros(aws, loop): a list of started Tasks on `loop`, one for each
 * item of the tuple `aws` -- or None unless they are all coroutines (the
 * caller then takes its general path). gather's common case, in one call. */
static PyObject *uvapy_spawn_coros_fn(PyObject *mod, PyObject *const *args,
                                      Py_ssize_t nargs) {
    PyTypeObject *tp = (PyTypeObject *)uvapy_task_cls;
    PyObject *aws, *loop, *out;
    char *untracked;
    Py_ssize_t i, n;
    int gc_was_on = 0;
    (void)mod;
    (void)gc_was_on;
    if (nargs != 2 || !PyTuple_CheckExact(args[0])) {
        PyErr_SetString(PyExc_TypeError, "_spawn_coros(tuple, loop)");
        return NULL;
    }
    aws = args[0];
    loop = args[1];
    n = PyTuple_GET_SIZE(aws);
    for (i = 0; i < n; i++)
        if (!PyCoro_CheckExact(PyTuple_GET_ITEM(aws, i)))
            Py_RETURN_NONE;
    if (uvapy_loop_ptr(loop) == NULL)
        return NULL;
    out = PyList_New(n);
    untracked = PyMem_Calloc(n > 0 ? n : 1, 1);
    if (out == NULL || untracked == NULL) {
        Py_XDECREF(out);
        PyMem_Free(untracked);
        return PyErr_NoMemory();
    }
    /* Out of the cyclic GC before the tasks are allocated: a collection
     * those allocations start then need not walk the coroutines. */
    for (i = 0; i < n; i++) {
        PyObject *c = PyTuple_GET_ITEM(aws, i);
        if (PyObject_GC_IsTracked(c)) {
            PyObject_GC_UnTrack(c);
            untracked[i] = 1;
        }
    }
#if PY_VERSION_HEX >= 0x030A0000
    /* Nor are these allocations counted towards a collection: the tasks
     * leave the GC as they are made and no Python code runs in between,
     * so there is nothing to collect, and each of the ~n/700 collections
     * they would start walks every container the caller holds (the list
     * of n coroutines among them). */
    gc_was_on = PyGC_Disable();
#endif
    for (i = 0; i < n; i++) {
        uvapy_task *t = (uvapy_task *)tp->tp_alloc(tp, 0);
        if (t == NULL ||
            uvapy_task_start(t, PyTuple_GET_ITEM(aws, i), loop, Py_None,
                             Py_None) < 0) {
            Py_XDECREF(t);
            break;
        }
        t->coro_untracked = untracked[i]; /* the task tracks it again */
        untracked[i] = 0;
        PyList_SET_ITEM(out, i, (PyObject *)t);
    }
#if PY_VERSION_HEX >= 0x030A0000
    if (gc_was_on)
        PyGC_Enable();
#endif
    if (i == n) {
        /* The collection the n allocations made due runs at the next one:
         * keep it off the two n-item containers it would walk. The tuple
         * holds only coroutines taken out of the GC (CPython untracks such
         * tuples itself); the list, of tasks out of it while pending, is
         * tracked again when gather's state takes it (watch). */
        if (PyObject_GC_IsTracked(aws))
            PyObject_GC_UnTrack(aws);
        PyObject_GC_UnTrack(out);
    }
    if (i < n) { /* failed: the coroutines not handed over go back */
        for (; i < n; i++)
            if (untracked[i])
                PyObject_GC_Track(PyTuple_GET_ITEM(aws, i));
        Py_CLEAR(out);
    }
    PyMem_Free(untracked);
    return out;
}

/* create_task(coro, *, name=None, context=None): uvasync.create_task, a
 * started Task on the running loop (else the thread's). In C because a
 * Python function looks each keyword-only default it was not given up in
 * a dict, on every call: two lookups per task once context= came. */
static PyObject *uvapy_create_task_fn(PyObject *mod, PyObject *const *args,
                                      Py_ssize_t nargs, PyObject *kwnames) {
    PyTypeObject *tp = (PyTypeObject *)uvapy_task_cls;
    PyObject *coro = nargs == 1 ? args[0] : NULL;
    PyObject *name = Py_None, *context = Py_None;
    Py_ssize_t i, nkw = kwnames != NULL ? PyTuple_GET_SIZE(kwnames) : 0;
    uvapy_task *t;
    (void)mod;
    if (nargs > 1) {
        PyErr_Format(PyExc_TypeError, "create_task() takes 1 positional "
                     "argument but %zd were given", nargs);
        return NULL;
    }
    for (i = 0; i < nkw; i++) {
        PyObject *k = PyTuple_GET_ITEM(kwnames, i);
        if (coro == NULL && PyUnicode_CompareWithASCIIString(k, "coro") == 0) {
            coro = args[nargs + i];
        } else if (PyUnicode_CompareWithASCIIString(k, "name") == 0) {
            name = args[nargs + i];
        } else if (PyUnicode_CompareWithASCIIString(k, "context") == 0) {
            context = args[nargs + i];
        } else {
            PyErr_Format(PyExc_TypeError, "create_task() got an unexpected "
                         "keyword argument '%U'", k);
            return NULL;
        }
    }
    if (coro == NULL) {
        PyErr_SetString(PyExc_TypeError, "create_task() missing required "
                        "argument 'coro'");
        return NULL;
    }
    if ((t = (uvapy_task *)tp->tp_alloc(tp, 0)) == NULL)
        return NULL;
    if (uvapy_task_start(t, coro, Py_None, name, context) < 0) {
        Py_DECREF(t);
        return NULL;
    }
    return (PyObject *)t;
}

static PyTypeObject uvapy_gathering_type; /* gather's state, below */
static void uvapy_gathering_ended(PyObject *gathering, PyObject *child,
                                  int st);

/* Call fn(task), reporting (not raising) what it raises. */
static void uvapy_call_report(PyObject *fn, PyObject *arg) {
    PyObject *r = PyObject_CallOneArg(fn, arg);
    if (r == NULL)
        PyErr_WriteUnraisable(fn);
    Py_XDECREF(r);
}

/* Tell one internal watcher that task ended in state: gather's state is
 * counted in C, anything else is called with the task. */
static void uvapy_notify(PyObject *fn, PyObject *task, int state) {
    if (Py_IS_TYPE(fn, &uvapy_gathering_type))
        uvapy_gathering_ended(fn, task, state);
    else
        uvapy_call_report(fn, task);
}

/* The end of a task: its state and value set, out of the table, then its
 * internal notifications (at once), done callbacks (call_soon), the
 * unretrieved-exception log and, for run_until_complete's task, the stop. */
static int uvapy_task_end(uvapy_task *t, int state, PyObject *value) {
    PyObject *self = (PyObject *)t, *notify, *cbs, *loop;
    Py_ssize_t i;
    int was_live;
    t->state = state;
    Py_INCREF(value);
    Py_XSETREF(t->value, value);
    Py_INCREF(self); /* the list's reference goes at the end */
    was_live = uvapy_live_remove(t);
    t->ctask = NULL; /* detached: the core frees it once its joiners ran */
    if (!PyObject_GC_IsTracked(self)) /* out of the list: collectable */
        PyObject_GC_Track(self);
    if (t->coro != NULL)
        uvapy_coro_retrack(t);
    if (t->context != NULL && uvapy_ts.running != self)
        uvapy_context_retrack(t); /* else the step does, after its exit */
    if ((notify = t->notify) != NULL) {
        t->notify = NULL;
        if (PyList_CheckExact(notify)) {
            for (i = 0; i < PyList_GET_SIZE(notify); i++)
                uvapy_notify(PyList_GET_ITEM(notify, i), self, state);
        } else if (notify != Py_None) {
            uvapy_notify(notify, self, state);
        }
        Py_DECREF(notify);
    }
    loop = t->loop;
    if (loop == NULL)
        goto out;
    Py_INCREF(loop);
    if ((cbs = t->callbacks) != NULL) {
        t->callbacks = NULL;
        for (i = 0; PyList_Check(cbs) && i < PyList_GET_SIZE(cbs); i++) {
            PyObject *r = PyObject_CallMethodObjArgs(
                loop, uvapy_s_call_soon, PyList_GET_ITEM(cbs, i), self, NULL);
            if (r == NULL)
                PyErr_WriteUnraisable(loop);
            Py_XDECREF(r);
        }
        Py_DECREF(cbs);
    }
    if (state == UVAPY_EXCEPTION) {
        PyObject *rep = PyObject_Repr(self), *log = NULL;
        if (rep != NULL)
            log = PyObject_CallFunctionObjArgs(uvapy_exclog, loop, value, rep,
                                               NULL);
        if (log == NULL)
            PyErr_WriteUnraisable(self);
        Py_XDECREF(rep);
        Py_XSETREF(t->log_exc, log);
    }
    if (UVAPY_IS_LOOP(loop) &&
        ((uvapy_loop *)loop)->main == self) { /* run_until_complete's */
        uva_loop_t *l = uvapy_loop_ptr(loop);
        if (l != NULL)
            uva_loop_stop(l);
    }
    if (PyErr_Occurred())
        PyErr_WriteUnraisable(self);
    Py_DECREF(loop);
out:
    if (was_live)
        Py_DECREF(self);
    Py_DECREF(self);
    return 0;
}

static PyObject *uvapy_task_finish_meth(uvapy_task *t, PyObject *args) {
    int state;
    PyObject *value;
    if (!PyArg_ParseTuple(args, "iO:_finish", &state, &value))
        return NULL;
    uvapy_task_end(t, state, value);
    Py_RETURN_NONE;
}

/* _join(): uva_task_join(running task, this one); the core's code. */
static PyObject *uvapy_task_join_meth(uvapy_task *t, PyObject *unused) {
    (void)unused;
    if (t->ctask == NULL)
        return PyLong_FromLong(UVA_EINVAL);
    return PyLong_FromLong(uva_task_join(NULL, t->ctask));
}

static PyObject *uvapy_task_addr(uvapy_task *t, void *unused) {
    (void)unused;
    return PyLong_FromVoidPtr(t->ctask);
}

static PyMemberDef uvapy_task_members[] = {
    {"_loop", T_OBJECT, offsetof(uvapy_task, loop), 0, NULL},
    {"_value", T_OBJECT, offsetof(uvapy_task, value), 0, NULL},
    {"_callbacks", T_OBJECT, offsetof(uvapy_task, callbacks), 0, NULL},
    {"_notify", T_OBJECT, offsetof(uvapy_task, notify), 0, NULL},
    {"_log_exc", T_OBJECT, offsetof(uvapy_task, log_exc), 0, NULL},
    {"_extra", T_OBJECT, offsetof(uvapy_task, extra), 0, NULL},
    {"_state", T_BYTE, offsetof(uvapy_task, state), 0, NULL},
    {NULL}};

static PyObject *uvapy_task_get_coro(uvapy_task *t, void *u) {
    PyObject *c = t->coro != NULL ? t->coro : Py_None;
    (void)u;
    Py_INCREF(c);
    return c;
}

/* _coro = x (uasyncio swaps in a stand-in while a task waits for I/O): the
 * coroutine let go of goes back into the cyclic GC first. */
static int uvapy_task_set_coro(uvapy_task *t, PyObject *v, void *u) {
    (void)u;
    if (t->coro != NULL)
        uvapy_coro_retrack(t);
    Py_XINCREF(v);
    Py_XSETREF(t->coro, v);
    return 0;
}

static PyGetSetDef uvapy_task_getset[] = {
    {"_coro", (getter)uvapy_task_get_coro, (setter)uvapy_task_set_coro, NULL,
     NULL},
    {"_ctask_addr", (getter)uvapy_task_addr, NULL, NULL, NULL},
    {NULL}};

/* get_context(): the contextvars.Context the task runs in (CPython 3.12).
 * Once the task is done, None if it ran in its own copy and nobody had
 * taken that (the copy is freed at the task's end). */
static PyObject *uvapy_task_get_context(uvapy_task *t, PyObject *unused) {
    PyObject *c = t->context != NULL ? t->context : Py_None;
    (void)unused;
    Py_INCREF(c);
    return c;
}

static PyMethodDef uvapy_task_methods[] = {
    {"get_context", (PyCFunction)uvapy_task_get_context, METH_NOARGS,
     "The contextvars.Context the task runs in."},
    {"_finish", (PyCFunction)uvapy_task_finish_meth, METH_VARARGS, NULL},
    {"_join", (PyCFunction)uvapy_task_join_meth, METH_NOARGS, NULL},
    {NULL}};

static PyTypeObject uvapy_task_type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "uvasync._cext.TaskBase",
    .tp_basicsize = sizeof(uvapy_task),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "The state of a uvasync Task (see uvasync.core.Task).",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)uvapy_task_init,
    .tp_dealloc = (destructor)uvapy_task_dealloc,
    .tp_traverse = (traverseproc)uvapy_task_traverse,
    .tp_clear = (inquiry)uvapy_task_clear,
    .tp_weaklistoffset = offsetof(uvapy_task, weakrefs),
    .tp_members = uvapy_task_members,
    .tp_getset = uvapy_task_getset,
    .tp_methods = uvapy_task_methods,
};

/* ---- sleep: the awaitable of sleep() and sleep_ms() -----------------------
 * Its first step registers the sleep in the core (or, for 0, yields to the
 * back of the run queue); the resume ends it. Inside a task, the task
 * knows which of the two a call is (`sleeping`, cleared when a
 * cancellation is delivered instead of the resume), so the object holds
 * no state and sleeps without a result share one object per ms: a
 * sleeping task allocates nothing and its wake-up frees nothing. Not
 * tracked by the cyclic GC: it refers to nothing but its result. */
typedef struct {
    PyObject_HEAD
    int64_t ms; /* > 0: sleep; 0: yield once; -1: resumed (outside a task) */
    PyObject *result;
} uvapy_sleep;

#define UVAPY_MAX_MS ((int64_t)1 << 40) /* the longest sleep (~35 years) */
#define UVAPY_SHARED_SLEEPS 1024       /* sleeps of 0-1023 ms are shared */
static PyObject *uvapy_shared_sleeps[UVAPY_SHARED_SLEEPS];

static void uvapy_sleep_dealloc(uvapy_sleep *s) {
    Py_XDECREF(s->result);
    PyObject_Free(s);
}

static PyObject *uvapy_sleep_next(uvapy_sleep *s) {
    uvapy_task *t = (uvapy_task *)uvapy_ts.running;
    int64_t ms = s->ms;
    int rc;
    if (t != NULL ? t->sleeping : ms < 0) { /* resumed: the sleep is over */
        PyObject *r = s->result;
        if (t != NULL)
            t->sleeping = 0;
        if (r != NULL && r != Py_None) {
            PyObject *e = PyObject_CallOneArg(PyExc_StopIteration, r);
            if (e != NULL) {
                PyErr_SetObject(PyExc_StopIteration, e);
                Py_DECREF(e);
            }
        }
        return NULL; /* no exception set: StopIteration(None) */
    }
    if (t == NULL) { /* driven outside a task */
        if (ms > 0) {
            PyErr_SetString(PyExc_RuntimeError,
                            "sleep must be awaited inside a uvasync task");
            return NULL;
        }
        if (uvapy_shared_sleeps[0] == (PyObject *)s)
            return NULL; /* shared, so no state of its own: ends at once */
        s->ms = -1;      /* its own state: the next call ends it */
        Py_RETURN_NONE;
    }
    if (ms == 0) {
        t->sleeping = 1;
        Py_RETURN_NONE; /* UVA_TASK_YIELD */
    }
    rc = uva_task_sleep(NULL, ms);
    if (rc < 0) {
        uvapy_raise(rc, "sleep");
        return NULL;
    }
    t->sleeping = 1;
    Py_INCREF(uvapy_pending);
    return uvapy_pending;
}

static PyObject *uvapy_self(PyObject *s) {
    Py_INCREF(s);
    return s;
}

static PyAsyncMethods uvapy_sleep_async = {.am_await = uvapy_self};

static PyTypeObject uvapy_sleep_type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "uvasync._cext.Sleep",
    .tp_basicsize = sizeof(uvapy_sleep),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "The awaitable of uvasync.sleep() and sleep_ms().",
    .tp_dealloc = (destructor)uvapy_sleep_dealloc,
    .tp_as_async = &uvapy_sleep_async,
    .tp_iter = uvapy_self,
    .tp_iternext = (iternextfunc)uvapy_sleep_next,
};

static PyObject *uvapy_sleep_alloc(int64_t ms, PyObject *result) {
    uvapy_sleep *s = PyObject_New(uvapy_sleep, &uvapy_sleep_type);
    if (s == NULL)
        return NULL;
    s->ms = ms;
    Py_INCREF(result);
    s->result = result;
    return (PyObject *)s;
}

static PyObject *uvapy_sleep_new(int64_t ms, PyObject *result) {
    PyObject **slot;
    if (result != Py_None || ms >= UVAPY_SHARED_SLEEPS ||
        uvapy_ts.running == NULL) /* one of its own */
        return uvapy_sleep_alloc(ms, result);
    slot = &uvapy_shared_sleeps[ms];
    if (*slot == NULL && (*slot = uvapy_sleep_alloc(ms, Py_None)) == NULL)
        return NULL;
    Py_INCREF(*slot);
    return *slot;
}

/* (value, result=None) of sleep and sleep_ms, positional or by keyword. */
static int uvapy_sleep_args(const char *fname, const char *vname,
                            PyObject *const *args, Py_ssize_t nargs,
                            PyObject *kwnames, PyObject **value,
                            PyObject **result) {
    Py_ssize_t i, nkw = kwnames != NULL ? PyTuple_GET_SIZE(kwnames) : 0;
    *value = nargs > 0 ? args[0] : NULL;
    *result = nargs > 1 ? args[1] : Py_None;
    if (nargs > 2) {
        PyErr_Format(PyExc_TypeError, "%s() takes at most 2 arguments", fname);
        return -1;
    }
    for (i = 0; i < nkw; i++) {
        PyObject *k = PyTuple_GET_ITEM(kwnames, i);
        if (PyUnicode_CompareWithASCIIString(k, "result") == 0 && nargs < 2) {
            *result = args[nargs + i];
        } else if (PyUnicode_CompareWithASCIIString(k, vname) == 0 &&
                   nargs < 1) {
            *value = args[nargs + i];
        } else {
            PyErr_Format(PyExc_TypeError,
                         "%s() got an unexpected keyword argument '%U'",
                         fname, k);
            return -1;
        }
    }
    if (*value == NULL) {
        PyErr_Format(PyExc_TypeError, "%s() missing argument '%s'", fname,
                     vname);
        return -1;
    }
    return 0;
}

/* sleep(delay, result=None): delay in seconds, rounded up to whole ms (a
 * sleep never ends early); <= 0 yields once. */
static PyObject *uvapy_sleep_fn(PyObject *mod, PyObject *const *args,
                                Py_ssize_t nargs, PyObject *kwnames) {
    PyObject *delay, *result;
    double d, ms;
    (void)mod;
    if (uvapy_sleep_args("sleep", "delay", args, nargs, kwnames, &delay,
                         &result) < 0)
        return NULL;
    if (PyFloat_CheckExact(delay)) {
        d = PyFloat_AS_DOUBLE(delay);
    } else {
        int le = PyObject_RichCompareBool(delay, uvapy_zero, Py_LE);
        if (le < 0)
            return NULL;
        if (le)
            return uvapy_sleep_new(0, result);
        d = PyFloat_AsDouble(delay); /* a huge int: OverflowError */
        if (d == -1.0 && PyErr_Occurred()) {
            if (!PyErr_ExceptionMatches(PyExc_OverflowError))
                return NULL;
            PyErr_Clear();
            d = INFINITY; /* > 0: longer than the longest sleep */
        }
    }
    if (d <= 0)
        return uvapy_sleep_new(0, result);
    if (isnan(d)) {
        PyErr_SetString(PyExc_ValueError, "cannot convert float NaN to integer");
        return NULL;
    }
    ms = d * 1000.0;
    return uvapy_sleep_new(ms >= (double)UVAPY_MAX_MS ? UVAPY_MAX_MS
                                                      : (int64_t)ceil(ms),
                           result);
}

/* sleep_ms(ms, result=None): MicroPython's; ms as int(ms). */
static PyObject *uvapy_sleep_ms_fn(PyObject *mod, PyObject *const *args,
                                   Py_ssize_t nargs, PyObject *kwnames) {
    PyObject *value, *result, *n;
    long long ms;
    int overflow;
    (void)mod;
    if (uvapy_sleep_args("sleep_ms", "ms", args, nargs, kwnames, &value,
                         &result) < 0)
        return NULL;
    if ((n = PyNumber_Long(value)) == NULL)
        return NULL;
    ms = PyLong_AsLongLongAndOverflow(n, &overflow);
    Py_DECREF(n);
    if (ms == -1 && PyErr_Occurred())
        return NULL;
    if (overflow > 0 || ms > UVAPY_MAX_MS)
        ms = UVAPY_MAX_MS;
    if (overflow < 0 || ms < 0)
        ms = 0;
    return uvapy_sleep_new(ms, result);
}

/* ---- Gathering: the state of one gather() --------------------------------
 * Each child's _notify calls it when the child ends; it counts them down
 * and wakes the gathering task when all are done or one failed (unless
 * return_exceptions). Made and read by uvasync.funcs._gather.
 *
 * A child task that ends with a result hands it over at once: the value
 * goes to its slot in `results` and the slot in `tasks` becomes None, so
 * the task and its coroutine are freed at the end of their last step,
 * while still in cache, and not all together once the gather returns. */
typedef struct {
    PyObject_HEAD
    Py_ssize_t remaining;  /* children not yet done */
    int failed;            /* a child ended without a result */
    int return_exceptions;
    uva_task_t *waiter;    /* the gathering task while it waits, or NULL */
    PyObject *tasks;       /* the children (list), None where handed over */
    PyObject *results;     /* list as long, or NULL once given out */
} uvapy_gathering;

static PyObject *uvapy_s_notify, *uvapy_s_state;

/* _state of a Task (in C) or a Future (an attribute); -1 on error. */
static int uvapy_state_of(PyObject *o) {
    PyObject *v;
    long st;
    if (UVAPY_IS_TASK(o))
        return ((uvapy_task *)o)->state;
    if ((v = PyObject_GetAttr(o, uvapy_s_state)) == NULL)
        return -1;
    st = PyLong_AsLong(v);
    Py_DECREF(v);
    return (int)st;
}

static PyObject *uvapy_gathering_new(PyTypeObject *type, PyObject *args,
                                     PyObject *kwds) {
    uvapy_gathering *g;
    int return_exceptions;
    (void)kwds;
    if (!PyArg_ParseTuple(args, "p:Gathering", &return_exceptions))
        return NULL;
    if ((g = (uvapy_gathering *)type->tp_alloc(type, 0)) == NULL)
        return NULL;
    g->return_exceptions = return_exceptions;
    return (PyObject *)g;
}

static int uvapy_gathering_traverse(uvapy_gathering *g, visitproc visit,
                                    void *arg) {
    Py_VISIT(g->tasks);
    Py_VISIT(g->results);
    return 0;
}

static int uvapy_gathering_clear(uvapy_gathering *g) {
    Py_CLEAR(g->tasks);
    Py_CLEAR(g->results);
    return 0;
}

static void uvapy_gathering_dealloc(uvapy_gathering *g) {
    PyObject_GC_UnTrack(g);
    uvapy_gathering_clear(g);
    Py_TYPE(g)->tp_free((PyObject *)g);
}

/* A task's value (its result, or its exception), None while it has none;
 * a new reference. */
static PyObject *uvapy_task_value(uvapy_task *t) {
    PyObject *v = t->value != NULL ? t->value : Py_None;
    Py_INCREF(v);
    return v;
}

/* A child ended in state st: take its result if it is a task in its slot,
 * count it, and wake the gathering task once all are done or one failed
 * (unless return_exceptions). The caller holds a reference to child. */
static void uvapy_gathering_ended(PyObject *gathering, PyObject *child,
                                  int st) {
    uvapy_gathering *g = (uvapy_gathering *)gathering;
    if (st == UVAPY_RESULT && g->results != NULL && g->tasks != NULL &&
        UVAPY_IS_TASK(child)) {
        uvapy_task *c = (uvapy_task *)child;
        Py_ssize_t i = c->gather_idx;
        if (i < PyList_GET_SIZE(g->tasks) &&
            PyList_GET_ITEM(g->tasks, i) == child) {
            PyObject *old = PyList_GET_ITEM(g->results, i);
            PyList_SET_ITEM(g->results, i, uvapy_task_value(c));
            Py_XDECREF(old);
            Py_INCREF(Py_None);
            PyList_SET_ITEM(g->tasks, i, Py_None);
            Py_DECREF(child);
        }
    }
    g->remaining--;
    if (st != UVAPY_RESULT && !g->return_exceptions)
        g->failed = 1;
    if ((g->remaining <= 0 || g->failed) && g->waiter != NULL)
        uva_task_wake(g->waiter);
}

/* gathering(child): a child ended (a Future's notification; a Task's end
 * calls uvapy_gathering_ended directly). */
static PyObject *uvapy_gathering_call(uvapy_gathering *g, PyObject *args,
                                      PyObject *kwds) {
    PyObject *child;
    int st;
    if (!PyArg_UnpackTuple(args, "Gathering", 1, 1, &child) || kwds != NULL)
        return NULL;
    if ((st = uvapy_state_of(child)) < 0)
        return NULL;
    uvapy_gathering_ended((PyObject *)g, child, st);
    Py_RETURN_NONE;
}

/* watch(tasks): keep the list (its slots become None as children hand
 * their results over), count the children not done, have each notify
 * this object when it ends, and arm the wake-up of the running task
 * (which must be the gathering one). */
static PyObject *uvapy_gathering_watch(uvapy_gathering *g, PyObject *tasks) {
    PyObject *self = (PyObject *)g;
    Py_ssize_t i, n;
    if (uvapy_ts.running == NULL) {
        PyErr_SetString(PyExc_RuntimeError,
                        "gather must be awaited inside a uvasync task");
        return NULL;
    }
    if (!PyList_CheckExact(tasks) || g->tasks != NULL) {
        PyErr_SetString(PyExc_TypeError, "watch() takes a list, once");
        return NULL;
    }
    n = PyList_GET_SIZE(tasks);
    if ((g->results = PyList_New(n)) == NULL)
        return NULL;
    for (i = 0; i < n; i++) {
        Py_INCREF(Py_None);
        PyList_SET_ITEM(g->results, i, Py_None);
    }
    Py_INCREF(tasks);
    g->tasks = tasks;
    if (!PyObject_GC_IsTracked(tasks)) /* from _spawn_coros */
        PyObject_GC_Track(tasks);
    for (i = 0; i < n; i++) {
        PyObject *t = PyList_GET_ITEM(tasks, i), *notify;
        int st = uvapy_state_of(t), rc;
        if (st < 0)
            return NULL;
        if (st != UVAPY_PENDING) { /* done before: failed already? */
            if (st != UVAPY_RESULT && !g->return_exceptions)
                g->failed = 1;
            continue;
        }
        if (UVAPY_IS_TASK(t)) {
            /* a task's _notify: NULL, one callable, or a list of them */
            uvapy_task *tt = (uvapy_task *)t;
            if (tt->notify == NULL || tt->notify == Py_None) {
                Py_INCREF(self);
                Py_XSETREF(tt->notify, self);
                rc = 0;
            } else if (PyList_CheckExact(tt->notify)) {
                rc = PyList_Append(tt->notify, self);
            } else {
                PyObject *l = PyList_New(2);
                rc = l != NULL ? 0 : -1;
                if (l != NULL) {
                    PyList_SET_ITEM(l, 0, tt->notify); /* takes the ref */
                    Py_INCREF(self);
                    PyList_SET_ITEM(l, 1, self);
                    tt->notify = l;
                }
            }
            /* a hint, checked at the end (another gather may reuse it) */
            tt->gather_idx = i <= (Py_ssize_t)UINT32_MAX ? (uint32_t)i : 0;
        } else { /* a Future: _notify is a list */
            if ((notify = PyObject_GetAttr(t, uvapy_s_notify)) == NULL)
                return NULL;
            rc = PyList_Append(notify, self);
            Py_DECREF(notify);
        }
        if (rc < 0)
            return NULL;
        g->remaining++;
    }
    g->waiter = ((uvapy_task *)uvapy_ts.running)->ctask;
    Py_RETURN_NONE;
}

/* results(): the list of the children's results, in order (exceptions
 * too, for return_exceptions), all being done; given out once. */
static PyObject *uvapy_gathering_results(uvapy_gathering *g, PyObject *u) {
    PyObject *out = g->results;
    Py_ssize_t i, n;
    (void)u;
    if (out == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "no results to give");
        return NULL;
    }
    n = PyList_GET_SIZE(out);
    for (i = 0; i < n; i++) {
        PyObject *t = PyList_GET_ITEM(g->tasks, i), *v;
        if (t == Py_None) /* handed over */
            continue;
        if (UVAPY_IS_TASK(t)) {
            v = uvapy_task_value((uvapy_task *)t);
        } else if ((v = PyObject_GetAttrString(t, "_value")) == NULL) {
            return NULL;
        }
        t = PyList_GET_ITEM(out, i); /* its None */
        PyList_SET_ITEM(out, i, v);
        Py_DECREF(t);
    }
    g->results = NULL; /* the caller's now: no late child writes in it */
    return out;
}

/* release(): stop waking the gathering task. */
static PyObject *uvapy_gathering_release(uvapy_gathering *g, PyObject *u) {
    (void)u;
    g->waiter = NULL;
    Py_RETURN_NONE;
}

static PyMemberDef uvapy_gathering_members[] = {
    {"remaining", T_PYSSIZET, offsetof(uvapy_gathering, remaining), READONLY,
     NULL},
    {"failed", T_INT, offsetof(uvapy_gathering, failed), READONLY, NULL},
    {NULL}};

static PyMethodDef uvapy_gathering_methods[] = {
    {"watch", (PyCFunction)uvapy_gathering_watch, METH_O, NULL},
    {"results", (PyCFunction)uvapy_gathering_results, METH_NOARGS, NULL},
    {"release", (PyCFunction)uvapy_gathering_release, METH_NOARGS, NULL},
    {NULL}};

static PyTypeObject uvapy_gathering_type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "uvasync._cext.Gathering",
    .tp_basicsize = sizeof(uvapy_gathering),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "The state of one gather() (see uvasync.funcs._gather).",
    .tp_new = uvapy_gathering_new,
    .tp_dealloc = (destructor)uvapy_gathering_dealloc,
    .tp_traverse = (traverseproc)uvapy_gathering_traverse,
    .tp_clear = (inquiry)uvapy_gathering_clear,
    .tp_call = (ternaryfunc)uvapy_gathering_call,
    .tp_members = uvapy_gathering_members,
    .tp_methods = uvapy_gathering_methods,
};

/* live_tasks(): the tasks not yet done, of every loop. */
static PyObject *uvapy_live_tasks_fn(PyObject *mod, PyObject *u) {
    PyObject *out = PyList_New(0);
    uvapy_task *t;
    (void)mod; (void)u;
    for (t = uvapy_live_first; out != NULL && t != NULL; t = t->live_next) {
        if (PyList_Append(out, (PyObject *)t) < 0)
            Py_CLEAR(out);
    }
    return out;
}

/* current_task(): the task whose step runs in this thread, or None. */
static PyObject *uvapy_current_task_fn(PyObject *mod, PyObject *u) {
    PyObject *t = uvapy_ts.running != NULL ? uvapy_ts.running : Py_None;
    (void)mod; (void)u;
    Py_INCREF(t);
    return t;
}

/* The stream calls of the echo hot path as plain CPython functions
 * (METH_FASTCALL) instead of cffi calls: the stream is passed as an int
 * (its address), so no cdata is converted, the GIL is not released and
 * taken back, and read builds its bytes object straight from the core's
 * buffer (uva_stream_peek, then uva_stream_consume): one copy instead of
 * two (core buffer -> scratch buffer -> bytes), which at 64 KiB reads was
 * the largest user-space cost of the Python echo server. */
static int uvapy_stream_arg(uva_stream_t **out, PyObject *arg) {
    void *p = PyLong_AsVoidPtr(arg);
    if (p == NULL) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_ValueError, "NULL stream");
        return -1;
    }
    *out = (uva_stream_t *)p;
    return 0;
}

/* A read of this much or more goes through uva_stream_read_spill into
 * the bytes object itself: when the stream's buffer is empty the core then
 * reads from the kernel straight into it, with no copy after (100 KiB
 * echo). */
#define UVAPY_READ_INTO_MIN 4096
/* ... and of at most this much: read(n) may return fewer than n bytes, and
 * read(1 << 40) must not allocate n. */
#define UVAPY_READ_INTO_MAX (256 * 1024)
/* A read that got fewer bytes than its object holds hands that object
 * over shrunk only if it is at most this big and at least half full; else
 * it copies the bytes out and keeps the object for the next read. glibc
 * maps bigger blocks (128 KiB and up), and shrinking one is a mremap that
 * leaves the next read to fault fresh pages in: a 100 KiB echo read 256
 * KiB at a time spent 4x the system time per message that way. */
#define UVAPY_READ_SHRINK_MAX (64 * 1024)

/* Reads sized by the hint (below) when it is at least this: a smaller
 * copy out costs less than recvmsg's two buffers do over recv's one (1 KiB
 * echo: 4% fewer requests a second that way). */
#define UVAPY_READ_SPILL_MIN (32 * 1024)

/* An object a read did not hand out -- it had to wait, or got a small
 * message, copied out into one of its size -- kept for the next read of
 * that size (under the GIL): an echo of 1 KiB messages read 64 KiB at a
 * time would otherwise allocate and shrink 64 KiB per message. */
static PyObject *uvapy_read_spare;
/* Where a read's bytes beyond its object go (uva_stream_read_spill), to be
 * copied out before the call returns; page-aligned, as the kernel's copies
 * into it are slower 16 bytes off a cache line. */
static char *uvapy_read_spill;

/* Up to n bytes, read into an object of the size the stream's read hint
 * gives (the last read's count): when messages keep one size, as an
 * echo's do, the kernel copies each straight into the object handed out,
 * with no copy after. A bigger message goes on into the spill buffer in
 * the same system call and is copied out once, as every read was before. */
static PyObject *uvapy_read_into_bytes(uva_stream_t *stream, Py_ssize_t n) {
    PyObject *b = uvapy_read_spare, *out;
    size_t got = 0, hint = 0;
    Py_ssize_t size;
    char *spill = NULL;
    int rc;
    if (n > UVAPY_READ_INTO_MAX)
        n = UVAPY_READ_INTO_MAX;
    size = n;
    if (uva_stream_read_hint(&hint, stream) == 0 &&
        hint >= UVAPY_READ_SPILL_MIN && hint < (size_t)n) {
        if (uvapy_read_spill == NULL &&
            posix_memalign((void **)&uvapy_read_spill, 4096,
                           UVAPY_READ_INTO_MAX) != 0) {
            uvapy_read_spill = NULL;
            return PyErr_NoMemory();
        }
        size = (Py_ssize_t)hint;
        spill = uvapy_read_spill;
    }
    uvapy_read_spare = NULL;
    if (b != NULL && PyBytes_GET_SIZE(b) != size)
        Py_CLEAR(b);
    if (b == NULL && (b = PyBytes_FromStringAndSize(NULL, size)) == NULL)
        return NULL;
    rc = uva_stream_read_spill(&got, stream, NULL, PyBytes_AS_STRING(b),
                               (size_t)size, spill, (size_t)(n - size));
    if (rc < 0) {
        if (rc == UVA_EAGAIN && uvapy_read_spare == NULL)
            uvapy_read_spare = b;
        else
            Py_DECREF(b);
        return PyLong_FromLong(rc);
    }
    if ((Py_ssize_t)got == size)
        return b;
    if ((Py_ssize_t)got > size) { /* went on into the spill */
        out = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)got);
        if (out != NULL) {
            memcpy(PyBytes_AS_STRING(out), PyBytes_AS_STRING(b), (size_t)size);
            memcpy(PyBytes_AS_STRING(out) + size, spill, got - (size_t)size);
        }
    } else if ((Py_ssize_t)got < size / 2 || size > UVAPY_READ_SHRINK_MAX) {
        out = PyBytes_FromStringAndSize(PyBytes_AS_STRING(b), (Py_ssize_t)got);
    } else { /* shrunk in place */
        if (_PyBytes_Resize(&b, (Py_ssize_t)got) < 0)
            return NULL;
        return b;
    }
    /* copied out: the object stays for the next read */
    if (uvapy_read_spare == NULL)
        uvapy_read_spare = b;
    else
        Py_DECREF(b);
    return out;
}

/* _read_bytes(stream, n): up to n (>= 1) bytes that are buffered, as
 * bytes; b"" at end of stream; else the core's code as an int (UVA_EAGAIN:
 * the running task waits for data, call again when woken). */
static PyObject *uvapy_read_bytes(PyObject *self, PyObject *const *args,
                                  Py_ssize_t nargs) {
    uva_stream_t *stream;
    Py_ssize_t n;
    const void *data = NULL;
    size_t len = 0;
    PyObject *b;
    int rc;
    (void)self;
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "_read_bytes(stream, n)");
        return NULL;
    }
    if (uvapy_stream_arg(&stream, args[0]) < 0)
        return NULL;
    n = PyNumber_AsSsize_t(args[1], NULL); /* clamps a huge n */
    if (n == -1 && PyErr_Occurred())
        return NULL;
    if (n >= UVAPY_READ_INTO_MIN)
        return uvapy_read_into_bytes(stream, n);
    rc = uva_stream_peek(&data, &len, stream, NULL);
    if (rc < 0)
        return PyLong_FromLong(rc);
    if (n >= 0 && len > (size_t)n)
        len = (size_t)n;
    b = PyBytes_FromStringAndSize((const char *)data, (Py_ssize_t)len);
    if (b != NULL && len > 0)
        uva_stream_consume(stream, len); /* only once the copy exists */
    return b;
}

/* _write_bytes(stream, data): uva_stream_write of a bytes object; the
 * bytes queued afterwards (0: the kernel took it all), or an error code. */
static PyObject *uvapy_write_bytes(PyObject *self, PyObject *const *args,
                                   Py_ssize_t nargs) {
    uva_stream_t *stream;
    size_t queued = 0;
    int rc;
    (void)self;
    if (nargs != 2 || !PyBytes_Check(args[1])) {
        PyErr_SetString(PyExc_TypeError, "_write_bytes(stream, bytes)");
        return NULL;
    }
    if (uvapy_stream_arg(&stream, args[0]) < 0)
        return NULL;
    rc = uva_stream_write(&queued, stream, PyBytes_AS_STRING(args[1]),
                          (size_t)PyBytes_GET_SIZE(args[1]));
    return rc < 0 ? PyLong_FromLong(rc) : PyLong_FromSize_t(queued);
}

/* _writev_bytes(stream, items): a list or tuple of bytes objects written
 * as one write (writelines); the bytes queued afterwards, or an error code.
 * Up to UVAPY_WRITEV_MAX items: uva_stream_writev, one vectored system
 * call. More: joined here into one bytes object and written with
 * uva_stream_write, as the core would join them past IOV_MAX anyway,
 * without an array of 16-byte descriptors as large as the data (100k
 * items of 15 bytes: 5 ms of CPU against 2.6 ms joined). The items are
 * only read during the call, which runs no Python code. */
#define UVAPY_WRITEV_MAX 1024
static PyObject *uvapy_writev_bytes(PyObject *self, PyObject *const *args,
                                    Py_ssize_t nargs) {
    uva_stream_t *stream;
    size_t queued = 0, total = 0;
    uva_buf_t bufs[UVAPY_WRITEV_MAX];
    PyObject **items, *joined;
    Py_ssize_t n, i;
    char *p;
    int rc;
    (void)self;
    if (nargs != 2 ||
        !(PyList_CheckExact(args[1]) || PyTuple_CheckExact(args[1]))) {
        PyErr_SetString(PyExc_TypeError, "_writev_bytes(stream, list)");
        return NULL;
    }
    if (uvapy_stream_arg(&stream, args[0]) < 0)
        return NULL;
    n = PySequence_Fast_GET_SIZE(args[1]);
    items = PySequence_Fast_ITEMS(args[1]);
    for (i = 0; i < n; i++) {
        if (!PyBytes_Check(items[i])) {
            PyErr_SetString(PyExc_TypeError, "_writev_bytes: bytes only");
            return NULL;
        }
        total += (size_t)PyBytes_GET_SIZE(items[i]);
    }
    if (n <= UVAPY_WRITEV_MAX) {
        for (i = 0; i < n; i++) {
            bufs[i].base = PyBytes_AS_STRING(items[i]);
            bufs[i].len = (size_t)PyBytes_GET_SIZE(items[i]);
        }
        rc = uva_stream_writev(&queued, stream, bufs, (size_t)n);
    } else {
        if (total > (size_t)PY_SSIZE_T_MAX)
            return PyErr_NoMemory();
        joined = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)total);
        if (joined == NULL)
            return NULL;
        p = PyBytes_AS_STRING(joined);
        for (i = 0; i < n; i++) {
            memcpy(p, PyBytes_AS_STRING(items[i]),
                   (size_t)PyBytes_GET_SIZE(items[i]));
            p += PyBytes_GET_SIZE(items[i]);
        }
        rc = uva_stream_write(&queued, stream, PyBytes_AS_STRING(joined), total);
        Py_DECREF(joined);
    }
    return rc < 0 ? PyLong_FromLong(rc) : PyLong_FromSize_t(queued);
}

static PyMethodDef uvapy_cext_fns[] = {
    {"current_task", (PyCFunction)uvapy_current_task_fn, METH_NOARGS,
     "The task whose step runs in this thread, or None."},
    {"live_tasks", (PyCFunction)uvapy_live_tasks_fn, METH_NOARGS,
     "The tasks not yet done, of every loop (a new list)."},
    {"_spawn_coros", (PyCFunction)(void (*)(void))uvapy_spawn_coros_fn,
     METH_FASTCALL, NULL},
    {"create_task", (PyCFunction)(void (*)(void))uvapy_create_task_fn,
     METH_FASTCALL | METH_KEYWORDS,
     "create_task($module, /, coro, *, name=None, context=None)\n--\n\n"
     "Run `coro` concurrently as a new Task on the running loop, in a copy of the "
     "current contextvars context (or in `context`)."},
    {"_read_bytes", (PyCFunction)(void (*)(void))uvapy_read_bytes,
     METH_FASTCALL, NULL},
    {"_write_bytes", (PyCFunction)(void (*)(void))uvapy_write_bytes,
     METH_FASTCALL, NULL},
    {"_writev_bytes", (PyCFunction)(void (*)(void))uvapy_writev_bytes,
     METH_FASTCALL, NULL},
    {"sleep", (PyCFunction)(void (*)(void))uvapy_sleep_fn,
     METH_FASTCALL | METH_KEYWORDS,
     "sleep(delay, result=None): suspend the running task for `delay` "
     "seconds (0: just yield)."},
    {"sleep_ms", (PyCFunction)(void (*)(void))uvapy_sleep_ms_fn,
     METH_FASTCALL | METH_KEYWORDS,
     "sleep_ms(ms, result=None): suspend the running task for `ms` "
     "milliseconds (MicroPython)."},
    {NULL}};

static struct PyModuleDef uvapy_cext_def = {
    PyModuleDef_HEAD_INIT, "uvasync._cext",
    "What every task runs, in C: the Task's state, sleep and sleep_ms.", -1,
    uvapy_cext_fns};

/* Make the module uvasync._cext (in sys.modules) with TaskBase, Sleep,
 * sleep and sleep_ms; uvasync._ffi calls this on import. */
static int _uvapy_types(void) {
    PyGILState_STATE g = PyGILState_Ensure();
    int rc = -1;
    PyObject *m = NULL, *mods = PySys_GetObject("modules"); /* borrowed */
    if ((uvapy_zero = PyLong_FromLong(0)) != NULL &&
        PyType_Ready(&uvapy_task_type) == 0 &&
        PyType_Ready(&uvapy_sleep_type) == 0 &&
        PyType_Ready(&uvapy_gathering_type) == 0 &&
        PyType_Ready(&uvapy_loop_type) == 0 &&
        (uvapy_s_notify = PyUnicode_InternFromString("_notify")) != NULL &&
        (uvapy_s_state = PyUnicode_InternFromString("_state")) != NULL &&
        (m = PyModule_Create(&uvapy_cext_def)) != NULL && mods != NULL) {
        Py_INCREF(&uvapy_task_type);
        Py_INCREF(&uvapy_sleep_type);
        Py_INCREF(&uvapy_gathering_type);
        Py_INCREF(&uvapy_loop_type);
        if (PyModule_AddObject(m, "TaskBase", (PyObject *)&uvapy_task_type) == 0 &&
            PyModule_AddObject(m, "Sleep", (PyObject *)&uvapy_sleep_type) == 0 &&
            PyModule_AddObject(m, "Gathering",
                               (PyObject *)&uvapy_gathering_type) == 0 &&
            PyModule_AddObject(m, "LoopBase", (PyObject *)&uvapy_loop_type) == 0 &&
            PyDict_SetItemString(mods, "uvasync._cext", m) == 0)
            rc = 0;
    }
    Py_XDECREF(m);
    if (rc != 0)
        PyErr_Print();
    PyGILState_Release(g);
    return rc;
}

static int _uvapy_setup(void) {
    PyGILState_STATE g = PyGILState_Ensure();
    int rc = -1;
    PyObject *m = PyImport_ImportModule("uvasync.core");
    if (m != NULL) {
        uvapy_pending = PyObject_GetAttrString(m, "_PENDING");
        uvapy_drive = PyObject_GetAttrString(m, "_drive");
        uvapy_finish = PyUnicode_InternFromString("_finish");
        uvapy_result = PyObject_GetAttrString(m, "_ST_RESULT");
        uvapy_task_cls = PyObject_GetAttrString(m, "Task");
        uvapy_loop_cls = PyObject_GetAttrString(m, "Loop");
        uvapy_exclog = PyObject_GetAttrString(m, "_ExcLog");
        uvapy_extra = PyObject_GetAttrString(m, "_TaskExtra");
        uvapy_as_coro = PyObject_GetAttrString(m, "_task_coro");
        uvapy_default_loop = PyObject_GetAttrString(m, "_task_loop");
        uvapy_error = PyObject_GetAttrString(m, "error");
        uvapy_s_call_soon = PyUnicode_InternFromString("call_soon");
        if (uvapy_pending && uvapy_drive &&
            uvapy_finish && uvapy_result && uvapy_task_cls && uvapy_loop_cls &&
            uvapy_exclog &&
            uvapy_extra && uvapy_as_coro && uvapy_default_loop &&
            uvapy_error && uvapy_s_call_soon)
            rc = 0;
        Py_DECREF(m);
    }
    if (rc != 0)
        PyErr_Print();
    PyGILState_Release(g);
    return rc;
}

/* _drive(task, how, value): see uvasync.core._drive. */
static int uvapy_drive_call(PyObject *task, int how, PyObject *value) {
    PyObject *r = PyObject_CallFunction(uvapy_drive, "OiO", task, how,
                                        value != NULL ? value : Py_None);
    long code;
    if (r == NULL) {
        PyErr_WriteUnraisable(uvapy_drive);
        return UVA_EUSER;
    }
    code = PyLong_AsLong(r);
    Py_DECREF(r);
    if (code == -1 && PyErr_Occurred()) {
        PyErr_WriteUnraisable(uvapy_drive);
        return UVA_EUSER;
    }
    return (int)code;
}

static int _uvapy_step_c(uva_task_t *ctask, int status, void *data) {
    uvapy_thread_state *ts = &uvapy_ts;
    int ensure = !ts->loop_has_gil; /* not from _uvapy_run's loop: take it */
    PyGILState_STATE g = ensure ? PyGILState_Ensure() : PyGILState_LOCKED;
    PyObject *task = (PyObject *)data; /* alive: the live list holds it */
    PyObject *outer = ts->running; /* NULL: steps do not nest */
    PyObject *context = ((uvapy_task *)task)->context;
    int rc;
    (void)ctask;
    Py_INCREF(task); /* the end of the task drops the list's reference */
    ts->running = task;
    if (status != 0) /* a cancellation, not the end of a sleep */
        ((uvapy_task *)task)->sleeping = 0;
    /* The whole step, its end included, runs in the task's context: two
     * pointer swaps in the thread state, nothing copied. The task holds
     * it (only the step below lets go of it). */
    if (context != NULL && PyContext_Enter(context) < 0) {
        /* already entered elsewhere (a context given to two running
         * things at once): the task ends with that RuntimeError */
        PyObject *et, *ev, *etb;
        context = NULL;
        PyErr_Fetch(&et, &ev, &etb);
        PyErr_NormalizeException(&et, &ev, &etb);
        rc = uvapy_drive_call(task, 4, ev);
        Py_XDECREF(et);
        Py_XDECREF(ev);
        Py_XDECREF(etb);
        goto done;
    }
#if PY_VERSION_HEX >= 0x030A0000
    if (status == 0) {
        PyObject *res = NULL;
        PyObject *coro = ((uvapy_task *)task)->coro;
        PySendResult sr;
        if (coro == NULL) {
            PyErr_SetString(PyExc_RuntimeError, "the task has no coroutine");
            PyErr_WriteUnraisable(task);
            rc = UVA_EUSER;
            goto done;
        }
        Py_INCREF(coro); /* the step may replace task._coro */
        sr = PyIter_Send(coro, Py_None, &res);
        Py_DECREF(coro);
        if (sr == PYGEN_NEXT) {
            if (res == Py_None)
                rc = UVA_TASK_YIELD;
            else if (res == uvapy_pending)
                rc = UVA_TASK_PENDING;
            else
                rc = uvapy_drive_call(task, 2, res); /* another value */
            Py_DECREF(res);
        } else if (sr == PYGEN_RETURN && Py_TYPE(task) ==
                   (PyTypeObject *)uvapy_task_cls) { /* returned */
            uvapy_task_end((uvapy_task *)task, UVAPY_RESULT, res);
            Py_DECREF(res);
            rc = 0;
        } else if (sr == PYGEN_RETURN) { /* a subclass's task._finish */
            PyObject *r = PyObject_CallMethodObjArgs(task, uvapy_finish,
                                                     uvapy_result, res, NULL);
            Py_DECREF(res);
            if (r == NULL) {
                PyErr_WriteUnraisable(task);
                rc = UVA_EUSER;
            } else {
                Py_DECREF(r);
                rc = 0;
            }
        } else {
            PyObject *et, *ev, *etb;
            PyErr_Fetch(&et, &ev, &etb);
            PyErr_NormalizeException(&et, &ev, &etb);
            if (etb != NULL && ev != NULL)
                PyException_SetTraceback(ev, etb);
            rc = uvapy_drive_call(task, 4, ev); /* raised */
            Py_XDECREF(et);
            Py_XDECREF(ev);
            Py_XDECREF(etb);
        }
        goto done;
    }
#endif
    rc = uvapy_drive_call(task, status == 0 ? 0 : 1, NULL);
done:
    if (context != NULL) {
        uvapy_task *t = (uvapy_task *)task;
        if (PyContext_Exit(context) < 0)
            PyErr_WriteUnraisable(task);
        if (t->state != UVAPY_PENDING && t->context == context) {
            /* Done: nothing runs in it any more. The task's own copy that
             * nobody else holds goes now (a tracked object per finished
             * task made collections more frequent); else it is tracked
             * again, as the task is. */
            int drop = t->context_untracked && Py_REFCNT(context) == 1;
            uvapy_context_retrack(t);
            if (drop)
                Py_CLEAR(t->context);
        }
    }
    ts->running = outer;
    Py_DECREF(task);
    if (ensure)
        PyGILState_Release(g);
    return rc;
}

/* A done callback that wakes the task given as its data (gather, wait_for):
 * the waiter is resumed by the core, without a detour through Python. */
static void _uvapy_wake_on_done(uva_task_t *task, int result, void *data) {
    (void)task; (void)result;
    uva_task_wake((uva_task_t *)data);
}

/* Run the loop holding the GIL, releasing it only while the loop waits in
 * the kernel. cffi releases the GIL around every call into C, and each
 * callback into Python would take it back: holding it through the pass
 * saves that round trip on every task step. */
typedef struct { PyThreadState *saved; } _uvapy_gil;

static void _uvapy_gil_release(void *data) {
    uvapy_ts.loop_has_gil = 0;
    ((_uvapy_gil *)data)->saved = PyEval_SaveThread();
}

static void _uvapy_gil_acquire(void *data) {
    PyEval_RestoreThread(((_uvapy_gil *)data)->saved);
    uvapy_ts.loop_has_gil = 1;
}

static int _uvapy_run(uva_loop_t *loop, int mode) {
    _uvapy_gil gil = { NULL };
    PyGILState_STATE state = PyGILState_Ensure();
    int had_gil = uvapy_ts.loop_has_gil; /* a nested run's outer loop */
    int rc = uva_loop_set_wait_hooks(loop, _uvapy_gil_release,
                                     _uvapy_gil_acquire, &gil);
    if (rc == 0) {
        uvapy_ts.loop_has_gil = 1;
        rc = uva_loop_run(loop, (uva_run_mode)mode);
        uva_loop_set_wait_hooks(loop, NULL, NULL, NULL);
    }
    uvapy_ts.loop_has_gil = had_gil;
    PyGILState_Release(state);
    return rc;
}
"""

GLUE_SOURCE += """
static const char *_uvapy_core_digest(void) {
    return "%s";
}
""" % core_digest(VENDOR)

ffibuilder = FFI()
ffibuilder.cdef(CDEF + GLUE_CDEF)
ffibuilder.set_source(
    "uvasync._uvasync",
    GLUE_SOURCE,
    include_dirs=[os.path.join(VENDOR, "include")],
    define_macros=[("UVA_EXTERN", "")],
    # the core (static, built by build_clib) first, then what it needs
    libraries=["uvasync_core", "uv", "stdc++"],
    extra_compile_args=["-O2"],
    # The step uses PyIter_Send, outside the stable ABI before 3.10: the
    # extension is built for the interpreter that installs it.
    py_limited_api=False,
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
