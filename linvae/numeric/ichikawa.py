r"""High-dimensional online-SGD dynamics of the linear VAE of Ichikawa & Hukushima (docs/theory.md §6).

*In this module only* (as in docs/theory.md §6) :math:`W` is the decoder weight, :math:`\tilde W` the encoder
weight, :math:`R` an order parameter, κ the weight decay, and the data are spiked:
:math:`x = \sqrt{\rho/N}\,W_\star c + \sqrt\eta\,\xi` (:func:`~linvae.numeric.spiked`), signal eigenvalue
:math:`\Lambda = \rho + \eta`. Per-sample loss (official code, analytic expectation, decodes μ):

.. math::
    \ell = -x^\top\hat x + \tfrac1{2N}\mu^\top W^\top W\mu + \tfrac1{2N}\sum_i(W^\top W)_{ii}v_i
      + \tfrac\beta2\sum_i(\mu_i^2 + v_i - \log v_i) + \tfrac\kappa{2N}(\|W\|_F^2 + \|\tilde W\|_F^2),

:math:`\mu = \tilde W^\top x/\sqrt N`, :math:`\hat x = W\mu/\sqrt N`. Online SGD: one fresh sample per step,
learning rate τ for :math:`W, \tilde W` and τ/N for v; time t = steps/N. Order parameters
:math:`m = W^\top W_\star/N`, :math:`\tilde m = \tilde W^\top W_\star/N`, :math:`Q = W^\top W/N`,
:math:`\tilde Q = \tilde W^\top\tilde W/N`, :math:`R = W^\top\tilde W/N`, v.

What is here: :func:`online_sgd` (the simulation), :func:`ode_matrix` and :func:`ode_scalar` (the
order-parameter ODEs with the τ² SGD-noise terms), :func:`integrate_ode`, the fixed points and the
collapse threshold, the superfluous-latent rule, KL annealing and convergence time.

Theorems: ``ichikawa-ode`` (T22), ``ichikawa-fixed-point`` (T23), ``ichikawa-threshold`` (T24).

References:
    Y. Ichikawa, K. Hukushima, *Learning Dynamics in Linear VAE*, AISTATS 2024, arXiv:2310.15440;
    code ``Yuma-Ichikawa/LearningDynamicsVAE``.
"""

from __future__ import annotations

import functools
import math
from typing import Literal, NamedTuple

import diffrax
import jax
import jax.numpy as jnp
import numpy as np
from jax import Array

from linvae._tolerance import SOLVER
from linvae.numeric._precision import float64
from linvae.numeric.problem import spiked


class OrderParams(NamedTuple):
    r"""Order parameters of the [IH23] model.

    Shapes (matrix form): ``m``, ``mt`` (M, M*); ``Q``, ``Qt``, ``R`` (M, M); ``v`` (M,). The scalar form
    (M = M* = 1) uses 0-d arrays. Leading batch/time axes are allowed everywhere.
    """

    m: Array
    mt: Array
    Q: Array
    Qt: Array
    R: Array
    v: Array


class Hyper(NamedTuple):
    """Model and SGD constants: signal ρ, noise η, KL weight β, learning rate τ, weight decay κ."""

    rho: Array
    eta: Array
    beta: Array
    tau: Array
    kappa: Array


def _check_hyper(rho, eta, beta, tau, kappa) -> Hyper:
    vals = {"rho": rho, "eta": eta, "beta": beta, "tau": tau, "kappa": kappa}
    for k, x in vals.items():
        x = float(x)
        if not math.isfinite(x) or x < 0 or (x == 0 and k != "kappa"):
            raise ValueError(f"{k} must be finite and {'>= 0' if k == 'kappa' else '> 0'}; got {x}")
    return Hyper(*(jnp.asarray(float(vals[k])) for k in Hyper._fields))


# ---------------------------------------------------------------------------------------------------
# The ODEs
# ---------------------------------------------------------------------------------------------------


