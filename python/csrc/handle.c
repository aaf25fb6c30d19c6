/* The asyncio loop's callbacks (uvasync/aio_loop.py): call_soon,
 * call_soon_threadsafe, call_later and call_at, and the running of their
 * handles, in C.
 *
 * The handles are instances of aio_loop's subclasses of asyncio.Handle and
 * asyncio.TimerHandle. Their __slots__ are read and written here at the
 * offsets that the slots' member descriptors give, so asyncio's own
 * methods (cancel, cancelled, when, repr, get_context) work on them and
 * isinstance holds, while making one and running one costs no Python
 * frame. A handle rides the core's run queue (call_soon) or a core timer
 * of its own (call_at) as the callback's data, holding a reference.
 *
 * In debug mode the loop makes and runs its handles in Python (asyncio's
 * Handle.__init__ records where, the run is timed): _aio_enqueue and
 * _aio_arm then only put them in the core. */
#include "uvapy.h"

#include <time.h>

#define AIO_MAX_MS ((int64_t) 1 << 40) /* _internal._MAX_MS */

static PyTypeObject *aio_handle_cls, *aio_timer_cls;
static PyObject *aio_failed; /* aio_loop._handle_failed(handle, exc) */
static PyObject *aio_s_run_handle, *aio_s_abort_run, *aio_s_call_soon_debug,
    *aio_s_call_at_debug, *aio_s_threadsafe_debug;

/* Offsets of the slots in the handle classes. */
static Py_ssize_t off_callback, off_args, off_cancelled, off_loop, off_tb,
    off_repr, off_context, off_when, off_scheduled, off_ctimer;

#define SLOT(o, off) (*(PyObject **) ((char *) (o) + (off)))

static void aio_dealloc(PyObject *o);
static int aio_traverse(PyObject *o, visitproc visit, void *arg);

/* Put v (a new reference, or NULL) in a slot, dropping what was there. */
static void slot_put(PyObject *o, Py_ssize_t off, PyObject *v) {
  PyObject *old = SLOT(o, off);
  SLOT(o, off) = v;
  Py_XDECREF(old);
}

static void slot_set(PyObject *o, Py_ssize_t off, PyObject *v) {
  Py_XINCREF(v);
  slot_put(o, off, v);
}

/* time.monotonic(), the loop's clock and the core timers' (uv_hrtime). */
static double aio_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double) ts.tv_sec + (double) ts.tv_nsec * 1e-9;
}

/* ---- set-up ------------------------------------------------------------ */

static int aio_offset(PyObject *cls, const char *name, Py_ssize_t *out) {
  PyObject *d = PyObject_GetAttrString(cls, name);
  int rc = -1;
  if (d == NULL) return -1;
  if (Py_IS_TYPE(d, &PyMemberDescr_Type)) {
    PyMemberDef *m = ((PyMemberDescrObject *) d)->d_member;
    if (m->type == T_OBJECT_EX) {
      *out = m->offset;
      rc = 0;
    }
  }
  if (rc != 0) PyErr_Format(PyExc_TypeError, "%R.%s is not a slot", cls, name);
  Py_DECREF(d);
  return rc;
}

/* _aio_setup(Handle, TimerHandle, handle_failed): aio_loop's handle
 * classes and its error path; called once at import. */
