r"""Gaussian information of one direction and the MI-chain bound (docs/theory.md §3.7, §8).

Per direction, :math:`I(X;Y) = \tfrac12\log(\Sigma_X/w) = \tfrac12\log(1 + k^2\mu w)` with :math:`k = b/w`.
Since :math:`\log(1+x) \le x` and :math:`w \le 1` after any encoder step (T7),
:math:`I(X;Y) \le \tfrac12\mu k^2`, and at λ = 0 :math:`k_t = \beta^{-t}k_0` (T6) gives the rate
:math:`\tfrac12\mu k_0^2\beta^{-2t}`. For matrices, :math:`\Sigma_W^{-1}B\Sigma_YB^\top = K\Sigma_YK^\top\Sigma_W` with
:math:`B = \Sigma_WK`, and a Gaussian pair has :math:`\rho^2 = 1 - e^{-2I} \le 2I` (the SAP bound).

Theorem: ``mi-chain`` (T10).
"""

from __future__ import annotations

import functools

import sympy as sp

from linvae.symbolic._symbols import b, beta, mu, t, w

k0 = sp.Symbol("k_0", real=True)
xx = sp.Symbol("x", nonnegative=True)


@functools.cache
def derive_mi_bound() -> dict[str, sp.Expr]:
    r"""``mi_xy`` in terms of k; ``mi_identity`` (0); ``log_gap`` = :math:`x - \log(1+x)` with derivative
    :math:`x/(1+x) \ge 0` and value 0 at 0; the bound at λ = 0 after t sweeps.

    Also, for the general (not eigen-aligned) step and the scores:

    * ``similarity``: :math:`\Sigma_W^{-1}B\Sigma_YB^\top - K\Sigma_YK^\top\Sigma_W` at :math:`B = \Sigma_WK` with symbolic
      2 × 2 entries (Σ_W, Σ_Y symmetric) — 0;
    * ``rho2_of_mi``: ρ² solved from :math:`I = -\tfrac12\log(1 - \rho^2)`, i.e. :math:`1 - e^{-2I}`;
    * ``sap_gap_derivative`` and ``sap_gap_at_0``: :math:`2x - (1 - e^{-2x})` has derivative
      :math:`2(1 - e^{-2x}) \ge 0` and value 0 at 0, so :math:`1 - e^{-2x} \le 2x`;
    * ``sap_small_ratio``: :math:`\lim_{x\to0}(1 - e^{-2x})/x = 2`, why "SAP ≤ I(X;V)" fails (m = s = 1: SAP = ρ²).
    """
    k = sp.Symbol("k", real=True)
    mi_b = sp.Rational(1, 2) * sp.log((b**2 * mu + w) / w)
    mi_k = sp.Rational(1, 2) * sp.log(1 + k**2 * mu * w)
    gap = xx - sp.log(1 + xx)
    W = sp.Matrix(2, 2, lambda i, j: sp.Symbol(f"w_{min(i, j)}{max(i, j)}", real=True))
    Sy = sp.Matrix(2, 2, lambda i, j: sp.Symbol(f"s_{min(i, j)}{max(i, j)}", real=True))
    K = sp.Matrix(2, 2, lambda i, j: sp.Symbol(f"k_{i}{j}", real=True))
    B = W * K
    similarity = (W.inv() * B * Sy * B.T - K * Sy * K.T * W).applyfunc(sp.simplify)
    r2 = sp.Symbol("rho2", positive=True)
    (rho2_of_mi,) = sp.solve(sp.Eq(xx, -sp.log(1 - r2) / 2), r2)
    sap_gap = 2 * xx - rho2_of_mi
    return {
        "similarity": similarity,
        "rho2_of_mi": rho2_of_mi,
        "sap_gap_derivative": sp.diff(sap_gap, xx),
        "sap_gap_at_0": sap_gap.subs(xx, 0),
        "sap_small_ratio": sp.limit(rho2_of_mi / xx, xx, 0),
        "mi_xy": mi_k,
        "mi_identity": sp.simplify(sp.expand_log(mi_b - mi_k.subs(k, b / w), force=True)),
        "log_gap_derivative": sp.simplify(sp.diff(gap, xx)),
        "log_gap_at_0": gap.subs(xx, 0),
        "bound": sp.Rational(1, 2) * mu * (k0 * beta**-t) ** 2,
    }
