"""`StaticEncoder` (the router's default): static token embeddings distilled from MiniLM, plus a
corpus part learned from the training queries. No transformer at query time.

A static token-embedding table distilled from MiniLM the model2vec way (every vocabulary token
run through MiniLM on its own, mean-pooled, weighted by a Zipf prior); a query is the weighted mean
of its tokens' rows, plus a corpus part (LSA over the same tokens) that :meth:`StaticEncoder.adapt`
learns from the training queries.

The table for the default settings ships in the package (:data:`SHIPPED_TABLE`, rebuilt by
``scripts/build_static_table.py``); other settings, or another model, distil theirs on first use
into the cache directory.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import threading
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError, CorruptStateError
from ._fasttok import FastWordPiece
from ._windowed import _model_dir, _normalise, _WindowedEncoder
from .base import DEFAULT_MODEL
from .build import distill_static_table, static_table_fingerprint
from .cache import EmbeddingCache

__all__ = ["LSA_MIN_DF", "SHIPPED_TABLE", "StaticEncoder"]

#: Tokens seen in fewer training queries than this get no weight in the corpus (LSA) part.
LSA_MIN_DF = 2
_LSA_STATE = "static_lsa.npz"

#: The static table shipped in the package: distilled from the packaged MiniLM with the default
#: ``pca_dims`` by ``scripts/build_static_table.py``. An encoder reads it when its fingerprint
#: (model files, settings, recipe version) is the encoder's own.
SHIPPED_TABLE = Path(__file__).with_name("minilm_static.npz")


@functools.lru_cache(maxsize=1)
def _shipped_fingerprint() -> str | None:
    """The fingerprint stored in :data:`SHIPPED_TABLE` (None when the file is absent or unreadable)."""
    try:
        with np.load(SHIPPED_TABLE, allow_pickle=False) as f:
            return str(f["fingerprint"])
    except (OSError, KeyError, ValueError):
        return None


class StaticEncoder(_WindowedEncoder):
    """Static token embeddings distilled from all-MiniLM-L6-v2, plus an optional corpus part.

    A query is tokenised once (MiniLM's WordPiece) and becomes two table lookups:

    - the **static part** (``pca_dims``): the weighted mean of the query's rows in a table
      distilled from MiniLM (see :func:`distill_static_table`); needs no training data;
    - the **corpus part** (``lsa_dims``, scaled by ``lsa_weight``): latent semantic analysis of
      the same WordPiece tokens, learned by :meth:`adapt` from the router's training queries
      (sublinear TF-IDF, tokens in at least ``LSA_MIN_DF`` queries, truncated SVD). It picks up
      what sets this workload's queries apart; ``MixLLMRouter.fit`` calls :meth:`adapt` for you.
      Until then it is zero, so the dimension never changes.

    Both parts are L2-normalised on their own. About 200× faster than MiniLM per query; with the
    corpus part, held-out routing quality within 0.5 points of MiniLM on RouterBench and LLMRouter
    (docs/dev/speed.md). The table (30,522 × ``pca_dims``, distilled from the packaged MiniLM) ships
    in the package for the default ``pca_dims``, so loading it takes a fraction of a second and
    never imports torch; other settings distil theirs on first use (a minute or two on two CPU
    cores, needs torch) into ``cache_dir``.

    Args:
        model: ``"all-MiniLM-L6-v2"`` (the packaged copy) or a local sentence-transformers dir.
        window, max_chars, max_seq_length: What the encoder reads (as in ``SentenceEncoder``).
        pca_dims: Dimensions kept by the PCA of the distilled table.
        lsa_dims: Dimensions of the corpus part; 0 turns it off (static table only).
        lsa_weight: Scale of the corpus part against the static part (norm 1).
        cache_size: Embeddings kept in memory (LRU by text hash); 0 disables the cache.
        cache_dir: Where a table that is not shipped is distilled on first use.

    Example:
        >>> enc = StaticEncoder()  # loads nothing yet
        >>> enc.encode(["What is 2+2?"]).shape  # the shipped table; corpus part still zero
        (1, 192)
        >>> enc = enc.adapt(["What is 2+2?", "Solve 3x = 9", "Write a haiku about rain"])
        >>> enc.is_adapted
        True
    """

    _type = "static"

    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        *,
        window: str = "tail",
        max_chars: int | None = 1000,
        max_seq_length: int = 256,
        pca_dims: int = 128,
        lsa_dims: int = 64,
        lsa_weight: float = 0.3,
        batch_size: int = 256,
        cache_size: int = 100_000,
        cache_dir: str | Path | None = None,
    ) -> None:
        super().__init__(
            model, window, max_chars, max_seq_length, batch_size, cache_size, cache_dir
        )
        if isinstance(pca_dims, bool) or not isinstance(pca_dims, int) or not 1 <= pca_dims <= 4096:
            raise ConfigError(f"pca_dims must be an int in [1, 4096], got {pca_dims!r}.")
        if isinstance(lsa_dims, bool) or not isinstance(lsa_dims, int) or not 0 <= lsa_dims <= 1024:
            raise ConfigError(f"lsa_dims must be an int in [0, 1024], got {lsa_dims!r}.")
        if (
            isinstance(lsa_weight, bool)
            or not isinstance(lsa_weight, (int, float))
            or not np.isfinite(lsa_weight)
            or lsa_weight <= 0
        ):
            raise ConfigError(f"lsa_weight must be a finite number > 0, got {lsa_weight!r}.")
        self.pca_dims = pca_dims
        self.lsa_dims = lsa_dims
        self.lsa_weight = float(lsa_weight)
        self._table: np.ndarray | None = None
        self._idf: np.ndarray | None = None  # (vocab,) 0 for tokens below LSA_MIN_DF
        self._lsa: np.ndarray | None = None  # (vocab, lsa_dims) the SVD's right singular vectors
        self._wordpiece: FastWordPiece | None = None
        # the token ids of the texts the last adapt() read, for the next _embed only: fit embeds
        # the same training queries right after, which then are not tokenised a second time
        self._adapt_ids: dict[str, np.ndarray] | None = None
        self.corpus_key_ = ""

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "pca_dims": self.pca_dims,
            "lsa_dims": self.lsa_dims,
            "lsa_weight": self.lsa_weight,
        }

    @classmethod
    def from_config(cls, config: dict[str, Any], **overrides: Any) -> Any:
        # configs saved before the corpus part existed describe a static-only encoder
        return super().from_config({"lsa_dims": 0, **config}, **overrides)

    @property
    def is_adapted(self) -> bool:
        """Whether the corpus part has been learned (always True when ``lsa_dims == 0``)."""
        return self.lsa_dims == 0 or self._lsa is not None

    def artefact_path(self) -> Path:
        """The ``.npz`` table this encoder reads: :data:`SHIPPED_TABLE` when its fingerprint is
        this encoder's (the packaged MiniLM, default ``pca_dims``), else a file in ``cache_dir``
        that is distilled on first use."""
        key = static_table_fingerprint(_model_dir(self.model), self.pca_dims)
        if key == _shipped_fingerprint():
            return SHIPPED_TABLE
        return self.cache_dir / "static" / f"minilm-static-{key}.npz"

    def _load(self, model_dir: Path) -> None:
        path = self.artefact_path()
        if not path.exists():
            distill_static_table(model_dir, path, pca_dims=self.pca_dims, show_progress=True)
        with np.load(path, allow_pickle=False) as f:
            vectors, weights = f["vectors"], f["weights"]
        self._table = (vectors * weights[:, None]).astype(np.float32)
        self._wordpiece = FastWordPiece(self._tokenizer)
        self._dim = int(vectors.shape[1]) + self.lsa_dims

    def _token_ids(self, windows: list[str]) -> list[np.ndarray]:
        assert self._wordpiece is not None
        return [np.asarray(ids, dtype=np.int32) for ids in self._wordpiece.ids(windows)]

    def _ids(self, texts: list[str]) -> list[list[int]]:
        """Token ids of ``texts``; those the last :meth:`adapt` read are taken from it, once."""
        assert self._wordpiece is not None
        with self._lock:
            known, self._adapt_ids = self._adapt_ids, None
        if not known:
            return self._wordpiece.ids(texts, self.batch_size)
        found = [known.get(t) for t in texts]
        rest = iter(
            self._wordpiece.ids([t for t, f in zip(texts, found) if f is None], self.batch_size)
        )
        return [next(rest) if f is None else f.tolist() for f in found]

    def adapt(self, texts: Sequence[str]) -> StaticEncoder:
        """Learn the corpus part (IDF + truncated SVD) from ``texts``, the training queries, in place.

        Deterministic, and a no-op when called again with the same texts. Clears the prompt cache.
        Routers call :meth:`adapted` instead, which leaves an encoder adapted elsewhere untouched.
        """
        if isinstance(texts, str):
            raise ConfigError("adapt() takes a sequence of texts, got a single str.")
        if self.lsa_dims == 0:
            return self
        windows = [self.window_text(str(t)) for t in texts]
        if len(windows) < 2:
            raise ConfigError(f"adapt() needs at least 2 texts, got {len(windows)}.")
        key = self._corpus_key(windows)  # windowing a window changes nothing
        if key == self.corpus_key_ and self._lsa is not None:
            return self
        self._ensure_loaded()
        assert self._table is not None
        from scipy import sparse
        from sklearn.preprocessing import normalize

        vocab = self._table.shape[0]
        # the sublinear term frequencies, built as CSR rows directly (no per-entry row index, no
        # COO copy: the peak memory of adapting on 200,000 queries is about half of that)
        cols, tf = [], []
        indptr = np.zeros(len(windows) + 1, np.int64)
        token_ids: dict[str, np.ndarray] = {}
        for i, (window, ids) in enumerate(zip(windows, self._token_ids(windows), strict=True)):
            token_ids[window] = ids
            u, c = np.unique(ids, return_counts=True)
            cols.append(u)
            tf.append(1.0 + np.log(c))
            indptr[i + 1] = len(u)
        np.cumsum(indptr, out=indptr)
        X = sparse.csr_matrix(
            (np.concatenate(tf), np.concatenate(cols), indptr), shape=(len(windows), vocab)
        )
        del cols, tf
        df = np.bincount(X.indices, minlength=vocab)
        idf = np.log((1.0 + len(windows)) / (1.0 + df)) + 1.0  # sklearn's smooth idf
        idf[df < LSA_MIN_DF] = 0.0
        X.data *= idf[X.indices]  # TF-IDF, in place
        X = normalize(X, copy=False)
        lsa = np.zeros((vocab, self.lsa_dims), np.float32)
        kept = np.flatnonzero(df >= LSA_MIN_DF)  # the other columns of X are all zero
        k = min(self.lsa_dims, X.shape[0] - 1, len(kept) - 1)
        if k >= 1:  # tiny corpora give fewer components; the rest stay zero
            lsa[kept, :k] = _lsa_components(X, kept, k)
        with self._lock:
            self._idf, self._lsa = idf.astype(np.float32), lsa
            self.corpus_key_ = key
            self._cache.clear()
            self._adapt_ids = token_ids
        return self

    def adapted(self, texts: Sequence[str]) -> StaticEncoder:
        """This encoder when it is already adapted to ``texts`` (or has no corpus part), else a
        copy adapted to them: what ``MixLLMRouter.fit`` uses, so fitting one router never changes
        the features of another router, or of a caller, holding the same encoder.

        The copy shares the read-only static table; it has its own prompt cache.
        """
        if isinstance(texts, str):
            raise ConfigError("adapted() takes a sequence of texts, got a single str.")
        if self.lsa_dims == 0 or (
            self._lsa is not None and self._corpus_key(texts) == self.corpus_key_
        ):
            return self
        self._ensure_loaded()  # load once, so the copy shares the table
        twin = copy.copy(self)
        twin._lock = threading.Lock()
        twin._cache = EmbeddingCache(self.cache_size)
        return twin.adapt(texts)

    def _corpus_key(self, texts: Sequence[str]) -> str:
        windows = [self.window_text(str(t)) for t in texts]
        return hashlib.sha1("\0".join(windows).encode()).hexdigest()

    def save_state(self, directory: Path) -> None:
        """Write the learned corpus part into ``directory`` (``.npz``; nothing when not adapted)."""
        if self.lsa_dims == 0 or self._lsa is None or self._idf is None:
            return
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        np.savez(
            directory / _LSA_STATE,
            allow_pickle=False,
            idf=self._idf,
            lsa=self._lsa,
            corpus_key=np.array(self.corpus_key_),
        )

    def load_state(self, directory: Path) -> StaticEncoder:
        """Read a corpus part written by :meth:`save_state` (no file: stays unadapted)."""
        path = Path(directory) / _LSA_STATE
        if self.lsa_dims == 0 or not path.exists():
            return self
        try:
            with np.load(path, allow_pickle=False) as f:
                idf, lsa, key = f["idf"], f["lsa"], str(f["corpus_key"])
        except (OSError, KeyError, ValueError) as exc:
            raise CorruptStateError(
                f"Static encoder state {str(path)!r} is unreadable: {exc!r}"
            ) from exc
        if lsa.ndim != 2 or lsa.shape[1] != self.lsa_dims or idf.shape != (lsa.shape[0],):
            raise CorruptStateError(
                f"Static encoder state {str(path)!r} has shapes idf {idf.shape}, lsa {lsa.shape}; "
                f"the config says lsa_dims={self.lsa_dims}."
            )
        with self._lock:
            self._idf, self._lsa = idf.astype(np.float32), lsa.astype(np.float32)
            self.corpus_key_ = key
            self._cache.clear()
        return self

    def _embed(self, texts: list[str]) -> np.ndarray:
        # per text: one gather of its distinct tokens' rows per part, weighted by their counts
        # (static part: the mean's direction) and sublinear TF-IDF (corpus part); np.unique and
        # numpy's matmul ufunc cost more than the arithmetic for a query's few dozen tokens
        assert self._table is not None and self._wordpiece is not None
        table, idf, lsa = self._table, self._idf, self._lsa
        p = table.shape[1]
        out = np.zeros((len(texts), p + self.lsa_dims), np.float32)
        for r, ids in enumerate(self._ids(texts)):
            if not ids:
                continue
            counts = Counter(ids)
            u = np.fromiter(counts, np.intp, len(counts))
            c = np.fromiter(counts.values(), np.float32, len(counts))
            static = np.dot(c, table.take(u, 0))
            out[r, :p] = static / max(float(np.sqrt(np.dot(static, static))), 1e-12)
            if lsa is not None and idf is not None:
                tf = 1.0 + np.log(c, dtype=np.float64)  # in float64, as the reference
                corpus = np.dot(tf * idf.take(u), lsa.take(u, 0))
                norm = max(float(np.sqrt(np.dot(corpus, corpus))), 1e-12)
                out[r, p:] = (self.lsa_weight / norm) * corpus
        return out


def _lsa_components(X: Any, kept: np.ndarray, k: int) -> np.ndarray:
    """The top ``k`` right singular vectors of ``X`` (sparse, n × vocab) on its columns ``kept``
    (its other columns are all zero), as ``(len(kept), k)``: exact (ARPACK), signs as
    scikit-learn's ``TruncatedSVD`` fixes them.

    Solving on the nonzero columns alone gives the same vectors as on all of ``X`` (zero rows
    elsewhere; equal to about 1e-12) in a space of ``len(kept)`` instead of ``min(n, vocab)``
    dimensions: half the time at 20,000 training queries.
    """
    from sklearn.decomposition import TruncatedSVD

    svd = TruncatedSVD(k, algorithm="arpack", random_state=0).fit(X[:, kept])
    components: np.ndarray = svd.components_.T
    return components


def _reference_embed(encoder: StaticEncoder, texts: list[str]) -> np.ndarray:
    """The encoder's embedding of ``texts`` the straightforward way (``tokenizers`` for every
    text, ``np.unique``, per-part normalisation): what the fast path in
    :meth:`StaticEncoder._embed` must equal; the tests and ``benchmarks/encoder_speed.py`` use it.
    """
    encoder._ensure_loaded()
    assert encoder._table is not None
    table, idf, lsa = encoder._table, encoder._idf, encoder._lsa
    static = np.zeros((len(texts), table.shape[1]), np.float32)
    corpus = np.zeros((len(texts), encoder.lsa_dims), np.float32)
    encs = encoder._tokenizer.encode_batch(texts, add_special_tokens=False)
    for r, enc in enumerate(encs):
        ids = np.asarray(enc.ids, dtype=np.int64)
        if not len(ids):
            continue
        static[r] = table[ids].mean(0)
        if lsa is not None and idf is not None:
            u, c = np.unique(ids, return_counts=True)
            corpus[r] = ((1.0 + np.log(c)) * idf[u]) @ lsa[u]
    if not encoder.lsa_dims:
        return _normalise(static)
    return np.hstack([_normalise(static), encoder.lsa_weight * _normalise(corpus)])
