"""Condition (wait, notify, notify_all, wait_for, cancellation) and Barrier
(tripping, indices, reuse, abort, reset)."""

import pytest

import uvasync


def test_notify_wakes_one_waiter_in_fifo_order(aio):
    woken = []

    async def waiter(cond, name):
        async with cond:
            assert await cond.wait() is True
            assert cond.locked()  # wait() returns holding the lock
            woken.append(name)

    async def main():
        cond = aio.Condition()
        tasks = [aio.create_task(waiter(cond, n)) for n in "abc"]
        await aio.sleep(0.01)
        for expected in (["a"], ["a", "b"], ["a", "b", "c"]):
            async with cond:
                cond.notify()
            await aio.sleep(0.01)
            assert woken == expected
        await aio.gather(*tasks)

    aio.run(main())


def test_notify_all_and_notify_n(aio):
    woken = []

    async def waiter(cond, i):
        async with cond:
            await cond.wait()
            woken.append(i)

    async def main():
        cond = aio.Condition()
        tasks = [aio.create_task(waiter(cond, i)) for i in range(5)]
        await aio.sleep(0.01)
        async with cond:
            cond.notify(2)
        await aio.sleep(0.01)
        assert woken == [0, 1]
        async with cond:
            cond.notify_all()
        await aio.gather(*tasks)
        assert woken == [0, 1, 2, 3, 4]

    aio.run(main())


def test_wait_for_returns_when_the_predicate_holds(aio):
    async def main():
        cond = aio.Condition()
        box = []

        async def consumer():
            async with cond:
                got = await cond.wait_for(lambda: len(box) >= 3)
                assert got is True
                return list(box)

        task = aio.create_task(consumer())
        for i in range(3):
            await aio.sleep(0.005)
            async with cond:
                box.append(i)
                cond.notify_all()
        return await task

    assert aio.run(main()) == [0, 1, 2]


def test_wait_and_notify_without_the_lock_are_refused(aio):
    async def main():
        cond = aio.Condition()
        with pytest.raises(RuntimeError):
            await cond.wait()
        with pytest.raises(RuntimeError):
            cond.notify()
        with pytest.raises(RuntimeError):
            cond.notify_all()

    aio.run(main())


def test_a_cancelled_waiter_takes_the_lock_back_before_it_raises(aio):
    async def main():
        cond = aio.Condition()
        state = {}

        async def waiter():
            async with cond:
                try:
                    await cond.wait()
                except aio.CancelledError:
                    state["locked in except"] = cond.locked()
                    raise

        task = aio.create_task(waiter())
        await aio.sleep(0.01)
        await cond.acquire()  # hold the lock: the waiter must wait for it
        task.cancel()
        await aio.sleep(0.01)
        assert not task.done()
        cond.release()
        with pytest.raises(aio.CancelledError):
            await task
        assert state["locked in except"] is True
        assert not cond.locked()

    aio.run(main())


def test_a_condition_shares_a_given_lock(aio):
    async def main():
        lock = aio.Lock()
        cond = aio.Condition(lock)
        async with lock:
            assert cond.locked()
            cond.notify()  # allowed: the lock is held
        assert not cond.locked()

    aio.run(main())


def test_a_notified_waiter_cancelled_before_it_runs_passes_the_wake_on():
    """CPython 3.13's rule (3.11 loses the notification here): a waiter
    that was notified, then cancelled before it could use the notification,
    hands it to the next waiter."""
    aio = uvasync
    woken = []

    async def waiter(cond, name):
        async with cond:
            await cond.wait()
            woken.append(name)

    async def main():
        cond = aio.Condition()
        first = aio.create_task(waiter(cond, "first"))
        second = aio.create_task(waiter(cond, "second"))
        await aio.sleep(0.01)
        async with cond:
            cond.notify(1)  # for `first`...
            first.cancel()  # ...which is cancelled before it runs
        with pytest.raises(aio.CancelledError):
            await first
        await aio.wait_for(second, 1)

    aio.run(main())
    assert woken == ["second"]


def test_a_barrier_releases_all_when_the_last_arrives(aio):
    async def main():
        barrier = aio.Barrier(3)
        arrived = []

        async def party(i):
            await aio.sleep(0.005 * i)
            arrived.append(i)
            index = await barrier.wait()
            assert len(arrived) == 3  # nobody passes before the last
            return index

        indices = await aio.gather(*(party(i) for i in range(3)))
        assert sorted(indices) == [0, 1, 2]
        assert barrier.n_waiting == 0 and not barrier.broken
        assert barrier.parties == 3

    aio.run(main())


def test_a_barrier_can_be_used_again(aio):
    async def main():
        barrier = aio.Barrier(2)
        rounds = []

        async def party(name):
            for r in range(3):
                async with barrier as index:
                    rounds.append((r, index))

        await aio.wait_for(aio.gather(party("a"), party("b")), 5)
        assert sorted(rounds) == [(r, i) for r in range(3) for i in (0, 1)]

    aio.run(main())


def test_n_waiting_counts_the_tasks_at_the_barrier(aio):
    async def main():
        barrier = aio.Barrier(3)
        tasks = [aio.create_task(barrier.wait()) for _ in range(2)]
        await aio.sleep(0.01)
        assert barrier.n_waiting == 2
        await barrier.wait()
        await aio.gather(*tasks)

    aio.run(main())


def test_abort_breaks_the_barrier_for_waiters_and_newcomers(aio):
    async def main():
        barrier = aio.Barrier(3)
        waiting = aio.create_task(barrier.wait())
        await aio.sleep(0.01)
        await barrier.abort()
        with pytest.raises(aio.BrokenBarrierError):
            await waiting
        assert barrier.broken
        with pytest.raises(aio.BrokenBarrierError):
            await barrier.wait()
        await barrier.reset()  # fixed again
        assert not barrier.broken
        results = await aio.gather(
            barrier.wait(), barrier.wait(), barrier.wait()
        )
        assert sorted(results) == [0, 1, 2]

    aio.run(main())


def test_reset_sends_the_waiters_away_with_an_error(aio):
    async def main():
        barrier = aio.Barrier(2)
        waiting = aio.create_task(barrier.wait())
        await aio.sleep(0.01)
        await barrier.reset()
        with pytest.raises(aio.BrokenBarrierError):
            await waiting
        assert not barrier.broken
        indices = await aio.gather(barrier.wait(), barrier.wait())
        assert sorted(indices) == [0, 1]

    aio.run(main())


def test_a_barrier_of_no_parties_is_refused(aio):
    with pytest.raises(ValueError):
        aio.Barrier(0)
