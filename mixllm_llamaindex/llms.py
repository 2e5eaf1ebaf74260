"""`MixLLM`: a LlamaIndex LLM that routes every call to one of several child LLMs.

Each call (chat, complete, their streaming and async forms, tool calls) is routed by a
:class:`~mixllm_core.MixLLMRouter` and dispatched through the core
:class:`~mixllm_core.Dispatcher`, which calls the child under ``timeout``, retries it after a rate
limit or a transient error, falls back to the next-best child when one keeps failing or its answer
is rejected by the ``validator``, cools failing children down, tracks latency and records every
attempt's outcome on the router. The eight public methods are one-line
shells over four helpers (sync / async × whole / stream); the child method called is the one
LlamaIndex called on the adapter, so completion-style children keep their own prompt formatting.
"""

from __future__ import annotations

import warnings
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Generator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from functools import partial
from typing import Any, cast

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
    ToolCallBlock,
)
from llama_index.core.bridge.pydantic import Field, PrivateAttr
from llama_index.core.callbacks import CallbackManager
from llama_index.core.llms.callbacks import llm_chat_callback, llm_completion_callback
from llama_index.core.llms.function_calling import FunctionCallingLLM
from llama_index.core.llms.llm import LLM, ToolSelection

from mixllm_core import (
    ConfigError,
    Dispatcher,
    FeedbackError,
    FeedbackResult,
    MixLLMRouter,
    QueryEncoder,
    RoutingDecision,
)
from mixllm_core.dispatch import DispatchResult, Reply
from mixllm_core.dispatch.retry import RetryPolicy
from mixllm_core.factory import Price, policy_override, router_for
from mixllm_core.log import RoutingLog

from .collect import AnswerDecisions, collecting, notify
from .events import RoutingDecisionEvent, dispatcher
from .providers import resolve_models

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
    task: str | None = None
    tried: list[str] = field(default_factory=list)
    done: DispatchResult | None = None

    def keep(self, done: DispatchResult) -> None:
        """The ``on_done`` of a stream: the result, for the info its chunks share."""
        self.done = done


def _usage(response: _Response) -> tuple[Any, Any] | None:
    """Input and output tokens the child reported, looked up where LlamaIndex LLMs put them
    (passed on as reported: the dispatcher checks them)."""
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
            if tokens_in is not None and tokens_out is not None:
                return tokens_in, tokens_out
    return None


def _calls_tools(response: _Response) -> bool:
    if isinstance(response, ChatResponse):
        if any(isinstance(b, ToolCallBlock) for b in response.message.blocks):
            return True
        return bool(response.message.additional_kwargs.get("tool_calls"))
    return False


def _read_response(response: _Response, so_far: Reply | None) -> Reply:
    """The dispatcher's :class:`~mixllm_core.dispatch.ReplyReader` for LlamaIndex responses: a
    stream chunk carries the text so far, and usage is reported (if at all) on some chunk."""
    if isinstance(response, ChatResponse):
        text = response.message.content or ""
    else:
        text = response.text or ""
    tokens = _usage(response)
    calls_tools = _calls_tools(response)
    if so_far is not None:
        tokens = so_far.tokens if tokens is None else tokens
        calls_tools = calls_tools or so_far.calls_tools
    return Reply(text, tokens, calls_tools)


def _tag(response: _Response, info: dict[str, Any]) -> _Response:
    response.additional_kwargs = {**(response.additional_kwargs or {}), "mixllm": info}
    return response


def _is_function_calling(llm: LLM) -> bool:
    return isinstance(llm, FunctionCallingLLM) and bool(llm.metadata.is_function_calling_model)


def _deprecated(old: str, new: str) -> None:
    warnings.warn(
        f"MixLLM {old} is deprecated and goes away in the next release; use {new}.",
        DeprecationWarning,
        stacklevel=3,
    )


