"""The seed's uasyncio.core on the uvasync core: the event loop, generator
tasks, the values a task may yield, sleep, cancel and wait_for.

A seed task is a uvasync core task (`_SeedTask`, a subclass of
uvasync.core.Task) stepped by the same C -> Python step as uvasync's tasks.
The step hands every value it does not know itself to `_SeedTask._yielded`,
which reads it the way the seed's loop did:

    yield                 go to the back of the run queue
    yield <int> (ms)      sleep that many milliseconds (0, or < 0: as yield;
                          True is 1 ms, since bool is an int)
    yield False           park: resume only when something reschedules the
                          coroutine (loop.call_soon(coro), cancel(coro))
    yield <coroutine>     run it as a new task, then go on (after it)
    yield IORead(obj)     wait until obj (socket, pipe, fd) is readable
    yield IOWrite(obj)    ... writable
    yield IOReadDone(obj), IOWriteDone(obj)
                          stop watching obj (before it is closed)
    yield StopLoop(v)     stop the loop (the task stays parked)

Tasks are the coroutines themselves, as in the seed: create_task,
ensure_future and Task return the coroutine, and cancel(coro) finds its task
in `_TASK_OF`. A cancellation (or a wait_for timeout) is the seed's
pend_throw: the exception is kept on the task and the core task is cancelled,
which ends whatever wait it is in at once; the step then throws the kept
exception in (`_cancelled_error`).

There is no run queue, timer queue or poller in this module: they are the
core's.
"""

import asyncio as _asyncio
import inspect
import os
import stat
import types

from uvasync._ffi import NULL, lib
from uvasync._internal import _PENDING, _ST_EXCEPTION, _tls
from uvasync.core import (
    Loop,
    Task as _Task,
    current_task,
    sleep_ms as _sleep_ms,
    ticks_add,
    ticks_diff,
    ticks_ms,
)
from uvasync.poll import Poll

__all__ = [
    "CancelledError",
    "TimeoutError",
    "EventLoop",
    "PollEventLoop",
    "SysCall",
    "SysCall1",
    "StopLoop",
    "IORead",
    "IOWrite",
    "IOReadDone",
    "IOWriteDone",
    "get_event_loop",
    "new_event_loop",
    "sleep",
    "sleep_ms",
    "cancel",
    "wait_for",
    "wait_for_ms",
    "coroutine",
    "ensure_future",
    "create_task",
    "Task",
    "set_debug",
    "ticks_ms",
    "ticks_add",
    "ticks_diff",
]

_YIELD = lib.UVA_TASK_YIELD
_PASS = lib.UVA_TASK_PENDING
_EAGAIN = lib.UVA_EAGAIN
_MAX_MS = 1 << 40  # the longest sleep the core takes

type_gen = types.GeneratorType
_CORO_TYPES = (types.GeneratorType, types.CoroutineType)

DEBUG = 0
log = None


def set_debug(val):
    """Kept for seed programs; uvasync has no debug logging of its own."""
    global DEBUG, log
    DEBUG = val
    if val:
        import logging

        log = logging.getLogger("uasyncio.core")


class CancelledError(_asyncio.CancelledError, Exception):
    """The seed's CancelledError. It is an Exception, as in the seed (where
    `except Exception` catches it), and an asyncio.CancelledError, so that
    uvasync treats a task ending with it as cancelled."""


class TimeoutError(CancelledError):
    """Thrown into the task when wait_for's time is up (the seed's class:
    a CancelledError, not the built-in TimeoutError)."""


# --------------------------------------------------------------------------
# What a task may yield besides None and ints (the seed's syscalls)
# --------------------------------------------------------------------------


class SysCall:
    def __init__(self, *args):
        self.args = args


class SysCall1(SysCall):
    def __init__(self, arg):
        self.arg = arg


class StopLoop(SysCall1):
    pass


class IORead(SysCall1):
    pass


class IOWrite(SysCall1):
    pass


class IOReadDone(SysCall1):
    pass


