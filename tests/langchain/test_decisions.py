"""`MixLLMDecisionModel` as the classifier of LangChain's ``ModelRouterMiddleware``.

An agent (``create_agent``) over two scripted chat models is routed offline, sync and async; the
criteria prior sends a message to the label whose criteria it reads like; feedback on the agent
run (its output state, its run id, a collect() block) reaches the router and moves the chosen
label's predicted quality the right way, until the decisions follow it.
"""

from __future__ import annotations

import uuid
import warnings
from collections.abc import Iterator
from typing import Any

import pytest
from langchain_core.decisions import Choice, Noul

from mixllm_core import ConfigError, FeedbackError
from mixllm_core.factory import build_router
from mixllm_core.prices import price_of
from mixllm_core.testing import HashingEncoder
from mixllm_langchain import MixLLMDecisionModel
from mixllm_langchain.decisions import MixLLMChoiceAnswer
from mixllm_langchain.testing import ScriptedChatModel

CRITERIA = {
    "small": "greetings, small talk and short chat",
    "large": "math proofs, hard code and long analysis",
}
CHATTY = "Hi! greetings, some small talk and a short chat please"
MATHY = "Write the math proofs and the hard code for this analysis"
INSTRUCTIONS = "Choose the least costly model suited to the task."


@pytest.fixture(autouse=True)
def _beta_middleware_warns() -> Iterator[None]:
    from langchain_core._api import LangChainBetaWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LangChainBetaWarning)
        yield


def _add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


def _agent(classifier: MixLLMDecisionModel, tools: list[Any] | None = None) -> Any:
    """An agent whose model calls go to ``small`` or ``large``, chosen by ``classifier``."""
    from langchain.agents import create_agent
    from langchain.agents.middleware import ModelChoice, ModelRouterMiddleware

    children = {n: ScriptedChatModel(model_name=n) for n in CRITERIA}
    middleware = ModelRouterMiddleware(
        choices={n: ModelChoice(model=m, criteria=CRITERIA[n]) for n, m in children.items()},
        instructions=INSTRUCTIONS,
        classifier=classifier,
    )
    agent = create_agent(
        model=ScriptedChatModel(model_name="default"), tools=tools or [], middleware=[middleware]
    )
    agent.children = children  # for the tests: which child was called
    return agent


def _ask(text: str) -> dict[str, Any]:
    return {"messages": [("user", text)]}


def _quality(classifier: MixLLMDecisionModel, label: str, text: str) -> float:
    assert classifier.router is not None
    predicted = classifier.router.predict([text])
    return float(predicted["quality"][0, list(predicted["llms"]).index(label)])


def _answered_by(state: dict[str, Any]) -> list[str]:
    return [m.response_metadata["model_name"] for m in state["messages"] if m.type == "ai"]


# ---------------------------------------------------------------------- routing an agent


def test_an_agent_is_routed_by_the_criteria_prior() -> None:
    classifier = MixLLMDecisionModel(encoder=HashingEncoder())
    agent = _agent(classifier, tools=[_add])
    chatty, mathy = agent.invoke(_ask(CHATTY)), agent.invoke(_ask(f"{MATHY}: add 2 and 3"))
    for state, label in ((chatty, "small"), (mathy, "large")):
        route = state["model_route"]
        assert isinstance(route, MixLLMChoiceAnswer) and route.choice == label
        assert sum(route.probabilities.values()) == pytest.approx(1.0)
        assert route.confidence == max(route.probabilities.values()) > 0.5
    assert _answered_by(chatty) == ["small", "small"]  # the tool call, then the answer
    assert _answered_by(mathy) == ["large", "large"]
    assert len(agent.children["small"].calls) == len(agent.children["large"].calls) == 2
    assert sorted(classifier.router.llms) == ["large", "small"]


def test_it_works_cold_with_no_arguments() -> None:
    classifier = MixLLMDecisionModel()  # the default encoder, a cold router built on first use
    state = _agent(classifier).invoke(_ask(MATHY))
    assert state["model_route"].choice in CRITERIA
    assert _answered_by(state) == [state["model_route"].choice]
    assert classifier.router is not None and sorted(classifier.router.llms) == ["large", "small"]


