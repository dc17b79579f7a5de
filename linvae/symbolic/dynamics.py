r"""The alternating (block) map, symbolically: scalar per direction and matrix at small sizes (§3.3–3.5,
§3.10).

The per-direction map is :math:`(b_t, w_t) \to (a_t, z_t) \to (b_{t+1}, w_{t+1})`, each half-step the exact
block minimiser solved by :mod:`linvae.symbolic.stationarity`. The gain identity (T5)
:math:`k_{t+1} = (k_t + 2\lambda a_t)/\beta`, :math:`k = b/w`, is proved exactly in the scalar case and, for
the matrix map, with symbolic entries at :math:`n = 2, m = 1` (the block formulas of §3.3 are first
certified as zeros of the symbolic matrix gradient) and at exact random rational points for
:math:`n = 3, m = 2`.

Theorems: ``gain-identity`` (T5), ``gain-contraction`` (T6), ``raw-gain-bound`` (T7), ``collapse-limit``
(T8), ``beta-one-degenerate`` (T15).
"""

from __future__ import annotations

import functools
import random

import sympy as sp

from linvae.symbolic._symbols import a, b, beta, lam, mu, sigma_d2, w, z
from linvae.symbolic.objective import direction_objective, matrix_objective
from linvae.symbolic.stationarity import derive_collapse_branch, derive_decoder_block, derive_encoder_block


@functools.cache
def derive_scalar_map(variant: str = "D1") -> dict[str, sp.Expr]:
    r"""One sweep of the per-direction map as functions of :math:`(b, w)`: ``a, z, b_next, w_next,
    k_next``."""
    if variant == "D1":
        dec = derive_decoder_block()
        a_t, z_t = dec[a], dec[z]
    elif variant == "D3":
        (a_t,) = sp.solve(sp.diff(direction_objective("D3"), a), a)
        z_t = sigma_d2
    else:
        raise ValueError(f"the scalar map is per direction: variant 'D1' or 'D3'; got {variant!r}")
    enc = derive_encoder_block()
    at = {a: a_t, z: z_t}
    b_next = sp.factor(enc[b].subs(at))
    w_next = sp.factor(enc[w].subs(at))
    return {"a": a_t, "z": z_t, "b_next": b_next, "w_next": w_next, "k_next": sp.factor(b_next / w_next)}


@functools.cache
def derive_gain_identity() -> dict[str, sp.Expr]:
    r"""T5, scalar: the residual :math:`k_{t+1} - (k_t + 2\lambda a_t)/\beta`: 0 for D1; **not** 0 for D3,
    whose
    fixed-variance decoder is not the exact posterior (the identity needs :math:`a_t/z_t = k_t`).

    Also the two half-step facts it rests on: encoder :math:`k_{t+1} = a_t(z_t^{-1} + 2\lambda)/\beta` and
    decoder :math:`a_t/z_t = k_t` (D1).
    """
    out = {}
    for v in ("D1", "D3"):
        mp = derive_scalar_map(v)
        out[f"residual_{v}"] = sp.simplify(mp["k_next"] - (b / w + 2 * lam * mp["a"]) / beta)
    enc = derive_encoder_block()
    out["encoder_gain"] = sp.factor(enc[b] / enc[w])
    dec = derive_decoder_block()
    out["decoder_gain"] = sp.simplify(dec[a] / dec[z])
    return out


def _sym_matrix(name: str, rows: int, cols: int, symmetric: bool = False) -> sp.Matrix:
    def entry(i: int, j: int) -> sp.Symbol:
        if symmetric and j < i:
            i, j = j, i
        return sp.Symbol(f"{name}_{i + 1}{j + 1}", real=True)

    return sp.Matrix(rows, cols, lambda i, j: entry(i, j))


