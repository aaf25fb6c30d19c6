"""Stream calls that real clients need beyond read/readline/write:
writelines (one vectored write in the core), readuntil, exception(),
feed_eof(), at_eof(), get_extra_info('socket'), and readline when the
connection is reset in the middle of a line. Each against uvasync and,
where the behaviour is asyncio's, CPython's asyncio."""

import os
import socket
import struct
import sys

import pytest

import uvasync

HOST = "127.0.0.1"


async def _serve(aio, handler):
    server = await aio.start_server(handler, HOST, 0)
    return server, server.sockets[0].getsockname()[1]


async def _close(writer):
    writer.close()
    await writer.wait_closed()


def _sender(data):
    """A handler that sends `data`, then ends the stream."""

    async def send(reader, writer):
        writer.write(data)
        await writer.drain()
        writer.close()

    return send


def _reset(conn):
    """Close with SO_LINGER {1, 0}: the peer sees a reset (RST)."""
    conn.setsockopt(
        socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
    )
    conn.close()


# ---- writelines -----------------------------------------------------------


def test_writelines_of_many_small_items_arrives_in_order(aio):
    items = [b"%d," % i for i in range(100000)]

    async def main():
        got = []
        done = aio.Event()

        async def collect(reader, writer):
            got.append(await reader.read(-1))
            writer.close()
            done.set()

        server, port = await _serve(aio, collect)
        reader, writer = await aio.open_connection(HOST, port)
        writer.writelines(items)
        writer.writelines([bytearray(b"ba"), memoryview(b"mv"), b""])
        await writer.drain()
        await _close(writer)
        await done.wait()
        server.close()
        await server.wait_closed()
        assert got[0] == b"".join(items) + b"bamv"

    aio.run(main())


def _write_syscalls():
    """write/writev calls of this process so far (/proc/self/io)."""
    with open("/proc/self/io") as f:
        for line in f:
            if line.startswith("syscw:"):
                return int(line.split()[1])


@pytest.mark.skipif(not os.path.exists("/proc/self/io"), reason="Linux only")
def test_writelines_is_one_system_call(tmp_path):
    """On a Unix socket (written with write/writev, which /proc/self/io
    counts, unlike TCP's send/sendmsg) 10000 items leave in one call while
    the kernel has room; before, one per item."""
    path = str(tmp_path / "s")
    # 1000 items: one vectored write; 10000: joined into one write
    batches = [[b"x%d" % (i % 10) for i in range(n)] for n in (1000, 10000)]

    async def main():
        got = []

        async def collect(reader, writer):
            got.append(await reader.read(-1))
            writer.close()

        server = await uvasync.start_unix_server(collect, path)
        reader, writer = await uvasync.open_unix_connection(path)
        writer.set_option("low_water", 0)
        calls = []
        for items in batches:
            before = _write_syscalls()
            writer.writelines(items)
            calls.append(_write_syscalls() - before)
            await writer.drain()
        await _close(writer)
        await uvasync.sleep(0.05)
        server.close()
        await server.wait_closed()
        assert calls == [1, 1]
        assert got[0] == b"".join(batches[0] + batches[1])

    uvasync.run(main())


def test_writelines_of_str_is_a_type_error_of_a_closed_stream_an_os_error(aio):
    async def main():
        server, port = await _serve(aio, _sender(b""))
        reader, writer = await aio.open_connection(HOST, port)
        with pytest.raises(TypeError):
            writer.writelines([b"a", "str"])
        await _close(writer)
        if aio is uvasync:  # asyncio drops writes to a closed transport
            with pytest.raises(OSError):
                writer.writelines([b"a", b"b"])
        server.close()

    aio.run(main())


# ---- readuntil --------------------------------------------------------------


def test_readuntil_a_multibyte_separator(aio):
    async def main():
        server, port = await _serve(
            aio, _sender(b"HTTP/1.0 200 OK\r\nA: b\r\n\r\nbody")
        )
        reader, writer = await aio.open_connection(HOST, port)
        assert await reader.readuntil(b"\r\n") == b"HTTP/1.0 200 OK\r\n"
        assert await reader.readuntil(b"\r\n\r\n") == b"A: b\r\n\r\n"
        with pytest.raises(aio.IncompleteReadError) as e:
            await reader.readuntil(b"\r\n")
        assert e.value.partial == b"body" and e.value.expected is None
        assert await reader.read() == b""
        with pytest.raises(ValueError):
            await reader.readuntil(b"")
        await _close(writer)
        server.close()

    aio.run(main())


def test_readuntil_default_separator_is_newline(aio):
    async def main():
        server, port = await _serve(aio, _sender(b"one\ntwo"))
        reader, writer = await aio.open_connection(HOST, port)
        assert await reader.readuntil() == b"one\n"
        with pytest.raises(aio.IncompleteReadError) as e:
            await reader.readuntil()
        assert e.value.partial == b"two"
        await _close(writer)
        server.close()

    aio.run(main())


def test_readuntil_past_the_limit_is_limit_overrun_data_kept(aio):
    async def main():
        server, port = await _serve(aio, _sender(b"x" * 100 + b"--tail"))
        reader, writer = await aio.open_connection(HOST, port, limit=10)
        with pytest.raises(aio.LimitOverrunError) as e:
            await reader.readuntil(b"--")
        assert e.value.consumed > 10
        # nothing was consumed: the bytes are still there
        assert await reader.readexactly(100) == b"x" * 100
        assert await reader.readuntil(b"--") == b"--"
        await _close(writer)
        server.close()

    aio.run(main())


