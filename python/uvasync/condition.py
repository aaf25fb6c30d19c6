"""Condition and Barrier, as CPython's asyncio (locks.py).

A Condition is a Lock (the core's) plus a FIFO of waiters, each parked on
a Future that notify() completes; a Barrier is a Condition and a count.

Condition.wait() follows CPython 3.13: a waiter that was notified but ends
with an exception (it was cancelled while it took the lock back) passes
the notification on to the next waiter, so a notify() is not lost (3.11
loses it; a spurious wake-up, which the condition-variable protocol
allows, is the price).
"""

import collections

from ._internal import _tls
from .core import CancelledError, get_event_loop
from .sync import Lock

try:
    from asyncio import BrokenBarrierError  # Python 3.11+
except ImportError:

    class BrokenBarrierError(RuntimeError):
        """A Barrier wait was aborted or the barrier reset."""


__all__ = ["Condition", "Barrier", "BrokenBarrierError"]


class Condition:
    """Tasks wait() until another task, holding the lock, notifies them.
    `lock` (default: a new Lock) is the lock that wait() releases and
    takes back; `async with cond:` holds it."""

    def __init__(self, lock=None):
        if lock is None:
            lock = Lock()
        self._lock = lock
        self.locked = lock.locked
        self.acquire = lock.acquire
        self.release = lock.release
        self._waiters = collections.deque()  # Futures, oldest first

    def __repr__(self):
        extra = "locked" if self.locked() else "unlocked"
        if self._waiters:
            extra += ", waiters:%d" % len(self._waiters)
        return "<uvasync.Condition object at %#x [%s]>" % (id(self), extra)

    async def __aenter__(self):
        await self._lock.acquire()
        return None

    async def __aexit__(self, *exc):
        self._lock.release()

    async def wait(self):
        """Release the lock, wait until notified, take the lock back (even
        when cancelled: the lock is held when this returns or raises) and
        return True. RuntimeError if the lock is not held."""
        if not self.locked():
            raise RuntimeError("cannot wait on un-acquired lock")
        loop = _tls.running or get_event_loop()
        self.release()
        try:
            try:
                fut = loop.create_future()
                self._waiters.append(fut)
                try:
                    await fut
                    return True
                finally:
                    self._waiters.remove(fut)
            finally:
                cancelled = None
                while True:
                    try:
                        await self.acquire()
                        break
                    except CancelledError as e:
                        cancelled = e  # the lock first; the error after
                if cancelled is not None:
                    try:
                        raise cancelled
                    finally:
                        cancelled = None
        except BaseException:
            # We may have been notified before this error: hand the
            # notification on rather than lose it.
            self._wake(1)
            raise

    async def wait_for(self, predicate):
        """wait() until predicate() is true; return its value."""
        result = predicate()
        while not result:
            await self.wait()
            result = predicate()
        return result

    def notify(self, n=1):
        """Wake up to `n` waiters (oldest first). They return from wait()
        once they have the lock, which the caller holds and must release.
        RuntimeError if the lock is not held."""
        if not self.locked():
            raise RuntimeError("cannot notify on un-acquired lock")
        self._wake(n)

    def notify_all(self):
        """Wake every waiter."""
        self.notify(len(self._waiters))

    def _wake(self, n):
        woken = 0
        for fut in self._waiters:
            if woken >= n:
                break
            if not fut.done():
                woken += 1
                fut.set_result(False)


# A Barrier's states (the names are CPython's)
_FILLING = "filling"  # tasks arrive and wait
_DRAINING = "draining"  # the last one arrived: the waiters leave
_RESETTING = "resetting"  # reset(): the waiters leave with an error
_BROKEN = "broken"  # abort(): every wait fails until reset()


class Barrier:
    """`parties` tasks wait(); when the last arrives they all go on, each
    with its own index (0 .. parties-1), and the barrier can be used again.
    abort() breaks it; reset() returns it to the start. Tasks waiting then
    get BrokenBarrierError."""

    def __init__(self, parties):
        if parties < 1:
            raise ValueError("parties must be > 0")
        self._cond = Condition()
        self._parties = parties
        self._state = _FILLING
        self._count = 0  # tasks inside wait()

    def __repr__(self):
        extra = self._state
        if not self.broken:
            extra += ", waiters:%d/%d" % (self.n_waiting, self._parties)
        return "<uvasync.Barrier object at %#x [%s]>" % (id(self), extra)

    async def __aenter__(self):
        return await self.wait()

    async def __aexit__(self, *exc):
        pass

    async def wait(self):
        """Wait until `parties` tasks wait; return this task's index."""
        async with self._cond:
            await self._block()
            try:
                index = self._count
                self._count += 1
                if index + 1 == self._parties:
                    self._state = _DRAINING  # we are the last: release all
                    self._cond.notify_all()
                else:
                    await self._wait()
                return index
            finally:
                self._count -= 1
                self._exit()

    async def _block(self):
        # while the previous round drains or resets, newcomers wait
        await self._cond.wait_for(
            lambda: self._state not in (_DRAINING, _RESETTING)
        )
        if self._state is _BROKEN:
            raise BrokenBarrierError("Barrier aborted")

    async def _wait(self):
        await self._cond.wait_for(lambda: self._state is not _FILLING)
        if self._state in (_BROKEN, _RESETTING):
            raise BrokenBarrierError("Abort or reset of barrier")

    def _exit(self):
        # the last task out opens the barrier for the next round
        if self._count == 0:
            if self._state in (_RESETTING, _DRAINING):
                self._state = _FILLING
            self._cond.notify_all()

    async def reset(self):
        """Back to the start; tasks waiting get BrokenBarrierError."""
        async with self._cond:
            if self._count > 0:
                if self._state is not _RESETTING:
                    self._state = _RESETTING
            else:
                self._state = _FILLING
            self._cond.notify_all()

    async def abort(self):
        """Break the barrier: waits now and later get BrokenBarrierError
        (until reset())."""
        async with self._cond:
            self._state = _BROKEN
            self._cond.notify_all()

    @property
    def parties(self):
        return self._parties

    @property
    def n_waiting(self):
        """Tasks waiting for the barrier to fill."""
        return self._count if self._state is _FILLING else 0

    @property
    def broken(self):
        return self._state is _BROKEN
