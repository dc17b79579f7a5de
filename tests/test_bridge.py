"""Symbolic derivations vs the numeric module's hand-written formulas, at random rational points.

The two sides are independent codings (linvae.symbolic never imports jax; linvae.numeric never imports
sympy): the symbolic value is evaluated exactly at a rational point and rounded once, the numeric one is
float64, and they must agree at the ROUNDOFF tier.
"""

import functools
from fractions import Fraction

import jax.numpy as jnp
import numpy as np
import sympy as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from linvae import bridge
from linvae import numeric as nm
from linvae import symbolic as S
from linvae._tolerance import ROUNDOFF
from linvae.numeric import flow
from linvae.symbolic._symbols import a, b, beta, lam, mu, sigma_d2, w, z
from tests.helpers import assert_close


def exact(expr, values: dict) -> float:
    """Evaluate a sympy expression exactly at rational values, then round once to float64."""
    vals = {
        k: sp.Rational(v.numerator, v.denominator) if isinstance(v, Fraction) else sp.sympify(v)
        for k, v in values.items()
    }
    return float(sp.N(sp.sympify(expr).subs(vals), 30))


def rationals(lo: int, hi: int, den: int = 16):
    return st.builds(Fraction, st.integers(lo * den, hi * den), st.just(den))


@st.composite
def spectrum3(draw):
    """Three distinct rational eigenvalues, descending."""
    xs = draw(st.lists(rationals(1, 40), min_size=3, max_size=3, unique=True))
    return sorted(xs, reverse=True)


@functools.cache
def _wf():
    return S.derive_water_filling()


@given(spectrum3(), rationals(2, 12), rationals(1, 6))
def test_water_filling_per_direction(mus, beta_, lam_):
    prob = nm.from_spectrum(np.array([float(x) for x in mus]))
    st_ = nm.water_filling(prob, float(beta_), float(lam_), m=3)
    D = exact(_wf()["D"], {beta: beta_, lam: lam_})
    for i, mu_ in enumerate(mus):
        vals = {mu: mu_, beta: beta_, lam: lam_}
        if float(mu_) > D:
            assert_close(st_.Sigma_W[i, i], exact(_wf()["w"], vals), ROUNDOFF, "w_i")
            assert_close(abs(st_.B[i, i]), exact(_wf()["b"], vals), ROUNDOFF, "b_i")
            assert_close(abs(st_.A[i, i]), exact(_wf()["a"], vals), ROUNDOFF, "a_i")
            assert_close(st_.Sigma_Z[i, i], exact(_wf()["z"], vals), ROUNDOFF, "z_i")
            k_sym = exact(S.derive_gain_spectra()["D1"]["k"], vals)
            assert_close(abs(np.linalg.solve(st_.Sigma_W, st_.B)[i, i]), k_sym, ROUNDOFF, "k_i")
        else:
            assert float(st_.B[i, i]) == 0.0 and float(st_.Sigma_W[i, i]) == 1.0


@given(spectrum3(), rationals(1, 12), rationals(0, 3), rationals(1, 8))
def test_lucas_per_direction(mus, beta_, lam_, s2):
    luc = S.derive_lucas()
    prob = nm.from_spectrum(np.array([float(x) for x in mus]))
    st_ = nm.lucas(prob, float(beta_), float(lam_), 3, float(s2))
    th = exact(luc["theta"], {beta: beta_, lam: lam_, sigma_d2: s2})
    for i, mu_ in enumerate(mus):
        vals = {mu: mu_, beta: beta_, lam: lam_, sigma_d2: s2}
        if float(mu_) > th:
            assert_close(st_.Sigma_W[i, i], exact(luc["w"], vals), ROUNDOFF, "w_i")
            assert_close(abs(st_.B[i, i]), exact(luc["b"], vals), ROUNDOFF, "b_i")
            assert_close(abs(st_.A[i, i]), exact(luc["a"], vals), ROUNDOFF, "a_i")
            k_sym = exact(S.derive_gain_spectra()["D3"]["k"], vals)
            assert_close(abs(np.linalg.solve(st_.Sigma_W, st_.B)[i, i]), k_sym, ROUNDOFF, "k_i")


