"""A database log that stops answering: routing goes on (decisions wait in memory and are written
once when it answers again), feedback and reads raise a clear error that names the URL without
its password, a route's background sync stays quiet, one warning per outage. On a real
PostgreSQL server stopped mid-run, and on SQLite locked by another writer."""

from __future__ import annotations

import dataclasses
import logging
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa
from postgres_fixtures import _server
from postgres_server import PostgresServer, PostgresUnavailable, start

from mixllm_core import DecisionPolicy, MixLLMRouter
from mixllm_core.errors import ConfigError, FeedbackError, LogUnavailableError, MixLLMError
from mixllm_core.log import text_sha256
from mixllm_core.sqllog import SQLLog, decisions
from mixllm_core.testing import HashingEncoder, make_synthetic_world

WORLD = make_synthetic_world(200, seed=5)
Q = WORLD.queries


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> Path:
    router = MixLLMRouter(encoder=HashingEncoder(), seed=0, online_ridge=1.0)
    return router.fit(WORLD.subset(range(120))).save(tmp_path_factory.mktemp("s") / "router")


@pytest.fixture(scope="module")
def own_postgres() -> Iterator[PostgresServer]:
    """A server of this module's own: the tests stop and start it."""
    try:
        server = start()
    except PostgresUnavailable as exc:
        _server(str(exc))  # skips, or fails under CI
        raise
    try:
        yield server
    finally:
        server.stop()


def _load(saved: Path, url: str | SQLLog, **kwargs: object) -> MixLLMRouter:
    kwargs.setdefault("sync_interval_s", None)
    return MixLLMRouter.load(saved, encoder=HashingEncoder(), log=url, **kwargs)  # type: ignore[arg-type]


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.levelno >= logging.WARNING and r.name.startswith("mixllm_core")
    ]


def _once_it_answers(router: MixLLMRouter) -> int:
    """``router.sync()``, given again while the log waits out ``retry_after_s`` (1 s)."""
    deadline = time.monotonic() + 30
    while True:
        try:
            return router.sync()
        except LogUnavailableError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def _settle(router: MixLLMRouter) -> None:
    with router._sync.running:  # a background sync a route started has ended
        pass


def test_a_postgres_outage_loses_no_decision_and_no_feedback(
    own_postgres: PostgresServer, saved: Path, closing, caplog: pytest.LogCaptureFixture
) -> None:
    url = own_postgres.database("outage").replace("postgres@", "postgres:s3cret@")
    shown = url.replace("postgres:s3cret@", "postgres:***@")
    a = closing(_load(saved, url))
    b = closing(_load(saved, url, sync_interval_s=0.0))  # its routes start background syncs
    before = a.route_batch(Q[:6])
    for i, d in enumerate(before[:3]):
        (a if i % 2 else b).feedback(d.decision_id, score=float(i % 2))

    own_postgres.halt()
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="mixllm_core"):
        during_a = [a.route(q) for q in Q[6:16]]  # no exception: routing fails open
        during_b = [b.route(q) for q in Q[16:26]]
        _settle(b)
        a.record_outcome(during_a[0].decision_id, latency_s=0.5, cost=1e-5)  # kept with it
        with pytest.raises(LogUnavailableError) as caught:
            a.feedback(during_a[1].decision_id, score=1.0)
        with pytest.raises(LogUnavailableError):  # a decision made before the outage too
            b.feedback(before[4].decision_id, thumbs=True)
        with pytest.raises(LogUnavailableError):
            a.sync()
        with pytest.raises(LogUnavailableError, match="cannot be opened"):  # fails fast, clearly
            SQLLog(url)
        assert a.log.pending == 11 and b.log.pending == 10  # type: ignore[attr-defined]
        warned = _warnings(caplog)
        own_postgres.resume()
        _once_it_answers(a), _once_it_answers(b)  # the first call that gets through writes
        assert a.log.pending == 0 and b.log.pending == 0  # type: ignore[attr-defined]

    message = str(caught.value)
    assert isinstance(caught.value, MixLLMError) and isinstance(caught.value, ConnectionError)
    assert shown in message and "s3cret" not in message and "again once" in message
    assert len(warned) == 2 and all(shown in w and "s3cret" not in w for w in warned)  # one each
    assert sum("answers again" in r.getMessage() for r in caplog.records) == 2

    # the feedback refused during the outage is given again, and the rest of it
    late = during_a + during_b + before[3:]
    for i, d in enumerate(late):
        (b if i % 3 else a).feedback(d.decision_id, score=float(i % 2))
    a.sync(), b.sync()

    rows = closing(SQLLog(url)).rows()
    routed = [d.decision_id for d in before + during_a + during_b]
    logged = [r["decision_id"] for r in rows["decisions"]]
    assert sorted(logged) == sorted(routed)  # every decision, once
    given = [r["decision_id"] for r in rows["feedback"]]
    assert sorted(given) == sorted(routed) and [r["seq"] for r in rows["feedback"]] == list(
        range(1, 27)
    )
    assert [r["decision_id"] for r in rows["outcomes"]] == [during_a[0].decision_id]
    for r in (a, b):
        assert r.get_state().feedback_seq == 26
        assert int(r.get_state().heads.n_updates.sum()) == 26  # type: ignore[union-attr]
    pa, pb = a.predict(Q[150:190]), b.predict(Q[150:190])
    np.testing.assert_array_equal(pa["quality"], pb["quality"])


