"""Loop, Task, Future and sleeping: coroutines stepped by the core's tasks.

Each Task is one core task whose step function is `_uvapy_step`: the core
calls it when the task is runnable (one C -> Python crossing per step), it
sends into the coroutine, and what the coroutine yields tells the core what
to do next. Leaf awaitables (sleep, stream reads, lock acquires, ...) make
one call into the core that registers the wait, then yield:

    yield None       -> UVA_TASK_YIELD: back of the run queue (sleep(0))
    yield _PENDING   -> UVA_TASK_PENDING: resume when the wait ends or the
                        task is woken or cancelled

Cancellation arrives as status UVA_ECANCELED and is thrown into the
coroutine as CancelledError. There is no scheduler, timer queue or buffer in
Python: run queue, timers and waits are the core's.
"""

import contextvars
import logging
import time
import types
import warnings
from asyncio import CancelledError, InvalidStateError

from . import _internal, _signals, executor as _executor
from ._ffi import NULL, check, error, ffi, lib
from ._internal import (
    _MAX_MS,
    _PENDING,
    _ST_CANCELLED,
    _ST_EXCEPTION,
    _ST_PENDING,
    _ST_RESULT,
    _await,
    _current_ctask,
    _new_raw,
    _tls,
    _to_ms,
)

# isort: split
# uvasync._cext is made by the extension module that _ffi loads.
from ._cext import (
    LoopBase,
    TaskBase,
    create_task as _c_create_task,
    current_task as _c_current_task,
    live_tasks as _c_live_tasks,
    sleep,
    sleep_ms,
)

__all__ = [
    "Loop",
    "Task",
    "CancelledError",
    "TimeoutError",
    "InvalidStateError",
    "create_task",
    "current_task",
    "all_tasks",
    "sleep",
    "sleep_ms",
    "get_event_loop",
    "new_event_loop",
    "set_event_loop",
    "get_running_loop",
    "ticks_ms",
    "ticks_add",
    "ticks_diff",
]

TimeoutError = TimeoutError  # the built-in one, as asyncio has it since 3.11

logger = logging.getLogger("uvasync")

_ECANCELED = lib.UVA_ECANCELED
_EUSER = lib.UVA_EUSER
_PASS = lib.UVA_TASK_PENDING
_YIELD = lib.UVA_TASK_YIELD


# Every live Task is held by a list in C (uvasync._cext.live_tasks()) until
# it finishes; the core task's data is the Task object itself.


def _current():
    """The running Task; RuntimeError outside one."""
    task = current_task()
    if task is None:
        raise RuntimeError("this must be awaited inside a uvasync task")
    return task


# --------------------------------------------------------------------------


# --------------------------------------------------------------------------
# Task
# --------------------------------------------------------------------------


class _TaskExtra:
    """A task's rarely used state: its name, cancellation requests, the
    asyncio Future it waits for (fut_waiter: (future, done callback)) and
    its asyncio "future blocking" flag (awaited by an asyncio Task)."""

    __slots__ = ("name", "cancel_msg", "cancels", "fut_waiter", "blocking")

    def __init__(self, name):
        self.name = name
        self.cancel_msg = None
        self.cancels = 0
        self.fut_waiter = None
        self.blocking = False


class _ExcLog:
    """Held by a task that ended with an exception nobody has retrieved
    yet: if the task goes away first, the loop's exception handler hears
    of it (a plain Python handler: it works after the loop closed too)."""

    __slots__ = ("loop", "exc", "task", "active")

    def __init__(self, loop, exc, task_repr):
        self.loop = loop
        self.exc = exc
        self.task = task_repr
        self.active = True

    def __del__(self):
        if self.active:
            self.active = False
            self.loop.call_exception_handler(
                {
                    "message": "Task exception was never retrieved",
                    "exception": self.exc,
                    "future": self.task,
                }
            )


