"""Routing data: which LLM answered which query how well, and at what cost.

`RoutingData` is the in-memory form every loader returns: ``n`` queries × ``m`` LLMs.

Formats read by :func:`load_routing_data` (the format is detected from the columns):

* **RouterBench** (``withmartian/routerbench``): one row per query; per model ``M`` a score
  column ``M``, ``M|total_cost`` and ``M|model_response``; ``prompt`` is a stringified list of
  turns; optional ``eval_name``, ``sample_id``, ``split``.
* **LLMRouter** (``ulab-uiuc/LLMRouter``, as in ``llmrouter_nim``): ``question``, ``task_name``,
  ``score__<model>`` columns, prices in a ``default_llm.json`` beside the file.
* **generic** (ours), long format, one row per (query, LLM)::

      sample_id, query, llm, quality            required; quality in [0, 1]
      cost, input_tokens, output_tokens,        optional; cost in USD per call
      latency, task, split                      optional; split is "train" / "test"

  as CSV, parquet or JSON lines. Prices may come in a ``prices.json`` beside it:
  ``{"llm": {"input_price": 0.15, "output_price": 0.6}}`` (USD per million tokens).
"""

from __future__ import annotations

import ast
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from .errors import DataFormatError
from .spec import LLMSpec
from .text import estimate_tokens

__all__ = [
    "ASSUMED_OUTPUT_TOKENS",
    "RoutingData",
    "effective_prices",
    "estimate_tokens",
    "load_generic",
    "load_llmrouter",
    "load_routerbench",
    "load_routerbench_hub",
    "load_routing_data",
]

log = logging.getLogger(__name__)

#: Output length assumed when a data set has prices but no token counts (LLMRouter).
ASSUMED_OUTPUT_TOKENS = 200
#: Input length of the reference call that sets a cold router's cost scale (see ``c_ref``).
REFERENCE_INPUT_TOKENS = 100
_GENERIC_REQUIRED = ("sample_id", "query", "llm", "quality")
_GENERIC_OPTIONAL = ("cost", "input_tokens", "output_tokens", "latency", "task", "split")


def _optional_matrix(value: np.ndarray | None, shape: tuple[int, int], name: str) -> None:
    if value is not None and value.shape != shape:
        raise DataFormatError(f"{name} has shape {value.shape}, expected {shape} (queries × LLMs).")


