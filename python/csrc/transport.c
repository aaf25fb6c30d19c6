/* TransportCore: the hot path of asyncio's stream transports (issue 25).
 *
 * One object per transport over a core stream (TCP, Unix socket, pipe).
 * Reading is a core task whose step, here in C, takes what the stream has
 * buffered and calls the protocol's data_received with it (or reads
 * straight into a BufferedProtocol's buffer), with no Python frame per
 * read; write and writelines are C methods over uva_stream_write(v). What
 * happens rarely -- end of stream, errors, pause_writing/resume_writing,
 * the close -- goes to methods of the Python transport that owns this
 * object (uvasync.aio_transport), which keep asyncio's semantics. */
#include "uvapy.h"

typedef struct {
  PyObject_HEAD uva_stream_t *stream; /* NULL once the close completed */
  uva_loop_t *loop;
  uva_task_t *reader;  /* the read task while it lives */
  uva_task_t *drainer; /* waits for the low-water mark while paused */
  PyObject *protocol;
  PyObject *owner; /* the Python transport; NULL once detached */
  size_t high, low;
  Py_ssize_t conn_lost; /* writes dropped after the connection went */
  char buffered;        /* the protocol is a BufferedProtocol */
  char paused;          /* pause_reading */
  char closing;         /* close or abort called */
  char eof_written;     /* write_eof called */
  char write_paused;    /* pause_writing called, resume_writing not yet */
  char in_close;        /* the core close is under way: self is held */
  char close_deferred;  /* close waits for the drain task (write_paused) */
  char sendfile_busy;   /* loop.sendfile runs: writes are refused */
} uvapy_transport;

static PyObject *uvapy_minus_one;
static PyObject *s_data_received, *s_get_buffer, *s_buffer_updated, *s_on_eof,
    *s_on_read_error, *s_on_write_error, *s_on_protocol_error, *s_pause_writing,
    *s_resume_writing, *s_on_closed;

/* Call owner.<name>(arg): the Python side of a rare event. A
 * KeyboardInterrupt or SystemExit it lets through stops the loop
 * (owner._abort(exc)); anything else is unraisable (the owner reports
 * errors to the loop's exception handler itself). */
static void transport_notify(uvapy_transport *t, PyObject *name,
                             PyObject *arg) {
  PyObject *owner = t->owner, *r;
  if (owner == NULL) return;
  Py_INCREF(owner);
  r = arg != NULL ? PyObject_CallMethodObjArgs(owner, name, arg, NULL)
                  : PyObject_CallMethodObjArgs(owner, name, NULL);
  if (r == NULL) PyErr_WriteUnraisable(owner);
  Py_XDECREF(r);
  Py_DECREF(owner);
}

/* An exception raised by a protocol callback (the current error): to
 * owner._on_protocol_error(exc, name), which handles it as asyncio does. */
static void transport_protocol_error(uvapy_transport *t, PyObject *what) {
  PyObject *et, *ev, *etb, *r = NULL;
  PyErr_Fetch(&et, &ev, &etb);
  PyErr_NormalizeException(&et, &ev, &etb);
  if (etb != NULL && ev != NULL) PyException_SetTraceback(ev, etb);
  if (t->owner != NULL && ev != NULL) {
    PyObject *owner = t->owner;
    Py_INCREF(owner);
    r = PyObject_CallMethodObjArgs(owner, s_on_protocol_error, ev, what, NULL);
    if (r == NULL) PyErr_WriteUnraisable(owner);
    Py_DECREF(owner);
  }
  Py_XDECREF(r);
  Py_XDECREF(et);
  Py_XDECREF(ev);
  Py_XDECREF(etb);
}

static void transport_task_dtor(void *data) {
  PyGILState_STATE g = PyGILState_Ensure();
  Py_DECREF((PyObject *) data);
  PyGILState_Release(g);
}

