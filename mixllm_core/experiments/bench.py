"""`mixllm bench`: mixllm against single LLMs, random, oracle and RouterBench's routers.

Trains on the ``train`` rows and evaluates on ``test`` (a seeded 80/20 split when the data has no
test rows), sweeping λ. Writes ``decisions.csv`` (router, lambda, sample_id, model),
``summary.json`` and ``pareto.png`` into the output directory and prints a table.
``mixllm bench --cv K`` cross-validates instead (:mod:`.cv`).
"""

from __future__ import annotations

import copy
import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from ..data import RoutingData, load_routing_data
from ..encoders import QueryEncoder, SentenceEncoder
from ..encoders.base import default_cache_dir
from ..metrics import aiq, cost_to_reach, quality_at_cost
from ..predictors import cost_features
from ..router import MixLLMRouter
from ..text import estimate_tokens
from .baselines import BASELINES, sweep
from .replay import StreamReport, choose_indices, predictions_on
from .synthetic import make_synthetic_world

__all__ = [
    "LAMBDA_GRID",
    "BenchResult",
    "adapt_to",
    "compare_encoders",
    "format_encoder_table",
    "run_bench",
]

log = logging.getLogger(__name__)

#: λ values swept by the benchmark (dense where the cost/quality trade-off turns).
LAMBDA_GRID: tuple[float, ...] = (0.0, *np.round(np.geomspace(0.01, 1000, 81), 6).tolist())


#: Queries in the timed ``route_batch`` that embeds every query (the batch-throughput figure).
BATCH_TIMED = 64

#: Feedbacks between two refits of the offline predictors in the replay experiments. Online heads
#: alone let selection-biased feedback (only the chosen LLM is scored) pull routing off: measured
#: on RouterBench, heads only −1.7 AIQ points against no feedback; heads + refit every 250 +0.03.
REFIT_EVERY = 250
#: Exploration weight α while an LLM joins mid-stream (RouterBench, Yi-34B held out: α 0.05 left
#: it at 4% of the traffic at the end, α 0.2 let it reach the 83% its value earns).
POOL_ALPHA = 0.2


@dataclass
class RouterRun:
    """One router's choices: per λ (None for λ-free routers) the chosen LLM index per test query."""

    name: str
    choices: dict[Any, np.ndarray]
    points: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class BenchResult:
    summary: dict[str, Any]
    runs: list[RouterRun]
    out: Path


def _progress(total: int, desc: str, show: bool) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, disable=not show, unit="step")


def _fixed_encoder_time(encoder: QueryEncoder, texts: Sequence[str]) -> np.ndarray:
    encoder.encode(["Warm-up: the first call loads the model."])  # not a timed text: no cache hit
    times = []
    for t in texts:
        t0 = time.perf_counter()
        encoder.encode([t])
        times.append(time.perf_counter() - t0)
    return np.array(times)


def _baseline_runs(
    train: RoutingData,
    test: RoutingData,
    Xtr: np.ndarray,
    Xte: np.ndarray,
    lambdas: Sequence[float],
    c_ref: float,
    seed: int,
) -> list[RouterRun]:
    """Single LLMs, random, oracle and the learned baselines (:mod:`.baselines`)."""
    m, n = len(test.llms), len(test)
    runs = [RouterRun(f"single:{name}", {None: np.full(n, j)}) for j, name in enumerate(test.llms)]
    runs.append(RouterRun("random", {None: np.random.default_rng(seed).integers(0, m, size=n)}))
    best = test.quality.max(axis=1, keepdims=True)
    test_cost = test.cost if test.cost is not None else np.zeros_like(test.quality)
    oracle_cost = np.where(test.quality >= best - 1e-12, test_cost, np.inf)
    runs.append(RouterRun("oracle", {None: np.argmin(oracle_cost, axis=1)}))
    for name, baseline in BASELINES.items():
        Q, C = baseline(train, Xtr, Xte, seed)
        runs.append(RouterRun(name, sweep(Q, C, lambdas, c_ref)))
    return runs


