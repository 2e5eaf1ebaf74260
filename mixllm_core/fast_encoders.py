"""Fast query encoders built locally from the packaged all-MiniLM-L6-v2 (no download, no network).

Both satisfy :class:`~mixllm_core.encoder.QueryEncoder` and read the same window of a query as
:class:`~mixllm_core.encoder.SentenceEncoder` (by default the last 1000 characters, because
RouterBench-style prompts open with a shared few-shot block):

- :class:`OnnxEncoder` (``type="onnx"``): MiniLM exported to ONNX and run by ONNX Runtime,
  optionally with int8 dynamic quantisation. Embeddings match MiniLM's (cosine > 0.99 at int8).
- :class:`StaticEncoder` (``type="static"``, the router's default): a static token-embedding table
  distilled from MiniLM the model2vec way (every vocabulary token run through MiniLM on its own,
  mean-pooled, weighted by a Zipf prior); a query is the weighted mean of its tokens' rows, plus a
  corpus part (LSA over the same tokens) that :meth:`StaticEncoder.adapt` learns from the training
  queries. No transformer at query time.

Artefacts (the ``.onnx`` files, the ``.npz`` table) are built from the packaged MiniLM on first use
and cached under ``cache_dir`` (default ``~/.cache/mixllm/``, or ``$MIXLLM_CACHE_DIR``), keyed by
a fingerprint of the weights and the build settings. Nothing is downloaded; nothing loads at import.
Both keep an in-memory LRU cache of embeddings keyed by the hash of the text window, so a repeated
prompt costs a dictionary lookup.
"""

from __future__ import annotations

import copy
import hashlib
import os
import threading
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .encoder import DEFAULT_MODEL, default_cache_dir, packaged_minilm_path, text_key, window_text
from .errors import ConfigError, MissingDependencyError, check_choice

__all__ = [
    "FAST_ENCODER_TYPES",
    "OnnxEncoder",
    "StaticEncoder",
    "default_cache_dir",
    "encoder_from_config",
]

_ARTEFACT_VERSION = 1


def _model_dir(model: str) -> Path:
    if model == DEFAULT_MODEL:
        return packaged_minilm_path()
    path = Path(model)
    if not (path / "tokenizer.json").exists():
        raise ConfigError(
            f"model must be {DEFAULT_MODEL!r} or a local sentence-transformers directory "
            f"with a tokenizer.json; got {model!r}."
        )
    return path


def _fingerprint(model_dir: Path, **settings: Any) -> str:
    """Key of a built artefact: the weights (size + first MiB), the tokenizer and the settings."""
    h = hashlib.sha1(repr((_ARTEFACT_VERSION, sorted(settings.items()))).encode())
    for name in ("model.safetensors", "pytorch_model.bin", "tokenizer.json"):
        f = model_dir / name
        if f.exists():
            h.update(name.encode() + str(f.stat().st_size).encode())
            with open(f, "rb") as fh:
                h.update(fh.read(1 << 20))
    return h.hexdigest()[:16]


def _load_tokenizer(model_dir: Path, window: str, max_seq_length: int) -> Any:
    try:
        from tokenizers import Tokenizer
    except ImportError as exc:  # pragma: no cover - installed with sentence-transformers
        raise MissingDependencyError(
            "The fast encoders need tokenizers: pip install tokenizers"
        ) from exc
    tok = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    tok.no_padding()
    # truncation applies before [CLS]/[SEP] are added, so max_length counts them like ST does
    tok.enable_truncation(max_seq_length, direction="left" if window == "tail" else "right")
    return tok


