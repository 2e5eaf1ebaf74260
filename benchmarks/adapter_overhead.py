"""Time `MixLLMChat.invoke` adds over calling the chosen child directly (zero-latency fake child).

The children are :class:`~mixllm_langchain.testing.ScriptedChatModel` (no network, no latency),
the router is a MixLLM router fitted on the RouterBench subset (11 LLMs, so 11 children) with the
chosen encoder, and prompts are RouterBench prompts. Reported, p50/p99 ms:

- ``direct``: ``child.invoke(prompt)`` for the child the router picked;
- ``mixllm``: ``chat.invoke(prompt)`` (routing with the embedding, dispatch, metadata);
- ``overhead`` = mixllm − direct, per prompt (embedding cache off, so each call embeds);
- async: 32 concurrent ``ainvoke`` calls (``asyncio.gather``), per-call latency and the wall
  time of the whole wave, against 32 concurrent direct ``ainvoke`` calls; each wave runs twice,
  micro-batched (the default: the waiting calls share one ``route_batch``) and routed one by one.

Usage::

    nice -n 5 python benchmarks/adapter_overhead.py --encoder static --out adapter.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mixllm_core.data import load_routing_data
from mixllm_core.experiments.bench import adapt_to
from mixllm_core.router import MixLLMRouter


def pct(values: Sequence[float]) -> dict[str, float]:
    a = 1e3 * np.asarray(values)
    return {
        "p50_ms": float(np.percentile(a, 50)),
        "p99_ms": float(np.percentile(a, 99)),
        "mean_ms": float(a.mean()),
    }


def make_chat(encoder_name: str, cache_dir: Path | None) -> tuple[Any, list[str]]:
    from benchmarks_encoders import DATA, ENCODERS  # type: ignore[import-not-found]

    from mixllm_langchain import MixLLMChat
    from mixllm_langchain.testing import ScriptedChatModel

    data = load_routing_data(DATA)
    train, test = data.train_test_split(seed=0)
    fit_enc = ENCODERS[encoder_name](1_000_000, cache_dir)
    router = MixLLMRouter(encoder=fit_enc, seed=0).fit(train)
    router.encoder = ENCODERS[encoder_name](0, cache_dir)  # uncached: every call embeds
    adapt_to(router.encoder, train.queries)  # the same corpus part as the fitted encoder's
    children = {n: ScriptedChatModel(model_name=n, reply="ok") for n in router.llms}
    return MixLLMChat(models=children, router=router), test.queries


async def _wave(calls: Sequence[Any]) -> tuple[list[float], float]:
    async def one(call: Any) -> float:
        t0 = time.perf_counter()
        await call()
        return time.perf_counter() - t0

    t0 = time.perf_counter()
    lat = await asyncio.gather(*(one(c) for c in calls))
    return list(lat), time.perf_counter() - t0


def run(
    encoder_name: str, n: int, concurrency: int, waves: int, cache_dir: Path | None
) -> dict[str, Any]:
    chat, prompts = make_chat(encoder_name, cache_dir)
    prompts = prompts[:n]
    chat.invoke(prompts[0])  # warm-up
    direct, routed, overhead = [], [], []
    for p in prompts:
        t0 = time.perf_counter()
        msg = chat.invoke(p)
        t1 = time.perf_counter()
        child = chat.models[msg.response_metadata["mixllm"]["llm"]]
        t2 = time.perf_counter()
        child.invoke(p)
        t3 = time.perf_counter()
        routed.append(t1 - t0), direct.append(t3 - t2), overhead.append((t1 - t0) - (t3 - t2))
    children = list(chat.models.values())
    a_direct, a_routed, w_direct, w_routed = [], [], [], []
    a_single, w_single, batch_sizes = [], [], []
    dispatcher = chat._dispatcher

    async def routed_wave(calls: list[Any]) -> tuple[list[float], float, list[int]]:
        lat, wall = await _wave(calls)
        batcher = dispatcher._batchers.get(asyncio.get_running_loop())
        return lat, wall, [] if batcher is None else list(batcher.batch_sizes)

    for w in range(waves):
        batch = [prompts[(w * concurrency + i) % len(prompts)] for i in range(concurrency)]
        pairs = [(children[i % len(children)], p) for i, p in enumerate(batch)]
        lat, wall = asyncio.run(_wave([lambda c=c, p=p: c.ainvoke(p) for c, p in pairs]))
        a_direct += lat
        w_direct.append(wall)
        calls = [lambda p=p: chat.ainvoke(p) for p in batch]
        # the same wave micro-batched and routed one call at a time, in alternating order
        for batched in (True, False) if w % 2 == 0 else (False, True):
            dispatcher.micro_batch = batched
            lat, wall, sizes = asyncio.run(routed_wave(calls))
            (a_routed if batched else a_single).extend(lat)
            (w_routed if batched else w_single).append(wall)
            batch_sizes += sizes
    dispatcher.micro_batch = True
    return {
        "encoder": encoder_name,
        "n_sync": len(prompts),
        "concurrency": concurrency,
        "waves": waves,
        "sync": {"direct": pct(direct), "mixllm": pct(routed), "overhead": pct(overhead)},
        "async": {
            "direct_per_call": pct(a_direct),
            "mixllm_per_call": pct(a_routed),
            "direct_wave_wall": pct(w_direct),
            "mixllm_wave_wall": pct(w_routed),
            "mixllm_calls_per_s": concurrency * waves / float(np.sum(w_routed)),
            "micro_batch_sizes": batch_sizes,
            "unbatched_per_call": pct(a_single),
            "unbatched_wave_wall": pct(w_single),
            "unbatched_calls_per_s": concurrency * waves / float(np.sum(w_single)),
        },
        "loadavg": os.getloadavg(),
    }


def format_result(r: dict[str, Any]) -> str:
    s, a = r["sync"], r["async"]
    rows = [
        f"encoder: {r['encoder']}   ({r['n_sync']} sync calls; {r['waves']} waves of "
        f"{r['concurrency']} concurrent async calls)",
        f"{'':<32} {'p50 ms':>9} {'p99 ms':>9}",
    ]
    for label, v in (
        ("sync direct child.invoke", s["direct"]),
        ("sync MixLLMChat.invoke", s["mixllm"]),
        ("sync overhead (added)", s["overhead"]),
        ("async direct, per call", a["direct_per_call"]),
        ("async MixLLMChat, per call", a["mixllm_per_call"]),
        ("async direct, wave of 32", a["direct_wave_wall"]),
        ("async MixLLMChat, wave of 32", a["mixllm_wave_wall"]),
        ("  unbatched, per call", a["unbatched_per_call"]),
        ("  unbatched, wave of 32", a["unbatched_wave_wall"]),
    ):
        rows.append(f"{label:<32} {v['p50_ms']:>9.2f} {v['p99_ms']:>9.2f}")
    rows.append(
        f"async MixLLMChat throughput: {a['mixllm_calls_per_s']:.0f} calls/s micro-batched "
        f"(batches {a['micro_batch_sizes'][:12]}...), {a['unbatched_calls_per_s']:.0f} "
        "calls/s routed one by one"
    )
    return "\n".join(rows)


def main(argv: Sequence[str] | None = None) -> None:
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import encoder_speed

    sys.modules["benchmarks_encoders"] = encoder_speed
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--encoder", default="static", choices=sorted(encoder_speed.ENCODERS))
    p.add_argument("--n", type=int, default=200, help="sync calls")
    p.add_argument("--concurrency", type=int, default=32)
    p.add_argument("--waves", type=int, default=10)
    p.add_argument("--cache-dir", type=Path, default=None)
    p.add_argument("--out", type=Path, required=True, help="JSON output path")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    result = run(args.encoder, args.n, args.concurrency, args.waves, args.cache_dir)
    print(format_result(result))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
