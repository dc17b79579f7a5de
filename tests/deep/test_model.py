"""Deep models and the objective: shapes, float32, λ on the same sample (transposed conv: test_conv_transpose)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from linvae._tolerance import F32
from linvae.deep.model import ConvVAE, LinearVAE, make_model
from linvae.deep.objective import objective, terms
from tests.helpers import assert_close


@pytest.mark.parametrize("channels", [1, 3])
def test_conv_vae_shapes_and_dtype(channels):
    model = ConvVAE(channels, 10, key=jax.random.key(0))
    x = jnp.zeros((64, 64, channels), jnp.float32)
    mu, log_var = model.encode(x)
    assert mu.shape == log_var.shape == (10,)
    out = model.decode(mu)
    assert out.shape == (64, 64, channels)
    leaves = jax.tree_util.tree_leaves(model)
    assert all(leaf.dtype == jnp.float32 for leaf in leaves if hasattr(leaf, "dtype"))
    assert out.dtype == jnp.float32


def test_linear_vae_shapes():
    model = LinearVAE((8, 1, 1), 3, key=jax.random.key(0))
    mu, log_var = model.encode(jnp.ones((8, 1, 1), jnp.float32))
    assert mu.shape == (3,) and log_var.shape == (3,)
    assert model.decode(mu).shape == (8, 1, 1)


def test_make_model_rejects_bad_input():
    with pytest.raises(ValueError, match="64 x 64 or 32 x 32"):
        make_model("conv", (48, 48, 1), 10, key=jax.random.key(0))
    with pytest.raises(ValueError, match="unknown model kind"):
        make_model("mlp", (64, 64, 1), 10, key=jax.random.key(0))


@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian"])
def test_objective_finite_and_lambda_uses_same_sample(likelihood):
    model = ConvVAE(1, 10, key=jax.random.key(0))
    x = jax.random.uniform(jax.random.key(1), (4, 64, 64, 1), jnp.float32)
    key = jax.random.key(2)
    t = terms(model, x, key=key, likelihood=likelihood)
    assert all(np.isfinite(float(v)) for v in t)
    assert float(t.kl) >= 0 and float(t.l2) >= 0
    base, _ = objective(model, x, 4.0, 0.0, key=key, likelihood=likelihood)
    with_l2, _ = objective(model, x, 4.0, 3.0, key=key, likelihood=likelihood)
    # The L2 term is evaluated on the same reparameterised z as the NLL: the difference is exactly 3 L2.
    assert_close(float(with_l2) - float(base), 3.0 * float(t.l2), F32, "lambda * L2")
    assert_close(float(base), float(t.nll) + 4.0 * float(t.kl), F32, "NLL + beta KL")


def test_bernoulli_nll_is_bce_summed_over_pixels():
    model = LinearVAE((6, 1, 1), 2, key=jax.random.key(0))
    x = jnp.asarray(np.random.default_rng(1).uniform(size=(3, 6, 1, 1)), jnp.float32)
    key = jax.random.key(3)
    t = terms(model, x, key=key, likelihood="bernoulli")
    mu, log_var = jax.vmap(model.encode)(x)
    z = mu + jnp.exp(0.5 * log_var) * jax.random.normal(key, mu.shape, jnp.float32)
    p = np.asarray(jax.nn.sigmoid(jax.vmap(model.decode)(z)), np.float64)
    xs = np.asarray(x, np.float64)
    bce = -np.sum(xs * np.log(p) + (1 - xs) * np.log(1 - p), axis=(1, 2, 3)).mean()
    assert_close(float(t.nll), bce, F32, "BCE")
