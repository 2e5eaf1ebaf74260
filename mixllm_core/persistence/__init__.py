"""Saving and loading a router without pickle: the versioned `RouterState` (:mod:`.state`)
and the directory format with its checks (:mod:`.files`); estimators are read by
:mod:`mixllm_core.estimator_io` under an exact allow-list of types."""

from __future__ import annotations

from typing import Any

from . import files as _files
from .files import FORMAT, read_state, write_state
from .state import RouterState

__all__ = ["FORMAT", "RouterState", "read_state", "write_state"]


def __getattr__(name: str) -> Any:  # the module's other names
    return getattr(_files, name)