PyObject *uvapy_aio_setup(PyObject *mod, PyObject *const *args,
                          Py_ssize_t nargs) {
  PyObject *h, *t;
  (void) mod;
  if (nargs != 3 || !PyType_Check(args[0]) || !PyType_Check(args[1])) {
    PyErr_SetString(PyExc_TypeError,
                    "_aio_setup(Handle, TimerHandle, handle_failed)");
    return NULL;
  }
  h = args[0];
  t = args[1];
  if (aio_offset(h, "_callback", &off_callback) < 0 ||
      aio_offset(h, "_args", &off_args) < 0 ||
      aio_offset(h, "_cancelled", &off_cancelled) < 0 ||
      aio_offset(h, "_loop", &off_loop) < 0 ||
      aio_offset(h, "_source_traceback", &off_tb) < 0 ||
      aio_offset(h, "_repr", &off_repr) < 0 ||
      aio_offset(h, "_context", &off_context) < 0 ||
      aio_offset(t, "_when", &off_when) < 0 ||
      aio_offset(t, "_scheduled", &off_scheduled) < 0 ||
      aio_offset(t, "_ctimer", &off_ctimer) < 0)
    return NULL;
  if (!PyType_IsSubtype((PyTypeObject *) t, (PyTypeObject *) h) &&
      aio_offset(t, "_callback", &off_callback) < 0)
    return NULL;
  if ((aio_s_run_handle = PyUnicode_InternFromString("_run_handle")) == NULL ||
      (aio_s_abort_run = PyUnicode_InternFromString("_abort_run")) == NULL ||
      (aio_s_call_soon_debug =
           PyUnicode_InternFromString("_call_soon_debug")) == NULL ||
      (aio_s_call_at_debug = PyUnicode_InternFromString("_call_at_debug")) ==
          NULL ||
      (aio_s_threadsafe_debug =
           PyUnicode_InternFromString("_threadsafe_handle_debug")) == NULL)
    return NULL;
  Py_INCREF(h);
  Py_INCREF(t);
  Py_INCREF(args[2]);
  Py_XSETREF(aio_handle_cls, (PyTypeObject *) h);
  Py_XSETREF(aio_timer_cls, (PyTypeObject *) t);
  ((PyTypeObject *) h)->tp_dealloc = aio_dealloc;
  ((PyTypeObject *) t)->tp_dealloc = aio_dealloc;
  ((PyTypeObject *) h)->tp_traverse = aio_traverse;
  ((PyTypeObject *) t)->tp_traverse = aio_traverse;
  Py_XSETREF(aio_failed, args[2]);
  Py_RETURN_NONE;
}

/* ---- a free list of handles ---------------------------------------------- */

/* Handles are made and dropped for every callback: a freed one keeps its
 * memory here for the next (as uvloop's handles do), in place of the
 * handle classes' generic dealloc. Instances of the two classes only; a
 * subclass's are freed (Python's dealloc of a subclass calls this one,
 * which then drops the class's reference, as for any heap-type base). */
#define AIO_FREE_MAX 256

static PyObject *aio_free_handles[AIO_FREE_MAX], *aio_free_timers[AIO_FREE_MAX];
static int aio_nfree_handles, aio_nfree_timers;

static Py_ssize_t *aio_slots_of(PyTypeObject *tp, int *n) {
  static Py_ssize_t offs[10];
  offs[0] = off_callback;
  offs[1] = off_args;
  offs[2] = off_cancelled;
  offs[3] = off_loop;
  offs[4] = off_tb;
  offs[5] = off_repr;
  offs[6] = off_context;
  offs[7] = off_when;
  offs[8] = off_scheduled;
  offs[9] = off_ctimer;
  *n = tp == aio_timer_cls ||
               (tp != aio_handle_cls && PyType_IsSubtype(tp, aio_timer_cls))
           ? 10
           : 7;
  return offs;
}

static void aio_dealloc(PyObject *o) {
  PyTypeObject *tp = Py_TYPE(o);
  Py_ssize_t *offs;
  int i, n;
  PyObject_GC_UnTrack(o);
  if (tp->tp_weaklistoffset > 0) {
    PyObject **wl = (PyObject **) ((char *) o + tp->tp_weaklistoffset);
    if (*wl != NULL) PyObject_ClearWeakRefs(o);
    *wl = NULL;
  }
  offs = aio_slots_of(tp, &n);
  for (i = 0; i < n; i++)
    Py_CLEAR(SLOT(o, offs[i]));
  if (tp == aio_handle_cls && aio_nfree_handles < AIO_FREE_MAX)
    aio_free_handles[aio_nfree_handles++] = o;
  else if (tp == aio_timer_cls && aio_nfree_timers < AIO_FREE_MAX)
    aio_free_timers[aio_nfree_timers++] = o;
  else
    tp->tp_free(o);
  Py_DECREF(tp); /* instances of a heap type hold it */
}

/* The GC's walk over a handle: the slots that may hold containers,
 * directly (Python's generic walk looks every slot up through the
 * classes' member lists), and its class. */
static int aio_traverse(PyObject *o, visitproc visit, void *arg) {
  /* not _cancelled, _repr, _when, _scheduled, _ctimer: a bool, None or
   * str, a float, a bool, None or int, never part of a cycle */
  Py_VISIT(SLOT(o, off_callback));
  Py_VISIT(SLOT(o, off_args));
  Py_VISIT(SLOT(o, off_loop));
  Py_VISIT(SLOT(o, off_context));
  Py_VISIT(SLOT(o, off_tb));
  Py_VISIT(Py_TYPE(o));
  return 0;
}

