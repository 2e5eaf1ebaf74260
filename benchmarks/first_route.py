"""How long a fresh process takes to route its first query with a saved router.

Each measurement is a new Python process that imports ``mixllm_core``, loads a saved router
(``MixLLMRouter.load``) and routes one query, timing the three steps. Cases:

- ``cold cache``: an empty ``MIXLLM_CACHE_DIR`` (a fresh install: nothing built or cached yet);
- ``warm cache``: the same cache directory again (what every later start sees);
- ``baseline: sklearn``: warm, but the logistic regressions built as scikit-learn objects at
  load, as before they were held as their arrays (``load_estimator(path)`` without ``lazy``):
  importing scikit-learn imports scipy and pandas;
- ``baseline: skops``: warm, but every estimator read through skops, as before the default
  linear model was read directly (importing skops imports every scikit-learn module, and torch);
- ``floor: import numpy``: the interpreter plus numpy, the least any start can cost.

The router is trained once (default encoder and quality model, synthetic world) unless
``--router`` names one. Modules are imported from bytecode, as after ``pip install`` (which
compiles it): the children write and read it under a private ``PYTHONPYCACHEPREFIX``, filled by
that first run; ``--no-bytecode`` compiles every module from source in every process instead
(what ``PYTHONDONTWRITEBYTECODE=1`` without ``__pycache__`` gives). Prints a table (median of
``--repeats`` runs) and writes JSON::

    python benchmarks/first_route.py --repeats 3 --out first-route.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

_ROOT = Path(__file__).resolve().parents[1]
_TRAIN = """
from mixllm_core import MixLLMRouter
from mixllm_core.experiments.synthetic import make_synthetic_world
MixLLMRouter().fit(make_synthetic_world(1000, seed=0)).save({out!r})
"""

_FIRST_ROUTE = """
import json, sys, time
t0 = time.perf_counter()
import mixllm_core
t1 = time.perf_counter()
if {baseline!r}:
    import mixllm_core.estimator_io as io
    import mixllm_core.persistence.files as files
    files.load_estimator = lambda path, lazy=False: io.load_estimator(path)  # sklearn objects
    if {baseline!r} == "skops":
        io._flat_logistic = lambda path: None  # skops reads every estimator
router = mixllm_core.MixLLMRouter.load({router!r})
t2 = time.perf_counter()
decision = router.route("Write a python function that checks whether a number is prime.")
t3 = time.perf_counter()
heavy = [m for m in ("sklearn", "scipy", "pandas", "skops.io", "torch", "sentence_transformers")
         if m in sys.modules]
print(json.dumps({{"import": t1 - t0, "load": t2 - t1, "route": t3 - t2, "llm": decision.llm,
                  "heavy_modules": heavy}}))
"""

_FLOOR = """
import json, time
t0 = time.perf_counter()
import numpy
print(json.dumps({"import": time.perf_counter() - t0, "load": 0.0, "route": 0.0,
                  "heavy_modules": []}))
"""


def _child(code: str, cache: Path, pycache: Path | None) -> dict[str, object]:
    env = {**os.environ, "MIXLLM_CACHE_DIR": str(cache), "HF_HUB_OFFLINE": "1"}
    if pycache is not None:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(pycache)
    start = time.perf_counter()
    done = subprocess.run(  # from the repository root: this checkout's code is measured
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True, cwd=_ROOT
    )
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    result["process"] = time.perf_counter() - start  # interpreter start and exit included
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--router", default=None, help="a saved router (default: train one)")
    parser.add_argument("--repeats", type=int, default=3, help="processes per case")
    parser.add_argument("--out", default="first-route.json", help="JSON results")
    parser.add_argument(
        "--no-bytecode", action="store_true", help="compile from source in every process"
    )
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        router = args.router or str(Path(tmp) / "router")
        pycache = None if args.no_bytecode else Path(tmp) / "pycache"
        if args.router is None:
            _child(_TRAIN.format(out=router) + "print('{}')", Path(tmp) / "train-cache", pycache)
        for baseline in ("", "skops") if pycache else ():  # compiles what the cases import
            _child(_FIRST_ROUTE.format(router=router, baseline=baseline), Path(tmp) / "w", pycache)
        cases: dict[str, list[dict[str, object]]] = {}
        for i in range(args.repeats):  # interleaved, so load drift hits every case alike
            cold = Path(tmp) / f"cache-{i}"  # a new, empty cache directory per cold run
            run = [
                ("cold cache", _FIRST_ROUTE.format(router=router, baseline=""), cold),
                ("warm cache", _FIRST_ROUTE.format(router=router, baseline=""), cold),
                ("baseline: sklearn", _FIRST_ROUTE.format(router=router, baseline="sklearn"), cold),
                ("baseline: skops", _FIRST_ROUTE.format(router=router, baseline="skops"), cold),
                ("floor: import numpy", _FLOOR, cold),
            ]
            for name, code, cache in run:
                cases.setdefault(name, []).append(_child(code, cache, pycache))

    steps = ("import", "load", "route", "process")
    summary = {
        name: {
            **{s: statistics.median(float(r[s]) for r in runs) for s in steps},  # type: ignore[arg-type]
            "first": sum(statistics.median(float(r[s]) for r in runs) for s in steps[:3]),  # type: ignore[arg-type]
            "heavy_modules": runs[0]["heavy_modules"],
        }
        for name, runs in cases.items()
    }
    how = "from source" if args.no_bytecode else "from bytecode"
    print(
        f"first route of a saved router in a fresh process, modules {how} "
        f"(median of {args.repeats}, seconds)"
    )
    print(
        f"{'case':<22} {'import':>7} {'load':>7} {'route':>7} {'sum':>7} {'process':>8}  imported"
    )
    for name, row in summary.items():
        print(
            f"{name:<22} {row['import']:>7.2f} {row['load']:>7.2f} {row['route']:>7.2f} "
            f"{row['first']:>7.2f} {row['process']:>8.2f}  {', '.join(row['heavy_modules'])}"
        )
    Path(args.out).write_text(
        json.dumps(
            {
                "repeats": args.repeats,
                "bytecode": not args.no_bytecode,
                "cpus": os.cpu_count(),
                "summary": summary,
                "runs": cases,
            },
            indent=1,
        )
    )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
