r"""The reconstruction-disentanglement trade-off over a (β, λ) grid: Pareto front and Tchebycheff choice.

Each cell of the grid is a point :math:`(\mathrm{NLL}, \mathrm{MIG})` (means over seeds): lower NLL and
higher MIG are better. The *Pareto front* is the set of cells no other cell beats in both. For a
weight :math:`w \in [0, 1]` on reconstruction, the *Tchebycheff-optimal* cell minimises the largest
weighted, normalised regret

.. math::
    g_w(c) = \max\Big(w\,\frac{\mathrm{NLL}_c - \mathrm{NLL}^\ast}{\mathrm{NLL}^{\rm nad} - \mathrm{NLL}^\ast},\;
        (1 - w)\,\frac{\mathrm{MIG}^\ast - \mathrm{MIG}_c}{\mathrm{MIG}^\ast - \mathrm{MIG}^{\rm nad}}\Big),

with the ideal point (best NLL, best MIG) and the nadir (worst of each) over the grid; ties go to the
smaller weighted sum (the augmented Tchebycheff rule), so the choice is always on the front. Unlike a
weighted sum, sweeping :math:`w` reaches every front cell, including those in non-convex dents
(Miettinen 1999, *Nonlinear Multiobjective Optimization*, §3.4).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def pareto_front(points: Sequence[tuple[float, float]]) -> list[int]:
    """Indices of the points not dominated in (lower NLL, higher MIG), sorted by NLL.

    Points with a non-finite coordinate are ignored; of equal points the first is kept.

    >>> pareto_front([(3.0, 0.1), (1.0, 0.2), (2.0, 0.5), (2.5, 0.4), (4.0, 0.6)])
    [1, 2, 4]
    """
    pts = [(i, x, y) for i, (x, y) in enumerate(points) if np.isfinite(x) and np.isfinite(y)]
    pts.sort(key=lambda t: (t[1], -t[2]))
    front, best = [], -np.inf
    for i, _, y in pts:
        if y > best:
            front.append(i)
            best = y
    return front


def tchebycheff_scores(points: Sequence[tuple[float, float]], weight: float) -> np.ndarray:
    """:math:`g_w` of every point (``inf`` where a coordinate is not finite); see the module docstring.

    Raises:
        ValueError: ``weight`` outside [0, 1].
    """
    if not 0.0 <= weight <= 1.0:
        raise ValueError(f"the Tchebycheff weight must lie in [0, 1]; got {weight}")
    p = np.asarray(points, np.float64).reshape(-1, 2)
    ok = np.all(np.isfinite(p), axis=1)
    out = np.full(p.shape[0], np.inf)
    if not ok.any():
        return out
    nll, mig = p[ok, 0], p[ok, 1]
    span_nll = max(float(nll.max() - nll.min()), 1e-300)
    span_mig = max(float(mig.max() - mig.min()), 1e-300)
    regret_nll = (nll - nll.min()) / span_nll
    regret_mig = (mig.max() - mig) / span_mig
    out[ok] = np.maximum(weight * regret_nll, (1.0 - weight) * regret_mig)
    return out


def tchebycheff(points: Sequence[tuple[float, float]], weight: float) -> int | None:
    """Index of the Tchebycheff-optimal point for ``weight`` on reconstruction (``None`` if no point
    is finite). ``weight = 1`` picks the best NLL, ``weight = 0`` the best MIG.

    >>> tchebycheff([(1.0, 0.1), (2.0, 0.5), (3.0, 0.6), (4.0, 0.2)], 0.5)
    1
    """
    g = tchebycheff_scores(points, weight)
    if not np.isfinite(g).any():
        return None
    p = np.asarray(points, np.float64).reshape(-1, 2)
    ok = np.isfinite(g)
    nll, mig = p[:, 0], p[:, 1]
    span_nll = max(float(np.ptp(nll[ok])), 1e-300)
    span_mig = max(float(np.ptp(mig[ok])), 1e-300)
    tie = np.where(
        ok,
        weight * (nll - nll[ok].min()) / span_nll + (1.0 - weight) * (mig[ok].max() - mig) / span_mig,
        np.inf,
    )
    order = np.lexsort((tie, np.round(g, 12)))
    return int(order[0])
