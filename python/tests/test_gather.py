"""gather: results in argument order, the first exception, or all outcomes
with return_exceptions; cancelling the gather cancels its children."""

import pytest


async def _after(aio, delay, value):
    await aio.sleep(delay)
    return value


async def _fail_after(aio, delay, exc):
    await aio.sleep(delay)
    raise exc


def test_results_come_in_argument_order_not_finishing_order(aio):
    async def main():
        return await aio.gather(
            _after(aio, 0.03, "slow"),
            _after(aio, 0.0, "now"),
            _after(aio, 0.01, "soon"),
        )

    assert aio.run(main()) == ["slow", "now", "soon"]


def test_gather_of_nothing_is_an_empty_list(aio):
    async def main():
        return await aio.gather()

    assert aio.run(main()) == []


def test_gather_takes_tasks_and_coroutines_together(aio):
    async def main():
        task = aio.create_task(_after(aio, 0.01, "task"))
        done = aio.create_task(_after(aio, 0, "done task"))
        await done
        return await aio.gather(task, _after(aio, 0, "coro"), done)

    assert aio.run(main()) == ["task", "coro", "done task"]


def test_the_first_exception_propagates_and_the_others_run_on(aio):
    finished = []

    async def main():
        go_on = aio.Event()

        async def survivor():
            await go_on.wait()
            finished.append("survivor")

        other = aio.create_task(survivor())
        with pytest.raises(ValueError, match="first"):
            await aio.gather(
                _fail_after(aio, 0.01, ValueError("first")),
                _fail_after(aio, 0.02, KeyError("second")),
                other,
            )
        assert not other.done()  # not cancelled by the failure
        go_on.set()
        await other

    aio.run(main())
    assert finished == ["survivor"]


def test_return_exceptions_gives_every_outcome(aio):
    async def main():
        cancelled = aio.create_task(aio.sleep(10))
        aio.get_running_loop().call_later(0.01, cancelled.cancel)
        return await aio.gather(
            _after(aio, 0, 1),
            _fail_after(aio, 0.005, ValueError("v")),
            cancelled,
            return_exceptions=True,
        )

    results = aio.run(main())
    assert results[0] == 1
    assert isinstance(results[1], ValueError)
    assert isinstance(results[2], aio.CancelledError)


def test_cancelling_the_gather_cancels_its_children(aio):
    events = []

    async def child(name):
        try:
            await aio.sleep(10)
        except aio.CancelledError:
            events.append(name)
            raise

    async def main():
        children = [aio.create_task(child(n)) for n in "abc"]

        async def gather_them():
            return await aio.gather(*children)

        gathering = aio.create_task(gather_them())
        await aio.sleep(0.01)
        gathering.cancel()
        with pytest.raises(aio.CancelledError):
            await gathering
        await aio.sleep(0)
        assert all(c.cancelled() for c in children)

    aio.run(main())
    assert sorted(events) == ["a", "b", "c"]


def test_nested_gathers(aio):
    async def main():
        return await aio.gather(
            aio.gather(_after(aio, 0.01, 1), _after(aio, 0, 2)),
            _after(aio, 0, 3),
        )

    assert aio.run(main()) == [[1, 2], 3]


def test_gather_of_many_tasks(aio):
    async def main():
        return await aio.gather(
            *[_after(aio, (i % 10) / 1000, i) for i in range(2000)]
        )

    assert aio.run(main()) == list(range(2000))


def test_the_same_task_twice_gives_its_result_twice(aio):
    async def main():
        task = aio.create_task(_after(aio, 0.001, "twice"))
        return await aio.gather(task, task)

    assert aio.run(main()) == ["twice", "twice"]


def test_a_cancelled_child_cancels_the_gather(aio):
    async def main():
        child = aio.create_task(aio.sleep(10))

        async def gather_them():
            return await aio.gather(child, aio.sleep(0.01, "x"))

        gathering = aio.create_task(gather_them())
        await aio.sleep(0)
        child.cancel()
        with pytest.raises(aio.CancelledError):
            await gathering
        assert gathering.cancelled()

    aio.run(main())


