"""Sleeping: sleep, sleep_ms, the order in which sleepers wake, and the
MicroPython ticks functions."""

import random
import time

import pytest

import uvasync


def _busy(seconds):
    """Burn CPU without yielding, so that the loop's cached clock is stale."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass


def test_sleep_never_ends_early(aio):
    async def main():
        for delay in (0.001, 0.01, 0.03):
            _busy(0.005)  # a stale loop clock must not shorten the sleep
            start = time.monotonic()
            await aio.sleep(delay)
            assert time.monotonic() - start >= delay

    aio.run(main())


def test_sleep_returns_its_result_argument(aio):
    async def main():
        assert await aio.sleep(0, "zero") == "zero"
        assert await aio.sleep(0.001, result="later") == "later"
        assert await aio.sleep(0) is None

    aio.run(main())


def test_negative_sleep_just_yields(aio):
    order = []

    async def other():
        order.append("other")

    async def main():
        aio.create_task(other())
        await aio.sleep(-1)
        order.append("main")

    aio.run(main())
    assert order == ["other", "main"]


def test_sleepers_wake_in_deadline_order(aio):
    woke = []

    async def sleeper(delay):
        await aio.sleep(delay)
        woke.append(delay)

    async def main():
        delays = [0.05, 0.01, 0.04, 0.02, 0.03]
        await aio.gather(*[sleeper(d) for d in delays])

    aio.run(main())
    assert woke == [0.01, 0.02, 0.03, 0.04, 0.05]


def test_sleepers_with_the_same_deadline_wake_in_the_order_they_slept(aio):
    """Equal deadlines keep FIFO order (one sleep call per task, all made
    in the same pass, with the same delay)."""
    woke = []

    async def sleeper(i):
        await aio.sleep(0.01)
        woke.append(i)

    async def main():
        await aio.gather(*[sleeper(i) for i in range(20)])

    aio.run(main())
    assert woke == list(range(20))


def test_many_sleepers_each_wake_after_their_own_delay(aio):
    rng = random.Random(5)
    late = []

    async def sleeper(delay):
        start = time.monotonic()
        await aio.sleep(delay)
        if time.monotonic() - start < delay:
            late.append(delay)  # woke early

    async def main():
        await aio.gather(*[sleeper(rng.uniform(0, 0.05)) for _ in range(3000)])

    aio.run(main())
    assert late == []


def test_sleep_takes_any_real_number_and_keywords(aio):
    """Delays as asyncio takes them: ints, floats, Fractions, booleans;
    delay and result by keyword; a huge delay is a very long sleep."""
    from fractions import Fraction

    async def main():
        assert await aio.sleep(Fraction(1, 1000), "f") == "f"
        assert await aio.sleep(delay=0.001, result=(1, 2)) == (1, 2)
        assert await aio.sleep(False, result=[]) == []
        t = aio.create_task(aio.sleep(10**30))
        await aio.sleep(0)
        t.cancel()
        with pytest.raises(aio.CancelledError):
            await t

    aio.run(main())


def test_sleep_refuses_what_is_not_a_delay(aio):
    async def main():
        with pytest.raises(TypeError):
            await aio.sleep("1")
        with pytest.raises(TypeError):
            await aio.sleep(0.01, 1, 2)
        with pytest.raises(TypeError):
            await aio.sleep(0.01, wrong=1)
        if aio.__name__ == "uvasync":  # asyncio returns at once
            with pytest.raises(ValueError):
                await aio.sleep(float("nan"))

    aio.run(main())


def test_sleep_ms_takes_ints_and_truncates_floats():
    async def main():
        start = time.monotonic()
        assert await uvasync.sleep_ms(5.9, result="r") == "r"
        assert time.monotonic() - start >= 0.005
        assert await uvasync.sleep_ms(ms=-3) is None
        with pytest.raises(TypeError):
            await uvasync.sleep_ms(None)

    uvasync.run(main())


def test_sleep_ms_sleeps_milliseconds():
    async def main():
        start = time.monotonic()
        assert await uvasync.sleep_ms(20, "done") == "done"
        assert time.monotonic() - start >= 0.020
        await uvasync.sleep_ms(0)

    uvasync.run(main())


def test_a_long_sleep_keeps_the_loop_alive_until_it_ends():
    """run() returns only when main returns, even if nothing else is ready
    for a while."""

    async def main():
        await uvasync.sleep_ms(30)
        return "woke"

    assert uvasync.run(main()) == "woke"


def test_ticks_add_and_diff_wrap_around_the_period():
    period = 1 << 30
    t = uvasync.ticks_ms()
    assert 0 <= t < period
    assert uvasync.ticks_diff(uvasync.ticks_add(t, 100), t) == 100
    assert uvasync.ticks_diff(uvasync.ticks_add(t, -100), t) == -100
    near_end = period - 10
    wrapped = uvasync.ticks_add(near_end, 30)
    assert wrapped == 20
    assert uvasync.ticks_diff(wrapped, near_end) == 30
    assert uvasync.ticks_diff(near_end, wrapped) == -30


def test_ticks_ms_follows_the_clock():
    async def main():
        t0 = uvasync.ticks_ms()
        await uvasync.sleep_ms(15)
        assert uvasync.ticks_diff(uvasync.ticks_ms(), t0) >= 15

    uvasync.run(main())


def test_an_infinite_delay_means_forever(aio):
    """sleep(math.inf) is a common way to wait until cancelled; infinite
    timeouts and callback delays are accepted too."""
    import math

    async def main():
        loop = aio.get_running_loop()
        handle = loop.call_later(math.inf, lambda: None)
        handle.cancel()
        assert (
            await aio.wait_for(aio.sleep(0.001, "in time"), math.inf)
            == "in time"
        )
        task = aio.create_task(aio.sleep(math.inf))
        await aio.sleep(0.01)
        assert not task.done()
        task.cancel()
        with pytest.raises(aio.CancelledError):
            await task

    aio.run(main())


def test_a_sleep_after_a_cancelled_sleep_or_yield_sleeps_in_full(aio):
    """A task that catches the cancellation of a sleep (or of a sleep(0)
    yield, with or without a result) and sleeps again sleeps the whole new
    delay: the cancelled sleep leaves nothing behind."""

    async def sleeper(first, result):
        try:
            await aio.sleep(first, result)
        except aio.CancelledError:
            pass
        start = time.monotonic()
        await aio.sleep(0.02)
        return time.monotonic() - start

    async def main():
        out = []
        for first, result in ((10, None), (0, None), (10, "r"), (0, "r")):
            task = aio.create_task(sleeper(first, result))
            await aio.sleep(0)  # task now sleeps (or yields)
            task.cancel()
            out.append(await task)
        return out

    assert all(slept >= 0.02 for slept in aio.run(main()))


def test_one_sleep_awaited_by_many_tasks_at_once_sleeps_each_of_them(aio):
    """Equal sleeps in many tasks at once each last the delay, however
    they are made (uvasync shares one object per delay)."""

    async def sleeper(s):
        start = time.monotonic()
        await s
        return time.monotonic() - start

    async def main():
        return await aio.gather(*[sleeper(aio.sleep(0.01)) for _ in range(50)])

    assert all(slept >= 0.01 for slept in aio.run(main()))


def test_a_sleep_made_in_a_task_and_driven_outside_one_ends():
    """uvasync only: a sleep(0) made inside a task (a shared object) and
    driven by hand outside any task ends at once and does not hang; a
    longer one refuses to run there."""

    async def make():
        return uvasync.sleep(0), uvasync.sleep(0.01)

    zero, longer = uvasync.run(make())
    with pytest.raises(StopIteration):
        next(zero.__await__())
    with pytest.raises(RuntimeError):
        next(longer.__await__())