/* Spawn a task of this transport (it holds a reference on it). */
static int transport_spawn(uvapy_transport *t, uva_task_t **out,
                           uva_task_step_cb step) {
  int rc;
  Py_INCREF(t);
  rc = uva_task_spawn(out, t->loop, step, t, transport_task_dtor);
  if (rc < 0) {
    Py_DECREF(t);
    uvapy_raise(rc, "spawn");
    return -1;
  }
  uva_task_unref(*out); /* a transport keeps no loop alive by itself */
  return 0;
}

/* One read: the protocol is given what the stream has; 1 if it got some,
 * 0 if the task now waits (or must stop: paused, closing), -1 once the
 * task ends (end of stream, error, close). */
/* Messages the last read saw at least this big are read into their bytes
 * object directly (uva_stream_read_spill); smaller ones are copied out of
 * the core's buffer, which costs less than recvmsg's second buffer. */
#define TRANSPORT_READ_INTO_MIN (32 * 1024)
#define TRANSPORT_READ_MAX (256 * 1024)

static int transport_read_once(uvapy_transport *t, uva_task_t *task,
                               PyObject *proto) {
  PyObject *r, *b;
  const void *data = NULL;
  size_t len = 0;
  int rc;
  if (t->buffered) {
    Py_buffer view;
    PyObject *buf, *n;
    r = PyObject_CallMethodObjArgs(proto, s_get_buffer, uvapy_minus_one, NULL);
    if (r == NULL) {
      transport_protocol_error(t, s_get_buffer);
      return -1;
    }
    if (PyObject_GetBuffer(r, &view, PyBUF_WRITABLE) < 0) {
      Py_DECREF(r);
      transport_protocol_error(t, s_get_buffer);
      return -1;
    }
    Py_DECREF(r);
    if (view.len == 0) {
      PyBuffer_Release(&view);
      PyErr_SetString(PyExc_RuntimeError,
                      "get_buffer() returned an empty buffer");
      transport_protocol_error(t, s_get_buffer);
      return -1;
    }
    rc = uva_stream_read(&len, t->stream, task, view.buf, (size_t) view.len);
    PyBuffer_Release(&view);
    if (rc == UVA_EAGAIN) return 0;
    if (rc < 0) goto failed;
    if (len == 0) goto eof;
    n = PyLong_FromSize_t(len);
    if (n == NULL) return -1;
    buf = PyObject_CallMethodObjArgs(proto, s_buffer_updated, n, NULL);
    Py_DECREF(n);
    if (buf == NULL) {
      transport_protocol_error(t, s_buffer_updated);
      return -1;
    }
    Py_DECREF(buf);
    return 1;
  }
  if (uva_stream_read_hint(&len, t->stream) == 0 &&
      len >= TRANSPORT_READ_INTO_MIN) {
    /* big messages: read by the kernel straight into the bytes object
     * (stream_io.c), no copy out of the core's buffer after */
    b = uvapy_read_into_bytes(t->stream, TRANSPORT_READ_MAX);
    if (b == NULL) return -1;
    if (!PyBytes_CheckExact(b)) { /* the core's code */
      rc = (int) PyLong_AsLong(b);
      Py_DECREF(b);
      if (rc == UVA_EAGAIN) return 0;
      goto failed;
    }
    if (PyBytes_GET_SIZE(b) == 0) {
      Py_DECREF(b);
      goto eof;
    }
  } else {
    rc = uva_stream_peek(&data, &len, t->stream, task);
    if (rc == UVA_EAGAIN) return 0;
    if (rc < 0) goto failed;
    if (len == 0) goto eof;
    b = PyBytes_FromStringAndSize((const char *) data, (Py_ssize_t) len);
    if (b == NULL) return -1;
    uva_stream_consume(t->stream, len);
  }
  {
    PyObject *args[3]; /* args[0] is free for the callee (the offset flag) */
    args[1] = proto;
    args[2] = b;
    r = PyObject_VectorcallMethod(s_data_received, args + 1,
                                  2 | PY_VECTORCALL_ARGUMENTS_OFFSET, NULL);
    Py_DECREF(b);
    if (r == NULL) {
      transport_protocol_error(t, s_data_received);
      return -1;
    }
    Py_DECREF(r);
  }
  return 1;
eof:
  transport_notify(t, s_on_eof, NULL);
  return -1;
failed:
  if (rc != UVA_ECLOSED) {
    PyObject *code = PyLong_FromLong(rc);
    if (code == NULL) return -1;
    transport_notify(t, s_on_read_error, code);
    Py_DECREF(code);
  }
  return -1;
}

