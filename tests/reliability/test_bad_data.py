"""Malformed routing-data files and bad values: a clear DataFormatError, never a raw parser error.

Every message names the file (or ``RoutingData.<field>``), the column, the offending rows (counted
from 0, header excluded) and what is allowed; no bad value reaches a ``RoutingData``.
"""

from __future__ import annotations

import io
import json
import math
import os
import re
import sys
import tempfile
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mixllm_core import DataFormatError, MixLLMError, RoutingData, load_routing_data
from mixllm_core.data import load_generic, load_llmrouter, load_routerbench

RANGE_01 = re.escape("finite numbers in [0, 1]")
NON_NEGATIVE = re.escape("finite numbers >= 0")


def generic_frame() -> pd.DataFrame:
    """3 queries × 2 LLMs in the generic long format, every optional column filled."""
    rows = []
    for i, (query, split) in enumerate([("hi", "train"), ("yo", "train"), ("hey", "test")]):
        for j, llm in enumerate(["a", "b"]):
            rows.append(
                {
                    "sample_id": f"q{i}",
                    "query": query,
                    "llm": llm,
                    "quality": (i + j) % 2 * 0.5,
                    "cost": 0.001 * (j + 1),
                    "input_tokens": 10 + i,
                    "output_tokens": 20 + j,
                    "latency": 0.5 + j,
                    "task": "chat",
                    "split": split,
                }
            )
    return pd.DataFrame(rows)


def routerbench_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "sample_id": ["arc.0", "arc.1", "arc.2"],
            "prompt": [str([f"Question {i}?", "Answer:"]) for i in range(3)],
            "eval_name": ["arc"] * 3,
            "m1": [1.0, 0.0, 1.0],
            "m1|total_cost": [1e-4, 2e-4, 3e-4],
            "m1|model_response": [str(["A"])] * 3,
            "m2": [0.0, 1.0, 1.0],
            "m2|total_cost": [1e-2, 2e-2, 3e-2],
            "m2|model_response": [str(["B"])] * 3,
        }
    )


def llmrouter_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "question": ["What is 2+2?", "Name a prime."],
            "task_name": ["gsm8k", "math"],
            "score__a": [1.0, 0.5],
            "score__b": [0.0, 1.0],
        }
    )


LLMROUTER_PRICES = {"a": {"input_price": 0.1, "output_price": 0.2}, "b": {"input_price": 0.9}}


def write(df: pd.DataFrame, path: Path) -> Path:
    if path.suffix == ".parquet":
        df.to_parquet(path)
    elif path.suffix == ".csv":
        df.to_csv(path, index=False)
    else:
        df.to_json(path, orient="records", lines=path.suffix == ".jsonl")
    return path


def raises_naming(path: Path | str, *patterns: str) -> pytest.ExceptionInfo[DataFormatError]:
    """Load ``path``; expect a DataFormatError whose message names the file and ``patterns``."""
    with pytest.raises(DataFormatError) as info:
        load_routing_data(path)
    message = str(info.value)
    assert repr(str(path)) in message, message
    for pattern in patterns:
        assert re.search(pattern, message), (pattern, message)
    return info


# --------------------------------------------------------------------------- valid data


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".jsonl"])
def test_a_valid_generic_file_loads_the_same_in_every_format(tmp_path: Path, suffix: str) -> None:
    df = generic_frame()
    data = load_routing_data(write(df, tmp_path / f"d{suffix}"))
    assert data.llms == ["a", "b"] and data.queries == ["hi", "yo", "hey"]
    assert data.sample_ids == ["q0", "q1", "q2"] and data.split == ["train", "train", "test"]
    for column in ("quality", "cost", "input_tokens", "output_tokens", "latency"):
        np.testing.assert_array_equal(getattr(data, column), df[column].to_numpy().reshape(3, 2))


def test_an_identical_repeated_routerbench_row_is_dropped(tmp_path: Path) -> None:
    df = routerbench_frame()
    data = load_routing_data(write(pd.concat([df, df.iloc[[1]]]), tmp_path / "rb.parquet"))
    assert data.sample_ids == ["arc.0", "arc.1", "arc.2"]
    np.testing.assert_array_equal(data.quality, df[["m1", "m2"]].to_numpy())


