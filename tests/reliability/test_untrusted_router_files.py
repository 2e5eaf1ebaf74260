"""A saved router directory is untrusted input: loading it runs no code, writes nothing, reads
nothing outside it, and turns every malformed file into CorruptStateError."""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import skops.io as sio
from reliability_helpers import (
    WORLD,
    copy_router,
    edit_json,
    fitted_router,
    rewrite_manifest,
    side_effects,
)

from mixllm_core import ConfigError, CorruptStateError, MixLLMRouter
from mixllm_core.estimator_io import TRUSTED_TYPES, dump_estimator, load_estimator
from mixllm_core.testing import HashingEncoder


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return fitted_router("linear").save(tmp_path_factory.mktemp("template") / "router")


@pytest.fixture
def saved(template: Path, tmp_path: Path) -> Path:
    return copy_router(template, tmp_path / "router")


def _json_node(value: Any) -> dict[str, Any]:
    return {
        "__class__": "str",
        "__module__": "builtins",
        "__loader__": "JsonNode",
        "content": json.dumps(value),
        "is_json": True,
    }


def _call_node(module: str, name: str, *args: Any) -> dict[str, Any]:
    """A skops node that calls ``module.name(*args)`` while the file is loaded."""
    return {
        "__class__": name,
        "__module__": module,
        "__loader__": "ConstructorFromReduceNode",
        "content": {
            "__class__": "tuple",
            "__module__": "builtins",
            "__loader__": "TupleNode",
            "content": [_json_node(a) for a in args],
        },
    }


def _edit_schema(skops_file: Path, edit: Any) -> None:
    with zipfile.ZipFile(skops_file) as z:
        members = {n: z.read(n) for n in z.namelist()}
    schema = json.loads(members["schema.json"])
    edit(schema)
    members["schema.json"] = json.dumps(schema).encode()
    with zipfile.ZipFile(skops_file, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)


def _plant(skops_file: Path, node: dict[str, Any]) -> None:
    """Replace the estimator's ``C`` parameter in ``skops_file`` by ``node``."""
    _edit_schema(skops_file, lambda schema: schema["content"]["content"].update(C=node))


def _payloads(outside: Path) -> dict[str, dict[str, Any]]:
    return {
        "exec": _call_node(
            "numpy.testing._private.utils",
            "runstring",
            f"__import__('pathlib').Path({str(outside / 'ran')!r}).write_text('code ran')",
            {},
        ),
        "savetxt": _call_node("numpy", "savetxt", str(outside / "written.txt"), [[1.0, 2.0]]),
        "pickle": _call_node("numpy", "load", str(outside / "payload.npy"), None, True),
    }


@pytest.mark.parametrize("payload", ["exec", "savetxt", "pickle"])
def test_a_skops_file_that_calls_a_numpy_function_is_refused_before_it_runs(
    saved: Path, tmp_path: Path, payload: str
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    np.save(outside / "payload.npy", np.array([{"pickled": True}], dtype=object))
    quality = saved / "quality" / "llm000.skops"
    _plant(quality, _payloads(outside)[payload])
    rewrite_manifest(saved)
    before = sorted(os.listdir(outside))
    with side_effects(saved) as seen, pytest.raises(CorruptStateError, match="does not load"):
        MixLLMRouter.load(saved)
    assert seen == [] and sorted(os.listdir(outside)) == before


def test_the_planted_payloads_are_live_when_skops_is_told_to_trust_them(
    saved: Path, tmp_path: Path
) -> None:
    """Guards the test above: the refusal is what stops them, not a broken payload."""
    outside = tmp_path / "outside"
    outside.mkdir()
    quality = saved / "quality" / "llm000.skops"
    for payload in ("exec", "savetxt"):
        _plant(quality, _payloads(outside)[payload])
        sio.load(quality, trusted=sio.get_untrusted_types(file=quality))
    assert sorted(os.listdir(outside)) == ["ran", "written.txt"]


def test_the_allow_list_is_exactly_what_our_estimators_are_made_of(tmp_path: Path) -> None:
    from mixllm_core.encoders import Tagger
    from mixllm_core.predictors import QualityPredictor

    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 6)).astype(np.float32)
    found: set[str] = set()
    for kind in ("linear", "knn", "rf", "mlp"):
        for y in ((X[:, 0] > 0).astype(float), rng.random(120)):  # binary and fractional
            est = QualityPredictor(kind, seed=0).fit(X, y).estimator_
            dump_estimator(est, tmp_path / f"{kind}.skops")
            loaded = load_estimator(tmp_path / f"{kind}.skops")
            np.testing.assert_allclose(loaded.predict(X[:5]), est.predict(X[:5]))
            found |= _types(tmp_path / f"{kind}.skops")
    texts = WORLD.queries[:200]
    tagger = Tagger().fit(texts, HashingEncoder().encode(texts), WORLD.tasks[:200])
    dump_estimator(tagger.classifier_, tmp_path / "tagger.skops")
    found |= _types(tmp_path / "tagger.skops")
    assert found == set(TRUSTED_TYPES)
    assert not any(
        t.startswith("numpy.") and "ndarray" not in t
        for t in found - {"numpy.float64", "numpy.random.mtrand.RandomState"}
    )


