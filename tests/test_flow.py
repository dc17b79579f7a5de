"""The gradient flow (linvae.numeric.flow): vector fields, an independent ODE oracle, stationary values.

Shapes are fixed (n = 4, m = 2, one lane per call unless stated) so every jitted solve compiles once.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.integrate
from hypothesis import given, settings
from hypothesis import strategies as st
from jax.flatten_util import ravel_pytree

import linvae.numeric as nm
from linvae._tolerance import FLOW, RATE, ROUNDOFF, SOLVER
from linvae.numeric import flow as fl
from tests.helpers import assert_close

N, M = 4, 2
VARIANTS = {
    "D1/E1": nm.Variant(),
    "D1/E2": nm.Variant(encoder="diagonal"),
    "D2/E1": nm.Variant(decoder="isotropic"),
    "D3/E1": nm.Variant(decoder="fixed", sigma_d2=0.3),
}
BLOCK = fl.FlowConfig(metric="block")
EUCLID = fl.FlowConfig()


@st.composite
def spectra(draw, n=N, lo=0.2, hi=5.0, min_ratio=1.15):
    """Distinct eigenvalues with consecutive ratios >= min_ratio (identifiable optima, docs/theory.md §10.7)."""
    top = draw(st.floats(lo * min_ratio ** (n - 1), hi))
    ratios = [draw(st.floats(min_ratio, 2.0)) for _ in range(n - 1)]
    mu = [top]
    for r in ratios:
        mu.append(max(mu[-1] / r, lo * 0.5))
    return np.array(mu)


def problem(mu, seed):
    q, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(len(mu), len(mu))))
    return nm.from_spectrum(mu, sigma2=0.5 * float(np.min(mu)), basis=q)


def random_point(prob, variant, seed):
    """A random (B, Sigma_W, A, Sigma_Z) of the variant's shape (unbatched)."""
    rng = np.random.default_rng(seed)
    B = rng.normal(size=(M, N))
    G = rng.normal(size=(M, M))
    W = G @ G.T + 0.5 * np.eye(M)
    if variant.encoder == "diagonal":
        W = np.diag(np.diag(W))
    A = rng.normal(size=(N, M))
    if variant.decoder == "full":
        H = rng.normal(size=(N, N))
        Z = H @ H.T / N + 0.3 * np.eye(N)
    elif variant.decoder == "isotropic":
        Z = rng.uniform(0.3, 2.0) * np.eye(N)
    else:
        Z = variant.sigma_d2 * np.eye(N)
    return tuple(jnp.asarray(x) for x in (B, W, A, Z))


@functools.cache
def _fields(variant):
    cf = fl.make_vector_field
    closed = fl.FlowConfig(variant=variant)
    auto = fl.FlowConfig(variant=variant, gradient="autodiff")
    block = fl.FlowConfig(variant=variant, metric="block")

    @jax.jit
    def run(Sigma_Y, point, beta, lam):
        y = fl.to_coordinates(point, closed)
        f1 = cf(Sigma_Y, closed)(0.0, y, (beta, lam))
        f2 = cf(Sigma_Y, auto)(0.0, y, (beta, lam))
        g = jax.grad(lambda p: nm.objective(*p, Sigma_Y, beta, lam))(point)
        fb = cf(Sigma_Y, block)(0.0, fl.to_coordinates(point, block), (beta, lam))
        # Directional derivative of the loss along the block field, projected onto the variant's
        # tangent space (a D3 decoder covariance and off-diagonal E2 entries do not move).
        descent = sum(jnp.sum(a * b) for a, b in zip(g, fb, strict=True))
        return f1, f2, descent

    return run


@pytest.mark.parametrize("name", list(VARIANTS))
@given(mu=spectra(), seed=st.integers(0, 2**31 - 1), beta=st.floats(0.3, 8.0), lam=st.floats(0.0, 3.0))
def test_closed_form_field_equals_autodiff(name, mu, seed, beta, lam):
    """T2 through the Cholesky chain rule, for every variant: closed-form field = jax.grad field."""
    variant = VARIANTS[name]
    prob = problem(mu, seed)
    point = random_point(prob, variant, seed)
    f1, f2, _ = _fields(variant)(prob.Sigma_Y, point, beta, lam)
    for a, b, what in zip(f1, f2, "B W A Z".split(), strict=True):
        assert_close(a, b, ROUNDOFF, what)


@pytest.mark.parametrize("name", list(VARIANTS))
@given(mu=spectra(), seed=st.integers(0, 2**31 - 1), beta=st.floats(0.3, 8.0), lam=st.floats(0.0, 3.0))
def test_block_field_is_a_descent_direction(name, mu, seed, beta, lam):
    """The block metric is a positive-definite preconditioner: the loss decreases along its field."""
    variant = VARIANTS[name]
    prob = problem(mu, seed)
    _, _, descent = _fields(variant)(prob.Sigma_Y, random_point(prob, variant, seed), beta, lam)
    assert float(descent) < 0.0


