"""Helpers of the reliability tests: tamper with a saved router, watch what loading does."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from mixllm_core import MixLLMRouter
from mixllm_core.testing import HashingEncoder, make_synthetic_world

WORLD = make_synthetic_world(240, seed=11)


def fitted_router(kind: str = "linear", *, feedback: int = 6) -> MixLLMRouter:
    """A small fitted router with online heads that have learned something."""
    router = MixLLMRouter(encoder=HashingEncoder(), quality_model=kind, seed=0)
    router.fit(WORLD.subset(range(160)))
    for i, q in enumerate(WORLD.queries[160 : 160 + feedback]):
        router.feedback(router.route(q).decision_id, score=float(i % 2))
    return router


def rewrite_manifest(directory: Path) -> None:
    """Recompute manifest.json over the files it lists, as an editor of the files could."""
    path = directory / "manifest.json"
    manifest = json.loads(path.read_text())
    files = {}
    for rel in manifest["files"]:
        f = directory / rel
        files[rel] = hashlib.sha256(f.read_bytes()).hexdigest() if f.is_file() else "0" * 64
    manifest["files"] = files
    path.write_text(json.dumps(manifest))


def edit_json(directory: Path, name: str, edit: Callable[[Any], Any]) -> None:
    """Apply ``edit`` to a JSON file (it may change it in place or return a new value)."""
    path = directory / name
    doc = json.loads(path.read_text())
    result = edit(doc)
    path.write_text(json.dumps(doc if result is None else result))
    rewrite_manifest(directory)


def copy_router(template: Path, target: Path) -> Path:
    shutil.copytree(template, target)
    return target


# ---------------------------------------------------------------------------- side effects
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
_FORBIDDEN = {
    "os.remove",
    "os.rmdir",
    "os.rename",
    "os.mkdir",
    "os.symlink",
    "os.link",
    "os.truncate",
    "os.chmod",
    "os.system",
    "os.exec",
    "os.posix_spawn",
    "os.spawn",
    "os.fork",
    "subprocess.Popen",
    "shutil.rmtree",
    "shutil.move",
    "pickle.find_class",
}
_watching: list[tuple[str, list[str]]] = []
_hooked = False


def _installed() -> tuple[str, ...]:
    import mixllm_core

    roots = {sys.prefix, sys.base_prefix, sys.exec_prefix, str(Path(mixllm_core.__file__).parent)}
    return tuple(os.path.realpath(r) + os.sep for r in roots)


_INSTALLED = _installed()


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if not _watching:
        return
    root, seen = _watching[-1]
    if event in _FORBIDDEN or event.startswith(("os.exec", "os.spawn")):
        seen.append(f"{event} {args[:2]!r}")
    elif event == "exec" and args and getattr(args[0], "co_filename", "").startswith("<"):
        seen.append(f"exec of code compiled from a string: {args[0]!r}")
    elif event == "open" and isinstance(args[0], (str, bytes, os.PathLike)):
        path, mode, flags = os.fsdecode(args[0]), args[1] or "r", args[2] or 0
        if any(c in str(mode) for c in "wax+") or flags & _WRITE_FLAGS:
            seen.append(f"open for writing: {path}")
        real = os.path.realpath(path)
        if not (real + os.sep).startswith(root) and not real.startswith(_INSTALLED):
            seen.append(f"read outside the directory: {path}")


@contextmanager
def side_effects(root: Path) -> Iterator[list[str]]:
    """Everything done inside the block that loading a router must never do: writing, deleting
    or renaming files, reading outside ``root`` (installed packages aside), running code
    compiled from a string, unpickling, starting processes."""
    global _hooked
    if not _hooked:
        sys.addaudithook(_audit)  # cannot be removed; idle outside this block
        _hooked = True
    seen: list[str] = []
    _watching.append((os.path.realpath(root) + os.sep, seen))
    try:
        yield seen
    finally:
        _watching.pop()
