"""Reading routing data files: RouterBench, LLMRouter and the generic long format (see
:mod:`mixllm_core.data` for the formats and what is allowed)."""

from __future__ import annotations

import ast
import json
import logging
import math
import numbers
from collections.abc import Callable, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError, DataFormatError
from ..spec import LLMSpec
from ..text import estimate_tokens
from .routing_data import (
    _GENERIC_OPTIONAL,
    _GENERIC_REQUIRED,
    _MATRICES,
    _SHOWN,
    _SPLITS,
    ASSUMED_OUTPUT_TOKENS,
    RoutingData,
    _check_values,
    _first_repeat,
    _rows,
)

__all__ = [
    "effective_prices",
    "load_generic",
    "load_llmrouter",
    "load_routerbench",
    "load_routerarena",
    "load_routerbench_hub",
    "load_routing_data",
]

log = logging.getLogger(__name__)

_KINDS = {
    ".parquet": "parquet",
    ".csv": "CSV",
    ".jsonl": "JSON lines",
    ".json": "JSON",
    ".pkl": "pickle",
    ".pickle": "pickle",
}


def _read_table(path: Path, *, trust_pickle: bool = False) -> Any:
    """The file as a DataFrame with string column names and rows numbered from 0."""
    import pandas as pd

    where = repr(str(path))
    try:
        exists, is_file, is_dir = path.exists(), path.is_file(), path.is_dir()
    except (OSError, ValueError) as exc:  # a name too long, a NUL byte
        raise DataFormatError(f"Cannot open the routing data file {where} ({exc}).") from exc
    if not exists:
        raise DataFormatError(f"Routing data file {where} does not exist.")
    if not is_file:
        kind = "a directory" if is_dir else "not a regular file"
        raise DataFormatError(f"{where} is {kind}; pass one routing data file.")
    suffix = path.suffix.lower()
    if suffix not in _KINDS:
        raise DataFormatError(
            f"Unsupported file type {suffix!r} for {where}; allowed are .parquet, .csv, "
            ".jsonl, .json and (opt-in) .pkl."
        )
    if _KINDS[suffix] == "pickle" and not trust_pickle:
        raise DataFormatError(
            f"Refusing to load the pickle {where}: a pickle can run arbitrary code. "
            "Pass trust_pickle=True (CLI: --trust-pickle) only for a file you trust, or "
            "convert it to parquet/CSV."
        )
    try:
        if suffix == ".parquet":
            df = pd.read_parquet(path)
        elif suffix == ".csv":
            df = pd.read_csv(path)
        elif suffix in (".jsonl", ".json"):
            df = pd.read_json(path, lines=suffix == ".jsonl")
        else:
            df = pd.read_pickle(path)  # noqa: S301 - explicit opt-in above
    except Exception as exc:  # a parser fed arbitrary bytes may fail with any exception type
        reason = f"{type(exc).__name__}: {exc}".splitlines()[0][:200]
        raise DataFormatError(f"Cannot read {where} as {_KINDS[suffix]} ({reason}).") from exc
    if not isinstance(df, pd.DataFrame):
        raise DataFormatError(f"{where} holds a {type(df).__name__}, not a table.")
    columns = [str(c) for c in df.columns]
    repeated = sorted({c for c in columns if columns.count(c) > 1})
    if repeated:
        raise DataFormatError(f"{where} repeats the columns {repeated}; each may appear once.")
    if len(df) == 0:
        raise DataFormatError(
            f"{where} has no data rows (columns {columns[:12]}); routing data needs at least "
            "one query."
        )
    df.columns = columns
    df.index = pd.RangeIndex(len(df))
    return df


def _delimiter_hint(columns: Sequence[str]) -> str:
    if len(columns) == 1 and any(sep in columns[0] for sep in ";\t|"):
        return (
            " Its single column looks delimited by something other than a comma: CSV must use ','."
        )
    return ""


