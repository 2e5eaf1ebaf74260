"""The meta-decision maker: score every candidate, filter by hard constraints, take the best.

For candidate ``i`` (``../shared/DESIGN.md``)::

    s_i = λ/(1+λ)·q̂_i − 1/(1+λ)·ĉ_i/c_ref + α·u_i − β·exp(γ·(w_i − ξ·τ))

A larger λ puts quality first. Hard constraints (cost per query, a budget over a period, a time
limit τ, availability) remove candidates before the choice.

The choice itself is the policy's ``explore`` rule: ``"greedy"`` (the default) takes the best
score, ties broken by a seeded generator; ``"softmax"`` draws candidate ``i`` with probability
``∝ exp(s_i / temperature)``; ``"epsilon"`` takes the best score except with probability ε, when
it draws uniformly among the eligible. Every decision records the probability with which its LLM
was chosen (``RoutingDecision.propensity``): what an off-policy refit needs to undo the bias of
learning only about the LLMs that were chosen.
"""

from __future__ import annotations

import math
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from .errors import ConfigError, EmptyPoolError, check_choice, check_non_negative

__all__ = [
    "EXPLORE_RULES",
    "BudgetTracker",
    "CandidateScore",
    "DecisionMaker",
    "DecisionPolicy",
    "RoutingDecision",
    "choice_probabilities",
]

#: How a decision picks among the eligible candidates (see the module docstring).
EXPLORE_RULES = ("greedy", "softmax", "epsilon")


@dataclass(frozen=True)
class DecisionPolicy:
    """Knobs of the decision rule; validated on construction.

    Args:
        lam: Quality weight λ ≥ 0 (0: cheapest; large: best predicted quality).
        alpha: Weight of the exploration bonus (LinUCB uncertainty).
        beta, gamma, xi: Latency penalty β·exp(γ·(w − ξ·τ)), with w the expected wait (s).
        tau: Time limit per query in seconds; an LLM whose expected wait plus service time
            exceeds it is not chosen while another fits. None: no limit.
        max_cost_per_query: Candidates predicted to cost more (USD) are filtered out.
        budget: USD allowed per ``budget_period_s`` seconds (None: no budget).
        budget_period_s: Length of the budget period.
        explore: ``"greedy"`` (best score; deterministic up to ties), ``"softmax"`` (draw with
            probability ``∝ exp(s / temperature)``) or ``"epsilon"`` (best score, or with
            probability ``epsilon`` a uniform draw among the eligible).
        temperature: Temperature of ``"softmax"``, on the score scale (> 0).
        epsilon: Exploration probability of ``"epsilon"``, in [0, 1].

    Example:
        >>> DecisionPolicy(lam=2.0).quality_weight
        0.6666666666666666
        >>> DecisionPolicy(explore="softmax", temperature=0.02).explore
        'softmax'
    """

    lam: float = 1.0
    alpha: float = 0.0
    beta: float = 0.0
    gamma: float = 1.0
    xi: float = 1.0
    tau: float | None = None
    max_cost_per_query: float | None = None
    budget: float | None = None
    budget_period_s: float = 3600.0
    explore: str = "greedy"
    temperature: float = 0.02
    epsilon: float = 0.1

    def __post_init__(self) -> None:
        check_choice("DecisionPolicy.explore", self.explore, EXPLORE_RULES)
        if not (isinstance(self.temperature, (int, float)) and self.temperature > 0):
            raise ConfigError(
                f"DecisionPolicy.temperature must be a number > 0, got {self.temperature!r}."
            )
        if not (isinstance(self.epsilon, (int, float)) and 0.0 <= self.epsilon <= 1.0):
            raise ConfigError(
                f"DecisionPolicy.epsilon must be a number in [0, 1], got {self.epsilon!r}."
            )
        for name in ("lam", "alpha", "beta", "gamma", "xi"):
            check_non_negative(f"DecisionPolicy.{name}", getattr(self, name))
        for name in ("tau", "max_cost_per_query", "budget"):
            value = getattr(self, name)
            if value is not None:
                check_non_negative(f"DecisionPolicy.{name}", value)
        if not self.budget_period_s > 0:
            raise ConfigError(
                f"DecisionPolicy.budget_period_s must be > 0, got {self.budget_period_s!r}."
            )

    @property
    def quality_weight(self) -> float:
        return self.lam / (1.0 + self.lam)

    @property
    def cost_weight(self) -> float:
        return 1.0 / (1.0 + self.lam)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class CandidateScore:
    """One candidate's row of a decision's breakdown."""

    llm: str
    quality: float
    cost: float
    uncertainty: float
    wait_s: float
    score: float
    eligible: bool
    reason: str = ""


