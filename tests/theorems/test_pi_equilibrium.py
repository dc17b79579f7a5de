"""T25 pi-equilibrium (docs/theory.md §7): controllers on a static linear plant.

(a) an interior equilibrium has R_rate(β*) = C with the closed-form β*; if C > R_rate(β_min) the loop
    saturates at β_min; (b) DynamicVAE's incremental form equals the telescoped positional form without
    clipping; (c) outputs are >= β_min and the unclipped β never winds below β_min - K_p - K_i C;
    (d) with clamping anti-windup (the default) a KL held at >= C + δ after *any* history lifts β to any
    level b within w - 1 + (b - β_min + K_p/2 + K_i C)/(K_i δ) updates, while the published rule holds β
    at β_min for ever once the integral part of the unclipped β is <= -K_p.

Assumptions (proofs/pi-equilibrium.md): A1 quasi-static plant (KL = optimal rate at the current β; D3,
or D1 with λ > 0 and β_min > 1); A2 K_p, K_i > 0, e = C - KL with KL >= 0 and a constant set point,
DynamicVAE's β(0) >= β_min. The loop-settling tests of (a) also take loop gains small enough for the
discrete loop to settle (a test condition, not part of the statement, which is about equilibria).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

import linvae.numeric as nm
from linvae._tolerance import CONVERGED, IDENTITY, ROUNDOFF
from linvae.numeric import schedules as sc
from tests.helpers import assert_close

N, M = 5, 3
STEPS = 6000
WINDOW = 5  # DynamicVAE's KL window in these tests (the published default)


@st.composite
def plants(draw):
    mu = np.sort([draw(st.floats(0.3, 8.0)) for _ in range(N)])[::-1]
    kind = draw(st.sampled_from(["D3", "D1"]))
    if kind == "D3":
        variant, lam, beta_min = nm.Variant(decoder="fixed", sigma_d2=draw(st.floats(0.05, 0.5))), 0.0, 1.0
    else:
        variant, lam, beta_min = nm.D1, draw(st.floats(0.2, 2.0)), draw(st.floats(1.1, 2.0))  # A1
    return nm.from_spectrum(mu), variant, lam, beta_min


def _controller(kind, C, beta_min, Kp, Ki, *, rule="clamping", beta_init=None):
    setpoint = sc.constant_setpoint(C)
    if kind == "controlvae":
        return sc.controlvae_pi(setpoint, Kp=Kp, Ki=Ki, beta_min=beta_min, anti_windup=rule)
    beta_init = beta_min + 3.0 if beta_init is None else beta_init
    return sc.dynamicvae_pi(setpoint, Kp=Kp, Ki=Ki, beta_min=beta_min, beta_init=beta_init, window=WINDOW,
                            anti_windup=rule)


def _optimum_kl(prob, beta, lam, variant) -> float:
    """The KL term of the model's optimum at β, evaluated on the closed-form state by the loss code."""
    if variant.decoder == "fixed":
        st_ = nm.lucas(prob, beta, lam, M, variant.sigma_d2)
    else:
        st_ = nm.water_filling(prob, beta, lam, M)
    return float(nm.losses(prob, st_, beta, lam).kl)


@given(plant=plants(), frac=st.floats(0.2, 0.8), kind=st.sampled_from(["controlvae", "dynamicvae"]),
       start_high=st.booleans())
def test_pi_equilibrium_interior(plant, frac, kind, start_high):
    """(a) β* is where the model's optimum has KL = C, and the loop settles there from either side.

    The KL at β* is the K term of the closed-form optimum evaluated by the loss code, not the log⁺ rate
    formula that ``equilibrium_beta`` inverts. With ``start_high`` the first KL is measured at
    β_min + 3, below target, so ControlVAE's integral first falls below β_min: the clamping rule lets it
    unwind (the published rule locks there when K_i e(1) >= K_p)."""
    prob, variant, lam, beta_min = plant
    r_min = float(sc.optimal_rate(prob, beta_min, lam, M, variant))
    assume(r_min > 0.05)
    C = frac * r_min
    beta_star = sc.equilibrium_beta(prob, C, lam, M, variant)
    assert beta_star > beta_min
    assert_close(_optimum_kl(prob, beta_star, lam, variant), C, IDENTITY, "KL of the optimum at beta* = C")
    # The rate is strictly decreasing where positive, so beta* is the only crossing.
    assert _optimum_kl(prob, beta_star * 0.99, lam, variant) > C > _optimum_kl(prob, beta_star * 1.01, lam, variant)
    # Loop gain Ki |dR/dbeta| <= 0.2 at beta*: a monotone approach despite the 5-step KL window.
    slope = float(jax.grad(lambda b: sc.optimal_rate(prob, b, lam, M, variant))(beta_star))
    gain = min(0.2, 0.2 / abs(slope))
    ctrl = _controller(kind, C, beta_min, 0.01, gain)
    beta0 = beta_min + 3.0 if (start_high or kind == "dynamicvae") else beta_min
    tr = sc.closed_loop(prob, ctrl, sc.constant_setpoint(C), steps=STEPS, lam=lam, m=M, variant=variant,
                        beta0=beta0)
    assert np.all(np.isfinite(np.asarray(tr.beta)))
    assert_close(tr.beta[-1], beta_star, CONVERGED, "beta -> beta*")
    assert_close(tr.kl[-1], C, CONVERGED, "KL -> C")


