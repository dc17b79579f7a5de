r"""Continuous-time learning dynamics: the gradient flow of the linear λβ-VAE (docs/theory.md §3.2).

The flow :math:`\dot\theta = -\nabla_\theta\mathcal L_{\lambda\beta}(\theta)` for every model variant
(docs/theory.md §2.2), integrated with diffrax under ``jit`` and ``vmap`` over a (β, λ) grid and a batch of
initialisations in one call.

**Coordinates and clock (metric ``"euclidean"``, the literal gradient flow).** The state is
:math:`\theta = (B, L_W, A, L_Z)` with :math:`\Sigma_W = L_WL_W^\top`, :math:`\Sigma_Z = L_ZL_Z^\top` and
:math:`L` lower-triangular, so the covariances are SPD by construction. With :math:`G` the symmetric
gradient with respect to :math:`\Sigma` (docs/theory.md §3.1), the chain rule gives
:math:`\dot L = -\operatorname{tril}(2GL)` and hence

.. math::
    \dot\Sigma = -2\big[\operatorname{tril}(GL)L^\top + L\operatorname{tril}(GL)^\top\big] =: -\mathcal P_L[G],

a *preconditioned* flow on :math:`\Sigma` with :math:`\langle G, \mathcal P_L[G]\rangle = 4\|\operatorname{tril}(GL)\|_F^2 \ge 0`.
So the loss still decreases monotonically and the stationary points (:math:`L` invertible) are those of
:math:`\mathcal L_{\lambda\beta}`; only the covariance blocks run on a state-dependent clock: at
:math:`L = I` (e.g. :math:`\Sigma_W` at the collapsed point) variances move 4× and covariances 2× as fast as
under the literal :math:`\dot\Sigma = -G`. The mean maps :math:`B, A` are Euclidean coordinates and run
on the unrescaled clock, and at the collapsed point they decouple from the covariance blocks to first
order, so the collapse rates and thresholds computed by :func:`linearised_rates` are statements about
the literal flow. Variants: a diagonal encoder (E2) keeps :math:`L_W` diagonal; a learned isotropic
decoder (D2) is :math:`L_Z = \ell I` with :math:`\dot\ell = -2\ell\,\partial_{\sigma_d^2}\mathcal L`; the fixed
decoder (D3) has :math:`\dot L_Z = 0`.

**Metric ``"block"`` (the same landscape, a rescaled clock per mode).** Each block relaxes towards its
exact minimiser given the others (the targets of the alternating map, docs/theory.md §3.3, taken
simultaneously):

.. math::
    \dot B = B^\star(A, \Sigma_Z) - B,\quad \dot\Sigma_W = \Sigma_W^\star(A, \Sigma_Z) - \Sigma_W,\quad
    \dot A = \Sigma_YB^\top\Sigma_X^{-1} - A,\quad \dot\Sigma_Z = E - \Sigma_Z .

This is :math:`\dot\theta = -\mathcal P(\theta)\nabla\mathcal L` with a positive-definite preconditioner:
:math:`B^\star - B = -(A^\top NA + \beta I)^{-1}\partial_B\Sigma_Y^{-1}` and :math:`A^\star - A = -N^{-1}\partial_A\Sigma_X^{-1}`
(exact Newton steps: both blocks are quadratic), :math:`E - \Sigma_Z = -2\Sigma_Z\partial_{\Sigma_Z}\Sigma_Z` (the
Fisher metric of a Gaussian), :math:`\Sigma_W^\star - \Sigma_W = -\beta^{-1}(\Sigma_W\partial_{\Sigma_W}\Sigma_W^\star +
\Sigma_W^\star\partial_{\Sigma_W}\Sigma_W)`. So it is the gradient flow of the same loss in another metric: the
same stationary points, a monotone loss, and (Sylvester's law of inertia) the same linear stability of
every stationary point; covariances stay SPD because each is a running convex combination of SPD
targets. It removes the stiffness that :math:`\Sigma_Y`'s spread (three decades in the published instance)
puts into the Euclidean flow, which is why the (β, λ)-grid benchmark uses it.

**Runs to a steady state (``FlowConfig(solver="rkc")``).** Near the thresholds :math:`\beta = 1 + 2\lambda\mu_i`
the slowest rate of the flow goes to 0 (critical slowing down; on the published instance it falls to
~3e-4 while the fastest stays at 2), so a steady state can lie at t ~ 5e4. Every metric here is a
gradient flow, so its Jacobian has a real spectrum, and a Runge-Kutta-Chebyshev method
(:mod:`linvae.numeric._rkc`) integrates it with a stage count that grows like :math:`\sqrt{h\rho}`: the
stiff tail costs ~:math:`\sqrt{\rho/r}` evaluations per e-fold instead of :math:`\rho/r`. Each lane stops as
soon as it is steady (``FlowConfig.steady``, and each covariance block steady relative to its own size,
the ``CONE`` tier, so a run sliding to the boundary of the SPD cone is not mistaken for a stationary
point), and the running lanes are compacted into groups between jitted calls.

Theorems: ``collapse-stability`` (T11), ``mi-chain`` (T10, continuous-time analogue), ``water-filling``
(T12, reached by the flow).
"""

from __future__ import annotations

import dataclasses
import functools
import time
import warnings
from collections.abc import Callable
from typing import Literal, NamedTuple

import diffrax
import jax
import jax.numpy as jnp
import numpy as np
from jax import Array

from linvae._tolerance import CONE, SOLVER, STEADY, Tol
from linvae.numeric import _rkc
from linvae.numeric._linalg import cholesky, fro, inv_spd, singular_values, solve_spd, sym
from linvae.numeric._precision import float64
from linvae.numeric._validation import as_finite_array, check_beta_lam, check_latent_dim
from linvae.numeric.alternating import NotConvergedWarning, decoder_block, encoder_block, random_init
from linvae.numeric.information import Information, information_terms
from linvae.numeric.loss import Losses, gradients_closed_form, loss_terms, objective
from linvae.numeric.model import D1, State, Variant
from linvae.numeric.problem import Problem