def _types(path: Path) -> set[str]:
    with zipfile.ZipFile(path) as z:
        schema = json.loads(z.read("schema.json"))
    found, stack = set(), [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if "__loader__" in node:
                found.add(f"{node['__module__']}.{node['__class__']}")
            stack += node.values()
        elif isinstance(node, list):
            stack += node
    return found


def test_a_decision_tree_with_indices_out_of_range_is_refused(tmp_path: Path) -> None:
    """scikit-learn follows a tree's child indices unchecked: a crafted one reads wild memory."""
    router = fitted_router("rf", feedback=0)
    tree = router._quality[router.llms[0]].estimator_.estimators_[0].tree_
    state = {
        k: np.copy(v) if isinstance(v, np.ndarray) else v for k, v in tree.__getstate__().items()
    }
    nodes = state["nodes"].copy()
    nodes["left_child"][0] = 10**6
    tree.__setstate__({**state, "nodes": nodes})
    path = router.save(tmp_path / "r")
    with pytest.raises(CorruptStateError, match="node indices out of range"):
        MixLLMRouter.load(path)


# ---------------------------------------------------------------------------- paths
@pytest.mark.parametrize("bad", ["/etc/hostname", "../outside.skops", "quality/../../x.skops"])
def test_a_quality_file_outside_the_directory_is_refused(saved: Path, bad: str) -> None:
    (saved.parent / "outside.skops").write_bytes((saved / "quality/llm000.skops").read_bytes())
    edit_json(saved, "router.json", lambda d: d["llms"][0]["quality"].update(file=bad))
    with side_effects(saved) as seen, pytest.raises(CorruptStateError):
        MixLLMRouter.load(saved)
    assert seen == []


def test_a_manifest_that_names_a_path_outside_is_refused(saved: Path) -> None:
    edit_json(saved, "manifest.json", lambda m: m["files"].update({"../secret": "0" * 64}))
    with pytest.raises(CorruptStateError, match="plain relative paths"):
        MixLLMRouter.load(saved)


def test_a_symlink_that_resolves_outside_is_refused(saved: Path) -> None:
    outside = saved.parent / "elsewhere.skops"
    quality = saved / "quality" / "llm000.skops"
    outside.write_bytes(quality.read_bytes())
    quality.unlink()
    quality.symlink_to(outside)  # same bytes, same checksum: only the location is wrong
    with side_effects(saved) as seen, pytest.raises(CorruptStateError, match="resolves outside"):
        MixLLMRouter.load(saved)
    assert seen == []


def test_an_encoder_directory_that_links_outside_is_refused(saved: Path) -> None:
    (saved.parent / "enc").mkdir()
    (saved / "encoder").symlink_to(saved.parent / "enc")
    with pytest.raises(CorruptStateError, match="encoder files outside the manifest"):
        MixLLMRouter.load(saved)


# ---------------------------------------------------------------------------- malformed files
def _npz(path: Path, **arrays: Any) -> None:
    with path.open("wb") as f:
        np.savez(f, **arrays)


def _arrays(path: Path) -> dict[str, np.ndarray]:
    with np.load(path) as f:
        return {k: f[k] for k in f.files}


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _nan_heads(d: Path) -> None:
    a = _arrays(d / "online.npz")
    a["A_inv"][0, 0, 0] = np.nan
    _npz(d / "online.npz", **a)


def _bad_shape(d: Path) -> None:
    a = _arrays(d / "online.npz")
    _npz(d / "online.npz", **{**a, "b": a["b"][:, :3]})


def _inf_training(d: Path) -> None:
    a = _arrays(d / "train.npz")
    a["X_0"][3, 1] = np.inf
    _npz(d / "train.npz", **a)


def _object_array(d: Path) -> None:
    a = _arrays(d / "online.npz")
    with (d / "online.npz").open("wb") as f:
        np.savez(f, **{**a, "n_updates": np.array([{"x": 1}] * 3, dtype=object)})


def _compressed(d: Path) -> None:
    arrays = _arrays(d / "train.npz")
    with (d / "train.npz").open("wb") as f:
        np.savez_compressed(f, **arrays)


def _set(*path: Any, value: Any) -> Any:
    def edit(doc: Any) -> None:
        for key in path[:-1]:
            doc = doc[key]
        doc[path[-1]] = value

    return edit


FILE_DAMAGE = {
    "online.npz is not a zip": lambda d: (d / "online.npz").write_bytes(b"not a zip at all"),
    "train.npz truncated": lambda d: _truncate(d / "train.npz"),
    "skops truncated": lambda d: _truncate(d / "quality" / "llm001.skops"),
    "skops is empty": lambda d: (d / "quality" / "llm001.skops").write_bytes(b""),
    "NaN in the online heads": _nan_heads,
    "wrong shape of b": _bad_shape,
    "inf in the training set": _inf_training,
    "an object (pickled) array": _object_array,
    "a compressed archive": _compressed,
}
JSON_DAMAGE = {
    "llms is an object": _set("llms", value={}),
    "an LLM is a list": _set("llms", 0, value=[1, 2]),
    "coef holds text": _set("llms", 0, "cost", "coef", value=["a", "b"]),
    "coef too short": _set("llms", 1, "cost", "coef", value=[1.0]),
    "mean above 1": _set("llms", 0, "quality", "mean", value=2.0),
    "kind unknown": _set("llms", 0, "quality", "kind", value="svm"),
    "kind of another estimator": _set("llms", 0, "quality", "kind", value="knn"),
    "n_features wrong": _set("llms", 0, "quality", "n_features", value=7),
    "price negative": _set("llms", 0, "spec", "input_price", value=-1),
    "spec with extra keys": _set("llms", 0, "spec", "evil", value=1),
    "policy is a list": _set("policy", value=[]),
    "policy lam is text": _set("policy", "lam", value="high"),
    "c_ref huge": _set("c_ref", value=10**400),
    "c_ref infinite": _set("c_ref", value=1e400),
    "feedback_seq negative": _set("feedback_seq", value=-1),
    "online_dim wrong": _set("online_dim", value=3),
    "ridge zero": _set("online_head_ridge", value=0),
    "train slot unknown": _set("train", "nobody", value=[0, 0]),
    "train slot is text": _set("train", "cheap", value="X_0"),
    "encoder type unknown": _set("encoder", value={"type": "bert"}),
    "encoder config asks to read a cache file": _set(
        "encoder", value={"type": "sentence", "cache_path": "/etc/hostname"}
    ),
    "encoder_files not a list": _set("encoder_files", value="encoder/"),
    "format marker missing": _set("format", value="something-else"),
    "router.json is a list": lambda doc: [doc],
}


@pytest.mark.parametrize("damage", FILE_DAMAGE)
def test_a_malformed_file_is_corrupt_state(saved: Path, damage: str) -> None:
    FILE_DAMAGE[damage](saved)
    rewrite_manifest(saved)
    with side_effects(saved) as seen, pytest.raises(CorruptStateError):
        MixLLMRouter.load(saved)
    assert seen == []


@pytest.mark.parametrize("damage", JSON_DAMAGE)
def test_malformed_json_is_corrupt_state(saved: Path, damage: str) -> None:
    edit_json(saved, "router.json", JSON_DAMAGE[damage])
    with side_effects(saved) as seen, pytest.raises(CorruptStateError):
        MixLLMRouter.load(saved)
    assert seen == []


@pytest.mark.parametrize("text", ["[]", '{"files": []}', "{", '{"files": {"router.json": 1}}'])
def test_a_malformed_manifest_is_corrupt_state(saved: Path, text: str) -> None:
    (saved / "manifest.json").write_text(text)
    with pytest.raises(CorruptStateError):
        MixLLMRouter.load(saved)


def test_nan_spelled_in_json_is_refused(saved: Path) -> None:
    path = saved / "router.json"
    path.write_text(path.read_text().replace('"c_ref": ', '"c_ref": NaN, "_was": ', 1))
    rewrite_manifest(saved)
    with pytest.raises(CorruptStateError, match="not a number JSON allows"):
        MixLLMRouter.load(saved)


def test_an_encoder_model_path_is_refused_unless_the_caller_brings_the_encoder(
    tmp_path: Path,
) -> None:
    router = MixLLMRouter(["a", "b"], encoder=HashingEncoder())
    path = router.save(tmp_path / "r")
    edit_json(path, "router.json", _set("encoder", value={"type": "static", "model": "/models/x"}))
    with side_effects(path) as seen, pytest.raises(ConfigError, match="pass encoder= to load"):
        MixLLMRouter.load(path)
    assert seen == []
    assert MixLLMRouter.load(path, encoder=HashingEncoder()).llms == ["a", "b"]


def test_files_the_manifest_does_not_list_are_refused(saved: Path) -> None:
    (saved / "encoder").mkdir()
    (saved / "encoder" / "static_lsa.npz").write_bytes(b"planted")
    with pytest.raises(CorruptStateError, match="encoder files outside the manifest"):
        MixLLMRouter.load(saved)


def test_a_router_that_loads_routes_as_it_was_saved(saved: Path) -> None:
    loaded, original = MixLLMRouter.load(saved), fitted_router("linear")
    for query in ("compute 2 + 2", "write a poem about the sea", "debug this python loop"):
        got, want = loaded.route(query), original.route(query)
        assert got.llm == want.llm
        assert [c.score for c in got.candidates] == pytest.approx(
            [c.score for c in want.candidates], abs=1e-9
        )
