"""``predict(queries, tasks=...)``: the task hint route_batch takes, for the predictions alone
(synthetic data, hashing encoder)."""

from __future__ import annotations

import numpy as np
import pytest

from mixllm_core import ConfigError, MixLLMRouter
from mixllm_core.data import RoutingData
from mixllm_core.encoders import TaggedEncoder
from mixllm_core.memory import query_key
from mixllm_core.testing import HashingEncoder
from tests.conftest import specialist_of, specialist_world

LAM = 3.0


@pytest.fixture(scope="module")
def split() -> tuple[RoutingData, RoutingData]:
    return specialist_world(300).train_test_split(seed=0)


@pytest.fixture(scope="module")
def router(split: tuple[RoutingData, RoutingData]) -> MixLLMRouter:
    enc = TaggedEncoder(HashingEncoder(), fit_with_router=True, seed=0)
    return MixLLMRouter(encoder=enc, seed=0).fit(split[0])


def test_predict_with_hints_is_what_route_batch_decides_from(
    router: MixLLMRouter, split: tuple[RoutingData, RoutingData]
) -> None:
    _, test = split
    assert test.tasks is not None
    queries, tasks = test.queries[:20], list(test.tasks[:20])
    plain, hinted = router.predict(queries), router.predict(queries, tasks=tasks)
    assert not np.array_equal(plain["quality"], hinted["quality"])  # the hint changed something
    X, F = router.features(queries, tasks=tasks)
    names, Q, C, U = router.predict_features(X, F, keys=[query_key(q) for q in queries])
    assert hinted["llms"] == names
    for key, want in (("quality", Q), ("cost", C), ("uncertainty", U)):
        assert np.array_equal(hinted[key], want), key
    decisions = router.route_batch(queries, lam=LAM, tasks=tasks)
    for i, d in enumerate(decisions):  # the decision reads the hinted predictions
        assert d.chosen.quality == pytest.approx(Q[i, names.index(d.llm)])


def test_a_hint_raises_the_specialists_predicted_quality(router: MixLLMRouter) -> None:
    texts = ["Hello there", "Please help me with this"]
    for task in ("code", "writing"):
        P = router.predict(texts, tasks=[task] * len(texts))
        llms = list(P["llms"])
        quality = np.asarray(P["quality"])
        best = [llms[j] for j in quality.argmax(axis=1)]
        assert best == [specialist_of(task)] * len(texts)


def test_no_hint_predicts_bit_for_bit_as_before(
    router: MixLLMRouter, split: tuple[RoutingData, RoutingData]
) -> None:
    queries = split[1].queries[:10]
    plain = router.predict(queries)
    for tasks in (None, [None] * len(queries)):
        again = router.predict(queries, tasks=tasks)
        for key in ("quality", "cost", "uncertainty"):
            assert np.array_equal(plain[key], again[key]), key


def test_predict_refuses_the_hints_route_refuses(
    router: MixLLMRouter, split: tuple[RoutingData, RoutingData]
) -> None:
    with pytest.raises(ConfigError, match=r"Unknown task 'poetry'.*\['code', 'writing'\]"):
        router.predict(["a", "b"], tasks=[None, "poetry"])
    with pytest.raises(ConfigError, match="one task \\(or None\\) per query: 1 for 2 queries"):
        router.predict(["a", "b"], tasks=["code"])
    with pytest.raises(ConfigError, match="got 'code'"):
        router.predict(["a"], tasks="code")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"tasks\[1\] must be a task name \(str\) or None, got 3"):
        router.predict(["a", "b"], tasks=["code", 3])  # type: ignore[list-item]
    plain = MixLLMRouter(encoder=HashingEncoder(), seed=0).fit(split[0])
    with pytest.raises(ConfigError, match="needs an encoder with task features.*HashingEncoder"):
        plain.predict(["a"], tasks=["code"])
