"""asyncio's subprocess transports on the core's child processes (issue
25): subprocess_exec, subprocess_shell. EventLoop (aio_loop.py) takes them
from SubprocessMixin.

The core spawns the child (uva_process_spawn, posix_spawn) and reaps it; a
small core task whose step is a Python callback waits for its exit
(uva_process_wait; the step is subprocess.py's _uvapy_process_step, which
calls the object's _exit_step). The child's pipes are made here with
os.pipe (the child gets its ends as UVA_STDIO_FD) so that the parent's
ends are ordinary pipe objects, connected with the loop's own
connect_write_pipe/connect_read_pipe: the pipe transports are the stream
transports of aio_transport.py, on core streams. The protocol hears
connection_made, pipe_data_received, pipe_connection_lost, process_exited
and connection_lost in asyncio's order, so asyncio.create_subprocess_exec
and asyncio.subprocess.Process run on the loop unchanged.
"""

import asyncio
import collections
import logging
import os
import signal
import subprocess
import sys
import time
import warnings

from ._ffi import NULL, check, ffi, lib
from .subprocess import (
    _REFUSED,
    _process_options,
    _spawn_error,
    _stdio,
)

logger = logging.getLogger("uvasync")

_EAGAIN = lib.UVA_EAGAIN
_ECLOSED = lib.UVA_ECLOSED
_TASK_PENDING = lib.UVA_TASK_PENDING

# asyncio wakes wait() when the child exits up to 3.11, when the
# transport's connection_lost runs (its pipes closed too) from 3.12
_WAKE_AT_END = sys.version_info >= (3, 12)


class _PipeProtocol(asyncio.BaseProtocol):
    """The protocol of a child's stdin pipe transport: tells the
    subprocess transport when it is gone, passes flow control on."""

    def __init__(self, proc, fd):
        self.proc = proc
        self.fd = fd
        self.pipe = None
        self.disconnected = False

    def __repr__(self):
        return "<%s fd=%d pipe=%r>" % (type(self).__name__, self.fd, self.pipe)

    def connection_made(self, transport):
        self.pipe = transport

    def connection_lost(self, exc):
        self.disconnected = True
        self.proc._pipe_connection_lost(self.fd, exc)
        self.proc = None

    def pause_writing(self):
        self.proc._protocol.pause_writing()

    def resume_writing(self):
        self.proc._protocol.resume_writing()


class _ReadPipeProtocol(_PipeProtocol, asyncio.Protocol):
    """The protocol of a child's stdout or stderr pipe transport."""

    def data_received(self, data):
        self.proc._pipe_data_received(self.fd, data)


