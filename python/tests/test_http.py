"""A small HTTP/1.1 server on start_server (readline for the request line
and headers, readexactly for a body, write for the response) answering
1,000 requests from a concurrent client; every response is checked."""

import pytest

HOST = "127.0.0.1"


async def _read_head(reader):
    """The start line and the headers (lower-case names); None at EOF."""
    start = await reader.readline()
    if not start:
        return None, None
    headers = {}
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b"\n", b""):
            break
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    return start.decode("latin-1").rstrip("\r\n"), headers


async def _handle(reader, writer):
    """Answer each request with its method, path and body; keep the
    connection unless the client says close."""
    try:
        while True:
            start, headers = await _read_head(reader)
            if start is None:
                break
            method, path, version = start.split(" ")
            body = b""
            if "content-length" in headers:
                body = await reader.readexactly(int(headers["content-length"]))
            payload = b"%s %s %s" % (method.encode(), path.encode(), body)
            close = headers.get("connection", "").lower() == "close"
            writer.write(
                b"HTTP/1.1 200 OK\r\n"
                b"Content-Type: text/plain\r\n"
                b"Content-Length: %d\r\n"
                b"%s"
                b"\r\n%s"
                % (
                    len(payload),
                    b"Connection: close\r\n" if close else b"",
                    payload,
                )
            )
            await writer.drain()
            if close:
                break
    finally:
        writer.close()


async def _read_response(reader):
    status, headers = await _read_head(reader)
    assert status == "HTTP/1.1 200 OK", status
    body = await reader.readexactly(int(headers["content-length"]))
    return headers, body


def _request(path, body=b"", close=False):
    head = "%s %s HTTP/1.1\r\nHost: test\r\n" % (
        "POST" if body else "GET",
        path,
    )
    if body:
        head += "Content-Length: %d\r\n" % len(body)
    if close:
        head += "Connection: close\r\n"
    return head.encode() + b"\r\n" + body


def test_a_thousand_requests_from_a_concurrent_client(aio):
    n_clients, per_client = 20, 50

    async def keep_alive_client(c):
        reader, writer = await aio.open_connection(HOST, port[0])
        answers = 0
        for i in range(per_client):
            path = "/keep/%d/%d" % (c, i)
            writer.write(_request(path))
            await writer.drain()
            headers, body = await _read_response(reader)
            assert body == b"GET %s " % path.encode()
            assert headers["content-type"] == "text/plain"
            answers += 1
        writer.close()
        await writer.wait_closed()
        return answers

    async def new_connection_client(c):
        answers = 0
        for i in range(per_client):
            path = "/new/%d/%d" % (c, i)
            body = b"body %d" % i if i % 2 else b""
            reader, writer = await aio.open_connection(HOST, port[0])
            writer.write(_request(path, body, close=True))
            await writer.drain()
            headers, got = await _read_response(reader)
            method = b"POST" if body else b"GET"
            assert got == b"%s %s %s" % (method, path.encode(), body)
            assert headers["connection"] == "close"
            assert await reader.read() == b""  # the server closed
            writer.close()
            await writer.wait_closed()
            answers += 1
        return answers

    port = [None]

    async def main():
        server = await aio.start_server(_handle, HOST, 0)
        port[0] = server.sockets[0].getsockname()[1]
        clients = [
            keep_alive_client(c) if c % 2 == 0 else new_connection_client(c)
            for c in range(n_clients)
        ]
        counts = await aio.wait_for(aio.gather(*clients), 60)
        server.close()
        await server.wait_closed()
        return sum(counts)

    assert aio.run(main()) == n_clients * per_client


def test_pipelined_requests_are_answered_in_order(aio):
    async def main():
        server = await aio.start_server(_handle, HOST, 0)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await aio.open_connection(HOST, port)
        paths = ["/p/%d" % i for i in range(30)]
        writer.write(
            b"".join(_request(p, b"x" * i) for i, p in enumerate(paths))
        )
        await writer.drain()
        for i, p in enumerate(paths):
            _, body = await _read_response(reader)
            method = b"POST" if i else b"GET"
            assert body == b"%s %s %s" % (method, p.encode(), b"x" * i)
        writer.close()
        await writer.wait_closed()
        server.close()
        await server.wait_closed()

    aio.run(main())


@pytest.mark.parametrize("size", [100000, 1000000])
def test_a_large_request_body(aio, size):
    async def main():
        server = await aio.start_server(_handle, HOST, 0)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await aio.open_connection(HOST, port)
        body = bytes(range(256)) * (size // 256)
        writer.write(_request("/big", body, close=True))
        await writer.drain()
        _, got = await _read_response(reader)
        assert got == b"POST /big " + body
        writer.close()
        server.close()
        await server.wait_closed()

    aio.run(main())