/* A new (zeroed) instance of one of the two handle classes. */
static PyObject *aio_alloc(PyTypeObject *cls) {
  PyObject *o = NULL;
  if (cls == aio_handle_cls && aio_nfree_handles > 0)
    o = aio_free_handles[--aio_nfree_handles];
  else if (cls == aio_timer_cls && aio_nfree_timers > 0)
    o = aio_free_timers[--aio_nfree_timers];
  if (o == NULL) return cls->tp_alloc(cls, 0);
  PyObject_Init(o, cls); /* its type and a first reference (type held) */
  PyObject_GC_Track(o);
  return o;
}

/* ---- making a handle ----------------------------------------------------- */

/* A new handle of `cls` for callback(*args) on loop, in `context` (NULL or
 * None: a copy of the current one). */
static PyObject *aio_new(PyTypeObject *cls, PyObject *loop, PyObject *cb,
                         PyObject *const *args, Py_ssize_t n,
                         PyObject *context) {
  PyObject *h, *tuple = PyTuple_New(n);
  Py_ssize_t i;
  if (tuple == NULL) return NULL;
  for (i = 0; i < n; i++) {
    Py_INCREF(args[i]);
    PyTuple_SET_ITEM(tuple, i, args[i]);
  }
  if (context == NULL || context == Py_None) {
    if ((context = PyContext_CopyCurrent()) == NULL) {
      Py_DECREF(tuple);
      return NULL;
    }
  } else {
    Py_INCREF(context);
  }
  if ((h = aio_alloc(cls)) == NULL) {
    Py_DECREF(tuple);
    Py_DECREF(context);
    return NULL;
  }
  Py_INCREF(cb);
  Py_INCREF(loop);
  Py_INCREF(Py_False);
  Py_INCREF(Py_None);
  Py_INCREF(Py_None);
  SLOT(h, off_callback) = cb;
  SLOT(h, off_args) = tuple;
  SLOT(h, off_cancelled) = Py_False;
  SLOT(h, off_loop) = loop;
  SLOT(h, off_tb) = Py_None;
  SLOT(h, off_repr) = Py_None;
  SLOT(h, off_context) = context;
  return h;
}

/* The arguments of call_soon(callback, *args, context=None) and its
 * kind; *context is borrowed (NULL if not given). */
static int aio_parse(PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames,
                     Py_ssize_t min, PyObject **context, const char *name) {
  Py_ssize_t i, nkw = kwnames != NULL ? PyTuple_GET_SIZE(kwnames) : 0;
  *context = NULL;
  if (nargs < min) {
    PyErr_Format(PyExc_TypeError, "%s() missing a required argument", name);
    return -1;
  }
  for (i = 0; i < nkw; i++) {
    PyObject *k = PyTuple_GET_ITEM(kwnames, i);
    if (!PyUnicode_Check(k) ||
        PyUnicode_CompareWithASCIIString(k, "context") != 0) {
      PyErr_Format(PyExc_TypeError,
                   "%s() got an unexpected keyword argument '%S'", name, k);
      return -1;
    }
    *context = args[nargs + i];
  }
  return 0;
}

static int aio_check_callback(PyObject *cb, const char *name) {
  if (PyCoro_CheckExact(cb) ||
      (PyFunction_Check(cb) &&
       (((PyCodeObject *) PyFunction_GET_CODE(cb))->co_flags & CO_COROUTINE))) {
    PyErr_Format(PyExc_TypeError, "coroutines cannot be used with %s()", name);
    return -1;
  }
  if (!PyCallable_Check(cb)) {
    PyErr_Format(PyExc_TypeError,
                 "a callable object was expected by %s(), got %R", name, cb);
    return -1;
  }
  return 0;
}

static uva_loop_t *aio_open(uvapy_loop *l) {
  if (l->h == NULL) PyErr_SetString(PyExc_RuntimeError, "Event loop is closed");
  return l->h;
}

/* A call into the core refused with UVA_EWRONGTHREAD from a thread that
 * is not the core loop's owner: a loop that is not running belongs to
 * whichever thread uses it, as asyncio's loop (uva_loop_adopt), so the call
 * is made again. True if it should be. */
static int aio_adopted(uvapy_loop *l, int rc) {
  return rc == UVA_EWRONGTHREAD && l->h != NULL && uva_loop_adopt(l->h) == 0;
}