@float64
def ode_scalar(op: OrderParams, h: Hyper, noise: bool = True) -> OrderParams:
    r"""Right-hand side of the scalar order-parameter ODE (M = M* = 1), docs/theory.md §6.

    With :math:`\Sigma_\mu = \rho\tilde m^2 + \eta\tilde Q`, :math:`C = \rho m\tilde m + \eta R`,
    :math:`\Sigma_s = \rho m^2 + \eta Q`, :math:`P = Q + \beta`:

    .. math::
        \dot m = \tau[\Lambda\tilde m - (\Sigma_\mu + v + \kappa)m],\quad
        \dot{\tilde m} = \tau[\Lambda m - (P\Lambda + \kappa)\tilde m],\quad
        \dot Q = 2\tau[C - (\Sigma_\mu + v + \kappa)Q] + \tau^2\eta\Sigma_\mu,

    .. math::
        \dot{\tilde Q} = 2\tau[C - P\Sigma_\mu - \kappa\tilde Q] + \tau^2\eta[\Sigma_s - 2PC + P^2\Sigma_\mu],\quad
        \dot R = \tau[\Sigma_\mu(1 - R) - (v + 2\kappa)R + \Sigma_s - PC] + \tau^2\eta[C - P\Sigma_\mu],

    :math:`\dot v = -\tfrac\tau2(Q + \beta - \beta/v)`. ``noise=False`` drops the τ² terms (gradient flow in
    the time τt).

    Theorem: ichikawa-ode
    """
    m, mt, Q, Qt, R, v = op
    rho, eta, beta, tau, kappa = h
    Lam = rho + eta
    Smu = rho * mt**2 + eta * Qt
    C = rho * m * mt + eta * R
    Ss = rho * m**2 + eta * Q
    P = Q + beta
    t2 = tau**2 * eta * noise  # noise: bool or a traced 0/1
    dm = tau * (Lam * mt - (Smu + v + kappa) * m)
    dmt = tau * (Lam * m - (P * Lam + kappa) * mt)
    dQ = 2 * tau * (C - (Smu + v + kappa) * Q) + t2 * Smu
    dQt = 2 * tau * (C - P * Smu - kappa * Qt) + t2 * (Ss - 2 * P * C + P**2 * Smu)
    dR = tau * (Smu * (1 - R) - (v + 2 * kappa) * R + Ss - P * C) + t2 * (C - P * Smu)
    dv = -0.5 * tau * (Q + beta - beta / v)
    return OrderParams(dm, dmt, dQ, dQt, dR, dv)


@float64
def ode_matrix(op: OrderParams, h: Hyper, noise: bool = True) -> OrderParams:
    r"""Right-hand side of the matrix order-parameter ODE (any M, M*), docs/theory.md §6.

    :math:`\Sigma_\mu = \rho\tilde m\tilde m^\top + \eta\tilde Q`, :math:`C = \rho m\tilde m^\top + \eta R`,
    :math:`\Sigma_s = \rho mm^\top + \eta Q`, :math:`P = Q + \beta I`, :math:`G = \Sigma_\mu + \mathrm{diag}(v) + \kappa I`:

    .. math::
        \dot m = \tau[\Lambda\tilde m - Gm],\quad \dot{\tilde m} = \tau[\Lambda m - \Lambda P\tilde m - \kappa\tilde m],\quad
        \dot Q = \tau[C + C^\top - QG - GQ] + \tau^2\eta\Sigma_\mu,

    .. math::
        \dot{\tilde Q} = \tau[C + C^\top - \Sigma_\mu P - P\Sigma_\mu - 2\kappa\tilde Q]
        + \tau^2\eta[\Sigma_s - CP - PC^\top + P\Sigma_\mu P],

    .. math::
        \dot R = \tau[\Sigma_\mu - GR + \Sigma_s - CP - \kappa R] + \tau^2\eta[C^\top - \Sigma_\mu P],\quad
        \dot v_i = -\tfrac\tau2(Q_{ii} + \beta - \beta/v_i).

    Theorem: ichikawa-ode
    """
    m, mt, Q, Qt, R, v = op
    rho, eta, beta, tau, kappa = h
    M = Q.shape[-1]
    eye = jnp.eye(M, dtype=Q.dtype)
    Lam = rho + eta
    Smu = rho * mt @ mt.T + eta * Qt
    C = rho * m @ mt.T + eta * R
    Ss = rho * m @ m.T + eta * Q
    P = Q + beta * eye
    G = Smu + jnp.diag(v) + kappa * eye
    t2 = tau**2 * eta * noise  # noise: bool or a traced 0/1
    dm = tau * (Lam * mt - G @ m)
    dmt = tau * (Lam * m - Lam * P @ mt - kappa * mt)
    dQ = tau * (C + C.T - Q @ G - G @ Q) + t2 * Smu
    dQt = tau * (C + C.T - Smu @ P - P @ Smu - 2 * kappa * Qt) + t2 * (Ss - C @ P - P @ C.T + P @ Smu @ P)
    dR = tau * (Smu - G @ R + Ss - C @ P - kappa * R) + t2 * (C.T - Smu @ P)
    dv = -0.5 * tau * (jnp.diagonal(Q) + beta - beta / v)
    return OrderParams(dm, dmt, dQ, dQt, dR, dv)


