"""Learning from partial feedback: logged exploration, propensities, off-policy refit, and
training from a production log."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mixllm_core import DecisionPolicy, LLMSpec, MixLLMRouter, RoutingData
from mixllm_core.cli import main
from mixllm_core.data import load_routing_data, load_routing_log
from mixllm_core.decision import DecisionMaker, choice_probabilities
from mixllm_core.encoders import StaticEncoder
from mixllm_core.errors import ConfigError
from mixllm_core.log import MemoryLog, SQLiteLog
from mixllm_core.memory import query_key
from mixllm_core.offpolicy import dr_gain, dr_mean, ips_mean, ips_weights, naive_mean
from mixllm_core.predictors import QualityPredictor
from mixllm_core.snapshot import RefitGuard
from mixllm_core.testing import HashingEncoder, make_synthetic_world


@pytest.fixture(scope="module")
def world() -> RoutingData:
    return make_synthetic_world(400, seed=5)


# --------------------------------------------------------------------------- exploration


def test_choice_probabilities_follow_the_rule() -> None:
    s = np.array([0.30, 0.28, 0.10, 0.50])
    ok = np.array([True, True, True, False])
    greedy = choice_probabilities(s, ok, DecisionPolicy())
    np.testing.assert_allclose(greedy, [1, 0, 0, 0])
    soft = choice_probabilities(s, ok, DecisionPolicy(explore="softmax", temperature=0.02))
    expected = np.exp(np.array([0.30, 0.28, 0.10]) / 0.02)
    np.testing.assert_allclose(soft[:3], expected / expected.sum())
    assert soft[3] == 0.0
    eps = choice_probabilities(s, ok, DecisionPolicy(explore="epsilon", epsilon=0.3))
    np.testing.assert_allclose(eps, [0.8, 0.1, 0.1, 0.0])
    tie = choice_probabilities(np.array([1.0, 1.0]), np.array([True, True]), DecisionPolicy())
    np.testing.assert_allclose(tie, [0.5, 0.5])


@pytest.mark.parametrize(
    ("field", "value"),
    [("explore", "ucb"), ("temperature", 0.0), ("epsilon", 1.5)],
)
def test_exploration_knobs_are_validated(field: str, value: object) -> None:
    with pytest.raises(ConfigError, match=field):
        DecisionPolicy(**{field: value})  # type: ignore[arg-type]


def test_logged_propensity_is_the_frequency_of_the_choice() -> None:
    """Drawn 4000 times, each candidate is chosen as often as its logged propensity says
    (tolerance 0.03, about 4 standard errors)."""
    maker = DecisionMaker(DecisionPolicy(explore="softmax", temperature=0.05), seed=1)
    names = ["a", "b", "c"]
    quality, cost = np.array([0.80, 0.75, 0.60]), np.zeros(3)
    picks, logged = [], {}
    for _ in range(4000):
        d = maker.decide(names, quality, cost, 1.0)
        picks.append(d.llm)
        logged[d.llm] = d.propensity
    for name in names:
        assert abs(picks.count(name) / 4000 - logged[name]) < 0.03


def test_greedy_decisions_log_propensity_one(world: RoutingData) -> None:
    router = MixLLMRouter(encoder=HashingEncoder()).fit(world)
    assert {router.route(q).propensity for q in world.queries[:20]} == {1.0}


# --------------------------------------------------------------------------- the log


def test_sqlite_log_stores_propensity_and_migrates_an_old_file(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    con = sqlite3.connect(db)
    con.execute(
        "CREATE TABLE decisions (decision_id TEXT PRIMARY KEY, time REAL, llm TEXT, lam REAL, "
        "predicted_quality REAL, offline_quality REAL, predicted_cost REAL, query TEXT, x BLOB, "
        "candidates TEXT, query_hash TEXT)"
    )
    con.execute(
        "INSERT INTO decisions VALUES ('old', 1.0, 'a', 1.0, 0.5, 0.5, 0.0, 'q', ?, '[]', 'h')",
        (np.zeros(4, np.float32).tobytes(),),
    )
    con.commit()
    con.close()
    log = SQLiteLog(db)
    old = log.get_decision("old")
    assert old is not None and old.propensity is None
    router = MixLLMRouter(
        [LLMSpec("a", 0.1, 0.1), LLMSpec("b", 5.0, 15.0)],
        encoder=HashingEncoder(),
        policy=DecisionPolicy(explore="epsilon", epsilon=0.5),
        log=log,
    )
    d = router.route("What is 2 + 2?")
    assert d.propensity in (0.75, 0.25)
    router.feedback(d.decision_id, thumbs=True)
    log.close()
    reopened = SQLiteLog(db)
    again = reopened.get_decision(d.decision_id)
    assert again is not None and again.propensity == d.propensity
    assert [fb.propensity for fb in reopened.feedback()] == [d.propensity]
    assert reopened.rows()["decisions"][0]["propensity"] is None  # the old row
    reopened.close()


def test_memory_log_keeps_propensity() -> None:
    router = MixLLMRouter(
        ["a", "b"],
        encoder=HashingEncoder(),
        policy=DecisionPolicy(explore="epsilon", epsilon=1.0),
        log=MemoryLog(),
    )
    d = router.route("hello")
    assert d.propensity == 0.5
    router.feedback(d.decision_id, score=0.3)
    assert [fb.propensity for fb in router.log.feedback()] == [0.5]
    assert router.log.rows()["decisions"][0]["propensity"] == 0.5


def test_exploration_policy_and_propensities_survive_save_load(
    world: RoutingData, tmp_path: Path
) -> None:
    policy = DecisionPolicy(explore="softmax", temperature=0.03)
    db = tmp_path / "routing.db"
    router = MixLLMRouter(encoder=HashingEncoder(), policy=policy, log=db).fit(world)
    decisions = [router.route(q) for q in world.queries[:30]]
    for d in decisions:
        router.feedback(d.decision_id, score=0.5)
    saved = router.save(tmp_path / "router")
    router.log.close()
    loaded = MixLLMRouter.load(saved, encoder=HashingEncoder(), log=db)
    assert loaded.policy == policy
    logged = {fb.decision_id: fb.propensity for fb in loaded.log.feedback()}
    assert logged == {d.decision_id: d.propensity for d in decisions}
    assert min(logged.values()) < 1.0  # the policy explored
    loaded.log.close()


# --------------------------------------------------------------------------- unbiasedness


def _bandit_world(seed: int, n: int = 2000) -> tuple[np.ndarray, ...]:
    """Queries x ~ U(-1, 1); the LLM answers well (P = 0.9) on |x| < 0.5 and badly (0.1)
    elsewhere, so its true mean quality is 0.5. The logging policy chooses it with probability
    0.9 where it is good and 0.1 elsewhere, as a router that knows it would.

    Returns x, the quality y, whether it was chosen, and the probability it was."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, n)
    inner = np.abs(x) < 0.5
    y = (rng.random(n) < np.where(inner, 0.9, 0.1)).astype(float)
    p = np.where(inner, 0.9, 0.1)
    chosen = rng.random(n) < p
    return x, y, chosen, p


