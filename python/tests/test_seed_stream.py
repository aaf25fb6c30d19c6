"""uasyncio streams: start_server run as a task, open_connection, the seed's
reading semantics, awrite and friends, and StreamReader/StreamWriter on
what a program makes itself (sockets, pipes, files, descriptors), plus
IORead/IOWrite on the program's own sockets."""

import io
import os
import socket
import struct
import threading
import time

import pytest

import uasyncio as asyncio
from uasyncio.core import IORead, IOReadDone, IOWrite

from seedlib import free_port, loop  # noqa: F401 (fixture)


def serve_with(loop, handler, backlog=10):
    """Start a seed server task on a free port; the port."""
    port = free_port()
    loop.create_task(asyncio.start_server(handler, "127.0.0.1", port, backlog))
    loop.run_until_complete(asyncio.sleep_ms(5))  # the task starts listening
    return port


# --------------------------------------------------------------------------
# Connections
# --------------------------------------------------------------------------


@pytest.mark.parametrize("style", ["generator", "async"])
def test_echo_server_and_client(loop, style):
    if style == "generator":

        def echo(reader, writer):
            while True:
                line = yield from reader.readline()
                if not line:
                    break
                yield from writer.awrite(line)
            yield from writer.aclose()

        def client(port):
            reader, writer = yield from asyncio.open_connection(
                "127.0.0.1", port
            )
            got = []
            for i in range(50):
                yield from writer.awrite(b"line %d\n" % i)
                got.append((yield from reader.readline()))
            yield from writer.aclose()
            return got
    else:

        async def echo(reader, writer):
            while True:
                line = await reader.readline()
                if not line:
                    break
                await writer.awrite(line)
            await writer.aclose()

        async def client(port):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            got = []
            for i in range(50):
                await writer.awrite(b"line %d\n" % i)
                got.append(await reader.readline())
            await writer.aclose()
            return got

    port = serve_with(loop, echo)
    got = loop.run_until_complete(client(port))
    assert got == [b"line %d\n" % i for i in range(50)]


def test_the_server_task_stops_listening_when_cancelled(loop):
    async def handler(reader, writer):
        await writer.aclose()

    port = free_port()
    server = asyncio.start_server(handler, "127.0.0.1", port)
    loop.create_task(server)
    loop.run_until_complete(asyncio.sleep_ms(5))
    socket.create_connection(("127.0.0.1", port)).close()
    asyncio.cancel(server)
    loop.run_until_complete(asyncio.sleep_ms(5))
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port)).close()


def test_default_backlog_holds_50_clients_connecting_at_once(loop):
    # The seed's default backlog was 10: with more clients connecting than
    # that before the server accepts, the kernel dropped the rest's SYNs
    # and they waited a second or more for the retransmission.
    import select

    async def handler(reader, writer):
        await writer.aclose()

    port = free_port()
    loop.create_task(asyncio.start_server(handler, "127.0.0.1", port))
    loop.run_until_complete(asyncio.sleep_ms(5))
    clients = []
    for _ in range(50):  # the loop does not run: nothing is accepted
        c = socket.socket()
        c.setblocking(False)
        c.connect_ex(("127.0.0.1", port))
        clients.append(c)
    deadline = time.monotonic() + 0.5
    pending = list(clients)
    while pending and time.monotonic() < deadline:
        _, ready, _ = select.select([], pending, [], 0.05)
        pending = [c for c in pending if c not in ready]
    connected = [
        c
        for c in clients
        if c not in pending
        and c.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0
    ]
    loop.run_until_complete(asyncio.sleep_ms(20))  # accepted and closed
    for c in clients:
        c.close()
    assert len(connected) == 50


def test_open_connection_refused_raises_oserror(loop):
    port = free_port()

    def main():
        try:
            yield from asyncio.open_connection("127.0.0.1", port)
        except OSError as e:
            return e

    assert isinstance(loop.run_until_complete(main()), ConnectionRefusedError)


