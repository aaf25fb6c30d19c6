#!/usr/bin/env python3
"""Measure uvasync against all its peers in one run on one machine, write
the results as JSON and draw the comparison as a PNG chart.

    python3 bench/run_all.py               # full run: about 20 min
    python3 bench/run_all.py --quick       # smoke check: about 2 min (plus builds)
    python3 bench/run_all.py [--only c,python,rust] [--repeats 5] [--seconds 3]
                             [--out-dir bench/results] [--no-plot] [--no-build]
                             [--cpus 0,1] [--no-pin] [-v]

It builds what it needs first: the C benchmarks (CMake Release build in
build/), the Python package from this tree into build/bench-python (a private
pip --target directory put on PYTHONPATH, so the package installed on the
machine is left alone; rebuilt only when python/, src/ or include/ changed),
uvloop and matplotlib (pip, when missing) and the Rust examples (cargo build
--release). Then, for each peer comparison:

  C       uvasync's C API           vs raw libuv
  Python  the uvasync package       vs CPython asyncio and uvloop (streams
                                       and asyncio.Protocol servers)
  Rust    the uvasync crate         vs tokio's current-thread runtime

it runs TCP echo at 10 x 1 KiB, 10 x 10 KiB, 10 x 100 KiB and 100 x 1 KiB
(every server driven by the same load client, bench_echo_load, which checks
every echoed byte; server and client pinned to separate CPUs), task switches,
spawn rate, timers and memory per sleeping task, and (run_os.py) child
processes spawned and waited for, executor round trips (one at a time and
64 in flight) and a file read from the page cache (1 GiB; --quick 64 MiB),
with aiofiles as a further Python peer there, and (run_aio.py, with the
python group) the asyncio event loop uvasync.EventLoop against uvloop's and
asyncio's: Protocol and streams echo servers, an aiohttp server under wrk,
call_soon, call_later and sock_* round trips (the JSON's "aio" part),
(run_tls.py, with the python group) TLS echo and handshakes against
asyncio's and uvloop's ssl= and tokio-rustls (the JSON's "tls" part), and
(run_hyper.py, with the rust group and wrk) a hyper "hello world" server on
uvasync against hyper on tokio (the JSON's "hyper" part). Every run is a fresh
process; implementations run interleaved (A B C A B C ...) and repeated; the
tables show the median, the min-max spread and the ratio to each peer.

Results go to OUT_DIR/<date>.json, with OUT_DIR/latest.json a symbolic link
to it (one copy of a run), the chart to OUT_DIR/latest.png (with --quick:
<date>-quick.json, latest-quick.json and latest-quick.png, so a smoke check
never replaces a full run's files).
Exit status 1 when any run failed (for example an echo byte mismatch).
"""

import argparse
import hashlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import run_aio  # noqa: E402
import run_core  # noqa: E402
import run_hyper  # noqa: E402
import run_os  # noqa: E402
import run_python  # noqa: E402
import run_rust  # noqa: E402
import run_tls  # noqa: E402

import machine  # noqa: E402
import run_echo  # noqa: E402
from benchlib import paired_ratio, summary  # noqa: E402

REPO = HERE.parent
DEFAULT_BUILD = REPO / "build"
PY_TARGET_NAME = "bench-python"  # inside the build dir
C_TARGETS = [
    "bench_core",
    "bench_raw_core",
    "bench_echo_server",
    "bench_raw_echo_server",
    "bench_echo_read_server",
    "bench_echo_load",
    "bench_os",
    "bench_raw_os",
]
GROUPS = ["c", "python", "rust"]

ECHO_WORKLOADS = run_echo.WORKLOADS  # 10x1k, 10x10k, 10x100k, 100x1k
# Fresh connections (0.3 s warm-up, 1 s measured), C group only: the
# zero-copy server against a copying read one (bench_echo_read_server,
# "uvasync-read") and raw libuv. In the quick run too, so the suite runs it.
FRESH_WORKLOADS = run_echo.FRESH_WORKLOADS  # 10x100k-fresh
# run_core plans: (label, benchmark, N, extra argument)
CORE_FULL = [
    ("yield", "yield", 1_000_000, "1000"),
    ("spawn", "spawn", 1_000_000, None),
    ("timers", "timers", 1_000_000, None),
    ("sleep", "sleep", 100_000, None),
]
CORE_QUICK = [
    ("yield", "yield", 100_000, "1000"),
    ("spawn", "spawn", 100_000, None),
    ("timers", "timers", 100_000, None),
    ("sleep", "sleep", 10_000, None),
]

