r"""Global optimality over all matrices: the Lucas point of D3 (T17) and the water-filling point of D1 (T12).

The per-direction solutions of :mod:`linvae.symbolic.stationarity` are stationary points in an eigenbasis;
these certificates carry the argument that they are *global* minima over every (B, Σ_W, A).

D3 (fixed isotropic decoder variance σ², which is :math:`\sigma_{\rm eff}^2` when λ > 0, T14):

1. given A, the (B, Σ_W) block has the unique minimiser of T4; substituted, the profile is
   :math:`P(A) = \frac{\operatorname{tr}\Sigma_Y}{2\sigma^2} - \frac{\operatorname{tr}(AM^{-1}A^\top\Sigma_Y)}{2\sigma^4}
   + \frac\beta2\log\det\big(I + \frac{A^\top A}{\beta\sigma^2}\big) + \frac n2\log2\pi\sigma^2`,
   :math:`M = A^\top A/\sigma^2 + \beta I` (checked exactly at a rational point);
2. with :math:`A = \sigma U\operatorname{diag}(s)V^\top`, :math:`AM^{-1}A^\top/\sigma^2 = U\operatorname{diag}(c)U^\top`,
   :math:`c = s^2/(s^2 + \beta)`, and :math:`\log\det(\cdot) = \sum\log(1 + s^2/\beta)`;
3. von Neumann's trace inequality bounds :math:`\operatorname{tr}(U\operatorname{diag}(c)U^\top\Sigma_Y)` by the sorted
   :math:`\sum_jc_{(j)}\mu_j`, so P(A) is at least a sum of one-variable functions
   :math:`\varphi_\mu(y) = -\frac\mu{2\sigma^2}(1 - y) - \frac\beta2\log y` of :math:`y = \beta/(s^2 + \beta) \in (0, 1]`;
4. φ is strictly convex with minimiser :math:`\min(1, \theta/\mu)`, θ = βσ², and its minimum is the Lucas
   direction's loss minus the collapsed one.

D1 (T12): :math:`\mathcal L_{\lambda\beta} = (\mathcal R + \mathcal K) + [\ldots]` (T14); the first bracket is ≥
:math:`\mathcal L^\star_{\rm col}` with equality iff the ELBO is tight and :math:`AA^\top + \Sigma_Z = \Sigma_Y`, which the
water-filling point satisfies direction by direction.

Theorems: ``lucas-threshold`` (T17), ``water-filling`` (T12).
"""

from __future__ import annotations

import functools
import random

import sympy as sp

from linvae.symbolic._symbols import a, b, beta, lam, mu, sigma_d2, w, z
from linvae.symbolic.objective import (
    _rational_matrix,
    _rational_spd,
    direction_objective,
    inactive_objective,
    matrix_objective,
)
from linvae.symbolic.stationarity import derive_lucas, derive_water_filling

y = sp.Symbol("y", positive=True)
s_sv = sp.Symbol("s", nonnegative=True)


def _profile_residual(seed: int) -> sp.Expr:
    """D3 objective at T4's block minimiser minus the closed-form profile P(A), at a rational point."""
    rng = random.Random(seed)
    n, m = 3, 2
    Sy = _rational_spd(rng, n)
    A = _rational_matrix(rng, n, m)
    beta_, s2 = sp.Rational(rng.randint(2, 9), 3), sp.Rational(rng.randint(1, 9), 4)
    M = A.T * A / s2 + beta_ * sp.eye(m)
    Sigma_W = beta_ * M.inv()  # T4 with N = I/σ²
    B = M.inv() * A.T / s2
    total = matrix_objective(Sy, B, Sigma_W, A, s2 * sp.eye(n), beta_, 0)["total"]
    profile = (
        Sy.trace() / (2 * s2)
        - (A * M.inv() * A.T * Sy).trace() / (2 * s2**2)
        + beta_ / 2 * sp.log((sp.eye(m) + A.T * A / (beta_ * s2)).det())
        + sp.Rational(n, 2) * sp.log(2 * sp.pi * s2)
    )
    return sp.simplify(sp.expand_log(total - profile, force=True))


