"""Queue: FIFO order, maxsize and waiting put/get, the nowait variants and
their exceptions, qsize/empty/full, task_done/join; PriorityQueue and
LifoQueue: their order, with the same waiting put/get."""

import pytest


def test_items_come_out_in_fifo_order(aio):
    async def main():
        queue = aio.Queue()
        for i in range(10):
            await queue.put(i)
        assert queue.qsize() == 10
        return [await queue.get() for _ in range(10)]

    assert aio.run(main()) == list(range(10))


def test_any_python_object_goes_through_unchanged(aio):
    async def main():
        queue = aio.Queue()
        items = [None, 0, "", b"bytes", {"k": [1]}, object()]
        for item in items:
            queue.put_nowait(item)
        out = [queue.get_nowait() for _ in items]
        assert all(a is b for a, b in zip(items, out))

    aio.run(main())


def test_get_waits_for_a_put(aio):
    async def main():
        queue = aio.Queue()
        getter = aio.create_task(queue.get())
        await aio.sleep(0.01)
        assert not getter.done()
        await queue.put("late")
        assert await getter == "late"

    aio.run(main())


def test_put_waits_while_the_queue_is_full(aio):
    async def main():
        queue = aio.Queue(maxsize=2)
        assert queue.maxsize == 2
        await queue.put(1)
        await queue.put(2)
        assert queue.full()
        putter = aio.create_task(queue.put(3))
        await aio.sleep(0.01)
        assert not putter.done()
        assert queue.qsize() == 2
        assert await queue.get() == 1
        await aio.wait_for(putter, 1)
        assert [queue.get_nowait(), queue.get_nowait()] == [2, 3]

    aio.run(main())


def test_nowait_variants_raise_queue_full_and_queue_empty(aio):
    async def main():
        queue = aio.Queue(1)
        assert queue.empty() and not queue.full()
        with pytest.raises(aio.QueueEmpty):
            queue.get_nowait()
        queue.put_nowait("x")
        assert queue.full() and not queue.empty()
        with pytest.raises(aio.QueueFull):
            queue.put_nowait("y")
        assert queue.get_nowait() == "x"
        assert queue.qsize() == 0

    aio.run(main())


def test_unbounded_queue_is_never_full(aio):
    async def main():
        queue = aio.Queue()
        for i in range(10000):
            queue.put_nowait(i)
        assert not queue.full()
        assert queue.qsize() == 10000

    aio.run(main())


def test_join_waits_until_every_item_is_done(aio):
    async def main():
        queue = aio.Queue()
        processed = []

        async def worker():
            while True:
                item = await queue.get()
                await aio.sleep(0.001)
                processed.append(item)
                queue.task_done()

        workers = [aio.create_task(worker()) for _ in range(3)]
        for i in range(12):
            queue.put_nowait(i)
        await aio.wait_for(queue.join(), 5)
        assert sorted(processed) == list(range(12))
        for w in workers:
            w.cancel()
        await aio.gather(*workers, return_exceptions=True)
        await aio.wait_for(queue.join(), 1)  # nothing unfinished: at once

    aio.run(main())


def test_task_done_too_many_times_is_a_value_error(aio):
    async def main():
        queue = aio.Queue()
        queue.put_nowait(1)
        queue.get_nowait()
        queue.task_done()
        with pytest.raises(ValueError):
            queue.task_done()

    aio.run(main())


def test_producers_and_consumers_move_every_item_once(aio):
    async def main():
        queue = aio.Queue(maxsize=4)
        received = []
        n_producers, per_producer = 5, 200

        async def producer(p):
            for i in range(per_producer):
                await queue.put((p, i))

        async def consumer():
            while True:
                item = await queue.get()
                if item is None:
                    return
                received.append(item)

        consumers = [aio.create_task(consumer()) for _ in range(3)]
        await aio.gather(*[producer(p) for p in range(n_producers)])
        for _ in consumers:
            await queue.put(None)
        await aio.gather(*consumers)
        assert sorted(received) == [
            (p, i) for p in range(n_producers) for i in range(per_producer)
        ]
        # each producer's items stay in its own order
        for p in range(n_producers):
            assert [i for q, i in received if q == p] == list(
                range(per_producer)
            )

    aio.run(main())