# --------------------------------------------------------------------------
# Reading: the seed's semantics
# --------------------------------------------------------------------------


def pair(loop, handler):
    """(reader, writer) of a client connected to a seed server running
    handler."""
    port = serve_with(loop, handler)
    return loop.run_until_complete(asyncio.open_connection("127.0.0.1", port))


@pytest.mark.parametrize("style", ["generator", "async"])
def test_read_minus_1_returns_what_has_arrived_not_the_whole_stream(
    loop, style
):
    release = []

    async def handler(reader, writer):
        await writer.awrite(b"first")
        while not release:
            await asyncio.sleep_ms(1)
        await writer.awrite(b"second")
        await writer.aclose()

    reader, writer = pair(loop, handler)
    if style == "generator":

        def main():
            a = yield from reader.read()
            release.append(1)
            b = yield from reader.read(-1)
            c = yield from reader.read()
            return a, b, c
    else:

        async def main():
            a = await reader.read()
            release.append(1)
            b = await reader.read(-1)
            c = await reader.read()
            return a, b, c

    # the peer still has the connection open after "first"
    assert loop.run_until_complete(main()) == (b"first", b"second", b"")


def test_read_n_returns_at_most_n(loop):
    async def handler(reader, writer):
        await writer.awrite(b"0123456789")
        await writer.aclose()

    reader, writer = pair(loop, handler)

    def main():
        yield from asyncio.sleep_ms(20)
        out = []
        for _ in range(4):
            out.append((yield from reader.read(4)))
        return out

    assert loop.run_until_complete(main()) == [b"0123", b"4567", b"89", b""]


@pytest.mark.parametrize("style", ["generator", "async"])
def test_readexactly_returns_fewer_bytes_at_the_end_of_stream(loop, style):
    async def handler(reader, writer):
        await writer.awrite(b"abc")
        await asyncio.sleep_ms(5)
        await writer.awrite(b"defgh")
        await writer.aclose()

    reader, writer = pair(loop, handler)
    if style == "generator":

        def main():
            a = yield from reader.readexactly(5)  # spans two writes
            b = yield from reader.readexactly(10)  # only 3 left
            c = yield from reader.readexactly(1)
            return a, b, c
    else:

        async def main():
            return (
                await reader.readexactly(5),
                await reader.readexactly(10),
                await reader.readexactly(1),
            )

    assert loop.run_until_complete(main()) == (b"abcde", b"fgh", b"")


@pytest.mark.parametrize("style", ["generator", "async"])
def test_readline_lines_then_the_rest_then_empty(loop, style):
    async def handler(reader, writer):
        await writer.awrite(b"one\ntw")
        await asyncio.sleep_ms(5)
        await writer.awrite(b"o\nlast")
        await writer.aclose()

    reader, writer = pair(loop, handler)
    if style == "generator":

        def main():
            out = []
            for _ in range(4):
                out.append((yield from reader.readline()))
            return out
    else:

        async def main():
            return [await reader.readline() for _ in range(4)]

    assert loop.run_until_complete(main()) == [
        b"one\n",
        b"two\n",
        b"last",
        b"",
    ]


def test_readline_has_no_length_limit(loop):
    long_line = b"x" * 300000 + b"\n"

    async def handler(reader, writer):
        await writer.awrite(long_line + b"short\n")
        await writer.aclose()

    reader, writer = pair(loop, handler)

    def main():
        return (yield from reader.readline()), (yield from reader.readline())

    assert loop.run_until_complete(main()) == (long_line, b"short\n")


