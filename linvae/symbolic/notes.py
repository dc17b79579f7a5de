r"""Generated LaTeX blocks of the proof notes, and their regeneration (``proofs/<slug>.md``).

A note embeds derived algebra between marker comments::

    <!-- BEGIN GENERATED: water-filling/solution -->
    $$ ... LaTeX produced from linvae.symbolic ... $$
    <!-- END GENERATED -->

:data:`BLOCKS` maps each block name to a function that renders it from the derivations;
:func:`regenerate` rewrites every block of a note, :func:`stale_notes` lists the notes whose blocks differ
from a fresh rendering, and :func:`write_notes` rewrites them in place. Nothing here types algebra in.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import sympy as sp

from linvae.symbolic import (
    controllers,
    dynamics,
    ichikawa,
    information,
    kumar_poole,
    objective,
    optimality,
    rate_distortion,
    spectrum,
    stability,
    stationarity,
)
from linvae.symbolic._symbols import a, b, latex, w, z

_BLOCK_RE = re.compile(
    r"(<!-- BEGIN GENERATED: (?P<name>[\w\-/]+) -->\n)(?P<body>.*?)(<!-- END GENERATED -->)", re.DOTALL
)


def _aligned(rows: list[tuple[str, object]]) -> str:
    lines = [f"{lhs} &= {x if isinstance(x, str) else latex(x)}" for lhs, x in rows]
    return "$$\n\\begin{aligned}\n" + " \\\\\n".join(lines) + "\n\\end{aligned}\n$$\n"


def _population() -> str:
    ob = objective.derive_objective()
    pi = objective.derive_population_identities()
    return _aligned(
        [
            ("E", ob["E"]),
            (r"\mathcal K", ob["K"]),
            (r"\mathcal L_{\mathrm{D1}}", ob["L_D1"]),
            (r"\text{residual of the }E\text{ expansion}", pi["E_expansion"]),
            (r"\mathcal K - I(X;Y) - \mathrm{KL}(\mathcal N(0,\Sigma_X)\|\mathcal N(0,I))", pi["rate_split"]),
            (
                r"\lambda(y-\hat y)^2 + \log\mathcal N(y;\hat y,(2\lambda)^{-1}) +"
                r" \tfrac12\log\tfrac\pi\lambda",
                pi["lambda_likelihood"],
            ),
        ]
    )


def _gradients() -> str:
    st = stationarity.derive_stationarity("D1")
    g = objective.derive_matrix_gradients()
    rows = [(rf"\partial_{{{k[-1]}}}\mathcal L", v) for k, v in st.items()]
    rows += [(rf"\nabla_{{{k}}}\mathcal L - (\S3.1)", v) for k, v in g.items()]
    return _aligned(rows)


def _decoder() -> str:
    d = stationarity.derive_decoder_block()
    f = dynamics.derive_decoder_forms()
    return _aligned(
        [
            ("a", d[a]),
            ("z", d[z]),
            (r"\partial_a^2\mathcal L", stationarity.derive_block_convexity()["decoder_d2a"]),
            (r"\Sigma_Z - (\Sigma_Y^{-1} + B^\top\Sigma_W^{-1}B)^{-1}", f["woodbury"]),
            (r"E - \Sigma_Z", f["E_minus_Sigma_Z"]),
            (
                r"\nabla_{(A,\Sigma_Z)}\mathcal L\ \text{at the block}",
                dynamics.derive_matrix_gain_identity()["gradient_decoder"].T,
            ),
        ]
    )


def _encoder() -> str:
    e = stationarity.derive_encoder_block()
    return _aligned(
        [
            ("b", e[b]),
            ("w", e[w]),
            (r"\nabla^2_{(b,w)}\mathcal L", stationarity.derive_block_convexity()["encoder_hessian"]),
            (
                r"\nabla_{(B,\Sigma_W)}\mathcal L\ \text{at the block}",
                dynamics.derive_matrix_gain_identity()["gradient_encoder"].T,
            ),
        ]
    )


def _gain_identity() -> str:
    gi = dynamics.derive_gain_identity()
    mg = dynamics.derive_matrix_gain_identity()
    mp = dynamics.derive_scalar_map("D1")
    return _aligned(
        [
            (r"k_{t+1}", mp["k_next"]),
            (r"k_{t+1}\ (\text{encoder step})", gi["encoder_gain"]),
            (r"a_t/z_t\ (\text{decoder step})", gi["decoder_gain"]),
            (r"k_{t+1} - (k_t + 2\lambda a_t)/\beta\ \ (\mathrm{D1})", gi["residual_D1"]),
            (r"K_{t+1} - (K_t + 2\lambda A_t^\top)/\beta\ \ (n=2,m=1)", mg["symbolic"]),
            (r"\text{same, }n=3,m=2\text{ (rational point)}", mg["rational"]),
            (r"k_{t+1} - (k_t + 2\lambda a_t)/\beta\ \ (\mathrm{D3})", gi["residual_D3"]),
        ]
    )


def _contraction() -> str:
    c = dynamics.derive_contraction()
    return _aligned([(r"k_{t+1}/k_t\ (\lambda=0)", c["k_ratio"])])


def _raw_gain() -> str:
    c = dynamics.derive_contraction()
    cc = dynamics.derive_caution_case()
    return _aligned(
        [
            (r"1 - w_{t+1}", c["w_gap"]),
            (r"b_{t+1} - b_t/(\beta w_t + p_t)\ (\lambda=0)", c["scalar_law"]),
            (r"(b_t)_{t=0..3}", cc["b"].T),
            (r"(k_t)_{t=0..3}", cc["k"].T),
            (r"b_1/b_0", cc["b1_over_b0"]),
            (r"k_1/k_0", cc["k1_over_k0"]),
        ]
    )


def _collapse_limit() -> str:
    c = dynamics.derive_contraction()
    col = stationarity.derive_collapse_branch("D1")
    return _aligned(
        [(str(k), v) for k, v in col.items()]
        + [
            (r"(b_{t+1}, w_{t+1})\text{ at }(0, 1)", sp.Matrix([[c["fixed_point_b"], c["fixed_point_w"]]])),
            (r"\mathcal L_{\mathrm{col},i}", c["collapsed_loss"]),
        ]
    )


def _global_optimum() -> str:
    sols = stationarity.derive_stationary_set_lambda0()
    return _aligned(
        [
            (
                r"\{(b, w) : \nabla\mathcal L_{\text{profile}} = 0,\ \lambda = 0\}",
                sp.FiniteSet(*[(s[b], s[w]) for s in sols]),
            )
        ]
    )


def _mi_chain() -> str:
    m = information.derive_mi_bound()
    return _aligned(
        [
            (r"I(X;Y)_i", m["mi_xy"]),
            (r"\tfrac12\log\tfrac{b^2\mu + w}{w} - I(X;Y)_i|_{k=b/w}", m["mi_identity"]),
            (
                r"\Sigma_W^{-1}B\Sigma_YB^\top - K\Sigma_YK^\top\Sigma_W\ (B = \Sigma_WK,\ 2\times2)",
                m["similarity"],
            ),
            (r"\tfrac{d}{dx}[x - \log(1+x)]", m["log_gap_derivative"]),
            (r"\text{bound after }t\text{ sweeps (one direction)}", m["bound"]),
            (r"\rho^2\ \text{from}\ x = I = -\tfrac12\log(1-\rho^2)", m["rho2_of_mi"]),
            (r"\tfrac{d}{dx}[2x - \rho^2(x)]", m["sap_gap_derivative"]),
            (r"[2x - \rho^2(x)]_{x=0}", m["sap_gap_at_0"]),
            (r"\lim_{x\to0}\rho^2(x)/x", m["sap_small_ratio"]),
        ]
    )


def _collapse_stability() -> str:
    f = stability.derive_flow_linearisation("D1")
    s = stability.derive_sweep_factor("D1")
    return _aligned(
        [
            (r"J_{\text{flow}}", f["jacobian"]),
            (r"\det J", f["det"]),
            (r"\operatorname{tr} J", f["trace"]),
            (r"\beta_c\ (\det J = 0)", f["beta_c"]),
            (r"\partial b_{t+1}/\partial b_t\ (\text{sweep factor})", s["factor"]),
            (r"\beta_c\ (\text{factor} = 1)", s["beta_c"]),
        ]
    )


def _water_filling() -> str:
    wf = stationarity.derive_water_filling()
    ag = stationarity.derive_activation_gain()
    return _aligned(
        [
            ("w", wf["w"]),
            ("b", wf["b"]),
            ("a", wf["a"]),
            ("z = D", wf["z"]),
            (r"\Sigma_X = b^2\mu + w", wf["Sigma_X"]),
            (r"\mu_{\text{boundary}}\ (u = b^2\mu > 0 \iff \mu > \mu_{\text{boundary}})", wf["mu_boundary"]),
            (r"\partial u/\partial\mu", wf["du_dmu"]),
            (r"\Delta\mathcal L_{\text{activate}}(x = \mu/D)", ag["delta_x"]),
            (
                r"\Delta\mathcal L_{\text{activate}}\big/\tfrac{\beta-1}2",
                sp.expand(sp.simplify(ag["delta_x"] / ((sp.Symbol("beta", positive=True) - 1) / 2))),
            ),
            (r"\partial_x\Delta\mathcal L_{\text{activate}}", ag["ddelta_dx"]),
        ]
    )


def _wf_information() -> str:
    i = stationarity.derive_water_filling_information()
    return _aligned(
        [
            (r"I(X;Y)_i", i["mi_xy"]),
            (r"\mathcal K_i", i["kl"]),
            (r"I(X;V)_i", i["mi_xv"]),
            (r"\mathcal R_i", i["recon"]),
            (r"E_i", i["E"]),
            (r"\partial_\beta I(X;Y)_i", i["dmi_dbeta"]),
            (r"\partial_\lambda I(X;Y)_i", i["dmi_dlam"]),
        ]
    )


def _equivalence() -> str:
    d = objective.derive_decomposition()
    e = spectrum.derive_equivalence()
    return _aligned(
        [
            (
                r"\mathcal L_{\lambda\beta} - (\mathcal R + \mathcal K) - [\lambda\operatorname{tr}E"
                r" + (\beta-1)\mathcal K]",
                d["split"],
            ),
            (
                r"[\ldots] - \mathcal L^{\mathrm{D3}}_{\beta-1,\ \sigma_d^2 = 1/(2\lambda)} + \tfrac"
                r" n2\log\tfrac\pi\lambda",
                d["second_bracket"],
            ),
            (
                r"\mathcal L^{\mathrm{D3}}_{\lambda} - \mathcal L^{\mathrm{D3}}_{\sigma_{\rm eff}} -"
                r" \tfrac n2\log\tfrac{\sigma_d^2}{\sigma_{\rm eff}^2}",
                d["sigma_eff"],
            ),
        ]
        + [
            (rf"{k}_{{\mathrm{{wf}}}} - {k}_{{\mathrm{{Lucas}}}}(\beta-1, 1/(2\lambda))", v)
            for k, v in e.items()
        ]
    )


def _beta_one() -> str:
    d = dynamics.derive_beta_one()
    return _aligned(
        [
            (r"k_{t+1}/k_t\ (\beta=1,\lambda=0)", d["k_ratio_beta1"]),
            (r"\mathcal L_{\mathrm{wf},i} - \tfrac12(\log2\pi\mu + 1)", d["wf_loss_gap"]),
            (r"\lim_{\beta\to1^+}", d["wf_loss_limit"]),
            (r"\lim_{\beta\to1^+}\mathcal R_i", d["recon_limit"]),
            (r"\mathcal L|_{\Sigma_X=1,\lambda=0}(w)", d["profile_beta_lt1"]),
        ]
    )


def _rotation() -> str:
    r = objective.derive_rotation_invariance()
    return _aligned(
        [
            (
                r"\mathcal L(RB, R\Sigma_WR^\top, AR^\top, \Sigma_Z) - \mathcal L(B,\Sigma_W,A,\Sigma_Z)",
                r["loss_difference"],
            ),
            (r"\Sigma_{W,R}^{-1}(RB) - RK", r["gain_residual"]),
        ]
    )


def _lucas() -> str:
    th = stationarity.derive_lucas_in_theta()
    luc = stationarity.derive_lucas()
    t = stability.derive_thresholds()
    return _aligned(
        [
            (r"\theta = w\mu", luc["theta"]),
            ("w", th["w"]),
            ("b", th["b"]),
            ("a", th["a"]),
            (r"k = b/w", th["k"]),
            (r"E_i", th["E"]),
            (r"\mu^\ast\ (\det J_{\text{flow}} = 0)", t["T17"]),
        ]
    )


def _rate_distortion() -> str:
    r = rate_distortion.derive_rate_distortion()
    return _aligned(
        [
            (r"\mathcal R_{\mathrm{rate},i}", r["rate_i"]),
            (r"\mathcal D_i", r["distortion_i"]),
            (r"\mathcal R_{\mathrm{rate}}", r["rate_total"]),
            (r"\mathcal D", r["distortion_total"]),
            (r"d\mathcal D/d\mathcal R_{\mathrm{rate}}", r["slope"]),
            (r"\min\mathcal L_i\ (\lambda=0)", r["value_i"]),
            (r"\min\mathcal L_i - (\S4\text{ closed form})", r["value_residual"]),
        ]
    )


def _learned_isotropic() -> str:
    d = stationarity.derive_learned_isotropic()
    t = stability.derive_thresholds()
    return _aligned(
        [
            (r"\partial_{\sigma_d^2} = 0 \Rightarrow \sigma_d^2", d["sigma_d2_stationary"]),
            (r"\text{fixed point}", d["fixed_point"]),
            (r"\sigma_d^2\ (\beta=1,\lambda=0)", d["tipping_bishop"]),
            (r"\sigma_d^2\ (\lambda=0)", d["lam0"]),
            (r"\mu_1^\ast\ (\text{total collapse, }\sigma_d^2 = s_0)", t["T19"]),
        ]
    )


def _diag() -> str:
    r = kumar_poole.derive_rotation_gap()
    return _aligned(
        [
            (r"(R^\top HR)_{12}", r["off_diagonal"]),
            (r"\Delta\mathcal L_{\text{rotate}}", r["gap"]),
            (r"\text{product excess}", r["product_excess"]),
        ]
    )


def _kumar_poole() -> str:
    k = kumar_poole.derive_kumar_poole()
    return _aligned(
        [
            (r"\Sigma^\ast", k["Sigma_star"]),
            (r"\Sigma^\ast - (I + H/\beta)^{-1}", k["Sigma_star_residual"]),
            (r"\min_\Sigma\mathcal L_\beta - \mathcal L_{\det}\ (\text{full})", k["full_gap"]),
            (r"\Sigma^\ast_{\text{diag}}", k["diag_Sigma_star"].T),
            (r"\min_{\Sigma\ \text{diag}}\mathcal L_\beta - \mathcal L_{\det,\text{diag}}", k["diag_gap"]),
            (r"\text{Hadamard gap}", k["hadamard_gap"]),
            (r"\lim_{\beta\to\infty}\tfrac\beta2\log\det(I + H/\beta)", k["large_beta"]),
            (r"\partial_\beta[\tfrac\beta2\log(1 + h/\beta)],\ x = h/\beta", k["monotone_dbeta"]),
            (r"\partial_x", k["monotone_dx"]),
            (r"\mu^\ast - (H + \beta I)^{-1}A^\top\Sigma_Z^{-1}(y - c)", k["mean_star_residual"]),
        ]
    )


def _ichikawa_ode() -> str:
    rhs = ichikawa.ode_rhs()
    inv = ichikawa.derive_invariance()
    names = [r"\dot m", r"\dot{\tilde m}", r"\dot Q", r"\dot{\tilde Q}", r"\dot R", r"\dot v"]
    return _aligned(
        list(zip(names, rhs, strict=True))
        + [(r"\dot v|_{v=1}", inv["vdot_at_1"]), (r"\lim_{v\to0^+}\dot v", inv["vdot_at_0"])]
    )


def _ichikawa_fixed() -> str:
    f = ichikawa.derive_fixed_points()
    s = ichikawa.derive_superfluous()
    return _aligned(
        [(latex(k), v) for k, v in f["point"].items()]
        + [
            (r"\text{RHS at the point}", f["residual"].T),
            (r"\varepsilon_g^\ast", f["eps_g"]),
            (r"\arg\min_\beta\varepsilon_g^\ast", f["beta_opt"]),
            (r"\varepsilon_g^\ast(\eta)", f["eps_g_at_opt"]),
            (r"\text{superfluous latent: }Q,\ v", sp.Matrix([[s["Q"], s["v"]]])),
            (r"\text{superfluous latent active iff }\eta >", s["boundary"]),
        ]
    )


def _ichikawa_threshold() -> str:
    t = ichikawa.derive_threshold()
    f = ichikawa.derive_fixed_points()
    s = ichikawa.s_noise
    return _aligned(
        [
            (r"\text{RHS at collapse}", f["collapsed_residual"].T),
            (
                r"\{J_{ij}\ \text{above the block diagonal, and }(\text{bulk},(m,\tilde m))\}",
                sp.FiniteSet(*t["off_diagonal_blocks"]),
            ),
            (r"J_{vv}", t["v_eigenvalue"]),
            (r"J_{(m,\tilde m)}", t["jacobian"]),
            (r"\det J_{(m,\tilde m)}", t["det"]),
            (r"\operatorname{tr}J_{(m,\tilde m)}", t["trace"]),
            (r"\beta_c(\kappa)", t["beta_c"]),
            (r"\beta_c(0)", t["beta_c_kappa0"]),
            (r"J_{(Q,\tilde Q,R)}", t["bulk_jacobian"]),
            (r"\mathcal L\ (S\mapsto A_\eta S + SA_\eta^\top)", t["L"]),
            (r"\Pi\ (S\mapsto GSG^\top)", t["Pi"]),
            (
                r"\{\text{entries of } J_{(Q,\tilde Q,R)} - \tau(\mathcal L + \tau\eta^2\Pi)\}",
                sp.FiniteSet(*t["bulk_structure"]),
            ),
            (r"\operatorname{eig}\Pi", t["Pi_eigenvalues"].T),
            (r"\det\mathcal L", t["bulk_cubic_at_0"]),
            (r"\text{root in }\beta\text{ of its second factor}", sp.FiniteSet(*t["bulk_beta_c"])),
            (rf"\det(\mathcal L + {sp.latex(s)}\Pi)\ (\kappa = 0)", t["bulk_cubic_kappa0"]),
        ]
    )


def _controllers() -> str:
    tel = controllers.derive_telescoping()
    eq = controllers.derive_equilibria()
    aw = controllers.derive_anti_windup()
    return _aligned(
        [
            (r"\beta_{\rm raw}(6) - \text{positional form}", tel["residual"]),
            (r"e\ \text{at an integrator equilibrium}", eq["integrator_equilibrium_e"]),
            (r"\beta^\ast_{\mathrm{D3}}", eq["beta_star_D3"]),
            (r"\beta^\ast_{\mathrm{D1}}", eq["beta_star_D1"]),
            (r"\partial_\beta\mathcal R_{\mathrm{rate}}\ (\mathrm{D3})", eq["drate_dbeta_D3"]),
            (r"\partial\beta_{\rm raw}/\partial e", eq["dbeta_de"]),
            (r"(\beta_{\rm raw} - \beta_{\min})|_{I = -K_p}", aw["lock_margin"]),
            (r"\text{same} + K_p\sigma(e)", aw["lock_margin_sign_check"]),
            (r"e(1)\ \text{reaching}\ I = -K_p\ \text{from}\ I = 0", aw["lock_error"]),
            (r"\nabla_{(s, e)}(-K_ps - K_ie)", aw["floor_gradient"]),
            (r"I_{\min} = (-K_ps - K_ie)|_{s = 1, e = C}", aw["floor"]),
            (r"I(t+1) - I(t)\ \text{at}\ e = -\delta\ (\text{clamping})", aw["increment"]),
            (r"k\ \text{with}\ \beta_{\min} + K_p/2 + I_{\min} + kK_i\delta = b", aw["steps_to_level"]),
        ]
    )


def _lucas_global() -> str:
    g = optimality.derive_global_optimum()
    return _aligned(
        [
            (
                r"\mathcal L^{\mathrm{D3}}(B^\ast(A),\Sigma_W^\ast(A),A) - P(A)\ (n=3,m=2,\text{ rational})",
                g["profile_residual"],
            ),
            (
                r"\frac{a^2}{\sigma_d^2(a^2/\sigma_d^2+\beta)} - \frac{s^2}{s^2+\beta}\Big|_{a=\sigma_d s}",
                g["gain_residual"],
            ),
            (r"\varphi_\mu(y)", g["phi"]),
            (r"\varphi_\mu'(y)", g["dphi"]),
            (r"\varphi_\mu''(y)", g["d2phi"]),
            (r"y^\ast\ (\varphi' = 0)", g["y_star"]),
            (r"s^{\ast2}\ (y = \beta/(s^2+\beta))", g["s2_star"]),
            (r"\varphi_\mu(1)", g["phi_at_1"]),
            (r"\varphi_\mu(y^\ast)", g["phi_star"]),
            (
                r"\varphi_\mu(y^\ast) - [\mathcal L_i(\text{Lucas}) - \mathcal L_i(\text{collapsed})]\ (\lambda=0)",
                g["phi_star_minus_lucas"],
            ),
            (r"\sigma_d s^\ast - a_{\text{Lucas}}\ (\lambda=0)", g["a_star_minus_lucas"]),
        ]
    )


def _water_filling_global() -> str:
    t = optimality.derive_tight_elbo()
    return _aligned(
        [
            (r"a^2 + z - \mu", t["marginal_minus_mu"]),
            (r"w - z/(a^2 + z)", t["w_minus_posterior"]),
            (r"b - a/(a^2 + z)", t["b_minus_posterior"]),
        ]
    )


def _gain_spectra() -> str:
    sp_ = spectrum.derive_gain_spectra()
    rows = []
    for v in ("D1", "D3"):
        rows += [(rf"b_i^{{\mathrm{{{v}}}}}", sp_[v]["b"]), (rf"k_i^{{\mathrm{{{v}}}}}", sp_[v]["k"])]
    return _aligned(rows)


#: block name -> renderer. Names are ``<slug>/<what>``.
BLOCKS: dict[str, Callable[[], str]] = {
    "population-loss/identities": _population,
    "matrix-gradients/conditions": _gradients,
    "decoder-block/solution": _decoder,
    "encoder-block/solution": _encoder,
    "gain-identity/residuals": _gain_identity,
    "gain-contraction/ratio": _contraction,
    "raw-gain-bound/caution": _raw_gain,
    "collapse-limit/point": _collapse_limit,
    "collapse-global-optimum/stationary-set": _global_optimum,
    "mi-chain/bound": _mi_chain,
    "collapse-stability/linearisation": _collapse_stability,
    "water-filling/solution": _water_filling,
    "water-filling/global": _water_filling_global,
    "water-filling-information/terms": _wf_information,
    "lambda-beta-equivalence/split": _equivalence,
    "beta-one-degenerate/limits": _beta_one,
    "rotation-invariance/residuals": _rotation,
    "lucas-threshold/solution": _lucas,
    "lucas-threshold/spectra": _gain_spectra,
    "lucas-threshold/global": _lucas_global,
    "lucas-rate-distortion/terms": _rate_distortion,
    "learned-isotropic/variance": _learned_isotropic,
    "diag-identifiability/rotation-gap": _diag,
    "kumar-poole-exact/certificates": _kumar_poole,
    "ichikawa-ode/rhs": _ichikawa_ode,
    "ichikawa-fixed-point/point": _ichikawa_fixed,
    "ichikawa-threshold/jacobian": _ichikawa_threshold,
    "pi-equilibrium/identities": _controllers,
}


def block_names(text: str) -> list[str]:
    """Names of the generated blocks a note contains, in order."""
    return [m.group("name") for m in _BLOCK_RE.finditer(text)]


def regenerate(text: str) -> str:
    """The note with every generated block re-rendered. Unknown block names raise ``KeyError``."""

    def repl(m: re.Match) -> str:
        name = m.group("name")
        if name not in BLOCKS:
            raise KeyError(f"unknown generated block {name!r}; known: {sorted(BLOCKS)}")
        return m.group(1) + BLOCKS[name]() + m.group(4)

    return _BLOCK_RE.sub(repl, text)


def default_proofs_dir() -> Path:
    """``proofs/`` of the source checkout (next to the ``linvae`` package)."""
    return Path(__file__).resolve().parents[2] / "proofs"


def stale_notes(proofs_dir: Path | None = None) -> list[str]:
    """Notes (file names) whose generated blocks differ from a fresh rendering."""
    d = proofs_dir or default_proofs_dir()
    return [p.name for p in sorted(d.glob("*.md")) if regenerate(p.read_text()) != p.read_text()]


def write_notes(proofs_dir: Path | None = None) -> list[str]:
    """Re-render the generated blocks of every note in place; returns the names of the notes changed."""
    d = proofs_dir or default_proofs_dir()
    changed = []
    for p in sorted(d.glob("*.md")):
        old = p.read_text()
        new = regenerate(old)
        if new != old:
            p.write_text(new)
            changed.append(p.name)
    return changed
