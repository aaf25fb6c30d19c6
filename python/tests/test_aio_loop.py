"""uvasync.EventLoop, the asyncio event loop on the core: asyncio programs
run on it as on asyncio's own loop (which every scenario here runs on too,
as the reference): running and stopping, callbacks and timers, futures
and tasks, executors, signals, async generators, errors, debug mode, the
ways to install it, and native uvasync tasks on the same loop."""

import asyncio
import sys

import pytest

import uvasync

LOOPS = [
    pytest.param(uvasync.EventLoop, id="uvasync"),
    pytest.param(asyncio.SelectorEventLoop, id="asyncio"),
]


@pytest.fixture(params=LOOPS)
def new_loop(request):
    """Makes loops of the class under test (closed at the end)."""
    made = []

    def make():
        loop = request.param()
        made.append(loop)
        return loop

    yield make
    for loop in made:
        loop.close()


@pytest.fixture
def loop(new_loop):
    return new_loop()


def test_asyncio_programs_run(loop):
    async def child(i):
        await asyncio.sleep(0.001 * i)
        return i

    async def main():
        assert asyncio.get_running_loop() is loop
        results = await asyncio.gather(*(child(i) for i in range(5)))
        fut = loop.create_future()
        loop.call_soon(fut.set_result, "soon")
        task = asyncio.create_task(child(1))
        assert asyncio.current_task() is not None
        return results, await fut, await task

    assert loop.run_until_complete(main()) == ([0, 1, 2, 3, 4], "soon", 1)


@pytest.mark.skipif(sys.version_info < (3, 11), reason="asyncio.timeout")
def test_asyncio_timeout_expires(loop):
    async def main():
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.01):
                await asyncio.sleep(10)
        return asyncio.current_task().cancelling()

    assert loop.run_until_complete(main()) == 0


def test_call_later_never_runs_early(loop):
    seen = []

    def at(h):
        seen.append((loop.time(), h.when()))

    handles = []
    for delay in (0.0005, 0.001, 0.0015, 0.003, 0.01):
        h = loop.call_later(delay, lambda: at(handles[len(seen)]))
        handles.append(h)
    loop.call_later(0.05, loop.stop)
    loop.run_forever()
    assert len(seen) == 5
    for now, when in seen:
        assert now >= when


def test_uvasync_install_makes_asyncio_run_use_the_loop():
    async def main():
        return type(asyncio.get_running_loop())

    old = asyncio.get_event_loop_policy()
    try:
        uvasync.install()
        assert asyncio.run(main()) is uvasync.EventLoop
    finally:
        asyncio.set_event_loop_policy(old)


@pytest.mark.skipif(sys.version_info < (3, 12), reason="loop_factory")
def test_loop_factory():
    async def main():
        return type(asyncio.get_running_loop())

    got = asyncio.run(main(), loop_factory=uvasync.EventLoop)
    assert got is uvasync.EventLoop


# -- running and stopping ----------------------------------------------------


def test_run_until_complete_returns_or_raises(loop):
    async def ok():
        return 7

    async def bad():
        raise ValueError("bad")

    assert loop.run_until_complete(ok()) == 7
    with pytest.raises(ValueError, match="bad"):
        loop.run_until_complete(bad())
    fut = loop.create_future()
    loop.call_soon(fut.set_result, "fut")
    assert loop.run_until_complete(fut) == "fut"


def test_stop_ends_the_pass_callbacks_already_scheduled_still_run(loop):
    order = []

    def first():
        order.append("first")
        loop.call_soon(order.append, "next pass")

    loop.call_soon(first)
    loop.call_soon(loop.stop)
    loop.call_soon(order.append, "same pass")
    loop.run_forever()
    assert order == ["first", "same pass"]
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert order == ["first", "same pass", "next pass"]


def test_stop_before_run_forever_runs_one_pass(loop):
    ran = []
    loop.call_soon(ran.append, 1)
    loop.stop()
    loop.run_forever()
    assert ran == [1]
    assert not loop.is_running()


