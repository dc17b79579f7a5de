"""T24 ichikawa-threshold: the collapsed state is a fixed point for all τ, κ, and is linearly stable iff
β > β_c(κ) (= ρ + η at κ = 0, Λ/(1+κ) - κ/Λ for κ > 0) and τ < τ_c(β, η, κ) = 1/(η² r(-L⁻¹Π)), the
learning rate at which the τ² SGD-noise terms destabilise the bulk (Q, Q~, R) block.

Assumptions (proofs/ichikawa-threshold.md): A1 M = M* = 1, Λ = ρ + η; A2 τ > 0, weight decay κ/(2N) per
sample. The tests keep β and τ a little away from the two boundaries (relative margins below), where the
sign of an eigenvalue near zero is decided by roundoff; the boundary itself is checked separately.

Both sides of each condition are drawn, and stability is read off the eigenvalues of the autodiff
Jacobian of the ODE's right-hand side (``ik.ode_scalar``, τ² terms kept), not from the formulas.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import sympy as sp
from hypothesis import assume, example, given
from hypothesis import strategies as st
from jax.flatten_util import ravel_pytree

from linvae import bridge
from linvae._tolerance import ROUNDOFF
from linvae.numeric import ichikawa as ik
from linvae.symbolic import ichikawa as ik_sym
from linvae.symbolic._symbols import beta as beta_s
from linvae.symbolic._symbols import eta as eta_s
from linvae.symbolic._symbols import kappa as kappa_s
from linvae.symbolic._symbols import rho as rho_s
from linvae.symbolic._symbols import tau as tau_s
from tests.helpers import assert_close

#: relative distance kept from β_c and from τ_c (A-margins of the drawn cases, not of the theorem)
MARGIN = 2e-2


@jax.jit
def _jacobian(h):
    y0 = ik.collapsed_point()
    flat, unravel = ravel_pytree(y0)
    g = lambda x: ravel_pytree(ik.ode_scalar(unravel(x), h))[0]  # noqa: E731
    return g(flat), jax.jacfwd(g)(flat)


def _jacobian_at(rho, eta, beta, tau, kappa):
    f0, J = _jacobian(ik.Hyper(*(jnp.asarray(float(x)) for x in (rho, eta, beta, tau, kappa))))
    return np.asarray(f0), np.asarray(J)


def _top(J) -> float:
    return float(np.max(np.linalg.eigvals(J).real))


def _bulk_floor(eta, kappa) -> float:
    """β above which the bulk drift A_η is stable (its first-order threshold η/(1+κ) - κ/η), floored at 0."""
    return max(eta / (1 + kappa) - kappa / eta, 0.0)


@functools.cache
def _symbolic():
    """The certificate's full Jacobian at collapse and the coefficients of det(L + sΠ), as numpy callables."""
    th = ik_sym.derive_threshold()
    full = bridge.lambdify(th["full_jacobian"], (rho_s, eta_s, beta_s, tau_s, kappa_s), modules="numpy")
    coeffs = sp.Poly(th["bulk_cubic"], ik_sym.s_noise).all_coeffs()
    cubic = bridge.lambdify(coeffs, (eta_s, beta_s, kappa_s), modules="numpy")
    return full, cubic


@example(rho=1.0, eta=1.0, beta=12.0, kappa=0.0, tau_ratio=0.2 / ik.noise_threshold(1.0, 12.0), tau_abs=0.2)
@example(rho=1.0, eta=1.0, beta=3.0, kappa=0.0, tau_ratio=1.0 / ik.noise_threshold(1.0, 3.0), tau_abs=1.0)
# τβΛ = 0.95 <= 1, the old test's "SGD-stable" condition, yet τ > τ_c: unstable above β_c
@example(rho=0.1, eta=2.0, beta=2.15, kappa=0.0, tau_ratio=0.21 / ik.noise_threshold(2.0, 2.15), tau_abs=0.21)
@given(rho=st.floats(0.1, 4.0), eta=st.floats(0.1, 4.0), beta=st.floats(0.05, 12.0), kappa=st.floats(0.0, 0.5),
       tau_ratio=st.floats(0.05, 3.0), tau_abs=st.floats(0.005, 1.0))
