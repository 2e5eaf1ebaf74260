"""A saved router with the default (linear) quality model loads and routes without scikit-learn,
scipy, skops or torch, deciding exactly as the scikit-learn estimators do; the logistic
regressions read that way are the ones skops reads, and become them when asked for."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import numpy as np
import pytest

from mixllm_core import MixLLMRouter, RoutingDecision
from mixllm_core.errors import CorruptStateError
from mixllm_core.estimator_io import LogisticArrays, dump_estimator, load_estimator
from mixllm_core.predictors import QualityPredictor
from mixllm_core.testing import HashingEncoder, make_synthetic_world

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("labels", [np.array([0, 1]), np.array(["code", "math", "prose"])])
def test_a_logistic_regression_reads_back_as_skops_reads_it(tmp_path: Path, labels) -> None:
    from sklearn.linear_model import LogisticRegression
    from skops.io import load

    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 4)).astype(np.float32)
    y = labels[rng.integers(0, len(labels), size=60)]
    fitted = LogisticRegression(C=0.5, max_iter=300).fit(X, y)
    dump_estimator(fitted, tmp_path / "m.skops")
    ours = load_estimator(tmp_path / "m.skops")
    theirs = load(
        tmp_path / "m.skops", trusted=[f"{LogisticRegression.__module__}.LogisticRegression"]
    )
    assert type(ours) is LogisticRegression
    assert sorted(vars(ours)) == sorted(vars(theirs))
    for name, value in vars(theirs).items():
        np.testing.assert_array_equal(np.asarray(getattr(ours, name)), np.asarray(value))
    np.testing.assert_array_equal(ours.predict_proba(X), fitted.predict_proba(X))
    arrays = load_estimator(tmp_path / "m.skops", lazy=True)
    assert isinstance(arrays, LogisticArrays)
    # scikit-learn computes a model fit on float32 in float32: equal within one rounding of it
    np.testing.assert_allclose(arrays.predict_proba(X), fitted.predict_proba(X), rtol=0, atol=1e-7)
    built = arrays.to_sklearn()
    assert type(built) is LogisticRegression and arrays.to_sklearn() is built
    for name, value in vars(theirs).items():
        np.testing.assert_array_equal(np.asarray(getattr(built, name)), np.asarray(value))


def test_a_damaged_logistic_regression_is_still_refused(tmp_path: Path) -> None:
    from sklearn.linear_model import LogisticRegression

    X = np.random.default_rng(1).normal(size=(40, 3))
    dump_estimator(LogisticRegression().fit(X, (X[:, 0] > 0).astype(int)), tmp_path / "m.skops")
    with zipfile.ZipFile(tmp_path / "m.skops") as archive:
        members = {n: archive.read(n) for n in archive.namelist()}
    schema = json.loads(members["schema.json"])
    schema["content"]["content"]["n_features_in_"]["content"] = "7"  # coef_ has 3 columns
    members["schema.json"] = json.dumps(schema).encode()
    with zipfile.ZipFile(tmp_path / "bad.skops", "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    with pytest.raises(CorruptStateError, match=r"coef_ must be a numeric array of shape \(1, 7\)"):
        load_estimator(tmp_path / "bad.skops")


_QUERIES = ("Solve the integral of a matrix.", "Write a haiku about autumn.")
_HEAVY = ("sklearn", "scipy", "skops", "torch", "sentence_transformers", "pandas")


def _scores(decision: RoutingDecision) -> list[list[object]]:
    return [
        [c.llm, c.quality, c.cost, c.uncertainty, c.score, c.eligible] for c in decision.candidates
    ]


@pytest.fixture(scope="module")
def linear_router(tmp_path_factory: pytest.TempPathFactory) -> tuple[MixLLMRouter, Path]:
    router = MixLLMRouter(encoder=HashingEncoder(), seed=0).fit(make_synthetic_world(200, seed=0))
    return router, router.save(tmp_path_factory.mktemp("linear") / "r")


def test_a_linear_router_loads_and_routes_without_sklearn_or_scipy(linear_router) -> None:
    """In a fresh process: no heavy module, and the decisions of the scikit-learn estimators."""
    router, path = linear_router
    code = textwrap.dedent(
        f"""
        import json, sys
        from mixllm_core import MixLLMRouter, RoutingDecision
        from mixllm_core.testing import HashingEncoder
        router = MixLLMRouter.load({str(path)!r}, encoder=HashingEncoder())
        out = []
        for query in {_QUERIES!r}:
            d = router.route(query)
            out.append([d.llm, [[c.llm, c.quality, c.cost, c.uncertainty, c.score, c.eligible]
                                for c in d.candidates]])
        print(json.dumps(out))
        print(json.dumps([m for m in {_HEAVY!r} if m in sys.modules]))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    routed, heavy = (json.loads(line) for line in done.stdout.strip().splitlines()[-2:])
    assert heavy == []
    assert type(router._quality[router.llms[0]].estimator_).__name__ == (
        "LogisticRegression"
    )  # the router it is compared with predicts through scikit-learn
    for query, (llm, scores) in zip(_QUERIES, routed):
        expected = router.route(query)
        assert llm == expected.llm
        got, want = scores, _scores(expected)
        assert [row[0] for row in got] == [row[0] for row in want]
        assert [row[5] for row in got] == [row[5] for row in want]
        np.testing.assert_allclose(
            [row[1:5] for row in got], [row[1:5] for row in want], rtol=0, atol=1e-9
        )


