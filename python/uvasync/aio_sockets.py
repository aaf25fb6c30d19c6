"""asyncio's low-level socket calls (sock_recv, sock_sendall, sock_connect,
sock_accept, ...) and add_reader/add_writer on the core's descriptor poll
(issue 25). EventLoop (aio_loop.py) takes these methods from SocketsMixin."""


class SocketsMixin:
    """The sock_* and reader/writer methods of EventLoop."""

    __slots__ = ()