async def test_an_async_agent_is_routed_and_its_run_id_takes_feedback() -> None:
    classifier = MixLLMDecisionModel(encoder=HashingEncoder())
    agent, run_id = _agent(classifier), uuid.uuid4()
    state = await agent.ainvoke(_ask(MATHY), config={"run_id": run_id})
    assert state["model_route"].choice == "large" and _answered_by(state) == ["large"]
    before = _quality(classifier, "large", MATHY)
    (result,) = classifier.feedback(run_id, thumbs=False)
    assert result.llm == "large" and result.applied
    assert _quality(classifier, "large", MATHY) < before - 0.05


def test_the_prior_raises_the_label_whose_criteria_the_message_reads_like() -> None:
    def p_large(prior: float) -> float:
        classifier = MixLLMDecisionModel(encoder=HashingEncoder(), prior=prior)
        return _agent(classifier).invoke(_ask(MATHY))["model_route"].probabilities["large"]

    assert p_large(0.2) > p_large(0.0) + 0.1
    classifier = MixLLMDecisionModel(encoder=HashingEncoder())
    _agent(classifier).invoke(_ask(CHATTY))
    assert classifier.router is not None
    assert len(list(classifier.router.log.feedback(since_seq=0))) == 4  # 2 heads x 2 criteria


def test_prices_and_lam_weigh_cost() -> None:
    classifier = MixLLMDecisionModel(
        encoder=HashingEncoder(), prices={"small": (0.1, 0.4), "large": (5.0, 15.0)}, lam=0.2
    )
    assert _agent(classifier).invoke(_ask(MATHY))["model_route"].choice == "small"


# ---------------------------------------------------------------------- feedback on the run


def test_feedback_on_the_run_id_moves_the_chosen_label() -> None:
    classifier = MixLLMDecisionModel(encoder=HashingEncoder())
    agent = _agent(classifier)
    down, up = uuid.uuid4(), uuid.uuid4()
    agent.invoke(_ask(CHATTY), config={"run_id": down})
    before = _quality(classifier, "small", CHATTY)
    assert [r.llm for r in classifier.feedback(down, thumbs=False)] == ["small"]
    lowered = _quality(classifier, "small", CHATTY)
    assert lowered < before - 0.05
    agent.invoke(_ask(MATHY), config={"run_id": up})
    before = _quality(classifier, "large", MATHY)
    assert [r.llm for r in classifier.feedback(str(up), thumbs=True)] == ["large"]
    assert _quality(classifier, "large", MATHY) > before + 0.05


def test_feedback_on_the_output_state_the_answer_or_the_response() -> None:
    classifier = MixLLMDecisionModel(encoder=HashingEncoder())
    agent = _agent(classifier)
    state = agent.invoke(_ask(CHATTY))
    assert [r.llm for r in classifier.feedback(state, score=0.9)] == ["small"]
    with pytest.raises(FeedbackError, match="already received feedback"):
        classifier.feedback(state["model_route"], thumbs=True)
    question = Choice(instructions=INSTRUCTIONS, criteria=CRITERIA)
    run_id = uuid.uuid4()
    response = classifier.invoke(
        {"state": MATHY, "questions": {"a": question, "b": question}}, config={"run_id": run_id}
    )
    assert [a.choice for a in response.choices.values()] == ["large", "large"]
    assert response.request_id is None  # two decisions
    assert classifier.decision_ids(run_id) == classifier.decision_ids(response)
    assert [r.applied for r in classifier.feedback(response, thumbs=True)] == [True, True]


def test_collect_gathers_the_decisions_of_a_block() -> None:
    classifier = MixLLMDecisionModel(encoder=HashingEncoder())
    with classifier.collect() as answer:
        state = _agent(classifier).invoke(_ask(MATHY))
    assert answer.decision_ids == [state["model_route"].decision_id]
    assert [r.llm for r in classifier.feedback(answer, thumbs=True)] == ["large"]


def test_feedback_steers_later_runs_away_from_a_bad_label() -> None:
    classifier = MixLLMDecisionModel(encoder=HashingEncoder())
    agent = _agent(classifier)
    choices = []
    for i in range(8):
        run_id = uuid.uuid4()
        state = agent.invoke(_ask(f"{CHATTY} #{i}"), config={"run_id": run_id})
        choices.append(state["model_route"].choice)
        classifier.feedback(run_id, thumbs=state["model_route"].choice == "large")
    assert choices[0] == "small"  # the prior's pick ...
    assert choices[-3:] == ["large"] * 3  # ... until feedback said otherwise


def test_unknown_feedback_targets_say_what_is_accepted() -> None:
    classifier = MixLLMDecisionModel(encoder=HashingEncoder())
    for target in (uuid.uuid4(), "nope", {"messages": []}, 3):
        with pytest.raises(FeedbackError, match=r"run id the agent was invoked with.*collect"):
            classifier.feedback(target, thumbs=True)


