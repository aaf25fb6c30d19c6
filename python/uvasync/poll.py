"""Readiness of a descriptor the caller owns (uva_poll_*): the seed's
IORead/IOWrite (uasyncio.core) and the signal watcher's wake-up socket
(_signals.py) wait on it. uvasync.stream.Poll is this class."""

import types

from . import _internal
from ._ffi import NULL, check, error, ffi, lib
from ._internal import _EAGAIN, _PENDING, _closed_error, _tls


class Poll:
    """Wait until a descriptor the caller owns is readable/writable."""

    def __init__(self, fd, loop=None):
        loop = loop or _tls.running or _internal.get_event_loop()
        if hasattr(fd, "fileno"):
            fd = fd.fileno()
        cell = ffi.new("uva_poll_t **")
        check(lib.uva_poll_new(cell, loop._ptr(), fd), "poll")
        self._h = cell[0]
        self._loop = loop
        self._revents = ffi.new("int *")
        loop._bind(self)

    @types.coroutine
    def wait(self, events):
        """Wait for events (UVA_READABLE | UVA_WRITABLE); the ready ones."""
        while True:
            if self._h is None:
                raise _closed_error()
            rc = lib.uva_poll_wait(self._revents, self._h, NULL, events)
            if rc == 0:
                return self._revents[0]
            if rc != _EAGAIN:
                raise error(rc, "poll")
            yield _PENDING

    def close(self):
        if self._h is not None:
            lib.uva_poll_close(self._h, NULL, NULL)
            self._h = None

    _detach = close

    def __del__(self):
        if self._h is not None and self._loop._h is not None:
            lib.uva_poll_close(self._h, NULL, NULL)
