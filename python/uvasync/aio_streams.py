"""asyncio's stream transports on the core's streams (issue 25): TCP, Unix
and pipe transports, create_connection, create_server and its Server,
create_unix_connection/create_unix_server, connect_accepted_socket,
connect_read_pipe/connect_write_pipe, sendfile, start_tls. EventLoop
(aio_loop.py) takes these methods from StreamsMixin.

Sockets are made, bound and connected here with the socket module (so
every option asyncio takes applies), then handed to a core stream
(aio_transport.py); listening sockets are watched by the core's descriptor
poll and accepted here, once per connection."""

import asyncio
import collections
import errno
import functools
import io
import itertools
import os
import socket
import stat
import sys
import types
import weakref
from asyncio import sslproto, staggered, trsock
from asyncio.constants import _SendfileMode

from . import files
from ._cext import sleep as _native_sleep
from ._ffi import NULL, ffi, lib
from ._internal import _PENDING
from .aio_transport import (
    ReadPipeTransport,
    SocketTransport,
    WritePipeTransport,
    native,
    sock_connect,
)
from .core import Task
from .poll import Poll

try:
    import ssl as _ssl
except ImportError:  # pragma: no cover
    _ssl = None

_PY311 = sys.version_info >= (3, 11)
_PY312 = sys.version_info >= (3, 12)
_PY313 = sys.version_info >= (3, 13)
# errors of accept() that a server waits out (asyncio's list)
_ACCEPT_RETRY = (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM)


def _interleave(infos, first_family_count):
    """asyncio's interleave: addresses of alternating families, the first
    family first_family_count times at the start."""
    by_family = collections.OrderedDict()
    for info in infos:
        by_family.setdefault(info[0], []).append(info)
    lists = list(by_family.values())
    out = []
    if first_family_count > 1:
        out.extend(lists[0][: first_family_count - 1])
        del lists[0][: first_family_count - 1]
    for group in itertools.zip_longest(*lists):
        out.extend(a for a in group if a is not None)
    return out


def _ssl_kwargs(handshake_timeout, shutdown_timeout):
    kw = {"ssl_handshake_timeout": handshake_timeout}
    if _PY311:
        kw["ssl_shutdown_timeout"] = shutdown_timeout
    return kw


def _check_ssl_args(ssl, handshake_timeout, shutdown_timeout):
    if handshake_timeout is not None and not ssl:
        raise ValueError("ssl_handshake_timeout is only meaningful with ssl")
    if shutdown_timeout is not None and not ssl:
        raise ValueError("ssl_shutdown_timeout is only meaningful with ssl")


def _check_not_ssl_sock(sock):
    if _ssl is not None and isinstance(sock, _ssl.SSLSocket):
        raise TypeError("Socket cannot be of type SSLSocket")


def _check_stream_sock(sock):
    if sock.type != socket.SOCK_STREAM:
        raise ValueError("A Stream Socket was expected, got %r" % (sock,))
    _check_not_ssl_sock(sock)


def _check_sock_or_host_port(sock, host, port):
    """asyncio's order of checks: an SSLSocket first, then host/port with a
    sock (ValueError whatever sock is), then the kind of socket."""
    if sock is not None:
        _check_not_ssl_sock(sock)
    if host is not None or port is not None:
        if sock is not None:
            raise ValueError(
                "host/port and sock can not be specified at the same time"
            )
    elif sock is not None:
        _check_stream_sock(sock)


