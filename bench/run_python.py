#!/usr/bin/env python3
"""The Python package against CPython's asyncio and uvloop, in one run:
echo servers driven by the same load client (bench_echo_load), task
switches, spawn rate, memory per sleeping task and 100k timers; each run in
a fresh process, implementations interleaved (A B C A B C ...), medians.

    python3 bench/run_python.py [--build-dir build/bench] [--quick]
                                [--repeats 3] [--seconds 3] [-v]

Needs the package installed (pip install ./python) and uvloop (pip install
uvloop; without it the uvloop columns are empty).
"""

import argparse
import os
import subprocess
import sys
from pathlib import Path

import run_echo
from benchlib import cpu_model, fmt, median, ratio
from run_echo import choose_cpus, find_bin

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
PY = sys.executable

ECHO_WORKLOADS = [
    ("10x1k", 10, 1024),
    ("10x10k", 10, 10240),
    ("10x100k", 10, 102400),
    ("100x1k", 100, 1024),
]
ECHO_IMPLS = [
    "uvasync",
    "asyncio",
    "asyncio-protocol",
    "uvloop",
    "uvloop-protocol",
]
MICRO = [  # (bench, key, N full, N quick)
    ("switch", "switch_per_s", 1000, 1000),
    ("spawn", "spawn_per_s", 0, 0),
    ("sleepers", "bytes_per_sleeper", 100000, 20000),
    ("timers", "wall_s", 100000, 20000),
]
MICRO_IMPLS = ["uvasync", "asyncio", "uvloop"]


def have_uvloop():
    return (
        subprocess.run(
            [PY, "-c", "import uvloop"], capture_output=True
        ).returncode
        == 0
    )


def run_micro(impl, bench, n, timeout=300):
    cmd = [PY, str(HERE / "bench_python.py"), impl, bench] + (
        [str(n)] if n else []
    )
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if p.returncode != 0:
        return {"error": p.stderr.strip()[-300:]}
    out = {}
    for kv in p.stdout.split():
        k, _, v = kv.partition("=")
        out[k] = float(v)
    return out


def echo_servers(uvloop=None):
    """(name, command) of each Python echo server, for run_echo.run_one."""
    if uvloop is None:
        uvloop = have_uvloop()
    return [
        (impl, [PY, str(HERE / "echo_server.py"), impl])
        for impl in ECHO_IMPLS
        if uvloop or not impl.startswith("uvloop")
    ]


def measure_micro(quick=False, repeats=3, progress=None, uvloop=None):
    """The task benchmarks of MICRO, implementations interleaved.
    Returns ({bench: {impl: [result dicts]}}, [error strings])."""
    if uvloop is None:
        uvloop = have_uvloop()
    impls = [i for i in MICRO_IMPLS if uvloop or i != "uvloop"]
    results, errors = {}, []
    for bench, _key, n_full, n_quick in MICRO:
        runs = {i: [] for i in impls}
        for rep in range(repeats):
            for impl in impls:
                if progress:
                    progress(f"python {bench} {impl} #{rep + 1}")
                r = run_micro(impl, bench, n_quick if quick else n_full)
                if "error" in r:
                    errors.append(f"python {bench} {impl}: {r['error']}")
                    print(
                        f"  {bench} {impl}: FAILED {r['error']}",
                        file=sys.stderr,
                    )
                    continue
                runs[impl].append(r)
        results[bench] = runs
    return results, errors