# ---------------------------------------------------------------------------------------------------
# Configuration and state
# ---------------------------------------------------------------------------------------------------

_SOLVERS = {"tsit5": diffrax.Tsit5, "dopri8": diffrax.Dopri8, "kvaerno5": diffrax.Kvaerno5}


@dataclasses.dataclass(frozen=True, kw_only=True)
class FlowConfig:
    """How the gradient flow is set up and integrated. Hashable: a static argument of ``jit``.

    Attributes:
        variant: model variant (docs/theory.md §2.2); default D1/E1.
        metric: ``"euclidean"`` (the literal flow on Cholesky coordinates) or ``"block"`` (block-Newton /
            Fisher metric; see the module docstring).
        gradient: ``"closed_form"`` (docs/theory.md §3.1) or ``"autodiff"`` (``jax.grad`` of
            :func:`~linvae.numeric.objective`); euclidean metric only.
        solver: ``"tsit5"``, ``"dopri8"`` (explicit) or ``"kvaerno5"`` (implicit, for stiff small problems),
            all diffrax; or ``"rkc"``: a batched Runge-Kutta-Chebyshev method (``linvae.numeric._rkc``)
            for runs to a steady state (no ``ts``): each lane stops as soon as it is steady, and the
            long, stiff approach near the thresholds costs ~sqrt(ρ/r) instead of ρ/r evaluations.
        tol: rtol/atol of the PID step-size controller.
        steady: a lane is steady when its block residual (the distance of every block from its exact
            minimiser given the others, in :math:`(B, \\Sigma_W, A, \\Sigma_Z)`) is at most
            ``atol + rtol`` :math:`\\|\\theta\\|`.
        max_steps: cap on accepted+rejected solver steps per chunk (``"rkc"``: per lane over the whole
            run); a capped lane is flagged.
        chunks: the time interval is integrated in this many jitted pieces (progress lines, early stop);
            ``"rkc"`` ignores it (it stops lane by lane and compacts the running lanes every 64 steps).
        max_lanes: lanes per vmapped solve; larger grids run as several solves of this width (one
            compilation). On CPU the batched small-matrix kernels gain nothing past a few hundred
            lanes (4096 lanes in one solve took as long as 8 solves of 512), so 256 is the default.
            (Wide solves used to hang a 2-core machine: jaxlib's batched LAPACK kernels deadlock
            there; the linear algebra now avoids them, see ``linvae.numeric._linalg``.)
        progress: print one line per chunk (time reached, lanes steady, worst speed, wall time).
    """

    variant: Variant = D1
    metric: Literal["euclidean", "block"] = "euclidean"
    gradient: Literal["closed_form", "autodiff"] = "closed_form"
    solver: Literal["tsit5", "dopri8", "kvaerno5", "rkc"] = "tsit5"
    tol: Tol = SOLVER
    steady: Tol = STEADY
    max_steps: int = 100_000
    chunks: int = 1
    max_lanes: int = 256
    progress: bool = False

    def __post_init__(self) -> None:
        if self.metric not in ("euclidean", "block"):
            raise ValueError(f"metric must be 'euclidean' or 'block'; got {self.metric!r}")
        if self.gradient not in ("closed_form", "autodiff"):
            raise ValueError(f"gradient must be 'closed_form' or 'autodiff'; got {self.gradient!r}")
        if self.gradient == "autodiff" and self.metric != "euclidean":
            raise ValueError("gradient='autodiff' is only defined for the euclidean metric")
        if self.solver not in _SOLVERS and self.solver != "rkc":
            raise ValueError(f"solver must be one of {sorted(_SOLVERS) + ['rkc']}; got {self.solver!r}")
        if not (self.tol.rtol > 0 and self.tol.atol > 0):
            raise ValueError(f"tol must have positive rtol and atol; got {self.tol}")
        if int(self.max_steps) != self.max_steps or self.max_steps < 1:
            raise ValueError(f"max_steps must be a positive integer; got {self.max_steps}")
        if int(self.chunks) != self.chunks or self.chunks < 1:
            raise ValueError(f"chunks must be a positive integer; got {self.chunks}")
        if int(self.max_lanes) != self.max_lanes or self.max_lanes < 1:
            raise ValueError(f"max_lanes must be a positive integer; got {self.max_lanes}")


class Coordinates(NamedTuple):
    """Flow coordinates: ``W``, ``Z`` are Cholesky factors (euclidean metric) or covariances (block)."""

    B: Array
    W: Array
    A: Array
    Z: Array


class Trajectory(NamedTuple):
    r"""Recorded observables at the save times; every field has leading axes (b, l, k, T).

    Attributes:
        B, Sigma_W, A, Sigma_Z: the parameters.
        losses: :class:`~linvae.numeric.Losses` (recon, kl, l2, total).
        sv_B: singular values of :math:`B`, descending, shape (..., min(m, n)).
        sv_K: singular values of the gain :math:`K = \Sigma_W^{-1}B`.
        information: :class:`~linvae.numeric.Information` (I(X;Y), I(X;V), pairwise, SAP, :math:`I_m`).
    """

    B: Array
    Sigma_W: Array
    A: Array
    Sigma_Z: Array
    losses: Losses
    sv_B: Array
    sv_K: Array
    information: Information


class FlowSolution(NamedTuple):
    """Result of :func:`integrate`.

    Attributes:
        ts: save times (T,), or None when only the end point was requested.
        final: end :class:`~linvae.numeric.State` with axes (b, l, k): ``steps`` = solver steps taken,
            ``converged`` = solver succeeded, values finite and the lane is steady, ``delta`` = the final
            relative block residual (see ``FlowConfig.steady``).
        status: ``"ok"``, ``"not steady"``, ``"solver failed"`` (step cap or step-size collapse: stiff
            or diverging) or ``"non-finite"`` per lane, shape (b, l, k).
        trajectory: :class:`Trajectory` at ``ts``, or None.
    """

    ts: Array | None
    final: State
    status: np.ndarray
    trajectory: Trajectory | None