# KL-annealing schedules inside the ODE: β(t) = β_final * shape(γ t); "constant" ignores γ. The schedule
# and the noise switch are traced (lax.switch on the schedule's index, a 0/1 noise factor), so one compiled
# solver serves every schedule and both noise settings of a given state shape and save grid.
_SHAPES = {
    "constant": lambda s: jnp.ones_like(s),
    "tanh": jnp.tanh,
    "linear": lambda s: jnp.minimum(s, 1.0),
}
_SCHEDULES = tuple(_SHAPES)


@functools.partial(jax.jit, static_argnames=("form", "max_steps"))
def _solve(op0, h: Hyper, gamma, ts, form, noise, schedule, max_steps):
    rhs = ode_scalar if form == "scalar" else ode_matrix
    shapes = tuple(_SHAPES.values())

    def f(t, y, args):
        hh, g = args
        return rhs(y, hh._replace(beta=hh.beta * jax.lax.switch(schedule, shapes, g * t)), noise)

    sol = diffrax.diffeqsolve(
        diffrax.ODETerm(f), diffrax.Tsit5(), 0.0, ts[-1], None, op0, (h, gamma),
        saveat=diffrax.SaveAt(ts=ts), stepsize_controller=diffrax.PIDController(rtol=SOLVER.rtol, atol=SOLVER.atol),
        max_steps=max_steps, throw=False,
    )
    return sol.ys, sol.result == diffrax.RESULTS.successful


def _validate_ts(ts) -> np.ndarray:
    ts = np.asarray(ts, dtype=np.float64)
    if ts.ndim != 1 or ts.size == 0 or not np.all(np.isfinite(ts)) or ts[0] < 0 or np.any(np.diff(ts) <= 0):
        raise ValueError("ts must be a non-empty, finite, strictly increasing 1-D array of times >= 0")
    return ts


@float64
def integrate_ode(
    op0: OrderParams,
    ts,
    *,
    rho: float = 1.0,
    eta: float = 1.0,
    beta: float = 1.0,
    tau: float = 0.1,
    kappa: float = 0.0,
    noise: bool = True,
    form: Literal["matrix", "scalar"] = "matrix",
    schedule: Literal["constant", "tanh", "linear"] = "constant",
    gamma: float = 1.0,
    max_steps: int = 100_000,
) -> OrderParams:
    r"""Integrate the order-parameter ODE from ``op0`` and return it at ``ts`` (leading time axis).

    ``schedule`` anneals the KL weight: β(t) = ``beta`` · tanh(γt) or ``beta`` · min(γt, 1) (docs/theory.md §6).
    A run whose solver fails (step cap, blow-up) raises ``RuntimeError`` rather than returning NaNs.

    Theorem: ichikawa-ode
    """
    h = _check_hyper(rho, eta, beta, tau, kappa)
    ts = _validate_ts(ts)
    if schedule not in _SHAPES:
        raise ValueError(f"schedule must be one of {sorted(_SHAPES)}; got {schedule!r}")
    if schedule != "constant" and not (math.isfinite(gamma) and gamma > 0):
        raise ValueError(f"gamma must be finite and > 0; got {gamma}")
    if form == "scalar" and any(jnp.ndim(x) != 0 for x in op0):
        raise ValueError("the scalar form needs 0-d order parameters (M = M* = 1)")
    op0 = OrderParams(*(jnp.asarray(x, jnp.float64) for x in op0))
    if not bool(jnp.all(op0.v > 0)):
        raise ValueError("the encoder variances v must be > 0")
    ys, ok = _solve(op0, h, jnp.asarray(float(gamma)), jnp.asarray(ts), form, jnp.asarray(float(bool(noise))),
                    jnp.asarray(_SCHEDULES.index(schedule)), int(max_steps))
    if not bool(ok) or not all(bool(jnp.all(jnp.isfinite(y))) for y in ys):
        raise RuntimeError("the order-parameter ODE did not integrate to the last time (stiff or diverging)")
    return ys


