r"""Evaluation of trained deep VAEs: disentanglement metrics, logged losses, traversals, reconstructions.

Per model (docs/theory.md §2.3 "Deep", §8): encoder means of ``eval_train`` + ``eval_test`` random images
(10,000 + 5,000 in the paper), factors as class indices, 20 histogram bins; MIG and :math:`I_m` on the
train split, SAP (per-(latent, factor) linear SVM) trained on the train split and scored on the test
split — all from :mod:`linvae.deep.metrics` with disentanglement_lib's definitions. The logged
NLL/KL/L2 are the training means over the last ``log_window`` steps (from ``train.json``).

Selectable besides (``cfg.metrics``): DCI (on the same codes), FactorVAE and BetaVAE scores (their
own image groups), with disentanglement_lib's settings at the evaluation's sample sizes
(:func:`metric_config`). Always computed: the per-latent KL on the evaluation images (the deep
analogue of the linear encoder spectrum), its sum, and the test-split NLL and L2
(:func:`posterior_stats`); a latent is counted active above ``cfg.active_kl`` nats.

Every result is written as ``eval.json`` next to the model with the full config, each metric's
settings, the data set's provenance (real file or procedural stand-in) and the code revision. The
runs folder's ``evaluation.json`` holds the settings all its evaluations share; a request with other
settings is refused, a new metric is computed for every model that lacks it.
"""

from __future__ import annotations

import dataclasses
import math
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax import Array

from linvae.deep import metrics
from linvae.deep.config import DeepConfig
from linvae.deep.data import AbstractDataset
from linvae.deep.data.sampler import as_observations
from linvae.deep.metrics.ground_truth import sample_factors
from linvae.deep.metrics.matched_mi import matched_mi_from_information
from linvae.deep.model import AbstractVAE
from linvae.deep.objective import decoder_mean, negative_log_likelihood
from linvae.deep.record import Member, check_or_record, code_revision, member_dir, read_json, write_json
from linvae.deep.runs import load_model, model_path
from linvae.deep.sweep import beta_members, lambda_members
from linvae.deep.train import at_resolution, open_dataset

_EVAL_TAG = 0xE7A1
#: The evaluation key of model ``seed`` (recorded in every evaluation).
EVAL_KEY = "fold_in(key(seed), 0xE7A1)"
#: Keys of each selectable metric's scores in ``record["metrics"]``.
METRIC_SCORES = {
    "mig": ("mig",),
    "sap": ("sap",),
    "im": ("i_m",),
    "dci": ("dci_d", "dci_c", "dci_i"),
    "factor_vae": ("factor_vae",),
    "beta_vae": ("beta_vae",),
}
#: Per-model quantities every evaluation computes besides the metrics (:func:`posterior_stats`).
POSTERIOR_KEYS = ("kl_latent", "kl_eval", "nll_eval", "l2_eval")
_SPEED_ONLY = ("batch_size",)


def _settings(config: Any, **extra: Any) -> dict[str, Any]:
    d = {k: v for k, v in dataclasses.asdict(config).items() if k not in _SPEED_ONLY}
    return {**d, **extra}


def metric_config(cfg: DeepConfig, name: str) -> Any:
    """The metric config ``name`` runs with under ``cfg``: disentanglement_lib's defaults with the
    sample sizes of the evaluation (``eval_train`` / ``eval_test``, the paper's 10,000 / 5,000) and its
    bins. MIG, :math:`I_m`, SAP and DCI share one train/test draw of codes; FactorVAE and BetaVAE draw
    their own groups of images."""
    b = cfg.eval_batch
    if name == "mig":
        return metrics.MIGConfig(num_train=cfg.eval_train, num_bins=cfg.num_bins, batch_size=b)
    if name == "im":
        return metrics.MatchedMIConfig(num_train=cfg.eval_train, num_bins=cfg.num_bins, batch_size=b)
    if name == "sap":
        return metrics.SAPConfig(num_train=cfg.eval_train, num_test=cfg.eval_test, batch_size=b)
    if name == "dci":
        return metrics.DCIConfig(num_train=cfg.eval_train, num_test=cfg.eval_test, batch_size=b)
    if name == "factor_vae":
        return metrics.FactorVAEConfig(
            num_train=cfg.eval_train,
            num_eval=cfg.eval_test,
            num_variance_estimate=cfg.eval_train,
            batch_size=b,
        )
    if name == "beta_vae":
        return metrics.BetaVAEConfig(num_train=cfg.eval_train, num_eval=cfg.eval_test, batch_size=b)
    raise ValueError(f"unknown metric {name!r}; known: {', '.join(METRIC_SCORES)}")


