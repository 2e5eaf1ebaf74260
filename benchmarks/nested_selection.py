"""Nested cross-validation of how the defaults are chosen (the selection step itself).

The default embedding was chosen with a written rule applied to plain CV tables on three data sets
(docs/dev/results.md, "Choosing the default embedding on three data sets and two protocols"), and
the other defaults (the logistic model's C, the static encoder's ``lsa_dims``, the quality model)
were confirmed by the same rule on plain CV tables ("The other defaults, cross-validated on three
sets"). A choice made on the same folds it is scored on is selection-biased; this script measures
by how much, with every default's alternatives among one set of candidates: the four embeddings
(``static``, ``tags``, ``minilm``, ``minilm-tags``) and any ``cv_variants.py`` variant name
(``tags-C0.25``, ``tags-lsa32``, ``tags-knn``, ...; built by its ``variant()``). For each outer
fold index ``k`` (K-fold, one repeat, the bench's own folds: stratified by task, near-duplicates
together):

1. on every data set, an inner ``--inner-k``-fold CV over the outer training part scores every
   candidate (random folds, and the same fits scored with a uniform task mix);
2. the rule, pooled over the data sets for this ``k``, picks one candidate (:func:`select`);
3. the picked candidate, refitted on each set's outer training part, is scored on its outer test
   part. Its scores over the outer folds are the nested estimate of "our selection procedure".

Every candidate is also fitted on every outer fold (that is step 3's refit for whichever is
picked), so the table shows each candidate's plain outer-fold score beside the nested one, and
the nested estimate minus that of ``tags``, the default the plain CV tables chose (when ``tags``
is among ``--candidates``; the incumbent always is, the other candidates may be left out).

The rule (the written one; the incumbent is the static encoder with plain features): a candidate
replaces it only if (1) its paired Δ AIQ is ≥ −1 s.e. on every set under both scorings, (2) the
mean Δ over the sets is > 2 × its s.e. (√Σ s.e.ᵢ² / n_sets) under both scorings, and (3) routing
p50 stays ≤ 1 ms. (3) is not measured here but taken from the timing benchmarks
(docs/dev/results.md, docs/dev/speed.md): the static encoder and tag features pass it, MiniLM
(27–50 ms per query on a quiet CPU) does not; of the variants, C, ``lsa_dims`` and the tag weight
change no routing cost and pass, while the other quality models fail it (route p50 with 11 LLMs
and 2,000 training rows, ``benchmarks/quality_model_timing.py``, same run as the logistic model:
rf 241 ms vs 1.20 ms; knn 1.14 ms and mlp 3.80 ms vs 0.80 ms). Among several candidates that
pass, the one with the largest pooled Δ (mean of the two scorings) is picked. The same selection
without (3) ("quality only") is reported too. (1) and (2) are ``cv_rule.py``'s
(:func:`cv_rule.quality_conditions`), so both scripts apply one rule.

Usage (MiniLM embeddings are cached per text under ``$MIXLLM_CACHE_DIR``)::

    export MIXLLM_CACHE_DIR=/tmp/mixcache
    OMP_NUM_THREADS=1 nice -n 10 env PYTHONPATH=. python benchmarks/nested_selection.py \\
        --out docs/dev/nested-selection.json
    # every default at once: the embeddings and the variants of C, lsa_dims and the model
    OMP_NUM_THREADS=1 nice -n 10 env PYTHONPATH=. python benchmarks/nested_selection.py \\
        --candidates static tags minilm minilm-tags tags-C0.25 tags-C1 tags-lsa32 tags-knn \\
        --out nested-all.json

Prints Markdown tables and writes JSON (partial results after every step). Runs over disjoint
``--sets`` can be merged, and the selection made over all of them, with ``--combine A.json B.json``.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from cv_rule import pool, quality_conditions  # type: ignore[import-not-found]
from cv_variants import parse_variant, variant  # type: ignore[import-not-found]

from mixllm_core import MixLLMRouter
from mixllm_core.data import RoutingData, load_routing_data
from mixllm_core.encoders import QueryEncoder, StaticEncoder, TaggedEncoder
from mixllm_core.experiments.bench import cached_encoder
from mixllm_core.experiments.cv import (
    CVReport,
    Fold,
    RouterFactory,
    _stats,
    cv_folds,
    mixllm_router,
    paired_difference,
    run_cv,
)

DATA = "../shared/data"
SETS = {
    "routerbench": (f"{DATA}/routerbench_subset/routerbench_arc_mbpp_winogrande.parquet", None),
    "nim": (
        f"{DATA}/llmrouter_nim/llmrouter_dcrouter_scores.parquet",
        "llama-3.1-nemotron-51b-instruct",
    ),
    "routerarena": (f"{DATA}/routerarena_sub10/routerarena_sub10_cached_results.parquet", None),
}
CANDIDATES = ("static", "tags", "minilm", "minilm-tags")
INCUMBENT = "static"
#: The default the plain CV tables chose; the nested estimate is reported minus its score.
CHOSEN = "tags"
#: Rule (3), routing p50 ≤ 1 ms with 11 LLMs, as measured by the timing benchmarks (not here).
MEETS_LATENCY = {"static": True, "tags": True, "minilm": False, "minilm-tags": False}
#: Quality models whose route p50 with 11 LLMs is over 1 ms (``quality_model_timing.py``): a
#: ``cv_variants.py`` variant with one of them fails rule (3); C, lsa and w cost nothing at routing.
SLOW_MODELS = {"rf": "241 ms", "mlp": "3.80 ms", "knn": "1.14 ms"}
SCORINGS = ("metrics", "metrics_task_mix")
METRIC = "aiq_x100"


def meets_latency(name: str) -> bool:
    """Rule (3) for a candidate: :data:`MEETS_LATENCY` for the four embeddings; a
    ``cv_variants.py`` variant passes unless its quality model is one of :data:`SLOW_MODELS`
    (an unknown name exits, with ``parse_variant``'s message)."""
    if name in MEETS_LATENCY:
        return MEETS_LATENCY[name]
    return parse_variant(name)["model"] not in SLOW_MODELS


def candidate(name: str, minilm: QueryEncoder) -> RouterFactory:
    """A router factory: the static encoder of the fold (adapted to its training rows) or MiniLM,
    with plain features or tag features fitted on the fold's training rows; any name but the four
    of :data:`CANDIDATES` is a ``cv_variants.py`` variant, built by its ``variant()``."""
    if name not in CANDIDATES:
        return variant(name)  # type: ignore[no-any-return]

    def make(fold: Fold) -> MixLLMRouter:
        enc: QueryEncoder = minilm if name.startswith("minilm") else fold.encoder
        if name.endswith("tags"):
            enc = TaggedEncoder(enc, mode="tags", seed=fold.seed).fit(
                fold.train.queries, fold.train.tasks, show_progress=False
            )
        return MixLLMRouter(encoder=enc, seed=fold.seed)

    return mixllm_router(make)


def paired(report: CVReport, scoring: str, name: str) -> dict[str, Any]:
    """Mean and Nadeau–Bengio s.e. of ``name`` − incumbent AIQ, paired per fold (the report's
    own paired differences, taken from ``name``)."""
    return replace(report, baseline=name, scoring=scoring).differences()[INCUMBENT][METRIC]


def mean_se(values: Sequence[float | None], ratio: float) -> dict[str, float]:
    """Mean and Nadeau–Bengio s.e. of per-fold values, as ``CVReport.summary`` computes them (a
    fold without a value left out); the JSON keeps these two."""
    stats = _stats(np.array(values, dtype=object), ratio)
    return {"mean": stats["mean"], "se": stats["se"]}


def paired_mean_se(
    a: Sequence[float | None], b: Sequence[float | None], ratio: float
) -> dict[str, float]:
    """Mean and Nadeau–Bengio s.e. of the per-fold differences ``a − b``, by the library's
    ``paired_difference`` (a fold where either is None left out)."""
    d = paired_difference(a, b, ratio)
    return {"mean": d["mean"], "se": d["se"]}


def select(
    deltas: Mapping[str, Mapping[str, Mapping[str, Mapping[str, Any]]]], latency: bool
) -> tuple[str, dict[str, Any]]:
    """Apply the rule to ``deltas[set][scoring][candidate] = {"mean", "se"}`` (candidate −
    incumbent; the candidates that were run, the same on every set and scoring):
    ``cv_rule.quality_conditions``, then the latency condition and the pick; returns the pick
    and, per candidate, which conditions it met."""
    sets = list(deltas)
    names = [set(deltas[s][sc]) for s in sets for sc in SCORINGS]
    if any(n != names[0] for n in names[1:]):
        raise SystemExit(f"the sets and scorings hold different candidates: {names}")
    run = list(deltas[sets[0]][SCORINGS[0]]) if sets else []
    out: dict[str, Any] = {}
    for name in run:
        if name == INCUMBENT:
            continue
        met = quality_conditions({sc: [deltas[s][sc][name] for s in sets] for sc in SCORINGS})
        fast = meets_latency(name) or not latency
        out[name] = {
            "no_harm": met["no_harm"],
            "pooled": met["pooled"],
            "gain": met["gain"],
            "latency": fast,
        }
    passing = [n for n, o in out.items() if o["no_harm"] and o["gain"] and o["latency"]]
    if not passing:
        return INCUMBENT, out
    score = {n: float(np.mean([p["mean"] for p in out[n]["pooled"].values()])) for n in passing}
    return max(passing, key=lambda n: score[n]), out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sets", nargs="+", default=list(SETS), choices=list(SETS))
    ap.add_argument(
        "--candidates",
        nargs="+",
        default=list(CANDIDATES),
        help=f"of {', '.join(CANDIDATES)} or cv_variants.py variants (tags-C0.25, tags-lsa32, ...)",
    )
    ap.add_argument("--outer-k", type=int, default=5)
    ap.add_argument("--inner-k", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="nested-selection.json")
    ap.add_argument(
        "--combine",
        nargs="+",
        default=None,
        metavar="JSON",
        help="fit nothing: combine the sets of earlier runs' JSON (same settings) and select",
    )
    args = ap.parse_args()
    if args.combine:
        combine(args.combine, Path(args.out))
        return
    if INCUMBENT not in args.candidates:
        raise SystemExit(f"--candidates must include the incumbent {INCUMBENT!r}")
    variants = [c for c in dict.fromkeys(args.candidates) if c not in CANDIDATES]
    cands = [c for c in CANDIDATES if c in args.candidates] + variants
    latency = {c: meets_latency(c) for c in cands}  # also checks every variant name
    out = Path(args.out)
    result: dict[str, Any] = {
        "settings": {
            "sets": args.sets,
            "candidates": cands,
            "outer_k": args.outer_k,
            "inner_k": args.inner_k,
            "seed": args.seed,
            "metric": METRIC,
            "task_mix": "uniform",
            "incumbent": INCUMBENT,
            "meets_latency_from_benchmarks": latency,
        },
        "sets": {},
    }

    def save() -> None:
        out.write_text(json.dumps(result, indent=1))

    static = StaticEncoder()
    for s in args.sets:
        run_set(s, cands, args, static, result["sets"], save)
    summarise(result)
    save()
    print(markdown(result))
    print(f"wrote {out}")


def compact_folds(report: Mapping[str, Any]) -> list[dict[str, Any]]:
    """A CV report's per-fold AIQ × 100 of every candidate under both scorings (all the JSON
    keeps of the inner and outer runs)."""
    return [
        {
            "fold": f["fold"],
            "n_train": f["n_train"],
            "n_test": f["n_test"],
            **{sc: {c: v[METRIC] for c, v in f[sc].items()} for sc in SCORINGS},
        }
        for f in report["folds"]
    ]


def combine(paths: Sequence[str], out: Path) -> None:
    """Merge runs over disjoint sets (same folds and candidates), then select and summarise."""
    runs = [json.loads(Path(p).read_text()) for p in paths]
    result = runs[0]
    for run in runs[1:]:
        for key in ("candidates", "outer_k", "inner_k", "seed"):
            if run["settings"][key] != result["settings"][key]:
                raise SystemExit(f"{key} differs between runs: {run['settings'][key]!r}")
        result["sets"].update(run["sets"])
    result["settings"]["sets"] = list(result["sets"])
    for entry in result["sets"].values():
        for inner in entry["inner"]:
            if "report" in inner:  # a run of an earlier version: keep the AIQ per fold only
                inner["folds"] = compact_folds(inner.pop("report"))
        if isinstance(entry["outer"], dict):
            entry["outer"] = compact_folds(entry["outer"])
    summarise(result)
    out.write_text(json.dumps(result, indent=1))
    print(markdown(result))
    print(f"wrote {out}")


def run_set(
    name: str,
    cands: Sequence[str],
    args: argparse.Namespace,
    static: StaticEncoder,
    into: dict[str, Any],
    save: Callable[[], None],
) -> None:
    """The outer CV of every candidate on one set, and the inner CV of every outer training
    part; into ``into[name]``, saving after each."""
    path, reference = SETS[name]
    data = load_routing_data(path)
    if data.split is not None and "test" in data.split:
        data = data.subset([i for i, x in enumerate(data.split) if x != "test"])
    if reference is None and data.cost is not None:  # the priciest, as the bench does
        reference = data.llms[int(np.argmax(data.cost.mean(axis=0)))]
    minilm = cached_encoder(data)
    minilm.encode(data.queries)  # every text once (from the disk cache when warm)
    minilm.save_cache()
    routers = {c: candidate(c, minilm) for c in cands}

    def cv(rows: RoutingData, k: int) -> CVReport:
        return run_cv(
            rows,
            routers,
            k,
            1,
            False,
            args.seed,
            encoder=static,
            reference=reference,
            baseline=INCUMBENT,
            task_mix="uniform",
        )

    t0 = time.perf_counter()
    outer = cv(data, args.outer_k)
    entry: dict[str, Any] = {
        "path": path,
        "reference": reference,
        "n_rows": len(data),
        "outer": compact_folds(outer.to_dict()),
        "inner": [],
        "seconds": {"outer": time.perf_counter() - t0, "inner": []},
    }
    into[name] = entry
    save()
    print(f"{name}: outer CV {entry['seconds']['outer']:.0f} s", flush=True)
    for split in cv_folds(data, args.outer_k, 1, seed=args.seed):
        t0 = time.perf_counter()
        train = data.subset(split.train)
        inner = cv(train, args.inner_k)
        entry["inner"].append(
            {
                "fold": split.fold,
                "n_rows": len(train),
                "delta": {
                    sc: {c: paired(inner, sc, c) for c in cands if c != INCUMBENT}
                    for sc in SCORINGS
                },
                "folds": compact_folds(inner.to_dict()),
            }
        )
        entry["seconds"]["inner"].append(time.perf_counter() - t0)
        save()
        secs = entry["seconds"]["inner"][-1]
        print(f"{name}: inner CV of outer fold {split.fold}: {secs:.0f} s", flush=True)


def summarise(result: dict[str, Any]) -> None:
    """Selections per outer fold and the nested / plain estimates per set, into ``result``."""
    sets = result["settings"]["sets"]
    cands = result["settings"]["candidates"]
    k = result["settings"]["outer_k"]
    selections = []
    for i in range(k):
        deltas = {s: result["sets"][s]["inner"][i]["delta"] for s in sets}
        pick, why = select(deltas, latency=True)
        pick_q, _ = select(deltas, latency=False)
        selections.append(
            {"fold": i, "selected": pick, "selected_quality_only": pick_q, "rule": why}
        )
    result["selections"] = selections
    for s in sets:
        folds = result["sets"][s]["outer"]
        ratio = float(np.mean([f["n_test"] / f["n_train"] for f in folds]))
        est: dict[str, Any] = {}
        for sc in SCORINGS:
            row = {c: mean_se([f[sc][c] for f in folds], ratio) for c in cands}
            for label, key in (
                ("nested", "selected"),
                ("nested_quality_only", "selected_quality_only"),
            ):
                picked = [f[sc][selections[f["fold"]][key]] for f in folds]
                row[label] = mean_se(picked, ratio)
                if CHOSEN in cands:
                    row[f"{label}_minus_{CHOSEN}"] = paired_mean_se(
                        picked, [f[sc][CHOSEN] for f in folds], ratio
                    )
            for c in cands:
                if c != INCUMBENT:
                    row[f"{c}_minus_{INCUMBENT}"] = paired_mean_se(
                        [f[sc][c] for f in folds], [f[sc][INCUMBENT] for f in folds], ratio
                    )
            scored = [c for c in cands if row[c]["mean"] is not None]
            row["best_candidate_by_outer_mean"] = max(scored, key=lambda c: row[c]["mean"])
            est[sc] = row
        result["sets"][s]["estimates"] = est
    keys = [f"{c}_minus_{INCUMBENT}" for c in cands if c != INCUMBENT]
    if CHOSEN in cands:
        keys += [f"nested_minus_{CHOSEN}", f"nested_quality_only_minus_{CHOSEN}"]
    result["pooled_over_sets"] = {
        sc: {key: pool([result["sets"][s]["estimates"][sc][key] for s in sets]) for key in keys}
        for sc in SCORINGS
    }


def _pm(x: Mapping[str, float], signed: bool = False) -> str:
    return f"{x['mean']:{'+' if signed else ''}.2f} ± {x['se']:.2f}"


def markdown(result: Mapping[str, Any]) -> str:
    sets = result["settings"]["sets"]
    cands = result["settings"]["candidates"]
    lines = [
        "| outer fold | selected (rule) | selected (quality only) | "
        + " | ".join(f"pooled Δ {c} (random / task mix)" for c in cands if c != INCUMBENT)
        + " |",
        "|---" * (3 + len(cands) - 1) + "|",
    ]
    for sel in result["selections"]:
        cells = []
        for c in cands:
            if c == INCUMBENT:
                continue
            p = sel["rule"][c]["pooled"]
            mark = "" if sel["rule"][c]["no_harm"] else " (harm)"
            cells.append(f"{_pm(p['metrics'], True)} / {_pm(p['metrics_task_mix'], True)}{mark}")
        lines.append(
            f"| {sel['fold']} | {sel['selected']} | {sel['selected_quality_only']} | "
            + " | ".join(cells)
            + " |"
        )
    lines.append("")
    for sc, title in zip(SCORINGS, ("random", "task mix uniform")):
        lines.append(f"AIQ × 100 on the outer test folds, {title}:")
        lines.append("")
        chosen = CHOSEN in cands
        minus = (f"nested_minus_{CHOSEN}", f"nested_quality_only_minus_{CHOSEN}") if chosen else ()
        heads = [f"rule − {CHOSEN}", f"quality only − {CHOSEN}"] if chosen else []
        lines.append(
            "| "
            + " | ".join(["set", "nested: the rule", "nested: quality only", *cands, *heads])
            + " |"
        )
        lines.append("|---" * (3 + len(cands) + len(heads)) + "|")
        for s in sets:
            e = result["sets"][s]["estimates"][sc]
            cells = [_pm(e["nested"]), _pm(e["nested_quality_only"]), *(_pm(e[c]) for c in cands)]
            cells += [_pm(e[k], True) for k in minus]
            lines.append(f"| {s} | " + " | ".join(cells) + " |")
        lines.append("")
        others = [c for c in cands if c != INCUMBENT]
        lines.append(f"Paired Δ AIQ × 100 on the outer folds, candidate − {INCUMBENT}, {title}:")
        lines.append("")
        lines.append("| set | " + " | ".join(others) + " |")
        lines.append("|---" * (1 + len(others)) + "|")
        for s in sets:
            e = result["sets"][s]["estimates"][sc]
            cells = [_pm(e[f"{c}_minus_{INCUMBENT}"], True) for c in others]
            lines.append(f"| {s} | " + " | ".join(cells) + " |")
        pooled = result["pooled_over_sets"][sc]
        cells = [_pm(pooled[f"{c}_minus_{INCUMBENT}"], True) for c in others]
        lines.append("| mean of the sets | " + " | ".join(cells) + " |")
        lines.append("")
        if chosen:
            lines.append(
                f"The nested estimate − {CHOSEN}, mean of the sets, {title}: "
                f"{_pm(pooled[minus[0]], True)} (the rule), "
                f"{_pm(pooled[minus[1]], True)} (quality only)."
            )
            lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
