"""DCI: the importance-matrix oracles of disentanglement_lib's dci_test, and the full metric.

The full metric at reference sizes (10,000 / 5,000 points, 100-stage boosted trees per factor) costs
minutes on CPU, so it is marked slow; a small-size run of the same code path is in the fast suite.
"""

from __future__ import annotations

import jax
import numpy as np
import pytest

from linvae._tolerance import ROUNDOFF
from linvae.deep import metrics as M
from tests.helpers import assert_close

DATA = M.FactorObservations(factor_sizes=(3, 4, 5))
LOG2_OVER_LOG10 = np.log(2.0) / np.log(10.0)


def _diag(k: int = 5) -> np.ndarray:
    return np.diag(5.0 * np.ones(k))


def _weighted_score(importance: np.ndarray, eps: float) -> float:
    """Direct coding of D (rows of R; call on R.T for C): sum_j w_j (1 - H_K(q_j)), 0 log 0 = 0."""
    smoothed = importance + eps
    rows = smoothed.sum(axis=1, keepdims=True)
    # an all-zero row is uniform for every eps > 0, so also in the limit
    q = np.where(rows > 0, smoothed / np.where(rows > 0, rows, 1.0), 1.0 / importance.shape[1])
    logs = np.log(np.where(q > 0, q, 1.0)) / np.log(importance.shape[1])
    per_row = 1.0 + np.sum(q * logs, axis=1)
    total = importance.sum()
    weights = (
        importance.sum(axis=1) / total if total > 0 else np.full(importance.shape[0], 1 / importance.shape[0])
    )
    return float(np.sum(weights * per_row))


@pytest.mark.parametrize(
    ("importance", "expected_d", "expected_c"),
    [
        (_diag(), 1.0, 1.0),
        (np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]]), 1.0, 1.0),  # an empty code
        (np.vstack([_diag(), _diag()]), 1.0, 1.0 - LOG2_OVER_LOG10),  # every factor in two codes
        (_diag()[:2, :], 1.0, 1.0),  # factors nobody captures
        (np.hstack([_diag(), _diag()]), 1.0 - LOG2_OVER_LOG10, 1.0),  # every code holds two factors
    ],
)
def test_disentanglement_and_completeness_oracles(importance, expected_d, expected_c):
    # the library keeps the reference's 1e-11 smoothing; its limit eps -> 0 is the oracle
    assert_close(M.disentanglement(importance), _weighted_score(importance, 1e-11), ROUNDOFF, "D")
    assert_close(M.completeness(importance), _weighted_score(importance.T, 1e-11), ROUNDOFF, "C")
    assert_close(_weighted_score(importance, 0.0), expected_d, ROUNDOFF, "D oracle")
    assert_close(_weighted_score(importance.T, 0.0), expected_c, ROUNDOFF, "C oracle")


def test_zero_importance_scores_zero():
    zero = np.zeros((10, 10))
    assert_close(M.disentanglement(zero), 0.0, ROUNDOFF, "D of R = 0")
    assert_close(M.completeness(zero), 0.0, ROUNDOFF, "C of R = 0")


def _permuted_codes(x: np.ndarray) -> np.ndarray:
    """Each row's factors shuffled: every code carries every factor equally (the reference's bad case)."""
    rng = np.random.default_rng(int(x.sum()))
    codes = M.factor_codes(x)
    return np.stack([rng.permutation(row) for row in codes])


def test_dci_small_identity_duplicated_and_shuffled():
    cfg = M.DCIConfig(num_train=300, num_test=200, n_estimators=20)
    key = jax.random.key(0)
    good = M.evaluate(cfg, DATA, M.factor_codes, key=key)
    assert good.disentanglement > 0.9 and good.completeness > 0.9
    assert good.informativeness_train == 1.0 and good.informativeness_test == 1.0
    double = M.evaluate(cfg, DATA, lambda x: np.hstack([M.factor_codes(x)] * 2), key=key)
    assert double.disentanglement > 0.9
    assert abs(double.completeness - (1.0 - np.log(2.0) / np.log(6.0))) < 0.15  # importance split over 2 of 6
    bad = M.evaluate(cfg, DATA, _permuted_codes, key=key)
    assert bad.disentanglement < 0.35 and bad.completeness < 0.35


def test_dci_is_reproducible_and_drops_constant_factor():
    rng = np.random.default_rng(0)
    f = np.stack([rng.integers(0, 3, 200), np.zeros(200, dtype=np.int64)], axis=1)
    z = np.stack([f[:, 0] + 0.1 * rng.normal(size=200), rng.normal(size=200)], axis=1)
    cfg = M.DCIConfig(n_estimators=10)
    with pytest.warns(M.ConstantFactorWarning):
        a = M.dci(z, f, z, f, cfg, key=jax.random.key(1))
    with pytest.warns(M.ConstantFactorWarning):
        b = M.dci(z, f, z, f, cfg, key=jax.random.key(1))
    np.testing.assert_array_equal(a.importance, b.importance)
    assert a.importance.shape == (2, 1) and a.kept.tolist() == [True, False]
    assert np.isfinite(a.disentanglement) and np.isfinite(a.completeness)


@pytest.mark.slow
def test_dci_reference_sizes():
    """disentanglement_lib's dci_test at the unsupervised-study sizes: 10,000 / 5,000 points, 100 stages."""
    key = jax.random.key(0)
    good = M.evaluate(M.DCIConfig(), DATA, M.factor_codes, key=key)
    assert 0.9 <= good.disentanglement <= 1.0 and 0.9 <= good.completeness <= 1.0
    double = M.evaluate(M.DCIConfig(), DATA, lambda x: np.hstack([M.factor_codes(x)] * 2), key=key)
    assert 0.9 <= double.disentanglement <= 1.0
    target = 1.0 - np.log(2.0) / np.log(6.0)
    assert target - 0.1 <= double.completeness <= target + 0.1
