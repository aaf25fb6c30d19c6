#!/usr/bin/env python3
"""The operating-system benchmarks of every binding against its peers, in
one run: spawn-and-wait of /bin/true, executor round trips (a no-op job, one
at a time and 64 in flight) and a file read through the page cache.

    python3 bench/run_os.py [--build-dir build] [--quick] [--repeats 5]
                            [--only c,python,rust] [--benches procs,read]
                            [--no-build] [--json FILE] [-v]

  C       bench_os (uvasync's C API)   vs bench_raw_os (raw libuv)
  Python  bench_os.py uvasync          vs asyncio and uvloop (their
                                          run_in_executor; aiofiles on each
                                          for the file read)
  Rust    examples/bench_os uvasync    vs tokio (current-thread runtime,
                                          tokio::process, spawn_blocking,
                                          tokio::fs)

Every run is a fresh process; within a round every implementation runs once
(A B C A B C ...), so a slow spell of a shared machine hits all sides; the
table shows medians, min-max and, per peer, uvasync / peer (above 1 =
uvasync better), also paired within rounds. The file (1 GiB, --quick 64
MiB) is written once into BUILD/bench-data and read once before the runs,
so every run reads from the page cache.

Builds (unless --no-build): bench_os and bench_raw_os (CMake Release build
in BUILD), the Rust examples (cargo build --release). The Python side needs
the package importable (run_all.py puts its private copy on PYTHONPATH),
uvloop and aiofiles; without uvloop or aiofiles their columns are left out.
"""

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import run_rust  # noqa: E402

import machine  # noqa: E402
from benchlib import cpu_model, paired_ratio, summary  # noqa: E402

REPO = HERE.parent
PY = sys.executable
GROUPS = ["c", "python", "rust"]
CHUNK = 256 * 1024  # bytes per read
INFLIGHT = 64  # jobs in flight in "exec 64"

# (key, title, unit): the rows, as run_all.py shows them.
BENCHES = [
    ("procs", "spawn+wait /bin/true", "processes/s"),
    ("exec 1", "executor, 1 in flight", "jobs/s"),
    (f"exec {INFLIGHT}", f"executor, {INFLIGHT} in flight", "jobs/s"),
    ("file read", "file read (cached)", "MB/s"),
]
# N per benchmark and group, full and quick: each full run takes about a
# second (Python's executor is 10-30x slower per job than C's and Rust's).
N = {
    "procs": {"full": 1000, "quick": 100},
    "exec 1": {"full": 20000, "quick": 2000},
    f"exec {INFLIGHT}": {
        "full": {"c": 500000, "python": 50000, "rust": 200000},
        "quick": {"c": 20000, "python": 5000, "rust": 20000},
    },
}
FILE_SIZE = {"full": 1 << 30, "quick": 64 << 20}
# The peers of each group, in table order; the first is uvasync.
IMPLS = {
    "c": ["uvasync", "libuv"],
    "python": [
        "uvasync",
        "asyncio",
        "uvloop",
        "asyncio-aiofiles",
        "uvloop-aiofiles",
    ],
    "rust": ["uvasync", "tokio"],
}


def n_for(bench, group, quick):
    n = N[bench]["quick" if quick else "full"]
    return n[group] if isinstance(n, dict) else n


def has_module(name):
    return (
        subprocess.run(
            [PY, "-c", f"import {name}"], capture_output=True
        ).returncode
        == 0
    )


def find_bin(build_dir, name):
    for cand in (build_dir / "bench" / name, build_dir / name):
        if cand.is_file() and os.access(cand, os.X_OK):
            return cand
    sys.exit(f"run_os.py: {name} not found in {build_dir}/bench; build first")


def build(build_dir, groups):
    if "c" in groups:
        subprocess.run(
            [
                "cmake",
                "-S",
                REPO,
                "-B",
                build_dir,
                "-DCMAKE_BUILD_TYPE=Release",
                "-DUVA_SANITIZE=",
            ],
            check=True,
            capture_output=True,
        )
        subprocess.run(
            [
                "cmake",
                "--build",
                build_dir,
                "-j2",
                "--target",
                "bench_os",
                "bench_raw_os",
            ],
            check=True,
            capture_output=True,
        )
    if "rust" in groups:
        run_rust.build()


def data_file(build_dir, quick):
    """The file the read benchmark reads: written once (pseudo-random bytes,
    so no file system can store it sparse or compressed), then read once
    so that it is in the page cache."""
    size = FILE_SIZE["quick" if quick else "full"]
    path = build_dir / "bench-data" / f"read-{size >> 20}m.bin"
    if not path.is_file() or path.stat().st_size != size:
        path.parent.mkdir(parents=True, exist_ok=True)
        block = os.urandom(1 << 20)
        tmp = path.with_suffix(".tmp")
        with open(tmp, "wb") as f:
            for _ in range(size >> 20):
                f.write(block)
        os.replace(tmp, path)
    with open(path, "rb", buffering=0) as f:
        while f.read(1 << 20):
            pass
    return path


