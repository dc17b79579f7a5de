r"""Training: a jitted step, many steps per host call, ``vmap`` over models, sharded over devices.

Structure (all pure functions of explicit state):

* :func:`init_state` — a :class:`TrainState` for M models at once (leading axis M on every leaf):
  parameters from each model's seed, a fresh optax Adam state, the β controller state.
* :func:`make_chunk` — a jitted ``(state, data) -> (state, chunk_means)`` that runs ``n`` steps with
  ``lax.scan``; each step is ``vmap``-ed over the models. Batches are drawn *on the device* from the
  data set passed as an argument (the stored uint8 array, or the procedural renderer), so there is no
  host round trip per step; the host sees the state once per chunk (progress bar, NaN report,
  checkpoint). With several devices the model axis is sharded over them (:func:`model_mesh`; the data
  set is replicated once per device) and each device runs its share of the models: the models never
  exchange anything, so the result does not depend on how many devices share the group.
* :func:`train_phase` — one phase of the protocol for one group of models: chunks, atomic per-model
  checkpoints every ``checkpoint_every`` steps, resume from them, progress bar with steps/s and ETA.
* :func:`group_size` — models per group, sized to device memory.

The minibatch protocol and the random keys are :mod:`linvae.deep.data.sampler`; the sweep over a grid
(which models, in which groups, claimed by which worker) is :mod:`linvae.deep.sweep`.

NaN / inf: a model whose loss or gradient is not finite at step t keeps its last finite parameters,
is marked dead with ``failed_at = t`` and stops updating; the others continue.

Each step uses one forward and one backward pass: the batch terms (NLL, KL, L2) are computed with
``jax.vjp``, β is read from the schedule or controller given this batch's KL (as ControlVAE does),
and the cotangent :math:`(1, \beta, \lambda)` pulls back the gradient of
:func:`linvae.deep.objective.objective` — the same function, differentiated with β held fixed.
"""

from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax import Array
from jax.sharding import Mesh, NamedSharding, PartitionSpec, SingleDeviceSharding

from linvae.deep import checkpoint
from linvae.deep.config import DeepConfig
from linvae.deep.data import AbstractDataset, LinearGaussian, Pooled, load, to_device
from linvae.deep.data.sampler import minibatch, step_key, stream_keys
from linvae.deep.model import AbstractVAE, conv_transpose_form, make_model
from linvae.deep.objective import Terms, terms
from linvae.deep.record import Member
from linvae.numeric import schedules

F32 = jnp.float32
#: Chunk means returned per model: NLL, KL, L2, β, total loss.
HISTORY_FIELDS = ("nll", "kl", "l2", "beta", "loss")
#: Name of the mesh axis the models of a group are sharded over.
MODEL_AXIS = "models"


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


def _constant_setpoint(target: Array | float) -> schedules.SetPoint:
    """A constant KL set-point that may be a traced value (``schedules.constant_setpoint`` needs a float)."""
    c = jnp.asarray(target, F32)
    return lambda i: jnp.full(jnp.shape(i), c, F32)


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
            model = make_model(cfg.model, dataset.image_shape, cfg.latent_dim, key=stream_keys(seed)[0])
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
# Devices: the model axis sharded over a mesh, the data replicated
# ---------------------------------------------------------------------------------------------------


def model_mesh(devices: Sequence[jax.Device] | None = None) -> Mesh:
    """A one-axis mesh (:data:`MODEL_AXIS`) over ``devices`` (default: the first device)."""
    devices = [jax.devices()[0]] if devices is None else list(devices)
    if not devices:
        raise ValueError("choose at least one device")
    return Mesh(np.asarray(devices, dtype=object), (MODEL_AXIS,))


def place_models(tree: Any, mesh: Mesh) -> Any:
    """``tree`` with every array of rank >= 1 sharded along its leading (model) axis over ``mesh`` and
    every scalar (the global step) replicated. The model count must be a multiple of the device count."""
    shard = NamedSharding(mesh, PartitionSpec(MODEL_AXIS))
    whole = NamedSharding(mesh, PartitionSpec())
    return jax.tree_util.tree_map(lambda a: jax.device_put(a, shard if jnp.ndim(a) else whole), tree)


