"""`SQLLog`: the routing log on a database through SQLAlchemy Core (SQLite, PostgreSQL, ...).

``MixLLMRouter(log="postgresql+psycopg://user@host/db")`` (or ``"sqlite:///path"``) builds one.
Several processes on several hosts share one log: every replica's decisions, outcomes and
feedback go to the same tables, so any replica can take feedback on another's decision, and each
router folds every replica's feedback into its online heads (``router.sync()``).

Durability is today's: each write is one transaction, committed before the call returns
(PostgreSQL with its default ``synchronous_commit=on``; SQLite in WAL mode), with one exception
for routing while the database is away (below).

**When the database does not answer** (stopped, unreachable, locked past the timeout), routing
fails open: ``route`` still returns its decision, and the decision (and any outcome recorded on it)
waits in a bounded in-memory buffer, in order, until the database answers again; then it is written
once. A write whose commit went through but whose answer was lost (the connection cut after
``COMMIT``) is sent again, and a row already there is not written twice: decisions by their id,
outcomes by the ``outcome_id`` each one gets when it is recorded. The first failure of an outage is
logged (``logging.warning``, logger ``mixllm_core.sqllog``), not every call; for ``retry_after_s``
after a failure no call touches the network (routes buffer, a background thread retries); the first
success after it is logged (``logging.info``). Everything else (feedback, reads, ``sync``, leases,
publishing) raises :class:`~mixllm_core.errors.LogUnavailableError`, which names the URL (no
password) and records nothing: feedback keeps the contract above (acknowledged means committed, its
id is the database's, every replica folds it once, in id order), so the caller gives it again once
the database answers; the decision it names is kept meanwhile. A background sync started by a route
swallows the error (the outage was logged once). A full buffer (``max_pending`` rows or
``max_pending_bytes``) drops the newest decisions and says so once; a process that ends during an
outage loses its buffer (``close`` tries once more and says how many rows it could not write).
Connections time out after a few seconds (PostgreSQL ``connect_timeout=2``, ``tcp_user_timeout``;
SQLite ``timeout=5``; the URL's own query parameters win), and a route's write to PostgreSQL (with
the pool's liveness ping before it) takes at most ``write_timeout_s`` (1 s): past it the
connection's socket is cut, which a server that hangs without closing its connections would
otherwise never do (feedback and reads still wait for such a server).

Feedback ids (``seq``) are assigned in commit order: on PostgreSQL a feedback insert takes a
transaction-scoped advisory lock before its id, on SQLite one writer holds the database at a time.
So once a reader sees id ``n``, every feedback with a smaller id is visible too or will never
exist; a router that folded every id up to ``n`` has folded the whole prefix, and reads the rows
after it next time.

Schema (``schema_version`` in the ``meta`` table, migrated on open): ``decisions`` (as
:class:`~mixllm_core.log.SQLiteLog`'s, plus a nullable ``propensity``), ``feedback``,
``outcomes`` (as :class:`~mixllm_core.log.SQLiteLog`'s, plus ``outcome_id``: a random id the
writer gives each row, unique, so a row sent twice is written once; several outcomes of one
decision, e.g. a failed call and its retry, are each kept; NULL in rows written before version 3
or by :class:`~mixllm_core.log.SQLiteLog`), ``meta``; ``leases`` (who runs the coordinated
refit, until when);
``router_states`` and ``router_state_files`` (published router versions, the files of a saved
router directory as bytes). A file written by :class:`~mixllm_core.log.SQLiteLog` opens and is
migrated in place.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import os
import socket
import threading
import time
import uuid
from collections import deque
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import numpy as np

from .decision import RoutingDecision
from .errors import (
    ConfigError,
    FeedbackError,
    LogUnavailableError,
    MissingDependencyError,
    hide_url_secrets,
)
from .log import LoggedDecision, LoggedFeedback, RoutingLog, plausible_id, text_sha256
from .text import storable_text

try:
    import sqlalchemy as sa
    from sqlalchemy.engine import Connection, Engine
except ImportError as exc:  # pragma: no cover - the extra is installed in CI
    raise MissingDependencyError(
        "A database URL as log= needs SQLAlchemy: pip install 'mixllm[shared]'."
    ) from exc

__all__ = ["SCHEMA_VERSION", "SQLLog"]

logger = logging.getLogger(__name__)

#: Version of the tables below; a log written by a newer mixllm is refused.
SCHEMA_VERSION = 3
#: Rows per page when the log is read in order (refit, sync): memory stays bounded.
PAGE_ROWS = 2000
#: Key of the PostgreSQL advisory locks (feedback ids in commit order, migrations).
_LOCK_FEEDBACK, _LOCK_MIGRATE = 7_461_001, 7_461_002
#: Published router versions kept (the newest ones); older ones are deleted on publish.
KEEP_STATES = 2
#: Pending rows written per transaction when the database answers again.
FLUSH_ROWS = 500
#: Bytes counted per pending row beyond its prompt and representation.
_ROW_OVERHEAD = 400

_meta = sa.MetaData()
_Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")  # SQLite: INTEGER PRIMARY KEY
_Real: sa.Double[float] = sa.Double()
meta_table = sa.Table(
    "meta", _meta, sa.Column("key", sa.Text, primary_key=True), sa.Column("value", sa.Text)
)
decisions = sa.Table(
    "decisions",
    _meta,
    sa.Column("decision_id", sa.Text, primary_key=True),
    sa.Column("time", _Real),
    sa.Column("llm", sa.Text),
    sa.Column("lam", _Real),
    sa.Column("predicted_quality", _Real),
    sa.Column("offline_quality", _Real),
    sa.Column("predicted_cost", _Real),
    sa.Column("query", sa.Text),
    sa.Column("x", sa.LargeBinary),
    sa.Column("candidates", sa.Text),
    sa.Column("query_hash", sa.Text),
    sa.Column("propensity", _Real, nullable=True),
)
feedback_table = sa.Table(
    "feedback",
    _meta,
    sa.Column("seq", _Id, primary_key=True, autoincrement=True),
    sa.Column("decision_id", sa.Text, unique=True),
    sa.Column("time", _Real),
    sa.Column("llm", sa.Text),
    sa.Column("score", _Real),
    sa.Column("kind", sa.Text),
    sa.Column("applied", sa.Integer),
    sa.Column("reason", sa.Text),
    sqlite_autoincrement=True,
)
outcomes = sa.Table(
    "outcomes",
    _meta,
    sa.Column("seq", _Id, primary_key=True, autoincrement=True),
    sa.Column("decision_id", sa.Text),
    sa.Column("time", _Real),
    sa.Column("latency_s", _Real),
    sa.Column("cost", _Real),
    sa.Column("input_tokens", sa.Integer),
    sa.Column("output_tokens", sa.Integer),
    sa.Column("error", sa.Text),
    sa.Column("outcome_id", sa.Text, nullable=True),  # added by version 3 (see _migrate)
    sa.Index("outcomes_outcome_id", "outcome_id", unique=True),
    sqlite_autoincrement=True,
)
leases = sa.Table(
    "leases",
    _meta,
    sa.Column("name", sa.Text, primary_key=True),
    sa.Column("holder", sa.Text, nullable=False),
    sa.Column("expires", _Real, nullable=False),
)
router_states = sa.Table(
    "router_states",
    _meta,
    sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("time", _Real),
    sa.Column("feedback_seq", sa.BigInteger),
    sa.Column("holder", sa.Text),
    sa.Column("base", sa.Text),  # the saved directory the version descends from
)
router_state_files = sa.Table(
    "router_state_files",
    _meta,
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("path", sa.Text, primary_key=True),
    sa.Column("data", sa.LargeBinary),
)


def _sqlite_engine(url: sa.URL) -> Engine:
    args: dict[str, Any] = {"check_same_thread": False}
    if "timeout" not in url.query:  # seconds a writer waits for another one's lock
        args["timeout"] = 5.0
    engine = sa.create_engine(url, connect_args=args)

    @sa.event.listens_for(engine, "connect")
    def _connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # transactions are begun below, not by the driver
        dbapi_conn.execute("PRAGMA journal_mode=WAL")
        # WAL + NORMAL: a committed write survives the process dying (not a power cut)
        dbapi_conn.execute("PRAGMA synchronous=NORMAL")

    @sa.event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:  # a writer takes the database at BEGIN: no upgrade
        write = conn.get_execution_options().get("mixllm_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    return engine


def _engine(url: str) -> Engine:
    try:
        parsed = sa.make_url(url)
        parsed.port  # noqa: B018 - a port that is not a number raises here, not at connect
    except (sa.exc.ArgumentError, ValueError) as exc:
        raise ConfigError(
            f"log={hide_url_secrets(url)!r} is not a database URL ({hide_url_secrets(str(exc))}); "
            "use e.g. 'sqlite:///routing.db' or 'postgresql+psycopg://user@host:5432/dbname', "
            "or a file path."
        ) from None
    try:
        if parsed.get_backend_name() == "sqlite":
            return _sqlite_engine(parsed)
        options: dict[str, Any] = {"pool_pre_ping": True}
        if parsed.get_backend_name() == "postgresql":
            # a client that dies inside a transaction must not hold the feedback lock for long
            args: dict[str, Any] = {"options": "-c idle_in_transaction_session_timeout=60000"}
            # short timeouts: a route must not hang on a database that went away
            defaults = {"connect_timeout": 2, "tcp_user_timeout": 5000}
            args.update({k: v for k, v in defaults.items() if k not in parsed.query})
            options["connect_args"] = args
        return sa.create_engine(parsed, **options)
    except (ImportError, sa.exc.NoSuchModuleError) as exc:
        raise MissingDependencyError(
            f"No driver for {parsed.drivername!r} ({exc}); for PostgreSQL: pip install "
            "'mixllm[shared]' (psycopg 3) and use a 'postgresql+psycopg://' URL."
        ) from exc


def _outage(exc: BaseException) -> bool:
    """Whether ``exc`` says the database does not answer (rather than refusing a statement)."""
    if isinstance(exc, sa.exc.DBAPIError):
        return exc.connection_invalidated or isinstance(
            exc, (sa.exc.OperationalError, sa.exc.InterfaceError)
        )
    return isinstance(exc, (sa.exc.TimeoutError, sa.exc.DisconnectionError))


def _reason(exc: BaseException | None) -> str:
    if exc is None:
        return "no answer"
    inner = getattr(exc, "orig", None) or exc
    text = str(inner).strip().splitlines()
    return hide_url_secrets(f"{type(inner).__name__}: {text[0] if text else ''}"[:300])


class _Watchdog:
    """Cuts the socket of a write that runs past its deadline, so the call fails at once.

    A PostgreSQL server that hangs without closing its connections (stopped, or its host gone
    while the kernel still answers) never fails a query: no driver timeout fires. The route
    registers its connection's socket with a deadline before the write; one daemon thread looks
    every ``tick_s`` and shuts down the sockets past theirs (the driver then raises, the
    connection is dropped, the row is kept for later). Registering is a dict entry: no thread
    handoff on the route's path.
    """

    def __init__(self, tick_s: float) -> None:
        self.tick_s = tick_s
        self._lock = threading.Lock()  # held while a socket is cut: it cannot close meanwhile
        self._watched: dict[int, tuple[float, int]] = {}
        self._keys = itertools.count()
        self._pid = 0

    @contextmanager
    def watch(self, fd: int | None, timeout_s: float) -> Iterator[None]:
        """Cut socket ``fd`` when the block runs past ``timeout_s`` (None: no socket known)."""
        if fd is None:
            yield
            return
        key = next(self._keys)
        with self._lock:
            self._watched[key] = (time.monotonic() + timeout_s, fd)
            if self._pid != os.getpid():  # first use in this process (or after a fork)
                self._pid = os.getpid()
                threading.Thread(target=self._run, name="mixllm-log-watchdog", daemon=True).start()
        try:
            yield
        finally:
            with self._lock:
                self._watched.pop(key, None)

    def _run(self) -> None:
        while True:
            time.sleep(self.tick_s)
            now = time.monotonic()
            with self._lock:
                for key, (deadline, fd) in list(self._watched.items()):
                    if now >= deadline:
                        del self._watched[key]
                        with contextlib.suppress(OSError):
                            sock = socket.socket(fileno=os.dup(fd))
                            try:
                                sock.shutdown(socket.SHUT_RDWR)
                            finally:
                                sock.close()


def _socket_of(dbapi_conn: Any) -> int | None:
    """The file descriptor of a driver connection's socket (psycopg; None for other drivers)."""
    try:
        fd = dbapi_conn.pgconn.socket
    except Exception:  # noqa: BLE001 - another driver, or a closed connection
        return None
    return fd if isinstance(fd, int) and fd >= 0 else None


