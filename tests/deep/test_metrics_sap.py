"""SAP (discrete and continuous) and the exact one-feature LinearSVC of its fast path.

The fast path minimises the same objective as liblinear exactly; these tests check (i) that it is the
same objective and decision rule (sklearn's own coefficients, fed to our decision rule, give sklearn's
predictions; an independent numpy objective is minimised at our solution and liblinear's is within
SVM_SOLVER of it), and (ii) the reference library's oracles and the invariances of the score.
"""

from __future__ import annotations

import warnings

import jax
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sklearn.svm import LinearSVC

from linvae._tolerance import ROUNDOFF, STATIONARY, SVM_SOLVER
from linvae.deep import metrics as M
from linvae.deep.metrics.linear_svc import LinearSVC1D, fit_linear_svc_1d, predict_linear_svc_1d
from linvae.deep.metrics.sap import SVM_C
from tests.helpers import assert_close, assert_stationary

DATA = M.FactorObservations(factor_sizes=(3, 4, 5))


def _problems(labels: np.ndarray, C: float):
    """(y, C_i) of liblinear's binary problems for balanced class weights, written out independently."""
    classes, counts = np.unique(labels, return_counts=True)
    weight = dict(zip(classes, len(labels) / (len(classes) * counts), strict=True))
    if len(classes) == 2:
        y = np.where(labels == classes[1], 1.0, -1.0)
        return [(y, C * np.array([weight[c] for c in labels]))]
    return [(np.where(labels == c, 1.0, -1.0), np.where(labels == c, C * weight[c], C)) for c in classes]


def _objective(theta: np.ndarray, x: np.ndarray, y: np.ndarray, cost: np.ndarray) -> float:
    hinge = np.maximum(0.0, 1.0 - y * (theta[0] * x + theta[1]))
    return 0.5 * float(theta @ theta) + float(np.sum(cost * hinge**2))


def _gradient(theta: np.ndarray, x: np.ndarray, y: np.ndarray, cost: np.ndarray) -> np.ndarray:
    z = y * (theta[0] * x + theta[1])
    r = np.where(z < 1.0, cost * (z - 1.0) * y, 0.0)
    return theta + 2.0 * np.array([np.sum(r * x), np.sum(r)])


@given(
    seed=st.integers(0, 2**31 - 1),
    n=st.sampled_from([60, 600]),
    num_classes=st.sampled_from([2, 3, 6]),
    scale=st.floats(1e-2, 1e2),
    offset=st.floats(-3.0, 3.0),
)
def test_exact_svm_minimises_liblinear_objective(seed, n, num_classes, scale, offset):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, num_classes, n)
    if np.unique(labels).size < 2:
        labels[:2] = [0, 1]
    x = (
        np.tanh(labels / num_classes * 3.0 - 1.5) + rng.normal(size=n) * rng.uniform(0.1, 1.5) + offset
    ) * scale
    exact = fit_linear_svc_1d(x[:, None], labels, C=SVM_C)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=Warning)  # a rare liblinear ConvergenceWarning is fine here
        clf = LinearSVC(C=SVM_C, class_weight="balanced").fit(x[:, None], labels)
    theta_sklearn = np.stack([clf.coef_[:, 0], clf.intercept_], axis=-1)
    for q, (y, cost) in enumerate(_problems(labels, SVM_C)):
        theta = exact.theta[0, q]
        assert_stationary(
            [_gradient(theta, x, y, cost)], [theta], STATIONARY, "gradient at the exact optimum"
        )
        f_exact, f_sklearn = _objective(theta, x, y, cost), _objective(theta_sklearn[q], x, y, cost)
        assert f_exact <= f_sklearn * (1.0 + ROUNDOFF.rtol)
        assert f_sklearn - f_exact <= SVM_SOLVER.rtol * f_exact + SVM_SOLVER.atol, (
            "liblinear far from optimum"
        )
    # the decision rule (OvR argmax, binary sign, label order) is sklearn's, bit for bit
    x_test = rng.normal(size=200) * 2.0 * scale + offset * scale
    ours = predict_linear_svc_1d(
        LinearSVC1D(classes=exact.classes, theta=theta_sklearn[None]), x_test[:, None]
    )
    np.testing.assert_array_equal(ours[:, 0], clf.predict(x_test[:, None]))


