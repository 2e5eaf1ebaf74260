"""Replicas on one log learn as one router: sync folds every writer's feedback exactly once, in
id order; the coordinated refit publishes a version every replica swaps in."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest

import mixllm_core.sqllog as sqllog
from mixllm_core import MixLLMRouter
from mixllm_core.cli import main
from mixllm_core.refit_job import LEASE, run_refit
from mixllm_core.sqllog import SQLLog
from mixllm_core.testing import HashingEncoder, make_synthetic_world

WORLD = make_synthetic_world(300, seed=3)
PROBE = WORLD.queries[200:260]


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> Path:
    router = MixLLMRouter(encoder=HashingEncoder(), seed=0, online_ridge=1.0)
    return router.fit(WORLD.subset(range(150))).save(tmp_path_factory.mktemp("s") / "router")


@pytest.fixture
def replica(saved: Path, closing):  # type: ignore[no-untyped-def]
    """``replica(url, **kwargs)``: a router loaded from the saved directory onto that log."""

    def load(url: str, **kwargs: object) -> MixLLMRouter:
        kwargs.setdefault("sync_interval_s", None)
        return closing(MixLLMRouter.load(saved, encoder=HashingEncoder(), log=url, **kwargs))  # type: ignore[arg-type]

    return load


def _predictions(router: MixLLMRouter) -> tuple[np.ndarray, np.ndarray]:
    p = router.predict(PROBE)
    return np.asarray(p["quality"]), np.asarray(p["uncertainty"])


def _score(i: int) -> float:
    return float(i % 3 == 0)


def test_sync_folds_every_other_writers_feedback_exactly_once(log_url: str, replica) -> None:
    a, b = replica(log_url), replica(log_url)
    decisions = a.route_batch(WORLD.queries[:40], lam=5)
    for i, d in enumerate(decisions):
        (a if i % 2 else b).feedback(d.decision_id, score=_score(i))
    # each folded every row up to its own latest feedback when it gave it: a gave the last
    assert a.sync() == 0 and b.sync() == 1
    assert a.sync() == 0 and b.sync() == 0  # nothing twice
    for r in (a, b):
        assert int(r.get_state().heads.n_updates.sum()) == 40  # type: ignore[union-attr]
        assert r.get_state().feedback_seq == 40
    late = replica(log_url)  # a replica started later catches up on load
    assert late.sync() == 0 and int(late.get_state().heads.n_updates.sum()) == 40  # type: ignore[union-attr]


def test_replicas_predict_identically_whichever_received_the_feedback(
    log_url: str, replica, tmp_path: Path
) -> None:
    # scenario 1: the feedback reaches two replicas alternately; scenario 2: one router on
    # another log receives all of it. After sync, all three predict the same, bit for bit.
    a, b = replica(log_url), replica(log_url)
    alone = replica(f"sqlite:///{tmp_path / 'alone.db'}")
    shared_d = a.route_batch(WORLD.queries[:60], lam=5)
    alone_d = alone.route_batch(WORLD.queries[:60], lam=5)
    assert [d.llm for d in shared_d] == [d.llm for d in alone_d]
    for i, (d, e) in enumerate(zip(shared_d, alone_d)):
        (b if i % 3 else a).feedback(d.decision_id, score=_score(i))
        alone.feedback(e.decision_id, score=_score(i))
    a.sync(), b.sync()
    for got in (_predictions(b), _predictions(alone)):
        for x, y in zip(got, _predictions(a)):
            np.testing.assert_array_equal(x, y)
    assert not np.array_equal(_predictions(a)[0], _predictions(replica(str(tmp_path / "x.db")))[0])


def test_a_saved_router_resumes_without_baking_in_a_gap(log_url: str, replica, tmp_path) -> None:
    # the save of a replica that had not yet seen another's earlier feedback still lets a
    # router loaded from it fold that feedback
    a, b = replica(log_url), replica(log_url)
    da, db = a.route(WORLD.queries[0]), b.route(WORLD.queries[1])
    b.feedback(db.decision_id, score=1.0)  # id 1, by b
    a.feedback(da.decision_id, score=0.0)  # id 2, by a: a folds id 1 first
    assert int(a.get_state().heads.n_updates.sum()) == 2  # type: ignore[union-attr]
    saved = a.save(tmp_path / "again")
    again = MixLLMRouter.load(saved, encoder=HashingEncoder(), log=a.log, sync_interval_s=None)
    assert again.sync() == 0 and int(again.get_state().heads.n_updates.sum()) == 2  # type: ignore[union-attr]


def test_a_route_starts_a_background_sync_without_waiting_for_it(log_url: str, replica) -> None:
    writer, reader = replica(log_url), replica(log_url, sync_interval_s=0.0)
    for i, d in enumerate(writer.route_batch(WORLD.queries[:20])):
        writer.feedback(d.decision_id, score=_score(i))
    deadline = time.monotonic() + 30
    while int(reader.get_state().heads.n_updates.sum()) < 20:  # type: ignore[union-attr]
        assert time.monotonic() < deadline, "the background sync never caught up"
        reader.route(WORLD.queries[0])  # each route may start one; none waits for it
        time.sleep(0.02)
    for x, y in zip(_predictions(reader), _predictions(writer)):
        np.testing.assert_array_equal(x, y)


def test_the_coordinated_refit_publishes_a_version_every_replica_swaps_in(
    log_url: str, replica, saved: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    monkeypatch.setattr(sqllog, "PAGE_ROWS", 7)  # the refit reads the log in many pages
    a, b = replica(log_url), replica(log_url)
    decisions = a.route_batch(WORLD.queries[150:250], lam=5)
    for i, d in enumerate(decisions):
        (a if i % 2 else b).feedback(d.decision_id, score=_score(i))
    before = {n: a.model.pool.quality[n].n_samples_ for n in a.llms}
    holder = SQLLog(log_url)
    try:  # while another process holds the lease, nothing happens
        assert holder.acquire_lease(LEASE, "someone-else", 60.0)
        report = run_refit(log_url, saved, encoder=HashingEncoder())
        assert not report.ran and holder.latest_state_version(None) == 0
        holder.release_lease(LEASE, "someone-else")
    finally:
        holder.close()
    report = run_refit(log_url, saved, encoder=HashingEncoder())
    assert report.ran and report.version == 1 and report.feedback_seq == 100
    assert sum(report.refit.values()) == 100  # every row, read 7 at a time
    old_model = b.model
    stop, routed = threading.Event(), []

    def route() -> None:  # routes go on while b swaps the version in
        while not stop.is_set():
            routed.append(b.route(WORLD.queries[0]).llm)

    t = threading.Thread(target=route)
    t.start()
    try:
        assert b.sync() == 0
    finally:
        stop.set()
        t.join(timeout=30)
    assert routed and b.model is not old_model
    for name, n in report.refit.items():
        assert b.model.pool.quality[name].n_samples_ == before[name] + n
    assert a.sync() == 0
    for x, y in zip(_predictions(a), _predictions(b)):
        np.testing.assert_array_equal(x, y)
    fresh = replica(log_url)  # a replica started now loads the published version
    np.testing.assert_array_equal(_predictions(fresh)[0], _predictions(a)[0])
    # the cron job's command does the same
    assert main(["refit", "--log", log_url, "--router", str(saved)]) == 0
    assert "published version 2" in capsys.readouterr().out


def test_the_adapters_build_their_router_on_a_shared_log(tmp_path: Path, closing) -> None:
    from mixllm_langchain import MixLLMChat
    from mixllm_langchain.testing import ScriptedChatModel
    from mixllm_llamaindex import MixLLM
    from mixllm_llamaindex.testing import ScriptedLLM

    url = f"sqlite:///{tmp_path / 'adapters.db'}"
    chat = MixLLMChat(
        models={n: ScriptedChatModel(model_name=n) for n in ("a", "b")},
        prices={"a": (0.1, 0.2), "b": (1.0, 2.0)},
        encoder=HashingEncoder(),
        log=url,
        sync_interval_s=None,
    )
    llm = MixLLM(
        models={n: ScriptedLLM(label=n) for n in ("a", "b")},
        prices={"a": (0.1, 0.2), "b": (1.0, 2.0)},
        encoder=HashingEncoder(),
        log=url,
        sync_interval_s=None,
    )
    routers = [closing(chat.router), closing(llm._router)]
    reply = chat.invoke("Say hi")
    assert [r.applied for r in chat.feedback(reply, thumbs=True)] == [True]
    assert routers[1].sync() == 1  # the other adapter's router learned it
    assert isinstance(routers[1].log, SQLLog) and routers[1].sync_interval_s is None
    with pytest.raises(Exception, match="configure a cold-start router"):
        MixLLMChat(models=chat.models, router=routers[0], log=url)