@dataclass
class RoutingData:
    """``n`` queries × ``m`` LLMs of observed quality (and optionally cost, tokens, latency).

    Args:
        queries: The query texts, length ``n``.
        llms: The LLM names, length ``m``.
        quality: ``(n, m)`` observed quality in [0, 1]; NaN is not allowed.
        cost: ``(n, m)`` observed USD cost per call, or None.
        sample_ids: Unique id per query (defaults to the row number).
        tasks: Task label per query, or None.
        split: ``"train"``/``"test"`` per query, or None.
        input_tokens, output_tokens, latency: ``(n, m)`` optional observations.
        specs: Prices and limits per LLM, when the data set has them.
        source: Name of the format it came from; ``"synthetic"`` marks generated data.
    """

    queries: list[str]
    llms: list[str]
    quality: np.ndarray
    cost: np.ndarray | None = None
    sample_ids: list[str] = field(default_factory=list)
    tasks: list[str] | None = None
    split: list[str] | None = None
    input_tokens: np.ndarray | None = None
    output_tokens: np.ndarray | None = None
    latency: np.ndarray | None = None
    specs: dict[str, LLMSpec] = field(default_factory=dict)
    source: str = "generic"

    def __post_init__(self) -> None:
        self.queries = [str(q) for q in self.queries]
        self.llms = [str(m) for m in self.llms]
        n, m = len(self.queries), len(self.llms)
        if len(set(self.llms)) != m:
            raise DataFormatError(f"LLM names must be unique, got {self.llms}.")
        self.quality = np.asarray(self.quality, dtype=float)
        if self.quality.shape != (n, m):
            raise DataFormatError(
                f"quality has shape {self.quality.shape}, expected {(n, m)} "
                f"({n} queries × {m} LLMs)."
            )
        bad = np.argwhere(~np.isfinite(self.quality))
        if len(bad):
            i, j = bad[0]
            raise DataFormatError(
                f"quality must be finite numbers; found {len(bad)} NaN/inf values, first at "
                f"query {i} ({self.sample_id_or(i)!r}) for LLM {self.llms[j]!r}. Drop or fill "
                "those rows first (the RouterBench loader drops incomplete rows by default)."
            )
        for name in ("cost", "input_tokens", "output_tokens", "latency"):
            value = getattr(self, name)
            if value is not None:
                value = np.asarray(value, dtype=float)
                setattr(self, name, value)
            _optional_matrix(value, (n, m), name)
        if self.cost is not None and np.any(self.cost[np.isfinite(self.cost)] < 0):
            raise DataFormatError("cost must be >= 0 USD per call; found negative values.")
        if not self.sample_ids:
            self.sample_ids = [str(i) for i in range(n)]
        self.sample_ids = [str(s) for s in self.sample_ids]
        if len(self.sample_ids) != n:
            raise DataFormatError(f"sample_ids has {len(self.sample_ids)} entries, expected {n}.")
        for name in ("tasks", "split"):
            value = getattr(self, name)
            if value is not None:
                value = [str(v) for v in value]
                setattr(self, name, value)
                if len(value) != n:
                    raise DataFormatError(f"{name} has {len(value)} entries, expected {n}.")
        if self.split is not None:
            unknown = sorted(set(self.split) - {"train", "test"})
            if unknown:
                raise DataFormatError(f"split values must be 'train' or 'test', got {unknown}.")

    def sample_id_or(self, i: int) -> str:
        return self.sample_ids[i] if self.sample_ids else str(i)

    def __len__(self) -> int:
        return len(self.queries)

    @property
    def has_tokens(self) -> bool:
        return self.input_tokens is not None and self.output_tokens is not None

    def subset(self, rows: Sequence[int] | np.ndarray) -> RoutingData:
        """The rows ``rows`` (indices), all LLMs."""
        idx = np.asarray(rows, dtype=int)

        def pick(values: list[str] | None) -> list[str] | None:
            return None if values is None else [values[i] for i in idx]

        def pick_matrix(values: np.ndarray | None) -> np.ndarray | None:
            return None if values is None else values[idx]

        return replace(
            self,
            queries=[self.queries[i] for i in idx],
            quality=self.quality[idx],
            cost=pick_matrix(self.cost),
            sample_ids=[self.sample_ids[i] for i in idx],
            tasks=pick(self.tasks),
            split=pick(self.split),
            input_tokens=pick_matrix(self.input_tokens),
            output_tokens=pick_matrix(self.output_tokens),
            latency=pick_matrix(self.latency),
        )

    def select_llms(self, names: Sequence[str]) -> RoutingData:
        """The same queries for the LLMs ``names`` only, in that order."""
        missing = [n for n in names if n not in self.llms]
        if missing:
            raise DataFormatError(f"LLMs {missing} are not in the data; it has {self.llms}.")
        cols = [self.llms.index(n) for n in names]

        def pick(values: np.ndarray | None) -> np.ndarray | None:
            return None if values is None else values[:, cols]

        return replace(
            self,
            llms=list(names),
            quality=self.quality[:, cols],
            cost=pick(self.cost),
            input_tokens=pick(self.input_tokens),
            output_tokens=pick(self.output_tokens),
            latency=pick(self.latency),
            specs={n: s for n, s in self.specs.items() if n in names},
        )

    def train_test_split(
        self, test_size: float = 0.2, seed: int = 0
    ) -> tuple[RoutingData, RoutingData]:
        """Rows marked ``split == "test"`` when there are any, else a seeded random split."""
        if self.split is not None and "test" in self.split:
            train = [i for i, s in enumerate(self.split) if s == "train"]
            test = [i for i, s in enumerate(self.split) if s == "test"]
            return self.subset(train), self.subset(test)
        if not 0 < test_size < 1:
            raise DataFormatError(f"test_size must be in (0, 1), got {test_size!r}.")
        perm = np.random.default_rng(seed).permutation(len(self))
        n_test = int(round(test_size * len(self)))
        return self.subset(np.sort(perm[n_test:])), self.subset(np.sort(perm[:n_test]))

    def mean_cost(self) -> np.ndarray:
        """Per-LLM mean observed cost (NaN where the data has no cost)."""
        if self.cost is None:
            return np.full(len(self.llms), np.nan)
        return np.nanmean(self.cost, axis=0)


