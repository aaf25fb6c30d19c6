#!/usr/bin/env python3
"""One operating-system benchmark in this process, on one implementation;
prints the key=value line of bench_os.c. run_os.py runs it for each
implementation in fresh processes, interleaved, and compares.

    python3 bench/bench_os.py IMPL BENCH ARGS

IMPL: uvasync | asyncio | uvloop
BENCH:
  spawn N            create_subprocess_exec("/bin/true") and wait(), N
                     times one after another: processes per second
  work N INFLIGHT    INFLIGHT tasks each awaiting
                     loop.run_in_executor(None, noop) in turn, N jobs in
                     all (the loop's default executor): jobs per second
  read PATH CHUNK    read the file to its end, CHUNK bytes a read: MB/s.
                     uvasync: its async file (uvasync.open_file); asyncio
                     and uvloop: an unbuffered file's read run in the
                     default executor (run_in_executor(None, f.read, CHUNK))
  aiofiles PATH CHUNK
                     the same read through aiofiles (asyncio and uvloop
                     only; aiofiles also runs each read in the default
                     executor)
"""

import sys
import time

IMPL, BENCH = sys.argv[1], sys.argv[2]
ARGS = sys.argv[3:]

if IMPL == "uvasync":
    import uvasync as aio
else:
    import asyncio as aio

    if IMPL == "uvloop":
        import uvloop

        aio.set_event_loop_policy(uvloop.EventLoopPolicy())
if BENCH == "aiofiles":
    import aiofiles


def count(text):
    """'1000', '1e6', '100k', '1M' as an int."""
    scale = {"k": 1e3, "K": 1e3, "m": 1e6, "M": 1e6}.get(text[-1:], 1)
    return int(float(text[:-1] if scale != 1 else text) * scale)


async def bench_spawn(n):
    for _ in range(n):
        p = await aio.create_subprocess_exec("/bin/true")
        if await p.wait() != 0:
            raise SystemExit("/bin/true exited with %r" % p.returncode)
    return n


def noop():
    pass


async def bench_work(n, inflight):
    loop = aio.get_running_loop()
    done = 0

    async def worker(jobs):
        nonlocal done
        for _ in range(jobs):
            await loop.run_in_executor(None, noop)
            done += 1

    shares = [n // inflight + (i < n % inflight) for i in range(inflight)]
    await aio.gather(*[worker(k) for k in shares])
    return done


async def bench_read(path, chunk):
    total = 0
    if IMPL == "uvasync":
        async with aio.open_file(path, "rb", buffering=0) as f:
            while True:
                data = await f.read(chunk)
                if not data:
                    break
                total += len(data)
    else:
        loop = aio.get_running_loop()
        with open(path, "rb", buffering=0) as f:
            while True:
                data = await loop.run_in_executor(None, f.read, chunk)
                if not data:
                    break
                total += len(data)
    return total


async def bench_aiofiles(path, chunk):
    total = 0
    async with aiofiles.open(path, "rb", buffering=0) as f:
        while True:
            data = await f.read(chunk)
            if not data:
                break
            total += len(data)
    return total


async def main():
    if BENCH == "spawn":
        run = bench_spawn(count(ARGS[0]))
    elif BENCH == "work":
        run = bench_work(count(ARGS[0]), count(ARGS[1]))
    elif BENCH == "read":
        run = bench_read(ARGS[0], count(ARGS[1]))
    elif BENCH == "aiofiles":
        run = bench_aiofiles(ARGS[0], count(ARGS[1]))
    else:
        raise SystemExit(__doc__)
    t0, c0 = time.perf_counter(), time.process_time()
    n = await run
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    rate = n / wall / (1e6 if BENCH in ("read", "aiofiles") else 1)
    print(
        "impl=%s name=%s n=%d rate=%.1f wall_s=%.6f cpu_s=%.6f ok=1"
        % (IMPL, BENCH, n, rate, wall, cpu)
    )


aio.run(main())