class Server(asyncio.AbstractServer):
    """What create_server returns (asyncio.Server's API): listening
    sockets whose connections each get a protocol and a transport."""

    def __init__(self, loop, sockets, protocol_factory, ssl, backlog, hs, sd):
        self._loop = loop
        self._sockets = sockets
        self._protocol_factory = protocol_factory
        self._ssl = ssl
        self._backlog = backlog
        self._ssl_handshake_timeout = hs
        self._ssl_shutdown_timeout = sd
        self._active_count = 0
        self._clients = weakref.WeakSet()
        self._waiters = []
        self._serving = False
        self._serving_forever_fut = None
        self._watchers = []  # (Poll, Task) per listening socket
        self._unix_path = None  # (path, inode): unlinked at close (3.13)

    def __repr__(self):
        return "<%s sockets=%r>" % (type(self).__name__, self.sockets)

    def _attach(self, transport):
        self._active_count += 1
        self._clients.add(transport)

    def _detach(self, transport):
        self._active_count -= 1
        self._clients.discard(transport)
        if self._active_count == 0 and self._sockets is None:
            self._wakeup()

    def _wakeup(self):
        waiters, self._waiters = self._waiters, None
        for w in waiters or ():
            if not w.done():
                w.set_result(None)

    def _start_serving(self):
        if self._serving:
            return
        self._serving = True
        for sock in self._sockets:
            sock.listen(self._backlog)
            poll = Poll(sock.fileno(), self._loop)
            task = Task(self._accept_loop(sock, poll), self._loop)
            self._watchers.append((poll, task))

    async def _accept_loop(self, sock, poll):
        """A native task per listening socket: wait in the core's poll,
        then accept what is there."""
        loop = self._loop
        while self._serving:
            try:
                await poll.wait(lib.UVA_READABLE)
            except OSError:
                return  # the poll was closed: the server stops
            for _ in range(self._backlog):
                try:
                    conn, addr = sock.accept()
                except (BlockingIOError, InterruptedError):
                    break
                except OSError as exc:
                    if exc.errno not in _ACCEPT_RETRY:
                        raise
                    loop.call_exception_handler(
                        {
                            "message": "socket.accept() out of system resource",
                            "exception": exc,
                            "socket": trsock.TransportSocket(sock),
                        }
                    )
                    await _native_sleep(1)  # a native task's sleep
                    break
                self._accepted(conn, addr)

    def _accepted(self, conn, addr):
        loop = self._loop
        try:
            conn.setblocking(False)
            protocol = self._protocol_factory()
            if self._ssl:
                waiter = loop.create_future()
                transport = loop._aio_ssl_transport(
                    conn,
                    protocol,
                    self._ssl,
                    waiter,
                    True,
                    None,
                    self._ssl_handshake_timeout,
                    self._ssl_shutdown_timeout,
                    server=self,
                )
                loop.create_task(
                    self._await_handshake(waiter, transport, addr)
                )
            else:
                SocketTransport(
                    loop, conn, protocol, None, {"peername": addr}, self
                )
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as exc:
            conn.close()
            loop.call_exception_handler(
                {
                    "message": "Error on transport creation for incoming "
                    "connection",
                    "exception": exc,
                }
            )

    async def _await_handshake(self, waiter, transport, addr):
        try:
            await waiter
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as exc:
            transport.close()
            if self._loop.get_debug():
                self._loop.call_exception_handler(
                    {
                        "message": "Error on transport creation for incoming "
                        "connection",
                        "exception": exc,
                    }
                )

    def _stop_serving(self):
        for poll, task in self._watchers:
            poll.close()
            task.cancel()
        self._watchers = []

    # -- asyncio.AbstractServer ----------------------------------------------

    def get_loop(self):
        return self._loop

    def is_serving(self):
        return self._serving

    @property
    def sockets(self):
        if self._sockets is None:
            return ()
        return tuple(trsock.TransportSocket(s) for s in self._sockets)

    def close(self):
        sockets = self._sockets
        if sockets is None:
            return
        self._sockets = None
        self._stop_serving()
        for sock in sockets:
            sock.close()
        if self._unix_path is not None:
            path, ino = self._unix_path
            self._unix_path = None
            try:
                if os.stat(path).st_ino == ino:
                    os.unlink(path)
            except OSError:
                pass
        self._serving = False
        fut = self._serving_forever_fut
        if fut is not None and not fut.done():
            fut.cancel()
            self._serving_forever_fut = None
        if self._active_count == 0:
            self._wakeup()

    def close_clients(self):
        for transport in list(self._clients):
            transport.close()

    def abort_clients(self):
        for transport in list(self._clients):
            transport.abort()

    async def start_serving(self):
        self._start_serving()
        await asyncio.sleep(0)

    async def serve_forever(self):
        if self._serving_forever_fut is not None:
            raise RuntimeError(
                "server %r is already being awaited on serve_forever()" % self
            )
        if self._sockets is None:
            raise RuntimeError("server %r is closed" % self)
        self._start_serving()
        self._serving_forever_fut = self._loop.create_future()
        try:
            await self._serving_forever_fut
        except asyncio.CancelledError:
            try:
                self.close()
                await self.wait_closed()
            finally:
                raise
        finally:
            self._serving_forever_fut = None

    async def wait_closed(self):
        """Wait until the server is closed and (3.12+) every connection it
        accepted is gone."""
        if self._waiters is None:
            return
        if not _PY312 and self._sockets is None:
            return
        waiter = self._loop.create_future()
        self._waiters.append(waiter)
        await waiter


