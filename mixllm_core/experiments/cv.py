"""Repeated K-fold cross-validation of routers: every router scored on every fold.

Usage from Python::

    from mixllm_core.experiments.cv import run_cv, mixllm_router, standard_routers

    routers = {"mixllm": mixllm_router(), **standard_routers()}
    report = run_cv(data, routers, k=5, repeats=2, task_shift=False, seed=0)
    print(report.format_table())
    report.to_dict()  # JSON-ready: settings, per-fold metrics, mean ± s.e., paired differences

A *router factory* is any callable ``(fold: Fold) -> {λ: chosen LLM index per test row}``: it fits
on ``fold.train`` (``fold.Xtr`` are the training queries' vectors from the fold's encoder, adapted
to the fold's training queries only) and returns, per λ (or any label: the points of one router),
the index into ``fold.test.llms`` it chooses for each row of ``fold.test``. Three helpers build
factories: :func:`mixllm_router` (a :class:`~mixllm_core.MixLLMRouter`), :func:`score_router`
(any function predicting quality and cost on the test rows, swept over λ with mixllm's rule, the
quickest way to try a new predictor) and :func:`standard_routers` (the bench's baselines, the
oracle, random choice and the best mix of single LLMs).

Folds (:func:`cv_folds`):

* **random** (default): repeated K-fold, stratified by task when the data has a task column, and
  near-duplicate-aware: prompts that are the same up to case, whitespace and punctuation
  (:func:`~mixllm_core.experiments.baselines.duplicate_groups`) always land in the same fold.
* **task shift** (``task_shift=True``): whole tasks are left out, so each test fold holds tasks
  the router never saw (leave-one-task-out when there are at most K tasks; repeats then coincide
  and only one is run). Test rows whose prompt also occurs in a training task are dropped.

**Repeat share** (``repeat_share=r``): real traffic repeats itself, and held-out splits share
prompts with training data. With ``r > 0`` each test fold also gets ``round(r · |fold|)`` rows
drawn (seeded, without replacement) from that fold's training rows, so the test traffic holds
queries the router has seen answered (a router with a memory of seen queries can use it).

Task mix (``task_mix="uniform"``, or ``{task: share}``): each test fold is scored a second time
with its rows weighted so that every task present counts equally (or as the shares say; tasks
without a share get weight 0), as on a test split whose task mix differs from the training rows'.
Under ``"uniform"`` a task with fewer than :data:`TASK_MIX_MIN_ROWS` rows in the fold counts
``n / TASK_MIX_MIN_ROWS`` of a task, so that no single row carries a large share. Every metric is
a function of the routers' mean cost and quality, so weighting means weighted means (the
reference LLM's and the AIQ range too). The routers are fitted once; both scorings are in the
report (:meth:`CVReport.with_task_mix`).

Rows marked ``split == "test"`` are never used: cross-validation runs on the other rows, and a
held-out test split stays held out.

Metrics per fold (as ``mixllm bench``): AIQ over [0, the priciest LLM's mean cost on the fold]
(× 100 in the tables), quality at 25% of the reference LLM's cost as % of the reference's quality,
and the cost (as % of the reference's) at which 97% of its quality is reached (None when never).
The reference LLM is fixed for all folds: the one given, else the priciest on all rows.

Uncertainty: the standard error of a mean over the ``J`` folds is the Nadeau–Bengio corrected one,
``sqrt((1/J + n_test/n_train) · s²)``, which accounts for training sets that overlap between folds
(the naive ``s/sqrt(J)`` understates it); the naive one is in the JSON too. Paired differences
``baseline router − other`` are computed per fold and summarised the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from ..data import RoutingData
from ..encoders import QueryEncoder
from ..encoders.base import AdaptableEncoder
from ..errors import ConfigError, check_non_negative
from ..metrics import aiq, cost_to_reach, quality_at_cost
from ..router import MixLLMRouter
from .baselines import BASELINES, duplicate_groups, sweep
from .bench import LAMBDA_GRID
from .replay import choose_indices, predictions_on

__all__ = [
    "METRICS",
    "CVReport",
    "CVSplit",
    "Fold",
    "bench_cv",
    "RouterFactory",
    "TASK_MIX_MIN_ROWS",
    "cv_folds",
    "fold_metrics",
    "format_cv_markdown",
    "format_cv_table",
    "mixllm_router",
    "paired_difference",
    "run_cv",
    "score_router",
    "standard_routers",
    "task_weights",
]

#: Metric keys per fold and router: AIQ × 100, % of the reference's quality at 25% of its cost,
#: % of the reference's cost at which 97% of its quality is reached (None when never).
METRICS = ("aiq_x100", "q_pct_at_25", "cost_pct_for_97")

#: Under ``task_mix="uniform"``, a task with fewer test rows than this counts n / this of a task.
TASK_MIX_MIN_ROWS = 5

#: A task mix to score test folds with: "uniform" or {task: share}; None: the rows as they are.
TaskMix = str | Mapping[str, float] | None


@dataclass(frozen=True)
class CVSplit:
    """Row indices of one fold (into the rows cross-validation runs on)."""

    repeat: int
    fold: int
    train: np.ndarray
    test: np.ndarray
    held_out_tasks: tuple[str, ...] = ()


@dataclass(frozen=True)
class Fold:
    """What a router factory gets: the fold's rows, their vectors and the λ sweep.

    Attributes:
        train, test: The fold's rows.
        encoder: The base encoder adapted to ``train.queries`` (no test query was seen).
        Xtr, Xte: ``encoder``'s vectors of the training and test queries.
        lambdas: The λ values to choose at.
        c_ref: Cost normaliser of the λ rule: the largest mean training cost (1 without costs).
        seed: Seed for anything random in the factory.
        split: Which fold this is.
    """

    train: RoutingData
    test: RoutingData
    encoder: QueryEncoder
    Xtr: np.ndarray
    Xte: np.ndarray
    lambdas: tuple[float, ...]
    c_ref: float
    seed: int
    split: CVSplit


#: A router under validation: fold → {λ (or a label): chosen index into ``fold.test.llms``}.
RouterFactory = Callable[[Fold], Mapping[Any, np.ndarray]]


# --------------------------------------------------------------------------- folds
def _strata(tasks: Sequence[str] | None, n: int, k: int) -> np.ndarray:
    """Stratification labels: the task, with tasks of fewer than ``k`` rows pooled (and the pool
    joined to the largest task when it still has fewer than ``k``: a stratum smaller than the
    fold count cannot be spread over the folds, and scikit-learn warns about it)."""
    if tasks is None:
        return np.zeros(n, dtype=int)
    names, y, counts = np.unique(np.asarray(tasks), return_inverse=True, return_counts=True)
    rare = counts[y] < k
    y = y.copy()
    y[rare] = int(np.argmax(counts)) if rare.sum() < k else len(names)
    return np.unique(y, return_inverse=True)[1]


def _task_partition(tasks: np.ndarray, k: int, rng: np.random.Generator) -> list[tuple[str, ...]]:
    """Tasks in ``k`` groups of similar row counts: random order, each to the lightest group."""
    names, counts = np.unique(tasks, return_counts=True)
    order = rng.permutation(len(names))
    groups: list[list[str]] = [[] for _ in range(k)]
    load = np.zeros(k)
    for i in order:
        g = int(np.argmin(load))
        groups[g].append(str(names[i]))
        load[g] += counts[i]
    return sorted(tuple(sorted(g)) for g in groups)


def cv_folds(
    data: RoutingData, k: int = 5, repeats: int = 2, *, task_shift: bool = False, seed: int = 0
) -> list[CVSplit]:
    """The folds of repeated K-fold cross-validation over ``data``'s rows (see the module doc).

    Args:
        data: The rows to split (all of them: drop a held-out test split first).
        k: Folds per repeat (at least 2); with ``task_shift``, at most the number of tasks.
        repeats: Repeats with different shuffles (``seed``, ``seed + 1``, ...).
        task_shift: Leave whole tasks out instead of a stratified random split.
        seed: Seed of the first repeat.

    Example:
        >>> from mixllm_core.experiments.synthetic import make_synthetic_world
        >>> data = make_synthetic_world(200, seed=0)
        >>> folds = cv_folds(data, k=5, repeats=2)
        >>> len(folds), sorted(np.concatenate([f.test for f in folds[:5]]).tolist()) == list(range(200))
        (10, True)
        >>> [f.held_out_tasks for f in cv_folds(data, k=5, repeats=1, task_shift=True)][:2]
        [('code',), ('logic',)]
    """
    for name, value, low in (("k", k, 2), ("repeats", repeats, 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ConfigError(f"{name} must be an int >= {low}, got {value!r}.")
    groups = duplicate_groups(data.queries)
    splits: list[CVSplit] = []
    if task_shift:
        if data.tasks is None:
            raise ConfigError(
                "task_shift needs a task column (RouterBench eval_name, LLMRouter task_name, "
                "the generic format's task); this data has none."
            )
        tasks = np.asarray(data.tasks)
        n_tasks = len(np.unique(tasks))
        if n_tasks < 2:
            raise ConfigError(f"task_shift needs at least 2 tasks, the data has {n_tasks}.")
        k = min(k, n_tasks)
        runs = 1 if k == n_tasks else repeats  # leave-one-task-out: every repeat is the same
        for r in range(runs):
            for f, held in enumerate(_task_partition(tasks, k, np.random.default_rng(seed + r))):
                out = np.isin(tasks, held)
                train = np.flatnonzero(~out)
                test = np.flatnonzero(out & ~np.isin(groups, groups[train]))
                splits.append(CVSplit(r, f, train, test, held))
        return splits
    from sklearn.model_selection import StratifiedGroupKFold

    n_groups = len(np.unique(groups))
    if n_groups < k:
        raise ConfigError(f"k={k} folds need at least {k} distinct prompts; there are {n_groups}.")
    y = _strata(data.tasks, len(data), k)
    for r in range(repeats):
        kfold = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed + r)
        for f, (train, test) in enumerate(kfold.split(np.zeros(len(data)), y, groups)):
            splits.append(CVSplit(r, f, np.sort(train), np.sort(test)))
    return splits


# --------------------------------------------------------------------------- routers
def mixllm_router(
    make: Callable[[Fold], MixLLMRouter] | None = None,
) -> RouterFactory:
    """A factory fitting a :class:`~mixllm_core.MixLLMRouter` on each fold.

    Args:
        make: Builds the unfitted router for a fold; default
            ``MixLLMRouter(encoder=fold.encoder, seed=fold.seed)``. A router with another encoder
            (e.g. a ``TaggedEncoder`` fitted on ``fold.train``) is fine: the test rows are
            encoded with whatever encoder the fitted router holds.

    Example:
        >>> from mixllm_core.testing import HashingEncoder
        >>> factory = mixllm_router(lambda fold: MixLLMRouter(encoder=HashingEncoder()))
    """

    def run(fold: Fold) -> dict[Any, np.ndarray]:
        router = (
            make(fold) if make is not None else MixLLMRouter(encoder=fold.encoder, seed=fold.seed)
        )
        router.fit(fold.train)
        Q, C = predictions_on(router, fold.test, *router.features(fold.test.queries))
        c_ref = router.c_ref()
        return {lam: choose_indices(router, Q, C, lam, c_ref) for lam in fold.lambdas}

    return run


def score_router(predict: Callable[[Fold], tuple[np.ndarray, np.ndarray]]) -> RouterFactory:
    """A factory from a predictor: ``predict(fold)`` gives quality ``Q`` and cost ``C``
    ``(n_test, m)`` on the test rows (columns in ``fold.test.llms`` order); the choices are the
    λ sweep of mixllm's rule with ``fold.c_ref``.

    Example:
        >>> def mean_quality(fold):
        ...     n = len(fold.test)
        ...     return np.tile(fold.train.quality.mean(0), (n, 1)), np.tile(fold.train.cost.mean(0), (n, 1))
        >>> factory = score_router(mean_quality)
    """

    def run(fold: Fold) -> dict[Any, np.ndarray]:
        Q, C = predict(fold)
        return sweep(np.asarray(Q), np.asarray(C), fold.lambdas, fold.c_ref)

    return run


def _baseline(name: str) -> RouterFactory:
    fn = BASELINES[name]
    return score_router(lambda fold: fn(fold.train, fold.Xtr, fold.Xte, fold.seed))


def _oracle(fold: Fold) -> dict[Any, np.ndarray]:
    test = fold.test
    cost = test.cost if test.cost is not None else np.zeros_like(test.quality)
    best = test.quality.max(axis=1, keepdims=True)
    return {None: np.argmin(np.where(test.quality >= best - 1e-12, cost, np.inf), axis=1)}


def _random(fold: Fold) -> dict[Any, np.ndarray]:
    rng = np.random.default_rng(fold.seed)
    return {None: rng.integers(0, len(fold.test.llms), size=len(fold.test))}


def _singles(fold: Fold) -> dict[Any, np.ndarray]:
    """Every single LLM as one point: their hull is the best mix of single LLMs."""
    n = len(fold.test)
    return {name: np.full(n, j) for j, name in enumerate(fold.test.llms)}


def standard_routers(names: Sequence[str] | None = None) -> dict[str, RouterFactory]:
    """The bench's baselines (``knn``, ``knn-cost``, ``knn-cv``, ``mlp``, ``mf``, see
    :mod:`~mixllm_core.experiments.baselines`), ``oracle``, ``random`` and ``single-mix`` (the
    hull of every single LLM: the best any fixed mix of single LLMs does), or those of ``names``.

    Example:
        >>> sorted(standard_routers(["knn", "oracle"]))
        ['knn', 'oracle']
    """
    routers: dict[str, RouterFactory] = {name: _baseline(name) for name in BASELINES}
    routers.update({"oracle": _oracle, "random": _random, "single-mix": _singles})
    if names is None:
        return routers
    unknown = [n for n in names if n not in routers]
    if unknown:
        raise ConfigError(f"Unknown routers {unknown}. Available routers are {list(routers)}.")
    return {n: routers[n] for n in names}


# --------------------------------------------------------------------------- scoring
def task_weights(tasks: Sequence[str] | None, mix: str | Mapping[str, float]) -> np.ndarray:
    """Row weights (summing to 1) that give ``tasks`` the task mix ``mix``.

    Args:
        tasks: The task of each row.
        mix: ``"uniform"``: every task present counts equally (a task with fewer than
            :data:`TASK_MIX_MIN_ROWS` rows counts ``n / TASK_MIX_MIN_ROWS`` of one); or
            ``{task: share}``: the shares, renormalised over the tasks present (a task without a
            share gets weight 0).

    Raises:
        ConfigError: no tasks, an unknown mix, a negative share, or no row with a share.

    Example:
        >>> task_weights(["a", "a", "a", "a", "a", "b", "b", "b", "b", "b"], "uniform")[[0, 5]]
        array([0.1, 0.1])
        >>> task_weights(["a"] * 6 + ["b"] * 2, "uniform")[[0, 6]]  # b counts 2/5 of a task
        array([0.11904762, 0.14285714])
        >>> task_weights(["a", "a", "b"], {"b": 1.0})
        array([0., 0., 1.])
    """
    if tasks is None:
        raise ConfigError("A task mix needs a task column; this data has none.")
    names, y, counts = np.unique(np.asarray(tasks), return_inverse=True, return_counts=True)
    if isinstance(mix, str):
        if mix != "uniform":
            raise ConfigError(f"Invalid task mix {mix!r}. Allowed: 'uniform' or {{task: share}}.")
        per_task = np.minimum(counts, TASK_MIX_MIN_ROWS) / TASK_MIX_MIN_ROWS
    else:
        bad = {t: v for t, v in mix.items() if not (np.isfinite(v) and v >= 0)}
        if bad:
            raise ConfigError(f"Task shares must be finite numbers >= 0, got {bad}.")
        per_task = np.array([float(mix.get(str(t), 0.0)) for t in names])
    if per_task.sum() <= 0:
        raise ConfigError(
            f"No row has a task with a share in {mix!r} (tasks: {[str(t) for t in names]})."
        )
    w = (per_task / counts)[y]
    return np.asarray(w / w.sum(), dtype=float)


def fold_metrics(
    choices: Mapping[Any, np.ndarray],
    test: RoutingData,
    reference: int,
    weights: np.ndarray | None = None,
) -> dict[str, float | None]:
    """One router's metrics on one fold's test rows (see the module docstring), with the rows
    weighted by ``weights`` (e.g. :func:`task_weights`) when given."""
    rows = np.arange(len(test))
    w = np.full(len(test), 1 / max(len(test), 1)) if weights is None else np.asarray(weights)
    cost = test.cost if test.cost is not None else np.zeros_like(test.quality)
    costs = [float(w @ cost[rows, idx]) for idx in choices.values()]
    quals = [float(w @ test.quality[rows, idx]) for idx in choices.values()]
    ref_cost, ref_q = float(w @ cost[:, reference]), float(w @ test.quality[:, reference])
    max_cost = float((w @ cost).max())
    reach = cost_to_reach(costs, quals, 0.97 * ref_q)
    ref_q = ref_q if ref_q > 0 else float("nan")
    ref_cost = ref_cost if ref_cost > 0 else float("nan")
    return {
        "aiq_x100": 100 * aiq(costs, quals, max_cost),
        "q_pct_at_25": 100 * quality_at_cost(costs, quals, 0.25 * ref_cost) / ref_q,
        "cost_pct_for_97": None if reach is None else 100 * reach / ref_cost,
    }


def _stats(values: np.ndarray, ratio: float) -> dict[str, Any]:
    """Mean, corrected and naive standard errors of per-fold values (None entries dropped)."""
    v = np.array([x for x in values if x is not None and np.isfinite(x)], dtype=float)
    if len(v) == 0:
        return {"mean": None, "se": None, "se_naive": None, "n": 0}
    s2 = float(v.var(ddof=1)) if len(v) > 1 else 0.0
    return {
        "mean": float(v.mean()),
        "se": float(np.sqrt((1 / len(v) + ratio) * s2)),
        "se_naive": float(np.sqrt(s2 / len(v))),
        "n": int(len(v)),
    }


def paired_difference(
    a: Sequence[float | None] | np.ndarray,
    b: Sequence[float | None] | np.ndarray,
    ratio: float,
) -> dict[str, Any]:
    """Mean and Nadeau–Bengio corrected standard error of the per-fold differences ``a − b``.

    ``a[j]`` and ``b[j]`` are two routers' values on fold ``j``; a fold where either is None (or
    the difference is not finite) is left out. The standard error over the ``n`` folds left is
    ``sqrt((1/n + ratio) · s²)`` (0 for one fold), as in :meth:`CVReport.differences`.

    Args:
        a, b: One value per fold each, paired by position.
        ratio: The folds' mean ``n_test / n_train`` (the correction for overlapping training
            sets), ≥ 0.

    Returns:
        ``{"mean", "se", "se_naive", "n"}``; the mean and standard errors are None when no fold
        is left.

    Raises:
        ConfigError: ``a`` and ``b`` differ in length, or ``ratio`` is negative.

    Example:
        >>> d = paired_difference([52.0, 51.0, 50.0, None], [50.0, 50.0, 50.0, 49.0], ratio=0.25)
        >>> d["mean"], d["n"]
        (1.0, 3)
        >>> round(d["se"], 4)  # √((1/3 + 0.25) · s²), s² = 1
        0.7638
    """
    if len(a) != len(b):
        raise ConfigError(
            f"a and b must hold one value per fold each, got {len(a)} and {len(b)} values."
        )
    check_non_negative("ratio", ratio)
    d = np.array([x - y for x, y in zip(a, b) if x is not None and y is not None], dtype=float)
    return _stats(d, ratio)


@dataclass(frozen=True)
class CVReport:
    """Every router's metrics on every fold, and their summaries.

    Attributes:
        settings: How the folds were made (k, repeats, task_shift, seed, reference, rows, ...).
        folds: Per fold ``{"repeat", "fold", "n_train", "n_test", "held_out_tasks", "metrics":
            {router: {metric: value}}}``.
        baseline: The router the paired differences are taken from (``baseline − other``).
    """

    settings: dict[str, Any]
    folds: list[dict[str, Any]] = field(default_factory=list)
    baseline: str = "mixllm"
    scoring: str = "metrics"

    def with_task_mix(self) -> CVReport:
        """The same folds scored with the task mix of ``run_cv(task_mix=...)`` (the fold key
        ``"metrics_task_mix"``); raises ConfigError when the run had none."""
        if not self.folds or "metrics_task_mix" not in self.folds[0]:
            raise ConfigError("This report was run without a task mix (run_cv(task_mix=...)).")
        return CVReport(self.settings, self.folds, self.baseline, "metrics_task_mix")

    @property
    def routers(self) -> list[str]:
        return list(self.folds[0][self.scoring]) if self.folds else []

    @property
    def _ratio(self) -> float:
        """Mean n_test / n_train over the folds (the Nadeau–Bengio correction)."""
        return float(np.mean([f["n_test"] / f["n_train"] for f in self.folds]))

    def values(self, router: str, metric: str) -> np.ndarray:
        """Per-fold values of one router's metric (None where undefined), in fold order."""
        return np.array([f[self.scoring][router][metric] for f in self.folds], dtype=object)

    def summary(self) -> dict[str, dict[str, dict[str, Any]]]:
        """``{router: {metric: {"mean", "se", "se_naive", "n"}}}``."""
        return {
            r: {m: _stats(self.values(r, m), self._ratio) for m in METRICS} for r in self.routers
        }

    def differences(self) -> dict[str, dict[str, dict[str, Any]]]:
        """Paired per-fold differences ``baseline − router`` for every other router, summarised;
        a fold where either value is None is left out of that metric."""
        if self.baseline not in self.routers:
            return {}
        out: dict[str, dict[str, dict[str, Any]]] = {}
        for r in self.routers:
            if r == self.baseline:
                continue
            out[r] = {}
            for m in METRICS:
                a, b = self.values(self.baseline, m), self.values(r, m)
                out[r][m] = paired_difference(a, b, self._ratio)
        return out

    def to_dict(self) -> dict[str, Any]:
        """Everything, JSON-ready; with a task mix, its summary and differences under
        ``"task_mix"``."""
        out = {
            "settings": self.settings,
            "baseline": self.baseline,
            "scoring": self.scoring,
            "summary": self.summary(),
            "differences": self.differences(),
            "folds": self.folds,
        }
        if self.scoring == "metrics" and self.folds and "metrics_task_mix" in self.folds[0]:
            mixed = self.with_task_mix()
            out["task_mix"] = {"summary": mixed.summary(), "differences": mixed.differences()}
        return out

    def format_table(self) -> str:
        """Mean ± s.e. per router (by mean AIQ) and the paired differences from the baseline."""
        return format_cv_table(self.to_dict())


