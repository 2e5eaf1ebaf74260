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
queries, the quantity a naive average of its feedback gets wrong.
"""

from __future__ import annotations

import numpy as np

from .errors import ConfigError

__all__ = ["DEFAULT_CLIP", "dr_mean", "ips_mean", "ips_weights", "naive_mean"]

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
