r"""Training: a jitted step, many steps per host call, and ``vmap`` over the models of a sweep.

Structure (all pure functions of explicit state):

* :func:`init_state` — a :class:`TrainState` for M models at once (leading axis M on every leaf):
  parameters from each model's seed, a fresh optax Adam state, the β controller state.
* :func:`make_chunk` — a jitted ``(state, data) -> (state, chunk_means)`` that runs ``n`` steps with
  ``lax.scan``; each step is ``vmap``-ed over the models. Batches are drawn *on the device* from the
  data set passed as an argument (the stored uint8 array, or the procedural renderer), so there is no
  host round trip per step; the host sees the state once per chunk (progress bar, NaN report,
  checkpoint).
* :func:`train_phase` — one phase of the protocol for one group of models: chunks, atomic checkpoints
  every ``checkpoint_every`` steps, resume from the group checkpoint, progress bar with steps/s and ETA.
* :func:`train_sweep` — the published two-phase protocol over a (β, λ, seed) grid, training only the
  models whose results are missing from the runs folder, in groups sized to device memory.

Minibatches follow the published protocol, "batch 64 (shuffled, drop last)" (docs/theory.md §2.3): the
data set of N images is visited in epochs of ``N // batch_size`` steps; epoch ``e`` of model ``seed``
is a keyed pseudo-random permutation :math:`\pi_{\rm seed, e}` of ``[0, N)``, and global step ``t``
trains on the images :math:`\pi_{\rm seed, e}(jB), \dots, \pi_{\rm seed, e}(jB + B - 1)` with
:math:`e = \lfloor t / (N // B)\rfloor`, :math:`j = t \bmod (N // B)`, :math:`B` = ``batch_size``; the last
``N mod B`` positions of each epoch are dropped. The permutation is a swap-or-not shuffle
(:func:`shuffled_index`, Hoang, Morris & Rogaway 2012) with :data:`SHUFFLE_ROUNDS` rounds keyed by
``fold_in(stream, e)``: a bijection of ``[0, N)`` for every N by construction, evaluated only at the
``B`` positions a step needs (O(B) work, no N-array, no state), so the batch of step ``t`` is a pure
function of ``(seed, t)``. It is not NumPy's or PyTorch's shuffle (the orders differ), only the same
protocol. The λβ continuation goes on with the epochs of the global step count. The unbounded
synthetic :class:`~linvae.deep.data.LinearGaussian` has no epochs: each step draws fresh samples.

Randomness: model ``seed`` gives the initialisation key and a stream key; step ``t`` uses
``fold_in(stream, t)`` for its reparameterisation noise (and for the fresh draws of
``LinearGaussian``), epoch ``e`` uses ``fold_in(fold_in(stream, tag), e)`` for its permutation.
Models that share a seed share initialisation and data order, whatever their β, λ and KL target,
and a resumed run replays exactly the keys and batches of an uninterrupted one (bit-identical on CPU).

NaN / inf: a model whose loss or gradient is not finite at step t keeps its last finite parameters,
is marked dead with ``failed_at = t`` and stops updating; the others continue.

Each step uses one forward and one backward pass: the batch terms (NLL, KL, L2) are computed with
``jax.vjp``, β is read from the schedule or controller given this batch's KL (as ControlVAE does),
and the cotangent :math:`(1, \beta, \lambda)` pulls back the gradient of
:func:`linvae.deep.objective.objective` — the same function, differentiated with β held fixed.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax import Array

from linvae.deep import checkpoint
from linvae.deep.config import DeepConfig, validate
from linvae.deep.data import AbstractDataset, LinearGaussian, Pooled, fingerprint, load, to_device
from linvae.deep.model import AbstractVAE, make_model
from linvae.deep.objective import Terms, terms
from linvae.deep.record import (
    Member,
    check_or_record,
    code_revision,
    finite_or_none,
    member_dir,
    read_json,
    write_json,
)
from linvae.numeric import schedules

F32 = jnp.float32
#: Chunk means returned per model: NLL, KL, L2, β, total loss.
HISTORY_FIELDS = ("nll", "kl", "l2", "beta", "loss")
_STREAM_TAG = 0x5EED
_EPOCH_TAG = 0xE90C
#: Rounds of the swap-or-not shuffle. Each round is a keyed involution of [0, N); on dSprites
#: (N = 737,280) the order statistics checked (rank correlation, gaps between neighbours, repeated
#: gaps, factor balance within batches) match a uniform permutation from 16 rounds on; 32 doubles that.
SHUFFLE_ROUNDS = 32
#: Minibatch protocol recorded in a runs folder's config.json (runs of another protocol are refused).
SAMPLER = f"shuffled epochs, drop last (swap-or-not, {SHUFFLE_ROUNDS} rounds)"


class TrainState(NamedTuple):
    """State of M models trained together (leading axis M on every field but ``step``).

    Attributes:
        params: array leaves of the models (``eqx.partition(model, eqx.is_array)[0]``).
        opt_state: optax Adam state.
        ctrl_state: β schedule / controller state.
        beta: the grid β of each model (scale of open-loop schedules; β_min / β(0) of PI controllers).
        lam: λ of each model.
        target: KL set-point of each model's PI controller (nats) when ``cfg.kl_targets`` is set;
            0 (unused) otherwise.
        seed: seed of each model.
        alive: False once a model met a non-finite loss or gradient.
        failed_at: step of that event (-1 while alive).
        window: sums of (NLL, KL, L2) over the steps of the averaging window.
        count: number of steps summed in ``window``.
        step: the global step (same for all models; the λβ phase continues the β-VAE count).
    """

    params: Any
    opt_state: Any
    ctrl_state: Any
    beta: Array
    lam: Array
    target: Array
    seed: Array
    alive: Array
    failed_at: Array
    window: Array
    count: Array
    step: Array


# ---------------------------------------------------------------------------------------------------
# Data, models, optimiser, controller
# ---------------------------------------------------------------------------------------------------


def open_dataset(cfg: DeepConfig) -> AbstractDataset:
    """The configured data set (``FileNotFoundError`` naming the file when ``source="real"`` lacks it),
    mean-pooled to ``cfg.image_size`` when that is below the file's resolution (:class:`Pooled`)."""
    return at_resolution(cfg, load(cfg.dataset, data_dir=cfg.data_path, source=cfg.source))