# ---------------------------------------------------------------------------------------------------
# Coordinates <-> parameters
# ---------------------------------------------------------------------------------------------------


def _cholesky_or_diag(S: Array, diagonal: bool) -> Array:
    if diagonal:
        return jnp.diag(jnp.sqrt(jnp.diagonal(S)))
    return cholesky(S)


@float64
def to_coordinates(st, cfg: FlowConfig) -> Coordinates:
    """Flow coordinates of a parameter point ``(B, Sigma_W, A, Sigma_Z, ...)`` (unbatched)."""
    B, Sigma_W, A, Sigma_Z = st[:4]
    if cfg.metric == "block":
        return Coordinates(B, sym(Sigma_W), A, sym(Sigma_Z))
    v = cfg.variant
    return Coordinates(
        B,
        _cholesky_or_diag(Sigma_W, v.encoder == "diagonal"),
        A,
        _cholesky_or_diag(Sigma_Z, v.decoder != "full"),
    )


@float64
def from_coordinates(y: Coordinates, cfg: FlowConfig) -> tuple[Array, Array, Array, Array]:
    """``(B, Sigma_W, A, Sigma_Z)`` of flow coordinates (unbatched)."""
    if cfg.metric == "block":
        return y.B, sym(y.W), y.A, sym(y.Z)
    return y.B, y.W @ y.W.T, y.A, y.Z @ y.Z.T


# ---------------------------------------------------------------------------------------------------
# Vector fields
# ---------------------------------------------------------------------------------------------------


def _euclidean_closed_form(Sigma_Y, y: Coordinates, beta, lam, v: Variant) -> Coordinates:
    B, SW, A, SZ = y.B, y.W @ y.W.T, y.A, y.Z @ y.Z.T
    g = gradients_closed_form(Sigma_Y, B, SW, A, SZ, beta, lam, v)
    dW = -jnp.tril(2.0 * g.Sigma_W @ y.W)
    if v.decoder == "full":
        dZ = -jnp.tril(2.0 * g.Sigma_Z @ y.Z)
    elif v.decoder == "isotropic":
        dZ = -(2.0 * y.Z[0, 0] * g.Sigma_Z) * jnp.eye(y.Z.shape[0], dtype=y.Z.dtype)
    else:
        dZ = jnp.zeros_like(y.Z)
    return Coordinates(-g.B, dW, -g.A, dZ)


@float64
def project_descent(g: Coordinates, y: Coordinates, v: Variant) -> Coordinates:
    r"""Descent direction ``-g`` restricted to the variant's free coordinates.

    ``g`` is the gradient with respect to the full matrices ``(B, L_W, A, L_Z)``: the Cholesky factors
    keep their lower triangle (E2: the diagonal of ``L_W``); a learned isotropic decoder (D2,
    :math:`L_Z = \ell I`) moves along ``I`` at rate :math:`\operatorname{tr}g_Z = \partial_\ell`; a fixed decoder
    (D3) does not move.
    """
    dW = -(jnp.diag(jnp.diagonal(g.W)) if v.encoder == "diagonal" else jnp.tril(g.W))
    if v.decoder == "full":
        dZ = -jnp.tril(g.Z)
    elif v.decoder == "isotropic":
        dZ = -jnp.trace(g.Z) * jnp.eye(y.Z.shape[0], dtype=y.Z.dtype)
    else:
        dZ = jnp.zeros_like(y.Z)
    return Coordinates(-g.B, dW, -g.A, dZ)


def _euclidean_autodiff(Sigma_Y, y: Coordinates, beta, lam, v: Variant) -> Coordinates:
    def f(c: Coordinates) -> Array:
        return objective(c.B, c.W @ c.W.T, c.A, c.Z @ c.Z.T, Sigma_Y, beta, lam)

    return project_descent(jax.grad(f)(y), y, v)


def _block(Sigma_Y, y: Coordinates, beta, lam, v: Variant) -> Coordinates:
    B, SW, A, SZ = y.B, sym(y.W), y.A, sym(y.Z)
    # The decoder block's A* = Σ_Y B^T Σ_X^{-1} and the reconstruction moment share Σ_Y B^T and Σ_X:
    # E = (I - AB)Σ_Y(I - AB)^T + AΣ_WA^T = Σ_Y - A(Σ_YB^T)^T - (Σ_YB^T)A^T + AΣ_XA^T.
    SyBt = Sigma_Y @ B.T
    SX = sym(B @ SyBt + SW)
    A_star = SyBt @ inv_spd(SX)
    B_star, W_star = encoder_block(A, SZ, beta, lam, v)
    n = Sigma_Y.shape[-1]
    if v.decoder == "fixed":
        dZ = jnp.zeros_like(SZ)
    else:
        ASyBt = A @ SyBt.T
        E = sym(Sigma_Y - ASyBt - ASyBt.T + A @ SX @ A.T)
        dZ = E - SZ if v.decoder == "full" else (jnp.trace(E) / n) * jnp.eye(n, dtype=SZ.dtype) - SZ
    return Coordinates(B_star - B, W_star - SW, A_star - A, dZ)


@float64
def make_vector_field(Sigma_Y: Array, cfg: FlowConfig = FlowConfig()) -> Callable:
    r"""The flow's vector field ``f(t, y, args)`` with ``args = (beta, lam)``, in diffrax's ``ODETerm`` form.

    .. math::
        \dot\theta = -\mathcal P(\theta)\,\nabla_\theta\mathcal L_{\lambda\beta}(\theta),

    with :math:`\mathcal P = I` on Cholesky coordinates (``metric="euclidean"``) or the block-Newton /
    Fisher preconditioner (``metric="block"``); see the module docstring.

    Args:
        Sigma_Y: data covariance, shape (n, n).
        cfg: flow configuration.

    Returns:
        ``f(t, y: Coordinates, args: (beta, lam)) -> Coordinates``, pure and jit/vmap/grad-friendly.

    Theorem: collapse-stability
    """
    if cfg.metric == "block":
        inner = _block
    elif cfg.gradient == "autodiff":
        inner = _euclidean_autodiff
    else:
        inner = _euclidean_closed_form

    def f(t, y: Coordinates, args) -> Coordinates:
        del t
        beta, lam = args
        return inner(Sigma_Y, y, beta, lam, cfg.variant)

    return f


