from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from mixllm_core import (
    ConfigError,
    CorruptStateError,
    DataFormatError,
    DecisionPolicy,
    FeedbackError,
    LLMSpec,
    MixLLMRouter,
)
from mixllm_core.errors import EmptyPoolError, UnknownLLMError
from mixllm_core.experiments.replay import choose_indices
from mixllm_core.testing import HashingEncoder, make_synthetic_world


@pytest.fixture(scope="module")
def world():
    return make_synthetic_world(1000, seed=0)


@pytest.fixture
def router(world) -> MixLLMRouter:
    train, _ = world.train_test_split()
    return MixLLMRouter(encoder=HashingEncoder(), quality_model="linear", seed=0).fit(train)


def _mean_outcome(router, test, lam):
    p = router.predict(test.queries)
    idx = choose_indices(router, p["quality"], p["cost"], lam)
    rows = np.arange(len(test))
    return test.quality[rows, idx].mean(), test.cost[rows, idx].mean()


def test_router_beats_the_same_budget_single_llm(router, world) -> None:
    _, test = world.train_test_split()
    frontier = test.llms.index("frontier")
    f_cost, f_quality = test.cost[:, frontier].mean(), test.quality[:, frontier].mean()
    points = [_mean_outcome(router, test, lam) for lam in (1, 2, 5, 10, 20, 50)]
    # some λ reaches the frontier model's quality (within 3 points) at under 70% of its cost
    assert any(q >= f_quality - 0.03 and c < 0.7 * f_cost for q, c in points), points
    q_hi, c_hi = _mean_outcome(router, test, 100.0)
    q_lo, c_lo = _mean_outcome(router, test, 0.0)
    assert c_lo < c_hi and q_lo < q_hi


def test_decision_breakdown_explains_the_choice(router) -> None:
    d = router.route([("system", "be brief"), ("user", "solve the integral of a prime")], lam=5)
    # a math query goes to the math specialist, cheaper than frontier and better at math than
    # the rest (at λ=5 it takes 34 of the 37 held-out math queries of this world)
    assert d.llm == "math-pro" and len(d.candidates) == len(router.llms)
    best = max((c for c in d.candidates if c.eligible), key=lambda c: c.score)
    assert best.llm == d.llm
    assert json.loads(json.dumps(d.to_dict()))["llm"] == d.llm


def test_route_batch_matches_route(router, world) -> None:
    qs = world.queries[:20]
    batch = [d.llm for d in router.route_batch(qs, lam=3)]
    single = [router.route(q, lam=3).llm for q in qs]
    assert batch == single


def test_removed_llm_is_never_chosen(router, world) -> None:
    d_before = router.route_batch(world.queries[:100], lam=1000)
    assert any(d.llm == "frontier" for d in d_before)
    router.remove_llm("frontier")
    after = router.route_batch(world.queries[:100], lam=1000)
    assert all(d.llm != "frontier" for d in after)
    # its pending feedback is only logged, never applied
    pending = next(d for d in d_before if d.llm == "frontier")
    result = router.feedback(pending.decision_id, score=1.0)
    assert not result.applied and "no longer in the pool" in result.reason
    with pytest.raises(UnknownLLMError, match="frontier"):
        router.remove_llm("frontier")


def test_add_llm_trains_only_its_own_predictors(world) -> None:
    train, _ = world.train_test_split()
    pool = train.select_llms(["tiny-7b", "mid-70b"])
    router = MixLLMRouter(encoder=HashingEncoder(), quality_model="linear").fit(pool)
    before = {n: router._quality[n] for n in router.llms}
    router.add_llm(train.specs["math-pro"], data=train)
    assert router.llms == ["tiny-7b", "mid-70b", "math-pro"]
    assert all(router._quality[n] is before[n] for n in before)
    assert router._quality["math-pro"].n_samples_ == len(train)
    math_q = [q for q, t in zip(world.queries, world.tasks) if t == "math"][:30]
    assert sum(d.llm == "math-pro" for d in router.route_batch(math_q, lam=100)) > 15
    with pytest.raises(ConfigError, match="already in the pool"):
        router.add_llm("tiny-7b")


def test_cold_start_is_price_aware_and_explores_new_llms() -> None:
    specs = [LLMSpec("small", 0.1, 0.2), LLMSpec("large", 5.0, 15.0)]
    router = MixLLMRouter(specs, encoder=HashingEncoder())
    assert router.route("hello", lam=0).llm == "small"
    assert router.route("hello", lam=1000).llm == "large"
    router._ensure_heads(HashingEncoder().dim)
    router.add_llm(LLMSpec("fresh", 0.1, 0.2))
    p = router.predict(["hello there"])
    unc = dict(zip(p["llms"], p["uncertainty"][0]))
    assert unc["fresh"] > unc["small"]


