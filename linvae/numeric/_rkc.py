r"""A batched Runge-Kutta-Chebyshev integrator (RKC, second order) with an explicit lane axis.

For autonomous systems :math:`\dot y = F(y)` whose Jacobian has a (nearly) real, non-positive spectrum,
as every gradient flow has (:math:`J = -\mathcal P H` with :math:`\mathcal P \succ 0` and :math:`H` symmetric at
a stationary point, similar to a symmetric matrix), and whose slow modes are orders of magnitude slower
than the fastest ones: the approach of the linear VAE's flow to a steady state near the thresholds
:math:`\beta = 1 + 2\lambda\mu_i` is such a run (rates from 2 down to ~1e-4 on the published instance).
An explicit Runge-Kutta method must keep :math:`h\rho \lesssim 3` there (ρ the spectral radius), so it
needs ~ρ/r steps per e-fold of the slowest mode r. RKC's s-stage step is stable for :math:`h\rho \le
\beta(s) \approx 0.65 s^2`: it picks s per step from h and ρ, so a step of length h costs about
:math:`\sqrt{1.54\, h\rho}` evaluations and the stiff tail costs ~ :math:`\sqrt{\rho/r}` instead of ρ/r.

The scheme, its damping (ε = 2/13), the error estimate and the stage-number rule are those of
Sommeijer, Shampine & Verwer, "RKC: an explicit solver for parabolic PDEs", J. Comput. Appl. Math. 88
(1998), and Verwer, Hundsdorfer & Sommeijer, Numer. Math. 57 (1990):

.. math::
    Y_0 = y_n,\quad Y_1 = y_n + \tilde\mu_1 hF_0,\quad
    Y_j = (1-\mu_j-\nu_j)y_n + \mu_jY_{j-1} + \nu_jY_{j-2} + \tilde\mu_jhF(Y_{j-1}) + \tilde\gamma_jhF_0,
    \quad y_{n+1} = Y_s,

with :math:`w_0 = 1 + \varepsilon/s^2`, :math:`w_1 = T_s'(w_0)/T_s''(w_0)`, :math:`b_j = T_j''(w_0)/T_j'(w_0)^2`
(:math:`b_0 = b_1 = b_2`), :math:`a_j = 1 - b_jT_j(w_0)`, :math:`\tilde\mu_1 = b_1w_1`, :math:`\mu_j = 2b_jw_0/b_{j-1}`,
:math:`\nu_j = -b_j/b_{j-2}`, :math:`\tilde\mu_j = 2b_jw_1/b_{j-1}`, :math:`\tilde\gamma_j = -a_{j-1}\tilde\mu_j`; local error
estimate :math:`\tfrac{1}{15}[12(y_n - y_{n+1}) + 6h(F_n + F_{n+1})]` in the RMS norm weighted by
``atol + rtol max(|y_n|, |y_{n+1}|)``; ρ from a nonlinear power iteration, refreshed every chunk.

Everything carries the lane axis itself (arrays ``(L, D)``): each lane has its own step size, stage
count, acceptance and stopping rule, and a lane that has stopped is frozen (no NaN, no further change).
The stage loop runs to the largest stage count in the batch; lanes with fewer stages keep their result.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array

#: Damping of the Chebyshev polynomials (RKC's choice: stability boundary 0.653 s^2, well inside the damped region).
EPSILON = 2.0 / 13.0
#: Largest stage count: RKC's authors note that round-off grows like s^2 beyond a few hundred stages.
MAX_STAGES = 250

RUNNING, STEADY, HORIZON, FAILED, NON_FINITE = 0, 1, 2, 3, 4


@functools.lru_cache(maxsize=4)
def tables(max_stages: int = MAX_STAGES) -> tuple[np.ndarray, np.ndarray]:
    """RKC2 coefficients: ``coef[s, j] = (mu_j, nu_j, mu~_j, gamma~_j)`` for 2 <= j <= s, and ``mu1[s] = mu~_1``."""
    coef = np.zeros((max_stages + 1, max_stages + 1, 4))
    mu1 = np.zeros(max_stages + 1)
    for s in range(2, max_stages + 1):
        w0 = 1.0 + EPSILON / s**2
        T, dT, d2T = np.zeros(s + 1), np.zeros(s + 1), np.zeros(s + 1)
        T[0], T[1], dT[1] = 1.0, w0, 1.0
        for j in range(2, s + 1):
            T[j] = 2 * w0 * T[j - 1] - T[j - 2]
            dT[j] = 2 * T[j - 1] + 2 * w0 * dT[j - 1] - dT[j - 2]
            d2T[j] = 4 * dT[j - 1] + 2 * w0 * d2T[j - 1] - d2T[j - 2]
        w1 = dT[s] / d2T[s]
        b = np.empty(s + 1)
        b[2:] = d2T[2:] / dT[2:] ** 2
        b[0] = b[1] = b[2]
        a = 1.0 - b * T
        mu1[s] = b[1] * w1
        for j in range(2, s + 1):
            mut = 2 * b[j] * w1 / b[j - 1]
            coef[s, j] = (2 * b[j] * w0 / b[j - 1], -b[j] / b[j - 2], mut, -a[j - 1] * mut)
    return coef, mu1


def stability_bound(s) -> Array:
    r""":math:`\beta(s) \approx \tfrac23(1 - \tfrac{2}{15}\varepsilon)(s^2 - 1)`; stable for :math:`h\rho \le \beta(s)`."""
    return (2.0 / 3.0) * (1.0 - 2.0 * EPSILON / 15.0) * (s * s - 1.0)


class Lanes(NamedTuple):
    """Per-lane integrator state; every field has the lane axis first."""

    y: Array  # (L, D) state
    f: Array  # (L, D) F(y)
    t: Array  # (L,) time reached
    h: Array  # (L,) next step size (0 = not yet chosen)
    v: Array  # (L, D) power-iteration direction for the spectral radius
    rho: Array  # (L,) spectral-radius bound of the last call (0 before the first)
    steps: Array  # (L,) accepted steps
    rejected: Array  # (L,) rejected steps
    evals: Array  # (L,) evaluations of F
    status: Array  # (L,) RUNNING, STEADY, HORIZON, FAILED or NON_FINITE


def start(fv: Callable, y0: Array, consts, args) -> Lanes:
    """Initial lanes at t = 0 (``fv(y, consts, *args)`` evaluates F over the lane axis)."""
    y0 = jnp.asarray(y0)
    L, D = y0.shape
    f0 = fv(y0, consts, *args)
    zi = jnp.zeros(L, jnp.int32)
    direction = jnp.broadcast_to(jnp.cos(jnp.arange(D, dtype=y0.dtype)), (L, D))
    status = jnp.where(jnp.all(jnp.isfinite(f0), axis=1), RUNNING, NON_FINITE).astype(jnp.int32)
    zf = jnp.zeros(L, y0.dtype)
    return Lanes(y0, f0, zf, zf, direction, zf, zi, zi, zi + 1, status)


def _norm(x: Array) -> Array:
    return jnp.sqrt(jnp.sum(x * x, axis=-1))


def spectral_radius(fv: Callable, y: Array, f: Array, v: Array, consts, args, iters: int) -> tuple[Array, Array]:
    """Nonlinear power iteration on ``v -> (F(y + d v) - F(y)) / d`` per lane; returns (ρ estimate, direction)."""
    size = 1.0 + _norm(y)

    def body(_, carry):
        v, _ = carry
        vn = jnp.maximum(_norm(v), 1e-300)[:, None]
        d = (1e-7 * size)[:, None]
        w = (fv(y + d * (v / vn), consts, *args) - f) / d
        return w, _norm(w)

    v, rho = jax.lax.fori_loop(0, iters, body, (v, jnp.zeros(y.shape[0], y.dtype)))
    return rho, jnp.where(jnp.all(jnp.isfinite(v), axis=1, keepdims=True), v, f)


@functools.partial(jax.jit, static_argnames=("fv", "steady", "num_steps", "power_iters", "max_stages"))
def advance(
    fv: Callable,
    steady: Callable,
    lanes: Lanes,
    consts,
    args,
    t1,
    rtol,
    atol,
    max_steps,
    *,
    num_steps: int,
    power_iters: int = 6,
    max_stages: int = MAX_STAGES,
) -> Lanes:
    """Up to ``num_steps`` RKC steps (accepted or rejected) on every running lane.

    Args:
        fv: ``fv(y, consts, *args) -> F`` over the lane axis, ``y`` of shape (L, D); hashable (static).
        steady: ``steady(y, f, consts, *args) -> bool (L,)``: a lane stops (STEADY) after an accepted step ending
            where this holds.
        lanes: the state (:func:`start`).
        consts: arguments shared by all lanes (a pytree).
        args: per-lane arguments of ``fv`` (arrays with a leading lane axis).
        t1: a lane stops (HORIZON) when it reaches this time.
        rtol, atol: local error tolerances.
        max_steps: a lane that has taken this many steps (accepted + rejected) stops as FAILED; so does a
            lane whose step size underflows.
        num_steps: steps in this call (static).
        power_iters: power iterations refreshing ρ at the start of the call (static).
        max_stages: cap on the stage count (static); h is capped so that hρ stays within β(max_stages).
    """
    coef_np, mu1_np = tables(max_stages)
    coef, mu1 = jnp.asarray(coef_np), jnp.asarray(mu1_np)
    running = lanes.status == RUNNING
    rho, v = spectral_radius(fv, lanes.y, lanes.f, lanes.v, consts, args, power_iters)
    rho = 1.2 * jnp.where(jnp.isfinite(rho), rho, 0.0) + 1e-12
    evals = lanes.evals + jnp.where(running, power_iters, 0)
    h_stab = stability_bound(float(max_stages)) / rho
    # First step: RKC's rule, h = min(1/ρ, ...) shrunk towards the local error scale.
    h0 = jnp.minimum(0.1 / rho, (rtol ** (1.0 / 3.0)) * jnp.ones_like(rho))
    h_init = jnp.where(lanes.h > 0, lanes.h, h0)
    lanes = lanes._replace(v=v, rho=rho, evals=evals, h=h_init)

    def step(ln: Lanes, _):
        run = ln.status == RUNNING
        h = jnp.minimum(jnp.minimum(ln.h, h_stab), t1 - ln.t)
        s = jnp.clip(1 + jnp.floor(jnp.sqrt(1.0 + 1.54 * h * rho)), 2, max_stages).astype(jnp.int32)
        s = jnp.where(run, s, 2)
        y, f0 = ln.y, ln.f
        Y1 = y + (mu1[s] * h)[:, None] * f0

        def stage(j, carry):
            Ym2, Ym1 = carry
            c = coef[s, j]
            mu, nu, mut, gat = (c[:, i : i + 1] for i in range(4))
            hb = h[:, None]
            Yj = (1.0 - mu - nu) * y + mu * Ym1 + nu * Ym2 + (mut * hb) * fv(Ym1, consts, *args) + (gat * hb) * f0
            active = (j <= s)[:, None]
            return jnp.where(active, Ym1, Ym2), jnp.where(active, Yj, Ym1)

        _, yn = jax.lax.fori_loop(2, jnp.max(s) + 1, stage, (y, Y1))
        fn = fv(yn, consts, *args)
        est = (12.0 * (y - yn) + 6.0 * h[:, None] * (f0 + fn)) / 15.0
        scale = atol + rtol * jnp.maximum(jnp.abs(y), jnp.abs(yn))
        err = jnp.sqrt(jnp.mean((est / scale) ** 2, axis=1))
        finite = jnp.all(jnp.isfinite(yn), axis=1) & jnp.all(jnp.isfinite(fn), axis=1) & jnp.isfinite(err)
        accept = run & finite & (err <= 1.0)
        # Step-size control (RKC): fac = 0.8 err^(-1/3), within [0.1, 10]; no growth after a rejection.
        fac = jnp.clip(0.8 * jnp.maximum(jnp.where(finite, err, jnp.inf), 1e-30) ** (-1.0 / 3.0), 0.1, 10.0)
        fac = jnp.where(accept, fac, jnp.minimum(fac, 0.5))
        keep = accept[:, None]
        y_new = jnp.where(keep, yn, y)
        f_new = jnp.where(keep, fn, f0)
        t_new = jnp.where(accept, ln.t + h, ln.t)
        steps = ln.steps + accept
        rejected = ln.rejected + (run & ~accept)
        status = ln.status
        status = jnp.where(accept & steady(y_new, f_new, consts, *args), STEADY, status)
        status = jnp.where(run & (status == RUNNING) & (t_new >= t1), HORIZON, status)
        too_small = h * fac <= 1e-14 * jnp.maximum(1.0, jnp.abs(t_new))
        status = jnp.where(run & (status == RUNNING) & ((steps + rejected >= max_steps) | too_small), FAILED, status)
        return Lanes(
            y_new, f_new, t_new, jnp.where(run, h * fac, ln.h), ln.v, ln.rho, steps, rejected,
            ln.evals + jnp.where(run, s, 0), status,
        ), None

    lanes, _ = jax.lax.scan(step, lanes, None, length=num_steps)
    return lanes
