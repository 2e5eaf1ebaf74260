"""The routing log on a database (SQLite and a real PostgreSQL): schema, migration, durability,
feedback ids in commit order."""

from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa

from mixllm_core import DecisionPolicy, MixLLMRouter, sqllog
from mixllm_core.errors import ConfigError, FeedbackError
from mixllm_core.fleet import open_log
from mixllm_core.log import SQLiteLog
from mixllm_core.sqllog import SCHEMA_VERSION, SQLLog
from mixllm_core.testing import HashingEncoder, make_synthetic_world

WORLD = make_synthetic_world(200, seed=3)


def _router(log: object, **kwargs: object) -> MixLLMRouter:
    return MixLLMRouter(encoder=HashingEncoder(), seed=0, log=log, **kwargs).fit(WORLD)  # type: ignore[arg-type]


@pytest.fixture
def router_on(closing):  # type: ignore[no-untyped-def]
    """``router_on(url, **kwargs)``: a fitted router on that log, closed after the test."""
    return lambda url, **kwargs: closing(_router(url, **kwargs))


def test_a_url_opens_a_versioned_database_log(log_url: str, router_on, closing) -> None:
    router = router_on(log_url, sync_interval_s=None)
    assert isinstance(router.log, SQLLog) and router.log.shared
    assert router.log.get_meta("schema_version") == str(SCHEMA_VERSION)
    d = router.route(WORLD.queries[0])
    router.record_outcome(d.decision_id, latency_s=0.2, cost=1e-5, input_tokens=3)
    result = router.feedback(d.decision_id, thumbs=True)
    assert result.applied and router.sync() == 0  # already folded when it was given
    with pytest.raises(FeedbackError, match="already received feedback"):
        router.feedback(d.decision_id, score=0.5)
    with pytest.raises(FeedbackError, match="already received feedback"):  # the log arbitrates
        router.log.add_feedback(d.decision_id, d.llm, 0.0, "binary", True)
    rows = router.log.rows()
    assert [r["decision_id"] for r in rows["feedback"]] == [d.decision_id]
    assert rows["decisions"][0]["propensity"] == d.propensity == 1.0  # a greedy choice
    assert rows["outcomes"][0]["latency_s"] == 0.2
    logged = router.log.get_decision(d.decision_id)
    assert logged is not None and logged.query == WORLD.queries[0]
    np.testing.assert_array_equal(logged.x, router.features([WORLD.queries[0]])[0][0])
    reopened = closing(SQLLog(log_url))  # another process opening it later: nothing migrates twice
    assert reopened.has_feedback(d.decision_id) and reopened.get_meta("schema_version") == "3"


def test_acknowledged_means_committed_for_every_other_connection(
    log_url: str, router_on, closing
) -> None:
    writer, reader = router_on(log_url, sync_interval_s=None), closing(SQLLog(log_url))
    ids = []
    for q in WORLD.queries[:10]:
        d = writer.route(q)
        writer.feedback(d.decision_id, score=0.25)
        ids.append(d.decision_id)
        assert reader.has_feedback(d.decision_id)  # visible the moment the call returned
    assert [fb.decision_id for fb in reader.feedback()] == ids


def test_feedback_ids_are_visible_in_commit_order(log_url: str, router_on, closing) -> None:
    # A reader that resumes after the highest id it saw must never miss a row: ids are handed
    # out in commit order, even with 6 writers at once.
    router = router_on(log_url, sync_interval_s=None)
    decisions = router.route_batch(WORLD.queries[:120])
    log = closing(SQLLog(log_url))
    seen: list[int] = []
    done = threading.Event()

    def read() -> None:
        while True:
            last = done.is_set()
            seen.extend(fb.seq for fb in log.feedback(since_seq=max(seen, default=0)))
            if last:
                return

    def write(k: int) -> None:
        for d in decisions[k::6]:
            router.log.add_feedback(d.decision_id, d.llm, 1.0, "binary", True)

    reader = threading.Thread(target=read)
    reader.start()
    writers = [threading.Thread(target=write, args=(k,)) for k in range(6)]
    for t in writers:
        t.start()
    for t in writers:
        t.join()
    done.set()
    reader.join(timeout=60)
    every = [fb.seq for fb in log.feedback()]
    assert len(every) == 120 and seen == every  # each row read once, none skipped


def test_a_sqlite_log_file_opens_as_a_url_and_is_migrated(tmp_path: Path, closing) -> None:
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as conn:  # the 0.1 schema: no query_hash, no propensity, no meta
        conn.execute(
            "CREATE TABLE decisions (decision_id TEXT PRIMARY KEY, time REAL, llm TEXT, lam REAL, "
            "predicted_quality REAL, offline_quality REAL, predicted_cost REAL, query TEXT, "
            "x BLOB, candidates TEXT)"
        )
        conn.execute(
            "INSERT INTO decisions VALUES ('old', 0, 'tiny-7b', 1, 0.5, 0.5, 0.001, 'hi', ?, '[]')",
            (np.zeros(64, np.float32).tobytes(),),
        )
    log = closing(SQLLog(f"sqlite:///{path}"))
    assert log.get_meta("schema_version") == "3"
    with sqlite3.connect(path) as conn:
        columns = {r[1] for r in conn.execute("PRAGMA table_info(decisions)")}
    assert {"query_hash", "propensity"} <= columns
    old = log.get_decision("old")
    assert old is not None and old.query == "hi"
    log.add_feedback("old", "tiny-7b", 1.0, "binary", True)
    embedded = closing(SQLiteLog(path))
    assert embedded.has_feedback("old")  # and the embedded log still reads it
    embedded.add_outcome("old", cost=0.5)  # and writes it (without an outcome id)
    assert [r["outcome_id"] for r in log.rows()["outcomes"]] == [None]


