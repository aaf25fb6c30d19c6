#!/usr/bin/env python3
"""The TLS benchmark: TLS echo servers on uvasync (its C core and its
Python API) against CPython's asyncio and uvloop with ssl=, every one
driven by the same TLS load client (bench_tls_load: OpenSSL, TLS 1.3,
TLS_AES_128_GCM_SHA256, no resumption), in one run.

    python3 bench/run_tls.py [--build-dir build] [--quick] [--repeats 5]
                             [--seconds 3] [--only 1k,100k,handshakes]
                             [--no-build] [--json FILE] [--cpus 0,1]
                             [--no-pin] [-v]

  servers   uvasync-c       bench_tls_server (the C API: uva_tls_start,
                            zero-copy echo)
            uvasync-py      bench/echo_server.py uvasync (streams, ssl=)
            asyncio, uvloop               the same streams server, ssl=
            asyncio-protocol, uvloop-protocol  an asyncio.Protocol, ssl=
            (Rust: the RUST_SERVERS hook below, empty for now)
  workloads 1k          10 connections, 1 KiB messages (requests/s)
            100k        10 connections, 100 KiB messages
            handshakes  10 at a time: connect, full handshake, 1-byte echo,
                        close_notify, close (handshakes/s)

Each run is a fresh server process and a fresh client process (server and
client pinned to two CPUs when taskset is there, run_echo.run_one); the
servers run interleaved within each round (A B C A B C ...). Reported:
medians (min-max) of requests/s and of the server's CPU (user + system)
per round trip or handshake, and per peer the ratio uvasync / peer, also
paired within rounds. Targets (issue 26): each uvasync server at least the
best peer on requests/s and handshakes/s; the Python server's CPU per round
trip at most uvloop's (streams server; the Protocol servers are shown).

The certificate: a P-256 ECDSA one, self-signed for localhost, made with
the openssl command into BUILD/bench-data/tls once.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import run_rust  # noqa: E402

import machine  # noqa: E402
import run_echo  # noqa: E402
from benchlib import cpu_model, paired_ratio, summary  # noqa: E402

REPO = HERE.parent
PY = sys.executable

# (label, connections, message bytes; 0 = handshakes)
WORKLOADS = [
    ("1k", 10, 1024),
    ("100k", 10, 100 * 1024),
    ("handshakes", 10, 0),
]
PY_PEERS = ["asyncio", "asyncio-protocol", "uvloop", "uvloop-protocol"]
SUBJECTS = ["uvasync-c", "uvasync-py", "uvasync-rs"]
# The Rust servers (examples of the uvasync crate, built with cargo when it
# is there): the crate's own and tokio's with tokio-rustls, with
# bench_tls_server's protocol (CERT and KEY from BENCH_TLS_CERT and
# BENCH_TLS_KEY, HOST PORT appended; print the port, serve until SIGTERM,
# print user_s= sys_s=).
RUST_SERVERS = [
    ("uvasync-rs", "bench_tls_uvasync"),
    ("tokio-rustls", "bench_tls_tokio"),
]


def has_module(name):
    return (
        subprocess.run(
            [PY, "-c", f"import {name}"], capture_output=True
        ).returncode
        == 0
    )


def build(build_dir):
    subprocess.run(
        ["cmake", "-S", REPO, "-B", build_dir, "-DCMAKE_BUILD_TYPE=Release",
         "-DUVA_SANITIZE="],
        check=True,
        capture_output=True,
    )  # fmt: skip
    subprocess.run(
        ["cmake", "--build", build_dir, "-j2", "--target",
         "bench_tls_server", "bench_tls_load"],
        check=True,
        capture_output=True,
    )  # fmt: skip


def certificate(build_dir):
    """(cert, key) PEM files, made once."""
    d = build_dir / "bench-data" / "tls"
    cert, key = d / "server.pem", d / "server.key"
    if not cert.is_file() or not key.is_file():
        d.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
             "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out",
             cert, "-days", "3650", "-subj", "/CN=localhost", "-addext",
             "subjectAltName=DNS:localhost,IP:127.0.0.1"],
            check=True,
            capture_output=True,
        )  # fmt: skip
    return cert, key


def servers(build_dir, cert, key):
    """[(name, argv)]: argv gets HOST PORT appended (run_echo.run_one)."""
    c = run_echo.find_bin(build_dir, "bench_tls_server")
    echo = HERE / "echo_server.py"
    out = [
        ("uvasync-c", [c, cert, key]),
        ("uvasync-py", [PY, echo, "uvasync"]),
    ]
    have_uvloop = has_module("uvloop")
    for peer in PY_PEERS:
        if peer.startswith("uvloop") and not have_uvloop:
            continue
        out.append((peer, [PY, echo, peer]))
    try:
        cargo = run_rust.cargo()
    except SystemExit:  # no cargo: the C and Python servers only
        cargo = None
    if cargo is not None:
        subprocess.run(
            [cargo, "build", "--release", "-q", "-j2", "-p",
             "uvasync", "--all-features"]
            + [a for _, ex in RUST_SERVERS for a in ("--example", ex)],
            cwd=run_rust.RUST,
            check=True,
        )  # fmt: skip
        for name, ex in RUST_SERVERS:
            out.append((name, [run_rust.EXAMPLES / ex]))
    return out


def rows(results):
    """One row per workload: per server the medians of requests/s and of
    CPU us per round trip; ratios and paired ratios of uvasync's servers to
    each peer (above 1 = uvasync better: more requests/s, less CPU)."""
    out = []
    for label, conns, size in WORKLOADS:
        by = results.get(label)
        if not by:
            continue
        for r in (x for runs in by.values() for x in runs):
            r["cpu_us"] = r["user_us"] + r["sys_us"]
        impls = {
            name: {
                "rps": summary([r["rps"] for r in runs]),
                "cpu_us": summary([r["cpu_us"] for r in runs]),
            }
            for name, runs in by.items()
            if runs
        }
        ratios = {}
        for subject in SUBJECTS:
            if subject not in impls:
                continue
            ratios[subject] = {}
            for peer in impls:
                if peer in SUBJECTS:
                    continue
                s, p = impls[subject], impls[peer]
                ratios[subject][peer] = {
                    "rps": s["rps"]["median"] / p["rps"]["median"],
                    "rps_paired": paired_ratio(by[subject], by[peer], "rps"),
                    # CPU: peer / uvasync, so above 1 is better here too
                    "cpu": p["cpu_us"]["median"] / s["cpu_us"]["median"],
                    "cpu_paired": paired_ratio(
                        by[peer], by[subject], "cpu_us"
                    ),
                }
        out.append(
            {
                "workload": label,
                "connections": conns,
                "bytes": size,
                "unit": "handshakes/s" if size == 0 else "requests/s",
                "impls": impls,
                "ratios": ratios,
            }
        )
    return out


def report(table):
    print(
        "medians (min-max); server CPU = user + system us per round trip "
        "(per handshake);\nratio = uvasync / peer for requests/s, peer / "
        "uvasync for CPU: above 1 = uvasync better; paired = within rounds"
    )
    for row in table:
        print(
            f"\n{row['workload']} ({row['unit']}, {row['connections']} conns)"
        )
        for name, s in row["impls"].items():
            r, c = s["rps"], s["cpu_us"]
            print(
                f"  {name:<17} {r['median']:>10.1f} ({r['min']:.1f}-"
                f"{r['max']:.1f})  cpu {c['median']:>8.1f} us"
            )
        for subject, peers in row["ratios"].items():
            for peer, q in peers.items():
                print(
                    f"    {subject} / {peer:<17} rps {q['rps']:.2f} (paired "
                    f"{q['rps_paired']:.2f})  cpu {q['cpu']:.2f} (paired "
                    f"{q['cpu_paired']:.2f})"
                )
    print("\ntargets (issue 26), on the ratios paired within rounds:")
    missed = 0
    for row in table:
        for subject, peers in row["ratios"].items():
            if not peers:
                continue
            worst = min(peers, key=lambda p: peers[p]["rps_paired"])
            v = peers[worst]["rps_paired"]
            ok = v >= 1.0
            missed += not ok
            print(
                f"  [{'PASS' if ok else 'MISS'}] {subject} {row['workload']} "
                f"{row['unit']}: {v:.2f}x the best peer ({worst})"
            )
        uv = row["ratios"].get("uvasync-py", {}).get("uvloop")
        if uv and row["bytes"]:
            ok = uv["cpu_paired"] >= 1.0
            missed += not ok
            print(
                f"  [{'PASS' if ok else 'MISS'}] uvasync-py {row['workload']} "
                f"CPU per round trip: uvloop's / ours = {uv['cpu_paired']:.2f}"
            )
    return missed


def measure(build_dir, workloads, repeats, seconds, cpus, progress, verbose):
    cert, key = certificate(build_dir)
    os.environ["BENCH_TLS_CERT"] = str(cert)
    os.environ["BENCH_TLS_KEY"] = str(key)
    load = run_echo.find_bin(build_dir, "bench_tls_load")
    return run_echo.measure(
        servers(build_dir, cert, key),
        load,
        workloads,
        repeats,
        seconds,
        cpus,
        progress=progress,
        verbose=verbose,
    )


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build-dir", type=Path, default=REPO / "build")
    ap.add_argument("--quick", action="store_true", help="short runs")
    ap.add_argument("--repeats", type=int, help="rounds (default 5, quick 2)")
    ap.add_argument("--seconds", type=float, help="per run (3, quick 0.5)")
    ap.add_argument("--only", default="", help="some of 1k,100k,handshakes")
    ap.add_argument("--no-build", action="store_true")
    ap.add_argument("--json", type=Path, help="write the results here")
    ap.add_argument("--cpus", default="")
    ap.add_argument("--no-pin", action="store_true")
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args()
    if shutil.which("openssl") is None:
        sys.exit("run_tls.py: the openssl command makes the certificate")
    want = [w for w in args.only.split(",") if w]
    workloads = [w for w in WORKLOADS if not want or w[0] in want]
    repeats = args.repeats or (2 if args.quick else 5)
    seconds = args.seconds or (0.5 if args.quick else 3.0)
    build_dir = args.build_dir.resolve()
    if not args.no_build:
        build(build_dir)
    cpus, pin_note = run_echo.choose_cpus(args.cpus, args.no_pin)
    print(
        f"cpu: {cpu_model()}, {os.cpu_count()} cpus; pinning: {pin_note}; "
        f"python {sys.version.split()[0]}; {repeats} rounds of "
        f"{seconds} s",
        flush=True,
    )
    results, errors = measure(
        build_dir,
        workloads,
        repeats,
        seconds,
        cpus,
        lambda s: print(f"  ... tls {s}", file=sys.stderr),
        args.verbose,
    )
    table = rows(results)
    missed = report(table)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(
            json.dumps(
                {
                    "command": "python3 bench/run_tls.py "
                    + " ".join(sys.argv[1:]),
                    "date": time.strftime("%Y-%m-%dT%H:%M:%S"),
                    "machine": machine.describe(env=os.environ.copy()),
                    "settings": {
                        "repeats": repeats,
                        "seconds": seconds,
                        "pinning": pin_note,
                        "workloads": workloads,
                        "client": "bench_tls_load: TLS 1.3, "
                        "TLS_AES_128_GCM_SHA256, no resumption",
                        "certificate": "ECDSA P-256, self-signed",
                    },
                    "rows": table,
                    "missed_targets": missed,
                    "errors": errors,
                },
                indent=1,
            )
            + "\n"
        )
    for e in errors:
        print(f"error: {e}", file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
