"""Writing and reading fitted scikit-learn estimators with skops (never pickle)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .errors import CorruptStateError

__all__ = ["dump_estimator", "load_estimator"]

_TRUSTED_PREFIXES = ("sklearn.", "numpy.")  # what our estimators need; nothing callable


def dump_estimator(estimator: Any, path: Path) -> None:
    """Write ``estimator`` to ``path`` in the skops format."""
    import skops.io as sio

    sio.dump(estimator, path)


def load_estimator(path: Path) -> Any:
    """Read an estimator written by :func:`dump_estimator`, refusing types we do not trust."""
    import skops.io as sio

    untrusted = sio.get_untrusted_types(file=path)
    bad = [t for t in untrusted if not t.startswith(_TRUSTED_PREFIXES)]
    if bad:
        raise CorruptStateError(f"{str(path)!r} holds types mixllm does not load: {bad}.")
    return sio.load(path, trusted=untrusted)
