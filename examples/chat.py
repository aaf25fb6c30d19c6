#!/usr/bin/env python3
"""A server and a client talking to each other on uvasync (the Python
package): the server answers each line with its upper-case form, the
client sends a few lines, a slow request is cut short by wait_for, and a
ticker task is cancelled at the end.

    python3 examples/chat.py
"""

import uvasync as asyncio


async def handle(stream, _):
    peer = stream.get_extra_info("peername")
    print(f"server: connection from {peer[0]}:{peer[1]}")
    while True:
        line = await stream.readline()
        if not line:
            break
        if line.strip() == b"slow":
            await asyncio.sleep(1)  # the client gives up before this
        await stream.awrite(line.upper())
    print("server: client left")
    await stream.aclose()


async def ticker():
    n = 0
    while True:
        await asyncio.sleep_ms(50)
        n += 1
        print(f"ticker: {n}")


async def main():
    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    print(f"server: listening on 127.0.0.1:{port}")
    tick = asyncio.create_task(ticker())

    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    for word in (b"hello", b"uvasync", b"on libuv"):
        writer.write(word + b"\n")
        await writer.drain()
        print(f"client: {word!r} -> {(await reader.readline()).strip()!r}")

    writer.write(b"slow\n")
    try:
        await asyncio.wait_for(reader.readline(), 0.2)
    except asyncio.TimeoutError:
        print("client: no answer within 200 ms, gave up")

    await writer.aclose()
    tick.cancel()
    try:
        await tick
    except asyncio.CancelledError:
        print("ticker: cancelled")
    server.close()
    await server.wait_closed()
    print("done")


asyncio.run(main())
