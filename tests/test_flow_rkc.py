"""The batched Runge-Kutta-Chebyshev integrator (linvae.numeric._rkc) and the flow's steady-state path.

Shapes are fixed (n = 4, m = 2 as in test_flow; D = 8 for the linear systems) so each path compiles once.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import linvae.numeric as nm
from linvae._tolerance import FLOW, ROUNDOFF, Tol
from linvae.numeric import _rkc
from linvae.numeric import flow as fl
from tests.helpers import assert_close
from tests.test_flow import M, problem, water_filling_cases

RKC = fl.FlowConfig(metric="block", solver="rkc")
D = 8


def linear_field(y, consts, rates, target):
    """y' = -diag(rates) (y - target): a stiff system with a real spectrum and a known solution."""
    del consts
    return -rates * (y - target)


def never(y, f, consts, rates, target):
    del f, consts, rates, target
    return jnp.zeros(y.shape[0], bool)


def steady_when_small(y, f, consts, rates, target):
    del y, consts, rates, target
    return jnp.sqrt(jnp.sum(f * f, axis=1)) <= 1e-6


def run(lanes, args, t1, rtol=1e-8, steady=never, max_steps=100_000):
    while bool(np.any(np.asarray(lanes.status) == _rkc.RUNNING)):
        lanes = _rkc.advance(linear_field, steady, lanes, None, args, t1, rtol, rtol, max_steps, num_steps=32)
    return lanes


def linear_case(seed):
    rng = np.random.default_rng(seed)
    # Two lanes: rates spread over 5 decades (stiffness 1e5) and over 1 decade.
    rates = np.stack([np.geomspace(1e-2, 1e3, D), np.geomspace(0.5, 5.0, D)])
    target = rng.normal(size=(2, D))
    y0 = rng.normal(size=(2, D))
    return jnp.asarray(y0), (jnp.asarray(rates), jnp.asarray(target))


@pytest.mark.parametrize("seed", [0, 1])
def test_rkc_matches_the_exact_solution_of_a_stiff_linear_system(seed):
    """Global error at t1 within FLOW at rtol = atol = 1e-8, with far fewer evaluations than an explicit RK."""
    y0, args = linear_case(seed)
    t1 = 100.0
    lanes = run(_rkc.start(linear_field, y0, None, args), args, t1)
    assert np.all(np.asarray(lanes.status) == _rkc.HORIZON)
    assert_close(np.asarray(lanes.t), np.full(2, t1), ROUNDOFF, "t reached")
    rates, target = (np.asarray(a) for a in args)
    exact = target + (np.asarray(y0) - target) * np.exp(-rates * t1)
    assert_close(np.asarray(lanes.y), exact, FLOW, "y(t1)")
    # Tsit5, stable for h * 1e3 <= ~3.5, would need >= 28,000 steps (>= 170,000 evaluations) for the
    # stiff lane; RKC's stage count grows with h instead (measured: ~12,600 evaluations).
    assert int(lanes.evals[0]) < 20_000


def test_rkc_stops_each_lane_at_its_steady_state_and_freezes_it():
    y0, args = linear_case(3)
    lanes = run(_rkc.start(linear_field, y0, None, args), args, 1e6, steady=steady_when_small)
    assert np.all(np.asarray(lanes.status) == _rkc.STEADY)
    # |F_i| = r_i |y_i - target_i| <= ||F|| <= 1e-6 at the stop.
    rates, target = (np.asarray(a) for a in args)
    assert np.all(np.abs(np.asarray(lanes.y) - target) <= 1e-6 / rates * (1.0 + ROUNDOFF.rtol))
    again = _rkc.advance(linear_field, steady_when_small, lanes, None, args, 1e6, 1e-8, 1e-8, 100_000, num_steps=32)
    for name in ("y", "f", "t", "h", "steps", "rejected", "evals", "status"):  # not the ρ estimate
        np.testing.assert_array_equal(np.asarray(getattr(lanes, name)), np.asarray(getattr(again, name)), err_msg=name)
    # The slow lane (rate 1e-2) stopped much later than the fast one.
    assert float(lanes.t[0]) > 10.0 * float(lanes.t[1])


def test_rkc_step_cap_flags_the_lane_as_failed():
    y0, args = linear_case(4)
    lanes = run(_rkc.start(linear_field, y0, None, args), args, 1e6, max_steps=10)
    assert np.all(np.asarray(lanes.status) == _rkc.FAILED)
    assert np.all(np.isfinite(np.asarray(lanes.y)))


def test_rkc_tables_reproduce_the_chebyshev_stability_polynomial():
    """One step on y' = z y gives y1 = a_s + b_s T_s(w0 + w1 z): bounded by 1 on [-beta(s), 0] (damped)."""
    coef, mu1 = _rkc.tables(_rkc.MAX_STAGES)
    for s in (2, 5, 20, 100):
        z = -np.linspace(0.0, float(_rkc.stability_bound(s)), 400)
        y0, y1 = np.ones_like(z), 1.0 + mu1[s] * z
        for j in range(2, s + 1):
            mu, nu, mut, gat = coef[s, j]
            y0, y1 = y1, (1 - mu - nu) + mu * y1 + nu * y0 + mut * z * y1 + gat * z
        assert np.max(np.abs(y1)) <= 1.0 + 1e-9, f"s = {s}"
        # Second order: R(z) = 1 + z + z^2/2 + O(z^3) near 0.
        small = np.array([-1e-3])
        r0, r1 = np.ones(1), 1.0 + mu1[s] * small
        for j in range(2, s + 1):
            mu, nu, mut, gat = coef[s, j]
            r0, r1 = r1, (1 - mu - nu) + mu * r1 + nu * r0 + mut * small * r1 + gat * small
        assert abs(r1[0] - np.exp(small[0])) <= 1e-9