class Task(TaskBase):
    """A coroutine running as a core task (CPython's asyncio.Task surface:
    await, cancel, cancelled, done, result, exception, add_done_callback).

    Task(coro, loop=None, name=None, context=None): the coroutine's steps
    run in `context`, by default a copy of the context current when the
    task is made (get_context() returns it; once the task is done, None if
    that copy was its own and nobody took it). Its state lives in the C base
    (uvasync._cext.TaskBase, built with the cffi module), which also makes
    it, runs its steps and ends it: _coro, _loop, _state, _value,
    _callbacks, _notify (internal: called at once when it ends), _log_exc
    (an _ExcLog while an exception is unretrieved) and _extra (a
    _TaskExtra: name and cancellation requests, made when first needed).
    There is no __del__: an _ExcLog reports an unretrieved exception."""

    __slots__ = ()
    __class_getitem__ = classmethod(types.GenericAlias)  # Task[int]

    @property
    def _ctask(self):
        """The core task (a cffi pointer), None once done."""
        addr = self._ctask_addr
        return ffi.cast("uva_task_t *", addr) if addr else None

    def __repr__(self):
        state = ("pending", "finished", "finished", "cancelled")[self._state]
        return "<Task %s %s coro=%r>" % (self.get_name(), state, self._coro)

    def _more(self):
        extra = self._extra
        if extra is None:
            extra = self._extra = _TaskExtra(None)
        return extra

    def get_name(self):
        extra = self._extra
        if extra is None or extra.name is None:
            return "Task-%x" % id(self)
        return extra.name

    def set_name(self, name):
        self._more().name = str(name)

    def get_coro(self):
        return self._coro

    def get_loop(self):
        return self._loop

    # -- state -------------------------------------------------------------

    def done(self):
        return self._state != _ST_PENDING

    def cancelled(self):
        return self._state == _ST_CANCELLED

    def _retrieved(self):
        log = self._log_exc
        if log is not None:
            log.active = False
            self._log_exc = None

    def result(self):
        st = self._state
        if st == _ST_RESULT:
            return self._value
        if st == _ST_EXCEPTION:
            self._retrieved()
            raise self._value
        if st == _ST_CANCELLED:
            raise self._value
        raise InvalidStateError("Result is not set.")

    def exception(self):
        st = self._state
        if st == _ST_PENDING:
            raise InvalidStateError("Exception is not set.")
        if st == _ST_CANCELLED:
            raise self._value
        self._retrieved()
        return self._value if st == _ST_EXCEPTION else None

    def add_done_callback(self, fn, *, context=None):
        """fn(task) is scheduled with call_soon once the task is done, to
        run in `context` (default: a copy of the current one, as asyncio)."""
        if context is None:
            context = contextvars.copy_context()
        if self._state != _ST_PENDING:
            self._loop.call_soon(fn, self, context=context)
            return
        fn = _InContext(fn, context)
        if self._callbacks is None:
            self._callbacks = [fn]
        else:
            self._callbacks.append(fn)

    def remove_done_callback(self, fn):
        cbs = self._callbacks
        if not cbs:
            return 0
        n = len(cbs)
        cbs[:] = [cb for cb in cbs if cb != fn]
        return n - len(cbs)

    # -- cancellation ------------------------------------------------------

    def cancel(self, msg=None):
        """Request cancellation: CancelledError is thrown into the coroutine
        at its next resume (a pending wait ends at once). False if done."""
        if self._state != _ST_PENDING:
            return False
        extra = self._more()
        extra.cancels += 1
        if msg is not None:
            extra.cancel_msg = msg
        waiter = _stop_waiting(self)
        if waiter is not None:  # as asyncio: the awaited Future too
            waiter.cancel(msg)
        check(lib.uva_task_cancel(self._ctask), "cancel")
        return True

    def cancelling(self):
        extra = self._extra
        return 0 if extra is None else extra.cancels

    def uncancel(self):
        extra = self._extra
        if extra is None:
            return 0
        if extra.cancels > 0:
            extra.cancels -= 1
        return extra.cancels

    # -- awaiting ----------------------------------------------------------

    # asyncio's Future protocol, so that an asyncio Task (on EventLoop)
    # can await this one: the class attribute makes asyncio.isfuture()
    # true, the instance's flag is what the awaiting asyncio Task reads
    # and clears.
    @property
    def _asyncio_future_blocking(self):
        extra = self._extra
        return extra is not None and extra.blocking

    @_asyncio_future_blocking.setter
    def _asyncio_future_blocking(self, value):
        self._more().blocking = bool(value)

    def __await__(self):
        if _c_current_task() is None and self._state == _ST_PENDING:
            # Awaited outside any native task: by an asyncio Task, which
            # waits through add_done_callback.
            self._more().blocking = True
            try:
                yield self
            except CancelledError as e:
                if self._state != _ST_PENDING:
                    raise
                self.cancel(e.args[0] if e.args else None)
                raise
            if self._state == _ST_PENDING:
                raise RuntimeError("await wasn't used with future")
        while self._state == _ST_PENDING:
            rc = self._join()
            if rc < 0:
                if rc == lib.UVA_EINVAL:
                    raise RuntimeError(
                        "a task is awaited from inside another "
                        "task of its loop, not from itself"
                    )
                raise error(rc, "await task")
            try:
                yield _PENDING
            except CancelledError as e:
                # As CPython: the awaiter's cancellation goes on to the
                # awaited task, and the awaiter resumes once it has ended.
                if self._state != _ST_PENDING:
                    raise
                self.cancel(e.args[0] if e.args else None)
        return self.result()

    __iter__ = __await__  # `yield from task` in generator-based coroutines

    # -- what a coroutine may yield besides None and _PENDING ---------------

    def _cancelled_error(self):
        """The exception a cancellation throws into the coroutine (a
        subclass, the seed's tasks, throws its own classes)."""
        extra = self._extra
        msg = None
        if extra is not None:
            msg, extra.cancel_msg = extra.cancel_msg, None
        return CancelledError() if msg is None else CancelledError(msg)

    def _yielded(self, value):
        """A subclass (the seed's generator tasks) interprets other yielded
        values here and returns the step code (UVA_TASK_YIELD or
        UVA_TASK_PENDING) after setting up the wait; None refuses it, and
        the coroutine gets a RuntimeError."""
        return None

    # _finish(state, value), the end of the task, is TaskBase's (in C): it
    # sets the state, takes the task out of the live list, calls _notify,
    # schedules the done callbacks, makes the _ExcLog, and stops
    # run_until_complete.


