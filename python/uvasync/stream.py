"""Streams and servers: thin wrappers of the core's streams.

Bytes are buffered, split into lines and flow-controlled in the core; a read
here is one call into the core (which either completes or registers the task
and returns UVA_EAGAIN) and one copy into a bytes object.
"""

import errno
import socket
import sys
import types
import warnings
import weakref
from asyncio import IncompleteReadError, LimitOverrunError

from . import files, tls as _tls_mod
from ._cext import _read_bytes, _write_bytes, _writev_bytes  # take Stream._hp
from ._ffi import NULL, check, error, ffi, lib
from ._internal import (
    _PENDING,
    _call_again,
    _closed_error,
    _current_ctask,
    _new_raw,
    _tls,
)
from .core import Task, get_event_loop
from .funcs import wait_for
from .poll import Poll  # noqa: F401 (uvasync.stream.Poll, as before)

__all__ = [
    "Stream",
    "StreamReader",
    "StreamWriter",
    "Server",
    "open_connection",
    "start_server",
    "open_unix_connection",
    "start_unix_server",
]

_EAGAIN = lib.UVA_EAGAIN
_ENOBUFS = lib.UVA_ENOBUFS
_EINCOMPLETE = lib.UVA_EINCOMPLETE
_ECLOSED = lib.UVA_ECLOSED
_ELINETOOLONG = lib.UVA_ELINETOOLONG
_RBUF_SIZE = 256 * 1024

_OPEN, _CLOSING, _CLOSED = range(3)


class _NoLoop:
    """Enough of a loop for a Future that is complete before anyone sees
    it: awaiting it never touches the loop."""

    def get_debug(self):
        return False


def _done_awaitable():
    """An awaitable that is already complete, for drain() with nothing
    queued: CPython's C Future awaits in a few dozen ns, twice as fast as
    anything written in Python."""
    import asyncio

    fut = asyncio.Future(loop=_NoLoop())
    fut.set_result(None)
    return fut


_DONE = _done_awaitable()


def _address(fn, h, family_unix):
    host = ffi.new("char[]", 512)
    port = ffi.new("int *")
    rc = fn(h, host, 512, port)
    if rc < 0:
        return None
    name = ffi.string(host).decode("utf-8", "surrogateescape")
    if family_unix:
        return name
    if ":" in name:
        return (name, port[0], 0, 0)
    return (name, port[0])


@types.coroutine
def _park_until_closed(obj):
    """Park the running task on obj._closers (a Stream or Server) until
    its close completes (_on_closed wakes them) or it is woken."""
    cur = _current_ctask()
    if obj._closers is None:
        obj._closers = []
    obj._closers.append(cur)
    try:
        yield _PENDING
    finally:
        if obj._closers and cur in obj._closers:
            obj._closers.remove(cur)