def _pm(stat: Mapping[str, Any], width: int = 15, signed: bool = False) -> str:
    if stat["mean"] is None:
        return f"{'-':>{width}}"
    text = f"{stat['mean']:{'+' if signed else ''}.2f} ± {stat['se']:.2f}"
    return f"{text:>{width}}"


def format_cv_table(report: Mapping[str, Any]) -> str:
    """A :meth:`CVReport.to_dict` as a fixed-width table."""
    s, summary, diffs, base = (
        report["settings"],
        report["summary"],
        report["differences"],
        report["baseline"],
    )
    protocol = "task shift (whole tasks left out)" if s["task_shift"] else "random, stratified"
    if report.get("scoring") == "metrics_task_mix":
        protocol += f"; test rows weighted to the task mix {s.get('task_mix')!r}"
    n_folds = len(report["folds"])
    lines = [
        f"data: {s.get('data', '?')}  ({len(s['llms'])} LLMs; mixllm: "
        f"{s.get('quality_model', '?')} quality model, {s.get('embedding', 'plain')} embedding, "
        f"{s['encoder'].get('type', '?')} encoder)",
        f"cross-validation: {protocol}; {s['k']} folds × {s['repeats_run']} repeats = {n_folds} "
        f"folds over {s['n_rows']} rows (seed {s['seed']}); reference LLM {s['reference_llm']}",
        "mean ± s.e. over folds (Nadeau–Bengio corrected); Δ = "
        f"{base} − router, paired per fold; cost%97: mean over the folds that reach it (n)",
        f"{'router':<14} {'AIQ×100':>15} {'Q% @25% cost':>15} {'cost% for 97%':>15} {'n':>3} "
        f"{'ΔAIQ':>15} {'ΔQ%@25':>15}",
    ]
    order = sorted(summary, key=lambda r: -(summary[r]["aiq_x100"]["mean"] or -np.inf))
    for r in order:
        row = summary[r]
        d = diffs.get(r)
        lines.append(
            f"{r:<14} {_pm(row['aiq_x100'])} {_pm(row['q_pct_at_25'])} "
            f"{_pm(row['cost_pct_for_97'])} {row['cost_pct_for_97']['n']:>3} "
            + (
                f"{_pm(d['aiq_x100'], signed=True)} {_pm(d['q_pct_at_25'], signed=True)}"
                if d
                else f"{'':>15} {'':>15}"
            )
        )
    beaten = [
        r
        for r, d in diffs.items()
        if r not in ("oracle",) and d["aiq_x100"]["mean"] is not None and d["aiq_x100"]["mean"] < 0
    ]
    if beaten:
        lines.append(
            f"note: {', '.join(beaten)} {'has' if len(beaten) == 1 else 'have'} a higher mean AIQ "
            f"than {base} here."
        )
    return "\n".join(lines)


