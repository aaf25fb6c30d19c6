"""Signals for Loop: the wake-up socket and its watcher task, Ctrl-C while
a loop runs, add_signal_handler, and run()'s SIGINT handler. Loop's signal
methods are thin and call these.

Python runs signal handlers only between bytecodes, so a socketpair
registered with signal.set_wakeup_fd wakes the loop out of the kernel and a
daemon task (the watcher) gives Python the chance to run them."""

import signal
import socket
import threading

from ._ffi import lib
from ._internal import _tls
from .poll import Poll


async def _watch_fd(sock):
    """Drain `sock` whenever it is readable (the signal wake-up socket):
    entering Python lets CPython run its pending signal handlers."""
    poll = Poll(sock.fileno(), _tls.running)
    try:
        while True:
            await poll.wait(lib.UVA_READABLE)
            try:
                while sock.recv(4096):
                    pass
            except (BlockingIOError, InterruptedError):
                pass
    finally:
        poll.close()


def new_watcher(loop, task_type):
    """The wake-up socketpair and the unreferenced task of `task_type`
    (core.Task) that drains it: (rsock, wsock, task), Loop._sig."""
    rsock, wsock = socket.socketpair()
    rsock.setblocking(False)
    wsock.setblocking(False)
    task = task_type(_watch_fd(rsock), loop, "uvasync-signals")
    lib.uva_task_unref(task._ctask)
    return (rsock, wsock, task)


def sigint_install(loop):
    """While `loop` runs in the main thread, signals with a Python handler
    are seen at once, and Ctrl-C (if the program left SIGINT's handler
    alone) stops the loop: run_* raises KeyboardInterrupt. Returns a
    function that undoes it, or None off the main thread."""
    if threading.current_thread() is not threading.main_thread():
        return None
    try:
        own_sigint = (
            signal.getsignal(signal.SIGINT) is signal.default_int_handler
        )
    except (ValueError, AttributeError):
        return None
    loop._signal_watcher()

    def on_sigint(signum, frame):
        loop._abort_run(KeyboardInterrupt())

    old_fd = signal.set_wakeup_fd(
        loop._sig[1].fileno(), warn_on_full_buffer=False
    )
    if own_sigint:
        signal.signal(signal.SIGINT, on_sigint)

    def restore():
        if own_sigint:
            signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.set_wakeup_fd(old_fd)

    return restore


def add_handler(loop, sig, callback, args):
    """Loop.add_signal_handler: callback(*args) on `loop` when `sig`
    arrives (main thread only, as in asyncio)."""
    if threading.current_thread() is not threading.main_thread():
        raise ValueError("signal handlers work in the main thread only")
    if sig in (signal.SIGKILL, signal.SIGSTOP):
        raise RuntimeError("sig %d cannot be caught" % sig)

    def handler(signum, frame):
        loop.call_soon(callback, *args)

    signal.signal(sig, handler)
    loop._signal_handlers[sig] = handler


def remove_handler(loop, sig):
    """Loop.remove_signal_handler: put the default back; False if `sig`
    had no handler from add_handler."""
    if loop._signal_handlers.pop(sig, None) is None:
        return False
    signal.signal(
        sig,
        signal.default_int_handler if sig == signal.SIGINT else signal.SIG_DFL,
    )
    return True


def install_sigint(handler):
    """handler for SIGINT if this is the main thread and the program left
    Python's default there; a function that puts the default back (run()
    and Runner.run use it for their Ctrl-C rule)."""
    if threading.current_thread() is not threading.main_thread():
        return None
    try:
        if signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
            return None
        signal.signal(signal.SIGINT, handler)
    except (ValueError, AttributeError):
        return None

    def restore():
        if signal.getsignal(signal.SIGINT) is handler:
            signal.signal(signal.SIGINT, signal.default_int_handler)

    return restore
