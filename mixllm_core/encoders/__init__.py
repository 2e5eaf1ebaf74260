"""Query encoders: text → fixed-size vector, behind the :class:`QueryEncoder` Protocol.

- :class:`StaticEncoder`: a static token table distilled from MiniLM plus a corpus part learned
  at ``fit``; about 1 ms per query, no transformer at query time. With tag features on top
  (``default_router_encoder()``) it is the router's default.
- :class:`SentenceEncoder`: all-MiniLM-L6-v2 itself (sentence-transformers).
- :class:`OnnxEncoder`: MiniLM on ONNX Runtime, optionally int8.
- :class:`TaggedEncoder` and :class:`Tagger`: the tag-enhanced embedding of the paper.

Nothing here loads a model at import; artefacts are built (``build``) on first use and cached.
"""

from __future__ import annotations

from .base import AdaptableEncoder, QueryEncoder, StatefulEncoder, TaskHintEncoder
from .onnx import OnnxEncoder
from .registry import encoder_from_config, register_encoder
from .sentence import SentenceEncoder
from .static import StaticEncoder
from .tagged import TaggedEncoder
from .tagger import Tagger

__all__ = [
    "AdaptableEncoder",
    "OnnxEncoder",
    "QueryEncoder",
    "SentenceEncoder",
    "StatefulEncoder",
    "StaticEncoder",
    "TaggedEncoder",
    "Tagger",
    "TaskHintEncoder",
    "encoder_from_config",
    "register_encoder",
]