class Stream:
    """A connected byte stream (TCP, Unix socket, pipe, TTY): reader and
    writer in one object, as in MicroPython (StreamReader = StreamWriter =
    Stream)."""

    def __init__(self, handle, loop, unix=False):
        self._h = handle
        self._hp = int(ffi.cast("intptr_t", handle))  # for _read_bytes
        self._loop = loop
        self._unix = unix
        self._state = _OPEN
        self._reader = False  # a task waits in a read
        self._closers = None  # tasks waiting in wait_closed
        self._self_handle = None  # ffi handle while a close is in flight
        self._extra = {}
        self._queued = 0  # bytes queued after the last write
        self._ssl = None  # tls.TLSInfo once a TLS handshake is done
        loop._bind(self)

    def __repr__(self):
        return (
            "<uvasync.Stream %s>"
            % (("open", "closing", "closed")[self._state])
        )

    def _ptr(self):
        if self._state != _OPEN:
            raise _closed_error()
        return self._h

    def _begin_read(self):
        """The stream's handle for a read. Only one task may wait for data
        at a time (as in asyncio): a read while another task's read waits
        is refused before it can take any byte. A stream closed by us
        reads as ended (b''), as in asyncio, also for a read that was
        waiting when close() was called."""
        if self._reader:
            raise RuntimeError(
                "read called while another task is already waiting for "
                "incoming data on this stream"
            )
        return self._h  # None once closed: reads then see end of stream

    def get_extra_info(self, name, default=None):
        """'peername' and 'sockname' ((host, port) or a Unix path), and
        'socket': a socket-like object over the stream's socket (see
        _StreamSocket; None for pipes and TTYs). Over TLS also, as
        asyncio's transports: 'ssl_object' (tls.TLSInfo: version(),
        cipher(), selected_alpn_protocol(), getpeercert(), ...),
        'sslcontext', 'peercert', 'cipher', 'compression'."""
        if name in self._extra:
            return self._extra[name]
        if self._h is None:
            return default
        if self._ssl is not None:
            if name == "ssl_object":
                return self._ssl
            if name == "sslcontext":
                return self._ssl.context
            if name == "peercert":
                return self._ssl.getpeercert()
            if name == "cipher":
                return self._ssl.cipher()
            if name == "compression":
                return None
        if name == "peername":
            v = _address(lib.uva_stream_peer_address, self._h, self._unix)
        elif name == "sockname":
            v = _address(lib.uva_stream_local_address, self._h, self._unix)
        elif name == "socket":
            v = _StreamSocket._of(self)
        else:
            return default
        if v is None:
            return default
        self._extra[name] = v
        return v

    # -- reading -----------------------------------------------------------
    #
    # Each read makes its core call; only when the core answers UVA_EAGAIN
    # (it registered the task) does it mark the stream as having a waiting
    # reader, yield, and make the same call again when woken (_again; read()
    # has the same loop inline, being the hot path of every echo).

    @types.coroutine
    def _again(self, call):
        """call() until it stops answering UVA_EAGAIN; its last answer."""
        rc = call()
        if rc == _EAGAIN:
            self._reader = True
            try:
                while rc == _EAGAIN:
                    yield _PENDING
                    rc = call()
            finally:
                self._reader = False
        return rc

    @types.coroutine
    def read(self, n=-1):
        """Up to n bytes (at least 1), b'' at end of stream; n < 0 reads
        to the end of the stream."""
        if self._reader:
            self._begin_read()  # raises
        h = self._h
        if n == 0 or h is None:
            return b""
        if n < 0:
            return (yield from self._read_to_eof(h))
        # bytes straight from the core's buffer, or the core's code
        hp = self._hp
        r = _read_bytes(hp, n)
        if r.__class__ is bytes:
            return r
        if r == _EAGAIN:
            self._reader = True
            try:
                while r == _EAGAIN:
                    yield _PENDING
                    r = _read_bytes(hp, n)
            finally:
                self._reader = False
            if r.__class__ is bytes:
                return r
        if r == _ECLOSED and self._state != _OPEN:
            return b""
        raise error(r, "read")

    @types.coroutine
    def readinto(self, buf):
        """Read up to len(buf) bytes into the writable buffer `buf`; the
        count, 0 at end of stream."""
        h = self._begin_read()
        view = ffi.from_buffer(buf, require_writable=True)
        n = len(view)
        if n == 0 or h is None:
            return 0
        cell = self._loop._size_cell
        rc = yield from self._again(
            lambda: lib.uva_stream_read(cell, h, NULL, view, n)
        )
        if rc == 0:
            return cell[0]
        if rc == _ECLOSED and self._state != _OPEN:
            return 0
        raise error(rc, "readinto")

    @types.coroutine
    def readexactly(self, n):
        """Exactly n bytes; IncompleteReadError (an EOFError) if the
        stream ends first, with the bytes that did arrive (consumed)."""
        h = self._begin_read()
        if n < 0:
            raise ValueError("readexactly size can not be less than zero")
        if n == 0:
            return b""
        if h is None:
            raise IncompleteReadError(b"", n)
        buf = self._loop._rbuf if n <= _RBUF_SIZE else _new_raw("char[]", n)
        rc = yield from self._again(
            lambda: lib.uva_stream_read_exactly(h, NULL, buf, n)
        )
        if rc == 0:
            return ffi.unpack(buf, n)
        if rc == _EINCOMPLETE:
            raise IncompleteReadError(self._take_buffered(), n)
        if rc == _ECLOSED and self._state != _OPEN:
            raise IncompleteReadError(b"", n)
        raise error(rc, "readexactly")

    def _take_buffered(self):
        """Consume and return whatever is buffered (no waiting)."""
        cell = self._loop._size_cell
        check(lib.uva_stream_buffered(cell, self._h))
        n = cell[0]
        if n == 0:
            return b""
        buf = _new_raw("char[]", n)
        check(lib.uva_stream_read(cell, self._h, NULL, buf, n))
        return ffi.unpack(buf, cell[0])

    @types.coroutine
    def readline(self):
        """One line, delimiter included; at end of stream what is left,
        then b''. A line longer than the stream's line limit raises
        ValueError and is left buffered."""
        h = self._begin_read()
        if h is None:
            return b""
        loop = self._loop
        buf = loop._rbuf
        size = _RBUF_SIZE
        cell = loop._size_cell
        while True:
            rc = yield from self._again(
                lambda buf=buf, size=size: lib.uva_stream_read_line(
                    cell, h, NULL, buf, size
                )
            )
            if rc != _ENOBUFS:
                break
            size = cell[0]  # longer than our buffer: take a bigger one
            buf = _new_raw("char[]", size)
        if rc == 0:
            return ffi.unpack(buf, cell[0])
        if rc == lib.UVA_ELINETOOLONG:
            raise ValueError("line longer than the stream's limit")
        if rc == _ECLOSED and self._state != _OPEN:
            return b""
        raise error(rc, "readline")

    # `async for line in stream`, as asyncio's StreamReader: readline()
    # until the end of the stream.
    def __aiter__(self):
        return self

    async def __anext__(self):
        line = await self.readline()
        if line == b"":
            raise StopAsyncIteration
        return line

    @types.coroutine
    def readuntil(self, separator=b"\n"):
        """Data up to and including `separator` (asyncio's readuntil; the
        search is the core's). At the end of the stream without it:
        IncompleteReadError with what was left (consumed). Past the
        stream's line limit: LimitOverrunError, the data left buffered."""
        sep = bytes(separator)
        if not sep:
            raise ValueError("Separator should be at least one-byte string")
        h = self._begin_read()
        if h is None:
            raise IncompleteReadError(b"", None)
        loop = self._loop
        buf = loop._rbuf
        size = _RBUF_SIZE
        cell = loop._size_cell
        csep = ffi.from_buffer(sep)
        n = len(sep)
        while True:
            rc = yield from self._again(
                lambda buf=buf, size=size: lib.uva_stream_read_until(
                    cell, h, NULL, csep, n, buf, size
                )
            )
            if rc != _ENOBUFS:
                break
            size = cell[0]  # longer than our buffer: take a bigger one
            buf = _new_raw("char[]", size)
        if rc == 0:
            return ffi.unpack(buf, cell[0])
        if rc == _EINCOMPLETE:
            raise IncompleteReadError(self._take_buffered(), None)
        if rc == _ELINETOOLONG:
            raise LimitOverrunError(
                "separator not found within the stream's line limit", cell[0]
            )
        if rc == _ECLOSED and self._state != _OPEN:
            raise IncompleteReadError(b"", None)
        raise error(rc, "readuntil")

    @types.coroutine
    def _read_to_eof(self, h):
        cell = self._loop._size_cell
        rc = yield from self._again(
            lambda: lib.uva_stream_read_to_eof(cell, h, NULL)
        )
        if rc == _ECLOSED and self._state != _OPEN:
            return b""
        if rc < 0:
            raise error(rc, "read")
        return self._take_buffered()

    def _read_state(self):
        """The core's read state: 0, UVA_EOF or the read error; UVA_ECLOSED
        once closing."""
        if self._h is None or self._state != _OPEN:
            return _ECLOSED
        cell = ffi.new("int *")
        rc = lib.uva_stream_read_state(cell, self._h)
        return rc if rc < 0 else cell[0]

    def at_eof(self):
        """True once the end of the stream was read (or fed) and nothing is
        left buffered; True after close()."""
        state = self._read_state()
        if state == _ECLOSED:
            return True
        if state != lib.UVA_EOF:
            return False
        cell = self._loop._size_cell
        check(lib.uva_stream_buffered(cell, self._h))
        return cell[0] == 0

    def exception(self):
        """The error that ended the read side (ConnectionResetError, ...),
        or None."""
        state = self._read_state()
        if state in (0, lib.UVA_EOF, _ECLOSED):
            return None
        return error(state, "read")

    def feed_eof(self):
        """End the read side now: reads return what is buffered, then
        b''; nothing more is read from the connection."""
        if self._h is not None and self._state == _OPEN:
            check(lib.uva_stream_feed_eof(self._h), "feed_eof")

    def set_option(self, option, value):
        """Core settings: 'high_water', 'low_water', 'line_limit',
        'delimiter' (one byte), 'nodelay' (bool)."""
        if option == "delimiter":
            value = (
                value[0]
                if isinstance(value, (bytes, bytearray))
                else ord(value)
            )
        opt = {
            "high_water": lib.UVA_STREAM_HIGH_WATER,
            "low_water": lib.UVA_STREAM_LOW_WATER,
            "line_limit": lib.UVA_STREAM_LINE_LIMIT,
            "delimiter": lib.UVA_STREAM_DELIMITER,
            "nodelay": lib.UVA_STREAM_NODELAY,
        }[option]
        check(lib.uva_stream_set(self._ptr(), opt, int(value)), option)

    def _no_delay(self):
        """TCP: send small writes at once, without waiting for the peer's
        ACK of what is in flight (Nagle's algorithm off), as CPython's
        asyncio and uvloop do for every TCP transport: a request written
        in two pieces would otherwise wait for the peer's delayed ACK (up
        to 40 ms on Linux). Best effort: a socket that refuses keeps it."""
        lib.uva_stream_set(self._h, lib.UVA_STREAM_NODELAY, 1)

    # -- writing -----------------------------------------------------------

    def write(self, data):
        """Write at once what the kernel takes, queue (copy) the rest;
        call drain() to wait for the queue to go down."""
        if self._state != _OPEN:
            raise _closed_error()
        if type(data) is not bytes:
            data = bytes(data)
        rc = _write_bytes(self._hp, data)
        if rc < 0:
            raise error(rc, "write")
        self._queued = rc

    def writelines(self, lines):
        """Write every item as one write (the core's vectored write): one
        system call for what the kernel takes, one copy of the rest."""
        if self._state != _OPEN:
            raise _closed_error()
        if type(lines) is not list and type(lines) is not tuple:
            lines = list(lines)
        try:  # checks every item before it writes any
            rc = _writev_bytes(self._hp, lines)
        except TypeError:  # not all bytes: converted as write() does
            rc = _writev_bytes(
                self._hp, [x if type(x) is bytes else bytes(x) for x in lines]
            )
        if rc < 0:
            raise error(rc, "write")
        self._queued = rc

    def drain(self):
        """Wait until the queued bytes are at or below the low-water mark."""
        if self._queued == 0 and self._state == _OPEN:
            return _DONE  # the last write went out whole: nothing to wait for
        return self._drain()

    @types.coroutine
    def _drain(self):
        h = self._ptr()
        yield from _call_again(lambda: lib.uva_stream_drain(h, NULL), "drain")

    @types.coroutine
    def awrite(self, buf, off=0, sz=-1):
        """Write and drain in one call (MicroPython; off/sz from the seed)."""
        if off or sz >= 0:
            buf = (
                memoryview(buf)[off:]
                if sz < 0
                else memoryview(buf)[off : off + sz]
            )
        if isinstance(buf, str):
            buf = buf.encode()
        data = ffi.from_buffer(buf)
        n = len(data)
        h = self._ptr()
        yield from _call_again(
            lambda: lib.uva_stream_write_drain(h, NULL, data, n), "write"
        )

    async def sendfile(self, file, offset=0, count=None):
        """Send `count` bytes (default: to its end) of a file from
        `offset`, zero-copy where the system can (uva_fs_sendfile: a pool
        thread runs sendfile(2)), after the bytes already written; writes
        made meanwhile follow it. `file` is a binary file of open_file(),
        a binary file object of open(), or a descriptor. Returns the bytes
        sent; as asyncio's loop.sendfile, the file's position is then
        offset + that."""
        if count is not None and count < 0:
            raise ValueError(
                "count must be a positive integer (got %r)" % count
            )
        if offset < 0:
            raise ValueError("offset must be a non-negative integer")
        if isinstance(file, files.AsyncTextFile) or (
            hasattr(file, "mode") and "b" not in str(file.mode)
        ):
            raise ValueError("file should be opened in binary mode")
        if isinstance(file, files.AsyncFile):
            await file.flush()
        elif hasattr(file, "flush"):
            file.flush()
        fd = file if isinstance(file, int) else file.fileno()
        h = self._ptr()
        n = sys.maxsize if count is None else count  # SSIZE_MAX: to the end
        sent = await files._job(
            lambda c, loop: lib.uva_fs_sendfile(c, h, fd, offset, n),
            "sendfile",
        )
        if isinstance(file, files.AsyncFile):
            await file.seek(offset + sent)
        elif not isinstance(file, int):
            file.seek(offset + sent)
        return sent

    def can_write_eof(self):
        return True

    async def _start_tls(
        self, core, context, server_side, server_hostname, timeout
    ):
        """Run TLS over the connected stream and wait for the handshake
        (at most `timeout` seconds: TimeoutError); the stream then reads
        and writes plaintext."""
        _tls_mod.start(self._h, core, None if server_side else server_hostname)
        if timeout is None:
            await _tls_mod.handshake(self._h)
        else:
            await wait_for(_tls_mod.handshake(self._h), timeout)
        self._ssl = _tls_mod.TLSInfo(
            self, core, context, server_side, server_hostname
        )

    @types.coroutine
    def _shutdown(self):
        h = self._ptr()
        yield from _call_again(
            lambda: lib.uva_stream_shutdown(h, NULL), "shutdown"
        )

    def write_eof(self):
        """Half-close: the peer sees end of stream after the queued bytes;
        reading goes on. (Awaitable, and starts at once.)"""
        return Task(self._shutdown(), self._loop)

    # -- closing -----------------------------------------------------------

    def close(self):
        """Flush the queued bytes, then close (see wait_closed)."""
        self._close(lib.uva_stream_close)

    def abort(self):
        """Close now, dropping queued bytes (a TCP peer sees a reset)."""
        self._close(lib.uva_stream_abort)

    def _close(self, fn):
        if self._state == _CLOSED or self._h is None:
            return
        if self._self_handle is None:
            self._self_handle = ffi.new_handle(self)
            self._loop._keep.add(self._self_handle)
        self._state = _CLOSING
        check(
            fn(self._h, lib._uvapy_stream_closed, self._self_handle), "close"
        )

    def is_closing(self):
        return self._state != _OPEN

    @types.coroutine
    def wait_closed(self):
        """Wait until a close() has completed."""
        while self._state != _CLOSED:
            if self._state == _OPEN:
                raise RuntimeError("wait_closed() before close()")
            yield from _park_until_closed(self)

    async def aclose(self):
        """close() and wait_closed() in one (MicroPython)."""
        self.close()
        await self.wait_closed()

    def _on_closed(self):
        self._state = _CLOSED
        self._h = None
        self._loop._keep.discard(self._self_handle)
        self._self_handle = None
        for ctask in self._closers or ():
            lib.uva_task_wake(ctask)
        self._closers = None

    def _detach(self):
        """The loop closes: drop the stream now."""
        if self._state == _OPEN:
            self._state = _CLOSING
            lib.uva_stream_abort(self._h, NULL, NULL)
        self._state = _CLOSED
        self._h = None

    def __del__(self):
        if self._state == _OPEN and self._h is not None:
            warnings.warn(
                "unclosed %r" % (self,), ResourceWarning, stacklevel=2
            )
            if self._loop._h is not None:
                lib.uva_stream_abort(self._h, NULL, NULL)
            self._state = _CLOSED

    # -- async context manager (CPython 3.x writers don't, MicroPython does)

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc):
        await self.aclose()

    def _wait_connected(self):
        h = self._h
        return _call_again(
            lambda: lib.uva_stream_wait_connected(h, NULL), "connect"
        )