def matrix_blocks(Sigma_Y: sp.Matrix, B: sp.Matrix, Sigma_W: sp.Matrix, beta_, lam_) -> dict[str, sp.Matrix]:
    r"""One sweep of the matrix map with the block formulas of docs/theory.md §3.3 (D1/E1).

    Returns ``A, Sigma_Z`` (decoder block of ``B, Sigma_W``) and ``B_next, Sigma_W_next`` (encoder block).
    """
    m = B.shape[0]
    n = Sigma_Y.shape[0]
    Sigma_X = B * Sigma_Y * B.T + Sigma_W
    A = Sigma_Y * B.T * Sigma_X.inv()
    Sigma_Z = Sigma_Y - Sigma_Y * B.T * Sigma_X.inv() * B * Sigma_Y
    N = Sigma_Z.inv() + 2 * lam_ * sp.eye(n)
    M = beta_ * sp.eye(m) + A.T * N * A
    return {"A": A, "Sigma_Z": Sigma_Z, "B_next": M.inv() * A.T * N, "Sigma_W_next": beta_ * M.inv()}


def _random_rational(rng: random.Random) -> sp.Rational:
    return sp.Rational(rng.randint(1, 40), rng.randint(1, 20))


def _random_spd(rng: random.Random, n: int) -> sp.Matrix:
    G = sp.Matrix(n, n, lambda i, j: sp.Rational(rng.randint(-9, 9), rng.randint(1, 5)))
    return G * G.T + sp.Rational(rng.randint(1, 9), 4) * sp.eye(n)


@functools.cache
def derive_matrix_gain_identity(seed: int = 0) -> dict[str, sp.Expr]:
    r"""T5, matrix form.

    * ``symbolic``: :math:`K_{t+1} - (K_t + 2\lambda A_t^\top)/\beta` with symbolic :math:`\Sigma_Y` (2×2),
      :math:`B` (1×2), :math:`\Sigma_W` (1×1), β, λ — every entry cancels to 0;
    * ``gradient_decoder`` / ``gradient_encoder``: the symbolic matrix gradient of :math:`\mathcal
        L_{\lambda\beta}`
      at the block formulas, at exact random rational points (n = 2, m = 1) — all zero, so the formulas
      are the block minimisers' stationarity conditions;
    * ``rational``: the identity's residual at exact random rationals for n = 3, m = 2.
    """
    rng = random.Random(seed)
    Sy = _sym_matrix("s", 2, 2, symmetric=True)
    Bs = _sym_matrix("b", 1, 2)
    Ws = sp.Matrix([[w]])
    blk = matrix_blocks(Sy, Bs, Ws, beta, lam)
    K0 = Ws.inv() * Bs
    K1 = blk["Sigma_W_next"].inv() * blk["B_next"]
    residual = (K1 - (K0 + 2 * lam * blk["A"].T) / beta).applyfunc(sp.cancel)

    # the block formulas zero the symbolic gradient (n = 2, m = 1)
    As = _sym_matrix("A", 2, 1)
    Zs = _sym_matrix("Z", 2, 2, symmetric=True)
    obj = matrix_objective(Sy, Bs, Ws, As, Zs, beta, lam)["total"]
    pt = {s: _random_rational(rng) for s in Bs}
    pt.update({w: _random_rational(rng), beta: _random_rational(rng), lam: _random_rational(rng)})
    Sy_val = _random_spd(rng, 2)
    pt.update({Sy[i, j]: Sy_val[i, j] for i in range(2) for j in range(2)})
    blk_val = {k: v.subs(pt) for k, v in blk.items()}
    at_dec = dict(pt)
    at_dec.update({As[i, 0]: blk_val["A"][i, 0] for i in range(2)})
    at_dec.update({Zs[i, j]: blk_val["Sigma_Z"][i, j] for i in range(2) for j in range(2)})
    grad_dec = [sp.simplify(sp.diff(obj, s).subs(at_dec)) for s in list(As) + list(set(Zs))]
    # encoder block: gradient in (B, Sigma_W) at the encoder formulas, decoder fixed at (A, Sigma_Z)
    obj_enc = matrix_objective(Sy, Bs, Ws, As, Zs, beta, lam)["total"]
    at_enc = {k: v for k, v in at_dec.items() if k not in set(Bs) | {w}}
    at_enc.update({Bs[0, j]: blk_val["B_next"][0, j] for j in range(2)})
    at_enc[w] = blk_val["Sigma_W_next"][0, 0]
    grad_enc = [sp.simplify(sp.diff(obj_enc, s).subs(at_enc)) for s in list(Bs) + [w]]

    # n = 3, m = 2 at exact rationals
    Sy3 = _random_spd(rng, 3)
    B3 = sp.Matrix(2, 3, lambda i, j: sp.Rational(rng.randint(-9, 9), rng.randint(1, 7)))
    W3 = _random_spd(rng, 2)
    be, la = _random_rational(rng), _random_rational(rng)
    blk3 = matrix_blocks(Sy3, B3, W3, be, la)
    K3 = blk3["Sigma_W_next"].inv() * blk3["B_next"]
    res3 = (K3 - (W3.inv() * B3 + 2 * la * blk3["A"].T) / be).applyfunc(sp.cancel)
    return {
        "symbolic": residual,
        "gradient_decoder": sp.Matrix(grad_dec),
        "gradient_encoder": sp.Matrix(grad_enc),
        "rational": res3,
    }


