"""Information measures: exact matching, SAP, and their published definitions (docs/theory.md §8)."""

import numpy as np
import scipy.optimize
from hypothesis import given
from hypothesis import strategies as st

from linvae import numeric as nm
from linvae._tolerance import ROUNDOFF
from linvae.numeric.information import max_matching, max_matching_host
from tests.helpers import assert_close
from tests.strategies import factor_problems, random_state


@given(st.integers(1, 6), st.integers(1, 6), st.integers(0, 2**16))
def test_enumerated_matching_equals_hungarian(m, s, seed):
    P = np.random.default_rng(seed).exponential(size=(m, s))
    rows, cols = scipy.optimize.linear_sum_assignment(P, maximize=True)
    assert_close(max_matching(P), P[rows, cols].sum(), ROUNDOFF, "I_m")
    assert_close(max_matching_host(P), P[rows, cols].sum(), ROUNDOFF, "I_m host")


@given(case=factor_problems())
def test_pairwise_mi_sap_and_im_follow_the_published_formulas(case):
    """Restated from docs/theory.md §8 with the joint covariance of (X, V), as the published script builds it."""
    prob, m = case.prob, case.m
    s = random_state(prob.n, m, case.seed)
    info = nm.information(prob, s)
    B, W, Sy, G, Sv = map(np.asarray, (s.B, s.Sigma_W, prob.Sigma_Y, prob.Gamma, prob.Sigma_V))
    Sx = B @ Sy @ B.T + W
    Sxv = B @ G @ Sv
    rho2 = Sxv**2 / np.outer(np.diag(Sx), np.diag(Sv))
    mi = -0.5 * np.log(1 - rho2)
    top = np.argsort(rho2, axis=0)[-2:][::-1]
    sap = np.mean(rho2[top[0], np.arange(prob.s)] - rho2[top[1], np.arange(prob.s)])
    assert_close(info.pairwise, mi, ROUNDOFF, "pairwise MI")
    assert_close(info.sap, sap, ROUNDOFF, "SAP")
    assert_close(info.i_m, max_matching_host(mi), ROUNDOFF, "I_m")
    # The chain V -> Y -> X: max pairwise <= I(X;V) <= I(X;Y).
    assert info.pairwise.max() <= info.mi_xv * (1 + ROUNDOFF.rtol) + ROUNDOFF.atol
    assert info.mi_xv <= info.mi_xy * (1 + ROUNDOFF.rtol) + ROUNDOFF.atol


def test_information_is_batched():
    prob = nm.authors_instance(50)
    st_ = nm.alternating(prob, 4.0, 2.0, 10, key=0, num_inits=3)
    info = nm.information(prob, st_)
    assert info.pairwise.shape == (3, 10, 5) and info.i_m.shape == (3,)
    single = nm.information(prob, nm.State(*(x[1] for x in st_)))
    assert_close(info.i_m[1], single.i_m, ROUNDOFF, "batched vs single")
