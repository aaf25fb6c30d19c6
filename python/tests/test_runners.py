"""Runner (one loop for several runs, closing it) and
run_coroutine_threadsafe (a coroutine submitted from another thread)."""

import concurrent.futures
import threading

import pytest


def test_a_runner_runs_several_coroutines_on_one_loop(aio):
    async def loop_of():
        await aio.sleep(0)
        return aio.get_running_loop()

    with aio.Runner() as runner:
        first = runner.run(loop_of())
        second = runner.run(loop_of())
        assert first is second is runner.get_loop()
        assert not first.is_closed()
    assert first.is_closed()


def test_tasks_left_by_one_run_go_on_in_the_next(aio):
    ticks = []

    async def background():
        while True:
            ticks.append(1)
            await aio.sleep(0.005)

    async def start():
        return aio.create_task(background())

    async def later():
        await aio.sleep(0.05)
        return len(ticks)

    with aio.Runner() as runner:
        task = runner.run(start())
        n = runner.run(later())
        assert n >= 3
        assert not task.done()
    # closing the runner cancelled it
    assert task.cancelled()


def test_a_closed_runner_refuses_to_run(aio):
    async def nothing():
        pass

    runner = aio.Runner()
    runner.run(nothing())
    runner.close()
    runner.close()  # a second close does nothing
    coro = nothing()
    with pytest.raises(RuntimeError):
        runner.run(coro)
    coro.close()


def test_runner_run_refuses_what_is_not_a_coroutine(aio):
    with aio.Runner() as runner:
        with pytest.raises(ValueError):
            runner.run(aio.sleep)


def test_runner_run_inside_a_running_loop_is_refused(aio):
    async def inner():
        pass

    async def main():
        coro = inner()
        runner = aio.Runner()
        with pytest.raises(RuntimeError):
            runner.run(coro)
        coro.close()
        runner.close()  # never made a loop: nothing to close

    aio.run(main())


def test_a_runner_with_a_loop_factory(aio):
    made = []

    def factory():
        loop = aio.new_event_loop()
        made.append(loop)
        return loop

    async def main():
        return aio.get_running_loop()

    with aio.Runner(loop_factory=factory) as runner:
        assert runner.run(main()) is made[0]
    assert made[0].is_closed()


def test_an_exception_of_the_coroutine_comes_out_of_run(aio):
    async def fail():
        raise KeyError("k")

    with aio.Runner() as runner:
        with pytest.raises(KeyError):
            runner.run(fail())

        async def ok():
            return "still usable"

        assert runner.run(ok()) == "still usable"


def _loop_in_thread(aio):
    """A loop running forever in a thread; returns (loop, stop)."""
    ready = threading.Event()
    box = {}

    def body():
        loop = aio.new_event_loop()
        box["loop"] = loop
        loop.call_soon(ready.set)
        try:
            loop.run_forever()
        finally:
            loop.close()

    thread = threading.Thread(target=body)
    thread.start()
    assert ready.wait(10)
    loop = box["loop"]

    def stop():
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        assert not thread.is_alive()

    return loop, stop


def test_run_coroutine_threadsafe_returns_the_result_to_the_thread(aio):
    loop, stop = _loop_in_thread(aio)
    try:

        async def add(a, b):
            await aio.sleep(0.01)
            assert aio.get_running_loop() is loop
            return a + b

        future = aio.run_coroutine_threadsafe(add(2, 3), loop)
        assert isinstance(future, concurrent.futures.Future)
        assert future.result(10) == 5
    finally:
        stop()


def test_run_coroutine_threadsafe_passes_the_exception(aio):
    loop, stop = _loop_in_thread(aio)
    try:

        async def fail():
            raise ValueError("in the loop")

        future = aio.run_coroutine_threadsafe(fail(), loop)
        with pytest.raises(ValueError, match="in the loop"):
            future.result(10)
    finally:
        stop()


def test_cancelling_the_concurrent_future_cancels_the_task(aio):
    loop, stop = _loop_in_thread(aio)
    try:
        started = threading.Event()
        cancelled = threading.Event()

        async def endless():
            started.set()
            try:
                await aio.sleep(100)
            except aio.CancelledError:
                cancelled.set()
                raise

        future = aio.run_coroutine_threadsafe(endless(), loop)
        assert started.wait(10)
        assert future.cancel()
        assert cancelled.wait(10)
        with pytest.raises(concurrent.futures.CancelledError):
            future.result(10)
    finally:
        stop()


def test_a_task_cancelled_in_the_loop_cancels_the_concurrent_future(aio):
    loop, stop = _loop_in_thread(aio)
    try:

        async def cancels_itself():
            aio.current_task().cancel()
            await aio.sleep(1)

        future = aio.run_coroutine_threadsafe(cancels_itself(), loop)
        with pytest.raises(concurrent.futures.CancelledError):
            future.result(10)
        assert future.cancelled()
    finally:
        stop()


def test_run_coroutine_threadsafe_refuses_what_is_not_a_coroutine(aio):
    loop = aio.new_event_loop()
    try:
        with pytest.raises(TypeError):
            aio.run_coroutine_threadsafe(lambda: None, loop)
    finally:
        loop.close()