class Future:
    """A result that some code sets and tasks await (loop.create_future)."""

    _asyncio_future_blocking = False
    __class_getitem__ = classmethod(types.GenericAlias)  # Future[int]

    def __init__(self, loop=None):
        self._loop = loop or _tls.running or get_event_loop()
        self._state = _ST_PENDING
        self._value = None
        self._callbacks = []
        self._watchers = []  # tasks to wake when done
        self._notify = []  # internal: called at once when done
        self._log_exc = False

    def done(self):
        return self._state != _ST_PENDING

    def cancelled(self):
        return self._state == 3

    def get_loop(self):
        return self._loop

    def _set(self, state, value):
        if self._state != _ST_PENDING:
            raise InvalidStateError("invalid state")
        self._state = state
        self._value = value
        for ctask in self._watchers:
            lib.uva_task_wake(ctask)
        self._watchers = []
        notify, self._notify = self._notify, []
        for fn in notify:
            fn(self)
        for fn, context in self._callbacks:
            self._loop.call_soon(fn, self, context=context)
        self._callbacks = []

    def set_result(self, result):
        self._set(_ST_RESULT, result)

    def set_exception(self, exc):
        if isinstance(exc, type):
            exc = exc()
        self._set(_ST_EXCEPTION, exc)

    def cancel(self, msg=None):
        if self._state != _ST_PENDING:
            return False
        self._set(3, CancelledError() if msg is None else CancelledError(msg))
        return True

    def result(self):
        if self._state == _ST_PENDING:
            raise InvalidStateError("Result is not set.")
        if self._state == _ST_RESULT:
            return self._value
        raise self._value

    def exception(self):
        if self._state == _ST_PENDING:
            raise InvalidStateError("Exception is not set.")
        if self._state == 3:
            raise self._value
        return self._value if self._state == _ST_EXCEPTION else None

    def add_done_callback(self, fn, *, context=None):
        """fn(future) runs once it is done, in `context` (default: a copy
        of the current one, as asyncio)."""
        if context is None:
            context = contextvars.copy_context()
        if self._state != _ST_PENDING:
            self._loop.call_soon(fn, self, context=context)
        else:
            self._callbacks.append((fn, context))

    def remove_done_callback(self, fn):
        n = len(self._callbacks)
        self._callbacks = [f for f in self._callbacks if f[0] != fn]
        return n - len(self._callbacks)

    @types.coroutine
    def _wait(self):
        cur = _current_ctask()
        self._watchers.append(cur)
        try:
            yield _PENDING
        finally:
            if cur in self._watchers:
                self._watchers.remove(cur)

    def __await__(self):
        while self._state == _ST_PENDING:
            try:
                yield from self._wait()
            except CancelledError as e:
                # As CPython: a cancelled awaiter cancels the Future.
                if self._state != _ST_PENDING:
                    raise
                self.cancel(e.args[0] if e.args else None)
        return self.result()

    __iter__ = __await__


