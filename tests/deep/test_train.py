"""Training: finite losses, NaN isolation, controllers, scan vs loop, and errors before training."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from linvae._tolerance import F32
from linvae.deep.config import PRESETS, DeepConfig, preset, validate
from linvae.deep.data import LinearGaussian, load
from linvae.deep.record import Member
from linvae.deep.train import init_state, make_chunk, open_dataset, train_phase, train_sweep
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
