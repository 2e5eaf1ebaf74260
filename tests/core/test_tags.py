"""The tagger and the tag-adapted encoder, on synthetic data and the hashing encoder (no MiniLM)."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from mixllm_core import ConfigError, CorruptStateError, MixLLMRouter
from mixllm_core.data import RoutingData
from mixllm_core.encoders import TaggedEncoder, Tagger, encoder_from_config
from mixllm_core.errors import NotFittedError
from mixllm_core.testing import HashingEncoder, make_synthetic_world
from tests.conftest import specialist_of, specialist_world

EPOCHS = 8


@pytest.fixture(scope="module")
def split() -> tuple[RoutingData, RoutingData]:
    return make_synthetic_world(600, seed=0).train_test_split(seed=0)


@pytest.fixture(scope="module")
def supervised(split: tuple[RoutingData, RoutingData]) -> TaggedEncoder:
    train, _ = split
    enc = TaggedEncoder(HashingEncoder(), mode="adapter+tags", epochs=EPOCHS, seed=0)
    return enc.fit(train.queries, train.tasks, show_progress=False)


def _unsupervised(train: RoutingData) -> TaggedEncoder:
    """A tagged encoder whose tags are 8 clusters of ``train``'s queries (no labels), seed 0."""
    enc = TaggedEncoder(
        HashingEncoder(),
        mode="adapter+tags",
        epochs=EPOCHS,
        seed=0,
        tagger=Tagger(n_clusters=8, seed=0),
    )
    return enc.fit(train.queries, show_progress=False)


@pytest.fixture(scope="module")
def unsupervised(split: tuple[RoutingData, RoutingData]) -> TaggedEncoder:
    return _unsupervised(split[0])


def _same_minus_different(Z: np.ndarray, labels: list[str]) -> float:
    """Mean cosine of same-label pairs minus mean cosine of different-label pairs."""
    Z = Z / np.linalg.norm(Z, axis=1, keepdims=True)
    y = np.asarray(labels)
    same = (y[:, None] == y[None, :]) & ~np.eye(len(y), dtype=bool)
    S = Z @ Z.T
    return float(S[same].mean() - S[y[:, None] != y[None, :]].mean())


def test_supervised_tags_are_the_labels_and_tag_unseen_queries(
    supervised: TaggedEncoder, split: tuple[RoutingData, RoutingData]
) -> None:
    _, test = split
    assert supervised.tagger.tags_ == sorted(set(test.tasks or []))
    tags = supervised.tags(test.queries)
    assert all(1 <= len(t) <= supervised.tagger.top_k for t in tags)
    hits = np.mean([t[0] == y for t, y in zip(tags, test.tasks or [], strict=True)])
    assert hits > 0.8  # measured 0.875: disjoint topic words, blurred by 64-d hash collisions
    P = supervised.tagger.tag_proba(HashingEncoder().encode(test.queries))
    np.testing.assert_allclose(P.sum(axis=1), 1.0, atol=1e-5)


def test_tags_and_encodings_are_deterministic_for_a_seed(
    split: tuple[RoutingData, RoutingData], unsupervised: TaggedEncoder
) -> None:
    train, test = split
    again = _unsupervised(train)
    assert again.tagger.tags_ == unsupervised.tagger.tags_
    assert again.tags(test.queries) == unsupervised.tags(test.queries)
    np.testing.assert_array_equal(again.encode(test.queries), unsupervised.encode(test.queries))


def test_adapter_brings_same_tag_queries_closer_on_held_out_queries(
    supervised: TaggedEncoder, split: tuple[RoutingData, RoutingData]
) -> None:
    _, test = split
    base = HashingEncoder().encode(test.queries)
    gap_base = _same_minus_different(base, test.tasks or [])
    gap_adapted = _same_minus_different(supervised.project(base), test.tasks or [])
    # measured: base ≈ 0.05, adapted ≈ 0.45 (seed 0); the margin leaves room for other BLAS
    assert gap_adapted > gap_base + 0.25, (gap_base, gap_adapted)


