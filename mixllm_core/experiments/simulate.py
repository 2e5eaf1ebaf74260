"""`mixllm simulate`: a query stream against a pool with limited concurrency, with and without
the latency penalty.

Queries arrive as a Poisson process. Each LLM serves ``concurrency`` requests at once (FIFO
queue behind them); a request's service time is ``base_latency_s + output_tokens /
tokens_per_second``, with the output tokens of the routed LLM for that query from the data. The
router sees the pool only through its :class:`LatencyTracker` (driven by the simulated clock):
in-flight requests and the moving average of observed latencies give the expected wait ``w`` that
the penalty ``β·exp(γ·(w − ξ·τ))`` and the time limit ``τ`` act on.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np

from ..data import ASSUMED_OUTPUT_TOKENS, RoutingData
from ..decision import DecisionPolicy
from ..errors import ConfigError
from ..latency import LatencyTracker, ManualClock
from ..router import MixLLMRouter

__all__ = ["ServingProfile", "SimulationResult", "default_profiles", "simulate"]


@dataclass(frozen=True)
class ServingProfile:
    """How one LLM serves: parallel slots, generation speed and fixed overhead."""

    concurrency: int = 4
    tokens_per_second: float = 40.0
    base_latency_s: float = 0.3

    def __post_init__(self) -> None:
        if self.concurrency < 1 or self.tokens_per_second <= 0 or self.base_latency_s < 0:
            raise ConfigError(
                f"Invalid serving profile {self!r}: concurrency >= 1, speed > 0, "
                "base latency >= 0 are required."
            )


@dataclass
class SimulationResult:
    label: str
    latency_s: np.ndarray
    quality: np.ndarray
    cost: np.ndarray
    chosen: list[str]
    tau: float

    def summary(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "n": len(self.chosen),
            "p50_latency_s": float(np.percentile(self.latency_s, 50)),
            "p95_latency_s": float(np.percentile(self.latency_s, 95)),
            "share_over_tau": float(np.mean(self.latency_s > self.tau)),
            "mean_quality": float(self.quality.mean()),
            "mean_cost": float(self.cost.mean()),
            "share_by_llm": {
                n: self.chosen.count(n) / len(self.chosen) for n in sorted(set(self.chosen))
            },
        }


def default_profiles(
    router: MixLLMRouter,
    concurrency: int = 4,
    tokens_per_second: float = 40.0,
    base_latency_s: float = 0.3,
) -> dict[str, ServingProfile]:
    """One profile per pool LLM, from its spec's limits where given, else the defaults."""
    return {
        n: ServingProfile(
            s.max_concurrency or concurrency,
            s.tokens_per_second or tokens_per_second,
            base_latency_s,
        )
        for n, s in router.specs.items()
    }


