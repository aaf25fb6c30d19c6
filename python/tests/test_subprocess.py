"""Child processes: create_subprocess_exec/_shell and Process, run against
uvasync and CPython's asyncio (the `aio` fixture) where the behaviour is
asyncio's: arguments, environment and directory, every kind of stdio,
exit codes and signals, communicate without deadlock, a wait cancelled
then the child killed and reaped, many children, the errors. What is
uvasync's own (the core's reaping policy, options refused) is tested on
uvasync alone."""

import asyncio
import errno
import os
import signal
import sys
import time

import pytest

import uvasync

PY = sys.executable


def _proc_state(pid):
    """The state letter of /proc/<pid>/stat ('Z' for a zombie), None once
    the process is gone (reaped)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return None


def test_exec_gives_pid_output_and_exit_code(aio):
    async def main():
        proc = await aio.create_subprocess_exec(
            PY,
            "-c",
            "import sys; print(sys.argv[1:]); sys.exit(3)",
            "a b",
            "c",
            stdout=aio.subprocess.PIPE,
        )
        assert isinstance(proc.pid, int) and proc.pid > 0
        assert proc.stdin is None and proc.stderr is None
        out = await proc.stdout.read()
        assert await proc.wait() == 3
        return out, proc.returncode

    assert aio.run(main()) == (b"['a b', 'c']\n", 3)


def test_shell_runs_the_command_line_with_sh(aio):
    async def main():
        proc = await aio.create_subprocess_shell(
            "echo $((6 * 7)) | tr 4 x; exit 5",
            stdout=aio.subprocess.PIPE,
        )
        out, err = await proc.communicate()
        return out, err, proc.returncode

    assert aio.run(main()) == (b"x2\n", None, 5)


def test_env_and_cwd(aio, tmp_path):
    async def main():
        proc = await aio.create_subprocess_exec(
            PY,
            "-c",
            "import os; print(os.getcwd(), os.environ.get('UVA_X'),"
            " 'HOME' in os.environ)",
            stdout=aio.subprocess.PIPE,
            cwd=tmp_path,
            env={"UVA_X": "42", "PATH": os.environ.get("PATH", "")},
        )
        out, _ = await proc.communicate()
        return out.decode().split()

    assert aio.run(main()) == [
        os.path.realpath(str(tmp_path)),
        "42",
        "False",
    ]


def test_stdin_pipe_stdout_pipe_stderr_pipe(aio):
    async def main():
        proc = await aio.create_subprocess_exec(
            PY,
            "-c",
            "import sys; d = sys.stdin.buffer.read();"
            " sys.stdout.buffer.write(d.upper());"
            " sys.stderr.buffer.write(b'err:' + d)",
            stdin=aio.subprocess.PIPE,
            stdout=aio.subprocess.PIPE,
            stderr=aio.subprocess.PIPE,
        )
        proc.stdin.write(b"abc\n")
        await proc.stdin.drain()
        proc.stdin.close()
        line = await proc.stdout.readline()
        err = await proc.stderr.read()
        rest = await proc.stdout.read()
        return line, rest, err, await proc.wait()

    assert aio.run(main()) == (b"ABC\n", b"", b"err:abc\n", 0)


def test_async_for_reads_the_childs_output_line_by_line(aio):
    async def main():
        proc = await aio.create_subprocess_shell(
            "printf 'one\\ntwo\\nthree'", stdout=aio.subprocess.PIPE
        )
        lines = [line async for line in proc.stdout]
        await proc.wait()
        return lines

    assert aio.run(main()) == [b"one\n", b"two\n", b"three"]


def test_write_eof_ends_the_childs_input(aio):
    async def main():
        proc = await aio.create_subprocess_exec(
            "cat", stdin=aio.subprocess.PIPE, stdout=aio.subprocess.PIPE
        )
        assert proc.stdin.can_write_eof()
        proc.stdin.write(b"to the end")
        proc.stdin.write_eof()
        return await proc.stdout.read(), await proc.wait()

    assert aio.run(main()) == (b"to the end", 0)


def test_write_eof_lets_go_of_the_pipe_and_leaves_the_stream_open():
    """uvasync: write_eof is the core's shutdown. Once the queue is
    written the child reads its end of input while the stream stays open
    (as a socket's after a half-close); writing fails after it, and
    close() still ends it."""

    async def main():
        proc = await uvasync.create_subprocess_exec(
            "cat",
            stdin=uvasync.subprocess.PIPE,
            stdout=uvasync.subprocess.PIPE,
        )

        async def feed():
            proc.stdin.write(b"x" * (1 << 20))  # more than the pipe holds
            await proc.stdin.write_eof()

        out, _ = await uvasync.gather(proc.stdout.read(), feed())
        assert not proc.stdin.is_closing()
        with pytest.raises(BrokenPipeError):
            proc.stdin.write(b"late")
            await proc.stdin.drain()
        await proc.stdin.write_eof()  # again: done at once
        proc.stdin.close()
        await proc.stdin.wait_closed()
        return len(out), await proc.wait()

    assert uvasync.run(main()) == (1 << 20, 0)


def test_devnull_descriptor_and_file_object(aio, tmp_path):
    path = tmp_path / "out.txt"

    async def main():
        with open(path, "wb") as f:
            proc = await aio.create_subprocess_exec(
                PY,
                "-c",
                "import sys; print(repr(sys.stdin.read()));"
                " print('to stderr', file=sys.stderr)",
                stdin=aio.subprocess.DEVNULL,
                stdout=f,  # a file object: its descriptor
                stderr=f.fileno(),  # a descriptor
            )
            assert (proc.stdin, proc.stdout, proc.stderr) == (None,) * 3
            assert await proc.wait() == 0
        proc = await aio.create_subprocess_exec(
            PY, "-c", "print('lost')", stdout=aio.subprocess.DEVNULL
        )
        assert await proc.wait() == 0

    aio.run(main())
    assert sorted(path.read_text().splitlines()) == ["''", "to stderr"]


def test_executable_runs_in_place_of_the_name_the_program_sees(aio):
    async def main():
        proc = await aio.create_subprocess_exec(
            "seen-name",
            "-c",
            "echo $0",
            executable="/bin/sh",
            stdout=aio.subprocess.PIPE,
        )
        return (await proc.communicate())[0]

    assert aio.run(main()) == b"seen-name\n"


def test_limit_bounds_a_line_of_the_childs_output(aio):
    async def main():
        proc = await aio.create_subprocess_exec(
            PY,
            "-c",
            "print('x' * 100); print('short')",
            stdout=aio.subprocess.PIPE,
            limit=10,
        )
        with pytest.raises(ValueError):
            await proc.stdout.readline()
        assert await proc.wait() == 0

    aio.run(main())


def test_stderr_to_stdout(aio):
    async def main():
        proc = await aio.create_subprocess_exec(
            PY,
            "-c",
            "import sys; sys.stdout.write('out\\n'); sys.stdout.flush();"
            " sys.stderr.write('err\\n')",
            stdout=aio.subprocess.PIPE,
            stderr=aio.subprocess.STDOUT,
        )
        assert proc.stderr is None
        return await proc.communicate()

    assert aio.run(main()) == (b"out\nerr\n", None)


def test_returncode_is_none_while_running_then_set_without_wait(aio):
    async def main():
        proc = await aio.create_subprocess_exec(
            PY,
            "-c",
            "import sys; sys.stdin.read(); sys.exit(7)",
            stdin=aio.subprocess.PIPE,
        )
        await aio.sleep(0.05)
        assert proc.returncode is None
        proc.stdin.close()
        for _ in range(500):  # set by the loop once it has exited
            if proc.returncode is not None:
                break
            await aio.sleep(0.01)
        return proc.returncode

    assert aio.run(main()) == 7


def test_exit_by_signal_is_a_negative_returncode(aio):
    async def main():
        proc = await aio.create_subprocess_exec(
            PY, "-c", "import os, signal; os.kill(os.getpid(), signal.SIGHUP)"
        )
        first = await proc.wait()
        proc = await aio.create_subprocess_exec(
            PY, "-c", "import time; time.sleep(60)"
        )
        proc.terminate()
        second = await proc.wait()
        proc = await aio.create_subprocess_exec(
            PY, "-c", "import time; time.sleep(60)"
        )
        proc.send_signal(signal.SIGUSR1)
        return first, second, await proc.wait()

    assert aio.run(main()) == (
        -signal.SIGHUP,
        -signal.SIGTERM,
        -signal.SIGUSR1,
    )


def test_communicate_1mib_in_and_out_does_not_deadlock(aio):
    # cat writes its output while it reads its input: a parent that wrote
    # all of stdin before reading would fill both pipes and hang
    data = os.urandom(1 << 20)

    async def main():
        proc = await aio.create_subprocess_exec(
            "cat",
            stdin=aio.subprocess.PIPE,
            stdout=aio.subprocess.PIPE,
            stderr=aio.subprocess.PIPE,
        )
        out, err = await aio.wait_for(proc.communicate(data), 20)
        return out, err, proc.returncode

    out, err, rc = aio.run(main())
    assert (len(out), err, rc) == (len(data), b"", 0)
    assert out == data


def test_communicate_closes_stdin_and_ignores_a_child_that_stopped_reading(
    aio,
):
    async def main():
        proc = await aio.create_subprocess_exec(
            PY,
            "-c",
            "import sys; sys.stdin.close(); print('bye')",
            stdin=aio.subprocess.PIPE,
            stdout=aio.subprocess.PIPE,
        )
        # 4 MiB to a child that never reads: EPIPE, not an exception
        out, err = await proc.communicate(b"x" * (4 << 20))
        return out, err, proc.returncode

    assert aio.run(main()) == (b"bye\n", None, 0)


def test_a_cancelled_wait_leaves_the_child_which_is_then_killed(aio):
    async def main():
        proc = await aio.create_subprocess_exec(
            PY, "-c", "import time; time.sleep(60)"
        )
        start = time.monotonic()
        with pytest.raises(asyncio.TimeoutError):
            await aio.wait_for(proc.wait(), 0.1)
        assert time.monotonic() - start < 5
        assert proc.returncode is None
        assert _proc_state(proc.pid) not in (None, "Z")  # still running
        proc.kill()
        assert await aio.wait_for(proc.wait(), 10) == -signal.SIGKILL
        return proc.pid

    pid = aio.run(main())
    assert _proc_state(pid) is None  # reaped


def test_several_tasks_wait_for_one_child(aio):
    async def main():
        proc = await aio.create_subprocess_exec(
            PY, "-c", "import time, sys; time.sleep(0.05); sys.exit(4)"
        )
        return await aio.gather(*(proc.wait() for _ in range(3)))

    assert aio.run(main()) == [4, 4, 4]


def test_1000_children_spawned_and_reaped(aio):
    # asyncio, the reference, with 100 (the scale is uvasync's to show)
    n, batch = (1000 if aio is uvasync else 100), 50

    async def one():
        proc = await aio.create_subprocess_exec("true")
        return proc.pid, await proc.wait()

    async def main():
        results = []
        for _ in range(n // batch):
            results += await aio.gather(*(one() for _ in range(batch)))
        return results

    start = time.monotonic()
    results = aio.run(main())
    elapsed = time.monotonic() - start
    assert [rc for _, rc in results] == [0] * n
    assert len(set(pid for pid, _ in results)) > 1
    assert all(_proc_state(pid) is None for pid, _ in results[-batch:])
    assert elapsed < 120  # a few seconds; generous on a loaded machine


def test_signals_after_the_exit_raise_process_lookup_error(aio):
    async def main():
        proc = await aio.create_subprocess_exec("true")
        await proc.wait()
        for call in (
            proc.terminate,
            proc.kill,
            lambda: proc.send_signal(signal.SIGUSR1),
        ):
            with pytest.raises(ProcessLookupError):
                call()

    aio.run(main())


def test_a_missing_program_raises_file_not_found(aio, tmp_path):
    async def main():
        with pytest.raises(FileNotFoundError) as e:
            await aio.create_subprocess_exec("/no/such/program-uvasync")
        assert e.value.filename == "/no/such/program-uvasync"
        with pytest.raises(FileNotFoundError):
            await aio.create_subprocess_exec("no-such-program-uvasync")
        with pytest.raises(PermissionError):
            await aio.create_subprocess_exec(str(tmp_path))
        script = tmp_path / "no-shebang"
        script.write_text("echo hi\n")
        script.chmod(0o755)
        with pytest.raises(OSError) as e:
            await aio.create_subprocess_exec(str(script))
        assert e.value.errno == errno.ENOEXEC
        assert e.value.filename == str(script)

    aio.run(main())


def test_start_new_session_makes_the_child_a_session_leader(aio):
    async def main():
        out = []
        for new in (False, True):
            proc = await aio.create_subprocess_exec(
                PY,
                "-c",
                "import os; print(os.getsid(0) == os.getpid())",
                stdout=aio.subprocess.PIPE,
                start_new_session=new,
            )
            out.append((await proc.communicate())[0])
        return out

    assert aio.run(main()) == [b"False\n", b"True\n"]


def test_text_mode_arguments_are_refused_as_asyncio_does(aio):
    async def main():
        for kw in ({"text": True}, {"bufsize": 1}, {"encoding": "utf-8"}):
            with pytest.raises(ValueError):
                await aio.create_subprocess_exec("true", **kw)
        with pytest.raises(ValueError):
            await aio.create_subprocess_shell(["true"])

    aio.run(main())


def test_what_the_core_cannot_do_is_refused():
    async def main():
        r, w = os.pipe()
        try:
            for kw in (
                {"pass_fds": (w,)},
                {"preexec_fn": lambda: None},
                {"user": 0},
            ):
                with pytest.raises(NotImplementedError):
                    await uvasync.create_subprocess_exec("true", **kw)
        finally:
            os.close(r)
            os.close(w)
        with pytest.raises(TypeError):
            await uvasync.create_subprocess_exec("true", no_such_option=1)
        with pytest.raises(ValueError):
            await uvasync.create_subprocess_exec(
                "true", stdout=uvasync.subprocess.STDOUT
            )

    uvasync.run(main())


def test_a_child_running_when_the_loop_closes_is_not_killed_and_is_reaped(
    tmp_path,
):
    mark = tmp_path / "done"

    async def main():
        proc = await uvasync.create_subprocess_exec(
            PY,
            "-c",
            "import sys, time; time.sleep(0.3); open(sys.argv[1], 'w')",
            str(mark),
        )
        return proc.pid

    pid = uvasync.run(main())  # run() closes the loop at once
    assert not mark.exists()
    end = time.monotonic() + 10
    while (_proc_state(pid) is not None) and time.monotonic() < end:
        time.sleep(0.02)
    assert _proc_state(pid) is None  # neither running nor a zombie
    assert mark.exists()  # it ran to its end


def test_a_child_nobody_waits_for_is_reaped_when_it_exits():
    async def main():
        proc = await uvasync.create_subprocess_exec("true")
        pid = proc.pid
        del proc
        for _ in range(500):
            if _proc_state(pid) is None:
                return True
            await uvasync.sleep(0.01)
        return False

    assert uvasync.run(main())


def test_exports_match_asyncio():
    for name in ("PIPE", "STDOUT", "DEVNULL"):
        assert getattr(uvasync.subprocess, name) == getattr(
            asyncio.subprocess, name
        )
    assert uvasync.create_subprocess_exec is (
        uvasync.subprocess.create_subprocess_exec
    )
    assert uvasync.create_subprocess_shell is (
        uvasync.subprocess.create_subprocess_shell
    )
