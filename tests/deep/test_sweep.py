"""The sweep at scale: claims, workers sharing a runs folder, a killed worker, regrouped resume,
sharding over host devices, group sizing."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from linvae._tolerance import F32
from linvae.deep.config import PRESETS
from linvae.deep.data import load
from linvae.deep.runs import Claims, checkpoint_path, model_path
from linvae.deep.sweep import parse_shard, plan, progress_of, train_sweep
from linvae.deep.train import models_per_device, train_phase
from tests.helpers import assert_close

ROOT = Path(__file__).resolve().parents[2]
# A linear model on procedural dSprites: the uint8 image pipeline, seconds per sweep.
TINY = dataclasses.replace(
    PRESETS["smoke"], model="linear", batch_size=8, beta_steps=40, lambda_steps=20, chunk_steps=10,
    checkpoint_every=10, log_window=10, betas=(1.0, 8.0), lambdas=(0.0, 4.0), seeds=(0, 1), learning_rate=1e-3,
)  # fmt: skip

#: The subprocess tests: 2 beta-VAE + 4 lambda-beta models.
SMALL = dataclasses.replace(TINY, seeds=(0,), beta_steps=30, lambda_steps=10)


def _models(runs: Path) -> dict[str, dict]:
    """Every finished model of a runs folder: its arrays and the numbers of its training record."""
    out = {}
    for path in sorted(runs.glob("*/*/model.npz")):
        with np.load(path) as f:
            arrays = {k: f[k] for k in f.files if k != "meta"}
        rec = json.loads((path.parent / "train.json").read_text())
        out[str(path.parent.relative_to(runs))] = {
            "arrays": arrays, "window": rec["window"], "history": rec["history"], "status": rec["status"],
        }  # fmt: skip
    return out


def _assert_same(a: dict[str, dict], b: dict[str, dict]) -> None:
    assert sorted(a) == sorted(b)
    for name in a:
        for k, x in a[name]["arrays"].items():
            assert np.array_equal(x, b[name]["arrays"][k]), f"{name} {k} differs"
        for k in ("window", "history", "status"):
            assert a[name][k] == b[name][k], f"{name} {k} differs"


# ---------------------------------------------------------------------------------------------------
# Claims


def test_a_claim_is_exclusive_and_a_dead_or_silent_workers_claim_is_taken_over(tmp_path):
    path = tmp_path / "m" / "claim.json"
    a, b = Claims(stale_s=60, heartbeat_s=1), Claims(stale_s=60, heartbeat_s=1)
    assert a.try_claim(path) and not b.try_claim(path)
    assert b.holder(path) == a.worker
    # A silent worker: no heartbeat for longer than stale_s.
    old = time.time() - 61
    os.utime(path, (old, old))
    assert b.holder(path) is None and b.try_claim(path) and b.taken_over == [path]
    assert not a.still_held(path) and b.still_held(path)
    a.release(path)  # no longer a's: left alone
    assert path.exists()
    b.release(path)
    assert not path.exists()
    # A dead process of this host: taken over at once.
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    path.write_text(json.dumps({"worker": "x", "host": a.host, "pid": dead.pid, "nonce": "n"}))
    assert a.try_claim(path)
    # The heartbeat keeps a claim fresh; leaving the context gives every claim back.
    old = time.time() - 30
    os.utime(path, (old, old))
    with a.alive():
        a.beat()
        assert path.stat().st_mtime > old + 20
    assert not path.exists()
    with pytest.raises(ValueError, match="outlive several heartbeats"):
        Claims(stale_s=1, heartbeat_s=1)


def test_shards_partition_the_lineages(tmp_path):
    whole = plan(TINY, tmp_path)
    parts = [plan(TINY, tmp_path, (i, 3)) for i in range(3)]
    assert sorted(map(tuple, whole)) == sorted(t for p in parts for t in map(tuple, p))
    for p in parts:  # a lambda model goes with its beta-VAE parent
        assert {t.parent for t in p if t.parent is not None} <= set(p)
    with pytest.raises(ValueError, match="i/N"):
        parse_shard("3/3")


def test_group_sizing_counts_the_data_once():
    # 24 GiB card, a 10 GiB data set already resident (in bytes_in_use), 1 GiB per model.
    gib = 2**30
    fit = dict(limit=24 * gib, in_use=10 * gib, fraction=1.0, per_model=gib, data=10 * gib)
    assert models_per_device(**fit, data_resident=True) == 14
    assert models_per_device(**fit, data_resident=False) == 4  # the data is still to come


# ---------------------------------------------------------------------------------------------------
# Resume regroups freely


@pytest.mark.slow
def test_resume_with_another_group_size_and_a_grid_extended_by_a_seed(tmp_path):
    # ~30 s (several compilations); the CI twin is tests/deep/test_checkpoint.py's regrouped resume.
    ds = load("dsprites", source="procedural")
    runs = tmp_path / "runs"
    two = dataclasses.replace(TINY, lambdas=(0.0,), lambda_steps=0, max_models=2)
    # Interrupted: the first group of two beta-VAE models stopped after its checkpoint at step 20.
    tasks = [t for t in plan(two, runs) if t.phase == "beta"][:2]
    train_sweep(two, runs, dataset=ds, progress=False)
    for t in tasks:
        model_path(t.runs, t.phase, t.member).unlink()
        (t.folder / "train.json").unlink()
    train_phase(
        two, ds, [t.member for t in tasks], phase="beta", start_step=0, steps=two.beta_steps,
        checkpoints=[t.checkpoint for t in tasks], stop_at=20, progress=False,
    )  # fmt: skip
    assert all(t.checkpoint.exists() for t in tasks)
    # Resumed in groups of three, with a new seed: the two continue from step 20, the others are done.
    three = dataclasses.replace(two, seeds=(0, 1, 2), max_models=3)
    assert train_sweep(three, runs, dataset=ds, progress=False) == {"beta": 4, "lambda": 0}
    fresh = tmp_path / "fresh"
    train_sweep(three, fresh, dataset=ds, progress=False)
    for t in tasks:
        rec = json.loads((t.folder / "train.json").read_text())
        assert rec["resumed_from"] == 20 and rec["group_width"] == 3
        assert not checkpoint_path(t.runs, t.phase, t.member).exists()
        ref = json.loads((fresh / t.folder.relative_to(runs) / "train.json").read_text())
        assert rec["history"]["step"] == ref["history"]["step"]
        with (
            np.load(t.folder / "model.npz") as a,
            np.load(fresh / t.folder.relative_to(runs) / "model.npz") as b,
        ):
            for k in a.files:
                if k != "meta":
                    assert_close(a[k], b[k], F32, f"{t.label()} {k}")
    assert progress_of(three, runs) == (6, 6)


# ---------------------------------------------------------------------------------------------------
# Devices and workers (subprocesses)

_DEVICES = textwrap.dedent(
    """
    import json, sys, time
    sys.path.insert(0, {root!r})
    import jax
    from tests.deep.test_sweep import SMALL
    from linvae.deep.data import load
    from linvae.deep.sweep import train_sweep
    ds = load("dsprites", source="procedural")
    wall = {{}}
    for n in (1, 4):
        t = time.perf_counter()
        train_sweep(SMALL, {runs!r} + f"/d{{n}}", dataset=ds, devices=jax.devices()[:n], progress=False)
        wall[n] = time.perf_counter() - t
    print(json.dumps({{"devices": len(jax.devices()), "wall_s": wall}}))
    """
)


def test_four_host_devices_give_the_results_of_one(tmp_path):
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=4")
    out = subprocess.run(
        [sys.executable, "-c", _DEVICES.format(root=str(ROOT), runs=str(tmp_path))],
        capture_output=True, text=True, env=env, cwd=ROOT, timeout=600,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report["devices"] == 4
    one, four = _models(tmp_path / "d1"), _models(tmp_path / "d4")
    assert len(one) == 2 + 2 * 2
    _assert_same(one, four)
    rec = json.loads((tmp_path / "d4" / "beta" / "b1_s0" / "train.json").read_text())
    assert len(rec["devices"]) == 4 and rec["group_width"] == 4


_WORKER = textwrap.dedent(
    """
    import json, sys
    sys.path.insert(0, {root!r})
    from tests.deep.test_sweep import SMALL
    from linvae.deep.sweep import train_sweep
    trained = train_sweep(SMALL, {runs!r}, progress=False, poll_s=0.1)
    print(json.dumps(trained))
    """
)


def _worker(runs: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", _WORKER.format(root=str(ROOT), runs=str(runs))],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
    )  # fmt: skip


def test_three_workers_and_a_killed_one_train_every_model_once_as_one_process_would(tmp_path):
    runs, alone = tmp_path / "shared", tmp_path / "alone"
    workers = [_worker(runs) for _ in range(3)]
    # Kill the first worker as soon as it has checkpointed a model it holds.
    deadline = time.time() + 300
    victim = workers[0]
    while time.time() < deadline and victim.poll() is None:
        mine = [
            c for c in runs.glob("*/*/claim.json")
            if (c.parent / "checkpoint.npz").exists() and f":{victim.pid}:" in c.read_text(errors="ignore")
        ]  # fmt: skip
        if mine:
            break
        time.sleep(0.02)
    assert victim.poll() is None, "the first worker finished before it could be killed"
    victim.send_signal(signal.SIGKILL)
    victim.communicate()
    counts = []
    for w in workers[1:]:
        out, err = w.communicate(timeout=300)
        assert w.returncode == 0, err[-3000:]
        counts.append(json.loads(out.strip().splitlines()[-1]))
    rerun = _worker(runs)
    out, err = rerun.communicate(timeout=300)
    assert rerun.returncode == 0, err[-3000:]
    counts.append(json.loads(out.strip().splitlines()[-1]))
    single = _worker(alone)
    single.communicate(timeout=300)

    total = len(plan(SMALL, runs))
    by_victim = sum(
        f":{victim.pid}:" in json.loads(p.read_text())["worker"] for p in runs.glob("*/*/train.json")
    )
    assert sum(sum(c.values()) for c in counts) + by_victim == total, "a model was trained twice or lost"
    assert not list(runs.glob("*/*/claim.json")) and not list(runs.glob("*/*/checkpoint.npz"))
    _assert_same(_models(runs), _models(alone))
