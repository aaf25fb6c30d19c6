#!/usr/bin/env python3
"""The Rust crate against tokio's current-thread runtime, in one run.

    python3 bench/run_rust.py [--build-dir build/bench] [--quick]
                              [--repeats 3] [--seconds 3] [--only echo,tasks]
                              [--control] [--libuv-poller]
                              [--cpus 0,1] [--no-pin] [-v]

echo: the echo server on uvasync (rust/uvasync/examples/bench_echo_uvasync.rs)
and on tokio (bench_echo_tokio.rs), both driven by the C load client
bench_echo_load (from the CMake build, --build-dir), interleaved A B A B,
with run_echo.py's protocol and pinning (server and client on separate CPUs).
tasks: bench_yield.rs, 1M task switches (1000 tasks yielding); bench_tasks.rs,
spawn-and-join of 1M tasks and 100k sleeping tasks (CPU per task and memory
per sleeping task), interleaved the same way.

Two more echo servers join the same rounds on request: --control runs
tokio's server a second time, so its ratio to the first shows how far two
runs of one server differ here (the resolution of the other ratios);
--libuv-poller runs the uvasync server with UVA_POLLER=libuv, that is with
libuv's level-triggered poll phase instead of the loop's edge-triggered
epoll set (src/loop.cpp).

The Rust programs are built here (cargo build --release --examples, -j2).
Prints medians and ratios uvasync / tokio, then the issue's targets.
"""

import argparse
import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run_echo as run_echo_mod  # noqa: E402
from benchlib import cpu_model, fmt, median, paired_ratio, ratio  # noqa: E402
from run_echo import choose_cpus, find_bin  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
RUST = REPO / "rust"
EXAMPLES = RUST / "target" / "release" / "examples"

ECHO_WORKLOADS = [
    ("10x1k", 10, 1024),
    ("10x10k", 10, 10 * 1024),
    ("10x100k", 10, 100 * 1024),
    ("100x1k", 100, 1024),
]
# (name, N full, N quick); yield is bench_yield.rs, the others bench_tasks.rs
TASK_BENCHES = [
    ("yield", 1_000_000, 100_000),
    ("spawn", 1_000_000, 100_000),
    ("sleep", 100_000, 20_000),
]

# Targets from the issue (uvasync / tokio).
TARGET_RPS = 1.0  # echo throughput at least tokio's
TARGET_USER = 1.0  # server user CPU per round trip at most tokio's
TARGET_SPAWN = 1.5  # spawn-and-join within 1.5x of tokio
TARGET_MEM = 1.0  # bytes per sleeping task below tokio's


def cargo() -> str:
    for c in (
        os.environ.get("CARGO"),
        "cargo",
        str(Path.home() / ".cargo/bin/cargo"),
        "/root/.cargo/bin/cargo",
    ):
        if c and (os.path.sep not in c or Path(c).is_file()):
            try:
                subprocess.run(
                    [c, "--version"], capture_output=True, check=True
                )
                return c
            except (OSError, subprocess.CalledProcessError):
                continue
    sys.exit("run_rust.py: cargo not found")


def build():
    subprocess.run(
        [
            cargo(),
            "build",
            "--release",
            "--examples",
            "-j2",
            "-q",
            "-p",
            "uvasync",
        ],
        cwd=RUST,
        check=True,
    )


def parse_kv(line):
    return dict(kv.split("=", 1) for kv in line.split() if "=" in kv)


def echo_servers():
    """(name, program) of the two Rust echo servers, for run_echo.run_one."""
    return [
        ("uvasync", EXAMPLES / "bench_echo_uvasync"),
        ("tokio", EXAMPLES / "bench_echo_tokio"),
    ]


def extra_servers(args):
    """(name, command) of the servers --control and --libuv-poller add."""
    extra = []
    if args.control:
        extra.append(("tokio-again", EXAMPLES / "bench_echo_tokio"))
    if args.libuv_poller:
        extra.append(
            (
                "uvasync-lt",
                [
                    "env",
                    "UVA_POLLER=libuv",
                    str(EXAMPLES / "bench_echo_uvasync"),
                ],
            )
        )
    return extra


