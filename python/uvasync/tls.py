"""TLS for the native API: an ssl.SSLContext's settings carried onto a
core TLS context (uva_tls_ctx_t), the handshake, the errors, and what
get_extra_info tells about a TLS stream.

The core runs OpenSSL itself; Python's ssl module only describes what the
user wants. Read from the context: verify_mode, check_hostname,
minimum_version/maximum_version, options (OP_NO_TLSv1_2/1_3), verify_flags
(VERIFY_X509_STRICT, which 3.13's create_default_context sets, and
VERIFY_X509_PARTIAL_CHAIN go to the core), the enabled ciphers (get_ciphers) and the CA certificates loaded from files
or cadata (get_ca_certs). SSLContext keeps no readable record of its
certificate and key, its ALPN list or a CA directory (capath, loaded
lazily), so this module records them: importing uvasync wraps
load_cert_chain, set_alpn_protocols, load_verify_locations,
set_default_verify_paths and set_ciphers of ssl.SSLContext (each calls the
original first, then notes its arguments on the context). What the core
cannot honour (CRL checks, TLS below 1.2 as the only
versions, an SNI callback, a keylog file) raises ValueError instead of
being ignored.
"""

import os
import ssl
import tempfile
import types

from ._ffi import NULL, check, error, ffi, lib
from ._internal import _PENDING

__all__ = ["client_context", "server_context", "handshake", "TLSInfo"]

_EAGAIN = lib.UVA_EAGAIN

# -- recording what SSLContext does not let us read back ----------------------

_Ctx = ssl.SSLContext
_ORIG = {
    name: getattr(_Ctx, name)
    for name in (
        "load_cert_chain",
        "set_alpn_protocols",
        "load_verify_locations",
        "set_default_verify_paths",
        "set_ciphers",
    )
}


def _note(ctx, key, value):
    # the generation number invalidates a core context built earlier
    ctx.__dict__.setdefault("_uvasync_rec", {})[key] = value
    ctx.__dict__["_uvasync_gen"] = ctx.__dict__.get("_uvasync_gen", 0) + 1


def _load_cert_chain(self, certfile, keyfile=None, password=None):
    _ORIG["load_cert_chain"](self, certfile, keyfile, password)
    _note(
        self,
        "cert",
        (
            os.path.abspath(os.fsdecode(certfile)),
            None if keyfile is None else os.path.abspath(os.fsdecode(keyfile)),
            password,
        ),
    )


def _set_alpn_protocols(self, protocols):
    _ORIG["set_alpn_protocols"](self, protocols)
    _note(
        self,
        "alpn",
        [p.encode() if isinstance(p, str) else bytes(p) for p in protocols],
    )


def _load_verify_locations(self, cafile=None, capath=None, cadata=None):
    _ORIG["load_verify_locations"](self, cafile, capath, cadata)
    if capath is not None:
        dirs = self.__dict__.get("_uvasync_rec", {}).get("capath", ())
        _note(self, "capath", dirs + (os.path.abspath(os.fsdecode(capath)),))
    else:
        _note(self, "cafile", True)  # visible in get_ca_certs


def _set_default_verify_paths(self):
    _ORIG["set_default_verify_paths"](self)
    _note(self, "defaults", True)


def _set_ciphers(self, spec):
    _ORIG["set_ciphers"](self, spec)
    _note(self, "ciphers", spec)


if not getattr(_Ctx, "_uvasync_recording", False):
    _Ctx.load_cert_chain = _load_cert_chain
    _Ctx.set_alpn_protocols = _set_alpn_protocols
    _Ctx.load_verify_locations = _load_verify_locations
    _Ctx.set_default_verify_paths = _set_default_verify_paths
    _Ctx.set_ciphers = _set_ciphers
    _Ctx._uvasync_recording = True

# -- mapping ----------------------------------------------------------------------

_VERSIONS = {
    ssl.TLSVersion.TLSv1_2: lib.UVA_TLS_VERSION_1_2,
    ssl.TLSVersion.TLSv1_3: lib.UVA_TLS_VERSION_1_3,
}
_OLD = (ssl.TLSVersion.SSLv3, ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1)
# verify flags the core honours: OpenSSL's defaults, and the chain checks
# it maps (VERIFY_X509_PARTIAL_CHAIN is Python 3.10+); any other is refused
_X509_FLAGS = {ssl.VERIFY_X509_STRICT: lib.UVA_TLS_X509_STRICT}
if hasattr(ssl, "VERIFY_X509_PARTIAL_CHAIN"):
    _X509_FLAGS[ssl.VERIFY_X509_PARTIAL_CHAIN] = lib.UVA_TLS_X509_PARTIAL_CHAIN
