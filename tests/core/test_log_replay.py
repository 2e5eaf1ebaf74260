"""The durable log, refit, the replay experiments and the latency simulation."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from mixllm_core import DecisionPolicy, LLMSpec, MixLLMRouter
from mixllm_core.experiments.replay import split_offline_stream, stream_feedback
from mixllm_core.experiments.simulate import ServingProfile, compare_penalty
from mixllm_core.log import SQLiteLog
from mixllm_core.testing import HashingEncoder, make_synthetic_world


@pytest.fixture(scope="module")
def world():
    return make_synthetic_world(800, seed=3)


def _router(data, **kwargs) -> MixLLMRouter:
    return MixLLMRouter(encoder=HashingEncoder(), seed=0, **kwargs).fit(data)


CRASHING_CHILD = r"""
import os, sys
from mixllm_core import MixLLMRouter
from mixllm_core.testing import HashingEncoder, make_synthetic_world
data = make_synthetic_world(300, seed=3)
router = MixLLMRouter.load(sys.argv[1], encoder=HashingEncoder(), log=sys.argv[2])
for i, q in enumerate(data.queries[:40]):
    d = router.route(q)
    if i % 2 == 0:
        router.feedback(d.decision_id, score=float(i % 4 == 0))
        print("ACK", d.decision_id, flush=True)  # acknowledged to the caller
    else:
        print("OPEN", d.decision_id, flush=True)
