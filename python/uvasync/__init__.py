"""uvasync: MicroPython's asyncio (v3 API, CPython-compatible semantics) on
the uvasync C core (libuv). Scheduling, timers, stream buffers and the
waiting logic of Event/Lock/Semaphore/Queue live in the core; this package
steps coroutines and maps errors to exceptions."""

from asyncio import IncompleteReadError, LimitOverrunError

from ._signals import signal_wait
from .aio_loop import EventLoop, EventLoopPolicy, install, new_asyncio_loop
from .condition import Barrier, BrokenBarrierError, Condition
from .core import (
    CancelledError,
    InvalidStateError,
    Loop,
    Task,
    TimeoutError,
    all_tasks,
    create_task,
    current_task,
    get_event_loop,
    get_running_loop,
    new_event_loop,
    set_event_loop,
    sleep,
    sleep_ms,
    ticks_add,
    ticks_diff,
    ticks_ms,
)
from .executor import to_thread, wrap_future
from .files import open_file
from .funcs import (
    Future,
    ensure_future,
    gather,
    iscoroutine,
    iscoroutinefunction,
    shield,
    wait_for,
    wait_for_ms,
)
from .queues import LifoQueue, PriorityQueue, Queue, QueueEmpty, QueueFull
from .runners import Runner, run, run_coroutine_threadsafe
from .stream import (
    Server,
    Stream,
    StreamReader,
    StreamWriter,
    open_connection,
    open_unix_connection,
    start_server,
    start_unix_server,
)
from .subprocess import create_subprocess_exec, create_subprocess_shell
from .sync import BoundedSemaphore, Event, Lock, Semaphore, ThreadSafeFlag
from .taskgroups import TaskGroup
from .timeouts import Timeout, timeout, timeout_at
from .udp import DatagramSocket, open_udp
from .waits import (
    ALL_COMPLETED,
    FIRST_COMPLETED,
    FIRST_EXCEPTION,
    as_completed,
    wait,
)

__version__ = "1.0.0.dev0"


def core_version():
    """The version string of the C core this package carries."""
    from ._ffi import ffi, lib

    return ffi.string(lib.uva_version_string()).decode()