StreamReader = Stream
StreamWriter = Stream


class _StreamSocket:
    """What get_extra_info('socket') returns, as asyncio's TransportSocket:
    the stream's socket, for options (setsockopt) and addresses. The stream
    keeps owning it: each call works through a socket object made on the
    descriptor and detached again (no dup, no close), and no I/O goes
    through it. fileno() is -1 once the stream is closed."""

    def __init__(self, stream, family, type, proto):
        # weak: the stream caches this object, and a cycle would keep an
        # unreferenced stream (and its connection) alive until the GC runs
        self._stream = weakref.ref(stream)
        self._family = family
        self._type = type
        self._proto = proto

    @classmethod
    def _of(cls, stream):
        """A wrapper for `stream`'s socket; None if it has none (a pipe or
        TTY, or still connecting)."""
        cell = ffi.new("int *")
        if lib.uva_stream_fileno(cell, stream._h) < 0:
            return None
        try:
            sock = socket.socket(fileno=cell[0])
        except OSError:  # not a socket
            return None
        try:
            return cls(stream, sock.family, sock.type, sock.proto)
        finally:
            sock.detach()

    @property
    def family(self):
        return self._family

    @property
    def type(self):
        return self._type

    @property
    def proto(self):
        return self._proto

    def fileno(self):
        stream = self._stream()
        if stream is None or stream._h is None or stream._state != _OPEN:
            return -1
        cell = ffi.new("int *")
        if lib.uva_stream_fileno(cell, stream._h) < 0:
            return -1
        return cell[0]

    def _call(self, name, *args):
        fd = self.fileno()
        if fd < 0:
            raise OSError(errno.EBADF, "the stream is closed")
        sock = socket.socket(self._family, self._type, self._proto, fd)
        try:
            return getattr(sock, name)(*args)
        finally:
            sock.detach()

    def setsockopt(self, *args):
        return self._call("setsockopt", *args)

    def getsockopt(self, *args):
        return self._call("getsockopt", *args)

    def getsockname(self):
        return self._call("getsockname")

    def getpeername(self):
        return self._call("getpeername")

    def dup(self):
        """A new socket.socket on a duplicate descriptor (the caller's)."""
        return self._call("dup")

    def get_inheritable(self):
        return self._call("get_inheritable")

    def gettimeout(self):
        return 0

    def settimeout(self, value):
        if value == 0:
            return
        raise ValueError(
            "settimeout(): only 0 timeout is allowed on a stream's socket"
        )

    def setblocking(self, flag):
        if not flag:
            return
        raise ValueError(
            "setblocking(): only False is allowed on a stream's socket"
        )

    def __repr__(self):
        return (
            "<uvasync._StreamSocket fd=%d, family=%s, type=%s, proto=%d>"
            % (self.fileno(), self._family, self._type, self._proto)
        )