class IOWriteDone(SysCall1):
    pass


def _fileno(obj):
    return obj if isinstance(obj, int) else obj.fileno()


def always_ready(fd):
    """A regular file (or a character device that is not a terminal, such
    as /dev/null) never blocks: the kernel cannot wait on it, and there is
    no need to."""
    mode = os.fstat(fd).st_mode
    return stat.S_ISREG(mode) or (stat.S_ISCHR(mode) and not os.isatty(fd))


class _IOResume:
    """Stands in for the task's coroutine while it waits in IORead/IOWrite:
    when the task is resumed it completes the core's call-again protocol
    (the repeated uva_poll_wait that takes the result and drops the wait),
    then hands the step back to the coroutine."""

    __slots__ = ("_task", "_poll", "_events")

    def __init__(self, task, poll, events):
        self._task = task
        self._poll = poll
        self._events = events

    def send(self, value):
        task = self._task
        poll = self._poll
        if poll._h is not None:
            rc = lib.uva_poll_wait(
                task._loop._int_cell, poll._h, NULL, self._events
            )
            if rc == _EAGAIN:
                return _PENDING  # woken by something else: still waiting
            # 0 (ready) or an error: the coroutine's own I/O call will tell
        task._coro = task._gen
        return task._gen.send(None)

    def throw(self, exc):
        task = self._task
        task._coro = task._gen
        return task._gen.throw(exc)

    def close(self):
        self._task._gen.close()


# --------------------------------------------------------------------------
# Tasks
# --------------------------------------------------------------------------

# The task of each scheduled coroutine, until it finishes (cancel(coro)).
_TASK_OF = {}


class _SeedTask(_Task):
    """A seed coroutine running as a core task."""

    __slots__ = ("_gen", "_pend")

    def __init__(self, coro, loop):
        self._gen = coro
        self._pend = None  # the exception to throw in at the next resume
        _Task.__init__(self, coro, loop)
        _TASK_OF[coro] = self

    def _pend_throw(self, exc):
        """Throw exc into the coroutine at its next resume; a wait it is in
        ends now (the seed's pend_throw + reschedule)."""
        if self._ctask is None:
            return
        self._pend = exc
        lib.uva_task_cancel(self._ctask)

    def _cancelled_error(self):
        exc = self._pend
        if exc is None:
            return CancelledError()  # the loop closes, or a uvasync cancel()
        self._pend = None
        return exc

    def _yielded(self, value):
        if value.__class__ is int:
            if value > 0:
                ms = value if value < _MAX_MS else _MAX_MS
                if lib.uva_task_sleep(NULL, ms) == 0:
                    return _PASS
            return _YIELD
        if value is False:
            return _PASS  # parked: nothing will wake it but a reschedule
        if value is True:
            return self._yielded(1)
        if isinstance(value, _CORO_TYPES):
            _spawn(value, self._loop)
            return _YIELD
        if isinstance(value, IORead):
            return self._wait_io(value.arg, lib.UVA_READABLE)
        if isinstance(value, IOWrite):
            return self._wait_io(value.arg, lib.UVA_WRITABLE)
        if isinstance(value, (IOReadDone, IOWriteDone)):
            self._loop._unwatch(value.arg)
            return _YIELD
        if isinstance(value, StopLoop):
            self._loop.stop()
            return _PASS
        if isinstance(value, int) and value >= 0:  # other int-like numbers
            return self._yielded(int(value))
        return None

    def _wait_io(self, obj, events):
        try:
            poll = self._loop._poll_for(obj)
        except Exception as e:  # a closed socket, a bad descriptor
            self._pend_throw(e)
            return _YIELD
        if poll is None:
            return _YIELD  # always ready
        rc = lib.uva_poll_wait(self._loop._int_cell, poll._h, NULL, events)
        if rc == _EAGAIN:
            self._coro = _IOResume(self, poll, events)
            return _PASS
        if rc == lib.UVA_EBUSY:
            self._pend_throw(
                RuntimeError(
                    "another task is already waiting for I/O on %r" % (obj,)
                )
            )
        # ready, or an error the coroutine's next I/O call will see
        return _YIELD

    def _finish(self, state, value):
        _TASK_OF.pop(self._gen, None)
        self._coro = self._gen
        _Task._finish(self, state, value)
        if state == _ST_EXCEPTION and isinstance(value, Exception):
            # As in the seed, an exception a task lets out ends the loop's
            # run and run_forever()/run_until_complete() raise it.
            self._retrieved()
            self._loop._abort_run(value)


