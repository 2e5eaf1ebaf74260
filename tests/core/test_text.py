"""How a query becomes the text the router embeds (one place for both integrations)."""

from __future__ import annotations

import pytest
from langchain_core.messages import HumanMessage, SystemMessage

from mixllm_core import ConfigError
from mixllm_core.text import estimate_tokens, query_text


def test_messages_of_every_shape_give_their_text() -> None:
    blocks = [
        {"type": "text", "text": "What is in this picture?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
        "and be brief",
    ]
    assert query_text([HumanMessage(content=blocks)]) == "What is in this picture?\nand be brief"
    assert query_text([SystemMessage("be kind"), ("user", "hi"), {"content": "there"}]) == (
        "be kind\nhi\nthere"
    )
    assert query_text([("user", blocks)]) == "What is in this picture?\nand be brief"
    assert query_text([{"role": "user", "content": blocks}]).startswith("What is in")


def test_a_message_without_text_is_refused_with_its_type() -> None:
    with pytest.raises(ConfigError, match="Cannot read a query from 'int'"):
        query_text(["ok", 3])


def test_token_estimate_grows_with_the_text() -> None:
    assert estimate_tokens("") == 1
    assert estimate_tokens("x" * 400) == 100