/* At most this many reads per step, then the task goes to the back of the
 * run queue: a fast peer does not starve the other tasks. */
#define TRANSPORT_READS_PER_STEP 16

static int transport_read_step(uva_task_t *task, int status, void *data) {
  uvapy_transport *t = (uvapy_transport *) data;
  int ensure = !uvapy_ts.loop_has_gil;
  PyGILState_STATE g = ensure ? PyGILState_Ensure() : PyGILState_LOCKED;
  int rc = UVA_TASK_PENDING, i, got = 0;
  PyObject *proto;
  (void) status;
  Py_INCREF(t);
  for (i = 0; i < TRANSPORT_READS_PER_STEP; i++) {
    if (t->closing || t->stream == NULL || t->owner == NULL ||
        t->protocol == NULL) {
      rc = 0;
      break;
    }
    if (t->paused) break; /* resume_reading wakes the task */
    proto = t->protocol;
    Py_INCREF(proto);
    got = transport_read_once(t, task, proto);
    Py_DECREF(proto);
    if (got <= 0) {
      if (got < 0) rc = 0;
      break;
    }
  }
  if (i == TRANSPORT_READS_PER_STEP) rc = UVA_TASK_YIELD;
  if (PyErr_Occurred()) PyErr_WriteUnraisable((PyObject *) t);
  if (rc == 0 && t->reader == task) { /* the task ends */
    t->reader = NULL;
    uva_task_release(task);
  }
  Py_DECREF(t);
  if (ensure) PyGILState_Release(g);
  return rc;
}

static PyObject *transport_close_now(uvapy_transport *t, int abort);

/* The drain task: waits until the queued bytes are at or below the low
 * mark, then resume_writing. */
static int transport_drain_step(uva_task_t *task, int status, void *data) {
  uvapy_transport *t = (uvapy_transport *) data;
  int ensure = !uvapy_ts.loop_has_gil;
  PyGILState_STATE g = ensure ? PyGILState_Ensure() : PyGILState_LOCKED;
  int rc = 0;
  (void) status;
  Py_INCREF(t);
  if (t->stream != NULL && t->owner != NULL) {
    rc = uva_stream_drain(t->stream, task);
    if (rc == UVA_EAGAIN) {
      rc = UVA_TASK_PENDING;
    } else if (rc == 0) {
      t->write_paused = 0;
      transport_notify(t, s_resume_writing, NULL);
      if (t->write_paused) {
        /* resume_writing wrote past the high mark again: wait again */
        rc = UVA_TASK_YIELD;
      } else if (t->close_deferred && t->stream != NULL &&
                 transport_close_now(t, 0) == NULL) {
        PyErr_WriteUnraisable((PyObject *) t);
      }
    } else if (rc != UVA_ECLOSED) {
      PyObject *code = PyLong_FromLong(rc);
      if (code != NULL) {
        transport_notify(t, s_on_write_error, code);
        Py_DECREF(code);
      }
      rc = 0;
    }
  }
  if (PyErr_Occurred()) PyErr_WriteUnraisable((PyObject *) t);
  if (rc != UVA_TASK_PENDING && rc != UVA_TASK_YIELD) {
    rc = 0;
    if (t->drainer == task) {
      t->drainer = NULL;
      uva_task_release(task);
    }
  }
  Py_DECREF(t);
  if (ensure) PyGILState_Release(g);
  return rc;
}

/* The shutdown task of write_eof: the peer sees the end of the stream once
 * the queued bytes are out. */