_FLAGS_OK = ssl.VERIFY_DEFAULT | ssl.VERIFY_X509_TRUSTED_FIRST
for _flag in _X509_FLAGS:
    _FLAGS_OK |= _flag


class CoreContext:
    """Owns one uva_tls_ctx_t (streams keep their own reference)."""

    def __init__(self, role):
        cell = ffi.new("uva_tls_ctx_t **")
        check(lib.uva_tls_ctx_new(cell, role), "ssl")
        self.ptr = cell[0]
        self.ciphers = {}  # name -> secret bits, for cipher()

    def __del__(self):
        if self.ptr is not None:
            lib.uva_tls_ctx_free(self.ptr)
            self.ptr = None


def _refuse(what):
    raise ValueError("uvasync TLS cannot honour %s of this SSLContext" % what)


def _versions(ctx):
    lo, hi = ctx.minimum_version, ctx.maximum_version
    if hi in _OLD:
        _refuse(
            "maximum_version %s (the core speaks TLS 1.2 and 1.3)" % hi.name
        )
    vmin = _VERSIONS.get(lo, 0)  # older minimums: the core's floor, 1.2
    vmax = _VERSIONS.get(hi, 0)
    if ctx.options & ssl.OP_NO_TLSv1_2:
        vmin = lib.UVA_TLS_VERSION_1_3
    if ctx.options & ssl.OP_NO_TLSv1_3:
        if vmin == lib.UVA_TLS_VERSION_1_3:
            _refuse("OP_NO_TLSv1_2 with OP_NO_TLSv1_3")
        vmax = lib.UVA_TLS_VERSION_1_2
    return vmin, vmax


def _fingerprint(ctx):
    return (
        ctx.verify_mode,
        ctx.check_hostname,
        ctx.minimum_version,
        ctx.maximum_version,
        int(ctx.options),
        int(ctx.verify_flags),
        tuple(sorted(ctx.cert_store_stats().items())),
        ctx.__dict__.get("_uvasync_gen", 0),
    )


def _password(pw):
    if callable(pw):
        pw = pw()
    if pw is None:
        return NULL
    return pw.encode() if isinstance(pw, str) else bytes(pw)


