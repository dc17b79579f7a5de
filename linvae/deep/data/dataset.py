r"""The ground-truth data-set interface and the stored (array-backed) implementation.

A ground-truth data set is a deterministic map from class indices :math:`c \in \prod_k \{0..K_k-1\}`
to uint8 images (H, W, C) with values 0..255 (``images / 255`` lies in [0, 1] for every set),
plus a distribution over the classes. Every data set says where its images come from
(:class:`Provenance`): a real file, or a procedural stand-in; anything computed on a stand-in must
carry that label into its output.

On an accelerator, :func:`to_device` moves a stored set's uint8 array onto the device once and
:func:`make_batcher` returns a jitted ``key -> Batch`` that gathers there, so a training step never
goes back to the host for data.
"""

from __future__ import annotations

import abc
import dataclasses
import hashlib
from collections.abc import Callable
from typing import Literal, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax import Array
from jaxtyping import Int, PRNGKeyArray, UInt8

from linvae.deep.data.grid import FactorGrid, factors_to_index, index_to_factors

REAL = "real file"
STAND_IN = "procedural stand-in"


@dataclasses.dataclass(frozen=True, kw_only=True)
class Provenance:
    """Where a data set's images come from.

    Attributes:
        kind: ``"real file"`` or ``"procedural stand-in"``.
        source: the file path, or the generator that draws the images.
    """

    kind: Literal["real file", "procedural stand-in"]
    source: str

    def __post_init__(self) -> None:
        if self.kind not in (REAL, STAND_IN):
            raise ValueError(f"provenance kind must be {REAL!r} or {STAND_IN!r}; got {self.kind!r}")

    @property
    def is_stand_in(self) -> bool:
        """True for procedurally generated images."""
        return self.kind == STAND_IN

    def __str__(self) -> str:
        return f"{self.kind} {self.source}"

    def to_dict(self) -> dict[str, str]:
        """JSON-ready form, for run records and figure sidecars."""
        return {"kind": self.kind, "source": self.source, "label": str(self)}


class Batch(NamedTuple):
    """A batch of images with their class indices."""

    images: UInt8[Array, "n H W C"]
    factors: Int[Array, "n K"]


def uniform_factors(key: PRNGKeyArray, n: int, sizes: tuple[int, ...]) -> Int[Array, "n K"]:
    """``n`` class-index vectors drawn uniformly from the grid (each factor independently), int32."""
    maxval = jnp.asarray(sizes, dtype=jnp.int32).reshape(1, len(sizes))
    return jax.random.randint(key, (n, len(sizes)), 0, maxval, dtype=jnp.int32)


class AbstractDataset(eqx.Module):
    """A ground-truth data set: factor grid, images of class indices, a distribution over classes.

    Final implementations: :class:`Stored` (real files), ``DSpritesReplica``, ``Shapes3DLike``,
    ``MPI3DLike`` (procedural stand-ins) and ``LinearGaussian`` (synthetic, closed-form theory).
    """

    name: eqx.AbstractVar[str]
    grid: eqx.AbstractVar[FactorGrid]
    image_shape: eqx.AbstractVar[tuple[int, int, int]]
    provenance: eqx.AbstractVar[Provenance]

    @property
    def factor_names(self) -> tuple[str, ...]:
        """Names of the factors, in storage order."""
        return self.grid.names

    @property
    def factor_sizes(self) -> tuple[int, ...]:
        """Number of classes of each factor."""
        return self.grid.sizes

    @property
    def num_images(self) -> int:
        """Size of the factor grid."""
        return self.grid.num_images

    def index_to_factors(self, index: Int[Array, " n"]) -> Int[Array, "n K"]:
        """Class indices of C-order flat indices (last factor fastest)."""
        return index_to_factors(index, self.grid.sizes)

    def factors_to_index(self, factors: Int[Array, "n K"]) -> Int[Array, " n"]:
        """C-order flat indices of class indices."""
        return factors_to_index(factors, self.grid.sizes)

    @abc.abstractmethod
    def sample_factors(self, key: PRNGKeyArray, n: int) -> Int[Array, "n K"]:
        """Draw ``n`` class-index vectors (int32, shape (n, K)) from the data set's distribution."""

    @abc.abstractmethod
    def images(self, factors: Int[Array, "n K"]) -> UInt8[Array, "n H W C"]:
        """uint8 images (n, H, W, C) of class indices (n, K)."""

    @abc.abstractmethod
    def batch(self, key: PRNGKeyArray, n: int) -> Batch:
        """``n`` images with their class indices; jittable (static ``n``) once on the device."""