@given(plant=plants(), excess=st.floats(0.05, 2.0), kind=st.sampled_from(["controlvae", "dynamicvae"]))
def test_pi_equilibrium_saturates_at_beta_min(plant, excess, kind):
    """(a) C > R_rate(β_min): the loop sits at β_min with KL = R_rate(β_min) < C."""
    prob, variant, lam, beta_min = plant
    r_min = float(sc.optimal_rate(prob, beta_min, lam, M, variant))
    C = r_min + excess
    ctrl = _controller(kind, C, beta_min, 0.01, 0.05)
    tr = sc.closed_loop(prob, ctrl, sc.constant_setpoint(C), steps=2000, lam=lam, m=M, variant=variant,
                        beta0=beta_min + 1.0)
    assert float(tr.beta[-1]) == beta_min
    assert_close(tr.kl[-1], r_min, IDENTITY, "KL = R_rate(beta_min)")
    assert float(tr.kl[-1]) < C


@given(
    kls=st.lists(st.floats(0.0, 30.0), min_size=1, max_size=60),
    C=st.floats(0.1, 20.0),
    Kp=st.floats(0.0, 0.1),
    Ki=st.floats(0.0, 0.01),
)
def test_pi_equilibrium_telescoping(kls, C, Kp, Ki):
    """(b) Without clipping, incremental DynamicVAE = β(0) + Kp[σ(-e(t)) - ½] - Ki Σ e(j)."""
    beta0 = 50.0
    ctrl = sc.dynamicvae_pi(sc.constant_setpoint(C), Kp=Kp, Ki=Ki, beta_min=0.1, beta_init=beta0, window=WINDOW)
    tr = _scan(ctrl, kls)
    betas, errors = np.asarray(tr["beta"]), np.asarray(tr["error"])
    assume(np.min(betas) > 0.1)  # no clipping or anti-windup event
    padded = np.r_[np.zeros(WINDOW - 1), kls]
    e = C - np.array([padded[t : t + WINDOW].mean() for t in range(len(kls))])
    assert_close(errors, e, IDENTITY, "errors on the moving average")
    telescoped = beta0 + Kp * (1.0 / (1.0 + np.exp(e)) - 0.5) - Ki * np.cumsum(e)
    assert_close(betas, telescoped, IDENTITY, "telescoped positional form")


def _scan(ctrl, kls):
    """Run ``ctrl`` over a KL sequence, or a batch of them (rows), in one jitted scan; per update: the
    output β and the stored unclipped β, error (DynamicVAE) and integral (ControlVAE)."""

    def body(s, kl):
        beta, s = ctrl.update(kl, s)
        err = getattr(s, "error", jnp.nan)
        integral = getattr(s, "integral", jnp.nan)
        return s, {"beta": beta, "beta_raw": s.beta_raw, "error": err, "integral": integral}

    run = lambda k: jax.lax.scan(body, ctrl.init(), k)[1]  # noqa: E731
    kls = jnp.asarray(kls, dtype=jnp.float64)
    return jax.jit(jax.vmap(run) if kls.ndim == 2 else run)(kls)


def _integral_part(kind, tr, beta_min, Kp):
    """The integral part of the unclipped β: ControlVAE's stored I; DynamicVAE's telescoped
    β_raw - β_min - K_p σ(-e)."""
    if kind == "controlvae":
        return np.asarray(tr["integral"])
    return np.asarray(tr["beta_raw"]) - beta_min - Kp / (1.0 + np.exp(np.asarray(tr["error"])))


#: Controller settings for (c), (d). No subnormal floats: XLA flushes them to zero.
gains = st.fixed_dictionaries({
    "kind": st.sampled_from(["controlvae", "dynamicvae"]),
    "C": st.floats(0.1, 10.0),
    "Kp": st.floats(0.0, 0.1, allow_subnormal=False),
    "Ki": st.floats(0.02, 0.5),
    "beta_min": st.floats(0.0, 5.0, allow_subnormal=False),
})


@settings(max_examples=50)
@given(g=gains, kls=st.lists(st.floats(0.0, 30.0), min_size=1, max_size=80),
       rule=st.sampled_from(["clamping", "published"]))
