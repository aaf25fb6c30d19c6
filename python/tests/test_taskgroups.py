"""TaskGroup: the block's end waits for the group's tasks; a failure
cancels the siblings and the block and comes out as an ExceptionGroup; a
cancellation from outside cancels them all; the parent's cancel count is
restored."""

import sys

import pytest

import uvasync

if sys.version_info < (3, 11):  # ExceptionGroup is built in from 3.11
    from exceptiongroup import ExceptionGroup


def _fixed_in_312(aio):
    """CPython 3.11's TaskGroup forgets to uncancel() its parent when a
    task fails while the block's end already waits (fixed in 3.12);
    uvasync behaves as 3.12."""
    return aio is uvasync or sys.version_info >= (3, 12)


def test_the_block_ends_when_every_task_has_ended(aio):
    order = []

    async def child(delay, name):
        await aio.sleep(delay)
        order.append(name)
        return name

    async def main():
        async with aio.TaskGroup() as tg:
            slow = tg.create_task(child(0.03, "slow"))
            fast = tg.create_task(child(0.01, "fast"))
            order.append("block done")
        order.append("after")
        return slow.result(), fast.result()

    assert aio.run(main()) == ("slow", "fast")
    assert order == ["block done", "fast", "slow", "after"]


def test_a_failure_cancels_the_siblings_and_the_block(aio):
    seen = []

    async def crash():
        await aio.sleep(0.01)
        raise ValueError("boom")

    async def sibling():
        try:
            await aio.sleep(10)
        except aio.CancelledError:
            seen.append("sibling cancelled")
            raise

    async def main():
        loop = aio.get_running_loop()
        t0 = loop.time()
        with pytest.raises(ExceptionGroup) as info:
            async with aio.TaskGroup() as tg:
                tg.create_task(crash())
                sib = tg.create_task(sibling())
                try:
                    await aio.sleep(10)
                except aio.CancelledError:
                    seen.append("block cancelled")
                    raise
        assert loop.time() - t0 < 5
        assert [repr(e) for e in info.value.exceptions] == [
            repr(ValueError("boom"))
        ]
        assert sib.cancelled()
        # the group's cancellation of the parent was taken back
        assert aio.current_task().cancelling() == 0
        await aio.sleep(0)
        return "goes on"

    assert aio.run(main()) == "goes on"
    assert sorted(seen) == ["block cancelled", "sibling cancelled"]


def test_every_failure_is_in_the_group(aio):
    async def fail(exc):
        await aio.sleep(0)  # both fail in the same pass
        raise exc

    async def main():
        with pytest.raises(ExceptionGroup) as info:
            async with aio.TaskGroup() as tg:
                tg.create_task(fail(ValueError(1)))
                tg.create_task(fail(KeyError(2)))
                tg.create_task(aio.sleep(10))
        values, rest = info.value.split(ValueError)
        return (
            [e.args for e in values.exceptions],
            [e.args for e in rest.exceptions],
        )

    assert aio.run(main()) == ([(1,)], [(2,)])


def test_an_error_raised_in_the_block_joins_the_group(aio):
    cancelled = []

    async def child():
        try:
            await aio.sleep(10)
        except aio.CancelledError:
            cancelled.append(True)
            raise

    async def main():
        with pytest.raises(ExceptionGroup) as info:
            async with aio.TaskGroup() as tg:
                tg.create_task(child())
                await aio.sleep(0)
                raise ZeroDivisionError
        assert [type(e) for e in info.value.exceptions] == [ZeroDivisionError]

    aio.run(main())
    assert cancelled == [True]


def test_a_failure_while_the_block_end_waits(aio):
    async def crash():
        await aio.sleep(0.01)
        raise ValueError

    async def main():
        with pytest.raises(ExceptionGroup):
            async with aio.TaskGroup() as tg:
                tg.create_task(crash())
                other = tg.create_task(aio.sleep(10))
        assert other.cancelled()
        return aio.current_task().cancelling()

    left = aio.run(main())
    if _fixed_in_312(aio):
        assert left == 0


def test_cancelling_the_parent_cancels_the_group(aio):
    seen = []

    async def child():
        try:
            await aio.sleep(10)
        except aio.CancelledError:
            seen.append("child")
            raise

    async def parent():
        async with aio.TaskGroup() as tg:
            tg.create_task(child())
            tg.create_task(child())
        seen.append("not reached")

    async def main():
        task = aio.create_task(parent())
        await aio.sleep(0.01)
        task.cancel()
        with pytest.raises(aio.CancelledError):
            await task
        assert task.cancelled()

    aio.run(main())
    assert seen == ["child", "child"]


def test_a_cancelled_child_is_no_error(aio):
    async def main():
        async with aio.TaskGroup() as tg:
            t = tg.create_task(aio.sleep(10))
            ok = tg.create_task(aio.sleep(0.01, "ok"))
            await aio.sleep(0)
            t.cancel()
        assert t.cancelled()
        return ok.result()

    assert aio.run(main()) == "ok"


def test_keyboard_interrupt_in_a_child_is_raised_as_it_is(aio):
    async def child():
        await aio.sleep(0.01)
        raise SystemExit(3)

    async def main():
        async with aio.TaskGroup() as tg:
            tg.create_task(child())
            await aio.sleep(10)

    with pytest.raises(SystemExit):
        aio.run(main())


def test_create_task_outside_the_group_is_refused(aio):
    async def work():
        await aio.sleep(0)

    async def main():
        tg = aio.TaskGroup()
        coro = work()
        with pytest.raises(RuntimeError):
            tg.create_task(coro)  # not entered
        coro.close()
        async with tg:
            tg.create_task(work())
        coro = work()
        with pytest.raises(RuntimeError):
            tg.create_task(coro)  # finished
        coro.close()
        with pytest.raises(RuntimeError):
            async with tg:  # entered twice
                pass

    aio.run(main())


def test_tasks_get_their_names(aio):
    async def main():
        async with aio.TaskGroup() as tg:
            t = tg.create_task(aio.sleep(0), name="worker-1")
            assert t.get_name() == "worker-1"

    aio.run(main())


def test_nested_groups_and_a_timeout(aio):
    async def leaf(i):
        await aio.sleep(0.01 * i)
        return i

    async def branch():
        async with aio.TaskGroup() as tg:
            tasks = [tg.create_task(leaf(i)) for i in range(3)]
        return sum(t.result() for t in tasks)

    async def main():
        async with aio.timeout(5):
            async with aio.TaskGroup() as tg:
                a = tg.create_task(branch())
                b = tg.create_task(branch())
        with pytest.raises(TimeoutError):
            async with aio.timeout(0.02):
                async with aio.TaskGroup() as tg:
                    tg.create_task(aio.sleep(10))
        assert aio.current_task().cancelling() == 0
        return a.result() + b.result()

    assert aio.run(main()) == 6
