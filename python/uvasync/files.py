"""Files without blocking the loop: open_file() and its async file objects,
and stat, lstat, rename, remove (unlink), mkdir, rmdir, listdir, scandir.

Every operation is a job on the core loop's thread pool (uva_fs_*, as
libuv runs uv_fs_*) that the calling task waits for; no Python code runs
on the pool for them. Reads and writes go in chunks (CHUNK bytes, or the
`buffering` size): read() of a whole file joins its chunks, readline() and
`async for` hold at most a chunk and a line, write() of a large object is
written a chunk at a time from the caller's buffer (each job copies its
chunk). Seekable files are read and written at the file object's own
position (pread/pwrite); pipes and devices at the descriptor's. One job
may run ahead each way: the next chunk of a regular file read in order,
and the last chunk written (waited for by the next read, seek, flush or
close, which raise its error).

A task cancelled while it waits for a job stops waiting: a job not yet
started is dropped, one running finishes and its result is discarded, so
after a cancelled read or write the file's position is where it was but
the bytes may have been written (as with a thread-based file object).
"""

import codecs
import errno
import io
import locale
import os
import stat as _st
import types
import warnings

from ._ffi import NULL, error, ffi, lib
from ._internal import _PENDING, _tls

__all__ = [
    "CHUNK",
    "open_file",
    "AsyncFile",
    "AsyncTextFile",
    "stat",
    "lstat",
    "rename",
    "remove",
    "unlink",
    "mkdir",
    "rmdir",
    "listdir",
    "scandir",
    "DirEntry",
]

CHUNK = 256 * 1024  # bytes per read or write job (the default buffer)

_EAGAIN = lib.UVA_EAGAIN


def _running_loop():
    loop = _tls.running
    if loop is None:
        raise RuntimeError("file operations must be awaited in a uvasync task")
    return loop


def _fs_error(rc, what, path=None, path2=None):
    """An error code as the os module raises it: an errno one as OSError
    (FileNotFoundError, IsADirectoryError, ...) naming the file(s)."""
    if -1000 < rc < 0:
        if path2 is not None:
            return OSError(-rc, os.strerror(-rc), path, None, path2)
        if path is not None:
            return OSError(-rc, os.strerror(-rc), path)
        return OSError(-rc, os.strerror(-rc))
    return error(rc, what)


def _cpath(path):
    """A path for the core: bytes, no NUL (as os functions require)."""
    p = os.fsencode(path)
    if b"\0" in p:
        raise ValueError("embedded null byte")
    return p


def _count(work):
    cell = ffi.new("int64_t *")
    rc = lib.uva_fs_result(cell, work)
    if rc < 0:
        raise error(rc, "file result")
    return cell[0]


def _bytes(work):
    data = ffi.new("const void **")
    size = ffi.new("size_t *")
    rc = lib.uva_fs_data(data, size, work)
    if rc < 0:
        raise error(rc, "read")
    return ffi.buffer(data[0], size[0])[:]


def _stat_result(work):
    st = ffi.new("uva_stat_t *")
    st.size = ffi.sizeof("uva_stat_t")
    rc = lib.uva_fs_statbuf(st, work)
    if rc < 0:
        raise error(rc, "stat")
    a, m, c = st.atime_ns, st.mtime_ns, st.ctime_ns
    return os.stat_result(
        (
            st.mode,
            st.ino,
            st.dev,
            st.nlink,
            st.uid,
            st.gid,
            st.file_size,
            a // 10**9,
            m // 10**9,
            c // 10**9,
        ),
        {
            "st_atime": a / 1e9,
            "st_mtime": m / 1e9,
            "st_ctime": c / 1e9,
            "st_atime_ns": a,
            "st_mtime_ns": m,
            "st_ctime_ns": c,
            "st_blksize": st.blksize,
            "st_blocks": st.blocks,
            "st_rdev": st.rdev,
        },
    )


def _start(start, what, path=None, path2=None):
    """Start a file job (start(cell, loop) -> code) on the running loop."""
    loop = _running_loop()
    cell = ffi.new("uva_work_t **")
    rc = start(cell, loop._ptr())
    if rc < 0:
        raise _fs_error(rc, what, path, path2)
    return cell[0]


