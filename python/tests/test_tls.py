"""TLS on the native API (open_connection / start_server with ssl=) and on
uasyncio (ssl=True), against peers nobody here wrote: Python's ssl module
(server and client in a thread) and `openssl s_server`. Certificates are
made at test time with the openssl CLI: a throwaway CA, a server
certificate for localhost / 127.0.0.1, an expired one, one for another
host, and a client certificate for mutual TLS."""

import os
import select
import shutil
import socket
import ssl
import subprocess
import threading
import time

import pytest

import uasyncio
import uvasync

HOST = "127.0.0.1"
OPENSSL = shutil.which("openssl")

pytestmark = pytest.mark.skipif(
    OPENSSL is None,
    reason="the openssl command is needed to make certificates",
)


def _openssl(*args, cwd):
    subprocess.run(
        [OPENSSL, *args],
        cwd=cwd,
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        timeout=30,
    )


def _leaf(d, name, san, days="2", usage="serverAuth"):
    _openssl(
        "req", "-new", "-newkey", "ec", "-pkeyopt",
        "ec_paramgen_curve:P-256", "-nodes", "-keyout", name + ".key",
        "-out", name + ".csr", "-subj", "/CN=" + name, cwd=d,
    )  # fmt: skip
    with open(os.path.join(d, name + ".ext"), "w") as f:
        f.write("extendedKeyUsage=%s\n" % usage)
        if san:
            f.write("subjectAltName=%s\n" % san)
    _openssl(
        "x509", "-req", "-in", name + ".csr", "-CA", "ca.pem", "-CAkey",
        "ca.key", "-CAcreateserial", "-days", days, "-extfile",
        name + ".ext", "-out", name + ".pem", cwd=d,
    )  # fmt: skip
    return os.path.join(d, name + ".pem"), os.path.join(d, name + ".key")


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    d = str(tmp_path_factory.mktemp("tls"))
    _openssl(
        "req", "-x509", "-newkey", "ec", "-pkeyopt",
        "ec_paramgen_curve:P-256", "-nodes", "-keyout", "ca.key", "-out",
        "ca.pem", "-days", "2", "-subj", "/CN=uvasync test CA", "-addext",
        "basicConstraints=critical,CA:TRUE", "-addext",
        "keyUsage=critical,keyCertSign", cwd=d,
    )  # fmt: skip
    c = {"ca": os.path.join(d, "ca.pem"), "dir": d}
    c["server"] = _leaf(d, "server", "DNS:localhost,IP:127.0.0.1")
    c["expired"] = _leaf(d, "expired", "DNS:localhost,IP:127.0.0.1", "-1")
    c["wronghost"] = _leaf(d, "wronghost", "DNS:wrong.example")
    c["client"] = _leaf(d, "client", None, usage="clientAuth")
    _openssl(
        "pkey", "-in", "server.key", "-aes256", "-passout", "pass:s3cret",
        "-out", "server-enc.key", cwd=d,
    )  # fmt: skip
    c["server-enc"] = (c["server"][0], os.path.join(d, "server-enc.key"))
    return c


def _server_ctx(certs, which="server"):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(*certs[which])
    return ctx


def _client_ctx(certs):
    return ssl.create_default_context(cafile=certs["ca"])


# -- Python's ssl module as the server, in a thread ---------------------------


class PyServer:
    """A TLS server on Python's ssl module: each connection (one at a
    time) does the handshake, then handler(sslsock). Handshake errors are
    kept in .errors; close() stops it."""

    def __init__(self, ctx, handler=None):
        self.ctx = ctx
        self.handler = handler or _py_echo
        self.errors = []
        self.sni = []
        ctx.sni_callback = lambda s, name, c: self.sni.append(name)
        self.sock = socket.create_server((HOST, 0))
        self.sock.settimeout(0.05)  # to see .stop
        self.port = self.sock.getsockname()[1]
        self.stop = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.stop:
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn.settimeout(10)
            try:
                s = self.ctx.wrap_socket(conn, server_side=True)
            except (OSError, ssl.SSLError) as e:
                self.errors.append(e)
                conn.close()
                continue
            try:
                self.handler(s)
            except (OSError, ssl.SSLError) as e:
                self.errors.append(e)
            finally:
                s.close()

    def close(self):
        self.stop = True
        self.thread.join(10)
        self.sock.close()