def run_echo(args, cpus, load):
    extra = extra_servers(args)
    runs_by_label, errors = run_echo_mod.measure(
        echo_servers() + extra,
        load,
        ECHO_WORKLOADS,
        args.repeats,
        args.seconds,
        cpus,
        args.host,
        verbose=args.verbose,
    )
    rows = []
    for label, _, _ in ECHO_WORKLOADS:
        runs = runs_by_label[label]
        row = {"label": label}
        for name in runs:
            for key in ("rps", "user_us", "sys_us", "client_us"):
                row[f"{name}_{key}"] = median(runs[name], key)
        row["rps_ratio"] = ratio(row["uvasync_rps"], row["tokio_rps"])
        row["rps_paired"] = paired_ratio(runs["uvasync"], runs["tokio"], "rps")
        row["user_ratio"] = ratio(row["uvasync_user_us"], row["tokio_user_us"])
        rows.append(row)
    head = (
        "workload",
        "req/s uva",
        "req/s tokio",
        "ratio",
        "paired",
        "user us/rt uva",
        "tokio",
        "ratio",
        "sys us/rt uva",
        "tokio",
        "client us/rt uva",
        "tokio",
    )
    widths = (9, 10, 11, 6, 6, 15, 6, 6, 14, 6, 17, 6)
    print(
        "echo (medians; ratio = uvasync / tokio; paired = median of that ratio within"
    )
    print(
        "      each round; us/rt = server CPU per round trip; client = the load"
    )
    print("      client's CPU, user + system, per round trip)")
    print("  ".join(h.rjust(w) for h, w in zip(head, widths)))
    for r in rows:
        cells = (
            r["label"],
            fmt(r["uvasync_rps"], 0),
            fmt(r["tokio_rps"], 0),
            fmt(r["rps_ratio"], 2),
            fmt(r["rps_paired"], 3),
            fmt(r["uvasync_user_us"], 2),
            fmt(r["tokio_user_us"], 2),
            fmt(r["user_ratio"], 2),
            fmt(r["uvasync_sys_us"], 2),
            fmt(r["tokio_sys_us"], 2),
            fmt(r["uvasync_client_us"], 2),
            fmt(r["tokio_client_us"], 2),
        )
        print("  ".join(c.rjust(w) for c, w in zip(cells, widths)))
    print()
    if extra:
        print("also in these rounds (medians; ratio = server / tokio)")
        for label, _, _ in ECHO_WORKLOADS:
            runs = runs_by_label[label]
            for name, _ in extra:
                rps, user = (
                    median(runs[name], "rps"),
                    median(runs[name], "user_us"),
                )
                print(
                    f"  {label:>9}  {name:<12} req/s {fmt(rps, 0):>8}  ratio "
                    f"{fmt(ratio(rps, median(runs['tokio'], 'rps')), 3):>5}  paired "
                    f"{fmt(paired_ratio(runs[name], runs['tokio'], 'rps'), 3):>5}  "
                    f"user us/rt {fmt(user, 2):>5}  sys us/rt "
                    f"{fmt(median(runs[name], 'sys_us'), 2):>5}  client us/rt "
                    f"{fmt(median(runs[name], 'client_us'), 2):>5}"
                )
        print()
    return rows, errors