# --------------------------------------------------------------------------- bad values


@pytest.mark.parametrize(
    ("column", "row", "value", "allowed"),
    [
        ("quality", 3, 1.5, RANGE_01),
        ("quality", 0, -0.1, RANGE_01),
        ("quality", 5, math.nan, RANGE_01),
        ("cost", 2, math.inf, NON_NEGATIVE + r" \(USD per call\)"),
        ("cost", 1, math.nan, NON_NEGATIVE),
        ("cost", 4, -0.001, NON_NEGATIVE),
        ("input_tokens", 1, -5.0, NON_NEGATIVE + r" \(tokens\)"),
        ("output_tokens", 2, math.nan, NON_NEGATIVE),
        ("latency", 0, -1.0, NON_NEGATIVE + r" \(seconds\)"),
    ],
)
@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_a_bad_value_names_file_column_row_and_allowed_range(
    tmp_path: Path, suffix: str, column: str, row: int, value: float, allowed: str
) -> None:
    df = generic_frame()
    df.loc[row, column] = value
    path = write(df, tmp_path / f"bad{suffix}")
    raises_naming(path, f"column '{column}'", allowed, rf"first at row {row} \({value!r}\)")


def test_inf_cost_in_routerbench_is_rejected_instead_of_becoming_the_cost_scale(
    tmp_path: Path,
) -> None:
    df = routerbench_frame()
    df.loc[1, "m1|total_cost"] = math.inf  # made the reference cost infinite: cost ignored
    raises_naming(
        write(df, tmp_path / "rb.parquet"), NON_NEGATIVE, r"row 1, column 'm1\|total_cost' \(inf\)"
    )


@pytest.mark.parametrize(("value", "shown"), [(2.0, "2.0"), (-1.0, "-1.0"), (math.inf, "inf")])
def test_out_of_range_scores_in_wide_formats_name_row_and_column(
    tmp_path: Path, value: float, shown: str
) -> None:
    rb = routerbench_frame()
    rb.loc[2, "m2"] = value
    raises_naming(write(rb, tmp_path / "rb.csv"), RANGE_01, rf"row 2, column 'm2' \({shown}\)")
    lr = llmrouter_frame()
    lr.loc[1, "score__b"] = value
    (tmp_path / "default_llm.json").write_text(json.dumps(LLMROUTER_PRICES))
    raises_naming(
        write(lr, tmp_path / "lr.parquet"), RANGE_01, rf"row 1, column 'score__b' \({shown}\)"
    )


def test_one_sample_id_with_two_queries_is_rejected(tmp_path: Path) -> None:
    df = generic_frame()
    df.loc[3, "query"] = "a different question"  # row 3 is q1 for LLM b
    raises_naming(
        write(df, tmp_path / "d.csv"),
        "column 'query'",
        "sample_id 'q1' has 'yo' in row 2 but 'a different question' in row 3",
    )


def test_repeated_pairs_and_conflicting_repeats_are_rejected(tmp_path: Path) -> None:
    df = generic_frame()
    repeated = pd.concat([df, df.iloc[[1]].assign(quality=1.0)], ignore_index=True)
    raises_naming(
        write(repeated, tmp_path / "d.csv"),
        re.escape("duplicate (sample_id, llm) rows, first ('q0', 'b') in rows 1 and 6"),
    )
    rb = routerbench_frame()
    conflicting = pd.concat([rb, rb.iloc[[1]].assign(m1=1.0)], ignore_index=True)
    raises_naming(
        write(conflicting, tmp_path / "rb.parquet"),
        "'arc.1' is in rows 1 and 3 with different prompts, scores or costs",
    )
    lr = llmrouter_frame().assign(row_in_file=[7, 7])
    (tmp_path / "default_llm.json").write_text(json.dumps(LLMROUTER_PRICES))
    raises_naming(
        write(lr, tmp_path / "lr.parquet"), "column 'row_in_file': '7' is in rows 0 and 1"
    )


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".jsonl"])
def test_a_file_with_zero_rows_is_rejected(tmp_path: Path, suffix: str) -> None:
    raises_naming(write(generic_frame().iloc[:0], tmp_path / f"empty{suffix}"), "no data rows")


