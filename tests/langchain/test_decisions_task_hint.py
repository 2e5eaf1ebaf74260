"""A task hint reaches `MixLLMDecisionModel`'s route: through the agent's config when it is the
classifier of ``ModelRouterMiddleware`` (sync and async), or as ``task=`` when it is asked
directly; never the child model that answers."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from langchain_core.decisions import Choice
from langchain_helpers import KwargsChild

from mixllm_core import ConfigError, MixLLMRouter
from mixllm_core.testing import HashingEncoder
from mixllm_langchain import MixLLMDecisionModel
from mixllm_langchain.testing import ScriptedChatModel
from tests.conftest import HINT_CHOICES, HINT_TEXT, hint_router


@pytest.fixture(autouse=True)
def _beta_middleware_warns() -> Iterator[None]:
    from langchain_core._api import LangChainBetaWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LangChainBetaWarning)
        yield


@pytest.fixture(scope="module")
def router() -> MixLLMRouter:
    return hint_router()


def _classifier(router: MixLLMRouter) -> MixLLMDecisionModel:
    return MixLLMDecisionModel(router=router, lam=1.0, alpha=0.0)


def _request(router: MixLLMRouter, text: str = HINT_TEXT) -> Any:
    question = Choice(instructions="Which model?", criteria={n: f"{n} model" for n in router.llms})
    return {"state": text, "questions": {"route": question}}


def _agent(classifier: MixLLMDecisionModel, llms: list[str]) -> Any:
    from langchain.agents import create_agent
    from langchain.agents.middleware import ModelChoice, ModelRouterMiddleware

    children = {n: KwargsChild(model_name=n) for n in llms}
    middleware = ModelRouterMiddleware(
        choices={n: ModelChoice(model=m, criteria=f"{n} model") for n, m in children.items()},
        instructions="Choose the least costly model suited to the task.",
        classifier=classifier,
    )
    agent = create_agent(model=ScriptedChatModel(model_name="default"), middleware=[middleware])
    agent.children = children  # for the tests: which child was called, with what
    return agent


def _config(task: str | None) -> dict[str, Any]:
    return {} if task is None else {"configurable": {"mixllm_task": task}}


def test_the_agents_config_carries_the_hint_to_the_route(router: MixLLMRouter) -> None:
    agent = _agent(_classifier(router), list(router.llms))
    for task, llm in HINT_CHOICES.items():
        state = agent.invoke({"messages": [("user", HINT_TEXT)]}, config=_config(task))
        assert state["model_route"].choice == llm
        assert [m.response_metadata["model_name"] for m in state["messages"] if m.type == "ai"] == [
            llm
        ]
    seen = [kw for child in agent.children.values() for kw in child.seen]
    assert len(seen) == len(HINT_CHOICES)  # one answer per run, from the chosen child
    assert not any("task" in kw or "mixllm_task" in kw for kw in seen)


async def test_an_async_agent_passes_the_hint_too(router: MixLLMRouter) -> None:
    agent = _agent(_classifier(router), list(router.llms))
    for task, llm in HINT_CHOICES.items():
        state = await agent.ainvoke({"messages": [("user", HINT_TEXT)]}, config=_config(task))
        assert state["model_route"].choice == llm


async def test_a_direct_call_takes_task_and_bind(router: MixLLMRouter) -> None:
    classifier, request = _classifier(router), _request(router)
    for task, llm in HINT_CHOICES.items():
        assert classifier.invoke(request, task=task).choices["route"].choice == llm
        answer = (await classifier.ainvoke(request, task=task)).choices["route"]
        assert answer.choice == llm
        bound = classifier.bind(**({} if task is None else {"task": task}))
        assert bound.invoke(request).choices["route"].choice == llm
        assert classifier.invoke(request, config=_config(task)).choices["route"].choice == llm
    # task= wins over the config's hint
    answer = classifier.invoke(request, config=_config("math"), task="code").choices["route"]
    assert answer.choice == HINT_CHOICES["code"]


def test_the_log_holds_the_features_the_hint_gave(router: MixLLMRouter) -> None:
    answer = _classifier(router).invoke(_request(router), task="math").choices["route"]
    logged = router.log.get_decision(answer.decision_id)
    assert logged is not None
    assert np.array_equal(logged.x, router.features([HINT_TEXT], tasks=["math"])[0][0])


def test_the_route_refuses_the_hints_it_refuses(router: MixLLMRouter) -> None:
    classifier, request = _classifier(router), _request(router)
    with pytest.raises(ConfigError, match=r"Unknown task 'poetry'.*\['code', 'logic'"):
        classifier.invoke(request, task="poetry")
    with pytest.raises(ConfigError, match=r"Unknown task 'poetry'"):
        _agent(classifier, list(router.llms)).invoke(
            {"messages": [("user", HINT_TEXT)]}, config=_config("poetry")
        )
    with pytest.raises(ConfigError, match="task must be a task name \\(str\\) or None, got 3"):
        classifier.invoke(request, task=3)  # type: ignore[arg-type]
    cold = MixLLMDecisionModel(encoder=HashingEncoder())  # a cold-start router: no task features
    question = Choice(instructions="Which?", criteria={"small": "chat", "large": "math"})
    with pytest.raises(ConfigError, match="needs an encoder with task features"):
        cold.invoke({"state": HINT_TEXT, "questions": {"route": question}}, task="math")
