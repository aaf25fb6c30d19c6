"""Real applications from PyPI on uvasync.EventLoop (issue 25 item 4), run
unchanged: an aiohttp server and its client (GET, POST, a streamed body, a
websocket), httpx's AsyncClient (through anyio) against that server,
websockets' asyncio server and client, redis-py's asyncio client against a
redis-server started on a private port, and aiosqlite (its own thread, back
through call_soon_threadsafe). Every scenario also runs on CPython's own
loop as the reference, and each asserts the type of the loop it ran on.

Their packages are in requirements-apps.txt (scripts/test.sh installs them
with the python suite); redis-server is Debian's (scripts/setup.sh)."""

import asyncio
import os
import shutil
import socket
import subprocess
import sys
import time

import aiohttp
import aiosqlite
import httpx
import pytest
import redis.asyncio as aioredis
import websockets.asyncio.client as ws_client
import websockets.asyncio.server as ws_server
from aiohttp import web

import uvasync

LOOPS = [
    pytest.param(uvasync.EventLoop, id="uvasync"),
    pytest.param(asyncio.SelectorEventLoop, id="asyncio"),
]
BIG = bytes(range(256)) * 4096  # 1 MiB, every byte value
CHUNK = 10 * 1024
CHUNKS = 50  # the streamed body: 50 chunks of 10 KiB


@pytest.fixture(params=LOOPS)
def run(request):
    """run(main) runs main() to completion on a new loop of the class under
    test, as asyncio.run does, and checks that main ran on that class."""
    loop_class = request.param

    def run(main):
        async def checked():
            assert type(asyncio.get_running_loop()) is loop_class
            return await main()

        if sys.version_info >= (3, 11):
            with asyncio.Runner(loop_factory=loop_class) as runner:
                return runner.run(checked())
        loop = loop_class()
        try:
            asyncio.set_event_loop(loop)
            return loop.run_until_complete(checked())
        finally:
            asyncio.set_event_loop(None)
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    return run


def pattern(i):
    """Chunk i of the streamed body: its own bytes, so a reordered or lost
    chunk shows."""
    return bytes([i % 251]) * (CHUNK - 8) + i.to_bytes(8, "big")


# --- aiohttp server ----------------------------------------------------------


async def hello(request):
    return web.Response(text=f"hello {request.query.get('name', 'world')}")


async def echo(request):
    body = await request.read()
    return web.Response(body=body, headers={"X-Length": str(len(body))})


async def stream(request):
    resp = web.StreamResponse()
    resp.content_type = "application/octet-stream"
    await resp.prepare(request)
    for i in range(CHUNKS):
        await resp.write(pattern(i))
        if i % 10 == 0:
            await asyncio.sleep(0)
    await resp.write_eof()
    return resp


async def websocket(request):
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    async for msg in ws:
        if msg.type == aiohttp.WSMsgType.TEXT:
            await ws.send_str(msg.data.upper())
        elif msg.type == aiohttp.WSMsgType.BINARY:
            await ws.send_bytes(msg.data[::-1])
    return ws


class AiohttpServer:
    """The aiohttp application above on 127.0.0.1, a port the kernel
    picks."""

    async def __aenter__(self):
        app = web.Application(client_max_size=4 << 20)
        app.router.add_get("/hello", hello)
        app.router.add_post("/echo", echo)
        app.router.add_get("/stream", stream)
        app.router.add_get("/ws", websocket)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc):
        await self.runner.cleanup()


def test_aiohttp_server_and_client(run):
    async def main():
        async with AiohttpServer() as srv, aiohttp.ClientSession() as s:
            async with s.get(f"{srv.url}/hello?name=loop") as r:
                assert r.status == 200
                assert await r.text() == "hello loop"

            # Several requests at once on the session's connection pool.
            async def get(i):
                async with s.get(f"{srv.url}/hello?name={i}") as r:
                    return await r.text()

            texts = await asyncio.gather(*(get(i) for i in range(20)))
            assert texts == [f"hello {i}" for i in range(20)]
            async with s.post(f"{srv.url}/echo", data=BIG) as r:
                assert r.headers["X-Length"] == str(len(BIG))
                assert await r.read() == BIG
            async with s.get(f"{srv.url}/stream") as r:
                got = bytearray()
                async for chunk in r.content.iter_chunked(4096):
                    got += chunk
                assert bytes(got) == b"".join(map(pattern, range(CHUNKS)))
            async with s.ws_connect(f"{srv.url}/ws") as ws:
                await ws.send_str("ping")
                assert await ws.receive_str() == "PING"
                await ws.send_bytes(BIG)
                assert await ws.receive_bytes() == BIG[::-1]
                await ws.close()
            assert ws.closed

    run(main)


def test_httpx_against_aiohttp(run):
    async def main():
        async with AiohttpServer() as srv, httpx.AsyncClient() as client:
            r = await client.get(f"{srv.url}/hello", params={"name": "x"})
            assert (r.status_code, r.text) == (200, "hello x")
            r = await client.post(f"{srv.url}/echo", content=BIG)
            assert r.content == BIG
            async with client.stream("GET", f"{srv.url}/stream") as r:
                got = b"".join([c async for c in r.aiter_bytes()])
            assert got == b"".join(map(pattern, range(CHUNKS)))
            # A timeout through anyio's cancel scopes: the server answers,
            # so the request finishes well before it.
            r = await client.get(f"{srv.url}/hello", timeout=5)
            assert r.text == "hello world"

    run(main)