def test_every_routerbench_row_incomplete_is_rejected(tmp_path: Path) -> None:
    df = routerbench_frame().assign(m1=math.nan)
    raises_naming(write(df, tmp_path / "rb.parquet"), "every row has a NaN score or cost")


@pytest.mark.parametrize(
    ("column", "value", "pattern"),
    [
        ("quality", "high", r"column 'quality': cells must be numbers; row 1 hold 'high'"),
        ("sample_id", None, r"column 'sample_id': empty in row 1"),
        ("llm", None, r"column 'llm': empty in row 1"),
        ("query", None, r"column 'query': empty in row 1"),
        ("split", "dev", re.escape("column 'split': allowed values are ['train', 'test']")),
    ],
)
def test_a_cell_of_the_wrong_type_or_empty_names_its_row(
    tmp_path: Path, column: str, value: Any, pattern: str
) -> None:
    df = generic_frame().astype({column: object})
    df.loc[1, column] = value
    raises_naming(write(df, tmp_path / "d.csv"), pattern)


def test_a_routerbench_prompt_that_is_not_a_stringified_list_is_rejected(tmp_path: Path) -> None:
    df = routerbench_frame()
    df.loc[2, "prompt"] = "What is the capital of France?"
    raises_naming(
        write(df, tmp_path / "rb.parquet"),
        "column 'prompt': must hold each prompt as a stringified list of turns",
        "row 2 hold something else",
    )


def test_costs_too_large_to_price_are_an_error_not_an_overflow(tmp_path: Path) -> None:
    df = routerbench_frame()
    df["m1|total_cost"] = 1e305
    with pytest.raises(DataFormatError, match="too large to turn into a price"):
        load_routing_data(write(df, tmp_path / "rb.parquet"))


# --------------------------------------------------------------------------- unreadable files


def _truncated_parquet(path: Path) -> None:
    buffer = io.BytesIO()
    generic_frame().to_parquet(buffer)
    path.write_bytes(buffer.getvalue()[:-40])


MALFORMED: dict[str, tuple[str, Callable[[Path], Any], str]] = {
    "empty csv": ("d.csv", lambda p: p.write_bytes(b""), "Cannot read .* as CSV"),
    "empty parquet": ("d.parquet", lambda p: p.write_bytes(b""), "Cannot read .* as parquet"),
    "empty jsonl": ("d.jsonl", lambda p: p.write_bytes(b""), "no data rows"),
    "truncated parquet": ("d.parquet", _truncated_parquet, "Cannot read .* as parquet"),
    "semicolons with commas in text": (
        "d.csv",
        lambda p: p.write_text("sample_id;query;llm;quality\nq1;hi, you;a;1\nq2;a, b, c, d;a;0\n"),
        "Cannot read .* as CSV",
    ),
    "semicolons": (
        "d.csv",
        lambda p: p.write_text("sample_id;query;llm;quality\nq1;hello;a;1.0\n"),
        "delimited by something other than a comma",
    ),
    "jsonl with a bad line": (
        "d.jsonl",
        lambda p: p.write_text(
            '{"sample_id": "q", "query": "x", "llm": "a", "quality": 1}\n{oops\n'
        ),
        "Cannot read .* as JSON lines",
    ),
    "binary garbage named csv": (
        "d.csv",
        lambda p: p.write_bytes(bytes(range(256)) * 4),
        "Cannot read .* as CSV",
    ),
    "missing generic columns": (
        "d.csv",
        lambda p: write(generic_frame().drop(columns=["query"]), p),
        re.escape("lacks the columns ['query']"),
    ),
    "routerbench without prompt": (
        "d.parquet",
        lambda p: write(routerbench_frame().drop(columns=["prompt"]), p),
        re.escape("missing ['prompt']"),
    ),
    "unknown extension": ("d.xlsx", lambda p: p.write_bytes(b"x"), "Unsupported file type"),
    "a directory": ("d.csv", lambda p: p.mkdir(), "is a directory"),
    "a path that does not exist": ("nowhere.csv", lambda p: None, "does not exist"),
}


@pytest.mark.parametrize("case", list(MALFORMED))
def test_a_malformed_file_raises_data_format_error_naming_it(tmp_path: Path, case: str) -> None:
    name, make, pattern = MALFORMED[case]
    path = tmp_path / name
    make(path)
    info = raises_naming(path, pattern)
    if "Cannot read" in pattern:
        assert info.value.__cause__ is not None  # the parser's error stays attached


