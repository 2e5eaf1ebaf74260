"""How well must a router rank queries *within a task* to reach a quality target?

Cross-validates, on the same folds (``run_cv``, random K-fold stratified by task):

* ``mixllm``, the library default (static encoder plus tag features, memory on);
* the bench's strongest baselines (``knn-cv``, ``mf``, ``mlp``);
* ``task-mean``: each LLM's mean training score per task, costs as mixllm predicts them. It reads
  the test rows' task labels, so it is a reference, not a router: it knows each query's task
  exactly and nothing within it;
* ``tagger-mean``: the same from what mixllm's tagger (fitted on the training rows) believes the
  task is: its task posterior times each task's mean score; a router, since it reads no test
  label. The tagger's accuracy is printed;
* ``signal-d``: *synthetic* predictors with a known amount of within-task signal. For each test
  row and LLM a noisy reading ``z = d·y + ε`` (ε ~ N(0, 1)) of the true score ``y`` is drawn, and
  the prediction is the Bayes posterior mean of ``y`` given ``z`` under the LLM's training scores
  on that task as the prior. So it is calibrated, uses the task like ``task-mean`` (d = 0 is
  ``task-mean``), and ranks the queries of a task with an AUC of Φ(d/√2) for 0/1 scores. Costs as
  mixllm predicts them, so only the quality predictions differ from mixllm's.

Besides AIQ and quality at 25% of the reference's cost (as ``mixllm bench --cv``), it reports each
router's **within-task AUC**: per task and LLM, the share of test-row pairs with different true
scores that the predicted quality orders correctly (ties count half; ROC AUC for 0/1 scores),
averaged with the pairs as weights (per task too, in the JSON). The synthetic curve says what
AUC a target needs; the real routers' AUC says where they are. ``--minilm`` adds
``mixllm-minilm``, the same router on MiniLM embeddings (cached per data set) plus tags. Prints a
table and writes JSON.

    OMP_NUM_THREADS=1 nice -n 10 env PYTHONPATH=. python benchmarks/headroom.py \
        --data routerbench nim routerarena --cv 5 --repeats 1 --out headroom.json
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
from replay_seeds import DATA  # type: ignore[import-not-found]

from mixllm_core import MixLLMRouter
from mixllm_core.data import RoutingData, load_routing_data
from mixllm_core.encoders import QueryEncoder, TaggedEncoder
from mixllm_core.experiments.baselines import BASELINES, sweep
from mixllm_core.experiments.bench import cached_encoder
from mixllm_core.experiments.cv import Fold, run_cv, standard_routers
from mixllm_core.experiments.replay import choose_indices, predictions_on

REFERENCE = {"nim": "llama-3.1-nemotron-51b-instruct"}
SIGNALS = (0.0, 0.5, 1.0, 1.5, 2.0, 3.0)
BASELINE_NAMES = ("knn-cv", "mf", "mlp")


def _tasks(d: RoutingData) -> np.ndarray:
    return np.array(d.tasks if d.tasks is not None else [""] * len(d))


def per_task_auc(Q: np.ndarray, Y: np.ndarray, tasks: np.ndarray) -> dict[str, tuple[float, int]]:
    """Per task: the share of (row pair, LLM) with different true scores that ``Q`` orders as
    ``Y`` does (ties in ``Q`` count half), and the number of such pairs, over all LLMs.

    Example:
        >>> Y = np.array([[0.0], [1.0], [0.0], [1.0]])
        >>> per_task_auc(np.array([[0.1], [0.9], [0.5], [0.5]]), Y, np.array(["a", "a", "b", "b"]))
        {'a': (1.0, 1), 'b': (0.5, 1)}
    """
    out = {}
    for t in np.unique(tasks):
        rows = tasks == t
        good, pairs = 0.0, 0
        for j in range(Y.shape[1]):
            y, q = Y[rows, j], Q[rows, j]
            dy = np.sign(y[:, None] - y[None, :])
            dq = np.sign(q[:, None] - q[None, :])
            mask = dy > 0  # each unordered pair with different scores once
            good += float((dq[mask] > 0).sum() + 0.5 * (dq[mask] == 0).sum())
            pairs += int(mask.sum())
        out[str(t)] = (good / pairs if pairs else float("nan"), pairs)
    return out


def within_task_auc(Q: np.ndarray, Y: np.ndarray, tasks: np.ndarray) -> tuple[float, int]:
    """:func:`per_task_auc` pooled over the tasks, the pairs as weights.

    Example:
        >>> Y = np.array([[0.0], [1.0], [0.0], [1.0]])
        >>> within_task_auc(Y, Y, np.array(["a", "a", "b", "b"]))
        (1.0, 2)
        >>> within_task_auc(-Y, Y, np.array(["a", "a", "b", "b"]))
        (0.0, 2)
    """
    per = [v for v in per_task_auc(Q, Y, tasks).values() if v[1]]
    pairs = sum(n for _, n in per)
    return (sum(a * n for a, n in per) / pairs if pairs else float("nan")), pairs


def _task_prior(fit: RoutingData, t: str, j: int) -> tuple[np.ndarray, np.ndarray]:
    """The training scores of LLM ``j`` on task ``t`` (all tasks when ``t`` is unseen) as
    (values, weights)."""
    tasks = _tasks(fit)
    rows = tasks == t if (tasks == t).any() else np.ones(len(fit), bool)
    values, counts = np.unique(fit.quality[rows, j], return_counts=True)
    return values, counts / counts.sum()


def signal_quality(fit: RoutingData, test: RoutingData, d: float, seed: int) -> np.ndarray:
    """Calibrated synthetic predictions with within-task signal ``d`` (see the module docstring);
    ``d = 0`` gives each LLM's mean training score on the row's task."""
    rng = np.random.default_rng(seed)
    Z = d * test.quality + rng.standard_normal(test.quality.shape)
    Q = np.empty_like(test.quality)
    tasks = _tasks(test)
    for t in np.unique(tasks):
        rows = tasks == t
        for j in range(test.quality.shape[1]):
            v, w = _task_prior(fit, t, j)
            # log-likelihood of each prior value given z, minus its max for stability
            ll = -0.5 * (Z[rows, j][:, None] - d * v[None, :]) ** 2
            post = w[None, :] * np.exp(ll - ll.max(axis=1, keepdims=True))
            Q[rows, j] = post @ v / post.sum(axis=1)
    return Q


def signal_name(d: float) -> str:
    return "task-mean" if d == 0 else f"signal-{d:g}"


class Headroom:
    """The routers of one run, sharing per fold what mixllm predicted (its costs feed the
    synthetic predictors) and recording every router's within-task AUC."""

    def __init__(self, signals: tuple[float, ...], baselines: tuple[str, ...]) -> None:
        self.signals = signals
        self.baselines = baselines
        self.costs: dict[tuple[int, int], np.ndarray] = {}
        self.auc: dict[str, list[float]] = {}
        self.task_auc: dict[str, dict[str, list[float]]] = {}
        self.tagger_mean: dict[tuple[int, int], np.ndarray] = {}
        self.tag_accuracy: list[float] = []
        self.minilm: QueryEncoder | None = None

    def _record(self, name: str, fold: Fold, Q: np.ndarray) -> None:
        auc, _ = within_task_auc(Q, fold.test.quality, _tasks(fold.test))
        self.auc.setdefault(name, []).append(auc)
        for t, (a, n) in per_task_auc(Q, fold.test.quality, _tasks(fold.test)).items():
            if n:
                self.task_auc.setdefault(name, {}).setdefault(t, []).append(a)

    def mixllm(self, fold: Fold, name: str = "mixllm") -> dict[Any, np.ndarray]:
        base = fold.encoder if name == "mixllm" else self.minilm
        assert base is not None
        enc = TaggedEncoder(base, mode="tags", seed=fold.seed).fit(
            fold.train.queries, fold.train.tasks, show_progress=False
        )
        router = MixLLMRouter(encoder=enc, seed=fold.seed)
        router.fit(fold.train)
        Q, C = predictions_on(router, fold.test, *router.features(fold.test.queries))
        if name == "mixllm":  # the synthetic predictors take the default router's costs
            key = (fold.split.repeat, fold.split.fold)
            self.costs[key] = C
            # what the tagger alone knows: its task posterior times each task's mean score
            tags = list(enc.tagger.tags_)
            P = enc.tagger.tag_proba(base.encode(list(fold.test.queries)))
            ttr = _tasks(fold.train)
            M = np.stack([fold.train.quality[ttr == t].mean(axis=0) for t in tags])
            self.tagger_mean[key] = P @ M
            hit = np.array(tags)[P.argmax(axis=1)] == _tasks(fold.test)
            self.tag_accuracy.append(float(hit.mean()))
        self._record(name, fold, Q)
        return {lam: choose_indices(router, Q, C, lam, router.c_ref()) for lam in fold.lambdas}

    def baseline(self, name: str) -> Callable[[Fold], dict[Any, np.ndarray]]:
        def run(fold: Fold) -> dict[Any, np.ndarray]:
            Q, C = BASELINES[name](fold.train, fold.Xtr, fold.Xte, fold.seed)
            self._record(name, fold, np.asarray(Q))
            return sweep(np.asarray(Q), np.asarray(C), fold.lambdas, fold.c_ref)

        return run

    def signal(self, d: float) -> Callable[[Fold], dict[Any, np.ndarray]]:
        name = signal_name(d)

        def run(fold: Fold) -> dict[Any, np.ndarray]:
            Q = signal_quality(fold.train, fold.test, d, fold.seed + 7919 * fold.split.fold)
            C = self.costs[(fold.split.repeat, fold.split.fold)]
            self._record(name, fold, Q)
            return sweep(Q, C, fold.lambdas, fold.c_ref)

        return run

    def tagger(self, fold: Fold) -> dict[Any, np.ndarray]:
        key = (fold.split.repeat, fold.split.fold)
        self._record("tagger-mean", fold, self.tagger_mean[key])
        return sweep(self.tagger_mean[key], self.costs[key], fold.lambdas, fold.c_ref)

    def routers(self) -> dict[str, Callable[[Fold], Mapping[Any, np.ndarray]]]:
        out: dict[str, Callable[[Fold], Mapping[Any, np.ndarray]]] = {"mixllm": self.mixllm}
        if self.minilm is not None:  # the same router on MiniLM (plus tags)
            out["mixllm-minilm"] = lambda fold: self.mixllm(fold, "mixllm-minilm")
        out.update({b: self.baseline(b) for b in self.baselines})
        out["tagger-mean"] = self.tagger
        out.update({signal_name(d): self.signal(d) for d in self.signals})
        out.update(standard_routers(["oracle", "single-mix"]))
        return out


