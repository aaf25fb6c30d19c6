"""TCP streams: echo, the read calls (read, readline, readexactly, read to
EOF), write/drain, write_eof, addresses, servers, many connections, and the
uvasync extras (Stream = StreamReader = StreamWriter, awrite, aclose,
readinto, set_option). All on 127.0.0.1."""

import errno
import gc
import os
import resource
import socket
import warnings

import pytest

import uvasync

HOST = "127.0.0.1"


def _echo_reading(n):
    """A handler that echoes, reading up to n bytes at a time, until end of
    stream, then closes."""

    async def echo(reader, writer):
        try:
            while True:
                data = await reader.read(n)
                if not data:
                    break
                writer.write(data)
                await writer.drain()
        finally:
            writer.close()

    return echo


_echo = _echo_reading(65536)


async def _serve(aio, handler, **kwargs):
    server = await aio.start_server(handler, HOST, 0, **kwargs)
    return server, server.sockets[0].getsockname()[1]


async def _close(writer):
    writer.close()
    await writer.wait_closed()


def test_echo_lines(aio):
    async def main():
        server, port = await _serve(aio, _echo)
        reader, writer = await aio.open_connection(HOST, port)
        for i in range(100):
            line = b"line %d\n" % i
            writer.write(line)
            await writer.drain()
            assert await reader.readline() == line
        await _close(writer)
        server.close()
        await server.wait_closed()

    aio.run(main())


def test_read_readexactly_and_read_to_eof(aio):
    async def main():
        async def sender(reader, writer):
            writer.write(b"0123456789" * 3 + b"tail")
            await writer.drain()
            writer.close()

        server, port = await _serve(aio, sender)
        reader, writer = await aio.open_connection(HOST, port)
        assert await reader.readexactly(5) == b"01234"
        first = await reader.read(5)
        assert (
            1 <= len(first) <= 5 and b"0123456789"[5 : 5 + len(first)] == first
        )
        rest = await reader.read()  # to the end of the stream
        assert first + rest == b"56789" + b"0123456789" * 2 + b"tail"
        assert await reader.read(10) == b""
        assert await reader.read() == b""
        await _close(writer)
        server.close()
        await server.wait_closed()

    aio.run(main())


def test_readline_at_the_end_gives_the_rest_then_nothing(aio):
    async def main():
        async def sender(reader, writer):
            writer.write(b"one\ntwo\nno newline")
            await writer.drain()
            writer.close()

        server, port = await _serve(aio, sender)
        reader, writer = await aio.open_connection(HOST, port)
        assert await reader.readline() == b"one\n"
        assert await reader.readline() == b"two\n"
        assert await reader.readline() == b"no newline"
        assert await reader.readline() == b""
        await _close(writer)
        server.close()

    aio.run(main())


def test_eof_in_the_middle_of_readexactly(aio):
    async def main():
        async def sender(reader, writer):
            writer.write(b"only ten b")
            await writer.drain()
            writer.close()

        server, port = await _serve(aio, sender)
        reader, writer = await aio.open_connection(HOST, port)
        with pytest.raises(aio.IncompleteReadError) as info:
            await reader.readexactly(100)
        assert isinstance(info.value, EOFError)
        assert info.value.partial == b"only ten b"
        assert info.value.expected == 100
        await _close(writer)
        server.close()

    aio.run(main())


def test_write_eof_half_closes(aio):
    """The peer reads to the end of the stream, then answers on the half
    that is still open."""

    async def main():
        async def count(reader, writer):
            data = await reader.read()
            writer.write(b"%d\n" % len(data))
            await writer.drain()
            writer.close()

        server, port = await _serve(aio, count)
        reader, writer = await aio.open_connection(HOST, port)
        assert writer.can_write_eof()
        writer.write(b"x" * 100000)
        await writer.drain()
        writer.write_eof()
        assert await reader.readline() == b"100000\n"
        await _close(writer)
        server.close()

    aio.run(main())


