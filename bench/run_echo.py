#!/usr/bin/env python3
"""Run the TCP echo benchmark: the uvasync echo server (bench_echo_server)
against the raw libuv one (bench_raw_echo_server), both driven by the same
load client (bench_echo_load), interleaved in one run, and print medians.

    python3 bench/run_echo.py [--build-dir build/bench] [--quick]
                              [--repeats 3] [--seconds 3] [--only 10x1k,100x1k]
                              [--fresh] [--read-server]
                              [--cpus 0,1] [--no-pin] [-v]

--build-dir is the directory holding the three programs (the CMake build
puts them in <build>/bench); the top of a build tree works too.

For each workload (connections x message size) the servers run as
A B A B ... (uvasync, raw libuv, ...), each run in a fresh server process
with a fresh client process. With taskset available and at least two CPUs,
the server is pinned to the first CPU of --cpus and the client to the
second, so the two never compete for one core and the server's CPU time is
its own. Python 3 standard library only.

--fresh adds the workload 10x100k-fresh: the pattern of a client that opens
its connections just before a short run (0.3 s uncounted warm-up, then 1 s
measured, whatever --seconds says), in which the connections are young for
much of what is measured. --read-server adds a third server,
bench_echo_read_server: the same uvasync server echoing with a plain
uva_stream_read instead of bench_echo_server's zero copy (uva_stream_peek
-> write -> consume), which must not be the faster of the two.
"""

import argparse
import os
import resource
import shutil
import signal
import subprocess
import sys
from pathlib import Path

from benchlib import cpu_model, fmt, median, paired_ratio, ratio

REPO = Path(__file__).resolve().parent.parent
DEFAULT_BUILD_DIR = REPO / "build" / "bench"
UVA_BIN = "bench_echo_server"
RAW_BIN = "bench_raw_echo_server"
READ_BIN = "bench_echo_read_server"
LOAD_BIN = "bench_echo_load"

# (label, connections, message bytes)
WORKLOADS = [
    ("10x1k", 10, 1024),
    ("10x10k", 10, 10 * 1024),
    ("10x100k", 10, 100 * 1024),
    ("100x1k", 100, 1024),
]
# Fresh connections: (label, connections, message bytes, seconds measured,
# seconds of warm-up before them). The connections are opened just before
# the run and are young for much of it (bench_echo_load's WARMUP).
FRESH_WORKLOADS = [
    ("10x100k-fresh", 10, 100 * 1024, 1.0, 0.3),
]

# Targets from the issue (uvasync / raw libuv).
TARGET_RPS_RATIO = 0.95  # requests/s at least 0.95x raw
TARGET_USER_CPU_RATIO = 1.2  # server user CPU per round trip at most 1.2x raw
# Zero copy / read echo, requests/s paired within rounds: the zero-copy echo
# must not be the slower one (a margin for this shared machine's noise).
TARGET_ZEROCOPY_RATIO = 0.95


def find_bin(build_dir: Path, name: str) -> Path:
    for cand in (build_dir / name, build_dir / "bench" / name):
        if cand.is_file() and os.access(cand, os.X_OK):
            return cand
    sys.exit(
        f"run_echo.py: {name} not found in {build_dir} (or its bench/); "
        f"build first: cmake -S . -B build -DCMAKE_BUILD_TYPE=Release "
        f"&& cmake --build build -j2"
    )


def parse_kv(line: str) -> dict:
    return dict(kv.split("=", 1) for kv in line.split() if "=" in kv)


def pin_prefix(cpu):
    return [] if cpu is None else ["taskset", "-c", str(cpu)]


