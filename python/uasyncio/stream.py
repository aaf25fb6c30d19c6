"""The seed's StreamReader/StreamWriter, open_connection and start_server.

Connections are the core's streams (buffering, line splitting and flow
control happen in C). What a seed program wraps itself is adopted too:

- a socket, pipe or terminal (an object with fileno(), or a descriptor):
  a core stream on a duplicate of its descriptor, one per object, shared by
  the StreamReader and the StreamWriter made on it;
- a regular file, a character device that is not a terminal, or an object
  without fileno() (io.BytesIO): always ready, read and written directly.

The reading semantics are the seed's, not asyncio's: read(-1) returns what
has arrived (not everything up to the end of the stream), readexactly
returns fewer bytes at the end of the stream instead of raising, readline
has no length limit unless it is given one (readline(limit=n)).
"""

import codecs
import io
import os
import socket
import types
import weakref
from asyncio import IncompleteReadError

from uvasync import stream as _uvstream
from uvasync._ffi import error, ffi, lib
from uvasync.stream import Stream as _CoreStream

from .core import _spawn, always_ready, get_event_loop

__all__ = ["StreamReader", "StreamWriter", "open_connection", "start_server"]

_CHUNK = 256 * 1024  # the most one read returns (the core's read buffer)
_LINE_PIECE = 65536  # the core's default line limit


def _to_bytes(buf):
    return buf.encode() if isinstance(buf, str) else buf


# --------------------------------------------------------------------------
# What a reader/writer works on
# --------------------------------------------------------------------------


class _CoreIO:
    """A core stream; `src` is the program's object it was made for (closed
    with it), None for connections made here."""

    def __init__(self, stream, src=None):
        self.stream = stream
        self.src = src
        self._limit = None  # the line limit set in the core, None: default
        self._decoder = None
        if isinstance(src, io.TextIOBase):  # sys.stdin: str, as it reads
            self._decoder = codecs.getincrementaldecoder(
                getattr(src, "encoding", None) or "utf-8"
            )("replace")

    def _out(self, data):
        if self._decoder is None:
            return data
        return self._decoder.decode(data, not data)

    @types.coroutine
    def read(self, n):
        if n < 0 or n > _CHUNK:
            n = _CHUNK
        return self._out((yield from self.stream.read(n)))

    @types.coroutine
    def readexactly(self, n):
        try:
            data = yield from self.stream.readexactly(n)
        except IncompleteReadError as e:
            data = e.partial
        return self._out(data)

    @types.coroutine
    def readline(self, limit=None):
        stream = self.stream
        if limit != self._limit:  # the core's line limit is the bound
            stream.set_option(
                "line_limit", _LINE_PIECE if limit is None else limit
            )
            self._limit = limit
        if limit is not None:  # ValueError past it, the line kept buffered
            return self._out((yield from stream.readline()))
        head = None
        while True:
            try:
                line = yield from stream.readline()
            except ValueError:
                # longer than the core's line limit: take a piece (it holds
                # no line end) and go on, the seed has no limit. The pieces
                # go into one growing buffer, so a long line costs time and
                # memory in proportion to its length (adding each piece to
                # the line so far copied all of it every time).
                if head is None:
                    head = io.BytesIO()
                head.write((yield from stream.read(_LINE_PIECE)))
                continue
            if head is None:
                return self._out(line)
            head.write(line)
            return self._out(head.getvalue())

    @types.coroutine
    def write(self, data):
        yield from self.stream.awrite(data)

    @types.coroutine
    def close(self):
        yield from self.stream.aclose()
        _forget(self.src)
        if self.src is not None and not isinstance(self.src, int):
            self.src.close()  # as the seed: closing the stream closes it

    def extra(self, name):
        return self.stream.get_extra_info(name)

    def __repr__(self):
        return repr(self.src if self.src is not None else self.stream)