@given(spectrum3(), rationals(0, 5))
def test_collapse_threshold_d1(mus, lam_):
    prob = nm.from_spectrum(np.array([float(x) for x in mus]))
    expected = exact(S.derive_thresholds()["T11"], {mu: mus[0], lam: lam_})
    assert_close(flow.collapse_threshold(prob, float(lam_)), expected, ROUNDOFF, "beta_c")


@given(spectrum3(), rationals(0, 5), rationals(1, 8))
def test_collapse_threshold_d3(mus, lam_, s2):
    prob = nm.from_spectrum(np.array([float(x) for x in mus]))
    v = nm.Variant(decoder="fixed", sigma_d2=float(s2))
    # T17: direction 1 collapses iff mu_1 <= mu*(beta); the threshold in beta solves mu_1 = mu*(beta)
    (beta_c,) = sp.solve(sp.Eq(S.derive_thresholds()["T17"], mu), beta)
    expected = exact(beta_c, {mu: mus[0], lam: lam_, sigma_d2: s2})
    assert_close(flow.collapse_threshold(prob, float(lam_), v), expected, ROUNDOFF, "beta_c (D3)")


@given(rationals(1, 20), rationals(-4, 4), rationals(1, 10), rationals(1, 10), rationals(1, 6))
def test_scalar_blocks(mu_, b_, w_, beta_, lam_):
    """n = m = 1: the numeric blocks vs the solved per-direction blocks."""
    Sy = jnp.array([[float(mu_)]])
    A, Z = nm.decoder_block(Sy, jnp.array([[float(b_)]]), jnp.array([[float(w_)]]))
    dec = S.derive_decoder_block()
    vals = {mu: mu_, b: b_, w: w_}
    assert_close(A[0, 0], exact(dec[a], vals), ROUNDOFF, "a")
    assert_close(Z[0, 0], exact(dec[z], vals), ROUNDOFF, "z")
    B1, W1 = nm.encoder_block(A, Z, float(beta_), float(lam_))
    enc = S.derive_encoder_block()
    q = {k: sp.Rational(v.numerator, v.denominator) for k, v in vals.items()}
    at_exact = {a: dec[a].subs(q), z: dec[z].subs(q)}
    vals2 = {beta: beta_, lam: lam_}
    assert_close(B1[0, 0], exact(enc[b].subs(at_exact), vals2), ROUNDOFF, "b_next")
    assert_close(W1[0, 0], exact(enc[w].subs(at_exact), vals2), ROUNDOFF, "w_next")


def _rational_matrix(rng, r, c):
    return sp.Matrix(r, c, lambda i, j: sp.Rational(int(rng.integers(-9, 10)), int(rng.integers(1, 6))))


def _rational_spd(rng, n):
    G = _rational_matrix(rng, n, n)
    return G * G.T + sp.Rational(int(rng.integers(1, 9)), 4) * sp.eye(n)


@settings(max_examples=5)
@given(st.integers(0, 2**20))
def test_matrix_losses_and_gradients(seed):
    """Exact symbolic loss terms and gradients (n = 3, m = 2) vs nm.losses / nm.gradients_closed_form."""
    rng = np.random.default_rng(seed)
    n, m = 3, 2
    Sy, W, Z = _rational_spd(rng, n), _rational_spd(rng, m), _rational_spd(rng, n)
    B, A = _rational_matrix(rng, m, n), _rational_matrix(rng, n, m)
    be, la = sp.Rational(int(rng.integers(1, 40)), 7), sp.Rational(int(rng.integers(0, 40)), 11)
    sym = S.matrix_objective(Sy, B, W, A, Z, be, la)
    f = lambda M: np.array(M.evalf(30).tolist(), dtype=np.float64)  # noqa: E731
    prob_like = nm.Problem(
        jnp.eye(n), jnp.eye(n), jnp.asarray(0.0), jnp.asarray(f(Sy)), jnp.ones(n), jnp.eye(n)
    )
    st_ = nm.State(f(B), f(W), f(A), f(Z), 0, True, 0.0)
    num = nm.losses(prob_like, st_, float(be), float(la))
    for key in ("recon", "kl", "l2", "total"):
        assert_close(getattr(num, key), float(sp.N(sym[key], 30)), ROUNDOFF, key)
    # gradient in B: exact symbolic differentiation of the matrix objective
    Bs = sp.Matrix(m, n, lambda i, j: sp.Symbol(f"B{i}{j}"))
    Ls = S.matrix_objective(Sy, Bs, W, A, Z, be, la)["total"]
    gB = np.array(
        [
            [float(sp.N(sp.diff(Ls, Bs[i, j]).subs(dict(zip(Bs, B, strict=True))), 30)) for j in range(n)]
            for i in range(m)
        ]
    )
    g = nm.gradients_closed_form(prob_like.Sigma_Y, *(jnp.asarray(x) for x in st_[:4]), float(be), float(la))
    assert_close(g.B, gB, ROUNDOFF, "dL/dB")


