r"""The deep VAEs: the published convolutional encoder/decoder, and a linear-layer VAE.

Every model maps one example at a time (``vmap`` batches it):

* ``encode(x) -> (mu, log_var)``: :math:`q(z \mid x) = \mathcal N(\mu, \mathrm{diag}\,e^{\log s})`;
* ``decode(z) -> out``: the decoder output with the shape of ``x`` — Bernoulli logits, or the
  Gaussian mean (see :mod:`linvae.deep.objective`).

``x`` is float32 with the data set's image shape ``(H, W, C)``.

Conv architecture (docs/theory.md §2.3 "Deep"): encoder four convs :math:`c\to32\to32\to64\to64` (kernel 4,
stride 2, padding 1, ReLU), flatten :math:`64\cdot4\cdot4`, FC 256 (ReLU), heads :math:`\mu` and
:math:`\log s`; decoder FC :math:`10\to256\to1024` (ReLU), reshape :math:`64\times4\times4`, four transposed
convs :math:`64\to64\to32\to32\to c` (k4 s2 p1, ReLU between). Layer initialisation is Equinox's
(PyTorch's default: uniform :math:`\pm 1/\sqrt{\text{fan-in}}`). On 32 x 32 images (a reduced
configuration, ``DeepConfig.image_size = 32``) the same layers run on half the spatial size: the
encoder ends at :math:`64\times2\times2` (flatten 256), the decoder starts there.

``encode_batch`` / ``decode_batch`` map a whole batch (the training objective calls them). For the conv
model on the CPU they are one NHWC computation with the custom-gradient convolutions of
:mod:`linvae.deep.conv` (:meth:`ConvVAE.batched_kernels`), the same function as ``vmap`` of the
per-example maps to float32 roundoff; elsewhere they are that ``vmap``.

Linear model (theory bridge): :math:`\mu = Bx`, :math:`\log s` a learned vector independent of x
(E2: diagonal, input-independent :math:`\Sigma_W`), decoder :math:`Ax`, no biases — the linear VAE of
docs/theory.md §4 whose optimum :func:`linvae.numeric.lucas` gives in closed form.
"""

from __future__ import annotations

import abc
import dataclasses
import math
from typing import Any, TypeVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax import Array
from jaxtyping import Float, PRNGKeyArray

from linvae.deep.conv import conv4x2, conv_transpose4x2

F32 = jnp.float32


# Sub-pixel form of the k4 s2 p1 transposed conv: output row 2u + a reads input rows u - 1, u (a = 0)
# or u, u + 1 (a = 1) through kernel rows (3, 1) or (2, 0); index 4 selects a zero tap.
_TAPS = np.array([[3, 1, 4], [4, 2, 0]])

#: How :class:`ConvTranspose4x2` is computed (see its docstring).
CONV_TRANSPOSE_FORMS = ("auto", "subpixel", "direct")


def conv_transpose_form(form: str) -> str:
    """The form ``form`` runs in: ``"auto"`` is ``"subpixel"`` on the CPU backend, ``"direct"`` elsewhere.

    Reads :func:`jax.default_backend` when called, so a layer calls it while being traced, never at
    import: the backend may be chosen after ``linvae`` is imported.

    Raises:
        ValueError: ``form`` is not one of :data:`CONV_TRANSPOSE_FORMS`.
    """
    if form not in CONV_TRANSPOSE_FORMS:
        raise ValueError(f"unknown transposed-conv form {form!r}; known: {', '.join(CONV_TRANSPOSE_FORMS)}")
    if form == "auto":
        return "subpixel" if jax.default_backend() == "cpu" else "direct"
    return form


