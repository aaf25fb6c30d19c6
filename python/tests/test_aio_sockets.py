"""uvasync.EventLoop's low-level socket calls (sock_recv, sock_sendall,
sock_connect, sock_accept, sock_sendfile, ...) and add_reader/add_writer on
the core's descriptor poll. Every scenario runs on asyncio's own loop too,
as the reference."""

import asyncio
import io
import os
import socket

import pytest

import uvasync

LOOPS = [
    pytest.param(uvasync.EventLoop, id="uvasync"),
    pytest.param(asyncio.SelectorEventLoop, id="asyncio"),
]
# sock_recvfrom, sock_recvfrom_into, sock_sendto: asyncio has them since
# 3.11, uvasync on every version
LOOPS_SINCE_311 = [p for p in LOOPS if hasattr(p.values[0], "sock_sendto")]


@pytest.fixture(params=LOOPS)
def loop(request):
    loop = request.param()
    yield loop
    loop.close()


@pytest.fixture
def pair():
    a, b = socket.socketpair()
    a.setblocking(False)
    b.setblocking(False)
    yield a, b
    a.close()
    b.close()


def run(loop, coro, timeout=5):
    return loop.run_until_complete(asyncio.wait_for(coro, timeout))


def watching(loop, fd):
    """uvasync only: whether a reader or writer is set on fd."""
    w = (getattr(loop, "_aio_fds", None) or {}).get(fd)
    return w is not None and (w.reader is not None or w.writer is not None)


def test_recv_waits_for_data_and_sendall_sends_it_all(loop, pair):
    a, b = pair
    data = os.urandom(4 * 1024 * 1024)  # far more than the socket buffers

    async def reader():
        got = bytearray()
        while len(got) < len(data):
            chunk = await loop.sock_recv(a, 65536)
            assert chunk
            got += chunk
        return bytes(got)

    async def main():
        task = loop.create_task(reader())
        await asyncio.sleep(0.01)  # the reader waits on the poll
        assert await loop.sock_sendall(b, data) is None
        assert await task == data
        b.close()
        assert await loop.sock_recv(a, 10) == b""  # the end

    run(loop, main())
    assert not watching(loop, a.fileno())


def test_recv_into(loop, pair):
    a, b = pair

    async def main():
        buf = bytearray(10)
        task = loop.create_task(loop.sock_recv_into(a, buf))
        await asyncio.sleep(0.01)
        await loop.sock_sendall(b, b"hello")
        assert await task == 5
        assert buf[:5] == b"hello"

    run(loop, main())


@pytest.mark.parametrize("loop", LOOPS_SINCE_311, indirect=True)
def test_datagram_calls(loop):
    a = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    b = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for s in (a, b):
        s.setblocking(False)
        s.bind(("127.0.0.1", 0))

    async def main():
        task = loop.create_task(loop.sock_recvfrom(a, 100))
        await asyncio.sleep(0.01)
        assert await loop.sock_sendto(b, b"one", a.getsockname()) == 3
        assert await task == (b"one", b.getsockname())
        buf = bytearray(100)
        task = loop.create_task(loop.sock_recvfrom_into(a, buf, 2))
        await asyncio.sleep(0.01)
        await loop.sock_sendto(b, b"two", a.getsockname())
        assert await task == (2, b.getsockname())  # at most nbytes
        assert buf[:2] == b"tw"

    try:
        run(loop, main())
    finally:
        a.close()
        b.close()


def test_connect_resolves_and_accept_gives_a_nonblocking_socket(loop):
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen()
    srv.setblocking(False)
    c = socket.socket()
    c.setblocking(False)

    async def main():
        accepting = loop.create_task(loop.sock_accept(srv))
        await asyncio.sleep(0.01)  # accept waits on the poll
        await loop.sock_connect(c, ("localhost", srv.getsockname()[1]))
        conn, addr = await accepting
        with conn:
            assert conn.gettimeout() == 0
            assert addr == c.getsockname()
            await loop.sock_sendall(c, b"ping")
            assert await loop.sock_recv(conn, 10) == b"ping"

    try:
        run(loop, main())
    finally:
        srv.close()
        c.close()


