"""How decision time and training time grow with the number of LLMs and of training rows.

A synthetic routing table (seeded; see :func:`make_world`) with ``m`` LLMs and ``n`` training rows
per grid cell. Per cell, in a fresh subprocess (so peak memory is the cell's own), the default
router — ``MixLLMRouter()``: the default :class:`~mixllm_core.StaticEncoder` and quality model —
is fitted and timed, through the public API only (``MixLLMRouter``, ``fit``, ``route``,
``route_batch``, ``features``, ``predict_features``, the ``encoder`` property):

- ``fit_s``: wall time of ``router.fit(data)`` (embedding the training prompts, the encoder's
  corpus part, every LLM's quality and cost predictors);
- ``fit_peak_mb``: peak resident memory during ``fit`` (Linux ``VmHWM`` reset just before fit,
  else ``ru_maxrss``), and ``fit_added_mb``: that peak minus the resident memory before ``fit``;
- ``route``: ``router.route(prompt)`` per decision, p50/p99 ms, on held-out prompts never seen
  before (every call embeds: the encoder's prompt cache misses);
- ``route_pre``: the same prompts routed again through an encoder that returns their stored
  vectors (a dict lookup), i.e. a decision without the embedding (prediction, decision, logging);
- ``predict``: ``router.predict_features`` for one pre-embedded query (all ``m`` LLMs' quality,
  cost and uncertainty: the prediction part alone);
- ``batch``: ``router.route_batch`` over distinct unseen prompts, ms per query.

Absolute times are noisy on a shared machine, so every cell is also reported as a ratio to the
baseline cell (the first of the grid, measured first) and the baseline cell is measured again at
the end of the run (``baseline-again``): the two baseline rows show how much the machine drifted.
The row with 11 LLMs checks the budget: ≤ 1 ms p50 per decision, embedding included.

Prompts are drawn from real WordPiece words of MiniLM's vocabulary, 20 to ~2,000 characters long
(median ≈ 650), so the static encoder sees RouterBench-like lengths (it reads the last 1,000).

Usage::

    nice -n 10 python benchmarks/scaling.py --out scaling.json            # full grid
    nice -n 10 python benchmarks/scaling.py --quick --out scaling.json    # a smaller grid
    python benchmarks/scaling.py --llms 3 --rows 200 --n-timed 20 --inline --out x.json
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

#: the checkout measured: this one, or ``$MIXLLM_BENCH_CODE`` (``--baseline-code`` sets it for the
#: cells it measures with an earlier version of the code)
ROOT = Path(os.environ.get("MIXLLM_BENCH_CODE") or Path(__file__).resolve().parents[1])
if str(ROOT) not in sys.path:  # measure this checkout, not another installed copy
    sys.path.insert(0, str(ROOT))

from mixllm_core import LLMSpec, MixLLMRouter, RoutingData  # noqa: E402

#: the default grid (LLMs × training rows) and ``--quick``'s
FULL_LLMS, FULL_ROWS = (10, 30, 100), (2_000, 20_000, 200_000)
QUICK_LLMS, QUICK_ROWS = (10, 30), (2_000, 20_000)
#: the budget: p50 of ``route`` with this many LLMs, embedding included
BUDGET_LLMS, BUDGET_MS = 11, 1.0
N_TOPICS = 20


# ---------------------------------------------------------------------------------- the data
def _words() -> list[str]:
    """Whole words of MiniLM's WordPiece vocabulary (a fixed list when it is not installed)."""
    try:
        from mixllm_core.encoders.base import packaged_minilm_path

        vocab = (packaged_minilm_path() / "vocab.txt").read_text(encoding="utf-8").split("\n")
        words = [w for w in vocab if w.isalpha() and w.isascii() and len(w) > 2]
        if len(words) > 1000:
            return words
    except Exception:  # noqa: BLE001 - any failure: fall back to made-up words
        pass
    rng = np.random.default_rng(0)
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    return ["".join(rng.choice(letters, size=int(rng.integers(3, 10)))) for _ in range(5000)]


