r"""Linear stability of the collapsed point and the collapse thresholds β_c (docs/theory.md §3.2, §3.8, §4).

At collapse (:math:`b = a = 0`, :math:`w = 1`, :math:`z = z_0`) the flow and the map decouple per direction.

* Flow: the Jacobian of :math:`(\dot b, \dot a) = -\nabla_{(b,a)}\mathcal L` is minus the Hessian of the
  per-direction objective; with :math:`\nu = z_0^{-1} + 2\lambda` it is
  :math:`\begin{pmatrix}-\beta\mu & \nu\mu\\ \nu\mu & -\nu\end{pmatrix}`; the trace is negative, so
  collapse is
  stable iff the determinant is positive.
* Map: :math:`\partial b_{t+1}/\partial b_t` at collapse is the per-direction sweep factor
  (:math:`(w, b)` is triangular there: :math:`w_{t+1} = 1` whatever :math:`w_t` when :math:`b_t = 0`).

The threshold is the root in β of the determinant (flow) and of factor − 1 (map); both are derived,
not typed in. :math:`z_0 = \mu` (D1: the decoder absorbs the direction), :math:`\sigma_d^2` (D3),
:math:`s_0 = \operatorname{tr}\Sigma_Y/n` (D2 at total collapse).

Theorems: ``collapse-stability`` (T11), ``lucas-threshold`` (T17), ``learned-isotropic`` (T19).
"""

from __future__ import annotations

import functools

import sympy as sp

from linvae.symbolic._symbols import a, b, beta, mu, sigma_d2, w, z
from linvae.symbolic.dynamics import derive_scalar_map
from linvae.symbolic.objective import direction_objective
from linvae.symbolic.stationarity import s_0


def _collapse_point(variant: str) -> dict:
    if variant == "D1":
        return {b: 0, a: 0, w: 1, z: mu}
    if variant == "D2":
        return {b: 0, a: 0, w: 1, sigma_d2: s_0}
    return {b: 0, a: 0, w: 1}


@functools.cache
def derive_flow_linearisation(variant: str = "D1") -> dict[str, sp.Expr]:
    r"""Flow Jacobian in :math:`(b, a)` at collapse, its determinant, trace and the root β_c of the
    determinant."""
    L = direction_objective("D1" if variant == "D1" else "D3")
    H = sp.hessian(L, (b, a)).subs(_collapse_point(variant))
    J = (-H).applyfunc(sp.factor)
    det = sp.factor(J.det())
    (beta_c,) = sp.solve(det, beta)
    return {"jacobian": J, "det": det, "trace": sp.factor(J.trace()), "beta_c": sp.factor(beta_c)}


@functools.cache
def derive_sweep_factor(variant: str = "D1") -> dict[str, sp.Expr]:
    r"""Per-direction factor of the alternating map linearised at collapse, and the β at which it is 1."""
    mp = derive_scalar_map("D1" if variant == "D1" else "D3")
    factor = sp.diff(mp["b_next"], b).subs({b: 0, w: 1})
    dw = sp.diff(mp["w_next"], w).subs({b: 0})
    dwb = sp.diff(mp["w_next"], b).subs({b: 0})
    dbw = sp.diff(mp["b_next"], w).subs({b: 0})
    if variant == "D2":
        factor, dw = factor.subs(sigma_d2, s_0), dw.subs(sigma_d2, s_0)
    factor = sp.factor(sp.simplify(factor))
    (beta_c,) = sp.solve(sp.Eq(factor, 1), beta)
    return {
        "factor": factor,
        "dw_next_dw": sp.simplify(dw),
        "off_diagonal": sp.Matrix([sp.simplify(dwb), sp.simplify(dbw)]),
        "beta_c": sp.factor(beta_c),
    }


@functools.cache
def derive_thresholds() -> dict[str, sp.Expr]:
    r"""The collapse thresholds, each derived from a linearisation:

    * ``T11`` (D1): :math:`\beta_c(\mu_1)` from the flow determinant — equal to the map's;
    * ``T17`` (D3): the largest collapsed eigenvalue :math:`\mu^\ast(\beta, \lambda, \sigma_d^2)` (solve the
      determinant for μ), i.e. :math:`\theta = \beta\sigma_{\rm eff}^2`;
    * ``T19`` (D2, total collapse): the same at :math:`\sigma_d^2 = s_0`;
    * ``T24`` ([IH23] model): from :mod:`linvae.symbolic.ichikawa`.
    """
    from linvae.symbolic.ichikawa import derive_threshold

    d3 = derive_flow_linearisation("D3")
    (mu_star,) = sp.solve(d3["det"], mu)
    d2 = derive_flow_linearisation("D2")
    (mu_star2,) = sp.solve(d2["det"], mu)
    return {
        "T11": derive_flow_linearisation("D1")["beta_c"],
        "T11_map": derive_sweep_factor("D1")["beta_c"],
        "T17": sp.factor(mu_star),
        "T19": sp.factor(mu_star2),
        "T24": derive_threshold()["beta_c"],
    }
