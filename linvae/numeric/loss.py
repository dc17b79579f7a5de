r"""Exact population losses of the linear-Gaussian (λβ-)VAE and their closed-form gradients.

docs/theory.md §2.1 and §3.1. With :math:`\Sigma_X = B\Sigma_YB^\top + \Sigma_W`,

.. math::
    E = \Sigma_Y - AB\Sigma_Y - \Sigma_YB^\top A^\top + A\Sigma_XA^\top,\qquad
    \mathcal R = \tfrac12\big[\operatorname{tr}(\Sigma_Z^{-1}E) + \log|\Sigma_Z| + n\log2\pi\big],

.. math::
    \mathcal K = \tfrac12\big[\operatorname{tr}\Sigma_X - \log|\Sigma_W| - m\big],\qquad
    \mathcal L_{\lambda\beta} = \mathcal R + \beta\mathcal K + \lambda\operatorname{tr}E .

Theorems: ``population-loss`` (T1), ``matrix-gradients`` (T2).
"""

from __future__ import annotations

import functools
import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import Array

from linvae.numeric._linalg import logdet_spd, solve_spd, sym
from linvae.numeric._precision import float64
from linvae.numeric._validation import check_beta_lam, check_state
from linvae.numeric.model import D1, State, Variant
from linvae.numeric.problem import Problem


class Losses(NamedTuple):
    """Loss terms, per data point, in nats.

    Attributes:
        recon: the Gaussian negative log-likelihood :math:`\\mathcal R` (the authors' "reconstruction error").
        kl: :math:`\\mathcal K`, the expected KL to the prior.
        l2: :math:`\\operatorname{tr}E = \\mathbb E\\|Y - AX\\|^2`.
        total: :math:`\\mathcal R + \\beta\\mathcal K + \\lambda\\operatorname{tr}E`.
    """

    recon: Array
    kl: Array
    l2: Array
    total: Array


@float64
def sigma_x(Sigma_Y: Array, B: Array, Sigma_W: Array) -> Array:
    r"""Aggregate-posterior covariance :math:`\Sigma_X = B\Sigma_YB^\top + \Sigma_W`."""
    return sym(B @ Sigma_Y @ B.T + Sigma_W)


@float64
def reconstruction_moment(Sigma_Y: Array, B: Array, Sigma_W: Array, A: Array) -> Array:
    r""":math:`E = \mathbb E[(Y - AX)(Y - AX)^\top] = (I - AB)\Sigma_Y(I - AB)^\top + A\Sigma_WA^\top`."""
    n = Sigma_Y.shape[-1]
    R = jnp.eye(n, dtype=Sigma_Y.dtype) - A @ B
    return sym(R @ Sigma_Y @ R.T + A @ Sigma_W @ A.T)


@float64
def loss_terms(Sigma_Y: Array, B: Array, Sigma_W: Array, A: Array, Sigma_Z: Array, beta, lam) -> Losses:
    """The loss terms on raw arrays (jit-, vmap- and grad-friendly; no validation)."""
    n, m = A.shape
    E = reconstruction_moment(Sigma_Y, B, Sigma_W, A)
    recon = 0.5 * (jnp.trace(solve_spd(Sigma_Z, E)) + logdet_spd(Sigma_Z) + n * math.log(2.0 * math.pi))
    kl = 0.5 * (jnp.trace(sigma_x(Sigma_Y, B, Sigma_W)) - logdet_spd(Sigma_W) - m)
    l2 = jnp.trace(E)
    return Losses(recon, kl, l2, recon + beta * kl + lam * l2)


@float64
def objective(B: Array, Sigma_W: Array, A: Array, Sigma_Z: Array, Sigma_Y: Array, beta, lam) -> Array:
    r""":math:`\mathcal L_{\lambda\beta}` as a function of the parameters (for ``jax.grad``)."""
    return loss_terms(Sigma_Y, B, Sigma_W, A, Sigma_Z, beta, lam).total


@float64
def losses(prob: Problem, st: State, beta, lam=0.0) -> Losses:
    r"""Exact population loss terms of a state (docs/theory.md §2.1).

    Args:
        prob: the data model.
        st: a state (from :func:`alternating`, a closed form, or built by hand).
        beta: KL weight :math:`\beta > 0`.
        lam: weight :math:`\lambda \ge 0` of the auxiliary L2 reconstruction term.

    Returns:
        :class:`Losses` with ``recon`` (:math:`\mathcal R`), ``kl``, ``l2`` (:math:`\operatorname{tr}E`), ``total``.
        Batched states (leading axes on every field) give batched losses.

    Theorem: population-loss
    """
    beta, lam = check_beta_lam(beta, lam)
    check_state(st, prob.n)
    params = [jnp.asarray(x, jnp.float64) for x in st[:4]]
    return _batched_losses(prob.Sigma_Y, *params, beta, lam, params[0].ndim - 2)


