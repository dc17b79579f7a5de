"""Real data-set files: where they are, what they must contain, and how they are read.

Paths are resolved when a loader is called, never at import: an explicit ``data_dir`` first, then
``$LINVAE_DATA``, then ``$DISENTANGLEMENT_LIB_DATA``; in each, the file may sit at the top or in the
sub-folder disentanglement_lib uses (``dsprites/``, ``3dshapes/``, ``mpi3d_real/``). A missing file is a
``FileNotFoundError`` and a truncated or malformed one a :class:`DataFileError`; both messages name the
expected file, keys, shapes and dtypes.

Images are never converted to float: dSprites' {0, 1} pixels become {0, 255} in place, Shapes3D is
converted once to a memory-mapped ``.npy`` beside the ``.h5`` (HDF5 random access is slow), and
MPI3D-real is memory-mapped at its member's offset inside the ``.npz`` when that member is stored
uncompressed (else converted once, streaming, to a ``.npy`` beside it).
"""

from __future__ import annotations

import dataclasses
import os
import pickle
import struct
import zipfile
from pathlib import Path

import numpy as np
from numpy.lib import format as npy_format

from linvae.deep.data.dataset import REAL, Provenance, Stored
from linvae.deep.data.grid import DSPRITES, MPI3D, SHAPES3D

ENV_VARS = ("LINVAE_DATA", "DISENTANGLEMENT_LIB_DATA")
_CHUNK_ROWS = 8192


class DataFileError(ValueError):
    """A data-set file exists but is truncated or does not have the expected keys, shapes or dtypes."""


@dataclasses.dataclass(frozen=True, kw_only=True)
class FileSpec:
    """What a real data-set file is called, where it usually lives, and what it must hold."""

    filename: str
    subdir: str
    contents: str

    def describe(self, num_images: int) -> str:
        """Human-readable expected contents for ``num_images`` rows."""
        return self.contents.format(n=num_images)


DSPRITES_FILE = FileSpec(
    filename="dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz",
    subdir="dsprites",
    contents=(
        "an npz saved from Python 2 (loaded with encoding='latin1', allow_pickle=True) with keys"
        " imgs uint8 ({n}, 64, 64) in {{0, 1}}, latents_classes integer ({n}, 6) in C order,"
        " latents_values float64 ({n}, 6), metadata (pickled dict with latents_sizes)"
    ),
)
SHAPES3D_FILE = FileSpec(
    filename="3dshapes.h5",
    subdir="3dshapes",
    contents="an HDF5 file with datasets images uint8 ({n}, 64, 64, 3) and labels float64 ({n}, 6)",
)
MPI3D_FILE = FileSpec(
    filename="mpi3d_real.npz",
    subdir="mpi3d_real",
    contents="an npz with the single key images uint8 ({n}, 64, 64, 3) in C order over the 7 factors",
)


def search_dirs(data_dir: str | os.PathLike[str] | None = None) -> list[Path]:
    """Folders searched, in order: ``data_dir``, ``$LINVAE_DATA``, ``$DISENTANGLEMENT_LIB_DATA``."""
    dirs = [Path(data_dir)] if data_dir is not None else []
    dirs += [Path(os.environ[v]) for v in ENV_VARS if os.environ.get(v)]
    return dirs


def find_file(spec: FileSpec, data_dir: str | os.PathLike[str] | None = None) -> Path | None:
    """The first existing candidate path for ``spec``, or None."""
    for d in search_dirs(data_dir):
        for candidate in (d / spec.filename, d / spec.subdir / spec.filename):
            if candidate.is_file():
                return candidate
    return None


def require_file(spec: FileSpec, data_dir: str | os.PathLike[str] | None, num_images: int) -> Path:
    """:func:`find_file`, or a ``FileNotFoundError`` naming every place looked and the expected contents."""
    path = find_file(spec, data_dir)
    if path is not None:
        return path
    tried = [
        str(p) for d in search_dirs(data_dir) for p in (d / spec.filename, d / spec.subdir / spec.filename)
    ]
    where = (
        "; ".join(tried)
        if tried
        else "nowhere: no data_dir given and $LINVAE_DATA, $DISENTANGLEMENT_LIB_DATA unset"
    )
    raise FileNotFoundError(
        f"expected {spec.filename} ({spec.describe(num_images)}); looked in {where}. Pass data_dir=..."
        f" (--data-dir) or set $LINVAE_DATA to the folder holding it."
    )


def _fail(path: Path, spec: FileSpec, num_images: int, problem: str) -> DataFileError:
    return DataFileError(f"{path}: {problem}; expected {spec.filename}: {spec.describe(num_images)}")


