r"""β schedules and feedback controllers as pure JAX state machines (docs/theory.md §7).

Every schedule or controller is a :class:`BetaController`, a pair of pure functions in the style of
optax's ``GradientTransformation``::

    ctrl = dynamicvae_pi(dynamicvae_setpoint())
    state = ctrl.init()
    beta, state = ctrl.update(kl, state)     # kl: the measured batch KL (nats, summed over latents)

``update`` is jit-, scan- and vmap-friendly, so the same object drives the linear plant here
(:func:`closed_loop`) and a deep training loop. Open-loop schedules ignore ``kl``.

Conventions (docs/theory.md §7, §10.3, §10.13): error :math:`e = C - \widehat{\mathrm{KL}}` (target minus
measured), so a KL above target gives :math:`e < 0` and raises β; the P term is :math:`K_p\sigma(-e)
= K_p/(1 + e^{e})`; integral gains are given with the paper's sign (:math:`K_i > 0`; the repositories
write :math:`-K_i` and add :math:`K_ie`); the stored state is the *unclipped* β, anti-windup tests the
previous unclipped value, and the output is clipped below at :math:`\beta_{\min}` only.

Anti-windup (T25 c, d): by default the integral is held only while the output is clipped *and* the error
would push it further down (:math:`\beta_{\rm raw}(t-1) < \beta_{\min}` and :math:`e(t) > 0`; conditional
integration, "clamping"), so a KL above target always unwinds it. ``anti_windup="published"`` is the
repositories' rule, which holds it whenever the output is clipped: once the integral part of
:math:`\beta_{\rm raw}` is :math:`\le -K_p` (one KL below target by :math:`K_p/K_i` from the initial
state), β stays at :math:`\beta_{\min}` for every later KL (proofs/pi-equilibrium.md).

Theorem: pi-equilibrium (T25)

References:
    Shao et al., ControlVAE, ICML 2020, arXiv:2004.05988 (code ``Disentangling/P_PID.py``);
    Shao et al., DynamicVAE, CVPR 2022, arXiv:2009.06795 (code ``2D-sprites/I_PID.py``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Literal, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array

from linvae.numeric._precision import float64
from linvae.numeric._validation import check_latent_dim
from linvae.numeric.alternating import decoder_block, encoder_block
from linvae.numeric.loss import loss_terms
from linvae.numeric.model import D1, Variant
from linvae.numeric.problem import Problem

Schedule = Callable[[Array], Array]
SetPoint = Callable[[Array], Array]
#: When a PI controller holds its integral: ``"clamping"`` (while clipped and e > 0; the default) or
#: ``"published"`` (whenever clipped, as in the ControlVAE and DynamicVAE repositories).
AntiWindup = Literal["clamping", "published"]


class BetaController(NamedTuple):
    """A β schedule or controller: ``init() -> state`` and ``update(kl, state) -> (beta, state)``."""

    init: Callable[[], NamedTuple]
    update: Callable[[Array, NamedTuple], tuple[Array, NamedTuple]]


# ---------------------------------------------------------------------------------------------------
# Validation
# ---------------------------------------------------------------------------------------------------


def _finite(name: str, x, *, lo: float | None = None, strict: bool = False) -> float:
    try:
        v = float(x)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a real number; got {x!r}") from None
    if not math.isfinite(v):
        raise ValueError(f"{name} must be finite; got {v}")
    if lo is not None and (v < lo or (strict and v == lo)):
        raise ValueError(f"{name} must be {'>' if strict else '>='} {lo}; got {v}")
    return v


def _anti_windup(rule) -> AntiWindup:
    if rule not in ("clamping", "published"):
        raise ValueError(f"anti_windup must be 'clamping' or 'published'; got {rule!r}")
    return rule


def _holds(beta_raw_prev: Array, e: Array, beta_min: float, rule: AntiWindup) -> Array:
    """Whether the integral is held at this update: the output was clipped (and, for clamping, e > 0)."""
    clipped = beta_raw_prev < beta_min
    return clipped if rule == "published" else clipped & (e > 0)


def _count(name: str, x, lo: int = 1) -> int:
    if isinstance(x, bool) or int(x) != x or int(x) < lo:
        raise ValueError(f"{name} must be an integer >= {lo}; got {x!r}")
    return int(x)


# ---------------------------------------------------------------------------------------------------
# Open-loop schedules (functions of the step or of continuous time)
# ---------------------------------------------------------------------------------------------------


@float64
def constant_schedule(beta: float) -> Schedule:
    """:math:`\\beta(t) = \\beta`."""
    beta = _finite("beta", beta, lo=0.0, strict=True)
    return lambda t: jnp.full(jnp.shape(t), beta, dtype=jnp.result_type(float))


@float64
def tanh_schedule(beta_final: float, gamma: float) -> Schedule:
    r""":math:`\beta(t) = \beta_{\rm final}\tanh(\gamma t)` (KL annealing of [IH23], docs/theory.md §6)."""
    beta_final = _finite("beta_final", beta_final, lo=0.0, strict=True)
    gamma = _finite("gamma", gamma, lo=0.0, strict=True)
    return lambda t: beta_final * jnp.tanh(gamma * jnp.asarray(t, dtype=jnp.result_type(float)))


@float64
def linear_schedule(beta_final: float, gamma: float) -> Schedule:
    r""":math:`\beta(t) = \beta_{\rm final}\min(\gamma t, 1)` (linear warm-up over :math:`t \le 1/\gamma`)."""
    beta_final = _finite("beta_final", beta_final, lo=0.0, strict=True)
    gamma = _finite("gamma", gamma, lo=0.0, strict=True)
    return lambda t: beta_final * jnp.minimum(gamma * jnp.asarray(t, dtype=jnp.result_type(float)), 1.0)


@float64
def cyclical_schedule(beta_max: float, period: float, ratio: float = 0.5) -> Schedule:
    r"""Cyclical annealing (Fu et al. 2019): within each period, a linear ramp from 0 to
    :math:`\beta_{\max}` over the first ``ratio`` of it, then :math:`\beta_{\max}`."""
    beta_max = _finite("beta_max", beta_max, lo=0.0, strict=True)
    period = _finite("period", period, lo=0.0, strict=True)
    ratio = _finite("ratio", ratio, lo=0.0, strict=True)
    if ratio > 1:
        raise ValueError(f"ratio must be in (0, 1]; got {ratio}")

    def f(t):
        phase = jnp.mod(jnp.asarray(t, dtype=jnp.result_type(float)), period) / period
        return beta_max * jnp.minimum(phase / ratio, 1.0)

    return f


class ScheduleState(NamedTuple):
    """State of an open-loop schedule: the number of updates so far."""

    step: Array


@float64
def from_schedule(schedule: Schedule) -> BetaController:
    """An open-loop schedule as a :class:`BetaController` (``kl`` is ignored; β is evaluated at ``step``)."""

    def init() -> ScheduleState:
        return ScheduleState(jnp.asarray(0, jnp.int32))

    def update(kl, state: ScheduleState):
        del kl
        return schedule(state.step), ScheduleState(state.step + 1)

    return BetaController(init, update)


# ---------------------------------------------------------------------------------------------------
# Set points
# ---------------------------------------------------------------------------------------------------


@float64
def constant_setpoint(C: float) -> SetPoint:
    """A fixed KL target ``C`` (nats, > 0)."""
    C = _finite("C", C, lo=0.0, strict=True)
    return lambda i: jnp.full(jnp.shape(i), C, dtype=jnp.result_type(float))


@float64
def controlvae_setpoint(C0: float = 0.5, increment: float = 0.15, every: int = 5000, C_max: float = 16.0) -> SetPoint:
    r"""ControlVAE's staircase: :math:`C(i) = \min(C_{\max}, C_0 + 0.15\lfloor i/5000\rfloor)` (docs/theory.md §7)."""
    C0 = _finite("C0", C0, lo=0.0, strict=True)
    increment = _finite("increment", increment, lo=0.0)
    every = _count("every", every)
    C_max = _finite("C_max", C_max, lo=C0)
    return lambda i: jnp.minimum(C_max, C0 + increment * jnp.floor_divide(jnp.asarray(i), every))


