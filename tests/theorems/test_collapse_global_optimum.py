"""T9 collapse-global-optimum: with lam = 0, beta > 1, L_beta >= L*_col everywhere, equality iff collapsed.

The bound is tested where it is tight: at the collapsed point (equality with the closed form L*_col) and
at perturbations of relative size 1e-3 .. 1e-1 around it in every parameter block, where the excess is
second order (~1e-6 of L at the smallest size), so a constant or a loss term wrong by 1e-4 fails.
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from linvae import numeric as nm
from linvae._tolerance import ROUNDOFF
from tests.helpers import assert_close, assert_pd, moved, objective_hessian, perturbation
from tests.strategies import HESSIAN_SHAPES, problems, published_problems, random_state
from tests.theorems.test_collapse_limit import collapsed_value

#: Relative perturbation sizes around the optimum: log-uniform in [1e-3, 1e-1].
eps_sizes = st.floats(-3.0, -1.0).map(lambda u: 10.0**u)


def _aligned(prob, col):
    """The softest direction at collapse: b = a along (u_1, latent 1) in natural units, where
    L = L*_col + eps^2 (beta - 1)/2 exactly to second order (beta <= 1 would make it a descent direction)."""
    u = np.asarray(prob.U)[:, 0]
    mu = float(prob.mu[0])
    e = np.zeros(col.B.shape[0])
    e[0] = 1.0
    zero = lambda x: np.zeros_like(np.asarray(x))  # noqa: E731
    return np.outer(e, u) / np.sqrt(mu), zero(col.Sigma_W), np.outer(u, e) * np.sqrt(mu), zero(col.Sigma_Z)


def _assert_strictly_above_collapse(prob, m, beta, eps, seed, diagonal_W):
    """Every perturbation of the collapsed point, either sign, strictly raises L_beta above L*_col."""
    col = nm.collapsed(prob, m)
    L_col = collapsed_value(prob)
    assert_close(nm.losses(prob, col, beta, 0.0).total, L_col, ROUNDOFF, "L at the collapsed point = L*_col")
    for d in (perturbation(prob, col, seed, diagonal_W=diagonal_W), _aligned(prob, col)):
        for sign in (1.0, -1.0):
            L = float(nm.losses(prob, moved(col, d, sign * eps), beta, 0.0).total)
            # The excess is >= ~eps^2 (beta - 1)/(1 + beta) / 2 >= 2e-9 here, the rounding of L ~1e-14: strict.
            assert L > L_col, f"L - L*_col = {L - L_col:.3e} at eps = {sign * eps:.1e}"


@pytest.mark.parametrize("encoder", ["full", "diagonal"])
@given(case=problems(near_degenerate=True), beta=st.floats(1.01, 30.0), eps=eps_sizes)
def test_collapse_is_the_global_minimum(encoder, case, beta, eps):
    """L*_col is attained at the collapsed point and every nearby point (all four blocks moved) is above it."""
    _assert_strictly_above_collapse(case.prob, case.m, beta, eps, case.seed, encoder == "diagonal")


@pytest.mark.parametrize("encoder", ["full", "diagonal"])
@given(case=problems(shapes=HESSIAN_SHAPES, near_degenerate=True), beta=st.floats(1.01, 30.0))
def test_collapse_is_a_strict_minimum(encoder, case, beta):
    """The Hessian of L_beta at the collapsed point is positive definite in every direction (A1, A2): its
    softest eigenvalue is ~(beta - 1)/(1 + beta) > 0, and it turns negative for beta < 1."""
    prob, m = case.prob, case.m
    H = objective_hessian(prob, nm.collapsed(prob, m), beta, 0.0, diagonal_W=encoder == "diagonal")
    assert_pd(H, ROUNDOFF, "Hessian of L_beta at the collapsed point")


@settings(max_examples=10)
@given(case=published_problems(), beta=st.floats(1.01, 30.0), eps=eps_sizes)
def test_collapse_is_the_global_minimum_published_regime(case, beta, eps):
    """The same at (n, m) = (50, 10) with a noise floor of multiplicity 45 and near-degenerate signal."""
    _assert_strictly_above_collapse(case.prob, case.m, beta, eps, case.seed, False)


@given(case=problems(), beta=st.floats(1.01, 30.0), scale=st.floats(1e-3, 3.0))
def test_collapse_bound_holds_far_from_the_optimum(case, beta, scale):
    """Far from the optimum (random feasible points) the bound holds too (a loose check; the sharp one is above)."""
    prob, m = case.prob, case.m
    s = random_state(prob.n, m, case.seed, scale=scale)
    L_col = collapsed_value(prob)
    assert float(nm.losses(prob, s, beta, 0.0).total) > L_col - ROUNDOFF.atol - ROUNDOFF.rtol * abs(L_col)


@given(case=problems(), beta=st.floats(1.01, 30.0))
def test_only_stationary_point_is_collapse(case, beta):
    """(beta - 1) K = 0 at a fixed point: any nonzero encoder is moved by the map."""
    prob, m = case.prob, case.m
    s = random_state(prob.n, m, case.seed)
    A, Z = nm.decoder_block(prob.Sigma_Y, s.B, s.Sigma_W)
    B1, W1 = nm.encoder_block(A, Z, beta, 0.0)
    K0 = np.linalg.solve(np.asarray(s.Sigma_W), np.asarray(s.B))
    K1 = np.linalg.solve(np.asarray(W1), np.asarray(B1))
    assert np.linalg.norm(K1 - K0) > (1 - 1 / beta) * np.linalg.norm(K0) * (1 - ROUNDOFF.rtol)