@settings(max_examples=4)
@given(case=water_filling_cases(), seed=st.integers(0, 2**31 - 1))
def test_rkc_flow_reaches_water_filling(case, seed):
    """The steady-state path lands on the water-filling point (T12): loss, Σ_X = I, eig Σ_Z."""
    mu, beta, lam = case
    prob = problem(mu, seed % 1000)
    init = fl.flow_init(prob, M, key=seed, num=1)
    # FLOW-tier end points need a residual well below STEADY's (distance ~ residual / slowest rate).
    tight = fl.FlowConfig(metric="block", solver="rkc", steady=Tol(1e-10, 1e-10, "test"))
    sol = fl.integrate(prob, beta, lam, init, t1=1e6, cfg=tight)
    assert sol.status.ravel().tolist() == ["ok"]
    st_ = nm.State(*(x[0, 0, 0] for x in sol.final))
    wf = nm.water_filling(prob, beta, lam, M)
    assert_close(nm.losses(prob, st_, beta, lam).total, nm.losses(prob, wf, beta, lam).total, FLOW, "loss")
    assert_close(st_.B @ prob.Sigma_Y @ st_.B.T + st_.Sigma_W, np.eye(M), FLOW, "Sigma_X")
    assert_close(np.linalg.eigvalsh(st_.Sigma_Z), np.linalg.eigvalsh(wf.Sigma_Z), FLOW, "eig Sigma_Z")


def test_rkc_grid_is_independent_of_lane_grouping_and_agrees_with_diffrax():
    """Lanes compacted into groups of 4 give the same end points as one group; diffrax's Tsit5 agrees."""
    prob = problem(np.array([3.0, 2.0, 1.0, 0.5]), 3)
    init = fl.flow_init(prob, M, key=2, num=2)
    betas, lams = np.array([2.0, 3.0]), np.array([0.3, 0.7, 1.3])  # no cell on a threshold 1 + 2 lam mu_i
    wide = fl.integrate(prob, betas, lams, init, t1=1e6, cfg=RKC)
    narrow = fl.integrate(prob, betas, lams, init, t1=1e6, cfg=fl.FlowConfig(metric="block", solver="rkc", max_lanes=4))
    assert (wide.status == "ok").all() and (narrow.status == "ok").all()
    for a, b, what in zip(wide.final[:4], narrow.final[:4], ("B", "Sigma_W", "A", "Sigma_Z"), strict=True):
        assert_close(np.asarray(a), np.asarray(b), ROUNDOFF, what)
    ref = fl.integrate(prob, betas, lams, init, t1=2000.0, cfg=fl.FlowConfig(metric="block", chunks=4))
    assert (ref.status == "ok").all()
    for i, b in enumerate(betas):
        for j, lam in enumerate(lams):
            for k in range(2):
                got = nm.State(*(np.asarray(x[i, j, k]) for x in wide.final[:4]), 0, 0, 0)
                exp = nm.State(*(np.asarray(x[i, j, k]) for x in ref.final[:4]), 0, 0, 0)
                assert_close(nm.losses(prob, got, b, lam).total, nm.losses(prob, exp, b, lam).total, FLOW, "loss")


def test_rkc_diverging_run_is_flagged_not_nan():
    """β < 1 in D1 (unbounded below): flagged and warned about, never a silent NaN."""
    prob = problem(np.array([3.0, 2.0, 1.0, 0.5]), 0)
    init = fl.flow_init(prob, M, key=1, num=1)
    with pytest.warns(nm.NotConvergedWarning):
        sol = fl.integrate(prob, 0.5, 0.0, init, t1=1e4, cfg=fl.FlowConfig(metric="block", solver="rkc", max_steps=2_000))
    assert sol.status.ravel()[0] in ("solver failed", "non-finite", "not steady")
    assert not bool(np.asarray(sol.final.converged).ravel()[0])


def test_rkc_progress_and_bad_input(capsys):
    prob = problem(np.array([3.0, 2.0, 1.0, 0.5]), 0)
    init = fl.flow_init(prob, M, key=1, num=1)
    fl.integrate(prob, 3.0, 1.0, init, t1=1e6, cfg=fl.FlowConfig(metric="block", solver="rkc", progress=True))
    assert "[linvae.flow] rkc round" in capsys.readouterr().out
    with pytest.raises(ValueError, match="steady state only"):
        fl.integrate(prob, 3.0, 1.0, init, t1=5.0, ts=[1.0, 5.0], cfg=RKC)
    with pytest.raises(ValueError, match="solver"):
        fl.FlowConfig(solver="rk4")