def test_readline_of_a_long_line_is_linear(loop):
    """32 MiB in one line: each 64 KiB piece used to copy the whole line
    so far (16 s here, 26 s for 64 MiB); now one growing buffer (0.2 s)."""
    n = 32 << 20
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(1)

    def feed():
        conn, _ = lsock.accept()
        piece = b"x" * (1 << 20)
        for _ in range(n >> 20):
            conn.sendall(piece)
        conn.sendall(b"\nnext\n")
        conn.close()

    feeder = threading.Thread(target=feed)
    feeder.start()

    def main():
        reader, writer = yield from asyncio.open_connection(
            "127.0.0.1", lsock.getsockname()[1]
        )
        t = time.perf_counter()
        line = yield from reader.readline()
        elapsed = time.perf_counter() - t
        rest = yield from reader.readline()
        yield from writer.aclose()
        return line, rest, elapsed

    line, rest, elapsed = loop.run_until_complete(main())
    feeder.join()
    lsock.close()
    assert len(line) == n + 1 and line.count(b"x") == n and rest == b"next\n"
    assert elapsed < 4.0, "a 32 MiB line took %.1f s" % elapsed


@pytest.mark.parametrize("style", ["generator", "async"])
def test_readline_limit_bounds_a_line(loop, style):
    long_line = b"y" * 1000 + b"\n"

    async def handler(reader, writer):
        await writer.awrite(b"short\n" + long_line + long_line)
        await writer.aclose()

    reader, writer = pair(loop, handler)

    def main():
        got = [(yield from reader.readline(limit=100))]
        with pytest.raises(ValueError):
            yield from reader.readline(limit=100)
        # nothing was consumed: the line is read whole without a limit
        got.append((yield from reader.readline()))
        got.append((yield from reader.readexactly(1001)))
        got.append((yield from reader.readline(limit=10)))
        return got

    if style == "async":

        async def amain():
            got = [await reader.readline(limit=100)]
            with pytest.raises(ValueError):
                await reader.readline(limit=100)
            got.append(await reader.readline())
            got.append(await reader.readexactly(1001))
            got.append(await reader.readline(limit=10))
            return got

        coro = amain()
    else:
        coro = main()
    assert loop.run_until_complete(coro) == [
        b"short\n",
        long_line,
        long_line,
        b"",
    ]


def test_readline_limit_on_a_file(loop, tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"ab\n" + b"z" * 50 + b"\n")
    with open(path, "rb") as f:
        reader = asyncio.StreamReader(f)

        def main():
            first = yield from reader.readline(limit=10)
            with pytest.raises(ValueError):
                yield from reader.readline(limit=10)
            return first, (yield from reader.readline())

        assert loop.run_until_complete(main()) == (b"ab\n", b"z" * 50 + b"\n")


def test_readline_after_a_partial_line_and_a_reset_raises(loop):
    """As the seed's socket readline raises the reset (OSError
    ECONNRESET), and asyncio's readline does: not the fragment."""
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(1)

    def main():
        reader, writer = yield from asyncio.open_connection(
            "127.0.0.1", lsock.getsockname()[1]
        )
        conn, _ = lsock.accept()
        conn.sendall(b"partial")
        yield from asyncio.sleep_ms(50)
        conn.setsockopt(
            socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
        )
        conn.close()
        try:
            return (yield from reader.readline())
        finally:
            yield from writer.aclose()

    with pytest.raises(ConnectionResetError):
        loop.run_until_complete(main())
    lsock.close()


# --------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------


def collect(loop):
    """A server that stores what each connection sent until its end."""
    received = []

    async def handler(reader, writer):
        parts = []
        while True:
            data = await reader.read()
            if not data:
                break
            parts.append(data)
        received.append(b"".join(parts))
        await writer.aclose()

    return serve_with(loop, handler), received


