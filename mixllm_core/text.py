"""The text of a query: what the router embeds, and a rough token count of it.

A query is a string or a list of chat messages; :func:`query_text` is the one place where chat
messages become text (both integrations call it).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any

from .errors import ConfigError

__all__ = ["Query", "estimate_tokens", "query_text", "storable_text"]

Query = str | Sequence[Any]

_SURROGATE = re.compile("[\ud800-\udfff]")


def storable_text(text: str) -> str:
    """``text`` as valid UTF-8: each lone surrogate (undecodable input) becomes U+FFFD.

    Example:
        >>> storable_text(b"caf\\xe9".decode("utf-8", "surrogateescape"))
        'caf\ufffd'
    """
    if text.isascii():
        return text
    try:  # strict UTF-8 refuses exactly the surrogates: most texts need no regex pass
        text.encode("utf-8")
    except UnicodeEncodeError:
        return _SURROGATE.sub("\ufffd", text)
    return text


def estimate_tokens(text: str) -> int:
    """Rough token count of ``text`` (4 characters a token, the usual BPE rule of thumb).

    Example:
        >>> estimate_tokens("What is 2+2?")
        3
    """
    return max(1, math.ceil(len(text) / 4))


def _content_text(content: Any) -> str:
    """The text of a message's content: a string, or the text parts of a list of content blocks
    (``{"type": "text", "text": ...}`` or plain strings; images and other blocks carry none)."""
    if isinstance(content, str):
        return content
    if isinstance(content, Sequence):
        texts = []
        for block in content:
            if isinstance(block, str):
                texts.append(block)
            elif isinstance(block, dict) and isinstance(block.get("text"), str):
                texts.append(block["text"])
        return "\n".join(t for t in texts if t)
    return str(content)


def query_text(query: Query) -> str:
    """The text a router embeds: a string, or the contents of a list of chat messages.

    Messages may be strings, ``(role, content)`` pairs, dicts with ``content``, or objects with a
    ``content`` attribute (LangChain and LlamaIndex messages).
    """
    if isinstance(query, str):
        return storable_text(query)
    if not isinstance(query, Sequence) or isinstance(query, (bytes, bytearray)):
        raise ConfigError(
            f"A query is a str or a list of chat messages, got {type(query).__name__}: {query!r:.80}"
        )
    parts = []
    for message in query:
        if isinstance(message, str):
            parts.append(message)
        elif isinstance(message, tuple) and len(message) == 2:
            parts.append(_content_text(message[1]))
        elif isinstance(message, dict):
            parts.append(_content_text(message.get("content", "")))
        elif hasattr(message, "content"):
            parts.append(_content_text(message.content))
        else:
            raise ConfigError(
                f"Cannot read a query from {type(message).__name__!r}; pass a str or chat "
                "messages (str, (role, content), {'content': ...} or objects with .content)."
            )
    return storable_text("\n".join(p for p in parts if p))
