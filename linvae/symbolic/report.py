"""A readable report of the derivations (what ``python -m linvae.symbolic`` prints).

Sections: objective; stationarity conditions; block solutions; stationary points (collapse, reverse
water-filling, Lucas, Tipping–Bishop / learned isotropic); active set and activation gain; encoder-gain
spectra; linearisation at collapse and thresholds; gain identity; Kumar–Poole; Ichikawa; controllers.
"""

from __future__ import annotations

import sympy as sp

from linvae import symbolic as S
from linvae.symbolic._symbols import a, b, latex, w, z


def _fmt(expr: object, use_latex: bool) -> str:
    if isinstance(expr, str):
        return expr
    if use_latex:
        return latex(expr)
    text = sp.pretty(expr, use_unicode=True, wrap_line=False)
    return text if "\n" not in text else "\n" + text


def _section(title: str, rows: list[tuple[str, object]], use_latex: bool) -> str:
    lines = [title, "=" * len(title)]
    for name, expr in rows:
        lines.append(f"{name} = {_fmt(expr, use_latex)}")
    return "\n".join(lines) + "\n"


def report(latex: bool = False) -> str:
    """All derivations as text (``latex=True``: right-hand sides as LaTeX)."""
    wf = S.derive_water_filling()
    luc = S.derive_lucas_in_theta()
    iso = S.derive_learned_isotropic()
    ag = S.derive_activation_gain()
    spec = S.derive_gain_spectra()
    thr = S.derive_thresholds()
    sf = S.derive_sweep_factor("D1")
    fl = S.derive_flow_linearisation("D1")
    gi = S.derive_gain_identity()
    kp = S.derive_kumar_poole()
    fp = S.derive_fixed_points()
    th = S.derive_threshold()
    eq = S.derive_equilibria()
    dec, enc = S.derive_decoder_block(), S.derive_encoder_block()
    sections = [
        ("Per-direction objective (D1; D3 has z = sigma_d2 fixed)", list(S.derive_objective().items())),
        ("Stationarity conditions (D1)", list(S.derive_stationarity("D1").items())),
        ("Decoder block (exact, D1)", [("a", dec[a]), ("z", dec[z])]),
        ("Encoder block (exact)", [("b", enc[b]), ("w", enc[w])]),
        ("Collapse (b = 0 branch)", [(str(k), v) for k, v in S.derive_collapse_branch("D1").items()]),
        (
            "Reverse water-filling (D1, lambda > 0)",
            [(k, wf[k]) for k in ("w", "b", "a", "z", "Sigma_X", "k")]
            + [("active iff mu >", wf["mu_boundary"]), ("activation loss change (x = mu/D)", ag["delta_x"])],
        ),
        (
            "Lucas et al. (D3), in theta = beta sigma_eff^2",
            [(k, luc[k]) for k in ("w", "b", "a", "k", "E")] + [("theta", S.derive_lucas()["theta"])],
        ),
        (
            "Learned isotropic (D2) and Tipping-Bishop",
            [
                ("sigma_d2 stationary", iso["sigma_d2_stationary"]),
                ("fixed point", iso["fixed_point"]),
                ("Tipping-Bishop (beta=1, lambda=0)", iso["tipping_bishop"]),
                ("lambda = 0", iso["lam0"]),
            ],
        ),
        (
            "Encoder-gain spectra b_i, k_i = b_i/w_i",
            [(f"{v}: {q}", spec[v][q]) for v in ("D1", "D3") for q in ("b", "k", "level")],
        ),
        (
            "Linearisation at collapse (D1)",
            [("flow Jacobian", fl["jacobian"]), ("det", fl["det"]), ("sweep factor", sf["factor"])],
        ),
        (
            "Thresholds (derived)",
            [
                ("T11 beta_c (D1)", thr["T11"]),
                ("T11 beta_c from the map", thr["T11_map"]),
                ("T17 largest collapsed eigenvalue (D3)", thr["T17"]),
                ("T19 total-collapse bound on mu_1 (D2)", thr["T19"]),
                ("T24 beta_c(kappa)", thr["T24"]),
            ],
        ),
        (
            "Gain identity (T5)",
            [
                ("k_{t+1}", S.derive_scalar_map("D1")["k_next"]),
                ("residual D1", gi["residual_D1"]),
                ("residual D3 (not an identity)", gi["residual_D3"]),
                ("matrix residual n=2, m=1", S.derive_matrix_gain_identity()["symbolic"]),
            ],
        ),
        (
            "Kumar & Poole (T21)",
            [
                ("Sigma*", kp["Sigma_star"]),
                ("min - L_det (full)", kp["full_gap"]),
                ("min - L_det (diag)", kp["diag_gap"]),
                ("Hadamard gap", kp["hadamard_gap"]),
                ("large-beta limit", kp["large_beta"]),
            ],
        ),
        (
            "Ichikawa & Hukushima (T23, T24)",
            [(str(k), v) for k, v in fp["point"].items()]
            + [("eps_g*", fp["eps_g"]), ("argmin eps_g*", fp["beta_opt"]), ("beta_c(kappa)", th["beta_c"])],
        ),
        (
            "Controllers (T25)",
            [
                ("telescoping residual", S.derive_telescoping()["residual"]),
                ("beta* (D3)", eq["beta_star_D3"]),
                ("beta* (D1)", eq["beta_star_D1"]),
                ("d beta_raw / d e", eq["dbeta_de"]),
            ],
        ),
    ]
    return "\n".join(_section(t, rows, latex) for t, rows in sections)
