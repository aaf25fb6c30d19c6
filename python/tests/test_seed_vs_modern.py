"""Where the seed (uasyncio) and modern asyncio (uvasync, checked against
CPython's asyncio through the `aio` fixture) differ, both sides: the
docs/migrating.md's table states these."""

import sys

import pytest

import uasyncio
import uvasync

from seedlib import loop  # noqa: F401 (fixture)


def seed_pair(loop, handler):
    """A seed client connection to a seed server running handler."""
    from seedlib import free_port

    port = free_port()
    loop.create_task(uasyncio.start_server(handler, "127.0.0.1", port))
    loop.run_until_complete(uasyncio.sleep_ms(5))
    return loop.run_until_complete(uasyncio.open_connection("127.0.0.1", port))


async def modern_pair(aio, handler):
    server = await aio.start_server(handler, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    reader, writer = await aio.open_connection("127.0.0.1", port)
    return server, reader, writer


# --------------------------------------------------------------------------
# read(-1)
# --------------------------------------------------------------------------


def test_seed_read_minus_1_returns_what_has_arrived(loop):
    got = []

    async def handler(reader, writer):
        await writer.awrite(b"part")
        while not got:  # the connection stays open until the client read
            await uasyncio.sleep_ms(1)
        await writer.awrite(b"more")
        await writer.aclose()

    reader, writer = seed_pair(loop, handler)
    got.append(loop.run_until_complete(reader.read(-1)))
    assert got == [b"part"]
    assert loop.run_until_complete(reader.read(-1)) == b"more"


def test_modern_read_minus_1_reads_to_the_end_of_stream(aio):
    async def handler(reader, writer):
        writer.write(b"part")
        await writer.drain()
        await aio.sleep(0.05)
        writer.write(b"more")
        writer.close()

    async def main():
        server, reader, writer = await modern_pair(aio, handler)
        data = await reader.read(-1)
        writer.close()
        server.close()
        return data

    assert aio.run(main()) == b"partmore"


# --------------------------------------------------------------------------
# readexactly at the end of the stream
# --------------------------------------------------------------------------


def test_seed_readexactly_at_eof_returns_the_short_data(loop):
    async def handler(reader, writer):
        await writer.awrite(b"abc")
        await writer.aclose()

    reader, writer = seed_pair(loop, handler)
    assert loop.run_until_complete(reader.readexactly(10)) == b"abc"


def test_modern_readexactly_at_eof_raises_incomplete_read(aio):
    async def handler(reader, writer):
        writer.write(b"abc")
        writer.close()

    async def main():
        server, reader, writer = await modern_pair(aio, handler)
        try:
            await reader.readexactly(10)
        except aio.IncompleteReadError as e:
            return e.partial, e.expected
        finally:
            writer.close()
            server.close()

    assert aio.run(main()) == (b"abc", 10)


# --------------------------------------------------------------------------
# The TimeoutError class, and how wait_for runs its coroutine
# --------------------------------------------------------------------------


def test_seed_timeout_error_is_a_cancelled_error_thrown_into_the_coroutine(
    loop,
):
    seen = {}

    def inner():
        seen["task"] = uvasync.current_task()
        try:
            yield from uasyncio.sleep(1)
        except uasyncio.CancelledError as e:
            seen["inner got"] = type(e)
            raise

    def outer():
        seen["outer task"] = uvasync.current_task()
        try:
            yield from uasyncio.wait_for(inner(), 0.01)
        except uasyncio.TimeoutError as e:
            seen["outer got"] = type(e)

    loop.run_until_complete(outer())
    assert issubclass(uasyncio.TimeoutError, uasyncio.CancelledError)
    assert not issubclass(uasyncio.TimeoutError, TimeoutError)
    assert seen["inner got"] is uasyncio.TimeoutError
    assert seen["outer got"] is uasyncio.TimeoutError
    assert seen["task"] is seen["outer task"]  # same task: run inline


def test_modern_timeout_error_is_the_builtin_and_the_coroutine_is_a_task(aio):
    seen = {}

    async def inner():
        seen["task"] = aio.current_task()
        try:
            await aio.sleep(1)
        except aio.CancelledError as e:
            seen["inner got"] = type(e)
            raise

    async def outer():
        seen["outer task"] = aio.current_task()
        try:
            await aio.wait_for(inner(), 0.01)
        except aio.TimeoutError as e:
            seen["outer got"] = type(e)

    aio.run(outer())
    # uvasync's TimeoutError is the built-in one on every Python; asyncio's
    # became it in 3.11 (before, asyncio.TimeoutError was a class apart).
    if aio is uvasync or sys.version_info >= (3, 11):
        assert aio.TimeoutError is TimeoutError
    assert not issubclass(aio.TimeoutError, aio.CancelledError)
    assert seen["inner got"] is aio.CancelledError
    assert seen["outer got"] is aio.TimeoutError
    if aio is uvasync:  # CPython >= 3.12 runs it inline too
        assert seen["task"] is not seen["outer task"]


def test_seed_cancelled_error_is_an_exception_modern_one_is_not():
    assert issubclass(uasyncio.CancelledError, Exception)
    assert not issubclass(uvasync.CancelledError, Exception)
    # a seed CancelledError still counts as a cancellation for uvasync
    assert issubclass(uasyncio.CancelledError, uvasync.CancelledError)


# --------------------------------------------------------------------------
# Tasks: what create_task returns, where a task's exception goes
# --------------------------------------------------------------------------


def test_seed_create_task_returns_the_coroutine_modern_a_task(loop):
    async def job():
        pass

    coro = job()
    assert loop.create_task(coro) is coro
    loop.run_until_complete(uasyncio.sleep(0))

    async def modern():
        t = uvasync.create_task(job())
        await t
        return t

    assert isinstance(uvasync.run(modern()), uvasync.Task)


def test_seed_task_exception_ends_the_run(loop):
    async def bad():
        raise KeyError("k")

    loop.create_task(bad())
    with pytest.raises(KeyError):
        loop.run_until_complete(uasyncio.sleep(0.05))


def test_modern_task_exception_goes_to_the_handler_and_the_run_goes_on():
    import gc

    reported = []

    async def bad():
        raise KeyError("k")

    async def main():
        uvasync.create_task(bad())  # nobody keeps or awaits it
        await uvasync.sleep(0.01)
        gc.collect()
        return "went on"

    modern = uvasync.new_event_loop()
    modern.set_exception_handler(lambda lp, ctx: reported.append(ctx))
    try:
        assert modern.run_until_complete(main()) == "went on"
    finally:
        modern.close()
        uasyncio.new_event_loop()  # the thread's loop for what follows
    assert [type(c.get("exception")) for c in reported] == [KeyError]


# --------------------------------------------------------------------------
# Time units
# --------------------------------------------------------------------------


def test_seed_sleep_truncates_to_whole_ms_and_loop_time_is_ms_ticks(loop):
    import time

    t0 = time.monotonic()
    loop.run_until_complete(uasyncio.sleep(0.0009))  # 0 ms: only yields
    assert time.monotonic() - t0 < 0.5
    assert isinstance(loop.time(), int)
    new = uvasync.new_event_loop()
    try:
        assert isinstance(new.time(), float)  # seconds
    finally:
        new.close()
        uasyncio.new_event_loop()  # the fixture's loop was replaced: renew
