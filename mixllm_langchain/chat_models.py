"""`MixLLMChat`: a LangChain chat model that routes every call to one of several child chat models.

Per call the :class:`~mixllm_core.MixLLMRouter` picks a child (predicted quality vs. cost vs.
latency) and the :class:`~mixllm_core.Dispatcher` calls it under ``timeout`` (retrying it after a
rate limit or a transient error, falling back to the next best child when it keeps failing or its
answer is rejected by the ``validator``, cooling failing children down), tracks its latency and
records the outcome on the router. The answer comes back with
the child's ``model_name`` and ``usage_metadata`` plus ``response_metadata["mixllm"]``: the
decision and why, the measured latency, tokens and cost (usage × the child's price), and every
attempt. Children run with their callbacks isolated, so a chain's handlers see one chat-model run
and one token stream per call.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import AbstractContextManager
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
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable, RunnableBinding, RunnableConfig
from langchain_core.tools import BaseTool
from pydantic import Field, PrivateAttr, model_validator

from mixllm_core import (
    ConfigError,
    Dispatcher,
    FeedbackError,
    FeedbackResult,
    MixLLMRouter,
    QueryEncoder,
    RoutingDecision,
)
from mixllm_core.collect import AnswerDecisions, AnswerTexts, collecting, notify
from mixllm_core.dispatch import DispatchResult, Reply
from mixllm_core.dispatch.retry import RetryPolicy
from mixllm_core.factory import policy_override, router_for

from .callbacks import MixLLMFeedbackHandler, RunLedger, graph_run_id
from .providers import resolve_models

__all__ = ["MixLLMChat"]

_RUN_PREFIX = "lc_run--"


def _read_message(message: Any, so_far: Reply | None) -> Reply:
    """The dispatcher's :class:`~mixllm_core.dispatch.ReplyReader` for chat messages and their
    stream chunks: text deltas appended, ``usage_metadata`` summed (LangChain's merge rule).
    Token counts are passed on as the child reported them: the dispatcher checks them."""
    text = str(message.text)
    usage = getattr(message, "usage_metadata", None)
    tokens = None if not usage else (usage.get("input_tokens"), usage.get("output_tokens"))
    calls_tools = bool(getattr(message, "tool_calls", None)) or bool(
        getattr(message, "tool_call_chunks", None)
    )
    if so_far is None:
        return Reply(text, tokens, calls_tools)
    if so_far.tokens is not None:
        tokens = so_far.tokens if tokens is None else _summed(so_far.tokens, tokens)
    return Reply((so_far.text or "") + text, tokens, so_far.calls_tools or calls_tools)


def _summed(a: Any, b: Any) -> Any:
    """Two ``(input, output)`` usage reports added up; None where either is unusable."""
    try:
        return (a[0] + b[0], a[1] + b[1])
    except TypeError:
        return None


def _isolated() -> RunnableConfig:
    """Config of a child call: no callbacks, so the chain's handlers are not fired twice."""
    return {"callbacks": []}


def _unwrap(
    runnable: Runnable[Any, Any], kwargs: dict[str, Any]
) -> tuple[Runnable[Any, Any], dict[str, Any]]:
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


class MixLLMChat(BaseChatModel):
    """Routes each call to the best of several chat models (MixLLM, Wang et al., NAACL 2025).

    Args:
        models: The children, ``{name: chat model}``; names are the router's LLM names. A
            child may be a ``"provider:model"`` string (built with LangChain's
            ``init_chat_model``), and ``models`` a list of such strings
            (:mod:`mixllm_langchain.providers`).
        router: A trained :class:`~mixllm_core.MixLLMRouter` whose LLMs are the children's names.
            None: a cold-start router (:func:`mixllm_core.factory.build_router`: price-aware prior
            plus exploration) that learns from :meth:`feedback`.
        prices: For a cold-start router, ``{name: (input $/Mtok, output $/Mtok)}`` (or LLMSpec
            fields / an LLMSpec). A child named, or given as, ``"provider:model"`` gets its list
            price (:mod:`mixllm_core.prices`); others without a price cost 0, with an
            :class:`~mixllm_core.errors.UnpricedLLMWarning`. Give a ``router`` or prices.
        lam: Quality weight λ (larger: quality first). None: the router's own (a cold-start
            router's is ``DEFAULT_LAM`` = 1.0); a value overrides it for this chat's calls only.
        alpha: Exploration weight. None: the router's own (a cold-start router's is
            ``DEFAULT_ALPHA`` = 0.1); a value overrides it for this chat's calls only.
        encoder: Query encoder of a cold-start router (default: ``StaticEncoder``, loaded at
            first use; its corpus part stays zero until a router is fitted on data).
        seed: Seed of a cold-start router.
        log: Log of a cold-start router: a path, or a database URL shared by every process
            (``"postgresql+psycopg://user@host/db"``); see :class:`~mixllm_core.MixLLMRouter`.
        sync_interval_s: How stale a cold-start router's online heads may get on a shared log.
        max_retries: Other children tried after a child fails.
        retry_policy: Retries of the same child (rate limits, timeouts, connection and server
            errors), backoff and cooldowns: a :class:`~mixllm_core.dispatch.retry.RetryPolicy` (default:
            one retry, then the next child; a rate-limited child cools down for its
            ``Retry-After``, others after 3 failures in a row for 30 s).
        failure_threshold: Shorthand for ``retry_policy.failure_threshold`` (None: the policy's).
        cooldown_s: Shorthand for ``retry_policy.cooldown_s`` (None: the policy's).
        timeout: Seconds a child may take to answer (a stream: to send its first chunk, and
            each next one) before MixLLMChat stops waiting and counts a failure of that child;
            None: no limit.
        validator: Judges every answer (:mod:`mixllm_core.dispatch.validate`; e.g. ``non_empty``): a
            rejected answer is a failure of that child, and the next child is tried.
        temperature, max_tokens, stop: Passed to whichever child answers.
        streaming: invoke() streams from the child and aggregates.

    Per call (or with ``.bind``), ``model="<name>"`` pins a child and ``task="<task>"`` tells the
    router the query's task when the caller knows it (one the router was trained on; see
    :meth:`MixLLMRouter.route <mixllm_core.MixLLMRouter.route>`); neither reaches the child.
    Every answer carries
    ``response_metadata["model_name"]`` (the child's), the child's ``usage_metadata`` and
    ``response_metadata["mixllm"]`` (decision id, chosen child, candidates, latency_s, cost,
    input/output tokens, attempts). The outcome of every attempt is recorded on the router by
    the :class:`~mixllm_core.Dispatcher`; error texts are redacted of keys and tokens.
    :meth:`feedback` reaches a decision from the message, the text a parser made of it, a run id
    (a call's, its chain's, an agent's) or a :meth:`collect` block around any chain.

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

    models: dict[str, BaseChatModel] = Field(repr=False)
    router: MixLLMRouter | None = Field(default=None, repr=False)
    prices: dict[str, Any] | None = None
    lam: float | None = None
    alpha: float | None = None
    encoder: QueryEncoder | None = Field(default=None, repr=False)
    seed: int = 0
    log: Any = Field(default=None, repr=False, exclude=True)
    sync_interval_s: float | None = 1.0
    max_retries: int = 2
    retry_policy: RetryPolicy | None = None
    failure_threshold: int | None = None
    cooldown_s: float | None = None
    validator: Callable[[Reply], str | bool | None] | None = Field(
        default=None, repr=False, exclude=True
    )
    temperature: float | None = None
    max_tokens: int | None = None
    stop: list[str] | None = None
    timeout: float | None = None
    streaming: bool = False
    ledger: RunLedger = Field(default_factory=RunLedger, exclude=True, repr=False)

    _dispatcher: Dispatcher = PrivateAttr()
    _handler: MixLLMFeedbackHandler = PrivateAttr()
    _answers: AnswerTexts = PrivateAttr(default_factory=AnswerTexts)

    # ------------------------------------------------------------------ construction
    @model_validator(mode="before")
    @classmethod
    def _by_name(cls, data: Any) -> Any:
        """Children given as ``"provider:model"`` strings: built and priced (providers.py)."""
        return resolve_models(data) if isinstance(data, dict) else data

    @model_validator(mode="after")
    def _build(self) -> MixLLMChat:
        if not self.models:
            raise ConfigError("MixLLMChat needs at least one child: models={name: chat model}.")
        self.router = router_for(
            self.models,
            router=self.router,
            prices=self.prices,
            lam=self.lam,
            alpha=self.alpha,
            encoder=self.encoder,
            seed=self.seed,
            log=self.log,
            sync_interval_s=self.sync_interval_s,
        )
        self._dispatcher = Dispatcher(
            self.router,
            max_retries=self.max_retries,
            retry_policy=self.retry_policy,
            failure_threshold=self.failure_threshold,
            cooldown_s=self.cooldown_s,
            timeout=self.timeout,
            validator=self.validator,
            reader=_read_message,
        )
        self._handler = MixLLMFeedbackHandler(self)
        self.callbacks = self._with_handler(self.callbacks)
        return self

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
        return {
            "children": list(self.models),
            "lam": self.lam,
            "alpha": self.alpha,
            "max_retries": self.max_retries,
        }

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> LangSmithParams:
        model = kwargs.get("model")
        params = LangSmithParams(
            ls_provider="mixllm",
            ls_model_type="chat",
            ls_model_name=model if isinstance(model, str) else "mixllm",
        )
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
    def _router(self) -> MixLLMRouter:
        if self.router is None:  # set by the validator; only a bypassed __init__ gets here
            raise ConfigError("MixLLMChat has no router; construct it with MixLLMChat(...).")
        return self.router

    def _plan(
        self, messages: list[BaseMessage], stop: list[str] | None, kwargs: dict[str, Any]
    ) -> _Call:
        kwargs = dict(kwargs)
        pin = kwargs.pop("model", None)
        task = kwargs.pop("task", None)  # the router's task hint, never the child's
        tools = kwargs.pop("tools", None)
        tool_choice = kwargs.pop("tool_choice", None)
        for name in ("temperature", "max_tokens"):
            if getattr(self, name) is not None:
                kwargs.setdefault(name, getattr(self, name))
        route_kwargs: dict[str, Any] = dict(
            policy_override(self._router(), lam=self.lam, alpha=self.alpha)
        )
        if task is not None:
            route_kwargs["task"] = task
        return _Call(
            messages,
            stop if stop is not None else self.stop,
            pin,
            tools,
            tool_choice,
            kwargs,
            route_kwargs,
        )

    def _child(
        self, decision: RoutingDecision, call: _Call
    ) -> tuple[Runnable[Any, Any], dict[str, Any]]:
        name = decision.llm
        runnable: Runnable[Any, Any] = self.models[name]
        if call.tools is not None:
            extra = {} if call.tool_choice is None else {"tool_choice": call.tool_choice}
            runnable = self.models[name].bind_tools(call.tools, **extra)
        runnable, kwargs = _unwrap(runnable, dict(call.kwargs))
        return runnable, {"stop": call.stop, **kwargs}

    def _child_call(self, call: _Call, method: str) -> Callable[[str, RoutingDecision], Any]:
        """What the dispatcher calls for ``call``: the chosen child's ``method`` (``invoke``,
        ``ainvoke``, ``stream`` or ``astream``) on the messages, with its callbacks isolated."""

        def child_call(name: str, decision: RoutingDecision) -> Any:
            runnable, kw = self._child(decision, call)
            return getattr(runnable, method)(call.messages, config=_isolated(), **kw)

        return child_call

    def _child_model_name(self, name: str, reported: Any) -> str:
        if isinstance(reported, str) and reported:
            return reported
        child = self.models[name]
        for attr in ("model_name", "model"):
            value = getattr(child, attr, None)
            if isinstance(value, str) and value:
                return value
        return name

    def _answered(self, decision: RoutingDecision, text: str) -> None:
        """Make a call's decision findable: by open ``collect()`` blocks, by the answer's text
        and by the run id of the LangGraph graph it ran in."""
        notify(self, decision)
        if text.strip():
            self._answers.add(text, decision.decision_id)
        run_id = graph_run_id()
        if run_id is not None:
            self.ledger.add(run_id, None, decision.decision_id)

    def _result(self, done: DispatchResult) -> ChatResult:
        message: BaseMessage = done.value
        self._answered(done.decision, str(message.text))
        meta = dict(message.response_metadata)
        meta["model_name"] = self._child_model_name(done.decision.llm, meta.get("model_name"))
        meta["mixllm"] = done.to_dict()
        routed = message.model_copy(update={"id": None, "response_metadata": meta})
        return ChatResult(generations=[ChatGeneration(message=routed)])

    # ------------------------------------------------------------------ invoke
    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        if self.streaming:
            return generate_from_stream(self._stream(messages, stop, **kwargs))
        call = self._plan(messages, stop, kwargs)
        invoke = self._child_call(call, "invoke")
        return self._result(
            self._dispatcher.call(call.messages, invoke, pin=call.pin, **call.route_kwargs)
        )

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        if self.streaming:
            return await agenerate_from_stream(self._astream(messages, stop, **kwargs))
        call = self._plan(messages, stop, kwargs)
        invoke = self._child_call(call, "ainvoke")
        return self._result(
            await self._dispatcher.acall(call.messages, invoke, pin=call.pin, **call.route_kwargs)
        )

    # ------------------------------------------------------------------ stream
    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        call, relay = self._plan(messages, stop, kwargs), _Relay(self)
        open_stream = self._child_call(call, "stream")
        for _, chunk in self._dispatcher.stream(
            call.messages, open_stream, pin=call.pin, on_done=relay.finished, **call.route_kwargs
        ):
            yield relay.forward(chunk)
        yield relay.last()

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        call, relay = self._plan(messages, stop, kwargs), _Relay(self)
        open_stream = self._child_call(call, "astream")
        async for _, chunk in self._dispatcher.astream(
            call.messages, open_stream, pin=call.pin, on_done=relay.finished, **call.route_kwargs
        ):
            yield relay.forward(chunk)
        yield relay.last()

    # ------------------------------------------------------------------ feedback
    def collect(self) -> AbstractContextManager[AnswerDecisions]:
        """Collect the decisions of the calls made inside a ``with`` block, for feedback on the
        answer they produced together.

        Works inside any chain (the block need not see the chat model), across ``await`` and in
        tasks or threads LangChain starts inside the block (``batch``); concurrent tasks each see
        only their own block. Streams must be consumed inside the block.

        Example:
            >>> from mixllm_core.testing import HashingEncoder
            >>> from mixllm_langchain.testing import ScriptedChatModel
            >>> from langchain_core.output_parsers import StrOutputParser
            >>> chat = MixLLMChat(models={"a": ScriptedChatModel(model_name="a")},
            ...                   encoder=HashingEncoder())
            >>> with chat.collect() as answer:
            ...     text = (chat | StrOutputParser()).invoke("hi")
            >>> answer.llms, [r.applied for r in answer.feedback(thumbs=True)]
            (['a'], [True])
        """
        return collecting(self)

    def _by_text(self, text: str) -> list[str]:
        """The one decision still waiting for feedback whose answer was exactly ``text``."""
        ids = self._answers.decisions(text)
        if not ids:
            return []
        log = self._router().log
        waiting = [d for d in ids if not log.has_feedback(d)]
        if len(waiting) == 1:
            return waiting
        if not waiting:
            raise FeedbackError(f"The answer {text!r:.60} already received feedback.")
        raise FeedbackError(
            f"{len(waiting)} recent answers were exactly {text!r:.60}; say which with "
            "`with chat.collect() as answer: ...` then answer.feedback(...), or with a run id "
            "(chain.invoke(x, config={'run_id': run_id}) then chat.feedback(run_id, ...))."
        )

    def decision_ids(self, target: BaseMessage | UUID | str) -> list[str]:
        """The decision ids behind an answer, its text, a run id or a decision id (see
        :meth:`feedback`)."""
        if isinstance(target, BaseMessage):
            meta = target.response_metadata.get("mixllm")
            if isinstance(meta, dict) and "decision_id" in meta:
                return [meta["decision_id"]]
            if isinstance(target.id, str) and target.id.startswith(_RUN_PREFIX):
                run = target.id[len(_RUN_PREFIX) :][:36]
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
            ids = ids or self._by_text(target)
            if ids or self._router().log.get_decision(target) is not None:
                return ids or [target]
            raise FeedbackError(
                f"{target!r:.80} is not a decision id, a known run id or the text of one of this "
                f"chat's last {self._answers.max_answers} answers. Collect the answer with "
                "`with chat.collect() as answer: ...` then answer.feedback(...), or give the "
                "chain a run id (config={'run_id': run_id}) and call chat.feedback(run_id, ...)."
            )
        raise FeedbackError(
            f"feedback() takes the returned message or its text, a collected answer, a decision "
            f"id or a run id (UUID or str); got {type(target).__name__}. For other parser "
            "outputs, use `with chat.collect() as answer:` or a run id."
        )

    def feedback(
        self,
        target: BaseMessage | AnswerDecisions | UUID | str,
        *,
        score: float | None = None,
        thumbs: bool | None = None,
    ) -> list[FeedbackResult]:
        """Tell the router how good an answer was, after the fact.

        Args:
            target: What identifies the answer:

                - the message a call returned (invoke, or a stream's aggregated chunks);
                - the text an output parser made of it (``StrOutputParser``): the decision
                  whose answer was exactly this text, among this chat's recent answers;
                - an :class:`~mixllm_core.collect.AnswerDecisions` from :meth:`collect`;
                - the LangChain run id of a call, of the chain that made it (its direct
                  parent: ``prompt | chat | parser`` invoked with ``config={"run_id": ...}``),
                  of a LangGraph agent run given a run id, or of any run above when a
                  :class:`MixLLMFeedbackHandler` on this chat was in the run's callbacks;
                - a decision id (``response_metadata["mixllm"]["decision_id"]``).
            score: A refined quality score in [0, 1], or
            thumbs: True (good) / False (bad). Give exactly one.

        Returns:
            One :class:`~mixllm_core.FeedbackResult` per routing decision reached.

        Raises:
            FeedbackError: unknown target, feedback already given, or a bad score.
        """
        if isinstance(target, AnswerDecisions):
            return target.feedback(score=score, thumbs=thumbs)
        if isinstance(target, UUID) and not self._handler.decisions(target):
            raise FeedbackError(
                f"No routed call of this MixLLMChat is known under run id {str(target)!r}. A "
                "chain's run id maps to the calls made directly inside it, an agent's to all of "
                "its calls; for deeper nesting pass MixLLMFeedbackHandler(chat) in the run's "
                "callbacks, or use `with chat.collect() as answer:`."
            )
        return [
            self._router().feedback(d, score=score, thumbs=thumbs)
            for d in self.decision_ids(target)
        ]


class _Relay:
    """Passes a child's chunks on, then adds the one chunk with model name and routing info."""

    def __init__(self, chat: MixLLMChat) -> None:
        self.chat = chat
        self.model_name: Any = None
        self.done: DispatchResult | None = None
        self.texts: list[str] = []

    def finished(self, done: DispatchResult) -> None:
        self.done = done

    def forward(self, chunk: BaseMessage) -> ChatGenerationChunk:
        meta = dict(chunk.response_metadata)
        if "model_name" in meta:  # merged by concatenation: keep it for the last chunk only
            self.model_name = meta.pop("model_name")
        self.texts.append(str(chunk.text))
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
        self.chat._answered(self.done.decision, "".join(self.texts))
        meta = {
            "model_name": self.chat._child_model_name(self.done.decision.llm, self.model_name),
            "mixllm": self.done.to_dict(),
        }
        return ChatGenerationChunk(
            message=AIMessageChunk(content="", response_metadata=meta, chunk_position="last")
        )
