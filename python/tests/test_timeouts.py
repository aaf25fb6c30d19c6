"""timeout() and timeout_at(): a deadline over a block, its cancellation
turned into TimeoutError, nesting, rescheduling, and how it counts with
the task's cancelling()/uncancel()."""

import sys

import pytest

if sys.version_info < (3, 11):  # ExceptionGroup is built in from 3.11
    from exceptiongroup import ExceptionGroup


def test_a_block_that_ends_in_time_is_left_alone(aio):
    async def main():
        async with aio.timeout(1) as cm:
            await aio.sleep(0.01)
        assert not cm.expired()
        assert aio.current_task().cancelling() == 0
        return "done"

    assert aio.run(main()) == "done"


def test_an_expired_block_is_cancelled_and_raises_timeout_error(aio):
    reached = []

    async def main():
        loop = aio.get_running_loop()
        t0 = loop.time()
        with pytest.raises(TimeoutError) as info:
            async with aio.timeout(0.02) as cm:
                try:
                    await aio.sleep(10)
                except aio.CancelledError:
                    reached.append("cancelled inside")
                    raise
        assert loop.time() - t0 < 5
        assert cm.expired()
        # the timeout took its cancellation back: the task goes on
        assert aio.current_task().cancelling() == 0
        assert isinstance(info.value.__context__, aio.CancelledError)
        await aio.sleep(0)
        return "after"

    assert aio.run(main()) == "after"
    assert reached == ["cancelled inside"]


def test_timeout_none_never_expires(aio):
    async def main():
        async with aio.timeout(None) as cm:
            await aio.sleep(0.02)
        assert cm.when() is None
        assert not cm.expired()

    aio.run(main())


def test_a_deadline_already_past_cancels_at_the_first_await(aio):
    steps = []

    async def main():
        loop = aio.get_running_loop()
        with pytest.raises(TimeoutError):
            async with aio.timeout_at(loop.time() - 1):
                steps.append("entered")  # the block does start
                await aio.sleep(1)
                steps.append("not reached")

    aio.run(main())
    assert steps == ["entered"]


def test_timeout_at_takes_loop_time(aio):
    async def main():
        loop = aio.get_running_loop()
        when = loop.time() + 0.02
        with pytest.raises(TimeoutError):
            async with aio.timeout_at(when) as cm:
                assert cm.when() == when
                await aio.sleep(10)
        assert loop.time() >= when

    aio.run(main())


def test_the_inner_of_two_nested_timeouts_expires(aio):
    async def main():
        async with aio.timeout(10) as outer:
            with pytest.raises(TimeoutError):
                async with aio.timeout(0.01) as inner:
                    await aio.sleep(10)
            await aio.sleep(0)  # the outer block goes on
        assert inner.expired() and not outer.expired()
        assert aio.current_task().cancelling() == 0

    aio.run(main())


def test_the_outer_of_two_nested_timeouts_expires(aio):
    """The outer deadline cancels the task; the inner timeout, whose own
    deadline has not come, lets the CancelledError through, and only the
    outer one turns it into TimeoutError."""
    seen = []

    async def main():
        with pytest.raises(TimeoutError):
            async with aio.timeout(0.01) as outer:
                try:
                    async with aio.timeout(10) as inner:
                        await aio.sleep(10)
                except aio.CancelledError:
                    seen.append("inner let it through")
                    raise
        assert outer.expired() and not inner.expired()

    aio.run(main())
    assert seen == ["inner let it through"]


def test_reschedule_moves_the_deadline(aio):
    async def main():
        loop = aio.get_running_loop()
        async with aio.timeout(0.01) as cm:
            cm.reschedule(loop.time() + 10)  # later: the block finishes
            await aio.sleep(0.05)
        assert not cm.expired()
        t0 = loop.time()
        with pytest.raises(TimeoutError):
            async with aio.timeout(None) as cm:
                cm.reschedule(loop.time() + 0.02)  # a limit after all
                await aio.sleep(10)
        assert loop.time() - t0 < 5
        async with aio.timeout(0.01) as cm:
            cm.reschedule(None)  # no limit any more
            await aio.sleep(0.05)
        assert not cm.expired()

    aio.run(main())


def test_reschedule_after_the_block_is_refused(aio):
    async def main():
        async with aio.timeout(1) as cm:
            pass
        with pytest.raises(RuntimeError):
            cm.reschedule(2)

    aio.run(main())


def test_a_cancel_from_outside_is_not_turned_into_a_timeout(aio):
    """The task is cancelled by someone else while its timeout also
    expires: two requests, the timeout takes back one, CancelledError
    goes on."""

    async def victim(started):
        async with aio.timeout(0.01):
            started.set_result(None)
            t0 = aio.get_running_loop().time()
            while aio.get_running_loop().time() - t0 < 0.05:
                pass  # busy past the deadline: both requests land now
            await aio.sleep(10)

    async def main():
        started = aio.get_running_loop().create_future()
        task = aio.create_task(victim(started))
        await started
        task.cancel()
        with pytest.raises(aio.CancelledError):
            await task
        assert task.cancelled()

    aio.run(main())


def test_timeout_outside_a_task_is_refused(aio):
    async def main():
        cm = aio.timeout(1)
        coro = cm.__aenter__()
        # enter it from a plain callback, where no task runs
        result = {}

        def enter():
            try:
                coro.send(None)
            except RuntimeError as e:
                result["error"] = str(e)
            except StopIteration:
                result["error"] = None

        aio.get_running_loop().call_soon(enter)
        await aio.sleep(0.01)
        assert "inside a task" in result["error"]

    aio.run(main())


def test_a_timeout_inside_wait_for_and_a_task_group(aio):
    async def slow():
        async with aio.timeout(0.01):
            await aio.sleep(10)

    async def main():
        with pytest.raises(TimeoutError):
            await aio.wait_for(slow(), 5)
        with pytest.raises(ExceptionGroup) as info:
            async with aio.TaskGroup() as tg:
                tg.create_task(slow())
                await aio.sleep(10)  # cancelled by the group's failure
        assert [type(e) for e in info.value.exceptions] == [TimeoutError]
        assert aio.current_task().cancelling() == 0

    aio.run(main())
