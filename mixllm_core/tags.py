"""Query tags and a tag-adapted query encoder (the paper's tag-enhanced embedding).

MixLLM tags every query with InsTag (a 7B LLM) and fine-tunes BERT so that queries sharing tags
sit close together. A 7B tagger costs seconds per query on CPU, far more than the routing budget,
so this module replaces both parts with things that run in well under a millisecond on top of the
sentence embedding the router computes anyway:

* :class:`Tagger` gives each query a few tags from its embedding alone.

  - *Supervised*, when the training data has labels (RouterBench ``eval_name``, LLMRouter
    ``task_name``): a multinomial logistic regression on the embedding. At routing time, when no
    label exists, it predicts soft tag memberships; the tag names are the labels.
  - *Unsupervised*, for data without labels: k-means on the embeddings. Each cluster is named by
    its most distinctive TF-IDF keywords (mean TF-IDF in the cluster minus the overall mean), and
    soft memberships are a softmax over the distances to the centroids.

  Both are a matrix product plus a softmax on a vector we already have: no second model, no
  tokenizer, no network.

* :class:`TaggedEncoder` wraps any :class:`~mixllm_core.encoder.QueryEncoder`. Its adapter is a
  small projection head (MLP) over the *frozen* base embedding, trained without quality labels by a
  supervised-contrastive (SupCon) loss whose positives are training queries that share a tag, plus
  a term that keeps the projection's cosine similarities close to the base embedding's so that
  what separates easy from hard queries *within* a tag is not collapsed away. The base embeddings
  are computed once, so training is seconds to minutes on CPU. Torch is imported only by ``fit``;
  encoding is numpy.

``mode`` chooses the representation the predictors see: ``"adapter"`` (the projection),
``"tags"`` (base embedding + ``tag_weight`` × tag memberships) or ``"adapter+tags"``. The default,
``"tags"``, is the mode that measured best (docs/tags.md); whether a router should use a
tagged encoder at all is decided by the same measurements.

State is saved as ``.npz`` (``allow_pickle=False``) + JSON, and the supervised classifier with
skops; nothing is pickled.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .encoder import QueryEncoder
from .errors import ConfigError, CorruptStateError, NotFittedError, check_choice

__all__ = ["ENCODER_MODES", "TaggedEncoder", "Tagger"]

ENCODER_MODES = ("adapter", "tags", "adapter+tags")
_STATE_JSON, _STATE_NPZ, _TAGGER_SKOPS = "tagged.json", "tagged.npz", "tagger.skops"


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
    return e / e.sum(axis=1, keepdims=True)


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
        return np.maximum((X * X).sum(1)[:, None] - 2 * X @ C.T + (C * C).sum(1)[None, :], 0.0)

    def tag_proba(self, X: np.ndarray) -> np.ndarray:
        """Soft tag memberships ``(n, len(tags_))``, rows summing to 1."""
        self._check_fitted()
        X = _check_matrix(X, dim=self.n_features_in_)
        if self.mode_ == "supervised":
            return self.classifier_.predict_proba(X).astype(np.float32)
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
            from .persistence import _load_estimator

            tagger.classifier_ = _load_estimator(directory / _TAGGER_SKOPS)
        return tagger


def _build_base(config: dict[str, Any], directory: Path | None = None) -> QueryEncoder:
    from .persistence import _encoder_from_config

    return _encoder_from_config(config, directory)


class TaggedEncoder:
    """A query encoder made routing-aware by tags (see the module docstring).

    Args:
        base: The frozen encoder underneath; defaults to ``SentenceEncoder()`` (MiniLM).
        mode: ``"adapter"``, ``"tags"`` or ``"adapter+tags"`` — what :meth:`encode` returns.
        projection_dim: Output size of the adapter.
        hidden_dim: Hidden layer of the adapter.
        epochs: Passes over the training queries when fitting the adapter.
        batch_size: Queries per contrastive batch.
        lr: Adam learning rate.
        temperature: SupCon temperature.
        preserve: Weight of the term keeping the projection's similarities close to the base's.
        tag_weight: Scale of the tag memberships appended in the ``*tags`` modes.
        seed: Seeds the tagger, the adapter's initialisation and the batch order.
        tagger: A configured :class:`Tagger`; defaults to ``Tagger(seed=seed)``.

    Example:
        >>> from mixllm_core.testing import HashingEncoder, make_synthetic_world
        >>> data = make_synthetic_world(300, seed=0)
        >>> enc = TaggedEncoder(HashingEncoder(), mode="adapter+tags", epochs=5)
        >>> enc = enc.fit(data.queries, data.tasks, show_progress=False)
        >>> enc.encode(["Write a poem about the ocean"]).shape == (1, enc.dim)
        True
        >>> enc.tags(["Write a poem about the ocean"])[0][0]
        'writing'
    """

    def __init__(
        self,
        base: QueryEncoder | None = None,
        *,
        mode: str = "tags",
        projection_dim: int = 128,
        hidden_dim: int = 256,
        epochs: int = 30,
        batch_size: int = 256,
        lr: float = 1e-3,
        temperature: float = 0.1,
        preserve: float = 1.0,
        tag_weight: float = 1.0,
        seed: int = 0,
        tagger: Tagger | None = None,
    ) -> None:
        check_choice("mode", mode, ENCODER_MODES)
        for name, value in (
            ("projection_dim", projection_dim),
            ("hidden_dim", hidden_dim),
            ("epochs", epochs),
            ("batch_size", batch_size),
        ):
            _check_int(name, value, 1)
        _check_int("seed", seed, 0)
        _check_positive("lr", lr)
        _check_positive("temperature", temperature)
        for key, number in (("preserve", preserve), ("tag_weight", tag_weight)):
            if (
                isinstance(number, bool)
                or not isinstance(number, (int, float))
                or not 0 <= number < math.inf
            ):
                raise ConfigError(f"{key} must be a finite number >= 0, got {number!r}.")
        if tagger is not None and not isinstance(tagger, Tagger):
            raise ConfigError(f"tagger must be a Tagger, got {type(tagger).__name__}.")
        if base is None:
            from .encoder import SentenceEncoder

            base = SentenceEncoder()
        self.base = base
        self.mode = mode
        self.projection_dim = projection_dim
        self.hidden_dim = hidden_dim
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = float(lr)
        self.temperature = float(temperature)
        self.preserve = float(preserve)
        self.tag_weight = float(tag_weight)
        self.seed = seed
        self.tagger = tagger if tagger is not None else Tagger(seed=seed)
        self.adapter_: dict[str, np.ndarray] | None = None

    # ------------------------------------------------------------------ config
    def get_config(self) -> dict[str, Any]:
        return {
            "type": "tagged",
            "base": self.base.get_config(),
            "mode": self.mode,
            "projection_dim": self.projection_dim,
            "hidden_dim": self.hidden_dim,
            "epochs": self.epochs,
            "batch_size": self.batch_size,
            "lr": self.lr,
            "temperature": self.temperature,
            "preserve": self.preserve,
            "tag_weight": self.tag_weight,
            "seed": self.seed,
            "tagger": self.tagger.get_params(),
        }

    @property
    def _uses_adapter(self) -> bool:
        return self.mode.startswith("adapter")

    def _check_fitted(self) -> None:
        if not hasattr(self.tagger, "tags_") or (self._uses_adapter and self.adapter_ is None):
            raise NotFittedError(
                "This TaggedEncoder is not fitted yet; call fit(texts, labels) "
                "or load it with from_config(config, directory)."
            )

    @property
    def dim(self) -> int:
        self._check_fitted()
        first = self.projection_dim if self._uses_adapter else self.base.dim
        return first + (len(self.tagger.tags_) if self.mode.endswith("tags") else 0)

    # ------------------------------------------------------------------ fit
    def fit(
        self,
        texts: Sequence[str],
        labels: Sequence[str] | None = None,
        *,
        show_progress: bool = True,
    ) -> TaggedEncoder:
        """Fit the tagger, then the adapter (no quality labels are used).

        Args:
            texts: Training queries.
            labels: Task label per query for a supervised tagger, or None (unsupervised).
            show_progress: Show the embedding and training progress bars.
        """
        if isinstance(texts, str):
            raise ConfigError("fit() takes a sequence of texts, got a single str.")
        texts = [str(t) for t in texts]
        labels = None if labels is None else [str(y) for y in labels]
        if len(texts) < 2:
            raise ConfigError(f"fit() needs at least 2 texts, got {len(texts)}.")
        adapted = getattr(self.base, "adapted", None)
        if callable(adapted):  # a base with a corpus part (StaticEncoder) learns it first
            self.base = adapted(texts)
        X = _check_matrix(self.base.encode(texts, show_progress=show_progress))
        self.tagger.fit(texts, X, labels)
        self.adapter_ = None
        if self._uses_adapter:
            if labels is not None:
                index = {t: j for j, t in enumerate(self.tagger.tags_)}
                T = np.zeros((len(texts), len(index)), dtype=np.float32)
                T[np.arange(len(texts)), [index[y] for y in labels]] = 1.0
            else:
                T = self.tagger.tag_matrix(X)
            self.adapter_ = self._train_adapter(X, T, show_progress)
        return self

    def _train_adapter(
        self, X: np.ndarray, T: np.ndarray, show_progress: bool
    ) -> dict[str, np.ndarray]:
        """SupCon (positives share a tag) + similarity preservation, on a frozen ``X``."""
        import torch

        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # a small MLP: one thread is faster, above all on a busy CPU
        try:
            return self._train_loop(torch, X, T, show_progress)
        finally:
            torch.set_num_threads(threads)

    def _train_loop(
        self, torch: Any, X: np.ndarray, T: np.ndarray, show_progress: bool
    ) -> dict[str, np.ndarray]:
        from tqdm.auto import tqdm

        torch.manual_seed(self.seed)
        gen = torch.Generator().manual_seed(self.seed)
        net = torch.nn.Sequential(
            torch.nn.Linear(X.shape[1], self.hidden_dim),
            torch.nn.GELU(approximate="tanh"),
            torch.nn.Linear(self.hidden_dim, self.projection_dim),
        )
        opt = torch.optim.Adam(net.parameters(), lr=self.lr, weight_decay=1e-4)
        Xt, Tt = torch.from_numpy(X), torch.from_numpy(T)
        Xn = torch.nn.functional.normalize(Xt, dim=1)
        n, bs = len(X), min(self.batch_size, len(X))
        steps = self.epochs * math.ceil(n / bs)
        bar = tqdm(total=steps, desc="tag adapter", unit="step", disable=not show_progress)
        for _ in range(self.epochs):
            perm = torch.randperm(n, generator=gen)
            for start in range(0, n, bs):
                idx = perm[start : start + bs]
                if len(idx) < 2:
                    continue
                z = torch.nn.functional.normalize(net(Xt[idx]), dim=1)
                eye = torch.eye(len(idx), dtype=torch.bool)
                sim = (z @ z.T) / self.temperature
                logp = sim - torch.logsumexp(sim.masked_fill(eye, -1e9), dim=1, keepdim=True)
                pos = ((Tt[idx] @ Tt[idx].T) > 0) & ~eye
                has = pos.any(dim=1)
                loss = torch.zeros(())
                if has.any():
                    per = (logp * pos).sum(1)[has] / pos.sum(1)[has]
                    loss = -per.mean()
                if self.preserve > 0:
                    base_sim = Xn[idx] @ Xn[idx].T
                    loss = loss + self.preserve * ((z @ z.T - base_sim)[~eye] ** 2).mean()
                opt.zero_grad()
                loss.backward()
                opt.step()
                bar.update()
                bar.set_postfix(loss=f"{loss.item():.3f}", refresh=False)
        bar.close()
        l1, l2 = net[0], net[2]
        return {
            "W1": l1.weight.detach().numpy().T.copy(),
            "b1": l1.bias.detach().numpy().copy(),
            "W2": l2.weight.detach().numpy().T.copy(),
            "b2": l2.bias.detach().numpy().copy(),
        }

    # ------------------------------------------------------------------ encode
    def project(self, X: np.ndarray) -> np.ndarray:
        """The adapter applied to base embeddings ``X`` (unit-norm rows)."""
        self._check_fitted()
        if self.adapter_ is None:
            raise NotFittedError(f"mode={self.mode!r} has no adapter; use an 'adapter' mode.")
        a = self.adapter_
        h = X @ a["W1"] + a["b1"]
        h = 0.5 * h * (1.0 + np.tanh(0.7978845608028654 * (h + 0.044715 * h**3)))
        return _normalize(h @ a["W2"] + a["b2"]).astype(np.float32)

    def transform(self, X: np.ndarray) -> np.ndarray:
        """The encoder's output for precomputed base embeddings ``X``."""
        self._check_fitted()
        X = _check_matrix(X, dim=self.tagger.n_features_in_)
        parts = [self.project(X) if self._uses_adapter else X]
        if self.mode.endswith("tags"):
            parts.append(self.tag_weight * self.tagger.tag_proba(X))
        return np.hstack(parts).astype(np.float32)

    def encode(self, texts: Sequence[str], *, show_progress: bool = False) -> np.ndarray:
        """Embed ``texts`` as ``(n, dim)`` float32."""
        if isinstance(texts, str):
            raise ConfigError("encode() takes a sequence of texts, got a single str.")
        self._check_fitted()
        return self.transform(self.base.encode(list(texts), show_progress=show_progress))

    def tags(self, texts: Sequence[str]) -> list[list[str]]:
        """Tag names per text (no labels needed)."""
        if isinstance(texts, str):
            raise ConfigError("tags() takes a sequence of texts, got a single str.")
        self._check_fitted()
        return self.tagger.tag(self.base.encode(list(texts)))

    # ------------------------------------------------------------------ state
    def save_state(self, directory: Path) -> None:
        """Write the fitted tagger and adapter into ``directory`` (JSON, npz, skops)."""
        self._check_fitted()
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        meta, arrays = self.tagger._state()
        if self.adapter_ is not None:
            arrays.update({f"adapter_{k}": v for k, v in self.adapter_.items()})
        if self.tagger.mode_ == "supervised":
            import skops.io as sio

            sio.dump(self.tagger.classifier_, directory / _TAGGER_SKOPS)
        np.savez(directory / _STATE_NPZ, allow_pickle=False, **arrays)
        base_state = getattr(self.base, "save_state", None)
        if base_state is not None:
            base_state(directory / "base")
        state = {"config": self.get_config(), "tagger": meta}
        (directory / _STATE_JSON).write_text(json.dumps(state, indent=1))

    @classmethod
    def from_config(cls, config: dict[str, Any], directory: Path | None = None) -> TaggedEncoder:
        """Rebuild from :meth:`get_config`; with ``directory``, load the state saved there.

        Without ``directory`` the encoder is unfitted (call :meth:`fit` before encoding).
        """
        if config.get("type") != "tagged":
            raise ConfigError(f"Not a tagged encoder config: type is {config.get('type')!r}.")
        try:
            params = {k: v for k, v in config.items() if k not in ("type", "base", "tagger")}
            enc = cls(
                _build_base(
                    config["base"], None if directory is None else Path(directory) / "base"
                ),
                tagger=Tagger(**config.get("tagger", {})),
                **params,
            )
        except (KeyError, TypeError) as exc:
            raise ConfigError(f"Bad tagged encoder config {config!r}: {exc}") from exc
        if directory is None:
            return enc
        directory = Path(directory)
        try:
            state = json.loads((directory / _STATE_JSON).read_text())
            with np.load(directory / _STATE_NPZ, allow_pickle=False) as f:
                arrays = {k: f[k].copy() for k in f.files}
            enc.tagger = Tagger._from_state(state["tagger"], arrays, directory)
            if enc._uses_adapter:
                enc.adapter_ = {
                    k: arrays[f"adapter_{k}"].astype(np.float32) for k in ("W1", "b1", "W2", "b2")
                }
        except (OSError, KeyError, TypeError, ValueError) as exc:
            raise CorruptStateError(
                f"Tagged encoder state in {str(directory)!r} is unreadable: {exc!r}"
            ) from exc
        return enc
