r"""The order-parameter ODE of Ichikawa & Hukushima (AISTATS 2024), M = M* = 1 (docs/theory.md §6).

:math:`\Lambda = \rho + \eta`, :math:`\Sigma_\mu = \rho\tilde m^2 + \eta\tilde Q`, :math:`C = \rho m\tilde
m + \eta R`,
:math:`\Sigma_s = \rho m^2 + \eta Q`, :math:`P = Q + \beta`. The right-hand side is written once
(:func:`ode_rhs`); the fixed points are solved by sympy from it, and the threshold is the root of the
determinant of its Jacobian at collapse.

Theorems: ``ichikawa-ode`` (T22), ``ichikawa-fixed-point`` (T23), ``ichikawa-threshold`` (T24).
"""

from __future__ import annotations

import functools

import sympy as sp

from linvae.symbolic._symbols import Q_ih, R_ih, beta, eta, kappa, m_ih, rho, tau, tm_ih, tQ_ih, v_ih

STATE = (m_ih, tm_ih, Q_ih, tQ_ih, R_ih, v_ih)
Lam = rho + eta


def ode_rhs(noise: bool = True) -> sp.Matrix:
    r"""RHS of :math:`(\dot m, \dot{\tilde m}, \dot Q, \dot{\tilde Q}, \dot R, \dot v)`; ``noise=False``
    drops the
    :math:`\tau^2` SGD-noise terms (the gradient flow)."""
    m, tm, Q, tQ, R, v = STATE
    S_mu = rho * tm**2 + eta * tQ
    C = rho * m * tm + eta * R
    S_s = rho * m**2 + eta * Q
    P = Q + beta
    k = 1 if noise else 0
    return sp.Matrix(
        [
            tau * (Lam * tm - (S_mu + v + kappa) * m),
            tau * (Lam * m - (P * Lam + kappa) * tm),
            2 * tau * (C - (S_mu + v + kappa) * Q) + k * tau**2 * eta * S_mu,
            2 * tau * (C - P * S_mu - kappa * tQ) + k * tau**2 * eta * (S_s - 2 * P * C + P**2 * S_mu),
            tau * (S_mu * (1 - R) - (v + 2 * kappa) * R + S_s - P * C) + k * tau**2 * eta * (C - P * S_mu),
            -tau / 2 * (Q + beta - beta / v),
        ]
    )


@functools.cache
def derive_fixed_points() -> dict[str, object]:
    r"""T23: fixed points of the gradient flow (τ² terms dropped) at κ = 0.

    Solved in stages by ``sympy.solve``: :math:`\dot v = 0` gives :math:`v(Q)`, :math:`\dot{\tilde m} = 0`
    gives
    :math:`\tilde m(m, Q)`; with the rank-one closure of a single aligned student
    (:math:`Q = m^2`, :math:`\tilde Q = \tilde m^2`, :math:`R = m\tilde m`), :math:`\dot m = 0` leaves one
    equation in :math:`m`, whose positive non-zero root is taken. The closure is then *checked*: the
    point zeroes all six components of the RHS (``residual``). Also the collapsed point and its residual
    (for all τ, κ, with the τ² terms).
    """
    rhs = ode_rhs(noise=False).subs(kappa, 0)
    m, tm, Q, tQ, R, v = STATE
    (v_Q,) = sp.solve(rhs[5], v)
    (tm_m,) = sp.solve(rhs[1], tm)
    # Teacher-student alignment: at a fixed point the student's decoder norm equals its overlap, Q = m^2,
    # and the encoder's tilde Q = tilde m^2, R = m tilde m (rank-one: W and tilde W both along W*).
    rank_one = {Q: m**2, tQ: tm**2, R: m * tm}
    eq_m = sp.factor(rhs[0].subs(rank_one).subs(v, v_Q.subs(Q, m**2)).subs(tm, tm_m.subs(Q, m**2)))
    roots = [r for r in sp.solve(eq_m, m) if r != 0]
    m_star = [r for r in roots if r.could_extract_minus_sign() is False][0]
    point = {m: m_star}
    point[Q] = sp.simplify(m_star**2)
    point[v] = sp.simplify(v_Q.subs(Q, point[Q]))
    point[tm] = sp.simplify(tm_m.subs({Q: point[Q], m: m_star}))
    point[tQ] = sp.simplify(point[tm] ** 2)
    point[R] = sp.simplify(m_star * point[tm])
    residual = sp.simplify(rhs.subs(point))
    eps_g = sp.simplify(rho - 2 * sp.sqrt(rho) * m_star + point[Q])
    collapsed = {m: 0, tm: 0, Q: 0, tQ: 0, R: 0, v: 1}
    (beta_opt,) = sp.solve(sp.diff(eps_g, beta), beta)
    return {
        "point": point,
        "residual": residual,
        "eps_g": eps_g,
        "eps_g_factored": sp.factor(eps_g),
        "beta_opt": beta_opt,
        "eps_g_at_opt": sp.simplify(eps_g.subs(beta, beta_opt)),
        "collapsed_residual": sp.simplify(ode_rhs(noise=True).subs(collapsed)),
    }