@ffi.def_extern()
def _uvapy_stream_closed(stream, data):
    ffi.from_handle(data)._on_closed()


# --------------------------------------------------------------------------
# Servers
# --------------------------------------------------------------------------


class _SockName:
    """What Server.sockets lists: enough of a socket for getsockname()."""

    def __init__(self, server):
        self._server = server

    def getsockname(self):
        return self._server._address()


class Server:
    """A listening socket; each connection runs cb(stream, stream) as a new
    task. close() stops listening; wait_closed() waits for that."""

    def __init__(
        self, handle, loop, cb, unix=False, limit=None, tls=None, ssl=None
    ):
        self._h = handle
        # TLS: (core context, ssl.SSLContext, handshake timeout) or None
        self._tls = None if tls is None else (tls, ssl[0], ssl[1])
        self._loop = loop
        self._cb = cb
        self._unix = unix
        self._limit = limit
        self._state = _OPEN
        self._closers = None
        self._self_handle = ffi.new_handle(self)
        loop._keep.add(self._self_handle)
        loop._bind(self)
        check(
            lib.uva_server_on_connection(
                handle, lib._uvapy_connection, self._self_handle
            )
        )

    def _address(self):
        return _address(
            lambda h, b, n, p: lib.uva_server_address(h, b, n, p),
            self._h,
            self._unix,
        )

    @property
    def sockets(self):
        return [_SockName(self)] if self._state == _OPEN else []

    def get_loop(self):
        return self._loop

    def is_serving(self):
        return self._state == _OPEN

    def _on_connection(self, chandle):
        loop = self._loop
        stream = Stream(chandle, loop, self._unix)
        if not self._unix:
            stream._no_delay()
        _set_limit(stream, self._limit)
        if self._tls is not None:
            Task(self._tls_connection(stream), loop)
            return
        try:
            res = self._cb(stream, stream)
            if res is not None and hasattr(res, "send"):
                Task(res, loop)
        except (KeyboardInterrupt, SystemExit) as e:
            loop._abort_run(e)
        except BaseException as e:
            loop.call_exception_handler(
                {"message": "Error in the connection callback", "exception": e}
            )

    async def _tls_connection(self, stream):
        """A TLS connection: the handshake, then the callback. A failed
        handshake ends the connection quietly (as asyncio, which logs it
        only in debug mode)."""
        core, context, timeout = self._tls
        try:
            await stream._start_tls(core, context, True, None, timeout)
        except Exception:
            stream.abort()
            return
        try:
            res = self._cb(stream, stream)
            if res is not None and hasattr(res, "send"):
                await res
        except (KeyboardInterrupt, SystemExit) as e:
            self._loop._abort_run(e)
        except BaseException as e:
            self._loop.call_exception_handler(
                {"message": "Error in the connection callback", "exception": e}
            )

    def close(self):
        if self._state != _OPEN:
            return
        self._state = _CLOSING
        check(
            lib.uva_server_close(
                self._h, lib._uvapy_server_closed, self._self_handle
            ),
            "close",
        )

    @types.coroutine
    def wait_closed(self):
        # CPython waits for close(); MicroPython servers run until closed:
        # wait either way.
        while self._state != _CLOSED:
            yield from _park_until_closed(self)

    def _on_closed(self):
        self._state = _CLOSED
        self._h = None
        self._loop._keep.discard(self._self_handle)
        for ctask in self._closers or ():
            lib.uva_task_wake(ctask)
        self._closers = None

    def _detach(self):
        if self._state == _OPEN:
            lib.uva_server_close(self._h, NULL, NULL)
        self._state = _CLOSED
        self._h = None

    async def serve_forever(self):
        await self.wait_closed()

    async def start_serving(self):
        pass

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc):
        self.close()
        await self.wait_closed()


