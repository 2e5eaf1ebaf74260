"""What makes ``fit`` cheaper at scale leaves the fitted router as it was.

``fit`` tokenises each training query once (the ids ``StaticEncoder.adapt`` read are reused when
the same queries are embedded right after), the TF-IDF matrix is built as CSR rows directly, and
the corpus part's SVD is solved on the columns that are not all zero.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from scipy import sparse
from sklearn.decomposition import TruncatedSVD
from sklearn.preprocessing import normalize

from mixllm_core import MixLLMRouter
from mixllm_core.encoders import StaticEncoder, static
from mixllm_core.testing import make_synthetic_world


def _plain_ids(self: StaticEncoder, texts: list[str]) -> list[list[int]]:
    """The ids without the reuse: every text tokenised again (what fit did before)."""
    assert self._wordpiece is not None
    self._adapt_ids = None
    return self._wordpiece.ids(texts, self.batch_size)


def test_fitted_router_is_the_same_with_and_without_reusing_the_ids(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    world = make_synthetic_world(400, seed=7)
    train, held_out = world.subset(np.arange(300)), world.subset(np.arange(300, 400))
    tokenised: list[int] = []
    real = StaticEncoder._ids

    def counting(self: StaticEncoder, texts: list[str]) -> list[list[int]]:
        fresh = len(texts) - len(set(texts) & set(self._adapt_ids or {}))
        tokenised.append(fresh)
        return real(self, texts)

    monkeypatch.setattr(StaticEncoder, "_ids", counting)
    reused = MixLLMRouter().fit(train)
    assert tokenised == [0]  # every training query's ids came from adapt
    assert reused.encoder._adapt_ids is None  # taken once, not kept
    monkeypatch.setattr(StaticEncoder, "_ids", _plain_ids)
    plain = MixLLMRouter().fit(train)
    X_reused, F_reused = reused.features(held_out.queries)
    X_plain, F_plain = plain.features(held_out.queries)
    assert np.array_equal(X_reused, X_plain) and np.array_equal(F_reused, F_plain)
    train_reused = reused.model.pool.train[train.llms[0]][0]
    train_plain = plain.model.pool.train[train.llms[0]][0]
    assert np.array_equal(train_reused, train_plain)  # the features fit read: bit for bit
    names, *predicted = reused.predict_features(X_plain, F_plain)
    names_plain, *predicted_plain = plain.predict_features(X_plain, F_plain)
    assert names == names_plain
    for a, b in zip(predicted, predicted_plain, strict=True):  # quality, cost, uncertainty
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-9)
    decisions = [d.llm for d in reused.route_batch(held_out.queries)]
    assert decisions == [d.llm for d in plain.route_batch(held_out.queries)]


def test_ids_from_adapt_are_used_once_and_only_for_the_texts_it_read() -> None:
    enc = StaticEncoder().adapt(["alpha beta gamma", "beta delta", "gamma epsilon zeta"])
    assert enc._adapt_ids is not None and set(enc._adapt_ids) == {
        "alpha beta gamma",
        "beta delta",
        "gamma epsilon zeta",
    }
    mixed = enc.encode(["beta delta", "a text adapt never read"])
    assert enc._adapt_ids is None
    fresh = StaticEncoder().adapt(["alpha beta gamma", "beta delta", "gamma epsilon zeta"])
    fresh._adapt_ids = None
    assert np.array_equal(mixed, fresh.encode(["beta delta", "a text adapt never read"]))


def _lsa_on_every_column(X: Any, kept: np.ndarray, k: int) -> np.ndarray:
    """The SVD as it was: on all of ``X``'s columns, zero ones included."""
    svd = TruncatedSVD(k, algorithm="arpack", random_state=0).fit(X)
    rows: np.ndarray = svd.components_.T[kept]
    return rows


def test_svd_on_the_nonzero_columns_fits_the_same_router(monkeypatch: pytest.MonkeyPatch) -> None:
    world = make_synthetic_world(400, seed=11)
    train, held_out = world.subset(np.arange(300)), world.subset(np.arange(300, 400))
    new = MixLLMRouter().fit(train)
    monkeypatch.setattr(static, "_lsa_components", _lsa_on_every_column)
    old = MixLLMRouter().fit(train)
    lsa_new, lsa_old = new.encoder._lsa, old.encoder._lsa
    assert lsa_new is not None and lsa_old is not None and lsa_new.any()
    np.testing.assert_allclose(lsa_new, lsa_old, rtol=0, atol=1e-7)  # float32 of equal vectors
    X, F = old.features(held_out.queries)
    np.testing.assert_allclose(new.features(held_out.queries)[0], X, rtol=0, atol=1e-6)
    names, *predicted = new.predict_features(X, F)
    names_old, *predicted_old = old.predict_features(X, F)
    assert names == names_old
    for a, b in zip(predicted, predicted_old, strict=True):  # quality, cost, uncertainty
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-9)


def test_the_tfidf_rows_built_directly_are_the_coo_construction_bit_for_bit() -> None:
    texts = make_synthetic_world(300, seed=5).queries
    enc = StaticEncoder(lsa_dims=16).adapt(texts)
    windows = [enc.window_text(t) for t in texts]
    rows, cols, tf = [], [], []
    for i, ids in enumerate(enc._token_ids(windows)):  # as adapt built it before
        u, c = np.unique(ids, return_counts=True)
        rows.append(np.full(len(u), i))
        cols.append(u)
        tf.append(1.0 + np.log(c))
    vocab = enc._table.shape[0] if enc._table is not None else 0
    counts = sparse.csr_matrix(
        (np.concatenate(tf), (np.concatenate(rows), np.concatenate(cols))),
        shape=(len(windows), vocab),
    )
    df = np.bincount(counts.indices, minlength=vocab)
    idf = np.log((1.0 + len(windows)) / (1.0 + df)) + 1.0
    idf[df < static.LSA_MIN_DF] = 0.0
    X = normalize(counts.multiply(idf).tocsr())
    kept = np.flatnonzero(df >= static.LSA_MIN_DF)
    lsa = np.zeros_like(enc._lsa)
    lsa[kept] = static._lsa_components(X, kept, 16)
    assert enc._idf is not None and np.array_equal(enc._idf, idf.astype(np.float32))
    assert np.array_equal(enc._lsa, lsa)
