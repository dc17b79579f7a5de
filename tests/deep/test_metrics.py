"""MIG, I_m, histogram discretisation, discrete MI and the sampling API (linvae.deep.metrics).

Oracles follow disentanglement_lib's metric tests on dummy data (identity codes score ~1, constant or
independent codes ~0, a duplicated latent halves nothing but zeroes the MIG gap); fast paths are
compared with the numpy/scikit-learn reference on random inputs.
"""

from __future__ import annotations

import jax
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from linvae._tolerance import ROUNDOFF
from linvae.deep import metrics as M
from linvae.deep.metrics.ground_truth import sample_codes
from linvae.deep.metrics.matched_mi import matched_mi_from_information
from tests.helpers import assert_close

SIZES = (3, 4, 5)
DATA = M.FactorObservations(factor_sizes=SIZES)


def _factors(seed: int, n: int, sizes=SIZES) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.stack([rng.integers(0, s, n) for s in sizes], axis=1)


def _noisy_codes(seed: int, factors: np.ndarray, noise: float, extra: int = 0) -> np.ndarray:
    """Continuous codes: a monotone function of each factor plus noise, and ``extra`` pure-noise latents."""
    rng = np.random.default_rng(seed + 1)
    z = np.tanh(factors / np.maximum(factors.max(axis=0), 1)) + noise * rng.normal(size=factors.shape)
    return np.concatenate([z, rng.normal(size=(factors.shape[0], extra))], axis=1)


# --- sampling API -----------------------------------------------------------------------------------


def test_dummy_data_satisfies_protocol_and_sampling_is_reproducible():
    assert isinstance(DATA, M.GroundTruthData)
    key = jax.random.key(3)
    c1, f1 = sample_codes(DATA, M.factor_codes, key=key, num_points=100, batch_size=7)
    c2, f2 = sample_codes(DATA, M.factor_codes, key=key, num_points=100, batch_size=64)
    np.testing.assert_array_equal(c1, c2)  # codes depend on the key only, not the batch size
    np.testing.assert_array_equal(f1, f2)
    np.testing.assert_array_equal(c1, f1.astype(np.float64))
    assert f1.shape == (100, 3) and np.all(f1 < np.array(SIZES)) and np.all(f1 >= 0)
    c3, _ = sample_codes(DATA, M.factor_codes, key=jax.random.key(4), num_points=100, batch_size=64)
    assert not np.array_equal(c1, c3)


def test_bad_representation_shape_raises():
    with pytest.raises(ValueError, match=r"\(b, m\)"):
        sample_codes(DATA, lambda x: np.zeros(len(x)), key=jax.random.key(0), num_points=10, batch_size=5)


# --- histogram + MI: fast path equals reference ------------------------------------------------------


@given(
    seed=st.integers(0, 2**31 - 1),
    shape=st.sampled_from([(50, 2), (300, 3)]),
    scale=st.floats(1e-3, 1e3),
    ties=st.booleans(),
)
def test_histogram_bins_fast_equals_numpy(seed, shape, scale, ties):
    rng = np.random.default_rng(seed)
    codes = rng.normal(size=shape) * scale + rng.normal() * scale
    if ties:  # discrete codes put points exactly on bin edges, the hard case for equality
        codes = np.round(codes / scale * 2.0)
    codes[:, 0] = codes[0, 0] if seed % 5 == 0 else codes[:, 0]  # sometimes a constant latent
    np.testing.assert_array_equal(np.asarray(M.histogram_bins_fast(codes, 20)), M.histogram_bins(codes, 20))


def test_histogram_bins_match_disentanglement_lib_convention():
    codes = np.linspace(0.0, 1.0, 41)[:, None]
    bins = M.histogram_bins(codes, 20)
    assert bins.min() == 1 and bins.max() == 20  # min in bin 1, max in the last bin
    assert np.all(np.diff(bins[:, 0]) >= 0)


