"""What sharing live state through Redis costs a routed call, and how replicas scale with it.

Each "decision" is one :meth:`Dispatcher.call` with a zero-latency child, so everything a real
call does around the child is timed: routing (the latency penalty reads in-flight calls and
service times, the budget is read and the chosen LLM's cost held), the child's in-flight
tracking, its health, and the recorded outcome (the budget charged). The pool is five priced
LLMs with a budget and a latency penalty, the encoder :class:`HashingEncoder` (so the encoder
does not hide the cost measured). Configurations:

- ``local``: no ``shared_state`` (each process on its own);
- ``redis``: ``shared_state=SharedState(url)`` with the default settings (fleet readings at most
  every 50 ms);
- ``redis-fresh``: ``refresh_s=0`` (the fleet read on every route: the worst case).

Reported: per-decision latency p50/p99 in one process (the configurations take turns, so a
busy machine weighs on all of them alike) and what Redis adds to it; decisions/s
summed over 1, 2 and 4 processes (forked, each calling in a loop for ``--seconds``). The script
starts its own ``redis-server`` (or ``valkey-server``) on a free loopback port, without
persistence, and stops it.

Usage::

    nice -n 5 python benchmarks/replicas_redis.py --seconds 3 --out replicas_redis.json
"""

from __future__ import annotations

import argparse
import json
import logging
import multiprocessing as mp
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mixllm_core import DecisionPolicy, Dispatcher, LLMSpec, MixLLMRouter
from mixllm_core.shared_state import SharedState
from mixllm_core.testing import HashingEncoder

QUERIES = [f"Question {i}: explain topic {i % 37} in {3 + i % 5} sentences." for i in range(512)]
POOL = [LLMSpec(f"llm{i}", input_price=0.1 * (i + 1), output_price=0.4 * (i + 1)) for i in range(5)]
POLICY = DecisionPolicy(lam=2.0, beta=0.5, budget=1e6, budget_period_s=3600.0)


def start_redis() -> tuple[subprocess.Popen[bytes], str, float]:
    binary = shutil.which("redis-server") or shutil.which("valkey-server")
    if binary is None:
        raise SystemExit("redis-server is not on PATH (apt-get install redis-server)")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    directory = tempfile.mkdtemp(prefix="mixllm-bench-redis-")
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        + ["--dir", directory, "--loglevel", "warning"],
        stdout=subprocess.DEVNULL,
    )
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2) as c:
                c.sendall(b"PING\r\n")
                if c.recv(16).startswith(b"+PONG"):
                    break
        except OSError:
            time.sleep(0.005)
    return proc, f"redis://127.0.0.1:{port}/0", time.perf_counter() - t0


def make_dispatcher(config: str, url: str) -> Dispatcher:
    shared = None
    if config == "redis":
        shared = SharedState(url, prefix="bench")
    elif config == "redis-fresh":
        shared = SharedState(url, prefix="bench", refresh_s=0.0)
    router = MixLLMRouter(POOL, encoder=HashingEncoder(), policy=POLICY, shared_state=shared)
    return Dispatcher(router)


def answer(name: str, decision: Any) -> str:
    return "ok"


def link_counts(d: Dispatcher) -> tuple[int, int]:
    """Round trips to Redis of ``d``'s router, and those that timed out or failed."""
    shared = d.router.shared_state  # type: ignore[attr-defined]
    return (0, 0) if shared is None else (int(shared.link.calls), int(shared.link.failures))


def failovers(d: Dispatcher) -> int:
    return link_counts(d)[1]


def latencies(
    configs: Sequence[str], url: str, n: int
) -> dict[str, tuple[list[float], int, float]]:
    """Per configuration: per-call seconds, failed Redis calls, Redis round trips per call.

    The configurations take turns, 50 calls each, so that all of them see the same load on a
    shared machine."""
    dispatchers = {c: make_dispatcher(c, url) for c in configs}
    for d in dispatchers.values():
        for q in QUERIES[:50]:  # warm up
            d.call(q, answer)
    before = {c: link_counts(d)[0] for c, d in dispatchers.items()}
    times: dict[str, list[float]] = {c: [] for c in configs}
    for start in range(0, n, 50):
        for config, d in dispatchers.items():
            for i in range(start, min(start + 50, n)):
                t0 = time.perf_counter()
                d.call(QUERIES[i % len(QUERIES)], answer)
                times[config].append(time.perf_counter() - t0)
    out = {}
    for config, d in dispatchers.items():
        calls, failed = link_counts(d)
        out[config] = (times[config], failed, (calls - before[config]) / n)
    return out


