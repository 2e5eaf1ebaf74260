"""Defaults and validation of the encoders and the encoder test double."""

from __future__ import annotations

import pytest

from mixllm_core import ConfigError


def test_a_tagged_encoder_defaults_to_minilm_underneath() -> None:
    from mixllm_core import SentenceEncoder
    from mixllm_core.encoders import TaggedEncoder

    assert isinstance(TaggedEncoder().base, SentenceEncoder)  # built lazily: no model load here


def test_the_hashing_double_refuses_a_useless_dimension() -> None:
    from mixllm_core.testing import HashingEncoder

    for bad in (0, -3, 1.5, True, 10**9):
        with pytest.raises(ConfigError, match="HashingEncoder.dim must be an int"):
            HashingEncoder(dim=bad)  # type: ignore[arg-type]
