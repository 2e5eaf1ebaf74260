"""The guard's test of the online heads: kept only when they route held-out feedback better.

When a guarded ``refit`` refuses its candidate (see :class:`~mixllm_core.snapshot.RefitGuard`),
the online heads face the same kind of test before they may keep what they learned. Heads are
learned without the held-out feedback (each LLM's head from its training rows as rows of
residual 0, see :func:`~mixllm_core.online.training_prior`), and both the offline model with
those heads and the offline model alone route the held-out feedback greedily at every λ of the
guard. By default every record is held out once (``head_folds`` blocks in log order, the heads
learned from the other blocks); ``head_folds=0`` holds out the newest ``holdout`` share only.
The doubly robust estimate of the gain in routing reward (:func:`~mixllm_core.offpolicy.dr_gain`,
the offline model as the direct model, inverse logged propensities) must exceed ``head_margin``
standard errors; then the heads learned from all the feedback are returned, otherwise none (the
router's heads restart from zero: it routes as with no feedback).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .log import LoggedFeedback
from .offpolicy import dr_gain
from .online import HeadsTable
from .snapshot import PoolModel, RefitGuard, lambda_scores, offline_predictions

__all__ = ["HeadsVerdict", "guard_heads"]


@dataclass(frozen=True, eq=False)  # holds a table: compared by identity
class HeadsVerdict:
    """What :func:`guard_heads` found: the heads to keep (None: restart) and why.

    Example:
        >>> HeadsVerdict(None, float("nan"), float("nan"), "not tested").heads is None
        True
    """

    heads: HeadsTable | None
    gain: float
    stderr: float
    reason: str


def _learned(
    base: HeadsTable,
    pool: PoolModel,
    X: np.ndarray,
    llm: np.ndarray,
    residual: np.ndarray,
    rows: np.ndarray,
    training_prior: bool,
) -> HeadsTable:
    """``base`` with every LLM's head learned afresh from the feedback ``rows`` (from the
    training-row prior when ``training_prior``, else from ``ridge·I`` as the router's own)."""
    table = base
    for j, name in enumerate(pool.names):
        mine = rows[llm[rows] == j]
        if len(mine):
            prior = pool.head_prior(name, base.dim) if training_prior else None
            table = table.fitted(name, X[mine], residual[mine], prior=prior)
    return table


def guard_heads(
    pool: PoolModel,
    heads: HeadsTable,
    feedback: Sequence[LoggedFeedback],
    guard: RefitGuard,
    *,
    training_prior: bool = True,
) -> HeadsVerdict:
    """The heads learned from ``feedback`` over ``pool`` when they pass ``guard``'s test.

    ``heads`` gives the table's shape (names, dim, ridge); every head of it is learned afresh,
    from the training-row prior when ``training_prior`` (the router's default; False: from
    ``ridge·I``, as a router with an explicit ``online_ridge`` learns). Feedback the log marks
    as not applied, or on LLMs outside the pool, is ignored; feedback whose prompt was not stored makes
    the test impossible (refused).

    Example:
        >>> from mixllm_core import MixLLMRouter
        >>> from mixllm_core.testing import HashingEncoder, make_synthetic_world
        >>> router = MixLLMRouter(encoder=HashingEncoder()).fit(make_synthetic_world(60, seed=0))
        >>> heads = router.model.heads
        >>> guard_heads(router.model.pool, heads, [], RefitGuard()).reason
        '0 held-out feedback records, fewer than 30'
    """
    margin = guard.head_margin
    nan = float("nan")
    if margin is None:
        return HeadsVerdict(None, nan, nan, "heads are not tested (head_margin None)")
    usable = sorted(
        (fb for fb in feedback if fb.applied and fb.llm in pool.specs), key=lambda fb: fb.seq
    )
    n_held = int(round(guard.holdout * len(usable)))
    if n_held < guard.min_holdout:
        reason = f"{n_held} held-out feedback records, fewer than {guard.min_holdout}"
        return HeadsVerdict(None, nan, nan, reason)
    if any(fb.query is None for fb in usable):
        return HeadsVerdict(None, nan, nan, "feedback without a stored prompt")
    X, F = pool.features([fb.query or "" for fb in usable], check=False)
    if X.shape[1] != heads.dim:
        return HeadsVerdict(None, nan, nan, "the heads read another representation")
    names = list(pool.names)
    base = heads
    for name in names:
        base = base.reset(name) if name in base else base.with_head(name)
    Q0, C0 = offline_predictions(pool, X, F)
    llm = np.array([names.index(fb.llm) for fb in usable])
    score = np.array([fb.score for fb in usable], dtype=float)
    n = len(usable)
    residual = score - Q0[np.arange(n), llm]
    lambdas = np.asarray(guard.lambdas, dtype=float)
    direct = lambda_scores(Q0, C0, lambdas)
    if guard.head_folds >= 2:  # cross-fitted: every record is held out once, by time blocks
        block = np.arange(n) * guard.head_folds // n
        splits = [(np.flatnonzero(block != f), np.flatnonzero(block == f)) for f in set(block)]
        held = np.arange(n)
    else:  # the newest records held out, as the refit's own test
        held = np.arange(n - n_held, n)
        splits = [(np.arange(n - n_held), held)]
    chosen = direct.argmax(axis=1)
    for train_rows, test_rows in splits:
        trial = _learned(base, pool, X, llm, residual, train_rows, training_prior)
        corr, _ = trial.predict(names, X[test_rows])
        Q_new = np.clip(Q0[test_rows] + corr, 0.0, 1.0)
        chosen[test_rows] = lambda_scores(Q_new, C0[test_rows], lambdas).argmax(axis=1)
    logged = llm[held]
    cost = C0[held, logged]
    reward = lambda_scores(score[held][:, None], cost[:, None], lambdas)[:, 0, :]
    gain, se = dr_gain(
        chosen[held],
        direct[held].argmax(axis=1),
        logged,
        reward,
        [usable[i].propensity for i in held],
        direct[held],
        clip=guard.clip,
    )
    if not (np.isfinite(gain) and gain > margin * (se if np.isfinite(se) else np.inf)):
        reason = f"heads' estimated gain {gain:.4g} is not above {margin:g} x stderr {se:.4g}"
        return HeadsVerdict(None, gain, se, reason)
    kept = _learned(base, pool, X, llm, residual, np.arange(n), training_prior)
    reason = f"heads' estimated gain {gain:.4g} is above {margin:g} x stderr {se:.4g}"
    return HeadsVerdict(kept, gain, se, reason)