def _numbers(df: Any, column: str, where: str) -> np.ndarray:
    """The column as floats (NaN for an empty cell); a cell that is not a number raises."""
    import pandas as pd

    series = df[column]
    dtype = series.dtype
    if pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_complex_dtype(dtype):
        return np.array(series.to_numpy(dtype=float, na_value=np.nan), dtype=float)
    values = np.full(len(series), np.nan)
    bad = []
    for i, cell in enumerate(series.tolist()):
        if isinstance(cell, (str, numbers.Real, Decimal)):
            try:
                values[i] = float(cell)
            except (ValueError, OverflowError):
                bad.append(i)
        elif not (cell is None or cell is pd.NA or cell is pd.NaT):
            bad.append(i)
    if bad:
        shown = ", ".join(f"{series.iloc[i]!r:.40}" for i in bad[:_SHOWN])
        raise DataFormatError(
            f"{where}, column {column!r}: cells must be numbers; {_rows(series.index[bad])} "
            f"hold {shown}."
        )
    return values


def _timestamps(df: Any, column: str, where: str) -> np.ndarray:
    """A time column as seconds since the epoch: numbers as they are, dates and ISO 8601 texts
    converted (UTC unless they say otherwise); an empty cell is NaN."""
    import pandas as pd

    series = df[column]
    if pd.api.types.is_numeric_dtype(series.dtype):
        return _numbers(df, column, where)
    try:
        stamps = pd.to_datetime(series, utc=True, format="ISO8601")
    except (ValueError, TypeError) as exc:
        raise DataFormatError(
            f"{where}, column {column!r}: cells must be seconds since the epoch or ISO 8601 "
            f"times ({exc})."
        ) from exc
    seconds = (stamps - pd.Timestamp(0, tz="UTC")).dt.total_seconds()
    return np.array(seconds.to_numpy(dtype=float, na_value=np.nan), dtype=float)


def _column_texts(df: Any, column: str, where: str, *, nonblank: bool = False) -> list[str]:
    """The column as text; an empty cell (or a blank one, with ``nonblank``) raises."""
    series = df[column]
    empty = np.array(series.isna(), dtype=bool)
    texts = ["" if e else str(v) for e, v in zip(empty, series.tolist())]
    if nonblank:
        empty |= np.array([not t.strip() for t in texts], dtype=bool)
    if empty.any():
        raise DataFormatError(
            f"{where}, column {column!r}: empty in {_rows(series.index[empty])}; every row "
            f"needs a {column}."
        )
    return texts


def _column_split(df: Any, column: str, where: str) -> list[str]:
    split = _column_texts(df, column, where)
    bad = [i for i, s in enumerate(split) if s not in _SPLITS]
    if bad:
        raise DataFormatError(
            f"{where}, column {column!r}: allowed values are {list(_SPLITS)}; "
            f"{_rows(df.index[bad])} hold {sorted({split[i] for i in bad})[:_SHOWN]}."
        )
    return split


def _unique_ids(ids: list[str], df: Any, column: str, where: str) -> None:
    repeat = _first_repeat(ids)
    if repeat:
        rows = df.index[list(repeat)]
        raise DataFormatError(
            f"{where}, column {column!r}: {ids[repeat[0]]!r} is in rows {rows[0]} and {rows[1]}; "
            "each id may name one query only."
        )


def _matrix_of(df: Any, columns: Sequence[str], name: str, where: str) -> np.ndarray:
    """Columns ``columns`` as an ``(rows, len(columns))`` float matrix, checked for ``name``."""
    matrix = np.column_stack([_numbers(df, c, where) for c in columns])
    _check_values(
        matrix,
        name,
        f"{where}: the {name} columns",
        lambda cell: f"row {df.index[cell[0]]}, column {columns[cell[1]]!r}",
    )
    return matrix


