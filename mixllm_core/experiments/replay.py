"""Replay experiments: continual learning from feedback, and an LLM joining the pool mid-stream.

The paper's protocol: train the offline predictors on 30% of the training rows, then stream the
other 70% through route → feedback, the feedback computed from the data's true score of the
chosen LLM (``refined``: the score itself; ``binary``: thumbs up when the score is ≥ 0.5;
``none``: no feedback). The routers are then evaluated on the test rows across the λ grid.

While streaming, the router explores ε-greedily (``STREAM_EPSILON``) and logs the propensity of
each choice, so that its refits can weigh the feedback by inverse propensities (see
:mod:`mixllm_core.offpolicy`); the evaluation itself is greedy. Measured on RouterBench (seed 0,
docs/dev/learning.md): greedy streaming with the refit of the time lost 1.3 AIQ points to no
feedback; ε = 0.2 with the weighted, validated refit gained 0.08 there but still lost on other
splits (RouterBench seed 2, nim seed 0). The replay's refits are therefore guarded (see
:class:`~mixllm_core.snapshot.RefitGuard`; opt-in for ``MixLLMRouter.refit``): a refit that does
not route held-out feedback better, by a doubly robust estimate, is refused and the router routes
as without feedback.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from ..data import RoutingData
from ..decision import DecisionPolicy
from ..errors import ConfigError, check_choice
from ..memory import query_key
from ..metrics import aiq
from ..router import MixLLMRouter
from ..snapshot import RefitGuard

__all__ = [
    "FEEDBACK_KINDS",
    "StreamReport",
    "aiq_on",
    "evaluate_choices",
    "predictions_on",
    "split_offline_stream",
    "stream_feedback",
]

FEEDBACK_KINDS = ("none", "refined", "binary")
#: Exploration probability while a replay streams (0: greedy).
STREAM_EPSILON = 0.2


@dataclass
class StreamReport:
    """What a replayed stream did: choices per stream query and the share of each LLM."""

    kind: str
    chosen: list[str] = field(default_factory=list)
    quality: list[float] = field(default_factory=list)
    cost: list[float] = field(default_factory=list)
    added_at: int | None = None

    def share(self, llm: str, start: int = 0, stop: int | None = None) -> float:
        window = self.chosen[start:stop]
        return sum(c == llm for c in window) / max(len(window), 1)

    def summary(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "n": len(self.chosen),
            "mean_quality": float(np.mean(self.quality)),
            "mean_cost": float(np.mean(self.cost)),
            "added_at": self.added_at,
        }


def split_offline_stream(
    train: RoutingData, offline_share: float = 0.3, seed: int = 0
) -> tuple[RoutingData, RoutingData]:
    """The paper's split of the training rows: ``offline_share`` to fit on, the rest to stream."""
    if not 0 < offline_share < 1:
        raise ConfigError(f"offline_share must be in (0, 1), got {offline_share!r}.")
    perm = np.random.default_rng(seed).permutation(len(train))
    n_off = int(round(offline_share * len(train)))
    return train.subset(np.sort(perm[:n_off])), train.subset(perm[n_off:])


