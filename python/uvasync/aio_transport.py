"""asyncio's stream transports over the core's streams (issue 25): one
design for TCP, Unix sockets and pipes.

A transport owns a core stream (uva_stream_t). Its hot path is C
(csrc/transport.c, TransportCore): a core task reads what the stream has
buffered and calls the protocol's data_received (or reads into a
BufferedProtocol's buffer), and write/writelines go to uva_stream_write(v),
which queues in the core what the kernel does not take. The transport
classes here are asyncio.Transport subclasses that bind those C methods
into the instance and handle what happens rarely (end of stream, errors,
flow-control callbacks, connection_lost) with asyncio's semantics."""

import asyncio
import logging
import os
import socket
import stat
import struct
import warnings
from asyncio import trsock
from asyncio.constants import _SendfileMode

from ._cext import TransportCore
from ._ffi import error, ffi, lib
from .core import Task
from .poll import Poll

logger = logging.getLogger("uvasync")

_HIGH_WATER = 64 * 1024  # asyncio's default write-buffer limits
_LOW_WATER = _HIGH_WATER // 4
_NO_LINGER = struct.pack("ii", 0, 0)  # struct linger: off


def _flow_limits(high, low):
    """asyncio's rule for set_write_buffer_limits: the missing one derived
    from the other; high >= low >= 0."""
    if high is None:
        high = _HIGH_WATER if low is None else 4 * low
    if low is None:
        low = high // 4
    if not high >= low >= 0:
        raise ValueError(
            "high (%r) must be >= low (%r) must be >= 0" % (high, low)
        )
    return high, low


def _set_result(fut, result):
    if fut is not None and not fut.cancelled():
        fut.set_result(result)


def native(loop, coro):
    """An asyncio Future of a native uvasync coroutine (a core Poll wait,
    a pool job) run as a core Task on the same loop; cancelling the Future
    cancels the Task."""
    fut = loop.create_future()
    task = Task(coro, loop)

    def done(t):
        if t.cancelled():
            if not fut.done():
                fut.cancel()
            return
        exc = t.exception()  # retrieved, whether the Future wants it or not
        if fut.done():
            return
        if exc is not None:
            fut.set_exception(exc)
        else:
            fut.set_result(t.result())

    def cancelled(f):
        if f.cancelled() and not task.done():
            task.cancel()

    task.add_done_callback(done)
    fut.add_done_callback(cancelled)
    return fut


async def _wait(poll, events):
    return await poll.wait(events)


async def sock_connect(loop, sock, address):
    """Connect a non-blocking socket, waiting in the core's poll."""
    try:
        sock.connect(address)
        return
    except (BlockingIOError, InterruptedError):
        pass
    # The poll is closed here, whatever happens, before the caller can
    # close the socket: a poll handle left on a closed descriptor would
    # make the core refuse the next stream or poll on that number.
    poll = Poll(sock.fileno(), loop)
    try:
        await native(loop, _wait(poll, lib.UVA_WRITABLE))
        failed = None
    except OSError as exc:  # the poll sees the error too (EPOLLERR)
        failed = exc
    finally:
        poll.close()
    err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
    if err != 0:
        raise OSError(err, "Connect call failed %s" % (address,))
    if failed is not None:
        raise failed


def open_stream(loop, fd):
    """A core stream that owns fd (closed here if that fails)."""
    cell = ffi.new("uva_stream_t **")
    rc = lib.uva_stream_open_fd(cell, loop._ptr(), fd)
    if rc < 0:
        os.close(fd)
        raise error(rc, "open")
    return cell[0]


