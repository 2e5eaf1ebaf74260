from __future__ import annotations

import numpy as np
import pytest

from mixllm_core import ConfigError
from mixllm_core.errors import NotFittedError
from mixllm_core.predictors import CostPredictor, PredictorBank, QualityPredictor, cost_features


def _data(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(200, 8)).astype(np.float32)
    Y = (X[:, :3] + rng.normal(scale=0.5, size=(200, 3)) > 0).astype(float)
    return X, Y


@pytest.mark.parametrize("kind", ["knn", "linear", "rf", "mlp"])
def test_bank_equals_per_llm_predictions(kind: str) -> None:
    X, Y = _data()
    preds = [QualityPredictor(kind, seed=0).fit(X, Y[:, j]) for j in range(3)]
    bank = PredictorBank(preds, [CostPredictor("prior")] * 3)
    Xt = np.random.default_rng(1).normal(size=(40, 8)).astype(np.float32)
    expected = np.column_stack([p.predict(Xt) for p in preds])
    np.testing.assert_allclose(bank.predict_quality(Xt), expected, atol=1e-5)
    assert ((expected >= 0) & (expected <= 1)).all()


def test_quality_predictor_learns_signal() -> None:
    X, Y = _data()
    pred = QualityPredictor("linear").fit(X[:150], Y[:150, 0])
    p = pred.predict(X[150:])
    acc = ((p > 0.5) == (Y[150:, 0] > 0.5)).mean()
    assert acc > 0.75  # the label is sign(x0 + noise): far above the 0.5 of guessing


def test_quality_predictor_errors_and_constant_labels() -> None:
    with pytest.raises(ConfigError, match="Invalid quality model kind 'svm'"):
        QualityPredictor("svm")
    with pytest.raises(ConfigError, match=r"Unknown parameters \['depth'\]"):
        QualityPredictor("knn", depth=3)
    with pytest.raises(NotFittedError):
        QualityPredictor("knn").predict(np.zeros((1, 2)))
    const = QualityPredictor("linear").fit(np.zeros((5, 2)), np.ones(5))
    np.testing.assert_allclose(const.predict(np.ones((3, 2))), 1.0)


def test_cost_predictor_modes() -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 4))
    in_tok = rng.integers(10, 2000, size=300).astype(float)
    F = cost_features(X, in_tok)
    true_cost = 3e-6 * in_tok  # cost proportional to prompt length
    reg = CostPredictor("regress").fit(F, true_cost)
    rel = np.abs(reg.predict(F) / true_cost - 1)
    assert np.median(rel) < 0.05
    out_tok = 150 + 30 * X[:, 0]  # always > 1 token, so no clipping
    tok = CostPredictor("tokens", input_price=1.0, output_price=2.0).fit(F, out_tok)
    np.testing.assert_allclose(tok.predict(F), (in_tok * 1.0 + out_tok * 2.0) / 1e6, rtol=0.02)
    prior = CostPredictor("prior", input_price=1.0, output_price=2.0, output_tokens=200)
    np.testing.assert_allclose(prior.predict(F), (in_tok + 400) / 1e6)
    bank = PredictorBank([QualityPredictor.prior(0.5)] * 3, [reg, tok, prior])
    np.testing.assert_allclose(
        bank.predict_cost(F), np.column_stack([reg.predict(F), tok.predict(F), prior.predict(F)])
    )