def test_fast_and_reference_sap_agree_at_reference_sizes():
    rng = np.random.default_rng(0)

    def draw(n):
        f = np.stack([rng.integers(0, s, n) for s in (3, 6, 8)], axis=1)
        z = np.tanh((f - f.mean(axis=0)) / f.std(axis=0)) + 0.3 * rng.normal(size=f.shape)
        return np.concatenate([z, rng.normal(size=(n, 1))], axis=1), f

    (z, f), (zt, ft) = draw(10_000), draw(5_000)
    ref = M.sap(z, f, zt, ft)
    fast = M.sap(z, f, zt, ft, M.SAPConfig(backend="fast"))
    assert ref.unconverged == 0
    # entries differ only by test points that liblinear's early stop puts across a threshold:
    # a handful of 5,000 per classifier (measured: at most 2)
    flips = np.abs(fast.matrix - ref.matrix) * 5_000
    assert_close(flips, np.round(flips), ROUNDOFF, "accuracy differences are whole test points")
    assert flips.max() <= 5
    assert abs(fast.score - ref.score) <= flips.max() / 5_000


@pytest.mark.parametrize("backend", ["reference", "fast"])
def test_sap_identity_codes_high_and_constant_codes_zero(backend):
    cfg = M.SAPConfig(num_train=1000, num_test=1000, backend=backend)
    good = M.evaluate(cfg, DATA, M.factor_codes, key=jax.random.key(0))
    bad = M.evaluate(cfg, DATA, lambda x: np.zeros((len(x), 3)), key=jax.random.key(0))
    # a balanced 1-D linear SVM cannot carve out the middle classes of a 4- or 5-class factor, so the
    # identity's accuracies are 1, ~0.75 and ~0.6 against ~1/K for the other latents
    assert good.score > 0.4
    assert np.all(np.argmax(good.matrix, axis=0) == np.arange(3))
    assert bad.score == 0.0


@given(seed=st.integers(0, 2**31 - 1), flip=st.sampled_from([0, 1, 2]))
def test_sap_invariant_to_sign_flip_and_permutation(seed, flip):
    rng = np.random.default_rng(seed)
    f = np.stack([rng.integers(0, s, 400) for s in (2, 3)], axis=1)
    z = np.concatenate([f + rng.normal(size=f.shape), rng.normal(size=(400, 1))], axis=1)
    zt_f = np.stack([rng.integers(0, s, 200) for s in (2, 3)], axis=1)
    zt = np.concatenate([zt_f + rng.normal(size=zt_f.shape), rng.normal(size=(200, 1))], axis=1)
    sign = np.ones(3)
    sign[flip] = -1.0
    perm = rng.permutation(3)
    for backend in ("reference", "fast"):
        cfg = M.SAPConfig(backend=backend)
        base = M.sap(z, f, zt, zt_f, cfg)
        moved = M.sap((z * sign)[:, perm], f, (zt * sign)[:, perm], zt_f, cfg)
        # w -> -w solves the mirrored problem exactly; liblinear's iterates mirror too
        assert_close(moved.matrix, base.matrix[perm], ROUNDOFF, f"{backend}: score matrix")


@given(seed=st.integers(0, 2**31 - 1), constant_latent=st.booleans())
def test_continuous_sap_fast_equals_reference(seed, constant_latent):
    rng = np.random.default_rng(seed)
    f = np.stack([rng.integers(0, s, 300) for s in (3, 8)], axis=1)
    z = np.concatenate([f * rng.normal(size=2) + rng.normal(size=f.shape), rng.normal(size=(300, 1))], axis=1)
    if constant_latent:
        z[:, 2] = 1.5
    ref = M.sap(z, f, cfg=M.SAPConfig(continuous_factors=True))
    fast = M.sap(z, f, cfg=M.SAPConfig(continuous_factors=True, backend="fast"))
    assert_close(fast.matrix, ref.matrix, ROUNDOFF, "squared correlations")
    assert_close(fast.score, ref.score, ROUNDOFF, "continuous SAP")


def test_sap_drops_constant_factor_with_warning():
    rng = np.random.default_rng(0)
    f = np.stack([rng.integers(0, 3, 300), np.full(300, 2)], axis=1)
    z = np.stack([f[:, 0] + 0.1 * rng.normal(size=300), rng.normal(size=300)], axis=1)
    for cfg in (M.SAPConfig(), M.SAPConfig(backend="fast"), M.SAPConfig(continuous_factors=True)):
        with pytest.warns(M.ConstantFactorWarning):
            result = M.sap(z, f, z, f, cfg)
        assert np.isfinite(result.score) and result.kept.tolist() == [True, False]


def test_sap_fast_handles_test_classes_missing_from_training():
    z = np.array([[0.0, 1.0], [1.0, 0.0], [2.0, 1.0], [3.0, 0.0]] * 10)
    f = np.array([[0], [0], [1], [1]] * 10)
    zt, ft = np.array([[0.0, 0.0], [3.0, 0.0], [5.0, 0.0]]), np.array([[0], [1], [7]])
    ref = M.sap(z, f, zt, ft)
    fast = M.sap(z, f, zt, ft, M.SAPConfig(backend="fast"))
    assert_close(fast.matrix, ref.matrix, ROUNDOFF, "unseen test class counts as wrong")
