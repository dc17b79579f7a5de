"""The symbolic derivations: identities checked exactly (simplify(lhs - rhs) == 0, or exact rationals).

Each test states the expected closed form of docs/theory.md independently of how linvae.symbolic derived it,
so a wrong derivation fails here.
"""

import pytest
import sympy as sp

from linvae import symbolic as S
from linvae.symbolic._symbols import a, b, beta, eta, kappa, lam, mu, rho, sigma2, sigma_d2, theta, w, z


def is_zero(expr) -> bool:
    if isinstance(expr, sp.MatrixBase):
        return all(is_zero(e) for e in expr)
    return sp.simplify(expr) == 0


def same(x, y) -> bool:
    return is_zero(sp.sympify(x) - sp.sympify(y))


def test_blocks_match_section_3_3():
    dec, enc = S.derive_decoder_block(), S.derive_encoder_block()
    s = b**2 * mu + w
    assert same(dec[a], mu * b / s) and same(dec[z], mu * w / s)
    nu = 1 / z + 2 * lam
    assert same(enc[w], beta / (beta + a**2 * nu)) and same(enc[b], a * nu / (beta + a**2 * nu))


def test_block_convexity():
    c = S.derive_block_convexity()
    H = c["encoder_hessian"]
    assert H[0, 1] == 0 and H[1, 0] == 0
    assert H[0, 0].subs({mu: 2, a: 3, z: 5, lam: 1, beta: 7}) > 0 and H[1, 1].subs({beta: 2, w: 3}) > 0


def test_water_filling_closed_form():
    wf = S.derive_water_filling()
    D = (beta - 1) / (2 * lam)
    assert same(wf["D"], D) and same(wf["w"], D / mu) and same(wf["Sigma_X"], 1)
    assert same(wf["b"] ** 2, (1 - D / mu) / mu) and same(wf["a"] ** 2, mu - D)
    assert same(wf["mu_boundary"], D)
    assert same(wf["k"] ** 2, (mu - D) / D**2)


def test_activation_gain_is_negative_and_decreasing():
    ag = S.derive_activation_gain()
    x = ag["x"]
    assert same(ag["delta_x"], (beta - 1) / 2 * (sp.log(x) - (x - 1)))
    # log x - (x - 1) < 0 for x > 1, and its x-derivative (1 - x)/x < 0
    assert same(ag["ddelta_dx"], (beta - 1) / 2 * (1 - x) / x)


def test_lambda_zero_has_only_collapse():
    sols = S.derive_stationary_set_lambda0()
    assert sols == [{b: 0, w: 1}]
    assert S.derive_collapse_branch("D1") == {b: 0, a: 0, w: 1, z: mu}


def test_water_filling_information():
    i = S.derive_water_filling_information()
    D = (beta - 1) / (2 * lam)
    assert same(sp.expand_log(i["mi_xy"] - sp.log(mu / D) / 2, force=True), 0)
    assert same(sp.expand_log(i["kl"] - i["mi_xy"], force=True), 0)
    assert same(sp.expand_log(i["mi_xv"] - sp.log(mu / (D + sigma2 * (1 - D / mu))) / 2, force=True), 0)
    assert same(i["E"], D)
    assert same(i["dmi_dbeta"], -1 / (2 * (beta - 1))) and same(i["dmi_dlam"], 1 / (2 * lam))


def test_lucas_depends_on_theta_only():
    th = S.derive_lucas_in_theta()
    assert same(th["w"], theta / mu) and same(th["b"] ** 2, (mu - theta) / mu**2)
    assert same(th["a"] ** 2, mu - theta) and same(th["E"], theta) and same(th["Sigma_X"], 1)
    assert lam not in th["w"].free_symbols | th["b"].free_symbols | th["a"].free_symbols
    assert same(S.derive_lucas()["theta"], beta / (1 / sigma_d2 + 2 * lam))