class ConvTranspose4x2(eqx.Module):
    r"""Transposed convolution, kernel 4, stride 2, padding 1 (PyTorch ``ConvTranspose2d(c, o, 4, 2, 1)``).

    Same parameters and function as PyTorch's layer (weight ``(in, out, 4, 4)``, bias ``(out,)``,
    uniform init :math:`\pm 1/\sqrt{16\,\mathrm{out}}`):

    :math:`y[o, 2u + a, 2v + b] = b_o + \sum_{c, i, j} x[c, i, j]\, w[c, o, 2(u - i) + a + 1, 2(v - j) + b + 1]`.

    ``form`` (static; it changes neither the parameters nor their layout, so checkpoints load under
    any form, and the forms agree to float32 roundoff) picks how it is computed:

    * ``"subpixel"``: one stride-1 3 x 3 convolution to :math:`4\cdot\mathrm{out}` channels (each output
      phase :math:`(a, b)` uses 2 x 2 of the 16 taps; the other 5 of its 9 are zeros) followed by a
      depth-to-space shuffle. It avoids the zero-dilated input of the direct form, whose gradient is
      the slow path of XLA's CPU convolutions, at 9/4 the multiply-adds of the direct form.
    * ``"direct"``: the textbook transposed convolution, a stride-1 convolution of the input dilated by
      2 (``lhs_dilation``) with the spatially flipped, in/out-swapped kernel, padded by 4 - 1 - 1 = 2.
      On a GPU, XLA hands it to cuDNN as a backward-data convolution (its gradients as a forward and a
      backward-filter one), which skips the zero taps; XLA's cost analysis counts 4/9 the FLOPs of the
      sub-pixel form.
    * ``"auto"`` (default): ``"subpixel"`` when :func:`jax.default_backend` is ``"cpu"``, ``"direct"``
      otherwise, resolved when the layer is traced. The accelerator choice is made from the FLOP counts
      (``benchmarks/deep_train.py``), not from a GPU measurement: none was available.

    This per-example layer is what :meth:`ConvVAE.decode` runs. Training on the CPU with the sub-pixel
    form goes through :meth:`ConvVAE.decode_batch` instead, which computes the same layer on the whole
    batch with :func:`linvae.deep.conv.conv_transpose4x2` (a 2 x 2 convolution per output phase, and
    its own gradient; :meth:`ConvVAE.batched_kernels`).
    """

    weight: Float[Array, "c o 4 4"]
    bias: Float[Array, " o"]
    form: str = eqx.field(static=True)

    def __init__(self, in_channels: int, out_channels: int, *, form: str = "auto", key: PRNGKeyArray) -> None:
        conv_transpose_form(form)  # validate now; "auto" is resolved at trace time
        kw, kb = jax.random.split(key)
        bound = 1.0 / math.sqrt(out_channels * 16)
        self.weight = jax.random.uniform(kw, (in_channels, out_channels, 4, 4), F32, -bound, bound)
        self.bias = jax.random.uniform(kb, (out_channels,), F32, -bound, bound)
        self.form = form

    def __call__(self, x: Float[Array, "c h w"]) -> Float[Array, "o 2h 2w"]:
        o = self.weight.shape[1]
        if conv_transpose_form(self.form) == "direct":
            y = _direct(x, self.weight)
        else:
            y = _subpixel(x, self.weight)
        return y + self.bias.reshape(o, 1, 1)


def _subpixel(x: Float[Array, "c h w"], weight: Float[Array, "c o 4 4"]) -> Float[Array, "o 2h 2w"]:
    c, h, w = x.shape
    o = weight.shape[1]
    padded = jnp.pad(weight, ((0, 0), (0, 0), (0, 1), (0, 1)))
    rows = _TAPS[:, None, :, None]
    cols = _TAPS[None, :, None, :]
    k = padded[:, :, rows, cols]  # (c, o, 2, 2, 3, 3): phase (a, b), 3 x 3 taps
    k = jnp.transpose(k, (2, 3, 1, 0, 4, 5)).reshape(4 * o, c, 3, 3)
    y = jax.lax.conv_general_dilated(
        x[None], k, window_strides=(1, 1), padding=((1, 1), (1, 1)),
        dimension_numbers=("NCHW", "OIHW", "NCHW"),
    )[0]  # fmt: skip
    return jnp.transpose(y.reshape(2, 2, o, h, w), (2, 3, 0, 4, 1)).reshape(o, 2 * h, 2 * w)


def _direct(x: Float[Array, "c h w"], weight: Float[Array, "c o 4 4"]) -> Float[Array, "o 2h 2w"]:
    k = jnp.transpose(weight[:, :, ::-1, ::-1], (1, 0, 2, 3))  # (o, c, 4, 4), flipped
    return jax.lax.conv_general_dilated(
        x[None], k, window_strides=(1, 1), padding=((2, 2), (2, 2)), lhs_dilation=(2, 2),
        dimension_numbers=("NCHW", "OIHW", "NCHW"),
    )[0]  # fmt: skip


T = TypeVar("T")


def with_conv_transpose_form(tree: T, form: str) -> T:
    """``tree`` with every :class:`ConvTranspose4x2` in it switched to ``form``; the arrays are shared.

    ``tree`` is any pytree holding the layers: a model, its parameters, an optimiser state. ``form`` is a
    static field, so this also changes the pytree structure: apply it to every tree that is combined with
    the model (both halves of ``eqx.partition``) or mapped together with it (the optimiser state).

    Raises:
        ValueError: ``form`` is not one of :data:`CONV_TRANSPOSE_FORMS`.
    """
    conv_transpose_form(form)

    def switch(node: Any) -> Any:
        if not isinstance(node, ConvTranspose4x2):
            return node
        # A static field cannot be replaced with eqx.tree_at, and dataclasses.replace would call
        # __init__; copy the fields the way equinox's own unflattening builds a module.
        new = object.__new__(ConvTranspose4x2)
        for field in dataclasses.fields(node):
            object.__setattr__(new, field.name, getattr(node, field.name))
        object.__setattr__(new, "form", form)
        return new

    return jax.tree_util.tree_map(switch, tree, is_leaf=lambda n: isinstance(n, ConvTranspose4x2))