def place_data(dataset: AbstractDataset, mesh: Mesh) -> AbstractDataset:
    """The data set's arrays replicated once on every device of ``mesh``."""
    whole = NamedSharding(mesh, PartitionSpec())
    arrays, rest = eqx.partition(dataset, eqx.is_array)
    return eqx.combine(jax.device_put(arrays, whole), rest)


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
        key = step_key(seed, step)
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


def use_scan(cfg: DeepConfig, device: jax.Device | None = None, static: Any = None) -> bool:
    """Whether chunks run as one ``lax.scan`` (the default everywhere) or a loop of jitted steps.

    The loop remains for a conv model on the CPU whose transposed convs were switched to the
    ``"direct"`` form (``static``, the model's static half, says; default: the ``"auto"`` form): XLA's
    CPU backend runs that form's gradient, a convolution of the zero-dilated cotangent, some 25x
    slower inside a loop body than at the top level of a computation, so there each step is its own
    jitted call, dispatched asynchronously. The batched kernels the CPU runs otherwise
    (:meth:`linvae.deep.model.ConvVAE.batched_kernels`) have no such convolution, and in one scan a
    chunk of the published model runs about 1.45x faster than as a loop of jitted steps (18.9 against
    13.1 steps/s, medians of 4 interleaved chunks of 20 steps on the 2-core CPU): no per-step launch,
    argument handling or buffer allocation.
    """
    device = jax.devices()[0] if device is None else device
    if device.platform != "cpu" or cfg.model == "linear":
        return True
    return all(conv_transpose_form(d.form) == "subpixel" for d in getattr(static, "deconvs", ()))


def _local(a: Any, device: jax.Device) -> Any:
    """The part of ``a`` that lives on ``device`` (its shard; the whole of a replicated array)."""
    if not isinstance(a, jax.Array):
        return a
    for shard in a.addressable_shards:
        if shard.device == device:
            # As a plain single-device array: on a one-device mesh the shard is the global array, whose
            # type names the mesh axis, unlike the outputs of the jitted call, so the first chunk
            # would compile once more for the second.
            return jax.device_put(shard.data, SingleDeviceSharding(device))
    raise ValueError(f"an array of shape {a.shape} has no part on {device}")


def _per_device(fn: Callable[[Any, Any], Any], mesh: Mesh) -> Callable[[Any, AbstractDataset], Any]:
    """``fn(carry, dataset)`` run by every device of ``mesh`` on its own models, as one jitted
    single-device program per device, dispatched asynchronously (the devices run side by side).

    Each device runs exactly the program one device runs on a group of that many models, so a model's
    numbers do not depend on the device count: an SPMD-partitioned program (``jit`` of the sharded
    arrays, ``shard_map``) is optimised by another pipeline than a single-device one, and on CPU its
    floating-point rewrites differ (measured: Adam's update of one weight matrix differs in the last
    bit after one step). The carry comes in and goes out sharded along the model axis
    (:func:`place_models`); the data set is replicated (:func:`place_data`).
    """
    jitted = eqx.filter_jit(fn)
    devices = list(mesh.devices.flat)
    shard = NamedSharding(mesh, PartitionSpec(MODEL_AXIS))
    whole = NamedSharding(mesh, PartitionSpec())

    def run(carry: Any, dataset: AbstractDataset) -> Any:
        outs = [
            jitted(
                jax.tree_util.tree_map(lambda a, d=d: _local(a, d), carry),
                jax.tree_util.tree_map(lambda a, d=d: _local(a, d), dataset),
            )
            for d in devices
        ]
        leaves = [jax.tree_util.tree_leaves(o) for o in outs]
        treedef = jax.tree_util.tree_structure(outs[0])
        joined = []
        for parts in zip(*leaves, strict=True):
            if parts[0].ndim:
                global_shape = (sum(p.shape[0] for p in parts), *parts[0].shape[1:])
                joined.append(jax.make_array_from_single_device_arrays(global_shape, shard, list(parts)))
            else:
                joined.append(jax.make_array_from_single_device_arrays((), whole, list(parts)))
        return jax.tree_util.tree_unflatten(treedef, joined)

    return run