class _InContext:
    """A done callback with the context it runs in. It equals its function
    (remove_done_callback)."""

    __slots__ = ("fn", "context")

    def __init__(self, fn, context):
        self.fn = fn
        self.context = context

    def __call__(self, *args):
        return self.context.run(self.fn, *args)

    def __eq__(self, other):
        return self.fn == other

    __hash__ = None


def _task_coro(coro):
    """What Task() runs for something other than a coroutine: a
    generator-based coroutine as it is, an awaitable through a coroutine
    (create_task(sleep(1))); anything else is a TypeError."""
    if hasattr(coro, "send") and hasattr(coro, "throw"):
        return coro
    if hasattr(coro, "__await__"):
        return _await_it(coro)
    raise TypeError("a coroutine was expected, got %r" % (coro,))


def _task_loop():
    """The loop of a Task made without one: the running loop, else the
    thread's."""
    return _tls.running or get_event_loop()


async def _await_it(awaitable):
    return await awaitable


def _drive(task, how, value):
    """What a step does beyond the common case. The C step
    (_uvapy_step_c in csrc/task.c) sends None into the coroutine itself
    when the task runs normally and handles a yield of None (UVA_TASK_YIELD)
    or _PENDING (UVA_TASK_PENDING); it calls this for the rest:

        how 0: send None (interpreters without PyIter_Send)
        how 1: a cancellation is delivered: throw CancelledError
        how 2: the coroutine yielded `value`, something else
        how 3: the coroutine returned `value`
        how 4: the coroutine raised `value`

    It returns the step's code for the core."""
    coro = task._coro
    try:
        if how == 3:
            task._finish(_ST_RESULT, value)
            return 0
        if how == 4:
            return _ended_by(task, value)
        if how == 0:
            r = coro.send(None)
        elif how == 1:
            _stop_waiting(task)
            r = coro.throw(task._cancelled_error())
        else:
            r = value
        while True:
            if r is None:
                return _YIELD
            if r is _PENDING:
                return _PASS
            code = task._yielded(r)
            if code is not None:
                return code
            if getattr(r, "_asyncio_future_blocking", None) is True:
                code = _wait_for_future(task, r)
                if code is not None:
                    return code
                r = coro.throw(
                    RuntimeError(
                        "Task %r got Future %r attached to a different loop"
                        % (task, r)
                    )
                )
                continue
            r = coro.throw(
                RuntimeError(
                    "Task got bad yield: %r (await uvasync awaitables only)"
                    % (r,)
                )
            )
    except StopIteration as e:
        task._finish(_ST_RESULT, e.value)
        return 0
    except BaseException as e:
        return _ended_by(task, e)


def _wait_for_future(task, fut):
    """The coroutine of native `task` yielded an asyncio Future (or
    anything speaking its protocol: an asyncio Task, a Future of
    EventLoop.create_future): wait, as an asyncio Task would, until it is
    done. None if it belongs to another loop."""
    if fut.get_loop() is not task._loop:
        return None
    fut._asyncio_future_blocking = False
    ctask = task._ctask

    def wake(_):
        extra = task._extra
        if extra is not None and extra.fut_waiter is not None:
            extra.fut_waiter = None
            if task._ctask is not None:
                lib.uva_task_wake(ctask)

    task._more().fut_waiter = (fut, wake)
    fut.add_done_callback(wake)
    return _PASS


def _stop_waiting(task):
    """A cancellation reaches `task`: it no longer waits for the asyncio
    Future it awaited (returned, or None)."""
    extra = task._extra
    if extra is None or extra.fut_waiter is None:
        return None
    fut, wake = extra.fut_waiter
    extra.fut_waiter = None
    fut.remove_done_callback(wake)
    return fut


def _ended_by(task, exc):
    """The coroutine ended with an exception: finish the task with it."""
    if isinstance(exc, CancelledError):
        task._finish(_ST_CANCELLED, exc)
        return _ECANCELED
    task._finish(_ST_EXCEPTION, exc)
    if not isinstance(exc, Exception):  # KeyboardInterrupt, SystemExit
        task._loop._abort_run(exc)
    return _EUSER


def current_task(loop=None):
    """The Task whose coroutine is running, or None (in a callback). As in
    asyncio, RuntimeError when no loop runs and none is given."""
    task = _c_current_task()
    if task is None and loop is None and _tls.running is None:
        raise RuntimeError("no running event loop")
    return task


def all_tasks(loop=None):
    """The tasks of the loop (default: the running one) not yet done; not
    the loop's own signal watcher."""
    loop = loop or get_running_loop()
    tasks = loop._live_tasks()
    if loop._sig is not None:
        tasks.discard(loop._sig[2])
    return tasks


