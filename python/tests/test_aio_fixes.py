"""Bugs of uvasync.EventLoop that CPython's own test_asyncio found
(test_cpython_asyncio.py), one test each, run on asyncio's loop too as the
reference. Each names the CPython test that found it."""

import asyncio
import concurrent.futures
import gc
import os
import select
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
import time
import tty
from unittest import mock

import pytest

import uvasync

LOOPS = [
    pytest.param(uvasync.EventLoop, id="uvasync"),
    pytest.param(asyncio.new_event_loop, id="asyncio"),
]


@pytest.fixture(params=LOOPS)
def loop(request):
    loop = request.param()
    yield loop
    loop.close()


def test_a_call_raising_concurrent_cancelled_error_cancels_as_asyncio(loop):
    # test_tasks.RunCoroutineThreadsafeTests
    #   .test_run_coroutine_threadsafe_task_cancelled: run_in_executor gave
    # concurrent.futures.CancelledError (an Exception) where asyncio gives
    # its own CancelledError (a BaseException).
    def cancelled():
        raise concurrent.futures.CancelledError("gone")

    def timed_out():
        raise concurrent.futures.TimeoutError("late")

    async def main():
        with pytest.raises(asyncio.CancelledError):
            await loop.run_in_executor(None, cancelled)
        with pytest.raises(asyncio.TimeoutError):
            await loop.run_in_executor(None, timed_out)
        return await loop.run_in_executor(None, lambda: 42)

    assert loop.run_until_complete(main()) == 42


def test_to_thread_raising_concurrent_cancelled_error_cancels():
    # the same through the native API: asyncio.to_thread's semantics
    def cancelled():
        raise concurrent.futures.CancelledError

    async def main():
        with pytest.raises(asyncio.CancelledError):
            await uvasync.to_thread(cancelled)

    uvasync.run(main())


def test_a_loop_runs_where_signal_handlers_cannot_be_set():
    # test_runners.RunnerTests.test_signal_install_not_supported_ok: in an
    # interpreter without signals signal.signal raises ValueError; asyncio's
    # Runner runs anyway, and the loop's own Ctrl-C set-up failed.
    async def main():
        return 5

    with mock.patch.object(signal, "signal", side_effect=ValueError):
        loop = uvasync.EventLoop()
        try:
            assert loop.run_until_complete(main()) == 5
        finally:
            loop.close()
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


@pytest.mark.parametrize("debug", [True, False])
def test_the_debug_default_is_asyncios(debug):
    # test_runners.RunTests.test_asyncio_run_debug: asyncio decides its
    # debug default in asyncio.coroutines._is_debug_mode (the test patches
    # it); the loop had its own copy of the rule.
    with mock.patch("asyncio.coroutines._is_debug_mode", lambda: debug):
        loop = uvasync.EventLoop()
    try:
        assert loop.get_debug() is debug
    finally:
        loop.close()


def test_errors_are_logged_through_asyncios_logger(loop):
    # test_futures.*FutureTests.test_future_exception_never_retrieved and
    # test_tasks.*.test_error_in_call_soon patch asyncio.base_events.logger,
    # the logger asyncio's loops write to; ours wrote to its own reference.
    async def fail():
        raise ZeroDivisionError

    with mock.patch("asyncio.base_events.logger") as m_log:
        task = loop.create_task(fail())
        loop.run_until_complete(asyncio.sleep(0.01))
        assert task.done()
        del task
        gc.collect()
    assert m_log.error.called
    assert "never retrieved" in m_log.error.call_args[0][0]


def test_a_slow_task_step_is_named_by_its_task(loop):
    # test_base_events.BaseEventLoopWithSelectorTests.test_log_slow_callbacks
    # (run on our loop): the debug warning named the task step's handle
    # ("<Handle <TaskStepMethWrapper ...>>") instead of the task.
    async def slow_step():
        time.sleep(0.02)

    loop.set_debug(True)
    loop.slow_callback_duration = 0.01
    with mock.patch("asyncio.base_events.logger") as m_log:
        loop.run_until_complete(loop.create_task(slow_step()))
    messages = [c[0][0] % c[0][1:] for c in m_log.warning.call_args_list]
    assert any(
        m.startswith("Executing <Task") and "slow_step" in m for m in messages
    ), messages


def test_a_forked_child_runs_a_loop_of_its_own():
    # test_events.TestPyGetEventLoop.test_get_event_loop_new_process: a
    # child forked while the loop ran (a ProcessPoolExecutor worker) could
    # not run a loop: "another loop is running" (the parent's, in the
    # copied thread state of the package and of the core).
    async def fork_and_wait():
        pid = os.fork()
        if pid == 0:
            status = 1
            try:
                child = uvasync.EventLoop()
                if child.run_until_complete(asyncio.sleep(0, 7)) == 7:
                    status = 0
                child.close()
                if uvasync.run(uvasync.sleep(0)) is not None:
                    status = 1
            finally:
                os._exit(status)
        return await asyncio.get_running_loop().run_in_executor(
            None, os.waitpid, pid, 0
        )

    loop = uvasync.EventLoop()
    try:
        _, status = loop.run_until_complete(fork_and_wait())
    finally:
        loop.close()
    assert os.waitstatus_to_exitcode(status) == 0


