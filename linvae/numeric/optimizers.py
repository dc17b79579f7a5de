r"""Discrete optimisers on the linear λβ-VAE loss: gradient descent, minibatch SGD, the published AdamW.

All three act on the same parameters :math:`(B, L_W, A, L_Z)` (Cholesky factors, as in the Euclidean
gradient flow of :mod:`linvae.numeric.flow`) and are vmapped over a batch of initialisations.

* :func:`gradient_descent` — :math:`\theta_{k+1} = \theta_k - h\nabla\mathcal L_{\lambda\beta}(\theta_k)` on the exact
  population loss: the explicit Euler scheme of the Euclidean flow.
* :func:`sgd` — the same update with the gradient of :func:`minibatch_loss`, a real Monte-Carlo estimate:
  data :math:`Y = \Gamma V + \tilde Z` drawn from the model, latents :math:`X = BY + L_W\epsilon` drawn by
  reparameterisation, the per-sample Gaussian NLL, analytic per-sample KL and squared error. It is an
  unbiased estimate of :math:`\mathcal L_{\lambda\beta}` and of its gradient.
* :func:`adamw` — the authors' protocol (docs/theory.md §2.3): parameters :math:`(A, B, L_Z, L_W)` with
  :math:`\Sigma = LL^\top + 5\cdot10^{-5}I`, AdamW (lr 1e-3, betas (0.9, 0.999), eps 1e-8, weight decay 0.01),
  gradient-norm clipping per group (:math:`(A, B)` and :math:`(L_Z, L_W)`), best-loss iterate kept. It
  minimises a slightly different objective (weight decay, Σ floor; docs/theory.md §10.17).

Uses optax (a base dependency) for AdamW and per-group clipping.
"""

from __future__ import annotations

import functools
import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax import Array

from linvae.numeric._linalg import cholesky, inv_logdet_spd, inv_spd, logdet_spd
from linvae.numeric._precision import float64
from linvae.numeric._validation import as_finite_array, check_beta_lam
from linvae.numeric.alternating import spd_matrix
from linvae.numeric.flow import Coordinates, FlowConfig, from_coordinates, make_vector_field, project_descent
from linvae.numeric.flow import to_coordinates as _to_coordinates
from linvae.numeric.loss import loss_terms
from linvae.numeric.model import D1, State, Variant
from linvae.numeric.problem import Problem


class OptimiserRun(NamedTuple):
    """Result of an optimiser run over k initialisations.

    Attributes:
        final: the last iterate as a :class:`~linvae.numeric.State` with a leading axis k
            (``steps`` = iterations, ``converged`` = all values finite, ``delta`` = last population loss).
        best: the iterate with the lowest population loss seen (AdamW's reported point; for GD/SGD the
            same bookkeeping).
        best_loss: its loss, shape (k,).
        trace_steps: iteration indices of the recorded losses, shape (T,).
        trace_loss: population loss :math:`\\mathcal L_{\\lambda\\beta}` at those iterations, shape (k, T).
    """

    final: State
    best: State
    best_loss: Array
    trace_steps: Array
    trace_loss: Array


def _check_run(lr, steps, record_every) -> tuple[float, int, int]:
    lr = float(lr)
    if not (math.isfinite(lr) and lr > 0):
        raise ValueError(f"lr must be finite and > 0; got {lr}")
    for name, x in (("steps", steps), ("record_every", record_every)):
        if isinstance(x, bool) or int(x) != x or x < 1:
            raise ValueError(f"{name} must be a positive integer; got {x}")
    if steps % record_every:
        raise ValueError(f"steps ({steps}) must be a multiple of record_every ({record_every})")
    return lr, int(steps), int(record_every)


def _check_init(prob: Problem, init) -> tuple[Array, ...]:
    arrays = [as_finite_array(nm, x) for nm, x in zip(("B", "Sigma_W", "A", "Sigma_Z"), init[:4], strict=True)]
    B = arrays[0]
    if B.ndim != 3 or B.shape[-1] != prob.n:
        raise ValueError(f"init B must have shape (k, m, n) with n = {prob.n}; got {B.shape}")
    return tuple(jnp.asarray(a) for a in arrays)


