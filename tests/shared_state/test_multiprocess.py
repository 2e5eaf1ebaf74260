"""Replicas in separate processes on one log (SQLite file, real PostgreSQL): 4 processes route
and give feedback at once while a fifth is killed with SIGKILL mid-stream; the survivors end with
the online state of one router that saw all the feedback, and no acknowledged row is lost."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np

from mixllm_core import MixLLMRouter
from mixllm_core.online import OnlineHeads
from mixllm_core.testing import HashingEncoder, make_synthetic_world

M = 15  # routed calls with feedback per replica
KILL_AFTER = 6  # acknowledged feedbacks of the replica that is killed

REPLICA = r"""
import os, sys
import numpy as np
from mixllm_core import MixLLMRouter
from mixllm_core.testing import HashingEncoder, make_synthetic_world
saved, url, k, m, kill_after, out = sys.argv[1:7]
k, m, kill_after = int(k), int(m), int(kill_after)
queries = make_synthetic_world(300, seed=3).queries
router = MixLLMRouter.load(saved, encoder=HashingEncoder(), log=url, sync_interval_s=0.05)
print("READY", flush=True)
sys.stdin.readline()  # every replica starts routing at once
for i in range(m):
    d = router.route(queries[(k * m + i) % len(queries)], lam=5)
    router.feedback(d.decision_id, score=float((k + i) % 3 == 0))
    print("ACK", d.decision_id, flush=True)  # acknowledged to the caller
    if i + 1 == kill_after:
        os.kill(os.getpid(), 9)  # dies mid-stream, closing nothing
print("DONE", flush=True)
sys.stdin.readline()  # every replica has finished writing
router.sync()
heads = router.get_state().heads
np.savez(out, A_inv=heads.A_inv, b=heads.b, n=heads.n_updates,
         q=router.predict(queries[250:300])["quality"])
print("SYNCED", flush=True)
"""


def _lines_until(proc: subprocess.Popen[str], word: str) -> list[str]:
    assert proc.stdout is not None
    lines = []
    for line in proc.stdout:
        lines.append(line.strip())
        if line.startswith(word):
            break
    return lines


def test_replicas_in_processes_learn_as_one_and_survive_a_kill(
    log_url: str, tmp_path: Path, closing
) -> None:
    world = make_synthetic_world(300, seed=3)
    saved = MixLLMRouter(encoder=HashingEncoder(), seed=0, online_ridge=1.0)
    saved_dir = saved.fit(world.subset(range(150))).save(tmp_path / "router")
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                REPLICA,
                str(saved_dir),
                log_url,
                str(k),
                str(M),
                str(KILL_AFTER if k == 4 else 0),
                str(tmp_path / f"heads{k}.npz"),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for k in range(5)
    ]
    try:
        for p in procs:
            assert _lines_until(p, "READY")[-1] == "READY"
        for p in procs:
            assert p.stdin is not None
            p.stdin.write("\n")
            p.stdin.flush()
        acked = {k: _lines_until(p, "DONE") for k, p in enumerate(procs)}
        assert procs[4].wait(timeout=120) == -9
        killed_acks = [line.split()[1] for line in acked[4] if line.startswith("ACK")]
        assert len(killed_acks) == KILL_AFTER
        for p in procs[:4]:
            assert p.stdin is not None
            p.stdin.write("\n")
            p.stdin.flush()
            assert _lines_until(p, "SYNCED")[-1] == "SYNCED"
            assert p.wait(timeout=120) == 0
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
            for pipe in (p.stdin, p.stdout):
                if pipe is not None:
                    pipe.close()
    # no acknowledged row is lost, the killed replica's included
    reader = closing(MixLLMRouter.load(saved_dir, encoder=HashingEncoder(), log=log_url))
    assert all(reader.log.has_feedback(d) for d in killed_acks)
    rows = list(reader.log.feedback())
    assert len(rows) == 4 * M + KILL_AFTER
    # the survivors hold the same state, bit for bit ...
    states = [np.load(tmp_path / f"heads{k}.npz") for k in range(4)]
    for s in states[1:]:
        for key in ("A_inv", "b", "n", "q"):
            np.testing.assert_array_equal(s[key], states[0][key])
    # ... that of one router that saw all the feedback, whatever the order it came in
    heads_state = saved.get_state().heads
    assert heads_state is not None
    reference = OnlineHeads.from_state(heads_state)
    for fb in sorted(rows, key=lambda fb: (fb.llm, -fb.seq)):  # another order than the ids'
        reference.learn_one(fb.llm, fb.x, fb.score - fb.offline_quality)
    want = reference.get_state(heads_state.names)
    np.testing.assert_array_equal(states[0]["n"], want.n_updates)
    np.testing.assert_allclose(states[0]["A_inv"], want.A_inv, rtol=0, atol=1e-9)
    np.testing.assert_allclose(states[0]["b"], want.b, rtol=0, atol=1e-9)
    assert int(want.n_updates.sum()) == len(rows)
    np.testing.assert_allclose(
        reader.predict(world.queries[250:300])["quality"], states[0]["q"], rtol=0, atol=1e-12
    )
