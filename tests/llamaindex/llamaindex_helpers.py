"""Helpers of the LlamaIndex adapter tests: a cold-start MixLLM over scripted children."""

from __future__ import annotations

from typing import Any

from mixllm_core.testing import HashingEncoder
from mixllm_llamaindex import MixLLM

PRICES = {"small": (0.1, 0.4), "big": (5.0, 15.0)}


def make_mix(children: dict[str, Any], **kwargs: Any) -> MixLLM:
    """A cold-start MixLLM over ``children`` with the fast hashing encoder."""
    kwargs.setdefault("prices", {n: p for n, p in PRICES.items() if n in children})
    return MixLLM(models=children, encoder=HashingEncoder(), **kwargs)
