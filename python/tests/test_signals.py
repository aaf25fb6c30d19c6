"""The loop's add_signal_handler/remove_signal_handler, run against
uvasync (the core's signal watchers) and CPython's asyncio (the `aio`
fixture): the callback runs on the loop, a second add replaces it, remove
puts back what was there before, the errors. uvasync also lets loops in
other threads watch signals (each gets every arrival); asyncio refuses.
Cases that send SIGINT run in a child Python, as test_sigint.py does."""

import os
import signal
import subprocess
import sys
import threading

import pytest

import uvasync


def _wait_called(aio, loop, calls, n=1):
    async def until():
        while len(calls) < n:
            await aio.sleep(0.005)

    loop.run_until_complete(aio.wait_for(until(), 5))


@pytest.fixture
def loop(aio):
    lp = aio.new_event_loop()
    yield lp
    lp.close()
    aio.set_event_loop(None)


def test_the_callback_runs_on_the_loop_with_its_args(aio, loop):
    calls = []
    loop.add_signal_handler(
        signal.SIGUSR1,
        lambda *a: calls.append((a, threading.get_ident())),
        1,
        2,
    )
    try:
        os.kill(os.getpid(), signal.SIGUSR1)
        _wait_called(aio, loop, calls)
        assert calls == [((1, 2), threading.get_ident())]
        os.kill(os.getpid(), signal.SIGUSR1)  # and again
        _wait_called(aio, loop, calls, 2)
    finally:
        assert loop.remove_signal_handler(signal.SIGUSR1) is True
    assert loop.remove_signal_handler(signal.SIGUSR1) is False


def test_a_second_add_replaces_the_callback(aio, loop):
    calls = []
    loop.add_signal_handler(signal.SIGUSR2, calls.append, "first")
    loop.add_signal_handler(signal.SIGUSR2, calls.append, "second")
    try:
        os.kill(os.getpid(), signal.SIGUSR2)
        _wait_called(aio, loop, calls)
    finally:
        loop.remove_signal_handler(signal.SIGUSR2)
    assert calls == ["second"]


def test_remove_puts_the_default_back(aio, loop):
    assert signal.getsignal(signal.SIGUSR1) == signal.SIG_DFL
    loop.add_signal_handler(signal.SIGUSR1, lambda: None)
    assert loop.remove_signal_handler(signal.SIGUSR1)
    assert signal.getsignal(signal.SIGUSR1) == signal.SIG_DFL


def test_closing_the_loop_removes_its_handlers(aio):
    lp = aio.new_event_loop()
    lp.add_signal_handler(signal.SIGUSR1, lambda: None)
    lp.close()
    aio.set_event_loop(None)
    assert signal.getsignal(signal.SIGUSR1) == signal.SIG_DFL


def test_errors(aio, loop):
    async def coro():
        pass

    with pytest.raises(TypeError):
        loop.add_signal_handler(signal.SIGUSR1, coro)
    with pytest.raises(TypeError):
        loop.add_signal_handler("SIGUSR1", lambda: None)
    with pytest.raises(ValueError):
        loop.add_signal_handler(0, lambda: None)
    with pytest.raises(ValueError):
        loop.add_signal_handler(100000, lambda: None)
    for sig in (signal.SIGKILL, signal.SIGSTOP):
        with pytest.raises(RuntimeError):
            loop.add_signal_handler(sig, lambda: None)
    assert loop.remove_signal_handler(signal.SIGKILL) is False
    with pytest.raises(ValueError):
        loop.remove_signal_handler(100000)
    closed = aio.new_event_loop()
    closed.close()
    with pytest.raises(RuntimeError):
        closed.add_signal_handler(signal.SIGUSR1, lambda: None)


def test_an_error_in_the_callback_goes_to_the_exception_handler(aio, loop):
    seen = []
    loop.set_exception_handler(lambda lp, ctx: seen.append(ctx["exception"]))

    def fail():
        raise ZeroDivisionError

    loop.add_signal_handler(signal.SIGUSR1, fail)
    try:
        os.kill(os.getpid(), signal.SIGUSR1)
        _wait_called(aio, loop, seen)
    finally:
        loop.remove_signal_handler(signal.SIGUSR1)
    assert [type(e) for e in seen] == [ZeroDivisionError]


def test_remove_puts_back_the_programs_own_handler():
    # asyncio puts SIG_DFL back; uvasync the handler that was there before
    mine = []
    before = signal.signal(signal.SIGUSR1, lambda s, f: mine.append(s))
    lp = uvasync.new_event_loop()
    calls = []
    try:
        lp.add_signal_handler(signal.SIGUSR1, calls.append, "loop")
        os.kill(os.getpid(), signal.SIGUSR1)
        _wait_called(uvasync, lp, calls)
        assert mine == []  # the loop's watcher took it
        lp.remove_signal_handler(signal.SIGUSR1)
        os.kill(os.getpid(), signal.SIGUSR1)
        for _ in range(100):  # Python runs its handler between bytecodes
            if mine:
                break
            threading.Event().wait(0.01)
        assert mine == [signal.SIGUSR1] and calls == ["loop"]
    finally:
        lp.close()
        uvasync.set_event_loop(None)
        signal.signal(signal.SIGUSR1, before)


