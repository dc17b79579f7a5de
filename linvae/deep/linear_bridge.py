r"""The theory bridge: a deep VAE with linear layers, trained by the deep pipeline on linear-Gaussian
data, reaches the closed-form optimum of the matching linear variant.

The matching variant is D3/E2 (docs/theory.md §2.2, §4): fixed isotropic decoder variance
:math:`\sigma_d^2` (the Gaussian likelihood's ``obs_var``), diagonal input-independent encoder variance,
no biases. Its global optimum for any β > 0, λ ≥ 0 is :func:`linvae.numeric.lucas` with
:math:`\theta = \beta/(\sigma_d^{-2} + 2\lambda)`: latent i is active iff :math:`\mu_i > \theta`.

:func:`bridge` trains every (β, λ) of a grid at once (``vmap``) with the same
:func:`~linvae.deep.train.train_phase` as the image models — Adam on Monte-Carlo minibatches of
:meth:`LinearGaussian.sample`, one reparameterised sample per example, the L2 term on that same
sample — then evaluates the trained parameters *exactly* (population loss and :math:`I(X;Y)` in
float64 by :mod:`linvae.numeric`) and compares them with the closed form.

The problem has a prescribed, well-separated spectrum (:func:`bridge_problem`) and the grid keeps
θ away from every eigenvalue, so each run converges to an isolated optimum (docs/theory.md §10 trap 7).

Theorem: lucas-threshold, lucas-rate-distortion (T17, T18)
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax.numpy as jnp
import numpy as np

from linvae import numeric
from linvae.deep.config import DeepConfig
from linvae.deep.data import LinearGaussian
from linvae.deep.record import Member
from linvae.deep.train import train_phase


@dataclasses.dataclass(frozen=True, kw_only=True)
class BridgeConfig:
    """The bridge experiment.

    Attributes:
        scales: variances of the signal directions (the spectrum is ``scales + sigma2`` then ``sigma2``).
        data_dim: n, the data dimension.
        sigma2: data-noise variance.
        latent_dim: m (more latents than signal directions, so some collapse for every β).
        obs_var: fixed decoder variance :math:`\\sigma_d^2`.
        betas, lambdas: the grid (θ = β / (1/σ_d² + 2λ) kept away from the spectrum).
        steps, batch_size, learning_rate, lr_decay_to: the optimiser run (Adam, cosine decay).
        seed: seed of the problem's eigenbasis and of the models.
    """

    scales: tuple[float, ...] = (12.0, 7.0, 4.0, 2.0, 1.0)
    data_dim: int = 16
    sigma2: float = 0.05
    latent_dim: int = 6
    obs_var: float = 1.0
    betas: tuple[float, ...] = (0.5, 1.5, 3.0, 6.0, 9.0, 16.0)
    lambdas: tuple[float, ...] = (0.0, 0.5)
    steps: int = 6_000
    batch_size: int = 512
    learning_rate: float = 1e-2
    lr_decay_to: float = 1e-3
    seed: int = 0


def bridge_problem(cfg: BridgeConfig) -> numeric.Problem:
    """:math:`\\Sigma_V = I_s`, :math:`\\Gamma = Q_{:, :s}\\,\\mathrm{diag}(\\sqrt{\\text{scales}})` with a random
    orthonormal Q, so :math:`\\mu = (\\text{scales} + \\sigma^2, \\sigma^2, \\dots)` exactly."""
    rng = np.random.default_rng(cfg.seed)
    q, _ = np.linalg.qr(rng.normal(size=(cfg.data_dim, cfg.data_dim)))
    s = len(cfg.scales)
    gamma = q[:, :s] * np.sqrt(np.asarray(cfg.scales))[None, :]
    return numeric.from_factors(np.eye(s), gamma, cfg.sigma2)


def deep_config(cfg: BridgeConfig) -> DeepConfig:
    """The :class:`DeepConfig` the linear VAEs are trained with."""
    return DeepConfig(
        dataset="linear_gaussian",
        source="procedural",
        model="linear",
        latent_dim=cfg.latent_dim,
        likelihood="gaussian",
        obs_var=cfg.obs_var,
        learning_rate=cfg.learning_rate,
        lr_decay_to=cfg.lr_decay_to,
        batch_size=cfg.batch_size,
        beta_steps=cfg.steps,
        lambda_steps=0,
        betas=cfg.betas,
        lambdas=cfg.lambdas,
        seeds=(cfg.seed,),
        log_window=min(1000, cfg.steps),
        chunk_steps=min(500, cfg.steps),
        checkpoint_every=cfg.steps,
        eval_train=0,
        eval_test=0,
    )


def bridge(cfg: BridgeConfig = BridgeConfig(), *, progress: bool = False) -> dict[str, Any]:
    """Train the linear VAEs of the grid and compare each with the closed-form optimum.

    Returns:
        ``{"config", "spectrum", "rows"}``; each row holds β, λ, θ, the trained and closed-form
        population loss (:math:`\\mathcal R + \\beta\\mathcal K + \\lambda\\operatorname{tr}E`, nats),
        their relative gap, :math:`I(X;Y)` of both (nats), and the active-latent counts
        (trained: :math:`\\mathrm{KL}_i > 0.01` nats).
    """
    prob = bridge_problem(cfg)
    data = LinearGaussian(prob.Sigma_V, prob.Gamma, prob.sigma2)
    dcfg = deep_config(cfg)
    members = [Member(float(b), float(lam), cfg.seed) for b in cfg.betas for lam in cfg.lambdas]
    res = train_phase(
        dcfg,
        data,
        members,
        phase="beta",
        start_step=0,
        steps=cfg.steps,
        label="linear bridge",
        progress=progress,
    )
    p = res.state.params
    B = np.asarray(p.B, np.float64)
    w = np.exp(np.asarray(p.log_var_param, np.float64))
    A = np.asarray(p.A, np.float64)
    n, m = cfg.data_dim, cfg.latent_dim
    rows = []
    for i, mb in enumerate(members):
        trained = numeric.State(
            B=jnp.asarray(B[i]), Sigma_W=jnp.asarray(np.diag(w[i])), A=jnp.asarray(A[i]),
            Sigma_Z=jnp.asarray(cfg.obs_var * np.eye(n)), steps=jnp.asarray(cfg.steps),
            converged=jnp.asarray(True), delta=jnp.asarray(0.0),
        )  # fmt: skip
        closed = numeric.lucas(prob, mb.beta, mb.lam, m, cfg.obs_var)
        lt = numeric.losses(prob, trained, mb.beta, mb.lam)
        lc = numeric.losses(prob, closed, mb.beta, mb.lam)
        it = numeric.information(prob, trained)
        ic = numeric.information(prob, closed)
        theta = mb.beta / (1.0 / cfg.obs_var + 2.0 * mb.lam)
        mu = np.asarray(prob.mu)
        # Per-latent KL of the trained model (diagonal posterior): 1/2 (B S_Y B^T_ii + w_i - log w_i - 1).
        sx = np.einsum("ij,jk,ik->i", B[i], np.asarray(prob.Sigma_Y), B[i]) + w[i]
        kl_i = 0.5 * (sx - np.log(w[i]) - 1.0)
        rows.append(
            {
                "beta": mb.beta,
                "lambda": mb.lam,
                "theta": theta,
                "loss_trained": float(lt.total),
                "loss_closed": float(lc.total),
                "loss_rel_gap": float((lt.total - lc.total) / abs(lc.total)),
                "mi_trained": float(it.mi_xy),
                "mi_closed": float(ic.mi_xy),
                "active_trained": int(np.sum(kl_i > 0.01)),
                "active_closed": int(np.sum(mu[:m] > theta)),
                "alive": bool(np.asarray(res.state.alive)[i]),
            }
        )
    return {
        "config": dataclasses.asdict(cfg),
        "spectrum": np.asarray(prob.mu).tolist(),
        "rows": rows,
        "train_wall_s": res.wall_s,
    }