def test_a_large_transfer_arrives_intact(aio):
    payload = bytes(range(256)) * 16384  # 4 MiB

    async def main():
        server, port = await _serve(aio, _echo)
        reader, writer = await aio.open_connection(HOST, port)

        async def send():
            for i in range(0, len(payload), 100000):
                writer.write(payload[i : i + 100000])
                await writer.drain()

        sending = aio.create_task(send())
        received = await reader.readexactly(len(payload))
        await sending
        assert received == payload
        await _close(writer)
        server.close()

    aio.run(main())


def test_an_echo_of_messages_of_changing_size_keeps_every_byte(aio):
    """A server reading with read(1000000) gets messages bigger, smaller
    and the same size as the one before (uvasync sizes each read by the
    last, and the rest goes on into a spill buffer): every byte comes back
    once and in order."""
    sizes = [
        100_000,
        100_000,
        40_000,
        200_000,
        1_000,
        70_000,
        33_000,
        100_000,
        250_000,
        100_000,
        5_000,
        100_000,
    ]

    async def main():
        server, port = await _serve(aio, _echo_reading(1_000_000))
        reader, writer = await aio.open_connection(HOST, port)
        for i, size in enumerate(sizes):
            message = bytes((i + j) % 251 for j in range(size))
            writer.write(message)
            await writer.drain()
            assert await reader.readexactly(size) == message, (i, size)
        await _close(writer)
        server.close()

    aio.run(main())


def _nodelay_by_address(local, peer):
    """TCP_NODELAY of this process's connected socket local <-> peer, found
    through its descriptors (uvasync streams do not hand out a socket)."""
    for name in os.listdir("/proc/self/fd"):
        try:
            sock = socket.socket(fileno=os.dup(int(name)))
        except OSError:
            continue
        with sock:
            try:
                if sock.getsockname() == local and sock.getpeername() == peer:
                    return (
                        sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
                        != 0
                    )
            except OSError:
                pass
    raise AssertionError("no socket %r <-> %r" % (local, peer))


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc")
def test_tcp_streams_send_small_writes_at_once(aio):
    """Both ends of a TCP stream have Nagle's algorithm off, as CPython's
    asyncio gives them: a message written in two pieces does not wait for
    the peer's delayed ACK."""

    async def main():
        server, port = await _serve(aio, _echo)
        reader, writer = await aio.open_connection(HOST, port)
        local = writer.get_extra_info("sockname")
        peer = writer.get_extra_info("peername")
        writer.write(b"ping")
        assert await reader.readexactly(4) == b"ping"  # the server's end is up
        client_end = _nodelay_by_address(local, peer)
        server_end = _nodelay_by_address(peer, local)
        await _close(writer)
        server.close()
        return client_end, server_end

    assert aio.run(main()) == (True, True)


def test_peername_and_sockname(aio):
    async def main():
        server_side = []

        async def handler(reader, writer):
            server_side.append(
                (
                    writer.get_extra_info("sockname"),
                    writer.get_extra_info("peername"),
                )
            )
            writer.close()

        server, port = await _serve(aio, handler)
        reader, writer = await aio.open_connection(HOST, port)
        assert await reader.read() == b""
        local = writer.get_extra_info("sockname")
        assert writer.get_extra_info("peername") == (HOST, port)
        assert local[0] == HOST
        assert server_side == [((HOST, port), local)]
        assert writer.get_extra_info("no such thing", "dflt") == "dflt"
        await _close(writer)
        server.close()

    aio.run(main())


def test_two_readers_on_one_stream_are_refused(aio):
    async def main():
        server, port = await _serve(aio, _echo)
        reader, writer = await aio.open_connection(HOST, port)
        first = aio.create_task(reader.readline())
        await aio.sleep(0.01)
        with pytest.raises(RuntimeError):
            await reader.readline()
        # the first reader is still in place and gets the line
        writer.write(b"for the first\n")
        assert await aio.wait_for(first, 5) == b"for the first\n"
        await _close(writer)
        server.close()

    aio.run(main())