def run(
    name: str, k: int, repeats: int, seed: int, signals: tuple[float, ...], minilm: bool = False
) -> dict[str, Any]:
    data = load_routing_data(DATA[name])
    h = Headroom(signals, BASELINE_NAMES)
    if minilm:
        h.minilm = cached_encoder(data)
    t0 = time.perf_counter()
    report = run_cv(data, h.routers(), k, repeats, False, seed, reference=REFERENCE.get(name))
    summary = report.summary()
    diffs = report.differences()
    rows = {}
    for r in report.routers:
        aucs = np.array(h.auc.get(r, []), dtype=float)
        rows[r] = {
            **{m: summary[r][m] for m in ("aiq_x100", "q_pct_at_25", "cost_pct_for_97")},
            "delta_vs_mixllm": diffs.get(r, {}),
            "within_task_auc": float(aucs.mean()) if len(aucs) else None,
            "within_task_auc_folds": aucs.tolist(),
            "within_task_auc_per_task": {
                t: float(np.mean(v)) for t, v in sorted(h.task_auc.get(r, {}).items())
            },
        }
    if minilm and h.minilm is not None and hasattr(h.minilm, "save_cache"):
        h.minilm.save_cache()
    return {
        "data": name,
        "settings": report.settings,
        "seconds": time.perf_counter() - t0,
        "tagger_accuracy": float(np.mean(h.tag_accuracy)),
        "routers": rows,
    }


