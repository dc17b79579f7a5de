"""T13 water-filling-information: information, distortion and rate at the water-filling point."""

import math

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from linvae import numeric as nm
from linvae._tolerance import ROUNDOFF
from tests.helpers import assert_close, assert_psd, negative_curvature, objective_hessian
from tests.strategies import HESSIAN_SHAPES, lams, orthogonal, problems


def predicted(prob, beta, lam, m):
    """docs/theory.md §3.9 consequences, written from the water level alone."""
    mu = np.asarray(prob.mu)
    s2 = float(prob.sigma2)
    n = prob.n
    D = (beta - 1) / (2 * lam)
    act = np.zeros(n, bool)
    act[:m] = mu[:m] > D
    mi_xy = 0.5 * np.sum(np.log(mu[act] / D))
    mi_xv = 0.5 * np.sum(np.log(mu[act] / (D + s2 * (1 - D / mu[act]))))
    trE = act.sum() * D + mu[~act].sum()
    R = 0.5 * (n * math.log(2 * math.pi) + n + act.sum() * math.log(D) + np.sum(np.log(mu[~act])))
    eigZ = np.sort(np.where(act, D, mu))
    return mi_xy, mi_xv, trE, R, eigZ


@given(case=problems(), beta=st.floats(1.05, 40.0), lam=lams)
def test_water_filling_information(case, beta, lam):
    prob, m = case.prob, case.m
    wf = nm.water_filling(prob, beta, lam, m, R=orthogonal(m, case.seed))
    info = nm.information(prob, wf)
    L = nm.losses(prob, wf, beta, lam)
    mi_xy, mi_xv, trE, R, eigZ = predicted(prob, beta, lam, m)
    assert_close(info.mi_xy, mi_xy, ROUNDOFF, "I(X;Y)")
    assert_close(L.kl, info.mi_xy, ROUNDOFF, "K = I(X;Y) (Sigma_X = I)")
    assert_close(info.mi_xv, mi_xv, ROUNDOFF, "I(X;V)")
    assert_close(L.l2, trE, ROUNDOFF, "tr E")
    assert_close(L.recon, R, ROUNDOFF, "R")
    assert_close(np.linalg.eigvalsh(np.asarray(wf.Sigma_Z)), eigZ, ROUNDOFF, "eig Sigma_Z")


@given(case=problems(), b1=st.floats(1.05, 40.0), b2=st.floats(1.05, 40.0), l1=lams, l2=lams)
def test_information_is_monotone_in_beta_and_lambda(case, b1, b2, l1, l2):
    prob, m = case.prob, case.m
    (b_lo, b_hi), (l_lo, l_hi) = sorted((b1, b2)), sorted((l1, l2))
    mi = lambda b, lam: float(nm.information(prob, nm.water_filling(prob, b, lam, m)).mi_xy)  # noqa: E731
    slack = ROUNDOFF.atol
    assert mi(b_hi, l_lo) <= mi(b_lo, l_lo) + slack, "non-increasing in beta"
    assert mi(b_lo, l_hi) >= mi(b_lo, l_lo) - slack, "non-decreasing in lambda"


@given(
    case=problems(shapes=HESSIAN_SHAPES, near_degenerate=True),
    lam=lams,
    side=st.sampled_from([-1.0, 1.0]),
    log_delta=st.floats(-3.0, -1.0),
)
def test_information_vanishes_exactly_above_threshold(case, lam, side, log_delta):
    """I(X;Y) = 0 iff beta >= beta_c = 1 + 2 lam mu_1, decided by the loss itself, at beta - 1 within a
    relative 1e-3..1e-1 of beta_c - 1 on either side: the collapsed point has a direction of negative
    curvature exactly below beta_c (so no optimum is collapsed there), the water-filling point carries
    information exactly then, is below the collapsed loss, and is itself a second-order minimum (A1)."""
    prob, m = case.prob, case.m
    beta_c = 1 + 2 * lam * float(prob.mu[0])
    beta = 1 + (1 + side * 10.0**log_delta) * (beta_c - 1)
    below = beta < beta_c
    col = nm.collapsed(prob, m)
    # The softest (b, a) pair at collapse has curvature ~ -(beta_c - beta)/(1 + beta): >= 1e-3 x O(1) here.
    assert negative_curvature(objective_hessian(prob, col, beta, lam), ROUNDOFF) == below, "collapse unstable"
    wf = nm.water_filling(prob, beta, lam, m)
    mi = float(nm.information(prob, wf).mi_xy)
    assert (mi > 0.0) == below, f"I(X;Y) = {mi} at beta / beta_c = {beta / beta_c}"
    L_wf, L_col = (float(nm.losses(prob, s, beta, lam).total) for s in (wf, col))
    assert (L_wf < L_col) == below, f"L(water-filling) - L(collapse) = {L_wf - L_col:.3e}"
    assert_psd(objective_hessian(prob, wf, beta, lam), ROUNDOFF, "Hessian at the water-filling point")