def test_io_is_not_starved_by_a_task_looping_on_sleep_0(aio):
    state = {"done": False, "spins": 0}
    limit = 10_000_000

    async def spinner():
        while not state["done"] and state["spins"] < limit:
            state["spins"] += 1
            await aio.sleep(0)

    async def main():
        server, port = await _serve(aio, _echo)
        spinning = aio.create_task(spinner())
        await aio.sleep(0)
        reader, writer = await aio.open_connection(HOST, port)
        for i in range(50):
            writer.write(b"ping %d\n" % i)
            assert await reader.readline() == b"ping %d\n" % i
        state["done"] = True
        await spinning
        await _close(writer)
        server.close()

    aio.run(main())
    assert state["spins"] < limit


def test_server_close_stops_listening(aio):
    async def main():
        server, port = await _serve(aio, _echo)
        assert server.is_serving()
        async with server:
            reader, writer = await aio.open_connection(HOST, port)
            writer.write(b"hi\n")
            assert await reader.readline() == b"hi\n"
            await _close(writer)
        assert not server.is_serving()
        with pytest.raises(ConnectionRefusedError):
            await aio.open_connection(HOST, port)

    aio.run(main())


def test_a_plain_function_as_connection_callback(aio):
    async def main():
        streams = []
        server, port = await _serve(aio, lambda r, w: streams.append(w))
        reader, writer = await aio.open_connection(HOST, port)
        while not streams:
            await aio.sleep(0.001)
        streams[0].write(b"from the server\n")
        assert await reader.readline() == b"from the server\n"
        streams[0].close()
        await _close(writer)
        server.close()

    aio.run(main())


def test_drain_waits_while_the_peer_does_not_read(aio):
    """Flow control: with a peer that does not read, drain() stops the
    writer once the kernel buffers and the queue are full; it goes on when
    the peer reads."""
    chunk = b"z" * 65536
    total = 400 * len(chunk)  # far more than the socket buffers hold

    async def main():
        peers = []
        server, port = await _serve(aio, lambda r, w: peers.append((r, w)))
        reader, writer = await aio.open_connection(HOST, port)
        written = [0]

        async def write_all():
            while written[0] < total:
                writer.write(chunk)
                written[0] += len(chunk)
                await writer.drain()

        writing = aio.create_task(write_all())
        await aio.sleep(0.1)
        assert not writing.done()  # blocked in drain(), not buffering all
        assert written[0] < total
        while not peers:
            await aio.sleep(0.001)
        peer_reader, peer_writer = peers[0]
        received = len(await peer_reader.readexactly(total))
        await aio.wait_for(writing, 30)
        assert received == total
        writer.close()
        peer_writer.close()
        server.close()

    aio.run(main())


def test_write_takes_bytes_like_objects(aio):
    async def main():
        server, port = await _serve(aio, _echo)
        reader, writer = await aio.open_connection(HOST, port)
        writer.write(bytearray(b"ab"))
        writer.write(memoryview(b"cdef")[1:3])
        writer.writelines([b"g", b"h\n"])
        await writer.drain()
        assert await reader.readline() == b"abdegh\n"
        await _close(writer)
        server.close()

    aio.run(main())


def test_echo_over_ipv6_loopback(aio):
    import socket

    try:
        probe = socket.socket(socket.AF_INET6)
        probe.bind(("::1", 0))
        probe.close()
    except OSError:
        pytest.skip("no IPv6 loopback here")

    async def main():
        server = await aio.start_server(_echo, "::1", 0)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await aio.open_connection("::1", port)
        assert writer.get_extra_info("peername")[:2] == ("::1", port)
        writer.write(b"six\n")
        assert await reader.readline() == b"six\n"
        await _close(writer)
        server.close()

    aio.run(main())


