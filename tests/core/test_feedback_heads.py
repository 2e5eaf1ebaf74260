"""Online heads of a fitted router: feedback corrects an offline predictor that is wrong, each
feedback weighing one training row, and a guarded refit keeps heads only when they route
held-out feedback better."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from mixllm_core import DecisionPolicy, MixLLMRouter
from mixllm_core.data import RoutingData
from mixllm_core.errors import ConfigError
from mixllm_core.head_guard import _learned, guard_heads
from mixllm_core.online import HeadsTable, training_prior
from mixllm_core.snapshot import GUARD_LAMBDAS, RefitGuard, RefitOutcome
from mixllm_core.testing import HashingEncoder, make_synthetic_world

BIASED = "mid-70b"


def _biased_world() -> tuple[RoutingData, RoutingData, RoutingData]:
    """Offline rows where ``BIASED`` failed on every other query it actually solved (its
    offline predictor is far too low), a stream and held-out rows with the true scores."""
    world = make_synthetic_world(1000, seed=3)
    offline, stream, held = (
        world.subset(range(200)),
        world.subset(range(200, 700)),
        world.subset(range(700, 1000)),
    )
    quality = offline.quality.copy()
    j = offline.llms.index(BIASED)
    solved = np.flatnonzero(quality[:, j] == 1.0)
    quality[solved[::2], j] = 0.0
    return dataclasses.replace(offline, quality=quality), stream, held


def _feed(router: MixLLMRouter, stream: RoutingData, only: str | None = None) -> None:
    others = [n for n in stream.llms if n != only] if only else []
    for i, q in enumerate(stream.queries):
        d = router.route(q, exclude=others)
        router.feedback(d.decision_id, score=float(stream.quality[i, stream.llms.index(d.llm)]))


def test_feedback_moves_a_biased_prediction_toward_the_truth() -> None:
    """500 feedbacks on ``BIASED`` (200 training rows, so a shrinkage of about 500/700): its
    mean predicted quality on held-out queries closes more than half of the gap to the truth
    (seeded; measured: from 0.38 under the truth to 0.14), and no other LLM's prediction
    moves."""
    offline, stream, held = _biased_world()
    router = MixLLMRouter(encoder=HashingEncoder(), seed=0).fit(offline)
    j = held.llms.index(BIASED)
    truth = float(held.quality[:, j].mean())
    before = router.predict(held.queries)["quality"]
    assert truth - float(before[:, j].mean()) > 0.3
    _feed(router, stream, only=BIASED)
    after = router.predict(held.queries)["quality"]
    gap_before = truth - float(before[:, j].mean())
    assert abs(float(after[:, j].mean()) - truth) < 0.5 * gap_before
    others = [k for k in range(len(held.llms)) if k != j]
    assert np.array_equal(after[:, others], before[:, others])


def test_a_feedback_weighs_one_training_row() -> None:
    """A head that starts from its LLM's training rows moves like a ridge on those rows (of
    residual 0) plus the feedback: after 99 training rows, one feedback of residual 1 at the same
    point moves the prediction by 1/101 (the +1 is the ridge)."""
    X = np.ones((99, 1))
    table = HeadsTable.empty(1, ridge=50.0).with_head("a")
    moved = table.learned("a", np.ones(1), 1.0, prior=training_prior(X))
    corr, _ = moved.predict(("a",), np.ones((1, 1)))
    assert corr[0, 0] == pytest.approx(2 / (2 * 100 + 1), rel=1e-6)  # the bias and x share it
    batch = table.fitted("a", np.ones((1, 1)), np.ones(1), prior=training_prior(X))
    assert np.allclose(batch.predict(("a",), np.ones((1, 1)))[0], corr)


def test_a_cold_head_still_moves_fast() -> None:
    """Without training rows nothing shrinks the head: 20 thumbs down on a cold LLM move its
    prediction from 0.5 to below 0.05."""
    router = MixLLMRouter(["a", "b"], encoder=HashingEncoder(), seed=0)
    query = "Summarise the attached report in three bullet points."
    before = float(router.predict([query])["quality"][0, 0])
    for _ in range(20):
        d = router.route(query, exclude=["b"])
        router.feedback(d.decision_id, thumbs=False)
    assert before == pytest.approx(0.5, abs=0.01)
    assert float(router.predict([query])["quality"][0, 0]) < 0.05


def _streamed(head_margin: float | None) -> tuple[MixLLMRouter, MixLLMRouter, RefitOutcome]:
    """A router fit on 40 rows of a synthetic world and given ε-greedy feedback on 760 more,
    then refit with the refit itself refused (margin beyond reach); the same router never given
    feedback; and the refit's report."""
    world = make_synthetic_world(800, seed=5)
    offline, stream = world.subset(range(40)), world.subset(range(40, 800))
    policy = DecisionPolicy(explore="epsilon", epsilon=0.5)
    router = MixLLMRouter(encoder=HashingEncoder(), policy=policy, seed=0).fit(offline)
    _feed(router, stream)
    guard = RefitGuard(margin=1e9, head_margin=head_margin, head_folds=0)
    report = router.refit(guard=guard)
    assert not report.accepted
    return (
        router,
        MixLLMRouter(encoder=HashingEncoder(), policy=policy, seed=0).fit(offline),
        report,
    )