# ---------------------------------------------------------------------------------------------------
# Linearisation at the collapsed point
# ---------------------------------------------------------------------------------------------------


def _decoder_precision(prob: Problem, lam, variant: Variant) -> Array:
    r""":math:`\nu_i`, the decoder precision seen along eigendirection i at the collapsed point."""
    if variant.decoder == "full":
        return 1.0 / prob.mu + 2.0 * lam
    if variant.decoder == "isotropic":
        s0 = jnp.mean(prob.mu)
        return jnp.full_like(prob.mu, 1.0 / s0 + 2.0 * lam)
    return jnp.full_like(prob.mu, 1.0 / variant.sigma_d2 + 2.0 * lam)


@float64
def linearised_rates(prob: Problem, beta, lam=0.0, cfg: FlowConfig = FlowConfig()) -> Array:
    r"""Growth rate of each eigendirection of :math:`\Sigma_Y` at the collapsed point (negative: decays).

    Linearised at :math:`(B, \Sigma_W, A, \Sigma_Z) = (0, I, 0, \Sigma_Z^{\rm col})` the flow decouples per latent k
    and eigendirection i into :math:`b = (BU)_{ki}`, :math:`a = (U^\top A)_{ik}`; with
    :math:`\nu_i = (\Sigma_Z^{\rm col})^{-1}_{ii} + 2\lambda` (D1: :math:`1/\mu_i + 2\lambda`):

    .. math::
        \text{euclidean: }\frac{d}{dt}\binom ba
        = \begin{pmatrix}-\beta\mu_i & \nu_i\mu_i\\ \nu_i\mu_i & -\nu_i\end{pmatrix}\binom ba,
        \qquad \text{block: }\frac{d}{dt}\binom ba = \begin{pmatrix}-1 & \nu_i/\beta\\ \mu_i & -1\end{pmatrix}\binom ba .

    Both have determinant of the sign of :math:`\beta - \nu_i\mu_i`, so direction i decays iff
    :math:`\beta > \nu_i\mu_i` (D1: :math:`1 + 2\lambda\mu_i`). Returns the larger eigenvalue of each 2×2
    block: :math:`I(X;Y)`, :math:`I(X;V)` and every pairwise MI decay like :math:`e^{2 r t}` with r the largest
    rate among the directions the initialisation excites.

    Args:
        prob: the data model.
        beta: KL weight β > 0.
        lam: L2 weight λ ≥ 0.
        cfg: only ``variant`` and ``metric`` matter.

    Returns:
        Rates r_i, shape (n,).

    Theorem: collapse-stability
    """
    beta, lam = check_beta_lam(beta, lam)
    mu = prob.mu
    nu = _decoder_precision(prob, lam, cfg.variant)
    if cfg.metric == "block":
        return -1.0 + jnp.sqrt(nu * mu / beta)
    tr = -(beta * mu + nu)
    disc = jnp.sqrt((beta * mu - nu) ** 2 + 4.0 * (nu * mu) ** 2)
    return 0.5 * (tr + disc)


@float64
def collapse_threshold(prob: Problem, lam=0.0, variant: Variant = D1) -> float:
    r""":math:`\beta_c = \max_i \nu_i\mu_i`: collapse is linearly stable (map and flow) iff :math:`\beta > \beta_c`.

    D1: :math:`1 + 2\lambda\mu_1`; D2: :math:`\mu_1(1/s_0 + 2\lambda)`, :math:`s_0 = \operatorname{tr}\Sigma_Y/n`;
    D3: :math:`\mu_1/\sigma_{\rm eff}^2` (docs/theory.md §3.8, §4).

    Theorem: collapse-stability
    """
    _, lam = check_beta_lam(1.0, lam)
    return float(jnp.max(_decoder_precision(prob, lam, variant) * prob.mu))


# ---------------------------------------------------------------------------------------------------
# Integration
# ---------------------------------------------------------------------------------------------------


def _tree_norm(y) -> Array:
    return jnp.sqrt(sum(jnp.sum(x * x) for x in jax.tree_util.tree_leaves(y)))


def _residual(Sigma_Y, y: Coordinates, beta, lam, cfg: FlowConfig) -> tuple[Array, Array]:
    """Steadiness measure: the block residual ``||T(theta) - theta||`` and ``||theta||`` in (B, Σ_W, A, Σ_Z).

    ``T`` maps every block to its exact minimiser given the others (the block metric's field), so the
    residual is a scale-free distance to stationarity whatever metric is integrated; the raw Euclidean
    speed is not (near a stable point an explicit solver dithers at ~tol x the stiffest rate).
    """
    return _residuals(Sigma_Y, y, beta, lam, cfg)[:2]


def _cone_residual(p: Coordinates, d: Coordinates) -> Array:
    r""":math:`\max(\|\Sigma_W^{-1}\Delta\Sigma_W\|_F, \|\Sigma_Z^{-1}\Delta\Sigma_Z\|_F)`: the covariance blocks' residuals
    relative to their own size (``p`` parameters, ``d`` block residuals); see the ``CONE`` tier."""
    return jnp.maximum(fro(solve_spd(p.W, d.W)), fro(solve_spd(p.Z, d.Z)))


def _residuals(Sigma_Y, y: Coordinates, beta, lam, cfg: FlowConfig) -> tuple[Array, Array, Array]:
    """:func:`_residual` and :func:`_cone_residual` of flow coordinates ``y`` (unused outputs cost nothing under jit)."""
    p = Coordinates(*from_coordinates(y, cfg))
    d = _block(Sigma_Y, p, beta, lam, cfg.variant)
    return _tree_norm(d), _tree_norm(p), _cone_residual(p, d)