# Per group: the implementations in chart/table order; the first is uvasync.
IMPLS = {
    "c": ["uvasync", "libuv", "uvasync-read"],
    "python": [
        "uvasync",
        "asyncio",
        "asyncio-protocol",
        "uvloop",
        "uvloop-protocol",
        "asyncio-aiofiles",
        "uvloop-aiofiles",
    ],
    "rust": ["uvasync", "tokio"],
}
TITLES = {
    "c": "C: uvasync's C API vs raw libuv",
    "python": "Python: the uvasync package vs CPython asyncio and uvloop",
    "rust": "Rust: the uvasync crate vs tokio current-thread",
}
# The benchmarks in row order: (key, title, unit, which way is better).
BENCHES = (
    [
        (f"echo {w}", f"echo {w}", "requests/s", "higher")
        for w, *_ in ECHO_WORKLOADS + FRESH_WORKLOADS
    ]
    + [
        ("switch", "task switches", "switches/s", "higher"),
        ("spawn", "spawn + complete", "tasks/s", "higher"),
        ("timers", "timers", "timers per CPU-s", "higher"),
        ("memory", "sleeping task memory", "bytes/task", "lower"),
    ]
    + [(key, title, unit, "higher") for key, title, unit in run_os.BENCHES]
)


# --- progress ----------------------------------------------------------------


class Progress:
    """`[12/240 3m05s] echo 10x1k python/uvloop #2` on stderr: one line
    rewritten in place on a terminal, a line per step otherwise (logs)."""

    def __init__(self, total):
        self.total, self.done, self.t0 = total, 0, time.monotonic()
        self.tty = sys.stderr.isatty()

    def __call__(self, text):
        self.done += 1
        s = int(time.monotonic() - self.t0)
        line = f"[{self.done}/{self.total} {s // 60}m{s % 60:02d}s] {text}"
        if self.tty:
            sys.stderr.write("\r" + line.ljust(72))
        else:
            sys.stderr.write(line + "\n")
        sys.stderr.flush()

    def finish(self):
        if self.tty:
            sys.stderr.write("\n")


# --- building ----------------------------------------------------------------


def run_quiet(cmd, what, cwd=None):
    """Run a build command; show its output only when it fails."""
    p = subprocess.run(
        [str(c) for c in cmd], cwd=cwd, capture_output=True, text=True
    )
    if p.returncode != 0:
        sys.stdout.write(p.stdout[-4000:])
        sys.stderr.write(p.stderr[-4000:])
        sys.exit(
            f"run_all.py: {what} failed (exit {p.returncode}): {' '.join(map(str, cmd))}"
        )


def build_c(build_dir):
    run_quiet(
        [
            "cmake",
            "-S",
            REPO,
            "-B",
            build_dir,
            "-DCMAKE_BUILD_TYPE=Release",
            "-DUVA_SANITIZE=",
        ],
        "cmake configure",
    )
    run_quiet(
        ["cmake", "--build", build_dir, "-j2", "--target"] + C_TARGETS,
        "cmake build",
    )


def tree_hash():
    """A hash of everything the Python package is built from."""
    h = hashlib.sha256()
    files = []
    for sub in (
        "src",
        "include",
        "python/csrc",
        "python/uvasync",
        "python/uasyncio",
    ):
        files += [
            p
            for p in (REPO / sub).rglob("*")
            if p.is_file() and "__pycache__" not in p.parts
        ]
    files += [
        REPO / "python" / f
        for f in ("setup.py", "build_ffi.py", "pyproject.toml")
    ]
    files.append(REPO / "bindings" / "uvasync.cdef.h")
    for p in sorted(files):
        h.update(str(p.relative_to(REPO)).encode() + b"\0")
        h.update(p.read_bytes() if p.is_file() else b"")
    return h.hexdigest()


def ensure_python_package(build_dir):
    """Install ./python into build_dir/bench-python unless that copy was built
    from the same sources; put it first on PYTHONPATH for every process the
    benchmark starts. Returns the directory."""
    target = build_dir / PY_TARGET_NAME
    stamp = target / ".tree-hash"
    want = tree_hash()
    if not (stamp.is_file() and stamp.read_text() == want):
        shutil.rmtree(target, ignore_errors=True)
        run_quiet(
            [
                sys.executable,
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "--root-user-action=ignore",
                "--target",
                target,
                REPO / "python",
            ],
            "pip install ./python",
        )
        stamp.write_text(want)
    old = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = str(target) + (os.pathsep + old if old else "")
    return target


