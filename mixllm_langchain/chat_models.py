"""`MixLLMChat`: a LangChain chat model that routes every call to one of several child chat models.

Per call the :class:`~mixllm_core.MixLLMRouter` picks a child (predicted quality vs. cost vs.
latency), the :class:`~mixllm_core.Dispatcher` calls it (falling back to the next best child when
it raises) and tracks its latency, and the answer comes back with the child's ``model_name`` and
``usage_metadata`` plus ``response_metadata["mixllm"]``: the decision and why, the measured
latency and the cost (usage × the child's price). Children run with their callbacks isolated, so
a chain's handlers see one chat-model run and one token stream per call.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from langchain_core.callbacks import (
    AsyncCallbackManagerForLLMRun,
    BaseCallbackManager,
    CallbackManagerForLLMRun,
)
from langchain_core.language_models import BaseChatModel, LangSmithParams, LanguageModelInput
from langchain_core.language_models.chat_models import agenerate_from_stream, generate_from_stream
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.messages.ai import UsageMetadata, add_usage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable, RunnableBinding, RunnableConfig
from langchain_core.tools import BaseTool
from pydantic import Field, PrivateAttr, model_validator

from mixllm_core import (
    ConfigError,
    DecisionPolicy,
    Dispatcher,
    FeedbackError,
    FeedbackResult,
    LLMSpec,
    MixLLMRouter,
    RoutingDecision,
)
from mixllm_core.dispatch import Attempt, DispatchResult, price_call

from .callbacks import MixLLMFeedbackHandler, RunLedger

__all__ = ["MixLLMChat"]

_RUN_PREFIX = "lc_run--"


def _spec(name: str, price: Any) -> LLMSpec:
    """An :class:`LLMSpec` from ``(input $/Mtok, output $/Mtok)``, a dict of them, or a spec."""
    if isinstance(price, LLMSpec):
        if price.name != name:
            raise ConfigError(f"prices[{name!r}] is an LLMSpec named {price.name!r}; use {name!r}.")
        return price
    if isinstance(price, dict):
        return LLMSpec(name, **price)
    if isinstance(price, (tuple, list)) and len(price) == 2:
        return LLMSpec(name, input_price=price[0], output_price=price[1])
    raise ConfigError(
        f"prices[{name!r}] must be (input_price, output_price) in USD per million tokens, a dict "
        f"of LLMSpec fields or an LLMSpec; got {price!r}."
    )


def _query(messages: Sequence[BaseMessage]) -> str:
    """What the router embeds: the text of the conversation."""
    return "\n".join(t for t in (str(m.text) for m in messages) if t)


def _isolated() -> RunnableConfig:
    """Config of a child call: no callbacks, so the chain's handlers are not fired twice."""
    return {"callbacks": []}


def _unwrap(runnable: Runnable, kwargs: dict[str, Any]) -> tuple[Runnable, dict[str, Any]]:
    """Strip RunnableBindings (they re-read the chain's callbacks) and keep their kwargs."""
    while isinstance(runnable, RunnableBinding):
        kwargs = {**runnable.kwargs, **kwargs}
        runnable = runnable.bound
    return runnable, kwargs


@dataclass
class _Call:
    """One MixLLMChat call: the messages, the pin and what every child is called with."""

    messages: list[BaseMessage]
    stop: list[str] | None
    pin: str | None
    tools: list[Any] | None
    tool_choice: Any
    kwargs: dict[str, Any]
    route_kwargs: dict[str, Any]

    @property
    def query(self) -> str:
        return _query(self.messages)