static int transport_shutdown_step(uva_task_t *task, int status, void *data) {
  uvapy_transport *t = (uvapy_transport *) data;
  int rc = 0;
  (void) status;
  if (t->stream != NULL) rc = uva_stream_shutdown(t->stream, task);
  return rc == UVA_EAGAIN ? UVA_TASK_PENDING : 0;
}

/* After a write: pause_writing once the queue passes the high mark, and
 * a task that waits for it to go down to the low mark. */
static int transport_after_write(uvapy_transport *t, int rc, size_t queued) {
  if (rc < 0) {
    PyObject *code = PyLong_FromLong(rc);
    if (code == NULL) return -1;
    transport_notify(t, s_on_write_error, code);
    Py_DECREF(code);
    return PyErr_Occurred() ? -1 : 0;
  }
  if (queued > t->high && !t->write_paused) {
    t->write_paused = 1;
    transport_notify(t, s_pause_writing, NULL);
    if (t->drainer == NULL && t->stream != NULL &&
        transport_spawn(t, &t->drainer, transport_drain_step) < 0)
      return -1;
  }
  return 0;
}

static PyObject *transport_eof_error(void) {
  PyErr_SetString(PyExc_RuntimeError, "Cannot call write() after write_eof()");
  return NULL;
}

/* Whether a write goes ahead (1), is dropped (0: the connection is gone,
 * as asyncio counts it), or is refused (-1: after write_eof). */
static int transport_can_write(uvapy_transport *t) {
  if (t->eof_written) {
    transport_eof_error();
    return -1;
  }
  if (t->sendfile_busy) {
    PyErr_SetString(PyExc_RuntimeError,
                    "unable to write; sendfile is in progress");
    return -1;
  }
  if ((t->closing && !t->close_deferred) || t->stream == NULL) {
    t->conn_lost++;
    return 0;
  }
  return 1;
}

/* write(data): bytes, bytearray or memoryview, checked as asyncio does:
 * the type, then write_eof, then emptiness, then the connection. */
static PyObject *transport_write(uvapy_transport *t, PyObject *data) {
  size_t queued = 0;
  Py_buffer view;
  int rc, ok;
  if (PyBytes_CheckExact(data)) { /* the hot path: no buffer request */
    if (t->eof_written) return transport_eof_error();
    if (PyBytes_GET_SIZE(data) == 0) Py_RETURN_NONE;
    if ((ok = transport_can_write(t)) < 0) return NULL;
    if (ok == 0) Py_RETURN_NONE;
    rc = uva_stream_write(&queued, t->stream, PyBytes_AS_STRING(data),
                          (size_t) PyBytes_GET_SIZE(data));
    if (transport_after_write(t, rc, queued) < 0) return NULL;
    Py_RETURN_NONE;
  }
  if (!PyByteArray_Check(data) && !PyMemoryView_Check(data) &&
      !PyBytes_Check(data)) {
    PyErr_Format(PyExc_TypeError,
                 "data argument must be a bytes-like object, not '%.200s'",
                 Py_TYPE(data)->tp_name);
    return NULL;
  }
  if (t->eof_written) return transport_eof_error();
  if (PyObject_GetBuffer(data, &view, PyBUF_C_CONTIGUOUS) < 0) return NULL;
  if (view.len == 0) {
    PyBuffer_Release(&view);
    Py_RETURN_NONE;
  }
  if ((ok = transport_can_write(t)) <= 0) {
    PyBuffer_Release(&view);
    if (ok < 0) return NULL;
    Py_RETURN_NONE;
  }
  rc = uva_stream_write(&queued, t->stream, view.buf, (size_t) view.len);
  PyBuffer_Release(&view);
  if (transport_after_write(t, rc, queued) < 0) return NULL;
  Py_RETURN_NONE;
}

