"""Blocking calls off the loop (issue 24 item 3): run_in_executor on the
core loop's thread pool or a concurrent.futures executor, to_thread with
contextvars, cancellation of queued and running calls, the default
executor and its shutdown. Where the behaviour is asyncio's, the same test
runs against CPython's asyncio (whose default executor is a
ThreadPoolExecutor)."""

import concurrent.futures
import contextvars
import os
import random
import threading
import time
import warnings

import pytest

import uvasync

var = contextvars.ContextVar("var", default="unset")


def one_worker(aio, loop):
    """An executor of one thread: the core pool sized 1 for uvasync (the
    default executor, None), a ThreadPoolExecutor for asyncio."""
    if aio is uvasync:
        loop.set_pool_size(1)
        return None
    return concurrent.futures.ThreadPoolExecutor(1)


def test_results_and_exceptions_come_back(aio):
    def fails():
        raise KeyError("from the pool")

    async def main():
        loop = aio.get_running_loop()
        assert await loop.run_in_executor(None, pow, 3, 4) == 81
        assert await aio.to_thread(divmod, 7, 2) == (3, 1)
        assert await aio.to_thread(sorted, [3, 1], reverse=True) == [3, 1]
        with pytest.raises(KeyError, match="from the pool") as info:
            await loop.run_in_executor(None, fails)
        assert info.value.__traceback__ is not None
        return threading.get_ident()

    assert aio.run(main()) == threading.get_ident()


def test_the_call_runs_in_another_thread(aio):
    async def main():
        return await aio.to_thread(threading.get_ident)

    assert aio.run(main()) != threading.get_ident()


def test_blocking_calls_run_in_parallel(aio):
    async def main():
        loop = aio.get_running_loop()
        t0 = time.monotonic()
        await aio.gather(
            *[loop.run_in_executor(None, time.sleep, 0.3) for _ in range(4)]
        )
        return time.monotonic() - t0

    assert aio.run(main()) < 0.9  # 1.2 s one after the other


def test_the_loop_runs_while_a_call_blocks(aio):
    ticks = []

    async def ticker():
        while True:
            ticks.append(1)
            await aio.sleep(0.01)

    async def main():
        loop = aio.get_running_loop()
        t = aio.create_task(ticker())
        await loop.run_in_executor(None, time.sleep, 0.3)
        t.cancel()

    aio.run(main())
    assert len(ticks) >= 10


def test_python_code_in_the_pool_and_on_the_loop_interleave(aio):
    # The pool thread holds the GIL only while it runs Python code, and
    # the loop thread lets go of it while it waits: a pure-Python loop in
    # the pool and tasks on the loop both make progress.
    started = threading.Event()

    def spin(stop):
        started.set()
        n = 0
        while not stop.is_set():
            n += 1
        return n

    async def main():
        loop = aio.get_running_loop()
        stop = threading.Event()
        fut = loop.run_in_executor(None, spin, stop)
        while not started.is_set():  # a loaded machine starts threads late
            await aio.sleep(0.001)
        steps = 0
        t0 = time.monotonic()
        while time.monotonic() - t0 < 0.2:
            await aio.sleep(0.001)
            steps += 1
        stop.set()
        return steps, await fut

    steps, spins = aio.run(main())
    assert steps > 10 and spins > 1000


def test_to_thread_carries_contextvars_and_run_in_executor_does_not(aio):
    def read_and_set():
        seen = var.get()
        var.set("set in the thread")
        return seen

    async def main():
        var.set("in the task")
        loop = aio.get_running_loop()
        by_to_thread = await aio.to_thread(read_and_set)
        by_executor = await loop.run_in_executor(None, read_and_set)
        return by_to_thread, by_executor, var.get()

    assert aio.run(main()) == ("in the task", "unset", "in the task")


def test_cancelling_a_queued_call_drops_it(aio):
    ran = []
    release = threading.Event()

    async def main():
        loop = aio.get_running_loop()
        executor = one_worker(aio, loop)
        blocker = loop.run_in_executor(executor, release.wait, 10)
        waiter = aio.create_task(
            _await(loop.run_in_executor(executor, ran.append, "queued"))
        )
        await aio.sleep(0.05)
        waiter.cancel()  # cancels the awaited Future, which drops the call
        with pytest.raises(aio.CancelledError):
            await waiter
        await aio.sleep(0.05)
        release.set()
        assert await blocker is True
        after = await loop.run_in_executor(executor, ran.append, "after")
        if executor is not None:
            executor.shutdown()
        return after

    assert aio.run(main()) is None
    assert ran == ["after"]  # the cancelled call never ran


