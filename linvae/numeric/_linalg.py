"""Small float64 linear-algebra kernels shared by the numeric module (Cholesky solves, log-dets)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import Array


def sym(X: Array) -> Array:
    """Symmetric part ``(X + X^T) / 2`` of the trailing two axes."""
    return 0.5 * (X + jnp.swapaxes(X, -1, -2))


def logdet_spd(S: Array) -> Array:
    """``log|S|`` of an SPD matrix (symmetrised first, so gradients are); NaN if ``S`` is not positive definite."""
    return inv_logdet_spd(S)[1]


def solve_spd(S: Array, Y: Array) -> Array:
    """``S^{-1} Y`` for SPD ``S``; NaN if ``S`` is not positive definite."""
    return inv_spd(S) @ Y


def inv_spd(S: Array) -> Array:
    """``S^{-1}`` for SPD ``S`` (symmetrised); NaN if ``S`` is not positive definite."""
    return inv_logdet_spd(S)[0]


def fro(X: Array) -> Array:
    """Frobenius norm of the trailing two axes."""
    return jnp.sqrt(jnp.sum(X * X, axis=(-2, -1)))


#: Blocks up to this size are eliminated by a Gauss-Jordan loop; larger ones are split in two (Schur complement).
_LEAF = 16


def _gauss_jordan(A: Array) -> tuple[Array, Array]:
    """Gauss-Jordan inverse of a small symmetric matrix and its pivots (no pivoting).

    A ``fori_loop`` over the pivots, not an unrolled loop: the same arithmetic (bit-identical leaves),
    but one loop body to compile instead of m copies. Every jitted function that inverts a matrix
    compiles this, and unrolled it made up most of their compile time (a vmapped 50 x 50 inverse in a
    scan: 4.2-4.9 s of compile unrolled, 1.1-1.2 s as a loop, at the same run time).
    """
    m = A.shape[-1]

    def eliminate(k, carry):
        A, pivots = carry
        p = A[k, k]
        row_k = jax.lax.dynamic_index_in_dim(A, k, 0, keepdims=False)
        col_k = jax.lax.dynamic_index_in_dim(A, k, 1, keepdims=False)
        row = (row_k / p).at[k].set(1.0 / p)
        col = col_k.at[k].set(0.0)
        A = A - jnp.outer(col, row_k) / p
        A = jax.lax.dynamic_update_index_in_dim(A, row, k, 0)
        A = jax.lax.dynamic_update_index_in_dim(A, (-col / p).at[k].set(1.0 / p), k, 1)
        return A, pivots.at[k].set(p)

    A, pivots = jax.lax.fori_loop(0, m, eliminate, (A, jnp.zeros((m,), A.dtype)))
    return sym(A), pivots


def _inv_pivots(S: Array) -> tuple[Array, Array]:
    n = S.shape[-1]
    if n <= _LEAF:
        return _gauss_jordan(S)
    h = n // 2
    A, B, C = S[:h, :h], S[:h, h:], S[h:, h:]
    Ai, pa = _inv_pivots(A)
    AiB = Ai @ B
    Si, ps = _inv_pivots(sym(C - B.T @ AiB))
    X = AiB @ Si
    inv = jnp.block([[Ai + X @ AiB.T, -X], [-X.T, Si]])
    return sym(inv), jnp.concatenate([pa, ps])


@jax.jit
def inv_logdet_spd(S: Array) -> tuple[Array, Array]:
    r"""``(S^{-1}, log|S|)`` of an SPD matrix in plain ``jnp`` ops: a block :math:`LDL^\top` elimination.

    Blocks up to 16 x 16 are inverted by a Gauss-Jordan elimination loop; larger matrices are split
    in two and inverted through the Schur complement :math:`C - B^\top A^{-1}B` of their leading block,
    recursively. No pivoting is needed: on an SPD matrix every pivot is a diagonal entry of a Schur
    complement, hence positive, and the elimination is backward stable. ``log|S|`` is the sum of the logs
    of the pivots. A pivot that is not positive means ``S`` is not positive definite: the inverse and
    the log-determinant are then NaN, as a failed Cholesky factorisation would make them.

    Why not LAPACK: under ``vmap`` jaxlib's batched CPU LAPACK kernels (Cholesky, triangular solves, ...)
    split their batch over XLA's intra-op thread pool (one thread per core) and block until the pieces
    finish (``jax::ParallelBatchMap``). When two such kernels run at once on a 2-core machine, both pool
    threads wait for work only they could do and the process hangs at 0 % CPU (jaxlib 0.10.2; native
    stacks of the vmapped AdamW protocol and of vmapped diffrax solves showed both ``tf_XLAEigen``
    threads in ``ParallelBatchMap`` -> ``BlockingCounter::Wait``; ``--xla_cpu_multi_thread_eigen=false``
    and ``--xla_cpu_enable_concurrency_optimized_scheduler=false`` did not prevent it).
    Plain ``jnp`` ops also vectorise across the batch, which makes them 3-15x faster than LAPACK's
    batched calls at the sizes used here.
    Batched inputs (leading axes) are handled with ``jnp.vectorize``. Jitted, so eager calls run one
    compiled kernel instead of dispatching every elimination step.
    """
    if S.ndim > 2:
        return jnp.vectorize(inv_logdet_spd, signature="(m,m)->(m,m),()")(S)
    inv, pivots = _inv_pivots(sym(S))
    ok = jnp.all(pivots > 0)
    nan = jnp.asarray(jnp.nan, S.dtype)
    return jnp.where(ok, inv, nan), jnp.where(ok, jnp.sum(jnp.log(jnp.where(ok, pivots, 1.0))), nan)


@jax.jit
def cholesky(S: Array) -> Array:
    """Lower Cholesky factor of an SPD matrix in plain ``jnp`` ops (a loop over columns); NaN if not PD.

    For the same reason as :func:`inv_logdet_spd`: no batched LAPACK call under ``vmap``.
    """
    if S.ndim > 2:
        return jnp.vectorize(cholesky, signature="(m,m)->(m,m)")(S)
    S = sym(S)
    n = S.shape[-1]
    rows = jnp.arange(n)

    def column(j, L):
        v = S[:, j] - L @ L[j, :]  # columns >= j of L are still zero
        d = jnp.sqrt(v[j])
        return L.at[:, j].set(jnp.where(rows >= j, v / d, 0.0))

    return jax.lax.fori_loop(0, n, column, jnp.zeros_like(S))


def singular_values(M: Array) -> Array:
    """Singular values (descending) over any leading axes; NaN for a matrix with a non-finite entry.

    LAPACK's SVD would print "On entry to DLASCL parameter ... had an illegal value" for such a matrix
    (a diverged run); it is given zeros instead and its result replaced by NaN.
    """
    ok = jnp.all(jnp.isfinite(M), axis=(-2, -1))
    sv = jnp.linalg.svd(jnp.where(ok[..., None, None], M, 0.0), compute_uv=False)
    return jnp.where(ok[..., None], sv, jnp.nan)
