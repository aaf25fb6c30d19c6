"""Files through the loop's thread pool (issue 24 item 4): open_file() in
every mode, read, readline, iteration, seek, tell, write, truncate, text
decoding and newlines -- each checked against what the built-in open()
does with the same file -- the errors as the os module raises them, the
module-level helpers (uvasync.files), cancellation, and a 1 GiB copy with
a checksum and flat memory."""

import errno
import io
import os
import resource
import time
import warnings
import zlib

import pytest

import uvasync
from uvasync import files


def run(coro):
    return uvasync.run(coro)


INITIAL = b"hello\nworld\nthird line\n"


def sync_script(path, mode, **kw):
    """What the same steps give with the built-in open()."""
    out = []
    with open(path, mode, **kw) as f:
        if f.readable():
            out.append(f.read(3))
            out.append(f.readline())
        if f.writable():
            if "b" not in mode and f.readable():
                # TextIOWrapper writes where its buffer's read-ahead ended;
                # open_file's text files write at tell(), as after this
                f.seek(f.tell())
            out.append(f.write("XY" if "b" not in mode else b"XY"))
        if f.seekable():
            out.append(f.tell())
            f.seek(0)
            if f.readable():
                out.append(f.read())
            out.append(f.tell())
    return out


async def async_script(path, mode, **kw):
    out = []
    async with files.open_file(path, mode, **kw) as f:
        if f.readable():
            out.append(await f.read(3))
            out.append(await f.readline())
        if f.writable():
            out.append(await f.write("XY" if "b" not in mode else b"XY"))
        if f.seekable():
            out.append(await f.tell())
            await f.seek(0)
            if f.readable():
                out.append(await f.read())
            out.append(await f.tell())
    assert f.closed
    return out


MODES = [
    "r",
    "rb",
    "r+",
    "r+b",
    "w",
    "wb",
    "w+",
    "w+b",
    "a",
    "ab",
    "a+",
    "a+b",
]


@pytest.mark.parametrize("mode", MODES)
def test_every_mode_as_open_does(tmp_path, mode):
    mine, ref = tmp_path / "mine", tmp_path / "ref"
    mine.write_bytes(INITIAL)
    ref.write_bytes(INITIAL)
    expected = sync_script(ref, mode)
    assert run(async_script(mine, mode)) == expected
    assert mine.read_bytes() == ref.read_bytes()


@pytest.mark.parametrize("mode", ["x", "xb", "x+"])
def test_exclusive_creation(tmp_path, mode):
    path = tmp_path / "new"

    async def main():
        async with files.open_file(path, mode) as f:
            await f.write("made" if "b" not in mode else b"made")
        with pytest.raises(FileExistsError) as info:
            await files.open_file(path, mode)
        return info.value

    e = run(main())
    assert e.errno == errno.EEXIST and e.filename == path
    assert path.read_bytes() == b"made"


def test_await_form_and_aclose(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"abc")

    async def main():
        f = await uvasync.open_file(path, "rb")
        try:
            return await f.read(), f.name, f.mode
        finally:
            await f.aclose()
            await f.close()  # a second close does nothing
            with pytest.raises(ValueError):
                await f.read()

    assert run(main()) == (b"abc", path, "rb")


def make_lines(n):
    return b"".join(b"line %d %s\n" % (i, b"x" * (i % 37)) for i in range(n))


@pytest.mark.parametrize("buffering", [-1, 7, 64, 4096])
def test_read_readline_iteration_seek_tell_across_chunks(tmp_path, buffering):
    data = make_lines(2000) + b"no newline at the end"
    path = tmp_path / "lines"
    path.write_bytes(data)

    async def main():
        out = {}
        async with files.open_file(path, "rb", buffering=buffering) as f:
            out["iter"] = [line async for line in f]
            await f.seek(0)
            out["lines"] = await f.readlines()
            await f.seek(5)
            out["read"] = [await f.read(100), await f.read(1), await f.read()]
            out["eof"] = await f.read()
            await f.seek(-30, os.SEEK_END)
            out["end"] = (
                await f.tell(),
                await f.readline(),
                await f.readline(),
            )
            await f.seek(1000)
            out["limited"] = [await f.readline(5), await f.readline(1000)]
            out["pos"] = await f.tell()
            await f.seek(3, os.SEEK_CUR)
            out["cur"] = (await f.tell(), await f.read(4))
            assert 1 <= len(await f.read1(5)) <= 5
        return out

    with open(path, "rb") as f:
        ref = {"iter": list(f)}
        f.seek(0)
        ref["lines"] = f.readlines()
        f.seek(5)
        ref["read"] = [f.read(100), f.read(1), f.read()]
        ref["eof"] = f.read()
        f.seek(-30, os.SEEK_END)
        ref["end"] = (f.tell(), f.readline(), f.readline())
        f.seek(1000)
        ref["limited"] = [f.readline(5), f.readline(1000)]
        ref["pos"] = f.tell()
        f.seek(3, os.SEEK_CUR)
        ref["cur"] = (f.tell(), f.read(4))
    assert run(main()) == ref