def _atomic_write(path: Path, write: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


class _WindowedEncoder:
    """Shared parts: validation, the text window, the LRU cache, lazy loading under a lock."""

    _type = ""

    def __init__(
        self,
        model: str,
        window: str,
        max_chars: int | None,
        max_seq_length: int,
        batch_size: int,
        cache_size: int,
        cache_dir: str | Path | None,
    ) -> None:
        check_choice("window", window, ("tail", "head"))
        if max_chars is not None and (
            isinstance(max_chars, bool) or not isinstance(max_chars, int) or max_chars <= 0
        ):
            raise ConfigError(f"max_chars must be a positive int or None, got {max_chars!r}.")
        for name, value in (("max_seq_length", max_seq_length), ("batch_size", batch_size)):
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ConfigError(f"{name} must be a positive int, got {value!r}.")
        if isinstance(cache_size, bool) or not isinstance(cache_size, int) or cache_size < 0:
            raise ConfigError(f"cache_size must be an int >= 0, got {cache_size!r}.")
        self.model = model
        self.window = window
        self.max_chars = max_chars
        self.max_seq_length = max_seq_length
        self.batch_size = batch_size
        self.cache_size = cache_size
        self.cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        self._lock = threading.Lock()
        self._loaded = False
        self._tokenizer: Any = None
        self._dim: int | None = None
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()

    def get_config(self) -> dict[str, Any]:
        return {
            "type": self._type,
            "model": self.model,
            "window": self.window,
            "max_chars": self.max_chars,
            "max_seq_length": self.max_seq_length,
        }

    @classmethod
    def from_config(cls, config: dict[str, Any], **overrides: Any) -> Any:
        """Rebuild from :meth:`get_config` (``overrides``: e.g. ``cache_dir``)."""
        if config.get("type") != cls._type:
            raise ConfigError(
                f"{cls.__name__} rebuilds configs of type {cls._type!r}, got "
                f"{config.get('type')!r}."
            )
        return cls(**{k: v for k, v in config.items() if k != "type"}, **overrides)

    def window_text(self, text: str) -> str:
        """The part of ``text`` the model reads."""
        return window_text(text, self.window, self.max_chars)

    def _ensure_loaded(self) -> None:
        if not self._loaded:
            with self._lock:
                if not self._loaded:
                    model_dir = _model_dir(self.model)
                    self._tokenizer = _load_tokenizer(model_dir, self.window, self.max_seq_length)
                    self._load(model_dir)
                    self._loaded = True

    def _load(self, model_dir: Path) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _embed(self, texts: list[str]) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    @property
    def dim(self) -> int:
        self._ensure_loaded()
        assert self._dim is not None
        return self._dim

    def encode(self, texts: Sequence[str], *, show_progress: bool = False) -> np.ndarray:
        """L2-normalised embeddings ``(n, dim)`` (float32); cached windows are not embedded again."""
        if isinstance(texts, str):
            raise ConfigError("encode() takes a sequence of texts, got a single str.")
        self._ensure_loaded()
        windows = [self.window_text(str(t)) for t in texts]
        keys = [text_key(w) for w in windows]
        with self._lock:
            hits = {k: self._cache[k] for k in keys if k in self._cache}
        todo = list(dict.fromkeys(k for k in keys if k not in hits))
        if todo:
            by_key = dict(zip(keys, windows))
            vectors = self._embed([by_key[k] for k in todo])
            hits.update(zip(todo, vectors))
        assert self._dim is not None
        out = np.stack([hits[k] for k in keys]) if keys else np.zeros((0, self._dim), np.float32)
        if self.cache_size:
            with self._lock:
                for k in keys:
                    self._cache[k] = hits[k]
                    self._cache.move_to_end(k)
                while len(self._cache) > self.cache_size:
                    self._cache.popitem(last=False)
        return out


def _normalise(X: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(X, axis=1, keepdims=True)
    return (X / np.maximum(norms, 1e-12)).astype(np.float32)


# --------------------------------------------------------------------------- ONNX Runtime


def build_onnx_model(model_dir: Path, path: Path, *, quantize: bool) -> Path:
    """Export MiniLM (mean-pooled) to ONNX at ``path``; with ``quantize``, int8 dynamic weights."""
    try:
        import torch
        from onnxruntime.quantization import QuantType, quantize_dynamic
        from transformers import AutoModel
    except ImportError as exc:
        raise MissingDependencyError(
            "Building the ONNX encoder needs torch, transformers, onnx and onnxruntime: "
            "pip install onnx onnxruntime"
        ) from exc

    class _MeanPooled(torch.nn.Module):
        def __init__(self, bert: Any) -> None:
            super().__init__()
            self.bert = bert

        def forward(self, input_ids: Any, attention_mask: Any) -> Any:
            hidden = self.bert(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)

    bert = AutoModel.from_pretrained(str(model_dir)).eval()
    ids = torch.ones(2, 16, dtype=torch.long)
    axes = {
        "input_ids": {0: "batch", 1: "seq"},
        "attention_mask": {0: "batch", 1: "seq"},
        "embedding": {0: "batch"},
    }

    def export(target: Path) -> None:
        import warnings

        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                _MeanPooled(bert),
                (ids, torch.ones_like(ids)),
                str(target),
                input_names=["input_ids", "attention_mask"],
                output_names=["embedding"],
                dynamic_axes=axes,
                opset_version=17,
                dynamo=False,
            )

    if not quantize:
        _atomic_write(path, export)
        return path
    fp32 = path.with_name(path.stem + ".fp32.onnx")
    _atomic_write(fp32, export)
    _atomic_write(
        path,
        lambda tmp: quantize_dynamic(
            str(fp32),
            str(tmp),
            weight_type=QuantType.QInt8,
            per_channel=True,
            extra_options={"MatMulConstBOnly": True},
        ),
    )  # weights only: cosine to fp32 0.99 vs 0.95
    fp32.unlink()
    return path


class OnnxEncoder(_WindowedEncoder):
    """all-MiniLM-L6-v2 on ONNX Runtime, optionally int8-quantised (built locally, cached).

    Args:
        model: ``"all-MiniLM-L6-v2"`` (the packaged copy) or a local sentence-transformers dir.
        quantize: int8 dynamic quantisation of the weights (faster, cosine to fp32 > 0.99).
        window, max_chars, max_seq_length: What the model reads (as in ``SentenceEncoder``).
        batch_size: Texts per forward pass (sorted by length to pad little).
        threads: ONNX Runtime intra-op threads (0: its default, all cores).
        cache_size: Embeddings kept in memory (LRU by text hash); 0 disables the cache.
        cache_dir: Where the ``.onnx`` file is built on first use.

    Example:
        >>> enc = OnnxEncoder()                 # builds nothing yet
        >>> enc.encode(["What is 2+2?"]).shape  # doctest: +SKIP
        (1, 384)
    """

    _type = "onnx"

    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        *,
        quantize: bool = True,
        window: str = "tail",
        max_chars: int | None = 1000,
        max_seq_length: int = 128,
        batch_size: int = 32,
        threads: int = 0,
        cache_size: int = 100_000,
        cache_dir: str | Path | None = None,
    ) -> None:
        super().__init__(
            model, window, max_chars, max_seq_length, batch_size, cache_size, cache_dir
        )
        if not isinstance(quantize, bool):
            raise ConfigError(f"quantize must be True or False, got {quantize!r}.")
        if isinstance(threads, bool) or not isinstance(threads, int) or threads < 0:
            raise ConfigError(f"threads must be an int >= 0, got {threads!r}.")
        self.quantize = quantize
        self.threads = threads
        self._session: Any = None

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "quantize": self.quantize}

    def artefact_path(self) -> Path:
        """The cached ``.onnx`` file this encoder runs (built on first use)."""
        model_dir = _model_dir(self.model)
        key = _fingerprint(model_dir, kind="onnx", quantize=self.quantize)
        return self.cache_dir / "onnx" / f"minilm-{'int8' if self.quantize else 'fp32'}-{key}.onnx"

    def _load(self, model_dir: Path) -> None:
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise MissingDependencyError(
                "OnnxEncoder needs ONNX Runtime: pip install onnx onnxruntime"
            ) from exc
        path = self.artefact_path()
        if not path.exists():
            build_onnx_model(model_dir, path, quantize=self.quantize)
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if self.threads:
            opts.intra_op_num_threads = self.threads
        self._session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        self._dim = int(self._session.get_outputs()[0].shape[-1] or 384)

    def _embed(self, texts: list[str]) -> np.ndarray:
        encs = self._tokenizer.encode_batch(texts)
        order = np.argsort([len(e.ids) for e in encs], kind="stable")
        out = np.empty((len(texts), self._dim or 0), np.float32)
        for start in range(0, len(texts), self.batch_size):
            rows = order[start : start + self.batch_size]
            width = max(len(encs[i].ids) for i in rows)
            ids = np.zeros((len(rows), width), np.int64)
            mask = np.zeros((len(rows), width), np.int64)
            for r, i in enumerate(rows):
                n = len(encs[i].ids)
                ids[r, :n] = encs[i].ids
                mask[r, :n] = 1
            (emb,) = self._session.run(None, {"input_ids": ids, "attention_mask": mask})
            out[rows] = emb
        return _normalise(out)