def test_is_running_and_running_twice(loop, new_loop):
    other = new_loop()
    seen = {}

    async def main():
        seen["running"] = loop.is_running()
        seen["get_running_loop"] = asyncio.get_running_loop() is loop
        coro = asyncio.sleep(0)
        with pytest.raises(RuntimeError, match="another loop"):
            other.run_until_complete(coro)
        coro.close()
        # last: asyncio 3.13.0's own loop forgets it runs after this
        with pytest.raises(RuntimeError, match="already running"):
            loop.run_forever()

    assert not loop.is_running()
    loop.run_until_complete(main())
    assert seen == {"running": True, "get_running_loop": True}
    assert not loop.is_running()
    with pytest.raises(RuntimeError):
        asyncio.get_running_loop()


def test_a_loop_made_in_one_thread_runs_in_another(loop):
    import threading

    results = []
    fut = loop.create_future()
    loop.call_soon(fut.set_result, "scheduled before")
    loop.call_later(0.001, results.append, "timer")

    def run():
        results.append(loop.run_until_complete(fut))
        results.append(loop.run_until_complete(asyncio.sleep(0.001, "slept")))
        loop.call_soon(results.append, "after")

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    loop.call_soon(loop.stop)  # back in this thread
    loop.run_forever()
    assert sorted(results) == ["after", "scheduled before", "slept", "timer"]
    assert results[-1] == "after"


def test_stopped_before_the_future_completed(loop):
    loop.call_soon(loop.stop)
    with pytest.raises(RuntimeError, match="before Future completed"):
        loop.run_until_complete(loop.create_future())


def test_close_is_idempotent_refused_while_running_and_final(new_loop):
    loop = new_loop()
    ran = []

    async def main():
        with pytest.raises(RuntimeError, match="running event loop"):
            loop.close()

    loop.run_until_complete(main())
    loop.call_soon(ran.append, "dropped")
    loop.call_later(0.001, ran.append, "dropped too")
    loop.close()
    loop.close()
    assert loop.is_closed()
    assert ran == []
    coro = asyncio.sleep(0)
    for call in (
        lambda: loop.call_soon(ran.append, 1),
        lambda: loop.call_later(1, ran.append, 1),
        lambda: loop.call_soon_threadsafe(ran.append, 1),
        loop.run_forever,
        lambda: loop.create_task(coro),
    ):
        with pytest.raises(RuntimeError, match="closed"):
            call()
    coro.close()


def test_close_shuts_the_default_executor_down(new_loop):
    import concurrent.futures

    loop = new_loop()
    executor = concurrent.futures.ThreadPoolExecutor(1)
    loop.set_default_executor(executor)
    loop.close()
    with pytest.raises(RuntimeError):
        executor.submit(print)


def test_keyboard_interrupt_in_a_callback_comes_out_of_run_forever(loop):
    def interrupt():
        raise KeyboardInterrupt

    loop.call_soon(interrupt)
    with pytest.raises(KeyboardInterrupt):
        loop.run_forever()
    assert not loop.is_running()
    assert loop.run_until_complete(asyncio.sleep(0, "again")) == "again"