@types.coroutine
def _finish(work, what, take=_count, path=None, path2=None):
    """Wait for a started job in the running task and return take(job)
    (default: its count). The job is closed in any case: if the task is
    cancelled while it waits, one not yet started is dropped."""
    try:
        rc = lib.uva_work_wait(work, NULL)
        while rc == _EAGAIN:
            yield _PENDING
            rc = lib.uva_work_wait(work, NULL)
        if rc < 0:
            raise _fs_error(rc, what, path, path2)
        return take(work)
    finally:
        lib.uva_work_close(work)


@types.coroutine
def _job(start, what, take=_count, path=None, path2=None):
    """Start a file job and wait for it (_start, then _finish)."""
    work = _start(start, what, path, path2)
    return (yield from _finish(work, what, take, path, path2))


# --------------------------------------------------------------------------
# The module-level helpers
# --------------------------------------------------------------------------


async def stat(path):
    """os.stat(path), as a pool job: an os.stat_result."""
    p = _cpath(path)
    return await _job(
        lambda c, loop: lib.uva_fs_stat(c, loop, p), "stat", _stat_result, path
    )


async def lstat(path):
    """os.lstat(path): a symbolic link itself, not what it points to."""
    p = _cpath(path)
    return await _job(
        lambda c, loop: lib.uva_fs_lstat(c, loop, p),
        "lstat",
        _stat_result,
        path,
    )


async def rename(src, dst):
    """os.rename(src, dst)."""
    a, b = _cpath(src), _cpath(dst)
    await _job(
        lambda c, loop: lib.uva_fs_rename(c, loop, a, b),
        "rename",
        path=src,
        path2=dst,
    )


async def remove(path):
    """os.remove(path) (a file, not a directory)."""
    p = _cpath(path)
    await _job(
        lambda c, loop: lib.uva_fs_unlink(c, loop, p), "remove", path=path
    )


unlink = remove


async def mkdir(path, mode=0o777):
    """os.mkdir(path, mode) (mode as the umask leaves it)."""
    p = _cpath(path)
    await _job(
        lambda c, loop: lib.uva_fs_mkdir(c, loop, p, mode), "mkdir", path=path
    )


async def rmdir(path):
    """os.rmdir(path) (an empty directory)."""
    p = _cpath(path)
    await _job(
        lambda c, loop: lib.uva_fs_rmdir(c, loop, p), "rmdir", path=path
    )


_TYPES = {
    lib.UVA_FILE_DIR: "dir",
    lib.UVA_FILE_REGULAR: "file",
    lib.UVA_FILE_LINK: "link",
}


class DirEntry:
    """An entry of scandir(): name, path, and the type the directory gave
    (is_dir, is_file, is_symlink, without following links; where the file
    system does not say, a blocking os.lstat answers)."""

    __slots__ = ("name", "path", "_type")

    def __init__(self, name, path, ftype):
        self.name = name
        self.path = path
        self._type = ftype

    def _kind(self):
        if self._type == lib.UVA_FILE_UNKNOWN:
            mode = os.lstat(self.path).st_mode
            if _st.S_ISDIR(mode):
                return "dir"
            if _st.S_ISREG(mode):
                return "file"
            if _st.S_ISLNK(mode):
                return "link"
            return None
        return _TYPES.get(self._type)

    def is_dir(self):
        return self._kind() == "dir"

    def is_file(self):
        return self._kind() == "file"

    def is_symlink(self):
        return self._kind() == "link"

    def __fspath__(self):
        return self.path

    def __repr__(self):
        return "<DirEntry %r>" % (self.name,)


def _entries(work):
    n = _count(work)
    name = ffi.new("const char **")
    ftype = ffi.new("uva_file_type *")
    out = []
    for i in range(n):
        rc = lib.uva_fs_dirent(name, ftype, work, i)
        if rc < 0:
            raise error(rc, "readdir")
        out.append((ffi.string(name[0]), int(ftype[0])))
    return out


async def _readdir(path):
    p = _cpath(path)
    return await _job(
        lambda c, loop: lib.uva_fs_readdir(c, loop, p),
        "readdir",
        _entries,
        path,
    )