# create_task(coro, *, name=None, context=None): run `coro` concurrently as
# a new Task on the running loop, in a copy of the current contextvars
# context (or in `context`). In C (uvasync._cext): it runs for every task.
create_task = _c_create_task


# --------------------------------------------------------------------------
# Sleeping
# --------------------------------------------------------------------------

# sleep(delay, result=None) and sleep_ms(ms, result=None) are in C
# (uvasync._cext): a sleep is a small awaitable whose first step registers
# it in the core and whose resume ends it. A delay is rounded up to whole
# ms (a sleep never ends before the time asked for), <= 0 just yields, and
# anything longer than _MAX_MS (math.inf: "forever") is _MAX_MS.


def ticks_ms():
    return lib.uva_ticks_ms()


def ticks_add(ticks, delta):
    return lib.uva_ticks_add(ticks, delta)


def ticks_diff(a, b):
    return lib.uva_ticks_diff(a, b)


# --------------------------------------------------------------------------
# Callbacks (call_soon, call_later) and the loop
# --------------------------------------------------------------------------


class Handle:
    """A scheduled callback; cancel() keeps it from running. It runs in
    `context`, by default a copy of the context current when it was
    scheduled (as in asyncio)."""

    __slots__ = (
        "_loop",
        "_cb",
        "_args",
        "_cancelled",
        "_timer",
        "_when",
        "_context",
        "__weakref__",
    )

    def __init__(self, loop, cb, args, context=None):
        self._loop = loop
        self._cb = cb
        self._args = args
        self._context = (
            contextvars.copy_context() if context is None else context
        )
        self._cancelled = False
        self._timer = None
        self._when = None

    def cancel(self):
        if not self._cancelled:
            self._cancelled = True
            self._loop._drop_timer(self)

    def cancelled(self):
        return self._cancelled

    def when(self):
        return self._when

    def _run(self):
        loop = self._loop
        try:
            self._context.run(self._cb, *self._args)
        except (KeyboardInterrupt, SystemExit) as e:
            loop._abort_run(e)
        except BaseException as e:
            loop.call_exception_handler(
                {
                    "message": "Exception in callback %r" % (self._cb,),
                    "exception": e,
                    "handle": self,
                }
            )


TimerHandle = Handle


@ffi.def_extern()
def _uvapy_call(data):
    handle = ffi.from_handle(data)
    handle._loop._keep.discard(data)
    if not handle._cancelled:
        handle._cancelled = True  # it ran: a later cancel() does nothing
        handle._run()


@ffi.def_extern()
def _uvapy_timer(ctimer, data):
    handle = ffi.from_handle(data)
    loop = handle._loop
    loop._drop_timer(handle)
    if not handle._cancelled:
        handle._cancelled = True
        handle._run()


def _default_handler_log(context):
    message = context.get("message") or "Unhandled exception in event loop"
    exc = context.get("exception")
    extra = [
        "%s: %r" % (k, v)
        for k, v in sorted(context.items())
        if k not in ("message", "exception")
    ]
    if extra:
        message += "\n" + "\n".join(extra)
    if exc is not None:
        logger.error(message, exc_info=(type(exc), exc, exc.__traceback__))
    else:
        logger.error(message)


_RBUF_SIZE = 256 * 1024