@functools.partial(jax.jit, static_argnames=("cfg", "save_ts"))
def _solve_chunk(Sigma_Y, y0: Coordinates, betas, lams, t0, t1, ts, cfg: FlowConfig, save_ts: bool):
    """One vmapped diffrax solve over flattened lanes; ``y0`` and ``betas``/``lams`` have a lane axis."""
    f = make_vector_field(Sigma_Y, cfg)
    term = diffrax.ODETerm(f)
    solver = _SOLVERS[cfg.solver]()
    controller = diffrax.PIDController(rtol=cfg.tol.rtol, atol=cfg.tol.atol)
    saveat = diffrax.SaveAt(ts=ts) if save_ts else diffrax.SaveAt(t1=True)

    def one(y, beta, lam):
        sol = diffrax.diffeqsolve(
            term, solver, t0, t1, None, y, (beta, lam), saveat=saveat, stepsize_controller=controller,
            max_steps=cfg.max_steps, throw=False,
        )
        ok = sol.result == diffrax.RESULTS.successful
        y_end = jax.tree_util.tree_map(lambda x: x[-1], sol.ys)
        speed, size = _residual(Sigma_Y, y_end, beta, lam, cfg)
        return sol.ys, y_end, ok, speed, size, sol.stats["num_steps"]

    return jax.vmap(one)(y0, betas, lams)


@functools.partial(jax.jit, static_argnames=("cfg",))
def _final_residual(Sigma_Y, y: Coordinates, betas, lams, cfg: FlowConfig):
    return jax.vmap(lambda c, b, la: _residual(Sigma_Y, c, b, la, cfg))(y, betas, lams)


