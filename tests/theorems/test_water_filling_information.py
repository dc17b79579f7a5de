"""T13 water-filling-information: information, distortion and rate at the water-filling point."""

import math

import numpy as np
from hypothesis import assume, given
from hypothesis import strategies as st

from linvae import numeric as nm
from linvae._tolerance import ROUNDOFF
from tests.helpers import assert_close
from tests.strategies import lams, orthogonal, problems


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


@given(case=problems(), lam=lams, frac=st.floats(0.5, 2.0))
def test_information_vanishes_exactly_above_threshold(case, lam, frac):
    """I(X;Y) = 0 iff beta >= beta_c = 1 + 2 lam mu_1."""
    prob, m = case.prob, case.m
    beta_c = 1 + 2 * lam * float(prob.mu[0])
    assume(abs(frac - 1) > 1e-9)  # at beta = beta_c exactly, rounding of beta decides the (flat) side
    beta = 1 + frac * (beta_c - 1)
    mi = float(nm.information(prob, nm.water_filling(prob, beta, lam, m)).mi_xy)
    if beta >= beta_c:
        assert mi == 0.0
    else:
        assert mi > 0.0
