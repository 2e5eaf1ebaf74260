"""Task hints at routing time: a caller who knows a query's task replaces the tagger's guess by
the one-hot of that task (synthetic data, hashing encoder)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import numpy as np
import pytest

from mixllm_core import ConfigError, Dispatcher, LLMSpec, MixLLMRouter
from mixllm_core.data import RoutingData
from mixllm_core.encoders import TaggedEncoder
from mixllm_core.testing import HashingEncoder
from tests.conftest import specialist_of, specialist_world

LAM = 3.0


def _router(train: RoutingData, *, tag_weight: float = 1.0) -> MixLLMRouter:
    enc = TaggedEncoder(HashingEncoder(), tag_weight=tag_weight, fit_with_router=True, seed=0)
    return MixLLMRouter(encoder=enc, seed=0).fit(train)


@pytest.fixture(scope="module")
def split() -> tuple[RoutingData, RoutingData]:
    return specialist_world(300).train_test_split(seed=0)


@pytest.fixture(scope="module")
def router(split: tuple[RoutingData, RoutingData]) -> MixLLMRouter:
    return _router(split[0])


def _tasks(data: RoutingData) -> list[str]:
    assert data.tasks is not None  # the specialist world has tasks
    return list(data.tasks)


def test_a_hint_sets_the_tag_part_to_the_scaled_one_hot_and_nothing_else(
    split: tuple[RoutingData, RoutingData],
) -> None:
    _, test = split
    router = _router(split[0], tag_weight=0.5)
    names = router.encoder.task_names()  # type: ignore[attr-defined]
    assert names == ["code", "writing"]
    tasks = _tasks(test)
    X, F = router.features(test.queries)
    Xh, Fh = router.features(test.queries, tasks=tasks)
    k = len(names)
    assert np.array_equal(Xh[:, :-k], X[:, :-k])  # the base embedding is untouched
    one_hot = np.array([[t == g for g in names] for t in tasks], dtype=np.float32)
    assert np.array_equal(Xh[:, -k:], 0.5 * one_hot)
    assert not np.array_equal(X[:, -k:], Xh[:, -k:])  # the tagger's memberships were soft
    assert Fh.shape == F.shape


def test_no_hint_routes_bit_for_bit_as_before(split: tuple[RoutingData, RoutingData]) -> None:
    train, test = split
    a, b = _router(train), _router(train)
    queries = test.queries[:20]
    X, F = a.features(queries)
    for tasks in (None, [None] * len(queries)):
        Xn, Fn = a.features(queries, tasks=tasks)
        assert np.array_equal(X, Xn) and np.array_equal(F, Fn)
    plain = a.route_batch(queries, lam=LAM)
    nones = b.route_batch(queries, lam=LAM, tasks=[None] * len(queries))
    assert [d.llm for d in plain] == [d.llm for d in nones]
    assert [d.candidates for d in plain] == [d.candidates for d in nones]
    assert a.route(queries[0], lam=LAM).candidates == b.route(queries[0], lam=LAM).candidates
    # a row without a hint in a hinted batch is the same row as without any hint
    mixed, _ = a.features(queries[:2], tasks=[_tasks(test)[0], None])
    assert np.array_equal(mixed[1], a.features(queries[:2])[0][1])


def test_the_hint_fixes_the_choice_where_the_tagger_was_wrong(
    router: MixLLMRouter, split: tuple[RoutingData, RoutingData]
) -> None:
    _, test = split
    guesses = router.encoder.tags(test.queries)  # type: ignore[attr-defined]
    wrong = [i for i, (g, t) in enumerate(zip(guesses, _tasks(test))) if g[0] != t]
    assert len(wrong) >= 3  # the hashing tagger misses some (9% of this split)
    queries = [test.queries[i] for i in wrong]
    truth = [specialist_of(_tasks(test)[i]) for i in wrong]
    guessed = [d.llm for d in router.route_batch(queries, lam=LAM)]
    hinted = [
        d.llm for d in router.route_batch(queries, lam=LAM, tasks=[_tasks(test)[i] for i in wrong])
    ]
    assert hinted == truth  # every one goes to its task's specialist
    assert sum(g == t for g, t in zip(guessed, truth)) < len(truth)  # without it, not all


def test_a_hint_steers_a_query_the_tagger_cannot_place(router: MixLLMRouter) -> None:
    for text in ("Hello there", "Please help me with this"):
        for task in ("code", "writing"):
            assert router.route(text, lam=LAM, task=task).llm == specialist_of(task)


def test_the_log_holds_the_features_the_hint_gave(
    router: MixLLMRouter, split: tuple[RoutingData, RoutingData]
) -> None:
    _, test = split
    queries, tasks = test.queries[:6], _tasks(test)[:6]
    decisions = router.route_batch(queries, lam=LAM, tasks=tasks)
    X, _ = router.features(queries, tasks=tasks)
    for i, d in enumerate(decisions):
        logged = router.log.get_decision(d.decision_id)
        assert logged is not None and np.array_equal(logged.x, X[i])
    one = router.route(queries[0], lam=LAM, task="writing")
    logged = router.log.get_decision(one.decision_id)
    assert logged is not None
    assert np.array_equal(logged.x, router.features(queries[:1], tasks=["writing"])[0][0])


def test_an_unknown_task_names_the_value_and_the_known_ones(router: MixLLMRouter) -> None:
    with pytest.raises(ConfigError, match=r"Unknown task 'poetry'.*\['code', 'writing'\]"):
        router.route("Write a poem", task="poetry")
    with pytest.raises(ConfigError, match="Unknown task 'mathx'"):
        router.route_batch(["a", "b"], tasks=[None, "mathx"])


def test_malformed_hints_are_refused(router: MixLLMRouter) -> None:
    with pytest.raises(ConfigError, match="one task \\(or None\\) per query: 1 for 2 queries"):
        router.route_batch(["a", "b"], tasks=["code"])
    with pytest.raises(ConfigError, match="got 'code'"):
        router.route_batch(["a"], tasks="code")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"tasks\[1\] must be a task name \(str\) or None, got 3"):
        router.route_batch(["a", "b"], tasks=["code", 3])  # type: ignore[list-item]
    with pytest.raises(ConfigError, match="task must be a task name \\(str\\) or None, got 3"):
        router.route("a", task=3)  # type: ignore[arg-type]


def test_a_router_without_task_features_refuses_a_hint(
    split: tuple[RoutingData, RoutingData],
) -> None:
    train, _ = split
    plain = MixLLMRouter(encoder=HashingEncoder(), seed=0).fit(train)
    with pytest.raises(ConfigError, match="needs an encoder with task features.*HashingEncoder"):
        plain.route("a", task="code")
    unfitted = MixLLMRouter(
        [LLMSpec("a"), LLMSpec("b")], encoder=TaggedEncoder(HashingEncoder(), fit_with_router=True)
    )
    with pytest.raises(ConfigError, match="none until it is fitted"):
        unfitted.route("a", task="code")
    assert unfitted.route("a", task=None).llm in ("a", "b")  # no hint: routes as before
    adapter = TaggedEncoder(HashingEncoder(), mode="adapter", fit_with_router=True)
    with_adapter = MixLLMRouter([LLMSpec("a"), LLMSpec("b")], encoder=adapter)
    with pytest.raises(ConfigError, match="mode='adapter' has none"):
        with_adapter.route("a", task="code")


def _echo(name: str, decision: object) -> str:
    return name


async def _aecho(name: str, decision: object) -> str:
    return name


class _RecordingEncoder(TaggedEncoder):
    """A tagged encoder that records the size of every hinted batch it encodes."""

    hinted: list[int]

    def encode(
        self,
        texts: Sequence[str],
        *,
        show_progress: bool = False,
        tasks: Sequence[str | None] | None = None,
    ) -> np.ndarray:
        if tasks is not None:
            self.hinted.append(len(texts))
        return super().encode(texts, show_progress=show_progress, tasks=tasks)


def test_the_dispatcher_passes_the_hint_to_the_router(
    split: tuple[RoutingData, RoutingData],
) -> None:
    enc = _RecordingEncoder(HashingEncoder(), fit_with_router=True, seed=0)
    router = MixLLMRouter(encoder=enc, seed=0).fit(split[0])
    recorder = router.encoder
    assert isinstance(recorder, _RecordingEncoder)
    recorder.hinted = []
    text = "Hello there"
    dispatcher = Dispatcher(router)
    for task in ("code", "writing"):
        done = dispatcher.call(text, _echo, lam=LAM, task=task)
        assert done.value == specialist_of(task)
    assert recorder.hinted == [1, 1]

    async def main() -> list[str]:  # micro-batched: one route_batch per hint
        calls = [dispatcher.acall(text, _aecho, lam=LAM, task=t) for t in ("code", "writing") * 4]
        return [d.value for d in await asyncio.gather(*calls)]

    recorder.hinted = []
    assert asyncio.run(main()) == [specialist_of(t) for t in ("code", "writing") * 4]
    assert recorder.hinted == [4, 4]