/* A tuple of args[0:n] (debug paths). */
static PyObject *aio_tuple(PyObject *const *args, Py_ssize_t n) {
  PyObject *t = PyTuple_New(n);
  Py_ssize_t i;
  if (t == NULL) return NULL;
  for (i = 0; i < n; i++) {
    Py_INCREF(args[i]);
    PyTuple_SET_ITEM(t, i, args[i]);
  }
  return t;
}

/* ---- running a handle ---------------------------------------------------- */

/* The callback raised: KeyboardInterrupt and SystemExit stop the loop
 * (run_* raises them), anything else goes to the loop's exception handler
 * (aio_loop._handle_failed, as asyncio's Handle._run reports it). */
static void aio_run_failed(PyObject *loop, PyObject *h) {
  PyObject *et, *ev, *etb, *r;
  PyErr_Fetch(&et, &ev, &etb);
  PyErr_NormalizeException(&et, &ev, &etb);
  if (etb != NULL && ev != NULL) PyException_SetTraceback(ev, etb);
  if (ev == NULL) {
    Py_INCREF(Py_None);
    ev = Py_None;
  }
  if (PyErr_GivenExceptionMatches(ev, PyExc_KeyboardInterrupt) ||
      PyErr_GivenExceptionMatches(ev, PyExc_SystemExit))
    r = PyObject_CallMethodObjArgs(loop, aio_s_abort_run, ev, NULL);
  else
    r = PyObject_CallFunctionObjArgs(aio_failed, h, ev, NULL);
  if (r == NULL) PyErr_WriteUnraisable(h);
  Py_XDECREF(r);
  Py_XDECREF(et);
  Py_XDECREF(ev);
  Py_XDECREF(etb);
}

/* Run handle h unless it was cancelled or its loop is closing. */
static void aio_run(PyObject *h) {
  PyObject *loop = SLOT(h, off_loop), *cb, *args, *ctx, *r;
  uvapy_loop *l = (uvapy_loop *) loop;
  if (SLOT(h, off_cancelled) == Py_True || l->aio_closing) return;
  if (l->aio_debug) { /* timed, in Python */
    r = PyObject_CallMethodObjArgs(loop, aio_s_run_handle, h, NULL);
    if (r == NULL) PyErr_WriteUnraisable(h);
    Py_XDECREF(r);
    return;
  }
  cb = SLOT(h, off_callback);
  args = SLOT(h, off_args);
  ctx = SLOT(h, off_context);
  if (cb == NULL || args == NULL || ctx == NULL || !PyTuple_Check(args)) return;
  Py_INCREF(loop); /* the callback may cancel h, which drops these */
  Py_INCREF(cb);
  Py_INCREF(args);
  Py_INCREF(ctx);
  if (PyContext_Enter(ctx) < 0) {
    aio_run_failed(loop, h);
  } else {
    r = PyObject_Vectorcall(cb, &PyTuple_GET_ITEM(args, 0),
                            PyTuple_GET_SIZE(args), NULL);
    if (r == NULL) {
      PyObject *et, *ev, *etb;
      PyErr_Fetch(&et, &ev, &etb);
      PyContext_Exit(ctx);
      PyErr_Restore(et, ev, etb);
      aio_run_failed(loop, h);
    } else {
      Py_DECREF(r);
      if (PyContext_Exit(ctx) < 0) PyErr_WriteUnraisable(h);
    }
  }
  Py_DECREF(ctx);
  Py_DECREF(args);
  Py_DECREF(cb);
  Py_DECREF(loop);
}

/* From the core's run queue (or thread-safe queue): run it, drop the
 * queue's reference. The loop's run holds the GIL; other callers (a
 * close draining the queues) do not. */
static void aio_handle_cb(void *data) {
  int ensure = !uvapy_ts.loop_has_gil;
  PyGILState_STATE g = ensure ? PyGILState_Ensure() : PyGILState_LOCKED;
  PyObject *h = (PyObject *) data;
  aio_run(h);
  Py_DECREF(h);
  if (ensure) PyGILState_Release(g);
}

/* ---- call_soon ------------------------------------------------------------ */

static PyObject *aio_enqueue(uvapy_loop *l, PyObject *h) {
  int rc;
  Py_INCREF(h); /* the queue's */
  rc = uva_loop_call_soon(l->h, aio_handle_cb, h);
  if (aio_adopted(l, rc)) rc = uva_loop_call_soon(l->h, aio_handle_cb, h);
  if (rc < 0) {
    Py_DECREF(h);
    uvapy_raise(rc, "call_soon");
    return NULL;
  }
  Py_INCREF(h);
  return h;
}