def test_ctrl_c_stops_run_forever(loop):
    import os
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signals go to the main thread")
    timer = threading.Timer(0.05, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            loop.run_until_complete(asyncio.sleep(5))
    finally:
        timer.join()


# -- callbacks and timers ---------------------------------------------------


def test_handles_are_asyncios(loop):
    h = loop.call_soon(print)
    t = loop.call_later(10, print)
    assert isinstance(h, asyncio.Handle)
    assert isinstance(t, asyncio.TimerHandle)
    assert "print" in repr(h)
    assert t.when() == pytest.approx(loop.time() + 10, abs=0.5)
    assert not h.cancelled()
    h.cancel()
    t.cancel()
    assert h.cancelled() and t.cancelled()
    loop.call_soon(loop.stop)
    loop.run_forever()


@pytest.mark.skipif(sys.version_info < (3, 12), reason="Handle.get_context")
def test_handle_get_context(loop):
    import contextvars

    ctx = contextvars.copy_context()
    assert loop.call_soon(print, context=ctx).get_context() is ctx
    assert loop.call_later(1, print, context=ctx).get_context() is ctx
    loop.close()


def test_handles_in_cycles_are_collected_and_weakly_referable(loop):
    import gc
    import weakref

    class Owner:
        def run(self):
            pass

    owner = Owner()
    owner.soon = loop.call_soon(owner.run)  # owner -> handle -> owner.run
    owner.later = loop.call_later(0, owner.run)
    refs = [
        weakref.ref(owner),
        weakref.ref(owner.soon),
        weakref.ref(owner.later),
    ]
    loop.call_later(0.005, loop.stop)
    loop.run_forever()
    del owner
    gc.collect()
    assert [r() for r in refs] == [None, None, None]


def test_callbacks_run_in_order_and_in_their_context(loop):
    import contextvars

    var = contextvars.ContextVar("var", default="unset")
    ctx = contextvars.copy_context()
    ctx.run(var.set, "ctx")
    seen = []
    loop.call_soon(seen.append, 1)
    loop.call_soon(lambda: seen.append(var.get()), context=ctx)
    loop.call_soon(seen.append, 3)
    loop.call_later(0.002, seen.append, "late")
    loop.call_later(0.001, seen.append, "early")
    loop.call_at(
        loop.time() + 0.003, lambda: seen.append(var.get()), context=ctx
    )
    loop.call_later(0.02, loop.stop)
    loop.run_forever()
    assert seen == [1, "ctx", 3, "early", "late", "ctx"]


def test_a_cancelled_callback_or_timer_does_not_run(loop):
    seen = []
    h = loop.call_soon(seen.append, "soon")
    t = loop.call_later(0.001, seen.append, "later")
    h.cancel()
    t.cancel()
    loop.call_later(0.01, loop.stop)
    loop.run_forever()
    assert seen == []


def test_a_cancelled_timer_releases_its_core_timer():
    loop = uvasync.EventLoop()
    try:
        before = loop._aio_armed()
        handles = [loop.call_later(100, print) for _ in range(100)]
        assert loop._aio_armed() == before + 100
        for h in handles:
            h.cancel()
        assert loop._aio_armed() == before
        fired = loop.call_later(0, print)
        assert loop._aio_armed() == before + 1
        loop.call_later(0.01, loop.stop)
        loop.run_forever()
        assert loop._aio_armed() == before
        assert not fired.cancelled()
    finally:
        loop.close()


def test_callback_errors_go_to_the_exception_handler(loop):
    seen = []

    def fail():
        raise ValueError("boom")

    loop.set_exception_handler(lambda lp, ctx: seen.append((lp, ctx)))
    h = loop.call_soon(fail)
    loop.call_later(0.001, fail)
    loop.call_later(0.01, loop.stop)
    loop.run_forever()
    assert len(seen) == 2
    lp, ctx = seen[0]
    assert lp is loop
    assert ctx["handle"] is h
    assert isinstance(ctx["exception"], ValueError)
    assert ctx["message"].startswith("Exception in callback")


def test_call_soon_threadsafe_wakes_a_waiting_loop(loop):
    import threading
    import time

    def other():
        time.sleep(0.05)
        loop.call_soon_threadsafe(loop.stop)

    thread = threading.Thread(target=other)
    t0 = time.monotonic()
    thread.start()
    loop.run_forever()
    thread.join()
    assert time.monotonic() - t0 < 5


def test_call_soon_threadsafe_from_many_threads(loop):
    import threading

    seen = []
    n = 200

    def other(k):
        for i in range(n):
            loop.call_soon_threadsafe(seen.append, (k, i))

    async def main():
        threads = [threading.Thread(target=other, args=(k,)) for k in range(4)]
        for t in threads:
            t.start()
        while len(seen) < 4 * n:
            await asyncio.sleep(0.001)
        for t in threads:
            t.join()

    loop.run_until_complete(main())
    for k in range(4):
        assert [i for kk, i in seen if kk == k] == list(range(n))


def test_time_is_monotonic_seconds(loop):
    import time

    a = time.monotonic()
    b = loop.time()
    assert a <= b <= time.monotonic()


# -- futures and tasks -------------------------------------------------------


def test_create_future_and_create_task_are_asyncios(loop):
    async def main():
        fut = loop.create_future()
        task = loop.create_task(asyncio.sleep(0, "t"), name="named")
        assert type(fut) is asyncio.Future
        assert isinstance(task, asyncio.Task)
        assert task.get_name() == "named"
        assert task.get_loop() is loop
        assert asyncio.current_task() in asyncio.all_tasks()
        fut.set_result(1)
        return await fut, await task

    assert loop.run_until_complete(main()) == (1, "t")


def test_task_factory(loop):
    made = []

    def factory(lp, coro, **kw):
        made.append(kw)
        return asyncio.Task(coro, loop=lp, **kw)

    assert loop.get_task_factory() is None
    loop.set_task_factory(factory)
    assert loop.get_task_factory() is factory
    task = loop.create_task(asyncio.sleep(0, "x"), name="n")
    assert loop.run_until_complete(task) == "x"
    assert task.get_name() == "n"
    assert made == [{}]
    with pytest.raises(TypeError):
        loop.set_task_factory(1)
    loop.set_task_factory(None)


@pytest.mark.skipif(sys.version_info < (3, 12), reason="eager tasks")
def test_eager_task_factory(loop):
    async def child(i):
        return i

    async def main():
        loop.set_task_factory(asyncio.eager_task_factory)
        task = asyncio.create_task(child(1))
        assert task.done()  # its first step ran inside create_task
        return task.result(), await asyncio.gather(child(2), child(3))

    assert loop.run_until_complete(main()) == (1, [2, 3])


@pytest.mark.skipif(sys.version_info < (3, 11), reason="context=")
def test_create_task_in_a_context(loop):
    import contextvars

    var = contextvars.ContextVar("var", default="unset")
    ctx = contextvars.copy_context()
    ctx.run(var.set, "ctx")

    async def read():
        return var.get()

    assert (
        loop.run_until_complete(loop.create_task(read(), context=ctx)) == "ctx"
    )


@pytest.mark.skipif(sys.version_info < (3, 11), reason="TaskGroup")
def test_taskgroups_and_timeouts(loop):
    async def child(i):
        await asyncio.sleep(0.001)
        return i

    async def main():
        async with asyncio.TaskGroup() as tg:
            tasks = [tg.create_task(child(i)) for i in range(10)]
        async with asyncio.timeout(1):
            await asyncio.sleep(0.001)
        return [t.result() for t in tasks]

    assert loop.run_until_complete(main()) == list(range(10))


# -- executors and the resolver ----------------------------------------------


def test_run_in_executor(loop):
    import concurrent.futures
    import threading

    def where(x):
        return threading.get_ident(), x

    def fail():
        raise KeyError("k")

    def cancelled():
        raise concurrent.futures.CancelledError

    async def main():
        tid, x = await loop.run_in_executor(None, where, 1)
        assert tid != threading.get_ident() and x == 1
        with pytest.raises(KeyError):
            await loop.run_in_executor(None, fail)
        with pytest.raises(asyncio.CancelledError):  # not concurrent's
            await loop.run_in_executor(None, cancelled)
        with concurrent.futures.ThreadPoolExecutor(1) as ex:
            assert (await loop.run_in_executor(ex, where, 2))[1] == 2
        assert await asyncio.to_thread(sum, [1, 2]) == 3
        await loop.shutdown_default_executor()
        with pytest.raises(RuntimeError, match="shutdown"):
            loop.run_in_executor(None, where, 3)

    loop.run_until_complete(main())


def test_set_default_executor(loop):
    import concurrent.futures
    import threading

    names = []
    ex = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="mine")
    if sys.version_info >= (3, 11):  # before: a DeprecationWarning
        with pytest.raises(TypeError):
            loop.set_default_executor(object())
    loop.set_default_executor(ex)

    def name():
        names.append(threading.current_thread().name)

    loop.run_until_complete(loop.run_in_executor(None, name))
    loop.run_until_complete(loop.shutdown_default_executor())
    assert names[0].startswith("mine")