def ping_rtt(url: str, n: int = 500) -> list[float]:
    """Seconds per PING on a plain redis-py client: what one round trip costs on this machine."""
    import redis

    client = redis.Redis.from_url(url)
    client.ping()
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        client.ping()
        out.append(time.perf_counter() - t0)
    return out


def _worker(config: str, url: str, seconds: float, start: Any, out: Any) -> None:
    d = make_dispatcher(config, url)
    for q in QUERIES[:20]:
        d.call(q, answer)
    start.wait()
    end = time.perf_counter() + seconds
    calls = 0
    while time.perf_counter() < end:
        d.call(QUERIES[calls % len(QUERIES)], answer)
        calls += 1
    out.put((calls, failovers(d)))


def throughput(config: str, url: str, processes: int, seconds: float) -> tuple[float, int]:
    ctx = mp.get_context("fork")
    start, out = ctx.Barrier(processes), ctx.Queue()
    procs = [
        ctx.Process(target=_worker, args=(config, url, seconds, start, out))
        for _ in range(processes)
    ]
    for p in procs:
        p.start()
    results = [out.get(timeout=600) for _ in procs]
    for p in procs:
        p.join()
    return sum(c for c, _ in results) / seconds, sum(f for _, f in results)


def pct(values: Sequence[float]) -> dict[str, float]:
    a = 1e3 * np.asarray(values)
    return {"p50_ms": float(np.percentile(a, 50)), "p99_ms": float(np.percentile(a, 99))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=2000, help="timed calls per configuration")
    parser.add_argument("--seconds", type=float, default=3.0, help="per throughput run")
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--out", type=Path, default=Path("replicas_redis.json"))
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    proc, url, startup_s = start_redis()
    configs = ["local", "redis", "redis-fresh"]
    result: dict[str, Any] = {
        "redis_startup_s": startup_s,
        "latency": {},
        "decisions_per_s": {},
        "failovers": {},  # Redis calls that timed out or failed: those answered from local state
    }
    try:
        latencies(["local"], url, 200)  # the first route imports what it needs, before forking
        result["ping_rtt"] = pct(ping_rtt(url))
        for config, (times, failed, trips) in latencies(configs, url, args.calls).items():
            result["latency"][config] = pct(times) | {"round_trips_per_call": trips}
            result["failovers"][config] = {"latency": failed}
        for config in configs:
            result["decisions_per_s"][config] = {}
            for n in args.processes:
                rate, failed = throughput(config, url, n, args.seconds)
                result["decisions_per_s"][config][str(n)] = rate
                result["failovers"][config][f"{n} processes"] = failed
    finally:
        proc.terminate()
        proc.wait()
    base = result["latency"]["local"]
    rtt = result["ping_rtt"]
    print(
        f"redis-server start-up: {1e3 * startup_s:.0f} ms; one round trip (PING): "
        f"p50 {rtt['p50_ms']:.3f} ms, p99 {rtt['p99_ms']:.3f} ms"
    )
    head = "".join(f"{n} proc/s".rjust(11) for n in args.processes)
    print(
        f"{'config':12} {'p50 ms':>8} {'p99 ms':>8} {'+p50 ms':>8} {'+p99 ms':>8} {'trips':>6}"
        + head
    )
    print("(+p50/+p99: added to a call over local state; trips: Redis round trips per call;")
    print(" N proc/s: decisions per second summed over N processes)")
    for config in configs:
        lat = result["latency"][config]
        lat["added_p50_ms"] = lat["p50_ms"] - base["p50_ms"]
        lat["added_p99_ms"] = lat["p99_ms"] - base["p99_ms"]
        rates = "".join(
            f"{result['decisions_per_s'][config][str(n)]:11.0f}" for n in args.processes
        )
        print(
            f"{config:12} {lat['p50_ms']:8.2f} {lat['p99_ms']:8.2f} {lat['added_p50_ms']:8.2f} "
            f"{lat['added_p99_ms']:8.2f} {lat['round_trips_per_call']:6.2f}" + rates
        )
    print("Redis calls answered from local state (timeouts):", json.dumps(result["failovers"]))
    args.out.write_text(json.dumps(result, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
