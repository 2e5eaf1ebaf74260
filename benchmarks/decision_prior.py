"""How well `MixLLMDecisionModel` routes by criteria text alone, and how fast feedback corrects it.

Three labels, one per RouterBench task, each described by one line of criteria (what a user of
``ModelRouterMiddleware`` writes). Every prompt of a seeded sample of the RouterBench subset is
routed by a cold decision model (default encoder, no prices, no data); a decision counts as right
when it picks its task's label. Reported per setting:

- ``prior 0`` / ``prior 0.2``: the criteria prior off / at its default, no feedback;
- ``+ feedback``: the default prior, with a thumbs up (right label) or down (wrong label) after
  every decision, as an agent's users would give; accuracy per block of the stream.

Reads ``../shared/data/routerbench_subset`` (``--data``). Usage, from the repository root::

    nice -n 10 python -m benchmarks.decision_prior --out decision_prior.json
    nice -n 10 python -m benchmarks.decision_prior --encoder minilm --per-task 50
"""

from __future__ import annotations

import argparse
import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from mixllm_core import QueryEncoder, SentenceEncoder, StaticEncoder
from mixllm_core.data import load_routing_data
from mixllm_langchain import MixLLMDecisionModel

DATA = Path(__file__).resolve().parents[2] / "shared/data/routerbench_subset"
CRITERIA = {
    "arc-challenge": "Grade-school science questions with multiple-choice answers A, B, C or D.",
    "mbpp": "Programming: write a short Python function from a description and its tests.",
    "winogrande": "Fill in the blank of a sentence: which of two options the blank refers to.",
}


def route_all(
    prompts: list[str],
    tasks: list[str],
    *,
    prior: float,
    feedback: bool,
    seed: int,
    encoder: QueryEncoder | None = None,
) -> np.ndarray:
    """1 where the decision picked the prompt's task label, else 0 (in stream order)."""
    from langchain_core.decisions import Choice

    model = MixLLMDecisionModel(prior=prior, seed=seed, encoder=encoder)
    question = Choice(instructions="Which model should answer?", criteria=dict(CRITERIA))
    right = np.zeros(len(prompts))
    for i, (prompt, task) in enumerate(zip(prompts, tasks)):
        answer = model.invoke({"state": prompt, "questions": {"route": question}})
        route = answer.choices["route"]
        right[i] = route.choice == task
        if feedback:
            model.feedback(route, thumbs=bool(right[i]))
    return right


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data", type=Path, default=DATA / "routerbench_arc_mbpp_winogrande.parquet"
    )
    parser.add_argument("--per-task", type=int, default=150, help="prompts per task (default 150)")
    parser.add_argument("--seed", type=int, default=0, help="sampling seed (default 0)")
    parser.add_argument(
        "--encoder", choices=("static", "minilm"), default="static", help="(default static)"
    )
    parser.add_argument("--out", type=Path, default=None, help="write the results as JSON here")
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")  # the LangChain beta warnings

    data = load_routing_data(args.data)
    rng = np.random.default_rng(args.seed)
    tasks = np.asarray(data.tasks)
    picked = np.concatenate(
        [rng.choice(np.flatnonzero(tasks == t), args.per_task, replace=False) for t in CRITERIA]
    )
    rng.shuffle(picked)
    prompts = [data.queries[i] for i in picked]
    labels = [str(tasks[i]) for i in picked]

    encoder = StaticEncoder() if args.encoder == "static" else SentenceEncoder()
    results: dict[str, Any] = {
        "n": len(prompts),
        "seed": args.seed,
        "encoder": args.encoder,
        "criteria": CRITERIA,
    }
    rows = []
    for name, prior, feedback in (
        ("prior 0", 0.0, False),
        ("prior 0.2", 0.2, False),
        ("prior 0.2 + feedback", 0.2, True),
    ):
        right = route_all(
            prompts, labels, prior=prior, feedback=feedback, seed=args.seed, encoder=encoder
        )
        blocks = [float(b.mean()) for b in np.array_split(right, 5)]
        results[name] = {"accuracy": float(right.mean()), "per_fifth": blocks}
        rows.append((name, right.mean(), blocks))

    print(
        f"{len(prompts)} RouterBench prompts, 3 labels (chance 0.33), seed {args.seed}, "
        f"encoder {args.encoder}"
    )
    print(f"{'setting':22} {'accuracy':>8}   per fifth of the stream")
    for name, acc, blocks in rows:
        print(f"{name:22} {acc:8.3f}   " + " ".join(f"{b:.2f}" for b in blocks))
    if args.out:
        args.out.write_text(json.dumps(results, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