class MixLLMChat(BaseChatModel):
    """Routes each call to the best of several chat models (MixLLM, Wang et al., NAACL 2025).

    Args:
        models: The children, ``{name: chat model}``. Names are the router's LLM names.
        router: A trained :class:`~mixllm_core.MixLLMRouter` whose LLMs are the children's names.
            None: a cold-start router (price-aware prior plus exploration) that learns from
            :meth:`feedback`.
        prices: For a cold-start router, ``{name: (input $/Mtok, output $/Mtok)}`` (or LLMSpec
            fields / an LLMSpec). Children without a price cost 0. Give a ``router`` or prices.
        lam: Quality weight λ of the decision (larger: quality first); None keeps the router's.
        alpha: Exploration bonus of a cold-start router.
        encoder: Query encoder of a cold-start router (default: ``StaticEncoder``, loaded at
            first use; its corpus part stays zero until a router is fitted on data).
        seed: Seed of a cold-start router.
        max_retries: Other children tried after a child fails (an exception or its timeout).
        failure_threshold: Consecutive failures that put a child on cooldown.
        cooldown_s: Seconds a failing child is not chosen (unless pinned).
        temperature, max_tokens, stop: Passed to whichever child answers.
        timeout: Accepted for the standard-parameter convention; MixLLMChat does not cut a child
            short. Give children their own timeouts: a child that times out is treated as failed.
        streaming: invoke() streams from the child and aggregates.

    Per call, ``model="<name>"`` pins a child. Every answer carries
    ``response_metadata["model_name"]`` (the child's), the child's ``usage_metadata`` and
    ``response_metadata["mixllm"]`` (decision id, chosen child, candidates, latency_s, cost,
    attempts).

    Example:
        >>> from mixllm_core.testing import HashingEncoder
        >>> from mixllm_langchain.testing import ScriptedChatModel
        >>> chat = MixLLMChat(
        ...     models={"small": ScriptedChatModel(model_name="small"),
        ...             "large": ScriptedChatModel(model_name="large")},
        ...     prices={"small": (0.1, 0.4), "large": (5.0, 15.0)},
        ...     lam=0.0, encoder=HashingEncoder())
        >>> reply = chat.invoke("Say hi")
        >>> reply.response_metadata["model_name"]
        'small'
        >>> [r.applied for r in chat.feedback(reply, thumbs=True)]
        [True]
    """

    models: dict[str, BaseChatModel]
    router: MixLLMRouter | None = None
    prices: dict[str, Any] | None = None
    lam: float | None = None
    alpha: float = 0.1
    encoder: Any = None
    seed: int = 0
    max_retries: int = 2
    failure_threshold: int = 3
    cooldown_s: float = 30.0
    temperature: float | None = None
    max_tokens: int | None = None
    stop: list[str] | None = None
    timeout: float | None = None
    streaming: bool = False
    ledger: RunLedger = Field(default_factory=RunLedger, exclude=True)

    _dispatcher: Dispatcher = PrivateAttr()
    _handler: MixLLMFeedbackHandler = PrivateAttr()

    # ------------------------------------------------------------------ construction
    @model_validator(mode="after")
    def _build(self) -> MixLLMChat:
        if not self.models:
            raise ConfigError("MixLLMChat needs at least one child: models={name: chat model}.")
        if self.router is None:
            self.router = self._cold_router()
        elif self.prices is not None:
            raise ConfigError("Give prices to a cold-start MixLLMChat or put them in the router's "
                              "LLMSpecs, not both.")
        missing = sorted(set(self.router.specs) - set(self.models))
        extra = sorted(set(self.models) - set(self.router.specs))
        if missing or extra:
            raise ConfigError(
                f"The router's LLMs {sorted(self.router.specs)} and the children "
                f"{sorted(self.models)} differ (no child for {missing}; not in the router: "
                f"{extra})."
            )
        if not isinstance(self.max_retries, int) or self.max_retries < 0:
            raise ConfigError(f"max_retries must be an int >= 0, got {self.max_retries!r}.")
        self._dispatcher = Dispatcher(self.router, max_attempts=self.max_retries + 1,
                                      failure_threshold=self.failure_threshold,
                                      cooldown_s=self.cooldown_s)
        self._handler = MixLLMFeedbackHandler(self)
        self.callbacks = self._with_handler(self.callbacks)
        return self

    def _cold_router(self) -> MixLLMRouter:
        prices = self.prices or {}
        unknown = sorted(set(prices) - set(self.models))
        if unknown:
            raise ConfigError(f"prices name {unknown}, which are not children; the children are "
                              f"{sorted(self.models)}.")
        specs = [_spec(n, prices[n]) if n in prices else LLMSpec(n) for n in self.models]
        policy = DecisionPolicy(lam=1.0 if self.lam is None else self.lam, alpha=self.alpha)
        return MixLLMRouter(specs, encoder=self.encoder, policy=policy, seed=self.seed)

    def _with_handler(self, callbacks: Any) -> Any:
        if callbacks is None:
            return [self._handler]
        if isinstance(callbacks, BaseCallbackManager):
            manager = callbacks.copy()
            manager.add_handler(self._handler, inherit=False)
            return manager
        return [*callbacks, self._handler]

    @property
    def dispatcher(self) -> Dispatcher:
        """The :class:`~mixllm_core.Dispatcher` (fallback state, cooldowns)."""
        return self._dispatcher

    @property
    def _llm_type(self) -> str:
        return "mixllm"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"children": list(self.models), "lam": self.lam, "max_retries": self.max_retries}

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> LangSmithParams:
        model = kwargs.get("model")
        params = LangSmithParams(ls_provider="mixllm", ls_model_type="chat",
                                 ls_model_name=model if isinstance(model, str) else "mixllm")
        temperature = kwargs.get("temperature", self.temperature)
        if isinstance(temperature, (int, float)):
            params["ls_temperature"] = temperature
        max_tokens = kwargs.get("max_tokens", self.max_tokens)
        if isinstance(max_tokens, int):
            params["ls_max_tokens"] = max_tokens
        if stop or self.stop:
            params["ls_stop"] = stop or self.stop
        return params

    def bind_tools(
        self,
        tools: Sequence[dict[str, Any] | type | Callable[..., Any] | BaseTool],
        *,
        tool_choice: str | dict[str, Any] | bool | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        """Bind tools; they are handed as given to whichever child answers (it converts them)."""
        if tool_choice is not None:
            kwargs["tool_choice"] = tool_choice
        return self.bind(tools=list(tools), **kwargs)

    # ------------------------------------------------------------------ shared helpers
    def _plan(self, messages: list[BaseMessage], stop: list[str] | None,
              kwargs: dict[str, Any]) -> _Call:
        kwargs = dict(kwargs)
        pin = kwargs.pop("model", None)
        tools = kwargs.pop("tools", None)
        tool_choice = kwargs.pop("tool_choice", None)
        for name in ("temperature", "max_tokens"):
            if getattr(self, name) is not None:
                kwargs.setdefault(name, getattr(self, name))
        route_kwargs = {} if self.lam is None else {"lam": self.lam}
        return _Call(messages, stop if stop is not None else self.stop, pin, tools, tool_choice,
                     kwargs, route_kwargs)

    def _router(self) -> MixLLMRouter:
        if self.router is None:  # set by the validator; only a bypassed __init__ gets here
            raise ConfigError("MixLLMChat has no router; construct it with MixLLMChat(...).")
        return self.router

    def _child(self, decision: RoutingDecision, call: _Call) -> tuple[Runnable, dict[str, Any]]:
        name = decision.llm
        runnable: Runnable = self.models[name]
        if call.tools is not None:
            extra = {} if call.tool_choice is None else {"tool_choice": call.tool_choice}
            runnable = self.models[name].bind_tools(call.tools, **extra)
        runnable, kwargs = _unwrap(runnable, dict(call.kwargs))
        return runnable, {"stop": call.stop, **kwargs}

    def _metadata(self, decision: RoutingDecision, call: _Call, usage: UsageMetadata | None,
                  text: str, latency: float, attempts: list[Attempt]) -> dict[str, Any]:
        reported = None if usage is None else (usage["input_tokens"], usage["output_tokens"])
        priced = price_call(self._router(), decision.llm, call.query, text, reported)
        return {
            **decision.to_dict(),
            "latency_s": latency,
            "cost": priced.cost,
            "input_tokens": priced.input_tokens,
            "output_tokens": priced.output_tokens,
            "usage_estimated": priced.estimated,
            "attempts": [{"llm": a.llm, "decision_id": a.decision_id, "latency_s": a.latency_s,
                          "error": a.error} for a in attempts],
        }

    def _child_model_name(self, name: str, reported: Any) -> str:
        if isinstance(reported, str) and reported:
            return reported
        child = self.models[name]
        for attr in ("model_name", "model"):
            value = getattr(child, attr, None)
            if isinstance(value, str) and value:
                return value
        return name

    def _result(self, call: _Call, done: DispatchResult) -> ChatResult:
        message: BaseMessage = done.value
        usage = getattr(message, "usage_metadata", None)
        meta = dict(message.response_metadata)
        meta["model_name"] = self._child_model_name(done.decision.llm, meta.get("model_name"))
        meta["mixllm"] = self._metadata(done.decision, call, usage, str(message.text),
                                        done.latency_s, done.attempts)
        routed = message.model_copy(update={"id": None, "response_metadata": meta})
        return ChatResult(generations=[ChatGeneration(message=routed)])

    # ------------------------------------------------------------------ invoke
    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                  run_manager: CallbackManagerForLLMRun | None = None,
                  **kwargs: Any) -> ChatResult:
        if self.streaming:
            return generate_from_stream(self._stream(messages, stop, **kwargs))
        call = self._plan(messages, stop, kwargs)

        def invoke(name: str, decision: RoutingDecision) -> BaseMessage:
            runnable, kw = self._child(decision, call)
            return runnable.invoke(call.messages, config=_isolated(), **kw)

        done = self._dispatcher.call(call.query, invoke, pin=call.pin, **call.route_kwargs)
        return self._result(call, done)

    async def _agenerate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                         run_manager: AsyncCallbackManagerForLLMRun | None = None,
                         **kwargs: Any) -> ChatResult:
        if self.streaming:
            return await agenerate_from_stream(self._astream(messages, stop, **kwargs))
        call = self._plan(messages, stop, kwargs)

        async def invoke(name: str, decision: RoutingDecision) -> BaseMessage:
            runnable, kw = self._child(decision, call)
            return await runnable.ainvoke(call.messages, config=_isolated(), **kw)

        done = await self._dispatcher.acall(call.query, invoke, pin=call.pin, **call.route_kwargs)
        return self._result(call, done)

    # ------------------------------------------------------------------ stream
    def _stream(self, messages: list[BaseMessage], stop: list[str] | None = None,
                run_manager: CallbackManagerForLLMRun | None = None,
                **kwargs: Any) -> Iterator[ChatGenerationChunk]:
        relay = _Relay(self, self._plan(messages, stop, kwargs))

        def open_stream(name: str, decision: RoutingDecision) -> Iterator[BaseMessage]:
            runnable, kw = self._child(decision, relay.call)
            return runnable.stream(relay.call.messages, config=_isolated(), **kw)

        call = relay.call
        for decision, chunk in self._dispatcher.stream(call.query, open_stream, pin=call.pin,
                                                       on_done=relay.finished, **call.route_kwargs):
            yield relay.forward(decision, chunk)
        yield relay.last()

    async def _astream(self, messages: list[BaseMessage], stop: list[str] | None = None,
                       run_manager: AsyncCallbackManagerForLLMRun | None = None,
                       **kwargs: Any) -> AsyncIterator[ChatGenerationChunk]:
        relay = _Relay(self, self._plan(messages, stop, kwargs))

        def open_stream(name: str, decision: RoutingDecision) -> AsyncIterator[BaseMessage]:
            runnable, kw = self._child(decision, relay.call)
            return runnable.astream(relay.call.messages, config=_isolated(), **kw)

        call = relay.call
        async for decision, chunk in self._dispatcher.astream(call.query, open_stream, pin=call.pin,
                                                              on_done=relay.finished,
                                                              **call.route_kwargs):
            yield relay.forward(decision, chunk)
        yield relay.last()

    # ------------------------------------------------------------------ feedback
    def decision_ids(self, target: BaseMessage | UUID | str) -> list[str]:
        """The decision ids behind an answer, a run id or a decision id (see :meth:`feedback`)."""
        if isinstance(target, BaseMessage):
            meta = target.response_metadata.get("mixllm")
            if isinstance(meta, dict) and "decision_id" in meta:
                return [meta["decision_id"]]
            if isinstance(target.id, str) and target.id.startswith(_RUN_PREFIX):
                run = target.id[len(_RUN_PREFIX):][:36]
                ids = self._handler.decisions(run)
                if ids:
                    return ids
            raise FeedbackError(
                f"Message {target.id!r} carries no response_metadata['mixllm'] and no known run "
                "id: it was not produced by this MixLLMChat."
            )
        if isinstance(target, UUID):
            return self._handler.decisions(target)
        if isinstance(target, str):
            try:
                ids = self.ledger.decisions(UUID(target))
            except ValueError:
                ids = []
            return ids or [target]
        raise FeedbackError(
            f"feedback() takes the returned message, a decision id (str) or a run id (UUID or "
            f"str); got {type(target).__name__}."
        )

    def feedback(self, target: BaseMessage | UUID | str, *, score: float | None = None,
                 thumbs: bool | None = None) -> list[FeedbackResult]:
        """Tell the router how good an answer was, after the fact.

        Args:
            target: The message a call returned (invoke, or a stream's aggregated chunks), a
                decision id (``response_metadata["mixllm"]["decision_id"]``), or the LangChain
                run id of a call (or of a chain run, when a :class:`MixLLMFeedbackHandler` on
                this chat was in the chain's callbacks).
            score: A refined quality score in [0, 1], or
            thumbs: True (good) / False (bad). Give exactly one.

        Returns:
            One :class:`~mixllm_core.FeedbackResult` per routing decision reached.

        Raises:
            FeedbackError: unknown target, feedback already given, or a bad score.
        """
        if isinstance(target, UUID) and not self._handler.decisions(target):
            raise FeedbackError(f"No routed call of this MixLLMChat is known under run id "
                                f"{str(target)!r}.")
        return [self._router().feedback(d, score=score, thumbs=thumbs)
                for d in self.decision_ids(target)]