def test_a_log_from_a_newer_mixllm_is_refused(log_url: str, closing) -> None:
    closing(SQLLog(log_url)).set_meta("schema_version", "99")
    with pytest.raises(ConfigError, match="schema version 99; this mixllm reads up to 3"):
        SQLLog(log_url)


def test_without_prompts_no_text_reaches_the_database(
    log_url: str, tmp_path: Path, router_on
) -> None:
    router = router_on(log_url, store_prompts=False, sync_interval_s=None)
    d = router.route("my card is 4111 1111 1111 1111")
    assert router.feedback(d.decision_id, thumbs=False).applied
    exported = router.log.export(tmp_path / "export.jsonl")
    assert "4111" not in exported.read_text()
    tables = [json.loads(line)["table"] for line in exported.read_text().splitlines()]
    assert tables.count("decisions") == 1 and tables.count("feedback") == 1


def test_what_log_accepts(closing) -> None:
    assert type(closing(open_log("sqlite://"))).__name__ == "SQLLog"  # a URL: the SQLAlchemy log
    with pytest.raises(ConfigError, match="is not a database URL"):
        SQLLog("nonsense")
    with pytest.raises(ConfigError, match="log must be a RoutingLog, a database URL"):
        open_log(42)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="sync_interval_s must be None or a number"):
        MixLLMRouter(encoder=HashingEncoder(), sync_interval_s=-1)


def _version_2_tables() -> sa.MetaData:
    """The tables as version 2 made them: ``outcomes`` without ``outcome_id``."""
    old = sa.MetaData()
    for table in (sqllog.meta_table, sqllog.decisions, sqllog.feedback_table):
        table.to_metadata(old)
    sa.Table(
        "outcomes",
        old,
        sa.Column("seq", sqllog._Id, primary_key=True, autoincrement=True),
        sa.Column("decision_id", sa.Text),
        sa.Column("time", sqllog._Real),
        sa.Column("latency_s", sqllog._Real),
        sa.Column("cost", sqllog._Real),
        sa.Column("input_tokens", sa.Integer),
        sa.Column("output_tokens", sa.Integer),
        sa.Column("error", sa.Text),
        sqlite_autoincrement=True,
    )
    return old


def test_a_version_2_log_is_migrated_and_keeps_its_outcomes(
    log_url: str, closing, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = sa.create_engine(log_url)
    old = _version_2_tables()
    with engine.begin() as conn:
        old.create_all(conn)
        conn.execute(sa.insert(old.tables["meta"]).values(key="schema_version", value="2"))
        conn.execute(
            sa.insert(old.tables["outcomes"]),
            [{"decision_id": "old", "time": 1.0, "cost": c} for c in (0.25, 0.5)],
        )
    engine.dispose()

    log = closing(SQLLog(log_url))
    assert log.get_meta("schema_version") == str(SCHEMA_VERSION) == "3"
    log.add_outcome("old", cost=1.0)  # one decision, several outcomes: each kept
    log.add_outcome("old", cost=2.0)
    rows = log.rows()["outcomes"]
    assert [(r["cost"], r["outcome_id"] is None) for r in rows] == [
        (0.25, True),
        (0.5, True),
        (1.0, False),
        (2.0, False),
    ]
    with log._state:  # the last write is sent again (its answer was lost): the index holds
        resent = {k: v for k, v in rows[-1].items() if k != "seq"}
        log._pending.append((sqllog.outcomes, resent, 1))
    log._flush()
    assert [r["cost"] for r in log.rows()["outcomes"]] == [0.25, 0.5, 1.0, 2.0]
    again = closing(SQLLog(log_url))  # opened again: nothing migrates twice
    assert len(again.rows()["outcomes"]) == 4

    monkeypatch.setattr(sqllog, "SCHEMA_VERSION", 2)  # a replica that still runs version 2
    with pytest.raises(ConfigError, match="schema version 3; this mixllm reads up to 2. Upgrade"):
        SQLLog(log_url)


def test_exploring_routes_log_their_propensities(log_url: str, router_on) -> None:
    """An off-policy refit on the shared log needs each choice's probability, as on SQLiteLog."""
    policy = DecisionPolicy(explore="epsilon", epsilon=0.5)
    router = router_on(log_url, sync_interval_s=None, policy=policy)
    routed = router.route_batch(WORLD.queries[:30])
    chosen = {d.decision_id: d.propensity for d in routed}
    assert min(chosen.values()) < 0.5 < max(chosen.values()) < 1.0  # explored and greedy rows
    logged = {r["decision_id"]: r["propensity"] for r in router.log.rows()["decisions"]}
    assert logged == pytest.approx(chosen)
    first = router.log.get_decision(routed[0].decision_id)
    assert first is not None and first.propensity == pytest.approx(routed[0].propensity)
    router.feedback(routed[0].decision_id, score=1.0)
    assert [fb.propensity for fb in router.log.feedback()] == [pytest.approx(routed[0].propensity)]
