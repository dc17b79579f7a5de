r"""Equal-width histogram discretisation of codes (disentanglement_lib's ``_histogram_discretize``).

For latent :math:`j` with sample range :math:`[a_j, b_j]` and :math:`B` bins, the left edges are
:math:`e_i = i\,\delta_j + a_j`, :math:`\delta_j = (b_j - a_j)/B`, :math:`i = 0..B-1` (``np.histogram``'s
``linspace`` edges; a constant latent gets the range :math:`[a_j - 1/2, a_j + 1/2]`), and

.. math::
    \mathrm{bin}(z) = \#\{i : e_i \le z\} \in \{1, \dots, B\},

which is ``np.digitize(z, edges[:-1])``: the maximum lands in bin :math:`B`, the minimum in bin 1.

Two codings: :func:`histogram_bins` is the numpy reference; :func:`histogram_bins_fast` counts edges
in JAX and returns the same integers.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array
from jaxtyping import Float, Int

from linvae.numeric._precision import float64

from ._backend import padded_size

NUM_BINS = 20
"""disentanglement_lib's ``discretizer.num_bins`` for MIG (unsupervised_study_v1)."""


def histogram_bins(codes: Float[np.ndarray, "n m"], num_bins: int = NUM_BINS) -> Int[np.ndarray, "n m"]:
    """Bin index in ``1..num_bins`` of every code, per latent (numpy reference).

    Args:
        codes: float codes, one column per latent.
        num_bins: number of equal-width bins over each latent's sample range.

    Returns:
        ``int64 (n, m)`` bin indices.
    """
    codes = np.asarray(codes, dtype=np.float64)
    out = np.empty(codes.shape, dtype=np.int64)
    for j in range(codes.shape[1]):
        edges = np.histogram(codes[:, j], num_bins)[1]
        out[:, j] = np.digitize(codes[:, j], edges[:-1])
    return out


@float64
def histogram_bins_fast(
    codes: Float[np.ndarray | Array, "n m"], num_bins: int = NUM_BINS
) -> Int[Array, "n m"]:
    """Bin index in ``1..num_bins`` of every code, per latent (JAX; equal to :func:`histogram_bins`).

    The ranges are reduced in JAX; the ``num_bins`` edges per latent are computed on the host with
    ``np.linspace`` exactly as ``np.histogram`` does (XLA rewrites ``x / 20`` as ``x * 0.05``, which
    is not correctly rounded and would move edges that coincide with data); the counting of edges
    below each code, the O(n m B) part, runs in JAX, in float64 (a local x64 context).

    Args:
        codes: codes, one column per latent (computed in float64).
        num_bins: number of equal-width bins over each latent's sample range.

    Returns:
        ``int32 (n, m)`` bin indices.
    """
    codes = jnp.asarray(codes, dtype=jnp.float64)
    lo, hi = (np.asarray(v) for v in _range(codes))
    constant = lo == hi
    lo = np.where(constant, lo - 0.5, lo)
    hi = np.where(constant, hi + 0.5, hi)
    edges = np.stack([np.linspace(a, b, num_bins + 1)[:-1] for a, b in zip(lo, hi, strict=True)], axis=1)
    n = codes.shape[0]
    padded = jnp.pad(codes, ((0, padded_size(n) - n), (0, 0)))
    return _count_edges(padded, jnp.asarray(edges))[:n]


@jax.jit
def _range(codes: Float[Array, "n m"]) -> tuple[Float[Array, " m"], Float[Array, " m"]]:
    return jnp.min(codes, axis=0), jnp.max(codes, axis=0)


@jax.jit
def _count_edges(codes: Float[Array, "n m"], edges: Float[Array, "b m"]) -> Int[Array, "n m"]:
    return jnp.sum(codes[:, None, :] >= edges[None, :, :], axis=1, dtype=jnp.int32)