class _SendfileWaiter(asyncio.Protocol):
    """The protocol of a transport while sendfile's fallback writes to it:
    it waits for resume_writing between chunks and hands everything else
    to the transport's own protocol."""

    def __init__(self, transport):
        self._transport = transport
        self._proto = transport.get_protocol()
        self._ready = None
        self._was_reading = transport.is_reading()
        transport.pause_reading()
        transport.set_protocol(self)

    def pause_writing(self):
        if self._ready is None:
            self._ready = self._transport._loop.create_future()

    def resume_writing(self):
        ready, self._ready = self._ready, None
        if ready is not None and not ready.done():
            ready.set_result(None)

    def connection_lost(self, exc):
        ready, self._ready = self._ready, None
        if ready is not None and not ready.done():
            ready.set_exception(
                ConnectionError("Connection closed by peer")
                if exc is None
                else exc
            )
        self._proto.connection_lost(exc)

    def data_received(self, data):
        raise RuntimeError("Invalid state: reading should be paused")

    def eof_received(self):
        raise RuntimeError("Invalid state: reading should be paused")

    async def drain(self):
        if self._transport.is_closing():
            raise ConnectionError("Connection closed by peer")
        if self._ready is not None:
            await self._ready

    def restore(self):
        self._transport.set_protocol(self._proto)
        if self._was_reading:
            self._transport.resume_reading()


@types.coroutine
def _sendfile_job(stream, fd, offset, n):
    """The core's sendfile of n bytes of fd from offset, waited for:
    (bytes sent, 0 or the error code). The count is what went out also
    when it failed part-way (uva_fs_result)."""
    work = files._start(
        lambda c, loop: lib.uva_fs_sendfile(c, stream, fd, offset, n),
        "sendfile",
    )
    try:
        rc = lib.uva_work_wait(work, NULL)
        while rc == lib.UVA_EAGAIN:
            yield _PENDING
            rc = lib.uva_work_wait(work, NULL)
        sent = ffi.new("int64_t *")
        rc = lib.uva_fs_result(sent, work)
        return max(0, sent[0]), rc
    finally:
        lib.uva_work_close(work)