def _turns(prompt: Any) -> list[Any] | None:
    """The turns of a RouterBench prompt (a stringified list), or None when it is not one."""
    if isinstance(prompt, str):
        try:
            prompt = ast.literal_eval(prompt)
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            return None
    if isinstance(prompt, (list, tuple, np.ndarray)):
        return list(prompt)
    return None


def _turns_to_text(prompt: Any) -> str:
    """A model response: the joined turns when it is a stringified list, else the text."""
    turns = _turns(prompt) if isinstance(prompt, str) and prompt.startswith("[") else None
    if turns is None and isinstance(prompt, (list, tuple)):
        turns = list(prompt)
    return str(prompt) if turns is None else "\n".join(str(t) for t in turns)


def _prompt_texts(df: Any, where: str) -> list[str]:
    texts, bad = [], []
    for label, prompt in zip(df.index, df["prompt"].tolist()):
        turns = _turns(prompt)
        if turns is None:
            bad.append(label)
        else:
            texts.append("\n".join(str(t) for t in turns))
    if bad:
        raise DataFormatError(
            f"{where}, column 'prompt': must hold each prompt as a stringified list of turns, "
            f"like \"['Question?', 'Answer:']\"; {_rows(bad)} hold something else "
            f"(first: {df.at[bad[0], 'prompt']!r:.60})."
        )
    return texts


def _routerbench_models(columns: Sequence[str]) -> list[str]:
    return [c.split("|", 1)[0] for c in columns if c.endswith("|total_cost")]


def _drop_repeated_queries(
    df: Any, prompts: list[str], where: str, *arrays: np.ndarray
) -> np.ndarray:
    """Row positions to keep: a repeated sample_id is dropped when its row is identical."""
    ids = _column_texts(df, "sample_id", where)
    first: dict[str, int] = {}
    keep = []
    for i, sid in enumerate(ids):
        j = first.setdefault(sid, i)
        if j == i:
            keep.append(i)
        elif prompts[i] != prompts[j] or any(not np.array_equal(a[i], a[j]) for a in arrays):
            raise DataFormatError(
                f"{where}, column 'sample_id': {sid!r} is in rows {df.index[j]} and "
                f"{df.index[i]} with different prompts, scores or costs; a sample_id names one "
                "query (identical repeats are dropped)."
            )
    return np.asarray(keep, dtype=int)


def _from_routerbench_frame(
    df: Any, *, path: Path, drop_incomplete: bool, source: str
) -> RoutingData:
    where = repr(str(path))
    models = _routerbench_models(df.columns)
    if not models:
        raise DataFormatError(f"{where}: no '<model>|total_cost' columns: not RouterBench format.")
    if any(not m.strip() for m in models):
        raise DataFormatError(f"{where}: a '|total_cost' column has no model name before the '|'.")
    missing = [m for m in ["prompt", *models] if m not in df.columns]
    if missing:
        raise DataFormatError(
            f"{where}: RouterBench data needs a 'prompt' column and a score column per model; "
            f"missing {missing}."
        )
    cost_columns = [f"{m}|total_cost" for m in models]
    scores = np.column_stack([_numbers(df, c, where) for c in [*models, *cost_columns]])
    incomplete = np.isnan(scores).any(axis=1)
    if incomplete.any():
        if not drop_incomplete:
            raise DataFormatError(
                f"{where}: {int(incomplete.sum())} rows have NaN scores or costs (first: "
                f"{_rows(df.index[incomplete])}). Pass drop_incomplete=True to drop them."
            )
        log.warning("Dropping %d RouterBench rows with NaN scores or costs.", int(incomplete.sum()))
        if incomplete.all():
            raise DataFormatError(f"{where}: every row has a NaN score or cost; none is left.")
        df = df[~incomplete]
    quality = _matrix_of(df, models, "quality", where)
    cost = _matrix_of(df, cost_columns, "cost", where)
    prompts = _prompt_texts(df, where)
    if "sample_id" in df.columns:
        keep = _drop_repeated_queries(df, prompts, where, quality, cost)
        df, quality, cost = df.iloc[keep], quality[keep], cost[keep]
        prompts = [prompts[i] for i in keep]
    out_tok = None
    if all(f"{m}|model_response" in df.columns for m in models):
        responses = [_column_texts(df, f"{m}|model_response", where) for m in models]
        out_tok = np.array(
            [[estimate_tokens(_turns_to_text(r)) for r in column] for column in responses],
            dtype=float,
        ).T
    return RoutingData(
        queries=prompts,
        llms=models,
        quality=quality,
        cost=cost,
        sample_ids=_column_texts(df, "sample_id", where) if "sample_id" in df.columns else [],
        tasks=_column_texts(df, "eval_name", where) if "eval_name" in df.columns else None,
        split=_column_split(df, "split", where) if "split" in df.columns else None,
        output_tokens=out_tok,
        specs=effective_prices(prompts, models, cost),
        source=source,
    )


