"""Child processes (asyncio.subprocess): create_subprocess_exec and
create_subprocess_shell return a Process whose pipes are the package's
Streams over the core's pipe streams (uva_process_stream).

A Process is watched by a small core task whose step is a Python callback
(_uvapy_process_step, no coroutine and no Task): it waits in the core's
uva_process_wait and, when the child exits, sets `returncode` (also when
nobody awaits wait(), as asyncio's child watcher does), closes the core
handle and wakes the tasks in wait(). Waiting is the core's "call again"
wait, so a task can be cancelled out of wait() at any time.

No zombie is left: the core reaps every child it started. A child still
running when its loop closes is not killed (the core's policy); the core
goes on watching it and reaps it when it exits.
"""

import os
import signal
import subprocess

from ._ffi import NULL, check, error, ffi, lib
from .core import get_running_loop
from .funcs import gather
from .stream import _CLOSED, _OPEN, Stream, _set_limit
from .sync import Event

__all__ = [
    "create_subprocess_exec",
    "create_subprocess_shell",
    "Process",
    "PIPE",
    "STDOUT",
    "DEVNULL",
]

PIPE = subprocess.PIPE
STDOUT = subprocess.STDOUT
DEVNULL = subprocess.DEVNULL

_EAGAIN = lib.UVA_EAGAIN
_TASK_PENDING = lib.UVA_TASK_PENDING
_DEFAULT_LIMIT = 2**16  # asyncio's stream limit


class _Pipe(Stream):
    """A child's pipe: a Stream like any other (write_eof is the core's
    shutdown, which lets go of a pipe once its queue is written). One
    collected unclosed is closed without a ResourceWarning (queued bytes
    are still written), as asyncio closes a child's pipe transports by
    itself."""

    def __del__(self):
        if self._state == _OPEN and self._h is not None:
            if self._loop._h is not None:
                lib.uva_stream_close(self._h, NULL, NULL)
            self._state = _CLOSED


class Process:
    """A child process (asyncio.subprocess.Process): pid, returncode (None
    while it runs; -N if signal N ended it), stdin (a StreamWriter),
    stdout and stderr (StreamReaders) where PIPE was asked, else None."""

    def __init__(self, handle, loop, pipes, limit):
        self._h = handle  # None once closed
        self._wh = handle  # the watcher's copy, for its last call
        self._registered = False  # the watcher waits in the core
        self._loop = loop
        self._returncode = None
        self._exited = Event()
        self._status = ffi.new("int64_t *")
        self._signal = ffi.new("int *")
        cell = ffi.new("int *")
        check(lib.uva_process_pid(cell, handle), "pid")
        self.pid = cell[0]
        self.stdin = self.stdout = self.stderr = None
        streams = [None, None, None]
        scell = ffi.new("uva_stream_t **")
        for fd in pipes:
            check(lib.uva_process_stream(scell, handle, fd), "pipe")
            streams[fd] = _Pipe(scell[0], loop, unix=True)
            if fd:
                _set_limit(streams[fd], limit)
        self.stdin, self.stdout, self.stderr = streams
        # The exit watcher: a core task whose data is this handle, kept
        # (with this Process) by the loop until its last step.
        self._self_handle = ffi.new_handle(self)
        check(
            lib.uva_task_spawn(
                NULL,
                loop._ptr(),
                lib._uvapy_process_step,
                self._self_handle,
                NULL,
            ),
            "spawn",
        )
        loop._keep.add(self._self_handle)
        loop._bind(self)

    def __repr__(self):
        return "<Process %d>" % self.pid

    @property
    def returncode(self):
        return self._returncode

    def _exit_step(self, ctask):
        """The watcher's step: wait for the exit, or for the close of the
        handle, after which a waiter's one more call (its last use of the
        pointer) returns UVA_ECLOSED. Closed before the first step, the
        handle may be gone already: no call then."""
        if self._h is None and not self._registered:
            rc = lib.UVA_ECLOSED
        else:
            rc = lib.uva_process_wait(
                self._status, self._signal, self._wh, ctask
            )
        if rc == _EAGAIN:
            self._registered = True
            return _TASK_PENDING
        self._wh = None
        self._loop._keep.discard(self._self_handle)
        if rc == 0:
            sig = self._signal[0]
            self._returncode = -sig if sig else self._status[0]
            self._close()
            self._exited.set()
        return 0

    def _close(self):
        h, self._h = self._h, None
        if h is not None:
            lib.uva_process_close(h, NULL, NULL)

    # the loop closes: the core goes on watching the child and reaps it
    _detach = _close

    async def wait(self):
        """Wait until the child exits; its returncode."""
        if self._returncode is None:
            await self._exited.wait()
        return self._returncode

    def send_signal(self, sig):
        """Send signal `sig` to the child. ProcessLookupError once it has
        exited (its pid may belong to another process by then)."""
        h = self._h
        if self._returncode is not None or h is None:
            raise ProcessLookupError()
        check(lib.uva_process_kill(h, int(sig)), "send_signal")

    def terminate(self):
        self.send_signal(signal.SIGTERM)

    def kill(self):
        self.send_signal(signal.SIGKILL)

    async def communicate(self, input=None):
        """Write `input` (bytes, or None) to stdin and close it, while
        reading stdout and stderr to their end (concurrently: a child
        filling its output pipe while it reads a large input does not
        deadlock); then wait for the exit. Returns (stdout, stderr), each
        None where that was not a pipe."""
        _, out, err = await gather(
            self._feed_stdin(input),
            self._read_all(self.stdout),
            self._read_all(self.stderr),
        )
        await self.wait()
        return out, err

    async def _feed_stdin(self, data):
        stdin = self.stdin
        if stdin is None:
            return
        try:
            if data:
                stdin.write(data)
            await stdin.drain()
        except (BrokenPipeError, ConnectionResetError):
            pass  # the child stopped reading: as asyncio, not an error
        stdin.close()

    async def _read_all(self, stream):
        if stream is None:
            return None
        data = await stream.read()
        stream.close()
        return data