def _check_array(path: Path, spec: FileSpec, n: int, key: str, a, shape: tuple, kind: str) -> None:
    """``a`` must have ``shape`` and dtype kind ``kind`` ('u1' exact uint8, 'i' integer, 'f8' float64)."""
    ok_dtype = {
        "u1": a.dtype == np.uint8,
        "i": np.issubdtype(a.dtype, np.integer),
        "f8": a.dtype == np.float64,
    }[kind]
    if tuple(a.shape) != shape or not ok_dtype:
        raise _fail(path, spec, n, f"key {key!r} is {a.dtype} {tuple(a.shape)}, expected {kind} {shape}")


def _grid_classes(sizes: tuple[int, ...]) -> np.ndarray:
    n = int(np.prod(sizes))
    return np.stack(np.unravel_index(np.arange(n, dtype=np.int64), sizes), axis=-1)


# ---------------------------------------------------------------------------------------------------
# dSprites
# ---------------------------------------------------------------------------------------------------


def load_dsprites(
    data_dir: str | os.PathLike[str] | None = None,
    *,
    factor_sizes: tuple[int, ...] = DSPRITES.sizes,
) -> Stored:
    """Load the dSprites npz (color factor dropped; pixels {0, 1} -> {0, 255}).

    Args:
        data_dir: folder holding the file (else ``$LINVAE_DATA``, ``$DISENTANGLEMENT_LIB_DATA``).
        factor_sizes: sizes of (shape, scale, orientation, posX, posY); the real file's by default,
            smaller for tiny test files of the same format.

    Returns:
        A :class:`Stored` set with images (N, 64, 64, 1) uint8 in host memory.
    """
    grid = DSPRITES.with_sizes(factor_sizes) if factor_sizes != DSPRITES.sizes else DSPRITES
    n = grid.num_images
    spec = DSPRITES_FILE
    path = require_file(spec, data_dir, n)
    try:
        # Open the file here so that it is closed even when np.load rejects it.
        with open(path, "rb") as fh, np.load(fh, encoding="latin1", allow_pickle=True) as data:
            missing = {"imgs", "latents_classes", "latents_values", "metadata"} - set(data.files)
            if missing:
                raise _fail(path, spec, n, f"missing key(s) {sorted(missing)} (has {sorted(data.files)})")
            imgs = data["imgs"]
            classes = data["latents_classes"]
            values = data["latents_values"]
            metadata = data["metadata"][()]
    except DataFileError:
        raise
    except (
        zipfile.BadZipFile,
        EOFError,
        OSError,
        ValueError,
        KeyError,
        struct.error,
        pickle.UnpicklingError,
        ImportError,
        AttributeError,
    ) as err:
        raise _fail(
            path, spec, n, f"cannot be read ({type(err).__name__}: {err}); truncated or not an npz"
        ) from err
    _check_array(path, spec, n, "imgs", imgs, (n, 64, 64), "u1")
    _check_array(path, spec, n, "latents_classes", classes, (n, 6), "i")
    _check_array(path, spec, n, "latents_values", values, (n, 6), "f8")
    if not isinstance(metadata, dict) or "latents_sizes" not in metadata:
        raise _fail(path, spec, n, "metadata is not a dict with 'latents_sizes'")
    if tuple(int(s) for s in np.ravel(metadata["latents_sizes"])) != (1, *grid.sizes):
        raise _fail(
            path, spec, n, f"metadata latents_sizes {metadata['latents_sizes']} != {(1, *grid.sizes)}"
        )
    expected = np.concatenate([np.zeros((n, 1), np.int64), _grid_classes(grid.sizes)], axis=-1)
    if not np.array_equal(classes, expected):
        raise _fail(path, spec, n, "latents_classes are not the C-order enumeration of the factor grid")
    if imgs.max(initial=0) > 1:
        raise _fail(path, spec, n, f"imgs has values up to {imgs.max()}, expected {{0, 1}}")
    np.multiply(imgs, np.uint8(255), out=imgs)
    return Stored(
        array=imgs.reshape(n, 64, 64, 1),
        name="dsprites",
        grid=grid,
        image_shape=(64, 64, 1),
        provenance=Provenance(kind=REAL, source=str(path)),
    )


# ---------------------------------------------------------------------------------------------------
# Shapes3D
# ---------------------------------------------------------------------------------------------------


