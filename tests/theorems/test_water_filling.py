"""T12 water-filling: the reverse water-filling point is stationary, globally minimal, and has Sigma_X = I."""

import jax
import jax.numpy as jnp
import numpy as np
from hypothesis import assume, given
from hypothesis import strategies as st

from linvae import numeric as nm
from linvae._tolerance import CONVERGED, ROUNDOFF, STATIONARY
from tests.helpers import assert_close, assert_stationary, objective_grad
from tests.strategies import lams, orthogonal, problems, random_encoder, random_state


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


@given(case=problems(), beta=st.floats(1.05, 40.0), lam=lams, scale=st.floats(1e-2, 2.0))
def test_water_filling_is_the_global_minimum(case, beta, lam, scale):
    prob, m = case.prob, case.m
    L_wf = float(nm.losses(prob, nm.water_filling(prob, beta, lam, m), beta, lam).total)
    s = random_state(prob.n, m, case.seed, scale=scale)
    # The best decoder for a random encoder still loses to the water-filling point.
    A, Z = nm.decoder_block(prob.Sigma_Y, s.B, s.Sigma_W)
    L = float(nm.losses(prob, s._replace(A=A, Sigma_Z=Z), beta, lam).total)
    assert L >= L_wf - ROUNDOFF.atol - ROUNDOFF.rtol * abs(L_wf)


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
