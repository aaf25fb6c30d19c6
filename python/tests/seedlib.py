"""Helpers shared by the test_seed_* files (the seed's uasyncio on uvasync)."""

import os
import socket
import subprocess
import sys

import pytest

import uasyncio

HERE = os.path.dirname(os.path.abspath(__file__))
PROGRAMS = os.path.join(HERE, "seed_programs")


@pytest.fixture
def loop():
    """A fresh seed loop, this thread's loop for the test, closed after."""
    loop = uasyncio.new_event_loop()
    yield loop
    loop.close()


def free_port():
    """A TCP port on 127.0.0.1 nobody listens on (the seed's start_server
    takes a fixed port and cannot report the one it got for port 0)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_program(name, *args, timeout=60, stdin=None):
    """Run a seed program of seed_programs/ unchanged in a new interpreter;
    its CompletedProcess (stdout and stderr as text)."""
    return subprocess.run(
        [sys.executable, os.path.join(PROGRAMS, name)]
        + [str(a) for a in args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=PROGRAMS,
    )


def start_program(name, *args):
    """Start a seed program (a server) in a new interpreter."""
    return subprocess.Popen(
        [sys.executable, os.path.join(PROGRAMS, name)]
        + [str(a) for a in args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=PROGRAMS,
    )


def wait_listening(port, proc, tries=500):
    """Wait (bounded) until something accepts on 127.0.0.1:port."""
    import time

    for _ in range(tries):
        if proc.poll() is not None:
            raise AssertionError(
                "the server exited: %s" % (proc.stderr.read(),)
            )
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.01)
    raise AssertionError("nothing listens on port %d" % port)


def run_until(loop, done, limit_s=30):
    """Run the loop until done() is true (checked every millisecond), at
    most limit_s seconds: tests wait for events, not for fixed times."""
    import time

    def waiter():
        deadline = time.monotonic() + limit_s
        while not done() and time.monotonic() < deadline:
            yield from uasyncio.sleep_ms(1)

    loop.run_until_complete(waiter())
    assert done(), "not done after %s s" % limit_s