@ffi.def_extern()
def _uvapy_connection(server, stream, data):
    ffi.from_handle(data)._on_connection(stream)


@ffi.def_extern()
def _uvapy_server_closed(server, data):
    ffi.from_handle(data)._on_closed()


# --------------------------------------------------------------------------
# Opening
# --------------------------------------------------------------------------


def _running_loop():
    return _tls.running or get_event_loop()


_HANDSHAKE_TIMEOUT = 60.0  # seconds, asyncio's default


def _client_tls(ssl, server_hostname, host, kwargs):
    """(core context, SSLContext, server name, timeout) for a client's
    ssl= argument, or None without TLS; checks the arguments as asyncio
    does."""
    timeout = kwargs.get("ssl_handshake_timeout")
    if not ssl:
        if server_hostname is not None:
            raise ValueError("server_hostname is only meaningful with ssl")
        if timeout is not None:
            raise ValueError(
                "ssl_handshake_timeout is only meaningful with ssl"
            )
        return None
    core, context = _tls_mod.client_context(ssl)
    if server_hostname is None:
        server_hostname = host
    if isinstance(server_hostname, bytes):
        server_hostname = server_hostname.decode()
    if not server_hostname and (context is None or context.check_hostname):
        raise ValueError(
            "You must set server_hostname when using ssl without a host"
        )
    return (
        core,
        context,
        server_hostname or None,
        _HANDSHAKE_TIMEOUT if timeout is None else timeout,
    )