def make_world(n: int, m: int, *, seed: int = 0) -> RoutingData:
    """``n`` synthetic queries over ``N_TOPICS`` topics, each answered by ``m`` LLMs.

    Each topic has its own 300 words; a prompt mixes them (70%) with 500 common words, ``L`` words
    long, ``L`` log-normal (median 90, 20–400). Quality is a Bernoulli draw of
    ``sigmoid(ability + skill[topic] − difficulty)`` per LLM; output tokens are Poisson around a
    per-topic length times the LLM's verbosity; prices are log-normal, cost = tokens × prices.
    """
    rng = np.random.default_rng(seed)
    words = np.array(_words())
    common = rng.choice(words, size=500, replace=False)
    topic_words = [rng.choice(words, size=300, replace=False) for _ in range(N_TOPICS)]
    topic = rng.integers(0, N_TOPICS, size=n)
    length = np.clip(rng.lognormal(np.log(90), 0.8, size=n), 3, 400).astype(int)
    queries = []
    for t, k in zip(topic, length, strict=True):
        own = rng.random(k) < 0.7
        w = np.where(own, rng.choice(topic_words[t], size=k), rng.choice(common, size=k))
        queries.append(" ".join(w) + "?")
    difficulty = rng.normal(0.0, 1.0, size=n)
    ability = rng.normal(0.0, 0.7, size=m)
    skill = rng.normal(0.0, 1.0, size=(N_TOPICS, m))
    logits = ability[None, :] + skill[topic] - difficulty[:, None]
    quality = (rng.random((n, m)) < 1.0 / (1.0 + np.exp(-logits))).astype(float)
    price_in = np.round(rng.lognormal(np.log(0.5), 1.2, size=m), 4) + 0.01
    price_out = np.round(price_in * rng.uniform(1.0, 4.0, size=m), 4)
    in_tok = np.repeat(np.array([len(q) / 4.0 for q in queries])[:, None], m, axis=1)
    base = rng.uniform(50, 400, size=N_TOPICS)[topic]
    verbosity = rng.uniform(0.6, 1.6, size=m)
    out_tok = np.maximum(rng.poisson(base[:, None] * verbosity[None, :]), 1).astype(float)
    cost = (in_tok * price_in + out_tok * price_out) / 1e6
    llms = [f"llm-{j:03d}" for j in range(m)]
    specs = {
        name: LLMSpec(name, input_price=float(price_in[j]), output_price=float(price_out[j]))
        for j, name in enumerate(llms)
    }
    return RoutingData(
        queries=queries,
        llms=llms,
        quality=quality,
        cost=cost,
        sample_ids=[f"scaling-{seed}-{i}" for i in range(n)],
        tasks=[f"topic-{t}" for t in topic],
        input_tokens=in_tok,
        output_tokens=out_tok,
        specs=specs,
        source="synthetic",
    )


# ---------------------------------------------------------------------------------- one cell
class StoredEncoder:
    """An encoder that returns stored vectors for known texts: routing without the embedding."""

    def __init__(self, texts: Sequence[str], X: np.ndarray, config: dict[str, Any]) -> None:
        self._rows = {t: i for i, t in enumerate(texts)}
        self._X = np.asarray(X, np.float32)
        self._config = dict(config)

    @property
    def dim(self) -> int:
        return int(self._X.shape[1])

    def encode(self, texts: Sequence[str], *, show_progress: bool = False) -> np.ndarray:
        return self._X[[self._rows[t] for t in texts]]

    def get_config(self) -> dict[str, Any]:
        return self._config


def pct(seconds: Sequence[float]) -> dict[str, float]:
    a = 1e3 * np.asarray(seconds)
    return {f"p{q}_ms": float(np.percentile(a, q)) for q in (50, 95, 99)}


def _dir_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**20


