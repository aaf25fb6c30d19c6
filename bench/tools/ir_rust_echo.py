#!/usr/bin/env python3
"""Instructions per round trip of the Rust echo servers, under callgrind.

    python3 bench/tools/ir_rust_echo.py [--build-dir build/bench] [--seconds 6]
                                        [--only 10x1k,10x10k] [--servers uvasync,tokio]
                                        [--keep DIR] [--examples DIR]

Wall-clock CPU time on a shared 2-core machine is too noisy to tell a few
per cent apart; instruction counts are not. Each server
(rust/target/release/examples/bench_echo_{uvasync,tokio}) runs under
`valgrind --tool=callgrind`; a 1 s client run warms it up, the counters are
zeroed (callgrind_control -z), then a client run of seconds/3 and one of
seconds go, with a dump (callgrind_control -d) between them. Ir/rt is the
difference of the two runs' Ir over the difference of their requests, so
that connecting, spawning and closing (per run, not per round trip) cancel
out; "(1 run)" is the long run's Ir over its requests, setup included.
--keep DIR keeps the callgrind.out files for callgrind_annotate.
Build first: cd rust && cargo build --release --examples; the load client
comes from the CMake build (bench_echo_load).
"""

import argparse
import re
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

# The bench drivers it reuses are one folder up.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from run_rust import ECHO_WORKLOADS, echo_servers  # noqa: E402

from run_echo import find_bin, parse_kv  # noqa: E402

REPO = Path(__file__).resolve().parent.parent.parent


def total_ir(path: Path) -> int:
    """Sum of the `totals:` (or `summary:`) lines of a callgrind output, over
    all its parts (one per zero/dump)."""
    total = 0
    for line in path.read_text().splitlines():
        m = re.match(r"(?:totals|summary):\s+(\d+)", line)
        if m:
            total = max(total, int(m.group(1)))
    return total


def client(
    load: Path, port: str, conns: int, size: int, seconds: float
) -> int:
    """One load client run; the requests it reports."""
    cli = subprocess.run(
        [str(load), "127.0.0.1", port, str(conns), str(size), str(seconds)],
        capture_output=True,
        text=True,
        timeout=seconds + 120,
    )
    res = (
        parse_kv(cli.stdout.strip().splitlines()[-1])
        if cli.stdout.strip()
        else {}
    )
    if (
        cli.returncode != 0
        or res.get("errors") != "0"
        or "requests" not in res
    ):
        raise RuntimeError(
            f"client: {cli.stdout.strip()} {cli.stderr.strip()}"
        )
    return int(res["requests"])


def measure(
    program: Path,
    load: Path,
    conns: int,
    size: int,
    seconds: float,
    outdir: Path,
    tag: str,
) -> dict:
    """Ir per round trip as the difference of two client runs (seconds / 3
    and seconds): what both spend on connecting, spawning and closing
    cancels out, which matters at 100 connections."""
    out = outdir / f"callgrind.out.{tag}"
    for old in outdir.glob(f"callgrind.out.{tag}*"):
        old.unlink()
    srv = subprocess.Popen(
        [
            "valgrind",
            "--tool=callgrind",
            f"--callgrind-out-file={out}",
            str(program),
            "127.0.0.1",
            "0",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        port = srv.stdout.readline().strip()
        if not port.isdigit():
            srv.kill()
            return {"error": f"no port: {port!r} {srv.stderr.read()[-500:]}"}
        ctl = ["callgrind_control"]
        client(load, port, conns, size, 1)  # warm-up
        subprocess.run(
            ctl + ["-z", str(srv.pid)], capture_output=True, check=True
        )
        short = client(load, port, conns, size, seconds / 3)
        subprocess.run(
            ctl + ["-d", str(srv.pid)], capture_output=True, check=True
        )
        long = client(load, port, conns, size, seconds)
    except RuntimeError as e:
        return {"error": str(e)}
    finally:
        if srv.poll() is None:
            srv.send_signal(signal.SIGTERM)
        try:
            srv.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            srv.kill()
            srv.communicate()
    # Part 1 (the dump after the short run) is out.1; the final dump at exit
    # (the long run) is out.2, or out itself on older valgrind.
    parts = sorted(outdir.glob(f"callgrind.out.{tag}*"), key=lambda p: p.name)
    irs = {p.name: total_ir(p) for p in parts}
    first = irs.get(f"callgrind.out.{tag}.1")
    last = irs.get(f"callgrind.out.{tag}.2", irs.get(f"callgrind.out.{tag}"))
    if first is None or last is None or long <= short:
        return {"error": f"unexpected dumps {irs} or requests {short}, {long}"}
    return {
        "requests": long,
        "ir_per_rt": (last - first) / (long - short),
        "ir_per_rt_long": last / long,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build-dir", default=str(REPO / "build" / "bench"))
    ap.add_argument("--seconds", type=float, default=6)
    ap.add_argument("--only", default="", help="workloads, e.g. 10x1k,10x100k")
    ap.add_argument("--servers", default="uvasync,tokio")
    ap.add_argument(
        "--keep", default="", help="directory for callgrind.out files"
    )
    ap.add_argument(
        "--examples",
        default="",
        help="directory of the example programs (default: cargo's release one)",
    )
    args = ap.parse_args()
    load = find_bin(Path(args.build_dir), "bench_echo_load")
    only = set(filter(None, args.only.split(",")))
    wanted = args.servers.split(",")
    servers = [
        (n, Path(args.examples) / p.name if args.examples else p)
        for n, p in echo_servers()
        if n in wanted
    ]
    outdir = (
        Path(args.keep)
        if args.keep
        else Path(tempfile.mkdtemp(prefix="ir_echo_"))
    )
    outdir.mkdir(parents=True, exist_ok=True)
    print(
        f"{'workload':>9} {'server':>8} {'requests':>9} {'Ir/rt':>8} {'(1 run)':>8}"
    )
    for label, conns, size in ECHO_WORKLOADS:
        if only and label not in only:
            continue
        for name, program in servers:
            r = measure(
                program,
                load,
                conns,
                size,
                args.seconds,
                outdir,
                f"{name}.{label}",
            )
            if "error" in r:
                print(f"{label:>9} {name:>8} FAILED {r['error']}")
                continue
            print(
                f"{label:>9} {name:>8} {r['requests']:>9} {r['ir_per_rt']:>8.0f}"
                f" {r['ir_per_rt_long']:>8.0f}",
                flush=True,
            )
    if args.keep:
        print(f"callgrind files in {outdir}")


if __name__ == "__main__":
    main()
