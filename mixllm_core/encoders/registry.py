"""Rebuilding an encoder from its ``get_config()`` (what a saved router records).

Built-in types: ``sentence``, ``static``, ``onnx`` and ``tagged``. Other encoders (a test double,
a user's own) register a factory with :func:`register_encoder`; ``load`` of a router saved with an
unregistered type asks for ``encoder=`` instead.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from .base import QueryEncoder, StatefulEncoder
from .onnx import OnnxEncoder
from .sentence import SentenceEncoder
from .static import StaticEncoder
from .tagged import TaggedEncoder

__all__ = ["encoder_from_config", "register_encoder"]

_FACTORIES: dict[str, Callable[[dict[str, Any]], QueryEncoder]] = {}


def register_encoder(kind: str, factory: Callable[[dict[str, Any]], QueryEncoder]) -> None:
    """Let :func:`encoder_from_config` rebuild encoders whose config has ``type == kind``."""
    if kind in ("sentence", "static", "onnx", "tagged"):
        raise ConfigError(f"Encoder type {kind!r} is built in and cannot be registered again.")
    _FACTORIES[kind] = factory


def encoder_from_config(config: dict[str, Any], directory: Path | None = None) -> QueryEncoder:
    """The encoder described by ``config``; with ``directory``, its learned state is read too.

    Example:
        >>> encoder_from_config({"type": "static", "lsa_dims": 0}).get_config()["type"]
        'static'
    """
    kind = config.get("type")
    encoder: QueryEncoder
    if kind == "sentence":
        encoder = SentenceEncoder(**{k: v for k, v in config.items() if k != "type"})
    elif kind == "static":
        encoder = StaticEncoder.from_config(config)
    elif kind == "onnx":
        encoder = OnnxEncoder.from_config(config)
    elif kind == "tagged":
        return TaggedEncoder.from_config(config, directory, build_base=encoder_from_config)
    elif isinstance(kind, str) and kind in _FACTORIES:
        encoder = _FACTORIES[kind](config)
    else:
        known = sorted(["onnx", "sentence", "static", "tagged", *_FACTORIES])
        raise ConfigError(
            f"Invalid encoder type {kind!r}. Available types are {known}; for another encoder "
            "pass encoder=... to MixLLMRouter.load."
        )
    if directory is not None and isinstance(encoder, StatefulEncoder):
        encoder.load_state(directory)  # e.g. the static encoder's corpus part, when adapted
    return encoder