# ---------------------------------------------------------------------- the pool and its checks


def test_labels_asked_later_join_and_labels_not_asked_are_never_chosen() -> None:
    classifier = MixLLMDecisionModel(encoder=HashingEncoder())
    two = Choice(instructions=INSTRUCTIONS, criteria=CRITERIA)
    classifier.invoke({"state": CHATTY, "questions": {"route": two}})
    three = Choice(instructions=INSTRUCTIONS, criteria={**CRITERIA, "poet": "poems and rhymes"})
    answer = classifier.invoke(
        {"state": "Write poems and rhymes", "questions": {"route": three}}
    ).choices["route"]
    assert answer.choice == "poet" and set(answer.probabilities) == {"small", "large", "poet"}
    only = Choice(instructions=INSTRUCTIONS, criteria={"small": CRITERIA["small"], "poet": None})
    answer = classifier.invoke({"state": MATHY, "questions": {"route": only}}).choices["route"]
    assert set(answer.probabilities) == {"small", "poet"} and answer.choice in {"small", "poet"}


def test_provider_model_labels_get_their_list_price_when_asked_first_or_later() -> None:
    mini, haiku = "openai:gpt-4o-mini", "anthropic:claude-3-5-haiku-latest"
    classifier = MixLLMDecisionModel(encoder=HashingEncoder(), prices={"poet": (1.0, 2.0)})
    first = Choice(instructions=INSTRUCTIONS, criteria={mini: CRITERIA["small"], "big": None})
    classifier.invoke({"state": CHATTY, "questions": {"route": first}})
    later = Choice(
        instructions=INSTRUCTIONS,
        criteria={mini: CRITERIA["small"], haiku: CRITERIA["large"], "poet": "poems"},
    )
    answer = classifier.invoke({"state": MATHY, "questions": {"route": later}}).choices["route"]
    assert set(answer.probabilities) == {mini, haiku, "poet"}
    assert classifier.router is not None
    specs = classifier.router.specs
    for label in (mini, haiku):  # the second joined through add_llm
        price = (specs[label].input_price, specs[label].output_price)
        assert price == price_of(label) and 0 < price[0] <= price[1]
    assert (specs["poet"].input_price, specs["poet"].output_price) == (1.0, 2.0)
    assert (specs["big"].input_price, specs["big"].output_price) == (0.0, 0.0)
    unknown = Choice(
        instructions=INSTRUCTIONS, criteria={mini: None, "openai:gpt-9-imaginary": None}
    )
    with pytest.raises(ConfigError, match=r"No price is known for 'openai:gpt-9-imaginary'"):
        classifier.invoke({"state": MATHY, "questions": {"route": unknown}})


def test_a_given_router_is_used_as_it_is() -> None:
    router = build_router(["small", "large"], encoder=HashingEncoder())
    classifier = MixLLMDecisionModel(router=router, lam=3.0)
    question = Choice(instructions=INSTRUCTIONS, criteria=CRITERIA)
    response = classifier.invoke({"state": MATHY, "questions": {"route": question}})
    assert (
        classifier.router is router and response.request_id == response.choices["route"].decision_id
    )
    assert list(router.log.feedback(since_seq=0)) == []  # no prior written into a given router
    extra = Choice(instructions=INSTRUCTIONS, criteria={**CRITERIA, "poet": None})
    with pytest.raises(ConfigError, match=r"\['poet'\] are not LLMs of the router"):
        classifier.invoke({"state": MATHY, "questions": {"route": extra}})


def test_bad_arguments_and_questions_are_refused() -> None:
    router = build_router(["small", "large"], encoder=HashingEncoder())
    # pydantic wraps the ConfigError of a validator in its ValidationError (a ValueError)
    with pytest.raises(ValueError, match="prices configure a cold-start router"):
        MixLLMDecisionModel(router=router, prices={"small": (1, 1)})
    with pytest.raises(ValueError, match="temperature must be a number > 0"):
        MixLLMDecisionModel(temperature=0)
    with pytest.raises(ValueError, match=r"prior must be in \[0, 0.5\]"):
        MixLLMDecisionModel(prior=2.0)
    classifier = MixLLMDecisionModel(encoder=HashingEncoder())
    with pytest.raises(ConfigError, match="answers Choice questions.*got a Noul"):
        classifier.invoke({"state": MATHY, "questions": {"q": Noul(instructions="Math?")}})
