"""Signals for Loop: the wake-up socket and its watcher task, Ctrl-C while
a loop runs, add_signal_handler (the core's signal watchers), and run()'s
SIGINT handler. Loop's signal methods are thin and call these.

Python runs signal handlers only between bytecodes, so a socketpair
registered with signal.set_wakeup_fd wakes the loop out of the kernel and a
daemon task (the watcher) gives Python the chance to run them."""

import contextlib
import inspect
import signal
import socket
import threading

from ._ffi import NULL, check, error, ffi, lib
from ._internal import _call_again, _tls
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
        own_sigint = signal.getsignal(signal.SIGINT)
        own_sigint = own_sigint is signal.default_int_handler
        own_sigint = own_sigint and not core_watches(signal.SIGINT)
    except (ValueError, AttributeError):
        return None
    loop._signal_watcher()

    def on_sigint(signum, frame):
        loop._abort_run(KeyboardInterrupt())

    old_fd = signal.set_wakeup_fd(
        loop._sig[1].fileno(), warn_on_full_buffer=False
    )
    if own_sigint:
        try:
            signal.signal(signal.SIGINT, on_sigint)
        except ValueError:
            # signals off in this interpreter (an embedding one), as
            # asyncio.Runner allows: Ctrl-C is then not the loop's
            own_sigint = False

    def restore():
        if own_sigint:
            with keep_core_action(signal.SIGINT):
                signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.set_wakeup_fd(old_fd)

    return restore


# Handlers of add_signal_handler are the core's signal watchers
# (uva_signal_t, callback mode), one per loop and signal, in any thread.
# While a watcher of a signal exists the core's action is installed for it;
# when the last one closes the core resets the action to SIG_DFL. So the
# action that was there before the package's first watcher of a signal
# (Python's handler: default_int_handler for SIGINT, a program's own, or
# SIG_DFL/SIG_IGN) is kept here, process-wide, and put back then.
_lock = threading.RLock()  # cffi calls release the GIL: loops in threads
_watched = {}  # signum -> [watchers, the action saved before the first]
_closing = set()  # watchers whose close has not completed


def _saved_action(signum):
    saved = lib._uvapy_sigaction_get(signum)
    if saved == ffi.NULL:
        raise OSError(ffi.errno, "sigaction")
    return ffi.gc(saved, lib._uvapy_sigaction_free)


def core_watches(signum):
    """True while a loop of this process watches `signum` (for
    add_signal_handler or signal_wait): the core's action is installed."""
    return signum in _watched


@contextlib.contextmanager
def keep_core_action(signum):
    """Around a signal.signal(signum, ...) call: while the core watches
    signum, its action stays installed, and Python's new handler becomes
    the one that the last watcher's close puts back."""
    with _lock:
        entry = _watched.get(signum)
        if entry is None:
            yield
            return
        core = _saved_action(signum)
        try:
            yield
        finally:
            entry[1] = _saved_action(signum)
            lib._uvapy_sigaction_set(signum, core)


def _put_back(signum, saved):
    """Under _lock, when no watcher of signum is left: the action saved
    before the first, if the core has reset it to SIG_DFL (which it does
    when its last watcher's close takes effect)."""
    if signum not in _watched and lib._uvapy_sigaction_is_default(signum) == 1:
        lib._uvapy_sigaction_set(signum, saved)


class _Watcher:
    """One core watcher of one signal on one loop, and the Handle it runs
    (add_signal_handler) or None (signal_wait)."""

    __slots__ = ("h", "signum", "handle", "cdata", "saved")

    def __init__(self, signum, handle):
        self.h = None
        self.signum = signum
        self.handle = handle
        self.cdata = ffi.new_handle(self)
        self.saved = None


def _watch(w, loop_h):
    """Start the core watcher of w.signum on the loop; the first of the
    process for that signal saves the action that was there."""
    sig = w.signum
    cell = ffi.new("uva_signal_t **")
    with _lock:
        entry = _watched.get(sig)
        saved = entry[1] if entry is not None else _saved_action(sig)
        rc = lib.uva_signal_new(cell, loop_h, sig)
        if rc == lib.UVA_EINVAL:
            raise RuntimeError("sig %d cannot be caught" % sig)
        check(rc, "signal")
        if entry is None:
            entry = _watched[sig] = [0, saved]
        entry[0] += 1
    w.h = cell[0]


