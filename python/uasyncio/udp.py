"""The seed's uasyncio.udp: coroutines on the program's own non-blocking
UDP sockets, waiting for readiness in the core (IORead/IOWrite)."""

import socket as _socket
import types

from .core import IORead, IOReadDone, IOWrite

__all__ = ["socket", "recv", "recvfrom", "sendto", "close"]


def socket(af=_socket.AF_INET):
    """A non-blocking UDP socket (bind it, or sendto from it)."""
    s = _socket.socket(af, _socket.SOCK_DGRAM)
    s.setblocking(False)
    return s


@types.coroutine
def recv(s, n):
    """One datagram (at most n bytes)."""
    while True:
        yield IORead(s)  # as the seed: through the loop even when ready
        try:
            return s.recv(n)
        except BlockingIOError:
            pass


@types.coroutine
def recvfrom(s, n):
    """One datagram (at most n bytes) and the address it came from."""
    while True:
        yield IORead(s)
        try:
            return s.recvfrom(n)
        except BlockingIOError:
            pass


@types.coroutine
def sendto(s, buf, addr=None):
    """Send one datagram to addr (to the connected peer if None)."""
    while True:
        try:
            if addr is None:
                s.send(buf)
            else:
                s.sendto(buf, addr)
            return
        except BlockingIOError:
            yield IOWrite(s)


@types.coroutine
def close(s):
    """Stop watching s, then close it."""
    yield IOReadDone(s)
    s.close()
