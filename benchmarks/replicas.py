"""Many replicas on one log: throughput per backend and process count, and refit cost vs log size.

Throughput: for each backend (a SQLite file; a PostgreSQL server started on loopback, as the
tests do) and each process count (``--procs``, default 1 2 4), that many processes load one saved
router onto one fresh log and, all at once, route ``--n`` queries each (decisions/s: all
processes' decisions over the slowest one's routing time; p50/p99 of one route, log write
included), then give feedback on each (feedback/s, the same way; each feedback also folds the
other replicas' feedback). The ``memory`` row is the same load on an in-memory log (one
process): the baseline that shows what the shared log adds.

Refit: a log of ``--sizes`` synthetic feedback rows (default 10k and 100k; add 1000000 when
minutes are available) is written straight into the database, then ``run_refit`` (the job
``mixllm refit`` runs) retrains and publishes in a fresh process: wall time and that process's
peak resident memory (the log is read a page at a time; what grows is the training matrix).

Variants (columns of the table) are router keyword sets in ``VARIANTS``: another piece of shared
state adds an entry there and appears in every row.

Usage::

    nice -n 10 python benchmarks/replicas.py --n 200 --sizes 10000 100000 --out replicas.json
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "shared_state"))

from mixllm_core import MixLLMRouter  # noqa: E402
from mixllm_core.testing import HashingEncoder, make_synthetic_world  # noqa: E402

#: Router keyword sets compared side by side (a column group each).
VARIANTS: dict[str, dict[str, Any]] = {"log only": {}}


def _worker(
    saved: str, url: str, variant: dict[str, Any], k: int, n: int, barrier: Any, out: Any
) -> None:
    queries = make_synthetic_world(400, seed=3).queries
    log = url if url != "memory" else None
    router = MixLLMRouter.load(saved, encoder=HashingEncoder(), log=log, **variant)
    router.route(queries[0])  # warm: first-use compilation is not what is measured
    barrier.wait()
    lat, decisions = [], []
    t0 = time.perf_counter()
    for i in range(n):
        t = time.perf_counter()
        decisions.append(router.route(queries[(k * n + i) % len(queries)]))
        lat.append(time.perf_counter() - t)
    route_s = time.perf_counter() - t0
    barrier.wait()
    t0 = time.perf_counter()
    for i, d in enumerate(decisions):
        router.feedback(d.decision_id, score=float(i % 3 == 0))
    feedback_s = time.perf_counter() - t0
    router.close()
    out.put({"route_s": route_s, "feedback_s": feedback_s, "lat": lat})


def throughput(saved: Path, url: str, procs: int, n: int, variant: dict[str, Any]) -> dict:
    ctx = mp.get_context("spawn")
    barrier, out = ctx.Barrier(procs), ctx.Queue()
    workers = [
        ctx.Process(target=_worker, args=(str(saved), url, variant, k, n, barrier, out))
        for k in range(procs)
    ]
    for w in workers:
        w.start()
    results = [out.get(timeout=600) for _ in workers]
    for w in workers:
        w.join()
    lat = np.concatenate([r["lat"] for r in results]) * 1e3
    return {
        "decisions_per_s": procs * n / max(r["route_s"] for r in results),
        "feedback_per_s": procs * n / max(r["feedback_s"] for r in results),
        "route_p50_ms": float(np.percentile(lat, 50)),
        "route_p99_ms": float(np.percentile(lat, 99)),
    }


def fill_log(url: str, saved: Path, rows: int) -> None:
    """Write ``rows`` synthetic decisions with feedback straight into the log's tables."""
    import sqlalchemy as sa

    from mixllm_core.sqllog import SQLLog, decisions, feedback_table

    world = make_synthetic_world(400, seed=3)
    router = MixLLMRouter.load(saved, encoder=HashingEncoder(), sync_interval_s=None)
    X = router.features(world.queries)[0]
    log = SQLLog(url)
    rng = np.random.default_rng(0)
    llms = router.llms
    batch = 20_000
    with log.engine.begin() as conn:
        for start in range(0, rows, batch):
            idx = rng.integers(0, len(world.queries), min(batch, rows - start))
            ids = [f"s{start + j}" for j in range(len(idx))]
            conn.execute(
                sa.insert(decisions),
                [
                    {
                        "decision_id": i,
                        "time": 0.0,
                        "llm": llms[q % len(llms)],
                        "lam": 1.0,
                        "predicted_quality": 0.5,
                        "offline_quality": 0.5,
                        "predicted_cost": 0.0,
                        "query": world.queries[q],
                        "x": X[q].tobytes(),
                        "candidates": "[]",
                        "query_hash": "",
                    }
                    for i, q in zip(ids, idx.tolist())
                ],
            )
            conn.execute(
                sa.insert(feedback_table),
                [
                    {
                        "decision_id": i,
                        "time": 0.0,
                        "llm": llms[q % len(llms)],
                        "score": float(world.quality[q, q % len(llms)]),
                        "kind": "refined",
                        "applied": 1,
                        "reason": "",
                    }
                    for i, q in zip(ids, idx.tolist())
                ],
            )
    log.close()


