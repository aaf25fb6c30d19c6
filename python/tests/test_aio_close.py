"""A transport closed by its user with nothing left to write: asyncio calls
connection_lost at the next pass, so StreamWriter.drain() after close()
raises ConnectionResetError after its one sleep(0) (found by CPython's
test_streams test_async_writer_api_exception_after_close). Every scenario
also runs on asyncio's own loop, the reference."""

import asyncio

import pytest

import uvasync

LOOPS = [
    pytest.param(uvasync.EventLoop, id="uvasync"),
    pytest.param(asyncio.SelectorEventLoop, id="asyncio"),
]


def run_on(loop_cls, fn):
    loop = loop_cls()
    try:
        return loop.run_until_complete(asyncio.wait_for(fn(), 10))
    finally:
        loop.close()


@pytest.mark.parametrize("loop_cls", LOOPS)
def test_drain_after_close_raises_connection_reset(loop_cls):
    async def main():
        async def serve(reader, writer):
            await reader.read()
            writer.close()

        server = await asyncio.start_server(serve, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"hello")
        await writer.drain()
        writer.close()
        with pytest.raises(ConnectionResetError):
            writer.write(b"data")
            await writer.drain()
        server.close()
        await server.wait_closed()

    run_on(loop_cls, main)


@pytest.mark.parametrize("loop_cls", LOOPS)
def test_connection_lost_once_at_the_next_pass_after_close(loop_cls):
    async def main():
        lost = []

        class Client(asyncio.Protocol):
            def connection_lost(self, exc):
                lost.append(exc)

        server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_connection(Client, "127.0.0.1", port)
        transport.close()
        assert transport.is_closing()
        await asyncio.sleep(0)
        assert lost == [None]
        await asyncio.sleep(0.05)  # the core's close completes: no second
        assert lost == [None]
        server.close()
        await server.wait_closed()

    run_on(loop_cls, main)
