r"""Plug-in discrete mutual information between binned codes and factors.

For discrete :math:`u, v` with joint counts :math:`n_{ab}`, margins :math:`n_a, n_b` and
:math:`N = \sum_{ab} n_{ab}`,

.. math::
    I(u; v) = \sum_{a,b:\ n_{ab} > 0} \frac{n_{ab}}{N}
        \Big(\log n_{ab} - \log N - \log(n_a n_b) + 2\log N\Big),

in nats, as ``sklearn.metrics.mutual_info_score`` computes it term by term (terms below machine
epsilon are zeroed; the sum is clipped at 0; a variable with a single observed value gives exactly 0).
The entropy is :math:`H(v) = I(v; v)`.

Two codings: :func:`discrete_mutual_information` calls scikit-learn per (latent, factor) pair (the
reference, as disentanglement_lib's ``discrete_mutual_info``); :func:`discrete_mutual_information_fast`
counts all pairs at once with one ``bincount`` in JAX. They agree term by term; only the order of
the final summation differs (``ROUNDOFF``).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array
from jaxtyping import Float, Int
from sklearn.metrics import mutual_info_score

from linvae.numeric._precision import float64

from ._backend import padded_size
from .histogram import histogram_bins, histogram_bins_fast


def discrete_mutual_information(
    bins: Int[np.ndarray, "n m"], factors: Int[np.ndarray, "n k"]
) -> Float[np.ndarray, "m k"]:
    """Matrix of :math:`I(\\mathrm{bin}_j; c_k)` in nats (scikit-learn reference).

    Args:
        bins: discretised codes, one column per latent.
        factors: class indices, one column per factor.

    Returns:
        ``(m, K)`` float64 mutual informations.
    """
    m, k = bins.shape[1], factors.shape[1]
    out = np.zeros((m, k))
    for i in range(m):
        for j in range(k):
            out[i, j] = mutual_info_score(factors[:, j], bins[:, i])
    return out


def discrete_entropy(factors: Int[np.ndarray, "n k"]) -> Float[np.ndarray, " k"]:
    """Plug-in entropy :math:`H(c_k) = I(c_k; c_k)` of each factor in nats (scikit-learn reference)."""
    return np.array([mutual_info_score(factors[:, j], factors[:, j]) for j in range(factors.shape[1])])


def _mi_from_counts(counts: Float[Array, "a b"]) -> Float[Array, ""]:
    """sklearn's term-by-term MI formula on one contingency table (zero rows/columns allowed)."""
    eps = jnp.finfo(counts.dtype).eps
    total = jnp.sum(counts)
    rows = jnp.sum(counts, axis=1)
    cols = jnp.sum(counts, axis=0)
    nz = counts > 0
    safe = jnp.where(nz, counts, 1.0)
    outer = rows[:, None] * cols[None, :]
    log_outer = -jnp.log(jnp.where(nz, outer, 1.0)) + jnp.log(total) + jnp.log(total)
    p = safe / total
    terms = p * (jnp.log(safe) - jnp.log(total)) + p * log_outer
    terms = jnp.where(nz & (jnp.abs(terms) >= eps), terms, 0.0)
    single = (jnp.sum(rows > 0) == 1) | (jnp.sum(cols > 0) == 1)
    return jnp.where(single, 0.0, jnp.maximum(jnp.sum(terms), 0.0))


@functools.partial(jax.jit, static_argnames=("num_u", "num_v"))
def _mi_matrix(
    u: Int[Array, "n m"], v: Int[Array, "n k"], weight: Float[Array, " n"], num_u: int, num_v: int
) -> Float[Array, "m k"]:
    n, m = u.shape
    k = v.shape[1]
    pair = (jnp.arange(m)[:, None] * k + jnp.arange(k)[None, :])[None]  # (1, m, k)
    flat = (pair * num_u + u[:, :, None]) * num_v + v[:, None, :]
    weights = jnp.broadcast_to(weight[:, None, None], flat.shape)
    counts = jnp.bincount(flat.ravel(), weights=weights.ravel(), length=m * k * num_u * num_v)
    return jax.vmap(jax.vmap(_mi_from_counts))(counts.reshape(m, k, num_u, num_v))


def _padded_mi_matrix(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """MI matrix with rows padded by zero-weight samples and label ranges rounded up to powers of two."""
    n = u.shape[0]
    pad = padded_size(n) - n
    weight = np.concatenate([np.ones(n), np.zeros(pad)])
    u = np.pad(u, ((0, pad), (0, 0)))
    v = np.pad(v, ((0, pad), (0, 0)))
    num_u = 1 << int(u.max()).bit_length()
    num_v = 1 << int(v.max()).bit_length()
    out = _mi_matrix(
        jnp.asarray(u, dtype=jnp.int32), jnp.asarray(v, dtype=jnp.int32), jnp.asarray(weight), num_u, num_v
    )
    return np.asarray(out, dtype=np.float64)


@float64
def discrete_mutual_information_fast(
    bins: Int[np.ndarray | Array, "n m"], factors: Int[np.ndarray | Array, "n k"]
) -> Float[np.ndarray, "m k"]:
    """Matrix of :math:`I(\\mathrm{bin}_j; c_k)` in nats (JAX; equal to the reference to ``ROUNDOFF``).

    Runs in float64 (a local x64 context); labels must be non-negative integers.

    Args:
        bins: discretised codes, one column per latent.
        factors: class indices, one column per factor.

    Returns:
        ``(m, K)`` float64 mutual informations.
    """
    bins = np.asarray(bins, dtype=np.int64)
    factors = np.asarray(factors, dtype=np.int64)
    return _padded_mi_matrix(bins, factors)


@float64
def discrete_entropy_fast(factors: Int[np.ndarray | Array, "n k"]) -> Float[np.ndarray, " k"]:
    """Plug-in entropy of each factor in nats (JAX; equal to :func:`discrete_entropy` to ``ROUNDOFF``)."""
    factors = np.asarray(factors, dtype=np.int64)
    return np.diagonal(_padded_mi_matrix(factors, factors)).copy()


def code_factor_information(
    codes: Float[np.ndarray, "n m"],
    factors: Int[np.ndarray, "n k"],
    *,
    num_bins: int,
    backend: str,
) -> tuple[Float[np.ndarray, "m k"], Float[np.ndarray, " k"]]:
    """Discrete MI between ``num_bins``-bin histogram codes and factors, and the factor entropies.

    Args:
        codes: float codes ``(n, m)``.
        factors: class indices ``(n, K)``.
        num_bins: equal-width bins per latent.
        backend: ``"reference"`` (numpy + scikit-learn) or ``"fast"`` (JAX, float64).

    Returns:
        ``(mi, entropy)``: the ``(m, K)`` MI matrix and the ``(K,)`` factor entropies, in nats.
    """
    if backend == "reference":
        bins = histogram_bins(codes, num_bins)
        return discrete_mutual_information(bins, factors), discrete_entropy(factors)
    if backend == "fast":
        bins = histogram_bins_fast(codes, num_bins)
        return discrete_mutual_information_fast(bins, factors), discrete_entropy_fast(factors)
    raise ValueError(f"backend must be 'reference' or 'fast'; got {backend!r}")