def test_save_state_and_from_config_round_trip(
    supervised: TaggedEncoder,
    unsupervised: TaggedEncoder,
    split: tuple[RoutingData, RoutingData],
    tmp_path: Path,
) -> None:
    _, test = split
    for name, enc in (("sup", supervised), ("unsup", unsupervised)):
        enc.save_state(tmp_path / name)
        assert not list((tmp_path / name).glob("*.pkl"))
        loaded = encoder_from_config(enc.get_config(), tmp_path / name)
        assert loaded.get_config() == enc.get_config()
        assert loaded.tagger.tags_ == enc.tagger.tags_
        assert loaded.tags(test.queries) == enc.tags(test.queries)
        np.testing.assert_array_equal(loaded.encode(test.queries), enc.encode(test.queries))


def test_config_names_the_tagged_type_and_the_base() -> None:
    config = TaggedEncoder(HashingEncoder(dim=32), mode="tags").get_config()
    assert config["type"] == "tagged" and config["base"] == {"type": "hashing", "dim": 32}
    assert encoder_from_config(config).base.get_config() == config["base"]


def test_unsupervised_tagger_needs_no_labels(
    unsupervised: TaggedEncoder, split: tuple[RoutingData, RoutingData]
) -> None:
    train, test = split
    tagger = unsupervised.tagger
    assert tagger.mode_ == "unsupervised" and len(tagger.tags_) == 8
    assert len(set(tagger.tags_)) == 8 and all(t.strip() for t in tagger.tags_)
    X = HashingEncoder().encode(test.queries)
    assert unsupervised.encode(test.queries).shape == (len(test), unsupervised.dim)
    assert unsupervised.dim == 128 + 8
    # each tag is named by words of the training queries it gathers
    assign = tagger.tag_proba(HashingEncoder().encode(train.queries)).argmax(axis=1)
    for c, name in enumerate(tagger.tags_):
        members = " ".join(q.lower() for q, a in zip(train.queries, assign, strict=True) if a == c)
        words = name.split("#")[0].split("-")
        assert not members or name.startswith("cluster") or all(w in members for w in words)
    # the hashing space is dominated by template words, so clusters follow templates more than
    # topics; still, they carry topic information (measured purity 0.32 vs majority 0.25)
    top = tagger.tag_proba(X).argmax(axis=1)
    y = np.asarray(test.tasks)
    purity = sum(np.unique(y[top == c], return_counts=True)[1].max() for c in set(top)) / len(y)
    majority = np.unique(y, return_counts=True)[1].max() / len(y)
    assert purity > majority + 0.03, (purity, majority)


def test_tag_modes_change_the_representation(split: tuple[RoutingData, RoutingData]) -> None:
    train, test = split
    enc = TaggedEncoder(HashingEncoder(), mode="tags", tagger=Tagger(n_clusters=4))
    enc.fit(train.queries, show_progress=False)
    Z = enc.encode(test.queries[:5])
    assert enc.dim == 64 + 4 and Z.dtype == np.float32
    np.testing.assert_array_equal(Z[:, :64], HashingEncoder().encode(test.queries[:5]))


def test_router_on_tagged_features_sends_each_family_to_its_specialist(
    supervised: TaggedEncoder,
) -> None:
    train, test = specialist_world().train_test_split()
    router = MixLLMRouter(encoder=supervised, quality_model="linear", seed=0).fit(train)
    picks = [d.llm for d in router.route_batch(test.queries, lam=5.0)]
    right = np.mean([p == specialist_of(t) for p, t in zip(picks, test.tasks or [], strict=True)])
    assert right >= 0.9  # measured 0.946 (53 of 56 held-out queries)


def test_tagging_an_unseen_query_takes_under_5_ms(
    supervised: TaggedEncoder, unsupervised: TaggedEncoder
) -> None:
    x = HashingEncoder().encode(["Prove that the sum of two primes is even"])
    for enc in (supervised, unsupervised):
        times = []
        for _ in range(50):
            t0 = time.perf_counter()
            enc.tagger.tag(x)
            enc.transform(x)
            times.append(time.perf_counter() - t0)
        assert np.median(times) < 5e-3


