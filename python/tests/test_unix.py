"""Unix-domain socket streams: start_unix_server/open_unix_connection."""

import os
import shutil
import socket
import tempfile

import pytest
from test_streams import _echo  # the same echo handler


@pytest.fixture
def sock_path():
    """A short socket path (sun_path holds about 100 bytes)."""
    d = tempfile.mkdtemp(prefix="uvapy", dir="/tmp")
    yield os.path.join(d, "s")
    shutil.rmtree(d, ignore_errors=True)


def test_echo_over_a_unix_socket(aio, sock_path):
    async def main():
        server = await aio.start_unix_server(_echo, sock_path)
        reader, writer = await aio.open_unix_connection(sock_path)
        for i in range(100):
            writer.write(b"message %d\n" % i)
            await writer.drain()
            assert await reader.readline() == b"message %d\n" % i
        payload = os.urandom(300000)
        writer.write(payload)
        await writer.drain()
        assert await reader.readexactly(len(payload)) == payload
        writer.close()
        await writer.wait_closed()
        server.close()
        await server.wait_closed()

    aio.run(main())


def test_several_unix_clients_at_once(aio, sock_path):
    async def main():
        server = await aio.start_unix_server(_echo, sock_path)

        async def client(i):
            reader, writer = await aio.open_unix_connection(sock_path)
            writer.write(b"%d\n" % i)
            line = await reader.readline()
            writer.close()
            await writer.wait_closed()
            return int(line)

        result = await aio.gather(*[client(i) for i in range(50)])
        server.close()
        await server.wait_closed()
        return result

    assert aio.run(main()) == list(range(50))


def test_the_client_sees_the_server_path_as_peername(aio, sock_path):
    async def main():
        server_side = []

        async def handler(reader, writer):
            server_side.append(writer.get_extra_info("sockname"))
            writer.close()

        server = await aio.start_unix_server(handler, sock_path)
        reader, writer = await aio.open_unix_connection(sock_path)
        assert await reader.read() == b""
        assert writer.get_extra_info("peername") == sock_path
        assert server_side == [sock_path]
        writer.close()
        server.close()

    aio.run(main())


def test_connecting_to_a_missing_path_is_file_not_found(aio, sock_path):
    async def main():
        with pytest.raises(FileNotFoundError):
            await aio.open_unix_connection(sock_path + "-missing")

    aio.run(main())


def test_connecting_to_a_socket_nobody_listens_on_is_refused(aio, sock_path):
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(sock_path)  # the file exists, nobody listens
    stale.close()

    async def main():
        with pytest.raises(ConnectionRefusedError):
            await aio.open_unix_connection(sock_path)

    aio.run(main())