def test_writes_reads_and_truncate_mixed(tmp_path):
    path = tmp_path / "rw"

    async def main():
        async with files.open_file(path, "w+b", buffering=16) as f:
            await f.write(b"0123456789" * 5)
            await f.seek(10)
            first = await f.read(5)
            await f.write(b"ABC")  # at 15
            await f.seek(0)
            whole = await f.read()
            assert await f.truncate(20) == 20
            at = await f.tell()
            await f.seek(0, os.SEEK_END)
            end = await f.tell()
            await f.write(memoryview(b"tail"))
            await f.flush()
            await f.fsync()
        return first, whole, at, end

    first, whole, at, end = run(main())
    assert first == b"01234"
    assert whole == b"012345678901234ABC89" + b"0123456789" * 3
    assert (at, end) == (50, 20)
    assert path.read_bytes() == whole[:20] + b"tail"


def test_a_large_write_goes_out_in_chunks(tmp_path):
    data = os.urandom(3 * files.CHUNK + 123)
    path = tmp_path / "big"

    async def main():
        async with files.open_file(path, "wb") as f:
            assert await f.write(data) == len(data)
            assert await f.tell() == len(data)
        async with files.open_file(path, "rb") as f:
            return await f.read()

    assert run(main()) == data
    assert path.read_bytes() == data


TEXT = "première ligne\r\nsecond\rthird\nlast 日本語 without end"


@pytest.mark.parametrize("newline", [None, "", "\n", "\r", "\r\n"])
@pytest.mark.parametrize("buffering", [-1, 5])
def test_text_lines_and_newlines_as_textiowrapper(
    tmp_path, newline, buffering
):
    path = tmp_path / "text"
    path.write_bytes(TEXT.encode("utf-8"))

    async def main():
        async with files.open_file(
            path, "r", buffering=buffering, encoding="utf-8", newline=newline
        ) as f:
            lines = [line async for line in f]
            await f.seek(0)
            parts = [await f.read(3), await f.readline(), await f.read()]
        return lines, parts

    with open(path, encoding="utf-8", newline=newline) as f:
        ref_lines = list(f)
        f.seek(0)
        ref_parts = [f.read(3), f.readline(), f.read()]
    assert run(main()) == (ref_lines, ref_parts)


@pytest.mark.parametrize("newline", [None, "", "\n", "\r", "\r\n"])
def test_text_writes_translate_newlines_as_textiowrapper(tmp_path, newline):
    mine, ref = tmp_path / "mine", tmp_path / "ref"
    text = ["a\n", "b\r\nc", "\n", "é\n"]

    async def main():
        async with files.open_file(
            mine, "w", encoding="utf-8", newline=newline
        ) as f:
            for t in text:
                assert await f.write(t) == len(t)
            await f.writelines(["x\n", "y"])

    run(main())
    with open(ref, "w", encoding="utf-8", newline=newline) as f:
        f.writelines(text + ["x\n", "y"])
    assert mine.read_bytes() == ref.read_bytes()


@pytest.mark.parametrize("buffering", [-1, 3, 11])
def test_text_tell_and_seek_come_back_to_the_same_place(tmp_path, buffering):
    path = tmp_path / "text"
    path.write_bytes(("a\r\nbé\rc\n" * 50 + "日本\r\n語" * 30).encode("utf-8"))

    async def main():
        out = []
        async with files.open_file(
            path, "r", buffering=buffering, encoding="utf-8"
        ) as f:
            marks = []
            while True:
                marks.append(await f.tell())
                line = await f.readline()
                if not line:
                    break
                out.append(line)
            for mark, line in zip(marks, out):
                await f.seek(mark)
                assert await f.readline() == line
                assert await f.tell() == marks[marks.index(mark) + 1]
        return out

    with open(path, encoding="utf-8") as f:
        ref = list(f)
    assert run(main()) == ref


