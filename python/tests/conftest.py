"""Shared fixtures. `aio` runs a test body against uvasync and, where the
behaviour is asyncio's, against CPython's asyncio too: the reference checks
our semantics, not only ourselves."""

import asyncio as _cpython_asyncio
import os

import pytest

import uvasync

# Tests import the installed package, never the source tree next to them.
assert not uvasync.__file__.startswith(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep
), "run the tests against the installed package (see scripts/test.sh)"

BOTH = [
    pytest.param(uvasync, id="uvasync"),
    pytest.param(_cpython_asyncio, id="asyncio"),
]


@pytest.fixture(params=BOTH)
def aio(request):
    """The module under test: uvasync, then CPython's asyncio."""
    return request.param


# An exception raised in __del__ or a callback that Python can only print
# ("Exception ignored in ...") is a bug: it fails the test that caused it.
_UNRAISABLE_IS_ERROR = pytest.mark.filterwarnings(
    "error::pytest.PytestUnraisableExceptionWarning"
)


def pytest_collection_modifyitems(items):
    for item in items:
        if not item.module.__name__.startswith("test_seed_"):
            item.add_marker(_UNRAISABLE_IS_ERROR)