def make_chunk(
    cfg: DeepConfig,
    static: Any,
    steps: int,
    n: int,
    window_start: int,
    *,
    scan: bool | None = None,
    mesh: Mesh | None = None,
) -> Callable[[TrainState, AbstractDataset], tuple[TrainState, Array]]:
    """A ``(state, dataset) -> (state, means)`` that runs ``n`` steps of every model.

    With ``scan`` (default on accelerators) it is one jitted ``lax.scan`` of ``n`` steps; otherwise a
    host loop of ``n`` asynchronously dispatched jitted steps (see :func:`use_scan`). Both compute the
    same steps. ``means`` is ``(M, 5)``: the chunk means of :data:`HISTORY_FIELDS` over the steps each
    model was alive (NaN when it was dead for the whole chunk). The models are sharded over the
    devices of ``mesh`` (default: the first device), each device running its own models
    (:func:`_per_device`); M must be a multiple of the device count, and the state and data must be
    placed with :func:`place_models` and :func:`place_data`.
    """
    step_one = jax.vmap(make_step(cfg, static, steps), in_axes=(0, 0, 0, 0, 0, 0, 0, 0, None, None, None))
    scan = use_scan(cfg, static=static) if scan is None else scan
    mesh = model_mesh() if mesh is None else mesh

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

    def zeros(state: TrainState) -> tuple[TrainState, Array, Array]:
        m = state.beta.shape[0]
        return state, jnp.zeros((m, len(HISTORY_FIELDS)), F32), jnp.zeros((m,), jnp.int32)

    def finish(carry):
        state, acc, alive_steps = carry
        return state, acc / alive_steps[:, None].astype(F32)

    if scan:

        def scanned(state: TrainState, dataset: AbstractDataset) -> tuple[TrainState, Array]:
            carry, _ = jax.lax.scan(lambda c, _: (advance(c, dataset), None), zeros(state), None, length=n)
            return finish(carry)

        return _per_device(scanned, mesh)

    advance_jit = _per_device(advance, mesh)

    def chunk_loop(state: TrainState, dataset: AbstractDataset) -> tuple[TrainState, Array]:
        # Committed arrays throughout: jit caches committed and uncommitted inputs separately, and a
        # mix would compile the step again at the start of every chunk.
        carry = place_models(zeros(state), mesh)
        for _ in range(n):
            carry = advance_jit(carry, dataset)
        return finish(carry)

    return chunk_loop


# ---------------------------------------------------------------------------------------------------
# Memory sizing
# ---------------------------------------------------------------------------------------------------


