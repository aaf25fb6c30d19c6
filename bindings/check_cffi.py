#!/usr/bin/env python3
"""Check that bindings/uvasync.cdef.h loads in cffi (ABI mode) and that the
library it describes answers uva_version(). Skips (exit 0) without cffi,
which is the Python package's dependency, not this folder's.

    UVASYNC_LIBRARY=build/libuvasync.so python3 bindings/check_cffi.py
"""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
LIBRARY = os.environ.get("UVASYNC_LIBRARY") or os.path.normpath(
    os.path.join(HERE, "..", "build", "libuvasync.so")
)

try:
    import cffi
except ImportError:
    print("check_cffi: cffi not installed, skipped")
    sys.exit(0)

ffi = cffi.FFI()
with open(os.path.join(HERE, "uvasync.cdef.h")) as f:
    ffi.cdef(f.read())
lib = ffi.dlopen(LIBRARY)
version = lib.uva_version()
if version != lib.UVA_VERSION_HEX:
    sys.exit(
        "check_cffi: uva_version() = %#x, the declarations say %#x"
        % (version, lib.UVA_VERSION_HEX)
    )
print(
    "check_cffi: cdef loads in cffi %s; %s is version %s (%#08x)"
    % (
        cffi.__version__,
        LIBRARY,
        ffi.string(lib.uva_version_string()).decode(),
        version,
    )
)
