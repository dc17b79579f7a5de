r"""The ground-truth data protocol the metrics sample from, and code sampling.

A metric sees a data set only through four members (duck-typed; ``linvae.deep.data`` data sets
satisfy it, and so do the tiny synthetic sets in the tests):

* ``factor_sizes``: number of classes :math:`K_k` of each factor;
* ``factor_names``: one name per factor;
* ``sample_factors(key, n)``: ``int32 (n, K)`` class indices, :math:`c_k \in \{0..K_k-1\}`;
* ``images(factors)``: the ``uint8 (n, H, W, C)`` observations of given class indices.

A *representation* maps a ``uint8`` image batch to latent means ``(b, m)`` (the encoder mean
:math:`\mu(x)` for a VAE).

Sampling is explicit: one key draws all factors of a set in a single ``sample_factors`` call, and
the images are encoded in chunks of ``batch_size``. The codes therefore depend on the key only,
never on ``batch_size`` (disentanglement_lib draws per batch, so its codes depend on both).

References:
    Locatello et al. 2019, "Challenging common assumptions in the unsupervised learning of
    disentangled representations", https://arxiv.org/abs/1811.12359 (disentanglement_lib).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Protocol, runtime_checkable

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array
from jaxtyping import Float, Int, UInt8

Representation = Callable[[UInt8[np.ndarray, "b h w c"]], Float[np.ndarray | Array, "b m"]]
"""A batched mean encoder: ``uint8 (b, H, W, C)`` images to ``(b, m)`` latent means."""


@runtime_checkable
class GroundTruthData(Protocol):
    """What a metric needs from a data set with known, discrete generative factors."""

    @property
    def factor_sizes(self) -> tuple[int, ...]: ...

    @property
    def factor_names(self) -> Sequence[str]: ...

    def sample_factors(self, key: Array, n: int) -> Int[np.ndarray | Array, "n k"]: ...

    def images(self, factors: Int[np.ndarray | Array, "n k"]) -> UInt8[np.ndarray | Array, "n h w c"]: ...


def numpy_generator(key: Array) -> np.random.Generator:
    """A numpy generator seeded by all bits of a JAX key (host-side draws without per-shape compiles).

    Small index draws (which factor to fix, tree seeds) use it: ``jax.random`` compiles once per
    output shape, which dominates small evaluations.
    """
    raw = jax.random.key_data(key) if jnp.issubdtype(key.dtype, jax.dtypes.prng_key) else key
    return np.random.default_rng(np.asarray(raw, dtype=np.uint32).ravel().tolist())


def encode(
    data: GroundTruthData,
    representation: Representation,
    factors: Int[np.ndarray, "n k"],
    *,
    batch_size: int,
) -> Float[np.ndarray, "n m"]:
    """Latent means of the images of ``factors``, encoded ``batch_size`` images at a time.

    Args:
        data: the ground-truth data set that renders the images.
        representation: the batched mean encoder.
        factors: class indices, one row per image.
        batch_size: images per ``representation`` call (memory only; the codes do not depend on it).

    Returns:
        The codes as a float64 array ``(n, m)``.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive; got {batch_size}")
    factors = np.asarray(factors)
    chunks = []
    for start in range(0, factors.shape[0], batch_size):
        images = np.asarray(data.images(factors[start : start + batch_size]))
        codes = np.asarray(representation(images), dtype=np.float64)
        if codes.ndim != 2 or codes.shape[0] != images.shape[0]:
            raise ValueError(
                f"representation must map {images.shape[0]} images to a (b, m) array; got {codes.shape}"
            )
        chunks.append(codes)
    return np.concatenate(chunks, axis=0)


def sample_factors(data: GroundTruthData, *, key: Array, num_points: int) -> Int[np.ndarray, "n k"]:
    """``num_points`` factor rows from one ``sample_factors`` call, checked against the sizes."""
    factors = np.asarray(data.sample_factors(key, num_points)).astype(np.int64)
    sizes = np.asarray(data.factor_sizes)
    if factors.shape != (num_points, sizes.size):
        raise ValueError(
            f"sample_factors returned shape {factors.shape}; expected {(num_points, sizes.size)}"
        )
    if np.any(factors < 0) or np.any(factors >= sizes):
        raise ValueError(
            f"sample_factors returned class indices outside 0..factor_sizes-1 = {tuple(sizes - 1)}"
        )
    return factors


