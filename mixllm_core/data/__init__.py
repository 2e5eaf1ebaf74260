"""Routing data: which LLM answered which query how well, and at what cost.

`RoutingData` is the in-memory form every loader returns: ``n`` queries × ``m`` LLMs.

Formats read by :func:`load_routing_data` (the format is detected from the columns):

* **RouterBench** (``withmartian/routerbench``): one row per query; per model ``M`` a score
  column ``M``, ``M|total_cost`` and ``M|model_response``; ``prompt`` is a stringified list of
  turns; optional ``eval_name``, ``sample_id``, ``split``.
* **LLMRouter** (``ulab-uiuc/LLMRouter``, as in ``llmrouter_nim``): ``question``, ``task_name``,
  ``score__<model>`` columns, prices in a ``default_llm.json`` beside the file.
* **RouterArena** cached results (:func:`load_routerarena`), long format: ``question``,
  ``model``, ``score``, ``inference_cost_usd``, optional ``global_index``, ``input_tokens``,
  ``output_tokens``, ``dataset`` (the task); prices in a ``model_cost.json`` beside the file.
  Scores below 0 (METEOR can give −0.03) are clipped to 0.
* **a router's own log** (:func:`load_routing_log`): the feedback it received, one LLM per
  query, with the logged propensities.
* **generic** (ours), long format, one row per (query, LLM)::

      sample_id, query, llm, quality            required; quality in [0, 1]
      cost, input_tokens, output_tokens,        optional; cost in USD per call
      latency, task, split                      optional; split is "train" / "test"
      propensity, timestamp                     optional; see below

  A query needs rows only for the LLMs that answered it: a production log where each prompt was
  answered by one LLM and rated is valid, and the (query, LLM) pairs without a row are
  unobserved (each LLM's predictors learn from its own rows). ``propensity`` in (0, 1] is the
  probability with which the logging policy chose that LLM (training weighs the row by its
  inverse; empty: unknown, weight 1); ``timestamp`` is when it was logged (seconds since the
  epoch or ISO 8601; queries are ordered oldest first).

  as CSV, parquet or JSON lines. Prices may come in a ``prices.json`` beside it:
  ``{"llm": {"input_price": 0.15, "output_price": 0.6}}`` (USD per million tokens).

What is allowed: quality is a finite number in [0, 1]; cost, token counts and latency are finite
numbers >= 0; a sample id names one query (its rows agree
on the text, task and split) and each (sample id, LLM) pair appears once; prices are finite
numbers >= 0. Anything else — a file that cannot be parsed, a missing column, a cell of the wrong
type, a value out of range — raises :class:`~mixllm_core.errors.DataFormatError` naming the file,
the column, the first offending rows and what is allowed. Rows are counted from 0, header
excluded. The only thing dropped quietly is what the RouterBench loader is asked to drop:
rows with an empty score or cost (logged); the only thing changed is a negative RouterArena score
(clipped to 0, logged).
"""

from __future__ import annotations

from ..text import estimate_tokens
from .loaders import (
    effective_prices,
    load_generic,
    load_llmrouter,
    load_routerarena,
    load_routerbench,
    load_routerbench_hub,
    load_routing_data,
    load_routing_log,
)
from .routing_data import ASSUMED_OUTPUT_TOKENS, REFERENCE_INPUT_TOKENS, RoutingData

__all__ = [
    "ASSUMED_OUTPUT_TOKENS",
    "REFERENCE_INPUT_TOKENS",
    "RoutingData",
    "effective_prices",
    "estimate_tokens",
    "load_generic",
    "load_llmrouter",
    "load_routerarena",
    "load_routerbench",
    "load_routerbench_hub",
    "load_routing_data",
    "load_routing_log",
]
