"""The ``mixllm`` command line: version, help defaults, train options, route, and its errors."""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import pandas as pd
import pytest

import mixllm_core
from mixllm_core import MixLLMRouter
from mixllm_core.cli import _parser, main
from mixllm_core.errors import MissingDependencyError
from tests.conftest import specialist_of, specialist_world, write_long_csv


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """Exit status, stdout and stderr of ``mixllm argv`` (argparse exits count as statuses)."""
    try:
        code = main(argv)
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def _quality_only_csv(path: Path) -> Path:
    """The specialist world in the generic long format without a cost column."""
    data = specialist_world(120)
    rows = [
        {"sample_id": sid, "query": q, "llm": llm, "quality": data.quality[i, j]}
        for i, (sid, q) in enumerate(zip(data.sample_ids, data.queries))
        for j, llm in enumerate(data.llms)
    ]
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A router trained by ``mixllm train`` on the specialist world (costs in the data)."""
    tmp = tmp_path_factory.mktemp("cli")
    train, _ = specialist_world().train_test_split()
    data = write_long_csv(train, tmp / "d.csv")
    argv = ["train", "--data", str(data), "--out", str(tmp / "r"), "--encoder", "static-plain"]
    assert main(argv) == 0
    return tmp / "r"


def test_version_prints_the_installed_version(capsys) -> None:
    code, out, _ = _run(["--version"], capsys)
    assert code == 0
    assert out.strip() == f"mixllm {mixllm_core.__version__}"


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    (action,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(action.choices)


def test_every_help_shows_every_default() -> None:
    parsers = _subparsers(_parser())
    assert {"train", "route", "bench", "simulate"} <= set(parsers)
    for name, parser in parsers.items():
        text = "".join(parser.format_help().split())  # wrapping may break a line at a hyphen
        for action in parser._actions:
            default = action.default
            if default in (None, False, [], argparse.SUPPRESS) or not action.option_strings:
                continue
            shown = "".join(f"(default: {default})".split())
            assert shown in text, (name, action.option_strings, default)


def test_route_prints_the_decision_and_every_candidate(trained: Path, capsys) -> None:
    query = "How do I sort a python list with a regex function?"  # a code query
    code, out, _ = _run(["route", "--router", str(trained), query, "--lam", "5"], capsys)
    assert code == 0
    assert out.startswith("routed to coder (λ=5")
    rows = {line[2:].split()[0]: line for line in out.splitlines() if line[:2] in ("* ", "  ")}
    assert rows["coder"].startswith("* ") and rows["writer"].startswith("  ")
    columns = ("quality", "cost (USD)", "exploration", "latency pen.", "score", "takes over")
    for column in (*columns, "eligible"):
        assert column in out
    code, out, _ = _run(["route", "--router", str(trained), query, "--json"], capsys)
    assert code == 0
    decision = json.loads(out)
    assert decision["query"] == query and decision["llm"] == "coder"
    by_llm = {c["llm"]: c for c in decision["candidates"]}
    assert set(by_llm) == {"coder", "writer"}
    for c in by_llm.values():
        assert c["eligible"] is True and c["reason"] == ""
        assert c["latency_penalty"] == 0.0 and c["exploration_bonus"] == 0.0  # β = α = 0
        assert 0.0 <= c["quality"] <= 1.0 and c["cost"] > 0
    assert by_llm["coder"]["score"] > by_llm["writer"]["score"]
    assert by_llm["coder"]["takes_over"] == "chosen"
    takes_over = by_llm["writer"]["takes_over"]  # e.g. "λ < 0.8": where writer would win
    assert takes_over in ("never", "always") or takes_over.startswith(("λ > ", "λ < "))


def test_route_lam_changes_the_trade_off(tmp_path: Path, capsys) -> None:
    # no costs in the data: the prices decide the cost, so λ = 0 (cost only) takes the cheap
    # LLM even for the other's speciality, and a large λ the specialist
    data = _quality_only_csv(tmp_path / "q.csv")
    out_dir = tmp_path / "r"
    argv = ["train", "--data", str(data), "--out", str(out_dir), "--encoder", "static-plain"]
    assert main([*argv, "--price", "coder=0.1,0.2", "--price", "writer=10,40"]) == 0
    router = MixLLMRouter.load(out_dir)
    assert (router.specs["coder"].input_price, router.specs["coder"].output_price) == (0.1, 0.2)
    assert router.specs["writer"].output_price == 40.0
    assert router.encoder.get_config()["lsa_dims"] == 0
    capsys.readouterr()
    query = "Write a poem with a metaphor about a story."  # a writing query
    picks = {}
    for lam in ("0", "1000"):
        code, out, _ = _run(
            ["route", "--router", str(out_dir), query, "--lam", lam, "--json"], capsys
        )
        assert code == 0
        picks[lam] = json.loads(out)["llm"]
    assert picks == {"0": "coder", "1000": specialist_of("writing")}


def test_train_reads_a_price_file_and_price_flags_win(tmp_path: Path, capsys) -> None:
    data = _quality_only_csv(tmp_path / "q.csv")
    prices = tmp_path / "my-prices.json"  # pairs, or the data loaders' objects of LLMSpec fields
    prices.write_text(json.dumps({"coder": [1.0, 2.0], "writer": {"input_price": 3.0}}))
    argv = ["train", "--data", str(data), "--out", str(tmp_path / "r"), "--prices", str(prices)]
    assert main([*argv, "--price", "writer=5,6", "--encoder", "static-plain"]) == 0
    specs = MixLLMRouter.load(tmp_path / "r").specs
    assert (specs["coder"].input_price, specs["coder"].output_price) == (1.0, 2.0)
    assert (specs["writer"].input_price, specs["writer"].output_price) == (5.0, 6.0)


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (["--price", "coder=cheap"], r"expected NAME=INPUT,OUTPUT .* got 'coder=cheap'"),
        (["--price", "coder=-1,2"], r"input_price of 'coder' must be a finite number >= 0.*-1"),
        (["--price", "gpt-4=1,2"], r"Prices given for \['gpt-4'\].*LLMs are \['coder', 'writer'\]"),
        (["--prices", "nowhere.json"], r"--prices 'nowhere.json' does not exist"),
        (["--encoder", "bert"], r"invalid choice: 'bert' \(choose from .*static"),
    ],
)
def test_train_errors_name_the_value_and_what_is_allowed(
    tmp_path: Path, capsys, extra: list[str], expected: str
) -> None:
    data = _quality_only_csv(tmp_path / "q.csv")
    code, _, err = _run(
        ["train", "--data", str(data), "--out", str(tmp_path / "r"), *extra], capsys
    )
    assert code == 2
    assert "Traceback" not in err
    assert re.search(expected, " ".join(err.split())), err
    assert not (tmp_path / "r").exists()


def test_price_file_that_is_not_an_object_is_refused(tmp_path: Path, capsys) -> None:
    prices = tmp_path / "my-prices.json"
    prices.write_text("[1, 2]")
    data = _quality_only_csv(tmp_path / "q.csv")
    argv = ["train", "--data", str(data), "--out", str(tmp_path / "r"), "--prices", str(prices)]
    code, _, err = _run(argv, capsys)
    assert code == 2 and "must hold a JSON object" in err and "got a list" in err


def test_seeds_without_compare_encoders_is_an_error(tmp_path: Path, capsys) -> None:
    code, _, err = _run(["bench", "--out", str(tmp_path / "b"), "--seeds", "1", "2"], capsys)
    assert code == 2
    assert "--seeds 1 2 only applies with --compare-encoders" in err
    assert not (tmp_path / "b").exists()  # refused before anything ran


def test_route_names_a_missing_router_path(tmp_path: Path, capsys) -> None:
    code, _, err = _run(["route", "--router", str(tmp_path / "nope"), "hi"], capsys)
    assert code == 2
    assert f"'{tmp_path / 'nope'}' does not exist" in err and "manifest" not in err
    code, _, err = _run(["route", "--router", str(tmp_path), "hi"], capsys)
    assert code == 2 and "is not a saved router: manifest.json is missing" in err


@pytest.mark.parametrize(
    ("package", "needs", "extra"),
    [
        ("mixllm_langchain", "langchain_core", "langchain"),
        ("mixllm_llamaindex", "llama_index.core", "llamaindex"),
    ],
)
def test_a_missing_integration_dependency_names_the_pip_command(
    monkeypatch: pytest.MonkeyPatch, package: str, needs: str, extra: str
) -> None:
    for name in [m for m in sys.modules if m == package or m.startswith(package + ".")]:
        monkeypatch.delitem(sys.modules, name)  # restored after the test
    monkeypatch.setitem(sys.modules, needs, None)  # makes `import needs` fail
    with pytest.raises(MissingDependencyError, match=rf"pip install 'mixllm\[{extra}\]'"):
        __import__(package)


def test_route_takes_the_task_when_the_caller_knows_it(
    trained: Path, tmp_path: Path, capsys
) -> None:
    train, _ = specialist_world().train_test_split()
    csv = write_long_csv(train, tmp_path / "d.csv")
    table = pd.read_csv(csv)
    table["task"] = (
        table["sample_id"].astype(str).map(dict(zip(train.sample_ids, train.tasks or [])))
    )
    table.to_csv(csv, index=False)
    assert main(["train", "--data", str(csv), "--out", str(tmp_path / "r")]) == 0  # tag features
    capsys.readouterr()
    query = "Hello there"  # nothing in it says which family it is
    for task, llm in (("code", "coder"), ("writing", "writer")):
        args = ["route", "--router", str(tmp_path / "r"), query, "--lam", "5", "--task", task]
        code, out, _ = _run(args, capsys)
        assert code == 0 and out.startswith(f"routed to {llm} ("), (task, out)
    code, _, err = _run(
        ["route", "--router", str(tmp_path / "r"), query, "--task", "poetry"], capsys
    )
    assert code == 2 and "'poetry'" in err and "'code'" in err and "'writing'" in err
    code, _, err = _run(["route", "--router", str(trained), query, "--task", "code"], capsys)
    assert code == 2 and "task features" in err  # a router without tags cannot take a hint
