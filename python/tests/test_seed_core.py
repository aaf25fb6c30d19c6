"""uasyncio (the seed's API) on the core: the loop, tasks and what they
yield, callbacks, sleeping, cancel, wait_for. Each behaviour is checked
with generator coroutines (`yield`, `yield from`) and, where the seed
allows it, with `async def` coroutines (`await`)."""

import time

import pytest

import uasyncio
import uasyncio.core

from seedlib import loop, run_until  # noqa: F401 (fixture)

asyncio = uasyncio


# --------------------------------------------------------------------------
# The loop object
# --------------------------------------------------------------------------


def test_get_event_loop_accepts_and_ignores_queue_sizes(loop):
    assert asyncio.get_event_loop(30, 30) is loop
    assert asyncio.get_event_loop(runq_len=1, waitq_len=1) is loop
    assert uasyncio.core.get_event_loop() is loop


def test_a_closed_loop_is_replaced_by_the_next_get_event_loop():
    first = asyncio.get_event_loop()
    first.close()
    second = asyncio.get_event_loop()
    try:
        assert second is not first
        second.run_until_complete(asyncio.sleep(0))
    finally:
        second.close()


def test_time_is_wrap_around_milliseconds(loop):
    t = loop.time()
    assert isinstance(t, int) and 0 <= t < (1 << 30)


# --------------------------------------------------------------------------
# What a generator task may yield
# --------------------------------------------------------------------------


def test_bare_yield_is_strict_round_robin(loop):
    order = []

    def worker(name):
        for i in range(5):
            order.append((name, i))
            yield

    for name in "abcd":
        loop.create_task(worker(name))
    run_until(loop, lambda: len(order) == 20)
    assert order == [(n, i) for i in range(5) for n in "abcd"]


def test_sleep_0_is_strict_round_robin_in_async_def(loop):
    order = []

    async def worker(name):
        for i in range(5):
            order.append((name, i))
            await asyncio.sleep(0)

    for name in "abcd":
        loop.create_task(worker(name))
    run_until(loop, lambda: len(order) == 20)
    assert order == [(n, i) for i in range(5) for n in "abcd"]


def test_yield_int_sleeps_that_many_ms(loop):
    slept = []

    def sleeper():
        t0 = time.monotonic()
        yield 30
        slept.append(time.monotonic() - t0)

    loop.create_task(sleeper())
    run_until(loop, lambda: slept)
    assert slept[0] >= 0.03


def test_yield_0_and_negative_ints_reschedule_like_a_bare_yield(loop):
    order = []

    def spinner(name, value):
        for i in range(3):
            order.append((name, i))
            yield value

    loop.create_task(spinner("zero", 0))
    loop.create_task(spinner("bare", None))
    loop.create_task(spinner("negative", -5))
    run_until(loop, lambda: len(order) == 9)
    assert order == [
        (n, i) for i in range(3) for n in ("zero", "bare", "negative")
    ]


def test_yield_true_is_a_1_ms_sleep_as_bool_is_an_int(loop):
    slept = []

    def one_ms():
        t0 = time.monotonic()
        yield True
        slept.append(time.monotonic() - t0)

    loop.create_task(one_ms())
    run_until(loop, lambda: slept)
    assert slept[0] >= 0.001


def test_yield_false_parks_until_call_soon_reschedules(loop):
    events = []

    def parked():
        events.append("park")
        yield False
        events.append("resumed")

    coro = parked()

    def waker():
        for _ in range(5):
            yield
        events.append("wake")
        loop.call_soon(coro)

    loop.create_task(coro)
    loop.create_task(waker())
    run_until(loop, lambda: "resumed" in events)
    assert events == ["park", "wake", "resumed"]


def test_yielding_a_coroutine_runs_it_as_a_new_task_first(loop):
    order = []

    def child():
        order.append("child")
        yield

    def parent():
        order.append("parent")
        yield child()
        order.append("parent again")

    loop.run_until_complete(parent())
    assert order == ["parent", "child", "parent again"]


def test_yield_from_a_subcoroutine_returns_its_value(loop):
    def sub(x):
        yield from asyncio.sleep(0)
        return x * 2

    def main():
        return (yield from sub(21))

    assert loop.run_until_complete(main()) == 42


def test_await_a_decorated_generator_from_async_def(loop):
    @asyncio.coroutine
    def gen(x):
        yield
        yield 1
        return x + 1

    async def main():
        return await gen(41)

    assert loop.run_until_complete(main()) == 42


