r"""Encoder-gain spectra at the global optimum, per decoder variant (docs/theory.md §3.9, §4).

For each eigen-direction :math:`\mu_i` of :math:`\Sigma_Y`: the stationary encoder gain :math:`b_i` and the
precision-weighted gain :math:`k_i = b_i / w_i` (the singular values of :math:`B` and
:math:`K = \Sigma_W^{-1}B` when the latents are aligned), active branch. A direction is inactive
(:math:`b_i = k_i = 0`) below its variant's level:

* D1, λ > 0: level :math:`D = (\beta - 1)/(2\lambda)`; D1, λ = 0: every direction collapses for β > 1;
* D3: level :math:`\theta = \beta\sigma_{\rm eff}^2`;
* D2: the D3 spectrum at the learned :math:`\sigma_d^2`, which solves the fixed-point equation of T19
  (:func:`linvae.symbolic.stationarity.derive_learned_isotropic`); it is kept as the symbol
  :math:`\sigma_d^2` here because the root is unreadable.

Theorems: ``water-filling`` (T12), ``lambda-beta-equivalence`` (T14), ``lucas-threshold`` (T17),
``learned-isotropic`` (T19).
"""

from __future__ import annotations

import functools

import sympy as sp

from linvae.symbolic._symbols import sigma_d2
from linvae.symbolic.stationarity import derive_learned_isotropic, derive_lucas, derive_water_filling


@functools.cache
def derive_gain_spectra() -> dict[str, dict[str, sp.Expr]]:
    r"""``{variant: {"b", "k", "w", "level"}}`` for ``"D1"`` (λ > 0), ``"D1_lam0"``, ``"D2"``, ``"D3"``.

    ``level`` is the eigenvalue below which a direction carries no information.
    """
    wf = derive_water_filling()
    luc = derive_lucas()
    iso = derive_learned_isotropic()
    d2 = {"b": luc["b"], "k": luc["k"], "w": luc["w"], "level": luc["theta"], "sigma_d2": iso["fixed_point"]}
    return {
        "D1": {"b": wf["b"], "k": wf["k"], "w": wf["w"], "level": wf["D"]},
        "D1_lam0": {"b": sp.Integer(0), "k": sp.Integer(0), "w": sp.Integer(1), "level": sp.oo},
        "D2": d2,
        "D3": {"b": luc["b"], "k": luc["k"], "w": luc["w"], "level": luc["theta"]},
    }


@functools.cache
def derive_equivalence() -> dict[str, sp.Expr]:
    r"""T14: the water-filling :math:`(b, w, a)` minus the D3 (Lucas) solution at :math:`\beta' = \beta - 1`,
    :math:`\sigma_d^2 = 1/(2\lambda)`, no λ term (residuals 0, valid on the active branch :math:`\mu > D`)."""
    from linvae.symbolic._symbols import beta, lam

    wf = derive_water_filling()
    luc = derive_lucas()
    out = {}
    for k in ("b", "w", "a", "k"):
        target = luc[k].subs(lam, 0).subs(sigma_d2, 1 / (2 * lam)).subs(beta, beta - 1)
        out[k] = sp.simplify(wf[k] - target)
    out["level"] = sp.simplify(
        wf["D"] - luc["theta"].subs(lam, 0).subs(sigma_d2, 1 / (2 * lam)).subs(beta, beta - 1)
    )
    return out
