"""Checkpoints: atomic round trip, refusal of mismatched trees, and bit-exact resume after a kill."""

import dataclasses
import os
import signal
import subprocess
import sys
import textwrap
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from linvae.deep import checkpoint
from linvae.deep.config import PRESETS
from linvae.deep.data import load
from linvae.deep.record import Member
from linvae.deep.train import train_phase

# A linear model on procedural dSprites: the uint8 image pipeline, fast enough for a kill-and-resume test.
CFG = dataclasses.replace(
    PRESETS["smoke"], model="linear", batch_size=16, learning_rate=1e-3, chunk_steps=25, checkpoint_every=50,
    log_window=20,
)  # fmt: skip
MEMBERS = [Member(1.0, 0.0, 0), Member(4.0, 2.0, 1)]
STEPS = 600


def test_round_trip_is_exact_and_atomic(tmp_path):
    tree = {"a": jnp.arange(5, dtype=jnp.float32) / 3, "b": (jnp.ones((2, 3), jnp.int32), jnp.asarray(True))}
    path = tmp_path / "ck.npz"
    checkpoint.save(path, tree, {"step": 7})
    out, meta = checkpoint.load(path, tree)
    assert meta == {"step": 7}
    for x, y in zip(jax.tree_util.tree_leaves(tree), jax.tree_util.tree_leaves(out), strict=True):
        assert x.dtype == y.dtype and np.array_equal(np.asarray(x), np.asarray(y))
    assert os.listdir(tmp_path) == ["ck.npz"]
    with pytest.raises(checkpoint.CheckpointError, match="leaf"):
        checkpoint.load(path, {"a": jnp.zeros(4, jnp.float32), "b": tree["b"]})


_CHILD = textwrap.dedent(
    """
    import sys
    import jax
    # The same JAX configuration as tests/conftest.py, so that both processes compile the same program.
    jax.config.update("jax_enable_x64", True)
    jax.config.update("jax_numpy_rank_promotion", "raise")
    sys.path.insert(0, {root!r})
    from tests.deep.test_checkpoint import CFG, MEMBERS, STEPS
    from linvae.deep.data import load
    from linvae.deep.train import train_phase
    train_phase(CFG, load("dsprites", source="procedural"), MEMBERS, phase="beta", start_step=0, steps=STEPS,
                checkpoint_path={path!r}, progress=False)
    print("finished", flush=True)
    """
)


def test_killed_run_resumes_bit_identically(tmp_path):
    ds = load("dsprites", source="procedural")
    path = str(tmp_path / "group.npz")
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD.format(root=root, path=path)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=root,
    )  # fmt: skip
    deadline = time.time() + 240
    while not os.path.exists(path) and time.time() < deadline and child.poll() is None:
        time.sleep(0.05)
    time.sleep(0.3)
    child.send_signal(signal.SIGKILL)
    child.wait()
    assert os.path.exists(path), "the child wrote no checkpoint before it was killed"
    killed_at = checkpoint.load_meta(path)["history_steps"][-1]
    assert 0 < killed_at < STEPS, f"kill landed at step {killed_at}; the test needs an interrupted run"

    resumed = train_phase(
        CFG, ds, MEMBERS, phase="beta", start_step=0, steps=STEPS, checkpoint_path=path, progress=False
    )
    assert resumed.resumed_from == killed_at
    assert not os.path.exists(path), "the group checkpoint is removed once the phase completes"
    straight = train_phase(CFG, ds, MEMBERS, phase="beta", start_step=0, steps=STEPS, progress=False)
    differ = [
        jax.tree_util.keystr(path)
        + f" max |diff| {np.max(np.abs(np.asarray(a, float) - np.asarray(b, float))):.3e}"
        for (path, a), b in zip(
            jax.tree_util.tree_leaves_with_path(resumed.state),
            jax.tree_util.tree_leaves(straight.state),
            strict=True,
        )
        if not np.array_equal(np.asarray(a), np.asarray(b))
    ]
    assert not differ, f"resumed run differs from the uninterrupted one: {differ}"
    assert np.array_equal(resumed.history, straight.history)
