"""FactorVAE and BetaVAE scores: disentanglement_lib's oracles on dummy data, fast = reference paths,
and the invariances of the scores (per-latent rescaling and sign flips, latent permutation).
"""

from __future__ import annotations

import jax
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from linvae._tolerance import ROUNDOFF
from linvae.deep import metrics as M
from linvae.deep.metrics.beta_vae import features_fast, features_reference, sample_pair_groups
from linvae.deep.metrics.factor_vae import sample_fixed_factor_groups, votes_fast, votes_reference
from tests.helpers import assert_close

DATA = M.FactorObservations(factor_sizes=(3, 4, 5))
SMALL_FACTOR = M.FactorVAEConfig(num_train=600, num_eval=300, num_variance_estimate=1000, group_size=16)
SMALL_BETA = M.BetaVAEConfig(num_train=300, num_eval=200, group_size=16)


def _scaled(scale: np.ndarray, perm: np.ndarray):
    return lambda x: (M.factor_codes(x) * scale)[:, perm]


# --- FactorVAE --------------------------------------------------------------------------------------


def test_fixed_factor_groups_share_the_fixed_factor():
    fixed, groups = sample_fixed_factor_groups(DATA, key=jax.random.key(0), num_groups=50, group_size=8)
    assert groups.shape == (50, 8, 3) and set(np.unique(fixed)) <= {0, 1, 2}
    for g in range(50):
        assert np.all(groups[g, :, fixed[g]] == groups[g, 0, fixed[g]])


@pytest.mark.parametrize("backend", ["reference", "fast"])
def test_factor_vae_identity_scores_one_and_constant_scores_zero(backend):
    cfg = M.FactorVAEConfig(
        num_train=SMALL_FACTOR.num_train,
        num_eval=SMALL_FACTOR.num_eval,
        num_variance_estimate=SMALL_FACTOR.num_variance_estimate,
        group_size=SMALL_FACTOR.group_size,
        backend=backend,
    )
    good = M.evaluate(cfg, DATA, M.factor_codes, key=jax.random.key(0))
    assert good.train_accuracy == 1.0 and good.eval_accuracy == 1.0 and good.num_active == 3
    bad = M.evaluate(cfg, DATA, lambda x: np.zeros((len(x), 3)), key=jax.random.key(0))
    assert bad.eval_accuracy == 0.0 and bad.num_active == 0


@given(seed=st.integers(0, 2**31 - 1), inactive=st.booleans())
def test_factor_vae_votes_fast_equal_reference(seed, inactive):
    rng = np.random.default_rng(seed)
    codes = rng.normal(size=(40, 16, 4)) * rng.uniform(0.1, 3.0, size=4)
    fixed = rng.integers(0, 3, 40)
    variances = np.var(codes.reshape(-1, 4), axis=0, ddof=1)
    active = np.array([True, not inactive, True, True])
    ref = votes_reference(codes, fixed, variances, active, 3)
    np.testing.assert_array_equal(votes_fast(codes, fixed, variances, active, 3), ref)
    assert ref.sum() == 40 and (inactive is False or ref[:, 1].sum() == 0)


def test_majority_vote_accuracy():
    train = np.array([[5, 0, 1], [1, 4, 3], [0, 0, 2]])
    evaluation = np.array([[2, 1, 0], [0, 3, 1], [1, 0, 2]])
    # latent 0 -> factor 0, latent 1 -> factor 1, latent 2 -> factor 1 (3 > 2 > 1)
    train_acc, eval_acc = M.majority_vote_accuracy(train, evaluation)
    assert_close(train_acc, 12 / 16, ROUNDOFF, "train")
    assert_close(eval_acc, 6 / 10, ROUNDOFF, "eval")


def test_factor_vae_invariant_to_rescaling_sign_and_permutation():
    scale, perm = np.array([-3.0, 0.5, 7.0]), np.array([2, 0, 1])
    base = M.evaluate(SMALL_FACTOR, DATA, M.factor_codes, key=jax.random.key(2))
    noisy = lambda x: M.factor_codes(x) + 0.5 * np.sin(13.0 * M.factor_codes(x).sum(axis=1, keepdims=True))  # noqa: E731
    base_noisy = M.evaluate(SMALL_FACTOR, DATA, noisy, key=jax.random.key(2))
    moved = M.evaluate(SMALL_FACTOR, DATA, lambda x: (noisy(x) * scale)[:, perm], key=jax.random.key(2))
    assert base.eval_accuracy == 1.0
    # variance normalisation removes per-latent scale; the votes follow the permutation
    assert_close(moved.eval_accuracy, base_noisy.eval_accuracy, ROUNDOFF, "eval accuracy")
    np.testing.assert_array_equal(moved.train_votes, base_noisy.train_votes[:, perm])


# --- BetaVAE ----------------------------------------------------------------------------------------


def test_pair_groups_agree_in_the_labelled_factor():
    labels, first, second = sample_pair_groups(DATA, key=jax.random.key(0), num_points=30, group_size=8)
    for p in range(30):
        np.testing.assert_array_equal(first[p, :, labels[p]], second[p, :, labels[p]])
    assert not np.array_equal(first, second)


@given(seed=st.integers(0, 2**31 - 1))
def test_beta_vae_features_fast_equal_reference(seed):
    rng = np.random.default_rng(seed)
    a, b = rng.normal(size=(2, 20, 16, 3))
    assert_close(features_fast(a, b), features_reference(a, b), ROUNDOFF, "mean |difference| features")


@pytest.mark.parametrize("backend", ["reference", "fast"])
def test_beta_vae_identity_scores_one_and_constant_is_chance(backend):
    cfg = M.BetaVAEConfig(
        num_train=SMALL_BETA.num_train, num_eval=SMALL_BETA.num_eval, group_size=16, backend=backend
    )
    good = M.evaluate(cfg, DATA, M.factor_codes, key=jax.random.key(0))
    assert good.train_accuracy == 1.0 and good.eval_accuracy == 1.0 and good.converged
    bad = M.evaluate(cfg, DATA, lambda x: np.zeros((len(x), 3)), key=jax.random.key(0))
    assert bad.eval_accuracy < 0.5  # constant features: the majority class, about 1/3


def test_beta_vae_backends_agree_and_sign_flip_invariance():
    key = jax.random.key(5)
    noisy = lambda x: M.factor_codes(x) + 0.7 * np.cos(5.0 * M.factor_codes(x).sum(axis=1, keepdims=True))  # noqa: E731
    ref = M.evaluate(SMALL_BETA, DATA, noisy, key=key)
    fast = M.evaluate(
        M.BetaVAEConfig(num_train=300, num_eval=200, group_size=16, backend="fast"), DATA, noisy, key=key
    )
    flipped = M.evaluate(SMALL_BETA, DATA, lambda x: -noisy(x), key=key)
    assert (fast.train_accuracy, fast.eval_accuracy) == (ref.train_accuracy, ref.eval_accuracy)
    assert (flipped.train_accuracy, flipped.eval_accuracy) == (ref.train_accuracy, ref.eval_accuracy)


def test_beta_vae_reports_nonconvergence_instead_of_warning():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 4, 400)
    # one informative feature next to a badly scaled one: lbfgs needs more than its 100 iterations
    x = np.stack([y + 0.3 * rng.normal(size=400), 100.0 * rng.normal(size=400)], axis=1)
    result = M.beta_vae_from_features(x, y, x, y)
    assert result.converged is False