def effective_prices(
    queries: Sequence[str], llms: Sequence[str], cost: np.ndarray
) -> dict[str, LLMSpec]:
    """LLMSpecs with a per-input-token price that reproduces the observed costs (median ratio).

    For data that has per-call costs but no price table (RouterBench): the price makes a cost
    prior possible for an LLM added without history, and lets the adapters price a call.

    Example:
        >>> effective_prices(["x" * 400], ["m"], np.array([[0.0002]]))["m"].input_price
        2.0
    """
    tokens = np.array([estimate_tokens(q) for q in queries], dtype=float)
    specs = {}
    for j, m in enumerate(llms):
        observed = np.isfinite(cost[:, j])
        with np.errstate(over="ignore"):
            ratio = cost[observed, j] / tokens[observed] * 1e6
        price = float(np.median(ratio)) if observed.any() else 0.0
        if not math.isfinite(price):
            raise DataFormatError(f"The costs of {m!r} are too large to turn into a price.")
        specs[m] = LLMSpec(m, input_price=price)
    return specs


def load_routerbench(
    path: str | Path, *, drop_incomplete: bool = True, trust_pickle: bool = False
) -> RoutingData:
    """Load a RouterBench file (parquet, CSV or, with ``trust_pickle=True``, pickle)."""
    path = Path(path)
    df = _read_table(path, trust_pickle=trust_pickle)
    return _from_routerbench_frame(
        df, path=path, drop_incomplete=drop_incomplete, source="routerbench"
    )


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


def _float(value: Any) -> Any:
    """An int or float as float; anything else unchanged (for LLMSpec to reject)."""
    return (
        float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else value
    )


def _read_prices(path: Path) -> dict[str, LLMSpec]:
    """``{llm: {"input_price": ..., "output_price": ...}}`` (USD per million tokens) as specs."""
    where = repr(str(path))
    expected = (
        'a JSON object {"<llm>": {"input_price": <number>, "output_price": <number>}} '
        "in USD per million tokens"
    )
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError) as exc:  # JSONDecodeError, UnicodeError
        raise DataFormatError(
            f"Cannot read the price table {where} ({exc}); it must be {expected}."
        ) from exc
    if not isinstance(raw, dict):
        raise DataFormatError(
            f"The price table {where} holds a {type(raw).__name__}; it must be {expected}."
        )
    specs = {}
    for name, info in raw.items():
        if not isinstance(info, dict):
            raise DataFormatError(f"{where}: price entry for {name!r} must be an object.")
        price_in, price_out = (info.get(key, 0.0) for key in ("input_price", "output_price"))
        try:  # LLMSpec rejects what is not a finite number >= 0
            specs[name] = LLMSpec(
                name, input_price=_float(price_in), output_price=_float(price_out)
            )
        except ConfigError as exc:
            raise DataFormatError(f"{where}: {exc}") from exc
    return specs