async def _connected(s, tls, kwargs, tcp=False):
    """Wait for the connection (and the TLS handshake); abort on failure."""
    try:
        await s._wait_connected()
        if tcp:
            s._no_delay()
        if tls is not None:
            core, context, name, timeout = tls
            await s._start_tls(core, context, False, name, timeout)
    except BaseException:
        s.abort()
        raise
    _set_limit(s, kwargs.get("limit"))
    return s, s


async def open_connection(
    host=None, port=None, *, ssl=None, server_hostname=None, **kwargs
):
    """Connect over TCP (host name or address; asynchronous DNS); returns
    (reader, writer), which are the same Stream. ssl: True (a verifying
    client with the system's CA store) or an ssl.SSLContext (see
    uvasync.tls for what of it the core honours); server_hostname: the
    name sent (SNI) and verified, by default host;
    ssl_handshake_timeout: seconds (60)."""
    tls = _client_tls(ssl, server_hostname, host, kwargs)
    loop = _running_loop()
    cell = ffi.new("uva_stream_t **")
    check(
        lib.uva_tcp_connect(
            cell, loop._ptr(), _host(host, "localhost"), int(port)
        ),
        "connect",
    )
    s = Stream(cell[0], loop)
    return await _connected(s, tls, kwargs, tcp=True)


