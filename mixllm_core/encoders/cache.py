"""`EmbeddingCache`: the encoders' thread-safe LRU of embeddings by text key (cachetools)."""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence

import numpy as np
from cachetools import LRUCache

__all__ = ["EmbeddingCache"]


class EmbeddingCache:
    """Embeddings by text key, least recently used dropped first; every access holds the lock.

    Args:
        maxsize: Embeddings kept; 0 keeps none.

    Example:
        >>> cache = EmbeddingCache(2)
        >>> cache.put({"a": np.zeros(2), "b": np.ones(2), "c": np.ones(2)})
        >>> sorted(cache.get(["a", "b", "c"]))
        ['b', 'c']
    """

    def __init__(self, maxsize: int) -> None:
        self.maxsize = maxsize
        self._lru: LRUCache[str, np.ndarray] = LRUCache(maxsize=max(maxsize, 1))
        self._lock = threading.Lock()

    def get(self, keys: Sequence[str]) -> dict[str, np.ndarray]:
        """The cached embeddings among ``keys`` (each hit becomes the most recently used)."""
        if not self.maxsize:
            return {}
        with self._lock:
            return {k: self._lru[k] for k in dict.fromkeys(keys) if k in self._lru}

    def put(self, items: Mapping[str, np.ndarray]) -> None:
        if not self.maxsize:
            return
        with self._lock:
            for k, v in items.items():
                self._lru[k] = v

    def items(self) -> list[tuple[str, np.ndarray]]:
        """A snapshot, least recently used first."""
        with self._lock:
            return list(self._lru.items())

    def clear(self) -> None:
        with self._lock:
            self._lru.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._lru)
