"""T18 lucas-rate-distortion (D3): at the optimum the rate is ½Σ log⁺(μ_i/θ), the distortion
Σ_{i≤m} min(μ_i, θ) + Σ_{i>m} μ_i, the value that of §4, and dD/dR_rate = −2θ within an active set
(proofs/lucas-rate-distortion.md)."""

import functools
import math

import jax
import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from linvae import bridge
from linvae import numeric as nm
from linvae import symbolic as S
from linvae._tolerance import CONVERGED, FLOW, ROUNDOFF, STATIONARY
from linvae.symbolic._symbols import beta as beta_s
from linvae.symbolic._symbols import mu as mu_s
from linvae.symbolic._symbols import sigma_d2 as s2_s
from linvae.symbolic._symbols import theta as theta_s
from tests.helpers import assert_close, assert_stationary
from tests.strategies import problems


@functools.cache
def _per_direction():
    rd = S.derive_rate_distortion()
    f = lambda e: bridge.lambdify(e, (mu_s, theta_s), modules="numpy")  # noqa: E731
    value = bridge.lambdify(rd["value_i"], (mu_s, beta_s, s2_s), modules="numpy")
    return f(rd["rate_i"]), f(rd["distortion_i"]), value


_grad3 = jax.jit(jax.grad(nm.objective, argnums=(0, 1, 2)))


def _variant(s2):
    return nm.Variant(decoder="fixed", sigma_d2=s2)


@given(problems(), st.floats(0.1, 5.0), st.floats(0.0, 3.0), st.floats(0.05, 3.0))
def test_lucas_rate_distortion_symbolic_matches_numeric(case, beta, lam, s2):
    prob, m = case.prob, case.m
    theta = beta / (1.0 / s2 + 2.0 * lam)
    mu = np.asarray(prob.mu)
    assume(np.all(np.abs(mu[:m] - theta) > 1e-6 * theta))  # A2: no direction exactly at the level
    L = nm.losses(prob, nm.lucas(prob, beta, lam, m, s2), beta, lam)
    rate_i, dist_i, _ = _per_direction()
    active = mu[:m] > theta
    rate = sum(rate_i(x, theta) for x in mu[:m][active])
    dist = (
        sum(dist_i(x, theta) for x in mu[:m][active]) + float(np.sum(mu[:m][~active])) + float(np.sum(mu[m:]))
    )
    assert_close(L.kl, rate, ROUNDOFF, "rate")
    assert_close(L.l2, dist, ROUNDOFF, "distortion")
    assert_close(rate, 0.5 * float(np.sum(np.log(np.maximum(mu[:m] / theta, 1.0)))), ROUNDOFF, "log+ form")


@given(problems(), st.floats(0.1, 5.0), st.floats(0.05, 3.0))
def test_lucas_rate_distortion_value(case, beta, s2):
    """λ = 0: the optimal loss is the per-direction symbolic value on active directions plus the
    collapsed value μ/(2σ_d²) + ½log 2πσ_d² elsewhere (A1)."""
    prob, m = case.prob, case.m
    mu = np.asarray(prob.mu)
    theta = beta * s2
    assume(np.all(np.abs(mu[:m] - theta) > 1e-6 * theta))
    _, _, value = _per_direction()
    collapsed = lambda x: x / (2 * s2) + 0.5 * math.log(2 * math.pi * s2)  # noqa: E731
    expected = sum(value(x, beta, s2) if (i < m and x > theta) else collapsed(x) for i, x in enumerate(mu))
    L = nm.losses(prob, nm.lucas(prob, beta, 0.0, m, s2), beta, 0.0)
    assert_close(L.total, expected, ROUNDOFF, "optimal value")


