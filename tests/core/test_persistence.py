"""The public state API (``get_state`` / ``from_state``), the directory format and signing."""

from __future__ import annotations

import ast
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from mixllm_core import ConfigError, CorruptStateError, LLMSpec, MixLLMRouter, StaticEncoder
from mixllm_core.online import HeadsState, OnlineHeads
from mixllm_core.persistence import read_state, write_state
from mixllm_core.persistence.state import LLMState, RouterState
from mixllm_core.predictors import CostPredictor, QualityPredictor, QualityState
from mixllm_core.testing import HashingEncoder, make_synthetic_world

WORLD = make_synthetic_world(400, seed=4)
QUERIES = WORLD.queries[300:360]


@pytest.fixture(scope="module", params=["linear", "knn"])
def router(request: pytest.FixtureRequest) -> MixLLMRouter:
    router = MixLLMRouter(encoder=HashingEncoder(), quality_model=request.param, seed=0)
    router.fit(WORLD.subset(range(300)))
    for i, q in enumerate(WORLD.queries[300:320]):
        router.feedback(router.route(q, lam=2.0).decision_id, score=float(i % 3 == 0))
    return router


def _same_decisions(a: MixLLMRouter, b: MixLLMRouter) -> None:
    for lam in (0.2, 2.0, 50.0):
        assert [d.llm for d in a.route_batch(QUERIES, lam=lam)] == [
            d.llm for d in b.route_batch(QUERIES, lam=lam)
        ]
    pa, pb = a.predict(QUERIES), b.predict(QUERIES)
    for key in ("quality", "cost", "uncertainty"):
        np.testing.assert_allclose(pa[key], pb[key], rtol=1e-12, atol=1e-12)


def test_from_state_decides_exactly_as_the_router_that_gave_it(router: MixLLMRouter) -> None:
    _same_decisions(router, MixLLMRouter.from_state(router.get_state()))


def test_the_state_is_a_snapshot(router: MixLLMRouter) -> None:
    state = router.get_state()
    assert state.heads is not None
    before = state.heads.A_inv.copy()
    live = MixLLMRouter.from_state(state)
    live.feedback(live.route(QUERIES[0]).decision_id, score=1.0)
    np.testing.assert_array_equal(state.heads.A_inv, before)  # feedback after it: not in it
    X, _ = state.llms[0].train  # type: ignore[misc]
    assert not X.flags.writeable
    assert state.llms[0].train[0] is state.llms[1].train[0]  # type: ignore[index]


def test_a_saved_state_reads_back_and_decides_the_same(
    router: MixLLMRouter, tmp_path: Path
) -> None:
    path = write_state(router.get_state(), tmp_path / "r")
    state = read_state(path)
    assert [llm.name for llm in state.llms] == router.llms
    assert state.feedback_seq == router.get_state().feedback_seq > 0
    assert state.c_ref == router.c_ref_
    _same_decisions(router, MixLLMRouter.from_state(state))


def test_without_the_saved_encoder_the_caller_brings_one(
    router: MixLLMRouter, tmp_path: Path
) -> None:
    state = read_state(router.save(tmp_path / "r"), load_encoder=False)
    assert state.encoder is None
    with pytest.raises(ConfigError, match="pass encoder="):
        MixLLMRouter.from_state(state)
    with pytest.raises(ConfigError, match="carries no encoder"):
        write_state(state, tmp_path / "again")
    _same_decisions(router, MixLLMRouter.from_state(state, encoder=HashingEncoder()))


def test_the_state_validates_itself(router: MixLLMRouter) -> None:
    state = router.get_state()
    heads = state.heads
    assert heads is not None
    bad_a = heads.A_inv.copy()
    bad_a[0, 1, 1] = np.nan
    with pytest.raises(ConfigError, match="A_inv holds NaN"):
        HeadsState(heads.dim, heads.ridge, heads.names, bad_a, heads.b, heads.n_updates)
    with pytest.raises(ConfigError, match=r"shape \(5, 65\) for 5 heads of dim 64"):
        HeadsState(
            heads.dim, heads.ridge, heads.names, heads.A_inv, heads.b[:, :5], heads.n_updates
        )
    with pytest.raises(ConfigError, match="online heads are for"):
        RouterState(**{**_fields(state), "heads": OnlineHeads(64).get_state()})
    llm = state.llms[0]
    from sklearn.linear_model import LinearRegression

    other = LinearRegression().fit(np.zeros((3, 64)), [0.0, 1.0, 0.5])
    with pytest.raises(ConfigError, match="holds a LinearRegression"):
        QualityState(llm.quality.kind, llm.quality.params, 0, 0.5, 3, 64, other)
    narrow = QualityPredictor(llm.quality.kind).fit(np.eye(8)[:6], np.r_[0, 1, 0, 1, 1, 0.0])
    mixed = LLMState(llm.spec, narrow.get_state(), llm.cost, None)
    with pytest.raises(ConfigError, match="disagree on the representation size"):
        RouterState(**{**_fields(state), "llms": (mixed, *state.llms[1:])})
    with pytest.raises(ConfigError, match="c_ref must be None or a finite number >= 0"):
        RouterState(**{**_fields(state), "c_ref": float("inf")})