def print_table(res: dict[str, Any]) -> None:
    print(
        f"\n{res['data']} ({res['settings'].get('k')} folds × {res['settings'].get('repeats')}; "
        f"the tagger names the right task for {100 * res['tagger_accuracy']:.1f}% of test rows)"
    )
    print(f"{'router':<12} {'AIQ×100':>15} {'Q% @ 25%':>15} {'within-task AUC':>16}")
    for r, row in res["routers"].items():
        a, q, auc = row["aiq_x100"], row["q_pct_at_25"], row["within_task_auc"]
        auc_s = "" if auc is None else f"{auc:.3f}"
        print(
            f"{r:<12} {a['mean']:>8.2f} ± {a['se']:<4.2f} {q['mean']:>8.2f} ± {q['se']:<4.2f}"
            f" {auc_s:>16}"
        )


def plot(results: list[dict[str, Any]], path: str | Path) -> None:
    """Quality at 25% of the reference's cost (AIQ where no router has such a point) against
    within-task AUC: the synthetic curve per data set, the real routers as points."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(results), figsize=(5.2 * len(results), 4.2), squeeze=False)
    for ax, res in zip(axes[0], results):
        rows = res["routers"]
        metric = "q_pct_at_25" if rows["mixllm"]["q_pct_at_25"]["mean"] else "aiq_x100"
        label = "quality at 25% cost, % of reference" if metric == "q_pct_at_25" else "AIQ × 100"
        curve = [r for r in rows if r == "task-mean" or r.startswith("signal-")]
        x = [rows[r]["within_task_auc"] for r in curve]
        y = [rows[r][metric]["mean"] for r in curve]
        ax.plot(x, y, "o-", color="0.6", label="calibrated, synthetic (task known)")
        for r in curve:
            ax.annotate(
                r.replace("signal-", "d="),
                (rows[r]["within_task_auc"], rows[r][metric]["mean"]),
                textcoords="offset points",
                xytext=(4, -10),
                fontsize=7,
                color="0.4",
            )
        for r, marker in (
            ("mixllm", "*"),
            ("mixllm-minilm", "P"),
            ("tagger-mean", "s"),
            ("knn-cv", "^"),
            ("mf", "v"),
            ("mlp", "D"),
        ):
            if r in rows and rows[r]["within_task_auc"] is not None:
                ax.plot(
                    rows[r]["within_task_auc"],
                    rows[r][metric]["mean"],
                    marker,
                    ms=9 if r == "mixllm" else 6,
                    label=r,
                )
        ax.axhline(rows["oracle"][metric]["mean"], ls=":", color="k", lw=1, label="oracle")
        if res["data"] == "routerbench" and metric == "q_pct_at_25":
            ax.axhline(97.25, ls="--", color="tab:red", lw=1, label="paper's headline (97.25%)")
        ax.set_xlabel("within-task AUC of the quality predictions")
        ax.set_ylabel(label)
        ax.set_title(f"{res['data']}: tagger right on {100 * res['tagger_accuracy']:.0f}% of rows")
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", nargs="+", default=["routerbench"], choices=sorted(DATA))
    ap.add_argument("--cv", type=int, default=5)
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--signals", type=float, nargs="+", default=list(SIGNALS))
    ap.add_argument("--minilm", action="store_true", help="also mixllm on MiniLM plus tags")
    ap.add_argument("--out", default="headroom.json")
    ap.add_argument("--plot", default=None, help="also draw the curves into this PNG")
    ap.add_argument("--from-json", default=None, help="only print and plot a run's JSON")
    args = ap.parse_args()
    if args.from_json:
        results = json.loads(Path(args.from_json).read_text())
        for res in results:
            print_table(res)
        if args.plot:
            plot(results, args.plot)
        return
    results = []
    for name in args.data:
        res = run(name, args.cv, args.repeats, args.seed, tuple(args.signals), args.minilm)
        print_table(res)
        results.append(res)
        Path(args.out).write_text(json.dumps(results, indent=1))
    if args.plot:
        plot(results, args.plot)
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
