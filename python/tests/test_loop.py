"""The loop: call_soon/call_later/call_at, run_forever/stop,
run_until_complete, time, the exception handler (unretrieved task errors,
failing callbacks), closing (pending tasks reported), and the loop
functions get_event_loop/new_event_loop/get_running_loop."""

import gc
import logging

import pytest

import uvasync


@pytest.fixture
def loop(aio):
    """A fresh loop of the implementation under test, closed afterwards."""
    lp = aio.new_event_loop()
    yield lp
    lp.close()
    aio.set_event_loop(None)


def _stop_soon(loop, delay=0.05):
    return loop.call_later(delay, loop.stop)


def test_call_soon_runs_callbacks_in_fifo_order_with_their_args(loop):
    calls = []
    for i in range(5):
        loop.call_soon(calls.append, i)
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert calls == [0, 1, 2, 3, 4]


def test_a_cancelled_handle_does_not_run(loop):
    calls = []
    handle = loop.call_soon(calls.append, "cancelled")
    loop.call_soon(calls.append, "kept")
    handle.cancel()
    assert handle.cancelled()
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert calls == ["kept"]


def test_call_later_runs_in_delay_order_and_can_be_cancelled(loop):
    calls = []
    loop.call_later(0.03, calls.append, "30ms")
    loop.call_later(0.01, calls.append, "10ms")
    dropped = loop.call_later(0.02, calls.append, "cancelled")
    loop.call_later(0.0, calls.append, "0ms")
    dropped.cancel()
    _stop_soon(loop, 0.05)
    start = loop.time()
    loop.run_forever()
    assert loop.time() - start >= 0.05
    assert calls == ["0ms", "10ms", "30ms"]


def test_call_at_uses_the_loop_clock(loop):
    calls = []
    now = loop.time()
    handle = loop.call_at(now + 0.02, lambda: calls.append(loop.time()))
    assert handle.when() == pytest.approx(now + 0.02)
    loop.call_at(now + 0.04, loop.stop)
    loop.run_forever()
    assert len(calls) == 1 and calls[0] >= now + 0.02


def test_time_is_monotonic(loop):
    a = loop.time()
    b = loop.time()
    assert b >= a


def test_run_forever_stays_up_without_work_until_stop(loop):
    ticks = []

    def tick(n):
        ticks.append(n)
        if n < 3:
            loop.call_later(0.005, tick, n + 1)
        else:
            loop.stop()

    loop.call_soon(tick, 0)
    loop.run_forever()
    assert ticks == [0, 1, 2, 3]
    assert not loop.is_running()


def test_stop_from_a_task_ends_run_forever(loop, aio):
    async def stopper():
        await aio.sleep(0.01)
        loop.stop()

    loop.create_task(stopper())
    loop.run_forever()
    assert not loop.is_running()


def test_run_until_complete_returns_the_result_or_raises(loop, aio):
    async def ok():
        await aio.sleep(0)
        return "ok"

    async def bad():
        await aio.sleep(0)
        raise LookupError("bad")

    assert loop.run_until_complete(ok()) == "ok"
    with pytest.raises(LookupError):
        loop.run_until_complete(bad())
    task = loop.create_task(ok())
    assert loop.run_until_complete(task) == "ok"
    assert loop.run_until_complete(task) == "ok"  # already done


def test_is_running_and_is_closed(aio):
    loop = aio.new_event_loop()
    try:
        seen = []

        async def probe():
            seen.append(loop.is_running())
            seen.append(aio.get_running_loop() is loop)

        assert not loop.is_running()
        loop.run_until_complete(probe())
        assert seen == [True, True]
        assert not loop.is_closed()
    finally:
        loop.close()
        aio.set_event_loop(None)
    assert loop.is_closed()
    loop.close()  # twice is fine
    coro = probe()
    with pytest.raises(RuntimeError):
        loop.run_until_complete(coro)
    coro.close()


def test_run_inside_a_running_loop_is_refused(aio):
    async def inner():
        pass

    async def main():
        coro = inner()
        try:
            with pytest.raises(RuntimeError):
                aio.run(coro)
        finally:
            coro.close()

    aio.run(main())


