"""Training: finite losses, NaN isolation, controllers, scan vs loop, and errors before training."""

import dataclasses
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from linvae._tolerance import F32
from linvae.deep.config import PRESETS, DeepConfig, preset, validate
from linvae.deep.data import LinearGaussian, load, to_device
from linvae.deep.data.sampler import batch_indices, minibatch
from linvae.deep.record import Member
from linvae.deep.runs import target_folders
from linvae.deep.sweep import train_sweep
from linvae.deep.train import init_state, make_chunk, model_bytes, open_dataset, train_phase
from tests.helpers import assert_close

TINY = dataclasses.replace(
    PRESETS["smoke"], batch_size=8, beta_steps=4, lambda_steps=2, chunk_steps=2, log_window=2,
    checkpoint_every=2, betas=(1.0,), lambdas=(0.0,), seeds=(0,),
)  # fmt: skip


def _linear_gaussian():
    rng = np.random.default_rng(0)
    return LinearGaussian(np.eye(2), rng.normal(size=(6, 2)), 0.1)


LINEAR = dataclasses.replace(
    TINY, dataset="linear_gaussian", model="linear", likelihood="gaussian", latent_dim=3, batch_size=32,
    learning_rate=1e-2, beta_steps=40, chunk_steps=10, log_window=10,
)  # fmt: skip


@pytest.mark.slow
def test_conv_smoke_step_is_finite_and_moves():
    # The conv path also runs in tests/deep/test_deep_figures.py; this compiles it once more (~40 s here).
    ds = load("dsprites", source="procedural")
    res = train_phase(TINY, ds, [Member(4.0, 0.0, 0)], phase="beta", start_step=0, steps=4, progress=False)
    assert res.history.shape == (2, 1, 5)
    assert np.all(np.isfinite(res.history))
    assert bool(res.state.alive[0]) and int(res.state.step) == 4
    start, _ = init_state(TINY, ds, [Member(4.0, 0.0, 0)], steps=4)
    before, after = jax.tree_util.tree_leaves(start.params), jax.tree_util.tree_leaves(res.state.params)
    assert all(not np.array_equal(a, b) for a, b in zip(before, after, strict=True))


def test_nan_stops_only_the_affected_model():
    ds = _linear_gaussian()
    members = [Member(1.0, 0.0, 0), Member(2.0, 0.5, 1), Member(4.0, 0.0, 2)]
    clean, static = init_state(LINEAR, ds, members, steps=20)
    bad_B = clean.params.B.at[1, 0, 0].set(jnp.inf)
    poisoned = clean._replace(params=_with_B(clean.params, bad_B))
    chunk = make_chunk(LINEAR, static, 20, 20, 0)
    out_clean, _ = chunk(clean, ds)
    out_bad, means = chunk(poisoned, ds)
    assert np.asarray(out_bad.alive).tolist() == [True, False, True]
    assert int(out_bad.failed_at[1]) == 0
    assert np.isnan(np.asarray(means)[1]).all() and np.isfinite(np.asarray(means)[[0, 2]]).all()
    for i in (0, 2):
        assert_close(out_bad.params.A[i], out_clean.params.A[i], F32, f"model {i} unaffected")


def _with_B(params, B):
    import equinox as eqx

    return eqx.tree_at(lambda p: p.B, params, B)


def test_nan_message_names_the_model():
    ds = _linear_gaussian()
    members = [Member(1.0, 0.0, 0), Member(2.0, 0.0, 1)]
    state, _ = init_state(LINEAR, ds, members, steps=20)
    messages = []
    bad = _with_B(state.params, state.params.B.at[0].set(jnp.nan))
    res = train_phase(
        LINEAR,
        ds,
        members,
        phase="beta",
        start_step=0,
        steps=20,
        params=bad,
        log=messages.append,
        progress=False,
    )
    assert np.asarray(res.state.alive).tolist() == [False, True]
    assert any("beta=1 lambda=0 seed=0 stopped at step 0" in m for m in messages)


def test_scan_and_loop_chunks_agree():
    ds = _linear_gaussian()
    members = [Member(1.0, 0.0, 0), Member(3.0, 1.0, 1)]
    state, static = init_state(LINEAR, ds, members, steps=10)
    a, ma = make_chunk(LINEAR, static, 10, 10, 0, scan=True)(state, ds)
    b, mb = make_chunk(LINEAR, static, 10, 10, 0, scan=False)(state, ds)
    assert_close(a.params.A, b.params.A, F32, "scan vs loop")
    assert_close(ma, mb, F32, "chunk means")


@pytest.mark.parametrize("schedule", ["linear", "controlvae", "dynamicvae"])
def test_beta_schedules_and_controllers_drive_beta(schedule):
    cfg = dataclasses.replace(LINEAR, beta_schedule=schedule, warmup_steps=20, betas=(2.0,))
    ds = _linear_gaussian()
    res = train_phase(cfg, ds, [Member(2.0, 0.0, 0)], phase="beta", start_step=0, steps=40, progress=False)
    beta = res.history[:, 0, 3]
    assert np.all(np.isfinite(beta))
    if schedule == "linear":
        assert beta[0] < beta[-1] <= 2.0 + 1e-6
    else:
        assert not np.allclose(beta, beta[0])


