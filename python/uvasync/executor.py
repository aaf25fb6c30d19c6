"""Blocking calls off the loop: run_in_executor, the default executor,
to_thread and wrap_future, as asyncio's (base_events.py, threads.py,
futures.py).

The default executor is the core loop's own thread pool: each call is a
core job (uva_work_submit) whose C trampoline (csrc/work.c) takes the GIL
on the pool thread only around the call, and whose end completes the
Future on the loop thread. Cancelling that Future closes the job: one not
yet started is dropped (it never runs), one running finishes and its
result is discarded, as cancelling asyncio's wrapped executor future does.
A concurrent.futures.Executor passed in, or set with set_default_executor,
is used as asyncio uses it: submit, and the concurrent future chained to a
loop Future through call_soon_threadsafe.

The Loop methods delegate here (the module imports nothing of core, so
core can import it).
"""

import asyncio
import concurrent.futures
import contextvars
import functools
import threading
import warnings

from ._cext import _work_submit
from ._ffi import error, ffi, lib
from ._internal import _tls

__all__ = ["to_thread", "wrap_future"]

_ECANCELED = lib.UVA_ECANCELED


def _asyncio_error(exc):
    """concurrent.futures' CancelledError, TimeoutError and
    InvalidStateError as asyncio's, as asyncio's run_in_executor gives
    them (they are other classes, and asyncio's CancelledError is a
    BaseException)."""
    cls = type(exc)
    if cls is concurrent.futures.CancelledError:
        return asyncio.CancelledError(*exc.args)
    if cls is concurrent.futures.TimeoutError:
        return asyncio.TimeoutError(*exc.args)
    if cls is concurrent.futures.InvalidStateError:
        return asyncio.InvalidStateError(*exc.args)
    return exc


class _Job:
    """One call on the core pool and the Future it completes. The loop
    keeps it (loop._jobs) until the core has freed the job: a job closed
    while it runs is still there until its call returned."""

    __slots__ = ("loop", "future", "work")

    def __init__(self, loop, future):
        self.loop = loop
        self.future = future
        self.work = None  # the uva_work_t (a cffi pointer) until closed

    def _ended(self, status, value, failed):
        """The job's end, on the loop thread (csrc/work.c)."""
        self.close()
        future = self.future
        if future.done():
            return
        if status == _ECANCELED:
            future.cancel()
        elif status < 0:
            future.set_exception(error(status, "run_in_executor"))
        elif failed:
            future.set_exception(_asyncio_error(value))
        else:
            future.set_result(value)

    def _freed(self):
        """The core freed the job (csrc/work.c): the call is over."""
        loop = self.loop
        loop._jobs.discard(self)
        if not loop._jobs:
            waiters, loop._jobs_waiters = loop._jobs_waiters, []
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(False)

    def future_done(self, future):
        """The Future is done: if it was cancelled first, the job goes
        (dropped if not started; a running one's result is discarded)."""
        if self.work is not None:
            self.close()

    def close(self):
        work, self.work = self.work, None
        if work is not None:
            lib.uva_work_close(work)


def run_in_executor(loop, executor, func, args):
    """loop.run_in_executor(executor, func, *args): a Future of func(*args)
    run on `executor` (None: the loop's default one)."""
    if loop.is_closed():
        raise RuntimeError("Event loop is closed")
    if executor is None:
        if loop._executor_shutdown_called:
            raise RuntimeError("Executor shutdown has been called")
        executor = loop._default_executor
    if executor is not None:
        return wrap_future(executor.submit(func, *args), loop=loop)
    if not callable(func):
        raise TypeError("a callable object was expected, got %r" % (func,))
    future = loop.create_future()
    job = _Job(loop, future)
    addr = _work_submit(loop, func, args, job)
    job.work = ffi.cast("uva_work_t *", addr)
    loop._jobs.add(job)
    future._notify.append(job.future_done)
    return future


def set_default_executor(loop, executor):
    if not isinstance(executor, concurrent.futures.ThreadPoolExecutor):
        raise TypeError("executor must be ThreadPoolExecutor instance")
    loop._default_executor = executor