def _build(ctx, role):
    """A new core context with ctx's settings (see the module's doc)."""
    if ctx.verify_flags & ~_FLAGS_OK:
        _refuse("verify_flags %r (CRL checks)" % ctx.verify_flags)
    if ctx.sni_callback is not None:
        _refuse("an sni_callback")
    if getattr(ctx, "keylog_filename", None):
        _refuse("keylog_filename")
    if role == lib.UVA_TLS_CLIENT and ctx.protocol == ssl.PROTOCOL_TLS_SERVER:
        raise ValueError("a server-side SSLContext cannot open a connection")
    if role == lib.UVA_TLS_SERVER and ctx.protocol == ssl.PROTOCOL_TLS_CLIENT:
        raise ValueError("a client-side SSLContext cannot serve")
    rec = ctx.__dict__.get("_uvasync_rec", {})
    core = CoreContext(role)
    p = core.ptr
    # verification
    if ctx.verify_mode == ssl.CERT_NONE:
        mode = lib.UVA_TLS_VERIFY_NONE
    elif role == lib.UVA_TLS_SERVER:
        mode = (
            lib.UVA_TLS_VERIFY_REQUIRE
            if ctx.verify_mode == ssl.CERT_REQUIRED
            else lib.UVA_TLS_VERIFY_PEER
        )
    else:  # a client verifies whenever it is not CERT_NONE (as Python)
        mode = lib.UVA_TLS_VERIFY_PEER
    if mode != lib.UVA_TLS_VERIFY_NONE and not ctx.check_hostname:
        mode |= lib.UVA_TLS_VERIFY_NO_HOSTNAME
    check(lib.uva_tls_ctx_set_verify(p, mode), "ssl")
    x509 = 0
    for flag, core_flag in _X509_FLAGS.items():
        if ctx.verify_flags & flag:
            x509 |= core_flag
    check(lib.uva_tls_ctx_set_verify_flags(p, x509), "ssl")
    # trust store: what get_ca_certs shows (files, cadata, and the system's
    # bundle file), plus the directories recorded
    if mode != lib.UVA_TLS_VERIFY_NONE:
        dirs = list(rec.get("capath", ()))
        if rec.get("defaults"):
            d = ssl.get_default_verify_paths().capath
            if d and os.path.isdir(d):
                dirs.append(d)
        pem = "".join(
            ssl.DER_cert_to_PEM_cert(c) for c in ctx.get_ca_certs(True)
        ).encode()
        if pem:
            check(lib.uva_tls_ctx_load_ca_pem(p, pem, len(pem)), "ssl")
        for d in dirs:
            check(lib.uva_tls_ctx_load_ca(p, NULL, os.fsencode(d)), "ssl")
        if not pem and not dirs:
            raise ValueError(
                "the SSLContext trusts no CA certificate (verify_mode is "
                "not CERT_NONE): use load_verify_locations or "
                "load_default_certs"
            )
    # this side's certificate
    cert = rec.get("cert")
    if cert is not None:
        chain, key, pw = cert
        check(
            lib.uva_tls_ctx_use_cert_file(
                p,
                os.fsencode(chain),
                NULL if key is None else os.fsencode(key),
                _password(pw),
            ),
            "load_cert_chain",
        )
    elif role == lib.UVA_TLS_SERVER:
        raise ValueError(
            "the server's SSLContext has no certificate: call "
            "load_cert_chain (after importing uvasync, which records it)"
        )
    check(lib.uva_tls_ctx_set_versions(p, *_versions(ctx)), "ssl")
    # ciphers: the context's enabled list, TLS 1.3 suites apart
    tls12, tls13 = [], []
    for c in ctx.get_ciphers():
        core.ciphers[c["name"]] = c.get("strength_bits")
        (tls13 if c["protocol"] == "TLSv1.3" else tls12).append(c["name"])
    check(
        lib.uva_tls_ctx_set_ciphers(
            p,
            ":".join(tls12).encode() if tls12 else NULL,
            ":".join(tls13).encode() if tls13 else NULL,
        ),
        "set_ciphers",
    )
    alpn = rec.get("alpn")
    if alpn:
        keep = [ffi.new("char[]", a) for a in alpn]
        arr = ffi.new("const char *[]", keep)
        check(
            lib.uva_tls_ctx_set_alpn(p, arr, len(keep)), "set_alpn_protocols"
        )
    if ctx.options & ssl.OP_NO_TICKET and role == lib.UVA_TLS_SERVER:
        check(lib.uva_tls_ctx_set_session_cache(p, 0), "ssl")
    return core


def _core_for(ctx, role):
    """ctx's core context for `role`, built once and again only after a
    setting changed (sessions are kept per core context)."""
    fp = _fingerprint(ctx)
    cache = ctx.__dict__.setdefault("_uvasync_core", {})
    hit = cache.get(role)
    if hit is not None and hit[0] == fp:
        return hit[1]
    core = _build(ctx, role)
    cache[role] = (fp, core)
    return core


_default = {}  # (SSL_CERT_FILE, SSL_CERT_DIR) -> CoreContext


