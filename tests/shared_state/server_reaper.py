"""Test servers that do not outlive the test run, and clean-up of those a killed run left.

Three layers, each enough on its own for the case it covers:

- the server process gets the parent-death signal (``PR_SET_PDEATHSIG``, Linux): when the
  process that started it dies, even by SIGKILL, the kernel signals the server;
- :func:`register` stops the server at interpreter exit (``atexit``) and on SIGTERM (the
  handler stops every registered server, then lets SIGTERM end the process as it would have);
- :func:`claim` writes the owner's pid into the server's directory, and :func:`clean_stale`
  removes the directories (and stops the servers) of owners that are gone.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import itertools
import os
import shutil
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType

__all__ = ["alive", "claim", "clean_stale", "die_with_parent", "register", "unregister"]

OWNER_FILE = "owner.pid"
#: A directory without an owner file (made by an older fixture) counts as stale after this long.
LEGACY_AGE_S = 600.0
_PR_SET_PDEATHSIG = 1

_stoppers: dict[int, Callable[[], None]] = {}
_lock = threading.Lock()
_installed_pid: int | None = None
_keys = itertools.count(1)


def alive(pid: int) -> bool:
    """Whether process ``pid`` exists (a zombie counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def die_with_parent(sig: int = signal.SIGINT) -> Callable[[], None]:
    """A ``preexec_fn``: the child gets ``sig`` when its parent dies (Linux; a no-op elsewhere).

    Runs after ``Popen(user=...)`` changed the user, which would otherwise clear the setting.
    """
    parent = os.getpid()

    def preexec() -> None:
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, sig)
        if os.getppid() != parent:  # the parent died before the signal was armed
            os._exit(1)

    return preexec


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    _stop_all()
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGTERM)


def _stop_all() -> None:
    if os.getpid() != _installed_pid:  # a forked child inherited the hooks: not its servers
        return
    with _lock:
        stoppers = list(_stoppers.values())
        _stoppers.clear()
    for stop in reversed(stoppers):
        with contextlib.suppress(Exception):
            stop()


def register(stop: Callable[[], None]) -> int:
    """Run ``stop`` at exit and on SIGTERM (in this process only); returns a key for
    :func:`unregister`."""
    global _installed_pid
    with _lock:
        if _installed_pid != os.getpid():
            _installed_pid = os.getpid()
            atexit.register(_stop_all)
            if (
                threading.current_thread() is threading.main_thread()
                and signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
            ):
                signal.signal(signal.SIGTERM, _on_sigterm)
        key = next(_keys)
        _stoppers[key] = stop
    return key


def unregister(key: int) -> None:
    with _lock:
        _stoppers.pop(key, None)


def claim(directory: Path) -> None:
    """Mark ``directory`` as this process's (see :func:`clean_stale`)."""
    (directory / OWNER_FILE).write_text(str(os.getpid()))


def _owner(directory: Path) -> int | None:
    try:
        return int((directory / OWNER_FILE).read_text().strip())
    except (OSError, ValueError):
        return None


def clean_stale(
    pattern: str, server_pid: Callable[[Path], int | None], stop: Callable[[Path, int], None]
) -> list[Path]:
    """Remove the directories matching ``pattern`` (a glob under the temp dir) whose owner is
    gone, stopping their server first (``server_pid`` reads it, ``stop`` stops it).

    A directory without an owner file is removed only when no server runs in it and it is
    older than :data:`LEGACY_AGE_S` (another run may be creating it). Returns those removed.
    """
    import tempfile

    removed = []
    for directory in Path(tempfile.gettempdir()).glob(pattern):
        if not directory.is_dir():
            continue
        owner = _owner(directory)
        pid = server_pid(directory)
        running = pid is not None and alive(pid)
        if owner is None:
            try:
                age = time.time() - directory.stat().st_mtime
            except OSError:
                continue
            if running or age < LEGACY_AGE_S:
                continue
        elif alive(owner):
            continue
        if running and pid is not None:
            with contextlib.suppress(Exception):
                stop(directory, pid)
        shutil.rmtree(directory, ignore_errors=True)
        removed.append(directory)
    return removed