def _prices_beside(path: Path, prices: str | Path | None, default_name: str) -> dict[str, LLMSpec]:
    """The price table given, else ``default_name`` beside the data when there is one."""
    if prices:
        if not Path(prices).exists():
            raise DataFormatError(f"The price table {str(prices)!r} does not exist.")
        return _read_prices(Path(prices))
    beside = path.with_name(default_name)
    return _read_prices(beside) if beside.exists() else {}


def _from_llmrouter_frame(df: Any, path: Path, prices: str | Path | None) -> RoutingData:
    where = repr(str(path))
    models = [c[len("score__") :] for c in df.columns if c.startswith("score__")]
    if not models or "question" not in df.columns:
        raise DataFormatError(
            f"{where} is not LLMRouter format: it needs 'question' and 'score__<model>' "
            f"columns; it has {list(df.columns)[:10]}."
        )
    prices_path = Path(prices) if prices else path.with_name("default_llm.json")
    specs = _prices_beside(path, prices, "default_llm.json")
    missing = [m for m in models if m not in specs]
    if missing:
        raise DataFormatError(f"No prices for {missing} in {str(prices_path)!r}.")
    quality = _matrix_of(df, [f"score__{m}" for m in models], "quality", where)
    queries = _column_texts(df, "question", where)
    sample_ids = [str(i) for i in range(len(df))]
    if "row_in_file" in df.columns:
        sample_ids = _column_texts(df, "row_in_file", where)
        _unique_ids(sample_ids, df, "row_in_file", where)
    in_tok = np.array([[estimate_tokens(q)] * len(models) for q in queries], dtype=float)
    out_tok = np.full_like(in_tok, ASSUMED_OUTPUT_TOKENS)
    price_in = np.array([specs[m].input_price for m in models])
    price_out = np.array([specs[m].output_price for m in models])
    return RoutingData(
        queries=queries,
        llms=models,
        quality=quality,
        cost=(in_tok * price_in + out_tok * price_out) / 1e6,
        sample_ids=sample_ids,
        tasks=_column_texts(df, "task_name", where) if "task_name" in df.columns else None,
        split=_column_split(df, "split", where) if "split" in df.columns else None,
        input_tokens=in_tok,
        output_tokens=out_tok,
        specs={m: specs[m] for m in models},
        source="llmrouter",
    )


def load_llmrouter(path: str | Path, *, prices: str | Path | None = None) -> RoutingData:
    """Load LLMRouter routing data (``score__<model>`` columns, prices from ``default_llm.json``).

    The data has no per-query tokens, so cost is priced from estimated tokens: the question's
    :func:`estimate_tokens` in, :data:`ASSUMED_OUTPUT_TOKENS` out.
    """
    path = Path(path)
    return _from_llmrouter_frame(_read_table(path), path, prices)


def _same_per_sample(
    values: list[str], ids: list[str], first: dict[str, int], df: Any, column: str, where: str
) -> None:
    for k, (sid, value) in enumerate(zip(ids, values)):
        j = first[sid]
        if values[j] != value:
            raise DataFormatError(
                f"{where}, column {column!r}: sample_id {sid!r} has {values[j]!r:.60} in row "
                f"{df.index[j]} but {value!r:.60} in row {df.index[k]}; every row of a sample "
                f"repeats the same {column}."
            )