@float64
def dynamicvae_setpoint(
    C0: float = 0.5, increment: float = 0.15, period: int = 6000, ramp: int = 1000, C_max: float = 20.0
) -> SetPoint:
    r"""DynamicVAE's hybrid annealing: for :math:`i \ge` ``period`` with :math:`i \bmod` ``period`` :math:`<`
    ``ramp``, add ``increment/ramp`` at iteration i (before it is used), capped at :math:`C_{\max}`.

    In closed form, with :math:`w = \lfloor i/P\rfloor` and :math:`r = i \bmod P`, the number of ramp
    iterations up to and including i is :math:`R(i) = \mathrm{ramp}\,(w - 1) + \min(r + 1, \mathrm{ramp})`
    for :math:`i \ge P` (else 0), and :math:`C(i) = \min(C_{\max}, C_0 + \mathrm{increment}\,R(i)/\mathrm{ramp})`.
    With the defaults :math:`C_{\max}` is reached at the end of the 130th ramp, :math:`i = 6000\cdot130 + 999`.
    """
    C0 = _finite("C0", C0, lo=0.0, strict=True)
    increment = _finite("increment", increment, lo=0.0)
    period = _count("period", period)
    ramp = _count("ramp", ramp)
    if ramp > period:
        raise ValueError(f"ramp must be <= period; got ramp={ramp}, period={period}")
    C_max = _finite("C_max", C_max, lo=C0)

    def f(i):
        i = jnp.asarray(i)
        w, r = jnp.floor_divide(i, period), jnp.mod(i, period)
        count = jnp.where(i >= period, ramp * (w - 1) + jnp.minimum(r + 1, ramp), 0)
        return jnp.minimum(C_max, C0 + increment * count / ramp)

    return f