def ensure_pip_packages(names):
    """pip install the named packages that this Python cannot import."""
    missing = [n for n in names if importlib.util.find_spec(n) is None]
    if missing:
        run_quiet(
            [
                sys.executable,
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "--root-user-action=ignore",
            ]
            + missing,
            f"pip install {' '.join(missing)}",
        )
        importlib.invalidate_caches()


# --- measuring ---------------------------------------------------------------


def fresh_servers(build_dir, groups):
    """The servers of FRESH_WORKLOADS (C group only): zero copy, raw libuv
    and the copying read echo."""
    if "c" not in groups:
        return []
    return [
        ("c/uvasync", run_core.find_bin(build_dir, "bench_echo_server")),
        ("c/libuv", run_core.find_bin(build_dir, "bench_raw_echo_server")),
        (
            "c/uvasync-read",
            run_core.find_bin(build_dir, "bench_echo_read_server"),
        ),
    ]


def echo_servers(build_dir, groups):
    """(group/impl, server) pairs, in IMPLS order, for run_echo.measure."""
    servers = []
    if "c" in groups:
        servers += [
            ("c/uvasync", run_core.find_bin(build_dir, "bench_echo_server")),
            ("c/libuv", run_core.find_bin(build_dir, "bench_raw_echo_server")),
        ]
    if "python" in groups:
        servers += [
            (f"python/{n}", cmd) for n, cmd in run_python.echo_servers()
        ]
    if "rust" in groups:
        servers += [(f"rust/{n}", exe) for n, exe in run_rust.echo_servers()]
    return servers


def plan_size(build_dir, groups, servers, fresh, repeats, quick):
    n = len(ECHO_WORKLOADS) * len(servers) * repeats
    n += len(FRESH_WORKLOADS) * len(fresh) * repeats
    if "c" in groups:
        n += len(CORE_QUICK if quick else CORE_FULL) * 2 * repeats
    if "python" in groups:
        n += len(run_python.MICRO) * len(python_micro_impls()) * repeats
    if "rust" in groups:
        n += len(run_rust.TASK_BENCHES) * 2 * repeats
    n += run_os.plan_size(build_dir, groups, quick, repeats)
    if "python" in groups:
        n += run_aio.plan_size(
            run_aio.usable(run_aio.BENCH_GROUPS), None, quick, repeats
        )
    if "rust" in groups and shutil.which("wrk"):
        n += run_hyper.plan_size(repeats)
    return n


def python_micro_impls():
    return [
        i
        for i in run_python.MICRO_IMPLS
        if i != "uvloop" or run_python.have_uvloop()
    ]


