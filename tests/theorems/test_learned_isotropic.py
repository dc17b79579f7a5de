"""T19 learned-isotropic (D2): Tipping–Bishop variance at β = 1, λ = 0 with a tight ELBO; σ_d² = tr E/n at
stationarity; total collapse is a strict local minimum iff μ_1 < βs_0/(1 + 2λs_0)
(proofs/learned-isotropic.md)."""

import functools
import math
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from linvae import bridge
from linvae import numeric as nm
from linvae import symbolic as S
from linvae._tolerance import CONVERGED, ROUNDOFF, STATIONARY
from linvae.numeric import flow
from linvae.symbolic._symbols import beta as beta_s
from linvae.symbolic._symbols import lam as lam_s
from linvae.symbolic._symbols import sigma_d2 as s2_s
from linvae.symbolic.stationarity import S_rest, m_dim, n_dim, s_0
from tests.helpers import assert_close, assert_stationary
from tests.strategies import problems

D2 = nm.Variant(decoder="isotropic")


@functools.cache
def _sym():
    iso = S.derive_learned_isotropic()
    tb = bridge.lambdify(iso["tipping_bishop"], (S_rest, n_dim, m_dim), modules="numpy")
    fp = iso["fixed_point"]
    resid = bridge.lambdify(fp.lhs - fp.rhs, (s2_s, S_rest, n_dim, m_dim, beta_s, lam_s), modules="numpy")
    mu_star = bridge.lambdify(S.derive_thresholds()["T19"], (beta_s, lam_s, s_0), modules="numpy")
    return tb, resid, mu_star


def _gaussian_nll(Sigma_Y, C) -> float:
    n = C.shape[0]
    return 0.5 * (n * math.log(2 * math.pi) + np.linalg.slogdet(C)[1] + np.trace(np.linalg.solve(C, Sigma_Y)))


@given(problems())
def test_learned_isotropic_symbolic_matches_numeric(case):
    """β = 1, λ = 0: nm.tipping_bishop's σ_d² is the symbolic Σ_{j>m} μ_j/(n − m), and the ELBO is tight."""
    prob, m = case.prob, case.m
    tb, _, _ = _sym()
    st_ = nm.tipping_bishop(prob, m)
    s2 = float(st_.Sigma_Z[0, 0])
    assert_close(s2, tb(float(np.sum(prob.mu[m:])), prob.n, m), ROUNDOFF, "sigma_d2")
    L = nm.losses(prob, st_, 1.0, 0.0)
    C = np.asarray(st_.A @ st_.A.T) + s2 * np.eye(prob.n)
    assert_close(L.recon + L.kl, _gaussian_nll(np.asarray(prob.Sigma_Y), C), ROUNDOFF, "tight ELBO")


@jax.jit
def _grad_isotropic(B, W, A, s, Sigma_Y):
    n = Sigma_Y.shape[0]
    f = lambda B, W, A, s: nm.objective(B, W, A, s * jnp.eye(n), Sigma_Y, 1.0, 0.0)  # noqa: E731
    return jax.grad(f, argnums=(0, 1, 2, 3))(B, W, A, s)


@given(problems())
def test_learned_isotropic_is_stationary(case):
    """The Tipping–Bishop point is stationary in (B, Σ_W, A) and in the shared variance σ_d² (autodiff)."""
    prob, m = case.prob, case.m
    st_ = nm.tipping_bishop(prob, m)
    s2 = st_.Sigma_Z[0, 0]
    g = _grad_isotropic(st_.B, st_.Sigma_W, st_.A, s2, prob.Sigma_Y)
    assert_stationary(g, (st_.B, st_.Sigma_W, st_.A, s2), STATIONARY)


