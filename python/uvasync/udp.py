"""UDP: datagram sockets on the core. A datagram is never split or merged;
recvfrom waits in the core (no polling)."""

import types

from ._ffi import NULL, check, error, ffi, lib
from ._internal import _PENDING, _new_raw, _tls
from .core import get_event_loop

__all__ = ["DatagramSocket", "open_udp"]

_EAGAIN = lib.UVA_EAGAIN


def _split(addr):
    host, port = addr[0], addr[1]
    return (host.encode() if isinstance(host, str) else host), int(port)


class DatagramSocket:
    """A UDP socket: sendto/send at once, await recvfrom/recv."""

    def __init__(self, loop=None):
        loop = loop or _tls.running or get_event_loop()
        cell = ffi.new("uva_udp_t **")
        check(lib.uva_udp_new(cell, loop._ptr()), "udp")
        self._h = cell[0]
        self._loop = loop
        self._host = ffi.new("char[]", 64)
        self._port = ffi.new("int *")
        loop._bind(self)

    def _ptr(self):
        if self._h is None:
            import errno

            raise OSError(errno.EBADF, "the socket is closed")
        return self._h

    def bind(self, addr):
        check(lib.uva_udp_bind(self._ptr(), *_split(addr)), "bind")

    def connect(self, addr):
        check(lib.uva_udp_connect(self._ptr(), *_split(addr)), "connect")

    def getsockname(self):
        check(
            lib.uva_udp_local_address(self._ptr(), self._host, 64, self._port),
            "getsockname",
        )
        return (ffi.string(self._host).decode(), self._port[0])

    def sendto(self, data, addr):
        """Send one datagram to addr = (numeric host, port)."""
        host, port = _split(addr)
        buf = ffi.from_buffer(data)
        check(
            lib.uva_udp_send(self._ptr(), buf, len(buf), host, port), "sendto"
        )

    def send(self, data):
        """Send one datagram to the connected peer."""
        buf = ffi.from_buffer(data)
        check(lib.uva_udp_send(self._ptr(), buf, len(buf), NULL, 0), "send")

    @types.coroutine
    def recvfrom(self, n=65536):
        """One datagram (at most n bytes are returned) and its source
        address (host, port)."""
        loop = self._loop
        size = max(int(n), 1)
        buf = loop._rbuf if size <= 65536 else _new_raw("char[]", size)
        cell = loop._size_cell
        while True:
            rc = lib.uva_udp_recv(
                cell, self._ptr(), NULL, buf, size, self._host, 64, self._port
            )
            if rc == 0:
                return (
                    ffi.unpack(buf, cell[0]),
                    (ffi.string(self._host).decode(), self._port[0]),
                )
            if rc == lib.UVA_ENOBUFS:  # take it whole, return the first n
                big = _new_raw("char[]", cell[0])
                check(
                    lib.uva_udp_recv(
                        cell,
                        self._h,
                        NULL,
                        big,
                        cell[0],
                        self._host,
                        64,
                        self._port,
                    )
                )
                return (
                    ffi.unpack(big, min(cell[0], size)),
                    (ffi.string(self._host).decode(), self._port[0]),
                )
            if rc != _EAGAIN:
                raise error(rc, "recvfrom")
            yield _PENDING

    async def recv(self, n=65536):
        data, _ = await self.recvfrom(n)
        return data

    def close(self):
        if self._h is not None:
            lib.uva_udp_close(self._h, NULL, NULL)
            self._h = None

    _detach = close

    def __del__(self):
        if self._h is not None and self._loop._h is not None:
            self.close()


async def open_udp(local_addr=None, remote_addr=None):
    """A DatagramSocket bound to local_addr and/or connected to
    remote_addr."""
    s = DatagramSocket()
    try:
        if local_addr is not None:
            s.bind(local_addr)
        if remote_addr is not None:
            s.connect(remote_addr)
    except BaseException:
        s.close()
        raise
    return s
