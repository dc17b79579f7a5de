"""DCI: the importance-matrix oracles of disentanglement_lib's dci_test, the full metric on both
paths, and the fast path against the reference (scikit-learn's GradientBoostingClassifier).

The full metric at reference sizes (10,000 / 5,000 points, 100-stage boosted trees per factor) costs
minutes on the reference path, so it is marked slow; small-size runs of both paths are in the fast suite.
"""

from __future__ import annotations

import dataclasses

import jax
import numpy as np
import pytest
from sklearn.ensemble import GradientBoostingClassifier

from linvae._tolerance import ROUNDOFF
from linvae.deep import metrics as M
from linvae.deep.metrics import boosted_trees as bt
from linvae.deep.metrics.dci import FAST_IMPORTANCE_ATOL, FAST_SCORE_ATOL, FAST_TRAIN_ACCURACY_ATOL
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


@pytest.mark.parametrize("backend", ["fast", "reference"])
def test_dci_small_identity_duplicated_and_shuffled(backend):
    cfg = M.DCIConfig(num_train=300, num_test=200, n_estimators=20, backend=backend)
    key = jax.random.key(0)
    good = M.evaluate(cfg, DATA, M.factor_codes, key=key)
    assert good.disentanglement > 0.9 and good.completeness > 0.9
    assert good.informativeness_train == 1.0 and good.informativeness_test == 1.0
    double = M.evaluate(cfg, DATA, lambda x: np.hstack([M.factor_codes(x)] * 2), key=key)
    assert double.disentanglement > 0.9
    assert abs(double.completeness - (1.0 - np.log(2.0) / np.log(6.0))) < 0.15  # importance split over 2 of 6
    bad = M.evaluate(cfg, DATA, _permuted_codes, key=key)
    assert bad.disentanglement < 0.35 and bad.completeness < 0.35


@pytest.mark.parametrize("backend", ["fast", "reference"])
def test_dci_is_reproducible_and_drops_constant_factor(backend):
    rng = np.random.default_rng(0)
    f = np.stack([rng.integers(0, 3, 200), np.zeros(200, dtype=np.int64)], axis=1)
    z = np.stack([f[:, 0] + 0.1 * rng.normal(size=200), rng.normal(size=200)], axis=1)
    cfg = M.DCIConfig(n_estimators=10, backend=backend)
    with pytest.warns(M.ConstantFactorWarning):
        a = M.dci(z, f, z, f, cfg, key=jax.random.key(1))
    with pytest.warns(M.ConstantFactorWarning):
        b = M.dci(z, f, z, f, cfg, key=jax.random.key(1))
    np.testing.assert_array_equal(a.importance, b.importance)
    assert a.importance.shape == (2, 1) and a.kept.tolist() == [True, False]
    assert np.isfinite(a.disentanglement) and np.isfinite(a.completeness)


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["fast", "reference"])
def test_dci_reference_sizes(backend):
    """disentanglement_lib's dci_test at the unsupervised-study sizes: 10,000 / 5,000 points, 100 stages."""
    key = jax.random.key(0)
    cfg = M.DCIConfig(backend=backend)
    good = M.evaluate(cfg, DATA, M.factor_codes, key=key)
    assert 0.9 <= good.disentanglement <= 1.0 and 0.9 <= good.completeness <= 1.0
    double = M.evaluate(cfg, DATA, lambda x: np.hstack([M.factor_codes(x)] * 2), key=key)
    assert 0.9 <= double.disentanglement <= 1.0
    target = 1.0 - np.log(2.0) / np.log(6.0)
    assert target - 0.1 <= double.completeness <= target + 0.1


# --- the fast path against the reference --------------------------------------------------------