def client_context(ssl_arg):
    """The core context for open_connection's ssl= (True: the core's
    default client context, verifying against the system's store,
    SSL_CERT_FILE / SSL_CERT_DIR honoured), and the SSLContext or None."""
    if ssl_arg is True:
        key = (os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR"))
        core = _default.get(key)
        if core is None:
            core = _default[key] = CoreContext(lib.UVA_TLS_CLIENT)
        return core, None
    if isinstance(ssl_arg, ssl.SSLContext):
        return _core_for(ssl_arg, lib.UVA_TLS_CLIENT), ssl_arg
    raise TypeError(
        "ssl must be True or an ssl.SSLContext, not %r" % (ssl_arg,)
    )


def server_context(ssl_arg):
    if isinstance(ssl_arg, ssl.SSLContext):
        return _core_for(ssl_arg, lib.UVA_TLS_SERVER)
    raise TypeError(
        "a server's ssl must be an ssl.SSLContext, not %r" % (ssl_arg,)
    )


# -- handshake and errors -----------------------------------------------------


def _text(fn, h):
    buf = ffi.new("char[]", 512)
    if fn(h, buf, 512) < 0:
        return ""
    return ffi.string(buf).decode("utf-8", "replace")


def tls_error(h, rc, what):
    """error() for a TLS stream's code, with OpenSSL's reason and, for a
    verify failure, its X509_V code and text."""
    reason = _text(lib.uva_tls_error_text, h)
    code = ffi.new("int *")
    buf = ffi.new("char[]", 256)
    verify = None
    if lib.uva_tls_verify_result(code, h, buf, 256) == 0 and code[0]:
        verify = (code[0], ffi.string(buf).decode("utf-8", "replace"))
    return error(rc, what, reason=reason, verify=verify)


@types.coroutine
def handshake(h):
    """Wait for the handshake of the stream handle h (TLS started)."""
    rc = lib.uva_tls_handshake(h, NULL)
    while rc == _EAGAIN:
        yield _PENDING
        rc = lib.uva_tls_handshake(h, NULL)
    if rc < 0:
        raise tls_error(h, rc, "handshake")


def start(h, core, server_hostname):
    name = NULL
    if server_hostname:
        name = (
            server_hostname.encode("idna")
            if isinstance(server_hostname, str)
            else bytes(server_hostname)
        )
    check(lib.uva_tls_start(h, core.ptr, name), "ssl")


# -- what a TLS stream tells ----------------------------------------------------

_NAMES = {
    lib.UVA_TLS_VERSION_1_2: "TLSv1.2",
    lib.UVA_TLS_VERSION_1_3: "TLSv1.3",
}


class TLSInfo:
    """get_extra_info('ssl_object'): the parts of ssl.SSLObject's query
    methods that the core answers, for a stream whose handshake is done."""

    def __init__(self, stream, core, context, server_side, server_hostname):
        self._stream = stream
        self._core = core
        self.context = context
        self.server_side = server_side
        self.server_hostname = server_hostname

    def _h(self):
        h = self._stream._h
        if h is None:
            raise ValueError("the stream is closed")
        return h

    def version(self):
        cell = ffi.new("int *")
        if lib.uva_tls_version(cell, self._h()) < 0:
            return None
        return _NAMES.get(cell[0])

    def selected_alpn_protocol(self):
        return _text(lib.uva_tls_alpn, self._h()) or None

    def cipher(self):
        """(name, protocol version, secret bits), as SSLObject.cipher()."""
        name = _text(lib.uva_tls_cipher, self._h())
        if not name:
            return None
        bits = self._core.ciphers.get(name)
        if bits is None:
            bits = 256 if ("256" in name or "CHACHA20" in name) else 128
        return (name, self.version(), bits)

    def compression(self):
        return None

    def session_reused(self):
        cell = ffi.new("int *")
        check(lib.uva_tls_session_reused(cell, self._h()), "ssl")
        return bool(cell[0])

    def sni(self):
        """The server name the client sent (either side), or None."""
        return _text(lib.uva_tls_server_name, self._h()) or None

    def getpeercert(self, binary_form=False):
        """The peer's certificate: DER bytes (binary_form), else the dict
        Python's ssl gives, once it was verified ({} when not, as
        ssl.SSLObject); None if the peer sent none."""
        h = self._h()
        n = ffi.new("size_t *")
        rc = lib.uva_tls_peer_cert(n, h, NULL, 0)  # asks the size
        if rc < 0 and rc != lib.UVA_ENOBUFS:
            raise error(rc, "getpeercert")
        if n[0] == 0:
            return None
        buf = ffi.new("char[]", n[0])
        check(lib.uva_tls_peer_cert(n, h, buf, n[0]), "getpeercert")
        der = ffi.unpack(buf, n[0])
        if binary_form:
            return der
        ctx = self.context
        if ctx is not None and ctx.verify_mode == ssl.CERT_NONE:
            return {}
        return _decode(der)


def _decode(der):
    # Python decodes a certificate only from a file (ssl's own helper)
    with tempfile.NamedTemporaryFile("w", suffix=".pem") as f:
        f.write(ssl.DER_cert_to_PEM_cert(der))
        f.flush()
        return ssl._ssl._test_decode_cert(f.name)