def held_by_pool(router: MixLLMRouter) -> dict[str, float]:
    """MB the fitted pool keeps for ``refit``: the training features and the routing data.

    ``features``: the arrays of the per-LLM training sets (``X`` is one array shared by all LLMs,
    counted once); ``data_matrices``: the routing data's per-(query, LLM) matrices;
    ``data_strings``: its queries, sample ids and tasks (Python strings).
    """
    pool = router.model.pool
    seen: dict[int, int] = {}
    for arrays in pool.train.values():
        for a in arrays:
            base = a.base if a.base is not None else a
            seen[id(base)] = max(seen.get(id(base), 0), int(base.nbytes))
    data = pool.data
    matrices = strings = 0
    if data is not None:
        for name in (
            "quality",
            "cost",
            "input_tokens",
            "output_tokens",
            "latency",
            "observed",
            "propensity",
            "timestamp",
        ):
            value = getattr(data, name, None)
            if isinstance(value, np.ndarray):
                matrices += value.nbytes
        for name in ("queries", "sample_ids", "tasks", "split"):
            value = getattr(data, name, None)
            if value is not None:
                strings += sys.getsizeof(value) + sum(sys.getsizeof(v) for v in value)
    return {
        "features": sum(seen.values()) / 2**20,
        "data_matrices": matrices / 2**20,
        "data_strings": strings / 2**20,
    }


def _rss_mb() -> float:
    """Resident memory now (MB; Linux), else the peak so far."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _reset_peak() -> bool:
    """Reset the kernel's peak-RSS mark (Linux ≥ 4.0); False when it cannot."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _peak_mb(reset: bool) -> float:
    if reset:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


_WARM: list[bool] = []


def _timed(fn: Any, *args: Any) -> tuple[float, float]:
    """Wall and this thread's CPU seconds of ``fn(*args)``."""
    c0, w0 = time.thread_time(), time.perf_counter()
    fn(*args)
    return time.perf_counter() - w0, time.thread_time() - c0


def measure_cell(m: int, n: int, n_timed: int, n_batch: int, seed: int = 0) -> dict[str, Any]:
    """Fit the default router on ``n`` synthetic rows with ``m`` LLMs and time its decisions."""
    world = make_world(n + n_timed + n_batch, m, seed=seed)
    train = world.subset(np.arange(n))
    timed = world.queries[n : n + n_timed]
    batch = world.queries[n + n_timed :]
    if not _WARM:  # imports and lazy loads, once per process: not part of fit's time
        MixLLMRouter().fit(make_world(100, 2, seed=seed + 1))
        _WARM.append(True)
    router = MixLLMRouter()
    gc.collect()
    rss0 = _rss_mb()
    reset = _reset_peak()
    c0, w0 = time.process_time(), time.perf_counter()
    router.fit(train)
    fit_s, fit_cpu_s = time.perf_counter() - w0, time.process_time() - c0
    peak = _peak_mb(reset)
    gc.collect()
    held_mb = _rss_mb() - rss0
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        saved_mb = _dir_mb(router.save(Path(tmp) / "router"))
        save_s = time.perf_counter() - t0
    router.route("a first decision: lazy allocations")
    route = [_timed(router.route, q) for q in timed]
    batch_s, batch_cpu_s = _timed(router.route_batch, batch)
    encoder = router.encoder
    X, F = router.features(timed)
    router.encoder = StoredEncoder(timed, X, encoder.get_config())
    pre = [_timed(router.route, q) for q in timed]
    pred = [_timed(router.predict_features, X[i : i + 1], F[i : i + 1]) for i in range(len(X))]
    router.encoder = encoder
    return {
        "llms": m,
        "rows": n,
        "quality_model": router.quality_model,
        "encoder": encoder.get_config().get("type"),
        "dim": int(X.shape[1]),
        "fit_s": fit_s,
        "fit_cpu_s": fit_cpu_s,
        "fit_peak_mb": peak,
        "fit_added_mb": peak - rss0,
        "peak_from": "VmHWM" if reset else "ru_maxrss",
        "held_mb": held_mb,
        "pool_keeps_mb": held_by_pool(router),
        "saved_mb": saved_mb,
        "save_s": save_s,
        "code": str(ROOT),
        "route": pct([w for w, _ in route]),
        "route_cpu": pct([c for _, c in route]),
        "route_pre": pct([w for w, _ in pre]),
        "route_pre_cpu": pct([c for _, c in pre]),
        "predict": pct([w for w, _ in pred]),
        "predict_cpu": pct([c for _, c in pred]),
        "batch_ms_per_query": 1e3 * batch_s / len(batch),
        "batch_cpu_ms_per_query": 1e3 * batch_cpu_s / len(batch),
        "n_timed": len(timed),
        "n_batch": len(batch),
        "prompt_chars_p50": float(np.median([len(q) for q in timed])),
        "loadavg": os.getloadavg(),
    }


