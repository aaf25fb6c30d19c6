#!/usr/bin/env python3
"""bench_sync_asyncio — the CPython asyncio side of bench_sync.c.

    python3 bench/bench_sync_asyncio.py BENCH N

Same scenarios, same output line as bench_sync (impl=asyncio):

    lock  N   two tasks each loop: acquire -> yield once while holding
              (await asyncio.sleep(0)) -> release; N hand-offs in all
    queue N   producer puts N items into asyncio.Queue(maxsize=1), a consumer
              gets them (checking their order)
    event N   ping sets E1 and waits for E2; pong waits for E1, clears it and
              sets E2; ping clears E2; N round trips

Time: time.perf_counter_ns() around the two tasks inside the running loop
(creating the loop is outside the measured region, as in bench_sync.c).
Standard library only; the default event loop (no uvloop).
"""

import asyncio
import sys
import time


async def bench_lock(n):
    lock = asyncio.Lock()
    count = 0

    async def worker():
        nonlocal count
        while True:
            if count >= n:
                return
            await lock.acquire()
            if count >= n:  # granted after the end: pass it on
                lock.release()
                return
            await asyncio.sleep(0)  # hold it for one pass
            count += 1
            lock.release()

    await asyncio.gather(worker(), worker())
    return count == n


async def bench_queue(n):
    q = asyncio.Queue(maxsize=1)
    ok = True

    async def producer():
        for i in range(1, n + 1):
            await q.put(i)

    async def consumer():
        nonlocal ok
        for i in range(1, n + 1):
            if await q.get() != i:
                ok = False

    await asyncio.gather(producer(), consumer())
    return ok


async def bench_event(n):
    e1, e2 = asyncio.Event(), asyncio.Event()
    trips = 0

    async def ping():
        nonlocal trips
        for _ in range(n):
            e1.set()
            await e2.wait()
            e2.clear()
            trips += 1

    async def pong():
        for _ in range(n):
            await e1.wait()
            e1.clear()
            e2.set()

    await asyncio.gather(ping(), pong())
    return trips == n


BENCHES = {"lock": bench_lock, "queue": bench_queue, "event": bench_event}


def parse_n(s):
    mult = 1
    if s[-1:] in ("k", "K"):
        mult, s = 1000, s[:-1]
    elif s[-1:] in ("m", "M"):
        mult, s = 1000000, s[:-1]
    n = int(float(s) * mult + 0.5)
    if n < 1:
        raise ValueError(s)
    return n


def main():
    if len(sys.argv) != 3 or sys.argv[1] not in BENCHES:
        sys.exit(f"usage: {sys.argv[0]} {{{'|'.join(BENCHES)}}} N")
    name, n = sys.argv[1], parse_n(sys.argv[2])
    result = {}

    async def run():
        t0, c0 = time.perf_counter_ns(), time.process_time_ns()
        result["ok"] = await BENCHES[name](n)
        result["wall"] = time.perf_counter_ns() - t0
        result["cpu"] = time.process_time_ns() - c0

    asyncio.run(run())
    print(
        f"impl=asyncio name={name} n={n} "
        f"ns_per_op={result['wall'] / n:.2f} "
        f"cpu_ns_per_op={result['cpu'] / n:.2f} ok={int(result['ok'])}",
        flush=True,
    )
    sys.exit(0 if result["ok"] else 1)


if __name__ == "__main__":
    main()