@functools.cache
def derive_threshold() -> dict[str, sp.Expr]:
    r"""T24: Jacobian of :math:`(\dot m, \dot{\tilde m})` in :math:`(m, \tilde m)` at collapse, and
    :math:`\beta_c(\kappa)`, the root in β of its determinant (the trace is always negative)."""
    m, tm, Q, tQ, R, v = STATE
    rhs = ode_rhs(noise=True)
    collapsed = {m: 0, tm: 0, Q: 0, tQ: 0, R: 0, v: 1}
    J = rhs[:2, :].jacobian([m, tm]).subs(collapsed).applyfunc(sp.factor)
    det = sp.factor(J.det())
    (beta_c,) = sp.solve(det, beta)
    # the bulk (Q, tilde Q, R) block of the gradient flow (no tau^2 terms)
    bulk = ode_rhs(noise=False)[2:5, :].jacobian([Q, tQ, R]).subs(collapsed)
    bulk_roots = sp.solve(sp.factor(bulk.det()), beta)
    return {
        "jacobian": J,
        "det": det,
        "trace": sp.factor(J.trace()),
        "beta_c": sp.factor(beta_c),
        "beta_c_kappa0": sp.simplify(beta_c.subs(kappa, 0)),
        "depends_on_tau": sp.sympify(tau in beta_c.free_symbols),
        "bulk_jacobian": bulk.applyfunc(sp.factor),
        "bulk_beta_c": [sp.factor(r) for r in bulk_roots],
    }


@functools.cache
def derive_invariance() -> dict[str, sp.Expr]:
    r"""T22: :math:`v \in (0, 1]` is invariant: :math:`\dot v = -\tfrac\tau2 Q \le 0` at :math:`v = 1`, and
    :math:`\dot v \to +\infty` as :math:`v \to 0^+`."""
    rhs = ode_rhs()
    return {
        "vdot_at_1": sp.simplify(rhs[5].subs(v_ih, 1)),
        "vdot_at_0": sp.limit(rhs[5], v_ih, 0, "+"),
        "v_relaxes_to": sp.solve(rhs[5], v_ih)[0],
    }


@functools.cache
def derive_superfluous() -> dict[str, sp.Expr]:
    r"""Superfluous latent: a latent with no teacher overlap (:math:`m = \tilde m = 0`) sees only the bulk η.

    Its (Q, v) fixed point at κ = 0, τ → 0 (with the rank-one closure :math:`\tilde Q = Q/\eta^2`-free form
    from Lucas at eigenvalue η, :math:`\sigma_d^2 = 1`): :math:`Q = \eta - \beta`, :math:`v = \beta/\eta`;
    it exists iff β < η.
    """
    from linvae.symbolic.stationarity import derive_lucas

    luc = derive_lucas()
    from linvae.symbolic._symbols import lam, mu, sigma_d2

    at = {mu: eta, sigma_d2: 1, lam: 0}
    a2 = sp.simplify((luc["a"] ** 2).subs(at))
    return {"Q": a2, "v": sp.simplify(luc["w"].subs(at)), "boundary": luc["mu_boundary"].subs(at)}