class SubprocessTransport(asyncio.SubprocessTransport):
    """A child process and its pipe transports (asyncio's
    SubprocessTransport): get_pid, get_returncode, get_pipe_transport,
    send_signal, terminate, kill, close (which kills a child still
    running, as asyncio's does)."""

    def __init__(
        self, loop, protocol, args, stdin, stdout, stderr, waiter, kwds
    ):
        super().__init__(None)
        self._loop = loop
        self._protocol = protocol
        self._closed = False
        self._finished = False
        self._ended = False  # connection_lost ran: the child is gone
        self._h = None  # uva_process_t *, None once exited or closed
        self._wh = None  # the exit watcher's copy, for its last call
        self._registered = False
        self._pid = None
        self._returncode = None
        self._exit_waiters = []
        self._pending_calls = collections.deque()
        self._pipes = {}
        # fd -> the parent's end of its pipe (a file), until it is handed
        # to its pipe transport, which then owns it (and may watch its
        # descriptor: it must not be closed under it)
        self._files = {}
        self._status = ffi.new("int64_t *")
        self._signal = ffi.new("int *")
        for fd, value in enumerate((stdin, stdout, stderr)):
            if value == subprocess.PIPE:
                self._pipes[fd] = None
        try:
            self._spawn(args, stdin, stdout, stderr, kwds)
        except BaseException:
            self._close_files()
            self.close()
            raise
        self._child = _Child(self, list(args))
        self._extra["subprocess"] = self._child
        if loop.get_debug():
            logger.debug("process %r created: pid %s", args[0], self._pid)
        loop.create_task(self._connect_pipes(waiter))

    def __repr__(self):
        info = [type(self).__name__]
        if self._closed:
            info.append("closed")
        if self._pid is not None:
            info.append("pid=%s" % self._pid)
        if self._returncode is not None:
            info.append("returncode=%s" % self._returncode)
        elif self._pid is not None:
            info.append("running")
        return "<%s>" % " ".join(info)

    # -- starting ------------------------------------------------------------

    def _spawn(self, args, stdin, stdout, stderr, kwds):
        loop = self._loop
        cwd = kwds.pop("cwd", None)
        env = kwds.pop("env", None)
        executable = kwds.pop("executable", None)
        new_session = kwds.pop("start_new_session", False)
        kwds.pop("close_fds", None)  # the child gets 0-2 and inheritable fds
        # pass_fds: made inheritable for the spawn (so, as a limit, a child
        # another thread spawns at that moment inherits them too)
        pass_fds = [int(fd) for fd in kwds.pop("pass_fds", ())]
        for name, default in _REFUSED.items():
            value = kwds.pop(name, default)
            if value != default and not (name == "pass_fds" and not value):
                raise NotImplementedError(
                    "uvasync: %s=%r is not supported (the core's spawn has "
                    "no such option)" % (name, value)
                )
        if kwds:
            raise TypeError(
                "unexpected keyword argument %r" % (sorted(kwds)[0],)
            )
        keep = []
        opts = _process_options(args, executable, env, cwd, keep)
        if new_session:
            opts.flags |= lib.UVA_PROCESS_SETSID
        child_ends = []
        try:
            for fd, value in enumerate((stdin, stdout, stderr)):
                if value == subprocess.PIPE:
                    r, w = os.pipe()  # not inheritable: only the child's
                    mine, theirs = (w, r) if fd == 0 else (r, w)
                    child_ends.append(theirs)
                    self._files[fd] = open(mine, "wb" if fd == 0 else "rb", 0)
                    opts.stdio[fd].kind = lib.UVA_STDIO_FD
                    opts.stdio[fd].fd = theirs
                else:
                    _stdio(opts.stdio[fd], value, fd)
            cell = ffi.new("uva_process_t **")
            lent = [fd for fd in pass_fds if not os.get_inheritable(fd)]
            for fd in lent:
                os.set_inheritable(fd, True)
            try:
                rc = lib.uva_process_spawn(cell, loop._ptr(), opts)
            finally:
                for fd in lent:
                    os.set_inheritable(fd, False)
            if rc < 0:
                raise _spawn_error(
                    rc, executable if executable is not None else args[0], cwd
                )
        finally:
            for fd in child_ends:
                os.close(fd)
        self._h = self._wh = cell[0]
        pid = ffi.new("int *")
        check(lib.uva_process_pid(pid, self._h), "pid")
        self._pid = pid[0]
        # the exit watcher: a core task whose data is this transport,
        # kept (with it) by the loop until its last step
        self._cdata = ffi.new_handle(self)
        rc = lib.uva_task_spawn(
            NULL, loop._ptr(), lib._uvapy_process_step, self._cdata, NULL
        )
        if rc < 0:
            self._close_handle()
            check(rc, "spawn")
        loop._keep.add(self._cdata)
        loop._bind(self)

    async def _connect_pipes(self, waiter):
        loop = self._loop
        try:
            for fd in (0, 1, 2):
                f = self._files.pop(fd, None)
                if f is None:
                    continue
                if fd == 0:
                    _, proto = await loop.connect_write_pipe(
                        lambda: _PipeProtocol(self, 0), f
                    )
                else:
                    _, proto = await loop.connect_read_pipe(
                        lambda fd=fd: _ReadPipeProtocol(self, fd), f
                    )
                self._pipes[fd] = proto
                if self._closed:  # close() came while connecting
                    proto.pipe.close()
            loop.call_soon(self._protocol.connection_made, self)
            for callback, data in self._pending_calls:
                loop.call_soon(callback, *data)
            self._pending_calls = None
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            if waiter is not None and not waiter.cancelled():
                waiter.set_exception(exc)
        else:
            if waiter is not None and not waiter.cancelled():
                waiter.set_result(None)

    # -- the child's exit ------------------------------------------------------

    def _exit_step(self, ctask):
        """The exit watcher's step (subprocess.py's _uvapy_process_step
        calls it): wait for the exit, or for the close of the handle at
        the loop's close, after which a waiter's one more call returns
        UVA_ECLOSED."""
        if self._h is None and not self._registered:
            rc = _ECLOSED
        else:
            rc = lib.uva_process_wait(
                self._status, self._signal, self._wh, ctask
            )
        if rc == _EAGAIN:
            self._registered = True
            return _TASK_PENDING
        self._wh = None
        self._loop._keep.discard(self._cdata)
        if rc == 0:
            sig = self._signal[0]
            returncode = -sig if sig else self._status[0]
            self._close_handle()
            self._process_exited(returncode)
        return 0

    def _close_handle(self):
        h, self._h = self._h, None
        if h is not None:
            lib.uva_process_close(h, NULL, NULL)

    def _detach(self):
        """The loop closes: the core goes on watching the child (not
        killed, as asyncio leaves it) and reaps it when it exits."""
        self._close_handle()
        self._close_files()

    def _close_files(self):
        """Close the pipe ends not handed to a pipe transport."""
        files, self._files = self._files, {}
        for f in files.values():
            f.close()

    # -- asyncio's order of callbacks ------------------------------------------

    def _call(self, cb, *data):
        if self._pending_calls is not None:
            self._pending_calls.append((cb, data))
        else:
            self._loop.call_soon(cb, *data)

    def _pipe_connection_lost(self, fd, exc):
        self._call(self._protocol.pipe_connection_lost, fd, exc)
        self._try_finish()

    def _pipe_data_received(self, fd, data):
        self._call(self._protocol.pipe_data_received, fd, data)

    def _process_exited(self, returncode):
        if self._loop.get_debug():
            logger.info("%r exited with return code %r", self, returncode)
        self._returncode = returncode
        self._call(self._protocol.process_exited)
        self._try_finish()
        if not _WAKE_AT_END:
            self._wake_waiters()

    def _wake_waiters(self):
        waiters, self._exit_waiters = self._exit_waiters, None
        for waiter in waiters or ():
            if not waiter.cancelled():
                waiter.set_result(self._returncode)

    def _try_finish(self):
        if self._finished or self._returncode is None:
            return
        if all(p is not None and p.disconnected for p in self._pipes.values()):
            self._finished = True
            self._call(self._call_connection_lost, None)

    def _call_connection_lost(self, exc):
        try:
            self._protocol.connection_lost(exc)
        finally:
            if _WAKE_AT_END:
                self._wake_waiters()
            self._ended = True
            self._protocol = None

    async def _wait(self):
        """The child's return code, once it exited (asyncio.subprocess's
        Process.wait awaits this)."""
        if self._returncode is not None and (
            not _WAKE_AT_END or self._exit_waiters is None
        ):
            return self._returncode
        waiter = self._loop.create_future()
        self._exit_waiters.append(waiter)
        return await waiter

    # -- asyncio.SubprocessTransport --------------------------------------------

    def get_protocol(self):
        return self._protocol

    def set_protocol(self, protocol):
        self._protocol = protocol

    def is_closing(self):
        return self._closed

    def close(self):
        """Close the pipes; a child still running is killed (SIGKILL),
        as asyncio's transport does. process_exited and connection_lost
        still follow."""
        if self._closed:
            return
        self._closed = True
        # pipes still being connected are closed once connected
        for proto in self._pipes.values():
            if proto is not None and proto.pipe is not None:
                proto.pipe.close()
        if (
            self._h is not None
            and self._returncode is None
            and self._child.poll() is None  # exited, not yet seen
        ):
            if self._loop.get_debug():
                logger.warning("Close running child process: kill %r", self)
            try:
                self._child.kill()
            except ProcessLookupError:
                pass

    def __del__(self, _warn=warnings.warn):
        if not self._closed:
            _warn(
                "unclosed transport %r" % (self,), ResourceWarning, source=self
            )
            if self._loop is not None and not self._loop.is_closed():
                self.close()

    def get_pid(self):
        return self._pid

    def get_returncode(self):
        return self._returncode

    def get_pipe_transport(self, fd):
        proto = self._pipes.get(fd)
        return None if proto is None else proto.pipe

    def _signal_child(self, sig):
        """Send a signal to the child; nothing once it exited (its pid may
        be another process's by then)."""
        h = self._h
        if h is None or self._returncode is not None:
            return
        rc = lib.uva_process_kill(h, int(sig))
        if rc < 0 and rc != lib.UVA_ESRCH:
            check(rc, "send_signal")

    def _check_proc(self):
        if self._ended:  # as asyncio: the transport let go of the child
            raise ProcessLookupError()

    def send_signal(self, sig):
        self._check_proc()
        self._child.send_signal(sig)

    def terminate(self):
        self._check_proc()
        self._child.terminate()

    def kill(self):
        self._check_proc()
        self._child.kill()