os.kill(os.getpid(), 9)  # the process dies without closing anything
"""


def test_kill_between_calls_loses_nothing_acknowledged(world, tmp_path: Path) -> None:
    saved = _router(world.subset(range(300))).save(tmp_path / "router")
    db = tmp_path / "routing.db"
    proc = subprocess.run(
        [sys.executable, "-c", CRASHING_CHILD, str(saved), str(db)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == -9
    acked = [line.split()[1] for line in proc.stdout.splitlines() if line.startswith("ACK")]
    still_open = [line.split()[1] for line in proc.stdout.splitlines() if line.startswith("OPEN")]
    assert len(acked) == 20 and len(still_open) == 20
    restarted = MixLLMRouter.load(saved, encoder=HashingEncoder(), log=db)
    assert all(restarted.log.has_feedback(d) for d in acked)
    assert restarted._heads is not None and int(restarted._heads.n_updates.sum()) == 20
    # decisions made before the crash can still get feedback after it, exactly once
    result = restarted.feedback(still_open[0], thumbs=True)
    assert result.applied
    with pytest.raises(Exception, match="already received feedback"):
        restarted.feedback(acked[0], score=1.0)


def test_load_with_log_replays_feedback_given_after_the_save(world, tmp_path: Path) -> None:
    db = tmp_path / "routing.db"
    live = MixLLMRouter(encoder=HashingEncoder(), log=db, online_ridge=1.0).fit(world)
    saved = live.save(tmp_path / "router")
    for q in world.queries[:30]:
        d = live.route(q, lam=5)
        live.feedback(d.decision_id, score=0.0)
    restarted = MixLLMRouter.load(saved, encoder=HashingEncoder(), log=SQLiteLog(db))
    qs = world.queries[30:60]
    np.testing.assert_allclose(
        restarted.predict(qs)["quality"], live.predict(qs)["quality"], atol=1e-9
    )
    assert [d.llm for d in restarted.route_batch(qs, lam=5)] == [
        d.llm for d in live.route_batch(qs, lam=5)
    ]
    exported = live.log.export(tmp_path / "log.jsonl")
    tables = [json.loads(line)["table"] for line in exported.read_text().splitlines()]
    assert tables.count("feedback") == 30 and tables.count("decisions") >= 90


def test_refit_retrains_on_training_data_plus_feedback(world) -> None:
    offline, stream = split_offline_stream(world, 0.3, seed=0)
    router = _router(offline)
    before = {n: router._quality[n].n_samples_ for n in router.llms}
    report = stream_feedback(router, stream.subset(range(200)), "refined", lam=5.0)
    per_llm = {n: int(c) for n, c in zip(router._heads.names, router._heads.n_updates)}
    used = router.refit(guard=None)  # unguarded: what a refit learns
    assert set(used) == set(router.llms)  # every LLM is learned again (all have offline data)
    assert {n for n, c in used.items() if c} <= {n for n, c in per_llm.items() if c > 0}
    for name, n in used.items():  # n: its feedback, or 0 where it did not help (validated)
        assert n in (0, per_llm[name])
        assert router._quality[name].n_samples_ == before[name] + n
    assert int(router._heads.n_updates.sum()) == 0  # their knowledge moved into the offline model
    router.add_llm(LLMSpec("newcomer", 1.0, 1.0))
    for q in stream.queries[200:205]:
        router._apply_feedback("newcomer", router.features([q])[0][0], 0.3)
    assert "newcomer" not in router.refit(guard=None)  # a newcomer needs min_feedback (20) first
    assert int(dict(zip(router._heads.names, router._heads.n_updates))["newcomer"]) == 5
    assert report.summary()["n"] == 200


def test_concurrent_routing_and_feedback_on_sqlite(world, tmp_path: Path) -> None:
    router = MixLLMRouter(encoder=HashingEncoder(), log=tmp_path / "r.db").fit(world)
    errors: list[BaseException] = []

    def work(offset: int) -> None:
        try:
            for q in world.queries[offset : offset + 40]:
                d = router.route(q)
                router.feedback(d.decision_id, thumbs=True)
                router.record_outcome(d.decision_id, latency_s=0.1, cost=1e-6)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(40 * i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    rows = router.log.rows()
    assert len(rows["feedback"]) == 240 and len(rows["outcomes"]) == 240
    assert int(router._heads.n_updates.sum()) == 240


def test_added_llm_is_explored_then_used(world) -> None:
    others = [n for n in world.llms if n != "coder-34b"]
    offline, stream = split_offline_stream(world, 0.3, seed=0)
    router = _router(
        offline.select_llms(others), policy=DecisionPolicy(alpha=0.5), online_ridge=1.0
    )
    report = stream_feedback(
        router,
        stream,
        "refined",
        lam=5.0,
        add_llm=(100, lambda r: r.add_llm(world.specs["coder-34b"])),
    )
    assert report.share("coder-34b", 0, 100) == 0.0
    assert report.share("coder-34b", 100, 200) > 0.05  # a wide prior gets it explored
    code = [i for i, t in enumerate(world.tasks) if t == "code"]
    picks = [d.llm for d in router.route_batch([world.queries[i] for i in code[:40]], lam=5.0)]
    assert picks.count("coder-34b") > 10  # and then used where it is good


def test_latency_penalty_cuts_queries_over_tau(world) -> None:
    train, test = world.train_test_split()
    router = _router(train)
    profiles = {n: ServingProfile(concurrency=4, tokens_per_second=40.0) for n in router.llms}
    result = compare_penalty(
        router, test, lam=5.0, rate_qps=1.5, n_queries=600, tau=20.0, profiles=profiles
    )
    without, with_ = result["without_penalty"], result["with_penalty"]
    assert without["share_over_tau"] > 0.1
    assert with_["share_over_tau"] < 0.5 * without["share_over_tau"]
    assert with_["p95_latency_s"] < without["p95_latency_s"]


def test_busy_llm_loses_traffic(world) -> None:
    router = MixLLMRouter(
        [LLMSpec("a", 1.0, 1.0), LLMSpec("b", 1.0, 1.0)],
        encoder=HashingEncoder(),
        policy=DecisionPolicy(lam=1.0, beta=1.0, tau=5.0),
    )
    router.tracker.observe_service("a", 2.0)
    router.tracker.observe_service("b", 2.0)
    free = [router.route(q).llm for q in world.queries[:50]]
    tokens = [router.tracker.start("a") for _ in range(5)]
    busy = [router.route(q).llm for q in world.queries[:50]]
    for t in tokens:
        router.tracker.finish(t)
    assert free.count("a") > 0 and busy.count("a") == 0
