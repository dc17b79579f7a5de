"""Real-format loaders on tiny synthetic files written in tmp_path, and every malformed case."""

from __future__ import annotations

import zipfile

import h5py
import jax
import numpy as np
import pytest

from linvae.deep.data import (
    DataFileError,
    load,
    load_dsprites,
    load_mpi3d,
    load_shapes3d,
    make_batcher,
    to_device,
)
from linvae.deep.data.files import DSPRITES_FILE, MPI3D_FILE, SHAPES3D_FILE

DSPRITES_SIZES = (3, 2, 2, 2, 2)
SHAPES3D_SIZES = (2, 2, 2, 2, 2, 3)
MPI3D_SIZES = (2, 2, 2, 3, 3, 4, 4)


def _classes(sizes):
    n = int(np.prod(sizes))
    return np.stack(np.unravel_index(np.arange(n), sizes), axis=-1)


def write_dsprites(folder, *, drop=None, imgs_dtype=np.uint8, classes=None, sizes=DSPRITES_SIZES):
    folder.mkdir(parents=True, exist_ok=True)
    n = int(np.prod(sizes))
    rng = np.random.default_rng(0)
    arrays = {
        "imgs": rng.integers(0, 2, size=(n, 64, 64)).astype(imgs_dtype),
        "latents_classes": np.concatenate([np.zeros((n, 1), np.int64), _classes(sizes)], -1)
        if classes is None
        else classes,
        "latents_values": rng.normal(size=(n, 6)),
        "metadata": np.array({"latents_sizes": np.array((1, *sizes)), "title": "dSprites"}, dtype=object),
    }
    if drop:
        del arrays[drop]
    path = folder / DSPRITES_FILE.filename
    np.savez(path, **arrays)
    return path, arrays


def write_shapes3d(folder, *, sizes=SHAPES3D_SIZES, labels=None, drop=None, labels_dtype=np.float64):
    folder.mkdir(parents=True, exist_ok=True)
    n = int(np.prod(sizes))
    images = np.random.default_rng(1).integers(0, 256, size=(n, 64, 64, 3), dtype=np.uint8)
    if labels is None:
        labels = _classes(sizes) / 10.0
    path = folder / SHAPES3D_FILE.filename
    with h5py.File(path, "w") as f:
        f.create_dataset("images", data=images)
        if drop != "labels":
            f.create_dataset("labels", data=np.asarray(labels, labels_dtype))
    return path, images


def write_mpi3d(folder, *, compressed=False, key="images", dtype=np.uint8, sizes=MPI3D_SIZES):
    folder.mkdir(parents=True, exist_ok=True)
    n = int(np.prod(sizes))
    images = np.random.default_rng(2).integers(0, 256, size=(n, 64, 64, 3)).astype(dtype)
    path = folder / MPI3D_FILE.filename
    (np.savez_compressed if compressed else np.savez)(path, **{key: images})
    return path, images


def truncate(path, keep=0.5):
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


# ---------------------------------------------------------------------------------------------------
# dSprites


def test_dsprites_loads_and_maps_pixels_to_255(tmp_path):
    _, arrays = write_dsprites(tmp_path)
    ds = load_dsprites(tmp_path, factor_sizes=DSPRITES_SIZES)
    assert ds.array.shape == (48, 64, 64, 1) and ds.array.dtype == np.uint8
    assert not ds.provenance.is_stand_in and str(tmp_path) in str(ds.provenance)
    np.testing.assert_array_equal(ds.array[..., 0], arrays["imgs"] * 255)
    factors = np.array([[2, 1, 0, 1, 1], [0, 0, 1, 0, 1]])
    idx = np.asarray(ds.factors_to_index(factors))
    np.testing.assert_array_equal(np.asarray(ds.images(factors))[..., 0], arrays["imgs"][idx] * 255)


@pytest.mark.parametrize("drop", ["imgs", "latents_classes", "latents_values", "metadata"])
def test_dsprites_missing_key(tmp_path, drop):
    write_dsprites(tmp_path, drop=drop)
    with pytest.raises(DataFileError, match=rf"missing key.*{drop}.*{DSPRITES_FILE.filename}"):
        load_dsprites(tmp_path, factor_sizes=DSPRITES_SIZES)


