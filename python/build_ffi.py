"""cffi (API mode) build of `uvasync._uvasync`: the declarations come from
bindings/uvasync.cdef.h, generated from include/uvasync.h, so the Python
package never keeps its own copy of the C API."""

import hashlib
import os

from cffi import FFI

HERE = os.path.dirname(os.path.abspath(__file__))
VENDOR = os.path.join(HERE, "_vendor")

with open(os.path.join(VENDOR, "bindings", "uvasync.cdef.h")) as f:
    CDEF = f.read()


def core_digest(root):
    """sha256 of the core's sources under root (src/ and include/): built
    into the extension, so that a test can tell an extension linked from
    an older core (a stale build directory) from a fresh one."""
    h = hashlib.sha256()
    for sub in ("src", "include"):
        base = os.path.join(root, sub)
        for d, _, files in sorted(os.walk(base)):
            for name in sorted(files):
                if name.endswith((".cpp", ".h")):
                    path = os.path.join(d, name)
                    h.update(os.path.relpath(path, root).encode())
                    with open(path, "rb") as f:
                        h.update(f.read())
    return h.hexdigest()


# What the Python layer adds: its callbacks into Python (one per kind of
# event; _uvapy_process_step is the step of a child's exit watcher,
# _uvapy_fd_step that of add_reader/add_writer's poll, aio_sockets.py,
# _uvapy_udp_step a datagram transport's receiver, aio_datagram.py), one C
# helper that wakes a task without entering Python, and a signal's action
# saved and put back (csrc/sigaction.c).
GLUE_CDEF = """
int _uvapy_types(void);
int _uvapy_setup(void);
extern "Python" void _uvapy_call(void *data);
extern "Python" void _uvapy_timer(uva_timer_t *timer, void *data);
extern "Python" void _uvapy_connection(uva_server_t *server,
                                       uva_stream_t *stream, void *data);
extern "Python" void _uvapy_stream_closed(uva_stream_t *stream, void *data);
extern "Python" void _uvapy_server_closed(uva_server_t *server, void *data);
void _uvapy_wake_on_done(uva_task_t *task, int result, void *data);
extern "Python" int _uvapy_process_step(uva_task_t *task, int status,
                                        void *data);
extern "Python" int _uvapy_fd_step(uva_task_t *task, int status, void *data);
extern "Python" int _uvapy_udp_step(uva_task_t *task, int status, void *data);
extern "Python" void _uvapy_signal(uva_signal_t *sig, int signum, void *data);
extern "Python" void _uvapy_signal_closed(uva_signal_t *sig, void *data);
void *_uvapy_sigaction_get(int signum);
int _uvapy_sigaction_set(int signum, void *saved);
int _uvapy_sigaction_is_default(int signum);
void _uvapy_sigaction_free(void *saved);
int _uvapy_run(uva_loop_t *loop, int mode);
const char *_uvapy_core_digest(void);
"""

# The extension's own C (Task, sleep, gather, the stream helpers, the
# module uvasync._cext) is in csrc/, one file per concept, sharing the
# private header csrc/uvapy.h. The files are compiled as further sources of
# this one extension, next to the C file cffi writes, and linked with the
# core's static archive once. cffi's own file needs only the declarations
# of what GLUE_CDEF names, and the core's digest, known at build time.
CSRC = os.path.join(HERE, "csrc")
GLUE_FILES = [
    "module.c",
    "task.c",
    "loop.c",
    "sleep.c",
    "gather.c",
    "stream_io.c",
    "sigaction.c",
    "work.c",
    "transport.c",
    "handle.c",
]

GLUE_SOURCE = """
#include "uvapy.h"

static const char *_uvapy_core_digest(void) {
    return "%s";
}
""" % core_digest(VENDOR)

ffibuilder = FFI()
ffibuilder.cdef(CDEF + GLUE_CDEF)
ffibuilder.set_source(
    "uvasync._uvasync",
    GLUE_SOURCE,
    # relative to the current directory, as setuptools wants them (it is
    # this one when pip builds the package)
    sources=[os.path.relpath(os.path.join(CSRC, f)) for f in GLUE_FILES],
    include_dirs=[os.path.join(VENDOR, "include"), CSRC],
    depends=[os.path.relpath(os.path.join(CSRC, "uvapy.h"))],
    define_macros=[("UVA_EXTERN", "")],
    # the core (static, built by build_clib) first, then what it needs
    libraries=["uvasync_core", "uv", "stdc++"],
    extra_compile_args=["-O2"],
    # The step uses PyIter_Send, outside the stable ABI before 3.10: the
    # extension is built for the interpreter that installs it.
    py_limited_api=False,
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
