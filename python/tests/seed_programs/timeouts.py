# Seed-style timeouts and cancellation: wait_for around a looping
# coroutine (shorter, equal and longer than its run time), cancel() of a
# sleeping task and of a task that has not started yet.
import uasyncio.core as asyncio


def looper(iters):
    for _ in range(iters):
        print("ping")
        yield from asyncio.sleep(0.1)
    return 10


def sleeper():
    try:
        yield from asyncio.sleep(1)
        print("slept")
    except asyncio.CancelledError:
        print("sleeper cancelled")


def never():
    print("never runs")
    yield


def main():
    for timeout in (0.1, 0.2, 0.3):
        try:
            ret = yield from asyncio.wait_for(looper(2), timeout)
            print("result:", ret)
        except asyncio.TimeoutError:
            print("timed out")
    coro = sleeper()
    loop.create_task(coro)
    yield
    asyncio.cancel(coro)
    coro = never()
    loop.create_task(coro)
    asyncio.cancel(coro)
    yield from asyncio.sleep(0.1)
    print("done")


loop = asyncio.get_event_loop()
loop.run_until_complete(main())
