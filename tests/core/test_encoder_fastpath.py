"""The default encoder's fast per-query path gives the reference path's token ids and vectors."""

from __future__ import annotations

import json
import random
import string
from pathlib import Path

import numpy as np
import pytest

from mixllm_core.encoders import StaticEncoder
from mixllm_core.encoders._fasttok import FastWordPiece
from mixllm_core.encoders._windowed import _load_tokenizer, _model_dir
from mixllm_core.encoders.static import _reference_embed

WORDS = [
    "route",
    "the",
    "query",
    "to",
    "a",
    "model",
    "solve",
    "write",
    "code",
    "python",
    "haiku",
    "rain",
    "mathematics",
]
ODD = [
    "",
    " ",
    "\t\n\r",
    "\x00\x01\x02",
    "abc\x7fdef\x0bghi\x0cjkl\x1cmno\x1f",
    "Héllo wörld, ñandú! Ça va? 中文字符 😀 Ω≈ç √∫",
    "ÀÉÎÕÜ naïve café",
    "\ufffd\u200b zero\u00a0width\u2003em",
    "a [MASK] b [CLS][SEP]x[UNK]y[PAD]",
    "[mask] [unk] lower-case specials",
    "x" * 99 + " " + "y" * 100 + " " + "z" * 101 + " " + "ab" * 60,
    "1 " * 400,
    "don't stop-me now!!! (ok) {a} ~`^_ @#$%&*+=<>?/\\|;:'\",.",
    "CamelCase UPPER lower MiXeD 3.14159 1e-9 0xFF 42nd",
    "def f(x):\n    return x**2  # squares\n",
    "qwxzv kjqx zzzzzzzzzzz pneumonoultramicroscopicsilicovolcanoconiosis",
]


def _queries(n: int, seed: int) -> list[str]:
    """Seeded queries: words, punctuation, digits, whitespace, some non-ASCII, some long."""
    rng = random.Random(seed)
    pool = (
        WORDS + list(string.punctuation) + ["12", "3.5", "x2", "Über", "naïve", "数学", "\t", "\n"]
    )
    out = []
    for _ in range(n):
        k = rng.choice([1, 3, 8, 30, 120, 400])
        out.append(" ".join(rng.choice(pool) for _ in range(k)))
    return out + ODD


@pytest.fixture(scope="module")
def corpus() -> list[str]:
    return _queries(150, seed=0)


@pytest.fixture(scope="module")
def adapted(corpus: list[str]) -> StaticEncoder:
    return StaticEncoder(cache_size=0).adapt(corpus[:120])


@pytest.mark.parametrize("window", ["tail", "head"])
@pytest.mark.parametrize("max_len", [256, 16])
def test_token_ids_match_tokenizers(window: str, max_len: int) -> None:
    tok = _load_tokenizer(_model_dir("all-MiniLM-L6-v2"), window, max_len)
    fast = FastWordPiece(tok)
    assert fast.enabled
    texts = _queries(200, seed=1)
    ref = [e.ids for e in tok.encode_batch(texts, add_special_tokens=False)]
    assert fast.ids(texts) == ref
    assert fast.ids(texts) == ref  # the memoised words give the same ids again


def test_wordpiece_of_vocabulary_and_random_words() -> None:
    tok = _load_tokenizer(_model_dir("all-MiniLM-L6-v2"), "tail", 256)
    fast = FastWordPiece(tok)
    rng = random.Random(2)
    vocab = [w.removeprefix("##") for w in tok.get_vocab() if w.isascii() and w.isalnum()]
    words = rng.sample(vocab, 3000) + [
        "".join(
            rng.choice(string.ascii_lowercase + string.digits) for _ in range(rng.randint(1, 40))
        )
        for _ in range(2000)
    ]
    words = [w.lower() for w in words if w]
    assert [list(fast._wordpiece(w)) for w in words] == [
        tok.encode(w, add_special_tokens=False).ids for w in words
    ]


def test_other_tokenizer_pipelines_take_the_tokenizers_path() -> None:
    from tokenizers import Tokenizer

    tok = _load_tokenizer(_model_dir("all-MiniLM-L6-v2"), "tail", 256)
    spec = json.loads(tok.to_str())
    spec["normalizer"]["lowercase"] = False  # a cased BERT: not what the fast path reproduces
    cased = Tokenizer.from_str(json.dumps(spec))
    fast = FastWordPiece(cased)
    assert not fast.enabled
    texts = ["Hello World", "MiXeD case", ""]
    assert fast.ids(texts) == [e.ids for e in cased.encode_batch(texts, add_special_tokens=False)]
    assert fast.ids(texts)[0] != FastWordPiece(tok).ids(texts)[0]


def test_vectors_match_the_reference_path(adapted: StaticEncoder, corpus: list[str]) -> None:
    texts = [adapted.window_text(t) for t in _queries(120, seed=3)]
    new, ref = adapted._embed(texts), _reference_embed(adapted, texts)
    assert new.dtype == np.float32 and new.shape == ref.shape == (len(texts), adapted.dim)
    np.testing.assert_allclose(new, ref, rtol=0, atol=1e-6)
    # the public path (window, cache off), one query at a time and as one batch
    one = np.vstack([adapted.encode([t]) for t in texts[:40]])
    np.testing.assert_allclose(one, adapted.encode(texts[:40]), rtol=0, atol=1e-7)
    np.testing.assert_allclose(one, ref[:40], rtol=0, atol=1e-6)
    empty = adapted.encode([""])
    assert not empty.any()


@pytest.mark.parametrize("lsa_dims", [0, 64])
def test_unadapted_and_static_only_match_the_reference(lsa_dims: int) -> None:
    enc = StaticEncoder(lsa_dims=lsa_dims, cache_size=0)
    texts = _queries(40, seed=4)
    windows = [enc.window_text(t) for t in texts]
    np.testing.assert_allclose(enc.encode(texts), _reference_embed(enc, windows), rtol=0, atol=1e-6)


def test_saved_state_gives_the_reference_vectors(adapted: StaticEncoder, tmp_path: Path) -> None:
    adapted.save_state(tmp_path)
    loaded = StaticEncoder(cache_size=0).load_state(tmp_path)
    texts = _queries(30, seed=5)
    windows = [adapted.window_text(t) for t in texts]
    np.testing.assert_allclose(
        loaded.encode(texts), _reference_embed(adapted, windows), rtol=0, atol=1e-6
    )
