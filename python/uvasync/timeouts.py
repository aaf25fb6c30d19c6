"""timeout() and timeout_at(): a deadline over a block of code, as CPython's
asyncio.timeout (3.11).

At the deadline a loop timer cancels the task running the block (the core's
task cancel, through Task.cancel). Leaving the block turns that
cancellation, and only that one, into TimeoutError: Task.cancelling()
counts the requests, the timeout takes its own back with uncancel(), and
a cancellation that came from elsewhere (an outer timeout, a TaskGroup,
task.cancel()) is still pending then and goes on as CancelledError.

As CPython 3.12+: the count is compared with the one the task had when the
block was entered (3.11 compares with 0, which differs only for a block
entered while the task was already being cancelled), TimeoutError is
raised `from` the CancelledError, and entering a Timeout twice is a
RuntimeError.
"""

from .core import CancelledError, current_task, get_running_loop

__all__ = ["Timeout", "timeout", "timeout_at"]

# A Timeout's states (the names are CPython's, shown by repr)
_CREATED = "created"
_ENTERED = "active"
_EXPIRING = "expiring"  # the deadline passed; the block has not ended yet
_EXPIRED = "expired"
_EXITED = "finished"


class Timeout:
    """`async with Timeout(when):` -- made by timeout() and timeout_at()."""

    def __init__(self, when):
        self._state = _CREATED
        self._when = when
        self._task = None
        self._handle = None  # the loop timer that fires the deadline
        self._cancelling = 0  # the task's cancelling() when entered

    def when(self):
        """The deadline in loop time (loop.time()), or None: no limit."""
        return self._when

    def reschedule(self, when):
        """Move the deadline to `when` (loop time; None: no limit). Only
        inside the block, before it has expired."""
        if self._state is not _ENTERED:
            if self._state is _CREATED:
                raise RuntimeError("Timeout has not been entered")
            raise RuntimeError(
                "Cannot change state of %s Timeout" % self._state
            )
        self._when = when
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        if when is not None:
            loop = get_running_loop()
            if when <= loop.time():
                self._handle = loop.call_soon(self._on_timeout)
            else:
                self._handle = loop.call_at(when, self._on_timeout)

    def expired(self):
        """True once the deadline has passed inside the block."""
        return self._state in (_EXPIRING, _EXPIRED)

    def __repr__(self):
        extra = ""
        if self._state is _ENTERED:
            when = None if self._when is None else round(self._when, 3)
            extra = " when=%s" % (when,)
        return "<Timeout [%s]%s>" % (self._state, extra)

    async def __aenter__(self):
        if self._state is not _CREATED:
            raise RuntimeError("Timeout has already been entered")
        task = current_task()
        if task is None:
            raise RuntimeError("Timeout should be used inside a task")
        self._state = _ENTERED
        self._task = task
        self._cancelling = task.cancelling()
        self.reschedule(self._when)
        return self

    async def __aexit__(self, exc_type, exc, tb):
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        if self._state is _EXPIRING:
            self._state = _EXPIRED
            # Take our cancellation back. Only when no other request is
            # left, and the block did end by it, is it ours to turn into
            # TimeoutError.
            if (
                self._task.uncancel() <= self._cancelling
                and exc_type is not None
                and issubclass(exc_type, CancelledError)
            ):
                raise TimeoutError from exc
        elif self._state is _ENTERED:
            self._state = _EXITED
        return None

    def _on_timeout(self):
        self._task.cancel()
        self._state = _EXPIRING
        self._handle = None


def timeout(delay):
    """`async with timeout(delay):` -- cancel the block after `delay`
    seconds and raise TimeoutError from it; None: no limit (reschedule()
    may set one later)."""
    loop = get_running_loop()
    return Timeout(None if delay is None else loop.time() + delay)


def timeout_at(when):
    """As timeout(), with the deadline in loop time (loop.time())."""
    return Timeout(when)