def test_ips_and_dr_estimators_are_unbiased_where_the_naive_mean_is_not() -> None:
    """Over 200 seeded logs of 2000 queries, the mean IPS and DR estimates of the LLM's mean
    quality are within 0.01 of the truth (0.5); the naive average of its feedback is off by
    more than 0.25."""
    truth = 0.5
    ips, dr, naive = [], [], []
    for seed in range(200):
        _, y, chosen, p = _bandit_world(seed)
        direct = np.full(len(y), 0.7)  # a biased direct model
        ips.append(ips_mean(y, chosen, p))
        dr.append(dr_mean(y, chosen, p, direct))
        naive.append(naive_mean(y, chosen))
    assert abs(np.mean(ips) - truth) < 0.01
    assert abs(np.mean(dr) - truth) < 0.01
    assert abs(np.mean(naive) - truth) > 0.25


def test_an_ips_weighted_fit_learns_the_population_where_a_naive_fit_does_not() -> None:
    """A linear quality model cannot represent the world above; fit on the chosen rows only,
    it predicts the quality of where the LLM was chosen (about 0.82 on average); weighted by
    inverse propensities, the population's (0.5), within 0.05."""
    x, y, chosen, p = _bandit_world(0, n=6000)
    X = x[:, None]
    naive = QualityPredictor("linear").fit(X[chosen], y[chosen])
    weighted = QualityPredictor("linear").fit(
        X[chosen], y[chosen], sample_weight=ips_weights(p[chosen], clip=0.05)
    )
    grid = np.linspace(-1, 1, 401)[:, None]
    assert abs(weighted.predict(grid).mean() - 0.5) < 0.05
    assert naive.predict(grid).mean() - 0.5 > 0.2


def test_ips_weights_are_clipped_and_self_normalised() -> None:
    w = ips_weights([0.001, 0.5, None], clip=0.1)
    raw = np.array([10.0, 2.0])
    np.testing.assert_allclose(w, [*(raw * 2 / raw.sum()), 1.0])
    with pytest.raises(ConfigError, match="propensities must be in"):
        ips_weights([0.0])


# --------------------------------------------------------------------------- refit


