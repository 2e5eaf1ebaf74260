"""Fixtures of the shared-state tests: real Redis and PostgreSQL servers on loopback."""

from __future__ import annotations

from postgres_fixtures import closing, log_url, postgres  # noqa: F401 - fixtures, used by name
from redis_fixture import redis_server, redis_url  # noqa: F401
