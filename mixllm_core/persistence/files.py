"""Writing a :class:`~mixllm_core.persistence.state.RouterState` to a directory and reading it back safely.

Layout of a saved router directory::

    router.json      format marker and version, pool, policy, encoder config, the list of
                     encoder state files, per-LLM predictor metadata
    quality/NAME.skops   fitted scikit-learn estimators (skops, exact allow-list of types)
    online.npz       the online heads' A⁻¹, b and update counts (allow_pickle=False)
    train.npz        the offline training representations and qualities (for ``refit``)
    memory.npz       optional: the outcomes observed per query (sha256 keys, sums, counts)
    encoder/         learned encoder state, for encoders that have one (``StatefulEncoder``)
    manifest.sig     optional: HMAC-SHA256 of manifest.json under the caller's signing key
    manifest.json    format marker and the sha256 of every file above; written last

Reading treats the directory as hostile. Nothing is unpickled and nothing outside the directory
is read (the encoder may only name the packaged model); every path must be plain, relative and
resolve inside it; the files must be exactly those router.json implies, each matching its
checksum; archives are checked before numpy or skops opens them; and the state is validated
before a router is built from it. Any failure raises :class:`CorruptStateError`.

The manifest catches accidental damage (a truncated copy, a flipped bit, a missing file); whoever
can edit the files can also recompute it. Against that, sign: ``save(dir, signing_key=key)`` and
``load(dir, signing_key=key)`` refuses a directory whose signature is missing or wrong.

Saving never deletes or renames anything that is not a saved router: the target must be new,
empty, or a router directory holding only its own files. The new router is written completely
into a sibling ``.NAME.mixllm-new-TOKEN`` directory, which then replaces the target by two
renames (the old one moves aside to ``.NAME.mixllm-old-TOKEN`` first, then is deleted). A crash
between the two renames leaves both complete copies beside the missing path: ``load`` then reads
the newest complete one (and changes nothing), and the next save to the path cleans them up.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import logging
import os
import re
import reprlib
import secrets
import shutil
import time
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from ..decision import DecisionPolicy
from ..encoders import (
    OnnxEncoder,
    QueryEncoder,
    SentenceEncoder,
    StatefulEncoder,
    StaticEncoder,
    TaggedEncoder,
    Tagger,
    encoder_from_config,
)
from ..encoders.base import DEFAULT_MODEL
from ..errors import ConfigError, CorruptStateError, MissingDependencyError, MixLLMError
from ..estimator_io import check_archive, dump_estimator, load_estimator
from ..memory import OutcomeMemory
from ..online import HeadsState
from ..predictors import CostState, QualityState
from ..spec import LLMSpec
from .state import STATE_VERSION, LLMState, RouterState

__all__ = ["FORMAT", "read_state", "write_state"]

#: The marker that makes a directory a saved mixllm router (in manifest.json and router.json).
FORMAT = "mixllm-router"
_MANIFEST, _SIGNATURE, _CONFIG = "manifest.json", "manifest.sig", "router.json"
_ARRAYS = ("online.npz", "train.npz")
_MEMORY = "memory.npz"
_MAX_JSON = 1 << 28  # router.json of a thousand LLMs is a few MB
_NUM = (int, float)
_NONE = type(None)
_log = logging.getLogger(__name__)


# ---------------------------------------------------------------------------- small helpers
def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _signature(key: bytes, manifest: bytes) -> str:
    return hmac.new(key, manifest, hashlib.sha256).hexdigest()


def _check_key(key: object) -> bytes | None:
    if key is None:
        return None
    if not isinstance(key, (bytes, bytearray)) or not key:
        raise ConfigError(f"signing_key must be non-empty bytes or None, got {type(key).__name__}.")
    return bytes(key)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


def _json(data: bytes, where: str) -> Any:
    if len(data) > _MAX_JSON:
        raise CorruptStateError(f"{where} is {len(data)} bytes; mixllm writes far smaller ones.")
    try:
        return json.loads(data, parse_constant=_no_constant)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise CorruptStateError(f"{where} is not valid JSON: {exc}") from exc


def _get(obj: Any, key: str, kinds: tuple[type, ...], where: str) -> Any:
    """``obj[key]``, which must be one of ``kinds`` (a bool is not a number here)."""
    if not isinstance(obj, dict):
        raise CorruptStateError(f"{where} must be a JSON object, got {type(obj).__name__}.")
    if key not in obj:
        raise CorruptStateError(f"{where} has no {key!r}.")
    value = obj[key]
    if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
        names = " or ".join("null" if k is _NONE else k.__name__ for k in kinds)
        raise CorruptStateError(f"{where}.{key} must be {names}, got {reprlib.repr(value)}.")
    return value


def _manifest_files(manifest: Any) -> dict[str, str] | None:
    """The files a manifest lists, or None when it is not one of ours (format 1 or 2)."""
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), dict):
        return None
    ours = manifest.get("format") == FORMAT and manifest.get("format_version") == STATE_VERSION
    v1 = set(manifest) == {"format_version", "files"} and manifest["format_version"] == 1
    return dict(manifest["files"]) if ours or v1 else None


def _router_files(directory: Path) -> set[str] | None:
    """The files of the router saved in ``directory``, or None when it holds none."""
    path = directory / _MANIFEST
    if path.is_symlink() or not path.is_file() or path.stat().st_size > 1 << 24:
        return None
    try:
        files = _manifest_files(json.loads(path.read_bytes()))
    except (ValueError, RecursionError, OSError):
        return None
    return None if files is None else {*map(str, files), _MANIFEST, _SIGNATURE}


def _files_under(root: Path) -> list[str]:
    """Every non-directory below ``root`` (symbolic links included, never followed)."""
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        names = filenames + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]
        found += [Path(dirpath, n).relative_to(root).as_posix() for n in names]
    return sorted(found)


def _fsync(path: Path) -> None:
    with contextlib.suppress(OSError):  # directories cannot be opened on some platforms
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


# ---------------------------------------------------------------------------- writing
def _target(directory: Path) -> Path:
    """``directory`` as an absolute path, if saving there can replace nothing but a router."""
    path = Path(os.path.abspath(directory))
    if not path.name:
        raise ConfigError(f"Cannot save a router to {str(path)!r}: name a directory.")
    if path.is_symlink():
        raise ConfigError(
            f"{str(path)!r} is a symbolic link; mixllm does not replace it. Save to its target or "
            "to another path."
        )
    if not path.exists():
        return path
    if not path.is_dir():
        raise ConfigError(
            f"{str(path)!r} is a file, not a saved router; mixllm does not replace it."
        )
    present = _files_under(path)
    if not present:
        return path
    ours = _router_files(path)
    if ours is None:
        raise ConfigError(
            f"{str(path)!r} is not empty and is not a saved mixllm router (it has no manifest.json "
            "of ours); mixllm does not replace it. Save to a new or empty directory."
        )
    foreign = [f for f in present if f not in ours]
    if foreign:
        raise ConfigError(
            f"{str(path)!r} holds files that are not part of the saved router: {foreign[:5]}; "
            "mixllm does not delete them. Move them, or save to another directory."
        )
    return path


def _document(state: RouterState, out: Path) -> dict[str, Any]:
    """Write the arrays and estimators of ``state`` into ``out``; the JSON that describes them."""
    (out / "quality").mkdir()
    llms: list[dict[str, Any]] = []
    train_arrays: dict[str, np.ndarray] = {}
    train_map: dict[str, list[int]] = {}
    x_ids: dict[int, int] = {}
    for i, llm in enumerate(state.llms):
        q, c = llm.quality, llm.cost
        file = None if q.estimator is None else f"quality/llm{i:03d}.skops"
        if file is not None:
            dump_estimator(q.estimator, out / file)
        quality = {"kind": q.kind, "params": dict(q.params), "seed": q.seed, "mean": q.mean}
        quality |= {"n_samples": q.n_samples, "n_features": q.n_features, "file": file}
        cost = {"mode": c.mode, "input_price": c.input_price, "output_price": c.output_price}
        cost |= {"output_tokens": c.output_tokens, "alpha": c.alpha}
        cost |= {"coef": c.coef.tolist(), "intercept": c.intercept}
        llms.append({"spec": llm.spec.to_dict(), "quality": quality, "cost": cost})
        if llm.train is not None:
            X, y = llm.train
            k = x_ids.setdefault(id(X), len(x_ids))
            train_arrays[f"X_{k}"], train_arrays[f"y_{i}"] = X, y
            train_map[llm.name] = [k, i]
    heads = state.heads
    online = (
        {} if heads is None else {"A_inv": heads.A_inv, "b": heads.b, "n_updates": heads.n_updates}
    )
    np.savez(out / "online.npz", **online)  # type: ignore[arg-type]
    np.savez(out / "train.npz", **train_arrays)  # type: ignore[arg-type]
    memory = None
    if state.memory is not None:
        arrays = state.memory.get_state()
        memory = {"file": _MEMORY, "llms": arrays.pop("llms")}
        np.savez(out / _MEMORY, **arrays)
    if isinstance(state.encoder, StatefulEncoder):  # TaggedEncoder, StaticEncoder's corpus part
        state.encoder.save_state(out / "encoder")
    encoder_files = [f"encoder/{f}" for f in _files_under(out / "encoder")]
    return {
        "format": FORMAT,
        "format_version": STATE_VERSION,
        "llms": llms,
        "policy": state.policy.to_dict(),
        "encoder": dict(state.encoder_config),
        "encoder_files": encoder_files,
        "quality_model": state.quality_model,
        "quality_params": dict(state.quality_params),
        "seed": state.seed,
        "online_ridge": state.online_ridge,
        "online_head_ridge": None if heads is None else heads.ridge,
        "online_dim": None if heads is None else heads.dim,
        "c_ref": state.c_ref,
        "train": train_map,
        "feedback_seq": state.feedback_seq,
        "extra": dict(state.extra),
        "use_memory": state.use_memory,
        "memory_prior": state.memory_prior,
        "memory": memory,
    }


def _write(state: RouterState, out: Path, key: bytes | None) -> None:
    try:
        config = json.dumps(_document(state, out), indent=1, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"The router state is not JSON-serialisable: {exc}") from exc
    (out / _CONFIG).write_text(config)
    files = {f: _sha256(out / f) for f in _files_under(out)}
    manifest = {"format": FORMAT, "format_version": STATE_VERSION, "files": files}
    data = json.dumps(manifest, indent=1).encode()
    if key is not None:
        signature = {"algorithm": "hmac-sha256", "digest": _signature(key, data)}
        (out / _SIGNATURE).write_text(json.dumps(signature))
    (out / _MANIFEST).write_bytes(data)  # last: a directory with a manifest is complete
    for f in [*files, _SIGNATURE, _MANIFEST]:
        if (out / f).exists():
            _fsync(out / f)
    for d in {(out / f).parent for f in files} | {out}:
        _fsync(d)


def _swap(new: Path, directory: Path, old: Path) -> None:
    """Put the complete router ``new`` at ``directory``, moving a previous one aside first."""
    if os.path.lexists(directory):
        os.replace(directory, old)
        try:
            os.replace(new, directory)
        except BaseException:
            with contextlib.suppress(OSError):
                os.replace(old, directory)
            raise
        _fsync(directory.parent)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(new, directory)
        _fsync(directory.parent)


def _leftovers(directory: Path) -> list[tuple[str, str, Path]]:
    """``(token, kind, path)`` of the temporary directories that saves to ``directory`` left."""
    pattern = re.compile(rf"\.{re.escape(directory.name)}\.mixllm-(new|old)-([0-9a-f]+-[0-9a-f]+)")
    found = []
    with contextlib.suppress(OSError):
        for entry in directory.parent.iterdir():
            m = pattern.fullmatch(entry.name)
            if m and entry.is_dir() and not entry.is_symlink():
                found.append((m.group(2), m.group(1), entry))
    return found


def write_state(state: RouterState, directory: Path, *, signing_key: bytes | None = None) -> Path:
    """Write ``state`` to ``directory`` atomically (see the module docstring).

    Raises:
        ConfigError: ``directory`` is a file, a link, or a directory that is not a saved router
            (or holds files besides the router's); or ``state`` carries no encoder.
    """
    if not isinstance(state, RouterState):
        raise ConfigError(f"write_state() takes a RouterState, got {type(state).__name__}.")
    if state.encoder is None:
        raise ConfigError("This RouterState carries no encoder, so its learned state is unknown.")
    key = _check_key(signing_key)
    directory = _target(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    token = f"{time.time_ns():016x}-{secrets.token_hex(4)}"
    new = directory.with_name(f".{directory.name}.mixllm-new-{token}")
    old = directory.with_name(f".{directory.name}.mixllm-old-{token}")
    new.mkdir()
    try:
        _write(state, new, key)
        _swap(new, directory, old)
    finally:
        shutil.rmtree(new, ignore_errors=True)  # gone already unless something failed
        if os.path.isdir(directory):  # a complete router is in place: earlier debris can go
            for _, _, path in _leftovers(directory):
                shutil.rmtree(path, ignore_errors=True)
    return directory


# ---------------------------------------------------------------------------- reading
def _inside(root: Path, real: Path, rel: object, where: str) -> Path:
    """The file ``rel`` names inside ``root``: plain, relative, resolving inside, regular."""
    if (
        not isinstance(rel, str)
        or "\\" in rel
        or ":" in rel
        or rel.startswith("/")
        or any(part in ("", ".", "..") for part in rel.split("/"))
    ):
        raise CorruptStateError(
            f"{where} names the path {str(rel)[:200]!r}; a saved router only names plain "
            "relative paths inside its directory."
        )
    resolved = Path(os.path.realpath(root / rel))
    if real not in resolved.parents:
        raise CorruptStateError(f"{where} names {rel!r}, which resolves outside {str(root)!r}.")
    if not resolved.is_file():
        raise CorruptStateError(f"Saved router file {rel!r} is missing from {str(root)!r}.")
    return resolved


def _verified(root: Path, real: Path, rel: str, digest: str) -> Path:
    path = _inside(root, real, rel, "manifest.json")
    if _sha256(path) != digest:
        raise CorruptStateError(
            f"Saved router file {rel!r} in {str(root)!r} does not match its checksum: "
            "it was modified or truncated."
        )
    return path


def _read_manifest(root: Path, real: Path, key: bytes | None) -> tuple[int, dict[str, str]]:
    """The format version and the checked ``{file: sha256}`` of the manifest."""
    if not (root / _MANIFEST).exists():
        raise CorruptStateError(f"{str(root)!r} is not a saved router: manifest.json is missing.")
    data = _inside(root, real, _MANIFEST, "the directory").read_bytes()
    if key is not None:
        if not os.path.lexists(root / _SIGNATURE):
            raise CorruptStateError(f"{str(root)!r} is not signed (manifest.sig is missing).")
        signature = _json(_inside(root, real, _SIGNATURE, "the directory").read_bytes(), _SIGNATURE)
        digest = _get(signature, "digest", (str,), _SIGNATURE)
        if not hmac.compare_digest(digest.encode(), _signature(key, data).encode()):
            raise CorruptStateError(
                f"The signature of {str(root)!r} does not match: it was modified after it was "
                "signed, or signed with another key."
            )
    manifest = _json(data, _MANIFEST)
    files = _manifest_files(manifest)
    if files is None:
        found = manifest.get("format_version") if isinstance(manifest, dict) else None
        raise CorruptStateError(
            f"{str(root / _MANIFEST)!r} is not a mixllm manifest this version reads (format "
            f"{found!r}; this mixllm reads formats 1 and {STATE_VERSION})."
        )
    for rel, digest in files.items():
        if not isinstance(digest, str) or not re.fullmatch(r"[0-9a-f]{64}", digest):
            raise CorruptStateError(f"manifest.json has no sha256 for {rel!r}: {digest!r}.")
        _inside(root, real, rel, "manifest.json")
    if {_MANIFEST, _SIGNATURE} & set(files):
        raise CorruptStateError("manifest.json lists itself or its signature.")
    return int(manifest["format_version"]), files


def _arrays(path: Path, keys: set[str]) -> dict[str, np.ndarray]:
    check_archive(path)
    try:  # our own handle: numpy leaks the one it opens for a zip it then cannot read
        with path.open("rb") as fh, np.load(fh, allow_pickle=False) as f:
            if set(f.files) != keys:
                raise CorruptStateError(
                    f"{str(path)!r} holds arrays {sorted(f.files)}; expected {sorted(keys)}."
                )
            return {k: f[k] for k in keys}
    except (OSError, ValueError, EOFError, TypeError, zipfile.BadZipFile) as exc:
        raise CorruptStateError(f"{str(path)!r} is unreadable: {exc!r}") from exc


#: Default instances of the built-in encoder types: their configs name every key they write.
_BUILTIN_ENCODERS: dict[str, Callable[[], QueryEncoder]] = {
    "static": StaticEncoder,
    "sentence": SentenceEncoder,
    "onnx": OnnxEncoder,
    "tagged": lambda: TaggedEncoder(StaticEncoder()),
}


def _check_encoder_config(config: Any, where: str) -> None:
    """Refuse keys the built-in encoders never write (``cache_path``, ``device``, ...) and any
    model but the packaged one: a saved router must not make mixllm read elsewhere."""
    kind = _get({"encoder": config}, "encoder", (dict,), where).get("type")
    if not isinstance(kind, str):
        return  # RouterState refuses it
    if kind not in _BUILTIN_ENCODERS:
        return  # a registered encoder: its factory, the user's code, reads its config
    unknown = set(config) - set(_BUILTIN_ENCODERS[kind]().get_config())
    if unknown:
        raise CorruptStateError(f"{where} has keys {sorted(unknown)} no {kind!r} encoder writes.")
    if kind == "tagged":
        tagger = _get(config, "tagger", (dict,), where)
        if set(tagger) - set(Tagger().get_params()):
            raise CorruptStateError(f"{where}.tagger has unknown keys {sorted(tagger)}.")
        _check_encoder_config(config.get("base"), f"{where}.base")
    elif config.get("model", DEFAULT_MODEL) != DEFAULT_MODEL:
        raise ConfigError(
            f"The saved encoder reads the model {config['model']!r}; a saved router may only name "
            f"the packaged {DEFAULT_MODEL!r}, since a path could point anywhere on this machine. "
            "Build that encoder yourself and pass encoder= to load."
        )


def _rebuild_encoder(config: dict[str, Any], directory: Path, dim: int | None) -> QueryEncoder:
    """The saved encoder. A registered (not built-in) one must give ``dim``-sized vectors: its
    factory is the user's code and may trust its config (a built-in one checks its own)."""
    try:
        encoder = encoder_from_config(config, directory)
        if config.get("type") in _BUILTIN_ENCODERS:
            return encoder
        given = encoder.dim
    except MissingDependencyError:
        raise
    except Exception as exc:  # the encoders parse hostile state too: any failure is corruption
        raise CorruptStateError(f"The saved encoder cannot be rebuilt: {exc}") from exc
    if (
        isinstance(given, bool)
        or not isinstance(given, int)
        or given < 1
        or given != (dim or given)
    ):
        raise CorruptStateError(
            f"The saved encoder gives {given!r}-dimensional vectors; the saved predictors read "
            f"{dim}-dimensional ones."
        )
    return encoder


def _llm(
    entry: Any, where: str, root: Path, real: Path, files: Mapping[str, str]
) -> tuple[LLMSpec, QualityState, CostState]:
    spec = LLMSpec.from_dict(_get(entry, "spec", (dict,), where))
    q = _get(entry, "quality", (dict,), where)
    file = _get(q, "file", (str, _NONE), f"{where}.quality")
    if file is not None and (not file.startswith("quality/") or file not in files):
        raise CorruptStateError(f"{where}.quality.file {file!r} is not a listed quality file.")
    params = _get(q, "params", (dict,), f"{where}.quality")
    quality = QualityState(
        kind=_get(q, "kind", (str,), f"{where}.quality"),
        params={k: tuple(v) if isinstance(v, list) else v for k, v in params.items()},
        seed=_get(q, "seed", (int,), f"{where}.quality"),
        mean=_get(q, "mean", _NUM, f"{where}.quality"),
        n_samples=_get(q, "n_samples", (int,), f"{where}.quality"),
        n_features=_get(q, "n_features", (int,), f"{where}.quality"),
        estimator=(
            None if file is None else load_estimator(_inside(root, real, file, where), lazy=True)
        ),
    )
    c = _get(entry, "cost", (dict,), where)
    coef = _get(c, "coef", (list,), f"{where}.cost")
    if not all(isinstance(v, _NUM) and not isinstance(v, bool) for v in coef):
        raise CorruptStateError(f"{where}.cost.coef must be a list of numbers.")
    num = {k: _get(c, k, _NUM, f"{where}.cost") for k in ("input_price", "output_price")}
    num |= {k: _get(c, k, _NUM, f"{where}.cost") for k in ("output_tokens", "alpha", "intercept")}
    cost = CostState(mode=_get(c, "mode", (str,), f"{where}.cost"), coef=np.array(coef), **num)
    return spec, quality, cost


def _memory_entry(doc: Any) -> dict[str, Any] | None:
    """``router.json``'s memory entry (absent in routers saved before the memory existed)."""
    entry = _get(doc, "memory", (dict, _NONE), _CONFIG) if "memory" in doc else None
    if entry is not None and _get(entry, "file", (str,), f"{_CONFIG} memory") != _MEMORY:
        raise CorruptStateError(f"{_CONFIG} memory.file must be {_MEMORY!r}.")
    return entry


def _memory(doc: Any, root: Path, real: Path) -> OutcomeMemory | None:
    entry = _memory_entry(doc)
    if entry is None:
        return None
    llms = _get(entry, "llms", (list,), f"{_CONFIG} memory")
    if not all(isinstance(n, str) for n in llms):
        raise CorruptStateError(f"{_CONFIG} memory.llms must be a list of names.")
    arrays = _arrays(_inside(root, real, _MEMORY, _CONFIG), {"keys", "sums", "counts"})
    keys = arrays["keys"]
    if keys.dtype != np.dtype("S64") or keys.ndim != 1:
        raise CorruptStateError(f"{_MEMORY} keys must be a 1-d array of 64-byte hex digests.")
    try:
        texts = [k.decode("ascii") for k in keys.tolist()]
    except UnicodeDecodeError as exc:
        raise CorruptStateError(f"{_MEMORY} keys must be hex digests: {exc}") from exc
    if arrays["counts"].dtype.kind not in "iu" or arrays["sums"].dtype.kind != "f":
        raise CorruptStateError(f"{_MEMORY} must hold float sums and integer counts.")
    shape = (len(keys), len(llms))
    if arrays["sums"].shape != shape or arrays["counts"].shape != shape:
        raise CorruptStateError(f"{_MEMORY} sums and counts must have shape {shape}.")
    return OutcomeMemory(llms, texts, arrays["sums"], arrays["counts"])


def _decode(
    doc: Any, root: Path, real: Path, files: dict[str, str], load_encoder: bool
) -> RouterState:
    entries = _get(doc, "llms", (list,), _CONFIG)
    parts = [_llm(e, f"{_CONFIG} llms[{i}]", root, real, files) for i, e in enumerate(entries)]
    names = [spec.name for spec, _, _ in parts]
    train_map = _get(doc, "train", (dict,), _CONFIG)
    slots: dict[str, tuple[int, int]] = {}
    for name, slot in train_map.items():
        if not (isinstance(slot, list) and len(slot) == 2 and name in names):
            raise CorruptStateError(f"{_CONFIG} train[{name!r}] is {slot!r}.")
        k, i = (_get({"k": v}, "k", (int,), f"{_CONFIG} train[{name!r}]") for v in slot)
        slots[name] = (k, i)
    keys = {f"X_{k}" for k, _ in slots.values()} | {f"y_{i}" for _, i in slots.values()}
    train = _arrays(_inside(root, real, "train.npz", _CONFIG), keys)
    dim = _get(doc, "online_dim", (int, _NONE), _CONFIG)
    heads = None
    if dim is not None:
        online = _arrays(_inside(root, real, "online.npz", _CONFIG), {"A_inv", "b", "n_updates"})
        ridge = _get(doc, "online_head_ridge", _NUM, _CONFIG)
        heads = HeadsState(dim, ridge, tuple(names), **online)
    else:
        _arrays(_inside(root, real, "online.npz", _CONFIG), set())
    config = _get(doc, "encoder", (dict,), _CONFIG)
    memory = _memory(doc, root, real)
    llms = []
    for spec, quality, cost in parts:
        slot = slots.get(spec.name)
        xy = None if slot is None else (train[f"X_{slot[0]}"], train[f"y_{slot[1]}"])
        llms.append(LLMState(spec, quality, cost, xy))
    state = RouterState(
        llms=tuple(llms),
        policy=DecisionPolicy(**_get(doc, "policy", (dict,), _CONFIG)),
        encoder_config=config,
        quality_model=_get(doc, "quality_model", (str,), _CONFIG),
        quality_params=_get(doc, "quality_params", (dict,), _CONFIG),
        seed=_get(doc, "seed", (int,), _CONFIG),
        online_ridge=_get(doc, "online_ridge", (*_NUM, _NONE), _CONFIG),
        heads=heads,
        c_ref=_get(doc, "c_ref", (*_NUM, _NONE), _CONFIG),
        feedback_seq=_get(doc, "feedback_seq", (int,), _CONFIG),
        extra=_get(doc, "extra", (dict,), _CONFIG) if "extra" in doc else {},
        use_memory=_get(doc, "use_memory", (bool,), _CONFIG) if "use_memory" in doc else True,
        memory_prior=_get(doc, "memory_prior", _NUM, _CONFIG) if "memory_prior" in doc else 1.0,
        memory=memory,
    )
    if not load_encoder:
        return state
    encoder = _rebuild_encoder(config, root / "encoder", state.representation_dim)
    return replace(state, encoder=encoder)


def _expected_files(doc: Any, version: int, files: dict[str, str]) -> set[str]:
    """The files ``router.json`` implies; the manifest must list exactly these."""
    if version == 1:  # format 1 did not record its encoder files
        encoder = [f for f in files if f.startswith("encoder/")]
    else:
        if _get(doc, "format", (str,), _CONFIG) != FORMAT:
            raise CorruptStateError(f"{_CONFIG} has no mixllm format marker.")
        encoder = _get(doc, "encoder_files", (list,), _CONFIG)
        if not all(isinstance(f, str) and f.startswith("encoder/") for f in encoder):
            raise CorruptStateError(f"{_CONFIG} encoder_files must name files under encoder/.")
    if _get(doc, "format_version", (int,), _CONFIG) != version:
        raise CorruptStateError(f"{_CONFIG} and manifest.json disagree on the format version.")
    quality = [
        _get(_get(e, "quality", (dict,), _CONFIG), "file", (str, _NONE), _CONFIG)
        for e in _get(doc, "llms", (list,), _CONFIG)
    ]
    memory = [_MEMORY] if _memory_entry(doc) is not None else []
    return {_CONFIG, *_ARRAYS, *memory, *encoder, *(q for q in quality if q is not None)}


def _read(root: Path, load_encoder: bool, key: bytes | None) -> RouterState:
    real = Path(os.path.realpath(root))
    if not real.is_dir():
        raise CorruptStateError(f"{str(root)!r} is not a directory.")
    version, files = _read_manifest(root, real, key)
    if _CONFIG not in files:
        raise CorruptStateError(f"manifest.json of {str(root)!r} does not list {_CONFIG}.")
    doc = _json(_verified(root, real, _CONFIG, files[_CONFIG]).read_bytes(), _CONFIG)
    expected = _expected_files(doc, version, files)
    if set(files) != expected:
        raise CorruptStateError(
            f"manifest.json of {str(root)!r} lists {sorted(set(files) - expected)} that "
            f"router.json does not use, and lacks {sorted(expected - set(files))}."
        )
    for rel in sorted(expected - {_CONFIG}):
        path = _verified(root, real, rel, files[rel])
        if rel.endswith(".npz"):
            check_archive(path)
    encoder_dir = root / "encoder"
    present = _files_under(encoder_dir) if encoder_dir.is_dir() else []
    unlisted = [f"encoder/{f}" for f in present if f"encoder/{f}" not in files]
    if unlisted or encoder_dir.is_symlink():
        raise CorruptStateError(
            f"{str(root)!r} holds encoder files outside the manifest: {unlisted}."
        )
    if load_encoder:  # before anything is built: refuses a model path (ConfigError)
        _check_encoder_config(_get(doc, "encoder", (dict,), _CONFIG), f"{_CONFIG} encoder")
    try:
        return _decode(doc, root, real, files, load_encoder)
    except CorruptStateError:
        raise
    except (ConfigError, KeyError, TypeError, ValueError, ArithmeticError) as exc:
        raise CorruptStateError(f"Saved router in {str(root)!r} is inconsistent: {exc}") from exc


def read_state(
    directory: Path, *, load_encoder: bool = True, signing_key: bytes | None = None
) -> RouterState:
    """Read the state :func:`write_state` wrote, checking everything first (module docstring).

    Args:
        directory: The saved router. When it is missing because a save was interrupted between
            its two renames, the newest complete copy that save left beside it is read instead.
        load_encoder: Rebuild the saved encoder with its learned state (``state.encoder``);
            False leaves ``state.encoder`` None (the caller brings one).
        signing_key: Refuse a directory whose ``manifest.sig`` is missing or wrong.

    Raises:
        CorruptStateError: anything missing, modified, malformed or outside the directory.
        ConfigError: the saved encoder names a model other than the packaged one.
    """
    key = _check_key(signing_key)
    directory = Path(os.path.abspath(directory))
    if os.path.lexists(directory):
        return _read(directory, load_encoder, key)
    candidates = sorted(_leftovers(directory), key=lambda c: (c[0], c[1] == "new"), reverse=True)
    paths = [p for _, _, p in candidates if (p / _MANIFEST).is_file()]
    legacy = directory.with_name(directory.name + ".old")  # what format 1's saves left
    paths += [legacy] if legacy.is_dir() and not legacy.is_symlink() else []
    errors: list[MixLLMError] = []
    for path in paths:
        try:
            state = _read(path, load_encoder, key)
        except MixLLMError as exc:
            errors.append(exc)
            continue
        _log.warning("%s is missing; read %s, left by an interrupted save.", directory, path)
        return state
    if errors:
        raise errors[0]
    raise CorruptStateError(f"{str(directory)!r} does not exist: there is no saved router there.")
