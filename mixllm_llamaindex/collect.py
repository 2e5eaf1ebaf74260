"""Feedback per user-visible answer: collect the routing decisions made while producing it.

A query engine's ``Response`` does not carry the LLM's ``additional_kwargs``, and one answer can
take several LLM calls (refine, tree summarize, an agent's steps). ``MixLLM.collect()`` opens a
block; every decision of that adapter whose child answered inside it (in this thread, or in any
asyncio task started inside it) lands in the :class:`AnswerDecisions` it yields, and one
``feedback`` call reaches all of them. Blocks nest; concurrent tasks each see only their own block
(``contextvars``). The machinery is shared with the LangChain adapter: :mod:`mixllm_core.collect`.
"""

from __future__ import annotations

from mixllm_core.collect import AnswerDecisions, collecting, notify

__all__ = ["AnswerDecisions", "collecting", "notify"]
