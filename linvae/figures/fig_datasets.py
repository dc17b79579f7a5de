"""Contact sheets of the deep-bridge data sets: for each one, rows that vary one factor at a time.

``compute`` loads each image data set with ``source="auto"`` (the real file when ``$LINVAE_DATA``
holds it, else the procedural stand-in) plus a small ``LinearGaussian`` seen as 8 x 8 images, renders
one row per factor through evenly spaced classes with the other factors held fixed, and stores each
sheet as a base64 PNG together with the factor names, the classes shown and the provenance. Panel
titles say "procedural stand-in" wherever one was used.
"""

from __future__ import annotations

import base64
import io
from typing import Any

import numpy as np

from linvae.figures import Figure

#: Fixed classes for the factors not being varied (the rest default to the middle class).
_BASE: dict[str, tuple[int, ...]] = {
    "dsprites": (2, 5, 0, 15, 15),
    "shapes3d": (0, 6, 3, 4, 0, 7),
    "mpi3d": (2, 1, 1, 1, 0, 20, 20),
}
_TILE = 64


def _linear_gaussian():
    """A 3-factor linear-Gaussian model whose columns of Gamma are smooth 8 x 8 patterns."""
    from linvae.deep.data import LinearGaussian

    y, x = np.mgrid[0:8, 0:8] / 7.0 - 0.5
    Gamma = np.stack([x.ravel(), y.ravel(), (np.exp(-8 * (x**2 + y**2)) - 0.4).ravel()], axis=-1)
    Sigma_V = np.array([[1.0, 0.2, 0.0], [0.2, 0.6, 0.1], [0.0, 0.1, 0.4]])
    return LinearGaussian(Sigma_V, Gamma, 0.01, bins=8, image_shape=(8, 8, 1))


def _sheet(dataset, columns: int) -> tuple[np.ndarray, list[list[int]]]:
    """One row per factor, ``columns`` evenly spaced classes each; (rows*64, columns*64, 3) uint8."""
    import jax.numpy as jnp

    sizes = dataset.factor_sizes
    base = np.asarray(_BASE.get(dataset.name, tuple(s // 2 for s in sizes)), np.int32)
    rows, shown = [], []
    for k, size in enumerate(sizes):
        classes = np.unique(np.round(np.linspace(0, size - 1, min(size, columns))).astype(np.int32))
        factors = np.repeat(base[None, :], len(classes), axis=0)
        factors[:, k] = classes
        images = np.asarray(dataset.images(jnp.asarray(factors)))
        h, w, c = images.shape[1:]
        images = np.kron(images, np.ones((_TILE // h, _TILE // w, 1), np.uint8))
        if c == 1:
            images = np.repeat(images, 3, axis=-1)
        tiles = np.full((columns, _TILE, _TILE, 3), 255, np.uint8)
        tiles[: len(classes)] = images
        gap = np.full((_TILE, 2, 3), 255, np.uint8)
        rows.append(np.concatenate([np.concatenate([t, gap], axis=1) for t in tiles], axis=1))
        shown.append(classes.tolist())
    gap_row = np.full((2, rows[0].shape[1], 3), 255, np.uint8)
    return np.concatenate([np.concatenate([r, gap_row], axis=0) for r in rows], axis=0), shown


def _png(array: np.ndarray) -> str:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG", optimize=True)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _unpng(text: str) -> np.ndarray:
    from PIL import Image

    with Image.open(io.BytesIO(base64.b64decode(text))) as im:
        return np.asarray(im.convert("RGB"))


def compute(fast: bool) -> dict[str, Any]:
    """Contact sheets of dSprites, Shapes3D, MPI3D (real or stand-in) and a LinearGaussian model."""
    from linvae.deep.data import load

    columns = 5 if fast else 8
    panels = []
    for dataset in [load(name) for name in ("dsprites", "shapes3d", "mpi3d")] + [_linear_gaussian()]:
        sheet, shown = _sheet(dataset, columns)
        panels.append(
            {
                "name": dataset.name,
                "factor_names": list(dataset.factor_names),
                "factor_sizes": list(dataset.factor_sizes),
                "classes_shown": shown,
                "provenance": dataset.provenance.to_dict(),
                "sheet_png_base64": _png(sheet),
            }
        )
    return {"columns": columns, "tile_pixels": _TILE, "panels": panels}


_TITLES = {
    "dsprites": "dSprites",
    "shapes3d": "Shapes3D",
    "mpi3d": "MPI3D-real",
    "linear_gaussian": "LinearGaussian",
}


def plot(data: dict[str, Any]):
    """A 2 x 2 grid of contact sheets; each row is labelled with the factor it varies."""
    from matplotlib.figure import Figure as MplFigure

    panels = data["panels"]
    sheets = [_unpng(p["sheet_png_base64"]) for p in panels]
    fig = MplFigure(figsize=(12.5, 10.5), layout="constrained")
    heights = [max(sheets[0].shape[0], sheets[1].shape[0]), max(sheets[2].shape[0], sheets[3].shape[0])]
    grid = fig.add_gridspec(2, 2, height_ratios=heights)
    step = data["tile_pixels"] + 2
    for i, (panel, sheet) in enumerate(zip(panels, sheets, strict=True)):
        ax = fig.add_subplot(grid[i // 2, i % 2])
        ax.imshow(sheet, interpolation="nearest")
        ax.set_yticks([step * k + step / 2 - 1 for k in range(len(panel["factor_names"]))])
        ax.set_yticklabels(
            [f"{n} ({s})" for n, s in zip(panel["factor_names"], panel["factor_sizes"], strict=True)],
            fontsize=9,
        )
        ax.set_xticks([])
        for spine in ax.spines.values():
            spine.set_visible(False)
        title = _TITLES.get(panel["name"], panel["name"])
        prov = panel["provenance"]
        if prov["kind"] == "procedural stand-in":
            kind = "synthetic ground truth" if panel["name"] == "linear_gaussian" else "procedural stand-in"
            title += f" — {kind}"
        else:
            title += f" — real file {prov['source'].rsplit('/', 1)[-1]}"
        ax.set_title(title, fontsize=11)
    fig.suptitle("Deep-bridge data sets: each row varies one factor (classes evenly spaced), others fixed")
    return fig


FIGURE = Figure(
    slug="datasets",
    description="Contact sheets of dSprites, Shapes3D, MPI3D (real or stand-in) and LinearGaussian",
    compute=compute,
    plot=plot,
)