def commands(build_dir, groups, quick, path, benches):
    """{bench: [(group, impl, argv)]} in the order of one round."""
    py_impls = ["uvasync", "asyncio"] + (
        ["uvloop"] if has_module("uvloop") else []
    )
    aiofiles = has_module("aiofiles")
    progs = {}
    if "c" in groups:
        progs["c"] = [
            ("uvasync", [find_bin(build_dir, "bench_os")]),
            ("libuv", [find_bin(build_dir, "bench_raw_os")]),
        ]
    if "python" in groups:
        progs["python"] = [
            (i, [PY, HERE / "bench_os.py", i]) for i in py_impls
        ]
    if "rust" in groups:
        exe = run_rust.EXAMPLES / "bench_os"
        progs["rust"] = [(i, [exe, i]) for i in ("uvasync", "tokio")]
    plan = {}
    for key, _title, _unit in BENCHES:
        if key not in benches:
            continue
        runs = []
        for group, impls in progs.items():
            for impl, argv in impls:
                if key == "procs":
                    args = ["spawn", n_for(key, group, quick)]
                elif key.startswith("exec"):
                    inflight = int(key.split()[1])
                    args = ["work", n_for(key, group, quick), inflight]
                else:
                    args = ["read", path, CHUNK]
                runs.append((group, impl, argv + args))
                if key == "file read" and group == "python" and aiofiles:
                    if impl in ("asyncio", "uvloop"):
                        runs.append(
                            (
                                group,
                                f"{impl}-aiofiles",
                                argv + ["aiofiles", path, CHUNK],
                            )
                        )
        plan[key] = runs
    return plan


