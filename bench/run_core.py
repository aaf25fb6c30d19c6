#!/usr/bin/env python3
"""Run the core benchmarks: uvasync's C API (bench_core) against raw libuv
(bench_raw_core), interleaved in one run (A B A B ...), and print medians.

    python3 bench/run_core.py [--build-dir build/bench] [--quick]
                              [--repeats 7] [--only yield,spawn] [-v]

--build-dir is the directory holding bench_core and bench_raw_core (the
CMake build puts them in <build>/bench); the top of a build tree works too.
Python 3 standard library only.
"""

import argparse
import os
import platform
import subprocess
import sys
from pathlib import Path

from benchlib import cpu_model, fmt, median

REPO = Path(__file__).resolve().parent.parent
DEFAULT_BUILD_DIR = REPO / "build" / "bench"
UVA_BIN = "bench_core"
RAW_BIN = "bench_raw_core"

# (label, benchmark, N, extra CLI arg or None)
FULL = [
    ("spawn", "spawn", 1_000_000, None),
    ("yield", "yield", 1_000_000, "1000"),
    ("timers 1M", "timers", 1_000_000, None),
    ("timers 100k", "timers", 100_000, None),
    ("sleep", "sleep", 100_000, None),
    ("idle", "idle", 100_000, None),
]
QUICK = [
    ("spawn", "spawn", 100_000, None),
    ("yield", "yield", 100_000, "1000"),
    ("timers 100k", "timers", 100_000, None),
    ("timers 10k", "timers", 10_000, None),
    ("sleep", "sleep", 10_000, None),
    ("idle", "idle", 10_000, None),
]

# Targets from the issue.
TOKIO_YIELDS_PER_S = 25e6  # tokio current-thread, ~25M yields/s
TOKIO_SPAWNS_PER_S = 5e6  # tokio current-thread, ~5M spawn+complete/s


def find_bin(build_dir: Path, name: str) -> Path:
    for cand in (build_dir / name, build_dir / "bench" / name):
        if cand.is_file() and os.access(cand, os.X_OK):
            return cand
    sys.exit(
        f"run_core.py: {name} not found in {build_dir} (or its bench/); "
        f"build first: cmake -S . -B build -DCMAKE_BUILD_TYPE=Release "
        f"&& cmake --build build -j2"
    )


