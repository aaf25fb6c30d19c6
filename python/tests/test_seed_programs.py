"""Seed programs (seed_programs/, written as the seed's examples are) run
unchanged in their own interpreter: an echo server and client, a heavy
HTTP server answering 1,000 requests from 30 concurrent clients, timeouts
and cancellation, and a reader on sys.stdin."""

import asyncio as cpython_asyncio
import re

from seedlib import free_port, run_program, start_program, wait_listening


def stop(proc):
    proc.terminate()
    out, err = proc.communicate(timeout=30)
    return out, err


def test_echo_server_and_client_programs():
    port = free_port()
    server = start_program("echo_server.py", port)
    try:
        wait_listening(port, server)
        results = [run_program("echo_client.py", port, 100) for _ in range(3)]
    finally:
        out, err = stop(server)
    for r in results:
        assert r.returncode == 0, r.stderr
        assert r.stdout.splitlines() == ["message %d" % i for i in range(100)]
    assert "Traceback" not in err, err
    assert out.count("closed 127.0.0.1") >= 3


def test_timeouts_and_cancel_program():
    r = run_program("timeouts.py")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == [
        "ping",
        "timed out",
        "ping",
        "ping",
        "timed out",  # run time == timeout: times out
        "ping",
        "ping",
        "result: 10",
        "sleeper cancelled",  # "never runs" is never printed
        "done",
    ]


def test_a_reader_on_stdin_program():
    text = "".join("line %d\n" % i for i in range(1000)) + "no newline"
    r = run_program("stdin_lines.py", stdin=text)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == [
        "lines",
        "1001",
        "chars",
        str(len(text)),
        "ticked",
        "True",
    ]


# --------------------------------------------------------------------------
# The heavy HTTP server: 1,000 requests, 30 concurrent clients
# --------------------------------------------------------------------------

REPEAT = 20000  # each response ~320 KB; its biggest awrite exceeds the
# socket buffer the connection starts with (16 KiB)
REQUESTS = 1000
CONCURRENCY = 30


def expected_body(number):
    s = "Hello. %07d\r\n" % number
    return (
        "HTTP/1.0 200 OK\r\n\r\n" + s + s * 100 + s * REPEAT + "=== END ==="
    ).encode()


async def http_clients(port):
    """Fetch REQUESTS responses over CONCURRENCY connections at a time;
    check each one byte for byte; the response numbers seen."""
    todo = list(range(REQUESTS))
    numbers = []

    async def client():
        while todo:
            todo.pop()
            reader, writer = await cpython_asyncio.open_connection(
                "127.0.0.1", port
            )
            writer.write(b"GET / HTTP/1.0\r\n\r\n")
            await writer.drain()
            data = await reader.read()  # CPython: up to the end of stream
            writer.close()
            await writer.wait_closed()
            m = re.match(rb"HTTP/1.0 200 OK\r\n\r\nHello. (\d{7})\r\n", data)
            assert m, data[:100]
            number = int(m.group(1))
            assert data == expected_body(number)
            numbers.append(number)

    await cpython_asyncio.wait_for(
        cpython_asyncio.gather(*[client() for _ in range(CONCURRENCY)]), 300
    )
    return numbers


def test_heavy_http_server_program_1000_requests_30_clients():
    port = free_port()
    server = start_program("http_server_heavy.py", port, REPEAT)
    try:
        wait_listening(port, server)  # one connection, answered and dropped
        numbers = cpython_asyncio.run(http_clients(port))
    finally:
        out, err = stop(server)
    assert "Traceback" not in err, err
    assert len(numbers) == REQUESTS
    assert len(set(numbers)) == REQUESTS  # every response a different one
