"""An asyncio event loop on the core (issue 25): EventLoop implements
asyncio.AbstractEventLoop with the core's run queue, timers, streams and
waits, beside the native uvasync API on the same core loop.

Its Tasks and Futures are asyncio's own (asyncio.Task, asyncio.Future, or
what a task factory makes); what it schedules goes to the core: call_soon
to the core's run queue, call_later/call_at to its timer heap (one core
timer per TimerHandle, released when the handle is cancelled),
call_soon_threadsafe to its thread-safe queue. The handles are asyncio's
Handle and TimerHandle (subclasses of them). EventLoop is also a native
uvasync Loop, so native uvasync tasks run on the same loop object.
"""

import asyncio
import concurrent.futures
import socket
import sys
import threading
import time
import traceback
import warnings
import weakref
from asyncio import base_events, events, format_helpers, futures, tasks

from . import _signals, executor as _executor
from ._cext import LoopBase, _aio_setup, _work_submit
from ._ffi import check, ffi, lib
from ._internal import _MAX_MS, _tls
from .aio_datagram import DatagramMixin
from .aio_sockets import SocketsMixin
from .aio_streams import StreamsMixin
from .aio_subprocess import SubprocessMixin
from .core import Loop

__all__ = ["EventLoop", "EventLoopPolicy", "install", "new_asyncio_loop"]

logger = asyncio.log.logger  # the 'asyncio' logger, as asyncio logs

_PY311 = sys.version_info >= (3, 11)
_PY313 = sys.version_info >= (3, 13)


class Handle(events.Handle):
    """asyncio's Handle, made and run from the core's run queue by
    csrc/handle.c (which fills these slots itself)."""

    __slots__ = ()


class TimerHandle(events.TimerHandle):
    """asyncio's TimerHandle, with its core timer's address (_ctimer, None
    once it fired or was cancelled)."""

    __slots__ = ("_ctimer",)


def _handle_failed(handle, exc):
    """A handle's callback raised `exc` (not KeyboardInterrupt or
    SystemExit): the loop's exception handler hears of it, as asyncio's
    Handle._run reports it."""
    loop = handle._loop
    if _PY313:
        cb = format_helpers._format_callback_source(
            handle._callback, handle._args, debug=loop.get_debug()
        )
    else:
        cb = format_helpers._format_callback_source(
            handle._callback, handle._args
        )
    context = {
        "message": "Exception in callback %s" % (cb,),
        "exception": exc,
        "handle": handle,
    }
    if handle._source_traceback:
        context["source_traceback"] = handle._source_traceback
    loop.call_exception_handler(context)


_aio_setup(Handle, TimerHandle, _handle_failed)