async def shutdown_default_executor(loop, timeout=None):
    """Refuse further run_in_executor(None, ...) calls and wait until the
    calls already made have ended (a ThreadPoolExecutor set as default is
    shut down in a thread, as asyncio does). After `timeout` seconds, a
    RuntimeWarning and no more waiting (asyncio 3.12)."""
    loop._executor_shutdown_called = True
    executor = loop._default_executor
    if executor is None:  # the core pool: until every call has returned
        if not loop._jobs:
            return
        waiting = loop.create_future()
        loop._jobs_waiters.append(waiting)
        thread = None
    else:
        waiting = loop.create_future()
        thread = threading.Thread(
            target=_shutdown_in_thread, args=(loop, executor, waiting)
        )
        thread.start()
    handle = None
    if timeout is not None:
        handle = loop.call_later(timeout, _time_is_up, waiting)
    try:
        timed_out = await waiting
    finally:
        if handle is not None:
            handle.cancel()
    if timed_out:
        warnings.warn(
            "The executor did not finishing joining its threads within "
            "%s seconds." % (timeout,),
            RuntimeWarning,
            stacklevel=2,
        )
        if executor is not None:
            executor.shutdown(wait=False)
    elif thread is not None:
        thread.join()


def _time_is_up(waiting):
    if not waiting.done():
        waiting.set_result(True)


def _shutdown_in_thread(loop, executor, waiting):
    try:
        executor.shutdown(wait=True)
        if not loop.is_closed():
            loop.call_soon_threadsafe(_set_if_pending, waiting, False)
    except Exception as ex:
        if not loop.is_closed():
            loop.call_soon_threadsafe(_fail_if_pending, waiting, ex)


def _set_if_pending(future, value):
    if not future.done():
        future.set_result(value)


def _fail_if_pending(future, exc):
    if not future.done():
        future.set_exception(exc)


def close_executor(loop):
    """At loop.close(): jobs not started are dropped and running ones left
    to finish (their results discarded; close() waits for them, as the core
    loop cannot close before); a default ThreadPoolExecutor is shut down
    without waiting, as asyncio's close() does."""
    loop._executor_shutdown_called = True
    for job in list(loop._jobs):
        job.close()
        if not job.future.done():
            job.future.cancel()
    executor, loop._default_executor = loop._default_executor, None
    if executor is not None:
        executor.shutdown(wait=False)


async def to_thread(func, /, *args, **kwargs):
    """Run func(*args, **kwargs) on the running loop's default executor
    (the core pool) in a copy of the current contextvars context, as
    asyncio.to_thread: a ContextVar the caller set is seen by func, one
    func sets does not come back."""
    loop = _tls.running
    if loop is None:
        raise RuntimeError("no running event loop")
    ctx = contextvars.copy_context()
    call = functools.partial(ctx.run, func, *args, **kwargs)
    return await loop.run_in_executor(None, call)


def wrap_future(future, *, loop=None):
    """A loop Future of a concurrent.futures.Future: its outcome is copied
    over on the loop (call_soon_threadsafe); cancelling the loop Future
    cancels the concurrent one (which only a call not yet started obeys).
    A loop Future is returned as it is."""
    if not isinstance(future, concurrent.futures.Future):
        if hasattr(future, "get_loop") and hasattr(
            future, "add_done_callback"
        ):
            return future
        raise TypeError(
            "concurrent.futures.Future is expected, got %r" % (future,)
        )
    if loop is None:
        loop = _tls.running or _tls.loop
        if loop is None:
            raise RuntimeError("no running event loop")
    dest = loop.create_future()

    def on_dest_done(dest):
        if dest.cancelled():
            future.cancel()

    def on_source_done(source):
        if loop.is_closed():
            return
        loop.call_soon_threadsafe(_copy_state, source, dest)

    dest.add_done_callback(on_dest_done)
    future.add_done_callback(on_source_done)
    return dest


def _copy_state(source, dest):
    if dest.done():
        return
    if source.cancelled():
        dest.cancel()
        return
    exc = source.exception()
    if exc is not None:
        dest.set_exception(exc)
    else:
        dest.set_result(source.result())
