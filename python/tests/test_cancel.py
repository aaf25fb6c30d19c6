"""Cancellation: of a sleeping task, a reader, a waiter on Event, Lock,
Semaphore or Queue; what the task sees, what its awaiter sees, and that a
cancelled waiter takes nothing with it (the next waiter gets the lock or
the item)."""

import time

import pytest


def test_cancelling_a_long_sleep_ends_it_at_once(aio):
    events = []

    async def sleeper():
        try:
            await aio.sleep(10)
        except aio.CancelledError:
            events.append("sleeper cancelled")
            raise

    async def main():
        task = aio.create_task(sleeper())
        await aio.sleep(0.01)
        start = time.monotonic()
        assert task.cancel() is True
        with pytest.raises(aio.CancelledError):
            await task
        elapsed = time.monotonic() - start
        assert elapsed < 5  # generous: the 10 s sleep did not run out
        assert task.cancelled() and task.done()
        with pytest.raises(aio.CancelledError):
            task.result()
        with pytest.raises(aio.CancelledError):
            task.exception()
        assert task.cancel() is False  # already done

    aio.run(main())
    assert events == ["sleeper cancelled"]


def test_the_cancel_message_reaches_the_task(aio):
    seen = []

    async def sleeper():
        try:
            await aio.sleep(10)
        except aio.CancelledError as e:
            seen.append(e.args)
            raise

    async def main():
        task = aio.create_task(sleeper())
        await aio.sleep(0)
        task.cancel("stop now")
        with pytest.raises(aio.CancelledError):
            await task

    aio.run(main())
    assert seen == [("stop now",)]


def test_a_task_cancelled_before_its_first_step_never_runs(aio):
    ran = []

    async def body():
        ran.append(True)

    async def main():
        task = aio.create_task(body())
        task.cancel()
        with pytest.raises(aio.CancelledError):
            await task
        assert task.cancelled()

    aio.run(main())
    assert ran == []


def test_a_task_that_swallows_cancellation_finishes_normally(aio):
    async def stubborn():
        try:
            await aio.sleep(10)
        except aio.CancelledError:
            return "kept going"

    async def main():
        task = aio.create_task(stubborn())
        await aio.sleep(0)
        task.cancel()
        assert await task == "kept going"
        assert not task.cancelled()

    aio.run(main())


def test_cleanup_in_a_cancelled_task_may_await(aio):
    events = []

    async def worker():
        try:
            await aio.sleep(10)
        finally:
            events.append("cleanup starts")
            await aio.sleep(0.001)
            events.append("cleanup ends")

    async def main():
        task = aio.create_task(worker())
        await aio.sleep(0)
        task.cancel()
        with pytest.raises(aio.CancelledError):
            await task
        events.append("awaiter resumed")

    aio.run(main())
    assert events == ["cleanup starts", "cleanup ends", "awaiter resumed"]


def test_cancelling_a_task_that_awaits_another_cancels_both(aio):
    """As CPython does: the cancellation goes down the await chain, and the
    outer task resumes after the inner one has ended."""
    events = []

    async def inner():
        try:
            await aio.sleep(10)
        finally:
            events.append("inner ends")

    async def outer(task):
        try:
            await task
        finally:
            events.append("outer ends")

    async def main():
        in_task = aio.create_task(inner())
        out_task = aio.create_task(outer(in_task))
        await aio.sleep(0.01)
        out_task.cancel()
        with pytest.raises(aio.CancelledError):
            await out_task
        assert in_task.cancelled()

    aio.run(main())
    assert events == ["inner ends", "outer ends"]


def test_the_awaiter_of_a_task_that_swallows_the_cancel_gets_its_value(aio):
    async def inner():
        try:
            await aio.sleep(10)
        except aio.CancelledError:
            return "inner result"

    async def outer(task):
        return await task

    async def main():
        in_task = aio.create_task(inner())
        out_task = aio.create_task(outer(in_task))
        await aio.sleep(0.01)
        out_task.cancel()
        assert await out_task == "inner result"

    aio.run(main())


def test_shield_keeps_the_inner_task_running_when_the_waiter_is_cancelled(aio):
    async def inner():
        await aio.sleep(0.02)
        return 5

    async def main():
        in_task = aio.create_task(inner())

        async def waiter():
            return await aio.shield(in_task)

        waiting = aio.create_task(waiter())
        await aio.sleep(0)
        waiting.cancel()
        with pytest.raises(aio.CancelledError):
            await waiting
        assert not in_task.done()
        assert await in_task == 5

    aio.run(main())