@pytest.fixture
def locked_sqlite(tmp_path: Path) -> Iterator[tuple[str, sqlite3.Connection]]:
    """A SQLite log URL (writers wait 0.05 s for a lock) and a connection that can hold it."""
    path = tmp_path / "routing.db"
    url = f"sqlite:///{path}?timeout=0.05"
    SQLLog(url).close()
    holder = sqlite3.connect(path, isolation_level=None)
    yield url, holder
    holder.close()


def test_a_locked_sqlite_log_buffers_routes_without_touching_it_again(
    locked_sqlite: tuple[str, sqlite3.Connection],
    saved: Path,
    closing,
    caplog: pytest.LogCaptureFixture,
) -> None:
    url, holder = locked_sqlite
    log = closing(SQLLog(url, retry_after_s=3600, max_pending=4))
    router = _load(saved, log)
    checkouts = []
    sa.event.listen(log.engine, "checkout", lambda *args: checkouts.append(1))
    holder.execute("BEGIN IMMEDIATE")  # another writer holds the database
    with caplog.at_level(logging.WARNING, logger="mixllm_core"):
        first = router.route(Q[0])  # tries once, fails, keeps it
        tried = len(checkouts)
        rest = router.route_batch(Q[1:6])
        with pytest.raises(LogUnavailableError, match="does not answer"):
            router.feedback(first.decision_id, score=1.0)
    assert tried >= 1 and len(checkouts) == tried  # no network while the retry is not due
    assert log.pending == 4 and log.dropped == 2 and not log.up
    assert len(_warnings(caplog)) == 2  # the outage, and the full buffer: once each
    holder.execute("COMMIT")
    log.retry_after_s = 0.0
    log._retry_at = 0.0  # the retry is due
    router.feedback(first.decision_id, score=1.0)  # writes the buffer first, then the feedback
    assert log.up and log.pending == 0 and log.dropped == 2  # the count stays for metrics
    logged = [r["decision_id"] for r in log.rows()["decisions"]]
    assert sorted(logged) == sorted(d.decision_id for d in [first, *rest[:3]])
    with pytest.raises(FeedbackError, match="Unknown decision id"):  # dropped: buffer was full
        router.feedback(rest[-1].decision_id, score=1.0)