def format_cv_markdown(report: Mapping[str, Any]) -> str:
    """A :meth:`CVReport.to_dict` as a Markdown table (for docs): mean ± s.e. per router, by mean
    AIQ, with the paired differences from the baseline router."""
    summary, diffs, base = report["summary"], report["differences"], report["baseline"]

    def cell(stat: Mapping[str, Any] | None, signed: bool = False) -> str:
        if stat is None or stat["mean"] is None:
            return "–"
        return f"{stat['mean']:{'+' if signed else ''}.2f} ± {stat['se']:.2f}"

    n = len(report["folds"])
    lines = [
        f"| router | AIQ × 100 | Δ AIQ ({base} − router) | Q% @ 25% cost | Δ Q% @ 25% | "
        "cost % for 97% Q (folds reaching it) |",
        "|---|---|---|---|---|---|",
    ]
    order = sorted(summary, key=lambda r: -(summary[r]["aiq_x100"]["mean"] or -np.inf))
    for r in order:
        row, d = summary[r], diffs.get(r)
        name = f"**{r}**" if r == base else r
        lines.append(
            f"| {name} | {cell(row['aiq_x100'])} | {cell(d and d['aiq_x100'], True)} | "
            f"{cell(row['q_pct_at_25'])} | {cell(d and d['q_pct_at_25'], True)} | "
            f"{cell(row['cost_pct_for_97'])} ({row['cost_pct_for_97']['n']}/{n}) |"
        )
    return "\n".join(lines)


