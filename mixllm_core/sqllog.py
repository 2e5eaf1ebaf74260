"""`SQLLog`: the routing log on a database through SQLAlchemy Core (SQLite, PostgreSQL, ...).

``MixLLMRouter(log="postgresql+psycopg://user@host/db")`` (or ``"sqlite:///path"``) builds one.
Several processes on several hosts share one log: every replica's decisions, outcomes and
feedback go to the same tables, so any replica can take feedback on another's decision, and each
router folds every replica's feedback into its online heads (``router.sync()``).

Durability is today's: each write is one transaction, committed before the call returns
(PostgreSQL with its default ``synchronous_commit=on``; SQLite in WAL mode).

Feedback ids (``seq``) are assigned in commit order: on PostgreSQL a feedback insert takes a
transaction-scoped advisory lock before its id, on SQLite one writer holds the database at a time.
So once a reader sees id ``n``, every feedback with a smaller id is visible too or will never
exist; a router that folded every id up to ``n`` has folded the whole prefix, and reads the rows
after it next time.

Schema (``schema_version`` in the ``meta`` table, migrated on open): ``decisions`` (as
:class:`~mixllm_core.log.SQLiteLog`'s, plus a nullable ``propensity``), ``feedback``,
``outcomes``, ``meta``; ``leases`` (who runs the coordinated refit, until when);
``router_states`` and ``router_state_files`` (published router versions, the files of a saved
router directory as bytes). A file written by :class:`~mixllm_core.log.SQLiteLog` opens and is
migrated in place.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np

from .decision import RoutingDecision
from .errors import ConfigError, FeedbackError, MissingDependencyError
from .log import LoggedDecision, LoggedFeedback, RoutingLog, text_sha256
from .text import storable_text

try:
    import sqlalchemy as sa
    from sqlalchemy.engine import Connection, Engine
except ImportError as exc:  # pragma: no cover - the extra is installed in CI
    raise MissingDependencyError(
        "A database URL as log= needs SQLAlchemy: pip install 'mixllm[shared]'."
    ) from exc

__all__ = ["SCHEMA_VERSION", "SQLLog"]

#: Version of the tables below; a log written by a newer mixllm is refused.
SCHEMA_VERSION = 2
#: Rows per page when the log is read in order (refit, sync): memory stays bounded.
PAGE_ROWS = 2000
#: Key of the PostgreSQL advisory locks (feedback ids in commit order, migrations).
_LOCK_FEEDBACK, _LOCK_MIGRATE = 7_461_001, 7_461_002
#: Published router versions kept (the newest ones); older ones are deleted on publish.
KEEP_STATES = 2

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
    engine = sa.create_engine(url, connect_args={"check_same_thread": False, "timeout": 30.0})

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
    except sa.exc.ArgumentError as exc:
        raise ConfigError(
            f"log={url!r} is not a database URL; use e.g. 'sqlite:///routing.db' or "
            "'postgresql+psycopg://user@host/dbname', or a file path."
        ) from exc
    try:
        if parsed.get_backend_name() == "sqlite":
            return _sqlite_engine(parsed)
        options: dict[str, Any] = {"pool_pre_ping": True}
        if parsed.get_backend_name() == "postgresql":
            # a client that dies inside a transaction must not hold the feedback lock for long
            options["connect_args"] = {"options": "-c idle_in_transaction_session_timeout=60000"}
        return sa.create_engine(parsed, **options)
    except (ImportError, sa.exc.NoSuchModuleError) as exc:
        raise MissingDependencyError(
            f"No driver for {parsed.drivername!r} ({exc}); for PostgreSQL: pip install "
            "'mixllm[shared]' (psycopg 3) and use a 'postgresql+psycopg://' URL."
        ) from exc


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

    Raises:
        ConfigError: ``url`` is not a database URL, or the database holds a log written by a
            newer mixllm.
        MissingDependencyError: no driver for the URL's database.

    Example:
        >>> import tempfile, pathlib
        >>> log = SQLLog(f"sqlite:///{pathlib.Path(tempfile.mkdtemp()) / 'routing.db'}")
        >>> log.has_feedback("nope"), log.get_meta("schema_version")
        (False, '2')
    """

    shared = True

    def __init__(self, url: str, *, store_prompts: bool = True) -> None:
        if not isinstance(store_prompts, bool):
            raise ConfigError(f"store_prompts must be True or False, got {store_prompts!r}.")
        self.store_prompts = store_prompts
        self.engine = _engine(url)
        self.url = self.engine.url.render_as_string(hide_password=True)
        self.dialect = self.engine.dialect.name
        try:
            self._migrate()
        except BaseException:
            self.engine.dispose()
            raise

    # ------------------------------------------------------------------ connections
    def _write(self) -> Connection:
        """A connection whose transaction (``with conn.begin()``) may write."""
        return self.engine.connect().execution_options(mixllm_write=True)

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
        self, decision: RoutingDecision, query: str, x: np.ndarray, offline_quality: float
    ) -> None:
        row = {
            "decision_id": decision.decision_id,
            "time": decision.created_at,
            "llm": decision.llm,
            "lam": decision.lam,
            "predicted_quality": decision.predicted_quality,
            "offline_quality": offline_quality,
            "predicted_cost": decision.predicted_cost,
            "query": storable_text(query) if self.store_prompts else None,
            "x": np.asarray(x, dtype=np.float32).tobytes(),
            "candidates": json.dumps(decision.to_dict()["candidates"]),
            "query_hash": text_sha256(query),
        }
        with self._write() as conn, conn.begin():
            conn.execute(sa.insert(decisions), row)

    def get_decision(self, decision_id: str) -> LoggedDecision | None:
        d = decisions.c
        with self.engine.connect() as conn:
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
            with self._write() as conn, conn.begin():
                self._lock(conn, _LOCK_FEEDBACK)  # ids in commit order (see the module doc)
                result = conn.execute(sa.insert(feedback_table), row)
                key = result.inserted_primary_key
                if key is None:  # pragma: no cover - every dialect here returns it
                    raise FeedbackError(f"The log gave no id to the feedback on {decision_id!r}.")
                return int(key[0])
        except sa.exc.IntegrityError as exc:  # two callers raced past has_feedback()
            raise FeedbackError(f"Decision {decision_id!r} already received feedback.") from exc

    def has_feedback(self, decision_id: str) -> bool:
        f = feedback_table.c
        with self.engine.connect() as conn:
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
            "error": None if error is None else storable_text(str(error)),
        }
        with self._write() as conn, conn.begin():
            conn.execute(sa.insert(outcomes), row)

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
        with self.engine.connect() as conn:
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
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(meta_table.c.value).where(meta_table.c.key == key)).first()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        with self._write() as conn, conn.begin():
            self._lock(conn, _LOCK_MIGRATE)
            self._upsert(conn, key, value)

    def rows(self) -> dict[str, list[dict[str, Any]]]:
        out: dict[str, list[dict[str, Any]]] = {}
        with self.engine.connect() as conn:
            for table in (decisions, feedback_table, outcomes):
                cols = [c for c in table.c if c.name != "x"]
                out[table.name] = [
                    {k: (v.hex() if isinstance(v, bytes) else v) for k, v in r._mapping.items()}
                    for r in conn.execute(sa.select(*cols).order_by(cols[0]))
                ]
        return out

    def close(self) -> None:
        self.engine.dispose()

    # ------------------------------------------------------------------ coordination
    def now(self) -> float:
        """Seconds since the epoch on the database's clock (one clock for every host)."""
        if self.dialect != "postgresql":
            return time.time()
        with self.engine.connect() as conn:
            return float(
                conn.execute(sa.text("SELECT extract(epoch FROM clock_timestamp())")).scalar_one()
            )

    def acquire_lease(self, name: str, holder: str, ttl_s: float) -> bool:
        """Take (or renew) lease ``name`` for ``holder`` for ``ttl_s`` seconds.

        Returns False while another holder has it and it has not expired.
        """
        now = self.now()
        c = leases.c
        with self._write() as conn, conn.begin():
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
        with self._write() as conn, conn.begin():
            conn.execute(sa.delete(leases).where(c.name == name, c.holder == holder))

    def latest_state_version(self, base: str | None) -> int:
        """The newest router version published for lineage ``base`` (0: none yet)."""
        c = router_states.c
        with self.engine.connect() as conn:
            found = conn.execute(sa.select(sa.func.max(c.version)).where(c.base == base)).scalar()
        return int(found or 0)

    def publish_state(
        self, files: Mapping[str, bytes], *, feedback_seq: int, holder: str, base: str | None
    ) -> int:
        """Store a saved router directory's files as the next version; returns its number.

        The version row and its files commit together: a reader sees all of them or none.
        """
        with self._write() as conn, conn.begin():
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
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(c.path, c.data).where(c.version == version))
            return {str(p): bytes(data) for p, data in rows}
