"""asyncio's stream transports on uvasync.EventLoop (the core's streams):
protocols see asyncio's callbacks in asyncio's order, with flow control
both ways, half-close, abort, resets, TLS, Unix sockets, pipes and servers
on several hosts. Every scenario also runs on asyncio's own loop, the
reference."""

import asyncio
import io
import os
import socket
import ssl
import subprocess
import sys
import tempfile

import pytest

import uvasync

LOOPS = [
    pytest.param(uvasync.EventLoop, id="uvasync"),
    pytest.param(asyncio.SelectorEventLoop, id="asyncio"),
]


@pytest.fixture(params=LOOPS)
def run(request):
    """run(coro_fn): coro_fn() on a new loop of the class under test,
    bounded by a timeout."""
    loops = []

    def run(fn, timeout=10):
        loop = request.param()
        loops.append(loop)
        return loop.run_until_complete(asyncio.wait_for(fn(), timeout))

    yield run
    for loop in loops:
        loop.close()


class Recorder(asyncio.Protocol):
    """Records its callbacks in order; echoes if asked to."""

    def __init__(self, echo=False, keep_open=False):
        self.events = []
        self.data = bytearray()
        self.echo = echo
        self.keep_open = keep_open
        self.transport = None
        self.lost = asyncio.get_event_loop().create_future()
        self.got_eof = asyncio.get_event_loop().create_future()

    def connection_made(self, transport):
        self.transport = transport
        self.events.append("made")

    def data_received(self, data):
        if not self.events or self.events[-1] != "data":
            self.events.append("data")
        self.data += data
        if self.echo:
            self.transport.write(data)

    def eof_received(self):
        self.events.append("eof")
        self.got_eof.set_result(None)
        return self.keep_open

    def pause_writing(self):
        self.events.append("pause")

    def resume_writing(self):
        self.events.append("resume")

    def connection_lost(self, exc):
        self.events.append("lost")
        if not self.lost.done():
            self.lost.set_result(exc)


async def echo_server(loop, **kw):
    server = await loop.create_server(
        lambda: Recorder(echo=True), "127.0.0.1", 0, **kw
    )
    return server, server.sockets[0].getsockname()[1]


def test_protocol_echo_and_callback_order(run):
    async def main():
        loop = asyncio.get_running_loop()
        server, port = await echo_server(loop)
        t, p = await loop.create_connection(Recorder, "127.0.0.1", port)
        assert p.events == ["made"]
        assert isinstance(t, asyncio.Transport)
        for size in (1, 1024, 10 * 1024, 100 * 1024):
            p.data.clear()
            t.write(os.urandom(size))
            t.writelines([b"a", bytearray(b"b"), memoryview(b"c")])
            while len(p.data) < size + 3:
                await asyncio.sleep(0.001)
            assert p.data.endswith(b"abc")
        assert t.get_extra_info("peername") == ("127.0.0.1", port)
        sock = t.get_extra_info("socket")
        assert sock.getpeername() == ("127.0.0.1", port)
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
        assert sock.fileno() >= 0
        assert isinstance(sock, asyncio.trsock.TransportSocket)
        assert t.get_extra_info("sockname") == sock.getsockname()
        assert t.get_extra_info("nothing", 7) == 7
        with pytest.raises(TypeError):
            t.write("text")
        t.close()
        assert t.is_closing()
        assert await p.lost is None
        assert p.events == ["made", "data", "lost"]
        assert sock.fileno() == -1
        server.close()
        await server.wait_closed()

    run(main)


def test_asyncio_streams_run_unchanged(run):
    async def handle(reader, writer):
        while True:
            line = await reader.readline()
            if not line:
                break
            writer.write(line.upper())
            await writer.drain()
        writer.close()
        await writer.wait_closed()

    async def main():
        server = await asyncio.start_server(
            handle, "127.0.0.1", 0, limit=1 << 20
        )
        port = server.sockets[0].getsockname()[1]
        async with server:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            big = b"x" * 200000 + b"\n"
            writer.write(b"hello\n")
            writer.write(big)
            await writer.drain()
            assert await reader.readline() == b"HELLO\n"
            assert await reader.readexactly(len(big)) == big.upper()
            writer.write_eof()
            assert await reader.read() == b""
            writer.close()
            await writer.wait_closed()

    run(main)


