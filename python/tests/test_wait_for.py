"""wait_for and wait_for_ms: the result in time, TimeoutError after the
inner task was cancelled and has ended, and the exact order of events,
which the CPython run of each test states as the reference."""

import sys
import time

import pytest

import uvasync


def test_the_result_comes_back_when_in_time(aio):
    async def quick():
        await aio.sleep(0.001)
        return "quick"

    async def main():
        assert await aio.wait_for(quick(), 5) == "quick"
        assert await aio.wait_for(quick(), None) == "quick"

    aio.run(main())


def test_the_inner_exception_propagates(aio):
    async def failing():
        await aio.sleep(0)
        raise KeyError("inner")

    async def main():
        with pytest.raises(KeyError):
            await aio.wait_for(failing(), 5)

    aio.run(main())


def test_a_timeout_cancels_the_inner_task_and_waits_for_its_end(aio):
    events = []

    async def slow():
        events.append("slow starts")
        try:
            await aio.sleep(10)
        except aio.CancelledError:
            events.append("slow cancelled")
            await aio.sleep(0.001)  # cleanup that takes a while
            events.append("slow cleaned up")
            raise

    async def main():
        start = time.monotonic()
        with pytest.raises(aio.TimeoutError):
            await aio.wait_for(slow(), 0.02)
        events.append("timeout raised")
        assert time.monotonic() - start >= 0.02
        assert time.monotonic() - start < 5

    aio.run(main())
    assert events == [
        "slow starts",
        "slow cancelled",
        "slow cleaned up",
        "timeout raised",
    ]


def test_timeout_error_is_the_builtin_one(aio):
    if aio.__name__ == "asyncio" and sys.version_info < (3, 11):
        pytest.skip("asyncio.TimeoutError is the built-in one from 3.11")

    async def main():
        with pytest.raises(TimeoutError):
            await aio.wait_for(aio.sleep(10), 0.001)

    aio.run(main())


def test_a_zero_timeout_on_a_coroutine_times_out_without_running_it(aio):
    ran = []

    async def body():
        ran.append(True)

    async def main():
        with pytest.raises(aio.TimeoutError):
            await aio.wait_for(body(), 0)

    aio.run(main())
    assert ran == []


def test_a_zero_timeout_on_a_finished_task_gives_its_result(aio):
    async def main():
        task = aio.create_task(aio.sleep(0, "done"))
        await task
        assert await aio.wait_for(task, 0) == "done"

    aio.run(main())


def test_an_inner_task_that_swallows_the_cancel_wins(aio):
    async def stubborn():
        try:
            await aio.sleep(10)
        except aio.CancelledError:
            return "kept"

    async def main():
        assert await aio.wait_for(stubborn(), 0.01) == "kept"

    aio.run(main())


def test_cancelling_the_waiter_cancels_the_inner_task(aio):
    events = []

    async def slow():
        try:
            await aio.sleep(10)
        finally:
            events.append("inner ends")

    async def waiter():
        try:
            await aio.wait_for(slow(), 5)
        except aio.CancelledError:
            events.append("waiter cancelled")
            raise

    async def main():
        task = aio.create_task(waiter())
        await aio.sleep(0.01)
        task.cancel()
        with pytest.raises(aio.CancelledError):
            await task

    aio.run(main())
    assert events == ["inner ends", "waiter cancelled"]


def _guarded_work(aio, events):
    """guarded(name, delay, timeout): wait_for(work) with a record of what
    happened in `events`."""

    async def work(name, delay):
        try:
            await aio.sleep(delay)
            events.append(name + " done")
            return name
        except aio.CancelledError:
            events.append(name + " cancelled")
            raise

    async def guarded(name, delay, timeout):
        try:
            await aio.wait_for(work(name, delay), timeout)
            events.append(name + " returned")
        except aio.TimeoutError:
            events.append(name + " timed out")

    return guarded


def test_concurrent_timeouts_fire_in_deadline_order(aio):
    """Several wait_for with different timeouts, mixed with tasks that
    finish in time. (Only orders that a stalled, loaded machine keeps are
    checked here; the next test checks one pass exactly.)"""
    events = []
    guarded = _guarded_work(aio, events)

    async def main():
        await aio.gather(
            guarded("a", 10, 0.06),
            guarded("b", 0.01, 5),
            guarded("c", 10, 0.02),
            guarded("d", 0.04, 5),
            guarded("e", 10, 0.08),
        )

    aio.run(main())
    assert [e for e in events if e.endswith("timed out")] == [
        "c timed out",
        "a timed out",
        "e timed out",
    ]
    assert [e for e in events if e.endswith("returned")] == [
        "b returned",
        "d returned",
    ]
    for name in "ace":
        assert events.index(name + " cancelled") < events.index(
            name + " timed out"
        )
    for name in "bd":
        assert events.index(name + " done") < events.index(name + " returned")
    assert len(events) == 10