# ---------------------------------------------------------------------------------------------------
# Feedback controllers
# ---------------------------------------------------------------------------------------------------


class ControlVAEState(NamedTuple):
    """ControlVAE PI state: step, integral term I, previous *unclipped* β."""

    step: Array
    integral: Array
    beta_raw: Array


@float64
def controlvae_pi(
    setpoint: SetPoint,
    *,
    Kp: float = 0.01,
    Ki: float = 0.001,
    beta_min: float = 1.0,
    beta_max: float | None = None,
    anti_windup: AntiWindup = "clamping",
) -> BetaController:
    r"""ControlVAE's non-linear PI controller (positional form, docs/theory.md §7).

    .. math::
        e(t) = C(t) - \mathrm{KL}(t),\quad I(t) = I(t-1) - K_ie(t),\quad
        \beta_{\rm raw}(t) = \frac{K_p}{1 + \exp e(t)} + \beta_{\min} + I(t),\quad
        \beta(t) = \max(\beta_{\rm raw}(t), \beta_{\min}),

    with anti-windup :math:`I(t) = I(t-1)` when the previous unclipped :math:`\beta_{\rm raw}(t-1) < \beta_{\min}`
    and :math:`e(t) > 0` (``anti_windup="clamping"``, the default), or whenever
    :math:`\beta_{\rm raw}(t-1) < \beta_{\min}` (``"published"``: the code's rule, which can lock β at
    :math:`\beta_{\min}` for good, see the module docstring).
    Initial state: :math:`I = 0`, :math:`\beta_{\rm raw} = \beta_{\min}` (code: ``I_k1 = 0``, ``W_k1 = 1``).
    Defaults are the disentangling run's (:math:`K_p = 0.01`, :math:`K_i = 0.001`, :math:`\beta_{\min} = 1`, no
    upper clip); ``beta_max`` adds the paper's upper clip to the *output* only.

    Theorem: pi-equilibrium
    """
    Kp = _finite("Kp", Kp, lo=0.0)
    Ki = _finite("Ki", Ki, lo=0.0)
    beta_min = _finite("beta_min", beta_min, lo=0.0)
    if beta_max is not None:
        beta_max = _finite("beta_max", beta_max, lo=beta_min, strict=True)
    anti_windup = _anti_windup(anti_windup)

    def init() -> ControlVAEState:
        f = jnp.result_type(float)
        return ControlVAEState(jnp.asarray(0, jnp.int32), jnp.asarray(0.0, f), jnp.asarray(beta_min, f))

    def update(kl, s: ControlVAEState):
        e = setpoint(s.step) - kl
        P = Kp * jax.nn.sigmoid(-e)
        integral = jnp.where(_holds(s.beta_raw, e, beta_min, anti_windup), s.integral, s.integral - Ki * e)
        beta_raw = P + beta_min + integral
        beta = jnp.maximum(beta_raw, beta_min)
        if beta_max is not None:
            beta = jnp.minimum(beta, beta_max)
        return beta, ControlVAEState(s.step + 1, integral, beta_raw)

    return BetaController(init, update)


class DynamicVAEState(NamedTuple):
    """DynamicVAE PI state: step, previous unclipped β, previous error, the KL window (oldest first)."""

    step: Array
    beta_raw: Array
    error: Array
    window: Array


