"""Cross-validated AIQ of mixllm with and without its memory of seen queries, at repeat shares.

Each test fold gets ``r · |fold|`` extra rows drawn (seeded) from its training rows (see
``run_cv(repeat_share=...)``), so test traffic repeats queries the router has seen answered, as
real traffic and LLMRouter's held-out split (24% of its questions) do. Every router is scored on
every fold; the table gives mean ± s.e. and the paired differences mixllm − router.

Usage::

    OMP_NUM_THREADS=1 nice -n 10 python benchmarks/memory_cv.py \\
        --data ../shared/data/routerbench_subset/routerbench_arc_mbpp_winogrande.parquet \\
        --shares 0 0.25 --cv 5 --repeats 1 --out bench-memory-rb

Writes ``memory_cv.json`` (one report per share) into ``--out`` and prints a table per share.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from mixllm_core import MixLLMRouter
from mixllm_core.data import load_routing_data
from mixllm_core.experiments.cv import (
    format_cv_markdown,
    format_cv_table,
    mixllm_router,
    run_cv,
    standard_routers,
)
from mixllm_core.text import query_text


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--shares", type=float, nargs="+", default=[0.0, 0.25])
    ap.add_argument("--cv", type=int, default=5)
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--memory-prior", type=float, default=1.0)
    ap.add_argument("--reference", default=None, help="reference LLM (default: the priciest)")
    ap.add_argument("--out", default="bench-memory")
    args = ap.parse_args()
    data = load_routing_data(args.data)
    rows = [i for i, s in enumerate(data.split or []) if s != "test"] or list(range(len(data)))
    texts = [query_text(data.queries[i]) for i in rows]
    repeats_in_train = len(texts) - len(set(texts))
    print(f"{args.data}: {len(rows)} rows, {repeats_in_train} verbatim repeats among them")

    def make(memory: bool):  # noqa: ANN202 - a factory
        return mixllm_router(
            lambda fold: MixLLMRouter(
                encoder=fold.encoder, seed=fold.seed, memory=memory, memory_prior=args.memory_prior
            )
        )

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results = {"data": args.data, "verbatim_repeats_in_rows": repeats_in_train, "runs": []}
    for share in args.shares:
        routers = {"mixllm": make(True), "mixllm-no-memory": make(False), **standard_routers()}
        start = time.perf_counter()
        report = run_cv(
            data,
            routers,
            args.cv,
            args.repeats,
            seed=args.seed,
            reference=args.reference,
            repeat_share=share,
        ).to_dict()
        report["settings"]["data"] = args.data
        report["settings"]["memory_prior"] = args.memory_prior
        report["wall_s"] = time.perf_counter() - start
        results["runs"].append(report)
        print(f"\nrepeat share {share}:")
        print(format_cv_table(report))
        print(format_cv_markdown(report))
        (out / "memory_cv.json").write_text(json.dumps(results, indent=1))
    print(f"wrote {out / 'memory_cv.json'}")


if __name__ == "__main__":
    main()
