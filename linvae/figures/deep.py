r"""The deep experiments: ``python -m linvae.figures deep --dataset D [D ...] --preset P [...]``.

Trains what is missing in the runs folder (resumable; the published two-phase protocol of
docs/theory.md §2.3), evaluates every model (by default MIG, SAP, :math:`I_m`; ``--metrics`` adds DCI,
FactorVAE, BetaVAE; always the per-latent KL, active latents, NLL, KL, L2), and draws, per data set:

* ``deep-effect``: what the linear theory predicts, measured in the deep model: MIG, SAP, :math:`I_m`,
  active latents, NLL and KL vs β (one line per λ, mean ± std over seeds), the sorted per-latent KL
  spectrum vs β at λ = 0 and the largest λ, and beside them the linear closed forms (fixed-variance
  decoder D3, Lucas et al.; learned full covariance D1, reverse water-filling) on the published
  linear instance;
* ``lines``: every tabulated metric vs β, one line per λ, mean ± std over seeds;
* ``boxplots``: NLL, KL, MIG, SAP, :math:`I_m` vs β over seeds (β-VAE phase, λ = 0);
* ``heatmaps``: (λ x β) means of the same after the λβ continuation;
* ``pct_change``: the heatmaps as % change relative to the (β = 1, λ = 0) cell (smallest β if 1 is absent);
* ``pareto``: NLL vs MIG of every (β, λ) cell (mean ± std), the Pareto front and the Tchebycheff-optimal
  cell for ``--weight`` (:mod:`linvae.deep.tradeoff`); also ``<stem>_pareto.html``, a standalone page
  with a weight slider (Plotly; skipped with a message when plotly is not installed);
* ``mi``: latent x factor mutual information of one seed for each β at λ = 0 and at the largest λ;
* ``traversals``: latent traversals and reconstructions at the largest β, λ = 0 vs the largest λ.

Tables: ``<stem>_summary.csv`` / ``.md`` (one row per (phase, β, λ), mean ± std and n over seeds of
every metric; :mod:`linvae.deep.summary`), the same as ``summary.csv`` / ``.md`` in the runs folder,
and ``deep_datasets_<preset>_summary.csv`` / ``.md`` across data sets once two or more have been run
into the same output folder.

A controller sweep over KL set-points (``--beta-schedule controlvae|dynamicvae --kl-targets "2 4 8"``,
one β: the controller's β_min / β(0)) trains the grid once per target C in ``<runs>/C<C>`` and draws
the same panels with the target C in place of β on the horizontal axis.

Files: ``<out>/deep_<dataset>_<preset>_<panel>.png`` and ``.pdf`` and a sidecar
``deep_<dataset>_<preset>.json`` (config, data provenance and fingerprint, evaluation settings, code
revision, every plotted number, wall and CPU time and load average of every command that worked on
the runs folder). Titles say "procedural stand-in" when the images are not the real data set and
"reduced configuration: ..." when the protocol is not the published one.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from linvae.deep.tradeoff import pareto_front as pareto_front
from linvae.deep.tradeoff import tchebycheff

METRICS = (
    ("nll", "NLL (nats)"),
    ("kl", "KL (nats)"),
    ("mig", "MIG"),
    ("sap", "SAP"),
    ("i_m", "$I_m$ (nats)"),
)
#: Every quantity the ``lines`` panel can show (those present in the records are drawn).
LINE_METRICS = (
    ("mig", "MIG"),
    ("sap", "SAP"),
    ("i_m", "$I_m$ (nats)"),
    ("active", "active latents"),
    ("nll", "NLL (nats, train window)"),
    ("kl", "KL (nats, train window)"),
    ("l2", "L2 (train window)"),
    ("nll_eval", "NLL (nats, eval)"),
    ("kl_eval", "KL (nats, eval)"),
    ("dci_d", "DCI disentanglement"),
    ("dci_c", "DCI completeness"),
    ("dci_i", "DCI informativeness"),
    ("factor_vae", "FactorVAE score"),
    ("beta_vae", "BetaVAE score"),
)
EFFECT_METRICS = LINE_METRICS[:6]
PANELS = ("deep-effect", "lines", "boxplots", "heatmaps", "pct_change", "pareto", "mi", "traversals")
#: Weights of the interactive page's slider (reconstruction weight of the Tchebycheff choice).
SLIDER_WEIGHTS = tuple(round(w, 2) for w in np.linspace(0.0, 1.0, 21))
#: The linear instance of the theory panels: the published n = 50 instance, 10 latents; D3 with unit
#: decoder variance (the fixed-variance decoder closest to the deep Bernoulli one, docs/theory.md §2.2).
LINEAR_N, LINEAR_M, LINEAR_SIGMA_D2 = 50, 10, 1.0


def _value(record: dict[str, Any], name: str, active_kl: float = 0.01) -> float:
    from linvae.deep.summary import record_value

    return record_value(record, name, active_kl)


def _mean_std(vals: Sequence[float]) -> tuple[float, float, int]:
    v = np.asarray([x for x in vals if np.isfinite(x)], np.float64)
    if not v.size:
        return float("nan"), float("nan"), 0
    return float(v.mean()), float(v.std(ddof=1)) if v.size > 1 else 0.0, int(v.size)


def linear_prediction(
    betas: Sequence[float], lambdas: Sequence[float], *, active_kl: float = 0.01
) -> dict[str, Any]:
    r"""The linear theory's prediction on the published instance, per (β, λ): the sorted per-latent KL
    :math:`	frac12((B\Sigma_YB^	op)_{kk} + (\Sigma_W)_{kk} - \log(\Sigma_W)_{kk} - 1)` (the quantity the
    deep evaluation measures), active latents, :math:`I_m` and SAP, for

    * D3 (fixed decoder variance :math:`\sigma_d^2 = 1`): ``nm.lucas`` — latent i is off iff
      :math:`\mu_i \le eta/(\sigma_d^{-2} + 2\lambda)`: directions switch off one at a time as β grows,
      λ moves every threshold up by the factor :math:`1 + 2\lambda\sigma_d^2`;
    * D1 (learned full decoder covariance, the authors' linear model): ``nm.water_filling`` — total
      collapse for every β > 1 at λ = 0, reverse water-filling at level :math:`(eta - 1)/2\lambda` for
      λ > 0 (β ≤ 1 has no minimiser there: NaN).
    """
    import linvae.numeric as nm

    prob = nm.authors_instance(n=LINEAR_N)
    S = np.asarray(prob.Sigma_Y)

    def stats(st) -> dict[str, Any]:
        B, W = np.asarray(st.B), np.asarray(st.Sigma_W)
        w = np.diag(W)
        kl = 0.5 * (np.diag(B @ S @ B.T) + w - np.log(w) - 1.0)
        kl = np.sort(np.clip(kl, 0.0, None))[::-1]
        info = nm.information(prob, st)
        return {
            "kl": kl.tolist(),
            "active": int(np.sum(kl > active_kl)),
            "i_m": float(info.i_m),
            "sap": float(info.sap),
        }

    nan = {"kl": [float("nan")] * LINEAR_M, "active": float("nan"), "i_m": float("nan"), "sap": float("nan")}
    d3, d1 = {}, {}
    for lam in lambdas:
        d3[f"{lam:g}"] = [stats(nm.lucas(prob, b, lam, LINEAR_M, LINEAR_SIGMA_D2)) for b in betas]
        d1[f"{lam:g}"] = [stats(nm.water_filling(prob, b, lam, LINEAR_M)) if b > 1 else nan for b in betas]
    return {
        "instance": f"authors_instance(n={LINEAR_N}), m = {LINEAR_M}, D3 with sigma_d^2 = {LINEAR_SIGMA_D2:g}",
        "mu": np.asarray(prob.mu[:LINEAR_M]).tolist(),
        "betas": list(betas),
        "lambdas": list(lambdas),
        "d3": d3,
        "d1": d1,
    }


def compute(
    cfg: Any, records: Sequence[dict[str, Any]], runs: Path, dataset: Any, *, weight: float = 0.5
) -> dict[str, Any]:
    """Everything the figures and tables show, as JSON-ready numbers (plus traversal images as nested lists).

    The horizontal axis is β, or the KL target C of a controller sweep (``cfg.kl_targets``; the
    records then carry ``member["kl_target"]``). ``weight`` is the reconstruction weight of the
    Tchebycheff choice on the NLL-MIG trade-off.
    """
    from linvae.deep.config import protocol_label
    from linvae.deep.evaluate import reconstructions, traversal
    from linvae.deep.record import Member
    from linvae.deep.runs import for_target, load_model, target_folders
    from linvae.deep.summary import summary_rows

    axis = "kl_target" if cfg.kl_targets else "beta"
    xs = [float(c) for c in cfg.kl_targets] if cfg.kl_targets else list(cfg.betas)
    betas, lambdas, seeds = list(cfg.betas), list(cfg.lambdas), list(cfg.seeds)

    def x_of(r: dict[str, Any]) -> float:
        return r["member"][axis]

    by_phase = {
        "beta": [r for r in records if r["phase"] == "beta"],
        "lambda": [r for r in records if r["phase"] == "lambda"],
    }
    ak = cfg.active_kl
    box = {
        name: [[_value(r, name, ak) for r in by_phase["beta"] if x_of(r) == b] for b in xs]
        for name, _ in METRICS
    }
    grid = {}
    for name, _ in (*METRICS, ("l2", "L2"), ("active", "active")):
        g = np.full((len(lambdas), len(xs)), np.nan)
        for i, lam in enumerate(lambdas):
            for j, b in enumerate(xs):
                vals = [
                    _value(r, name, ak)
                    for r in by_phase["lambda"]
                    if x_of(r) == b and r["member"]["lambda"] == lam
                ]
                vals = [v for v in vals if np.isfinite(v)]
                if vals:
                    g[i, j] = float(np.mean(vals))
        grid[name] = g
    base_x = (1.0 if 1.0 in xs else min(xs)) if axis == "beta" else min(xs)
    base_lam = 0.0 if 0.0 in lambdas else min(lambdas)
    bi, bj = lambdas.index(base_lam), xs.index(base_x)
    pct = {
        k: (100.0 * (g - g[bi, bj]) / abs(g[bi, bj])).tolist() if g[bi, bj] not in (0.0,) else None
        for k, g in grid.items()
    }
    pareto = [
        {"x": x_of(r), "beta": r["member"]["beta"], "lambda": r["member"]["lambda"], "seed": r["member"]["seed"],
         "nll": _value(r, "nll"), "mig": _value(r, "mig")}
        for r in by_phase["lambda"] if r["status"] == "ok"
    ]  # fmt: skip
    seed0 = min(seeds)
    mi = {}
    for lam in sorted({base_lam, max(lambdas)}):
        for r in by_phase["lambda"]:
            m = r["member"]
            if m["lambda"] == lam and m["seed"] == seed0 and r["metrics"] is not None:
                mi[f"{x_of(r):g}|{lam:g}"] = r["metrics"]["mi"]
    trav = {}
    probe_factors = dataset.sample_factors(__import__("jax").random.key(seed0), 8)
    probe = np.asarray(dataset.images(probe_factors))
    if dataset.image_shape[0] > 1 and dataset.image_shape[1] > 1:
        x = max(xs)
        target, folder = (x, dict(target_folders(cfg, runs))[x]) if axis == "kl_target" else (None, runs)
        for lam in sorted({base_lam, max(lambdas)}):
            mb = Member(float(max(betas)), float(lam), int(seed0))
            phase = "lambda" if cfg.lambda_steps > 0 else "beta"
            try:
                model, _, _ = load_model(for_target(cfg, target), dataset, folder, phase, mb)
            except FileNotFoundError:
                continue
            trav[f"{x:g}|{lam:g}"] = {
                "traversal": np.round(traversal(model, dataset, probe[0], cfg.likelihood), 3).tolist(),
                "reconstruction": np.round(
                    reconstructions(model, dataset, probe, cfg.likelihood), 3
                ).tolist(),
            }
    final = by_phase["lambda"] if cfg.lambda_steps > 0 else by_phase["beta"]
    final_lambdas = lambdas if cfg.lambda_steps > 0 else [0.0]

    def cell(lam: float, x: float) -> list[dict[str, Any]]:
        return [r for r in final if r["status"] == "ok" and x_of(r) == x and r["member"]["lambda"] == lam]

    lines: dict[str, dict[str, dict[str, list[float]]]] = {}
    for name, _ in LINE_METRICS:
        per = {}
        for lam in final_lambdas:
            stats = [_mean_std([_value(r, name, ak) for r in cell(lam, x)]) for x in xs]
            per[f"{lam:g}"] = {
                "mean": [a for a, _, _ in stats],
                "std": [b for _, b, _ in stats],
                "n": [n for *_, n in stats],
            }
        if any(n for v in per.values() for n in v["n"]):
            lines[name] = per
    from linvae.deep.summary import sorted_spectrum

    spectrum = {}
    for lam in sorted({min(final_lambdas), max(final_lambdas)}):
        mean, std = [], []
        for x in xs:
            sp = [s for s in (sorted_spectrum(r) for r in cell(lam, x)) if s is not None]
            mean.append(np.mean(sp, axis=0).tolist() if sp else [float("nan")] * cfg.latent_dim)
            std.append(np.std(sp, axis=0, ddof=1).tolist() if len(sp) > 1 else [0.0] * cfg.latent_dim)
        spectrum[f"{lam:g}"] = {"mean": mean, "std": std}
    cells = []
    for lam in final_lambdas:
        for j, x in enumerate(xs):
            nll, mig = lines.get("nll", {}).get(f"{lam:g}"), lines.get("mig", {}).get(f"{lam:g}")
            if nll is None or mig is None:
                continue
            cells.append({
                "x": x, "beta": betas[j] if axis == "beta" else betas[0], "lambda": lam,
                "nll": nll["mean"][j], "nll_std": nll["std"][j], "mig": mig["mean"][j], "mig_std": mig["std"][j],
                "n": min(nll["n"][j], mig["n"][j]),
            })  # fmt: skip
    points = [(c["nll"], c["mig"]) for c in cells]
    tradeoff = {
        "cells": cells,
        "front": pareto_front(points),
        "weight": weight,
        "optimum": tchebycheff(points, weight),
        "slider": [{"weight": w, "optimum": tchebycheff(points, w)} for w in SLIDER_WEIGHTS],
    }
    source = dataset.provenance.to_dict()["label"]
    rows = summary_rows(
        records, dataset=cfg.dataset, source=source, protocol=protocol_label(cfg), active_kl=ak
    )
    linear = linear_prediction(xs, final_lambdas, active_kl=ak) if axis == "beta" else None
    return {
        "protocol": protocol_label(cfg),
        "active_kl": ak,
        "lines": lines,
        "spectrum": spectrum,
        "tradeoff": tradeoff,
        "linear": linear,
        "summary_rows": rows,
        "axis": {
            "name": axis,
            "symbol": r"$\beta$" if axis == "beta" else "$C$",
            "label": r"$\beta$" if axis == "beta" else "KL target $C$ (nats)",
        },
        "xs": xs,
        "betas": betas,
        "kl_targets": [float(c) for c in cfg.kl_targets],
        "beta_schedule": cfg.beta_schedule,
        "lambdas": lambdas,
        "seeds": seeds,
        "baseline": {"x": base_x, "lambda": base_lam},
        "boxplots": box,
        "heatmaps": {k: g.tolist() for k, g in grid.items()},
        "pct_change": pct,
        "pareto": pareto,
        "mi": mi,
        "factor_names": list(dataset.factor_names),
        "probe": (probe.astype(np.float64) / 255.0).round(3).tolist(),
        "traversals": trav,
    }


def _title(data: dict[str, Any], what: str) -> str:
    tag = " (procedural stand-in)" if data["stand_in"] else ""
    if data["axis"]["name"] == "kl_target":
        tag += f" [{data['beta_schedule']}, $\\beta_{{\\min}}$ / $\\beta(0)$ = {data['betas'][0]:g}]"
    protocol = data.get("protocol", "published protocol")
    second = "" if protocol == "published protocol" else f"\n{protocol}"
    return f"{data['dataset']}{tag}: {what}{second}"


def plot_boxplots(data: dict[str, Any]):
    """NLL/KL/MIG/SAP/I_m vs β over seeds (β-VAE phase)."""
    import matplotlib.figure

    fig = matplotlib.figure.Figure(figsize=(3.2 * len(METRICS), 3.2), layout="constrained")
    axes = fig.subplots(1, len(METRICS))
    for ax, (name, label) in zip(axes, METRICS, strict=True):
        groups = [[v for v in g if np.isfinite(v)] for g in data["boxplots"][name]]
        ax.boxplot(groups, tick_labels=[f"{b:g}" for b in data["xs"]])
        ax.set_xlabel(data["axis"]["label"])
        ax.set_title(label)
    fig.suptitle(_title(data, r"$\beta$-VAE phase, $\lambda = 0$, over seeds"))
    return fig


def _heat(fig, ax, grid, data, label, fmt, cmap="viridis", centred=False):
    g = np.asarray(grid, dtype=float)
    kw = {}
    if centred and np.isfinite(g).any():
        lim = max(float(np.nanmax(np.abs(g))), 1e-9)
        kw = {"vmin": -lim, "vmax": lim}
    im = ax.imshow(g, cmap=cmap, aspect="auto", origin="lower", **kw)
    ax.set_xticks(range(len(data["xs"])), [f"{b:g}" for b in data["xs"]])
    ax.set_yticks(range(len(data["lambdas"])), [f"{v:g}" for v in data["lambdas"]])
    ax.set_xlabel(data["axis"]["label"])
    ax.set_ylabel(r"$\lambda$")
    ax.set_title(label)
    for i in range(g.shape[0]):
        for j in range(g.shape[1]):
            if np.isfinite(g[i, j]):
                ax.text(j, i, fmt.format(g[i, j]), ha="center", va="center", fontsize=7, color="w")
    fig.colorbar(im, ax=ax, shrink=0.8)


def plot_heatmaps(data: dict[str, Any]):
    """(λ x β) means after the λβ continuation."""
    import matplotlib.figure

    fig = matplotlib.figure.Figure(figsize=(3.6 * len(METRICS), 3.2), layout="constrained")
    for ax, (name, label) in zip(fig.subplots(1, len(METRICS)), METRICS, strict=True):
        _heat(fig, ax, data["heatmaps"][name], data, label, "{:.3g}")
    fig.suptitle(_title(data, r"means over seeds after the $\lambda\beta$ continuation"))
    return fig


def plot_pct_change(data: dict[str, Any]):
    """% change of the (λ x β) means relative to the baseline cell."""
    import matplotlib.figure

    fig = matplotlib.figure.Figure(figsize=(3.6 * len(METRICS), 3.2), layout="constrained")
    for ax, (name, label) in zip(fig.subplots(1, len(METRICS)), METRICS, strict=True):
        grid = data["pct_change"][name]
        if grid is None:
            ax.set_axis_off()
            ax.set_title(f"{label}: baseline is 0")
            continue
        _heat(fig, ax, grid, data, f"{label}, % change", "{:+.0f}", cmap="RdBu_r", centred=True)
    b = data["baseline"]
    sym = data["axis"]["symbol"]
    fig.suptitle(_title(data, rf"% change vs ({sym}={b['x']:g}, $\lambda$={b['lambda']:g})"))
    return fig


def plot_pareto(data: dict[str, Any]):
    """NLL vs MIG: every model (faint), every (β, λ) cell's mean ± std, the Pareto front of the cells
    and the Tchebycheff-optimal cell for the chosen weight."""
    import matplotlib.figure

    fig = matplotlib.figure.Figure(figsize=(5.6, 4.4), layout="constrained")
    ax = fig.subplots()
    markers = "osD^v<>ph*"
    cmap = matplotlib.colormaps["viridis"]
    xs, lambdas = data["xs"], data["lambdas"]

    def colour(x: float):
        return cmap(xs.index(x) / max(len(xs) - 1, 1))

    for p in data["pareto"]:
        mi = lambdas.index(p["lambda"]) % len(markers)
        ax.scatter(p["nll"], p["mig"], color=colour(p["x"]), marker=markers[mi], s=10, alpha=0.3, lw=0)
    t = data["tradeoff"]
    cells = t["cells"]
    for c in cells:
        mi = lambdas.index(c["lambda"]) % len(markers)
        ax.errorbar(
            c["nll"], c["mig"], xerr=c["nll_std"], yerr=c["mig_std"], color=colour(c["x"]), marker=markers[mi],
            ms=6, lw=0.8, capsize=2,
        )  # fmt: skip
    if t["front"]:
        fx = [cells[i]["nll"] for i in t["front"]]
        fy = [cells[i]["mig"] for i in t["front"]]
        ax.step(fx, fy, where="post", color="k", lw=1, label="Pareto front (cell means)")
    if t["optimum"] is not None:
        o = cells[t["optimum"]]
        sym = data["axis"]["symbol"]
        ax.scatter(
            o["nll"], o["mig"], s=260, facecolors="none", edgecolors="crimson", lw=1.8,
            label=f"Tchebycheff optimum, w = {t['weight']:g}: {sym}={o['x']:g}, $\\lambda$={o['lambda']:g}",
        )  # fmt: skip
    for j, b in enumerate(xs):
        ax.scatter([], [], color=cmap(j / max(len(xs) - 1, 1)), label=f"{data['axis']['symbol']}={b:g}")
    for i, lam in enumerate(lambdas):
        ax.scatter([], [], color="grey", marker=markers[i % len(markers)], label=rf"$\lambda$={lam:g}")
    ax.legend(fontsize=6.5, ncol=2)
    ax.set_xlabel("NLL (nats, last-window mean; lower is better)")
    ax.set_ylabel("MIG (higher is better)")
    ax.set_title(_title(data, "NLL-MIG trade-off over the grid"), fontsize=8)
    return fig


def plot_mi(data: dict[str, Any]):
    """Latent x factor MI (nats) of one seed, one panel per (β, λ); latents sorted by their largest MI."""
    import matplotlib.figure

    keys = sorted(data["mi"], key=lambda k: (float(k.split("|")[1]), float(k.split("|")[0])))
    n = max(len(keys), 1)
    cols = min(n, len(data["xs"]))
    rows = int(np.ceil(n / cols))
    fig = matplotlib.figure.Figure(figsize=(2.6 * cols, 2.8 * rows), layout="constrained")
    axes = np.atleast_1d(fig.subplots(rows, cols)).ravel()
    vmax = max([float(np.max(data["mi"][k])) for k in keys] + [1e-9])
    for ax, k in zip(axes, keys, strict=False):
        m = np.asarray(data["mi"][k])
        m = m[np.argsort(-m.max(axis=1))]
        im = ax.imshow(m, vmin=0, vmax=vmax, cmap="magma", aspect="auto")
        b, lam = k.split("|")
        ax.set_title(rf"{data['axis']['symbol']}={b}, $\lambda$={lam}", fontsize=8)
        ax.set_xticks(range(len(data["factor_names"])), data["factor_names"], rotation=60, fontsize=6)
        ax.set_ylabel("latent (sorted)", fontsize=7)
    for ax in axes[len(keys) :]:
        ax.set_axis_off()
    if keys:
        fig.colorbar(im, ax=list(axes), shrink=0.7, label="MI (nats)")
    fig.suptitle(_title(data, f"latent-factor MI, seed {min(data['seeds'])}"))
    return fig


def plot_traversals(data: dict[str, Any]):
    """Traversals (rows: latents; columns: values) and reconstructions for each shown model."""
    import matplotlib.figure

    keys = sorted(data["traversals"])
    fig = matplotlib.figure.Figure(figsize=(4.2 * max(len(keys), 1), 6.0), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, max(len(keys), 1)))
    probe = np.asarray(data["probe"])
    for ax, k in zip(axes, keys, strict=False):
        t = np.asarray(data["traversals"][k]["traversal"])  # (latents, values, H, W, C)
        r = np.asarray(data["traversals"][k]["reconstruction"])
        rows = [np.concatenate(list(row), axis=1) for row in t]
        recon_row = np.concatenate(
            [*probe[: t.shape[1] // 2 + 1], *r[: t.shape[1] - t.shape[1] // 2 - 1]], axis=1
        )
        sheet = np.clip(np.concatenate([*rows, recon_row], axis=0), 0, 1)
        ax.imshow(sheet[..., 0] if sheet.shape[-1] == 1 else sheet, cmap="gray", vmin=0, vmax=1)
        b, lam = k.split("|")
        ax.set_title(
            rf"{data['axis']['symbol']}={b}, $\lambda$={lam}: traversals; last row: inputs | reconstructions",
            fontsize=7,
        )
        ax.set_axis_off()
    if not keys:
        axes[0].set_axis_off()
    fig.suptitle(_title(data, "latent traversals (encoder mean of one image, latent set to -2.5..2.5)"))
    return fig


def _log2_axis(ax, xs: Sequence[float], label: str) -> None:
    if all(x > 0 for x in xs):
        ax.set_xscale("log", base=2)
    ax.set_xticks(list(xs), [f"{x:g}" for x in xs])
    ax.minorticks_off()
    ax.set_xlabel(label)


def _lines_panel(ax, data: dict[str, Any], name: str, label: str) -> None:
    cmap = matplotlib_cmap("magma")
    per = data["lines"][name]
    keys = list(per)
    for i, lam in enumerate(keys):
        v = per[lam]
        ax.errorbar(
            data["xs"], v["mean"], yerr=v["std"], marker="os^Dv<>"[i % 7], ms=4, lw=1.2, capsize=2,
            color=cmap(0.15 + 0.7 * i / max(len(keys) - 1, 1)), label=rf"$\lambda$={lam}",
        )  # fmt: skip
    _log2_axis(ax, data["xs"], data["axis"]["label"])
    ax.set_title(label, fontsize=9)


def matplotlib_cmap(name: str):
    import matplotlib

    return matplotlib.colormaps[name]


def _spectrum_panel(ax, xs: Sequence[float], spectra: Sequence[Sequence[float]], title: str, xlabel: str,
                    floor: float) -> None:  # fmt: skip
    sp = np.asarray(spectra, np.float64)  # (len(xs), m), sorted largest first
    cmap = matplotlib_cmap("viridis")
    m = sp.shape[1]
    for k in range(m):
        ax.plot(
            xs,
            sp[:, k],
            marker=".",
            lw=1,
            color=cmap(k / max(m - 1, 1)),
            label=f"{k + 1}" if k in (0, m - 1) else None,
        )
    ax.axhline(floor, color="crimson", lw=0.8, ls=":", label=f"active: KL > {floor:g}")
    ax.set_yscale("symlog", linthresh=1e-2)
    ax.set_ylim(bottom=0)
    _log2_axis(ax, xs, xlabel)
    ax.set_ylabel("per-latent KL (nats), sorted")
    ax.set_title(title, fontsize=8.5)


def plot_lines(data: dict[str, Any]):
    """Every tabulated metric vs β (or C), one line per λ, mean ± std over seeds (final phase)."""
    import matplotlib.figure

    names = [(n, lab) for n, lab in LINE_METRICS if n in data["lines"]]
    cols = min(len(names), 5)
    rows = int(np.ceil(len(names) / cols))
    fig = matplotlib.figure.Figure(figsize=(3.3 * cols, 2.9 * rows), layout="constrained")
    axes = np.atleast_1d(fig.subplots(rows, cols)).ravel()
    for ax, (name, label) in zip(axes, names, strict=False):
        _lines_panel(ax, data, name, label)
    for ax in axes[len(names) :]:
        ax.set_axis_off()
    axes[0].legend(fontsize=7)
    fig.suptitle(
        _title(data, "metrics vs " + data["axis"]["symbol"] + r", mean $\pm$ std over seeds"), fontsize=9
    )
    return fig


def plot_deep_effect(data: dict[str, Any]):
    """The deep effect beside the linear prediction (see the module docstring)."""
    import matplotlib.figure

    fig = matplotlib.figure.Figure(figsize=(21.0, 7.6), layout="constrained")
    axes = fig.subplots(2, 6)
    for ax, (name, label) in zip(axes[0], EFFECT_METRICS, strict=True):
        if name in data["lines"]:
            _lines_panel(ax, data, name, "deep: " + label)
        else:
            ax.set_axis_off()
    axes[0, 0].legend(fontsize=7)
    xs, floor = data["xs"], data["active_kl"]
    lam_keys = list(data["spectrum"])
    for ax, lam in zip(axes[1, :2], [lam_keys[0], lam_keys[-1]], strict=True):
        _spectrum_panel(ax, xs, data["spectrum"][lam]["mean"], rf"deep: per-latent KL, $\lambda$={lam} (seed mean)",
                        data["axis"]["label"], floor)  # fmt: skip
    if len(lam_keys) == 1:
        axes[1, 1].set_axis_off()
    lin = data["linear"]
    if lin is None:
        for ax in axes[1, 2:]:
            ax.set_axis_off()
    else:
        lk = list(lin["d3"])
        b = lin["betas"]
        spec = lambda model, lam: [c["kl"] for c in lin[model][lam]]  # noqa: E731
        _spectrum_panel(
            axes[1, 2],
            b,
            spec("d3", lk[0]),
            rf"linear D3 ($\sigma_d^2$=1): $\lambda$={lk[0]}",
            r"$\beta$",
            floor,
        )
        _spectrum_panel(
            axes[1, 3],
            b,
            spec("d3", lk[-1]),
            rf"linear D3 ($\sigma_d^2$=1): $\lambda$={lk[-1]}",
            r"$\beta$",
            floor,
        )
        _spectrum_panel(axes[1, 4], b, spec("d1", lk[-1]),
                        rf"linear D1 (learned $\Sigma_Z$): $\lambda$={lk[-1]}; at $\lambda$=0 all off for $\beta$>1",
                        r"$\beta$", floor)  # fmt: skip
        ax = axes[1, 5]
        cmap = matplotlib_cmap("magma")
        for i, lam in enumerate(lk):
            c = cmap(0.15 + 0.7 * i / max(len(lk) - 1, 1))
            ax.plot(
                b, [v["i_m"] for v in lin["d3"][lam]], marker="o", ms=3, color=c, label=rf"D3 $\lambda$={lam}"
            )
            ax.plot(
                b,
                [v["i_m"] for v in lin["d1"][lam]],
                marker="x",
                ms=4,
                ls="--",
                color=c,
                label=rf"D1 $\lambda$={lam}",
            )
        _log2_axis(ax, b, r"$\beta$")
        ax.set_ylabel("$I_m$ (nats, exact)")
        ax.set_title("linear: $I_m$ vs $\\beta$ (D3 solid, D1 dashed)", fontsize=8.5)
        ax.legend(fontsize=6, ncol=2)
    fig.suptitle(
        _title(data, "what the linear theory predicts, measured in the deep model (top, bottom left) and in"
               f" closed form on the linear instance (bottom right: {lin['instance'] if lin else 'n/a'};"
               r" same $\beta$, $\lambda$ values, but $\lambda$'s scale differs: L2 over pixels vs $\mathrm{tr}\,E$)"),
        fontsize=9,
    )  # fmt: skip
    return fig


PLOTS = {
    "deep-effect": plot_deep_effect,
    "lines": plot_lines,
    "boxplots": plot_boxplots,
    "heatmaps": plot_heatmaps,
    "pct_change": plot_pct_change,
    "pareto": plot_pareto,
    "mi": plot_mi,
    "traversals": plot_traversals,
}


def pareto_html(data: dict[str, Any]) -> str | None:
    """A standalone HTML page (plotly.js embedded, no server, no network) of the NLL-MIG trade-off
    with a slider over the Tchebycheff weight; ``None`` when plotly is not installed.

    The page also carries the plotted numbers as JSON (``<script id="linvae-data">``).
    """
    try:
        import plotly.graph_objects as go
    except ImportError:
        return None
    t = data["tradeoff"]
    cells = t["cells"]
    sym = "β" if data["axis"]["name"] == "beta" else "C"
    text = [f"{sym}={c['x']:g}, λ={c['lambda']:g}<br>NLL {c['nll']:.2f} ± {c['nll_std']:.2f}<br>"
            f"MIG {c['mig']:.3f} ± {c['mig_std']:.3f}<br>n = {c['n']}" for c in cells]  # fmt: skip
    fig = go.Figure()
    for lam in data["lambdas"]:
        idx = [i for i, c in enumerate(cells) if c["lambda"] == lam]
        if not idx:
            continue
        fig.add_trace(go.Scatter(
            x=[cells[i]["nll"] for i in idx], y=[cells[i]["mig"] for i in idx], mode="markers+text",
            error_x={"type": "data", "array": [cells[i]["nll_std"] for i in idx]},
            error_y={"type": "data", "array": [cells[i]["mig_std"] for i in idx]},
            text=[f"{sym}={cells[i]['x']:g}" for i in idx], textposition="top center",
            hovertext=[text[i] for i in idx], hoverinfo="text", name=f"λ={lam:g}",
        ))  # fmt: skip
    front = t["front"]
    fig.add_trace(go.Scatter(
        x=[cells[i]["nll"] for i in front], y=[cells[i]["mig"] for i in front], mode="lines",
        line={"shape": "hv", "color": "black"}, name="Pareto front",
    ))  # fmt: skip

    def optimum(i: int | None) -> tuple[list[float], list[float], str]:
        if i is None:
            return [], [], "no finite cell"
        c = cells[i]
        return [c["nll"]], [c["mig"]], f"{sym}={c['x']:g}, λ={c['lambda']:g}"

    start = min(range(len(t["slider"])), key=lambda k: abs(t["slider"][k]["weight"] - t["weight"]))
    x0, y0, label0 = optimum(t["slider"][start]["optimum"])
    fig.add_trace(go.Scatter(
        x=x0, y=y0, mode="markers", marker={"size": 22, "symbol": "circle-open", "color": "crimson", "line": {"width": 3}},
        name="Tchebycheff optimum",
    ))  # fmt: skip
    title = f"{data['dataset']}{' (procedural stand-in)' if data['stand_in'] else ''}: NLL-MIG trade-off"
    steps = []
    for s in t["slider"]:
        x, y, label = optimum(s["optimum"])
        sub = f"<br><sub>weight on NLL w = {s['weight']:g}: optimum {label}</sub>"
        steps.append({
            "method": "update", "label": f"{s['weight']:g}",
            "args": [{"x": [x], "y": [y]}, {"title.text": title + sub}, [len(fig.data) - 1]],
        })  # fmt: skip
    fig.update_layout(
        title={"text": f"{title}<br><sub>weight on NLL w = {t['slider'][start]['weight']:g}: optimum {label0}</sub>"},
        xaxis_title="NLL (nats, last-window mean; lower is better)", yaxis_title="MIG (higher is better)",
        sliders=[{"active": start, "currentvalue": {"prefix": "weight on reconstruction w = "}, "steps": steps}],
        annotations=[{"text": data["protocol"] + " | " + data.get("provenance_label", ""), "showarrow": False,
                      "xref": "paper", "yref": "paper", "x": 0, "y": -0.28, "font": {"size": 10}}],
        template="plotly_white", height=640,
    )  # fmt: skip
    page = fig.to_html(include_plotlyjs=True, full_html=True)
    payload = json.dumps(
        {"dataset": data["dataset"], "protocol": data["protocol"], "tradeoff": t}, allow_nan=True
    )
    payload = payload.replace("</", "<\\/")
    return page.replace(
        "</body>", f'<script type="application/json" id="linvae-data">{payload}</script>\n</body>'
    )


def _floats(text: str) -> tuple[float, ...]:
    return tuple(float(v) for v in text.replace(",", " ").split())


def _ints(text: str) -> tuple[int, ...]:
    return tuple(int(v) for v in text.replace(",", " ").split())


def parser() -> argparse.ArgumentParser:
    """The ``deep`` sub-command's arguments."""
    from linvae.deep.config import METRIC_NAMES, PAPER_METRICS, PRESETS
    from linvae.deep.runs import STALE_S

    p = argparse.ArgumentParser(
        prog="python -m linvae.figures deep",
        description=__doc__.split("\n")[0].removeprefix("The deep experiments: ").strip("`")
        + ": train what is missing, evaluate, write the figures and result tables.",
        epilog=(
            "Real data files are looked for in --data-dir, else $LINVAE_DATA, else $DISENTANGLEMENT_LIB_DATA"
            " (the file, or its disentanglement_lib sub-folder): dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz,"
            " 3dshapes.h5, mpi3d_real.npz. The paper presets need them; --source procedural runs any preset on"
            " the labelled stand-ins."
        ),
    )
    p.add_argument(
        "--dataset",
        required=True,
        nargs="+",
        help="dsprites, shapes3d and/or mpi3d (several: one sweep each)",
    )
    p.add_argument(
        "--preset", default="smoke",
        help=f"{', '.join(PRESETS)} (default smoke; demo: the effect on a 2-core CPU, a labelled reduced configuration;"
        " paper / paper-m15: the published protocol and the authors' larger grid, on the real files)",
    )  # fmt: skip
    p.add_argument("--betas", type=_floats, help='e.g. "1 4 8 16 32"')
    p.add_argument("--lambdas", type=_floats, help='e.g. "0 2 4 6 8"')
    p.add_argument("--seeds", type=_ints, help='e.g. "0 1 2"')
    p.add_argument(
        "--steps", type=int,
        help="beta-VAE phase steps N. Without --lambda-steps this also sets the lambda-beta phase to"
        " min(preset's, max(N // 3, 1)) steps (the published 3 : 1 split); the run prints and records it",
    )  # fmt: skip
    p.add_argument(
        "--lambda-steps", type=int, help="lambda-beta continuation steps (explicit; 0 skips the phase)"
    )
    p.add_argument("--latent-dim", type=int, help="number of latents (10 in the paper, 15 in paper-m15)")
    p.add_argument("--lr", type=float, help="Adam learning rate (1e-4 in the paper)")
    p.add_argument("--batch-size", type=int, help="images per step (64 in the paper)")
    p.add_argument(
        "--image-size", type=int, choices=(64, 32), help="64 (published) or 32 (mean-pooled, reduced)"
    )
    p.add_argument(
        "--metrics", nargs="+", metavar="METRIC",
        help=f"disentanglement metrics, any of {' '.join(METRIC_NAMES)} (default: {' '.join(PAPER_METRICS)},"
        " the paper's); per-latent KL, active latents, NLL, KL and L2 are always computed",
    )  # fmt: skip
    p.add_argument(
        "--weight", type=float, default=0.5,
        help="weight on reconstruction (NLL) of the Tchebycheff choice on the NLL-MIG trade-off, in [0, 1]"
        " (default 0.5; the HTML page has a slider)",
    )  # fmt: skip
    p.add_argument(
        "--beta-schedule",
        choices=("constant", "linear", "controlvae", "dynamicvae"),
        help="beta schedule or PI controller (docs/theory.md section 7); controllers take one --betas value",
    )
    p.add_argument(
        "--kl-targets",
        type=_floats,
        help='KL set-points (nats) swept by a controller, e.g. "2 4 8"; needs --beta-schedule controlvae|dynamicvae',
    )
    p.add_argument(
        "--source", choices=("auto", "real", "procedural"),
        help="image source: real (the file must exist; the paper presets' default), procedural (the labelled"
        " stand-in), auto (the file if found, else the stand-in)",
    )  # fmt: skip
    p.add_argument(
        "--data-dir",
        help="folder of the real data files (else $LINVAE_DATA, else $DISENTANGLEMENT_LIB_DATA)",
    )
    p.add_argument("--out", default="figures", help="folder for the figures and tables")
    p.add_argument(
        "--runs",
        help="runs folder (default runs/deep/<dataset>-<preset>; with several data sets, <runs>/<dataset>)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    w = p.add_argument_group(
        "workers and devices",
        "Any number of workers may run the same command on one runs folder: each model is claimed in the"
        " folder before it is trained (a dead worker's claim is taken over), each model checkpoints on its"
        " own, and the worker that trains the last model evaluates them and draws the figures.",
    )
    w.add_argument(
        "--devices", default="all",
        help="devices each group of models is sharded over: all (default; every local GPU, or the CPU) or N"
        " (the first N)",
    )  # fmt: skip
    w.add_argument(
        "--shard", metavar="I/N",
        help="train only shard I of N (lineages beta, seed with index I mod N, with their lambda continuations),"
        " for schedulers that hand out indices (a SLURM array: --shard $SLURM_ARRAY_TASK_ID/N)",
    )  # fmt: skip
    w.add_argument(
        "--aggregate", action="store_true",
        help="train nothing: evaluate the trained models that lack an evaluation and draw the figures now"
        " (also of a sweep still running)",
    )  # fmt: skip
    w.add_argument(
        "--stale-after", type=float, default=STALE_S, metavar="S",
        help=f"seconds without a heartbeat after which another worker's claim is taken over (default {STALE_S:g};"
        " a claim of a process of this host that has gone is taken over at once)",
    )  # fmt: skip
    x = p.add_argument_group(
        "cluster (submitit)",
        "--executor submits --jobs workers running this command (submitit: pip install 'linvae[deep]').",
    )
    x.add_argument(
        "--executor", choices=("local", "slurm"),
        help="local: the workers run as processes of this machine and the command waits for them; slurm: a"
        " SLURM job array, the command returns after submitting (--wait: waits)",
    )  # fmt: skip
    x.add_argument("--jobs", type=int, default=1, help="number of workers (default 1)")
    x.add_argument("--wait", action="store_true", help="with --executor slurm: wait for the jobs to finish")
    x.add_argument("--submitit-folder", help="logs and job files (default <runs>/submitit)")
    x.add_argument("--slurm-partition", help="SLURM partition")
    x.add_argument("--slurm-gpus-per-job", type=int, metavar="G", help="GPUs per job (--gpus-per-node)")
    x.add_argument("--slurm-cpus-per-job", type=int, metavar="C", help="CPUs per job (--cpus-per-task)")
    x.add_argument("--slurm-mem-gb", type=float, metavar="GB", help="memory per job")
    x.add_argument(
        "--slurm-time", type=int, metavar="MIN",
        help="time limit per job in minutes; a job cut off leaves its models' checkpoints, and a rerun (or"
        " another worker) resumes them",
    )  # fmt: skip
    x.add_argument("--slurm-account", help="SLURM account")
    x.add_argument("--slurm-qos", help="SLURM quality of service")
    return p


#: Options of the submitting command that its workers do not take (value-taking unless in _FLAGS).
_EXECUTOR_OPTIONS = (
    "--executor", "--jobs", "--wait", "--submitit-folder", "--slurm-partition", "--slurm-gpus-per-job",
    "--slurm-cpus-per-job", "--slurm-mem-gb", "--slurm-time", "--slurm-account", "--slurm-qos",
)  # fmt: skip
_FLAGS = ("--wait",)


def worker_argv(argv: Sequence[str], args: argparse.Namespace) -> list[str]:
    """The command each submitted worker runs: ``argv`` without the executor's options, with the runs,
    output and data folders made absolute (a job may start elsewhere)."""
    out: list[str] = []
    skip = False
    for a in argv:
        if skip:
            skip = False
            continue
        name = a.split("=", 1)[0]
        if name in _EXECUTOR_OPTIONS:
            skip = "=" not in a and name not in _FLAGS
            continue
        out.append(a)
    out += ["--out", str(Path(args.out).resolve())]
    if args.runs:
        out += ["--runs", str(Path(args.runs).resolve())]
    if args.data_dir:
        out += ["--data-dir", str(Path(args.data_dir).resolve())]
    return out


def worker(argv: list[str]) -> int:
    """One submitted worker: the sweep command itself (:func:`main`)."""
    return main(argv)


def submit_workers(argv: Sequence[str], args: argparse.Namespace) -> int:
    """Start ``--jobs`` workers with submitit; wait for local ones (and for SLURM ones with --wait)."""
    from linvae.deep.sweep import SlurmOptions, submit

    names = [d.lower() for d in args.dataset]
    base = Path(args.runs) if args.runs else Path("runs") / "deep" / f"{names[0]}-{args.preset}"
    folder = Path(args.submitit_folder) if args.submitit_folder else base / "submitit"
    slurm = SlurmOptions(
        partition=args.slurm_partition, gpus_per_job=args.slurm_gpus_per_job, cpus_per_job=args.slurm_cpus_per_job,
        mem_gb=args.slurm_mem_gb, time_min=args.slurm_time, account=args.slurm_account, qos=args.slurm_qos,
    )  # fmt: skip
    try:
        jobs = submit(
            worker, [worker_argv(argv, args)], executor=args.executor, jobs=args.jobs, folder=folder.resolve(),
            slurm=slurm,
        )  # fmt: skip
    except (ValueError, ImportError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    ids = ", ".join(str(j.job_id) for j in jobs)
    print(f"submitted {len(jobs)} {args.executor} worker(s): {ids}; logs in {folder}", file=sys.stderr)
    if args.executor == "slurm" and not args.wait:
        return 0
    status = 0
    for j in jobs:
        try:
            status = max(status, int(j.result()))
        except Exception as err:  # a worker that failed: report it, wait for the others
            print(f"error: worker {j.job_id} failed: {err}", file=sys.stderr)
            status = max(status, 1)
    return status


def config_from_args(args: argparse.Namespace, dataset: str | None = None) -> tuple[Any, list[str]]:
    """The DeepConfig of parsed arguments for one data set, and notes on values derived from others
    (``ValueError`` for unknown presets or bad values)."""
    from linvae.deep.config import preset, validate

    name = (dataset if dataset is not None else args.dataset[0]).lower()
    overrides: dict[str, Any] = {"dataset": name}
    for field, value in (
        ("betas", args.betas), ("lambdas", args.lambdas), ("seeds", args.seeds), ("beta_steps", args.steps),
        ("lambda_steps", args.lambda_steps), ("source", args.source), ("data_dir", args.data_dir),
        ("beta_schedule", args.beta_schedule), ("kl_targets", args.kl_targets), ("latent_dim", args.latent_dim),
        ("learning_rate", args.lr), ("batch_size", args.batch_size), ("image_size", args.image_size),
        ("metrics", tuple(args.metrics) if args.metrics else None),
    ):  # fmt: skip
        if value is not None:
            overrides[field] = value
    cfg = preset(args.preset, **overrides)
    notes = []
    if args.steps is not None and args.lambda_steps is None:
        lam = min(cfg.lambda_steps, max(args.steps // 3, 1))
        notes.append(
            f"--steps {args.steps} without --lambda-steps: lambda-beta phase set to min({cfg.lambda_steps},"
            f" max({args.steps} // 3, 1)) = {lam} steps"
        )
        cfg = dataclasses.replace(cfg, lambda_steps=lam)
    if not 0.0 <= args.weight <= 1.0:
        raise ValueError(f"--weight must lie in [0, 1]; got {args.weight}")
    validate(cfg)
    return cfg, notes


def _save(fig, stem: Path) -> list[str]:
    from linvae._atomic import atomic_write

    files = []
    for ext in ("png", "pdf"):
        path = stem.with_name(f"{stem.name}.{ext}")
        atomic_write(path, lambda f, ext=ext: fig.savefig(f, format=ext, bbox_inches="tight"))
        files.append(str(path))
    return files


def _missing_data_hint(cfg: Any, preset_name: str) -> str:
    if cfg.source == "real":
        why = (
            f"the {preset_name!r} preset trains on the real files"
            if preset_name.startswith("paper")
            else "--source real"
        )
        return (
            f"; {why}: pass --data-dir FOLDER (or set $LINVAE_DATA or $DISENTANGLEMENT_LIB_DATA), or run on the"
            " procedural stand-in with --source procedural (every output is then labelled)"
        )
    return ""


def run_dataset(
    args: argparse.Namespace, name: str, runs: Path, out: Path
) -> tuple[int, dict[str, Any] | None]:
    """Train, evaluate, draw and tabulate one data set's sweep; returns (exit status, sidecar)."""
    from linvae.deep.config import preset, validate
    from linvae.deep.evaluate import check_runs_evaluation
    from linvae.deep.record import append_invocation, measured, write_json
    from linvae.deep.runs import check_runs, for_target, target_folders
    from linvae.deep.sweep import parse_shard, progress_of, select_devices, train_sweep
    from linvae.deep.train import open_dataset

    try:
        cfg, notes = config_from_args(args, name)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2, None
    try:
        dataset = open_dataset(cfg)
    except FileNotFoundError as err:
        print(f"error: {err}{_missing_data_hint(cfg, args.preset)}", file=sys.stderr)
        return 2, None
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2, None
    try:
        devices = select_devices(args.devices)
        shard = parse_shard(args.shard)
        validate(cfg, num_images=None if dataset.name == "linear_gaussian" else dataset.num_images)
        # Refuse a runs folder of another configuration, data or evaluation before anything is trained.
        check_runs(cfg, runs, dataset)
        for target, folder in target_folders(cfg, runs):
            check_runs_evaluation(for_target(cfg, target), folder)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2, None
    del preset
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    from linvae.deep.config import protocol_label

    print(f"data: {dataset.provenance}; {protocol_label(cfg)}; runs: {runs}; figures: {out}", file=sys.stderr)
    stem = out / f"deep_{cfg.dataset}_{args.preset}"
    with measured(f"python -m linvae.figures deep --preset {args.preset} (train)") as rec:
        trained = {"beta": 0, "lambda": 0}
        if not args.aggregate:
            trained = train_sweep(
                cfg, runs, dataset=dataset, progress=not args.no_progress, devices=devices, shard=shard,
                stale_s=args.stale_after,
            )  # fmt: skip
        rec["trained"] = trained
        rec["devices"] = [str(d) for d in devices]
    done, total = progress_of(cfg, runs)
    if done < total and not args.aggregate:
        append_invocation(runs, rec)
        print(
            f"{cfg.dataset}: {done} of {total} models trained (this worker trained {sum(trained.values())}); the"
            " worker that trains the last one evaluates them and draws the figures (or run with --aggregate)",
            file=sys.stderr,
        )
        return 0, None
    key = _aggregate_key(cfg, runs, stem, args.weight)
    if not args.aggregate and _aggregate_is_current(runs, key, stem):
        append_invocation(runs, rec)
        print(
            f"{cfg.dataset}: all {total} models trained and the figures {stem}_* are up to date (--aggregate"
            " draws them again)",
            file=sys.stderr,
        )
        return 0, None
    from linvae.deep.runs import Claims

    claims = Claims(stale_s=args.stale_after)
    if not claims.try_claim(runs / AGGREGATE_CLAIM, "evaluate and draw"):
        append_invocation(runs, rec)
        print(f"{cfg.dataset}: another worker is evaluating and drawing; this one stops", file=sys.stderr)
        return 0, None
    with (
        claims.alive(),
        measured(f"python -m linvae.figures deep --preset {args.preset} (evaluate, draw)") as rec_draw,
    ):
        status, sidecar = _aggregate(args, cfg, notes, dataset, runs, out, stem, trained, rec, rec_draw)
        if status == 0:
            write_json(runs / AGGREGATE_RECORD, key)
    append_invocation(runs, rec)
    invocations = append_invocation(runs, rec_draw)
    sidecar["runs_folder"] = {
        "path": str(runs),
        "invocations": invocations,
        "wall_s_total": sum(i["wall_s"] for i in invocations),
        "cpu_s_total": sum(i["cpu_s"] for i in invocations),
    }
    from linvae._atomic import atomic_write

    atomic_write(
        stem.with_name(f"{stem.name}.json"),
        lambda f: json.dump(sidecar, f, indent=1, allow_nan=True),
        mode="w",
    )
    wall = rec["wall_s"] + rec_draw["wall_s"]
    print(
        f"wrote {len(sidecar['figures'])} files to {out} ({wall:.0f} s, load average {rec_draw['load_mean']:.1f})",
        file=sys.stderr,
    )
    return status, sidecar


#: In the runs folder: the claim of the worker evaluating and drawing, and what it last drew.
AGGREGATE_CLAIM, AGGREGATE_RECORD = "aggregate.claim", "aggregate.json"


def _aggregate_key(cfg: Any, runs: Path, stem: Path, weight: float) -> dict[str, Any]:
    """What the figures drawn from ``runs`` depend on: every finished model (its file's mtime), the
    output stem, the trade-off weight and the metrics."""
    import hashlib

    from linvae.deep.sweep import plan

    models = [
        [str(t.folder.relative_to(runs)), os.stat(t.folder / "model.npz").st_mtime_ns]
        for t in plan(cfg, runs)
        if t.done()
    ]
    digest = hashlib.sha1(json.dumps(models).encode()).hexdigest()
    return {"models": len(models), "models_sha1": digest, "stem": str(stem.resolve()), "weight": weight,
            "metrics": list(cfg.metrics)}  # fmt: skip


def _aggregate_is_current(runs: Path, key: dict[str, Any], stem: Path) -> bool:
    from linvae.deep.record import read_json

    path = runs / AGGREGATE_RECORD
    sidecar = stem.with_name(f"{stem.name}.json")
    return path.exists() and sidecar.exists() and read_json(path) == key


def _aggregate(
    args: argparse.Namespace,
    cfg: Any,
    notes: list[str],
    dataset: Any,
    runs: Path,
    out: Path,
    stem: Path,
    trained: dict[str, int],
    rec: dict[str, Any],
    rec_draw: dict[str, Any],
) -> tuple[int, dict[str, Any]]:
    """The final step: evaluate the models that lack an evaluation, draw the figures, write the tables;
    returns (status, sidecar without the invocations)."""
    from linvae.deep.data import fingerprint
    from linvae.deep.evaluate import evaluate_sweep, evaluation_settings, summary
    from linvae.deep.runs import for_target, target_folders
    from linvae.deep.summary import write_summary

    t_train = rec["wall_s"]
    t0, cpu0 = time.perf_counter(), time.process_time()
    records = []
    for target, folder in target_folders(cfg, runs):
        for r in evaluate_sweep(for_target(cfg, target), folder, dataset=dataset):
            if target is not None:
                r["member"]["kl_target"] = target
            records.append(r)
    t_eval = time.perf_counter() - t0
    data = compute(cfg, records, runs, dataset, weight=args.weight)
    data.update(
        dataset=cfg.dataset,
        stand_in=dataset.provenance.is_stand_in,
        provenance_label=str(dataset.provenance),
    )
    files = []
    for panel, plot in PLOTS.items():
        files += _save(plot(data), stem.with_name(f"{stem.name}_{panel}"))
    title = f"{cfg.dataset} ({dataset.provenance}), preset {args.preset}"
    table_notes = [
        f"{data['protocol']}.",
        f"Mean ± std over seeds (sample std, ddof = 1), n = models per cell. NLL, KL: training means over the"
        f" last {cfg.log_window:,} steps; active: latents with KL > {cfg.active_kl:g} nats on the evaluation"
        " images; MIG, SAP, I_m with disentanglement_lib's definitions. β phase: "
        f"{cfg.beta_steps:,} steps; λ phase: {cfg.beta_steps:,} + {cfg.lambda_steps:,}.",
    ]
    rows = data["summary_rows"]
    files += list(write_summary(rows, stem.with_name(f"{stem.name}_summary"), title=title, notes=table_notes))
    write_summary(rows, runs / "summary", title=title, notes=table_notes)
    page = pareto_html(data)
    if page is None:
        print(
            "note: plotly is not installed, so the interactive trade-off page was skipped"
            " (pip install 'linvae[deep]' or pip install plotly)", file=sys.stderr,
        )  # fmt: skip
    else:
        from linvae._atomic import atomic_write

        html = stem.with_name(f"{stem.name}_pareto.html")
        atomic_write(html, lambda f: f.write(page), mode="w")
        files.append(str(html))
    t_draw = time.perf_counter() - t0 - t_eval
    sidecar = {
        "config": cfg.to_dict(),
        "preset": args.preset,
        "protocol": data["protocol"],
        "notes": notes,
        "provenance": dataset.provenance.to_dict(),
        "data_fingerprint": fingerprint(dataset),
        "evaluation": evaluation_settings(cfg),
        "summary": summary(records),
        "trained": trained,
        "wall_s": {"train": t_train, "evaluate": t_eval, "draw": t_draw, "total": t_train + t_eval + t_draw},
        "cpu_s": rec["cpu_s"] + (time.process_time() - cpu0),
        "load_average": {k: rec[k] for k in ("load_start", "load_end", "load_mean", "load_max", "cores")},
        "devices": rec.get("devices"),
        "figures": files,
        "data": {k: v for k, v in data.items() if k not in ("traversals", "probe")},
    }
    return 0, sidecar


def _cross_dataset(out: Path, preset_name: str) -> list[str]:
    """Rebuild ``deep_datasets_<preset>_summary.{csv,md}`` from the per-data-set tables in ``out``."""
    from linvae.deep.summary import read_csv, write_summary

    combined = f"deep_datasets_{preset_name}_summary.csv"
    tables = sorted(
        p for p in out.glob(f"deep_*_{preset_name}_summary.csv")
        if p.name != combined and p.name.removeprefix("deep_").removesuffix(f"_{preset_name}_summary.csv")
    )  # fmt: skip
    if len(tables) < 2:
        return []
    rows = [r for p in tables for r in read_csv(p)]
    notes = [
        "Rows from " + ", ".join(p.name for p in tables) + "; each row's source and protocol are in the CSV.",
        *sorted({f"{r['dataset']}: {r['source']}; {r['protocol']}." for r in rows}),
    ]
    return list(
        write_summary(
            rows,
            out / combined.removesuffix(".csv"),
            title=f"All data sets, preset {preset_name}",
            notes=notes,
        )
    )


def main(argv: list[str]) -> int:
    """Train what is missing, evaluate, draw and save the deep-experiment figures and tables; 0 on success.

    Bad input (an unknown preset, data set or metric, a bad value, missing real files, a runs folder
    of another configuration, data or evaluation) is reported as ``error: ...`` with status 2 before
    anything is trained or overwritten.
    """
    args = parser().parse_args(argv)
    if args.executor:
        return submit_workers(argv, args)
    import matplotlib

    matplotlib.use("Agg")
    out = Path(args.out)
    names = [d.lower() for d in args.dataset]
    status = 0
    for name in names:
        if args.runs:
            runs = Path(args.runs) / name if len(names) > 1 else Path(args.runs)
        else:
            runs = Path("runs") / "deep" / f"{name}-{args.preset}"
        rc, _ = run_dataset(args, name, runs, out)
        status = max(status, rc)
    if out.exists():
        files = _cross_dataset(out, args.preset)
        if files:
            print(f"wrote the cross-data-set summary {files[1]}", file=sys.stderr)
    return status
