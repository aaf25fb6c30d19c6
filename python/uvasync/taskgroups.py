"""TaskGroup: tasks that live and die together, as CPython's
asyncio.TaskGroup (3.11).

    async with uvasync.TaskGroup() as tg:
        tg.create_task(a())
        tg.create_task(b())
    # here a() and b() have both ended

The block's end waits for every task of the group. The first task that
fails with an exception (other than CancelledError) cancels the others and
the task running the block (the "parent", so that an await in the block
ends too); the parent's cancellation is taken back with uncancel() when
the block ends, and the failures come out as one ExceptionGroup
(BaseExceptionGroup if one is not an Exception). KeyboardInterrupt and
SystemExit are raised as they are. A cancellation of the parent from
elsewhere cancels the group's tasks and goes on as CancelledError.

The tasks are core tasks; waiting for them is one Future the last task's
done callback completes. The end of the block follows CPython 3.12+ (the
parent's uncancel() after the tasks have ended; when the parent is also
being cancelled from outside, its cancellation is renewed so that it
still happens after the ExceptionGroup), and create_task() closes the
coroutine it refuses.
"""

from .core import CancelledError, current_task, get_running_loop

try:
    BaseExceptionGroup = BaseExceptionGroup  # Python 3.11+
except NameError:  # the backport, a dependency on Python < 3.11
    from exceptiongroup import BaseExceptionGroup

__all__ = ["TaskGroup"]


def _is_base_error(exc):
    return isinstance(exc, (SystemExit, KeyboardInterrupt))


class TaskGroup:
    """An async context manager that owns tasks made with create_task()."""

    def __init__(self):
        self._entered = False
        self._exiting = False
        self._aborting = False
        self._loop = None
        self._parent_task = None
        self._parent_cancel_requested = False
        self._tasks = set()
        self._errors = []
        self._base_error = None
        self._on_completed = None  # a Future while the block's end waits

    def __repr__(self):
        info = []
        if self._tasks:
            info.append("tasks=%d" % len(self._tasks))
        if self._errors:
            info.append("errors=%d" % len(self._errors))
        if self._aborting:
            info.append("cancelling")
        elif self._entered:
            info.append("entered")
        return "<TaskGroup%s>" % "".join(" " + i for i in info)

    async def __aenter__(self):
        if self._entered:
            raise RuntimeError("TaskGroup %r has already been entered" % self)
        if self._loop is None:
            self._loop = get_running_loop()
        self._parent_task = current_task()
        if self._parent_task is None:
            raise RuntimeError(
                "TaskGroup %r cannot determine the parent task" % self
            )
        self._entered = True
        return self

    async def __aexit__(self, et, exc, tb):
        try:
            return await self._aexit(et, exc)
        finally:
            # exceptions hold frames, frames hold us: break the cycles
            self._parent_task = None
            self._errors = None
            self._base_error = None

    async def _aexit(self, et, exc):
        self._exiting = True
        if (
            exc is not None
            and _is_base_error(exc)
            and self._base_error is None
        ):
            self._base_error = exc
        cancelled_by = (
            exc if et is not None and issubclass(et, CancelledError) else None
        )
        if et is not None and not self._aborting:
            # the block raised (or the parent is being cancelled): the
            # group's tasks go too
            self._abort()

        # The wait may be cancelled more than once (the parent cancelled
        # from outside, or by a failing task of ours): wait again each time.
        while self._tasks:
            if self._on_completed is None:
                self._on_completed = self._loop.create_future()
            try:
                await self._on_completed
            except CancelledError as e:
                if not self._aborting:
                    # the parent is cancelled from outside while we wait
                    cancelled_by = e
                    self._abort()
            self._on_completed = None

        if self._base_error is not None:
            raise self._base_error

        if self._parent_cancel_requested:
            # we cancelled the parent: take it back; if no other request is
            # left, the CancelledError the block saw was only ours
            if self._parent_task.uncancel() == 0:
                cancelled_by = None

        # errors come before a cancellation
        if cancelled_by is not None and not self._errors:
            raise cancelled_by

        if et is not None and not issubclass(et, CancelledError):
            self._errors.append(exc)

        if self._errors:
            # The parent is cancelled from outside as well: renew that
            # request so that it is still delivered after the group's error.
            if self._parent_task.cancelling():
                self._parent_task.uncancel()
                self._parent_task.cancel()
            errors = self._errors
            raise BaseExceptionGroup(
                "unhandled errors in a TaskGroup", errors
            ) from None
        return None

    def create_task(self, coro, *, name=None, context=None):
        """Start `coro` as a task of the group (as create_task) and return
        the Task. Refused (RuntimeError, the coroutine is closed) before
        the block is entered, after the group has ended or while it is
        being cancelled."""
        if not self._entered:
            why = "has not been entered"
        elif self._exiting and not self._tasks:
            why = "is finished"
        elif self._aborting:
            why = "is shutting down"
        else:
            why = None
        if why is not None:
            close = getattr(coro, "close", None)
            if close is not None:
                close()
            raise RuntimeError("TaskGroup %r %s" % (self, why))
        if context is None:
            task = self._loop.create_task(coro, name=name)
        else:
            task = self._loop.create_task(coro, name=name, context=context)
        self._tasks.add(task)
        task.add_done_callback(self._on_task_done)
        return task

    def _abort(self):
        self._aborting = True
        for t in self._tasks:
            if not t.done():
                t.cancel()

    def _on_task_done(self, task):
        self._tasks.discard(task)
        fut = self._on_completed
        if fut is not None and not self._tasks and not fut.done():
            fut.set_result(True)

        if task.cancelled():
            return
        exc = task.exception()
        if exc is None:
            return
        self._errors.append(exc)
        if _is_base_error(exc) and self._base_error is None:
            self._base_error = exc

        if self._parent_task.done():
            # nobody is left to raise it to
            self._loop.call_exception_handler(
                {
                    "message": "Task %r has errored out but its parent task %r "
                    "is already completed" % (task, self._parent_task),
                    "exception": exc,
                    "task": task,
                }
            )
            return
        if not self._aborting and not self._parent_cancel_requested:
            # Stop what the block awaits now: cancel the parent, once; the
            # block's end takes this cancellation back.
            self._abort()
            self._parent_cancel_requested = True
            self._parent_task.cancel()