def stream_feedback(
    router: MixLLMRouter,
    stream: RoutingData,
    kind: str,
    *,
    lam: float,
    add_llm: tuple[int, Callable[[MixLLMRouter], None]] | None = None,
    refit_every: int | None = None,
    progress: Any = None,
    epsilon: float = STREAM_EPSILON,
) -> StreamReport:
    """Route every stream query, give feedback of ``kind`` from the data, return what happened.

    Args:
        router: A fitted router (its LLMs must be columns of ``stream``).
        stream: The rows to replay, in order.
        kind: ``"none"``, ``"refined"`` or ``"binary"``.
        lam: λ used while streaming.
        add_llm: ``(position, callback)``: call ``callback(router)`` before that stream position
            (e.g. ``router.add_llm(...)``).
        refit_every: Refit the offline predictors from the log every this many feedbacks.
        progress: Optional tqdm-like object updated once per query.
        epsilon: Exploration probability of the ε-greedy routing while streaming (0: greedy).
    """
    check_choice("feedback kind", kind, FEEDBACK_KINDS)
    policy: DecisionPolicy | None = None
    if epsilon > 0:
        policy = replace(router.policy, lam=lam, explore="epsilon", epsilon=epsilon)
    report = StreamReport(kind)
    cost = stream.cost if stream.cost is not None else np.zeros_like(stream.quality)
    given = 0
    for i, query in enumerate(stream.queries):
        if add_llm is not None and i == add_llm[0]:
            add_llm[1](router)
            report.added_at = i
        d = router.route(query, lam=lam) if policy is None else router.route(query, policy=policy)
        j = stream.llms.index(d.llm)
        score = float(stream.quality[i, j])
        report.chosen.append(d.llm)
        report.quality.append(score)
        report.cost.append(float(cost[i, j]))
        router.record_outcome(d.decision_id, cost=float(cost[i, j]))
        if kind == "refined":
            router.feedback(d.decision_id, score=float(np.clip(score, 0.0, 1.0)))
        elif kind == "binary":
            router.feedback(d.decision_id, thumbs=bool(score >= 0.5))
        if kind != "none":
            given += 1
            if refit_every and given % refit_every == 0:
                router.refit(guard=RefitGuard())
        if progress is not None:
            progress.update()
    return report


def predictions_on(
    router: MixLLMRouter, test: RoutingData, X: np.ndarray, F: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The router's predicted quality and cost ``(n, m)`` of ``test``'s rows from their
    representations ``X`` and cost features ``F``, the memory of seen queries included (as a
    route would), columns in ``test.llms`` order."""
    keys = [query_key(q) for q in test.queries]
    names, Q, C, _ = router.predict_features(X, F, keys=keys)
    order = [names.index(n) for n in test.llms]
    return Q[:, order], C[:, order]


def choose_indices(
    router: MixLLMRouter, Q: np.ndarray, C: np.ndarray, lam: float, c_ref: float | None = None
) -> np.ndarray:
    """Vectorised choice for many queries at one λ (no constraints, no latency, no exploration)."""
    p = replace(router.policy, lam=lam)
    S = router.maker.scores(Q, C, c_ref if c_ref is not None else router.c_ref(), policy=p)
    return router.maker.choose_batch(S)


def evaluate_choices(
    router: MixLLMRouter,
    test: RoutingData,
    X: np.ndarray,
    F: np.ndarray,
    lambdas: Sequence[float],
    c_ref: float,
    *,
    memory: bool = True,
) -> dict[float, np.ndarray]:
    """Per λ the index (into ``test.llms``) of the LLM the router picks for each test row (the
    memory of seen queries included, as a route would, unless ``memory`` is False)."""
    keys = [query_key(q) for q in test.queries] if memory else None
    names, Q, C, _ = router.predict_features(X, F, keys=keys)
    choices = {}
    for lam in lambdas:
        idx = choose_indices(router, Q, C, lam, c_ref)
        choices[lam] = np.array([test.llms.index(names[i]) for i in idx])
    return choices


def aiq_on(
    router: MixLLMRouter,
    test: RoutingData,
    lambdas: Sequence[float],
    max_cost: float | None = None,
    *,
    memory: bool = True,
) -> float:
    """AIQ of ``router``'s choices for the ``test`` rows over ``lambdas``, up to ``max_cost``
    (default: the priciest LLM's mean cost on ``test``); see :func:`evaluate_choices`."""
    X, F = router.features(test.queries)
    choices = evaluate_choices(router, test, X, F, lambdas, router.c_ref(), memory=memory)
    rows = np.arange(len(test))
    cost = test.cost if test.cost is not None else np.zeros_like(test.quality)
    costs = [float(cost[rows, idx].mean()) for idx in choices.values()]
    quals = [float(test.quality[rows, idx].mean()) for idx in choices.values()]
    top = float(cost.mean(axis=0).max()) if max_cost is None else max_cost
    return aiq(costs, quals, top)