def _batched(point):
    return tuple(x[None] for x in point)


def _lane(x):
    return np.asarray(x)[0, 0, 0]


@settings(max_examples=5)
@given(mu=spectra(), seed=st.integers(0, 2**31 - 1), beta=st.floats(1.05, 6.0), lam=st.floats(0.0, 2.0))
def test_flow_matches_solve_ivp(mu, seed, beta, lam):
    """diffrax (Tsit5, vmapped) vs scipy DOP853 on the same vector field, at six save times."""
    prob = problem(mu, seed)
    point = random_point(prob, nm.D1, seed)
    ts = np.linspace(0.5, 3.0, 6)
    sol = fl.integrate(prob, beta, lam, _batched(point), t1=3.0, ts=ts, cfg=EUCLID)
    y0 = fl.to_coordinates(point, EUCLID)
    flat0, unravel = ravel_pytree(y0)
    f = fl.make_vector_field(prob.Sigma_Y, EUCLID)
    rhs = jax.jit(lambda t, x: ravel_pytree(f(t, unravel(x), (beta, lam)))[0])
    ref = scipy.integrate.solve_ivp(
        lambda t, x: np.asarray(rhs(t, x)), (0.0, 3.0), np.asarray(flat0), method="DOP853",
        t_eval=ts, rtol=SOLVER.rtol, atol=SOLVER.atol,
    )
    assert ref.success
    tr = sol.trajectory
    for j in range(ts.size):
        c = unravel(jnp.asarray(ref.y[:, j]))
        B, W, A, Z = fl.from_coordinates(c, EUCLID)
        assert_close(_lane(tr.B)[j], B, FLOW, f"B(t={ts[j]})")
        assert_close(_lane(tr.Sigma_W)[j], W, FLOW, f"Sigma_W(t={ts[j]})")
        assert_close(_lane(tr.A)[j], A, FLOW, f"A(t={ts[j]})")
        assert_close(_lane(tr.Sigma_Z)[j], Z, FLOW, f"Sigma_Z(t={ts[j]})")


@st.composite
def water_filling_cases(draw):
    """β > 1, λ > 0 with the water level D strictly between eigenvalues (no flat direction, §10.7)."""
    mu = draw(spectra(min_ratio=1.4))
    lam = draw(st.floats(0.1, 2.0))
    # Number of active directions (1..m) and the level placed in the gap below the last active one.
    k = draw(st.integers(1, M))
    lo, hi = mu[k], mu[k - 1]
    frac = draw(st.floats(0.3, 0.7))
    D = lo + frac * (hi - lo)
    return mu, 1.0 + 2.0 * lam * D, lam


def _steady(prob, beta, lam, seed, cfg=BLOCK):
    """Integrate to t1 = 30 / gap, the gap being the slowest decaying direction at the collapsed point
    (inactive directions keep that linearisation at the water-filling point; active ones are O(1)
    away from their thresholds by the strategy's margin)."""
    r = np.asarray(fl.linearised_rates(prob, beta, lam, cfg))
    gap = float(np.min(np.abs(r[r < 0]))) if np.any(r < 0) else 1.0
    init = fl.flow_init(prob, M, key=seed, num=1, variant=cfg.variant)
    sol = fl.integrate(prob, beta, lam, init, t1=30.0 / min(gap, 1.0), cfg=cfg)
    return init, sol


@settings(max_examples=6)
@given(case=water_filling_cases(), seed=st.integers(0, 2**31 - 1))
def test_flow_reaches_water_filling(case, seed):
    """λ > 0, β > 1: the flow's limit has the water-filling loss, Σ_X = I, eig Σ_Z and I(X;Y) = K (T12, T13)."""
    mu, beta, lam = case
    prob = problem(mu, seed % 1000)
    _, sol = _steady(prob, beta, lam, seed)
    assert sol.status.ravel().tolist() == ["ok"]
    st_ = nm.State(*(x[0, 0, 0] for x in sol.final))
    wf = nm.water_filling(prob, beta, lam, M)
    got, exp = nm.losses(prob, st_, beta, lam), nm.losses(prob, wf, beta, lam)
    assert_close(got.total, exp.total, FLOW, "loss")
    assert_close(got.recon, exp.recon, FLOW, "recon")
    Sx = st_.B @ prob.Sigma_Y @ st_.B.T + st_.Sigma_W
    assert_close(Sx, np.eye(M), FLOW, "Sigma_X")
    assert_close(np.linalg.eigvalsh(st_.Sigma_Z), np.linalg.eigvalsh(wf.Sigma_Z), FLOW, "eig Sigma_Z")
    info = nm.information(prob, st_)
    assert_close(info.mi_xy, got.kl, FLOW, "I(X;Y) = KL")
    assert_close(info.mi_xv, nm.information(prob, wf).mi_xv, FLOW, "I(X;V)")


