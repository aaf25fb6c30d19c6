"""A program that closes a socket with a reader or writer still set, and
goes on: new sockets on the same number, readers set again. asyncio's
loop tolerates it, so uvasync.EventLoop must too (the core's poll used to
abort the process here). Each scenario runs on asyncio's own loop too,
where asyncio defines the behaviour."""

import asyncio
import errno
import os
import socket

import pytest

import uvasync

LOOPS = [
    pytest.param(uvasync.EventLoop, id="uvasync"),
    pytest.param(asyncio.SelectorEventLoop, id="asyncio"),
]


@pytest.fixture(params=LOOPS)
def loop(request):
    loop = request.param()
    yield loop
    loop.close()


def pair_at(fd):
    """A connected socket pair whose first socket has the number fd
    (closed before)."""
    a, b = socket.socketpair()
    if a.fileno() != fd:
        os.dup2(a.fileno(), fd)
        a.close()
        a = socket.socket(fileno=fd)
    a.setblocking(False)
    b.setblocking(False)
    return a, b


def spin(loop, seconds=0.05):
    loop.run_until_complete(asyncio.sleep(seconds))


def wait_for(loop, fut, timeout=5):
    return loop.run_until_complete(asyncio.wait_for(fut, timeout))


def test_closed_with_a_reader_then_removed_and_set_on_a_new_socket(loop):
    a, b = socket.socketpair()
    a.setblocking(False)
    fd = a.fileno()
    old = []
    loop.add_reader(a, old.append, "old")
    spin(loop)
    a.close()  # the reader is still set
    b.close()
    spin(loop)
    c, d = pair_at(fd)
    try:
        assert loop.remove_reader(fd) is True  # as asyncio: it was set
        got = loop.create_future()
        loop.add_reader(c, lambda: got.done() or got.set_result(c.recv(10)))
        d.send(b"new")
        assert wait_for(loop, got) == b"new"
        assert old == []
        assert loop.remove_reader(c) is True
    finally:
        c.close()
        d.close()


def test_closed_with_a_writer_then_the_number_reused(loop):
    a, b = socket.socketpair()
    fd = a.fileno()
    loop.add_writer(a, lambda: None)
    spin(loop)
    a.close()
    b.close()
    spin(loop)
    c, d = pair_at(fd)
    try:
        assert loop.remove_writer(fd) is True
        got = loop.create_future()
        loop.add_writer(c, lambda: got.done() or got.set_result("writable"))
        assert wait_for(loop, got) == "writable"
        loop.remove_writer(c)
    finally:
        c.close()
        d.close()


def test_reader_set_again_on_a_reused_number_without_removing():
    """asyncio's selector keeps the closed socket's entry and only updates
    its callback, so the new socket is never registered and the reader
    never runs there (undefined, not tested on it); uvasync watches the
    new socket."""
    loop = uvasync.EventLoop()
    try:
        a, b = socket.socketpair()
        fd = a.fileno()
        loop.add_reader(a, lambda: None)
        spin(loop)
        a.close()
        b.close()
        c, d = pair_at(fd)
        try:
            got = loop.create_future()
            loop.add_reader(
                fd, lambda: got.done() or got.set_result(c.recv(9))
            )
            d.send(b"again")
            assert wait_for(loop, got) == b"again"
            loop.remove_reader(fd)
        finally:
            c.close()
            d.close()
    finally:
        loop.close()


def test_reader_callback_that_closes_its_socket(loop):
    """The callback closes the socket and leaves the reader set: it is
    not called again (the loop does not spin on the closed number)."""
    a, b = socket.socketpair()
    a.setblocking(False)
    fd = a.fileno()
    calls = []

    def on_readable():
        calls.append(a.recv(10))
        a.close()

    loop.add_reader(a, on_readable)
    b.send(b"bye")
    spin(loop, 0.1)
    b.close()
    spin(loop, 0.1)
    assert calls == [b"bye"]
    assert loop.remove_reader(fd) is True
    assert loop.remove_reader(fd) is False


def test_add_reader_on_a_closed_number_raises(loop):
    a, b = socket.socketpair()
    fd = a.fileno()
    a.close()
    b.close()
    with pytest.raises(OSError) as info:
        loop.add_reader(fd, lambda: None)
    assert info.value.errno == errno.EBADF
    assert loop.remove_reader(fd) is False


async def _recv_after_send(loop, sender, receiver, data):
    later = loop.call_later(0.01, sender.send, data)
    try:
        return await loop.sock_recv(receiver, 10)
    finally:
        later.cancel()


async def _sendall_then_recv(loop, sender, receiver, data):
    await loop.sock_sendall(sender, data)
    return await loop.sock_recv(receiver, 10)


def test_sock_calls_on_a_reused_number(loop):
    """sock_recv leaves the number watched between calls (uvasync keeps
    its poll): the next socket on the number works as the first."""
    for round_ in range(3):
        a, b = socket.socketpair()
        a.setblocking(False)
        b.setblocking(False)
        fd = a.fileno()
        data = b"r%d" % round_
        assert wait_for(loop, _recv_after_send(loop, b, a, data)) == data
        a.close()
        b.close()
        c, d = pair_at(fd)
        try:
            got = wait_for(loop, _sendall_then_recv(loop, d, c, b"x"))
            assert got == b"x"
        finally:
            c.close()
            d.close()


def test_sock_recv_cancelled_after_its_socket_was_closed(loop):
    a, b = socket.socketpair()
    a.setblocking(False)
    fd = a.fileno()

    async def main():
        task = asyncio.ensure_future(loop.sock_recv(a, 10))
        await asyncio.sleep(0.02)
        a.close()  # under the wait
        await asyncio.sleep(0.02)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        c, d = pair_at(fd)
        try:
            d.send(b"after")
            return await loop.sock_recv(c, 10)
        finally:
            c.close()
            d.close()

    try:
        assert wait_for(loop, main()) == b"after"
    finally:
        b.close()


def test_many_closes_under_readers_and_writers(loop):
    """Many sockets closed with a reader or a writer set, the numbers
    reused at once: the loop goes on and the new sockets are served.
    (With both set, asyncio's remove_reader of a closed number raises
    FileNotFoundError from epoll; uvasync does not, untested here.)"""

    async def main():
        for _ in range(20):
            pairs = [socket.socketpair() for _ in range(6)]
            for i, (a, _) in enumerate(pairs):
                a.setblocking(False)
                if i % 2:
                    loop.add_writer(a, lambda: None)
                else:
                    loop.add_reader(a, lambda: None)
            await asyncio.sleep(0)
            fds = [a.fileno() for a, _ in pairs]
            for a, b in pairs:
                a.close()
                b.close()
            news = [pair_at(fd) for fd in fds]
            try:
                for fd in fds:
                    loop.remove_reader(fd)
                    loop.remove_writer(fd)
                got = [loop.create_future() for _ in news]
                for (c, d), fut in zip(news, got):
                    loop.add_reader(
                        c,
                        lambda c=c, f=fut: f.done() or f.set_result(c.recv(4)),
                    )
                    d.send(b"ok")
                assert await asyncio.gather(*got) == [b"ok"] * len(news)
                for c, _ in news:
                    loop.remove_reader(c)
            finally:
                for c, d in news:
                    c.close()
                    d.close()

    wait_for(loop, main(), timeout=10)