def test_getaddrinfo_and_getnameinfo_as_socket_gives_them(loop):
    import socket

    got = loop.run_until_complete(
        loop.getaddrinfo("127.0.0.1", 80, type=socket.SOCK_STREAM)
    )
    assert got == socket.getaddrinfo("127.0.0.1", 80, type=socket.SOCK_STREAM)
    info = loop.run_until_complete(
        loop.getnameinfo(("127.0.0.1", 80), socket.NI_NUMERICHOST)
    )
    assert info == socket.getnameinfo(("127.0.0.1", 80), socket.NI_NUMERICHOST)
    with pytest.raises(socket.gaierror):
        loop.run_until_complete(loop.getaddrinfo("no such host.invalid", 80))


# -- signals -------------------------------------------------------------------


def test_add_signal_handler(loop):
    import os
    import signal

    seen = []

    async def coro():
        pass

    loop.add_signal_handler(signal.SIGUSR1, seen.append, "usr1")

    async def main():
        os.kill(os.getpid(), signal.SIGUSR1)
        for _ in range(100):
            if seen:
                break
            await asyncio.sleep(0.01)

    loop.run_until_complete(main())
    assert seen == ["usr1"]
    assert loop.remove_signal_handler(signal.SIGUSR1)
    assert not loop.remove_signal_handler(signal.SIGUSR1)
    with pytest.raises(TypeError):
        loop.add_signal_handler(signal.SIGUSR1, coro)
    with pytest.raises(ValueError):
        loop.add_signal_handler(100000, print)
    with pytest.raises(RuntimeError):
        loop.add_signal_handler(signal.SIGKILL, print)


