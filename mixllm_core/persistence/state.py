"""`RouterState`: everything a :class:`~mixllm_core.MixLLMRouter` learned, as one frozen value.

``router.get_state()`` gives it and ``MixLLMRouter.from_state(state, encoder=...)`` rebuilds a
router from it, as scikit-learn's ``get_params`` / ``set_params`` and torch's ``state_dict`` do.
:mod:`mixllm_core.persistence` writes and reads it (``router.save`` / ``MixLLMRouter.load``) and
knows nothing else about the router.

Each part validates itself on construction (types, shapes, finite values, dimensions that agree
across LLMs), so a state read from disk is checked before a router is built from it. Arrays are
shared with the router, read-only where the router could otherwise change them later.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..decision import DecisionPolicy
from ..encoders import QueryEncoder
from ..errors import ConfigError
from ..memory import OutcomeMemory, check_memory_prior
from ..online import HeadsState
from ..predictors import CostState, QualityPredictor, QualityState
from ..spec import LLMSpec

__all__ = ["STATE_VERSION", "LLMState", "RouterState"]

#: Version of :class:`RouterState` and of the directory format that stores it.
STATE_VERSION = 2


def _check_training(name: str, train: tuple[np.ndarray, np.ndarray]) -> None:
    if not isinstance(train, tuple) or len(train) != 2:
        raise ConfigError(f"The training set of {name!r} must be a tuple (X, y), got {train!r}.")
    X, y = (np.asarray(a) for a in train)
    if X.dtype.kind != "f" or y.dtype.kind != "f" or X.ndim != 2 or y.shape != (X.shape[0],):
        raise ConfigError(
            f"The training set of {name!r} must be float arrays X (n, d) and y (n,); got "
            f"{X.dtype} {X.shape} and {y.dtype} {y.shape}."
        )
    if not (np.isfinite(X).all() and np.isfinite(y).all()):
        raise ConfigError(f"The training set of {name!r} holds NaN or infinite values.")


@dataclass(frozen=True, eq=False)  # holds arrays: compared by identity
class LLMState:
    """One LLM of the pool: its spec, its two predictors and its offline training set.

    ``train`` is ``(X, y)``: the representations the quality predictor was fit on and the
    observed qualities (``refit`` adds feedback to them); LLMs of one ``fit`` share ``X``.
    """

    spec: LLMSpec
    quality: QualityState
    cost: CostState
    train: tuple[np.ndarray, np.ndarray] | None = None

    def __post_init__(self) -> None:
        for name, value, kind in (
            ("spec", self.spec, LLMSpec),
            ("quality", self.quality, QualityState),
            ("cost", self.cost, CostState),
        ):
            if not isinstance(value, kind):
                raise ConfigError(f"LLMState.{name} must be a {kind.__name__}, got {value!r}.")
        if self.train is not None:
            _check_training(self.spec.name, self.train)

    @property
    def name(self) -> str:
        return self.spec.name


def _dims(llms: tuple[LLMState, ...], heads: HeadsState | None) -> dict[str, set[int]]:
    """Representation sizes each part was fit on (cost features have one more column)."""
    dims: dict[str, set[int]] = {}
    for llm in llms:
        if llm.quality.estimator is not None or llm.quality.n_features:
            dims.setdefault(f"{llm.name} quality", set()).add(llm.quality.n_features)
        if llm.cost.n_features:
            dims.setdefault(f"{llm.name} cost", set()).add(llm.cost.n_features - 1)
        if llm.train is not None:
            dims.setdefault(f"{llm.name} training set", set()).add(llm.train[0].shape[1])
    if heads is not None:
        dims["online heads"] = {heads.dim}
    return dims


@dataclass(frozen=True, eq=False)  # holds arrays: compared by identity
class RouterState:
    """Everything a router learned; ``router.get_state()`` gives it, ``from_state`` takes it.

    Args:
        llms: The pool, in order, with each LLM's predictors.
        policy: The decision rule.
        encoder_config: ``encoder.get_config()``; rebuilds the encoder with
            :func:`~mixllm_core.encoders.encoder_from_config`.
        quality_model, quality_params, seed, online_ridge: The router's constructor arguments.
        heads: The online heads (one per LLM, in pool order), or None before any was needed.
        c_ref: The reference cost learned by ``fit`` (None: derived from the pool's prices).
        feedback_seq: The last log sequence number the heads include (``replay_log`` resumes
            after it).
        encoder: The encoder object itself, with its learned state (None when the state was
            read without rebuilding it; pass ``encoder=`` to ``from_state`` then).
        extra: JSON-serialisable state of subclasses.
        version: :data:`STATE_VERSION`.
        use_memory, memory_prior: The router's ``memory`` and ``memory_prior`` arguments.
        memory: The observed outcomes per query and LLM (None: none, or memory off).

    Example:
        >>> from mixllm_core import MixLLMRouter
        >>> from mixllm_core.testing import HashingEncoder
        >>> state = MixLLMRouter(["a", "b"], encoder=HashingEncoder()).get_state()
        >>> [llm.name for llm in state.llms], state.encoder_config["type"]
        (['a', 'b'], 'hashing')
        >>> MixLLMRouter.from_state(state).llms
        ['a', 'b']
    """

    llms: tuple[LLMState, ...]
    policy: DecisionPolicy
    encoder_config: Mapping[str, Any]
    quality_model: str
    quality_params: Mapping[str, Any]
    seed: int
    online_ridge: float | None
    heads: HeadsState | None
    c_ref: float | None
    feedback_seq: int
    encoder: QueryEncoder | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)
    version: int = STATE_VERSION
    use_memory: bool = True
    memory_prior: float = 1.0
    memory: OutcomeMemory | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "llms", tuple(self.llms))
        if not all(isinstance(llm, LLMState) for llm in self.llms):
            raise ConfigError("RouterState.llms must hold LLMState objects.")
        names = [llm.name for llm in self.llms]
        if len(set(names)) != len(names):
            raise ConfigError(f"RouterState.llms names an LLM twice: {names}.")
        if not isinstance(self.policy, DecisionPolicy):
            raise ConfigError(f"RouterState.policy must be a DecisionPolicy, got {self.policy!r}.")
        config = self.encoder_config
        if not isinstance(config, Mapping) or not isinstance(config.get("type"), str):
            raise ConfigError(
                f"RouterState.encoder_config must be a mapping with a 'type', got {config!r}."
            )
        if not isinstance(self.quality_params, Mapping) or not isinstance(self.extra, Mapping):
            raise ConfigError("RouterState.quality_params and .extra must be mappings.")
        QualityPredictor(self.quality_model, **self.quality_params)  # kind and parameter names
        self._check_numbers()
        if self.heads is not None:
            if not isinstance(self.heads, HeadsState):
                raise ConfigError(f"RouterState.heads must be a HeadsState, got {self.heads!r}.")
            if list(self.heads.names) != names:
                raise ConfigError(
                    f"The online heads are for {list(self.heads.names)}; the pool is {names}."
                )
        self._check_memory(names)
        dims = _dims(self.llms, self.heads)
        if len(set().union(*dims.values())) > 1:
            raise ConfigError(
                f"The parts of the state disagree on the representation size: {dims}."
            )
        if self.version != STATE_VERSION:
            raise ConfigError(
                f"RouterState version {self.version!r} is not supported; this mixllm reads "
                f"version {STATE_VERSION}."
            )

    @property
    def representation_dim(self) -> int | None:
        """Size of the query representation the predictors and heads were fit on (None when
        nothing was fit yet); the encoder must produce vectors of this size."""
        dims = set().union(*_dims(self.llms, self.heads).values())
        return next(iter(dims)) if dims else None

    def _check_memory(self, names: list[str]) -> None:
        if not isinstance(self.use_memory, bool):
            raise ConfigError(f"RouterState.use_memory must be a bool, got {self.use_memory!r}.")
        check_memory_prior(self.memory_prior)
        memory = self.memory
        if memory is None:
            return
        if not isinstance(memory, OutcomeMemory):
            raise ConfigError(f"RouterState.memory must be an OutcomeMemory, got {memory!r}.")
        if not set(memory.llms) <= set(names):
            raise ConfigError(
                f"The memory has columns for {list(memory.llms)}; the pool is {names}."
            )

    def _check_numbers(self) -> None:
        for name in ("seed", "feedback_seq"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise ConfigError(f"RouterState.{name} must be an int, got {value!r}.")
        if self.feedback_seq < 0:
            raise ConfigError(f"RouterState.feedback_seq must be >= 0, got {self.feedback_seq}.")
        for name, low_ok in (("online_ridge", False), ("c_ref", True)):
            value = getattr(self, name)
            if value is None:
                continue
            ok = isinstance(value, (int, float)) and not isinstance(value, bool)
            try:
                ok = ok and math.isfinite(value) and (value > 0 or (low_ok and value == 0))
            except OverflowError:  # an int too large for a float
                ok = False
            if not ok:
                raise ConfigError(
                    f"RouterState.{name} must be None or a finite number "
                    f"{'>= 0' if low_ok else '> 0'}, got {value!r}."
                )
