#!/usr/bin/env python3
"""Python echo servers for the echo benchmark, with the protocol of
bench_echo_server: print the port, serve until SIGTERM, then print
`user_s=... sys_s=...` (this process's getrusage while it served).

    python3 bench/echo_server.py IMPL HOST PORT

IMPL: uvasync          streams on uvasync (read / write / drain)
      asyncio          streams on CPython's asyncio
      uvloop           streams on uvloop
      asyncio-protocol an asyncio.Protocol on CPython's loop
      uvloop-protocol  an asyncio.Protocol on uvloop

With BENCH_TLS_CERT and BENCH_TLS_KEY (PEM files) in the environment the
server speaks TLS (ssl= an ssl.SSLContext with that certificate): the
servers of run_tls.py.
"""

import os
import resource
import signal
import ssl
import sys

IMPL, HOST, PORT = sys.argv[1], sys.argv[2], int(sys.argv[3])

if IMPL == "uvasync":
    import uvasync as aio
else:
    import asyncio as aio

    if IMPL.startswith("uvloop"):
        import uvloop

        aio.set_event_loop_policy(uvloop.EventLoopPolicy())


async def handle(reader, writer):
    """The same handler for every streams server. It reads up to 1,000,000
    bytes, as the streams handler of uvloop's own echo benchmark does
    (examples/bench/echoserver.py there): a message arrives in one read.
    (With read(65536), a 100 KiB message took every streams server two
    reads and two writes, and a Protocol server one each.)"""
    try:
        while True:
            data = await reader.read(1000000)
            if not data:
                break
            writer.write(data)
            await writer.drain()
    except (ConnectionError, ssl.SSLError):  # a TLS client's abrupt end
        pass
    finally:
        writer.close()


class EchoProtocol:
    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        self.transport.write(data)

    def eof_received(self):
        return False

    def connection_lost(self, exc):
        pass

    def pause_writing(self):
        pass

    def resume_writing(self):
        pass


def tls_context():
    """The TLS context of run_tls.py's servers, or None. Made after uvasync
    is imported (it notes load_cert_chain's files for its core)."""
    cert = os.environ.get("BENCH_TLS_CERT")
    if not cert:
        return None
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, os.environ["BENCH_TLS_KEY"])
    return ctx


async def main():
    loop = aio.get_running_loop()
    tls = tls_context()
    stop = aio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    if IMPL.endswith("-protocol"):
        server = await loop.create_server(EchoProtocol, HOST, PORT, ssl=tls)
    else:
        server = await aio.start_server(handle, HOST, PORT, ssl=tls)
    port = server.sockets[0].getsockname()[1]
    global START
    START = resource.getrusage(resource.RUSAGE_SELF)
    print(port, flush=True)
    await stop.wait()
    END.append(resource.getrusage(resource.RUSAGE_SELF))
    server.close()


# CPU time is counted from the moment the server listens (interpreter start
# and imports excluded) until SIGTERM.
START = None
END = []
aio.run(main())
print(
    "user_s=%.6f sys_s=%.6f"
    % (END[0].ru_utime - START.ru_utime, END[0].ru_stime - START.ru_stime),
    flush=True,
)