def _py_echo(s):
    """Echo until the client's close_notify, then send ours."""
    while True:
        try:
            data = s.recv(65536)
        except ssl.SSLZeroReturnError:
            break
        if not data:
            break
        s.sendall(data)
    s.unwrap()


@pytest.fixture
def pyserver(certs):
    servers = []

    def make(ctx=None, handler=None):
        srv = PyServer(ctx or _server_ctx(certs), handler)
        servers.append(srv)
        return srv

    yield make
    for srv in servers:
        srv.close()


# -- openssl s_server ---------------------------------------------------------


def _free_port():
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


@pytest.fixture
def s_server(certs):
    """Start `openssl s_server -rev` (answers each line reversed) with
    extra options; always killed at the end."""
    procs = []

    def start(*opts, which="server"):
        port = _free_port()
        cert, key = certs[which]
        p = subprocess.Popen(
            [OPENSSL, "s_server", "-accept", "%s:%d" % (HOST, port),
             "-cert", cert, "-key", key, "-rev", "-quiet", *opts],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        procs.append(p)
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection((HOST, port), 0.5).close()
                return port
            except OSError:
                if time.monotonic() > deadline or p.poll() is not None:
                    raise RuntimeError(
                        "openssl s_server did not start"
                    ) from None
                time.sleep(0.02)

    yield start
    for p in procs:
        p.kill()
        p.wait(10)


def run(coro):
    return uvasync.run(uvasync.wait_for(coro, 20))


async def _rev_roundtrip(reader, writer):
    writer.write(b"hello tls\n")
    await writer.drain()
    assert await reader.readline() == b"slt olleh\n"


# -- tests --------------------------------------------------------------------


def test_echo_and_extra_info_against_python_server(certs, pyserver):
    srv = pyserver()

    async def main():
        ctx = _client_ctx(certs)
        r, w = await uvasync.open_connection(HOST, srv.port, ssl=ctx)
        w.write(b"ping\n")
        await w.drain()
        assert await r.readline() == b"ping\n"
        so = w.get_extra_info("ssl_object")
        assert so.version() == "TLSv1.3"
        name, version, bits = w.get_extra_info("cipher")
        assert name.startswith("TLS_") and version == "TLSv1.3" and bits
        cert = w.get_extra_info("peercert")
        assert dict(x[0] for x in cert["subject"])["commonName"] == "server"
        der = so.getpeercert(binary_form=True)
        assert ssl.DER_cert_to_PEM_cert(der) == open(certs["server"][0]).read()
        assert w.get_extra_info("sslcontext") is ctx
        w.close()
        await w.wait_closed()

    run(main())
    assert srv.errors == []
    assert srv.sni == [None]  # an IP address is sent as no SNI


def test_ten_megabytes_both_ways(certs, pyserver):
    srv = pyserver()
    payload = os.urandom(1 << 20) * 10

    async def main():
        r, w = await uvasync.open_connection(
            HOST, srv.port, ssl=_client_ctx(certs)
        )

        async def send():
            for i in range(0, len(payload), 256 * 1024):
                w.write(payload[i : i + 256 * 1024])
                await w.drain()

        t = uvasync.create_task(send())
        got = await r.readexactly(len(payload))
        await t
        assert got == payload
        await w.write_eof()  # close_notify: the server answers with its own
        assert await r.read(10) == b""
        w.close()
        await w.wait_closed()

    run(main())
    assert srv.errors == []


@pytest.mark.parametrize(
    "which, host, code, words",
    [
        ("server", "127.0.0.1", 20, "unable to get local issuer"),
        ("expired", "127.0.0.1", 10, "expired"),
        ("wronghost", "localhost", 62, "mismatch"),
    ],
)
def test_verify_failures(certs, pyserver, which, host, code, words):
    srv = pyserver(_server_ctx(certs, which))
    # the untrusted case trusts the system's store only, without our CA
    ctx = ssl.create_default_context() if code == 20 else _client_ctx(certs)

    async def main():
        with pytest.raises(ssl.SSLCertVerificationError) as e:
            await uvasync.open_connection(host, srv.port, ssl=ctx)
        return e.value

    e = run(main())
    assert e.verify_code == code
    assert words in e.verify_message + str(e)
    assert isinstance(e, ssl.SSLError) and isinstance(e, ValueError)


def test_no_verification_and_check_hostname_off(certs, pyserver):
    srv = pyserver(_server_ctx(certs, "wronghost"))

    async def main():
        ctx = _client_ctx(certs)
        ctx.check_hostname = False  # the chain still verified
        r, w = await uvasync.open_connection(HOST, srv.port, ssl=ctx)
        w.close()
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        r, w = await uvasync.open_connection(HOST, srv.port, ssl=ctx)
        assert w.get_extra_info("peercert") == {}
        w.close()

    run(main())


def test_sni_and_server_hostname(certs, pyserver):
    srv = pyserver()

    async def main():
        r, w = await uvasync.open_connection(
            HOST, srv.port, ssl=_client_ctx(certs), server_hostname="localhost"
        )
        w.close()

    run(main())
    assert srv.sni == ["localhost"]


def test_close_notify_versus_abrupt_close(certs, pyserver):
    def abrupt(s):
        s.sendall(s.recv(100))
        # a socket closed without unwrap(): no close_notify
        s.shutdown(socket.SHUT_RDWR)

    clean = pyserver()
    cut = pyserver(handler=abrupt)

    async def main():
        for srv, ends in ((clean, "eof"), (cut, "abrupt")):
            r, w = await uvasync.open_connection(
                HOST, srv.port, ssl=_client_ctx(certs)
            )
            w.write(b"x\n")
            assert await r.readline() == b"x\n"
            if ends == "eof":
                await w.write_eof()
                assert await r.read() == b""
            else:
                with pytest.raises(ssl.SSLEOFError):
                    await r.read(100)
            w.close()

    run(main())


def test_stalled_handshake_and_cancellation(certs):
    """A TCP server that accepts and never answers: wait_for ends the
    handshake, ssl_handshake_timeout too, and a cancelled handshake or read
    raises CancelledError."""
    silent = socket.create_server((HOST, 0))
    port = silent.getsockname()[1]
    ctx = _client_ctx(certs)

    async def main():
        t0 = time.monotonic()
        with pytest.raises(TimeoutError):
            await uvasync.wait_for(
                uvasync.open_connection(HOST, port, ssl=ctx), 0.2
            )
        with pytest.raises(TimeoutError):
            await uvasync.open_connection(
                HOST, port, ssl=ctx, ssl_handshake_timeout=0.2
            )
        assert time.monotonic() - t0 < 2
        t = uvasync.create_task(uvasync.open_connection(HOST, port, ssl=ctx))
        await uvasync.sleep(0.05)
        t.cancel()
        with pytest.raises(uvasync.CancelledError):
            await t

    try:
        run(main())
    finally:
        silent.close()


def test_cancel_read_then_go_on(certs, pyserver):
    srv = pyserver()

    async def main():
        r, w = await uvasync.open_connection(
            HOST, srv.port, ssl=_client_ctx(certs)
        )
        t = uvasync.create_task(r.read(100))
        await uvasync.sleep(0.05)
        t.cancel()
        with pytest.raises(uvasync.CancelledError):
            await t
        w.write(b"after\n")
        assert await r.readline() == b"after\n"
        w.close()

    run(main())


@pytest.mark.parametrize("version", ["1.2", "1.3"])
def test_s_server_versions(certs, s_server, version):
    port = s_server("-tls1_2" if version == "1.2" else "-tls1_3")

    async def main():
        r, w = await uvasync.open_connection(
            HOST, port, ssl=_client_ctx(certs)
        )
        await _rev_roundtrip(r, w)
        assert w.get_extra_info("ssl_object").version() == "TLSv" + version
        w.close()

    run(main())


def test_version_mismatch(certs, s_server):
    port = s_server("-tls1_3")

    async def main():
        ctx = _client_ctx(certs)
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        with pytest.raises(ssl.SSLError) as e:
            await uvasync.open_connection(HOST, port, ssl=ctx)
        assert not isinstance(e.value, ssl.SSLCertVerificationError)
        assert "version" in str(e.value)

    run(main())


def test_s_server_alpn_and_mutual_tls(certs, s_server):
    port = s_server("-alpn", "h2,http/1.1", "-Verify", "1", "-CAfile",
                    certs["ca"])  # fmt: skip

    async def main():
        ctx = _client_ctx(certs)
        ctx.set_alpn_protocols(["http/1.1"])
        ctx.load_cert_chain(*certs["client"])
        r, w = await uvasync.open_connection(HOST, port, ssl=ctx)
        await _rev_roundtrip(r, w)
        assert w.get_extra_info("ssl_object").selected_alpn_protocol() == (
            "http/1.1"
        )
        w.close()
        # without a client certificate the server ends it with an alert
        # (after the client's side of a TLS 1.3 handshake is done)
        with pytest.raises(ssl.SSLError):
            r, w = await uvasync.open_connection(
                HOST, port, ssl=_client_ctx(certs)
            )
            await _rev_roundtrip(r, w)
        w.close()

    run(main())


# -- a uvasync TLS server, Python's ssl module as the client -------------------


def _py_client(certs, port, out, cert=None, alpn=None, n=1 << 20):
    """A Python ssl client in a thread: n random bytes sent and their echo
    read at once, in one thread (an SSLSocket is not for two threads),
    on a non-blocking socket."""
    try:
        ctx = _client_ctx(certs)
        if cert:
            ctx.load_cert_chain(*certs[cert])
        if alpn:
            ctx.set_alpn_protocols(alpn)
        with socket.create_connection((HOST, port), 10) as raw:
            with ctx.wrap_socket(raw, server_hostname="localhost") as s:
                out["alpn"] = s.selected_alpn_protocol()
                data = os.urandom(n)
                s.setblocking(False)
                got = bytearray()
                sent = 0
                deadline = time.monotonic() + 15
                while len(got) < n and time.monotonic() < deadline:
                    busy = False
                    if sent < n:
                        try:
                            sent += s.send(data[sent : sent + 65536])
                            busy = True
                        except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
                            pass
                    try:
                        chunk = s.recv(65536)
                        if not chunk:
                            break
                        got += chunk
                        busy = True
                    except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
                        pass
                    if not busy:
                        select.select([s], [s] if sent < n else [], [], 0.1)
                out["ok"] = bytes(got) == data
                s.setblocking(True)
                s.settimeout(10)
                s.unwrap()
    except (OSError, ssl.SSLError) as e:
        out["error"] = e


def _serve_with(certs, sctx, **client):
    seen = {}

    async def handler(r, w):
        so = w.get_extra_info("ssl_object")
        seen["sni"] = so.sni()
        seen["alpn"] = so.selected_alpn_protocol()
        seen["peercert"] = w.get_extra_info("peercert")
        while data := await r.read(65536):
            w.write(data)
            await w.drain()
        w.close()

    out = {}

    async def main():
        server = await uvasync.start_server(handler, HOST, 0, ssl=sctx)
        port = server.sockets[0].getsockname()[1]
        t = threading.Thread(target=_py_client, args=(certs, port, out),
                             kwargs=client)  # fmt: skip
        t.start()
        while t.is_alive():
            await uvasync.sleep(0.01)
        server.close()
        await server.wait_closed()

    run(main())
    return seen, out


def test_server_echo_to_python_client(certs):
    sctx = _server_ctx(certs)
    sctx.set_alpn_protocols(["h2", "http/1.1"])
    seen, out = _serve_with(certs, sctx, alpn=["http/1.1"], n=10 << 20)
    assert out.get("ok"), out
    assert out["alpn"] == "http/1.1" and seen["alpn"] == "http/1.1"
    assert seen["sni"] == "localhost"
    assert seen["peercert"] is None


def test_server_mutual_tls(certs):
    sctx = _server_ctx(certs)
    sctx.verify_mode = ssl.CERT_REQUIRED
    sctx.load_verify_locations(certs["ca"])
    seen, out = _serve_with(certs, sctx, cert="client")
    assert out.get("ok"), out
    subject = dict(x[0] for x in seen["peercert"]["subject"])
    assert subject["commonName"] == "client"
    # without a certificate: the handshake fails, the handler never runs
    seen, out = _serve_with(certs, sctx)
    assert "error" in out and seen == {}


def test_unix_socket_tls(certs, tmp_path):
    """TLS over a Unix-domain socket: the name to verify is given."""
    path = str(tmp_path / "tls.sock")

    async def handler(r, w):
        w.write(await r.readline())
        await w.drain()
        w.close()

    async def main():
        server = await uvasync.start_unix_server(
            handler, path, ssl=_server_ctx(certs)
        )
        r, w = await uvasync.open_unix_connection(
            path, ssl=_client_ctx(certs), server_hostname="localhost"
        )
        w.write(b"over unix\n")
        assert await r.readline() == b"over unix\n"
        assert w.get_extra_info("ssl_object").version() == "TLSv1.3"
        w.close()
        server.close()
        await server.wait_closed()

    run(main())


def test_encrypted_key_password_and_tls12_ciphers(certs):
    """load_cert_chain's password (a str, and a callable) reaches the core;
    set_ciphers picks the TLS 1.2 suite."""
    seen = {}

    async def handler(r, w):
        seen["cipher"] = w.get_extra_info("cipher")
        w.write(await r.readline())
        await w.drain()
        w.close()

    async def main():
        for pw in ("s3cret", lambda: b"s3cret"):
            sctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            sctx.load_cert_chain(*certs["server-enc"], password=pw)
            server = await uvasync.start_server(handler, HOST, 0, ssl=sctx)
            port = server.sockets[0].getsockname()[1]
            ctx = _client_ctx(certs)
            ctx.maximum_version = ssl.TLSVersion.TLSv1_2
            ctx.set_ciphers("ECDHE-ECDSA-AES256-GCM-SHA384")
            r, w = await uvasync.open_connection(HOST, port, ssl=ctx)
            w.write(b"k\n")
            assert await r.readline() == b"k\n"
            assert w.get_extra_info("cipher") == (
                "ECDHE-ECDSA-AES256-GCM-SHA384",
                "TLSv1.2",
                256,
            )
            w.close()
            server.close()
            await server.wait_closed()
        assert seen["cipher"][0] == "ECDHE-ECDSA-AES256-GCM-SHA384"
        # a password callable asked again by the core, answering wrong now
        answers = iter([b"s3cret", b"wrong"])
        sctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        sctx.load_cert_chain(
            *certs["server-enc"], password=lambda: next(answers)
        )
        with pytest.raises(ssl.SSLError, match="load_cert_chain"):
            await uvasync.start_server(handler, HOST, 0, ssl=sctx)

    run(main())


# -- what the core cannot honour --------------------------------------------------


def test_settings_the_core_cannot_honour(certs):
    async def main():
        ctx = _client_ctx(certs)
        ctx.verify_flags |= ssl.VERIFY_CRL_CHECK_LEAF
        with pytest.raises(ValueError, match="verify_flags"):
            await uvasync.open_connection(HOST, 1, ssl=ctx)
        with pytest.raises(ValueError, match="no certificate"):
            await uvasync.start_server(
                lambda r, w: None,
                HOST,
                0,
                ssl=ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER),
            )
        bare = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        with pytest.raises(ValueError, match="trusts no CA"):
            await uvasync.open_connection(HOST, 1, ssl=bare)
        with pytest.raises(ValueError, match="server_hostname"):
            await uvasync.open_unix_connection(
                "/nonexistent", ssl=_client_ctx(certs)
            )
        with pytest.raises(TypeError):
            await uvasync.open_connection(HOST, 1, ssl="yes")

    run(main())


# -- uasyncio: the seed's ssl=True -------------------------------------------------


def test_uasyncio_ssl_true(certs, pyserver, monkeypatch):
    """ssl=True verifies against the default store, which SSL_CERT_FILE
    names (OpenSSL's variable): here the test's CA."""
    monkeypatch.setenv("SSL_CERT_FILE", certs["ca"])
    srv = pyserver()

    async def main():
        r, w = await uasyncio.open_connection(HOST, srv.port, ssl=True)
        await w.awrite(b"seed\n")
        assert await r.readline() == b"seed\n"
        await w.aclose()

    uasyncio.get_event_loop().run_until_complete(main())
    assert srv.errors == []


def test_uasyncio_ssl_true_untrusted(certs, pyserver, monkeypatch):
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    srv = pyserver()

    async def main():
        with pytest.raises(ssl.SSLCertVerificationError):
            await uasyncio.open_connection(HOST, srv.port, ssl=True)

    uasyncio.get_event_loop().run_until_complete(main())