/* writelines(iterable of bytes-like): one vectored write. */
#define TRANSPORT_WRITEV_MAX 1024
static PyObject *transport_writelines(uvapy_transport *t, PyObject *arg) {
  PyObject *seq, **items, *joined = NULL;
  uva_buf_t stack[16], *bufs = stack;
  Py_buffer *views = NULL;
  Py_ssize_t n, i, nviews = 0;
  size_t queued = 0;
  int rc, ok;
  seq = PySequence_Fast(arg, "writelines() takes an iterable of bytes");
  if (seq == NULL) return NULL;
  n = PySequence_Fast_GET_SIZE(seq);
  items = PySequence_Fast_ITEMS(seq);
  for (i = 0; i < n; i++) {
    PyObject *x = items[i];
    if (!PyBytes_Check(x) && !PyByteArray_Check(x) && !PyMemoryView_Check(x)) {
      PyErr_Format(PyExc_TypeError,
                   "data argument must be a bytes-like object, not '%.200s'",
                   Py_TYPE(x)->tp_name);
      Py_DECREF(seq);
      return NULL;
    }
  }
  if ((ok = transport_can_write(t)) <= 0) {
    Py_DECREF(seq);
    if (ok < 0) return NULL;
    Py_RETURN_NONE;
  }
  if (n > TRANSPORT_WRITEV_MAX) { /* joined: the core would copy them anyway */
    PyObject *empty = PyBytes_FromStringAndSize(NULL, 0);
    if (empty == NULL) goto error;
    joined = PyObject_CallMethod(empty, "join", "O", seq);
    Py_DECREF(empty);
    if (joined == NULL) goto error;
    rc = uva_stream_write(&queued, t->stream, PyBytes_AS_STRING(joined),
                          (size_t) PyBytes_GET_SIZE(joined));
    Py_DECREF(joined);
  } else {
    if (n > (Py_ssize_t) (sizeof(stack) / sizeof(stack[0])) &&
        (bufs = PyMem_Malloc(sizeof(uva_buf_t) * (size_t) n)) == NULL) {
      PyErr_NoMemory();
      goto error;
    }
    if ((views = PyMem_Malloc(sizeof(Py_buffer) * (size_t) (n + 1))) == NULL) {
      PyErr_NoMemory();
      goto error;
    }
    for (i = 0; i < n; i++) {
      if (PyObject_GetBuffer(items[i], &views[i], PyBUF_C_CONTIGUOUS) < 0)
        goto error;
      nviews++;
      bufs[i].base = views[i].buf;
      bufs[i].len = (size_t) views[i].len;
    }
    rc = uva_stream_writev(&queued, t->stream, bufs, (size_t) n);
    for (i = 0; i < nviews; i++)
      PyBuffer_Release(&views[i]);
    nviews = 0;
  }
  if (bufs != stack) PyMem_Free(bufs);
  PyMem_Free(views);
  Py_DECREF(seq);
  if (transport_after_write(t, rc, queued) < 0) return NULL;
  Py_RETURN_NONE;
error:
  for (i = 0; i < nviews; i++)
    PyBuffer_Release(&views[i]);
  if (bufs != stack) PyMem_Free(bufs);
  PyMem_Free(views);
  Py_DECREF(seq);
  return NULL;
}

static PyObject *transport_get_write_buffer_size(uvapy_transport *t,
                                                 PyObject *u) {
  size_t queued = 0;
  (void) u;
  if (t->stream == NULL || uva_stream_write(&queued, t->stream, NULL, 0) < 0)
    queued = 0;
  return PyLong_FromSize_t(queued);
}

/* set_limits(high, low): checked by the caller (high >= low >= 0). */
static PyObject *transport_set_limits(uvapy_transport *t, PyObject *const *args,
                                      Py_ssize_t nargs) {
  size_t high, low, queued = 0;
  if (nargs != 2) {
    PyErr_SetString(PyExc_TypeError, "set_limits(high, low)");
    return NULL;
  }
  high = PyLong_AsSize_t(args[0]);
  if (high == (size_t) -1 && PyErr_Occurred()) return NULL;
  low = PyLong_AsSize_t(args[1]);
  if (low == (size_t) -1 && PyErr_Occurred()) return NULL;
  t->high = high;
  t->low = low;
  if (t->stream == NULL) Py_RETURN_NONE;
  uva_stream_set(t->stream, UVA_STREAM_LOW_WATER, low);
  if (uva_stream_write(&queued, t->stream, NULL, 0) == 0 &&
      transport_after_write(t, 0, queued) < 0)
    return NULL;
  Py_RETURN_NONE;
}