def at_resolution(cfg: DeepConfig, dataset: AbstractDataset) -> AbstractDataset:
    """``dataset`` as the model of ``cfg`` sees it: itself, or :class:`Pooled` to ``cfg.image_size``."""
    side = dataset.image_shape[0]
    if isinstance(dataset, LinearGaussian) or side == cfg.image_size:
        return dataset
    if side % cfg.image_size:
        raise ValueError(f"image_size {cfg.image_size} does not divide the data set's {side} x {side} images")
    return Pooled(dataset, side // cfg.image_size)


def observations(dataset: AbstractDataset, key: Array, n: int) -> Array:
    """A float32 batch ``(n, H, W, C)``: images / 255, or exact draws for :class:`LinearGaussian`."""
    if isinstance(dataset, LinearGaussian):
        x, _ = dataset.sample(key, n)
        return x.reshape((n, *dataset.image_shape))
    return dataset.batch(key, n).images.astype(F32) / 255.0


def as_observations(dataset: AbstractDataset, images: Array) -> Array:
    """float32 observations of uint8 images (the inverse pixel map of :class:`LinearGaussian`)."""
    if isinstance(dataset, LinearGaussian):
        return dataset.decode(jnp.asarray(images)).reshape((images.shape[0], *dataset.image_shape))
    return jnp.asarray(images).astype(F32) / 255.0


def model_template(cfg: DeepConfig, dataset: AbstractDataset) -> AbstractVAE:
    """An initialised model (its structure and static fields; the values come from each seed)."""
    return make_model(cfg.model, dataset.image_shape, cfg.latent_dim, key=jax.random.key(0))


def optimizer(cfg: DeepConfig, steps: int) -> optax.GradientTransformation:
    """Adam (optax) with a cosine learning-rate decay to ``lr_decay_to`` over ``steps`` (none when 1)."""
    lr: float | optax.Schedule = cfg.learning_rate
    if cfg.lr_decay_to < 1.0:
        lr = optax.cosine_decay_schedule(cfg.learning_rate, max(steps, 1), alpha=cfg.lr_decay_to)
    return optax.adam(lr, b1=cfg.adam_b1, b2=cfg.adam_b2, eps=cfg.adam_eps)


def controller(cfg: DeepConfig, target: Array | float | None = None) -> tuple[schedules.BetaController, bool]:
    """The β controller and whether its output scales the grid β (open loop) or is β itself (PI).

    PI controllers (``"controlvae"``, ``"dynamicvae"``) take β_min / β(0) from ``cfg.betas[0]``. Their
    KL set-point is the published annealed one (docs/theory.md §7) when ``target`` is ``None``, else the
    constant ``target`` (nats; may be a traced per-model value, the ``kl_targets`` sweep axis).
    """
    if cfg.beta_schedule == "constant":
        return schedules.from_schedule(schedules.constant_schedule(1.0)), True
    if cfg.beta_schedule == "linear":
        return schedules.from_schedule(schedules.linear_schedule(1.0, 1.0 / cfg.warmup_steps)), True
    if cfg.beta_schedule == "controlvae":
        sp = schedules.controlvae_setpoint() if target is None else _constant_setpoint(target)
        return schedules.controlvae_pi(sp, beta_min=cfg.betas[0]), False
    if cfg.beta_schedule == "dynamicvae":
        sp = schedules.dynamicvae_setpoint() if target is None else _constant_setpoint(target)
        return schedules.dynamicvae_pi(sp, beta_init=cfg.betas[0]), False
    raise ValueError(f"unknown beta_schedule {cfg.beta_schedule!r}")


# ---------------------------------------------------------------------------------------------------
# Minibatches: shuffled epochs, drop last
# ---------------------------------------------------------------------------------------------------

_U32 = jnp.uint32


def _mix32(x: Array) -> Array:
    """A 32-bit integer finaliser (``lowbias32``, C. Wellons): every input bit flips each output bit
    with probability close to 1/2."""
    x = x ^ (x >> 16)
    x = x * _U32(0x7FEB352D)
    x = x ^ (x >> 15)
    x = x * _U32(0x846CA68B)
    return x ^ (x >> 16)


def shuffled_index(key: Array, position: Array, n: int, rounds: int = SHUFFLE_ROUNDS) -> Array:
    r"""The image at ``position`` of a keyed pseudo-random permutation :math:`\pi_{\rm key}` of ``[0, n)``.

    Swap-or-not (Hoang, Morris & Rogaway, CRYPTO 2012): round r draws :math:`K_r \in [0, n)` and a hash
    key; :math:`x` and its partner :math:`x' = K_r - x \bmod n` swap when a keyed hash of
    :math:`\max(x, x')` has its top bit set. The decision is the same for both members of the pair, so
    each round is an involution and the composition is a bijection of ``[0, n)`` for every ``n``, with
    O(1) work per position and no table: ``position`` may be any int array (the B positions of one
    step). Not NumPy's shuffle; a statistical one, not cryptographic. ``n < 2**31``.
    """
    bits = jax.random.bits(key, (rounds, 2), _U32)
    nu = _U32(n)
    x = jnp.asarray(position).astype(_U32)
    for r in range(rounds):  # unrolled: one fused elementwise kernel, no loop on the device
        partner = (bits[r, 0] % nu + nu - x) % nu
        flip = (_mix32(jnp.maximum(x, partner) ^ bits[r, 1]) >> 31) == _U32(1)
        x = jnp.where(flip, partner, x)
    return x.astype(jnp.int32)


def epoch_key(seed: Array | int, epoch: Array | int) -> Array:
    """The key of epoch ``epoch``'s permutation for model ``seed``."""
    return jax.random.fold_in(jax.random.fold_in(_stream_keys(seed)[1], _EPOCH_TAG), epoch)


def batch_indices(seed: Array | int, step: Array | int, num_images: int, batch_size: int) -> Array:
    """Indices (int32, ``(batch_size,)``) of the images of global step ``step`` for model ``seed``.

    Step t is batch ``t mod (N // B)`` of epoch ``t // (N // B)``; a pure function of (seed, t), so a
    resumed run sees the batches of an uninterrupted one. Within an epoch no index repeats.
    """
    per_epoch = num_images // batch_size
    step = jnp.asarray(step, jnp.int32)
    epoch, j = step // per_epoch, step % per_epoch
    position = j * batch_size + jnp.arange(batch_size, dtype=jnp.int32)
    return shuffled_index(epoch_key(seed, epoch), position, num_images)


def minibatch(dataset: AbstractDataset, seed: Array | int, step: Array | int, batch_size: int) -> Array:
    """The float32 observations ``(B, H, W, C)`` that model ``seed`` trains on at global step ``step``.

    Grid data sets (stored or procedural): the shuffled-epoch batch of :func:`batch_indices`, gathered
    or rendered on the device. :class:`LinearGaussian` (unbounded): fresh exact draws keyed by the step.
    """
    if isinstance(dataset, LinearGaussian):
        k_data, _ = jax.random.split(jax.random.fold_in(_stream_keys(seed)[1], step))
        return observations(dataset, k_data, batch_size)
    index = batch_indices(seed, step, dataset.num_images, batch_size)
    return dataset.images(dataset.index_to_factors(index)).astype(F32) / 255.0


def _constant_setpoint(target: Array | float) -> schedules.SetPoint:
    """A constant KL set-point that may be a traced value (``schedules.constant_setpoint`` needs a float)."""
    c = jnp.asarray(target, F32)
    return lambda i: jnp.full(jnp.shape(i), c, F32)


def _stream_keys(seed: Array | int) -> tuple[Array, Array]:
    init_key, stream = jax.random.split(jax.random.key(seed))
    return init_key, jax.random.fold_in(stream, _STREAM_TAG)


def _member_targets(cfg: DeepConfig, m: int, targets: Sequence[float] | None) -> list[float]:
    if targets is not None:
        if len(targets) != m:
            raise ValueError(f"targets must hold one KL target per model ({m}); got {len(targets)}")
        if not cfg.kl_targets:
            raise ValueError("per-model KL targets need cfg.kl_targets (a controller sweep)")
        return [float(t) for t in targets]
    if not cfg.kl_targets:
        return [0.0] * m
    if len(cfg.kl_targets) != 1:
        raise ValueError(f"cfg.kl_targets holds {len(cfg.kl_targets)} values: give targets per model")
    return [float(cfg.kl_targets[0])] * m


def _broadcast(tree: Any, m: int) -> Any:
    return jax.tree_util.tree_map(lambda a: jnp.broadcast_to(jnp.asarray(a), (m, *jnp.shape(a))), tree)


def init_state(
    cfg: DeepConfig,
    dataset: AbstractDataset,
    members: Sequence[Member],
    *,
    steps: int,
    start_step: int = 0,
    params: Any = None,
    ctrl_state: Any = None,
    targets: Sequence[float] | None = None,
) -> tuple[TrainState, Any]:
    """The state of ``members`` trained together, and the static part of the model.

    Args:
        cfg: the configuration.
        dataset: the data set (its image shape sizes the model).
        members: the (β, λ, seed) of each model.
        steps: steps of this phase (the learning-rate schedule's length).
        start_step: global step the phase starts at.
        params: batched parameters to start from (the λβ continuation); else initialised from the seeds.
        ctrl_state: batched controller state to continue; else a fresh one.
        targets: the KL set-point of each model (a ``cfg.kl_targets`` sweep); default the single value
            of ``cfg.kl_targets``, or 0 (unused) when it is empty.
    """
    m = len(members)
    targets = _member_targets(cfg, m, targets)
    template = model_template(cfg, dataset)
    _, static = eqx.partition(template, eqx.is_array)
    if params is None:
        seeds = jnp.asarray([mb.seed for mb in members], jnp.int32)

        def init_one(seed):
            model = make_model(cfg.model, dataset.image_shape, cfg.latent_dim, key=_stream_keys(seed)[0])
            return eqx.filter(model, eqx.is_array)

        params = jax.vmap(init_one)(seeds)
    opt = optimizer(cfg, steps)
    opt_state = jax.vmap(opt.init)(params)
    if ctrl_state is None:
        ctrl_state = _broadcast(controller(cfg)[0].init(), m)
    state = TrainState(
        params=params,
        opt_state=opt_state,
        ctrl_state=ctrl_state,
        beta=jnp.asarray([mb.beta for mb in members], F32),
        lam=jnp.asarray([mb.lam for mb in members], F32),
        target=jnp.asarray(targets, F32),
        seed=jnp.asarray([mb.seed for mb in members], jnp.int32),
        alive=jnp.ones((m,), bool),
        failed_at=jnp.full((m,), -1, jnp.int32),
        window=jnp.zeros((m, 3), F32),
        count=jnp.zeros((m,), jnp.int32),
        step=jnp.asarray(start_step, jnp.int32),
    )
    return state, static


# ---------------------------------------------------------------------------------------------------
# The step and the chunk
# ---------------------------------------------------------------------------------------------------


def _tree_where(cond: Array, new: Any, old: Any) -> Any:
    return jax.tree_util.tree_map(lambda a, b: jnp.where(cond, a, b), new, old)


def make_step(
    cfg: DeepConfig, static: Any, steps: int
) -> Callable[[Any, Any, Any, Array, Array, Array, Array, Array, Array, AbstractDataset], tuple]:
    """One training step of one model (to be ``vmap``-ed), as a pure function.

    Returns ``step_one(params, opt_state, ctrl_state, beta, lam, target, seed, alive, step,
    window_start, dataset) -> (params, opt_state, ctrl_state, finite, in_window, out)`` with ``out`` the
    step's (NLL, KL, L2, β, loss). The batch is :func:`minibatch` of (seed, step).
    """
    opt = optimizer(cfg, steps)
    _, open_loop = controller(cfg)

    def step_one(params, opt_state, ctrl_state, beta, lam, target, seed, alive, step, window_start, dataset):
        ctrl, _ = controller(cfg, target if cfg.kl_targets else None)
        key = jax.random.fold_in(_stream_keys(seed)[1], step)
        _, k_noise = jax.random.split(key)
        x = minibatch(dataset, seed, step, cfg.batch_size)

        def batch_terms(p):
            return terms(
                eqx.combine(p, static), x, key=k_noise, likelihood=cfg.likelihood, obs_var=cfg.obs_var
            )

        t, pullback = jax.vjp(batch_terms, params)
        u, new_ctrl = ctrl.update(jax.lax.stop_gradient(t.kl), ctrl_state)
        beta_t = (beta * u if open_loop else u).astype(F32)
        (grads,) = pullback(Terms(jnp.ones((), F32), beta_t, lam))
        loss = t.nll + beta_t * t.kl + lam * t.l2
        finite = jnp.isfinite(loss) & jnp.all(
            jnp.asarray([jnp.all(jnp.isfinite(g)) for g in jax.tree_util.tree_leaves(grads)])
        )
        ok = alive & finite
        updates, new_opt = opt.update(grads, opt_state, params)
        new_params = optax.apply_updates(params, updates)
        params = _tree_where(ok, new_params, params)
        opt_state = _tree_where(ok, new_opt, opt_state)
        ctrl_state = _tree_where(ok, new_ctrl, ctrl_state)
        out = jnp.stack([t.nll, t.kl, t.l2, beta_t, loss])
        return params, opt_state, ctrl_state, finite, step >= window_start, out

    return step_one


def use_scan(cfg: DeepConfig, device: jax.Device | None = None) -> bool:
    """Whether chunks run as one ``lax.scan`` (accelerators; linear models) or a loop of jitted steps.

    XLA's CPU backend runs convolutions inside a loop body (``scan``/``while``) far slower than the
    same convolutions at the top level of a computation (measured 26x for this model's gradient on
    this project's CPU), so on CPU each conv-model step is its own jitted call, dispatched
    asynchronously: the host still never waits on a step, only on the chunk's end. Linear models have
    no convolutions and scan on every backend.
    """
    device = jax.devices()[0] if device is None else device
    return device.platform != "cpu" or cfg.model == "linear"


def make_chunk(
    cfg: DeepConfig, static: Any, steps: int, n: int, window_start: int, *, scan: bool | None = None
) -> Callable[[TrainState, AbstractDataset], tuple[TrainState, Array]]:
    """A ``(state, dataset) -> (state, means)`` that runs ``n`` steps of every model.

    With ``scan`` (default on accelerators) it is one jitted ``lax.scan`` of ``n`` steps; otherwise a
    host loop of ``n`` asynchronously dispatched jitted steps (see :func:`use_scan`). Both compute the
    same steps. ``means`` is ``(M, 5)``: the chunk means of :data:`HISTORY_FIELDS` over the steps each
    model was alive (NaN when it was dead for the whole chunk).
    """
    step_one = jax.vmap(make_step(cfg, static, steps), in_axes=(0, 0, 0, 0, 0, 0, 0, 0, None, None, None))
    scan = use_scan(cfg) if scan is None else scan

    def advance(carry: tuple[TrainState, Array, Array], dataset: AbstractDataset):
        s, acc, alive_steps = carry
        params, opt_state, ctrl_state, finite, in_window, out = step_one(
            s.params, s.opt_state, s.ctrl_state, s.beta, s.lam, s.target, s.seed, s.alive, s.step,
            window_start, dataset,
        )  # fmt: skip
        ok = s.alive & finite
        failed_at = jnp.where(s.alive & ~finite, s.step, s.failed_at)
        take = ok & in_window
        window = s.window + jnp.where(take[:, None], out[:, :3], 0.0)
        count = s.count + take.astype(jnp.int32)
        acc = acc + jnp.where(ok[:, None], out, 0.0)
        s = s._replace(
            params=params, opt_state=opt_state, ctrl_state=ctrl_state, alive=ok, failed_at=failed_at,
            window=window, count=count, step=s.step + 1,
        )  # fmt: skip
        return s, acc, alive_steps + ok.astype(jnp.int32)

    def start(state: TrainState):
        m = state.beta.shape[0]
        carry = (state, jnp.zeros((m, len(HISTORY_FIELDS)), F32), jnp.zeros((m,), jnp.int32))
        # Committed arrays throughout: jit caches committed and uncommitted inputs separately, and a
        # mix would compile the step again at the start of every chunk.
        return jax.device_put(carry, jax.devices()[0])

    def finish(carry):
        state, acc, alive_steps = carry
        return state, acc / alive_steps[:, None].astype(F32)

    if scan:

        @eqx.filter_jit
        def chunk(state: TrainState, dataset: AbstractDataset) -> tuple[TrainState, Array]:
            carry, _ = jax.lax.scan(lambda c, _: (advance(c, dataset), None), start(state), None, length=n)
            return finish(carry)

        return chunk

    advance_jit = eqx.filter_jit(advance)

    def chunk_loop(state: TrainState, dataset: AbstractDataset) -> tuple[TrainState, Array]:
        carry = start(state)
        for _ in range(n):
            carry = advance_jit(carry, dataset)
        return finish(carry)

    return chunk_loop


# ---------------------------------------------------------------------------------------------------
# Memory sizing
# ---------------------------------------------------------------------------------------------------


def device_memory_bytes(device: jax.Device | None = None) -> int:
    """Memory a group may live in: the accelerator's ``bytes_limit``, or physical RAM on CPU."""
    device = jax.devices()[0] if device is None else device
    stats = device.memory_stats() if hasattr(device, "memory_stats") else None
    if stats and stats.get("bytes_limit"):
        return int(stats["bytes_limit"]) - int(stats.get("bytes_in_use", 0))
    return int(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))


