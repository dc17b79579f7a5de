r"""A data set seen at lower resolution: every image mean-pooled over ``factor`` x ``factor`` blocks.

The reduced configuration of the deep experiments (``DeepConfig.image_size = 32``) trains the conv
VAE on 32 x 32 images: each 64 x 64 image of the underlying set (real file or procedural stand-in)
is averaged over 2 x 2 pixel blocks and rounded back to uint8,

.. math::
    x'_{ij} = \mathrm{round}\Big(\tfrac14 \sum_{a, b \in \{0, 1\}} x_{2i + a,\, 2j + b}\Big),

so binary dSprites pixels become the five grey levels {0, 64, 128, 191, 255} (up to rounding) and the
sub-pixel positions of a sprite survive as grey levels. Factors, their distribution and the C-order
index are the underlying set's; the provenance says "mean-pooled" so no output can pass it off as
the published resolution.
"""

from __future__ import annotations

import equinox as eqx
import jax.numpy as jnp
from jax import Array
from jaxtyping import Int, PRNGKeyArray, UInt8

from linvae.deep.data.dataset import AbstractDataset, Batch, Provenance
from linvae.deep.data.grid import FactorGrid


def mean_pool(images: UInt8[Array, "n H W C"], factor: int) -> UInt8[Array, "n h w C"]:
    """Mean of each ``factor`` x ``factor`` pixel block, rounded to the nearest uint8 (half up)."""
    n, h, w, c = images.shape
    blocks = jnp.asarray(images).astype(jnp.uint32).reshape(n, h // factor, factor, w // factor, factor, c)
    total = blocks.sum(axis=(2, 4))
    area = factor * factor
    return ((total + area // 2) // area).astype(jnp.uint8)


class Pooled(AbstractDataset):
    """``base`` with every image mean-pooled by ``factor`` (a final implementation).

    Attributes:
        base: the full-resolution data set.
        factor: the block side (2 turns 64 x 64 into 32 x 32).
    """

    base: AbstractDataset
    factor: int = eqx.field(static=True)
    name: str = eqx.field(static=True)
    grid: FactorGrid = eqx.field(static=True)
    image_shape: tuple[int, int, int] = eqx.field(static=True)
    provenance: Provenance = eqx.field(static=True)

    def __init__(self, base: AbstractDataset, factor: int = 2) -> None:
        h, w, c = base.image_shape
        if factor < 1 or h % factor or w % factor:
            raise ValueError(f"pooling factor {factor} must divide the image size {h} x {w}")
        self.base = base
        self.factor = factor
        self.name = base.name
        self.grid = base.grid
        self.image_shape = (h // factor, w // factor, c)
        self.provenance = Provenance(
            kind=base.provenance.kind,
            source=f"{base.provenance.source}, mean-pooled {factor}x{factor} to {h // factor}x{w // factor}",
        )

    def sample_factors(self, key: PRNGKeyArray, n: int) -> Int[Array, "n K"]:
        """The underlying set's distribution."""
        return self.base.sample_factors(key, n)

    def images(self, factors: Int[Array, "n K"]) -> UInt8[Array, "n h w C"]:
        """Pooled images of class indices."""
        return mean_pool(self.base.images(factors), self.factor)

    def batch(self, key: PRNGKeyArray, n: int) -> Batch:
        """A batch of the underlying set, pooled."""
        b = self.base.batch(key, n)
        return Batch(mean_pool(b.images, self.factor), b.factors)
