#!/usr/bin/env python3
"""uvasync from Python's standard ctypes: two timers, a sleeping task that
gets cancelled, a TCP echo round trip on 127.0.0.1 and a child process whose
output is read from a pipe, all driven by callbacks on one loop. Prints what
happens; exits 1 on any mismatch.

    python3 bindings/ctypes/client.py     (UVASYNC_LIBRARY=... to pick a library)
"""

import ctypes
import os
import shutil
import subprocess
import sys
import tempfile
import traceback
from ctypes import byref, c_int, c_size_t, c_void_p

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import uvasync_ctypes as uva  # noqa: E402

K, T = uva.const, uva.types
lib = uva.load()
failures = 0


def expect(ok, what):
    global failures
    print(("ok    " if ok else "FAIL  ") + what)
    failures += not ok


def check(rc, what):
    if rc != 0:
        raise RuntimeError(
            "%s failed: %s (%d)" % (what, lib.uva_err_name(rc).decode(), rc)
        )


print(
    "loaded %s: uvasync %s (%#08x)"
    % (lib.path, lib.uva_version_string().decode(), lib.uva_version())
)
loop = c_void_p()
check(lib.uva_loop_new(byref(loop)), "uva_loop_new")

# Every C callback made from a Python function. ctypes frees a CFUNCTYPE
# object's trampoline when the object is collected, so each is referenced
# here until uva_loop_close has returned.
callbacks = []


def callback(cftype, on_error=None):
    """Decorator: wrap fn as a C callback. An exception must not vanish
    into C: print it, count it, stop the loop, return on_error."""

    def wrap(fn):
        def guarded(*args):
            global failures
            try:
                return fn(*args)
            except Exception:
                traceback.print_exc()
                failures += 1
                lib.uva_loop_stop(loop)
                return on_error

        cb = cftype(guarded)
        callbacks.append(cb)
        return cb

    return wrap


# Timers: "second" is started first but is due later.
timer_names, fired = {}, []
sleeper = c_void_p()


@callback(T.uva_timer_cb)
def on_timer(timer, data):
    name = timer_names[timer]
    print("timer %s fired" % name)
    fired.append(name)
    if name == "first":
        check(lib.uva_task_cancel(sleeper), "uva_task_cancel")
        print("timer first cancelled the sleeper")
    check(lib.uva_timer_close(timer, None), "uva_timer_close")


def start_timer(name, ms):
    timer = c_void_p()
    check(
        lib.uva_timer_new(byref(timer), loop, on_timer, None, None),
        "uva_timer_new",
    )
    timer_names[timer.value] = name
    check(lib.uva_timer_start(timer, ms, 0), "uva_timer_start")


start_timer("second", 20)
start_timer("first", 10)

# A task that sleeps for 10 s; the timer "first" cancels it.
sleeper_status = None


@callback(T.uva_task_step_cb, K.UVA_EUSER)
def sleeper_step(task, status, data):
    global sleeper_status
    if status == K.UVA_ECANCELED:
        print("sleeper: cancelled while sleeping")
        sleeper_status = status
        return K.UVA_ECANCELED  # finish with that error as the result
    print("sleeper: sleeping 10 s")
    check(lib.uva_task_sleep(task, 10000), "uva_task_sleep")
    return K.UVA_TASK_PENDING


check(
    lib.uva_task_spawn(byref(sleeper), loop, sleeper_step, None, None),
    "uva_task_spawn",
)

# Echo server on 127.0.0.1, port chosen by the system. Each connection gets
# a detached handler task whose data is the stream it serves.
server = c_void_p()
check(
    lib.uva_tcp_listen(byref(server), loop, b"127.0.0.1", 0, 0),
    "uva_tcp_listen",
)
port = c_int()
check(
    lib.uva_server_address(server, None, 0, byref(port)), "uva_server_address"
)
print("server: listening on 127.0.0.1:%d" % port.value)

BUFSIZE = 4096
handlers = {}  # stream -> (buf, n)


