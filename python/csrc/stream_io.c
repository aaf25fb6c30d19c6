/* The stream reads and writes of the hot path, as CPython functions. */
#include "uvapy.h"

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
    if (!PyErr_Occurred()) PyErr_SetString(PyExc_ValueError, "NULL stream");
    return -1;
  }
  *out = (uva_stream_t *) p;
  return 0;
}

/* A read of this much or more goes through uva_stream_read_spill into
 * the bytes object itself: when the stream's buffer is empty the core then
 * reads from the kernel straight into it, with no copy after (100 KiB
 * echo). */
#define UVAPY_READ_INTO_MIN 4096
/* ... and of at most this much: read(n) may return fewer than n bytes, and
 * read(1 << 40) must not allocate n. */
#define UVAPY_READ_INTO_MAX (256 * 1024)
/* A read that got fewer bytes than its object holds hands that object
 * over shrunk only if it is at most this big and at least half full; else
 * it copies the bytes out and keeps the object for the next read. glibc
 * maps bigger blocks (128 KiB and up), and shrinking one is a mremap that
 * leaves the next read to fault fresh pages in: a 100 KiB echo read 256
 * KiB at a time spent 4x the system time per message that way. */
#define UVAPY_READ_SHRINK_MAX (64 * 1024)

/* Reads sized by the hint (below) when it is at least this: a smaller
 * copy out costs less than recvmsg's two buffers do over recv's one (1 KiB
 * echo: 4% fewer requests a second that way). */
#define UVAPY_READ_SPILL_MIN (32 * 1024)

/* An object a read did not hand out -- it had to wait, or got a small
 * message, copied out into one of its size -- kept for the next read of
 * that size (under the GIL): an echo of 1 KiB messages read 64 KiB at a
 * time would otherwise allocate and shrink 64 KiB per message. */
static PyObject *uvapy_read_spare;
/* Where a read's bytes beyond its object go (uva_stream_read_spill), to be
 * copied out before the call returns; page-aligned, as the kernel's copies
 * into it are slower 16 bytes off a cache line. */
static char *uvapy_read_spill;

/* Up to n bytes, read into an object of the size the stream's read hint
 * gives (the last read's count): when messages keep one size, as an
 * echo's do, the kernel copies each straight into the object handed out,
 * with no copy after. A bigger message goes on into the spill buffer in
 * the same system call and is copied out once, as every read was before.
 * Also the big reads of the asyncio transports (transport.c). The caller
 * is the step of the task that waits (UVA_EAGAIN), under the GIL. */
PyObject *uvapy_read_into_bytes(uva_stream_t *stream, Py_ssize_t n) {
  PyObject *b = uvapy_read_spare, *out;
  size_t got = 0, hint = 0;
  Py_ssize_t size;
  char *spill = NULL;
  int rc;
  if (n > UVAPY_READ_INTO_MAX) n = UVAPY_READ_INTO_MAX;
  size = n;
  if (uva_stream_read_hint(&hint, stream) == 0 &&
      hint >= UVAPY_READ_SPILL_MIN && hint < (size_t) n) {
    if (uvapy_read_spill == NULL &&
        posix_memalign((void **) &uvapy_read_spill, 4096,
                       UVAPY_READ_INTO_MAX) != 0) {
      uvapy_read_spill = NULL;
      return PyErr_NoMemory();
    }
    size = (Py_ssize_t) hint;
    spill = uvapy_read_spill;
  }
  uvapy_read_spare = NULL;
  if (b != NULL && PyBytes_GET_SIZE(b) != size) Py_CLEAR(b);
  if (b == NULL && (b = PyBytes_FromStringAndSize(NULL, size)) == NULL)
    return NULL;
  rc = uva_stream_read_spill(&got, stream, NULL, PyBytes_AS_STRING(b),
                             (size_t) size, spill, (size_t) (n - size));
  if (rc < 0) {
    if (rc == UVA_EAGAIN && uvapy_read_spare == NULL)
      uvapy_read_spare = b;
    else
      Py_DECREF(b);
    return PyLong_FromLong(rc);
  }
  if ((Py_ssize_t) got == size) return b;
  if ((Py_ssize_t) got > size) { /* went on into the spill */
    out = PyBytes_FromStringAndSize(NULL, (Py_ssize_t) got);
    if (out != NULL) {
      memcpy(PyBytes_AS_STRING(out), PyBytes_AS_STRING(b), (size_t) size);
      memcpy(PyBytes_AS_STRING(out) + size, spill, got - (size_t) size);
    }
  } else if ((Py_ssize_t) got < size / 2 || size > UVAPY_READ_SHRINK_MAX) {
    out = PyBytes_FromStringAndSize(PyBytes_AS_STRING(b), (Py_ssize_t) got);
  } else { /* shrunk in place */
    if (_PyBytes_Resize(&b, (Py_ssize_t) got) < 0) return NULL;
    return b;
  }
  /* copied out: the object stays for the next read */
  if (uvapy_read_spare == NULL)
    uvapy_read_spare = b;
  else
    Py_DECREF(b);
  return out;
}