REFIT = r"""
import json, resource, sys, time
from mixllm_core.refit_job import run_refit
from mixllm_core.testing import HashingEncoder
t = time.perf_counter()
report = run_refit(sys.argv[1], sys.argv[2], encoder=HashingEncoder())
print(json.dumps({"refit_s": time.perf_counter() - t, "version": report.version,
                  "rows": sum(report.refit.values()),
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def refit_cost(url: str, saved: Path) -> dict:
    proc = subprocess.run(
        [sys.executable, "-c", REFIT, url, str(saved)],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=200, help="routed calls with feedback per process")
    p.add_argument("--procs", type=int, nargs="+", default=[1, 2, 4])
    p.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    p.add_argument("--backends", nargs="+", default=["sqlite", "postgresql"])
    p.add_argument("--out", default="replicas.json")
    args = p.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="mixllm-replicas-"))
    world = make_synthetic_world(400, seed=3)
    saved = MixLLMRouter(encoder=HashingEncoder(), seed=0).fit(world).save(tmp / "router")
    server = None
    new_url: dict[str, Callable[[], str]] = {
        "sqlite": lambda: f"sqlite:///{tmp / uuid.uuid4().hex}.db",
    }
    result: dict[str, Any] = {"n_per_process": args.n, "throughput": [], "refit": []}
    if "postgresql" in args.backends:
        import postgres_server

        server = postgres_server.start()
        result["postgres_startup_s"] = server.startup_s
        new_url["postgresql"] = lambda: server.database(f"b_{uuid.uuid4().hex[:10]}")
    try:
        for name, variant in VARIANTS.items():
            row = throughput(saved, "memory", 1, args.n, variant)
            result["throughput"].append({"backend": "memory", "procs": 1, "variant": name, **row})
            for backend in args.backends:
                for procs in args.procs:
                    row = throughput(saved, new_url[backend](), procs, args.n, variant)
                    result["throughput"].append(
                        {"backend": backend, "procs": procs, "variant": name, **row}
                    )
                    print(result["throughput"][-1], flush=True)
        for backend in args.backends:
            for size in args.sizes:
                url = new_url[backend]()
                t = time.perf_counter()
                fill_log(url, saved, size)
                cost = refit_cost(url, saved)
                result["refit"].append(
                    {"backend": backend, "rows": size, "fill_s": time.perf_counter() - t, **cost}
                )
                print(result["refit"][-1], flush=True)
    finally:
        if server is not None:
            server.stop()
    result["peak_rss_mb_bench"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    Path(args.out).write_text(json.dumps(result, indent=1))
    print(
        f"\n{'backend':<11}{'procs':>6}{'variant':>10}{'decisions/s':>13}{'feedback/s':>12}"
        f"{'route p50 ms':>14}{'p99 ms':>8}"
    )
    for r in result["throughput"]:
        print(
            f"{r['backend']:<11}{r['procs']:>6}{r['variant']:>10}{r['decisions_per_s']:>13.0f}"
            f"{r['feedback_per_s']:>12.0f}{r['route_p50_ms']:>14.2f}{r['route_p99_ms']:>8.2f}"
        )
    print(f"\n{'backend':<11}{'rows':>9}{'refit s':>9}{'peak RSS MB':>13}")
    for r in result["refit"]:
        print(f"{r['backend']:<11}{r['rows']:>9}{r['refit_s']:>9.1f}{r['peak_rss_mb']:>13.0f}")
    if "postgres_startup_s" in result:
        print(
            f"\nPostgreSQL server start-up (initdb + start): {result['postgres_startup_s']:.1f} s"
        )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
