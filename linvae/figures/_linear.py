"""Shared compute helpers of the linear-model figures (no plotting, no I/O).

:func:`map_trajectory` records every sweep of the alternating map (docs/theory.md §3.3) built from the
public blocks :func:`~linvae.numeric.decoder_block` and :func:`~linvae.numeric.encoder_block`, so figures
can plot quantities along the iteration, not only at convergence.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from linvae import numeric as nm
from linvae.numeric._linalg import singular_values, solve_spd
from linvae.numeric._precision import float64


@functools.partial(jax.jit, static_argnames=("sweeps", "variant"))
def _scan(Sigma_Y, beta, lam, B0, W0, sweeps: int, variant: nm.Variant):
    def step(carry, _):
        B, W = carry
        A, Z = nm.decoder_block(Sigma_Y, B, W, variant)
        B1, W1 = nm.encoder_block(A, Z, beta, lam, variant)
        return (B1, W1), (B1, W1)

    _, (Bs, Ws) = jax.lax.scan(step, (B0, W0), None, length=sweeps)
    return jnp.concatenate([B0[None], Bs]), jnp.concatenate([W0[None], Ws])


@float64
def map_trajectory(
    prob: nm.Problem, betas, lam: float, init, sweeps: int, variant: nm.Variant = nm.D1
) -> tuple[np.ndarray, np.ndarray]:
    """Encoders ``(B_t, Sigma_W_t)`` for t = 0..sweeps of the alternating map.

    Args:
        prob: the data model.
        betas: KL weights (b,).
        lam: L2 weight.
        init: ``(B0, Sigma_W0)`` of shapes (k, m, n), (k, m, m).
        sweeps: number of decoder+encoder sweeps.
        variant: model variant.

    Returns:
        ``B`` of shape (b, k, sweeps + 1, m, n) and ``Sigma_W`` of shape (b, k, sweeps + 1, m, m).
    """
    B0, W0 = (jnp.asarray(x, jnp.float64) for x in init)
    run = lambda b, B, W: _scan(prob.Sigma_Y, b, lam, B, W, int(sweeps), variant)  # noqa: E731
    run = jax.vmap(jax.vmap(run, in_axes=(None, 0, 0)), in_axes=(0, None, None))
    Bs, Ws = run(jnp.asarray(np.asarray(betas, float)), B0, W0)
    return np.asarray(Bs), np.asarray(Ws)


@float64
def gain_singular_values(B, Sigma_W) -> np.ndarray:
    r"""Singular values of :math:`K = \Sigma_W^{-1}B`, descending, over any leading axes."""
    return np.asarray(singular_values(solve_spd(jnp.asarray(Sigma_W), jnp.asarray(B))))


@float64
def spectral_norm(B) -> np.ndarray:
    """Largest singular value over any leading axes."""
    return np.asarray(singular_values(jnp.asarray(B))[..., 0])


def information_along(prob: nm.Problem, B, Sigma_W) -> nm.Information:
    """:func:`~linvae.numeric.information` of a batch of encoders.

    The measures depend on the encoder only; the decoder fields of the state are filled with a valid
    placeholder (``A = 0``, ``Sigma_Z = I``) to pass the state checks.
    """
    shape = np.shape(B)[:-2]
    m, n = np.shape(B)[-2:]
    zeros = np.zeros(shape)
    st = nm.State(
        np.asarray(B),
        np.asarray(Sigma_W),
        np.zeros(shape + (n, m)),
        np.broadcast_to(np.eye(n), shape + (n, n)),
        zeros,
        zeros.astype(bool),
        zeros,
    )
    return nm.information(prob, st)


def problem_summary(prob: nm.Problem, label: str) -> dict:
    """The configuration record of a problem for a JSON sidecar."""
    return {"label": label, "n": prob.n, "s": prob.s, "sigma2": float(prob.sigma2), "mu": np.asarray(prob.mu)}


@functools.partial(jax.jit, static_argnames=("variant",))
def _map_losses(Sigma_Y, Bs, Ws, beta, lam, variant):
    def one(B, W):
        A, Z = nm.decoder_block(Sigma_Y, B, W, variant)
        return nm.loss_terms(Sigma_Y, B, W, A, Z, beta, lam)

    flat_B = Bs.reshape((-1,) + Bs.shape[-2:])
    flat_W = Ws.reshape((-1,) + Ws.shape[-2:])
    out = jax.vmap(one)(flat_B, flat_W)
    return jax.tree_util.tree_map(lambda x: x.reshape(Bs.shape[:-2]), out)


@float64
def map_losses(prob: nm.Problem, Bs, Ws, beta: float, lam: float, variant: nm.Variant = nm.D1) -> nm.Losses:
    """Loss terms of encoders ``(B, Sigma_W)`` (any leading axes) completed by their exact decoder block."""
    return _map_losses(prob.Sigma_Y, jnp.asarray(Bs), jnp.asarray(Ws), beta, lam, variant)