def _exit_status(info):
    """A returncode from os.waitid's result (-N for signal N)."""
    if info.si_code == os.CLD_EXITED:
        return info.si_status
    return -info.si_status


class _Child:
    """get_extra_info("subprocess"): what asyncio's transport gives there
    is its subprocess.Popen; this is the part of one that applies to a
    child the core spawned and reaps: pid, returncode, poll, wait,
    send_signal, terminate, kill. poll and wait look at the child with
    waitid(WNOWAIT), which leaves it for the core to reap. The transport
    signals the child through it."""

    def __init__(self, transport, args):
        self._transport = transport
        self.pid = transport._pid
        self.args = args

    def __repr__(self):
        return "<uvasync child pid=%s returncode=%s>" % (
            self.pid,
            self.returncode,
        )

    @property
    def returncode(self):
        return self._transport._returncode

    def poll(self):
        """The returncode once the child has exited (also before the loop
        has seen the exit), else None."""
        rc = self._transport._returncode
        if rc is None and hasattr(os, "waitid"):
            try:
                info = os.waitid(
                    os.P_PID, self.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT
                )
            except ChildProcessError:  # reaped by the core just now
                return None
            if info is not None:
                rc = _exit_status(info)
        return rc

    def wait(self, timeout=None):
        """Block until the child exits (Popen.wait: this blocks the loop's
        thread); its returncode. subprocess.TimeoutExpired after timeout
        seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        delay = 0.0005
        while True:
            rc = self.poll()
            if rc is not None:
                return rc
            if self._transport._h is None:  # reaped: the loop reports it
                return self._transport._returncode
            if deadline is None and hasattr(os, "waitid"):
                try:
                    info = os.waitid(
                        os.P_PID, self.pid, os.WEXITED | os.WNOWAIT
                    )
                except ChildProcessError:
                    continue
                return _exit_status(info)
            if deadline is not None and time.monotonic() >= deadline:
                raise subprocess.TimeoutExpired(self.args, timeout)
            time.sleep(delay)
            delay = min(delay * 2, 0.05)

    def send_signal(self, sig):
        self._transport._signal_child(sig)

    def terminate(self):
        self._transport._signal_child(signal.SIGTERM)

    def kill(self):
        self._transport._signal_child(signal.SIGKILL)


def _check_popen_args(kwargs):
    """What asyncio refuses of Popen's arguments (it hands bytes to the
    protocol, unbuffered)."""
    if kwargs.pop("universal_newlines", False):
        raise ValueError("universal_newlines must be False")
    if kwargs.pop("bufsize", 0) != 0:
        raise ValueError("bufsize must be 0")
    if kwargs.pop("text", None):
        raise ValueError("text must be False")
    if kwargs.pop("encoding", None) is not None:
        raise ValueError("encoding must be None")
    if kwargs.pop("errors", None) is not None:
        raise ValueError("errors must be None")


class SubprocessMixin:
    """The subprocess-transport methods of EventLoop."""

    __slots__ = ()

    async def subprocess_exec(
        self,
        protocol_factory,
        program,
        *args,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        **kwargs,
    ):
        """Start program with args (no shell); (transport, protocol)."""
        if kwargs.pop("shell", False):
            raise ValueError("shell must be False")
        _check_popen_args(kwargs)
        return await self._subprocess(
            protocol_factory, (program,) + args, stdin, stdout, stderr, kwargs
        )

    async def subprocess_shell(
        self,
        protocol_factory,
        cmd,
        *,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        **kwargs,
    ):
        """Run the command line cmd with /bin/sh -c; (transport,
        protocol)."""
        if not isinstance(cmd, (bytes, str)):
            raise ValueError("cmd must be a string")
        if not kwargs.pop("shell", True):
            raise ValueError("shell must be True")
        _check_popen_args(kwargs)
        return await self._subprocess(
            protocol_factory,
            ("/bin/sh", "-c", cmd),
            stdin,
            stdout,
            stderr,
            kwargs,
        )

    async def _subprocess(
        self, protocol_factory, args, stdin, stdout, stderr, kwargs
    ):
        protocol = protocol_factory()
        waiter = self.create_future()
        transport = SubprocessTransport(
            self, protocol, args, stdin, stdout, stderr, waiter, kwargs
        )
        try:
            await waiter
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException:
            transport.close()
            await transport._wait()
            raise
        return transport, protocol