def test_dsprites_wrong_dtype(tmp_path):
    write_dsprites(tmp_path, imgs_dtype=np.float32)
    with pytest.raises(DataFileError, match=r"'imgs' is float32 \(48, 64, 64\), expected u1 \(48, 64, 64\)"):
        load_dsprites(tmp_path, factor_sizes=DSPRITES_SIZES)


def test_dsprites_wrong_shape(tmp_path):
    write_dsprites(tmp_path)
    with pytest.raises(DataFileError, match=r"'imgs' is uint8 \(48, 64, 64\), expected u1 \(96, 64, 64\)"):
        load_dsprites(tmp_path, factor_sizes=(3, 2, 2, 2, 4))


def test_dsprites_classes_out_of_order(tmp_path):
    classes = np.concatenate([np.zeros((48, 1), np.int64), _classes(DSPRITES_SIZES)], -1)[::-1].copy()
    write_dsprites(tmp_path, classes=classes)
    with pytest.raises(DataFileError, match="C-order"):
        load_dsprites(tmp_path, factor_sizes=DSPRITES_SIZES)


def test_dsprites_truncated(tmp_path):
    path, _ = write_dsprites(tmp_path)
    truncate(path)
    with pytest.raises(DataFileError, match=r"truncated.*imgs uint8 \(48, 64, 64\)"):
        load_dsprites(tmp_path, factor_sizes=DSPRITES_SIZES)


def test_missing_file_names_file_and_places(tmp_path, monkeypatch):
    monkeypatch.delenv("LINVAE_DATA", raising=False)
    monkeypatch.delenv("DISENTANGLEMENT_LIB_DATA", raising=False)
    with pytest.raises(FileNotFoundError, match=rf"{DSPRITES_FILE.filename}.*imgs uint8.*{tmp_path}"):
        load_dsprites(tmp_path)
    with pytest.raises(FileNotFoundError, match="LINVAE_DATA"):
        load("mpi3d", source="real")


def test_path_resolution_order_at_call_time(tmp_path, monkeypatch):
    """Explicit data_dir, then $LINVAE_DATA, then $DISENTANGLEMENT_LIB_DATA (its dsprites/ sub-folder)."""
    first, second = tmp_path / "a", tmp_path / "b"
    write_dsprites(first)
    write_dsprites(second / "dsprites")
    monkeypatch.delenv("LINVAE_DATA", raising=False)
    monkeypatch.setenv("DISENTANGLEMENT_LIB_DATA", str(second))
    assert str(second / "dsprites") in load_dsprites(factor_sizes=DSPRITES_SIZES).provenance.source
    monkeypatch.setenv("LINVAE_DATA", str(first))
    assert load_dsprites(factor_sizes=DSPRITES_SIZES).provenance.source.startswith(str(first))
    assert str(second) in load_dsprites(second, factor_sizes=DSPRITES_SIZES).provenance.source


def test_auto_source_falls_back_to_labelled_stand_in(tmp_path, monkeypatch):
    monkeypatch.delenv("LINVAE_DATA", raising=False)
    monkeypatch.delenv("DISENTANGLEMENT_LIB_DATA", raising=False)
    ds = load("dsprites", data_dir=tmp_path)
    assert ds.provenance.is_stand_in and str(ds.provenance).startswith("procedural stand-in")
    with pytest.raises(ValueError, match="unknown data set 'cifar'"):
        load("cifar")
    with pytest.raises(ValueError, match="source must be"):
        load("dsprites", source="disk")  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------------
# Shapes3D


def test_shapes3d_converts_once_and_memory_maps(tmp_path):
    _, images = write_shapes3d(tmp_path)
    ds = load_shapes3d(tmp_path, factor_sizes=SHAPES3D_SIZES)
    cache = tmp_path / "3dshapes_images.npy"
    assert cache.is_file() and isinstance(ds.array, np.memmap)
    np.testing.assert_array_equal(np.asarray(ds.array), images)
    mtime = cache.stat().st_mtime_ns
    again = load_shapes3d(tmp_path, factor_sizes=SHAPES3D_SIZES)
    assert cache.stat().st_mtime_ns == mtime
    in_memory = load_shapes3d(tmp_path, factor_sizes=SHAPES3D_SIZES, convert=False)
    assert not isinstance(in_memory.array, np.memmap)
    factors = np.array([[1, 0, 1, 1, 0, 2]])
    np.testing.assert_array_equal(
        np.asarray(again.images(factors)), images[np.asarray(again.factors_to_index(factors))]
    )


