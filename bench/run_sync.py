#!/usr/bin/env python3
"""Run the sync-primitive benchmarks: uvasync's C API (bench_sync) against
CPython asyncio (bench_sync_asyncio.py), interleaved in one run
(A B A B ...), and print medians and the ratio.

    python3 bench/run_sync.py [--build-dir build/bench] [--n 200000]
                              [--repeats 7] [--only lock,queue] [--quick] [-v]

--build-dir is the directory holding bench_sync (the CMake build puts it in
<build>/bench); the top of a build tree works too. Each run is a fresh
process. Python 3 standard library only.
"""

import argparse
import os
import subprocess
import sys
from pathlib import Path

from benchlib import cpu_model, fmt, median

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
DEFAULT_BUILD_DIR = REPO / "build" / "bench"
UVA_BIN = "bench_sync"
PY_SCRIPT = HERE / "bench_sync_asyncio.py"

PLAN = [
    ("lock", "lock hand-off (2 tasks)"),
    ("queue", "queue put/get, maxsize 1"),
    ("event", "event ping-pong (round trip)"),
]


def find_bin(build_dir: Path, name: str) -> Path:
    for cand in (build_dir / name, build_dir / "bench" / name):
        if cand.is_file() and os.access(cand, os.X_OK):
            return cand
    sys.exit(
        f"run_sync.py: {name} not found in {build_dir} (or its bench/); "
        f"build first: cmake -S . -B build -DCMAKE_BUILD_TYPE=Release "
        f"&& cmake --build build -j2"
    )


def run_one(cmd, timeout: float) -> dict:
    try:
        p = subprocess.run(
            cmd, capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired:
        return {"error": f"timeout after {timeout:.0f} s: {' '.join(cmd)}"}
    line = p.stdout.strip().splitlines()[-1] if p.stdout.strip() else ""
    fields = dict(kv.split("=", 1) for kv in line.split() if "=" in kv)
    out = {"line": line}
    for k in ("ns_per_op", "cpu_ns_per_op"):
        if k in fields:
            out[k] = float(fields[k])
    if p.returncode != 0 or fields.get("ok") != "1":
        err = (p.stderr.strip().splitlines() or [""])[-1][:300]
        out["error"] = (
            f"exit {p.returncode}: {' '.join(cmd)}: {line} {err}".strip()
        )
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--build-dir",
        type=Path,
        default=DEFAULT_BUILD_DIR,
        help=f"directory with {UVA_BIN} (default: {DEFAULT_BUILD_DIR})",
    )
    ap.add_argument(
        "--n",
        type=int,
        default=None,
        help="operations per run, both sides (default 200000, quick 20000)",
    )
    ap.add_argument(
        "--repeats",
        type=int,
        default=None,
        help="interleaved repeats per benchmark (default 7, quick 5)",
    )
    ap.add_argument(
        "--only",
        default="",
        help="comma-separated benchmark names (lock,queue,event)",
    )
    ap.add_argument("--quick", action="store_true", help="small N, 5 repeats")
    ap.add_argument(
        "--python",
        default=sys.executable,
        help="interpreter for the asyncio side (default: this one)",
    )
    ap.add_argument(
        "--timeout",
        type=float,
        default=300.0,
        help="seconds allowed per single run",
    )
    ap.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="print every raw result line",
    )
    args = ap.parse_args()

    uva = find_bin(args.build_dir, UVA_BIN)
    n = args.n or (20_000 if args.quick else 200_000)
    repeats = args.repeats or (5 if args.quick else 7)
    if repeats < 1:
        sys.exit("run_sync.py: --repeats must be >= 1")
    plan = PLAN
    if args.only:
        wanted = {w.strip() for w in args.only.split(",") if w.strip()}
        plan = [b for b in plan if b[0] in wanted]
    pyver = subprocess.run(
        [
            args.python,
            "-c",
            "import platform; print(platform.python_version())",
        ],
        capture_output=True,
        text=True,
    ).stdout.strip()

    print(f"uvasync sync benchmarks: {uva} vs CPython {pyver} asyncio")
    print(
        f"cpu: {cpu_model()}, {os.cpu_count()} cpus; N={n}; "
        f"{repeats} interleaved repeats (uvasync, asyncio, ...), medians\n",
        flush=True,
    )

    results = []
    failed = False
    for bench, label in plan:
        runs = {"uvasync": [], "asyncio": []}
        bad = {"uvasync": [], "asyncio": []}  # failed runs that still timed
        cmds = {
            "uvasync": [str(uva), bench, str(n)],
            "asyncio": [args.python, str(PY_SCRIPT), bench, str(n)],
        }
        print(f"  {bench:<6} ", end="", flush=True)
        for _ in range(repeats):
            for impl in ("uvasync", "asyncio"):
                r = run_one(cmds[impl], args.timeout)
                if "error" in r:
                    failed = True
                    print(f"\n    {impl}: {r['error']}", flush=True)
                    if "ns_per_op" in r:
                        bad[impl].append(r)
                else:
                    runs[impl].append(r)
                    if args.verbose:
                        print(f"\n    {r['line']}", end="", flush=True)
            print(".", end="", flush=True)
        print(flush=True)
        results.append((bench, label, runs, bad))

    rows = []
    invalid = False
    for bench, label, runs, bad in results:
        for impl in ("uvasync", "asyncio"):
            if not runs[impl] and bad[impl]:  # only failed runs: show them
                runs[impl] = bad[impl]
                label += f" [{impl} INVALID]"
                invalid = True
        u = {
            k: median(runs["uvasync"], k)
            for k in ("ns_per_op", "cpu_ns_per_op")
        }
        a = {
            k: median(runs["asyncio"], k)
            for k in ("ns_per_op", "cpu_ns_per_op")
        }
        speed = (
            a["ns_per_op"] / u["ns_per_op"]
            if u["ns_per_op"] and a["ns_per_op"]
            else None
        )
        rows.append((f"{bench}: {label}", u, a, speed))

    w = max([len(r[0]) for r in rows] + [9])
    print()
    hdr = (
        f"{'benchmark':<{w}} {'uvasync ns/op':>14} {'asyncio ns/op':>14} "
        f"{'speed-up':>9} {'uvasync cpu':>12} {'asyncio cpu':>12}"
    )
    print(hdr)
    print("-" * len(hdr))
    for name, u, a, speed in rows:
        print(
            f"{name:<{w}} {fmt(u['ns_per_op'], 1):>14} "
            f"{fmt(a['ns_per_op'], 1):>14} {fmt(speed, 1) + 'x':>9} "
            f"{fmt(u['cpu_ns_per_op'], 1):>12} {fmt(a['cpu_ns_per_op'], 1):>12}"
        )
    print(
        "speed-up = asyncio ns/op / uvasync ns/op (above 1: uvasync is "
        "faster). ns/op = wall\ntime / N; one op = one lock hand-off, one "
        "item through the queue, one round trip."
    )
    if failed:
        print("\nsome runs failed (see above): their medians exclude them")
    if invalid:
        print(
            "INVALID: every run of that side failed its checks (ok=0); the "
            "median shown is\nof those failed runs, for orientation only"
        )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