def _fields(state: RouterState) -> dict[str, object]:
    return {name: getattr(state, name) for name in state.__dataclass_fields__}


def test_predictors_round_trip_their_state() -> None:
    X = np.random.default_rng(0).normal(size=(50, 4))
    q = QualityPredictor("knn", n_neighbors=5).fit(X, (X[:, 0] > 0).astype(float))
    again = QualityPredictor.from_state(q.get_state())
    np.testing.assert_array_equal(again.predict(X), q.predict(X))
    assert again.train_fingerprint_ == q.train_fingerprint_
    c = CostPredictor("regress").fit(np.c_[np.ones(50), X], np.exp(X[:, 1]))
    np.testing.assert_array_equal(
        CostPredictor.from_state(c.get_state()).predict(np.c_[np.ones(50), X]),
        c.predict(np.c_[np.ones(50), X]),
    )


def test_persistence_reads_no_router_internals() -> None:
    """It writes and reads the state the router hands it; it does not import the router."""
    import mixllm_core.persistence as persistence

    source = Path(persistence.__file__).read_text()
    imported = {
        node.module
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.ImportFrom) and node.module
    }
    assert "router" not in imported and "router._" not in source


# ---------------------------------------------------------------------------- signing
def _recompute_manifest(path: Path) -> None:
    manifest = json.loads((path / "manifest.json").read_text())
    manifest["files"] = {
        f: hashlib.sha256((path / f).read_bytes()).hexdigest() for f in manifest["files"]
    }
    (path / "manifest.json").write_text(json.dumps(manifest))


def test_a_signed_router_loads_only_with_its_key_and_unmodified(
    router: MixLLMRouter, tmp_path: Path
) -> None:
    key = b"a secret of the deployment"
    path = router.save(tmp_path / "r", signing_key=key)
    _same_decisions(router, MixLLMRouter.load(path, signing_key=key))
    with pytest.raises(CorruptStateError, match="signature .* does not match"):
        MixLLMRouter.load(path, signing_key=b"another key")
    # an editor who recomputes the manifest gets past the checksums, not past the signature
    config = json.loads((path / "router.json").read_text())
    config["policy"]["lam"] = 1000.0
    (path / "router.json").write_text(json.dumps(config))
    _recompute_manifest(path)
    assert MixLLMRouter.load(path).policy.lam == 1000.0
    with pytest.raises(CorruptStateError, match="signature .* does not match"):
        MixLLMRouter.load(path, signing_key=key)


def test_an_unsigned_router_is_refused_when_a_key_is_given(
    router: MixLLMRouter, tmp_path: Path
) -> None:
    path = router.save(tmp_path / "r")
    with pytest.raises(CorruptStateError, match="is not signed"):
        MixLLMRouter.load(path, signing_key=b"k")
    with pytest.raises(ConfigError, match="signing_key must be non-empty bytes"):
        router.save(tmp_path / "r", signing_key="text")  # type: ignore[arg-type]


# ---------------------------------------------------------------------------- formats
def test_a_router_saved_in_format_1_still_loads(router: MixLLMRouter, tmp_path: Path) -> None:
    path = router.save(tmp_path / "r")
    config = json.loads((path / "router.json").read_text())
    del config["format"], config["encoder_files"]
    config["format_version"] = 1
    (path / "router.json").write_text(json.dumps(config))
    manifest = json.loads((path / "manifest.json").read_text())
    (path / "manifest.json").write_text(
        json.dumps({"format_version": 1, "files": manifest["files"]})
    )
    _recompute_manifest(path)
    _same_decisions(router, MixLLMRouter.load(path))


def test_an_adapted_static_encoder_needs_its_corpus_part(tmp_path: Path) -> None:
    data = make_synthetic_world(200, seed=1)
    specs = [LLMSpec(n) for n in data.llms]
    router = MixLLMRouter(specs, encoder=StaticEncoder(), seed=0).fit(data)
    path = router.save(tmp_path / "r")
    config = json.loads((path / "router.json").read_text())
    assert config["encoder_files"] == ["encoder/static_lsa.npz"]
    (path / "encoder" / "static_lsa.npz").unlink()
    manifest = json.loads((path / "manifest.json").read_text())
    del manifest["files"]["encoder/static_lsa.npz"]
    (path / "manifest.json").write_text(json.dumps(manifest))
    # the manifest is consistent with the files left, but router.json says the part was saved
    with pytest.raises(CorruptStateError, match=r"lacks \['encoder/static_lsa.npz'\]"):
        MixLLMRouter.load(path)