def test_a_buffered_decision_keeps_its_propensity_and_query_hash(
    locked_sqlite: tuple[str, sqlite3.Connection], closing
) -> None:
    url, holder = locked_sqlite
    log = closing(SQLLog(url, retry_after_s=3600))
    policy = DecisionPolicy(explore="epsilon", epsilon=1.0)  # every LLM equally likely
    router = MixLLMRouter(
        encoder=HashingEncoder(), seed=0, log=log, policy=policy, sync_interval_s=None
    ).fit(WORLD)
    holder.execute("BEGIN IMMEDIATE")  # another writer holds the database: the row waits
    d = router.route(Q[0])
    assert log.pending == 1 and d.propensity == pytest.approx(1 / len(router.llms))
    waiting = log.get_decision(d.decision_id)
    assert waiting is not None and waiting.propensity == pytest.approx(d.propensity)
    assert waiting.query_hash == text_sha256(Q[0])
    holder.execute("COMMIT")
    log.retry_after_s = 0.0
    log._retry_at = 0.0  # the retry is due
    router.feedback(d.decision_id, score=1.0)  # writes the buffered row first
    written = log.get_decision(d.decision_id)
    assert log.pending == 0 and written is not None
    assert (written.propensity, written.query_hash) == (waiting.propensity, waiting.query_hash)


def test_a_decision_sent_twice_is_written_once(tmp_path: Path, closing, saved: Path) -> None:
    # the commit of a buffered write may succeed while its answer is lost: it is sent again
    router = closing(_load(saved, f"sqlite:///{tmp_path / 'r.db'}"))
    d = router.route(Q[0])
    log = router.log
    assert isinstance(log, SQLLog)
    row = {k: v for k, v in log.rows()["decisions"][0].items()}
    logged = log.get_decision(d.decision_id)
    assert logged is not None
    with log._state:
        log._pending.append((decisions, {**row, "x": logged.x.tobytes()}, 1))
    log._flush()
    assert [r["decision_id"] for r in log.rows()["decisions"]] == [d.decision_id]


def test_an_outcome_sent_again_after_a_lost_answer_is_written_once(log_url: str, closing) -> None:
    # an outcome's commit goes through and the answer is lost (the connection cut after COMMIT):
    # the row is kept and sent again; so is a buffered batch whose flush lost its answer
    log = closing(SQLLog(log_url, retry_after_s=3600))
    log.add_outcome("d1", latency_s=0.1)  # written at once

    @contextmanager
    def answer_lost(fd: int | None, timeout_s: float) -> Iterator[None]:
        yield  # the write and its COMMIT ran inside
        raise sa.exc.OperationalError("COMMIT", {}, ConnectionResetError("connection lost"))

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(log._watchdog, "watch", answer_lost)
        log.add_outcome("d1", latency_s=0.2, error="TimeoutError: 30s")  # committed, kept
    assert not log.up and log.pending == 1
    log.add_outcome("d1", latency_s=0.3)  # the retry of the same call: an outcome of its own
    assert log.pending == 2
    batch = list(log._pending)
    log._flush()  # writes both (the first a second time)
    with log._state:  # this flush's answer was lost too: the batch is still pending
        log._pending.extend(batch)
    log._flush()
    assert log.pending == 0
    log._retry_at = 0.0  # the retry is due: reads go through
    rows = log.rows()["outcomes"]
    assert [(r["decision_id"], r["latency_s"]) for r in rows] == [
        ("d1", 0.1),
        ("d1", 0.2),
        ("d1", 0.3),
    ]  # each once, none dropped: one decision may have several outcomes
    ids = [r["outcome_id"] for r in rows]
    assert all(isinstance(i, str) and len(i) == 32 for i in ids) and len(set(ids)) == 3