# --------------------------------------------------------------------------
# Scheduling functions
# --------------------------------------------------------------------------


@pytest.mark.parametrize("style", ["generator", "async"])
def test_create_task_ensure_future_Task_return_the_coroutine(loop, style):
    ran = []
    if style == "generator":

        def job(n):
            ran.append(n)
            yield
    else:

        async def job(n):
            ran.append(n)

    c1, c2, c3, c4 = job(1), job(2), job(3), job(4)
    assert loop.create_task(c1) is c1
    assert asyncio.ensure_future(c2) is c2
    assert asyncio.Task(c3) is c3
    assert asyncio.create_task(c4) is c4
    run_until(loop, lambda: len(ran) == 4)
    assert ran == [1, 2, 3, 4]


def test_call_soon_passes_args_and_stop_from_a_callback_ends_run_forever(loop):
    got = []

    def cb(a, b, c=None):
        got.append((a, b, c))
        loop.stop()

    loop.call_soon(cb, 1, "two")
    loop.run_forever()
    assert got == [(1, "two", None)]


@pytest.mark.parametrize("style", ["generator", "async"])
def test_call_soon_with_a_coroutine_schedules_it(loop, style):
    ran = []
    if style == "generator":

        def job():
            ran.append(1)
            yield
            loop.stop()
    else:

        async def job():
            ran.append(1)
            loop.stop()

    loop.call_soon(job())
    loop.run_forever()
    assert ran == [1]


def test_call_later_call_later_ms_call_at_run_in_time_order(loop):
    got = []
    loop.call_later(0.03, got.append, "later 30")
    loop.call_later_ms(10, got.append, "later_ms 10")
    loop.call_at_(asyncio.ticks_add(loop.time(), 20), got.append, ("at 20",))
    loop.call_later_ms(0, got.append, "now")
    loop.call_later_ms(40, loop.stop)
    t0 = time.monotonic()
    loop.run_forever()
    assert got == ["now", "later_ms 10", "at 20", "later 30"]
    assert time.monotonic() - t0 >= 0.04


@pytest.mark.parametrize("style", ["generator", "async"])
def test_call_later_ms_with_a_coroutine_starts_it_later(loop, style):
    started = []
    if style == "generator":

        def job():
            started.append(loop.time())
            yield
    else:

        async def job():
            started.append(loop.time())

    t0 = loop.time()
    loop.call_later_ms(20, job())
    run_until(loop, lambda: started)
    assert len(started) == 1
    assert asyncio.ticks_diff(started[0], t0) >= 20


@pytest.mark.parametrize("style", ["generator", "async"])
def test_run_forever_serves_tasks_until_stop(loop, style):
    ticks = []
    if style == "generator":

        def ticker():
            while True:
                ticks.append(1)
                if len(ticks) == 5:
                    loop.stop()
                yield from asyncio.sleep_ms(1)
    else:

        async def ticker():
            while True:
                ticks.append(1)
                if len(ticks) == 5:
                    loop.stop()
                await asyncio.sleep_ms(1)

    loop.create_task(ticker())
    loop.run_forever()
    assert len(ticks) == 5


@pytest.mark.parametrize("style", ["generator", "async"])
def test_run_until_complete_returns_the_result(loop, style):
    if style == "generator":

        def main():
            yield from asyncio.sleep_ms(1)
            return "done"
    else:

        async def main():
            await asyncio.sleep_ms(1)
            return "done"

    assert loop.run_until_complete(main()) == "done"


@pytest.mark.parametrize("style", ["generator", "async"])
def test_an_exception_in_any_task_ends_the_run_and_is_raised(loop, style):
    # The seed's loop lets a task's exception out of run_forever().
    if style == "generator":

        def bad():
            yield
            raise ValueError("boom")

        def main():
            yield from asyncio.sleep(10)
    else:

        async def bad():
            await asyncio.sleep(0)
            raise ValueError("boom")

        async def main():
            await asyncio.sleep(10)

    loop.create_task(bad())
    with pytest.raises(ValueError, match="boom"):
        loop.run_until_complete(main())


@pytest.mark.parametrize("style", ["generator", "async"])
def test_stop_ends_run_until_complete_early(loop, style):
    if style == "generator":

        def main():
            loop.stop()
            yield from asyncio.sleep(10)
            return "never"
    else:

        async def main():
            loop.stop()
            await asyncio.sleep(10)
            return "never"

    t0 = time.monotonic()
    assert loop.run_until_complete(main()) is None
    assert time.monotonic() - t0 < 5


