"""run, Runner and run_coroutine_threadsafe: driving a loop from synchronous
code, as CPython's asyncio.Runner (3.11) and run_coroutine_threadsafe.

A Runner keeps one loop for several run() calls (tasks a run left behind
go on in the next one) and closes it at the end: what is still pending is
cancelled and run to its end, and an exception one of those tasks ends
with goes to the loop's exception handler. Ctrl-C while run() waits is the
loop's (see Loop._sigint_install): run() raises KeyboardInterrupt.
"""

import concurrent.futures
from asyncio import CancelledError

from ._internal import _tls
from ._signals import install_sigint
from .core import Task, all_tasks, new_event_loop, set_event_loop
from .funcs import ensure_future, gather, iscoroutine

__all__ = ["run", "Runner", "run_coroutine_threadsafe"]

_CREATED, _INITIALIZED, _CLOSED = "created", "initialized", "closed"

# How long run() waits at its end for executor calls still running before
# it warns and goes on (asyncio's constants.THREAD_JOIN_TIMEOUT).
_THREAD_JOIN_TIMEOUT = 300


def run(main, *, debug=None):
    """Run coroutine `main` on a new loop and return its result; then
    cancel what is left, let it finish, and close the loop.

    Ctrl-C (SIGINT, when the program left its handler alone) is handled as
    asyncio.run does: the first cancels the main task, whose clean-up runs
    on the running loop; if it ends cancelled, run() raises
    KeyboardInterrupt. A second Ctrl-C raises KeyboardInterrupt at once."""
    if _tls.running is not None:
        raise RuntimeError("run() cannot be called from a running event loop")
    loop = new_event_loop()
    try:
        return _run_main(loop, Task(main, loop))
    finally:
        try:
            _cancel_leftovers(loop)
            loop.run_until_complete(
                loop.shutdown_default_executor(_THREAD_JOIN_TIMEOUT)
            )
        finally:
            loop.close()
            _tls.loop = None


def _run_main(loop, task):
    """Run the loop until `task` ends, with run()'s Ctrl-C rule (shared
    with Runner.run, as in asyncio): the first SIGINT cancels the task and
    lets its clean-up run; if it then ends cancelled, KeyboardInterrupt."""
    interrupts = []

    def on_sigint(signum, frame):
        interrupts.append(signum)
        if len(interrupts) == 1 and not task.done():
            task.cancel()  # the signal watcher has woken the loop
            return
        raise KeyboardInterrupt()

    restore = install_sigint(on_sigint)
    try:
        return loop.run_until_complete(task)
    except CancelledError:
        if interrupts and task.uncancel() == 0:
            # As asyncio.Runner: the CancelledError stays its context.
            raise KeyboardInterrupt()  # noqa: B904
        raise
    finally:
        if restore is not None:
            restore()


def _cancel_leftovers(loop):
    """As asyncio.run: cancel the tasks still pending and run the loop
    until they have ended (their clean-up may await), reporting an
    exception one ends with. Ctrl-C here stops the loop (KeyboardInterrupt),
    and close() cancels what is left without waiting."""
    sig = loop._sig
    tasks = [t for t in loop._live_tasks() if sig is None or t is not sig[2]]
    if not tasks:
        return
    for t in tasks:
        t.cancel()
    loop.run_until_complete(gather(*tasks, return_exceptions=True))
    for t in tasks:
        if not t.cancelled() and t.exception() is not None:
            loop.call_exception_handler(
                {
                    "message": "unhandled exception during uvasync.run() shutdown",
                    "exception": t.exception(),
                    "task": t,
                }
            )


class Runner:
    """`with Runner() as runner: runner.run(main())` -- run() may be
    called again on the same loop until the block ends. loop_factory()
    makes the loop (default: new_event_loop(), which also becomes the
    thread's current loop until close)."""

    def __init__(self, *, debug=None, loop_factory=None):
        self._state = _CREATED
        self._debug = debug
        self._loop_factory = loop_factory
        self._loop = None
        self._set_event_loop = False

    def __enter__(self):
        self._lazy_init()
        return self

    def __exit__(self, exc_type, exc, tb):
        self.close()

    def close(self):
        """Cancel what still runs on the loop, wait for it, close the loop.
        Nothing to do before the loop was made, or a second time."""
        if self._state is not _INITIALIZED:
            return
        loop = self._loop
        try:
            _cancel_all_tasks(loop)
            loop.run_until_complete(
                loop.shutdown_default_executor(_THREAD_JOIN_TIMEOUT)
            )
        finally:
            if self._set_event_loop:
                set_event_loop(None)
            loop.close()
            self._loop = None
            self._state = _CLOSED

    def get_loop(self):
        """The runner's loop (made now if it was not yet)."""
        self._lazy_init()
        return self._loop

    def run(self, coro, *, context=None):
        """Run `coro` as a task on the runner's loop until it ends; return
        its result or raise its exception. `context` needs a loop whose
        create_task takes one."""
        if not iscoroutine(coro):
            raise ValueError("a coroutine was expected, got %r" % (coro,))
        if _tls.running is not None:
            raise RuntimeError(
                "Runner.run() cannot be called from a running event loop"
            )
        self._lazy_init()
        if context is None:
            task = self._loop.create_task(coro)
        else:
            task = self._loop.create_task(coro, context=context)
        return _run_main(self._loop, task)  # Ctrl-C as in run()

    def _lazy_init(self):
        if self._state is _CLOSED:
            raise RuntimeError("Runner is closed")
        if self._state is _INITIALIZED:
            return
        if self._loop_factory is None:
            self._loop = new_event_loop()
            if not self._set_event_loop:
                set_event_loop(self._loop)
                self._set_event_loop = True
        else:
            self._loop = self._loop_factory()
        if self._debug is not None:
            self._loop.set_debug(self._debug)
        self._state = _INITIALIZED


def _cancel_all_tasks(loop):
    tasks = all_tasks(loop)
    if not tasks:
        return
    for t in tasks:
        t.cancel()
    loop.run_until_complete(gather(*tasks, return_exceptions=True))
    for t in tasks:
        if t.cancelled():
            continue
        exc = t.exception()
        if exc is not None:
            loop.call_exception_handler(
                {
                    "message": "unhandled exception during asyncio.run() shutdown",
                    "exception": exc,
                    "task": t,
                }
            )


def run_coroutine_threadsafe(coro, loop):
    """From another thread: run `coro` as a task on `loop` (which runs in
    its own thread) and return a concurrent.futures.Future of its outcome.
    Cancelling that Future cancels the task."""
    if not iscoroutine(coro):
        raise TypeError("A coroutine object is required")
    future = concurrent.futures.Future()

    def start():
        try:
            task = ensure_future(coro, loop=loop)
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            if future.set_running_or_notify_cancel():
                future.set_exception(exc)
            raise
        _chain(task, future, loop)

    loop.call_soon_threadsafe(start)
    return future


def _chain(task, future, loop):
    """Copy the task's outcome into the concurrent future; a cancel of the
    concurrent future (in any thread) cancels the task on its loop."""

    def task_done(task):
        if task.cancelled():
            future.cancel()
        if not future.set_running_or_notify_cancel():
            return  # cancelled (by us just now, or by its owner)
        exc = task.exception()
        if exc is not None:
            future.set_exception(exc)
        else:
            future.set_result(task.result())

    def future_done(future):
        if future.cancelled() and not loop.is_closed():
            loop.call_soon_threadsafe(_cancel_if_pending, task)

    task.add_done_callback(task_done)
    future.add_done_callback(future_done)


def _cancel_if_pending(task):
    if not task.done():
        task.cancel()