# --------------------------------------------------------------------------- static embeddings


def distill_static_table(
    model_dir: Path,
    path: Path,
    *,
    pca_dims: int = 128,
    batch_size: int = 512,
    show_progress: bool = False,
) -> Path:
    """Distil a static table from MiniLM into ``path`` (``.npz``: ``vectors``, ``weights``).

    The model2vec recipe: every vocabulary token goes through the model alone (``[CLS] t [SEP]``)
    and its mean-pooled output becomes its row; the table is centred and reduced by PCA to
    ``pca_dims``; rows are weighted by a Zipf prior on the token's
    rank (WordPiece vocabularies are roughly frequency-ordered), so frequent tokens count less.
    """
    try:
        import torch
        from transformers import AutoModel
    except ImportError as exc:
        raise MissingDependencyError(
            "Distilling the static encoder needs torch and transformers: pip install torch "
            "transformers"
        ) from exc
    tok = _load_tokenizer(model_dir, "head", 8)
    vocab = tok.get_vocab()
    n = max(vocab.values()) + 1
    cls_id, sep_id = vocab["[CLS]"], vocab["[SEP]"]
    bert = AutoModel.from_pretrained(str(model_dir)).eval()
    rows = []
    starts = range(0, n, batch_size)
    if show_progress:
        from tqdm.auto import tqdm

        starts = tqdm(starts, desc="distilling static table", unit="batch")
    with torch.inference_mode():
        for start in starts:
            token_ids = torch.arange(start, min(start + batch_size, n))
            ids = torch.stack(
                [torch.full_like(token_ids, cls_id), token_ids, torch.full_like(token_ids, sep_id)],
                dim=1,
            )
            hidden = bert(input_ids=ids, attention_mask=torch.ones_like(ids)).last_hidden_state
            rows.append(hidden.mean(1).numpy())
    vectors = np.concatenate(rows).astype(np.float64)
    # PCA (centre, rotate, keep the top pca_dims): removes the direction every token shares,
    # which would otherwise dominate a mean of tokens
    vectors -= vectors.mean(0)
    _, _, vt = np.linalg.svd(vectors, full_matrices=False)
    vectors = (vectors @ vt[:pca_dims].T).astype(np.float32)
    # Zipf prior p(rank) ∝ 1/rank, turned into a SIF weight a/(a + p): rare tokens weigh ~1
    rank = np.arange(1, n + 1, dtype=np.float64)
    p = (1.0 / rank) / (1.0 / rank).sum()
    weights = (1e-4 / (1e-4 + p)).astype(np.float32)

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as fh:
            np.savez(fh, vectors=vectors, weights=weights)

    _atomic_write(path, write)
    return path


