"""Off-policy estimation: learning about every LLM from a log where each query saw one.

A routing log holds, per query, the quality of the LLM that was chosen only, and the chosen one
is the one the router thought best: the rows an LLM has feedback on are not a sample of the
queries it will be asked about. When each decision records the probability ``p`` with which its
LLM was chosen (its propensity, see :mod:`mixllm_core.decision`), weighting a row by ``1/p``
makes the weighted rows of each LLM stand for all queries again (inverse propensity scoring,
IPS); the doubly robust estimator (DR) adds a direct model's prediction for the queries an LLM was
not chosen for and uses the weighted rows to correct its error.

:func:`ips_weights` gives the weights a refit trains on (clipped so that one improbable choice
cannot dominate, and self-normalised so that feedback keeps its share against full-information
rows); :func:`ips_mean` and :func:`dr_mean` estimate an LLM's mean quality over the logged
queries, the quantity a naive average of its feedback gets wrong; :func:`dr_gain` estimates how
much more reward one routing policy would have earned than another on the logged queries (what
``refit`` asks of a candidate model before it replaces the current one).
"""

from __future__ import annotations

import numpy as np

from .errors import ConfigError

__all__ = ["DEFAULT_CLIP", "dr_gain", "dr_mean", "ips_mean", "ips_weights", "naive_mean"]

#: Smallest propensity a weight is computed from (weights are at most 1/DEFAULT_CLIP = 20).
DEFAULT_CLIP = 0.05


def _propensities(propensity: np.ndarray | list[float | None]) -> np.ndarray:
    values = [np.nan if v is None else float(v) for v in np.asarray(propensity, object).ravel()]
    p: np.ndarray = np.array(values, dtype=float)
    bad = np.isfinite(p) & ((p <= 0) | (p > 1))
    if bad.any():
        raise ConfigError(
            f"propensities must be in (0, 1] (or missing), got {p[bad][0]!r} at position "
            f"{int(np.flatnonzero(bad)[0])}."
        )
    return p


def ips_weights(
    propensity: np.ndarray | list[float | None],
    *,
    clip: float = DEFAULT_CLIP,
    normalise: bool = True,
) -> np.ndarray:
    """Inverse-propensity weights ``1 / max(p, clip)`` of logged rows.

    A missing propensity (None or NaN: a row logged without one, or full-information data)
    gets weight 1. With ``normalise``, the weights of the rows that have a propensity are scaled
    to mean 1 (self-normalised IPS): the logged rows are reweighted among themselves and keep
    their share against full-information rows.

    Example:
        >>> ips_weights([0.5, 1.0, None, 0.01], normalise=False).tolist()
        [2.0, 1.0, 1.0, 20.0]
        >>> ips_weights([0.5, 0.25, None]).tolist()
        [0.6666666666666666, 1.3333333333333333, 1.0]
    """
    if not 0 < clip <= 1:
        raise ConfigError(f"clip must be in (0, 1], got {clip!r}.")
    p = _propensities(propensity)
    logged = np.isfinite(p)
    w = 1.0 / np.maximum(np.where(logged, p, 1.0), clip)
    if normalise and logged.any():
        w[logged] *= logged.sum() / w[logged].sum()
    return w


def naive_mean(y: np.ndarray, chosen: np.ndarray) -> float:
    """The plain average of the observed qualities (biased under a selective policy)."""
    chosen = np.asarray(chosen, dtype=bool)
    return float(np.asarray(y, dtype=float)[chosen].mean()) if chosen.any() else float("nan")


def ips_mean(
    y: np.ndarray,
    chosen: np.ndarray,
    propensity: np.ndarray,
    *,
    clip: float | None = None,
    self_normalise: bool = False,
) -> float:
    """IPS estimate of one LLM's mean quality over all ``n`` logged queries.

    Args:
        y: ``(n,)`` observed quality where ``chosen`` (other entries are ignored).
        chosen: ``(n,)`` whether the LLM was chosen for the query.
        propensity: ``(n,)`` probability with which it would have been chosen.
        clip: Floor of the propensities (None: unclipped, unbiased).
        self_normalise: Divide by the sum of the weights instead of ``n`` (SNIPS).

    Example:
        >>> ips_mean(np.array([1.0, 0.0, 0.0]), np.array([True, False, False]), np.full(3, 0.5))
        0.6666666666666666
    """
    chosen = np.asarray(chosen, dtype=bool)
    p = _propensities(propensity)
    p = np.where(np.isfinite(p), p, 1.0)
    if clip is not None:
        p = np.maximum(p, clip)
    w = np.where(chosen, 1.0 / p, 0.0)
    y = np.where(chosen, np.asarray(y, dtype=float), 0.0)
    denominator = w.sum() if self_normalise else len(w)
    return float((w * y).sum() / denominator) if denominator > 0 else float("nan")


