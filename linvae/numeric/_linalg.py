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


#: Above this size :func:`inv_spd_small` defers to LAPACK (its unrolled loop would bloat compilation).
_SMALL = 32


def inv_spd_small(S: Array) -> Array:
    """Inverse of a small SPD matrix by in-place Gauss-Jordan elimination in plain ``jnp`` ops.

    Batched small LAPACK calls (Cholesky + triangular solves) dominate the cost of the vmapped
    alternating map on CPU; an unrolled elimination vectorises across the batch instead (~3x faster
    than LAPACK's batched inverse at m = 10, batch 50). No pivoting is needed: on an SPD matrix the
    pivots are the diagonal entries of successive Schur complements, all positive, and elimination is
    backward stable (it is an LDL^T factorisation). Matrices larger than 32 x 32 use :func:`inv_spd`.
    """
    m = S.shape[-1]
    if m > _SMALL:
        return inv_spd(S)
    if S.ndim > 2:
        return jnp.vectorize(inv_spd_small, signature="(m,m)->(m,m)")(S)
    A = sym(S)
    for k in range(m):
        p = A[k, k]
        row = (A[k, :] / p).at[k].set(1.0 / p)
        col = A[:, k].at[k].set(0.0)
        A = A - jnp.outer(col, A[k, :]) / p
        A = A.at[k, :].set(row)
        A = A.at[:, k].set((-col / p).at[k].set(1.0 / p))
    return sym(A)