@functools.partial(jax.jit, static_argnums=0)
def _collapse_hessian(m: int, Sigma_Y, s0, beta, lam):
    """Hessian of L in the flattened (B, A) at the D2 collapsed point (0, I, 0, s_0 I)."""
    n = Sigma_Y.shape[0]

    def f(x):
        B, A = x[: m * n].reshape(m, n), x[m * n :].reshape(n, m)
        return nm.objective(B, jnp.eye(m), A, s0 * jnp.eye(n), Sigma_Y, beta, lam)

    return jax.hessian(f)(jnp.zeros(2 * m * n))


@given(problems(), st.floats(0.3, 3.0), st.floats(0.0, 2.0), st.floats(0.7, 0.95))
def test_learned_isotropic_collapse_threshold(case, beta, lam, margin):
    """Total collapse: the numeric threshold equals the symbolic one, and the Hessian of L in (B, A) at
    (0, I, 0, s_0 I) is positive definite just above it and indefinite just below (A1)."""
    prob, m = case.prob, case.m
    s0 = float(np.mean(prob.mu))
    _, _, mu_star = _sym()
    beta_c = flow.collapse_threshold(prob, lam, D2)
    # mu_1 < mu*(beta) <=> beta > beta_c; mu* is linear in beta
    assert_close(float(prob.mu[0]), mu_star(beta_c, lam, s0), ROUNDOFF, "mu_1 = mu*(beta_c)")
    for b, stable in ((beta_c / margin, True), (beta_c * margin, False)):
        ev = np.linalg.eigvalsh(np.asarray(_collapse_hessian(m, prob.Sigma_Y, s0, b, lam)))
        assert (ev.min() > 0) == stable, (b, beta_c, ev.min())


def _general_stationarity(case, beta, lam, tol, max_sweeps):
    prob, m = case.prob, case.m
    with warnings.catch_warnings():
        # A run at the cap is skipped below (slow contraction near a threshold is no counterexample).
        warnings.simplefilter("ignore", nm.NotConvergedWarning)
        run = nm.alternating(prob, beta, lam, m, key=case.seed, variant=D2, tol=tol, max_sweeps=max_sweeps)
    assume(bool(run.converged))
    s2 = float(run.Sigma_Z[0, 0])
    theta = beta / (1.0 / s2 + 2.0 * lam)
    mu = np.asarray(prob.mu)
    assume(np.all(np.abs(mu[:m] - theta) > 0.05 * theta))
    active = mu[:m] > theta
    k = int(active.sum())
    rest = float(np.sum(mu)) - float(np.sum(mu[:m][active]))
    _, resid, _ = _sym()
    assert abs(resid(s2, rest, prob.n, k, beta, lam)) <= CONVERGED.atol + CONVERGED.rtol * s2, "fixed point"
    assert_close(s2, float(nm.losses(prob, run, beta, lam).l2) / prob.n, CONVERGED, "sigma_d2 = tr E / n")
    ref = nm.losses(prob, nm.lucas(prob, beta, lam, m, s2), beta, lam)
    assert_close(nm.losses(prob, run, beta, lam).total, ref.total, CONVERGED, "D3 optimum at sigma_d2")


@settings(max_examples=10)
@given(problems(shapes=((4, 2),)), st.floats(1.2, 4.0), st.floats(0.0, 1.0))
def test_learned_isotropic_general_stationarity(case, beta, lam):
    """General β, λ [D*]: a D2 run of the map from a random start converges to σ_d² = tr E/n, which solves
    the symbolic fixed-point equation, at the D3 optimum for that σ_d² (A1, A2). CI size: one shape, 10
    examples, 2·10^4 sweeps."""
    _general_stationarity(case, beta, lam, 1e-11, 20_000)


@pytest.mark.slow
@settings(max_examples=10)
@given(problems(), st.floats(1.2, 4.0), st.floats(0.0, 1.0))
def test_learned_isotropic_general_stationarity_full(case, beta, lam):
    """The same over both shapes, to 1e-12 and 2·10^5 sweeps."""
    _general_stationarity(case, beta, lam, 1e-12, 200_000)
