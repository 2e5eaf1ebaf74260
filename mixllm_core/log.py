"""`RoutingLog`: a durable, append-only record of decisions, feedback and outcomes.

SQLite by default (one file; WAL journal, ``synchronous=NORMAL``): every call commits before it
returns, so a process that dies between two calls loses nothing that was acknowledged. A router
attached to a log replays the applied feedback into its online heads on start, and ``refit()``
retrains the offline predictors from the logged feedback. ``MemoryLog`` keeps the same records in
memory (the default when no path is given).

Tables: ``decisions`` (id, time, llm, lam, predicted quality/cost, the query text and its
sha256, its representation as float32 bytes, the candidate breakdown as JSON, the propensity:
the probability with which the policy chose that LLM, NULL in rows logged before it was
recorded), ``feedback``
(decision id, score, kind, applied) and ``outcomes`` (latency, cost, tokens, error).

Prompts are stored in full by default (``refit`` re-embeds them when the encoder has changed).
With ``store_prompts=False`` a log keeps only the prompt's sha256 and its representation (what
``refit`` needs when the encoder is unchanged); the text never reaches the disk or the export.
Text that is not valid UTF-8 (a lone surrogate) is stored with U+FFFD in its place.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from .decision import RoutingDecision
from .errors import ConfigError, FeedbackError
from .text import storable_text

__all__ = [
    "LoggedDecision",
    "LoggedFeedback",
    "MemoryLog",
    "RoutingLog",
    "SQLiteLog",
    "StatePublisher",
    "plausible_id",
    "show_id",
]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS decisions (
    decision_id TEXT PRIMARY KEY, time REAL, llm TEXT, lam REAL, predicted_quality REAL,
    offline_quality REAL, predicted_cost REAL, query TEXT, x BLOB, candidates TEXT,
    query_hash TEXT, propensity REAL);
CREATE TABLE IF NOT EXISTS feedback (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, decision_id TEXT UNIQUE, time REAL, llm TEXT,
    score REAL, kind TEXT, applied INTEGER, reason TEXT);
CREATE TABLE IF NOT EXISTS outcomes (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, decision_id TEXT, time REAL, latency_s REAL,
    cost REAL, input_tokens INTEGER, output_tokens INTEGER, error TEXT);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
"""


def text_sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


#: The longest decision id a log looks up (mixllm makes ids of 32 hex characters).
MAX_ID_CHARS = 200


def plausible_id(decision_id: object) -> bool:
    """Whether ``decision_id`` could name a logged decision: text of 1 to
    :data:`MAX_ID_CHARS` characters without NUL or lone surrogates. Anything else is unknown to
    every log, which answers so without sending it to a database that would choke on it.

    Example:
        >>> plausible_id("9f86d081884c7d659a2feaa0c55ad015"), plausible_id("a" + chr(0))
        (True, False)
    """
    if not isinstance(decision_id, str) or not 0 < len(decision_id) <= MAX_ID_CHARS:
        return False
    return "\x00" not in decision_id and storable_text(decision_id) == decision_id


def show_id(decision_id: object) -> str:
    """``repr(decision_id)`` for an error message, cut to 60 characters (a message never
    echoes a megabyte of input).

    Example:
        >>> show_id("z" * 10_000)
        "'zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz...' (10000 characters)"
    """
    text = repr(decision_id)
    if len(text) <= 60:
        return text
    size = f"{len(decision_id)} characters" if isinstance(decision_id, str) else type(decision_id)
    return f"{text[:51]}...{text[0] if isinstance(decision_id, str) else ''} ({size})"


@dataclass(frozen=True)
class LoggedDecision:
    """A logged decision; ``query`` is None when the log stores no prompts, ``propensity`` when
    it was logged before propensities were recorded; ``query_hash`` is the sha256 of the query
    text (None only from a log written before it was recorded)."""

    decision_id: str
    llm: str
    query: str | None
    x: np.ndarray
    offline_quality: float
    propensity: float | None = None
    query_hash: str | None = None


@dataclass(frozen=True)
class LoggedFeedback:
    seq: int
    decision_id: str
    llm: str
    score: float
    kind: str
    applied: bool
    query: str | None
    x: np.ndarray
    offline_quality: float
    propensity: float | None = None
    query_hash: str | None = None


