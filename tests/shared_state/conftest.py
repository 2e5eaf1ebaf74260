"""Fixtures of the shared-state tests: a real PostgreSQL server (see postgres_fixtures.py)."""

from __future__ import annotations

from postgres_fixtures import closing, log_url, postgres  # noqa: F401 - fixtures, used by name