@pytest.mark.parametrize("loader", [load_generic, load_routerbench, load_llmrouter])
def test_each_loader_says_a_missing_file_does_not_exist(
    tmp_path: Path, loader: Callable[[Path], RoutingData]
) -> None:
    with pytest.raises(DataFormatError, match=r"'.*nope\.parquet' does not exist"):
        loader(tmp_path / "nope.parquet")


def test_a_price_table_named_explicitly_must_exist(tmp_path: Path) -> None:
    path = write(generic_frame(), tmp_path / "d.csv")
    with pytest.raises(DataFormatError, match=r"price table '.*nope\.json' does not exist"):
        load_generic(path, prices=tmp_path / "nope.json")


PRICE_FILES = {
    "not json": (b"{'a': 0.1", "Cannot read the price table"),
    "not an object": (b"[1, 2]", "holds a list"),
    "negative": (b'{"a": {"input_price": -1}}', r"input_price of 'a' must be a finite number >= 0"),
    "not a number": (b'{"a": {"output_price": "cheap"}}', r"output_price of 'a' .* got 'cheap'"),
    "infinite": (b'{"a": {"input_price": Infinity}}', r"input_price of 'a' .* got inf"),
    "binary": (b"\xff\xfe\x00garbage", "Cannot read the price table"),
}


@pytest.mark.parametrize("case", list(PRICE_FILES))
def test_a_malformed_price_table_beside_the_data_is_named(tmp_path: Path, case: str) -> None:
    content, pattern = PRICE_FILES[case]
    generic = write(generic_frame(), tmp_path / "d.csv")
    (tmp_path / "prices.json").write_bytes(content)
    with pytest.raises(DataFormatError, match=pattern) as info:
        load_routing_data(generic)
    assert repr(str(tmp_path / "prices.json")) in str(info.value)
    lr = write(llmrouter_frame(), tmp_path / "lr.parquet")
    (tmp_path / "default_llm.json").write_bytes(content)
    with pytest.raises(DataFormatError, match=pattern) as info:
        load_routing_data(lr)
    assert repr(str(tmp_path / "default_llm.json")) in str(info.value)


# --------------------------------------------------------------------------- RoutingData itself


def _bad(**overrides: Any) -> dict[str, Any]:
    kwargs: dict[str, Any] = {
        "queries": ["q0", "q1"],
        "llms": ["x", "y"],
        "quality": np.array([[0.0, 1.0], [0.5, 1.0]]),
        "cost": np.full((2, 2), 1e-3),
        "input_tokens": np.full((2, 2), 10.0),
        "output_tokens": np.full((2, 2), 20.0),
        "latency": np.full((2, 2), 0.5),
    }
    return {**kwargs, **overrides}


@pytest.mark.parametrize(
    ("overrides", "pattern"),
    [
        ({"quality": [[0, 1], [1.5, 1]]}, f"RoutingData.quality must be {RANGE_01}.*query 1"),
        ({"quality": [[0, -1e-9], [1, 1]]}, "quality must be .* query 0 .* LLM 'y'"),
        ({"quality": [[0, 1], [1, np.nan]]}, "first at query 1 .* for LLM 'y' \\(nan\\)"),
        ({"cost": [[0, np.inf], [0, 0]]}, f"RoutingData.cost must be {NON_NEGATIVE}"),
        ({"cost": [[0, 0], [np.nan, 0]]}, "cost must be .* query 1 \\('1'\\) for LLM 'x'"),
        ({"cost": [[-1, 0], [0, 0]]}, "cost must be .*\\(-1.0\\)"),
        ({"input_tokens": [[-3, 0], [0, 0]]}, "input_tokens must be"),
        ({"output_tokens": [[0, 0], [0, np.nan]]}, "output_tokens must be"),
        ({"latency": [[0, 0], [np.inf, 0]]}, "latency must be"),
        ({"cost": np.zeros((2, 3))}, r"cost has shape \(2, 3\), expected \(2, 2\)"),
        ({"quality": [["good", "bad"], ["ok", "ok"]]}, "quality must be a .* array of numbers"),
        ({"sample_ids": ["s", "s"]}, "sample_ids must be unique; 's' names queries 0 and 1"),
        ({"queries": ["q0", None]}, r"queries\[1\] is missing"),
        ({"llms": ["x", " "]}, "llms must be one or more non-empty names"),
        ({"llms": [], "quality": np.zeros((2, 0))}, "llms must be one or more"),
    ],
)
def test_routing_data_validates_shapes_ranges_and_finiteness(
    overrides: dict[str, Any], pattern: str
) -> None:
    with pytest.raises(DataFormatError, match=pattern):
        RoutingData(**_bad(**overrides))


