"""The single entry point: ``load(name, data_dir=..., source=...)`` for the three image data sets."""

from __future__ import annotations

import os
from typing import Literal

from linvae.deep.data.arm import MPI3DLike
from linvae.deep.data.dataset import AbstractDataset
from linvae.deep.data.files import (
    DSPRITES_FILE,
    MPI3D_FILE,
    SHAPES3D_FILE,
    find_file,
    load_dsprites,
    load_mpi3d,
    load_shapes3d,
)
from linvae.deep.data.room import Shapes3DLike
from linvae.deep.data.sprite import DSpritesReplica

NAMES = ("dsprites", "shapes3d", "mpi3d")
_ALIASES = {"3dshapes": "shapes3d", "mpi3d_real": "mpi3d", "mpi3d-real": "mpi3d"}
_REAL = {
    "dsprites": (DSPRITES_FILE, load_dsprites),
    "shapes3d": (SHAPES3D_FILE, load_shapes3d),
    "mpi3d": (MPI3D_FILE, load_mpi3d),
}
_PROCEDURAL = {"dsprites": DSpritesReplica, "shapes3d": Shapes3DLike, "mpi3d": MPI3DLike}


def load(
    name: str,
    *,
    data_dir: str | os.PathLike[str] | None = None,
    source: Literal["auto", "real", "procedural"] = "auto",
) -> AbstractDataset:
    """A data set by name: the real file, or its procedural stand-in.

    Args:
        name: ``"dsprites"``, ``"shapes3d"`` (or ``"3dshapes"``) or ``"mpi3d"`` (or ``"mpi3d_real"``).
        data_dir: folder holding the real files; else ``$LINVAE_DATA``, then ``$DISENTANGLEMENT_LIB_DATA``.
        source: ``"real"`` requires the file (``FileNotFoundError`` naming it if absent);
            ``"procedural"`` always gives the stand-in; ``"auto"`` loads the file when one is found and
            the stand-in otherwise. A file that is found but malformed is an error in every mode.
            Check ``dataset.provenance`` to see which one you got.

    Returns:
        The data set.

    Raises:
        ValueError: an unknown name or source.

    ``LinearGaussian`` takes arrays; build it directly.
    """
    key = _ALIASES.get(name.lower(), name.lower())
    if key not in NAMES:
        hint = " (build LinearGaussian(Sigma_V, Gamma, sigma2) directly)" if "linear" in key else ""
        raise ValueError(f"unknown data set {name!r}; known: {', '.join(NAMES)}{hint}")
    if source not in ("auto", "real", "procedural"):
        raise ValueError(f"source must be 'auto', 'real' or 'procedural'; got {source!r}")
    spec, loader = _REAL[key]
    if source == "real" or (source == "auto" and find_file(spec, data_dir) is not None):
        return loader(data_dir)
    return _PROCEDURAL[key]()