def run_one(argv, timeout=300):
    """One run: its key=value line as a dict (rate etc. as floats), or
    {"error": ...}."""
    argv = [str(a) for a in argv]
    try:
        p = subprocess.run(
            argv, capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired:
        return {"error": f"timeout after {timeout} s: {' '.join(argv)}"}
    line = p.stdout.strip().splitlines()[-1] if p.stdout.strip() else ""
    kv = dict(f.split("=", 1) for f in line.split() if "=" in f)
    if p.returncode != 0 or kv.get("ok") != "1":
        return {
            "error": f"exit {p.returncode}: {' '.join(argv)}: "
            f"{line or p.stderr.strip()[-300:]}"
        }
    out = {k: float(kv[k]) for k in ("rate", "wall_s", "cpu_s", "n")}
    out["line"] = line
    return out


def measure(
    build_dir,
    groups,
    quick=False,
    repeats=5,
    benches=None,
    progress=None,
    verbose=False,
):
    """Run the plan, every implementation once per round. Returns
    ({group: {bench: {impl: [runs]}}}, [error strings]); each run carries
    its "round" (for benchlib.paired_ratio)."""
    benches = benches or [b for b, _, _ in BENCHES]
    path = data_file(build_dir, quick) if "file read" in benches else None
    plan = commands(build_dir, groups, quick, path, benches)
    values = {g: {} for g in groups}
    errors = []
    for key, runs in plan.items():
        for rep in range(repeats):
            for group, impl, argv in runs:
                if progress:
                    progress(f"os {key} {group}/{impl} #{rep + 1}")
                r = run_one(argv)
                if "error" in r:
                    errors.append(f"os {key} {group}/{impl}: {r['error']}")
                    print(f"  {r['error']}", file=sys.stderr)
                    continue
                r["round"] = rep
                if verbose:
                    print(f"    {r['line']}", flush=True)
                values[group].setdefault(key, {}).setdefault(impl, [])
                values[group][key][impl].append(r)
    return values, errors


def plan_size(build_dir, groups, quick, repeats, benches=None):
    """How many runs measure() makes (for a progress counter)."""
    benches = benches or [b for b, _, _ in BENCHES]
    plan = commands(build_dir, groups, quick, Path("-"), benches)
    return sum(len(runs) for runs in plan.values()) * repeats


def rows(values):
    """One row per (group, bench): summaries, ratios of medians and paired
    ratios (uvasync / peer, higher is better for every one of these)."""
    out = []
    for group in GROUPS:
        for key, title, unit in BENCHES:
            by_impl = values.get(group, {}).get(key)
            if not by_impl or "uvasync" not in by_impl:
                continue
            impls = {
                i: summary([r["rate"] for r in by_impl[i]])
                for i in IMPLS[group]
                if i in by_impl
            }
            subject = impls["uvasync"]["median"]
            ratios, paired = {}, {}
            for peer in impls:
                if peer == "uvasync":
                    continue
                m = impls[peer]["median"]
                ratios[peer] = subject / m if subject and m else None
                paired[peer] = paired_ratio(
                    by_impl["uvasync"], by_impl[peer], "rate"
                )
            out.append(
                {
                    "group": group,
                    "benchmark": key,
                    "title": title,
                    "unit": unit,
                    "better": "higher",
                    "impls": impls,
                    "ratios": ratios,
                    "paired_ratios": paired,
                }
            )
    return out


def report(table):
    print(
        "medians (min-max); ratio = uvasync / peer, above 1 = uvasync "
        "better;\npaired = median over the rounds of that ratio within "
        "each round"
    )
    for group in GROUPS:
        grows = [r for r in table if r["group"] == group]
        if not grows:
            continue
        print(f"\n{group}:")
        for r in grows:
            print(f"  {r['title']} ({r['unit']})")
            for impl, s in r["impls"].items():
                extra = ""
                if impl != "uvasync":
                    q, p = r["ratios"][impl], r["paired_ratios"][impl]
                    extra = (f"  ratio {q:.2f}" if q else "  ratio -") + (
                        f"  paired {p:.2f}" if p else ""
                    )
                print(
                    f"    {impl:<17} {s['median']:>12.1f} "
                    f"({s['min']:.1f}-{s['max']:.1f}){extra}"
                )
    print(
        "\ntargets (issue 24): uvasync at least the best peer, judged on the"
        "\nratio paired within rounds (steadier on a shared machine; the"
        "\nratio of medians beside it)"
    )
    missed = 0
    for r in table:
        worst = [
            (r["paired_ratios"].get(p), q, p)
            for p, q in r["ratios"].items()
            if q is not None
        ]
        worst = [w for w in worst if w[0] is not None]
        if not worst:
            missed += 1
            print(f"  [MISS] {r['group']} {r['title']}: no ratio")
            continue
        paired, median_ratio, peer = min(worst)
        ok = paired >= 1.0
        missed += not ok
        print(
            f"  [{'PASS' if ok else 'MISS'}] {r['group']:<6} {r['title']}: "
            f"{paired:.2f}x the best peer ({peer}; ratio of medians "
            f"{median_ratio:.2f})"
        )
    return missed


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build-dir", type=Path, default=REPO / "build")
    ap.add_argument(
        "--quick", action="store_true", help="small N, 64 MiB file"
    )
    ap.add_argument("--repeats", type=int, help="rounds (default 5, quick 2)")
    ap.add_argument("--only", default=",".join(GROUPS))
    ap.add_argument(
        "--benches",
        default="",
        help="some of procs,exec,read (default all)",
    )
    ap.add_argument("--no-build", action="store_true")
    ap.add_argument(
        "--json",
        type=Path,
        help="also write the rows, settings and machine to this file",
    )
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args()
    groups = [g for g in args.only.split(",") if g]
    if set(groups) - set(GROUPS):
        ap.error(f"--only takes some of {','.join(GROUPS)}")
    benches = [b for b, _, _ in BENCHES]
    if args.benches:
        want = args.benches.split(",")
        benches = [b for b in benches if b.split()[0] in want]
    repeats = args.repeats or (2 if args.quick else 5)
    build_dir = args.build_dir.resolve()
    if not args.no_build:
        build(build_dir, groups)
    print(
        f"cpu: {cpu_model()}, {os.cpu_count()} cpus; python "
        f"{sys.version.split()[0]}; {repeats} rounds",
        flush=True,
    )
    info = machine.describe(
        env=os.environ.copy(),
        cargo=run_rust.cargo() if "rust" in groups else None,
    )
    values, errors = measure(
        build_dir,
        groups,
        args.quick,
        repeats,
        benches,
        progress=lambda s: print(f"  ... {s}", file=sys.stderr),
        verbose=args.verbose,
    )
    table = rows(values)
    report(table)
    if args.json:
        result = {
            "command": "python3 bench/run_os.py " + " ".join(sys.argv[1:]),
            "machine": info,
            "settings": {
                "mode": "quick" if args.quick else "full",
                "repeats": repeats,
                "n": N,
                "file_bytes": FILE_SIZE["quick" if args.quick else "full"],
                "chunk_bytes": CHUNK,
            },
            "rows": table,
            "errors": errors,
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=1) + "\n")
        print(f"wrote {args.json}")
    if errors:
        print(f"run_os.py: {len(errors)} run(s) failed", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