async def listdir(path="."):
    """os.listdir(path): the names in the directory (str, or bytes for a
    bytes path), without "." and "..", in the order the system gives."""
    entries = await _readdir(path)
    as_bytes = isinstance(path, bytes)
    return [n if as_bytes else os.fsdecode(n) for n, _ in entries]


async def scandir(path="."):
    """The directory's entries as a list of DirEntry (os.scandir reads
    lazily; this reads the whole directory in one job)."""
    entries = await _readdir(path)
    as_bytes = isinstance(path, bytes)
    out = []
    for n, t in entries:
        name = n if as_bytes else os.fsdecode(n)
        out.append(DirEntry(name, os.path.join(path, name), t))
    return out


# --------------------------------------------------------------------------
# open_file
# --------------------------------------------------------------------------


def open_file(
    path,
    mode="r",
    buffering=-1,
    encoding=None,
    errors=None,
    newline=None,
):
    """Open a file as open() does, its I/O done on the loop's thread pool:
    `f = await open_file(...)` or `async with open_file(...) as f:` (closed
    at the block's end). Modes r, w, x, a with + and b or t as open();
    binary mode gives an AsyncFile, text mode an AsyncTextFile.
    buffering: -1 (CHUNK-byte chunks), 0 (binary only: writes go out at
    once), 1 (text only: flush at each newline written), > 1 (chunk
    size). encoding (default: the locale's), errors and newline as
    io.TextIOWrapper. `path` may also be a descriptor the file then owns."""
    return _Opening(path, mode, buffering, encoding, errors, newline)


class _Opening:
    """What open_file() returns: awaited, the file; `async with`, the file
    for the block, closed after it."""

    __slots__ = ("_args", "_file")

    def __init__(self, *args):
        self._args = args
        self._file = None

    def __await__(self):
        return _open(*self._args).__await__()

    async def __aenter__(self):
        self._file = await _open(*self._args)
        return self._file

    async def __aexit__(self, *exc):
        await self._file.close()


def _parse_mode(mode, buffering, encoding, errors, newline):
    if not isinstance(mode, str):
        raise TypeError("open_file() argument 'mode' must be str")
    chars = set(mode)
    if len(chars) != len(mode) or not chars <= set("rwxabt+"):
        raise ValueError("invalid mode: %r" % (mode,))
    kinds = chars & set("rwxa")
    if len(kinds) != 1 or ("b" in chars and "t" in chars):
        raise ValueError(
            "must have exactly one of create/read/write/append mode"
        )
    binary = "b" in chars
    if binary and (encoding is not None or errors is not None):
        raise ValueError("binary mode doesn't take an encoding argument")
    if binary and newline is not None:
        raise ValueError("binary mode doesn't take a newline argument")
    if not binary and buffering == 0:
        raise ValueError("can't have unbuffered text I/O")
    if newline not in (None, "", "\n", "\r", "\r\n"):
        raise ValueError("illegal newline value: %r" % (newline,))
    kind = kinds.pop()
    plus = "+" in chars
    flags = {
        "r": os.O_RDONLY,
        "w": os.O_WRONLY | os.O_CREAT | os.O_TRUNC,
        "x": os.O_WRONLY | os.O_CREAT | os.O_EXCL,
        "a": os.O_WRONLY | os.O_CREAT | os.O_APPEND,
    }[kind]
    if plus:
        flags = (flags & ~os.O_WRONLY) | os.O_RDWR
    readable = kind == "r" or plus
    writable = kind != "r" or plus
    return flags, binary, readable, writable, kind == "a"


async def _open(path, mode, buffering, encoding, errors, newline):
    flags, binary, readable, writable, append = _parse_mode(
        mode, buffering, encoding, errors, newline
    )
    name = path  # as open() keeps it: the errors and f.name give it back
    if isinstance(path, int):
        fd = path
    else:
        p = _cpath(os.fspath(path))
        fd = await _job(
            lambda c, loop: lib.uva_fs_open(c, loop, p, flags, 0o666),
            "open",
            path=name,
        )
    try:
        st = await _job(
            lambda c, loop: lib.uva_fs_fstat(c, loop, fd),
            "fstat",
            _stat_result,
        )
        if _st.S_ISDIR(st.st_mode):
            raise IsADirectoryError(
                errno.EISDIR, os.strerror(errno.EISDIR), name
            )
    except BaseException:
        await _close_fd(fd)
        raise
    chunk = buffering if buffering > 1 else CHUNK
    seekable = _st.S_ISREG(st.st_mode) or _st.S_ISBLK(st.st_mode)
    raw = AsyncFile(
        fd,
        name,
        mode,
        readable,
        writable,
        append,
        seekable,
        st.st_size if append else 0,
        chunk,
        buffering == 0,
    )
    if binary:
        return raw
    return AsyncTextFile(raw, encoding, errors, newline, buffering == 1)


