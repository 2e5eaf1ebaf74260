"""Choosing λ in the user's terms: a target mean cost, or a share of the best LLM's quality.

:meth:`MixLLMRouter.calibrate <mixllm_core.MixLLMRouter.calibrate>` routes validation data at
every λ of a grid and reads off the mean cost and quality the routed traffic reaches (as
RouteLLM calibrates its threshold); :func:`pick_lambda` then picks the λ that meets the target.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .errors import ConfigError

__all__ = ["CALIBRATION_GRID", "Calibration", "pick_lambda"]

#: λ values :meth:`~mixllm_core.MixLLMRouter.calibrate` tries (0, then 10⁻³ … 10³).
CALIBRATION_GRID: tuple[float, ...] = (0.0, *np.geomspace(1e-3, 1e3, 121).tolist())


@dataclass(frozen=True)
class Calibration:
    """The λ a calibration picked and what the routed traffic reached with it.

    Args:
        lam: The chosen λ.
        cost: Mean cost per query (USD) of the data routed with ``lam``.
        quality: Mean quality of the data routed with ``lam``.
        target: ``"cost"`` or ``"quality"``.
        target_value: The target mean cost in USD, or the target mean quality (for
            ``target_quality_share``, the share times the best single LLM's mean quality on the
            data).
        met: Whether ``lam`` meets the target (when no λ does, the closest one is returned).
        cost_source: ``"observed"`` (the data's costs) or ``"predicted"`` (the data has none).
        curve: ``(λ, mean cost, mean quality)`` for every λ tried.

    Example:
        >>> pick_lambda([0.0, 1.0, 9.0], [1.0, 2.0, 5.0], [0.5, 0.7, 0.8], target_cost=3.0).lam
        1.0
    """

    lam: float
    cost: float
    quality: float
    target: str
    target_value: float
    met: bool
    cost_source: str = "observed"
    curve: tuple[tuple[float, float, float], ...] = ()


def _positive(name: str, value: object, high: float = math.inf) -> float:
    ok = isinstance(value, (int, float, np.floating)) and not isinstance(value, bool)
    if not ok or not (math.isfinite(float(value)) and 0 <= float(value) <= high):  # type: ignore[arg-type]
        raise ConfigError(f"{name} must be a finite number in [0, {high}], got {value!r}.")
    return float(value)  # type: ignore[arg-type]


def check_target(target_cost: object, target_quality_share: object) -> tuple[str, float]:
    """``("cost", usd)`` or ``("quality_share", share)``; exactly one of the two is given."""
    if (target_cost is None) == (target_quality_share is None):
        raise ConfigError(
            "Give exactly one of target_cost= (mean USD per query) or target_quality_share= "
            "(a share in [0, 1] of the best LLM's mean quality)."
        )
    if target_cost is not None:
        return "cost", _positive("target_cost", target_cost)
    return "quality_share", _positive("target_quality_share", target_quality_share, 1.0)


def pick_lambda(
    lams: Sequence[float],
    costs: Sequence[float],
    qualities: Sequence[float],
    *,
    target_cost: float | None = None,
    target_quality: float | None = None,
) -> Calibration:
    """The λ whose routed traffic meets a target, from ``(λ, mean cost, mean quality)`` points.

    - ``target_cost``: the best quality among the λ whose mean cost is at most the target
      (ties: the cheaper); none: the cheapest λ, ``met=False``.
    - ``target_quality``: the cheapest λ whose mean quality reaches the target (ties: the
      better); none: the best quality, ``met=False``.

    Raises:
        ConfigError: not exactly one target, or the three sequences differ in length or are empty.
    """
    if (target_cost is None) == (target_quality is None):
        raise ConfigError("Give exactly one of target_cost= and target_quality=.")
    kind = "cost" if target_cost is not None else "quality"
    value = _positive(f"target_{kind}", target_cost if kind == "cost" else target_quality)
    lam, c, q = (np.asarray(v, dtype=float) for v in (lams, costs, qualities))
    if not (len(lam) == len(c) == len(q)) or len(lam) == 0:
        raise ConfigError(
            f"pick_lambda needs λ, cost and quality points of one non-empty length; got "
            f"{len(lam)}, {len(c)} and {len(q)}."
        )
    if kind == "cost":
        ok = c <= value * (1 + 1e-9)
        order = np.lexsort((c, -q)) if ok.any() else np.argsort(c, kind="stable")
    else:
        ok = q >= value - 1e-12
        order = np.lexsort((-q, c)) if ok.any() else np.lexsort((c, -q))
    best = next((int(i) for i in order if ok[i]), int(order[0]))
    curve = tuple((float(a), float(b), float(d)) for a, b, d in zip(lam, c, q))
    return Calibration(
        float(lam[best]),
        float(c[best]),
        float(q[best]),
        kind,
        value,
        bool(ok[best]),
        curve=curve,
    )