def simulate(
    router: MixLLMRouter,
    data: RoutingData,
    *,
    policy: DecisionPolicy,
    rate_qps: float,
    n_queries: int,
    tau: float,
    profiles: Mapping[str, ServingProfile] | None = None,
    seed: int = 0,
    label: str = "",
) -> SimulationResult:
    """Replay ``n_queries`` Poisson arrivals (rows of ``data`` drawn at random) through ``router``.

    The router's tracker is replaced by one on the simulated clock for the run and restored after.
    """
    if rate_qps <= 0 or n_queries <= 0:
        raise ConfigError(f"rate_qps and n_queries must be > 0, got {rate_qps!r}, {n_queries!r}.")
    profiles = dict(profiles or default_profiles(router))
    missing = [n for n in router.llms if n not in profiles]
    if missing:
        raise ConfigError(
            f"No serving profile for {missing}; profiles exist for {sorted(profiles)}."
        )
    rng = np.random.default_rng(seed)
    arrivals = np.cumsum(rng.exponential(1.0 / rate_qps, size=n_queries))
    rows = rng.integers(0, len(data), size=n_queries)
    out_tok = (
        data.output_tokens
        if data.output_tokens is not None
        else np.full_like(data.quality, ASSUMED_OUTPUT_TOKENS)
    )
    cost = data.cost if data.cost is not None else np.zeros_like(data.quality)
    clock = ManualClock()
    tracker = LatencyTracker(clock)
    for name, prof in profiles.items():
        tracker.set_concurrency(name, prof.concurrency)
        j = data.llms.index(name)
        tracker.observe_service(
            name, prof.base_latency_s + float(np.mean(out_tok[:, j])) / prof.tokens_per_second
        )
    slots = {n: [0.0] * p.concurrency for n, p in profiles.items()}
    done: list[tuple[float, str]] = []  # (finish time, tracker token)
    saved = router.tracker
    router.tracker = tracker
    latency, quality, paid, chosen = [], [], [], []
    try:
        for t, row in zip(arrivals, rows):
            while done and done[0][0] <= t:
                finish, token = heapq.heappop(done)
                clock.now = finish
                tracker.finish(token)
            clock.now = t
            d = router.route(data.queries[row], policy=policy)
            j = data.llms.index(d.llm)
            prof = profiles[d.llm]
            start = max(t, heapq.heappop(slots[d.llm]))
            finish = start + prof.base_latency_s + out_tok[row, j] / prof.tokens_per_second
            heapq.heappush(slots[d.llm], finish)
            heapq.heappush(done, (finish, tracker.start(d.llm)))
            latency.append(finish - t)
            quality.append(data.quality[row, j])
            paid.append(cost[row, j])
            chosen.append(d.llm)
    finally:
        router.tracker = saved
    return SimulationResult(
        label, np.array(latency), np.array(quality), np.array(paid), chosen, tau
    )


def compare_penalty(
    router: MixLLMRouter,
    data: RoutingData,
    *,
    lam: float,
    rate_qps: float,
    n_queries: int,
    tau: float,
    beta: float = 0.1,
    gamma: float = 1.0,
    xi: float = 0.5,
    profiles: Mapping[str, ServingProfile] | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """The same arrivals routed without and with the latency penalty and time limit."""
    base = replace(router.policy, lam=lam, alpha=0.0)
    policies: dict[str, Callable[[], DecisionPolicy]] = {  # made in turn, as each run starts
        "without penalty": lambda: replace(base, beta=0.0, tau=None),
        "with penalty": lambda: replace(base, beta=beta, gamma=gamma, xi=xi, tau=tau),
    }
    runs = {
        label.replace(" ", "_"): simulate(
            router,
            data,
            policy=policy(),
            rate_qps=rate_qps,
            n_queries=n_queries,
            tau=tau,
            profiles=profiles,
            seed=seed,
            label=label,
        )
        for label, policy in policies.items()
    }
    profiles_used = profiles or default_profiles(router)
    return {
        "settings": {
            "lam": lam,
            "rate_qps": rate_qps,
            "n_queries": n_queries,
            "tau": tau,
            "beta": beta,
            "gamma": gamma,
            "xi": xi,
            "seed": seed,
            "profiles": {n: asdict(p) for n, p in profiles_used.items()},
        },
        **{k: v.summary() for k, v in runs.items()},
    }


def format_simulation(result: dict[str, Any]) -> str:
    s = result["settings"]
    lines = [
        f"simulate: {s['n_queries']} queries at {s['rate_qps']} q/s, tau {s['tau']} s, λ {s['lam']}, "
        f"penalty β={s['beta']} γ={s['gamma']} ξ={s['xi']}",
        f"{'routing':<18} {'p50 s':>7} {'p95 s':>7} {'> tau':>7} {'quality':>8} {'cost USD':>10}",
    ]
    for key in ("without_penalty", "with_penalty"):
        r = result[key]
        lines.append(
            f"{r['label']:<18} {r['p50_latency_s']:>7.2f} {r['p95_latency_s']:>7.2f} "
            f"{100 * r['share_over_tau']:>6.1f}% {r['mean_quality']:>8.4f} {r['mean_cost']:>10.3e}"
        )
    return "\n".join(lines)
