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


def _interrupted(source, *args, again_after=None):
    """Run `source` with `args` in a child Python, send SIGINT once it
    printed "ready" (and again once it printed `again_after`, if given);
    return (returncode, stdout, stderr, when the first SIGINT was sent)."""
    proc = subprocess.Popen(
        [sys.executable, "-c", source, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ, PYTHONUNBUFFERED="1"),
    )
    try:
        _wait_for_line(proc, "ready", 30)
        time.sleep(0.2)  # let the loop settle into its wait
        sent = time.monotonic()
        proc.send_signal(signal.SIGINT)
        if again_after is not None:
            _wait_for_line(proc, again_after, 10)
            time.sleep(0.2)
            proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return proc.returncode, out, err, sent


@pytest.mark.parametrize("mode", ["read", "sleep", "spin"])
def test_sigint_raises_keyboard_interrupt_out_of_run(aio, mode, capsys):
    returncode, out, err, sent = _interrupted(CHILD, aio.__name__, mode)
    assert returncode == 3, (out, err)
    assert "cleanup" in out
    caught = float(out.split("KeyboardInterrupt at ")[1].split()[0])
    latency = caught - sent
    with capsys.disabled():  # the figure shows in the suite's output
        print(
            "\n%s %s: SIGINT to KeyboardInterrupt in %.1f ms"
            % (aio.__name__, mode, latency * 1000)
        )
    assert latency < 2.0


# asyncio.run's sequence on Ctrl-C: the main task is cancelled and its
# clean-up runs on the running loop (it may await); then the tasks left are
# cancelled and their clean-up runs too; then one KeyboardInterrupt comes
# out of run() and, uncaught, ends the process as SIGINT would (exit 130
# in a shell).
CLEANUP_CHILD = r"""
import importlib, sys
aio = importlib.import_module(sys.argv[1])

async def child():
    try:
        await aio.sleep(30)
    finally:
        await aio.sleep(0.02)
        print("child cleanup done", flush=True)

async def main():
    aio.create_task(child())
    try:
        print("ready", flush=True)
        await aio.sleep(30)
    except aio.CancelledError:
        print("main cancelled", flush=True)
        raise
    finally:
        await aio.sleep(0.05)  # a clean-up that waits
        print("main cleanup done", flush=True)

aio.run(main())
print("run returned", flush=True)
"""


def test_sigint_cancels_main_runs_its_cleanup_and_raises_once(aio):
    returncode, out, err, _ = _interrupted(CLEANUP_CHILD, aio.__name__)
    assert out.splitlines() == [
        "main cancelled",
        "main cleanup done",
        "child cleanup done",
    ], (out, err)
    assert returncode == -signal.SIGINT, (out, err)
    last = err.strip().splitlines()[-1]
    assert last == "KeyboardInterrupt", err
    assert (
        sum(line.startswith("KeyboardInterrupt") for line in err.splitlines())
        == 1
    ), err


def test_sigint_in_runner_run_cancels_main_and_close_the_rest(aio):
    child = CLEANUP_CHILD.replace(
        "aio.run(main())",
        "with aio.Runner() as runner:\n    runner.run(main())",
    )
    returncode, out, err, _ = _interrupted(child, aio.__name__)
    assert out.splitlines() == [
        "main cancelled",
        "main cleanup done",
        "child cleanup done",
    ], (out, err)
    assert returncode == -signal.SIGINT, (out, err)
    assert (
        sum(line.startswith("KeyboardInterrupt") for line in err.splitlines())
        == 1
    ), err


def test_sigint_in_run_when_main_swallows_the_cancel_returns(aio):
    child = CLEANUP_CHILD.replace(
        'print("main cancelled", flush=True)\n        raise',
        'print("main cancelled", flush=True)',
    )
    returncode, out, err, _ = _interrupted(child, aio.__name__)
    assert out.splitlines() == [
        "main cancelled",
        "main cleanup done",
        "child cleanup done",
        "run returned",
    ], (out, err)
    assert returncode == 0, err


def test_a_second_sigint_interrupts_a_slow_cleanup(aio):
    child = CLEANUP_CHILD.replace(
        "await aio.sleep(0.05)  # a clean-up",
        "await aio.sleep(30)  # a clean-up",
    )
    returncode, out, err, _ = _interrupted(
        child, aio.__name__, again_after="main cancelled"
    )
    # the main task's slow clean-up is cancelled in turn, the child's runs
    assert out.splitlines() == ["child cleanup done"], (out, err)
    assert returncode == -signal.SIGINT, (out, err)
    assert err.strip().splitlines()[-1] == "KeyboardInterrupt", err
