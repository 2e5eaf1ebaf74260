"""Many replicas, one learning router: sync bookkeeping and published router versions.

Routers in several processes or hosts share one database log
(:class:`~mixllm_core.sqllog.SQLLog`). Two things keep them one router:

- **Sync.** Each router folds every replica's feedback into its online heads, in feedback-id
  order, at most ``sync_interval_s`` after it was logged (:meth:`MixLLMRouter.sync
  <mixllm_core.MixLLMRouter.sync>`). :class:`SyncState` is the router's bookkeeping: when it
  last synced, whether a sync runs, which published version it holds.
- **Published versions.** The coordinated refit (:func:`mixllm_core.refit_job.run_refit`, or
  ``mixllm refit`` from a cron job) retrains the offline predictors on the whole log in one
  process and publishes the refit router's saved files as a numbered version in the database;
  every router loaded from the same saved directory swaps it in at its next sync
  (:func:`published_model`). A version is tied to the directory it descends from
  (:func:`base_of`), so a router trained and saved anew never picks up an old lineage.
"""

from __future__ import annotations

import hashlib
import logging
import tempfile
import threading
import time
import weakref
from collections.abc import Callable
from pathlib import Path

from .encoders import QueryEncoder
from .errors import ConfigError, CorruptStateError, LogUnavailableError
from .log import MemoryLog, RoutingLog, SQLiteLog, StatePublisher
from .persistence.files import read_state, write_state
from .persistence.state import RouterState
from .snapshot import RoutingModel

__all__ = ["SyncState", "base_of", "open_log", "published_model", "state_files"]

_log = logging.getLogger(__name__)


class SyncState:
    """When a router last synced with its shared log, and the published version it holds.

    Example:
        >>> state = SyncState()
        >>> state.due(1.0), state.version
        (True, 0)
    """

    def __init__(self) -> None:
        self.running = threading.Lock()  # one sync at a time
        self.last = -float("inf")  # time.monotonic() of the last sync started
        self.version = 0  # the published version the router holds (0: its own state)
        self.base: str | None = None  # base_of() the directory it was loaded from
        self.closed = False  # the router was closed: no sync runs any more

    def mark(self) -> None:
        self.last = time.monotonic()

    def due(self, interval_s: float) -> bool:
        """Whether a sync is older than ``interval_s`` and none is running."""
        return time.monotonic() - self.last >= interval_s and not self.running.locked()

    def start_background(self, sync: Callable[[], int]) -> None:
        """Run ``sync`` in a daemon thread; a failure is logged, never raised to a route (a log
        that does not answer warned once when the outage began: it is not logged again)."""
        self.mark()

        def run() -> None:
            try:
                sync()
            except LogUnavailableError:
                pass  # the log warns once per outage and retries; the next sync catches up
            except Exception:  # noqa: BLE001 - routing goes on whatever the sync hit
                _log.warning("Background sync with the routing log failed.", exc_info=True)

        threading.Thread(target=run, name="mixllm-sync", daemon=True).start()


def base_of(directory: str | Path) -> str | None:
    """The lineage id of a saved router directory: the sha256 of its manifest (None: none)."""
    try:
        return hashlib.sha256((Path(directory) / "manifest.json").read_bytes()).hexdigest()
    except OSError:
        return None


def state_files(state: RouterState) -> dict[str, bytes]:
    """The files a saved router directory holds for ``state``, by relative path."""
    with tempfile.TemporaryDirectory(prefix="mixllm-publish-") as tmp:
        out = write_state(state, Path(tmp) / "router")
        return {
            p.relative_to(out).as_posix(): p.read_bytes()
            for p in sorted(out.rglob("*"))
            if p.is_file()
        }


#: Published versions refused by each log's readers (files that failed their checks).
_refused: weakref.WeakKeyDictionary[StatePublisher, set[int]] = weakref.WeakKeyDictionary()


def published_model(
    log: StatePublisher, version: int, encoder: QueryEncoder
) -> RoutingModel | None:
    """The model of published ``version``, read through ``encoder`` (None: pruned meanwhile, or
    refused).

    The files are checked as :func:`~mixllm_core.persistence.files.read_state` checks a
    directory (paths, checksums, archives, an exact allow-list of estimator types). A version
    that fails them is refused: one warning, and None now and at every later sync without
    reading it again; the router keeps its model and goes on folding feedback.
    """
    refused = _refused.setdefault(log, set())
    if version in refused:
        return None
    files = log.read_state_files(version)
    if not files:
        return None
    try:
        with tempfile.TemporaryDirectory(prefix="mixllm-pickup-") as tmp:
            root = Path(tmp) / "router"
            root.mkdir()
            for rel, data in files.items():
                path = (root / rel).resolve()
                if root.resolve() not in path.parents:
                    raise CorruptStateError(f"Published version {version} names a file {rel!r}.")
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(data)
            state = read_state(root, load_encoder=False)
    except CorruptStateError as exc:
        refused.add(version)
        _log.warning(
            "Published router version %d in the routing log is refused (%s); this router keeps "
            "its model.",
            version,
            exc,
        )
        return None
    return RoutingModel.from_state(state, encoder)


def open_log(
    log: RoutingLog | str | Path | None, *, store_prompts: bool = True, max_pending: int = 100_000
) -> RoutingLog:
    """The log a router's ``log=`` argument names.

    A :class:`~mixllm_core.log.RoutingLog` as it is; a string with ``://`` as a database URL
    (:class:`~mixllm_core.sqllog.SQLLog`: ``"sqlite:///routing.db"``,
    ``"postgresql+psycopg://user@host/db"``); any other string or path as a
    :class:`~mixllm_core.log.SQLiteLog` file; None as a :class:`~mixllm_core.log.MemoryLog`.

    Example:
        >>> type(open_log(None)).__name__
        'MemoryLog'
    """
    if isinstance(log, RoutingLog):
        return log
    if log is None:
        return MemoryLog(max_pending, store_prompts=store_prompts)
    if isinstance(log, str) and "://" in log:
        from .sqllog import SQLLog  # SQLAlchemy loads only when a URL is given

        return SQLLog(log, store_prompts=store_prompts)
    if not isinstance(log, (str, Path)):
        raise ConfigError(
            f"log must be a RoutingLog, a database URL, a file path or None, got {log!r}."
        )
    return SQLiteLog(log, store_prompts=store_prompts)
