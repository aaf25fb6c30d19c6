"""The seed's uasyncio.synchro: Lock on the core's lock."""

from uvasync.sync import Lock as _CoreLock

__all__ = ["Lock"]


class Lock(_CoreLock):
    """A lock: `yield from lock.acquire()` (or `await`), lock.release().
    Waiters get it in FIFO order, handed over by release(); the seed's
    acquire yielded once first to let others in, which the hand-off makes
    unnecessary. `locked` is an attribute (a property), as in the seed."""

    @property
    def locked(self):
        return _CoreLock.locked(self)

    def release(self):
        assert self.locked, "release() of a lock that is not held"
        _CoreLock.release(self)