def _check_labels(path: Path, spec: FileSpec, labels: np.ndarray, sizes: tuple[int, ...]) -> None:
    """Each label column must be constant on every class of the row index and increase with the class."""
    classes = _grid_classes(sizes)
    n = len(classes)
    for k, size in enumerate(sizes):
        lo = np.full(size, np.inf)
        hi = np.full(size, -np.inf)
        np.minimum.at(lo, classes[:, k], labels[:, k])
        np.maximum.at(hi, classes[:, k], labels[:, k])
        if not np.array_equal(lo, hi):
            raise _fail(
                path, spec, n, f"labels[:, {k}] ({SHAPES3D.names[k]}) differ within a class of the row index"
            )
        if np.any(np.diff(lo) <= 0):
            raise _fail(
                path, spec, n, f"labels[:, {k}] ({SHAPES3D.names[k]}) do not increase with the class index"
            )


def _cache_path(path: Path) -> Path:
    return path.with_name(path.stem + "_images.npy")


def _open_cached(cache: Path, source: Path, shape: tuple[int, ...]) -> np.memmap | None:
    """The cached ``.npy`` as a read-only memmap if it is current and has the right shape and dtype."""
    if not cache.is_file() or cache.stat().st_mtime < source.stat().st_mtime:
        return None
    try:
        arr = np.load(cache, mmap_mode="r")
    except (OSError, ValueError):
        return None
    if arr.dtype != np.uint8 or tuple(arr.shape) != shape:
        return None
    return arr


def load_shapes3d(
    data_dir: str | os.PathLike[str] | None = None,
    *,
    factor_sizes: tuple[int, ...] = SHAPES3D.sizes,
    convert: bool = True,
) -> Stored:
    """Load ``3dshapes.h5``: class indices from the row index, checked against ``labels``.

    Args:
        data_dir: folder holding the file (else ``$LINVAE_DATA``, ``$DISENTANGLEMENT_LIB_DATA``).
        factor_sizes: the six factor sizes; the real file's by default.
        convert: convert the images once to ``<stem>_images.npy`` beside the file and memory-map it
            (reused while newer than the ``.h5``); if False, or the folder is read-only, read the images
            into memory once.

    Returns:
        A :class:`Stored` set with images (N, 64, 64, 3) uint8 on the host.
    """
    import h5py

    grid = SHAPES3D.with_sizes(factor_sizes) if factor_sizes != SHAPES3D.sizes else SHAPES3D
    n = grid.num_images
    spec = SHAPES3D_FILE
    path = require_file(spec, data_dir, n)
    shape = (n, 64, 64, 3)
    cache = _cache_path(path)
    try:
        with h5py.File(path, "r") as f:
            missing = {"images", "labels"} - set(f.keys())
            if missing:
                raise _fail(path, spec, n, f"missing dataset(s) {sorted(missing)} (has {sorted(f.keys())})")
            images, labels_ds = f["images"], f["labels"]
            _check_array(path, spec, n, "images", images, shape, "u1")
            _check_array(path, spec, n, "labels", labels_ds, (n, 6), "f8")
            labels = labels_ds[()]
            _check_labels(path, spec, labels, grid.sizes)
            array = _open_cached(cache, path, shape) if convert else None
            if array is None:
                array = _read_h5_images(images, cache if convert else None, shape)
    except DataFileError:
        raise
    except (OSError, KeyError, ValueError) as err:
        raise _fail(
            path, spec, n, f"cannot be read ({type(err).__name__}: {err}); truncated or not HDF5"
        ) from err
    return Stored(
        array=array,
        name="shapes3d",
        grid=grid,
        image_shape=(64, 64, 3),
        provenance=Provenance(kind=REAL, source=str(path)),
    )


def _read_h5_images(images, cache: Path | None, shape: tuple[int, ...]) -> np.ndarray:
    """Copy the HDF5 images in row chunks: into a new ``.npy`` (then memory-map it) or into memory."""
    if cache is not None:
        tmp = cache.with_name(cache.name + ".partial")
        try:
            out = npy_format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=shape)
        except OSError:
            cache = None
        else:
            for start in range(0, shape[0], _CHUNK_ROWS):
                out[start : start + _CHUNK_ROWS] = images[start : start + _CHUNK_ROWS]
            out.flush()
            del out
            os.replace(tmp, cache)
            return np.load(cache, mmap_mode="r")
    out = np.empty(shape, np.uint8)
    for start in range(0, shape[0], _CHUNK_ROWS):
        out[start : start + _CHUNK_ROWS] = images[start : start + _CHUNK_ROWS]
    return out


# ---------------------------------------------------------------------------------------------------
# MPI3D-real
# ---------------------------------------------------------------------------------------------------

_LOCAL_HEADER = struct.Struct("<IHHHHHIIIHH")
_LOCAL_MAGIC = 0x04034B50


def _npy_header(fp) -> tuple[tuple[int, ...], bool, np.dtype]:
    version = npy_format.read_magic(fp)
    if version == (1, 0):
        return npy_format.read_array_header_1_0(fp)
    return npy_format.read_array_header_2_0(fp)


