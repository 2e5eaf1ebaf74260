"""Cost–quality metrics of routers (RouterBench's AIQ and the paper's operating points).

A router evaluated at several λ gives points (mean cost, mean quality). Mixing two routers at
random reaches any point on the segment between them, so what a router can achieve is the upper
convex hull of its points, made non-decreasing (paying more never has to lower quality).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["aiq", "cost_to_reach", "hull_points", "quality_at_cost"]


def hull_points(costs: Sequence[float], qualities: Sequence[float]) -> np.ndarray:
    """The non-decreasing upper convex hull of the points, as ``(k, 2)`` sorted by cost."""
    pts = np.array(sorted(set(zip(map(float, costs), map(float, qualities)))), dtype=float)
    if len(pts) == 0:
        return np.zeros((0, 2))
    # among equal costs keep the best quality
    keep = np.r_[pts[1:, 0] != pts[:-1, 0], True]
    pts = pts[keep]
    upper: list[np.ndarray] = []
    for p in pts:
        while len(upper) >= 2:
            (x1, y1), (x2, y2) = upper[-2], upper[-1]
            if (x2 - x1) * (p[1] - y1) - (y2 - y1) * (p[0] - x1) >= 0:
                upper.pop()
            else:
                break
        upper.append(p)
    hull = np.array(upper)
    best = int(np.argmax(hull[:, 1]))
    return hull[: best + 1]


def _hull_value(hull: np.ndarray, cost: float) -> float:
    if len(hull) == 0 or cost < hull[0, 0]:
        return 0.0
    if cost >= hull[-1, 0]:
        return float(hull[-1, 1])
    return float(np.interp(cost, hull[:, 0], hull[:, 1]))


def quality_at_cost(costs: Sequence[float], qualities: Sequence[float], cost: float) -> float:
    """Best quality reachable at mean cost ``cost`` (0 below the router's cheapest point)."""
    return _hull_value(hull_points(costs, qualities), cost)


def aiq(costs: Sequence[float], qualities: Sequence[float], max_cost: float) -> float:
    """Average improvement in quality (RouterBench): hull area over [0, max_cost] / max_cost."""
    hull = hull_points(costs, qualities)
    if len(hull) == 0 or max_cost <= 0:
        return 0.0
    grid_x = np.r_[hull[:, 0][hull[:, 0] < max_cost], max_cost]
    grid_x = grid_x[grid_x >= hull[0, 0]]
    if len(grid_x) == 0:
        return 0.0
    ys = np.array([_hull_value(hull, x) for x in grid_x])
    return float(np.trapezoid(ys, grid_x) / max_cost) if len(grid_x) > 1 else 0.0


def cost_to_reach(
    costs: Sequence[float], qualities: Sequence[float], target: float
) -> float | None:
    """Smallest mean cost whose hull quality reaches ``target``, or None if it never does."""
    hull = hull_points(costs, qualities)
    if len(hull) == 0 or hull[-1, 1] < target:
        return None
    if hull[0, 1] >= target:
        return float(hull[0, 0])
    i = int(np.argmax(hull[:, 1] >= target))
    (x1, y1), (x2, y2) = hull[i - 1], hull[i]
    return float(x1 + (target - y1) * (x2 - x1) / (y2 - y1))