def test_text_read_write_and_append(tmp_path):
    path = tmp_path / "t"

    async def main():
        async with files.open_file(path, "w+", encoding="utf-8") as f:
            await f.write("one\ntwo\n")
            await f.seek(0)
            first = await f.readline()
            await f.write("TWO\n")  # after the line read, as TextIOWrapper
            await f.seek(0)
            whole = await f.read()
        async with files.open_file(path, "a", encoding="utf-8") as f:
            start = await f.tell()
            await f.write("three\n")
        return first, whole, start

    first, whole, start = run(main())
    assert (first, whole, start) == ("one\n", "one\nTWO\n", 8)
    assert path.read_text() == "one\nTWO\nthree\n"


def test_text_truncate_keeps_the_position(tmp_path):
    mine, ref = tmp_path / "mine", tmp_path / "ref"
    mine.write_text("abc\ndef\nghi\n")
    ref.write_text("abc\ndef\nghi\n")

    async def main():
        async with files.open_file(mine, "r+", encoding="utf-8") as f:
            line = await f.readline()
            a = await f.truncate(6)
            b = await f.tell()
            c = await f.truncate()
            return line, a, b, c, await f.read()

    with open(ref, "r+", encoding="utf-8") as f:
        line = f.readline()
        f.seek(f.tell())  # TextIOWrapper: else tell() is the read-ahead's
        want = (line, f.truncate(6), f.tell(), f.truncate(), f.read())
    assert run(main()) == want
    assert mine.read_bytes() == ref.read_bytes()


def test_text_decoding_errors(tmp_path):
    path = tmp_path / "bad"
    path.write_bytes(b"ok \xff here\n")

    async def main():
        async with files.open_file(path, encoding="utf-8") as f:
            with pytest.raises(UnicodeDecodeError):
                await f.read()
        async with files.open_file(
            path, encoding="utf-8", errors="replace"
        ) as f:
            return await f.read()

    assert run(main()) == "ok \ufffd here\n"


def test_open_errors_as_open(tmp_path):
    missing = tmp_path / "missing"

    async def main():
        got = {}
        for key, args in [
            ("missing", (missing, "r")),
            ("dir_r", (tmp_path, "r")),
            ("dir_w", (tmp_path, "w")),
        ]:
            try:
                await files.open_file(*args)
            except OSError as e:
                got[key] = (type(e), e.errno, e.filename)
        return got

    got = run(main())
    assert got["missing"] == (FileNotFoundError, errno.ENOENT, missing)
    assert got["dir_r"] == (IsADirectoryError, errno.EISDIR, tmp_path)
    assert got["dir_w"] == (IsADirectoryError, errno.EISDIR, tmp_path)


def test_bad_arguments(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"x")

    async def main():
        for mode, kw in [
            ("rw", {}),
            ("z", {}),
            ("rbt", {}),
            ("rb", {"encoding": "utf-8"}),
            ("rb", {"newline": "\n"}),
            ("r", {"buffering": 0}),
            ("r", {"newline": "x"}),
        ]:
            with pytest.raises(ValueError):
                await files.open_file(path, mode, **kw)
        async with files.open_file(path, "rb") as f:
            with pytest.raises(io.UnsupportedOperation):
                await f.write(b"no")
        async with files.open_file(path, "ab") as f:
            with pytest.raises(io.UnsupportedOperation):
                await f.read()
        async with files.open_file(path, "r") as f:
            with pytest.raises(TypeError):
                await f.write(b"bytes")
            with pytest.raises(io.UnsupportedOperation):
                await f.seek(1, os.SEEK_CUR)
        with pytest.raises(ValueError):
            await files.open_file(str(path) + "\0")

    run(main())


def test_a_pipe_is_read_and_written_without_seeking():
    r, w = os.pipe()

    async def main():
        async with files.open_file(w, "wb") as out:
            assert not out.seekable()
            await out.write(b"through\na pipe\n")
        async with files.open_file(r, "rb") as f:
            with pytest.raises(io.UnsupportedOperation):
                await f.tell()
            return [line async for line in f]

    assert run(main()) == [b"through\n", b"a pipe\n"]


def test_cancelling_a_task_waiting_for_a_read_leaves_the_file_usable():
    r, w = os.pipe()

    async def main():
        f = await files.open_file(r, "rb")
        reader = uvasync.create_task(f.read(10))
        await uvasync.sleep(0.05)
        reader.cancel()  # waits for a job blocked in read(2)
        with pytest.raises(uvasync.CancelledError):
            await reader
        os.write(w, b"data")  # the running job reads it, result discarded
        os.close(w)
        rest = await f.read()
        await f.close()
        return rest

    # b"" as the job was running (blocked in read(2)); b"data" only if a
    # loaded machine had not started it within 50 ms (then it was dropped)
    assert run(main()) in (b"", b"data")