def test_closing_the_stream_under_a_waiting_reader_ends_the_read_as_eof(aio):
    async def main():
        kept = []
        server, port = await _serve(aio, lambda r, w: kept.append(w))
        results = []
        for read in (
            lambda r: r.read(10),
            lambda r: r.readline(),
            lambda r: r.readexactly(5),
        ):
            reader, writer = await aio.open_connection(HOST, port)
            task = aio.create_task(read(reader))
            await aio.sleep(0.01)
            writer.close()
            try:
                results.append(await aio.wait_for(task, 5))
            except aio.IncompleteReadError as e:
                results.append(e.partial)
        for w in kept:
            w.close()
        server.close()
        return results

    assert aio.run(main()) == [b"", b"", b""]


def _raise_nofile(n):
    """Raise the descriptor limit to n if it is lower (the hard limit too,
    where we may: root); the soft limit in force afterwards."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < n:
        if hard != resource.RLIM_INFINITY and hard < n:
            try:
                resource.setrlimit(resource.RLIMIT_NOFILE, (n, n))
            except (ValueError, OSError):
                pass
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft < n:
            limit = n if hard == resource.RLIM_INFINITY else min(n, hard)
            resource.setrlimit(resource.RLIMIT_NOFILE, (limit, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def test_a_thousand_concurrent_connections(aio):
    n = 1000
    if _raise_nofile(4 * n) < 2 * n + 100:
        pytest.skip("RLIMIT_NOFILE too low for %d connections" % n)

    async def main():
        server, port = await _serve(aio, _echo, backlog=n)
        started = aio.Event()
        connected = [0]

        async def client(i):
            reader, writer = await aio.open_connection(HOST, port)
            connected[0] += 1
            if connected[0] == n:
                started.set()
            await started.wait()  # all n are open at the same time
            message = b"client %d\n" % i
            writer.write(message)
            await writer.drain()
            line = await reader.readline()
            await _close(writer)
            return line == message

        results = await aio.wait_for(
            aio.gather(*[client(i) for i in range(n)]), 60
        )
        server.close()
        await server.wait_closed()
        return results

    assert aio.run(main()) == [True] * 1000


# -- uvasync's own stream API ---------------------------------------------


def test_stream_is_reader_and_writer():
    assert uvasync.Stream is uvasync.StreamReader is uvasync.StreamWriter

    async def main():
        server, port = await _serve(uvasync, _echo)
        reader, writer = await uvasync.open_connection(HOST, port)
        assert reader is writer and isinstance(reader, uvasync.Stream)
        await writer.aclose()
        server.close()

    uvasync.run(main())


def test_awrite_aclose_and_readinto():
    async def main():
        server, port = await _serve(uvasync, _echo)
        stream, _ = await uvasync.open_connection(HOST, port)
        await stream.awrite(b"hello world")
        await stream.awrite(b"..abc..", 2, 3)  # off, sz: b"abc"
        buf = bytearray(14)
        got = 0
        while got < 14:
            n = await stream.readinto(memoryview(buf)[got:])
            assert n > 0
            got += n
        assert bytes(buf) == b"hello worldabc"
        await stream.aclose()
        assert stream.is_closing()
        server.close()
        await server.wait_closed()

    uvasync.run(main())


def test_async_with_closes_the_stream():
    async def main():
        server, port = await _serve(uvasync, _echo)
        stream, _ = await uvasync.open_connection(HOST, port)
        async with stream:
            await stream.awrite(b"x\n")
            assert await stream.readline() == b"x\n"
        assert stream.is_closing()
        server.close()

    uvasync.run(main())


def test_a_line_over_the_limit_is_a_value_error():
    async def main():
        server, port = await _serve(uvasync, _echo)
        stream, _ = await uvasync.open_connection(HOST, port)
        stream.set_option("line_limit", 16)
        await stream.awrite(b"a" * 40 + b"\n")
        await uvasync.sleep(0.02)
        with pytest.raises(ValueError):
            await stream.readline()
        assert await stream.readexactly(41) == b"a" * 40 + b"\n"  # kept
        await stream.aclose()
        server.close()

    uvasync.run(main())


def test_writing_a_closed_stream_is_an_os_error_reading_it_sees_the_end():
    async def main():
        server, port = await _serve(uvasync, _echo)
        stream, _ = await uvasync.open_connection(HOST, port)
        await stream.aclose()
        with pytest.raises(OSError):
            stream.write(b"late")
        assert await stream.read(1) == b""  # as asyncio's reader after close
        stream.close()  # a second close does nothing
        server.close()

    uvasync.run(main())


def test_an_unclosed_stream_gives_a_resource_warning():
    async def main():
        server, port = await _serve(uvasync, _echo)
        stream, _ = await uvasync.open_connection(HOST, port)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            del stream, _
            gc.collect()
        server.close()
        return [w.category for w in caught]

    assert ResourceWarning in uvasync.run(main())


def test_a_line_longer_than_the_read_buffer():
    """Lines over 256 KiB (the loop's scratch buffer) with the limit
    raised: read through a bigger buffer."""
    line = b"L" * 300000 + b"\n"

    async def main():
        server, port = await _serve(uvasync, _echo)
        stream, _ = await uvasync.open_connection(HOST, port)
        stream.set_option("line_limit", 1 << 20)
        stream.set_option("high_water", 1 << 20)
        writing = uvasync.create_task(stream.awrite(line * 2))
        assert await stream.readline() == line
        assert await stream.readline() == line
        await writing
        await stream.aclose()
        server.close()

    uvasync.run(main())


def test_readline_with_the_line_limit_at_its_maximum():
    """set_option("line_limit", 2**64 - 1) means no limit: read_line
    waited for limit + 1 bytes, which wrapped to 0, so reading stopped at
    the high-water mark and a newline arriving after it was never read
    (the readline timed out)."""
    line = b"x" * 3000 + b"\n"

    async def main():
        server, port = await _serve(uvasync, _echo)
        stream, _ = await uvasync.open_connection(HOST, port)
        stream.set_option("line_limit", 2**64 - 1)
        stream.set_option("high_water", 100)
        await stream.awrite(line[:1000])
        reading = uvasync.create_task(stream.readline())
        await uvasync.sleep(0.05)  # part one is buffered, past high water
        await stream.awrite(line[1000:])
        got = await uvasync.wait_for(reading, 5)
        await stream.aclose()
        server.close()
        return got

    assert uvasync.run(main()) == line


def test_a_custom_line_delimiter():
    async def main():
        server, port = await _serve(uvasync, _echo)
        stream, _ = await uvasync.open_connection(HOST, port)
        stream.set_option("delimiter", b";")
        await stream.awrite(b"one;two;")
        assert await stream.readline() == b"one;"
        assert await stream.readline() == b"two;"
        await stream.aclose()
        server.close()

    uvasync.run(main())


def test_reads_of_every_size_keep_every_byte_in_order(aio):
    """Small and large reads (a large one may be read from the kernel
    straight into the bytes it returns) mixed on one stream: no byte lost,
    repeated or reordered, and no read returns more than it asked for."""
    payload = bytes((i * 7 + i // 251) & 0xFF for i in range(600_000))
    sizes = [1, 4096, 100, 65536, 5000, 300_000, 4095, 70_000]

    async def send_all(reader, writer):
        for off in range(0, len(payload), 9_000):  # in pieces, with pauses
            writer.write(payload[off : off + 9_000])
            await writer.drain()
            if off % 90_000 == 0:
                await aio.sleep(0.001)
        writer.close()

    async def main():
        server, port = await _serve(aio, send_all)
        reader, writer = await aio.open_connection(HOST, port)
        got, i = [], 0
        while True:
            n = sizes[i % len(sizes)]
            i += 1
            data = await reader.read(n)
            assert len(data) <= n
            if not data:
                break
            got.append(data)
        await _close(writer)
        server.close()
        await server.wait_closed()
        return b"".join(got)

    assert aio.run(main()) == payload


def test_a_cancelled_large_read_loses_no_byte(aio):
    """A 64 KiB read cancelled while it waits takes nothing: the bytes that
    arrive afterwards all go to the next read."""

    async def late_sender(reader, writer):
        await aio.sleep(0.05)
        writer.write(b"x" * 10_000 + b"end")
        await writer.drain()
        writer.close()

    async def main():
        server, port = await _serve(aio, late_sender)
        reader, writer = await aio.open_connection(HOST, port)
        with pytest.raises(aio.TimeoutError):
            await aio.wait_for(reader.read(65536), 0.01)
        data = b""
        while not data.endswith(b"end"):
            chunk = await reader.read(65536)
            assert chunk
            data += chunk
        await _close(writer)
        server.close()
        await server.wait_closed()
        return data

    assert aio.run(main()) == b"x" * 10_000 + b"end"


def test_a_huge_read_size_returns_what_has_arrived(aio):
    """read(n) with n far beyond any buffer gives the bytes that arrived,
    without trying to make room for n."""

    async def send_some(reader, writer):
        writer.write(b"a" * 300_000)
        await writer.drain()
        writer.close()

    async def main():
        server, port = await _serve(aio, send_some)
        reader, writer = await aio.open_connection(HOST, port)
        got = b""
        while True:
            data = await reader.read(1 << 40)
            if not data:
                break
            got += data
        await _close(writer)
        server.close()
        await server.wait_closed()
        return got

    assert aio.run(main()) == b"a" * 300_000


def test_closing_the_stream_under_each_kind_of_waiting_read():
    """The reader's repeated call comes after the close completed; its
    wait was then all that held the core stream, and the call dropped it
    and wrote the freed stream (seen only under valgrind: 'Invalid read'
    and 'Invalid write' in done_waiting; the results were right)."""

    async def main():
        kept = []
        server, port = await _serve(uvasync, lambda r, w: kept.append(w))
        results = []
        for read in (
            lambda r: r.read(10),
            lambda r: r.readline(),
            lambda r: r.readexactly(5),
            lambda r: r.read(),
        ):
            reader, writer = await uvasync.open_connection(HOST, port)
            task = uvasync.create_task(read(reader))
            await uvasync.sleep(0)
            writer.close()
            await writer.wait_closed()  # the close completes first
            try:
                results.append(await task)
            except uvasync.IncompleteReadError as e:
                results.append(e.partial)
        for w in kept:
            w.close()
        server.close()
        return results

    assert uvasync.run(main()) == [b"", b"", b"", b""]


_WRITE_EOF_THEN_CLOSE = """
import uvasync

async def main():
    kept = []
    server = await uvasync.start_server(lambda r, w: kept.append(w),
                                        "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    out = []
    for i in range(20):
        reader, writer = await uvasync.open_connection("127.0.0.1", port)
        shutdown = writer.write_eof()
        await uvasync.sleep(0)  # the shutdown is waiting
        writer.close()
        await writer.wait_closed()
        try:
            out.append(await shutdown)
        except OSError as e:
            out.append(e.errno)
    for w in kept:
        w.close()
    server.close()
    return out

print(sorted(set(uvasync.run(main())), key=repr))
"""


def test_write_eof_then_close_reports_the_close_not_freed_memory():
    """write_eof(), sleep(0), close(): the shutdown's repeated call freed
    the core stream by dropping its wait, then returned the stream's
    shut_err from freed memory. glibc made to fill freed memory (no
    tcache, MALLOC_PERTURB_) turns that into a wrong result: the freed
    bytes as a code (RuntimeError 'unknown uvasync error -1515870811',
    0xa5a5a5a5) instead of the closed-handle error."""
    import subprocess
    import sys

    env = dict(
        os.environ,
        MALLOC_PERTURB_="165",
        GLIBC_TUNABLES="glibc.malloc.tcache_count=0",
    )
    done = subprocess.run(
        [sys.executable, "-c", _WRITE_EOF_THEN_CLOSE],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    # EBADF: how the binding reports the core's UVA_ECLOSED.
    assert done.stdout.strip() == "[%d]" % errno.EBADF