@given(
    seed=st.integers(0, 2**31 - 1),
    n=st.sampled_from([40, 400]),
    sizes=st.sampled_from([(2, 3), (1, 7), (5, 21)]),
)
def test_discrete_mi_fast_equals_sklearn(seed, n, sizes):
    rng = np.random.default_rng(seed)
    u = rng.integers(0, sizes[1], size=(n, 2))
    v = np.stack([rng.integers(0, sizes[0], n), (u[:, 0] + rng.integers(0, 2, n)) % sizes[1]], axis=1)
    ref = M.discrete_mutual_information(u, v)
    assert_close(M.discrete_mutual_information_fast(u, v), ref, ROUNDOFF, "MI matrix")
    assert np.all(M.discrete_mutual_information_fast(u, v) >= 0)


@given(seed=st.integers(0, 2**31 - 1), extra=st.sampled_from([0, 2]), noise=st.floats(0.0, 1.0))
def test_mig_and_matched_mi_fast_equal_reference(seed, extra, noise):
    f = _factors(seed, 500)
    z = _noisy_codes(seed, f, noise, extra)
    ref, fast = M.mig(z, f), M.mig(z, f, M.MIGConfig(backend="fast"))
    assert_close(fast.mi, ref.mi, ROUNDOFF, "MI")
    assert_close(fast.entropy, ref.entropy, ROUNDOFF, "entropy")
    assert_close(fast.score, ref.score, ROUNDOFF, "MIG")
    im_ref, im_fast = M.matched_mi(z, f), M.matched_mi(z, f, M.MatchedMIConfig(backend="fast"))
    assert_close(im_fast.score, im_ref.score, ROUNDOFF, "I_m")


# --- MIG oracles (disentanglement_lib mig_test, with 20 bins instead of its identity discretiser) ----


@pytest.mark.parametrize("backend", ["reference", "fast"])
def test_mig_identity_codes_score_one(backend):
    result = M.evaluate(
        M.MIGConfig(num_train=3000, backend=backend), DATA, M.factor_codes, key=jax.random.key(0)
    )
    assert 0.95 <= result.score <= 1.0
    # each latent's bins are an injective function of its factor: MI = H exactly on the diagonal
    assert_close(np.diagonal(result.mi), result.entropy, ROUNDOFF, "diagonal MI = entropy")


@pytest.mark.parametrize("backend", ["reference", "fast"])
def test_mig_constant_codes_score_zero(backend):
    result = M.evaluate(
        M.MIGConfig(num_train=3000, backend=backend),
        DATA,
        lambda x: np.zeros((len(x), 3)),
        key=jax.random.key(0),
    )
    assert result.score == 0.0 and np.all(result.mi == 0.0)


def test_mig_independent_codes_near_zero():
    f = _factors(0, 10_000)
    z = np.random.default_rng(9).normal(size=(10_000, 5))
    result = M.mig(z, f)
    assert 0.0 <= result.score < 0.01  # the positive plug-in bias of 20-bin MI only


def test_mig_duplicated_latent_zeroes_gap():
    f = _factors(1, 3000)
    z = _noisy_codes(1, f, 0.05)
    single, duplicated = M.mig(z, f).score, M.mig(np.hstack([z, z]), f).score
    assert single > 0.5
    assert duplicated < single and duplicated == 0.0


@given(seed=st.integers(0, 2**31 - 1), scale=st.floats(1e-2, 1e2), flip=st.booleans())
def test_mig_invariant_to_permutation_and_affine_rescaling(seed, scale, flip):
    f = _factors(seed, 400)
    z = _noisy_codes(seed, f, 0.3, extra=1)
    perm = np.random.default_rng(seed).permutation(z.shape[1])
    sign = -1.0 if flip else 1.0
    base = M.mig(z, f)
    moved = M.mig(sign * scale * z[:, perm] + 3.0, f)
    # equal-width bins follow any map a z + b (a != 0): the binning is the same up to edge roundoff
    assert_close(moved.score, base.score, ROUNDOFF, "MIG under permutation and affine map")
    assert_close(moved.mi, base.mi[perm], ROUNDOFF, "MI rows follow the permutation")


