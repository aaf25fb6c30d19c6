#!/usr/bin/env python3
"""An echo server's CPU per round trip, split into user and kernel time by
sampling (perf record), for the servers the echo benchmarks compare.

    python3 bench/tools/cpu_split.py [--set rust|c|python] [--only 10x1k,10x10k]
                                     [--repeats 3] [--seconds 3] [--freq 10000]
                                     [--symbols N]
                                     [--build-dir build/bench] [--cpus 0,1] [-v]

Why: the echo drivers (run_echo.py, run_rust.py, run_python.py) take a
server's user and system time from its getrusage. The sum is exact, but on a
kernel with tick-based CPU accounting (CONFIG_TICK_CPU_ACCOUNTING, the
common build) the split between the two is itself a sample, one per
scheduler tick: at 250 Hz a 3 s run of a 1 KiB echo, whose server spends ~6%
of its time in user space, has ~45 user ticks, so one run's user figure is
good to about +-15%, and a 10% difference between two servers is noise.
perf's cpu-clock sampling at --freq gives ~40 times as many samples.

The servers run as in the echo drivers (same load client, pinning and
interleaving, run_echo.measure), with `perf record -e cpu-clock -F FREQ -p
PID` attached while the client runs. The sampling costs each server a few
percent of its throughput, so the req/s printed here are for reference only;
the drivers measure throughput without it.

--symbols N also prints, per workload, the N kernel functions whose time
per round trip differs most between each server and the first: where a
difference in kernel time comes from (user-space symbols differ by name
between servers, so they are left out).

Sets: rust = uvasync's Rust echo server and tokio's (as run_rust.py; the
examples are built first); c = bench_echo_server and bench_raw_echo_server
(as run_echo.py); c-read = bench_echo_server (zero copy) and
bench_echo_read_server (uva_stream_read), as run_echo.py --read-server;
python = the servers of run_python.py.
Needs perf (Debian: linux-perf) and permission to record another process.
"""

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

# The bench drivers it reuses are one folder up.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import run_echo  # noqa: E402
from benchlib import cpu_model, fmt, median, ratio  # noqa: E402

WORKLOADS = run_echo.WORKLOADS


SYM = "sym:"  # prefix of the per-symbol keys (--symbols)


