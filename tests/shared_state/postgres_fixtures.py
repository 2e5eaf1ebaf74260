"""The PostgreSQL fixtures: one server per test session, one fresh database per test.

Where the server cannot start here (no binaries, no ``postgres`` user, not permitted), the tests
that need it are skipped with the reason; under CI (``CI=true``) they fail instead, since CI
machines have the server.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from postgres_server import PostgresServer, PostgresUnavailable, start

T = TypeVar("T")
_IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer | str]:
    """The session's server, or the reason it could not start (a test then skips or fails)."""
    try:
        server = start()
    except PostgresUnavailable as exc:
        yield str(exc)
        return
    try:
        yield server
    finally:
        server.stop()


def _server(postgres: PostgresServer | str) -> PostgresServer:
    if isinstance(postgres, str):
        message = f"PostgreSQL could not start here: {postgres}"
        if _IN_CI:
            pytest.fail(message + " (CI=true: the server must run in CI)")
        pytest.skip(message)
    return postgres


@pytest.fixture
def closing() -> Iterator[Callable[[T], T]]:
    """``closing(x)`` returns ``x`` and closes it when the test ends: a database connection
    left to the garbage collector warns, and warnings are errors here."""
    opened: list[Any] = []

    def track(x: T) -> T:
        opened.append(x)
        return x

    yield track
    for x in reversed(opened):
        x.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def log_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A URL of a new, empty log: a SQLite file, or a database on the session's server."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'routing.db'}"
    server = _server(request.getfixturevalue("postgres"))
    return server.database(f"t_{uuid.uuid4().hex[:12]}")
