"""T12 water-filling: the reverse water-filling point is stationary, globally minimal, and has Sigma_X = I."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from linvae import numeric as nm
from linvae._tolerance import CONVERGED, ROUNDOFF, STATIONARY
from tests.helpers import (
    assert_close,
    assert_psd,
    assert_stationary,
    moved,
    objective_grad,
    objective_hessian,
    perturbation,
)
from tests.strategies import HESSIAN_SHAPES, lams, orthogonal, problems, published_problems, random_encoder


def _grad(prob, s, beta, lam):
    return objective_grad(prob, s, beta, lam)


@given(case=problems(), beta=st.floats(1.05, 40.0), lam=lams)
def test_water_filling_is_stationary(case, beta, lam):
    prob, m = case.prob, case.m
    R = orthogonal(m, case.seed + 1)
    wf = nm.water_filling(prob, beta, lam, m, R=R)
    assert_stationary(_grad(prob, wf, beta, lam), wf[:4], STATIONARY, "autodiff gradient at water-filling")
    Sx = wf.B @ prob.Sigma_Y @ wf.B.T + wf.Sigma_W
    assert_close(Sx, np.eye(m), ROUNDOFF, "Sigma_X = I")


@given(case=problems(), beta=st.floats(1.5, 40.0), lam=lams)
def test_map_reaches_the_water_filling_loss(case, beta, lam):
    """Random starts of the map reach the closed-form loss value (the point itself only up to R in O(m))."""
    prob, m = case.prob, case.m
    D = (beta - 1) / (2 * lam)
    mu = np.asarray(prob.mu)
    assume(np.min(np.abs(mu[: m + 1] - D) / mu[: m + 1]) > 0.05)  # A7: no direction at the water level
    run = nm.alternating(
        prob, beta, lam, init=random_encoder(prob.n, m, case.seed), tol=1e-11, max_sweeps=50_000
    )
    assert bool(run.converged)
    wf = nm.water_filling(prob, beta, lam, m)
    L_run, L_wf = nm.losses(prob, run, beta, lam), nm.losses(prob, wf, beta, lam)
    assert_close(L_run.total, L_wf.total, CONVERGED, "loss")
    assert_close(L_run.recon, L_wf.recon, CONVERGED, "R")
    # Rotation-invariant summaries of the point agree.
    assert_close(run.B.T @ run.B, wf.B.T @ wf.B, CONVERGED, "B^T B")
    assert_close(run.Sigma_Z, wf.Sigma_Z, CONVERGED, "Sigma_Z")


def optimal_value(prob, beta, lam, m) -> float:
    """L* from the water level alone (docs/theory.md §3.9): R + beta K + lam tr E with R, K = I(X;Y), tr E of T13."""
    mu = np.asarray(prob.mu)
    n = prob.n
    D = (beta - 1) / (2 * lam)
    act = np.zeros(n, bool)
    act[:m] = mu[:m] > D
    R = 0.5 * (n * math.log(2 * math.pi) + n + act.sum() * math.log(D) + np.sum(np.log(mu[~act])))
    K = 0.5 * np.sum(np.log(mu[act] / D))
    trE = act.sum() * D + mu[~act].sum()
    return float(R + beta * K + lam * trE)


#: Relative perturbation sizes around the optimum: log-uniform in [1e-3, 1e-1].
eps_sizes = st.floats(-3.0, -1.0).map(lambda u: 10.0**u)


def _assert_minimal_near(prob, m, beta, lam, eps, seed):
    """Equality: L(water-filling, any R) = L*; every perturbation of it, either sign, raises L strictly."""
    wf = nm.water_filling(prob, beta, lam, m, R=orthogonal(m, seed + 1))
    L_star = optimal_value(prob, beta, lam, m)
    L_wf = float(nm.losses(prob, wf, beta, lam).total)
    assert_close(L_wf, L_star, ROUNDOFF, "L at the water-filling point = L*")
    d = perturbation(prob, wf, seed)
    for sign in (1.0, -1.0):
        L = float(nm.losses(prob, moved(wf, d, sign * eps), beta, lam).total)
        # Second-order excess >= ~1e-9 at eps = 1e-3; one loss evaluation rounds at ~1e-14 |L|.
        assert L > L_wf, f"L - L* = {L - L_wf:.3e} at eps = {sign * eps:.1e}"


@given(case=problems(near_degenerate=True), beta=st.floats(1.05, 40.0), lam=lams, eps=eps_sizes)
def test_water_filling_is_minimal_near_the_optimum(case, beta, lam, eps):
    """L >= L* tested where it is tight: equality at the point (any R), strict increase at distance
    1e-3..1e-1 in every block, either sign (A1)."""
    _assert_minimal_near(case.prob, case.m, beta, lam, eps, case.seed)


@given(case=problems(shapes=HESSIAN_SHAPES, near_degenerate=True), beta=st.floats(1.05, 40.0), lam=lams)
def test_water_filling_hessian_is_psd(case, beta, lam):
    """Second-order optimality in every direction: the Hessian at the water-filling point is positive
    semidefinite, zero only along the O(m) orbit and across near-degenerate or near-threshold pairs (A1).
    A direction left collapsed above the water level would show a negative eigenvalue ~(mu - D)."""
    prob, m = case.prob, case.m
    wf = nm.water_filling(prob, beta, lam, m, R=orthogonal(m, case.seed + 1))
    assert_psd(objective_hessian(prob, wf, beta, lam), ROUNDOFF, "Hessian at the water-filling point")


@settings(max_examples=10)
@given(case=published_problems(), beta=st.floats(1.05, 40.0), lam=lams, eps=eps_sizes)
def test_water_filling_published_regime(case, beta, lam, eps):
    """(n, m) = (50, 10), a 45-fold degenerate noise floor, near-degenerate signal: Sigma_X = I, L = L*, and
    minimal under perturbations (the antithetic pairs also bound the gradient: a first-order term would
    make one of them fall)."""
    prob, m = case.prob, case.m
    wf = nm.water_filling(prob, beta, lam, m, R=orthogonal(m, case.seed + 1))
    assert_close(wf.B @ prob.Sigma_Y @ wf.B.T + wf.Sigma_W, np.eye(m), ROUNDOFF, "Sigma_X = I")
    _assert_minimal_near(prob, m, beta, lam, eps, case.seed)


@pytest.mark.slow
@settings(max_examples=10)
@given(case=published_problems(), beta=st.floats(1.05, 40.0), lam=lams)
def test_water_filling_published_regime_is_stationary(case, beta, lam):
    """The autodiff gradient vanishes at (n, m) = (50, 10) (slow: the n = 50 gradient compiles for ~15 s)."""
    prob, m = case.prob, case.m
    wf = nm.water_filling(prob, beta, lam, m, R=orthogonal(m, case.seed + 1))
    assert_stationary(_grad(prob, wf, beta, lam), wf[:4], STATIONARY, "autodiff gradient at water-filling")


@given(case=problems(), beta=st.floats(1.05, 40.0), lam=lams)
def test_activating_a_direction_lowers_the_loss(case, beta, lam):
    """Dropping the weakest active direction from the water-filling point raises the loss by
    (beta - 1)/2 [(mu/D - 1) - log(mu/D)] (docs/theory.md §3.9)."""
    prob, m = case.prob, case.m
    D = (beta - 1) / (2 * lam)
    mu = np.asarray(prob.mu)
    k = int(np.sum(mu[:m] > D))
    assume(k >= 1)
    full = nm.water_filling(prob, beta, lam, m)
    # The same point with latent k-1 switched off (b = a = 0, w = 1) and z = mu there: a stationary point.
    U = np.asarray(prob.U)
    B = np.asarray(full.B).copy()
    B[k - 1] = 0.0
    W = np.asarray(full.Sigma_W).copy()
    W[k - 1, k - 1] = 1.0
    A = np.asarray(full.A).copy()
    A[:, k - 1] = 0.0
    Z = np.asarray(full.Sigma_Z) + (mu[k - 1] - D) * np.outer(U[:, k - 1], U[:, k - 1])
    fewer = full._replace(B=B, Sigma_W=W, A=A, Sigma_Z=Z)
    g = _grad(prob, jax.tree.map(jnp.asarray, fewer), beta, lam)
    assert_stationary(g, fewer[:4], STATIONARY, "the sub-active-set point is stationary")
    r = mu[k - 1] / D
    gain = 0.5 * (beta - 1) * ((r - 1) - np.log(r))
    dL = float(nm.losses(prob, fewer, beta, lam).total - nm.losses(prob, full, beta, lam).total)
    assert_close(dL, gain, ROUNDOFF, "loss change of activating direction k")