def test_feedback_moves_predictions_and_rejects_bad_ids(world) -> None:
    train, _ = world.train_test_split()
    # a weak online prior (ridge 1) so that one feedback visibly moves the prediction
    router = MixLLMRouter(encoder=HashingEncoder(), quality_model="linear", online_ridge=1.0).fit(
        train
    )
    q = "write a poem about a river"
    d = router.route(q, lam=5)
    before = router.predict([q])["quality"][0, router.llms.index(d.llm)]
    router.feedback(d.decision_id, score=0.0)
    after = router.predict([q])["quality"][0, router.llms.index(d.llm)]
    assert after < before - 0.05
    with pytest.raises(FeedbackError, match="already received feedback"):
        router.feedback(d.decision_id, thumbs=True)
    with pytest.raises(FeedbackError, match="Unknown decision id 'nope'"):
        router.feedback("nope", score=0.5)
    d2 = router.route(q)
    with pytest.raises(FeedbackError, match=r"score must be a number in \[0, 1\], got 1.5"):
        router.feedback(d2.decision_id, score=1.5)
    with pytest.raises(FeedbackError, match="exactly one"):
        router.feedback(d2.decision_id)


def test_save_load_gives_identical_decisions(router, world, tmp_path: Path) -> None:
    d = router.route("write a poem", lam=5)
    router.feedback(d.decision_id, score=1.0)
    router.save(tmp_path / "r")
    loaded = MixLLMRouter.load(tmp_path / "r")
    qs = world.queries[:80]
    for lam in (0.1, 2.0, 50.0):
        assert [x.llm for x in router.route_batch(qs, lam=lam)] == [
            x.llm for x in loaded.route_batch(qs, lam=lam)
        ]
    np.testing.assert_allclose(router.predict(qs)["quality"], loaded.predict(qs)["quality"])


@pytest.mark.parametrize("kind", ["knn", "rf", "mlp"])
def test_save_load_round_trips_every_model_kind(world, tmp_path: Path, kind: str) -> None:
    train, _ = world.train_test_split()
    router = MixLLMRouter(encoder=HashingEncoder(), quality_model=kind).fit(
        train.subset(range(200))
    )
    loaded = MixLLMRouter.load(router.save(tmp_path / kind))
    qs = world.queries[:50]
    np.testing.assert_allclose(router.predict(qs)["quality"], loaded.predict(qs)["quality"])


def test_corrupted_save_is_rejected_and_failed_save_keeps_the_old_one(
    router, tmp_path: Path
) -> None:
    path = router.save(tmp_path / "r")
    (path / "router.json").write_text((path / "router.json").read_text().replace('"lam"', '"lamb"'))
    with pytest.raises(CorruptStateError, match="router.json.*checksum"):
        MixLLMRouter.load(path)
    path = router.save(tmp_path / "r2")
    (path / "online.npz").unlink()
    with pytest.raises(CorruptStateError, match="online.npz.*missing"):
        MixLLMRouter.load(path)
    with pytest.raises(CorruptStateError, match="manifest.json is missing"):
        MixLLMRouter.load(tmp_path)
    good = router.save(tmp_path / "r3")

    class Broken:
        dim = 64

        def get_config(self):
            raise RuntimeError("disk full")

    router_encoder, router.encoder = router.encoder, Broken()
    try:
        with pytest.raises(RuntimeError, match="disk full"):
            router.save(good)
    finally:
        router.encoder = router_encoder
    assert MixLLMRouter.load(good).llms == router.llms  # the previous save is intact


def test_bad_inputs_name_the_value(world) -> None:
    with pytest.raises(EmptyPoolError, match="empty"):
        MixLLMRouter(encoder=HashingEncoder()).route("hi")
    with pytest.raises(ConfigError, match="appears twice"):
        MixLLMRouter(["a", "a"])
    with pytest.raises(DataFormatError, match=r"\['nope'\] have no column"):
        MixLLMRouter(["nope"], encoder=HashingEncoder()).fit(world)
    router = MixLLMRouter(["a", "b"], encoder=HashingEncoder())
    with pytest.raises(UnknownLLMError, match="'c'"):
        router.route("hi", exclude=["c"])
    with pytest.raises(EmptyPoolError, match="last LLM"):
        MixLLMRouter(["a"]).remove_llm("a")
    with pytest.raises(ConfigError, match="Cannot read a query"):
        router.route([object()])


def test_budget_constraint_keeps_spend_within_budget(world) -> None:
    train, _ = world.train_test_split()
    budget = 0.01
    router = MixLLMRouter(
        encoder=HashingEncoder(),
        quality_model="linear",
        policy=DecisionPolicy(lam=1000, budget=budget),
    ).fit(train)
    spent = 0.0
    for q in world.queries[:200]:
        d = router.route(q)
        if not d.fallback:
            router.record_outcome(d.decision_id, cost=d.predicted_cost)
            spent += d.predicted_cost
    assert spent <= budget + 1e-12
    assert router.budget.remaining() < 0.5 * budget