def test_sock_sendfile_sends_a_file_beside_transports_sendfile(loop, tmp_path):
    # test_sendfile.*.test_sock_sendfile_success, once the transports and
    # sockets met in one loop: loop.sendfile's hook for transports
    # (_sendfile_native, asyncio's name) hid sock_sendfile's own, which
    # then got a socket where it wanted a transport.
    path = tmp_path / "data"
    path.write_bytes(b"x" * 100_000)
    a, b = socket.socketpair()
    a.setblocking(False)
    b.setblocking(False)

    async def main():
        received = bytearray()

        async def read_all():
            while len(received) < 100_000:
                received.extend(await loop.sock_recv(b, 65536))

        reader = loop.create_task(read_all())
        with open(path, "rb") as f:
            sent = await loop.sock_sendfile(a, f)
        await reader
        return sent, bytes(received)

    try:
        sent, received = loop.run_until_complete(main())
    finally:
        a.close()
        b.close()
    assert sent == 100_000 and received == b"x" * 100_000


@pytest.fixture(scope="module")
def tls_contexts():
    with tempfile.TemporaryDirectory() as tmp:
        key, cert = os.path.join(tmp, "key.pem"), os.path.join(tmp, "cert.pem")
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes"]
            + ["-keyout", key, "-out", cert, "-days", "1"]
            + ["-subj", "/CN=localhost"]
            + ["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
            check=True,
            capture_output=True,
            timeout=30,
        )
        server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        server_ctx.load_cert_chain(cert, key)
        client_ctx = ssl.create_default_context(cafile=cert)
        yield server_ctx, client_ctx


class _Lost(asyncio.Protocol):
    def __init__(self):
        self.lost = asyncio.get_running_loop().create_future()

    def connection_lost(self, exc):
        self.lost.set_result(exc)


def test_a_tls_transport_has_its_addresses_when_the_peer_closed_at_once(
    loop, tls_contexts
):
    # test_events.*.test_create_ssl_connection (intermittent): sockname was
    # None when the server (a thread) had answered and closed before
    # create_connection returned: SSLProtocol forgets the plain transport
    # at connection_lost.
    server_ctx, client_ctx = tls_contexts
    rounds = 40
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve():
        for _ in range(rounds):
            conn, _ = listener.accept()
            try:
                with server_ctx.wrap_socket(conn, server_side=True) as tls:
                    tls.recv(100)
                    tls.sendall(b"bye")
            except OSError:
                pass

    class Asker(_Lost):
        def connection_made(self, transport):
            transport.write(b"hi")

    server = threading.Thread(target=serve, daemon=True)
    server.start()
    names = []
    try:
        for _ in range(rounds):
            # as CPython's test: the loop stops once the connection is
            # made, and may have seen the answer and the end by then
            tr, pr = loop.run_until_complete(
                loop.create_connection(
                    Asker,
                    "127.0.0.1",
                    port,
                    ssl=client_ctx,
                    server_hostname="localhost",
                )
            )
            names.append(
                (tr.get_extra_info("sockname"), tr.get_extra_info("peername"))
            )
            loop.run_until_complete(pr.lost)
            tr.close()
    finally:
        server.join(10)
        listener.close()
    for sockname, peername in names:
        assert sockname is not None and sockname[0] == "127.0.0.1"
        assert peername == ("127.0.0.1", port)


@pytest.mark.parametrize("what", ["create_connection", "create_server"])
def test_host_port_with_a_sock_that_is_no_socket_is_a_value_error(loop, what):
    # test_base_events.*.test_create_connection_host_port_sock and
    # test_create_server_host_port_sock: AttributeError (sock.type) came
    # first.
    coro = getattr(loop, what)(asyncio.Protocol, "127.0.0.1", 0, sock=object())
    with pytest.raises(ValueError, match="host/port and sock"):
        loop.run_until_complete(coro)


class _CloseAfter(asyncio.Protocol):
    """A server that closes once it has received `after` bytes."""

    def __init__(self, after):
        self.after = after
        self.nbytes = 0
        self.done = asyncio.get_running_loop().create_future()

    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        self.nbytes += len(data)
        if self.nbytes >= self.after:
            self.transport.close()

    def connection_lost(self, exc):
        self.done.set_result(None)