static PyObject *transport_get_limits(uvapy_transport *t, PyObject *u) {
  (void) u;
  return Py_BuildValue("(nn)", (Py_ssize_t) t->low, (Py_ssize_t) t->high);
}

/* set_protocol(protocol, buffered) */
static PyObject *transport_set_protocol(uvapy_transport *t,
                                        PyObject *const *args,
                                        Py_ssize_t nargs) {
  int buffered;
  if (nargs != 2) {
    PyErr_SetString(PyExc_TypeError, "set_protocol(protocol, buffered)");
    return NULL;
  }
  buffered = PyObject_IsTrue(args[1]);
  if (buffered < 0) return NULL;
  Py_INCREF(args[0]);
  Py_XSETREF(t->protocol, args[0]);
  t->buffered = (char) buffered;
  Py_RETURN_NONE;
}

/* start_reading(): the read task, once the protocol was told of the
 * connection. */
static PyObject *transport_start_reading(uvapy_transport *t, PyObject *u) {
  (void) u;
  if (t->closing || t->stream == NULL || t->reader != NULL) Py_RETURN_NONE;
  if (transport_spawn(t, &t->reader, transport_read_step) < 0) return NULL;
  Py_RETURN_NONE;
}

static PyObject *transport_pause_reading(uvapy_transport *t, PyObject *u) {
  (void) u;
  if (!t->closing) t->paused = 1;
  Py_RETURN_NONE;
}

static PyObject *transport_resume_reading(uvapy_transport *t, PyObject *u) {
  (void) u;
  if (t->closing || !t->paused) Py_RETURN_NONE;
  t->paused = 0;
  if (t->reader != NULL) uva_task_wake(t->reader);
  Py_RETURN_NONE;
}

static PyObject *transport_is_reading(uvapy_transport *t, PyObject *u) {
  (void) u;
  return PyBool_FromLong(!t->paused && !t->closing);
}

static PyObject *transport_is_closing(uvapy_transport *t, PyObject *u) {
  (void) u;
  return PyBool_FromLong(t->closing);
}

/* write_eof(): half-close once the queued bytes are out. */
static PyObject *transport_write_eof(uvapy_transport *t, PyObject *u) {
  uva_task_t *task = NULL;
  (void) u;
  if (t->closing || t->eof_written || t->stream == NULL) Py_RETURN_NONE;
  t->eof_written = 1;
  if (transport_spawn(t, &task, transport_shutdown_step) < 0) return NULL;
  uva_task_release(task);
  Py_RETURN_NONE;
}

static void transport_closed_cb(uva_stream_t *stream, void *data) {
  uvapy_transport *t = (uvapy_transport *) data;
  PyGILState_STATE g = PyGILState_Ensure();
  (void) stream;
  t->stream = NULL;
  t->in_close = 0;
  transport_notify(t, s_on_closed, NULL);
  if (PyErr_Occurred()) PyErr_WriteUnraisable((PyObject *) t);
  Py_DECREF(t); /* held by the close */
  PyGILState_Release(g);
}

/* The end of the stream, flushed first (close) or not (abort). The read
 * and drain tasks are woken to end; owner._on_closed runs once the core
 * closed the stream. */
static PyObject *transport_end(uvapy_transport *t, int abort) {
  if (t->stream == NULL) Py_RETURN_NONE;
  if (t->closing && !abort) Py_RETURN_NONE;
  t->closing = 1;
  if (!abort && t->write_paused && t->drainer != NULL) {
    /* As asyncio's transports: a protocol told to pause writing is told
     * to resume once the queue drains, also after close, and what it
     * writes then still goes out before the end (SSLProtocol's
     * close_notify, held back while paused). The drain task closes. */
    t->close_deferred = 1;
    if (t->reader != NULL) uva_task_wake(t->reader);
    Py_RETURN_NONE;
  }
  return transport_close_now(t, abort);
}

