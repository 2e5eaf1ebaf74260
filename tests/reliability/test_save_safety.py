"""``router.save`` never destroys what is not a router, and a failure or a kill at any step
leaves a loadable router at the path and, after the next save, no debris beside it."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from reliability_helpers import WORLD, fitted_router

from mixllm_core import ConfigError, MixLLMRouter


class Killed(BaseException):
    """The process died here: nothing after this point runs (no except, no finally)."""


@pytest.fixture(scope="module")
def routers() -> tuple[MixLLMRouter, MixLLMRouter]:
    """Two routers whose saves are told apart by their predictions."""
    return fitted_router(feedback=0), fitted_router(feedback=8)


QUERIES = WORLD.queries[200:230]


def _which(path: Path, routers: tuple[MixLLMRouter, MixLLMRouter]) -> int:
    """0 or 1: the router saved at ``path``."""
    quality = MixLLMRouter.load(path).predict(QUERIES)["quality"]
    matches = [np.allclose(quality, r.predict(QUERIES)["quality"]) for r in routers]
    assert matches.count(True) == 1, matches
    return matches.index(True)


def _entries(parent: Path) -> list[str]:
    return sorted(p.name for p in parent.iterdir())


# ---------------------------------------------------------------------------- not a router
def test_saving_over_a_directory_of_other_files_is_refused_and_keeps_them(
    routers: tuple[MixLLMRouter, MixLLMRouter], tmp_path: Path
) -> None:
    target = tmp_path / "work"
    target.mkdir()
    (target / "notes.md").write_text("my notes")
    (target / "data.csv").write_text("a,b\n1,2\n")
    with pytest.raises(ConfigError, match=f"{target}.*not a saved mixllm router"):
        routers[0].save(target)
    assert (target / "notes.md").read_text() == "my notes"
    assert _entries(target) == ["data.csv", "notes.md"] and _entries(tmp_path) == ["work"]


def test_saving_over_a_file_or_a_link_is_refused(
    routers: tuple[MixLLMRouter, MixLLMRouter], tmp_path: Path
) -> None:
    (tmp_path / "model").write_text("not a directory")
    with pytest.raises(ConfigError, match="is a file"):
        routers[0].save(tmp_path / "model")
    saved = routers[0].save(tmp_path / "real")
    (tmp_path / "link").symlink_to(saved)
    with pytest.raises(ConfigError, match="symbolic link"):
        routers[1].save(tmp_path / "link")
    assert (tmp_path / "model").read_text() == "not a directory"
    assert _which(tmp_path / "link", routers) == 0
    assert _entries(tmp_path) == ["link", "model", "real"]


def test_a_file_added_inside_a_saved_router_is_never_deleted(
    routers: tuple[MixLLMRouter, MixLLMRouter], tmp_path: Path
) -> None:
    saved = routers[0].save(tmp_path / "r")
    (saved / "README.txt").write_text("trained on the March data")
    with pytest.raises(ConfigError, match=r"not part of the saved router: \['README.txt'\]"):
        routers[1].save(saved)
    assert (saved / "README.txt").exists() and _which(saved, routers) == 0


def test_a_new_an_empty_or_a_router_directory_is_replaced_without_debris(
    routers: tuple[MixLLMRouter, MixLLMRouter], tmp_path: Path
) -> None:
    (tmp_path / "empty").mkdir()
    for target in (tmp_path / "new" / "nested", tmp_path / "empty"):
        routers[0].save(target)
        routers[1].save(target)  # over a router
        assert _which(target, routers) == 1
    assert _entries(tmp_path) == ["empty", "new"] and _entries(tmp_path / "new") == ["nested"]


# ---------------------------------------------------------------------------- failures
@contextmanager
def _failing(
    monkeypatch: pytest.MonkeyPatch, name: str, at: int, error: BaseException
) -> Iterator[list[int]]:
    """``os.<name>`` (or ``np.savez``) raises ``error`` on its ``at``-th call; with a
    :class:`Killed` error every later rename, delete or write dies too, as in a dead process."""
    calls = [0]
    dead = [False]
    real = {"replace": os.replace, "savez": np.savez, "rmtree": shutil.rmtree}

    def wrap(key: str) -> Callable[..., Any]:
        def fake(*args: Any, **kwargs: Any) -> Any:
            if dead[0]:
                raise error
            if key == name:
                calls[0] += 1
                if calls[0] == at:
                    dead[0] = isinstance(error, Killed)
                    raise error
            return real[key](*args, **kwargs)

        return fake

    with monkeypatch.context() as m:
        m.setattr(os, "replace", wrap("replace"))
        m.setattr(np, "savez", wrap("savez"))
        m.setattr(shutil, "rmtree", wrap("rmtree"))
        yield calls


STEPS = [("savez", 1), ("savez", 2), ("replace", 1), ("replace", 2)]


@pytest.mark.parametrize(("name", "at"), STEPS)
def test_a_failed_save_keeps_the_previous_router_and_leaves_nothing(
    routers: tuple[MixLLMRouter, MixLLMRouter],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    name: str,
    at: int,
) -> None:
    saved = routers[0].save(tmp_path / "r")
    with (
        _failing(monkeypatch, name, at, OSError("disk full")) as calls,
        pytest.raises(OSError, match="disk full"),
    ):
        routers[1].save(saved)
    assert calls[0] >= at  # the failure happened where this case says (then a roll-back)
    assert _which(saved, routers) == 0
    assert _entries(tmp_path) == ["r"]


@pytest.mark.parametrize(("name", "at"), STEPS)
def test_a_save_killed_at_any_step_leaves_a_loadable_router(
    routers: tuple[MixLLMRouter, MixLLMRouter],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    name: str,
    at: int,
) -> None:
    saved = routers[0].save(tmp_path / "r")
    with _failing(monkeypatch, name, at, Killed()), pytest.raises(Killed):
        routers[1].save(saved)
    # between the two renames the path is gone, and the new router (complete) is read
    expected = 1 if (name, at) == ("replace", 2) else 0
    assert _which(saved, routers) == expected
    assert MixLLMRouter.load(saved).llms == routers[expected].llms
    routers[1].save(saved)  # the next save cleans up what the killed one left
    assert _which(saved, routers) == 1 and _entries(tmp_path) == ["r"]


KILLED_CHILD = textwrap.dedent(
    """
    import os, signal, sys
    sys.path.insert(0, sys.argv[2])
    from reliability_helpers import fitted_router
    path = fitted_router(feedback=0).save(sys.argv[1])
    renames = [0]
    real = os.replace
    def replace(*args):
        renames[0] += 1
        if renames[0] == 2:  # the previous router is aside, the new one not yet in place
            os.kill(os.getpid(), signal.SIGKILL)
        real(*args)
    os.replace = replace
    fitted_router(feedback=8).save(path)
    """
)


def test_a_process_killed_between_the_renames_loses_no_router(
    routers: tuple[MixLLMRouter, MixLLMRouter], tmp_path: Path
) -> None:
    path = tmp_path / "r"
    proc = subprocess.run(
        [sys.executable, "-c", KILLED_CHILD, str(path), str(Path(__file__).parent)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert not path.exists() and len(_entries(tmp_path)) == 2  # both copies beside the path
    assert _which(path, routers) == 1
    routers[0].save(path)
    assert _which(path, routers) == 0 and _entries(tmp_path) == ["r"]


def test_an_interrupted_save_of_format_1_is_read_from_its_old_copy(
    routers: tuple[MixLLMRouter, MixLLMRouter], tmp_path: Path
) -> None:
    routers[1].save(tmp_path / "r.old")  # what a format-1 save left when killed mid-swap
    assert _which(tmp_path / "r", routers) == 1


def test_an_incomplete_copy_is_never_read(
    routers: tuple[MixLLMRouter, MixLLMRouter], tmp_path: Path
) -> None:
    saved = routers[0].save(tmp_path / "r")
    os.rename(saved, tmp_path / ".r.mixllm-old-0000000000000001-00000000")
    (tmp_path / ".r.mixllm-new-0000000000000002-00000000").mkdir()  # killed while writing
    assert _which(tmp_path / "r", routers) == 0
