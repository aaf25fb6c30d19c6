"""asyncio's low-level socket calls (sock_recv, sock_sendall, sock_connect,
sock_accept, ...) and add_reader/add_writer on the core's descriptor poll
(issue 25). EventLoop (aio_loop.py) takes these methods from SocketsMixin.

One descriptor has one _FdWatcher while a reader or a writer is set: a
core poll handle (uva_poll_*) and a small core task waiting on it whose
step is a Python callback (_uvapy_fd_step, no coroutine), as a child's exit
watcher in subprocess.py. Reader and writer share the poll; when both are
removed the poll is closed and the task ends, so nothing is left watching.

The sock_* calls try the non-blocking system call first and wait on the
poll only when it would block (as asyncio's selector loop), through a
reader or writer that retries the call and completes a Future; the
coroutine removes it however it ends, cancellation included.
"""

import asyncio
import os
import socket

from ._ffi import NULL, check, error, ffi, lib

try:
    import ssl
except ImportError:  # Python built without ssl
    ssl = None

_EAGAIN = lib.UVA_EAGAIN
_ECLOSED = lib.UVA_ECLOSED
# the poll's number is closed, or names a file that cannot be polled: the
# program closed the descriptor (with a reader or writer still set)
_GONE = (lib.UVA_EBADF, lib.UVA_EPERM)
_TASK_PENDING = lib.UVA_TASK_PENDING
_READABLE = lib.UVA_READABLE
_WRITABLE = lib.UVA_WRITABLE

# what asyncio's sendfile fallback reads at a time
_SENDFILE_BLOCK = 256 * 1024

_WOULD_BLOCK = (BlockingIOError, InterruptedError)


class _IoHandle(asyncio.Handle):
    """add_reader/add_writer's callback: asyncio's Handle, run through
    the loop's _run_handle (debug mode's slow-callback warning; Ctrl-C and
    SystemExit stop the loop)."""

    __slots__ = ()

    def _run(self):
        self._loop._run_handle(self)


def _fileobj_to_fd(fileobj):
    """A descriptor number from an int or an object with fileno(), with
    the errors of asyncio's selector."""
    if isinstance(fileobj, int):
        fd = fileobj
    else:
        try:
            fd = int(fileobj.fileno())
        except (AttributeError, TypeError, ValueError):
            raise ValueError("Invalid file object: %r" % (fileobj,)) from None
    if fd < 0:
        raise ValueError("Invalid file descriptor: %d" % fd)
    return fd


