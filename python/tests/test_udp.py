"""UDP (uvasync only: asyncio has no awaitable datagram socket):
open_udp, DatagramSocket sendto/recvfrom, send/recv when connected."""

import socket

import pytest

import uvasync

HOST = "127.0.0.1"


def test_sendto_and_recvfrom_between_two_sockets():
    async def main():
        a = await uvasync.open_udp(local_addr=(HOST, 0))
        b = await uvasync.open_udp(local_addr=(HOST, 0))
        a_addr, b_addr = a.getsockname(), b.getsockname()
        assert a_addr[0] == HOST and a_addr[1] > 0
        a.sendto(b"to b", b_addr)
        data, source = await uvasync.wait_for(b.recvfrom(), 5)
        assert (data, source) == (b"to b", a_addr)
        b.sendto(b"back to a", source)
        assert await uvasync.wait_for(a.recvfrom(), 5) == (
            b"back to a",
            b_addr,
        )
        a.close()
        b.close()

    uvasync.run(main())


def test_datagrams_are_never_merged_or_split():
    async def main():
        rx = await uvasync.open_udp(local_addr=(HOST, 0))
        tx = await uvasync.open_udp(remote_addr=rx.getsockname())
        sizes = [1, 0, 1000, 5, 60000, 3]
        for i, size in enumerate(sizes):
            tx.send(bytes([i]) * size)
        got = []
        for _ in sizes:
            got.append(await uvasync.wait_for(rx.recv(), 5))
        assert got == [bytes([i]) * size for i, size in enumerate(sizes)]
        rx.close()
        tx.close()

    uvasync.run(main())


def test_recv_with_a_small_size_returns_the_start_of_the_datagram():
    async def main():
        rx = await uvasync.open_udp(local_addr=(HOST, 0))
        tx = await uvasync.open_udp()
        tx.sendto(b"0123456789", rx.getsockname())
        tx.sendto(b"next", rx.getsockname())
        assert await uvasync.wait_for(rx.recv(4), 5) == b"0123"
        assert await uvasync.wait_for(rx.recv(), 5) == b"next"  # rest dropped
        rx.close()
        tx.close()

    uvasync.run(main())


def test_interoperates_with_a_plain_socket():
    async def main():
        udp = await uvasync.open_udp(local_addr=(HOST, 0))
        plain = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        plain.bind((HOST, 0))
        try:
            plain.sendto(b"from plain", udp.getsockname())
            data, source = await uvasync.wait_for(udp.recvfrom(), 5)
            assert data == b"from plain"
            assert source == plain.getsockname()
            udp.sendto(b"reply", source)
            plain.setblocking(False)  # a blocking recv would stall the loop
            for _ in range(500):
                try:
                    reply = plain.recvfrom(100)
                    break
                except BlockingIOError:
                    await uvasync.sleep(0.01)
            assert reply == (b"reply", udp.getsockname())
        finally:
            plain.close()
            udp.close()

    uvasync.run(main())


def test_a_waiting_recvfrom_can_be_cancelled():
    async def main():
        udp = await uvasync.open_udp(local_addr=(HOST, 0))
        waiting = uvasync.create_task(udp.recvfrom())
        await uvasync.sleep(0.01)
        waiting.cancel()
        with pytest.raises(uvasync.CancelledError):
            await waiting
        # still usable afterwards
        udp.sendto(b"self", udp.getsockname())
        assert await uvasync.wait_for(udp.recv(), 5) == b"self"
        udp.close()

    uvasync.run(main())


def test_a_closed_socket_is_an_os_error():
    async def main():
        udp = uvasync.DatagramSocket()
        udp.bind((HOST, 0))
        udp.close()
        udp.close()  # twice is fine
        with pytest.raises(OSError):
            udp.sendto(b"x", (HOST, 9))
        with pytest.raises(OSError):
            await udp.recvfrom()

    uvasync.run(main())
