"""The continual-learning replay over several split seeds, lean: no baselines, no timing.

Per data set and seed: split train/test as ``mixllm bench`` does, fit on 30% of the training
rows, stream the other 70% with none / refined / binary feedback (as ``mixllm bench --online``),
and score AIQ on the test rows. Prints a table and writes JSON, as ``memory_replay.py`` does:
``{"args": the command line's settings (``router`` among them), "aiq": {set: {seed: {kind: AIQ}}}}``.

    python benchmarks/replay_seeds.py --seeds 0 1 2 3 4 --out replay.json
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from mixllm_core import MixLLMRouter
from mixllm_core.data import load_routing_data
from mixllm_core.encoders import StaticEncoder
from mixllm_core.experiments.bench import LAMBDA_GRID, REFIT_EVERY
from mixllm_core.experiments.replay import (
    aiq_on,
    split_offline_stream,
    stream_feedback,
)
from mixllm_core.snapshot import RefitGuard

DATA = {
    "routerbench": "../shared/data/routerbench_subset/routerbench_arc_mbpp_winogrande.parquet",
    "nim": "../shared/data/llmrouter_nim/llmrouter_dcrouter_scores.parquet",
    "routerarena": "../shared/data/routerarena_sub10/routerarena_sub10_cached_results.parquet",
}


ROUTERS = ("static", "default")


def make_router(kind: str, seed: int) -> MixLLMRouter:
    """The replayed router, unfitted: ``static``, the static encoder alone (the tables before tag
    features became the default); ``default``, ``MixLLMRouter()`` as it comes (tag features
    fitted with the router)."""
    if kind == "static":
        return MixLLMRouter(encoder=StaticEncoder(), seed=seed)
    return MixLLMRouter(seed=seed)


class _Fixed:
    """An encoder whose corpus part is fixed (``fit`` does not adapt it again)."""

    def __init__(self, inner) -> None:
        self.inner = inner

    @property
    def dim(self) -> int:
        return self.inner.dim

    def encode(self, texts, *, show_progress=False):
        return self.inner.encode(texts, show_progress=show_progress)

    def get_config(self):
        return self.inner.get_config()


def run(
    name: str,
    seed: int,
    kinds: list[str],
    stream_lam: float,
    alpha: float,
    margin: float,
    learn_all: bool,
    head_margin: float | None = 1.0,
    head_folds: int = 0,
    router_kind: str = "static",
    **explore,
) -> dict:
    if router_kind == "default" and "adapt" in kinds:
        raise ValueError(
            "kind 'adapt' fixes a StaticEncoder's corpus part: use router_kind 'static'"
        )
    data = load_routing_data(DATA[name])
    train, test = data.train_test_split(seed=seed)
    offline, stream = split_offline_stream(train, 0.3, seed)
    cost = test.cost if test.cost is not None else np.zeros_like(test.quality)
    max_cost = float(cost.mean(axis=0).max())
    out = {}
    for kind in kinds:
        t0 = time.perf_counter()
        router = make_router(router_kind, seed)
        router.policy = router.maker.policy = replace(router.policy, alpha=alpha, **explore)
        if kind == "full":
            router.fit(train)
        elif kind == "adapt":  # no feedback, corpus part learned from every training query
            router.encoder = _Fixed(StaticEncoder().adapted(train.queries))
            router.fit(offline)
        else:
            router.fit(offline)
            guard = (
                RefitGuard(
                    margin=margin,
                    learn_all=learn_all,
                    head_margin=head_margin,
                    head_folds=head_folds,
                )
                if margin >= 0
                else None
            )
            refit = router.refit

            def guarded(_refit=refit, _guard=guard, **kwargs):  # replaces a caller's guard
                return _refit(**{**kwargs, "guard": _guard})

            router.refit = guarded  # type: ignore[method-assign]  (stream_feedback's refits too)
            if kind != "none":
                stream_feedback(router, stream, kind, lam=stream_lam, refit_every=REFIT_EVERY)
                final = router.refit()
                out[f"{kind}_refit"] = {
                    "accepted": final.accepted,
                    "gain": final.gain,
                    "stderr": final.stderr,
                    "reason": final.reason,
                    "heads_kept": final.heads_kept,
                    "heads_gain": final.heads_gain,
                    "heads_stderr": final.heads_stderr,
                }
        out[kind] = aiq_on(router, test, LAMBDA_GRID, max_cost)
        print(
            f"{name} seed {seed} {kind:8s} AIQ {out[kind]:.4f} ({time.perf_counter() - t0:.0f}s)",
            flush=True,
        )
    return out


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--data", nargs="+", default=list(DATA))
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    p.add_argument("--kinds", nargs="+", default=["none", "refined", "binary"])
    p.add_argument("--stream-lam", type=float, default=5.0)
    p.add_argument("--alpha", type=float, default=0.05)
    p.add_argument("--explore", default="greedy")
    p.add_argument("--temperature", type=float, default=0.02)
    p.add_argument("--epsilon", type=float, default=0.1)
    p.add_argument(
        "--margin", type=float, default=RefitGuard().margin, help="refit guard; < 0: unguarded"
    )
    p.add_argument(
        "--learn-all",
        action="store_true",
        help="an accepted refit is learned again from all feedback (default: the tested one)",
    )
    p.add_argument(
        "--head-margin",
        type=float,
        default=RefitGuard().head_margin,
        help="the guard's test of the online heads; < 0: heads always restart (None)",
    )
    p.add_argument("--head-folds", type=int, default=RefitGuard().head_folds)
    p.add_argument(
        "--router",
        default="static",
        choices=ROUTERS,
        help="static: StaticEncoder alone (the tables before tag features became the default); "
        "default: MixLLMRouter() as it comes (tag features fitted with the router)",
    )
    p.add_argument("--out", default="replay-seeds.json")
    args = p.parse_args()
    if args.router == "default" and "adapt" in args.kinds:
        p.error("--kinds adapt fixes a StaticEncoder's corpus part: use it with --router static")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    explore = {"explore": args.explore, "temperature": args.temperature, "epsilon": args.epsilon}
    result = {
        name: {
            s: run(
                name,
                s,
                args.kinds,
                args.stream_lam,
                args.alpha,
                args.margin,
                args.learn_all,
                None if args.head_margin is None or args.head_margin < 0 else args.head_margin,
                args.head_folds,
                args.router,
                **explore,
            )
            for s in args.seeds
        }
        for name in args.data
    }
    for name, per_seed in result.items():
        print(f"\n{name}: seed " + " ".join(f"{k:>8s}" for k in args.kinds))
        for s, r in per_seed.items():
            print(f"{s:>4d}   " + " ".join(f"{r[k]:8.4f}" for k in args.kinds))
        means = {k: float(np.mean([r[k] for r in per_seed.values()])) for k in args.kinds}
        print("mean   " + " ".join(f"{means[k]:8.4f}" for k in args.kinds))
    Path(args.out).write_text(json.dumps({"args": vars(args), "aiq": result}, indent=1))


if __name__ == "__main__":
    main()