def test_getters_are_served_in_fifo_order(aio):
    async def main():
        queue = aio.Queue()
        got = []

        async def getter(name):
            got.append((name, await queue.get()))

        tasks = []
        for name in "abc":
            tasks.append(aio.create_task(getter(name)))
            await aio.sleep(0)
        for item in (1, 2, 3):
            queue.put_nowait(item)
        await aio.gather(*tasks)
        assert got == [("a", 1), ("b", 2), ("c", 3)]

    aio.run(main())


def test_priority_queue_gives_the_smallest_item_first(aio):
    async def main():
        queue = aio.PriorityQueue()
        for item in [(3, "c"), (1, "a"), (4, "d"), (2, "b")]:
            await queue.put(item)
        queue.put_nowait((0, "first"))
        return [queue.get_nowait()[1] for _ in range(queue.qsize())]

    assert aio.run(main()) == ["first", "a", "b", "c", "d"]


def test_lifo_queue_gives_the_newest_item_first(aio):
    async def main():
        queue = aio.LifoQueue()
        for i in range(4):
            await queue.put(i)
        return [await queue.get() for _ in range(4)]

    assert aio.run(main()) == [3, 2, 1, 0]


def test_a_woken_getter_takes_what_comes_first_when_it_runs(aio):
    """The getter is woken by the first put; a better item put before it
    runs is the one it gets."""

    async def main():
        queue = aio.PriorityQueue()
        getter = aio.create_task(queue.get())
        await aio.sleep(0)
        queue.put_nowait(5)
        queue.put_nowait(1)
        assert await getter == 1
        assert queue.get_nowait() == 5

    aio.run(main())


@pytest.mark.parametrize("kind", ["Queue", "PriorityQueue", "LifoQueue"])
def test_every_ordering_waits_the_same_way(aio, kind):
    async def main():
        queue = getattr(aio, kind)(maxsize=2)
        getter = aio.create_task(queue.get())
        await aio.sleep(0.01)
        assert not getter.done()
        await queue.put(7)
        assert await getter == 7
        await queue.put(1)
        await queue.put(2)
        assert queue.full() and queue.qsize() == 2
        with pytest.raises(aio.QueueFull):
            queue.put_nowait(3)
        putter = aio.create_task(queue.put(3))
        await aio.sleep(0.01)
        assert not putter.done() and queue.qsize() == 2
        first = await queue.get()
        await aio.wait_for(putter, 1)
        rest = [queue.get_nowait(), queue.get_nowait()]
        with pytest.raises(aio.QueueEmpty):
            queue.get_nowait()
        assert queue.empty()
        for _ in range(4):
            queue.task_done()
        await aio.wait_for(queue.join(), 1)
        return [first] + rest

    order = aio.run(main())
    assert (
        order
        == {
            "Queue": [1, 2, 3],
            "PriorityQueue": [1, 2, 3],
            "LifoQueue": [2, 3, 1],
        }[kind]
    )


@pytest.mark.parametrize("kind", ["PriorityQueue", "LifoQueue"])
def test_a_cancelled_putter_of_an_ordered_queue_adds_nothing(aio, kind):
    async def main():
        queue = getattr(aio, kind)(maxsize=1)
        await queue.put(5)
        putter = aio.create_task(queue.put(0))
        await aio.sleep(0.01)
        putter.cancel()
        with pytest.raises(aio.CancelledError):
            await putter
        assert queue.qsize() == 1
        assert queue.get_nowait() == 5
        with pytest.raises(aio.QueueEmpty):
            queue.get_nowait()

    aio.run(main())