@pytest.mark.parametrize("style", ["generator", "async"])
def test_awrite_off_sz_str_awritestr_awriteiter(loop, style):
    port, received = collect(loop)

    def pieces():
        yield b"it"
        yield "er"

    if style == "generator":

        def main():
            reader, writer = yield from asyncio.open_connection(
                "127.0.0.1", port
            )
            yield from writer.awrite(b"0123456789", 2, 3)  # 234
            yield from writer.awrite(b"0123456789", 7)  # 789
            yield from writer.awrite("str-\u00e9-")  # UTF-8
            yield from writer.awritestr("awritestr-")
            yield from writer.awriteiter(pieces())
            yield from writer.aclose()
            yield from asyncio.sleep_ms(20)
    else:

        async def main():
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            await writer.awrite(b"0123456789", 2, 3)
            await writer.awrite(b"0123456789", 7)
            await writer.awrite("str-\u00e9-")
            await writer.awritestr("awritestr-")
            await writer.awriteiter(pieces())
            await writer.aclose()
            await asyncio.sleep_ms(20)

    loop.run_until_complete(main())
    assert received == [b"234789str-\xc3\xa9-awritestr-iter"]


def test_awrite_larger_than_the_socket_buffer_to_a_slow_reader(loop):
    # 8 MiB is more than Linux's largest TCP send buffer (tcp_wmem, 4 MiB):
    # awrite must wait for the peer, who starts reading only after a while.
    blob = bytes(range(256)) * (8 * 4096)
    done = []

    async def handler(reader, writer):
        await writer.awrite(blob)
        done.append(time.monotonic())
        await writer.aclose()

    port = serve_with(loop, handler)
    got = []

    def slow_client():
        s = socket.create_connection(("127.0.0.1", port))
        time.sleep(0.3)
        started = time.monotonic()
        parts = []
        while True:
            data = s.recv(1 << 16)
            if not data:
                break
            parts.append(data)
        s.close()
        got.append((started, b"".join(parts)))

    th = threading.Thread(target=slow_client)
    th.start()

    def main():
        for _ in range(3000):
            if got:
                return
            yield from asyncio.sleep_ms(5)

    loop.run_until_complete(main())
    th.join()
    started, data = got[0]
    assert data == blob
    assert done and done[0] >= started  # awrite waited for the reader


def test_get_extra_info(loop):
    async def handler(reader, writer):
        await writer.aclose()

    reader, writer = pair(loop, handler)
    peer = writer.get_extra_info("peername")
    assert peer[0] == "127.0.0.1" and isinstance(peer[1], int)
    assert writer.get_extra_info("sockname")[0] == "127.0.0.1"
    assert writer.get_extra_info("nothing", "dflt") == "dflt"
    own = asyncio.StreamWriter(io.BytesIO(), {"peername": "given"})
    assert own.get_extra_info("peername") == "given"


def test_aclose_of_reader_and_writer_both(loop):
    async def handler(reader, writer):
        assert await reader.read() == b""
        await reader.aclose()
        await writer.aclose()

    reader, writer = pair(loop, handler)

    async def main():
        await reader.aclose()
        await writer.aclose()  # a second close does nothing
        await asyncio.sleep_ms(10)

    loop.run_until_complete(main())


# --------------------------------------------------------------------------
# StreamReader/StreamWriter on the program's own objects
# --------------------------------------------------------------------------


@pytest.mark.parametrize("style", ["generator", "async"])
def test_reader_and_writer_on_a_socket_the_program_made(loop, style):
    mine, peer = socket.socketpair()
    reader = asyncio.StreamReader(mine)
    writer = asyncio.StreamWriter(mine, {})
    peer.sendall(b"ping\n")
    if style == "generator":

        def main():
            line = yield from reader.readline()
            yield from writer.awrite(b"pong:" + line)
            yield from writer.aclose()
            yield from reader.aclose()
            return line
    else:

        async def main():
            line = await reader.readline()
            await writer.awrite(b"pong:" + line)
            await writer.aclose()
            await reader.aclose()
            return line

    assert loop.run_until_complete(main()) == b"ping\n"
    peer.settimeout(5)
    assert peer.recv(100) == b"pong:ping\n"
    assert peer.recv(100) == b""  # closing the writer closed the socket
    assert mine.fileno() == -1
    peer.close()