def test_shield_starts_a_coroutine_at_once_and_returns_a_future(aio):
    """shield() is not a coroutine: the inner work starts when shield() is
    called, and cancelling what it returns leaves that work running."""
    steps = []

    async def inner():
        steps.append("started")
        await aio.sleep(0.02)
        steps.append("finished")
        return 7

    async def main():
        outer = aio.shield(inner())
        await aio.sleep(0)
        assert steps == ["started"]  # never awaited, yet running
        assert outer.cancel()
        assert outer.cancelled()
        await aio.sleep(0.05)
        assert steps == ["started", "finished"]

    aio.run(main())


def test_shield_passes_the_result_the_exception_and_an_inner_cancel(aio):
    async def fail():
        await aio.sleep(0)
        raise KeyError("k")

    async def main():
        assert await aio.shield(aio.sleep(0.01, "value")) == "value"
        with pytest.raises(KeyError):
            await aio.shield(fail())
        inner = aio.create_task(aio.sleep(10))
        outer = aio.shield(inner)
        await aio.sleep(0)
        inner.cancel()  # the shielded work itself is cancelled
        with pytest.raises(aio.CancelledError):
            await outer
        assert outer.cancelled()
        done = aio.create_task(aio.sleep(0, "done"))
        await done
        assert aio.shield(done) is done  # already done: as it is

    aio.run(main())


def test_wait_for_a_shielded_task_times_out_without_cancelling_it(aio):
    async def main():
        task = aio.create_task(aio.sleep(0.05, "late"))
        with pytest.raises(TimeoutError):
            await aio.wait_for(aio.shield(task), 0.01)
        assert not task.done()
        assert await task == "late"

    aio.run(main())