def sample_codes(
    data: GroundTruthData,
    representation: Representation,
    *,
    key: Array,
    num_points: int,
    batch_size: int,
) -> tuple[Float[np.ndarray, "n m"], Int[np.ndarray, "n k"]]:
    """Codes and factors of ``num_points`` images with factors drawn i.i.d. from the data set.

    Args:
        data: the ground-truth data set.
        representation: the batched mean encoder.
        key: PRNG key; the only source of randomness.
        num_points: number of images.
        batch_size: images per ``representation`` call.

    Returns:
        ``(codes, factors)``: float64 ``(n, m)`` latent means and ``int64 (n, K)`` class indices.
    """
    factors = sample_factors(data, key=key, num_points=num_points)
    return encode(data, representation, factors, batch_size=batch_size), factors


def sample_train_test(
    data: GroundTruthData,
    representation: Representation,
    *,
    key: Array,
    num_train: int,
    num_test: int,
    batch_size: int,
) -> tuple[
    Float[np.ndarray, "n m"], Int[np.ndarray, "n k"], Float[np.ndarray, "t m"], Int[np.ndarray, "t k"]
]:
    """Independent train and test sets of codes and factors (the key is split in two)."""
    key_train, key_test = jax.random.split(key)
    codes, factors = sample_codes(
        data, representation, key=key_train, num_points=num_train, batch_size=batch_size
    )
    codes_test, factors_test = sample_codes(
        data, representation, key=key_test, num_points=num_test, batch_size=batch_size
    )
    return codes, factors, codes_test, factors_test


def check_codes_factors(codes: np.ndarray, factors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Validated float64 ``(n, m)`` codes and ``int64 (n, K)`` class indices."""
    codes = np.asarray(codes, dtype=np.float64)
    factors = np.asarray(factors)
    if codes.ndim != 2 or factors.ndim != 2 or codes.shape[0] != factors.shape[0]:
        raise ValueError(
            f"need codes (n, m) and factors (n, K) with the same n; got {codes.shape}, {factors.shape}"
        )
    if not np.all(np.isfinite(codes)):
        raise ValueError("codes contain non-finite values")
    if not np.issubdtype(factors.dtype, np.integer):
        if not np.all(factors == np.round(factors)):
            raise ValueError("factors must be integer class indices")
    factors = factors.astype(np.int64)
    if np.any(factors < 0):
        raise ValueError("factors must be non-negative class indices")
    return codes, factors


def constant_factors(factors: Int[np.ndarray, "n k"]) -> Int[np.ndarray, " c"]:
    """Indices of the factors that take a single value in this sample (zero plug-in entropy)."""
    return np.flatnonzero(np.array([np.unique(factors[:, k]).size < 2 for k in range(factors.shape[1])]))


@dataclasses.dataclass(frozen=True, kw_only=True)
class FactorObservations:
    """Ground-truth data whose image of a factor row is the row itself (as disentanglement_lib dummy_data).

    ``images(c)`` is ``c`` as ``uint8 (n, 1, K, 1)``, so :func:`factor_codes` decodes it exactly: the
    identity representation, against which every metric's oracle is known. Sampling is uniform and
    independent per factor.

    Attributes:
        factor_sizes: classes per factor, each at most 256.
        factor_names: one name per factor (default ``factor_0``, ...).
    """

    factor_sizes: tuple[int, ...]
    factor_names: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.factor_sizes or any(not 1 <= s <= 256 for s in self.factor_sizes):
            raise ValueError(f"factor sizes must be in 1..256; got {self.factor_sizes}")
        if not self.factor_names:
            object.__setattr__(
                self, "factor_names", tuple(f"factor_{k}" for k in range(len(self.factor_sizes)))
            )
        if len(self.factor_names) != len(self.factor_sizes):
            raise ValueError("one name per factor")

    def sample_factors(self, key: Array, n: int) -> Int[np.ndarray, "n k"]:
        """``n`` uniform, independent class-index rows (numpy draws seeded by ``key``)."""
        rng = numpy_generator(key)
        return rng.integers(0, self.factor_sizes, size=(n, len(self.factor_sizes))).astype(np.int32)

    def images(self, factors: Int[np.ndarray | Array, "n k"]) -> UInt8[np.ndarray, "n 1 k 1"]:
        """The factor rows themselves, as ``uint8`` single-channel 1-pixel-high images."""
        factors = np.asarray(factors)
        return factors.astype(np.uint8).reshape(factors.shape[0], 1, factors.shape[1], 1)


def factor_codes(images: UInt8[np.ndarray, "b 1 k 1"]) -> Float[np.ndarray, "b k"]:
    """The identity representation of :class:`FactorObservations`: the factors as float64 codes."""
    images = np.asarray(images)
    return images.reshape(images.shape[0], -1).astype(np.float64)
