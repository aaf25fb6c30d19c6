#!/usr/bin/env python3
"""One Python benchmark in this process, on one implementation; prints
`key=value` results. run_python.py runs it for each implementation in
fresh processes, interleaved, and compares.

    python3 bench/bench_python.py IMPL BENCH [N]

IMPL: uvasync | asyncio | uvloop
BENCH:
  switch    N tasks (default 1000) each awaiting sleep(0) 300 times:
            task switches per second
  spawn     create_task + await of a trivial coroutine, 200k times in
            batches of 1000: tasks per second
  sleepers  N tasks (default 100k) each sleeping 1 s: peak RSS growth per
            task (bytes) once all are asleep
  timers    N tasks (default 100k) each sleeping a random 0-100 ms: wall
            time against the ideal 0.1 s, and the process CPU time; the
            wall time starts before the coroutines are made (gather(*[...]))
            and create_s says how much of it that making took
"""

import gc
import random
import resource
import sys
import time

IMPL, BENCH = sys.argv[1], sys.argv[2]
N = int(sys.argv[3]) if len(sys.argv) > 3 else None

if IMPL == "uvasync":
    import uvasync as aio
else:
    import asyncio as aio

    if IMPL == "uvloop":
        import uvloop

        aio.set_event_loop_policy(uvloop.EventLoopPolicy())


def rss_kib():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


async def bench_switch(n):
    rounds = 300

    async def worker():
        for _ in range(rounds):
            await aio.sleep(0)

    tasks = [aio.create_task(worker()) for _ in range(n)]
    t0 = time.perf_counter()
    for t in tasks:
        await t
    dt = time.perf_counter() - t0
    print("switch_per_s=%.0f" % (n * rounds / dt))


async def bench_spawn(n):
    async def nop():
        return 1

    batches, batch = 200, 1000
    t0 = time.perf_counter()
    for _ in range(batches):
        ts = [aio.create_task(nop()) for _ in range(batch)]
        for t in ts:
            await t
    dt = time.perf_counter() - t0
    print("spawn_per_s=%.0f" % (batches * batch / dt))


async def bench_sleepers(n):
    async def sleeper():
        await aio.sleep(1.0)

    gc.collect()
    before = rss_kib()
    tasks = [aio.create_task(sleeper()) for _ in range(n)]
    await aio.sleep(0.05)  # every task has started and sleeps
    after = rss_kib()
    print("bytes_per_sleeper=%.0f" % ((after - before) * 1024.0 / n))
    for t in tasks:
        t.cancel()
    await aio.gather(*tasks, return_exceptions=True)


async def bench_timers(n):
    rnd = random.Random(1)

    async def sleeper(delay):
        await aio.sleep(delay)

    t0, c0 = time.perf_counter(), time.process_time()
    coros = [sleeper(rnd.random() * 0.1) for _ in range(n)]
    # create_s: the part of wall_s the caller's own code takes to make its
    # n coroutine objects (CPython's work, the same for every library)
    create = time.perf_counter() - t0
    done = aio.gather(*coros)
    del coros
    await done
    dt, cpu = time.perf_counter() - t0, time.process_time() - c0
    print(
        "wall_s=%.3f cpu_s=%.3f create_s=%.3f ideal_s=0.100 "
        "ratio_to_ideal=%.2f" % (dt, cpu, create, dt / 0.1)
    )


BENCHES = {
    "switch": (bench_switch, 1000),
    "spawn": (bench_spawn, 0),
    "sleepers": (bench_sleepers, 100000),
    "timers": (bench_timers, 100000),
}
fn, default_n = BENCHES[BENCH]
aio.run(fn(N or default_n))
