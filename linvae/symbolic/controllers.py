r"""β controllers: DynamicVAE's telescoping identity and the closed-loop equilibria (docs/theory.md §7).

Error :math:`e = C - \widehat{\rm KL}` (target minus measured), :math:`\sigma(u) = 1/(1 + e^{-u})`.

Theorem: ``pi-equilibrium`` (T25).
"""

from __future__ import annotations

import functools

import sympy as sp

from linvae.symbolic._symbols import C_set, K_i, K_p, beta, beta_min, lam, sigma_d2

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


@functools.cache
def derive_anti_windup() -> dict[str, sp.Expr]:
    r"""T25(c, d): what anti-windup does to the positional form :math:`\beta_{\rm raw} = \beta_{\min} + K_p\sigma(-e) + I`.

    For DynamicVAE the integral part is :math:`I = \beta_{\rm raw} - \beta_{\min} - K_p\sigma(-e)` of its
    telescoped form (T25 b), which obeys the same update.

    * ``lock_margin``: :math:`\beta_{\rm raw} - \beta_{\min}` at :math:`I = -K_p`, which is
      :math:`-K_p\sigma(e) < 0` for every e — the published rule (hold whenever clipped) then holds I for
      ever, whatever the KL;
    * ``lock_error``: the single error from the initial state (:math:`I = 0`) that reaches :math:`I = -K_p`;
    * ``floor``: a lower bound of every integral an update produces. I falls only when it integrates a
      positive error, which both rules do only from an unclipped state, :math:`\beta_{\rm raw}(t-1) \ge
      \beta_{\min}`, i.e. :math:`I(t-1) \ge -K_ps` with :math:`s = \sigma(-e(t-1)) \in (0, 1)`; then
      :math:`I(t) \ge -K_ps - K_ie(t)`, decreasing in s and in e (``floor_gradient``), and :math:`e \le C`
      because KL ≥ 0, so the infimum is at s = 1, e = C;
    * ``increment``: one clamped update under a KL above target (e = −δ < 0 integrates) raises I by
      :math:`K_i\delta`;
    * ``steps_to_level``: updates after which :math:`\beta_{\rm raw} \ge \beta_{\min} + K_p/2 + I \ge b` from the
      floor, with :math:`\sigma(\delta) \ge \tfrac12`.
    """
    I_prev, delta, level, k = sp.symbols("I_prev delta b k", real=True)
    positional = beta_min + K_p * sigmoid(-err) + I_prev
    (lock_error,) = sp.solve(sp.Eq(0 - K_i * err, -K_p), err)
    s_prev = sp.Symbol("s", positive=True)
    after = -K_p * s_prev - K_i * err
    floor_value = after.subs({s_prev: 1, err: C_set})
    increment = sp.simplify((I_prev - K_i * (-delta)) - I_prev)
    (steps,) = sp.solve(sp.Eq(beta_min + K_p / 2 + floor_value + k * increment, level), k)
    return {
        "lock_margin": sp.simplify(positional.subs(I_prev, -K_p) - beta_min),
        "lock_margin_sign_check": sp.simplify(positional.subs(I_prev, -K_p) - beta_min + K_p * sigmoid(err)),
        "lock_error": lock_error,
        "floor_gradient": sp.Matrix([[sp.diff(after, s_prev), sp.diff(after, err)]]),
        "floor": floor_value,
        "increment": increment,
        "steps_to_level": sp.simplify(steps),
    }


def derive_pi_equilibrium() -> dict[str, sp.Expr]:
    """T25 certificate: the telescoping residual, the equilibria and response signs, and anti-windup."""
    out = dict(derive_equilibria())
    out["telescoping_residual"] = derive_telescoping()["residual"]
    out.update({f"anti_windup_{k}": v for k, v in derive_anti_windup().items()})
    return out
