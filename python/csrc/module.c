/* Set-up: the module uvasync._cext and the objects taken from
 * uvasync.core. */
#include "uvapy.h"

/* What _uvapy_setup takes from uvasync.core (uvapy.h says what each is
 * for). */
PyObject *uvapy_pending;      /* uvasync.core._PENDING */
PyObject *uvapy_drive;        /* uvasync.core._drive */
PyObject *uvapy_finish;       /* "_finish" */
PyObject *uvapy_result;       /* _ST_RESULT */
PyObject *uvapy_task_cls;     /* uvasync.core.Task */
PyObject *uvapy_loop_cls;     /* uvasync.core.Loop */
PyObject *uvapy_error;        /* uvasync._ffi.error */
PyObject *uvapy_exclog;       /* uvasync.core._ExcLog */
PyObject *uvapy_extra;        /* uvasync.core._TaskExtra */
PyObject *uvapy_as_coro;      /* uvasync.core._task_coro */
PyObject *uvapy_default_loop; /* uvasync.core._task_loop */
PyObject *uvapy_s_call_soon;
PyObject *uvapy_zero;

/* This thread's running task and GIL flag (uvapy.h). */
__thread uvapy_thread_state uvapy_ts;

/* Raise error(rc, what) of uvasync._ffi: the one error mapping. */
void uvapy_raise(int rc, const char *what) {
  PyObject *e = PyObject_CallFunction(uvapy_error, "is", rc, what);
  if (e != NULL) {
    PyErr_SetObject((PyObject *) Py_TYPE(e), e);
    Py_DECREF(e);
  }
}

static PyMethodDef uvapy_cext_fns[] = {
    {"current_task", (PyCFunction) uvapy_current_task_fn, METH_NOARGS,
     "The task whose step runs in this thread, or None."},
    {"live_tasks", (PyCFunction) uvapy_live_tasks_fn, METH_NOARGS,
     "The tasks not yet done, of every loop (a new list)."},
    {"_spawn_coros", (PyCFunction) (void (*)(void)) uvapy_spawn_coros_fn,
     METH_FASTCALL, NULL},
    {"create_task", (PyCFunction) (void (*)(void)) uvapy_create_task_fn,
     METH_FASTCALL | METH_KEYWORDS,
     "create_task($module, /, coro, *, name=None, context=None)\n--\n\n"
     "Run `coro` concurrently as a new Task on the running loop, in a copy of "
     "the "
     "current contextvars context (or in `context`)."},
    {"_read_bytes", (PyCFunction) (void (*)(void)) uvapy_read_bytes,
     METH_FASTCALL, NULL},
    {"_write_bytes", (PyCFunction) (void (*)(void)) uvapy_write_bytes,
     METH_FASTCALL, NULL},
    {"_writev_bytes", (PyCFunction) (void (*)(void)) uvapy_writev_bytes,
     METH_FASTCALL, NULL},
    {"_aio_setup", (PyCFunction) (void (*)(void)) uvapy_aio_setup,
     METH_FASTCALL, NULL},
    {"_work_submit", (PyCFunction) (void (*)(void)) uvapy_work_submit,
     METH_FASTCALL, NULL},
    {"sleep", (PyCFunction) (void (*)(void)) uvapy_sleep_fn,
     METH_FASTCALL | METH_KEYWORDS,
     "sleep(delay, result=None): suspend the running task for `delay` "
     "seconds (0: just yield)."},
    {"sleep_ms", (PyCFunction) (void (*)(void)) uvapy_sleep_ms_fn,
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
int _uvapy_types(void) {
  PyGILState_STATE g = PyGILState_Ensure();
  int rc = -1;
  PyObject *m = NULL, *mods = PySys_GetObject("modules"); /* borrowed */
  if ((uvapy_zero = PyLong_FromLong(0)) != NULL &&
      PyType_Ready(&uvapy_task_type) == 0 &&
      PyType_Ready(&uvapy_sleep_type) == 0 &&
      PyType_Ready(&uvapy_gathering_type) == 0 &&
      PyType_Ready(&uvapy_loop_type) == 0 && uvapy_transport_init() == 0 &&
      (uvapy_s_notify = PyUnicode_InternFromString("_notify")) != NULL &&
      (uvapy_s_state = PyUnicode_InternFromString("_state")) != NULL &&
      (m = PyModule_Create(&uvapy_cext_def)) != NULL && mods != NULL) {
    Py_INCREF(&uvapy_task_type);
    Py_INCREF(&uvapy_sleep_type);
    Py_INCREF(&uvapy_gathering_type);
    Py_INCREF(&uvapy_loop_type);
    Py_INCREF(&uvapy_transport_type);
    if (PyModule_AddObject(m, "TaskBase", (PyObject *) &uvapy_task_type) == 0 &&
        PyModule_AddObject(m, "Sleep", (PyObject *) &uvapy_sleep_type) == 0 &&
        PyModule_AddObject(m, "Gathering",
                           (PyObject *) &uvapy_gathering_type) == 0 &&
        PyModule_AddObject(m, "LoopBase", (PyObject *) &uvapy_loop_type) == 0 &&
        PyModule_AddObject(m, "TransportCore",
                           (PyObject *) &uvapy_transport_type) == 0 &&
        PyDict_SetItemString(mods, "uvasync._cext", m) == 0)
      rc = 0;
  }
  Py_XDECREF(m);
  if (rc != 0) PyErr_Print();
  PyGILState_Release(g);
  return rc;
}

int _uvapy_setup(void) {
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
    if (uvapy_pending && uvapy_drive && uvapy_finish && uvapy_result &&
        uvapy_task_cls && uvapy_loop_cls && uvapy_exclog && uvapy_extra &&
        uvapy_as_coro && uvapy_default_loop && uvapy_error && uvapy_s_call_soon)
      rc = 0;
    Py_DECREF(m);
  }
  if (rc != 0) PyErr_Print();
  PyGILState_Release(g);
  return rc;
}