class _FileIO:
    """A file that is always ready: read and written at once."""

    def __init__(self, f):
        self.f = f
        self._text = isinstance(f, io.TextIOBase)

    @types.coroutine
    def read(self, n):
        return self.f.read(n)
        yield  # a generator, awaitable like the other reads

    @types.coroutine
    def readexactly(self, n):
        parts = []
        while n > 0:
            data = self.f.read(n)
            if not data:
                break
            parts.append(data)
            n -= len(data)
        return (b"" if not self._text else "").join(parts)
        yield

    @types.coroutine
    def readline(self, limit=None):
        if limit is None:
            return self.f.readline()
        # at most limit + 1 characters: more than limit is too long; a
        # seekable file goes back, so the line is not consumed
        at = self.f.tell() if self.f.seekable() else None
        line = self.f.readline(limit + 1)
        if len(line) > limit:
            if at is not None:
                self.f.seek(at)
            raise ValueError("line longer than the limit (%d)" % limit)
        return line
        yield

    @types.coroutine
    def write(self, data):
        if self._text and not isinstance(data, str):
            data = bytes(data).decode()
        self.f.write(data)
        return
        yield

    @types.coroutine
    def close(self):
        self.f.close()
        return
        yield

    def extra(self, name):
        return None


class _FdFile:
    """A descriptor of an always-ready file, with a file's read/write."""

    def __init__(self, fd):
        self.fd = fd

    def read(self, n=-1):
        if n is None or n < 0:
            parts = []
            while True:
                data = os.read(self.fd, _CHUNK)
                if not data:
                    return b"".join(parts)
                parts.append(data)
        return os.read(self.fd, n)

    def readline(self, size=-1):
        parts = []
        while size < 0 or len(parts) < size:
            c = os.read(self.fd, 1)
            parts.append(c)
            if not c or c == b"\n":
                break
        return b"".join(parts)

    def seekable(self):
        return False

    def write(self, data):
        view = memoryview(data)
        while view:
            view = view[os.write(self.fd, view) :]

    def close(self):
        os.close(self.fd)


# The core stream adopted for each program object (reader and writer on one
# socket share it).
_ADOPTED = weakref.WeakKeyDictionary()
_ADOPTED_FDS = {}


def _forget(src):
    if src is None:
        return
    table = _ADOPTED_FDS if isinstance(src, int) else _ADOPTED
    table.pop(src, None)


def _io_for(obj):
    """The I/O object for what a program gives StreamReader/StreamWriter."""
    if isinstance(obj, (_CoreIO, _FileIO)):
        return obj
    if isinstance(obj, _CoreStream):
        return _CoreIO(obj)
    try:
        fd = obj if isinstance(obj, int) else obj.fileno()
    except (AttributeError, io.UnsupportedOperation):
        return _FileIO(obj)  # io.BytesIO and the like
    if always_ready(fd):
        return _FileIO(_FdFile(fd) if isinstance(obj, int) else obj)
    loop = get_event_loop()
    table = _ADOPTED_FDS if isinstance(obj, int) else _ADOPTED
    cio = table.get(obj)
    if cio is None or cio.stream._loop is not loop or cio.stream.is_closing():
        cio = table[obj] = _CoreIO(_adopt(fd, obj, loop), obj)
    return cio


def _adopt(fd, obj, loop):
    """A core stream on a duplicate of fd: the program keeps its object,
    the core owns the duplicate."""
    dup = os.dup(fd)
    cell = ffi.new("uva_stream_t **")
    rc = lib.uva_stream_open_fd(cell, loop._ptr(), dup)
    if rc < 0:
        os.close(dup)
        raise error(rc, "StreamReader/StreamWriter on %r" % (obj,))
    unix = getattr(obj, "family", None) == getattr(socket, "AF_UNIX", None)
    return _CoreStream(cell[0], loop, unix)


# --------------------------------------------------------------------------
# The seed's classes
# --------------------------------------------------------------------------