def metric_settings(cfg: DeepConfig, name: str) -> dict[str, Any]:
    """What a stored score of metric ``name`` was computed with (its config, the data it saw, its key)."""
    split = {
        "mig": "train split of the shared codes",
        "im": "train split of the shared codes",
        "sap": "SVMs fit on the train split, scored on the test split of the shared codes",
        "dci": "trees fit on the train split, scored on the test split; trees keyed fold_in(eval key, 2)",
        "factor_vae": "own groups of images, keyed fold_in(eval key, 3)",
        "beta_vae": "own pairs of images, keyed fold_in(eval key, 4)",
    }[name]
    return _settings(metric_config(cfg, name), data=split)


def evaluation_settings(cfg: DeepConfig) -> dict[str, Any]:
    """Settings every evaluated model of a runs folder shares (``<runs>/evaluation.json``): sample
    sizes, bins, the key, how the posterior quantities are computed, and each selected metric's
    settings (``metric:<name>``). A folder refuses a differing value; new metrics are added."""
    out: dict[str, Any] = {
        "eval_train": cfg.eval_train,
        "eval_test": cfg.eval_test,
        "num_bins": cfg.num_bins,
        "key": EVAL_KEY,
        "codes": "encoder means of eval_train + eval_test images drawn uniformly over the factor grid",
        "posterior": (
            "per-latent KL: closed form per image, mean over the train split; NLL and L2: test split,"
            " one reparameterised sample per image keyed fold_in(eval key, 1)"
        ),
    }
    for name in cfg.metrics:
        out[f"metric:{name}"] = metric_settings(cfg, name)
    return out


def check_runs_evaluation(cfg: DeepConfig, runs: str | os.PathLike[str]) -> None:
    """Refuse (``ValueError``) a runs folder evaluated with other settings; record them in a new one."""
    check_or_record(Path(runs) / "evaluation.json", evaluation_settings(cfg), "evaluation settings")


@eqx.filter_jit
def _means(model: AbstractVAE, x: Array) -> Array:
    return jax.vmap(lambda xi: model.encode(xi)[0])(x)


def representation(model: AbstractVAE, dataset: AbstractDataset) -> Callable[[np.ndarray], np.ndarray]:
    """The batched mean encoder of ``model``: ``uint8 (b, H, W, C) -> float64 (b, m)`` codes."""
    return lambda images: np.asarray(_means(model, as_observations(dataset, jnp.asarray(images))), np.float64)


