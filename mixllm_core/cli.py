"""The ``mixllm`` command: ``mixllm train``, ``route``, ``bench``, ``calibrate``, ``simulate`` and ``refit``."""

from __future__ import annotations

import argparse
import copy
import json
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
_ENCODER_HELP = (
    "query encoder: static MiniLM token table + corpus part (~1 ms/query), the static table "
    "alone, MiniLM itself, or MiniLM in ONNX Runtime int8 (pip install 'mixllm[onnx]')"
)


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows every option's default, with or without a help text (not None, False or [])."""

    def _format_action(self, action: argparse.Action) -> str:
        if action.help is None and _shows_default(action):
            action = copy.copy(action)
            action.help = "(default: %(default)s)"
        return super()._format_action(action)

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if not _shows_default(action):
            return action.help
        return super()._get_help_string(action)


def _shows_default(action: argparse.Action) -> bool:
    default = action.default
    return not (
        default is None or default is False or default == [] or default == argparse.SUPPRESS
    )


class _Parser(argparse.ArgumentParser):
    """An argument parser whose help shows defaults; subcommand parsers inherit the class."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", _HelpFormatter)
        super().__init__(*args, **kwargs)


def _price_arg(text: str) -> tuple[str, tuple[float, float]]:
    """``NAME=INPUT,OUTPUT`` (USD per million tokens) from ``--price``."""
    name, sep, values = text.rpartition("=")
    parts = values.split(",")
    try:
        if not sep or not name.strip() or len(parts) != 2:
            raise ValueError(text)
        price = (float(parts[0]), float(parts[1]))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected NAME=INPUT,OUTPUT in USD per million tokens (e.g. gpt-4o=2.5,10), "
            f"got {text!r}"
        ) from None
    return name.strip(), price


def _parser() -> argparse.ArgumentParser:
    from . import __version__

    p = _Parser(prog="mixllm", description="MixLLM query router.")
    p.add_argument("--version", action="version", version=f"mixllm {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="fit a router on a routing-data file and save it")
    t.add_argument("--data", default=None, help="routing data (RouterBench, LLMRouter or generic)")
    t.add_argument(
        "--log",
        default=None,
        help="a router's SQLite log: also train on the feedback it logged in production, "
        "weighted by the logged propensities (alone, without --data: the log only)",
    )
    t.add_argument("--out", required=True, help="directory to save the router into")
    t.add_argument("--quality-model", default="linear", choices=["linear", "knn", "rf", "mlp"])
    t.add_argument("--lam", type=float, default=1.0, help="default λ (quality weight)")
    t.add_argument("--trust-pickle", action="store_true", help="allow a .pkl data file you trust")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--encoder", default="static", choices=ENCODER_CHOICES, help=_ENCODER_HELP)
    t.add_argument(
        "--prices",
        default=None,
        metavar="FILE",
        help='JSON prices per LLM, USD per million tokens: {"NAME": [INPUT, OUTPUT], ...} '
        "(or LLMSpec fields per NAME); overrides prices from the data",
    )
    t.add_argument(
        "--price",
        action="append",
        type=_price_arg,
        default=[],
        metavar="NAME=IN,OUT",
        help="the price of one LLM in USD per million input and output tokens (repeatable; "
        "overrides --prices)",
    )

    r = sub.add_parser(
        "route", help="route one query with a saved router and show why (per-candidate breakdown)"
    )
    r.add_argument("query", help="the query text")
    r.add_argument("--router", required=True, metavar="DIR", help="a saved router directory")
    r.add_argument("--lam", type=float, default=None, help="λ (default: the router's own)")
    r.add_argument("--json", action="store_true", help="print the decision as JSON")
    r.add_argument(
        "--task",
        default=None,
        help="the query's task when you know it (one the router was trained on): the router "
        "predicts from it instead of its tagger's guess",
    )

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
        help=_ENCODER_HELP + "; see docs/dev/speed.md",
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
        help="split seeds of --compare-encoders (default: --seed); quality is averaged over them; "
        "only with --compare-encoders",
    )
    b.add_argument(
        "--embedding",
        default="tags",
        choices=["plain", "tags"],
        help="router representation: with tag features (the router's default), or the plain "
        "embedding",
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
    b.add_argument(
        "--cv",
        type=int,
        default=None,
        metavar="K",
        help="cross-validate instead: repeated K-fold over the training rows, stratified by "
        "task, identical prompts in one fold; every router on every fold, mean ± s.e.; "
        "writes cv.json (default: off; 5 with --task-shift)",
    )
    b.add_argument(
        "--repeats", type=int, default=None, help="repeats of --cv (default: 2)", metavar="R"
    )
    b.add_argument(
        "--task-shift",
        action="store_true",
        help="cross-validate leaving whole tasks out (each test fold holds unseen tasks)",
    )
    b.add_argument(
        "--repeat-share",
        type=float,
        default=0.0,
        metavar="R",
        help="with --cv: add R x |test fold| of the fold's training rows to its test rows "
        "(repeated traffic; mixllm without its memory of seen queries is scored too)",
    )
    b.add_argument(
        "--task-mix",
        default=None,
        metavar="MIX",
        help="with --cv: also score each test fold re-weighted to a task mix: 'uniform' (every "
        'task counts equally), a JSON object {"task": share, ...} or a JSON file holding one '
        "(tasks without a share weigh 0), e.g. the mix of the traffic you expect",
    )
    c = sub.add_parser(
        "calibrate", help="pick λ on validation data for a target mean cost or quality share"
    )
    c.add_argument("--router", required=True, help="directory of a saved router")
    c.add_argument("--data", required=True, help="validation routing data (all its rows)")
    goal = c.add_mutually_exclusive_group(required=True)
    goal.add_argument("--target-cost", type=float, help="mean USD per query to stay within")
    goal.add_argument(
        "--target-quality-share",
        type=float,
        help="share in [0, 1] of the best single LLM's mean quality to reach, cheapest first",
    )
    c.add_argument("--apply", action="store_true", help="save the chosen λ into the router")
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


def _calibrate(args: argparse.Namespace) -> int:
    from .data import load_routing_data
    from .router import MixLLMRouter

    router = MixLLMRouter.load(args.router)
    data = load_routing_data(args.data)
    result = router.calibrate(
        data,
        target_cost=args.target_cost,
        target_quality_share=args.target_quality_share,
        apply=args.apply,
    )
    unit = "USD" if result.target == "cost" else "quality"
    print(
        f"λ = {result.lam:.6g}: mean cost {result.cost:.4g} USD ({result.cost_source}), mean "
        f"quality {result.quality:.4f} on {len(data)} queries; target {result.target_value:.4g} "
        f"{unit} {'met' if result.met else 'NOT met (closest λ)'}"
    )
    if args.apply:
        router.save(args.router)
        print(f"saved λ = {result.lam:.6g} into {args.router}")
    return 0 if result.met else 1


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


def _task_mix(value: str | None) -> str | dict[str, float] | None:
    """``--task-mix``: ``uniform``, a JSON object of task shares, or a JSON file holding one."""
    if value is None or value == "uniform":
        return value
    allowed = "'uniform', a JSON object {\"task\": share, ...} or a JSON file holding one"
    text = value
    if not value.lstrip().startswith("{"):
        if not Path(value).is_file():
            raise ConfigError(f"Invalid --task-mix {value!r}: use {allowed}.")
        text = Path(value).read_text(encoding="utf-8")
    try:
        mix = json.loads(text)
    except json.JSONDecodeError as e:
        raise ConfigError(f"--task-mix {value!r} is not valid JSON ({e}); use {allowed}.") from e
    bad = (
        {k: v for k, v in mix.items() if isinstance(v, bool) or not isinstance(v, (int, float))}
        if isinstance(mix, dict)
        else None
    )
    if bad is None or bad:
        what = f"shares that are not numbers: {bad}" if bad else f"a {type(mix).__name__}"
        raise ConfigError(f"--task-mix {value!r} gives {what}; use {allowed}.")
    return {str(k): float(v) for k, v in mix.items()}


def _bench_cv(args: argparse.Namespace, data: Any, encoder: Any) -> int:
    """``mixllm bench --cv K [--repeats R] [--task-shift]``."""
    from .experiments.cv import bench_cv

    report = bench_cv(
        data,
        args.out,
        k=5 if args.cv is None else args.cv,
        repeats=2 if args.repeats is None else args.repeats,
        task_shift=args.task_shift,
        seed=args.seed,
        encoder=encoder,
        reference=args.reference,
        quality_model=args.quality_model,
        embedding=args.embedding,
        show_progress=not args.no_progress,
        data_name=args.data or "synthetic",
        repeat_share=args.repeat_share,
        task_mix=args.task_mix,
    )
    if hasattr(encoder, "save_cache"):
        encoder.save_cache()
    print(report.format_table())
    if args.task_mix is not None:
        print(report.with_task_mix().format_table())
    print(f"wrote {Path(args.out) / 'cv.json'}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command == "bench" and args.seeds and not args.compare_encoders:
        parser.error(
            f"--seeds {' '.join(map(str, args.seeds))} only applies with --compare-encoders "
            f"ENCODER ... (choices: {', '.join(ENCODER_CHOICES)}); use --seed for one bench run"
        )
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        if (
            args.command == "bench"
            and args.repeat_share
            and args.cv is None
            and not args.task_shift
        ):
            raise ConfigError("--repeat-share needs --cv K or --task-shift.")
        if args.command == "bench":
            args.task_mix = _task_mix(args.task_mix)
        if args.command == "route":
            return _route(args)
        if args.command == "simulate":
            return _simulate(args)
        if args.command == "calibrate":
            return _calibrate(args)
        if args.command == "refit":
            return _refit(args)
        if args.command == "train":
            from .data import load_routing_data, load_routing_log
            from .decision import DecisionPolicy
            from .router import MixLLMRouter

            train = None
            if args.data is not None:
                data = load_routing_data(args.data, trust_pickle=args.trust_pickle)
                train = data if data.split is None else data.train_test_split(seed=args.seed)[0]
            if args.log is not None:
                logged = load_routing_log(args.log)
                train = logged if train is None else train.concat(logged)
            if train is None:
                raise ConfigError("mixllm train needs --data, --log or both.")
            router = MixLLMRouter(
                _priced_specs(train, _read_prices(args)),
                encoder=_train_encoder(args.encoder),
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
        if args.cv is not None or args.task_shift:
            return _bench_cv(args, data, encoders[0])
        if args.repeats is not None:
            raise ConfigError("--repeats needs --cv K or --task-shift.")
        if args.task_mix is not None:
            raise ConfigError("--task-mix needs --cv K or --task-shift.")
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


def _read_prices(args: argparse.Namespace) -> dict[str, Any]:
    """``--prices FILE`` then ``--price NAME=IN,OUT`` (the latter wins), by LLM name."""
    import json

    prices: dict[str, Any] = {}
    if args.prices is not None:
        path = Path(args.prices)
        if not path.is_file():
            raise ConfigError(f"--prices {str(path)!r} does not exist or is not a file.")
        try:
            prices = json.loads(path.read_text(encoding="utf-8"))
        except ValueError as exc:
            raise ConfigError(f"--prices {str(path)!r} is not valid JSON: {exc}") from exc
        if not isinstance(prices, dict):
            raise ConfigError(
                f"--prices {str(path)!r} must hold a JSON object "
                f'{{"NAME": [INPUT, OUTPUT], ...}}, got a {type(prices).__name__}.'
            )
    prices.update(dict(args.price))
    return prices


def _train_encoder(name: str) -> Any:
    """A fresh encoder for ``mixllm train --encoder``; None: the router's default."""
    if name == "static":
        return None
    if name == "static-plain":
        from .encoders import StaticEncoder

        return StaticEncoder(lsa_dims=0)
    if name == "minilm":
        from .encoders import SentenceEncoder

        return SentenceEncoder()
    if name == "onnx":
        from .encoders import OnnxEncoder

        return OnnxEncoder(quantize=True, max_seq_length=64)
    raise ConfigError(f"Invalid encoder {name!r}. Available encoders are {list(ENCODER_CHOICES)}.")


