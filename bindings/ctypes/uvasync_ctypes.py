"""Load libuvasync with Python's standard ctypes (nothing to install).

The prototypes are read from the generated bindings/uvasync.cdef.h (one
declaration per line), so this module keeps no copy of the API. Handles are
plain integers (c_void_p); outputs are passed with ctypes.byref.

    import uvasync_ctypes as uva
    lib = uva.load()        # $UVASYNC_LIBRARY, else build/libuvasync.so
    lib.uva_loop_new(ctypes.byref(loop))
    uva.const.UVA_EAGAIN, uva.types.uva_task_step_cb
"""

import ctypes
import os
import re
import types as _types

HERE = os.path.dirname(os.path.abspath(__file__))
CDEF = os.path.join(HERE, "..", "uvasync.cdef.h")
DEFAULT_LIBRARY = os.path.normpath(
    os.path.join(HERE, "..", "..", "build", "libuvasync.so")
)

# The version this module was written against: 1.0.0 as UVA_VERSION_HEX
# (0xMMmmpp). Same major version and at least this one is accepted.
EXPECTED_VERSION = 0x010000

SCALARS = {
    "void": None,
    "int": ctypes.c_int,
    "unsigned int": ctypes.c_uint,
    "long": ctypes.c_long,
    "size_t": ctypes.c_size_t,
    "int64_t": ctypes.c_int64,
    "uint64_t": ctypes.c_uint64,
    "uintptr_t": ctypes.c_size_t,
}

const = _types.SimpleNamespace()  # UVA_* enum values
types = _types.SimpleNamespace()  # callback types (CFUNCTYPE) by typedef name
_named = {}  # typedef name -> ctypes type
_prototypes = {}  # function name -> (restype, argtypes)
_callback_types = set()


def _ctype(decl):
    """The ctypes type of a C type such as 'const char *' or 'uva_loop_t **'."""
    decl = decl.replace("const ", "").strip()
    stars = decl.count("*")
    base = decl.replace("*", "").strip()
    if stars == 0:
        if base in SCALARS:
            return SCALARS[base]
        if base in _named:
            return _named[base]
    elif stars == 1:
        if base == "char":
            return ctypes.c_char_p
        if base in SCALARS and base != "void":
            return ctypes.POINTER(SCALARS[base])
        if base == "void" or base in _named:
            return ctypes.c_void_p  # a buffer or a handle
    elif stars == 2:
        return ctypes.POINTER(ctypes.c_void_p)  # an out handle or pointer
    raise ValueError("uvasync_ctypes: no ctypes type for C type %r" % decl)


class _NullableCallback:
    """Argument type of a callback parameter that also takes None (NULL),
    which a CFUNCTYPE argument type alone refuses."""

    def __init__(self, cftype):
        self.cftype = cftype

    def from_param(self, obj):
        return self.cftype() if obj is None else self.cftype.from_param(obj)


def _params(text):
    if text.strip() == "void":
        return []
    # Each parameter is "<type> <name>"; drop the name.
    result = []
    for p in text.split(","):
        t = _ctype(re.match(r"^(.*?)\w+$", p.strip()).group(1))
        result.append(_NullableCallback(t) if t in _callback_types else t)
    return result


def _fields(decl):
    """The (name, ctypes type) pairs of one member declaration: "int fd",
    "uva_stdio_t stdio[3]" (an array) or "uint64_t dev, ino" (several)."""
    m = re.match(r"^(.*?[\s*])(\w+(?:\[\d+\])?(?:, \w+(?:\[\d+\])?)*)$", decl)
    base = _ctype(m.group(1))
    fields = []
    for name in m.group(2).split(", "):
        am = re.match(r"^(\w+)\[(\d+)\]$", name)
        if am:
            fields.append((am.group(1), base * int(am.group(2))))
        else:
            fields.append((name, base))
    return fields


def _parse(cdef):
    for enum in re.finditer(r"enum \{(.*?)\}", cdef, re.S):
        for name, value in re.findall(r"(\w+) = (-?\d+)", enum.group(1)):
            setattr(const, name, int(value))
    for m in re.finditer(r"^typedef enum \{.*?\} (\w+);", cdef, re.S | re.M):
        _named[m.group(1)] = ctypes.c_int
    for line in cdef.splitlines():
        m = re.match(r"^typedef struct \w+ (\w+);$", line)
        if m:
            _named[m.group(1)] = (
                ctypes.c_void_p
            )  # opaque: only its pointer is used
            continue
        m = re.match(r"^typedef struct(?: \w+)? ?\{(.*)\} ?(\w+);$", line)
        if m:  # a struct with a layout (uva_buf_t): a ctypes Structure
            fields = []
            for f in m.group(1).split(";"):
                if f.strip():
                    fields += _fields(f.strip())
            st = type(m.group(2), (ctypes.Structure,), {"_fields_": fields})
            _named[m.group(2)] = st
            setattr(types, m.group(2), st)
            continue
        m = re.match(r"^typedef (.+?) \(\*(\w+)\)\((.*)\);$", line)
        if m:
            cb = ctypes.CFUNCTYPE(_ctype(m.group(1)), *_params(m.group(3)))
            _named[m.group(2)] = cb
            _callback_types.add(cb)
            setattr(types, m.group(2), cb)
            continue
        m = re.match(r"^(.+?)\b(uva_\w+)\((.*)\);$", line)
        if m:
            _prototypes[m.group(2)] = (_ctype(m.group(1)), _params(m.group(3)))


def load(path=None):
    """Open the library, declare every function, check uva_version()."""
    path = path or os.environ.get("UVASYNC_LIBRARY") or DEFAULT_LIBRARY
    lib = ctypes.CDLL(path)
    for name, (restype, argtypes) in _prototypes.items():
        fn = getattr(lib, name)
        fn.restype, fn.argtypes = restype, argtypes
    version = lib.uva_version()
    if version >> 16 != EXPECTED_VERSION >> 16 or version < EXPECTED_VERSION:
        raise ImportError(
            "uvasync: %s is version %#08x, expected %#08x"
            % (path, version, EXPECTED_VERSION)
        )
    lib.path = path
    return lib


with open(CDEF) as _f:
    _parse(_f.read())
