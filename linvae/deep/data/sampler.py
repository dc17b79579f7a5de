r"""The epoch sampler: which images model ``seed`` trains on at global step ``t``, and its random keys.

Minibatches follow the published protocol, "batch 64 (shuffled, drop last)" (docs/theory.md §2.3): the
data set of N images is visited in epochs of ``N // batch_size`` steps; epoch ``e`` of model ``seed``
is a keyed pseudo-random permutation :math:`\pi_{\rm seed, e}` of ``[0, N)``, and global step ``t``
trains on the images :math:`\pi_{\rm seed, e}(jB), \dots, \pi_{\rm seed, e}(jB + B - 1)` with
:math:`e = \lfloor t / (N // B)\rfloor`, :math:`j = t \bmod (N // B)`, :math:`B` = ``batch_size``; the last
``N mod B`` positions of each epoch are dropped. The permutation is a swap-or-not shuffle
(:func:`shuffled_index`, Hoang, Morris & Rogaway 2012) with :data:`SHUFFLE_ROUNDS` rounds keyed by
``fold_in(stream, e)``: a bijection of ``[0, N)`` for every N by construction, evaluated only at the
``B`` positions a step needs (O(B) work, no N-array, no state), so the batch of step ``t`` is a pure
function of ``(seed, t)``. It is not NumPy's or PyTorch's shuffle (the orders differ), only the same
protocol. The λβ continuation goes on with the epochs of the global step count. The unbounded
synthetic :class:`~linvae.deep.data.LinearGaussian` has no epochs: each step draws fresh samples.

Randomness: model ``seed`` gives the initialisation key and a stream key (:func:`stream_keys`); step
``t`` uses ``fold_in(stream, t)`` for its reparameterisation noise (and for the fresh draws of
``LinearGaussian``), epoch ``e`` uses ``fold_in(fold_in(stream, tag), e)`` for its permutation.
Models that share a seed share initialisation and data order, whatever their β, λ and KL target,
and a resumed run replays exactly the keys and batches of an uninterrupted one (bit-identical on CPU),
however the models are grouped.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import Array

from linvae.deep.data.dataset import AbstractDataset
from linvae.deep.data.linear_gaussian import LinearGaussian

F32 = jnp.float32
_STREAM_TAG = 0x5EED
_EPOCH_TAG = 0xE90C
#: Rounds of the swap-or-not shuffle. Each round is a keyed involution of [0, N); on dSprites
#: (N = 737,280) the order statistics checked (rank correlation, gaps between neighbours, repeated
#: gaps, factor balance within batches) match a uniform permutation from 16 rounds on; 32 doubles that.
SHUFFLE_ROUNDS = 32
#: Minibatch protocol recorded in a runs folder's config.json (runs of another protocol are refused).
SAMPLER = f"shuffled epochs, drop last (swap-or-not, {SHUFFLE_ROUNDS} rounds)"

_U32 = jnp.uint32


def stream_keys(seed: Array | int) -> tuple[Array, Array]:
    """Model ``seed``'s initialisation key and its stream key (noise, fresh draws, epoch orders)."""
    init_key, stream = jax.random.split(jax.random.key(seed))
    return init_key, jax.random.fold_in(stream, _STREAM_TAG)


def step_key(seed: Array | int, step: Array | int) -> Array:
    """The key of global step ``step`` of model ``seed`` (split into data draws and noise)."""
    return jax.random.fold_in(stream_keys(seed)[1], step)


def _mix32(x: Array) -> Array:
    """A 32-bit integer finaliser (``lowbias32``, C. Wellons): every input bit flips each output bit
    with probability close to 1/2."""
    x = x ^ (x >> 16)
    x = x * _U32(0x7FEB352D)
    x = x ^ (x >> 15)
    x = x * _U32(0x846CA68B)
    return x ^ (x >> 16)


