"""Test doubles shared by the tests and notebooks: a fast deterministic encoder and a fake clock.

`HashingEncoder` is a real, if crude, encoder (hashed bag of words, L2-normalised) that needs no
model: tests and notebooks that are not about the embedding use it to stay fast.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Sequence
from typing import Any

import numpy as np

from .encoders import register_encoder
from .errors import ConfigError
from .experiments.synthetic import make_synthetic_world
from .latency import ManualClock as FakeClock

__all__ = ["FakeClock", "HashingEncoder", "make_synthetic_world"]

_WORD = re.compile(r"[a-z0-9]+")


class HashingEncoder:
    """Hashed bag-of-words embedding of dimension ``dim`` (deterministic, no model, no network)."""

    def __init__(self, dim: int = 64) -> None:
        if isinstance(dim, bool) or not isinstance(dim, int) or not 1 <= dim <= 65_536:
            raise ConfigError(f"HashingEncoder.dim must be an int in [1, 65536], got {dim!r}.")
        self._dim = dim
        self.calls = 0

    @property
    def dim(self) -> int:
        return self._dim

    def encode(self, texts: Sequence[str], *, show_progress: bool = False) -> np.ndarray:
        self.calls += 1
        out = np.zeros((len(texts), self._dim), dtype=np.float32)
        for i, text in enumerate(texts):
            for word in _WORD.findall(text.lower()):
                h = zlib.crc32(word.encode())
                out[i, h % self._dim] += 1.0 if (h >> 16) & 1 else -1.0
            norm = np.linalg.norm(out[i])
            out[i] = out[i] / norm if norm else out[i]
        return out

    def get_config(self) -> dict[str, Any]:
        return {"type": "hashing", "dim": self._dim}


register_encoder("hashing", lambda config: HashingEncoder(dim=config["dim"]))
