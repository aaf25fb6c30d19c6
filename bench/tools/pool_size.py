#!/usr/bin/env python3
"""The pool's default size (asyncio's min(32, CPUs + 4)) against libuv's 4,
on two kinds of job, in rounds whose order alternates (ABBA), so a slow
spell of a shared machine and the order itself hit both sides:

  no-op   bench_os work N 64 (C API) at the default size and at
          BENCH_POOL_SIZE=4, raw libuv's bench_raw_os (4 threads) beside;
  2 ms    64 run_in_executor calls of time.sleep(0.002) in flight
          (the uvasync package, on the core pool), at both sizes.

    python3 bench/tools/pool_size.py [--build-dir build] [--rounds 10]
        [--before-build DIR --before-python PYTHON]

Prints the medians and the ratios size 4 / default paired within rounds
(above 1: 4 threads faster). With --before-build and --before-python (a
build and an interpreter whose package has an older core), the default
size of that core runs in each round too, and the ratios after / before
are printed. Needs bench_os and bench_raw_os built (Release) and the
package importable by each interpreter (the 2 ms runs are subprocesses).
"""

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import uvasync

REPO = Path(__file__).resolve().parents[2]


def noop_rate(build, size, prog="bench_os", n=500000):
    env = dict(os.environ)
    env.pop("BENCH_POOL_SIZE", None)
    if size:
        env["BENCH_POOL_SIZE"] = str(size)
    out = subprocess.run(
        [str(build / "bench" / prog), "work", str(n), "64"],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    ).stdout.split()
    return float(dict(f.split("=", 1) for f in out if "=" in f)["rate"])


def sleep_rate(size, n=1500, inflight=64):
    async def main():
        loop = uvasync.get_running_loop()
        if size:
            loop.set_pool_size(size)
        left = [n]

        async def worker():
            while left[0] > 0:
                left[0] -= 1
                await loop.run_in_executor(None, time.sleep, 0.002)

        t = time.perf_counter()
        await uvasync.gather(*[worker() for _ in range(inflight)])
        return n / (time.perf_counter() - t)

    return uvasync.run(main())


def sleep_rate_in(python, size):
    out = subprocess.run(
        [python, __file__, "--sleep-once", str(size)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return float(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build-dir", type=Path, default=REPO / "build")
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--before-build", type=Path)
    ap.add_argument("--before-python")
    ap.add_argument("--sleep-once", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.sleep_once is not None:
        print(sleep_rate(args.sleep_once))
        return
    before = args.before_build is not None and args.before_python is not None
    sides = [0, 4] + (["before"] if before else [])
    rows = {"no-op": [], "2 ms": []}
    for r in range(args.rounds):
        order = sides if r % 2 == 0 else sides[::-1]
        for kind in rows:
            got = {}
            for s in order:
                if kind == "no-op":
                    build = (
                        args.before_build if s == "before" else args.build_dir
                    )
                    got[s] = noop_rate(build, 0 if s == "before" else s)
                else:
                    python = (
                        args.before_python if s == "before" else sys.executable
                    )
                    got[s] = sleep_rate_in(python, 0 if s == "before" else s)
            if kind == "no-op":
                got["libuv"] = noop_rate(args.build_dir, 0, "bench_raw_os")
            rows[kind].append(got)
            print(f"round {r + 1} {kind}: {got}", flush=True)
    for kind, runs in rows.items():
        med = {k: statistics.median(g[k] for g in runs) for k in runs[0]}
        paired = statistics.median(g[4] / g[0] for g in runs)
        print(
            f"{kind}: jobs/s default {med[0]:.0f}, size 4 {med[4]:.0f}"
            + (f", before (default) {med['before']:.0f}" if before else "")
            + (f", raw libuv {med['libuv']:.0f}" if "libuv" in med else "")
            + f"; paired: size 4 / default {paired:.2f}"
            + (
                f", after / before {statistics.median(g[0] / g['before'] for g in runs):.2f}"
                if before
                else ""
            )
            + (
                f", after / raw libuv {statistics.median(g[0] / g['libuv'] for g in runs):.2f}"
                if "libuv" in med
                else ""
            )
        )
    print(f"load average: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