class AbstractVAE(eqx.Module):
    """A VAE acting on one example: ``encode(x) -> (mu, log_var)``, ``decode(z) -> out``.

    ``encode_batch`` and ``decode_batch`` are the same maps on a batch (the training objective calls
    them); by default ``vmap`` of the per-example ones, overridden where a batched computation is
    faster.
    """

    latent_dim: eqx.AbstractVar[int]

    def encode_batch(self, x: Float[Array, "n H W C"]) -> tuple[Float[Array, "n k"], Float[Array, "n k"]]:
        """:meth:`encode` of every example of a batch."""
        return jax.vmap(self.encode)(x)

    def decode_batch(self, z: Float[Array, "n k"]) -> Float[Array, "n H W C"]:
        """:meth:`decode` of every latent of a batch."""
        return jax.vmap(self.decode)(z)

    @abc.abstractmethod
    def encode(self, x: Float[Array, "H W C"]) -> tuple[Float[Array, " k"], Float[Array, " k"]]:
        """Posterior mean and log-variance of one example."""

    @abc.abstractmethod
    def decode(self, z: Float[Array, " k"]) -> Float[Array, "H W C"]:
        """Decoder output (logits or mean) for one latent."""


class ConvVAE(AbstractVAE):
    """The published conv encoder/decoder for ``size`` x ``size`` images (64, or 32 for the reduced
    configuration) with ``channels`` channels."""

    convs: tuple[eqx.nn.Conv2d, ...]
    fc: eqx.nn.Linear
    mu: eqx.nn.Linear
    log_var: eqx.nn.Linear
    dec_fc1: eqx.nn.Linear
    dec_fc2: eqx.nn.Linear
    deconvs: tuple[ConvTranspose4x2, ...]
    latent_dim: int = eqx.field(static=True)
    channels: int = eqx.field(static=True)
    base: int = eqx.field(static=True, default=4)

    def __init__(self, channels: int, latent_dim: int = 10, *, size: int = 64, key: PRNGKeyArray) -> None:
        if size not in (64, 32):
            raise ValueError(f"the conv VAE takes 64 x 64 or 32 x 32 images; got size {size}")
        keys = jax.random.split(key, 13)
        widths = (channels, 32, 32, 64, 64)
        base = size // 16
        self.convs = tuple(
            eqx.nn.Conv2d(widths[i], widths[i + 1], 4, stride=2, padding=1, dtype=F32, key=keys[i])
            for i in range(4)
        )
        self.fc = eqx.nn.Linear(64 * base * base, 256, dtype=F32, key=keys[4])
        self.mu = eqx.nn.Linear(256, latent_dim, dtype=F32, key=keys[5])
        self.log_var = eqx.nn.Linear(256, latent_dim, dtype=F32, key=keys[6])
        self.dec_fc1 = eqx.nn.Linear(latent_dim, 256, dtype=F32, key=keys[7])
        self.dec_fc2 = eqx.nn.Linear(256, 64 * base * base, dtype=F32, key=keys[8])
        out = (64, 64, 32, 32, channels)
        self.deconvs = tuple(ConvTranspose4x2(out[i], out[i + 1], key=keys[9 + i]) for i in range(4))
        self.latent_dim = latent_dim
        self.channels = channels
        self.base = base

    def encode(self, x: Float[Array, "S S C"]) -> tuple[Float[Array, " k"], Float[Array, " k"]]:
        h = jnp.transpose(x, (2, 0, 1))
        for conv in self.convs:
            h = jax.nn.relu(conv(h))
        h = jax.nn.relu(self.fc(h.reshape(-1)))
        return self.mu(h), self.log_var(h)

    def decode(self, z: Float[Array, " k"]) -> Float[Array, "S S C"]:
        h = jax.nn.relu(self.dec_fc1(z))
        h = jax.nn.relu(self.dec_fc2(h)).reshape(64, self.base, self.base)
        for i, deconv in enumerate(self.deconvs):
            h = deconv(h)
            if i < len(self.deconvs) - 1:
                h = jax.nn.relu(h)
        return jnp.transpose(h, (1, 2, 0))

    def batched_kernels(self) -> bool:
        """Whether :meth:`encode_batch` / :meth:`decode_batch` run :mod:`linvae.deep.conv`'s batched NHWC
        convolutions (on the CPU backend, with the sub-pixel form, which ``"auto"`` is there) rather than
        ``vmap`` of the per-example maps. Read when traced, like :func:`conv_transpose_form`."""
        return jax.default_backend() == "cpu" and all(
            conv_transpose_form(d.form) == "subpixel" for d in self.deconvs
        )

    def encode_batch(self, x: Float[Array, "n S S C"]) -> tuple[Float[Array, "n k"], Float[Array, "n k"]]:
        """:meth:`encode` of a batch; on the CPU one NHWC computation (:meth:`batched_kernels`)."""
        if not self.batched_kernels():
            return super().encode_batch(x)
        h = x
        for conv in self.convs:
            h = jax.nn.relu(conv4x2(h, conv.weight) + conv.bias.reshape(1, 1, 1, -1))
        h = jnp.transpose(h, (0, 3, 1, 2)).reshape(h.shape[0], -1)  # flattened (C, H, W) as in encode
        h = jax.nn.relu(_linear(self.fc, h))
        return _linear(self.mu, h), _linear(self.log_var, h)

    def decode_batch(self, z: Float[Array, "n k"]) -> Float[Array, "n S S C"]:
        """:meth:`decode` of a batch; on the CPU one NHWC computation (:meth:`batched_kernels`)."""
        if not self.batched_kernels():
            return super().decode_batch(z)
        h = jax.nn.relu(_linear(self.dec_fc1, z))
        h = jax.nn.relu(_linear(self.dec_fc2, h)).reshape(-1, 64, self.base, self.base)
        h = jnp.transpose(h, (0, 2, 3, 1))
        for i, deconv in enumerate(self.deconvs):
            h = conv_transpose4x2(h, deconv.weight) + deconv.bias.reshape(1, 1, 1, -1)
            if i < len(self.deconvs) - 1:
                h = jax.nn.relu(h)
        return h