def _stored_member_offset(path: Path, info: zipfile.ZipInfo) -> int:
    """Byte offset of an uncompressed zip member's data, read from its local file header."""
    with open(path, "rb") as fp:
        fp.seek(info.header_offset)
        raw = fp.read(_LOCAL_HEADER.size)
        if len(raw) != _LOCAL_HEADER.size:
            raise EOFError("local header of images.npy is cut off")
        fields = _LOCAL_HEADER.unpack(raw)
        if fields[0] != _LOCAL_MAGIC:
            raise zipfile.BadZipFile("bad local header signature for images.npy")
        name_len, extra_len = fields[9], fields[10]
        return info.header_offset + _LOCAL_HEADER.size + name_len + extra_len


def load_mpi3d(
    data_dir: str | os.PathLike[str] | None = None,
    *,
    factor_sizes: tuple[int, ...] = MPI3D.sizes,
) -> Stored:
    """Load ``mpi3d_real.npz`` without ever holding it as float (11.9 GiB as uint8).

    Args:
        data_dir: folder holding the file (else ``$LINVAE_DATA``, ``$DISENTANGLEMENT_LIB_DATA``).
        factor_sizes: the seven factor sizes; the real file's by default.

    Returns:
        A :class:`Stored` set whose array is a read-only memmap: into the ``.npz`` itself when the
        member is stored uncompressed, else into ``<stem>_images.npy`` converted once beside it.
    """
    grid = MPI3D.with_sizes(factor_sizes) if factor_sizes != MPI3D.sizes else MPI3D
    n = grid.num_images
    spec = MPI3D_FILE
    path = require_file(spec, data_dir, n)
    shape = (n, 64, 64, 3)
    try:
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
            if "images.npy" not in names:
                keys = sorted(m.removesuffix(".npy") for m in names)
                raise _fail(path, spec, n, f"missing key 'images' (has {keys})")
            info = zf.getinfo("images.npy")
            if info.compress_type == zipfile.ZIP_STORED:
                start = _stored_member_offset(path, info)
                with open(path, "rb") as fp:
                    fp.seek(start)
                    arr_shape, fortran, dtype = _npy_header(fp)
                    data_offset = fp.tell()
                _check_header(path, spec, n, arr_shape, fortran, dtype, shape)
                if path.stat().st_size < data_offset + int(np.prod(shape)):
                    raise _fail(path, spec, n, "images.npy is truncated (file shorter than its header says)")
                array = np.memmap(path, dtype=np.uint8, mode="r", offset=data_offset, shape=shape)
            else:
                cache = _cache_path(path)
                array = _open_cached(cache, path, shape)
                if array is None:
                    array = _convert_member(zf, path, spec, n, shape, cache)
    except DataFileError:
        raise
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, struct.error) as err:
        raise _fail(
            path, spec, n, f"cannot be read ({type(err).__name__}: {err}); truncated or not an npz"
        ) from err
    return Stored(
        array=array,
        name="mpi3d",
        grid=grid,
        image_shape=(64, 64, 3),
        provenance=Provenance(kind=REAL, source=str(path)),
    )


def _check_header(path, spec, n, arr_shape, fortran, dtype, shape) -> None:
    if tuple(arr_shape) != shape or np.dtype(dtype) != np.uint8 or fortran:
        order = "Fortran" if fortran else "C"
        raise _fail(
            path,
            spec,
            n,
            f"key 'images' is {np.dtype(dtype)} {tuple(arr_shape)} ({order} order), expected u1 {shape}",
        )


def _convert_member(
    zf: zipfile.ZipFile, path: Path, spec: FileSpec, n: int, shape, cache: Path
) -> np.ndarray:
    """Stream a compressed ``images.npy`` member into a ``.npy`` beside the archive, chunk by chunk."""
    with zf.open("images.npy") as member:
        arr_shape, fortran, dtype = _npy_header(member)
        _check_header(path, spec, n, arr_shape, fortran, dtype, shape)
        row = int(np.prod(shape[1:]))
        tmp = cache.with_name(cache.name + ".partial")
        out = npy_format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=shape)
        flat = out.reshape(shape[0], row)
        for start in range(0, shape[0], _CHUNK_ROWS):
            rows = min(_CHUNK_ROWS, shape[0] - start)
            buf = member.read(rows * row)
            if len(buf) != rows * row:
                del out, flat
                tmp.unlink(missing_ok=True)
                raise _fail(path, spec, n, "images.npy is truncated")
            flat[start : start + rows] = np.frombuffer(buf, np.uint8).reshape(rows, row)
        out.flush()
        del out, flat
    os.replace(tmp, cache)
    return np.load(cache, mmap_mode="r")