class _CoreTransport:
    """What the socket and pipe transports share: the C core, the callbacks
    it makes, and asyncio's transport methods around it."""

    _start_tls_compatible = True
    _kind = "socket"

    def _init_core(self, loop, handle, protocol, server, owned, readable):
        self._loop = loop
        self._protocol = protocol
        self._server = server
        self._owned = owned  # a Python object closed with the transport
        self._exc = None  # what connection_lost gets
        self._closed = False
        self._lost_told = False  # connection_lost called (close() may)
        self._detached = False  # the loop closed under it
        self._aborted = False
        self._readable = readable
        core = self._core = TransportCore(
            int(ffi.cast("intptr_t", handle)),
            loop._addr,
            self,
            _HIGH_WATER,
            _LOW_WATER,
        )
        core.set_protocol(
            protocol, isinstance(protocol, asyncio.BufferedProtocol)
        )
        # the hot methods straight from C: an instance attribute takes
        # precedence over asyncio.Transport's methods of the same name
        self.write = core.write
        self.writelines = core.writelines
        self.is_closing = core.is_closing
        self.get_write_buffer_size = core.get_write_buffer_size
        if server is not None:
            server._attach(self)
        loop._bind(self)

    def _start(self, waiter):
        """asyncio's order: connection_made, then reading, then the waiter,
        each a callback of its own."""
        loop = self._loop
        loop.call_soon(self._protocol.connection_made, self)
        if self._readable:
            loop.call_soon(self._core.start_reading)
        if waiter is not None:
            loop.call_soon(_set_result, waiter, None)

    def __repr__(self):
        info = [type(self).__name__]
        if self._closed:
            info.append("closed")
        elif self._core.is_closing() and not self._detached:
            info.append("closing")
        else:  # also after the loop's close, as asyncio's
            info.append("open")
        fd = self._fileno()
        if fd >= 0:
            info.append("fd=%d" % fd)
        return "<%s>" % " ".join(info)

    def _fileno(self):
        """The descriptor of the socket or pipe object (the core's is a
        duplicate of it); -1 once closed."""
        owned = self._owned
        try:
            return owned.fileno() if owned is not None else -1
        except (OSError, ValueError):
            return -1

    # -- asyncio.BaseTransport ---------------------------------------------

    def get_protocol(self):
        return self._protocol

    def set_protocol(self, protocol):
        self._protocol = protocol
        self._core.set_protocol(
            protocol, isinstance(protocol, asyncio.BufferedProtocol)
        )

    def close(self):
        """Flush what is queued, then close; connection_lost(None) once
        done."""
        core = self._core
        closing = core.is_closing()
        queued = core.get_write_buffer_size()
        core.close()
        # With nothing left to write, asyncio calls connection_lost at the
        # next pass, not once the core's close has completed (a pass or two
        # later): StreamWriter.drain() after close() relies on it, raising
        # ConnectionResetError after its one sleep(0).
        if not closing and not self._closed and not queued:
            self._loop.call_soon(self._tell_connection_lost)

    def abort(self):
        """Close now, dropping what is queued; connection_lost(None)."""
        self._aborted = True
        self._core.abort()

    # -- asyncio.ReadTransport -----------------------------------------------

    def is_reading(self):
        return self._core.is_reading()

    def pause_reading(self):
        self._core.pause_reading()

    def resume_reading(self):
        self._core.resume_reading()

    # -- asyncio.WriteTransport ----------------------------------------------

    def set_write_buffer_limits(self, high=None, low=None):
        high, low = _flow_limits(high, low)
        self._core.set_limits(high, low)

    def get_write_buffer_limits(self):
        return self._core.get_limits()

    def can_write_eof(self):
        return True

    def write_eof(self):
        self._core.write_eof()

    # -- called by the core ----------------------------------------------------

    def _abort_run(self, exc):
        abort = getattr(self._loop, "_abort_run", None)
        if abort is None:
            raise exc
        abort(exc)

    def _report(self, message, exc):
        self._loop.call_exception_handler(
            {
                "message": message,
                "exception": exc,
                "transport": self,
                "protocol": self._protocol,
            }
        )

    def _fatal_error(self, exc, message):
        """asyncio's: an OSError is only logged in debug mode, anything
        else goes to the exception handler; the transport closes now and
        connection_lost gets exc."""
        if isinstance(exc, OSError):
            if self._loop.get_debug():
                logger.debug("%r: %s", self, message, exc_info=True)
        else:
            self._report(message, exc)
        self._force_close(exc)

    def _force_close(self, exc):
        if self._closed:
            return
        if self._exc is None:
            self._exc = exc
        self._aborted = True
        self._core.abort()

    def _on_protocol_error(self, exc, name):
        if isinstance(exc, (KeyboardInterrupt, SystemExit)):
            self._abort_run(exc)
            return
        self._fatal_error(
            exc, "Fatal error: protocol.%s() call failed." % (name,)
        )

    def _on_read_error(self, rc):
        self._fatal_error(
            error(rc, "read"), "Fatal read error on %s transport" % self._kind
        )

    def _on_write_error(self, rc):
        self._fatal_error(
            error(rc, "write"),
            "Fatal write error on %s transport" % self._kind,
        )

    def _on_eof(self):
        if self._loop.get_debug():
            logger.debug("%r received EOF", self)
        try:
            keep_open = self._protocol.eof_received()
        except (KeyboardInterrupt, SystemExit) as exc:
            self._abort_run(exc)
            return
        except BaseException as exc:
            self._fatal_error(
                exc, "Fatal error: protocol.eof_received() call failed."
            )
            return
        if not keep_open:
            self.close()

    def _flow_call(self, name):
        try:
            getattr(self._protocol, name)()
        except (KeyboardInterrupt, SystemExit) as exc:
            self._abort_run(exc)
        except BaseException as exc:
            self._report("protocol.%s() failed" % name, exc)

    def _pause_writing(self):
        self._flow_call("pause_writing")

    def _resume_writing(self):
        self._flow_call("resume_writing")

    def _on_closed(self):
        """The core closed the stream: connection_lost, once, from the run
        queue as asyncio calls it, so that the callbacks scheduled before
        (a task woken by data_received) run first: aiohttp's request
        handler, woken by a request that arrived with the peer's EOF,
        finds its connection as it left it."""
        if self._closed:
            return
        self._closed = True
        if self._loop.is_closed():
            self._call_connection_lost()
        else:
            self._loop.call_soon(self._call_connection_lost)

    def _tell_connection_lost(self):
        """protocol.connection_lost(exc), once: from close() or when the
        core has closed the stream (_call_connection_lost)."""
        if self._lost_told:
            return
        self._lost_told = True
        protocol, exc = self._protocol, self._exc
        self._exc = None
        try:
            protocol.connection_lost(exc)
        except (KeyboardInterrupt, SystemExit) as e:
            self._abort_run(e)
        except BaseException as e:
            self._loop.call_exception_handler(
                {
                    "message": "Exception in callback %r"
                    % (protocol.connection_lost,),
                    "exception": e,
                    "transport": self,
                    "protocol": protocol,
                }
            )

    def _call_connection_lost(self):
        """The core has closed the stream: tell the protocol (if close()
        has not) and let go of what the transport held."""
        core = self._core
        try:
            self._tell_connection_lost()
        finally:
            core.detach()  # the core lets go of this object (a cycle)
            self._close_owned()
            server = self._server
            if server is not None:
                self._server = None
                server._detach(self)

    def _close_owned(self):
        """Close the object whose descriptor the core had a duplicate of.
        The core's abort of a TCP stream asks for a reset (SO_LINGER 0);
        asyncio's abort closes normally, so the peer reads what was sent
        and then the end of the stream: that is put back first."""
        owned, self._owned = self._owned, None
        if owned is None:
            return
        if self._aborted and isinstance(owned, socket.socket):
            try:
                owned.setsockopt(
                    socket.SOL_SOCKET, socket.SO_LINGER, _NO_LINGER
                )
            except OSError:
                pass
        owned.close()

    def _detach(self):
        """The loop closes: drop the connection without callbacks."""
        if not self._closed and not self._detached:
            self._detached = True
            self._core.detach()
            self._close_owned()

    def __del__(self):
        if (
            not getattr(self, "_closed", True)
            and not self._detached
            and self._core.stream
        ):
            warnings.warn(
                "unclosed transport %r" % (self,),
                ResourceWarning,
                stacklevel=2,
                source=self,
            )
            self._core.detach()