def _solve_lanes(Sigma_Y, y: Coordinates, betas, lams, t0, t1, ts, cfg: FlowConfig, save_ts: bool):
    """:func:`_solve_chunk` over groups of at most ``cfg.max_lanes`` lanes (the last one padded)."""
    lanes = betas.shape[0]
    width = min(cfg.max_lanes, lanes)
    if lanes == width:
        return _solve_chunk(Sigma_Y, y, betas, lams, t0, t1, ts, cfg, save_ts)
    groups = -(-lanes // width)
    pad = groups * width - lanes
    padded = lambda x: jnp.concatenate([x, jnp.broadcast_to(x[:1], (pad,) + x.shape[1:])])  # noqa: E731
    y, betas, lams = jax.tree_util.tree_map(padded, (y, betas, lams))
    outs = []
    for g in range(groups):
        part = slice(g * width, (g + 1) * width)
        y_g = jax.tree_util.tree_map(lambda x, part=part: x[part], y)
        # One group at a time: the device has nothing to overlap, and it bounds memory.
        outs.append(jax.block_until_ready(
            _solve_chunk(Sigma_Y, y_g, betas[part], lams[part], t0, t1, ts, cfg, save_ts)))
    return jax.tree_util.tree_map(lambda *a: jnp.concatenate(a)[:lanes], *outs)


#: Steps per jitted call of the RKC path; running lanes are compacted into groups between calls.
_RKC_STEPS = 64


@functools.lru_cache(maxsize=32)
def _rkc_functions(cfg: FlowConfig, n: int, m: int):
    """The flow's field and steadiness test on flattened lanes ``(L, D)``, cached so ``advance`` compiles once."""
    shapes = ((m, n), (m, m), (n, m), (n, n))
    offsets = np.cumsum([0] + [a * b for a, b in shapes])

    def unravel(x: Array) -> Coordinates:
        cuts = zip(offsets[:-1], offsets[1:], shapes, strict=True)
        return Coordinates(*(x[..., o:e].reshape(x.shape[:-1] + shp) for o, e, shp in cuts))

    def ravel(c: Coordinates) -> Array:
        return jnp.concatenate([a.reshape(a.shape[: a.ndim - 2] + (-1,)) for a in c], axis=-1)

    def one(x, Sigma_Y, beta, lam):
        return ravel(make_vector_field(Sigma_Y, cfg)(0.0, unravel(x), (beta, lam)))

    fv = jax.vmap(one, in_axes=(0, None, 0, 0))

    def steady(y, f, Sigma_Y, beta, lam):
        if cfg.metric == "block":  # the block field is the block residual, the coordinates the parameters
            res, size = jnp.sqrt(jnp.sum(f * f, axis=1)), jnp.sqrt(jnp.sum(y * y, axis=1))
            close = res <= cfg.steady.atol + cfg.steady.rtol * size
            # The relative test needs two inverses per lane: only in steps where some lane passed the first.
            cone = jax.lax.cond(
                jnp.any(close), lambda: jax.vmap(_cone_residual)(unravel(y), unravel(f)), lambda: jnp.zeros_like(res)
            )
        else:
            res, size, cone = jax.vmap(lambda x, b, la: _residuals(Sigma_Y, unravel(x), b, la, cfg))(y, beta, lam)
            close = res <= cfg.steady.atol + cfg.steady.rtol * size
        return close & (cone <= CONE.rtol)

    return fv, steady, ravel, unravel


_rkc_start = jax.jit(_rkc.start, static_argnames=("fv",))


def _group_width(running: int, max_lanes: int) -> int:
    """Lanes per call: ``max_lanes``, or for fewer running lanes the smallest of max_lanes / 4^k (>= 8) that holds them."""
    w = max_lanes
    while w // 4 >= max(running, 8):
        w //= 4
    return w


def _integrate_rkc(Sigma_Y, y: Coordinates, betas, lams, t1: float, cfg: FlowConfig):
    """Every lane to a steady state (or ``t1``) with :mod:`linvae.numeric._rkc`, compacting running lanes.

    Returns the final coordinates and the final :class:`~linvae.numeric._rkc.Lanes` (NumPy arrays).
    """
    n, m = y.A.shape[-2:]
    fv, steady, ravel, unravel = _rkc_functions(cfg, int(n), int(m))
    Y = np.asarray(ravel(y))
    lanes_total = Y.shape[0]
    bb, ll = np.asarray(betas), np.asarray(lams)
    tol = cfg.tol
    start = time.perf_counter()
    last_print = start
    rounds = 0

    def groups(idx):
        width = _group_width(idx.size, min(cfg.max_lanes, lanes_total))
        for g in range(0, idx.size, width):
            sel = idx[g : g + width]
            yield sel, np.concatenate([sel, np.full(width - sel.size, sel[0])])

    # Initial lanes (F at the start), in the same group widths as the steps below.
    parts = []
    for sel, pad in groups(np.arange(lanes_total)):
        ln = _rkc_start(fv, jnp.asarray(Y[pad]), Sigma_Y, (jnp.asarray(bb[pad]), jnp.asarray(ll[pad])))
        parts.append([x[: sel.size] for x in jax.device_get(ln)])
    state = _rkc.Lanes(*(np.concatenate(f) for f in zip(*parts, strict=True)))

    while True:
        running = np.flatnonzero(state.status == _rkc.RUNNING)
        if running.size == 0:
            break
        # A group runs as many stages as its largest member needs (s ~ sqrt(1.54 h rho)): group lanes by h rho.
        running = running[np.argsort(state.h[running] * state.rho[running], kind="stable")]
        for sel, pad in groups(running):  # groups are disjoint: each writes back only its own lanes
            ln = _rkc.Lanes(*(jnp.asarray(x[pad]) for x in state))
            out = _rkc.advance(
                fv, steady, ln, Sigma_Y, (jnp.asarray(bb[pad]), jnp.asarray(ll[pad])), t1, tol.rtol, tol.atol,
                cfg.max_steps, num_steps=_RKC_STEPS,
            )
            for dst, src in zip(state, jax.device_get(out), strict=True):
                dst[sel] = src[: sel.size]
        rounds += 1
        now = time.perf_counter()
        if cfg.progress and (now - last_print >= 5.0 or not np.any(state.status == _rkc.RUNNING)):
            last_print = now
            st = state.status
            print(
                f"[linvae.flow] rkc round {rounds}: steady {int((st == _rkc.STEADY).sum())}/{lanes_total}, "
                f"running {int((st == _rkc.RUNNING).sum())}, at t1 {int((st == _rkc.HORIZON).sum())}, "
                f"failed {int(((st == _rkc.FAILED) | (st == _rkc.NON_FINITE)).sum())}; "
                f"F evaluations per lane: mean {state.evals.mean():.0f}, max {state.evals.max()}; "
                f"{now - start:.1f} s",
                flush=True,
            )

    return unravel(jnp.asarray(state.y)), state


def _observables(prob: Problem, B, W, A, Z, beta, lam):
    lt = loss_terms(prob.Sigma_Y, B, W, A, Z, beta, lam)
    # One batched LAPACK call for both spectra: two concurrent ones can deadlock (see _linalg.inv_logdet_spd).
    sv_B, sv_K = singular_values(jnp.stack([B, solve_spd(W, B)]))
    return lt, sv_B, sv_K, information_terms(prob, B, W)


@functools.partial(jax.jit, static_argnames=("cfg",))
def _trajectory(prob: Problem, ys: Coordinates, betas, lams, cfg: FlowConfig) -> Trajectory:
    def at(y, beta, lam):
        B, W, A, Z = from_coordinates(y, cfg)
        return (B, W, A, Z) + _observables(prob, B, W, A, Z, beta, lam)

    per_time = jax.vmap(at, in_axes=(0, None, None))
    out = jax.vmap(per_time)(ys, betas, lams)
    return Trajectory(*out)


def _as_grid(name: str, x, check) -> np.ndarray:
    a = np.atleast_1d(as_finite_array(name, x))
    if a.ndim != 1:
        raise ValueError(f"{name} must be a scalar or a 1-D array; got shape {a.shape}")
    for v in a:
        check(v)
    return a


def _check_init(prob: Problem, init, cfg: FlowConfig) -> tuple[np.ndarray, ...]:
    if len(init) < 4:
        raise ValueError("init must be (B, Sigma_W, A, Sigma_Z) with a leading batch axis (see flow_init)")
    B, W, A, Z = (as_finite_array(nm, x) for nm, x in zip(("B", "Sigma_W", "A", "Sigma_Z"), init[:4], strict=True))
    n = prob.n
    if B.ndim != 3 or B.shape[-1] != n:
        raise ValueError(f"init B must have shape (k, m, n) with n = {n}; got {B.shape}")
    k, m, _ = B.shape
    check_latent_dim(m, n)
    for nm, x, shp in (("Sigma_W", W, (k, m, m)), ("A", A, (k, n, m)), ("Sigma_Z", Z, (k, n, n))):
        if x.shape != shp:
            raise ValueError(f"init {nm} must have shape {shp}; got {x.shape}")
    for nm, S in (("Sigma_W", W), ("Sigma_Z", Z)):
        S = 0.5 * (S + np.swapaxes(S, -1, -2))
        if np.any(np.linalg.eigvalsh(S)[..., 0] <= 0):
            raise ValueError(f"init {nm} must be symmetric positive definite")
    v = cfg.variant
    if v.encoder == "diagonal" and np.any(W - np.einsum("kii->ki", W)[..., None] * np.eye(m) != 0):
        raise ValueError("the diagonal encoder (E2) needs a diagonal init Sigma_W")
    if v.decoder != "full":
        iso = np.einsum("kii->ki", Z)[..., :1, None] * np.eye(n)
        if np.any(Z != iso):
            raise ValueError(f"decoder {v.decoder!r} needs an isotropic init Sigma_Z = s I")
        if v.decoder == "fixed" and np.any(iso[:, 0, 0] != v.sigma_d2):
            raise ValueError(f"the fixed decoder (D3) needs init Sigma_Z = sigma_d2 I = {v.sigma_d2} I")
    return B, W, A, Z


@float64
def flow_init(prob: Problem, m: int, *, key, num: int = 1, variant: Variant = D1) -> State:
    r"""Initial points for the flow: the published random encoder and the exact decoder block for it.

    :math:`B \sim U[0,1)^{m\times n}`, :math:`\Sigma_W` from ``make_spd_matrix`` (docs/theory.md §2.3; a diagonal
    encoder keeps its diagonal), then :math:`(A, \Sigma_Z)` = decoder block (docs/theory.md §3.3). Random starts
    avoid the invariant sets of the flow (``B = 0`` and exact eigen-subspaces, docs/theory.md §10.4).

    Args:
        prob: the data model.
        m: latent dimension.
        key: int seed or JAX key.
        num: number of initialisations (leading axis k).
        variant: model variant.

    Returns:
        :class:`~linvae.numeric.State` with a leading axis of length ``num``.
    """
    m = check_latent_dim(m, prob.n)
    key = jax.random.key(int(key)) if isinstance(key, int) else key
    n = prob.n

    def one(k):
        B, W = random_init(k, n, m)
        if variant.encoder == "diagonal":
            W = jnp.diag(jnp.diagonal(W))
        A, Z = decoder_block(prob.Sigma_Y, B, W, variant)
        return B, W, A, Z

    B, W, A, Z = jax.vmap(one)(jax.random.split(key, int(num)))
    z = jnp.zeros((int(num),))
    return State(B, W, A, Z, z.astype(jnp.int32), z.astype(bool), z)


def _status(ok, finite, steady) -> np.ndarray:
    out = np.where(steady, "ok", "not steady").astype(object)
    out = np.where(ok, out, "solver failed")
    return np.where(finite, out, "non-finite")


@float64
def integrate(
    prob: Problem,
    betas,
    lams,
    init,
    *,
    t1: float,
    ts=None,
    cfg: FlowConfig = FlowConfig(),
) -> FlowSolution:
    r"""Integrate the gradient flow over a (β, λ) grid and a batch of initialisations in one vmapped solve.

    Solves :math:`\dot\theta = -\mathcal P(\theta)\nabla\mathcal L_{\lambda\beta}` on :math:`[0, t_1]` for every
    (β, λ, init) lane with an adaptive diffrax solver (rtol/atol ``cfg.tol``). With ``ts`` the parameters
    and all observables (loss terms, singular values of B and K, information measures) are recorded at
    those times; without, only the end point is returned and the integration stops early once every lane
    is steady (checked between chunks). ``FlowConfig(solver="rkc")`` (no ``ts``) runs every lane to its
    own steady state with a batched Runge-Kutta-Chebyshev method instead; ``t1`` is then only a cap.

    Nothing fails silently: a lane whose solver hit its step cap or whose step size collapsed (a stiff or
    diverging run, e.g. β < 1 in D1 where the loss is unbounded below), or whose values are not finite,
    is flagged in ``status`` and ``final.converged``, and a :class:`NotConvergedWarning` names the count;
    without ``ts``, lanes that are not steady at ``t1`` are flagged and warned about too.

    Args:
        prob: the data model.
        betas: KL weights, scalar or shape (b,), each > 0.
        lams: L2 weights, scalar or shape (l,), each ≥ 0.
        init: initial parameters ``(B, Sigma_W, A, Sigma_Z)`` with a leading axis k (e.g. :func:`flow_init`).
        t1: end time (> 0). Integration horizons come from the theory: ``t1 = c / gap`` with the gap from
            :func:`linearised_rates` (collapse) or the spectrum.
        ts: save times in (0, t1], increasing, shape (T,); optional.
        cfg: :class:`FlowConfig`.

    Returns:
        :class:`FlowSolution` with axes (b, l, k[, T]).

    Theorem: collapse-stability, water-filling
    """
    betas = _as_grid("betas", betas, lambda b: check_beta_lam(b, 0.0))
    lams = _as_grid("lams", lams, lambda x: check_beta_lam(1.0, x))
    t1 = float(t1)
    if not (np.isfinite(t1) and t1 > 0):
        raise ValueError(f"t1 must be finite and > 0; got {t1}")
    B0, W0, A0, Z0 = _check_init(prob, init, cfg)
    nb, nl, k = betas.size, lams.size, B0.shape[0]
    lanes = nb * nl * k
    if ts is not None:
        ts = as_finite_array("ts", ts, ndim=1)
        if ts.size == 0 or ts[0] <= 0 or ts[-1] > t1 or np.any(np.diff(ts) <= 0):
            raise ValueError("ts must be strictly increasing in (0, t1]")

    y0 = jax.vmap(lambda *s: to_coordinates(s, cfg))(*(jnp.asarray(x) for x in (B0, W0, A0, Z0)))
    rep = lambda x: jnp.broadcast_to(x, (nb, nl) + x.shape).reshape((lanes,) + x.shape[1:])  # noqa: E731
    y = jax.tree_util.tree_map(rep, y0)
    bb = jnp.asarray(np.repeat(betas, nl * k))
    ll = jnp.asarray(np.tile(np.repeat(lams, k), nb))

    if cfg.solver == "rkc" and ts is not None:
        raise ValueError("solver='rkc' integrates to a steady state only (no ts); use a diffrax solver for trajectories")

    if cfg.solver == "rkc":
        bounds, pieces = np.array([0.0]), []
    elif ts is None:
        bounds = np.linspace(0.0, t1, cfg.chunks + 1)
        pieces = [None] * cfg.chunks
    else:
        parts = np.array_split(ts, min(cfg.chunks, ts.size))
        bounds = np.concatenate([[0.0], [p[-1] for p in parts]])
        pieces = parts

    ok = np.ones(lanes, bool)
    steps = np.zeros(lanes, np.int64)
    saved = []
    start = time.perf_counter()
    speed = size = None
    for c, piece in enumerate(pieces):
        t_a, t_b = float(bounds[c]), float(bounds[c + 1])
        ys, y, ok_c, speed, size, nsteps = _solve_lanes(
            prob.Sigma_Y, y, bb, ll, t_a, t_b,
            jnp.asarray(piece) if piece is not None else jnp.zeros((1,)), cfg, piece is not None,
        )
        ok &= np.asarray(ok_c)
        steps += np.asarray(nsteps)
        if piece is not None:
            saved.append(ys)
        rel = np.asarray(speed) / (1.0 + np.asarray(size))
        steady = np.asarray(speed) <= cfg.steady.atol + cfg.steady.rtol * np.asarray(size)
        if cfg.progress:
            worst = np.nanmax(np.where(np.isfinite(rel), rel, np.inf))
            print(
                f"[linvae.flow] chunk {c + 1}/{len(pieces)}: t = {t_b:.4g}/{t1:.4g}, "
                f"steady {int(steady.sum())}/{lanes}, worst relative residual {worst:.2e}, "
                f"solver failures {int((~ok).sum())}, {time.perf_counter() - start:.1f} s",
                flush=True,
            )
        if ts is None and bool(np.all(steady | ~ok)):
            break

    rkc_steady = None
    if cfg.solver == "rkc":
        y, lanes = _integrate_rkc(prob.Sigma_Y, y, bb, ll, t1, cfg)
        ok = (lanes.status == _rkc.STEADY) | (lanes.status == _rkc.HORIZON)  # no step cap, no step-size collapse
        steps = lanes.steps + lanes.rejected
        speed, size = _final_residual(prob.Sigma_Y, y, bb, ll, cfg)
        rkc_steady = lanes.status == _rkc.STEADY  # the absolute and the relative (CONE) test
    speed = np.asarray(speed)
    size = np.asarray(size)
    B, W, A, Z = jax.vmap(lambda c: from_coordinates(c, cfg))(y)
    finite = np.asarray(
        jnp.isfinite(speed) & jax.vmap(lambda *a: jnp.all(jnp.stack([jnp.all(jnp.isfinite(x)) for x in a])))(
            B, W, A, Z
        )
    )
    steady = np.isfinite(speed) & (speed <= cfg.steady.atol + cfg.steady.rtol * size)
    if rkc_steady is not None:
        steady &= rkc_steady
    status = _status(ok, finite, steady)
    converged = ok & finite & steady
    shape = (nb, nl, k)
    rs = lambda x: jnp.reshape(jnp.asarray(x), shape + jnp.shape(x)[1:])  # noqa: E731
    final = State(rs(B), rs(W), rs(A), rs(Z), rs(steps), rs(converged), rs(speed / (1.0 + size)))

    bad = int((~(ok & finite)).sum()) if ts is not None else int((~converged).sum())
    if bad:
        kinds = {s: int((status == s).sum()) for s in ("not steady", "solver failed", "non-finite")}
        warnings.warn(
            f"{bad} of {lanes} flow lane(s) did not converge: {kinds}; inspect FlowSolution.status",
            NotConvergedWarning, stacklevel=3,
        )

    traj = None
    if ts is not None:
        ys_all = jax.tree_util.tree_map(lambda *a: jnp.concatenate(a, axis=1), *saved)
        tr = _trajectory(prob, ys_all, bb, ll, cfg)
        traj = jax.tree_util.tree_map(lambda x: x.reshape(shape + x.shape[1:]), tr)
        ts = jnp.asarray(ts)
    return FlowSolution(ts, final, status.reshape(shape), traj)


# ---------------------------------------------------------------------------------------------------
# Data for figures (compute only)
# ---------------------------------------------------------------------------------------------------


class CollapseCurves(NamedTuple):
    r"""Gain contraction and MI collapse along the flow, with the linearised prediction.

    Attributes:
        ts: times (T,).
        betas: the KL weights (b,).
        sv_K: singular values of :math:`K = \Sigma_W^{-1}B`, shape (b, k, T, m).
        sv_B: singular values of B, shape (b, k, T, m).
        mi_xy, mi_xv, sap, i_m, max_pairwise: information trajectories, shape (b, k, T).
        rate: predicted asymptotic decay rate of every MI (:math:`-2\max_i r_i`), shape (b,).
        threshold: :math:`\beta_c` of :func:`collapse_threshold`.
    """

    ts: Array
    betas: Array
    sv_K: Array
    sv_B: Array
    mi_xy: Array
    mi_xv: Array
    sap: Array
    i_m: Array
    max_pairwise: Array
    rate: Array
    threshold: float


@float64
def collapse_curves(
    prob: Problem,
    betas,
    lam: float = 0.0,
    m: int = 2,
    *,
    key=0,
    num_inits: int = 1,
    t1: float = 50.0,
    num_times: int = 101,
    cfg: FlowConfig = FlowConfig(),
) -> CollapseCurves:
    r"""Trajectories for the "gain contraction vs time" and "MI collapse" figures (no plotting, no I/O).

    For each β: singular values of B and :math:`K = \Sigma_W^{-1}B` and all information measures along
    the flow from :func:`flow_init` starts, and the linearised asymptotic MI decay rate
    :math:`2\max_i r_i` (:func:`linearised_rates`) to draw as a slope.

    Theorem: collapse-stability, mi-chain
    """
    betas = _as_grid("betas", betas, lambda b: check_beta_lam(b, 0.0))
    init = flow_init(prob, m, key=key, num=num_inits, variant=cfg.variant)
    ts = np.linspace(0.0, float(t1), int(num_times) + 1)[1:]
    sol = integrate(prob, betas, lam, init, t1=t1, ts=ts, cfg=cfg)
    tr = sol.trajectory
    info = tr.information
    sq = lambda x: x[:, 0]  # noqa: E731
    rate = jnp.asarray([-2.0 * jnp.max(linearised_rates(prob, b, lam, cfg)) for b in betas])
    return CollapseCurves(
        sol.ts, jnp.asarray(betas), sq(tr.sv_K), sq(tr.sv_B), sq(info.mi_xy), sq(info.mi_xv),
        sq(info.sap), sq(info.i_m), sq(jnp.max(info.pairwise, axis=(-2, -1))), rate,
        collapse_threshold(prob, lam, cfg.variant),
    )