def run_cell(
    m: int,
    n: int,
    n_timed: int,
    n_batch: int,
    *,
    inline: bool,
    timeout_s: float,
    code_root: Path | None = None,
) -> dict[str, Any]:
    """One cell, in a fresh interpreter unless ``inline`` (then peak memory is the process's);
    with ``code_root``, measuring the ``mixllm_core`` found there instead of this checkout's."""
    if inline and code_root is None:
        return measure_cell(m, n, n_timed, n_batch)
    code = (
        "import json, sys; sys.path.insert(0, sys.argv[1]); import scaling; "
        "print('RESULT ' + json.dumps(scaling.measure_cell(*map(int, sys.argv[2:]))))"
    )
    args = [str(Path(__file__).parent), str(m), str(n), str(n_timed), str(n_batch)]
    try:
        out = subprocess.run(
            [sys.executable, "-c", code, *args],
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=True,
            env={**os.environ, "MIXLLM_BENCH_CODE": str(code_root or ROOT)},
        ).stdout
    except subprocess.TimeoutExpired:
        return {"llms": m, "rows": n, "skipped": f"over the {timeout_s:.0f} s cell time limit"}
    except subprocess.CalledProcessError as e:
        return {"llms": m, "rows": n, "skipped": f"failed: {e.stderr.strip()[-300:]}"}
    line = next(x for x in out.splitlines() if x.startswith("RESULT "))
    result: dict[str, Any] = json.loads(line[len("RESULT ") :])
    return result


# ---------------------------------------------------------------------------------- report
HEADER = (
    f"{'cell':<15} {'LLMs':>4} {'rows':>7} {'fit s':>7} {'fit cpu':>7} {'×base':>6} "
    f"{'peak MB':>7} {'+MB':>5} | {'route p50 wall/cpu':>18} {'p99':>6} {'×base':>5} | "
    f"{'no-emb p50':>10} {'predict':>7} {'batch/q':>7} {'load':>5} {'held MB':>7} {'saved MB':>8}"
)


def format_row(name: str, row: dict[str, Any], base: dict[str, Any] | None) -> str:
    """One table line; ratios are CPU time against the baseline cell's. Times in ms unless s."""
    if "skipped" in row:
        return f"{name:<15} {row['llms']:>4} {row['rows']:>7} skipped: {row['skipped']}"
    fr = row["fit_cpu_s"] / base["fit_cpu_s"] if base else 1.0
    rr = row["route_cpu"]["p50_ms"] / base["route_cpu"]["p50_ms"] if base else 1.0
    return (
        f"{name:<15} {row['llms']:>4} {row['rows']:>7} {row['fit_s']:>7.1f} "
        f"{row['fit_cpu_s']:>7.1f} {fr:>6.1f} {row['fit_peak_mb']:>7.0f} "
        f"{row['fit_added_mb']:>5.0f} | {row['route']['p50_ms']:>9.3f}/{row['route_cpu']['p50_ms']:<8.3f}"
        f" {row['route']['p99_ms']:>6.1f} {rr:>5.2f} | {row['route_pre_cpu']['p50_ms']:>10.3f} "
        f"{row['predict_cpu']['p50_ms']:>7.3f} {row['batch_cpu_ms_per_query']:>7.3f} "
        f"{row['loadavg'][0]:>5.1f} {row.get('held_mb', float('nan')):>7.0f} "
        f"{row.get('saved_mb', float('nan')):>8.1f}"
    )