def test_refit_learns_the_encoders_corpus_part_again(world: RoutingData) -> None:
    offline, stream = world.subset(range(150)), world.subset(range(150, 400))
    router = MixLLMRouter(encoder=StaticEncoder(lsa_dims=8)).fit(offline)
    before = router.encoder
    for q in stream.queries[:60]:
        d = router.route(q)
        router.feedback(d.decision_id, score=0.5)
    refit = router.refit(guard=None)  # always refit: this test is about what refit learns
    assert router.encoder is not before
    assert router.encoder.corpus_key_ != before.corpus_key_  # type: ignore[attr-defined]
    assert set(refit) == set(router.llms)  # every LLM learned again on the new representation
    X, _ = router.features(stream.queries[:5])
    assert X.shape[1] == before.dim
    assert router.route(stream.queries[0]).llm in router.llms


# --------------------------------------------------------------------------- production logs


def _long_log(world: RoutingData, n: int) -> pd.DataFrame:
    """One LLM per query, chosen uniformly at random and rated: what a production log holds."""
    rng = np.random.default_rng(0)
    rows = []
    for i in range(n):
        j = int(rng.integers(len(world.llms)))
        rows.append(
            {
                "sample_id": f"q{i}",
                "query": world.queries[i],
                "llm": world.llms[j],
                "quality": world.quality[i, j],
                "propensity": 1 / len(world.llms),
                "timestamp": f"2026-11-{1 + (n - i) % 28:02d}T12:00:00Z",
            }
        )
    return pd.DataFrame(rows)


def test_a_partial_feedback_log_loads_trains_and_routes(world: RoutingData, tmp_path: Path) -> None:
    path = tmp_path / "log.csv"
    _long_log(world, 300).to_csv(path, index=False)
    data = load_routing_data(path)
    assert not data.is_complete and data.observed is not None
    assert data.observed.sum(axis=1).tolist() == [1] * len(data)
    assert data.propensity is not None and data.timestamp is not None
    stamps = np.nanmin(data.timestamp, axis=1)
    assert (np.diff(stamps) >= 0).all()  # oldest first
    router = MixLLMRouter(encoder=HashingEncoder()).fit(data)
    for name in router.llms:
        assert router.model.pool.quality[name].n_samples_ == len(data.observed_rows(name))
    assert router.route("Write a haiku about the sea.").llm in world.llms
    assert main(["train", "--data", str(path), "--out", str(tmp_path / "router")]) == 0
    assert (tmp_path / "router").is_dir()


def test_mixllm_train_from_a_routers_own_log(world: RoutingData, tmp_path: Path) -> None:
    db = tmp_path / "routing.db"
    policy = DecisionPolicy(explore="epsilon", epsilon=0.5)
    router = MixLLMRouter(encoder=HashingEncoder(), policy=policy, log=db).fit(world)
    for i, q in enumerate(world.queries[:120]):
        d = router.route(q)
        router.record_outcome(d.decision_id, cost=0.001)
        router.feedback(d.decision_id, score=float(world.quality[i, world.llms.index(d.llm)]))
    router.log.close()
    logged = load_routing_log(db)
    assert len(logged) == 120 and logged.observed is not None
    assert logged.propensity is not None and np.nanmin(logged.propensity) < 1
    assert np.nanmax(logged.cost) == pytest.approx(0.001)  # type: ignore[arg-type]
    out = tmp_path / "from-log"
    assert main(["train", "--log", str(db), "--out", str(out)]) == 0
    assert MixLLMRouter.load(out).route("Solve 3x = 9.").llm in world.llms


def test_concat_marks_missing_pairs_unobserved() -> None:
    full = RoutingData(["a", "b"], ["x", "y"], [[1.0, 0.0], [0.5, 0.5]], cost=[[1, 2], [1, 2]])
    log = RoutingData(
        ["c"],
        ["y"],
        [[1.0]],
        sample_ids=["log:1"],
        observed=np.array([[True]]),
        propensity=[[0.25]],
    )
    both = full.concat(log)
    assert both.observed is not None
    assert both.observed.tolist() == [[True, True], [True, True], [False, True]]
    assert both.cost is not None and np.isnan(both.cost[2]).all()
    assert both.propensity is not None and both.propensity[2, 1] == 0.25
    assert both.observed_rows("x").tolist() == [0, 1]


