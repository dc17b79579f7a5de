"""β schedules and controllers (linvae.numeric.schedules): values, exact defaults, state semantics, errors."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import linvae.numeric as nm
from linvae._tolerance import CONVERGED, ROUNDOFF
from linvae.numeric import schedules as sc
from tests.helpers import assert_close


@given(beta_final=st.floats(0.1, 10.0), gamma=st.floats(1e-3, 10.0), t=st.floats(0.0, 100.0))
def test_annealing_schedules(beta_final, gamma, t):
    assert_close(sc.tanh_schedule(beta_final, gamma)(t), beta_final * math.tanh(gamma * t), ROUNDOFF)
    assert_close(sc.linear_schedule(beta_final, gamma)(t), beta_final * min(gamma * t, 1.0), ROUNDOFF)
    assert_close(sc.constant_schedule(beta_final)(t), beta_final, ROUNDOFF)


@given(beta_max=st.floats(0.1, 10.0), period=st.integers(2, 1000), ratio=st.floats(0.1, 1.0),
       i=st.integers(0, 10_000))
def test_cyclical_schedule(beta_max, period, ratio, i):
    got = float(sc.cyclical_schedule(beta_max, period, ratio)(i))
    phase = (i % period) / period
    assert_close(got, beta_max * min(phase / ratio, 1.0), ROUNDOFF)
    assert float(sc.cyclical_schedule(beta_max, period, ratio)(i - i % period)) == 0.0


def test_controlvae_setpoint_staircase():
    C = sc.controlvae_setpoint()
    i = jnp.array([0, 4999, 5000, 9999, 10_000, 10**7])
    assert_close(C(i), [0.5, 0.5, 0.65, 0.65, 0.8, 16.0], ROUNDOFF)


def test_dynamicvae_setpoint_ramps():
    C = sc.dynamicvae_setpoint()
    assert float(C(5999)) == 0.5
    assert_close(C(6000), 0.5 + 0.15 / 1000, ROUNDOFF)
    assert_close(C(6999), 0.65, ROUNDOFF)
    assert_close(C(11_999), 0.65, ROUNDOFF)  # flat until the next window
    assert_close(C(12_999), 0.80, ROUNDOFF)
    end = 6000 * 130 + 999
    assert_close(C(end), 20.0, ROUNDOFF)
    assert float(C(end - 1)) < 20.0
    assert float(C(10**8)) == 20.0
    # Iterating the published increment rule reproduces the closed form.
    c, ref = 0.5, []
    for i in range(0, 20_000):
        if i >= 6000 and i % 6000 < 1000:
            c = min(20.0, c + 0.15 / 1000)
        ref.append(c)
    assert_close(C(jnp.arange(20_000)), np.array(ref), ROUNDOFF)


def test_controlvae_reference_update_and_anti_windup():
    """One step by hand with the published defaults, then the frozen integral below β_min."""
    ctrl = sc.controlvae_pi(sc.constant_setpoint(2.0))
    s = ctrl.init()
    beta, s = ctrl.update(jnp.asarray(5.0), s)  # e = -3: KL above target
    e = -3.0
    integral = 0.0 - 0.001 * e
    assert_close(beta, 0.01 / (1.0 + math.exp(e)) + 1.0 + integral, ROUNDOFF)
    assert_close(s.beta_raw, beta, ROUNDOFF)
    # Drive the unclipped state below β_min, then the integral must hold still.
    ctrl = sc.controlvae_pi(sc.constant_setpoint(2.0), Ki=0.5)
    s = ctrl.init()
    _, s = ctrl.update(jnp.asarray(0.0), s)  # e = 2 > 0: I = -1, beta_raw < 1
    assert float(s.beta_raw) < 1.0
    I_frozen = float(s.integral)
    beta, s = ctrl.update(jnp.asarray(0.0), s)
    assert float(s.integral) == I_frozen and float(beta) == 1.0


@pytest.mark.parametrize("make", [sc.controlvae_pi, sc.dynamicvae_pi])
def test_anti_windup_rules_after_one_low_kl(make):
    """Issue 15: one KL = 0 below C = 3, then 200 updates at KL = 10 > C. The published rule (hold while
    clipped) keeps β at β_min for Ki = 0.2 and 0.01 and recovers for Ki = 0.001 (I = -3 Ki vs -Kp = -0.01);
    the default clamping rule always recovers; at Ki = 0.001 the two differ by the one update (e = -7) the
    published rule holds while clipped."""
    kw = {} if make is sc.controlvae_pi else {"beta_init": 1.0, "window": 1}
    finals = {}
    for rule in ("published", "clamping"):
        for Ki in (0.2, 0.01, 0.001):
            ctrl = make(sc.constant_setpoint(3.0), Kp=0.01, Ki=Ki, beta_min=1.0, anti_windup=rule, **kw)
            s = ctrl.init()
            for kl in [0.0] + [10.0] * 200:
                beta, s = ctrl.update(jnp.asarray(kl), s)
            finals[rule, Ki] = float(beta)
    assert finals["published", 0.2] == finals["published", 0.01] == 1.0
    assert finals["published", 0.001] > 1.0
    for Ki in (0.2, 0.01, 0.001):
        # 199 clamped updates at e = -7 lift the integral by 199 * 7 Ki from at least -3 Ki.
        assert finals["clamping", Ki] >= 1.0 + 0.01 / 2 + Ki * (199 * 7 - 3)
    assert_close(finals["clamping", 0.001] - finals["published", 0.001], 0.001 * 7.0, ROUNDOFF)


def test_dynamicvae_reference_update():
    ctrl = sc.dynamicvae_pi(sc.constant_setpoint(1.0))
    s = ctrl.init()
    assert s.window.shape == (5,) and float(s.beta_raw) == 50.0
    beta, s = ctrl.update(jnp.asarray(10.0), s)
    e = 1.0 - 10.0 / 5  # queue of 4 zeros + the first KL
    expect = 50.0 + 0.01 * (1.0 / (1.0 + math.exp(e)) - 0.5) - 0.005 * e
    assert_close(beta, expect, ROUNDOFF)


def test_controllers_jit_scan_and_vmap():
    """The update is pure: it runs under jit, inside lax.scan, and vmapped over set points."""
    def run(C):
        ctrl = sc.dynamicvae_pi(lambda i: C + 0.0 * i)

        def body(s, kl):
            beta, s = ctrl.update(kl, s)
            return s, beta

        return jax.lax.scan(body, ctrl.init(), jnp.linspace(0.0, 5.0, 50))[1]

    out = jax.jit(jax.vmap(run))(jnp.array([0.5, 1.0, 2.0]))
    assert out.shape == (3, 50) and bool(jnp.all(jnp.isfinite(out)))
    ctrl = sc.from_schedule(sc.tanh_schedule(4.0, 0.1))
    s = ctrl.init()
    betas = []
    for _ in range(3):
        b, s = ctrl.update(jnp.asarray(0.0), s)
        betas.append(float(b))
    assert_close(betas, [4.0 * math.tanh(0.1 * k) for k in range(3)], ROUNDOFF)


def test_closed_loop_map_plant_reaches_equilibrium():
    """The dynamic plant (one alternating sweep per update) settles at the same β* as the static one."""
    prob = nm.from_spectrum([4.0, 2.5, 1.5, 0.8, 0.4])
    variant = nm.Variant(decoder="fixed", sigma_d2=0.2)
    C = 1.0
    beta_star = sc.equilibrium_beta(prob, C, 0.0, 3, variant)
    ctrl = sc.dynamicvae_pi(sc.constant_setpoint(C), Ki=0.5, beta_init=2.0, beta_min=0.1)
    tr = sc.closed_loop(prob, ctrl, sc.constant_setpoint(C), steps=3000, m=3, variant=variant, plant="map")
    assert_close(tr.beta[-1], beta_star, CONVERGED, "beta*")
    assert_close(tr.kl[-1], C, CONVERGED, "KL")


@pytest.mark.parametrize(
    "make",
    [
        lambda: sc.constant_schedule(-1.0),
        lambda: sc.constant_schedule(float("nan")),
        lambda: sc.tanh_schedule(1.0, 0.0),
        lambda: sc.linear_schedule(-2.0, 1.0),
        lambda: sc.cyclical_schedule(1.0, 10, ratio=1.5),
        lambda: sc.controlvae_pi(sc.constant_setpoint(1.0), Kp=float("inf")),
        lambda: sc.controlvae_pi(sc.constant_setpoint(1.0), Ki=-0.001),
        lambda: sc.controlvae_pi(sc.constant_setpoint(1.0), beta_min=2.0, beta_max=1.0),
        lambda: sc.dynamicvae_pi(sc.constant_setpoint(1.0), window=0),
        lambda: sc.dynamicvae_pi(sc.constant_setpoint(1.0), anti_windup="none"),
        lambda: sc.controlvae_pi(sc.constant_setpoint(1.0), anti_windup="conditional"),
        lambda: sc.dynamicvae_pi(sc.constant_setpoint(1.0), beta_init=-5.0),
        lambda: sc.constant_setpoint(0.0),
        lambda: sc.dynamicvae_setpoint(ramp=7000),
        lambda: sc.controlvae_setpoint(C_max=0.1),
        lambda: sc.equilibrium_beta(nm.from_spectrum([2.0, 1.0]), 1.0, 0.0, 1),
    ],
)
def test_invalid_schedules_raise(make):
    with pytest.raises(ValueError):
        make()