class _Relay:
    """Passes a child's chunks on, then adds the one chunk with model name and routing info."""

    def __init__(self, chat: MixLLMChat, call: _Call) -> None:
        self.chat = chat
        self.call = call
        self.usage: UsageMetadata | None = None
        self.text: list[str] = []
        self.child_meta: dict[str, Any] = {}
        self.done: DispatchResult | None = None

    def finished(self, done: DispatchResult) -> None:
        self.done = done

    def forward(self, decision: RoutingDecision, chunk: BaseMessage) -> ChatGenerationChunk:
        meta = dict(chunk.response_metadata)
        if "model_name" in meta:  # merged by concatenation: keep it for the last chunk only
            self.child_meta["model_name"] = meta.pop("model_name")
        usage = getattr(chunk, "usage_metadata", None)
        if usage:
            self.usage = add_usage(self.usage, usage)
        self.text.append(str(chunk.text))
        update: dict[str, Any] = {"id": None, "response_metadata": meta}
        if isinstance(chunk, AIMessageChunk):
            update["chunk_position"] = None
            out = chunk.model_copy(update=update)
        else:
            out = AIMessageChunk(content=chunk.content, response_metadata=meta)
        return ChatGenerationChunk(message=out)

    def last(self) -> ChatGenerationChunk:
        if self.done is None:  # the Dispatcher calls finished() before its stream ends
            raise RuntimeError("The child stream ended without a dispatch result.")
        decision, latency, attempts = self.done.decision, self.done.latency_s, self.done.attempts
        meta = {
            "model_name": self.chat._child_model_name(decision.llm,
                                                      self.child_meta.get("model_name")),
            "mixllm": self.chat._metadata(decision, self.call, self.usage, "".join(self.text),
                                          latency, attempts),
        }
        return ChatGenerationChunk(message=AIMessageChunk(content="", response_metadata=meta,
                                                          chunk_position="last"))
