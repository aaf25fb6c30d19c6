"""asyncio's datagram transports on the core's UDP sockets (issue 25):
create_datagram_endpoint. EventLoop (aio_loop.py) takes it from
DatagramMixin.

Two transports, one protocol behaviour:

- _CoreDatagramTransport, for IPv4/IPv6 endpoints the loop makes from
  local_addr and/or remote_addr: a core UDP socket (uva_udp_*). The core
  reads the datagrams (edge-triggered on Linux) and queues them whole; a
  small core task whose step is a Python callback (_uvapy_udp_step) hands
  each to datagram_received. Sends go to the kernel at once, and the core
  copies and queues a send that would block (so the protocol is never
  paused: get_write_buffer_size() is 0; the core does not say how much it
  holds). The core owns its socket; get_extra_info("socket") is asyncio's
  TransportSocket over a duplicate of its descriptor (uva_udp_fileno),
  made when first asked for, so getsockopt/setsockopt act on it.
- _SocketDatagramTransport, for what the core's UDP cannot do: a socket
  given with sock=, AF_UNIX datagram sockets, reuse_port, allow_broadcast,
  a protocol number, and an endpoint with neither address. It is asyncio's
  selector transport on the core's descriptor poll (aio_sockets.py):
  recvfrom when readable, sends buffered while the kernel is full, with
  pause_writing/resume_writing at the write-buffer limits.
"""

import asyncio
import collections
import os
import socket
import stat
import sys
import warnings

from ._ffi import NULL, check, error, ffi, lib

_EAGAIN = lib.UVA_EAGAIN
_ECLOSED = lib.UVA_ECLOSED
_TASK_PENDING = lib.UVA_TASK_PENDING

_MAX_DATAGRAM = 256 * 1024  # what one recvfrom asks for (asyncio's)
_BURST = 64  # datagrams delivered in one step before others run
_HOSTLEN = 64
_SEND_EMPTY = sys.version_info >= (3, 13)  # older asyncio drops b""

_WOULD_BLOCK = (BlockingIOError, InterruptedError)

# asyncio's words for a sock= that is no datagram socket (3.13 changed them)
if sys.version_info >= (3, 13):
    _WRONG_SOCK = "A datagram socket was expected"
else:
    _WRONG_SOCK = "A UDP Socket was expected"


def _check_data(data):
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(
            "data argument must be a bytes-like object, not %r"
            % (type(data).__name__,)
        )


class _DatagramTransport(asyncio.DatagramTransport, asyncio.Transport):
    """What both transports share: the protocol, closing, the write-buffer
    limits and the extra info. An asyncio.Transport too, as asyncio's
    datagram transport is (CPython's tests check it)."""

    def __init__(self, loop, protocol, address, extra):
        super().__init__(extra)
        self._loop = loop
        self._protocol = protocol
        self._address = address  # the connected peer, or None
        self._closing = False
        self._conn_lost = 0
        self._protocol_paused = False
        self._high_water = 64 * 1024
        self._low_water = 16 * 1024

    def __repr__(self):
        state = "closing" if self._closing else "open"
        return "<%s %s>" % (type(self).__name__, state)

    def get_protocol(self):
        return self._protocol

    def set_protocol(self, protocol):
        self._protocol = protocol

    def is_closing(self):
        return self._closing

    def get_write_buffer_limits(self):
        return (self._low_water, self._high_water)

    def set_write_buffer_limits(self, high=None, low=None):
        if high is None:
            high = 64 * 1024 if low is None else 4 * low
        if low is None:
            low = high // 4
        if not high >= low >= 0:
            raise ValueError(
                "high (%r) must be >= low (%r) must be >= 0" % (high, low)
            )
        self._high_water = high
        self._low_water = low
        self._maybe_pause_protocol()

    def _maybe_pause_protocol(self):
        if self.get_write_buffer_size() <= self._high_water:
            return
        if not self._protocol_paused:
            self._protocol_paused = True
            self._call_protocol("pause_writing")

    def _maybe_resume_protocol(self):
        if self._protocol_paused and (
            self.get_write_buffer_size() <= self._low_water
        ):
            self._protocol_paused = False
            self._call_protocol("resume_writing")

    def _call_protocol(self, name, *args):
        """A protocol method called from the transport's own code: an
        exception goes to the loop's handler, as a callback's would."""
        try:
            getattr(self._protocol, name)(*args)
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._loop.call_exception_handler(
                {
                    "message": "protocol.%s() failed." % name,
                    "exception": exc,
                    "transport": self,
                    "protocol": self._protocol,
                }
            )

    def _check_sendto(self, data, addr):
        """The address to send to (None: the connected peer); None from
        the caller means nothing is to be sent."""
        _check_data(data)
        if self._address:
            if addr not in (None, self._address):
                raise ValueError(
                    "Invalid address: must be None or %s" % (self._address,)
                )
            addr = self._address
        return addr

    def _fatal_error(self, exc, message="Fatal error on datagram transport"):
        if not isinstance(exc, OSError):
            self._loop.call_exception_handler(
                {
                    "message": message,
                    "exception": exc,
                    "transport": self,
                    "protocol": self._protocol,
                }
            )
        self._force_close(exc)

    def close(self):
        """Close once what is buffered is sent; connection_lost(None)."""
        if self._closing:
            return
        self._closing = True
        self._stop_reading()
        if not self.get_write_buffer_size():
            self._conn_lost += 1
            self._loop.call_soon(self._call_connection_lost, None)

    def abort(self):
        """Close now, dropping what is buffered; connection_lost(None)."""
        self._force_close(None)

    def _force_close(self, exc):
        if self._conn_lost:
            return
        self._drop_buffer()
        if not self._closing:
            self._closing = True
            self._stop_reading()
        self._conn_lost += 1
        self._loop.call_soon(self._call_connection_lost, exc)

    def _call_connection_lost(self, exc):
        try:
            self._protocol.connection_lost(exc)
        finally:
            self._close_io()
            self._protocol = None

    def __del__(self, _warn=warnings.warn):
        if not self._conn_lost and self._io_open():
            _warn(
                "unclosed transport %r" % (self,), ResourceWarning, source=self
            )
            self._close_io()


