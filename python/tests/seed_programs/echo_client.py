# A seed-style echo client: open_connection, awrite, readline.
# Usage: echo_client.py port count
import sys

import uasyncio as asyncio


@asyncio.coroutine
def client(port, count):
    reader, writer = yield from asyncio.open_connection("127.0.0.1", port)
    for i in range(count):
        yield from writer.awrite("message %d\n" % i)
        line = yield from reader.readline()
        print(line.decode().rstrip())
    yield from writer.aclose()


loop = asyncio.get_event_loop()
loop.run_until_complete(client(int(sys.argv[1]), int(sys.argv[2])))
loop.close()