def measure(args, groups, build_dir):
    """Run everything; returns (raw values {group: {bench: {impl: [floats]}}},
    extras, paired, errors, pinning note, asyncio loops' runs). paired holds
    the echo ratios paired within rounds: {group: {bench: {peer: uvasync /
    peer}}}; then run_aio.measure's values (None without python) and
    run_hyper.measure's (None without rust or wrk)."""
    servers = echo_servers(build_dir, groups)
    fresh = fresh_servers(build_dir, groups)
    load = run_core.find_bin(build_dir, "bench_echo_load")
    cpus, pin_note = run_echo.choose_cpus(args.cpus, args.no_pin)
    progress = Progress(
        plan_size(build_dir, groups, servers, fresh, args.repeats, args.quick)
    )
    values = {g: {} for g in groups}
    extras = {g: {} for g in groups}  # echo: server CPU per round trip
    paired = {g: {} for g in groups}
    errors = []

    def put(group, bench, impl, vals):
        values[group].setdefault(bench, {})[impl] = vals

    # Echo: all servers of all groups interleaved in each round.
    echo, errs = run_echo.measure(
        servers,
        load,
        ECHO_WORKLOADS,
        args.repeats,
        args.seconds,
        cpus,
        progress=progress,
        verbose=args.verbose,
    )
    errors += errs
    if fresh:  # their own length and warm-up: --seconds does not apply
        more, errs = run_echo.measure(
            fresh,
            load,
            FRESH_WORKLOADS,
            args.repeats,
            args.seconds,
            cpus,
            progress=progress,
            verbose=args.verbose,
        )
        errors += errs
        echo.update(more)
    for label, by_server in echo.items():
        for name, runs in by_server.items():
            group, impl = name.split("/", 1)
            put(group, f"echo {label}", impl, [r["rps"] for r in runs])
            extras[group].setdefault(f"echo {label}", {})[impl] = {
                k: summary([r[k] for r in runs])
                for k in ("user_us", "sys_us", "mib_s")
            }
        for group in groups:
            subject = by_server.get(f"{group}/uvasync")
            if subject is None:
                continue
            paired[group][f"echo {label}"] = {
                name.split("/", 1)[1]: paired_ratio(subject, runs, "rps")
                for name, runs in by_server.items()
                if name.startswith(f"{group}/") and name != f"{group}/uvasync"
            }

    if "c" in groups:
        core, errs = run_core.measure(
            run_core.find_bin(build_dir, run_core.UVA_BIN),
            run_core.find_bin(build_dir, run_core.RAW_BIN),
            CORE_QUICK if args.quick else CORE_FULL,
            args.repeats,
            progress=progress,
            verbose=args.verbose,
        )
        errors += errs
        for label, (_bench, _n, runs) in core.items():
            for impl, rs in runs.items():
                if label in ("yield", "spawn"):
                    put(
                        "c",
                        "switch" if label == "yield" else "spawn",
                        impl,
                        [1e9 / r["ns_per_op"] for r in rs],
                    )
                elif label == "timers":
                    put(
                        "c",
                        "timers",
                        impl,
                        [1e9 / r["cpu_ns_per_op"] for r in rs],
                    )
                elif label == "sleep":
                    put("c", "memory", impl, [r["bytes_per_task"] for r in rs])

    if "python" in groups:
        micro, errs = run_python.measure_micro(
            args.quick, args.repeats, progress
        )
        errors += errs
        n_timers = {
            b: (q if args.quick else f) for b, _, f, q in run_python.MICRO
        }["timers"]
        for impl, rs in micro["switch"].items():
            put("python", "switch", impl, [r["switch_per_s"] for r in rs])
        for impl, rs in micro["spawn"].items():
            put("python", "spawn", impl, [r["spawn_per_s"] for r in rs])
        for impl, rs in micro["timers"].items():
            put(
                "python",
                "timers",
                impl,
                [n_timers / r["cpu_s"] for r in rs if r.get("cpu_s")],
            )
        for impl, rs in micro["sleepers"].items():
            put("python", "memory", impl, [r["bytes_per_sleeper"] for r in rs])

    if "rust" in groups:
        tasks, errs = run_rust.measure_tasks(
            args.quick, args.repeats, progress, args.verbose
        )
        errors += errs
        for name, (_n, runs) in tasks.items():
            for impl, rs in runs.items():
                if name in ("yield", "spawn"):
                    put(
                        "rust",
                        "switch" if name == "yield" else "spawn",
                        impl,
                        [1e9 / r["ns_per_op"] for r in rs],
                    )
                elif name == "sleep":
                    # A sleeping task's whole life (spawn, arm, fire, finish)
                    # is Rust's timer benchmark; its RSS sample the memory one.
                    put(
                        "rust",
                        "timers",
                        impl,
                        [1e9 / r["cpu_ns_per_op"] for r in rs],
                    )
                    put(
                        "rust",
                        "memory",
                        impl,
                        [r["bytes_per_task"] for r in rs],
                    )
    # Processes, the executor and files (run_os.py), every group's
    # implementations in each round.
    os_runs, errs = run_os.measure(
        build_dir,
        groups,
        args.quick,
        args.repeats,
        progress=progress,
        verbose=args.verbose,
    )
    errors += errs
    for group, by_bench in os_runs.items():
        for bench, by_impl in by_bench.items():
            for impl, runs in by_impl.items():
                put(group, bench, impl, [r["rate"] for r in runs])
            if "uvasync" in by_impl:
                paired[group][bench] = {
                    impl: paired_ratio(by_impl["uvasync"], runs, "rate")
                    for impl, runs in by_impl.items()
                    if impl != "uvasync"
                }
    # The asyncio event loops (run_aio.py): uvasync.EventLoop, uvloop and
    # asyncio's own under the same clients.
    aio = None
    if "python" in groups:
        aio, errs = run_aio.measure(
            build_dir,
            args.quick,
            args.repeats,
            args.seconds,
            run_aio.usable(run_aio.BENCH_GROUPS),
            cpus=cpus,
            progress=progress,
            verbose=args.verbose,
        )
        errors += errs
    # hyper on uvasync and on tokio (run_hyper.py) under wrk.
    hyper = None
    if "rust" in groups and run_hyper.usable():
        hyper, errs = run_hyper.measure(
            args.repeats,
            args.seconds,
            cpus,
            progress=progress,
            verbose=args.verbose,
        )
        errors += errs
    progress.finish()
    return values, extras, paired, errors, pin_note, aio, hyper


