"""`FastWordPiece`: MiniLM's BERT tokenisation of ASCII text without the per-call cost of
``tokenizers``, giving the same token ids.

``tokenizers`` tracks every character's offsets through normalisation and pre-tokenisation,
which costs about 0.3 ms for a 500-character query, most of a routing decision's budget. For
ASCII text, BERT's pipeline (``BertNormalizer`` → ``BertPreTokenizer`` → ``WordPiece``) reduces
to: drop control characters, lower-case, split into runs of letters and digits and single
punctuation marks, and WordPiece each run. The runs' pieces are memoised (each new run is
tokenised once by ``tokenizers`` itself), so a query costs a regex and a few dict lookups.

Anything else (non-ASCII text, an added token such as ``[MASK]`` in the text, a tokenizer whose
pipeline is not exactly BERT's) goes through ``tokenizers`` unchanged.
"""

from __future__ import annotations

import json
import re
import threading
from typing import Any

__all__ = ["FastWordPiece"]

# ASCII after BERT's clean_text: \t \n \r become spaces (separators), other Cc characters go.
_DROP = {c: None for c in (*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20), 0x7F)}
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
# BertPreTokenizer on ASCII: split on whitespace, isolate each ASCII punctuation character.
_PUNCT = r"!-/:-@\[-`{-~"
_WORDS = re.compile(rf"[^\s{_PUNCT}]+|[{_PUNCT}]")
_MAX_MEMO = 500_000


def _is_plain_bert(spec: dict[str, Any]) -> bool:
    """Whether a tokenizer's JSON ``spec`` is exactly the lower-casing BERT pipeline the fast path
    reproduces."""
    norm, pre, model = spec.get("normalizer") or {}, spec.get("pre_tokenizer") or {}, spec["model"]
    return (
        norm.get("type") == "BertNormalizer"
        and norm.get("clean_text") is True
        and norm.get("lowercase") is True
        and norm.get("strip_accents") in (None, True)
        and pre.get("type") == "BertPreTokenizer"
        and model.get("type") == "WordPiece"
    )


class FastWordPiece:
    """Token ids of texts, as ``tokenizer.encode_batch(texts, add_special_tokens=False)`` gives.

    Args:
        tokenizer: A ``tokenizers.Tokenizer`` (truncation as configured on it is applied).

    Example:
        >>> from mixllm_core.encoders._windowed import _load_tokenizer, _model_dir
        >>> tok = _load_tokenizer(_model_dir("all-MiniLM-L6-v2"), "tail", 256)
        >>> FastWordPiece(tok).ids(["Hello, World!"]) == [
        ...     e.ids for e in tok.encode_batch(["Hello, World!"], add_special_tokens=False)
        ... ]
        True
    """

    def __init__(self, tokenizer: Any) -> None:
        self._tok = tokenizer
        spec = json.loads(tokenizer.to_str())
        self.enabled = _is_plain_bert(spec)
        added = tokenizer.get_added_tokens_decoder().values()
        self._added = tuple(t.content for t in added)
        self._added_normalized = any(t.normalized for t in added)
        trunc = tokenizer.truncation
        self._max_len: int | None = None if trunc is None else int(trunc["max_length"])
        self._left = trunc is not None and trunc.get("direction") == "left"
        model = spec["model"] if self.enabled else {}
        self._vocab: dict[str, int] = dict(model.get("vocab", {}))
        unk = self._vocab.get(str(model.get("unk_token", "")))
        self._unk = unk if unk is not None else 0
        self._prefix = str(model.get("continuing_subword_prefix", "##"))
        self._max_word = int(model.get("max_input_chars_per_word", 100))
        self.enabled = self.enabled and unk is not None
        self._memo: dict[str, tuple[int, ...]] = {}
        self._memo_lock = threading.Lock()

    def _fast(self, text: str) -> list[int] | None:
        """The ids of ``text`` by the fast path, or None when it does not apply."""
        if not self.enabled or not text.isascii():
            return None
        if any(a in text for a in self._added):
            return None
        if self._added_normalized and any(a.lower() in text.lower() for a in self._added):
            return None
        if _CONTROL.search(text):
            text = text.translate(_DROP)
        memo = self._memo
        ids: list[int] = []
        for word in _WORDS.findall(text.lower()):
            pieces = memo.get(word)
            if pieces is None:
                pieces = self._wordpiece(word)
                with self._memo_lock:
                    if len(memo) >= _MAX_MEMO:
                        memo.clear()
                    memo[word] = pieces
            ids.extend(pieces)
        if self._max_len is not None and len(ids) > self._max_len:
            ids = ids[-self._max_len :] if self._left else ids[: self._max_len]
        return ids

    def _wordpiece(self, word: str) -> tuple[int, ...]:
        """WordPiece of one word: greedy longest match first, ``[UNK]`` for the whole word when
        a part matches nothing or the word is too long (as ``tokenizers`` does)."""
        vocab, n = self._vocab, len(word)
        if n > self._max_word:
            return (self._unk,)
        pieces: list[int] = []
        start = 0
        while start < n:
            prefix = self._prefix if start else ""
            for end in range(n, start, -1):
                found = vocab.get(prefix + word[start:end])
                if found is not None:
                    pieces.append(found)
                    start = end
                    break
            else:
                return (self._unk,)
        return tuple(pieces)

    def ids(self, texts: list[str], batch_size: int = 256) -> list[list[int]]:
        """Token ids per text (no special tokens), in order."""
        out: list[list[int] | None] = [self._fast(t) for t in texts]
        slow = [i for i, ids in enumerate(out) if ids is None]
        for start in range(0, len(slow), batch_size):
            chunk = slow[start : start + batch_size]
            encs = self._tok.encode_batch([texts[i] for i in chunk], add_special_tokens=False)
            for i, enc in zip(chunk, encs):
                out[i] = list(enc.ids)
        return [ids if ids is not None else [] for ids in out]