def test_routing_data_accepts_an_empty_selection_but_keeps_its_checks() -> None:
    data = RoutingData(**_bad())
    assert len(data.subset([])) == 0
    assert data.select_llms(["y"]).quality.tolist() == [[1.0], [1.0]]


# --------------------------------------------------------------------------- fuzzing

COLUMNS = [
    *["sample_id", "query", "llm", "quality", "cost", "input_tokens", "output_tokens"],
    *["latency", "task", "split", "prompt", "m1", "m1|total_cost", "m1|model_response"],
    *["eval_name", "question", "score__m1", "task_name", "row_in_file", "other"],
]
TEXT = st.one_of(
    st.text(alphabet="ab01.,;[]'\" \n-eE\\", max_size=8),
    st.sampled_from(["train", "test", "a", "m1", "['q']", "nan", "inf", "-1", "1e400", ""]),
)
CELLS = {
    "float": st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True)),
    "unit": st.sampled_from([0.0, 0.5, 1.0]),
    "int": st.integers(-(10**6), 10**6),
    "text": TEXT,
    "bool": st.booleans(),
    "mixed": st.one_of(st.none(), st.floats(), st.integers(-5, 5), TEXT),
}
SUFFIXES = [".csv", ".parquet", ".jsonl", ".json"]


FUZZ_PRICES = json.dumps({m: {"input_price": 0.1, "output_price": 0.2} for m in "ab12"}).encode()
PRICE_TABLES = st.one_of(
    st.none(),
    st.just(FUZZ_PRICES),
    st.binary(max_size=40),
    st.dictionaries(TEXT, st.dictionaries(TEXT, CELLS["mixed"], max_size=2), max_size=2).map(
        lambda d: json.dumps(d).encode()
    ),
)


@st.composite
def random_tables(draw: st.DrawFn) -> tuple[str, bytes, bytes | None]:
    """A valid table (or none) with random rows, columns and cells, in a random format."""
    bases = {"generic": generic_frame, "rb": routerbench_frame, "lr": llmrouter_frame}
    base = draw(st.sampled_from([*bases, "blank"]))
    frame = bases[base]() if base in bases else pd.DataFrame(index=range(3))
    rows = draw(st.lists(st.integers(0, len(frame) - 1), min_size=1, max_size=7))
    frame = frame.iloc[rows].reset_index(drop=True).astype(object)
    if len(frame.columns):
        frame = frame.drop(columns=draw(st.sets(st.sampled_from(list(frame.columns)), max_size=1)))
    for column in draw(st.lists(st.sampled_from(COLUMNS), unique=True, max_size=2)):
        values = st.lists(CELLS[draw(st.sampled_from(list(CELLS)))], min_size=len(frame))
        frame[column] = pd.Series(draw(values)[: len(frame)], dtype=object)
    if len(frame) and len(frame.columns):
        for _ in range(draw(st.integers(0, 3))):
            row = draw(st.integers(0, len(frame) - 1))
            frame.iat[row, draw(st.integers(0, len(frame.columns) - 1))] = draw(CELLS["mixed"])
    suffix = draw(st.sampled_from(SUFFIXES))
    if suffix == ".parquet":  # a parquet column holds one type: write mixed ones as text
        for column in frame.columns:
            if len({type(v) for v in frame[column] if v is not None}) > 1:
                frame[column] = [None if v is None else str(v) for v in frame[column]]
    return suffix, _encode(frame.infer_objects(), suffix), draw(PRICE_TABLES)


