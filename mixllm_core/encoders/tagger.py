"""`Tagger`: a few tags per query from its embedding alone (see :mod:`.tagged`)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError, NotFittedError
from ..estimator_io import load_estimator

__all__ = ["Tagger"]

_TAGGER_SKOPS = "tagger.skops"


def _check_int(name: str, value: object, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ConfigError(f"{name} must be an int >= {low}, got {value!r}.")


def _check_positive(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < math.inf:
        raise ConfigError(f"{name} must be a finite number > 0, got {value!r}.")


def _check_matrix(X: object, n: int | None = None, dim: int | None = None) -> np.ndarray:
    X = np.asarray(X, dtype=np.float32)
    if X.ndim != 2:
        raise ConfigError(f"X must be a 2-D array (queries × features), got shape {X.shape}.")
    if n is not None and X.shape[0] != n:
        raise ConfigError(f"X has {X.shape[0]} rows but {n} texts were given.")
    if dim is not None and X.shape[1] != dim:
        raise ConfigError(f"X has {X.shape[1]} columns; the tagger was fit on {dim}.")
    if not np.isfinite(X).all():
        raise ConfigError("X holds NaN or infinite values.")
    return X


def _softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    out: np.ndarray = e / e.sum(axis=1, keepdims=True)
    return out


def _normalize(X: np.ndarray) -> np.ndarray:
    norm = np.linalg.norm(X, axis=1, keepdims=True)
    return X / np.where(norm > 0, norm, 1.0)


def _keyword_names(texts: Sequence[str], assign: np.ndarray, k: int, n_keywords: int) -> list[str]:
    """Name each cluster by the words whose TF-IDF is most above the corpus mean inside it."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    vec = TfidfVectorizer(
        stop_words="english",
        token_pattern=r"(?u)\b[a-zA-Z][a-zA-Z]{2,}\b",
        sublinear_tf=True,
        max_features=50_000,
        lowercase=True,
    )
    try:
        T = vec.fit_transform([t[-4000:] for t in texts])
    except ValueError:  # no word at all in the corpus
        return [f"cluster{c}" for c in range(k)]
    words = vec.get_feature_names_out()
    overall = np.asarray(T.mean(axis=0)).ravel()
    names: list[str] = []
    for c in range(k):
        rows = np.flatnonzero(assign == c)
        if len(rows) == 0:
            names.append(f"cluster{c}")
            continue
        lift = np.asarray(T[rows].mean(axis=0)).ravel() - overall
        top = [words[i] for i in np.argsort(-lift, kind="stable")[:n_keywords] if lift[i] > 0]
        name = "-".join(top) or f"cluster{c}"
        names.append(name if name not in names else f"{name}#{c}")
    return names


