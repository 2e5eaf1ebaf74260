"""Cross-validate variants of the mixllm router alone, on the folds of ``mixllm bench --cv``.

Same data, ``--cv``/``--repeats``/``--task-shift``/``--seed`` give the same folds as the bench, so
the per-fold results pair with a ``cv.json`` the bench wrote (``--pair-with``): the baselines need
not be fitted again. Prints a table and writes JSON.

    python benchmarks/cv_variants.py --data ../shared/data/llmrouter_nim/llmrouter_dcrouter_scores.parquet \
        --reference llama-3.1-nemotron-51b-instruct --cv 5 --repeats 1 --variants tags \
        --pair-with bench-out/cv.json --out cv-tags.json

Variants: ``plain`` (the static encoder alone), ``tags`` (``--embedding tags``, the default router),
or a quality model (``knn``, ``rf``, ``mlp``) with the plain embedding; any of them with
``-<model>``, ``-C<value>`` (the logistic model's C), ``-lsa<dims>`` (the static encoder's
corpus part, refitted on each training fold) and, with tags, ``-w<weight>`` (the tag memberships'
scale, ``TaggedEncoder(tag_weight=...)``) appended, e.g. ``tags-C1``, ``tags-lsa32``, ``tags-w4``
or ``tags-rf``; the paired differences of the table are against the first variant. ``--encoder`` as
in ``mixllm bench`` (the baselines of a ``--pair-with`` file read the bench's encoder). ``--baselines mlp knn`` fits some
of the bench's baselines on the same folds too. ``--task-mix uniform`` (or a JSON object
``{"task": share}``) also scores every test fold with its rows weighted to that task mix, from the
same fits; the JSON then has both scorings.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from typing import Any

import numpy as np

from mixllm_core import MixLLMRouter
from mixllm_core.cli import ENCODER_CHOICES, _bench_encoders
from mixllm_core.data import load_routing_data
from mixllm_core.encoders import QueryEncoder, StaticEncoder, TaggedEncoder
from mixllm_core.experiments.cv import (
    CVReport,
    Fold,
    RouterFactory,
    mixllm_router,
    paired_difference,
    run_cv,
    standard_routers,
)

MODELS = ("knn", "rf", "mlp")
_PART = re.compile(
    r"^(?:(?P<model>knn|rf|mlp|linear)|C(?P<C>[0-9]*\.?[0-9]+)|lsa(?P<lsa>[0-9]+)"
    r"|w(?P<w>[0-9]*\.?[0-9]+))$"
)


def parse_variant(name: str) -> dict[str, Any]:
    """``tags-C1`` → ``{"embedding": "tags", "model": "linear", "C": 1.0, "lsa": None}``."""
    head, *parts = name.split("-")
    spec: dict[str, Any] = {
        "embedding": "plain",
        "model": "linear",
        "C": None,
        "lsa": None,
        "tag_weight": None,
    }
    if head in ("plain", "tags"):
        spec["embedding"] = head
    elif head in MODELS:
        spec["model"] = head
    else:
        raise SystemExit(f"variant {name!r}: starts with plain, tags, knn, rf or mlp")
    for part in parts:
        m = _PART.match(part)
        if m is None:
            raise SystemExit(
                f"variant {name!r}: {part!r} is not a model, C<value>, lsa<dims> or w<tag weight>"
            )
        if m["model"]:
            spec["model"] = m["model"]
        elif m["C"]:
            spec["C"] = float(m["C"])
        elif m["w"]:
            spec["tag_weight"] = float(m["w"])
        else:
            spec["lsa"] = int(m["lsa"])
    if spec["C"] is not None and spec["model"] != "linear":
        raise SystemExit(f"variant {name!r}: C applies to the linear model only")
    if spec["tag_weight"] is not None and spec["embedding"] != "tags":
        raise SystemExit(f"variant {name!r}: w<tag weight> applies to tags only")
    return spec


def variant(name: str) -> RouterFactory:
    spec = parse_variant(name)

    def make(fold: Fold) -> MixLLMRouter:
        enc: QueryEncoder = fold.encoder
        if spec["lsa"] is not None:
            if not isinstance(enc, StaticEncoder):
                raise SystemExit(f"variant {name!r}: lsa<dims> needs the static encoder")
            enc = StaticEncoder(lsa_dims=spec["lsa"]).adapted(fold.train.queries)
        if spec["embedding"] == "tags":
            weight = 1.0 if spec["tag_weight"] is None else spec["tag_weight"]
            enc = TaggedEncoder(enc, mode="tags", tag_weight=weight, seed=fold.seed).fit(
                fold.train.queries, fold.train.tasks, show_progress=False
            )
        params = {} if spec["C"] is None else {"C": spec["C"]}
        return MixLLMRouter(
            encoder=enc, quality_model=spec["model"], quality_params=params, seed=fold.seed
        )

    return mixllm_router(make)


def paired(
    report: CVReport, other: dict[str, Any], router: str = "mixllm", scoring: str = "metrics"
) -> dict[str, Any]:
    """Per variant: mean ± s.e. of (variant − ``router`` of ``other``) over the common folds, by
    the library's ``paired_difference`` (s.e. None for one fold)."""
    theirs = {(f["repeat"], f["fold"]): f[scoring][router] for f in other["folds"]}
    common = [f for f in report.folds if (f["repeat"], f["fold"]) in theirs]
    ratio = float(np.mean([f["n_test"] / f["n_train"] for f in common])) if common else 0.0
    out: dict[str, Any] = {}
    for name in report.routers:
        out[name] = {}
        for m in ("aiq_x100", "q_pct_at_25"):
            d = paired_difference(
                [f[scoring][name][m] for f in common],
                [theirs[(f["repeat"], f["fold"])][m] for f in common],
                ratio,
            )
            if d["n"]:
                out[name][m] = {
                    "mean": d["mean"],
                    "se": d["se"] if d["n"] > 1 else None,
                    "n": d["n"],
                }
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", required=True)
    p.add_argument("--reference", default=None)
    p.add_argument("--cv", type=int, default=5)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--task-shift", action="store_true")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--variants", nargs="+", default=["tags"], help="e.g. tags tags-C1 tags-lsa32")
    p.add_argument("--encoder", default="static", choices=ENCODER_CHOICES)
    p.add_argument("--baselines", nargs="*", default=[], help="bench baselines to fit too")
    p.add_argument("--task-mix", default=None, help='"uniform" or a JSON {"task": share}')
    p.add_argument("--pair-with", default=None, help="a cv.json of mixllm bench on the same folds")
    p.add_argument("--out", default="cv-variants.json")
    args = p.parse_args()
    for name in args.variants:
        parse_variant(name)
    data = load_routing_data(args.data)
    encoder = _bench_encoders(args.encoder, data)[0]
    other = json.loads(Path(args.pair_with).read_text()) if args.pair_with else None
    out = Path(args.out)
    mix = args.task_mix
    task_mix = json.loads(mix) if mix is not None and mix.startswith("{") else mix
    scorings = ["metrics"] + (["metrics_task_mix"] if task_mix is not None else [])

    def write(report: CVReport) -> None:
        result = report.to_dict()
        if other is not None:
            result["paired_with"] = {
                "file": args.pair_with,
                **{
                    ("diff" if s == "metrics" else "diff_task_mix"): paired(
                        report, other, scoring=s
                    )
                    for s in scorings
                    if s in other["folds"][0]
                },
            }
        out.write_text(json.dumps(result, indent=1))

    report = run_cv(
        data,
        {
            **{f"mixllm-{v}": variant(v) for v in args.variants},
            **standard_routers(args.baselines),
        },
        args.cv,
        args.repeats,
        args.task_shift,
        args.seed,
        encoder=encoder,
        reference=args.reference,
        baseline=f"mixllm-{args.variants[0]}",
        on_fold=write,
        task_mix=task_mix,
    )
    print(report.format_table())
    if task_mix is not None:
        print(report.with_task_mix().format_table())
    if other is not None:
        for s in scorings:
            if s not in other["folds"][0]:
                continue
            for name, d in paired(report, other, scoring=s).items():
                summary = {m: (v["mean"], v["se"], v["n"]) for m, v in d.items()}
                print(f"[{s}] {name} − paired mixllm:", summary)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
