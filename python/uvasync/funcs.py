"""wait_for, gather, shield and ensure_future: composition of tasks
(Future lives beside Task in core.py; it is re-exported here). The waiting
is done by the core (a sleep that a finishing task's done callback cuts
short, a join); this module only decides what the result is."""

import collections.abc
import inspect
import types

from ._cext import Gathering, _spawn_coros
from ._ffi import NULL, check, ffi, lib
from ._internal import (
    _PENDING,
    _ST_EXCEPTION,
    _ST_RESULT,
    _await,
    _current_ctask,
    _park,
    _tls,
    _to_ms,
)
from .core import (
    CancelledError,
    Future,
    Task,
    get_event_loop,
)

__all__ = [
    "wait_for",
    "wait_for_ms",
    "gather",
    "Future",
    "shield",
    "ensure_future",
    "iscoroutine",
    "iscoroutinefunction",
]

_CoroutineType = types.CoroutineType

_WAKE_ON_DONE = ffi.addressof(lib, "_uvapy_wake_on_done")


def _as_task(aw, loop=None):
    if isinstance(aw, (Task, Future)):
        return aw
    if hasattr(aw, "send"):
        return Task(aw, loop or _tls.running or get_event_loop())
    if hasattr(aw, "__await__"):
        return Task(_await(aw), loop or _tls.running or get_event_loop())
    raise TypeError("an awaitable is required, got %r" % (aw,))


@types.coroutine
def _wait_done(task):
    """Wait until `task` is done, without taking its result."""
    while not task.done():
        if isinstance(task, Future):
            yield from task._wait()
        else:
            check(lib.uva_task_join(NULL, task._ctask))
            yield _PENDING


@types.coroutine
def _sleep_or_done(task, ms):
    """Sleep up to ms, ending early when `task` finishes (its done callback
    wakes us, which abandons the sleep)."""
    ctask = _current_ctask()
    check(lib.uva_task_add_done_cb(task._ctask, _WAKE_ON_DONE, ctask))
    try:
        check(lib.uva_task_sleep(ctask, ms))
        yield _PENDING
    finally:
        if task._ctask is not None:
            lib.uva_task_remove_done_cb(task._ctask, _WAKE_ON_DONE, ctask)


async def wait_for_ms(aw, timeout):
    """As wait_for, with the timeout in milliseconds (MicroPython)."""
    task = _as_task(aw)
    if isinstance(task, Future) and not task.done():
        if int(timeout) <= 0:
            task.cancel()
            raise TimeoutError()
        # the timeout watches a core task: await the Future in one (whose
        # cancellation cancels the Future, as in CPython)
        task = Task(_await(task), task._loop)
    ms = int(timeout)
    if ms > 0 and not task.done():
        try:
            await _sleep_or_done(task, ms)
        except CancelledError:
            # Cancelled from outside: the inner task goes too. If it ends
            # with a result anyway (it finished before the cancellation
            # reached us, or ignored it), the result is returned, not lost:
            # a lock it took stays with the caller, a queue item or a line
            # it read is the caller's (as CPython's wait_for returns what
            # `await inner` gives).
            if not task.done():
                task.cancel()
                await _wait_done(task)
            if task.cancelled():
                raise
            return task.result()
        if task.done():
            return task.result()
    elif task.done():
        return task.result()
    # timed out: cancel the inner task and wait until it has ended
    task.cancel()
    await _wait_done(task)
    try:
        return task.result()  # it may have ignored the cancellation
    except CancelledError as e:
        raise TimeoutError() from e


async def wait_for(aw, timeout):
    """Wait for `aw` (run as a task) at most `timeout` seconds; then cancel
    it, wait for it to end, and raise TimeoutError. None: no limit."""
    if timeout is None:
        return await aw
    return await wait_for_ms(aw, _to_ms(timeout) if timeout > 0 else 0)


