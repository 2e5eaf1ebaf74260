"""Routing time per stage and held-out quality, per query encoder, on RouterBench prompts.

For each encoder: a MixLLM router (default logistic quality model) is fitted on the train rows of the
RouterBench subset (11 LLMs) and timed on held-out prompts with the encoder's embedding cache
disabled, so every query pays a real forward pass:

- per stage, p50/p99 ms: ``encode`` (one prompt), ``predict`` (all 11 LLMs' quality, cost and
  uncertainty in one vectorised call), ``decide`` (constraints, scores, argmax), and
  ``route`` = ``router.route(prompt)`` end to end (embedding, prediction, decision, logging);
- ``route (cache hit)``: the same prompt routed again (the prompt-hash cache);
- batch throughput: ``router.route_batch`` over distinct prompts, queries/s;
- quality: the ``mixllm bench`` protocol (seeded 80/20 split, λ swept over ``LAMBDA_GRID``):
  AIQ × 100 and % of GPT-4's quality at 25% of its cost; at ``--seeds`` splits (seed 0 is what
  ``mixllm bench`` reports; the mean over seeds is less noisy).

Usage::

    nice -n 5 python benchmarks/encoder_speed.py --out encoder_speed.json
    python benchmarks/encoder_speed.py --encoders minilm static --seeds 0 1 2 3 4 --out x.json

MiniLM's embeddings for the quality pass are cached on disk (``--cache-dir``) as ``mixllm bench``
does; timings always use an uncached encoder.

``--per-query`` measures instead the default encoder's per-query path, the current implementation
against the reference one (``tokenizers`` for every prompt, ``np.unique``, per-part normalisation:
``mixllm_core.encoders.static._reference_embed``, what the encoder did before its fast path), in
the same run and interleaved prompt by prompt: ``encode([prompt])`` p50/p99 on distinct, never
seen prompts (cache off) of three lengths (short, 500 characters, the whole 1,000-character
window), batch encoding per prompt, and ``router.route(prompt)`` p50 with 11 LLMs; it checks that
both give the same vectors (max abs difference)::

    nice -n 10 python benchmarks/encoder_speed.py --per-query --out encoder_per_query.json
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # measure this checkout, not another installed copy
    sys.path.insert(0, str(ROOT))

from mixllm_core.data import RoutingData, load_routing_data  # noqa: E402
from mixllm_core.encoders import OnnxEncoder, QueryEncoder, SentenceEncoder, StaticEncoder  # noqa: E402
from mixllm_core.encoders.static import _reference_embed  # noqa: E402
from mixllm_core.experiments.bench import (  # noqa: E402
    LAMBDA_GRID,
    _mixllm_run,
    _reference,
    _router_metrics,
    _score_run,
    _stage_times,
    adapt_to,
)
from mixllm_core.router import MixLLMRouter  # noqa: E402

DATA = (
    Path(__file__).resolve().parents[2]
    / "shared"
    / "data"
    / "routerbench_subset"
    / "routerbench_arc_mbpp_winogrande.parquet"
)

#: name → factory(cache_size, cache_dir); cache_size 0 gives the uncached timing copy.
ENCODERS: dict[str, Callable[[int, Path], QueryEncoder]] = {
    "minilm": lambda n, d: SentenceEncoder(cache_size=n),
    "minilm-64tok": lambda n, d: SentenceEncoder(max_seq_length=64, cache_size=n),
    "minilm-128tok": lambda n, d: SentenceEncoder(max_seq_length=128, cache_size=n),
    "onnx-fp32-128tok": lambda n, d: OnnxEncoder(quantize=False, cache_size=n, cache_dir=d),
    "onnx-fp32-64tok": lambda n, d: OnnxEncoder(
        quantize=False, max_seq_length=64, cache_size=n, cache_dir=d
    ),
    "onnx-int8-128tok": lambda n, d: OnnxEncoder(quantize=True, cache_size=n, cache_dir=d),
    "onnx-int8-64tok": lambda n, d: OnnxEncoder(
        quantize=True, max_seq_length=64, cache_size=n, cache_dir=d
    ),
    "static": lambda n, d: StaticEncoder(cache_size=n, cache_dir=d),  # table + corpus part
    "static-plain": lambda n, d: StaticEncoder(lsa_dims=0, cache_size=n, cache_dir=d),
    "static-pca256": lambda n, d: StaticEncoder(
        pca_dims=256, lsa_dims=0, cache_size=n, cache_dir=d
    ),
    "static-whole-prompt": lambda n, d: StaticEncoder(
        max_chars=None, max_seq_length=4096, lsa_dims=0, cache_size=n, cache_dir=d
    ),
}


def pct(values: Sequence[float]) -> dict[str, float]:
    a = 1e3 * np.asarray(values)
    return {"p50_ms": float(np.percentile(a, 50)), "p99_ms": float(np.percentile(a, 99))}


def quality(encoder: QueryEncoder, data: RoutingData, seed: int) -> dict[str, float]:
    """AIQ and Q% at 25% cost of the MixLLM router, as ``mixllm bench`` computes them."""
    train, test = data.train_test_split(seed=seed)
    router = MixLLMRouter(encoder=encoder, seed=seed).fit(train)  # adapts a corpus part to train
    run, _, _ = _mixllm_run(
        router, np.asarray(router.encoder.encode(test.queries), np.float32), test, LAMBDA_GRID
    )
    _score_run(run, test)
    _, ref_cost, ref_q, max_cost = _reference(test, None)
    m = _router_metrics(run, ref_cost, ref_q, max_cost)
    return {"aiq_x100": 100 * m["aiq"], "quality_pct_at_25pct_cost": m["quality_pct_at_25pct_cost"]}


def timings(router: MixLLMRouter, texts: Sequence[str], n_batch: int) -> dict[str, Any]:
    """Per-stage times on an uncached encoder (every prompt is embedded)."""
    router.route(texts[0])  # warm-up: lazy load, first allocations
    enc, pred, dec = _stage_times(router, texts)  # encode: a forward pass (no cache)
    route, hit = [], []
    for t in texts:
        t0 = time.perf_counter()
        router.route(t)
        route.append(time.perf_counter() - t0)
    cached = router.encoder
    router.encoder = cached_twin(cached)
    for t in texts[:50]:
        router.route(t)
        t0 = time.perf_counter()
        router.route(t)
        hit.append(time.perf_counter() - t0)
    router.encoder = cached
    batch = list(texts)[:n_batch]
    t0 = time.perf_counter()
    router.route_batch(batch)
    batch_s = time.perf_counter() - t0
    return {
        "n_timed": len(texts),
        "encode": pct(enc),
        "predict": pct(pred),
        "decide": pct(dec),
        "route": pct(route),
        "route_cache_hit": pct(hit),
        "batch_qps": len(batch) / batch_s,
        "batch_size": len(batch),
    }


def cached_twin(encoder: Any) -> Any:
    """The same encoder with its prompt-hash cache on (shares the loaded model)."""
    import copy

    twin = copy.copy(encoder)
    twin.cache_size = 1000
    twin._cache = type(encoder._cache)()
    return twin


def run(
    names: Sequence[str],
    seeds: Sequence[int],
    n_timed: int,
    n_batch: int,
    cache_dir: Path,
    with_quality: bool,
) -> dict[str, Any]:
    data = load_routing_data(DATA)
    train, test = data.train_test_split(seed=0)
    texts = test.queries[:n_timed]
    rows: dict[str, Any] = {}
    for name in names:
        print(f"-- {name}", flush=True)
        row: dict[str, Any] = {}
        t0 = time.perf_counter()
        timed_enc = ENCODERS[name](0, cache_dir)
        _ = timed_enc.dim  # builds/loads the artefact once
        row["load_or_build_s"] = time.perf_counter() - t0
        row["config"] = timed_enc.get_config()
        router = MixLLMRouter(encoder=timed_enc, seed=0)
        # fit on embeddings computed once (cached encoder), then time with the uncached one
        q_enc: QueryEncoder = (
            SentenceEncoder(
                cache_path=cache_dir / "embeddings-minilm-bench.npz",
                **{k: v for k, v in timed_enc.get_config().items() if k not in ("type", "model")},
            )
            if name.startswith("minilm")
            else ENCODERS[name](1_000_000, cache_dir)
        )
        router.encoder = q_enc
        router.fit(train)  # router.encoder: q_enc, or its copy adapted to train
        if hasattr(q_enc, "save_cache"):
            q_enc.save_cache()
        adapt_to(timed_enc, train.queries)  # the timed copy computes the same corpus part
        router.encoder = timed_enc
        row["timing"] = timings(router, texts, n_batch)
        if with_quality:
            per_seed = {s: quality(q_enc, data, s) for s in seeds}
            if hasattr(q_enc, "save_cache"):
                q_enc.save_cache()
            row["quality"] = {
                "per_seed": per_seed,
                "seed0": per_seed.get(0, next(iter(per_seed.values()))),
                "mean": {
                    k: float(np.mean([v[k] for v in per_seed.values()]))
                    for k in ("aiq_x100", "quality_pct_at_25pct_cost")
                },
            }
        rows[name] = row
        print(format_row(name, row), flush=True)
    return {
        "data": str(DATA),
        "n_llms": len(data.llms),
        "seeds": list(seeds),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "loadavg": os.getloadavg(),
        },
        "encoders": rows,
    }


HEADER = (
    f"{'encoder':<20} {'encode p50/p99':>15} {'predict p50':>11} {'decide p50':>10} "
    f"{'route p50/p99 ms':>17} {'hit p50':>8} {'batch q/s':>9} {'AIQ s0':>7} {'Q%25 s0':>8} "
    f"{'AIQ mean':>8} {'Q%25 mean':>9}"
)


def format_row(name: str, row: dict[str, Any]) -> str:
    t = row["timing"]
    q = row.get("quality")
    qs = (
        f"{q['seed0']['aiq_x100']:>7.2f} {q['seed0']['quality_pct_at_25pct_cost']:>8.2f} "
        f"{q['mean']['aiq_x100']:>8.2f} {q['mean']['quality_pct_at_25pct_cost']:>9.2f}"
        if q
        else f"{'-':>7} {'-':>8} {'-':>8} {'-':>9}"
    )
    return (
        f"{name:<20} {t['encode']['p50_ms']:>7.2f}/{t['encode']['p99_ms']:<7.2f} "
        f"{t['predict']['p50_ms']:>11.3f} {t['decide']['p50_ms']:>10.3f} "
        f"{t['route']['p50_ms']:>8.2f}/{t['route']['p99_ms']:<8.2f} "
        f"{t['route_cache_hit']['p50_ms']:>8.3f} {t['batch_qps']:>9.0f} {qs}"
    )


# ------------------------------------------------------------------ --per-query: old vs new
class _ReferenceStatic(StaticEncoder):
    """The default encoder with the reference per-query path (as before its fast path)."""

    def _embed(self, texts: list[str]) -> np.ndarray:
        return _reference_embed(self, texts)


def _per_query_prompts(n: int) -> tuple[str, list[str], RoutingData]:
    """(source, distinct held-out prompts, training data with 11 LLMs)."""
    if DATA.exists():
        data = load_routing_data(DATA)
        train, test = data.train_test_split(seed=0)
        return "routerbench", list(dict.fromkeys(test.queries)), train
    from scaling import make_world

    return "synthetic", list(make_world(n, 11, seed=1).queries), make_world(2000, 11, seed=0)


def _interleaved(
    old: Callable[[Any], Any], new: Callable[[Any], Any], items: Sequence[Any]
) -> dict[str, Any]:
    """Per-item seconds of ``old`` and ``new``, alternating which runs first."""
    t_old, t_new = [], []
    for i, item in enumerate(items):
        for fn, out in ((old, t_old), (new, t_new)) if i % 2 else ((new, t_new), (old, t_old)):
            t0 = time.perf_counter()
            fn(item)
            out.append(time.perf_counter() - t0)
    o, w = pct(t_old), pct(t_new)
    return {"old": o, "new": w, "ratio_p50": o["p50_ms"] / w["p50_ms"], "n": len(items)}


def per_query(n_timed: int, n_batch: int) -> dict[str, Any]:
    source, prompts, train = _per_query_prompts(3 * n_timed + n_batch + 100)
    new = StaticEncoder(cache_size=0).adapt(train.queries)
    old = _ReferenceStatic(cache_size=0).adapt(train.queries)
    short = [q for q in prompts if len(q) < 100]
    mid = [q[:500] for q in prompts if len(q) >= 500]
    full = [q for q in prompts if len(q) >= new.max_chars]  # type: ignore[operator]
    rest = [q for q in prompts if 100 <= len(q) < 500]
    if len(short) < 20:  # a data set without short prompts: make some from the first words
        short = list(dict.fromkeys(" ".join(q.split()[:8]) for q in prompts))
    rows: dict[str, Any] = {}
    vectors_old, vectors_new = [], []
    for name, texts in (
        ("short (<100 chars)", short),
        ("500 chars", mid),
        ("window (1000 chars)", full),
        ("100-500 chars", rest),
    ):
        texts = texts[:n_timed]
        if not texts:
            continue
        new.encode(texts[:1]), old.encode(texts[:1])  # warm-up
        row = _interleaved(lambda q: old.encode([q]), lambda q: new.encode([q]), texts)
        row["median_chars"] = float(np.median([len(q) for q in texts]))
        rows[name] = row
        vectors_old.append(old.encode(texts))
        vectors_new.append(new.encode(texts))
    batch = prompts[-n_batch:]
    bo = _interleaved(old.encode, new.encode, [batch] * 3)
    for k in ("old", "new"):
        bo[k] = {m: v / len(batch) for m, v in bo[k].items()}  # per prompt
    rows[f"batch of {len(batch)} (per prompt)"] = bo
    max_diff = float(np.abs(np.vstack(vectors_old) - np.vstack(vectors_new)).max())
    # end to end: two routers fitted alike (the encoders are already adapted to train)
    r_old = MixLLMRouter(encoder=old, seed=0).fit(train)
    r_new = MixLLMRouter(encoder=new, seed=0).fit(train)
    routed = [q for q in prompts[:n_timed] if q not in set(batch)]
    r_old.route(routed[0]), r_new.route(routed[0])  # warm-up
    rows["route (end to end)"] = _interleaved(r_old.route, r_new.route, routed[1:])
    return {
        "mode": "per-query",
        "prompts": source,
        "n_llms": len(train.llms),
        "encoder": new.get_config(),
        "max_abs_diff_old_new": max_diff,
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "loadavg": os.getloadavg(),
        },
        "rows": rows,
    }


def format_per_query(result: dict[str, Any]) -> str:
    lines = [
        f"default encoder per query, old (reference path) vs new, prompts: {result['prompts']}, "
        f"{result['n_llms']} LLMs, max |old - new| = {result['max_abs_diff_old_new']:.1e}",
        f"{'case':<30} {'n':>4} {'old p50/p99 ms':>16} {'new p50/p99 ms':>16} {'old/new p50':>11}",
    ]
    for name, r in result["rows"].items():
        o, w = r["old"], r["new"]
        lines.append(
            f"{name:<30} {r['n']:>4} {o['p50_ms']:>7.3f}/{o['p99_ms']:<8.3f} "
            f"{w['p50_ms']:>7.3f}/{w['p99_ms']:<8.3f} {r['ratio_p50']:>11.2f}"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument(
        "--encoders",
        nargs="+",
        default=["minilm", "onnx-fp32-64tok", "static"],
        choices=sorted(ENCODERS),
    )
    p.add_argument("--seeds", nargs="+", type=int, default=[0])
    p.add_argument("--n-timed", type=int, default=200)
    p.add_argument("--n-batch", type=int, default=256)
    p.add_argument("--no-quality", action="store_true", help="timings only")
    p.add_argument(
        "--per-query",
        action="store_true",
        help="the default encoder's per-query path, old vs new (see the module docstring)",
    )
    p.add_argument(
        "--cache-dir",
        type=Path,
        default=None,
        help="artefacts and MiniLM's embedding cache (default ~/.cache/mixllm)",
    )
    p.add_argument("--out", type=Path, required=True, help="JSON output path")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from mixllm_core.encoders.base import default_cache_dir

    cache_dir = args.cache_dir or default_cache_dir()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    if args.per_query:
        pq = per_query(args.n_timed, args.n_batch)
        print(format_per_query(pq))
        args.out.write_text(json.dumps(pq, indent=1))
        print(f"wrote {args.out}")
        return
    print(HEADER, flush=True)
    result = run(
        args.encoders, args.seeds, args.n_timed, args.n_batch, cache_dir, not args.no_quality
    )
    print("\n" + HEADER)
    for name, row in result["encoders"].items():
        print(format_row(name, row))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