def measure(
    build_dir,
    quick=False,
    repeats=None,
    seconds=None,
    verbose=False,
    progress=print,
):
    """Run everything; returns {"echo": [...rows], "micro": [...rows]}."""
    load = find_bin(build_dir, "bench_echo_load")
    repeats = repeats or (1 if quick else 3)
    seconds = seconds or (1.0 if quick else 3.0)
    cpus, pin_note = choose_cpus("", False)
    uvloop = have_uvloop()
    servers = echo_servers(uvloop)
    echo_runs, _ = run_echo.measure(
        servers,
        load,
        ECHO_WORKLOADS,
        repeats,
        seconds,
        cpus,
        progress=progress,
        verbose=verbose,
    )
    echo_rows = []
    for label, _, _ in ECHO_WORKLOADS:
        row = {"workload": label}
        for impl, _ in servers:
            for key in ("rps", "user_us", "sys_us"):
                row[f"{impl}_{key}"] = median(echo_runs[label][impl], key)
        echo_rows.append(row)
    micro_runs, _ = measure_micro(quick, repeats, progress, uvloop)
    micro_rows = []
    for bench, key, _, _ in MICRO:
        row = {"bench": bench, "key": key}
        for impl, runs in micro_runs[bench].items():
            row[impl] = median(runs, key)
        micro_rows.append(row)
    return {
        "echo": echo_rows,
        "micro": micro_rows,
        "pinning": pin_note,
        "repeats": repeats,
        "seconds": seconds,
    }


def report(res):
    echo, micro = res["echo"], res["micro"]
    impls = [i for i in ECHO_IMPLS if f"{i}_rps" in echo[0]]
    print("echo (server user CPU us per round trip in brackets):")
    print(
        "  "
        + "workload".rjust(9)
        + "".join(i.rjust(22) for i in impls)
        + "  uva/uvloop  uva/proto"
    )
    for row in echo:
        cells = [
            f"{fmt(row[f'{i}_rps'], 0)} ({fmt(row[f'{i}_user_us'], 2)})"
            for i in impls
        ]
        r1 = ratio(row["uvasync_rps"], row.get("uvloop_rps"))
        r2 = ratio(row["uvasync_rps"], row.get("uvloop-protocol_rps"))
        print(
            "  "
            + row["workload"].rjust(9)
            + "".join(c.rjust(22) for c in cells)
            + fmt(r1, 2).rjust(12)
            + fmt(r2, 2).rjust(11)
        )
    print()
    print("tasks:")
    for row in micro:
        vals = "  ".join(
            f"{i}={fmt(row.get(i), 3 if row['key'] == 'wall_s' else 0)}"
            for i in MICRO_IMPLS
            if i in row
        )
        r = ratio(row.get("uvasync"), row.get("asyncio"))
        print(
            f"  {row['bench']:<9} {row['key']:<18} {vals}  uvasync/asyncio={fmt(r, 2)}"
        )
    print()
    print("targets (issue 5):")
    for row in echo:
        if row["workload"] == "10x1k":
            r = ratio(row["uvasync_rps"], row.get("uvloop_rps"))
            u = ratio(row["uvasync_user_us"], row.get("uvloop_user_us"))
            print(
                f"  10x1k req/s >= 1.3x uvloop streams: {fmt(r, 2)}; "
                f"user CPU/rt <= 0.5x uvloop streams: {fmt(u, 2)}"
            )
        if row["workload"] == "10x100k":
            r = ratio(row["uvasync_rps"], row.get("uvloop-protocol_rps"))
            print(f"  10x100k req/s >= 1.0x uvloop Protocol: {fmt(r, 2)}")
    for row in micro:
        r = ratio(row.get("uvasync"), row.get("asyncio"))
        goal = {
            "switch": ">= 2x asyncio",
            "spawn": ">= 2x asyncio",
            "sleepers": "<= 0.5x asyncio",
            "timers": "wall <= 0.2 s (2x ideal)",
        }
        shown = (
            fmt(row.get("uvasync"), 3)
            if row["bench"] == "timers"
            else fmt(r, 2)
        )
        print(f"  {row['bench']:<9} {goal[row['bench']]}: {shown}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build-dir", type=Path, default=REPO / "build" / "bench")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--repeats", type=int)
    ap.add_argument("--seconds", type=float)
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args()
    print(
        f"cpu: {cpu_model()}, {os.cpu_count()} cpus; python {sys.version.split()[0]}"
    )
    res = measure(
        args.build_dir,
        args.quick,
        args.repeats,
        args.seconds,
        args.verbose,
        progress=lambda s: print(f"  ... {s}", file=sys.stderr),
    )
    print(f"pinning: {res['pinning']}; {res['repeats']} repeat(s)")
    report(res)
    return 0


if __name__ == "__main__":
    sys.exit(main())
