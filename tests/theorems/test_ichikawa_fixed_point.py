"""T23 ichikawa-fixed-point (M = M* = 1, κ = 0, τ -> 0): the non-collapsed fixed point of docs/theory.md §6
zeroes the ODE exactly for β < ρ + η; ε_g* = (√ρ - √(ρ+η-β))², minimal (0) at β = η; for M = 2, M* = 1
the extra latent follows the superfluous-latent rule.

Assumptions (proofs/ichikawa-fixed-point.md): A1 κ = 0; A2 τ -> 0 (the τ² terms dropped); A3 β < ρ + η
for the non-collapsed point; A4 β away from η for the superfluous latent.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from jax.flatten_util import ravel_pytree

from linvae._tolerance import FLOW, ROUNDOFF
from linvae.numeric import ichikawa as ik
from tests.helpers import assert_close


@st.composite
def below_threshold(draw):
    rho, eta = draw(st.floats(0.1, 4.0)), draw(st.floats(0.1, 4.0))
    beta = draw(st.floats(0.01, 0.99)) * (rho + eta)  # A3
    return rho, eta, beta


@given(case=below_threshold(), tau=st.floats(0.01, 1.0))
def test_ichikawa_fixed_point_is_stationary(case, tau):
    rho, eta, beta = case
    fp = ik.fixed_point(rho, eta, beta)
    h = ik.Hyper(*(jnp.asarray(x) for x in (rho, eta, beta, tau, 0.0)))
    rhs = ik.ode_scalar(fp, h, noise=False)
    scale = 1.0 + float(np.sqrt(sum(float(x) ** 2 for x in fp)))
    for r, name in zip(rhs, ik.OrderParams._fields, strict=True):
        assert abs(float(r)) <= tau * ROUNDOFF.rtol * scale, name
    eps = ik.generalisation_error(fp, rho, "scalar")
    assert_close(eps, ik.steady_generalisation_error(rho, eta, beta), ROUNDOFF, "eps_g*")


@jax.jit
def _newton_step(x, h):
    """One Newton step on the τ -> 0 RHS (noise=False) in the flattened order parameters."""
    unravel = ravel_pytree(ik.collapsed_point())[1]
    F = lambda y: ravel_pytree(ik.ode_scalar(unravel(y), h, noise=False))[0]  # noqa: E731
    return x - jnp.linalg.solve(jax.jacfwd(F)(x), F(x)), F(x)


def _steady_state(rho, eta, beta, seed):
    """A zero of the ODE found by Newton from a start 20% off the closed form in every order parameter: the
    steady state comes from the ODE, the closed form only picks the branch (the collapsed zero is far)."""
    h = ik.Hyper(*(jnp.asarray(x) for x in (rho, eta, beta, 1.0, 0.0)))
    flat = ravel_pytree(ik.fixed_point(rho, eta, beta))[0]
    x = flat * (1.0 + 0.2 * np.random.default_rng(seed).uniform(-1.0, 1.0, flat.size))
    for _ in range(40):
        x, F = _newton_step(x, h)
    assert float(jnp.max(jnp.abs(F))) <= ROUNDOFF.atol, "Newton did not reach a zero of the ODE"
    return ravel_pytree(ik.collapsed_point())[1](x)


@given(
    rho=st.floats(0.3, 3.0),
    eta=st.floats(0.3, 2.5),
    side=st.sampled_from([-1.0, 1.0]),
    log_delta=st.floats(-3.0, -1.0),
    seed=st.integers(0, 2**16),
)
def test_ichikawa_fixed_point_error_is_minimal_at_eta(rho, eta, side, log_delta, seed):
    """ε_g of the ODE's own steady state is minimal over β at β = η: 0 there, strictly larger at
    β = η(1 ± δ), δ in 1e-3..1e-1 (ε_g − ε_g(η) ~ (ηδ)²/(4ρ) >= 2e-9 here; rounding ~1e-15); and the closed
    form ε_g* agrees with the ODE at all three (A1, A2)."""
    beta_off = eta * (1.0 + side * 10.0**log_delta)  # < ρ + η, as δη <= 0.25 < ρ (A2)
    eps = {}
    for beta in (eta, beta_off):
        st_ = _steady_state(rho, eta, beta, seed)
        assert 0.0 < float(st_.v) <= 1.0 and float(st_.m) ** 2 > 0.0
        eps[beta] = float(ik.generalisation_error(st_, rho, "scalar"))
        assert_close(eps[beta], ik.steady_generalisation_error(rho, eta, beta), ROUNDOFF, "eps_g* vs the ODE")
    assert_close(eps[eta], 0.0, ROUNDOFF, "eps_g at beta = eta")
    assert eps[beta_off] > eps[eta], f"eps_g(beta = {beta_off}) = {eps[beta_off]:.3e} <= eps_g(eta) = {eps[eta]:.3e}"


@settings(max_examples=10)
@given(case=below_threshold(), seed=st.integers(0, 2**31 - 1))
def test_ichikawa_fixed_point_attracts(case, seed):
    """The τ -> 0 ODE from a generic start with positive overlaps converges to the fixed point."""
    rho, eta, beta = case
    # Keep the problem well conditioned (ρ, η >= 0.3; β within 10-90% of Λ) so 30 e-folds of the slowest
    # mode stay within the explicit solver's step budget.
    assume(min(rho, eta) >= 0.3 and 0.1 * (rho + eta) <= beta <= 0.9 * (rho + eta))
    rng = np.random.default_rng(seed)
    f = lambda x: jnp.asarray(x, jnp.float64)  # noqa: E731
    m, mt = rng.uniform(0.05, 0.5, 2)
    op0 = ik.OrderParams(f(m), f(mt), f(m**2 + 0.1), f(mt**2 + 0.1), f(m * mt), f(rng.uniform(0.2, 1.0)))
    fp = ik.fixed_point(rho, eta, beta)
    # Horizon from the linearisation at the fixed point: 30 e-folds of its slowest mode.
    h = ik.Hyper(*(jnp.asarray(x) for x in (rho, eta, beta, 1.0, 0.0)))
    flat, unravel = ravel_pytree(fp)
    J = jax.jacfwd(lambda x: ravel_pytree(ik.ode_scalar(unravel(x), h, noise=False))[0])(flat)
    slowest = float(np.max(np.linalg.eigvals(np.asarray(J)).real))
    assert slowest < 0
    ys = ik.integrate_ode(op0, [30.0 / abs(slowest)], form="scalar", rho=rho, eta=eta, beta=beta,
                          tau=1.0, noise=False)
    for a, b, name in zip(ys, fp, ik.OrderParams._fields, strict=True):
        assert_close(a[-1], b, FLOW, name)


@settings(max_examples=10)
@given(eta=st.floats(0.3, 2.0), rho=st.floats(0.5, 2.0), frac=st.floats(0.1, 1.9), seed=st.integers(0, 2**31 - 1))
def test_ichikawa_superfluous_latent(eta, rho, frac, seed):
    """M = 2, M* = 1 from an entangled start: one latent takes the signal, the other fits a bulk
    direction iff β < η (Q = η - β, v = β/η) and collapses otherwise (Q = 0, v = 1)."""
    beta = frac * eta
    assume(abs(beta - eta) > 0.1 * eta and beta < 0.9 * (rho + eta))  # A4, A3
    fp = ik.fixed_point(rho, eta, beta)
    q_extra, v_extra = ik.superfluous_latent(eta, beta)
    # The predicted limit: latent 1 at the signal fixed point, latent 2 at the bulk one (Λ -> η), no
    # cross terms. It zeroes the RHS; 30 e-folds of its slowest mode set the horizon.
    mt2 = np.sqrt(q_extra) / eta
    col = lambda a, b: jnp.array([[a], [b]])  # noqa: E731
    dg = lambda a, b: jnp.diag(jnp.array([a, b]))  # noqa: E731
    limit = ik.OrderParams(col(fp.m, 0.0), col(fp.mt, 0.0), dg(fp.Q, q_extra), dg(fp.Qt, mt2**2),
                           dg(fp.R, np.sqrt(q_extra) * mt2), jnp.array([fp.v, v_extra]))
    h = ik.Hyper(*(jnp.asarray(x) for x in (rho, eta, beta, 1.0, 0.0)))
    flat, unravel = ravel_pytree(limit)
    rhs = lambda x: ravel_pytree(ik.ode_matrix(unravel(x), h, noise=False))[0]  # noqa: E731
    assert_close(rhs(flat), np.zeros(flat.size), ROUNDOFF, "RHS at the predicted limit")
    slowest = float(np.max(np.linalg.eigvals(np.asarray(jax.jacfwd(rhs)(flat))).real))
    assert slowest < 0
    assume(slowest < -2e-3)  # keep the horizon within the step budget
    rng = np.random.default_rng(seed)
    W = rng.normal(size=(60, 2)) * 0.4
    W[:, 0] += 0.5
    W[:, 1] += 0.3
    Wt = rng.normal(size=(60, 2)) * 0.4 + 0.2
    op0 = ik.order_parameters(jnp.asarray(W), jnp.asarray(Wt), jnp.ones(2), jnp.ones((60, 1)))
    ys = ik.integrate_ode(op0, [30.0 / abs(slowest)], rho=rho, eta=eta, beta=beta, tau=1.0, noise=False)
    Q, v, m = np.asarray(ys.Q[-1]), np.asarray(ys.v[-1]), np.asarray(ys.m[-1])[:, 0]
    signal = int(np.argmax(np.abs(m)))
    extra = 1 - signal
    assert_close(m[signal] ** 2, fp.m**2, FLOW, "signal latent m^2")
    assert_close(v[signal], fp.v, FLOW, "signal latent v")
    assert_close(m[extra], 0.0, FLOW, "extra latent m")
    assert_close(Q[extra, extra], q_extra, FLOW, "extra latent Q")
    assert_close(v[extra], v_extra, FLOW, "extra latent v")