def test_a_loaded_linear_model_predicts_as_its_logistic_regression(linear_router) -> None:
    router, path = linear_router
    loaded = MixLLMRouter.load(path, encoder=HashingEncoder())
    X = np.random.default_rng(2).normal(size=(30, HashingEncoder().dim)).astype(np.float32)
    for name in router.llms:
        fitted, lazy = router._quality[name], loaded._quality[name]
        assert isinstance(lazy._estimator, LogisticArrays)  # not built: predicts with numpy
        np.testing.assert_allclose(lazy.predict(X), fitted.predict(X), rtol=0, atol=1e-7)
        with pytest.raises(ValueError, match="reads 64 features"):
            lazy.predict(X[:, :5])
        assert isinstance(lazy._estimator, LogisticArrays)
        assert type(QualityPredictor.from_state(lazy.get_state()).estimator_).__name__ == (
            "LogisticRegression"
        )


def test_the_scikit_learn_model_is_built_when_asked_for_and_saves_the_same_bytes(
    linear_router, tmp_path: Path
) -> None:
    from sklearn.linear_model import LogisticRegression

    router, path = linear_router
    loaded = MixLLMRouter.load(path, encoder=HashingEncoder())
    name = router.llms[0]
    held = loaded._quality[name]
    arrays = held._estimator
    assert isinstance(arrays, LogisticArrays)
    est = held.estimator_  # built now, and kept
    assert type(est) is LogisticRegression and held._estimator is est is arrays.to_sklearn()
    fitted = router._quality[name].estimator_
    assert sorted(vars(est)) == sorted(vars(fitted))
    for attr, value in vars(fitted).items():
        np.testing.assert_array_equal(np.asarray(getattr(est, attr)), np.asarray(value))
    # the state a loaded router hands out holds scikit-learn models, saved as the fitted ones
    again = MixLLMRouter.load(path, encoder=HashingEncoder())
    assert all(type(llm.quality.estimator) is LogisticRegression for llm in again.get_state().llms)
    again.save(tmp_path / "again")
    router.save(tmp_path / "fitted")
    files = sorted((tmp_path / "fitted" / "quality").iterdir())
    assert files
    for file in files:
        assert _content(tmp_path / "again" / "quality" / file.name) == _content(file)


def _content(path: Path) -> object:
    """A skops file's schema with every array in place of the file it names, object ids left
    out (skops names the arrays by the ids of the objects it was given)."""
    with zipfile.ZipFile(path) as archive:

        def strip(node: object) -> object:
            if isinstance(node, dict):
                out = {k: strip(v) for k, v in node.items() if k != "__id__"}
                if "file" in node:
                    out["file"] = archive.read(node["file"])
                return out
            return [strip(v) for v in node] if isinstance(node, list) else node

        return strip(json.loads(archive.read("schema.json")))
