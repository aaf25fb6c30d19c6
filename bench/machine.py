"""What a benchmark result was measured on: CPU, cores, kernel, VM, and the
versions of everything compared (libuv, Python, uvloop, cffi, the uvasync
package, tokio, rustc, the C compiler) plus the git commit, for run_all.py's
JSON. Every probe is best effort: a missing tool gives None, not an error."""

import datetime
import os
import platform
import re
import subprocess
import sys
from pathlib import Path

from benchlib import cpu_model

REPO = Path(__file__).resolve().parent.parent


def _out(cmd, cwd=None):
    """First line of a command's stdout, or None."""
    try:
        p = subprocess.run(
            cmd, capture_output=True, text=True, timeout=30, cwd=cwd
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    lines = p.stdout.strip().splitlines()
    return lines[0].strip() if p.returncode == 0 and lines else None


def python_module_version(module, env=None):
    """`module.__version__` (or its distribution's version) as the Python
    processes of the benchmark see it (env carries PYTHONPATH), or None."""
    code = (
        "import importlib, importlib.metadata as m, sys\n"
        f"mod = importlib.import_module({module!r})\n"
        "v = getattr(mod, '__version__', None)\n"
        f"print(v or m.version({module!r}))"
    )
    try:
        p = subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if p.returncode != 0:
        return None
    return p.stdout.strip() or None


def cargo_lock_version(crate, lock=REPO / "rust" / "Cargo.lock"):
    """The version of `crate` pinned in Cargo.lock, or None."""
    try:
        text = lock.read_text()
    except OSError:
        return None
    m = re.search(
        r'\[\[package\]\]\nname = "%s"\nversion = "([^"]+)"'
        % re.escape(crate),
        text,
    )
    return m.group(1) if m else None


def git_commit():
    commit = _out(["git", "rev-parse", "--short=12", "HEAD"], cwd=REPO)
    if commit and _out(
        ["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO
    ):
        commit += "-dirty"
    return commit


def describe(env=None, cargo=None):
    """A dict describing this machine and the versions compared."""
    try:
        allowed = len(os.sched_getaffinity(0))
    except AttributeError:
        allowed = os.cpu_count()
    uname = platform.uname()
    now = datetime.datetime.now().astimezone()
    return {
        "date": now.strftime("%Y-%m-%d"),
        "datetime": now.isoformat(timespec="seconds"),
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "cpus_allowed": allowed,
        "virtualization": _out(["systemd-detect-virt"]),
        "kernel": f"{uname.system} {uname.release}",
        "machine": uname.machine,
        "os": _os_name(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "git_commit": git_commit(),
        "versions": {
            "libuv": _out(["pkg-config", "--modversion", "libuv"]),
            "python": platform.python_version(),
            "uvloop": python_module_version("uvloop", env),
            "aiofiles": python_module_version("aiofiles", env),
            "cffi": python_module_version("cffi", env),
            "uvasync_python": python_module_version("uvasync", env),
            "tokio": cargo_lock_version("tokio"),
            "rustc": _out([_rustc(cargo), "--version"]),
            "cc": _out(["cc", "--version"]),
            "cmake": _out(["cmake", "--version"]),
            "matplotlib": python_module_version("matplotlib", env),
        },
    }


def _rustc(cargo):
    """rustc next to the cargo that builds the benchmarks (rustup puts both
    in ~/.cargo/bin, which may not be on PATH), else from PATH."""
    if cargo and os.path.sep in str(cargo):
        return str(Path(cargo).with_name("rustc"))
    return "rustc"


def _os_name():
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                return line.split("=", 1)[1].strip('"')
    except OSError:
        pass
    return None
