"""`MixLLM`: a LlamaIndex LLM that routes every call to one of several child LLMs.

Each call (chat, complete, their streaming and async forms, tool calls) is routed by a
:class:`~mixllm_core.MixLLMRouter` and dispatched through the core
:class:`~mixllm_core.Dispatcher`, which tracks latency and falls back to the next-best child when
one fails. The eight public methods are one-line shells over four helpers (sync / async × whole /
stream); the child method called is the one LlamaIndex called on the adapter, so completion-style
children keep their own prompt formatting.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field, replace
from typing import Any

from llama_index.core.base.llms.types import (
    ChatMessage,
    ChatResponse,
    ChatResponseAsyncGen,
    ChatResponseGen,
    CompletionResponse,
    CompletionResponseAsyncGen,
    CompletionResponseGen,
    LLMMetadata,
    MessageRole,
)
from llama_index.core.bridge.pydantic import Field, PrivateAttr
from llama_index.core.callbacks import CallbackManager
from llama_index.core.llms.callbacks import llm_chat_callback, llm_completion_callback
from llama_index.core.llms.function_calling import FunctionCallingLLM
from llama_index.core.llms.llm import LLM, ToolSelection

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
from mixllm_core.dispatch import price_call
from mixllm_core.errors import UnknownLLMError
from mixllm_core.text import query_text

from .collect import AnswerDecisions, collecting, notify
from .events import RoutingDecisionEvent, dispatcher

__all__ = ["MixLLM"]

_TOOLS_KEY = "mixllm_tools"
_Response = ChatResponse | CompletionResponse
_TOKEN_KEYS = (("prompt_tokens", "completion_tokens"), ("input_tokens", "output_tokens"))


# ---------------------------------------------------------------------- private helpers
@dataclass(frozen=True)
class _ToolRequest:
    """Tools handed to ``chat_with_tools``, kept raw until the chosen child converts them."""

    tools: tuple[Any, ...]
    options: dict[str, Any]


@dataclass
class _Call:
    """One routed call: the child method, its first argument and kwargs, and what was tried."""

    method: str
    arg: Any
    kwargs: dict[str, Any]
    tools: _ToolRequest | None = None
    pin: str | None = None
    tried: list[str] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)


def _specs_from_prices(names: Sequence[str], prices: Mapping[str, Any] | None) -> list[LLMSpec]:
    prices = dict(prices or {})
    unknown = sorted(set(prices) - set(names))
    if unknown:
        raise ConfigError(
            f"prices names LLMs {unknown} that are not children; children are {sorted(names)}."
        )
    specs = []
    for name in names:
        price = prices.get(name, (0.0, 0.0))
        if isinstance(price, LLMSpec):
            specs.append(replace(price, name=name))
        elif isinstance(price, Mapping):
            specs.append(LLMSpec(name, **dict(price)))
        elif isinstance(price, Sequence) and len(price) == 2:
            specs.append(LLMSpec(name, input_price=price[0], output_price=price[1]))
        else:
            raise ConfigError(
                f"prices[{name!r}] must be (input_price, output_price) in USD per "
                f"million tokens, a dict of LLMSpec fields or an LLMSpec; got {price!r}."
            )
    return specs


def _usage(response: _Response) -> tuple[int, int] | None:
    """Input and output tokens the child reported, looked up where LlamaIndex LLMs put them."""
    sources: list[Any] = [response.additional_kwargs or {}]
    raw = response.raw
    usage = raw.get("usage") if isinstance(raw, Mapping) else getattr(raw, "usage", None)
    if usage is not None:
        sources.append(usage)
    for source in sources:
        for in_key, out_key in _TOKEN_KEYS:
            get = (
                source.get
                if isinstance(source, Mapping)
                else lambda k, s=source: getattr(s, k, None)
            )
            tokens_in, tokens_out = get(in_key), get(out_key)
            if isinstance(tokens_in, int) and isinstance(tokens_out, int):
                return tokens_in, tokens_out
    return None


def _text(response: _Response) -> str:
    if isinstance(response, ChatResponse):
        return response.message.content or ""
    return response.text or ""


def _tag(response: _Response, info: dict[str, Any]) -> _Response:
    response.additional_kwargs = {**(response.additional_kwargs or {}), "mixllm": info}
    return response


def _is_function_calling(llm: LLM) -> bool:
    return isinstance(llm, FunctionCallingLLM) and bool(llm.metadata.is_function_calling_model)


# ---------------------------------------------------------------------- the adapter
class MixLLM(FunctionCallingLLM):
    """An LLM that routes each call to the best of several child LLMs (MixLLM, NAACL 2025).

    Use it anywhere LlamaIndex takes an LLM (``Settings.llm``, a query engine, a ``FunctionAgent``).
    It is function-calling when every child is; tools are converted by the chosen child.

    Args:
        llms: The children, ``{name: LLM}``.
        router: A trained :class:`~mixllm_core.MixLLMRouter` whose pool is exactly these names.
            Without one, a cold-start router is built: a price-aware prior plus an exploration
            bonus, learning from feedback.
        prices: For the cold-start router, per child ``(input, output)`` USD per million tokens
            (or an ``LLMSpec``, or a dict of its fields). Children not named cost 0.
        lam: λ, the quality/cost trade-off (larger: quality first). None: the router's (1.0 cold).
        alpha: Weight of the uncertainty bonus. None: the router's (0.1 cold).
        encoder: Query encoder of the cold-start router (default: ``StaticEncoder``, loaded
            lazily; its corpus part stays zero until a router is fitted on data).
        seed: Seed of the cold-start router's tie-breaking.
        max_attempts: Children tried per call before the error is raised.
        failure_threshold: Consecutive failures that put a child on cooldown.
        cooldown_s: Seconds a child on cooldown is skipped.

    Per call, ``pin="<name>"`` sends the call to that child (no fallback).

    Example:
        >>> from llama_index.core.llms import MockLLM
        >>> from mixllm_core.testing import HashingEncoder
        >>> llm = MixLLM({"small": MockLLM(), "big": MockLLM()},
        ...              prices={"small": (0.1, 0.4), "big": (5.0, 15.0)}, encoder=HashingEncoder())
        >>> with llm.collect() as answer:
        ...     response = llm.complete("What is 2 + 2?")
        >>> response.additional_kwargs["mixllm"]["llm"], answer.llms
        ('small', ['small'])
        >>> answer.feedback(score=1.0)[0].applied
        True
    """

    llms: dict[str, LLM] = Field(description="The child LLMs by name.", exclude=True)
    lam: float | None = Field(default=None, description="λ override (None: the router's).")
    alpha: float | None = Field(default=None, description="Exploration weight override.")
    max_attempts: int = Field(default=3, description="Children tried per call.")
    failure_threshold: int = Field(default=3, description="Failures before a cooldown.")
    cooldown_s: float = Field(default=30.0, description="Seconds a failing child is skipped.")

    _router: MixLLMRouter = PrivateAttr()
    _dispatcher: Dispatcher = PrivateAttr()
    _policy: DecisionPolicy | None = PrivateAttr(default=None)

    def __init__(
        self,
        llms: Mapping[str, LLM],
        *,
        router: MixLLMRouter | None = None,
        prices: Mapping[str, Any] | None = None,
        lam: float | None = None,
        alpha: float | None = None,
        encoder: Any = None,
        seed: int = 0,
        max_attempts: int = 3,
        failure_threshold: int = 3,
        cooldown_s: float = 30.0,
        callback_manager: CallbackManager | None = None,
        **kwargs: Any,
    ) -> None:
        children = dict(llms or {})
        if not children:
            raise ConfigError("MixLLM needs at least one child LLM: llms={name: LLM, ...}.")
        wrong = {n: type(c).__name__ for n, c in children.items() if not isinstance(c, LLM)}
        if wrong:
            raise ConfigError(f"Every child must be a llama_index LLM; got {wrong}.")
        super().__init__(
            llms=children,
            lam=lam,
            alpha=alpha,
            max_attempts=max_attempts,
            failure_threshold=failure_threshold,
            cooldown_s=cooldown_s,
            callback_manager=callback_manager or CallbackManager([]),
            **kwargs,
        )
        if router is None:
            policy = DecisionPolicy(
                lam=1.0 if lam is None else lam, alpha=0.1 if alpha is None else alpha
            )
            router = MixLLMRouter(
                _specs_from_prices(list(children), prices),
                encoder=encoder,
                policy=policy,
                seed=seed,
            )
        else:
            if prices is not None or encoder is not None:
                raise ConfigError(
                    "prices= and encoder= configure the cold-start router; with "
                    "router= given, set them on that router instead."
                )
            if set(router.specs) != set(children):
                raise ConfigError(
                    f"The router's pool {sorted(router.specs)} must be the children "
                    f"{sorted(children)}."
                )
            if lam is not None or alpha is not None:
                overrides = {k: v for k, v in (("lam", lam), ("alpha", alpha)) if v is not None}
                self._policy = replace(router.policy, **overrides)
        self._router = router
        self._dispatcher = Dispatcher(
            router,
            max_attempts=max_attempts,
            failure_threshold=failure_threshold,
            cooldown_s=cooldown_s,
        )

    @classmethod
    def class_name(cls) -> str:
        return "MixLLM"

    @property
    def router(self) -> MixLLMRouter:
        """The router deciding every call (predictions, feedback, latency tracker)."""
        return self._router

    @property
    def dispatcher(self) -> Dispatcher:
        """The core dispatcher (fallback, cooldowns)."""
        return self._dispatcher

    @property
    def metadata(self) -> LLMMetadata:
        """What holds for every child: the smallest context window, the largest output reserve."""
        metas = [c.metadata for c in self.llms.values()]
        outputs = [m.num_output for m in metas if m.num_output and m.num_output > 0]
        roles = {m.system_role for m in metas}
        return LLMMetadata(
            context_window=min(m.context_window for m in metas),
            num_output=max(outputs) if outputs else metas[0].num_output,
            is_chat_model=all(m.is_chat_model for m in metas),
            is_function_calling_model=all(_is_function_calling(c) for c in self.llms.values()),
            model_name="mixllm:" + "+".join(self.llms),
            system_role=roles.pop() if len(roles) == 1 else MessageRole.SYSTEM,
        )

    # ------------------------------------------------------------------ answers and feedback
    def collect(self) -> AbstractContextManager[AnswerDecisions]:
        """Collect the decisions made inside a ``with`` block, for feedback per answer.

        Works across ``await`` and in asyncio tasks started inside the block; concurrent tasks
        each see only their own block. Streams must be consumed inside the block.
        """
        return collecting(self)

    def feedback(
        self,
        target: str | _Response | AnswerDecisions,
        *,
        score: float | None = None,
        thumbs: bool | None = None,
    ) -> FeedbackResult | list[FeedbackResult]:
        """Feedback for a decision id, a response returned by this LLM, or a collected answer.

        Raises:
            FeedbackError: the target carries no decision, or the router rejects it.
        """
        if isinstance(target, AnswerDecisions):
            return target.feedback(score=score, thumbs=thumbs)
        if isinstance(target, str):
            return self._router.feedback(target, score=score, thumbs=thumbs)
        info = getattr(target, "additional_kwargs", {}).get("mixllm")
        if not info:
            raise FeedbackError(
                f"{type(target).__name__} carries no routing decision; pass a decision id, a "
                "ChatResponse/CompletionResponse from this LLM, or use `with llm.collect()` "
                "around a query engine call (its Response does not carry the LLM's metadata)."
            )
        return self._router.feedback(info["decision_id"], score=score, thumbs=thumbs)

    # ------------------------------------------------------------------ LlamaIndex API
    @llm_chat_callback()
    def chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        return self._call(self._plan("chat", messages, kwargs))

    @llm_chat_callback()
    async def achat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        return await self._acall(self._plan("achat", messages, kwargs))

    @llm_chat_callback()
    def stream_chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponseGen:
        return self._stream(self._plan("stream_chat", messages, kwargs))

    @llm_chat_callback()
    async def astream_chat(
        self, messages: Sequence[ChatMessage], **kwargs: Any
    ) -> ChatResponseAsyncGen:
        return await self._astream(self._plan("astream_chat", messages, kwargs))

    @llm_completion_callback()
    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        return self._call(self._plan("complete", prompt, {**kwargs, "formatted": formatted}))

    @llm_completion_callback()
    async def acomplete(
        self, prompt: str, formatted: bool = False, **kwargs: Any
    ) -> CompletionResponse:
        return await self._acall(
            self._plan("acomplete", prompt, {**kwargs, "formatted": formatted})
        )

    @llm_completion_callback()
    def stream_complete(
        self, prompt: str, formatted: bool = False, **kwargs: Any
    ) -> CompletionResponseGen:
        return self._stream(
            self._plan("stream_complete", prompt, {**kwargs, "formatted": formatted})
        )

    @llm_completion_callback()
    async def astream_complete(
        self, prompt: str, formatted: bool = False, **kwargs: Any
    ) -> CompletionResponseAsyncGen:
        return await self._astream(
            self._plan("astream_complete", prompt, {**kwargs, "formatted": formatted})
        )

    # ------------------------------------------------------------------ tools
    def _prepare_chat_with_tools(
        self,
        tools: Sequence[Any],
        user_msg: str | ChatMessage | None = None,
        chat_history: list[ChatMessage] | None = None,
        verbose: bool = False,
        allow_parallel_tool_calls: bool = False,
        tool_required: bool = False,
        **kwargs: Any,
    ) -> dict[str, Any]:
        """Keep the tools raw: the child chosen for the call converts them itself."""
        not_fc = sorted(n for n, c in self.llms.items() if not _is_function_calling(c))
        if not_fc:
            raise ConfigError(
                f"Tools need function-calling children; {not_fc} are not. Give "
                "MixLLM only FunctionCallingLLM children to use tools or agents."
            )
        messages = list(chat_history or [])
        if user_msg is not None:
            messages.append(
                ChatMessage(role=MessageRole.USER, content=user_msg)
                if isinstance(user_msg, str)
                else user_msg
            )
        options = {
            "verbose": verbose,
            "allow_parallel_tool_calls": allow_parallel_tool_calls,
            "tool_required": tool_required,
            **kwargs,
        }
        return {"messages": messages, _TOOLS_KEY: _ToolRequest(tuple(tools), options)}

    def _answering_child(self, response: ChatResponse) -> FunctionCallingLLM:
        info = (response.additional_kwargs or {}).get("mixllm") or {}
        child = self.llms.get(info.get("llm", ""))
        if child is None:  # a response not made here: any function-calling child can parse it
            child = next(c for c in self.llms.values() if _is_function_calling(c))
        return child  # type: ignore[return-value]

    def _validate_chat_with_tools_response(
        self,
        response: ChatResponse,
        tools: Sequence[Any],
        allow_parallel_tool_calls: bool = False,
        **kwargs: Any,
    ) -> ChatResponse:
        return self._answering_child(response)._validate_chat_with_tools_response(
            response, tools, allow_parallel_tool_calls=allow_parallel_tool_calls, **kwargs
        )

    def get_tool_calls_from_response(
        self, response: ChatResponse, error_on_no_tool_call: bool = True, **kwargs: Any
    ) -> list[ToolSelection]:
        """Tool calls parsed by the child that produced ``response``."""
        return self._answering_child(response).get_tool_calls_from_response(
            response, error_on_no_tool_call=error_on_no_tool_call, **kwargs
        )

    # ------------------------------------------------------------------ shared helpers
    def _plan(self, method: str, arg: Any, kwargs: dict[str, Any]) -> _Call:
        kwargs = dict(kwargs)
        pin = kwargs.pop("pin", None)
        if pin is not None and pin not in self.llms:
            raise UnknownLLMError(pin, self.llms)
        tools = kwargs.pop(_TOOLS_KEY, None)
        return _Call(method, arg, kwargs, tools, pin)

    def _route_kwargs(self, call: _Call) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"pin": call.pin}
        if self._policy is not None:
            kwargs["policy"] = self._policy
        return kwargs

    def _invoke(self, call: _Call, name: str, decision: RoutingDecision) -> Any:
        """Announce the decision and call the child's method (returns what the child returns)."""
        call.tried.append(name)
        dispatcher.event(
            RoutingDecisionEvent(
                decision_id=decision.decision_id,
                llm=name,
                operation=call.method,
                attempt=len(call.tried),
                decision=decision.to_dict(),
            )
        )
        child = self.llms[name]
        if call.tools is None or not isinstance(child, FunctionCallingLLM):
            return getattr(child, call.method)(call.arg, **call.kwargs)
        prepared = child._prepare_chat_with_tools_compat(
            list(call.tools.tools), chat_history=list(call.arg), **call.tools.options, **call.kwargs
        )
        return getattr(child, call.method)(**prepared)

    def _begin(self, call: _Call, decision: RoutingDecision) -> dict[str, Any]:
        """The ``additional_kwargs["mixllm"]`` of an answer; the decision joins open blocks."""
        notify(self, decision)
        return {**decision.to_dict(), "operation": call.method, "attempts": list(call.tried)}

    def _end(
        self,
        call: _Call,
        decision: RoutingDecision,
        info: dict[str, Any],
        last: _Response | None,
        latency_s: float,
    ) -> None:
        """Fill in latency, tokens and cost, and record the outcome with the router."""
        reported = None if last is None else _usage(last)
        answer = None if last is None else _text(last)
        priced = price_call(
            self._router, decision.llm, query_text(call.arg) or "", answer, reported
        )
        info.update(
            latency_s=latency_s,
            input_tokens=priced.input_tokens,
            output_tokens=priced.output_tokens,
            tokens_estimated=priced.estimated,
            cost=priced.cost,
        )
        self._router.record_outcome(
            decision.decision_id,
            latency_s=latency_s,
            cost=priced.cost,
            input_tokens=priced.input_tokens,
            output_tokens=priced.output_tokens,
        )

    def _call(self, call: _Call) -> Any:
        result = self._dispatcher.call(
            call.arg, lambda n, d: self._invoke(call, n, d), **self._route_kwargs(call)
        )
        return self._finish(call, result.decision, result.value, result.latency_s)

    async def _acall(self, call: _Call) -> Any:
        result = await self._dispatcher.acall(
            call.arg, lambda n, d: self._invoke(call, n, d), **self._route_kwargs(call)
        )
        return self._finish(call, result.decision, result.value, result.latency_s)

    def _finish(
        self, call: _Call, decision: RoutingDecision, response: _Response, latency_s: float
    ) -> _Response:
        info = self._begin(call, decision)
        self._end(call, decision, info, response, latency_s)
        return _tag(response, info)

    def _stream(self, call: _Call) -> Any:  # a generator of the child's response type
        pairs = self._dispatcher.stream(
            call.arg, lambda n, d: self._invoke(call, n, d), **self._route_kwargs(call)
        )
        first = next(pairs, None)  # route and open the child now: in the caller's context
        info = {} if first is None else self._begin(call, first[0])

        def gen() -> Iterator[_Response]:
            if first is None:
                return
            decision, last = first
            yield _tag(last, info)
            for _, last in pairs:
                yield _tag(last, info)
            self._end(call, decision, info, last, time.monotonic() - call.started)

        return gen()

    async def _astream(self, call: _Call) -> Any:  # an async generator, likewise
        async def open_stream(name: str, decision: RoutingDecision) -> AsyncIterator[_Response]:
            async for chunk in await self._invoke(call, name, decision):
                yield chunk

        pairs = self._dispatcher.astream(call.arg, open_stream, **self._route_kwargs(call))
        first = await anext(pairs, None)  # route and open the child now: in the caller's context
        info = {} if first is None else self._begin(call, first[0])

        async def gen() -> AsyncIterator[_Response]:
            if first is None:
                return
            decision, last = first
            yield _tag(last, info)
            async for _, last in pairs:
                yield _tag(last, info)
            self._end(call, decision, info, last, time.monotonic() - call.started)

        return gen()