class SocketTransport(_CoreTransport, asyncio.Transport):
    """A TCP or Unix-socket connection."""

    _sendfile_compatible = _SendfileMode.TRY_NATIVE

    def __init__(
        self, loop, sock, protocol, waiter=None, extra=None, server=None
    ):
        """sock: a connected socket; the transport takes it over (its
        descriptor goes to the core stream; a socket given by the user is
        duplicated, the object closed with the transport)."""
        asyncio.Transport.__init__(self, extra)
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            try:  # as asyncio: small writes go out at once
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                pass
        self._extra["sockname"] = _sockname(sock)
        self._extra["peername"] = _peername(sock)
        # asyncio's socket wrapper, on the socket object the transport
        # keeps (its descriptor and the core's duplicate are one socket)
        self._extra["socket"] = trsock.TransportSocket(sock)
        handle = open_stream(loop, os.dup(sock.fileno()))
        self._init_core(loop, handle, protocol, server, sock, True)
        self._start(waiter)


def _sockname(sock):
    try:
        return sock.getsockname()
    except OSError:
        return None


def _peername(sock):
    try:
        return sock.getpeername()
    except OSError:
        return None


def _pipe_fd(pipe):
    """A duplicate of the pipe's descriptor for the core (the pipe object is
    closed with the transport), after asyncio's check of its kind."""
    fd = pipe.fileno()
    mode = os.fstat(fd).st_mode
    if not (stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode) or stat.S_ISCHR(mode)):
        raise ValueError("Pipe transport is for pipes/sockets only.")
    return os.dup(fd)


