"""An asyncio event loop on the core (issue 25): EventLoop implements
asyncio.AbstractEventLoop with the core's run queue, timers, streams and
waits, beside the native uvasync API on the same core loop."""

import asyncio

from .aio_datagram import DatagramMixin
from .aio_sockets import SocketsMixin
from .aio_streams import StreamsMixin
from .aio_subprocess import SubprocessMixin
from .core import Loop


class EventLoop(
    StreamsMixin,
    SocketsMixin,
    DatagramMixin,
    SubprocessMixin,
    Loop,
    asyncio.AbstractEventLoop,
):
    """An asyncio event loop whose work is the core's (being built)."""
