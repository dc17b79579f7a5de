r"""``lambda-recovery``: the L2 term λ restores information for β > 1 by reverse
water-filling (T12, T13, T11).

Published instance (n = 50, m = 10). Lines: the closed form of docs/theory.md §3.9 — water level
:math:`D = (\beta-1)/(2\lambda)`, :math:`I(X;Y) = \sum_{\mu_i > D}\tfrac12\log(\mu_i/D)`,
:math:`I(X;V) = \sum_{\mu_i > D}\tfrac12\log\frac{\mu_i}{D + \sigma^2(1 - D/\mu_i)}` — zero at λ = 0 and
from the
threshold :math:`\beta_c(\lambda) = 1 + 2\lambda\mu_1` on (dotted verticals). Markers: stationary values
reached
by the alternating map (published initialisations) and by the gradient flow (block metric, random starts).
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from linvae import numeric as nm
from linvae.figures import Figure, style
from linvae.figures._linear import information_along
from linvae.numeric._precision import float64

LAMS = (0.0, 2.0, 4.0, 8.0)


def closed_form_information(mu: np.ndarray, sigma2: float, m: int, beta: np.ndarray, lam: float):
    """``(I(X;Y), I(X;V), |S|)`` of the water-filling point (docs/theory.md §3.9) on a β grid."""
    beta = np.asarray(beta, float)
    if lam == 0:
        z = np.zeros_like(beta)
        return z, z, z.astype(int)
    D = (beta[:, None] - 1.0) / (2.0 * lam)
    top = np.asarray(mu[:m])[None, :]
    active = top > D
    Ds = np.where(active, D, 1.0)
    i_xy = np.where(active, 0.5 * np.log(top / Ds), 0.0).sum(-1)
    i_xv = np.where(active, 0.5 * np.log(top / (Ds + sigma2 * (1.0 - Ds / top))), 0.0).sum(-1)
    return i_xy, i_xv, active.sum(-1)


def _marker_betas(beta_c: float, fast: bool) -> list[float]:
    grid = (1.5, 4.0, 16.0, 64.0, 256.0, 1024.0) if not fast else (2.0, 16.0, 256.0)
    # Keep clear of the threshold, where the map and the flow slow down critically.
    return [b for b in grid if abs(np.log(b / beta_c)) > 0.25]


@float64
def compute(fast: bool) -> dict[str, Any]:
    from linvae.numeric.flow import FlowConfig, flow_init, integrate

    prob = nm.authors_instance(50)
    m = nm.AUTHORS.m
    mu = np.asarray(prob.mu)
    sigma2 = float(prob.sigma2)
    B0, W0 = nm.authors_inits(50)
    k_map = 2 if fast else 5
    init = (B0[:k_map], W0[:k_map])
    beta_max = 2.0 * (1.0 + 2.0 * max(LAMS) * mu[0])
    betas = np.geomspace(1.0 + 1e-3, beta_max, 120 if not fast else 40)
    out: dict[str, Any] = {
        "config": {
            "problem": "authors_instance(n=50)",
            "m": m,
            "lams": LAMS,
            "mu_1": mu[0],
            "sigma2": sigma2,
            "map": {"inits": f"first {k_map} published", "tol": 1e-9, "max_sweeps": 20_000},
            "flow": {"metric": "block", "init": "flow_init(key=1)", "num_inits": 2},
        },
        "betas": betas,
        "curves": [],
    }
    cfg = FlowConfig(metric="block", chunks=4)
    for lam in LAMS:
        i_xy, i_xv, n_active = closed_form_information(mu, sigma2, m, betas, lam)
        beta_c = 1.0 + 2.0 * lam * mu[0]
        mb = _marker_betas(beta_c, fast)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", nm.NotConvergedWarning)
            st = nm.alternating_grid(prob, mb, [lam], init, tol=1e-9, max_sweeps=20_000, warn=False)
        info = information_along(prob, st.B[:, 0], st.Sigma_W[:, 0])
        fb = mb[::2] if not fast else mb[:2]
        finit = flow_init(prob, m, key=1, num=2)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", nm.NotConvergedWarning)
            sol = integrate(prob, fb, lam, finit, t1=60.0 if fast else 400.0, cfg=cfg)
        finfo = information_along(prob, sol.final.B[:, 0], sol.final.Sigma_W[:, 0])
        out["curves"].append(
            {
                "lam": lam,
                "beta_c": beta_c,
                "mi_xy": i_xy,
                "mi_xv": i_xv,
                "active": n_active,
                "map_betas": mb,
                "map_mi_xy": np.asarray(info.mi_xy).mean(-1),
                "map_mi_xv": np.asarray(info.mi_xv).mean(-1),
                "map_spread_mi_xy": np.ptp(np.asarray(info.mi_xy), axis=-1),
                "map_converged": np.asarray(st.converged[:, 0]).all(-1),
                "flow_betas": fb,
                "flow_mi_xy": np.asarray(finfo.mi_xy).mean(-1),
                "flow_mi_xv": np.asarray(finfo.mi_xv).mean(-1),
                "flow_status": np.asarray(sol.status[:, 0]).tolist(),
            }
        )
    # Largest gap between a numeric marker and the closed form, for the record.
    gaps = []
    for c in out["curves"]:
        ref = closed_form_information(mu, sigma2, m, c["map_betas"], c["lam"])[0]
        gaps.append(float(np.max(np.abs(np.asarray(c["map_mi_xy"]) - ref))) if len(ref) else 0.0)
    out["max_abs_gap_map_vs_closed_form_nats"] = max(gaps)
    return out


def plot(data: dict[str, Any]):
    fig, axes = style.figure(1, 2, width=4.3, height=3.4, sharey=True)
    curves = data["curves"]
    col = style.shades(len(curves))
    betas = style.arr(data["betas"])
    for ax, key, title in ((axes[0, 0], "mi_xy", r"$I(X;Y)$"), (axes[0, 1], "mi_xv", r"$I(X;V)$")):
        for i, c in enumerate(curves):
            ax.plot(betas, style.arr(c[key]), color=col[i], ls=style.LINESTYLES[i], label=f"λ = {c['lam']:g}")
            ax.plot(
                style.arr(c["map_betas"]),
                style.arr(c["map_" + key]),
                ls="none",
                marker="o",
                color=col[i],
                ms=5,
            )
            ax.plot(
                style.arr(c["flow_betas"]),
                style.arr(c["flow_" + key]),
                ls="none",
                marker="x",
                color=col[i],
                ms=7,
                mew=1.5,
            )
            if c["lam"] > 0:
                ax.axvline(c["beta_c"], color=col[i], ls=":", lw=1)
        ax.set_xscale("log")
        ax.set_xlabel("β (KL weight)")
        ax.set_title(f"stationary {title}")
    axes[0, 0].set_ylabel("information (nats)")
    from matplotlib.lines import Line2D

    handles, labels = axes[0, 0].get_legend_handles_labels()
    handles += [
        Line2D([], [], color="0.3", marker="o", ls="none"),
        Line2D([], [], color="0.3", marker="x", ls="none"),
        Line2D([], [], color="0.3", ls=":"),
    ]
    labels += ["alternating map", "gradient flow", r"$\beta_c = 1 + 2\lambda\mu_1$"]
    axes[0, 1].legend(handles, labels, loc="upper right")
    style.note(
        axes[0, 0],
        "lines: closed form (§3.9)\nλ = 0: zero for every β > 1\n"
        f"max |map − theory| = {data['max_abs_gap_map_vs_closed_form_nats']:.1e} nats",
        loc="upper right",
    )
    fig.suptitle("λ restores information: reverse water-filling (D1, published instance n = 50, m = 10)")
    return fig


FIGURE = Figure(
    slug="lambda-recovery",
    description="stationary I(X;Y), I(X;V) vs beta for lambda in {0,2,4,8}: closed form (lines), map "
    "and flow "
    "(markers), threshold beta_c(lambda)",
    compute=compute,
    plot=plot,
)
