"""The request path: route, call the chosen child, retry, fall back, time out, validate,
record one outcome per attempt.

- :mod:`.dispatcher`: `Dispatcher`, the sync/async call and stream forms.
- :mod:`.run`: one call's attempts (the state machine); :mod:`.results`: what a call returns.
- :mod:`.retry` (error classes, `RetryPolicy`), :mod:`.health` (cooldowns and probes),
  :mod:`.timeouts`, :mod:`.validate` (answer validators), :mod:`.redact` (secrets out of errors).
- :mod:`.microbatch`: concurrent async calls routed together.
"""

from __future__ import annotations

from typing import Any

from . import dispatcher as _dispatcher
from .dispatcher import (
    AllCandidatesFailedError,
    AllCoolingDownError,
    Attempt,
    ChildCallError,
    Dispatcher,
    DispatchResult,
    DispatchRouter,
    Reply,
    ReplyReader,
    read_text,
)

__all__ = [
    "AllCandidatesFailedError",
    "AllCoolingDownError",
    "Attempt",
    "ChildCallError",
    "DispatchResult",
    "DispatchRouter",
    "Dispatcher",
    "Reply",
    "ReplyReader",
    "read_text",
]


def __getattr__(name: str) -> Any:  # the module's other names (and its deprecated ones)
    return getattr(_dispatcher, name)