def shuffled_index(key: Array, position: Array, n: int, rounds: int = SHUFFLE_ROUNDS) -> Array:
    r"""The image at ``position`` of a keyed pseudo-random permutation :math:`\pi_{\rm key}` of ``[0, n)``.

    Swap-or-not (Hoang, Morris & Rogaway, CRYPTO 2012): round r draws :math:`K_r \in [0, n)` and a hash
    key; :math:`x` and its partner :math:`x' = K_r - x \bmod n` swap when a keyed hash of
    :math:`\max(x, x')` has its top bit set. The decision is the same for both members of the pair, so
    each round is an involution and the composition is a bijection of ``[0, n)`` for every ``n``, with
    O(1) work per position and no table: ``position`` may be any int array (the B positions of one
    step). Not NumPy's shuffle; a statistical one, not cryptographic. ``n < 2**31``.
    """
    bits = jax.random.bits(key, (rounds, 2), _U32)
    nu = _U32(n)
    x = jnp.asarray(position).astype(_U32)
    for r in range(rounds):  # unrolled: one fused elementwise kernel, no loop on the device
        partner = (bits[r, 0] % nu + nu - x) % nu
        flip = (_mix32(jnp.maximum(x, partner) ^ bits[r, 1]) >> 31) == _U32(1)
        x = jnp.where(flip, partner, x)
    return x.astype(jnp.int32)


def epoch_key(seed: Array | int, epoch: Array | int) -> Array:
    """The key of epoch ``epoch``'s permutation for model ``seed``."""
    return jax.random.fold_in(jax.random.fold_in(stream_keys(seed)[1], _EPOCH_TAG), epoch)


def batch_indices(seed: Array | int, step: Array | int, num_images: int, batch_size: int) -> Array:
    """Indices (int32, ``(batch_size,)``) of the images of global step ``step`` for model ``seed``.

    Step t is batch ``t mod (N // B)`` of epoch ``t // (N // B)``; a pure function of (seed, t), so a
    resumed run sees the batches of an uninterrupted one. Within an epoch no index repeats.
    """
    per_epoch = num_images // batch_size
    step = jnp.asarray(step, jnp.int32)
    epoch, j = step // per_epoch, step % per_epoch
    position = j * batch_size + jnp.arange(batch_size, dtype=jnp.int32)
    return shuffled_index(epoch_key(seed, epoch), position, num_images)


def observations(dataset: AbstractDataset, key: Array, n: int) -> Array:
    """A float32 batch ``(n, H, W, C)``: images / 255, or exact draws for :class:`LinearGaussian`."""
    if isinstance(dataset, LinearGaussian):
        x, _ = dataset.sample(key, n)
        return x.reshape((n, *dataset.image_shape))
    return dataset.batch(key, n).images.astype(F32) / 255.0


def as_observations(dataset: AbstractDataset, images: Array) -> Array:
    """float32 observations of uint8 images (the inverse pixel map of :class:`LinearGaussian`)."""
    if isinstance(dataset, LinearGaussian):
        return dataset.decode(jnp.asarray(images)).reshape((images.shape[0], *dataset.image_shape))
    return jnp.asarray(images).astype(F32) / 255.0


def minibatch(dataset: AbstractDataset, seed: Array | int, step: Array | int, batch_size: int) -> Array:
    """The float32 observations ``(B, H, W, C)`` that model ``seed`` trains on at global step ``step``.

    Grid data sets (stored or procedural): the shuffled-epoch batch of :func:`batch_indices`, gathered
    or rendered on the device. :class:`LinearGaussian` (unbounded): fresh exact draws keyed by the step.
    """
    if isinstance(dataset, LinearGaussian):
        k_data, _ = jax.random.split(step_key(seed, step))
        return observations(dataset, k_data, batch_size)
    index = batch_indices(seed, step, dataset.num_images, batch_size)
    return dataset.images(dataset.index_to_factors(index)).astype(F32) / 255.0