def test_yield_stoploop_stops_the_loop(loop):
    def stopper():
        yield uasyncio.core.StopLoop(0)
        raise AssertionError("a task that stopped the loop stays parked")

    loop.create_task(stopper())
    loop.run_forever()


@pytest.mark.parametrize("style", ["generator", "async"])
def test_close_cancels_what_still_runs_quietly(loop, caplog, style):
    cleaned = []
    if style == "generator":

        def server_like():
            try:
                while True:
                    yield from asyncio.sleep(1)
            finally:
                cleaned.append(True)
    else:

        async def server_like():
            try:
                while True:
                    await asyncio.sleep(1)
            finally:
                cleaned.append(True)

    loop.create_task(server_like())
    loop.run_until_complete(asyncio.sleep_ms(5))
    loop.close()
    assert cleaned == [True]
    assert "destroyed" not in caplog.text


# --------------------------------------------------------------------------
# Sleeping
# --------------------------------------------------------------------------


@pytest.mark.parametrize("style", ["generator", "async"])
def test_sleep_and_sleep_ms_wait_at_least_that_long(loop, style):
    if style == "generator":

        def main():
            t0 = time.monotonic()
            yield from asyncio.sleep(0.02)
            t1 = time.monotonic()
            yield from asyncio.sleep_ms(20)
            return t1 - t0, time.monotonic() - t1
    else:

        async def main():
            t0 = time.monotonic()
            await asyncio.sleep(0.02)
            t1 = time.monotonic()
            await asyncio.sleep_ms(20)
            return t1 - t0, time.monotonic() - t1

    a, b = loop.run_until_complete(main())
    assert a >= 0.019 and b >= 0.019


# --------------------------------------------------------------------------
# cancel(coro)
# --------------------------------------------------------------------------


@pytest.mark.parametrize("style", ["generator", "async"])
def test_a_coroutine_cancelled_before_its_first_run_never_runs(loop, style):
    ran = []
    if style == "generator":

        def job():
            ran.append(1)
            yield
    else:

        async def job():
            ran.append(1)

    def main():
        coro = job()
        loop.create_task(coro)
        asyncio.cancel(coro)
        yield from asyncio.sleep_ms(10)

    loop.run_until_complete(main())
    assert ran == []


def test_a_coroutine_cancelled_before_it_is_scheduled_never_runs(loop):
    ran = []

    def job():
        ran.append(1)
        yield

    coro = job()
    asyncio.cancel(coro)
    loop.create_task(coro)
    loop.run_until_complete(asyncio.sleep_ms(10))
    assert ran == []


@pytest.mark.parametrize("style", ["generator", "async"])
def test_cancel_a_task_asleep_for_1_s_lands_at_once(loop, style):
    requested = []
    latency = []
    if style == "generator":

        def sleeper():
            try:
                yield from asyncio.sleep(1)
            except asyncio.CancelledError:
                latency.append(time.monotonic() - requested[0])

        def canceller(coro):
            yield from asyncio.sleep_ms(10)
            asyncio.cancel(coro)
            requested.append(time.monotonic())
            yield from asyncio.sleep_ms(50)
    else:

        async def sleeper():
            try:
                await asyncio.sleep(1)
            except asyncio.CancelledError:
                latency.append(time.monotonic() - requested[0])

        async def canceller(coro):
            await asyncio.sleep_ms(10)
            asyncio.cancel(coro)
            requested.append(time.monotonic())
            await asyncio.sleep_ms(50)

    coro = sleeper()
    loop.create_task(coro)
    loop.run_until_complete(canceller(coro))
    print("cancel latency (%s): %.3f ms" % (style, latency[0] * 1000))
    assert latency and latency[0] < 0.5  # the target: 10 ms


def test_cancel_throws_the_seeds_cancelled_error_an_exception(loop):
    caught = []

    def job():
        try:
            yield from asyncio.sleep(1)
        except Exception as e:  # the seed's CancelledError is an Exception
            caught.append(e)

    coro = job()
    loop.create_task(coro)

    def main():
        yield
        asyncio.cancel(coro)
        yield from asyncio.sleep_ms(5)

    loop.run_until_complete(main())
    assert len(caught) == 1
    assert isinstance(caught[0], asyncio.CancelledError)
    assert isinstance(caught[0], uasyncio.core.CancelledError)