def _loop_in_thread(aio, ready, results):
    async def main():
        loop = aio.get_running_loop()
        got = aio.Event()
        try:
            loop.add_signal_handler(signal.SIGUSR2, got.set)
        except RuntimeError as e:
            results.append(("refused", str(e)))
            ready.wait()
            return
        try:
            ready.wait()
            await aio.wait_for(got.wait(), 5)
            results.append("got it")
        finally:
            loop.remove_signal_handler(signal.SIGUSR2)

    loop = aio.new_event_loop()
    try:
        loop.run_until_complete(main())
    except BaseException as e:
        results.append(e)
    finally:
        loop.close()


def test_loops_in_two_threads_each_get_the_signal(aio):
    ready = threading.Barrier(3, timeout=10)
    results = []
    threads = [
        threading.Thread(target=_loop_in_thread, args=(aio, ready, results))
        for _ in range(2)
    ]
    for t in threads:
        t.start()
    ready.wait()
    if aio is uvasync:
        os.kill(os.getpid(), signal.SIGUSR2)
    for t in threads:
        t.join(10)
    if aio is uvasync:
        assert results == ["got it", "got it"]
    else:  # asyncio: signal handlers in the main thread only
        assert [r[0] for r in results] == ["refused", "refused"]
    assert signal.getsignal(signal.SIGUSR2) == signal.SIG_DFL


SIGINT_CHILD = r"""
import importlib, os, signal, sys, time
aio = importlib.import_module(sys.argv[1])

def interrupted():
    # Python's own SIGINT handler: KeyboardInterrupt between bytecodes
    try:
        os.kill(os.getpid(), signal.SIGINT)
        for _ in range(100):
            time.sleep(0.01)
    except KeyboardInterrupt:
        return True
    return False

async def main():
    loop = aio.get_running_loop()
    got = aio.Event()
    loop.add_signal_handler(signal.SIGINT, got.set)
    os.kill(os.getpid(), signal.SIGINT)
    await aio.wait_for(got.wait(), 5)
    print("handler ran", flush=True)
    assert loop.remove_signal_handler(signal.SIGINT)
    loop.add_signal_handler(signal.SIGINT, got.set)  # left to run()'s close

aio.run(main())
print("after run, default", signal.getsignal(signal.SIGINT) is
      signal.default_int_handler, flush=True)
print("KeyboardInterrupt", interrupted(), flush=True)
"""


def test_sigint_handler_then_ctrl_c_as_before(aio):
    r = subprocess.run(
        [sys.executable, "-c", SIGINT_CHILD, aio.__name__],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == [
        "handler ran",
        "after run, default True",
        "KeyboardInterrupt True",
    ]


def test_signal_wait_returns_at_the_next_arrival_then_puts_back():
    mine = []
    before = signal.signal(signal.SIGUSR1, lambda s, f: mine.append(s))

    async def main():
        waiter = uvasync.create_task(uvasync.signal_wait(signal.SIGUSR1))
        await uvasync.sleep(0.01)
        assert not waiter.done()
        os.kill(os.getpid(), signal.SIGUSR1)
        got = await uvasync.wait_for(waiter, 5)
        # a wait given up leaves nothing behind either
        with pytest.raises(TimeoutError):
            await uvasync.wait_for(uvasync.signal_wait(signal.SIGUSR1), 0.02)
        return got

    try:
        assert uvasync.run(main()) == signal.SIGUSR1
        assert mine == []  # the wait took it, not Python's handler
        os.kill(os.getpid(), signal.SIGUSR1)
        for _ in range(100):  # Python's handler is back
            if mine:
                break
            threading.Event().wait(0.01)
        assert mine == [signal.SIGUSR1]
    finally:
        signal.signal(signal.SIGUSR1, before)
    coro = uvasync.signal_wait(signal.SIGUSR1)
    with pytest.raises(RuntimeError):  # no running loop
        coro.send(None)


SIGPIPE_CHILD = r"""
import os, signal, uvasync
loop = uvasync.new_event_loop()
loop.add_signal_handler(signal.SIGPIPE, lambda: None)
loop.remove_signal_handler(signal.SIGPIPE)
loop.close()
r, w = os.pipe()
os.close(r)
try:
    os.write(w, b"x")
except BrokenPipeError:
    print("BrokenPipeError")
"""


def test_remove_puts_back_python_ignoring_sigpipe():
    # Python ignores SIGPIPE (a write then fails with EPIPE); the core
    # resets it to SIG_DFL when its watcher closes, which would kill the
    # process at its next write to a closed pipe (asyncio's
    # remove_signal_handler sets SIG_DFL there)
    r = subprocess.run(
        [sys.executable, "-c", SIGPIPE_CHILD],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (r.returncode, r.stdout) == (0, "BrokenPipeError\n"), r.stderr
