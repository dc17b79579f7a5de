"""T25 pi-equilibrium (docs/theory.md §7): controllers on a static linear plant.

(a) an interior equilibrium has R_rate(β*) = C with the closed-form β*; if C > R_rate(β_min) the loop
    saturates at β_min; (b) DynamicVAE's incremental form equals the telescoped positional form without
    clipping; (c) outputs are always >= β_min; (d) a sustained KL above target raises β.

Assumptions (proofs/pi-equilibrium.md): A1 quasi-static plant (KL = optimal rate at the current β);
A2 D3 plant, or D1 with λ > 0 and β_min > 1; A3 gains small enough for the discrete loop to be stable.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from hypothesis import assume, given
from hypothesis import strategies as st

import linvae.numeric as nm
from linvae._tolerance import CONVERGED, IDENTITY
from linvae.numeric import schedules as sc
from tests.helpers import assert_close

N, M = 5, 3
STEPS = 6000


@st.composite
def plants(draw):
    mu = np.sort([draw(st.floats(0.3, 8.0)) for _ in range(N)])[::-1]
    kind = draw(st.sampled_from(["D3", "D1"]))
    if kind == "D3":
        variant, lam, beta_min = nm.Variant(decoder="fixed", sigma_d2=draw(st.floats(0.05, 0.5))), 0.0, 1.0
    else:
        variant, lam, beta_min = nm.D1, draw(st.floats(0.2, 2.0)), draw(st.floats(1.1, 2.0))  # A2
    return nm.from_spectrum(mu), variant, lam, beta_min


def _controller(kind, setpoint, beta_min, gain):
    if kind == "controlvae":
        return sc.controlvae_pi(setpoint, Kp=0.01, Ki=gain, beta_min=beta_min)
    return sc.dynamicvae_pi(setpoint, Kp=0.01, Ki=gain, beta_min=beta_min, beta_init=beta_min + 3.0)


@given(plant=plants(), frac=st.floats(0.2, 0.8), kind=st.sampled_from(["controlvae", "dynamicvae"]))
def test_pi_equilibrium_interior(plant, frac, kind):
    """(a) The loop settles at β* with R_rate(β*) = C (C a fraction of R_rate(β_min), so interior)."""
    prob, variant, lam, beta_min = plant
    r_min = float(sc.optimal_rate(prob, beta_min, lam, M, variant))
    assume(r_min > 0.05)
    C = frac * r_min
    beta_star = sc.equilibrium_beta(prob, C, lam, M, variant)
    assert beta_star > beta_min
    assert_close(sc.optimal_rate(prob, beta_star, lam, M, variant), C, IDENTITY, "R_rate(beta*) = C")
    # A3: loop gain Ki |dR/dbeta| <= 0.2 at beta*: a monotone approach despite the 5-step KL window.
    slope = float(jax.grad(lambda b: sc.optimal_rate(prob, b, lam, M, variant))(beta_star))
    gain = min(0.2, 0.2 / abs(slope))
    ctrl = _controller(kind, sc.constant_setpoint(C), beta_min, gain)
    # The first KL is measured at the controllers' initial output (ControlVAE: β_min, KL above target);
    # starting with KL below target would freeze ControlVAE's integral below β_min for good.
    beta0 = beta_min if kind == "controlvae" else beta_min + 3.0
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
    ctrl = _controller(kind, sc.constant_setpoint(C), beta_min, 0.05)
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
    window = 5
    ctrl = sc.dynamicvae_pi(sc.constant_setpoint(C), Kp=Kp, Ki=Ki, beta_min=0.1, beta_init=beta0, window=window)
    betas, errors = _run(ctrl, kls)
    assume(np.min(betas) > 0.1)  # no clipping or anti-windup event
    padded = np.r_[np.zeros(window - 1), kls]
    e = C - np.array([padded[t : t + window].mean() for t in range(len(kls))])
    assert_close(errors, e, IDENTITY, "errors on the moving average")
    telescoped = beta0 + Kp * (1.0 / (1.0 + np.exp(e)) - 0.5) - Ki * np.cumsum(e)
    assert_close(betas, telescoped, IDENTITY, "telescoped positional form")


def _run(ctrl, kls):
    state = ctrl.init()
    betas, errors = [], []
    for kl in kls:
        beta, state = ctrl.update(jnp.asarray(kl), state)
        betas.append(float(beta))
        errors.append(float(getattr(state, "error", np.nan)))
    return np.array(betas), np.array(errors)


@given(
    kls=st.lists(st.floats(0.0, 100.0), min_size=1, max_size=60),
    C=st.floats(0.1, 20.0),
    beta_min=st.floats(0.0, 5.0),
    kind=st.sampled_from(["controlvae", "dynamicvae"]),
)
def test_pi_equilibrium_output_bounded_below(kls, C, beta_min, kind):
    """(c) β(t) >= β_min for every KL sequence, while the stored state may go below."""
    ctrl = _controller(kind, sc.constant_setpoint(C), beta_min, 0.01)
    betas, _ = _run(ctrl, kls)
    assert np.all(betas >= beta_min)


@given(
    C=st.floats(0.1, 10.0),
    excess=st.floats(0.01, 10.0),
    kind=st.sampled_from(["controlvae", "dynamicvae"]),
)
def test_pi_equilibrium_kl_above_target_raises_beta(C, excess, kind):
    """(d) A sustained KL above target (e < 0) raises β, monotonically.

    DynamicVAE's window starts with zeros (docs/theory.md §10.13), so its averaged KL is above target only
    once enough real KLs have entered it; from then on β rises."""
    ctrl = _controller(kind, sc.constant_setpoint(C), 1.0, 0.01)
    betas, _ = _run(ctrl, [C + excess] * 30)
    if kind == "dynamicvae":
        betas = betas[5:]  # the default window
    assert np.all(np.diff(betas) >= 0) and betas[-1] > betas[0]
