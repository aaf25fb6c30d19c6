#!/usr/bin/env python3
"""Instructions per round trip of the Rust echo servers, under callgrind.

    python3 bench/ir_rust_echo.py [--build-dir build/bench] [--seconds 4]
                                  [--only 10x1k,10x10k] [--servers uvasync,tokio]
                                  [--keep DIR] [--examples DIR]

Wall-clock CPU time on a shared 2-core machine is too noisy to tell a few
per cent apart; instruction counts are not. Each server
(rust/target/release/examples/bench_echo_{uvasync,tokio}) runs under
`valgrind --tool=callgrind`; a first short client run warms it up (accept,
spawn, buffers), then the counters are zeroed (callgrind_control -z), the
measured client run goes, and SIGTERM ends the server. The figure is the
server's total Ir after the zeroing divided by the requests the client
reports. --keep DIR keeps the callgrind.out files for callgrind_annotate.
Build first: cd rust && cargo build --release --examples; the load client
comes from the CMake build (bench_echo_load).
"""
import argparse
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run_echo import find_bin, parse_kv  # noqa: E402
from run_rust import ECHO_WORKLOADS, echo_servers  # noqa: E402

REPO = Path(__file__).resolve().parent.parent


def total_ir(path: Path) -> int:
    """Sum of the `totals:` (or `summary:`) lines of a callgrind output, over
    all its parts (one per zero/dump)."""
    total = 0
    for line in path.read_text().splitlines():
        m = re.match(r"(?:totals|summary):\s+(\d+)", line)
        if m:
            total = max(total, int(m.group(1)))
    return total


def measure(program: Path, load: Path, conns: int, size: int, seconds: float,
            outdir: Path, tag: str) -> dict:
    out = outdir / f"callgrind.out.{tag}"
    srv = subprocess.Popen(
        ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
         str(program), "127.0.0.1", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        port = srv.stdout.readline().strip()
        if not port.isdigit():
            srv.kill()
            return {"error": f"no port: {port!r} {srv.stderr.read()[-500:]}"}
        warm = [str(load), "127.0.0.1", port, str(conns), str(size), "1"]
        subprocess.run(warm, capture_output=True, text=True, check=True)
        subprocess.run(["callgrind_control", "-z", str(srv.pid)],
                       capture_output=True, check=True)
        cli = subprocess.run([str(load), "127.0.0.1", port, str(conns),
                              str(size), str(seconds)],
                             capture_output=True, text=True, timeout=seconds + 120)
    finally:
        if srv.poll() is None:
            srv.send_signal(signal.SIGTERM)
        try:
            srv.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            srv.kill()
            srv.communicate()
    res = parse_kv(cli.stdout.strip().splitlines()[-1])
    if cli.returncode != 0 or res.get("errors") != "0":
        return {"error": f"client: {cli.stdout.strip()} {cli.stderr.strip()}"}
    # callgrind_control -z dumps nothing; the final dump holds the counts
    # since the zeroing.
    ir = total_ir(out)
    requests = int(res["requests"])
    return {"ir": ir, "requests": requests, "ir_per_rt": ir / requests, "file": out}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build-dir", default=str(REPO / "build" / "bench"))
    ap.add_argument("--seconds", type=float, default=4)
    ap.add_argument("--only", default="", help="workloads, e.g. 10x1k,10x100k")
    ap.add_argument("--servers", default="uvasync,tokio")
    ap.add_argument("--keep", default="", help="directory for callgrind.out files")
    ap.add_argument("--examples", default="",
                    help="directory of the example programs (default: cargo's release one)")
    args = ap.parse_args()
    load = find_bin(Path(args.build_dir), "bench_echo_load")
    only = set(filter(None, args.only.split(",")))
    wanted = args.servers.split(",")
    servers = [(n, Path(args.examples) / p.name if args.examples else p)
               for n, p in echo_servers() if n in wanted]
    outdir = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="ir_echo_"))
    outdir.mkdir(parents=True, exist_ok=True)
    print(f"{'workload':>9} {'server':>8} {'requests':>9} {'Ir/rt':>8}")
    for label, conns, size in ECHO_WORKLOADS:
        if only and label not in only:
            continue
        for name, program in servers:
            r = measure(program, load, conns, size, args.seconds, outdir,
                        f"{name}.{label}")
            if "error" in r:
                print(f"{label:>9} {name:>8} FAILED {r['error']}")
                continue
            print(f"{label:>9} {name:>8} {r['requests']:>9} {r['ir_per_rt']:>8.0f}",
                  flush=True)
    if args.keep:
        print(f"callgrind files in {outdir}")


if __name__ == "__main__":
    main()