# ---------------------------------------------------------------------------------------------------
# Online SGD at finite N
# ---------------------------------------------------------------------------------------------------


@float64
def loss(W: Array, Wt: Array, v: Array, x: Array, beta, kappa) -> Array:
    r"""The official per-sample loss :math:`\ell` (module docstring); ``W``, ``Wt``: (N, M), ``x``: (N,)."""
    N = x.shape[0]
    mu = Wt.T @ x / math.sqrt(N)
    xhat = W @ mu / math.sqrt(N)
    WtW = W.T @ W
    return (
        -x @ xhat
        + mu @ WtW @ mu / (2 * N)
        + jnp.sum(jnp.diagonal(WtW) * v) / (2 * N)
        + 0.5 * beta * jnp.sum(mu**2 + v - jnp.log(v))
        + kappa / (2 * N) * (jnp.sum(W**2) + jnp.sum(Wt**2))
    )


@float64
def order_parameters(W: Array, Wt: Array, v: Array, W_star: Array) -> OrderParams:
    """Order parameters of weights ``W``, ``Wt`` (N, M) against the teacher ``W_star`` (N, M*)."""
    N = W.shape[0]
    return OrderParams(W.T @ W_star / N, Wt.T @ W_star / N, W.T @ W / N, Wt.T @ Wt / N, W.T @ Wt / N, v)


class Simulation(NamedTuple):
    """Result of :func:`online_sgd`: times (T,) and order parameters with axes (seeds, T, ...)."""

    ts: Array
    order: OrderParams


@functools.partial(jax.jit, static_argnames=("N", "M", "per_save", "saves"))
def _simulate(key, W_star, h: Hyper, m0, mt0, sigma0, N, M, per_save, saves):
    kW, kWt, kdata = jax.random.split(key, 3)
    Ms = W_star.shape[1]
    # Macroscopic start: overlap m0 (mt0) with the first teacher direction, plus isotropic noise.
    e1 = jnp.zeros((Ms, M)).at[0, :].set(1.0)
    W = W_star @ e1 * m0 + sigma0 * jax.random.normal(kW, (N, M))
    Wt = W_star @ e1 * mt0 + sigma0 * jax.random.normal(kWt, (N, M))
    v = jnp.ones((M,))
    gamma = jnp.sqrt(h.rho / N) * W_star
    grad = jax.grad(loss, argnums=(0, 1, 2))

    def step(carry, k):
        W, Wt, v = carry
        kc, kx = jax.random.split(k)
        x = gamma @ jax.random.normal(kc, (Ms,)) + jnp.sqrt(h.eta) * jax.random.normal(kx, (N,))
        gW, gWt, gv = grad(W, Wt, v, x, h.beta, h.kappa)
        return (W - h.tau * gW, Wt - h.tau * gWt, v - h.tau / N * gv), None

    def save(carry, k):
        carry, _ = jax.lax.scan(step, carry, jax.random.split(k, per_save))
        return carry, order_parameters(*carry, W_star)

    op0 = order_parameters(W, Wt, v, W_star)
    _, ops = jax.lax.scan(save, (W, Wt, v), jax.random.split(kdata, saves))
    return jax.tree_util.tree_map(lambda a, b: jnp.concatenate([a[None], b]), op0, ops)