@float64
def dynamicvae_pi(
    setpoint: SetPoint,
    *,
    Kp: float = 0.01,
    Ki: float = 0.005,
    beta_min: float = 0.1,
    beta_init: float = 50.0,
    window: int = 5,
    anti_windup: AntiWindup = "clamping",
) -> BetaController:
    r"""DynamicVAE's incremental PI controller with a moving-average KL (docs/theory.md §7).

    .. math::
        \Delta\beta(t) = K_p\big[\sigma(-e(t)) - \sigma(-e(t-1))\big] - K_ie(t),\quad
        \beta_{\rm raw}(t) = \beta_{\rm raw}(t-1) + \Delta\beta(t),\quad \beta(t) = \max(\beta_{\rm raw}(t), \beta_{\min}),

    :math:`e(0) := 0`; the :math:`-K_ie(t)` increment is dropped when :math:`\beta_{\rm raw}(t-1) < \beta_{\min}`
    and :math:`e(t) > 0` (``anti_windup="clamping"``, the default) or whenever
    :math:`\beta_{\rm raw}(t-1) < \beta_{\min}` (``"published"``, the code's rule);
    the error uses the mean of the last ``window`` KLs, the queue pre-filled with ``window - 1`` zeros.
    Defaults: :math:`K_p = 0.01`, :math:`K_i = 0.005`, :math:`\beta_{\min} = 0.1`, :math:`\beta(0) = 50`, ``window = 5``
    (the dSprites run script). Without clipping events it telescopes to the positional PI
    :math:`\beta_{\rm raw}(t) = \beta(0) + K_p[\sigma(-e(t)) - \tfrac12] - K_i\sum_{j\le t}e(j)` (T25 b).

    Theorem: pi-equilibrium
    """
    Kp = _finite("Kp", Kp, lo=0.0)
    Ki = _finite("Ki", Ki, lo=0.0)
    beta_min = _finite("beta_min", beta_min, lo=0.0)
    beta_init = _finite("beta_init", beta_init, lo=0.0)
    window = _count("window", window)
    anti_windup = _anti_windup(anti_windup)

    def init() -> DynamicVAEState:
        f = jnp.result_type(float)
        return DynamicVAEState(
            jnp.asarray(0, jnp.int32), jnp.asarray(beta_init, f), jnp.asarray(0.0, f), jnp.zeros((window,), f)
        )

    def update(kl, s: DynamicVAEState):
        win = jnp.concatenate([s.window[1:], jnp.reshape(jnp.asarray(kl, s.window.dtype), (1,))])
        e = setpoint(s.step) - jnp.mean(win)
        dP = Kp * (jax.nn.sigmoid(-e) - jax.nn.sigmoid(-s.error))
        dI = jnp.where(_holds(s.beta_raw, e, beta_min, anti_windup), 0.0, -Ki * e)
        beta_raw = s.beta_raw + dP + dI
        return jnp.maximum(beta_raw, beta_min), DynamicVAEState(s.step + 1, beta_raw, e, win)

    return BetaController(init, update)


# ---------------------------------------------------------------------------------------------------
# The linear plant
# ---------------------------------------------------------------------------------------------------


def _sigma_eff2(lam, variant: Variant) -> float:
    return 1.0 / (1.0 / variant.sigma_d2 + 2.0 * lam)


@float64
def optimal_rate(prob: Problem, beta, lam, m: int, variant: Variant = D1) -> Array:
    r"""The quasi-static plant: the KL :math:`\mathcal R_{\rm rate}(\beta)` of the optimum at β (jit-friendly).

    D3 (Lucas, §4): :math:`\tfrac12\sum_{i\le m}\log^+(\mu_i/\theta)`, :math:`\theta = \beta\sigma_{\rm eff}^2`.
    D1 with λ > 0 (water filling, §3.9): :math:`\tfrac12\sum_{i\le m}\log^+(\mu_i/D)`, :math:`D = (\beta-1)/(2\lambda)`;
    ``inf`` for β ≤ 1 (no minimiser, §3.10).
    """
    mu = prob.mu[:m]
    if variant.decoder == "fixed":
        level = beta * _sigma_eff2(lam, variant)
    else:
        level = jnp.where(beta > 1.0, (beta - 1.0) / (2.0 * lam), 0.0)
    rate = 0.5 * jnp.sum(jnp.log(jnp.maximum(mu / level, 1.0)))
    return jnp.where(level > 0, rate, jnp.inf)


