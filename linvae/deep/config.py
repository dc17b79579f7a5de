r"""Frozen configuration of a deep β-VAE / λβ-VAE sweep, and the named presets.

One :class:`DeepConfig` describes a whole experiment: data set, model, objective, optimiser, the
(β, λ, seed) grid and the published two-phase protocol (docs/theory.md §2.3 "Deep"):

1. **β-VAE phase**: one model per (β, seed), ``beta_steps`` Adam steps from scratch at λ = 0;
2. **λβ phase**: one model per (β, λ, seed), ``lambda_steps`` further steps from the phase-1
   checkpoint of (β, seed) with a *fresh* Adam state (docs/theory.md §10 trap 18). The λ = 0 row goes
   through the same continuation at λ = 0, so it has ``beta_steps + lambda_steps`` β-VAE steps.

Presets (``PRESETS``):

* ``"smoke"``: procedural dSprites, a 2 x 2 x 2 grid, a few hundred steps (minutes on a 2-core CPU);
  it checks that the pipeline runs, it shows no effect;
* ``"demo"``: a documented *reduced* configuration that shows the effect on a CPU (:data:`DEMO`; its
  docstring has the budget arithmetic);
* ``"paper"``: the published grid and protocol, on the real files only (meant for a GPU);
* ``"paper-m15"``: the larger grid named in the authors' README, β ∈ {1, 4, 8, 16, 32, 64, 128, 256}
  x λ ∈ {0, 4, 8, 16, 32}, read as 15 latents (docs/theory.md §11, open point 3), same protocol.

Sweeps and variants are ``dataclasses.replace(PRESETS["paper"], dataset="mpi3d", seeds=(0, 1))``.
:func:`deviations` lists how a configuration departs from the published protocol; every output of
a run that departs says so.
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
#: Metrics ``--metrics`` can select, and the three the paper reports (the default).
METRIC_NAMES = ("mig", "sap", "im", "dci", "factor_vae", "beta_vae")
PAPER_METRICS = ("mig", "sap", "im")
#: Image sizes the conv VAE takes: 64 (published) or 32 (2 x 2 mean-pooled, a reduced configuration).
IMAGE_SIZES = (64, 32)


@dataclasses.dataclass(frozen=True, kw_only=True)
class DeepConfig:
    """A deep VAE experiment: data, model, objective, optimiser, grid, protocol and evaluation.

    Attributes:
        dataset: ``"dsprites"``, ``"shapes3d"`` or ``"mpi3d"``.
        source: ``"real"`` (the file must exist), ``"procedural"`` (the stand-in) or ``"auto"``.
        data_dir: folder of the real files; ``None`` falls back to ``$LINVAE_DATA``, then
            ``$DISENTANGLEMENT_LIB_DATA``.
        image_size: side of the images the model sees: 64 (published) or 32 (each image 2 x 2
            mean-pooled, a reduced configuration; the conv VAE keeps its layers, its spatial sizes halve).
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
        metrics: disentanglement metrics to compute (:data:`METRIC_NAMES`; default the paper's three).
        active_kl: a latent is *active* when its KL, averaged over the evaluation images, exceeds this
            many nats (0.01: about Burda et al.'s activity threshold 0.01 on the variance of the
            encoder mean, which at unit posterior variance is a KL of 0.005 nats).
    """

    dataset: str = "dsprites"
    source: Source = "auto"
    data_dir: str | None = None
    image_size: int = 64
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
    metrics: tuple[str, ...] = PAPER_METRICS
    active_kl: float = 0.01

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (tuples become lists)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}

    @property
    def data_path(self) -> str | None:
        """``data_dir``, else ``$LINVAE_DATA`` (resolved at call time; the loaders then also try
        ``$DISENTANGLEMENT_LIB_DATA``)."""
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
    if cfg.image_size not in IMAGE_SIZES:
        raise ValueError(f"image_size must be one of {IMAGE_SIZES}; got {cfg.image_size}")
    if cfg.image_size != 64 and cfg.dataset == "linear_gaussian":
        raise ValueError("image_size applies to the image data sets, not to linear_gaussian")
    if not cfg.metrics:
        raise ValueError(f"choose at least one metric from: {', '.join(METRIC_NAMES)}")
    unknown = [m for m in cfg.metrics if m not in METRIC_NAMES]
    if unknown:
        raise ValueError(
            f"unknown metric(s) {', '.join(map(repr, unknown))}; known: {', '.join(METRIC_NAMES)}"
        )
    if len(set(cfg.metrics)) != len(cfg.metrics):
        raise ValueError(f"metrics contains duplicates: {cfg.metrics}")
    finite("active_kl", cfg.active_kl)
    if cfg.active_kl < 0:
        raise ValueError(f"active_kl must be >= 0 nats; got {cfg.active_kl}")
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


PAPER = DeepConfig(source="real")
"""The published protocol (docs/theory.md §2.3): 3 data sets x 5 β x 5 λ x 10 seeds, on the real files
(a missing file stops the run; the stand-ins need an explicit ``source="procedural"``)."""

DEMO = dataclasses.replace(
    PAPER,
    source="procedural",
    image_size=32,
    learning_rate=1e-3,
    beta_steps=600,
    lambda_steps=200,
    betas=(1.0, 4.0, 16.0, 64.0, 256.0),
    lambdas=(0.0, 4.0, 32.0),
    seeds=(0, 1, 2),
    log_window=100,
    chunk_steps=50,
    checkpoint_every=100,
    eval_train=2_000,
    eval_test=1_000,
    eval_batch=500,
)
r"""A reduced configuration that shows the deep effect on a 2-core CPU in at most 30 minutes.

Grid, chosen before any run: β ∈ {1, 4, 16, 64, 256} (from the ELBO's β = 1 to well past the point
where the KL term wins; a factor 4 apart, so the five values span the range of the authors' larger
grid), λ ∈ {0, 4, 32} (4 from the published grid, 32 the largest of the authors' larger grid), seeds
0, 1, 2; 10 latents, batch 64, Bernoulli likelihood, Adam (0.9, 0.999, 1e-8), procedural dSprites.

What is reduced, and why (every output of a run says "reduced configuration" and lists these):

* **32 x 32 images** (2 x 2 mean-pooled; :class:`linvae.deep.data.Pooled`), published layers. A step
  of the published model at 64 x 64 costs about 310 ms of CPU time, at 32 x 32 about 105 ms
  (measured on this project's 2-core machine, batch 64, procedural dSprites, data included); at
  64 x 64 the budget below would buy about 250 β-VAE steps per model, too few for a β = 1 model to
  become informative.
* **600 + 200 steps** instead of 150,000 + 50,000 (the published 3 : 1 split kept), and Adam's
  default step size **1e-3** instead of 1e-4, because the runs are 250x shorter.
* **Evaluation on 2,000 + 1,000 images** instead of 10,000 + 5,000 (MIG / I_m on 2,000, SAP trained
  on 2,000 and scored on 1,000); 20 bins as published.

Budget arithmetic (quiet 2-core CPU, 1,800 s). Step time: 105 ms of CPU time per model-step; XLA's
CPU convolutions keep about 1.5 of the 2 cores busy, so ~70 ms of wall time. Model-steps:
β-VAE phase 5 β x 3 seeds x 600 = 9,000, λβ phase 5 x 3 λ x 3 x 200 = 9,000; 18,000 x 70 ms =
1,260 s. Overheads: two compilations (~20 s each), evaluation of 60 models (~3 s each, 180 s),
figures and the linear closed forms (~30 s), start-up and fingerprint (~10 s): ~260 s. Total
~1,520 s ≈ 25 minutes, 15 % under the budget to absorb the uncertainty of the 1.5-core estimate
(at 1.3 cores it is ~29 minutes).

Measured (procedural dSprites, on the shared 2-core machine at a mean load average of 5.9, so the
wall time there is not the quiet one): 1,784 s of CPU time for training (99 ms per model-step,
compilation and checkpoints included) and 202 s for evaluation, tables and figures, 1,986 s in all;
at 1.5 busy cores that is ~22 minutes on a quiet machine (17 minutes if both cores stay busy, 33 if
only one does). The other two stand-ins cost more per step (their renderers are dearer; CPU time
per step at 32 x 32: Shapes3D-like ~108 ms, MPI3D-like ~130 ms): projected ~24 and ~28 minutes.
"""

PRESETS: dict[str, DeepConfig] = {
    # The published protocol (docs/theory.md §2.3): 3 data sets x 5 beta x 5 lambda x 10 seeds on a GPU.
    "paper": PAPER,
    # The authors' larger grid (their README's "m=15", read as 15 latents), same protocol, for a GPU.
    "paper-m15": dataclasses.replace(
        PAPER,
        latent_dim=15,
        betas=(1.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0),
        lambdas=(0.0, 4.0, 8.0, 16.0, 32.0),
    ),
    # The deep effect on a 2-core CPU in <= 30 minutes: a documented reduced configuration (DEMO).
    "demo": DEMO,
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


def deviations(cfg: DeepConfig) -> list[str]:
    """How ``cfg`` departs from the published protocol (empty for the protocol itself, whatever the
    grid): resolution, architecture, steps, optimiser, likelihood, evaluation sizes, bins."""
    out = []
    if cfg.image_size != PAPER.image_size:
        out.append(f"{cfg.image_size}x{cfg.image_size} images (mean-pooled)")
    if cfg.model != PAPER.model:
        out.append(f"{cfg.model} model")
    if (cfg.beta_steps, cfg.lambda_steps) != (PAPER.beta_steps, PAPER.lambda_steps):
        out.append(f"{cfg.beta_steps:,} + {cfg.lambda_steps:,} steps")
    if cfg.learning_rate != PAPER.learning_rate:
        out.append(f"lr {cfg.learning_rate:g}")
    if cfg.batch_size != PAPER.batch_size:
        out.append(f"batch {cfg.batch_size}")
    if cfg.likelihood != PAPER.likelihood:
        out.append(f"{cfg.likelihood} likelihood")
    if cfg.beta_schedule != PAPER.beta_schedule:
        out.append(f"beta schedule {cfg.beta_schedule}")
    if (cfg.eval_train, cfg.eval_test) != (PAPER.eval_train, PAPER.eval_test):
        out.append(f"evaluation on {cfg.eval_train:,} + {cfg.eval_test:,} images")
    if cfg.num_bins != PAPER.num_bins:
        out.append(f"{cfg.num_bins} bins")
    if cfg.log_window != PAPER.log_window:
        out.append(f"loss window {cfg.log_window:,} steps")
    return out


def protocol_label(cfg: DeepConfig) -> str:
    """``"published protocol"`` or ``"reduced configuration: <deviations>"`` (for every output)."""
    dev = deviations(cfg)
    return "published protocol" if not dev else "reduced configuration: " + ", ".join(dev)


def preset(name: str, **overrides: Any) -> DeepConfig:
    """A named preset with field overrides; ``ValueError`` for an unknown name or field."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; known: {', '.join(PRESETS)}")
    fields = {f.name for f in dataclasses.fields(DeepConfig)}
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise ValueError(f"unknown DeepConfig fields: {unknown}")
    return dataclasses.replace(PRESETS[name], **overrides)