@float64
def online_sgd(
    N: int,
    *,
    t1: float,
    saves: int,
    key,
    seeds: int = 1,
    rho: float = 1.0,
    eta: float = 1.0,
    beta: float = 1.0,
    tau: float = 0.1,
    kappa: float = 0.0,
    M: int = 1,
    M_star: int = 1,
    m0: float = 0.3,
    mt0: float = 0.3,
    sigma0: float = 0.3,
) -> Simulation:
    r"""Simulate online SGD of the [IH23] linear VAE at dimension N (one fresh sample per step).

    Initial weights: :math:`W = m_0 W_\star e_1^\top + \sigma_0\,\Xi`, :math:`\tilde W = \tilde m_0 W_\star e_1^\top +
    \sigma_0\,\tilde\Xi` (Ξ standard normal; every latent starts with overlap :math:`m_0` on the first teacher
    direction), v = 1. ``N * t1`` steps, order parameters recorded at ``saves + 1`` equally spaced times
    including t = 0 (start the ODE from those measured values to compare, T22).

    Args:
        N: data dimension.
        t1: end time (steps / N); ``N * t1`` must be a multiple of ``saves``.
        saves: number of save intervals.
        key: int seed or JAX key; ``seeds`` independent runs are vmapped.
        rho, eta, beta, tau, kappa: model and SGD constants (docs/theory.md §6).
        M, M_star: latent and teacher dimensions.
        m0, mt0, sigma0: initial overlaps and weight noise.

    Returns:
        :class:`Simulation` with order parameters of shape (seeds, saves + 1, ...).

    Theorem: ichikawa-ode
    """
    h = _check_hyper(rho, eta, beta, tau, kappa)
    for name, x in (("N", N), ("saves", saves), ("seeds", seeds), ("M", M), ("M_star", M_star)):
        if isinstance(x, bool) or int(x) != x or x < 1:
            raise ValueError(f"{name} must be a positive integer; got {x}")
    total = N * float(t1)
    if not (math.isfinite(total) and total > 0) or total != round(total) or round(total) % saves:
        raise ValueError(f"N * t1 = {total} must be a positive integer multiple of saves = {saves}")
    for name, x in (("m0", m0), ("mt0", mt0), ("sigma0", sigma0)):
        if not math.isfinite(float(x)):
            raise ValueError(f"{name} must be finite; got {x}")
    W_star = spiked(int(N), rho=float(rho), eta=float(eta), M_star=int(M_star)).Gamma * math.sqrt(N / float(rho))
    key = jax.random.key(int(key)) if isinstance(key, int) else key
    per_save = round(total) // saves
    run = lambda k: _simulate(k, W_star, h, float(m0), float(mt0), float(sigma0), int(N), int(M),  # noqa: E731
                              per_save, int(saves))
    ops = jax.vmap(run)(jax.random.split(key, int(seeds)))
    return Simulation(jnp.linspace(0.0, float(t1), int(saves) + 1), ops)


# ---------------------------------------------------------------------------------------------------
# Fixed points, threshold, generalisation error
# ---------------------------------------------------------------------------------------------------


@float64
def fixed_point(rho: float, eta: float, beta: float) -> OrderParams:
    r"""The non-collapsed fixed point (M = M* = 1, κ = 0, τ → 0), which exists iff β < Λ = ρ + η:

    :math:`m = \sqrt{\Lambda - \beta}`, :math:`\tilde m = m/\Lambda`, :math:`Q = \Lambda - \beta`,
    :math:`\tilde Q = \tilde m^2`, :math:`R = m\tilde m`, :math:`v = \beta/\Lambda` (Lucas's optimum with
    :math:`\mu_1 = \Lambda`, :math:`\sigma_d^2 = 1`).

    Theorem: ichikawa-fixed-point
    """
    h = _check_hyper(rho, eta, beta, 1.0, 0.0)
    Lam = float(h.rho + h.eta)
    if not beta < Lam:
        raise ValueError(f"the non-collapsed fixed point needs beta < rho + eta = {Lam}; got {beta}")
    m = math.sqrt(Lam - beta)
    mt = m / Lam
    f = lambda x: jnp.asarray(x, jnp.float64)  # noqa: E731
    return OrderParams(f(m), f(mt), f(Lam - beta), f(mt**2), f(m * mt), f(beta / Lam))