@ffi.def_extern()
def _uvapy_process_step(ctask, status, data):
    proc = ffi.from_handle(data)
    try:
        return proc._exit_step(ctask)
    except BaseException as e:  # nothing may unwind through C
        proc._loop.call_exception_handler(
            {"message": "Error in a child's exit watcher", "exception": e}
        )
        return 0


# --------------------------------------------------------------------------
# Spawning
# --------------------------------------------------------------------------

# Popen arguments the core cannot honour, with the value that asks nothing
# of it. close_fds is accepted either way: the child gets descriptors 0-2
# and those the program made inheritable (Python makes none by default).
_REFUSED = {
    "preexec_fn": None,
    "pass_fds": (),
    "user": None,
    "group": None,
    "extra_groups": None,
    "umask": -1,
    "process_group": None,
    "restore_signals": True,
    "pipesize": -1,
    "startupinfo": None,
    "creationflags": 0,
}

# What asyncio refuses itself (ValueError), with the value it wants.
_ASYNCIO_REFUSED = (
    ("universal_newlines", False, "universal_newlines must be False"),
    ("text", False, "text must be False"),
    ("bufsize", 0, "bufsize must be 0"),
    ("encoding", None, "encoding must be None"),
    ("errors", None, "errors must be None"),
)


def _cstr(value, what):
    b = os.fsencode(value)
    if b"\0" in b:
        raise ValueError("embedded null byte in %s" % what)
    return b


def _cstr_array(items, keep):
    """A NULL-terminated char *[] of `items` (bytes); the cdata it points
    to is appended to `keep`, which must outlive the spawn call."""
    cells = [ffi.new("char[]", b) for b in items]
    keep.extend(cells)
    arr = ffi.new("char *[]", cells + [NULL])
    keep.append(arr)
    return arr


def _process_options(args, executable, env, cwd, keep):
    """A uva_process_options_t for argv `args`, `executable` (the file to
    run, else args[0]), `env` (a mapping, else the parent's) and `cwd`;
    the cdata its pointers name is appended to `keep`, which must outlive
    the spawn call. stdio and flags are left to the caller."""
    opts = ffi.new("uva_process_options_t *")
    opts.size = ffi.sizeof("uva_process_options_t")
    opts.args = _cstr_array([_cstr(a, "args") for a in args], keep)
    if executable is not None:
        path = ffi.new("char[]", _cstr(executable, "executable"))
        keep.append(path)
        opts.file = path
    if env is not None:
        entries = []
        for k, v in env.items():
            k = _cstr(k, "environment")
            if not k or b"=" in k:
                raise ValueError("illegal environment variable name")
            entries.append(k + b"=" + _cstr(v, "environment"))
        opts.env = _cstr_array(entries, keep)
    if cwd is not None:
        cdir = ffi.new("char[]", _cstr(cwd, "cwd"))
        keep.append(cdir)
        opts.cwd = cdir
    return opts