def test_get_running_loop_outside_a_loop_is_an_error(aio):
    with pytest.raises(RuntimeError):
        aio.get_running_loop()


def test_run_cancels_the_tasks_left_when_main_returns(aio):
    events = []

    async def leftover():
        try:
            await aio.sleep(10)
        finally:
            events.append("leftover cleaned up")

    async def main():
        aio.create_task(leftover())
        await aio.sleep(0)
        return "main done"

    assert aio.run(main()) == "main done"
    assert events == ["leftover cleaned up"]


def test_keyboard_interrupt_in_a_task_comes_out_of_run(aio):
    async def main():
        await aio.sleep(0)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        aio.run(main())


# -- the exception handler ------------------------------------------------


def test_an_exception_in_a_callback_goes_to_the_handler(loop):
    contexts = []
    loop.set_exception_handler(lambda lp, ctx: contexts.append((lp, ctx)))
    assert loop.get_exception_handler() is not None

    def failing():
        raise ValueError("in callback")

    loop.call_soon(failing)
    loop.call_soon(loop.stop)
    loop.run_forever()  # the loop goes on after the failure
    assert len(contexts) == 1
    lp, ctx = contexts[0]
    assert lp is loop
    assert isinstance(ctx["exception"], ValueError)
    assert "message" in ctx


def test_an_unretrieved_task_exception_goes_to_the_handler(aio):
    contexts = []

    async def failing():
        raise ValueError("nobody looks at me")

    async def main():
        aio.get_running_loop().set_exception_handler(
            lambda lp, ctx: contexts.append(ctx)
        )
        task = aio.create_task(failing())
        await aio.sleep(0.01)
        assert task.done()
        del task
        gc.collect()

    aio.run(main())
    assert len(contexts) == 1
    assert isinstance(contexts[0]["exception"], ValueError)
    assert contexts[0]["message"] == "Task exception was never retrieved"


def test_an_unretrieved_task_exception_is_reported_after_the_loop_closed(aio):
    loop = aio.new_event_loop()
    contexts = []
    loop.set_exception_handler(lambda lp, ctx: contexts.append(ctx))

    async def failing():
        raise ValueError("found after close")

    task = loop.create_task(failing())
    loop.run_until_complete(aio.sleep(0.01))
    loop.close()
    aio.set_event_loop(None)
    assert contexts == []
    del task
    gc.collect()
    assert [c["message"] for c in contexts] == [
        "Task exception was never retrieved"
    ]


def test_a_retrieved_task_exception_is_not_reported(aio):
    contexts = []

    async def failing():
        raise ValueError("looked at")

    async def main():
        aio.get_running_loop().set_exception_handler(
            lambda lp, ctx: contexts.append(ctx)
        )
        task = aio.create_task(failing())
        await aio.sleep(0.01)
        assert isinstance(task.exception(), ValueError)
        del task
        gc.collect()

    aio.run(main())
    assert contexts == []


def test_an_exception_in_a_done_callback_goes_to_the_handler(aio):
    contexts = []

    def failing(task):
        raise ValueError("in done callback")

    async def main():
        aio.get_running_loop().set_exception_handler(
            lambda lp, ctx: contexts.append(ctx)
        )
        task = aio.create_task(aio.sleep(0))
        task.add_done_callback(failing)
        await task
        await aio.sleep(0.01)
        return "went on"

    assert aio.run(main()) == "went on"
    assert [type(c["exception"]) for c in contexts] == [ValueError]


