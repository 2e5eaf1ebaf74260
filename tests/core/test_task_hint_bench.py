"""benchmarks/task_hint.py on synthetic data: route_batch with hints makes the sweep's choices,
and giving the true task helps where the tagger errs (hashing encoder, 3 folds)."""

from __future__ import annotations

from mixllm_core.testing import HashingEncoder, make_synthetic_world
from tests.conftest import load_benchmark


def test_the_hint_pays_where_the_tagger_errs_and_route_batch_agrees() -> None:
    bench = load_benchmark("task_hint")
    res = bench.evaluate(make_synthetic_world(1000, seed=0), 3, 1, 0, encoder=HashingEncoder())
    assert res["route_batch_agreement"] == 1.0  # the public path predicts what the sweep does
    assert res["unknown_task_rows"] == 0
    assert 0.7 < res["tagger_accuracy"] < 0.97  # the hashing tagger errs on some rows
    # given − guessed, paired over the folds: +1.4 AIQ points here (seeded); a hint that did
    # nothing would give exactly 0. Three folds are too few for a margin in standard errors.
    assert res["gain"]["aiq_x100"]["mean"] > 0.5
