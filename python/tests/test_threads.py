"""Threads: call_soon_threadsafe and ThreadSafeFlag wake a loop waiting in
the kernel, the loop lets other Python threads run while it waits, loops in
different threads are independent, and thread-bound calls from the wrong
thread are refused."""

import threading
import time

import pytest

import uvasync


def test_call_soon_threadsafe_wakes_a_waiting_loop(aio):
    async def main():
        loop = aio.get_running_loop()
        future = loop.create_future()

        def worker():
            loop.call_soon_threadsafe(future.set_result, "from the thread")

        thread = threading.Thread(target=worker)
        thread.start()
        try:
            return await aio.wait_for(future, 10)
        finally:
            thread.join(10)

    assert aio.run(main()) == "from the thread"


def test_many_threadsafe_calls_all_arrive_in_order(aio):
    async def main():
        loop = aio.get_running_loop()
        received = []
        done = loop.create_future()
        n = 2000

        def collect(i):
            received.append(i)
            if i == n - 1:
                done.set_result(None)

        def worker():
            for i in range(n):
                loop.call_soon_threadsafe(collect, i)

        thread = threading.Thread(target=worker)
        thread.start()
        try:
            await aio.wait_for(done, 20)
        finally:
            thread.join(10)
        return received == list(range(n))

    assert aio.run(main()) is True


def test_the_loop_lets_other_threads_run_while_it_waits(aio):
    """The thread needs the GIL to compute and then to wake the loop: if
    the loop held it while waiting in the kernel, this would time out."""

    async def main():
        loop = aio.get_running_loop()
        future = loop.create_future()

        def worker():
            total = sum(i * i for i in range(200000))  # pure Python
            loop.call_soon_threadsafe(future.set_result, total)

        thread = threading.Thread(target=worker)
        thread.start()
        try:
            return await aio.wait_for(future, 20)
        finally:
            thread.join(10)

    assert aio.run(main()) == sum(i * i for i in range(200000))


def test_loops_in_several_threads_run_independently(aio):
    results = {}

    async def work(name):
        queue = aio.Queue()
        lock = aio.Lock()

        async def producer():
            for i in range(100):
                async with lock:
                    await queue.put(i)
                await aio.sleep(0)

        task = aio.create_task(producer())
        got = [await queue.get() for _ in range(100)]
        await task
        await aio.sleep(0.01)
        return (name, got == list(range(100)))

    def thread_main(name):
        results[name] = aio.run(work(name))

    threads = [
        threading.Thread(target=thread_main, args=("t%d" % i,))
        for i in range(4)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert results == {"t%d" % i: ("t%d" % i, True) for i in range(4)}


def test_threadsafeflag_woken_from_another_thread_while_in_io():
    async def main():
        flag = uvasync.ThreadSafeFlag()
        thread = threading.Timer(0.02, flag.set)
        thread.start()
        try:
            await uvasync.wait_for(flag.wait(), 10)
        finally:
            thread.join(10)
        return True

    assert uvasync.run(main()) is True


def test_call_soon_from_another_thread_is_refused():
    """The loop's plain calls belong to its thread (uvasync checks; asyncio
    checks only in debug mode)."""

    async def main():
        loop = uvasync.get_running_loop()
        errors = []

        def worker():
            try:
                loop.call_soon(lambda: None)
            except RuntimeError as e:
                errors.append(e)

        thread = threading.Thread(target=worker)
        thread.start()
        thread.join(10)
        return errors

    errors = uvasync.run(main())
    assert len(errors) == 1


def test_a_primitive_bound_to_a_running_loop_refuses_another_loop():
    lock = uvasync.Lock()
    holding = threading.Event()
    release = threading.Event()
    outcome = []

    async def holder():
        async with lock:
            holding.set()
            while not release.is_set():
                await uvasync.sleep(0.005)

    async def other():
        with pytest.raises(RuntimeError):
            await lock.acquire()
        outcome.append("refused")

    thread = threading.Thread(target=lambda: uvasync.run(holder()))
    thread.start()
    try:
        assert holding.wait(10)
        uvasync.run(other())
    finally:
        release.set()
        thread.join(10)
    assert outcome == ["refused"]


# -- calls from other threads while and after the loop closes ----------------
#
# Before the fix a call that raced close() (the C call runs without the
# GIL) used the freed core loop: SIGABRT in libuv's uv_async_send, or a
# crash. Each race runs a bounded number of rounds.

_ROUNDS = 30


def test_call_soon_threadsafe_after_close_raises(aio):
    loop = aio.new_event_loop()
    loop.close()
    with pytest.raises(RuntimeError, match="Event loop is closed"):
        loop.call_soon_threadsafe(lambda: None)
    loop.stop()  # does nothing on a closed loop, as in asyncio


def test_call_soon_threadsafe_racing_close(aio):
    """Each call either is accepted (uvasync then runs it, in the close if
    not before) or raises RuntimeError('Event loop is closed'); stop()
    from the thread never fails."""
    for _ in range(_ROUNDS):
        _call_soon_threadsafe_racing_close_once(aio)


def _call_soon_threadsafe_racing_close_once(aio):
    loop = aio.new_event_loop()
    accepted, ran, errors = [], [], []
    started = threading.Event()
    deadline = time.monotonic() + 10

    def worker():
        started.set()
        while time.monotonic() < deadline:
            try:
                loop.call_soon_threadsafe(ran.append, 1)
                loop.stop()
            except RuntimeError as e:
                errors.append(str(e))
                return
            accepted.append(1)

    thread = threading.Thread(target=worker)
    thread.start()
    started.wait(10)
    loop.run_forever()  # until the worker's first stop()
    loop.close()
    thread.join(10)
    assert errors == ["Event loop is closed"]
    if aio is uvasync:
        assert len(ran) == len(accepted)


def test_threadsafeflag_set_after_close_raises():
    loop = uvasync.new_event_loop()

    async def make():
        return uvasync.ThreadSafeFlag()

    flag = loop.run_until_complete(make())
    loop.close()
    with pytest.raises(RuntimeError, match="Event loop is closed"):
        flag.set()


def test_threadsafeflag_set_racing_close():
    for _ in range(_ROUNDS):
        _threadsafeflag_set_racing_close_once()


def _threadsafeflag_set_racing_close_once():
    loop = uvasync.new_event_loop()

    async def make():
        return uvasync.ThreadSafeFlag()

    flag = loop.run_until_complete(make())
    errors = []
    started = threading.Event()
    deadline = time.monotonic() + 10

    def worker():
        started.set()
        while time.monotonic() < deadline:
            try:
                flag.set()
            except RuntimeError as e:
                errors.append(str(e))
                return

    thread = threading.Thread(target=worker)
    thread.start()
    started.wait(10)
    loop.run_until_complete(flag.wait())
    loop.close()
    thread.join(10)
    assert errors == ["Event loop is closed"]
