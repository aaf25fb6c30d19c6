"""Ctrl-C: SIGINT to a process whose run() waits in I/O, in a sleep or
spins on sleep(0) raises KeyboardInterrupt out of run() promptly, after the
main task's cleanup ran. Each case runs in a subprocess."""
import os
import select
import signal
import subprocess
import sys
import time

import pytest

CHILD = r"""
import importlib, sys, time
aio = importlib.import_module(sys.argv[1])
mode = sys.argv[2]

async def main():
    try:
        if mode == "read":
            kept = []  # a stream nobody holds is closed (uvasync)
            server = await aio.start_server(lambda r, w: kept.append(w),
                                            "127.0.0.1", 0)
            port = server.sockets[0].getsockname()[1]
            reader, writer = await aio.open_connection("127.0.0.1", port)
            print("ready", flush=True)
            await reader.read(1)   # nobody ever writes: waits in the kernel
        elif mode == "sleep":
            print("ready", flush=True)
            await aio.sleep(30)
        elif mode == "spin":
            print("ready", flush=True)
            end = time.monotonic() + 30
            while time.monotonic() < end:
                await aio.sleep(0)
    finally:
        print("cleanup", flush=True)

try:
    aio.run(main())
except KeyboardInterrupt:
    print("KeyboardInterrupt at %r" % time.monotonic(), flush=True)
    sys.exit(3)
print("run returned", flush=True)
"""


def _wait_for_line(proc, text, timeout):
    end = time.monotonic() + timeout
    lines = []
    while time.monotonic() < end:
        ready, _, _ = select.select([proc.stdout], [], [], 0.1)
        if ready:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if line.startswith(text):
                return lines
    raise AssertionError("child never printed %r; got %r" % (text, lines))


@pytest.mark.parametrize("mode", ["read", "sleep", "spin"])
def test_sigint_raises_keyboard_interrupt_out_of_run(aio, mode, capsys):
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, aio.__name__, mode],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=dict(os.environ, PYTHONUNBUFFERED="1"))
    try:
        _wait_for_line(proc, "ready", 30)
        time.sleep(0.2)  # let the loop settle into its wait
        sent = time.monotonic()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 3, (out, err)
    assert "cleanup" in out
    caught = float(out.split("KeyboardInterrupt at ")[1].split()[0])
    latency = caught - sent
    with capsys.disabled():  # the figure shows in the suite's output
        print("\n%s %s: SIGINT to KeyboardInterrupt in %.1f ms"
              % (aio.__name__, mode, latency * 1000))
    assert latency < 2.0