def _from_generic_frame(df: Any, path: Path, prices: str | Path | None) -> RoutingData:
    where = repr(str(path))
    missing = [c for c in _GENERIC_REQUIRED if c not in df.columns]
    if missing:
        raise DataFormatError(
            f"{where} lacks the columns {missing}; the generic format needs "
            f"{list(_GENERIC_REQUIRED)} and may have {list(_GENERIC_OPTIONAL)}."
            + _delimiter_hint(list(df.columns))
        )
    ids = _column_texts(df, "sample_id", where)
    llm_of_row = _column_texts(df, "llm", where, nonblank=True)
    numeric = {
        c: _timestamps(df, c, where) if c == "timestamp" else _numbers(df, c, where)
        for c in _MATRICES
        if c in df.columns
    }
    for name, column_values in numeric.items():
        _check_values(
            column_values,
            name,
            f"{where}, column {name!r}",
            lambda cell: f"row {df.index[cell[0]]}",
        )
    repeat = _first_repeat(list(zip(ids, llm_of_row)))
    if repeat:
        j, k = repeat
        n_dup = len(ids) - len(set(zip(ids, llm_of_row)))
        raise DataFormatError(
            f"{where}: {n_dup} duplicate (sample_id, llm) rows, first ({ids[k]!r}, "
            f"{llm_of_row[k]!r}) in rows {df.index[j]} and {df.index[k]}; each pair may appear once."
        )
    first: dict[str, int] = {}
    for i, sid in enumerate(ids):
        first.setdefault(sid, i)
    per_sample = {"query": _column_texts(df, "query", where)}
    if "task" in df.columns:
        per_sample["task"] = _column_texts(df, "task", where)
    if "split" in df.columns:
        per_sample["split"] = _column_split(df, "split", where)
    for column, values in per_sample.items():
        _same_per_sample(values, ids, first, df, column, where)
    samples, llms = list(first), list(dict.fromkeys(llm_of_row))
    row_of = {sid: i for i, sid in enumerate(samples)}
    col_of = {name: j for j, name in enumerate(llms)}
    r = np.array([row_of[s] for s in ids])
    c = np.array([col_of[name] for name in llm_of_row])
    filled = np.zeros((len(samples), len(llms)), dtype=bool)
    filled[r, c] = True  # a (query, LLM) pair without a row is unobserved

    def grid(values: np.ndarray) -> np.ndarray:
        out = np.full(filled.shape, np.nan)
        out[r, c] = values
        return out

    firsts = [first[s] for s in samples]
    if "timestamp" in numeric:  # oldest first
        stamps = grid(numeric["timestamp"])
        with np.errstate(all="ignore"):
            when = np.where(np.isfinite(stamps), stamps, np.inf).min(axis=1)
        order = np.argsort(when, kind="stable")
        samples, firsts, filled = (
            [samples[i] for i in order],
            [firsts[i] for i in order],
            filled[order],
        )
        r = np.argsort(order)[r]
    matrices = {name: grid(values) for name, values in numeric.items()}
    return RoutingData(
        queries=[per_sample["query"][i] for i in firsts],
        llms=llms,
        quality=matrices["quality"],
        cost=matrices.get("cost"),
        sample_ids=samples,
        tasks=[per_sample["task"][i] for i in firsts] if "task" in per_sample else None,
        split=[per_sample["split"][i] for i in firsts] if "split" in per_sample else None,
        input_tokens=matrices.get("input_tokens"),
        output_tokens=matrices.get("output_tokens"),
        latency=matrices.get("latency"),
        specs=_prices_beside(path, prices, "prices.json"),
        source="generic",
        observed=filled,
        propensity=matrices.get("propensity"),
        timestamp=matrices.get("timestamp"),
    )


def load_generic(path: str | Path, *, prices: str | Path | None = None) -> RoutingData:
    """Load our generic long format (see the module docstring)."""
    path = Path(path)
    return _from_generic_frame(_read_table(path), path, prices)


#: RouterArena's cached-results columns (one row per query and model) and ours.
_ROUTERARENA = {
    "global_index": "sample_id",
    "question": "query",
    "model": "llm",
    "score": "quality",
    "inference_cost_usd": "cost",
    "input_tokens": "input_tokens",
    "output_tokens": "output_tokens",
    "dataset": "task",
}
_ROUTERARENA_REQUIRED = ("question", "model", "score", "inference_cost_usd")