def test_unfitted_use_raises_not_fitted() -> None:
    enc = TaggedEncoder(HashingEncoder())
    with pytest.raises(NotFittedError, match="fit"):
        enc.encode(["hello"])
    with pytest.raises(NotFittedError):
        _ = enc.dim
    with pytest.raises(NotFittedError):
        Tagger().tag(np.zeros((1, 4)))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"mode": "bogus"}, r"Invalid mode 'bogus'.*'adapter'"),
        ({"projection_dim": 0}, "projection_dim must be an int >= 1, got 0"),
        ({"temperature": -1.0}, "temperature must be a finite number > 0, got -1.0"),
        ({"tag_weight": float("nan")}, "tag_weight must be"),
        ({"tagger": "kmeans"}, "tagger must be a Tagger, got str"),
    ],
)
def test_bad_encoder_parameters_are_named(kwargs: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        TaggedEncoder(HashingEncoder(), **kwargs)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n_clusters": 1}, "n_clusters must be an int >= 2, got 1"),
        ({"top_k": 0}, "top_k must be an int >= 1, got 0"),
        ({"min_proba": 1.5}, r"min_proba must be a number in \[0, 1\], got 1.5"),
    ],
)
def test_bad_tagger_parameters_are_named(kwargs: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        Tagger(**kwargs)


def test_bad_fit_inputs_are_named() -> None:
    texts = ["solve the equation", "sort a python list", "capital of france", "write a poem"]
    X = HashingEncoder().encode(texts)
    with pytest.raises(ConfigError, match="Got 3 labels for 4 texts"):
        Tagger().fit(texts, X, ["a", "b", "c"])
    with pytest.raises(ConfigError, match=r"at least 2 distinct labels, got \['math'\]"):
        Tagger().fit(texts, X, ["math"] * 4)
    with pytest.raises(ConfigError, match="n_clusters=16 is more than the 4 queries"):
        Tagger().fit(texts, X)
    with pytest.raises(ConfigError, match="X has 3 rows but 4 texts"):
        Tagger().fit(texts, X[:3])
    with pytest.raises(ConfigError, match="NaN"):
        Tagger(n_clusters=2).fit(texts, np.full_like(X, np.nan))
    with pytest.raises(ConfigError, match="single str"):
        TaggedEncoder(HashingEncoder()).fit("one query")
    tagger = Tagger(n_clusters=2).fit(texts, X)
    with pytest.raises(ConfigError, match="X has 8 columns; the tagger was fit on 64"):
        tagger.tag(np.zeros((1, 8)))


def test_bad_config_and_corrupt_state_raise(supervised: TaggedEncoder, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="type is 'sentence'"):
        TaggedEncoder.from_config({"type": "sentence"}, build_base=encoder_from_config)
    with pytest.raises(CorruptStateError, match="unreadable"):
        encoder_from_config(supervised.get_config(), tmp_path / "missing")
    supervised.save_state(tmp_path / "state")
    (tmp_path / "state" / "tagged.npz").write_bytes(b"not a zip")
    with pytest.raises(CorruptStateError, match="unreadable"):
        encoder_from_config(supervised.get_config(), tmp_path / "state")


def test_router_with_tagged_encoder_saves_and_loads_identically(tmp_path: Path) -> None:
    data = make_synthetic_world(300, seed=5)
    encoder = TaggedEncoder(HashingEncoder(), mode="tags", seed=0).fit(data.queries, data.tasks)
    router = MixLLMRouter(encoder=encoder).fit(data)
    loaded = MixLLMRouter.load(router.save(tmp_path / "r"))  # encoder rebuilt from the save
    qs = data.queries[:60]
    assert loaded.encoder.tags(qs) == encoder.tags(qs)
    for lam in (0.5, 5.0, 50.0):
        assert [d.llm for d in loaded.route_batch(qs, lam=lam)] == [
            d.llm for d in router.route_batch(qs, lam=lam)
        ]