def run_one(
    server,
    load: Path,
    conns: int,
    size: int,
    seconds: float,
    cpus,
    host: str,
    layout: int = 0,
    sampler=None,
    warmup: float = 0,
) -> dict:
    """One server process + one client run; returns the measurements.
    `server` is a program, or a command (list) to which host and port 0 are
    appended; it prints its port, serves until SIGTERM, then prints
    user_s=... sys_s=... (its getrusage). `layout` pads the server's
    environment with that many bytes (UVA_BENCH_LAYOUT), which moves where
    its heap puts things (see measure); the client's stays as it is.
    `sampler(pid)`, when given, starts watching the server once it listens
    and returns a function that stops it after the client, returning
    {"<name>_s": CPU seconds}: each becomes "<name>_us" per round trip in
    the result (cpu_split.py's perf sampling). The client's CPU time per
    round trip is in the result too (client_us, user and system): with both
    CPUs busy, what a server makes its client spend limits the throughput
    as much as its own CPU does. With `warmup` the client runs that long
    uncounted first (bench_echo_load's WARMUP): rps counts the measured
    seconds, and the CPU figures per round trip divide the whole run's CPU
    by all its round trips, warm-up included."""
    argv = list(server) if isinstance(server, (list, tuple)) else [str(server)]
    server = Path(argv[-1])  # for messages
    srv_cmd = pin_prefix(cpus[0]) + argv + [host, "0"]
    env = dict(os.environ, UVA_BENCH_LAYOUT="x" * layout)
    srv = subprocess.Popen(
        srv_cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        first = srv.stdout.readline().strip()
        if not first.isdigit():
            srv.kill()
            _, err = srv.communicate(timeout=10)
            return {
                "error": f"{server.name} did not print its port: "
                f"{first!r} {err.strip()[:300]}"
            }
        port = first
        stop_sampler = sampler(srv.pid) if sampler else None
        cli_cmd = pin_prefix(cpus[1]) + [
            str(load),
            host,
            port,
            str(conns),
            str(size),
            str(seconds),
        ]
        if warmup > 0:
            cli_cmd.append(str(warmup))
        try:
            # The client is the only child reaped in between (taskset execs
            # it; the server and a sampler are reaped later).
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            cli = subprocess.run(
                cli_cmd,
                capture_output=True,
                text=True,
                timeout=seconds + warmup + 60,
            )
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
        except subprocess.TimeoutExpired:
            return {"error": f"client timed out: {' '.join(cli_cmd)}"}
        finally:
            sampled = stop_sampler() if stop_sampler else {}
    finally:
        if srv.poll() is None:
            srv.send_signal(signal.SIGTERM)
        try:
            rest, err = srv.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            srv.kill()
            rest, err = srv.communicate()
    line = cli.stdout.strip().splitlines()[-1] if cli.stdout.strip() else ""
    res = parse_kv(line)
    if (
        cli.returncode != 0
        or res.get("errors") != "0"
        or "requests" not in res
    ):
        return {
            "error": f"client exit {cli.returncode}: {line} "
            f"{cli.stderr.strip()[:300]}",
            "line": line,
        }
    cpu = {}
    for row in rest.splitlines():
        cpu.update(parse_kv(row))
    if srv.returncode != 0 or "user_s" not in cpu:
        return {
            "error": f"{server.name} exit {srv.returncode}, no CPU line: "
            f"{rest.strip()[:200]} {err.strip()[:200]}"
        }
    if int(res["requests"]) == 0:
        return {"error": "no request completed", "line": line}
    # Per round trip: over all the run's round trips when it had a warm-up.
    requests = int(res.get("all_requests", res["requests"]))
    user_s, sys_s = float(cpu["user_s"]), float(cpu["sys_s"])
    result = {
        "line": f"{line} server_user_s={user_s:.3f} server_sys_s={sys_s:.3f}",
        "rps": float(res["rps"]),
        "mib_s": float(res["mib_s"]),
        "user_us": user_s * 1e6 / requests,
        "sys_us": sys_s * 1e6 / requests,
        "client_us": (
            after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
        )
        * 1e6
        / requests,
    }
    for key, secs in sampled.items():
        result[key[:-2] + "_us"] = secs * 1e6 / requests
    return result


def measure(
    servers,
    load: Path,
    workloads,
    repeats: int,
    seconds: float,
    cpus,
    host: str = "127.0.0.1",
    progress=None,
    verbose=False,
    sampler=None,
):
    """Every server on every workload, interleaved: for each workload,
    `repeats` rounds in which each server runs once, in order (A B C A B C).
    `servers` is a list of (name, program or command list) for run_one;
    `workloads` a list of (label, connections, message bytes), or of
    (label, connections, message bytes, seconds, warm-up seconds) for a
    run of its own length with a warm-up (FRESH_WORKLOADS).
    Returns ({label: {name: [run_one results]}}, [error strings]); failed
    runs are left out of the lists and reported in the errors, and each
    result says its round ("round", from 0). `sampler`
    goes to every run_one.

    Each round runs every server with its own environment padding (run_one's
    `layout`), so the medians are taken over several heap layouts and not
    one: the kernel's copies into and out of a server's buffers can cost
    several times more at some addresses than at others (bench/README.md,
    "Reading the 100 KiB echo figures"), and one fixed layout made a Python
    server's 100 KiB figure a draw."""
    results, errors = {}, []
    for label, conns, size, *timing in workloads:
        run_seconds, warmup = timing if timing else (seconds, 0)
        runs = {name: [] for name, _ in servers}
        for rep in range(repeats):
            for name, server in servers:
                if progress:
                    progress(f"echo {label} {name} #{rep + 1}")
                r = run_one(
                    server,
                    load,
                    conns,
                    size,
                    run_seconds,
                    cpus,
                    host,
                    layout=7 * rep,
                    sampler=sampler,
                    warmup=warmup,
                )
                r["round"] = rep
                if "error" in r:
                    errors.append(
                        f"echo {label} {name} #{rep + 1}: {r['error']}"
                    )
                    print(
                        f"  {label} {name} #{rep + 1}: FAILED {r['error']}",
                        file=sys.stderr,
                    )
                    continue
                runs[name].append(r)
                if verbose:
                    print(f"  {label} {name} #{rep + 1}: {r['line']}")
        results[label] = runs
    return results, errors


def select_workloads(only: str, prog: str, fresh: bool = False):
    """The WORKLOADS named in `only` (comma-separated labels), all when it
    is empty, and FRESH_WORKLOADS with `fresh` (or when `only` names one);
    exits with a message naming `prog` on an unknown label."""
    every = WORKLOADS + FRESH_WORKLOADS
    if not only:
        return WORKLOADS + (FRESH_WORKLOADS if fresh else [])
    wanted = {w.strip() for w in only.split(",") if w.strip()}
    unknown = wanted - {w[0] for w in every}
    if unknown:
        sys.exit(f"{prog}: unknown workload(s) {sorted(unknown)}")
    return [
        w for w in every if w[0] in wanted or (fresh and w in FRESH_WORKLOADS)
    ]


def choose_cpus(arg: str, no_pin: bool):
    """(server_cpu, client_cpu), or (None, None) without pinning."""
    if no_pin:
        return (None, None), "off (--no-pin)"
    if shutil.which("taskset") is None:
        return (None, None), "off (no taskset)"
    try:
        allowed = sorted(os.sched_getaffinity(0))
    except AttributeError:
        allowed = list(range(os.cpu_count() or 1))
    if arg:
        want = [int(c) for c in arg.split(",")]
        if len(want) != 2 or any(c not in allowed for c in want):
            sys.exit(f"run_echo.py: --cpus needs two CPUs out of {allowed}")
    elif len(allowed) >= 2:
        want = allowed[:2]
    else:
        return (None, None), "off (fewer than 2 CPUs)"
    return (
        want[0],
        want[1],
    ), f"server on CPU {want[0]}, client on CPU {want[1]}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--build-dir",
        type=Path,
        default=DEFAULT_BUILD_DIR,
        help=f"directory with {UVA_BIN}, {RAW_BIN} and {LOAD_BIN} "
        f"(default: {DEFAULT_BUILD_DIR})",
    )
    ap.add_argument(
        "--quick", action="store_true", help="1 s runs, 1 repeat (a smoke run)"
    )
    ap.add_argument(
        "--repeats",
        type=int,
        default=None,
        help="interleaved repeats per workload (default 3, quick 1)",
    )
    ap.add_argument(
        "--seconds",
        type=float,
        default=None,
        help="seconds per run (default 3, quick 1)",
    )
    ap.add_argument(
        "--only",
        default="",
        help="comma-separated workloads: "
        + ",".join(w[0] for w in WORKLOADS + FRESH_WORKLOADS),
    )
    ap.add_argument(
        "--fresh",
        action="store_true",
        help="add the fresh-connections workload(s): "
        + ",".join(w[0] for w in FRESH_WORKLOADS)
        + " (0.3 s warm-up, 1 s measured)",
    )
    ap.add_argument(
        "--read-server",
        action="store_true",
        help=f"run {READ_BIN} (a uva_stream_read echo) too, "
        f"against which the zero-copy server is compared",
    )
    ap.add_argument(
        "--cpus",
        default="",
        help="server,client CPUs for taskset (default: the first "
        "two allowed CPUs)",
    )
    ap.add_argument("--no-pin", action="store_true", help="do not use taskset")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="print every raw result line",
    )
    args = ap.parse_args()

    uva = find_bin(args.build_dir, UVA_BIN)
    raw = find_bin(args.build_dir, RAW_BIN)
    load = find_bin(args.build_dir, LOAD_BIN)
    read = find_bin(args.build_dir, READ_BIN) if args.read_server else None
    plan = select_workloads(args.only, "run_echo.py", args.fresh)
    repeats = args.repeats or (1 if args.quick else 3)
    seconds = args.seconds or (1.0 if args.quick else 3.0)
    cpus, pin_note = choose_cpus(args.cpus, args.no_pin)

    print(
        f"uvasync echo benchmark: {uva.name} vs {raw.name}, "
        f"client {load.name}, in {uva.parent}"
    )
    print(
        f"cpu: {cpu_model()}, {os.cpu_count()} cpus; pinning: {pin_note}; "
        f"{repeats} repeat(s) x {seconds:g} s per server and workload"
        + (
            " (fresh: their own warm-up and length)"
            if any(w in FRESH_WORKLOADS for w in plan)
            else ""
        )
    )
    print()

    servers = [("uvasync", uva), ("raw", raw)]
    if read is not None:
        servers.append(("read", read))
    runs_by_label, errors = measure(
        servers,
        load,
        plan,
        repeats,
        seconds,
        cpus,
        args.host,
        verbose=args.verbose,
        progress=lambda s: print(f"  {s}", file=sys.stderr),
    )
    failed = bool(errors)
    results = []
    for label, *_ in plan:
        runs = runs_by_label[label]
        row = {"label": label}
        for name, _ in servers:
            for key in ("rps", "mib_s", "user_us", "sys_us"):
                row[f"{name}_{key}"] = median(runs[name], key)
        row["rps_ratio"] = ratio(row["uvasync_rps"], row["raw_rps"])
        row["user_ratio"] = ratio(row["uvasync_user_us"], row["raw_user_us"])
        row["sys_ratio"] = ratio(row["uvasync_sys_us"], row["raw_sys_us"])
        row["n"] = (len(runs["uvasync"]), len(runs["raw"]))
        if read is not None:
            row["zc_paired"] = paired_ratio(
                runs["uvasync"], runs["read"], "rps"
            )
            row["zc_sys_paired"] = paired_ratio(
                runs["uvasync"], runs["read"], "sys_us"
            )
        results.append(row)

    if args.verbose:
        print()
    head = (
        "workload",
        "req/s uva",
        "req/s raw",
        "ratio",
        "MiB/s uva",
        "MiB/s raw",
        "user us/rt uva",
        "raw",
        "ratio",
        "sys us/rt uva",
        "raw",
        "ratio",
    )
    widths = (13, 10, 10, 6, 10, 10, 15, 6, 6, 14, 6, 6)
    print("  ".join(h.rjust(w) for h, w in zip(head, widths)))
    for row in results:
        cells = (
            row["label"],
            fmt(row["uvasync_rps"], 0),
            fmt(row["raw_rps"], 0),
            fmt(row["rps_ratio"], 2),
            fmt(row["uvasync_mib_s"], 1),
            fmt(row["raw_mib_s"], 1),
            fmt(row["uvasync_user_us"], 2),
            fmt(row["raw_user_us"], 2),
            fmt(row["user_ratio"], 2),
            fmt(row["uvasync_sys_us"], 2),
            fmt(row["raw_sys_us"], 2),
            fmt(row["sys_ratio"], 2),
        )
        print("  ".join(c.rjust(w) for c, w in zip(cells, widths)))
    print()
    print(
        "medians; ratio = uvasync / raw libuv; us/rt = server CPU "
        "microseconds per round trip (getrusage / requests)"
    )
    if read is not None:
        print()
        print(
            f"zero copy ({uva.name}: peek -> write -> consume) against a "
            f"copying read ({read.name}: uva_stream_read -> write)"
        )
        head = (
            "workload",
            "req/s zc",
            "req/s read",
            "paired",
            "user us/rt zc",
            "read",
            "sys us/rt zc",
            "read",
            "paired",
        )
        widths = (13, 10, 10, 7, 13, 6, 12, 6, 7)
        print("  ".join(h.rjust(w) for h, w in zip(head, widths)))
        for row in results:
            cells = (
                row["label"],
                fmt(row["uvasync_rps"], 0),
                fmt(row["read_rps"], 0),
                fmt(row["zc_paired"], 3),
                fmt(row["uvasync_user_us"], 2),
                fmt(row["read_user_us"], 2),
                fmt(row["uvasync_sys_us"], 2),
                fmt(row["read_sys_us"], 2),
                fmt(row["zc_sys_paired"], 3),
            )
            print("  ".join(c.rjust(w) for c, w in zip(cells, widths)))
        print(
            "paired = median over the rounds of zero copy / read in each round"
        )

    print()
    print("targets (issue):")
    all_pass = True
    for row in results:
        for key, target, op, what in (
            ("rps_ratio", TARGET_RPS_RATIO, ">=", "requests/s"),
            ("user_ratio", TARGET_USER_CPU_RATIO, "<=", "server user CPU/rt"),
        ):
            v = row[key]
            ok = v is not None and (v >= target if op == ">=" else v <= target)
            all_pass &= ok
            print(
                f"  {row['label']:>13} {what:<19} uvasync/raw = {fmt(v, 2):>5} "
                f"(target {op} {target}): {'PASS' if ok else 'MISS'}"
            )
        if read is not None:
            v = row["zc_paired"]
            ok = v is not None and v >= TARGET_ZEROCOPY_RATIO
            all_pass &= ok
            print(
                f"  {row['label']:>13} {'requests/s':<19} zerocopy/read = "
                f"{fmt(v, 2):>5} (target >= {TARGET_ZEROCOPY_RATIO}): "
                f"{'PASS' if ok else 'MISS'}"
            )
    if failed:
        print("some runs FAILED (see above); their medians exclude them")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