@functools.partial(jax.jit, static_argnums=(7,))
def _batched_losses(Sigma_Y, B, W, A, Z, beta, lam, batch_dims: int) -> Losses:
    fn = lambda B, W, A, Z: loss_terms(Sigma_Y, B, W, A, Z, beta, lam)  # noqa: E731
    for _ in range(batch_dims):
        fn = jax.vmap(fn)
    return fn(B, W, A, Z)


class Gradients(NamedTuple):
    r"""Gradients of :math:`\mathcal L_{\lambda\beta}` (symmetric ones for the covariances, §3.1).

    ``Sigma_Z`` holds the (n, n) matrix gradient for D1, the scalar derivative with respect to
    :math:`\sigma_d^2` for D2, and zeros for D3 (no decoder-covariance parameter). For the diagonal
    encoder (E2) ``Sigma_W`` keeps only the diagonal.
    """

    B: Array
    Sigma_W: Array
    A: Array
    Sigma_Z: Array


@float64
def gradients_closed_form(
    Sigma_Y: Array, B: Array, Sigma_W: Array, A: Array, Sigma_Z: Array, beta, lam, variant: Variant = D1
) -> Gradients:
    r"""The closed-form gradients of docs/theory.md §3.1, with :math:`N = \Sigma_Z^{-1} + 2\lambda I`.

    .. math::
        \partial_B = (A^\top NA + \beta I)B\Sigma_Y - A^\top N\Sigma_Y,\quad
        \partial_{\Sigma_W} = \tfrac12A^\top NA + \tfrac\beta2(I - \Sigma_W^{-1}),

    .. math::
        \partial_A = N(A\Sigma_X - \Sigma_YB^\top),\quad
        \partial_{\Sigma_Z} = \tfrac12\Sigma_Z^{-1}(\Sigma_Z - E)\Sigma_Z^{-1},\quad
        \partial_{\sigma_d^2} = \frac n{2\sigma_d^2} - \frac{\operatorname{tr}E}{2\sigma_d^4}.

    Theorem: matrix-gradients
    """
    n, m = A.shape
    In, Im = jnp.eye(n, dtype=A.dtype), jnp.eye(m, dtype=A.dtype)
    NA = solve_spd(Sigma_Z, A) + 2.0 * lam * A
    H = sym(A.T @ NA)
    gB = (H + beta * Im) @ B @ Sigma_Y - NA.T @ Sigma_Y
    gW = 0.5 * H + 0.5 * beta * (Im - solve_spd(Sigma_W, Im))
    gW = sym(gW)
    if variant.encoder == "diagonal":
        gW = jnp.diag(jnp.diagonal(gW))
    N = solve_spd(Sigma_Z, In) + 2.0 * lam * In
    gA = N @ (A @ sigma_x(Sigma_Y, B, Sigma_W) - Sigma_Y @ B.T)
    E = reconstruction_moment(Sigma_Y, B, Sigma_W, A)
    if variant.decoder == "full":
        Zi = solve_spd(Sigma_Z, In)
        gZ = sym(0.5 * Zi @ (Sigma_Z - E) @ Zi)
    elif variant.decoder == "isotropic":
        s2 = Sigma_Z[0, 0]
        gZ = n / (2.0 * s2) - jnp.trace(E) / (2.0 * s2**2)
    else:
        gZ = jnp.zeros((), dtype=A.dtype)
    return Gradients(gB, gW, gA, gZ)


@float64
def cholesky_gradient(G: Array, L: Array) -> Array:
    r"""Chain rule for :math:`\Sigma = LL^\top (+\epsilon I)`: :math:`\partial_L = \operatorname{tril}(2\,G L)`.

    ``G`` is the symmetric gradient with respect to :math:`\Sigma` (docs/theory.md §3.1).
    """
    return jnp.tril(2.0 * G @ L)


@float64
def gradients(prob: Problem, st: State, beta, lam=0.0, variant: Variant = D1) -> Gradients:
    """Closed-form gradients of :math:`\\mathcal L_{\\lambda\\beta}` at a state (docs/theory.md §3.1).

    Theorem: matrix-gradients
    """
    beta, lam = check_beta_lam(beta, lam)
    check_state(st, prob.n)
    args = [jnp.asarray(x, jnp.float64) for x in st[:4]]
    return _gradients_jit(prob.Sigma_Y, *args, beta, lam, variant)


_gradients_jit = jax.jit(gradients_closed_form, static_argnames=("variant",))