def test_cancelling_a_running_call_discards_its_result(aio):
    started = threading.Event()
    release = threading.Event()
    finished = []

    def job():
        started.set()
        release.wait(10)
        finished.append(True)
        return "discarded"

    async def main():
        loop = aio.get_running_loop()
        fut = loop.run_in_executor(None, job)
        waiter = aio.create_task(_await(fut))
        await aio.sleep(0.01)  # the waiter awaits the Future
        while not started.is_set():
            await aio.sleep(0.005)
        waiter.cancel()
        with pytest.raises(aio.CancelledError):
            await waiter
        assert fut.cancelled()
        release.set()
        await aio.sleep(0.1)
        return fut.cancelled()

    assert aio.run(main()) is True
    assert finished == [True]  # it ran to its end; its result went nowhere


def test_wait_for_timeout_cancels_the_call(aio):
    release = threading.Event()

    async def main():
        loop = aio.get_running_loop()
        fut = loop.run_in_executor(None, release.wait, 10)
        with pytest.raises(aio.TimeoutError):
            await aio.wait_for(fut, 0.05)
        release.set()
        return fut.cancelled()

    assert aio.run(main()) is True


async def _await(aw):
    return await aw


def test_ten_thousand_jobs_on_a_pool_of_four_with_cancellations():
    rng = random.Random(24)
    ran = set()
    lock = threading.Lock()

    def job(i):
        time.sleep(0.0001)  # long enough for a queue to build up
        with lock:
            ran.add(i)
        return i * i

    async def main():
        loop = uvasync.get_running_loop()
        loop.set_pool_size(4)
        assert loop.get_pool_size() == 4
        futures = [loop.run_in_executor(None, job, i) for i in range(10000)]
        order = rng.sample(range(10000), 3000)
        cancelled = set()
        for n, i in enumerate(order):
            if futures[i].cancel():
                cancelled.add(i)
            if n >= 1500 and n % 50 == 0:
                await uvasync.sleep(0.001)  # some run and end meanwhile
        results = await uvasync.gather(*futures, return_exceptions=True)
        for i, r in enumerate(results):
            if i in cancelled:
                assert isinstance(r, uvasync.CancelledError)
            else:
                assert r == i * i
        await loop.shutdown_default_executor()
        assert not loop._jobs  # every job freed
        return cancelled

    t0 = time.monotonic()
    cancelled = uvasync.run(main())
    elapsed = time.monotonic() - t0
    assert len(cancelled) > 1000  # most were still queued
    assert ran >= set(range(10000)) - cancelled
    # dropped while queued: never ran (some had started; those ran)
    assert len(ran & cancelled) < len(cancelled)
    assert elapsed < 10


def test_a_thread_pool_executor_as_executor(aio):
    async def main():
        loop = aio.get_running_loop()
        with concurrent.futures.ThreadPoolExecutor(2) as ex:
            names = await aio.gather(
                loop.run_in_executor(
                    ex, lambda: threading.current_thread().name
                ),
                loop.run_in_executor(ex, pow, 2, 10),
            )
        return names

    name, value = aio.run(main())
    assert value == 1024 and name.startswith("ThreadPoolExecutor")


def test_a_thread_pool_executor_as_default(aio):
    ex = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="mine")

    async def main():
        loop = aio.get_running_loop()
        loop.set_default_executor(ex)
        return (
            await loop.run_in_executor(
                None, lambda: threading.current_thread().name
            ),
            await aio.to_thread(lambda: threading.current_thread().name),
        )

    a, b = aio.run(main())
    assert a.startswith("mine") and b.startswith("mine")
    assert ex._shutdown  # run() shut it down at its end


def test_the_default_executor_must_be_a_thread_pool_executor(aio):
    async def main():
        loop = aio.get_running_loop()
        with pytest.raises(TypeError):
            loop.set_default_executor(object())

    aio.run(main())


def test_shutdown_default_executor_waits_and_refuses_more(aio):
    done = []

    def slow():
        time.sleep(0.2)
        done.append(True)

    async def main():
        loop = aio.get_running_loop()
        loop.run_in_executor(None, slow)  # not awaited
        await loop.shutdown_default_executor()
        assert done == [True]
        with pytest.raises(RuntimeError, match="shutdown"):
            loop.run_in_executor(None, slow)
        await loop.shutdown_default_executor()  # again: nothing to do

    aio.run(main())