def _population(Sigma_Y, y: Coordinates, beta, lam, cfg: FlowConfig):
    B, W, A, Z = from_coordinates(y, cfg)
    return loss_terms(Sigma_Y, B, W, A, Z, beta, lam).total


def _finish(cfg, ys, best_y, best_loss, losses, steps, record_every) -> OptimiserRun:
    to_state = jax.vmap(lambda y: from_coordinates(y, cfg))
    B, W, A, Z = to_state(ys)
    finite = jnp.all(jnp.isfinite(losses), axis=-1)
    k = B.shape[0]
    final = State(B, W, A, Z, jnp.full((k,), steps), finite, losses[:, -1])
    bB, bW, bA, bZ = to_state(best_y)
    best = State(bB, bW, bA, bZ, jnp.full((k,), steps), finite, best_loss)
    return OptimiserRun(final, best, best_loss, jnp.arange(1, steps // record_every + 1) * record_every, losses)


def _scan_descent(step_fn, loss_fn, y0, key, steps, record_every):
    """Run ``step_fn`` for ``steps`` iterations, recording the population loss and the best iterate."""

    def inner(carry, k):
        y, best_y, best_loss = carry
        y = step_fn(y, k)
        loss = loss_fn(y)
        better = loss < best_loss
        best_y = jax.tree_util.tree_map(lambda a, b: jnp.where(better, a, b), y, best_y)
        return (y, best_y, jnp.where(better, loss, best_loss)), loss

    def outer(carry, keys):
        carry, losses = jax.lax.scan(inner, carry, keys)
        return carry, losses[-1]

    keys = jax.random.split(key, steps).reshape((steps // record_every, record_every))
    carry0 = (y0, y0, loss_fn(y0))
    (y, best_y, best_loss), trace = jax.lax.scan(outer, carry0, keys)
    return y, best_y, best_loss, trace


@functools.partial(jax.jit, static_argnames=("cfg", "steps", "record_every"))
def _gd(Sigma_Y, y0, beta, lam, lr, cfg, steps, record_every):
    f = make_vector_field(Sigma_Y, cfg)

    def one(y):
        step = lambda y, _: jax.tree_util.tree_map(lambda a, d: a + lr * d, y, f(0.0, y, (beta, lam)))  # noqa: E731
        loss = lambda y: _population(Sigma_Y, y, beta, lam, cfg)  # noqa: E731
        return _scan_descent(step, loss, y, jax.random.key(0), steps, record_every)

    return jax.vmap(one)(y0)


def _coordinates(init, cfg):
    return jax.vmap(lambda *s: _to_coordinates(s, cfg))(*init)


@float64
def gradient_descent(
    prob: Problem,
    beta,
    lam,
    init,
    *,
    lr: float,
    steps: int,
    record_every: int = 1,
    variant: Variant = D1,
) -> OptimiserRun:
    r"""Plain gradient descent on the exact population loss, vmapped over initialisations.

    :math:`\theta_{k+1} = \theta_k - h\nabla_\theta\mathcal L_{\lambda\beta}(\theta_k)`, :math:`\theta = (B, L_W, A, L_Z)`: the
    explicit Euler discretisation of :func:`~linvae.numeric.flow.integrate`'s Euclidean flow, so
    :math:`\theta_k \approx \theta(kh)` with an O(h) error; stable for :math:`h < 2/\lambda_{\max}` of the Hessian.

    Args:
        prob: the data model.
        beta, lam: KL and L2 weights.
        init: ``(B, Sigma_W, A, Sigma_Z)`` with a leading axis k (e.g. :func:`~linvae.numeric.flow.flow_init`).
        lr: step size h.
        steps: iterations; record_every: spacing of the recorded losses.
        variant: model variant.
    """
    beta, lam = check_beta_lam(beta, lam)
    lr, steps, record_every = _check_run(lr, steps, record_every)
    cfg = FlowConfig(variant=variant)
    y0 = _coordinates(_check_init(prob, init), cfg)
    ys, best_y, best_loss, trace = _gd(prob.Sigma_Y, y0, beta, lam, lr, cfg, steps, record_every)
    return _finish(cfg, ys, best_y, best_loss, trace, steps, record_every)


@float64
def minibatch_loss(y: Coordinates, Y: Array, eps: Array, beta, lam) -> Array:
    r"""Monte-Carlo estimate of :math:`\mathcal L_{\lambda\beta}` on drawn data ``Y`` (b, n) and noise ``eps`` (b, m).

    Per sample, with :math:`x = By + L_W\epsilon`, :math:`r = y - Ax`, :math:`\Sigma_Z = L_ZL_Z^\top`:

    .. math::
        \tfrac12\big[r^\top\Sigma_Z^{-1}r + \log|\Sigma_Z| + n\log2\pi\big]
        + \tfrac\beta2\big[\operatorname{tr}\Sigma_W + \|By\|^2 - m - \log|\Sigma_W|\big] + \lambda\|r\|^2,

    averaged over the batch; its expectation is :math:`\mathcal R + \beta\mathcal K + \lambda\operatorname{tr}E`.
    """
    B, LW, A, LZ = y
    n, m = A.shape
    X = Y @ B.T + eps @ LW.T
    Rm = Y - X @ A.T
    # ||L_Z^{-1} r||^2 = r^T (L_Z L_Z^T)^{-1} r, without a batched LAPACK call (see _linalg).
    quad = jnp.sum(Rm * (Rm @ inv_spd(LZ @ LZ.T)), axis=1)
    logdet_Z = 2.0 * jnp.sum(jnp.log(jnp.abs(jnp.diagonal(LZ))))
    logdet_W = 2.0 * jnp.sum(jnp.log(jnp.abs(jnp.diagonal(LW))))
    nll = 0.5 * (quad + logdet_Z + n * math.log(2.0 * math.pi))
    kl = 0.5 * (jnp.sum(LW**2) + jnp.sum((Y @ B.T) ** 2, axis=1) - m - logdet_W)
    return jnp.mean(nll + beta * kl + lam * jnp.sum(Rm**2, axis=1))


@float64
def draw_data(prob: Problem, key: Array, batch: int) -> Array:
    r"""``batch`` samples of :math:`Y = \Gamma V + \tilde Z`, :math:`V \sim \mathcal N(0, \Sigma_V)`,
    :math:`\tilde Z \sim \mathcal N(0, \sigma^2 I)`."""
    kv, kz = jax.random.split(key)
    Lv = jnp.linalg.cholesky(prob.Sigma_V)
    V = jax.random.normal(kv, (batch, prob.s)) @ Lv.T
    return V @ prob.Gamma.T + jnp.sqrt(prob.sigma2) * jax.random.normal(kz, (batch, prob.n))


@functools.partial(jax.jit, static_argnames=("cfg", "steps", "record_every", "batch"))
def _sgd(prob, y0, beta, lam, lr, keys, cfg, steps, record_every, batch):
    m = y0.B.shape[-2]

    def one(y, key):
        def step(y, k):
            kd, ke = jax.random.split(k)
            Y = draw_data(prob, kd, batch)
            eps = jax.random.normal(ke, (batch, m))
            g = jax.grad(minibatch_loss)(y, Y, eps, beta, lam)
            d = project_descent(g, y, cfg.variant)
            return jax.tree_util.tree_map(lambda a, b: a + lr * b, y, d)

        loss = lambda y: _population(prob.Sigma_Y, y, beta, lam, cfg)  # noqa: E731
        return _scan_descent(step, loss, y, key, steps, record_every)

    return jax.vmap(one)(y0, keys)


@float64
def sgd(
    prob: Problem,
    beta,
    lam,
    init,
    *,
    lr: float,
    steps: int,
    batch: int,
    key,
    record_every: int = 1,
    variant: Variant = D1,
) -> OptimiserRun:
    r"""Minibatch SGD with real Monte-Carlo gradients (:func:`minibatch_loss`), vmapped over initialisations.

    Each step draws ``batch`` fresh data points from the model and one encoder noise per point, and moves
    along the negative (variant-projected) gradient of the minibatch loss. The recorded losses are the
    exact population loss of the iterates.

    Args:
        prob, beta, lam, init, lr, steps, record_every, variant: as in :func:`gradient_descent`.
        batch: minibatch size.
        key: int seed or JAX key (one independent stream per initialisation).
    """
    beta, lam = check_beta_lam(beta, lam)
    lr, steps, record_every = _check_run(lr, steps, record_every)
    if isinstance(batch, bool) or int(batch) != batch or batch < 1:
        raise ValueError(f"batch must be a positive integer; got {batch}")
    cfg = FlowConfig(variant=variant)
    y0 = _coordinates(_check_init(prob, init), cfg)
    key = jax.random.key(int(key)) if isinstance(key, int) else key
    keys = jax.random.split(key, y0.B.shape[0])
    ys, best_y, best_loss, trace = _sgd(prob, y0, beta, lam, lr, keys, cfg, steps, record_every, int(batch))
    return _finish(cfg, ys, best_y, best_loss, trace, steps, record_every)


class AdamWProtocol(NamedTuple):
    """Constants of the published AdamW protocol (docs/theory.md §2.3); the defaults are n = 50's."""

    lr: float = 1e-3
    b1: float = 0.9
    b2: float = 0.999
    eps: float = 1e-8
    weight_decay: float = 0.01
    clip_mean: float = 1.0  # (A, B); 2.0 for n = 100
    clip_cholesky: float = 2.0  # (L_Z, L_W); 3.0 for n = 100
    floor: float = 5e-5
    steps: int = 30_000  # 50_000 for n = 100


#: The published protocol per data size.
ADAMW_PROTOCOL = {50: AdamWProtocol(), 100: AdamWProtocol(clip_mean=2.0, clip_cholesky=3.0, steps=50_000)}


def _adamw_sigma(L: Array, floor: float) -> Array:
    Lt = jnp.tril(L)
    return Lt @ Lt.T + floor * jnp.eye(L.shape[-1], dtype=L.dtype)


@functools.partial(jax.custom_vjp, nondiff_argnums=(1,))
def _adamw_precision(L: Array, floor: float) -> tuple[Array, Array]:
    r"""Precision and log-determinant :math:`(P, \log|\Sigma|)`, :math:`P = \Sigma^{-1}`, of
    :math:`\Sigma = \operatorname{tril}(L)\operatorname{tril}(L)^\top + fI`.

    One block elimination (:func:`~linvae.numeric._linalg.inv_logdet_spd`); the backward pass is the closed form
    :math:`\bar\Sigma = \operatorname{sym}(-P\bar P P + \bar\ell P)`,
    :math:`\bar L = \operatorname{tril}(2\bar\Sigma\operatorname{tril}L)` (three matrix
    products). Differentiating through the Cholesky factorisation instead costs triangular solves with
    n right-hand sides, which dominated the step at n = 100.
    """
    return _adamw_precision_fwd(L, floor)[0]


def _adamw_precision_fwd(L, floor):
    # Plain-jnp elimination, not LAPACK: two batched LAPACK calls at once deadlock a 2-core CPU (_linalg).
    P, logdet = inv_logdet_spd(_adamw_sigma(L, floor))
    return (P, logdet), (P, L)


def _adamw_precision_bwd(floor, res, cot):
    P, L = res
    P_bar, ld_bar = cot
    S_bar = -P @ (0.5 * (P_bar + P_bar.T)) @ P + ld_bar * P
    S_bar = 0.5 * (S_bar + S_bar.T)
    return (jnp.tril(2.0 * S_bar @ jnp.tril(L)),)


_adamw_precision.defvjp(_adamw_precision_fwd, _adamw_precision_bwd)


def _adamw_loss(p: dict, Sigma_Y, beta, lam, floor) -> Array:
    r""":math:`\mathcal L_{\lambda\beta}` of the AdamW parameters, the same function as
    :func:`~linvae.numeric.loss.loss_terms` on :math:`\Sigma = \operatorname{tril}(L)\operatorname{tril}(L)^\top + fI`.

    Coded for speed in the n × n decoder covariance: with :math:`M = \Sigma_YB^\top` and
    :math:`E = \Sigma_Y - AM^\top - MA^\top + A\Sigma_XA^\top`, every trace :math:`\operatorname{tr}(QE)`
    (:math:`Q = \Sigma_Z^{-1}` or :math:`I`) is expanded into n × m products, so only the precision
    :func:`_adamw_precision` costs O(n³). Agreement with ``loss_terms`` (value and gradient) is tested.
    """
    A, B = p["A"], p["B"]
    n, m = A.shape
    Sigma_W = _adamw_sigma(p["L_W"], floor)
    P, logdet_Z = _adamw_precision(p["L_Z"], floor)
    M = Sigma_Y @ B.T
    Sigma_X = B @ M + Sigma_W
    Sigma_X = 0.5 * (Sigma_X + Sigma_X.T)
    PA = P @ A
    tr_PE = jnp.sum(P * Sigma_Y) - 2.0 * jnp.sum(PA * M) + jnp.sum((A.T @ PA) * Sigma_X)
    tr_E = jnp.trace(Sigma_Y) - 2.0 * jnp.sum(A * M) + jnp.sum((A.T @ A) * Sigma_X)
    recon = 0.5 * (tr_PE + logdet_Z + n * math.log(2.0 * math.pi))
    kl = 0.5 * (jnp.trace(Sigma_X) - logdet_spd(Sigma_W) - m)
    return recon + beta * kl + lam * tr_E


def _adamw_tx(proto: AdamWProtocol) -> optax.GradientTransformation:
    labels = {"A": "mean", "B": "mean", "L_Z": "cholesky", "L_W": "cholesky"}
    return optax.chain(
        optax.multi_transform(
            {
                "mean": optax.clip_by_global_norm(proto.clip_mean),
                "cholesky": optax.clip_by_global_norm(proto.clip_cholesky),
            },
            labels,
        ),
        optax.adamw(proto.lr, b1=proto.b1, b2=proto.b2, eps=proto.eps, weight_decay=proto.weight_decay),
    )


class AdamWState(NamedTuple):
    """The carry of the AdamW scan over k initialisations (leading axis k on every array).

    Everything a run needs to continue exactly where it stopped: saving these arrays and loading them
    back (:func:`adamw_advance` again) gives bit-for-bit the numbers of an uninterrupted run when the
    same chunk length is used.

    Attributes:
        params: ``{"A", "B", "L_Z", "L_W"}``, the current iterate :math:`p_t`.
        opt_state: optax state of the clip + AdamW chain.
        best_params: the best iterate among :math:`p_0, \\dots, p_{t-1}`.
        best_loss: its loss, shape (k,) (``inf`` before the first step).
        step: t, the number of updates made (a Python int, shared by all initialisations).
    """

    params: dict
    opt_state: Any
    best_params: dict
    best_loss: Array
    step: int


@float64
def adamw_start(init: dict, protocol: AdamWProtocol) -> AdamWState:
    """The state before the first step of :func:`adamw` from ``init`` (e.g. :func:`adamw_init`)."""
    p = {key: jnp.asarray(init[key], jnp.float64) for key in ("A", "B", "L_Z", "L_W")}
    k = p["A"].shape[0]
    opt_state = jax.vmap(_adamw_tx(protocol).init)(p)
    return AdamWState(p, opt_state, p, jnp.full((k,), jnp.inf), 0)


@functools.partial(jax.jit, static_argnames=("proto", "steps", "record_every"))
def _adamw(Sigma_Y, carry, beta, lam, proto: AdamWProtocol, steps: int, record_every: int):
    tx = _adamw_tx(proto)

    def one(carry, beta, lam):
        value_and_grad = jax.value_and_grad(lambda p: _adamw_loss(p, Sigma_Y, beta, lam, proto.floor))

        def inner(carry, _):
            # One loss evaluation per step: the loss of the iterate *before* its update is what the
            # best-iterate bookkeeping sees (as in PyTorch: loss = f(p); backward; keep p if best; step).
            p, s, best_p, best_loss = carry
            value, g = value_and_grad(p)
            better = value < best_loss
            best_p = jax.tree_util.tree_map(lambda a, b: jnp.where(better, a, b), p, best_p)
            u, s = tx.update(g, s, p)
            return (optax.apply_updates(p, u), s, best_p, jnp.where(better, value, best_loss)), value

        def outer(carry, _):
            carry, values = jax.lax.scan(inner, carry, None, length=record_every)
            return carry, values[0]

        return jax.lax.scan(outer, carry, None, length=steps // record_every)

    return jax.vmap(one)(carry, beta, lam)


@float64
def adamw_advance(
    prob: Problem, state: AdamWState, beta, lam, protocol: AdamWProtocol, steps: int, *, record_every: int = 100
) -> tuple[AdamWState, Array]:
    r"""``steps`` more AdamW steps from ``state``.

    ``beta`` and ``lam`` are scalars or one value per initialisation (shape (k,)): lanes of different
    (β, λ) cells run in one vmapped scan, which on a CPU costs about what one lane costs (a step of the
    n = 50 problem is latency-bound), so a whole grid runs in the time of one cell.

    Returns:
        the new state and the losses :math:`\mathcal L(p_t)` at :math:`t` = ``state.step``,
        ``state.step + record_every``, ..., shape (k, steps // record_every).
    """
    _, steps, record_every = _check_run(protocol.lr, steps, record_every)
    carry = (state.params, state.opt_state, state.best_params, state.best_loss)
    beta, lam = _per_lane(state, beta, lam)
    # ``protocol.steps`` is not used by the scan: normalise it so runs of any length share one compilation.
    proto = protocol._replace(steps=0)
    (p, s, best_p, best_loss), trace = _adamw(prob.Sigma_Y, carry, beta, lam, proto, steps, record_every)
    return AdamWState(p, s, best_p, best_loss, state.step + steps), trace


def _per_lane(state: AdamWState, beta, lam) -> tuple[Array, Array]:
    """``beta`` and ``lam`` as one float64 value per initialisation of ``state``, checked."""
    k = state.best_loss.shape[0]
    out = []
    for name, x in (("beta", beta), ("lam", lam)):
        a = jnp.broadcast_to(jnp.asarray(x, jnp.float64), (k,)) if jnp.ndim(x) <= 1 else None
        if a is None or a.shape != (k,):
            raise ValueError(f"{name} must be a scalar or one value per initialisation ({k},), got shape "
                             f"{jnp.shape(x)}")
        out.append(a)
    for b, lam_value in np.unique(np.stack([np.asarray(a) for a in out], -1), axis=0):
        check_beta_lam(b, lam_value)
    return out[0], out[1]


@functools.partial(jax.jit, static_argnames=("floor",))
def _adamw_close(Sigma_Y, p, best_p, best_loss, beta, lam, floor):
    value = jax.vmap(lambda q, b, lm: _adamw_loss(q, Sigma_Y, b, lm, floor))(p, beta, lam)
    better = value < best_loss
    best_p = jax.tree_util.tree_map(
        lambda a, b: jnp.where(better.reshape((-1,) + (1,) * (a.ndim - 1)), a, b), p, best_p
    )
    return value, best_p, jnp.where(better, value, best_loss)


@float64
def adamw_finish(prob: Problem, state: AdamWState, beta, lam, protocol: AdamWProtocol) -> tuple[Array, dict, Array]:
    """Evaluate the last iterate and let it compete for best: ``(final_loss, best_params, best_loss)``.

    After :func:`adamw_finish` the best iterate is the lowest-loss one of :math:`p_0, \\dots, p_T`.
    """
    beta, lam = _per_lane(state, beta, lam)
    return _adamw_close(prob.Sigma_Y, state.params, state.best_params, state.best_loss, beta, lam, protocol.floor)


@float64
def adamw_init(key, n: int, m: int, num: int) -> dict:
    r"""The published AdamW initialisation: :math:`A, B \sim \mathcal N(0, 1)`, Σ's from ``make_spd_matrix``,
    :math:`L = \operatorname{chol}(\Sigma)`; ``num`` independent draws (leading axis)."""

    def one(k):
        kA, kB, kZ, kW = jax.random.split(k, 4)
        return {
            "A": jax.random.normal(kA, (n, m)),
            "B": jax.random.normal(kB, (m, n)),
            "L_Z": cholesky(spd_matrix(kZ, n)),
            "L_W": cholesky(spd_matrix(kW, m)),
        }

    return jax.vmap(one)(jax.random.split(key, num))


@float64
def adamw_states(protocol: AdamWProtocol, best_params: dict, final_params: dict) -> tuple[State, State]:
    """``(best, final)`` as :class:`~linvae.numeric.State` (covariances :math:`LL^\\top + fI`, k leading)."""
    sig = jax.vmap(lambda L: _adamw_sigma(L, protocol.floor))
    out = []
    for p in (best_params, final_params):
        k = p["A"].shape[0]
        z = jnp.zeros((k,))
        out.append(State(p["B"], sig(p["L_W"]), p["A"], sig(p["L_Z"]), z, z, z))
    return out[0], out[1]


@float64
def adamw(
    prob: Problem,
    beta,
    lam,
    m: int,
    *,
    key,
    num_inits: int = 1,
    protocol: AdamWProtocol | None = None,
    record_every: int = 100,
    init: dict | None = None,
) -> OptimiserRun:
    r"""The published AdamW protocol (docs/theory.md §2.3), vmapped over ``num_inits`` initialisations.

    Parameters :math:`(A, B, L_Z, L_W)`, :math:`\Sigma = \operatorname{tril}(L)\operatorname{tril}(L)^\top + 5\cdot10^{-5}I`;
    the exact population loss; AdamW(lr 1e-3, betas (0.9, 0.999), eps 1e-8, weight decay 0.01) after
    gradient-norm clipping of each group; the best-loss iterate is kept. The protocol's constants default
    to the n = 50 entry of :data:`ADAMW_PROTOCOL` (n = 100 uses its own when ``protocol`` is None).

    Each step evaluates the loss and its gradient once (``jax.value_and_grad``) at the iterate
    :math:`p_t` before its update, as the PyTorch loop ``loss = f(p); loss.backward(); keep p if best;
    opt.step()`` does; after the last step the final iterate :math:`p_T` is evaluated once more, so the
    best iterate is the lowest-loss one of :math:`p_0, \dots, p_T`. For a run in resumable chunks use
    :func:`adamw_start`, :func:`adamw_advance` and :func:`adamw_finish`, which this function composes.

    Returns:
        :class:`OptimiserRun`; ``best`` is the reported point and ``best_loss`` its loss (the published
        objective, including the Σ floor; weight decay is part of the update, not of the loss).
        ``trace_loss[:, j]`` is the loss of :math:`p_t` at ``t = trace_steps[j]`` = record_every·(j + 1).
    """
    beta, lam = check_beta_lam(beta, lam)
    n = prob.n
    if protocol is None:
        protocol = ADAMW_PROTOCOL.get(n, AdamWProtocol())
    _, steps, record_every = _check_run(protocol.lr, protocol.steps, record_every)
    key = jax.random.key(int(key)) if isinstance(key, int) else key
    p0 = adamw_init(key, n, int(m), int(num_inits)) if init is None else init
    state, trace = adamw_advance(prob, adamw_start(p0, protocol), beta, lam, protocol, steps,
                                 record_every=record_every)
    last, best_p, best_loss = adamw_finish(prob, state, beta, lam, protocol)
    trace = jnp.concatenate([trace[:, 1:], last[:, None]], axis=1)
    best, final = adamw_states(protocol, best_p, state.params)
    finite = jnp.all(jnp.isfinite(trace), axis=-1)
    k = trace.shape[0]
    steps_k = jnp.full((k,), steps)
    final = final._replace(steps=steps_k, converged=finite, delta=trace[:, -1])
    best = best._replace(steps=steps_k, converged=finite, delta=best_loss)
    return OptimiserRun(final, best, best_loss, jnp.arange(1, steps // record_every + 1) * record_every,
                        jnp.asarray(np.asarray(trace)))