def test_a_closed_log_says_how_many_rows_it_could_not_write(
    locked_sqlite: tuple[str, sqlite3.Connection],
    saved: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    url, holder = locked_sqlite
    router = _load(saved, url)
    holder.execute("BEGIN IMMEDIATE")
    router.route_batch(Q[:3])
    with caplog.at_level(logging.WARNING, logger="mixllm_core"):
        router.close()
    holder.execute("COMMIT")
    assert any("3 buffered rows are lost" in w for w in _warnings(caplog))


def test_a_route_does_not_hang_on_a_server_that_stopped_answering(
    own_postgres: PostgresServer, saved: Path, closing
) -> None:
    # SIGSTOP: connections stay open and nothing answers, so no driver timeout fires; the route
    # waits write_timeout_s for its decision's write, then keeps it for later
    url = own_postgres.database("frozen")
    log = closing(SQLLog(url, write_timeout_s=0.2, retry_after_s=0.2))
    router = closing(_load(saved, log))
    warm = router.route(Q[0])  # the pool holds a live connection now
    routed: list[str] = []

    def route_all() -> None:
        routed.extend(d.decision_id for d in router.route_batch(Q[1:4]))
        routed.append(router.route(Q[4]).decision_id)

    own_postgres.freeze()
    try:
        worker = threading.Thread(target=route_all, daemon=True)
        worker.start()
        worker.join(60)  # liveness, not timing: a hang would wait for the thaw forever
        assert not worker.is_alive() and len(routed) == 4
        assert not log.up
    finally:
        own_postgres.thaw()
    _once_it_answers(router)
    assert log.pending == 0
    logged = [r["decision_id"] for r in log.rows()["decisions"]]
    assert sorted(logged) == sorted([warm.decision_id, *routed])  # each once


def test_a_tampered_published_version_is_refused_once_and_feedback_still_folds(
    tmp_path: Path, saved: Path, closing, caplog: pytest.LogCaptureFixture
) -> None:
    from mixllm_core.refit_job import run_refit
    from mixllm_core.sqllog import router_state_files

    url = f"sqlite:///{tmp_path / 'fleet.db'}"
    a, b = closing(_load(saved, url)), closing(_load(saved, url))
    for i, d in enumerate(a.route_batch(Q[:30], lam=5)):
        a.feedback(d.decision_id, score=float(i % 2))
    assert run_refit(url, saved, encoder=HashingEncoder()).version == 1
    log = a.log
    assert isinstance(log, SQLLog)
    with log.engine.begin() as conn:  # someone with database access swaps a file's bytes
        path = conn.execute(sa.select(router_state_files.c.path)).scalars().first()
        conn.execute(
            sa.update(router_state_files)
            .where(router_state_files.c.path == path)
            .values(data=b"tampered")
        )
    model = b.model
    d = a.route(Q[40])
    a.feedback(d.decision_id, score=1.0)
    with caplog.at_level(logging.WARNING, logger="mixllm_core"):
        assert b.sync() == 31  # every feedback folds; the version is refused
        assert b.sync() == 0
    assert b.model.pool is model.pool  # kept its own model
    refused = [w for w in _warnings(caplog) if "version 1" in w]
    assert len(refused) == 1  # once, not at every sync


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("max_pending", 0),
        ("max_pending_bytes", 1.5),
        ("retry_after_s", -1),
        ("retry_after_s", float("nan")),
        ("write_timeout_s", 0),
        ("write_timeout_s", float("inf")),
        ("write_timeout_s", True),
    ],
)
def test_the_outage_settings_are_checked(tmp_path: Path, setting: str, value: object) -> None:
    with pytest.raises(ConfigError, match=rf"SQLLog\.{setting} must be .* got {value!r}"):
        SQLLog(f"sqlite:///{tmp_path / 'r.db'}", **{setting: value})  # type: ignore[arg-type]


def test_a_replica_keeps_its_own_memory_setting_when_it_adopts_a_published_version(
    tmp_path: Path, saved: Path, closing
) -> None:
    """A version published by a router that remembers seen queries does not switch memory on
    in a replica that turned it off (and the replica still adopts the version)."""
    from mixllm_core.refit_job import run_refit

    url = f"sqlite:///{tmp_path / 'fleet.db'}"
    a, b = closing(_load(saved, url)), closing(_load(saved, url))
    b.memory = False
    b._model = dataclasses.replace(b.model, memory=None)
    for i, d in enumerate(a.route_batch(Q[:30], lam=5)):
        a.feedback(d.decision_id, score=float(i % 2))
    assert run_refit(url, saved, encoder=HashingEncoder()).version == 1
    a.sync()
    b.sync()
    assert a.model.memory is not None and len(a.model.memory) > 0
    assert b._sync.version == 1  # adopted the published version
    assert b.model.memory is None
    seen = Q[3]
    assert not np.array_equal(a.predict([seen])["quality"], b.predict([seen])["quality"])
