/* sleep and sleep_ms: the awaitable every sleeping task waits on. */
#include "uvapy.h"

/* ---- sleep: the awaitable of sleep() and sleep_ms() -----------------------
 * Its first step registers the sleep in the core (or, for 0, yields to the
 * back of the run queue); the resume ends it. Inside a task, the task
 * knows which of the two a call is (`sleeping`, cleared when a
 * cancellation is delivered instead of the resume), so the object holds
 * no state and sleeps without a result share one object per ms: a
 * sleeping task allocates nothing and its wake-up frees nothing. Not
 * tracked by the cyclic GC: it refers to nothing but its result. */
typedef struct {
  PyObject_HEAD int64_t
      ms; /* > 0: sleep; 0: yield once; -1: resumed (outside a task) */
  PyObject *result;
} uvapy_sleep;

#define UVAPY_MAX_MS ((int64_t) 1 << 40) /* the longest sleep (~35 years) */
#define UVAPY_SHARED_SLEEPS 1024         /* sleeps of 0-1023 ms are shared */
static PyObject *uvapy_shared_sleeps[UVAPY_SHARED_SLEEPS];

static void uvapy_sleep_dealloc(uvapy_sleep *s) {
  Py_XDECREF(s->result);
  PyObject_Free(s);
}

static PyObject *uvapy_sleep_next(uvapy_sleep *s) {
  uvapy_task *t = (uvapy_task *) uvapy_ts.running;
  int64_t ms = s->ms;
  int rc;
  if (t != NULL ? t->sleeping : ms < 0) { /* resumed: the sleep is over */
    PyObject *r = s->result;
    if (t != NULL) t->sleeping = 0;
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
    if (uvapy_shared_sleeps[0] == (PyObject *) s)
      return NULL; /* shared, so no state of its own: ends at once */
    s->ms = -1;    /* its own state: the next call ends it */
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

PyTypeObject uvapy_sleep_type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "uvasync._cext.Sleep",
    .tp_basicsize = sizeof(uvapy_sleep),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "The awaitable of uvasync.sleep() and sleep_ms().",
    .tp_dealloc = (destructor) uvapy_sleep_dealloc,
    .tp_as_async = &uvapy_sleep_async,
    .tp_iter = uvapy_self,
    .tp_iternext = (iternextfunc) uvapy_sleep_next,
};

static PyObject *uvapy_sleep_alloc(int64_t ms, PyObject *result) {
  uvapy_sleep *s = PyObject_New(uvapy_sleep, &uvapy_sleep_type);
  if (s == NULL) return NULL;
  s->ms = ms;
  Py_INCREF(result);
  s->result = result;
  return (PyObject *) s;
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
    } else if (PyUnicode_CompareWithASCIIString(k, vname) == 0 && nargs < 1) {
      *value = args[nargs + i];
    } else {
      PyErr_Format(PyExc_TypeError,
                   "%s() got an unexpected keyword argument '%U'", fname, k);
      return -1;
    }
  }
  if (*value == NULL) {
    PyErr_Format(PyExc_TypeError, "%s() missing argument '%s'", fname, vname);
    return -1;
  }
  return 0;
}

/* sleep(delay, result=None): delay in seconds, rounded up to whole ms (a
 * sleep never ends early); <= 0 yields once. */
PyObject *uvapy_sleep_fn(PyObject *mod, PyObject *const *args, Py_ssize_t nargs,
                         PyObject *kwnames) {
  PyObject *delay, *result;
  double d, ms;
  (void) mod;
  if (uvapy_sleep_args("sleep", "delay", args, nargs, kwnames, &delay,
                       &result) < 0)
    return NULL;
  if (PyFloat_CheckExact(delay)) {
    d = PyFloat_AS_DOUBLE(delay);
  } else {
    int le = PyObject_RichCompareBool(delay, uvapy_zero, Py_LE);
    if (le < 0) return NULL;
    if (le) return uvapy_sleep_new(0, result);
    d = PyFloat_AsDouble(delay); /* a huge int: OverflowError */
    if (d == -1.0 && PyErr_Occurred()) {
      if (!PyErr_ExceptionMatches(PyExc_OverflowError)) return NULL;
      PyErr_Clear();
      d = INFINITY; /* > 0: longer than the longest sleep */
    }
  }
  if (d <= 0) return uvapy_sleep_new(0, result);
  if (isnan(d)) {
    PyErr_SetString(PyExc_ValueError, "cannot convert float NaN to integer");
    return NULL;
  }
  ms = d * 1000.0;
  return uvapy_sleep_new(
      ms >= (double) UVAPY_MAX_MS ? UVAPY_MAX_MS : (int64_t) ceil(ms), result);
}

/* sleep_ms(ms, result=None): MicroPython's; ms as int(ms). */
PyObject *uvapy_sleep_ms_fn(PyObject *mod, PyObject *const *args,
                            Py_ssize_t nargs, PyObject *kwnames) {
  PyObject *value, *result, *n;
  long long ms;
  int overflow;
  (void) mod;
  if (uvapy_sleep_args("sleep_ms", "ms", args, nargs, kwnames, &value,
                       &result) < 0)
    return NULL;
  if ((n = PyNumber_Long(value)) == NULL) return NULL;
  ms = PyLong_AsLongLongAndOverflow(n, &overflow);
  Py_DECREF(n);
  if (ms == -1 && PyErr_Occurred()) return NULL;
  if (overflow > 0 || ms > UVAPY_MAX_MS) ms = UVAPY_MAX_MS;
  if (overflow < 0 || ms < 0) ms = 0;
  return uvapy_sleep_new(ms, result);
}
