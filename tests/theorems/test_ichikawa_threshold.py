"""T24 ichikawa-threshold: the collapsed state is a fixed point for all τ, κ and is linearly stable iff
β > β_c = ρ + η (κ = 0) or β > Λ/(1+κ) - κ/Λ (κ > 0), independent of τ (small enough for SGD).

Assumptions (proofs/ichikawa-threshold.md): A1 M = M* = 1; A2 τβΛ <= 1 (SGD-stable: the τ² terms of
the bulk block must not bind); A3 β away from the threshold.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from jax.flatten_util import ravel_pytree

from linvae._tolerance import ROUNDOFF
from linvae.numeric import ichikawa as ik
from tests.helpers import assert_close


@jax.jit
def _jacobian(h):
    y0 = ik.collapsed_point()
    flat, unravel = ravel_pytree(y0)
    g = lambda x: ravel_pytree(ik.ode_scalar(unravel(x), h))[0]  # noqa: E731
    return g(flat), jax.jacfwd(g)(flat)


@given(rho=st.floats(0.1, 4.0), eta=st.floats(0.1, 4.0), beta=st.floats(0.05, 12.0),
       taus=st.tuples(st.floats(0.005, 0.2), st.floats(0.005, 0.2)), kappa=st.floats(0.0, 0.5))
def test_ichikawa_threshold(rho, eta, beta, taus, kappa):
    beta_c = ik.collapse_threshold(rho, eta, kappa)
    assume(abs(beta - beta_c) > 1e-2 * max(beta_c, 0.1))  # A3
    Lam = rho + eta
    # A2: SGD stability of the bulk block, whose τ² term τ²η²β²Q̃ competes with -2τβηQ̃.
    assume(max(taus) * beta * Lam <= 1.0)
    signs = []
    for tau in taus:
        h = ik.Hyper(*(jnp.asarray(x) for x in (rho, eta, beta, tau, kappa)))
        f0, J = _jacobian(h)
        assert_close(f0, np.zeros_like(f0), ROUNDOFF, "RHS at the collapsed point")
        J = np.asarray(J)
        # (m, m~) block: exactly tau [[-(1+κ), Λ], [Λ, -(βΛ+κ)]].
        assert_close(J[:2, :2], tau * np.array([[-(1 + kappa), Lam], [Lam, -(beta * Lam + kappa)]]), ROUNDOFF)
        stable = bool(np.max(np.linalg.eigvals(J).real) < 0)
        assert stable == (beta > beta_c), (tau, beta, beta_c)
        signs.append(stable)
    assert signs[0] == signs[1]  # independent of τ
    assert ik.collapse_threshold(rho, eta) == pytest.approx(Lam, rel=ROUNDOFF.rtol)


@given(rho=st.floats(0.1, 4.0), eta=st.floats(0.1, 4.0), beta=st.floats(0.05, 12.0), tau=st.floats(0.01, 1.0))
def test_ichikawa_escape_rate(rho, eta, beta, tau):
    """γ+ is the top eigenvalue of the (m, m~) block at κ = 0: positive iff β < Λ, decreasing in β."""
    Lam = rho + eta
    g = ik.escape_rate(rho, eta, beta, tau)
    top = np.max(np.linalg.eigvalsh(tau * np.array([[-1.0, Lam], [Lam, -beta * Lam]])))
    assert_close(g, top, ROUNDOFF, "escape rate")
    assume(abs(beta - Lam) > 1e-6)
    assert (g > 0) == (beta < Lam)
    assert ik.escape_rate(rho, eta, beta * 1.1, tau) < g
