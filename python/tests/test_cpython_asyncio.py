"""CPython's own asyncio tests (the test.test_asyncio package installed with
the interpreter running pytest) on uvasync.EventLoop: one run of
cpython_asyncio_run.py for all modules in a child process, then one pytest
item per module that fails with the module's failing tests. What is not run
is listed, with its reason, in cpython_asyncio_exclusions.txt."""

import json
import os
import subprocess
import sys

import cpython_asyncio_run as cpy
import pytest

HERE = os.path.dirname(os.path.abspath(__file__))


@pytest.fixture(scope="module")
def cpython_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("cpython_asyncio") / "report.json"
    proc = subprocess.run(
        [
            sys.executable,
            os.path.join(HERE, "cpython_asyncio_run.py"),
            "--json",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=900,
    )
    summary = proc.stdout[proc.stdout.find("CPython's test_asyncio") :]
    if proc.returncode == 2 or not out.exists():
        pytest.fail(
            f"CPython's asyncio tests not run (exit {proc.returncode}):\n"
            f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}",
            pytrace=False,
        )
    with open(out, encoding="utf-8") as f:
        report = json.load(f)
    report["summary"] = summary
    print(summary)
    return report


@pytest.mark.parametrize("module", cpy.MODULES)
def test_cpython_asyncio_module(cpython_run, module):
    (report,) = [r for r in cpython_run["modules"] if r["module"] == module]
    if not report["present"]:
        # a module newer than this CPython (e.g. test_taskgroups before 3.11)
        assert sys.version_info < (3, 11), (
            f"{module} missing from CPython's test suite"
        )
        return
    assert report["pass"] > 0
    if report["failed"]:
        tracebacks = list(report["tracebacks"].items())[:3]
        pytest.fail(
            f"{module}: {len(report['failed'])} failed on uvasync.EventLoop:\n  "
            + "\n  ".join(report["failed"])
            + "".join(f"\n\n{t}:\n{tb}" for t, tb in tracebacks),
            pytrace=False,
        )


def test_the_tests_ran_on_our_loop(cpython_run):
    """Every module with loop tests ran them on uvasync.EventLoop (the run
    counts the loops each test made, and fails a test that made one of
    asyncio's)."""
    assert cpython_run["loop"] == "uvasync"
    total = sum(r.get("on_our_loop", 0) for r in cpython_run["modules"])
    assert total > 1000
    for r in cpython_run["modules"]:
        if r["present"] and r["module"] not in (
            "test_protocols",
            "test_transports",
        ):
            assert r["on_our_loop"] > 0, r["module"]


def test_every_exclusion_names_a_category_and_a_reason():
    exclusions = cpy.read_exclusions()
    assert exclusions
    for ex in exclusions:
        assert ex.kind() in cpy.CATEGORIES and ex.reason, ex.line
