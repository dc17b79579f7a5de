"""The batched CPU convolutions (linvae.deep.conv): values and gradients against their definitions, and
the conv VAE's batched maps against ``vmap`` of the per-example ones."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from linvae._tolerance import F32
from linvae.deep.conv import conv4x2, conv_transpose4x2
from linvae.deep.model import ConvVAE, with_conv_transpose_form
from tests.deep.test_conv_transpose import _naive_transposed, _naive_transposed_vjp
from tests.helpers import assert_close

# (n, h, w, c, o) of the input of conv4x2 / the output of conv_transpose4x2, covering both weight-gradient
# branches (few input channels: c = 1, 2; otherwise) and non-square images.
SHAPES = [(2, 8, 8, 1, 5), (3, 8, 12, 2, 4), (2, 8, 6, 6, 3), (1, 16, 16, 8, 8)]


def _reference_conv(x, w):
    """PyTorch's Conv2d(c, o, 4, 2, 1) without bias, NHWC, differentiated by JAX."""
    return jax.lax.conv_general_dilated(
        x, w, (2, 2), ((1, 1), (1, 1)), dimension_numbers=("NHWC", "OIHW", "NHWC"),
        precision=jax.lax.Precision.HIGHEST,
    )  # fmt: skip


@pytest.mark.parametrize("shape", SHAPES)
def test_conv4x2_matches_the_strided_conv(shape):
    n, h, w, c, o = shape
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.normal(size=(n, h, w, c)), jnp.float32)
    weight = jnp.asarray(rng.normal(size=(o, c, 4, 4)) / 4, jnp.float32)
    r = jnp.asarray(rng.normal(size=(n, h // 2, w // 2, o)), jnp.float32)
    assert_close(conv4x2(x, weight), _reference_conv(x, weight), F32, "value")
    got = jax.grad(lambda a, b: jnp.sum(conv4x2(a, b) * r), argnums=(0, 1))(x, weight)
    want = jax.grad(lambda a, b: jnp.sum(_reference_conv(a, b) * r), argnums=(0, 1))(x, weight)
    assert_close(got[0], want[0], F32, "d/dx")
    assert_close(got[1], want[1], F32, "d/dweight")


@pytest.mark.parametrize("shape", SHAPES)
def test_conv_transpose4x2_matches_the_scatter_definition(shape):
    n, h2, w2, o, c = shape  # input (n, h, w, c), output (n, 2h, 2w, o)
    h, w = h2 // 2, w2 // 2
    rng = np.random.default_rng(1)
    x = rng.normal(size=(n, h, w, c)).astype(np.float32)
    weight = (rng.normal(size=(c, o, 4, 4)) / 4).astype(np.float32)
    r = rng.normal(size=(n, 2 * h, 2 * w, o)).astype(np.float32)
    zero = np.zeros(o)
    y = conv_transpose4x2(jnp.asarray(x), jnp.asarray(weight))
    gx, gw = jax.grad(lambda a, b: jnp.sum(conv_transpose4x2(a, b) * r), argnums=(0, 1))(
        jnp.asarray(x), jnp.asarray(weight)
    )
    x64, w64, r64 = (np.asarray(a, np.float64) for a in (x, weight, r))
    ex, ew = np.zeros_like(x64), np.zeros_like(w64)
    for i in range(n):
        want = _naive_transposed(x64[i].transpose(2, 0, 1), w64, zero).transpose(1, 2, 0)
        assert_close(y[i], want, F32, f"value {i}")
        dx, dw, _ = _naive_transposed_vjp(x64[i].transpose(2, 0, 1), w64, r64[i].transpose(2, 0, 1))
        ex[i] = dx.transpose(1, 2, 0)
        ew += dw
    assert_close(gx, ex, F32, "d/dx")
    assert_close(gw, ew, F32, "d/dweight")


@pytest.mark.parametrize(("size", "channels"), [(64, 1), (32, 3)])
def test_batched_conv_vae_equals_vmap_of_the_per_example_maps(size, channels):
    model = ConvVAE(channels, 10, size=size, key=jax.random.key(0))
    assert model.batched_kernels() == (jax.default_backend() == "cpu")
    assert not with_conv_transpose_form(model, "direct").batched_kernels()
    x = jax.random.uniform(jax.random.key(1), (4, size, size, channels), jnp.float32)
    z = jax.random.normal(jax.random.key(2), (4, 10), jnp.float32)

    def loss(m, batched):
        mu, log_var = m.encode_batch(x) if batched else jax.vmap(m.encode)(x)
        out = m.decode_batch(z + mu) if batched else jax.vmap(m.decode)(z + mu)
        return jnp.sum(jnp.sin(out)) + jnp.sum(mu * log_var)

    for a, b in zip(model.encode_batch(x), jax.vmap(model.encode)(x), strict=True):
        assert_close(a, b, F32, "encode")
    assert_close(model.decode_batch(z), jax.vmap(model.decode)(z), F32, "decode")
    got = eqx.filter_grad(lambda m: loss(m, True))(model)
    want = eqx.filter_grad(lambda m: loss(m, False))(model)
    for a, b in zip(jax.tree_util.tree_leaves(got), jax.tree_util.tree_leaves(want), strict=True):
        assert_close(a, b, F32, "gradient")
