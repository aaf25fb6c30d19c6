/* TaskBase: the state of a Task in C, its start, end and step. */
#include "uvapy.h"

static int _uvapy_step_c(uva_task_t *ctask, int status, void *data);

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
    if (!PyObject_GC_IsTracked(t->coro)) PyObject_GC_Track(t->coro);
  }
}

/* The same for the task's own copy of the context. */
static void uvapy_context_retrack(uvapy_task *t) {
  if (t->context_untracked) {
    t->context_untracked = 0;
    if (!PyObject_GC_IsTracked(t->context)) PyObject_GC_Track(t->context);
  }
}

static int uvapy_task_clear(uvapy_task *t) {
  if (t->coro != NULL) uvapy_coro_retrack(t);
  if (t->context != NULL) uvapy_context_retrack(t);
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
  if (t->weakrefs != NULL) PyObject_ClearWeakRefs((PyObject *) t);
  uvapy_task_clear(t);
  Py_TYPE(t)->tp_free((PyObject *) t);
}

static uvapy_task *uvapy_live_first; /* the live tasks, newest first */

static void uvapy_live_add(uvapy_task *t) {
  Py_INCREF(t);
  t->live = 1;
  t->live_prev = NULL;
  t->live_next = uvapy_live_first;
  if (uvapy_live_first != NULL) uvapy_live_first->live_prev = t;
  uvapy_live_first = t;
}

/* Unlink; the caller drops the list's reference when done with t. */
static int uvapy_live_remove(uvapy_task *t) {
  if (!t->live) return 0;
  t->live = 0;
  if (t->live_prev != NULL)
    t->live_prev->live_next = t->live_next;
  else
    uvapy_live_first = t->live_next;
  if (t->live_next != NULL) t->live_next->live_prev = t->live_prev;
  t->live_prev = t->live_next = NULL;
  return 1;
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
    if (n > 1) loop = PyTuple_GET_ITEM(args, 1);
    if (n > 2) name = PyTuple_GET_ITEM(args, 2);
    if (n > 3) context = PyTuple_GET_ITEM(args, 3);
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
    if (context == NULL) return -1;
    own_context = 1;
  } else if (PyContext_CheckExact(context)) {
    Py_INCREF(context);
  } else {
    PyErr_SetString(PyExc_TypeError, "context must be a contextvars.Context");
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
  if (loop == NULL) return -1;
  t->loop = loop;
  if (name != Py_None &&
      (t->extra = PyObject_CallOneArg(uvapy_extra, name)) == NULL)
    return -1;
  if ((l = uvapy_loop_ptr(loop)) == NULL) return -1;
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
PyObject *uvapy_spawn_coros_fn(PyObject *mod, PyObject *const *args,
                               Py_ssize_t nargs) {
  PyTypeObject *tp = (PyTypeObject *) uvapy_task_cls;
  PyObject *aws, *loop, *out;
  char *untracked;
  Py_ssize_t i, n;
  int gc_was_on = 0;
  (void) mod;
  (void) gc_was_on;
  if (nargs != 2 || !PyTuple_CheckExact(args[0])) {
    PyErr_SetString(PyExc_TypeError, "_spawn_coros(tuple, loop)");
    return NULL;
  }
  aws = args[0];
  loop = args[1];
  n = PyTuple_GET_SIZE(aws);
  for (i = 0; i < n; i++)
    if (!PyCoro_CheckExact(PyTuple_GET_ITEM(aws, i))) Py_RETURN_NONE;
  if (uvapy_loop_ptr(loop) == NULL) return NULL;
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
    uvapy_task *t = (uvapy_task *) tp->tp_alloc(tp, 0);
    if (t == NULL || uvapy_task_start(t, PyTuple_GET_ITEM(aws, i), loop,
                                      Py_None, Py_None) < 0) {
      Py_XDECREF(t);
      break;
    }
    t->coro_untracked = untracked[i]; /* the task tracks it again */
    untracked[i] = 0;
    PyList_SET_ITEM(out, i, (PyObject *) t);
  }
#if PY_VERSION_HEX >= 0x030A0000
  if (gc_was_on) PyGC_Enable();
#endif
  if (i == n) {
    /* The collection the n allocations made due runs at the next one:
         * keep it off the two n-item containers it would walk. The tuple
         * holds only coroutines taken out of the GC (CPython untracks such
         * tuples itself); the list, of tasks out of it while pending, is
         * tracked again when gather's state takes it (watch). */
    if (PyObject_GC_IsTracked(aws)) PyObject_GC_UnTrack(aws);
    PyObject_GC_UnTrack(out);
  }
  if (i < n) { /* failed: the coroutines not handed over go back */
    for (; i < n; i++)
      if (untracked[i]) PyObject_GC_Track(PyTuple_GET_ITEM(aws, i));
    Py_CLEAR(out);
  }
  PyMem_Free(untracked);
  return out;
}

