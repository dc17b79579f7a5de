r"""``diag-vs-full``: axis alignment — full (E1) vs diagonal (E2) encoder covariance (T16, T20).

With a full :math:`\Sigma_W` the loss is :math:`O(m)`-invariant: every initialisation reaches the same
information (:math:`I(X;Y)` equal to the closed form) but a different rotation R of the latents, so the
pairwise MI matrix, SAP and :math:`I_m` scatter over initialisations. With a diagonal
:math:`\Sigma_W` the optimum
is aligned with the principal directions of :math:`\Sigma_Y` up to signed permutations, and the scores are the
same for every initialisation. Top row: the published instance (random Γ: principal directions mix the
factors, so even the aligned code is entangled). Bottom row: factors equal to the principal directions
(:func:`~linvae.numeric.from_factors` with Γ = the first columns of I), where alignment
means disentanglement. β = 8, λ = 4, alternating map.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from linvae import numeric as nm
from linvae.figures import Figure, style
from linvae.figures._linear import information_along
from linvae.numeric._precision import float64

BETA, LAM = 8.0, 4.0
#: Factor variances of the aligned problem: factor j drives coordinate j alone (Gamma = first columns of I).
ALIGNED_VARIANCES = (40.0, 25.0, 15.0, 9.0, 5.0)
ALIGNED_N = 20


@float64
def compute(fast: bool) -> dict[str, Any]:
    k = 6 if fast else 50
    m = nm.AUTHORS.m
    rows = []
    problems = (
        ("published instance, n = 50", nm.authors_instance(50)),
        (
            "factors = principal directions, n = 20",
            nm.from_factors(np.diag(ALIGNED_VARIANCES), np.eye(ALIGNED_N)[:, : len(ALIGNED_VARIANCES)], 0.05),
        ),
    )
    for label, prob in problems:
        if prob.n == 50:
            B0, W0 = nm.authors_inits(50)
            init = (B0[:k], W0[:k])
        else:
            import jax

            keys = jax.random.split(jax.random.key(7), k)
            B0, W0 = jax.vmap(lambda kk, n=prob.n: nm.random_init(kk, n, m))(keys)
            init = (B0, W0)
        wf = nm.information(prob, nm.water_filling(prob, BETA, LAM, m))
        row = {"label": label, "n": prob.n, "s": prob.s, "mi_xy_theory": float(wf.mi_xy), "encoders": {}}
        for enc in ("full", "diagonal"):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", nm.NotConvergedWarning)
                st = nm.alternating_grid(
                    prob,
                    [BETA],
                    [LAM],
                    init,
                    variant=nm.Variant(encoder=enc),
                    tol=1e-10,
                    max_sweeps=20_000,
                    warn=False,
                )
            info = information_along(prob, st.B[0, 0], st.Sigma_W[0, 0])
            row["encoders"][enc] = {
                "pairwise_first_init": np.asarray(info.pairwise)[0],
                "sap": np.asarray(info.sap),
                "i_m": np.asarray(info.i_m),
                "mi_xy": np.asarray(info.mi_xy),
                "mi_xv": np.asarray(info.mi_xv),
                "converged": np.asarray(st.converged[0, 0]),
            }
        rows.append(row)
    return {
        "config": {
            "beta": BETA,
            "lam": LAM,
            "m": m,
            "inits": k,
            "map_tol": 1e-10,
            "aligned_factor_variances": ALIGNED_VARIANCES,
            "aligned_n": ALIGNED_N,
        },
        "rows": rows,
    }


def plot(data: dict[str, Any]):
    rows = data["rows"]
    fig, axes = style.figure(len(rows), 4, width=2.9, height=2.7)
    col = style.shades(2, hi=0.6)
    for r, row in enumerate(rows):
        enc = row["encoders"]
        vmax = max(float(np.nanmax(style.arr(enc[e]["pairwise_first_init"]))) for e in enc)
        for j, e in enumerate(("full", "diagonal")):
            ax = axes[r, j]
            P = style.arr(enc[e]["pairwise_first_init"])
            im = ax.imshow(P, cmap=style.CMAP, vmin=0, vmax=vmax, aspect="auto")
            ax.set_xlabel("factor j")
            ax.set_ylabel("latent i")
            ax.set_xticks(range(P.shape[1]))
            ax.set_title(
                f"{'full' if e == 'full' else 'diagonal'} $\\Sigma_W$: $I(x_i;v_j)$, one init", fontsize=8.5
            )
            ax.grid(False)
        fig.colorbar(im, ax=axes[r, 1], label="nats")
        for j, (key, name) in enumerate((("sap", "SAP"), ("i_m", r"$I_m$ (nats)"))):
            ax = axes[r, 2 + j]
            vals = [style.arr(enc[e][key]) for e in ("full", "diagonal")]
            ax.boxplot(vals, positions=[0, 1], widths=0.5, medianprops={"color": "k"}, showfliers=False)
            rng = np.random.default_rng(0)
            for i, v in enumerate(vals):
                ax.plot(
                    i + rng.uniform(-0.15, 0.15, v.size),
                    v,
                    ls="none",
                    marker=style.MARKERS[i],
                    ms=3.5,
                    color=col[i],
                    mfc="none",
                )
            ax.set_xticks([0, 1], ["full", "diagonal"])
            ax.set_xlabel(r"encoder covariance $\Sigma_W$")
            ax.set_ylabel(name)
            ax.set_title(f"{name.split(' (')[0]} over {len(vals[0])} inits", fontsize=8.5)
        spread = {e: float(np.ptp(style.arr(enc[e]["mi_xy"]))) for e in enc}
        style.note(
            axes[r, 3],
            f"I(X;Y), both: {np.mean(style.arr(enc['full']['mi_xy'])):.4g} nats\n"
            f"closed form: {row['mi_xy_theory']:.4g}\nspread over inits ≤ {max(spread.values()):.0e}",
            loc="center right",
        )
        axes[r, 0].annotate(
            row["label"],
            (-0.35, 0.5),
            xycoords="axes fraction",
            rotation=90,
            ha="center",
            va="center",
            fontsize=9,
            weight="bold",
        )
    c = data["config"]
    fig.suptitle(
        f"Rotation invariance (full) vs identifiability (diagonal), β = {c['beta']:g}, λ = {c['lam']:g}, "
        f"m = {c['m']}, alternating map"
    )
    return fig


FIGURE = Figure(
    slug="diag-vs-full",
    description="axis alignment: pairwise MI matrices and SAP / I_m over inits for a full vs a diagonal "
    "encoder covariance",
    compute=compute,
    plot=plot,
)
