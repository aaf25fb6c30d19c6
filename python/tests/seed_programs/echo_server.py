# A seed-style echo server: generator coroutines, start_server scheduled
# with call_soon, run_forever. Usage: echo_server.py [port]
import sys

import uasyncio as asyncio


@asyncio.coroutine
def echo(reader, writer):
    peer = writer.get_extra_info("peername")
    while True:
        line = yield from reader.readline()
        if not line:
            break
        yield from writer.awrite(line)
    yield from writer.aclose()
    print("closed", peer[0])


port = int(sys.argv[1]) if len(sys.argv) > 1 else 8081
loop = asyncio.get_event_loop()
loop.call_soon(asyncio.start_server(echo, "127.0.0.1", port))
loop.run_forever()
loop.close()