class EventLoop(
    StreamsMixin,
    SocketsMixin,
    DatagramMixin,
    SubprocessMixin,
    Loop,
    asyncio.AbstractEventLoop,
):
    """An asyncio event loop whose run queue, timers and waits are the
    core's (usable as asyncio.run's loop_factory on 3.12+)."""

    def __init__(self):
        Loop.__init__(self)
        self._stopping = False
        self._thread_id = None
        self._task_factory = None
        self._exception_handler = None
        self._debug = False
        self.set_debug(_env_debug())
        self.slow_callback_duration = 0.1
        self._current_handle = None
        self._asyncgens = weakref.WeakSet()
        self._asyncgens_shutdown_called = False
        self._clock_resolution = time.get_clock_info("monotonic").resolution

    def __repr__(self):
        return "<%s running=%s closed=%s debug=%s>" % (
            type(self).__name__,
            self.is_running(),
            self.is_closed(),
            self.get_debug(),
        )

    def _check_closed(self):
        if self._h is None:
            raise RuntimeError("Event loop is closed")

    # -- running -------------------------------------------------------------

    def _check_running(self):
        if self.is_running():
            raise RuntimeError("This event loop is already running")
        if events._get_running_loop() is not None or _tls.running is not None:
            raise RuntimeError(
                "Cannot run the event loop while another loop is running"
            )
        self._adopt()

    def _adopt(self):
        """A loop that is not running belongs to the thread that uses it,
        as asyncio's may be made in one thread and run or closed in
        another: this thread becomes the core loop's owner (handle.c does
        the same when a call is refused as made from another thread)."""
        h = self._h
        if h is not None and not self._running:
            check(lib.uva_loop_adopt(h), "adopt")

    def run_forever(self):
        """Run until stop() is called."""
        self._check_closed()
        self._check_running()
        h = self._h
        self._set_coroutine_origin_tracking(self._debug)
        old_hooks = sys.get_asyncgen_hooks()
        # keeps the core's run going while nothing else is scheduled
        keeper = self.call_later(_MAX_MS / 1000.0, _nothing)
        restore = None
        try:
            self._thread_id = threading.get_ident()
            sys.set_asyncgen_hooks(
                firstiter=self._asyncgen_firstiter_hook,
                finalizer=self._asyncgen_finalizer_hook,
            )
            events._set_running_loop(self)
            _tls.running = self
            self._running = True
            restore = self._sigint_install()
            rc = lib._uvapy_run(h, lib.UVA_RUN_DEFAULT)
        finally:
            if restore is not None:
                restore()
            self._running = False
            _tls.running = None
            self._stopping = False
            self._thread_id = None
            events._set_running_loop(None)
            self._set_coroutine_origin_tracking(False)
            sys.set_asyncgen_hooks(*old_hooks)
            keeper.cancel()
        exc = self._abort_exc
        if exc is not None:
            self._abort_exc = None
            raise exc
        check(rc, "run")

    def run_until_complete(self, future):
        """Run until `future` (a Future, Task or coroutine) is done; return
        its result or raise its exception."""
        self._check_closed()
        self._check_running()
        new_task = not futures.isfuture(future)
        future = tasks.ensure_future(future, loop=self)
        if new_task:
            # the caller sees the outcome: no "destroyed pending" report
            future._log_destroy_pending = False
        future.add_done_callback(_stop_loop_of)
        try:
            self.run_forever()
        except BaseException:
            if new_task and future.done() and not future.cancelled():
                future.exception()  # retrieved: raised to the caller
            raise
        finally:
            future.remove_done_callback(_stop_loop_of)
        if not future.done():
            raise RuntimeError("Event loop stopped before Future completed.")
        return future.result()

    def stop(self):
        """Stop once the callbacks already scheduled for this pass have
        run (before run_forever: after its first pass)."""
        self._stopping = True
        lib.uva_loop_stop(self._xh)

    def is_running(self):
        return self._thread_id is not None

    def is_closed(self):
        return self._h is None

    def close(self):
        """Close the loop: callbacks and timers still scheduled are
        dropped, the default executor is shut down without waiting.
        RuntimeError while running; a closed loop is left as it is."""
        if self.is_running():
            raise RuntimeError("Cannot close a running event loop")
        if self._h is None:
            return
        if self._debug:
            logger.debug("Close %r", self)
        self._adopt()
        self._aio_closing = True  # what is still queued is dropped
        self._aio_close_timers()
        Loop.close(self)

    def __del__(self):
        if getattr(self, "_h", None) is not None and not self._running:
            warnings.warn(
                "unclosed event loop %r" % (self,),
                ResourceWarning,
                stacklevel=2,
                source=self,
            )
        Loop.__del__(self)

    # -- callbacks -----------------------------------------------------------

    def _check_callback(self, callback, method):
        if asyncio.iscoroutine(callback) or asyncio.iscoroutinefunction(
            callback
        ):
            raise TypeError("coroutines cannot be used with %s()" % method)
        if not callable(callback):
            raise TypeError(
                "a callable object was expected by %s(), got %r"
                % (method, callback)
            )

    def _check_thread(self):
        if self._thread_id is None:
            return
        if threading.get_ident() != self._thread_id:
            raise RuntimeError(
                "Non-thread-safe operation invoked on an event loop other "
                "than the current one"
            )

    # In C (csrc/handle.c): they make asyncio handles and put them in
    # the core's run queue, its thread-safe queue, or a core timer each.
    call_soon = LoopBase._aio_call_soon
    call_soon_threadsafe = LoopBase._aio_call_soon_threadsafe
    call_later = LoopBase._aio_call_later
    call_at = LoopBase._aio_call_at
    time = LoopBase._aio_time
    # asyncio's TimerHandle.cancel() tells the loop: the core timer goes
    _timer_handle_cancelled = LoopBase._aio_drop_timer

    def _call_soon_debug(self, callback, args, context):
        # call_soon in debug mode: checked, and the handle made by
        # asyncio's Handle.__init__, which records where
        self._check_thread()
        self._check_callback(callback, "call_soon")
        handle = Handle(callback, args, self, context)
        if handle._source_traceback:
            del handle._source_traceback[-1]
        return self._aio_enqueue(handle)

    def _threadsafe_handle_debug(self, callback, args, context):
        # call_soon_threadsafe's handle in debug mode (from any thread),
        # made by asyncio's Handle.__init__, which records where; the C
        # side queues it
        handle = Handle(callback, args, self, context)
        if handle._source_traceback:
            del handle._source_traceback[-1]
        return handle

    def _call_at_debug(self, when, callback, args, context):
        self._check_thread()
        self._check_callback(callback, "call_at")
        timer = TimerHandle(when, callback, args, self, context)
        if timer._source_traceback:
            del timer._source_traceback[-1]
        self._aio_arm(timer)
        return timer

    def _run_handle(self, handle):
        """Run a handle in debug mode: asyncio's Handle._run, timed (a
        warning past slow_callback_duration). KeyboardInterrupt and
        SystemExit stop the loop and come out of run_*."""
        self._current_handle = handle
        try:
            t0 = self.time()
            events.Handle._run(handle)
            dt = self.time() - t0
            if dt >= self.slow_callback_duration:
                base_events.logger.warning(
                    "Executing %s took %.3f seconds", _format(handle), dt
                )
        except (KeyboardInterrupt, SystemExit) as e:
            self._abort_run(e)
        finally:
            self._current_handle = None
            # A coroutine that failed in the callback keeps its frame in
            # its exception's traceback, and from 3.12 that frame's f_back
            # is this one: without this, a failed task would stay alive in
            # a cycle (task, exception, frames, handle) until the GC
            # collects it, and its 'exception was never retrieved' come
            # late. asyncio's _run_once drops its handle the same way.
            handle = None  # noqa: F841

    # -- futures and tasks ---------------------------------------------------

    def create_future(self):
        return futures.Future(loop=self)

    def create_task(self, coro, *, name=None, context=None):
        """Schedule a coroutine as an asyncio Task (or as the task
        factory makes it)."""
        self._check_closed()
        factory = self._task_factory
        if factory is None:
            if _PY311:
                task = tasks.Task(coro, loop=self, name=name, context=context)
            elif context is not None:
                raise TypeError("context needs Python 3.11+")
            else:
                task = tasks.Task(coro, loop=self, name=name)
            if task._source_traceback:
                del task._source_traceback[-1]
        else:
            if context is None:
                task = factory(self, coro)
            else:
                task = factory(self, coro, context=context)
            if name is not None:
                task.set_name(name)
        return task

    def set_task_factory(self, factory):
        if factory is not None and not callable(factory):
            raise TypeError("task factory must be a callable or None")
        self._task_factory = factory

    def get_task_factory(self):
        return self._task_factory

    # -- blocking calls: the core's thread pool -------------------------------

    def run_in_executor(self, executor, func, *args):
        """An asyncio Future of func(*args) run in another thread: on
        `executor`, or for None on the default executor: the core loop's
        thread pool unless set_default_executor set another."""
        self._check_closed()
        if self._debug:
            self._check_callback(func, "run_in_executor")
        if executor is None:
            if self._executor_shutdown_called:
                raise RuntimeError("Executor shutdown has been called")
            executor = self._default_executor
        if executor is not None:
            return futures.wrap_future(executor.submit(func, *args), loop=self)
        self._adopt()
        future = self.create_future()
        job = _Job(self, future)
        addr = _work_submit(self, func, args, job)
        job.work = ffi.cast("uva_work_t *", addr)
        self._jobs.add(job)
        future.add_done_callback(job.future_done)
        return future

    def set_default_executor(self, executor):
        if not isinstance(executor, concurrent.futures.ThreadPoolExecutor):
            if _PY311:
                raise TypeError("executor must be ThreadPoolExecutor instance")
            warnings.warn(  # as asyncio before 3.11
                "Using the default executor that is not an instance of "
                "ThreadPoolExecutor is deprecated and will be prohibited "
                "in Python 3.9",
                DeprecationWarning,
                stacklevel=2,
            )
        self._default_executor = executor

    async def shutdown_default_executor(self, timeout=None):
        """Refuse further run_in_executor(None, ...) calls and wait for
        those made to end (asyncio.run calls it at its end)."""
        await _executor.shutdown_default_executor(self, timeout)

    async def getaddrinfo(
        self, host, port, *, family=0, type=0, proto=0, flags=0
    ):
        """socket.getaddrinfo on the core's thread pool (as asyncio runs it
        on its default executor)."""
        return await self._pool_call(
            socket.getaddrinfo, host, port, family, type, proto, flags
        )

    async def getnameinfo(self, sockaddr, flags=0):
        """socket.getnameinfo on the core's thread pool."""
        return await self._pool_call(socket.getnameinfo, sockaddr, flags)

    def _pool_call(self, func, *args):
        # always the core pool, even after shutdown_default_executor
        self._adopt()
        future = self.create_future()
        job = _Job(self, future)
        addr = _work_submit(self, func, args, job)
        job.work = ffi.cast("uva_work_t *", addr)
        self._jobs.add(job)
        future.add_done_callback(job.future_done)
        return future

    # -- signals ---------------------------------------------------------------

    def add_signal_handler(self, sig, callback, *args):
        """Run callback(*args) on the loop when signal `sig` arrives (a
        core signal watcher; the loop may run in any thread)."""
        if asyncio.iscoroutine(callback) or asyncio.iscoroutinefunction(
            callback
        ):
            raise TypeError(
                "coroutines cannot be used with add_signal_handler()"
            )
        self._check_closed()
        self._adopt()
        _signals.add_handler(self, sig, callback, args, self._signal_handle)

    def _signal_handle(self, loop, callback, args):
        return Handle(callback, args, self, None)

    def remove_signal_handler(self, sig):
        self._adopt()
        return _signals.remove_handler(self, sig)

    # -- asynchronous generators ----------------------------------------------

    def _asyncgen_finalizer_hook(self, agen):
        self._asyncgens.discard(agen)
        if not self.is_closed():
            self.call_soon_threadsafe(self.create_task, agen.aclose())

    def _asyncgen_firstiter_hook(self, agen):
        if self._asyncgens_shutdown_called:
            warnings.warn(
                "asynchronous generator %r was scheduled after "
                "loop.shutdown_asyncgens() call" % (agen,),
                ResourceWarning,
                stacklevel=2,
                source=self,
            )
        self._asyncgens.add(agen)

    async def shutdown_asyncgens(self):
        """Close the asynchronous generators still alive (aclose())."""
        self._asyncgens_shutdown_called = True
        if not len(self._asyncgens):
            return
        agens = list(self._asyncgens)
        self._asyncgens.clear()
        results = await tasks.gather(
            *[ag.aclose() for ag in agens], return_exceptions=True
        )
        for result, agen in zip(results, agens):
            if isinstance(result, Exception):
                self.call_exception_handler(
                    {
                        "message": "an error occurred during closing of "
                        "asynchronous generator %r" % (agen,),
                        "exception": result,
                        "asyncgen": agen,
                    }
                )

    # -- errors ----------------------------------------------------------------

    def get_exception_handler(self):
        return self._exception_handler

    def set_exception_handler(self, handler):
        if handler is not None and not callable(handler):
            raise TypeError(
                "A callable object or None is expected, got %r" % (handler,)
            )
        self._exception_handler = handler

    def default_exception_handler(self, context):
        """Log the context through the 'asyncio' logger, as asyncio does."""
        _default_exception_handler(self, context)

    def call_exception_handler(self, context):
        if self._exception_handler is None:
            try:
                self.default_exception_handler(context)
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException:
                logger.error(
                    "Exception in default exception handler", exc_info=True
                )
            return
        try:
            thing = context.get("task") or context.get("future")
            thing = thing or context.get("handle")
            ctx = None
            if thing is not None and hasattr(thing, "get_context"):
                ctx = thing.get_context()
            if ctx is not None and hasattr(ctx, "run"):
                ctx.run(self._exception_handler, self, context)
            else:
                self._exception_handler(self, context)
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            try:
                self.default_exception_handler(
                    {
                        "message": "Unhandled error in exception handler",
                        "exception": exc,
                        "context": context,
                    }
                )
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException:
                logger.error(
                    "Exception in default exception handler while handling "
                    "an unexpected error in custom exception handler",
                    exc_info=True,
                )

    # -- debug mode ------------------------------------------------------------

    def get_debug(self):
        return self._debug

    def set_debug(self, enabled):
        self._debug = self._aio_debug = bool(enabled)
        if self.is_running():
            self.call_soon_threadsafe(
                self._set_coroutine_origin_tracking, self._debug
            )

    def _set_coroutine_origin_tracking(self, enabled):
        if bool(enabled) == bool(getattr(self, "_origin_tracking", False)):
            return
        if enabled:
            self._origin_depth = sys.get_coroutine_origin_tracking_depth()
            sys.set_coroutine_origin_tracking_depth(
                asyncio.coroutines._DEBUG_STACK_DEPTH
                if hasattr(asyncio.coroutines, "_DEBUG_STACK_DEPTH")
                else 10
            )
        else:
            sys.set_coroutine_origin_tracking_depth(self._origin_depth)
        self._origin_tracking = bool(enabled)


