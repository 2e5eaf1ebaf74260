"""The memory of seen queries: observed outcomes mixed into the prediction of a repeated query."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from mixllm_core import LLMSpec, MixLLMRouter, RoutingData
from mixllm_core.errors import ConfigError
from mixllm_core.log import MemoryLog, SQLiteLog
from mixllm_core.memory import OutcomeMemory, query_key
from mixllm_core.testing import HashingEncoder, make_synthetic_world

TOPICS = ["algebra", "poetry", "chemistry", "history", "python", "law", "music", "sports"]


@pytest.fixture(scope="module")
def coin_world() -> RoutingData:
    """Two LLMs at the same price whose 0/1 qualities are coin flips: nothing to predict, so a
    router without memory is right about a training query only by chance."""
    rng = np.random.default_rng(0)
    queries = [
        f"Question {i}: tell me about {TOPICS[i % 8]} and {TOPICS[(i * 3) % 8]}" for i in range(240)
    ]
    quality = (rng.random((240, 2)) < 0.5).astype(float)
    specs = {n: LLMSpec(n, 1.0, 1.0) for n in ("a", "b")}
    return RoutingData(queries, ["a", "b"], quality, specs=specs)


def _router(data: RoutingData, **kwargs: object) -> MixLLMRouter:
    return MixLLMRouter(encoder=HashingEncoder(), seed=0, **kwargs).fit(data)  # type: ignore[arg-type]


def test_repeated_query_routes_to_the_llm_observed_best(coin_world: RoutingData) -> None:
    split = [
        i for i in range(len(coin_world)) if coin_world.quality[i, 0] != coin_world.quality[i, 1]
    ]
    best = [coin_world.llms[int(np.argmax(coin_world.quality[i]))] for i in split]
    with_memory = _router(coin_world)
    without = _router(coin_world, memory=False)
    queries = [coin_world.queries[i] for i in split]
    hits = np.mean([d.llm == b for d, b in zip(with_memory.route_batch(queries), best)])
    chance = np.mean([d.llm == b for d, b in zip(without.route_batch(queries), best)])
    assert hits == 1.0  # every seen query goes to the LLM that answered it well
    assert chance < 0.8  # coin flips: the model alone is right about half the time


def test_unseen_queries_are_routed_bit_for_bit_as_without_memory() -> None:
    train, test = make_synthetic_world(500, seed=1).train_test_split(seed=0)
    seen = set(train.queries)
    fresh = [q for q in test.queries if q not in seen]
    assert len(fresh) > 50
    on, off = _router(train), _router(train, memory=False)
    p_on, p_off = on.predict(fresh), off.predict(fresh)
    for key in ("quality", "cost", "uncertainty"):
        assert np.array_equal(p_on[key], p_off[key])
    d_on, d_off = on.route_batch(fresh), off.route_batch(fresh)
    assert [(d.llm, d.predicted_quality) for d in d_on] == [
        (d.llm, d.predicted_quality) for d in d_off
    ]
    X, F = on.features(fresh)
    assert np.array_equal(
        on.predict_features(X, F, keys=[query_key(q) for q in fresh])[1],
        off.predict_features(X, F)[1],
    )


def _split_query(router: MixLLMRouter, candidates: list[str]) -> tuple[str, str, str]:
    """A query whose chosen LLM ``a`` and runner-up ``b`` satisfy q̂_a / 2 < q̂_b < q̂_a, so one
    thumbs-down on ``a`` (prior 1: q → q̂_a / 2) flips the decision; with another query."""
    predicted = router.predict(candidates)
    names, Q = predicted["llms"], predicted["quality"]
    for i, q in enumerate(candidates):
        order = np.argsort(-Q[i])
        top, second = Q[i, order[0]], Q[i, order[1]]
        if top / 2 + 0.05 < second < top - 0.05 and router.route(q).llm == names[order[0]]:
            other = candidates[(i + 1) % len(candidates)]
            return q, str(names[order[0]]), other
    raise AssertionError("no query with a margin to flip")


def test_thumbs_down_flips_that_query_only(coin_world: RoutingData) -> None:
    # heads with a flat ridge-50 prior (the default starts them from the training rows, which
    # on this small world leaves one feedback room to flip a decision on its own)
    on = _router(coin_world, online_ridge=50.0)
    off = _router(coin_world, memory=False, online_ridge=50.0)
    fresh = [f"A new question on {t} number {k}" for k in range(30) for t in TOPICS[:3]]
    query, chosen, other = _split_query(on, fresh)
    d_on, d_off = on.route(query), off.route(query)
    assert d_on.llm == d_off.llm == chosen
    on.feedback(d_on.decision_id, thumbs=False)
    off.feedback(d_off.decision_id, thumbs=False)
    assert on.route(query).llm != chosen  # the observed failure moved this query's decision
    assert off.route(query).llm == chosen  # the online head alone (ridge 50) does not
    # another query: the memory adds nothing, so both routers predict it exactly alike
    assert np.array_equal(on.predict([other])["quality"], off.predict([other])["quality"])
    assert not np.array_equal(on.predict([query])["quality"], off.predict([query])["quality"])


def test_memory_mixes_with_prior_weight() -> None:
    key = query_key("q")
    memory = OutcomeMemory.empty(["a", "b"])
    for score in (1.0, 1.0, 0.0):
        memory = memory.observed(key, "a", score)
    Q, U = memory.blend([key], ["a", "b"], np.array([[0.5, 0.5]]), np.ones((1, 2)), prior=1.0)
    assert Q[0, 0] == pytest.approx((2.0 + 0.5) / 4) and Q[0, 1] == 0.5
    assert U[0, 0] == pytest.approx(0.5) and U[0, 1] == 1.0
    with pytest.raises(ConfigError, match="memory_prior"):
        MixLLMRouter(["a"], encoder=HashingEncoder(), memory_prior=0)


def test_overlay_merges_into_the_arrays_without_losing_counts() -> None:
    rng = np.random.default_rng(1)
    keys = [query_key(f"q{i}") for i in range(50)]
    memory = OutcomeMemory.empty(["a", "b", "c"])
    S, N = np.zeros((50, 3)), np.zeros((50, 3), dtype=int)
    for _ in range(2000):  # several merges (the overlay holds at most 256 keys here)
        i, j, y = int(rng.integers(50)), int(rng.integers(3)), float(rng.random())
        memory = memory.observed(keys[i], "abc"[j], y)
        S[i, j] += y
        N[i, j] += 1
    got = memory.stats(keys, ["a", "b", "c"])
    assert got is not None and np.allclose(got[0], S) and np.array_equal(got[1], N)
    assert memory.without_llm("b").stats(keys, ["a", "b", "c"])[1][:, 1].sum() == 0  # type: ignore[index]


def test_add_and_remove_llm_keep_and_drop_its_entries(coin_world: RoutingData) -> None:
    router = _router(coin_world.select_llms(["a"]))
    key = query_key(coin_world.queries[0])
    router.add_llm(LLMSpec("b", 1.0, 1.0), coin_world)
    memory = router.model.memory
    assert memory is not None
    assert memory.stats([key], ["a", "b"])[1].tolist() == [[1, 1]]  # type: ignore[index]
    router.remove_llm("a")
    assert router.model.memory.stats([key], ["a", "b"])[1].tolist() == [[0, 1]]  # type: ignore[union-attr,index]


def test_save_load_round_trip(coin_world: RoutingData, tmp_path: Path) -> None:
    router = _router(coin_world, memory_prior=2.0)
    d = router.route(coin_world.queries[3])
    router.feedback(d.decision_id, score=0.25)
    loaded = MixLLMRouter.load(router.save(tmp_path / "r"), encoder=HashingEncoder())
    assert loaded.memory and loaded.memory_prior == 2.0
    assert loaded.model.memory is not None and router.model.memory is not None
    assert loaded.model.memory.equals(router.model.memory)
    probe = coin_world.queries[:20]
    assert np.array_equal(loaded.predict(probe)["quality"], router.predict(probe)["quality"])
    off = MixLLMRouter.load(
        _router(coin_world, memory=False).save(tmp_path / "off"), encoder=HashingEncoder()
    )
    assert not off.memory and off.model.memory is None


def _strip_memory(directory: Path) -> None:
    """Make ``directory`` look like a router saved before the memory existed."""
    config = json.loads((directory / "router.json").read_text())
    for key in ("memory", "use_memory", "memory_prior"):
        config.pop(key)
    (directory / "router.json").write_text(json.dumps(config))
    (directory / "memory.npz").unlink()
    manifest = json.loads((directory / "manifest.json").read_text())
    files = {f: d for f, d in manifest["files"].items() if f != "memory.npz"}
    files["router.json"] = hashlib.sha256((directory / "router.json").read_bytes()).hexdigest()
    manifest["files"] = files
    (directory / "manifest.json").write_text(json.dumps(manifest))


def test_a_router_saved_before_the_memory_loads_with_an_empty_one(
    coin_world: RoutingData, tmp_path: Path
) -> None:
    router = _router(coin_world)
    path = router.save(tmp_path / "old")
    _strip_memory(path)
    loaded = MixLLMRouter.load(path, encoder=HashingEncoder())
    assert loaded.memory and loaded.model.memory is not None and len(loaded.model.memory) == 0
    query = coin_world.queries[5]
    d = loaded.route(query)
    loaded.feedback(d.decision_id, score=1.0)
    assert query_key(query) in loaded.model.memory  # it remembers from now on


def test_logs_carry_the_query_hash(tmp_path: Path) -> None:
    router = _router(make_synthetic_world(200, seed=0))
    for log in (
        MemoryLog(),
        SQLiteLog(tmp_path / "x.db"),
        SQLiteLog(tmp_path / "y.db", store_prompts=False),
    ):
        router.log = log
        d = router.route("what is 2 + 2?")
        router.feedback(d.decision_id, score=1.0)
        [fb] = list(log.feedback())
        assert fb.query_hash == query_key("what is 2 + 2?")
        assert log.get_decision(d.decision_id).query_hash == fb.query_hash  # type: ignore[union-attr]


@pytest.mark.parametrize("url", [False, True])
def test_two_routers_on_one_log_end_identical_after_sync(
    coin_world: RoutingData, tmp_path: Path, url: bool
) -> None:
    if url:
        pytest.importorskip("sqlalchemy")
    db = f"sqlite:///{tmp_path / 'shared.db'}" if url else tmp_path / "shared.db"
    first = MixLLMRouter(encoder=HashingEncoder(), seed=0, log=db, sync_interval_s=None)
    first.fit(coin_world)
    saved = first.save(tmp_path / "router")
    second = MixLLMRouter.load(saved, encoder=HashingEncoder(), log=db, sync_interval_s=None)
    queries = coin_world.queries[:12] + ["an unseen one", "another unseen one"]
    for i, q in enumerate(queries):
        router = first if i % 2 == 0 else second
        d = router.route(q)
        router.feedback(d.decision_id, score=float(i % 3 == 0))
    first.sync()
    second.sync()
    m1, m2 = first.model.memory, second.model.memory
    assert m1 is not None and m2 is not None and m1.equals(m2)
    assert query_key("an unseen one") in m1 and query_key("another unseen one") in m2
    assert np.array_equal(first.predict(queries)["quality"], second.predict(queries)["quality"])
    first.close()
    second.close()


def test_refit_keeps_the_memory_of_training_rows_and_feedback(coin_world: RoutingData) -> None:
    router = _router(coin_world)
    for i, q in enumerate(coin_world.queries[:25] + ["fresh one", "fresh two"]):
        d = router.route(q)
        router.feedback(d.decision_id, score=float(i % 2))
    router.refit(min_feedback=5)
    rebuilt = OutcomeMemory.from_observations(
        coin_world.llms, coin_world.queries, coin_world.quality
    )
    for fb in router.log.feedback():
        assert fb.query_hash is not None
        rebuilt = rebuilt.observed(fb.query_hash, fb.llm, fb.score)
    assert router.model.memory is not None and router.model.memory.equals(rebuilt)


def test_cv_repeat_share_puts_training_rows_into_the_test_folds() -> None:
    from mixllm_core.experiments.cv import mixllm_router, run_cv

    data = make_synthetic_world(300, seed=2)
    routers = {
        "mixllm": mixllm_router(lambda fold: MixLLMRouter(encoder=HashingEncoder(), seed=0)),
        "plain": mixllm_router(
            lambda fold: MixLLMRouter(encoder=HashingEncoder(), seed=0, memory=False)
        ),
    }
    kwargs = {"encoder": HashingEncoder(), "baseline": "mixllm", "lambdas": [0.0, 1.0, 5.0, 1e3]}
    plain = run_cv(data, routers, 3, 1, **kwargs)  # type: ignore[arg-type]
    repeated = run_cv(data, routers, 3, 1, repeat_share=0.5, **kwargs)  # type: ignore[arg-type]
    base = [f["n_test"] for f in plain.folds]
    assert [f["n_test"] for f in repeated.folds] == [n + round(0.5 * n) for n in base]
    gap = plain.differences()["plain"]["aiq_x100"]
    assert gap["mean"] == 0.0  # no test prompt was seen in training: the memory is a no-op
    assert repeated.differences()["plain"]["aiq_x100"]["mean"] > 0.5  # AIQ points
    with pytest.raises(ConfigError, match="repeat_share"):
        run_cv(data, routers, 3, 1, repeat_share=2.0, **kwargs)  # type: ignore[arg-type]


def test_bench_cv_scores_mixllm_without_memory_on_repeated_rows(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    from mixllm_core.cli import main
    from mixllm_core.experiments.cv import bench_cv

    data = make_synthetic_world(150, seed=5)
    report = bench_cv(
        data,
        tmp_path / "o",
        k=2,
        repeats=1,
        encoder=HashingEncoder(),
        repeat_share=0.25,
        show_progress=False,
    )
    saved = json.loads((tmp_path / "o" / "cv.json").read_text())
    assert saved["settings"]["repeat_share"] == 0.25
    assert {"mixllm", "mixllm-no-memory", "knn"} <= set(report.routers)
    args = ["bench", "--out", str(tmp_path / "p"), "--no-progress", "--repeat-share", "0.25"]
    assert main(args) == 2
    assert "--repeat-share needs --cv" in capsys.readouterr().err


def test_a_memory_file_that_disagrees_with_the_pool_is_refused(
    coin_world: RoutingData, tmp_path: Path
) -> None:
    from mixllm_core.errors import CorruptStateError

    path = _router(coin_world).save(tmp_path / "r")
    with np.load(path / "memory.npz") as f:
        arrays = {k: f[k] for k in f.files}
    np.savez(path / "memory.npz", **{**arrays, "sums": arrays["sums"][:, :1]})
    manifest = json.loads((path / "manifest.json").read_text())
    digest = hashlib.sha256((path / "memory.npz").read_bytes()).hexdigest()
    manifest["files"]["memory.npz"] = digest
    (path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(CorruptStateError, match="memory.npz"):
        MixLLMRouter.load(path, encoder=HashingEncoder())