# -- asynchronous generators ---------------------------------------------------


def test_shutdown_asyncgens_closes_suspended_generators(loop):
    closed = []

    async def agen():
        try:
            yield 1
            yield 2
        finally:
            closed.append("closed")

    async def main():
        gen = agen()
        assert await gen.__anext__() == 1
        return gen

    gen = loop.run_until_complete(main())
    assert closed == []
    loop.run_until_complete(loop.shutdown_asyncgens())
    assert closed == ["closed"]
    del gen


def test_asyncio_run_finalizes_async_generators():
    closed = []

    async def agen():
        try:
            yield 1
            yield 2
        finally:
            closed.append("closed")

    async def main():
        async for _ in agen():
            break

    with (
        asyncio.Runner(loop_factory=uvasync.EventLoop)
        if sys.version_info
        >= (
            3,
            12,
        )
        else _policy() as runner
    ):
        runner.run(main())
    assert closed == ["closed"]


class _policy:
    """asyncio.run on uvasync's policy, for Pythons without loop_factory."""

    def __enter__(self):
        self.old = asyncio.get_event_loop_policy()
        uvasync.install()
        return self

    def run(self, coro):
        return asyncio.run(coro)

    def __exit__(self, *exc):
        asyncio.set_event_loop_policy(self.old)


# -- errors and debug mode -----------------------------------------------------


def test_default_exception_handler_logs_to_the_asyncio_logger(loop, caplog):
    def fail():
        raise ValueError("boom")

    loop.call_soon(fail)
    loop.call_soon(loop.stop)
    with caplog.at_level("ERROR", logger="asyncio"):
        loop.run_forever()
    (record,) = [r for r in caplog.records if r.name == "asyncio"]
    assert record.getMessage().startswith("Exception in callback")
    assert "handle: <Handle" in record.getMessage()
    assert record.exc_info[0] is ValueError


def test_exception_handler_api(loop, caplog):
    assert loop.get_exception_handler() is None
    with pytest.raises(TypeError):
        loop.set_exception_handler(1)

    def broken(lp, ctx):
        raise RuntimeError("handler")

    loop.set_exception_handler(broken)
    assert loop.get_exception_handler() is broken
    with caplog.at_level("ERROR", logger="asyncio"):
        loop.call_exception_handler({"message": "m"})
    assert "Unhandled error in exception handler" in caplog.text
    loop.set_exception_handler(None)
    caplog.clear()
    with caplog.at_level("ERROR", logger="asyncio"):
        loop.call_exception_handler({"message": "plain", "x": 1})
    assert "plain" in caplog.text and "x: 1" in caplog.text


def test_debug_mode_warns_of_slow_callbacks(loop, caplog):
    import time

    assert not loop.get_debug()
    loop.set_debug(True)
    assert loop.get_debug()
    loop.slow_callback_duration = 0.01
    loop.call_soon(time.sleep, 0.03)
    loop.call_later(0.001, time.sleep, 0.03)
    loop.call_later(0.01, loop.stop)
    with caplog.at_level("WARNING", logger="asyncio"):
        loop.run_forever()
    # (on a loaded machine other callbacks may be slow too: only these)
    slow = [
        r.getMessage() for r in caplog.records if "sleep(" in r.getMessage()
    ]
    assert len(slow) == 2
    assert slow[0].startswith("Executing <Handle")
    assert slow[1].startswith("Executing <TimerHandle")

    async def slow_step():
        time.sleep(0.03)

    caplog.clear()
    with caplog.at_level("WARNING", logger="asyncio"):
        loop.run_until_complete(slow_step())
    slow = [
        r.getMessage() for r in caplog.records if "slow_step" in r.getMessage()
    ]
    assert len(slow) == 1
    assert slow[0].startswith("Executing <Task")