class Loop(LoopBase):
    """An event loop: one core loop, owned by the thread that made it. The
    C base keeps the core handle's address (_addr, 0 once closed) where the
    C Task finds it."""

    def __init__(self):
        out = ffi.new("uva_loop_t **")
        check(lib.uva_loop_new(out), "loop")
        self._h = out[0]
        # Our reference on the core loop's memory, for the calls other
        # threads make (call_soon_threadsafe, stop): it outlives close(),
        # after which they find the loop closed, not freed. Dropped in
        # __del__, when no thread can be in such a call any more.
        lib.uva_loop_retain(self._h)
        self._xh = self._h
        self._addr = int(ffi.cast("intptr_t", self._h))  # for the C Task
        self._task_cell = ffi.new("uva_task_t **")
        self._timer_cell = ffi.new("uva_timer_t **")
        # scratch for reads: filled by the core, copied out in the same step
        self._rbuf = _new_raw("char[]", _RBUF_SIZE)
        self._size_cell = ffi.new("size_t *")
        self._int_cell = ffi.new("int *")
        self._keep = set()  # handles of callbacks not yet called
        self._objects = None  # WeakSet of bound core objects (lazily)
        self._main = None  # the task run_until_complete waits for
        self._abort_exc = None  # KeyboardInterrupt/SystemExit to re-raise
        self._exc_handler = None
        self._running = False
        self._sig = None  # signal watcher (socketpair, task)
        self._signal_handlers = {}  # signum -> _signals._Watcher
        self._t0 = time.monotonic()
        self._jobs = set()  # run_in_executor calls on the core pool
        self._jobs_waiters = []  # Futures set once _jobs is empty
        self._default_executor = None  # None: the core pool
        self._executor_shutdown_called = False

    def _ptr(self):
        h = self._h
        if h is None:
            raise RuntimeError("Event loop is closed")
        return h

    def __repr__(self):
        return "<uvasync.Loop running=%s closed=%s>" % (
            self._running,
            self._h is None,
        )

    # -- tasks -------------------------------------------------------------

    def create_task(self, coro, *, name=None, context=None):
        return Task(coro, self, name, context)

    def _live_tasks(self):
        return set(t for t in _c_live_tasks() if t._loop is self)

    def create_future(self):
        return Future(self)

    # -- callbacks ---------------------------------------------------------

    def call_soon(self, callback, *args, context=None):
        """Run callback(*args) at the next pass, in FIFO order."""
        handle = Handle(self, callback, args, context)
        h = ffi.new_handle(handle)
        check(
            lib.uva_loop_call_soon(self._ptr(), lib._uvapy_call, h),
            "call_soon",
        )
        self._keep.add(h)
        return handle

    def call_soon_threadsafe(self, callback, *args, context=None):
        """As call_soon, from any thread; wakes a loop blocked in I/O."""
        handle = Handle(self, callback, args)
        h = ffi.new_handle(handle)
        self._keep.add(h)
        # _xh, not _h: close() may run meanwhile in the loop's thread (this
        # C call runs without the GIL); the core then refuses the call.
        rc = lib.uva_loop_call_soon_threadsafe(self._xh, lib._uvapy_call, h)
        if rc < 0:
            self._keep.discard(h)
            if rc == lib.UVA_ECLOSED:
                raise RuntimeError("Event loop is closed")
            raise error(rc, "call_soon_threadsafe")
        return handle

    def call_later(self, delay, callback, *args, context=None):
        """Run callback(*args) after `delay` seconds (a core timer)."""
        return self._call_later_ms(
            _to_ms(max(delay, 0)), callback, args, context=context
        )

    def call_later_ms(self, delay_ms, callback, *args):
        return self._call_later_ms(max(int(delay_ms), 0), callback, args)

    def call_at(self, when, callback, *args, context=None):
        """Run callback(*args) at loop time `when` (see time())."""
        return self._call_later_ms(
            _to_ms(max(when - self.time(), 0)), callback, args, when, context
        )

    def _call_later_ms(self, ms, callback, args, when=None, context=None):
        handle = Handle(self, callback, args, context)
        handle._when = self.time() + ms / 1000.0 if when is None else when
        h = ffi.new_handle(handle)
        cell = self._timer_cell
        check(
            lib.uva_timer_new(cell, self._ptr(), lib._uvapy_timer, h, NULL),
            "call_later",
        )
        timer = cell[0]
        rc = lib.uva_timer_start(timer, ms if ms < _MAX_MS else _MAX_MS, 0)
        if rc < 0:
            lib.uva_timer_close(timer, NULL)
            raise error(rc, "call_later")
        handle._timer = (timer, h)
        self._keep.add(handle)
        return handle

    def _drop_timer(self, handle):
        t = handle._timer
        if t is not None:
            handle._timer = None
            self._keep.discard(handle)
            if self._h is not None:
                lib.uva_timer_close(t[0], NULL)

    def time(self):
        """The loop's clock in seconds (monotonic)."""
        return time.monotonic()

    # -- blocking calls on the loop's thread pool (executor.py) -------------

    def run_in_executor(self, executor, func, *args):
        """A Future of func(*args) run in another thread: on `executor` (a
        concurrent.futures.Executor) or, for None, on the default one: the
        core loop's thread pool unless set_default_executor set another.
        Cancelling the Future drops the call if it has not started yet; a
        running one finishes and its result is discarded."""
        return _executor.run_in_executor(self, executor, func, args)

    def set_default_executor(self, executor):
        """Use a ThreadPoolExecutor for run_in_executor(None, ...) and
        to_thread instead of the core pool (as asyncio)."""
        _executor.set_default_executor(self, executor)

    def shutdown_default_executor(self, timeout=None):
        """Coroutine: refuse further run_in_executor(None, ...) calls and
        wait for those made to end (asyncio.run calls it at its end)."""
        return _executor.shutdown_default_executor(self, timeout)

    def set_pool_size(self, n):
        """The most threads the core pool runs at once (1..1024; default
        min(32, CPUs + 4), as asyncio's default executor). May be changed
        any time: threads above a lowered size leave once idle."""
        if not 1 <= n <= 1024:
            raise ValueError("the pool size must be 1..1024, not %r" % (n,))
        check(
            lib.uva_loop_configure(self._ptr(), lib.UVA_LOOP_POOL_SIZE, n),
            "set_pool_size",
        )

    def get_pool_size(self):
        cell = ffi.new("uint64_t *")
        check(
            lib.uva_loop_get_option(cell, self._ptr(), lib.UVA_LOOP_POOL_SIZE),
            "get_pool_size",
        )
        return cell[0]

    # -- running -----------------------------------------------------------

    def _abort_run(self, exc):
        """A KeyboardInterrupt/SystemExit met in a step or callback: stop
        the loop; run_* re-raises it."""
        if self._abort_exc is None:
            self._abort_exc = exc
        lib.uva_loop_stop(self._h)

    def _run(self, keep_alive):
        if self._running:
            raise RuntimeError("This event loop is already running")
        if _tls.running is not None:
            raise RuntimeError(
                "Cannot run the event loop while another loop is running"
            )
        h = self._ptr()
        keeper = None
        if keep_alive:  # run_forever: stay up with no work, until stop()
            keeper = self._call_later_ms(_MAX_MS, lambda: None, ())
        restore = self._sigint_install()
        self._running = True
        _tls.running = self
        try:
            rc = lib._uvapy_run(h, lib.UVA_RUN_DEFAULT)
        finally:
            _tls.running = None
            self._running = False
            if restore is not None:
                restore()
            if keeper is not None:
                keeper.cancel()
        exc = self._abort_exc
        if exc is not None:
            self._abort_exc = None
            raise exc
        check(rc, "run")

    def run_forever(self):
        """Run until stop() is called."""
        self._run(True)

    def run_until_complete(self, future):
        """Run until `future` (a coroutine, Task or Future) is done; return
        its result or raise its exception."""
        if isinstance(future, Task):
            task = future
        elif hasattr(future, "send"):
            task = Task(future, self)
        else:  # a Future or another awaitable: awaited by a task
            task = Task(_await(future), self)
        if task._loop is not self:
            raise ValueError("the task belongs to another loop")
        if task.done():
            return task.result()
        prev, self._main = self._main, task
        try:
            self._run(False)
        except BaseException:
            if task.done() and not task.cancelled():
                task._retrieved()
            raise
        finally:
            self._main = prev
        if not task.done():
            raise RuntimeError("Event loop stopped before Future completed.")
        return task.result()

    def stop(self):
        """Stop after the current pass (thread-safe). Does nothing once
        the loop is closed (the core returns UVA_ECLOSED)."""
        lib.uva_loop_stop(self._xh)

    def is_running(self):
        return self._running

    def is_closed(self):
        return self._h is None

    # -- Ctrl-C --------------------------------------------------------------

    def _sigint_install(self):
        """While the loop runs in the main thread, signals with a Python
        handler are seen at once and Ctrl-C stops the loop (_signals.py)."""
        return _signals.sigint_install(self)

    def _signal_watcher(self):
        if self._sig is None:
            self._sig = _signals.new_watcher(self, Task)

    def add_signal_handler(self, sig, callback, *args):
        """Run callback(*args) on the loop when signal `sig` arrives (a
        core signal watcher: a loop in any thread may watch signals)."""
        _signals.add_handler(self, sig, callback, args, Handle)

    def remove_signal_handler(self, sig):
        return _signals.remove_handler(self, sig)

    # -- errors ------------------------------------------------------------

    def set_exception_handler(self, handler):
        """handler(loop, context) gets what no one else handled."""
        if handler is not None and not callable(handler):
            raise TypeError("handler must be callable or None")
        self._exc_handler = handler

    def get_exception_handler(self):
        return self._exc_handler

    def default_exception_handler(self, context):
        _default_handler_log(context)

    def call_exception_handler(self, context):
        handler = self._exc_handler
        if handler is None:
            self.default_exception_handler(context)
            return
        try:
            handler(self, context)
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as e:
            _default_handler_log(
                {
                    "message": "Unhandled error in exception handler",
                    "exception": e,
                    "context": context,
                }
            )

    # -- core objects bound to this loop (closed with it) --------------------

    def _bind(self, obj):
        objs = self._objects
        if objs is None:
            import weakref

            objs = self._objects = weakref.WeakSet()
        objs.add(obj)

    # -- closing -------------------------------------------------------------

    def close(self):
        """Close the loop. Tasks still pending are reported to the
        exception handler, cancelled and run to their end; open streams,
        servers and other objects bound to the loop are closed."""
        if self._running:
            raise RuntimeError("Cannot close a running event loop")
        h = self._h
        if h is None:
            return
        for signum in list(self._signal_handlers):
            self.remove_signal_handler(signum)
        sig = self._sig
        pending = [
            t for t in self._live_tasks() if sig is None or t is not sig[2]
        ]
        for t in pending:
            self.call_exception_handler(
                {"message": "Task was destroyed but it is pending!", "task": t}
            )
        self._drain(cancel=True)
        _executor.close_executor(self)
        for obj in list(self._objects or ()):
            obj._detach()
        for handle in list(self._keep):
            if isinstance(handle, Handle):
                handle._cancelled = True
                self._drop_timer(handle)
        rc = lib.UVA_EBUSY
        for _ in range(1000):  # closes complete within a pass or two
            rc = lib.uva_loop_close(h)
            if rc != lib.UVA_EBUSY:
                break
            # A pool job closed while it runs holds the loop until its
            # call returns: wait in the kernel for its end, not spin.
            mode = lib.UVA_RUN_ONCE if self._jobs else lib.UVA_RUN_NOWAIT
            lib._uvapy_run(h, mode)
            self._drain(cancel=True)
        if rc < 0:
            warnings.warn(
                "uvasync: the loop could not be closed (%s); its "
                "memory is leaked" % ffi.string(lib.uva_strerror(rc)).decode(),
                RuntimeWarning,
                stacklevel=2,
            )
        self._h = None
        self._addr = 0
        if sig is not None:
            sig[0].close()
            sig[1].close()
            self._sig = None
        self._keep.clear()
        if _tls.loop is self:
            _tls.loop = None

    def _drain(self, cancel):
        """Cancel the live tasks and run passes until they are gone (or a
        task keeps ignoring its cancellation)."""
        h = self._h
        for _ in range(100):
            tasks = self._live_tasks()
            if not tasks:
                return
            for t in tasks:
                if cancel and t._ctask is not None:
                    lib.uva_task_ref(t._ctask)  # daemon tasks too
                    lib.uva_task_cancel(t._ctask)
            _tls.running = self
            try:
                lib._uvapy_run(h, lib.UVA_RUN_NOWAIT)
            finally:
                _tls.running = None
        if self._live_tasks():
            warnings.warn(
                "uvasync: tasks ignored cancellation at close: %r"
                % (list(self._live_tasks()),),
                RuntimeWarning,
                stacklevel=2,
            )

    def __del__(self):
        if self._h is not None and not self._running:
            try:
                self.close()
            except Exception:
                pass
        xh = self.__dict__.pop("_xh", None)
        if xh is not None:
            try:
                lib.uva_loop_release(xh)  # frees the core loop if closed
            except Exception:  # interpreter shutdown
                pass

    # -- Python asyncio compatibility ----------------------------------------

    def get_debug(self):
        return False

    def set_debug(self, enabled):
        pass


# --------------------------------------------------------------------------
# Module-level loop functions
# --------------------------------------------------------------------------


def get_event_loop(runq_len=None, waitq_len=None):
    """The running loop, else this thread's loop (made on first use)."""
    loop = _tls.running
    if loop is not None:
        return loop
    loop = _tls.loop
    if loop is None or loop._h is None:
        loop = _tls.loop = Loop()
    return loop


_internal.get_event_loop = get_event_loop  # for Poll(fd) in poll.py


def get_running_loop():
    loop = _tls.running
    if loop is None:
        raise RuntimeError("no running event loop")
    return loop


def new_event_loop():
    """A new loop, which becomes this thread's current loop (as in
    MicroPython; CPython code that calls set_event_loop works the same)."""
    loop = _tls.loop = Loop()
    return loop


def set_event_loop(loop):
    _tls.loop = loop


# The C step finds the task table, the sentinel and _drive through this.
if lib._uvapy_setup() != 0:
    raise ImportError("uvasync: the step function could not be set up")