def test_an_unclosed_file_warns_and_closes_its_descriptor(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"x")

    async def main():
        f = await files.open_file(path, "rb")
        return f.fileno(), f

    fd, f = run(main())
    with pytest.warns(ResourceWarning):
        del f
    with pytest.raises(OSError):
        os.fstat(fd)


def test_helpers(tmp_path):
    a = tmp_path / "a"
    a.write_bytes(b"12345")
    os.symlink(a, tmp_path / "link")

    async def main():
        st = await files.stat(a)
        lst = await files.lstat(tmp_path / "link")
        await files.mkdir(tmp_path / "d", 0o755)
        await files.rename(a, tmp_path / "d" / "b")
        names = sorted(await files.listdir(tmp_path))
        bnames = sorted(await files.listdir(os.fsencode(tmp_path)))
        entries = sorted(
            (e.name, e.is_dir(), e.is_file(), e.is_symlink())
            for e in await files.scandir(tmp_path)
        )
        await files.remove(tmp_path / "d" / "b")
        await files.unlink(tmp_path / "link")
        await files.rmdir(tmp_path / "d")
        left = await files.listdir(tmp_path)
        (tmp_path / "full").mkdir()
        (tmp_path / "full" / "x").write_bytes(b"")
        errs = []
        for call in [
            files.stat(tmp_path / "gone"),
            files.remove(tmp_path / "gone"),
            files.rmdir(tmp_path / "full"),
            files.listdir(tmp_path / "gone"),
            files.rename(tmp_path / "gone", tmp_path / "x"),
        ]:
            try:
                await call
            except OSError as e:
                errs.append((type(e), e.errno))
        return st, lst, names, bnames, entries, left, errs

    st, lst, names, bnames, entries, left, errs = run(main())
    assert st.st_size == 5 and st.st_mode & 0o170000 == 0o100000
    assert isinstance(st, os.stat_result)
    assert lst.st_mode & 0o170000 == 0o120000  # the link itself
    assert st.st_mtime_ns > 0 and abs(st.st_mtime - time.time()) < 60
    assert names == ["d", "link"]
    assert bnames == [b"d", b"link"]
    assert entries == [
        ("d", True, False, False),
        ("link", False, False, True),
    ]
    assert left == []
    assert errs == [
        (FileNotFoundError, errno.ENOENT),
        (FileNotFoundError, errno.ENOENT),
        (OSError, errno.ENOTEMPTY),
        (FileNotFoundError, errno.ENOENT),
        (FileNotFoundError, errno.ENOENT),
    ]


def test_stat_matches_os_stat(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"x" * 1000)

    st = run(files.stat(path))
    ref = os.stat(path)
    for field in (
        "st_mode",
        "st_ino",
        "st_dev",
        "st_nlink",
        "st_uid",
        "st_gid",
        "st_size",
        "st_mtime_ns",
        "st_ctime_ns",
        "st_blocks",
        "st_blksize",
    ):
        assert getattr(st, field) == getattr(ref, field), field


# The copy test's size: 1 GiB, as issue 24 asks (6-7 s on the shared
# 2-core machine this was written on, load average 6; 17 s before files
# read and wrote one chunk ahead). UVASYNC_BIG_FILE_MIB=256 makes it
# smaller.
BIG = int(os.environ.get("UVASYNC_BIG_FILE_MIB", "1024")) << 20


def crc_of(path):
    crc = 0
    with open(path, "rb", buffering=0) as f:
        while True:
            b = f.read(1 << 22)
            if not b:
                return crc
            crc = zlib.crc32(b, crc)


def test_a_big_file_copied_through_the_api_with_flat_memory(tmp_path):
    src, dst = tmp_path / "src", tmp_path / "dst"
    # Sparse, with 4 KiB of random bytes at every MiB: cheap to make and to
    # read, yet a chunk lost, repeated or out of place changes the CRC.
    with open(src, "wb") as f:
        f.truncate(BIG)
        for off in range(0, BIG, 1 << 20):
            f.seek(off)
            f.write(os.urandom(4096))
    want = crc_of(src)

    async def copy():
        copied = 0
        async with files.open_file(src, "rb") as fin:
            async with files.open_file(dst, "wb") as fout:
                while True:
                    chunk = await fin.read(files.CHUNK)
                    if not chunk:
                        break
                    await fout.write(chunk)
                    copied += len(chunk)
        return copied

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB
    try:
        assert run(copy()) == BIG
        grew = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
        assert crc_of(dst) == want
        # a copy held in memory would grow it by BIG
        assert grew < 48 * 1024, "max RSS grew by %d KiB" % grew
    finally:
        src.unlink()
        if dst.exists():
            dst.unlink()