@callback(T.uva_task_step_cb, K.UVA_EUSER)
def handler_step(task, status, stream):
    buf, n = handlers[stream]
    if status == K.UVA_ECANCELED:
        lib.uva_stream_abort(stream, None, None)
        return status
    while True:
        # The call-again protocol: EAGAIN means "woken when there is data".
        rc = lib.uva_stream_read(byref(n), stream, task, buf, BUFSIZE)
        if rc == K.UVA_EAGAIN:
            return K.UVA_TASK_PENDING
        check(rc, "server uva_stream_read")
        if n.value == 0:
            print("server: end of stream, closing the connection")
            del handlers[stream]
            check(lib.uva_stream_close(stream, None, None), "uva_stream_close")
            return 0
        # Echo in two pieces, one vectored write (uva_buf_t from the cdef).
        half = n.value // 2
        base = ctypes.addressof(buf)
        pieces = (T.uva_buf_t * 2)((base, half), (base + half, n.value - half))
        check(
            lib.uva_stream_writev(None, stream, pieces, 2), "uva_stream_writev"
        )
        print("server: echoed %d bytes" % n.value)


@callback(T.uva_server_connection_cb)
def on_connection(srv, stream, data):
    print("server: connection accepted")
    handlers[stream] = (ctypes.create_string_buffer(BUFSIZE), c_size_t())
    # out = NULL: a detached task; data (the stream) is borrowed, no destructor.
    check(
        lib.uva_task_spawn(None, loop, handler_step, stream, None),
        "uva_task_spawn",
    )


check(
    lib.uva_server_on_connection(server, on_connection, None),
    "uva_server_on_connection",
)

# Close callbacks: after them the handle's memory is gone.
closed = set()


@callback(T.uva_stream_close_cb)
def on_stream_closed(stream, data):
    print("client: stream closed")
    closed.add("stream")


@callback(T.uva_server_close_cb)
def on_server_closed(srv, data):
    print("server: closed")
    closed.add("server")


# The client task: connect, send, half-close, read the echo to the end.
MESSAGE = b"hello uvasync"


class Client:
    state = "connect"
    stream = c_void_p()
    buf = ctypes.create_string_buffer(BUFSIZE)
    n = c_size_t()
    received = b""


client_task = c_void_p()


@callback(T.uva_task_step_cb, K.UVA_EUSER)
def client_step(task, status, data):
    c = Client
    if status == K.UVA_ECANCELED:
        return status
    if c.state == "connect":
        check(
            lib.uva_tcp_connect(
                byref(c.stream), loop, b"127.0.0.1", port.value
            ),
            "uva_tcp_connect",
        )
        c.state = "connecting"
    if c.state == "connecting":
        rc = lib.uva_stream_wait_connected(c.stream, task)
        if rc == K.UVA_EAGAIN:
            return K.UVA_TASK_PENDING
        check(rc, "uva_stream_wait_connected")
        print("client: connected")
        c.state = "sending"
    if c.state == "sending":
        rc = lib.uva_stream_write_drain(c.stream, task, MESSAGE, len(MESSAGE))
        if rc == K.UVA_EAGAIN:
            return K.UVA_TASK_PENDING
        check(rc, "uva_stream_write_drain")
        print("client: sent %r" % MESSAGE.decode())
        c.state = "shutdown"
    if c.state == "shutdown":
        rc = lib.uva_stream_shutdown(c.stream, task)
        if rc == K.UVA_EAGAIN:
            return K.UVA_TASK_PENDING
        check(rc, "uva_stream_shutdown")
        c.state = "reading"
    while True:
        rc = lib.uva_stream_read(byref(c.n), c.stream, task, c.buf, BUFSIZE)
        if rc == K.UVA_EAGAIN:
            return K.UVA_TASK_PENDING
        check(rc, "client uva_stream_read")
        if c.n.value == 0:
            break
        c.received += c.buf.raw[: c.n.value]
    print("client: received %r" % c.received.decode())
    check(
        lib.uva_stream_close(c.stream, on_stream_closed, None),
        "uva_stream_close",
    )
    check(
        lib.uva_server_close(server, on_server_closed, None),
        "uva_server_close",
    )
    return 0