def test_debug_mode_checks_callbacks_and_threads(loop):
    import threading

    async def coro():
        pass

    loop.set_debug(True)
    with pytest.raises(TypeError, match="coroutines cannot be used"):
        loop.call_soon(coro)
    with pytest.raises(TypeError, match="callable"):
        loop.call_later(1, 1)
    errors = []

    async def main():
        def other():
            try:
                loop.call_soon(print)
            except RuntimeError as e:
                errors.append(e)

        t = threading.Thread(target=other)
        t.start()
        t.join()

    loop.run_until_complete(main())
    assert len(errors) == 1 and "thread" in str(errors[0])


def test_debug_mode_from_the_environment():
    import subprocess

    code = (
        "import uvasync, asyncio; loop = uvasync.EventLoop(); "
        "print(loop.get_debug()); loop.close()"
    )
    for env, flags, want in (
        ({"PYTHONASYNCIODEBUG": "1"}, [], "True"),
        ({}, ["-X", "dev"], "True"),
        ({}, [], "False"),
    ):
        import os

        e = dict(os.environ)
        e.pop("PYTHONASYNCIODEBUG", None)
        e.update(env)
        out = subprocess.run(
            [sys.executable, *flags, "-c", code],
            env=e,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert out.stdout.strip() == want, out.stderr


# -- installing ----------------------------------------------------------------


def test_policy_and_new_asyncio_loop():
    policy = uvasync.EventLoopPolicy()
    loop = policy.new_event_loop()
    assert isinstance(loop, uvasync.EventLoop)
    assert isinstance(loop, asyncio.AbstractEventLoop)
    loop.close()
    loop = uvasync.new_asyncio_loop()
    assert isinstance(loop, uvasync.EventLoop)
    loop.close()


@pytest.mark.skipif(sys.version_info < (3, 12), reason="loop_factory")
def test_runner_with_loop_factory():
    async def main():
        return asyncio.get_running_loop()

    with asyncio.Runner(loop_factory=uvasync.EventLoop) as runner:
        first = runner.run(main())
        assert runner.run(main()) is first
        assert isinstance(first, uvasync.EventLoop)
    assert first.is_closed()


# -- native uvasync tasks on the same loop ---------------------------------------


def test_native_tasks_run_on_the_asyncio_loop():
    async def native(x):
        await uvasync.sleep(0.001)
        return x

    async def main():
        loop = asyncio.get_running_loop()
        assert uvasync.get_running_loop() is loop
        task = uvasync.create_task(native("n"))
        assert isinstance(task, uvasync.Task)
        # an asyncio Task awaits a native one; gather takes it too
        assert await task == "n"
        return await asyncio.gather(
            uvasync.create_task(native(1)), asyncio.sleep(0.001, 2)
        )

    loop = uvasync.EventLoop()
    try:
        assert loop.run_until_complete(main()) == [1, 2]
    finally:
        loop.close()


def test_a_native_task_awaits_asyncio_futures_and_tasks():
    async def native(loop):
        fut = loop.create_future()
        loop.call_later(0.001, fut.set_result, "fut")
        task = asyncio.ensure_future(asyncio.sleep(0.001, "task"))
        return await fut, await task, await asyncio.sleep(0, "sleep")

    async def main():
        loop = asyncio.get_running_loop()
        return await uvasync.create_task(native(loop))

    loop = uvasync.EventLoop()
    try:
        assert loop.run_until_complete(main()) == ("fut", "task", "sleep")
    finally:
        loop.close()


def test_cancellation_crosses_between_native_and_asyncio_tasks():
    async def main():
        loop = asyncio.get_running_loop()
        # an asyncio wait_for cancels the native task it times out on
        native = uvasync.create_task(uvasync.sleep(10))
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(native, 0.01)
        assert native.cancelled()
        # cancelling a native task cancels the asyncio Future it awaits
        fut = loop.create_future()

        async def waits():
            return await fut

        task = uvasync.create_task(waits())
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert fut.cancelled()

    loop = uvasync.EventLoop()
    try:
        loop.run_until_complete(main())
    finally:
        loop.close()


def test_a_native_awaitable_in_an_asyncio_task_fails_clearly():
    async def main():
        with pytest.raises(RuntimeError, match="inside a uvasync task"):
            await uvasync.sleep(0.01)
        with pytest.raises(RuntimeError, match="inside a uvasync task"):
            await uvasync.Event().wait()

    loop = uvasync.EventLoop()
    try:
        loop.run_until_complete(main())
    finally:
        loop.close()
