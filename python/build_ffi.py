"""cffi (API mode) build of `uvasync._uvasync`: the declarations come from
bindings/uvasync.cdef.h, generated from include/uvasync.h, so the Python
package never keeps its own copy of the C API."""
import os

from cffi import FFI

HERE = os.path.dirname(os.path.abspath(__file__))
VENDOR = os.path.join(HERE, "_vendor")

with open(os.path.join(VENDOR, "bindings", "uvasync.cdef.h")) as f:
    CDEF = f.read()

# What the Python layer adds: its callbacks into Python (one per kind of
# event) and one C helper that wakes a task without entering Python.
GLUE_CDEF = """
extern "Python" int _uvapy_step(intptr_t key, int status);
int _uvapy_step_c(uva_task_t *task, int status, void *data);
uva_task_t *_uvapy_spawn(uva_loop_t *loop, intptr_t key, int *rc);
int64_t _uvapy_write(uva_stream_t *stream, const char *buf, size_t len);
int64_t _uvapy_read(uva_stream_t *stream, char *buf, size_t len);
extern "Python" void _uvapy_call(void *data);
extern "Python" void _uvapy_timer(uva_timer_t *timer, void *data);
extern "Python" void _uvapy_connection(uva_server_t *server,
                                       uva_stream_t *stream, void *data);
extern "Python" void _uvapy_stream_closed(uva_stream_t *stream, void *data);
extern "Python" void _uvapy_server_closed(uva_server_t *server, void *data);
void _uvapy_wake_on_done(uva_task_t *task, int result, void *data);
int _uvapy_run(uva_loop_t *loop, int mode);
"""

GLUE_SOURCE = """
#include <stdint.h>
#include <uvasync.h>

/* Every Python task has this step: the task's data is the key of its Task
 * object, so the callback into Python gets two plain integers (no cdata
 * objects to make on each step). */
static int _uvapy_step(intptr_t key, int status);

static int _uvapy_step_c(uva_task_t *task, int status, void *data) {
    (void)task;
    return _uvapy_step((intptr_t)data, status);
}

/* Spawn a detached Python task: the pointer stays valid while the task has
 * not finished, which is as long as Python uses it. */
static uva_task_t *_uvapy_spawn(uva_loop_t *loop, intptr_t key, int *rc) {
    uva_task_t *task = NULL;
    *rc = uva_task_spawn(&task, loop, _uvapy_step_c, (void *)key, NULL);
    if (*rc != 0)
        return NULL;
    uva_task_release(task);
    return task;
}

/* A done callback that wakes the task given as its data (gather, wait_for):
 * the waiter is resumed by the core, without a detour through Python. */
static void _uvapy_wake_on_done(uva_task_t *task, int result, void *data) {
    (void)task; (void)result;
    uva_task_wake((uva_task_t *)data);
}

/* The stream calls of the hot path, shaped for cffi: fewer arguments, and
 * the count in the return value (>= 0) instead of an out-parameter. write
 * takes a char pointer so that cffi passes a bytes object's buffer as is;
 * read passes NULL, the running task. */
static int64_t _uvapy_write(uva_stream_t *stream, const char *buf,
                            size_t len) {
    size_t queued = 0;
    int rc = uva_stream_write(&queued, stream, buf, len);
    return rc < 0 ? (int64_t)rc : (int64_t)queued;
}

static int64_t _uvapy_read(uva_stream_t *stream, char *buf, size_t len) {
    size_t nread = 0;
    int rc = uva_stream_read(&nread, stream, NULL, buf, len);
    return rc < 0 ? (int64_t)rc : (int64_t)nread;
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
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
