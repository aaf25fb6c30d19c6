"""Tasks: create_task, await, result/exception/done/cancelled, done
callbacks, current_task, and the fairness of the run queue."""

import pytest

import uvasync


def test_create_task_runs_concurrently_and_await_returns_its_result(aio):
    order = []

    async def child(x):
        order.append("child starts")
        await aio.sleep(0)
        order.append("child ends")
        return x * 2

    async def main():
        task = aio.create_task(child(21))
        order.append("main after create_task")  # the child has not run yet
        result = await task
        order.append("main after await")
        return result

    assert aio.run(main()) == 42
    assert order == [
        "main after create_task",
        "child starts",
        "child ends",
        "main after await",
    ]


def test_task_state_while_pending_and_when_done(aio):
    async def child():
        await aio.sleep(0)
        return "value"

    async def main():
        task = aio.create_task(child())
        assert not task.done()
        assert not task.cancelled()
        with pytest.raises(aio.InvalidStateError):
            task.result()
        with pytest.raises(aio.InvalidStateError):
            task.exception()
        await task
        assert task.done()
        assert not task.cancelled()
        assert task.result() == "value"
        assert task.exception() is None

    aio.run(main())


def test_task_exception_propagates_to_the_awaiter_and_is_kept(aio):
    class Boom(Exception):
        pass

    async def child():
        await aio.sleep(0)
        raise Boom("inside")

    async def main():
        task = aio.create_task(child())
        with pytest.raises(Boom, match="inside"):
            await task
        assert task.done() and not task.cancelled()
        assert isinstance(task.exception(), Boom)
        with pytest.raises(Boom):
            task.result()

    aio.run(main())


def test_awaiting_a_finished_task_again_gives_the_same_result(aio):
    async def child():
        return [1, 2]

    async def main():
        task = aio.create_task(child())
        first = await task
        second = await task
        assert first is second

    aio.run(main())


def test_several_tasks_may_await_one_task(aio):
    async def child():
        await aio.sleep(0.01)
        return 7

    async def waiter(task):
        return await task

    async def main():
        task = aio.create_task(child())
        return await aio.gather(*[waiter(task) for _ in range(5)])

    assert aio.run(main()) == [7] * 5


def test_done_callbacks_run_in_order_once_the_task_ends(aio):
    calls = []

    async def child():
        await aio.sleep(0)
        return 1

    async def main():
        task = aio.create_task(child())
        task.add_done_callback(lambda t: calls.append(("first", t)))
        task.add_done_callback(lambda t: calls.append(("second", t)))
        await task
        assert [name for name, _ in calls] == ["first", "second"]
        assert all(t is task for _, t in calls)
        # on a done task: scheduled with call_soon, not called at once
        task.add_done_callback(lambda t: calls.append(("late", t)))
        assert len(calls) == 2
        await aio.sleep(0)
        assert calls[-1] == ("late", task)

    aio.run(main())


def test_remove_done_callback_keeps_it_from_running(aio):
    calls = []

    def callback(t):
        calls.append(t)

    async def main():
        task = aio.create_task(aio.sleep(0))
        task.add_done_callback(callback)
        assert task.remove_done_callback(callback) == 1
        await task
        await aio.sleep(0)

    aio.run(main())
    assert calls == []


def test_current_task_is_the_running_task(aio):
    seen = {}

    async def child():
        seen["child"] = aio.current_task()

    async def main():
        seen["main"] = aio.current_task()
        task = aio.create_task(child())
        await task
        assert seen["child"] is task
        assert seen["main"] is not task
        assert seen["main"] is not None

    aio.run(main())


def test_a_task_name_can_be_given_and_changed(aio):
    async def main():
        task = aio.create_task(aio.sleep(0), name="worker")
        assert task.get_name() == "worker"
        task.set_name("renamed")
        assert task.get_name() == "renamed"
        await task

    aio.run(main())


def test_create_task_refuses_what_is_not_a_coroutine(aio):
    async def main():
        with pytest.raises(TypeError):
            aio.create_task(42)

    aio.run(main())


def test_yielding_tasks_run_round_robin(aio):
    """Each sleep(0) puts the task at the back of the run queue: with N
    tasks looping, every task runs once before any runs again."""
    order = []
    n_tasks, rounds = 7, 20

    async def worker(i):
        for r in range(rounds):
            order.append((r, i))
            await aio.sleep(0)

    async def main():
        tasks = [aio.create_task(worker(i)) for i in range(n_tasks)]
        for t in tasks:
            await t

    aio.run(main())
    assert order == [(r, i) for r in range(rounds) for i in range(n_tasks)]