def test_timeouts_and_completions_due_in_one_pass_keep_the_exact_order(aio):
    """The loop is blocked until every deadline has passed, so all of them
    are due in the same pass: the order of events is then the scheduler's
    alone (deadline order, then FIFO hand-offs), and must be CPython's.
    How timeouts interleave with completions depends on how many internal
    hand-offs each takes (CPython 3.11 and 3.12 differ there), so the two
    kinds are compared each in full, and completions come first."""
    import time

    events = []
    guarded = _guarded_work(aio, events)

    async def main():
        tasks = [
            aio.create_task(guarded("a", 10, 0.03)),
            aio.create_task(guarded("b", 0.01, 5)),
            aio.create_task(guarded("c", 10, 0.02)),
            aio.create_task(guarded("d", 0.04, 5)),
            aio.create_task(guarded("e", 10, 0.05)),
        ]
        await aio.sleep(0)  # each task has set up its wait_for
        await aio.sleep(0)
        time.sleep(0.1)  # block the loop past every deadline
        await aio.gather(*tasks)

    aio.run(main())
    if aio.__name__ == "asyncio" and sys.version_info >= (3, 12):
        # CPython 3.12 rewrote wait_for on asyncio.timeout: the awaited
        # work runs in the waiting task itself, so each timeout delivers
        # its cancellation and its TimeoutError back to back. uvasync, as
        # MicroPython and CPython 3.11, runs it as a task of its own.
        timeouts = [
            "c cancelled",
            "c timed out",
            "a cancelled",
            "a timed out",
            "e cancelled",
            "e timed out",
        ]
        completions = ["b done", "b returned", "d done", "d returned"]
    else:
        timeouts = [
            "c cancelled",
            "a cancelled",
            "e cancelled",
            "c timed out",
            "a timed out",
            "e timed out",
        ]
        completions = ["b done", "d done", "b returned", "d returned"]
    assert [e for e in events if e[0] in "ace"] == timeouts
    assert [e for e in events if e[0] in "bd"] == completions
    assert events[0] == "b done"


def test_a_task_given_to_wait_for_is_cancelled_on_timeout(aio):
    async def main():
        task = aio.create_task(aio.sleep(10))
        with pytest.raises(aio.TimeoutError):
            await aio.wait_for(task, 0.01)
        assert task.cancelled()

    aio.run(main())


def test_wait_for_ms_takes_milliseconds():
    async def slow():
        await uvasync.sleep(10)

    async def main():
        start = time.monotonic()
        with pytest.raises(uvasync.TimeoutError):
            await uvasync.wait_for_ms(slow(), 20)
        assert time.monotonic() - start >= 0.020
        assert (
            await uvasync.wait_for_ms(uvasync.sleep_ms(1, "ok"), 1000) == "ok"
        )

    uvasync.run(main())


def test_wait_for_a_future(aio):
    async def main():
        loop = aio.get_running_loop()
        future = loop.create_future()
        loop.call_later(0.01, future.set_result, "set")
        assert await aio.wait_for(future, 5) == "set"

    aio.run(main())


def test_a_timeout_on_a_future_cancels_it(aio):
    async def main():
        future = aio.get_running_loop().create_future()
        with pytest.raises(aio.TimeoutError):
            await aio.wait_for(future, 0.01)
        assert future.cancelled()
        at_once = aio.get_running_loop().create_future()
        with pytest.raises(aio.TimeoutError):
            await aio.wait_for(at_once, 0)
        assert at_once.cancelled()

    aio.run(main())


# -- cancelling the caller leaves no trace: what the inner obtained is kept ---


async def _cancel_caller_once_inner_got_it(aio, inner, got):
    """Run wait_for(inner) in a caller task; once `inner` has obtained its
    value (got[0] set), cancel the caller before it resumes. The caller's
    result (the value) or the CancelledError it ended with."""

    async def caller():
        return await aio.wait_for(inner, 10)

    task = aio.create_task(caller())
    for _ in range(100):
        if got:
            break
        await aio.sleep(0)
    assert got, "the inner awaitable never completed"
    task.cancel()
    try:
        return await task
    except aio.CancelledError as e:
        return e


def test_cancelled_caller_keeps_a_lock_the_inner_took(aio):
    async def main():
        lock = aio.Lock()
        await lock.acquire()
        got = []

        async def take():
            await lock.acquire()
            got.append(True)
            return "locked"

        async def release_soon():
            await aio.sleep(0)
            await aio.sleep(0)
            lock.release()  # hands it to take()

        aio.create_task(release_soon())
        out = await _cancel_caller_once_inner_got_it(aio, take(), got)
        # either the caller has the lock (and may release it) or nobody has
        assert out == "locked"
        assert lock.locked()
        lock.release()
        await aio.wait_for(lock.acquire(), 1)  # not left held by nobody
        lock.release()

    aio.run(main())


def test_cancelled_caller_keeps_a_queue_item_the_inner_got(aio):
    async def main():
        q = aio.Queue()
        got = []

        async def take():
            item = await q.get()
            got.append(item)
            return item

        async def put_soon():
            await aio.sleep(0)
            await aio.sleep(0)
            q.put_nowait("item")

        aio.create_task(put_soon())
        out = await _cancel_caller_once_inner_got_it(aio, take(), got)
        assert out == "item"  # not lost
        assert q.empty()

    aio.run(main())


def test_cancelled_caller_keeps_a_line_the_inner_read(aio):
    async def main():
        async def serve(reader, writer):
            writer.write(b"first\nsecond\n")
            await writer.drain()
            await reader.read()
            writer.close()

        server = await aio.start_server(serve, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await aio.open_connection("127.0.0.1", port)
        got = []

        async def take():
            line = await reader.readline()
            got.append(line)
            return line

        out = await _cancel_caller_once_inner_got_it(aio, take(), got)
        assert out == b"first\n"
        assert await aio.wait_for(reader.readline(), 1) == b"second\n"
        writer.close()
        server.close()
        await server.wait_closed()

    aio.run(main())