def test_sweep_trains_only_what_is_missing(tmp_path):
    ds = _linear_gaussian()
    cfg = dataclasses.replace(LINEAR, betas=(1.0, 2.0), lambdas=(0.0, 1.0), lambda_steps=10)
    assert train_sweep(cfg, tmp_path, dataset=ds, progress=False) == {"beta": 2, "lambda": 4}
    assert train_sweep(cfg, tmp_path, dataset=ds, progress=False) == {"beta": 0, "lambda": 0}
    more = dataclasses.replace(cfg, seeds=(0, 1))
    assert train_sweep(more, tmp_path, dataset=ds, progress=False) == {"beta": 2, "lambda": 4}
    with pytest.raises(ValueError, match="different configuration"):
        train_sweep(dataclasses.replace(cfg, learning_rate=1e-3), tmp_path, dataset=ds, progress=False)


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"betas": (1.0, -4.0)}, "beta must be >= 0"),
        ({"lambdas": (0.0, -1.0)}, "lambda must be >= 0"),
        ({"dataset": "mnist"}, "unknown data set"),
        ({"seeds": (0, 0)}, "duplicates"),
        ({"beta_schedule": "controlvae", "betas": (1.0, 4.0)}, "one beta"),
        ({"likelihood": "poisson"}, "likelihood"),
    ],
)
def test_bad_config_is_refused(changes, match):
    with pytest.raises(ValueError, match=match):
        validate(dataclasses.replace(DeepConfig(), **changes))


def test_batch_larger_than_data_is_refused(tmp_path):
    ds = load("dsprites", source="procedural")
    cfg = dataclasses.replace(TINY, batch_size=ds.num_images + 1)
    with pytest.raises(ValueError, match="larger than the data set"):
        train_sweep(cfg, tmp_path, dataset=ds, progress=False)
    assert not (tmp_path / "beta").exists()


def test_unknown_preset_and_missing_real_file(tmp_path):
    with pytest.raises(ValueError, match="unknown preset"):
        preset("huge")
    with pytest.raises(FileNotFoundError):
        open_dataset(dataclasses.replace(DeepConfig(), source="real", data_dir=str(tmp_path)))


# ---------------------------------------------------------------------------------------------------
# Minibatches: shuffled epochs, drop last
# ---------------------------------------------------------------------------------------------------


def _epoch_batches(seed, epochs, n, b):
    """Indices of every step of the first ``epochs`` epochs, (epochs, N // B, B)."""
    spe = n // b
    steps = jnp.arange(epochs * spe, dtype=jnp.int32)
    idx = jax.jit(jax.vmap(lambda t: batch_indices(seed, t, n, b)))(steps)
    return np.asarray(idx).reshape(epochs, spe, b)