def _sendfile_to_closer(loop, path, after):
    """loop.sendfile of path to a server that closes after `after` bytes:
    (what sendfile returned or raised, the bytes the server got, the
    file's position after)."""

    async def main():
        srv = []
        server = await loop.create_server(
            lambda: srv.append(_CloseAfter(after)) or srv[0], "127.0.0.1", 0
        )
        port = server.sockets[0].getsockname()[1]
        tr, _ = await loop.create_connection(_Lost, "127.0.0.1", port)
        with open(path, "rb") as f:
            try:
                outcome = await loop.sendfile(tr, f)
            except ConnectionError as exc:
                outcome = exc
            position = f.tell()
        tr.close()
        await srv[0].done
        server.close()
        await server.wait_closed()
        return outcome, srv[0].nbytes, position

    return loop.run_until_complete(main())


def test_sendfile_to_a_peer_that_closes_after_the_file(loop, tmp_path):
    # test_sendfile.*.test_sendfile_close_peer_after_receiving
    # (intermittent): OSError EBADF ('handle is closing or closed') where
    # the whole file had gone out.
    path = tmp_path / "data"
    size = 160_000
    path.write_bytes(b"y" * size)
    for _ in range(20):
        assert _sendfile_to_closer(loop, path, size) == (size, size, size)


def test_sendfile_cut_short_by_the_peer_advances_the_file(loop, tmp_path):
    # test_sendfile.*.test_sendfile_close_peer_in_the_middle_of_receiving:
    # the file stayed at 0 where asyncio leaves it past what was sent.
    path = tmp_path / "data"
    size = 32 * 1024 * 1024
    path.write_bytes(b"z" * size)
    outcome, got, position = _sendfile_to_closer(loop, path, 1024)
    assert isinstance(outcome, ConnectionError)
    assert 1024 <= got < size
    assert got <= position < size


def test_what_a_paused_protocol_writes_after_close_still_goes_out(loop):
    # test_ssl.TestSSL.test_remote_shutdown_receives_trailing_data
    # (intermittent hang): SSLProtocol, paused by a full write queue, writes
    # its close_notify on resume_writing after it closed the transport;
    # the write was dropped and the peer never saw the end of TLS. On
    # asyncio's transports resume_writing comes after close too, and what
    # it writes goes out before the end.
    size = 32 * 1024 * 1024  # more than the socket buffers take at once
    received = bytearray()
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve():
        conn, _ = listener.accept()
        with conn:
            time.sleep(0.2)  # the client's queue fills up meanwhile
            while True:
                data = conn.recv(65536)
                if not data:
                    break
                received.extend(data)

    class Client(asyncio.Protocol):
        def __init__(self):
            self.lost = asyncio.get_running_loop().create_future()
            self.paused = False

        def connection_made(self, transport):
            self.transport = transport
            transport.write(b"a" * size)
            transport.close()

        def pause_writing(self):
            self.paused = True

        def resume_writing(self):
            self.transport.write(b"END")

        def connection_lost(self, exc):
            self.lost.set_result(exc)

    async def main():
        _, pr = await loop.create_connection(Client, "127.0.0.1", port)
        assert await pr.lost is None
        return pr.paused

    server = threading.Thread(target=serve, daemon=True)
    server.start()
    try:
        paused = loop.run_until_complete(main())
    finally:
        server.join(10)
        listener.close()
    assert paused
    assert len(received) == size + 3 and received.endswith(b"aEND")


def test_a_write_pipe_on_a_pty_leaves_the_input_to_the_read_pipe(loop):
    # test_events.*.test_bidirectional_pty: connect_write_pipe on a dup of
    # the pty's slave read ahead from the terminal (the core read every
    # stream it opened), so the read pipe never got what the master wrote.
    master, slave = os.openpty()
    write_slave = os.dup(slave)
    tty.setraw(slave)
    got = bytearray()

    class Reader(asyncio.Protocol):
        def data_received(self, data):
            got.extend(data)

    async def main():
        rt, _ = await loop.connect_read_pipe(Reader, open(slave, "rb", 0))
        wt, _ = await loop.connect_write_pipe(
            asyncio.Protocol, open(write_slave, "wb", 0)
        )
        wt.write(b"1")
        out = b""
        for _ in range(200):
            await asyncio.sleep(0.01)
            out += os.read(master, 10) if _readable(master) else b""
            if out:
                break
        os.write(master, b"abc")
        for _ in range(200):
            if len(got) >= 3:
                break
            await asyncio.sleep(0.01)
        rt.close()
        wt.close()
        await asyncio.sleep(0)
        return out

    try:
        out = loop.run_until_complete(main())
    finally:
        os.close(master)
    assert out == b"1"
    assert bytes(got) == b"abc"


def _readable(fd):
    return bool(select.select([fd], [], [], 0)[0])