def test_connect_refused(loop):
    port_sock = socket.socket()
    port_sock.bind(("127.0.0.1", 0))
    port = port_sock.getsockname()[1]
    port_sock.close()  # nobody listens there
    c = socket.socket()
    c.setblocking(False)

    async def main():
        with pytest.raises(ConnectionRefusedError):
            await loop.sock_connect(c, ("127.0.0.1", port))

    try:
        run(loop, main())
    finally:
        c.close()
    assert not watching(loop, c.fileno())


def test_cancelled_recv_takes_no_data_and_leaves_no_watcher(loop, pair):
    a, b = pair

    async def main():
        task = loop.create_task(loop.sock_recv(a, 100))
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert not watching(loop, a.fileno())
        b.send(b"after")
        await asyncio.sleep(0.01)
        assert await loop.sock_recv(a, 100) == b"after"

    run(loop, main())


def test_cancelled_sendall_leaves_no_watcher(loop, pair):
    a, b = pair

    async def main():
        task = loop.create_task(loop.sock_sendall(b, b"x" * (16 << 20)))
        await asyncio.sleep(0.01)  # the kernel buffer is full: it waits
        assert not task.done()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert not watching(loop, b.fileno())

    run(loop, main())


def test_descriptor_numbers_reused_after_close(loop):
    """A socket closed after its calls, and a new one given the same
    number: the new one is watched, not the closed one."""

    async def main():
        for _ in range(3):
            a, b = socket.socketpair()
            a.setblocking(False)
            b.setblocking(False)
            with a, b:
                task = loop.create_task(loop.sock_recv(a, 10))
                await asyncio.sleep(0.005)
                b.send(b"x")
                assert await task == b"x"
                task = loop.create_task(loop.sock_recv(a, 10))
                await asyncio.sleep(0.005)
                task.cancel()  # closed with a cancelled wait too
                with pytest.raises(asyncio.CancelledError):
                    await task

    run(loop, main())


def test_debug_mode_refuses_a_blocking_socket(loop, pair):
    a, _ = pair
    a.setblocking(True)
    loop.set_debug(True)

    async def main():
        with pytest.raises(ValueError, match="non-blocking"):
            await loop.sock_recv(a, 10)
        with pytest.raises(ValueError, match="non-blocking"):
            await loop.sock_sendall(a, b"x")

    run(loop, main())


def test_readers_and_writers(loop, pair):
    a, b = pair
    seen = []

    async def main():
        readable = loop.create_future()
        writable = loop.create_future()

        def on_read():
            seen.append(("r", a.recv(10)))
            if not readable.done():
                readable.set_result(None)

        def on_write(tag):
            seen.append(("w", tag))
            if not writable.done():
                writable.set_result(None)

        assert loop.add_reader(a.fileno(), on_read) is None
        assert loop.add_writer(a, on_write, "a") is None  # same descriptor
        await writable
        assert loop.remove_writer(a) is True
        assert loop.remove_writer(a) is False
        b.send(b"data")
        await readable
        assert seen[-1] == ("r", b"data")
        # a second reader replaces the first
        again = loop.create_future()
        loop.add_reader(
            a, lambda: again.done() or again.set_result(a.recv(10))
        )
        b.send(b"more")
        assert await again == b"more"
        assert loop.remove_reader(a) is True
        assert loop.remove_reader(a) is False
        b.send(b"unseen")
        await asyncio.sleep(0.02)
        assert a.recv(10) == b"unseen"

    run(loop, main())
    assert seen[0] == ("w", "a")
    assert not watching(loop, a.fileno())


