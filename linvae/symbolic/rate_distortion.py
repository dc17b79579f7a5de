r"""Rate and distortion at the D3 optimum (Lucas et al., β-generalised; docs/theory.md §4).

With :math:`k` active directions (:math:`\mu_i > \theta`) of a fixed active set, per active direction the
rate is :math:`\mathcal K_i = \tfrac12\log(\mu_i/\theta)` and the distortion :math:`E_i = \theta`; inactive
ones have rate 0 and :math:`E_i = \mu_i`. The trade-off slope is derived from these.

Theorem: ``lucas-rate-distortion`` (T18).
"""

from __future__ import annotations

import functools

import sympy as sp

from linvae.symbolic._symbols import a, b, beta, lam, mu, sigma_d2, theta, w
from linvae.symbolic.objective import direction_objective
from linvae.symbolic.stationarity import derive_lucas, derive_lucas_in_theta

k_act = sp.Symbol("k", positive=True, integer=True)
logsum = sp.Symbol("Lambda_A", real=True)  # sum of log mu_i over the active set
musum = sp.Symbol("M_A", positive=True)  # sum of mu_i over the active set
rest = sp.Symbol("S_rest", positive=True)  # sum of mu_i over the inactive directions


@functools.cache
def derive_rate_distortion() -> dict[str, sp.Expr]:
    r"""Per-direction rate/distortion (derived at the solved D3 point), the totals for a fixed active set
    and the slope :math:`d\mathcal D/d\mathcal R_{\rm rate} = (d\mathcal D/d\theta)/(d\mathcal R/d\theta)`
    (= −2θ);
    the per-direction optimal loss in the closed form of §4 (``value_residual`` = 0)."""
    th = derive_lucas_in_theta()
    rate_i, dist_i = th["kl"], th["E"]
    R_tot = sp.Rational(1, 2) * (logsum - k_act * sp.log(theta))
    D_tot = k_act * theta + rest
    slope = sp.simplify(sp.diff(D_tot, theta) / sp.diff(R_tot, theta))
    # optimal per-direction loss at lam = 0 (sigma_eff = sigma_d): E/(2 sd2) + beta K + 1/2 log(2 pi sd2)
    luc = derive_lucas()
    pt = {b: luc["b"], w: luc["w"], a: luc["a"]}
    L_opt = direction_objective("D3").subs(pt).subs(lam, 0)
    s2 = sigma_d2
    th0 = beta * s2
    closed = (mu - mu * (1 + th0 / mu * (sp.log(th0 / mu) - 1))) / (2 * s2) + sp.log(2 * sp.pi * s2) / 2
    residual = sp.simplify(sp.expand_log(L_opt - closed, force=True))
    return {
        "rate_i": rate_i,
        "distortion_i": dist_i,
        "rate_total": R_tot,
        "distortion_total": D_tot,
        "slope": slope,
        "value_i": sp.expand_log(sp.simplify(L_opt), force=True),
        "value_residual": residual,
    }
