"""Live routing state shared by every replica through Redis (or Valkey), failing open.

``MixLLMRouter(..., shared_state="redis://host:6379/0")`` (or a :class:`SharedState` with its
settings) shares three things among the processes and hosts that route for one pool:

- in-flight calls and service times per LLM (:class:`SharedLatencyTracker`), so the latency
  penalty sees the whole fleet;
- the spend of each budget period (:class:`SharedBudget`), reserved atomically when a call is
  routed, so N replicas hold one budget;
- cooldowns after failures (:class:`SharedCooldowns`), so one replica's rate limit cools the
  child down for all.

Every Redis call has a strict timeout and falls back to the replica's local state when it fails
(:class:`RedisLink`); an outage is logged once, and when Redis is back each replica publishes
its local state again. Keys live under ``prefix`` (``mixllm`` by default). redis-py is the
``shared`` extra: ``pip install "mixllm[shared]"``; it is imported only when a
:class:`SharedState` is built.
"""

from __future__ import annotations

from .budget import SharedBudget
from .cooldowns import SharedCooldowns
from .latency import SharedLatencyTracker
from .link import RedisLink
from .state import SharedState

__all__ = [
    "RedisLink",
    "SharedBudget",
    "SharedCooldowns",
    "SharedLatencyTracker",
    "SharedState",
]