def test_a_task_created_while_others_loop_joins_the_back_of_the_queue(aio):
    order = []

    async def worker(name, rounds):
        for r in range(rounds):
            order.append((name, r))
            await aio.sleep(0)

    async def main():
        a = aio.create_task(worker("a", 4))
        b = aio.create_task(worker("b", 4))
        await aio.sleep(0)  # a0 b0 ran
        c = aio.create_task(worker("c", 2))
        await aio.gather(a, b, c)

    aio.run(main())
    assert order == [
        ("a", 0),
        ("b", 0),
        ("a", 1),
        ("b", 1),
        ("c", 0),
        ("a", 2),
        ("b", 2),
        ("c", 1),
        ("a", 3),
        ("b", 3),
    ]


def test_timers_are_not_starved_by_a_task_looping_on_sleep_0(aio):
    """A task that only ever yields must not keep a due timer from
    firing: the spinning task stops once the sleeper woke."""
    state = {"woke": False, "spins": 0}
    limit = 10_000_000  # bounded, far above what a fair loop needs

    async def spinner():
        while not state["woke"] and state["spins"] < limit:
            state["spins"] += 1
            await aio.sleep(0)

    async def sleeper():
        await aio.sleep(0.02)
        state["woke"] = True

    async def main():
        await aio.gather(spinner(), sleeper())

    aio.run(main())
    assert state["woke"]
    assert state["spins"] < limit


def test_all_tasks_lists_the_live_tasks(aio):
    async def main():
        task = aio.create_task(aio.sleep(0.01))
        live = aio.all_tasks()
        assert task in live
        assert aio.current_task() in live
        await task
        assert task not in aio.all_tasks()

    aio.run(main())


def test_all_tasks_holds_the_programs_tasks_only(aio):
    """Nothing the loop runs for itself (uvasync: the task that watches
    for signals in the main thread) is listed."""

    async def main():
        assert aio.all_tasks() == {aio.current_task()}
        task = aio.create_task(aio.sleep(0.01))
        assert aio.all_tasks() == {aio.current_task(), task}
        await task

    aio.run(main())
    with aio.Runner() as runner:  # its close cancels what all_tasks lists
        runner.run(main())
        runner.run(main())


def test_a_task_nobody_refers_to_runs_to_its_end(aio):
    """The loop keeps a pending task alive (asyncio keeps a weak set and
    warns users to keep a reference; uvasync's live list holds it), and a
    collection in the middle does not lose it."""
    import gc
    import weakref

    done = []

    async def work():
        await aio.sleep(0.01)
        done.append(1)

    async def main():
        ref = weakref.ref(aio.create_task(work()))
        gc.collect()
        await aio.sleep(0.02)
        return ref

    ref = aio.run(main())
    assert done == [1]
    if aio.__name__ == "uvasync":
        gc.collect()
        assert ref() is None  # ended: nothing holds it any more


def test_a_finished_task_in_a_reference_cycle_is_collected(aio):
    """A pending task is not walked by the cyclic GC (it is reachable
    anyway); once it ends it is, so a cycle through its result goes."""
    import gc
    import weakref

    class Box:
        pass

    async def work(box):
        box.task = aio.current_task()  # task -> result box -> task
        return box

    async def main():
        task = aio.create_task(work(Box()))
        await task
        return weakref.ref(task)

    ref = aio.run(main())
    gc.collect()
    assert ref() is None


def test_many_tasks_survive_collections_while_pending(aio):
    """Collections while thousands of tasks wait lose none of them."""
    import gc

    async def work(i):
        await aio.sleep(0.001 * (i % 5))
        return i

    async def main():
        tasks = [aio.create_task(work(i)) for i in range(3000)]
        gc.collect()
        await aio.sleep(0)
        gc.collect()
        return await aio.gather(*tasks)

    assert aio.run(main()) == list(range(3000))


def test_many_gathered_coroutines_survive_collections_while_pending(aio):
    """gather takes thousands of coroutines at once (in C for uvasync);
    collections while they wait lose none of them, and they are collected
    once gather returns."""
    import gc
    import weakref

    class Token:
        pass

    async def work(i, token):
        await aio.sleep(0.001 * (i % 5))
        return i, weakref.ref(token)

    async def collect():
        gc.collect()
        await aio.sleep(0.002)
        gc.collect()

    async def main():
        coros = [work(i, Token()) for i in range(3000)]
        collector = aio.create_task(collect())
        out = await aio.gather(*coros)
        await collector
        return out

    out = aio.run(main())
    assert [i for i, _ in out] == list(range(3000))
    gc.collect()
    assert all(ref() is None for _, ref in out)


def test_cancelling_counts_requests_and_uncancel_takes_one_back(aio):
    async def main():
        task = aio.create_task(aio.sleep(10))
        await aio.sleep(0)
        assert task.cancelling() == 0
        assert task.cancel() and task.cancel()  # two requests...
        assert task.cancelling() == 2
        assert task.uncancel() == 1
        with pytest.raises(aio.CancelledError):
            await task  # ...delivered as one CancelledError
        assert task.cancelled()
        assert not task.cancel()  # done: not counted
        assert task.cancelling() == 1
        assert task.uncancel() == 0
        assert task.uncancel() == 0  # never below 0

    aio.run(main())


