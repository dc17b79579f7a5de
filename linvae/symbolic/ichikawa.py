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


#: s = τη²: the SGD-noise weight of the bulk block (its τ² terms are τ²η² Π).
s_noise = sp.Symbol("s", positive=True)


def bulk_operators() -> dict[str, sp.Matrix]:
    r"""The bulk block's two operators on :math:`S = \begin{pmatrix}Q&R\\R&\tilde Q\end{pmatrix}`, in the
    coordinates :math:`(Q, \tilde Q, R)`, built from one bulk direction's (w, w̃) dynamics, not from the ODE:

    * ``L``: the Lyapunov operator :math:`S \mapsto A_\eta S + SA_\eta^\top` of
      :math:`A_\eta = \begin{pmatrix}-(1+\kappa)&\eta\\\eta&-(\beta\eta+\kappa)\end{pmatrix}` (the (m, m̃) block of §6 with
      Λ → η, per unit τ);
    * ``Pi``: the congruence :math:`S \mapsto GSG^\top`, :math:`G = \begin{pmatrix}0&1\\1&-\beta\end{pmatrix}`, which maps PSD
      matrices to PSD matrices.
    """
    A = sp.Matrix([[-(1 + kappa), eta], [eta, -(beta * eta + kappa)]])
    G = sp.Matrix([[0, 1], [1, -beta]])
    q, qt, r = sp.symbols("q qt r")
    S = sp.Matrix([[q, r], [r, qt]])

    def coords(X: sp.Matrix) -> sp.Matrix:
        return sp.Matrix([X[0, 0], X[1, 1], X[0, 1]])

    def matrix_of(op) -> sp.Matrix:
        return coords(op(S)).jacobian([q, qt, r]).applyfunc(sp.expand)

    return {"A": A, "G": G, "L": matrix_of(lambda X: A * X + X * A.T), "Pi": matrix_of(lambda X: G * X * G.T)}


@functools.cache
def derive_threshold() -> dict[str, sp.Expr]:
    r"""T24: the Jacobian of the ODE (τ² terms kept) at collapse and the exact stability conditions.

    * ``full_jacobian``, 6 × 6 in :math:`(m, \tilde m, Q, \tilde Q, R, v)`; ``off_diagonal_blocks`` collects
      every entry above the block diagonal :math:`(m,\tilde m) | (Q,\tilde Q,R) | v` and the (bulk, (m, m̃))
      entries — all zero, so it is block lower-triangular and its eigenvalues are those of the three
      diagonal blocks; ``v_eigenvalue`` = :math:`-\tau\beta/2`;
    * ``jacobian``: the (m, m̃) block (no τ² term), ``det``, ``trace`` (always negative) and
      :math:`\beta_c(\kappa)`, the root in β of ``det``;
    * ``bulk_jacobian`` (with τ²) and ``bulk_structure``: bulk − τ(L + τη²Π) = 0 with L, Π of
      :func:`bulk_operators`; ``bulk_cubic`` = det(L + sΠ), s = τη², whose smallest positive root is
      :math:`\tau_c\eta^2`; ``bulk_cubic_at_0`` = det L (its root in β, ``bulk_beta_c``, is the first-order bulk
      threshold, below :math:`\beta_c`); ``Pi_eigenvalues``: :math:`g_1^2, g_2^2 > 0` and :math:`g_1g_2 = \det G = -1`
      (g the eigenvalues of G), so L + sΠ has a positive eigenvalue for large s and τ_c is finite.
    """
    m, tm, Q, tQ, R, v = STATE
    rhs = ode_rhs(noise=True)
    collapsed = {m: 0, tm: 0, Q: 0, tQ: 0, R: 0, v: 1}
    full = rhs.jacobian(list(STATE)).subs(collapsed).applyfunc(sp.factor)
    off = sp.Matrix([*full[0:2, 2:6], *full[2:5, 0:2], *full[2:5, 5:6]])
    J = full[0:2, 0:2]
    det = sp.factor(J.det())
    (beta_c,) = sp.solve(det, beta)
    bulk = full[2:5, 2:5]
    ops = bulk_operators()
    structure = (bulk - tau * (ops["L"] + tau * eta**2 * ops["Pi"])).applyfunc(sp.simplify)
    cubic = sp.Poly(sp.expand((ops["L"] + s_noise * ops["Pi"]).det()), s_noise)
    at0 = sp.factor(cubic.eval(0))
    bulk_roots = sp.solve(at0, beta)
    return {
        "full_jacobian": full,
        "off_diagonal_blocks": off,
        "v_eigenvalue": full[5, 5],
        "jacobian": J,
        "det": det,
        "trace": sp.factor(J.trace()),
        "beta_c": sp.factor(beta_c),
        "beta_c_kappa0": sp.simplify(beta_c.subs(kappa, 0)),
        "depends_on_tau": sp.sympify(tau in beta_c.free_symbols),
        "bulk_jacobian": bulk,
        "bulk_structure": structure,
        "L": ops["L"],
        "Pi": ops["Pi"],
        "Pi_eigenvalues": sp.Matrix(
            sorted((sp.simplify(x) for x in ops["Pi"].eigenvals(multiple=True)), key=sp.default_sort_key)
        ),
        "bulk_cubic": cubic.as_expr(),
        "bulk_cubic_kappa0": sp.collect(sp.expand(cubic.as_expr().subs(kappa, 0)), s_noise, sp.factor),
        "bulk_cubic_at_0": at0,
        "bulk_beta_c": [sp.factor(r) for r in bulk_roots if r.could_extract_minus_sign() is False],
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
