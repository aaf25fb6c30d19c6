/* Gathering: the state of one gather(), counted in C. */
#include "uvapy.h"

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
  PyObject_HEAD Py_ssize_t remaining; /* children not yet done */
  int failed;                         /* a child ended without a result */
  int return_exceptions;
  uva_task_t *waiter; /* the gathering task while it waits, or NULL */
  PyObject *tasks;    /* the children (list), None where handed over */
  PyObject *results;  /* list as long, or NULL once given out */
} uvapy_gathering;

PyObject *uvapy_s_notify, *uvapy_s_state;

/* _state of a Task (in C) or a Future (an attribute); -1 on error. */
static int uvapy_state_of(PyObject *o) {
  PyObject *v;
  long st;
  if (UVAPY_IS_TASK(o)) return ((uvapy_task *) o)->state;
  if ((v = PyObject_GetAttr(o, uvapy_s_state)) == NULL) return -1;
  st = PyLong_AsLong(v);
  Py_DECREF(v);
  return (int) st;
}

static PyObject *uvapy_gathering_new(PyTypeObject *type, PyObject *args,
                                     PyObject *kwds) {
  uvapy_gathering *g;
  int return_exceptions;
  (void) kwds;
  if (!PyArg_ParseTuple(args, "p:Gathering", &return_exceptions)) return NULL;
  if ((g = (uvapy_gathering *) type->tp_alloc(type, 0)) == NULL) return NULL;
  g->return_exceptions = return_exceptions;
  return (PyObject *) g;
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
  Py_TYPE(g)->tp_free((PyObject *) g);
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
void uvapy_gathering_ended(PyObject *gathering, PyObject *child, int st) {
  uvapy_gathering *g = (uvapy_gathering *) gathering;
  if (st == UVAPY_RESULT && g->results != NULL && g->tasks != NULL &&
      UVAPY_IS_TASK(child)) {
    uvapy_task *c = (uvapy_task *) child;
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
  if (st != UVAPY_RESULT && !g->return_exceptions) g->failed = 1;
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
  if ((st = uvapy_state_of(child)) < 0) return NULL;
  uvapy_gathering_ended((PyObject *) g, child, st);
  Py_RETURN_NONE;
}

/* watch(tasks): keep the list (its slots become None as children hand
 * their results over), count the children not done, have each notify
 * this object when it ends, and arm the wake-up of the running task
 * (which must be the gathering one). */
static PyObject *uvapy_gathering_watch(uvapy_gathering *g, PyObject *tasks) {
  PyObject *self = (PyObject *) g;
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
  if ((g->results = PyList_New(n)) == NULL) return NULL;
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
    if (st < 0) return NULL;
    if (st != UVAPY_PENDING) { /* done before: failed already? */
      if (st != UVAPY_RESULT && !g->return_exceptions) g->failed = 1;
      continue;
    }
    if (UVAPY_IS_TASK(t)) {
      /* a task's _notify: NULL, one callable, or a list of them */
      uvapy_task *tt = (uvapy_task *) t;
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
      tt->gather_idx = i <= (Py_ssize_t) UINT32_MAX ? (uint32_t) i : 0;
    } else { /* a Future: _notify is a list */
      if ((notify = PyObject_GetAttr(t, uvapy_s_notify)) == NULL) return NULL;
      rc = PyList_Append(notify, self);
      Py_DECREF(notify);
    }
    if (rc < 0) return NULL;
    g->remaining++;
  }
  g->waiter = ((uvapy_task *) uvapy_ts.running)->ctask;
  Py_RETURN_NONE;
}

/* results(): the list of the children's results, in order (exceptions
 * too, for return_exceptions), all being done; given out once. */
static PyObject *uvapy_gathering_results(uvapy_gathering *g, PyObject *u) {
  PyObject *out = g->results;
  Py_ssize_t i, n;
  (void) u;
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
      v = uvapy_task_value((uvapy_task *) t);
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
  (void) u;
  g->waiter = NULL;
  Py_RETURN_NONE;
}

static PyMemberDef uvapy_gathering_members[] = {
    {"remaining", T_PYSSIZET, offsetof(uvapy_gathering, remaining), READONLY,
     NULL},
    {"failed", T_INT, offsetof(uvapy_gathering, failed), READONLY, NULL},
    {NULL}};

static PyMethodDef uvapy_gathering_methods[] = {
    {"watch", (PyCFunction) uvapy_gathering_watch, METH_O, NULL},
    {"results", (PyCFunction) uvapy_gathering_results, METH_NOARGS, NULL},
    {"release", (PyCFunction) uvapy_gathering_release, METH_NOARGS, NULL},
    {NULL}};

PyTypeObject uvapy_gathering_type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "uvasync._cext.Gathering",
    .tp_basicsize = sizeof(uvapy_gathering),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "The state of one gather() (see uvasync.funcs._gather).",
    .tp_new = uvapy_gathering_new,
    .tp_dealloc = (destructor) uvapy_gathering_dealloc,
    .tp_traverse = (traverseproc) uvapy_gathering_traverse,
    .tp_clear = (inquiry) uvapy_gathering_clear,
    .tp_call = (ternaryfunc) uvapy_gathering_call,
    .tp_members = uvapy_gathering_members,
    .tp_methods = uvapy_gathering_methods,
};