class StreamReader:
    """Reads from a connection or a program's object (see the module).
    `ios`, if given, is what is read; `polls` is kept for the seed's
    attribute."""

    def __init__(self, polls, ios=None):
        if ios is None:
            ios = polls
        self.polls = polls
        self.ios = ios
        self._io = _io_for(ios)

    def read(self, n=-1):
        """Up to n bytes (n = -1: whatever has arrived, at least one byte);
        b'' at the end of the stream."""
        return self._io.read(n)

    def readexactly(self, n):
        """n bytes; fewer (maybe b'') if the stream ends first."""
        return self._io.readexactly(n)

    def readline(self, limit=None):
        """One line, b'\\n' included; at the end of the stream what is
        left, then b''. As in the seed there is no length limit: memory
        grows with the line (linearly). With `limit` (bytes, line end
        included), a longer line raises ValueError instead and is left to
        read (with read())."""
        return self._io.readline(limit)

    def aclose(self):
        """Close the stream (and the object it was made on)."""
        return self._io.close()

    def __repr__(self):
        return "<StreamReader %r>" % (self.ios,)


class StreamWriter:
    """Writes to a connection or a program's object (see the module)."""

    def __init__(self, s, extra=None):
        self.s = s
        self.extra = extra if extra is not None else {}
        self._io = _io_for(s)

    @types.coroutine
    def awrite(self, buf, off=0, sz=-1):
        """Write buf[off:off + sz] (sz = -1: to the end); returns once it
        is written or queued within the stream's low-water mark. str is
        written as UTF-8."""
        buf = _to_bytes(buf)
        if off or sz != -1:
            view = memoryview(buf)
            buf = view[off:] if sz == -1 else view[off : off + sz]
        if len(buf):
            yield from self._io.write(buf)

    @types.coroutine
    def awritestr(self, s):
        yield from self.awrite(s.encode())

    @types.coroutine
    def awriteiter(self, iterable):
        """Write each piece an iterable (usually a generator) gives."""
        for buf in iterable:
            yield from self.awrite(buf)

    def aclose(self):
        """Flush, then close the stream (and the object it was made on)."""
        return self._io.close()

    def get_extra_info(self, name, default=None):
        """From the `extra` dict given, else 'peername'/'sockname' of a
        connection."""
        if name in self.extra:
            return self.extra[name]
        value = self._io.extra(name)
        return default if value is None else value

    def __repr__(self):
        return "<StreamWriter %r>" % (self.s,)


# --------------------------------------------------------------------------
# Connections
# --------------------------------------------------------------------------


@types.coroutine
def open_connection(host, port, ssl=False):
    """Connect over TCP (the name is resolved without blocking the loop);
    returns (StreamReader, StreamWriter). ssl=True: TLS, the server's
    certificate verified against the system's CA store (SSL_CERT_FILE /
    SSL_CERT_DIR name another) and its name against host; an
    ssl.SSLContext is taken as uvasync.open_connection takes it."""
    stream, _ = yield from _uvstream.open_connection(
        host, port, ssl=ssl or None
    )
    cio = _CoreIO(stream)
    return StreamReader(cio), StreamWriter(cio, {})


@types.coroutine
def start_server(client_coro, host, port, backlog=100):
    """Listen on host:port and run client_coro(reader, writer) as a new
    task for each connection. A generator to run as a task
    (loop.create_task(start_server(...))): it serves until that task is
    cancelled. backlog: the listen queue, 100 as in asyncio (the seed's
    10 overflowed with a few dozen clients connecting at once)."""
    loop = get_event_loop()

    def on_connection(stream, _):
        cio = _CoreIO(stream)
        _spawn(client_coro(StreamReader(cio), StreamWriter(cio, {})), loop)

    server = yield from _uvstream.start_server(
        on_connection, host, port, backlog
    )
    try:
        yield from server.wait_closed()
    finally:
        server.close()