def build_rows(values, extras, paired):
    """One row per (group, benchmark): medians, spread and the ratio to each
    peer, oriented so that a ratio above 1 always means uvasync is better
    (throughput: uvasync / peer; memory: peer / uvasync); echo rows also
    carry the ratios paired within rounds ("paired_ratios")."""
    rows = []
    for group in GROUPS:
        if group not in values:
            continue
        for key, title, unit, better in BENCHES:
            by_impl = values[group].get(key)
            if not by_impl:
                continue
            impls = {
                i: summary(by_impl[i]) for i in IMPLS[group] if i in by_impl
            }
            subject = impls.get("uvasync", {}).get("median")
            ratios = {}
            for peer, s in impls.items():
                if peer == "uvasync":
                    continue
                m = s["median"]
                if subject and m:
                    ratios[peer] = (
                        subject / m if better == "higher" else m / subject
                    )
                else:
                    ratios[peer] = None
            row = {
                "group": group,
                "benchmark": key,
                "title": title,
                "unit": unit,
                "better": better,
                "impls": impls,
                "ratios": ratios,
            }
            if key in extras.get(group, {}):
                row["server_cpu"] = extras[group][key]
            if key in paired.get(group, {}):
                row["paired_ratios"] = paired[group][key]
            rows.append(row)
    return rows


# --- report ------------------------------------------------------------------


def human(v, unit=""):
    if v is None:
        return "-"
    if unit.startswith("bytes"):
        return f"{v:.0f}"
    for div, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(v) >= div:
            return f"{v / div:.3g}{suffix}"
    return f"{v:.3g}"


def report(rows, settings):
    print(
        f"medians of {settings['repeats']} interleaved runs, (min-max); "
        f"ratio = how many times better uvasync is than the peer\n"
        f"(throughput: uvasync / peer; memory: peer / uvasync), so above 1 "
        f"= uvasync better.\npinning: {settings['pinning']}; echo runs "
        f"{settings['seconds']:g} s each\n"
    )
    for group in GROUPS:
        grows = [r for r in rows if r["group"] == group]
        if not grows:
            continue
        impls = [
            i for i in IMPLS[group] if any(i in r["impls"] for r in grows)
        ]
        peers = impls[1:]
        head = ["benchmark", "unit"] + impls + [f"vs {p}" for p in peers]
        table = []
        for r in grows:
            cells = [r["title"], r["unit"]]
            for i in impls:
                s = r["impls"].get(i)
                cells.append(
                    "-"
                    if not s or s["median"] is None
                    else f"{human(s['median'], r['unit'])} "
                    f"({human(s['min'], r['unit'])}-{human(s['max'], r['unit'])})"
                )
            cells += [
                "-" if r["ratios"].get(p) is None else f"{r['ratios'][p]:.2f}"
                for p in peers
            ]
            table.append(cells)
        print(TITLES[group])
        print_table(head, table, left=2)
        # The echo servers' own CPU: what a round trip costs the server.
        cpu_rows = [r for r in grows if "server_cpu" in r]
        if cpu_rows:
            print(
                "  echo server CPU per round trip, median microseconds user+sys "
                "(user): lower is better"
            )
            table = [
                [r["title"]]
                + [cpu_cell(r["server_cpu"].get(i)) for i in impls]
                for r in cpu_rows
            ]
            print_table(["workload"] + impls, table, left=1)
        paired_rows = [r for r in grows if "paired_ratios" in r]
        if paired_rows:
            print(
                "  ratios paired within rounds (median of uvasync / peer "
                "in each round)"
            )
            table = [
                [r["title"]]
                + [
                    "-"
                    if r["paired_ratios"].get(p) is None
                    else f"{r['paired_ratios'][p]:.3f}"
                    for p in peers
                ]
                for r in paired_rows
            ]
            print_table(
                ["workload"] + [f"vs {p}" for p in peers], table, left=1
            )
        print()


