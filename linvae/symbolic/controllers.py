r"""β controllers: DynamicVAE's telescoping identity and the closed-loop equilibria (docs/theory.md §7).

Error :math:`e = C - \widehat{\rm KL}` (target minus measured), :math:`\sigma(u) = 1/(1 + e^{-u})`.

Theorem: ``pi-equilibrium`` (T25).
"""

from __future__ import annotations

import functools

import sympy as sp

from linvae.symbolic._symbols import C_set, K_i, K_p, beta, lam, sigma_d2

beta0 = sp.Symbol("beta_0", real=True)
#: sum of log eigenvalues over the active set, and its size
logsum = sp.Symbol("Lambda_A", real=True)
n_active = sp.Symbol("k", positive=True, integer=True)
err = sp.Symbol("e", real=True)


def sigmoid(u: sp.Expr) -> sp.Expr:
    return 1 / (1 + sp.exp(-u))


@functools.cache
def derive_telescoping(steps: int = 6) -> dict[str, sp.Expr]:
    r"""T25(b): DynamicVAE's incremental PI, unrolled for ``steps`` steps with symbolic errors
    :math:`e_1, \dots, e_T` (:math:`e_0 = 0`), minus the positional form
    :math:`\beta(0) + K_p[\sigma(-e_T) - \tfrac12] - K_i\sum_j e_j` — the residual is 0."""
    e = sp.symbols(f"e_1:{steps + 1}", real=True)
    errs = (sp.Integer(0),) + e
    b = beta0
    for t in range(1, steps + 1):
        b = b + K_p * (sigmoid(-errs[t]) - sigmoid(-errs[t - 1])) - K_i * errs[t]
    positional = beta0 + K_p * (sigmoid(-errs[-1]) - sp.Rational(1, 2)) - K_i * sum(e)
    return {"incremental": b, "positional": positional, "residual": sp.simplify(b - positional)}


@functools.cache
def derive_equilibria() -> dict[str, sp.Expr]:
    r"""T25(a): interior equilibria of integral action on the quasi-static linear plants.

    The integrator :math:`I(t) = I(t-1) - K_ie(t)` is stationary iff :math:`e = 0`, i.e.
    :math:`\mathcal R_{\rm rate}(\beta^\ast) = C`. With the active set fixed (:math:`k` directions,
    :math:`\Lambda_{\mathcal A} = \sum_{i\in\mathcal A}\log\mu_i`) the rate is
    :math:`\tfrac12[\Lambda_{\mathcal A} - k\log\theta(\beta)]`, solved here for β with
    :math:`\theta = \beta\sigma_{\rm eff}^2` (D3) and :math:`\theta = (\beta - 1)/(2\lambda)` (D1, λ > 0).
    Also the sign of the controller's response: :math:`\partial\beta_{\rm raw}/\partial e < 0` (KL above
    target, e < 0, raises β; T25(d)).
    """
    I_prev = sp.Symbol("I_prev", real=True)
    (e_eq,) = sp.solve(sp.Eq(I_prev - K_i * err, I_prev), err)
    out: dict[str, sp.Expr] = {"integrator_equilibrium_e": e_eq}
    levels = {
        "D3": beta * sigma_d2 / (1 + 2 * lam * sigma_d2),
        "D1": (beta - 1) / (2 * lam),
    }
    for name, level in levels.items():
        rate = sp.Rational(1, 2) * (logsum - n_active * sp.log(level))
        sols = sp.solve(sp.Eq(rate, C_set), beta)
        (b_star,) = sols
        out[f"rate_{name}"] = rate
        out[f"beta_star_{name}"] = sp.simplify(b_star)
        out[f"drate_dbeta_{name}"] = sp.simplify(sp.diff(rate, beta))
    beta_raw = K_p * sigmoid(-err) - K_i * err
    out["dbeta_de"] = sp.simplify(sp.diff(beta_raw, err))
    return out


def derive_pi_equilibrium() -> dict[str, sp.Expr]:
    """T25 certificate: the telescoping residual together with the equilibria and response signs."""
    out = dict(derive_equilibria())
    out["telescoping_residual"] = derive_telescoping()["residual"]
    return out
