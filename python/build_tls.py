"""Whether the core compiled into the extension has TLS: OpenSSL found by
pkg-config (Debian: libssl-dev), as CMake finds it for the C library.
UVASYNC_TLS=0 builds without (the uva_tls_* calls then return ENOTSUP).
setup.py (the core's macros) and build_ffi.py (the link) both ask here,
so the two agree."""

import os
import subprocess


def openssl_flags():
    """(macros for the core, libraries to link): both empty without TLS."""
    if os.environ.get("UVASYNC_TLS") == "0":
        return [], []
    try:
        found = (
            subprocess.run(
                ["pkg-config", "--exists", "openssl"], check=False
            ).returncode
            == 0
        )
    except OSError:
        found = False
    if not found:
        return [], []
    return [("UVA_HAVE_OPENSSL", "1")], ["ssl", "crypto"]