def test_cancelling_a_reader_keeps_the_stream_usable(aio):
    """A read cancelled while waiting loses no byte: a later read gets what
    the peer sent afterwards."""

    async def main():
        peers = []

        async def on_client(reader, writer):
            peers.append(writer)

        server = await aio.start_server(on_client, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await aio.open_connection("127.0.0.1", port)
        read = aio.create_task(reader.read(100))
        await aio.sleep(0.02)
        read.cancel()
        with pytest.raises(aio.CancelledError):
            await read
        while not peers:
            await aio.sleep(0.001)
        peers[0].write(b"after the cancel\n")
        assert await reader.readline() == b"after the cancel\n"
        writer.close()
        peers[0].close()
        await writer.wait_closed()
        server.close()
        await server.wait_closed()

    aio.run(main())


def test_cancelling_an_event_waiter_leaves_the_other_waiters(aio):
    async def main():
        event = aio.Event()
        woke = []

        async def waiter(i):
            await event.wait()
            woke.append(i)

        tasks = [aio.create_task(waiter(i)) for i in range(3)]
        await aio.sleep(0)
        tasks[1].cancel()
        await aio.sleep(0)
        event.set()
        await aio.gather(*tasks, return_exceptions=True)
        assert woke == [0, 2]
        assert tasks[1].cancelled()

    aio.run(main())


def test_a_cancelled_lock_waiter_does_not_keep_the_lock(aio):
    async def main():
        lock = aio.Lock()
        got = []

        async def waiter(name):
            async with lock:
                got.append(name)

        await lock.acquire()
        first = aio.create_task(waiter("first"))
        second = aio.create_task(waiter("second"))
        await aio.sleep(0)  # both wait, first in front
        lock.release()  # the lock is handed to `first` ...
        first.cancel()  # ... which is cancelled before it runs
        await aio.gather(first, second, return_exceptions=True)
        assert first.cancelled()
        assert got == ["second"]
        assert not lock.locked()

    aio.run(main())


def test_a_cancelled_semaphore_waiter_does_not_keep_the_slot(aio):
    async def main():
        sem = aio.Semaphore(1)
        got = []

        async def waiter(name):
            async with sem:
                got.append(name)

        await sem.acquire()
        first = aio.create_task(waiter("first"))
        second = aio.create_task(waiter("second"))
        await aio.sleep(0)
        sem.release()
        first.cancel()
        await aio.gather(first, second, return_exceptions=True)
        assert got == ["second"]
        assert not sem.locked()

    aio.run(main())


def test_a_cancelled_queue_getter_does_not_lose_the_item(aio):
    async def main():
        queue = aio.Queue()
        got = []

        async def getter(name):
            got.append((name, await queue.get()))

        first = aio.create_task(getter("first"))
        second = aio.create_task(getter("second"))
        await aio.sleep(0)
        queue.put_nowait("item")  # the item goes to `first` ...
        first.cancel()  # ... which is cancelled before it runs
        await aio.gather(first, return_exceptions=True)
        await aio.wait_for(second, 5)
        assert first.cancelled()
        assert got == [("second", "item")]

    aio.run(main())


def test_a_cancelled_queue_putter_does_not_add_its_item(aio):
    async def main():
        queue = aio.Queue(maxsize=1)
        queue.put_nowait("first")
        putter = aio.create_task(queue.put("cancelled"))
        await aio.sleep(0)
        putter.cancel()
        with pytest.raises(aio.CancelledError):
            await putter
        assert queue.get_nowait() == "first"
        assert queue.empty()
        with pytest.raises(aio.QueueEmpty):
            queue.get_nowait()

    aio.run(main())


def test_cancelling_a_task_waiting_for_a_task_to_finish_in_a_loop(aio):
    """Many cancellations in a row: nothing leaks, each ends at once."""

    async def sleeper():
        await aio.sleep(10)

    async def main():
        start = time.monotonic()
        for _ in range(200):
            task = aio.create_task(sleeper())
            await aio.sleep(0)
            task.cancel()
            with pytest.raises(aio.CancelledError):
                await task
        assert time.monotonic() - start < 5

    aio.run(main())


def test_cancelling_a_task_that_awaits_a_future_cancels_the_future(aio):
    async def main():
        future = aio.get_running_loop().create_future()

        async def waiter():
            return await future

        task = aio.create_task(waiter())
        await aio.sleep(0)
        task.cancel()
        with pytest.raises(aio.CancelledError):
            await task
        assert future.cancelled()

    aio.run(main())


def test_a_cancelled_putter_of_a_full_queue_gives_its_slot_to_the_next(aio):
    async def main():
        queue = aio.Queue(maxsize=1)
        queue.put_nowait("first")
        first = aio.create_task(queue.put("from cancelled"))
        second = aio.create_task(queue.put("from second"))
        await aio.sleep(0)
        assert queue.get_nowait() == "first"  # a slot for `first` ...
        first.cancel()  # ... cancelled before it runs
        await aio.gather(first, return_exceptions=True)
        await aio.wait_for(second, 5)
        assert first.cancelled()
        assert queue.get_nowait() == "from second"
        assert queue.empty()

    aio.run(main())


def test_a_waiter_cancelled_after_the_event_was_set_is_still_cancelled(aio):
    async def main():
        event = aio.Event()
        waiter = aio.create_task(event.wait())
        await aio.sleep(0)
        event.set()
        waiter.cancel()
        with pytest.raises(aio.CancelledError):
            await waiter

    aio.run(main())


def test_a_task_may_cancel_itself(aio):
    async def main():
        me = aio.current_task()
        me.cancel()
        try:
            await aio.sleep(10)
        except aio.CancelledError:
            return "cancelled at the next await"
        return "not cancelled"

    assert aio.run(main()) == "cancelled at the next await"


def test_cancelling_a_practically_endless_sleep(aio):
    async def main():
        task = aio.create_task(aio.sleep(1e9))
        await aio.sleep(0)
        task.cancel()
        with pytest.raises(aio.CancelledError):
            await task

    aio.run(main())


def test_a_cancelled_readexactly_or_readline_keeps_the_partial_data(aio):
    async def main():
        peers = []
        server = await aio.start_server(
            lambda r, w: peers.append(w), "127.0.0.1", 0
        )
        port = server.sockets[0].getsockname()[1]
        reader, writer = await aio.open_connection("127.0.0.1", port)
        while not peers:
            await aio.sleep(0.001)
        peer = peers[0]

        async def cancel_while_waiting(read_call):
            task = aio.create_task(read_call)
            await aio.sleep(0.02)  # the first part has arrived by now
            task.cancel()
            with pytest.raises(aio.CancelledError):
                await task

        peer.write(b"12345")
        await cancel_while_waiting(reader.readexactly(10))
        peer.write(b"67890")
        assert await aio.wait_for(reader.readexactly(10), 5) == b"1234567890"
        peer.write(b"abc")
        await cancel_while_waiting(reader.readline())
        peer.write(b"def\n")
        assert await aio.wait_for(reader.readline(), 5) == b"abcdef\n"
        writer.close()
        peer.close()
        server.close()

    aio.run(main())
