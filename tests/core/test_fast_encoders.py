"""The fast encoders: close to MiniLM, deterministic, cached artefacts, config round trip, errors.

The artefacts (ONNX file, static table) are built once from the packaged MiniLM into the default
cache dir (``$MIXLLM_CACHE_DIR`` or ``~/.cache/mixllm``) and reused; the first run on a machine
pays the build (ONNX export ~10 s, static distillation a few minutes on two busy cores).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from mixllm_core import ConfigError, SentenceEncoder
from mixllm_core.encoders import OnnxEncoder, QueryEncoder, StaticEncoder, encoder_from_config
from mixllm_core.errors import MissingDependencyError
from mixllm_core.router import MixLLMRouter
from mixllm_core.testing import make_synthetic_world

PREFIX = "Question: Which gas do plants absorb?\nAnswer: carbon dioxide\n\n" * 30
QUERIES = [
    "How do I sort a list in Python?",
    "Sorting a Python list in place",
    "What is the capital of France?",
    "Write a function that returns the n-th Fibonacci number.",
    PREFIX + "Question: Which planet is closest to the sun?\nAnswer:",
    PREFIX + "Question: Who wrote the play Hamlet?\nAnswer:",
]


@pytest.fixture(scope="module")
def minilm() -> np.ndarray:
    return SentenceEncoder(max_seq_length=128, cache_size=0).encode(QUERIES)


@pytest.fixture(scope="module")
def onnx_fp32() -> OnnxEncoder:
    return OnnxEncoder(quantize=False, max_seq_length=128)


@pytest.fixture(scope="module")
def static() -> StaticEncoder:
    return StaticEncoder(lsa_dims=0)  # the distilled table alone


def test_onnx_fp32_equals_minilm(onnx_fp32: OnnxEncoder, minilm: np.ndarray) -> None:
    X = onnx_fp32.encode(QUERIES)
    assert X.shape == (len(QUERIES), 384) and onnx_fp32.dim == 384
    assert ((X * minilm).sum(1) > 0.9999).all()  # same model, same window: same embedding


def test_onnx_int8_stays_close_to_minilm(minilm: np.ndarray) -> None:
    X = OnnxEncoder(quantize=True, max_seq_length=128).encode(QUERIES)
    assert ((X * minilm).sum(1) > 0.97).all()  # weight-only int8: cosine 0.99 on RouterBench


def test_static_keeps_minilm_neighbourhoods(static: StaticEncoder, minilm: np.ndarray) -> None:
    X = static.encode(QUERIES)
    assert X.shape == (len(QUERIES), 128)
    np.testing.assert_allclose(np.linalg.norm(X, axis=1), 1.0, atol=1e-5)
    # a static table is not MiniLM's space, but who is near whom agrees:
    assert X[0] @ X[1] > X[0] @ X[2] + 0.2  # paraphrases closer than unrelated queries
    S, M = X @ X.T, minilm @ minilm.T
    iu = np.triu_indices(len(QUERIES), 1)
    assert np.corrcoef(S[iu], M[iu])[0, 1] > 0.6  # pairwise similarities correlate


def test_tail_window_reads_the_question_after_a_shared_prefix(static: StaticEncoder,
                                                              onnx_fp32: OnnxEncoder) -> None:
    for enc, most in ((onnx_fp32, 0.95), (static, 0.9995)):  # static: a mean, diluted by the prefix
        a, b = enc.encode(QUERIES[4:6])
        assert a @ b < most
    head = StaticEncoder(window="head").encode(QUERIES[4:6])
    assert head[0] @ head[1] > 0.9999  # plain truncation cannot tell them apart


@pytest.mark.parametrize("make", [lambda: StaticEncoder(cache_size=0),
                                  lambda: OnnxEncoder(quantize=False, cache_size=0)])
def test_deterministic_and_batch_independent(make: object) -> None:
    enc = make()  # type: ignore[operator]
    batch = enc.encode(QUERIES)
    again = make().encode(QUERIES)  # type: ignore[operator]
    one_by_one = np.vstack([enc.encode([q]) for q in QUERIES])
    np.testing.assert_array_equal(batch, again)
    np.testing.assert_allclose(batch, one_by_one, atol=1e-5)  # padding does not leak


def test_prompt_cache_returns_the_stored_embedding(static: StaticEncoder) -> None:
    first = static.encode(QUERIES[:2])
    static._embed = None  # type: ignore[assignment]  # would fail if the texts were embedded again
    try:
        np.testing.assert_array_equal(static.encode(QUERIES[1::-1]), first[::-1])
    finally:
        del static._embed


@pytest.mark.parametrize("enc", [StaticEncoder(max_chars=500, pca_dims=128),
                                 OnnxEncoder(quantize=False, window="head", max_seq_length=64)])
def test_config_round_trip(enc: QueryEncoder) -> None:
    config = enc.get_config()
    assert config["type"] in ("static", "onnx")
    again = encoder_from_config(config)
    assert type(again) is type(enc) and again.get_config() == config
    np.testing.assert_array_equal(again.encode(QUERIES[:3]), enc.encode(QUERIES[:3]))


def test_router_routes_with_a_fast_encoder(static: StaticEncoder) -> None:
    data = make_synthetic_world(n_queries=200, seed=0)
    router = MixLLMRouter(encoder=static, seed=0).fit(data)
    assert router.route("Solve 12 * 7 and explain the steps.").llm in data.llms


def test_nothing_loads_or_builds_at_construction(tmp_path: Path) -> None:
    enc = StaticEncoder(cache_dir=tmp_path)
    OnnxEncoder(cache_dir=tmp_path)
    assert enc._table is None and not any(tmp_path.iterdir())
    assert enc.artefact_path().parent == tmp_path / "static"


def test_validation_errors_name_the_bad_value() -> None:
    with pytest.raises(ConfigError, match="Invalid window 'middle'"):
        StaticEncoder(window="middle")
    with pytest.raises(ConfigError, match="max_seq_length must be a positive int, got 0"):
        OnnxEncoder(max_seq_length=0)
    with pytest.raises(ConfigError, match="pca_dims"):
        StaticEncoder(pca_dims=0)
    with pytest.raises(ConfigError, match=r"lsa_dims must be an int in \[0, 1024\], got -1"):
        StaticEncoder(lsa_dims=-1)
    with pytest.raises(ConfigError, match="lsa_weight must be a finite number > 0, got 0"):
        StaticEncoder(lsa_weight=0)
    with pytest.raises(ConfigError, match="adapt\\(\\) takes a sequence of texts"):
        StaticEncoder().adapt("one text")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="at least 2 texts, got 1"):
        StaticEncoder().adapt(["one text"])
    with pytest.raises(ConfigError, match="quantize must be True or False"):
        OnnxEncoder(quantize="yes")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="single str"):
        StaticEncoder().encode("just a string")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"Invalid encoder type 'bert'. Available types are \["):
        encoder_from_config({"type": "bert"})
    with pytest.raises(ConfigError, match="tokenizer.json"):
        StaticEncoder(model="/no/such/model").encode(["x"])


def test_missing_onnxruntime_names_the_pip_command(monkeypatch: pytest.MonkeyPatch,
                                                   tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import fails as if not installed
    with pytest.raises(MissingDependencyError, match="pip install onnx onnxruntime"):
        OnnxEncoder(cache_dir=tmp_path).encode(["x"])