def device_memory(device: jax.Device | None = None) -> tuple[int, int]:
    """``(limit, in_use)`` bytes of a device: the accelerator's ``bytes_limit`` and ``bytes_in_use``,
    or physical RAM and 0 on CPU."""
    device = jax.devices()[0] if device is None else device
    stats = device.memory_stats() if hasattr(device, "memory_stats") else None
    if stats and stats.get("bytes_limit"):
        return int(stats["bytes_limit"]), int(stats.get("bytes_in_use", 0))
    return int(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")), 0


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


def data_bytes(dataset: AbstractDataset) -> int:
    """Bytes of the data set's arrays (one replica)."""
    return sum(
        x.size * x.dtype.itemsize for x in jax.tree_util.tree_leaves(eqx.filter(dataset, eqx.is_array))
    )


def resident_on(dataset: AbstractDataset, device: jax.Device) -> bool:
    """Whether every array of the data set already has a copy on ``device`` (so that the device's
    ``bytes_in_use`` counts it)."""
    leaves = jax.tree_util.tree_leaves(eqx.filter(dataset, eqx.is_array))
    return all(isinstance(x, jax.Array) and device in x.devices() for x in leaves)


def models_per_device(
    *, limit: int, in_use: int, fraction: float, per_model: int, data: int, data_resident: bool
) -> int:
    """How many models fit on one device: ``fraction * limit`` less what is in use, less the data set
    unless it is already resident (then ``in_use`` counts it: counting it again would halve what fits
    on a card that the data fills), divided by one model's bytes; at least 1."""
    budget = fraction * limit - in_use - (0 if data_resident else data)
    return max(1, int(budget // max(per_model, 1)))


def group_size(
    cfg: DeepConfig, dataset: AbstractDataset, n_models: int, devices: Sequence[jax.Device] | None = None
) -> int:
    """Models per ``vmap`` group over ``devices`` (default the first): on each device as many as fit in
    ``memory_fraction`` of its memory beside one replica of the data set (:func:`models_per_device`),
    times the device count; capped by ``max_models`` when set and by ``n_models``.

    On CPU the automatic size is one model per device: XLA's CPU backend turns the vmapped
    convolutions into grouped convolutions that run slower per model than one model at a time
    (measured 3.5x at 2 models, ``benchmarks/deep_train.py``), so groups pay only on accelerators.
    ``max_models`` still forces a size (a group that is not a multiple of the device count is padded
    by :func:`train_phase`).
    """
    devices = [jax.devices()[0]] if devices is None else list(devices)
    if cfg.max_models:
        return max(1, min(cfg.max_models, n_models))
    if devices[0].platform == "cpu":
        return max(1, min(len(devices), n_models))
    limit, in_use = device_memory(devices[0])
    fit = models_per_device(
        limit=limit, in_use=in_use, fraction=cfg.memory_fraction, per_model=model_bytes(cfg, dataset),
        data=data_bytes(dataset), data_resident=resident_on(dataset, devices[0]),
    )  # fmt: skip
    return max(1, min(fit * len(devices), n_models))


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


def _slice(tree: Any, i: int) -> Any:
    return jax.tree_util.tree_map(lambda a: a[i], tree)


def _stack(trees: Sequence[Any]) -> Any:
    return jax.tree_util.tree_map(lambda *a: jnp.stack(a), *trees)


def _member_key(phase: str, member: Member, target: float | None, start: int, end: int) -> dict[str, Any]:
    """What a model's checkpoint must record to be resumed by this phase."""
    key: dict[str, Any] = {"phase": phase, "member": list(member), "start": start, "end": end}
    if target is not None:
        key["target"] = float(target)
    return key


def checkpoint_step(
    path: str | os.PathLike[str] | None,
    *,
    phase: str,
    member: Member,
    start_step: int,
    steps: int,
    target: float | None = None,
) -> int | None:
    """The global step at which the model's checkpoint at ``path`` resumes this phase, or ``None`` when
    there is none (or it is of another phase, member, target or length: such a model starts afresh)."""
    if path is None or not os.path.exists(path):
        return None
    try:
        meta = checkpoint.load_meta(path)
    except (OSError, ValueError, KeyError):
        return None
    key = _member_key(phase, member, target, start_step, start_step + steps)
    if {k: meta.get(k) for k in key} != key or "step" not in meta:
        return None
    return int(meta["step"])


def _save_members(
    paths: Sequence[str | os.PathLike[str]],
    state: TrainState,
    keys: Sequence[dict[str, Any]],
    hist_steps: list[int],
    hist: list[np.ndarray],
    rows: Sequence[int] | None = None,
) -> None:
    """One atomic checkpoint per model: its slice of the state and its own history (``paths[j]`` holds
    model ``rows[j]`` of the group; default ``rows = range(len(paths))``)."""
    host = jax.device_get(state)
    rows = range(len(paths)) if rows is None else rows
    for i, path, key in zip(rows, paths, keys, strict=True):
        mine = host._replace(**{f: _slice(getattr(host, f), i) for f in TrainState._fields if f != "step"})
        meta = dict(key, step=int(host.step), history_steps=hist_steps, history=[h[i].tolist() for h in hist])
        checkpoint.save(path, mine, meta)


def _load_members(
    paths: Sequence[str | os.PathLike[str]], state: TrainState
) -> tuple[TrainState, list[int], list[np.ndarray]]:
    """The group state stacked from each model's checkpoint (``state`` gives the structure)."""
    like = state._replace(**{f: _slice(getattr(state, f), 0) for f in TrainState._fields if f != "step"})
    loaded, metas = zip(*(checkpoint.load(p, like) for p in paths), strict=True)
    steps = {int(s.step) for s in loaded}
    hist_steps = metas[0]["history_steps"]
    if len(steps) != 1 or any(m["history_steps"] != hist_steps for m in metas):
        raise ValueError(
            f"the models of a group must resume from the same step; checkpoints at {sorted(steps)}"
        )
    stacked = state._replace(
        **{f: _stack([getattr(s, f) for s in loaded]) for f in TrainState._fields if f != "step"},
        step=loaded[0].step,
    )
    hist = [
        np.stack([np.asarray(m["history"][c], np.float32) for m in metas]) for c in range(len(hist_steps))
    ]
    return stacked, list(hist_steps), hist


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
    checkpoints: Sequence[str | os.PathLike[str]] | None = None,
    devices: Sequence[jax.Device] | None = None,
    label: str = "",
    log: Callable[[str], None] | None = None,
    progress: bool = True,
    compiled: dict[Any, Any] | None = None,
    stop_at: int | None = None,
    owned: Callable[[], Sequence[bool]] | None = None,
    pad_to: int | None = None,
) -> PhaseResult:
    """Train ``members`` together for ``steps`` steps from global step ``start_step``.

    Every model has its own checkpoint (``checkpoints[i]``), written atomically every
    ``cfg.checkpoint_every`` steps (rounded up to whole chunks) and left in place at the end (the
    caller removes it once the model's results are written). When every model of the group has a
    checkpoint of this phase at the same step, the group resumes there (:func:`checkpoint_step`);
    the caller groups models by that step. Models that meet a non-finite loss stop with a message;
    the others continue. The models are sharded over ``devices`` (default the first device); a group
    is padded to ``pad_to`` models, and to a multiple of the device count, with copies of its last
    model, whose results are dropped.

    What a model computes depends on how many models each device runs side by side (the ``vmap``
    width per device: XLA drops a batch axis of size 1, and picks kernels by shape), not on which
    models those are nor on how many devices share the group. Groups of the same width per device
    therefore give bit-identical models on CPU however the models are grouped, sharded or resumed;
    the sweep pads every group to its full width for that reason.

    Args:
        cfg: the configuration.
        dataset: the data set (placed on the devices here).
        members: one (β, λ, seed) per model.
        phase: ``"beta"`` or ``"lambda"`` (window and checkpoint bookkeeping).
        start_step: global step of the phase start (0 or ``cfg.beta_steps``).
        steps: steps in the phase.
        params, ctrl_state: batched starting point (λβ continuation); fresh when ``None``.
        targets: KL set-point of each model (a ``cfg.kl_targets`` sweep; see :func:`init_state`).
        checkpoints: one checkpoint file per model, or ``None`` for no checkpoints.
        devices: the devices the model axis is sharded over.
        label: progress-bar label.
        log: where messages go (default: stderr).
        progress: draw the progress bar.
        compiled: a cache of chunk functions owned by the caller, reused across groups of one phase.
        stop_at: return after the checkpoint at this global step, leaving it in place (a time-sliced
            run on a preemptible machine); the next call resumes there.
        owned: asked at each checkpoint, before it is written: which models the caller still owns
            (the sweep: whose claims this worker still holds). A model it no longer owns is neither
            checkpointed nor reported any more (another worker has taken it over and writes it), and
            when it owns none the phase stops there.
        pad_to: the group's full size (the sweep's group size); default the group itself.
    """
    log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
    members = list(members)
    m_real = len(members)
    if checkpoints is not None and len(checkpoints) != m_real:
        raise ValueError(f"give one checkpoint per model: {m_real} models, {len(checkpoints)} checkpoints")
    mesh = model_mesh(devices)
    n_dev = mesh.devices.size
    full = max(m_real, pad_to or 0)
    pad = full - m_real + (-full) % n_dev
    if pad:
        # Copies of the last model fill the group to a multiple of the device count; they are dropped.
        members += [members[-1]] * pad
        if targets is not None:
            targets = [*targets, *[targets[-1]] * pad]
        if params is not None:
            params, ctrl_state = (
                jax.tree_util.tree_map(lambda a: jnp.concatenate([a, jnp.repeat(a[-1:], pad, 0)]), t)
                if t is not None else None
                for t in (params, ctrl_state)
            )  # fmt: skip
    end = start_step + steps
    window_start = max(start_step, end - cfg.log_window)
    data = place_data(to_device(dataset), mesh)
    state, static = init_state(
        cfg, dataset, members, steps=steps, start_step=start_step, params=params, ctrl_state=ctrl_state,
        targets=targets,
    )  # fmt: skip
    tg = [None] * len(members) if targets is None else [float(t) for t in targets]
    keys = [_member_key(phase, mb, t, start_step, end) for mb, t in zip(members, tg, strict=True)]
    paths = None if checkpoints is None else [*checkpoints, *[checkpoints[-1]] * pad]
    hist_steps: list[int] = []
    hist: list[np.ndarray] = []
    resumed_from = None
    if checkpoints is not None:
        at = [
            checkpoint_step(p, phase=phase, member=mb, start_step=start_step, steps=steps, target=t)
            for p, mb, t in zip(checkpoints, members, tg, strict=False)
        ]
        if len(set(at)) > 1:
            raise ValueError(
                f"{label or phase}: the models of a group must resume from the same step (group them by"
                f" checkpoint_step); their checkpoints are at {at} (None: none)"
            )
        if at[0] is not None:
            state, hist_steps, hist = _load_members(paths, state)  # type: ignore[arg-type]
            resumed_from = int(state.step)
            log(f"{label}: resumed {m_real} model(s) from their checkpoints at step {resumed_from}")
    state = place_models(state, mesh)
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
        ck = (phase, n, steps, window_start, n_dev)
        if ck not in chunks:
            chunks[ck] = make_chunk(cfg, static, steps, n, window_start, mesh=mesh)
        state, means = chunks[ck](state, data)
        s = int(off) + n
        means = np.asarray(means)
        hist_steps.append(s)
        hist.append(means)
        now_alive = np.asarray(state.alive)
        for i in np.flatnonzero(alive & ~now_alive):
            if i >= m_real:
                continue  # a padding copy
            mb = members[i]
            tag = "" if targets is None else f" kl_target={targets[i]:g}"
            log(
                f"\n{label}: model beta={mb.beta:g} lambda={mb.lam:g} seed={mb.seed}{tag} stopped at step"
                f" {int(np.asarray(state.failed_at)[i])}: non-finite loss or gradient; its last finite"
                " parameters are kept and the other models continue"
            )
        alive = now_alive
        if paths is not None and (s - start_step) % every == 0 and s < end:
            mine = [True] * m_real if owned is None else [bool(o) for o in owned()]
            if not any(mine):
                log(
                    f"\n{label}: every model of the group was taken over by another worker; stopping at step {s}"
                )
                break
            keep = [i for i in range(m_real) if mine[i]]
            _save_members(
                [paths[i] for i in keep], state, [keys[i] for i in keep], hist_steps, hist, rows=keep
            )
            if stop_at is not None and s >= stop_at:
                break
        if progress:
            elapsed = time.perf_counter() - t0
            rate = (s - start_step - done0) / max(elapsed, 1e-9)
            eta = (end - s) / rate if rate > 0 else float("inf")
            sys.stderr.write(_bar(label, s - start_step, steps, rate, m_real, eta))
            sys.stderr.flush()
    if progress:
        sys.stderr.write("\n")
    jax.block_until_ready(state)
    wall = time.perf_counter() - t0
    # One copy on the default device: the group's shards gathered (a result does not depend on them).
    state = jax.tree_util.tree_map(jnp.asarray, jax.device_get(state))
    history = np.stack(hist) if hist else np.zeros((0, len(members), len(HISTORY_FIELDS)), np.float32)
    if pad:
        fields = [f for f in TrainState._fields if f != "step"]
        state = state._replace(
            **{f: jax.tree_util.tree_map(lambda a: a[:m_real], getattr(state, f)) for f in fields}
        )
        history = history[:, :m_real]
    return PhaseResult(
        state=state,
        static=static,
        history_steps=np.asarray(hist_steps, np.int64),
        history=history,
        wall_s=wall,
        resumed_from=resumed_from,
    )