static PyObject *aio_call_soon(uvapy_loop *l, PyObject *const *args,
                               Py_ssize_t nargs, PyObject *kwnames) {
  PyObject *context, *h, *r;
  if (aio_parse(args, nargs, kwnames, 1, &context, "call_soon") < 0 ||
      aio_open(l) == NULL)
    return NULL;
  if (l->aio_debug) {
    PyObject *t = aio_tuple(args + 1, nargs - 1);
    if (t == NULL) return NULL;
    r = PyObject_CallMethodObjArgs((PyObject *) l, aio_s_call_soon_debug,
                                   args[0], t,
                                   context != NULL ? context : Py_None, NULL);
    Py_DECREF(t);
    return r;
  }
  if (aio_check_callback(args[0], "call_soon") < 0) return NULL;
  h = aio_new(aio_handle_cls, (PyObject *) l, args[0], args + 1, nargs - 1,
              context);
  if (h == NULL) return NULL;
  r = aio_enqueue(l, h);
  Py_DECREF(h);
  return r;
}

/* _aio_enqueue(handle): a handle made in Python, to the run queue. */
static PyObject *aio_enqueue_fn(uvapy_loop *l, PyObject *h) {
  if (aio_open(l) == NULL) return NULL;
  if (!PyObject_TypeCheck(h, aio_handle_cls)) {
    PyErr_SetString(PyExc_TypeError, "an aio_loop.Handle was expected");
    return NULL;
  }
  return aio_enqueue(l, h);
}

/* call_soon_threadsafe: the core's thread-safe queue, which wakes the
 * loop. The core call waits for a close under way in the loop's thread,
 * which may need the GIL to run what is queued: it is made without it. */
static PyObject *aio_call_soon_threadsafe(uvapy_loop *l, PyObject *const *args,
                                          Py_ssize_t nargs, PyObject *kwnames) {
  PyObject *context, *h;
  uva_loop_t *loop;
  int rc;
  if (aio_parse(args, nargs, kwnames, 1, &context, "call_soon_threadsafe") <
          0 ||
      (loop = aio_open(l)) == NULL ||
      aio_check_callback(args[0], "call_soon_threadsafe") < 0)
    return NULL;
  if (l->aio_debug) { /* made in Python, which records where */
    PyObject *t = aio_tuple(args + 1, nargs - 1);
    if (t == NULL) return NULL;
    h = PyObject_CallMethodObjArgs((PyObject *) l, aio_s_threadsafe_debug,
                                   args[0], t,
                                   context != NULL ? context : Py_None, NULL);
    Py_DECREF(t);
    if (h != NULL && !PyObject_TypeCheck(h, aio_handle_cls)) {
      Py_DECREF(h);
      PyErr_SetString(PyExc_TypeError, "an aio_loop.Handle was expected");
      h = NULL;
    }
  } else {
    h = aio_new(aio_handle_cls, (PyObject *) l, args[0], args + 1, nargs - 1,
                context);
  }
  if (h == NULL) return NULL;
  Py_INCREF(h); /* the queue's */
  /* the loop's memory stays: the Loop holds a reference (_xh) */
  Py_BEGIN_ALLOW_THREADS rc =
      uva_loop_call_soon_threadsafe(loop, aio_handle_cb, h);
  Py_END_ALLOW_THREADS if (rc < 0) {
    Py_DECREF(h);
    Py_DECREF(h);
    if (rc == UVA_ECLOSED)
      PyErr_SetString(PyExc_RuntimeError, "Event loop is closed");
    else
      uvapy_raise(rc, "call_soon_threadsafe");
    return NULL;
  }
  return h;
}

/* ---- timers --------------------------------------------------------------- */

/* A core timer of the loop's and the handle it runs. The handle's _ctimer
 * slot holds the node's address while it is armed (None otherwise). Armed
 * nodes are on the loop's list (for close()); a node that fired or was
 * cancelled keeps its stopped core timer on the loop's idle list for the
 * next call_at, so a timer costs no allocation in the core either. */
struct uvapy_aio_timer {
  uva_timer_t *t;
  PyObject *handle; /* NULL while idle */
  struct uvapy_aio_timer *prev, *next;
};
typedef struct uvapy_aio_timer aio_timer;

