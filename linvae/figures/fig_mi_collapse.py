r"""``mi-collapse``: every information measure vanishes like :math:`\beta^{-2t}` at λ = 0 (T10).

Alternating map on the published instance (n = 50, m = 10, first published initialisation), β > 1,
λ = 0: :math:`I(X;Y)`, :math:`I(X;V)`, the largest pairwise :math:`I(x_i;v_j)`, linear SAP and :math:`I_m` per
sweep (markers) under the bound :math:`\tfrac12\|\Sigma_Y\|_2\|K_0\|_F^2\beta^{-2t}` of T10 (line), with the
chain :math:`\max I(x_i;v_j) \le I(X;V) \le I(X;Y)`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from linvae import numeric as nm
from linvae.figures import Figure, style
from linvae.figures._linear import gain_singular_values, information_along, map_trajectory
from linvae.numeric._precision import float64

BETAS = (1.5, 2.0, 4.0)
#: Mutual informations are differences of log-determinants of O(1) matrices: below ~1e-14 nats the
#: float64 value is roundoff, so the plot stops there (the JSON keeps every value).
ROUNDOFF_FLOOR = 1e-14


@float64
def compute(fast: bool) -> dict[str, Any]:
    prob = nm.authors_instance(50)
    B0, W0 = nm.authors_inits(50)
    init = (np.asarray(B0[:1]), np.asarray(W0[:1]))
    sweeps = 10 if fast else 40
    Bs, Ws = map_trajectory(prob, BETAS, 0.0, init, sweeps)
    info = information_along(prob, Bs[:, 0], Ws[:, 0])
    K0 = gain_singular_values(Bs[:, 0, 0], Ws[:, 0, 0])  # (b, m)
    t = np.arange(sweeps + 1)
    mu1 = float(prob.mu[0])
    bound = 0.5 * mu1 * np.sum(K0**2, axis=-1)[:, None] * np.asarray(BETAS)[:, None] ** (-2.0 * t[None, :])
    mi_xy = np.asarray(info.mi_xy)
    mi_xv = np.asarray(info.mi_xv)
    maxpw = np.asarray(info.pairwise).max(axis=(-2, -1))
    resolved = mi_xy[:, 1:] > ROUNDOFF_FLOOR
    return {
        "config": {
            "problem": "authors_instance(n=50), m=10, first published init",
            "betas": BETAS,
            "lam": 0.0,
            "sweeps": sweeps,
            "roundoff_floor": ROUNDOFF_FLOOR,
        },
        "t": t,
        "mi_xy": mi_xy,
        "mi_xv": mi_xv,
        "max_pairwise": maxpw,
        "sap": np.asarray(info.sap),
        "i_m": np.asarray(info.i_m),
        "bound": bound,
        "bound_holds_t_ge_1": bool(np.all(mi_xy[:, 1:][resolved] <= bound[:, 1:][resolved])),
        "chain_holds": bool(
            np.all(maxpw <= mi_xv + ROUNDOFF_FLOOR) and np.all(mi_xv <= mi_xy + ROUNDOFF_FLOOR)
        ),
    }


_SERIES = (
    ("mi_xy", r"$I(X;Y)$"),
    ("mi_xv", r"$I(X;V)$"),
    ("max_pairwise", r"$\max_{ij} I(x_i;v_j)$"),
    ("i_m", r"$I_m$"),
    ("sap", "SAP (dimensionless)"),
)


def plot(data: dict[str, Any]):
    betas = data["config"]["betas"]
    floor = data["config"]["roundoff_floor"]
    fig, axes = style.figure(1, len(betas), width=3.4, height=3.1, sharey=True)
    t = style.arr(data["t"])
    col = style.shades(len(_SERIES), hi=0.85)
    for i, beta in enumerate(betas):
        ax = axes[0, i]
        ax.plot(
            t[1:],
            style.arr(data["bound"])[i, 1:],
            color="k",
            lw=1.4,
            label=r"bound $\frac{1}{2}\|\Sigma_Y\|_2\|K_0\|_F^2\beta^{-2t}$",
        )
        for j, (key, label) in enumerate(_SERIES):
            y = style.arr(data[key])[i]
            y = np.where(y > floor, y, np.nan)
            ax.plot(
                t,
                y,
                ls="none",
                marker=style.MARKERS[j],
                color=col[j],
                ms=4,
                mfc=col[j] if j % 2 == 0 else "none",
                label=label,
            )
        ax.set_yscale("log")
        ax.set_ylim(floor, None)
        ax.set_xlabel("alternating-map sweep t")
        ax.set_title(f"β = {beta:g}, λ = 0")
        if i == 0:
            ax.set_ylabel("information (nats); SAP")
    axes[0, 0].legend(loc="lower left", fontsize=7)
    ok = "holds" if data["bound_holds_t_ge_1"] and data["chain_holds"] else "VIOLATED"
    style.note(
        axes[0, -1], f"T10 bound and MI chain: {ok}\nmarkers below {floor:g} nats\nare roundoff (not drawn)"
    )
    fig.suptitle("Information collapse of the alternating map (D1, published instance n = 50, m = 10)")
    return fig


FIGURE = Figure(
    slug="mi-collapse",
    description="I(X;Y), I(X;V), max pairwise MI, SAP, I_m vs sweep for beta > 1, lambda=0, "
    "under the T10 bound",
    compute=compute,
    plot=plot,
)