def extrapolate(cells: dict[str, Any]) -> dict[str, Any]:
    """Fit CPU seconds for the cells that were not measured, each labelled as an estimate.

    At a fixed number of rows, fit time is a fixed part (embedding the prompts, the corpus part)
    plus a part per LLM: a line in the number of LLMs through that row count's measured cells
    (two or more). Failing that, a power law in the rows through the measured cells with the same
    number of LLMs (two or more), which extrapolates beyond the measured range and says so.
    """
    done = [c for c in cells.values() if "skipped" not in c]
    out: dict[str, Any] = {}
    for name, cell in cells.items():
        if "skipped" not in cell:
            continue
        m, n = cell["llms"], cell["rows"]
        by_llms = sorted({(c["llms"], c["fit_cpu_s"]) for c in done if c["rows"] == n})
        by_rows = sorted({(c["rows"], c["fit_cpu_s"]) for c in done if c["llms"] == m})
        if len(by_llms) >= 2:
            xs, ts = np.array(by_llms).T
            slope, intercept = np.polyfit(xs, ts, 1)
            est = {
                "fit_cpu_s_estimate": float(intercept + slope * m),
                "from": f"a line in the LLM count through {len(xs)} measured cells of {n} rows",
                "per_llm_cpu_s": float(slope),
                "fixed_cpu_s": float(intercept),
            }
        elif len(by_rows) >= 2:
            xs, ts = np.array(by_rows).T
            power, log_a = np.polyfit(np.log(xs), np.log(ts), 1)
            est = {
                "fit_cpu_s_estimate": float(np.exp(log_a) * n**power),
                "from": (
                    f"a power law in the rows (exponent {power:.2f}) through {len(xs)} measured "
                    f"cells of {m} LLMs, {n / xs.max():.0f}x beyond the largest"
                ),
                "rows_exponent": float(power),
            }
        else:
            continue
        out[name] = {"llms": m, "rows": n, **est}
    return out


def run(
    llms: Sequence[int],
    rows: Sequence[int],
    n_timed: int,
    n_batch: int,
    *,
    inline: bool,
    cell_timeout_s: float,
    out: Path | None = None,
    grid_only: bool = False,
    baseline_code: Path | None = None,
) -> dict[str, Any]:
    """The grid (smallest first), the budget row and the baseline measured again.

    A cell is not run when a cheaper one (no more LLMs and no more rows) went over the time
    limit. With ``out``, the results so far are written after every cell. ``grid_only``: no
    budget row and no baseline again. ``baseline_code``: every cell is measured first with the
    ``mixllm_core`` in that directory (an earlier version: ``before`` in the results), then
    with this checkout's, one after the other, so that the two compare under the same load.
    """
    plan = [(f"{m}x{n}", m, n) for n in sorted(rows) for m in sorted(llms)]
    if not grid_only:
        plan.insert(1, ("budget", BUDGET_LLMS, min(rows)))
        plan.append(("baseline-again", min(llms), min(rows)))
    cells: dict[str, Any] = {}
    before: dict[str, Any] = {}
    base = None
    print(HEADER, flush=True)
    result: dict[str, Any] = {}
    for name, m, n in plan:
        slow = [
            k
            for k, c in cells.items()
            if "over the" in c.get("skipped", "") and c["llms"] <= m and c["rows"] <= n
        ]
        if slow:
            row = {"llms": m, "rows": n, "skipped": f"not run: {slow[0]} went over the limit"}
        else:
            if baseline_code is not None:
                before[name] = run_cell(
                    m,
                    n,
                    n_timed,
                    n_batch,
                    inline=inline,
                    timeout_s=cell_timeout_s,
                    code_root=baseline_code,
                )
                print(format_row(f"{name} before", before[name], base), flush=True)
            row = run_cell(m, n, n_timed, n_batch, inline=inline, timeout_s=cell_timeout_s)
        base = base or (row if "skipped" not in row else None)
        cells[name] = row
        print(format_row(name, row, base), flush=True)
        result = _summary(llms, rows, cells)
        if before:
            result["before"] = {"code": str(baseline_code), "cells": before}
        if out is not None:
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(json.dumps(result, indent=1))
    return result


