"""contextvars: each task runs in a copy of the context current when it was
made (or in the one given with context=), as in asyncio; callbacks run in
a copy of the context they were scheduled from."""

import contextvars
import sys

import uvasync

var = contextvars.ContextVar("var", default="unset")


def test_gathered_tasks_each_keep_their_own_value(aio):
    async def worker(name):
        var.set(name)
        await aio.sleep(0.01)
        await aio.sleep(0)
        return var.get()

    async def main():
        var.set("main")
        got = await aio.gather(worker("a"), worker("b"), worker("c"))
        return got, var.get()

    before = var.get()
    assert aio.run(main()) == (["a", "b", "c"], "main")
    assert var.get() == before  # the caller of run() is untouched too


def test_child_sees_the_parent_value_and_its_set_stays_in_it(aio):
    seen = []

    async def child():
        seen.append(var.get())  # the parent's value when it was made
        var.set("child")
        await aio.sleep(0)
        seen.append(var.get())

    async def main():
        var.set("parent")
        task = aio.create_task(child())
        var.set("parent, later")  # not seen by the child: it has a copy
        await aio.sleep(0)
        seen.append(var.get())
        await task
        seen.append(var.get())

    aio.run(main())
    assert seen == ["parent", "parent, later", "child", "parent, later"]


def test_a_task_runs_in_the_context_given(aio):
    ctx = contextvars.copy_context()
    ctx.run(var.set, "given")

    async def child():
        before = var.get()
        var.set("set in the task")
        await aio.sleep(0)
        return before

    async def main():
        var.set("main")
        task = aio.create_task(child(), context=ctx)
        if aio is uvasync or sys.version_info >= (3, 12):
            assert task.get_context() is ctx
        before = await task
        if aio is uvasync or sys.version_info >= (3, 12):
            assert task.get_context() is ctx
        return before, var.get()

    assert aio.run(main()) == ("given", "main")
    assert ctx[var] == "set in the task"  # the task wrote into ctx


def test_task_get_context_is_a_copy_of_the_creator_context():
    async def child():
        return var.get()

    async def main():
        var.set("main")
        task = uvasync.create_task(child())
        ctx = task.get_context()
        assert isinstance(ctx, contextvars.Context)
        assert ctx is not contextvars.copy_context()
        assert ctx[var] == "main"
        result = await task
        assert task.get_context() is ctx  # held, so kept after the end
        return result

    assert uvasync.run(main()) == "main"


def test_context_must_be_a_context():
    async def child():
        pass

    async def main():
        coro = child()
        try:
            uvasync.create_task(coro, context={"not": "a context"})
        except TypeError:
            coro.close()
            return "refused"

    assert uvasync.run(main()) == "refused"


def test_callbacks_run_in_a_copy_of_the_scheduler_context(aio):
    seen = []

    def cb(what):
        seen.append((what, var.get()))
        var.set("set by " + what)  # stays in the callback's copy

    async def main():
        loop = aio.get_running_loop()
        var.set("task")
        loop.call_soon(cb, "call_soon")
        loop.call_later(0.001, cb, "call_later")
        ctx = contextvars.copy_context()
        ctx.run(var.set, "given")
        loop.call_soon(cb, "context=", context=ctx)
        await aio.sleep(0.02)
        seen.append(("task", var.get()))
        seen.append(("ctx", ctx[var]))

    aio.run(main())
    assert seen == [
        ("call_soon", "task"),
        ("context=", "given"),
        ("call_later", "task"),
        ("task", "task"),
        ("ctx", "set by context="),
    ]


def test_seed_generator_tasks_have_their_own_context_too():
    import uasyncio

    seen = []

    def worker(name):
        var.set(name)
        yield from uasyncio.sleep_ms(5)
        seen.append((name, var.get()))

    def main():
        var.set("main")
        loop = uasyncio.get_event_loop()
        loop.create_task(worker("a"))
        loop.create_task(worker("b"))
        yield from uasyncio.sleep_ms(20)
        seen.append(("main", var.get()))

    loop = uasyncio.new_event_loop()
    loop.run_until_complete(main())
    loop.close()
    assert sorted(seen) == [("a", "a"), ("b", "b"), ("main", "main")]


def test_done_callbacks_run_in_the_context_they_were_added_in(aio):
    seen = []

    async def child():
        var.set("child")
        await aio.sleep(0)

    async def main():
        var.set("main")
        task = aio.create_task(child())
        task.add_done_callback(lambda t: seen.append(("task", var.get())))
        fut = aio.get_running_loop().create_future()
        fut.add_done_callback(lambda f: seen.append(("future", var.get())))
        var.set("main, later")  # after the adds: not what they see
        await task
        fut.set_result(None)
        await aio.sleep(0.01)

    aio.run(main())
    assert seen == [("task", "main"), ("future", "main")]


def test_a_running_task_context_is_entered(aio):
    # The step enters the task's context as Context.run would: entering it
    # again while the step runs is refused, between steps it is allowed,
    # and a set() made through it is seen by the task.
    async def child():
        ctx = (
            aio.current_task().get_context()
            if sys.version_info >= (3, 12) or aio is uvasync
            else None
        )
        if ctx is None:  # asyncio before 3.12: no get_context()
            return "skipped"
        try:
            ctx.run(var.set, "nested")
        except RuntimeError:
            refused = True
        else:
            refused = False
        await aio.sleep(0)
        return refused, ctx, var.get()

    async def main():
        task = aio.create_task(child())
        await aio.sleep(0)  # the child is suspended in its sleep
        if hasattr(task, "get_context"):
            task.get_context().run(var.set, "between steps")
        return await task

    got = aio.run(main())
    if got != "skipped":
        refused, ctx, seen = got
        assert refused and seen == "between steps"


def test_a_task_whose_context_is_entered_elsewhere_fails():
    # A step cannot enter a context that is current when it runs (here the
    # caller of run_until_complete runs the loop inside it): the task ends
    # with that RuntimeError. (asyncio logs it and the task never runs: its
    # run_until_complete would hang.)
    ctx = contextvars.copy_context()

    async def child():
        return var.get()

    loop = uvasync.new_event_loop()
    try:
        coro = child()
        task = loop.create_task(coro, context=ctx)
        try:
            ctx.run(loop.run_until_complete, task)
        except RuntimeError:
            pass
        assert task.done()
        assert isinstance(task.exception(), RuntimeError)
        coro.close()  # it never started
    finally:
        loop.close()