@float64
def equilibrium_beta(prob: Problem, C: float, lam: float, m: int, variant: Variant = D1) -> float:
    r"""The closed-loop equilibrium :math:`\beta^\ast` with :math:`\mathcal R_{\rm rate}(\beta^\ast) = C` (docs/theory.md §7).

    .. math::
        \text{D3: }\beta^\ast = \sigma_{\rm eff}^{-2}\exp\Big(\frac{\sum_{i\in\mathcal A}\log\mu_i - 2C}{|\mathcal A|}\Big),\qquad
        \text{D1, λ>0: }\beta^\ast = 1 + 2\lambda\exp\Big(\frac{\sum_{i\in\mathcal A}\log\mu_i - 2C}{|\mathcal A|}\Big),

    with :math:`\mathcal A` the self-consistent active set (the rate is strictly decreasing where positive,
    so β* is unique). The saturated case (:math:`C > \mathcal R_{\rm rate}(\beta_{\min})`) is the caller's test.

    Raises:
        ValueError: C ≤ 0, or the D1 plant with λ = 0 (no equilibrium, §7), or the D2 variant.

    Theorem: pi-equilibrium
    """
    C = _finite("C", C, lo=0.0, strict=True)
    lam = _finite("lam", lam, lo=0.0)
    m = check_latent_dim(m, prob.n)
    if variant.decoder == "isotropic":
        raise ValueError("the D2 plant has no closed-form rate; use D1 (lam > 0) or D3")
    if variant.decoder == "full" and lam == 0:
        raise ValueError("D1 with lam = 0 has rate 0 for every beta > 1: no closed-loop equilibrium (§7)")
    mu = np.asarray(prob.mu[:m], dtype=np.float64)
    logs = np.cumsum(np.log(mu))
    for k in range(1, m + 1):
        level = math.exp((logs[k - 1] - 2.0 * C) / k)  # θ (D3) or D (D1) of the top-k active set
        if mu[k - 1] > level and (k == m or mu[k] <= level):
            if variant.decoder == "fixed":
                return level / _sigma_eff2(lam, variant)
            return 1.0 + 2.0 * lam * level
    raise AssertionError("no self-consistent active set: the rate is not monotone (unreachable)")


class LoopTrace(NamedTuple):
    """Closed-loop trajectories, one entry per controller update.

    Attributes:
        beta: the controller output β(t).
        kl: the plant's KL seen at step t (the input of the update that produced β(t)).
        setpoint: the target C(t).
    """

    beta: Array
    kl: Array
    setpoint: Array


@float64
def closed_loop(
    prob: Problem,
    controller: BetaController,
    setpoint: SetPoint,
    *,
    steps: int,
    lam: float = 0.0,
    m: int,
    variant: Variant = D1,
    plant: Literal["static", "map"] = "static",
    beta0: float = 1.0,
) -> LoopTrace:
    r"""Run a β controller against the linear plant for ``steps`` updates (one ``lax.scan``).

    ``plant="static"``: the measured KL is the optimal rate at the current β (:func:`optimal_rate`), the
    quasi-static plant of docs/theory.md §7. ``plant="map"``: one alternating sweep per update at the current β
    from the collapsed-but-perturbed start, KL = :math:`\mathcal K` of the new state (a plant with lag; the
    equilibrium is the same). The first KL is measured at ``beta0``.

    Theorem: pi-equilibrium
    """
    steps = _count("steps", steps)
    lam = _finite("lam", lam, lo=0.0)
    m = check_latent_dim(m, prob.n)
    beta0 = _finite("beta0", beta0, lo=0.0, strict=True)
    if plant not in ("static", "map"):
        raise ValueError(f"plant must be 'static' or 'map'; got {plant!r}")
    Sy, n = prob.Sigma_Y, prob.n

    if plant == "static":

        def measure(beta, aux):
            return optimal_rate(prob, beta, lam, m, variant), aux

        aux0 = jnp.zeros(())
    else:

        def measure(beta, aux):
            B, W = aux
            A, Z = decoder_block(Sy, B, W, variant)
            B, W = encoder_block(A, Z, beta, lam, variant)
            A, Z = decoder_block(Sy, B, W, variant)
            return loss_terms(Sy, B, W, A, Z, beta, lam).kl, (B, W)

        B0 = 0.1 * prob.U[:, :m].T + 0.01 * jnp.ones((m, n))
        aux0 = (B0, jnp.eye(m))

    def body(carry, _):
        state, beta, aux = carry
        kl, aux = measure(beta, aux)
        C = setpoint(state.step)
        beta_next, state = controller.update(kl, state)
        return (state, beta_next, aux), (beta_next, kl, C)

    @jax.jit
    def run(aux):
        carry0 = (controller.init(), jnp.asarray(beta0), aux)
        _, out = jax.lax.scan(body, carry0, None, length=steps)
        return out

    return LoopTrace(*run(aux0))
