"""A real Redis server for the shared-state tests: session-scoped, on loopback, no persistence.

``redis_server`` starts ``redis-server`` (or ``valkey-server``) on 127.0.0.1 on a free port, in a
temporary directory, without RDB or AOF files, and stops it when the session ends; ``redis_url``
hands each test an empty database on it (restarted first if a test stopped it). Where neither
binary is on PATH the tests skip with the command that installs one, except in CI (``CI=true``),
where they fail: CI installs ``redis-server`` in ``.ci/run``.

The server never outlives the run (see :mod:`server_reaper`): it gets SIGTERM when the test
process dies, it is stopped at exit and on SIGTERM, and the ``mixllm-redis-*`` directories of
runs that are gone are removed (their servers stopped) before a new one starts.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import server_reaper

__all__ = ["RedisServer", "free_port", "redis_server", "redis_url"]

BINARIES = ("redis-server", "valkey-server")
PID_FILE = "server.pid"


def free_port() -> int:
    """A TCP port on 127.0.0.1 nothing listens on (now)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RedisServer:
    """One ``redis-server`` process; :meth:`stop` and :meth:`start` again keep the port."""

    def __init__(self, binary: str, directory: Path) -> None:
        self.binary = binary
        self.directory = directory
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.startup_s = 0.0

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as s:
                s.sendall(b"PING\r\n")
                return s.recv(64).startswith(b"+PONG")
        except OSError:
            return False

    def start(self, timeout_s: float = 10.0) -> None:
        t0 = time.perf_counter()
        args = ["--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.directory)]
        args += ["--save", "", "--appendonly", "no", "--daemonize", "no", "--loglevel", "warning"]
        self.proc = subprocess.Popen(
            [self.binary, *args],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            preexec_fn=server_reaper.die_with_parent(signal.SIGTERM),
        )
        (self.directory / PID_FILE).write_text(str(self.proc.pid))
        while not self.ping():
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode() if self.proc.stderr else ""
                raise RuntimeError(f"{self.binary} exited with {self.proc.returncode}: {err}")
            if time.perf_counter() - t0 > timeout_s:
                self.stop()
                raise RuntimeError(f"{self.binary} did not answer PING within {timeout_s}s")
            time.sleep(0.005)
        self.startup_s = time.perf_counter() - t0

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        proc.send_signal(signal.SIGCONT)  # in case a test froze it
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stderr is not None:
            proc.stderr.close()

    def freeze(self) -> None:
        """Stop answering without closing connections (SIGSTOP): calls hit their timeout."""
        if self.proc is not None:
            self.proc.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGCONT)

    def flush(self) -> None:
        with socket.create_connection(("127.0.0.1", self.port), timeout=2) as s:
            s.sendall(b"FLUSHALL\r\n")
            s.recv(64)


def _server_pid(directory: Path) -> int | None:
    try:
        return int((directory / PID_FILE).read_text())
    except (OSError, ValueError):
        return None


def _kill(directory: Path, pid: int) -> None:
    os.kill(pid, signal.SIGKILL)  # no persistence: nothing to shut down cleanly


def clean_stale() -> list[Path]:
    """Remove the directories (and stop the servers) of test runs that are gone."""
    return server_reaper.clean_stale("mixllm-redis-*", _server_pid, _kill)


def _binary() -> str:
    for name in BINARIES:
        found = shutil.which(name)
        if found:
            return found
    reason = (
        "redis-server is not on PATH: the shared-state tests need a real Redis "
        "(apt-get install redis-server, or valkey-server)"
    )
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(reason + "; CI must install it (.ci/run does)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    binary = _binary()
    clean_stale()
    with tempfile.TemporaryDirectory(prefix="mixllm-redis-") as directory:
        server_reaper.claim(Path(directory))
        server = RedisServer(binary, Path(directory))

        def stop_and_remove() -> None:  # at exit or on SIGTERM: the with block will not run
            server.stop()
            shutil.rmtree(directory, ignore_errors=True)

        key = server_reaper.register(stop_and_remove)
        try:
            server.start()
            yield server
        finally:
            server_reaper.unregister(key)
            server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """The URL of an empty database on the session's server (started again if it was stopped)."""
    redis_server.thaw()
    if redis_server.proc is None or redis_server.proc.poll() is not None:
        redis_server.start()
    redis_server.flush()
    return redis_server.url
