"""Event, Lock, Semaphore, BoundedSemaphore, ThreadSafeFlag: wrappers of
the core's primitives, whose waiting logic (FIFO hand-off, cancellation
that leaves no trace) lives in the core.

An object binds to the running loop (or the thread's loop) on first use, so
it can be made at module level before any loop exists, as MicroPython
programs do. If its loop is closed it binds afresh to the next one.
"""

import threading
import types

from ._ffi import NULL, check, ffi, lib
from ._internal import _call_again, _tls
from .core import get_event_loop

__all__ = ["Event", "Lock", "Semaphore", "BoundedSemaphore", "ThreadSafeFlag"]

_EAGAIN = lib.UVA_EAGAIN


class _Bound:
    """A Python object owning one core object on one loop."""

    _kind = None  # the core's close function name

    def __init__(self):
        self._h = None
        self._loop = None

    def _ptr(self):
        loop = _tls.running or get_event_loop()
        if self._loop is not loop or self._h is None:
            if self._h is not None and self._loop._h is not None:
                raise RuntimeError(
                    "%r is bound to a different event loop" % (self,)
                )
            self._h = self._make(loop)
            self._loop = loop
            loop._bind(self)
        return self._h

    def _make(self, loop):
        raise NotImplementedError

    def _detach(self):
        h, self._h = self._h, None
        if h is not None:
            getattr(lib, self._kind)(h)

    def __del__(self):
        if self._h is not None and self._loop._h is not None:
            self._detach()

    @types.coroutine
    def _wait(self, fn, what):
        """fn(handle, running task) under the call-again protocol; True."""
        h = self._ptr()
        yield from _call_again(lambda: fn(h, NULL), what)
        return True


class _Held:
    """`async with x:` for objects with acquire() and release()."""

    async def __aenter__(self):
        await self.acquire()
        return None

    async def __aexit__(self, *exc):
        self.release()


class Event(_Bound):
    """set() wakes every waiter; wait() on a set event returns at once."""

    _kind = "uva_event_close"

    def __init__(self):
        super().__init__()
        self._early = False  # set() before the event was bound to a loop

    def _make(self, loop):
        cell = ffi.new("uva_event_t **")
        check(lib.uva_event_new(cell, loop._ptr()), "Event")
        if self._early:
            lib.uva_event_set(cell[0])
        return cell[0]

    def is_set(self):
        if self._h is None:
            return self._early
        out = ffi.new("int *")
        check(lib.uva_event_is_set(out, self._h))
        return bool(out[0])

    def set(self):
        if self._h is None and _tls.running is None:
            self._early = True
            return
        check(lib.uva_event_set(self._ptr()), "set")

    def clear(self):
        self._early = False
        if self._h is not None:
            check(lib.uva_event_clear(self._h), "clear")

    def wait(self):
        """Wait until the event is set; returns True."""
        return self._wait(lib.uva_event_wait, "wait")


class Lock(_Held, _Bound):
    """A mutual-exclusion lock (`async with lock:`); waiters are served in
    FIFO order: a release hands the core lock to the first waiter.

    locked() says whether a task holds it, as CPython and MicroPython do:
    after a release that handed it to a waiter it is False until that
    waiter runs and takes it (no other task can take it in between)."""

    _kind = "uva_lock_close"
    _held = False  # acquired and not yet released

    def _make(self, loop):
        cell = ffi.new("uva_lock_t **")
        check(lib.uva_lock_new(cell, loop._ptr()), "Lock")
        self._held = False  # a new core lock is free
        return cell[0]

    def locked(self):
        return self._held

    @types.coroutine
    def acquire(self):
        """Wait for the lock and take it; returns True."""
        yield from self._wait(lib.uva_lock_acquire, "acquire")
        self._held = True
        return True

    def release(self):
        if not self._held:
            raise RuntimeError("Lock is not acquired.")
        rc = lib.uva_lock_release(self._ptr())
        if rc == lib.UVA_EINVAL:
            raise RuntimeError("Lock is not acquired.")
        check(rc, "release")
        self._held = False


class Semaphore(_Held, _Bound):
    """A counting semaphore (`async with sem:`)."""

    _kind = "uva_sem_close"
    _bound = 0

    def __init__(self, value=1):
        super().__init__()  # first: __del__ needs its fields if we raise
        if value < 0:
            raise ValueError("Semaphore initial value must be >= 0")
        self._value = value

    def _make(self, loop):
        cell = ffi.new("uva_sem_t **")
        check(
            lib.uva_sem_new(cell, loop._ptr(), self._value, self._bound),
            "Semaphore",
        )
        return cell[0]

    def locked(self):
        if self._h is None:
            return self._value == 0
        out = ffi.new("int64_t *")
        check(lib.uva_sem_value(out, self._h))
        return out[0] == 0

    def acquire(self):
        return self._wait(lib.uva_sem_acquire, "acquire")

    def release(self):
        rc = lib.uva_sem_release(self._ptr())
        if rc == lib.UVA_EOVERFLOW:
            raise ValueError("BoundedSemaphore released too many times")
        check(rc, "release")


class BoundedSemaphore(Semaphore):
    """A semaphore whose release() beyond its initial value is an error."""

    def __init__(self, value=1):
        super().__init__(value)
        self._bound = value if value > 0 else 0


class ThreadSafeFlag(_Bound):
    """MicroPython's ThreadSafeFlag: set() from any thread (or a signal
    handler); one task waits; a wait clears it."""

    _kind = "uva_flag_close"

    def __init__(self):
        super().__init__()
        # set() in another thread runs its C call without the GIL: the
        # lock keeps the core flag from being closed (and freed) under it.
        # Re-entrant: a signal handler may set() in a thread inside set().
        self._xlock = threading.RLock()
        self._ptr()  # bind now: set() may come from another thread

    def _make(self, loop):
        cell = ffi.new("uva_flag_t **")
        check(lib.uva_flag_new(cell, loop._ptr()), "ThreadSafeFlag")
        return cell[0]

    def _detach(self):
        with self._xlock:  # waits for a set() under way
            h, self._h = self._h, None
        if h is not None:
            lib.uva_flag_close(h)

    def set(self):
        """Set the flag (from any thread); RuntimeError once its loop is
        closed."""
        with self._xlock:
            h = self._h
            if h is None:
                raise RuntimeError("Event loop is closed")
            rc = lib.uva_flag_set(h)
        if rc == lib.UVA_ECLOSED:
            raise RuntimeError("Event loop is closed")

    def clear(self):
        # a wait that finds the flag set clears it; nothing else to do when
        # nobody waits
        pass

    def wait(self):
        return self._wait(lib.uva_flag_wait, "wait")