def dr_mean(y: np.ndarray, chosen: np.ndarray, propensity: np.ndarray, direct: np.ndarray) -> float:
    """Doubly robust estimate of one LLM's mean quality over all logged queries.

    ``direct`` ``(n,)`` is a model's predicted quality (e.g. the offline predictor's); the logged
    rows correct its error, weighted by ``1/p``. Unbiased when the propensities are right, and of
    low variance when the direct model is good.

    Example:
        >>> y, chosen = np.array([1.0, 0.0]), np.array([True, False])
        >>> round(dr_mean(y, chosen, np.array([0.5, 0.5]), np.array([0.8, 0.6])), 6)
        0.9
    """
    chosen = np.asarray(chosen, dtype=bool)
    p = _propensities(propensity)
    p = np.where(np.isfinite(p), p, 1.0)
    direct = np.asarray(direct, dtype=float)
    residual = np.where(chosen, (np.asarray(y, dtype=float) - direct) / p, 0.0)
    return float((direct + residual).mean())


def dr_gain(
    new: np.ndarray,
    old: np.ndarray,
    logged: np.ndarray,
    reward: np.ndarray,
    propensity: np.ndarray | list[float | None],
    direct: np.ndarray,
    *,
    clip: float = DEFAULT_CLIP,
) -> tuple[float, float]:
    """Doubly robust estimate of how much more reward policy ``new`` earns than ``old``.

    Over ``n`` logged queries and ``k`` settings (e.g. a λ grid), each policy chose one of ``m``
    actions per query and setting; the log holds the action taken, its propensity and its
    reward. The per-query gain is the direct model's reward of ``new``'s choice minus that of
    ``old``'s, corrected where either choice is the logged action by the direct model's error
    there, weighted by ``1 / max(p, clip)``; it is averaged over the settings. Where the two
    policies choose alike the gain is exactly 0, so the estimate's variance comes only from
    the queries on which they differ.

    Args:
        new, old: ``(n, k)`` action index chosen per query and setting.
        logged: ``(n,)`` action index taken in the log.
        reward: ``(n, k)`` observed reward of the logged action per setting.
        propensity: ``(n,)`` probability with which the logged action was taken (missing: 1).
        direct: ``(n, m, k)`` predicted reward of every action per setting.
        clip: Floor of the propensities.

    Returns:
        The mean gain per query and its standard error (NaN with fewer than two queries).

    Example:
        >>> direct = np.zeros((2, 2, 1))
        >>> new, old = np.array([[1], [1]]), np.array([[0], [0]])
        >>> gain, se = dr_gain(new, old, np.array([1, 0]), np.array([[1.0], [0.0]]),
        ...                    [0.5, 0.5], direct)
        >>> gain, round(se, 6)
        (1.0, 1.0)
    """
    if not 0 < clip <= 1:
        raise ConfigError(f"clip must be in (0, 1], got {clip!r}.")
    new, old = np.asarray(new, dtype=int), np.asarray(old, dtype=int)
    logged = np.asarray(logged, dtype=int)[:, None]
    direct = np.asarray(direct, dtype=float)
    n, k = new.shape
    if n == 0:
        return float("nan"), float("nan")
    p = _propensities(propensity)
    w = 1.0 / np.maximum(np.where(np.isfinite(p), p, 1.0), clip)
    rows, cols = np.arange(n)[:, None], np.arange(k)[None, :]
    model_gain = direct[rows, new, cols] - direct[rows, old, cols]
    error = np.asarray(reward, dtype=float) - direct[rows, logged, cols]
    hits = (new == logged).astype(float) - (old == logged).astype(float)
    d = (model_gain + hits * w[:, None] * error).mean(axis=1)
    se = float(d.std(ddof=1) / np.sqrt(n)) if n > 1 else float("nan")
    return float(d.mean()), se