/* The core's close (flushed) or abort of the stream. */
static PyObject *transport_close_now(uvapy_transport *t, int abort) {
  int rc;
  t->close_deferred = 0;
  if (!t->in_close) {
    t->in_close = 1;
    Py_INCREF(t);
  }
  rc = abort ? uva_stream_abort(t->stream, transport_closed_cb, t)
             : uva_stream_close(t->stream, transport_closed_cb, t);
  if (t->reader != NULL) uva_task_wake(t->reader);
  if (rc < 0) {
    uvapy_raise(rc, "close");
    return NULL;
  }
  Py_RETURN_NONE;
}

static PyObject *transport_close(uvapy_transport *t, PyObject *u) {
  (void) u;
  return transport_end(t, 0);
}

static PyObject *transport_abort(uvapy_transport *t, PyObject *u) {
  (void) u;
  return transport_end(t, 1);
}

/* detach(): the loop closes: abort without telling the owner. */
static PyObject *transport_detach(uvapy_transport *t, PyObject *u) {
  (void) u;
  Py_CLEAR(t->owner);
  return transport_end(t, 1);
}

static PyObject *transport_get_stream(uvapy_transport *t, void *u) {
  (void) u;
  return PyLong_FromVoidPtr(t->stream);
}

static PyObject *transport_get_protocol(uvapy_transport *t, void *u) {
  PyObject *p = t->protocol != NULL ? t->protocol : Py_None;
  (void) u;
  Py_INCREF(p);
  return p;
}

static PyObject *transport_get_write_paused(uvapy_transport *t, void *u) {
  (void) u;
  return PyBool_FromLong(t->write_paused);
}

/* TransportCore(stream_addr, loop_addr, owner, high, low) */
static PyObject *transport_new(PyTypeObject *type, PyObject *args,
                               PyObject *kw) {
  PyObject *saddr, *laddr, *owner;
  Py_ssize_t high, low;
  uvapy_transport *t;
  (void) kw;
  if (!PyArg_ParseTuple(args, "OOOnn", &saddr, &laddr, &owner, &high, &low))
    return NULL;
  t = (uvapy_transport *) type->tp_alloc(type, 0);
  if (t == NULL) return NULL;
  t->stream = (uva_stream_t *) PyLong_AsVoidPtr(saddr);
  t->loop = (uva_loop_t *) PyLong_AsVoidPtr(laddr);
  if (PyErr_Occurred() || t->stream == NULL || t->loop == NULL) {
    if (!PyErr_Occurred()) PyErr_SetString(PyExc_ValueError, "NULL stream");
    t->stream = NULL;
    Py_DECREF(t);
    return NULL;
  }
  Py_INCREF(owner);
  t->owner = owner;
  t->high = (size_t) high;
  t->low = (size_t) low;
  uva_stream_set(t->stream, UVA_STREAM_LOW_WATER, (size_t) low);
  return (PyObject *) t;
}

static int transport_traverse(uvapy_transport *t, visitproc visit, void *arg) {
  Py_VISIT(t->protocol);
  Py_VISIT(t->owner);
  return 0;
}

static int transport_clear(uvapy_transport *t) {
  Py_CLEAR(t->protocol);
  Py_CLEAR(t->owner);
  return 0;
}

static void transport_dealloc(uvapy_transport *t) {
  PyObject_GC_UnTrack(t);
  transport_clear(t);
  Py_TYPE(t)->tp_free((PyObject *) t);
}