def test_reader_and_writer_on_a_pipe(loop):
    rfd, wfd = os.pipe()
    reader = asyncio.StreamReader(os.fdopen(rfd, "rb", buffering=0))
    writer = asyncio.StreamWriter(os.fdopen(wfd, "wb", buffering=0))

    async def produce():
        for i in range(100):
            await writer.awrite(b"%d\n" % i)
            if i % 10 == 0:
                await asyncio.sleep_ms(1)
        await writer.aclose()

    async def consume():
        lines = []
        while True:
            line = await reader.readline()
            if not line:
                break
            lines.append(line)
        await reader.aclose()
        return lines

    loop.create_task(produce())
    assert loop.run_until_complete(consume()) == [
        b"%d\n" % i for i in range(100)
    ]


def test_reader_and_writer_on_raw_descriptors(loop):
    rfd, wfd = os.pipe()
    reader = asyncio.StreamReader(rfd)
    writer = asyncio.StreamWriter(wfd)

    def main():
        yield from writer.awrite(b"fd data\n")
        return (yield from reader.readline())

    assert loop.run_until_complete(main()) == b"fd data\n"
    loop.run_until_complete(writer.aclose())
    loop.run_until_complete(reader.aclose())
    os.close(rfd)  # descriptors stay the program's
    os.close(wfd)


@pytest.mark.parametrize("style", ["generator", "async"])
def test_a_regular_file_is_always_ready(loop, tmp_path, style):
    path = tmp_path / "data.txt"
    path.write_bytes(b"line1\nline2\nrest")
    f = open(path, "rb")
    reader = asyncio.StreamReader(f)
    if style == "generator":

        def main():
            return [
                (yield from reader.readline()),
                (yield from reader.readexactly(3)),
                (yield from reader.read()),
                (yield from reader.read()),
            ]
    else:

        async def main():
            return [
                await reader.readline(),
                await reader.readexactly(3),
                await reader.read(),
                await reader.read(),
            ]

    assert loop.run_until_complete(main()) == [
        b"line1\n",
        b"lin",
        b"e2\nrest",
        b"",
    ]
    loop.run_until_complete(reader.aclose())
    assert f.closed

    out = tmp_path / "out.txt"
    writer = asyncio.StreamWriter(open(out, "wb"))

    async def write():
        await writer.awrite("written ")
        await writer.awrite(b"to a file", 3)
        await writer.aclose()

    loop.run_until_complete(write())
    assert out.read_bytes() == b"written a file"


def test_an_object_without_a_descriptor(loop):
    reader = asyncio.StreamReader(io.BytesIO(b"a\nb"))

    def main():
        return (yield from reader.readline()), (yield from reader.read())

    assert loop.run_until_complete(main()) == (b"a\n", b"b")


def test_a_busy_task_looping_on_sleep_0_does_not_starve_a_reader(loop):
    mine, peer = socket.socketpair()
    reader = asyncio.StreamReader(mine)
    got = []

    def feeder():
        for i in range(5):
            time.sleep(0.02)
            peer.sendall(b"msg %d\n" % i)

    async def receiver():
        while len(got) < 5:
            got.append(await reader.readline())

    spins = []

    async def busy():
        deadline = time.monotonic() + 10
        while len(got) < 5 and time.monotonic() < deadline:
            spins.append(1)
            await asyncio.sleep(0)

    th = threading.Thread(target=feeder)
    th.start()
    loop.create_task(receiver())
    loop.run_until_complete(busy())
    th.join()
    assert got == [b"msg %d\n" % i for i in range(5)]
    assert len(spins) > 5  # the busy task did run all along
    loop.run_until_complete(reader.aclose())
    peer.close()