class RoutingLog:
    """Interface of a routing log (see :class:`SQLiteLog`, :class:`MemoryLog` and
    :class:`~mixllm_core.sqllog.SQLLog`).

    ``shared`` says whether other processes may write to the same log (a file or a database):
    a router on a shared log folds feedback into its online heads in feedback-id order, reading
    the rows other writers added (``router.sync()``). Feedback ids must be assigned in commit
    order: a reader that sees id ``n`` sees every smaller id that will ever exist.
    """

    shared = False

    def add_decision(
        self,
        decision: RoutingDecision,
        query: str,
        x: np.ndarray,
        offline_quality: float,
        query_hash: str | None = None,
    ) -> None:
        """Log a decision; ``query_hash`` is ``query``'s sha256 when the caller has it already
        (the log computes it otherwise)."""
        raise NotImplementedError

    def get_decision(self, decision_id: str) -> LoggedDecision | None:
        raise NotImplementedError

    def add_feedback(
        self, decision_id: str, llm: str, score: float, kind: str, applied: bool, reason: str = ""
    ) -> int:
        """Append one feedback; returns its sequence number."""
        raise NotImplementedError

    def has_feedback(self, decision_id: str) -> bool:
        raise NotImplementedError

    def add_outcome(self, decision_id: str, **fields: Any) -> None:
        raise NotImplementedError

    def feedback(self, *, since_seq: int = 0) -> Iterator[LoggedFeedback]:
        raise NotImplementedError

    def get_meta(self, key: str) -> str | None:
        raise NotImplementedError

    def set_meta(self, key: str, value: str) -> None:
        raise NotImplementedError

    def export(self, path: str | Path) -> Path:
        """Write decisions, feedback and outcomes to ``path`` as JSON lines (``table`` names each)."""
        path = Path(path)
        with path.open("w") as f:
            for table, rows in self.rows().items():
                for row in rows:
                    f.write(json.dumps({"table": table, **row}) + "\n")
        return path

    def rows(self) -> dict[str, list[dict[str, Any]]]:
        raise NotImplementedError

    def close(self) -> None:
        """Release the log's resources."""