def test_shapes3d_missing_labels(tmp_path):
    write_shapes3d(tmp_path, drop="labels")
    with pytest.raises(DataFileError, match=r"missing dataset.*labels.*labels float64 \(96, 6\)"):
        load_shapes3d(tmp_path, factor_sizes=SHAPES3D_SIZES)


def test_shapes3d_labels_wrong_dtype(tmp_path):
    write_shapes3d(tmp_path, labels_dtype=np.float32)
    with pytest.raises(DataFileError, match=r"'labels' is float32 \(96, 6\), expected f8"):
        load_shapes3d(tmp_path, factor_sizes=SHAPES3D_SIZES)


def test_shapes3d_labels_disagree_with_row_index(tmp_path):
    labels = _classes(SHAPES3D_SIZES) / 10.0
    labels[5, 5] = 0.9
    write_shapes3d(tmp_path, labels=labels)
    with pytest.raises(DataFileError, match=r"labels\[:, 5\] \(orientation\) differ within a class"):
        load_shapes3d(tmp_path, factor_sizes=SHAPES3D_SIZES)


def test_shapes3d_truncated(tmp_path):
    path, _ = write_shapes3d(tmp_path)
    truncate(path, 0.3)
    with pytest.raises(DataFileError, match=rf"{SHAPES3D_FILE.filename}.*images uint8 \(96, 64, 64, 3\)"):
        load_shapes3d(tmp_path, factor_sizes=SHAPES3D_SIZES)


# ---------------------------------------------------------------------------------------------------
# MPI3D-real


def test_mpi3d_stored_member_is_memory_mapped_in_the_zip(tmp_path):
    path, images = write_mpi3d(tmp_path)
    with zipfile.ZipFile(path) as zf:
        assert zf.getinfo("images.npy").compress_type == zipfile.ZIP_STORED
    ds = load_mpi3d(tmp_path, factor_sizes=MPI3D_SIZES)
    assert isinstance(ds.array, np.memmap) and str(ds.array.filename) == str(path.resolve())
    assert ds.array.dtype == np.uint8
    np.testing.assert_array_equal(np.asarray(ds.array), images)
    assert not (tmp_path / "mpi3d_real_images.npy").exists()


def test_mpi3d_compressed_member_is_converted_once(tmp_path):
    _, images = write_mpi3d(tmp_path, compressed=True)
    ds = load_mpi3d(tmp_path, factor_sizes=MPI3D_SIZES)
    assert (tmp_path / "mpi3d_real_images.npy").is_file()
    np.testing.assert_array_equal(np.asarray(ds.array), images)


def test_mpi3d_wrong_key(tmp_path):
    write_mpi3d(tmp_path, key="imgs")
    with pytest.raises(
        DataFileError, match=r"missing key 'images' \(has \['imgs'\]\).*images uint8 \(1152, 64, 64, 3\)"
    ):
        load_mpi3d(tmp_path, factor_sizes=MPI3D_SIZES)


def test_mpi3d_float64_rejected(tmp_path):
    write_mpi3d(tmp_path, dtype=np.float64, sizes=(2, 2, 2, 3, 3, 2, 2))
    with pytest.raises(DataFileError, match=r"'images' is float64 .* expected u1"):
        load_mpi3d(tmp_path, factor_sizes=(2, 2, 2, 3, 3, 2, 2))


@pytest.mark.parametrize("keep", [0.5, 0.999])
def test_mpi3d_truncated(tmp_path, keep):
    path, _ = write_mpi3d(tmp_path)
    truncate(path, keep)
    with pytest.raises(DataFileError, match=rf"{MPI3D_FILE.filename}"):
        load_mpi3d(tmp_path, factor_sizes=MPI3D_SIZES)


def test_stored_set_gathers_on_device_under_jit(tmp_path):
    write_mpi3d(tmp_path)
    host = load_mpi3d(tmp_path, factor_sizes=MPI3D_SIZES)
    ds = to_device(host)
    assert isinstance(ds.array, jax.Array) and not isinstance(host.array, jax.Array)
    text = jax.jit(lambda d, k: d.batch(k, 16)).lower(ds, jax.random.key(0)).as_text()
    assert "callback" not in text
    batch = make_batcher(host, 16)(jax.random.key(0))
    idx = np.asarray(ds.factors_to_index(batch.factors))
    np.testing.assert_array_equal(np.asarray(batch.images), np.asarray(host.array)[idx])
