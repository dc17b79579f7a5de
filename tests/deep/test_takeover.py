"""A worker whose claim was taken over stops writing that model: no checkpoint, no heartbeat on the new
holder's claim, and a group it no longer owns at all stops (issue 17: work is never duplicated); the
submitit executor runs the same sweep as local processes or a SLURM job array."""

from __future__ import annotations

import json
import os
import time

import pytest

from linvae.deep.data import load
from linvae.deep.runs import Claims
from linvae.deep.train import train_phase
from tests.deep.test_sweep import SMALL, TINY, _assert_same, _models


def _members(cfg):
    from linvae.deep.sweep import plan

    return [t.member for t in plan(cfg, "unused") if t.phase == "beta"][:2]


def test_a_model_taken_over_is_no_longer_checkpointed_and_a_group_owned_by_none_stops(tmp_path):
    ds = load("dsprites", source="procedural")
    members = _members(TINY)
    paths = [tmp_path / "a.npz", tmp_path / "b.npz"]
    asked = []

    def half():
        asked.append(1)
        return [True, False]

    res = train_phase(
        TINY, ds, members, phase="beta", start_step=0, steps=TINY.beta_steps, checkpoints=paths,
        progress=False, owned=half, log=lambda msg: None,
    )  # fmt: skip
    assert (
        int(res.state.step) == TINY.beta_steps and len(asked) == TINY.beta_steps // TINY.checkpoint_every - 1
    )
    assert paths[0].exists() and not paths[1].exists()

    paths = [tmp_path / "c.npz", tmp_path / "d.npz"]
    said = []
    res = train_phase(
        TINY, ds, members, phase="beta", start_step=0, steps=TINY.beta_steps, checkpoints=paths,
        progress=False, owned=lambda: [False, False], log=said.append,
    )  # fmt: skip
    assert int(res.state.step) == TINY.checkpoint_every, (
        "a group nobody owns must stop at its first checkpoint"
    )
    assert not any(p.exists() for p in paths)
    assert any("taken over" in m for m in said)


def test_the_heartbeat_leaves_a_taken_over_claim_alone(tmp_path):
    path = tmp_path / "m" / "claim.json"
    a = Claims(stale_s=60, heartbeat_s=1)
    assert a.try_claim(path)
    a.beat()
    fresh = path.stat().st_mtime
    # Another worker took it over (its own nonce); a's heartbeat must not keep that claim alive.
    path.write_text(json.dumps({"worker": "other", "host": a.host, "pid": os.getpid(), "nonce": "theirs"}))
    old = time.time() - 30
    os.utime(path, (old, old))
    a.beat()
    assert path.stat().st_mtime == old and not a.still_held(path)
    assert fresh > old


# ---------------------------------------------------------------------------------------------------
# The executor: submitit runs the same sweep as local processes, or as a SLURM job array


@pytest.mark.slow
def test_local_executor_workers_train_the_sweep_once_as_one_process_would(tmp_path):
    # ~60 s: two submitit LocalExecutor processes (the CLI's --executor local) on one runs folder.
    from linvae.deep.sweep import plan, submit, train_sweep

    runs, alone = tmp_path / "shared", tmp_path / "alone"
    jobs = submit(train_sweep, [SMALL, runs], executor="local", jobs=2, folder=tmp_path / "submitit")
    counts = [j.result() for j in jobs]
    assert sum(sum(c.values()) for c in counts) == len(plan(SMALL, runs)), "a model was trained twice or lost"
    # The reference is one worker of the same kind (a process of its own, as in test_sweep's workers test).
    submit(train_sweep, [SMALL, alone], executor="local", jobs=1, folder=tmp_path / "submitit")[0].result()
    _assert_same(_models(runs), _models(alone))


def test_slurm_options_reach_submitit_as_one_job_array(monkeypatch, tmp_path):
    import submitit

    from linvae.deep.sweep import SlurmOptions, submit

    made = {}

    class FakeExecutor:
        def __init__(self, folder, cluster):
            made.update(folder=folder, cluster=cluster)

        def update_parameters(self, **params):
            made["params"] = params

        def map_array(self, fn, *arg_lists):
            made["array"] = arg_lists
            return [object() for _ in arg_lists[0]]

    monkeypatch.setattr(submitit, "AutoExecutor", FakeExecutor)
    slurm = SlurmOptions(partition="gpu", gpus_per_job=8, cpus_per_job=32, mem_gb=256, time_min=600,
                         account="acct", qos="high")  # fmt: skip
    jobs = submit(print, ["argv"], executor="slurm", jobs=3, folder=tmp_path, slurm=slurm)
    assert len(jobs) == 3 and made["cluster"] == "slurm" and made["array"] == (["argv"] * 3,)
    assert made["params"] == {
        "name": "linvae-deep", "slurm_array_parallelism": 3, "nodes": 1, "tasks_per_node": 1,
        "slurm_partition": "gpu", "gpus_per_node": 8, "cpus_per_task": 32, "mem_gb": 256, "timeout_min": 600,
        "slurm_account": "acct", "slurm_qos": "high",
    }  # fmt: skip
    with pytest.raises(ValueError, match="--executor"):
        submit(print, [], executor="pbs", jobs=1, folder=tmp_path)
    with pytest.raises(ValueError, match="--jobs"):
        submit(print, [], executor="local", jobs=0, folder=tmp_path)
