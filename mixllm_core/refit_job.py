"""The coordinated refit: one process retrains on the shared log and publishes a new version.

:func:`run_refit` (and ``mixllm refit --log URL --router DIR`` from a cron job) takes the
``"refit"`` lease in the log's database (a row with a holder and an expiry, so one process at a
time refits; a holder that dies frees it when the lease expires), loads the router saved in
``DIR`` as every replica does (the newest version published for that directory replaces it),
retrains the offline quality predictors on the training data plus every logged feedback, read
from the database a page at a time, and publishes the result as the next version. Every router
loaded from ``DIR`` on that log swaps the version in at its next sync, in one step: routes go on
reading the old model until then.
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from .encoders import QueryEncoder
from .errors import ConfigError
from .fleet import base_of, open_log, state_files
from .log import RoutingLog, StatePublisher
from .router import MixLLMRouter

__all__ = ["RefitReport", "run_refit"]

#: Name of the lease row the refit takes.
LEASE = "refit"


@dataclass(frozen=True)
class RefitReport:
    """What one :func:`run_refit` did.

    ``version`` is 0 and ``refit`` empty when another process held the lease (``holder`` says
    who this process is; nothing was changed).
    """

    version: int
    refit: dict[str, int]
    feedback_seq: int
    seconds: float
    holder: str

    @property
    def ran(self) -> bool:
        return self.version > 0


def run_refit(
    log: str | RoutingLog,
    router_dir: str | Path,
    *,
    encoder: QueryEncoder | None = None,
    min_feedback: int = 20,
    lease_ttl_s: float = 3600.0,
    holder: str | None = None,
) -> RefitReport:
    """Refit the router saved in ``router_dir`` on the shared ``log`` and publish the result.

    Args:
        log: A database URL (or an open :class:`~mixllm_core.sqllog.SQLLog`).
        router_dir: The saved router every replica loaded.
        encoder: As in :meth:`MixLLMRouter.load` (None: the saved one).
        min_feedback: As in :meth:`MixLLMRouter.refit`.
        lease_ttl_s: How long the lease holds without its holder (a refit that dies frees it
            after this); longer than a refit takes.
        holder: This process's name in the lease row (default: host, pid and a random part).

    Returns:
        A :class:`RefitReport`; ``ran`` is False when another process holds the lease.

    Raises:
        ConfigError: ``log`` is not a database log (a file or in-memory log has no versions).

    Example:
        >>> import tempfile, pathlib
        >>> from mixllm_core.testing import HashingEncoder, make_synthetic_world
        >>> tmp = pathlib.Path(tempfile.mkdtemp())
        >>> saved = MixLLMRouter(encoder=HashingEncoder()).fit(
        ...     make_synthetic_world(200, seed=0)).save(tmp / "router")
        >>> run_refit(f"sqlite:///{tmp / 'routing.db'}", saved, encoder=HashingEncoder()).version
        1
    """
    opened = open_log(log) if isinstance(log, str) else log
    if not isinstance(opened, StatePublisher):
        raise ConfigError(
            f"run_refit needs a database log (a URL such as 'postgresql+psycopg://...'), got "
            f"{log!r}."
        )
    holder = holder or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
    t0 = time.perf_counter()
    try:
        if not opened.acquire_lease(LEASE, holder, lease_ttl_s):
            return RefitReport(0, {}, 0, time.perf_counter() - t0, holder)
        try:
            router = MixLLMRouter.load(
                router_dir, encoder=encoder, log=opened, sync_interval_s=None
            )
            used = router.refit(min_feedback=min_feedback)
            state = router.get_state()
            version = opened.publish_state(
                state_files(state),
                feedback_seq=state.feedback_seq,
                holder=holder,
                base=base_of(router_dir),
            )
        finally:
            opened.release_lease(LEASE, holder)
        return RefitReport(version, used, state.feedback_seq, time.perf_counter() - t0, holder)
    finally:
        if isinstance(log, str):
            opened.close()