def test_flow_control_slow_reader_fast_writer(run):
    """The writer is paused at the high-water mark and resumed at the low
    one as the reader drains; pause_reading stops data_received."""

    async def main():
        loop = asyncio.get_running_loop()
        reader_side = loop.create_future()

        class Slow(Recorder):
            def connection_made(self, transport):
                super().connection_made(transport)
                reader_side.set_result(self)

        server = await loop.create_server(Slow, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        t, p = await loop.create_connection(Recorder, "127.0.0.1", port)
        slow = await reader_side
        # (not in connection_made: asyncio 3.9 starts reading after it)
        slow.transport.pause_reading()
        assert not slow.transport.is_reading()
        t.set_write_buffer_limits(high=8192, low=1024)
        assert t.get_write_buffer_limits() == (1024, 8192)
        chunk = b"z" * 65536
        sent = 0
        while "pause" not in p.events:
            t.write(chunk)
            sent += len(chunk)
            assert sent < 64 * 1024 * 1024
        assert t.get_write_buffer_size() > 8192
        await asyncio.sleep(0.05)
        assert len(slow.data) == 0  # the reader is paused
        slow.transport.resume_reading()
        assert slow.transport.is_reading()
        while "resume" not in p.events:
            await asyncio.sleep(0.001)
        assert t.get_write_buffer_size() <= 1024
        while len(slow.data) < sent:
            await asyncio.sleep(0.001)
        assert p.events == ["made", "pause", "resume"]
        with pytest.raises(ValueError):
            t.set_write_buffer_limits(high=1, low=2)
        t.close()
        await p.lost
        await slow.lost
        server.close()

    run(main)


def test_buffered_protocol_reads_into_its_buffer(run):
    async def main():
        loop = asyncio.get_running_loop()
        server, port = await echo_server(loop)
        done = loop.create_future()

        class Buffered(asyncio.BufferedProtocol):
            def __init__(self):
                self.buf = bytearray(1000)
                self.got = bytearray()
                self.sizes = []

            def connection_made(self, transport):
                self.transport = transport

            def get_buffer(self, sizehint):
                self.sizes.append(sizehint)
                return self.buf

            def buffer_updated(self, nbytes):
                self.got += self.buf[:nbytes]
                if len(self.got) >= 5000:
                    done.set_result(None)

            def connection_lost(self, exc):
                pass

        t, p = await loop.create_connection(Buffered, "127.0.0.1", port)
        data = os.urandom(5000)
        t.write(data)
        await done
        assert bytes(p.got) == data
        t.close()
        server.close()

    run(main)


def test_eof_half_close_and_eof_received(run):
    """write_eof sends the end of stream while reading goes on; a protocol
    whose eof_received returns true keeps the transport open, else it is
    closed."""

    async def main():
        loop = asyncio.get_running_loop()
        accepted = loop.create_future()

        def factory():
            p = Recorder(keep_open=True)
            accepted.set_result(p)
            return p

        server = await loop.create_server(factory, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        t, p = await loop.create_connection(Recorder, "127.0.0.1", port)
        srv = await accepted
        assert t.can_write_eof()
        t.write(b"request")
        t.write_eof()
        with pytest.raises(RuntimeError):
            t.write(b"more")
        await srv.got_eof
        assert srv.data == b"request"
        assert not srv.transport.is_closing()  # kept open: it answers
        srv.transport.write(b"answer")
        srv.transport.close()
        assert await p.lost is None
        assert p.data == b"answer"
        assert p.events == ["made", "data", "eof", "lost"]
        assert await srv.lost is None
        assert srv.events == ["made", "data", "eof", "lost"]
        server.close()

    run(main)


def test_abort_drops_queued_data(run):
    """abort: connection_lost(None) at once, the queue dropped; the peer
    reads what the kernel had, then the end of the stream (as asyncio)."""

    async def main():
        loop = asyncio.get_running_loop()
        accepted = loop.create_future()

        def factory():
            p = Recorder()
            accepted.set_result(p)
            return p

        server = await loop.create_server(factory, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        t, p = await loop.create_connection(Recorder, "127.0.0.1", port)
        srv = await accepted
        srv.transport.pause_reading()
        size = 64 * 1024 * 1024
        t.write(b"x" * size)
        assert t.get_write_buffer_size() > 0
        t.abort()
        assert await p.lost is None
        assert p.events[-1] == "lost"
        srv.transport.resume_reading()
        assert await srv.lost is None
        assert srv.events == ["made", "data", "eof", "lost"]
        assert 0 < len(srv.data) < size
        server.close()

    run(main)


def test_peer_reset_gives_connection_lost_with_the_error(run):
    async def main():
        loop = asyncio.get_running_loop()
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        port = listener.getsockname()[1]
        t, p = await loop.create_connection(Recorder, "127.0.0.1", port)
        conn, _ = listener.accept()
        conn.setsockopt(
            socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\0\0\0\0\0\0\0"
        )
        conn.close()  # linger 0: a reset
        listener.close()
        exc = await p.lost
        assert isinstance(exc, ConnectionResetError)
        assert p.events == ["made", "lost"]

    run(main)


def test_create_connection_errors_and_address_order(run):
    async def main():
        loop = asyncio.get_running_loop()
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()  # nothing listens there
        with pytest.raises(ConnectionRefusedError):
            await loop.create_connection(Recorder, "127.0.0.1", port)
        with pytest.raises(ValueError):
            await loop.create_connection(Recorder)
        server, port = await echo_server(loop)
        # every address is tried in turn: a dead one first, then the server
        t, p = await loop.create_connection(
            Recorder,
            "localhost",
            port,
            family=socket.AF_INET,
            happy_eyeballs_delay=0.1,
        )
        t.close()
        await p.lost
        sock = socket.create_connection(("127.0.0.1", port))
        t, p = await loop.create_connection(Recorder, sock=sock)
        assert t.get_extra_info("peername") == ("127.0.0.1", port)
        t.close()
        await p.lost
        assert sock.fileno() == -1  # the transport owned it
        t, p = await loop.create_connection(
            Recorder, "127.0.0.1", port, local_addr=("127.0.0.1", 0)
        )
        assert t.get_extra_info("sockname")[0] == "127.0.0.1"
        t.close()
        await p.lost
        server.close()
        await server.wait_closed()

    run(main)


def test_server_on_several_hosts_and_its_api(run):
    async def main():
        loop = asyncio.get_running_loop()
        server = await loop.create_server(
            lambda: Recorder(echo=True),
            ["127.0.0.1", "localhost"],
            0,
            family=socket.AF_INET,
            reuse_port=True,
            start_serving=False,
        )
        assert server.get_loop() is loop
        assert not server.is_serving()
        port = server.sockets[0].getsockname()[1]
        await server.start_serving()
        assert server.is_serving()
        t, p = await loop.create_connection(Recorder, "127.0.0.1", port)
        t.write(b"ping")
        while p.data != b"ping":
            await asyncio.sleep(0.001)
        serving = asyncio.ensure_future(server.serve_forever())
        await asyncio.sleep(0)
        with pytest.raises(RuntimeError):
            await server.serve_forever()
        t.close()  # (3.12+: a cancelled serve_forever waits for clients)
        await p.lost
        serving.cancel()
        with pytest.raises(asyncio.CancelledError):
            await serving
        assert not server.is_serving()
        assert server.sockets == ()
        await server.wait_closed()

        async with await loop.create_server(Recorder, None, 0) as s2:
            families = {s.family for s in s2.sockets}
            assert socket.AF_INET in families
        assert not s2.is_serving()

        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        s3 = await loop.create_server(Recorder, sock=listener)
        assert s3.sockets[0].getsockname() == listener.getsockname()
        s3.close()
        await s3.wait_closed()

    run(main)


@pytest.mark.skipif(sys.version_info < (3, 13), reason="asyncio 3.13 API")
def test_close_clients_and_abort_clients(run):
    async def main():
        loop = asyncio.get_running_loop()
        server, port = await echo_server(loop)
        t1, p1 = await loop.create_connection(Recorder, "127.0.0.1", port)
        t2, p2 = await loop.create_connection(Recorder, "127.0.0.1", port)
        t1.write(b"a")
        t2.write(b"b")
        while not (p1.data and p2.data):
            await asyncio.sleep(0.001)
        server.close()
        waiting = asyncio.ensure_future(server.wait_closed())
        await asyncio.sleep(0.01)
        assert not waiting.done()  # connections are still up
        server.close_clients()
        await waiting
        await p1.lost
        await p2.lost
        server2, port = await echo_server(loop)
        t3, p3 = await loop.create_connection(Recorder, "127.0.0.1", port)
        t3.write(b"c")
        while not p3.data:
            await asyncio.sleep(0.001)
        server2.close()
        server2.abort_clients()
        await server2.wait_closed()
        assert isinstance(await p3.lost, (ConnectionResetError, type(None)))

    run(main)


def _make_cert(tmp):
    key, cert = os.path.join(tmp, "key.pem"), os.path.join(tmp, "cert.pem")
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            key,
            "-out",
            cert,
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost,IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
        timeout=30,
    )
    return key, cert


@pytest.fixture(scope="module")
def tls_contexts():
    with tempfile.TemporaryDirectory() as tmp:
        key, cert = _make_cert(tmp)
        server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        server_ctx.load_cert_chain(cert, key)
        client_ctx = ssl.create_default_context(cafile=cert)
        yield server_ctx, client_ctx


def test_tls_echo_streams_and_extra_info(run, tls_contexts):
    server_ctx, client_ctx = tls_contexts

    async def handle(reader, writer):
        data = await reader.readline()
        writer.write(data[::-1])
        await writer.drain()
        writer.close()

    async def main():
        server = await asyncio.start_server(
            handle, "127.0.0.1", 0, ssl=server_ctx
        )
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", port, ssl=client_ctx, server_hostname="localhost"
        )
        assert writer.get_extra_info("sslcontext") is client_ctx
        assert writer.get_extra_info("ssl_object") is not None
        assert writer.get_extra_info("peercert")["subject"]
        assert writer.get_extra_info("cipher")
        assert writer.get_extra_info("peername")[1] == port
        writer.write(b"hello tls\n")
        assert await reader.read() == b"\nslt olleh"
        writer.close()
        server.close()
        await server.wait_closed()

    run(main)


def test_start_tls_upgrades_a_connection(run, tls_contexts):
    server_ctx, client_ctx = tls_contexts

    async def handle(reader, writer):
        assert await reader.readline() == b"STARTTLS\n"
        writer.write(b"GO\n")
        await writer.drain()
        await writer.start_tls(server_ctx)
        writer.write((await reader.readline()).upper())
        await writer.drain()
        writer.close()

    async def main():
        if sys.version_info < (3, 11):
            pytest.skip("StreamWriter.start_tls is 3.11+")
        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"STARTTLS\n")
        assert await reader.readline() == b"GO\n"
        await writer.start_tls(client_ctx, server_hostname="localhost")
        assert writer.get_extra_info("ssl_object") is not None
        writer.write(b"secret\n")
        assert await reader.readline() == b"SECRET\n"
        writer.close()
        server.close()
        await server.wait_closed()

    run(main)