def _routerarena_prices(path: Path) -> dict[str, LLMSpec]:
    """RouterArena's ``model_cost.json`` beside the data (``{model: {"input_token_price_per_
    million": x, "output_token_price_per_million": y}}``) as specs; {} when there is none."""
    beside = path.with_name("model_cost.json")
    if not beside.exists():
        return {}
    where = repr(str(beside))
    try:
        raw = json.loads(beside.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError) as exc:
        raise DataFormatError(f"Cannot read the price table {where} ({exc}).") from exc
    if not isinstance(raw, dict):
        raise DataFormatError(f"The price table {where} must be a JSON object of models.")
    specs = {}
    for name, info in raw.items():
        if not isinstance(info, dict):
            raise DataFormatError(f"{where}: price entry for {name!r} must be an object.")
        try:
            specs[name] = LLMSpec(
                name,
                input_price=_float(info.get("input_token_price_per_million", 0.0)),
                output_price=_float(info.get("output_token_price_per_million", 0.0)),
            )
        except ConfigError as exc:
            raise DataFormatError(f"{where}: {exc}") from exc
    return specs


def _from_routerarena_frame(df: Any, path: Path) -> RoutingData:
    where = repr(str(path))
    missing = [c for c in _ROUTERARENA_REQUIRED if c not in df.columns]
    if missing:
        raise DataFormatError(
            f"{where} is not RouterArena format: it needs {list(_ROUTERARENA_REQUIRED)}; "
            f"missing {missing}."
        )
    keep = [c for c in _ROUTERARENA if c in df.columns]
    frame = df[keep].rename(columns=_ROUTERARENA)
    if "sample_id" not in frame.columns:
        frame["sample_id"] = frame["query"]
    score = _numbers(frame, "quality", where)
    low = np.isfinite(score) & (score < 0)
    if low.any():
        log.info("Clipping %d RouterArena scores below 0 (METEOR) to 0.", int(low.sum()))
    frame["quality"] = np.clip(score, 0.0, 1.0)
    data = _from_generic_frame(frame, path, None)
    prices = _routerarena_prices(path)
    data.specs = {m: prices[m] for m in data.llms if m in prices}
    data.source = "routerarena"
    return data


def load_routerarena(path: str | Path) -> RoutingData:
    """Load RouterArena cached model results (long format: one row per query and model).

    Columns read: ``question`` (the query), ``model``, ``score`` (quality), ``inference_cost_usd``
    (cost) and, when present, ``global_index`` (the query id; else the question),
    ``input_tokens``, ``output_tokens`` (measured) and ``dataset`` (the task). Prices come from
    RouterArena's ``model_cost.json`` beside the file when there is one (USD per million tokens).

    Scores graded with METEOR (translation, NarrativeQA) can be slightly negative (down to about
    −0.03); they are clipped to [0, 1], since routing data quality must lie there.

    Example:
        >>> load_routerarena("no/such/cached_results.parquet")
        Traceback (most recent call last):
        ...
        mixllm_core.errors.DataFormatError: Routing data file 'no/such/cached_results.parquet' does not exist.
    """
    path = Path(path)
    return _from_routerarena_frame(_read_table(path), path)


