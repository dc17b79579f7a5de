r"""The linear-Gaussian ground truth :math:`x = \Gamma v + \sqrt{\sigma^2}\,\varepsilon` as a data set.

:math:`v \sim \mathcal N(0, \Sigma_V)` (s factors), :math:`\varepsilon \sim \mathcal N(0, I_d)`, so
:math:`\operatorname{Cov} x = \Gamma \Sigma_V \Gamma^\top + \sigma^2 I`: the model whose VAE optimum
``linvae.numeric`` computes in closed form. A deep VAE with linear layers trained on
:meth:`LinearGaussian.sample` must approach it.

Fitting the class-index interface. Factor :math:`j` is binned at the ``bins``-quantiles of its marginal
:math:`\mathcal N(0, \Sigma_{V,jj})`: class :math:`c_j = \lfloor B\,\Phi(v_j / \sqrt{\Sigma_{V,jj}})\rfloor`,
so each class has marginal probability 1/B. :meth:`~LinearGaussian.sample_factors` draws the classes of
a correlated :math:`v` (not uniform over the grid unless :math:`\Sigma_V` is diagonal), and
:meth:`~LinearGaussian.images` shows the noise-free :math:`\Gamma \bar v` at the bin centroids
:math:`\bar v_j = \mathbb E[v_j \mid c_j] = \sqrt{\Sigma_{V,jj}}\, B\,(\varphi(a) - \varphi(b))` for bin
edges :math:`a < b` in standard units. :meth:`~LinearGaussian.batch` returns noisy samples with the
classes of their own :math:`v`.

As uint8 images, :math:`x` is stored as ``round(128 + x / pixel_scale)`` clipped to 0..255, with
``pixel_scale`` = 4 standard deviations of the widest coordinate over 127 levels, so clipping affects
fewer than 1e-4 of the values; :meth:`~LinearGaussian.decode` inverts the map. Use :meth:`sample` for
the exact float32 observations.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import scipy.special
from jax import Array
from jaxtyping import Float, Int, PRNGKeyArray, UInt8

from linvae.deep.data.dataset import STAND_IN, AbstractDataset, Batch, Provenance
from linvae.deep.data.grid import FactorGrid

_CLIP_SDS = 4.0


class LinearGaussian(AbstractDataset):
    r"""Synthetic linear-Gaussian ground truth :math:`x = \Gamma v + \sigma\varepsilon`.

    Attributes:
        Sigma_V: factor covariance, (s, s) float32.
        Gamma: mixing matrix, (d, s) float32.
        sigma2: noise variance (a variance, not a standard deviation).
        chol: lower Cholesky factor of ``Sigma_V``.
        centroids: bin centroids of each factor in units of its standard deviation, (B,).
        pixel_scale: the uint8 step in data units.
    """

    Sigma_V: Float[Array, "s s"]
    Gamma: Float[Array, "d s"]
    sigma2: Float[Array, ""]
    chol: Float[Array, "s s"]
    centroids: Float[Array, " B"]
    pixel_scale: Float[Array, ""]
    name: str = eqx.field(static=True)
    grid: FactorGrid = eqx.field(static=True)
    image_shape: tuple[int, int, int] = eqx.field(static=True)
    provenance: Provenance = eqx.field(static=True)

    def __init__(
        self,
        Sigma_V,
        Gamma,
        sigma2,
        *,
        bins: int = 10,
        image_shape: tuple[int, int, int] | None = None,
    ) -> None:
        """Build from plain arrays, e.g. ``Sigma_V``, ``Gamma``, ``sigma2`` of a ``linvae.numeric`` problem.

        Args:
            Sigma_V: factor covariance (s, s), symmetric positive definite.
            Gamma: mixing matrix (d, s).
            sigma2: noise variance >= 0.
            bins: classes per factor (quantile bins), >= 2.
            image_shape: (H, W, C) with H W C = d to see x as an image; default (d, 1, 1), a vector.
        """
        S = np.asarray(Sigma_V, np.float64)
        G = np.asarray(Gamma, np.float64)
        s2 = float(np.asarray(sigma2))
        if S.ndim != 2 or S.shape[0] != S.shape[1]:
            raise ValueError(f"Sigma_V must be square (s, s); got shape {S.shape}")
        if G.ndim != 2 or G.shape[1] != S.shape[0]:
            raise ValueError(f"Gamma must be (d, s) with s = {S.shape[0]}; got shape {G.shape}")
        if not (np.all(np.isfinite(S)) and np.all(np.isfinite(G)) and np.isfinite(s2)) or s2 < 0:
            raise ValueError("Sigma_V, Gamma must be finite and sigma2 finite and >= 0")
        if bins < 2:
            raise ValueError(f"bins must be >= 2; got {bins}")
        try:
            L = np.linalg.cholesky(S)
        except np.linalg.LinAlgError:
            raise ValueError("Sigma_V must be symmetric positive definite") from None
        d, s = G.shape
        shape = (d, 1, 1) if image_shape is None else tuple(int(v) for v in image_shape)
        if len(shape) != 3 or int(np.prod(shape)) != d:
            raise ValueError(f"image_shape {image_shape} must be (H, W, C) with H*W*C = d = {d}")
        edges = scipy.special.ndtri(np.linspace(0.0, 1.0, bins + 1))
        pdf = np.exp(-0.5 * np.square(edges)) / np.sqrt(2 * np.pi)
        pdf[~np.isfinite(edges)] = 0.0
        centroids = bins * (pdf[:-1] - pdf[1:])
        sd_x = np.sqrt(np.max(np.diag(G @ S @ G.T)) + s2)
        self.Sigma_V = jnp.asarray(S, jnp.float32)
        self.Gamma = jnp.asarray(G, jnp.float32)
        self.sigma2 = jnp.asarray(s2, jnp.float32)
        self.chol = jnp.asarray(L, jnp.float32)
        self.centroids = jnp.asarray(centroids, jnp.float32)
        self.pixel_scale = jnp.asarray(_CLIP_SDS * max(sd_x, 1e-12) / 127.0, jnp.float32)
        self.name = "linear_gaussian"
        self.grid = FactorGrid(
            names=tuple(f"v{j}" for j in range(s)),
            sizes=(bins,) * s,
            values=(tuple(float(c) for c in centroids),) * s,
        )
        self.image_shape = shape  # type: ignore[assignment]
        self.provenance = Provenance(
            kind=STAND_IN, source=f"linvae.deep.data.linear_gaussian.LinearGaussian (synthetic, d={d}, s={s})"
        )

    @property
    def data_dim(self) -> int:
        """d, the dimension of x."""
        return self.Gamma.shape[0]

    @eqx.filter_jit
    def sample(self, key: PRNGKeyArray, n: int) -> tuple[Float[Array, "n d"], Float[Array, "n s"]]:
        """Exact draws: observations x (n, d) and factors v (n, s), float32."""
        kv, ke = jax.random.split(key)
        s = self.Sigma_V.shape[0]
        v = jax.random.normal(kv, (n, s), jnp.float32) @ self.chol.T
        eps = jax.random.normal(ke, (n, self.data_dim), jnp.float32)
        return v @ self.Gamma.T + jnp.sqrt(self.sigma2) * eps, v

    @eqx.filter_jit
    def classes(self, v: Float[Array, "n s"]) -> Int[Array, "n s"]:
        """Quantile-bin class of each factor value."""
        sd = jnp.sqrt(jnp.diagonal(self.Sigma_V)).reshape(1, -1)
        bins = self.grid.sizes[0]
        u = jax.scipy.special.ndtr(v / sd)
        return jnp.clip(jnp.floor(u * bins), 0, bins - 1).astype(jnp.int32)

    @eqx.filter_jit
    def encode(self, x: Float[Array, "n d"]) -> UInt8[Array, "n H W C"]:
        """uint8 image of observations: ``round(128 + x / pixel_scale)`` clipped, reshaped."""
        q = jnp.clip(jnp.round(128.0 + x / self.pixel_scale), 0.0, 255.0).astype(jnp.uint8)
        return q.reshape((x.shape[0], *self.image_shape))

    @eqx.filter_jit
    def decode(self, images: UInt8[Array, "n H W C"]) -> Float[Array, "n d"]:
        """Inverse of :meth:`encode` (up to rounding and clipping), float32."""
        q = jnp.asarray(images).reshape(images.shape[0], -1).astype(jnp.float32)
        return (q - 128.0) * self.pixel_scale

    @eqx.filter_jit
    def sample_factors(self, key: PRNGKeyArray, n: int) -> Int[Array, "n K"]:
        """Classes of ``v ~ N(0, Sigma_V)``."""
        s = self.Sigma_V.shape[0]
        v = jax.random.normal(key, (n, s), jnp.float32) @ self.chol.T
        return self.classes(v)

    @eqx.filter_jit
    def images(self, factors: Int[Array, "n K"]) -> UInt8[Array, "n H W C"]:
        """Noise-free ``Gamma v_bar`` at the bin centroids, encoded."""
        sd = jnp.sqrt(jnp.diagonal(self.Sigma_V)).reshape(1, -1)
        v_bar = self.centroids[jnp.asarray(factors).astype(jnp.int32)] * sd
        return self.encode(v_bar @ self.Gamma.T)

    @eqx.filter_jit
    def batch(self, key: PRNGKeyArray, n: int) -> Batch:
        """Noisy observations, encoded, with the classes of their own factors."""
        x, v = self.sample(key, n)
        return Batch(self.encode(x), self.classes(v))
