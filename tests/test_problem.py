"""The data model: constructors, the published instance replay, and clear errors on bad input."""

import re
import warnings

import jax
import numpy as np
import pytest
from sklearn.datasets import make_spd_matrix

from linvae import numeric as nm
from linvae._tolerance import ROUNDOFF
from linvae.numeric.problem import spd_matrix_numpy
from tests.helpers import assert_close


def _published_stream(n: int):
    """The published script's draws, restated with NumPy's *global* generator and scikit-learn itself."""
    np.random.seed(42)
    for size in (50, 100):
        Sigma_V = np.diag(np.random.uniform(0.1, 1.0, 5))
        Gamma = np.random.randn(size, 5)
        fixed = [(np.random.rand(10, size), make_spd_matrix(10)) for _ in range(50)]
        for _ in range(50):
            make_spd_matrix(size), make_spd_matrix(10)
        if size == n:
            return Sigma_V, Gamma, fixed


@pytest.mark.parametrize("n", [50, 100])
def test_authors_instance_is_a_bit_exact_replay(n):
    state = np.random.get_state()
    try:
        Sigma_V, Gamma, fixed = _published_stream(n)
    finally:
        np.random.set_state(state)
    prob = nm.authors_instance(n)
    assert np.array_equal(np.asarray(prob.Sigma_V), Sigma_V)
    assert np.array_equal(np.asarray(prob.Gamma), Gamma)
    assert float(prob.sigma2) == 0.05 and prob.n == n and prob.s == 5
    B0, W0 = nm.authors_inits(n)
    assert np.array_equal(np.asarray(B0), np.stack([b for b, _ in fixed]))
    assert_close(W0, np.stack([w for _, w in fixed]), ROUNDOFF, "make_spd_matrix replay")


def test_spd_matrix_numpy_equals_scikit_learn():
    for seed in range(5):
        ours = spd_matrix_numpy(np.random.RandomState(seed), 7)
        assert np.array_equal(ours, make_spd_matrix(7, random_state=np.random.RandomState(seed)))


def test_spd_matrix_jax_has_scikit_learn_spectrum():
    """Same recipe with a JAX key: symmetric, eigenvalues in [1, 2)."""
    W = np.asarray(nm.spd_matrix(jax.random.key(3), 6))
    ev = np.linalg.eigvalsh(W)
    assert np.allclose(W, W.T, rtol=0, atol=ROUNDOFF.atol) and ev.min() >= 1 - ROUNDOFF.rtol and ev.max() < 2


def test_authors_instance_spectrum_structure():
    """Sigma_Y has s = 5 signal eigenvalues and n - 5 equal to sigma2 (docs/theory.md §10 trap 7)."""
    prob = nm.authors_instance(50)
    mu = np.asarray(prob.mu)
    assert np.all(np.diff(mu) <= 0)
    assert_close(mu[5:], np.full(45, 0.05), ROUNDOFF, "noise floor")
    assert mu[4] > 1.0
    assert_close((prob.U * prob.mu[None, :]) @ prob.U.T, prob.Sigma_Y, ROUNDOFF, "eigendecomposition")


def test_from_spectrum_and_spiked():
    p = nm.from_spectrum([1.0, 3.0, 2.0], sigma2=0.5)
    assert_close(p.mu, [3.0, 2.0, 1.0], ROUNDOFF, "sorted spectrum")
    assert_close(np.linalg.eigvalsh(np.asarray(p.Sigma_Y))[::-1], p.mu, ROUNDOFF, "Sigma_Y spectrum")
    q = nm.spiked(64, rho=2.0, eta=0.5)
    assert_close(q.mu[:2], [2.5, 0.5], ROUNDOFF, "Lambda = rho + eta, bulk eta")
    q2 = nm.spiked(64, rho=1.0, eta=1.0, M_star=2)
    assert_close(q2.mu[:3], [2.0, 2.0, 1.0], ROUNDOFF, "two spikes")


