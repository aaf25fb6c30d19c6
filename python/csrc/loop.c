/* LoopBase: the loop's core handle; the loop run holding the GIL. */
#include "uvapy.h"

static PyObject *uvapy_loop_get_addr(uvapy_loop *l, void *u) {
  (void) u;
  return PyLong_FromVoidPtr(l->h);
}

static int uvapy_loop_set_addr(uvapy_loop *l, PyObject *v, void *u) {
  void *p;
  (void) u;
  if (v == NULL) {
    l->h = NULL;
    return 0;
  }
  p = PyLong_AsVoidPtr(v);
  if (p == NULL && PyErr_Occurred()) return -1;
  l->h = (uva_loop_t *) p;
  return 0;
}

static PyObject *uvapy_loop_get_main(uvapy_loop *l, void *u) {
  PyObject *m = l->main != NULL ? l->main : Py_None;
  (void) u;
  Py_INCREF(m);
  return m;
}

static int uvapy_loop_set_main(uvapy_loop *l, PyObject *v, void *u) {
  (void) u;
  if (v == Py_None) v = NULL;
  Py_XINCREF(v);
  Py_XSETREF(l->main, v);
  return 0;
}

static int uvapy_loop_traverse(uvapy_loop *l, visitproc visit, void *arg) {
  Py_VISIT(l->main);
  return uvapy_aio_traverse(l, visit, arg);
}

static int uvapy_loop_clear(uvapy_loop *l) {
  Py_CLEAR(l->main);
  uvapy_aio_clear(l);
  return 0;
}

static void uvapy_loop_dealloc(uvapy_loop *l) {
  PyObject_GC_UnTrack(l);
  uvapy_loop_clear(l);
  Py_TYPE(l)->tp_free((PyObject *) l);
}

static PyGetSetDef uvapy_loop_getset[] = {
    {"_addr", (getter) uvapy_loop_get_addr, (setter) uvapy_loop_set_addr, NULL,
     NULL},
    {"_main", (getter) uvapy_loop_get_main, (setter) uvapy_loop_set_main, NULL,
     NULL},
    {NULL}};

static PyMemberDef uvapy_loop_members[] = {
    {"_aio_debug", T_BOOL, offsetof(uvapy_loop, aio_debug), 0, NULL},
    {"_aio_closing", T_BOOL, offsetof(uvapy_loop, aio_closing), 0, NULL},
    {NULL}};

PyTypeObject uvapy_loop_type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "uvasync._cext.LoopBase",
    .tp_basicsize = sizeof(uvapy_loop),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "The core handle of a uvasync Loop (see uvasync.core.Loop).",
    .tp_new = PyType_GenericNew,
    .tp_traverse = (traverseproc) uvapy_loop_traverse,
    .tp_clear = (inquiry) uvapy_loop_clear,
    .tp_dealloc = (destructor) uvapy_loop_dealloc,
    .tp_getset = uvapy_loop_getset,
    .tp_members = uvapy_loop_members,
    .tp_methods = uvapy_aio_methods,
};

/* The loop's core handle (NULL and RuntimeError once closed). */
uva_loop_t *uvapy_loop_ptr(PyObject *loop) {
  uva_loop_t *p = NULL;
  if (UVAPY_IS_LOOP(loop))
    p = ((uvapy_loop *) loop)->h;
  else
    PyErr_SetString(PyExc_TypeError, "a uvasync loop was expected");
  if (p == NULL && !PyErr_Occurred())
    PyErr_SetString(PyExc_RuntimeError, "Event loop is closed");
  return p;
}

/* Run the loop holding the GIL, releasing it only while the loop waits in
 * the kernel. cffi releases the GIL around every call into C, and each
 * callback into Python would take it back: holding it through the pass
 * saves that round trip on every task step. */
typedef struct {
  PyThreadState *saved;
} _uvapy_gil;

static void _uvapy_gil_release(void *data) {
  uvapy_ts.loop_has_gil = 0;
  ((_uvapy_gil *) data)->saved = PyEval_SaveThread();
}

static void _uvapy_gil_acquire(void *data) {
  PyEval_RestoreThread(((_uvapy_gil *) data)->saved);
  uvapy_ts.loop_has_gil = 1;
}

int _uvapy_run(uva_loop_t *loop, int mode) {
  _uvapy_gil gil = {NULL};
  PyGILState_STATE state = PyGILState_Ensure();
  int had_gil = uvapy_ts.loop_has_gil; /* a nested run's outer loop */
  int rc = uva_loop_set_wait_hooks(loop, _uvapy_gil_release, _uvapy_gil_acquire,
                                   &gil);
  if (rc == 0) {
    uvapy_ts.loop_has_gil = 1;
    rc = uva_loop_run(loop, (uva_run_mode) mode);
    uva_loop_set_wait_hooks(loop, NULL, NULL, NULL);
  }
  uvapy_ts.loop_has_gil = had_gil;
  PyGILState_Release(state);
  return rc;
}
