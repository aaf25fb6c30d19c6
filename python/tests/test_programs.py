"""Programs written against CPython's asyncio API (programs/) run unchanged
on uvasync, each in its own interpreter, and print what they print on
CPython's asyncio."""

import os
import subprocess
import sys

import pytest

PROGRAMS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "programs")


def _run(name, module):
    r = subprocess.run(
        [sys.executable, os.path.join(PROGRAMS, name), module],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=PROGRAMS,
    )
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""
    return r.stdout


@pytest.mark.parametrize("name", ["jobs.py", "idle_timeout.py"])
def test_a_program_prints_the_same_on_uvasync_and_asyncio(name):
    expected = _run(name, "asyncio")
    assert expected  # it did print something
    assert _run(name, "uvasync") == expected
