r"""Frozen configuration of a deep β-VAE / λβ-VAE sweep, and the named presets.

One :class:`DeepConfig` describes a whole experiment: data set, model, objective, optimiser, the
(β, λ, seed) grid and the published two-phase protocol (docs/theory.md §2.3 "Deep"):

1. **β-VAE phase**: one model per (β, seed), ``beta_steps`` Adam steps from scratch at λ = 0;
2. **λβ phase**: one model per (β, λ, seed), ``lambda_steps`` further steps from the phase-1
   checkpoint of (β, seed) with a *fresh* Adam state (docs/theory.md §10 trap 18). The λ = 0 row goes
   through the same continuation at λ = 0, so it has ``beta_steps + lambda_steps`` β-VAE steps.

Presets (``PRESETS``): ``"smoke"`` (procedural dSprites, a 2 x 2 x 2 grid, a few hundred steps: minutes
on a 2-core CPU) and ``"paper"`` (the published grid and protocol; meant for a GPU). Sweeps and
variants are ``dataclasses.replace(PRESETS["paper"], dataset="mpi3d", seeds=(0, 1))``.
"""

from __future__ import annotations

import dataclasses
import math
import os
from typing import Any, Literal

Likelihood = Literal["bernoulli", "gaussian"]
ModelKind = Literal["conv", "linear"]
BetaSchedule = Literal["constant", "linear", "controlvae", "dynamicvae"]
Source = Literal["auto", "real", "procedural"]

DATASETS = ("dsprites", "shapes3d", "mpi3d")


@dataclasses.dataclass(frozen=True, kw_only=True)
class DeepConfig:
    """A deep VAE experiment: data, model, objective, optimiser, grid, protocol and evaluation.

    Attributes:
        dataset: ``"dsprites"``, ``"shapes3d"`` or ``"mpi3d"``.
        source: ``"real"`` (the file must exist), ``"procedural"`` (the stand-in) or ``"auto"``.
        data_dir: folder of the real files; ``None`` falls back to ``$LINVAE_DATA``.
        model: ``"conv"`` (the published encoder/decoder) or ``"linear"`` (linear layers, no biases).
        latent_dim: number of latents (10 in the paper).
        likelihood: ``"bernoulli"`` (BCE summed over pixels, the paper) or ``"gaussian"`` (fixed variance).
        obs_var: decoder variance :math:`\\sigma_d^2` of the Gaussian likelihood (unused for Bernoulli).
        learning_rate: Adam step size (1e-4 in the paper).
        adam_b1, adam_b2, adam_eps: Adam constants (0.9, 0.999, 1e-8).
        lr_decay_to: final / initial learning rate of a cosine decay over each phase; 1 = constant.
        batch_size: images per step (64).
        beta_steps: steps of the β-VAE phase (150,000).
        lambda_steps: steps of the λβ continuation (50,000); 0 skips the phase.
        betas, lambdas, seeds: the grid.
        beta_schedule: ``"constant"``; ``"linear"`` (β ramps from 0 over ``warmup_steps``);
            ``"controlvae"`` / ``"dynamicvae"`` (the PI controllers of docs/theory.md §7 with their published
            defaults; then ``betas`` must hold one value, used as the controller's β_min / β(0)).
        kl_targets: a sweep axis of the PI controllers: KL set-points C (nats, > 0, summed over
            latents). Empty (default): the published annealed set-point (docs/theory.md §7). Otherwise the
            grid is trained once per C with the constant set-point C from step 0, each in its own
            runs sub-folder ``C<C>`` (:func:`linvae.deep.train.target_folders`). Constant, because the
            published annealing climbs only 0.15 nats per 5,000 (6,000) steps, so within the
            200k-step protocol it stays below about 6.5 nats whatever its cap. Only with
            ``"controlvae"`` / ``"dynamicvae"``.
        warmup_steps: length of the linear β ramp.
        log_window: NLL/KL/L2 are averaged over the last ``log_window`` steps of each phase (5,000).
        chunk_steps: steps per host call (one ``lax.scan``); progress and NaN checks happen per chunk.
        checkpoint_every: steps between checkpoints (rounded up to a multiple of ``chunk_steps``).
        max_models: most models trained at once by ``vmap``; 0 sizes the group to device memory.
        memory_fraction: share of device memory a group may use when sizing automatically.
        eval_train, eval_test: images for the metrics (10,000 + 5,000 in the paper).
        num_bins: histogram bins per latent for MIG and I_m (20).
        eval_batch: images per encoder call during evaluation.
    """

    dataset: str = "dsprites"
    source: Source = "auto"
    data_dir: str | None = None
    model: ModelKind = "conv"
    latent_dim: int = 10
    likelihood: Likelihood = "bernoulli"
    obs_var: float = 1.0
    learning_rate: float = 1e-4
    adam_b1: float = 0.9
    adam_b2: float = 0.999
    adam_eps: float = 1e-8
    lr_decay_to: float = 1.0
    batch_size: int = 64
    beta_steps: int = 150_000
    lambda_steps: int = 50_000
    betas: tuple[float, ...] = (1.0, 4.0, 8.0, 16.0, 32.0)
    lambdas: tuple[float, ...] = (0.0, 2.0, 4.0, 6.0, 8.0)
    seeds: tuple[int, ...] = tuple(range(10))
    beta_schedule: BetaSchedule = "constant"
    kl_targets: tuple[float, ...] = ()
    warmup_steps: int = 10_000
    log_window: int = 5_000
    chunk_steps: int = 500
    checkpoint_every: int = 5_000
    max_models: int = 0
    memory_fraction: float = 0.6
    eval_train: int = 10_000
    eval_test: int = 5_000
    num_bins: int = 20
    eval_batch: int = 500

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (tuples become lists)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}

    @property
    def data_path(self) -> str | None:
        """``data_dir``, else ``$LINVAE_DATA`` (resolved at call time)."""
        return self.data_dir if self.data_dir is not None else os.environ.get("LINVAE_DATA")


