r"""Stationary points of the per-direction objective, solved by sympy (docs/theory.md §3.3, §3.9, §4).

Every solution here comes out of ``sympy.solve`` applied to :math:`\partial\mathcal L = 0`; nothing is typed
in. The decoder block is solved first (:math:`\partial_a = \partial_z = 0`), which leaves a profile in
:math:`(b, w)`; because :math:`b` enters the profile only through :math:`u = b^2\mu`, the informative
branch is solved in :math:`(u, w)` and :math:`b = \sqrt{u/\mu}` (sign = the free signed permutation).

Theorems: ``decoder-block`` (T3), ``encoder-block`` (T4), ``collapse-global-optimum`` (T9),
``water-filling`` (T12), ``water-filling-information`` (T13), ``lambda-beta-equivalence`` (T14),
``beta-one-degenerate`` (T15), ``lucas-threshold`` (T17), ``learned-isotropic`` (T19).
"""

from __future__ import annotations

import functools

import sympy as sp

from linvae.symbolic._symbols import a, b, beta, lam, mu, sigma2, sigma_d2, theta, u, w, z
from linvae.symbolic.objective import direction_objective, rate, reconstruction_moment

#: Extra symbols for the learned isotropic variance (D2): data dimension, latent count, and the sum of
#: the eigenvalues no latent carries.
n_dim, m_dim = sp.symbols("n m", positive=True, integer=True)
S_rest = sp.Symbol("S_rest", positive=True)
#: total variance per dimension, s_0 = tr(Sigma_Y) / n
s_0 = sp.Symbol("s_0", positive=True)


@functools.cache
def derive_stationarity(variant: str = "D1") -> dict[str, sp.Expr]:
    r"""The stationarity conditions :math:`\partial_\theta\mathcal L` for :math:`\theta \in (b, w, a[,
    z])`."""
    L = direction_objective(variant)
    params = (b, w, a, z) if variant == "D1" else (b, w, a)
    return {f"dL/d{p}": sp.factor(sp.diff(L, p)) for p in params}


@functools.cache
def derive_decoder_block() -> dict[sp.Symbol, sp.Expr]:
    r"""Exact decoder block of D1: :math:`(a, z)` from :math:`\partial_a\mathcal L = \partial_z\mathcal L =
    0`."""
    L = direction_objective("D1")
    (sol,) = sp.solve([sp.diff(L, a), sp.diff(L, z)], [a, z], dict=True)
    return {a: sp.factor(sol[a]), z: sp.factor(sol[z])}


@functools.cache
def derive_encoder_block() -> dict[sp.Symbol, sp.Expr]:
    r"""Exact encoder block: :math:`(b, w)` from :math:`\partial_b = \partial_w = 0` at given :math:`(a, z)`.

    For D2/D3 substitute :math:`z = \sigma_d^2`.
    """
    L = direction_objective("D1")
    (sol,) = sp.solve([sp.diff(L, b), sp.diff(L, w)], [b, w], dict=True)
    return {b: sp.factor(sol[b]), w: sp.factor(sol[w])}


@functools.cache
def derive_block_convexity() -> dict[str, sp.Matrix]:
    r"""T4: the per-direction Hessian of :math:`\mathcal L` in the encoder block :math:`(b, w)` is diagonal
    with
    positive entries for every :math:`(a, z)` (so the encoder block has a unique minimiser), and the
    decoder-block profile is strictly convex in :math:`a` (second derivative :math:`(1/z +
    2\lambda)\Sigma_X`)."""
    L = direction_objective("D1")
    H_enc = sp.hessian(L, (b, w)).applyfunc(sp.factor)
    d2a = sp.factor(sp.diff(L, a, 2))
    return {"encoder_hessian": H_enc, "decoder_d2a": d2a}


def _moment_at(a_dec: sp.Expr, u_s: sp.Expr, w_s: sp.Expr) -> sp.Expr:
    """E at a profile point, computed rationally: b enters E (with a = a_dec(b)) only through b^2 = u/mu."""
    E = sp.expand(reconstruction_moment().subs(a, a_dec))
    E = sp.together(E).subs(b**2, u / mu).subs(b, sp.sqrt(u / mu))
    return sp.factor(sp.simplify(E.subs({u: u_s, w: w_s})))


def _informative_branch(profile: sp.Expr) -> dict[sp.Symbol, sp.Expr]:
    """Solve the (u, w) stationarity of a profile in which b enters only through u = b^2 mu."""
    Lu = profile.subs(b, sp.sqrt(u / mu))
    eqs = [sp.numer(sp.together(sp.diff(Lu, v))) for v in (u, w)]
    sols = sp.solve(eqs, [u, w], dict=True)
    if len(sols) != 1:
        raise RuntimeError(f"expected one informative branch, got {sols}")
    return sols[0]