check(
    lib.uva_task_spawn(byref(client_task), loop, client_step, None, None),
    "uva_task_spawn",
)

# A child process: `sh -c 'echo hello; exit 3'` with its stdout on a pipe,
# which is a stream of the loop; read it to the end, then wait for the exit.
CHILD_SCRIPT = b"echo hello from the child; exit 3"


class Child:
    state = "spawn"
    process = c_void_p()
    stream = c_void_p()
    buf = ctypes.create_string_buffer(BUFSIZE)
    n = c_size_t()
    output = b""
    exit_status = ctypes.c_int64(-1)
    term_signal = c_int(-1)


child_task = c_void_p()


@callback(T.uva_task_step_cb, K.UVA_EUSER)
def child_step(task, status, data):
    c = Child
    if status == K.UVA_ECANCELED:
        return status
    if c.state == "spawn":
        # The option struct as C lays it out (uvasync_ctypes builds the
        # Structure from the cdef); every pointer in it is read during the
        # call only.
        argv = (ctypes.c_char_p * 4)(b"/bin/sh", b"-c", CHILD_SCRIPT, None)
        opts = T.uva_process_options_t()
        opts.size = ctypes.sizeof(opts)
        opts.args = ctypes.cast(argv, ctypes.POINTER(c_void_p))
        opts.stdio[0].kind = K.UVA_STDIO_NULL
        opts.stdio[1].kind = K.UVA_STDIO_PIPE
        opts.stdio[2].kind = K.UVA_STDIO_INHERIT
        check(
            lib.uva_process_spawn(byref(c.process), loop, byref(opts)),
            "uva_process_spawn",
        )
        pid = c_int()
        check(lib.uva_process_pid(byref(pid), c.process), "uva_process_pid")
        print("child: started /bin/sh, pid %d" % pid.value)
        # Our end of its stdout, now owned here (closed below).
        check(
            lib.uva_process_stream(byref(c.stream), c.process, 1),
            "uva_process_stream",
        )
        c.state = "reading"
    if c.state == "reading":
        while True:
            rc = lib.uva_stream_read(
                byref(c.n), c.stream, task, c.buf, BUFSIZE
            )
            if rc == K.UVA_EAGAIN:
                return K.UVA_TASK_PENDING
            check(rc, "child uva_stream_read")
            if c.n.value == 0:
                break
            c.output += c.buf.raw[: c.n.value]
        print("child: output %r" % c.output.decode())
        check(lib.uva_stream_close(c.stream, None, None), "uva_stream_close")
        c.state = "waiting"
    rc = lib.uva_process_wait(
        byref(c.exit_status), byref(c.term_signal), c.process, task
    )
    if rc == K.UVA_EAGAIN:
        return K.UVA_TASK_PENDING
    check(rc, "uva_process_wait")
    print(
        "child: exited with status %d, signal %d"
        % (c.exit_status.value, c.term_signal.value)
    )
    check(lib.uva_process_close(c.process, None, None), "uva_process_close")
    return 0


check(
    lib.uva_task_spawn(byref(child_task), loop, child_step, None, None),
    "uva_task_spawn",
)

# A TLS round trip (when the library has TLS): a server and a client of
# this loop, the server's certificate made now with the openssl command
# and trusted by the client, then the same stream calls as above.
TLS = lib.uva_tls_available() == 1
TLS_MESSAGE = b"hello over TLS"
tls = {"received": b"", "version": c_int(0)}
tls_task = c_void_p()


def make_certificate():
    d = tempfile.mkdtemp(prefix="uva-ctypes-tls-")
    cert, key = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
         "ec_paramgen_curve:P-256", "-nodes", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost", "-days", "1",
         "-keyout", key, "-out", cert],
        check=True, capture_output=True,
    )  # fmt: skip
    return d, cert.encode(), key.encode()