/* create_task(coro, *, name=None, context=None): uvasync.create_task, a
 * started Task on the running loop (else the thread's). In C because a
 * Python function looks each keyword-only default it was not given up in
 * a dict, on every call: two lookups per task once context= came. */
PyObject *uvapy_create_task_fn(PyObject *mod, PyObject *const *args,
                               Py_ssize_t nargs, PyObject *kwnames) {
  PyTypeObject *tp = (PyTypeObject *) uvapy_task_cls;
  PyObject *coro = nargs == 1 ? args[0] : NULL;
  PyObject *name = Py_None, *context = Py_None;
  Py_ssize_t i, nkw = kwnames != NULL ? PyTuple_GET_SIZE(kwnames) : 0;
  uvapy_task *t;
  (void) mod;
  if (nargs > 1) {
    PyErr_Format(PyExc_TypeError,
                 "create_task() takes 1 positional "
                 "argument but %zd were given",
                 nargs);
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
      PyErr_Format(PyExc_TypeError,
                   "create_task() got an unexpected "
                   "keyword argument '%U'",
                   k);
      return NULL;
    }
  }
  if (coro == NULL) {
    PyErr_SetString(PyExc_TypeError,
                    "create_task() missing required "
                    "argument 'coro'");
    return NULL;
  }
  if ((t = (uvapy_task *) tp->tp_alloc(tp, 0)) == NULL) return NULL;
  if (uvapy_task_start(t, coro, Py_None, name, context) < 0) {
    Py_DECREF(t);
    return NULL;
  }
  return (PyObject *) t;
}

/* Call fn(task), reporting (not raising) what it raises. */
static void uvapy_call_report(PyObject *fn, PyObject *arg) {
  PyObject *r = PyObject_CallOneArg(fn, arg);
  if (r == NULL) PyErr_WriteUnraisable(fn);
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
  PyObject *self = (PyObject *) t, *notify, *cbs, *loop;
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
  if (t->coro != NULL) uvapy_coro_retrack(t);
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
  if (loop == NULL) goto out;
  Py_INCREF(loop);
  if ((cbs = t->callbacks) != NULL) {
    t->callbacks = NULL;
    for (i = 0; PyList_Check(cbs) && i < PyList_GET_SIZE(cbs); i++) {
      PyObject *r = PyObject_CallMethodObjArgs(
          loop, uvapy_s_call_soon, PyList_GET_ITEM(cbs, i), self, NULL);
      if (r == NULL) PyErr_WriteUnraisable(loop);
      Py_XDECREF(r);
    }
    Py_DECREF(cbs);
  }
  if (state == UVAPY_EXCEPTION) {
    PyObject *rep = PyObject_Repr(self), *log = NULL;
    if (rep != NULL)
      log = PyObject_CallFunctionObjArgs(uvapy_exclog, loop, value, rep, NULL);
    if (log == NULL) PyErr_WriteUnraisable(self);
    Py_XDECREF(rep);
    Py_XSETREF(t->log_exc, log);
  }
  if (UVAPY_IS_LOOP(loop) &&
      ((uvapy_loop *) loop)->main == self) { /* run_until_complete's */
    uva_loop_t *l = uvapy_loop_ptr(loop);
    if (l != NULL) uva_loop_stop(l);
  }
  if (PyErr_Occurred()) PyErr_WriteUnraisable(self);
  Py_DECREF(loop);
out:
  if (was_live) Py_DECREF(self);
  Py_DECREF(self);
  return 0;
}

static PyObject *uvapy_task_finish_meth(uvapy_task *t, PyObject *args) {
  int state;
  PyObject *value;
  if (!PyArg_ParseTuple(args, "iO:_finish", &state, &value)) return NULL;
  uvapy_task_end(t, state, value);
  Py_RETURN_NONE;
}

/* _join(): uva_task_join(running task, this one); the core's code. */
static PyObject *uvapy_task_join_meth(uvapy_task *t, PyObject *unused) {
  (void) unused;
  if (t->ctask == NULL) return PyLong_FromLong(UVA_EINVAL);
  return PyLong_FromLong(uva_task_join(NULL, t->ctask));
}

static PyObject *uvapy_task_addr(uvapy_task *t, void *unused) {
  (void) unused;
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
  (void) u;
  Py_INCREF(c);
  return c;
}

/* _coro = x (uasyncio swaps in a stand-in while a task waits for I/O): the
 * coroutine let go of goes back into the cyclic GC first. */
static int uvapy_task_set_coro(uvapy_task *t, PyObject *v, void *u) {
  (void) u;
  if (t->coro != NULL) uvapy_coro_retrack(t);
  Py_XINCREF(v);
  Py_XSETREF(t->coro, v);
  return 0;
}

static PyGetSetDef uvapy_task_getset[] = {
    {"_coro", (getter) uvapy_task_get_coro, (setter) uvapy_task_set_coro, NULL,
     NULL},
    {"_ctask_addr", (getter) uvapy_task_addr, NULL, NULL, NULL},
    {NULL}};