/* _read_bytes(stream, n): up to n (>= 1) bytes that are buffered, as
 * bytes; b"" at end of stream; else the core's code as an int (UVA_EAGAIN:
 * the running task waits for data, call again when woken). */
PyObject *uvapy_read_bytes(PyObject *self, PyObject *const *args,
                           Py_ssize_t nargs) {
  uva_stream_t *stream;
  Py_ssize_t n;
  const void *data = NULL;
  size_t len = 0;
  PyObject *b;
  int rc;
  (void) self;
  if (nargs != 2) {
    PyErr_SetString(PyExc_TypeError, "_read_bytes(stream, n)");
    return NULL;
  }
  if (uvapy_stream_arg(&stream, args[0]) < 0) return NULL;
  n = PyNumber_AsSsize_t(args[1], NULL); /* clamps a huge n */
  if (n == -1 && PyErr_Occurred()) return NULL;
  if (n >= UVAPY_READ_INTO_MIN) return uvapy_read_into_bytes(stream, n);
  rc = uva_stream_peek(&data, &len, stream, NULL);
  if (rc < 0) return PyLong_FromLong(rc);
  if (n >= 0 && len > (size_t) n) len = (size_t) n;
  b = PyBytes_FromStringAndSize((const char *) data, (Py_ssize_t) len);
  if (b != NULL && len > 0)
    uva_stream_consume(stream, len); /* only once the copy exists */
  return b;
}

/* _write_bytes(stream, data): uva_stream_write of a bytes object; the
 * bytes queued afterwards (0: the kernel took it all), or an error code. */
PyObject *uvapy_write_bytes(PyObject *self, PyObject *const *args,
                            Py_ssize_t nargs) {
  uva_stream_t *stream;
  size_t queued = 0;
  int rc;
  (void) self;
  if (nargs != 2 || !PyBytes_Check(args[1])) {
    PyErr_SetString(PyExc_TypeError, "_write_bytes(stream, bytes)");
    return NULL;
  }
  if (uvapy_stream_arg(&stream, args[0]) < 0) return NULL;
  rc = uva_stream_write(&queued, stream, PyBytes_AS_STRING(args[1]),
                        (size_t) PyBytes_GET_SIZE(args[1]));
  return rc < 0 ? PyLong_FromLong(rc) : PyLong_FromSize_t(queued);
}

/* _writev_bytes(stream, items): a list or tuple of bytes objects written
 * as one write (writelines); the bytes queued afterwards, or an error code.
 * Up to UVAPY_WRITEV_MAX items: uva_stream_writev, one vectored system
 * call. More: joined here into one bytes object and written with
 * uva_stream_write, as the core would join them past IOV_MAX anyway,
 * without an array of 16-byte descriptors as large as the data (100k
 * items of 15 bytes: 5 ms of CPU against 2.6 ms joined). The items are
 * only read during the call, which runs no Python code. */
#define UVAPY_WRITEV_MAX 1024
PyObject *uvapy_writev_bytes(PyObject *self, PyObject *const *args,
                             Py_ssize_t nargs) {
  uva_stream_t *stream;
  size_t queued = 0, total = 0;
  uva_buf_t bufs[UVAPY_WRITEV_MAX];
  PyObject **items, *joined;
  Py_ssize_t n, i;
  char *p;
  int rc;
  (void) self;
  if (nargs != 2 ||
      !(PyList_CheckExact(args[1]) || PyTuple_CheckExact(args[1]))) {
    PyErr_SetString(PyExc_TypeError, "_writev_bytes(stream, list)");
    return NULL;
  }
  if (uvapy_stream_arg(&stream, args[0]) < 0) return NULL;
  n = PySequence_Fast_GET_SIZE(args[1]);
  items = PySequence_Fast_ITEMS(args[1]);
  for (i = 0; i < n; i++) {
    if (!PyBytes_Check(items[i])) {
      PyErr_SetString(PyExc_TypeError, "_writev_bytes: bytes only");
      return NULL;
    }
    total += (size_t) PyBytes_GET_SIZE(items[i]);
  }
  if (n <= UVAPY_WRITEV_MAX) {
    for (i = 0; i < n; i++) {
      bufs[i].base = PyBytes_AS_STRING(items[i]);
      bufs[i].len = (size_t) PyBytes_GET_SIZE(items[i]);
    }
    rc = uva_stream_writev(&queued, stream, bufs, (size_t) n);
  } else {
    if (total > (size_t) PY_SSIZE_T_MAX) return PyErr_NoMemory();
    joined = PyBytes_FromStringAndSize(NULL, (Py_ssize_t) total);
    if (joined == NULL) return NULL;
    p = PyBytes_AS_STRING(joined);
    for (i = 0; i < n; i++) {
      memcpy(p, PyBytes_AS_STRING(items[i]),
             (size_t) PyBytes_GET_SIZE(items[i]));
      p += PyBytes_GET_SIZE(items[i]);
    }
    rc = uva_stream_write(&queued, stream, PyBytes_AS_STRING(joined), total);
    Py_DECREF(joined);
  }
  return rc < 0 ? PyLong_FromLong(rc) : PyLong_FromSize_t(queued);
}