def test_mig_drops_constant_factor_with_warning():
    f = np.concatenate([_factors(2, 1000), np.zeros((1000, 1), dtype=np.int64)], axis=1)
    z = np.concatenate(
        [_noisy_codes(2, f[:, :3], 0.1), np.random.default_rng(0).normal(size=(1000, 1))], axis=1
    )
    for backend in ("reference", "fast"):
        with pytest.warns(M.ConstantFactorWarning, match=r"factor\(s\) \[3\]"):
            result = M.mig(z, f, M.MIGConfig(backend=backend))
        assert np.isfinite(result.score)
        assert result.kept.tolist() == [True, True, True, False]
        assert_close(result.score, np.mean(result.gaps[:3]), ROUNDOFF, "mean over kept factors")


def test_mig_needs_two_latents_and_finite_codes():
    f = _factors(0, 50)
    with pytest.raises(ValueError, match="two latents"):
        M.mig(np.zeros((50, 1)), f)
    with pytest.raises(ValueError, match="non-finite"):
        M.mig(np.full((50, 2), np.nan), f)


# --- I_m -------------------------------------------------------------------------------------------


def test_matched_mi_identity_is_sum_of_entropies_and_permutation_invariant():
    result = M.evaluate(M.MatchedMIConfig(num_train=2000), DATA, M.factor_codes, key=jax.random.key(1))
    _, f = sample_codes(DATA, M.factor_codes, key=jax.random.key(1), num_points=2000, batch_size=256)
    assert_close(result.score, M.discrete_entropy(f).sum(), ROUNDOFF, "I_m of identity codes")
    np.testing.assert_array_equal(result.latents, result.factors)
    z = f.astype(np.float64)[:, [2, 0, 1]]
    permuted = M.matched_mi(z, f)
    assert_close(permuted.score, result.score, ROUNDOFF, "I_m under latent permutation")
    assert M.matched_mi(np.zeros((2000, 3)), f).score == 0.0


def test_matched_mi_is_hungarian_maximum():
    mi = np.array([[0.9, 0.8, 0.0], [0.85, 0.1, 0.0]])
    result = matched_mi_from_information(mi)
    assert_close(result.score, 0.8 + 0.85, ROUNDOFF, "max-sum matching beats the greedy 0.9 + 0.1")


def test_evaluate_rejects_unknown_config():
    with pytest.raises(TypeError, match="no metric"):
        M.evaluate(object(), DATA, M.factor_codes, key=jax.random.key(0))  # type: ignore[arg-type]


def test_fast_paths_compute_in_float64_without_global_x64():
    """The fast path enables x64 locally: same number with the global flag off, no error."""
    z, f = np.random.default_rng(0).normal(size=(50, 2)), _factors(0, 50)
    with jax.enable_x64(False):
        off = M.mig(z, f, M.MIGConfig(backend="fast")).score
    on = M.mig(z, f, M.MIGConfig(backend="fast")).score
    assert off == on
    with pytest.raises(ValueError, match="backend"):
        M.mig(z, f, M.MIGConfig(backend="gpu"))  # type: ignore[arg-type]


def _centroid_codes(images) -> np.ndarray:
    """A hand-made encoder for dSprites: ink centroid (x, y) and ink mass."""
    ink = np.asarray(images, dtype=np.float64)[..., 0]
    mass = ink.sum(axis=(1, 2))
    grid = np.arange(ink.shape[1], dtype=np.float64)
    cx = (ink.sum(axis=1) * grid[None, :]).sum(axis=1) / np.maximum(mass, 1.0)
    cy = (ink.sum(axis=2) * grid[None, :]).sum(axis=1) / np.maximum(mass, 1.0)
    return np.stack([cx, cy, mass], axis=1)


def test_metrics_run_on_the_dsprites_replica_through_the_protocol():
    from linvae.deep.data import DSpritesReplica  # the protocol's intended producer (issue 6)

    data = DSpritesReplica()
    assert isinstance(data, M.GroundTruthData)
    result = M.evaluate(
        M.MIGConfig(num_train=1000, backend="fast"), data, _centroid_codes, key=jax.random.key(0)
    )
    names = list(data.factor_names)
    # the centroid recovers the positions: each is the best latent for its own factor
    for factor, latent in (("posX", 0), ("posY", 1)):
        column = result.mi[:, names.index(factor)]
        assert np.argmax(column) == latent and result.gaps[names.index(factor)] > 0.3
