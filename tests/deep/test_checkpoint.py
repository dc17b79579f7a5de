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

from linvae._tolerance import F32
from linvae.deep import checkpoint
from linvae.deep.config import PRESETS
from linvae.deep.data import load
from linvae.deep.record import Member
from linvae.deep.train import train_phase
from tests.helpers import assert_close

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
                checkpoints={paths!r}, progress=False)
    print("finished", flush=True)
    """
)


def _differences(resumed, i_resumed, straight, i_straight):
    return [
        jax.tree_util.keystr(key)
        + f" max |diff| {np.max(np.abs(np.asarray(a, float)[i_resumed] - np.asarray(b, float)[i_straight])):.3e}"
        for (key, a), b in zip(
            jax.tree_util.tree_leaves_with_path(resumed.state._replace(step=None)),
            jax.tree_util.tree_leaves(straight.state._replace(step=None)),
            strict=True,
        )
        if not np.array_equal(np.asarray(a)[i_resumed], np.asarray(b)[i_straight])
    ]


def test_killed_run_resumes_from_each_models_checkpoint_in_another_group(tmp_path):
    # Two models train as one group and are killed. Each has its own checkpoint, so they resume in a
    # group of another order (bit-identical: same width per device) or, when the kill fell between
    # the two files, each in a group of its own (another width: equal to float32 roundoff).
    ds = load("dsprites", source="procedural")
    paths = [str(tmp_path / f"model{i}.npz") for i in range(len(MEMBERS))]
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD.format(root=root, paths=paths)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=root,
    )  # fmt: skip
    deadline = time.time() + 240
    while not os.path.exists(paths[-1]) and time.time() < deadline and child.poll() is None:
        time.sleep(0.05)
    time.sleep(0.3)
    child.send_signal(signal.SIGKILL)
    child.wait()
    assert all(os.path.exists(p) for p in paths), "the child wrote no checkpoint before it was killed"
    at = [checkpoint.load_meta(p)["step"] for p in paths]
    assert all(0 < k < STEPS for k in at), f"kill landed at {at}; the test needs an interrupted run"

    straight = train_phase(CFG, ds, MEMBERS, phase="beta", start_step=0, steps=STEPS, progress=False)
    if at[0] == at[1]:
        resumed = train_phase(
            CFG, ds, MEMBERS[::-1], phase="beta", start_step=0, steps=STEPS, checkpoints=paths[::-1],
            progress=False,
        )  # fmt: skip
        assert resumed.resumed_from == at[0]
        for i in range(2):
            differ = _differences(resumed, 1 - i, straight, i)
            assert not differ, f"model {i} resumed differs from the uninterrupted run: {differ}"
            assert np.array_equal(resumed.history[:, 1 - i], straight.history[:, i])
        return
    for i, (mb, path) in enumerate(zip(MEMBERS, paths, strict=True)):
        alone = train_phase(
            CFG, ds, [mb], phase="beta", start_step=0, steps=STEPS, checkpoints=[path], progress=False
        )
        assert alone.resumed_from == at[i]
        assert_close(alone.state.params.A[0], straight.state.params.A[i], F32, f"model {i} resumed alone")
        assert np.array_equal(alone.history_steps, straight.history_steps)
