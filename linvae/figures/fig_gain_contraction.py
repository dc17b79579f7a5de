r"""``gain-contraction``: the encoder gain contracts by exactly 1/β per sweep at λ = 0 (T6, T7, T11).

Alternating map on the published instance (n = 50, m = 10, first published initialisation): the
singular values of :math:`K_t = \Sigma_{W,t}^{-1}B_t` follow :math:`\sigma_i(K_0)\beta^{-t}` (lines) exactly,
while :math:`\|B_t\|_2` only obeys the bound :math:`\|K_0\|_2\beta^{-t}` for t ≥ 1. Under the gradient flow
(a small problem with distinct eigenvalues) :math:`\|K(t)\|_2` decays at the linearised rate of T11.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from linvae import numeric as nm
from linvae.figures import Figure, style
from linvae.figures._linear import gain_singular_values, map_trajectory, spectral_norm
from linvae.numeric._precision import float64

BETAS = (1.5, 2.0, 4.0, 8.0)
#: Flow problem: distinct eigenvalues, small enough that the explicit solver is not stiff.
FLOW_SPECTRUM = (3.0, 2.0, 1.2, 0.7, 0.4, 0.25)


@float64
def compute(fast: bool) -> dict[str, Any]:
    from linvae.numeric.flow import FlowConfig, collapse_curves

    prob = nm.authors_instance(50)
    B0, W0 = nm.authors_inits(50)
    init = (np.asarray(B0[:1]), np.asarray(W0[:1]))
    sweeps = 10 if fast else 25
    Bs, Ws = map_trajectory(prob, BETAS, 0.0, init, sweeps)
    sv_K = gain_singular_values(Bs[:, 0], Ws[:, 0])  # (b, T+1, m)
    norm_B = spectral_norm(Bs[:, 0])  # (b, T+1)
    t = np.arange(sweeps + 1)
    law = sv_K[:, :1, :] * np.asarray(BETAS)[:, None, None] ** (-t[None, :, None])

    fprob = nm.from_spectrum(FLOW_SPECTRUM, sigma2=0.1)
    m_flow = 3
    t1 = 8.0 if fast else 30.0
    cc = collapse_curves(
        fprob, BETAS, 0.0, m=m_flow, key=0, num_inits=1, t1=t1, num_times=16 if fast else 60, cfg=FlowConfig()
    )
    return {
        "config": {
            "map_problem": "authors_instance(n=50), m=10, first published init",
            "betas": BETAS,
            "lam": 0.0,
            "sweeps": sweeps,
            "flow_problem": {
                "spectrum": FLOW_SPECTRUM,
                "sigma2": 0.1,
                "m": m_flow,
                "t1": t1,
                "metric": "euclidean",
                "init": "flow_init(key=0)",
            },
        },
        "map": {
            "t": t,
            "sv_K": sv_K,
            "sv_K_law": law,
            "norm_B": norm_B,
            "norm_K0": sv_K[:, 0, 0],
            "max_law_rel_error": float(np.max(np.abs(sv_K - law) / law)),
        },
        "flow": {
            "t": np.asarray(cc.ts),
            "sv_K": np.asarray(cc.sv_K[:, 0]),
            "sv_B": np.asarray(cc.sv_B[:, 0]),
            "rate_K": -0.5 * np.asarray(cc.rate),
        },
    }


def plot(data: dict[str, Any]):
    betas = data["config"]["betas"]
    col = style.shades(len(betas))
    fig, axes = style.figure(1, 3, width=3.5, height=3.0)
    a, b, c = axes[0]
    mp = data["map"]
    t = style.arr(mp["t"])
    sv = style.arr(mp["sv_K"])
    law = style.arr(mp["sv_K_law"])
    for i, beta in enumerate(betas):
        for j, ls in ((0, "-"), (-1, ":")):
            a.plot(t, law[i, :, j], ls=ls, color=col[i], lw=1.2)
            a.plot(
                t,
                style.positive(sv[i, :, j]),
                ls="none",
                marker=style.MARKERS[i],
                color=col[i],
                mfc="none" if j else col[i],
                ms=4,
                label=f"β = {beta:g}" if j == 0 else None,
            )
    a.set_yscale("log")
    a.set_xlabel("alternating-map sweep t")
    a.set_ylabel(r"singular value of $K_t=\Sigma_{W,t}^{-1}B_t$")
    a.set_title(r"map: $\sigma_i(K_t)=\beta^{-t}\sigma_i(K_0)$ (T6)")
    a.legend(loc="lower left")
    style.note(
        a,
        "filled: $\\sigma_1$, open: $\\sigma_{10}$\nlines: $\\beta^{-t}\\sigma_i(K_0)$\n"
        f"max rel. error {mp['max_law_rel_error']:.1e}",
    )

    nB = style.arr(mp["norm_B"])
    K0 = style.arr(mp["norm_K0"])
    for i, beta in enumerate(betas):
        b.plot(t[1:], K0[i] * float(beta) ** (-t[1:]), color=col[i], ls="-", lw=1.2)
        b.plot(t, nB[i], ls="none", marker=style.MARKERS[i], color=col[i], ms=4, label=f"β = {beta:g}")
    b.set_yscale("log")
    b.set_xlabel("alternating-map sweep t")
    b.set_ylabel(r"$\|B_t\|_2$")
    b.set_title(r"raw gain: bound $\|K_0\|_2\beta^{-t}$ only (T7)")
    b.legend(loc="lower left")
    style.note(b, "markers: map\nlines: bound, t ≥ 1")

    fl = data["flow"]
    tf = style.arr(fl["t"])
    svf = style.arr(fl["sv_K"])
    rate = style.arr(fl["rate_K"])
    every = max(1, len(tf) // 15)
    for i, beta in enumerate(betas):
        top = svf[i, :, 0]
        c.plot(
            tf[::every],
            style.positive(top[::every]),
            ls="none",
            marker=style.MARKERS[i],
            color=col[i],
            ms=4,
            label=f"β = {beta:g}",
        )
        anchor = top[-1]
        c.plot(tf, anchor * np.exp(rate[i] * (tf - tf[-1])), color=col[i], ls="--", lw=1.2)
    c.set_yscale("log")
    c.set_xlabel("gradient-flow time t")
    c.set_ylabel(r"$\|K(t)\|_2$")
    c.set_title("gradient flow: linearised rate (T11)")
    c.legend(loc="lower left")
    style.note(c, "markers: flow (diffrax)\ndashed: slope $e^{r t}$, $r=\\max_i r_i$\n6-dim. spectrum, m = 3")
    fig.suptitle("Gain contraction at λ = 0 (D1, published instance n = 50, m = 10)")
    return fig


FIGURE = Figure(
    slug="gain-contraction",
    description="singular values of K_t and ||B_t|| vs sweep for beta in {1.5,2,4,8}, lambda=0, with the "
    "beta^-t law; the same under gradient flow",
    compute=compute,
    plot=plot,
)