def test_connection_lost_after_callbacks_scheduled_before_close(run):
    """connection_lost comes from the run queue, after what was scheduled
    before the close (a Future's done callbacks, call_soon), as asyncio
    calls it. aiohttp relies on it: its request handler task, woken by a
    request that came with the client's close, ran after connection_lost
    had cleared the handler's state, and failed with "TypeError:
    'NoneType' object is not callable" (seen when wrk closed its
    connections at the end of a run)."""

    async def main():
        loop = asyncio.get_running_loop()
        events = []
        lost = loop.create_future()

        class Closer(asyncio.Protocol):
            def connection_made(self, transport):
                self.transport = transport

            def data_received(self, data):
                loop.call_soon(events.append, "call_soon")
                fut = loop.create_future()
                fut.add_done_callback(lambda f: events.append("done"))
                fut.set_result(None)
                self.transport.close()
                events.append("closed")

            def connection_lost(self, exc):
                events.append("lost")
                lost.set_result(exc)

        server = await loop.create_server(Closer, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"x")
        writer.write_eof()
        assert await asyncio.wait_for(lost, 5) is None
        assert events == ["closed", "call_soon", "done", "lost"]
        writer.close()
        server.close()
        await server.wait_closed()

    run(main)


# --- websockets --------------------------------------------------------------


async def ws_echo(conn):
    async for message in conn:
        await conn.send(message)


def test_websockets_server_and_client(run):
    async def main():
        async with ws_server.serve(ws_echo, "127.0.0.1", 0) as server:
            port = next(iter(server.sockets)).getsockname()[1]
            uri = f"ws://127.0.0.1:{port}"
            async with ws_client.connect(uri, max_size=None) as conn:
                await conn.send("hello")
                assert await conn.recv() == "hello"
                await conn.send(BIG)
                assert await conn.recv() == BIG
                pong = await conn.ping()
                await asyncio.wait_for(pong, 5)
            assert conn.close_code == 1000

            # Ten clients at once.
            async def one(i):
                async with ws_client.connect(uri) as c:
                    await c.send(f"n{i}")
                    return await c.recv()

            got = await asyncio.gather(*(one(i) for i in range(10)))
            assert got == [f"n{i}" for i in range(10)]

    run(main)


# --- redis -------------------------------------------------------------------


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def redis_port(tmp_path_factory):
    """A redis-server of this module's own on 127.0.0.1 (no persistence),
    stopped after the module's tests."""
    exe = shutil.which("redis-server")
    assert exe, "redis-server not found: run scripts/setup.sh"
    workdir = tmp_path_factory.mktemp("redis")
    for _attempt in range(5):
        port = free_port()
        proc = subprocess.Popen(
            [exe, "--port", str(port), "--bind", "127.0.0.1"]
            + ["--save", "", "--appendonly", "no", "--dir", str(workdir)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 5
        while proc.poll() is None and time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                break
            except OSError:
                time.sleep(0.02)
        if proc.poll() is None:
            break
    else:
        raise AssertionError("redis-server did not start")
    try:
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_redis_asyncio_client(run, redis_port):
    async def main():
        r = aioredis.Redis(host="127.0.0.1", port=redis_port)
        try:
            key = f"uvasync:{os.getpid()}:{id(main)}"
            await r.set(key, b"value")
            assert await r.get(key) == b"value"
            async with r.pipeline(transaction=True) as pipe:
                pipe.set(f"{key}:n", 1).incr(f"{key}:n").incrby(f"{key}:n", 5)
                pipe.get(f"{key}:n")
                assert await pipe.execute() == [True, 2, 7, b"7"]
            await r.set(f"{key}:big", BIG)
            assert await r.get(f"{key}:big") == BIG
            pubsub = r.pubsub()
            await pubsub.subscribe(f"{key}:chan")
            msg = await pubsub.get_message(timeout=5)
            assert msg["type"] == "subscribe"
            assert await r.publish(f"{key}:chan", b"news") == 1
            msg = None
            deadline = time.monotonic() + 5
            while msg is None and time.monotonic() < deadline:
                msg = await pubsub.get_message(
                    ignore_subscribe_messages=True, timeout=1
                )
            assert msg and msg["data"] == b"news"
            await pubsub.unsubscribe()
            await pubsub.aclose()
            assert await r.delete(key, f"{key}:n", f"{key}:big") == 3
        finally:
            await r.aclose()

    run(main)


# --- aiosqlite ---------------------------------------------------------------


def test_aiosqlite(run, tmp_path):
    path = tmp_path / "db.sqlite"

    async def main():
        async with aiosqlite.connect(path) as db:
            await db.execute("CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT)")
            await db.executemany(
                "INSERT INTO t VALUES (?, ?)",
                [(i, f"v{i}") for i in range(1000)],
            )
            await db.commit()
            async with db.execute(
                "SELECT count(*), sum(k) FROM t WHERE v LIKE 'v1%'"
            ) as cur:
                assert await cur.fetchone() == (111, 1 + 145 + 14950)
            rows = await db.execute_fetchall(
                "SELECT v FROM t WHERE k < 3 ORDER BY k"
            )
            assert [r[0] for r in rows] == ["v0", "v1", "v2"]

    run(main)
