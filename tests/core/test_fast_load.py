"""A saved router with the default (linear) quality model loads without skops or torch, and the
logistic regressions read that way are the ones skops reads."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from mixllm_core import MixLLMRouter
from mixllm_core.errors import CorruptStateError
from mixllm_core.estimator_io import dump_estimator, load_estimator
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


def test_a_damaged_logistic_regression_is_still_refused(tmp_path: Path) -> None:
    from sklearn.linear_model import LogisticRegression

    X = np.random.default_rng(1).normal(size=(40, 3))
    dump_estimator(LogisticRegression().fit(X, (X[:, 0] > 0).astype(int)), tmp_path / "m.skops")
    import zipfile

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


def test_loading_a_linear_router_imports_neither_skops_nor_torch(tmp_path: Path) -> None:
    router = MixLLMRouter(encoder=HashingEncoder(), seed=0).fit(make_synthetic_world(200, seed=0))
    router.save(tmp_path / "r")
    expected = router.route("Solve the integral of a matrix.").llm
    code = textwrap.dedent(
        f"""
        import sys
        from mixllm_core import MixLLMRouter
        from mixllm_core.testing import HashingEncoder
        router = MixLLMRouter.load({str(tmp_path / "r")!r}, encoder=HashingEncoder())
        print(router.route("Solve the integral of a matrix.").llm)
        print([m for m in ("skops.io", "torch", "sentence_transformers") if m in sys.modules])
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    llm, heavy = done.stdout.strip().splitlines()[-2:]
    assert llm == expected
    assert heavy == "[]"
