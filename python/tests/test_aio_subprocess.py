"""uvasync.EventLoop's subprocess_exec/subprocess_shell: the core's child
processes with the loop's pipe transports, and asyncio's own
create_subprocess_exec/_shell running on the loop unchanged. Every
scenario runs on asyncio's own loop too, as the reference."""

import asyncio
import os
import signal
import sys
from asyncio.subprocess import DEVNULL, PIPE, STDOUT

import pytest

import uvasync

LOOPS = [
    pytest.param(uvasync.EventLoop, id="uvasync"),
    pytest.param(asyncio.SelectorEventLoop, id="asyncio"),
]

PY = sys.executable


@pytest.fixture(params=LOOPS)
def loop(request):
    loop = request.param()
    asyncio.set_event_loop(
        loop
    )  # asyncio's child watcher wants it before 3.12
    yield loop
    asyncio.set_event_loop(None)
    loop.close()


def run(loop, coro, timeout=10):
    return loop.run_until_complete(asyncio.wait_for(coro, timeout))


def test_communicate_more_than_a_pipe_holds_both_ways(loop):
    data = os.urandom(3 * 1024 * 1024)  # far above a pipe's 64 KiB

    async def main():
        proc = await asyncio.create_subprocess_exec(
            "cat", stdin=PIPE, stdout=PIPE
        )
        out, err = await proc.communicate(data)
        assert out == data and err is None
        assert proc.returncode == 0

    run(loop, main())


def test_shell_output_error_and_exit_code(loop):
    async def main():
        proc = await asyncio.create_subprocess_shell(
            "echo out; echo err >&2; exit 7", stdout=PIPE, stderr=PIPE
        )
        assert await proc.communicate() == (b"out\n", b"err\n")
        assert proc.returncode == 7
        proc = await asyncio.create_subprocess_shell(
            "echo both; echo same >&2", stdout=PIPE, stderr=STDOUT
        )
        out, err = await proc.communicate()
        assert out == b"both\nsame\n" and err is None

    run(loop, main())


def test_streams_line_by_line(loop):
    async def main():
        proc = await asyncio.create_subprocess_exec(
            PY,
            "-c",
            "import sys\nfor line in sys.stdin: print(line.strip().upper())",
            stdin=PIPE,
            stdout=PIPE,
        )
        for word in (b"one", b"two"):
            proc.stdin.write(word + b"\n")
            await proc.stdin.drain()
            assert await proc.stdout.readline() == word.upper() + b"\n"
        proc.stdin.close()
        assert await proc.stdout.read() == b""
        assert await proc.wait() == 0

    run(loop, main())


def test_exit_by_signal(loop):
    async def main():
        proc = await asyncio.create_subprocess_shell("kill -TERM $$")
        assert await proc.wait() == -signal.SIGTERM
        proc = await asyncio.create_subprocess_exec("sleep", "30")
        proc.send_signal(signal.SIGINT)
        assert await proc.wait() == -signal.SIGINT
        with pytest.raises(ProcessLookupError):  # as asyncio: it ended
            proc.terminate()

    run(loop, main())


def test_kill_on_cancel(loop):
    async def main():
        proc = await asyncio.create_subprocess_exec("sleep", "30", stdout=PIPE)
        task = asyncio.ensure_future(proc.communicate())
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert proc.returncode is None  # still running
        proc.kill()
        assert await proc.wait() == -signal.SIGKILL
        proc = await asyncio.create_subprocess_exec("sleep", "30")
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(proc.wait(), 0.05)
        proc.kill()
        assert await proc.wait() == -signal.SIGKILL

    run(loop, main())


class Recorder(asyncio.SubprocessProtocol):
    def __init__(self):
        self.calls = []
        self.out = {1: b"", 2: b""}
        self.done = asyncio.get_running_loop().create_future()

    def connection_made(self, transport):
        self.calls.append("made")

    def pipe_data_received(self, fd, data):
        if self.calls[-1] != ("data", fd):
            self.calls.append(("data", fd))
        self.out[fd] += data

    def pipe_connection_lost(self, fd, exc):
        self.calls.append(("pipe lost", fd))

    def process_exited(self):
        self.calls.append("exited")

    def connection_lost(self, exc):
        self.calls.append("lost")
        self.done.set_result(exc)


