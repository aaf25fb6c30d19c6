"""More bugs of uvasync.EventLoop that CPython's own test_asyncio found
(test_cpython_asyncio.py), one test each, run on asyncio's loop too as the
reference where it has the behaviour; and the TLS verify flags that Python
3.13's default contexts set. Each names the CPython test that found it."""

import asyncio
import contextvars
import os
import shutil
import socket
import ssl
import subprocess
import sys
import threading

import pytest

import uvasync

LOOPS = [
    pytest.param(uvasync.EventLoop, id="uvasync"),
    pytest.param(asyncio.new_event_loop, id="asyncio"),
]
OPENSSL = shutil.which("openssl")


@pytest.fixture(params=LOOPS)
def loop(request):
    loop = request.param()
    yield loop
    loop.close()


class Datagrams(asyncio.DatagramProtocol):
    def __init__(self, loop):
        self.lost = loop.create_future()
        self.got = []

    def datagram_received(self, data, addr):
        self.got.append(data)

    def connection_lost(self, exc):
        self.lost.set_result(exc)


# -- datagram endpoints --------------------------------------------------------


def test_datagram_local_addr_that_is_no_pair_raises_type_error(loop):
    # test_base_events...test_create_datagram_endpoint_addr_error: a 4-tuple
    # was cut to its first two items and bound
    for addr in ("localhost", ("127.0.0.1", 0, 0, 0), ("127.0.0.1",)):
        coro = loop.create_datagram_endpoint(
            asyncio.DatagramProtocol, local_addr=addr
        )
        with pytest.raises(TypeError):
            loop.run_until_complete(coro)


def test_datagram_transport_lends_its_socket(loop):
    # test_base_events...test_create_datagram_endpoint_sockopts: the
    # socket of an endpoint on the core's UDP was None
    async def main():
        tr, pr = await loop.create_datagram_endpoint(
            lambda: Datagrams(loop), local_addr=("127.0.0.1", 0)
        )
        sock = tr.get_extra_info("socket")
        assert sock is not None
        assert sock.family == socket.AF_INET
        assert sock.type == socket.SOCK_DGRAM
        assert sock.getsockname() == tr.get_extra_info("sockname")
        assert not sock.getsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST)
        if hasattr(socket, "SO_REUSEPORT"):
            assert not sock.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT)
        # options set through it are the endpoint's own
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) >= 65536
        assert tr.get_extra_info("socket") is sock  # the same each time
        # and the endpoint still works
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as peer:
            peer.sendto(b"ping", tr.get_extra_info("sockname"))
            for _ in range(200):
                if pr.got:
                    break
                await asyncio.sleep(0.005)
        assert pr.got == [b"ping"]
        tr.close()
        assert await pr.lost is None
        assert sock.fileno() == -1  # closed with the transport

    loop.run_until_complete(main())


def test_datagram_wrong_sock_says_what_asyncio_says(loop):
    # test_base_events...test_create_datagram_endpoint_wrong_sock: 3.13
    # changed the words
    if sys.version_info >= (3, 13):
        words = "A datagram socket was expected"
    else:
        words = "A UDP Socket was expected"
    with socket.socket(socket.AF_INET) as sock:
        coro = loop.create_datagram_endpoint(asyncio.Protocol, sock=sock)
        with pytest.raises(ValueError, match=words):
            loop.run_until_complete(coro)


# -- handles and tasks -----------------------------------------------------------


def test_call_soon_threadsafe_handle_records_where_in_debug_mode(loop):
    # test_events.HandleTests.test_handle_source_traceback: the handle of
    # call_soon_threadsafe had no _source_traceback
    loop.set_debug(True)
    ran = []
    h = loop.call_soon_threadsafe(ran.append, 1)
    line = sys._getframe().f_lineno - 1
    assert isinstance(h._source_traceback, list)
    assert h._source_traceback[-1][:3] == (
        __file__,
        line,
        "test_call_soon_threadsafe_handle_records_where_in_debug_mode",
    )
    # from another thread too, and it runs
    done = threading.Event()
    hs = []

    def other():
        hs.append(loop.call_soon_threadsafe(ran.append, 2))
        loop.call_soon_threadsafe(done.set)

    async def main():
        t = threading.Thread(target=other)
        t.start()
        while not done.is_set():
            await asyncio.sleep(0.001)
        t.join()

    loop.run_until_complete(main())
    assert ran == [1, 2]
    assert hs[0]._source_traceback[-1][2] == "other"