class _FdWatcher:
    """The reader and writer Handles of one descriptor, its core poll and
    the core task that waits on it. The task's step runs the callbacks of
    the events that came and waits again.

    With neither callback set the watcher stays, idle, for the next one
    (sock_recv in a loop then makes no poll and no task per call), but
    only when its poll is stopped (the core stops it when it fires);
    otherwise it closes. The loop closes the idle ones at its close.

    The program may close the descriptor with a callback still set (as
    on asyncio's loop): the core's poll watches the number, so nothing
    fires for the closed file, a callback set again after the number was
    reused watches the new file, and one set on a closed number raises
    OSError (EBADF), as asyncio's selector does."""

    __slots__ = (
        "loop",
        "fd",
        "poll",
        "ctask",
        "reader",
        "writer",
        "revents",
        "cdata",
        "in_step",
        "started",
        "__weakref__",
    )

    def __init__(self, loop, fd):
        self.loop = loop
        self.fd = fd
        self.reader = self.writer = None
        self.in_step = False
        self.started = False  # a wait is registered (the poll may run)
        self.revents = ffi.new("int *")
        cell = ffi.new("uva_poll_t **")
        check(lib.uva_poll_new(cell, loop._ptr(), fd), "add_reader")
        self.poll = cell[0]
        self.cdata = ffi.new_handle(self)
        tcell = ffi.new("uva_task_t **")
        rc = lib.uva_task_spawn(
            tcell, loop._ptr(), lib._uvapy_fd_step, self.cdata, NULL
        )
        if rc < 0:
            lib.uva_poll_close(self.poll, NULL, NULL)
            raise error(rc, "add_reader")
        self.ctask = tcell[0]  # our reference, dropped by the last step
        lib.uva_task_unref(self.ctask)  # a watcher keeps no loop running
        loop._keep.add(self.cdata)  # the core task's data lives with it
        loop._bind(self)

    def mask(self):
        return (_READABLE if self.reader is not None else 0) | (
            _WRITABLE if self.writer is not None else 0
        )

    def arm(self):
        """Wait for what the callbacks set now want (from outside the
        step: the task need not run to change its wait). The core's
        result: one of _GONE when the descriptor was closed (nothing is
        armed then)."""
        if self.in_step:
            return _EAGAIN  # the step waits again when the callbacks return
        ctask = self.ctask
        if self.started:
            lib.uva_task_withdraw(ctask, self.poll)
        rc = lib.uva_poll_wait(self.revents, self.poll, ctask, self.mask())
        if rc in _GONE:
            self.started = False
            return rc
        self.started = True
        if rc != _EAGAIN:  # an error of the poll: the step reports it
            lib.uva_task_wake(ctask)
        return rc

    def idle(self):
        """Neither callback is set any more: stay if the poll is stopped,
        else close."""
        if self.started:
            self.close()

    def step(self, ctask):
        if self.poll is None:
            return self._end()
        mask = self.mask()
        if mask == 0:  # idle (woken by a poll error of a withdrawn wait)
            return _TASK_PENDING
        rc = lib.uva_poll_wait(self.revents, self.poll, ctask, mask)
        if rc == _EAGAIN:
            return _TASK_PENDING
        self.started = False  # fired: the core stopped the poll
        if rc == _ECLOSED:
            return self._end()
        if rc in _GONE:  # closed under the wait: no event will come, as
            return _TASK_PENDING  # on asyncio's loop; parked
        # on an error of the poll both callbacks run: their own system
        # call then reports it (as libuv-based loops do)
        events = self.revents[0] if rc == 0 else _READABLE | _WRITABLE
        self.in_step = True
        try:
            if events & _READABLE:
                handle = self.reader
                if handle is not None:
                    if handle._cancelled:
                        self.reader = None
                    else:
                        handle._run()
            if events & _WRITABLE:
                handle = self.writer
                if handle is not None:
                    if handle._cancelled:
                        self.writer = None
                    else:
                        handle._run()
        finally:
            self.in_step = False
        if self.poll is None:
            return self._end()
        mask = self.mask()
        if mask == 0:
            return _TASK_PENDING  # idle, parked until a callback is set
        rc = lib.uva_poll_wait(self.revents, self.poll, ctask, mask)
        if rc in _GONE:  # a callback closed the descriptor: parked
            return _TASK_PENDING
        self.started = True
        if rc != _EAGAIN:
            lib.uva_task_yield(ctask)  # an error again: next pass
        return _TASK_PENDING

    def _end(self):
        """The task's last step: drop what kept it."""
        ctask, self.ctask = self.ctask, None
        if ctask is not None:
            lib.uva_task_release(ctask)
        self.loop._keep.discard(self.cdata)
        return 0

    def close(self):
        """Stop watching: the poll closes, the task is woken and its step
        ends it. Pending Handles are cancelled."""
        for handle in (self.reader, self.writer):
            if handle is not None:
                handle.cancel()
        self.reader = self.writer = None
        watchers = self.loop._aio_fds
        if watchers is not None and watchers.get(self.fd) is self:
            del watchers[self.fd]
        poll, self.poll = self.poll, None
        if poll is not None:
            lib.uva_poll_close(poll, NULL, NULL)
            if self.ctask is not None and not self.in_step:
                lib.uva_task_wake(self.ctask)  # an idle task waits on nothing

    # the loop closes
    _detach = close