def test_ichikawa_threshold(rho, eta, beta, kappa, tau_ratio, tau_abs):
    """Stable iff β > β_c(κ) and τ < τ_c: above β_c, τ = tau_ratio · τ_c on either side of τ_c; below
    β_c, any τ (tau_abs) is unstable, through the (m, m~) block."""
    beta_c = ik.collapse_threshold(rho, eta, kappa)
    assume(abs(beta - beta_c) > MARGIN * beta_c)
    above = beta > beta_c
    if above:
        assume(abs(tau_ratio - 1.0) > MARGIN)
        tau = tau_ratio * ik.noise_threshold(eta, beta, kappa)
    else:
        tau = tau_abs
    Lam = rho + eta
    f0, J = _jacobian_at(rho, eta, beta, tau, kappa)
    assert_close(f0, np.zeros_like(f0), ROUNDOFF, "RHS at the collapsed point")
    # Block lower-triangular: (m, m~) | (Q, Q~, R) | v, and the bulk does not see (m, m~) either.
    assert np.all(J[0:2, 2:] == 0) and np.all(J[2:5, 0:2] == 0) and np.all(J[2:5, 5] == 0)
    assert_close(J[5, 5], -tau * beta / 2, ROUNDOFF, "v eigenvalue")
    # (m, m~) block: exactly tau [[-(1+κ), Λ], [Λ, -(βΛ+κ)]], stable iff β > β_c for every τ.
    assert_close(J[:2, :2], tau * np.array([[-(1 + kappa), Lam], [Lam, -(beta * Lam + kappa)]]), ROUNDOFF)
    assert (_top(J[:2, :2]) < 0) == above
    assert ik.collapse_threshold(rho, eta) == pytest.approx(Lam, rel=ROUNDOFF.rtol)
    stable = _top(J) < 0
    assert stable == (above and tau_ratio < 1.0), (tau, beta, beta_c, _top(J))


@given(eta=st.floats(0.1, 4.0), excess=st.floats(0.05, 10.0), kappa=st.floats(0.0, 0.5))
def test_ichikawa_threshold_boundary_is_exact(eta, excess, kappa):
    """At τ = τ_c the bulk block's top eigenvalue is 0 (a real eigenvalue crosses), negative below, positive
    above: the boundary is exactly τ_c (the bulk block does not depend on ρ; β above the bulk's
    first-order threshold η/(1+κ) - κ/η, which every β > β_c is)."""
    beta = _bulk_floor(eta, kappa) + excess
    tau_c = ik.noise_threshold(eta, beta, kappa)
    tops = []
    for tau in (tau_c * (1 - MARGIN), tau_c, tau_c * (1 + MARGIN)):
        _, J = _jacobian_at(1.0, eta, beta, tau, kappa)
        tops.append(_top(J[2:5, 2:5]))
    scale = tau_c * np.linalg.norm(_jacobian_at(1.0, eta, beta, tau_c, kappa)[1][2:5, 2:5] / tau_c)
    assert tops[0] < 0 < tops[2]
    assert abs(tops[1]) <= ROUNDOFF.rtol * scale + ROUNDOFF.atol, (tops, scale)


@given(eta=st.floats(0.1, 4.0), excess=st.floats(0.05, 10.0), kappa=st.floats(0.0, 0.5),
       tau=st.floats(0.005, 1.0))
def test_ichikawa_threshold_symbolic_matches_numeric(eta, excess, kappa, tau):
    """The sympy certificate against the numeric faces: the symbolic bulk block equals the autodiff one,
    and τ_c η² is the smallest positive root of the certificate's cubic det(L + sΠ)."""
    beta = _bulk_floor(eta, kappa) + excess
    full_sym, cubic_sym = _symbolic()
    _, J = _jacobian_at(1.0, eta, beta, tau, kappa)
    assert_close(J, np.asarray(full_sym(1.0, eta, beta, tau, kappa), dtype=np.float64), ROUNDOFF, "Jacobian")
    roots = np.roots(np.asarray(cubic_sym(eta, beta, kappa), dtype=np.float64))
    real = roots[np.abs(roots.imag) <= ROUNDOFF.rtol * np.abs(roots)].real
    s_star = float(np.min(real[real > 0]))
    assert_close(ik.noise_threshold(eta, beta, kappa) * eta**2, s_star, ROUNDOFF, "tau_c eta^2")


def test_ichikawa_threshold_issue_examples():
    """docs/theory.md §10.22: at ρ = η = 1 (β_c = 2) collapse is unstable above β_c at τ = 0.2, β = 12
    (max Re λ = +1.00) and τ = 1, β = 3 (+4.15), both beyond τ_c, and stable at τ = 0.01, β = 3."""
    for beta, tau, top in ((12.0, 0.2, 1.00), (3.0, 1.0, 4.15)):
        assert beta > ik.collapse_threshold(1.0, 1.0) and tau > ik.noise_threshold(1.0, beta)
        assert round(_top(_jacobian_at(1.0, 1.0, beta, tau, 0.0)[1]), 2) == top
    assert 0.01 < ik.noise_threshold(1.0, 3.0) and _top(_jacobian_at(1.0, 1.0, 3.0, 0.01, 0.0)[1]) < 0
    with pytest.raises(ValueError):
        ik.noise_threshold(1.0, 0.5)  # below the bulk's first-order threshold: no stable τ


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