class Stored(AbstractDataset):
    """A data set held as an array of all its images in C order over the factor grid.

    ``array`` is a host NumPy array (possibly memory-mapped) after loading, or a device array after
    :func:`to_device`; only the latter makes :meth:`images` and :meth:`batch` jittable.

    Attributes:
        array: uint8 images, (prod(sizes), H, W, C).
    """

    array: np.ndarray | Array
    name: str = eqx.field(static=True)
    grid: FactorGrid = eqx.field(static=True)
    image_shape: tuple[int, int, int] = eqx.field(static=True)
    provenance: Provenance = eqx.field(static=True)

    def __check_init__(self) -> None:
        shape = (self.grid.num_images, *self.image_shape)
        if tuple(self.array.shape) != shape or self.array.dtype != np.uint8:
            raise ValueError(
                f"{self.name}: stored images must be uint8 {shape};"
                f" got {self.array.dtype} {tuple(self.array.shape)}"
            )

    def sample_factors(self, key: PRNGKeyArray, n: int) -> Int[Array, "n K"]:
        """Uniform over the grid."""
        return uniform_factors(key, n, self.grid.sizes)

    def images(self, factors: Int[Array, "n K"]) -> UInt8[Array, "n H W C"]:
        """Rows of the stored array (a host gather while the array is on the host)."""
        index = self.factors_to_index(factors)
        if isinstance(self.array, np.ndarray):
            return jnp.asarray(self.array[np.asarray(index)])
        return self.array[index]

    def batch(self, key: PRNGKeyArray, n: int) -> Batch:
        """Uniform draw from the grid with its images."""
        factors = self.sample_factors(key, n)
        return Batch(self.images(factors), factors)


def to_device(dataset: AbstractDataset, device: jax.Device | None = None) -> AbstractDataset:
    """The same data set with every array leaf on ``device`` (default: the first accelerator or CPU).

    A stored set moves its whole uint8 array once (dSprites 2.8 GiB, Shapes3D 5.5 GiB, MPI3D 11.9 GiB);
    procedural sets only move their small lookup tables.
    """
    device = jax.devices()[0] if device is None else device
    return jax.tree_util.tree_map(
        lambda x: (
            jax.device_put(np.asarray(x) if isinstance(x, np.memmap) else x, device) if eqx.is_array(x) else x
        ),
        dataset,
    )


def make_batcher(dataset: AbstractDataset, batch_size: int) -> Callable[[PRNGKeyArray], Batch]:
    """A jitted ``key -> Batch`` that samples and gathers on the device, no host round trip per call.

    The data set is moved to the device first (:func:`to_device`) and passed to the compiled function
    as an argument, never captured as a constant.

    >>> from linvae.deep.data import load
    >>> draw = make_batcher(load("dsprites", source="procedural"), 8)
    >>> draw(jax.random.key(0)).images.shape
    (8, 64, 64, 1)
    """
    on_device = to_device(dataset)

    @eqx.filter_jit
    def _draw(ds: AbstractDataset, key: PRNGKeyArray) -> Batch:
        return ds.batch(key, batch_size)

    def draw(key: PRNGKeyArray) -> Batch:
        return _draw(on_device, key)

    return draw


#: Images hashed by :func:`fingerprint`: evenly spaced rows of the C-order grid (first and last included).
FINGERPRINT_IMAGES = 64


def fingerprint(dataset: AbstractDataset) -> str:
    """A short hash of what a data set shows a model: its name, factor sizes, image shape, provenance
    kind and the pixels of :data:`FINGERPRINT_IMAGES` fixed images (evenly spaced over the grid).

    Two runs trained on different files, renderers or resolutions get different fingerprints; the
    same file in another folder gets the same one. Sets without a finite grid of images
    (``LinearGaussian``) hash their array leaves instead. Costs one small render or gather.
    """
    h = hashlib.sha256()
    h.update(repr((dataset.name, tuple(dataset.grid.sizes), tuple(dataset.image_shape))).encode())
    h.update(dataset.provenance.kind.encode())
    if dataset.name == "linear_gaussian":
        for leaf in jax.tree_util.tree_leaves(eqx.filter(dataset, eqx.is_array)):
            h.update(np.ascontiguousarray(np.asarray(leaf)).tobytes())
    else:
        n = dataset.num_images
        index = np.unique(np.linspace(0, n - 1, min(FINGERPRINT_IMAGES, n)).round().astype(np.int64))
        factors = jnp.asarray(np.stack(np.unravel_index(index, dataset.grid.sizes), axis=-1), jnp.int32)
        on_host = any(isinstance(x, np.ndarray) for x in jax.tree_util.tree_leaves(dataset))
        # Procedural sets render fast only when compiled; host-stored sets gather on the host.
        images = dataset.images(factors) if on_host else _images(dataset, factors)
        h.update(np.ascontiguousarray(np.asarray(images)).tobytes())
    return h.hexdigest()[:16]


@eqx.filter_jit
def _images(dataset: AbstractDataset, factors: Array) -> Array:
    return dataset.images(factors)
