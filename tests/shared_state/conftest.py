"""Fixtures of the shared-state tests: real servers on loopback."""

from redis_fixture import redis_server, redis_url  # noqa: F401
