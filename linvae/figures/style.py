"""The one matplotlib style of every linvae figure, applied inside a context, never at import.

Conventions: theory (closed forms, bounds, laws) is drawn as **lines**; numerics (the alternating map,
the gradient flow, optimisers, simulations) as **markers** without lines. Series are told apart by
lightness (a sequential ramp that stays readable in greyscale), by marker shape and by line style, never by
hue alone. Every axis names its quantity and unit (nats, sweeps, flow time, ...).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import matplotlib
import numpy as np

#: rcParams of the linvae style (greyscale-readable, print sizes, vector-friendly fonts).
RC: dict[str, object] = {
    "figure.dpi": 110,
    "savefig.dpi": 150,
    "savefig.bbox": "tight",
    "font.size": 9.5,
    "axes.titlesize": 10,
    "axes.labelsize": 9.5,
    "legend.fontsize": 8,
    "legend.frameon": False,
    "xtick.labelsize": 8.5,
    "ytick.labelsize": 8.5,
    "axes.grid": True,
    "grid.color": "0.88",
    "grid.linewidth": 0.6,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "lines.linewidth": 1.5,
    "lines.markersize": 5,
    "image.cmap": "cividis",
    "pdf.fonttype": 42,
    "ps.fonttype": 42,
    "svg.fonttype": "none",
}

#: Marker shapes for numeric series, in order.
MARKERS: tuple[str, ...] = ("o", "s", "^", "D", "v", "P", "X", "<")
#: Line styles for theory series, in order.
LINESTYLES: tuple[object, ...] = ("-", "--", "-.", ":", (0, (5, 1, 1, 1)), (0, (1, 1)))
#: Sequential colormap whose lightness rises monotonically (readable in greyscale).
CMAP = "cividis"


@contextlib.contextmanager
def context() -> Iterator[None]:
    """Apply :data:`RC` for the duration of a ``with`` block (plot and save inside it)."""
    with matplotlib.rc_context(RC):
        yield


def shades(k: int, lo: float = 0.0, hi: float = 0.8) -> list[tuple[float, float, float, float]]:
    """``k`` colours from dark to light along :data:`CMAP` (distinct in greyscale for k <= ~5)."""
    cmap = matplotlib.colormaps[CMAP]
    return [cmap(x) for x in np.linspace(lo, hi, max(k, 1))][:k] if k > 1 else [cmap(lo)]


def figure(nrows: int = 1, ncols: int = 1, *, width: float = 3.4, height: float = 2.8, **kw):
    """A constrained-layout :class:`matplotlib.figure.Figure` (no pyplot state) and its axes array."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width * ncols, height * nrows), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False, **kw)
    return fig, axes


def arr(x, dtype=float) -> np.ndarray:
    """``np.asarray`` that also reads JSON round-trips (``None`` -> NaN)."""
    return np.asarray(x, dtype=dtype)


def positive(x) -> np.ndarray:
    """Values for a log axis: non-positive entries (exact zeros of a collapsed code) become NaN."""
    a = arr(x)
    return np.where(a > 0, a, np.nan)


def note(ax, text: str, loc: str = "upper right") -> None:
    """A small boxed annotation inside an axes."""
    x, ha = (0.97, "right") if "right" in loc else (0.03, "left")
    y, va = (0.96, "top") if "upper" in loc else (0.5, "center") if "center" in loc else (0.04, "bottom")
    ax.text(
        x,
        y,
        text,
        transform=ax.transAxes,
        ha=ha,
        va=va,
        fontsize=7.5,
        bbox={"boxstyle": "round,pad=0.25", "fc": "white", "ec": "0.7", "lw": 0.6},
    )