async def _close_fd(fd):
    await _job(lambda c, loop: lib.uva_fs_close(c, loop, fd), "close")


class _FileBase:
    """What both file kinds share: async with, async for, readlines."""

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc):
        await self.close()

    def __aiter__(self):
        return self

    async def __anext__(self):
        line = await self.readline()
        if not line:
            raise StopAsyncIteration
        return line

    async def readlines(self, hint=-1):
        """The lines left, as a list (stopping once `hint` > 0 bytes or
        characters were read, as io)."""
        lines, total = [], 0
        while True:
            line = await self.readline()
            if not line:
                return lines
            lines.append(line)
            total += len(line)
            if 0 < hint <= total:
                return lines

    async def writelines(self, lines):
        for line in lines:
            await self.write(line)

    async def aclose(self):
        await self.close()


class AsyncFile(_FileBase):
    """A file opened in binary mode (open_file(path, "rb") ...): read,
    read1, readline, readlines, async for, write, writelines, seek, tell,
    truncate, flush, fsync, close/aclose -- each a coroutine."""

    def __init__(
        self,
        fd,
        name,
        mode,
        readable,
        writable,
        append,
        seekable,
        pos,
        chunk,
        unbuffered,
    ):
        self._fd = fd
        self.name = name
        self.mode = mode
        self._readable = readable
        self._writable = writable
        self._append = append
        self._seekable = seekable
        self._chunk = chunk
        self._unbuffered = unbuffered
        # The position the next read or write is at (seekable files).
        # None in append mode after a write: the end, which fstat tells.
        self._pos = pos
        self._rbuf = b""  # read ahead: _rbuf[_ri:] are the bytes at _pos
        self._ri = 0
        self._wbuf = bytearray()  # written, not yet out: ends at _pos
        self._ahead = None  # (job, offset, loop): the next chunk, being read
        self._behind = None  # (job, bytes, offset, loop): the last write
        self._next = None  # where the last chunk read ended
        self._closed = False

    def __repr__(self):
        return "<uvasync.files.AsyncFile name=%r mode=%r>" % (
            self.name,
            self.mode,
        )

    # -- state ---------------------------------------------------------------

    @property
    def closed(self):
        return self._closed

    def fileno(self):
        self._check_open()
        return self._fd

    def readable(self):
        self._check_open()
        return self._readable

    def writable(self):
        self._check_open()
        return self._writable

    def seekable(self):
        self._check_open()
        return self._seekable

    def _check_open(self):
        if self._closed:
            raise ValueError("I/O operation on closed file.")

    def _check_readable(self):
        self._check_open()
        if not self._readable:
            raise io.UnsupportedOperation("File not open for reading")

    def _check_writable(self):
        self._check_open()
        if not self._writable:
            raise io.UnsupportedOperation("File not open for writing")

    def _check_seekable(self):
        self._check_open()
        if not self._seekable:
            raise io.UnsupportedOperation("File or stream is not seekable.")

    # -- the jobs ------------------------------------------------------------

    async def _size(self):
        st = await _job(
            lambda c, loop: lib.uva_fs_fstat(c, loop, self._fd),
            "fstat",
            _stat_result,
        )
        return st.st_size

    async def _position(self):
        if self._pos is None:
            self._pos = await self._size()
        return self._pos

    async def _raw_read(self, n, offset):
        fd = self._fd
        return await _job(
            lambda c, loop: lib.uva_fs_read(c, loop, fd, n, offset),
            "read",
            _bytes,
        )

    async def _raw_write(self, view, offset):
        """All of `view` at offset (-1: the descriptor's position), one
        chunk per job. The last job is left running (write-behind): the
        next read, seek, flush or close of the file waits for it, and
        raises its error."""
        fd, chunk = self._fd, self._chunk
        while len(view):
            await self._wait_behind()
            piece = view[:chunk]
            self._start_behind(fd, piece, offset)
            view = view[len(piece) :]
            if offset >= 0:
                offset += len(piece)

    def _start_behind(self, fd, piece, offset):
        data = ffi.from_buffer(piece)  # the job copies it as it starts
        work = _start(
            lambda c, loop: lib.uva_fs_write(
                c, loop, fd, data, len(data), offset
            ),
            "write",
        )
        loop = _tls.running
        self._behind = (work, piece, offset, loop)
        loop._bind(self)  # its close closes the job (_detach)

    async def _wait_behind(self):
        """Wait for the write left running; write on what it did not."""
        while self._behind is not None:
            work, piece, offset, loop = self._behind
            self._behind = None
            n = await _finish(work, "write")
            if n < len(piece):  # a short write: the rest goes on
                self._start_behind(
                    self._fd, piece[n:], offset + n if offset >= 0 else -1
                )

    def _write_offset(self, length):
        """Where `length` bytes ending at the current position start."""
        if self._append or not self._seekable:
            return -1
        return self._pos - length

    async def _flush_writes(self):
        """Out with the write buffer, and wait until every write ended."""
        buf = self._wbuf
        if buf:
            self._wbuf = bytearray()  # never changed again: the job's
            await self._raw_write(
                memoryview(buf), self._write_offset(len(buf))
            )
            if self._append:
                self._pos = None
        await self._wait_behind()

    async def _fill(self):
        """Read the next chunk into the read-ahead buffer (which is empty);
        b"" at end of file. A regular file read on from where the last
        chunk ended gets the chunk after this one read meanwhile (one job
        ahead: a copy's reads then overlap its writes)."""
        if not self._seekable:
            data = await self._raw_read(self._chunk, -1)
            self._rbuf, self._ri = data, 0
            return data
        offset = await self._position()
        ahead = self._ahead
        if ahead is not None and (
            ahead[1] != offset or ahead[2] is not _tls.running
        ):
            self._drop_ahead()  # a seek went elsewhere, or another loop runs
            ahead = None
        self._ahead = None
        if ahead is not None:
            data = await _finish(ahead[0], "read", _bytes)
        else:
            data = await self._raw_read(self._chunk, offset)
        end = offset + len(data)
        if len(data) == self._chunk and self._next == offset:
            fd = self._fd
            work = _start(
                lambda c, loop: lib.uva_fs_read(c, loop, fd, self._chunk, end),
                "read",
            )
            loop = _tls.running
            self._ahead = (work, end, loop)
            loop._bind(self)  # its close closes the job (_detach)
        self._next = end
        self._rbuf, self._ri = data, 0
        return data

    def _drop_ahead(self):
        """Forget the chunk read ahead (a write may change those bytes)."""
        ahead, self._ahead = self._ahead, None
        if ahead is not None and not ahead[2].is_closed():
            lib.uva_work_close(ahead[0])

    def _detach(self):
        """The loop closes: the jobs left running go (a write not started
        is lost, as what a file never flushed)."""
        self._drop_ahead()
        behind, self._behind = self._behind, None
        if behind is not None and not behind[3].is_closed():
            lib.uva_work_close(behind[0])

    def _take(self, n):
        """Up to n bytes of the read-ahead buffer (all: n < 0)."""
        buf, i = self._rbuf, self._ri
        if n < 0 or i + n >= len(buf):
            out = buf[i:] if i else buf
            self._rbuf, self._ri = b"", 0
        else:
            out = buf[i : i + n]
            self._ri = i + n
        if self._seekable and self._pos is not None:
            self._pos += len(out)
        return out

    # -- reading -------------------------------------------------------------

    async def read(self, n=-1):
        """Up to n bytes (all that is left for n < 0 or None); fewer only
        at end of file; b"" there."""
        self._check_readable()
        await self._flush_writes()
        if n is None:
            n = -1
        parts = []
        while n != 0:
            if self._ri >= len(self._rbuf) and not await self._fill():
                break
            part = self._take(n)
            parts.append(part)
            if n > 0:
                n -= len(part)
        return parts[0] if len(parts) == 1 else b"".join(parts)

    async def read1(self, n=-1):
        """Up to n bytes with at most one job: what is buffered, else one
        chunk."""
        self._check_readable()
        await self._flush_writes()
        if self._ri >= len(self._rbuf) and not await self._fill():
            return b""
        return self._take(-1 if n is None else n)

    async def readline(self, size=-1):
        """The next line, b"\\n" included (not at the end of a file that
        does not end with one); b"" at end of file; at most `size` bytes
        if size >= 0."""
        self._check_readable()
        await self._flush_writes()
        if size is None:
            size = -1
        parts = []
        while size != 0:
            if self._ri >= len(self._rbuf) and not await self._fill():
                break
            buf, i = self._rbuf, self._ri
            end = buf.find(b"\n", i)
            n = -1 if end < 0 else end + 1 - i
            if size > 0 and (n < 0 or n > size):
                n = size
            part = self._take(n)
            parts.append(part)
            if end >= 0 and (size < 0 or len(part) == end + 1 - i):
                break
            if size > 0:
                size -= len(part)
        return parts[0] if len(parts) == 1 else b"".join(parts)

    # -- writing -------------------------------------------------------------

    async def write(self, data):
        """Write a bytes-like object; its length. It goes out when a chunk
        is full, at flush(), seek(), a read or close()."""
        self._check_writable()
        view = memoryview(data).cast("B")
        self._drop_ahead()
        n = len(view)
        if self._ri < len(self._rbuf):  # read ahead: not at the position
            self._rbuf, self._ri = b"", 0
        if self._seekable and not self._append:
            await self._position()
        if self._unbuffered or len(self._wbuf) + n >= self._chunk:
            await self._flush_writes()
            if self._pos is not None and self._seekable and not self._append:
                self._pos += n
            await self._raw_write(view, self._write_offset(n))
            if self._append:
                self._pos = None
            if type(data) is not bytes:  # the caller may change it after
                await self._wait_behind()
        else:
            self._wbuf += view
            if self._pos is not None and not self._append:
                self._pos += n
        return n

    async def flush(self):
        """Write out what write() buffered."""
        self._check_open()
        await self._flush_writes()

    async def fsync(self):
        """flush(), then fsync(2): the data is on the disk."""
        await self.flush()
        fd = self._fd
        await _job(lambda c, loop: lib.uva_fs_fsync(c, loop, fd, 0), "fsync")

    async def truncate(self, size=None):
        """Resize the file to `size` bytes (default: the position); the
        position does not move. Returns the size."""
        self._check_writable()
        await self._flush_writes()
        if size is None:
            size = await self.tell()
        self._rbuf, self._ri = b"", 0
        self._drop_ahead()
        fd = self._fd
        await _job(
            lambda c, loop: lib.uva_fs_ftruncate(c, loop, fd, size), "truncate"
        )
        return size

    # -- position ------------------------------------------------------------

    async def tell(self):
        """The position (as io: where the next read or write goes)."""
        self._check_seekable()
        if self._append:
            await self._flush_writes()
        return await self._position()

    async def seek(self, offset, whence=os.SEEK_SET):
        """Move to `offset` from the start (SEEK_SET), the position
        (SEEK_CUR) or the end (SEEK_END); the new position."""
        self._check_seekable()
        await self._flush_writes()
        if whence == os.SEEK_SET:
            if offset < 0:
                raise ValueError("negative seek position %r" % (offset,))
            pos = offset
        elif whence == os.SEEK_CUR:
            pos = await self._position() + offset
        elif whence == os.SEEK_END:
            pos = await self._size() + offset
        else:
            raise ValueError("invalid whence (%r)" % (whence,))
        if pos < 0:
            raise OSError(errno.EINVAL, os.strerror(errno.EINVAL))
        cur = self._pos
        ahead = len(self._rbuf) - self._ri
        if cur is not None and cur <= pos <= cur + ahead:
            self._ri += pos - cur  # within the read-ahead: keep it
        else:
            self._rbuf, self._ri = b"", 0
        self._pos = pos
        return pos

    # -- closing -------------------------------------------------------------

    def __del__(self):
        if not getattr(self, "_closed", True):
            self._closed = True
            warnings.warn(
                "unclosed file %r" % (self,),
                ResourceWarning,
                stacklevel=2,
                source=self,
            )
            self._detach()
            try:
                os.close(self._fd)  # what was buffered is lost, as unflushed
            except OSError:
                pass

    async def close(self):
        """Flush and close the descriptor; a second close does nothing."""
        if self._closed:
            return
        try:
            await self._flush_writes()
        finally:
            self._closed = True
            self._rbuf = b""
            self._detach()
            await _close_fd(self._fd)