def test_sendfile_to_a_stream(tmp_path):
    path = tmp_path / "payload"
    data = os.urandom(3 * files.CHUNK + 77)
    path.write_bytes(data)

    async def main():
        received = []
        done = uvasync.Event()

        async def serve(reader, writer):
            writer.write(b"head|")
            async with files.open_file(path, "rb") as f:
                assert await f.read(10) == data[:10]
                sent = [await writer.sendfile(f)]  # from 0, to the end
                assert await f.tell() == len(data)
            with open(path, "rb") as f:
                sent.append(await writer.sendfile(f, 5, 100))
                assert f.tell() == 105
            fd = os.open(path, os.O_RDONLY)
            try:
                sent.append(await writer.sendfile(fd, 0, 0))
            finally:
                os.close(fd)
            writer.write(b"|tail")
            await writer.drain()
            writer.close()
            received.append(sent)
            done.set()

        server = await uvasync.start_server(serve, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await uvasync.open_connection("127.0.0.1", port)
        got = await reader.read()
        await done.wait()
        writer.close()
        server.close()
        await server.wait_closed()
        return got, received[0]

    got, sent = run(main())
    assert sent == [len(data), 100, 0]
    assert got == b"head|" + data + data[5:105] + b"|tail"


def test_sendfile_refuses_text_files(tmp_path):
    path = tmp_path / "t"
    path.write_text("x")

    async def main():
        async def serve(reader, writer):
            async with files.open_file(path, "r") as f:
                with pytest.raises(ValueError):
                    await writer.sendfile(f)
            writer.close()

        server = await uvasync.start_server(serve, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await uvasync.open_connection("127.0.0.1", port)
        assert await reader.read() == b""
        writer.close()
        server.close()
        await server.wait_closed()

    run(main())


def test_the_chunk_read_ahead_never_gives_stale_bytes(tmp_path):
    # A regular file read chunk after chunk has the next chunk read
    # meanwhile; a write, a seek elsewhere or a truncate must not let that
    # chunk's old bytes through.
    path = tmp_path / "f"
    data = bytes(range(256)) * 64  # 16 KiB: 16 chunks of 1 KiB
    path.write_bytes(data)

    async def main():
        async with files.open_file(path, "r+b", buffering=1024) as f:
            a = await f.read(2048)  # two chunks: the third is read ahead
            await f.seek(2048)
            await f.write(b"NEW!")
            await f.seek(2048)
            b = await f.read(8)
            await f.seek(4096)
            c = await f.read(2048)  # the fifth and sixth: seventh ahead
            await f.truncate(6200)
            d = await f.read()
            await f.seek(0)
            e = await f.read(3000)
            return a, b, c, d, e

    a, b, c, d, e = run(main())
    assert a == data[:2048]
    assert b == b"NEW!" + data[2052:2056]
    assert c == data[4096:6144]
    assert d == data[6144:6200]
    assert e == data[:2048] + b"NEW!" + data[2052:3000]


def test_a_file_left_open_does_not_keep_its_loop_from_closing(tmp_path):
    path = tmp_path / "f"
    data = os.urandom(64 * 1024)
    path.write_bytes(data)
    kept = []

    async def first():
        f = await files.open_file(path, "rb", buffering=4096)
        kept.append(f)
        return await f.read(8192)  # the next chunk is being read ahead

    async def second():
        f = kept[0]
        rest = await f.read()
        await f.close()
        return rest

    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        head = run(first())  # its loop closes with the job it started
        tail = run(second())  # another loop reads on
    assert head + tail == data


def test_a_write_left_running_is_waited_for_and_its_error_raised(tmp_path):
    # The last chunk of a write goes out while write() has returned; the
    # next read, flush or close waits for it and raises what it met.
    path = tmp_path / "f"

    async def main():
        async with files.open_file(path, "w+b", buffering=1024) as f:
            buf = bytearray(b"a" * 3000)
            await f.write(buf)
            buf[:] = b"b" * 3000  # write() returned: the bytes are out
            await f.write(b"c" * 2000)
            await f.seek(0)
            back = await f.read()
        r, w = os.pipe()
        os.close(r)
        f = await files.open_file(w, "wb", buffering=1024)
        await f.write(b"x" * 1024)  # EPIPE, met by the job left running
        with pytest.raises(BrokenPipeError):
            await f.flush()
        await f.close()
        r, w = os.pipe()
        os.close(r)
        with pytest.raises(BrokenPipeError):  # a bigger write meets it itself
            async with files.open_file(w, "wb", buffering=1024) as f:
                await f.write(b"x" * 4096)
        assert f.closed
        return back

    assert run(main()) == b"a" * 3000 + b"c" * 2000
