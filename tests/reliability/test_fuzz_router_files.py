"""Property: whatever is done to the files of a saved router (with the manifest recomputed, so
the checksums do not catch it), loading raises only MixLLMError, touches nothing outside the
directory, and a router that does load also routes."""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import shutil
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from reliability_helpers import WORLD, copy_router, fitted_router, rewrite_manifest, side_effects

from mixllm_core import MixLLMError, MixLLMRouter
from mixllm_core.testing import HashingEncoder


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("fuzz")
    fitted_router("linear").save(base / "template")
    (base / "sentinel.txt").write_text("outside the router")
    return base


FILES = [
    "router.json",
    "online.npz",
    "train.npz",
    "quality/llm000.skops",
    "quality/llm001.skops",
    "manifest.json",
]
JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(10**20), 10**20)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=6,
)
ARRAYS = hnp.arrays(
    dtype=st.sampled_from([np.float64, np.float32, np.int64, np.bool_, np.complex64]),
    shape=hnp.array_shapes(min_dims=0, max_dims=3, max_side=6),
)
MUTATIONS = st.one_of(
    st.tuples(st.just("truncate"), st.sampled_from(FILES), st.floats(0, 1)),
    st.tuples(st.just("flip"), st.sampled_from(FILES), st.floats(0, 1), st.integers(1, 255)),
    st.tuples(st.just("replace"), st.sampled_from(FILES), st.binary(max_size=64)),
    st.tuples(st.just("delete"), st.sampled_from(FILES)),
    st.tuples(st.just("link outside"), st.sampled_from(FILES)),
    st.tuples(st.just("json"), st.lists(st.integers(0, 40), min_size=1, max_size=6), JSON_VALUES),
    st.tuples(
        st.just("json"),
        st.lists(st.integers(0, 40), min_size=2, max_size=6),
        st.floats(allow_nan=True, allow_infinity=True) | st.integers(-(10**6), 10**6),
    ),
    st.tuples(
        st.just("array"), st.sampled_from(["online.npz", "train.npz"]), st.integers(0, 9), ARRAYS
    ),
)


def _json_edit(doc: Any, path: list[int], value: Any) -> Any:
    """Replace the value reached by following ``path`` (indices into sorted keys / items)."""
    if not isinstance(doc, (dict, list)) or not doc:
        return value
    keys = sorted(doc) if isinstance(doc, dict) else list(range(len(doc)))
    key = keys[path[0] % len(keys)]
    doc[key] = value if len(path) == 1 else _json_edit(doc[key], path[1:], value)
    return doc


def _mutate(d: Path, mutation: tuple[Any, ...], outside: Path) -> None:
    kind = mutation[0]
    target = {"json": "router.json", "array": mutation[1]}.get(kind, mutation[1])
    if (d / target).is_symlink():
        return  # linked outside by an earlier mutation: never write through it
    if kind == "json":
        try:
            doc = json.loads((d / "router.json").read_bytes())
        except (OSError, ValueError):
            return  # already destroyed by an earlier mutation
        (d / "router.json").write_text(json.dumps(_json_edit(doc, mutation[1], mutation[2])))
        return
    if kind == "array":
        _, name, k, array = mutation
        try:  # numpy leaks the handle of a broken zip it opened itself: hand it one
            with (d / name).open("rb") as fh, np.load(fh) as f:
                arrays = {key: f[key] for key in f.files}
        except (OSError, ValueError, EOFError, TypeError, zipfile.BadZipFile):
            return
        keys = sorted(arrays) or ["A_inv"]
        arrays[keys[k % len(keys)]] = array
        with (d / name).open("wb") as f:
            np.savez(f, **arrays)
        return
    path = d / mutation[1]
    if not path.exists():
        return
    data = path.read_bytes()
    if kind == "truncate":
        path.write_bytes(data[: int(len(data) * mutation[2])])
    elif kind == "flip" and data:
        i = min(int(len(data) * mutation[2]), len(data) - 1)
        path.write_bytes(data[:i] + bytes([data[i] ^ mutation[3]]) + data[i + 1 :])
    elif kind == "replace":
        path.write_bytes(mutation[2])
    elif kind == "delete":
        path.unlink()
    elif kind == "link outside":
        path.unlink()
        path.symlink_to(outside)


_counter = itertools.count()


@settings(
    derandomize=True,
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(mutations=st.lists(MUTATIONS, min_size=1, max_size=2), recompute=st.booleans())
def test_tampered_files_raise_only_mixllm_errors_and_touch_nothing_outside(
    workspace: Path, mutations: list[tuple[Any, ...]], recompute: bool
) -> None:
    d = copy_router(workspace / "template", workspace / f"case{next(_counter)}")
    sentinel = workspace / "sentinel.txt"
    for mutation in mutations:
        _mutate(d, mutation, sentinel)
    if recompute and (d / "manifest.json").is_file() and not (d / "manifest.json").is_symlink():
        # a damaged manifest cannot be recomputed: load must refuse it as it is
        with contextlib.suppress(ValueError, KeyError, TypeError, AttributeError):
            rewrite_manifest(d)
    before = sorted(os.listdir(workspace))
    router = None
    with side_effects(d) as seen:
        try:
            router = MixLLMRouter.load(d)
            event("loaded")
        except MixLLMError as exc:
            event(f"refused: {type(exc).__name__}")
    assert seen == []
    assert sorted(os.listdir(workspace)) == before
    assert sentinel.read_text() == "outside the router"
    # what loads must work: no NaN or shape error waits for route() (a built-in encoder put in
    # the hashing encoder's place would load its model first: too slow here, and it cannot fit)
    if router is not None and isinstance(router.encoder, HashingEncoder):
        assert router.encoder.dim == 64  # fails fast, before a huge allocation could
        decisions = router.route_batch(WORLD.queries[:5])
        assert all(dec.llm in router.llms for dec in decisions)
    shutil.rmtree(d)
