"""Fixtures of the LangChain adapter tests: no network (the notebook test starts a kernel)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

# --doctest-modules would import this file as a module named "conftest", as it does the other
# adapter's conftest.py: the two clash. It holds no doctests; pytest loads it as a conftest anyway.
collect_ignore = ["conftest.py"]


@pytest.fixture(autouse=True)
def _no_network(request: pytest.FixtureRequest) -> Iterator[None]:
    """Sockets off (unix sockets stay on for asyncio), except where a kernel is started."""
    if request.node.path.name == "test_notebook.py":
        yield
        return
    from pytest_socket import disable_socket, enable_socket

    disable_socket(allow_unix_socket=True)
    yield
    enable_socket()