def _priced_specs(data: Any, prices: dict[str, Any]) -> list[Any]:
    """The pool of ``mixllm train``: each LLM of ``data`` with its given price, else the data's."""
    from .factory import spec_from_price

    unknown = sorted(set(prices) - set(data.llms))
    if unknown:
        raise ConfigError(
            f"Prices given for {unknown}, which the data does not have; its LLMs are {data.llms}."
        )
    return [
        spec_from_price(n, prices[n]) if n in prices else data.specs.get(n, n) for n in data.llms
    ]


def _route(args: argparse.Namespace) -> int:
    import json
    from dataclasses import asdict, replace

    import numpy as np

    from .router import MixLLMRouter

    router = MixLLMRouter.load(args.router)
    policy = router.policy if args.lam is None else replace(router.policy, lam=args.lam)
    decision = router.route(args.query, policy=policy, task=args.task)
    # a zero-quality, zero-cost call scores its exploration bonus or latency penalty alone
    zeros = np.zeros(len(decision.candidates))
    waits = np.array([c.wait_s for c in decision.candidates])
    spread = np.array([c.uncertainty for c in decision.candidates])
    penalty = 0.0 - router.maker.scores(zeros, zeros, 1.0, wait=waits, policy=policy)
    bonus = 0.0 + router.maker.scores(zeros, zeros, 1.0, uncertainty=spread, policy=policy)
    flips = decision.break_even()
    rows = [
        {
            **asdict(c),
            "exploration_bonus": float(b),
            "latency_penalty": float(pen),
            "takes_over": "chosen" if c.llm == decision.llm else _takes_over(flips.get(c.llm)),
        }
        for c, b, pen in zip(decision.candidates, bonus, penalty)
    ]
    if args.json:
        out = {**decision.to_dict(), "query": args.query, "candidates": rows}
        print(json.dumps(out, indent=1))
        return 0
    print(f"routed to {decision.llm} (λ={decision.lam:g}, decision {decision.decision_id})")
    if decision.fallback:
        print(f"fallback: {decision.fallback}")
    print(
        f"  {'llm':<24} {'quality':>8} {'cost (USD)':>11} {'exploration':>11} "
        f"{'latency pen.':>12} {'score':>8} {'takes over':>11}  eligible"
    )
    for row in sorted(rows, key=lambda r: -r["score"]):
        mark = "*" if row["llm"] == decision.llm else " "
        eligible = "yes" if row["eligible"] else f"no: {row['reason']}"
        print(
            f"{mark} {row['llm']:<24} {row['quality']:>8.4f} {row['cost']:>11.3g} "
            f"{row['exploration_bonus']:>11.4g} {row['latency_penalty']:>12.4g} "
            f"{row['score']:>8.4f} {row['takes_over']:>11}  {eligible}"
        )
    print(
        f"score = λ/(1+λ)·quality − 1/(1+λ)·cost/{router.c_ref():.3g} (reference cost)"
        " + exploration − latency penalty"
    )
    print(
        "takes over: the λ at which that LLM would beat the chosen one on quality and cost alone"
        " (λ > x: better and pricier; λ < x: cheaper and worse)"
    )
    return 0


def _takes_over(flip: tuple[str, float] | None) -> str:
    """One candidate's :meth:`~mixllm_core.decision.RoutingDecision.break_even` as a short text."""
    if flip is None:  # not eligible
        return "-"
    kind, lam = flip
    return {"above": f"λ > {lam:.3g}", "below": f"λ < {lam:.3g}"}.get(kind, kind)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
