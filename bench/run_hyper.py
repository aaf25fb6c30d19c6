#!/usr/bin/env python3
"""hyper on uvasync against hyper on tokio: the same hyper 1.x "hello
world" HTTP/1 server under one wrk load (keep-alive, 50 connections).

    python3 bench/run_hyper.py [--quick] [--repeats 5] [--seconds 3]
                               [--no-build] [--json FILE] [--cpus 0,1] [-v]

  uvasync  rust/uvasync/examples/hyper_hello.rs (uvasync::hyper's Io,
           Timer; one task per connection)
  tokio    rust/uvasync/examples/hyper_hello_tokio.rs (current-thread
           runtime, hyper-util's TokioIo and TokioTimer)

Both build with `cargo build --release --features hyper` and serve with a
timer (hyper's 30 s header read timeout) and TCP_NODELAY. Every run is a
fresh server process under one wrk run (Debian's wrk, -t1 -c50), server and
wrk pinned to separate CPUs with taskset as in run_echo.py; within a round
each server runs once (A B A B ...). The table shows medians (min-max) of
requests/s and of the server's CPU per request (user + system, over its
life), and the ratios uvasync / tokio for requests/s and tokio / uvasync
for CPU (above 1 = uvasync better), also paired within rounds. Target
(issue 27): at least tokio's requests/s with no more CPU per request.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import run_aio  # noqa: E402
import run_rust  # noqa: E402

import machine  # noqa: E402
import run_echo  # noqa: E402
from benchlib import cpu_model, paired_ratio, summary  # noqa: E402

IMPLS = {
    "uvasync": run_rust.EXAMPLES / "hyper_hello",
    "tokio": run_rust.EXAMPLES / "hyper_hello_tokio",
}
KEY = "hyper"
TITLE = f"hyper hello world, wrk {run_aio.HTTP_CONNS} connections"


def usable():
    """True when wrk is installed (else said on stderr)."""
    if shutil.which("wrk"):
        return True
    print("run_hyper.py: no wrk; the hyper row left out", file=sys.stderr)
    return False


def build():
    subprocess.run(
        [
            run_rust.cargo(),
            "build",
            "--release",
            "-j2",
            "-q",
            "-p",
            "uvasync",
            "--features",
            "hyper",
            "--example",
            "hyper_hello",
            "--example",
            "hyper_hello_tokio",
        ],
        cwd=run_rust.RUST,
        check=True,
    )


def measure(
    repeats=5, seconds=3.0, cpus=(None, None), progress=None, verbose=False
):
    """Each server once per round under wrk. Returns ({impl: [runs]},
    [error strings]); every run has "rate" (requests/s), "cpu_us" (server
    CPU per request, user + system) and its "round"."""
    values, errors = {}, []
    for rep in range(repeats):
        for impl, exe in IMPLS.items():
            if progress:
                progress(f"hyper {impl} #{rep + 1}")
            r = run_aio.run_http([exe], seconds, cpus)
            if "error" in r:
                errors.append(f"hyper {impl} #{rep + 1}: {r['error']}")
                print(f"  hyper {impl}: {r['error']}", file=sys.stderr)
                continue
            r["rate"] = r["rps"]
            r["cpu_us"] = r["user_us"] + r["sys_us"]
            r["round"] = rep
            if verbose:
                print(f"    hyper {impl}: {r['line']}", flush=True)
            values.setdefault(impl, []).append(r)
    return values, errors


def plan_size(repeats):
    """How many runs measure() makes (for a progress counter)."""
    return len(IMPLS) * repeats


def rows(values):
    """The one row, in run_aio.rows' form: summaries of requests/s and of
    the CPU per request, ratios of medians and paired ratios (uvasync /
    tokio for the rate, tokio / uvasync for CPU)."""
    if "uvasync" not in values:
        return []
    impls = {
        i: summary([r["rate"] for r in values[i]])
        for i in IMPLS
        if i in values
    }
    cpu = {i: summary([r["cpu_us"] for r in values[i]]) for i in impls}
    row = {
        "benchmark": KEY,
        "title": TITLE,
        "unit": "requests/s",
        "better": "higher",
        "impls": impls,
        "cpu_us": cpu,
        "ratios": {},
        "paired_ratios": {},
        "cpu_ratios": {},
        "cpu_paired_ratios": {},
    }
    for peer in impls:
        if peer == "uvasync":
            continue
        a, b = impls["uvasync"]["median"], impls[peer]["median"]
        row["ratios"][peer] = a / b if a and b else None
        row["paired_ratios"][peer] = paired_ratio(
            values["uvasync"], values[peer], "rate"
        )
        c, pc = cpu["uvasync"]["median"], cpu[peer]["median"]
        row["cpu_ratios"][peer] = pc / c if c and pc else None
        inv = paired_ratio(values["uvasync"], values[peer], "cpu_us")
        row["cpu_paired_ratios"][peer] = 1 / inv if inv else None
    return [row]


def report(table):
    """Print the row and the target; returns 1 when missed, else 0."""
    print(
        "hyper: medians (min-max); ratio = uvasync / tokio for requests/s,"
        "\ntokio / uvasync for server CPU per request (above 1 = uvasync"
        "\nbetter); paired = median over the rounds of the ratio within each"
        "\nround"
    )
    missed = 0
    for r in table:
        print(f"  {r['title']} ({r['unit']}; server CPU us per request)")
        for impl, s in r["impls"].items():
            extra = ""
            if impl != "uvasync":
                extra = run_aio.fmt_ratio(
                    r["ratios"][impl], r["paired_ratios"][impl]
                )
            c = r["cpu_us"][impl]["median"]
            cpu = f"  cpu {c:.1f} us" if c else "  cpu -"
            if impl != "uvasync":
                cpu += run_aio.fmt_ratio(
                    r["cpu_ratios"][impl], r["cpu_paired_ratios"][impl]
                ).replace("ratio", "cpu ratio", 1)
            print(
                f"    {impl:<8} {s['median']:>12.1f} ({s['min']:.1f}-{s['max']:.1f}){extra}{cpu}"
            )
        rate = r["paired_ratios"].get("tokio")
        cpu_p = r["cpu_paired_ratios"].get("tokio")
        ok = bool(rate and cpu_p and rate >= 1.0 and cpu_p >= 1.0)
        missed += not ok
        rate_s = f"{rate:.2f}" if rate else "-"
        cpu_s = f"{cpu_p:.2f}" if cpu_p else "-"
        print(
            "\ntarget (issue 27): at least tokio's requests/s with no more CPU"
            f"\n  [{'PASS' if ok else 'MISS'}] requests/s uvasync / tokio "
            f"{rate_s}; server CPU tokio / uvasync {cpu_s} (paired)"
        )
    return missed


def settings(quick, repeats, seconds, pin_note):
    return {
        "mode": "quick" if quick else "full",
        "repeats": repeats,
        "seconds": seconds,
        "pinning": pin_note,
        "http_connections": run_aio.HTTP_CONNS,
        "servers": {
            i: str(p.relative_to(run_rust.RUST.parent))
            for i, p in IMPLS.items()
        },
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--quick", action="store_true", help="2 rounds of 1 s runs"
    )
    ap.add_argument("--repeats", type=int, help="rounds (default 5, quick 2)")
    ap.add_argument(
        "--seconds", type=float, help="seconds per server run (3; quick 1)"
    )
    ap.add_argument("--no-build", action="store_true")
    ap.add_argument("--json", type=Path, help="write the results to this file")
    ap.add_argument("--cpus", default="", help="server,client CPUs")
    ap.add_argument("--no-pin", action="store_true")
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args()
    if not usable():
        return 1
    repeats = args.repeats or (2 if args.quick else 5)
    seconds = args.seconds or (1.0 if args.quick else 3.0)
    if not args.no_build:
        build()
    cpus, pin_note = run_echo.choose_cpus(args.cpus, args.no_pin)
    print(
        f"cpu: {cpu_model()}, {os.cpu_count()} cpus; {repeats} rounds of {seconds:g} s; pinning: {pin_note}",
        flush=True,
    )
    info = machine.describe(env=os.environ.copy(), cargo=run_rust.cargo())
    values, errors = measure(
        repeats,
        seconds,
        cpus,
        progress=lambda s: print(f"  ... {s}", file=sys.stderr),
        verbose=args.verbose,
    )
    table = rows(values)
    report(table)
    if args.json:
        result = {
            "command": "python3 bench/run_hyper.py " + " ".join(sys.argv[1:]),
            "machine": info,
            "settings": settings(args.quick, repeats, seconds, pin_note),
            "rows": table,
            "errors": errors,
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=1) + "\n")
        print(f"wrote {args.json}")
    if errors or not table:
        print(f"run_hyper.py: {len(errors)} run(s) failed", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