def test_pi_equilibrium_windup_floor(g, kls, rule):
    """(c) For every KL sequence the output is >= β_min and the unclipped β never falls below
    β_min - K_p - K_i C: anti-windup bounds how far the integral winds below the clip (without it a
    long KL below target drives β_raw down by K_i e per update, without bound)."""
    ctrl = _controller(g["kind"], g["C"], g["beta_min"], g["Kp"], g["Ki"], rule=rule, beta_init=g["beta_min"])
    tr = _scan(ctrl, kls)
    betas, raw = np.asarray(tr["beta"]), np.asarray(tr["beta_raw"])
    floor = g["beta_min"] - g["Kp"] - g["Ki"] * g["C"]
    assert np.all(betas >= g["beta_min"])
    assert np.all(raw >= floor - ROUNDOFF.atol), (raw.min(), floor)


@settings(max_examples=60)
@example(  # the lock-up: one KL = 0 below C = 3, then KL = 10; published ControlVAE stays at 1
    g={"kind": "controlvae", "C": 3.0, "Kp": 0.01, "Ki": 0.2, "beta_min": 1.0},
    history=[0.0], delta=7.0, level=1.0, seed=0,
)
@given(g=gains, history=st.lists(st.floats(0.0, 30.0), min_size=0, max_size=60),
       delta=st.floats(0.5, 5.0), level=st.floats(0.1, 2.0), seed=st.integers(0, 2**31 - 1))
def test_pi_equilibrium_sustained_kl_raises_beta(g, history, delta, level, seed):
    """(d) After any history, KL(t) >= C + δ for every later update lifts β to b = β_min + level within
    k* = w - 1 + ⌈(b - β_min + K_p/2 + K_i C)/(K_i δ)⌉ updates and keeps it there (w = 1 for
    ControlVAE, its window for DynamicVAE); a constant KL above target makes β non-decreasing from
    update w + 1 on."""
    kind, C, Kp, Ki, beta_min = g["kind"], g["C"], g["Kp"], g["Ki"], g["beta_min"]
    w = 1 if kind == "controlvae" else WINDOW
    b = beta_min + level
    k_star = w - 1 + math.ceil((b - beta_min + Kp / 2 + Ki * C) / (Ki * delta))
    rng = np.random.default_rng(seed)
    varying = C + delta + rng.exponential(2.0, size=k_star + 20)
    constant = np.full(k_star + 20, C + delta)
    ctrl = _controller(kind, C, beta_min, Kp, Ki, beta_init=beta_min + 1.0)
    kls = np.stack([np.r_[history, varying], np.r_[history, constant]])
    betas = np.asarray(_scan(ctrl, kls)["beta"])[:, len(history):]  # betas[:, k - 1]: sustained update k
    assert np.all(betas[:, k_star - 1:] >= b), (betas[:, k_star - 1:].min(), b, k_star)
    # constant KL: from update w + 1 on, an update only adds K_i δ to the integral
    assert np.all(np.diff(betas[1, w - 1:]) >= 0), "constant KL above target: beta non-decreasing"


@settings(max_examples=60)
@example(g={"kind": "controlvae", "C": 3.0, "Kp": 0.01, "Ki": 0.2, "beta_min": 1.0}, history=[0.0],
         later=[10.0] * 200)
@example(g={"kind": "controlvae", "C": 3.0, "Kp": 0.01, "Ki": 0.001, "beta_min": 1.0}, history=[0.0],
         later=[10.0] * 200)
@given(g=gains, history=st.lists(st.floats(0.0, 30.0), min_size=1, max_size=60),
       later=st.lists(st.floats(0.0, 100.0), min_size=1, max_size=60))
def test_pi_equilibrium_published_rule_locks(g, history, later):
    """(d) The published rule (hold whenever clipped): once the integral part I of β_raw is <= -K_p, β
    equals β_min for every later KL sequence. For ControlVAE this is exact: while I > -K_p one KL above
    target with σ(KL - C) > -I/K_p lifts β above β_min."""
    kind, C, Kp, Ki, beta_min = g["kind"], g["C"], g["Kp"], g["Ki"], g["beta_min"]
    ctrl = _controller(kind, C, beta_min, Kp, Ki, rule="published", beta_init=beta_min)
    tr = _scan(ctrl, np.r_[history, later])
    I_end = float(_integral_part(kind, tr, beta_min, Kp)[len(history) - 1])
    if I_end <= -Kp:
        betas = np.asarray(tr["beta"])[len(history):]
        assert np.all(betas == beta_min), betas
    elif kind == "controlvae" and Kp > 0:
        x = max(-I_end / Kp, 0.0)  # < 1
        kl = C + max(math.log(x / (1.0 - x)) if x > 0 else 0.0, 0.0) + 1.0  # above target, σ(kl - C) > x
        betas = np.asarray(_scan(ctrl, np.r_[history, [kl]])["beta"])
        assert betas[-1] > beta_min, (betas[-1], I_end)
