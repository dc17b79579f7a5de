r"""Factor grids: names, sizes and values of a ground-truth data set, and the mixed-radix index.

Every data set here enumerates its images in C order over its factors, last factor fastest:

.. math::
    i = \sum_k c_k \prod_{l > k} K_l, \qquad c_k \in \{0, \dots, K_k - 1\},

so row ``i`` of a stored array is the image of class indices ``c = unravel(i)``. dSprites, Shapes3D
and MPI3D-real are all stored this way (``docs/data.md``).
"""

from __future__ import annotations

import dataclasses
import math

import jax.numpy as jnp
import numpy as np
from jax import Array
from jaxtyping import Int


@dataclasses.dataclass(frozen=True, kw_only=True)
class FactorGrid:
    """The factors of a data set: names, number of classes, and the value each class stands for.

    Attributes:
        names: factor names, in storage order.
        sizes: number of classes of each factor.
        values: for each factor, the value of each class (a tuple of floats or of labels).
    """

    names: tuple[str, ...]
    sizes: tuple[int, ...]
    values: tuple[tuple[float | str, ...], ...]

    def __post_init__(self) -> None:
        if not (len(self.names) == len(self.sizes) == len(self.values)):
            raise ValueError(
                f"names, sizes and values must have one entry per factor; got {len(self.names)},"
                f" {len(self.sizes)} and {len(self.values)}"
            )
        for name, size, vals in zip(self.names, self.sizes, self.values, strict=True):
            if size < 1 or len(vals) != size:
                raise ValueError(f"factor {name!r}: size {size} but {len(vals)} values")

    @property
    def num_factors(self) -> int:
        """Number of factors K."""
        return len(self.sizes)

    @property
    def num_images(self) -> int:
        """Number of grid points, the product of the sizes."""
        return math.prod(self.sizes)

    @property
    def strides(self) -> tuple[int, ...]:
        """C-order strides: how far the flat index moves per class step of each factor."""
        out = [1] * len(self.sizes)
        for k in range(len(self.sizes) - 2, -1, -1):
            out[k] = out[k + 1] * self.sizes[k + 1]
        return tuple(out)

    def with_sizes(self, sizes: tuple[int, ...]) -> FactorGrid:
        """The same factors on a coarser or finer grid (numeric values re-spaced linearly).

        Used for tiny test files of the real formats; label-valued factors keep their first labels
        or are numbered past the end.
        """
        if len(sizes) != self.num_factors:
            raise ValueError(f"expected {self.num_factors} sizes for {self.names}; got {sizes}")
        values = []
        for vals, size in zip(self.values, sizes, strict=True):
            if all(isinstance(v, float) for v in vals):
                lo, hi = float(vals[0]), float(vals[-1])
                values.append(tuple(float(v) for v in np.linspace(lo, hi, size)) if size > 1 else (lo,))
            else:
                values.append(tuple(vals[i] if i < len(vals) else f"class {i}" for i in range(size)))
        return FactorGrid(names=self.names, sizes=tuple(int(s) for s in sizes), values=tuple(values))


def index_to_factors(index: Int[Array, " n"], sizes: tuple[int, ...]) -> Int[Array, "n K"]:
    """Class indices of flat C-order indices (last factor fastest), as int32.

    >>> index_to_factors(jnp.array([0, 7]), (2, 4)).tolist()
    [[0, 0], [1, 3]]
    """
    index = jnp.asarray(index).astype(jnp.int32)
    cols = []
    for size in reversed(sizes):
        cols.append(index % size)
        index = index // size
    return jnp.stack(cols[::-1], axis=-1).astype(jnp.int32)


def factors_to_index(factors: Int[Array, "n K"], sizes: tuple[int, ...]) -> Int[Array, " n"]:
    """Flat C-order indices of class indices, as int32 (the inverse of :func:`index_to_factors`).

    >>> factors_to_index(jnp.array([[1, 3]]), (2, 4)).tolist()
    [7]
    """
    factors = jnp.asarray(factors).astype(jnp.int32)
    if factors.shape[-1] != len(sizes):
        raise ValueError(f"factors have {factors.shape[-1]} columns; the grid has {len(sizes)} factors")
    index = jnp.zeros(factors.shape[:-1], jnp.int32)
    for k, size in enumerate(sizes):
        index = index * size + factors[..., k]
    return index


DSPRITES = FactorGrid(
    names=("shape", "scale", "orientation", "posX", "posY"),
    sizes=(3, 6, 40, 32, 32),
    values=(
        ("square", "ellipse", "heart"),
        tuple(float(v) for v in np.linspace(0.5, 1.0, 6)),
        tuple(float(v) for v in np.linspace(0.0, 2 * np.pi, 40)),
        tuple(float(v) for v in np.linspace(0.0, 1.0, 32)),
        tuple(float(v) for v in np.linspace(0.0, 1.0, 32)),
    ),
)
"""dSprites without its size-1 ``color`` factor (MIG would divide by its zero entropy)."""

SHAPES3D = FactorGrid(
    names=("floor_hue", "wall_hue", "object_hue", "scale", "shape", "orientation"),
    sizes=(10, 10, 10, 8, 4, 15),
    values=(
        tuple(i / 10 for i in range(10)),
        tuple(i / 10 for i in range(10)),
        tuple(i / 10 for i in range(10)),
        tuple(float(v) for v in np.linspace(0.75, 1.25, 8)),
        ("cube", "cylinder", "sphere", "capsule"),
        tuple(float(v) for v in np.linspace(-30.0, 30.0, 15)),
    ),
)
"""Shapes3D: hues as fractions of the colour wheel, scale, shape, camera azimuth in degrees."""

MPI3D = FactorGrid(
    names=(
        "object_color",
        "object_shape",
        "object_size",
        "camera_height",
        "background_color",
        "horizontal_axis",
        "vertical_axis",
    ),
    sizes=(6, 6, 2, 3, 3, 40, 40),
    values=(
        ("white", "green", "red", "blue", "brown", "olive"),
        ("cone", "cube", "cylinder", "hexagonal", "pyramid", "sphere"),
        ("small", "large"),
        ("top", "center", "bottom"),
        ("purple", "sea green", "salmon"),
        tuple(float(v) for v in range(40)),
        tuple(float(v) for v in range(40)),
    ),
)
"""MPI3D-real: seven factors; the two arm axes are 40 positions each."""