def _unwatch(w):
    """Close w's core watcher; the last of the process for its signal
    puts back the action saved by the first (now, or when the close
    completes)."""
    sig = w.signum
    w.handle = None
    with _lock:
        _closing.add(w)
        lib.uva_signal_close(w.h, lib._uvapy_signal_closed, w.cdata)
        w.h = None
        entry = _watched[sig]
        entry[0] -= 1
        if entry[0] == 0:
            del _watched[sig]
        w.saved = entry[1]
        _put_back(sig, w.saved)


@ffi.def_extern()
def _uvapy_signal(csig, signum, data):
    handle = ffi.from_handle(data).handle
    if handle is not None and not handle._cancelled:
        handle._run()


@ffi.def_extern()
def _uvapy_signal_closed(csig, data):
    w = ffi.from_handle(data)
    _closing.discard(w)
    with _lock:
        _put_back(w.signum, w.saved)


def _check_signal(sig):
    if not isinstance(sig, int):
        raise TypeError("sig must be an int, not %r" % (sig,))
    if sig not in signal.valid_signals():
        raise ValueError("invalid signal number %d" % sig)


def add_handler(loop, sig, callback, args, handle_type):
    """Loop.add_signal_handler: callback(*args) runs on `loop` (as a
    handle_type, core.Handle) each loop pass that saw `sig` arrive. Any
    thread's loop may watch signals; each watching loop gets every
    arrival."""
    if inspect.iscoroutine(callback) or inspect.iscoroutinefunction(callback):
        raise TypeError("coroutines cannot be used with add_signal_handler()")
    _check_signal(sig)
    h = loop._ptr()  # RuntimeError once closed
    handle = handle_type(loop, callback, args)
    w = loop._signal_handlers.get(sig)
    if w is not None:  # a new callback for the same watcher
        w.handle = handle
        return
    w = _Watcher(sig, handle)
    _watch(w, h)
    loop._signal_handlers[sig] = w
    rc = lib.uva_signal_on_signal(w.h, lib._uvapy_signal, w.cdata)
    if rc < 0:
        remove_handler(loop, sig)
        raise error(rc, "add_signal_handler")


def remove_handler(loop, sig):
    """Loop.remove_signal_handler: False if `sig` had no handler on
    `loop`. When no loop watches `sig` any more, the action it had before
    the first add_signal_handler is back (Python's default_int_handler
    for SIGINT, as asyncio puts back)."""
    _check_signal(sig)
    w = loop._signal_handlers.pop(sig, None)
    if w is None:
        return False
    _unwatch(w)
    return True


async def signal_wait(sig):
    """Wait until signal `sig` arrives; returns sig. A core watcher on the
    running loop for the time of the wait: meanwhile the signal's default
    action (termination for SIGTERM, Ctrl-C's KeyboardInterrupt for SIGINT)
    does not happen, and afterwards the action that was there is back.
    Arrivals outside the wait are not seen: for each of several arrivals,
    use add_signal_handler."""
    _check_signal(sig)
    loop = _tls.running
    if loop is None:
        raise RuntimeError("no running event loop")
    w = _Watcher(sig, None)
    _watch(w, loop._ptr())
    h = w.h
    try:
        await _call_again(
            lambda: lib.uva_signal_wait(NULL, h, NULL), "signal_wait"
        )
    finally:
        _unwatch(w)
    return sig


def install_sigint(handler):
    """handler for SIGINT if this is the main thread and the program left
    Python's default there; a function that puts the default back (run()
    and Runner.run use it for their Ctrl-C rule)."""
    if threading.current_thread() is not threading.main_thread():
        return None
    if core_watches(signal.SIGINT):  # a handler of the loop's has it
        return None
    try:
        if signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
            return None
        signal.signal(signal.SIGINT, handler)
    except (ValueError, AttributeError):
        return None

    def restore():
        if signal.getsignal(signal.SIGINT) is handler:
            with keep_core_action(signal.SIGINT):
                signal.signal(signal.SIGINT, signal.default_int_handler)

    return restore
