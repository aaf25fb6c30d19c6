"""The exceptions a Python user expects, as CPython's asyncio raises them:
ConnectionRefusedError, socket.gaierror, ConnectionResetError,
BrokenPipeError, IncompleteReadError (an EOFError)."""

import socket
import struct

import pytest

HOST = "127.0.0.1"


def _closed_port():
    """A port nobody listens on (bound, then released)."""
    s = socket.socket()
    s.bind((HOST, 0))
    port = s.getsockname()[1]
    s.close()
    return port


def _listener():
    s = socket.socket()
    s.bind((HOST, 0))
    s.listen(5)
    s.setblocking(False)
    return s


async def _accept(aio, listener):
    """Accept on a plain socket without blocking the loop."""
    for _ in range(1000):
        try:
            conn, _ = listener.accept()
            return conn
        except BlockingIOError:
            await aio.sleep(0.005)
    raise AssertionError("no connection arrived")


def _reset(conn):
    """Close with SO_LINGER 0: the peer gets a RST, not a FIN."""
    conn.setsockopt(
        socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
    )
    conn.close()


def test_connecting_to_a_closed_port_is_refused(aio):
    port = _closed_port()

    async def main():
        with pytest.raises(ConnectionRefusedError):
            await aio.open_connection(HOST, port)

    aio.run(main())


def test_an_unknown_host_name_is_a_gaierror(aio):
    async def main():
        with pytest.raises(socket.gaierror):
            await aio.open_connection("nonexistent.invalid", 80)

    aio.run(main())


def test_a_host_name_is_resolved(aio):
    async def main():
        server = await aio.start_server(lambda r, w: w.close(), HOST, 0)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await aio.open_connection("localhost", port)
        writer.close()
        server.close()

    try:
        socket.getaddrinfo("localhost", 80, socket.AF_INET)
    except socket.gaierror:
        pytest.skip("no 'localhost' here")
    aio.run(main())


def test_reading_from_a_reset_connection(aio):
    listener = _listener()
    port = listener.getsockname()[1]

    async def main():
        reader, writer = await aio.open_connection(HOST, port)
        conn = await _accept(aio, listener)
        _reset(conn)
        with pytest.raises(ConnectionResetError):
            for _ in range(100):  # bounded: the RST is already on its way
                if not await reader.read(100):
                    break
        writer.close()

    try:
        aio.run(main())
    finally:
        listener.close()


def test_reset_while_a_reader_waits(aio):
    listener = _listener()
    port = listener.getsockname()[1]

    async def main():
        reader, writer = await aio.open_connection(HOST, port)
        conn = await _accept(aio, listener)
        reading = aio.create_task(reader.readline())
        await aio.sleep(0.01)
        _reset(conn)
        with pytest.raises(ConnectionResetError):
            await aio.wait_for(reading, 5)
        writer.close()

    try:
        aio.run(main())
    finally:
        listener.close()


def test_writing_to_a_reset_connection(aio):
    """Broken pipe or reset, whichever the kernel says first: both are
    ConnectionErrors, and one of them comes within a few writes."""
    listener = _listener()
    port = listener.getsockname()[1]

    async def main():
        reader, writer = await aio.open_connection(HOST, port)
        conn = await _accept(aio, listener)
        _reset(conn)
        await aio.sleep(0.02)
        with pytest.raises((BrokenPipeError, ConnectionResetError)):
            for _ in range(100):
                writer.write(b"x" * 1000)
                await writer.drain()
                await aio.sleep(0.001)
        writer.close()

    try:
        aio.run(main())
    finally:
        listener.close()


def test_incomplete_read_error_is_an_eof_error(aio):
    assert issubclass(aio.IncompleteReadError, EOFError)
    err = aio.IncompleteReadError(b"part", 10)
    assert err.partial == b"part" and err.expected == 10


def test_an_exception_in_a_task_keeps_its_type_and_traceback(aio):
    class Custom(Exception):
        pass

    def deep():
        raise Custom("deep down")

    async def child():
        await aio.sleep(0)
        deep()

    async def main():
        await aio.create_task(child())

    with pytest.raises(Custom) as info:
        aio.run(main())
    names = [entry.name for entry in info.traceback]
    assert "deep" in names and "child" in names