def test_cancel_a_parked_task_and_one_waiting_on_a_queue(loop):
    from uasyncio.queues import Queue

    q = Queue()
    out = []

    def parked():
        try:
            yield False
        except asyncio.CancelledError:
            out.append("parked cancelled")

    def getter():
        try:
            yield from q.get()
        except asyncio.CancelledError:
            out.append("getter cancelled")

    p, g = parked(), getter()
    loop.create_task(p)
    loop.create_task(g)

    def main():
        yield from asyncio.sleep_ms(5)
        asyncio.cancel(p)
        asyncio.cancel(g)
        yield from asyncio.sleep_ms(5)
        q.put_nowait("left")  # a cancelled getter took nothing

    loop.run_until_complete(main())
    assert sorted(out) == ["getter cancelled", "parked cancelled"]
    assert q.get_nowait() == "left"


# --------------------------------------------------------------------------
# wait_for
# --------------------------------------------------------------------------


def looper(iters, ms):
    for _ in range(iters):
        yield from asyncio.sleep_ms(ms)
    return 10


async def alooper(iters, ms):
    for _ in range(iters):
        await asyncio.sleep_ms(ms)
    return 10


@pytest.mark.parametrize("style", ["generator", "async"])
def test_wait_for_times_out_when_the_run_time_equals_the_timeout(loop, style):
    # The seed's own test: the coroutine needs exactly the timeout (2 x 100
    # ms for 200 ms): it times out. Less time: timeout; more: result.
    inner = looper if style == "generator" else alooper
    results = []

    def main():
        for timeout in (0.1, 0.2, 0.3):
            try:
                results.append(
                    (yield from asyncio.wait_for(inner(2, 100), timeout))
                )
            except asyncio.TimeoutError:
                results.append("timeout")

    async def amain():
        for timeout in (0.1, 0.2, 0.3):
            try:
                results.append(await asyncio.wait_for(inner(2, 100), timeout))
            except asyncio.TimeoutError:
                results.append("timeout")

    loop.run_until_complete(main() if style == "generator" else amain())
    assert results == ["timeout", "timeout", 10]


@pytest.mark.parametrize("style", ["generator", "async"])
def test_wait_for_ms(loop, style):
    inner = looper if style == "generator" else alooper

    def main():
        try:
            yield from asyncio.wait_for_ms(inner(1, 1000), 20)
        except asyncio.TimeoutError:
            pass
        else:
            raise AssertionError("no timeout")
        return (yield from asyncio.wait_for_ms(inner(1, 5), 1000))

    async def amain():
        try:
            await asyncio.wait_for_ms(inner(1, 1000), 20)
        except asyncio.TimeoutError:
            pass
        else:
            raise AssertionError("no timeout")
        return await asyncio.wait_for_ms(inner(1, 5), 1000)

    t0 = time.monotonic()
    assert (
        loop.run_until_complete(main() if style == "generator" else amain())
        == 10
    )
    assert time.monotonic() - t0 < 0.9  # the 1 s sleep was cut short


def test_the_timeout_error_is_a_cancelled_error(loop):
    assert issubclass(asyncio.TimeoutError, asyncio.CancelledError)
    seen = []

    def inner():
        try:
            yield from asyncio.sleep(1)
        except asyncio.CancelledError as e:  # catches the timeout too
            seen.append(type(e))
            raise

    def main():
        try:
            yield from asyncio.wait_for_ms(inner(), 10)
        except asyncio.TimeoutError:
            seen.append("outer")

    loop.run_until_complete(main())
    assert seen == [asyncio.TimeoutError, "outer"]


def test_wait_for_runs_the_coroutine_inside_the_calling_task(loop):
    from uvasync.core import current_task

    tasks = []

    def inner():
        tasks.append(current_task())
        yield

    def main():
        tasks.append(current_task())
        yield from asyncio.wait_for(inner(), 1)

    loop.run_until_complete(main())
    assert tasks[0] is tasks[1]


def test_an_uncaught_timeout_ends_the_task_as_cancelled_quietly(loop):
    def job():
        yield from asyncio.wait_for_ms(asyncio.sleep(1), 5)

    coro = job()
    loop.create_task(coro)
    run_until(loop, lambda: coro not in uasyncio.core._TASK_OF)  # no raise


# --------------------------------------------------------------------------
# The coroutine decorator
# --------------------------------------------------------------------------


def test_coroutine_decorator_keeps_generators_usable_both_ways(loop):
    @asyncio.coroutine
    def gen():
        yield from asyncio.sleep(0)
        return 7

    async def awaits():
        return await gen()

    def yields_from():
        return (yield from gen())

    assert loop.run_until_complete(awaits()) == 7
    assert loop.run_until_complete(yields_from()) == 7
