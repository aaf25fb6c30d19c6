"""An idle timeout and a pipeline, written against CPython's asyncio API:
`python idle_timeout.py uvasync` or `python idle_timeout.py asyncio` print
the same.

A reader consumes a stream of events and gives up once none has come for
a while (timeout() pushed back with reschedule() on each event). Stages
of a pipeline hand work on through queues (LIFO for the undo stack,
priority for the urgent work) and meet at a Barrier between rounds; a
Condition tells the printer when a round is complete."""

import importlib
import sys

aio = importlib.import_module(sys.argv[1] if len(sys.argv) > 1 else "uvasync")


async def events(gaps):
    """Yield one event after each gap (seconds)."""
    for i, gap in enumerate(gaps):
        await aio.sleep(gap)
        yield i


async def read_until_idle(gaps, idle):
    loop = aio.get_running_loop()
    seen = []
    try:
        async with aio.timeout(idle) as cm:
            async for ev in events(gaps):
                seen.append(ev)
                cm.reschedule(loop.time() + idle)  # progress: more time
    except TimeoutError:
        return seen, "idle"
    return seen, "finished"


async def pipeline():
    undo = aio.LifoQueue()
    urgent = aio.PriorityQueue(maxsize=3)
    barrier = aio.Barrier(2)
    cond = aio.Condition()
    log = []

    async def producer():
        for rnd in range(3):
            for prio in (3, 1, 2):
                await urgent.put((prio, "r%d-p%d" % (rnd, prio)))
            await barrier.wait()

    async def consumer():
        for _ in range(3):
            await barrier.wait()
            got = []
            while not urgent.empty():
                got.append(urgent.get_nowait()[1])
            for item in got:
                await undo.put(item)
            async with cond:
                log.append(got)
                cond.notify_all()

    async def printer():
        async with cond:
            await cond.wait_for(lambda: len(log) == 3)
        return [undo.get_nowait() for _ in range(undo.qsize())]

    tasks = [aio.ensure_future(c()) for c in (producer, consumer, printer)]
    done, pending = await aio.wait(tasks, timeout=5)
    assert not pending
    return log, tasks[2].result()


async def main():
    print("steady:", await read_until_idle([0.01] * 5, 0.1))
    print("stalls:", await read_until_idle([0.01, 0.01, 0.3, 0.01], 0.1))
    log, undone = await pipeline()
    for rnd, got in enumerate(log):
        print("round", rnd, got)
    print("undo order:", undone)
    print("coroutine function:", aio.iscoroutinefunction(main))


if __name__ == "__main__":
    aio.run(main())