class Tagger:
    """Gives every query a small set of tags from its embedding, in microseconds.

    Supervised when ``fit`` gets labels (a logistic regression; the tags are the labels),
    unsupervised otherwise (k-means; each cluster named by its top TF-IDF keywords).

    Args:
        n_clusters: Number of tags of the unsupervised tagger (ignored when labels are given).
        top_k: At most this many tags per query in :meth:`tag`.
        seed: Seeds k-means.
        min_proba: A tag beyond the first is kept only if its membership is at least this.
        C: Inverse regularisation of the supervised classifier.
        n_keywords: Keywords in an unsupervised tag's name.

    Example:
        >>> from mixllm_core.testing import HashingEncoder, make_synthetic_world
        >>> data = make_synthetic_world(300, seed=0)
        >>> X = HashingEncoder().encode(data.queries)
        >>> tagger = Tagger().fit(data.queries, X, data.tasks)
        >>> tagger.tags_
        ['code', 'logic', 'math', 'trivia', 'writing']
        >>> tagger.tag(HashingEncoder().encode(["Solve the integral of this equation"]))[0][0]
        'math'
    """

    def __init__(
        self,
        *,
        n_clusters: int = 16,
        top_k: int = 2,
        seed: int = 0,
        min_proba: float = 0.2,
        C: float = 1.0,
        n_keywords: int = 2,
    ) -> None:
        _check_int("n_clusters", n_clusters, 2)
        _check_int("top_k", top_k, 1)
        _check_int("seed", seed, 0)
        _check_int("n_keywords", n_keywords, 1)
        _check_positive("C", C)
        if (
            isinstance(min_proba, bool)
            or not isinstance(min_proba, (int, float))
            or not 0.0 <= min_proba <= 1.0
        ):
            raise ConfigError(f"min_proba must be a number in [0, 1], got {min_proba!r}.")
        self.n_clusters = n_clusters
        self.top_k = top_k
        self.seed = seed
        self.min_proba = float(min_proba)
        self.C = float(C)
        self.n_keywords = n_keywords

    def get_params(self) -> dict[str, Any]:
        """The constructor arguments (JSON-able)."""
        return {
            "n_clusters": self.n_clusters,
            "top_k": self.top_k,
            "seed": self.seed,
            "min_proba": self.min_proba,
            "C": self.C,
            "n_keywords": self.n_keywords,
        }

    # ------------------------------------------------------------------ fit
    def fit(
        self,
        texts: Sequence[str],
        X: np.ndarray,
        labels: Sequence[str] | None = None,
        *,
        show_progress: bool = False,
    ) -> Tagger:
        """Learn the tag vocabulary and how to assign it.

        Args:
            texts: The training queries (used to name unsupervised tags).
            X: Their embeddings, ``(n, d)``.
            labels: One label per query (supervised), or None (unsupervised).
            show_progress: Accepted for symmetry with the encoders; fitting takes seconds.
        """
        if isinstance(texts, str):
            raise ConfigError("fit() takes a sequence of texts, got a single str.")
        texts = [str(t) for t in texts]
        X = _check_matrix(X, n=len(texts))
        self.mode_: str
        if labels is not None:
            labels = [str(y) for y in labels]
            if len(labels) != len(texts):
                raise ConfigError(f"Got {len(labels)} labels for {len(texts)} texts.")
            classes = sorted(set(labels))
            if len(classes) < 2:
                raise ConfigError(
                    f"A supervised tagger needs at least 2 distinct labels, got "
                    f"{classes}; pass labels=None for unsupervised tags."
                )
            from sklearn.linear_model import LogisticRegression

            self.classifier_ = LogisticRegression(C=self.C, max_iter=2000).fit(X, labels)
            self.tags_ = [str(c) for c in self.classifier_.classes_]
            self.mode_ = "supervised"
        else:
            if self.n_clusters > len(texts):
                raise ConfigError(
                    f"n_clusters={self.n_clusters} is more than the {len(texts)} "
                    "queries given; lower n_clusters or give more queries."
                )
            from sklearn.cluster import KMeans

            km = KMeans(n_clusters=self.n_clusters, n_init=4, random_state=self.seed).fit(X)
            self.centers_ = km.cluster_centers_.astype(np.float32)
            d2 = self._sq_dist(X)
            part = np.sort(d2, axis=1)
            gap = float(np.mean(part[:, 1] - part[:, 0]))
            self.temperature_ = gap if gap > 1e-12 else 1.0
            self.tags_ = _keyword_names(texts, km.labels_, self.n_clusters, self.n_keywords)
            self.mode_ = "unsupervised"
        self.n_features_in_ = X.shape[1]
        return self

    # ------------------------------------------------------------------ predict
    def _check_fitted(self) -> None:
        if not hasattr(self, "tags_"):
            raise NotFittedError("This Tagger is not fitted yet; call fit(texts, X, labels) first.")

    def _sq_dist(self, X: np.ndarray) -> np.ndarray:
        C = self.centers_
        d: np.ndarray = np.maximum(
            (X * X).sum(1)[:, None] - 2 * X @ C.T + (C * C).sum(1)[None, :], 0.0
        )
        return d

    def tag_proba(self, X: np.ndarray) -> np.ndarray:
        """Soft tag memberships ``(n, len(tags_))``, rows summing to 1."""
        self._check_fitted()
        X = _check_matrix(X, dim=self.n_features_in_)
        if self.mode_ == "supervised":  # LogisticRegression.predict_proba, without its checks
            clf = self.classifier_
            logits = X @ np.asarray(clf.coef_, dtype=X.dtype).T + clf.intercept_
            if logits.shape[1] == 1:  # two tags: the logit of the second
                logits = np.hstack([np.zeros_like(logits), logits])
            return _softmax(logits).astype(np.float32)
        return _softmax(-self._sq_dist(X) / self.temperature_).astype(np.float32)

    def tag(self, X: np.ndarray) -> list[list[str]]:
        """Tag names per query: the ``top_k`` likeliest with membership ≥ ``min_proba`` (≥ 1)."""
        P = self.tag_proba(X)
        order = np.argsort(-P, axis=1, kind="stable")[:, : self.top_k]
        return [
            [self.tags_[j] for r, j in enumerate(row) if r == 0 or P[i, j] >= self.min_proba]
            for i, row in enumerate(order)
        ]

    def tag_matrix(self, X: np.ndarray) -> np.ndarray:
        """The tags of :meth:`tag` as a 0/1 matrix ``(n, len(tags_))``."""
        index = {t: j for j, t in enumerate(self.tags_)}
        M = np.zeros((len(X), len(self.tags_)), dtype=np.float32)
        for i, tags in enumerate(self.tag(X)):
            M[i, [index[t] for t in tags]] = 1.0
        return M

    # ------------------------------------------------------------------ state
    def _state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        self._check_fitted()
        meta = {
            "params": self.get_params(),
            "mode": self.mode_,
            "tags": self.tags_,
            "n_features_in": self.n_features_in_,
        }
        arrays: dict[str, np.ndarray] = {}
        if self.mode_ == "unsupervised":
            meta["temperature"] = self.temperature_
            arrays["tagger_centers"] = self.centers_
        return meta, arrays

    @classmethod
    def _from_state(cls, meta: dict[str, Any], arrays: Any, directory: Path) -> Tagger:
        tagger = cls(**meta["params"])
        tagger.mode_, tagger.tags_ = meta["mode"], [str(t) for t in meta["tags"]]
        tagger.n_features_in_ = int(meta["n_features_in"])
        if tagger.mode_ == "unsupervised":
            tagger.centers_ = np.asarray(arrays["tagger_centers"], dtype=np.float32)
            tagger.temperature_ = float(meta["temperature"])
        else:
            tagger.classifier_ = load_estimator(directory / _TAGGER_SKOPS)
        return tagger
