/* run_in_executor's jobs: a Python call on a pool thread of the core loop. */
#include "uvapy.h"

#include <pthread.h>

/* Python 3.13 names it Py_IsFinalizing; 3.11 and 3.12 export it private. */
#if PY_VERSION_HEX >= 0x030D0000
#define UVAPY_FINALIZING() Py_IsFinalizing()
#else
#define UVAPY_FINALIZING() _Py_IsFinalizing()
#endif

/* One job: fn(*args) on a pool thread, its outcome handed to `owner` (an
 * executor._Job) on the loop thread: owner._ended(status, value, failed)
 * when it ended, unless it was closed first, and owner._freed() when the
 * core frees it. The core job owns this (its dtor). */
typedef struct {
  PyObject *fn;
  PyObject *args;  /* a tuple */
  PyObject *owner; /* the executor._Job */
  PyObject *value; /* fn's result or the exception it raised */
  int failed;
} uvapy_job;

static PyObject *uvapy_s_ended, *uvapy_s_freed;

/* A pool thread's Python thread state, made at its first job and kept
 * (PyGILState_Ensure then Release per job would make and free one each
 * time); deleted when the thread exits (the key's destructor). */
static pthread_key_t uvapy_pool_key;
static pthread_once_t uvapy_pool_once = PTHREAD_ONCE_INIT;

static void uvapy_pool_thread_exit(void *ts) {
  if (!Py_IsInitialized() || UVAPY_FINALIZING()) return;
  PyEval_RestoreThread((PyThreadState *) ts);
  PyThreadState_Clear((PyThreadState *) ts);
  PyThreadState_DeleteCurrent();
}

static void uvapy_pool_key_make(void) {
  pthread_key_create(&uvapy_pool_key, uvapy_pool_thread_exit);
}

/* On a pool thread: the GIL is taken for the call only (the thread
 * waits for it holding nothing else), and fn and args are let go of
 * there, so a job that ended keeps nothing of the caller's alive but its
 * outcome. */
static void uvapy_job_run(void *data) {
  uvapy_job *j = (uvapy_job *) data;
  PyThreadState *ts;
  PyObject *r;
  pthread_once(&uvapy_pool_once, uvapy_pool_key_make);
  ts = (PyThreadState *) pthread_getspecific(uvapy_pool_key);
  if (ts != NULL) {
    PyEval_RestoreThread(ts);
  } else {
    PyGILState_Ensure(); /* never released: the state stays the thread's */
    pthread_setspecific(uvapy_pool_key, PyThreadState_Get());
  }
  r = PyObject_Call(j->fn, j->args, NULL);
  if (r == NULL) {
    PyObject *et, *ev, *etb;
    PyErr_Fetch(&et, &ev, &etb);
    PyErr_NormalizeException(&et, &ev, &etb);
    if (etb != NULL && ev != NULL) PyException_SetTraceback(ev, etb);
    Py_XDECREF(et);
    Py_XDECREF(etb);
    j->value = ev;
    j->failed = 1;
  } else {
    j->value = r;
  }
  Py_CLEAR(j->fn);
  Py_CLEAR(j->args);
  PyEval_SaveThread();
}

/* On the loop thread, from the loop's run queue (the run holds the GIL;
 * Ensure costs a counter then) when the job ended (status 0) or was
 * dropped before it started (UVA_ECANCELED). */
static void uvapy_job_done(uva_work_t *work, int status, void *data) {
  uvapy_job *j = (uvapy_job *) data;
  PyGILState_STATE g = PyGILState_Ensure();
  PyObject *v = j->value != NULL ? j->value : Py_None;
  PyObject *st = PyLong_FromLong(status), *failed = PyBool_FromLong(j->failed);
  PyObject *r = NULL;
  (void) work;
  if (st != NULL)
    r = PyObject_CallMethodObjArgs(j->owner, uvapy_s_ended, st, v, failed,
                                   NULL);
  if (r == NULL) PyErr_WriteUnraisable(j->owner);
  Py_XDECREF(r);
  Py_XDECREF(st);
  Py_DECREF(failed);
  Py_CLEAR(j->value); /* handed over */
  PyGILState_Release(g);
}

/* When the core frees the job (loop thread, after it ended and was
 * closed; also inside a uva_work_close cffi made without the GIL). An
 * interpreter that is going away is left alone. */
static void uvapy_job_free(void *data) {
  uvapy_job *j = (uvapy_job *) data;
  if (Py_IsInitialized() && !UVAPY_FINALIZING()) {
    PyGILState_STATE g = PyGILState_Ensure();
    PyObject *r = PyObject_CallMethodNoArgs(j->owner, uvapy_s_freed);
    if (r == NULL) PyErr_WriteUnraisable(j->owner);
    Py_XDECREF(r);
    Py_XDECREF(j->fn);
    Py_XDECREF(j->args);
    Py_XDECREF(j->owner);
    Py_XDECREF(j->value);
    PyGILState_Release(g);
  }
  PyMem_RawFree(j);
}

/* _work_submit(loop, fn, args, owner): queue fn(*args) on the loop's
 * pool; the job's address (an int: the caller closes it with
 * uva_work_close, also in owner._ended). */
PyObject *uvapy_work_submit(PyObject *self, PyObject *const *args,
                            Py_ssize_t nargs) {
  uva_loop_t *loop;
  uva_work_t *work = NULL;
  uvapy_job *j;
  PyThreadState *save;
  int rc;
  (void) self;
  if (nargs != 4 || !PyTuple_Check(args[2])) {
    PyErr_SetString(PyExc_TypeError, "_work_submit(loop, fn, args, owner)");
    return NULL;
  }
  if ((loop = uvapy_loop_ptr(args[0])) == NULL) return NULL;
  if (uvapy_s_ended == NULL &&
      ((uvapy_s_ended = PyUnicode_InternFromString("_ended")) == NULL ||
       (uvapy_s_freed = PyUnicode_InternFromString("_freed")) == NULL))
    return NULL;
  if ((j = (uvapy_job *) PyMem_RawCalloc(1, sizeof(*j))) == NULL)
    return PyErr_NoMemory();
  Py_INCREF(args[1]);
  Py_INCREF(args[2]);
  Py_INCREF(args[3]);
  j->fn = args[1];
  j->args = args[2];
  j->owner = args[3];
  /* Without the GIL: the core may join pool threads that left (a lowered
   * size) here, and a leaving thread takes the GIL to delete its state. */
  save = PyEval_SaveThread();
  rc = uva_work_submit(&work, loop, uvapy_job_run, j, uvapy_job_free,
                       uvapy_job_done);
  PyEval_RestoreThread(save);
  if (rc < 0) { /* nothing queued, the dtor not called */
    Py_DECREF(j->fn);
    Py_DECREF(j->args);
    Py_DECREF(j->owner);
    PyMem_RawFree(j);
    uvapy_raise(rc, "run_in_executor");
    return NULL;
  }
  return PyLong_FromVoidPtr(work);
}
