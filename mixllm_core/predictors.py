"""Per-LLM quality and cost predictors, and `PredictorBank`, their batched fast path.

Each LLM has its own :class:`QualityPredictor` and :class:`CostPredictor`, fitted only on that
LLM's observations, so adding an LLM trains nothing else. At routing time the bank evaluates all of
them at once: linear models as one matrix product, KNN models that share training queries as one
neighbour search; random forests and MLPs are called one by one (slower, still correct).
"""

from __future__ import annotations

import hashlib
import math
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from .errors import ConfigError, NotFittedError, check_choice
from .estimator_io import LogisticArrays

__all__ = [
    "QUALITY_KINDS",
    "MIN_INPUT_PRICE_SHARE",
    "CostPredictor",
    "CostState",
    "PredictorBank",
    "QualityPredictor",
    "QualityState",
    "cost_features",
    "infer_prices",
]

QUALITY_KINDS = ("knn", "linear", "rf", "mlp")
_DEFAULTS: dict[str, dict[str, Any]] = {
    "knn": {"n_neighbors": 20, "weights": "distance"},
    "linear": {"C": 0.5},
    "rf": {"n_estimators": 100, "min_samples_leaf": 5, "max_features": "sqrt"},
    "mlp": {"hidden_layer_sizes": (64,), "alpha": 1e-3, "max_iter": 300},
}
#: The scikit-learn class(es) each kind fits (see ``QualityPredictor._build``).
_ESTIMATORS = {
    "knn": ("KNeighborsRegressor",),
    "linear": ("LogisticRegression",),
    "rf": ("RandomForestRegressor",),
    "mlp": ("MLPClassifier", "MLPRegressor"),
}


def _estimator_name(estimator: Any) -> str:
    """The scikit-learn class name of ``estimator`` (a :class:`LogisticArrays` stands for one)."""
    return (
        "LogisticRegression" if isinstance(estimator, LogisticArrays) else type(estimator).__name__
    )


def _is_logistic(estimator: Any) -> bool:
    """Whether ``estimator`` is a logistic regression, without importing scikit-learn: when it
    is not imported, no object can be one of its estimators."""
    if isinstance(estimator, LogisticArrays):
        return True
    linear_model = sys.modules.get("sklearn.linear_model")
    cls = getattr(linear_model, "LogisticRegression", None)
    return cls is not None and isinstance(estimator, cls)


def _fingerprint(X: np.ndarray) -> str:
    return hashlib.sha1(np.ascontiguousarray(X).tobytes()).hexdigest()


def _number(name: str, value: Any, *, low: float = 0.0, high: float = math.inf) -> None:
    ok = isinstance(value, (int, float, np.floating)) and not isinstance(value, bool)
    if ok:
        try:
            ok = math.isfinite(value) and low <= value <= high
        except OverflowError:  # an int too large for a float
            ok = False
    if not ok:
        raise ConfigError(f"{name} must be a finite number in [{low}, {high}], got {value!r}.")


