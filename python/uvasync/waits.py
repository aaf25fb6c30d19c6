"""wait() and as_completed(): waiting for several tasks or futures at once,
as CPython's asyncio.

Each watched task or future gets a done callback (scheduled by the loop
when it ends, as CPython schedules them). wait() parks on one Future that
the callbacks, or a loop timer for the timeout, complete; as_completed()
passes what ended through a (core) Queue.

as_completed() follows CPython 3.13: besides the plain iterator of
coroutines (3.11), it is an async iterator that gives the tasks and
futures themselves as they end.
"""

from concurrent.futures import ALL_COMPLETED, FIRST_COMPLETED, FIRST_EXCEPTION

from ._internal import _tls
from .core import Task, get_event_loop, get_running_loop
from .funcs import Future, ensure_future, iscoroutine
from .queues import Queue

__all__ = [
    "wait",
    "as_completed",
    "FIRST_COMPLETED",
    "FIRST_EXCEPTION",
    "ALL_COMPLETED",
]


def _is_future(obj):
    return isinstance(obj, (Task, Future))


async def wait(fs, *, timeout=None, return_when=ALL_COMPLETED):
    """Wait until the tasks/futures in `fs` are done -- all of them, the
    first one (FIRST_COMPLETED) or the first that fails (FIRST_EXCEPTION,
    else all) -- or `timeout` seconds have passed. Returns the sets
    (done, pending); raises nothing on timeout and cancels nothing.
    Coroutines are refused (TypeError), as in CPython 3.11+."""
    if _is_future(fs) or iscoroutine(fs):
        raise TypeError("expect a list of futures, not %s" % type(fs).__name__)
    if not fs:
        raise ValueError("Set of Tasks/Futures is empty.")
    if return_when not in (FIRST_COMPLETED, FIRST_EXCEPTION, ALL_COMPLETED):
        raise ValueError("Invalid return_when value: %s" % (return_when,))
    fs = set(fs)
    if any(iscoroutine(f) for f in fs):
        raise TypeError(
            "Passing coroutines is forbidden, use tasks explicitly."
        )
    loop = get_running_loop()
    waiter = loop.create_future()
    timer = None
    if timeout is not None:
        timer = loop.call_later(timeout, _release, waiter)
    left = len(fs)

    def on_done(f):
        nonlocal left
        left -= 1
        if (
            left <= 0
            or return_when == FIRST_COMPLETED
            or (
                return_when == FIRST_EXCEPTION
                and not f.cancelled()
                and f.exception() is not None
            )
        ):
            _release(waiter)

    for f in fs:
        f.add_done_callback(on_done)
    try:
        await waiter
    finally:
        if timer is not None:
            timer.cancel()
        for f in fs:
            f.remove_done_callback(on_done)

    done = set(f for f in fs if f.done())
    return done, fs - done


def _release(waiter):
    if not waiter.done():
        waiter.set_result(None)


def as_completed(fs, *, timeout=None):
    """Iterate over the awaitables in `fs` (coroutines become tasks, which
    start now) in the order they end:

        for next_done in as_completed(fs):       # coroutines
            result = await next_done              # raises what it raised
        async for task in as_completed(fs):       # CPython 3.13+
            result = task.result()

    If `timeout` seconds pass before all have ended, the waits left raise
    TimeoutError (nothing is cancelled)."""
    if _is_future(fs) or iscoroutine(fs):
        raise TypeError(
            "expect an iterable of futures, not %s" % type(fs).__name__
        )
    return _AsCompleted(fs, timeout)


class _AsCompleted:
    """The iterator as_completed() returns: `_done`, a Queue, receives what
    has ended (None for each one the timeout gave up on), and each wait
    takes one from it."""

    def __init__(self, fs, timeout):
        loop = _tls.running or get_event_loop()
        self._todo = set(ensure_future(f, loop=loop) for f in set(fs))
        self._left = len(self._todo)  # waits still to hand out
        self._done = Queue()
        self._timer = None
        for f in self._todo:
            f.add_done_callback(self._on_done)
        if self._todo and timeout is not None:
            self._timer = loop.call_later(timeout, self._on_timeout)

    def _on_done(self, f):
        if not self._todo:
            return  # the timeout came first
        self._todo.discard(f)
        self._done.put_nowait(f)
        if not self._todo and self._timer is not None:
            self._timer.cancel()

    def _on_timeout(self):
        for f in self._todo:
            f.remove_done_callback(self._on_done)
            self._done.put_nowait(None)
        self._todo.clear()

    async def _next_done(self, resolve):
        f = await self._done.get()
        if f is None:
            raise TimeoutError
        return f.result() if resolve else f

    def __iter__(self):
        return self

    def __next__(self):
        if self._left <= 0:
            raise StopIteration
        self._left -= 1
        return self._next_done(True)

    def __aiter__(self):
        return self

    async def __anext__(self):
        if self._left <= 0:
            raise StopAsyncIteration
        self._left -= 1
        return await self._next_done(False)
