r"""Kumar & Poole's second-order β-VAE objective, exact for a linear decoder (docs/theory.md §5).

Per data point :math:`y`, decoder :math:`\mathcal N(Ax + c, \Sigma_Z)`, posterior :math:`\mathcal N(\mu,
\Sigma)`.
For a linear decoder the Gaussian expectation is exact:
:math:`\mathbb E_q[-\log p(y\mid x)] = -\log p(y\mid\mu) + \tfrac12\operatorname{tr}(H\Sigma)`,
:math:`H = A^\top\Sigma_Z^{-1}A`, so minimising the β-ELBO over Σ is a concave-log-det problem solved here
for the full and the diagonal family (2×2 with symbolic H, and the scalar case).

Theorems: ``kumar-poole-exact`` (T21), ``diag-identifiability`` (T20).
"""

from __future__ import annotations

import functools

import sympy as sp

from linvae.symbolic._symbols import beta

h11, h22 = sp.symbols("h_11 h_22", positive=True)
h12 = sp.Symbol("h_12", real=True)
s11, s22 = sp.symbols("Sigma_11 Sigma_22", positive=True)
s12 = sp.Symbol("Sigma_12", real=True)
mu1, mu2 = sp.symbols("mu_1 mu_2", real=True)
#: -log p(y | mu): the decoder's negative log-likelihood at the mean (any function of mu)
nll = sp.Function("ell")
h = sp.Symbol("h", nonnegative=True)
x = sp.Symbol("x", nonnegative=True)


def _H() -> sp.Matrix:
    return sp.Matrix([[h11, h12], [h12, h22]])


def beta_elbo(Sigma: sp.Matrix) -> sp.Expr:
    r"""The exact β-ELBO loss of a linear decoder: :math:`\ell(\mu) + \tfrac12\operatorname{tr}(H\Sigma) +
    \beta\,\mathrm{KL}`."""
    mvec = sp.Matrix([mu1, mu2])
    kl = sp.Rational(1, 2) * (Sigma.trace() + (mvec.T * mvec)[0] - sp.log(Sigma.det()) - 2)
    return nll(mu1, mu2) + sp.Rational(1, 2) * (_H() * Sigma).trace() + beta * kl


def deterministic_objective(diagonal: bool = False) -> sp.Expr:
    r""":math:`\mathcal L_{\rm det} = \ell(\mu) + \tfrac\beta2\|\mu\|^2 + \tfrac\beta2\log\det(I +
    H/\beta)` (full)
    or with :math:`\sum_i\log(1 + H_{ii}/\beta)` (diagonal)."""
    H = _H()
    reg = (
        sp.log(1 + h11 / beta) + sp.log(1 + h22 / beta) if diagonal else sp.log((sp.eye(2) + H / beta).det())
    )
    return nll(mu1, mu2) + beta / 2 * (mu1**2 + mu2**2) + beta / 2 * reg


