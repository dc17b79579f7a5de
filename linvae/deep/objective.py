r"""The one configured objective of the deep VAEs: β-VAE and λβ-VAE (docs/theory.md §2.1 "Deep loss").

Per example, with :math:`z = \mu + \sqrt s\odot\varepsilon` (one reparameterised sample),
:math:`\hat x = \mathrm{mean}(\mathrm{dec}(z))` and the batch mean over examples,

.. math::
    \mathcal L = \underbrace{-\log p(x \mid z)}_{\rm NLL}
        + \beta\,\underbrace{\tfrac12\sum_k(\mu_k^2 + s_k - \log s_k - 1)}_{\rm KL}
        + \lambda\,\underbrace{\|\hat x - x\|_2^2}_{\rm L2},

* Bernoulli: NLL = BCE with logits summed over pixels, :math:`\hat x = \mathrm{sigmoid}(\mathrm{dec}(z))`;
* Gaussian (fixed variance :math:`\sigma_d^2`): NLL :math:`= \|x - \mathrm{dec}(z)\|^2/(2\sigma_d^2) +
  \tfrac d2\log 2\pi\sigma_d^2`, :math:`\hat x = \mathrm{dec}(z)`.

The L2 term uses the *same* sample z as the NLL (it is a second likelihood on the decoder mean, not a
weight penalty, docs/theory.md §2.1). β and λ are inputs per step, so any schedule or controller of
:mod:`linvae.numeric.schedules` drives β. KL is in nats, summed over latents, batch mean (trap 12).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import Array
from jaxtyping import Float, PRNGKeyArray

from linvae.deep.model import AbstractVAE

F32 = jnp.float32


class Terms(NamedTuple):
    """Batch-mean loss terms (nats per example; L2 summed over pixels)."""

    nll: Array
    kl: Array
    l2: Array


def decoder_mean(out: Array, likelihood: str) -> Array:
    """The decoder mean :math:`\\hat x`: sigmoid of the logits (Bernoulli) or the output (Gaussian)."""
    return jax.nn.sigmoid(out) if likelihood == "bernoulli" else out


def negative_log_likelihood(out: Array, x: Array, likelihood: str, obs_var: float) -> Array:
    """Per-example NLL summed over pixels (``out`` and ``x`` of the same shape, one example)."""
    if likelihood == "bernoulli":
        # BCE with logits: softplus(l) - x l, stable for any sign of l.
        return jnp.sum(jax.nn.softplus(out) - x * out)
    d = x.size
    return jnp.sum(jnp.square(x - out)) / (2.0 * obs_var) + 0.5 * d * math.log(2.0 * math.pi * obs_var)


def terms(
    model: AbstractVAE,
    x: Float[Array, "n H W C"],
    *,
    key: PRNGKeyArray,
    likelihood: str = "bernoulli",
    obs_var: float = 1.0,
) -> Terms:
    """Batch means of NLL, KL and L2 with one reparameterised sample per example.

    Args:
        model: the VAE.
        x: a batch of float32 observations (images in [0, 1], or real vectors shaped as images).
        key: the key of the reparameterisation noise.
        likelihood: ``"bernoulli"`` or ``"gaussian"``.
        obs_var: Gaussian decoder variance :math:`\\sigma_d^2`.
    """
    n = x.shape[0]
    mu, log_var = model.encode_batch(x)
    eps = jax.random.normal(key, mu.shape, F32)
    z = mu + jnp.exp(0.5 * log_var) * eps
    out = model.decode_batch(z)
    nll = jax.vmap(lambda o, xi: negative_log_likelihood(o, xi, likelihood, obs_var))(out, x)
    kl = 0.5 * jnp.sum(jnp.square(mu) + jnp.exp(log_var) - log_var - 1.0, axis=-1)
    l2 = jnp.sum(jnp.square(decoder_mean(out, likelihood) - x).reshape(n, -1), axis=-1)
    return Terms(jnp.mean(nll), jnp.mean(kl), jnp.mean(l2))


def objective(
    model: AbstractVAE,
    x: Float[Array, "n H W C"],
    beta: Array | float,
    lam: Array | float,
    *,
    key: PRNGKeyArray,
    likelihood: str = "bernoulli",
    obs_var: float = 1.0,
) -> tuple[Array, Terms]:
    r""":math:`\mathrm{NLL} + \beta\,\mathrm{KL} + \lambda\,\mathrm{L2}` and its terms (``has_aux`` form for ``jax.grad``).

    β-VAE: ``lam = 0``. λβ-VAE: ``lam > 0``. β may come from a schedule or a controller each step.
    """
    t = terms(model, x, key=key, likelihood=likelihood, obs_var=obs_var)
    beta = jnp.asarray(beta, F32)
    lam = jnp.asarray(lam, F32)
    return t.nll + beta * t.kl + lam * t.l2, t
