"""asyncio's datagram transports on the core's UDP sockets (issue 25):
create_datagram_endpoint. EventLoop (aio_loop.py) takes it from
DatagramMixin."""


class DatagramMixin:
    """The datagram-transport method of EventLoop."""

    __slots__ = ()
