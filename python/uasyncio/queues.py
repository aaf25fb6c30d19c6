"""The seed's uasyncio.queues: Queue on the core's queue (FIFO hand-off,
waiting get/put that never poll). `item = yield from q.get()` or
`await q.get()`."""

from uvasync.queues import Queue as _CoreQueue, QueueEmpty, QueueFull

__all__ = ["Queue", "QueueEmpty", "QueueFull"]


class Queue(_CoreQueue):
    """A FIFO queue of at most maxsize items (0 or less: unbounded):
    get(), put(item) (coroutines), get_nowait(), put_nowait(item),
    qsize(), empty(), full(). QueueEmpty/QueueFull are asyncio's
    classes (Exception subclasses, as the seed's own)."""