static PyMethodDef transport_methods[] = {
    {"write", (PyCFunction) transport_write, METH_O, NULL},
    {"writelines", (PyCFunction) transport_writelines, METH_O, NULL},
    {"get_write_buffer_size", (PyCFunction) transport_get_write_buffer_size,
     METH_NOARGS, NULL},
    {"set_limits", (PyCFunction) (void (*)(void)) transport_set_limits,
     METH_FASTCALL, NULL},
    {"get_limits", (PyCFunction) transport_get_limits, METH_NOARGS, NULL},
    {"set_protocol", (PyCFunction) (void (*)(void)) transport_set_protocol,
     METH_FASTCALL, NULL},
    {"start_reading", (PyCFunction) transport_start_reading, METH_NOARGS, NULL},
    {"pause_reading", (PyCFunction) transport_pause_reading, METH_NOARGS, NULL},
    {"resume_reading", (PyCFunction) transport_resume_reading, METH_NOARGS,
     NULL},
    {"is_reading", (PyCFunction) transport_is_reading, METH_NOARGS, NULL},
    {"is_closing", (PyCFunction) transport_is_closing, METH_NOARGS, NULL},
    {"write_eof", (PyCFunction) transport_write_eof, METH_NOARGS, NULL},
    {"close", (PyCFunction) transport_close, METH_NOARGS, NULL},
    {"abort", (PyCFunction) transport_abort, METH_NOARGS, NULL},
    {"detach", (PyCFunction) transport_detach, METH_NOARGS, NULL},
    {NULL}};

static PyObject *transport_get_sendfile_busy(uvapy_transport *t, void *u) {
  (void) u;
  return PyBool_FromLong(t->sendfile_busy);
}

static int transport_set_sendfile_busy(uvapy_transport *t, PyObject *v,
                                       void *u) {
  int on = v != NULL ? PyObject_IsTrue(v) : 0;
  (void) u;
  if (on < 0) return -1;
  t->sendfile_busy = (char) on;
  return 0;
}

static PyGetSetDef transport_getset[] = {
    {"stream", (getter) transport_get_stream, NULL, NULL, NULL},
    {"protocol", (getter) transport_get_protocol, NULL, NULL, NULL},
    {"write_paused", (getter) transport_get_write_paused, NULL, NULL, NULL},
    {"sendfile_busy", (getter) transport_get_sendfile_busy,
     (setter) transport_set_sendfile_busy, NULL, NULL},
    {NULL}};

PyTypeObject uvapy_transport_type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "uvasync._cext.TransportCore",
    .tp_basicsize = sizeof(uvapy_transport),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc =
        "The read task and writes of an asyncio stream transport "
        "(see uvasync.aio_transport).",
    .tp_new = transport_new,
    .tp_traverse = (traverseproc) transport_traverse,
    .tp_clear = (inquiry) transport_clear,
    .tp_dealloc = (destructor) transport_dealloc,
    .tp_methods = transport_methods,
    .tp_getset = transport_getset,
};

/* The names the transport calls, interned once (module.c). */
int uvapy_transport_init(void) {
  s_data_received = PyUnicode_InternFromString("data_received");
  s_get_buffer = PyUnicode_InternFromString("get_buffer");
  s_buffer_updated = PyUnicode_InternFromString("buffer_updated");
  s_on_eof = PyUnicode_InternFromString("_on_eof");
  s_on_read_error = PyUnicode_InternFromString("_on_read_error");
  s_on_write_error = PyUnicode_InternFromString("_on_write_error");
  s_on_protocol_error = PyUnicode_InternFromString("_on_protocol_error");
  s_pause_writing = PyUnicode_InternFromString("_pause_writing");
  s_resume_writing = PyUnicode_InternFromString("_resume_writing");
  s_on_closed = PyUnicode_InternFromString("_on_closed");
  uvapy_minus_one = PyLong_FromLong(-1);
  if (!s_data_received || !s_get_buffer || !s_buffer_updated || !s_on_eof ||
      !s_on_read_error || !s_on_write_error || !s_on_protocol_error ||
      !s_pause_writing || !s_resume_writing || !s_on_closed || !uvapy_minus_one)
    return -1;
  return PyType_Ready(&uvapy_transport_type);
}