def test_reader_error_goes_to_the_exception_handler(loop, pair):
    a, b = pair
    caught = []
    loop.set_exception_handler(lambda lp, ctx: caught.append(ctx))

    async def main():
        def boom():
            a.recv(10)
            loop.remove_reader(a)
            raise ZeroDivisionError

        loop.add_reader(a, boom)
        b.send(b"x")
        for _ in range(100):
            await asyncio.sleep(0.001)
            if caught:
                break

    run(loop, main())
    assert isinstance(caught[0]["exception"], ZeroDivisionError)


def test_bad_descriptors_and_closed_loop(loop):
    with pytest.raises(ValueError):
        loop.add_reader(-1, print)
    with pytest.raises(ValueError):
        loop.add_writer(object(), print)
    assert loop.remove_reader(12345) is False
    loop.close()
    with pytest.raises(RuntimeError):
        loop.add_reader(0, print)
    assert loop.remove_writer(0) is False


def test_close_with_a_reader_set(loop, pair):
    a, _ = pair
    loop.add_reader(a, print)
    loop.add_writer(a, print)
    loop.close()
    assert loop.is_closed()


@pytest.fixture
def data_file(tmp_path):
    data = os.urandom(3 * 1024 * 1024 + 17)
    path = tmp_path / "data"
    path.write_bytes(data)
    return path, data


async def _drain(loop, sock, n):
    got = bytearray()
    while len(got) < n:
        chunk = await loop.sock_recv(sock, 1 << 20)
        if not chunk:
            break
        got += chunk
    return bytes(got)


@pytest.mark.parametrize("count", [None, 1000])
def test_sendfile(loop, pair, data_file, count):
    a, b = pair
    path, data = data_file
    offset = 5
    want = data[offset : offset + count] if count else data[offset:]

    async def main():
        with open(path, "rb") as f:
            reading = loop.create_task(_drain(loop, a, len(want)))
            sent = await loop.sock_sendfile(b, f, offset, count)
            assert sent == len(want)
            assert f.tell() == offset + sent
            assert await reading == want

    run(loop, main())


def test_sendfile_fallback(loop, pair):
    a, b = pair
    data = os.urandom(300_000)

    async def main():
        f = io.BytesIO(data)  # no descriptor: no os.sendfile
        with pytest.raises(asyncio.SendfileNotAvailableError):
            await loop.sock_sendfile(b, f, fallback=False)
        reading = loop.create_task(_drain(loop, a, len(data) - 10))
        assert await loop.sock_sendfile(b, f, 10) == len(data) - 10
        assert f.tell() == len(data)
        assert await reading == data[10:]

    run(loop, main())


def test_sendfile_checks(loop, pair, data_file):
    _, b = pair
    path, _ = data_file
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.setblocking(False)

    async def main():
        with open(path, "rb") as f:
            with pytest.raises(ValueError):
                await loop.sock_sendfile(udp, f)
            with pytest.raises(ValueError):
                await loop.sock_sendfile(b, f, -1)
            with pytest.raises(TypeError):
                await loop.sock_sendfile(b, f, 0, "1")
        with open(path, "r") as text:
            with pytest.raises(ValueError):
                await loop.sock_sendfile(b, text)

    try:
        run(loop, main())
    finally:
        udp.close()


@pytest.mark.parametrize("loop", LOOPS_SINCE_311, indirect=True)
def test_a_wrapped_socket_is_called_again_by_name(loop):
    """The call a waiting sock_* makes again looks the method up each time
    (as asyncio's): a wrapper whose sendto would block at first."""
    a = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    b = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for s in (a, b):
        s.setblocking(False)
        s.bind(("127.0.0.1", 0))

    class Wrapper:
        def __init__(self, sock):
            self.sock = sock
            self.family, self.type = sock.family, sock.type
            self.fileno, self.gettimeout = sock.fileno, sock.gettimeout

        def sendto(self, data, addr):
            raise BlockingIOError

    async def main():
        w = Wrapper(a)
        loop.call_soon(setattr, w, "sendto", a.sendto)
        assert await loop.sock_sendto(w, b"late", b.getsockname()) == 4
        assert await loop.sock_recv(b, 10) == b"late"

    try:
        run(loop, main())
    finally:
        a.close()
        b.close()