def test_refit_takes_truthful_feedback(world: RoutingData) -> None:
    """Feedback that tells the truth lowers the held-out error of some LLM, which takes it."""
    offline, stream = world.subset(range(100)), world.subset(range(100, 400))
    policy = DecisionPolicy(explore="epsilon", epsilon=0.5)
    router = MixLLMRouter(encoder=HashingEncoder(), policy=policy).fit(offline)
    given: dict[str, int] = {}
    for i, q in enumerate(stream.queries):
        d = router.route(q)
        router.feedback(d.decision_id, score=float(stream.quality[i, stream.llms.index(d.llm)]))
        given[d.llm] = given.get(d.llm, 0) + 1
    used = router.refit(guard=None)  # the per-LLM validation alone
    assert max(used.values()) > 0
    assert all(n in (0, given.get(name, 0)) for name, n in used.items())


# --------------------------------------------------------------------------- guarded refit


def test_dr_gain_is_unbiased_where_the_truth_is_known() -> None:
    """A uniform log of 3 actions, two fixed policies, a deliberately wrong direct model: the
    DR gain averaged over 200 seeded logs is within 0.01 of the true gain (0.25), and the mean
    reported standard error is close to the spread of the estimates."""
    rng = np.random.default_rng(3)
    n, m = 400, 3
    truth = rng.random((n, m))
    new = truth.argmax(axis=1)[:, None]
    old = np.zeros((n, 1), dtype=int)
    true_gain = float((truth[np.arange(n), new[:, 0]] - truth[:, 0]).mean())
    direct = np.full((n, m, 1), 0.5)
    gains, errors = [], []
    for _ in range(200):
        logged = rng.integers(m, size=n)
        reward = (rng.random(n) < truth[np.arange(n), logged]).astype(float)[:, None]
        g, se = dr_gain(new, old, logged, reward, np.full(n, 1 / m), direct)
        gains.append(g)
        errors.append(se)
    assert abs(np.mean(gains) - true_gain) < 0.01
    assert 0.7 < np.mean(errors) / np.std(gains) < 1.3


def _streamed(shuffle: bool) -> tuple[MixLLMRouter, RoutingData]:
    """A router fit on 40 rows of a synthetic world, then given ε-greedy feedback on 760 more:
    the true score of the chosen LLM, or (``shuffle``) that LLM's score on another query."""
    world = make_synthetic_world(800, seed=5)
    offline, stream = world.subset(range(40)), world.subset(range(40, 800))
    policy = DecisionPolicy(explore="epsilon", epsilon=0.5)
    router = MixLLMRouter(encoder=HashingEncoder(), policy=policy, seed=0).fit(offline)
    rows = np.random.default_rng(0).permutation(len(stream)) if shuffle else range(len(stream))
    for i, q in zip(rows, stream.queries):
        d = router.route(q)
        router.feedback(d.decision_id, score=float(stream.quality[i, stream.llms.index(d.llm)]))
    return router, offline


def test_a_refit_on_corrupted_feedback_is_refused_and_routes_as_no_feedback() -> None:
    router, offline = _streamed(shuffle=True)
    pool = router.model.pool
    report = router.refit(guard=RefitGuard())
    assert not report.accepted and dict(report) == {}
    assert report.gain <= report.stderr and report.n_holdout == 228  # 30% of 760
    assert "not above" in report.reason
    assert router.model.pool is pool  # the offline model is kept, not learned again
    unfed = MixLLMRouter(encoder=HashingEncoder(), seed=0).fit(offline)
    memory = router.model.memory  # keeps the feedback: probe queries it has not seen
    queries = [q for q in make_synthetic_world(80, seed=9).queries if query_key(q) not in memory]
    assert len(queries) >= 40
    for key in ("quality", "cost"):  # the heads dropped the feedback: exactly no feedback
        assert np.array_equal(router.predict(queries)[key], unfed.predict(queries)[key])


def test_a_refit_on_informative_feedback_is_accepted() -> None:
    """Accepted at one standard error (the default, three, is strict: see RefitGuard); the
    gain here is 2 standard errors."""
    router, _ = _streamed(shuffle=False)
    pool = router.model.pool
    report = router.refit(guard=RefitGuard(margin=1.0))
    assert report.accepted and report.gain > report.stderr > 0
    assert router.model.pool is not pool and sum(report.values()) > 100
    given: dict[str, int] = {}
    for fb in router.log.feedback():
        given[fb.llm] = given.get(fb.llm, 0) + 1
    assert all(n <= given[name] for name, n in report.items())  # the older 70% of it
    assert sum(report.values()) < 0.7 * sum(given.values()) + 1


def test_refit_guard_checks_its_settings() -> None:
    for bad in ({"holdout": 0.0}, {"margin": -1.0}, {"min_holdout": 1}, {"clip": 0.0}):
        with pytest.raises(ConfigError, match=next(iter(bad))):
            RefitGuard(**bad)  # type: ignore[arg-type]
