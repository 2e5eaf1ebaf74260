"""Plot the results of ``benchmarks/scaling.py``: fit time, peak memory and routing time.

Reads one or more JSON files written by ``scaling.py --out`` (a cell measured in several files:
the last one read wins; cells measured with ``--baseline-code`` are drawn as "before") and
writes one PNG with three panels: fit CPU seconds and peak resident memory against the training
rows (a line per number of LLMs), and the CPU p50 of one ``route`` against the number of LLMs.

Usage::

    python benchmarks/scaling_plot.py scaling.json scaling-200k.json --out docs/dev/scaling.png
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def load_cells(
    paths: Sequence[Path],
) -> tuple[dict[tuple[int, int], Any], dict[tuple[int, int], Any]]:
    """Measured grid cells by (LLMs, rows), this code's and the baseline code's ("before")."""
    now: dict[tuple[int, int], Any] = {}
    before: dict[tuple[int, int], Any] = {}
    for path in paths:
        doc = json.loads(Path(path).read_text())
        for name, cell in doc.get("cells", {}).items():
            if "skipped" not in cell and "x" in name:
                now[(cell["llms"], cell["rows"])] = cell
        for cell in doc.get("before", {}).get("cells", {}).values():
            if "skipped" not in cell:
                before[(cell["llms"], cell["rows"])] = cell
    return now, before


def plot(paths: Sequence[Path], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    now, before = load_cells(paths)
    fig, axes = plt.subplots(1, 3, figsize=(14, 4.2))
    fit_ax, mem_ax, route_ax = axes
    for m in sorted({m for m, _ in now}):
        cells = sorted((n, c) for (mm, n), c in now.items() if mm == m)
        rows = [n for n, _ in cells]
        fit_ax.plot(rows, [c["fit_cpu_s"] for _, c in cells], "o-", label=f"{m} LLMs")
        mem_ax.plot(rows, [c["fit_peak_mb"] for _, c in cells], "o-", label=f"{m} LLMs")
    for m in sorted({m for m, _ in before}):
        cells = sorted((n, c) for (mm, n), c in before.items() if mm == m)
        rows = [n for n, _ in cells]
        fit_ax.plot(rows, [c["fit_cpu_s"] for _, c in cells], "x--", label=f"{m} LLMs, before")
        mem_ax.plot(rows, [c["fit_peak_mb"] for _, c in cells], "x--", label=f"{m} LLMs, before")
    for n in sorted({n for _, n in now}):
        cells = sorted((m, c) for (m, nn), c in now.items() if nn == n)
        route_ax.plot(
            [m for m, _ in cells],
            [c["route_cpu"]["p50_ms"] for _, c in cells],
            "o-",
            label=f"{n:,} rows",
        )
    fit_ax.set(xscale="log", yscale="log", xlabel="training rows", ylabel="fit CPU s")
    mem_ax.set(xscale="log", yscale="log", xlabel="training rows", ylabel="peak RSS during fit, MB")
    route_ax.set(xscale="log", xlabel="LLMs", ylabel="route p50 CPU ms (embedding included)")
    route_ax.set_ylim(bottom=0)
    for ax, title in zip(axes, ("fit time", "fit memory", "decision time"), strict=True):
        ax.set_title(title)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    p.add_argument("results", nargs="+", type=Path, help="JSON files written by scaling.py")
    p.add_argument("--out", type=Path, required=True, help="the PNG to write")
    args = p.parse_args(argv)
    plot(args.results, args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