@settings(max_examples=6)
@given(case=water_filling_cases(), seed=st.integers(0, 2**31 - 1))
def test_flow_and_map_reach_the_same_stationary_values(case, seed):
    """From the same encoder, flow and alternating map reach the same loss and rotation invariants."""
    mu, beta, lam = case
    prob = problem(mu, seed % 1000)
    init, sol = _steady(prob, beta, lam, seed)
    st_map = nm.alternating(prob, beta, lam, init=(init.B[0], init.Sigma_W[0]))
    st_flow = nm.State(*(x[0, 0, 0] for x in sol.final))
    assert_close(nm.losses(prob, st_flow, beta, lam).total, nm.losses(prob, st_map, beta, lam).total, FLOW)
    # Invariants under the latent rotation R (T16): B^T Σ_W^{-1} B, A A^T, Σ_Z, I(X;Y), I(X;V).
    for f, what in (
        (lambda s: s.B.T @ np.linalg.solve(s.Sigma_W, s.B), "B^T Sigma_W^-1 B"),
        (lambda s: s.A @ s.A.T, "A A^T"),
        (lambda s: s.Sigma_Z, "Sigma_Z"),
    ):
        assert_close(f(st_flow), f(st_map), FLOW, what)
    i_f, i_m = nm.information(prob, st_flow), nm.information(prob, st_map)
    assert_close(i_f.mi_xy, i_m.mi_xy, FLOW, "I(X;Y)")
    assert_close(i_f.mi_xv, i_m.mi_xv, FLOW, "I(X;V)")


@st.composite
def collapse_cases(draw):
    """λ = 0, β > 1 with one eigenvalue far above the rest, so one direction is much the slowest."""
    top = draw(st.floats(6.0, 10.0))
    rest = sorted((draw(st.floats(0.6, 1.5)) for _ in range(N - 1)), reverse=True)
    beta = draw(st.floats(1.5, 3.0))
    return np.array([top, *rest]), beta


@settings(max_examples=3)
@given(case=collapse_cases(), seed=st.integers(0, 2**31 - 1))
def test_collapse_gain_contracts_and_mi_decays_at_the_linearised_rate(case, seed):
    """λ = 0, β > 1 (Euclidean flow): K contracts to 0, every MI decays to 0 at rate 2 max_i r_i."""
    mu, beta = case
    prob = problem(mu, seed % 1000)
    r = np.sort(np.asarray(fl.linearised_rates(prob, beta, 0.0, EUCLID)))[::-1]
    assert r[0] < 0
    # Window: nonlinear terms (relative size ~ MI ~ e^{2 r1 t}) and the next mode (e^{2 (r2 - r1) t})
    # must both be below e^-12, so the log-slope carries a bias of well under RATE.rtol.
    t_a = 12.0 / min(2.0 * abs(r[0]), 2.0 * (r[0] - r[1]))
    ts = np.linspace(t_a / 6.0, t_a + 2.0 / abs(r[0]), 12)
    init = fl.flow_init(prob, M, key=seed, num=1)
    # The window reaches MI ~ 1e-8, where the SOLVER tier's absolute error (1e-8 on B) would already
    # be a 1e-4 relative error on b; the ROUNDOFF tier keeps the solver far below that.
    cfg = fl.FlowConfig(tol=ROUNDOFF)
    sol = fl.integrate(prob, beta, 0.0, init, t1=float(ts[-1]), ts=ts, cfg=cfg)
    tr = sol.trajectory
    sv_K = _lane(tr.sv_K)
    assert np.all(np.diff(sv_K[:, 0]) < 0), "the gain spectral norm must contract"
    info = tr.information
    rate_pred = 2.0 * r[0]
    for field in ("mi_xy", "mi_xv"):
        v = _lane(getattr(info, field))
        assert np.all(v > 0) and np.all(np.diff(v) < 0)
        slope = (np.log(v[-1]) - np.log(v[-2])) / (ts[-1] - ts[-2])
        assert_close(slope, rate_pred, RATE, f"d log {field} / dt")
    pairwise = _lane(info.pairwise)
    assert np.max(pairwise[-1]) <= _lane(info.mi_xv)[-1] * (1.0 + ROUNDOFF.rtol)
    assert _lane(info.sap)[-1] <= np.max(pairwise[-1]) * 2.0 + ROUNDOFF.atol