# --------------------------------------------------------------------------
# On the core's UDP
# --------------------------------------------------------------------------


class _CoreDatagramTransport(_DatagramTransport):
    """A datagram transport on a core UDP socket."""

    def __init__(self, loop, handle, protocol, address, family):
        self._h = handle  # uva_udp_t *, None once closed
        self._family = family
        self._ctask = None
        self._sock = None  # the socket lent to get_extra_info, once asked
        extra = {"peername": address}
        super().__init__(loop, protocol, address, extra)
        self._host = ffi.new("char[]", _HOSTLEN)
        self._port = ffi.new("int *")
        self._extra["sockname"] = self._local_address()
        self._cdata = ffi.new_handle(self)
        loop._bind(self)
        loop.call_soon(protocol.connection_made, self)
        loop.call_soon(self._start_reading)

    def get_extra_info(self, name, default=None):
        if name == "socket" and "socket" not in self._extra:
            self._extra["socket"] = self._lend_socket()
        return super().get_extra_info(name, default)

    def _lend_socket(self):
        """asyncio's TransportSocket over a socket object of its own on
        the core socket (a duplicate descriptor: closing it leaves the
        core's alone); None once closed."""
        if self._h is None:
            return None
        fd = ffi.new("int *")
        check(lib.uva_udp_fileno(fd, self._h), "fileno")
        self._sock = socket.fromfd(fd[0], self._family, socket.SOCK_DGRAM)
        return asyncio.trsock.TransportSocket(self._sock)

    def _local_address(self):
        check(
            lib.uva_udp_local_address(
                self._h, self._host, _HOSTLEN, self._port
            ),
            "getsockname",
        )
        return self._addr()

    def _addr(self):
        host = ffi.string(self._host).decode()
        if self._family == socket.AF_INET6:
            return (host, self._port[0], 0, 0)
        return (host, self._port[0])

    def _start_reading(self):
        if self._closing or self._h is None:
            return
        cell = ffi.new("uva_task_t **")
        check(
            lib.uva_task_spawn(
                cell, self._loop._ptr(), lib._uvapy_udp_step, self._cdata, NULL
            ),
            "datagram receiver",
        )
        self._ctask = cell[0]
        lib.uva_task_unref(self._ctask)  # a receiver keeps no loop running
        self._loop._keep.add(self._cdata)

    def _step(self, ctask):
        """The receiver's step: hand over what the core holds, then wait."""
        loop = self._loop
        buf = loop._rbuf
        cell = loop._size_cell
        for _ in range(_BURST):
            h = self._h
            if h is None or self._closing:
                return self._end()
            rc = lib.uva_udp_recv(
                cell,
                h,
                ctask,
                buf,
                _MAX_DATAGRAM,
                self._host,
                _HOSTLEN,
                self._port,
            )
            if rc == 0:
                data = ffi.unpack(buf, cell[0])
                self._deliver("datagram_received", data, self._addr())
            elif rc == _EAGAIN:
                return _TASK_PENDING
            elif rc == _ECLOSED:
                return self._end()
            else:
                self._deliver("error_received", error(rc, "recvfrom"))
        lib.uva_task_yield(ctask)  # let the rest of the loop run
        return _TASK_PENDING

    def _deliver(self, name, *args):
        try:
            getattr(self._protocol, name)(*args)
        except (SystemExit, KeyboardInterrupt) as e:
            self._loop._abort_run(e)
        except BaseException as exc:
            self._loop.call_exception_handler(
                {
                    "message": "Exception in protocol.%s()" % name,
                    "exception": exc,
                    "transport": self,
                    "protocol": self._protocol,
                }
            )

    def _end(self):
        ctask, self._ctask = self._ctask, None
        if ctask is not None:
            lib.uva_task_release(ctask)
        self._loop._keep.discard(self._cdata)
        return 0

    def _stop_reading(self):
        ctask = self._ctask
        if ctask is not None and self._h is not None:
            lib.uva_task_withdraw(ctask, self._h)
            lib.uva_task_wake(ctask)  # its step sees the closing and ends

    def sendto(self, data, addr=None):
        addr = self._check_sendto(data, addr)
        if not data and not _SEND_EMPTY:
            return
        if self._conn_lost or self._h is None:
            self._conn_lost += 1
            return
        buf = ffi.from_buffer(data)
        if addr is None or self._address is not None:
            rc = lib.uva_udp_send(self._h, buf, len(buf), NULL, 0)
        else:
            host = addr[0].encode() if isinstance(addr[0], str) else addr[0]
            rc = lib.uva_udp_send(self._h, buf, len(buf), host, int(addr[1]))
        if rc < 0:
            # as asyncio's transport: an error of the send is the
            # protocol's to hear, not the caller's to catch
            self._call_protocol("error_received", error(rc, "sendto"))

    def get_write_buffer_size(self):
        return 0  # the core queues what would block, without a limit

    def _drop_buffer(self):
        pass

    def _io_open(self):
        return self._h is not None

    def _close_io(self):
        h, self._h = self._h, None
        sock, self._sock = self._sock, None
        if sock is not None:
            sock.close()
        if h is not None:
            lib.uva_udp_close(h, NULL, NULL)
            ctask = self._ctask
            if ctask is not None:
                lib.uva_task_wake(ctask)

    # the loop closes
    def _detach(self):
        self._closing = True
        self._close_io()


