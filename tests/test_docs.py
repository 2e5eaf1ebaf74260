"""The documentation: the API reference builds, the guide's examples run, links resolve, and the
user-facing pages cite no issue numbers.

Every ```python block of ``docs/guide/*.md`` is executed, page by page (the blocks of one page share
a namespace, as a reader running them in order would), in a fresh working directory, offline.
"""

from __future__ import annotations

import importlib.util
import os
import re
import time
import warnings
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
GUIDE = DOCS / "guide"
GUIDE_PAGES = sorted(GUIDE.glob("*.md"))
USER_PAGES = [ROOT / "README.md", DOCS / "README.md", *GUIDE_PAGES]
ALL_PAGES = [ROOT / "README.md", *sorted(DOCS.rglob("*.md"))]

_PYTHON_BLOCK = re.compile(r"^```python[ \t]*\n(.*?)^```[ \t]*$", re.M | re.S)
_ANY_BLOCK = re.compile(r"^```.*?^```[ \t]*$", re.M | re.S)
_LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_ISSUE = re.compile(r"\bissues?\s+#?\d+|#\d+", re.I)
#: A guide example is meant to take well under 2 s; this margin only catches one that grew into a
#: benchmark (shared CI cores make tighter limits flaky).
MAX_BLOCK_S = 30.0


def _rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


def _python_blocks(page: Path) -> list[tuple[int, str]]:
    """``(line of the block's first code line, code)`` for each ```python block of ``page``."""
    text = page.read_text(encoding="utf-8")
    return [(text.count("\n", 0, m.start(1)) + 1, m.group(1)) for m in _PYTHON_BLOCK.finditer(text)]


def _load_build_api() -> ModuleType:
    spec = importlib.util.spec_from_file_location("docs_build_api", DOCS / "build_api.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# --------------------------------------------------------------------------- layout and links


def test_layout_separates_user_guide_from_dev_notes() -> None:
    expected = {"index", "concepts", "choosing-lambda", "training", "deployment", "failures", "api"}
    assert expected <= {p.stem for p in GUIDE_PAGES}
    assert {p.name for p in (DOCS / "dev").glob("*.md")} >= {"results.md", "speed.md", "tags.md"}
    assert not list(DOCS.glob("*.png")), "images belong beside the page that shows them"


def test_every_guide_page_is_reachable_from_the_index() -> None:
    index = GUIDE / "index.md"
    linked = {
        (index.parent / target.split("#")[0]).resolve()
        for target in _LINK.findall(_ANY_BLOCK.sub("", index.read_text(encoding="utf-8")))
    }
    unlinked = [_rel(p) for p in GUIDE_PAGES if p != index and p.resolve() not in linked]
    assert unlinked == []


@pytest.mark.parametrize("page", ALL_PAGES, ids=_rel)
def test_relative_links_resolve(page: Path) -> None:
    text = _ANY_BLOCK.sub("", page.read_text(encoding="utf-8"))  # links in code are not links
    broken = []
    for target in _LINK.findall(text):
        if re.match(r"[a-z][a-z0-9+.-]*:", target, re.I) or target.startswith("#"):
            continue  # a URL (http:, mailto:) or an anchor on the same page
        if not (page.parent / target.split("#")[0]).exists():
            broken.append(target)
    assert broken == [], f"{_rel(page)} links to missing files"


@pytest.mark.parametrize("page", USER_PAGES, ids=_rel)
def test_user_pages_cite_no_issue_numbers(page: Path) -> None:
    text = page.read_text(encoding="utf-8")
    hits = [m.group(0) for m in _ISSUE.finditer(text)]
    assert hits == [], f"{_rel(page)} mentions issue numbers; describe the change instead"


def test_the_checkers_find_links_and_issue_numbers() -> None:
    text = "see [x](missing.md) and [y](https://example.org) and ![z](pic.png#a)\n"
    assert _LINK.findall(text) == ["missing.md", "https://example.org", "pic.png#a"]
    assert _ISSUE.findall("fixed in issue 7 and #12; see issues 3") == [
        "issue 7",
        "#12",
        "issues 3",
    ]


# --------------------------------------------------------------------------- guide examples


@pytest.fixture
def docs_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MIXLLM_CACHE_DIR", os.environ.get("MIXLLM_CACHE_DIR", "/tmp/mixcache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return tmp_path


def test_guide_has_examples() -> None:
    counts = {p.stem: len(_python_blocks(p)) for p in GUIDE_PAGES}
    without = [
        name
        for name in ("concepts", "choosing-lambda", "training", "failures")
        if counts.get(name, 0) == 0
    ]
    assert without == []


@pytest.mark.parametrize("page", [p for p in GUIDE_PAGES if _python_blocks(p)], ids=_rel)
def test_guide_examples_run(page: Path, docs_env: Path) -> None:
    namespace: dict[str, Any] = {"__name__": f"docs_{page.stem.replace('-', '_')}"}
    for line, code in _python_blocks(page):
        # pad so that a traceback names the line of the markdown file
        compiled = compile("\n" * (line - 1) + code, str(page), "exec")
        started = time.perf_counter()
        exec(compiled, namespace)  # noqa: S102 - our own documentation, run on purpose
        took = time.perf_counter() - started
        assert took < MAX_BLOCK_S, f"{_rel(page)}:{line} took {took:.1f} s"


# --------------------------------------------------------------------------- API reference


def test_api_reference_builds_and_documents_the_public_api(tmp_path: Path) -> None:
    import mixllm_core
    import mixllm_langchain
    import mixllm_llamaindex

    build_api = _load_build_api()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = build_api.build(tmp_path / "api")
    problems = [str(w.message).splitlines()[0] for w in caught if "pdoc" in w.filename]
    assert problems == [], "pdoc could not document everything"
    pages = {m: out / (m.replace(".", "/") + ".html") for m in build_api.MODULES}
    assert [m for m, p in pages.items() if not p.exists()] == []
    assert (out / "index.html").exists()
    for package in (mixllm_core, mixllm_langchain, mixllm_llamaindex):
        html = pages[package.__name__].read_text(encoding="utf-8")
        names = [n for n in package.__all__ if n != "__version__"]
        missing = [n for n in names if f'<section id="{n}">' not in html]
        assert missing == [], f"{package.__name__}.html lacks {missing}"
    for module, name, first_line in [
        ("mixllm_core", "MixLLMRouter", mixllm_core.MixLLMRouter.__doc__),
        ("mixllm_langchain", "MixLLMChat", mixllm_langchain.MixLLMChat.__doc__),
        ("mixllm_llamaindex", "MixLLM", mixllm_llamaindex.MixLLM.__doc__),
    ]:
        html = pages[module].read_text(encoding="utf-8")
        section = html[html.index(f'<section id="{name}">') :]
        docstring = section[section.index('<div class="docstring">') :][:3000]
        assert (first_line or "").strip().splitlines()[0][:40] in docstring
        assert "Arguments:" in docstring  # the Google-style Args section is rendered