def test_one_task_in_two_gathers_wakes_both(aio):
    async def work():
        await aio.sleep(0.01)
        return "w"

    async def main():
        task = aio.create_task(work())
        return await aio.gather(aio.gather(task), aio.gather(task, task))

    assert aio.run(main()) == [["w"], ["w", "w"]]


def test_children_ending_after_a_failed_gather_do_not_disturb_its_task(aio):
    """After the first exception the gather is over; its other children
    ending later must not wake the task that gathered (now doing
    something else) nor count for it."""

    async def fail():
        await aio.sleep(0.001)
        raise KeyError("x")

    async def slow(i):
        await aio.sleep(0.02)
        return i

    async def main():
        children = [aio.create_task(slow(i)) for i in range(3)]
        with pytest.raises(KeyError):
            await aio.gather(fail(), *children)
        ev = aio.Event()
        waiter = aio.create_task(ev.wait())
        await aio.sleep(0.04)  # the children end meanwhile
        assert not waiter.done()
        ev.set()
        await waiter
        return [c.result() for c in children]

    assert aio.run(main()) == [0, 1, 2]


def test_gather_takes_futures(aio):
    async def main():
        loop = aio.get_event_loop()
        fut = loop.create_future()
        loop.call_later(0.005, fut.set_result, "f")
        return await aio.gather(fut, aio.sleep(0.001, "s"))

    assert aio.run(main()) == ["f", "s"]


def test_a_child_that_failed_before_gather_raises_at_once(aio):
    async def boom():
        raise KeyError("early")

    async def main():
        early = aio.create_task(boom())
        late = aio.create_task(_after(aio, 0.05, "late"))
        await aio.sleep(0)  # early has failed
        try:
            await aio.gather(late, early)
        except KeyError as e:
            assert not late.done()  # raised without waiting for late
            return str(e)
        finally:
            late.cancel()

    assert aio.run(main()) == "'early'"


def test_starting_coroutines_on_a_closed_loop_takes_none_of_them():
    """gather's C start of its coroutines (uvasync._cext._spawn_coros): an
    error leaves every coroutine as it was (in the cyclic GC, closable);
    anything but a tuple of coroutines is left to the general path."""
    import gc

    import uvasync
    from uvasync._cext import _spawn_coros

    loop = uvasync.new_event_loop()
    coros = tuple(_after(uvasync, 0, i) for i in range(3))
    try:
        assert _spawn_coros(coros + (loop.create_future(),), loop) is None
    finally:
        loop.close()
    with pytest.raises(RuntimeError):
        _spawn_coros(coros, loop)
    assert all(gc.is_tracked(c) for c in coros)
    for c in coros:
        c.close()


def test_return_exceptions_keeps_argument_order_over_every_kind_of_child(aio):
    """Results and exceptions in argument order, whether a child is a
    coroutine, a task listed twice, a task done before, or a future."""

    async def main():
        loop = aio.get_event_loop()
        twice = aio.create_task(_after(aio, 0.01, "twice"))
        early = aio.create_task(_after(aio, 0, "early"))
        await early
        fut = loop.create_future()
        loop.call_later(0.005, fut.set_result, "fut")
        return await aio.gather(
            _after(aio, 0.02, "coro"),
            twice,
            _fail_after(aio, 0.001, KeyError("k")),
            early,
            twice,
            fut,
            return_exceptions=True,
        )

    out = aio.run(main())
    assert out[:2] == ["coro", "twice"]
    assert isinstance(out[2], KeyError)
    assert out[3:] == ["early", "twice", "fut"]


def test_a_child_that_ended_is_freed_while_the_gather_waits_on():
    """uvasync only (asyncio keeps every child until gather returns): a
    child task that ended with a result leaves the gather's hands at once,
    so a wide gather does not keep its finished tasks and coroutines."""
    import gc
    import weakref

    import uvasync

    refs = []

    async def quick(i):
        refs.append(weakref.ref(uvasync.current_task()))
        return i

    async def last():
        await uvasync.sleep(0.01)
        return [r() is None for r in refs]

    async def main():
        return await uvasync.gather(*[quick(i) for i in range(3)], last())

    was_on = gc.isenabled()
    gc.disable()  # freed by reference counting, not by a collection
    try:
        assert uvasync.run(main()) == [0, 1, 2, [True, True, True]]
    finally:
        if was_on:
            gc.enable()
