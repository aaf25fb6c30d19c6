"""A wait that can complete at once completes without a running task (an
awaitable driven by hand with send(None), as the seed's own queue test
does, or one awaited in a plain callback); only a wait that has to wait
needs a task."""

import pytest

import uvasync


def drive(aw):
    """Run an awaitable by hand until it returns; it must not wait."""
    gen = aw.__await__() if not hasattr(aw, "send") else aw
    for _ in range(3):
        try:
            gen.send(None)
        except StopIteration as e:
            return e.value
    gen.close()
    raise AssertionError("%r waited, with no task to wait in" % (aw,))


@pytest.fixture(autouse=True)
def close_thread_loop():
    yield
    uvasync.get_event_loop().close()  # the loop the objects bound to


def test_queue_put_and_get_that_need_no_wait(aio):
    q = aio.Queue(maxsize=1)
    assert drive(q.put(42)) is None
    assert q.qsize() == 1 and q.full()
    assert drive(q.get()) == 42
    assert q.empty()


def test_lock_event_semaphore_that_need_no_wait(aio):
    lock = aio.Lock()
    assert drive(lock.acquire()) is True
    assert lock.locked()
    lock.release()
    assert not lock.locked()
    event = aio.Event()
    event.set()
    assert drive(event.wait()) is True
    sem = aio.Semaphore(1)
    assert drive(sem.acquire()) is True
    assert sem.locked()
    sem.release()


def test_a_wait_that_has_to_wait_needs_a_task():
    q = uvasync.Queue(maxsize=1)
    with pytest.raises(RuntimeError, match="inside a uvasync task"):
        drive(q.get())
    drive(q.put(1))
    with pytest.raises(RuntimeError, match="inside a uvasync task"):
        drive(q.put(2))
    assert q.qsize() == 1  # the refused item did not go in
    lock = uvasync.Lock()
    drive(lock.acquire())
    with pytest.raises(RuntimeError, match="inside a uvasync task"):
        drive(lock.acquire())
    lock.release()


def test_queue_wait_in_a_callback_of_the_running_loop():
    seen = []

    def callback(q):
        drive(q.put("from a callback"))  # no task runs a callback

    async def main():
        q = uvasync.Queue()
        uvasync.get_running_loop().call_soon(callback, q)
        seen.append(await uvasync.wait_for(q.get(), 5))

    uvasync.run(main())
    assert seen == ["from a callback"]


def test_seed_queue_driven_by_hand():
    # pycopy-lib's uasyncio.queues test drives put/get with gen.send(None)
    from uasyncio import queues

    q = queues.Queue(maxsize=1)
    drive(q.put(42))
    assert drive(q.get()) == 42
    q.put_nowait(12)
    with pytest.raises(queues.QueueFull):
        q.put_nowait(42)
    assert q.get_nowait() == 12