#define AIO_IDLE_MAX 4096

/* The core frees a node with its timer (after uva_timer_close). */
static void aio_node_free(void *data) { PyMem_RawFree(data); }

static void aio_unlink(uvapy_loop *l, aio_timer *n) {
  if (n->prev != NULL)
    n->prev->next = n->next;
  else
    l->aio_armed = n->next;
  if (n->next != NULL) n->next->prev = n->prev;
  n->prev = n->next = NULL;
  l->aio_narmed--;
}

/* Node n's handle is done with it (fired or cancelled; its core timer is
 * stopped): unlink it, clear the handle's slot, keep the timer for reuse.
 * Returns the handle's reference the node held. */
static PyObject *aio_release(uvapy_loop *l, aio_timer *n) {
  PyObject *h = n->handle;
  n->handle = NULL;
  aio_unlink(l, n);
  slot_set(h, off_ctimer, Py_None);
  if (l->aio_nidle < AIO_IDLE_MAX && l->h != NULL) {
    n->next = l->aio_idle;
    l->aio_idle = n;
    l->aio_nidle++;
  } else {
    uva_timer_close(n->t, NULL);
  }
  return h;
}

/* Timer handle h's armed node, or NULL. */
static aio_timer *aio_node_of(PyObject *h) {
  PyObject *addr = SLOT(h, off_ctimer);
  aio_timer *n;
  if (addr == NULL || addr == Py_None) return NULL;
  n = (aio_timer *) PyLong_AsVoidPtr(addr);
  if (n == NULL) PyErr_Clear();
  return n != NULL && n->handle == h ? n : NULL;
}

/* A delay in seconds as the core's whole ms, rounded up. */
static int64_t aio_delay_ms(double delay) {
  double ms = delay * 1000.0;
  if (ms <= 0) return 0;
  if (!(ms < (double) AIO_MAX_MS)) return AIO_MAX_MS; /* also NaN */
  return (int64_t) ceil(ms);
}

/* A timer fires once the core's clock (uv_hrtime, CLOCK_MONOTONIC as
 * time.monotonic()) has passed the whole ms asked for, counted from after
 * `when - delay` was read: so time() >= when then, but for the float
 * rounding of those numbers (~1e-11 s), far inside the clock_resolution
 * slack asyncio gives its own timers. No second look at the clock. */
static void aio_timer_cb(uva_timer_t *t, void *data) {
  int ensure = !uvapy_ts.loop_has_gil;
  PyGILState_STATE g = ensure ? PyGILState_Ensure() : PyGILState_LOCKED;
  aio_timer *n = (aio_timer *) data;
  PyObject *h = n->handle;
  (void) t;
  if (h != NULL) {
    h = aio_release((uvapy_loop *) SLOT(h, off_loop), n);
    slot_set(h, off_scheduled, Py_False);
    aio_run(h);
    Py_DECREF(h);
  }
  if (ensure) PyGILState_Release(g);
}

/* Arm a core timer for timer handle h, to fire in `ms`. */
static int aio_arm(uvapy_loop *l, PyObject *h, int64_t ms) {
  aio_timer *n = l->aio_idle;
  PyObject *addr;
  int rc;
  if (n != NULL) {
    l->aio_idle = n->next;
    l->aio_nidle--;
  } else {
    if ((n = (aio_timer *) PyMem_RawCalloc(1, sizeof(*n))) == NULL) {
      PyErr_NoMemory();
      return -1;
    }
    rc = uva_timer_new(&n->t, l->h, aio_timer_cb, n, aio_node_free);
    if (aio_adopted(l, rc))
      rc = uva_timer_new(&n->t, l->h, aio_timer_cb, n, aio_node_free);
    if (rc < 0) {
      PyMem_RawFree(n);
      uvapy_raise(rc, "call_at");
      return -1;
    }
  }
  n->prev = n->next = NULL;
  if ((addr = PyLong_FromVoidPtr(n)) == NULL) {
    uva_timer_close(n->t, NULL);
    return -1;
  }
  rc = uva_timer_start(n->t, ms, 0);
  if (aio_adopted(l, rc)) rc = uva_timer_start(n->t, ms, 0);
  if (rc < 0) {
    Py_DECREF(addr);
    uva_timer_close(n->t, NULL);
    uvapy_raise(rc, "call_at");
    return -1;
  }
  Py_INCREF(h);
  n->handle = h;
  n->next = l->aio_armed;
  if (n->next != NULL) n->next->prev = n;
  l->aio_armed = n;
  l->aio_narmed++;
  slot_put(h, off_ctimer, addr);
  slot_set(h, off_scheduled, Py_True);
  return 0;
}