# --------------------------------------------------------------------------- run
def _reference_index(data: RoutingData, reference: str | None) -> int:
    if reference is None:
        cost = data.cost if data.cost is not None else np.zeros_like(data.quality)
        return int(np.argmax(cost.mean(axis=0)))
    if reference not in data.llms:
        from ..errors import UnknownLLMError

        raise UnknownLLMError(reference, data.llms)
    return data.llms.index(reference)


def _with_repeats(split: CVSplit, share: float, seed: int) -> CVSplit:
    """``split`` with ``round(share · |test|)`` of its training rows added to its test rows."""
    n = min(int(round(share * len(split.test))), len(split.train))
    if n == 0:
        return split
    rng = np.random.default_rng([seed, split.repeat, split.fold, 7919])
    extra = rng.choice(split.train, size=n, replace=False)
    return replace(split, test=np.concatenate([split.test, np.sort(extra)]))


def run_cv(
    data: RoutingData,
    routers: Mapping[str, RouterFactory],
    k: int = 5,
    repeats: int = 2,
    task_shift: bool = False,
    seed: int = 0,
    *,
    encoder: QueryEncoder | None = None,
    reference: str | None = None,
    lambdas: Sequence[float] | None = None,
    baseline: str = "mixllm",
    show_progress: bool = False,
    on_fold: Callable[[CVReport], None] | None = None,
    repeat_share: float = 0.0,
    task_mix: TaskMix = None,
) -> CVReport:
    """Cross-validate ``routers`` on ``data``: every router fitted and scored on every fold.

    Args:
        data: Routing data; rows marked ``split == "test"`` are left out.
        routers: name → router factory (see the module docstring).
        k, repeats, task_shift, seed: The folds (:func:`cv_folds`); each fold's factories get
            ``seed`` too.
        encoder: The base encoder, adapted per fold to its training queries when it has a corpus
            part; default :class:`~mixllm_core.StaticEncoder`.
        reference: The reference LLM (default: the priciest on all rows).
        lambdas: The λ sweep (default the bench's ``LAMBDA_GRID``).
        baseline: The router paired differences are taken from.
        show_progress: A progress bar over folds × routers.
        on_fold: Called with the report after each fold (e.g. to save partial results).
        repeat_share: Add ``round(repeat_share · |test fold|)`` of the fold's training rows to
            its test rows (seeded; see the module docstring), in [0, 1].
        task_mix: Also score each test fold with its rows weighted to this task mix
            (:func:`task_weights`); see :meth:`CVReport.with_task_mix`.

    Returns:
        A :class:`CVReport`.

    Example:
        >>> from mixllm_core.experiments.synthetic import make_synthetic_world
        >>> from mixllm_core.testing import HashingEncoder
        >>> data = make_synthetic_world(150, seed=0)
        >>> report = run_cv(
        ...     data, standard_routers(["knn", "oracle"]), k=3, repeats=1,
        ...     encoder=HashingEncoder(), baseline="knn", lambdas=[0.0, 1.0, 100.0],
        ... )
        >>> s = report.summary()
        >>> bool(s["oracle"]["aiq_x100"]["mean"] > s["knn"]["aiq_x100"]["mean"])
        True
    """
    from tqdm.auto import tqdm

    from ..encoders import StaticEncoder

    if not (isinstance(repeat_share, (int, float)) and 0 <= repeat_share <= 1):
        raise ConfigError(f"repeat_share must be a number in [0, 1], got {repeat_share!r}.")
    if data.split is not None and "test" in data.split:
        data = data.subset([i for i, s in enumerate(data.split) if s != "test"])
    encoder = encoder if encoder is not None else StaticEncoder()
    lam = tuple(LAMBDA_GRID if lambdas is None else lambdas)
    ref = _reference_index(data, reference)
    splits = cv_folds(data, k, repeats, task_shift=task_shift, seed=seed)
    if task_mix is not None:
        task_weights(data.tasks, task_mix)  # fail before fitting anything
        if not isinstance(task_mix, str):
            known = set(map(str, data.tasks or ()))
            unknown = sorted(t for t in task_mix if t not in known)
            if unknown:  # a misspelt task would silently weigh 0
                raise ConfigError(
                    f"Task mix names tasks the data does not have: {unknown}. "
                    f"Its tasks are {sorted(known)}."
                )
    shared = None if isinstance(encoder, AdaptableEncoder) else encoder.encode(data.queries)
    report = CVReport(
        settings={
            "k": max(s.fold for s in splits) + 1,
            "repeats": repeats,
            "repeats_run": max(s.repeat for s in splits) + 1,
            "task_shift": task_shift,
            "seed": seed,
            "n_rows": len(data),
            "llms": list(data.llms),
            "reference_llm": data.llms[ref],
            "encoder": encoder.get_config(),
            "routers": list(routers),
            "repeat_share": repeat_share,
            "task_mix": task_mix
            if task_mix is None or isinstance(task_mix, str)
            else dict(task_mix),
        },
        baseline=baseline,
    )
    bar = tqdm(total=len(splits) * len(routers), disable=not show_progress, unit="fit")
    for split in splits:
        split = _with_repeats(split, repeat_share, seed)
        train, test = data.subset(split.train), data.subset(split.test)
        enc = encoder.adapted(train.queries) if isinstance(encoder, AdaptableEncoder) else encoder
        if shared is not None:
            Xtr, Xte = shared[split.train], shared[split.test]
        else:
            Xtr, Xte = enc.encode(train.queries), enc.encode(test.queries)
        observed = train.mean_cost()
        c_ref = float(np.nanmax(observed)) if np.isfinite(observed).any() else 1.0
        fold = Fold(train, test, enc, Xtr, Xte, lam, c_ref if c_ref > 0 else 1.0, seed, split)
        weights = None
        if task_mix is not None:
            try:
                weights = task_weights(test.tasks, task_mix)
            except ConfigError:  # no test row of this fold has a share: nothing to score
                weights = np.full(len(test), np.nan)
        metrics: dict[str, Any] = {}
        mixed: dict[str, Any] = {}
        for name, factory in routers.items():
            bar.set_postfix_str(f"repeat {split.repeat} fold {split.fold}: {name}")
            choices = factory(fold)
            metrics[name] = fold_metrics(choices, test, ref)
            if weights is not None:
                mixed[name] = (
                    fold_metrics(choices, test, ref, weights)
                    if np.isfinite(weights).all()
                    else dict.fromkeys(METRICS)
                )
            bar.update()
        report.folds.append(
            {
                "repeat": split.repeat,
                "fold": split.fold,
                "n_train": len(train),
                "n_test": len(test),
                "held_out_tasks": list(split.held_out_tasks),
                "metrics": metrics,
                **({"metrics_task_mix": mixed} if weights is not None else {}),
            }
        )
        if on_fold is not None:
            on_fold(report)
    bar.close()
    return report