def _linear(layer: eqx.nn.Linear, h: Float[Array, "n i"]) -> Float[Array, "n o"]:
    """``layer`` on a batch of rows."""
    return h @ layer.weight.T + layer.bias[None, :]


class LinearVAE(AbstractVAE):
    r"""Linear encoder mean :math:`Bx`, input-independent diagonal variance, linear decoder :math:`Az`.

    Attributes:
        B: encoder mean map (k, d).
        log_var: log encoder variances (k,).
        A: decoder map (d, k).
    """

    B: Float[Array, "k d"]
    log_var_param: Float[Array, " k"]
    A: Float[Array, "d k"]
    latent_dim: int = eqx.field(static=True)
    image_shape: tuple[int, int, int] = eqx.field(static=True)

    def __init__(self, image_shape: tuple[int, int, int], latent_dim: int, *, key: PRNGKeyArray) -> None:
        d = math.prod(image_shape)
        kb, ka = jax.random.split(key)
        # PyTorch-default scale (uniform +-1/sqrt(fan-in)); B != 0 avoids the B = 0 fixed point (trap 4).
        self.B = jax.random.uniform(kb, (latent_dim, d), F32, -1.0, 1.0) / math.sqrt(d)
        self.A = jax.random.uniform(ka, (d, latent_dim), F32, -1.0, 1.0) / math.sqrt(latent_dim)
        self.log_var_param = jnp.zeros((latent_dim,), F32)
        self.latent_dim = latent_dim
        self.image_shape = tuple(image_shape)  # type: ignore[assignment]

    def encode(self, x: Float[Array, "H W C"]) -> tuple[Float[Array, " k"], Float[Array, " k"]]:
        return self.B @ x.reshape(-1), self.log_var_param

    def decode(self, z: Float[Array, " k"]) -> Float[Array, "H W C"]:
        return (self.A @ z).reshape(self.image_shape)


def make_model(
    kind: str, image_shape: tuple[int, int, int], latent_dim: int, *, key: PRNGKeyArray
) -> AbstractVAE:
    """A freshly initialised model.

    Args:
        kind: ``"conv"`` (needs 64 x 64 or 32 x 32 images) or ``"linear"``.
        image_shape: (H, W, C) of the data.
        latent_dim: number of latents.
        key: initialisation key.

    Raises:
        ValueError: unknown kind, or a conv model on images that are not 64 x 64 or 32 x 32.
    """
    if kind == "conv":
        if tuple(image_shape[:2]) not in ((64, 64), (32, 32)):
            raise ValueError(f"the conv VAE needs 64 x 64 or 32 x 32 images; got {tuple(image_shape)}")
        return ConvVAE(image_shape[2], latent_dim, size=image_shape[0], key=key)
    if kind == "linear":
        return LinearVAE(tuple(image_shape), latent_dim, key=key)  # type: ignore[arg-type]
    raise ValueError(f"unknown model kind {kind!r}; known: conv, linear")
