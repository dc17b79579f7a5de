r"""``encoder-spectrum``: stationary encoder spectra vs β for three decoders (§2.2, T9, T17, T12).

Published instance (n = 50, m = 10). Singular values of the stationary encoder mean map B:

* D1 (learned full :math:`\Sigma_Z`), λ = 0: zero for **every** β > 1 — the full decoder covariance
  absorbs the data, so collapse is total and abrupt (T9); β = 1 is degenerate, β < 1 unbounded (§3.10).
* D3 (fixed :math:`\sigma_d^2 = 1`), λ = 0: Lucas's closed form; direction i switches off at
  :math:`\beta = \mu_i/\sigma_d^2`, one at a time (T17) — the usual β-VAE picture.
* λβ-VAE (D1, λ = 2): reverse water-filling; direction i switches off
  at :math:`\beta = 1 + 2\lambda\mu_i` (T12).

Lines: closed forms (:func:`~linvae.numeric.lucas`, :func:`~linvae.numeric.water_filling`); markers: the
alternating map from a published initialisation.
"""

from __future__ import annotations

import warnings
from typing import Any

import jax.numpy as jnp
import numpy as np

from linvae import numeric as nm
from linvae.figures import Figure, style
from linvae.numeric._precision import float64

SIGMA_D2 = 1.0
LAM = 2.0
N_SHOWN = 6  # the five signal directions and the first noise direction


@float64
def _sv(B) -> np.ndarray:
    return np.asarray(jnp.linalg.svd(jnp.asarray(B), compute_uv=False))


@float64
def compute(fast: bool) -> dict[str, Any]:
    prob = nm.authors_instance(50)
    m = nm.AUTHORS.m
    mu = np.asarray(prob.mu)
    B0, W0 = nm.authors_inits(50)
    init = (B0[:1], W0[:1])
    nline = 40 if fast else 160
    d3 = nm.Variant(decoder="fixed", sigma_d2=SIGMA_D2)
    panels = []
    specs = (
        ("D1, λ = 0", nm.D1, 0.0, (1.0 + 1e-3, 1e3), (1.5, 4.0, 16.0, 64.0, 256.0)),
        ("D3, σ_d² = 1, λ = 0", d3, 0.0, (0.3, 1e3), (0.5, 2.0, 8.0, 20.0, 30.0, 45.0, 100.0, 400.0)),
        (f"λβ-VAE (D1, λ = {LAM:g})", nm.D1, LAM, (1.25, 1e3), (2.0, 8.0, 30.0, 70.0, 120.0, 200.0, 500.0)),
    )
    for title, variant, lam, (lo, hi), mb in specs:
        if fast:
            mb = mb[::2]
        betas = np.geomspace(lo, hi, nline)
        if variant.decoder == "fixed":
            theory = np.stack([_sv(nm.lucas(prob, b, lam, m, SIGMA_D2).B) for b in betas])
            thresholds = mu[:m] / SIGMA_D2
        else:
            theory = np.stack([_sv(nm.water_filling(prob, b, lam, m).B) for b in betas])
            thresholds = 1.0 + 2.0 * lam * mu[:m] if lam > 0 else np.ones(m)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", nm.NotConvergedWarning)
            st = nm.alternating_grid(
                prob, mb, [lam], init, variant=variant, tol=1e-10, max_sweeps=20_000, warn=False
            )
        numeric = _sv(st.B[:, 0, 0])
        panels.append(
            {
                "title": title,
                "variant": variant.label,
                "lam": lam,
                "betas": betas,
                "theory_sv": theory[:, :N_SHOWN],
                "map_betas": mb,
                "map_sv": numeric[:, :N_SHOWN],
                "map_converged": np.asarray(st.converged[:, 0, 0]),
                "thresholds": thresholds[:N_SHOWN],
                "max_abs_gap": float(
                    np.max(
                        np.abs(
                            numeric[:, :N_SHOWN]
                            - np.stack(
                                [
                                    _sv(
                                        (
                                            nm.lucas(prob, b, lam, m, SIGMA_D2)
                                            if variant.decoder == "fixed"
                                            else nm.water_filling(prob, b, lam, m)
                                        ).B
                                    )[:N_SHOWN]
                                    for b in mb
                                ]
                            )
                        )
                    )
                ),
            }
        )
    return {
        "config": {
            "problem": "authors_instance(n=50)",
            "m": m,
            "mu": mu[:N_SHOWN],
            "sigma_d2": SIGMA_D2,
            "lam": LAM,
            "map": {"init": "first published", "tol": 1e-10},
        },
        "panels": panels,
    }


def plot(data: dict[str, Any]):
    panels = data["panels"]
    fig, axes = style.figure(1, len(panels), width=3.5, height=3.1, sharey=True)
    col = style.shades(len(panels[0]["theory_sv"][0]), hi=0.85)
    for ax, p in zip(axes[0], panels, strict=True):
        betas = style.arr(p["betas"])
        th = style.arr(p["theory_sv"])
        mb, ms = style.arr(p["map_betas"]), style.arr(p["map_sv"])
        for i in range(th.shape[1]):
            ax.plot(
                betas,
                th[:, i],
                color=col[i],
                ls=style.LINESTYLES[i % len(style.LINESTYLES)],
                lw=1.3,
                label=rf"$\sigma_{{{i + 1}}}(B^*)$",
            )
            ax.plot(mb, ms[:, i], ls="none", marker=style.MARKERS[i], color=col[i], ms=4.5, mfc="none")
        if p["variant"].startswith("D1") and p["lam"] == 0:
            ax.axvspan(betas[0] / 3, 1.0, color="0.85", lw=0)
            ax.text(
                0.6,
                0.5,
                "β ≤ 1: degenerate /\nunbounded (§3.10)",
                rotation=90,
                fontsize=7,
                ha="center",
                va="center",
                transform=ax.get_xaxis_transform(),
            )
            ax.set_xlim(betas[0] / 3, betas[-1])
        for thr in style.arr(p["thresholds"]):
            if (p["lam"] > 0 or not p["variant"].startswith("D1")) and betas[0] < thr < betas[-1]:
                ax.axvline(thr, color="0.6", ls=":", lw=0.8)
        ax.set_xscale("log")
        ax.set_xlabel("β (KL weight)")
        ax.set_title(p["title"])
        style.note(ax, f"max |map − closed form|\n= {p['max_abs_gap']:.1e}", loc="upper right")
    axes[0, 0].set_ylabel("singular values of the stationary encoder B")
    handles, labels = axes[0, 1].get_legend_handles_labels()
    axes[0, 0].legend(handles, labels, loc="center right", fontsize=7, title="closed forms (lines)")
    fig.text(
        0.5,
        -0.02,
        "lines: closed forms; open markers: alternating map; dotted: switch-off β of each "
        "direction (D3: μ_i/σ_d², λβ: 1 + 2λμ_i)",
        ha="center",
        fontsize=8,
    )
    fig.suptitle("Why 'collapse for every β > 1' belongs to the learned full decoder covariance (D1)")
    return fig


FIGURE = Figure(
    slug="encoder-spectrum",
    description="stationary encoder spectrum vs beta for D1 (learned full), D3 (fixed sigma_d^2: "
    "gradual) and "
    "the lambda-beta-VAE",
    compute=compute,
    plot=plot,
)
