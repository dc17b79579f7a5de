r"""``controllers``: ControlVAE and DynamicVAE β controllers on the linear plant (docs/theory.md §7, T25).

Plant: the published instance (n = 50, m = 10) with a fixed isotropic decoder (D3, :math:`\sigma_d^2 = 1`),
whose optimal rate is :math:`\mathcal R_{\rm rate}(\beta) = \tfrac12\sum_{i\le m}\log^+(\mu_i/\beta)`;
measured KL =
that rate at the current β (quasi-static plant) or the KL after one alternating sweep per update (a
plant with lag). Both controllers settle at the equilibrium :math:`\beta^\ast` with
:math:`\mathcal R_{\rm rate}(\beta^\ast) = C` (line); with :math:`C > \mathcal R_{\rm rate}(\beta_{\min})`
ControlVAE
saturates at :math:`\beta_{\min}` with KL :math:`= \mathcal R_{\rm rate}(\beta_{\min}) < C`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from linvae import numeric as nm
from linvae.figures import Figure, style
from linvae.numeric._precision import float64

SIGMA_D2 = 1.0
C_TARGET = 4.0
C_SATURATED = 10.0


@float64
def compute(fast: bool) -> dict[str, Any]:
    from linvae.numeric import schedules as sc

    prob = nm.authors_instance(50)
    m = nm.AUTHORS.m
    variant = nm.Variant(decoder="fixed", sigma_d2=SIGMA_D2)
    steps = 1500 if fast else 8000
    beta_star = sc.equilibrium_beta(prob, C_TARGET, 0.0, m, variant)
    rate_min = float(sc.optimal_rate(prob, 1.0, 0.0, m, variant))
    runs = []
    specs = (
        ("ControlVAE", "static", C_TARGET, lambda sp: sc.controlvae_pi(sp), 1.0),
        ("ControlVAE", "map", C_TARGET, lambda sp: sc.controlvae_pi(sp), 1.0),
        ("DynamicVAE", "static", C_TARGET, lambda sp: sc.dynamicvae_pi(sp), 50.0),
        ("DynamicVAE", "map", C_TARGET, lambda sp: sc.dynamicvae_pi(sp), 50.0),
        ("ControlVAE", "static", C_SATURATED, lambda sp: sc.controlvae_pi(sp), 1.0),
    )
    for name, plant, C, make, beta0 in specs:
        tr = sc.closed_loop(
            prob,
            make(sc.constant_setpoint(C)),
            sc.constant_setpoint(C),
            steps=steps,
            m=m,
            variant=variant,
            plant=plant,
            beta0=beta0,
        )
        runs.append(
            {
                "controller": name,
                "plant": plant,
                "C": C,
                "beta0": beta0,
                "beta": np.asarray(tr.beta),
                "kl": np.asarray(tr.kl),
            }
        )
    return {
        "config": {
            "problem": "authors_instance(n=50)",
            "m": m,
            "decoder": "D3",
            "sigma_d2": SIGMA_D2,
            "steps": steps,
            "ControlVAE": {"Kp": 0.01, "Ki": 0.001, "beta_min": 1.0},
            "DynamicVAE": {"Kp": 0.01, "Ki": 0.005, "beta_min": 0.1, "beta_init": 50.0, "window": 5},
        },
        "beta_star": beta_star,
        "C": C_TARGET,
        "C_saturated": C_SATURATED,
        "rate_at_beta_min": rate_min,
        "runs": runs,
        "final_beta_error": {
            f"{r['controller']}/{r['plant']}": float(r["beta"][-1] - beta_star)
            for r in runs
            if r["C"] == C_TARGET
        },
    }


def plot(data: dict[str, Any]):
    fig, axes = style.figure(1, 3, width=3.5, height=3.0)
    a, b, c = axes[0]
    col = style.shades(4, hi=0.8)
    sel = [r for r in data["runs"] if r["C"] == data["C"]]
    for i, r in enumerate(sel):
        beta, kl = style.arr(r["beta"]), style.arr(r["kl"])
        t = np.arange(1, beta.size + 1)
        every = max(1, beta.size // 25)
        lab = f"{r['controller']}, {r['plant']} plant"
        for ax, y in ((a, beta), (b, kl)):
            ax.plot(
                t[::every],
                y[::every],
                ls="none",
                marker=style.MARKERS[i],
                color=col[i],
                ms=4,
                mfc="none" if r["plant"] == "map" else col[i],
                label=lab,
            )
    a.axhline(data["beta_star"], color="k", lw=1.3, label=rf"$\beta^\ast$ = {data['beta_star']:.3g} (T25)")
    a.set_yscale("log")
    a.set_xlabel("controller update t")
    a.set_ylabel("β(t)")
    a.set_title(f"β(t), target C = {data['C']:g} nats")
    a.legend(loc="upper right", fontsize=6.5)
    b.axhline(data["C"], color="k", lw=1.3, label="set point C")
    b.set_xlabel("controller update t")
    b.set_ylabel("KL(t) (nats)")
    b.set_title("measured KL")
    b.legend(loc="upper right", fontsize=6.5)
    sat = [r for r in data["runs"] if r["C"] == data["C_saturated"]][0]
    beta, kl = style.arr(sat["beta"]), style.arr(sat["kl"])
    t = np.arange(1, beta.size + 1)
    every = max(1, beta.size // 25)
    c.plot(t[::every], beta[::every], ls="none", marker="o", color=col[0], ms=4, label="β(t)")
    c.plot(t[::every], kl[::every], ls="none", marker="s", color=col[2], ms=4, label="KL(t) (nats)")
    c.axhline(1.0, color=col[0], lw=1.2, ls="-", label=r"$\beta_{\min} = 1$")
    c.axhline(
        data["rate_at_beta_min"],
        color=col[2],
        lw=1.2,
        ls="--",
        label=rf"$\mathcal{{R}}_{{rate}}(\beta_{{\min}})$ = {data['rate_at_beta_min']:.3g}",
    )
    c.axhline(data["C_saturated"], color="k", lw=1.0, ls=":", label=f"C = {data['C_saturated']:g}")
    c.set_xlabel("controller update t")
    c.set_ylabel("β; KL (nats)")
    c.set_title(r"saturation: $C > \mathcal{R}_{rate}(\beta_{\min})$ (ControlVAE)")
    c.legend(loc="center right", fontsize=6.5)
    fig.suptitle(
        "β controllers on the linear plant (D3, σ_d² = 1, published instance n = 50, m = 10)\n"
        "filled: static plant, open: one map sweep per update"
    )
    return fig


FIGURE = Figure(
    slug="controllers",
    description="beta(t) and KL(t) for ControlVAE and DynamicVAE on the linear plant, with the T25 "
    "equilibrium "
    "and the beta_min saturation case",
    compute=compute,
    plot=plot,
)