@float64
def collapsed_point(M: int = 1, M_star: int = 1) -> OrderParams:
    """The collapsed state m = m̃ = Q = Q̃ = R = 0, v = 1 (a fixed point for all τ, κ); scalar if M = M* = 1."""
    if M == 1 and M_star == 1:
        z = jnp.zeros((), jnp.float64)
        return OrderParams(z, z, z, z, z, jnp.ones((), jnp.float64))
    return OrderParams(jnp.zeros((M, M_star)), jnp.zeros((M, M_star)), jnp.zeros((M, M)), jnp.zeros((M, M)),
                       jnp.zeros((M, M)), jnp.ones((M,)))


@float64
def collapse_threshold(rho: float, eta: float, kappa: float = 0.0) -> float:
    r""":math:`\beta_c(\kappa) = \Lambda/(1 + \kappa) - \kappa/\Lambda`; :math:`\beta_c(0) = \rho + \eta` (docs/theory.md §6).

    The :math:`(m, \tilde m)` block of the Jacobian at collapse,
    :math:`\tau\begin{pmatrix}-(1+\kappa)&\Lambda\\\Lambda&-(\beta\Lambda+\kappa)\end{pmatrix}`, carries no τ² term and is stable
    iff β > β_c, for every τ. Collapse itself is linearly stable iff β > β_c *and* τ is below the bulk
    block's :func:`noise_threshold` (T24).

    Theorem: ichikawa-threshold
    """
    h = _check_hyper(rho, eta, 1.0, 1.0, kappa)
    Lam = float(h.rho + h.eta)
    return Lam / (1.0 + float(kappa)) - float(kappa) / Lam


# (Q, Q~, R) coordinates of a symmetric 2 x 2 matrix S = [[Q, R], [R, Q~]]: vec(S) = _DUP @ (Q, Q~, R),
# and (Q, Q~, R) = _ELIM @ vec(S) (vec of row-major flattening; S is symmetric).
_DUP = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, 0.0, 1.0], [0.0, 1.0, 0.0]])
_ELIM = np.array([[1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 1.0], [0.0, 1.0, 0.0, 0.0]])


@float64
def noise_threshold(eta: float, beta: float, kappa: float = 0.0) -> float:
    r"""Largest learning rate :math:`\tau_c(\beta, \eta, \kappa)` at which the bulk block of collapse is stable (T24).

    At collapse the bulk order parameters :math:`S = \begin{pmatrix}Q&R\\R&\tilde Q\end{pmatrix}` obey the
    second-moment equation :math:`\dot S = \tau[\mathcal L(S) + \tau\eta^2\,\Pi(S)]` of one bulk direction,
    with the Lyapunov operator :math:`\mathcal L(S) = A_\eta S + SA_\eta^\top`,
    :math:`A_\eta = \begin{pmatrix}-(1+\kappa)&\eta\\\eta&-(\beta\eta+\kappa)\end{pmatrix}`, and the SGD noise
    :math:`\Pi(S) = GSG^\top`, :math:`G = \begin{pmatrix}0&1\\1&-\beta\end{pmatrix}`. For :math:`A_\eta` stable it is
    stable iff :math:`\tau\eta^2 r(T) < 1` with :math:`T = -\mathcal L^{-1}\Pi` and r the spectral radius, so

    .. math::
        \tau_c = \frac1{\eta^2\, r(-\mathcal L^{-1}\Pi)} .

    Built here from Kronecker products on :math:`\mathbb R^{2\times2}`, restricted to symmetric matrices.

    Raises:
        ValueError: if :math:`A_\eta` is not stable, β ≤ η/(1 + κ) − κ/η (then the bulk is unstable for every τ;
            this never happens above :math:`\beta_c`).

    Theorem: ichikawa-threshold
    """
    h = _check_hyper(1.0, eta, beta, 1.0, kappa)
    e, b, k = float(h.eta), float(h.beta), float(h.kappa)
    A = np.array([[-(1.0 + k), e], [e, -(b * e + k)]])
    if not np.all(np.linalg.eigvalsh(A) < 0):
        raise ValueError(f"the bulk drift is unstable for beta <= eta/(1+kappa) - kappa/eta; got beta = {b}")
    G = np.array([[0.0, 1.0], [1.0, -b]])
    eye = np.eye(2)
    L = _ELIM @ (np.kron(A, eye) + np.kron(eye, A)) @ _DUP
    Pi = _ELIM @ np.kron(G, G) @ _DUP
    r = float(np.max(np.abs(np.linalg.eigvals(-np.linalg.solve(L, Pi)))))
    return 1.0 / (e**2 * r)