if TLS:
    tls_dir, tls_cert, tls_key = make_certificate()
    sctx, cctx = c_void_p(), c_void_p()
    check(lib.uva_tls_ctx_new(byref(sctx), K.UVA_TLS_SERVER), "tls ctx")
    check(
        lib.uva_tls_ctx_use_cert_file(sctx, tls_cert, tls_key, None),
        "uva_tls_ctx_use_cert_file",
    )
    check(lib.uva_tls_ctx_new(byref(cctx), K.UVA_TLS_CLIENT), "tls ctx")
    check(lib.uva_tls_ctx_load_ca(cctx, tls_cert, None), "uva_tls_ctx_load_ca")
    tls_server = c_void_p()
    check(
        lib.uva_tcp_listen(byref(tls_server), loop, b"127.0.0.1", 0, 0),
        "uva_tcp_listen",
    )
    tls_port = c_int()
    check(
        lib.uva_server_address(tls_server, None, 0, byref(tls_port)),
        "uva_server_address",
    )

    @callback(T.uva_task_step_cb, K.UVA_EUSER)
    def tls_handler_step(task, status, stream):
        buf, n = handlers[stream]
        if status == K.UVA_ECANCELED:
            lib.uva_stream_abort(stream, None, None)
            return status
        rc = lib.uva_tls_handshake(stream, task)
        if rc == K.UVA_EAGAIN:
            return K.UVA_TASK_PENDING
        check(rc, "server uva_tls_handshake")
        while True:
            rc = lib.uva_stream_read(byref(n), stream, task, buf, BUFSIZE)
            if rc == K.UVA_EAGAIN:
                return K.UVA_TASK_PENDING
            check(rc, "TLS server uva_stream_read")
            if n.value == 0:  # the client's close_notify
                print("TLS server: end of stream, closing")
                del handlers[stream]
                check(lib.uva_stream_close(stream, None, None), "close")
                return 0
            check(lib.uva_stream_write(None, stream, buf, n.value), "write")
            print("TLS server: echoed %d bytes" % n.value)

    @callback(T.uva_server_connection_cb)
    def on_tls_connection(srv, stream, data):
        print("TLS server: connection accepted")
        handlers[stream] = (ctypes.create_string_buffer(BUFSIZE), c_size_t())
        check(lib.uva_tls_start(stream, sctx, None), "uva_tls_start")
        check(
            lib.uva_task_spawn(None, loop, tls_handler_step, stream, None),
            "uva_task_spawn",
        )

    check(
        lib.uva_server_on_connection(tls_server, on_tls_connection, None),
        "uva_server_on_connection",
    )

    class TlsClient:
        state = "connect"
        stream = c_void_p()
        buf = ctypes.create_string_buffer(BUFSIZE)
        n = c_size_t()

    @callback(T.uva_task_step_cb, K.UVA_EUSER)
    def tls_client_step(task, status, data):
        c = TlsClient
        if status == K.UVA_ECANCELED:
            return status
        if c.state == "connect":
            check(
                lib.uva_tcp_connect(
                    byref(c.stream), loop, b"127.0.0.1", tls_port.value
                ),
                "uva_tcp_connect",
            )
            c.state = "connecting"
        if c.state == "connecting":
            rc = lib.uva_stream_wait_connected(c.stream, task)
            if rc == K.UVA_EAGAIN:
                return K.UVA_TASK_PENDING
            check(rc, "uva_stream_wait_connected")
            check(
                lib.uva_tls_start(c.stream, cctx, b"localhost"),
                "uva_tls_start",
            )
            c.state = "handshake"
        if c.state == "handshake":
            rc = lib.uva_tls_handshake(c.stream, task)
            if rc == K.UVA_EAGAIN:
                return K.UVA_TASK_PENDING
            check(rc, "uva_tls_handshake")
            check(
                lib.uva_tls_version(byref(tls["version"]), c.stream),
                "uva_tls_version",
            )
            print("TLS client: handshake done")
            check(
                lib.uva_stream_write(
                    None, c.stream, TLS_MESSAGE, len(TLS_MESSAGE)
                ),
                "uva_stream_write",
            )
            c.state = "shutdown"
        if c.state == "shutdown":  # close_notify, then the TCP half-close
            rc = lib.uva_stream_shutdown(c.stream, task)
            if rc == K.UVA_EAGAIN:
                return K.UVA_TASK_PENDING
            check(rc, "uva_stream_shutdown")
            c.state = "reading"
        while True:
            rc = lib.uva_stream_read(
                byref(c.n), c.stream, task, c.buf, BUFSIZE
            )
            if rc == K.UVA_EAGAIN:
                return K.UVA_TASK_PENDING
            check(rc, "TLS client uva_stream_read")
            if c.n.value == 0:
                break
            tls["received"] += c.buf.raw[: c.n.value]
        print("TLS client: received %r" % tls["received"].decode())
        check(lib.uva_stream_close(c.stream, None, None), "uva_stream_close")
        check(lib.uva_server_close(tls_server, None, None), "server close")
        return 0

    check(
        lib.uva_task_spawn(byref(tls_task), loop, tls_client_step, None, None),
        "uva_task_spawn",
    )
