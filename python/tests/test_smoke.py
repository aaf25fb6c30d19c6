"""The basics every other test builds on."""

import hashlib
import os

import pytest

REPO = os.path.dirname(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
)


def core_digest(root):
    """As python/build_ffi.py computes it when it builds the extension."""
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


def test_installed_extension_is_built_from_this_checkouts_core():
    """The package under test carries the core of this checkout, not one
    that an earlier build left in python/build."""
    if not os.path.exists(os.path.join(REPO, "src", "stream.cpp")):
        pytest.skip("not run from a checkout")
    from uvasync._ffi import ffi, lib

    assert ffi.string(lib._uvapy_core_digest()).decode() == core_digest(REPO)


def test_run_returns_the_result(aio):
    async def main():
        await aio.sleep(0)
        return 42

    assert aio.run(main()) == 42


def test_tasks_interleave_round_robin(aio):
    order = []

    async def worker(name):
        for i in range(3):
            order.append((name, i))
            await aio.sleep(0)

    async def main():
        await aio.gather(worker("a"), worker("b"), worker("c"))

    aio.run(main())
    assert order == [(n, i) for i in range(3) for n in "abc"]