def test_protocol_in_asyncios_order(loop):
    async def main():
        transport, proto = await loop.subprocess_exec(
            Recorder,
            PY,
            "-c",
            "import sys; sys.stdout.write(sys.stdin.read()); "
            "sys.stderr.write('e'); sys.exit(3)",
        )
        assert proto.calls == ["made"]  # before the call returns
        pid = transport.get_pid()
        assert isinstance(pid, int) and pid > 0
        assert transport.get_returncode() is None
        stdin = transport.get_pipe_transport(0)
        assert isinstance(stdin, asyncio.WriteTransport)
        assert isinstance(
            transport.get_pipe_transport(1), asyncio.ReadTransport
        )
        assert transport.get_pipe_transport(3) is None
        stdin.write(b"echoed")
        stdin.close()
        assert await proto.done is None
        assert transport.get_returncode() == 3
        assert proto.out == {1: b"echoed", 2: b"e"}
        calls = proto.calls
        assert calls[0] == "made" and calls[-1] == "lost"
        assert calls.index("exited") < calls.index("lost")
        for fd in (0, 1, 2):
            assert ("pipe lost", fd) in calls
        assert calls.index(("data", 1)) < calls.index(("pipe lost", 1))
        transport.close()
        with pytest.raises(ProcessLookupError):
            transport.send_signal(signal.SIGTERM)

    run(loop, main())


def test_close_kills_a_running_child(loop):
    async def main():
        transport, proto = await loop.subprocess_exec(
            Recorder, "sleep", "30", stdin=DEVNULL, stdout=DEVNULL, stderr=None
        )
        assert not transport.is_closing()
        transport.close()
        assert transport.is_closing()
        assert await proto.done is None
        assert transport.get_returncode() == -signal.SIGKILL
        assert proto.calls[-2:] == ["exited", "lost"]

    run(loop, main())


def test_shell_protocol_and_bytes_command(loop):
    async def main():
        transport, proto = await loop.subprocess_shell(
            Recorder, b"printf abc", stdin=None
        )
        await proto.done
        assert proto.out[1] == b"abc"
        assert transport.get_returncode() == 0
        transport.close()

    run(loop, main())


def test_cwd_env_and_spawn_errors(loop, tmp_path):
    async def main():
        proc = await asyncio.create_subprocess_exec(
            PY,
            "-c",
            "import os; print(os.getcwd()); print(os.environ['UVA_T'])",
            stdout=PIPE,
            cwd=str(tmp_path),
            env={"UVA_T": "set"},
        )
        out, _ = await proc.communicate()
        assert out.decode().split() == [str(tmp_path), "set"]
        with pytest.raises(FileNotFoundError):
            await asyncio.create_subprocess_exec("/no/such/program")
        with pytest.raises(ValueError):
            await loop.subprocess_exec(Recorder, "true", text=True)
        with pytest.raises(ValueError):
            await loop.subprocess_exec(Recorder, "true", shell=True)
        with pytest.raises(ValueError):
            await loop.subprocess_shell(Recorder, ["true"])
        with pytest.raises(ValueError):
            await loop.subprocess_exec(Recorder, "true", bufsize=1)

    run(loop, main())


def test_many_children_at_once(loop):
    async def one(i):
        proc = await asyncio.create_subprocess_exec(
            "sh", "-c", "echo %d; exit %d" % (i, i % 3), stdout=PIPE
        )
        out, _ = await proc.communicate()
        return int(out), proc.returncode

    async def main():
        results = await asyncio.gather(*(one(i) for i in range(30)))
        assert results == [(i, i % 3) for i in range(30)]

    run(loop, main())


def test_cancelled_while_starting(loop):
    """Cancelled while its pipes are being connected: the child is killed,
    and the pipes handed to their transports are left to them (closing one
    under its transport's poll crashed the loop once)."""

    async def main():
        for _ in range(3):
            task = asyncio.ensure_future(
                loop.subprocess_exec(Recorder, "sleep", "30")
            )
            loop.call_soon(task.cancel)
            with pytest.raises(asyncio.CancelledError):
                await task
        await asyncio.sleep(0.05)

    run(loop, main())


def test_popen_like_extra_info(loop):
    async def main():
        transport, proto = await loop.subprocess_exec(Recorder, "sleep", "30")
        child = transport.get_extra_info("subprocess")
        assert child.pid == transport.get_pid()
        assert child.poll() is None
        child.kill()
        code = child.wait()  # blocks until it exited
        assert child.poll() is not None
        if isinstance(loop, uvasync.EventLoop):
            # (asyncio's own child watcher may reap it first, on 3.9: 0)
            assert code == child.poll() == -signal.SIGKILL
        killed = []
        child.kill = lambda: killed.append(True)
        transport.close()  # exited: not killed again
        assert killed == []
        await proto.done
        if isinstance(loop, uvasync.EventLoop):
            # its wait() did not reap the child (waitid with WNOWAIT): the
            # core still reads its status (asyncio's Popen.wait reaps it,
            # and asyncio's loop reports 255)
            assert transport.get_returncode() == -signal.SIGKILL

    run(loop, main())


def test_pass_fds(loop):
    r, w = os.pipe()

    async def main():
        proc = await asyncio.create_subprocess_exec(
            PY,
            "-c",
            "import os, sys; os.write(int(sys.argv[1]), b'through')",
            str(w),
            pass_fds=(w,),
        )
        assert await proc.wait() == 0
        assert os.read(r, 100) == b"through"
        assert not os.get_inheritable(w)  # as it was

    try:
        run(loop, main())
    finally:
        os.close(r)
        os.close(w)
