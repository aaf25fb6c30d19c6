"""The package's private layer: what the API modules (core, funcs, stream,
sync, queues, udp, condition, waits and the seed's uasyncio) share below
their public names. It imports only the raw layer (_ffi, _cext), so every
API module can import it without an import cycle.

    _PENDING        what a leaf awaitable yields after registering a wait
    _tls            the thread's current and running loop
    _current_ctask  the core task of the running step
    _park, _call_again, _wait_error   waiting by the core's "call again"
    _ST_*           the states Task and Future share
    _to_ms          seconds to whole ms as sleep rounds them
    _new_raw        an allocator for buffers the core fills
    _closed_error   the error of a call on a closed stream or poll
    get_event_loop  core.get_event_loop, for the modules core imports
"""

import errno
import math
import os
import threading
import types

from ._ffi import NULL, error, ffi, lib

# isort: split
# uvasync._cext is made by the extension module that _ffi loads.
from ._cext import current_task as _c_current_task

_EAGAIN = lib.UVA_EAGAIN


class _Pending:
    """What a leaf awaitable yields after registering a wait in the core."""

    __slots__ = ()

    def __repr__(self):
        return "<uvasync pending>"


_PENDING = _Pending()


class _ThreadState(threading.local):
    loop = None  # the thread's current event loop (get_event_loop)
    running = None  # the loop running in this thread, if any


_tls = _ThreadState()


def _forget_loops_in_child():
    """A forked child makes loops of its own: the parent's, copied with its
    memory, are neither current nor running there (as asyncio forgets its
    running loop in a child; the core forgets its own the same way)."""
    _tls.loop = None
    _tls.running = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_loops_in_child)


def _current_ctask():
    """The core task whose step runs in this thread (NULL outside steps).
    Leaf awaitables pass NULL to the core, which means the same; this is
    for the slower paths that need to name the task."""
    loop = _tls.running
    if loop is None:
        return NULL
    cell = loop._task_cell
    lib.uva_task_current(cell, loop._h)
    return cell[0]


async def _await(aw):
    return await aw


@types.coroutine
def _park():
    """Wait until the task is woken (uva_task_wake) or cancelled."""
    yield _PENDING


@types.coroutine
def _call_again(call, what):
    """The core's "call again" protocol for a leaf awaitable: call() (a
    core call naming the running task as NULL) and, while it answers
    UVA_EAGAIN, wait until woken and call again. Returns its last answer
    (>= 0); raises the error of a negative one, naming `what`."""
    rc = call()
    while rc == _EAGAIN:
        yield _PENDING
        rc = call()
    if rc < 0:
        raise _wait_error(rc, what)
    return rc


def _wait_error(rc, what):
    """The exception for a wait call's error code. Outside a task a wait
    completes if it can at once; UVA_EINVAL there means it would have to
    wait, which only a task can do."""
    if rc == lib.UVA_EINVAL and _c_current_task() is None:
        return RuntimeError(
            "%s would have to wait: await it inside a uvasync task" % what
        )
    return error(rc, what)


# The states of a Task and of a Future.
_ST_PENDING, _ST_RESULT, _ST_EXCEPTION, _ST_CANCELLED = range(4)


# A delay in seconds is rounded up to whole ms (a sleep never ends before
# the time asked for); anything longer than _MAX_MS (math.inf: "forever")
# is _MAX_MS.
_MAX_MS = 1 << 40


def _to_ms(seconds):
    # as sleep rounds: up to whole ms, at most _MAX_MS
    ms = seconds * 1000.0
    if ms >= _MAX_MS:
        return _MAX_MS
    return int(math.ceil(ms))


_new_raw = ffi.new_allocator(should_clear_after_alloc=False)


def _closed_error():
    return OSError(errno.EBADF, "the stream is closed")


# core.get_event_loop, which core.py puts here when it is imported: poll.py
# (which core imports for its signal watcher) needs it for Poll(fd) without
# a loop, and cannot import core.
get_event_loop = None
