"""uvasync.EventLoop's create_datagram_endpoint: datagram transports on the
core's UDP sockets (and, for sock=, AF_UNIX, reuse_port and
allow_broadcast, on sockets watched by the core's poll). Every scenario
runs on asyncio's own loop too, as the reference."""

import asyncio
import os
import shutil
import socket
import sys
import tempfile

import pytest

import uvasync

LOOPS = [
    pytest.param(uvasync.EventLoop, id="uvasync"),
    pytest.param(asyncio.SelectorEventLoop, id="asyncio"),
]

HAS_IPV6 = socket.has_ipv6
try:
    socket.socket(socket.AF_INET6, socket.SOCK_DGRAM).close()
except OSError:
    HAS_IPV6 = False


@pytest.fixture(params=LOOPS)
def loop(request):
    loop = request.param()
    yield loop
    loop.close()


def run(loop, coro, timeout=5):
    return loop.run_until_complete(asyncio.wait_for(coro, timeout))


class Recorder(asyncio.DatagramProtocol):
    """Records every call in order; a Queue of what was received."""

    def __init__(self):
        self.calls = []
        self.queue = asyncio.Queue()
        self.lost = asyncio.get_running_loop().create_future()

    def connection_made(self, transport):
        self.calls.append("made")
        self.transport = transport

    def datagram_received(self, data, addr):
        self.calls.append("datagram")
        self.queue.put_nowait((data, addr))

    def error_received(self, exc):
        self.calls.append("error")
        self.queue.put_nowait(exc)

    def connection_lost(self, exc):
        self.calls.append("lost")
        self.lost.set_result(exc)


def test_echo_between_two_endpoints(loop):
    async def main():
        server_t, server = await loop.create_datagram_endpoint(
            Recorder, local_addr=("127.0.0.1", 0)
        )
        assert server.calls == ["made"]  # before the endpoint is returned
        assert isinstance(server_t, asyncio.Transport)  # as asyncio's
        addr = server_t.get_extra_info("sockname")
        assert addr[0] == "127.0.0.1" and addr[1] > 0
        assert server_t.get_extra_info("peername") is None
        client_t, client = await loop.create_datagram_endpoint(
            Recorder, remote_addr=addr
        )
        assert client_t.get_extra_info("peername") == addr
        for i in range(20):
            client_t.sendto(b"ping %d" % i)
        for i in range(20):
            data, src = await server.queue.get()
            assert data == b"ping %d" % i
            server_t.sendto(data.upper(), src)
        for i in range(20):
            data, src = await client.queue.get()
            assert (data, src) == (b"PING %d" % i, addr)
        assert client_t.get_write_buffer_size() == 0
        with pytest.raises(ValueError):
            client_t.sendto(b"x", ("127.0.0.1", 1))  # not the peer
        with pytest.raises(TypeError):
            client_t.sendto("text")
        client_t.close()
        assert client_t.is_closing()
        assert await client.lost is None
        server_t.abort()
        assert await server.lost is None
        assert client.calls[-1] == "lost" and server.calls[-1] == "lost"

    run(loop, main())


def test_big_datagrams_whole_and_in_order(loop):
    async def main():
        server_t, server = await loop.create_datagram_endpoint(
            Recorder, local_addr=("127.0.0.1", 0)
        )
        addr = server_t.get_extra_info("sockname")
        client_t, _ = await loop.create_datagram_endpoint(
            Recorder, local_addr=("127.0.0.1", 0)
        )
        payloads = [os.urandom(n) for n in (1, 1000, 8000, 60000)]
        for p in payloads:
            client_t.sendto(p, addr)
        for p in payloads:
            data, src = await server.queue.get()
            assert data == p
            assert src == client_t.get_extra_info("sockname")
        client_t.close()
        server_t.close()
        await server.lost

    run(loop, main())


def test_error_received_for_a_refused_peer(loop):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nobody listens there: the kernel answers ICMP

    async def main():
        t, proto = await loop.create_datagram_endpoint(
            Recorder, remote_addr=("127.0.0.1", port)
        )
        t.sendto(b"anyone?")
        err = await proto.queue.get()
        assert isinstance(err, ConnectionRefusedError)
        t.close()
        await proto.lost
        assert proto.calls == ["made", "error", "lost"]

    run(loop, main())