def test_unix_connection_and_server(run):
    async def main():
        loop = asyncio.get_running_loop()
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "sock")
            server = await loop.create_unix_server(
                lambda: Recorder(echo=True), path
            )
            t, p = await loop.create_unix_connection(Recorder, path)
            assert t.get_extra_info("peername") == path
            t.write(b"over unix")
            while p.data != b"over unix":
                await asyncio.sleep(0.001)
            t.close()
            await p.lost
            # the streams API too
            reader, writer = await asyncio.open_unix_connection(path)
            writer.write(b"x")
            assert await reader.readexactly(1) == b"x"
            writer.close()
            server.close()
            await server.wait_closed()
            # a stale socket file is replaced
            server = await loop.create_unix_server(Recorder, path)
            server.close()
            await server.wait_closed()

    run(main)


def test_read_and_write_pipes(run):
    async def main():
        loop = asyncio.get_running_loop()
        rfd, wfd = os.pipe()
        rpipe, wpipe = os.fdopen(rfd, "rb", 0), os.fdopen(wfd, "wb", 0)
        rt, rp = await loop.connect_read_pipe(Recorder, rpipe)
        wt, wp = await loop.connect_write_pipe(Recorder, wpipe)
        assert rt.get_extra_info("pipe") is rpipe
        assert wt.get_extra_info("pipe") is wpipe
        assert (
            not hasattr(rt, "write")
            or not callable(getattr(type(rt), "write", None))
            or isinstance(rt, asyncio.ReadTransport)
        )
        wt.write(b"through the pipe")
        wt.close()
        assert await wp.lost is None
        assert await rp.lost is None
        assert rp.data == b"through the pipe"
        assert rp.events == ["made", "data", "eof", "lost"]
        assert rpipe.closed and wpipe.closed

    run(main)