def _stdio(slot, value, fd):
    """Fill the uva_stdio_t `slot` for descriptor fd from Popen's value;
    True if it is a pipe."""
    if value is None:
        slot.kind = lib.UVA_STDIO_INHERIT
    elif value == PIPE:
        slot.kind = lib.UVA_STDIO_PIPE
        return True
    elif value == DEVNULL:
        slot.kind = lib.UVA_STDIO_NULL
    elif value == STDOUT:
        if fd != 2:
            raise ValueError("STDOUT is only valid for stderr")
        slot.kind = lib.UVA_STDIO_STDOUT
    else:
        if hasattr(value, "fileno"):
            value = value.fileno()
        if not isinstance(value, int) or value < 0:
            raise ValueError("bad value for descriptor %d: %r" % (fd, value))
        slot.kind = lib.UVA_STDIO_FD
        slot.fd = value
    return False


def _spawn_error(rc, program, cwd):
    if rc in (
        lib.UVA_ENOENT,
        lib.UVA_EACCES,
        lib.UVA_ENOTDIR,
        lib.UVA_ENOEXEC,
    ):
        # as Popen: the file named, the cwd if it is the one missing
        name = program
        if cwd is not None and not os.path.isdir(cwd):
            name = cwd
        return OSError(-rc, os.strerror(-rc), name)
    return error(rc, "spawn")


async def _spawn(
    args,
    stdin,
    stdout,
    stderr,
    limit,
    cwd=None,
    env=None,
    start_new_session=False,
    executable=None,
    close_fds=True,
    shell=False,
    **kwds,
):
    if shell:
        raise ValueError("shell must be False")
    for name, want, msg in _ASYNCIO_REFUSED:
        if kwds.pop(name, want) != want:
            raise ValueError(msg)
    for name, default in _REFUSED.items():
        value = kwds.pop(name, default)
        if value != default and not (name == "pass_fds" and not value):
            raise NotImplementedError(
                "uvasync: %s=%r is not supported (the core's spawn has no "
                "such option)" % (name, value)
            )
    if kwds:
        raise TypeError("unexpected keyword argument %r" % (sorted(kwds)[0],))
    loop = get_running_loop()
    keep = []
    opts = _process_options(args, executable, env, cwd, keep)
    pipes = [
        fd
        for fd, value in enumerate((stdin, stdout, stderr))
        if _stdio(opts.stdio[fd], value, fd)
    ]
    if start_new_session:
        opts.flags |= lib.UVA_PROCESS_SETSID
    cell = ffi.new("uva_process_t **")
    rc = lib.uva_process_spawn(cell, loop._ptr(), opts)
    if rc < 0:
        raise _spawn_error(
            rc, executable if executable is not None else args[0], cwd
        )
    try:
        return Process(cell[0], loop, pipes, limit)
    except BaseException:
        lib.uva_process_close(cell[0], NULL, NULL)
        raise


async def create_subprocess_exec(
    program,
    *args,
    stdin=None,
    stdout=None,
    stderr=None,
    limit=_DEFAULT_LIMIT,
    **kwds,
):
    """Start `program` with `args` (no shell). stdin, stdout, stderr:
    None (inherited), PIPE, DEVNULL, STDOUT (stderr only), a descriptor
    or a file object. Also cwd, env, start_new_session, executable.
    Returns a Process."""
    return await _spawn(
        (program,) + args, stdin, stdout, stderr, limit, **kwds
    )


async def create_subprocess_shell(
    cmd,
    stdin=None,
    stdout=None,
    stderr=None,
    limit=_DEFAULT_LIMIT,
    **kwds,
):
    """Run the command line `cmd` with /bin/sh -c (as Popen's shell=True;
    `executable` replaces /bin/sh); the other arguments are
    create_subprocess_exec's."""
    if not isinstance(cmd, (bytes, str)):
        raise ValueError("cmd must be a string")
    return await _spawn(
        ("/bin/sh", "-c", cmd), stdin, stdout, stderr, limit, **kwds
    )
