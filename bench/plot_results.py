#!/usr/bin/env python3
"""Draw run_all.py's JSON as one PNG: a row per peer comparison (C, Python,
Rust) with echo throughput by workload, task throughput, memory per sleeping
task (bars = medians, whiskers = min-max over the runs) and the ratio of
uvasync to each peer (above 1 = uvasync better).

    python3 bench/plot_results.py bench/results/latest.json out.png

Needs matplotlib (pip install matplotlib); run_all.py calls plot().
"""

import json
import sys
from pathlib import Path

COLORS = {
    "uvasync": "#d62728",
    "libuv": "#7f7f7f",
    "asyncio": "#1f77b4",
    "asyncio-protocol": "#aec7e8",
    "uvloop": "#2ca02c",
    "uvloop-protocol": "#98df8a",
    "tokio": "#9467bd",
    "uvasync-read": "#ff9896",
    "asyncio-aiofiles": "#17becf",
    "uvloop-aiofiles": "#bcbd22",
}
# Tick labels where the titles are too long for a bar group.
SHORT = {
    "procs": "spawn+wait",
    "exec 1": "executor 1",
    "exec 64": "executor 64",
    "file read": "file read",
}
PANELS = [  # (title, which benchmarks, log scale)
    ("echo round trips (requests/s)", lambda k: k.startswith("echo "), False),
    (
        "tasks (ops/s; timers per CPU-second)",
        lambda k: k in ("switch", "spawn", "timers"),
        True,
    ),
    ("memory per sleeping task (bytes)", lambda k: k == "memory", False),
    (
        "processes/s, executor jobs/s, file MB/s",
        lambda k: k in ("procs", "file read") or k.startswith("exec "),
        True,
    ),
]


def _bars(ax, rows, impls, log):
    """Grouped bars: one group per benchmark, one bar per implementation."""
    width = 0.8 / max(len(impls), 1)
    for k, impl in enumerate(impls):
        xs, meds, lo, hi = [], [], [], []
        for x, r in enumerate(rows):
            s = r["impls"].get(impl)
            if not s or s["median"] is None:
                continue
            xs.append(x - 0.4 + width * (k + 0.5))
            meds.append(s["median"])
            lo.append(s["median"] - s["min"])
            hi.append(s["max"] - s["median"])
        ax.bar(
            xs,
            meds,
            width,
            yerr=[lo, hi],
            capsize=2,
            label=impl,
            color=COLORS.get(impl),
            edgecolor="black",
            linewidth=0.3,
        )
    ax.set_xticks(range(len(rows)))
    ax.set_xticklabels(
        [
            SHORT.get(r["benchmark"])
            or r["title"]
            .replace("echo ", "")
            .replace("sleeping task memory", "sleeping task")
            for r in rows
        ],
        fontsize=8,
    )
    if log:
        ax.set_yscale("log")
    ax.grid(axis="y", alpha=0.3)
    ax.tick_params(axis="y", labelsize=8)


def _ratios(ax, rows, peers):
    """Horizontal bars from 1 to the ratio to each peer, per benchmark, on a
    log scale: right of the line uvasync is better, left it is worse."""
    from matplotlib.ticker import FixedLocator, NullLocator

    height = 0.8 / max(len(peers), 1)
    labels = [r["title"] for r in rows]
    widest = 2.0
    for k, peer in enumerate(peers):
        ys, vals = [], []
        for y, r in enumerate(rows):
            v = r["ratios"].get(peer)
            if v:
                ys.append(y - 0.4 + height * (k + 0.5))
                vals.append(v)
                widest = max(widest, v, 1 / v)
        ax.barh(
            ys,
            [v - 1 for v in vals],
            height,
            left=1,
            color=COLORS.get(peer),
            label=f"vs {peer}",
            edgecolor="black",
            linewidth=0.3,
        )
        for y, v in zip(ys, vals):
            ax.text(
                v,
                y,
                f" {v:.2f} " if v >= 1 else f"{v:.2f} ",
                va="center",
                ha="left" if v >= 1 else "right",
                fontsize=6,
            )
    ax.axvline(1.0, color="black", linewidth=1)
    ax.set_xscale("log")
    ax.set_xlim(1 / (widest * 1.6), widest * 1.6)
    ticks = [
        t
        for t in (0.125, 0.25, 0.5, 1, 2, 4, 8, 16, 32)
        if 1 / (widest * 1.6) <= t <= widest * 1.6
    ]
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xticklabels([f"{t:g}x" for t in ticks])
    ax.set_yticks(range(len(rows)))
    ax.set_yticklabels(labels, fontsize=8)
    ax.invert_yaxis()
    ax.grid(axis="x", alpha=0.3)
    ax.tick_params(axis="x", labelsize=8)
    ax.set_title(
        "uvasync vs each peer (right of 1x = uvasync better)", fontsize=9
    )
    ax.legend(fontsize=7, loc="best")


def plot(result, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = result["rows"]
    groups = [
        g
        for g in ("c", "python", "rust")
        if any(r["group"] == g for r in rows)
    ]
    fig, axes = plt.subplots(
        len(groups),
        5,
        figsize=(27, 4.6 * len(groups)),
        gridspec_kw={"width_ratios": [3, 2.2, 1.3, 2.2, 2.6]},
        squeeze=False,
    )
    for gi, group in enumerate(groups):
        grows = [r for r in rows if r["group"] == group]
        impls = []
        for r in grows:
            impls += [i for i in r["impls"] if i not in impls]
        for pi, (title, pick, log) in enumerate(PANELS):
            ax = axes[gi][pi]
            prow = [r for r in grows if pick(r["benchmark"])]
            if prow:
                _bars(ax, prow, impls, log)
            ax.set_title(title, fontsize=9)
            if pi == 0:
                ax.set_ylabel(result["titles"][group], fontsize=9)
                ax.legend(fontsize=7)
        _ratios(axes[gi][4], grows, impls[1:])

    m, s = result["machine"], result["settings"]
    fig.suptitle(
        f"uvasync vs peers, {s['mode']} run of {m['date']} on {m['cpu_model']}, "
        f"{m['cpu_count']} CPUs, {m['kernel']} (libuv {m['versions']['libuv']}, "
        f"Python {m['versions']['python']}, uvloop {m['versions']['uvloop']}, "
        f"tokio {m['versions']['tokio']})\n"
        f"medians of {s['repeats']} interleaved runs, whiskers min-max; echo: "
        f"{s['seconds']:g} s per run, one load client verifying every byte, "
        f"{s['pinning']}",
        fontsize=10,
    )
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    fig.savefig(path, dpi=80)
    plt.close(fig)


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    plot(json.loads(Path(sys.argv[1]).read_text()), sys.argv[2])
    return 0


if __name__ == "__main__":
    sys.exit(main())
