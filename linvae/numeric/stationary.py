r"""Closed-form stationary points: collapse, reverse water-filling, Lucas et al., Tipping–Bishop.

All are returned as a :class:`~linvae.numeric.model.State` (``steps = 0``, ``converged = True``), with
the same fields as a run of the alternating map, so losses and information measures apply unchanged.
The eigen-directions of :math:`\Sigma_Y` are :math:`(\mu_i, u_i)`, descending; ``R`` is the free rotation
:math:`R \in O(m)` of the latent space (identity by default; a signed permutation for the diagonal
encoder, where only those keep :math:`\Sigma_W` diagonal).

Theorems: ``collapse-limit`` (T8), ``water-filling`` (T12), ``water-filling-information`` (T13),
``lucas-threshold`` (T17), ``learned-isotropic`` (T19).
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
from jax import Array

from linvae.numeric._linalg import sym
from linvae.numeric._precision import float64
from linvae.numeric._validation import as_finite_array, check_beta_lam, check_latent_dim, check_positive
from linvae.numeric.model import State
from linvae.numeric.problem import Problem


def _closed(B, Sigma_W, A, Sigma_Z) -> State:
    return State(
        B, sym(Sigma_W), A, sym(Sigma_Z), jnp.asarray(0, jnp.int32), jnp.asarray(True), jnp.asarray(0.0)
    )


def _rotation(R, m: int) -> Array:
    if R is None:
        return jnp.eye(m)
    R = as_finite_array("R", R, ndim=2)
    if R.shape != (m, m) or np.linalg.norm(R.T @ R - np.eye(m)) > 1e-10 * m:
        raise ValueError(f"R must be an orthogonal ({m}, {m}) matrix")
    return jnp.asarray(R)


def _from_directions(prob: Problem, b: Array, w: Array, a: Array, z: Array, R: Array) -> State:
    """Assemble ``B = R diag(b) U_m^T``, ``Sigma_W = R diag(w) R^T``, ``A = U_m diag(a) R^T``,
    ``Sigma_Z = U diag(z) U^T`` from per-direction values (b, w, a of length m; z of length n)."""
    m = b.shape[0]
    Um = prob.U[:, :m]
    B = R @ (b[:, None] * Um.T)
    Sigma_W = (R * w[None, :]) @ R.T
    A = (Um * a[None, :]) @ R.T
    Sigma_Z = (prob.U * z[None, :]) @ prob.U.T
    return _closed(B, Sigma_W, A, Sigma_Z)


@float64
def collapsed(prob: Problem, m: int) -> State:
    r"""The collapsed point :math:`(B, \Sigma_W, A, \Sigma_Z) = (0, I_m, 0, \Sigma_Y)` (docs/theory.md §3.5).

    A fixed point of the map and the flow for every (β, λ); the global minimum of D1 for λ = 0, β > 1.

    Theorem: collapse-limit
    """
    m = check_latent_dim(m, prob.n)
    n = prob.n
    return _closed(jnp.zeros((m, n)), jnp.eye(m), jnp.zeros((n, m)), prob.Sigma_Y)


@float64
def water_level(beta, lam) -> float:
    r"""The λβ water level :math:`D = (\beta - 1) / (2\lambda)` (``inf`` at λ = 0)."""
    return float("inf") if lam == 0 else (beta - 1.0) / (2.0 * lam)


@float64
def water_filling(prob: Problem, beta, lam, m: int, *, R=None) -> State:
    r"""The reverse water-filling point of the λβ-VAE with learned full decoder covariance (§3.9).

    Water level :math:`D = (\beta - 1)/(2\lambda)`; active set :math:`\mathcal S = \{i \le m : \mu_i > D\}`;
    per active direction

    .. math::
        w_i = D/\mu_i,\quad b_i = \sqrt{(1 - w_i)/\mu_i},\quad a_i = \sqrt{\mu_i - D},\quad z_i = D ;

    unused latents have :math:`b = a = 0`, :math:`w = 1`; inactive directions keep :math:`z_i = \mu_i`.
    With λ = 0 (D = ∞) this is the collapsed point. It is the global minimum of
    :math:`\mathcal L_{\lambda\beta}` for β > 1 (T12) and has :math:`\Sigma_X = I_m` exactly.

    Args:
        prob: the data model.
        beta: KL weight; must exceed 1 (β ≤ 1 has no minimiser, docs/theory.md §3.10).
        lam: L2 weight λ ≥ 0.
        m: latent dimension.
        R: latent rotation in :math:`O(m)` (identity if omitted).

    Theorem: water-filling
    """
    beta, lam = check_beta_lam(beta, lam)
    m = check_latent_dim(m, prob.n)
    if beta <= 1:
        raise ValueError(
            f"water_filling needs beta > 1; got beta = {beta}: at beta = 1 the infimum is not attained and "
            f"for beta < 1 the loss is unbounded below (docs/theory.md §3.10)"
        )
    if lam == 0:
        return collapsed(prob, m)
    D = water_level(beta, lam)
    mu = prob.mu
    mu_m = mu[:m]
    active = mu_m > D
    w = jnp.where(active, D / mu_m, 1.0)
    b = jnp.where(active, jnp.sqrt(jnp.clip(1.0 - w, 0.0) / mu_m), 0.0)
    a = jnp.where(active, jnp.sqrt(jnp.clip(mu_m - D, 0.0)), 0.0)
    z = jnp.where(jnp.arange(prob.n) < m, jnp.where(mu > D, D, mu), mu)
    return _from_directions(prob, b, w, a, z, _rotation(R, m))


@float64
def lucas(prob: Problem, beta, lam, m: int, sigma_d2, *, R=None) -> State:
    r"""Global optimum of the β-VAE with fixed isotropic decoder variance (D3; Lucas et al. 2019, §4).

    :math:`\theta = \beta\sigma_{\rm eff}^2` with :math:`\sigma_{\rm eff}^{-2} = \sigma_d^{-2} + 2\lambda`;
    :math:`a_i = \sqrt{(\mu_i - \theta)_+}`, :math:`b_i = a_i/\mu_i`, :math:`w_i = \min(1, \theta/\mu_i)` for
    :math:`i \le m`, :math:`\Sigma_Z = \sigma_d^2 I`. Latent i is collapsed iff :math:`\mu_i \le \theta`.

    Theorem: lucas-threshold
    """
    beta, lam = check_beta_lam(beta, lam)
    m = check_latent_dim(m, prob.n)
    sigma_d2 = check_positive("sigma_d2", sigma_d2)
    theta = beta / (1.0 / sigma_d2 + 2.0 * lam)
    mu_m = prob.mu[:m]
    a = jnp.sqrt(jnp.clip(mu_m - theta, 0.0))
    b = a / mu_m
    w = jnp.minimum(1.0, theta / mu_m)
    return _from_directions(prob, b, w, a, jnp.full((prob.n,), sigma_d2), _rotation(R, m))


@float64
def tipping_bishop(prob: Problem, m: int, *, R=None) -> State:
    r"""Probabilistic PCA (Tipping & Bishop 1999) as a linear VAE with learned isotropic variance (D2, β = 1).

    :math:`\sigma_d^2 = \frac1{n-m}\sum_{j>m}\mu_j`, :math:`A = U_m(\mathrm{diag}(\mu_{1..m}) - \sigma_d^2 I)_+^{1/2}R^\top`,
    and the encoder is the exact posterior :math:`B = M^{-1}A^\top`, :math:`\Sigma_W = \sigma_d^2M^{-1}`,
    :math:`M = A^\top A + \sigma_d^2 I`. Requires ``m < n``.

    Theorem: learned-isotropic
    """
    m = check_latent_dim(m, prob.n)
    if m >= prob.n:
        raise ValueError(f"tipping_bishop needs m < n (the noise variance averages mu_(m+1..n)); got m = {m}")
    s2 = jnp.mean(prob.mu[m:])
    st = lucas(prob, 1.0, 0.0, m, float(s2), R=R)
    return st