@ffi.def_extern()
def _uvapy_udp_step(ctask, status, data):
    transport = ffi.from_handle(data)
    try:
        return transport._step(ctask)
    except BaseException as e:  # nothing may unwind through C
        transport._loop.call_exception_handler(
            {"message": "Error in a datagram receiver", "exception": e}
        )
        return transport._end()


# --------------------------------------------------------------------------
# On a socket and the core's descriptor poll
# --------------------------------------------------------------------------


class _SocketDatagramTransport(_DatagramTransport):
    """asyncio's selector datagram transport, on the core's poll."""

    def __init__(self, loop, sock, protocol, address):
        self._sock = sock
        self._fd = sock.fileno()
        self._buffer = collections.deque()
        self._buffer_size = 0
        extra = {"socket": asyncio.trsock.TransportSocket(sock)}
        try:
            extra["sockname"] = sock.getsockname()
        except OSError:
            extra["sockname"] = None
        try:
            extra["peername"] = sock.getpeername()
        except OSError:
            extra["peername"] = None
        super().__init__(loop, protocol, address, extra)
        loop.call_soon(protocol.connection_made, self)
        loop.call_soon(self._start_reading)

    def _start_reading(self):
        if not self._closing:
            self._loop._add_reader(self._fd, self._read_ready)

    def _stop_reading(self):
        self._loop._unwatch(self._fd, False)

    def _read_ready(self):
        if self._conn_lost:
            return
        try:
            data, addr = self._sock.recvfrom(_MAX_DATAGRAM)
        except _WOULD_BLOCK:
            pass
        except OSError as exc:
            self._protocol.error_received(exc)
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._fatal_error(exc, "Fatal read error on datagram transport")
        else:
            self._protocol.datagram_received(data, addr)

    def sendto(self, data, addr=None):
        addr = self._check_sendto(data, addr)
        if not data and not _SEND_EMPTY:
            return
        if self._conn_lost:
            self._conn_lost += 1
            return
        if not self._buffer:
            try:
                if self._extra["peername"]:
                    self._sock.send(data)
                else:
                    self._sock.sendto(data, addr)
                return
            except _WOULD_BLOCK:
                self._loop._add_writer(self._fd, self._write_ready)
            except OSError as exc:
                self._protocol.error_received(exc)
                return
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException as exc:
                self._fatal_error(
                    exc, "Fatal write error on datagram transport"
                )
                return
        data = bytes(data)  # the caller may change its buffer
        self._buffer.append((data, addr))
        self._buffer_size += len(data)
        self._maybe_pause_protocol()

    def _write_ready(self):
        while self._buffer:
            data, addr = self._buffer.popleft()
            try:
                if self._extra["peername"]:
                    self._sock.send(data)
                else:
                    self._sock.sendto(data, addr)
            except _WOULD_BLOCK:
                self._buffer.appendleft((data, addr))
                break
            except OSError as exc:
                self._buffer_size -= len(data)
                self._protocol.error_received(exc)
                return
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException as exc:
                self._fatal_error(
                    exc, "Fatal write error on datagram transport"
                )
                return
            self._buffer_size -= len(data)
        self._maybe_resume_protocol()
        if not self._buffer:
            self._loop._unwatch(self._fd, True)
            if self._closing:
                self._conn_lost += 1
                self._call_connection_lost(None)

    def get_write_buffer_size(self):
        return self._buffer_size

    def _drop_buffer(self):
        self._buffer.clear()
        self._buffer_size = 0
        self._loop._unwatch(self._fd, True)

    def _io_open(self):
        return self._sock is not None and self._sock.fileno() != -1

    def _close_io(self):
        sock = self._sock
        if sock is not None:
            self._loop._unwatch(self._fd, False)
            self._loop._unwatch(self._fd, True)
            sock.close()