def _encode(df: pd.DataFrame, suffix: str) -> bytes:
    buffer = io.BytesIO()
    if suffix == ".parquet":
        df.to_parquet(buffer)
    elif suffix == ".csv":
        df.to_csv(buffer, index=False)
    else:
        df.to_json(buffer, orient="records", lines=suffix == ".jsonl")
    return buffer.getvalue()


@cache
def _valid_files() -> dict[str, bytes]:
    return {
        f"{name}{suffix}": _encode(frame, suffix)
        for name, frame in [
            ("generic", generic_frame()),
            ("rb", routerbench_frame()),
            ("lr", llmrouter_frame()),
        ]
        for suffix in SUFFIXES
    }


@st.composite
def corrupted_files(draw: st.DrawFn) -> tuple[str, bytes, bytes | None]:
    """A valid file with a few random byte edits: truncation, overwrites, insertions, cuts."""
    name = draw(st.sampled_from(sorted(_valid_files())))
    data = bytearray(_valid_files()[name])
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, max(len(data) - 1, 0)))
        edit = draw(st.sampled_from(["truncate", "overwrite", "insert", "cut"]))
        if edit == "truncate":
            del data[at:]
        elif edit == "overwrite":
            chunk = draw(st.binary(min_size=1, max_size=8))
            data[at : at + len(chunk)] = chunk
        elif edit == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
        else:
            del data[at : at + draw(st.integers(1, 16))]
    return Path(name).suffix, bytes(data), FUZZ_PRICES


_MUTATING = {"os.remove", "os.rename", "os.rmdir", "os.mkdir", "os.symlink", "os.link"}
_MUTATING |= {"os.truncate", "os.chmod", "os.chown", "os.utime", "shutil.rmtree", "shutil.move"}
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
_recorded: list[tuple[str, tuple[Any, ...]]] | None = None


def _audit(event: str, args: tuple[Any, ...]) -> None:  # inert unless a fuzz example records
    if _recorded is not None and (event == "open" or event in _MUTATING):
        _recorded.append((event, args))


@cache
def _install_audit_hook() -> None:
    sys.addaudithook(_audit)  # process-wide and permanent, hence installed once, on first use


def _touched_outside(root: Path, events: list[tuple[str, tuple[Any, ...]]]) -> list[str]:
    """Events that changed the file system, or read a data file, outside ``root``."""
    bad = []
    for event, args in events:
        target = args[0] if args else None
        inside = isinstance(target, (str, os.PathLike)) and Path(target).is_relative_to(root)
        if event == "open":
            mode, flags = args[1] or "", args[2] or 0
            writes = any(c in mode for c in "wax+") or bool(flags & _WRITE_FLAGS)
            is_data = isinstance(target, (str, os.PathLike)) and Path(target).suffix in SUFFIXES
            if (writes or is_data) and not inside:
                bad.append(f"{event} {args}")
        elif not inside:
            bad.append(f"{event} {args}")
    return bad


def _check_loaded(data: RoutingData) -> None:
    """What a successful load hands to training is valid: nothing bad slipped through."""
    assert len(data) > 0 and data.llms
    assert np.isfinite(data.quality).all() and ((data.quality >= 0) & (data.quality <= 1)).all()
    for name in ("cost", "input_tokens", "output_tokens", "latency"):
        value = getattr(data, name)
        assert value is None or (np.isfinite(value).all() and (value >= 0).all()), name
    assert len(set(data.sample_ids)) == len(data)


@settings(
    derandomize=True,
    max_examples=150,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(case=st.one_of(random_tables(), corrupted_files()))
def test_fuzzed_files_raise_only_mixllm_errors_and_touch_nothing_else(
    tmp_path: Path, case: tuple[str, bytes, bytes | None]
) -> None:
    global _recorded
    suffix, content, prices = case
    root = Path(tempfile.mkdtemp(dir=tmp_path)).resolve()
    path = root / f"data{suffix}"
    path.write_bytes(content)
    if prices is not None:
        (root / "prices.json").write_bytes(prices)
        (root / "default_llm.json").write_bytes(prices)
    before = sorted(root.iterdir())
    _install_audit_hook()
    _recorded = []
    try:
        _check_loaded(load_routing_data(path))
    except MixLLMError:
        pass
    finally:
        events, _recorded = _recorded, None
    assert _touched_outside(root, events) == []
    assert sorted(root.iterdir()) == before
