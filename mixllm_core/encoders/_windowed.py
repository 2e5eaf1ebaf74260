"""Shared parts of the encoders built from the packaged MiniLM: validation, the text window,
the LRU cache of embeddings, lazy loading under a lock, and artefact fingerprints."""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError, MissingDependencyError
from .base import (
    DEFAULT_MODEL,
    check_window,
    default_cache_dir,
    packaged_minilm_path,
    text_key,
    window_text,
)
from .cache import EmbeddingCache

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
        check_window(window, max_chars, max_seq_length)
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size <= 0:
            raise ConfigError(f"batch_size must be a positive int, got {batch_size!r}.")
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
        self._cache = EmbeddingCache(cache_size)

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
        hits = self._cache.get(keys)
        todo = list(dict.fromkeys(k for k in keys if k not in hits))
        if todo:
            by_key = dict(zip(keys, windows))
            fresh = dict(zip(todo, self._embed([by_key[k] for k in todo])))
            self._cache.put(fresh)
            hits.update(fresh)
        assert self._dim is not None
        return np.stack([hits[k] for k in keys]) if keys else np.zeros((0, self._dim), np.float32)


def _normalise(X: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(X, axis=1, keepdims=True)
    return np.asarray(X / np.maximum(norms, 1e-12), dtype=np.float32)
