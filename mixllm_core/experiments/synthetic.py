"""A small synthetic routing world, so the main command runs anywhere without data files.

It is labelled ``synthetic`` in every output. Five topics (math, code, trivia, writing, logic),
each with its own vocabulary; five LLMs with list-style prices and per-topic skills, so that the
priciest LLM is best on average but cheaper ones win on some topics. Quality is a Bernoulli draw of
``sigmoid(skill[llm, topic] − difficulty)``; output tokens depend on topic and LLM verbosity; cost is
tokens × prices. Everything is drawn from ``numpy.random.default_rng(seed)``.
"""

from __future__ import annotations

import numpy as np

from ..data import RoutingData, estimate_tokens
from ..spec import LLMSpec

__all__ = ["SYNTHETIC_LLMS", "make_synthetic_world"]

_TOPICS: dict[str, list[str]] = {
    "math": [
        "integral",
        "equation",
        "prime",
        "sum",
        "derivative",
        "matrix",
        "probability",
        "triangle",
        "fraction",
        "multiply",
        "solve",
        "algebra",
    ],
    "code": [
        "python",
        "function",
        "list",
        "sort",
        "string",
        "recursion",
        "class",
        "api",
        "bug",
        "loop",
        "regex",
        "dictionary",
    ],
    "trivia": [
        "capital",
        "river",
        "president",
        "year",
        "country",
        "mountain",
        "planet",
        "inventor",
        "novel",
        "painter",
        "ocean",
        "language",
    ],
    "writing": [
        "poem",
        "story",
        "essay",
        "letter",
        "tone",
        "summary",
        "paragraph",
        "style",
        "metaphor",
        "headline",
        "dialogue",
        "character",
    ],
    "logic": [
        "puzzle",
        "deduce",
        "riddle",
        "sequence",
        "pattern",
        "syllogism",
        "contradiction",
        "implies",
        "clue",
        "constraint",
        "order",
        "liar",
    ],
}
_TEMPLATES = [
    "Please {a} the {b} about {c}.",
    "How do I {a} a {b} with {c}?",
    "Explain the {b} and {c} in simple terms, then {a}.",
    "Can you {a} this {b}: {c} {d}?",
]

#: name, $/Mtok in, $/Mtok out, per-topic skill (math, code, trivia, writing, logic), verbosity
SYNTHETIC_LLMS: list[tuple[str, float, float, tuple[float, ...], float]] = [
    ("tiny-7b", 0.1, 0.1, (-0.8, -0.6, 1.0, 1.2, -1.0), 0.8),
    ("coder-34b", 0.6, 0.8, (0.2, 2.4, -0.3, -0.4, 0.3), 1.2),
    ("mid-70b", 0.9, 0.9, (0.6, 0.5, 1.8, 1.6, 0.4), 1.0),
    ("math-pro", 1.5, 3.0, (2.4, 0.6, 0.2, 0.0, 1.9), 1.5),
    ("frontier", 10.0, 30.0, (1.8, 1.8, 1.8, 1.6, 1.8), 1.1),
]
_OUTPUT_BASE = {"math": 220, "code": 300, "trivia": 60, "writing": 400, "logic": 180}


def make_synthetic_world(
    n_queries: int = 1500, *, seed: int = 0, test_size: float = 0.2
) -> RoutingData:
    """Generate a seeded synthetic routing data set (see the module docstring).

    Example:
        >>> data = make_synthetic_world(50, seed=1)
        >>> len(data), data.llms[0], data.source
        (50, 'tiny-7b', 'synthetic')
    """
    rng = np.random.default_rng(seed)
    topics = list(_TOPICS)
    verbs = ["solve", "explain", "write", "check", "improve", "analyse"]
    queries, tasks = [], []
    topic_idx = rng.integers(0, len(topics), size=n_queries)
    difficulty = rng.normal(0.0, 1.0, size=n_queries)
    for t in topic_idx:
        words = rng.choice(_TOPICS[topics[t]], size=3, replace=False)
        template = _TEMPLATES[rng.integers(0, len(_TEMPLATES))]
        queries.append(template.format(a=rng.choice(verbs), b=words[0], c=words[1], d=words[2]))
        tasks.append(topics[t])
    m = len(SYNTHETIC_LLMS)
    skill = np.array([s[3] for s in SYNTHETIC_LLMS]).T  # (topics, m)
    logits = skill[topic_idx] - difficulty[:, None]
    quality = (rng.random((n_queries, m)) < 1.0 / (1.0 + np.exp(-logits))).astype(float)
    in_tok = np.array([[estimate_tokens(q)] * m for q in queries], dtype=float)
    base = np.array([_OUTPUT_BASE[topics[t]] for t in topic_idx], dtype=float)
    verbosity = np.array([s[4] for s in SYNTHETIC_LLMS])
    out_tok = np.maximum(rng.poisson(base[:, None] * verbosity[None, :]), 1).astype(float)
    price_in = np.array([s[1] for s in SYNTHETIC_LLMS])
    price_out = np.array([s[2] for s in SYNTHETIC_LLMS])
    cost = (in_tok * price_in + out_tok * price_out) / 1e6
    latency = out_tok / np.array([120.0, 60.0, 40.0, 50.0, 30.0])
    split = np.where(rng.random(n_queries) < test_size, "test", "train")
    specs = {s[0]: LLMSpec(s[0], input_price=s[1], output_price=s[2]) for s in SYNTHETIC_LLMS}
    return RoutingData(
        queries=queries,
        llms=[s[0] for s in SYNTHETIC_LLMS],
        quality=quality,
        cost=cost,
        sample_ids=[f"synthetic-{i}" for i in range(n_queries)],
        tasks=tasks,
        split=list(split),
        input_tokens=in_tok,
        output_tokens=out_tok,
        latency=latency,
        specs=specs,
        source="synthetic",
    )
