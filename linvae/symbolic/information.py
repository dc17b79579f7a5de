r"""Gaussian information of one direction and the MI-chain bound (docs/theory.md §3.7, §8).

Per direction, :math:`I(X;Y) = \tfrac12\log(\Sigma_X/w) = \tfrac12\log(1 + k^2\mu w)` with :math:`k = b/w`.
Since :math:`\log(1+x) \le x` and :math:`w \le 1` after any encoder step (T7),
:math:`I(X;Y) \le \tfrac12\mu k^2`, and at λ = 0 :math:`k_t = \beta^{-t}k_0` (T6) gives the rate
:math:`\tfrac12\mu k_0^2\beta^{-2t}`.

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
    :math:`x/(1+x) \ge 0` and value 0 at 0; the bound at λ = 0 after t sweeps."""
    k = sp.Symbol("k", real=True)
    mi_b = sp.Rational(1, 2) * sp.log((b**2 * mu + w) / w)
    mi_k = sp.Rational(1, 2) * sp.log(1 + k**2 * mu * w)
    gap = xx - sp.log(1 + xx)
    return {
        "mi_xy": mi_k,
        "mi_identity": sp.simplify(sp.expand_log(mi_b - mi_k.subs(k, b / w), force=True)),
        "log_gap_derivative": sp.simplify(sp.diff(gap, xx)),
        "log_gap_at_0": gap.subs(xx, 0),
        "bound": sp.Rational(1, 2) * mu * (k0 * beta**-t) ** 2,
    }