def gather(*aws, return_exceptions=False):
    """Run the awaitables concurrently (they start now) and return the list
    of their results, in order. The first exception propagates unless
    return_exceptions; cancelling the gather cancels them all."""
    if aws and type(aws[0]) is _CoroutineType:  # all coroutines: in C
        tasks = _spawn_coros(aws, _tls.running or get_event_loop())
        if tasks is not None:
            return _gather(tasks, return_exceptions)
    tasks = []
    loop = None
    for a in aws:
        if type(a) is _CoroutineType:  # the common case, without _as_task
            if loop is None:
                loop = _tls.running or get_event_loop()
            tasks.append(Task(a, loop))
        else:
            tasks.append(_as_task(a, loop))
    return _gather(tasks, return_exceptions)


async def _gather(tasks, return_exceptions):
    if not tasks:
        return []
    # The counting is in C (uvasync._cext.Gathering): each child's _notify
    # calls the state when the child ends, and the state wakes this task
    # once all are done, or one failed (unless return_exceptions; a child
    # that failed before counts at once). A child task that ends with a
    # result hands it to the state, and its slot in `tasks` becomes None.
    state = Gathering(return_exceptions)
    try:
        state.watch(tasks)
        while state.remaining > 0 and not state.failed:
            await _park()
    except CancelledError:
        for t in tasks:
            if t is not None:
                t.cancel()
        raise
    finally:
        state.release()
        if state.remaining > 0:  # children left: forget this gather
            for t in tasks:
                notify = None if t is None else t._notify
                if notify is state:
                    t._notify = None
                elif type(notify) is list and state in notify:
                    notify.remove(state)
    if state.failed:  # not return_exceptions
        for t in tasks:
            if t is not None and t.done() and t._state != _ST_RESULT:
                return t.result()  # raises its exception
    out = state.results()
    if return_exceptions:
        for t in tasks:
            if t is not None and t._state == _ST_EXCEPTION:
                t._retrieved()
    return out


def shield(aw):
    """Wait for `aw` without passing a cancellation on to it (CPython's
    shield). `aw` starts now (a coroutine becomes a task); the Future
    returned follows its outcome, and cancelling that Future (say, because
    the task awaiting it is cancelled) leaves `aw` running. A cancellation
    of `aw` itself still cancels the Future. Something already done is
    returned as it is."""
    inner = ensure_future(aw)
    if inner.done():
        return inner
    outer = Future(inner._loop)

    def inner_done(inner):
        if outer.cancelled():
            if not inner.cancelled():
                inner.exception()  # nobody waits for it any more
            return
        if inner.cancelled():
            outer.cancel()
            return
        exc = inner.exception()
        if exc is not None:
            outer.set_exception(exc)
        else:
            outer.set_result(inner.result())

    def outer_done(outer):
        if not inner.done():
            inner.remove_done_callback(inner_done)

    inner.add_done_callback(inner_done)
    outer.add_done_callback(outer_done)
    return outer


def iscoroutine(obj):
    """True for a coroutine object (as CPython 3.12+: a generator is not
    one; 3.11 still counted generators)."""
    return isinstance(obj, (_CoroutineType, collections.abc.Coroutine))


def iscoroutinefunction(func):
    """True for an `async def` function."""
    return inspect.iscoroutinefunction(func)


def ensure_future(coro_or_future, *, loop=None):
    """A Task or Future as it is (ValueError if `loop` is given and is not
    its loop); a coroutine, or any other awaitable, as a new Task."""
    obj = coro_or_future
    if isinstance(obj, (Task, Future)):
        if loop is not None and loop is not obj._loop:
            raise ValueError(
                "The future belongs to a different loop than "
                "the one specified as the loop argument"
            )
        return obj
    if not iscoroutine(obj):
        if not inspect.isawaitable(obj):
            raise TypeError(
                "An asyncio.Future, a coroutine or an awaitable is required"
            )
        obj = _await(obj)
    return (loop or _tls.running or get_event_loop()).create_task(obj)