def cpu_cell(cpu):
    if not cpu or cpu["user_us"]["median"] is None:
        return "-"
    user, sys_ = cpu["user_us"]["median"], cpu["sys_us"]["median"]
    return f"{user + sys_:.2f} ({user:.2f})"


def print_table(head, table, left):
    """Columns padded to their widest cell; the first `left` left-aligned."""
    widths = [max(len(x) for x in col) for col in zip(head, *table)]
    for line in [head] + table:
        print(
            "  "
            + "  ".join(
                c.ljust(w) if k < left else c.rjust(w)
                for k, (c, w) in enumerate(zip(line, widths))
            )
        )


def point_at(link, target):
    """Make `link` a symbolic link to `target` (a name in the same folder),
    replacing what was there; a copy where the file system has no links."""
    tmp = link.with_name(link.name + ".tmp")
    tmp.unlink(missing_ok=True)
    try:
        os.symlink(target, tmp)
    except OSError:
        shutil.copyfile(link.with_name(target), tmp)
    os.replace(tmp, link)


# --- main --------------------------------------------------------------------


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--quick",
        action="store_true",
        help="smoke check: small N, 2 repeats, 0.5 s echo runs (~2 min)",
    )
    ap.add_argument(
        "--repeats",
        type=int,
        help="interleaved runs of each "
        "implementation per benchmark (default 5, quick 2)",
    )
    ap.add_argument(
        "--seconds",
        type=float,
        help="seconds per echo run (default 3, quick 0.5)",
    )
    ap.add_argument(
        "--only",
        default=",".join(GROUPS),
        help="comma-separated groups: c,python,rust (default all)",
    )
    ap.add_argument(
        "--out-dir",
        type=Path,
        default=HERE / "results",
        help="where the JSON and PNG go (default bench/results)",
    )
    ap.add_argument(
        "--build-dir",
        type=Path,
        default=DEFAULT_BUILD,
        help="CMake build tree (default build/)",
    )
    ap.add_argument(
        "--no-plot", action="store_true", help="skip the PNG chart"
    )
    ap.add_argument(
        "--no-build",
        action="store_true",
        help="use what is built/installed (the Python package "
        "copy in BUILD_DIR/bench-python must exist)",
    )
    ap.add_argument(
        "--cpus",
        default="",
        help="server,client CPUs for taskset (default: the first two allowed)",
    )
    ap.add_argument("--no-pin", action="store_true", help="do not use taskset")
    ap.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="print every raw result line",
    )
    args = ap.parse_args()
    groups = [g.strip() for g in args.only.split(",") if g.strip()]
    if not groups or set(groups) - set(GROUPS):
        ap.error(f"--only takes some of {','.join(GROUPS)}")
    args.repeats = args.repeats or (2 if args.quick else 5)
    args.seconds = args.seconds or (0.5 if args.quick else 3.0)
    build_dir = args.build_dir.resolve()
    t_start = time.monotonic()

    # 1. Build.
    if not args.no_build:
        print("building: C benchmarks (CMake Release)", flush=True)
        build_c(build_dir)
        if "python" in groups:
            print(
                "building: Python package -> "
                f"{build_dir / PY_TARGET_NAME} (when the sources changed)",
                flush=True,
            )
            ensure_python_package(build_dir)
            ensure_pip_packages(["uvloop", "aiofiles", "aiohttp"])
        if not args.no_plot:
            ensure_pip_packages(["matplotlib"])
        if "rust" in groups:
            print("building: Rust examples (cargo --release)", flush=True)
            run_rust.build()
            run_hyper.build()
    elif "python" in groups:
        target = build_dir / PY_TARGET_NAME
        if not target.is_dir():
            sys.exit(f"run_all.py: --no-build but {target} is missing")
        os.environ["PYTHONPATH"] = str(target)
    if not args.no_build:
        try:  # the TLS benchmark's programs, when the core has TLS
            run_tls.build(build_dir)
        except subprocess.CalledProcessError:
            print("building: no TLS benchmark (no OpenSSL?)", flush=True)
    t_built = time.monotonic()

    info = machine.describe(
        env=os.environ.copy(),
        cargo=run_rust.cargo() if "rust" in groups else None,
    )
    print(
        f"machine: {info['cpu_model']}, {info['cpu_count']} CPUs, "
        f"{info['kernel']}, load {info['load_average_at_start']}",
        flush=True,
    )

    # 2. Measure.
    values, extras, paired, errors, pin_note, aio, hyper = measure(
        args, groups, build_dir
    )
    rows = build_rows(values, extras, paired)
    aio_rows = run_aio.rows(aio) if aio is not None else []
    # TLS (run_tls.py): every server on each workload, its own table; with
    # the Python group (its peers are asyncio and uvloop) and a TLS build.
    tls_rows = None
    if "python" in groups and all(
        (build_dir / "bench" / b).is_file()
        for b in ("bench_tls_server", "bench_tls_load")
    ):
        tls_runs, errs = run_tls.measure(
            build_dir,
            run_tls.WORKLOADS,
            args.repeats,
            args.seconds,
            run_echo.choose_cpus(args.cpus, args.no_pin)[0],
            progress=None,
            verbose=args.verbose,
        )
        errors += errs
        tls_rows = run_tls.rows(tls_runs)
    hyper_rows = run_hyper.rows(hyper) if hyper is not None else []
    t_end = time.monotonic()
    settings = {
        "mode": "quick" if args.quick else "full",
        "groups": groups,
        "repeats": args.repeats,
        "seconds": args.seconds,
        "pinning": pin_note,
        "echo_workloads": ECHO_WORKLOADS,
        "fresh_workloads": FRESH_WORKLOADS if "c" in groups else [],
        "core_plan": CORE_QUICK if args.quick else CORE_FULL,
        "python_micro": run_python.MICRO,
        "rust_tasks": run_rust.TASK_BENCHES,
        "os_n": run_os.N,
        "os_file_bytes": run_os.FILE_SIZE["quick" if args.quick else "full"],
        "os_chunk_bytes": run_os.CHUNK,
        "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
        "build_seconds": round(t_built - t_start, 1),
        "measure_seconds": round(t_end - t_built, 1),
    }
    print()
    report(rows, settings)
    if aio_rows:
        print()
        run_aio.report(aio_rows)
    if tls_rows is not None:
        print("\nTLS echo (run_tls.py):")
        run_tls.report(tls_rows)
    if hyper_rows:
        print()
        run_hyper.report(hyper_rows)

    # 3. Write.
    result = {
        "schema": 1,
        "command": "python3 bench/run_all.py " + " ".join(sys.argv[1:]),
        "machine": info,
        "settings": settings,
        "titles": TITLES,
        "rows": rows,
        "aio": {
            "settings": run_aio.settings(
                args.quick, args.repeats, args.seconds, pin_note
            ),
            "rows": aio_rows,
        },
        "tls": tls_rows,
        "hyper": {
            "settings": run_hyper.settings(
                args.quick, args.repeats, args.seconds, pin_note
            ),
            "rows": hyper_rows,
        },
        "errors": errors,
    }
    args.out_dir.mkdir(parents=True, exist_ok=True)
    suffix = "-quick" if args.quick else ""
    text = json.dumps(result, indent=1) + "\n"
    dated = args.out_dir / f"{info['date']}{suffix}.json"
    dated.write_text(text)
    latest = args.out_dir / f"latest{suffix}.json"
    point_at(latest, dated.name)
    print(f"wrote {dated}; {latest.name} points at it")
    if not args.no_plot:
        import plot_results

        png = args.out_dir / f"latest{suffix}.png"
        plot_results.plot(result, png)
        print(f"wrote {png}")
    print(
        f"took {t_end - t_start:.0f} s (build {t_built - t_start:.0f} s, "
        f"measure {t_end - t_built:.0f} s)"
    )
    missing = (
        [
            f"{r['group']} {r['benchmark']} {i}"
            for r in rows
            for i, s in r["impls"].items()
            if s["median"] is None
        ]
        + [
            f"aio {r['benchmark']} {i}"
            for r in aio_rows
            for i, s in r["impls"].items()
            if s["median"] is None
        ]
        + [
            f"hyper {i}"
            for r in hyper_rows
            for i, s in r["impls"].items()
            if s["median"] is None
        ]
    )
    if errors or missing:
        print(
            f"FAILED: {len(errors)} run(s) failed, no result for: "
            f"{', '.join(missing) or 'none'}",
            file=sys.stderr,
        )
        for e in errors:
            print(f"  {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
