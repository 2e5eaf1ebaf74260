"""Hostile input on every kind of log (memory, SQLite file, SQLite URL, PostgreSQL): prompts and
error texts with NUL bytes route and log; decision ids that are not ids (NUL, lone surrogate, a
number, a list, a megabyte) give a short FeedbackError, never a database driver's traceback; token
counts and LLM names no log can hold are refused before anything is written."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
from postgres_fixtures import _server

from mixllm_core import LLMSpec, MixLLMRouter
from mixllm_core.errors import ConfigError, FeedbackError, LogUnavailableError
from mixllm_core.log import text_sha256
from mixllm_core.testing import HashingEncoder, make_synthetic_world

WORLD = make_synthetic_world(120, seed=11)
NOT_IDS = ["a\x00b", "a\ud800", 12, ["x"], "z" * (1 << 20), ""]


@pytest.fixture(scope="module")
def fitted() -> MixLLMRouter:
    return MixLLMRouter(encoder=HashingEncoder(), seed=0).fit(WORLD)


@pytest.fixture(params=["memory", "file", "sqlite-url", "postgresql"])
def router(request: pytest.FixtureRequest, fitted: MixLLMRouter, tmp_path: Path, closing):  # type: ignore[no-untyped-def]
    """A copy of the fitted router on a new, empty log of each kind."""
    log: object = {
        "memory": None,
        "file": tmp_path / "routing.db",
        "sqlite-url": f"sqlite:///{tmp_path / 'routing.db'}",
    }.get(request.param)
    if request.param == "postgresql":
        server = _server(request.getfixturevalue("postgres"))
        log = server.database(f"h_{abs(hash(tmp_path)) % 10**9}")
    state = fitted.get_state()
    return closing(
        MixLLMRouter.from_state(state, encoder=fitted.encoder, log=log, sync_interval_s=None)  # type: ignore[arg-type]
    )


def test_a_prompt_and_an_error_text_with_nul_bytes_route_and_are_logged(router) -> None:  # type: ignore[no-untyped-def]
    query = "print('a\x00b') \x00 " + WORLD.queries[0]
    d = router.route(query)
    router.record_outcome(d.decision_id, latency_s=0.1, error="child said \x00 no")
    router.feedback(d.decision_id, score=0.5)
    rows = router.log.rows()
    (decision,) = rows["decisions"]
    assert decision["query_hash"] == text_sha256(query)  # of the prompt as given
    assert decision["query"].replace("\ufffd", "\x00") == query  # NUL kept, or U+FFFD on PostgreSQL
    assert rows["outcomes"][0]["error"].replace("\ufffd", "\x00") == "child said \x00 no"


@pytest.mark.parametrize("bad", NOT_IDS, ids=["nul", "surrogate", "int", "list", "1MB", "empty"])
def test_a_decision_id_that_is_no_id_is_unknown_in_a_short_message(router, bad: object) -> None:  # type: ignore[no-untyped-def]
    router.route(WORLD.queries[1])
    for call in (
        lambda: router.feedback(bad, score=1.0),
        lambda: router.record_outcome(bad, latency_s=1.0),
    ):
        with pytest.raises(FeedbackError, match="Unknown decision id") as caught:
            call()
        assert len(str(caught.value)) < 300
    assert router.decision_llm(bad) is None


def test_two_threads_giving_feedback_on_one_decision_record_it_once(router) -> None:  # type: ignore[no-untyped-def]
    d = router.route(WORLD.queries[2])
    start, results = threading.Barrier(2), []

    def give() -> None:
        start.wait()
        try:
            results.append(router.feedback(d.decision_id, score=1.0).applied)
        except FeedbackError as exc:
            results.append(str(exc))

    threads = [threading.Thread(target=give) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(map(str, results)) == sorted(
        ["True", f"Decision {d.decision_id!r} already received feedback."]
    )
    assert [r["decision_id"] for r in router.log.rows()["feedback"]] == [d.decision_id]


def test_a_token_count_no_log_can_hold_is_refused_and_nothing_is_written(router) -> None:  # type: ignore[no-untyped-def]
    d = router.route(WORLD.queries[3])
    for bad in (2**31, 10**30, np.int64(2**40)):
        with pytest.raises(ConfigError, match=r"input_tokens must be None or an int >= 0 and <="):
            router.record_outcome(d.decision_id, input_tokens=bad)
    router.record_outcome(d.decision_id, input_tokens=2**31 - 1)  # the largest one is kept
    assert [r["input_tokens"] for r in router.log.rows()["outcomes"]] == [2**31 - 1]


@pytest.mark.parametrize("name", ["gpt\x00", "model\udcff"])
def test_an_llm_name_no_log_can_hold_is_refused(name: str) -> None:
    with pytest.raises(ConfigError, match="without NUL or lone surrogates"):
        LLMSpec(name, 1.0, 2.0)


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("postgresql+psycopg://u:s3cret@db:notaport/x", "is not a database URL"),
        ("://u:s3cret@", "is not a database URL"),
        ("postgresql+psycopg://u:s3cret@127.0.0.1:9/x?connect_timeout=abc", "cannot be opened"),
        ("postgresql+psycopg://u:p/s3cret@db:notaport/x", "is not a database URL"),
        ("postgresql+psycopg://u@127.0.0.1:9/x?password=s3cret&connect_timeout=abc", "cannot be"),
    ],
)
def test_a_bad_database_url_is_a_config_error_that_hides_its_password(url: str, says: str) -> None:
    with pytest.raises(ConfigError, match=says) as caught:
        MixLLMRouter(["a", "b"], encoder=HashingEncoder(), log=url)
    assert "s3cret" not in str(caught.value) and "***" in str(caught.value)


def test_an_unreachable_database_is_named_without_its_password() -> None:
    url = "postgresql+psycopg://u:s3cret@127.0.0.1:9/x?sslpassword=s3cret&connect_timeout=2"
    with pytest.raises(LogUnavailableError, match="cannot be opened") as caught:
        MixLLMRouter(["a", "b"], encoder=HashingEncoder(), log=url)
    assert "s3cret" not in str(caught.value) and "***" in str(caught.value)