def _logged(r: Any) -> LoggedFeedback:
    return LoggedFeedback(
        int(r.seq),
        r.decision_id,
        r.llm,
        float(r.score),
        r.kind,
        bool(r.applied),
        r.query,
        np.frombuffer(r.x, dtype=np.float32),
        float(r.offline_quality),
        None if r.propensity is None else float(r.propensity),
        r.query_hash,
    )


class SQLLog(RoutingLog):
    """The routing log in a SQL database, shared by every router that opens the same URL.

    Args:
        url: A SQLAlchemy URL: ``"sqlite:///path/routing.db"``,
            ``"postgresql+psycopg://user:password@host:5432/dbname"``.
        store_prompts: Keep prompt texts (True, the default) or only their sha256.
        max_pending: Rows (decisions, outcomes) kept in memory while the database does not
            answer (see the module docstring); beyond them new decisions are not logged.
        max_pending_bytes: The same bound on their prompts and representations, in bytes.
        retry_after_s: After a failure, calls do not touch the network for this long.
        write_timeout_s: How long a route's write to PostgreSQL may take (a server that hangs);
            past it the connection is cut and the decision is kept for later.

    Raises:
        ConfigError: ``url`` is not a database URL, or the database holds a log written by a
            newer mixllm, or a bound is not a positive number.
        MissingDependencyError: no driver for the URL's database.
        LogUnavailableError: the database does not answer.

    Example:
        >>> import tempfile, pathlib
        >>> log = SQLLog(f"sqlite:///{pathlib.Path(tempfile.mkdtemp()) / 'routing.db'}")
        >>> log.has_feedback("nope"), log.get_meta("schema_version"), log.up, log.pending
        (False, '3', True, 0)
    """

    shared = True

    def __init__(
        self,
        url: str,
        *,
        store_prompts: bool = True,
        max_pending: int = 100_000,
        max_pending_bytes: int = 256 << 20,
        retry_after_s: float = 1.0,
        write_timeout_s: float = 1.0,
    ) -> None:
        if not isinstance(store_prompts, bool):
            raise ConfigError(f"store_prompts must be True or False, got {store_prompts!r}.")
        for name, value in (("max_pending", max_pending), ("max_pending_bytes", max_pending_bytes)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"SQLLog.{name} must be an int >= 1, got {value!r}.")
        for name, seconds, least in (
            ("retry_after_s", retry_after_s, 0.0),
            ("write_timeout_s", write_timeout_s, 1e-3),
        ):
            if (
                isinstance(seconds, bool)
                or not isinstance(seconds, (int, float))
                or not least <= seconds < float("inf")
            ):
                raise ConfigError(
                    f"SQLLog.{name} must be a finite number of seconds >= {least:g}, "
                    f"got {seconds!r}."
                )
        self.store_prompts = store_prompts
        self.max_pending = max_pending
        self.max_pending_bytes = max_pending_bytes
        self.retry_after_s = float(retry_after_s)
        self.write_timeout_s = float(write_timeout_s)
        self.engine = _engine(url)
        self.url = hide_url_secrets(self.engine.url.render_as_string(hide_password=True))
        self.dialect = self.engine.dialect.name
        #: Whether the database answered the last call (as far as this process knows).
        self.up = True
        #: Rows not logged because the pending buffer was full (since the log was opened).
        self.dropped = 0
        self._dropped_before = 0  # ``dropped`` when the current outage began
        self._state = threading.Lock()  # guards the fields below
        self._flushing = threading.Lock()  # one writer of the pending rows at a time
        self._pending: deque[tuple[sa.Table, dict[str, Any], int]] = deque()
        self._pending_decisions: dict[str, dict[str, Any]] = {}
        self._pending_bytes = 0
        self._retry_at = 0.0
        self._down_since = 0.0
        self._last_error: BaseException | None = None
        self._closed = False
        self._watchdog = _Watchdog(min(0.1, self.write_timeout_s / 4))
        if self.dialect == "postgresql":  # the pool's liveness ping is bounded the same way
            ping = self.engine.dialect.do_ping

            def bounded_ping(dbapi_conn: Any) -> bool:
                with self._watchdog.watch(_socket_of(dbapi_conn), self.write_timeout_s):
                    return ping(dbapi_conn)

            setattr(self.engine.dialect, "do_ping", bounded_ping)  # noqa: B010 - on this engine only
        try:
            self._migrate()
        except BaseException as exc:
            self.engine.dispose()
            if _outage(exc):
                raise self._unavailable(exc, opening=True) from exc
            if isinstance(exc, sa.exc.DBAPIError):  # a bad URL parameter, no permission, ...
                raise ConfigError(
                    f"The routing log at {self.url} cannot be opened ({_reason(exc)}): check the "
                    "URL's parameters and that its user may create tables there."
                ) from exc
            raise

    # ------------------------------------------------------------------ connections
    @property
    def pending(self) -> int:
        """Rows waiting in memory for the database to answer again."""
        return len(self._pending)

    def _write(self) -> Connection:
        """A connection whose transaction (``with conn.begin()``) may write."""
        return self.engine.connect().execution_options(mixllm_write=True)

    def _unavailable(
        self, exc: BaseException | None, *, opening: bool = False
    ) -> LogUnavailableError:
        if opening:
            return LogUnavailableError(
                f"The routing log at {self.url} does not answer ({_reason(exc)}), so it cannot "
                "be opened. Check that the database runs and that this host reaches it, then "
                "open it again."
            )
        return LogUnavailableError(
            f"The routing log at {self.url} does not answer ({_reason(exc)}). Nothing was "
            "recorded by this call: give it again once the database answers (routes go on; "
            f"their decisions wait in memory, {self.pending} now, and are written then). "
            "Check that the database runs and that this host reaches it."
        )

    @contextmanager
    def _connect(self, *, write: bool = False) -> Iterator[Connection]:
        """A connection after the pending rows are written; an outage raises
        :class:`LogUnavailableError` (at once while ``retry_after_s`` has not passed)."""
        if not self.up and time.monotonic() < self._retry_at:
            raise self._unavailable(self._last_error)
        try:
            self._flush()
            with self._write() if write else self.engine.connect() as conn:
                yield conn
        except Exception as exc:
            if not _outage(exc):
                raise
            self._failed(exc)
            raise self._unavailable(exc) from exc
        self._recovered()

    def _failed(self, exc: BaseException) -> None:
        with self._state:
            now = time.monotonic()
            self._retry_at = now + self.retry_after_s
            self._last_error = exc
            if not self.up:
                return
            self.up = False
            self._down_since = now
            self._dropped_before = self.dropped
        logger.warning(
            "The routing log at %s does not answer (%s); routing goes on, decisions wait in "
            "memory (up to %d), retrying every %gs.",
            self.url,
            _reason(exc),
            self.max_pending,
            self.retry_after_s,
        )

    def _recovered(self) -> None:
        with self._state:
            if self.up:
                return
            self.up = True
            down = time.monotonic() - self._down_since
            dropped = self.dropped - self._dropped_before
        logger.info(
            "The routing log at %s answers again after %.1fs; buffered rows written%s.",
            self.url,
            down,
            f", {dropped} decisions were not logged (buffer full)" if dropped else "",
        )

    def _insert(self, table: sa.Table) -> Any:
        """An insert of ``table`` rows; a decision or outcome already written (same
        ``decision_id``, same ``outcome_id``) is skipped: a resend."""
        if table not in (decisions, outcomes) or self.dialect not in ("postgresql", "sqlite"):
            return sa.insert(table)
        if self.dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as pg_insert

            return pg_insert(table).on_conflict_do_nothing()
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        return sqlite_insert(table).on_conflict_do_nothing()

    def _append(self, table: sa.Table, row: dict[str, Any]) -> None:
        """Write ``row`` now, or keep it for later when the database is away (fail open).

        Over the network the write may take at most ``write_timeout_s``: past it its socket is
        cut (:class:`_Watchdog`), the database counts as away and the row is kept for later.
        """
        if not self._pending and self.up and self._write_row(table, row) is None:
            return
        self._keep(table, row)

    def _write_row(self, table: sa.Table, row: dict[str, Any]) -> BaseException | None:
        """Write ``row`` in one transaction: None when done, the error when the database is
        away (nothing written); any other error is raised."""
        try:
            with self._write() as conn:
                fd = _socket_of(conn.connection.dbapi_connection)
                with self._watchdog.watch(fd, self.write_timeout_s), conn.begin():
                    conn.execute(self._insert(table), row)
        except Exception as exc:
            if not _outage(exc):
                raise
            self._failed(exc)
            return exc
        return None

    def _keep(self, table: sa.Table, row: dict[str, Any]) -> None:
        """Keep ``row`` in the pending buffer (or drop it when the buffer is full)."""
        size = len(row.get("query") or "") * 4 + len(row.get("x") or b"") + _ROW_OVERHEAD
        with self._state:
            if (
                len(self._pending) >= self.max_pending
                or self._pending_bytes + size > self.max_pending_bytes
            ):
                self.dropped += 1
                first = self.dropped == self._dropped_before + 1  # once per outage
            else:
                first = False
                self._pending.append((table, row, size))
                self._pending_bytes += size
                if table is decisions:
                    self._pending_decisions[row["decision_id"]] = row
        if first:
            logger.warning(
                "The routing log at %s does not answer and %d rows wait already: new decisions "
                "are not logged until it answers (feedback on them will be refused).",
                self.url,
                self.max_pending,
            )
        self._retry_in_background()

    def _retry_in_background(self) -> None:
        """Start a thread that writes the pending rows, once ``retry_after_s`` has passed."""
        with self._state:
            if self._closed or time.monotonic() < self._retry_at or self._flushing.locked():
                return
            self._retry_at = time.monotonic() + self.retry_after_s

        def run() -> None:
            try:
                self._flush()
            except Exception as exc:
                if not _outage(exc):
                    logger.warning("Writing the buffered routing log rows failed.", exc_info=True)
                self._failed(exc)
                return
            self._recovered()

        threading.Thread(target=run, name="mixllm-log-flush", daemon=True).start()

    def _flush(self) -> None:
        """Write the pending rows in order, :data:`FLUSH_ROWS` a transaction (raises the
        database's error when it is away; what was written stays written)."""
        if not self._pending:
            return
        with self._flushing:
            while not self._closed:  # after close() the engine is gone
                with self._state:
                    batch = list(itertools.islice(self._pending, FLUSH_ROWS))
                if not batch:
                    return
                with self._write() as conn, conn.begin():
                    for table, group in itertools.groupby(batch, key=lambda item: item[0]):
                        conn.execute(self._insert(table), [row for _, row, _ in group])
                with self._state:
                    for table, row, size in batch:
                        self._pending.popleft()
                        self._pending_bytes -= size
                        if table is decisions:
                            self._pending_decisions.pop(row["decision_id"], None)

    def _text(self, text: str) -> str:
        """``text`` as the database stores it: valid UTF-8, and on PostgreSQL (whose text holds
        no NUL) each NUL as U+FFFD too. The sha256 logged beside a prompt is of the original."""
        text = storable_text(text)
        return text.replace("\x00", "\ufffd") if self.dialect == "postgresql" else text

    def _lock(self, conn: Connection, key: int) -> None:
        if self.dialect == "postgresql":
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": key})

    def _migrate(self) -> None:
        with self._write() as conn, conn.begin():
            self._lock(conn, _LOCK_MIGRATE)  # replicas starting at once migrate one by one
            _meta.create_all(conn, checkfirst=True)
            row = conn.execute(
                sa.select(meta_table.c.value).where(meta_table.c.key == "schema_version")
            ).first()
            found = int(row[0]) if row is not None else 1
            if found > SCHEMA_VERSION:
                raise ConfigError(
                    f"The log at {self.url} has schema version {found}; this mixllm reads up to "
                    f"{SCHEMA_VERSION}. Upgrade mixllm."
                )
            columns = {c["name"] for c in sa.inspect(conn).get_columns("decisions")}
            for name in ("query_hash", "propensity"):  # added by version 1 and 2
                if name not in columns:
                    kind = "TEXT" if name == "query_hash" else "DOUBLE PRECISION"
                    conn.exec_driver_sql(f"ALTER TABLE decisions ADD COLUMN {name} {kind}")
            if found < 3:  # version 3: outcome ids (old rows keep NULL, which never collide)
                inspector = sa.inspect(conn)
                if "outcome_id" not in {c["name"] for c in inspector.get_columns("outcomes")}:
                    conn.exec_driver_sql("ALTER TABLE outcomes ADD COLUMN outcome_id TEXT")
                indexes = {i["name"] for i in inspector.get_indexes("outcomes")}
                if "outcomes_outcome_id" not in indexes:
                    conn.exec_driver_sql(
                        "CREATE UNIQUE INDEX outcomes_outcome_id ON outcomes (outcome_id)"
                    )
            if found != SCHEMA_VERSION:
                self._upsert(conn, "schema_version", str(SCHEMA_VERSION))

    def _upsert(self, conn: Connection, key: str, value: str) -> None:
        done = conn.execute(
            sa.update(meta_table).where(meta_table.c.key == key).values(value=value)
        ).rowcount
        if not done:
            conn.execute(sa.insert(meta_table).values(key=key, value=value))

    # ------------------------------------------------------------------ the RoutingLog interface
    def add_decision(
        self,
        decision: RoutingDecision,
        query: str,
        x: np.ndarray,
        offline_quality: float,
        query_hash: str | None = None,
    ) -> None:
        row = {
            "decision_id": decision.decision_id,
            "time": decision.created_at,
            "llm": decision.llm,
            "lam": decision.lam,
            "predicted_quality": decision.predicted_quality,
            "offline_quality": offline_quality,
            "predicted_cost": decision.predicted_cost,
            "query": self._text(query) if self.store_prompts else None,
            "x": np.asarray(x, dtype=np.float32).tobytes(),
            "candidates": json.dumps(decision.to_dict()["candidates"]),
            "query_hash": query_hash or text_sha256(query),
            "propensity": decision.propensity,
        }
        self._append(decisions, row)

    def get_decision(self, decision_id: str) -> LoggedDecision | None:
        if not plausible_id(decision_id):
            return None
        with self._state:
            pending = self._pending_decisions.get(decision_id)
        if pending is not None:  # routed while the database was away: not written yet
            x = np.frombuffer(pending["x"], dtype=np.float32)
            return LoggedDecision(
                decision_id,
                pending["llm"],
                pending["query"],
                x,
                pending["offline_quality"],
                pending["propensity"],
                pending["query_hash"],
            )
        d = decisions.c
        with self._connect() as conn:
            row = conn.execute(
                sa.select(
                    d.decision_id,
                    d.llm,
                    d.query,
                    d.x,
                    d.offline_quality,
                    d.propensity,
                    d.query_hash,
                ).where(d.decision_id == decision_id)
            ).first()
        if row is None:
            return None
        return LoggedDecision(
            row[0],
            row[1],
            row[2],
            np.frombuffer(row[3], dtype=np.float32),
            float(row[4]),
            None if row[5] is None else float(row[5]),
            row[6],
        )

    def add_feedback(
        self, decision_id: str, llm: str, score: float, kind: str, applied: bool, reason: str = ""
    ) -> int:
        row = {
            "decision_id": decision_id,
            "time": time.time(),
            "llm": llm,
            "score": score,
            "kind": kind,
            "applied": int(applied),
            "reason": reason,
        }
        try:
            with self._connect(write=True) as conn, conn.begin():
                self._lock(conn, _LOCK_FEEDBACK)  # ids in commit order (see the module doc)
                result = conn.execute(sa.insert(feedback_table), row)
                key = result.inserted_primary_key
                if key is None:  # pragma: no cover - every dialect here returns it
                    raise FeedbackError(f"The log gave no id to the feedback on {decision_id!r}.")
                return int(key[0])
        except sa.exc.IntegrityError as exc:  # two callers raced past has_feedback()
            raise FeedbackError(f"Decision {decision_id!r} already received feedback.") from exc

    def has_feedback(self, decision_id: str) -> bool:
        if not plausible_id(decision_id):
            return False
        f = feedback_table.c
        with self._connect() as conn:
            row = conn.execute(sa.select(f.seq).where(f.decision_id == decision_id)).first()
        return row is not None

    def add_outcome(self, decision_id: str, **fields: Any) -> None:
        error = fields.get("error")
        row = {
            "decision_id": decision_id,
            "time": time.time(),
            "latency_s": fields.get("latency_s"),
            "cost": fields.get("cost"),
            "input_tokens": fields.get("input_tokens"),
            "output_tokens": fields.get("output_tokens"),
            "error": None if error is None else self._text(str(error)),
            "outcome_id": uuid.uuid4().hex,  # made before the first try: a resend keeps it
        }
        self._append(outcomes, row)

    def feedback_page(self, since_seq: int, limit: int = PAGE_ROWS) -> list[LoggedFeedback]:
        """Up to ``limit`` feedback rows with ids above ``since_seq``, in id order."""
        f, d = feedback_table.c, decisions.c
        query = (
            sa.select(
                f.seq,
                f.decision_id,
                f.llm,
                f.score,
                f.kind,
                f.applied,
                d.query,
                d.x,
                d.offline_quality,
                d.propensity,
                d.query_hash,
            )
            .select_from(feedback_table.join(decisions, f.decision_id == d.decision_id))
            .where(f.seq > since_seq)
            .order_by(f.seq)
            .limit(limit)
        )
        with self._connect() as conn:
            return [_logged(r) for r in conn.execute(query)]

    def feedback(self, *, since_seq: int = 0) -> Iterator[LoggedFeedback]:
        """Feedback rows with ids above ``since_seq`` in id order, read a page at a time."""
        while True:
            page = self.feedback_page(since_seq)
            yield from page
            if len(page) < PAGE_ROWS:
                return
            since_seq = page[-1].seq

    def get_meta(self, key: str) -> str | None:
        with self._connect() as conn:
            row = conn.execute(sa.select(meta_table.c.value).where(meta_table.c.key == key)).first()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        with self._connect(write=True) as conn, conn.begin():
            self._lock(conn, _LOCK_MIGRATE)
            self._upsert(conn, key, value)

    def rows(self) -> dict[str, list[dict[str, Any]]]:
        out: dict[str, list[dict[str, Any]]] = {}
        with self._connect() as conn:
            for table in (decisions, feedback_table, outcomes):
                cols = [c for c in table.c if c.name != "x"]
                out[table.name] = [
                    {k: (v.hex() if isinstance(v, bytes) else v) for k, v in r._mapping.items()}
                    for r in conn.execute(sa.select(*cols).order_by(cols[0]))
                ]
        return out

    def close(self) -> None:
        """Write the pending rows (one try) and release the connections."""
        try:
            self._flush()
        except Exception as exc:
            if not _outage(exc):
                raise
            logger.warning(
                "Closing the routing log at %s: it does not answer (%s); %d buffered rows are "
                "lost.",
                self.url,
                _reason(exc),
                self.pending,
            )
        finally:
            with self._flushing:
                self._closed = True
            self.engine.dispose()

    # ------------------------------------------------------------------ coordination
    def now(self) -> float:
        """Seconds since the epoch on the database's clock (one clock for every host)."""
        if self.dialect != "postgresql":
            return time.time()
        with self._connect() as conn:
            return float(
                conn.execute(sa.text("SELECT extract(epoch FROM clock_timestamp())")).scalar_one()
            )

    def acquire_lease(self, name: str, holder: str, ttl_s: float) -> bool:
        """Take (or renew) lease ``name`` for ``holder`` for ``ttl_s`` seconds.

        Returns False while another holder has it and it has not expired.
        """
        now = self.now()
        c = leases.c
        with self._connect(write=True) as conn, conn.begin():
            self._lock(conn, _LOCK_MIGRATE)
            taken = conn.execute(
                sa.update(leases)
                .where(c.name == name, sa.or_(c.holder == holder, c.expires < now))
                .values(holder=holder, expires=now + ttl_s)
            ).rowcount
            if taken:
                return True
            if conn.execute(sa.select(c.name).where(c.name == name)).first() is not None:
                return False
            conn.execute(sa.insert(leases).values(name=name, holder=holder, expires=now + ttl_s))
            return True

    def release_lease(self, name: str, holder: str) -> None:
        """Give lease ``name`` back (nothing happens when ``holder`` does not hold it)."""
        c = leases.c
        with self._connect(write=True) as conn, conn.begin():
            conn.execute(sa.delete(leases).where(c.name == name, c.holder == holder))

    def latest_state_version(self, base: str | None) -> int:
        """The newest router version published for lineage ``base`` (0: none yet)."""
        c = router_states.c
        with self._connect() as conn:
            found = conn.execute(sa.select(sa.func.max(c.version)).where(c.base == base)).scalar()
        return int(found or 0)

    def publish_state(
        self, files: Mapping[str, bytes], *, feedback_seq: int, holder: str, base: str | None
    ) -> int:
        """Store a saved router directory's files as the next version; returns its number.

        The version row and its files commit together: a reader sees all of them or none.
        """
        with self._connect(write=True) as conn, conn.begin():
            self._lock(conn, _LOCK_MIGRATE)
            version = (
                int(conn.execute(sa.select(sa.func.max(router_states.c.version))).scalar() or 0) + 1
            )
            conn.execute(
                sa.insert(router_states).values(
                    version=version,
                    time=time.time(),
                    feedback_seq=feedback_seq,
                    holder=holder,
                    base=base,
                )
            )
            conn.execute(
                sa.insert(router_state_files),
                [{"version": version, "path": p, "data": data} for p, data in files.items()],
            )
            old = version - KEEP_STATES
            conn.execute(sa.delete(router_state_files).where(router_state_files.c.version <= old))
            conn.execute(sa.delete(router_states).where(router_states.c.version <= old))
        return version

    def read_state_files(self, version: int) -> dict[str, bytes]:
        """The files of published version ``version`` (empty when it is gone)."""
        c = router_state_files.c
        with self._connect() as conn:
            rows = conn.execute(sa.select(c.path, c.data).where(c.version == version))
            return {str(p): bytes(data) for p, data in rows}
