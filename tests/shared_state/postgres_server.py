"""A throw-away PostgreSQL server on loopback for the shared-state tests.

The Debian ``postgresql`` binaries (``initdb``, ``postgres``) start a cluster in a temporary
directory owned by the ``postgres`` user (the server refuses to run as root), on 127.0.0.1 and a
free port, with fsync on (the durability tests rely on committed meaning durable). ``start()``
returns the server; ``stop()`` removes it. Where the server cannot start (no binaries, no
``postgres`` user, not permitted) ``start()`` raises :class:`PostgresUnavailable` with the reason.

The server never outlives the run that started it (see :mod:`server_reaper`): it is a child of
the test process that gets SIGINT (fast shutdown) when that process dies, even by SIGKILL; it is
stopped at exit and on SIGTERM; and ``start()`` first removes the ``mixllm-pg-*`` directories of
runs that are gone. ``halt()`` and ``resume()`` stop and start it again on the same port (the
outage tests).
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import server_reaper

__all__ = ["PostgresServer", "PostgresUnavailable", "clean_stale", "find_bindir", "start"]


class PostgresUnavailable(RuntimeError):
    """The PostgreSQL server cannot start here; the message says why."""


def find_bindir() -> Path | None:
    """The directory of ``initdb`` and ``pg_ctl``: $MIXLLM_PG_BINDIR, PATH, or the newest
    /usr/lib/postgresql/*/bin."""
    env = os.environ.get("MIXLLM_PG_BINDIR")
    candidates = [Path(env)] if env else []
    initdb = shutil.which("initdb")
    if initdb:
        candidates.append(Path(initdb).parent)
    candidates += [Path(p) for p in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)]
    for c in candidates:
        if (c / "initdb").exists() and (c / "pg_ctl").exists():
            return c
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _postmaster_pid(root: Path) -> int | None:
    try:
        return int((root / "data" / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _kill_postmaster(root: Path, pid: int) -> None:
    os.kill(pid, signal.SIGQUIT)  # immediate shutdown: the run that owned it is gone
    deadline = time.monotonic() + 10
    while server_reaper.alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)


def clean_stale() -> list[Path]:
    """Remove the server directories (and stop the servers) of test runs that are gone."""
    return server_reaper.clean_stale("mixllm-pg-*", _postmaster_pid, _kill_postmaster)


@dataclass
class PostgresServer:
    """A running server: ``url`` is its SQLAlchemy URL (database ``mixllm``, user ``postgres``)."""

    bindir: Path
    root: Path
    port: int
    user: str | None  # the server's user when this process is root
    startup_s: float
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    _key: int = field(default=0, repr=False)

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/mixllm"

    def database(self, name: str) -> str:
        """A new, empty database ``name`` on this server; returns its URL."""
        import psycopg

        with psycopg.connect(
            f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres", autocommit=True
        ) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')  # type: ignore[arg-type]
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{name}"

    def resume(self, timeout_s: float = 60.0) -> None:
        """Start the server (again), on the same port and data; returns once it answers."""
        import psycopg

        options = [
            "-c",
            "listen_addresses=127.0.0.1",
            "-c",
            f"port={self.port}",
            "-c",
            f"unix_socket_directories={self.root}",
            "-c",
            "max_connections=200",
            "-c",
            "shared_buffers=64MB",
        ]
        with (self.root / "server.log").open("ab") as log:
            self.proc = subprocess.Popen(
                [str(self.bindir / "postgres"), "-D", str(self.root / "data"), *options],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                user=self.user,
                group=self.user,
                preexec_fn=server_reaper.die_with_parent(signal.SIGINT),
            )
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                psycopg.connect(
                    f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres "
                    "connect_timeout=2"
                ).close()
                return
            except psycopg.OperationalError as exc:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.halt()
                    raise PostgresUnavailable(f"the server did not answer: {exc}") from exc
                time.sleep(0.05)

    def _processes(self) -> list[int]:
        """The postmaster and its children (backends, background workers)."""
        if self.proc is None:
            return []
        found = [self.proc.pid]
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[-1].split()
            except OSError:
                continue
            if int(fields[1]) == self.proc.pid:
                found.append(int(stat.parent.name))
        return found

    def freeze(self) -> None:
        """Stop answering without closing connections (SIGSTOP): calls hang, none fails."""
        for pid in self._processes():
            os.kill(pid, signal.SIGSTOP)

    def thaw(self) -> None:
        for pid in self._processes():
            os.kill(pid, signal.SIGCONT)

    def halt(self) -> None:
        """Stop the server (fast shutdown: clients are disconnected); the data stays."""
        self.thaw()
        proc, self.proc = self.proc, None
        if proc is None:
            return
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def stop(self) -> None:
        """Stop the server and remove its directory."""
        server_reaper.unregister(self._key)
        self.halt()
        shutil.rmtree(self.root, ignore_errors=True)


def start() -> PostgresServer:
    """Start a fresh server; raises :class:`PostgresUnavailable` with the reason it cannot."""
    t0 = time.perf_counter()
    bindir = find_bindir()
    if bindir is None or not (bindir / "postgres").exists():
        raise PostgresUnavailable(
            "no PostgreSQL server binaries (initdb, postgres): install the Debian 'postgresql' "
            "package or set MIXLLM_PG_BINDIR"
        )
    clean_stale()
    root = Path(tempfile.mkdtemp(prefix="mixllm-pg-"))
    server_reaper.claim(root)
    as_user: list[str] = []
    user: str | None = None
    if os.geteuid() == 0:  # the server refuses to run as root: run it as 'postgres'
        try:
            pw = pwd.getpwnam("postgres")
        except KeyError as exc:
            shutil.rmtree(root, ignore_errors=True)
            raise PostgresUnavailable("running as root and there is no 'postgres' user") from exc
        os.chown(root, pw.pw_uid, pw.pw_gid)
        runuser = shutil.which("runuser")
        if runuser is None:
            shutil.rmtree(root, ignore_errors=True)
            raise PostgresUnavailable(
                "running as root and there is no runuser to drop to 'postgres'"
            )
        as_user, user = [runuser, "-u", "postgres", "--"], "postgres"
    port = _free_port()
    data = root / "data"
    server = PostgresServer(bindir, root, port, user, 0.0)
    try:
        subprocess.run(
            [
                *as_user,
                str(bindir / "initdb"),
                "-D",
                str(data),
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-locale",
                "--no-sync",
            ],
            check=True,
            capture_output=True,
            timeout=120,
        )
        server._key = server_reaper.register(server.stop)
        server.resume()
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as exc:
        detail = getattr(exc, "stderr", b"") or b""
        log = root / "server.log"
        tail = log.read_text(errors="replace")[-800:] if log.exists() else ""
        server.stop()
        raise PostgresUnavailable(
            f"the server did not start: {exc}; {detail.decode(errors='replace')[-800:]} {tail}"
        ) from exc
    except PostgresUnavailable:
        server.stop()
        raise
    server.database("mixllm")
    server.startup_s = time.perf_counter() - t0
    return server
