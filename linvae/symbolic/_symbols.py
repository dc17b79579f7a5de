"""The sympy symbols shared by every derivation, with the assumptions the theory makes on them.

Names follow proofs/notation.md. Per eigen-direction of :math:`\\Sigma_Y`: encoder gain ``b``, encoder
variance ``w``, decoder gain ``a``, decoder variance ``z``, eigenvalue ``mu``; scalars ``beta``, ``lam``
(λ), ``sigma2`` (data noise), ``sigma_d2`` (isotropic decoder variance).
"""

from __future__ import annotations

import sympy as sp

b, a = sp.symbols("b a", real=True)
w, z, mu = sp.symbols("w z mu", positive=True)
#: u = b^2 mu, the signal part of the aggregate-posterior variance (b only enters through b^2 at a profile).
u = sp.Symbol("u", positive=True)
beta, lam = sp.symbols("beta lambda", positive=True)
sigma2, sigma_d2 = sp.symbols("sigma2 sigma_d2", positive=True)
#: a generic water level / noise level theta = beta sigma_eff^2
theta = sp.Symbol("theta", positive=True)
#: sweep index of the alternating map
t = sp.Symbol("t", integer=True, nonnegative=True)

LATEX_NAMES: dict[sp.Symbol, str] = {
    lam: r"\lambda",
    sigma2: r"\sigma^2",
    sigma_d2: r"\sigma_d^2",
}


def latex(expr) -> str:
    """LaTeX of a sympy object with the project's symbol names (λ, σ², σ_d²)."""
    return sp.latex(expr, symbol_names=LATEX_NAMES)


# --- Ichikawa & Hukushima order parameters (docs/theory.md §6) -----------------------------------------
rho, eta, kappa, tau = sp.symbols("rho eta kappa tau", positive=True)
#: m, tilde m, R may have either sign; Q, tilde Q, v are non-negative.
m_ih, tm_ih, R_ih = sp.symbols("m tilde_m R", real=True)
Q_ih, tQ_ih, v_ih = sp.symbols("Q tilde_Q v", nonnegative=True)

# --- controllers (docs/theory.md §7) -------------------------------------------------------------------
K_p, K_i, beta_min, C_set = sp.symbols("K_p K_i beta_min C", positive=True)

LATEX_NAMES.update(
    {
        tm_ih: r"\tilde m",
        tQ_ih: r"\tilde Q",
        beta_min: r"\beta_{\min}",
    }
)
