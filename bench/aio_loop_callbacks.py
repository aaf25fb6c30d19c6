#!/usr/bin/env python3
"""aio_loop_callbacks — callback and timer throughput of an asyncio loop.

    python3 bench/aio_loop_callbacks.py [uvasync|uvloop|asyncio ...] [--repeats R]

Each scenario runs on a fresh loop of each kind named (default: all three
that are installed), R times (default 5); the best run is printed as ops/s:

    call_soon chain   1M callbacks, each scheduling the next (call_soon)
    call_soon batch   1M callbacks, scheduled 1000 at a time by one callback
    call_later fire   200k call_later(0 to 1 ms) timers fired, 1000 pending
                      at any time (each one that fires makes the next)
    call_later burst  200k call_later(0.1 ms) timers made at once, all fired
    call_later cancel 200k call_later(10 s) timers made, then cancelled
    task steps        1000 asyncio Tasks x 100 `await asyncio.sleep(0)`

uvasync is uvasync.EventLoop, uvloop is uvloop.new_event_loop, asyncio is
asyncio's default loop. Time: the process's CPU time (time.process_time(),
as the machine may be shared) around the run (and the scheduling, for the
timers), not the loop's creation; --wall for time.perf_counter().
"""

import argparse
import asyncio
import sys
import time

clock = time.process_time


def loop_factory(name):
    if name == "uvasync":
        import uvasync

        return uvasync.EventLoop
    if name == "uvloop":
        import uvloop

        return uvloop.new_event_loop
    return asyncio.new_event_loop


def call_soon_chain(loop, n=1_000_000):
    left = n

    def step():
        nonlocal left
        left -= 1
        if left:
            loop.call_soon(step)
        else:
            loop.stop()

    loop.call_soon(step)
    t0 = clock()
    loop.run_forever()
    return n, clock() - t0


def call_soon_batch(loop, n=1_000_000):
    left = n

    def nothing():
        pass

    def batch():
        nonlocal left
        for _ in range(1000):
            loop.call_soon(nothing)
        left -= 1000
        loop.call_soon(batch if left > 0 else loop.stop)

    loop.call_soon(batch)
    t0 = clock()
    loop.run_forever()
    return n, clock() - t0


def call_later_fire(loop, n=200_000, pending=1000):
    left = n
    made = pending

    def fired(i):
        nonlocal left, made
        left -= 1
        if made < n:
            made += 1
            loop.call_later((i % 10) * 0.0001, fired, i + 1)
        elif not left:
            loop.stop()

    t0 = clock()
    for i in range(pending):
        loop.call_later((i % 10) * 0.0001, fired, i)
    loop.run_forever()
    return n, clock() - t0


def call_later_burst(loop, n=200_000):
    left = n

    def fired():
        nonlocal left
        left -= 1
        if not left:
            loop.stop()

    t0 = clock()
    for _ in range(n):
        loop.call_later(0.0001, fired)
    loop.run_forever()
    return n, clock() - t0


def call_later_cancel(loop, n=200_000):
    def never():
        raise AssertionError("cancelled")

    t0 = clock()
    handles = [loop.call_later(10, never) for _ in range(n)]
    for h in handles:
        h.cancel()
    loop.call_soon(loop.stop)
    loop.run_forever()
    return n, clock() - t0


def task_steps(loop, tasks=1000, steps=100):
    async def worker():
        for _ in range(steps):
            await asyncio.sleep(0)

    async def main():
        await asyncio.gather(*(worker() for _ in range(tasks)))

    t0 = clock()
    loop.run_until_complete(main())
    return tasks * steps, clock() - t0


SCENARIOS = [
    ("call_soon chain", call_soon_chain),
    ("call_soon batch", call_soon_batch),
    ("call_later fire", call_later_fire),
    ("call_later burst", call_later_burst),
    ("call_later cancel", call_later_cancel),
    ("task steps", task_steps),
]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument(
        "loops", nargs="*", default=["uvasync", "uvloop", "asyncio"]
    )
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--wall", action="store_true", help="wall-clock time")
    args = ap.parse_args()
    global clock
    if args.wall:
        clock = time.perf_counter
    names = []
    for name in args.loops:
        try:
            loop_factory(name)
            names.append(name)
        except ImportError:
            print("(%s is not installed)" % name, file=sys.stderr)
    print("%-18s" % "ops/s" + "".join("%12s" % n for n in names))
    for title, fn in SCENARIOS:
        row = []
        for name in names:
            best = 0.0
            for _ in range(args.repeats):
                loop = loop_factory(name)()
                try:
                    n, dt = fn(loop)
                finally:
                    loop.close()
                best = max(best, n / dt)
            row.append(best)
        print("%-18s" % title + "".join("%12.0f" % r for r in row), flush=True)


if __name__ == "__main__":
    main()