class StreamsMixin:
    """The stream-transport methods of EventLoop."""

    __slots__ = ()

    # -- transports ------------------------------------------------------------

    def _aio_ssl_transport(
        self,
        sock,
        protocol,
        sslcontext,
        waiter,
        server_side,
        server_hostname,
        hs_timeout,
        sd_timeout,
        server=None,
    ):
        """asyncio's own SSLProtocol over a plain transport; the
        application's transport is the SSL one."""
        if sslcontext is True:
            sslcontext = None  # SSLProtocol makes the default context
        ssl_protocol = sslproto.SSLProtocol(
            self,
            protocol,
            sslcontext,
            waiter,
            server_side,
            server_hostname,
            **_ssl_kwargs(hs_timeout, sd_timeout),
        )
        raw = SocketTransport(self, sock, ssl_protocol, None, None, server)
        # The addresses stay known to the TLS transport once the peer has
        # closed (SSLProtocol forgets the plain transport at
        # connection_lost), as they do on asyncio's loop.
        for name in ("sockname", "peername"):
            ssl_protocol._extra[name] = raw.get_extra_info(name)
        return ssl_protocol._app_transport

    async def _aio_connection_transport(
        self,
        sock,
        protocol_factory,
        ssl,
        server_hostname,
        server_side=False,
        hs_timeout=None,
        sd_timeout=None,
    ):
        sock.setblocking(False)
        protocol = protocol_factory()
        waiter = self.create_future()
        if ssl:
            transport = self._aio_ssl_transport(
                sock,
                protocol,
                ssl,
                waiter,
                server_side,
                server_hostname,
                hs_timeout,
                sd_timeout,
            )
        else:
            transport = SocketTransport(self, sock, protocol, waiter)
        try:
            await waiter
        except BaseException:
            transport.close()
            raise
        return transport, protocol

    # -- connections -------------------------------------------------------------

    async def _aio_resolve(self, address, family, proto, flags):
        host, port = address[:2]
        infos = await self.getaddrinfo(
            host,
            port,
            family=family,
            type=socket.SOCK_STREAM,
            proto=proto,
            flags=flags,
        )
        if not infos:
            raise OSError("getaddrinfo() returned empty list")
        return infos

    async def _aio_connect_sock(self, exceptions, info, local_infos):
        """One attempt of create_connection: a socket to info's address,
        bound to the first local address of its family."""
        mine = []
        exceptions.append(mine)
        family, type_, proto, _, address = info
        sock = None
        try:
            sock = socket.socket(family=family, type=type_, proto=proto)
            sock.setblocking(False)
            if local_infos is not None:
                for lfamily, _, _, _, laddr in local_infos:
                    if lfamily != family:
                        continue
                    try:
                        sock.bind(laddr)
                        break
                    except OSError as exc:
                        mine.append(
                            OSError(
                                exc.errno,
                                "error while attempting to bind on address "
                                "%r: %s" % (laddr, exc.strerror.lower()),
                            )
                        )
                else:
                    if mine:
                        raise mine.pop()
                    raise OSError(
                        "no matching local address with family=%d found"
                        % family
                    )
            await sock_connect(self, sock, address)
            return sock
        except OSError as exc:
            mine.append(exc)
            if sock is not None:
                sock.close()
            raise
        except BaseException:
            if sock is not None:
                sock.close()
            raise

    async def create_connection(
        self,
        protocol_factory,
        host=None,
        port=None,
        *,
        ssl=None,
        family=0,
        proto=0,
        flags=0,
        sock=None,
        local_addr=None,
        server_hostname=None,
        ssl_handshake_timeout=None,
        ssl_shutdown_timeout=None,
        happy_eyeballs_delay=None,
        interleave=None,
        all_errors=False,
    ):
        """A TCP connection (every resolved address tried in turn, or
        raced with happy_eyeballs_delay), with its transport and
        protocol."""
        if server_hostname is not None and not ssl:
            raise ValueError("server_hostname is only meaningful with ssl")
        if server_hostname is None and ssl:
            if not host:
                raise ValueError(
                    "You must set server_hostname when using ssl without a host"
                )
            server_hostname = host
        _check_ssl_args(ssl, ssl_handshake_timeout, ssl_shutdown_timeout)
        _check_sock_or_host_port(sock, host, port)
        if happy_eyeballs_delay is not None and interleave is None:
            interleave = 1
        if host is not None or port is not None:
            infos = await self._aio_resolve((host, port), family, proto, flags)
            local_infos = None
            if local_addr is not None:
                local_infos = await self._aio_resolve(
                    local_addr, family, proto, flags
                )
            if interleave:
                infos = _interleave(infos, interleave)
            exceptions = []
            if happy_eyeballs_delay is None:
                for info in infos:
                    try:
                        sock = await self._aio_connect_sock(
                            exceptions, info, local_infos
                        )
                        break
                    except OSError:
                        continue
            else:
                sock, _, _ = await staggered.staggered_race(
                    (
                        functools.partial(
                            self._aio_connect_sock,
                            exceptions,
                            info,
                            local_infos,
                        )
                        for info in infos
                    ),
                    happy_eyeballs_delay,
                    loop=self,
                )
            if sock is None:
                errs = [e for sub in exceptions for e in sub]
                if all_errors and _PY311:
                    raise ExceptionGroup("create_connection failed", errs)  # noqa: F821
                if len(errs) == 1:
                    raise errs[0]
                model = str(errs[0])
                if all(str(e) == model for e in errs):
                    raise errs[0]
                raise OSError(
                    "Multiple exceptions: {}".format(
                        ", ".join(str(e) for e in errs)
                    )
                )
        elif sock is None:
            raise ValueError(
                "host and port was not specified and no sock specified"
            )
        return await self._aio_connection_transport(
            sock,
            protocol_factory,
            ssl,
            server_hostname,
            hs_timeout=ssl_handshake_timeout,
            sd_timeout=ssl_shutdown_timeout,
        )

    async def create_unix_connection(
        self,
        protocol_factory,
        path=None,
        *,
        ssl=None,
        sock=None,
        server_hostname=None,
        ssl_handshake_timeout=None,
        ssl_shutdown_timeout=None,
    ):
        """A connection to a Unix-domain socket (path or sock)."""
        if ssl:
            if server_hostname is None:
                raise ValueError(
                    "you have to pass server_hostname when using ssl"
                )
        else:
            if server_hostname is not None:
                raise ValueError("server_hostname is only meaningful with ssl")
            _check_ssl_args(ssl, ssl_handshake_timeout, ssl_shutdown_timeout)
        if path is not None:
            if sock is not None:
                raise ValueError(
                    "path and sock can not be specified at the same time"
                )
            path = os.fspath(path)
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM, 0)
            try:
                sock.setblocking(False)
                await sock_connect(self, sock, path)
            except BaseException:
                sock.close()
                raise
        else:
            if sock is None:
                raise ValueError("no path and sock were specified")
            if (
                sock.family != socket.AF_UNIX
                or sock.type != socket.SOCK_STREAM
            ):
                raise ValueError(
                    "A UNIX Domain Stream Socket was expected, got %r"
                    % (sock,)
                )
        return await self._aio_connection_transport(
            sock,
            protocol_factory,
            ssl,
            server_hostname,
            hs_timeout=ssl_handshake_timeout,
            sd_timeout=ssl_shutdown_timeout,
        )

    async def connect_accepted_socket(
        self,
        protocol_factory,
        sock,
        *,
        ssl=None,
        ssl_handshake_timeout=None,
        ssl_shutdown_timeout=None,
    ):
        """A transport for a socket accepted elsewhere (server side)."""
        _check_stream_sock(sock)
        _check_ssl_args(ssl, ssl_handshake_timeout, ssl_shutdown_timeout)
        return await self._aio_connection_transport(
            sock,
            protocol_factory,
            ssl,
            "",
            server_side=True,
            hs_timeout=ssl_handshake_timeout,
            sd_timeout=ssl_shutdown_timeout,
        )

    # -- servers -------------------------------------------------------------------

    async def create_server(
        self,
        protocol_factory,
        host=None,
        port=None,
        *,
        family=socket.AF_UNSPEC,
        flags=socket.AI_PASSIVE,
        sock=None,
        backlog=100,
        ssl=None,
        reuse_address=None,
        reuse_port=None,
        keep_alive=None,
        ssl_handshake_timeout=None,
        ssl_shutdown_timeout=None,
        start_serving=True,
    ):
        """A TCP server on every address of host (None or '': all
        interfaces; a list: each host), or on sock."""
        if isinstance(ssl, bool):
            raise TypeError("ssl argument must be an SSLContext or None")
        _check_ssl_args(ssl, ssl_handshake_timeout, ssl_shutdown_timeout)
        _check_sock_or_host_port(sock, host, port)
        if host is not None or port is not None:
            if reuse_address is None:
                reuse_address = os.name == "posix" and sys.platform != "cygwin"
            if host == "":
                hosts = [None]
            elif isinstance(host, str) or not isinstance(
                host, collections.abc.Iterable
            ):
                hosts = [host]
            else:
                hosts = host
            found = await asyncio.gather(
                *[
                    self._aio_resolve((h, port), family, 0, flags)
                    for h in hosts
                ]
            )
            infos = set(itertools.chain.from_iterable(found))
            sockets = []
            completed = False
            try:
                for af, socktype, proto, _, sa in infos:
                    try:
                        s = socket.socket(af, socktype, proto)
                    except OSError:
                        continue  # this kind of socket is not supported
                    sockets.append(s)
                    if reuse_address:
                        s.setsockopt(
                            socket.SOL_SOCKET, socket.SO_REUSEADDR, True
                        )
                    if reuse_port:
                        if not hasattr(socket, "SO_REUSEPORT"):
                            raise ValueError(
                                "reuse_port not supported by socket module"
                            )
                        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
                    if keep_alive:
                        s.setsockopt(
                            socket.SOL_SOCKET, socket.SO_KEEPALIVE, True
                        )
                    if af == socket.AF_INET6:
                        s.setsockopt(
                            socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, True
                        )
                    try:
                        s.bind(sa)
                    except OSError as err:
                        msg = (
                            "error while attempting to bind on address %r: %s"
                            % (
                                sa,
                                (err.strerror or "").lower(),
                            )
                        )
                        if err.errno == errno.EADDRNOTAVAIL:
                            msg += " (the address may be unavailable here)"
                        raise OSError(err.errno, msg) from None
                completed = True
            finally:
                if not completed:
                    for s in sockets:
                        s.close()
        else:
            if sock is None:
                raise ValueError("Neither host/port nor sock were specified")
            sockets = [sock]
        for s in sockets:
            s.setblocking(False)
        server = Server(
            self,
            sockets,
            protocol_factory,
            ssl,
            backlog,
            ssl_handshake_timeout,
            ssl_shutdown_timeout,
        )
        if start_serving:
            server._start_serving()
            await asyncio.sleep(0)
        return server

    async def create_unix_server(
        self,
        protocol_factory,
        path=None,
        *,
        sock=None,
        backlog=100,
        ssl=None,
        ssl_handshake_timeout=None,
        ssl_shutdown_timeout=None,
        start_serving=True,
        cleanup_socket=True,
    ):
        """A server on a Unix-domain socket path (a stale socket file there
        is replaced) or sock."""
        if isinstance(ssl, bool):
            raise TypeError("ssl argument must be an SSLContext or None")
        _check_ssl_args(ssl, ssl_handshake_timeout, ssl_shutdown_timeout)
        if path is not None:
            if sock is not None:
                raise ValueError(
                    "path and sock can not be specified at the same time"
                )
            path = os.fspath(path)
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            if path[0] not in (0, "\x00"):  # not an abstract socket
                try:
                    if stat.S_ISSOCK(os.stat(path).st_mode):
                        os.remove(path)
                except FileNotFoundError:
                    pass
                except OSError:
                    pass
            try:
                sock.bind(path)
            except OSError as exc:
                sock.close()
                if exc.errno == errno.EADDRINUSE:
                    raise OSError(
                        errno.EADDRINUSE, "Address %r is already in use" % path
                    ) from None
                raise
            except BaseException:
                sock.close()
                raise
        else:
            if sock is None:
                raise ValueError(
                    "path was not specified, and no sock specified"
                )
            if (
                sock.family != socket.AF_UNIX
                or sock.type != socket.SOCK_STREAM
            ):
                raise ValueError(
                    "A UNIX Domain Stream Socket was expected, got %r"
                    % (sock,)
                )
        sock.setblocking(False)
        server = Server(
            self,
            [sock],
            protocol_factory,
            ssl,
            backlog,
            ssl_handshake_timeout,
            ssl_shutdown_timeout,
        )
        if _PY313 and cleanup_socket:
            name = sock.getsockname()
            if isinstance(name, str) and name and name[0] != "\x00":
                try:
                    server._unix_path = (name, os.stat(name).st_ino)
                except OSError:
                    pass
        if start_serving:
            server._start_serving()
            await asyncio.sleep(0)
        return server

    # -- pipes -----------------------------------------------------------------------

    async def connect_read_pipe(self, protocol_factory, pipe):
        """A read transport on a pipe (or socket, character device)."""
        return await self._connect_pipe(
            ReadPipeTransport, protocol_factory, pipe
        )

    async def connect_write_pipe(self, protocol_factory, pipe):
        """A write transport on a pipe (or socket, character device)."""
        return await self._connect_pipe(
            WritePipeTransport, protocol_factory, pipe
        )

    async def _connect_pipe(self, transport_cls, protocol_factory, pipe):
        protocol = protocol_factory()
        waiter = self.create_future()
        transport = transport_cls(self, pipe, protocol, waiter)
        try:
            await waiter
        except BaseException:
            transport.close()
            raise
        return transport, protocol

    # -- TLS and sendfile --------------------------------------------------------------

    async def start_tls(
        self,
        transport,
        protocol,
        sslcontext,
        *,
        server_side=False,
        server_hostname=None,
        ssl_handshake_timeout=None,
        ssl_shutdown_timeout=None,
    ):
        """Upgrade a connection to TLS with asyncio's SSLProtocol; the new
        (TLS) transport."""
        if _ssl is None:
            raise RuntimeError("Python ssl module is not available")
        if not isinstance(sslcontext, _ssl.SSLContext):
            raise TypeError(
                "sslcontext is expected to be an instance of ssl.SSLContext, "
                "got %r" % (sslcontext,)
            )
        if not getattr(transport, "_start_tls_compatible", False):
            raise TypeError(
                "transport %r is not supported by start_tls()" % (transport,)
            )
        waiter = self.create_future()
        ssl_protocol = sslproto.SSLProtocol(
            self,
            protocol,
            sslcontext,
            waiter,
            server_side,
            server_hostname,
            call_connection_made=False,
            **_ssl_kwargs(ssl_handshake_timeout, ssl_shutdown_timeout),
        )
        transport.pause_reading()
        transport.set_protocol(ssl_protocol)
        made = self.call_soon(ssl_protocol.connection_made, transport)
        resumed = self.call_soon(transport.resume_reading)
        try:
            await waiter
        except BaseException:
            transport.close()
            made.cancel()
            resumed.cancel()
            raise
        return ssl_protocol._app_transport

    async def sendfile(
        self, transport, file, offset=0, count=None, *, fallback=True
    ):
        """Send a file over a transport: the core's sendfile (a pool thread
        runs sendfile(2), after the bytes already queued) for a plain
        transport and a regular file, else chunks read in the executor and
        written with flow control (fallback=True)."""
        if transport.is_closing():
            raise RuntimeError("Transport is closing")
        if "b" not in getattr(file, "mode", "b"):
            raise ValueError("file should be opened in binary mode")
        if not isinstance(offset, int):
            raise TypeError(
                "offset must be a non-negative integer (got %r)" % offset
            )
        if offset < 0:
            raise ValueError(
                "offset must be a non-negative integer (got %r)" % offset
            )
        if count is not None:
            if not isinstance(count, int):
                raise TypeError(
                    "count must be a positive integer (got %r)" % count
                )
            if count <= 0:
                raise ValueError(
                    "count must be a positive integer (got %r)" % count
                )
        mode = getattr(
            transport, "_sendfile_compatible", _SendfileMode.UNSUPPORTED
        )
        if mode is _SendfileMode.UNSUPPORTED:
            raise RuntimeError(
                "sendfile is not supported for transport %r" % (transport,)
            )
        if mode is _SendfileMode.TRY_NATIVE:
            try:
                return await self._sendfile_native(
                    transport, file, offset, count
                )
            except asyncio.SendfileNotAvailableError:
                if not fallback:
                    raise
        if not fallback:
            raise RuntimeError(
                "fallback is disabled and native sendfile is not supported "
                "for transport %r" % (transport,)
            )
        return await self._sendfile_fallback(transport, file, offset, count)

    async def _sendfile_native(self, transport, file, offset, count):
        """The core's sendfile on a plain transport (asyncio's hook of the
        same name): SendfileNotAvailableError for what it cannot send.
        Writes meanwhile raise RuntimeError, as asyncio's do."""
        try:
            fd = file.fileno()
        except (AttributeError, io.UnsupportedOperation) as exc:
            raise asyncio.SendfileNotAvailableError(
                "not a regular file"
            ) from exc
        try:
            regular = stat.S_ISREG(os.fstat(fd).st_mode)
        except OSError:
            regular = False
        if not regular:
            raise asyncio.SendfileNotAvailableError("not a regular file")
        core = transport._core
        if not core.stream:
            raise ConnectionError("Connection closed by peer")
        h = ffi.cast("uva_stream_t *", core.stream)
        # To the end of the file as it is now, as asyncio: the job then
        # ends with the last byte, not at a further read of the file that
        # a peer closing meanwhile could fail.
        n = count if count else max(0, os.fstat(fd).st_size - offset)
        if n == 0:
            return 0
        reading = transport.is_reading()
        transport.pause_reading()
        core.sendfile_busy = True
        try:
            sent, rc = await native(self, _sendfile_job(h, fd, offset, n))
        finally:
            core.sendfile_busy = False
            if reading:
                transport.resume_reading()
        # Past what went out, even when the peer stopped it part-way.
        file.seek(offset + sent)
        if rc < 0:
            exc = files._fs_error(rc, "sendfile")
            if transport.is_closing() or not core.stream:
                raise ConnectionError("Connection closed by peer") from exc
            raise exc
        return sent

    async def _sendfile_fallback(self, transport, file, offset, count):
        if offset:
            file.seek(offset)
        chunk = min(count, 16384) if count else 16384
        total = 0
        waiter = _SendfileWaiter(transport)
        try:
            while True:
                size = chunk if count is None else min(chunk, count - total)
                if size <= 0:
                    break
                data = await self.run_in_executor(None, file.read, size)
                if not data:
                    break
                await waiter.drain()
                transport.write(data)
                total += len(data)
            await waiter.drain()
            return total
        finally:
            if total:
                file.seek(offset + total)
            waiter.restore()