def test_host_names_are_resolved(loop):
    async def main():
        t, proto = await loop.create_datagram_endpoint(
            Recorder, local_addr=("localhost", 0), family=socket.AF_INET
        )
        addr = t.get_extra_info("sockname")
        assert addr[0] == "127.0.0.1"
        t.sendto(b"self", addr)
        assert (await proto.queue.get())[0] == b"self"
        t.close()
        await proto.lost

    run(loop, main())


@pytest.mark.skipif(not HAS_IPV6, reason="no IPv6")
def test_ipv6(loop):
    async def main():
        t, proto = await loop.create_datagram_endpoint(
            Recorder, local_addr=("::1", 0)
        )
        addr = t.get_extra_info("sockname")
        assert addr[0] == "::1" and len(addr) == 4
        t.sendto(b"six", addr[:2])
        data, src = await proto.queue.get()
        assert data == b"six" and src[:2] == addr[:2]
        t.close()
        await proto.lost

    run(loop, main())


def test_given_socket(loop):
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))

    async def main():
        with pytest.raises(ValueError):
            await loop.create_datagram_endpoint(
                Recorder, sock=sock, local_addr=("127.0.0.1", 0)
            )
        t, proto = await loop.create_datagram_endpoint(Recorder, sock=sock)
        assert sock.gettimeout() == 0
        assert t.get_extra_info("socket").fileno() == sock.fileno()
        addr = sock.getsockname()
        t.sendto(b"given", addr)
        assert (await proto.queue.get()) == (b"given", addr)
        t.close()
        await proto.lost
        assert sock.fileno() == -1  # the transport closed it

    run(loop, main())


def test_stream_socket_refused(loop):
    sock = socket.socket()

    async def main():
        with pytest.raises(ValueError):
            await loop.create_datagram_endpoint(Recorder, sock=sock)

    try:
        run(loop, main())
    finally:
        sock.close()


def test_reuse_port_and_broadcast(loop):
    async def main():
        t1, p1 = await loop.create_datagram_endpoint(
            Recorder, local_addr=("127.0.0.1", 0), reuse_port=True
        )
        addr = t1.get_extra_info("sockname")
        t2, p2 = await loop.create_datagram_endpoint(
            Recorder, local_addr=addr, reuse_port=True
        )
        assert t2.get_extra_info("sockname") == addr
        s = t1.get_extra_info("socket")
        assert s.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT) == 1
        b, bp = await loop.create_datagram_endpoint(
            Recorder,
            local_addr=("127.0.0.1", 0),
            remote_addr=addr,
            allow_broadcast=True,
        )
        sock = b.get_extra_info("socket")
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST) == 1
        b.sendto(b"to both ports")  # not connected: sent to remote_addr
        got = await asyncio.wait(
            [
                asyncio.ensure_future(p1.queue.get()),
                asyncio.ensure_future(p2.queue.get()),
            ],
            return_when=asyncio.FIRST_COMPLETED,
        )
        done = got[0].pop().result()
        assert done[0] == b"to both ports"
        for fut in got[1]:
            fut.cancel()
        for t in (t1, t2, b):
            t.close()
        for p in (p1, p2, bp):
            await p.lost

    run(loop, main())


@pytest.mark.skipif(not hasattr(socket, "AF_UNIX"), reason="no AF_UNIX")
def test_unix_datagrams(loop):
    with tempfile.TemporaryDirectory() as d:
        server_path = os.path.join(d, "server")
        client_path = os.path.join(d, "client")
        # a stale socket file is replaced
        stale = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        stale.bind(server_path)
        stale.close()

        async def main():
            st, sp = await loop.create_datagram_endpoint(
                Recorder, local_addr=server_path, family=socket.AF_UNIX
            )
            ct, cp = await loop.create_datagram_endpoint(
                Recorder,
                local_addr=client_path,
                remote_addr=server_path,
                family=socket.AF_UNIX,
            )
            assert st.get_extra_info("sockname") == server_path
            ct.sendto(b"over unix")
            data, src = await sp.queue.get()
            assert (data, src) == (b"over unix", client_path)
            st.sendto(b"back", src)
            assert (await cp.queue.get()) == (b"back", server_path)
            with pytest.raises(TypeError):
                await loop.create_datagram_endpoint(
                    Recorder, local_addr=("x", 1), family=socket.AF_UNIX
                )
            st.close()
            ct.close()
            await sp.lost
            await cp.lost

        run(loop, main())


