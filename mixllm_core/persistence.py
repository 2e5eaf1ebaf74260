"""Saving and loading a router without pickle.

Layout of a saved router directory::

    router.json      configuration, pool, policy, encoder config, per-LLM predictor metadata
    quality/NAME.skops   fitted scikit-learn estimators (skops; only scikit-learn/numpy types load)
    online.npz       the online heads' A⁻¹ and b (allow_pickle=False)
    train.npz        the offline training representations and qualities (for ``refit``)
    encoder/         learned encoder state, for encoders that have one (``TaggedEncoder``,
                     the corpus part of ``StaticEncoder``)
    manifest.json    sha256 of every file above; checked before anything is read

A missing, truncated or modified file raises :class:`CorruptStateError` naming the file.
Writes go to a temporary directory first and replace the target at the end, so a failure half-way
leaves the previous save intact.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .decision import DecisionPolicy
from .encoders import QueryEncoder, StatefulEncoder, encoder_from_config
from .errors import CorruptStateError
from .estimator_io import dump_estimator, load_estimator
from .latency import LatencyTracker
from .online import OnlineHeads
from .predictors import CostPredictor, QualityPredictor, _fingerprint
from .spec import LLMSpec

if TYPE_CHECKING:
    from .router import MixLLMRouter

__all__ = ["load_router", "save_router"]

FORMAT_VERSION = 1


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _safe_name(i: int) -> str:
    return f"llm{i:03d}.skops"


def _write(router: MixLLMRouter, out: Path) -> None:
    (out / "quality").mkdir()
    llms: list[dict[str, Any]] = []
    for i, name in enumerate(router.specs):
        q, c = router._quality[name], router._cost[name]
        entry: dict[str, Any] = {
            "spec": router.specs[name].to_dict(),
            "quality": {
                "kind": q.kind,
                "params": q.params,
                "seed": q.seed,
                "mean": q.mean_,
                "n_samples": q.n_samples_,
                "n_features": q.n_features_in_,
                "file": None,
            },
            "cost": {
                "mode": c.mode,
                "input_price": c.input_price,
                "output_price": c.output_price,
                "output_tokens": c.output_tokens,
                "alpha": c.alpha,
                "coef": np.asarray(c.coef_).tolist(),
                "intercept": float(c.intercept_),
            },
        }
        if q.estimator_ is not None:
            entry["quality"]["file"] = f"quality/{_safe_name(i)}"
            dump_estimator(q.estimator_, out / entry["quality"]["file"])
        llms.append(entry)
    heads = router._heads
    arrays: dict[str, np.ndarray] = {}
    if heads is not None:
        idx = [heads.names.index(n) for n in router.specs]
        arrays = {"A_inv": heads.A_inv[idx], "b": heads.b[idx], "n_updates": heads.n_updates[idx]}
    np.savez(out / "online.npz", **arrays)  # type: ignore[arg-type]
    # offline training sets (for refit): unique X matrices once, y per LLM
    train_arrays: dict[str, np.ndarray] = {}
    x_ids: dict[int, int] = {}
    train_map: dict[str, list[int]] = {}
    for i, name in enumerate(router.specs):
        if name in router._train:
            X, y = router._train[name]
            k = x_ids.setdefault(id(X), len(x_ids))
            train_arrays[f"X_{k}"] = X
            train_arrays[f"y_{i}"] = y
            train_map[name] = [k, i]
    np.savez(out / "train.npz", **train_arrays)  # type: ignore[arg-type]
    config = {
        "format_version": FORMAT_VERSION,
        "llms": llms,
        "policy": router.policy.to_dict(),
        "encoder": router.encoder.get_config(),
        "quality_model": router.quality_model,
        "quality_params": router.quality_params,
        "seed": router.seed,
        "online_ridge": router.online_ridge,
        "online_head_ridge": None if heads is None else heads.ridge,
        "online_dim": None if heads is None else heads.dim,
        "c_ref": router.c_ref_,
        "train": train_map,
        "feedback_seq": router._feedback_seq,
        "extra": router._extra_state(),
    }
    (out / "router.json").write_text(json.dumps(config, indent=1))
    if isinstance(router.encoder, StatefulEncoder):  # TaggedEncoder, StaticEncoder's corpus part
        router.encoder.save_state(out / "encoder")
    files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    manifest = {"format_version": FORMAT_VERSION, "files": {f: _sha256(out / f) for f in files}}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1))


def save_router(router: MixLLMRouter, directory: Path) -> Path:
    """Write ``router`` to ``directory`` atomically (see the module docstring)."""
    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".mixllm-save-", dir=directory.parent))
    try:
        with router._lock:
            _write(router, tmp)
        if directory.exists():
            old = directory.with_name(directory.name + ".old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(directory, old)
            os.replace(tmp, directory)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, directory)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return directory


def _verify(directory: Path) -> dict[str, Any]:
    manifest_path = directory / "manifest.json"
    if not manifest_path.is_file():
        raise CorruptStateError(
            f"{str(directory)!r} is not a saved router: manifest.json is missing."
        )
    try:
        manifest = json.loads(manifest_path.read_text())
        files = dict(manifest["files"])
    except (ValueError, KeyError, TypeError) as exc:
        raise CorruptStateError(f"{str(manifest_path)!r} is unreadable: {exc}") from exc
    for rel, digest in files.items():
        path = directory / rel
        if ".." in Path(rel).parts or not path.is_file():
            raise CorruptStateError(
                f"Saved router file {rel!r} is missing from {str(directory)!r}."
            )
        if _sha256(path) != digest:
            raise CorruptStateError(
                f"Saved router file {rel!r} in {str(directory)!r} does not match its checksum: "
                "it was modified or truncated."
            )
    return files


def load_router(
    directory: Path,
    *,
    encoder: QueryEncoder | None = None,
    tracker: LatencyTracker | None = None,
    log: Any = None,
) -> MixLLMRouter:
    """Load a router written by :func:`save_router`, verifying every file first."""
    from .router import MixLLMRouter

    directory = Path(directory)
    _verify(directory)
    try:
        config = json.loads((directory / "router.json").read_text())
        if config.get("format_version") != FORMAT_VERSION:
            raise CorruptStateError(
                f"Saved router format {config.get('format_version')!r} is not supported; "
                f"this mixllm reads format {FORMAT_VERSION}."
            )
        router = MixLLMRouter(
            [LLMSpec.from_dict(e["spec"]) for e in config["llms"]],
            encoder=encoder
            if encoder is not None
            else encoder_from_config(config["encoder"], directory / "encoder"),
            quality_model=config["quality_model"],
            quality_params=config["quality_params"],
            policy=DecisionPolicy(**config["policy"]),
            seed=config["seed"],
            online_ridge=config["online_ridge"],
            tracker=tracker,
            log=log,
        )
        router.c_ref_ = config["c_ref"]
        router._feedback_seq = int(config.get("feedback_seq", 0))
        with np.load(directory / "train.npz", allow_pickle=False) as f:
            shared = {k: f[f"X_{k}"] for k, _ in config.get("train", {}).values()}
            for name, (k, i) in config.get("train", {}).items():
                router._train[name] = (shared[k], f[f"y_{i}"].copy())
        for entry in config["llms"]:
            name, qc, cc = entry["spec"]["name"], entry["quality"], entry["cost"]
            params = {k: (tuple(v) if isinstance(v, list) else v) for k, v in qc["params"].items()}
            q = QualityPredictor(qc["kind"], seed=qc["seed"], **params)
            q.mean_, q.n_samples_, q.n_features_in_ = qc["mean"], qc["n_samples"], qc["n_features"]
            q.estimator_ = None if qc["file"] is None else load_estimator(directory / qc["file"])
            q.train_fingerprint_ = (
                _fingerprint(np.asarray(q.estimator_._fit_X, dtype=np.float32))
                if q.kind == "knn" and q.estimator_ is not None
                else ""
            )
            c = CostPredictor(
                cc["mode"],
                input_price=cc["input_price"],
                output_price=cc["output_price"],
                output_tokens=cc["output_tokens"],
                alpha=cc["alpha"],
            )
            c.coef_, c.intercept_ = np.asarray(cc["coef"], dtype=float), float(cc["intercept"])
            router._quality[name], router._cost[name] = q, c
        if config["online_dim"] is not None:
            heads = OnlineHeads(int(config["online_dim"]), ridge=config["online_head_ridge"])
            with np.load(directory / "online.npz", allow_pickle=False) as f:
                heads.names = [e["spec"]["name"] for e in config["llms"]]
                heads.A_inv, heads.b = f["A_inv"].copy(), f["b"].copy()
                heads.n_updates = f["n_updates"].copy()
                heads.theta = np.einsum("mde,me->md", heads.A_inv, heads.b)
            router._heads = heads
        router._restore_extra_state(config.get("extra", {}), directory)
        router._bank = None
    except CorruptStateError:
        raise
    except (KeyError, TypeError, ValueError, OSError) as exc:
        raise CorruptStateError(
            f"Saved router in {str(directory)!r} is unreadable: {exc!r}"
        ) from exc
    return router