@pytest.mark.parametrize(("n", "b"), [(97, 8), (256, 64), (1000, 64), (737_280, 64)])
def test_each_epoch_visits_every_index_at_most_once(n, b):
    # 737,280 = dSprites: one full epoch of 11,520 steps. 97 is prime, 256 divisible by the batch.
    epochs = _epoch_batches(3, 2, n, b)
    for e in epochs:
        flat = e.ravel()
        assert flat.min() >= 0 and flat.max() < n
        assert np.unique(flat).size == (n // b) * b, "an index repeats within an epoch"
    assert not np.array_equal(epochs[0], epochs[1]), "consecutive epochs use the same order"


def test_batch_order_depends_on_seed_and_is_a_pure_function_of_the_step():
    n, b = 1000, 16
    a, c = _epoch_batches(0, 1, n, b), _epoch_batches(1, 1, n, b)
    assert not np.array_equal(a, c), "two seeds give the same order"

    # The batch of step t inside one scan equals the batch computed alone (as after a resume at t).
    def body(carry, t):
        return carry, batch_indices(0, t, n, b)

    _, scanned = jax.lax.scan(body, None, jnp.arange(130, dtype=jnp.int32))  # crosses the epoch at 62
    for t in (0, 61, 62, 100, 129):
        assert np.array_equal(np.asarray(scanned[t]), np.asarray(batch_indices(0, t, n, b)))
    assert np.array_equal(np.asarray(scanned[:62]).reshape(1, 62, b), a)


def _index_images(n):
    """A stored data set whose image i spells i in its two pixels (i // 256, i % 256)."""
    from linvae.deep.data import FactorGrid, Provenance, Stored

    i = np.arange(n)
    pixels = np.stack([i // 256, i % 256], axis=-1).astype(np.uint8).reshape(n, 1, 2, 1)
    grid = FactorGrid(names=("index",), sizes=(n,), values=(tuple(float(v) for v in range(n)),))
    return Stored(
        array=pixels, name="index", grid=grid, image_shape=(1, 2, 1),
        provenance=Provenance(kind="procedural stand-in", source="test"),
    )  # fmt: skip


def test_training_steps_see_the_shuffled_batches_and_resume_exactly():
    ds = to_device(_index_images(300))
    x = np.asarray(minibatch(ds, 2, 37, 8)) * 255.0
    assert np.array_equal(
        np.rint(x[:, 0, 0, 0] * 256 + x[:, 0, 1, 0]), np.asarray(batch_indices(2, 37, 300, 8))
    )
    cfg = dataclasses.replace(LINEAR, dataset="dsprites", likelihood="bernoulli", batch_size=8, latent_dim=2)
    members = [Member(1.0, 0.0, 0), Member(2.0, 0.0, 1)]
    state, static = init_state(cfg, ds, members, steps=50)
    # 50 steps in one scan vs 30 + 20 (a resume at step 30, across the epoch boundary at 37).
    whole, _ = make_chunk(cfg, static, 50, 50, 0, scan=True)(state, ds)
    half, _ = make_chunk(cfg, static, 50, 30, 0, scan=True)(state, ds)
    rest, _ = make_chunk(cfg, static, 50, 20, 0, scan=True)(half, ds)
    for a, b in zip(jax.tree_util.tree_leaves(whole), jax.tree_util.tree_leaves(rest), strict=True):
        assert np.array_equal(np.asarray(a), np.asarray(b))
    assert bool(np.all(np.asarray(whole.alive)))


# ---------------------------------------------------------------------------------------------------
# Controller sweeps over KL targets
# ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        (
            {"beta_schedule": "controlvae", "betas": (1.0,), "kl_targets": (2.0, -1.0)},
            "KL target must be > 0",
        ),
        ({"beta_schedule": "dynamicvae", "betas": (1.0,), "kl_targets": (0.0,)}, "KL target must be > 0"),
        ({"beta_schedule": "controlvae", "betas": (1.0,), "kl_targets": (2.0, 2.0)}, "duplicates"),
        ({"beta_schedule": "controlvae", "betas": (1.0,), "kl_targets": (float("nan"),)}, "finite"),
        ({"beta_schedule": "constant", "kl_targets": (2.0,)}, "need beta_schedule"),
        ({"beta_schedule": "controlvae", "betas": (1.0, 4.0), "kl_targets": (2.0,)}, "one beta"),
    ],
)
def test_bad_kl_targets_are_refused(changes, match):
    with pytest.raises(ValueError, match=match):
        validate(dataclasses.replace(DeepConfig(), **changes))


@pytest.mark.parametrize("schedule", ["controlvae", "dynamicvae"])
def test_controller_sweep_over_kl_targets(tmp_path, schedule):
    ds = _linear_gaussian()
    cfg = dataclasses.replace(
        LINEAR, beta_schedule=schedule, betas=(1.0,), lambdas=(0.0, 1.0), kl_targets=(0.5, 3.0), beta_steps=4,
        lambda_steps=2, chunk_steps=2, log_window=2, max_models=4,
    )  # fmt: skip
    assert train_sweep(cfg, tmp_path, dataset=ds, progress=False) == {"beta": 2, "lambda": 4}
    assert [f for _, f in target_folders(cfg, tmp_path)] == [tmp_path / "C0.5", tmp_path / "C3"]
    betas = {}
    for c, folder in target_folders(cfg, tmp_path):
        rec = json.loads((folder / "beta" / "b1_s0" / "train.json").read_text())
        assert rec["member"]["kl_target"] == c and rec["config"]["kl_targets"] == [c]
        assert rec["group_size"] == 2, "models of both targets train in one vmap group"
        assert json.loads((folder / "config.json").read_text())["kl_target"] == c
        betas[c] = rec["history"]["beta"]
        lam = json.loads((folder / "lambda" / "b1_l1_s0" / "train.json").read_text())
        assert lam["member"]["kl_target"] == c and lam["steps"] == 6
    # Same seed, data and initial KL: only the set-point differs, and so does the controller's beta.
    assert betas[0.5] != betas[3.0]
    assert train_sweep(cfg, tmp_path, dataset=ds, progress=False) == {"beta": 0, "lambda": 0}
    assert model_bytes(cfg, ds) > 0  # the accelerator's group sizing traces the step of a target sweep


def test_kl_target_is_the_controllers_set_point():
    # ControlVAE: beta rises above beta_min while the KL exceeds the target, and stays at beta_min
    # when the target is far above the KL.
    ds = _linear_gaussian()
    cfg = dataclasses.replace(LINEAR, beta_schedule="controlvae", betas=(1.0,), kl_targets=(1e-3, 1e3))
    members = [Member(1.0, 0.0, 0), Member(1.0, 0.0, 0)]
    res = train_phase(
        cfg, ds, members, phase="beta", start_step=0, steps=20, targets=[1e-3, 1e3], progress=False
    )
    beta = res.history[:, :, 3]
    assert np.all(beta[-1, 0] > 1.0) and np.allclose(beta[:, 1], 1.0)