def test_limit_of_open_connection_and_start_server_bounds_readline(aio):
    """asyncio's `limit` (the separator not counted): a line of exactly
    limit bytes and its newline is read, one byte more is a ValueError."""

    async def main():
        got = []
        done = aio.Event()

        async def handler(reader, writer):
            got.append(await reader.readline())
            try:
                await reader.readline()
            except ValueError:
                got.append("too long")
            writer.close()
            done.set()

        server = await aio.start_server(handler, HOST, 0, limit=8)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await aio.open_connection(HOST, port, limit=8)
        writer.write(b"12345678\n123456789\n")
        await writer.drain()
        await done.wait()
        await _close(writer)
        server.close()
        await server.wait_closed()
        assert got == [b"12345678\n", "too long"]

    aio.run(main())


# ---- reset in the middle of a line -----------------------------------------


def _partial_then_reset_server():
    lsock = socket.socket()
    lsock.bind((HOST, 0))
    lsock.listen(1)
    return lsock


def test_readline_after_a_partial_line_and_a_reset_raises(aio):
    async def main():
        lsock = _partial_then_reset_server()
        reader, writer = await aio.open_connection(
            HOST, lsock.getsockname()[1]
        )
        conn, _ = lsock.accept()
        conn.sendall(b"partial")
        await aio.sleep(0.05)
        _reset(conn)
        lsock.close()
        with pytest.raises(ConnectionResetError):
            await reader.readline()
        assert isinstance(reader.exception(), ConnectionResetError)
        assert not reader.at_eof()
        writer.close()

    aio.run(main())


def test_readline_waiting_when_the_reset_comes_raises(aio):
    async def main():
        lsock = _partial_then_reset_server()
        reader, writer = await aio.open_connection(
            HOST, lsock.getsockname()[1]
        )
        conn, _ = lsock.accept()
        conn.sendall(b"partial")
        task = aio.create_task(reader.readline())
        await aio.sleep(0.05)  # the reader took b"partial" and waits
        _reset(conn)
        lsock.close()
        with pytest.raises(ConnectionResetError):
            await task
        writer.close()

    aio.run(main())


# ---- exception, at_eof, feed_eof ----------------------------------------------


def test_at_eof_and_exception_on_a_clean_end(aio):
    async def main():
        server, port = await _serve(aio, _sender(b"last"))
        reader, writer = await aio.open_connection(HOST, port)
        assert not reader.at_eof()
        assert reader.exception() is None
        assert await reader.read(2) == b"la"
        assert await reader.read(2) == b"st"
        assert await reader.read(2) == b""
        assert reader.at_eof()
        assert reader.exception() is None
        await _close(writer)
        server.close()

    aio.run(main())


def test_feed_eof_ends_a_waiting_readline_with_what_is_buffered(aio):
    async def main():
        lsock = _partial_then_reset_server()
        reader, writer = await aio.open_connection(
            HOST, lsock.getsockname()[1]
        )
        conn, _ = lsock.accept()
        conn.sendall(b"abc")
        task = aio.create_task(reader.readline())
        await aio.sleep(0.05)  # the reader took b"abc" and waits
        assert not reader.at_eof()
        reader.feed_eof()
        assert await task == b"abc"
        assert reader.at_eof()
        assert await reader.read(10) == b""
        conn.close()
        lsock.close()
        await _close(writer)

    aio.run(main())


# ---- get_extra_info('socket') -----------------------------------------------


def test_extra_info_socket_sets_options_and_tells_addresses(aio):
    async def main():
        server, port = await _serve(aio, _sender(b""))
        reader, writer = await aio.open_connection(HOST, port)
        sock = writer.get_extra_info("socket")
        assert sock.family == socket.AF_INET
        assert sock.type == socket.SOCK_STREAM
        assert sock.fileno() >= 0
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
        assert sock.getsockname() == writer.get_extra_info("sockname")
        assert sock.getpeername() == (HOST, port)
        # the stream still works, and it, not the object, owns the socket
        del sock
        import gc

        gc.collect()
        assert await reader.read() == b""
        sock = writer.get_extra_info("socket")
        await _close(writer)
        assert sock.fileno() == -1
        server.close()

    aio.run(main())


def test_extra_info_socket_does_not_keep_the_stream_alive():
    """The stream caches the object; it refers back weakly, so a stream
    nobody holds is still dropped at once (with its ResourceWarning)."""
    import gc
    import warnings
    import weakref

    async def main():
        server, port = await _serve(uvasync, _sender(b""))
        reader, writer = await uvasync.open_connection(HOST, port)
        sock = writer.get_extra_info("socket")
        ref = weakref.ref(writer)
        gc.disable()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ResourceWarning)
                del reader, writer
            assert ref() is None
        finally:
            gc.enable()
        assert sock.fileno() == -1
        server.close()

    uvasync.run(main())


@pytest.mark.skipif(sys.platform == "win32", reason="Unix sockets")
def test_extra_info_socket_of_a_unix_stream(aio, tmp_path):
    path = str(tmp_path / "s")

    async def main():
        server = await aio.start_unix_server(_sender(b""), path)
        reader, writer = await aio.open_unix_connection(path)
        sock = writer.get_extra_info("socket")
        assert sock.family == socket.AF_UNIX
        assert sock.getpeername() == path
        await _close(writer)
        server.close()

    aio.run(main())