def run_task_program(argv, timeout=300):
    """One run of bench_tasks / bench_yield: its key=value line as floats, or
    {"error": ...}."""
    try:
        out = subprocess.run(
            [str(a) for a in argv],
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        return {"error": f"timeout: {' '.join(map(str, argv))}"}
    line = out.stdout.strip().splitlines()[-1] if out.stdout.strip() else ""
    if out.returncode != 0 or "ns_per_op" not in line:
        return {"error": f"exit {out.returncode}: {out.stderr.strip()[:300]}"}
    kv = parse_kv(line)
    res = {
        k: float(kv[k])
        for k in ("ns_per_op", "cpu_ns_per_op", "bytes_per_task")
        if k in kv
    }
    res["line"] = line
    return res


def measure_tasks(quick=False, repeats=3, progress=None, verbose=False):
    """TASK_BENCHES, uvasync and tokio interleaved. Returns
    ({name: (N, {"uvasync": [runs], "tokio": [runs]})}, [error strings])."""
    results, errors = {}, []
    for name, n_full, n_quick in TASK_BENCHES:
        n = n_quick if quick else n_full
        runs = {"uvasync": [], "tokio": []}
        for rep in range(repeats):
            for impl in ("uvasync", "tokio"):
                if progress:
                    progress(f"rust {name} {impl} #{rep + 1}")
                prog = "bench_yield" if name == "yield" else "bench_tasks"
                argv = (
                    [EXAMPLES / prog, impl]
                    + ([] if name == "yield" else [name])
                    + [n]
                )
                r = run_task_program(argv)
                if "error" in r:
                    errors.append(f"rust {name} {impl}: {r['error']}")
                    print(
                        f"  {name} {impl}: FAILED {r['error']}",
                        file=sys.stderr,
                    )
                    continue
                runs[impl].append(r)
                if verbose:
                    print(f"  {r['line']}")
        results[name] = (n, runs)
    return results, errors


def run_tasks(args):
    measured, errors = measure_tasks(
        args.quick, args.repeats, verbose=args.verbose
    )
    rows = []
    for name, (n, runs) in measured.items():
        row = {"label": f"{name} {n}"}
        for impl in runs:
            for key in ("ns_per_op", "cpu_ns_per_op", "bytes_per_task"):
                row[f"{impl}_{key}"] = median(runs[impl], key)
        row["cpu_ratio"] = ratio(
            row["uvasync_cpu_ns_per_op"], row["tokio_cpu_ns_per_op"]
        )
        row["mem_ratio"] = ratio(
            row["uvasync_bytes_per_task"], row["tokio_bytes_per_task"]
        )
        rows.append(row)
    head = (
        "benchmark",
        "wall ns uva",
        "tokio",
        "cpu ns uva",
        "tokio",
        "ratio",
        "B/task uva",
        "tokio",
        "ratio",
    )
    widths = (13, 11, 7, 10, 7, 6, 10, 7, 6)
    print("tasks (medians; ns per task; ratio = uvasync / tokio)")
    print("  ".join(h.rjust(w) for h, w in zip(head, widths)))
    for r in rows:
        cells = (
            r["label"],
            fmt(r["uvasync_ns_per_op"]),
            fmt(r["tokio_ns_per_op"]),
            fmt(r["uvasync_cpu_ns_per_op"]),
            fmt(r["tokio_cpu_ns_per_op"]),
            fmt(r["cpu_ratio"], 2),
            fmt(r["uvasync_bytes_per_task"], 0),
            fmt(r["tokio_bytes_per_task"], 0),
            fmt(r["mem_ratio"], 2),
        )
        print("  ".join(c.rjust(w) for c, w in zip(cells, widths)))
    print()
    return rows, errors


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--build-dir",
        type=Path,
        default=REPO / "build" / "bench",
        help="directory with bench_echo_load (CMake build)",
    )
    ap.add_argument(
        "--quick", action="store_true", help="1 s runs, small N, 1 repeat"
    )
    ap.add_argument("--repeats", type=int, default=None)
    ap.add_argument("--seconds", type=float, default=None)
    ap.add_argument("--only", default="echo,tasks")
    ap.add_argument("--cpus", default="")
    ap.add_argument("--no-pin", action="store_true")
    ap.add_argument(
        "--control",
        action="store_true",
        help="echo: tokio's server twice (the ratios' resolution)",
    )
    ap.add_argument(
        "--libuv-poller",
        action="store_true",
        help="echo: also uvasync with UVA_POLLER=libuv (level-triggered)",
    )
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args()
    args.repeats = args.repeats or (1 if args.quick else 3)
    args.seconds = args.seconds or (1.0 if args.quick else 3.0)
    parts = {p.strip() for p in args.only.split(",")}

    build()
    cpus, pin_note = choose_cpus(args.cpus, args.no_pin)
    print(
        f"uvasync (Rust) vs tokio current-thread; cpu: {cpu_model()}, "
        f"{os.cpu_count()} cpus; pinning: {pin_note}; {args.repeats} repeat(s)"
    )
    print()
    echo, echo_errors = (
        run_echo(args, cpus, find_bin(args.build_dir, "bench_echo_load"))
        if "echo" in parts
        else ([], [])
    )
    tasks, task_errors = run_tasks(args) if "tasks" in parts else ([], [])

    print("targets (issue):")
    checks = []
    for r in echo:
        checks.append(
            (f"{r['label']} echo req/s", r["rps_ratio"], ">=", TARGET_RPS)
        )
        checks.append(
            (
                f"{r['label']} server user CPU/rt",
                r["user_ratio"],
                "<=",
                TARGET_USER,
            )
        )
    for r in tasks:
        if r["label"].startswith("spawn"):
            checks.append(
                ("spawn-and-join CPU/task", r["cpu_ratio"], "<=", TARGET_SPAWN)
            )
        if r["label"].startswith("sleep"):
            checks.append(
                ("bytes per sleeping task", r["mem_ratio"], "<", TARGET_MEM)
            )
    for what, v, op, target in checks:
        ok = (
            v is not None
            and {"<=": v <= target, ">=": v >= target, "<": v < target}[op]
        )
        print(
            f"  {what:<30} uvasync/tokio = {fmt(v, 2):>5} (target {op} {target}): "
            f"{'PASS' if ok else 'MISS'}"
        )
    if echo:
        print(
            "  (user CPU here is getrusage's, sampled once per scheduler tick: "
            "+-15% a run at 1 KiB;\n   python3 bench/tools/cpu_split.py --set rust "
            "samples it with perf)"
        )
    errors = echo_errors + task_errors
    if errors:  # each was printed when it happened
        print(f"run_rust.py: {len(errors)} run(s) failed", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
