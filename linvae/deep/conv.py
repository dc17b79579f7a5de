r"""Batched NHWC kernel-4 stride-2 padding-1 convolutions with gradients that XLA's CPU backend runs fast.

The conv VAE's eight layers are all the k4 s2 p1 convolution (:func:`conv4x2`, PyTorch
``Conv2d(c, o, 4, 2, 1)``) or its transpose (:func:`conv_transpose4x2`, PyTorch
``ConvTranspose2d(c, o, 4, 2, 1)``), on batches in NHWC with PyTorch's weight layouts. What
``jax.grad`` makes of them by default is slow on XLA's CPU backend: the gradient of a strided conv
with respect to its input is a convolution of the zero-dilated cotangent (``lhs_dilation``), which
YNNPACK does not take and XLA's fallback runs at a few GFLOP/s, and the weight gradients are
convolutions whose window is the whole image, with full transposes of the activations around them.
Here each function has its own VJP, in which every convolution is an undilated one of the forward
kind and the weight gradient is one matrix product:

* the two functions are each other's transpose in ``x`` (same weight tensor), so the input gradient
  of one is the other applied to the cotangent;
* the transposed conv is computed in its sub-pixel form: one stride-1 2 x 2 convolution of the input
  (padded by 1) to :math:`4o` channels, one per output phase :math:`(a, b)` of the stride, then a
  depth-to-space shuffle and a crop of one pixel (the exact multiply-adds of the layer, times
  :math:`(h + 1)(w + 1) / hw` for the one-pixel halo);
* the weight gradient is written for the equivalent 2 x 2 convolution on the space-to-depth input
  (:math:`\tilde x` = ``s2d(pad(x))``, :math:`4c` channels): with the cotangent :math:`g`,
  :math:`\partial W[i, j] = \sum_{n, u, v} \tilde x[n, u + i, v + j] \otimes g[n, u, v]`, one matrix
  product of contraction length :math:`n (h + 1)(w + 1)` whose first operand is the four shifted
  copies of :math:`g`, transposed; when the input has few channels (the first layer, and the last
  layer's cotangent) it is instead the 16 strided taps of the padded input, transposed, against
  :math:`g` (whichever copies fewer floats).

Values and gradients are those of the plain definitions to float32 roundoff (tests/deep/test_conv.py);
nothing is computed in lower precision. ``benchmarks/deep_train.py`` times the training step they
give.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import Array
from jaxtyping import Float

_DN = ("NHWC", "HWIO", "NHWC")


def _pad1(x: Array) -> Array:
    return jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))


def _space_to_depth(x: Array) -> Array:
    """(n, 2h, 2w, c) -> (n, h, w, 4c), channel order (row parity, column parity, c)."""
    n, h, w, c = x.shape
    return x.reshape(n, h // 2, 2, w // 2, 2, c).transpose(0, 1, 3, 2, 4, 5).reshape(n, h // 2, w // 2, 4 * c)


def _depth_to_space(x: Array) -> Array:
    """(n, h, w, 4c) -> (n, 2h, 2w, c), the inverse of :func:`_space_to_depth`."""
    n, h, w, c4 = x.shape
    c = c4 // 4
    return x.reshape(n, h, w, 2, 2, c).transpose(0, 1, 3, 2, 4, 5).reshape(n, 2 * h, 2 * w, c)


def _taps(weight: Array) -> Array:
    """Conv2d weight (o, c, 4, 4) -> the (2, 2, 4c, o) kernel of the 2 x 2 conv on ``s2d(pad(x))``.

    Kernel row :math:`2i + a` of the stride-2 conv is tap :math:`i` of the 2 x 2 conv on input
    channel block :math:`a` (likewise for columns).
    """
    o, c = weight.shape[:2]
    return weight.reshape(o, c, 2, 2, 2, 2).transpose(2, 4, 3, 5, 1, 0).reshape(2, 2, 4 * c, o)


def _conv_forward(x: Array, weight: Array) -> Array:
    return jax.lax.conv_general_dilated(
        x, jnp.transpose(weight, (2, 3, 1, 0)), (2, 2), ((1, 1), (1, 1)), dimension_numbers=_DN
    )


def _conv_transpose_forward(x: Array, weight: Array) -> Array:
    # weight (c, o, 4, 4) is the Conv2d(o -> c) weight whose transpose this is: flip the 2 x 2 taps
    # of that conv and swap its channels.
    kernel = _taps(weight)[::-1, ::-1].transpose(0, 1, 3, 2)  # (2, 2, c, 4o)
    y = jax.lax.conv_general_dilated(x, kernel, (1, 1), ((1, 1), (1, 1)), dimension_numbers=_DN)
    return _depth_to_space(y)[:, 1:-1, 1:-1, :]


def _weight_grad(x: Array, g: Array) -> Array:
    """d/dweight (o, c, 4, 4) of :func:`conv4x2` at input ``x`` (n, 2h, 2w, c), cotangent ``g`` (n, h, w, o)."""
    n, h, w, o = g.shape
    c = x.shape[-1]
    if 16 * c * h * w < 4 * (o + c) * (h + 1) * (w + 1):
        # Few input channels (the first layer): the 16 strided taps of the padded input, transposed
        # (c is small), against g as it is.
        xt = jnp.transpose(_pad1(x), (3, 0, 1, 2))  # (c, n, 2h + 2, 2w + 2)
        taps = jnp.stack(
            [xt[:, :, ki : ki + 2 * h : 2, kj : kj + 2 * w : 2] for ki in range(4) for kj in range(4)]
        )
        r = taps.reshape(16 * c, n * h * w) @ g.reshape(n * h * w, o)  # rows (ki, kj, c)
        return r.reshape(4, 4, c, o).transpose(3, 2, 0, 1)
    # Otherwise the four shifted copies of g (transposed: o channels) against s2d(pad(x)) as it is.
    xs = _space_to_depth(_pad1(x)).reshape(n * (h + 1) * (w + 1), 4 * c)  # columns (a, b, c)
    gt = jnp.transpose(g, (3, 0, 1, 2))  # (o, n, h, w)
    shifted = jnp.stack(
        [jnp.pad(gt, ((0, 0), (0, 0), (i, 1 - i), (j, 1 - j))) for i in range(2) for j in range(2)]
    ).reshape(4 * o, n * (h + 1) * (w + 1))  # rows (i, j, o)
    r = shifted @ xs
    # r[(i, j, o), (a, b, c)] = dweight[o, c, 2i + a, 2j + b]
    return r.reshape(2, 2, o, 2, 2, c).transpose(2, 5, 0, 3, 1, 4).reshape(o, c, 4, 4)


@jax.custom_vjp
def conv4x2(x: Float[Array, "n 2h 2w c"], weight: Float[Array, "o c 4 4"]) -> Float[Array, "n h w o"]:
    """PyTorch's ``Conv2d(c, o, 4, 2, 1)`` without bias on an NHWC batch (weight in PyTorch's layout)."""
    return _conv_forward(x, weight)


@jax.custom_vjp
def conv_transpose4x2(
    x: Float[Array, "n h w c"], weight: Float[Array, "c o 4 4"]
) -> Float[Array, "n 2h 2w o"]:
    """PyTorch's ``ConvTranspose2d(c, o, 4, 2, 1)`` without bias on an NHWC batch (weight in PyTorch's
    layout), in the sub-pixel form."""
    return _conv_transpose_forward(x, weight)


def _conv_fwd(x, weight):
    return _conv_forward(x, weight), (x, weight)


def _conv_bwd(res, g):
    x, weight = res
    return conv_transpose4x2(g, weight), _weight_grad(x, g)


def _conv_transpose_fwd(x, weight):
    return _conv_transpose_forward(x, weight), (x, weight)


def _conv_transpose_bwd(res, g):
    # y = A^T x with A the conv of weight (c, o, 4, 4) read as Conv2d(o -> c): <y, g> = <x, A g>.
    x, weight = res
    return conv4x2(g, weight), _weight_grad(g, x)


conv4x2.defvjp(_conv_fwd, _conv_bwd)
conv_transpose4x2.defvjp(_conv_transpose_fwd, _conv_transpose_bwd)
