"""Figure registry: ``FIGURES[slug]`` -> a :class:`Figure` record.

Each figure lives in its own module ``linvae/figures/fig_<name>.py`` that defines ``FIGURE``. Compute
and plot are separate pure functions; only ``python -m linvae.figures`` touches files.

    compute(fast: bool) -> dict   # the numbers plotted plus their configuration (JSON-serialisable)
    plot(data: dict) -> matplotlib.figure.Figure
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable
from typing import Any

#: Modules holding one ``FIGURE`` each, in the order ``--list`` shows them.
_MODULES: tuple[str, ...] = (
    "fig_gain_contraction",
    "fig_lambda_recovery",
    "fig_datasets",
)


@dataclasses.dataclass(frozen=True, kw_only=True)
class Figure:
    """A figure: slug, one-line description, and its compute / plot pair."""

    slug: str
    description: str
    compute: Callable[[bool], dict[str, Any]]
    plot: Callable[[dict[str, Any]], Any]


def load_figures() -> dict[str, Figure]:
    """Import every figure module and return the registry, in display order.

    A module that is not present (a figure still being written) is skipped; an import error inside an
    existing module propagates.
    """
    figures: dict[str, Figure] = {}
    for name in _MODULES:
        try:
            module = importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as err:
            if err.name == f"{__name__}.{name}":
                continue
            raise
        fig: Figure = module.FIGURE
        figures[fig.slug] = fig
    return figures