@functools.cache
def derive_water_filling() -> dict[str, sp.Expr]:
    r"""The informative stationary point of D1 (reverse water-filling, docs/theory.md §3.9).

    Returns ``w, b, a, z`` (positive branch), the water level ``D`` (= z there), ``u = b^2 mu``,
    ``Sigma_X = b^2 mu + w``, the activation boundary ``mu_boundary`` (u = 0) and ``du/dmu``.
    """
    dec = derive_decoder_block()
    sol = _informative_branch(direction_objective("D1").subs(dec))
    w_s, u_s = sp.factor(sol[w]), sp.factor(sol[u])
    b_s = sp.sqrt(u_s / mu)
    a_s = sp.simplify(dec[a].subs({b: b_s, w: w_s}))
    z_s = sp.simplify(dec[z].subs({b: b_s, w: w_s}))
    (boundary,) = sp.solve(u_s, mu)
    return {
        "w": w_s,
        "u": u_s,
        "b": b_s,
        "a": a_s,
        "z": z_s,
        "D": z_s,
        "Sigma_X": sp.simplify(u_s + w_s),
        "k": sp.simplify(b_s / w_s),
        "mu_boundary": boundary,
        "du_dmu": sp.factor(sp.diff(u_s, mu)),
    }


@functools.cache
def derive_collapse_branch(variant: str = "D1") -> dict[sp.Symbol, sp.Expr]:
    r"""The collapsed branch :math:`b = 0`: :math:`w = 1`, :math:`a = 0`, and :math:`z = \mu` for D1."""
    L = direction_objective(variant)
    Lb0 = L.subs(b, 0)
    (a0,) = sp.solve(sp.diff(Lb0, a), a)
    (w0,) = sp.solve(sp.diff(Lb0.subs(a, a0), w), w)
    out = {b: sp.Integer(0), a: a0, w: w0}
    if variant == "D1":
        (z0,) = sp.solve(sp.diff(Lb0.subs({a: a0, w: w0}), z), z)
        out[z] = z0
    return out


@functools.cache
def derive_stationary_set_lambda0() -> list[dict[sp.Symbol, sp.Expr]]:
    r"""All stationary points of the D1 profile at λ = 0: only the collapsed one (T9)."""
    dec = derive_decoder_block()
    Lp = direction_objective("D1").subs(dec).subs(lam, 0)
    eqs = [sp.numer(sp.together(sp.diff(Lp, v))) for v in (b, w)]
    return sp.solve(eqs, [b, w], dict=True)


@functools.cache
def derive_activation_gain() -> dict[str, sp.Expr]:
    r"""Loss change of activating one direction at the water-filling point, vs leaving it collapsed (§3.9).

    Returns ``delta`` (as a function of :math:`\mu` and the water level ``D`` via β), the same in terms of
    :math:`x = \mu/D`, and its derivative in :math:`\mu`.
    """
    wf = derive_water_filling()
    pt = {b: wf["b"], w: wf["w"], a: wf["a"], z: wf["z"]}
    L = direction_objective("D1")
    L_col = L.subs(derive_collapse_branch("D1"))
    delta = sp.simplify(sp.expand_log(L.subs(pt) - L_col, force=True))
    x = sp.Symbol("x", positive=True)
    D = wf["D"]
    delta_x = sp.simplify(sp.expand_log(delta.subs(mu, x * D), force=True))
    return {"delta": delta, "delta_x": delta_x, "x": x, "ddelta_dx": sp.factor(sp.diff(delta_x, x))}


@functools.cache
def derive_water_filling_information() -> dict[str, sp.Expr]:
    r"""Per active direction at the water-filling point: :math:`I(X;Y)`, :math:`\mathcal K`,
    :math:`I(X;V)`, :math:`\mathcal R`, :math:`E` (T13).

    :math:`I(X;V)` uses one factor per direction with signal variance :math:`\mu - \sigma^2` (noise σ²):
    :math:`I = \tfrac12\log\frac{b^2\mu + w}{\sigma^2b^2 + w}`.
    """
    wf = derive_water_filling()
    pt = {b: wf["b"], w: wf["w"], a: wf["a"], z: wf["z"]}
    mi_xy = sp.Rational(1, 2) * sp.log((b**2 * mu + w) / w)
    mi_xv = sp.Rational(1, 2) * sp.log((b**2 * mu + w) / (sigma2 * b**2 + w))
    L = direction_objective("D1")
    recon = L - beta * rate() - lam * reconstruction_moment()
    out = {
        "mi_xy": sp.simplify(mi_xy.subs(pt)),
        "kl": sp.simplify(rate().subs(pt)),
        "mi_xv": sp.simplify(mi_xv.subs(pt)),
        "recon": sp.simplify(recon.subs(pt)),
        "E": sp.simplify(reconstruction_moment().subs(pt)),
    }
    out["dmi_dbeta"] = sp.simplify(sp.diff(out["mi_xy"], beta))
    out["dmi_dlam"] = sp.simplify(sp.diff(out["mi_xy"], lam))
    return out


