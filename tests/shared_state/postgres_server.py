"""A throw-away PostgreSQL server on loopback for the shared-state tests.

The Debian ``postgresql`` binaries (``initdb``, ``pg_ctl``) start a cluster in a temporary
directory owned by the ``postgres`` user (the server refuses to run as root), on 127.0.0.1 and a
free port, with fsync on (the durability tests rely on committed meaning durable). ``start()``
returns the server; ``stop()`` removes it. Where the server cannot start (no binaries, no
``postgres`` user, not permitted) ``start()`` raises :class:`PostgresUnavailable` with the reason.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = ["PostgresServer", "PostgresUnavailable", "find_bindir", "start"]


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


@dataclass
class PostgresServer:
    """A running server: ``url`` is its SQLAlchemy URL (database ``mixllm``, user ``postgres``)."""

    bindir: Path
    root: Path
    port: int
    as_user: list[str]
    startup_s: float

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

    def stop(self) -> None:
        subprocess.run(
            [
                *self.as_user,
                str(self.bindir / "pg_ctl"),
                "-D",
                str(self.root / "data"),
                "-m",
                "immediate",
                "-w",
                "stop",
            ],
            capture_output=True,
            timeout=60,
        )
        shutil.rmtree(self.root, ignore_errors=True)


def start() -> PostgresServer:
    """Start a fresh server; raises :class:`PostgresUnavailable` with the reason it cannot."""
    t0 = time.perf_counter()
    bindir = find_bindir()
    if bindir is None:
        raise PostgresUnavailable(
            "no PostgreSQL server binaries (initdb, pg_ctl): install the Debian 'postgresql' "
            "package or set MIXLLM_PG_BINDIR"
        )
    root = Path(tempfile.mkdtemp(prefix="mixllm-pg-"))
    as_user: list[str] = []
    if os.geteuid() == 0:  # the server refuses to run as root: run it as 'postgres'
        try:
            pw = pwd.getpwnam("postgres")
        except KeyError as exc:
            raise PostgresUnavailable("running as root and there is no 'postgres' user") from exc
        os.chown(root, pw.pw_uid, pw.pw_gid)
        runuser = shutil.which("runuser")
        if runuser is None:
            raise PostgresUnavailable(
                "running as root and there is no runuser to drop to 'postgres'"
            )
        as_user = [runuser, "-u", "postgres", "--"]
    port = _free_port()
    data = root / "data"
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
        options = (
            f"-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories="
            f"{root} -c max_connections=200 -c shared_buffers=64MB"
        )
        subprocess.run(
            [
                *as_user,
                str(bindir / "pg_ctl"),
                "-D",
                str(data),
                "-o",
                options,
                "-l",
                str(root / "server.log"),
                "-w",
                "-t",
                "60",
                "start",
            ],
            check=True,
            capture_output=True,
            timeout=90,
        )
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as exc:
        detail = getattr(exc, "stderr", b"") or b""
        log = root / "server.log"
        tail = log.read_text(errors="replace")[-800:] if log.exists() else ""
        shutil.rmtree(root, ignore_errors=True)
        raise PostgresUnavailable(
            f"the server did not start: {exc}; {detail.decode(errors='replace')[-800:]} {tail}"
        ) from exc
    server = PostgresServer(bindir, root, port, as_user, 0.0)
    server.database("mixllm")
    server.startup_s = time.perf_counter() - t0
    return server
