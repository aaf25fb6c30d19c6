#!/usr/bin/env python3
"""The asyncio event-loop benchmarks of run_aio.py, one in this process, on
one loop: uvasync.EventLoop, uvloop's or asyncio's own (selector) loop.

    python3 bench/aio_bench.py LOOP serve KIND HOST PORT
    python3 bench/aio_bench.py LOOP BENCH N [SIZE]

LOOP: uvasync | uvloop | asyncio
serve KIND: a server on HOST:PORT that prints its port, serves until
  SIGTERM, then prints `user_s=... sys_s=...` (its getrusage from listening
  to SIGTERM), as bench_echo_server does (run_echo.run_one runs it):
    protocol  echo with an asyncio.Protocol (data_received -> write)
    streams   echo with asyncio.start_server (read(1000000) -> write ->
              drain), the handler of bench/echo_server.py
    http      an aiohttp "hello world" application (GET / -> 13 bytes)
BENCH N: one micro-benchmark; prints run_os.py's line `ok=1 rate=...
  wall_s=... cpu_s=... n=...`:
    call_soon   N callbacks through call_soon, scheduled 1,000 at a time
                from a callback
    call_later  N timers through call_later (delays spread over 0-10 ms),
                every other one cancelled before it fires
    sock N SIZE N round trips of SIZE bytes between two sockets of one
                TCP connection on 127.0.0.1 (client: sock_sendall, then
                sock_recv_into until the echo is whole; server: sock_recv
                -> sock_sendall)
  The rate is per CPU-second of the process: on a machine shared with
  other work the wall time counts the time the process waited for a CPU
  (call_later's is mostly the timers' delays), its CPU time does not.
"""

import asyncio
import resource
import signal
import socket
import sys
import time

LOOP = sys.argv[1]
if LOOP == "uvasync":
    import uvasync

    new_loop = uvasync.EventLoop
elif LOOP == "uvloop":
    import uvloop

    new_loop = uvloop.new_event_loop
elif LOOP == "asyncio":
    new_loop = asyncio.SelectorEventLoop
else:
    sys.exit(f"aio_bench.py: unknown loop {LOOP!r}")


def run(main):
    """main() to completion on a new loop of LOOP (asyncio.run's steps;
    Runner's loop_factory is 3.11+)."""
    loop = new_loop()
    asyncio.set_event_loop(loop)
    try:
        return loop.run_until_complete(main())
    finally:
        asyncio.set_event_loop(None)
        loop.close()


# --- servers -----------------------------------------------------------------


class EchoProtocol(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        self.transport.write(data)


async def echo_handler(reader, writer):
    try:
        while True:
            data = await reader.read(1000000)
            if not data:
                break
            writer.write(data)
            await writer.drain()
    except ConnectionError:
        pass
    finally:
        writer.close()


async def serve(kind, host, port):
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    if kind == "protocol":
        server = await loop.create_server(EchoProtocol, host, port)
        close = server.close
    elif kind == "streams":
        server = await asyncio.start_server(echo_handler, host, port)
        close = server.close
    elif kind == "http":
        from aiohttp import web

        async def hello(request):
            return web.Response(text="Hello, World!")

        app = web.Application()
        app.router.add_get("/", hello)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, host, port)
        await site.start()
        server = site._server
        close = runner.cleanup
    else:
        sys.exit(f"aio_bench.py: unknown server {kind!r}")
    port = server.sockets[0].getsockname()[1]
    start = resource.getrusage(resource.RUSAGE_SELF)
    print(port, flush=True)
    await stop.wait()
    end = resource.getrusage(resource.RUSAGE_SELF)
    result = close()
    if result is not None:
        await result
    print(
        "user_s=%.6f sys_s=%.6f"
        % (end.ru_utime - start.ru_utime, end.ru_stime - start.ru_stime),
        flush=True,
    )


# --- micro-benchmarks --------------------------------------------------------


async def bench_call_soon(n):
    loop = asyncio.get_running_loop()
    done = loop.create_future()
    left = n
    to_schedule = n

    def callback():
        nonlocal left
        left -= 1
        if not left:
            done.set_result(None)

    def feed():
        nonlocal to_schedule
        k = min(1000, to_schedule)
        to_schedule -= k
        for _ in range(k):
            loop.call_soon(callback)
        if to_schedule:
            loop.call_soon(feed)

    loop.call_soon(feed)
    await done


async def bench_call_later(n):
    loop = asyncio.get_running_loop()
    done = loop.create_future()
    left = n - n // 2  # the ones not cancelled

    def callback():
        nonlocal left
        left -= 1
        if not left:
            done.set_result(None)

    handles = [loop.call_later((i % 1000) * 1e-5, callback) for i in range(n)]
    for h in handles[1::2]:
        h.cancel()
    await done


async def bench_sock(n, size):
    loop = asyncio.get_running_loop()
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen()
    lsock.setblocking(False)
    client = socket.socket()
    client.setblocking(False)
    accepted = loop.create_task(loop.sock_accept(lsock))
    await loop.sock_connect(client, lsock.getsockname())
    server, _ = await accepted
    lsock.close()
    for s in (client, server):
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    async def echo():
        while True:
            data = await loop.sock_recv(server, 1 << 20)
            if not data:
                break
            await loop.sock_sendall(server, data)

    task = loop.create_task(echo())
    msg = bytes(range(256)) * (size // 256) + bytes(size % 256)
    buf = bytearray(size)
    view = memoryview(buf)
    for _ in range(n):
        await loop.sock_sendall(client, msg)
        got = 0
        while got < size:
            k = await loop.sock_recv_into(client, view[got:])
            if not k:
                raise SystemExit("aio_bench.py: echo closed early")
            got += k
    if buf != msg:
        raise SystemExit("aio_bench.py: echo differs")
    client.close()
    await task
    server.close()


def micro(bench, n, size):
    fn = {
        "call_soon": bench_call_soon,
        "call_later": bench_call_later,
        "sock": bench_sock,
    }.get(bench)
    if fn is None:
        sys.exit(f"aio_bench.py: unknown benchmark {bench!r}")
    args = (n, size) if bench == "sock" else (n,)
    cpu0, t0 = time.process_time(), time.perf_counter()
    run(lambda: fn(*args))
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    rate = n / cpu
    print(
        f"ok=1 loop={LOOP} bench={bench} n={n} rate={rate:.1f} "
        f"wall_s={wall:.6f} cpu_s={cpu:.6f}",
        flush=True,
    )


if __name__ == "__main__":
    if sys.argv[2] == "serve":
        kind, host, port = sys.argv[3], sys.argv[4], int(sys.argv[5])
        run(lambda: serve(kind, host, port))
    else:
        size = int(sys.argv[4]) if len(sys.argv) > 4 else 0
        micro(sys.argv[2], int(sys.argv[3]), size)