class AsyncTextFile(_FileBase):
    """A file opened in text mode: str in and out, decoded incrementally
    (a codecs incremental decoder) with newlines as io.TextIOWrapper: for
    newline=None "\\r\\n" and "\\r" read as "\\n" and "\\n" written as
    os.linesep; "" splits lines at all three and translates nothing;
    "\\n", "\\r", "\\r\\n" split at that one and write "\\n" as it.
    tell() gives a byte offset seek() takes; exact for encodings without
    state (UTF-8, Latin-1, ASCII...)."""

    def __init__(self, raw, encoding, errors, newline, line_buffering):
        self.buffer = raw
        if encoding is None:
            encoding = locale.getpreferredencoding(False)
        self.encoding = codecs.lookup(encoding).name
        self.errors = errors if errors is not None else "strict"
        self.newline = newline
        self.line_buffering = line_buffering
        self._writenl = os.linesep if newline is None else newline or "\n"
        self._decoder = None
        self._encoder = None
        self._text = ""  # decoded, not yet read: _text[_ti:]
        self._ti = 0
        self._snap = None  # (raw position, decoder state, chunk) of _text

    def __repr__(self):
        return "<uvasync.files.AsyncTextFile name=%r mode=%r encoding=%r>" % (
            self.name,
            self.mode,
            self.encoding,
        )

    @property
    def name(self):
        return self.buffer.name

    @property
    def mode(self):
        return self.buffer.mode

    @property
    def closed(self):
        return self.buffer.closed

    def fileno(self):
        return self.buffer.fileno()

    def readable(self):
        return self.buffer.readable()

    def writable(self):
        return self.buffer.writable()

    def seekable(self):
        return self.buffer.seekable()

    # -- decoding --------------------------------------------------------------

    def _new_decoder(self):
        dec = codecs.getincrementaldecoder(self.encoding)(self.errors)
        if self.newline is None or self.newline == "":
            dec = io.IncrementalNewlineDecoder(dec, self.newline is None)
        return dec

    async def _fill(self):
        """Decode the next chunk into _text (all of it read); False at end
        of file."""
        raw = self.buffer
        if self._decoder is None:
            self._decoder = self._new_decoder()
        pos = await raw._position() if raw._seekable else None
        state = self._decoder.getstate()
        chunk = await raw.read1()
        self._snap = (pos, state, chunk)
        self._text = self._decoder.decode(chunk, not chunk)
        self._ti = 0
        return bool(chunk) or bool(self._text)

    def _reset_reading(self):
        self._decoder = None
        self._text, self._ti, self._snap = "", 0, None

    # -- reading -------------------------------------------------------------

    async def read(self, n=-1):
        """Up to n characters (all that is left for n < 0 or None)."""
        self.buffer._check_readable()
        if n is None:
            n = -1
        parts = []
        while n != 0:
            if self._ti >= len(self._text) and not await self._fill():
                break
            text, i = self._text, self._ti
            j = len(text) if n < 0 else min(len(text), i + n)
            parts.append(text[i:j])
            self._ti = j
            if n > 0:
                n -= j - i
        return "".join(parts)

    def _line_end(self, text, i):
        """The index just past the first line end in text[i:], or -1."""
        nl = self.newline
        if nl is None or nl == "\n":
            j = text.find("\n", i)
            return j + 1 if j >= 0 else -1
        if nl == "":
            j, k = text.find("\n", i), text.find("\r", i)
            if k < 0:
                return j + 1 if j >= 0 else -1
            if 0 <= j < k:
                return j + 1
            # a "\r" is never the decoded text's last character but at the
            # end of the file (the newline decoder holds it back)
            return k + 2 if text.startswith("\n", k + 1) else k + 1
        j = text.find(nl, i)
        return j + len(nl) if j >= 0 else -1

    async def readline(self, size=-1):
        """The next line, its line end included; "" at end of file."""
        self.buffer._check_readable()
        if size is None:
            size = -1
        parts = []
        while size != 0:
            if self._ti >= len(self._text) and not await self._fill():
                break
            text, i = self._text, self._ti
            if (
                self.newline == "\r\n"
                and parts
                and parts[-1].endswith("\r")
                and text.startswith("\n", i)
            ):  # "\r\n" across two chunks
                parts.append("\n")
                self._ti = i + 1
                break
            end = self._line_end(text, i)
            j = len(text) if end < 0 else end
            if size > 0:
                j = min(j, i + size)
                size -= j - i
            parts.append(text[i:j])
            self._ti = j
            if j == end:
                break
        return "".join(parts)

    # -- writing -------------------------------------------------------------

    async def write(self, s):
        """Write a str; its length in characters."""
        if not isinstance(s, str):
            raise TypeError(
                "write() argument must be str, not %s" % type(s).__name__
            )
        raw = self.buffer
        raw._check_writable()
        if self._snap is not None:  # read ahead: back to the position
            if raw._seekable:
                await raw.seek(await self.tell())
            self._reset_reading()
        text = s
        if self._writenl != "\n" and "\n" in text:
            text = text.replace("\n", self._writenl)
        if self._encoder is None:
            self._encoder = codecs.getincrementalencoder(self.encoding)(
                self.errors
            )
        await raw.write(self._encoder.encode(text))
        if self.line_buffering and ("\n" in s or "\r" in s):
            await raw.flush()
        return len(s)

    async def flush(self):
        await self.buffer.flush()

    async def fsync(self):
        await self.buffer.fsync()

    async def truncate(self, size=None):
        """Resize to `size` bytes (default: tell()); the position stays."""
        pos = await self.tell()
        self._reset_reading()
        await self.buffer.seek(pos)
        return await self.buffer.truncate(pos if size is None else size)

    # -- position ------------------------------------------------------------

    async def tell(self):
        """The byte offset of the next character to read or write."""
        raw = self.buffer
        raw._check_seekable()
        snap = self._snap
        if snap is None:
            return await raw.tell()
        pos, state, chunk = snap
        consumed = self._ti
        if consumed >= len(self._text) and self._decoder.getstate() == (
            b"",
            0,
        ):
            return pos + len(chunk)
        pending, flag = state
        data = pending + chunk
        base = pos - len(pending)
        if flag & 1:  # a "\r" held back from the chunk before
            data, base = b"\r" + data, base - 1
        return base + self._bytes_for(data, consumed)

    def _bytes_for(self, data, consumed):
        """How many bytes of data decode to its first `consumed` chars."""

        def count(b):
            return len(self._new_decoder().decode(data[:b]))

        lo, hi = 0, len(data)
        while lo < hi:
            mid = (lo + hi) // 2
            if count(mid) >= consumed:
                hi = mid
            else:
                lo = mid + 1
        if count(lo) > consumed and b"\r" in data[:lo]:
            # a lone "\r" read as "\n" only once the next char came
            return data.rindex(b"\r", 0, lo) + 1
        return lo

    async def seek(self, offset, whence=os.SEEK_SET):
        """seek(tell_value), seek(0), seek(0, SEEK_END); as
        io.TextIOWrapper, no other offsets from the position or end."""
        raw = self.buffer
        raw._check_seekable()
        if whence == os.SEEK_CUR:
            if offset != 0:
                raise io.UnsupportedOperation(
                    "can't do nonzero cur-relative seeks"
                )
            return await self.tell()
        if whence == os.SEEK_END and offset != 0:
            raise io.UnsupportedOperation(
                "can't do nonzero end-relative seeks"
            )
        self._reset_reading()
        self._encoder = None
        return await raw.seek(offset, whence)

    async def close(self):
        await self.buffer.close()
