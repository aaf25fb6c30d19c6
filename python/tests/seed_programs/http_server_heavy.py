# A seed-style HTTP server: each response is large (several awrite calls,
# the biggest larger than a socket buffer) and numbered, so that a client
# can check every byte. Usage: http_server_heavy.py port [repeat]
import errno
import signal
import sys

import uasyncio as asyncio

cnt = 0
repeat = int(sys.argv[2]) if len(sys.argv) > 2 else 20000


@asyncio.coroutine
def serve(reader, writer):
    global cnt
    s = "Hello. %07d\r\n" % cnt
    cnt += 1
    yield from reader.read()
    yield from writer.awrite("HTTP/1.0 200 OK\r\n\r\n")
    try:
        yield from writer.awrite(s)
        yield from writer.awrite(s * 100)
        yield from writer.awrite(s * repeat)
        yield from writer.awrite("=== END ===")
    except OSError as e:
        if e.args[0] == errno.EPIPE:
            print("EPIPE")
        elif e.args[0] == errno.ECONNRESET:
            print("ECONNRESET")
        else:
            raise
    finally:
        yield from writer.aclose()


signal.signal(signal.SIGPIPE, signal.SIG_IGN)
loop = asyncio.get_event_loop(runq_len=30, waitq_len=30)
loop.call_soon(
    asyncio.start_server(serve, "127.0.0.1", int(sys.argv[1]), backlog=100)
)
loop.run_forever()
loop.close()
