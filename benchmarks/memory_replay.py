"""The continual-learning replay when test traffic repeats streamed queries: memory on and off.

As ``benchmarks/replay_seeds.py`` (the bench's ``--online`` protocol): split train/test with
``train_test_split(seed)``, fit on 30% of the training rows, stream the other 70% with none /
refined / binary feedback (ε-greedy, guarded refits every ``REFIT_EVERY`` feedbacks and at the
end), then score AIQ on the test rows, here also on the test rows plus ``r · |test|`` rows drawn
(seeded) from the streamed ones: test queries the router has seen answered, through feedback.

The stream itself does not depend on the memory (the data has no verbatim repeats, so no
streamed query is in memory when it is routed), so each stream runs once and the final router is
scored twice: with the memory (``predict_features(..., keys=...)``, as a route does) and without
(the model alone, exactly what ``memory=False`` routes).

    OMP_NUM_THREADS=1 nice -n 10 python benchmarks/memory_replay.py --data nim --seed 0 \\
        --shares 0 0.25 --out memory-replay.json
"""

from __future__ import annotations

import argparse
import json
import time
from functools import partial
from pathlib import Path

import numpy as np
from replay_seeds import DATA, ROUTERS, make_router  # type: ignore[import-not-found]

from mixllm_core.data import load_routing_data
from mixllm_core.experiments.bench import LAMBDA_GRID, REFIT_EVERY
from mixllm_core.experiments.replay import (
    aiq_on,
    split_offline_stream,
    stream_feedback,
)
from mixllm_core.snapshot import RefitGuard


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--data", default="nim", choices=["routerbench", "nim"])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--shares", nargs="+", type=float, default=[0.0, 0.25])
    p.add_argument("--kinds", nargs="+", default=["none", "refined", "binary"])
    p.add_argument("--stream-lam", type=float, default=5.0)
    p.add_argument(
        "--router",
        default="static",
        choices=ROUTERS,
        help="static: StaticEncoder alone; default: MixLLMRouter() as it comes (tag features)",
    )
    p.add_argument("--out", default="memory-replay.json")
    args = p.parse_args()
    data = load_routing_data(DATA[args.data])
    train, test = data.train_test_split(seed=args.seed)
    offline, stream = split_offline_stream(train, 0.3, args.seed)
    rng = np.random.default_rng([args.seed, 7919])
    tests = {}
    for share in args.shares:
        n = int(round(share * len(test)))
        extra = stream.subset(np.sort(rng.choice(len(stream), size=n, replace=False)))
        tests[share] = test if n == 0 else test.concat(extra)
    cost = test.cost if test.cost is not None else np.zeros_like(test.quality)
    max_cost = float(cost.mean(axis=0).max())
    result: dict[str, dict[str, float]] = {}
    for kind in args.kinds:
        t0 = time.perf_counter()
        router = make_router(args.router, args.seed)
        router.fit(offline)
        router.refit = partial(router.refit, guard=RefitGuard())  # type: ignore[method-assign]
        if kind != "none":
            stream_feedback(router, stream, kind, lam=args.stream_lam, refit_every=REFIT_EVERY)
            router.refit()
        for share, t in tests.items():
            for memory in (True, False):
                label = f"r={share} memory={'on' if memory else 'off'}"
                result.setdefault(label, {})[kind] = aiq_on(
                    router, t, LAMBDA_GRID, max_cost, memory=memory
                )
        print(f"{kind}: {time.perf_counter() - t0:.0f}s", flush=True)
    print(f"\n{args.data} seed {args.seed}: AIQ × 100 on the test rows (+ r·|test| streamed rows)")
    print(f"{'':24s}" + "".join(f"{k:>10s}" for k in args.kinds))
    for label, row in result.items():
        print(f"{label:24s}" + "".join(f"{100 * row[k]:10.2f}" for k in args.kinds))
    Path(args.out).write_text(json.dumps({"args": vars(args), "aiq": result}, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