class SQLiteLog(RoutingLog):
    """The durable log: one SQLite file; each write is committed before the call returns.

    Several processes may share the file (one writer at a time, so feedback ids follow commit
    order); for several hosts, use a database URL (:class:`~mixllm_core.sqllog.SQLLog`).

    Args:
        path: The database file (created if missing).
        store_prompts: Keep prompt texts (True, the default) or only their sha256.

    Example:
        >>> import tempfile, pathlib
        >>> log = SQLiteLog(pathlib.Path(tempfile.mkdtemp()) / "routing.db")
        >>> log.has_feedback("nope")
        False
    """

    def __init__(self, path: str | Path, *, store_prompts: bool = True) -> None:
        if not isinstance(store_prompts, bool):
            raise ConfigError(f"store_prompts must be True or False, got {store_prompts!r}.")
        self.store_prompts = store_prompts
        self.shared = True
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode=WAL")
        # WAL + NORMAL: a committed write survives the process dying (not a power cut), at
        # ~0.1 ms a write instead of an fsync per call.
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.executescript(_SCHEMA)
        columns = {r[1] for r in self._conn.execute("PRAGMA table_info(decisions)")}
        if "query_hash" not in columns:  # a log written before prompts could be left out
            self._conn.execute("ALTER TABLE decisions ADD COLUMN query_hash TEXT")
        if "propensity" not in columns:  # a log written before propensities: old rows NULL
            self._conn.execute("ALTER TABLE decisions ADD COLUMN propensity REAL")

    def _write(self, sql: str, params: tuple[Any, ...]) -> int:
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                cur = self._conn.execute(sql, params)
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")
            return int(cur.lastrowid or 0)

    def add_decision(
        self,
        decision: RoutingDecision,
        query: str,
        x: np.ndarray,
        offline_quality: float,
        query_hash: str | None = None,
    ) -> None:
        self._write(
            "INSERT INTO decisions (decision_id, time, llm, lam, predicted_quality, "
            "offline_quality, predicted_cost, query, x, candidates, query_hash, propensity) "
            "VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                decision.decision_id,
                decision.created_at,
                decision.llm,
                decision.lam,
                decision.predicted_quality,
                offline_quality,
                decision.predicted_cost,
                storable_text(query) if self.store_prompts else None,
                np.asarray(x, dtype=np.float32).tobytes(),
                json.dumps(decision.to_dict()["candidates"]),
                query_hash or text_sha256(query),
                decision.propensity,
            ),
        )

    def get_decision(self, decision_id: str) -> LoggedDecision | None:
        if not plausible_id(decision_id):
            return None
        with self._lock:
            row = self._conn.execute(
                "SELECT decision_id, llm, query, x, offline_quality, propensity, query_hash "
                "FROM decisions WHERE decision_id=?",
                (decision_id,),
            ).fetchone()
        if row is None:
            return None
        return LoggedDecision(
            row[0], row[1], row[2], np.frombuffer(row[3], dtype=np.float32), row[4], row[5], row[6]
        )

    def add_feedback(
        self, decision_id: str, llm: str, score: float, kind: str, applied: bool, reason: str = ""
    ) -> int:
        try:
            return self._write(
                "INSERT INTO feedback (decision_id, time, llm, score, kind, applied, reason) "
                "VALUES (?,?,?,?,?,?,?)",
                (decision_id, time.time(), llm, score, kind, int(applied), reason),
            )
        except sqlite3.IntegrityError as exc:  # two callers raced past has_feedback()
            raise FeedbackError(f"Decision {decision_id!r} already received feedback.") from exc

    def has_feedback(self, decision_id: str) -> bool:
        if not plausible_id(decision_id):
            return False
        with self._lock:
            row = self._conn.execute(
                "SELECT 1 FROM feedback WHERE decision_id=?", (decision_id,)
            ).fetchone()
        return row is not None

    def add_outcome(self, decision_id: str, **fields: Any) -> None:
        self._write(
            "INSERT INTO outcomes (decision_id, time, latency_s, cost, input_tokens, output_tokens, error) "
            "VALUES (?,?,?,?,?,?,?)",
            (
                decision_id,
                time.time(),
                fields.get("latency_s"),
                fields.get("cost"),
                fields.get("input_tokens"),
                fields.get("output_tokens"),
                None if fields.get("error") is None else storable_text(str(fields["error"])),
            ),
        )

    def feedback(self, *, since_seq: int = 0) -> Iterator[LoggedFeedback]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT f.seq, f.decision_id, f.llm, f.score, f.kind, f.applied, d.query, d.x, "
                "d.offline_quality, d.propensity, d.query_hash FROM feedback f JOIN decisions d "
                "USING (decision_id) "
                "WHERE f.seq > ? ORDER BY f.seq",
                (since_seq,),
            ).fetchall()
        for r in rows:
            yield LoggedFeedback(
                r[0],
                r[1],
                r[2],
                r[3],
                r[4],
                bool(r[5]),
                r[6],
                np.frombuffer(r[7], dtype=np.float32),
                r[8],
                r[9],
                r[10],
            )

    def get_meta(self, key: str) -> str | None:
        with self._lock:
            row = self._conn.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        self._write("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    def rows(self) -> dict[str, list[dict[str, Any]]]:
        out: dict[str, list[dict[str, Any]]] = {}
        with self._lock:
            for table in ("decisions", "feedback", "outcomes"):
                cur = self._conn.execute(f"SELECT * FROM {table}")  # noqa: S608 - fixed names
                cols = [c[0] for c in cur.description]
                out[table] = [
                    {
                        c: (v.hex() if isinstance(v, bytes) else v)
                        for c, v in zip(cols, row)
                        if c != "x"
                    }
                    for row in cur.fetchall()
                ]
        return out

    def close(self) -> None:
        with self._lock:
            self._conn.close()


class MemoryLog(RoutingLog):
    """The same records in memory (lost with the process); the default without a path.

    Bounded: the oldest decisions (with their feedback) are dropped once more than
    ``max_decisions`` are kept or their prompts and representations take more than ``max_bytes``;
    outcomes keep the latest ``max_decisions``. Feedback on a dropped decision is refused as
    unknown.

    Example:
        >>> log = MemoryLog(max_decisions=1000, max_bytes=1 << 20)
        >>> log.nbytes
        0
    """

    #: Bytes counted per record beyond its prompt and representation (ids, floats, dict slots).
    RECORD_OVERHEAD = 400

    def __init__(
        self,
        max_decisions: int = 100_000,
        *,
        max_bytes: int = 256 << 20,
        store_prompts: bool = True,
    ) -> None:
        for name, value in (("max_decisions", max_decisions), ("max_bytes", max_bytes)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"MemoryLog.{name} must be an int >= 1, got {value!r}.")
        if not isinstance(store_prompts, bool):
            raise ConfigError(f"store_prompts must be True or False, got {store_prompts!r}.")
        self.max_decisions = max_decisions
        self.max_bytes = max_bytes
        self.store_prompts = store_prompts
        self.nbytes = 0
        self._lock = threading.Lock()
        self._decisions: dict[str, tuple[LoggedDecision, dict[str, Any], int]] = {}
        self._feedback: dict[str, dict[str, Any]] = {}  # by decision id, in order of arrival
        self._seq = 0
        self._outcomes: deque[dict[str, Any]] = deque(maxlen=max_decisions)
        self._meta: dict[str, str] = {}

    def add_decision(
        self,
        decision: RoutingDecision,
        query: str,
        x: np.ndarray,
        offline_quality: float,
        query_hash: str | None = None,
    ) -> None:
        text = storable_text(query) if self.store_prompts else None
        vector = np.asarray(x, np.float32)
        size = len(text or "") * 4 + vector.nbytes + self.RECORD_OVERHEAD
        digest = query_hash or text_sha256(query)
        row = {
            "decision_id": decision.decision_id,
            "time": decision.created_at,
            "llm": decision.llm,
            "lam": decision.lam,
            "predicted_quality": decision.predicted_quality,
            "predicted_cost": decision.predicted_cost,
            "query": text,
            "query_hash": digest,
            "propensity": decision.propensity,
        }
        logged = LoggedDecision(
            decision.decision_id,
            decision.llm,
            text,
            vector,
            offline_quality,
            decision.propensity,
            digest,
        )
        with self._lock:
            self._decisions[decision.decision_id] = (logged, row, size)
            self.nbytes += size
            while len(self._decisions) > self.max_decisions or (
                self.nbytes > self.max_bytes and len(self._decisions) > 1
            ):
                oldest = next(iter(self._decisions))
                self.nbytes -= self._decisions.pop(oldest)[2]
                self._feedback.pop(oldest, None)

    def get_decision(self, decision_id: str) -> LoggedDecision | None:
        if not plausible_id(decision_id):
            return None
        with self._lock:
            entry = self._decisions.get(decision_id)
        return None if entry is None else entry[0]

    def add_feedback(
        self, decision_id: str, llm: str, score: float, kind: str, applied: bool, reason: str = ""
    ) -> int:
        with self._lock:
            if decision_id in self._feedback:
                raise FeedbackError(f"Decision {decision_id!r} already received feedback.")
            self._seq += 1
            self._feedback[decision_id] = {
                "seq": self._seq,
                "decision_id": decision_id,
                "time": time.time(),
                "llm": llm,
                "score": score,
                "kind": kind,
                "applied": applied,
                "reason": reason,
            }
            return self._seq

    def has_feedback(self, decision_id: str) -> bool:
        if not plausible_id(decision_id):
            return False
        with self._lock:
            return decision_id in self._feedback

    def add_outcome(self, decision_id: str, **fields: Any) -> None:
        if fields.get("error") is not None:
            fields["error"] = storable_text(str(fields["error"]))
        with self._lock:
            self._outcomes.append({"decision_id": decision_id, "time": time.time(), **fields})

    def feedback(self, *, since_seq: int = 0) -> Iterator[LoggedFeedback]:
        with self._lock:
            rows = [r for r in self._feedback.values() if r["seq"] > since_seq]
            found = [(r, self._decisions.get(r["decision_id"])) for r in rows]
        for r, entry in found:
            if entry is None:
                continue
            d = entry[0]
            yield LoggedFeedback(
                r["seq"],
                r["decision_id"],
                r["llm"],
                r["score"],
                r["kind"],
                r["applied"],
                d.query,
                d.x,
                d.offline_quality,
                d.propensity,
                d.query_hash,
            )

    def get_meta(self, key: str) -> str | None:
        with self._lock:
            return self._meta.get(key)

    def set_meta(self, key: str, value: str) -> None:
        with self._lock:
            self._meta[key] = value

    def rows(self) -> dict[str, list[dict[str, Any]]]:
        with self._lock:
            return {
                "decisions": [e[1] for e in self._decisions.values()],
                "feedback": list(self._feedback.values()),
                "outcomes": list(self._outcomes),
            }


@runtime_checkable
class StatePublisher(Protocol):
    """A log that also holds published router versions and leases (a database log).

    The coordinated refit (:mod:`mixllm_core.fleet`) takes the ``"refit"`` lease, publishes the
    refit router's saved files as a new version, and every router on the log swaps that version
    in at its next sync.
    """

    def latest_state_version(self, base: str | None) -> int: ...

    def read_state_files(self, version: int) -> dict[str, bytes]: ...

    def publish_state(
        self, files: dict[str, bytes], *, feedback_seq: int, holder: str, base: str | None
    ) -> int: ...

    def acquire_lease(self, name: str, holder: str, ttl_s: float) -> bool: ...

    def release_lease(self, name: str, holder: str) -> None: ...