def test_the_seeds_io_starve_program_shape(loop):
    # The seed's test_io_starve: a file read by a task that sleeps first,
    # while another task loops on sleep(0) and stops the loop.
    done = []

    async def receiver():
        with open(__file__, "rb") as f:
            sreader = asyncio.StreamReader(f)
            while True:
                await asyncio.sleep(0.05)
                await sreader.readline()
                done.append(True)

    async def foo():
        start = time.time()
        while time.time() - start < 0.3:
            await asyncio.sleep(0)
        loop.stop()

    loop.create_task(foo())
    loop.create_task(receiver())
    loop.run_forever()
    assert done


# --------------------------------------------------------------------------
# IORead / IOWrite on the program's own sockets
# --------------------------------------------------------------------------


def test_ioread_iowrite_generator_style(loop):
    a, b = socket.socketpair()
    a.setblocking(False)
    b.setblocking(False)

    def reader_task(out):
        while len(out) < 3:
            yield IORead(a)
            out.append(a.recv(100))
        yield IOReadDone(a)

    def writer_task():
        for i in range(3):
            yield IOWrite(b)
            b.send(b"m%d" % i)
            yield from asyncio.sleep_ms(5)

    out = []
    loop.create_task(writer_task())
    loop.run_until_complete(reader_task(out))
    assert out == [b"m0", b"m1", b"m2"]
    a.close()
    b.close()


def test_ioread_in_async_def_through_a_decorated_generator(loop):
    a, b = socket.socketpair()
    a.setblocking(False)

    @asyncio.coroutine
    def readable(s):
        yield IORead(s)

    async def main():
        threading.Timer(0.02, b.send, (b"late",)).start()
        t0 = time.monotonic()
        await readable(a)
        return a.recv(10), time.monotonic() - t0

    data, waited = loop.run_until_complete(main())
    assert data == b"late" and waited >= 0.015
    a.close()
    b.close()


def test_ioread_wait_is_cancellable(loop):
    a, b = socket.socketpair()
    out = []

    def waiter():
        try:
            yield IORead(a)
        except asyncio.CancelledError:
            out.append("cancelled")

    coro = waiter()
    loop.create_task(coro)

    def main():
        yield from asyncio.sleep_ms(5)
        asyncio.cancel(coro)
        yield from asyncio.sleep_ms(5)
        # the descriptor can be waited on again by another task
        b.send(b"x")
        yield IORead(a)
        out.append(a.recv(1))

    loop.run_until_complete(main())
    assert out == ["cancelled", b"x"]
    a.close()
    b.close()


@pytest.mark.parametrize("style", ["generator", "async"])
def test_a_server_of_the_programs_own_in_the_seeds_start_server_shape(
    loop, style
):
    # The seed's own start_server: a non-blocking listening socket, IORead
    # before each accept, StreamReader/StreamWriter on the accepted socket,
    # the handler spawned by yielding it.
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(10)
    listener.setblocking(False)
    port = listener.getsockname()[1]

    if style == "generator":

        def handler(reader, writer):
            data = yield from reader.readline()
            yield from writer.awrite(b"got " + data)
            yield from writer.aclose()
    else:

        async def handler(reader, writer):
            data = await reader.readline()
            await writer.awrite(b"got " + data)
            await writer.aclose()

    def accept_loop():
        try:
            while True:
                yield IORead(listener)
                s2, addr = listener.accept()
                s2.setblocking(False)
                yield handler(
                    asyncio.StreamReader(s2),
                    asyncio.StreamWriter(s2, {"peername": addr}),
                )
        finally:
            listener.close()

    async def client(i):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        await writer.awrite(b"client %d\n" % i)
        line = await reader.readline()
        await writer.aclose()
        return line

    server = accept_loop()
    loop.create_task(server)
    replies = []

    @asyncio.coroutine  # it yields from an async def coroutine
    def main():
        for i in range(20):
            replies.append((yield from client(i)))
        asyncio.cancel(server)
        yield

    loop.run_until_complete(main())
    assert replies == [b"got client %d\n" % i for i in range(20)]
    loop.run_until_complete(asyncio.sleep(0))
    assert listener.fileno() == -1