def run_one(exe: Path, bench: str, n: int, extra, timeout: float) -> dict:
    cmd = [str(exe), bench, str(n)] + ([extra] if extra else [])
    try:
        p = subprocess.run(
            cmd, capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired:
        return {"error": f"timeout after {timeout:.0f} s: {' '.join(cmd)}"}
    line = p.stdout.strip().splitlines()[-1] if p.stdout.strip() else ""
    fields = dict(kv.split("=", 1) for kv in line.split() if "=" in kv)
    if p.returncode != 0 or fields.get("ok") != "1":
        return {
            "error": f"exit {p.returncode}: {' '.join(cmd)}: "
            f"{line or p.stderr.strip()[:300]}"
        }
    out = {"line": line}
    for k in (
        "ns_per_op",
        "cpu_ns_per_op",
        "rss_growth_bytes",
        "bytes_per_task",
    ):
        if k in fields:
            out[k] = float(fields[k])
    return out


def measure(
    uva: Path,
    raw: Path,
    plan,
    repeats: int,
    timeout: float = 300.0,
    progress=None,
    verbose=False,
):
    """Each benchmark of `plan` ((label, benchmark, N, extra) tuples),
    `repeats` times as uvasync, libuv, uvasync, libuv ... in fresh processes.
    Returns ({label: (benchmark, N, {"uvasync": [runs], "libuv": [runs]})},
    [error strings]); failed runs are left out of the lists."""
    results, errors = {}, []
    for label, bench, n, extra in plan:
        runs = {"uvasync": [], "libuv": []}
        for rep in range(repeats):
            for impl, exe in (("uvasync", uva), ("libuv", raw)):
                if progress:
                    progress(f"core {label} {impl} #{rep + 1}")
                r = run_one(exe, bench, n, extra, timeout)
                if "error" in r:
                    errors.append(f"core {label} {impl}: {r['error']}")
                    print(f"    {impl}: {r['error']}", file=sys.stderr)
                else:
                    runs[impl].append(r)
                    if verbose:
                        print(f"    {r['line']}", flush=True)
        results[label] = (bench, n, runs)
    return results, errors


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--build-dir",
        type=Path,
        default=DEFAULT_BUILD_DIR,
        help=f"directory with {UVA_BIN} and {RAW_BIN} "
        f"(default: {DEFAULT_BUILD_DIR})",
    )
    ap.add_argument(
        "--quick",
        action="store_true",
        help="small N (100k/10k) and 3 repeats, for a smoke run",
    )
    ap.add_argument(
        "--repeats",
        type=int,
        default=None,
        help="interleaved repeats per benchmark (default 7, quick 3)",
    )
    ap.add_argument(
        "--only",
        default="",
        help="comma-separated benchmark names (spawn,yield,timers,sleep,idle)",
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
    raw = find_bin(args.build_dir, RAW_BIN)
    plan = QUICK if args.quick else FULL
    if args.only:
        wanted = {w.strip() for w in args.only.split(",") if w.strip()}
        plan = [b for b in plan if b[1] in wanted]
    repeats = args.repeats or (3 if args.quick else 7)

    print(f"uvasync core benchmarks: {uva.name} vs {raw.name} in {uva.parent}")
    print(
        f"cpu: {cpu_model()}, {os.cpu_count()} cpus; python {platform.python_version()}; "
        f"{repeats} interleaved repeats, medians\n",
        flush=True,
    )

    results, errors = measure(
        uva,
        raw,
        plan,
        repeats,
        args.timeout,
        verbose=args.verbose,
        progress=lambda s: print(f"  {s}", file=sys.stderr),
    )
    failed = bool(errors)

    # --- time table
    print()
    hdr = (
        f"{'benchmark':<12} {'N':>9} {'uvasync ns/op':>14} {'libuv ns/op':>12} "
        f"{'ratio':>7} {'uvasync cpu':>12} {'libuv cpu':>10} {'cpu ratio':>9}"
    )
    print(hdr)
    print("-" * len(hdr))
    med = {}
    for label, (_bench, n, runs) in results.items():
        m = {
            impl: {
                k: median(rs, k)
                for k in (
                    "ns_per_op",
                    "cpu_ns_per_op",
                    "rss_growth_bytes",
                    "bytes_per_task",
                )
            }
            for impl, rs in runs.items()
        }
        med[label] = m
        u, libuv = m["uvasync"], m["libuv"]
        ratio = (
            u["ns_per_op"] / libuv["ns_per_op"]
            if u["ns_per_op"] and libuv["ns_per_op"]
            else None
        )
        cratio = (
            u["cpu_ns_per_op"] / libuv["cpu_ns_per_op"]
            if u["cpu_ns_per_op"] and libuv["cpu_ns_per_op"]
            else None
        )
        print(
            f"{label:<12} {n:>9} {fmt(u['ns_per_op'], 2):>14} {fmt(libuv['ns_per_op'], 2):>12} "
            f"{fmt(ratio, 2):>7} {fmt(u['cpu_ns_per_op'], 2):>12} "
            f"{fmt(libuv['cpu_ns_per_op'], 2):>10} {fmt(cratio, 2):>9}"
        )
    print(
        "ratio = uvasync / libuv (below 1: uvasync is faster). ns/op is wall "
        "time / N;\ncpu = process CPU time / N (excludes time the loop "
        "sleeps waiting for the 0-100 ms delays)."
    )

    # --- memory
    print()
    print(f"{'memory per task':<24} {'uvasync bytes':>14} {'libuv bytes':>12}")
    print("-" * 52)
    for label, what in (
        ("sleep", "sleeping task"),
        ("idle", "idle (parked) task"),
    ):
        if label in med:
            print(
                f"{what:<24} {fmt(med[label]['uvasync']['bytes_per_task']):>14} "
                f"{fmt(med[label]['libuv']['bytes_per_task']):>12}"
            )
    print(
        "RSS growth / N, sampled while all N are sleeping / parked. libuv side: "
        "a sleeping task\nis a malloc'd uv_timer_t; an idle task is a malloc'd "
        "{next, step, state} struct\n(no cancel, join, result or refcount)."
    )

    # --- targets
    def get(label, impl, key):
        return med.get(label, {}).get(impl, {}).get(key)

    checks = []
    y_u, y_l = (
        get("yield", "uvasync", "ns_per_op"),
        get("yield", "libuv", "ns_per_op"),
    )
    if y_u and y_l:
        checks.append(
            (
                f"yield: within 2x of raw uv_idle round ({y_u / y_l:.2f}x)",
                y_u <= 2 * y_l,
            )
        )
        limit = 1e9 / (4 * TOKIO_YIELDS_PER_S)
        checks.append(
            (
                f"yield: <= {limit:.0f} ns/switch (4x tokio's 25M/s) "
                f"({y_u:.2f} ns = {1e3 / y_u:.0f}M/s)",
                y_u <= limit,
            )
        )
    s_u = get("spawn", "uvasync", "ns_per_op")
    if s_u:
        limit = 1e9 / TOKIO_SPAWNS_PER_S
        checks.append(
            (
                f"spawn+complete: <= {limit:.0f} ns (tokio's 5M/s) "
                f"({s_u:.1f} ns = {1e3 / s_u:.2f}M/s)",
                s_u <= limit,
            )
        )
    m_u = get("sleep", "uvasync", "bytes_per_task")
    if m_u is not None:
        checks.append(
            (f"sleeping task <= 128 bytes ({m_u:.1f} B)", m_u <= 128)
        )
    t_label = "timers 1M" if "timers 1M" in med else None
    if t_label:
        t_u, t_l = (
            get(t_label, "uvasync", "ns_per_op"),
            get(t_label, "libuv", "ns_per_op"),
        )
        c_u, c_l = (
            get(t_label, "uvasync", "cpu_ns_per_op"),
            get(t_label, "libuv", "cpu_ns_per_op"),
        )
        if t_u and t_l:
            cpu = f", {c_l / c_u:.2f}x cpu" if c_u and c_l else ""
            checks.append(
                (
                    f"1M timers >= 2x faster than raw uv_timer_t "
                    f"({t_l / t_u:.2f}x wall{cpu})",
                    t_l >= 2 * t_u,
                )
            )
    if "timers 1M" in med and "timers 100k" in med:
        for impl in ("uvasync", "libuv"):
            a = get("timers 100k", impl, "cpu_ns_per_op")
            b = get("timers 1M", impl, "cpu_ns_per_op")
            if a and b:
                print(
                    f"\ntimer scaling ({impl}): cpu ns/op 100k -> 1M = "
                    f"{a:.1f} -> {b:.1f} ({b / a:.2f}x; ideal O(log n) "
                    f"~1.2x plus cache effects)",
                    end="",
                )
        print()
    if checks:
        print("\ntargets (from the issue):")
        for text, ok in checks:
            print(f"  [{'PASS' if ok else 'MISS'}] {text}")
    if args.quick:
        print("\n(--quick: small N; use the full run for the targets)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