BAD = [
    (
        lambda: nm.from_factors(np.array([[1.0, 2.0], [0.0, 1.0]]), np.ones((3, 2)), 0.1),
        "Sigma_V must be symmetric",
    ),
    (lambda: nm.from_factors(np.array([[1.0, 0.0], [0.0, -1.0]]), np.ones((3, 2)), 0.1), "positive definite"),
    (lambda: nm.from_factors(np.eye(2), np.ones((3, 3)), 0.1), "Gamma must have shape"),
    (lambda: nm.from_factors(np.eye(2), np.ones((3, 2)), -0.1), "sigma2 must be >= 0"),
    (lambda: nm.from_factors(np.eye(2), np.full((3, 2), np.nan), 0.1), "Gamma must be finite"),
    (lambda: nm.from_factors(np.eye(2), np.ones((3, 2)), 0.0), "Sigma_Y"),
    (lambda: nm.from_spectrum([1.0, -1.0]), "positive"),
    (lambda: nm.from_spectrum([1.0, 2.0], sigma2=1.5), "sigma2 must be <="),
    (lambda: nm.authors_instance(60), "published sizes"),
    (lambda: nm.alternating(nm.from_spectrum([2.0, 1.0]), 0.0, 0.0, 1), "beta must be > 0"),
    (lambda: nm.alternating(nm.from_spectrum([2.0, 1.0]), -1.0, 0.0, 1), "beta must be > 0"),
    (lambda: nm.alternating(nm.from_spectrum([2.0, 1.0]), 2.0, -1.0, 1), "lam must be >= 0"),
    (lambda: nm.alternating(nm.from_spectrum([2.0, 1.0]), float("nan"), 0.0, 1), "beta must be finite"),
    (lambda: nm.alternating(nm.from_spectrum([2.0, 1.0]), 2.0, 0.0, 3), "m (latent dimension)"),
    (
        lambda: nm.alternating(nm.from_spectrum([2.0, 1.0]), 2.0, 0.0, init=(np.ones((1, 3)), np.eye(1))),
        "init B0 must have shape",
    ),
    (
        lambda: nm.alternating(nm.from_spectrum([2.0, 1.0]), 2.0, 0.0, init=(np.ones((1, 2)), -np.eye(1))),
        "positive definite",
    ),
    (lambda: nm.water_filling(nm.from_spectrum([2.0, 1.0]), 1.0, 1.0, 1), "water_filling needs beta > 1"),
    (
        lambda: nm.losses(nm.from_spectrum([2.0, 1.0]), nm.collapsed(nm.from_spectrum([2.0, 1.0]), 1), -2.0),
        "beta must be > 0",
    ),
    (lambda: nm.Variant(decoder="fixed"), "needs a finite sigma_d2"),
    (
        lambda: nm.losses(
            nm.from_spectrum([2.0, 1.0]),
            nm.collapsed(nm.from_spectrum([2.0, 1.0]), 1)._replace(Sigma_W=-np.eye(1)),
            2.0,
        ),
        "state Sigma_W must be symmetric positive definite",
    ),
    (
        lambda: nm.information(
            nm.from_spectrum([2.0, 1.0]),
            nm.collapsed(nm.from_spectrum([2.0, 1.0]), 1)._replace(B=np.full((1, 2), np.nan)),
        ),
        "state B must be finite",
    ),
    (
        lambda: nm.losses(
            nm.from_spectrum([2.0, 1.0]), nm.collapsed(nm.from_spectrum([3.0, 2.0, 1.0]), 1), 2.0
        ),
        "state B must have shape",
    ),
    (lambda: nm.Variant(decoder="bernoulli"), "decoder must be"),
]


@pytest.mark.parametrize("call, message", BAD, ids=[m for _, m in BAD])
def test_bad_input_is_a_clear_value_error(call, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        call()


@pytest.mark.parametrize("beta, lam", [(1.0, 0.0), (1.0, 2.0), (0.5, 0.0), (0.5, 3.0)])
def test_degenerate_beta_warns_once_and_never_hangs(beta, lam):
    prob = nm.from_spectrum([3.0, 2.0, 1.0], sigma2=0.1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        st = nm.alternating(prob, beta, lam, 2, key=1, num_inits=3, max_sweeps=200)
    degenerate = [w for w in caught if issubclass(w.category, nm.DegenerateProblemWarning)]
    assert len(degenerate) == 1
    assert st.B.shape == (3, 2, 3)
    assert int(np.max(np.asarray(st.steps))) <= 200
    if not np.all(np.asarray(st.converged)):
        assert any(issubclass(w.category, nm.NotConvergedWarning) for w in caught)


def test_public_surface_of_the_issue():
    """The five names other work scripts against, with their field names."""
    prob = nm.authors_instance(n=50)
    st = nm.alternating(prob, beta=4.0, lam=2.0, m=10, key=0)
    assert {"B", "Sigma_W", "A", "Sigma_Z"} <= set(st._fields) and bool(st.converged)
    L = nm.losses(prob, st, beta=4.0, lam=2.0)
    assert L._fields == ("recon", "kl", "l2", "total")
    info = nm.information(prob, st)
    assert info._fields == ("mi_xy", "mi_xv", "pairwise", "sap", "i_m") and info.pairwise.shape == (10, 5)
    wf = nm.water_filling(prob, beta=4.0, lam=2.0, m=10)
    assert wf._fields == st._fields
    assert st.B.dtype == np.float64