# --------------------------------------------------------------------------- file reading


def _read_table(path: Path, *, trust_pickle: bool = False) -> Any:
    import pandas as pd

    suffix = path.suffix.lower()
    if suffix == ".parquet":
        return pd.read_parquet(path)
    if suffix == ".csv":
        return pd.read_csv(path)
    if suffix in (".jsonl", ".json"):
        return pd.read_json(path, lines=suffix == ".jsonl")
    if suffix in (".pkl", ".pickle"):
        if not trust_pickle:
            raise DataFormatError(
                f"Refusing to load the pickle {str(path)!r}: a pickle can run arbitrary code. "
                "Pass trust_pickle=True (CLI: --trust-pickle) only for a file you trust, or "
                "convert it to parquet/CSV."
            )
        return pd.read_pickle(path)  # noqa: S301 - explicit opt-in above
    raise DataFormatError(
        f"Unsupported file type {suffix!r} for {str(path)!r}; allowed are .parquet, .csv, "
        ".jsonl, .json and (opt-in) .pkl."
    )


def _turns_to_text(prompt: Any) -> str:
    """RouterBench stores the prompt as a stringified list of turns."""
    if isinstance(prompt, str) and prompt.startswith("["):
        try:
            turns = ast.literal_eval(prompt)
        except (ValueError, SyntaxError):
            return prompt
        if isinstance(turns, (list, tuple)):
            return "\n".join(str(t) for t in turns)
    if isinstance(prompt, (list, tuple)):
        return "\n".join(str(t) for t in prompt)
    return str(prompt)


def _routerbench_models(columns: Sequence[str]) -> list[str]:
    return [c.split("|", 1)[0] for c in columns if c.endswith("|total_cost")]


def _from_routerbench_frame(df: Any, *, drop_incomplete: bool, source: str) -> RoutingData:
    models = _routerbench_models(df.columns)
    if not models:
        raise DataFormatError("No '<model>|total_cost' columns: not RouterBench format.")
    missing = [m for m in models if m not in df.columns]
    if "prompt" not in df.columns or missing:
        raise DataFormatError(
            f"RouterBench data needs a 'prompt' column and a score column per model; missing "
            f"{(['prompt'] if 'prompt' not in df.columns else []) + missing}."
        )
    incomplete = df[models].isna().any(axis=1) | df[[f"{m}|total_cost" for m in models]].isna().any(
        axis=1
    )
    if incomplete.any():
        if not drop_incomplete:
            first = df.index[incomplete.to_numpy()][0]
            raise DataFormatError(
                f"{int(incomplete.sum())} rows have NaN scores or costs (first: row {first}). "
                "Pass drop_incomplete=True to drop them."
            )
        log.warning("Dropping %d RouterBench rows with NaN scores or costs.", int(incomplete.sum()))
        df = df[~incomplete.to_numpy()]
    if "sample_id" in df.columns:
        df = df.drop_duplicates("sample_id", keep="first")
    queries = [_turns_to_text(p) for p in df["prompt"]]
    cost = df[[f"{m}|total_cost" for m in models]].to_numpy(dtype=float)
    out_tok = None
    if all(f"{m}|model_response" in df.columns for m in models):
        out_tok = np.array(
            [
                [estimate_tokens(_turns_to_text(r)) for r in df[f"{m}|model_response"]]
                for m in models
            ],
            dtype=float,
        ).T
    return RoutingData(
        queries=queries,
        llms=models,
        quality=df[models].to_numpy(dtype=float),
        cost=cost,
        sample_ids=list(df["sample_id"]) if "sample_id" in df.columns else [],
        tasks=list(df["eval_name"]) if "eval_name" in df.columns else None,
        split=list(df["split"]) if "split" in df.columns else None,
        output_tokens=out_tok,
        specs=effective_prices(queries, models, cost),
        source=source,
    )