def codes_and_factors(
    cfg: DeepConfig, dataset: AbstractDataset, model: AbstractVAE, *, key: Array
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Train and test codes with their factor classes (``eval_train`` and ``eval_test`` images)."""
    return metrics.sample_train_test(
        dataset,
        representation(model, dataset),
        key=key,
        num_train=cfg.eval_train,
        num_test=cfg.eval_test,
        batch_size=cfg.eval_batch,
    )


@eqx.filter_jit
def _posterior_batch(model: AbstractVAE, x: Array, key: Array, likelihood: str, obs_var: float):
    mu, log_var = jax.vmap(model.encode)(x)
    kl = 0.5 * (jnp.square(mu) + jnp.exp(log_var) - log_var - 1.0)
    z = mu + jnp.exp(0.5 * log_var) * jax.random.normal(key, mu.shape, mu.dtype)
    out = jax.vmap(model.decode)(z)
    nll = jax.vmap(lambda o, xi: negative_log_likelihood(o, xi, likelihood, obs_var))(out, x)
    l2 = jnp.sum(jnp.square(decoder_mean(out, likelihood) - x).reshape(x.shape[0], -1), axis=-1)
    return kl, nll, l2


def posterior_stats(
    cfg: DeepConfig, dataset: AbstractDataset, model: AbstractVAE, *, key: Array
) -> dict[str, Any]:
    r"""Per-latent KL, total KL, reconstruction NLL and L2 on the evaluation images.

    The images are those of :func:`codes_and_factors` (same key): the KL of latent k,
    :math:`	frac12(\mu_k^2 + s_k - \log s_k - 1)` averaged over the train split, is the deep analogue
    of the linear encoder spectrum (a latent the KL term has switched off has KL 0); NLL and L2 are
    test-split means with one reparameterised sample per image, the training objective's estimator.
    """
    key_train, key_test = jax.random.split(key)
    noise = jax.random.fold_in(key, 1)

    def batches(k: Array, n: int):
        factors = sample_factors(dataset, key=k, num_points=n)
        for i, start in enumerate(range(0, n, cfg.eval_batch)):
            images = dataset.images(jnp.asarray(factors[start : start + cfg.eval_batch]))
            yield as_observations(dataset, jnp.asarray(images)), jax.random.fold_in(noise, i)

    kl_sum = np.zeros(cfg.latent_dim)
    for x, k in batches(key_train, cfg.eval_train):
        kl, _, _ = _posterior_batch(model, x, k, cfg.likelihood, cfg.obs_var)
        kl_sum += np.asarray(kl, np.float64).sum(axis=0)
    nll_sum = l2_sum = 0.0
    for x, k in batches(key_test, cfg.eval_test):
        _, nll, l2 = _posterior_batch(model, x, k, cfg.likelihood, cfg.obs_var)
        nll_sum += float(np.sum(np.asarray(nll, np.float64)))
        l2_sum += float(np.sum(np.asarray(l2, np.float64)))
    kl_latent = kl_sum / max(cfg.eval_train, 1)
    return {
        "kl_latent": kl_latent.tolist(),
        "kl_eval": float(kl_latent.sum()),
        "nll_eval": nll_sum / max(cfg.eval_test, 1),
        "l2_eval": l2_sum / max(cfg.eval_test, 1),
    }


def active_latents(kl_latent: Sequence[float], threshold: float) -> int:
    """Number of latents whose mean KL exceeds ``threshold`` nats."""
    return int(np.sum(np.asarray(kl_latent, np.float64) > threshold))


def missing_metrics(cfg: DeepConfig, record: dict[str, Any] | None) -> list[str]:
    """The selected metrics (and ``"posterior"``) a stored evaluation lacks. Records written before
    metric settings were stored count as lacking everything (they are recomputed)."""
    if record is None or record.get("metrics") is None or "metric_settings" not in record:
        return ["posterior", *cfg.metrics]
    have = record["metrics"]
    out = [] if all(k in have for k in POSTERIOR_KEYS) else ["posterior"]
    return out + [m for m in cfg.metrics if m not in record["metric_settings"]]


def score(
    cfg: DeepConfig,
    dataset: AbstractDataset,
    model: AbstractVAE,
    *,
    key: Array,
    which: Sequence[str] | None = None,
) -> dict[str, Any]:
    """The selected metrics of one model (default ``cfg.metrics``) and its posterior quantities.

    MIG, SAP and :math:`I_m` are computed exactly as before metrics became selectable (same codes,
    same calls), with the latent-factor MI matrix (nats) behind them. ``which`` may include
    ``"posterior"`` (:func:`posterior_stats`); it is always included when ``which`` is ``None``.
    """
    which = ["posterior", *cfg.metrics] if which is None else list(which)
    out: dict[str, Any] = {}
    if any(m in which for m in ("mig", "sap", "im", "dci")):
        codes, factors, codes_test, factors_test = codes_and_factors(cfg, dataset, model, key=key)
        out.update(num_train=int(codes.shape[0]), num_test=int(codes_test.shape[0]), num_bins=cfg.num_bins)
        out["code_std"] = np.std(codes, axis=0).tolist()
        if "mig" in which or "im" in which:
            mig = metrics.mig(codes, factors, metric_config(cfg, "mig"))
            out.update(mi=mig.mi.tolist(), factor_entropy=mig.entropy.tolist())
            if "mig" in which:
                out.update(mig=mig.score, mig_gaps=mig.gaps.tolist())
            if "im" in which:
                # The same MI matrix as metrics.matched_mi computes (same codes, bins and backend).
                out["i_m"] = matched_mi_from_information(mig.mi).score
        if "sap" in which:
            sap = metrics.sap(codes, factors, codes_test, factors_test, metric_config(cfg, "sap"))
            out.update(sap=sap.score, sap_matrix=sap.matrix.tolist(), sap_unconverged=int(sap.unconverged))
        if "dci" in which:
            d = metrics.dci(
                codes,
                factors,
                codes_test,
                factors_test,
                metric_config(cfg, "dci"),
                key=jax.random.fold_in(key, 2),
            )
            out.update(
                dci_d=d.disentanglement, dci_c=d.completeness, dci_i=d.informativeness_test,
                dci_i_train=d.informativeness_train, dci_importance=d.importance.tolist(),
            )  # fmt: skip
    rep = representation(model, dataset)
    if "factor_vae" in which:
        f = metrics.factor_vae_score(
            dataset, rep, metric_config(cfg, "factor_vae"), key=jax.random.fold_in(key, 3)
        )
        out.update(
            factor_vae=f.eval_accuracy, factor_vae_train=f.train_accuracy, factor_vae_active=f.num_active
        )
    if "beta_vae" in which:
        bv = metrics.beta_vae_score(
            dataset, rep, metric_config(cfg, "beta_vae"), key=jax.random.fold_in(key, 4)
        )
        out.update(
            beta_vae=bv.eval_accuracy, beta_vae_train=bv.train_accuracy, beta_vae_converged=bv.converged
        )
    if "posterior" in which:
        out.update(posterior_stats(cfg, dataset, model, key=key))
    return out


def evaluate_member(
    cfg: DeepConfig,
    dataset: AbstractDataset,
    runs: str | os.PathLike[str],
    phase: str,
    member: Member,
    *,
    previous: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Score one trained model and write its ``eval.json`` (atomically); returns the record.

    With ``previous`` (its stored record), only what it lacks is computed and merged in.
    """
    model, _, train = load_model(cfg, dataset, runs, phase, member)
    t0 = time.perf_counter()
    which = missing_metrics(cfg, previous)
    keep = previous is not None and previous.get("metrics") is not None and "metric_settings" in previous
    record: dict[str, Any] = {
        "member": member.to_dict(),
        "phase": phase,
        "steps": train["steps"],
        "status": train["status"],
        "failed_at": train["failed_at"],
        "window": train["window"],
        "metric_settings": dict(previous["metric_settings"]) if keep else {},  # type: ignore[index]
    }
    if train["status"] == "ok":
        key = jax.random.fold_in(jax.random.key(member.seed), _EVAL_TAG)
        new = score(cfg, dataset, model, key=key, which=which)
        record["metrics"] = {**(previous["metrics"] if keep else {}), **new}  # type: ignore[index]
        for name in which:
            if name != "posterior":
                record["metric_settings"][name] = metric_settings(cfg, name)
    else:
        record["metrics"] = None
    record.update(
        evaluation={k: v for k, v in evaluation_settings(cfg).items() if not k.startswith("metric:")},
        eval_wall_s=time.perf_counter() - t0 + (previous.get("eval_wall_s", 0.0) if keep else 0.0),  # type: ignore[union-attr]
        config=cfg.to_dict(),
        provenance=dataset.provenance.to_dict(),
        revision=code_revision(),
    )
    write_json(member_dir(Path(runs), phase, member) / "eval.json", record)
    return record


def evaluate_sweep(
    cfg: DeepConfig,
    runs: str | os.PathLike[str],
    *,
    dataset: AbstractDataset | None = None,
    log: Callable[[str], None] | None = None,
) -> list[dict[str, Any]]:
    """Evaluate every trained model of the grid whose ``eval.json`` lacks a selected metric; return
    all records (``record["phase"]`` is ``"beta"`` or ``"lambda"``).

    Refuses (``ValueError``, before anything is computed) a runs folder evaluated with other
    settings (:func:`check_runs_evaluation`).
    """
    log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
    dataset = open_dataset(cfg) if dataset is None else at_resolution(cfg, dataset)
    runs = Path(runs)
    check_runs_evaluation(cfg, runs)
    phases = [("beta", beta_members(cfg))]
    if cfg.lambda_steps > 0:
        phases.append(("lambda", lambda_members(cfg)))
    records = []
    for phase, members in phases:
        for mb in members:
            if not model_path(runs, phase, mb).exists():
                continue
            path = member_dir(runs, phase, mb) / "eval.json"
            previous = read_json(path) if path.exists() else None
            need = missing_metrics(cfg, previous)
            if previous is not None and (not need or previous["status"] != "ok"):
                records.append(previous)
                continue
            log(f"evaluating {phase} beta={mb.beta:g} lambda={mb.lam:g} seed={mb.seed}: {', '.join(need)}")
            records.append(evaluate_member(cfg, dataset, runs, phase, mb, previous=previous))
    return records


def reconstructions(
    model: AbstractVAE, dataset: AbstractDataset, images: np.ndarray, likelihood: str
) -> np.ndarray:
    """Decoder means at the encoder means of ``images``, as float32 observations (n, H, W, C)."""

    @eqx.filter_jit
    def rec(model: AbstractVAE, x: Array) -> Array:
        mu = jax.vmap(lambda xi: model.encode(xi)[0])(x)
        return decoder_mean(jax.vmap(model.decode)(mu), likelihood)

    return np.asarray(rec(model, as_observations(dataset, jnp.asarray(images))))


def traversal(
    model: AbstractVAE,
    dataset: AbstractDataset,
    image: np.ndarray,
    likelihood: str,
    *,
    values: Sequence[float] = tuple(np.linspace(-2.5, 2.5, 7)),
) -> np.ndarray:
    """Latent traversal: from the encoder mean of one image, set latent j to each of ``values``.

    Returns:
        Decoder means, shape ``(latent_dim, len(values), H, W, C)``.
    """
    x = as_observations(dataset, jnp.asarray(image)[None])[0]
    mu = model.encode(x)[0]
    k, v = mu.shape[0], jnp.asarray(values, mu.dtype)
    z = jnp.broadcast_to(mu, (k, v.shape[0], k))
    z = z.at[jnp.arange(k), :, jnp.arange(k)].set(jnp.broadcast_to(v, (k, v.shape[0])))

    @eqx.filter_jit
    def dec(model: AbstractVAE, z: Array) -> Array:
        return decoder_mean(jax.vmap(jax.vmap(model.decode))(z), likelihood)

    return np.asarray(dec(model, z))


def summary(records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Counts of models, failures and stand-in provenance over a set of records (for a sidecar)."""
    return {
        "models": len(records),
        "failed": sum(r["status"] != "ok" for r in records),
        "stand_in": any(r["provenance"]["kind"] != "real file" for r in records),
        "provenance": sorted({r["provenance"]["label"] for r in records}),
        "revision": code_revision(),
        "finite_metrics": all(
            r["metrics"] is None or all(math.isfinite(r["metrics"][k]) for k in ("mig", "sap", "i_m"))
            for r in records
        ),
    }