def test_a_task_that_swallows_its_cancel_and_uncancels_goes_on(aio):
    async def worker():
        me = aio.current_task()
        try:
            await aio.sleep(10)
        except aio.CancelledError:
            assert me.cancelling() == 1
            me.uncancel()
        await aio.sleep(0)  # no second CancelledError
        return me.cancelling()

    async def main():
        task = aio.create_task(worker())
        await aio.sleep(0)
        task.cancel()
        return await task

    assert aio.run(main()) == 0


def test_get_coro_and_names(aio):
    async def body():
        await aio.sleep(0)

    async def main():
        coro = body()
        task = aio.create_task(coro)
        assert task.get_coro() is coro
        assert isinstance(task.get_name(), str) and task.get_name()
        task.set_name(42)
        assert task.get_name() == "42"
        other = aio.create_task(body())
        assert other.get_name() != task.get_name()
        await aio.gather(task, other)
        assert aio.current_task().get_name()

    aio.run(main())


def test_future_and_task_can_be_subscripted_in_annotations(aio):
    def producer() -> "aio.Future[int]":
        pass

    alias = aio.Future[int]
    assert alias.__origin__ is aio.Future and alias.__args__ == (int,)
    assert aio.Task[str].__origin__ is aio.Task

    async def main() -> aio.Future[int]:  # evaluated at definition
        fut: aio.Future[int] = aio.get_running_loop().create_future()
        fut.set_result(1)
        return await fut

    assert aio.run(main()) == 1
    assert main.__annotations__["return"] == aio.Future[int]


def test_iscoroutine_and_iscoroutinefunction(aio):
    async def body():
        pass

    coro = body()
    assert aio.iscoroutine(coro)
    assert not aio.iscoroutine(body)
    assert not aio.iscoroutine(42)
    assert aio.iscoroutinefunction(body)
    assert not aio.iscoroutinefunction(lambda: None)
    coro.close()


def test_ensure_future_wraps_coroutines_and_awaitables_only(aio):
    class Awaitable:
        def __await__(self):
            return (yield from aio.sleep(0, "awaited").__await__())

    async def body():
        return "coro"

    async def main():
        task = aio.create_task(body())
        assert aio.ensure_future(task) is task
        fut = aio.get_running_loop().create_future()
        assert aio.ensure_future(fut) is fut
        made = aio.ensure_future(body())
        assert isinstance(made, aio.Task)
        wrapped = aio.ensure_future(Awaitable())
        assert isinstance(wrapped, aio.Task)
        with pytest.raises(TypeError):
            aio.ensure_future(42)
        fut.set_result("fut")
        return [await task, await made, await wrapped, await fut]

    assert aio.run(main()) == ["coro", "coro", "awaited", "fut"]


def test_ensure_future_refuses_a_future_of_another_loop(aio):
    other = aio.new_event_loop()
    try:

        async def main():
            fut = aio.get_running_loop().create_future()
            with pytest.raises(ValueError):
                aio.ensure_future(fut, loop=other)

        aio.run(main())
    finally:
        other.close()


def test_current_task_outside_a_running_loop_raises(aio):
    with pytest.raises(RuntimeError):
        aio.current_task()
    seen = []

    async def main():
        loop = aio.get_running_loop()
        loop.call_soon(lambda: seen.append(aio.current_task()))
        await aio.sleep(0.01)
        seen.append(aio.current_task() is not None)

    aio.run(main())
    assert seen == [None, True]  # a callback runs in no task


def test_create_task_takes_name_and_context_by_keyword_only():
    # uvasync.create_task is in C: its arguments are checked as the
    # Python signature create_task(coro, *, name=None, context=None) did.
    import contextvars
    import inspect

    async def child():
        return 1

    async def main():
        task = uvasync.create_task(
            child(), name="named", context=contextvars.copy_context()
        )
        assert task.get_name() == "named"
        assert await task == 1
        assert await uvasync.create_task(coro=child()) == 1
        assert list(inspect.signature(uvasync.create_task).parameters) == [
            "coro",
            "name",
            "context",
        ]
        for args, kwargs in (
            ((child(), "named"), {}),
            ((child(),), {"nam": "x"}),
            ((), {}),
            ((child(),), {"coro": child()}),
        ):
            with pytest.raises(TypeError):
                uvasync.create_task(*args, **kwargs)
            for a in list(args) + list(kwargs.values()):
                if hasattr(a, "close"):
                    a.close()
        return "ok"

    assert uvasync.run(main()) == "ok"