/* get_context(): the contextvars.Context the task runs in (CPython 3.12).
 * Once the task is done, None if it ran in its own copy and nobody had
 * taken that (the copy is freed at the task's end). */
static PyObject *uvapy_task_get_context(uvapy_task *t, PyObject *unused) {
  PyObject *c = t->context != NULL ? t->context : Py_None;
  (void) unused;
  Py_INCREF(c);
  return c;
}

static PyMethodDef uvapy_task_methods[] = {
    {"get_context", (PyCFunction) uvapy_task_get_context, METH_NOARGS,
     "The contextvars.Context the task runs in."},
    {"_finish", (PyCFunction) uvapy_task_finish_meth, METH_VARARGS, NULL},
    {"_join", (PyCFunction) uvapy_task_join_meth, METH_NOARGS, NULL},
    {NULL}};

PyTypeObject uvapy_task_type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "uvasync._cext.TaskBase",
    .tp_basicsize = sizeof(uvapy_task),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "The state of a uvasync Task (see uvasync.core.Task).",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc) uvapy_task_init,
    .tp_dealloc = (destructor) uvapy_task_dealloc,
    .tp_traverse = (traverseproc) uvapy_task_traverse,
    .tp_clear = (inquiry) uvapy_task_clear,
    .tp_weaklistoffset = offsetof(uvapy_task, weakrefs),
    .tp_members = uvapy_task_members,
    .tp_getset = uvapy_task_getset,
    .tp_methods = uvapy_task_methods,
};

/* live_tasks(): the tasks not yet done, of every loop. */
PyObject *uvapy_live_tasks_fn(PyObject *mod, PyObject *u) {
  PyObject *out = PyList_New(0);
  uvapy_task *t;
  (void) mod;
  (void) u;
  for (t = uvapy_live_first; out != NULL && t != NULL; t = t->live_next) {
    if (PyList_Append(out, (PyObject *) t) < 0) Py_CLEAR(out);
  }
  return out;
}

/* current_task(): the task whose step runs in this thread, or None. */
PyObject *uvapy_current_task_fn(PyObject *mod, PyObject *u) {
  PyObject *t = uvapy_ts.running != NULL ? uvapy_ts.running : Py_None;
  (void) mod;
  (void) u;
  Py_INCREF(t);
  return t;
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
  return (int) code;
}

static int _uvapy_step_c(uva_task_t *ctask, int status, void *data) {
  uvapy_thread_state *ts = &uvapy_ts;
  int ensure = !ts->loop_has_gil; /* not from _uvapy_run's loop: take it */
  PyGILState_STATE g = ensure ? PyGILState_Ensure() : PyGILState_LOCKED;
  PyObject *task = (PyObject *) data; /* alive: the live list holds it */
  PyObject *outer = ts->running;      /* NULL: steps do not nest */
  PyObject *context = ((uvapy_task *) task)->context;
  int rc;
  (void) ctask;
  Py_INCREF(task); /* the end of the task drops the list's reference */
  ts->running = task;
  if (status != 0) /* a cancellation, not the end of a sleep */
    ((uvapy_task *) task)->sleeping = 0;
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
    PyObject *coro = ((uvapy_task *) task)->coro;
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
    } else if (sr == PYGEN_RETURN &&
               Py_TYPE(task) ==
                   (PyTypeObject *) uvapy_task_cls) { /* returned */
      uvapy_task_end((uvapy_task *) task, UVAPY_RESULT, res);
      Py_DECREF(res);
      rc = 0;
    } else if (sr == PYGEN_RETURN) { /* a subclass's task._finish */
      PyObject *r = PyObject_CallMethodObjArgs(task, uvapy_finish, uvapy_result,
                                               res, NULL);
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
      if (etb != NULL && ev != NULL) PyException_SetTraceback(ev, etb);
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
    uvapy_task *t = (uvapy_task *) task;
    if (PyContext_Exit(context) < 0) PyErr_WriteUnraisable(task);
    if (t->state != UVAPY_PENDING && t->context == context) {
      /* Done: nothing runs in it any more. The task's own copy that
             * nobody else holds goes now (a tracked object per finished
             * task made collections more frequent); else it is tracked
             * again, as the task is. */
      int drop = t->context_untracked && Py_REFCNT(context) == 1;
      uvapy_context_retrack(t);
      if (drop) Py_CLEAR(t->context);
    }
  }
  ts->running = outer;
  Py_DECREF(task);
  if (ensure) PyGILState_Release(g);
  return rc;
}

/* A done callback that wakes the task given as its data (gather, wait_for):
 * the waiter is resumed by the core, without a detour through Python. */
void _uvapy_wake_on_done(uva_task_t *task, int result, void *data) {
  (void) task;
  (void) result;
  uva_task_wake((uva_task_t *) data);
}