/* Release timer handle h's core timer (TimerHandle.cancel). */
static void aio_drop(uvapy_loop *l, PyObject *h) {
  aio_timer *n = aio_node_of(h);
  if (n == NULL) return;
  if (aio_adopted(l, uva_timer_stop(n->t))) uva_timer_stop(n->t);
  Py_DECREF(aio_release(l, n));
}

/* close(): every timer of the loop is closed, its handle let go of. */
static PyObject *aio_close_timers(uvapy_loop *l, PyObject *u) {
  aio_timer *n;
  (void) u;
  while ((n = l->aio_armed) != NULL) {
    PyObject *h = n->handle;
    n->handle = NULL;
    aio_unlink(l, n);
    slot_set(h, off_ctimer, Py_None);
    uva_timer_close(n->t, NULL);
    Py_DECREF(h);
  }
  while ((n = l->aio_idle) != NULL) {
    l->aio_idle = n->next;
    uva_timer_close(n->t, NULL);
  }
  l->aio_nidle = 0;
  Py_RETURN_NONE;
}

/* The loop's GC: the handles of armed timers refer to the loop; an
 * unclosed loop left in that cycle is found and closed (its __del__). */
int uvapy_aio_traverse(uvapy_loop *l, visitproc visit, void *arg) {
  aio_timer *n;
  for (n = l->aio_armed; n != NULL; n = n->next)
    Py_VISIT(n->handle);
  return 0;
}

/* Breaking that cycle (after __del__ closed the loop, nothing is left):
 * the handles go, the nodes stay with their core timers. */
void uvapy_aio_clear(uvapy_loop *l) {
  aio_timer *n;
  while ((n = l->aio_armed) != NULL) {
    PyObject *h = n->handle;
    n->handle = NULL;
    aio_unlink(l, n);
    Py_XDECREF(h);
  }
}

static PyObject *aio_timer_at(uvapy_loop *l, PyObject *when, int64_t ms,
                              PyObject *cb, PyObject *const *args, Py_ssize_t n,
                              PyObject *context) {
  PyObject *h;
  if (aio_check_callback(cb, "call_at") < 0) return NULL;
  h = aio_new(aio_timer_cls, (PyObject *) l, cb, args, n, context);
  if (h == NULL) return NULL;
  SLOT(h, off_when) = when; /* a new reference */
  Py_INCREF(Py_False);
  SLOT(h, off_scheduled) = Py_False;
  if (aio_arm(l, h, ms) < 0) {
    Py_DECREF(h);
    return NULL;
  }
  return h;
}

static PyObject *aio_call_at(uvapy_loop *l, PyObject *const *args,
                             Py_ssize_t nargs, PyObject *kwnames) {
  PyObject *context, *when;
  double w;
  if (aio_parse(args, nargs, kwnames, 2, &context, "call_at") < 0) return NULL;
  if (args[0] == Py_None) {
    PyErr_SetString(PyExc_TypeError, "when cannot be None");
    return NULL;
  }
  if (aio_open(l) == NULL) return NULL;
  if (l->aio_debug) {
    PyObject *t = aio_tuple(args + 2, nargs - 2), *r;
    if (t == NULL) return NULL;
    r = PyObject_CallMethodObjArgs((PyObject *) l, aio_s_call_at_debug, args[0],
                                   args[1], t,
                                   context != NULL ? context : Py_None, NULL);
    Py_DECREF(t);
    return r;
  }
  w = PyFloat_AsDouble(args[0]);
  if (w == -1.0 && PyErr_Occurred()) return NULL;
  if ((when = PyFloat_FromDouble(w)) == NULL) return NULL;
  return aio_timer_at(l, when, aio_delay_ms(w - aio_now()), args[1], args + 2,
                      nargs - 2, context);
}

