"""asyncio's subprocess transports on the core's child processes (issue
25): subprocess_exec, subprocess_shell. EventLoop (aio_loop.py) takes them
from SubprocessMixin."""


class SubprocessMixin:
    """The subprocess-transport methods of EventLoop."""

    __slots__ = ()