def test_sendfile_native_and_fallback(run):
    async def main():
        loop = asyncio.get_running_loop()
        server, port = await echo_server(loop)
        t, p = await loop.create_connection(Recorder, "127.0.0.1", port)
        data = os.urandom(300000)
        with tempfile.TemporaryFile() as f:
            f.write(data)
            f.flush()
            t.write(b"head")
            sent = await loop.sendfile(t, f, 1000, 200000)
            assert sent == 200000
            assert f.tell() == 201000
            while len(p.data) < 200004:
                await asyncio.sleep(0.001)
            assert p.data == b"head" + data[1000:201000]
        t.close()
        await p.lost
        server.close()

    run(main)


def test_close_flushes_queued_writes_before_connection_lost(run):
    async def main():
        loop = asyncio.get_running_loop()
        accepted = loop.create_future()

        def factory():
            p = Recorder()
            accepted.set_result(p)
            return p

        server = await loop.create_server(factory, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        t, p = await loop.create_connection(Recorder, "127.0.0.1", port)
        assert t.get_write_buffer_limits() == (16384, 65536)
        srv = await accepted
        srv.transport.pause_reading()
        size = 4 * 1024 * 1024
        t.writelines([b"%07d\n" % i for i in range(size // 8)])
        assert t.get_write_buffer_size() > 0
        t.close()
        await asyncio.sleep(0.05)
        assert not p.lost.done()  # still flushing to the paused peer
        srv.transport.resume_reading()
        assert await p.lost is None
        assert await srv.lost is None
        assert len(srv.data) == size
        assert srv.data[-8:] == b"%07d\n" % (size // 8 - 1)
        assert p.events.count("lost") == 1
        server.close()

    run(main)


def test_data_received_error_is_reported_and_closes(run):
    async def main():
        loop = asyncio.get_running_loop()
        reported = []
        loop.set_exception_handler(lambda loop, ctx: reported.append(ctx))
        server, port = await echo_server(loop)

        class Failing(Recorder):
            def data_received(self, data):
                raise ZeroDivisionError

        t, p = await loop.create_connection(Failing, "127.0.0.1", port)
        t.write(b"boom")
        exc = await p.lost
        assert isinstance(exc, ZeroDivisionError)
        assert reported[0]["message"] == (
            "Fatal error: protocol.data_received() call failed."
        )
        assert reported[0]["transport"] is t
        server.close()

    run(main)


def test_sendfile_fallback_for_other_files(run):
    async def main():
        loop = asyncio.get_running_loop()
        server, port = await echo_server(loop)
        t, p = await loop.create_connection(Recorder, "127.0.0.1", port)
        data = os.urandom(100000)
        f = io.BytesIO(data)
        assert await loop.sendfile(t, f, 10, 50000) == 50000
        while len(p.data) < 50000:
            await asyncio.sleep(0.001)
        assert p.data == data[10:50010]
        t.write(b"after")  # the protocol is the transport's own again
        while not p.data.endswith(b"after"):
            await asyncio.sleep(0.001)
        t.close()
        await p.lost
        server.close()

    run(main)


def test_loop_close_drops_open_transports():
    loop = uvasync.EventLoop()

    async def main():
        server, port = await echo_server(loop)
        t, p = await loop.create_connection(Recorder, "127.0.0.1", port)
        t.pause_reading()
        return server, t

    server, t = loop.run_until_complete(main())
    server.close()
    t.close()
    loop.close()  # returns: nothing of the transports keeps the core loop


def test_cancelled_connect_leaves_no_poll_behind(run):
    """A connect cut short by a timeout closes its socket; the next
    connection (which may get the same descriptor number) works."""

    async def main():
        loop = asyncio.get_running_loop()
        full = socket.socket()
        full.bind(("127.0.0.1", 0))
        full.listen(0)  # never accepts: once its queue is full, SYNs wait
        fillers = []
        for _ in range(8):
            s = socket.socket()
            s.setblocking(False)
            s.connect_ex(full.getsockname())
            fillers.append(s)
        server, port = await echo_server(loop)
        for _ in range(3):
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(
                    loop.create_connection(Recorder, *full.getsockname()),
                    0.05,
                )
            t, p = await loop.create_connection(Recorder, "127.0.0.1", port)
            t.write(b"ok")
            while p.data != b"ok":
                await asyncio.sleep(0.001)
            t.close()
            await p.lost
        for s in fillers:
            s.close()
        full.close()
        server.close()

    run(main)


def test_write_pipe_sees_its_reader_go(run):
    async def main():
        loop = asyncio.get_running_loop()
        rfd, wfd = os.pipe()
        wpipe = os.fdopen(wfd, "wb", 0)
        wt, wp = await loop.connect_write_pipe(Recorder, wpipe)
        wt.write(b"unread")
        os.close(rfd)  # the reader goes away
        assert await wp.lost is None
        assert wp.events == ["made", "lost"]
        assert wpipe.closed

    run(main)


def test_sendfile_refuses_writes_meanwhile_and_other_transports(run):
    async def main():
        loop = asyncio.get_running_loop()
        server, port = await echo_server(loop)
        t, p = await loop.create_connection(Recorder, "127.0.0.1", port)
        with tempfile.TemporaryFile() as f:
            f.write(b"y" * 1000000)
            f.flush()
            sending = asyncio.ensure_future(loop.sendfile(t, f))
            await asyncio.sleep(0)
            with pytest.raises(RuntimeError, match="sendfile is in progress"):
                t.write(b"data")
            assert await sending == 1000000
            t.write(b"after")
            while len(p.data) < 1000005:
                await asyncio.sleep(0.001)
            rfd, wfd = os.pipe()
            wt, wp = await loop.connect_write_pipe(
                Recorder, os.fdopen(wfd, "wb", 0)
            )
            with pytest.raises(RuntimeError, match="not supported"):
                await loop.sendfile(wt, f)
            wt.close()
            os.close(rfd)
        t.close()
        await p.lost
        server.close()

    run(main)


def test_transports_left_open_when_the_loop_closes_say_so():
    for cls in (uvasync.EventLoop, asyncio.SelectorEventLoop):
        loop = cls()
        rfd, wfd = os.pipe()
        rpipe = os.fdopen(rfd, "rb", 0)

        async def connect(loop, rpipe):
            t, _ = await loop.connect_read_pipe(asyncio.Protocol, rpipe)
            return t

        t = loop.run_until_complete(connect(loop, rpipe))
        loop.close()
        assert "open" in repr(t)  # asyncio's: never closed, only dropped
        rpipe.close()
        os.close(wfd)


def test_server_on_two_addresses_each_serves(run):
    async def main():
        loop = asyncio.get_running_loop()
        server = await loop.create_server(
            lambda: Recorder(echo=True), ["127.0.0.1", "::1"], 0
        )
        names = sorted(s.getsockname()[:2] for s in server.sockets)
        assert [n[0] for n in names] == ["127.0.0.1", "::1"]
        for host, port in names:
            t, p = await loop.create_connection(Recorder, host, port)
            t.write(host.encode())
            while p.data != host.encode():
                await asyncio.sleep(0.001)
            t.close()
            await p.lost
        server.close()
        await server.wait_closed()

    run(main)


def test_connect_accepted_socket_and_unix_sock_arguments(run):
    async def main():
        loop = asyncio.get_running_loop()
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        client = socket.create_connection(listener.getsockname())
        conn, _ = listener.accept()
        listener.close()
        t, p = await loop.connect_accepted_socket(
            lambda: Recorder(echo=True), conn
        )
        client.sendall(b"accepted")
        client.settimeout(5)
        got = await loop.run_in_executor(None, client.recv, 100)
        assert got == b"accepted"
        client.close()
        assert await p.lost is None
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "s")
            lsock = socket.socket(socket.AF_UNIX)
            lsock.bind(path)
            server = await loop.create_unix_server(
                lambda: Recorder(echo=True), sock=lsock
            )
            csock = socket.socket(socket.AF_UNIX)
            csock.connect(path)
            t, p = await loop.create_unix_connection(Recorder, sock=csock)
            t.write(b"unix sock")
            while p.data != b"unix sock":
                await asyncio.sleep(0.001)
            t.close()
            await p.lost
            server.close()
            await server.wait_closed()

    run(main)