@given(problems(), st.floats(0.1, 5.0), st.floats(1.01, 1.5), st.floats(0.05, 3.0))
def test_lucas_rate_distortion_slope(case, beta, ratio, s2):
    """Within a fixed active set D(θ) = kθ + const and R(θ) = const − (k/2) log θ, so the secant slope is
    −2 × the logarithmic mean of θ — the exact discrete form of dD/dR = −2θ (A2)."""
    prob, m = case.prob, case.m
    mu = np.asarray(prob.mu)
    t1, t2 = beta * s2, beta * ratio * s2
    k1, k2 = int(np.sum(mu[:m] > t1)), int(np.sum(mu[:m] > t2))
    assume(k1 == k2 and k1 > 0)
    L1 = nm.losses(prob, nm.lucas(prob, beta, 0.0, m, s2), beta, 0.0)
    L2 = nm.losses(prob, nm.lucas(prob, beta * ratio, 0.0, m, s2), beta * ratio, 0.0)
    secant = (float(L2.l2) - float(L1.l2)) / (float(L2.kl) - float(L1.kl))
    assert_close(secant, -2.0 * (t2 - t1) / math.log(t2 / t1), ROUNDOFF, "dD/dR")
    assert S.derive_rate_distortion()["slope"] == -2 * theta_s


@given(problems(), st.floats(0.1, 5.0), st.floats(0.0, 3.0), st.floats(0.05, 3.0))
def test_lucas_rate_distortion_is_stationary(case, beta, lam, s2):
    prob, m = case.prob, case.m
    st_ = nm.lucas(prob, beta, lam, m, s2)
    g = _grad3(st_.B, st_.Sigma_W, st_.A, st_.Sigma_Z, prob.Sigma_Y, beta, lam)
    assert_stationary(g, st_[:3], STATIONARY)


@pytest.mark.slow
@settings(max_examples=10)
@given(problems(), st.floats(0.2, 3.0), st.floats(0.1, 2.0))
def test_lucas_rate_distortion_map_reaches_value(case, beta, s2):
    """The D3 alternating map from a random start reaches the optimal rate and distortion."""
    prob, m = case.prob, case.m
    mu = np.asarray(prob.mu)
    assume(np.all(np.abs(mu[:m] - beta * s2) > 0.05 * beta * s2))
    run = nm.alternating(
        prob, beta, 0.0, m, key=case.seed, variant=_variant(s2), tol=1e-12, max_sweeps=200_000
    )
    assume(bool(run.converged))
    L = nm.losses(prob, run, beta, 0.0)
    ref = nm.losses(prob, nm.lucas(prob, beta, 0.0, m, s2), beta, 0.0)
    assert_close(L.total, ref.total, CONVERGED, "loss")
    assert_close(L.kl, ref.kl, CONVERGED, "rate")


@pytest.mark.slow
def test_lucas_rate_distortion_flow_converges():
    """The gradient flow (block metric, D3/E1) from random starts reaches the optimal rate and distortion on a
    grid of β, in one vmapped solve; the horizon is t1 = c / gap with gap the smaller of the relative
    distances of the active eigenvalues from θ (activation boundary) and of μ_m from μ_{m+1} (which
    directions the latents pick)."""
    from linvae.numeric import flow

    prob = nm.from_spectrum(np.array([5.0, 3.0, 0.4, 0.2]))
    s2, m, lam = 0.5, 2, 0.5
    betas = np.array([2.0, 5.0])
    v = _variant(s2)
    thetas = betas / (1.0 / s2 + 2.0 * lam)
    mu = [float(x) for x in prob.mu]
    gap = min([abs(x / t - 1.0) for x in mu[:m] for t in thetas] + [1.0 - mu[m] / mu[m - 1]])
    init = flow.flow_init(prob, m, key=jax.random.key(0), num=3, variant=v)
    sol = flow.integrate(
        prob, betas, lam, init, t1=200.0 / gap, cfg=flow.FlowConfig(variant=v, metric="block")
    )
    assert np.all(sol.status == "ok"), sol.status
    for i, b in enumerate(betas):
        ref = nm.losses(prob, nm.lucas(prob, float(b), lam, m, s2), float(b), lam)
        lane = nm.State(*(x[i, 0] for x in sol.final))
        got = nm.losses(prob, lane, float(b), lam)
        assert_close(got.kl, np.full(3, float(ref.kl)), FLOW, f"rate at beta={b}")
        assert_close(got.l2, np.full(3, float(ref.l2)), FLOW, f"distortion at beta={b}")
