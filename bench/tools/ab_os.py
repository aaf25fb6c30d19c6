#!/usr/bin/env python3
"""Before/after of a core change on bench_os (C API): runs the bench_os of
two builds (A = before, B = after) and raw libuv's bench_raw_os in
interleaved rounds and prints, per benchmark, the medians (and min-max)
of rate and CPU per item, and the paired ratios B/A and B/libuv (the
median over rounds of the ratio within a round; above 1 = B faster).

    python3 bench/tools/ab_os.py BUILD_A BUILD_B [--rounds 7]
        [--benches "work 300000 64" "read FILE 262144" ...]

BUILD_A and BUILD_B are CMake build directories with bench/bench_os built
(e.g. a copy of the tree at the old commit, built Release); bench_raw_os
is taken from BUILD_B.
"""

import argparse
import statistics
import subprocess
from pathlib import Path


def run(argv):
    out = subprocess.run(
        [str(a) for a in argv], capture_output=True, text=True, check=True
    ).stdout.split()
    kv = dict(f.split("=", 1) for f in out if "=" in f)
    if kv.get("ok") != "1":
        raise SystemExit(f"not ok: {argv}: {out}")
    return {
        "rate": float(kv["rate"]),
        "cpu_per": float(kv["cpu_s"]) / float(kv["n"]),
    }


def fmt(vals):
    return f"{statistics.median(vals):.4g} ({min(vals):.4g}-{max(vals):.4g})"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("build_a", type=Path)
    ap.add_argument("build_b", type=Path)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument(
        "--benches",
        nargs="+",
        default=["work 300000 64", "work 20000 1"],
        help='bench_os arguments, one string each, e.g. "work 300000 64"',
    )
    args = ap.parse_args()
    progs = {
        "A": args.build_a / "bench" / "bench_os",
        "B": args.build_b / "bench" / "bench_os",
        "libuv": args.build_b / "bench" / "bench_raw_os",
    }
    for bench in args.benches:
        res = {k: [] for k in progs}
        for r in range(args.rounds):
            # Rotate the order so no side always runs first in a round.
            order = list(progs)[r % 3 :] + list(progs)[: r % 3]
            for k in order:
                res[k].append(run([progs[k], *bench.split()]))
        print(f"== bench_os {bench} ({args.rounds} rounds)")
        for k in progs:
            print(
                f"  {k:6} rate {fmt([x['rate'] for x in res[k]])}"
                f"  cpu/item {fmt([x['cpu_per'] * 1e6 for x in res[k]])} us"
            )
        for a, b in (("B", "A"), ("B", "libuv"), ("A", "libuv")):
            pr = statistics.median(
                x["rate"] / y["rate"] for x, y in zip(res[a], res[b])
            )
            print(f"  paired rate {a}/{b}: {pr:.2f}")


if __name__ == "__main__":
    main()
