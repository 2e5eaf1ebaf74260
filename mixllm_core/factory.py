"""The router behind an integration: a cold-start one built from prices, or one given, checked.

Both integrations (:class:`~mixllm_langchain.MixLLMChat`, :class:`~mixllm_llamaindex.MixLLM`)
take their children by name and either a trained router or prices. This module is the one place
that turns those arguments into a :class:`~mixllm_core.MixLLMRouter`:

- :func:`spec_from_price` — the one price parser: ``(input $/Mtok, output $/Mtok)``, a dict of
  :class:`LLMSpec` fields, or an :class:`LLMSpec`.
- :func:`build_router` — the cold-start router: a price-aware prior quality per LLM, an
  exploration bonus (``alpha``, :data:`DEFAULT_ALPHA` unless given) and online heads that learn
  from feedback. An LLM named ``"provider:model"`` without a given price is priced from the
  price table (:mod:`mixllm_core.prices`).
- :func:`named_children` — the adapters' children by name, those given as ``"provider:model"``
  strings built by the adapter's framework.
- :func:`router_for` — the adapters' entry: checks a given router against the children, or
  builds a cold-start one (warning, :class:`~mixllm_core.errors.UnpricedLLMWarning`, when some
  children have no price); :func:`policy_override` turns per-adapter ``lam``/``alpha`` into the
  routing argument that applies them without touching a router others may share.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any, TypeVar

from .decision import DecisionPolicy
from .encoders import QueryEncoder
from .errors import ConfigError, UnpricedLLMWarning
from .log import RoutingLog
from .prices import is_model_ref, spec_of
from .router import MixLLMRouter
from .spec import LLMSpec

__all__ = [
    "DEFAULT_ALPHA",
    "DEFAULT_LAM",
    "build_router",
    "named_children",
    "policy_override",
    "router_for",
    "spec_from_price",
]

#: λ of a cold-start router when none is given (quality and normalised cost weigh the same).
DEFAULT_LAM = 1.0
#: Exploration weight of a cold-start router when none is given: it learns only from feedback,
#: so it must try the children it knows least about.
DEFAULT_ALPHA = 0.1

Price = tuple[float, float] | Sequence[float] | Mapping[str, Any] | LLMSpec
Child = TypeVar("Child")


def spec_from_price(name: str, price: Price) -> LLMSpec:
    """The :class:`LLMSpec` of LLM ``name`` from its price.

    Args:
        name: The LLM's (child's) name.
        price: ``(input, output)`` USD per million tokens, a dict of :class:`LLMSpec` fields
            (without ``name``), or an :class:`LLMSpec` named ``name``.

    Raises:
        ConfigError: any other value, a spec with another name, or an invalid price.

    Example:
        >>> spec_from_price("small", (0.15, 0.6))
        LLMSpec(name='small', input_price=0.15, output_price=0.6, context_window=None, max_concurrency=None, tokens_per_second=None)
        >>> spec_from_price("small", {"input_price": 0.15, "context_window": 8192}).context_window
        8192
    """
    if isinstance(price, LLMSpec):
        if price.name != name:
            raise ConfigError(
                f"prices[{name!r}] is an LLMSpec named {price.name!r}; name it {name!r}."
            )
        return price
    if isinstance(price, Mapping):
        if "name" in price and price["name"] != name:
            raise ConfigError(f"prices[{name!r}] names another LLM: {price['name']!r}.")
        return LLMSpec.from_dict({**price, "name": name})
    if isinstance(price, Sequence) and not isinstance(price, str) and len(price) == 2:
        return LLMSpec(name, input_price=price[0], output_price=price[1])
    raise ConfigError(
        f"prices[{name!r}] must be (input_price, output_price) in USD per million tokens, a dict "
        f"of LLMSpec fields or an LLMSpec; got {price!r}."
    )


def _names(models: Iterable[str] | Mapping[str, Any]) -> list[str]:
    names = list(models)
    bad = [n for n in names if not isinstance(n, str) or not n]
    if not names or bad:
        raise ConfigError(
            f"A router needs at least one LLM, each named by a non-empty string; got {names!r}."
        )
    return names


def _spec(name: str, prices: Mapping[str, Price]) -> LLMSpec:
    if name in prices:
        return spec_from_price(name, prices[name])
    return spec_of(name) if is_model_ref(name) else LLMSpec(name)


def _warn_unpriced(names: Sequence[str], prices: Mapping[str, Price] | None) -> None:
    unpriced = [n for n in names if n not in (prices or {}) and not is_model_ref(n)]
    if not unpriced or len(names) == 1:  # one LLM: no choice for a price to sway
        return
    what = (
        "No LLM of the pool has a price, so every candidate costs 0 and the choice is a coin "
        "flip until feedback arrives"
        if len(unpriced) == len(names)
        else f"{unpriced} have no price, so they are routed as if free (the cheapest)"
    )
    warnings.warn(
        f"{what}. Pass prices={{name: (input, output)}} in USD per million tokens ((0, 0) for a "
        "free LLM), name the LLMs 'provider:model' (e.g. 'openai:gpt-4o-mini') to use their list "
        "prices, or give a trained router=.",
        UnpricedLLMWarning,
        stacklevel=4,
    )


def build_router(
    models: Sequence[str] | Mapping[str, Any],
    *,
    prices: Mapping[str, Price] | None = None,
    lam: float | None = None,
    alpha: float | None = None,
    encoder: QueryEncoder | None = None,
    seed: int = 0,
    **router_kwargs: Any,
) -> MixLLMRouter:
    """A cold-start router over ``models``: no training data, learning from feedback.

    Args:
        models: The LLM names, or a mapping whose keys are the names (the children).
        prices: Per name, a price :func:`spec_from_price` reads. An LLM without one and named
            ``"provider:model"`` gets its list price (:func:`mixllm_core.prices.spec_of`); any
            other costs 0.
        lam: Quality weight λ (larger: quality first); None: :data:`DEFAULT_LAM`.
        alpha: Exploration weight; None: :data:`DEFAULT_ALPHA`.
        encoder: Query encoder; None: :class:`~mixllm_core.StaticEncoder`, loaded at first use
            (its corpus part stays zero until the router is fitted on data).
        seed: Seed of tie-breaking and the estimators.
        **router_kwargs: Passed on to :class:`~mixllm_core.MixLLMRouter` (``log``, ``tracker``...).

    Raises:
        ConfigError: no model, a price for a name that is not a model, a bad price, or a
            ``"provider:model"`` name without a price whose list price is unknown.

    Example:
        >>> from mixllm_core.testing import HashingEncoder
        >>> router = build_router(["small", "large"], prices={"small": (0.15, 0.6),
        ...                       "large": (2.5, 10.0)}, lam=0.5, encoder=HashingEncoder())
        >>> router.route("Say hi").llm, router.policy.alpha
        ('small', 0.1)
    """
    names = _names(models)
    prices = dict(prices or {})
    unknown = sorted(set(prices) - set(names))
    if unknown:
        raise ConfigError(
            f"prices name {unknown}, which are not children; the children are {sorted(names)}."
        )
    specs = [_spec(n, prices) for n in names]
    policy = DecisionPolicy(
        lam=DEFAULT_LAM if lam is None else lam, alpha=DEFAULT_ALPHA if alpha is None else alpha
    )
    return MixLLMRouter(specs, encoder=encoder, policy=policy, seed=seed, **router_kwargs)


def named_children(
    models: Sequence[str] | Mapping[str, Child | str],
    build: Callable[[str], Child],
    *,
    prices: Mapping[str, Price] | None = None,
    priced: bool = True,
) -> tuple[dict[str, Child], dict[str, Price] | None]:
    """The children by name, and their prices, from what a user handed an integration.

    Args:
        models: ``{name: child}``; a child may be a ``"provider:model"`` string, built with
            ``build``. Or a list of such strings, each its own name.
        build: The integration's constructor of a child from a ``"provider:model"`` string.
        prices: The prices given, if any.
        priced: Whether the prices matter (False with a trained router: its specs price the
            calls). A child named otherwise but given as a ``"provider:model"`` string
            (``{"fast": "openai:gpt-4o-mini"}``) gets that model's list price unless one is
            given; children named ``"provider:model"`` are priced by :func:`build_router`.

    Returns:
        ``(children, prices)``; ``prices`` is None when none were given nor looked up.

    Raises:
        ConfigError: a list holding anything but strings, a name given twice, a single string,
            or a string child whose list price is unknown.

    Example:
        >>> children, prices = named_children({"fast": "openai:gpt-4o-mini"}, str.upper)
        >>> children, prices["fast"].input_price
        ({'fast': 'OPENAI:GPT-4O-MINI'}, 0.15)
    """
    if isinstance(models, str) or not isinstance(models, (Mapping, Sequence)):
        raise ConfigError(
            f"models must be {{name: model}} or a list of 'provider:model' strings, got {models!r}."
        )
    if not isinstance(models, Mapping):
        bad = [m for m in models if not isinstance(m, str)]
        twice = sorted({m for m in models if isinstance(m, str) and list(models).count(m) > 1})
        if bad or twice:
            raise ConfigError(
                "A list of models must hold 'provider:model' strings, each once (use "
                f"{{name: model}} for model objects); got {list(models)!r}."
            )
        models = {m: m for m in models}
    children: dict[str, Child] = {}
    found = dict(prices) if prices is not None else {}
    for name, child in models.items():
        if not isinstance(child, str):
            children[name] = child
            continue
        if priced and name != child and name not in found:
            found[name] = spec_of(child, name=name)
        children[name] = build(child)
    return children, found if (prices is not None or found) else None


def router_for(
    models: Mapping[str, Any],
    *,
    router: MixLLMRouter | None = None,
    prices: Mapping[str, Price] | None = None,
    lam: float | None = None,
    alpha: float | None = None,
    encoder: QueryEncoder | None = None,
    seed: int = 0,
    log: RoutingLog | str | None = None,
    sync_interval_s: float | None = 1.0,
) -> MixLLMRouter:
    """The router of an integration over the children ``models``.

    With ``router``, checks that its pool is exactly the children and returns it (``prices``,
    ``encoder`` and ``log`` configure a cold-start router only, so giving them too is an error);
    without, :func:`build_router` (``log`` and ``sync_interval_s`` as in
    :class:`~mixllm_core.MixLLMRouter`: a database URL shares the log with other processes).

    Warns:
        UnpricedLLMWarning: without ``router``, some of two or more children have no price
            (given or looked up).

    Raises:
        ConfigError: the router's pool and the children differ, or arguments conflict.
    """
    if router is None:
        built = build_router(
            models,
            prices=prices,
            lam=lam,
            alpha=alpha,
            encoder=encoder,
            seed=seed,
            log=log,
            sync_interval_s=sync_interval_s,
        )
        _warn_unpriced(list(models), prices)
        return built
    given = [
        n for n, v in (("prices", prices), ("encoder", encoder), ("log", log)) if v is not None
    ]
    if given:
        raise ConfigError(
            f"{' and '.join(given)} configure a cold-start router; with router= given, put them "
            "in that router (its LLMSpecs, its encoder) instead."
        )
    names = _names(models)
    missing = sorted(set(router.specs) - set(names))
    extra = sorted(set(names) - set(router.specs))
    if missing or extra:
        raise ConfigError(
            f"The router's LLMs {sorted(router.specs)} must be the children {sorted(names)} "
            f"(no child for {missing}; not in the router: {extra})."
        )
    return router


def policy_override(
    router: MixLLMRouter, *, lam: float | None = None, alpha: float | None = None
) -> dict[str, DecisionPolicy]:
    """Routing arguments that apply ``lam``/``alpha`` on top of ``router``'s policy per call.

    Empty when both are None (the router's policy as it is). The router itself is not changed,
    so several integrations can share one router with different trade-offs.

    Example:
        >>> from mixllm_core.testing import HashingEncoder
        >>> router = build_router(["a", "b"], encoder=HashingEncoder())
        >>> policy_override(router, lam=3.0)["policy"].lam, policy_override(router)
        (3.0, {})
    """
    overrides: dict[str, Any] = {k: v for k, v in (("lam", lam), ("alpha", alpha)) if v is not None}
    return {"policy": replace(router.policy, **overrides)} if overrides else {}