def test_write_buffer_pauses_the_protocol(loop):
    """Sends the kernel cannot take are buffered; on uvasync's socket
    transport (and asyncio's) the protocol is paused above the limit."""
    # asyncio 3.13.0 counts 8 bytes per buffered datagram that it never
    # takes off again: its buffer size never returns to 0 (nor resumes)
    reference_resumes = sys.version_info[:3] != (3, 13, 0) or isinstance(
        loop, uvasync.EventLoop
    )
    d = tempfile.mkdtemp()
    a = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    b = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    b.bind(os.path.join(d, "b"))
    a.bind(os.path.join(d, "a"))
    a.connect(os.path.join(d, "b"))  # a named peer: send(), not sendto()

    class Flow(Recorder):
        def pause_writing(self):
            self.calls.append("pause")

        def resume_writing(self):
            self.calls.append("resume")

    async def main():
        t, proto = await loop.create_datagram_endpoint(Flow, sock=a)
        t.set_write_buffer_limits(high=4096)
        assert t.get_write_buffer_limits() == (1024, 4096)
        for _ in range(2000):  # more than the kernel holds for b
            t.sendto(b"x" * 1000)
        assert t.get_write_buffer_size() > 4096
        assert "pause" in proto.calls
        if not reference_resumes:
            t.abort()
            await proto.lost
            return
        b.setblocking(False)
        while t.get_write_buffer_size():
            try:
                while True:
                    b.recv(2000)
            except BlockingIOError:
                pass
            await asyncio.sleep(0.001)
        assert proto.calls[-1] == "resume"
        t.close()
        await proto.lost

    try:
        run(loop, main())
    finally:
        b.close()
        shutil.rmtree(d)


def test_protocol_errors_go_to_the_handler(loop):
    caught = []
    loop.set_exception_handler(lambda lp, ctx: caught.append(ctx))

    class Bad(Recorder):
        def datagram_received(self, data, addr):
            super().datagram_received(data, addr)
            raise ZeroDivisionError

    async def main():
        t, proto = await loop.create_datagram_endpoint(
            Bad, local_addr=("127.0.0.1", 0)
        )
        addr = t.get_extra_info("sockname")
        t.sendto(b"1", addr)
        t.sendto(b"2", addr)
        assert (await proto.queue.get())[0] == b"1"
        assert (await proto.queue.get())[0] == b"2"  # it goes on
        t.close()
        await proto.lost

    run(loop, main())
    assert len(caught) == 2
    assert isinstance(caught[0]["exception"], ZeroDivisionError)


def test_loop_close_with_an_open_endpoint(loop):
    async def main():
        return await loop.create_datagram_endpoint(
            asyncio.DatagramProtocol, local_addr=("127.0.0.1", 0)
        )

    t, _ = run(loop, main())
    loop.close()  # no error
    if isinstance(loop, uvasync.EventLoop):
        assert t.is_closing()  # its core socket went with the loop
    else:
        t._sock.close()


def test_no_address_needs_a_family(loop):
    async def main():
        with pytest.raises(ValueError):
            await loop.create_datagram_endpoint(Recorder)
        t, proto = await loop.create_datagram_endpoint(
            Recorder, family=socket.AF_INET
        )
        peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        peer.bind(("127.0.0.1", 0))
        with peer:
            t.sendto(b"unbound", peer.getsockname())
            await asyncio.sleep(0.01)
            assert peer.recv(100) == b"unbound"
        t.close()
        await proto.lost

    run(loop, main())
