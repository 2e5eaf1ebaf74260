"""README.md: every ```python block runs as written (offline, in a fresh working directory), and
its two commands are the ones CI runs.

The blocks run in order in one namespace, as a reader pasting them one after another would; a
failure names the block (its line and the label above it) and the others still run. Shell blocks
are not run. A python block that truly cannot run offline is marked by the line
``<!-- readme: not run (why) -->`` right above its fence; :data:`NOT_RUN` lists the marked blocks,
so marking one more is a visible change to this test.
"""

from __future__ import annotations

import os
import re
import traceback
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"

_BLOCK = re.compile(r"^```(\w*)[ \t]*\n(.*?)^```[ \t]*$", re.M | re.S)
_NOT_RUN = re.compile(r"<!--\s*readme:\s*not run\s*\((.+?)\)\s*-->\s*$")
#: The labels of the python blocks marked as not run (none: every block runs).
NOT_RUN: tuple[str, ...] = ()


def _blocks(text: str) -> list[dict[str, Any]]:
    """Every fenced block: language, code, first code line, label and not-run reason."""
    blocks = []
    for m in _BLOCK.finditer(text):
        prose = _BLOCK.sub("", text[: m.start()])  # a "# comment" in code is no heading
        headings = [line.lstrip("# ") for line in prose.splitlines() if line.startswith("#")]
        heading = headings[-1] if headings else ""
        before = [line for line in text[: m.start()].splitlines() if line.strip()]
        above = before[-1] if before and not before[-1].startswith("```") else ""
        marked = _NOT_RUN.search(above)
        label = above if not above.startswith("#") and not marked else heading
        blocks.append(
            {
                "lang": m.group(1),
                "code": m.group(2),
                "line": text.count("\n", 0, m.start(2)) + 1,
                "label": f"{heading} / {label.rstrip(':')}" if label != heading else heading,
                "not_run": marked.group(1) if marked else None,
            }
        )
    return blocks


BLOCKS = _blocks(README.read_text(encoding="utf-8"))
PYTHON = [b for b in BLOCKS if b["lang"] == "python"]


def test_the_block_finder_reads_labels_and_marks() -> None:
    text = (
        "## Start\n\nIntro:\n\n```python\n# not a heading\nx = 1\n```\n\n"
        "<!-- readme: not run (needs an API key) -->\n```python\ncall()\n```\n\n```bash\nls\n```\n"
    )
    found = _blocks(text)
    assert [(b["lang"], b["line"], b["not_run"]) for b in found] == [
        ("python", 6, None),
        ("python", 12, "needs an API key"),
        ("bash", 16, None),
    ]
    assert found[0]["label"] == "Start / Intro" and found[1]["label"] == "Start"


def test_readme_python_blocks_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, socket_disabled: None
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MIXLLM_CACHE_DIR", os.environ.get("MIXLLM_CACHE_DIR", "/tmp/mixcache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert len(PYTHON) >= 3  # the quickstart and the two integrations at least
    namespace: dict[str, Any] = {"__name__": "readme"}
    failed, skipped = [], []
    for block in PYTHON:
        where = f"README.md:{block['line']} ({block['label']})"
        # pad so that a traceback names the line of README.md
        compiled = compile("\n" * (block["line"] - 1) + block["code"], str(README), "exec")
        if block["not_run"] is not None:
            skipped.append(block["label"])
            continue
        try:
            exec(compiled, namespace)  # noqa: S102 - our own README, run on purpose
        except Exception as exc:
            tb = traceback.extract_tb(exc.__traceback__)
            line = next((f.lineno for f in reversed(tb) if f.filename == str(README)), None)
            failed.append(f"{where} failed at line {line}: {type(exc).__name__}: {exc}")
    assert failed == [], "\n".join(failed)
    assert tuple(skipped) == NOT_RUN, "a README block is marked not run: list it in NOT_RUN"


def test_readme_test_command_is_what_ci_runs() -> None:
    commands = [b["code"].strip() for b in BLOCKS if b["lang"] == "bash"]
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").strip().splitlines()[-1]
    assert ci in commands, "README's 'Run the tests' command must be the last line of .ci/run"
    setup = next(c for c in commands if c.endswith("mixllm bench --out bench-out"))
    assert setup.split(" && mixllm bench")[0] == ci.split(" && bash .ci/lint")[0].replace(" -q", "")
