"""uasyncio.queues.Queue, uasyncio.synchro.Lock and uasyncio.udp, in
generator and async-def styles."""

import socket

import pytest

import uasyncio as asyncio
from uasyncio import udp
from uasyncio.queues import Queue, QueueEmpty, QueueFull
from uasyncio.synchro import Lock

from seedlib import loop, run_until  # noqa: F401 (fixture)

# --------------------------------------------------------------------------
# Queue
# --------------------------------------------------------------------------


@pytest.mark.parametrize("style", ["generator", "async"])
def test_queue_producer_consumer_with_a_bounded_queue(loop, style):
    q = Queue(maxsize=3)
    got = []
    sizes = []
    if style == "generator":

        def producer():
            for i in range(20):
                yield from q.put(i)
                sizes.append(q.qsize())
            yield from q.put(None)

        def consumer():
            while True:
                item = yield from q.get()
                if item is None:
                    return
                got.append(item)
                yield
    else:

        async def producer():
            for i in range(20):
                await q.put(i)
                sizes.append(q.qsize())
            await q.put(None)

        async def consumer():
            while True:
                item = await q.get()
                if item is None:
                    return
                got.append(item)
                await asyncio.sleep(0)

    loop.create_task(producer())
    loop.run_until_complete(consumer())
    assert got == list(range(20))
    assert max(sizes) <= 3  # put waited while the queue was full


def test_queue_nowait_and_state(loop):
    q = Queue(2)
    assert q.empty() and not q.full() and q.qsize() == 0
    q.put_nowait("a")
    q.put_nowait("b")
    assert q.full() and q.qsize() == 2
    with pytest.raises(QueueFull):
        q.put_nowait("c")
    assert q.get_nowait() == "a"
    assert q.get_nowait() == "b"
    with pytest.raises(QueueEmpty):
        q.get_nowait()
    assert not Queue().full()
    assert Queue(0).maxsize == 0


def test_queue_get_waits_for_a_put_from_a_callback(loop):
    q = Queue()

    def main():
        loop.call_later_ms(10, q.put_nowait, "from callback")
        return (yield from q.get())

    assert loop.run_until_complete(main()) == "from callback"


# --------------------------------------------------------------------------
# Lock
# --------------------------------------------------------------------------


@pytest.mark.parametrize("style", ["generator", "async"])
def test_lock_mutual_exclusion_and_fifo_order(loop, style):
    lock = Lock()
    inside = []
    order = []
    if style == "generator":

        def worker(n):
            yield from lock.acquire()
            inside.append(n)
            assert len(inside) == 1
            order.append(n)
            yield from asyncio.sleep_ms(2)
            inside.remove(n)
            lock.release()
    else:

        async def worker(n):
            await lock.acquire()
            inside.append(n)
            assert len(inside) == 1
            order.append(n)
            await asyncio.sleep_ms(2)
            inside.remove(n)
            lock.release()

    for n in range(5):
        loop.create_task(worker(n))
    run_until(loop, lambda: len(order) == 5 and not inside)
    assert order == [0, 1, 2, 3, 4]
    assert not lock.locked


def test_lock_locked_is_an_attribute_as_in_the_seed(loop):
    lock = Lock()
    assert lock.locked is False

    def main():
        yield from lock.acquire()
        assert lock.locked is True
        lock.release()
        assert lock.locked is False

    loop.run_until_complete(main())
    with pytest.raises(AssertionError):
        lock.release()


def test_lock_async_with(loop):
    lock = Lock()

    async def main():
        async with lock:
            assert lock.locked
        return lock.locked

    assert loop.run_until_complete(main()) is False


# --------------------------------------------------------------------------
# UDP
# --------------------------------------------------------------------------


@pytest.mark.parametrize("style", ["generator", "async"])
def test_udp_echo(loop, style):
    server = udp.socket()
    server.bind(("127.0.0.1", 0))
    addr = server.getsockname()
    client = udp.socket()
    if style == "generator":

        def echo():
            for _ in range(10):
                data, peer = yield from udp.recvfrom(server, 1500)
                yield from udp.sendto(server, data.upper(), peer)

        def main():
            got = []
            for i in range(10):
                yield from udp.sendto(client, b"datagram %d" % i, addr)
                got.append((yield from udp.recv(client, 1500)))
            return got
    else:

        async def echo():
            for _ in range(10):
                data, peer = await udp.recvfrom(server, 1500)
                await udp.sendto(server, data.upper(), peer)

        async def main():
            got = []
            for i in range(10):
                await udp.sendto(client, b"datagram %d" % i, addr)
                got.append(await udp.recv(client, 1500))
            return got

    loop.create_task(echo())
    assert loop.run_until_complete(main()) == [
        b"DATAGRAM %d" % i for i in range(10)
    ]
    loop.run_until_complete(udp.close(server))
    loop.run_until_complete(udp.close(client))
    assert server.fileno() == -1


def test_udp_sendto_a_connected_socket_and_ipv6(loop):
    try:
        server = udp.socket(socket.AF_INET6)
        server.bind(("::1", 0))
    except OSError:
        pytest.skip("no IPv6 loopback")
    client = udp.socket(socket.AF_INET6)
    client.connect(server.getsockname()[:2])

    async def main():
        await udp.sendto(client, b"connected")
        return await udp.recvfrom(server, 100)

    data, peer = loop.run_until_complete(main())
    assert data == b"connected" and peer[1] == client.getsockname()[1]
    server.close()
    client.close()


def test_udp_recv_is_cancellable(loop):
    s = udp.socket()
    s.bind(("127.0.0.1", 0))
    out = []

    def receiver():
        try:
            yield from udp.recv(s, 100)
        except asyncio.CancelledError:
            out.append("cancelled")

    coro = receiver()
    loop.create_task(coro)

    def main():
        yield from asyncio.sleep_ms(5)
        asyncio.cancel(coro)
        yield from asyncio.sleep_ms(5)

    loop.run_until_complete(main())
    assert out == ["cancelled"]
    s.close()
