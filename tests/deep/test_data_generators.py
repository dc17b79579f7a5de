"""Shapes3D-like, MPI3D-like and LinearGaussian stand-ins: structure, labels, exactness, statistics."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from linvae._tolerance import F32
from linvae.deep.data import LinearGaussian, MPI3DLike, Shapes3DLike, load, make_batcher, room


@pytest.fixture(scope="module")
def shapes3d():
    return Shapes3DLike()


def test_shapes3d_like_table_is_exact_ray_casting(shapes3d):
    """Composing from the coverage table equals ray-casting the same images directly."""
    factors = np.array([[0, 5, 3, 0, 0, 0], [9, 1, 7, 7, 0, 14], [4, 4, 4, 3, 0, 7]])
    table = np.asarray(shapes3d.images(jnp.asarray(factors))).astype(np.int32)
    direct = np.asarray(room.render_direct(factors)).astype(np.int32)
    # float32 summation order differs between the two paths: at most one uint8 level apart.
    assert np.abs(table - direct).max() <= 1


def test_shapes3d_like_factors_act_where_they_should(shapes3d):
    base = np.array([0, 5, 3, 4, 0, 7])
    images = {}
    for k in range(6):
        f = np.stack([base, base]).copy()
        f[1, k] = (base[k] + 1) % shapes3d.factor_sizes[k]
        a, b = np.asarray(shapes3d.images(jnp.asarray(f))).astype(np.int32)
        images[k] = np.any(a != b, axis=-1)
    assert shapes3d.provenance.is_stand_in and "stand-in" in str(shapes3d.provenance)
    # Hues: floor changes only the bottom rows, walls only the middle band, object only a blob.
    floor, wall, obj = images[0], images[1], images[2]
    assert floor[-1].all() and not floor[0].any()
    assert wall[32].any() and not wall[-1].any() and not wall[0].any()
    assert 0.02 < obj.mean() < 0.25
    # Anti-aliased edge pixels mix the object with what is behind it; nothing else does.
    assert (obj & floor).mean() < 0.01 and (obj & wall).mean() < 0.01
    for k in (3, 4, 5):  # scale, shape, azimuth each change the picture
        assert images[k].any()
    # The sky (top rows) is the same pale blue everywhere.
    top = np.asarray(shapes3d.images(shapes3d.sample_factors(jax.random.key(0), 32)))[:, 0]
    assert np.ptp(top.reshape(-1, 3), axis=0).max() == 0


def test_shapes3d_like_is_fast_enough_for_training(shapes3d):
    draw = make_batcher(shapes3d, 256)
    batch = draw(jax.random.key(1))
    assert batch.images.shape == (256, 64, 64, 3) and batch.images.dtype == jnp.uint8


def test_mpi3d_like_factors_and_label():
    ds = load("mpi3d", source="procedural")
    assert isinstance(ds, MPI3DLike) and "synthetic" in str(ds.provenance)
    assert ds.factor_sizes == (6, 6, 2, 3, 3, 40, 40)
    base = np.array([0, 0, 1, 1, 0, 20, 20])
    for k in range(7):
        f = np.stack([base, base]).copy()
        f[1, k] = (base[k] + 1) % ds.factor_sizes[k]
        a, b = np.asarray(ds.images(jnp.asarray(f)))
        assert np.any(a != b), ds.factor_names[k]


def _problem(seed: int):
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(3, 3))
    Sigma_V = A @ A.T + 0.5 * np.eye(3)
    Gamma = rng.normal(size=(12, 3))
    return Sigma_V, Gamma, 0.3


def test_linear_gaussian_covariance_matches_theory():
    """Sample covariance of x is Gamma Sigma_V Gamma^T + sigma2 I within 4 standard errors."""
    Sigma_V, Gamma, sigma2 = _problem(0)
    ds = LinearGaussian(Sigma_V, Gamma, sigma2, bins=5, image_shape=(3, 4, 1))
    n = 200_000
    x, v = ds.sample(jax.random.key(0), n)
    assert x.dtype == jnp.float32 and x.shape == (n, 12) and v.shape == (n, 3)
    x = np.asarray(x, np.float64)
    S_hat = x.T @ x / n
    S = Gamma @ Sigma_V @ Gamma.T + sigma2 * np.eye(12)
    # Var of a Wishart entry is (S_ij^2 + S_ii S_jj) / n; z = 4 standard errors elementwise.
    se = np.sqrt((S**2 + np.outer(np.diag(S), np.diag(S))) / n)
    assert np.all(np.abs(S_hat - S) <= 4 * se + F32.atol)


def test_linear_gaussian_classes_are_quantile_bins():
    Sigma_V, Gamma, sigma2 = _problem(1)
    ds = LinearGaussian(Sigma_V, Gamma, sigma2, bins=4)
    c = np.asarray(ds.sample_factors(jax.random.key(2), 40_000))
    assert c.dtype == np.int32 and c.min() == 0 and c.max() == 3
    freq = np.stack([np.bincount(c[:, j], minlength=4) / len(c) for j in range(3)])
    se = np.sqrt(0.25 * 0.75 / len(c))
    assert np.all(np.abs(freq - 0.25) <= 4 * se)
    batch = ds.batch(jax.random.key(3), 64)
    assert batch.images.dtype == jnp.uint8 and batch.images.shape == (64, 12, 1, 1)
    # Bin centroids of a standard normal are symmetric and increasing.
    cen = np.asarray(ds.centroids)
    assert np.all(np.diff(cen) > 0)
    assert abs(cen.sum()) <= F32.atol + F32.rtol * np.abs(cen).sum()


def test_linear_gaussian_encode_decode_round_trip():
    Sigma_V, Gamma, sigma2 = _problem(2)
    ds = LinearGaussian(Sigma_V, Gamma, sigma2)
    x, _ = ds.sample(jax.random.key(4), 1000)
    back = np.asarray(ds.decode(ds.encode(x)))
    inside = np.abs(np.asarray(x)) < 127 * float(ds.pixel_scale)
    assert np.all(np.abs(back - np.asarray(x))[inside] <= 0.5 * float(ds.pixel_scale) * (1 + F32.rtol))


def test_linear_gaussian_validates_arrays():
    with pytest.raises(ValueError, match="Gamma must be"):
        LinearGaussian(np.eye(2), np.ones((4, 3)), 0.1)
    with pytest.raises(ValueError, match="positive definite"):
        LinearGaussian(-np.eye(2), np.ones((4, 2)), 0.1)
    with pytest.raises(ValueError, match="image_shape"):
        LinearGaussian(np.eye(2), np.ones((4, 2)), 0.1, image_shape=(3, 1, 1))
    with pytest.raises(ValueError, match="LinearGaussian"):
        load("linear_gaussian")
