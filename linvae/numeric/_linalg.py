"""Small float64 linear-algebra kernels shared by the numeric module (Cholesky solves, log-dets)."""

from __future__ import annotations

import jax.numpy as jnp
import jax.scipy.linalg as jsl
from jax import Array


def sym(X: Array) -> Array:
    """Symmetric part ``(X + X^T) / 2`` of the trailing two axes."""
    return 0.5 * (X + jnp.swapaxes(X, -1, -2))


def logdet_spd(S: Array) -> Array:
    """``log|S|`` of an SPD matrix through its Cholesky factor (symmetrised first, so gradients are)."""
    L = jnp.linalg.cholesky(sym(S))
    return 2.0 * jnp.sum(jnp.log(jnp.diagonal(L, axis1=-2, axis2=-1)), axis=-1)


def solve_spd(S: Array, Y: Array) -> Array:
    """``S^{-1} Y`` for SPD ``S`` by a Cholesky solve."""
    return jsl.cho_solve((jnp.linalg.cholesky(sym(S)), True), Y)


def inv_spd(S: Array) -> Array:
    """``S^{-1}`` for SPD ``S`` (symmetrised)."""
    return sym(solve_spd(S, jnp.eye(S.shape[-1], dtype=S.dtype)))


def fro(X: Array) -> Array:
    """Frobenius norm of the trailing two axes."""
    return jnp.sqrt(jnp.sum(X * X, axis=(-2, -1)))