class _SockCall:
    """A sock_* call waiting on the poll, set as the descriptor's reader or
    writer in place of an asyncio.Handle: when run it makes the call
    again, completes the Future unless the call would still block, and
    removes itself."""

    __slots__ = ("loop", "fut", "fd", "writing", "call", "args", "_cancelled")

    def __init__(self, loop, fut, fd, writing, call, args):
        self.loop = loop
        self.fut = fut
        self.fd = fd
        self.writing = writing
        self.call = call
        self.args = args
        self._cancelled = False

    def cancel(self):
        self._cancelled = True

    def _run(self):
        fut = self.fut
        if fut.done():
            return
        try:
            result = self.call(*self.args)
        except _WOULD_BLOCK:
            return
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            fut.set_exception(exc)
        else:
            fut.set_result(result)
        self.loop._unwatch(self.fd, self.writing, self)


# The calls a waiting sock_* call makes again, looking the method up each
# time (as asyncio's callbacks do: a socket object may be a wrapper).
def _recv(sock, n):
    return sock.recv(n)


def _recv_into(sock, buf):
    return sock.recv_into(buf)


def _recvfrom(sock, n):
    return sock.recvfrom(n)


def _recvfrom_into(sock, buf, n):
    return sock.recvfrom_into(buf, n)


def _sendto(sock, data, address):
    return sock.sendto(data, address)


def _accept(sock):
    return sock.accept()


def _check_sock(loop, sock):
    if ssl is not None and isinstance(sock, ssl.SSLSocket):
        raise TypeError("Socket cannot be of type SSLSocket")
    if loop.get_debug() and sock.gettimeout() != 0:
        raise ValueError("the socket must be non-blocking")


def _is_numeric(family, host):
    try:
        socket.inet_pton(family, host)
    except (OSError, TypeError, ValueError):
        return False
    return True


