"""Figure registry: ``load_figures()[slug]`` -> a :class:`Figure` record.

Each figure lives in its own module ``linvae/figures/fig_<name>.py`` that defines ``FIGURE``. Compute
and plot are separate pure functions; only ``python -m linvae.figures`` (:mod:`linvae.figures.runner`)
touches files.

    compute(fast: bool) -> dict   # the numbers plotted plus their configuration (JSON-serialisable)
    compute(fast, cache=folder)   # if FIGURE.uses_cache: a resumable computation keeps its pieces there
    compute(fast, full=True)      # if FIGURE.has_full: the published protocol instead of the CPU budget
    plot(data: dict) -> matplotlib.figure.Figure

``plot`` must also accept the ``data`` block read back from ``figures/<slug>.json`` (lists instead of
arrays, ``None`` where a value was not finite), so a figure can be redrawn without recomputing it.

Figures whose modules need an optional extra (``datasets`` needs ``linvae[deep]``: equinox) declare it
in :data:`_MODULES`; the entry point skips them with a note when the extra is not installed, so the
base install regenerates every theory figure.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
from collections.abc import Callable
from typing import Any

#: Modules holding one ``FIGURE`` each, in the order ``--list`` shows them, with the importable
#: packages each figure needs beyond the base install.
_MODULES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("fig_gain_contraction", ()),
    ("fig_mi_collapse", ()),
    ("fig_lambda_recovery", ()),
    ("fig_phase_diagram", ()),
    ("fig_encoder_spectrum", ()),
    ("fig_flow_vs_map", ()),
    ("fig_diag_vs_full", ()),
    ("fig_ichikawa_dynamics", ()),
    ("fig_kumar_poole", ()),
    ("fig_controllers", ()),
    ("fig_datasets", ("equinox", "jaxtyping", "PIL")),
    ("fig_deep_linear_bridge", ("equinox", "jaxtyping")),
    # Last: the longest (its AdamW half; with --full the published protocol, hours on a CPU).
    ("fig_linear_grid", ()),
)

#: equinox and jaxtyping come with the base install (through diffrax); they are listed so that a
#: trimmed environment skips these figures with a note instead of failing.

#: The extra that provides each optional package, for the skip note.
EXTRAS: dict[str, str] = {"equinox": "deep", "jaxtyping": "deep", "PIL": "deep"}


@dataclasses.dataclass(frozen=True, kw_only=True)
class Figure:
    """A figure: slug, one-line description, and its compute / plot pair.

    Attributes:
        slug: file stem of ``figures/<slug>.{png,pdf,json}``.
        description: one line for ``--list``.
        compute: ``compute(fast) -> dict`` of JSON-serialisable numbers and configuration.
        plot: ``plot(data) -> matplotlib.figure.Figure``.
        requires: importable packages beyond the base install (filled in from :data:`_MODULES`).
        uses_cache: ``compute`` also takes ``cache=<folder>`` (keyword) where it may keep finished
            pieces of work between runs (a resumable long computation); the entry point passes
            ``<out>/.cache/<slug>``.
        has_full: ``compute`` also takes ``full=`` (keyword): ``True`` runs a published protocol that is
            too long for the default run on a CPU (``--full``), ``None`` lets the figure choose by backend.
        background: for a ``uses_cache`` figure, ``background(fast, cache=, full=)`` fills the cache with
            an independent part of ``compute``'s work; when several figures are drawn, the entry point runs
            it in a process of its own from the start, so that it overlaps the other figures (on 2 cores
            the figures' single-threaded stretches leave a core idle), and ``compute`` reads it back.
    """

    slug: str
    description: str
    compute: Callable[..., dict[str, Any]]
    plot: Callable[[dict[str, Any]], Any]
    requires: tuple[str, ...] = ()
    uses_cache: bool = False
    has_full: bool = False
    background: Callable[..., None] | None = None

    def missing(self) -> tuple[str, ...]:
        """The packages of :attr:`requires` that cannot be imported here."""
        return tuple(p for p in self.requires if importlib.util.find_spec(p) is None)


def load_figures() -> dict[str, Figure]:
    """Import every figure module and return the registry, in display order.

    A module that is not present (a figure still being written) is skipped; an import error inside an
    existing module propagates.
    """
    figures: dict[str, Figure] = {}
    for name, requires in _MODULES:
        try:
            module = importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as err:
            if err.name == f"{__name__}.{name}":
                continue
            raise
        fig: Figure = module.FIGURE
        if requires:
            fig = dataclasses.replace(fig, requires=tuple(dict.fromkeys(fig.requires + requires)))
        figures[fig.slug] = fig
    return figures