def _test_features(
    router: MixLLMRouter, base: QueryEncoder, test: RoutingData, Xte: np.ndarray, Fte: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The test rows' features as ``router`` sees them: ``Xte``/``Fte`` (made by ``base``, the
    bench's encoder) unless ``fit`` gave the router its own encoder, adapted to the part of the
    training rows the replays fit on (the static encoder's corpus part)."""
    if router.encoder is base:
        return Xte, Fte
    return router.features(test.queries)


def adapt_to(encoder: Any, texts: Sequence[str]) -> None:
    """Learn an encoder's corpus part from ``texts`` in place (no-op for encoders without one);
    for an encoder the bench itself uses beside a router, e.g. its uncached timing twin."""
    adapt = getattr(encoder, "adapt", None)
    if callable(adapt):
        adapt(texts)


@dataclass(frozen=True)
class _Replay:
    """What the replay experiments share: the rows, the test features the bench computed, the λ
    sweep and the stream's settings."""

    base: QueryEncoder
    train: RoutingData
    test: RoutingData
    Xte: np.ndarray
    Fte: np.ndarray
    lambdas: Sequence[float]
    c_ref: float
    stream_lam: float
    seed: int
    show: bool

    def split(self) -> tuple[RoutingData, RoutingData]:
        """30% of the training rows offline, 70% streamed."""
        from .replay import split_offline_stream

        return split_offline_stream(self.train, 0.3, self.seed)

    def stream(
        self, router: MixLLMRouter, stream: RoutingData, kind: str, desc: str, **kwargs: Any
    ) -> StreamReport:
        """Route ``stream`` with ``kind`` feedback, then refit: continual training, the final
        state includes every feedback."""
        from .replay import stream_feedback

        bar = _progress(len(stream), f"stream ({desc})", self.show)
        report = stream_feedback(
            router,
            stream,
            kind,
            lam=self.stream_lam,
            refit_every=REFIT_EVERY,
            progress=bar,
            **kwargs,
        )
        if kind != "none":  # guarded like the stream's refits (refit's guard is opt-in)
            from ..snapshot import RefitGuard

            router.refit(guard=RefitGuard())
        bar.close()
        return report

    def evaluate(self, name: str, router: MixLLMRouter) -> RouterRun:
        """``router``'s choices on the test rows over the λ sweep."""
        from .replay import evaluate_choices

        X, F = _test_features(router, self.base, self.test, self.Xte, self.Fte)
        return RouterRun(name, evaluate_choices(router, self.test, X, F, self.lambdas, self.c_ref))


def _online_runs(
    fresh: Callable[[], MixLLMRouter], replay: _Replay
) -> tuple[list[RouterRun], dict[str, Any]]:
    """The paper's continual-learning replay: 30% offline, 70% streamed with feedback."""
    from .replay import FEEDBACK_KINDS

    offline, stream = replay.split()
    streams: dict[str, Any] = {}
    runs: list[RouterRun] = []
    info = {
        "offline_rows": len(offline),
        "stream_rows": len(stream),
        "stream_lambda": replay.stream_lam,
        "streams": streams,
    }
    for kind in FEEDBACK_KINDS:
        router = fresh().fit(offline)
        report = replay.stream(router, stream, kind, f"{kind} feedback")
        streams[kind] = report.summary()
        runs.append(replay.evaluate(f"online-{kind}", router))
    return runs, info


def _pool_change_runs(
    fresh: Callable[[], MixLLMRouter], replay: _Replay, held_out: str
) -> tuple[list[RouterRun], dict[str, Any]]:
    """``held_out`` is unknown offline and joins after 30% of the stream (refined feedback)."""
    train = replay.train
    if held_out not in train.llms:
        from ..errors import UnknownLLMError

        raise UnknownLLMError(held_out, train.llms)
    offline, stream = replay.split()
    others = [n for n in train.llms if n != held_out]
    spec = train.specs.get(held_out)
    at = int(round(0.3 * len(stream)))
    runs: list[RouterRun] = []
    info: dict[str, Any] = {
        "held_out": held_out,
        "added_at": at,
        "stream_rows": len(stream),
        "alpha": POOL_ALPHA,
    }
    for label, add in (("without", None), ("added", (at, lambda r: r.add_llm(spec or held_out)))):
        router = fresh().fit(offline.select_llms(others))
        report = replay.stream(router, stream, "refined", f"{label} {held_out}", add_llm=add)
        tail = int(round(0.8 * len(stream)))
        info[label] = {
            **report.summary(),
            "share_after_add_first_10pct": report.share(held_out, at, at + len(stream) // 10),
            "share_last_20pct": report.share(held_out, tail),
        }
        runs.append(replay.evaluate(f"pool-{label}-{held_out.split('/')[-1]}", router))
    return runs, info


def _score_run(run: RouterRun, test: RoutingData) -> None:
    rows = np.arange(len(test))
    cost = test.cost if test.cost is not None else np.zeros_like(test.quality)
    run.points = [
        {
            "lambda": lam,
            "cost": float(cost[rows, idx].mean()),
            "quality": float(test.quality[rows, idx].mean()),
        }
        for lam, idx in run.choices.items()
    ]


def _router_metrics(
    run: RouterRun, ref_cost: float, ref_quality: float, max_cost: float
) -> dict[str, Any]:
    costs = [p["cost"] for p in run.points]
    quals = [p["quality"] for p in run.points]
    reach = cost_to_reach(costs, quals, 0.97 * ref_quality)
    return {
        "points": run.points,
        "aiq": aiq(costs, quals, max_cost),
        "quality_pct_at_25pct_cost": 100
        * quality_at_cost(costs, quals, 0.25 * ref_cost)
        / ref_quality,
        "cost_pct_to_reach_97pct": None if reach is None else 100 * reach / ref_cost,
        "max_quality_pct": 100 * max(quals) / ref_quality,
    }


def _reference(test: RoutingData, reference: str | None) -> tuple[str, float, float, float]:
    """(reference LLM, its mean test cost, its mean test quality, the priciest LLM's mean cost)."""
    test_cost = test.cost if test.cost is not None else np.zeros_like(test.quality)
    mean_cost, mean_q = test_cost.mean(axis=0), test.quality.mean(axis=0)
    ref = reference or test.llms[int(np.argmax(mean_cost))]
    if ref not in test.llms:
        from ..errors import UnknownLLMError

        raise UnknownLLMError(ref, test.llms)
    r = test.llms.index(ref)
    return ref, float(mean_cost[r]), float(mean_q[r]), float(mean_cost.max())


def _mixllm_run(
    router: MixLLMRouter, R: np.ndarray, test: RoutingData, lambdas: Sequence[float]
) -> tuple[RouterRun, float, np.ndarray]:
    """The router's choices on the test rows (representations ``R``) per λ, c_ref, cost features."""
    in_tok = np.array([estimate_tokens(q) for q in test.queries], dtype=float)
    F = cost_features(R, in_tok)
    Q, C = predictions_on(router, test, R, F)  # a repeated test query: what a route would do
    c_ref = router.c_ref()
    run = RouterRun("mixllm", {lam: choose_indices(router, Q, C, lam, c_ref) for lam in lambdas})
    return run, c_ref, F


def compare_encoders(
    data: RoutingData,
    encoders: Mapping[str, tuple[QueryEncoder, QueryEncoder]],
    *,
    seeds: Sequence[int] = (0,),
    reference: str | None = None,
    lambdas: Sequence[float] = LAMBDA_GRID,
    quality_model: str = "linear",
    n_timed: int = 200,
) -> dict[str, Any]:
    """The MixLLM router with each encoder, side by side: held-out quality and routing time.

    Args:
        data: Routing data; split with each of ``seeds`` (80/20, as :func:`run_bench`).
        encoders: name → (encoder, uncached twin for timing). The first is the baseline the others
            are compared with, per seed (paired differences in points, mean ± standard error).
        seeds: Split seeds; quality is reported per seed and averaged.
        reference: Reference LLM of "% quality at 25% cost" (default: the priciest on test).
        lambdas, quality_model: As in :func:`run_bench`.
        n_timed: Test queries timed per stage (on the first seed's router).

    Returns:
        ``{"seeds", "reference_llm", "encoders": {name: {"config", "per_seed", "mean",
        "timing", "diff_vs_baseline"}}}``; AIQ in points (× 100).
    """
    rows: dict[str, Any] = {}
    ref_name = reference
    for name, (encoder, timed) in encoders.items():
        per_seed: dict[int, dict[str, float]] = {}
        timing: dict[str, Any] | None = None
        for seed in seeds:
            train, test = data.train_test_split(seed=seed)
            router = MixLLMRouter(encoder=encoder, quality_model=quality_model, seed=seed)
            router.fit(train)  # an encoder with a corpus part: a copy adapted to this split
            X = np.asarray(router.encoder.encode(test.queries), dtype=np.float32)
            run, _, _ = _mixllm_run(router, X, test, lambdas)
            _score_run(run, test)
            ref_name, ref_cost, ref_q, max_cost = _reference(test, reference)
            m = _router_metrics(run, ref_cost, ref_q, max_cost)
            per_seed[seed] = {
                "aiq_x100": 100 * m["aiq"],
                "q_pct_at_25": m["quality_pct_at_25pct_cost"],
            }
            if timing is None:
                adapt_to(timed, train.queries)
                timing = _timings(router, test.queries, timed, n_timed)
        if hasattr(encoder, "save_cache"):
            encoder.save_cache()
        rows[name] = {
            "config": encoder.get_config(),
            "per_seed": per_seed,
            "mean": {
                k: float(np.mean([v[k] for v in per_seed.values()]))
                for k in ("aiq_x100", "q_pct_at_25")
            },
            "timing": timing,
        }
    base: dict[str, Any] = next(iter(rows.values()), {})
    for row in rows.values():
        diffs = {
            k: np.array([row["per_seed"][s][k] - base["per_seed"][s][k] for s in seeds])
            for k in ("aiq_x100", "q_pct_at_25")
        }
        row["diff_vs_baseline"] = {
            k: {
                "mean": float(d.mean()),
                "se": float(d.std(ddof=1) / np.sqrt(len(d))) if len(d) > 1 else 0.0,
                "first_seed": float(d[0]),
            }
            for k, d in diffs.items()
        }
    return {"seeds": list(seeds), "reference_llm": ref_name, "encoders": rows}


def format_encoder_table(result: dict[str, Any]) -> str:
    """:func:`compare_encoders`'s result as a fixed-width table (times in ms)."""
    names = list(result["encoders"])
    s0 = result["seeds"][0]
    lines = [
        f"encoders vs {names[0]} (quality: seed {s0} and mean over seeds {result['seeds']}; "
        f"Δ = mean paired difference ± s.e., points)",
        f"{'encoder':<14} {'encode p50/p99':>15} {'predict p50':>11} {'decide p50':>10} "
        f"{'route p50/p99':>15} {'batch q/s':>9} {'AIQ s0':>7} {'Q%25 s0':>8} {'AIQ mean':>8} "
        f"{'Q%25 mean':>9} {'ΔAIQ':>12} {'ΔQ%25':>12}",
    ]
    for name, row in result["encoders"].items():
        t, q, d = row["timing"], row["per_seed"][s0], row["diff_vs_baseline"]
        lines.append(
            f"{name:<14} {t['embedding']['p50_ms']:>7.2f}/{t['embedding']['p99_ms']:<7.2f} "
            f"{t['predict']['p50_ms']:>11.3f} {t['decide']['p50_ms']:>10.3f} "
            f"{t['route_with_embedding']['p50_ms']:>7.2f}/{t['route_with_embedding']['p99_ms']:<7.2f} "
            f"{t['batch_throughput_qps_with_embedding']:>9.0f} {q['aiq_x100']:>7.2f} "
            f"{q['q_pct_at_25']:>8.2f} {row['mean']['aiq_x100']:>8.2f} "
            f"{row['mean']['q_pct_at_25']:>9.2f} "
            f"{d['aiq_x100']['mean']:>+6.2f}±{d['aiq_x100']['se']:<5.2f} "
            f"{d['q_pct_at_25']['mean']:>+6.2f}±{d['q_pct_at_25']['se']:<5.2f}"
        )
    return "\n".join(lines)


def _stage_times(
    router: MixLLMRouter, texts: Sequence[str]
) -> tuple[list[float], list[float], list[float]]:
    """Seconds each query spends in the three routing stages, one query at a time: its features
    (``router.features``: the encoder, or its cache), prediction (every LLM's quality, cost and
    uncertainty) and the decision."""
    names = router.llms
    encode: list[float] = []
    predict: list[float] = []
    decide: list[float] = []
    for t in texts:
        t0 = time.perf_counter()
        X, F = router.features([t])
        t1 = time.perf_counter()
        _, _, Q, C, U = router._predict_all(X, F)
        t2 = time.perf_counter()
        router._decide(
            names, Q[0], C[0], U[0], router.policy, router.c_ref(), frozenset(), estimate_tokens(t)
        )
        t3 = time.perf_counter()
        encode.append(t1 - t0)
        predict.append(t2 - t1)
        decide.append(t3 - t2)
    return encode, predict, decide


def _timing_twin(router_encoder: QueryEncoder, timing_encoder: QueryEncoder) -> QueryEncoder:
    """The uncached timing encoder in the router's representation: for a router with tag
    features, a copy of its :class:`~mixllm_core.encoders.TaggedEncoder` (same tagger, same
    dimensions) over the timing encoder, so swapping it in changes where the embeddings come
    from, never what the predictors read."""
    from ..encoders import TaggedEncoder

    if isinstance(router_encoder, TaggedEncoder) and router_encoder.base is not timing_encoder:
        twin = copy.copy(router_encoder)
        twin.base = timing_encoder
        return twin
    return timing_encoder


def _timings(
    router: MixLLMRouter, texts: Sequence[str], timing_encoder: QueryEncoder, n_timed: int
) -> dict[str, Any]:
    """Per-stage routing time per query (embedding measured on an uncached encoder, wrapped in
    the router's tag features when it has them)."""
    timing_encoder = _timing_twin(router.encoder, timing_encoder)
    texts = list(texts)[:n_timed]
    encode, predict, decide = _stage_times(router, texts)  # encode: the cache lookup here
    embed = _fixed_encoder_time(timing_encoder, texts[: max(1, n_timed // 4)])
    router.route_batch(texts[:8])  # warm-up: first-call allocations are not throughput
    t0 = time.perf_counter()
    router.route_batch(texts)
    batch_s = time.perf_counter() - t0
    # route_batch embedding every query: texts the timing encoder has not seen (no cache hits)
    fresh = texts[len(embed) :][:BATCH_TIMED] or texts[:BATCH_TIMED]
    encoder, router.encoder = router.encoder, timing_encoder
    try:
        t0 = time.perf_counter()
        router.route_batch(fresh)
        batch_embed_s = time.perf_counter() - t0
    finally:
        router.encoder = encoder

    def pct(a: Sequence[float] | np.ndarray) -> dict[str, float]:
        return {
            "p50_ms": 1e3 * float(np.percentile(a, 50)),
            "p99_ms": 1e3 * float(np.percentile(a, 99)),
        }

    no_embed = np.array(predict) + np.array(decide)
    with_embed = no_embed[: len(embed)] + embed
    return {
        "n_queries": len(texts),
        "cache_lookup": pct(encode),
        "predict": pct(predict),
        "decide": pct(decide),
        "route_without_embedding": pct(no_embed),
        "embedding": pct(embed),
        "route_with_embedding": pct(with_embed),
        "batch_throughput_qps_cached_embeddings": len(texts) / batch_s,
        "batch_throughput_qps_with_embedding": len(fresh) / batch_embed_s,
    }


def _write_decisions(path: Path, runs: Sequence[RouterRun], test: RoutingData) -> None:
    import pandas as pd

    frames = []
    for run in runs:
        for lam, idx in run.choices.items():
            frames.append(
                pd.DataFrame(
                    {
                        "router": run.name,
                        "lambda": "" if lam is None else repr(float(lam)),
                        "sample_id": test.sample_ids,
                        "model": [test.llms[i] for i in idx],
                    }
                )
            )
    pd.concat(frames, ignore_index=True).to_csv(path, index=False)


def _plot(path: Path, summary: dict[str, Any], title: str) -> None:
    """Every router's points, every single LLM in the legend, the legend outside the axes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(11, 6))
    singles = {k: v for k, v in summary["routers"].items() if k.startswith("single:")}
    for name, info in summary["routers"].items():
        if name in singles:
            continue
        pts = sorted((p["cost"], p["quality"]) for p in info["points"])
        xs, ys = zip(*pts)
        style = "o-" if len(pts) > 1 else "*"
        ax.plot(
            xs,
            ys,
            style,
            label=name,
            markersize=4 if len(pts) > 1 else 12,
            linewidth=2.5 if name == "mixllm" else 1.0,
        )
    colours = plt.get_cmap("tab20b")  # not the routers' tab10 colours
    for i, (name, info) in enumerate(singles.items()):
        p = info["points"][0]
        short = name.split(":", 1)[1].split("/")[-1]
        ax.scatter(
            p["cost"], p["quality"], marker="s", s=30, color=colours(i % 20), label=f"LLM: {short}"
        )
    ax.set_xscale("log")
    ax.set_xlabel("mean cost per query (USD, log scale)")
    ax.set_ylabel("mean quality")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    # outside the axes, so it never hides a point or a label
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)
    fig.tight_layout()
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)


def _notes(summary: dict[str, Any]) -> tuple[dict[str, str], list[str]]:
    """Footnote marks per router and the notes under the table: why a single LLM's AIQ (the
    priciest's above all) is what it is, why a router has no point at 25% of the reference's
    cost, and which routers beat mixllm."""
    routers, ref_cost = summary["routers"], summary["reference_cost"]
    ref = summary["reference_llm"]
    marks: dict[str, str] = {}
    notes: list[str] = []
    singles = [n for n in routers if n.startswith("single:")]
    if singles:
        priciest = max(singles, key=lambda n: routers[n]["points"][0]["cost"])
        for n in singles:
            marks[n] = "a"
        notes.append(
            "[a] A single LLM is one point. AIQ is the area under a router's cost-quality hull "
            "from cost 0 to the priciest LLM's mean cost, and a hull has no area left of its "
            "cheapest point, so one LLM scores its quality × (1 − its cost / the priciest's): "
            f"0 by construction for the priciest ({priciest.split(':', 1)[1]})."
        )
    late = {
        n: 100 * min(p["cost"] for p in r["points"]) / ref_cost
        for n, r in routers.items()
        if ref_cost > 0
        and r["quality_pct_at_25pct_cost"] == 0
        and min(p["cost"] for p in r["points"]) > 0.25 * ref_cost
    }
    if late:
        for n in late:
            marks[n] = marks.get(n, "") + "b"
        shown = ", ".join(f"{n.removeprefix('single:')} {pct:.0f}%" for n, pct in late.items())
        notes.append(
            f"[b] Q% @25% is 0: the router's cheapest point costs more than 25% of {ref}'s cost, "
            f"so it has no point there (cheapest point, % of {ref}'s cost: {shown})."
            + (
                " Random choice is one point: the mean cost of a uniform pick."
                if "random" in late
                else ""
            )
        )
    if "mixllm" in routers:
        mine = routers["mixllm"]["aiq"]
        ahead = sorted(
            (
                (n, r["aiq"])
                for n, r in routers.items()
                if n not in ("mixllm", "oracle") and r["aiq"] > mine
            ),
            key=lambda kv: -kv[1],
        )
        if ahead:
            shown = ", ".join(f"{n} ({100 * (a - mine):+.2f} points)" for n, a in ahead)
            notes.append(
                f"mixllm loses here: its AIQ {mine:.4f} is below {shown} on these "
                f"{summary['n_test']} test rows. One split is noisy; `mixllm bench --cv 5` gives "
                "mean ± s.e. and paired differences over folds."
            )
        else:
            notes.append(f"mixllm has the highest AIQ ({mine:.4f}) of every router but the oracle.")
    return marks, notes


def format_table(summary: dict[str, Any]) -> str:
    """The summary as a fixed-width table (routers by AIQ)."""
    ref = summary["reference_llm"]
    lines = [
        f"data: {summary['data']}  ({summary['n_train']} train / {summary['n_test']} test, "
        f"{len(summary['llms'])} LLMs{', SYNTHETIC' if summary['synthetic'] else ''})",
        f"reference: {ref}  quality {summary['reference_quality']:.4f}  cost {summary['reference_cost']:.3e} USD",
        f"{'router':<42} {'AIQ':>7} {'Q% @25%cost':>12} {'cost% for 97%Q':>15} {'max Q%':>7}",
    ]
    rows = sorted(summary["routers"].items(), key=lambda kv: -kv[1]["aiq"])
    marks, notes = _notes(summary)
    for name, r in rows:
        reach = (
            "-" if r["cost_pct_to_reach_97pct"] is None else f"{r['cost_pct_to_reach_97pct']:.2f}"
        )
        label = f"{name} [{marks[name]}]" if name in marks else name
        lines.append(
            f"{label:<42} {r['aiq']:>7.4f} {r['quality_pct_at_25pct_cost']:>12.2f} "
            f"{reach:>15} {r['max_quality_pct']:>7.2f}"
        )
    lines += notes
    t = summary.get("timing", {})
    if t:
        lines.append(
            "routing time per query: without embedding p50 {:.3f} ms / p99 {:.3f} ms; embedding p50 "
            "{:.1f} ms / p99 {:.1f} ms; with embedding p50 {:.1f} ms / p99 {:.1f} ms; batch {:.0f} q/s "
            "embedding included ({:.0f} q/s on cached embeddings); training {:.2f} s".format(
                t["route_without_embedding"]["p50_ms"],
                t["route_without_embedding"]["p99_ms"],
                t["embedding"]["p50_ms"],
                t["embedding"]["p99_ms"],
                t["route_with_embedding"]["p50_ms"],
                t["route_with_embedding"]["p99_ms"],
                t["batch_throughput_qps_with_embedding"],
                t["batch_throughput_qps_cached_embeddings"],
                summary["training_time_s"],
            )
        )
    return "\n".join(lines)


def cached_encoder(data: RoutingData, cache_dir: str | Path | None = None) -> SentenceEncoder:
    """The default encoder with an on-disk embedding cache per data source."""
    cache = Path(cache_dir or default_cache_dir()) / f"embeddings-{data.source}.npz"
    return SentenceEncoder(cache_path=cache)


def run_bench(
    data: RoutingData | str | Path | None,
    out: str | Path,
    *,
    lambdas: Sequence[float] = LAMBDA_GRID,
    encoder: QueryEncoder | None = None,
    timing_encoder: QueryEncoder | None = None,
    make_router: Callable[[], MixLLMRouter] | None = None,
    reference: str | None = None,
    seed: int = 0,
    n_timed: int = 200,
    show_progress: bool = True,
    cache_dir: str | Path | None = None,
    embedding: str = "plain",
    online: bool = False,
    stream_lam: float = 5.0,
    stream_alpha: float = 0.05,
    pool_change: str | None = None,
) -> BenchResult:
    """Run the benchmark and write its outputs into ``out``; returns the summary."""
    from ..errors import check_choice

    check_choice("embedding", embedding, ("plain", "tags"))
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if data is None:
        data = make_synthetic_world(seed=seed)
    elif not isinstance(data, RoutingData):
        data = load_routing_data(data)
    train, test = data.train_test_split(seed=seed)
    if encoder is None:
        encoder = cached_encoder(data, cache_dir)
    for enc in (encoder, timing_encoder):  # encoders with a corpus part learn it from train only
        adapt_to(enc, train.queries)
    bar = _progress(5, "bench", show_progress)
    bar.set_postfix_str("embedding queries")
    t0 = time.perf_counter()
    Xtr = encoder.encode(train.queries, show_progress=show_progress)
    Xte = encoder.encode(test.queries, show_progress=show_progress)
    embed_s = time.perf_counter() - t0
    if hasattr(encoder, "save_cache"):
        encoder.save_cache()
    bar.update()
    bar.set_postfix_str("training mixllm")
    t0 = time.perf_counter()
    router_encoder: QueryEncoder = encoder
    if embedding == "tags":  # tag-enhanced representation (tags.py); baselines stay plain
        from ..encoders import TaggedEncoder

        router_encoder = TaggedEncoder(encoder, mode="tags", seed=seed).fit(
            train.queries, train.tasks, show_progress=show_progress
        )
    router = make_router() if make_router else MixLLMRouter(encoder=router_encoder, seed=seed)
    router.encoder = router_encoder
    router.fit(train)
    train_s = time.perf_counter() - t0
    bar.update()
    bar.set_postfix_str("routing test queries")
    Rte = router_encoder.transform(Xte) if embedding == "tags" else Xte  # type: ignore[attr-defined]
    Rte = np.asarray(Rte, dtype=np.float32)
    mix, c_ref, Fte = _mixllm_run(router, Rte, test, lambdas)
    bar.update()
    bar.set_postfix_str("baselines")
    runs = [mix, *_baseline_runs(train, test, Xtr, Xte, lambdas, c_ref, seed)]
    extra: dict[str, Any] = {}
    if online or pool_change:
        make = make_router or (lambda: MixLLMRouter(encoder=router_encoder, seed=seed))

        def fresh(alpha: float = stream_alpha) -> MixLLMRouter:
            r = make()
            r.encoder = router_encoder
            r.policy = r.maker.policy = replace(r.policy, alpha=alpha)
            return r

        replay = _Replay(
            router_encoder, train, test, Rte, Fte, lambdas, c_ref, stream_lam, seed, show_progress
        )
        if online:
            online_runs, extra["online"] = _online_runs(fresh, replay)
            runs += online_runs
        if pool_change:
            pool_runs, extra["pool_change"] = _pool_change_runs(
                lambda: fresh(POOL_ALPHA), replay, pool_change
            )
            runs += pool_runs
    for run in runs:
        _score_run(run, test)
    bar.update()
    bar.set_postfix_str("timing")
    ref, ref_cost, ref_q, max_cost = _reference(test, reference)
    timing = _timings(router, test.queries, timing_encoder or SentenceEncoder(), n_timed)
    bar.update()
    bar.close()
    summary: dict[str, Any] = {
        "data": data.source
        if data.source == "synthetic"
        else str(getattr(data, "path", data.source)),
        "synthetic": data.source == "synthetic",
        "n_train": len(train),
        "n_test": len(test),
        "llms": test.llms,
        "lambdas": list(lambdas),
        "reference_llm": ref,
        "reference_quality": ref_q,
        "reference_cost": ref_cost,
        "max_single_llm_cost": max_cost,
        "routers": {run.name: _router_metrics(run, ref_cost, ref_q, max_cost) for run in runs},
        "timing": timing,
        "training_time_s": train_s,
        "embedding_time_s": embed_s,
        "embedding": embedding,
        "router_config": {
            "quality_model": router.quality_model,
            "encoder": router.encoder.get_config(),
        },
        **extra,
    }
    _write_decisions(out / "decisions.csv", runs, test)
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    title = (
        f"{'SYNTHETIC data' if summary['synthetic'] else summary['data']}: quality vs cost "
        f"({len(test)} test rows); mixllm: {router.encoder.get_config().get('type', '?')} "
        f"encoder, {embedding} embedding, {router.quality_model} quality model"
    )
    _plot(out / "pareto.png", summary, title)
    return BenchResult(summary, runs, out)
