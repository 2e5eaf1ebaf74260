"""Build the HTML API reference from the packages' docstrings with pdoc (offline).

Usage::

    python docs/build_api.py api-reference      # then open api-reference/index.html

``tests/test_docs.py`` runs :func:`build` in CI, so a docstring that breaks the build, or a
public name that drops out of the reference, fails the tests.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

#: What the reference documents. pdoc follows a package's ``__all__``, which lists names, not
#: submodules, so the submodules users work with are named here: the public API of each package
#: first, then the modules the package docstrings send users to.
MODULES: tuple[str, ...] = (
    "mixllm_core",
    "mixllm_core.encoders",
    "mixllm_core.data",
    "mixllm_core.decision",
    "mixllm_core.calibration",
    "mixllm_core.dispatch",
    "mixllm_core.dispatch.retry",
    "mixllm_core.dispatch.validate",
    "mixllm_core.factory",
    "mixllm_core.prices",
    "mixllm_core.collect",
    "mixllm_core.persistence.state",
    "mixllm_core.latency",
    "mixllm_core.log",
    "mixllm_core.shared_state",
    "mixllm_core.online",
    "mixllm_core.predictors",
    "mixllm_core.text",
    "mixllm_core.metrics",
    "mixllm_core.errors",
    "mixllm_core.testing",
    "mixllm_core.experiments",
    "mixllm_langchain",
    "mixllm_langchain.providers",
    "mixllm_langchain.decisions",
    "mixllm_langchain.testing",
    "mixllm_llamaindex",
    "mixllm_llamaindex.providers",
    "mixllm_llamaindex.testing",
)


def build(out: str | Path, modules: Sequence[str] = MODULES) -> Path:
    """Write the reference for ``modules`` into ``out``; returns ``out``."""
    import pdoc
    import pdoc.render

    out = Path(out)
    pdoc.render.configure(docformat="google", show_source=True, search=True)
    pdoc.pdoc(*modules, output_directory=out)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", help="directory to write the HTML into")
    args = parser.parse_args(argv)
    print(build(args.out) / "index.html")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