else:
    print("TLS: not in this library (uva_tls_available() = 0)")

# Run until no work is left: timers fired, tasks finished, server closed.
check(lib.uva_loop_run(loop, K.UVA_RUN_DEFAULT), "uva_loop_run")

result = c_int()
expect(
    fired == ["first", "second"], "timers fired in order: " + ", ".join(fired)
)
check(lib.uva_task_result(byref(result), sleeper), "uva_task_result")
expect(
    sleeper_status == K.UVA_ECANCELED and result.value == K.UVA_ECANCELED,
    "sleeper cancelled, result " + lib.uva_err_name(result.value).decode(),
)
check(lib.uva_task_result(byref(result), client_task), "uva_task_result")
expect(result.value == 0, "client task finished with 0")
expect(Client.received == MESSAGE, "echo round trip returned the message")
expect(closed == {"stream", "server"}, "close callbacks ran")
check(lib.uva_task_result(byref(result), child_task), "uva_task_result")
expect(result.value == 0, "child task finished with 0")
expect(
    Child.output == b"hello from the child\n",
    "child's stdout read through the pipe stream",
)
expect(
    Child.exit_status.value == 3 and Child.term_signal.value == 0,
    "child's exit status 3 and no signal",
)

if TLS:
    check(lib.uva_task_result(byref(result), tls_task), "uva_task_result")
    expect(result.value == 0, "TLS client task finished with 0")
    expect(
        tls["received"] == TLS_MESSAGE,
        "TLS round trip returned the message",
    )
    expect(
        tls["version"].value == K.UVA_TLS_VERSION_1_3,
        "TLS 1.3 negotiated",
    )
    check(lib.uva_task_release(tls_task), "uva_task_release")
    lib.uva_tls_ctx_free(sctx)
    lib.uva_tls_ctx_free(cctx)
    shutil.rmtree(tls_dir)

# Drop our task references, let the loop reap them, then close it. Only
# then is no callback reachable from C, and the callbacks can be dropped.
check(lib.uva_task_release(sleeper), "uva_task_release")
check(lib.uva_task_release(client_task), "uva_task_release")
check(lib.uva_task_release(child_task), "uva_task_release")
check(lib.uva_loop_run(loop, K.UVA_RUN_DEFAULT), "uva_loop_run")
rc = lib.uva_loop_close(loop)
expect(rc == 0, "uva_loop_close returned %d" % rc)
callbacks.clear()

if failures:
    print("ctypes client: %d check(s) FAILED" % failures)
    sys.exit(1)
print("ctypes client: all checks passed")