def model_bytes(cfg: DeepConfig, dataset: AbstractDataset) -> int:
    """Upper bound on the memory of one model's step: parameters, gradients, Adam moments, and every
    intermediate of the forward/backward pass (from the step's jaxpr, no buffer reuse assumed)."""
    targets = [cfg.kl_targets[0]] if cfg.kl_targets else None
    state, static = init_state(cfg, dataset, [Member(1.0, 0.0, 0)], steps=1, targets=targets)
    step_one = make_step(cfg, static, 1)
    args = (
        state.params, state.opt_state, state.ctrl_state, state.beta[0], state.lam[0], state.target[0],
        state.seed[0],
    )  # fmt: skip
    args = (*jax.tree_util.tree_map(lambda a: a[0], args[:3]), *args[3:], state.alive[0], state.step, 0)
    jaxpr = jax.make_jaxpr(lambda *a: step_one(*a, dataset))(*args)

    def size(v) -> int:
        aval = v.aval
        return int(np.prod(aval.shape)) * aval.dtype.itemsize if hasattr(aval, "shape") else 0

    inter = sum(size(v) for eqn in jaxpr.jaxpr.eqns for v in eqn.outvars)
    param = sum(x.size * x.dtype.itemsize for x in jax.tree_util.tree_leaves(state.params))
    return int(inter + 4 * param)


