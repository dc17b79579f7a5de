"""T22 ichikawa-ode: online SGD with the official loss stays within O(N^-1/2) of the order-parameter ODE
of docs/theory.md §6 (the sup error roughly halves when N quadruples); v ∈ (0, 1] is invariant.

Assumptions (proofs/ichikawa-ode.md): A1 spiked data, teacher with W*ᵀW*/N = I; A2 online SGD with one
fresh sample per step, rate τ for the weights and τ/N for v; A3 macroscopic initial overlaps.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from linvae._tolerance import ROUNDOFF, SQRT_N_SCALING
from linvae.numeric import ichikawa as ik
from tests.helpers import assert_close

SEEDS = 6


def _sup_error(N, kw, M, M_star, t1=2.0):
    sim = ik.online_sgd(N, t1=t1, saves=10, key=1, seeds=SEEDS, M=M, M_star=M_star, **kw)
    errs = []
    for s in range(SEEDS):
        op0 = ik.OrderParams(*(x[s, 0] for x in sim.order))
        ode = ik.integrate_ode(op0, np.asarray(sim.ts), form="matrix", **kw)
        errs.append(max(float(np.max(np.abs(np.asarray(a[s]) - np.asarray(b)))) for a, b in zip(sim.order, ode, strict=True)))
    return float(np.mean(errs))


@pytest.mark.parametrize(
    ("M", "M_star", "kw"),
    [
        (1, 1, dict(rho=1.0, eta=1.0, beta=0.5, tau=0.5, kappa=0.0)),
        pytest.param(2, 1, dict(rho=2.0, eta=0.5, beta=0.3, tau=0.4, kappa=0.1), marks=pytest.mark.slow),
    ],
)
def test_ichikawa_ode_sgd_approaches_ode(M, M_star, kw):
    """Seed-averaged sup error at 4N over that at N is 1/2 within SQRT_N_SCALING."""
    e1, e4 = _sup_error(200, kw, M, M_star), _sup_error(800, kw, M, M_star)
    assert_close(e4 / e1, 0.5, SQRT_N_SCALING, f"error ratio (errors {e1:.3g}, {e4:.3g})")


@st.composite
def order_params(draw, M=1, M_star=1):
    rng = np.random.default_rng(draw(st.integers(0, 2**31 - 1)))
    W = rng.normal(size=(40, M)) * draw(st.floats(0.1, 2.0))
    Wt = rng.normal(size=(40, M)) * draw(st.floats(0.1, 2.0))
    Ws = np.linalg.qr(rng.normal(size=(40, M_star)))[0] * np.sqrt(40)
    v = rng.uniform(0.05, 1.0, size=M)
    return ik.order_parameters(jnp.asarray(W), jnp.asarray(Wt), jnp.asarray(v), jnp.asarray(Ws))


hypers = st.builds(
    lambda *a: ik.Hyper(*(jnp.asarray(x) for x in a)),
    st.floats(0.1, 3.0), st.floats(0.1, 3.0), st.floats(0.05, 5.0), st.floats(0.01, 1.0), st.floats(0.0, 0.5),
)


@given(op=order_params(), h=hypers, noise=st.booleans())
def test_ichikawa_ode_scalar_equals_matrix(op, h, noise):
    """The scalar ODE is the M = M* = 1 case of the matrix ODE (two independent codings)."""
    mat = ik.ode_matrix(op, h, noise)
    sca = ik.ode_scalar(ik.OrderParams(*(jnp.reshape(x, ()) for x in op)), h, noise)
    for a, b, name in zip(mat, sca, ik.OrderParams._fields, strict=True):
        assert_close(jnp.reshape(a, ()), b, ROUNDOFF, name)


@given(op=order_params(M=2), rho=st.floats(0.2, 3.0), eta=st.floats(0.2, 3.0), beta=st.floats(0.05, 4.0),
       tau=st.floats(0.01, 0.5))
def test_ichikawa_ode_v_stays_in_unit_interval(op, rho, eta, beta, tau):
    """v ∈ (0, 1] is invariant: at v = 1, v̇ = -τ Q_ii / 2 <= 0; as v -> 0, v̇ -> +inf."""
    assume(tau * beta * (rho + eta) <= 1.0)  # SGD-stable learning rate (else the τ² terms diverge)
    ts = np.linspace(0.5, 40.0, 20)
    ys = ik.integrate_ode(op, ts, rho=rho, eta=eta, beta=beta, tau=tau)
    v = np.asarray(ys.v)
    assert np.all(v > 0) and np.all(v <= 1.0 + ROUNDOFF.atol)
