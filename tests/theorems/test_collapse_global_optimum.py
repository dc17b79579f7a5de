"""T9 collapse-global-optimum: with lam = 0, beta > 1, L_beta >= L*_col everywhere, equality iff collapsed."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from linvae import numeric as nm
from linvae._tolerance import ROUNDOFF
from tests.strategies import problems, random_state
from tests.theorems.test_collapse_limit import collapsed_value


@pytest.mark.parametrize("encoder", ["full", "diagonal"])
@given(case=problems(), beta=st.floats(1.01, 30.0), scale=st.floats(1e-3, 3.0))
def test_collapse_is_the_global_minimum(encoder, case, beta, scale):
    prob, m = case.prob, case.m
    s = random_state(prob.n, m, case.seed, scale=scale)
    if encoder == "diagonal":
        s = s._replace(Sigma_W=np.diag(np.diag(s.Sigma_W)))
    L = float(nm.losses(prob, s, beta, 0.0).total)
    L_col = collapsed_value(prob)
    assert L > L_col - ROUNDOFF.atol - ROUNDOFF.rtol * abs(L_col)


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
