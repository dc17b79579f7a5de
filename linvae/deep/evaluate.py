r"""Evaluation of trained deep VAEs: disentanglement metrics, logged losses, traversals, reconstructions.

Per model (docs/theory.md §2.3 "Deep", §8): encoder means of ``eval_train`` + ``eval_test`` random images
(10,000 + 5,000 in the paper), factors as class indices, 20 histogram bins; MIG and :math:`I_m` on the
train split, SAP (per-(latent, factor) linear SVM) trained on the train split and scored on the test
split — all from :mod:`linvae.deep.metrics` with disentanglement_lib's definitions. The logged
NLL/KL/L2 are the training means over the last ``log_window`` steps (from ``train.json``).

Every result is written as ``eval.json`` next to the model with the full config, the data set's
provenance (real file or procedural stand-in) and the code revision.
"""

from __future__ import annotations

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
from linvae.deep.model import AbstractVAE
from linvae.deep.objective import decoder_mean
from linvae.deep.record import Member, code_revision, member_dir, read_json, write_json
from linvae.deep.train import (
    as_observations,
    beta_members,
    lambda_members,
    load_model,
    model_path,
    open_dataset,
)

_EVAL_TAG = 0xE7A1


def representation(model: AbstractVAE, dataset: AbstractDataset) -> Callable[[np.ndarray], np.ndarray]:
    """The batched mean encoder of ``model``: ``uint8 (b, H, W, C) -> float64 (b, m)`` codes."""

    @eqx.filter_jit
    def means(model: AbstractVAE, images: Array) -> Array:
        return jax.vmap(lambda x: model.encode(x)[0])(as_observations(dataset, images))

    return lambda images: np.asarray(means(model, jnp.asarray(images)), np.float64)


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


def score(cfg: DeepConfig, dataset: AbstractDataset, model: AbstractVAE, *, key: Array) -> dict[str, Any]:
    """MIG, SAP and :math:`I_m` of one model, with the latent-factor MI matrix (nats) behind them."""
    codes, factors, codes_test, factors_test = codes_and_factors(cfg, dataset, model, key=key)
    mig = metrics.mig(codes, factors, metrics.MIGConfig(num_bins=cfg.num_bins))
    i_m = metrics.matched_mi(codes, factors, metrics.MatchedMIConfig(num_bins=cfg.num_bins))
    sap = metrics.sap(codes, factors, codes_test, factors_test, metrics.SAPConfig())
    return {
        "mig": mig.score,
        "sap": sap.score,
        "i_m": i_m.score,
        "mi": mig.mi.tolist(),
        "factor_entropy": mig.entropy.tolist(),
        "mig_gaps": mig.gaps.tolist(),
        "sap_matrix": sap.matrix.tolist(),
        "sap_unconverged": int(sap.unconverged),
        "code_std": np.std(codes, axis=0).tolist(),
        "num_train": int(codes.shape[0]),
        "num_test": int(codes_test.shape[0]),
        "num_bins": cfg.num_bins,
    }


def evaluate_member(
    cfg: DeepConfig, dataset: AbstractDataset, runs: str | os.PathLike[str], phase: str, member: Member
) -> dict[str, Any]:
    """Score one trained model and write its ``eval.json``; returns the record."""
    model, _, train = load_model(cfg, dataset, runs, phase, member)
    t0 = time.perf_counter()
    record: dict[str, Any] = {
        "member": member.to_dict(),
        "phase": phase,
        "steps": train["steps"],
        "status": train["status"],
        "failed_at": train["failed_at"],
        "window": train["window"],
    }
    if train["status"] == "ok":
        key = jax.random.fold_in(jax.random.key(member.seed), _EVAL_TAG)
        record["metrics"] = score(cfg, dataset, model, key=key)
    else:
        record["metrics"] = None
    record.update(
        eval_wall_s=time.perf_counter() - t0,
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
    """Evaluate every trained model of the grid that has no ``eval.json`` yet; return all records.

    The records of both phases are returned (``record["phase"]`` is ``"beta"`` or ``"lambda"``).
    """
    log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
    dataset = open_dataset(cfg) if dataset is None else dataset
    runs = Path(runs)
    phases = [("beta", beta_members(cfg))]
    if cfg.lambda_steps > 0:
        phases.append(("lambda", lambda_members(cfg)))
    records = []
    for phase, members in phases:
        for mb in members:
            if not model_path(runs, phase, mb).exists():
                continue
            path = member_dir(runs, phase, mb) / "eval.json"
            if path.exists():
                records.append(read_json(path))
                continue
            log(f"evaluating {phase} beta={mb.beta:g} lambda={mb.lam:g} seed={mb.seed}")
            records.append(evaluate_member(cfg, dataset, runs, phase, mb))
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
