"""Queue on the core's queue: FIFO hand-off between tasks, waiting put/get
that never poll. Items are Python objects; the core queue carries integer
tickets that index them.

PriorityQueue and LifoQueue use the same core queue for everything but the
order: its tickets count the items and keep the waiting (maxsize, getters
served first come first served, a cancelled get or put that leaves no
trace) the core's, while the items themselves are kept in a heap or a
stack, and a get that takes a ticket takes the item that comes first there.
An item enters the heap or stack when the core accepts its ticket (in the
same step, before any other task can get), so get/put behave exactly as
Queue's."""

import heapq
import itertools
import types
from asyncio import QueueEmpty, QueueFull

from ._ffi import NULL, check, error, ffi, lib
from ._internal import _PENDING, _wait_error
from .sync import Event, _Bound

__all__ = ["Queue", "PriorityQueue", "LifoQueue", "QueueEmpty", "QueueFull"]

_EAGAIN = lib.UVA_EAGAIN


class Queue(_Bound):
    """A FIFO queue of at most `maxsize` items (0: unbounded)."""

    _kind = "uva_queue_close"

    def __init__(self, maxsize=0):
        if maxsize < 0:
            maxsize = 0
        super().__init__()
        self._maxsize = maxsize
        self._items = {}  # ticket -> item
        self._tickets = itertools.count(1)  # 0 would be NULL
        self._cell = ffi.new("void **")
        self._size = ffi.new("size_t *")
        self._unfinished = 0
        self._finished = Event()
        self._finished.set()

    def _make(self, loop):
        cell = ffi.new("uva_queue_t **")
        check(
            lib.uva_queue_new(cell, loop._ptr(), self._maxsize, ffi.NULL),
            "Queue",
        )
        return cell[0]

    def _detach(self):
        super()._detach()
        self._items.clear()

    @property
    def maxsize(self):
        return self._maxsize

    def qsize(self):
        if self._h is None:
            return 0
        check(lib.uva_queue_size(self._size, self._h))
        return self._size[0]

    def empty(self):
        return self.qsize() == 0

    def full(self):
        if self._h is None:
            return False
        out = ffi.new("int *")
        check(lib.uva_queue_full(out, self._h))
        return bool(out[0])

    # How items are kept beside the core queue's tickets: FIFO indexes each
    # item by its ticket; the ordered queues override these four.

    def _new_ticket(self, item):
        """The token the core queue carries for `item` (never 0, NULL)."""
        t = next(self._tickets)
        self._items[t] = item
        return t

    def _drop_ticket(self, t):
        """The ticket never entered the core queue."""
        self._items.pop(t, None)

    def _accepted(self, t, item):
        """The core queue took the ticket: the item is in the queue."""

    def _take(self):
        """The item a get that took the ticket in self._cell returns."""
        return self._items.pop(int(ffi.cast("uintptr_t", self._cell[0])))

    def _put_done(self):
        self._unfinished += 1
        self._finished.clear()

    @types.coroutine
    def put(self, item):
        """Put an item, waiting for a free slot while the queue is full."""
        h = self._ptr()
        t = self._new_ticket(item)
        p = ffi.cast("void *", t)
        try:
            while True:
                rc = lib.uva_queue_put(h, NULL, p)
                if rc == 0:
                    break
                if rc != _EAGAIN:
                    raise _wait_error(rc, "put")
                yield _PENDING
        except BaseException:
            self._drop_ticket(t)  # never entered the queue
            raise
        self._accepted(t, item)
        self._put_done()

    def put_nowait(self, item):
        h = self._ptr()
        t = self._new_ticket(item)
        rc = lib.uva_queue_put_nowait(h, ffi.cast("void *", t))
        if rc < 0:
            self._drop_ticket(t)
            raise QueueFull() if rc == lib.UVA_EQUEUEFULL else error(rc, "put")
        self._accepted(t, item)
        self._put_done()

    @types.coroutine
    def get(self):
        """Remove and return the oldest item, waiting while empty."""
        h = self._ptr()
        cell = self._cell
        while True:
            rc = lib.uva_queue_get(cell, h, NULL)
            if rc == 0:
                return self._take()
            if rc != _EAGAIN:
                raise _wait_error(rc, "get")
            yield _PENDING

    def get_nowait(self):
        rc = lib.uva_queue_get_nowait(self._cell, self._ptr())
        if rc < 0:
            raise (
                QueueEmpty() if rc == lib.UVA_EQUEUEEMPTY else error(rc, "get")
            )
        return self._take()

    def task_done(self):
        if self._unfinished <= 0:
            raise ValueError("task_done() called too many times")
        self._unfinished -= 1
        if self._unfinished == 0:
            self._finished.set()

    async def join(self):
        """Wait until every item put has been marked task_done()."""
        if self._unfinished > 0:
            await self._finished.wait()


class PriorityQueue(Queue):
    """A queue that gives the smallest item first (heapq order; items are
    often (priority, data) tuples)."""

    def __init__(self, maxsize=0):
        super().__init__(maxsize)
        self._heap = []

    def _new_ticket(self, item):
        return 1  # any non-NULL token: the heap holds the item

    def _drop_ticket(self, t):
        pass

    def _accepted(self, t, item):
        heapq.heappush(self._heap, item)

    def _take(self):
        return heapq.heappop(self._heap)

    def _detach(self):
        super()._detach()
        self._heap.clear()


class LifoQueue(Queue):
    """A queue that gives the newest item first (a stack)."""

    def __init__(self, maxsize=0):
        super().__init__(maxsize)
        self._stack = []

    def _new_ticket(self, item):
        return 1

    def _drop_ticket(self, t):
        pass

    def _accepted(self, t, item):
        self._stack.append(item)

    def _take(self):
        return self._stack.pop()

    def _detach(self):
        super()._detach()
        self._stack.clear()