def _spawn(coro, loop=None):
    """The task running `coro`, made now if it has none."""
    task = _TASK_OF.get(coro)
    if task is not None:
        return task
    if hasattr(coro, "__await__") and not hasattr(coro, "send"):
        coro = coro.__await__()
    return _SeedTask(coro, loop or get_event_loop())


def _wake(coro, loop):
    """The seed's call_soon(coro): run a parked task again, or start it."""
    task = _TASK_OF.get(coro)
    if task is None:
        _SeedTask(coro, loop)
    elif task._ctask is not None:
        lib.uva_task_wake(task._ctask)


# --------------------------------------------------------------------------
# The loop
# --------------------------------------------------------------------------


class EventLoop(Loop):
    """The seed's event loop on a uvasync loop. Callbacks and coroutines
    share the core's run queue; time is the wrap-around millisecond
    ticks (time(), call_at_)."""

    def __init__(self, runq_len=16, waitq_len=16):
        # The seed's queues had fixed sizes; the core's grow as needed.
        Loop.__init__(self)
        self._polls = {}  # fd -> Poll, for IORead/IOWrite

    def time(self):
        return lib.uva_ticks_ms()

    def create_task(self, coro):
        """Schedule coro as a task; returns coro (the seed has no Task
        objects)."""
        _spawn(coro, self)
        return coro

    def call_soon(self, callback, *args):
        """callback(*args) at the next pass; a coroutine is scheduled (and a
        parked one resumed)."""
        if isinstance(callback, _CORO_TYPES):
            _wake(callback, self)
            return None
        return Loop.call_soon(self, callback, *args)

    def call_later(self, delay, callback, *args):
        """callback(*args) (or the coroutine) in `delay` seconds."""
        return self.call_later_ms(int(delay * 1000), callback, *args)

    def call_later_ms(self, delay, callback, *args):
        """callback(*args) (or the coroutine) in `delay` milliseconds."""
        delay = int(delay)
        if delay <= 0:
            return self.call_soon(callback, *args)
        if isinstance(callback, _CORO_TYPES):
            self._call_later_ms(delay, _wake, (callback, self))
            return None
        return self._call_later_ms(delay, callback, args)

    def call_at_(self, time, callback, args=()):
        """callback(*args) at `time`, in ticks_ms() units (the seed's
        internal call_at)."""
        return self.call_later_ms(
            max(ticks_diff(time, ticks_ms()), 0), callback, *args
        )

    def run_until_complete(self, coro):
        """Run until coro has finished; its return value. An exception a
        task lets out ends the run and is raised here, as in the seed.
        stop() ends the run early (then None is returned)."""
        task = coro if isinstance(coro, _Task) else _spawn(coro, self)
        if not task.done():
            prev, self._main = self._main, task
            try:
                self._run(False)
            finally:
                self._main = prev
            if not task.done():
                return None  # stopped
        if task.cancelled():
            return None
        return task.result()

    def close(self):
        """Cancel what still runs (quietly: seed programs close their loop
        with a server task pending), close the core loop."""
        if self._h is not None and not self._running:
            self._drain(cancel=True)
            self._abort_exc = None
            for poll in self._polls.values():
                poll.close()
            self._polls.clear()
        Loop.close(self)

    # -- readiness of descriptors the program owns --------------------------

    def _poll_for(self, obj):
        """The Poll watching obj's descriptor (made on first use), or None
        if it is always ready."""
        fd = _fileno(obj)
        poll = self._polls.get(fd)
        if poll is None or poll._h is None:
            if always_ready(fd):
                return None
            poll = self._polls[fd] = Poll(fd, self)
        return poll

    def _unwatch(self, obj):
        try:
            fd = _fileno(obj)
        except (OSError, ValueError):
            return
        poll = self._polls.pop(fd, None)
        if poll is not None:
            poll.close()