@functools.cache
def derive_decoder_forms() -> dict[str, sp.Matrix]:
    r"""T3: the two Woodbury forms of the decoder block agree, and :math:`E = \Sigma_Z` at it (symbolic
    :math:`\Sigma_Y` 2×2, :math:`B` 1×2, :math:`\Sigma_W` 1×1; residuals 0); also
    :math:`A = \Sigma_ZB^\top\Sigma_W^{-1}`."""
    Sy = _sym_matrix("s", 2, 2, symmetric=True)
    Bs = _sym_matrix("b", 1, 2)
    Ws = sp.Matrix([[w]])
    blk = matrix_blocks(Sy, Bs, Ws, beta, lam)
    Z_alt = (Sy.inv() + Bs.T * Ws.inv() * Bs).inv()
    Rm = sp.eye(2) - blk["A"] * Bs
    E = Rm * Sy * Rm.T + blk["A"] * Ws * blk["A"].T
    return {
        "woodbury": (blk["Sigma_Z"] - Z_alt).applyfunc(sp.cancel),
        "E_minus_Sigma_Z": (E - blk["Sigma_Z"]).applyfunc(sp.cancel),
        "A_alt": (blk["A"] - blk["Sigma_Z"] * Bs.T * Ws.inv()).applyfunc(sp.cancel),
    }


@functools.cache
def derive_contraction() -> dict[str, sp.Expr]:
    r"""T6/T7/T8: the map at λ = 0.

    ``k_ratio`` = :math:`k_{t+1}/k_t` (= 1/β); ``w_gap`` = :math:`1 - w_{t+1}` (≥ 0: after any encoder step
    :math:`w \le 1`); ``scalar_law`` = residual of :math:`b_{t+1} = b_t/(\beta w_t + p_t)` with
    :math:`p_t = g_t^2/(1+g_t^2)`, :math:`g_t^2 = b_t^2\mu/w_t` (0); ``fixed_point`` = the map at the
    collapsed point; ``collapsed_loss`` = the per-direction loss there.
    """
    mp = derive_scalar_map("D1")
    k_ratio = sp.simplify((mp["k_next"] / (b / w)).subs(lam, 0))
    w_gap = sp.factor(1 - mp["w_next"])
    g2 = b**2 * mu / w
    law = sp.simplify(mp["b_next"].subs(lam, 0) - b / (beta * w + g2 / (1 + g2)))
    col = derive_collapse_branch("D1")
    fixed = {
        "b": sp.limit(mp["b_next"].subs(w, 1), b, 0),
        "w": sp.limit(mp["w_next"].subs(w, 1), b, 0),
    }
    return {
        "k_ratio": k_ratio,
        "w_gap": w_gap,
        "scalar_law": law,
        "fixed_point_b": fixed["b"],
        "fixed_point_w": fixed["w"],
        "collapsed_loss": sp.expand_log(sp.simplify(direction_objective("D1").subs(col)), force=True),
    }