class _Job(_executor._Job):
    """A call on the core pool for an asyncio Future: the exceptions of
    concurrent.futures come out as asyncio's (CancelledError,
    TimeoutError, InvalidStateError), as asyncio's wrapped executor
    futures give them."""

    __slots__ = ()

    def _ended(self, status, value, failed):
        if failed:
            value = futures._convert_future_exc(value)
        _executor._Job._ended(self, status, value, failed)


def _nothing():
    pass


def _stop_loop_of(future):
    future.get_loop().stop()


def _env_debug():
    """asyncio's own debug default (-X dev, or PYTHONASYNCIODEBUG set and
    not ignored by -E), from asyncio itself so that the two agree."""
    return asyncio.coroutines._is_debug_mode()


def _format(handle):
    """A slow handle as asyncio names it: the Task whose step it runs, or
    the handle itself."""
    owner = getattr(handle._callback, "__self__", None)
    if isinstance(owner, tasks.Task):
        return repr(owner)
    return str(handle)


def _default_exception_handler(loop, context):
    """asyncio's default handler: the message, then each other key of
    the context (tracebacks as text, the rest repr'd), logged as an
    error with the exception's traceback."""
    message = context.get("message") or "Unhandled exception in event loop"
    exc = context.get("exception")
    exc_info = (
        (type(exc), exc, exc.__traceback__) if exc is not None else False
    )
    current = loop._current_handle
    if (
        "source_traceback" not in context
        and current is not None
        and current._source_traceback
    ):
        context["handle_traceback"] = current._source_traceback
    lines = [message]
    for key in sorted(context):
        if key in ("message", "exception"):
            continue
        value = context[key]
        if key == "source_traceback":
            value = (
                "Object created at (most recent call last):\n"
                + "".join(traceback.format_list(value)).rstrip()
            )
        elif key == "handle_traceback":
            value = (
                "Handle created at (most recent call last):\n"
                + "".join(traceback.format_list(value)).rstrip()
            )
        else:
            value = repr(value)
        lines.append("%s: %s" % (key, value))
    # asyncio's loops log through base_events.logger (the 'asyncio' logger),
    # read at each call: what replaces it (a test's mock) hears ours too
    base_events.logger.error("\n".join(lines), exc_info=exc_info)


# -- installing ----------------------------------------------------------------


class EventLoopPolicy(asyncio.DefaultEventLoopPolicy):
    """asyncio's default policy, making EventLoops (uvloop's
    EventLoopPolicy, for uvasync): asyncio.set_event_loop_policy(
    uvasync.EventLoopPolicy())."""

    def new_event_loop(self):
        return EventLoop()


def install():
    """Make asyncio use EventLoop from now on (sets the policy, as
    uvloop.install())."""
    asyncio.set_event_loop_policy(EventLoopPolicy())


def new_asyncio_loop():
    """A new EventLoop (not made the thread's current loop)."""
    return EventLoop()
