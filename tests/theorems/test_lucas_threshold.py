"""T17 lucas-threshold: fixed isotropic decoder (D3): the closed form of Lucas et al. is the global optimum."""

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from linvae import numeric as nm
from linvae._tolerance import CONVERGED, ROUNDOFF, STATIONARY
from tests.helpers import assert_close, assert_stationary, objective_grad
from tests.strategies import orthogonal, problems, random_encoder, random_state


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


@given(case=problems(), beta=st.floats(0.2, 20.0), lam=st.floats(0.0, 3.0), sd2=st.floats(0.05, 5.0))
def test_collapsed_iff_below_theta(case, beta, lam, sd2):
    prob, m = case.prob, case.m
    lu = nm.lucas(prob, beta, lam, m, sd2)
    theta = beta / (1 / sd2 + 2 * lam)
    col_norms = np.linalg.norm(np.asarray(lu.A), axis=0)
    collapsed = np.asarray(prob.mu[:m]) <= theta
    assert np.all((col_norms == 0) == collapsed)
    assert np.all(np.isclose(np.diag(np.asarray(lu.Sigma_W))[collapsed], 1.0, rtol=ROUNDOFF.rtol))


@given(case=problems(), beta=st.floats(0.2, 20.0), sd2=st.floats(0.05, 5.0), c=st.floats(0.2, 5.0))
def test_depends_on_beta_sigma_d2_only_through_the_product(case, beta, sd2, c):
    prob, m = case.prob, case.m
    a, b = nm.lucas(prob, beta, 0.0, m, sd2), nm.lucas(prob, beta * c, 0.0, m, sd2 / c)
    for name in ("B", "Sigma_W", "A"):
        assert_close(getattr(b, name), getattr(a, name), ROUNDOFF, name)


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