async def open_unix_connection(
    path=None, *, ssl=None, server_hostname=None, **kwargs
):
    """Connect to a Unix-domain socket; returns (reader, writer). ssl and
    server_hostname as open_connection (a name is needed to verify)."""
    tls = _client_tls(ssl, server_hostname, None, kwargs)
    loop = _running_loop()
    cell = ffi.new("uva_stream_t **")
    check(lib.uva_pipe_connect(cell, loop._ptr(), _path(path)), "connect")
    s = Stream(cell[0], loop, unix=True)
    return await _connected(s, tls, kwargs)


def _set_limit(stream, limit):
    """asyncio's `limit`: the longest line readline and readuntil return,
    separator not counted (the core's line limit counts it: one more, exact
    for one-byte separators). Reading still pauses at the stream's
    high-water mark, not at 2 * limit."""
    if limit is not None:
        stream.set_option("line_limit", int(limit) + 1)


def _host(host, default):
    if host is None or host == "":
        host = default
    if isinstance(host, (list, tuple)):
        raise ValueError("one host only")
    return host.encode() if isinstance(host, str) else host


def _path(path):
    import os

    return os.fsencode(path)


async def start_server(
    client_connected_cb, host=None, port=None, backlog=100, ssl=None, **kwargs
):
    """Listen on host:port; each connection calls
    client_connected_cb(reader, writer) and runs what it returns as a task.
    Returns the Server. ssl: an ssl.SSLContext with a certificate (see
    uvasync.tls); each connection's handshake completes before the
    callback runs (ssl_handshake_timeout seconds at most, 60)."""
    tls = _server_tls(ssl, kwargs)
    loop = _running_loop()
    cell = ffi.new("uva_server_t **")
    check(
        lib.uva_tcp_listen(
            cell,
            loop._ptr(),
            _host(host, "0.0.0.0"),
            int(port or 0),
            int(backlog),
        ),
        "listen",
    )
    return Server(
        cell[0],
        loop,
        client_connected_cb,
        limit=kwargs.get("limit"),
        tls=tls and tls[0],
        ssl=tls and tls[1:],
    )


def _server_tls(ssl, kwargs):
    """(core context, SSLContext, timeout) for a server's ssl=, or None."""
    timeout = kwargs.get("ssl_handshake_timeout")
    if ssl is None or ssl is False:
        if timeout is not None:
            raise ValueError(
                "ssl_handshake_timeout is only meaningful with ssl"
            )
        return None
    core = _tls_mod.server_context(ssl)
    return (core, ssl, _HANDSHAKE_TIMEOUT if timeout is None else timeout)


async def start_unix_server(
    client_connected_cb, path=None, backlog=100, *, ssl=None, **kwargs
):
    """As start_server, on a Unix-domain socket path."""
    tls = _server_tls(ssl, kwargs)
    loop = _running_loop()
    cell = ffi.new("uva_server_t **")
    check(
        lib.uva_pipe_listen(cell, loop._ptr(), _path(path), int(backlog)),
        "listen",
    )
    return Server(
        cell[0],
        loop,
        client_connected_cb,
        unix=True,
        limit=kwargs.get("limit"),
        tls=tls and tls[0],
        ssl=tls and tls[1:],
    )