def test_diverging_run_is_flagged_not_nan():
    """β < 1 in D1: the loss is unbounded below; the lane is flagged and warned about, never silent."""
    prob = problem(np.array([3.0, 2.0, 1.0, 0.5]), 0)
    init = fl.flow_init(prob, M, key=1, num=1)
    cfg = fl.FlowConfig(metric="block", max_steps=2_000)
    with pytest.warns(nm.NotConvergedWarning):
        sol = fl.integrate(prob, 0.5, 0.0, init, t1=1e4, cfg=cfg)
    assert sol.status.ravel()[0] in ("solver failed", "non-finite", "not steady")
    assert not bool(np.asarray(sol.final.converged).ravel()[0])


def test_progress_lines(capsys):
    prob = problem(np.array([3.0, 2.0, 1.0, 0.5]), 0)
    init = fl.flow_init(prob, M, key=1, num=1)
    cfg = fl.FlowConfig(metric="block", chunks=4, progress=True)
    fl.integrate(prob, 3.0, 1.0, init, t1=400.0, cfg=cfg)
    out = capsys.readouterr().out
    assert "[linvae.flow] chunk 1/4" in out


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(betas=-1.0, lams=0.0),
        dict(betas=2.0, lams=-0.5),
        dict(betas=float("nan"), lams=0.0),
        dict(betas=2.0, lams=0.0, t1=-1.0),
        dict(betas=2.0, lams=0.0, ts=[2.0, 1.0]),
    ],
)
def test_bad_input_raises(kwargs):
    prob = problem(np.array([3.0, 2.0, 1.0, 0.5]), 0)
    init = fl.flow_init(prob, M, key=1, num=1)
    kw = dict(t1=5.0) | kwargs
    with pytest.raises(ValueError):
        fl.integrate(prob, kw.pop("betas"), kw.pop("lams"), init, **kw)


def test_bad_config_raises():
    with pytest.raises(ValueError):
        fl.FlowConfig(metric="riemann")
    with pytest.raises(ValueError):
        fl.FlowConfig(metric="block", gradient="autodiff")
    with pytest.raises(ValueError):
        fl.FlowConfig(chunks=0)


def test_grid_axes_and_lane_independence():
    """One call over a (β, λ) grid and inits equals separate calls per lane (vmap does not mix lanes)."""
    prob = problem(np.array([3.0, 2.0, 1.0, 0.5]), 3)
    init = fl.flow_init(prob, M, key=2, num=2)
    betas, lams = np.array([2.0, 3.0]), np.array([0.5, 1.0, 1.5])
    ts = np.linspace(0.5, 3.0, 6)  # the shapes and config of test_flow_matches_solve_ivp: one compilation
    grid = fl.integrate(prob, betas, lams, init, t1=3.0, ts=ts, cfg=EUCLID)
    assert grid.trajectory.B.shape == (2, 3, 2, 6, M, N)
    assert grid.trajectory.losses.total.shape == (2, 3, 2, 6)
    one = fl.integrate(prob, betas[1], lams[2], tuple(x[1:] for x in init[:4]), t1=3.0, ts=ts, cfg=EUCLID)
    assert_close(grid.trajectory.B[1, 2, 1], one.trajectory.B[0, 0, 0], FLOW, "lane B")


@pytest.mark.slow
@pytest.mark.parametrize("name", list(VARIANTS))
def test_euclidean_flow_reaches_the_closed_form_optimum(name):
    """Every variant under the literal (Euclidean) flow: D1 -> water filling, D3 -> Lucas et al."""
    variant = VARIANTS[name]
    prob = problem(np.array([3.0, 1.8, 0.9, 0.4]), 5)
    beta, lam = (2.0, 0.6) if variant.decoder != "fixed" else (1.5, 0.2)
    cfg = fl.FlowConfig(variant=variant, chunks=8)
    init = fl.flow_init(prob, M, key=7, num=1, variant=variant)
    sol = fl.integrate(prob, beta, lam, init, t1=2_000.0, cfg=cfg)
    assert sol.status.ravel().tolist() == ["ok"]
    got = nm.losses(prob, nm.State(*(x[0, 0, 0] for x in sol.final)), beta, lam).total
    if variant.decoder == "full":
        exp = nm.losses(prob, nm.water_filling(prob, beta, lam, M), beta, lam).total
    elif variant.decoder == "fixed":
        exp = nm.losses(prob, nm.lucas(prob, beta, lam, M, variant.sigma_d2), beta, lam).total
    else:  # D2: the alternating map from the same start is the reference (T19 is [D*] for beta != 1)
        st_map = nm.alternating(prob, beta, lam, init=(init.B[0], init.Sigma_W[0]), variant=variant)
        exp = nm.losses(prob, st_map, beta, lam).total
    assert_close(got, exp, FLOW, f"{name} stationary loss")
