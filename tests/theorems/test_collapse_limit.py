"""T8 collapse-limit: with lam = 0, beta > 1 the map converges to (0, I, 0, Sigma_Y) and L -> L*_col."""

import math

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from linvae import numeric as nm
from linvae._tolerance import CONVERGED
from tests.helpers import assert_close
from tests.strategies import problems, random_encoder


def collapsed_value(prob) -> float:
    """L*_col = (n log 2 pi + log|Sigma_Y| + n) / 2."""
    n = prob.n
    return 0.5 * (n * math.log(2 * math.pi) + float(np.sum(np.log(np.asarray(prob.mu)))) + n)


@given(case=problems(), beta=st.floats(1.2, 30.0))
def test_collapse_limit(case, beta):
    prob, m = case.prob, case.m
    run = nm.alternating(
        prob, beta, 0.0, init=random_encoder(prob.n, m, case.seed), tol=1e-12, max_sweeps=5_000
    )
    assert bool(run.converged)
    col = nm.collapsed(prob, m)
    for name in ("B", "Sigma_W", "A", "Sigma_Z"):
        assert_close(getattr(run, name), getattr(col, name), CONVERGED, name)
    L = nm.losses(prob, run, beta, 0.0)
    assert_close(L.total, collapsed_value(prob), CONVERGED, "L -> L*_col")
    assert_close(nm.losses(prob, col, beta, 0.0).total, collapsed_value(prob), CONVERGED, "closed form")