@float64
def escape_rate(rho: float, eta: float, beta: float, tau: float) -> float:
    r"""Plateau escape rate at κ = 0: :math:`\gamma_+ = \tfrac\tau2[\sqrt{(1-\beta\Lambda)^2 + 4\Lambda^2} - (1+\beta\Lambda)]`,
    positive iff β < Λ and decreasing in β.

    Theorem: ichikawa-threshold
    """
    h = _check_hyper(rho, eta, beta, tau, 0.0)
    Lam, b, t = float(h.rho + h.eta), float(beta), float(tau)
    return 0.5 * t * (math.sqrt((1 - b * Lam) ** 2 + 4 * Lam**2) - (1 + b * Lam))


@float64
def generalisation_error(
    op: OrderParams, rho: float, form: Literal["matrix", "scalar"] | None = None
) -> Array:
    r""":math:`\varepsilon_g = \rho - 2\sqrt\rho\,|\sum_i m_i| + \sum_{ij}Q_{ij}` for a rank-1 teacher (M* = 1).

    For M = 1 this is :math:`\frac1N\|\sqrt\rho W_\star - W\|^2` up to the sign of m; for M > 1 it is the
    official code's column-sum convention (docs/theory.md §10.14). ``form="scalar"``: 0-d order parameters
    (with any leading axes); ``"matrix"``: m of shape (..., M, M*) and Q of shape (..., M, M). ``None``
    infers it: matrix when Q has two trailing equal axes and m as many axes, scalar otherwise (pass the
    form explicitly for a batch of scalar trajectories whose two leading axes happen to be equal).
    """
    m, Q = jnp.asarray(op.m), jnp.asarray(op.Q)
    if form is None:
        form = "matrix" if Q.ndim >= 2 and Q.shape[-1] == Q.shape[-2] and m.ndim == Q.ndim else "scalar"
    if form == "matrix":
        m, Q = jnp.sum(m, axis=(-2, -1)), jnp.sum(Q, axis=(-2, -1))
    return rho - 2.0 * math.sqrt(rho) * jnp.abs(m) + Q


@float64
def steady_generalisation_error(rho: float, eta: float, beta: float) -> float:
    r""":math:`\varepsilon_g^\ast = (\sqrt\rho - \sqrt{\Lambda - \beta})^2` for β < Λ, ρ otherwise (τ → 0, κ = 0);
    minimal (zero) at β = η.

    Theorem: ichikawa-fixed-point
    """
    h = _check_hyper(rho, eta, beta, 1.0, 0.0)
    Lam = float(h.rho + h.eta)
    if beta < Lam:
        return (math.sqrt(rho) - math.sqrt(Lam - beta)) ** 2
    return float(rho)


@float64
def superfluous_latent(eta: float, beta: float) -> tuple[float, float]:
    r"""Limit ``(Q, v)`` of a latent with no signal overlap (M > M*): it fits a bulk direction iff β < η,
    with :math:`Q = \eta - \beta`, :math:`v = \beta/\eta`; otherwise it collapses, Q = 0, v = 1.

    Theorem: ichikawa-fixed-point
    """
    h = _check_hyper(1.0, eta, beta, 1.0, 0.0)
    e, b = float(h.eta), float(h.beta)
    return (e - b, b / e) if b < e else (0.0, 1.0)