@functools.cache
def derive_kumar_poole() -> dict[str, sp.Expr]:
    r"""T21 certificates.

    * ``Sigma_star``: the solution of :math:`\partial_\Sigma = 0` over a full symmetric 2×2 Σ;
    * ``Sigma_star_residual``: :math:`\Sigma^\ast - (I + H/\beta)^{-1}` (0);
    * ``full_gap`` / ``diag_gap``: :math:`\min_\Sigma\mathcal L_\beta - \mathcal L_{\rm det}` for both
        families (0);
    * ``hadamard_gap``: diagonal minus full regulariser, and its closed form
      :math:`-\tfrac\beta2\log(1 - h_{12}^2/((\beta + h_{11})(\beta + h_{22})))` (≥ 0, zero iff
      :math:`h_{12} = 0`);
    * ``large_beta``: :math:`\lim_{\beta\to\infty}\tfrac\beta2\log\det(I + H/\beta)` (=
        :math:`\tfrac12\operatorname{tr}H`);
    * ``monotone``: :math:`\partial_\beta[\tfrac\beta2\log(1 + h/\beta)]` written in :math:`x = h/\beta`,
        and its
      :math:`x`-derivative (:math:`x/(1+x)^2 \ge 0`, with value 0 at :math:`x = 0`): increasing in β;
    * ``mean_star``: the optimal mean for a quadratic :math:`\ell` (a linear decoder) — the encoder block.
    """
    H = _H()
    Sig = sp.Matrix([[s11, s12], [s12, s22]])
    L = beta_elbo(Sig)
    sol = sp.solve([sp.diff(L, v) for v in (s11, s12, s22)], [s11, s12, s22], dict=True)
    sol = [
        s for s in sol if all(sp.simplify(s[v]).could_extract_minus_sign() is not True for v in (s11, s22))
    ]
    (sol,) = sol
    S_star = Sig.subs(sol).applyfunc(sp.factor)
    residual = (S_star - (sp.eye(2) + H / beta).inv()).applyfunc(sp.simplify)
    full_gap = sp.expand_log(L.subs(sol) - deterministic_objective(False), force=True)
    full_gap = sp.simplify(sp.expand_log(sp.simplify(full_gap), force=True))
    # diagonal family
    Ld = beta_elbo(sp.diag(s11, s22))
    dsol = sp.solve([sp.diff(Ld, s11), sp.diff(Ld, s22)], [s11, s22], dict=True)
    (dsol,) = dsol
    diag_gap = sp.simplify(sp.expand_log(Ld.subs(dsol) - deterministic_objective(True), force=True))
    had = sp.simplify(deterministic_objective(True) - deterministic_objective(False))
    had_closed = -beta / 2 * sp.log(1 - h12**2 / ((beta + h11) * (beta + h22)))
    had_residual = sp.simplify(sp.expand_log(had - had_closed, force=True))
    large = sp.limit(beta / 2 * sp.log((sp.eye(2) + H / beta).det()), beta, sp.oo)
    f = sp.diff(beta / 2 * sp.log(1 + h / beta), beta)
    fx = sp.simplify(sp.expand_log(f.subs(h, x * beta), force=True))
    # optimal mean for a linear decoder: ell(mu) = 1/2 (y - A mu)^T Sz^{-1} (y - A mu) => gradient H mu - g
    g1, g2 = sp.symbols("g_1 g_2", real=True)  # g = A^T Sigma_Z^{-1} (y - c)
    mvec = sp.Matrix([mu1, mu2])
    quad = sp.Rational(1, 2) * (mvec.T * H * mvec)[0] - (sp.Matrix([g1, g2]).T * mvec)[0]
    Lm = quad + beta / 2 * (mu1**2 + mu2**2)
    msol = sp.solve([sp.diff(Lm, mu1), sp.diff(Lm, mu2)], [mu1, mu2], dict=True)[0]
    m_star = sp.Matrix([msol[mu1], msol[mu2]])
    m_residual = (m_star - (H + beta * sp.eye(2)).inv() * sp.Matrix([g1, g2])).applyfunc(sp.simplify)
    return {
        "Sigma_star": S_star,
        "Sigma_star_residual": residual,
        "full_gap": full_gap,
        "diag_Sigma_star": sp.Matrix([dsol[s11], dsol[s22]]),
        "diag_gap": diag_gap,
        "hadamard_gap": had,
        "hadamard_closed_residual": had_residual,
        "large_beta": sp.simplify(large),
        "monotone_dbeta": fx,
        "monotone_dx": sp.factor(sp.diff(fx, x)),
        "monotone_at_0": fx.subs(x, 0),
        "mean_star_residual": m_residual,
    }


@functools.cache
def derive_rotation_gap() -> dict[str, sp.Expr]:
    r"""T20: rotating an axis-aligned optimum (diagonal :math:`H = \mathrm{diag}(h_1, h_2)`) by
    :math:`R(\phi)` and re-optimising the diagonal encoder costs the Hadamard gap of :math:`R^\top HR`.

    Returns the rotated off-diagonal :math:`(R^\top HR)_{12} = (h_2 - h_1)\sin\phi\cos\phi` and the gap,
    which is > 0 unless :math:`h_1 = h_2` or φ is a multiple of π/2 (a signed permutation).
    """
    h1, h2 = sp.symbols("h_1 h_2", positive=True)
    phi = sp.Symbol("phi", real=True)
    Rm = sp.Matrix([[sp.cos(phi), -sp.sin(phi)], [sp.sin(phi), sp.cos(phi)]])
    Hr = (Rm.T * sp.diag(h1, h2) * Rm).applyfunc(sp.trigsimp)
    gap = sp.simplify(
        beta / 2 * (sp.log(1 + Hr[0, 0] / beta) + sp.log(1 + Hr[1, 1] / beta))
        - beta / 2 * (sp.log(1 + h1 / beta) + sp.log(1 + h2 / beta))
    )
    # the gap is (beta/2) log(product ratio); the product excess is a perfect square
    excess = sp.factor(
        sp.trigsimp(sp.expand((beta + Hr[0, 0]) * (beta + Hr[1, 1]) - (beta + h1) * (beta + h2)))
    )
    return {
        "H_rotated": Hr,
        "off_diagonal": sp.factor(sp.trigsimp(Hr[0, 1])),
        "gap": gap,
        "product_excess": excess,
        "phi": phi,
    }