def bench_cv(
    data: RoutingData,
    out: str | Path,
    *,
    k: int = 5,
    repeats: int = 2,
    task_shift: bool = False,
    seed: int = 0,
    encoder: QueryEncoder | None = None,
    reference: str | None = None,
    quality_model: str = "linear",
    embedding: str = "plain",
    show_progress: bool = True,
    data_name: str | None = None,
    repeat_share: float = 0.0,
    task_mix: TaskMix = None,
) -> CVReport:
    """What ``mixllm bench --cv K --repeats R [--task-shift] [--task-mix uniform]
    [--repeat-share r]`` runs: mixllm (``quality_model``, ``embedding`` ``"plain"`` or
    ``"tags"``) and :func:`standard_routers` through :func:`run_cv`; writes ``cv.json`` into
    ``out`` after every fold (the folds so far). With ``repeat_share > 0`` mixllm without its
    memory of seen queries (``mixllm-no-memory``) is scored too."""
    import json

    from ..errors import check_choice

    check_choice("embedding", embedding, ("plain", "tags"))

    def make(fold: Fold, memory: bool = True) -> MixLLMRouter:
        enc: QueryEncoder = fold.encoder
        if embedding == "tags":
            from ..encoders import TaggedEncoder

            enc = TaggedEncoder(fold.encoder, mode="tags", seed=fold.seed).fit(
                fold.train.queries, fold.train.tasks, show_progress=False
            )
        return MixLLMRouter(encoder=enc, quality_model=quality_model, seed=fold.seed, memory=memory)

    routers = {"mixllm": mixllm_router(make)}
    if repeat_share > 0:
        routers["mixllm-no-memory"] = mixllm_router(lambda fold: make(fold, memory=False))
    routers.update(standard_routers())
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    extra = {
        "quality_model": quality_model,
        "embedding": embedding,
        "data": data_name or data.source,
    }

    def write(report: CVReport) -> None:
        report.settings.update(extra)
        (out / "cv.json").write_text(json.dumps(report.to_dict(), indent=1))

    return run_cv(
        data,
        routers,
        k,
        repeats,
        task_shift,
        seed,
        encoder=encoder,
        reference=reference,
        show_progress=show_progress,
        on_fold=write,
        repeat_share=repeat_share,
        task_mix=task_mix,
    )