@functools.cache
def derive_lucas() -> dict[str, sp.Expr]:
    r"""The informative stationary point of D3 (fixed :math:`\sigma_d^2`, Lucas et al., docs/theory.md §4).

    Returns ``w, u, b, a``, the noise level ``theta`` (:math:`= w\mu` there, i.e. :math:`\beta\sigma_{\rm
    eff}^2`),
    the activation boundary, the encoder gain spectrum ``k = b/w`` and ``E``.
    """
    L = direction_objective("D3")
    (a_dec,) = sp.solve(sp.diff(L, a), a)
    sol = _informative_branch(L.subs(a, a_dec))
    w_s, u_s = sp.factor(sol[w]), sp.factor(sol[u])
    b_s = sp.sqrt(u_s / mu)
    a_s = sp.simplify(a_dec.subs({b: b_s, w: w_s}))
    theta_s = sp.factor(w_s * mu)
    (boundary,) = sp.solve(u_s, mu)
    return {
        "w": w_s,
        "u": u_s,
        "b": b_s,
        "a": a_s,
        "theta": theta_s,
        "mu_boundary": boundary,
        "E": _moment_at(a_dec, u_s, w_s),
        "kl": sp.simplify(rate().subs({b: b_s, w: w_s})),
        "k": sp.simplify(b_s / w_s),
    }


@functools.cache
def derive_lucas_in_theta() -> dict[str, sp.Expr]:
    r"""The D3 solution rewritten in the single level :math:`\theta = \beta\sigma_{\rm eff}^2` (T17: at λ = 0
    it depends on :math:`(\beta, \sigma_d^2)` only through :math:`\beta\sigma_d^2`)."""
    luc = derive_lucas()
    (sd2,) = sp.solve(sp.Eq(luc["theta"], theta), sigma_d2)
    out = {k: sp.factor(sp.simplify(luc[k].subs(sigma_d2, sd2))) for k in ("w", "u", "E", "kl")}
    out["b"] = sp.sqrt(out["u"] / mu)
    out["a"] = sp.simplify(mu * out["b"] / (out["u"] + out["w"]))
    out["k"] = sp.simplify(out["b"] / out["w"])
    out["Sigma_X"] = sp.simplify(out["u"] + out["w"])
    return out


@functools.cache
def derive_learned_isotropic() -> dict[str, sp.Expr]:
    r"""D2: the shared learned variance :math:`\sigma_d^2` (T19).

    :math:`\partial_{\sigma_d^2}` of the total objective gives :math:`\sigma_d^2 = \operatorname{tr}E/n`; with
    :math:`m` active directions at the D3 solution (:math:`E_i = \theta`) and the rest inactive
    (:math:`E_j = \mu_j`, sum ``S_rest``) this is a fixed-point equation for :math:`\sigma_d^2`, solved here.
    """
    trE = sp.Symbol("trE", positive=True)
    total = sp.Rational(1, 2) * (trE / sigma_d2 + n_dim * sp.log(sigma_d2))
    (s2_trE,) = sp.solve(sp.diff(total, sigma_d2), sigma_d2)
    theta_s = derive_lucas()["theta"]
    fixed = sp.Eq(sigma_d2, s2_trE.subs(trE, m_dim * theta_s + S_rest))
    tb = sp.solve(fixed.subs({beta: 1, lam: 0}), sigma_d2)
    general = sp.solve(fixed, sigma_d2)
    lam0 = sp.solve(fixed.subs(lam, 0), sigma_d2)
    # Total collapse: sigma_d2 = tr(Sigma_Y)/n = s_0; the top direction stays collapsed iff it lies
    # below the D3 activation boundary at noise s_0.
    boundary = derive_lucas()["mu_boundary"].subs(sigma_d2, s_0)
    return {
        "sigma_d2_stationary": s2_trE,
        "fixed_point": fixed,
        "tipping_bishop": tb[0] if len(tb) == 1 else tb,
        "general": general,
        "lam0": lam0[0] if len(lam0) == 1 else lam0,
        "collapse_boundary": sp.factor(boundary),
    }