def test_lambdify_jax_matches_exact():
    f = bridge.lambdify(_wf()["b"], (mu, beta, lam))
    assert_close(f(5.0, 3.0, 1.0), exact(_wf()["b"], {mu: 5, beta: 3, lam: 1}), ROUNDOFF, "lambdify jax")
    g = bridge.lambdify({"w": _wf()["w"], "D": _wf()["D"]}, (mu, beta, lam), modules="numpy")
    out = g(5.0, 3.0, 1.0)
    assert set(out) == {"w", "D"} and abs(out["D"] - 1.0) == 0.0


def test_latex_export_uses_project_names():
    s = bridge.latex(S.derive_lucas()["theta"])
    assert r"\sigma_d^2" in s and r"\lambda" in s
    assert bridge.latex_equation("D", _wf()["D"]).startswith("$$\nD = ")


@given(spectrum3(), rationals(2, 12), rationals(1, 6))
def test_water_filling_information_sum(mus, beta_, lam_):
    prob = nm.from_spectrum(np.array([float(x) for x in mus]))
    st_ = nm.water_filling(prob, float(beta_), float(lam_), m=3)
    info = nm.information(prob, st_)
    i = S.derive_water_filling_information()
    D = float(beta_ - 1) / float(2 * lam_)
    expected = sum(exact(i["mi_xy"], {mu: x, beta: beta_, lam: lam_}) for x in mus if float(x) > D)
    assert_close(info.mi_xy, expected, ROUNDOFF, "I(X;Y)")


@given(st.lists(rationals(1, 30), min_size=5, max_size=5, unique=True))
def test_tipping_bishop_variance(mus):
    mus = sorted(mus, reverse=True)
    prob = nm.from_spectrum(np.array([float(x) for x in mus]))
    m = 2
    st_ = nm.tipping_bishop(prob, m)
    from linvae.symbolic.stationarity import S_rest, m_dim, n_dim

    expected = exact(
        S.derive_learned_isotropic()["tipping_bishop"], {S_rest: sum(mus[m:]), n_dim: 5, m_dim: m}
    )
    assert_close(st_.Sigma_Z[0, 0], expected, ROUNDOFF, "sigma_d2")


# --- [IH23] order-parameter ODE (T22-T24) -----------------------------------------------------------


@settings(max_examples=25)
@given(
    st.lists(rationals(-3, 3), min_size=6, max_size=6),
    rationals(1, 4),
    rationals(1, 4),
    rationals(1, 6),
    rationals(1, 2),
    rationals(0, 2),
)
def test_ichikawa_ode_rhs(state, rho_, eta_, beta_, tau_, kappa_):
    from linvae.numeric import ichikawa as ih
    from linvae.symbolic import ichikawa as sih
    from linvae.symbolic._symbols import eta, kappa, rho, tau

    state = list(state)
    state[2], state[3], state[5] = abs(state[2]), abs(state[3]), abs(state[5]) + Fraction(1, 8)
    vals = dict(zip(sih.STATE, state, strict=True))
    vals.update({rho: rho_, eta: eta_, beta: beta_, tau: tau_, kappa: kappa_})
    for noise in (True, False):
        expected = [exact(e, vals) for e in sih.ode_rhs(noise=noise)]
        op = ih.OrderParams(*(jnp.asarray(float(x)) for x in state))
        h = ih.Hyper(*(jnp.asarray(float(x)) for x in (rho_, eta_, beta_, tau_, kappa_)))
        got = [float(x) for x in ih.ode_scalar(op, h, noise=noise)]
        assert_close(np.array(got), np.array(expected), ROUNDOFF, f"RHS (noise={noise})")


