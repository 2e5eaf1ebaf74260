"""Apply the default-choosing rule of docs/dev/results.md to ``cv_variants.py`` runs on several sets.

    PYTHONPATH=. python benchmarks/cv_rule.py \\
        --runs rb=hp-rb.json nim=hp-nim.json ra=hp-ra.json \\
        --default mixllm-tags --out docs/dev/defaults-cv.json

For every other router of the runs (the candidates) and each scoring the runs hold (random folds,
and ``--task-mix`` when they were run with it): the paired Δ AIQ × 100 (candidate − default) per
set, mean ± s.e. over the folds (Nadeau–Bengio corrected, as ``mixllm bench --cv``), and the mean
over the sets with s.e. √(Σ s.e.ᵢ²) / n_sets. A candidate passes on quality when (1) every set's Δ
is ≥ −1 s.e. under every scoring and (2) under every scoring the pooled Δ is > 2 s.e.; the time
condition (route p50 ≤ 1 ms with 11 LLMs) is measured elsewhere. Prints a markdown table and the
outcome; writes JSON. The two quality conditions (:func:`quality_conditions`, :func:`pool`) are the
rule ``nested_selection.py`` applies too.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mixllm_core.experiments.cv import paired_difference

SCORINGS = {"metrics": "random", "metrics_task_mix": "task mix"}


def paired(
    run: dict[str, Any], router: str, default: str, scoring: str, repeats: int | None = None
) -> dict[str, float]:
    """Mean ± Nadeau–Bengio s.e. of ``router − default`` AIQ × 100 over the run's folds (those
    of its first ``repeats`` repeats), by the library's ``paired_difference``."""
    folds = [
        f
        for f in run["folds"]
        if (repeats is None or f["repeat"] < repeats)
        and f.get(scoring) is not None
        and f[scoring][router]["aiq_x100"] is not None
        and f[scoring][default]["aiq_x100"] is not None
    ]
    if not folds:
        raise SystemExit(f"{router} − {default}: no fold scored both under {scoring!r}")
    d = paired_difference(
        [f[scoring][router]["aiq_x100"] for f in folds],
        [f[scoring][default]["aiq_x100"] for f in folds],
        float(np.mean([f["n_test"] / f["n_train"] for f in folds])),
    )
    return {"mean": d["mean"], "se": d["se"], "n": d["n"]}


def pool(per_set: Sequence[Mapping[str, float]]) -> dict[str, float]:
    """The mean over independent sets and its s.e. (√Σ s.e.ᵢ² / n_sets), as the rule pools."""
    n = len(per_set)
    return {
        "mean": float(np.mean([x["mean"] for x in per_set])),
        "se": float(np.sqrt(sum(x["se"] ** 2 for x in per_set)) / n),
    }


def quality_conditions(deltas: Mapping[str, Sequence[Mapping[str, float]]]) -> dict[str, Any]:
    """The rule's two quality conditions for one candidate, from its paired Δ (candidate − default)
    ``{"mean", "se"}`` per scoring and set (``deltas[scoring] = [Δ of each set]``): (1) no harm,
    every set's Δ ≥ −1 s.e. under every scoring; (2) gain, under every scoring the pooled Δ
    (:func:`pool`) > 2 s.e. Returns ``{"no_harm", "pooled": {scoring: {"mean", "se", "passes"}},
    "gain"}``."""
    no_harm = all(d["mean"] >= -d["se"] for per_set in deltas.values() for d in per_set)
    pooled = {}
    for sc, per_set in deltas.items():
        p = pool(per_set)
        pooled[sc] = {**p, "passes": p["mean"] > 2 * p["se"]}
    gain = all(p["passes"] for p in pooled.values())
    return {"no_harm": no_harm, "pooled": pooled, "gain": gain}


def judge(
    runs: dict[str, dict[str, Any]], default: str, repeats: int | None = None
) -> dict[str, Any]:
    """Per candidate and scoring: each set's paired Δ, the pooled Δ, and the two conditions."""
    first = next(iter(runs.values()))
    candidates = [r for r in first["folds"][0]["metrics"] if r != default]
    scorings = [s for s in SCORINGS if all(s in run["folds"][0] for run in runs.values())]
    result: dict[str, Any] = {}
    for cand in candidates:
        per_set = {
            sc: {s: paired(run, cand, default, sc, repeats) for s, run in runs.items()}
            for sc in scorings
        }
        met = quality_conditions({sc: list(d.values()) for sc, d in per_set.items()})
        out: dict[str, Any] = {
            SCORINGS[sc]: {
                "sets": per_set[sc],
                "pooled": {k: met["pooled"][sc][k] for k in ("mean", "se")},
            }
            for sc in scorings
        }
        out["no_harm"], out["pooled_gain"] = met["no_harm"], met["gain"]
        result[cand] = out
    return result


def main() -> None:
    doc = (__doc__ or "").split("\n\n")
    p = argparse.ArgumentParser(
        description=doc[0],
        epilog="example (from a checkout):\n\n" + doc[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--runs", nargs="+", required=True, help="name=cv_variants.json, one per set")
    p.add_argument("--default", default="mixllm-tags")
    p.add_argument("--repeats", type=int, default=None, help="use the first N repeats only")
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args()
    paths = dict(r.split("=", 1) for r in args.runs)
    runs = {name: json.loads(Path(path).read_text()) for name, path in paths.items()}
    verdicts = judge(runs, args.default, args.repeats)
    scorings = [sc for sc in SCORINGS.values() if verdicts and sc in next(iter(verdicts.values()))]
    header = " | ".join(f"{s}, {sc}" for sc in scorings for s in [*runs, "pooled"])
    print(f"| candidate − {args.default} | {header} | passes |")
    print("|---" * (1 + len(scorings) * (len(runs) + 1) + 1) + "|")
    for cand, out in verdicts.items():
        cells = []
        for sc in scorings:
            for v in [*out[sc]["sets"].values(), out[sc]["pooled"]]:
                cells.append(f"{v['mean']:+.2f} ± {v['se']:.2f}")
        harm, gain = not out["no_harm"], out["pooled_gain"]
        verdict = "yes" if gain and not harm else ("no (harm)" if harm else "no (no gain)")
        print(f"| {cand} | " + " | ".join(cells) + f" | {verdict} |")
    result = {"default": args.default, "sets": paths, "repeats": args.repeats}
    if args.out is not None:
        args.out.write_text(json.dumps({**result, "candidates": verdicts}, indent=1))
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
