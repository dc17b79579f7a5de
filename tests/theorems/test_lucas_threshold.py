"""T17 lucas-threshold: fixed isotropic decoder (D3): the closed form of Lucas et al. is the global optimum."""

import math

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
    negative_curvature,
    objective_grad,
    objective_hessian,
    perturbation,
)
from tests.strategies import (
    HESSIAN_SHAPES,
    orthogonal,
    problems,
    published_problems,
    random_encoder,
    random_state,
)


def _grad_d3(prob, s, beta, lam, encoder):
    gB, gW, gA, _ = objective_grad(prob, s, beta, lam)
    if encoder == "diagonal":
        gW = np.diag(np.diag(gW))
    return gB, gW, gA


@pytest.mark.parametrize("encoder", ["full", "diagonal"])
@given(case=problems(), beta=st.floats(0.2, 20.0), lam=st.floats(0.0, 3.0), sd2=st.floats(0.05, 5.0))
def test_lucas_is_stationary(encoder, case, beta, lam, sd2):
    prob, m = case.prob, case.m
    R = orthogonal(m, case.seed) if encoder == "full" else None  # E2: diagonal Sigma_W needs R = I
    lu = nm.lucas(prob, beta, lam, m, sd2, R=R)
    assert_stationary(_grad_d3(prob, lu, beta, lam, encoder), lu[:3], STATIONARY, "D3 gradient")


D3_BLOCKS = ("B", "Sigma_W", "A")  # the decoder covariance is fixed


def _collapse_latent(s: nm.State, k: int) -> nm.State:
    """The same point with latent k switched off (b = a = 0, w = 1): stationary whatever mu_k (R = I)."""
    B, W, A = (np.asarray(x).copy() for x in (s.B, s.Sigma_W, s.A))
    B[k], A[:, k] = 0.0, 0.0
    W[k, :], W[:, k] = 0.0, 0.0
    W[k, k] = 1.0
    return s._replace(B=B, Sigma_W=W, A=A)


@given(
    case=problems(shapes=HESSIAN_SHAPES, near_degenerate=True),
    beta=st.floats(0.2, 20.0),
    lam_share=st.floats(0.0, 0.9),
    k=st.integers(0, HESSIAN_SHAPES[0][1] - 1),
    side=st.sampled_from([-1.0, 1.0]),
    log_delta=st.floats(-3.0, -1.0),
)
def test_collapsed_iff_below_theta(case, beta, lam_share, k, side, log_delta):
    """Latent k is collapsed at the optimum iff mu_k <= theta = beta sigma_eff^2, decided by the D3 loss at
    theta within a relative 1e-3..1e-1 of mu_k: the closed form is a second-order minimum (PSD Hessian in
    (B, Sigma_W, A)); switching latent k off there leaves a stationary point that has a direction of
    negative curvature, and a higher loss, exactly when mu_k > theta (A1, A2)."""
    prob, m = case.prob, case.m
    mu_k = float(prob.mu[k])
    theta = mu_k * (1.0 + side * 10.0**log_delta)
    # theta = beta / (1/sd2 + 2 lam): lam takes a share of beta/theta, 1/sd2 the rest.
    lam = lam_share * beta / (2.0 * theta)
    sd2 = theta / ((1.0 - lam_share) * beta)
    lu = nm.lucas(prob, beta, lam, m, sd2)
    assert_psd(
        objective_hessian(prob, lu, beta, lam, blocks=D3_BLOCKS), ROUNDOFF, "D3 Hessian at the optimum"
    )
    off = _collapse_latent(lu, k)
    assert_stationary(_grad_d3(prob, off, beta, lam, "full"), off[:3], STATIONARY, "latent k switched off")
    active = mu_k > theta
    unstable = negative_curvature(objective_hessian(prob, off, beta, lam, blocks=D3_BLOCKS), ROUNDOFF)
    assert unstable == active, f"mu_k / theta = {mu_k / theta}: negative curvature {unstable}"
    L_lu, L_off = (float(nm.losses(prob, s, beta, lam).total) for s in (lu, off))
    assert (L_off > L_lu) == active, f"L(latent k off) - L(optimum) = {L_off - L_lu:.3e}"