static PyObject *aio_call_later(uvapy_loop *l, PyObject *const *args,
                                Py_ssize_t nargs, PyObject *kwnames) {
  PyObject *context, *when;
  double d;
  if (aio_parse(args, nargs, kwnames, 2, &context, "call_later") < 0)
    return NULL;
  if (args[0] == Py_None) {
    PyErr_SetString(PyExc_TypeError, "delay must not be None");
    return NULL;
  }
  d = PyFloat_AsDouble(args[0]);
  if (d == -1.0 && PyErr_Occurred()) return NULL;
  if (aio_open(l) == NULL) return NULL;
  if ((when = PyFloat_FromDouble(aio_now() + d)) == NULL) return NULL;
  if (l->aio_debug) {
    PyObject *t = aio_tuple(args + 2, nargs - 2), *r;
    if (t == NULL) {
      Py_DECREF(when);
      return NULL;
    }
    r = PyObject_CallMethodObjArgs((PyObject *) l, aio_s_call_at_debug, when,
                                   args[1], t,
                                   context != NULL ? context : Py_None, NULL);
    Py_DECREF(t);
    Py_DECREF(when);
    return r;
  }
  return aio_timer_at(l, when, aio_delay_ms(d), args[1], args + 2, nargs - 2,
                      context);
}

/* _aio_arm(timer_handle): a TimerHandle made in Python, to a core timer. */
static PyObject *aio_arm_fn(uvapy_loop *l, PyObject *h) {
  double when;
  if (aio_open(l) == NULL) return NULL;
  if (!PyObject_TypeCheck(h, aio_timer_cls)) {
    PyErr_SetString(PyExc_TypeError, "an aio_loop.TimerHandle was expected");
    return NULL;
  }
  when = PyFloat_AsDouble(SLOT(h, off_when));
  if (when == -1.0 && PyErr_Occurred()) return NULL;
  if (aio_arm(l, h, aio_delay_ms(when - aio_now())) < 0) return NULL;
  Py_RETURN_NONE;
}

/* _aio_drop_timer(timer_handle): its core timer goes (cancel, close). */
static PyObject *aio_drop_fn(uvapy_loop *l, PyObject *h) {
  if (PyObject_TypeCheck(h, aio_timer_cls)) aio_drop(l, h);
  Py_RETURN_NONE;
}

static PyObject *aio_armed_count(uvapy_loop *l, PyObject *u) {
  (void) u;
  return PyLong_FromSsize_t(l->aio_narmed);
}

static PyObject *aio_time(uvapy_loop *l, PyObject *u) {
  (void) l;
  (void) u;
  return PyFloat_FromDouble(aio_now());
}

PyMethodDef uvapy_aio_methods[] = {
    {"_aio_call_soon", (PyCFunction) (void (*)(void)) aio_call_soon,
     METH_FASTCALL | METH_KEYWORDS,
     "call_soon(callback, *args, context=None)\n--\n\n"
     "Run callback(*args) at the loop's next pass, in FIFO order (the "
     "core's run queue); an asyncio Handle."},
    {"_aio_call_soon_threadsafe",
     (PyCFunction) (void (*)(void)) aio_call_soon_threadsafe,
     METH_FASTCALL | METH_KEYWORDS,
     "call_soon_threadsafe(callback, *args, context=None)\n--\n\n"
     "As call_soon, from any thread (the core's thread-safe queue, which "
     "wakes the loop)."},
    {"_aio_call_at", (PyCFunction) (void (*)(void)) aio_call_at,
     METH_FASTCALL | METH_KEYWORDS,
     "call_at(when, callback, *args, context=None)\n--\n\n"
     "Run callback(*args) once time() >= when (a core timer); an asyncio "
     "TimerHandle."},
    {"_aio_call_later", (PyCFunction) (void (*)(void)) aio_call_later,
     METH_FASTCALL | METH_KEYWORDS,
     "call_later(delay, callback, *args, context=None)\n--\n\n"
     "Run callback(*args) once `delay` seconds have passed (a core timer); "
     "an asyncio TimerHandle."},
    {"_aio_enqueue", (PyCFunction) aio_enqueue_fn, METH_O, NULL},
    {"_aio_arm", (PyCFunction) aio_arm_fn, METH_O, NULL},
    {"_aio_drop_timer", (PyCFunction) aio_drop_fn, METH_O, NULL},
    {"_aio_close_timers", (PyCFunction) aio_close_timers, METH_NOARGS, NULL},
    {"_aio_armed", (PyCFunction) aio_armed_count, METH_NOARGS,
     "The number of armed core timers (TimerHandles not yet fired or "
     "cancelled)."},
    {"_aio_time", (PyCFunction) aio_time, METH_NOARGS,
     "time()\n--\n\nThe loop's clock in seconds: time.monotonic(), which is "
     "the core timers' clock too."},
    {NULL}};