class SocketsMixin:
    """The sock_* and reader/writer methods of EventLoop."""

    __slots__ = ()

    _aio_fds = None  # fd -> _FdWatcher, made on first use

    # -- readers and writers ----------------------------------------------

    def _fd_watcher(self, fd):
        watchers = self._aio_fds
        if watchers is None:
            watchers = self._aio_fds = {}
        w = watchers.get(fd)
        if w is None or w.poll is None:
            w = watchers[fd] = _FdWatcher(self, fd)
        return w

    def _watch(self, fd, writing, handle):
        """Make handle (an asyncio.Handle, or any object with _cancelled,
        _run and cancel) the reader or writer of fd."""
        self._ptr()  # RuntimeError once closed
        w = self._fd_watcher(fd)
        if writing:
            old, w.writer = w.writer, handle
        else:
            old, w.reader = w.reader, handle
        if old is not None:
            old.cancel()
        # armed again also when a callback is replaced: the program may
        # have closed the descriptor and reused its number since
        rc = w.arm()
        if rc in _GONE:  # a closed descriptor: refused, as by a selector
            if writing:
                w.writer = None
            else:
                w.reader = None
            handle.cancel()
            if w.reader is None and w.writer is None:
                w.close()
            raise error(rc, "add_writer" if writing else "add_reader")
        return handle

    def _add_reader(self, fd, callback, *args):
        fd = _fileobj_to_fd(fd)
        return self._watch(fd, False, _IoHandle(callback, args, self))

    def _add_writer(self, fd, callback, *args):
        fd = _fileobj_to_fd(fd)
        return self._watch(fd, True, _IoHandle(callback, args, self))

    def _unwatch(self, fd, writing, handle=None):
        """Drop the reader (or writer) of fd, only if it is `handle` when
        one is given; True if one was set."""
        watchers = self._aio_fds
        if watchers is None or self.is_closed():
            return False
        w = watchers.get(fd)
        if w is None:
            return False
        old = w.writer if writing else w.reader
        if old is None or (handle is not None and old is not handle):
            return False
        if writing:
            w.writer = None
        else:
            w.reader = None
        old.cancel()
        if w.reader is None and w.writer is None:
            if not w.in_step:
                w.idle()  # else the step parks it when callbacks return
        else:
            w.arm()
        return True

    # asyncio's private names, which some libraries call
    def _remove_reader(self, fd):
        return self._unwatch(_fileobj_to_fd(fd), False)

    def _remove_writer(self, fd):
        return self._unwatch(_fileobj_to_fd(fd), True)

    def add_reader(self, fd, callback, *args):
        """Call callback(*args) whenever fd is readable."""
        self._add_reader(fd, callback, *args)

    def add_writer(self, fd, callback, *args):
        """Call callback(*args) whenever fd is writable."""
        self._add_writer(fd, callback, *args)

    def remove_reader(self, fd):
        """Stop watching fd for reading; True if a reader was set."""
        return self._unwatch(_fileobj_to_fd(fd), False)

    def remove_writer(self, fd):
        """Stop watching fd for writing; True if a writer was set."""
        return self._unwatch(_fileobj_to_fd(fd), True)

    # -- waiting for one call ---------------------------------------------

    async def _sock_wait(self, sock, writing, call, *args):
        """Wait until call(*args) does not block; its result."""
        fut = self.create_future()
        fd = sock.fileno()
        waiter = _SockCall(self, fut, fd, writing, call, args)
        self._watch(fd, writing, waiter)
        try:
            return await fut
        finally:
            self._unwatch(fd, writing, waiter)  # if still set (cancelled)

    async def sock_recv(self, sock, n):
        """Receive up to n bytes from sock."""
        _check_sock(self, sock)
        try:
            return sock.recv(n)
        except _WOULD_BLOCK:
            pass
        return await self._sock_wait(sock, False, _recv, sock, n)

    async def sock_recv_into(self, sock, buf):
        """Receive into buf; the number of bytes received."""
        _check_sock(self, sock)
        try:
            return sock.recv_into(buf)
        except _WOULD_BLOCK:
            pass
        return await self._sock_wait(sock, False, _recv_into, sock, buf)

    async def sock_recvfrom(self, sock, bufsize):
        """A datagram of up to bufsize bytes and its source address."""
        _check_sock(self, sock)
        try:
            return sock.recvfrom(bufsize)
        except _WOULD_BLOCK:
            pass
        return await self._sock_wait(sock, False, _recvfrom, sock, bufsize)

    async def sock_recvfrom_into(self, sock, buf, nbytes=0):
        """Receive a datagram into buf; (nbytes, address)."""
        _check_sock(self, sock)
        if not nbytes:
            nbytes = len(buf)
        try:
            return sock.recvfrom_into(buf, nbytes)
        except _WOULD_BLOCK:
            pass
        return await self._sock_wait(
            sock, False, _recvfrom_into, sock, buf, nbytes
        )

    async def sock_sendto(self, sock, data, address):
        """Send a datagram to address; the number of bytes sent."""
        _check_sock(self, sock)
        try:
            return sock.sendto(data, address)
        except _WOULD_BLOCK:
            pass
        return await self._sock_wait(sock, True, _sendto, sock, data, address)

    async def sock_sendall(self, sock, data):
        """Send all of data (None once it is all with the kernel)."""
        _check_sock(self, sock)
        try:
            sent = sock.send(data)
        except _WOULD_BLOCK:
            sent = 0
        view = memoryview(data).cast("B")
        if sent == len(view):
            return None
        rest = [view[sent:]]

        def send_some():
            n = sock.send(rest[0])
            if n < len(rest[0]):
                rest[0] = rest[0][n:]
                raise BlockingIOError  # wait for room again
            return None

        return await self._sock_wait(sock, True, send_some)

    async def sock_connect(self, sock, address):
        """Connect sock to address (a host name is resolved first, as
        asyncio does, with the loop's getaddrinfo)."""
        _check_sock(self, sock)
        family = sock.family
        if family in (socket.AF_INET, socket.AF_INET6):
            host, port = address[:2]
            if not _is_numeric(family, host):
                infos = await self.getaddrinfo(
                    host,
                    port,
                    family=family,
                    type=sock.type,
                    proto=sock.proto,
                )
                address = infos[0][4]
        try:
            sock.connect(address)
            return None
        except _WOULD_BLOCK:
            pass

        def connected():
            err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if err != 0:
                raise OSError(err, "Connect call failed %s" % (address,))
            return None

        return await self._sock_wait(sock, True, connected)

    async def sock_accept(self, sock):
        """Accept a connection: (a non-blocking socket, its address)."""
        _check_sock(self, sock)
        try:
            conn, address = sock.accept()
        except _WOULD_BLOCK:
            conn, address = await self._sock_wait(sock, False, _accept, sock)
        conn.setblocking(False)
        return conn, address

    # -- sendfile -----------------------------------------------------------

    async def sock_sendfile(
        self, sock, file, offset=0, count=None, *, fallback=True
    ):
        """Send a file over a stream socket: os.sendfile (the kernel copies;
        sock is not a core stream, so the core's uva_fs_sendfile does not
        apply), else, with fallback, reads and sock_sendall. The number of
        bytes sent; the file's position is left after them."""
        _check_sock(self, sock)
        if "b" not in getattr(file, "mode", "b"):
            raise ValueError("file should be opened in binary mode")
        if sock.type != socket.SOCK_STREAM:
            raise ValueError("only SOCK_STREAM type sockets are supported")
        if count is not None:
            if not isinstance(count, int):
                raise TypeError(
                    "count must be a positive integer (got %r)" % (count,)
                )
            if count <= 0:
                raise ValueError(
                    "count must be a positive integer (got %r)" % (count,)
                )
        if not isinstance(offset, int):
            raise TypeError(
                "offset must be a non-negative integer (got %r)" % (offset,)
            )
        if offset < 0:
            raise ValueError(
                "offset must be a non-negative integer (got %r)" % (offset,)
            )
        try:
            return await self._sock_sendfile_native(sock, file, offset, count)
        except asyncio.SendfileNotAvailableError:
            if not fallback:
                raise
        return await self._sock_sendfile_fallback(sock, file, offset, count)

    async def _sock_sendfile_native(self, sock, file, offset, count):
        if not hasattr(os, "sendfile"):
            raise asyncio.SendfileNotAvailableError(
                "os.sendfile() is not available"
            )
        try:
            fileno = file.fileno()
            size = os.fstat(fileno).st_size
        except (AttributeError, OSError, ValueError) as e:
            # io.UnsupportedOperation is an OSError and a ValueError
            raise asyncio.SendfileNotAvailableError(
                "not a regular file"
            ) from e
        block = count if count else size
        if not block:
            return 0
        total = 0
        sent_pos = [offset]
        try:
            while count is None or total < count:
                want = (count - total) if count else block
                try:
                    n = os.sendfile(sock.fileno(), fileno, sent_pos[0], want)
                except _WOULD_BLOCK:
                    n = await self._sock_wait(
                        sock,
                        True,
                        os.sendfile,
                        sock.fileno(),
                        fileno,
                        sent_pos[0],
                        want,
                    )
                except OSError as exc:
                    if total == 0:
                        raise asyncio.SendfileNotAvailableError(
                            "os.sendfile call failed"
                        ) from exc
                    raise
                if n == 0:
                    break  # the end of the file
                total += n
                sent_pos[0] += n
        finally:
            if total > 0:
                os.lseek(fileno, offset + total, os.SEEK_SET)
        return total

    async def _sock_sendfile_fallback(self, sock, file, offset, count):
        if offset:
            file.seek(offset)
        block = min(count, _SENDFILE_BLOCK) if count else _SENDFILE_BLOCK
        buf = bytearray(block)
        total = 0
        try:
            while True:
                if count:
                    block = min(count - total, block)
                    if block <= 0:
                        break
                view = memoryview(buf)[:block]
                got = await self.run_in_executor(None, file.readinto, view)
                if not got:
                    break
                await self.sock_sendall(sock, view[:got])
                total += got
            return total
        finally:
            if total > 0 and hasattr(file, "seek"):
                file.seek(offset + total)


@ffi.def_extern()
def _uvapy_fd_step(ctask, status, data):
    w = ffi.from_handle(data)
    try:
        return w.step(ctask)
    except (SystemExit, KeyboardInterrupt) as e:  # nothing unwinds through C
        w.in_step = False
        w.loop._abort_run(e)
        lib.uva_task_yield(ctask)
        return _TASK_PENDING
    except BaseException as e:
        w.in_step = False
        w.loop.call_exception_handler(
            {"message": "Error in a descriptor watcher", "exception": e}
        )
        lib.uva_task_yield(ctask)
        return _TASK_PENDING
