"""Mixed-radix index <-> class indices, sampling determinism, and jitted on-device batches."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from linvae.deep.data import (
    DSPRITES,
    MPI3D,
    SHAPES3D,
    DSpritesReplica,
    MPI3DLike,
    factors_to_index,
    index_to_factors,
    make_batcher,
)
from linvae.deep.data.grid import FactorGrid

# A short list of grids: every new shape recompiles.
GRIDS = [DSPRITES.sizes, SHAPES3D.sizes, MPI3D.sizes, (2, 2, 2, 3, 3, 4, 4), (5,)]


@given(sizes=st.sampled_from(GRIDS), data=st.data())
def test_index_round_trip(sizes, data):
    n = int(np.prod(sizes))
    index = np.asarray(data.draw(st.lists(st.integers(0, n - 1), min_size=8, max_size=8)))
    factors = index_to_factors(jnp.asarray(index, jnp.int32), sizes)
    assert factors.dtype == jnp.int32 and factors.shape == (8, len(sizes))
    np.testing.assert_array_equal(np.asarray(factors), np.stack(np.unravel_index(index, sizes), -1))
    np.testing.assert_array_equal(np.asarray(factors_to_index(factors, sizes)), index)


def test_c_order_last_factor_fastest():
    assert DSPRITES.strides == (245760, 40960, 1024, 32, 1)
    np.testing.assert_array_equal(
        np.asarray(index_to_factors(jnp.arange(3), (2, 3))), [[0, 0], [0, 1], [0, 2]]
    )
    assert (
        int(factors_to_index(jnp.asarray([[2, 5, 39, 31, 31]]), DSPRITES.sizes)[0]) == DSPRITES.num_images - 1
    )


def test_grid_validation_and_resizing():
    with pytest.raises(ValueError, match="one entry per factor"):
        FactorGrid(names=("a",), sizes=(2, 3), values=((0.0, 1.0),))
    small = SHAPES3D.with_sizes((2, 2, 2, 2, 2, 3))
    assert small.values[5] == (-30.0, 0.0, 30.0) and small.values[4] == ("cube", "cylinder")


def test_sample_factors_is_deterministic_and_covers_the_grid():
    ds = MPI3DLike()
    a = ds.sample_factors(jax.random.key(3), 4096)
    b = ds.sample_factors(jax.random.key(3), 4096)
    c = ds.sample_factors(jax.random.key(4), 4096)
    assert a.dtype == jnp.int32 and a.shape == (4096, 7)
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert not np.array_equal(np.asarray(a), np.asarray(c))
    a = np.asarray(a)
    for k, size in enumerate(ds.factor_sizes):
        assert a[:, k].min() == 0 and a[:, k].max() == size - 1


def test_batcher_is_jitted_and_matches_images():
    ds = DSpritesReplica()
    draw = make_batcher(ds, 16)
    batch = draw(jax.random.key(0))
    assert batch.images.shape == (16, 64, 64, 1) and batch.images.dtype == jnp.uint8
    np.testing.assert_array_equal(np.asarray(batch.images), np.asarray(ds.images(batch.factors)))
    np.testing.assert_array_equal(np.asarray(draw(jax.random.key(0)).factors), np.asarray(batch.factors))
    # The whole draw is one compiled XLA computation: sampling and rendering, no host step inside.
    text = jax.jit(lambda d, k: d.batch(k, 16)).lower(ds, jax.random.key(0)).as_text()
    assert "callback" not in text and "stablehlo.gather" in text