def effective_prices(
    queries: Sequence[str], llms: Sequence[str], cost: np.ndarray
) -> dict[str, LLMSpec]:
    """LLMSpecs with a per-input-token price that reproduces the observed costs (median ratio).

    For data that has per-call costs but no price table (RouterBench): the price makes a cost
    prior possible for an LLM added without history, and lets the adapters price a call.
    """
    tokens = np.array([estimate_tokens(q) for q in queries], dtype=float)[:, None]
    ratio = np.where(np.isfinite(cost), cost / tokens * 1e6, np.nan)
    return {
        m: LLMSpec(
            m,
            input_price=float(np.nanmedian(ratio[:, j])) if np.isfinite(ratio[:, j]).any() else 0.0,
        )
        for j, m in enumerate(llms)
    }


def load_routerbench(
    path: str | Path, *, drop_incomplete: bool = True, trust_pickle: bool = False
) -> RoutingData:
    """Load a RouterBench file (parquet, CSV or, with ``trust_pickle=True``, pickle)."""
    df = _read_table(Path(path), trust_pickle=trust_pickle)
    return _from_routerbench_frame(df, drop_incomplete=drop_incomplete, source="routerbench")


def load_routerbench_hub(
    filename: str = "routerbench_0shot.pkl",
    *,
    repo_id: str = "withmartian/routerbench",
    trust_pickle: bool = False,
    download: Callable[..., str] | None = None,
    drop_incomplete: bool = True,
) -> RoutingData:
    """Download RouterBench from the Hugging Face Hub and load it.

    The hub ships pickles; loading one needs ``trust_pickle=True``. ``download`` defaults to
    ``huggingface_hub.hf_hub_download`` and is injectable (tests pass a local stand-in).
    """
    if download is None:
        from huggingface_hub import hf_hub_download

        download = hf_hub_download
    local = download(repo_id=repo_id, filename=filename, repo_type="dataset")
    return load_routerbench(local, drop_incomplete=drop_incomplete, trust_pickle=trust_pickle)


def _read_prices(path: Path) -> dict[str, LLMSpec]:
    raw = json.loads(path.read_text())
    specs = {}
    for name, info in raw.items():
        if not isinstance(info, dict):
            raise DataFormatError(f"{str(path)!r}: price entry for {name!r} must be an object.")
        specs[name] = LLMSpec(
            name=name,
            input_price=float(info.get("input_price", 0.0)),
            output_price=float(info.get("output_price", 0.0)),
        )
    return specs


def load_llmrouter(path: str | Path, *, prices: str | Path | None = None) -> RoutingData:
    """Load LLMRouter routing data (``score__<model>`` columns, prices from ``default_llm.json``).

    The data has no per-query tokens, so cost is priced from estimated tokens: the question's
    :func:`estimate_tokens` in, :data:`ASSUMED_OUTPUT_TOKENS` out.
    """
    path = Path(path)
    df = _read_table(path)
    models = [c[len("score__") :] for c in df.columns if c.startswith("score__")]
    if not models or "question" not in df.columns:
        raise DataFormatError(
            f"{str(path)!r} is not LLMRouter format: it needs 'question' and 'score__<model>' "
            f"columns; it has {list(df.columns)[:10]}."
        )
    prices_path = Path(prices) if prices else path.with_name("default_llm.json")
    specs = _read_prices(prices_path) if prices_path.exists() else {}
    missing = [m for m in models if m not in specs]
    if missing:
        raise DataFormatError(f"No prices for {missing} in {str(prices_path)!r}.")
    queries = [str(q) for q in df["question"]]
    in_tok = np.array([[estimate_tokens(q)] * len(models) for q in queries], dtype=float)
    out_tok = np.full_like(in_tok, ASSUMED_OUTPUT_TOKENS)
    price_in = np.array([specs[m].input_price for m in models])
    price_out = np.array([specs[m].output_price for m in models])
    return RoutingData(
        queries=queries,
        llms=models,
        quality=df[[f"score__{m}" for m in models]].to_numpy(dtype=float),
        cost=(in_tok * price_in + out_tok * price_out) / 1e6,
        sample_ids=[
            str(s) for s in (df["row_in_file"] if "row_in_file" in df.columns else range(len(df)))
        ],
        tasks=list(df["task_name"].astype(str)) if "task_name" in df.columns else None,
        split=list(df["split"]) if "split" in df.columns else None,
        input_tokens=in_tok,
        output_tokens=out_tok,
        specs={m: specs[m] for m in models},
        source="llmrouter",
    )


