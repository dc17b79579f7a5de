"""Seconds per disentanglement metric at reference sizes, reference (numpy/sklearn) vs fast (JAX) paths.

Ground truth: the dSprites factor structure (sizes 3, 6, 40, 32, 32) on ``FactorObservations``, whose
image of a factor row is the row itself. Representation: 10 latents, five noisy monotone functions
of one factor each (the noise a fixed pseudo-random function of the whole factor row, so it is
deterministic, as an encoder mean is), two mixtures of factors, and three nearly collapsed latents
(std < 0.05, pruned by the FactorVAE score).

    python benchmarks/metrics.py            # all metrics, ~10 CPU minutes (DCI dominates)
    python benchmarks/metrics.py --no-dci   # everything else, under a minute

Code-based metrics (MIG, I_m, SAP, DCI) are timed on codes sampled once (the sampling and encoding
of 10,000 + 5,000 points is timed separately); FactorVAE and BetaVAE are timed end to end, since
their sampling is part of the definition. Fast paths are timed cold (including XLA compilation) and
warm.
"""

from __future__ import annotations

import argparse
import platform
import time

import jax
import numpy as np

from linvae.deep import metrics as M

jax.config.update("jax_enable_x64", True)

DSPRITES = M.FactorObservations(
    factor_sizes=(3, 6, 40, 32, 32), factor_names=("shape", "scale", "orientation", "pos_x", "pos_y")
)

_HASH = np.random.default_rng(1234).uniform(10.0, 100.0, size=(5, 10))


def representation(images: np.ndarray) -> np.ndarray:
    """10 latents: 5 noisy monotone functions of one factor each, 2 mixtures, 3 nearly collapsed."""
    f = M.factor_codes(images)
    u = f / (np.asarray(DSPRITES.factor_sizes) - 1.0)  # factors in [0, 1]
    noise = np.sin(f @ _HASH)  # a fixed pseudo-random function of the whole row, in [-1, 1]
    monotone = np.tanh(3.0 * (u - 0.5)) + 0.4 * noise[:, :5]
    mixtures = np.stack([u[:, 3] + u[:, 4], u[:, 1] - 0.5 * u[:, 2]], axis=1) + 0.1 * noise[:, 5:7]
    collapsed = 0.01 * noise[:, 7:10]
    return np.concatenate([monotone, mixtures, collapsed], axis=1)


def _timed(fn, *args, **kwargs):
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    return time.perf_counter() - start, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-dci", action="store_true", help="skip DCI (minutes of gradient boosting)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    key = jax.random.key(args.seed)
    print(
        f"CPU: {platform.processor() or platform.machine()}, jax {jax.__version__}"
        f" on {jax.devices()[0].platform}"
    )
    print(
        f"{'metric':<22}{'reference s':>12}{'fast cold s':>13}{'fast warm s':>13}   values (reference | fast)"
    )

    seconds, (codes, factors, codes_test, factors_test) = _timed(
        M.sample_train_test,
        DSPRITES,
        representation,
        key=key,
        num_train=10_000,
        num_test=5_000,
        batch_size=256,
    )
    print(f"{'sample+encode 15k':<22}{seconds:>12.3f}")

    def row(name, ref_fn, fast_fn, value):
        t_ref, r_ref = _timed(ref_fn)
        t_cold, r_fast = _timed(fast_fn) if fast_fn else (float("nan"), None)
        t_warm, _ = _timed(fast_fn) if fast_fn else (float("nan"), None)
        values = f"{value(r_ref):.6f}" + (f" | {value(r_fast):.6f}" if r_fast is not None else "")
        print(f"{name:<22}{t_ref:>12.3f}{t_cold:>13.3f}{t_warm:>13.3f}   {values}", flush=True)

    fast = {"backend": "fast"}
    row(
        "MIG",
        lambda: M.mig(codes, factors),
        lambda: M.mig(codes, factors, M.MIGConfig(**fast)),
        lambda r: r.score,
    )
    row(
        "I_m (nats)",
        lambda: M.matched_mi(codes, factors),
        lambda: M.matched_mi(codes, factors, M.MatchedMIConfig(**fast)),
        lambda r: r.score,
    )
    row(
        "SAP (discrete)",
        lambda: M.sap(codes, factors, codes_test, factors_test),
        lambda: M.sap(codes, factors, codes_test, factors_test, M.SAPConfig(**fast)),
        lambda r: r.score,
    )
    row(
        "SAP (continuous)",
        lambda: M.sap(codes, factors, cfg=M.SAPConfig(continuous_factors=True)),
        lambda: M.sap(codes, factors, cfg=M.SAPConfig(continuous_factors=True, **fast)),
        lambda r: r.score,
    )
    row(
        "FactorVAE (end to end)",
        lambda: M.factor_vae_score(DSPRITES, representation, M.FactorVAEConfig(), key=key),
        lambda: M.factor_vae_score(DSPRITES, representation, M.FactorVAEConfig(**fast), key=key),
        lambda r: r.eval_accuracy,
    )
    row(
        "BetaVAE (end to end)",
        lambda: M.beta_vae_score(DSPRITES, representation, M.BetaVAEConfig(), key=key),
        lambda: M.beta_vae_score(DSPRITES, representation, M.BetaVAEConfig(**fast), key=key),
        lambda r: r.eval_accuracy,
    )
    if not args.no_dci:
        row(
            "DCI (disentanglement)",
            lambda: M.dci(codes, factors, codes_test, factors_test, key=key),
            None,
            lambda r: r.disentanglement,
        )


if __name__ == "__main__":
    main()
