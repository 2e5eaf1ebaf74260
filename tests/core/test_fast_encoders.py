"""The fast encoders: close to MiniLM, deterministic, cached artefacts, config round trip, errors.

The static table of the default settings ships in the package; other settings distil theirs into
the cache dir (``$MIXLLM_CACHE_DIR`` or ``~/.cache/mixllm``). The ONNX files are built once from
the packaged MiniLM into the cache dir and reused: tests that load MiniLM or build ONNX are
``slow``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mixllm_core import ConfigError, SentenceEncoder
from mixllm_core.encoders import OnnxEncoder, QueryEncoder, StaticEncoder, encoder_from_config
from mixllm_core.encoders.base import packaged_minilm_path
from mixllm_core.encoders.build import distill_static_table, static_table_fingerprint
from mixllm_core.encoders.static import SHIPPED_TABLE
from mixllm_core.errors import MissingDependencyError
from mixllm_core.router import MixLLMRouter
from tests.conftest import specialist_of, specialist_world

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


@pytest.mark.slow
def test_onnx_fp32_equals_minilm(onnx_fp32: OnnxEncoder, minilm: np.ndarray) -> None:
    X = onnx_fp32.encode(QUERIES)
    assert X.shape == (len(QUERIES), 384) and onnx_fp32.dim == 384
    assert ((X * minilm).sum(1) > 0.9999).all()  # same model, same window: same embedding


@pytest.mark.slow
def test_onnx_int8_stays_close_to_minilm(minilm: np.ndarray) -> None:
    X = OnnxEncoder(quantize=True, max_seq_length=128).encode(QUERIES)
    assert ((X * minilm).sum(1) > 0.97).all()  # weight-only int8: cosine 0.99 on RouterBench


@pytest.mark.slow
def test_static_keeps_minilm_neighbourhoods(static: StaticEncoder, minilm: np.ndarray) -> None:
    X = static.encode(QUERIES)
    assert X.shape == (len(QUERIES), 128)
    np.testing.assert_allclose(np.linalg.norm(X, axis=1), 1.0, atol=1e-5)
    # a static table is not MiniLM's space, but who is near whom agrees:
    assert X[0] @ X[1] > X[0] @ X[2] + 0.2  # paraphrases closer than unrelated queries
    S, M = X @ X.T, minilm @ minilm.T
    iu = np.triu_indices(len(QUERIES), 1)
    assert np.corrcoef(S[iu], M[iu])[0, 1] > 0.6  # pairwise similarities correlate


def test_static_tail_window_reads_the_question_after_a_shared_prefix(
    static: StaticEncoder,
) -> None:
    a, b = static.encode(QUERIES[4:6])
    assert a @ b < 0.9995  # a mean of tokens, diluted by the prefix
    head = StaticEncoder(window="head").encode(QUERIES[4:6])
    assert head[0] @ head[1] > 0.9999  # plain truncation cannot tell them apart


@pytest.mark.slow
def test_onnx_tail_window_reads_the_question_after_a_shared_prefix(onnx_fp32: OnnxEncoder) -> None:
    a, b = onnx_fp32.encode(QUERIES[4:6])
    assert a @ b < 0.95


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda: StaticEncoder(cache_size=0), id="static"),
        pytest.param(
            lambda: OnnxEncoder(quantize=False, cache_size=0), id="onnx", marks=pytest.mark.slow
        ),
    ],
)
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


@pytest.mark.parametrize(
    "enc",
    [
        pytest.param(StaticEncoder(max_chars=500, pca_dims=128), id="static"),
        pytest.param(
            OnnxEncoder(quantize=False, window="head", max_seq_length=64),
            id="onnx",
            marks=pytest.mark.slow,
        ),
    ],
)
def test_config_round_trip(enc: QueryEncoder) -> None:
    config = enc.get_config()
    assert config["type"] in ("static", "onnx")
    again = encoder_from_config(config)
    assert type(again) is type(enc) and again.get_config() == config
    np.testing.assert_array_equal(again.encode(QUERIES[:3]), enc.encode(QUERIES[:3]))


def test_router_on_the_static_table_sends_each_family_to_its_specialist(
    static: StaticEncoder,
) -> None:
    train, test = specialist_world().train_test_split()
    router = MixLLMRouter(encoder=static, seed=0).fit(train)
    picks = [d.llm for d in router.route_batch(test.queries, lam=5.0)]
    right = np.mean([p == specialist_of(t) for p, t in zip(picks, test.tasks or [], strict=True)])
    assert right >= 0.95  # measured 1.0 (56 held-out queries); a 64-d hashing encoder gets 0.89


def test_nothing_loads_or_builds_at_construction(tmp_path: Path) -> None:
    enc = StaticEncoder(cache_dir=tmp_path)
    OnnxEncoder(cache_dir=tmp_path)
    assert enc._table is None and not any(tmp_path.iterdir())


def test_default_settings_read_the_shipped_table_other_settings_the_cache(tmp_path: Path) -> None:
    assert StaticEncoder(cache_dir=tmp_path).artefact_path() == SHIPPED_TABLE
    assert StaticEncoder(cache_dir=tmp_path, lsa_dims=0, window="head").artefact_path() == (
        SHIPPED_TABLE  # window and corpus part do not change the table
    )
    other = StaticEncoder(cache_dir=tmp_path, pca_dims=64).artefact_path()
    assert other.parent == tmp_path / "static" and other != SHIPPED_TABLE
    # another model (here: MiniLM's tokenizer without its weights) has another fingerprint
    model = tmp_path / "model"
    model.mkdir()
    shutil.copy(packaged_minilm_path() / "tokenizer.json", model)
    assert StaticEncoder(str(model), cache_dir=tmp_path).artefact_path().parent == (
        tmp_path / "static"
    )


def test_shipped_table_is_the_packaged_minilms_in_float32() -> None:
    with np.load(SHIPPED_TABLE, allow_pickle=False) as f:
        assert sorted(f.files) == ["fingerprint", "pca_dims", "vectors", "weights"]
        assert str(f["fingerprint"]) == static_table_fingerprint(packaged_minilm_path(), 128)
        assert int(f["pca_dims"]) == 128
        assert f["vectors"].shape == (30522, 128) and f["vectors"].dtype == np.float32
        assert f["weights"].shape == (30522,) and f["weights"].dtype == np.float32


def test_default_encoder_loads_without_torch_and_writes_no_cache(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    cache.mkdir()
    code = (
        "import json, sys; from mixllm_core import StaticEncoder; "
        "X = StaticEncoder().encode(['hi', 'What is 2+2?']); "
        "print(json.dumps([list(X.shape), 'torch' in sys.modules, 'transformers' in sys.modules]))"
    )
    env = {**os.environ, "MIXLLM_CACHE_DIR": str(cache)}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == [[2, 192], False, False]
    assert not any(cache.iterdir())


@pytest.mark.slow
def test_shipped_table_equals_a_fresh_distillation(tmp_path: Path) -> None:
    fresh = distill_static_table(packaged_minilm_path(), tmp_path / "fresh.npz")
    with np.load(fresh, allow_pickle=False) as f, np.load(SHIPPED_TABLE, allow_pickle=False) as s:
        assert sorted(f.files) == sorted(s.files)
        assert str(f["fingerprint"]) == str(s["fingerprint"])
        assert int(f["pca_dims"]) == int(s["pca_dims"])
        np.testing.assert_array_equal(f["weights"], s["weights"])
        # bit-identical on the machine that built it; another CPU's float kernels may move the
        # last bits (|values| up to 4.5, mean 0.39), never by a recipe's worth
        np.testing.assert_allclose(f["vectors"], s["vectors"], rtol=0, atol=1e-3)


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


def test_missing_onnxruntime_names_the_pip_command(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import fails as if not installed
    with pytest.raises(MissingDependencyError, match="pip install onnx onnxruntime"):
        OnnxEncoder(cache_dir=tmp_path).encode(["x"])