def iterate_scalar_map(b0, w0, mu_, beta_, lam_, steps: int, variant: str = "D1", sigma_d2_=None):
    """Exact iterates ``[(b_t, w_t, k_t, a_t)]`` of the scalar map at given (rational) values."""
    mp = derive_scalar_map(variant)
    vals = {mu: mu_, beta: beta_, lam: lam_}
    if sigma_d2_ is not None:
        vals[sigma_d2] = sigma_d2_
    fb = sp.Lambda((b, w), mp["b_next"].subs(vals))
    fw = sp.Lambda((b, w), mp["w_next"].subs(vals))
    fa = sp.Lambda((b, w), mp["a"].subs(vals))
    out = []
    bt, wt = sp.sympify(b0), sp.sympify(w0)
    for _ in range(steps + 1):
        out.append((bt, wt, sp.cancel(bt / wt), sp.cancel(fa(bt, wt))))
        bt, wt = sp.cancel(fb(bt, wt)), sp.cancel(fw(bt, wt))
    return out


@functools.cache
def derive_caution_case() -> dict[str, sp.Expr]:
    r"""T7 caution case of docs/theory.md §3.5: scalar, :math:`\Sigma_Y = 1`, β = 2, λ = 0, :math:`b_0 = 1/2`,
    :math:`w_0 = 1/100`. Exact iterates: :math:`|b_1| > |b_0|` although :math:`k_1 = k_0/2`."""
    its = iterate_scalar_map(sp.Rational(1, 2), sp.Rational(1, 100), 1, 2, 0, 3)
    return {
        "b": sp.Matrix([x[0] for x in its]),
        "w": sp.Matrix([x[1] for x in its]),
        "k": sp.Matrix([x[2] for x in its]),
        "b1_over_b0": its[1][0] / its[0][0],
        "k1_over_k0": its[1][2] / its[0][2],
    }


@functools.cache
def derive_beta_one() -> dict[str, sp.Expr]:
    r"""T15, β ≤ 1 in D1.

    * ``k_ratio_beta1``: :math:`k_{t+1}/k_t` at β = 1, λ = 0 (= 1: the gain is frozen);
    * ``wf_loss_limit``: the water-filling per-direction loss as β → 1⁺ at λ > 0, minus the collapsed
      per-direction loss at λ = 0, :math:`\tfrac12(\log2\pi\mu + 1)` (→ 0: every active direction tends to
      its λ-free collapsed value; inactive directions keep :math:`\lambda\mu_i`, so the infimum is
      :math:`\mathcal L^\star_{\rm col} + \lambda\sum_{i>m}\mu_i`);
    * ``recon_limit``: :math:`\mathcal R` there as β → 1⁺ (→ −∞);
    * ``profile_beta_lt1``: the D1 loss along :math:`\Sigma_X = 1` with the exact decoder, as a function of
      :math:`w` (:math:`\tfrac{1-\beta}2\log w` + const: unbounded below for β < 1).
    """
    from linvae.symbolic.stationarity import derive_water_filling, derive_water_filling_information

    mp = derive_scalar_map("D1")
    k_ratio = sp.simplify((mp["k_next"] / (b / w)).subs({lam: 0, beta: 1}))
    wf = derive_water_filling()
    pt = {b: wf["b"], w: wf["w"], a: wf["a"], z: wf["z"]}
    L = direction_objective("D1")
    L_col = L.subs(derive_collapse_branch("D1")).subs(lam, 0)
    gap = sp.simplify(sp.expand_log(L.subs(pt) - L_col, force=True))
    wf_limit = sp.limit(gap, beta, 1, "+")
    recon = derive_water_filling_information()["recon"]
    recon_limit = sp.limit(recon, beta, 1, "+")
    dec = derive_decoder_block()
    prof = L.subs(lam, 0).subs(dec)
    # along Sigma_X = b^2 mu + w = 1
    prof = sp.expand_log(sp.simplify(prof.subs(b, sp.sqrt((1 - w) / mu))), force=True)
    return {
        "k_ratio_beta1": k_ratio,
        "wf_loss_gap": gap,
        "wf_loss_limit": wf_limit,
        "recon_limit": recon_limit,
        "profile_beta_lt1": sp.collect(sp.expand(prof), sp.log(w)),
        "profile_dlogw": sp.simplify(sp.diff(prof, w) * w),
    }