class ReadPipeTransport(_CoreTransport, asyncio.ReadTransport):
    """The read end of a pipe (connect_read_pipe): at its end,
    eof_received, then connection_lost(None)."""

    _kind = "pipe"

    def __init__(self, loop, pipe, protocol, waiter=None, extra=None):
        asyncio.ReadTransport.__init__(self, extra)
        self._extra["pipe"] = pipe
        handle = open_stream(loop, _pipe_fd(pipe))
        self._init_core(loop, handle, protocol, None, pipe, True)
        del self.write, self.writelines, self.get_write_buffer_size
        self._start(waiter)

    def _on_eof(self):
        if self._loop.get_debug():
            logger.debug("%r was closed by peer", self)
        try:
            self._protocol.eof_received()
        except (KeyboardInterrupt, SystemExit) as exc:
            self._abort_run(exc)
        except BaseException as exc:
            self._report(
                "Fatal error: protocol.eof_received() call failed.", exc
            )
        self.close()


class WritePipeTransport(_CoreTransport, asyncio.WriteTransport):
    """The write end of a pipe (connect_write_pipe). write_eof closes it
    (a pipe has no half-close). A reader that goes away is seen at once,
    as asyncio sees it: the core's poll on the pipe wakes (the write end
    of a pipe becomes readable, with an error, when the last reader
    closes), and the transport closes (connection_lost(None), or
    BrokenPipeError if bytes were still queued)."""

    _kind = "pipe"

    def __init__(self, loop, pipe, protocol, waiter=None, extra=None):
        asyncio.WriteTransport.__init__(self, extra)
        self._extra["pipe"] = pipe
        handle = open_stream(loop, _pipe_fd(pipe))
        self._init_core(loop, handle, protocol, None, pipe, False)
        self._watch = None
        mode = os.fstat(pipe.fileno()).st_mode
        if stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode):
            self._watch = Poll(pipe.fileno(), loop)
            Task(self._watch_reader(self._watch), loop)
        self._start(waiter)

    async def _watch_reader(self, poll):
        try:
            await poll.wait(lib.UVA_READABLE)
        except OSError:
            pass  # an error on the pipe, or the poll was closed
        if self._watch is not poll or self._closed:
            return
        if self._core.get_write_buffer_size():
            self._force_close(BrokenPipeError())
        else:
            self._aborted = True
            self._core.abort()

    def _close_owned(self):
        watch, self._watch = self._watch, None
        if watch is not None:  # before the pipe's descriptor closes
            watch.close()
        _CoreTransport._close_owned(self)

    def write_eof(self):
        self.close()
