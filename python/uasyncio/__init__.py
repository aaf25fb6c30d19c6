"""uasyncio: the seed's API (pfalcon's uasyncio 3.x, generator coroutines,
awrite/aclose, call_later_ms, start_server run as a task) on the uvasync
core. Seed programs run unchanged; docs/migrating.md lists where the seed
and modern asyncio differ."""

from .core import *  # noqa: F401,F403 (the seed's `from uasyncio.core import *`)
from .core import __all__ as _core_all
from .stream import StreamReader, StreamWriter, open_connection, start_server

__all__ = list(_core_all) + [
    "StreamReader",
    "StreamWriter",
    "open_connection",
    "start_server",
]