@functools.cache
def derive_global_optimum(seed: int = 0) -> dict[str, sp.Expr]:
    r"""T17 (and, through T14, T12): the steps of the global argument for D3 with decoder variance σ² = ``sigma_d2``.

    * ``profile_residual``: step 1 at a rational point (n = 3, m = 2) — 0;
    * ``gain_residual``: :math:`a^2/(\sigma^2(a^2/\sigma^2 + \beta)) - s^2/(s^2 + \beta)` at :math:`a = \sigma s` — 0 (step 2);
    * ``phi``, ``dphi``, ``d2phi``: φ_μ(y) and its derivatives (the second is :math:`\beta/(2y^2) > 0`);
    * ``y_star``: the root of dφ/dy, :math:`\beta\sigma^2/\mu = \theta/\mu`; ``s2_star``: the singular value² it means;
    * ``phi_at_1``: φ(1) = 0 (a collapsed latent); ``phi_star``: φ(θ/μ);
    * ``phi_star_minus_lucas``: φ(θ/μ) minus [Lucas direction loss − collapsed direction loss] at λ = 0 — 0;
    * ``a_star_minus_lucas``: :math:`\sigma s^\ast - a_{\rm Lucas}` — 0 (the minimiser is the Lucas point).
    """
    s2 = sigma_d2
    phi = -mu / (2 * s2) * (1 - y) - beta / 2 * sp.log(y)
    dphi = sp.diff(phi, y)
    (y_star,) = sp.solve(dphi, y)
    (s2_star,) = sp.solve(sp.Eq(beta / (s_sv**2 + beta), y_star), s_sv**2)
    luc = derive_lucas()
    at_lucas = {a: luc["a"], b: luc["b"], w: luc["w"]}
    gap = (direction_objective("D3").subs(at_lucas) - inactive_objective("D3")).subs(lam, 0)
    phi_star = sp.expand(sp.expand_log(phi.subs(y, y_star), force=True))
    return {
        "profile_residual": _profile_residual(seed),
        "gain_residual": sp.simplify(
            (a**2 / (s2 * (a**2 / s2 + beta))).subs(a, sp.sqrt(s2) * s_sv) - s_sv**2 / (s_sv**2 + beta)
        ),
        "phi": phi,
        "dphi": sp.simplify(dphi),
        "d2phi": sp.simplify(sp.diff(phi, y, 2)),
        "y_star": y_star,
        "s2_star": sp.factor(s2_star),
        "phi_at_1": phi.subs(y, 1),
        "phi_star": phi_star,
        "phi_star_minus_lucas": sp.simplify(sp.expand_log(phi_star - gap.subs(lam, 0), force=True)),
        "a_star_minus_lucas": sp.simplify(sp.sqrt(s2 * s2_star) - luc["a"].subs(lam, 0)),
    }


@functools.cache
def derive_tight_elbo() -> dict[str, sp.Expr]:
    r"""T12: at the water-filling point each active direction has a tight ELBO and the model marginal equals
    the data: :math:`a^2 + z - \mu`, :math:`w - z/(a^2 + z)` (posterior variance of x ~ N(0, 1), y | x ~ N(ax, z))
    and :math:`b - a/(a^2 + z)` (posterior mean gain) — all 0. (Inactive directions: a = b = 0, w = 1, z = μ.)"""
    wf = derive_water_filling()
    at = {a: wf["a"], z: wf["z"]}
    marg = a**2 + z
    return {
        "marginal_minus_mu": sp.simplify((marg - mu).subs(at)),
        "w_minus_posterior": sp.simplify(wf["w"] - (z / marg).subs(at)),
        "b_minus_posterior": sp.simplify(wf["b"] - (a / marg).subs(at)),
    }