@given(
    case=problems(),
    beta=st.floats(0.2, 20.0),
    sd2=st.floats(0.05, 5.0),
    c=st.floats(0.2, 5.0),
    seed=st.integers(0, 2**16),
)
def test_depends_on_beta_sigma_d2_only_through_the_product(case, beta, sd2, c, seed):
    """At lam = 0 the D3 loss at (c beta, sd2/c) is c x the loss at (beta, sd2) plus a constant, at every
    feasible point, so the two share every minimiser; the optimum at (beta, sd2) is stationary for the
    loss at (c beta, sd2/c), and the closed form agrees (A1, A2)."""
    prob, m = case.prob, case.m
    n = prob.n
    const = 0.5 * n * (math.log(sd2 / c) - c * math.log(sd2) + (1.0 - c) * math.log(2.0 * math.pi))
    lu = nm.lucas(prob, beta, 0.0, m, sd2)
    for s in (lu, random_state(n, m, case.seed), random_state(n, m, seed, scale=0.3)):
        L = float(nm.losses(prob, s._replace(Sigma_Z=sd2 * np.eye(n)), beta, 0.0).total)
        L_c = float(nm.losses(prob, s._replace(Sigma_Z=sd2 / c * np.eye(n)), c * beta, 0.0).total)
        assert_close(L_c, c * L + const, ROUNDOFF, "L(c beta, sd2 / c) = c L(beta, sd2) + const")
    lu_c = lu._replace(Sigma_Z=sd2 / c * np.eye(n))
    assert_stationary(
        _grad_d3(prob, lu_c, c * beta, 0.0, "full"), lu[:3], STATIONARY, "optimum at (c beta, sd2/c)"
    )
    b = nm.lucas(prob, beta * c, 0.0, m, sd2 / c)
    for name in ("B", "Sigma_W", "A"):
        assert_close(getattr(b, name), getattr(lu, name), ROUNDOFF, name)


#: Relative perturbation sizes around the optimum: log-uniform in [1e-3, 1e-1].
eps_sizes = st.floats(-3.0, -1.0).map(lambda u: 10.0**u)


@settings(max_examples=10)
@given(
    case=published_problems(),
    beta=st.floats(0.2, 20.0),
    lam=st.floats(0.0, 3.0),
    sd2=st.floats(0.01, 2.0),
    eps=eps_sizes,
)
def test_lucas_published_regime(case, beta, lam, sd2, eps):
    """(n, m) = (50, 10), a 45-fold degenerate noise floor, near-degenerate signal: every perturbation of
    the closed form in (B, Sigma_W, A), either sign, raises the D3 loss (second order: no gradient)."""
    prob, m = case.prob, case.m
    lu = nm.lucas(prob, beta, lam, m, sd2, R=orthogonal(m, case.seed + 1))
    L = float(nm.losses(prob, lu, beta, lam).total)
    d = perturbation(prob, lu, case.seed, blocks=D3_BLOCKS)
    for sign in (1.0, -1.0):
        L_moved = float(nm.losses(prob, moved(lu, d, sign * eps), beta, lam).total)
        assert L_moved > L, f"L - L* = {L_moved - L:.3e} at eps = {sign * eps:.1e}"


@given(case=problems(), beta=st.floats(0.3, 10.0), lam=st.floats(0.0, 3.0), sd2=st.floats(0.05, 5.0))
def test_lucas_is_the_global_minimum_and_the_map_reaches_it(case, beta, lam, sd2):
    prob, m = case.prob, case.m
    variant = nm.Variant(decoder="fixed", sigma_d2=sd2)
    theta = beta / (1 / sd2 + 2 * lam)
    mu = np.asarray(prob.mu)
    assume(np.min(np.abs(mu[: m + 1] - theta) / mu[: m + 1]) > 0.05)  # A3: no direction at the threshold
    L_lu = float(nm.losses(prob, nm.lucas(prob, beta, lam, m, sd2), beta, lam).total)
    s = random_state(prob.n, m, case.seed)._replace(Sigma_Z=sd2 * np.eye(prob.n))
    assert float(nm.losses(prob, s, beta, lam).total) >= L_lu - ROUNDOFF.atol - ROUNDOFF.rtol * abs(L_lu)
    run = nm.alternating(
        prob,
        beta,
        lam,
        init=random_encoder(prob.n, m, case.seed),
        variant=variant,
        tol=1e-11,
        max_sweeps=50_000,
    )
    assert bool(run.converged)
    assert_close(nm.losses(prob, run, beta, lam).total, L_lu, CONVERGED, "map reaches the Lucas loss")