def test_shutdown_default_executor_waits_for_a_cancelled_running_call():
    # The core pool: a call cancelled while it runs is still waited for.
    done = []
    started = threading.Event()

    def slow():
        started.set()
        time.sleep(0.2)
        done.append(True)

    async def main():
        loop = uvasync.get_running_loop()
        fut = loop.run_in_executor(None, slow)
        while not started.is_set():
            await uvasync.sleep(0.005)
        fut.cancel()
        await loop.shutdown_default_executor()
        return done

    assert uvasync.run(main()) == [True]


def test_shutdown_default_executor_timeout_warns():
    release = threading.Event()

    async def main():
        loop = uvasync.get_running_loop()
        loop.run_in_executor(None, release.wait, 10)
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            await loop.shutdown_default_executor(timeout=0.05)
        release.set()
        return [str(x.message) for x in w]

    msgs = uvasync.run(main())
    assert any("did not finish" in m for m in msgs)


def test_run_waits_for_calls_left_running(aio):
    done = []

    def slow():
        time.sleep(0.2)
        done.append(True)

    async def main():
        aio.get_running_loop().run_in_executor(None, slow)

    aio.run(main())
    assert done == [True]


def test_closing_a_loop_with_calls_queued_and_running():
    loop = uvasync.new_event_loop()
    loop.set_pool_size(1)
    ran = []
    started = threading.Event()

    def slow():
        started.set()
        time.sleep(0.2)

    running = loop.run_in_executor(None, slow)
    queued = loop.run_in_executor(None, ran.append, 1)
    assert started.wait(10)
    t0 = time.monotonic()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the loop closes, nothing leaks
        loop.close()
    assert 0.1 < time.monotonic() - t0 < 5  # the running call was waited for
    assert running.cancelled() and queued.cancelled() and ran == []
    uvasync.set_event_loop(None)


def test_pool_size_is_configurable():
    async def main():
        loop = uvasync.get_running_loop()
        default = loop.get_pool_size()
        loop.set_pool_size(2)
        with pytest.raises(ValueError):
            loop.set_pool_size(0)
        return default, loop.get_pool_size()

    default, now = uvasync.run(main())
    assert default == min(32, (os.cpu_count() or 1) + 4)
    assert now == 2


def test_run_in_executor_on_a_closed_loop_raises():
    loop = uvasync.new_event_loop()
    loop.close()
    with pytest.raises(RuntimeError, match="closed"):
        loop.run_in_executor(None, print)
    uvasync.set_event_loop(None)


def test_a_future_nobody_awaits_still_completes(aio):
    async def main():
        loop = aio.get_running_loop()
        fut = loop.run_in_executor(None, pow, 2, 5)
        while not fut.done():
            await aio.sleep(0.01)
        return fut.result()

    assert aio.run(main()) == 32


def test_wrap_future(aio):
    async def main():
        with concurrent.futures.ThreadPoolExecutor(1) as ex:
            cf = ex.submit(pow, 2, 3)
            return await aio.wrap_future(cf)

    assert aio.run(main()) == 8


def test_lowering_the_pool_size_while_its_threads_run():
    # Threads above a lowered size leave and are joined by the loop thread
    # (in set_pool_size or a later submit); each takes the GIL to delete
    # its Python thread state as it leaves, so neither may hold it then.
    async def main():
        loop = uvasync.get_running_loop()
        loop.set_pool_size(4)
        await uvasync.gather(
            *[loop.run_in_executor(None, time.sleep, 0.05) for _ in range(8)]
        )
        got = []
        for i in range(20):
            loop.set_pool_size(1 + i % 4)  # idle threads above it leave
            got.append(await loop.run_in_executor(None, pow, i, 2))
            if i % 4 == 3:
                await uvasync.gather(
                    *[
                        loop.run_in_executor(None, time.sleep, 0)
                        for _ in range(4)
                    ]
                )
        loop.set_pool_size(3)
        got += await uvasync.gather(
            *[loop.run_in_executor(None, pow, i, 2) for i in range(20, 40)]
        )
        return got

    assert uvasync.run(main()) == [i * i for i in range(40)]
