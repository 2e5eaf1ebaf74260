"""`OnnxEncoder`: all-MiniLM-L6-v2 on ONNX Runtime, optionally int8-quantised (built locally)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError, MissingDependencyError
from ._windowed import _fingerprint, _model_dir, _normalise, _WindowedEncoder
from .base import DEFAULT_MODEL
from .build import build_onnx_model

__all__ = ["OnnxEncoder"]


class OnnxEncoder(_WindowedEncoder):
    """all-MiniLM-L6-v2 on ONNX Runtime, optionally int8-quantised (built locally, cached).

    Args:
        model: ``"all-MiniLM-L6-v2"`` (the packaged copy) or a local sentence-transformers dir.
        quantize: int8 dynamic quantisation of the weights (faster, cosine to fp32 > 0.99).
        window, max_chars, max_seq_length: What the model reads (as in ``SentenceEncoder``).
        batch_size: Texts per forward pass (sorted by length to pad little).
        threads: ONNX Runtime intra-op threads (0: its default, all cores).
        cache_size: Embeddings kept in memory (LRU by text hash); 0 disables the cache.
        cache_dir: Where the ``.onnx`` file is built on first use.

    Example:
        >>> enc = OnnxEncoder()                 # builds nothing yet
        >>> enc.encode(["What is 2+2?"]).shape  # doctest: +SKIP
        (1, 384)
    """

    _type = "onnx"

    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        *,
        quantize: bool = True,
        window: str = "tail",
        max_chars: int | None = 1000,
        max_seq_length: int = 128,
        batch_size: int = 32,
        threads: int = 0,
        cache_size: int = 100_000,
        cache_dir: str | Path | None = None,
    ) -> None:
        super().__init__(
            model, window, max_chars, max_seq_length, batch_size, cache_size, cache_dir
        )
        if not isinstance(quantize, bool):
            raise ConfigError(f"quantize must be True or False, got {quantize!r}.")
        if isinstance(threads, bool) or not isinstance(threads, int) or threads < 0:
            raise ConfigError(f"threads must be an int >= 0, got {threads!r}.")
        self.quantize = quantize
        self.threads = threads
        self._session: Any = None

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "quantize": self.quantize}

    def artefact_path(self) -> Path:
        """The cached ``.onnx`` file this encoder runs (built on first use)."""
        model_dir = _model_dir(self.model)
        key = _fingerprint(model_dir, kind="onnx", quantize=self.quantize)
        return self.cache_dir / "onnx" / f"minilm-{'int8' if self.quantize else 'fp32'}-{key}.onnx"

    def _load(self, model_dir: Path) -> None:
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise MissingDependencyError(
                "OnnxEncoder needs ONNX Runtime: pip install onnx onnxruntime"
            ) from exc
        path = self.artefact_path()
        if not path.exists():
            build_onnx_model(model_dir, path, quantize=self.quantize)
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if self.threads:
            opts.intra_op_num_threads = self.threads
        self._session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        self._dim = int(self._session.get_outputs()[0].shape[-1] or 384)

    def _embed(self, texts: list[str]) -> np.ndarray:
        encs = self._tokenizer.encode_batch(texts)
        order = np.argsort([len(e.ids) for e in encs], kind="stable")
        out = np.empty((len(texts), self._dim or 0), np.float32)
        for start in range(0, len(texts), self.batch_size):
            rows = order[start : start + self.batch_size]
            width = max(len(encs[i].ids) for i in rows)
            ids = np.zeros((len(rows), width), np.int64)
            mask = np.zeros((len(rows), width), np.int64)
            for r, i in enumerate(rows):
                n = len(encs[i].ids)
                ids[r, :n] = encs[i].ids
                mask[r, :n] = 1
            (emb,) = self._session.run(None, {"input_ids": ids, "attention_mask": mask})
            out[rows] = emb
        return _normalise(out)
