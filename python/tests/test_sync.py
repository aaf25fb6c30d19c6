"""Event, Lock, Semaphore, BoundedSemaphore (same behaviour as CPython's)
and ThreadSafeFlag (MicroPython's, uvasync only)."""

import sys
import threading

import pytest

import uvasync

# -- Event ------------------------------------------------------------------


def test_event_set_wakes_every_waiter(aio):
    async def main():
        event = aio.Event()
        woke = []

        async def waiter(i):
            assert await event.wait() is True
            woke.append(i)

        tasks = [aio.create_task(waiter(i)) for i in range(5)]
        await aio.sleep(0.01)
        assert woke == [] and not event.is_set()
        event.set()
        assert event.is_set()
        await aio.gather(*tasks)
        assert woke == [0, 1, 2, 3, 4]

    aio.run(main())


def test_event_wait_on_a_set_event_returns_at_once_until_cleared(aio):
    async def main():
        event = aio.Event()
        event.set()
        await aio.wait_for(event.wait(), 1)
        await aio.wait_for(event.wait(), 1)
        event.clear()
        assert not event.is_set()
        with pytest.raises(aio.TimeoutError):
            await aio.wait_for(event.wait(), 0.01)

    aio.run(main())


def test_an_event_made_outside_the_loop_can_be_set_before_it(aio):
    if aio.__name__ == "asyncio" and sys.version_info < (3, 10):
        pytest.skip("asyncio binds an Event to a loop at creation before 3.10")
    event = aio.Event()
    event.set()

    async def main():
        await aio.wait_for(event.wait(), 1)
        return event.is_set()

    assert aio.run(main()) is True


# -- Lock -------------------------------------------------------------------


def test_lock_gives_mutual_exclusion(aio):
    async def main():
        lock = aio.Lock()
        inside = []
        overlaps = []

        async def worker(i):
            for _ in range(5):
                async with lock:
                    if inside:
                        overlaps.append(i)
                    inside.append(i)
                    await aio.sleep(0)
                    inside.remove(i)
                await aio.sleep(0)

        await aio.gather(*[worker(i) for i in range(6)])
        assert overlaps == []
        assert not lock.locked()

    aio.run(main())


def test_lock_waiters_are_served_in_fifo_order(aio):
    async def main():
        lock = aio.Lock()
        order = []

        async def waiter(i):
            async with lock:
                order.append(i)

        await lock.acquire()
        assert lock.locked()
        tasks = []
        for i in range(5):
            tasks.append(aio.create_task(waiter(i)))
            await aio.sleep(0)  # each one queues up in turn
        lock.release()
        await aio.gather(*tasks)
        assert order == [0, 1, 2, 3, 4]

    aio.run(main())


def test_releasing_an_unlocked_lock_is_a_runtime_error(aio):
    async def main():
        lock = aio.Lock()
        with pytest.raises(RuntimeError):
            lock.release()
        assert await lock.acquire() is True
        lock.release()

    aio.run(main())


def test_lock_is_released_when_the_block_raises(aio):
    async def main():
        lock = aio.Lock()
        with pytest.raises(ZeroDivisionError):
            async with lock:
                raise ZeroDivisionError
        assert not lock.locked()

    aio.run(main())


# -- Semaphore --------------------------------------------------------------


def test_semaphore_limits_concurrency(aio):
    async def main():
        sem = aio.Semaphore(3)
        active = [0]
        peak = [0]

        async def worker():
            async with sem:
                active[0] += 1
                peak[0] = max(peak[0], active[0])
                await aio.sleep(0.001)
                active[0] -= 1

        await aio.gather(*[worker() for _ in range(20)])
        assert peak[0] == 3
        assert not sem.locked()

    aio.run(main())


def test_semaphore_locked_when_no_slot_is_left(aio):
    async def main():
        sem = aio.Semaphore(2)
        await sem.acquire()
        assert not sem.locked()
        await sem.acquire()
        assert sem.locked()
        sem.release()
        sem.release()
        sem.release()  # a plain Semaphore may go above its start value
        for _ in range(3):
            await aio.wait_for(sem.acquire(), 1)
        assert sem.locked()

    aio.run(main())


def test_semaphore_with_a_negative_value_is_refused(aio):
    with pytest.raises(ValueError):
        aio.Semaphore(-1)


def test_bounded_semaphore_refuses_a_release_too_many(aio):
    async def main():
        sem = aio.BoundedSemaphore(2)
        await sem.acquire()
        sem.release()
        with pytest.raises(ValueError):
            sem.release()
        await sem.acquire()
        await sem.acquire()
        assert sem.locked()

    aio.run(main())


# -- ThreadSafeFlag (uvasync only) --------------------------------------------


def test_threadsafeflag_set_before_wait_returns_at_once_and_clears():
    async def main():
        flag = uvasync.ThreadSafeFlag()
        flag.set()
        flag.set()  # setting twice is still one wake-up
        await uvasync.wait_for(flag.wait(), 1)
        with pytest.raises(uvasync.TimeoutError):
            await uvasync.wait_for(flag.wait(), 0.01)

    uvasync.run(main())


def test_threadsafeflag_set_from_another_thread_wakes_the_waiter():
    async def main():
        flag = uvasync.ThreadSafeFlag()
        rounds = 50
        ack = threading.Event()

        def setter():
            for _ in range(rounds):
                flag.set()
                if not ack.wait(5):
                    return
                ack.clear()

        thread = threading.Thread(target=setter)
        thread.start()
        try:
            for _ in range(rounds):
                await uvasync.wait_for(flag.wait(), 5)
                ack.set()
        finally:
            ack.set()
            thread.join(10)
        return rounds

    assert uvasync.run(main()) == 50


def test_threadsafeflag_wait_can_be_cancelled():
    async def main():
        flag = uvasync.ThreadSafeFlag()
        waiter = uvasync.create_task(flag.wait())
        await uvasync.sleep(0)
        waiter.cancel()
        with pytest.raises(uvasync.CancelledError):
            await waiter
        flag.set()
        await uvasync.wait_for(flag.wait(), 1)

    uvasync.run(main())


def test_primitives_made_at_module_level_serve_one_run_after_another():
    """MicroPython programs make them before any loop exists; each run()
    has a new loop, and the object binds to it afresh."""
    event, lock, queue = uvasync.Event(), uvasync.Lock(), uvasync.Queue()

    async def main(i):
        async with lock:
            queue.put_nowait(i)
            event.set()
            await event.wait()
            return queue.get_nowait()

    assert [uvasync.run(main(i)) for i in range(3)] == [0, 1, 2]


def test_lock_locked_is_false_after_a_release_until_the_waiter_runs(aio):
    # CPython and MicroPython: release() with a waiter frees the lock; the
    # waiter takes it when it runs. The hand-off stays FIFO: a task that
    # asks in between comes after the waiter.
    order = []

    async def main():
        lock = aio.Lock()
        await lock.acquire()

        async def waiter():
            await lock.acquire()
            order.append(("waiter", lock.locked()))
            await aio.sleep(0)
            lock.release()

        task = aio.create_task(waiter())
        await aio.sleep(0)  # the waiter waits
        lock.release()
        order.append(("released", lock.locked()))
        with pytest.raises(RuntimeError):
            lock.release()  # not held by anyone now
        await lock.acquire()  # after the waiter
        order.append(("main", lock.locked()))
        lock.release()
        await task

    aio.run(main())
    assert order == [("released", False), ("waiter", True), ("main", True)]