def _true_reward(router: MixLLMRouter, held: RoutingData) -> float:
    """The true reward ``λ/(1+λ)·quality − 1/(1+λ)·cost/c_ref`` of ``router``'s greedy choices
    for ``held``, averaged over the guard's λ grid (what its test estimates)."""
    pred = router.predict(held.queries)
    Q, C = np.asarray(pred["quality"]), np.asarray(pred["cost"])
    cols = [held.llms.index(n) for n in pred["llms"]]
    quality, cost = held.quality[:, cols], np.asarray(held.cost)[:, cols] / router.c_ref()
    rows, total = np.arange(len(held)), 0.0
    for lam in GUARD_LAMBDAS:
        wq, wc = lam / (1 + lam), 1 / (1 + lam)
        chosen = (wq * Q - wc * C / router.c_ref()).argmax(axis=1)
        total += float((wq * quality[rows, chosen] - wc * cost[rows, chosen]).mean())
    return total / len(GUARD_LAMBDAS)


def test_a_refused_refit_keeps_heads_that_route_held_out_feedback_better() -> None:
    """The refit itself is refused; the heads pass their test (newest 30% held out: gain 2.5
    standard errors, seeded; kept at 1) and are kept, learned from all the feedback: on 400 new queries of the same world
    the router's choices earn a higher true reward, averaged over the guard's λ grid, than
    without feedback (measured +0.010; asserted > 0). Untested (``head_margin=None``), the
    heads are not kept."""
    router, unfed, report = _streamed(head_margin=1.0)
    assert report.heads_kept and report.heads_gain > 2 * report.heads_stderr > 0
    assert "heads' estimated gain" in report.reason
    held = make_synthetic_world(400, seed=11)
    assert _true_reward(router, held) > _true_reward(unfed, held)
    untested = RefitGuard(head_margin=None)
    feedback = list(router.log.feedback())
    model = router.model
    assert model.heads is not None
    assert guard_heads(model.pool, model.heads, feedback, untested).heads is None
    # cross-fitted (the default split: every record counts): a smaller standard error
    folded = guard_heads(model.pool, model.heads, feedback, RefitGuard(head_margin=1.0))
    assert folded.heads is not None and folded.stderr < 0.7 * report.heads_stderr


def test_the_heads_test_settings_are_checked() -> None:
    with pytest.raises(ConfigError, match="head_margin"):
        RefitGuard(head_margin=-1.0)
    with pytest.raises(ConfigError, match="head_folds"):
        RefitGuard(head_folds=1)


def test_the_heads_test_learns_as_the_router_does() -> None:
    """Heads the test learns start from the training-row prior only where the router's own
    do (``online_ridge`` unset); with ``training_prior=False`` from ``ridge·I``, so their ``A``
    holds the feedback rows alone. Feedback the log marks as not applied is ignored."""
    world = make_synthetic_world(300, seed=5)
    router = MixLLMRouter(encoder=HashingEncoder(), seed=0).fit(world.subset(range(40)))
    model = router.model
    assert model.heads is not None
    name, dim, ridge = model.pool.names[0], model.heads.dim, model.heads.ridge
    rng = np.random.default_rng(0)
    X = rng.normal(size=(25, dim)).astype(np.float32)
    llm, residual, rows = np.zeros(25, int), rng.normal(size=25), np.arange(25)
    base = model.heads
    primed = _learned(base, model.pool, X, llm, residual, rows, True)
    flat = _learned(base, model.pool, X, llm, residual, rows, False)
    Z = np.hstack([X.astype(np.float64), np.ones((25, 1))])
    A_flat = np.linalg.inv(flat.matrix(name))
    np.testing.assert_allclose(A_flat, ridge * np.eye(dim + 1) + Z.T @ Z, rtol=1e-6, atol=1e-6)
    A_primed = np.linalg.inv(primed.matrix(name))
    prior = model.pool.head_prior(name, dim)
    assert prior is not None  # the 40 training rows, as rows of residual 0
    np.testing.assert_allclose(A_primed, np.linalg.inv(prior) + Z.T @ Z, rtol=1e-5, atol=1e-4)
    for d in router.route_batch(world.queries[40:120], lam=5):
        router.feedback(d.decision_id, score=1.0)
    feedback = list(router.log.feedback())
    unapplied = [dataclasses.replace(fb, applied=False) for fb in feedback]
    keep_all = RefitGuard(head_margin=0.0, head_folds=0)
    assert guard_heads(model.pool, model.heads, feedback, keep_all).reason[:2] != "0 "
    assert guard_heads(model.pool, model.heads, unapplied, keep_all).reason.startswith("0 held")
