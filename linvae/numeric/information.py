r"""Exact Gaussian information measures of the linear model (docs/theory.md §8).

.. math::
    I(X;Y) = \tfrac12\log\frac{|\Sigma_X|}{|\Sigma_W|},\qquad
    I(X;V) = \tfrac12\log\frac{|B\Sigma_YB^\top + \Sigma_W|}{|\sigma^2BB^\top + \Sigma_W|},

pairwise :math:`I(x_i; v_j) = -\tfrac12\log(1 - \rho_{ij}^2)` with
:math:`\rho_{ij}^2 = (\Sigma_{XV})_{ij}^2 / ((\Sigma_X)_{ii}(\Sigma_V)_{jj})`, :math:`\Sigma_{XV} = B\Gamma\Sigma_V`;
linear SAP (mean over factors of the top-two gap of :math:`\rho^2_{\cdot j}`) and :math:`I_m` (maximum-weight
one-to-one matching of latents to factors, in nats). All in nats.

Theorems: ``mi-chain`` (T10), ``water-filling-information`` (T13), ``rotation-invariance`` (T16).
"""

from __future__ import annotations

import functools
import itertools
import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import scipy.optimize
from jax import Array

from linvae.numeric._linalg import logdet_spd, sym
from linvae.numeric._precision import float64
from linvae.numeric._validation import check_state
from linvae.numeric.loss import sigma_x
from linvae.numeric.model import State
from linvae.numeric.problem import Problem

#: Largest number of injective latent->factor maps enumerated for the in-JAX matching; above it,
#: :math:`I_m` is solved on the host with the Hungarian algorithm. 10 latents x 5 factors = 30,240.
_MAX_ENUMERATED_MATCHINGS = 200_000


class Information(NamedTuple):
    """Information measures of a state, in nats.

    Attributes:
        mi_xy: :math:`I(X;Y)`.
        mi_xv: :math:`I(X;V)`.
        pairwise: :math:`I(x_i; v_j)`, shape (m, s).
        sap: linear SAP score (dimensionless, in [0, 1]).
        i_m: :math:`I_m`, the maximum-weight matching of ``pairwise`` (nats, unnormalised).
    """

    mi_xy: Array
    mi_xv: Array
    pairwise: Array
    sap: Array
    i_m: Array


@float64
def squared_correlations(prob: Problem, B: Array, Sigma_W: Array) -> Array:
    r""":math:`\rho_{ij}^2` between latent :math:`x_i` and factor :math:`v_j`, shape (m, s)."""
    Sx = sigma_x(prob.Sigma_Y, B, Sigma_W)
    Sxv = B @ prob.Gamma @ prob.Sigma_V
    denom = jnp.diagonal(Sx)[:, None] * jnp.diagonal(prob.Sigma_V)[None, :]
    return jnp.clip(Sxv**2 / denom, 0.0, 1.0)


@float64
def sap_score(rho2: Array) -> Array:
    """Linear SAP: mean over factors of the gap between the two largest :math:`\\rho^2` over latents."""
    top = jnp.sort(rho2, axis=0)[::-1]
    second = top[1] if rho2.shape[0] > 1 else jnp.zeros_like(top[0])
    return jnp.mean(top[0] - second)


def _injective_maps(m: int, s: int) -> np.ndarray:
    """All one-to-one matchings of min(m, s) pairs, as index arrays (rows: latent for each factor)."""
    if s <= m:
        return np.array(list(itertools.permutations(range(m), s)), dtype=np.int32).reshape(-1, s)
    # More factors than latents: enumerate factor choices per latent and transpose the roles.
    return np.array(list(itertools.permutations(range(s), m)), dtype=np.int32).reshape(-1, m)


@float64
def matching_count(m: int, s: int) -> int:
    """Number of injective maps between latents and factors, ``P(max, min)``."""
    hi, lo = max(m, s), min(m, s)
    return math.perm(hi, lo)


@float64
def max_matching(pairwise: Array) -> Array:
    """:math:`I_m`: maximum total weight of a one-to-one latent-factor matching (exact, jit/vmap-able).

    Enumerates all injective maps when there are few (10 latents x 5 factors: 30,240), which is exact
    and runs inside ``jit``/``vmap``; callers with larger shapes use :func:`max_matching_host`.
    """
    m, s = pairwise.shape[-2:]
    maps = jnp.asarray(_injective_maps(m, s))
    if s <= m:  # maps[k, j] = latent matched to factor j
        totals = jnp.sum(pairwise[maps, jnp.arange(s)[None, :]], axis=-1)
    else:  # maps[k, i] = factor matched to latent i
        totals = jnp.sum(pairwise[jnp.arange(m)[None, :], maps], axis=-1)
    return jnp.max(totals)


@float64
def max_matching_host(pairwise) -> float:
    """:math:`I_m` by the Hungarian algorithm (``scipy.optimize.linear_sum_assignment``) on the host."""
    P = np.asarray(pairwise, dtype=np.float64)
    rows, cols = scipy.optimize.linear_sum_assignment(-P)
    return float(P[rows, cols].sum())


@float64
def information_terms(prob: Problem, B: Array, Sigma_W: Array, *, enumerate_matchings: bool = True):
    """All measures for one state, on raw arrays (jit- and vmap-friendly when enumerating)."""
    Sx = sigma_x(prob.Sigma_Y, B, Sigma_W)
    ld_w = logdet_spd(Sigma_W)
    mi_xy = 0.5 * (logdet_spd(Sx) - ld_w)
    mi_xv = 0.5 * (logdet_spd(Sx) - logdet_spd(sym(prob.sigma2 * B @ B.T + Sigma_W)))
    rho2 = squared_correlations(prob, B, Sigma_W)
    pairwise = -0.5 * jnp.log1p(-rho2)
    sap = sap_score(rho2)
    i_m = max_matching(pairwise) if enumerate_matchings else jnp.nan
    return Information(mi_xy, mi_xv, pairwise, sap, i_m)


@functools.partial(jax.jit, static_argnums=(3, 4))
def _batched_information(prob: Problem, B: Array, W: Array, enumerate_matchings: bool, batch_dims: int):
    fn = lambda b, w: information_terms(prob, b, w, enumerate_matchings=enumerate_matchings)  # noqa: E731
    for _ in range(batch_dims):
        fn = jax.vmap(fn)
    return fn(B, W)


@float64
def information(prob: Problem, st: State) -> Information:
    r"""Gaussian information measures of a state: :math:`I(X;Y)`, :math:`I(X;V)`, pairwise MI, SAP, :math:`I_m`.

    Batched states (leading axes on ``B`` and ``Sigma_W``) give batched measures.

    Theorem: water-filling-information, mi-chain, rotation-invariance
    """
    check_state(st, prob.n)
    B = jnp.asarray(st.B, jnp.float64)
    W = jnp.asarray(st.Sigma_W, jnp.float64)
    m, s = B.shape[-2], prob.s
    small = matching_count(m, s) <= _MAX_ENUMERATED_MATCHINGS
    info = _batched_information(prob, B, W, small, B.ndim - 2)
    if not small:
        flat = np.asarray(info.pairwise).reshape(-1, m, s)
        i_m = np.array([max_matching_host(p) for p in flat]).reshape(B.shape[:-2])
        info = info._replace(i_m=jnp.asarray(i_m))
    return info
