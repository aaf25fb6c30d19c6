"""More bugs of uvasync.EventLoop that CPython's own test_asyncio found
(test_cpython_asyncio.py), one test each, run on asyncio's loop too as the
reference. Each names the CPython test that found it."""

import asyncio
import contextvars
import socket
import sys
import threading

import pytest

import uvasync

LOOPS = [
    pytest.param(uvasync.EventLoop, id="uvasync"),
    pytest.param(asyncio.new_event_loop, id="asyncio"),
]


@pytest.fixture(params=LOOPS)
def loop(request):
    loop = request.param()
    yield loop
    loop.close()


class Datagrams(asyncio.DatagramProtocol):
    def __init__(self, loop):
        self.lost = loop.create_future()
        self.got = []

    def datagram_received(self, data, addr):
        self.got.append(data)

    def connection_lost(self, exc):
        self.lost.set_result(exc)


# -- datagram endpoints --------------------------------------------------------


def test_datagram_local_addr_that_is_no_pair_raises_type_error(loop):
    # test_base_events...test_create_datagram_endpoint_addr_error: a 4-tuple
    # was cut to its first two items and bound
    for addr in ("localhost", ("127.0.0.1", 0, 0, 0), ("127.0.0.1",)):
        coro = loop.create_datagram_endpoint(
            asyncio.DatagramProtocol, local_addr=addr
        )
        with pytest.raises(TypeError):
            loop.run_until_complete(coro)


def test_datagram_transport_lends_its_socket(loop):
    # test_base_events...test_create_datagram_endpoint_sockopts: the
    # socket of an endpoint on the core's UDP was None
    async def main():
        tr, pr = await loop.create_datagram_endpoint(
            lambda: Datagrams(loop), local_addr=("127.0.0.1", 0)
        )
        sock = tr.get_extra_info("socket")
        assert sock is not None
        assert sock.family == socket.AF_INET
        assert sock.type == socket.SOCK_DGRAM
        assert sock.getsockname() == tr.get_extra_info("sockname")
        assert not sock.getsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST)
        if hasattr(socket, "SO_REUSEPORT"):
            assert not sock.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT)
        # options set through it are the endpoint's own
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) >= 65536
        assert tr.get_extra_info("socket") is sock  # the same each time
        # and the endpoint still works
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as peer:
            peer.sendto(b"ping", tr.get_extra_info("sockname"))
            for _ in range(200):
                if pr.got:
                    break
                await asyncio.sleep(0.005)
        assert pr.got == [b"ping"]
        tr.close()
        assert await pr.lost is None
        assert sock.fileno() == -1  # closed with the transport

    loop.run_until_complete(main())


def test_datagram_wrong_sock_says_what_asyncio_says(loop):
    # test_base_events...test_create_datagram_endpoint_wrong_sock: 3.13
    # changed the words
    if sys.version_info >= (3, 13):
        words = "A datagram socket was expected"
    else:
        words = "A UDP Socket was expected"
    with socket.socket(socket.AF_INET) as sock:
        coro = loop.create_datagram_endpoint(asyncio.Protocol, sock=sock)
        with pytest.raises(ValueError, match=words):
            loop.run_until_complete(coro)


# -- handles and tasks -----------------------------------------------------------


def test_call_soon_threadsafe_handle_records_where_in_debug_mode(loop):
    # test_events.HandleTests.test_handle_source_traceback: the handle of
    # call_soon_threadsafe had no _source_traceback
    loop.set_debug(True)
    ran = []
    h = loop.call_soon_threadsafe(ran.append, 1)
    line = sys._getframe().f_lineno - 1
    assert isinstance(h._source_traceback, list)
    assert h._source_traceback[-1][:3] == (
        __file__,
        line,
        "test_call_soon_threadsafe_handle_records_where_in_debug_mode",
    )
    # from another thread too, and it runs
    done = threading.Event()
    hs = []

    def other():
        hs.append(loop.call_soon_threadsafe(ran.append, 2))
        loop.call_soon_threadsafe(done.set)

    async def main():
        t = threading.Thread(target=other)
        t.start()
        while not done.is_set():
            await asyncio.sleep(0.001)
        t.join()

    loop.run_until_complete(main())
    assert ran == [1, 2]
    assert hs[0]._source_traceback[-1][2] == "other"


@pytest.mark.parametrize("debug", [False, True])
def test_failed_task_is_reported_in_the_iteration_it_fails(loop, debug):
    # test_futures2...test_task_exc_handler_correct_context (3.12+ in debug
    # mode): the handle that ran the task's last step kept it alive one
    # iteration longer, so 'exception was never retrieved' came late
    loop.set_debug(debug)
    name = contextvars.ContextVar("name", default="foo")
    seen = []

    def handler(lp, context):
        seen.append((context["message"], name.get()))

    loop.set_exception_handler(handler)

    async def fail():
        name.set("bar")
        raise ZeroDivisionError

    async def main():
        asyncio.ensure_future(fail())
        await asyncio.sleep(0)
        return list(seen)

    got = loop.run_until_complete(main())
    assert [m for m, _ in got] == ["Task exception was never retrieved"]
    if sys.version_info >= (3, 12):  # reported in the task's context
        assert got[0][1] == "bar"