@dataclass(frozen=True, eq=False)
class _CandidateTable:
    """A decision's breakdown as arrays; :class:`CandidateScore` rows are built on demand.

    ``reasons`` holds the reason of every ineligible candidate by position; ``index`` is the
    chosen one's.
    """

    names: Sequence[str]
    quality: np.ndarray
    cost: np.ndarray
    uncertainty: np.ndarray
    wait: np.ndarray
    score: np.ndarray
    eligible: np.ndarray
    reasons: dict[int, str]
    index: int

    def row(self, i: int) -> CandidateScore:
        return CandidateScore(
            llm=self.names[i],
            quality=float(self.quality[i]),
            cost=float(self.cost[i]),
            uncertainty=float(self.uncertainty[i]),
            wait_s=float(self.wait[i]),
            score=float(self.score[i]),
            eligible=bool(self.eligible[i]),
            reason=self.reasons.get(i, ""),
        )

    def rows(self) -> tuple[CandidateScore, ...]:
        reasons = [""] * len(self.names)
        for i, why in self.reasons.items():
            reasons[i] = why
        columns = (self.quality, self.cost, self.uncertainty, self.wait, self.score)
        q, c, u, w, s = (np.asarray(a, dtype=float).tolist() for a in columns)  # = float(a[i])
        return tuple(
            map(CandidateScore, self.names, q, c, u, w, s, self.eligible.tolist(), reasons)
        )


class _Candidates:
    """``RoutingDecision.candidates``: the tuple the constructor was given, or one built on first
    read from the :class:`_CandidateTable` a :class:`DecisionMaker` passed instead (most
    decisions are never asked for their breakdown, and building a frozen row per LLM used to
    cost more than the whole decision rule)."""

    def __get__(
        self, obj: RoutingDecision | None, owner: type | None = None
    ) -> tuple[CandidateScore, ...]:
        if obj is None:  # what ``dataclass`` asks for a default: there is none
            raise AttributeError("candidates")
        state = obj.__dict__
        rows: tuple[CandidateScore, ...] | None = state.get("_candidates")
        if rows is None:
            rows = state["_candidate_table"].rows()
            state["_candidates"] = rows  # two threads may build it at once: equal tuples
        return rows

    def __set__(self, obj: RoutingDecision, value: Any) -> None:
        if isinstance(value, _CandidateTable):
            obj.__dict__["_candidate_table"] = value
        else:
            obj.__dict__["_candidates"] = value