def perf_sampler(freq: int, workdir: Path, symbols: bool = False):
    """A run_echo.run_one sampler: perf record on the server's pid; the stop
    function returns {"perf_user_s": .., "perf_kernel_s": ..}, and with
    `symbols` the seconds of every sampled symbol, {"sym:[k] tcp_poll_s":
    ..} (perf's "[k]" marks kernel symbols, "[.]" user ones)."""
    count = [0]

    def start(pid):
        count[0] += 1
        out = workdir / f"perf{count[0]}.data"
        rec = subprocess.Popen(
            [
                "perf",
                "record",
                "-q",
                "-e",
                "cpu-clock",
                "-F",
                str(freq),
                "-p",
                str(pid),
                "-o",
                str(out),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )

        def stop():
            rec.send_signal(signal.SIGINT)
            try:
                _, err = rec.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                rec.kill()
                return {}
            rep = subprocess.run(
                [
                    "perf",
                    "report",
                    "-i",
                    str(out),
                    "--sort",
                    "dso",
                    "-q",
                    "-F",
                    "sample,dso",
                    "--stdio",
                ],
                capture_output=True,
                text=True,
            )
            by_sym = {}
            if symbols:
                syms = subprocess.run(
                    [
                        "perf",
                        "report",
                        "-i",
                        str(out),
                        "--sort",
                        "sym",
                        "-q",
                        "-F",
                        "sample,sym",
                        "--stdio",
                    ],
                    capture_output=True,
                    text=True,
                )
                for line in syms.stdout.splitlines():
                    parts = line.split(None, 1)
                    if len(parts) == 2 and parts[0].isdigit():
                        key = f"{SYM}{parts[1].strip()}_s"
                        by_sym[key] = by_sym.get(key, 0) + int(parts[0]) / freq
            out.unlink(missing_ok=True)
            user = kernel = 0
            for line in rep.stdout.splitlines():
                parts = line.split()
                if len(parts) < 2 or not parts[0].isdigit():
                    continue
                if (
                    parts[1].startswith("[kernel")
                    or parts[1] == "[guest.kernel]"
                ):
                    kernel += int(parts[0])
                else:
                    user += int(parts[0])
            if user + kernel == 0:
                print(
                    f"  perf recorded nothing: {err.strip()[:200]}",
                    file=sys.stderr,
                )
                return {}
            return {
                "perf_user_s": user / freq,
                "perf_kernel_s": kernel / freq,
                **by_sym,
            }

        return stop

    return start


def servers_for(which: str, build_dir: Path):
    if which == "rust":
        import run_rust

        run_rust.build()
        return run_rust.echo_servers()
    if which == "c":
        return [
            ("uvasync", run_echo.find_bin(build_dir, run_echo.UVA_BIN)),
            ("raw", run_echo.find_bin(build_dir, run_echo.RAW_BIN)),
        ]
    if which == "c-read":
        return [
            ("zerocopy", run_echo.find_bin(build_dir, run_echo.UVA_BIN)),
            ("read", run_echo.find_bin(build_dir, run_echo.READ_BIN)),
        ]
    import run_python

    return run_python.echo_servers()


def symbol_ns(runs):
    """Mean nanoseconds per round trip of every symbol over the runs (a
    symbol a run did not sample counts 0 there)."""
    total = {}
    ok = [r for r in runs if "perf_user_us" in r]
    for r in ok:
        for key, us in r.items():
            if key.startswith(SYM):
                name = key[len(SYM) : -3]
                total[name] = total.get(name, 0) + us * 1000
    return {name: ns / len(ok) for name, ns in total.items()}


def print_symbols(runs, plan, servers, n):
    """Per workload, the n kernel functions whose time per round trip
    differs most between each server and the first (means over the
    repeats)."""
    base = servers[0][0]
    for label, *_ in plan:
        base_ns = symbol_ns(runs[label][base])
        for name, _ in servers[1:]:
            other = symbol_ns(runs[label][name])
            names = [
                k for k in set(base_ns) | set(other) if k.startswith("[k] ")
            ]
            names.sort(key=lambda k: -abs(base_ns.get(k, 0) - other.get(k, 0)))
            print(
                f"\n{label}: kernel ns per round trip, {base} against "
                f"{name} (the {n} largest differences)"
            )
            for sym in names[:n]:
                a, b = base_ns.get(sym, 0), other.get(sym, 0)
                print(f"  {a:8.1f} {b:8.1f} {a - b:+8.1f}  {sym[4:]}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--set", default="rust", choices=("rust", "c", "c-read", "python")
    )
    ap.add_argument(
        "--only",
        default="",
        help="comma-separated workloads: "
        + ",".join(w[0] for w in WORKLOADS + run_echo.FRESH_WORKLOADS),
    )
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument(
        "--freq",
        type=int,
        default=10000,
        help="perf samples per second of server CPU time",
    )
    ap.add_argument(
        "--symbols",
        type=int,
        default=0,
        metavar="N",
        help="also print the N kernel functions whose time per "
        "round trip differs most from the first server's",
    )
    ap.add_argument(
        "--build-dir", type=Path, default=run_echo.DEFAULT_BUILD_DIR
    )
    ap.add_argument("--cpus", default="")
    ap.add_argument("--no-pin", action="store_true")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args()

    if shutil.which("perf") is None:
        sys.exit(
            "cpu_split.py: perf not found (Debian: apt-get install linux-perf)"
        )
    plan = run_echo.select_workloads(args.only, "cpu_split.py")
    load = run_echo.find_bin(args.build_dir, run_echo.LOAD_BIN)
    servers = servers_for(args.set, args.build_dir)
    cpus, pin_note = run_echo.choose_cpus(args.cpus, args.no_pin)
    print(
        f"cpu: {cpu_model()}, {os.cpu_count()} cpus; pinning: {pin_note}; "
        f"{args.repeats} repeat(s) x {args.seconds:g} s; perf at {args.freq} Hz"
    )

    with tempfile.TemporaryDirectory(prefix="uva-cpu-split-") as tmp:
        runs, errors = run_echo.measure(
            servers,
            load,
            plan,
            args.repeats,
            args.seconds,
            cpus,
            args.host,
            verbose=args.verbose,
            sampler=perf_sampler(args.freq, Path(tmp), args.symbols > 0),
            progress=lambda s: print(f"  {s}", file=sys.stderr),
        )

    missing = [
        f"{label} {name}"
        for label, *_ in plan
        for name, _ in servers
        if median(runs[label][name], "perf_user_us") is None
    ]
    base = servers[0][0]
    head = (
        "workload",
        "server",
        "user us/rt",
        f"{base}/this",
        "kernel us/rt",
        "rusage user",
        "req/s",
    )
    widths = (9, 17, 11, 9, 13, 12, 9)
    print()
    print(
        "medians; user and kernel from perf samples, rusage user from "
        "getrusage (tick-sampled)"
    )
    print("  ".join(h.rjust(w) for h, w in zip(head, widths)))
    for label, *_ in plan:
        base_user = median(runs[label][base], "perf_user_us")
        for name, _ in servers:
            r = runs[label][name]
            user = median(r, "perf_user_us")
            rel = "-" if name == base else fmt(ratio(base_user, user), 2)
            cells = (
                label,
                name,
                fmt(user, 3),
                rel,
                fmt(median(r, "perf_kernel_us"), 2),
                fmt(median(r, "user_us"), 3),
                fmt(median(r, "rps"), 0),
            )
            print("  ".join(c.rjust(w) for c, w in zip(cells, widths)))
    if args.symbols > 0:
        print_symbols(runs, plan, servers, args.symbols)
    for e in errors:
        print(f"error: {e}", file=sys.stderr)
    for m in missing:
        print(f"error: no perf samples for {m}", file=sys.stderr)
    return 1 if errors or missing else 0


if __name__ == "__main__":
    sys.exit(main())