# --------------------------------------------------------------------------
# create_datagram_endpoint
# --------------------------------------------------------------------------


def _set_reuseport(sock):
    if not hasattr(socket, "SO_REUSEPORT"):
        raise ValueError("reuse_port not supported by socket module")
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    except OSError:
        raise ValueError(
            "reuse_port not supported by socket module, "
            "SO_REUSEPORT defined but not implemented."
        ) from None


class DatagramMixin:
    """The datagram-transport method of EventLoop."""

    __slots__ = ()

    async def create_datagram_endpoint(
        self,
        protocol_factory,
        local_addr=None,
        remote_addr=None,
        *,
        family=0,
        proto=0,
        flags=0,
        reuse_port=None,
        allow_broadcast=None,
        sock=None,
    ):
        """A datagram endpoint: (transport, protocol). Arguments as
        asyncio's; IPv4/IPv6 endpoints the loop makes are core UDP
        sockets, the others (sock=, AF_UNIX, reuse_port, allow_broadcast,
        proto) are sockets on the core's poll."""
        if sock is not None:
            if sock.type != socket.SOCK_DGRAM:
                raise ValueError("%s, got %r" % (_WRONG_SOCK, sock))
            given = dict(
                local_addr=local_addr,
                remote_addr=remote_addr,
                family=family,
                proto=proto,
                flags=flags,
                reuse_port=reuse_port,
                allow_broadcast=allow_broadcast,
            )
            problems = ", ".join(
                k + "=" + repr(v) for k, v in given.items() if v
            )
            if problems:
                raise ValueError(
                    "socket modifier keyword arguments can not be used "
                    "when sock is specified. (%s)" % problems
                )
            sock.setblocking(False)
            return await self._datagram_on_socket(protocol_factory, sock, None)
        if not (local_addr or remote_addr):
            if family == 0:
                raise ValueError("unexpected address family")
            sock = socket.socket(family, socket.SOCK_DGRAM, proto)
            try:
                if reuse_port:
                    _set_reuseport(sock)
                if allow_broadcast:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
                sock.setblocking(False)
            except BaseException:
                sock.close()
                raise
            return await self._datagram_on_socket(protocol_factory, sock, None)
        if hasattr(socket, "AF_UNIX") and family == socket.AF_UNIX:
            return await self._datagram_unix(
                protocol_factory, local_addr, remote_addr, proto
            )
        pairs = await self._datagram_addresses(
            local_addr, remote_addr, family, proto, flags
        )
        on_core = not (reuse_port or allow_broadcast or proto)
        errors = []
        for (fam, prot), (local, remote) in pairs:
            try:
                if on_core:
                    handle = self._udp_open(local, remote)
                else:
                    sock = await self._udp_socket(
                        fam, prot, local, remote, reuse_port, allow_broadcast
                    )
            except OSError as exc:
                errors.append(exc)
                continue
            if on_core:
                return await self._datagram_on_core(
                    protocol_factory, handle, remote, fam
                )
            return await self._datagram_on_socket(
                protocol_factory, sock, remote
            )
        raise errors[0]

    async def _datagram_addresses(
        self, local_addr, remote_addr, family, proto, flags
    ):
        """asyncio's pairing: for each (family, proto) that both given
        addresses resolve to, the first local and remote address."""
        infos = {}
        for idx, addr in ((0, local_addr), (1, remote_addr)):
            if addr is None:
                continue
            # a (host, port) pair only, as asyncio: an IPv6 4-tuple too is
            # refused, not cut to its first two items
            if not (isinstance(addr, tuple) and len(addr) == 2):
                raise TypeError("2-tuple is expected")
            found = await self.getaddrinfo(
                addr[0],
                addr[1],
                family=family,
                type=socket.SOCK_DGRAM,
                proto=proto,
                flags=flags,
            )
            if not found:
                raise OSError("getaddrinfo() returned empty list")
            for fam, _, pro, _, address in found:
                key = (fam, pro)
                if key not in infos:
                    infos[key] = [None, None]
                if infos[key][idx] is None:
                    infos[key][idx] = address
        pairs = [
            (key, tuple(pair))
            for key, pair in infos.items()
            if not (
                (local_addr and pair[0] is None)
                or (remote_addr and pair[1] is None)
            )
        ]
        if not pairs:
            raise ValueError("can not get address information")
        return pairs

    def _udp_open(self, local, remote):
        """A core UDP socket bound to local and/or connected to remote
        (numeric addresses)."""
        cell = ffi.new("uva_udp_t **")
        check(lib.uva_udp_new(cell, self._ptr()), "udp")
        handle = cell[0]
        try:
            if local is not None:
                check(
                    lib.uva_udp_bind(handle, local[0].encode(), local[1]),
                    "bind",
                )
            if remote is not None:
                check(
                    lib.uva_udp_connect(handle, remote[0].encode(), remote[1]),
                    "connect",
                )
        except BaseException:
            lib.uva_udp_close(handle, NULL, NULL)
            raise
        return handle

    async def _udp_socket(
        self, fam, prot, local, remote, reuse_port, broadcast
    ):
        sock = socket.socket(fam, socket.SOCK_DGRAM, prot)
        try:
            if reuse_port:
                _set_reuseport(sock)
            if broadcast:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
            sock.setblocking(False)
            if local is not None:
                sock.bind(local)
            if remote is not None and not broadcast:
                await self.sock_connect(sock, remote)
        except BaseException:
            sock.close()
            raise
        return sock

    async def _datagram_unix(
        self, protocol_factory, local_addr, remote_addr, proto
    ):
        for addr in (local_addr, remote_addr):
            if addr is not None and not isinstance(
                addr, (str, bytes, os.PathLike)
            ):
                raise TypeError("string is expected")
        local = os.fspath(local_addr) if local_addr is not None else None
        remote = os.fspath(remote_addr) if remote_addr is not None else None
        if local and local[0] not in (0, "\x00"):
            try:  # a stale socket file is replaced, as asyncio does
                if stat.S_ISSOCK(os.stat(local).st_mode):
                    os.remove(local)
            except FileNotFoundError:
                pass
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM, proto)
        try:
            sock.setblocking(False)
            if local is not None:
                sock.bind(local)
            if remote is not None:
                await self.sock_connect(sock, remote)
        except BaseException:
            sock.close()
            raise
        return await self._datagram_on_socket(protocol_factory, sock, None)

    async def _datagram_on_core(
        self, protocol_factory, handle, remote, family
    ):
        try:
            protocol = protocol_factory()
            transport = _CoreDatagramTransport(
                self, handle, protocol, remote, family
            )
        except BaseException:
            lib.uva_udp_close(handle, NULL, NULL)
            raise
        return await self._datagram_started(transport, protocol)

    async def _datagram_on_socket(self, protocol_factory, sock, address):
        try:
            protocol = protocol_factory()
            transport = _SocketDatagramTransport(self, sock, protocol, address)
        except BaseException:
            sock.close()
            raise
        return await self._datagram_started(transport, protocol)

    async def _datagram_started(self, transport, protocol):
        # connection_made runs before the endpoint is returned, as asyncio
        waiter = self.create_future()
        self.call_soon(_set_result_unless_cancelled, waiter)
        try:
            await waiter
        except BaseException:
            transport.close()
            raise
        return transport, protocol


def _set_result_unless_cancelled(fut):
    if not fut.cancelled():
        fut.set_result(None)