@dataclass(frozen=True)
class RoutingDecision:
    """The outcome of routing one query: the chosen LLM and why.

    ``candidates`` holds every LLM's predicted quality, cost, uncertainty, expected wait and score;
    ``eligible`` is False (with a ``reason``) for those the hard constraints removed.
    ``propensity`` is the probability with which ``llm`` was chosen (1.0 for a greedy choice
    without ties or a fallback; see :func:`choice_probabilities`).
    """

    decision_id: str
    llm: str
    if TYPE_CHECKING:
        candidates: tuple[CandidateScore, ...]
    else:  # a tuple to every reader; a decision maker's are built on first read
        candidates: tuple[CandidateScore, ...] = _Candidates()
    lam: float
    fallback: str = ""
    created_at: float = field(default_factory=time.time)
    propensity: float = 1.0
    c_ref: float | None = None

    def _table(self) -> _CandidateTable | None:
        """The arrays behind ``candidates`` while no row was built (None: none or built)."""
        state = self.__dict__
        return None if "_candidates" in state else state.get("_candidate_table")

    @property
    def chosen(self) -> CandidateScore:
        table = self._table()
        if table is not None:
            return table.row(table.index)
        return next(c for c in self.candidates if c.llm == self.llm)

    @property
    def predicted_quality(self) -> float:
        table = self._table()
        return self.chosen.quality if table is None else float(table.quality[table.index])

    @property
    def predicted_cost(self) -> float:
        table = self._table()
        return self.chosen.cost if table is None else float(table.cost[table.index])

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form (what the integrations put in response metadata)."""
        return {
            "decision_id": self.decision_id,
            "llm": self.llm,
            "lam": self.lam,
            "fallback": self.fallback,
            "propensity": self.propensity,
            "c_ref": self.c_ref,
            "candidates": [asdict(c) for c in self.candidates],
        }

    def break_even(self) -> dict[str, tuple[str, float]]:
        """For every other eligible candidate, the λ at which it would take over from the chosen
        LLM on predicted quality and cost alone (exploration and latency left out).

        Candidate B beats the chosen A on quality and cost exactly when
        ``λ·(q̂_B − q̂_A) > (ĉ_B − ĉ_A)/c_ref``. The answer per LLM is one of
        ``("above", λ*)`` (B, better and pricier, wins for λ > λ*), ``("below", λ*)`` (B, cheaper
        and worse, wins for λ < λ*), ``("always", 0.0)`` (B is better and no pricier: only
        exploration or latency kept it out) or ``("never", inf)`` (B is worse and no cheaper).
        This tells why feedback has not moved a decision: a pricier LLM whose λ* is far above
        the λ in use cannot win until its predicted advantage grows.

        Raises:
            ConfigError: the decision does not carry the reference cost (made by a custom
                :class:`DecisionMaker` call without one).

        Example:
            >>> maker = DecisionMaker(DecisionPolicy(lam=1.0, alpha=0.0))
            >>> d = maker.decide(
            ...     ["small", "large"], np.array([0.4, 0.8]), np.array([0.1, 0.9]), 1.0
            ... )
            >>> d.llm, d.break_even()
            ('small', {'large': ('above', 2.0)})
        """
        if self.c_ref is None:
            raise ConfigError(
                "This decision does not carry its reference cost c_ref; break_even() needs it."
            )
        a = self.chosen
        out: dict[str, tuple[str, float]] = {}
        for b in self.candidates:
            if b.llm == a.llm or not b.eligible:
                continue
            dq = b.quality - a.quality
            dc = (b.cost - a.cost) / max(self.c_ref, 1e-12)
            if dq > 0 and dc > 0:
                out[b.llm] = ("above", round(dc / dq, 6))
            elif dq < 0 and dc < 0:
                out[b.llm] = ("below", round(dc / dq, 6))
            elif dq > 0:
                out[b.llm] = ("always", 0.0)
            else:
                out[b.llm] = ("never", math.inf)
        return out


def choice_probabilities(
    scores: np.ndarray, eligible: np.ndarray, policy: DecisionPolicy
) -> np.ndarray:
    """The probability of choosing each candidate of one query under ``policy``'s rule.

    Ineligible candidates get 0; the probabilities of the eligible sum to 1. Greedy splits its
    mass evenly among tied best scores.

    Example:
        >>> s, ok = np.array([0.5, 0.4, 0.1]), np.array([True, True, False])
        >>> choice_probabilities(s, ok, DecisionPolicy()).tolist()
        [1.0, 0.0, 0.0]
        >>> choice_probabilities(s, ok, DecisionPolicy(explore="epsilon", epsilon=0.2)).tolist()
        [0.9, 0.1, 0.0]
    """
    eligible = np.asarray(eligible, dtype=bool)
    if not eligible.any():
        raise EmptyPoolError("No eligible candidate to choose from.")
    masked = np.where(eligible, np.asarray(scores, dtype=float), -np.inf)
    best = masked >= masked.max() - 1e-12
    greedy = best / best.sum()
    if policy.explore == "softmax":
        z = np.exp(np.where(eligible, (masked - masked.max()) / policy.temperature, -np.inf))
        p: np.ndarray = z / z.sum()
        return p
    if policy.explore == "epsilon":
        uniform = eligible / eligible.sum()
        mixed: np.ndarray = (1.0 - policy.epsilon) * greedy + policy.epsilon * uniform
        return mixed
    return np.asarray(greedy, dtype=float)


class BudgetTracker:
    """USD spent in the current budget period (thread-safe, injectable clock)."""

    def __init__(
        self,
        budget: float | None,
        period_s: float = 3600.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.budget = budget
        self.period_s = period_s
        self.clock = clock
        self._start = clock()
        self._spent = 0.0
        self._lock = threading.Lock()

    def _roll(self) -> None:
        now = self.clock()
        if now - self._start >= self.period_s:
            periods = math.floor((now - self._start) / self.period_s)
            self._start += periods * self.period_s
            self._spent = 0.0

    def remaining(self) -> float:
        if self.budget is None:
            return math.inf
        with self._lock:
            self._roll()
            return max(self.budget - self._spent, 0.0)

    def charge(self, usd: float) -> None:
        with self._lock:
            self._roll()
            self._spent += max(float(usd), 0.0)

    def hold(self, decision_id: str, usd: float) -> bool:
        """Whether the call ``decision_id``, predicted to cost ``usd``, may go ahead; a shared
        budget reserves it (see :mod:`mixllm_core.shared_state`), this one always agrees."""
        return True

    def settle(self, decision_id: str, usd: float | None) -> None:
        """The call ``decision_id`` finished having cost ``usd`` (None: unknown)."""
        if usd is not None:
            self.charge(usd)


class DecisionMaker:
    """Applies a :class:`DecisionPolicy` to the predictions of all candidates.

    Args:
        policy: The decision rule's knobs.
        seed: Seed of the tie-breaking generator.
    """

    def __init__(self, policy: DecisionPolicy | None = None, *, seed: int = 0) -> None:
        self.policy = policy or DecisionPolicy()
        self.seed = seed
        self._rng = np.random.default_rng(seed)
        self._lock = threading.Lock()

    def scores(
        self,
        quality: np.ndarray,
        cost: np.ndarray,
        c_ref: float,
        *,
        uncertainty: np.ndarray | None = None,
        wait: np.ndarray | None = None,
        policy: DecisionPolicy | None = None,
    ) -> np.ndarray:
        """Scores ``s`` for predictions of shape ``(n, m)`` (or ``(m,)``)."""
        p = policy or self.policy
        s = p.quality_weight * quality - p.cost_weight * cost / max(c_ref, 1e-12)
        if uncertainty is not None and p.alpha:
            s = s + p.alpha * uncertainty
        if wait is not None and p.beta:
            tau = p.tau if p.tau is not None else 0.0
            s = s - p.beta * np.exp(np.minimum(p.gamma * (wait - p.xi * tau), 50.0))
        return s

    def choose(self, scores: np.ndarray, eligible: np.ndarray) -> int:
        """Index of the best eligible score of one query; ties broken by the seeded generator."""
        if not eligible.any():
            raise EmptyPoolError("No eligible candidate to choose from.")
        masked = np.where(eligible, scores, -np.inf)
        best = np.flatnonzero(masked >= masked.max() - 1e-12)
        if len(best) == 1:
            return int(best[0])
        with self._lock:
            return int(self._rng.choice(best))

    def draw(
        self, scores: np.ndarray, eligible: np.ndarray, policy: DecisionPolicy | None = None
    ) -> tuple[int, float]:
        """One query's choice under ``policy``'s exploration rule, with its probability."""
        policy = policy or self.policy
        if policy.explore == "greedy":  # the seeded tie-break of ``choose``; p = 1/#ties
            if not eligible.any():
                raise EmptyPoolError("No eligible candidate to choose from.")
            masked = np.where(eligible, scores, -np.inf)
            best = np.flatnonzero(masked >= masked.max() - 1e-12)
            if len(best) == 1:
                return int(best[0]), 1.0
            with self._lock:
                return int(self._rng.choice(best)), 1.0 / len(best)
        p = choice_probabilities(scores, eligible, policy)
        support = np.flatnonzero(p > 0)
        if len(support) == 1:
            return int(support[0]), 1.0
        with self._lock:
            idx = int(self._rng.choice(len(p), p=p))
        return idx, float(p[idx])

    def choose_batch(self, scores: np.ndarray, eligible: np.ndarray | None = None) -> np.ndarray:
        """Row-wise :meth:`choose` for ``(n, m)`` scores."""
        if eligible is None:
            eligible = np.ones_like(scores, dtype=bool)
        return np.array([self.choose(s, e) for s, e in zip(scores, eligible)], dtype=int)

    def decide(
        self,
        names: Sequence[str],
        quality: np.ndarray,
        cost: np.ndarray,
        c_ref: float,
        *,
        uncertainty: np.ndarray | None = None,
        wait: np.ndarray | None = None,
        service: np.ndarray | None = None,
        available: np.ndarray | None = None,
        unavailable_reasons: Sequence[str] | None = None,
        budget_left: float = math.inf,
        policy: DecisionPolicy | None = None,
    ) -> RoutingDecision:
        """Route one query given every candidate's predictions (1-d arrays of length m).

        ``available`` False removes a candidate ("unavailable"); a non-empty string in
        ``unavailable_reasons`` removes it with that reason (e.g. the prompt does not fit its
        context window). Neither kind is chosen even when the constraints leave nothing else.
        """
        p = policy or self.policy
        m = len(names)
        if m == 0:
            raise EmptyPoolError("The pool is empty: add an LLM before routing.")
        # copies (dtype kept): the breakdown is built from them later, maybe never
        quality, cost = np.array(quality), np.array(cost)
        unc = np.zeros(m) if uncertainty is None else np.array(uncertainty)
        w = np.zeros(m) if wait is None else np.array(wait)
        s = self.scores(quality, cost, c_ref, uncertainty=unc, wait=w, policy=p)
        avail = np.ones(m, bool) if available is None else np.array(available, bool)
        blocked = None if unavailable_reasons is None else list(unavailable_reasons)
        if blocked is not None:
            avail &= np.array([not r for r in blocked], dtype=bool)
        if (available is not None or blocked is not None) and not avail.any():
            why = "; ".join(f"{n}: {r}" for n, r in zip(names, blocked or ()) if r)
            raise EmptyPoolError(
                f"No LLM is available; the pool is {list(names)}" + (f" ({why})." if why else ".")
            )
        expected = w + (0.0 if service is None else service)
        # a candidate breaks a constraint when the comparison holds (NaN breaks none)
        eligible = avail.copy()
        if p.max_cost_per_query is not None:
            eligible &= ~(cost > p.max_cost_per_query)
        if budget_left < math.inf:
            eligible &= ~(cost > budget_left)
        if p.tau is not None:
            eligible &= ~(expected > p.tau)
        reasons = {}  # the first constraint each ineligible candidate breaks, in this order
        if not eligible.all():
            for i in np.flatnonzero(~eligible).tolist():
                if blocked is not None and blocked[i]:
                    reasons[i] = blocked[i]
                elif not avail[i]:
                    reasons[i] = "unavailable"
                elif p.max_cost_per_query is not None and cost[i] > p.max_cost_per_query:
                    reasons[i] = (
                        f"cost {cost[i]:.3g} > max_cost_per_query {p.max_cost_per_query:.3g}"
                    )
                elif cost[i] > budget_left:
                    reasons[i] = f"cost {cost[i]:.3g} > budget left {budget_left:.3g}"
                else:  # only the time limit is left
                    reasons[i] = f"expected time {expected[i]:.3g}s > tau {p.tau:.3g}s"
        fallback, propensity = "", 1.0
        if eligible.any():
            idx, propensity = self.draw(s, eligible, p)
        else:
            timed_out = np.zeros(m, bool)
            for i, why in reasons.items():
                timed_out[i] = why.startswith("expected time")
            if timed_out.any():
                # Nothing fits the time limit: the fastest expected answer among the others.
                idx = int(np.argmin(np.where(timed_out, expected, np.inf)))
                fallback = f"no candidate fits tau; chose the fastest expected ({names[idx]})"
            else:
                # Cost constraints leave nothing: the cheapest available LLM.
                idx = int(np.argmin(np.where(avail, cost, np.inf)))
                fallback = f"no candidate met the constraints; chose the cheapest ({names[idx]})"
        table = _CandidateTable(
            names=names if isinstance(names, tuple) else tuple(names),
            quality=quality,
            cost=cost,
            uncertainty=unc,
            wait=w,
            score=np.asarray(s),
            eligible=eligible,
            reasons=reasons,
            index=idx,
        )
        return RoutingDecision(
            decision_id=uuid.uuid4().hex,
            llm=names[idx],
            candidates=cast("tuple[CandidateScore, ...]", table),  # rows built on first read
            lam=p.lam,
            fallback=fallback,
            propensity=propensity,
            c_ref=float(c_ref),
        )