def _uniform_codes(seed: int, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """500 points of 3 uniform codes, two of them shifted by the class (all values distinct)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, num_classes, 500)
    z = rng.uniform(size=(500, 3))
    z[:, 0] += 0.5 * y
    z[:, 1] += 0.2 * y
    return z, y


@pytest.mark.parametrize(("seed", "num_classes"), [(0, 2), (3, 3)])
def test_fast_trees_are_the_reference_when_every_value_has_a_bin(seed, num_classes):
    """250 training points, so every distinct value is its own bin: the same trees (init, Newton
    leaves with (K-1)/K, learning rate, impurity importances, thresholds for the test points).
    Where two codes isolate the same points both paths choose at random; these seeds have no such tie."""
    z, y = _uniform_codes(seed, num_classes)
    ref = GradientBoostingClassifier(n_estimators=10, random_state=0).fit(z[:250], y[:250])
    binned = bt.bin_codes(z[:250], z[250:], 256)
    assert binned.bins.max() == 249  # one bin per value
    fast = bt.fit_boosted(binned, y[:250], y[250:], n_estimators=10, rng=np.random.default_rng(0))
    assert_close(fast.importance, ref.feature_importances_, ROUNDOFF, "importances")
    assert fast.train_accuracy == ref.score(z[:250], y[:250])
    assert fast.test_accuracy == ref.score(z[250:], y[250:])


def _factor_code(seed: int, n: int, entangled: bool) -> tuple[np.ndarray, ...]:
    """Codes of 3 factors (3, 4, 5 classes): one noisy latent each (rotated if ``entangled``) and two
    collapsed latents, as benchmarks/dci.py at CI size."""
    rng = np.random.default_rng(seed)
    sizes = np.array([3, 4, 5])
    f = np.stack([rng.integers(0, s, 2 * n) for s in sizes], axis=1)
    signal = (f + 0.5) / sizes - 0.5 + 0.05 * rng.normal(size=f.shape)
    if entangled:
        rotation, _ = np.linalg.qr(np.random.default_rng(7).normal(size=(3, 3)))
        signal = signal @ rotation
    z = np.concatenate([signal, 1e-3 * rng.normal(size=(2 * n, 2))], axis=1)
    return z[:n], f[:n], z[n:], f[n:]


@pytest.mark.parametrize("entangled", [False, True])
def test_fast_agrees_with_reference_within_tolerance(entangled):
    """CI size (1,000 / 1,000 points, 30 stages; measured 0.005 on R, 0.010 on D / C / I)."""
    data = _factor_code(0, 1000, entangled)
    cfg = M.DCIConfig(num_train=1000, num_test=1000, n_estimators=30)
    ref = M.dci(*data, dataclasses.replace(cfg, backend="reference"), key=jax.random.key(0))
    fast = M.dci(*data, cfg, key=jax.random.key(0))
    deviation = np.max(np.abs(fast.importance - ref.importance))
    assert deviation <= FAST_IMPORTANCE_ATOL, f"max |R_fast - R_ref| = {deviation:.4f}"
    tolerances = {
        "disentanglement": FAST_SCORE_ATOL,
        "completeness": FAST_SCORE_ATOL,
        "informativeness_test": FAST_SCORE_ATOL,
        "informativeness_train": FAST_TRAIN_ACCURACY_ATOL,
    }
    for name, tol in tolerances.items():
        a, b = getattr(fast, name), getattr(ref, name)
        assert abs(a - b) <= tol, f"{name}: fast {a:.4f}, reference {b:.4f}"


def test_fast_scores_a_disentangled_and_an_entangled_code():
    cfg = M.DCIConfig(num_train=2000, num_test=500, n_estimators=20)
    key = jax.random.key(0)
    good = M.evaluate(cfg, DATA, M.factor_codes, key=key)
    assert good.disentanglement > 0.99 and good.completeness > 0.99
    assert good.informativeness_test == 1.0
    np.testing.assert_allclose(good.importance, np.eye(3), atol=0.01)
    bad = M.evaluate(cfg, DATA, _permuted_codes, key=key)
    assert bad.disentanglement < 0.2 and bad.completeness < 0.2


def test_bin_edges():
    # few distinct values: one bin each, edges at the midpoints
    np.testing.assert_array_equal(bt.bin_edges(np.array([2.0, 0.0, 1.0, 1.0]), 8), [0.5, 1.5])
    # values closer than scikit-learn's FEATURE_THRESHOLD are one value
    np.testing.assert_array_equal(bt.bin_edges(np.array([0.0, 1e-8, 1.0]), 8), [(1e-8 + 1.0) / 2])
    # many values: at most num_bins - 1 edges, and the gap between two clusters is one of them
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(size=5000), 10.0 + rng.normal(size=50)])
    edges = bt.bin_edges(x, 16)
    assert edges.size <= 15 and np.all(np.diff(edges) > 0)
    below, above = np.max(x[x < 5.0]), np.min(x[x > 5.0])
    assert np.any((edges > below) & (edges < above)), "no edge in the gap between the clusters"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda z, f: (_nan(z), f), "non-finite"),
        (lambda z, f: (z[:, 0], f), "need codes"),
        (lambda z, f: (z[:-1], f), "need codes"),
    ],
)
def test_dci_rejects_bad_training_input(change, message):
    z, f, zt, ft = _factor_code(0, 100, False)
    z, f = change(z, f)
    with pytest.raises(ValueError, match=message):
        M.dci(z, f, zt, ft, M.DCIConfig(n_estimators=2), key=jax.random.key(0))


def _nan(z: np.ndarray) -> np.ndarray:
    z = z.copy()
    z[3, 1] = np.nan
    return z


def test_dci_rejects_bad_test_input_and_settings():
    z, f, zt, ft = _factor_code(0, 100, False)
    cfg = M.DCIConfig(n_estimators=2)
    key = jax.random.key(0)
    with pytest.raises(ValueError, match="non-finite"):
        M.dci(z, f, _nan(zt), ft, cfg, key=key)
    with pytest.raises(ValueError, match="training ones' columns"):
        M.dci(z, f, zt[:, :3], ft, cfg, key=key)
    with pytest.raises(ValueError, match="training ones' columns"):
        M.dci(z, f, zt, ft[:, :2], cfg, key=key)
    with pytest.raises(ValueError, match="backend must be"):
        M.dci(z, f, zt, ft, dataclasses.replace(cfg, backend="gpu"), key=key)
    for bins in (1, 257):
        with pytest.raises(ValueError, match="num_bins must be in 2..256"):
            M.dci(z, f, zt, ft, dataclasses.replace(cfg, num_bins=bins), key=key)
