"""uvasync/_cext.pyi describes the module the extension makes
(python/csrc/module.c): every name it lists exists there, and every name
the module and its types define is in it."""

import ast
import os

import uvasync._ffi  # noqa: F401  (makes uvasync._cext)
from uvasync import _cext

STUB = os.path.join(
    os.path.dirname(os.path.abspath(uvasync._ffi.__file__)), "_cext.pyi"
)


def stub_names():
    """{top-level name: None for a function, or the set of its names for a
    class} as the stub declares them."""
    with open(STUB) as f:
        tree = ast.parse(f.read())
    out = {}
    for node in tree.body:
        if isinstance(node, ast.FunctionDef):
            out[node.name] = None
        elif isinstance(node, ast.ClassDef):
            members = set()
            for item in node.body:
                if isinstance(item, ast.FunctionDef):
                    members.add(item.name)
                elif isinstance(item, ast.AnnAssign):
                    members.add(item.target.id)
            out[node.name] = members
    return out


def test_stub_and_module_name_the_same_things():
    stub = stub_names()
    module = {n for n in vars(_cext) if not n.startswith("__")}
    assert set(stub) == module


def test_stub_functions_are_functions_and_classes_types():
    for name, members in stub_names().items():
        obj = getattr(_cext, name)
        if members is None:
            assert callable(obj) and not isinstance(obj, type), name
        else:
            assert isinstance(obj, type), name
            assert obj.__module__ == "uvasync._cext", name


def test_stub_classes_list_what_each_type_defines():
    for name, members in stub_names().items():
        if members is None:
            continue
        own = set(vars(getattr(_cext, name))) - {"__doc__"}
        if "__new__" not in members:  # PyType_GenericNew: nothing to say
            own.discard("__new__")
        assert members == own, name


def test_the_module_is_the_one_the_package_imports():
    import sys

    assert sys.modules["uvasync._cext"] is _cext
    assert _cext.__name__ == "uvasync._cext"


def test_the_module_is_an_attribute_of_the_package():
    """As the import system leaves any submodule: `import uvasync._cext`
    then `uvasync._cext` works."""
    import uvasync
    import uvasync._cext  # noqa: F401

    assert uvasync._cext is _cext
