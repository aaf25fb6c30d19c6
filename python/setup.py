"""Build of the uvasync Python package.

The C++ core is compiled from source into a static archive (build_clib) and
linked into the cffi extension `uvasync._uvasync`, so the installed package
carries the library it needs: no LD_LIBRARY_PATH, no build tree afterwards.
Only libuv comes from the system (Debian: libuv1-dev to build, libuv1 to run).

In a checkout the sources are taken from the repository (../src,
../include, ../bindings/uvasync.cdef.h) and copied into _vendor/, which is
what an sdist ships and what a build from an unpacked sdist uses.
"""

import glob
import os
import shutil
import sys

from setuptools import setup

HERE = os.path.dirname(os.path.abspath(__file__))
# build_tls.py beside this file (pip runs it from elsewhere)
sys.path.insert(0, HERE)
from build_tls import openssl_flags  # noqa: E402

REPO = os.path.dirname(HERE)
VENDOR = os.path.join(HERE, "_vendor")


def vendor_core():
    """Copy the core's sources next to this file when building in a checkout."""
    if not os.path.exists(os.path.join(REPO, "src", "loop.cpp")):
        return  # an unpacked sdist: _vendor/ is already there
    for sub in ("src", "include"):
        dst = os.path.join(VENDOR, sub)
        shutil.rmtree(dst, ignore_errors=True)
        shutil.copytree(
            os.path.join(REPO, sub),
            dst,
            ignore=shutil.ignore_patterns("*.map"),
        )
    os.makedirs(os.path.join(VENDOR, "bindings"), exist_ok=True)
    shutil.copy2(
        os.path.join(REPO, "bindings", "uvasync.cdef.h"),
        os.path.join(VENDOR, "bindings", "uvasync.cdef.h"),
    )


vendor_core()
TLS_MACROS, _ = openssl_flags()
core_sources = sorted(glob.glob(os.path.join("_vendor", "src", "*.cpp")))
if not core_sources:
    raise SystemExit("uvasync: the C++ core sources are missing (_vendor/src)")

setup(
    libraries=[
        (
            "uvasync_core",
            {
                "sources": core_sources,
                "include_dirs": [os.path.join("_vendor", "include")],
                # No default visibility: the core's symbols stay inside the extension
                # and cannot clash with a libuvasync.so loaded in the same process.
                "macros": [("UVA_EXTERN", ""), ("NDEBUG", "1")] + TLS_MACROS,
                "cflags": [
                    "-std=c++17",
                    "-O2",
                    "-fPIC",
                    "-fvisibility=hidden",
                    "-fno-strict-aliasing",
                ],
            },
        )
    ],
    cffi_modules=["build_ffi.py:ffibuilder"],
    # Always link the extension again: build_ext only looks at the cffi C
    # file, not at the core archive, so after a change to the core a build
    # directory left by an earlier build kept the old core in the package.
    options={"build_ext": {"force": True}},
)