#: Tokens seen in fewer training queries than this get no weight in the corpus (LSA) part.
LSA_MIN_DF = 2
_LSA_STATE = "static_lsa.npz"


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
    (docs/speed.md). The table (30,522 × ``pca_dims``) is distilled from the packaged MiniLM on
    first use (a minute or two on two CPU cores) and cached.

    Args:
        model: ``"all-MiniLM-L6-v2"`` (the packaged copy) or a local sentence-transformers dir.
        window, max_chars, max_seq_length: What the encoder reads (as in ``SentenceEncoder``).
        pca_dims: Dimensions kept by the PCA of the distilled table.
        lsa_dims: Dimensions of the corpus part; 0 turns it off (static table only).
        lsa_weight: Scale of the corpus part against the static part (norm 1).
        cache_size: Embeddings kept in memory (LRU by text hash); 0 disables the cache.
        cache_dir: Where the table is distilled on first use.

    Example:
        >>> enc = StaticEncoder()               # distils nothing yet
        >>> enc.adapt(train_queries)            # doctest: +SKIP
        >>> enc.encode(["What is 2+2?"]).shape  # doctest: +SKIP
        (1, 192)
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
        """The cached ``.npz`` table this encoder reads (distilled on first use)."""
        key = _fingerprint(_model_dir(self.model), kind="static", pca_dims=self.pca_dims)
        return self.cache_dir / "static" / f"minilm-static-{key}.npz"

    def _load(self, model_dir: Path) -> None:
        path = self.artefact_path()
        if not path.exists():
            distill_static_table(model_dir, path, pca_dims=self.pca_dims, show_progress=True)
        with np.load(path, allow_pickle=False) as f:
            vectors, weights = f["vectors"], f["weights"]
        self._table = (vectors * weights[:, None]).astype(np.float32)
        self._dim = int(vectors.shape[1]) + self.lsa_dims

    def _token_ids(self, windows: list[str]) -> list[np.ndarray]:
        ids: list[np.ndarray] = []
        for start in range(0, len(windows), self.batch_size):
            encs = self._tokenizer.encode_batch(
                windows[start : start + self.batch_size], add_special_tokens=False
            )
            ids.extend(np.asarray(e.ids, dtype=np.int64) for e in encs)
        return ids

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
        from sklearn.decomposition import TruncatedSVD
        from sklearn.preprocessing import normalize

        vocab = self._table.shape[0]
        rows, cols, tf = [], [], []
        for i, ids in enumerate(self._token_ids(windows)):
            u, c = np.unique(ids, return_counts=True)
            rows.append(np.full(len(u), i))
            cols.append(u)
            tf.append(1.0 + np.log(c))
        counts = sparse.csr_matrix(
            (np.concatenate(tf), (np.concatenate(rows), np.concatenate(cols))),
            shape=(len(windows), vocab),
        )
        df = np.bincount(counts.indices, minlength=vocab)
        idf = np.log((1.0 + len(windows)) / (1.0 + df)) + 1.0  # sklearn's smooth idf
        idf[df < LSA_MIN_DF] = 0.0
        X = normalize(counts.multiply(idf).tocsr())
        lsa = np.zeros((vocab, self.lsa_dims), np.float32)
        k = min(self.lsa_dims, X.shape[0] - 1, int((df >= LSA_MIN_DF).sum()) - 1)
        if k >= 1:  # tiny corpora give fewer components; the rest stay zero
            svd = TruncatedSVD(k, algorithm="arpack", random_state=0).fit(X)  # exact, 0.3 s
            lsa[:, :k] = svd.components_.T
        with self._lock:
            self._idf, self._lsa = idf.astype(np.float32), lsa
            self.corpus_key_ = key
            self._cache.clear()
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
        twin._cache = OrderedDict()
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
        from .errors import CorruptStateError

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
        assert self._table is not None
        p = self._table.shape[1]
        static = np.zeros((len(texts), p), np.float32)
        corpus = np.zeros((len(texts), self.lsa_dims), np.float32)
        idf, lsa = self._idf, self._lsa
        for r, ids in enumerate(self._token_ids(texts)):
            if not len(ids):
                continue
            static[r] = self._table[ids].mean(0)
            if lsa is not None and idf is not None:
                u, c = np.unique(ids, return_counts=True)
                corpus[r] = ((1.0 + np.log(c)) * idf[u]) @ lsa[u]
        if not self.lsa_dims:
            return _normalise(static)
        return np.hstack([_normalise(static), self.lsa_weight * _normalise(corpus)])


FAST_ENCODER_TYPES: dict[str, type[_WindowedEncoder]] = {
    "onnx": OnnxEncoder,
    "static": StaticEncoder,
}


def encoder_from_config(config: dict[str, Any], **overrides: Any) -> OnnxEncoder | StaticEncoder:
    """Rebuild a fast encoder from its ``get_config()`` (for ``persistence._encoder_from_config``)."""
    kind = config.get("type")
    if kind not in FAST_ENCODER_TYPES:
        raise ConfigError(
            f"Invalid fast encoder type {kind!r}. Available types are {sorted(FAST_ENCODER_TYPES)}."
        )
    return FAST_ENCODER_TYPES[kind].from_config(config, **overrides)
