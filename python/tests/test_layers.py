"""The package's import layers (issue 23 item 2): no module imports
another of the package inside a function, the import graph has no cycle,
and every module imports first in a fresh interpreter."""

import ast
import os
import subprocess
import sys

import uvasync

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(uvasync.__file__)))
PACKAGES = ("uvasync", "uasyncio")


def modules():
    """{"pkg.module": path} for every module of both packages."""
    found = {}
    for pkg in PACKAGES:
        for name in sorted(os.listdir(os.path.join(ROOT, pkg))):
            if name.endswith(".py") and name != "__init__.py":
                found[pkg + "." + name[:-3]] = os.path.join(ROOT, pkg, name)
    return found


def package_imports(mod, path):
    """[(target module, at top level?)] for the package imports of `mod`."""
    pkg = mod.split(".")[0]
    with open(path) as f:
        tree = ast.parse(f.read())
    top = set(id(node) for node in tree.body)
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.ImportFrom):
            continue
        if node.level:
            base = pkg + ("." + node.module if node.module else "")
        elif (node.module or "").split(".")[0] in PACKAGES:
            base = node.module
        else:
            continue
        if node.module:
            targets = [base]
        else:  # from . import a, b
            targets = [base + "." + alias.name for alias in node.names]
        for target in targets:
            found.append((target, id(node) in top))
    return found


def test_no_function_level_package_imports():
    lazy = [
        (mod, target)
        for mod, path in modules().items()
        for target, at_top in package_imports(mod, path)
        if not at_top
    ]
    assert lazy == []


def test_no_import_cycle():
    mods = modules()
    edges = {
        mod: set(t for t, _ in package_imports(mod, path) if t in mods)
        for mod, path in mods.items()
    }

    def reachable(start):
        seen, todo = set(), [start]
        while todo:
            for nxt in edges[todo.pop()]:
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        return seen

    assert [mod for mod in mods if mod in reachable(mod)] == []


def test_each_module_imports_first():
    for mod in modules():
        r = subprocess.run(
            [sys.executable, "-c", "import " + mod],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert r.returncode == 0, (mod, r.stderr)
