"""uvasync.EventLoop, the asyncio event loop on the core: asyncio programs
run on it as on asyncio's own loop (which every scenario here runs on too,
as the reference): running and stopping, callbacks and timers, futures
and tasks, executors, signals, async generators, errors, debug mode, the
ways to install it, and native uvasync tasks on the same loop."""

import asyncio
import sys

import pytest

import uvasync

LOOPS = [
    pytest.param(uvasync.EventLoop, id="uvasync"),
    pytest.param(asyncio.SelectorEventLoop, id="asyncio"),
]


@pytest.fixture(params=LOOPS)
def new_loop(request):
    """Makes loops of the class under test (closed at the end)."""
    made = []

    def make():
        loop = request.param()
        made.append(loop)
        return loop

    yield make
    for loop in made:
        loop.close()


@pytest.fixture
def loop(new_loop):
    return new_loop()


def test_asyncio_programs_run(loop):
    async def child(i):
        await asyncio.sleep(0.001 * i)
        return i

    async def main():
        assert asyncio.get_running_loop() is loop
        results = await asyncio.gather(*(child(i) for i in range(5)))
        fut = loop.create_future()
        loop.call_soon(fut.set_result, "soon")
        task = asyncio.create_task(child(1))
        assert asyncio.current_task() is not None
        return results, await fut, await task

    assert loop.run_until_complete(main()) == ([0, 1, 2, 3, 4], "soon", 1)


@pytest.mark.skipif(sys.version_info < (3, 11), reason="asyncio.timeout")
def test_asyncio_timeout_expires(loop):
    async def main():
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.01):
                await asyncio.sleep(10)
        return asyncio.current_task().cancelling()

    assert loop.run_until_complete(main()) == 0


def test_call_later_never_runs_early(loop):
    seen = []

    def at(h):
        seen.append((loop.time(), h.when()))

    handles = []
    for delay in (0.0005, 0.001, 0.0015, 0.003, 0.01):
        h = loop.call_later(delay, lambda: at(handles[len(seen)]))
        handles.append(h)
    loop.call_later(0.05, loop.stop)
    loop.run_forever()
    assert len(seen) == 5
    for now, when in seen:
        assert now >= when


def test_uvasync_install_makes_asyncio_run_use_the_loop():
    async def main():
        return type(asyncio.get_running_loop())

    old = asyncio.get_event_loop_policy()
    try:
        uvasync.install()
        assert asyncio.run(main()) is uvasync.EventLoop
    finally:
        asyncio.set_event_loop_policy(old)


@pytest.mark.skipif(sys.version_info < (3, 12), reason="loop_factory")
def test_loop_factory():
    async def main():
        return type(asyncio.get_running_loop())

    got = asyncio.run(main(), loop_factory=uvasync.EventLoop)
    assert got is uvasync.EventLoop
