"""The routing log and the query path under hostile input, races and long runs."""

from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path

import numpy as np
import pytest

from mixllm_core import ConfigError, FeedbackError, LLMSpec, MixLLMError, MixLLMRouter
from mixllm_core.log import MemoryLog, SQLiteLog
from mixllm_core.testing import HashingEncoder, make_synthetic_world

SPECS = [LLMSpec("small", 0.15, 0.6), LLMSpec("large", 2.5, 10.0)]
LONE_SURROGATE = b"caf\xe9 au lait?".decode("utf-8", "surrogateescape")


def _router(**kwargs) -> MixLLMRouter:
    return MixLLMRouter(SPECS, encoder=HashingEncoder(), **kwargs)


def test_a_query_with_a_lone_surrogate_routes_and_logs(tmp_path: Path) -> None:
    router = _router(log=tmp_path / "routing.db")
    d = router.route(LONE_SURROGATE)
    router.record_outcome(d.decision_id, latency_s=0.1, error=f"child said {LONE_SURROGATE}")
    assert router.feedback(d.decision_id, thumbs=True).applied
    stored = router.log.get_decision(d.decision_id)
    assert stored is not None and stored.query == "caf\ufffd au lait?"
    router.log.export(tmp_path / "log.jsonl")  # valid UTF-8 JSON all the way
    rows = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert {r["table"] for r in rows} == {"decisions", "feedback", "outcomes"}


@pytest.mark.parametrize("bad", [None, 42, b"bytes", 3.5, object()])
def test_a_query_that_is_not_text_is_a_clear_error(bad: object) -> None:
    with pytest.raises(ConfigError, match="A query is a str or a list of chat messages"):
        _router().route(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("kind", ["sqlite", "memory"])
def test_racing_feedback_on_one_decision_gives_one_feedback_error(tmp_path: Path, kind) -> None:
    log = SQLiteLog(tmp_path / "r.db") if kind == "sqlite" else MemoryLog()
    router = _router(log=log)
    d = router.route("hello")
    # both callers pass has_feedback() before either writes: the log is the arbiter
    log.add_feedback(d.decision_id, d.llm, 1.0, "binary", True)
    with pytest.raises(FeedbackError, match="already received feedback"):
        log.add_feedback(d.decision_id, d.llm, 0.0, "binary", True)
    errors: list[BaseException] = []
    d2 = router.route("hello again")

    def give() -> None:
        try:
            router.feedback(d2.decision_id, thumbs=True)
        except BaseException as exc:  # noqa: BLE001 - collected and checked below
            errors.append(exc)

    threads = [threading.Thread(target=give) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(errors) == 7 and all(isinstance(e, FeedbackError) for e in errors)


def test_store_prompts_false_keeps_only_a_hash_and_refit_still_learns(tmp_path: Path) -> None:
    secret = "my card number is 4111 1111 1111 1111"
    data = make_synthetic_world(200, seed=0)
    router = MixLLMRouter(encoder=HashingEncoder(), log=tmp_path / "r.db", store_prompts=False)
    router.fit(data)
    ids = [router.route(q).decision_id for q in [secret, *data.queries[:30]]]
    for i, d in enumerate(ids):
        router.feedback(d, score=float(i % 2))
    raw = (tmp_path / "r.db").read_bytes() + b"".join(
        p.read_bytes() for p in tmp_path.glob("r.db-*")
    )
    assert b"4111 1111" not in raw
    with sqlite3.connect(tmp_path / "r.db") as conn:
        queries, hashes = zip(*conn.execute("SELECT query, query_hash FROM decisions"))
    assert set(queries) == {None} and all(len(h) == 64 for h in hashes)
    router.log.export(tmp_path / "export.jsonl")
    assert "4111 1111" not in (tmp_path / "export.jsonl").read_text()
    used = router.refit(min_feedback=1)
    assert sum(used.values()) == len(ids)
    mem = MixLLMRouter(SPECS, encoder=HashingEncoder(), store_prompts=False)
    d = mem.route(secret)
    assert mem.log.get_decision(d.decision_id).query is None  # type: ignore[union-attr]
    assert "4111 1111" not in json.dumps(mem.log.rows())


def test_the_memory_log_is_bounded_by_bytes_and_count() -> None:
    log = MemoryLog(max_decisions=10_000, max_bytes=2 << 20)
    router = _router(log=log)
    prompt = "x" * 4096
    first = router.route(prompt + "0")
    router.feedback(first.decision_id, thumbs=True)
    for i in range(3_000):  # ~12 MB of prompts through a 2 MB log
        d = router.route(f"{prompt}{i}")
        if i % 3 == 0:
            router.feedback(d.decision_id, thumbs=False)
        router.record_outcome(d.decision_id, latency_s=0.01)
    assert log.nbytes <= 2 << 20
    rows = log.rows()
    assert 0 < len(rows["decisions"]) < 3_000
    assert len(rows["feedback"]) <= len(rows["decisions"])  # feedback went with its decision
    assert len(rows["outcomes"]) <= 10_000
    with pytest.raises(FeedbackError, match="Unknown decision id"):
        router.feedback(first.decision_id, thumbs=False)  # dropped, so unknown (not a double)
    small = MemoryLog(max_decisions=5)
    r2 = _router(log=small)
    for i in range(20):
        r2.route(f"q{i}")
    assert len(small.rows()["decisions"]) == 5


def test_memory_log_settings_are_validated() -> None:
    with pytest.raises(ConfigError, match="max_bytes must be an int >= 1, got 0"):
        MemoryLog(max_bytes=0)
    with pytest.raises(ConfigError, match="store_prompts must be True or False"):
        SQLiteLog(":memory:", store_prompts="no")  # type: ignore[arg-type]


def test_a_log_written_before_prompt_hashes_opens_and_migrates(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as conn:  # the 0.1 schema of the decisions table
        conn.execute(
            "CREATE TABLE decisions (decision_id TEXT PRIMARY KEY, time REAL, llm TEXT, lam REAL, "
            "predicted_quality REAL, offline_quality REAL, predicted_cost REAL, query TEXT, "
            "x BLOB, candidates TEXT)"
        )
        conn.execute(
            "INSERT INTO decisions VALUES ('old', 0, 'small', 1, 0.5, 0.5, 0.001, 'hi', ?, '[]')",
            (np.zeros(64, np.float32).tobytes(),),
        )
    router = _router(log=path)
    assert router.log.get_decision("old").query == "hi"  # type: ignore[union-attr]
    d = router.route("new")
    assert router.feedback(d.decision_id, thumbs=True).applied
    assert issubclass(FeedbackError, MixLLMError)


def test_the_default_encoder_routes_a_query_with_a_lone_surrogate() -> None:
    router = MixLLMRouter(SPECS)  # the static encoder's tokenizer rejects lone surrogates
    scores = [
        [c.score for c in router.route(q).candidates]
        for q in (LONE_SURROGATE, [("user", LONE_SURROGATE)], "caf\ufffd au lait?")
    ]
    assert scores[0] == scores[1] == scores[2]
