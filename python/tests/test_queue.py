"""Queue: FIFO order, maxsize and waiting put/get, the nowait variants and
their exceptions, qsize/empty/full, task_done/join."""
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
        assert sorted(received) == [(p, i) for p in range(n_producers)
                                    for i in range(per_producer)]
        # each producer's items stay in its own order
        for p in range(n_producers):
            assert [i for q, i in received if q == p] == list(range(per_producer))

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