def _summary(llms: Sequence[int], rows: Sequence[int], cells: dict[str, Any]) -> dict[str, Any]:
    budget = cells.get("budget", {})
    wall = budget.get("route", {}).get("p50_ms")
    cpu = budget.get("route_cpu", {}).get("p50_ms")
    return {
        "grid": {"llms": list(llms), "rows": list(rows)},
        "budget": {
            "llms": BUDGET_LLMS,
            "p50_ms_limit": BUDGET_MS,
            "route_p50_ms_wall": wall,
            "route_p50_ms_cpu": cpu,
            "pass_cpu": cpu is not None and cpu <= BUDGET_MS,
            "pass_wall": wall is not None and wall <= BUDGET_MS,
        },
        "extrapolated": extrapolate(cells),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "loadavg_end": os.getloadavg(),
        },
        "cells": cells,
    }


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    p.add_argument("--quick", action="store_true", help="the smaller grid (10, 30 × 2k, 20k)")
    p.add_argument("--llms", nargs="+", type=int, help="numbers of LLMs (overrides the grid)")
    p.add_argument("--rows", nargs="+", type=int, help="training rows (overrides the grid)")
    p.add_argument("--n-timed", type=int, default=300, help="prompts routed one by one per cell")
    p.add_argument("--n-batch", type=int, default=256, help="prompts in the route_batch call")
    p.add_argument("--inline", action="store_true", help="cells in this process (no subprocess)")
    p.add_argument("--cell-timeout", type=float, default=420.0, help="wall seconds per cell")
    p.add_argument("--out", type=Path, required=True, help="JSON output path")
    p.add_argument("--grid-only", action="store_true", help="no budget row, no baseline again")
    p.add_argument(
        "--baseline-code",
        type=Path,
        help="a directory holding an earlier mixllm_core: each cell is measured with it first",
    )
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)
    llms = args.llms or (QUICK_LLMS if args.quick else FULL_LLMS)
    rows = args.rows or (QUICK_ROWS if args.quick else FULL_ROWS)
    t0 = time.perf_counter()
    result = run(
        llms,
        rows,
        args.n_timed,
        args.n_batch,
        inline=args.inline,
        cell_timeout_s=args.cell_timeout,
        out=args.out,
        grid_only=args.grid_only,
        baseline_code=args.baseline_code,
    )
    result["wall_s"] = time.perf_counter() - t0
    result["command"] = " ".join(["python", "benchmarks/scaling.py", *(argv or sys.argv[1:])])
    for name, e in result["extrapolated"].items():
        print(f"{name}: fit ≈ {e['fit_cpu_s_estimate']:.0f} CPU s (estimate: {e['from']})")
    b = result["budget"]
    for kind in ("cpu", "wall"):
        ms = b[f"route_p50_ms_{kind}"]
        verdict = "PASS" if b[f"pass_{kind}"] else "FAIL"
        print(
            f"budget: route p50 ({kind} time) with {b['llms']} LLMs, embedding included = "
            f"{ms if ms is None else round(ms, 3)} ms, limit {b['p50_ms_limit']} ms: {verdict}"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))
    print(f"wrote {args.out} in {result['wall_s']:.0f} s")
    return result


if __name__ == "__main__":
    main()