def _pivot(df: Any, column: str, ids: list[str], llms: list[str]) -> np.ndarray | None:
    if column not in df.columns:
        return None
    wide = df.pivot(index="sample_id", columns="llm", values=column)
    return wide.reindex(index=ids, columns=llms).to_numpy(dtype=float)


def load_generic(path: str | Path, *, prices: str | Path | None = None) -> RoutingData:
    """Load our generic long format (see the module docstring)."""
    path = Path(path)
    df = _read_table(path)
    missing = [c for c in _GENERIC_REQUIRED if c not in df.columns]
    if missing:
        raise DataFormatError(
            f"{str(path)!r} lacks the columns {missing}; the generic format needs "
            f"{list(_GENERIC_REQUIRED)} and may have {list(_GENERIC_OPTIONAL)}."
        )
    df = df.assign(sample_id=df["sample_id"].astype(str), llm=df["llm"].astype(str))
    dup = df.duplicated(["sample_id", "llm"])
    if dup.any():
        row = df[dup].iloc[0]
        raise DataFormatError(
            f"{int(dup.sum())} duplicate (sample_id, llm) rows, first ({row['sample_id']!r}, "
            f"{row['llm']!r}); each pair may appear once."
        )
    ids = list(dict.fromkeys(df["sample_id"]))
    llms = list(dict.fromkeys(df["llm"]))
    firsts = df.drop_duplicates("sample_id").set_index("sample_id").reindex(ids)
    quality = _pivot(df, "quality", ids, llms)
    assert quality is not None
    if np.isnan(quality).any():
        i, j = np.argwhere(np.isnan(quality))[0]
        raise DataFormatError(
            f"Every query needs a quality for every LLM (or a NaN-free file): sample "
            f"{ids[i]!r} has none for LLM {llms[j]!r}."
        )
    prices_path = Path(prices) if prices else path.with_name("prices.json")
    return RoutingData(
        queries=list(firsts["query"]),
        llms=llms,
        quality=quality,
        cost=_pivot(df, "cost", ids, llms),
        sample_ids=ids,
        tasks=list(firsts["task"]) if "task" in df.columns else None,
        split=list(firsts["split"]) if "split" in df.columns else None,
        input_tokens=_pivot(df, "input_tokens", ids, llms),
        output_tokens=_pivot(df, "output_tokens", ids, llms),
        latency=_pivot(df, "latency", ids, llms),
        specs=_read_prices(prices_path) if prices_path.exists() else {},
        source="generic",
    )


def load_routing_data(path: str | Path, *, trust_pickle: bool = False) -> RoutingData:
    """Load routing data in any supported format, detected from its columns."""
    path = Path(path)
    if not path.exists():
        raise DataFormatError(f"Routing data file {str(path)!r} does not exist.")
    df = _read_table(path, trust_pickle=trust_pickle)
    columns = list(df.columns)
    if any(c.endswith("|total_cost") for c in columns):
        return _from_routerbench_frame(df, drop_incomplete=True, source="routerbench")
    if any(c.startswith("score__") for c in columns):
        return load_llmrouter(path)
    if sum(c in columns for c in _GENERIC_REQUIRED) >= 2:  # looks generic: name what is missing
        return load_generic(path)
    raise DataFormatError(
        f"Cannot tell the format of {str(path)!r} from its columns {columns[:12]}. Expected "
        "RouterBench ('<model>|total_cost'), LLMRouter ('score__<model>') or the generic long "
        f"format ({list(_GENERIC_REQUIRED)})."
    )