# ---------------------------------------------------------------------- the adapter
class MixLLM(FunctionCallingLLM):
    """An LLM that routes each call to the best of several child LLMs (MixLLM, NAACL 2025).

    Use it anywhere LlamaIndex takes an LLM (``Settings.llm``, a query engine, a ``FunctionAgent``).
    It is function-calling when every child is; tools are converted by the chosen child.

    Args:
        models: The children, ``{name: LLM}``. A child may be a ``"provider:model"`` string
            (built with the provider's LlamaIndex class), and ``models`` a list of such strings
            (:mod:`mixllm_llamaindex.providers`).
        router: A trained :class:`~mixllm_core.MixLLMRouter` whose pool is exactly these names.
            Without one, a cold-start router is built (:func:`mixllm_core.factory.build_router`:
            a price-aware prior plus an exploration bonus, learning from feedback).
        prices: For the cold-start router, per child ``(input, output)`` USD per million tokens
            (or an ``LLMSpec``, or a dict of its fields). A child named, or given as,
            ``"provider:model"`` gets its list price (:mod:`mixllm_core.prices`); others without
            a price cost 0, with an :class:`~mixllm_core.errors.UnpricedLLMWarning`.
        lam: λ, the quality/cost trade-off (larger: quality first). None: the router's own (a
            cold-start router's is ``DEFAULT_LAM`` = 1.0); a value overrides it for this LLM's
            calls only.
        alpha: Weight of the exploration bonus. None: the router's own (a cold-start router's is
            ``DEFAULT_ALPHA`` = 0.1); a value overrides it for this LLM's calls only.
        encoder: Query encoder of the cold-start router (default: ``StaticEncoder``, loaded
            lazily; its corpus part stays zero until a router is fitted on data).
        seed: Seed of the cold-start router's tie-breaking.
        log: Log of the cold-start router: a path, or a database URL shared by every process
            (``"postgresql+psycopg://user@host/db"``); see :class:`~mixllm_core.MixLLMRouter`.
        sync_interval_s: How stale the cold-start router's online heads may get on a shared log.
        max_retries: Other children tried after a child fails.
        retry_policy: Retries of the same child (rate limits, timeouts, connection and server
            errors), backoff and cooldowns: a :class:`~mixllm_core.dispatch.retry.RetryPolicy` (default:
            one retry, then the next child; a rate-limited child cools down for its
            ``Retry-After``, others after 3 failures in a row for 30 s).
        failure_threshold: Shorthand for ``retry_policy.failure_threshold`` (None: the policy's).
        cooldown_s: Shorthand for ``retry_policy.cooldown_s`` (None: the policy's).
        timeout: Seconds a child may take to answer (a stream: to send its first chunk, and
            each next one) before MixLLM stops waiting and counts a failure of that child;
            None: no limit.
        validator: Judges every answer (:mod:`mixllm_core.dispatch.validate`; e.g. ``non_empty``): a
            rejected answer is a failure of that child, and the next child is tried.
        llms: Deprecated spelling of ``models``.
        max_attempts: Deprecated spelling of ``max_retries + 1``.

    Per call, ``model="<name>"`` sends the call to that child (no fallback); ``pin=`` is its
    deprecated spelling. ``task="<task>"`` tells the router the query's task when the caller
    knows it (one the router was trained on; see
    :meth:`MixLLMRouter.route <mixllm_core.MixLLMRouter.route>`); neither reaches the child. Every response carries ``additional_kwargs["mixllm"]``: the decision,
    ``operation``, ``latency_s``, tokens, ``cost`` and ``attempts`` (llm, decision id, latency,
    redacted error). The outcome of every attempt is recorded on the router by the dispatcher.

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

    models: dict[str, LLM] = Field(description="The child LLMs by name.", exclude=True, repr=False)
    lam: float | None = Field(default=None, description="λ override (None: the router's).")
    alpha: float | None = Field(default=None, description="Exploration weight override.")
    max_retries: int = Field(default=2, description="Other children tried after a failure.")
    retry_policy: RetryPolicy | None = Field(
        default=None, description="Same-child retries, backoff and cooldowns (None: defaults)."
    )
    failure_threshold: int | None = Field(
        default=None, description="Failures before a cooldown (None: the retry policy's)."
    )
    cooldown_s: float | None = Field(
        default=None, description="Seconds a failing child is skipped (None: the policy's)."
    )
    timeout: float | None = Field(
        default=None, description="Seconds a child may take per attempt (None: no limit)."
    )
    validator: Callable[[Reply], str | bool | None] | None = Field(
        default=None, description="Judges each answer; a rejection is a failure.", exclude=True
    )

    _router: MixLLMRouter = PrivateAttr()
    _dispatcher: Dispatcher = PrivateAttr()

    def __init__(
        self,
        models: Mapping[str, LLM | str] | Sequence[str] | None = None,
        *,
        router: MixLLMRouter | None = None,
        prices: Mapping[str, Price] | None = None,
        lam: float | None = None,
        alpha: float | None = None,
        encoder: QueryEncoder | None = None,
        seed: int = 0,
        log: RoutingLog | str | None = None,
        sync_interval_s: float | None = 1.0,
        max_retries: int = 2,
        retry_policy: RetryPolicy | None = None,
        failure_threshold: int | None = None,
        cooldown_s: float | None = None,
        timeout: float | None = None,
        validator: Callable[[Reply], str | bool | None] | None = None,
        callback_manager: CallbackManager | None = None,
        llms: Mapping[str, LLM] | None = None,
        max_attempts: int | None = None,
        **kwargs: Any,
    ) -> None:
        if llms is not None:
            _deprecated("llms=", "models=")
            if models is not None:
                raise ConfigError("Give the children once, as models= (llms= is its old name).")
            models = llms
        if max_attempts is not None:
            _deprecated(
                "max_attempts=n", "max_retries=n - 1 (other children tried after a failure)"
            )
            max_retries = max_attempts - 1 if isinstance(max_attempts, int) else max_attempts
        children, prices = resolve_models(models, prices, priced=router is None)
        if not children:
            raise ConfigError("MixLLM needs at least one child LLM: models={name: LLM, ...}.")
        wrong = {n: type(c).__name__ for n, c in children.items() if not isinstance(c, LLM)}
        if wrong:
            raise ConfigError(f"Every child must be a llama_index LLM; got {wrong}.")
        dispatch: dict[str, Any] = {  # the fields, and the dispatcher's settings as given
            "max_retries": max_retries,
            "retry_policy": retry_policy,
            "failure_threshold": failure_threshold,
            "cooldown_s": cooldown_s,
            "timeout": timeout,
            "validator": validator,
        }
        super().__init__(
            models=children,
            lam=lam,
            alpha=alpha,
            callback_manager=callback_manager or CallbackManager([]),
            **dispatch,
            **kwargs,
        )
        self._router = router_for(
            children,
            router=router,
            prices=prices,
            lam=lam,
            alpha=alpha,
            encoder=encoder,
            seed=seed,
            log=log,
            sync_interval_s=sync_interval_s,
        )
        self._dispatcher = Dispatcher(self._router, reader=_read_response, **dispatch)

    @classmethod
    def class_name(cls) -> str:
        return "MixLLM"

    @property
    def llms(self) -> dict[str, LLM]:
        """Deprecated: the children are :attr:`models`."""
        _deprecated(".llms", ".models")
        return self.models

    @property
    def max_attempts(self) -> int:
        """Deprecated: ``max_retries + 1``."""
        _deprecated(".max_attempts", ".max_retries (other children tried after a failure)")
        return self.max_retries + 1

    @property
    def router(self) -> MixLLMRouter:
        """The router deciding every call (predictions, feedback, latency tracker)."""
        return self._router

    @property
    def dispatcher(self) -> Dispatcher:
        """The core dispatcher (fallback, cooldowns, outcome recording)."""
        return self._dispatcher

    @property
    def metadata(self) -> LLMMetadata:
        """What holds for every child: the smallest context window, the largest output reserve."""
        metas = [c.metadata for c in self.models.values()]
        outputs = [m.num_output for m in metas if m.num_output and m.num_output > 0]
        roles = {m.system_role for m in metas}
        return LLMMetadata(
            context_window=min(m.context_window for m in metas),
            num_output=max(outputs) if outputs else metas[0].num_output,
            is_chat_model=all(m.is_chat_model for m in metas),
            is_function_calling_model=all(_is_function_calling(c) for c in self.models.values()),
            model_name="mixllm:" + "+".join(self.models),
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
    ) -> list[FeedbackResult]:
        """Feedback for a decision id, a response returned by this LLM, or a collected answer.

        Returns:
            One :class:`~mixllm_core.FeedbackResult` per routing decision reached.

        Raises:
            FeedbackError: the target carries no decision, or the router rejects it.
        """
        if isinstance(target, AnswerDecisions):
            return target.feedback(score=score, thumbs=thumbs)
        if isinstance(target, str):
            return [self._router.feedback(target, score=score, thumbs=thumbs)]
        info = getattr(target, "additional_kwargs", {}).get("mixllm")
        if not info:
            raise FeedbackError(
                f"{type(target).__name__} carries no routing decision; pass a decision id, a "
                "ChatResponse/CompletionResponse from this LLM, or use `with llm.collect()` "
                "around a query engine call (its Response does not carry the LLM's metadata)."
            )
        return [self._router.feedback(info["decision_id"], score=score, thumbs=thumbs)]

    # ------------------------------------------------------------------ LlamaIndex API
    @llm_chat_callback()
    def chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        return cast(ChatResponse, self._call(self._plan("chat", messages, kwargs)))

    @llm_chat_callback()
    async def achat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        return cast(ChatResponse, await self._acall(self._plan("achat", messages, kwargs)))

    @llm_chat_callback()
    def stream_chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponseGen:
        return cast(ChatResponseGen, self._stream(self._plan("stream_chat", messages, kwargs)))

    @llm_chat_callback()
    async def astream_chat(
        self, messages: Sequence[ChatMessage], **kwargs: Any
    ) -> ChatResponseAsyncGen:
        return cast(
            ChatResponseAsyncGen, await self._astream(self._plan("astream_chat", messages, kwargs))
        )

    @llm_completion_callback()
    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        return cast(
            CompletionResponse,
            self._call(self._plan_completion("complete", prompt, formatted, kwargs)),
        )

    @llm_completion_callback()
    async def acomplete(
        self, prompt: str, formatted: bool = False, **kwargs: Any
    ) -> CompletionResponse:
        return cast(
            CompletionResponse,
            await self._acall(self._plan_completion("acomplete", prompt, formatted, kwargs)),
        )

    @llm_completion_callback()
    def stream_complete(
        self, prompt: str, formatted: bool = False, **kwargs: Any
    ) -> CompletionResponseGen:
        return cast(
            CompletionResponseGen,
            self._stream(self._plan_completion("stream_complete", prompt, formatted, kwargs)),
        )

    @llm_completion_callback()
    async def astream_complete(
        self, prompt: str, formatted: bool = False, **kwargs: Any
    ) -> CompletionResponseAsyncGen:
        return cast(
            CompletionResponseAsyncGen,
            await self._astream(
                self._plan_completion("astream_complete", prompt, formatted, kwargs)
            ),
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
        not_fc = sorted(n for n, c in self.models.items() if not _is_function_calling(c))
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
        hint = {"task": kwargs.pop("task")} if "task" in kwargs else {}  # for the router
        options = {
            "verbose": verbose,
            "allow_parallel_tool_calls": allow_parallel_tool_calls,
            "tool_required": tool_required,
            **kwargs,
        }
        return {"messages": messages, _TOOLS_KEY: _ToolRequest(tuple(tools), options), **hint}

    def _answering_child(self, response: ChatResponse) -> FunctionCallingLLM:
        info = (response.additional_kwargs or {}).get("mixllm") or {}
        child = self.models.get(info.get("llm", ""))
        if child is None:  # a response not made here: any function-calling child can parse it
            child = next(c for c in self.models.values() if _is_function_calling(c))
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
        pin = kwargs.pop("model", None)
        if "pin" in kwargs:
            _deprecated("pin=<name>", "model=<name>")
            old = kwargs.pop("pin")
            pin = old if pin is None else pin
        task = kwargs.pop("task", None)  # the router's task hint, never the child's
        tools = kwargs.pop(_TOOLS_KEY, None)
        return _Call(method, arg, kwargs, tools, pin, task)

    def _plan_completion(
        self, method: str, prompt: str, formatted: bool, kwargs: dict[str, Any]
    ) -> _Call:
        return self._plan(method, prompt, {**kwargs, "formatted": formatted})

    def _route_kwargs(self, call: _Call) -> dict[str, Any]:
        hint = {} if call.task is None else {"task": call.task}
        overrides = policy_override(self._router, lam=self.lam, alpha=self.alpha)
        return {"pin": call.pin, **overrides, **hint}

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
        child = self.models[name]
        if call.tools is None or not isinstance(child, FunctionCallingLLM):
            return getattr(child, call.method)(call.arg, **call.kwargs)
        prepared = child._prepare_chat_with_tools_compat(
            list(call.tools.tools), chat_history=list(call.arg), **call.tools.options, **call.kwargs
        )
        return getattr(child, call.method)(**prepared)

    def _info(self, call: _Call, decision: RoutingDecision) -> dict[str, Any]:
        """The ``additional_kwargs["mixllm"]`` of an answer; the decision joins open blocks."""
        notify(self, decision)
        return {**decision.to_dict(), "operation": call.method}

    def _finish(self, call: _Call, done: DispatchResult) -> Any:
        info = self._info(call, done.decision)
        info.update(done.to_dict())
        return _tag(done.value, info)

    def _call(self, call: _Call) -> Any:
        invoke = partial(self._invoke, call)
        return self._finish(
            call, self._dispatcher.call(call.arg, invoke, **self._route_kwargs(call))
        )

    async def _acall(self, call: _Call) -> Any:
        invoke = partial(self._invoke, call)
        done = await self._dispatcher.acall(call.arg, invoke, **self._route_kwargs(call))
        return self._finish(call, done)

    def _stream(self, call: _Call) -> Any:  # a generator of the child's response type
        pairs = self._dispatcher.stream(
            call.arg, partial(self._invoke, call), on_done=call.keep, **self._route_kwargs(call)
        )
        first = next(pairs, None)  # route and open the child now: in the caller's context
        info = {} if first is None else self._info(call, first[0])

        def gen() -> Generator[_Response, None, None]:
            try:
                if first is None:
                    return
                yield _tag(first[1], info)
                for _, chunk in pairs:
                    yield _tag(chunk, info)
                if call.done is not None:  # every chunk shares ``info``: now it has the usage too
                    info.update(call.done.to_dict())
            finally:  # closed early: the dispatcher ends the child's attempt now
                pairs.close()

        return gen()

    async def _astream(self, call: _Call) -> Any:  # an async generator, likewise
        async def open_stream(name: str, decision: RoutingDecision) -> AsyncIterator[_Response]:
            async for chunk in await self._invoke(call, name, decision):
                yield chunk

        pairs = self._dispatcher.astream(
            call.arg, open_stream, on_done=call.keep, **self._route_kwargs(call)
        )
        first = await anext(pairs, None)  # route and open the child now: in the caller's context
        info = {} if first is None else self._info(call, first[0])

        async def gen() -> AsyncGenerator[_Response, None]:
            try:
                if first is None:
                    return
                yield _tag(first[1], info)
                async for _, chunk in pairs:
                    yield _tag(chunk, info)
                if call.done is not None:
                    info.update(call.done.to_dict())
            finally:  # closed early: the dispatcher ends the child's attempt now
                await pairs.aclose()

        return gen()