@given(rationals(1, 4), rationals(1, 4), rationals(0, 3))
def test_ichikawa_fixed_point_and_threshold(rho_, eta_, kappa_):
    from linvae.numeric import ichikawa as ih
    from linvae.symbolic._symbols import eta, kappa, rho

    fp = S.derive_fixed_points()
    Lam = rho_ + eta_
    beta_ = Lam / 3
    vals = {rho: rho_, eta: eta_, beta: beta_}
    got = ih.fixed_point(float(rho_), float(eta_), float(beta_))
    names = ("m", "tilde_m", "Q", "tilde_Q", "R", "v")
    sym_point = {k.name: v for k, v in fp["point"].items()}
    for name, value in zip(names, got, strict=True):
        assert_close(value, exact(sym_point[name], vals), ROUNDOFF, name)
    assert_close(
        ih.steady_generalisation_error(float(rho_), float(eta_), float(beta_)),
        exact(fp["eps_g"], vals),
        ROUNDOFF,
        "eps_g*",
    )
    bc = S.derive_threshold()["beta_c"]
    assert_close(
        ih.collapse_threshold(float(rho_), float(eta_), float(kappa_)),
        exact(bc, {rho: rho_, eta: eta_, kappa: kappa_}),
        ROUNDOFF,
        "beta_c(kappa)",
    )
    sup = S.derive_superfluous()
    Q, v = ih.superfluous_latent(float(eta_), float(eta_ / 2))
    assert_close(
        np.array([Q, v]),
        np.array(
            [exact(sup["Q"], {eta: eta_, beta: eta_ / 2}), exact(sup["v"], {eta: eta_, beta: eta_ / 2})]
        ),
        ROUNDOFF,
        "superfluous",
    )


# --- controllers (T25) ----------------------------------------------------------------------------


@given(spectrum3(), rationals(1, 3, den=8), rationals(1, 8), rationals(0, 2))
def test_equilibrium_beta(mus, C, s2, lam_):
    from linvae.numeric import schedules
    from linvae.symbolic._symbols import C_set
    from linvae.symbolic.controllers import logsum, n_active

    eq = S.derive_equilibria()
    prob = nm.from_spectrum(np.array([float(x) for x in mus]))
    for variant, key, level_of in (
        (
            nm.Variant(decoder="fixed", sigma_d2=float(s2)),
            "beta_star_D3",
            lambda b: b / (1 / float(s2) + 2 * float(lam_)),
        ),
        (nm.D1, "beta_star_D1", lambda b: (b - 1) / (2 * float(lam_))),
    ):
        if variant is nm.D1 and lam_ == 0:
            continue
        got = schedules.equilibrium_beta(prob, float(C), float(lam_), 3, variant)
        k = sum(float(x) > level_of(got) for x in mus)
        logs = sum(sp.log(sp.Rational(x.numerator, x.denominator)) for x in mus[:k])
        expected = exact(eq[key].subs({logsum: logs, n_active: k}), {C_set: C, lam: lam_, sigma_d2: s2})
        assert_close(got, expected, ROUNDOFF, key)


@settings(max_examples=20)
@given(st.lists(st.floats(-2.0, 2.0), min_size=6, max_size=6), st.floats(0.0, 0.1), st.floats(0.0, 0.01))
def test_dynamicvae_telescoping(errors, Kp, Ki):
    """The numeric incremental controller (window 1, large β(0): no clipping) equals the symbolic positional
    form evaluated at the same errors."""
    from linvae.numeric import schedules
    from linvae.symbolic._symbols import K_i, K_p
    from linvae.symbolic.controllers import beta0

    tel = S.derive_telescoping(6)
    ctrl = schedules.dynamicvae_pi(
        schedules.constant_setpoint(1.0), Kp=Kp, Ki=Ki, beta_min=0.1, beta_init=50.0, window=1
    )
    state = ctrl.init()
    e_syms = sorted(
        (s for s in tel["positional"].free_symbols if s.name.startswith("e_")), key=lambda s: int(s.name[2:])
    )
    for t, e in enumerate(errors, start=1):
        _, state = ctrl.update(1.0 - e, state)  # set point 1: e = 1 - KL
        f = bridge.lambdify(
            S.derive_telescoping(t)["positional"], [beta0, K_p, K_i, *e_syms[:t]], modules="numpy"
        )
        assert_close(float(state.beta_raw), f(50.0, Kp, Ki, *errors[:t]), ROUNDOFF, f"beta_raw({t})")
