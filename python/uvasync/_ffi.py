"""The raw layer: the one import point of the compiled cffi module, and the
one function that turns the core's error codes into Python exceptions.

Everything else in the package goes through `ffi`, `lib` and `error` from
here; nothing above this module knows how the extension was built.
"""

import errno as _errno
import socket as _socket
import ssl as _ssl
import sys as _sys
from asyncio import CancelledError, IncompleteReadError, QueueEmpty, QueueFull

from ._uvasync import ffi, lib

# The module uvasync._cext (TaskBase, LoopBase, Sleep, Gathering, sleep,
# sleep_ms and the stream helpers; stub: _cext.pyi) is made by this call,
# the one place it is made: csrc/module.c creates it and registers it in
# sys.modules, as it is part of this extension (one extension, so the core
# statically linked into it is linked once) and has no file of its own.
if lib._uvapy_types() != 0:
    raise ImportError("uvasync: the C types could not be set up")
# ... and bound in the package, as the import system binds a submodule it
# loads (else `import uvasync._cext` then `uvasync._cext` fails).
_sys.modules[__package__]._cext = _sys.modules[__package__ + "._cext"]

__all__ = ["ffi", "lib", "error", "check", "strerror", "NULL"]

NULL = ffi.NULL

# The core's own codes (not errno values) that have a natural Python class.
_OWN = {
    lib.UVA_ECANCELED: CancelledError,
    lib.UVA_EQUEUEFULL: QueueFull,
    lib.UVA_EQUEUEEMPTY: QueueEmpty,
}


def strerror(rc):
    """The core's message for an error code."""
    return ffi.string(lib.uva_strerror(rc)).decode()


def error(rc, what=None, *, reason=None, verify=None):
    """The exception for a core error code `rc` (< 0), as Python raises it
    for the same failure: OSError subclasses chosen by errno
    (ConnectionResetError, BrokenPipeError, ConnectionRefusedError, ...),
    socket.gaierror for name resolution, MemoryError, CancelledError,
    ssl.SSLCertVerificationError / SSLEOFError / SSLError for TLS, ...
    `what` names the operation in the message; `reason` is OpenSSL's text
    for a TLS failure and `verify` its (X509_V code, text) when a
    certificate failed verification."""
    msg = strerror(rc)
    if what:
        msg = "%s: %s" % (what, msg)
    if -5030 < rc <= -5020:
        return _tls_error(rc, msg, reason, verify)
    cls = _OWN.get(rc)
    if cls is not None:
        return cls(msg) if cls is not CancelledError else cls()
    if rc == lib.UVA_ENOMEM:
        return MemoryError(msg)
    if rc == lib.UVA_ETIMEDOUT:
        return TimeoutError(_errno.ETIMEDOUT, msg)
    if -3020 < rc <= -3000:  # UVA_EAI_*: name resolution, not connection
        return _socket.gaierror(rc, msg)
    if rc == lib.UVA_ECLOSED:  # as a socket used after close()
        return OSError(_errno.EBADF, msg)
    if rc == lib.UVA_EINCOMPLETE:
        return IncompleteReadError(b"", None)
    if rc == lib.UVA_ELINETOOLONG:
        return ValueError(msg)
    if rc in (lib.UVA_EWRONGTHREAD, lib.UVA_ERUNNING):
        return RuntimeError(msg)
    if rc == lib.UVA_EUSER or rc <= -5000:
        return RuntimeError(msg)
    # libuv's codes are -errno on Unix: OSError picks the subclass itself.
    return OSError(-rc, msg)


_TLS_VERIFY = (
    lib.UVA_ETLSUNTRUSTED,
    lib.UVA_ETLSEXPIRED,
    lib.UVA_ETLSHOSTNAME,
    lib.UVA_ETLSCERT,
)


def _tls_error(rc, msg, reason, verify):
    """ssl's classes for the core's TLS codes: a certificate that failed
    verification is SSLCertVerificationError (verify_code, verify_message
    set as ssl sets them), an end without close_notify SSLEOFError, any
    other failure SSLError; errno is the core's code, `reason` OpenSSL's
    words."""
    if reason:
        msg = "%s (%s)" % (msg, reason)
    if rc in _TLS_VERIFY:
        e = _ssl.SSLCertVerificationError(rc, msg)
        if verify is not None:
            e.verify_code, e.verify_message = verify
        elif rc == lib.UVA_ETLSHOSTNAME:
            e.verify_code, e.verify_message = 62, "hostname mismatch"
        e.reason = "CERTIFICATE_VERIFY_FAILED"
        return e
    if rc == lib.UVA_ETLSEOF:
        e = _ssl.SSLEOFError(rc, msg)
    else:
        e = _ssl.SSLError(rc, msg)
    e.reason = reason or None
    return e


def check(rc, what=None):
    """Raise `error(rc)` when rc < 0; return rc otherwise."""
    if rc < 0:
        raise error(rc, what)
    return rc
