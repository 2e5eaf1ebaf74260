"""The static encoder's corpus part: LSA over MiniLM's WordPiece tokens, learned by ``adapt``.

It must equal the textbook pipeline (sublinear TF-IDF, min_df 2, truncated SVD) computed with
scikit-learn, be learned from the training queries only when a router is fitted, and survive
save/load (alone and under a ``TaggedEncoder``) so a loaded router embeds exactly as it did.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from sklearn.decomposition import TruncatedSVD
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.preprocessing import normalize

from mixllm_core import CorruptStateError, MixLLMRouter
from mixllm_core.cli import main
from mixllm_core.encoders import StaticEncoder, TaggedEncoder, encoder_from_config
from mixllm_core.testing import make_synthetic_world
from tests.conftest import write_long_csv

WORLD = make_synthetic_world(n_queries=300, seed=3)


@pytest.fixture(scope="module")
def adapted() -> StaticEncoder:
    return StaticEncoder(lsa_dims=8).adapt(WORLD.queries)


def test_unadapted_corpus_part_is_zero_and_the_dimension_never_changes() -> None:
    enc = StaticEncoder(lsa_dims=8)
    X = enc.encode(WORLD.queries[:5])
    assert X.shape == (5, 136) and enc.dim == 136 and not enc.is_adapted
    assert not X[:, 128:].any()
    plain = StaticEncoder(lsa_dims=0).encode(WORLD.queries[:5])
    np.testing.assert_allclose(X[:, :128], plain, atol=1e-6)  # the static part is unchanged


def test_corpus_part_equals_the_sklearn_tfidf_svd_pipeline(adapted: StaticEncoder) -> None:
    texts = WORLD.queries
    part = adapted.encode(texts)[:, 128:] / adapted.lsa_weight
    tok = adapted._tokenizer
    vec = TfidfVectorizer(
        analyzer=lambda t: [str(i) for i in tok.encode(t, add_special_tokens=False).ids],
        min_df=2,
        sublinear_tf=True,
    )
    tfidf = vec.fit_transform([adapted.window_text(t) for t in texts])
    ref = normalize(TruncatedSVD(8, algorithm="arpack", random_state=1).fit_transform(tfidf))
    # the same subspace up to rotation and sign: the queries' similarities agree
    np.testing.assert_allclose(part @ part.T, ref @ ref.T, atol=1e-4)
    np.testing.assert_allclose(np.linalg.norm(part, axis=1), 1.0, atol=1e-5)


def test_adapt_is_deterministic_and_skips_a_corpus_it_has_seen(adapted: StaticEncoder) -> None:
    again = StaticEncoder(lsa_dims=8).adapt(WORLD.queries)
    np.testing.assert_array_equal(again._lsa, adapted._lsa)
    lsa = again._lsa
    again.adapt(list(WORLD.queries))  # same texts: nothing is refitted
    assert again._lsa is lsa
    again.adapt(WORLD.queries[:100])  # a new corpus: refitted, prompt cache cleared
    assert again._lsa is not lsa and not again._cache


def test_router_fit_adapts_on_training_queries_only() -> None:
    train, test = WORLD.train_test_split(seed=0)
    enc = StaticEncoder(lsa_dims=8)
    router = MixLLMRouter(encoder=enc, seed=0).fit(train)
    assert router.encoder.is_adapted and not enc.is_adapted  # a copy: the caller's is untouched
    key = router.encoder.corpus_key_
    assert key == StaticEncoder(lsa_dims=8).adapt(train.queries).corpus_key_
    assert key != StaticEncoder(lsa_dims=8).adapt(WORLD.queries).corpus_key_
    assert router.encoder._table is enc._table  # the static table is shared, not copied


def test_routers_sharing_an_encoder_do_not_change_each_others_features() -> None:
    train, test = WORLD.train_test_split(seed=0)
    enc = StaticEncoder(lsa_dims=8)
    first = MixLLMRouter(encoder=enc, seed=0).fit(train)
    before = first.encoder.encode(test.queries)
    second = MixLLMRouter(encoder=first.encoder, seed=0).fit(test)  # another corpus
    np.testing.assert_array_equal(first.encoder.encode(test.queries), before)
    assert second.encoder is not first.encoder
    assert not np.allclose(second.encoder.encode(test.queries)[:, 128:], before[:, 128:])
    again = MixLLMRouter(encoder=first.encoder, seed=0).fit(train)  # the same corpus: shared
    assert again.encoder is first.encoder


def test_the_default_router_encoder_is_the_adapted_static_encoder_with_tags(
    tmp_path: Path,
) -> None:
    train, test = WORLD.train_test_split(seed=0)
    cold = MixLLMRouter(list(WORLD.llms), seed=0)
    assert isinstance(cold.encoder, TaggedEncoder) and not cold.encoder.fitted
    assert cold.encoder.dim == StaticEncoder().dim  # before any fit: the static encoder alone
    cold.save(tmp_path / "cold")
    assert not MixLLMRouter.load(tmp_path / "cold").encoder.fitted  # type: ignore[attr-defined]
    router = MixLLMRouter(seed=0).fit(train)
    enc = router.encoder
    assert isinstance(enc, TaggedEncoder) and enc is not cold.encoder
    assert isinstance(enc.base, StaticEncoder) and enc.base.is_adapted
    assert enc.tagger.mode_ == "supervised" and set(enc.tagger.tags_) == set(train.tasks or [])
    assert enc.dim == StaticEncoder().dim + len(set(train.tasks or []))
    before = router.encoder.encode(test.queries)
    router.save(tmp_path / "r")
    loaded = MixLLMRouter.load(tmp_path / "r")
    np.testing.assert_array_equal(loaded.encoder.encode(test.queries), before)
    picks = [router.route(q, lam=3.0).llm for q in test.queries[:20]]
    assert [loaded.route(q, lam=3.0).llm for q in test.queries[:20]] == picks


def test_the_default_router_fits_without_task_labels_by_clustering() -> None:
    train, test = WORLD.train_test_split(seed=0)
    router = MixLLMRouter(seed=0).fit(replace(train, tasks=None))
    enc = router.encoder
    assert isinstance(enc, TaggedEncoder) and enc.tagger.mode_ == "unsupervised"
    assert enc.dim > StaticEncoder().dim and router.route(test.queries[0]).llm in WORLD.llms


def test_a_tagged_encoder_over_static_keeps_its_corpus_part(tmp_path: Path) -> None:
    enc = TaggedEncoder(StaticEncoder(lsa_dims=8), mode="tags", seed=0)
    enc.fit(WORLD.queries, WORLD.tasks, show_progress=False)
    assert enc.base.is_adapted  # type: ignore[attr-defined]
    enc.save_state(tmp_path / "enc")
    again = encoder_from_config(enc.get_config(), tmp_path / "enc")
    np.testing.assert_allclose(
        again.encode(WORLD.queries[:10]), enc.encode(WORLD.queries[:10]), atol=1e-6
    )


def test_corrupt_or_mismatched_state_is_refused(adapted: StaticEncoder, tmp_path: Path) -> None:
    adapted.save_state(tmp_path / "ok")
    with pytest.raises(CorruptStateError, match=r"the config says lsa_dims=16"):
        StaticEncoder(lsa_dims=16).load_state(tmp_path / "ok")
    bad = tmp_path / "bad"
    shutil.copytree(tmp_path / "ok", bad)
    (bad / "static_lsa.npz").write_bytes(b"not an npz")
    with pytest.raises(CorruptStateError, match="unreadable"):
        StaticEncoder(lsa_dims=8).load_state(bad)


def test_configs_saved_before_the_corpus_part_load_as_static_only() -> None:
    config = StaticEncoder().get_config()
    del config["lsa_dims"], config["lsa_weight"]
    enc = StaticEncoder.from_config(config)
    assert enc.lsa_dims == 0 and enc.is_adapted


@pytest.mark.slow  # a benchmark run: two encoders × two split seeds
def test_bench_compares_encoders_side_by_side(tmp_path: Path) -> None:
    code = main(
        [
            "bench",
            "--data",
            str(write_long_csv(WORLD, tmp_path / "world.csv")),  # 300 queries, not the default 1500
            "--out",
            str(tmp_path),
            "--no-progress",
            "--n-timed",
            "20",
            "--compare-encoders",
            "static-plain",
            "static",
            "--seeds",
            "0",
            "1",
        ]
    )
    assert code == 0
    result = json.loads((tmp_path / "encoders.json").read_text())
    assert list(result["encoders"]) == ["static-plain", "static"] and result["seeds"] == [0, 1]
    base, lsa = result["encoders"]["static-plain"], result["encoders"]["static"]
    assert base["diff_vs_baseline"]["aiq_x100"] == {"mean": 0.0, "se": 0.0, "first_seed": 0.0}
    assert lsa["config"]["lsa_dims"] == 64 and base["config"]["lsa_dims"] == 0
    for row in (base, lsa):
        assert set(row["per_seed"]) == {"0", "1"}
        assert 0 < row["mean"]["aiq_x100"] < 100
        for stage in ("embedding", "predict", "decide", "route_with_embedding"):
            assert 0 < row["timing"][stage]["p50_ms"] <= row["timing"][stage]["p99_ms"]
        assert row["timing"]["batch_throughput_qps_with_embedding"] > 0
    d = lsa["diff_vs_baseline"]["aiq_x100"]
    per = [lsa["per_seed"][s]["aiq_x100"] - base["per_seed"][s]["aiq_x100"] for s in ("0", "1")]
    assert d["mean"] == pytest.approx(np.mean(per)) and d["first_seed"] == pytest.approx(per[0])


def test_refit_embeds_feedback_again_after_fit_changed_the_corpus_part(monkeypatch) -> None:
    from mixllm_core.predictors import QualityPredictor

    train, test = WORLD.train_test_split(seed=0)
    router = MixLLMRouter(WORLD.llms, encoder=StaticEncoder(lsa_dims=8), seed=0)  # cold: zero part
    early = test.queries[:10]
    for q in early:
        router.feedback(router.route(q).decision_id, score=1.0)
    logged = np.stack([fb.x for fb in router.log.feedback()])
    assert not logged[:, 128:].any()
    router.fit(train)  # the corpus part is learned now
    seen: list[np.ndarray] = []
    real_fit = QualityPredictor.fit

    def spy(self, X, y, sample_weight=None):
        seen.append(np.asarray(X))
        return real_fit(self, X, y, sample_weight=sample_weight)

    monkeypatch.setattr(QualityPredictor, "fit", spy)
    used = router.refit(guard=None)
    assert set(used) == set(WORLD.llms)  # every LLM was learned again (feedback kept or not)
    again = router.encoder.encode(early)  # the refit encoder: its corpus part, learned again
    assert again[:, 128:].any()
    rows = np.vstack([X[len(train) :] for X in seen if len(X) > len(train)])
    # each feedback query was trained on as the refit encoder embeds it, corpus part included
    assert all(np.abs(rows - e).max(axis=1).min() < 1e-6 for e in again)
