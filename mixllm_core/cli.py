"""The ``mixllm`` command: ``mixllm train``, ``bench``, ``simulate`` and ``refit``."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .errors import ConfigError, MixLLMError

__all__ = ["main"]


#: ``--encoder`` values: the default static encoder (table + corpus part), the table alone,
#: MiniLM itself, MiniLM int8 in ONNX Runtime (64 tokens).
ENCODER_CHOICES = ("static", "static-plain", "minilm", "onnx")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="mixllm", description="MixLLM query router.")
    sub = p.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="fit a router on a routing-data file and save it")
    t.add_argument("--data", required=True, help="routing data (RouterBench, LLMRouter or generic)")
    t.add_argument("--out", required=True, help="directory to save the router into")
    t.add_argument("--quality-model", default="linear", choices=["linear", "knn", "rf", "mlp"])
    t.add_argument("--lam", type=float, default=1.0, help="default λ (quality weight)")
    t.add_argument("--trust-pickle", action="store_true", help="allow a .pkl data file you trust")
    t.add_argument("--seed", type=int, default=0)

    b = sub.add_parser(
        "bench", help="benchmark mixllm against baselines (synthetic data by default)"
    )
    b.add_argument("--data", default=None, help="routing data file; omit for the synthetic world")
    b.add_argument("--out", default="bench-out", help="output directory")
    b.add_argument("--reference", default=None, help="reference LLM (default: the most expensive)")
    b.add_argument("--quality-model", default="linear", choices=["linear", "knn", "rf", "mlp"])
    b.add_argument("--seed", type=int, default=0)
    b.add_argument("--n-timed", type=int, default=200, help="queries timed for routing latency")
    b.add_argument(
        "--cache-dir",
        default=None,
        help="embedding cache (default $MIXLLM_CACHE_DIR or ~/.cache/mixllm)",
    )
    b.add_argument("--no-progress", action="store_true")
    b.add_argument(
        "--encoder",
        default="static",
        choices=ENCODER_CHOICES,
        help="query encoder: static MiniLM token table + corpus part (default, ~1 ms/query), "
        "the static table alone, MiniLM itself, or MiniLM in ONNX Runtime int8 "
        "(pip install 'mixllm[onnx]'); see docs/dev/speed.md",
    )
    b.add_argument(
        "--compare-encoders",
        nargs="+",
        default=None,
        choices=ENCODER_CHOICES,
        metavar="ENCODER",
        help="also fit the MixLLM router with each of these encoders (the first is the baseline) "
        "and print per-stage routing times beside held-out quality; writes encoders.json. "
        f"Choices: {', '.join(ENCODER_CHOICES)}",
    )
    b.add_argument(
        "--seeds",
        nargs="+",
        type=int,
        default=None,
        help="split seeds of --compare-encoders (default: --seed); quality is averaged over them",
    )
    b.add_argument(
        "--embedding",
        default="plain",
        choices=["plain", "tags"],
        help="router representation: the plain embedding, or with tag features (tags.py)",
    )
    b.add_argument(
        "--online",
        action="store_true",
        help="also replay 70%% of the training rows with none/refined/binary feedback",
    )
    b.add_argument(
        "--pool-change",
        default=None,
        metavar="LLM",
        help="also replay with LLM held out and added after 30%% of the stream",
    )
    b.add_argument("--stream-lam", type=float, default=5.0, help="λ while streaming")
    sim = sub.add_parser(
        "simulate",
        help="a Poisson query stream against a pool with limited "
        "concurrency, routed with and without the latency penalty",
    )
    sim.add_argument("--data", default=None, help="routing data file; omit for the synthetic world")
    sim.add_argument("--out", default="simulate-out", help="output directory (simulate.json)")
    sim.add_argument("--rate", type=float, default=1.5, help="arrivals per second")
    sim.add_argument("--n", type=int, default=3000, help="queries in the stream")
    sim.add_argument("--tau", type=float, default=20.0, help="time limit per query (s)")
    sim.add_argument("--lam", type=float, default=5.0, help="λ (quality weight)")
    sim.add_argument("--beta", type=float, default=0.1, help="penalty weight β")
    sim.add_argument("--gamma", type=float, default=1.0)
    sim.add_argument("--xi", type=float, default=0.5, help="the penalty grows past ξ·τ")
    sim.add_argument("--concurrency", type=int, default=4, help="parallel requests per LLM")
    sim.add_argument("--speed", type=float, default=40.0, help="output tokens per second per LLM")
    sim.add_argument("--quality-model", default="linear", choices=["linear", "knn", "rf", "mlp"])
    sim.add_argument("--seed", type=int, default=0)
    sim.add_argument(
        "--cache-dir",
        default=None,
        help="embedding cache (default $MIXLLM_CACHE_DIR or ~/.cache/mixllm)",
    )
    r = sub.add_parser(
        "refit",
        help="refit a saved router on a shared database log and publish the new version "
        "(one process at a time; every replica swaps it in at its next sync)",
    )
    r.add_argument("--log", required=True, help="database URL, e.g. postgresql+psycopg://...")
    r.add_argument("--router", required=True, help="the saved router directory replicas load")
    r.add_argument("--min-feedback", type=int, default=20)
    r.add_argument("--lease-ttl", type=float, default=3600.0, help="seconds the lease holds")
    return p


def _refit(args: argparse.Namespace) -> int:
    from .refit_job import run_refit

    report = run_refit(
        args.log, args.router, min_feedback=args.min_feedback, lease_ttl_s=args.lease_ttl
    )
    if not report.ran:
        print("another process holds the refit lease; nothing done")
        return 0
    used = ", ".join(f"{n}: {c}" for n, c in report.refit.items()) or "none"
    print(
        f"published version {report.version} (feedback up to id {report.feedback_seq}; "
        f"rows per refit LLM: {used}) in {report.seconds:.1f} s"
    )
    return 0


def _simulate(args: argparse.Namespace) -> int:
    import json

    from .data import load_routing_data
    from .experiments.bench import cached_encoder
    from .experiments.simulate import compare_penalty, default_profiles, format_simulation
    from .experiments.synthetic import make_synthetic_world
    from .router import MixLLMRouter

    data = load_routing_data(args.data) if args.data else make_synthetic_world(seed=args.seed)
    train, test = data.train_test_split(seed=args.seed)
    encoder = cached_encoder(data, args.cache_dir)
    router = MixLLMRouter(encoder=encoder, quality_model=args.quality_model, seed=args.seed).fit(
        train, show_progress=True
    )
    encoder.encode(test.queries, show_progress=True)
    encoder.save_cache()
    result = compare_penalty(
        router,
        test,
        lam=args.lam,
        rate_qps=args.rate,
        n_queries=args.n,
        tau=args.tau,
        beta=args.beta,
        gamma=args.gamma,
        xi=args.xi,
        seed=args.seed,
        profiles=default_profiles(router, args.concurrency, args.speed),
    )
    result["data"] = "synthetic" if data.source == "synthetic" else str(args.data)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "simulate.json").write_text(json.dumps(result, indent=1))
    print(format_simulation(result))
    print(f"wrote {out / 'simulate.json'}")
    return 0


def _bench_encoders(name: str, data: Any = None, cache_dir: str | None = None) -> tuple[Any, Any]:
    """(encoder, uncached timing encoder) for ``mixllm bench --encoder``.

    MiniLM: with ``data``, the encoder with a disk cache of that data's embeddings; without,
    (None, None), which ``run_bench`` reads as the same.
    """
    if name == "minilm":
        if data is None:
            return None, None
        from .encoders import SentenceEncoder
        from .experiments.bench import cached_encoder

        return cached_encoder(data, cache_dir), SentenceEncoder(cache_size=0)
    if name in ("static", "static-plain"):
        from .encoders import StaticEncoder

        lsa_dims = 0 if name == "static-plain" else StaticEncoder().lsa_dims
        return StaticEncoder(lsa_dims=lsa_dims), StaticEncoder(lsa_dims=lsa_dims, cache_size=0)
    if name == "onnx":
        from .encoders import OnnxEncoder

        return OnnxEncoder(quantize=True, max_seq_length=64), OnnxEncoder(
            quantize=True, max_seq_length=64, cache_size=0
        )
    raise ConfigError(f"Invalid encoder {name!r}. Available encoders are {list(ENCODER_CHOICES)}.")


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        if args.command == "simulate":
            return _simulate(args)
        if args.command == "refit":
            return _refit(args)
        if args.command == "train":
            from .data import load_routing_data
            from .decision import DecisionPolicy
            from .router import MixLLMRouter

            data = load_routing_data(args.data, trust_pickle=args.trust_pickle)
            train, _ = (data, None) if data.split is None else data.train_test_split(seed=args.seed)
            router = MixLLMRouter(
                quality_model=args.quality_model,
                seed=args.seed,
                policy=DecisionPolicy(lam=args.lam),
            )
            router.fit(train, show_progress=True)
            path = router.save(args.out)
            print(
                f"saved a router over {len(router.llms)} LLMs ({', '.join(router.llms)}) to {path}"
            )
            return 0
        from .data import load_routing_data
        from .experiments.bench import (
            compare_encoders,
            format_encoder_table,
            format_table,
            run_bench,
        )
        from .experiments.synthetic import make_synthetic_world
        from .router import MixLLMRouter

        data = load_routing_data(args.data) if args.data else make_synthetic_world(seed=args.seed)
        encoders = _bench_encoders(args.encoder, data, args.cache_dir)
        result = run_bench(
            data,
            args.out,
            encoder=encoders[0],
            timing_encoder=encoders[1],
            reference=args.reference,
            seed=args.seed,
            n_timed=args.n_timed,
            show_progress=not args.no_progress,
            cache_dir=args.cache_dir,
            online=args.online,
            pool_change=args.pool_change,
            stream_lam=args.stream_lam,
            embedding=args.embedding,
            make_router=lambda: MixLLMRouter(quality_model=args.quality_model, seed=args.seed),
        )
        print(format_table(result.summary))
        print(f"wrote {Path(args.out) / 'decisions.csv'}, summary.json and pareto.png")
        if args.compare_encoders:
            import json

            comparison = compare_encoders(
                data,
                {n: _bench_encoders(n, data, args.cache_dir) for n in args.compare_encoders},
                seeds=args.seeds or [args.seed],
                reference=args.reference,
                quality_model=args.quality_model,
                n_timed=args.n_timed,
            )
            (Path(args.out) / "encoders.json").write_text(json.dumps(comparison, indent=1))
            print(format_encoder_table(comparison))
            print(f"wrote {Path(args.out) / 'encoders.json'}")
        return 0
    except MixLLMError as exc:
        print(f"mixllm: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