def group_size(cfg: DeepConfig, dataset: AbstractDataset, n_models: int) -> int:
    """Models per ``vmap`` group: as many as fit in ``memory_fraction`` of device memory (after the
    data set), capped by ``max_models`` when set and by ``n_models``.

    On CPU the automatic size is 1: XLA's CPU backend turns the vmapped convolutions into grouped
    convolutions that run slower per model than one model at a time (measured 3.5x at 2 models,
    ``benchmarks/deep_train.py``), so groups pay only on accelerators. ``max_models`` still forces a size.
    """
    if cfg.max_models:
        return max(1, min(cfg.max_models, n_models))
    if jax.devices()[0].platform == "cpu":
        return 1
    data_bytes = sum(
        x.size * x.dtype.itemsize for x in jax.tree_util.tree_leaves(eqx.filter(dataset, eqx.is_array))
    )
    budget = cfg.memory_fraction * device_memory_bytes() - data_bytes
    fit = max(1, int(budget // max(model_bytes(cfg, dataset), 1)))
    return max(1, min(fit, n_models))


# ---------------------------------------------------------------------------------------------------
# A phase for one group
# ---------------------------------------------------------------------------------------------------


class PhaseResult(NamedTuple):
    """End state of a phase for one group, with its per-chunk history (host arrays)."""

    state: TrainState
    static: Any
    history_steps: np.ndarray
    history: np.ndarray  # (chunks, M, len(HISTORY_FIELDS))
    wall_s: float
    resumed_from: int | None


def _chunk_lengths(start: int, end: int, chunk: int) -> list[int]:
    """Chunk lengths covering [start, end) on the grid of multiples of ``chunk`` from ``start``."""
    return [min(chunk, end - s) for s in range(start, end, chunk)]


def _bar(label: str, done: int, total: int, rate: float, models: int, eta: float) -> str:
    width = 24
    fill = int(width * done / max(total, 1))
    eta_s = time.strftime("%H:%M:%S", time.gmtime(max(eta, 0.0))) if math.isfinite(eta) else "--:--:--"
    return (
        f"\r{label} [{'#' * fill}{'.' * (width - fill)}] {done}/{total} steps"
        f"  {rate:.1f} steps/s  x{models} models  ETA {eta_s}"
    )


def train_phase(
    cfg: DeepConfig,
    dataset: AbstractDataset,
    members: Sequence[Member],
    *,
    phase: str,
    start_step: int,
    steps: int,
    params: Any = None,
    ctrl_state: Any = None,
    targets: Sequence[float] | None = None,
    checkpoint_path: str | os.PathLike[str] | None = None,
    label: str = "",
    log: Callable[[str], None] | None = None,
    progress: bool = True,
    compiled: dict[Any, Any] | None = None,
    stop_at: int | None = None,
) -> PhaseResult:
    """Train ``members`` together for ``steps`` steps from global step ``start_step``.

    A checkpoint at ``checkpoint_path`` for the same members and phase is resumed; a new one is
    written atomically every ``cfg.checkpoint_every`` steps (rounded up to whole chunks) and removed
    at the end. Models that meet a non-finite loss stop with a message; the others continue.

    Args:
        cfg: the configuration.
        dataset: the data set (moved to the device here).
        members: one (β, λ, seed) per model.
        phase: ``"beta"`` or ``"lambda"`` (window and checkpoint bookkeeping).
        start_step: global step of the phase start (0 or ``cfg.beta_steps``).
        steps: steps in the phase.
        params, ctrl_state: batched starting point (λβ continuation); fresh when ``None``.
        targets: KL set-point of each model (a ``cfg.kl_targets`` sweep; see :func:`init_state`).
        checkpoint_path: the group checkpoint file, or ``None`` for no checkpoints.
        label: progress-bar label.
        log: where messages go (default: stderr).
        progress: draw the progress bar.
        compiled: a cache of chunk functions owned by the caller, reused across groups of one phase.
        stop_at: return after the checkpoint at this global step, leaving it in place (a time-sliced
            run on a preemptible machine); the next call resumes there.
    """
    log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
    end = start_step + steps
    window_start = max(start_step, end - cfg.log_window)
    data = to_device(dataset)
    state, static = init_state(
        cfg, dataset, members, steps=steps, start_step=start_step, params=params, ctrl_state=ctrl_state,
        targets=targets,
    )  # fmt: skip
    meta_key: dict[str, Any] = {
        "phase": phase, "members": [list(mb) for mb in members], "start": start_step, "end": end,
    }  # fmt: skip
    if targets is not None:
        meta_key["targets"] = [float(t) for t in targets]
    hist_steps: list[int] = []
    hist: list[np.ndarray] = []
    resumed_from = None
    if checkpoint_path is not None and os.path.exists(checkpoint_path):
        meta = checkpoint.load_meta(checkpoint_path)
        if {k: meta.get(k) for k in meta_key} == meta_key:
            state, meta = checkpoint.load(checkpoint_path, state)
            hist_steps = list(meta["history_steps"])
            hist = [np.asarray(h, np.float32) for h in meta["history"]]
            resumed_from = int(state.step)
            log(f"{label}: resumed from {checkpoint_path} at step {resumed_from}")
    every = max(cfg.chunk_steps, math.ceil(cfg.checkpoint_every / cfg.chunk_steps) * cfg.chunk_steps)
    chunks = {} if compiled is None else compiled
    t0 = time.perf_counter()
    done0 = int(state.step) - start_step
    alive = np.asarray(state.alive)
    s = int(state.step)
    lengths = _chunk_lengths(start_step, end, cfg.chunk_steps)
    offsets = np.cumsum([start_step, *lengths])[:-1]
    for off, n in zip(offsets, lengths, strict=True):
        if off < s:
            continue
        ck = (phase, n, steps, window_start)
        if ck not in chunks:
            chunks[ck] = make_chunk(cfg, static, steps, n, window_start)
        state, means = chunks[ck](state, data)
        s = int(off) + n
        means = np.asarray(means)
        hist_steps.append(s)
        hist.append(means)
        now_alive = np.asarray(state.alive)
        for i in np.flatnonzero(alive & ~now_alive):
            mb = members[i]
            tag = "" if targets is None else f" kl_target={targets[i]:g}"
            log(
                f"\n{label}: model beta={mb.beta:g} lambda={mb.lam:g} seed={mb.seed}{tag} stopped at step"
                f" {int(np.asarray(state.failed_at)[i])}: non-finite loss or gradient; its last finite"
                " parameters are kept and the other models continue"
            )
        alive = now_alive
        if checkpoint_path is not None and (s - start_step) % every == 0 and s < end:
            meta = dict(meta_key, history_steps=hist_steps, history=[h.tolist() for h in hist])
            checkpoint.save(checkpoint_path, state, meta)
            if stop_at is not None and s >= stop_at:
                break
        if progress:
            elapsed = time.perf_counter() - t0
            rate = (s - start_step - done0) / max(elapsed, 1e-9)
            eta = (end - s) / rate if rate > 0 else float("inf")
            sys.stderr.write(_bar(label, s - start_step, steps, rate, len(members), eta))
            sys.stderr.flush()
    if progress:
        sys.stderr.write("\n")
    jax.block_until_ready(state)
    wall = time.perf_counter() - t0
    if checkpoint_path is not None and os.path.exists(checkpoint_path) and int(state.step) == end:
        os.unlink(checkpoint_path)
    return PhaseResult(
        state=state,
        static=static,
        history_steps=np.asarray(hist_steps, np.int64),
        history=np.stack(hist) if hist else np.zeros((0, len(members), len(HISTORY_FIELDS)), np.float32),
        wall_s=wall,
        resumed_from=resumed_from,
    )


# ---------------------------------------------------------------------------------------------------
# The sweep: published two-phase protocol, only what is missing
# ---------------------------------------------------------------------------------------------------

#: Config fields that change what a trained model is; a runs folder refuses a config that differs.
TRAINING_FIELDS = (
    "dataset", "image_size", "model", "latent_dim", "likelihood", "obs_var", "learning_rate", "adam_b1", "adam_b2",
    "adam_eps", "lr_decay_to", "batch_size", "beta_steps", "lambda_steps", "beta_schedule",
    "warmup_steps", "log_window",
)  # fmt: skip


def target_folders(cfg: DeepConfig, runs: str | os.PathLike[str]) -> list[tuple[float | None, Path]]:
    """The runs folder of each KL target of a controller sweep: ``[(None, runs)]`` without
    ``cfg.kl_targets``, else ``(C, runs/C<C>)`` for each target C (each one a complete runs folder)."""
    if not cfg.kl_targets:
        return [(None, Path(runs))]
    return [(float(c), Path(runs) / f"C{float(c):g}") for c in cfg.kl_targets]


def for_target(cfg: DeepConfig, target: float | None) -> DeepConfig:
    """The configuration of the models of one KL target (``cfg`` itself for ``None``)."""
    return cfg if target is None else dataclasses.replace(cfg, kl_targets=(float(target),))


def beta_members(cfg: DeepConfig) -> list[Member]:
    """Models of the β-VAE phase: one per (β, seed), at λ = 0."""
    return [Member(float(b), 0.0, int(s)) for b in cfg.betas for s in cfg.seeds]


def lambda_members(cfg: DeepConfig) -> list[Member]:
    """Models of the λβ phase: one per (β, λ, seed)."""
    return [Member(float(b), float(lam), int(s)) for b in cfg.betas for lam in cfg.lambdas for s in cfg.seeds]


def _slice(tree: Any, i: int) -> Any:
    return jax.tree_util.tree_map(lambda a: a[i], tree)


def _stack(trees: Sequence[Any]) -> Any:
    return jax.tree_util.tree_map(lambda *a: jnp.stack(a), *trees)


def model_path(runs: Path, phase: str, member: Member) -> Path:
    """The parameter file of a trained model."""
    return member_dir(runs, phase, member) / "model.npz"


def load_model(
    cfg: DeepConfig, dataset: AbstractDataset, runs: str | os.PathLike[str], phase: str, member: Member
) -> tuple[AbstractVAE, Any, dict[str, Any]]:
    """A trained model, its controller state and its training record."""
    state, static = init_state(cfg, dataset, [member], steps=1)
    like = (_slice(state.params, 0), _slice(state.ctrl_state, 0))
    (params, ctrl), _ = checkpoint.load(model_path(Path(runs), phase, member), like)
    record = read_json(member_dir(Path(runs), phase, member) / "train.json")
    return eqx.combine(params, static), ctrl, record


def runs_identity(cfg: DeepConfig, dataset: AbstractDataset, target: float | None = None) -> dict[str, Any]:
    """What makes the models of a runs folder comparable: the training fields of ``cfg``, the
    minibatch protocol, and the data: its source kind (real file or stand-in) and image fingerprint
    (:func:`linvae.deep.data.fingerprint`). Stored in ``<runs>/config.json``."""
    mine: dict[str, Any] = {k: getattr(cfg, k) for k in TRAINING_FIELDS}
    mine["sampler"] = SAMPLER
    mine["data_source"] = dataset.provenance.kind
    mine["data_fingerprint"] = fingerprint(dataset)
    if target is not None:
        mine["kl_target"] = float(target)
    return mine


def check_runs_config(
    cfg: DeepConfig, runs: str | os.PathLike[str], dataset: AbstractDataset, target: float | None = None
) -> None:
    """Refuse (``ValueError``) a runs folder whose ``config.json`` records another configuration,
    data source or image fingerprint; a new folder gets one. Called before anything is trained.

    Keys a folder written by an older linvae lacks are added, not refused."""
    mine = runs_identity(cfg, dataset, target)
    what = {"data_source": "data source", "data_fingerprint": "image fingerprint"}
    check_or_record(Path(runs) / "config.json", mine, "training configuration or data", what)


def check_runs(cfg: DeepConfig, runs: str | os.PathLike[str], dataset: AbstractDataset) -> None:
    """:func:`check_runs_config` for ``runs`` and, in a KL-target sweep, for each target's folder."""
    check_runs_config(cfg, runs, dataset)
    for target, folder in target_folders(cfg, runs):
        if target is not None:
            check_runs_config(cfg, folder, dataset, target)


def _group_checkpoint(
    runs: Path, phase: str, members: Sequence[Member], targets: Sequence[float] | None = None
) -> Path:
    ident: list[Any] = [list(mb) for mb in members]
    if targets is not None:
        ident = [[*m, float(t)] for m, t in zip(ident, targets, strict=True)]
    h = hashlib.sha1(json.dumps(ident).encode()).hexdigest()[:12]
    return runs / "groups" / f"{phase}-{h}.npz"


class _Slot(NamedTuple):
    """One model of a sweep and where it lives: its KL target (``None`` outside a target sweep) and
    the runs folder of that target."""

    member: Member
    target: float | None
    runs: Path

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = self.member.to_dict()
        if self.target is not None:
            d["kl_target"] = self.target
        return d


def _slot_targets(slots: Sequence[_Slot]) -> list[float] | None:
    return None if slots[0].target is None else [float(sl.target) for sl in slots]  # type: ignore[arg-type]


def _write_models(
    cfg: DeepConfig,
    dataset: AbstractDataset,
    phase: str,
    slots: Sequence[_Slot],
    result: PhaseResult,
    group: int,
    steps_total: int,
) -> None:
    st = result.state
    window = np.asarray(st.window)
    count = np.asarray(st.count)
    failed = np.asarray(st.failed_at)
    for i, sl in enumerate(slots):
        folder = member_dir(sl.runs, phase, sl.member)
        checkpoint.save(
            folder / "model.npz", (_slice(st.params, i), _slice(st.ctrl_state, i)), {"member": sl.to_dict()}
        )
        means = window[i] / max(int(count[i]), 1)
        record = {
            "member": sl.to_dict(),
            "phase": phase,
            "steps": steps_total,
            "status": "ok" if failed[i] < 0 else "failed",
            "failed_at": int(failed[i]) if failed[i] >= 0 else None,
            "window": {
                "steps": int(count[i]),
                **{
                    k: (finite_or_none(means[j]) if count[i] else None)
                    for j, k in enumerate(("nll", "kl", "l2"))
                },
            },
            "history": {
                "step": result.history_steps.tolist(),
                **{
                    k: [finite_or_none(v) for v in result.history[:, i, j]]
                    for j, k in enumerate(HISTORY_FIELDS)
                },
            },
            "group_size": len(slots),
            "group_index": group,
            "wall_s": result.wall_s,
            "resumed_from": result.resumed_from,
            "device": str(jax.devices()[0]),
            "config": for_target(cfg, sl.target).to_dict(),
            "provenance": dataset.provenance.to_dict(),
            "revision": code_revision(),
        }
        write_json(folder / "train.json", record)


def train_sweep(
    cfg: DeepConfig,
    runs: str | os.PathLike[str],
    *,
    dataset: AbstractDataset | None = None,
    log: Callable[[str], None] | None = None,
    progress: bool = True,
) -> dict[str, int]:
    """Train every model of the grid whose result is missing from ``runs`` (resumable).

    Phase ``beta``: (β, seed) models, ``cfg.beta_steps`` steps from scratch at λ = 0. Phase
    ``lambda``: (β, λ, seed) models, ``cfg.lambda_steps`` more steps from the phase-1 parameters (and
    β-controller state) with a fresh Adam. Groups of models train together under ``vmap``, sized to
    device memory (:func:`group_size`); a killed run resumes from its group checkpoints.

    A controller sweep over KL targets (``cfg.kl_targets``) trains the grid once per target C, in the
    runs folder ``runs/C<C>`` (:func:`target_folders`); models of different targets share ``vmap``
    groups (the target is a per-model input of the step).

    Args:
        cfg: the configuration (validated here, before anything is trained).
        runs: the runs folder.
        dataset: the data set; default :func:`open_dataset` (``cfg.dataset``, ``cfg.source``).
        log: message sink (default stderr).
        progress: draw progress bars.

    Returns:
        Number of models trained in each phase (over all targets).
    """
    log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
    validate(cfg)
    dataset = open_dataset(cfg) if dataset is None else at_resolution(cfg, dataset)
    validate(cfg, num_images=_num_images(dataset), data_dim=math.prod(dataset.image_shape))
    runs = Path(runs)
    check_runs(cfg, runs, dataset)
    folders = target_folders(cfg, runs)
    # Move the images to the device once for every group of both phases (a no-op when already there).
    dataset = to_device(dataset)
    trained = {"beta": 0, "lambda": 0}

    todo = [
        _Slot(mb, target, folder)
        for target, folder in folders
        for mb in beta_members(cfg)
        if not model_path(folder, "beta", mb).exists()
    ]
    if todo:
        g = group_size(cfg, dataset, len(todo))
        groups = [todo[i : i + g] for i in range(0, len(todo), g)]
        compiled: dict[Any, Any] = {}
        for gi, slots in enumerate(groups):
            members, targets = [sl.member for sl in slots], _slot_targets(slots)
            label = f"{cfg.dataset} beta-VAE group {gi + 1}/{len(groups)}"
            res = train_phase(
                cfg, dataset, members, phase="beta", start_step=0, steps=cfg.beta_steps, targets=targets,
                checkpoint_path=_group_checkpoint(runs, "beta", members, targets), label=label, log=log,
                progress=progress, compiled=compiled,
            )  # fmt: skip
            _write_models(cfg, dataset, "beta", slots, res, gi, cfg.beta_steps)
            trained["beta"] += len(slots)

    if cfg.lambda_steps > 0:
        todo = [
            _Slot(mb, target, folder)
            for target, folder in folders
            for mb in lambda_members(cfg)
            if not model_path(folder, "lambda", mb).exists()
        ]
        if todo:
            g = group_size(cfg, dataset, len(todo))
            groups = [todo[i : i + g] for i in range(0, len(todo), g)]
            compiled = {}
            for gi, slots in enumerate(groups):
                members, targets = [sl.member for sl in slots], _slot_targets(slots)
                starts = [
                    load_model(
                        for_target(cfg, sl.target), dataset, sl.runs, "beta", sl.member._replace(lam=0.0)
                    )
                    for sl in slots
                ]
                params = _stack([eqx.filter(model, eqx.is_array) for model, _, _ in starts])
                ctrl = _stack([c for _, c, _ in starts])
                label = f"{cfg.dataset} lambda-beta group {gi + 1}/{len(groups)}"
                res = train_phase(
                    cfg, dataset, members, phase="lambda", start_step=cfg.beta_steps, steps=cfg.lambda_steps,
                    params=params, ctrl_state=ctrl, targets=targets,
                    checkpoint_path=_group_checkpoint(runs, "lambda", members, targets),
                    label=label, log=log, progress=progress, compiled=compiled,
                )  # fmt: skip
                # A model whose beta-VAE phase failed cannot be continued: carry its failure over.
                failed_before = np.asarray([rec["status"] != "ok" for _, _, rec in starts])
                if failed_before.any():
                    st = res.state
                    fa = np.where(
                        failed_before,
                        [rec["failed_at"] if rec["failed_at"] is not None else -1 for _, _, rec in starts],
                        np.asarray(st.failed_at),
                    )
                    res = res._replace(state=st._replace(failed_at=jnp.asarray(fa, jnp.int32)))
                _write_models(cfg, dataset, "lambda", slots, res, gi, cfg.beta_steps + cfg.lambda_steps)
                trained["lambda"] += len(slots)
    return trained


def _num_images(dataset: AbstractDataset) -> int | None:
    """Number of distinct images, or ``None`` for an unbounded generator (LinearGaussian)."""
    if isinstance(dataset, LinearGaussian):
        return None
    return int(dataset.num_images)