PollEventLoop = EventLoop


def get_event_loop(runq_len=16, waitq_len=16):
    """The running loop, else this thread's seed loop (made on first use).
    The queue sizes are accepted and ignored."""
    loop = _tls.running
    if loop is not None:
        return loop
    loop = _tls.loop
    if not isinstance(loop, EventLoop) or loop._h is None:
        loop = _tls.loop = EventLoop()
    return loop


def new_event_loop():
    """A fresh seed loop, made this thread's loop."""
    loop = _tls.loop = EventLoop()
    return loop


# --------------------------------------------------------------------------
# Sleeping, cancelling, timeouts
# --------------------------------------------------------------------------


def sleep(secs):
    """Suspend the task for secs seconds (whole milliseconds, as the seed;
    below 1 ms it only yields)."""
    return _sleep_ms(int(secs * 1000))


def sleep_ms(ms):
    """Suspend the task for ms milliseconds."""
    return _sleep_ms(ms)


def cancel(coro):
    """Cancel the task running coro: CancelledError is thrown into it at
    once (a sleep or wait ends now). A coroutine not yet started never
    runs."""
    task = _TASK_OF.get(coro)
    if task is not None:
        task._pend_throw(CancelledError())
        return
    # Not a task (yet): as the seed's pend_throw on a fresh generator, it
    # must never run; a closed generator finishes at its first step.
    if isinstance(coro, types.GeneratorType):
        fresh = inspect.getgeneratorstate(coro) == inspect.GEN_CREATED
    elif isinstance(coro, types.CoroutineType):
        fresh = inspect.getcoroutinestate(coro) == inspect.CORO_CREATED
    else:
        fresh = False
    if fresh:
        coro.close()


class _Timeout:
    """The pending timeout of one wait_for call."""

    __slots__ = ("task",)

    def __init__(self, task):
        self.task = task

    def fire(self):
        task = self.task
        if task is not None:
            self.task = None
            task._pend_throw(TimeoutError())


@types.coroutine
def wait_for_ms(coro, timeout):
    """Run coro within the calling task (as `yield from coro`); if it has
    not finished after `timeout` ms, TimeoutError is thrown into it where
    it waits, and out of this call unless coro catches it."""
    task = current_task()
    if not isinstance(task, _SeedTask):
        raise RuntimeError("wait_for must be called from a uasyncio task")
    if hasattr(coro, "__await__") and not hasattr(coro, "send"):
        coro = coro.__await__()
    timeout_obj = _Timeout(task)
    timer = task._loop._call_later_ms(
        max(int(timeout), 0), timeout_obj.fire, ()
    )
    try:
        return (yield from coro)
    finally:
        timeout_obj.task = None
        timer.cancel()


def wait_for(coro, timeout):
    """wait_for_ms with the timeout in seconds."""
    return wait_for_ms(coro, int(timeout * 1000))


def coroutine(f):
    """Mark a generator function as a coroutine. Under CPython this also
    makes its generators awaitable from `async def` code."""
    return types.coroutine(f)


# The functions below exist in the seed for CPython asyncio compatibility.


def ensure_future(coro, loop=None):
    """Schedule coro as a task; returns coro."""
    _spawn(coro, loop)
    return coro


def create_task(coro):
    """Schedule coro as a task on the current loop; returns coro."""
    _spawn(coro)
    return coro


def Task(coro, loop=None):
    """As ensure_future (the seed's Task is a function, not a class)."""
    _spawn(coro, loop)
    return coro