def validate(cfg: DeepConfig, *, num_images: int | None = None, data_dim: int | None = None) -> None:
    """Raise ``ValueError`` for an inconsistent configuration, before any training starts.

    Args:
        cfg: the configuration.
        num_images: size of the data set, when known (the batch may not exceed it).
        data_dim: pixels per image, when known (a latent space larger than the data is refused).
    """

    def finite(name: str, v: float) -> None:
        if not math.isfinite(v):
            raise ValueError(f"{name} must be finite; got {v}")

    if cfg.dataset not in DATASETS and cfg.dataset != "linear_gaussian":
        raise ValueError(f"unknown data set {cfg.dataset!r}; known: {', '.join(DATASETS)}")
    if cfg.source not in ("auto", "real", "procedural"):
        raise ValueError(f"source must be 'auto', 'real' or 'procedural'; got {cfg.source!r}")
    if cfg.model not in ("conv", "linear"):
        raise ValueError(f"model must be 'conv' or 'linear'; got {cfg.model!r}")
    if cfg.likelihood not in ("bernoulli", "gaussian"):
        raise ValueError(f"likelihood must be 'bernoulli' or 'gaussian'; got {cfg.likelihood!r}")
    if cfg.beta_schedule not in ("constant", "linear", "controlvae", "dynamicvae"):
        raise ValueError(
            f"beta_schedule must be constant, linear, controlvae or dynamicvae; got {cfg.beta_schedule!r}"
        )
    if not cfg.betas or not cfg.lambdas or not cfg.seeds:
        raise ValueError("betas, lambdas and seeds must each hold at least one value")
    for b in cfg.betas:
        finite("beta", b)
        if b < 0:
            raise ValueError(f"beta must be >= 0; got {b} in betas={cfg.betas}")
    for lam in cfg.lambdas:
        finite("lambda", lam)
        if lam < 0:
            raise ValueError(f"lambda must be >= 0; got {lam} in lambdas={cfg.lambdas}")
    for name, values in (("betas", cfg.betas), ("lambdas", cfg.lambdas), ("seeds", cfg.seeds)):
        if len(set(values)) != len(values):
            raise ValueError(f"{name} contains duplicates: {values}")
    if any(int(s) != s or s < 0 for s in cfg.seeds):
        raise ValueError(f"seeds must be non-negative integers; got {cfg.seeds}")
    if cfg.beta_schedule in ("controlvae", "dynamicvae") and len(cfg.betas) != 1:
        raise ValueError(
            f"beta_schedule={cfg.beta_schedule!r} sets beta by feedback: give one beta (its beta_min / beta(0));"
            f" got {cfg.betas}; sweep the controller's KL set-point with kl_targets instead"
        )
    if cfg.kl_targets:
        if cfg.beta_schedule not in ("controlvae", "dynamicvae"):
            raise ValueError(
                f"kl_targets are KL set-points of a beta controller: they need beta_schedule 'controlvae' or"
                f" 'dynamicvae'; got beta_schedule={cfg.beta_schedule!r}"
            )
        for c in cfg.kl_targets:
            finite("KL target", c)
            if c <= 0:
                raise ValueError(f"KL target must be > 0 nats; got {c} in kl_targets={cfg.kl_targets}")
        if len(set(cfg.kl_targets)) != len(cfg.kl_targets):
            raise ValueError(f"kl_targets contains duplicates: {cfg.kl_targets}")
        if len({f"{float(c):g}" for c in cfg.kl_targets}) != len(cfg.kl_targets):
            raise ValueError(
                f"kl_targets must differ in their printed form (runs folders C<target>); got {cfg.kl_targets}"
            )
    for name in ("latent_dim", "batch_size", "beta_steps", "chunk_steps", "checkpoint_every", "eval_batch"):
        if getattr(cfg, name) < 1:
            raise ValueError(f"{name} must be >= 1; got {getattr(cfg, name)}")
    for name in ("lambda_steps", "max_models", "log_window", "eval_train", "eval_test"):
        if getattr(cfg, name) < 0:
            raise ValueError(f"{name} must be >= 0; got {getattr(cfg, name)}")
    if cfg.beta_schedule == "linear" and cfg.warmup_steps < 1:
        raise ValueError(f"warmup_steps must be >= 1; got {cfg.warmup_steps}")
    for name in ("learning_rate", "obs_var", "adam_eps"):
        finite(name, getattr(cfg, name))
        if getattr(cfg, name) <= 0:
            raise ValueError(f"{name} must be > 0; got {getattr(cfg, name)}")
    if not (0 <= cfg.adam_b1 < 1 and 0 <= cfg.adam_b2 < 1):
        raise ValueError(f"Adam betas must lie in [0, 1); got ({cfg.adam_b1}, {cfg.adam_b2})")
    if not 0 < cfg.lr_decay_to <= 1:
        raise ValueError(f"lr_decay_to must lie in (0, 1]; got {cfg.lr_decay_to}")
    if not 0 < cfg.memory_fraction <= 1:
        raise ValueError(f"memory_fraction must lie in (0, 1]; got {cfg.memory_fraction}")
    if cfg.num_bins < 2:
        raise ValueError(f"num_bins must be >= 2; got {cfg.num_bins}")
    if num_images is not None and cfg.batch_size > num_images:
        raise ValueError(f"batch_size {cfg.batch_size} is larger than the data set ({num_images} images)")
    if data_dim is not None and cfg.latent_dim > data_dim:
        raise ValueError(f"latent_dim {cfg.latent_dim} exceeds the data dimension {data_dim}")


PAPER = DeepConfig()

PRESETS: dict[str, DeepConfig] = {
    # The published protocol (docs/theory.md §2.3): 3 data sets x 5 beta x 5 lambda x 10 seeds on a GPU.
    "paper": PAPER,
    # Minutes on a 2-core CPU: procedural dSprites, 2 x 2 x 2 grid, a short protocol, small evaluation.
    "smoke": dataclasses.replace(
        PAPER,
        source="procedural",
        learning_rate=1e-3,
        beta_steps=100,
        lambda_steps=40,
        betas=(1.0, 8.0),
        lambdas=(0.0, 4.0),
        seeds=(0, 1),
        log_window=40,
        chunk_steps=20,
        checkpoint_every=60,
        eval_train=1_000,
        eval_test=500,
        eval_batch=250,
    ),
}


def preset(name: str, **overrides: Any) -> DeepConfig:
    """A named preset with field overrides; ``ValueError`` for an unknown name or field."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; known: {', '.join(PRESETS)}")
    fields = {f.name for f in dataclasses.fields(DeepConfig)}
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise ValueError(f"unknown DeepConfig fields: {unknown}")
    return dataclasses.replace(PRESETS[name], **overrides)
