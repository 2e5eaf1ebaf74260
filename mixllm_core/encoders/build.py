"""Building the encoders' artefacts from the packaged MiniLM: the ONNX export and the static
token table (run once, then cached; torch and transformers are needed only here).

The static table for the default settings is shipped in the package (built by
``scripts/build_static_table.py`` with :func:`distill_static_table`), so the default
``StaticEncoder`` never builds it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..errors import MissingDependencyError
from ._windowed import _atomic_write, _fingerprint, _load_tokenizer

__all__ = ["build_onnx_model", "distill_static_table", "static_table_fingerprint"]


def static_table_fingerprint(model_dir: Path, pca_dims: int) -> str:
    """Key of the static table distilled from ``model_dir`` with ``pca_dims``.

    It changes with the model's weights and tokenizer, the settings and the recipe's version; the
    table's ``.npz`` stores it, and an encoder reads a table only under its own key.

    Example:
        >>> from mixllm_core.encoders.base import packaged_minilm_path
        >>> len(static_table_fingerprint(packaged_minilm_path(), pca_dims=128))
        16
    """
    return _fingerprint(model_dir, kind="static", pca_dims=pca_dims)


def build_onnx_model(model_dir: Path, path: Path, *, quantize: bool) -> Path:
    """Export MiniLM (mean-pooled) to ONNX at ``path``; with ``quantize``, int8 dynamic weights."""
    try:
        import torch
        from onnxruntime.quantization import QuantType, quantize_dynamic
        from transformers import AutoModel
    except ImportError as exc:
        raise MissingDependencyError(
            "Building the ONNX encoder needs torch, transformers, onnx and onnxruntime: "
            "pip install onnx onnxruntime"
        ) from exc

    class _MeanPooled(torch.nn.Module):  # type: ignore[misc]  # torch is untyped here
        def __init__(self, bert: Any) -> None:
            super().__init__()
            self.bert = bert

        def forward(self, input_ids: Any, attention_mask: Any) -> Any:
            hidden = self.bert(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)

    bert = AutoModel.from_pretrained(str(model_dir)).eval()
    ids = torch.ones(2, 16, dtype=torch.long)
    axes = {
        "input_ids": {0: "batch", 1: "seq"},
        "attention_mask": {0: "batch", 1: "seq"},
        "embedding": {0: "batch"},
    }

    def export(target: Path) -> None:
        import warnings

        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                _MeanPooled(bert),
                (ids, torch.ones_like(ids)),
                str(target),
                input_names=["input_ids", "attention_mask"],
                output_names=["embedding"],
                dynamic_axes=axes,
                opset_version=17,
                dynamo=False,
            )

    if not quantize:
        _atomic_write(path, export)
        return path
    fp32 = path.with_name(path.stem + ".fp32.onnx")
    _atomic_write(fp32, export)
    _atomic_write(
        path,
        lambda tmp: quantize_dynamic(
            str(fp32),
            str(tmp),
            weight_type=QuantType.QInt8,
            per_channel=True,
            extra_options={"MatMulConstBOnly": True},
        ),
    )  # weights only: cosine to fp32 0.99 vs 0.95
    fp32.unlink()
    return path


def distill_static_table(
    model_dir: Path,
    path: Path,
    *,
    pca_dims: int = 128,
    batch_size: int = 512,
    show_progress: bool = False,
) -> Path:
    """Distil a static table from MiniLM into ``path``.

    The ``.npz`` holds ``vectors`` (float32, vocabulary × ``pca_dims``), ``weights`` (float32,
    one per token), ``fingerprint`` (:func:`static_table_fingerprint`) and ``pca_dims``; it is
    read with ``allow_pickle=False``. Deterministic: the same model, settings and library
    versions on the same CPU give the same arrays.

    The model2vec recipe: every vocabulary token goes through the model alone (``[CLS] t [SEP]``)
    and its mean-pooled output becomes its row; the table is centred and reduced by PCA to
    ``pca_dims``; rows are weighted by a Zipf prior on the token's
    rank (WordPiece vocabularies are roughly frequency-ordered), so frequent tokens count less.

    Example:
        >>> from mixllm_core.encoders.base import packaged_minilm_path
        >>> distill_static_table(packaged_minilm_path(), Path("table.npz"))  # doctest: +SKIP
        PosixPath('table.npz')
    """
    try:
        import torch
        from transformers import AutoModel
    except ImportError as exc:
        raise MissingDependencyError(
            "Distilling the static encoder needs torch and transformers: pip install torch "
            "transformers"
        ) from exc
    tok = _load_tokenizer(model_dir, "head", 8)
    vocab = tok.get_vocab()
    n = max(vocab.values()) + 1
    cls_id, sep_id = vocab["[CLS]"], vocab["[SEP]"]
    bert = AutoModel.from_pretrained(str(model_dir)).eval()
    rows = []
    starts = range(0, n, batch_size)
    if show_progress:
        from tqdm.auto import tqdm

        starts = tqdm(starts, desc="distilling static table", unit="batch")
    with torch.inference_mode():
        for start in starts:
            token_ids = torch.arange(start, min(start + batch_size, n))
            ids = torch.stack(
                [torch.full_like(token_ids, cls_id), token_ids, torch.full_like(token_ids, sep_id)],
                dim=1,
            )
            hidden = bert(input_ids=ids, attention_mask=torch.ones_like(ids)).last_hidden_state
            rows.append(hidden.mean(1).numpy())
    vectors = np.concatenate(rows).astype(np.float64)
    # PCA (centre, rotate, keep the top pca_dims): removes the direction every token shares,
    # which would otherwise dominate a mean of tokens
    vectors -= vectors.mean(0)
    _, _, vt = np.linalg.svd(vectors, full_matrices=False)
    vectors = (vectors @ vt[:pca_dims].T).astype(np.float32)
    # Zipf prior p(rank) ∝ 1/rank, turned into a SIF weight a/(a + p): rare tokens weigh ~1
    rank = np.arange(1, n + 1, dtype=np.float64)
    p = (1.0 / rank) / (1.0 / rank).sum()
    weights = (1e-4 / (1e-4 + p)).astype(np.float32)

    fingerprint = np.array(static_table_fingerprint(model_dir, pca_dims))

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as fh:
            np.savez(
                fh,
                vectors=vectors,
                weights=weights,
                fingerprint=fingerprint,
                pca_dims=np.array(pca_dims),
            )

    _atomic_write(path, write)
    return path
