"""Fixtures of the real-provider tests: sockets off, fake OpenAI and Anthropic APIs."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from provider_fakes import anthropic_api, openai_api

# --doctest-modules would import this file as a module named "conftest", as it does the other
# conftest.py files: they clash. It holds no doctests; pytest loads it as a conftest anyway.
collect_ignore = ["conftest.py"]

__all__ = ["anthropic_api", "openai_api"]


@pytest.fixture(autouse=True)
def _no_network() -> Iterator[None]:
    """Sockets off (unix sockets stay on for asyncio's self-pipe): a request that escaped the
    fake transports would fail the test instead of reaching a provider."""
    from pytest_socket import disable_socket, enable_socket

    disable_socket(allow_unix_socket=True)
    yield
    enable_socket()