def test_learned_isotropic():
    iso = S.derive_learned_isotropic()
    from linvae.symbolic.stationarity import S_rest, m_dim, n_dim, s_0

    assert same(iso["tipping_bishop"], S_rest / (n_dim - m_dim))
    assert same(iso["lam0"], S_rest / (n_dim - beta * m_dim))
    assert same(iso["collapse_boundary"], beta * s_0 / (1 + 2 * lam * s_0))
    for root in iso["general"]:  # each root satisfies the fixed-point equation
        assert same(iso["fixed_point"].lhs.subs(sigma_d2, root), iso["fixed_point"].rhs.subs(sigma_d2, root))


def test_gain_identity_scalar_and_matrix():
    gi = S.derive_gain_identity()
    assert gi["residual_D1"] == 0
    assert not is_zero(gi["residual_D3"])  # D3's decoder is not the exact posterior
    mg = S.derive_matrix_gain_identity()
    for key in ("symbolic", "gradient_decoder", "gradient_encoder", "rational"):
        assert is_zero(mg[key]), key


def test_decoder_forms_and_population_identities():
    for v in S.derive_decoder_forms().values():
        assert is_zero(v)
    for v in S.derive_population_identities().values():
        assert is_zero(v)
    for v in S.derive_matrix_gradients().values():
        assert is_zero(v)
    for v in S.derive_rotation_invariance().values():
        assert is_zero(v)
    for v in S.derive_decomposition().values():
        assert is_zero(v)
    for v in S.derive_equivalence().values():
        assert is_zero(v)


def test_contraction_and_caution_case():
    c = S.derive_contraction()
    assert same(c["k_ratio"], 1 / beta) and c["scalar_law"] == 0
    assert (c["fixed_point_b"], c["fixed_point_w"]) == (0, 1)
    assert sp.factor(c["w_gap"]).subs({b: 1, w: 1, mu: 1, lam: 0, beta: 2}) > 0
    cc = S.derive_caution_case()
    assert cc["b1_over_b0"] > 1 and cc["k1_over_k0"] == sp.Rational(1, 2)
    assert all(cc["k"][t + 1] / cc["k"][t] == sp.Rational(1, 2) for t in range(3))


def test_beta_one():
    d = S.derive_beta_one()
    assert d["k_ratio_beta1"] == 1 and d["wf_loss_limit"] == 0 and d["recon_limit"] == -sp.oo
    assert same(d["profile_dlogw"], (1 - beta) / 2)


def test_thresholds_are_derived_values():
    t = S.derive_thresholds()
    assert same(t["T11"], 1 + 2 * lam * mu) and same(t["T11_map"], t["T11"])
    assert same(t["T17"], beta / (1 / sigma_d2 + 2 * lam))
    sf = S.derive_sweep_factor("D1")
    assert same(sf["factor"], (1 + 2 * lam * mu) / beta) and sf["dw_next_dw"] == 0
    fl = S.derive_flow_linearisation("D1")
    nu = 1 / mu + 2 * lam
    assert is_zero(fl["jacobian"] - sp.Matrix([[-beta * mu, nu * mu], [nu * mu, -nu]]))
    Lam = rho + eta
    assert same(t["T24"], Lam / (1 + kappa) - kappa / Lam)


def test_gain_spectra():
    sp_ = S.derive_gain_spectra()
    D = (beta - 1) / (2 * lam)
    assert same(sp_["D1"]["k"] ** 2, (mu - D) / D**2)
    th = beta / (1 / sigma_d2 + 2 * lam)
    assert same(sp_["D3"]["k"] ** 2, (mu - th) / th**2) and same(sp_["D3"]["level"], th)


def test_mi_bound():
    m = S.derive_mi_bound()
    assert m["mi_identity"] == 0 and m["log_gap_at_0"] == 0


def test_rate_distortion():
    r = S.derive_rate_distortion()
    assert same(r["slope"], -2 * theta) and r["value_residual"] == 0 and same(r["distortion_i"], theta)


def test_kumar_poole():
    k = S.derive_kumar_poole()
    for key in (
        "Sigma_star_residual",
        "full_gap",
        "diag_gap",
        "hadamard_closed_residual",
        "mean_star_residual",
    ):
        assert is_zero(k[key]), key
    from linvae.symbolic.kumar_poole import h11, h22, x

    assert same(k["large_beta"], (h11 + h22) / 2)
    assert same(k["monotone_dx"], x / (2 * (1 + x) ** 2)) and k["monotone_at_0"] == 0
    g = S.derive_rotation_gap()
    assert same(g["product_excess"], (g["off_diagonal"]) ** 2)