def _count(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ConfigError(f"{name} must be an int >= 0, got {value!r}.")


@dataclass(frozen=True, eq=False)  # holds a fitted model: compared by identity
class QualityState:
    """What a :class:`QualityPredictor` learned, as :meth:`QualityPredictor.get_state` gives it.

    ``estimator`` is the fitted scikit-learn model, or None when every observed score was equal
    (or nothing was observed): the predictor then answers ``mean``. A state read from a saved
    router may hold a :class:`~mixllm_core.estimator_io.LogisticArrays` in place of a logistic
    regression (``estimator.to_sklearn()`` gives it); :meth:`QualityPredictor.get_state` always
    gives the scikit-learn model. Validated on construction.

    Example:
        >>> state = QualityPredictor.prior(0.7, "linear").get_state()
        >>> (state.kind, state.mean, state.estimator)
        ('linear', 0.7, None)
    """

    kind: str
    params: Mapping[str, Any]
    seed: int
    mean: float
    n_samples: int
    n_features: int
    estimator: Any = None

    def __post_init__(self) -> None:
        if not isinstance(self.params, Mapping):
            raise ConfigError(f"QualityState.params must be a mapping, got {self.params!r}.")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise ConfigError(f"QualityState.seed must be an int, got {self.seed!r}.")
        QualityPredictor(self.kind, seed=self.seed, **self.params)  # kind and parameter names
        _number("QualityState.mean", self.mean, high=1.0)
        _count("QualityState.n_samples", self.n_samples)
        _count("QualityState.n_features", self.n_features)
        if self.estimator is None:
            return
        name = _estimator_name(self.estimator)
        if name not in _ESTIMATORS[self.kind]:
            raise ConfigError(
                f"A {self.kind!r} quality predictor holds a {name}; it fits "
                f"{' or '.join(_ESTIMATORS[self.kind])}."
            )
        classes = getattr(self.estimator, "classes_", None)
        if classes is not None and list(np.ravel(classes)) != [0, 1]:
            raise ConfigError(f"The {name} predicts classes {classes!r}; quality needs [0, 1].")
        fitted_on = getattr(self.estimator, "n_features_in_", None)
        if fitted_on != self.n_features or self.n_samples == 0:
            raise ConfigError(
                f"The {name} was fit on {fitted_on} features; the state says "
                f"{self.n_features} features and {self.n_samples} samples."
            )


@dataclass(frozen=True, eq=False)  # holds arrays: compared by identity
class CostState:
    """What a :class:`CostPredictor` learned, as :meth:`CostPredictor.get_state` gives it.

    ``coef`` and ``intercept`` act on :func:`cost_features` (empty ``coef`` for ``"prior"``).

    Example:
        >>> CostPredictor("prior", input_price=1.0).get_state().coef.shape
        (0,)
    """

    mode: str
    input_price: float
    output_price: float
    output_tokens: float
    alpha: float
    coef: np.ndarray
    intercept: float

    def __post_init__(self) -> None:
        check_choice("cost mode", self.mode, ("regress", "tokens", "prior"))
        for name in ("input_price", "output_price", "output_tokens", "alpha", "intercept"):
            low = -math.inf if name == "intercept" else 0.0
            _number(f"CostState.{name}", getattr(self, name), low=low)
        coef = np.asarray(self.coef)
        size_ok = coef.size == 0 if self.mode == "prior" else coef.size >= 2
        if coef.dtype.kind not in "fiu" or coef.ndim != 1 or not size_ok:
            raise ConfigError(
                f"CostState.coef of a {self.mode!r} cost model must be a 1-d array of "
                f"{'0' if self.mode == 'prior' else '>= 2'} numbers, got {coef.dtype} "
                f"{coef.shape}."
            )
        if not np.isfinite(coef).all():
            raise ConfigError("CostState.coef holds NaN or infinite values.")
        object.__setattr__(self, "coef", coef.astype(float))

    @property
    def n_features(self) -> int:
        """Length of the cost features it reads (0 for ``"prior"``, which reads only tokens)."""
        return int(self.coef.shape[0])


def cost_features(X: np.ndarray, input_tokens: np.ndarray) -> np.ndarray:
    """Features of the cost model: log input length, then the query representation."""
    return np.hstack([np.log1p(np.asarray(input_tokens, dtype=float))[:, None], X])


#: The least input price :func:`infer_prices` gives, as a share of the output price: price lists
#: charge output tokens 1 to 4 times as much as input tokens (RouterBench's 11 LLMs: 1.0 to 3.4).
MIN_INPUT_PRICE_SHARE = 0.25


def infer_prices(
    cost: np.ndarray,
    input_tokens: np.ndarray,
    output_tokens: np.ndarray | None = None,
    *,
    assumed_output_tokens: float = 200.0,
) -> tuple[float, float]:
    """Per-token prices (USD per million tokens) that explain observed per-call costs.

    A non-negative least-squares fit of ``cost ≈ input_tokens × p_in + output_tokens × p_out``
    (rows with a NaN are skipped). Without output tokens every answer counts as
    ``assumed_output_tokens`` long, so ``p_out`` prices an average answer and ``p_in`` is what
    the cost grows by per prompt token. When the prompts vary too little in length to tell
    (the fit gives ``p_in`` below :data:`MIN_INPUT_PRICE_SHARE` × ``p_out``), ``p_in`` is set to
    that share and ``p_out`` fit again, so a long prompt still costs what it should. Costs
    that are prices times tokens, as RouterBench's are, give back the list prices.

    Example:
        >>> tin = np.array([100.0, 2000.0, 50.0]); tout = np.array([300.0, 10.0, 80.0])
        >>> [round(p, 6) for p in infer_prices((tin * 10 + tout * 30) / 1e6, tin, tout)]
        [10.0, 30.0]
    """
    from scipy.optimize import nnls

    cost = np.asarray(cost, dtype=float)
    tin = np.asarray(input_tokens, dtype=float)
    tout = (
        np.full_like(cost, float(assumed_output_tokens))
        if output_tokens is None
        else np.asarray(output_tokens, dtype=float)
    )
    ok = np.isfinite(cost) & np.isfinite(tin) & np.isfinite(tout)
    if not ok.any():
        raise ConfigError("infer_prices needs at least one row with a cost and token counts.")
    A = np.column_stack([tin[ok], tout[ok]]) / 1e6
    scale = float(np.abs(cost[ok]).max()) or 1.0  # NNLS is better conditioned on O(1) targets
    y = cost[ok] / scale
    (p_in, p_out), _ = nnls(A, y)
    if p_in < MIN_INPUT_PRICE_SHARE * p_out:  # p_in at the floor: cost = A @ [s·p, p]
        combined = A @ np.array([MIN_INPUT_PRICE_SHARE, 1.0])
        p_out = max(float(combined @ y) / float(combined @ combined), 0.0)
        p_in = MIN_INPUT_PRICE_SHARE * p_out
    return float(p_in * scale), float(p_out * scale)


class QualityPredictor:
    """Predicts one LLM's response quality in [0, 1] from the query representation.

    Args:
        kind: ``"knn"``, ``"linear"`` (logistic regression giving P(good answer); fractional
            scores are fit as weighted successes and failures),
            ``"rf"`` (random forest) or ``"mlp"``.
        seed: Seed of the estimators that use randomness.
        **params: Estimator parameters overriding the defaults of ``kind``.

    Example:
        >>> import numpy as np
        >>> X = np.random.default_rng(0).normal(size=(40, 3)); y = (X[:, 0] > 0).astype(float)
        >>> QualityPredictor("linear").fit(X, y).predict(X[:2]).shape
        (2,)
    """

    _estimator: Any  # what estimator_ gives; a LogisticArrays until the sklearn object is asked for
    mean_: float
    n_samples_: int
    n_features_in_: int
    train_fingerprint_: str

    def __init__(self, kind: str = "knn", *, seed: int = 0, **params: Any) -> None:
        check_choice("quality model kind", kind, QUALITY_KINDS)
        unknown = set(params) - set(_DEFAULTS[kind])
        if unknown:
            raise ConfigError(
                f"Unknown parameters {sorted(unknown)} for quality model {kind!r}; allowed are "
                f"{sorted(_DEFAULTS[kind])}."
            )
        self.kind = kind
        self.seed = seed
        self.params = {**_DEFAULTS[kind], **params}

    @property
    def estimator_(self) -> Any:
        """The fitted scikit-learn model, or None (every observed score was equal).

        A logistic regression read from a saved router is held as its arrays (it predicts with
        numpy) and built as a scikit-learn object only here, the first time it is asked for.
        """
        est = self._estimator
        if isinstance(est, LogisticArrays):
            est = self._estimator = est.to_sklearn()
        return est

    @estimator_.setter
    def estimator_(self, estimator: Any) -> None:
        self._estimator = estimator

    @classmethod
    def prior(cls, quality: float, kind: str = "knn") -> QualityPredictor:
        """A predictor that has seen no data and predicts ``quality`` for every query."""
        pred = cls(kind)
        pred.mean_ = float(quality)
        pred.n_samples_ = 0
        pred.n_features_in_ = 0
        pred.estimator_ = None
        pred.train_fingerprint_ = ""
        return pred

    def _build(self, binary: bool, n: int) -> Any:
        from sklearn.ensemble import RandomForestRegressor
        from sklearn.linear_model import LogisticRegression
        from sklearn.neighbors import KNeighborsRegressor
        from sklearn.neural_network import MLPClassifier, MLPRegressor

        p = self.params
        if self.kind == "knn":
            return KNeighborsRegressor(n_neighbors=min(p["n_neighbors"], n), weights=p["weights"])
        if self.kind == "linear":  # logistic regression, also for fractional scores (see fit)
            return LogisticRegression(C=p["C"], max_iter=3000)
        if self.kind == "rf":
            return RandomForestRegressor(
                n_estimators=p["n_estimators"],
                min_samples_leaf=p["min_samples_leaf"],
                max_features=p["max_features"],
                random_state=self.seed,
                n_jobs=1,
            )
        cls = MLPClassifier if binary else MLPRegressor
        return cls(
            hidden_layer_sizes=tuple(p["hidden_layer_sizes"]),
            alpha=p["alpha"],
            max_iter=p["max_iter"],
            random_state=self.seed,
            early_stopping=n >= 50,
        )

    def fit(
        self, X: np.ndarray, y: np.ndarray, sample_weight: np.ndarray | None = None
    ) -> QualityPredictor:
        """Fit on representations ``X`` (n, d) and observed qualities ``y`` (n,).

        ``sample_weight`` (n,) weighs the rows (e.g. inverse propensities of logged feedback);
        ``"knn"`` ignores it (a local average is little affected by where rows were sampled).
        """
        X = np.asarray(X, dtype=np.float32)
        y = np.asarray(y, dtype=float)
        if X.ndim != 2 or y.shape != (X.shape[0],):
            raise ConfigError(
                f"fit needs X of shape (n, d) and y of shape (n,); got {X.shape}, {y.shape}."
            )
        if X.shape[0] == 0:
            raise ConfigError("fit needs at least one observation, got 0.")
        w = np.ones(len(y)) if sample_weight is None else np.asarray(sample_weight, dtype=float)
        if w.shape != y.shape or not np.isfinite(w).all() or (w < 0).any() or w.sum() <= 0:
            raise ConfigError(
                f"sample_weight must be {len(y)} finite numbers >= 0 with a positive sum, got "
                f"shape {w.shape}."
            )
        self.n_features_in_ = X.shape[1]
        self.n_samples_ = X.shape[0]
        self.mean_ = float(np.clip(np.average(y, weights=w), 0.0, 1.0))
        binary = bool(np.isin(y, (0.0, 1.0)).all())
        if np.unique(y).size < 2:  # nothing to learn: every answer scored the same
            self.estimator_ = None
            self.train_fingerprint_ = ""
            return self
        est = self._build(binary, X.shape[0])
        if self.kind == "linear" and not binary:
            # fractional scores: logistic regression on the expected label, i.e. each row twice,
            # as a success with weight y and a failure with weight 1 - y
            p = np.clip(y, 0.0, 1.0)
            est.fit(
                np.vstack([X, X]),
                np.r_[np.ones(len(p)), np.zeros(len(p))].astype(int),
                sample_weight=np.r_[w * p, w * (1.0 - p)],
            )
        else:
            target = y.astype(int) if binary and self.kind in ("linear", "mlp") else y
            if self.kind == "knn" or sample_weight is None:
                est.fit(X, target)
            else:
                est.fit(X, target, sample_weight=w)
        self.estimator_ = est
        self.train_fingerprint_ = _fingerprint(X) if self.kind == "knn" else ""
        return self

    def _check_fitted(self) -> None:
        if not hasattr(self, "mean_"):
            raise NotFittedError("This QualityPredictor is not fitted yet; call fit(X, y) first.")

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Predicted quality in [0, 1] per row of ``X``."""
        self._check_fitted()
        X = np.asarray(X, dtype=np.float32)
        est = self._estimator  # a LogisticArrays predicts as its logistic regression would
        if est is None:
            return np.full(X.shape[0], self.mean_)
        if hasattr(est, "predict_proba"):
            proba = np.asarray(est.predict_proba(X))
            good: np.ndarray = proba[:, list(est.classes_).index(1)]
            return good
        clipped: np.ndarray = np.clip(np.asarray(est.predict(X)), 0.0, 1.0)
        return clipped

    def get_state(self) -> QualityState:
        """What this predictor learned (the scikit-learn estimator, shared, not copied)."""
        self._check_fitted()
        return QualityState(
            self.kind,
            dict(self.params),
            self.seed,
            self.mean_,
            self.n_samples_,
            self.n_features_in_,
            self.estimator_,
        )

    @classmethod
    def from_state(cls, state: QualityState) -> QualityPredictor:
        """The predictor :meth:`get_state` described."""
        pred = cls(state.kind, seed=state.seed, **state.params)
        pred.mean_, pred.n_samples_ = float(state.mean), int(state.n_samples)
        pred.n_features_in_, pred.estimator_ = int(state.n_features), state.estimator  # as is
        knn = state.kind == "knn" and state.estimator is not None
        pred.train_fingerprint_ = (
            _fingerprint(np.asarray(state.estimator._fit_X, dtype=np.float32)) if knn else ""
        )
        return pred


class CostPredictor:
    """Predicts one LLM's cost per call in USD.

    ``mode="tokens"`` (what ``fit`` on data gives): input tokens × input price + predicted
    output tokens × output price. The input tokens are known when the query is routed, so the
    cost grows linearly with the prompt; only the output length is learned (a ridge regression
    on the cost features). The prices are the LLM's, or inferred from observed costs with
    :func:`infer_prices`. ``mode="prior"``: prices with a fixed output length (cold start).
    ``mode="regress"``: a ridge regression of the log of observed cost, kept to read routers
    saved by earlier versions (its cost does not follow the prompt's length).

    Example:
        >>> F = cost_features(np.zeros((2, 1)), np.array([10.0, 20_000.0]))
        >>> model = CostPredictor("tokens", input_price=10.0, output_price=30.0)
        >>> model.fit(F, np.array([100.0, 100.0])).predict(F).round(4)
        array([0.0031, 0.203 ])
    """

    def __init__(
        self,
        mode: str = "regress",
        *,
        input_price: float = 0.0,
        output_price: float = 0.0,
        output_tokens: float = 200.0,
        alpha: float = 1.0,
    ) -> None:
        check_choice("cost mode", mode, ("regress", "tokens", "prior"))
        self.mode = mode
        self.input_price = float(input_price)
        self.output_price = float(output_price)
        self.output_tokens = float(output_tokens)
        self.alpha = alpha
        if mode == "prior":
            self.coef_ = np.zeros(0)
            self.intercept_ = 0.0

    def fit(self, F: np.ndarray, target: np.ndarray) -> CostPredictor:
        """Fit on cost features ``F`` and observed cost (regress) or output tokens (tokens)."""
        from sklearn.linear_model import Ridge

        if self.mode == "prior":
            return self
        target = np.asarray(target, dtype=float)
        ok = np.isfinite(target)
        if not ok.any():
            raise ConfigError(f"CostPredictor({self.mode!r}) needs observed targets; all are NaN.")
        y = np.log(np.maximum(target[ok], 1e-12)) if self.mode == "regress" else target[ok]
        model = Ridge(alpha=self.alpha).fit(F[ok], y)
        self.coef_ = model.coef_.astype(float)
        self.intercept_ = float(model.intercept_)
        return self

    def predict(self, F: np.ndarray) -> np.ndarray:
        """Predicted USD cost per row of cost features ``F`` (first column: log1p input tokens)."""
        if not hasattr(self, "coef_"):
            raise NotFittedError("This CostPredictor is not fitted yet; call fit first.")
        in_tok = np.expm1(F[:, 0])
        if self.mode == "regress":
            cost: np.ndarray = np.exp(F @ self.coef_ + self.intercept_)
            return cost
        out_tok = (
            self.output_tokens
            if self.mode == "prior"
            else np.maximum(F @ self.coef_ + self.intercept_, 1.0)
        )
        priced: np.ndarray = (in_tok * self.input_price + out_tok * self.output_price) / 1e6
        return priced

    def get_state(self) -> CostState:
        """What this predictor learned."""
        if not hasattr(self, "coef_"):
            raise NotFittedError("This CostPredictor is not fitted yet; call fit first.")
        return CostState(
            self.mode,
            self.input_price,
            self.output_price,
            self.output_tokens,
            self.alpha,
            np.array(self.coef_, dtype=float),
            float(self.intercept_),
        )

    @classmethod
    def from_state(cls, state: CostState) -> CostPredictor:
        """The predictor :meth:`get_state` described."""
        pred = cls(
            state.mode,
            input_price=state.input_price,
            output_price=state.output_price,
            output_tokens=state.output_tokens,
            alpha=state.alpha,
        )
        pred.coef_, pred.intercept_ = state.coef.copy(), float(state.intercept)
        return pred


class PredictorBank:
    """All LLMs' predictors evaluated together (the routing hot path).

    Built from fitted per-LLM predictors; predictions equal theirs (tests check this).
    """

    def __init__(self, quality: list[QualityPredictor], cost: list[CostPredictor]) -> None:
        if len(quality) != len(cost):
            raise ConfigError("PredictorBank needs one quality and one cost predictor per LLM.")
        self.m = len(quality)
        self.quality = quality
        self.cost = cost
        self._compile()

    def _compile(self) -> None:
        # the predictors' own estimators: a logistic regression still held as arrays stays so
        ests = [p._estimator for p in self.quality]
        self._const = [i for i, e in enumerate(ests) if e is None]
        logit = [i for i, e in enumerate(ests) if _is_logistic(e)]
        self._linear = []
        if logit:  # every logistic model in one matrix product
            W = np.stack([np.ravel(ests[i].coef_) for i in logit], axis=1)
            b = np.array([np.ravel(ests[i].intercept_)[0] for i in logit])
            self._linear.append((np.array(logit), W.astype(np.float32), b))
        groups: dict[str, list[int]] = {}
        for i, p in enumerate(self.quality):
            if p.kind == "knn" and p.estimator_ is not None:
                groups.setdefault(p.train_fingerprint_ + str(p.estimator_.get_params()), []).append(
                    i
                )
        self._knn = []
        for idx in groups.values():
            est = self.quality[idx[0]].estimator_
            Y = np.stack([self.quality[i].estimator_._y for i in idx], axis=1).astype(float)
            X_fit = np.asarray(est._fit_X, dtype=np.float32)
            self._knn.append((np.array(idx), est, Y, X_fit, (X_fit * X_fit).sum(1)))
        fast = (
            set(self._const)
            | {i for g in self._linear for i in g[0]}
            | {i for g in self._knn for i in g[0]}
        )
        self._slow = [i for i in range(self.m) if i not in fast]
        # cost: every mode is linear in the cost features, so one matrix product serves all
        fitted = [c for c in self.cost if c.mode != "prior"]
        dim = fitted[0].coef_.shape[0] if fitted else 0
        self._cost_W = np.zeros((dim, self.m))
        self._cost_b = np.zeros(self.m)
        for i, c in enumerate(self.cost):
            if c.mode != "prior":
                self._cost_W[:, i] = c.coef_
                self._cost_b[i] = c.intercept_
        self._cost_mode = np.array([c.mode for c in self.cost])
        self._cost_prior = self._cost_mode == "prior"  # masks compared once, not per query
        self._cost_regress = self._cost_mode == "regress"
        self._price_in = np.array([c.input_price for c in self.cost])
        self._price_out = np.array([c.output_price for c in self.cost])
        self._prior_out = np.array([c.output_tokens for c in self.cost])

    def predict_quality(self, X: np.ndarray) -> np.ndarray:
        X = np.asarray(X, dtype=np.float32)
        Q = np.empty((X.shape[0], self.m))
        for i in self._const:
            Q[:, i] = self.quality[i].mean_
        for idx, W, b in self._linear:
            Q[:, idx] = 1.0 / (1.0 + np.exp(-(X @ W + b)))
        for idx, est, Y, X_fit, sq_fit in self._knn:
            # brute-force neighbours in numpy: one matrix product for all LLMs of the group
            # (sklearn's kneighbors costs ~0.5 ms of validation per call on one query)
            d2 = np.maximum((X * X).sum(1)[:, None] + sq_fit[None, :] - 2.0 * (X @ X_fit.T), 0.0)
            k = est.n_neighbors
            ind = (
                np.argpartition(d2, k - 1, axis=1)[:, :k]
                if k < d2.shape[1]
                else np.tile(np.arange(d2.shape[1]), (len(X), 1))
            )
            dist = np.sqrt(np.take_along_axis(d2, ind, axis=1))
            if est.weights == "distance":
                with np.errstate(divide="ignore"):
                    w = 1.0 / dist
                exact = ~np.isfinite(w)
                rows = exact.any(axis=1)
                w[rows] = exact[rows]
            else:
                w = np.ones_like(dist)
            w /= w.sum(axis=1, keepdims=True)
            Q[:, idx] = np.einsum("nk,nkm->nm", w, Y[ind])
        for i in self._slow:
            Q[:, i] = self.quality[i].predict(X)
        return Q

    def predict_cost(self, F: np.ndarray) -> np.ndarray:
        """Predicted USD cost, ``(n, m)``, from cost features ``F`` (see :func:`cost_features`)."""
        z = (
            F @ self._cost_W + self._cost_b
            if self._cost_W.shape[0]
            else np.zeros((F.shape[0], self.m))
        )
        in_tok = np.expm1(F[:, :1])
        out_tok = np.where(self._cost_prior, self._prior_out, np.maximum(z, 1.0))
        priced: np.ndarray = (in_tok * self._price_in + out_tok * self._price_out) / 1e6
        if not self._cost_regress.any():
            return priced
        with np.errstate(over="ignore"):
            regressed = np.exp(np.where(self._cost_regress, z, 0.0))
        return np.where(self._cost_regress, regressed, priced)