@pytest.mark.parametrize("debug", [False, True])
def test_failed_task_is_reported_in_the_iteration_it_fails(loop, debug):
    # test_futures2...test_task_exc_handler_correct_context (3.12+ in debug
    # mode): the handle that ran the task's last step kept it alive one
    # iteration longer, so 'exception was never retrieved' came late
    loop.set_debug(debug)
    name = contextvars.ContextVar("name", default="foo")
    seen = []

    def handler(lp, context):
        seen.append((context["message"], name.get()))

    loop.set_exception_handler(handler)

    async def fail():
        name.set("bar")
        raise ZeroDivisionError

    async def main():
        asyncio.ensure_future(fail())
        await asyncio.sleep(0)
        return list(seen)

    got = loop.run_until_complete(main())
    assert [m for m, _ in got] == ["Task exception was never retrieved"]
    if sys.version_info >= (3, 12):  # reported in the task's context
        assert got[0][1] == "bar"


# -- TLS: the verify flags of Python 3.13's default contexts ---------------------


def _openssl(*args, cwd):
    subprocess.run(
        [OPENSSL, *args],
        cwd=cwd,
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        timeout=30,
    )


_STRICT_LEAF = (
    "subjectAltName=DNS:localhost,IP:127.0.0.1\n"
    "extendedKeyUsage=serverAuth\n"
    "basicConstraints=critical,CA:FALSE\n"
    "keyUsage=critical,digitalSignature\n"
    "subjectKeyIdentifier=hash\n"
    "authorityKeyIdentifier=keyid:always\n"
)


def _issue(d, name, ext, ca="ca"):
    """A certificate for name signed by ca (in d), with extensions ext."""
    _openssl(
        "req", "-new", "-newkey", "ec", "-pkeyopt",
        "ec_paramgen_curve:P-256", "-nodes", "-keyout", name + ".key",
        "-out", name + ".csr", "-subj", "/CN=" + name, cwd=d,
    )  # fmt: skip
    with open(os.path.join(d, name + ".ext"), "w") as f:
        f.write(ext)
    _openssl(
        "x509", "-req", "-in", name + ".csr", "-CA", ca + ".pem", "-CAkey",
        ca + ".key", "-CAcreateserial", "-days", "2", "-extfile",
        name + ".ext", "-out", name + ".pem", cwd=d,
    )  # fmt: skip
    return os.path.join(d, name + ".pem"), os.path.join(d, name + ".key")


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    """A CA and two server certificates: one valid under RFC 5280's strict
    rules (CA with keyUsage, leaf with SAN and authorityKeyIdentifier), one
    valid only under OpenSSL's default checks (no authorityKeyIdentifier)."""
    if OPENSSL is None:
        pytest.skip("the openssl command is needed to make certificates")
    d = str(tmp_path_factory.mktemp("tls-strict"))
    _openssl(
        "req", "-x509", "-newkey", "ec", "-pkeyopt",
        "ec_paramgen_curve:P-256", "-nodes", "-keyout", "ca.key", "-out",
        "ca.pem", "-days", "2", "-subj", "/CN=uvasync strict CA", "-addext",
        "basicConstraints=critical,CA:TRUE", "-addext",
        "keyUsage=critical,keyCertSign,cRLSign", "-addext",
        "subjectKeyIdentifier=hash", cwd=d,
    )  # fmt: skip
    strict = _issue(d, "strict", _STRICT_LEAF)
    loose = _issue(
        d,
        "loose",
        "subjectAltName=DNS:localhost,IP:127.0.0.1\n"
        "extendedKeyUsage=serverAuth\n"
        "authorityKeyIdentifier=none\n",
    )
    # an intermediate CA and a leaf of its, sent with it
    inter, _ = _issue(
        d,
        "inter",
        "basicConstraints=critical,CA:TRUE\n"
        "keyUsage=critical,keyCertSign,cRLSign\n"
        "subjectKeyIdentifier=hash\n"
        "authorityKeyIdentifier=keyid:always\n",
    )
    below, below_key = _issue(d, "below", _STRICT_LEAF, ca="inter")
    chain = os.path.join(d, "below-chain.pem")
    with open(chain, "w") as f:
        f.write(open(below).read() + open(inter).read())
    return {
        "ca": os.path.join(d, "ca.pem"),
        "strict": strict,
        "loose": loose,
        "inter": inter,
        "below": (chain, below_key),
    }