def test_an_exception_in_a_connection_callback_goes_to_the_handler(aio):
    contexts = []
    kept = []

    def callback(reader, writer):
        kept.append(writer)
        if len(kept) == 1:
            raise ValueError("in connection callback")
        writer.write(b"second one served\n")

    async def main():
        aio.get_running_loop().set_exception_handler(
            lambda lp, ctx: contexts.append(ctx)
        )
        server = await aio.start_server(callback, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        first = await aio.open_connection("127.0.0.1", port)
        while not contexts:
            await aio.sleep(0.005)
        reader, writer = await aio.open_connection("127.0.0.1", port)
        line = await aio.wait_for(reader.readline(), 5)
        for w in [first[1], writer] + kept:
            w.close()
        server.close()
        await server.wait_closed()
        return line

    assert aio.run(main()) == b"second one served\n"
    assert isinstance(contexts[0]["exception"], ValueError)


def test_keyboard_interrupt_in_a_callback_comes_out_of_run_forever(loop):
    def interrupt():
        raise KeyboardInterrupt

    loop.call_soon(interrupt)
    loop.call_later(5, loop.stop)  # bound, should the interrupt be lost
    with pytest.raises(KeyboardInterrupt):
        loop.run_forever()


def test_the_default_handler_logs_at_error_level(loop, caplog):
    with caplog.at_level(logging.ERROR):
        loop.call_exception_handler(
            {"message": "something odd", "exception": RuntimeError("odd")}
        )
    assert any("something odd" in r.getMessage() for r in caplog.records)


def test_default_exception_handler_is_callable_from_a_custom_one(loop, caplog):
    def handler(lp, ctx):
        lp.default_exception_handler(ctx)

    loop.set_exception_handler(handler)
    with caplog.at_level(logging.ERROR):
        loop.call_exception_handler({"message": "passed on"})
    assert any("passed on" in r.getMessage() for r in caplog.records)


def test_an_exception_handler_that_fails_is_logged_not_raised(loop, caplog):
    def broken(lp, ctx):
        raise RuntimeError("handler is broken")

    loop.set_exception_handler(broken)
    with caplog.at_level(logging.ERROR):
        loop.call_exception_handler({"message": "original"})
    assert caplog.records


def test_set_exception_handler_wants_a_callable(loop):
    with pytest.raises(TypeError):
        loop.set_exception_handler(42)
    loop.set_exception_handler(None)
    assert loop.get_exception_handler() is None


# -- closing, and the loop functions (uvasync's semantics) ----------------------


def test_closing_a_loop_with_pending_tasks_reports_and_cancels_them():
    loop = uvasync.new_event_loop()
    contexts = []
    events = []
    loop.set_exception_handler(lambda lp, ctx: contexts.append(ctx))

    async def forever():
        try:
            await uvasync.sleep(10)
        finally:
            events.append("cleanup ran")

    task = loop.create_task(forever())
    loop.run_until_complete(uvasync.sleep(0.001))
    loop.close()
    assert [c["message"] for c in contexts] == [
        "Task was destroyed but it is pending!"
    ]
    assert contexts[0]["task"] is task
    assert events == ["cleanup ran"]
    assert task.cancelled()


def test_new_event_loop_becomes_the_current_loop():
    first = uvasync.new_event_loop()
    try:
        assert uvasync.get_event_loop() is first
        second = uvasync.new_event_loop()
        assert second is not first
        assert uvasync.get_event_loop() is second
        second.close()
        # a closed current loop is replaced on the next get_event_loop
        third = uvasync.get_event_loop()
        assert third is not second and not third.is_closed()
        third.close()
    finally:
        first.close()


def test_get_event_loop_inside_a_task_is_the_running_loop():
    async def main():
        return uvasync.get_event_loop() is uvasync.get_running_loop()

    assert uvasync.run(main()) is True


def test_run_closes_its_loop():
    loops = []

    async def main():
        loops.append(uvasync.get_running_loop())

    uvasync.run(main())
    assert loops[0].is_closed()


def test_run_until_complete_takes_a_future(loop):
    future = loop.create_future()
    loop.call_soon(future.set_result, "set by a callback")
    assert loop.run_until_complete(future) == "set by a callback"


def test_call_later_with_a_negative_delay_runs_soon(loop):
    calls = []
    loop.call_soon(calls.append, "soon")
    loop.call_later(-1, calls.append, "negative delay")
    loop.call_later(0.01, loop.stop)
    loop.run_forever()
    assert calls == ["soon", "negative delay"]
