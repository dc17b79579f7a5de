"""Theory bridge: a deep VAE with linear layers, trained by the deep pipeline on linear-Gaussian data,
lands on the closed-form optimum of the matching linear variant (D3/E2, Lucas et al.), with and
without λ.

Left: the population loss of the trained parameters (markers) against the closed form (lines) vs β,
one colour per λ. Middle: :math:`I(X;Y)` likewise. Right: relative loss gap, with the stated tolerance
``DEEP_BRIDGE`` of ``linvae/_tolerance.py``. ``fast`` trains three β instead of six.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from linvae.figures import Figure


def compute(fast: bool) -> dict[str, Any]:
    from linvae._tolerance import DEEP_BRIDGE
    from linvae.deep.linear_bridge import BridgeConfig, bridge

    cfg = BridgeConfig()
    if fast:
        cfg = dataclasses.replace(cfg, betas=(0.5, 3.0, 16.0))
    data = bridge(cfg)
    data["tolerance"] = {"rtol": DEEP_BRIDGE.rtol, "atol": DEEP_BRIDGE.atol, "why": DEEP_BRIDGE.why}
    data["fast"] = fast
    return data


def plot(data: dict[str, Any]):
    import matplotlib.figure
    import numpy as np

    rows = data["rows"]
    lambdas = sorted({r["lambda"] for r in rows})
    fig = matplotlib.figure.Figure(figsize=(12.0, 3.6), layout="constrained")
    ax_l, ax_i, ax_g = fig.subplots(1, 3)
    for c, lam in enumerate(lambdas):
        rs = sorted((r for r in rows if r["lambda"] == lam), key=lambda r: r["beta"])
        b = [r["beta"] for r in rs]
        col = f"C{c}"
        ax_l.plot(b, [r["loss_closed"] for r in rs], "-", color=col, label=rf"closed form, $\lambda$={lam:g}")
        ax_l.plot(b, [r["loss_trained"] for r in rs], "o", color=col, mfc="none", label="trained")
        ax_i.plot(b, [r["mi_closed"] for r in rs], "-", color=col)
        ax_i.plot(b, [r["mi_trained"] for r in rs], "o", color=col, mfc="none")
        ax_g.plot(
            b, [abs(r["loss_rel_gap"]) + 1e-12 for r in rs], "o-", color=col, label=rf"$\lambda$={lam:g}"
        )
    tol = data["tolerance"]
    ax_g.axhline(tol["rtol"], color="k", ls="--", lw=1, label="tolerance (rtol)")
    for ax in (ax_l, ax_i, ax_g):
        ax.set_xscale("log")
        ax.set_xlabel(r"$\beta$")
    ax_g.set_yscale("log")
    ax_l.set_ylabel(r"$\mathcal{R} + \beta\mathcal{K} + \lambda\,\mathrm{tr}\,E$ (nats)")
    ax_i.set_ylabel(r"$I(X;Y)$ (nats)")
    ax_g.set_ylabel("|relative loss gap|")
    ax_l.legend(fontsize=7)
    ax_g.legend(fontsize=7)
    worst = max(abs(r["loss_rel_gap"]) for r in rows)
    worst_mi = max(abs(r["mi_trained"] - r["mi_closed"]) for r in rows)
    spec = ", ".join(f"{m:.2f}" for m in np.asarray(data["spectrum"])[:6])
    fig.suptitle(
        f"linear-layer VAE (Adam, {data['config']['steps']} steps) vs D3/E2 closed form; spectrum {spec}, ...;"
        f" worst rel. loss gap {worst:.1e}, worst |dI(X;Y)| {worst_mi:.3f} nats",
        fontsize=9,
    )
    return fig


FIGURE = Figure(
    slug="deep-linear-bridge",
    description="linear-layer VAE trained by the deep pipeline reaches the D3 closed-form optimum (loss, I(X;Y))",
    compute=compute,
    plot=plot,
)