# ---------------------------------------------------------------------------------------------------
# KL annealing: convergence time as a function of γ
# ---------------------------------------------------------------------------------------------------


class Annealing(NamedTuple):
    """Convergence times under KL annealing.

    Attributes:
        gammas: annealing speeds (g,).
        times: first time after which ε_g stays within the threshold of ε_g*, shape (g,) (``inf``: never).
        constant_time: the same for constant β (γ → ∞).
        ts: the time grid (T,); eps: ε_g trajectories (g, T); eps_constant: (T,).
    """

    gammas: Array
    times: Array
    constant_time: float
    ts: Array
    eps: Array
    eps_constant: Array


def _settle_time(ts: np.ndarray, eps: np.ndarray, target: float, band: float) -> float:
    inside = np.abs(eps - target) <= band
    if not inside[-1]:
        return math.inf
    outside = np.flatnonzero(~inside)
    return float(ts[0]) if outside.size == 0 else float(ts[outside[-1] + 1])


@float64
def annealing_times(
    gammas,
    *,
    rel_band: float,
    rho: float = 1.0,
    eta: float = 1.0,
    beta: float = 1.0,
    tau: float = 0.1,
    schedule: Literal["tanh", "linear"] = "tanh",
    t1: float = 2000.0,
    num_times: int = 4001,
    op0: OrderParams | None = None,
) -> Annealing:
    r"""Convergence time of the scalar ODE vs annealing speed γ (docs/theory.md §6, KL annealing).

    β(t) = ``beta`` · tanh(γt) (or min(γt, 1)); the run has converged when :math:`\varepsilon_g` stays within
    ``rel_band`` · :math:`\varepsilon_g^\ast`-scale of its steady value from then on (the band is
    ``rel_band * max(ε_g*, ρ)``, so ε_g* = 0 at β = η is handled). Qualitative claim (docs/theory.md §6): an
    intermediate γ converges faster than constant β; very slow annealing is slower.

    Args:
        gammas: annealing speeds, each > 0.
        rel_band: relative width of the convergence band (e.g. 1e-2).
        rho, eta, beta, tau: model constants (κ = 0).
        schedule: ``"tanh"`` or ``"linear"``.
        t1, num_times: time grid.
        op0: initial order parameters (default: small overlap m = m̃ = 1e-3, Q = Q̃ = 1e-2, R = 1e-4, v = 1).

    Theorem: ichikawa-threshold
    """
    gammas = np.atleast_1d(np.asarray(gammas, dtype=np.float64))
    if gammas.ndim != 1 or not np.all(np.isfinite(gammas)) or np.any(gammas <= 0):
        raise ValueError("gammas must be finite and > 0")
    if not (math.isfinite(rel_band) and rel_band > 0):
        raise ValueError(f"rel_band must be finite and > 0; got {rel_band}")
    if op0 is None:
        f = lambda x: jnp.asarray(x, jnp.float64)  # noqa: E731
        op0 = OrderParams(f(1e-3), f(1e-3), f(1e-2), f(1e-2), f(1e-4), f(1.0))
    ts = np.linspace(0.0, float(t1), int(num_times))
    kw = dict(rho=rho, eta=eta, beta=beta, tau=tau, form="scalar")
    base = integrate_ode(op0, ts, **kw)
    eps_c = np.asarray(generalisation_error(base, rho, "scalar"))
    target = float(eps_c[-1])
    band = rel_band * max(abs(target), float(rho))
    eps = np.stack([
        np.asarray(generalisation_error(integrate_ode(op0, ts, schedule=schedule, gamma=float(g), **kw), rho, "scalar"))
        for g in gammas
    ])
    times = np.array([_settle_time(ts, e, target, band) for e in eps])
    return Annealing(jnp.asarray(gammas), jnp.asarray(times), _settle_time(ts, eps_c, target, band),
                     jnp.asarray(ts), jnp.asarray(eps), jnp.asarray(eps_c))
