"""The real files, where a user has them under $LINVAE_DATA (marker ``data``; skipped otherwise)."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from linvae.deep.data import DSpritesReplica, load, load_dsprites, load_mpi3d, load_shapes3d
from linvae.deep.data.files import DSPRITES_FILE, MPI3D_FILE, SHAPES3D_FILE, FileSpec, find_file

pytestmark = pytest.mark.data

IOU_SPEC = {0: 0.95, 1: 0.9, 2: 0.9}  # square, ellipse, heart (issue 6)


def _require(spec: FileSpec) -> None:
    if find_file(spec) is None:
        pytest.skip(f"{spec.filename} not under $LINVAE_DATA or $DISENTANGLEMENT_LIB_DATA")


def test_real_dsprites_agrees_with_the_replica():
    """Labelled real images, so no matching: the replica at the same classes, IoU per shape."""
    _require(DSPRITES_FILE)
    real = load_dsprites()
    assert not real.provenance.is_stand_in and real.array.shape == (737280, 64, 64, 1)
    factors = real.sample_factors(jax.random.key(0), 3000)
    a = np.asarray(real.images(factors))[..., 0] > 0
    b = np.asarray(DSpritesReplica().images(factors))[..., 0] > 0
    iou = (a & b).sum((1, 2)) / (a | b).sum((1, 2))
    shape = np.asarray(factors)[:, 0]
    for k, threshold in IOU_SPEC.items():
        assert iou[shape == k].mean() >= threshold, (k, iou[shape == k].mean())


def test_real_shapes3d_loads():
    _require(SHAPES3D_FILE)
    ds = load("shapes3d", source="real")
    assert ds.factor_sizes == (10, 10, 10, 8, 4, 15)
    batch = ds.batch(jax.random.key(1), 8)
    assert batch.images.shape == (8, 64, 64, 3) and batch.images.dtype == np.uint8
    assert load_shapes3d().array.shape == (480000, 64, 64, 3)


def test_real_mpi3d_is_memory_mapped():
    _require(MPI3D_FILE)
    ds = load_mpi3d()
    assert isinstance(ds.array, np.memmap) and ds.array.dtype == np.uint8
    assert ds.array.shape == (1036800, 64, 64, 3)