def test_ichikawa():
    f = S.derive_fixed_points()
    assert is_zero(f["residual"]) and is_zero(f["collapsed_residual"])
    Lam = rho + eta
    assert same(f["point"][sp.Symbol("v", nonnegative=True)], beta / Lam)
    assert same(f["eps_g"], (sp.sqrt(rho) - sp.sqrt(Lam - beta)) ** 2)
    assert f["beta_opt"] == eta and f["eps_g_at_opt"] == 0
    th = S.derive_threshold()
    assert th["depends_on_tau"] == sp.false and same(th["beta_c_kappa0"], Lam)
    assert same(th["bulk_beta_c"][0], eta / (1 + kappa) - kappa / eta)
    inv = S.derive_invariance()
    assert inv["vdot_at_0"] == sp.oo
    s = S.derive_superfluous()
    assert same(s["Q"], eta - beta) and same(s["v"], beta / eta) and s["boundary"] == beta


def test_controllers():
    assert S.derive_telescoping()["residual"] == 0
    eq = S.derive_equilibria()
    from linvae.symbolic._symbols import C_set
    from linvae.symbolic.controllers import logsum, n_active

    assert eq["integrator_equilibrium_e"] == 0
    assert same(eq["beta_star_D1"], 1 + 2 * lam * sp.exp((logsum - 2 * C_set) / n_active))
    assert same(eq["rate_D3"].subs(beta, eq["beta_star_D3"]), C_set)
    e = sp.Symbol("e", real=True)
    assert eq["dbeta_de"].subs({e: 0}) < 0 or sp.simplify(eq["dbeta_de"].subs(e, 0)).is_negative


def test_derivations_return_sympy_not_floats():
    def walk(obj):
        if isinstance(obj, dict):
            for v in obj.values():
                yield from walk(v)
        elif isinstance(obj, list | tuple):
            for v in obj:
                yield from walk(v)
        else:
            yield obj

    for name in dir(S):
        if name.startswith("derive_"):
            fn = getattr(S, name)
            try:
                out = fn()
            except TypeError:
                out = fn("D1")
            for leaf in walk(out):
                assert isinstance(leaf, sp.Basic | sp.MatrixBase | bool), f"{name} returned {type(leaf)}"
                assert not isinstance(leaf, float)
                if isinstance(leaf, sp.Basic | sp.MatrixBase):
                    assert not leaf.atoms(sp.Float), f"{name} produced a float: {leaf}"


@pytest.mark.slow
def test_cli_report_and_proof_check(tmp_path):
    """``python -m linvae.symbolic --out`` writes the report; ``--check-proofs`` fails on a stale note."""
    import shutil
    import subprocess
    import sys

    from linvae.symbolic.notes import default_proofs_dir

    out = tmp_path / "derivations.txt"
    res = subprocess.run(
        [sys.executable, "-m", "linvae.symbolic", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 0, res.stderr
    text = out.read_text()
    for heading in (
        "Stationarity conditions",
        "Reverse water-filling",
        "Thresholds (derived)",
        "Encoder-gain spectra",
        "Gain identity",
    ):
        assert heading in text
    proofs = tmp_path / "proofs"
    shutil.copytree(default_proofs_dir(), proofs)
    note = proofs / "water-filling.md"
    note.write_text(note.read_text().replace(r"\frac{\beta - 1}{2 \lambda \mu}", "0", 1))
    cmd = [sys.executable, "-m", "linvae.symbolic", "--check-proofs", "--proofs-dir", str(proofs)]
    assert subprocess.run(cmd, capture_output=True, text=True, timeout=120).returncode == 1
    cmd_write = [sys.executable, "-m", "linvae.symbolic", "--write-proofs", "--proofs-dir", str(proofs)]
    assert subprocess.run(cmd_write, capture_output=True, text=True, timeout=120).returncode == 0
    assert note.read_text() == (default_proofs_dir() / "water-filling.md").read_text()
