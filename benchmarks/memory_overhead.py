"""What the memory of seen queries costs: per route, and per feedback, at 5k and 200k keys.

Routes one query at a time (the default encoder, the synthetic world's LLMs) with the memory on
and off, interleaved in the same run, for queries the memory does not hold and for ones it does;
then times an update of the memory (the work a feedback adds) against copying the whole memory
(what a naive immutable update would cost).

Usage::

    OMP_NUM_THREADS=1 nice -n 10 python benchmarks/memory_overhead.py --out bench-memory-overhead \\
        --data ../shared/data/routerbench_subset/routerbench_arc_mbpp_winogrande.parquet

Prints a table and writes ``memory_overhead.json`` into ``--out``. Times are medians; compare
the rows with each other (same run, same load), not with another machine.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from mixllm_core import MixLLMRouter
from mixllm_core.data import load_routing_data
from mixllm_core.memory import OutcomeMemory, query_key
from mixllm_core.testing import make_synthetic_world


def _filled(memory: OutcomeMemory, n_keys: int, seed: int) -> OutcomeMemory:
    """``memory`` plus ``n_keys`` random keys with one observation per LLM."""
    rng = np.random.default_rng(seed)
    keys = [query_key(f"filler query {seed} {i}") for i in range(n_keys)]
    m = len(memory.llms)
    extra = OutcomeMemory(memory.llms, keys, rng.random((n_keys, m)), np.ones((n_keys, m), int))
    return memory.merged(extra)


def _route_times(router: MixLLMRouter, queries: list[str], rounds: int) -> list[float]:
    times = []
    for _ in range(rounds):
        for q in queries:
            start = time.perf_counter()
            router.route(q)
            times.append(time.perf_counter() - start)
    return times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[5_000, 200_000])
    ap.add_argument("--queries", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--updates", type=int, default=3_000)
    ap.add_argument("--data", default=None, help="routing data (default: the synthetic world)")
    ap.add_argument("--out", default="bench-memory-overhead")
    args = ap.parse_args()
    data = make_synthetic_world(1500, seed=0) if args.data is None else load_routing_data(args.data)
    train, test = data.train_test_split(seed=0)
    on = MixLLMRouter(seed=0).fit(train)
    off = MixLLMRouter(seed=0, memory=False).fit(train)
    seen = list(dict.fromkeys(train.queries))[: args.queries]
    unseen = [q for q in dict.fromkeys(test.queries) if q not in set(train.queries)]
    unseen = unseen[: args.queries]
    for r in (on, off):  # warm-up: caches, first-call allocations
        _route_times(r, seen[:10] + unseen[:10], 1)
    rows = []
    base = on.model.memory
    assert base is not None
    for size in args.sizes:
        filled = _filled(base, size, seed=size)
        on._model = replace(on.model, memory=filled)  # noqa: SLF001 - a benchmark sets it directly
        t_off, t_unseen, t_seen = [], [], []
        for _ in range(args.rounds):  # interleaved per query: the same load for all three
            for q_new, q_old in zip(unseen, seen):
                t_off += _route_times(off, [q_new], 1)
                t_unseen += _route_times(on, [q_new], 1)
                t_seen += _route_times(on, [q_old], 1)
        names = list(on.llms)
        Q, U = np.full((1, len(names)), 0.5), np.ones((1, len(names)))
        micro = {}
        for label, text in (("miss", unseen[0]), ("hit", seen[0])):
            reps = 20_000
            start = time.perf_counter()
            for _ in range(reps):  # the work a route adds: one sha256, one lookup (and the mix)
                filled.blend([query_key(text)], names, Q, U, 1.0)
            micro[label] = 1e6 * (time.perf_counter() - start) / reps
        rng = np.random.default_rng(1)
        # worst case: every feedback on a query the memory does not hold yet
        keys = [query_key(f"feedback query {size} {i}") for i in range(args.updates)]
        llms = [filled.llms[int(j)] for j in rng.integers(0, len(filled.llms), args.updates)]
        memory = filled
        merges = []
        start = time.perf_counter()
        for key, llm in zip(keys, llms):
            t0 = time.perf_counter()
            memory = memory.observed(key, llm, 1.0)
            if len(memory._recent) == 0:  # noqa: SLF001 - this update merged the overlay
                merges.append(time.perf_counter() - t0)
        per_update = (time.perf_counter() - start) / args.updates
        copies = []
        for _ in range(5):  # what copying the whole memory per feedback would cost
            start = time.perf_counter()
            dict(memory._index)  # noqa: SLF001
            memory._sums.copy(), memory._counts.copy()  # noqa: SLF001
            copies.append(time.perf_counter() - start)
        rows.append(
            {
                "keys": len(filled),
                "route_p50_ms_memory_off": 1e3 * float(np.median(t_off)),
                "route_p50_ms_unseen": 1e3 * float(np.median(t_unseen)),
                "route_p50_ms_seen": 1e3 * float(np.median(t_seen)),
                "route_p90_ms_memory_off": 1e3 * float(np.percentile(t_off, 90)),
                "route_p90_ms_unseen": 1e3 * float(np.percentile(t_unseen, 90)),
                "route_p90_ms_seen": 1e3 * float(np.percentile(t_seen, 90)),
                "added_us_miss": micro["miss"],
                "added_us_hit": micro["hit"],
                "update_us_amortised": 1e6 * per_update,
                "merges": len(merges),
                "merge_ms_median": 1e3 * float(np.median(merges)) if merges else None,
                "full_copy_ms": 1e3 * float(np.median(copies)),
            }
        )
    header = (
        f"{'keys':>8} {'off p50':>8} {'unseen p50':>10} {'seen p50':>9} {'off p90':>8} "
        f"{'added µs miss':>13} {'added µs hit':>12} "
        f"{'unseen p90':>10} {'seen p90':>9} {'update µs':>10} {'merge ms':>9} "
        f"{'full copy ms':>12}"
    )
    print(f"route, ms per query ({len(on.llms)} LLMs, default encoder); update = one feedback's")
    print(header)
    for r in rows:
        print(
            f"{r['keys']:>8} {r['route_p50_ms_memory_off']:>8.3f} {r['route_p50_ms_unseen']:>10.3f} "
            f"{r['route_p50_ms_seen']:>9.3f} {r['route_p90_ms_memory_off']:>8.3f} "
            f"{r['added_us_miss']:>13.2f} {r['added_us_hit']:>12.2f} "
            f"{r['route_p90_ms_unseen']:>10.3f} {r['route_p90_ms_seen']:>9.3f} "
            f"{r['update_us_amortised']:>10.1f} {r['merge_ms_median'] or float('nan'):>9.2f} "
            f"{r['full_copy_ms']:>12.2f}"
        )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "memory_overhead.json").write_text(
        json.dumps({"llms": len(on.llms), "rows": rows, "args": vars(args)}, indent=1)
    )
    print(f"wrote {out / 'memory_overhead.json'}")


if __name__ == "__main__":
    main()