def load_routing_data(path: str | Path, *, trust_pickle: bool = False) -> RoutingData:
    """Load routing data in any supported format, detected from its columns.

    Every problem with the file raises :class:`~mixllm_core.errors.DataFormatError` naming the
    file, the column, the first offending rows and what is allowed.

    Example:
        >>> load_routing_data("no/such/file.csv")
        Traceback (most recent call last):
        ...
        mixllm_core.errors.DataFormatError: Routing data file 'no/such/file.csv' does not exist.
    """
    path = Path(path)
    df = _read_table(path, trust_pickle=trust_pickle)
    columns = list(df.columns)
    if any(c.endswith("|total_cost") for c in columns):
        return _from_routerbench_frame(df, path=path, drop_incomplete=True, source="routerbench")
    if any(c.startswith("score__") for c in columns):
        return _from_llmrouter_frame(df, path, None)
    if all(c in columns for c in _ROUTERARENA_REQUIRED) and "llm" not in columns:
        return _from_routerarena_frame(df, path)
    if sum(c in columns for c in _GENERIC_REQUIRED) >= 2:  # looks generic: name what is missing
        return _from_generic_frame(df, path, None)
    raise DataFormatError(
        f"Cannot tell the format of {str(path)!r} from its columns {columns[:12]}. Expected "
        "RouterBench ('<model>|total_cost'), LLMRouter ('score__<model>'), RouterArena "
        f"({list(_ROUTERARENA_REQUIRED)}) or the generic long format ({list(_GENERIC_REQUIRED)})."
        + _delimiter_hint(columns)
    )


def load_routing_log(log: Any) -> RoutingData:
    """The feedback a router logged in production as partial routing data.

    One row per decision that received feedback: its prompt, the chosen LLM, the score, the
    propensity with which the LLM was chosen (NaN when it was logged without one), when it was
    decided, and the cost, tokens and latency of its recorded outcome when there is one. Every
    other (query, LLM) pair is unobserved.

    Args:
        log: A :class:`~mixllm_core.log.RoutingLog`, or the path of a SQLite log file.

    Raises:
        DataFormatError: the file does not exist, or no feedback with a stored prompt is logged
            (a log written with ``store_prompts=False`` cannot be trained on).

    Example:
        >>> from mixllm_core.log import MemoryLog
        >>> load_routing_log(MemoryLog())
        Traceback (most recent call last):
        ...
        mixllm_core.errors.DataFormatError: The routing log holds no feedback on a decision with a stored prompt; nothing to train on.
    """
    from ..log import RoutingLog, SQLiteLog

    if not isinstance(log, RoutingLog):
        path = Path(log)
        if not path.is_file():
            raise DataFormatError(f"Routing log {str(path)!r} does not exist.")
        log = SQLiteLog(path)
    tables = log.rows()
    decisions = {row["decision_id"]: row for row in tables["decisions"]}
    outcomes = {row["decision_id"]: row for row in tables["outcomes"]}  # the latest wins
    rows = []
    for fb in tables["feedback"]:
        d = decisions.get(fb["decision_id"])
        if d is None or d.get("query") is None:
            continue
        out = outcomes.get(fb["decision_id"], {})
        rows.append((d, fb, out))
    if not rows:
        raise DataFormatError(
            "The routing log holds no feedback on a decision with a stored prompt; nothing to "
            "train on."
        )
    llms = list(dict.fromkeys(d["llm"] for d, _, _ in rows))
    n, m = len(rows), len(llms)
    observed = np.zeros((n, m), bool)
    cells = {name: np.full((n, m), np.nan) for name in _MATRICES}
    for i, (d, fb, out) in enumerate(rows):
        j = llms.index(d["llm"])
        observed[i, j] = True
        values = {
            "quality": fb["score"],
            "propensity": d.get("propensity"),
            "timestamp": d.get("time"),
            "cost": out.get("cost"),
            "input_tokens": out.get("input_tokens"),
            "output_tokens": out.get("output_tokens"),
            "latency": out.get("latency_s"),
        }
        for name, value in values.items():
            if value is not None:
                cells[name][i, j] = float(value)
    present = {k: v if np.isfinite(v).any() else None for k, v in cells.items()}
    return RoutingData(
        queries=[d["query"] for d, _, _ in rows],
        llms=llms,
        quality=cells["quality"],
        sample_ids=[f"log:{d['decision_id']}" for d, _, _ in rows],
        source="log",
        observed=observed,
        cost=present["cost"],
        input_tokens=present["input_tokens"],
        output_tokens=present["output_tokens"],
        latency=present["latency"],
        propensity=present["propensity"],
        timestamp=present["timestamp"],
    )
