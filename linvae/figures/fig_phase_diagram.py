r"""``phase-diagram``: the (β, λ) plane of the λβ-VAE (T11, T13).

Published instance (n = 50, m = 10). Background: closed-form :math:`I(X;Y)` of the water-filling point
and the number of active directions :math:`|\mathcal S| = \#\{i \le m: \mu_i > (\beta-1)/(2\lambda)\}`. Lines:
the boundaries :math:`\beta = 1 + 2\lambda\mu_i` where direction i switches off; the outermost,
:math:`\beta_c = 1 + 2\lambda\mu_{\max}`, is where collapse becomes stable. Markers: the alternating map at
sample points (face colour = the map's :math:`I(X;Y)`; number = its count of active directions).
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from linvae import numeric as nm
from linvae.figures import Figure, style
from linvae.figures._linear import information_along
from linvae.figures.fig_lambda_recovery import closed_form_information
from linvae.numeric._precision import float64

#: A direction counts as active in a numeric state when its encoder variance is below 1 by more than this.
ACTIVE_GAP = 1e-6


@float64
def compute(fast: bool) -> dict[str, Any]:
    prob = nm.authors_instance(50)
    m = nm.AUTHORS.m
    mu = np.asarray(prob.mu)
    sigma2 = float(prob.sigma2)
    nb, nl = (40, 30) if fast else (160, 120)
    betas = np.geomspace(1.01, 5e3, nb)
    lams = np.geomspace(1e-2, 30.0, nl)
    mi = np.zeros((nl, nb))
    active = np.zeros((nl, nb), int)
    for j, lam in enumerate(lams):
        mi[j], _, active[j] = closed_form_information(mu, sigma2, m, betas, lam)
    sb = (2.0, 30.0, 400.0) if fast else (2.0, 8.0, 30.0, 120.0, 400.0, 1500.0)
    sl = (0.05, 1.0) if fast else (0.05, 0.3, 1.0, 4.0, 15.0)
    B0, W0 = nm.authors_inits(50)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", nm.NotConvergedWarning)
        st = nm.alternating_grid(prob, sb, sl, (B0[:1], W0[:1]), tol=1e-9, max_sweeps=20_000, warn=False)
    info = information_along(prob, st.B[..., 0, :, :], st.Sigma_W[..., 0, :, :])
    w = np.linalg.eigvalsh(np.asarray(st.Sigma_W[..., 0, :, :]))
    n_active = (w < 1.0 - ACTIVE_GAP).sum(-1)
    return {
        "config": {
            "problem": "authors_instance(n=50)",
            "m": m,
            "mu": mu[:m],
            "sigma2": sigma2,
            "map": {"init": "first published", "tol": 1e-9, "max_sweeps": 20_000},
            "active_gap": ACTIVE_GAP,
        },
        "betas": betas,
        "lams": lams,
        "mi_xy": mi,
        "active": active,
        "sample_betas": sb,
        "sample_lams": sl,
        "sample_mi_xy": np.asarray(info.mi_xy).T,  # (l, b)
        "sample_active": n_active.T,
        "sample_converged": np.asarray(st.converged[..., 0]).T,
        "sample_active_theory": np.array(
            [closed_form_information(mu, sigma2, m, np.asarray(sb), lam)[2] for lam in sl]
        ),
    }


def plot(data: dict[str, Any]):
    import matplotlib

    fig, axes = style.figure(1, 2, width=4.4, height=3.6, sharey=True)
    betas, lams = style.arr(data["betas"]), style.arr(data["lams"])
    mu = style.arr(data["config"]["mu"])
    mi, act = style.arr(data["mi_xy"]), style.arr(data["active"])
    sb, sl = style.arr(data["sample_betas"]), style.arr(data["sample_lams"])
    smi, sact = style.arr(data["sample_mi_xy"]), style.arr(data["sample_active"])
    norm = matplotlib.colors.Normalize(0.0, float(np.nanmax(mi)))
    a, b = axes[0]
    pm = a.pcolormesh(betas, lams, mi, cmap=style.CMAP, norm=norm, shading="nearest", rasterized=True)
    fig.colorbar(pm, ax=a, label=r"$I(X;Y)$ (nats)")
    BB, LL = np.meshgrid(sb, sl)
    a.scatter(
        BB.ravel(),
        LL.ravel(),
        c=smi.ravel(),
        cmap=style.CMAP,
        norm=norm,
        s=45,
        marker="o",
        edgecolors="k",
        linewidths=1.0,
        zorder=3,
        label="alternating map",
    )
    m = len(mu)
    levels = np.arange(m + 2) - 0.5
    cm = matplotlib.colormaps["Greys"].resampled(m + 1)
    pm2 = b.pcolormesh(betas, lams, act, cmap=cm, vmin=-0.5, vmax=m + 0.5, shading="nearest", rasterized=True)
    fig.colorbar(
        pm2, ax=b, label=r"active directions $|\mathcal{S}|$", ticks=range(0, m + 1, 2), boundaries=levels
    )
    for i, (bb, ll) in enumerate(zip(BB.ravel(), LL.ravel(), strict=True)):
        k = int(sact.ravel()[i])
        b.text(
            bb,
            ll,
            str(k),
            ha="center",
            va="center",
            fontsize=7.5,
            zorder=4,
            bbox={"boxstyle": "circle,pad=0.2", "fc": "white", "ec": "k", "lw": 0.8},
        )
    for ax in (a, b):
        for i, mui in enumerate(mu):
            lam_line = (betas - 1.0) / (2.0 * mui)
            ax.plot(
                betas,
                lam_line,
                color="w" if ax is a else "tab:red" if False else "k",
                lw=2.0 if i == 0 else 0.6,
                ls="-" if i == 0 else "--",
                alpha=1.0 if i == 0 else 0.7,
            )
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlim(betas[0], betas[-1])
        ax.set_ylim(lams[0], lams[-1])
        ax.set_xlabel("β (KL weight)")
        ax.grid(False)
    a.set_ylabel("λ (L2 weight, 1/variance)")
    a.set_title(r"$I(X;Y)$: closed form (background), map (dots)")
    b.set_title(r"$|\mathcal{S}|$; numbers: map's count")
    fig.text(
        0.5,
        -0.03,
        r"lines: $\beta = 1 + 2\lambda\mu_i$ where direction i switches off (dashed, i ≤ m); solid: "
        r"$\beta_c = 1 + 2\lambda\mu_{\max}$, right of it the collapsed point is stable and $I(X;Y) = 0$",
        ha="center",
        fontsize=8,
    )
    fig.suptitle("Phase diagram of the λβ-VAE (D1, published instance n = 50, m = 10)")
    return fig


FIGURE = Figure(
    slug="phase-diagram",
    description="(beta, lambda) map of I(X;Y) and of the number of active directions, "
    "with beta = 1 + 2 lambda mu_max",
    compute=compute,
    plot=plot,
)
