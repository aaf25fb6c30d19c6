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
int _uvapy_setup(void);
uva_task_t *_uvapy_spawn(uva_loop_t *loop, intptr_t key);
int _uvapy_spawn_error(void);
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
#include <stdint.h>
#include <uvasync.h>

/* The step of every Python task. The task's data is the key of its Task
 * object in uvasync.core._TASKS. The common step -- send None into the
 * coroutine, which yields None (UVA_TASK_YIELD) or _PENDING
 * (UVA_TASK_PENDING) -- is done here with the C API; everything else (a
 * cancellation to throw, another yielded value, the end of the coroutine)
 * goes to uvasync.core._drive, which owns those semantics. Either way the
 * step enters Python once. The loop runs holding the GIL (_uvapy_run), so
 * PyGILState_Ensure costs next to nothing here. */
static PyObject *uvapy_tasks;   /* uvasync.core._TASKS */
static PyObject *uvapy_pending; /* uvasync.core._PENDING */
static PyObject *uvapy_drive;   /* uvasync.core._drive */
static PyObject *uvapy_coro;    /* "_coro" */
static PyObject *uvapy_finish;  /* "_finish" */
static PyObject *uvapy_result;  /* _ST_RESULT */

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

static PyMethodDef uvapy_methods[] = {
    {"_read_bytes", (PyCFunction)(void (*)(void))uvapy_read_bytes,
     METH_FASTCALL, NULL},
    {"_write_bytes", (PyCFunction)(void (*)(void))uvapy_write_bytes,
     METH_FASTCALL, NULL},
    {NULL, NULL, 0, NULL}
};

/* Put the functions above on module m (uvasync.core). */
static int uvapy_add_functions(PyObject *m) {
    PyMethodDef *d;
    for (d = uvapy_methods; d->ml_name != NULL; d++) {
        PyObject *f = PyCFunction_NewEx(d, NULL, NULL);
        int rc = f != NULL ? PyObject_SetAttrString(m, d->ml_name, f) : -1;
        Py_XDECREF(f);
        if (rc != 0)
            return -1;
    }
    return 0;
}

static int _uvapy_setup(void) {
    PyGILState_STATE g = PyGILState_Ensure();
    int rc = -1;
    PyObject *m = PyImport_ImportModule("uvasync.core");
    if (m != NULL) {
        uvapy_tasks = PyObject_GetAttrString(m, "_TASKS");
        uvapy_pending = PyObject_GetAttrString(m, "_PENDING");
        uvapy_drive = PyObject_GetAttrString(m, "_drive");
        uvapy_coro = PyUnicode_InternFromString("_coro");
        uvapy_finish = PyUnicode_InternFromString("_finish");
        uvapy_result = PyObject_GetAttrString(m, "_ST_RESULT");
        if (uvapy_tasks && uvapy_pending && uvapy_drive && uvapy_coro &&
            uvapy_finish && uvapy_result && uvapy_add_functions(m) == 0)
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
    PyGILState_STATE g = PyGILState_Ensure();
    PyObject *key, *task;
    int rc;
    (void)ctask;
    key = PyLong_FromVoidPtr(data);
    task = key != NULL ? PyDict_GetItemWithError(uvapy_tasks, key) : NULL;
    Py_XDECREF(key);
    if (task == NULL) { /* cannot happen: a live task is in _TASKS */
        if (PyErr_Occurred())
            PyErr_WriteUnraisable(uvapy_tasks);
        PyGILState_Release(g);
        return UVA_EINTERNAL;
    }
    Py_INCREF(task); /* the end of the task removes it from _TASKS */
#if PY_VERSION_HEX >= 0x030A0000
    if (status == 0) {
        PyObject *res = NULL;
        PyObject *coro = PyObject_GetAttr(task, uvapy_coro);
        PySendResult sr;
        if (coro == NULL) {
            PyErr_WriteUnraisable(task);
            rc = UVA_EUSER;
            goto done;
        }
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
        } else if (sr == PYGEN_RETURN) { /* returned: task._finish */
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
    Py_DECREF(task);
    PyGILState_Release(g);
    return rc;
}

/* Spawn a detached Python task: the pointer stays valid while the task has
 * not finished, which is as long as Python uses it. NULL on error, whose
 * code _uvapy_spawn_error then gives (per thread, as loops are). */
static __thread int uvapy_spawn_rc;

static uva_task_t *_uvapy_spawn(uva_loop_t *loop, intptr_t key) {
    uva_task_t *task = NULL;
    uvapy_spawn_rc = uva_task_spawn(&task, loop, _uvapy_step_c, (void *)key,
                                    NULL);
    if (uvapy_spawn_rc != 0)
        return NULL;
    uva_task_release(task);
    return task;
}

static int _uvapy_spawn_error(void) {
    return uvapy_spawn_rc;
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
    ((_uvapy_gil *)data)->saved = PyEval_SaveThread();
}

static void _uvapy_gil_acquire(void *data) {
    PyEval_RestoreThread(((_uvapy_gil *)data)->saved);
}

static int _uvapy_run(uva_loop_t *loop, int mode) {
    _uvapy_gil gil = { NULL };
    PyGILState_STATE state = PyGILState_Ensure();
    int rc = uva_loop_set_wait_hooks(loop, _uvapy_gil_release,
                                     _uvapy_gil_acquire, &gil);
    if (rc == 0) {
        rc = uva_loop_run(loop, (uva_run_mode)mode);
        uva_loop_set_wait_hooks(loop, NULL, NULL, NULL);
    }
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