class EchoServer:
    """Python's ssl as the server, in a thread: each connection echoes one
    line; handshake failures are kept in .errors."""

    def __init__(self, cert):
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(*cert)
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.05)  # to see .stop
        self.port = self.sock.getsockname()[1]
        self.stop = False
        self.errors = []
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.stop:
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:  # TimeoutError from 3.10
                continue
            except OSError:
                return
            conn.settimeout(10)
            try:
                with self.ctx.wrap_socket(conn, server_side=True) as s:
                    s.sendall(s.recv(100))
            except (OSError, ssl.SSLError) as e:
                self.errors.append(e)
            finally:
                conn.close()

    def close(self):
        self.stop = True
        self.thread.join(10)
        self.sock.close()


def _echo_once(port, ctx):
    async def main():
        r, w = await uvasync.open_connection("127.0.0.1", port, ssl=ctx)
        w.write(b"strict\n")
        await w.drain()
        line = await r.readline()
        w.close()
        await w.wait_closed()
        return line

    return uvasync.run(uvasync.wait_for(main(), 20))


@pytest.mark.skipif(
    sys.version_info < (3, 13), reason="3.13's create_default_context"
)
def test_tls_default_context_of_313_verifies_strictly(certs):
    # issue 26: Python 3.13's create_default_context() sets
    # VERIFY_X509_STRICT, which uvasync refused with ValueError
    ctx = ssl.create_default_context(cafile=certs["ca"])
    assert ctx.verify_flags & ssl.VERIFY_X509_STRICT
    srv = EchoServer(certs["strict"])
    try:
        assert _echo_once(srv.port, ctx) == b"strict\n"
    finally:
        srv.close()


def test_tls_verify_x509_strict_is_honoured(certs):
    # the flag reaches OpenSSL: a chain that only the default checks accept
    # fails with it, and passes without it
    srv = EchoServer(certs["loose"])
    try:
        ctx = ssl.create_default_context(cafile=certs["ca"])
        ctx.verify_flags |= ssl.VERIFY_X509_STRICT
        with pytest.raises(ssl.SSLCertVerificationError) as e:
            _echo_once(srv.port, ctx)
        assert "Authority Key Identifier" in str(e.value)
        ctx = ssl.create_default_context(cafile=certs["ca"])
        ctx.verify_flags &= ~ssl.VERIFY_X509_STRICT
        assert _echo_once(srv.port, ctx) == b"strict\n"
    finally:
        srv.close()


@pytest.mark.skipif(
    not hasattr(ssl, "VERIFY_X509_PARTIAL_CHAIN"), reason="Python 3.10+"
)
def test_tls_verify_x509_partial_chain_trusts_an_intermediate(certs):
    # trusting the intermediate CA only: the chain ends there with the
    # flag (3.13's default contexts set it), and fails without it
    srv = EchoServer(certs["below"])
    try:
        ctx = ssl.create_default_context(cafile=certs["inter"])
        ctx.verify_flags &= ~ssl.VERIFY_X509_PARTIAL_CHAIN
        with pytest.raises(ssl.SSLCertVerificationError):
            _echo_once(srv.port, ctx)
        ctx = ssl.create_default_context(cafile=certs["inter"])
        ctx.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
        assert _echo_once(srv.port, ctx) == b"strict\n"
    finally:
        srv.close()
