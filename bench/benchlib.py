"""Helpers shared by the benchmark drivers (run_core.py, run_sync.py,
run_echo.py, run_all.py): medians over repeated runs, number formatting, the
CPU name."""

import platform
import statistics
from pathlib import Path


def median(runs, key):
    """Median of runs[i][key] over the runs that have it, or None."""
    vals = [r[key] for r in runs if key in r]
    return statistics.median(vals) if vals else None


def summary(values):
    """Median, min, max and count of a list of numbers (None when empty),
    plus the values themselves, for JSON."""
    vals = list(values)
    return {
        "median": statistics.median(vals) if vals else None,
        "min": min(vals) if vals else None,
        "max": max(vals) if vals else None,
        "n": len(vals),
        "values": vals,
    }


def ratio(a, b):
    return None if a is None or b in (None, 0) else a / b


def paired_ratio(runs_a, runs_b, key):
    """Median over the rounds both sides ran in of a's run[key] / b's, or
    None. Runs of one round are close in time, so a slow spell of a shared
    machine moves both sides of a pair, and the ratio of medians less.
    Each run needs its "round" (run_echo.measure)."""
    b = {r["round"]: r[key] for r in runs_b if key in r}
    vals = [
        r[key] / b[r["round"]]
        for r in runs_a
        if key in r and b.get(r["round"])
    ]
    return statistics.median(vals) if vals else None


def fmt(v, digits=1):
    return "-" if v is None else f"{v:.{digits}f}"


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"
