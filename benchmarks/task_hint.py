"""What a task hint at routing time is worth: mixllm with the tagger's guess vs. the true task.

Many callers know a query's task (the endpoint or chain it came from) and can pass it:
``router.route(query, task=...)`` / ``route_batch(queries, tasks=[...])`` replace the tagger's
task memberships by the one-hot of that task. Cross-validated on the same folds as
``mixllm bench --cv`` (``run_cv``: random K-fold, stratified by task), with the router of
``benchmarks/headroom.py`` (static encoder plus tag features fitted on the fold's task labels,
memory on), one fitted router per fold for both rows:

* ``mixllm``: the tagger decides every test query's task (what routing without a hint does);
* ``mixllm-task-given``: every test query comes with its true task as a hint (a task the
  router did not see in training is passed as None, and counted).

The λ sweep of both reads the features through the public API (``router.features(queries,
tasks=...)``, then ``predict_features``: exactly what ``route_batch`` predicts from); on every fold
``route_batch(queries, tasks=...)`` itself is checked against the sweep's choice at the router's
λ (the share of agreeing decisions is printed; ties may break differently). Prints a table per
data set (mean ± s.e., paired differences given − guessed) and writes JSON.

    OMP_NUM_THREADS=1 nice -n 10 env PYTHONPATH=. python benchmarks/task_hint.py \
        --data routerbench nim routerarena --cv 5 --repeats 1 --out task_hint.json
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from replay_seeds import DATA  # type: ignore[import-not-found]

from mixllm_core import MixLLMRouter
from mixllm_core.data import RoutingData, load_routing_data
from mixllm_core.encoders import QueryEncoder, TaggedEncoder
from mixllm_core.experiments.cv import Fold, format_cv_table, run_cv
from mixllm_core.experiments.replay import choose_indices, predictions_on

REFERENCE = {"nim": "llama-3.1-nemotron-51b-instruct"}
GUESSED, GIVEN = "mixllm", "mixllm-task-given"


def hints(router: MixLLMRouter, test: RoutingData) -> list[str | None]:
    """The true task of every test row as a hint, None where the router does not know it."""
    known = set(router.encoder.task_names())  # type: ignore[attr-defined]
    tasks = test.tasks if test.tasks is not None else [None] * len(test)
    return [t if t in known else None for t in tasks]


class TaskHint:
    """The two routers of one run, sharing each fold's fitted router."""

    def __init__(self) -> None:
        self.fitted: dict[tuple[int, int], MixLLMRouter] = {}
        self.tag_accuracy: list[float] = []
        self.unknown_tasks = 0
        self.route_batch_agreement: list[float] = []

    def router(self, fold: Fold) -> MixLLMRouter:
        key = (fold.split.repeat, fold.split.fold)
        if key not in self.fitted:
            enc = TaggedEncoder(fold.encoder, mode="tags", seed=fold.seed).fit(
                fold.train.queries, fold.train.tasks, show_progress=False
            )
            self.fitted[key] = MixLLMRouter(encoder=enc, seed=fold.seed).fit(fold.train)
        return self.fitted[key]

    def run(self, fold: Fold, given: bool) -> dict[Any, np.ndarray]:
        router = self.router(fold)
        queries = list(fold.test.queries)
        tasks = hints(router, fold.test) if given else None
        Q, C = predictions_on(router, fold.test, *router.features(queries, tasks=tasks))
        c_ref = router.c_ref()
        choices = {lam: choose_indices(router, Q, C, lam, c_ref) for lam in fold.lambdas}
        if given:
            self.unknown_tasks += sum(t is None for t in tasks or [])
            self._check_route_batch(router, fold, tasks, Q, C, c_ref)
        else:
            enc = router.encoder
            assert isinstance(enc, TaggedEncoder)  # the router was built with one
            guess = [g[0] for g in enc.tags(queries)]
            self.tag_accuracy.append(
                float(np.mean([g == t for g, t in zip(guess, tasks_of(fold))]))
            )
        return choices

    def _check_route_batch(
        self,
        router: MixLLMRouter,
        fold: Fold,
        tasks: list[str | None] | None,
        Q: np.ndarray,
        C: np.ndarray,
        c_ref: float,
    ) -> None:
        """Share of ``route_batch(..., tasks=...)`` decisions equal to the sweep's at λ."""
        policy = replace(router.policy, alpha=0.0)
        decisions = router.route_batch(list(fold.test.queries), policy=policy, tasks=tasks)
        swept = choose_indices(router, Q, C, policy.lam, c_ref)
        routed = [fold.test.llms.index(d.llm) for d in decisions]
        self.route_batch_agreement.append(float(np.mean(np.array(routed) == swept)))

    def routers(self) -> dict[str, Callable[[Fold], Mapping[Any, np.ndarray]]]:
        return {GUESSED: lambda f: self.run(f, False), GIVEN: lambda f: self.run(f, True)}


def tasks_of(fold: Fold) -> list[str | None]:
    return list(fold.test.tasks) if fold.test.tasks is not None else [None] * len(fold.test)


def evaluate(
    data: RoutingData,
    k: int,
    repeats: int,
    seed: int,
    *,
    reference: str | None = None,
    encoder: QueryEncoder | None = None,
) -> dict[str, Any]:
    """Both routers cross-validated on ``data`` (``encoder``: the base encoder, default static)."""
    h = TaskHint()
    t0 = time.perf_counter()
    report = run_cv(
        data,
        h.routers(),
        k,
        repeats,
        False,
        seed,
        encoder=encoder,
        reference=reference,
        baseline=GIVEN,
    )
    out = report.to_dict()
    return {
        "seconds": time.perf_counter() - t0,
        "tagger_accuracy": float(np.mean(h.tag_accuracy)),
        "unknown_task_rows": h.unknown_tasks,
        "route_batch_agreement": float(np.mean(h.route_batch_agreement)),
        "gain": {m: out["differences"][GUESSED][m] for m in ("aiq_x100", "q_pct_at_25")},
        "report": out,
    }


def run(name: str, k: int, repeats: int, seed: int) -> dict[str, Any]:
    data = load_routing_data(DATA[name])
    return {"data": name, **evaluate(data, k, repeats, seed, reference=REFERENCE.get(name))}


def print_table(res: dict[str, Any]) -> None:
    print(
        f"\n{res['data']}: the tagger names the right task for "
        f"{100 * res['tagger_accuracy']:.1f}% of test rows; {res['unknown_task_rows']} rows "
        f"of tasks unseen in training; route_batch(tasks=...) agrees with the sweep on "
        f"{100 * res['route_batch_agreement']:.2f}% of decisions"
    )
    print(format_cv_table(res["report"]))
    a, q = res["gain"]["aiq_x100"], res["gain"]["q_pct_at_25"]
    q_text = "-" if q["mean"] is None else f"{q['mean']:+.2f} ± {q['se']:.2f}"
    print(
        f"gain of the hint (given − guessed): AIQ×100 {a['mean']:+.2f} ± {a['se']:.2f}; "
        f"Q% @ 25% {q_text}"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", nargs="+", default=["nim"], choices=sorted(DATA))
    ap.add_argument("--cv", type=int, default=5)
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="task_hint.json")
    args = ap.parse_args()
    results = []
    for name in args.data:
        res = run(name, args.cv, args.repeats, args.seed)
        print_table(res)
        results.append(res)
        Path(args.out).write_text(json.dumps(results, indent=1))
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
