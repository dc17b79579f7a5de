r"""The deep experiments: ``python -m linvae.figures deep --dataset D --preset P [...]``.

Trains what is missing in the runs folder (resumable; the published two-phase protocol of
docs/theory.md §2.3), evaluates every model (MIG, SAP, :math:`I_m`; NLL/KL/L2 over the last steps), and
draws, for one data set:

* ``boxplots``: NLL, KL, MIG, SAP, :math:`I_m` vs β over seeds (β-VAE phase, λ = 0);
* ``heatmaps``: (λ x β) means of the same after the λβ continuation;
* ``pct_change``: the heatmaps as % change relative to the (β = 1, λ = 0) cell (smallest β if 1 is absent);
* ``pareto``: NLL vs MIG of every λβ model with the non-dominated front;
* ``mi``: latent x factor mutual information of one seed for each β at λ = 0 and at the largest λ;
* ``traversals``: latent traversals and reconstructions at the largest β, λ = 0 vs the largest λ.

A controller sweep over KL set-points (``--beta-schedule controlvae|dynamicvae --kl-targets "2 4 8"``,
one β: the controller's β_min / β(0)) trains the grid once per target C in ``<runs>/C<C>`` and draws
the same panels with the target C in place of β on the horizontal axis.

Files: ``<out>/deep_<dataset>_<preset>_<panel>.pdf`` and a sidecar ``deep_<dataset>_<preset>.json``
(config, data provenance, code revision, every plotted number, wall times). Titles say
"procedural stand-in" when the images are not the real data set.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

METRICS = (
    ("nll", "NLL (nats)"),
    ("kl", "KL (nats)"),
    ("mig", "MIG"),
    ("sap", "SAP"),
    ("i_m", "$I_m$ (nats)"),
)
PANELS = ("boxplots", "heatmaps", "pct_change", "pareto", "mi", "traversals")


def _value(record: dict[str, Any], name: str) -> float:
    if name in ("nll", "kl", "l2"):
        v = record["window"].get(name)
    else:
        v = None if record["metrics"] is None else record["metrics"][name]
    return float("nan") if v is None else float(v)


def compute(cfg: Any, records: Sequence[dict[str, Any]], runs: Path, dataset: Any) -> dict[str, Any]:
    """Everything the figures plot, as JSON-ready numbers (plus traversal images as nested lists).

    The horizontal axis is β, or the KL target C of a controller sweep (``cfg.kl_targets``; the
    records then carry ``member["kl_target"]``).
    """
    from linvae.deep.evaluate import reconstructions, traversal
    from linvae.deep.record import Member
    from linvae.deep.train import for_target, load_model, target_folders

    axis = "kl_target" if cfg.kl_targets else "beta"
    xs = [float(c) for c in cfg.kl_targets] if cfg.kl_targets else list(cfg.betas)
    betas, lambdas, seeds = list(cfg.betas), list(cfg.lambdas), list(cfg.seeds)

    def x_of(r: dict[str, Any]) -> float:
        return r["member"][axis]

    by_phase = {
        "beta": [r for r in records if r["phase"] == "beta"],
        "lambda": [r for r in records if r["phase"] == "lambda"],
    }
    box = {
        name: [[_value(r, name) for r in by_phase["beta"] if x_of(r) == b] for b in xs] for name, _ in METRICS
    }
    grid = {}
    for name, _ in (*METRICS, ("l2", "L2")):
        g = np.full((len(lambdas), len(xs)), np.nan)
        for i, lam in enumerate(lambdas):
            for j, b in enumerate(xs):
                vals = [
                    _value(r, name)
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
    return {
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
    return f"{data['dataset']}{tag}: {what}"


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


def pareto_front(points: Sequence[tuple[float, float]]) -> list[int]:
    """Indices of the points not dominated in (lower NLL, higher MIG), sorted by NLL."""
    pts = [(i, x, y) for i, (x, y) in enumerate(points) if np.isfinite(x) and np.isfinite(y)]
    pts.sort(key=lambda t: (t[1], -t[2]))
    front, best = [], -np.inf
    for i, _, y in pts:
        if y > best:
            front.append(i)
            best = y
    return front


def plot_pareto(data: dict[str, Any]):
    """NLL vs MIG of every λβ model, coloured by β, marked by λ, with the Pareto front."""
    import matplotlib.figure

    fig = matplotlib.figure.Figure(figsize=(5.0, 4.0), layout="constrained")
    ax = fig.subplots()
    pts = data["pareto"]
    markers = "osD^v<>ph*"
    cmap = matplotlib.colormaps["viridis"]
    for p in pts:
        ci = data["xs"].index(p["x"]) / max(len(data["xs"]) - 1, 1)
        mi = data["lambdas"].index(p["lambda"]) % len(markers)
        ax.scatter(p["nll"], p["mig"], color=cmap(ci), marker=markers[mi], s=28, alpha=0.8)
    front = pareto_front([(p["nll"], p["mig"]) for p in pts])
    if front:
        ax.step([pts[i]["nll"] for i in front], [pts[i]["mig"] for i in front], where="post", color="k", lw=1)
    for j, b in enumerate(data["xs"]):
        ax.scatter(
            [], [], color=cmap(j / max(len(data["xs"]) - 1, 1)), label=f"{data['axis']['symbol']}={b:g}"
        )
    for i, lam in enumerate(data["lambdas"]):
        ax.scatter([], [], color="grey", marker=markers[i % len(markers)], label=rf"$\lambda$={lam:g}")
    ax.legend(fontsize=7, ncol=2)
    ax.set_xlabel("NLL (nats, last-window mean)")
    ax.set_ylabel("MIG")
    ax.set_title(_title(data, "NLL-MIG trade-off and Pareto front"), fontsize=9)
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


PLOTS = {
    "boxplots": plot_boxplots,
    "heatmaps": plot_heatmaps,
    "pct_change": plot_pct_change,
    "pareto": plot_pareto,
    "mi": plot_mi,
    "traversals": plot_traversals,
}


def _floats(text: str) -> tuple[float, ...]:
    return tuple(float(v) for v in text.replace(",", " ").split())


def _ints(text: str) -> tuple[int, ...]:
    return tuple(int(v) for v in text.replace(",", " ").split())


def parser() -> argparse.ArgumentParser:
    """The ``deep`` sub-command's arguments."""
    p = argparse.ArgumentParser(prog="python -m linvae.figures deep", description=__doc__.split("\n")[0])
    p.add_argument("--dataset", required=True, help="dsprites, shapes3d or mpi3d")
    p.add_argument("--preset", default="smoke", help="smoke or paper")
    p.add_argument("--betas", type=_floats, help='e.g. "1 4 8 16 32"')
    p.add_argument("--lambdas", type=_floats, help='e.g. "0 2 4 6 8"')
    p.add_argument("--seeds", type=_ints, help='e.g. "0 1 2"')
    p.add_argument("--steps", type=int, help="beta-VAE phase steps")
    p.add_argument("--lambda-steps", type=int, help="lambda-beta continuation steps")
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
    p.add_argument("--source", choices=("auto", "real", "procedural"), help="image source")
    p.add_argument("--data-dir", help="folder of the real data files (else $LINVAE_DATA)")
    p.add_argument("--out", default="figures", help="folder for the figures")
    p.add_argument("--runs", help="runs folder (default runs/deep/<dataset>-<preset>)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    return p


def config_from_args(args: argparse.Namespace):
    """The DeepConfig of parsed arguments (``ValueError`` for unknown presets or bad values)."""
    from linvae.deep.config import preset, validate

    overrides: dict[str, Any] = {"dataset": args.dataset.lower()}
    for field, value in (
        ("betas", args.betas), ("lambdas", args.lambdas), ("seeds", args.seeds), ("beta_steps", args.steps),
        ("lambda_steps", args.lambda_steps), ("source", args.source), ("data_dir", args.data_dir),
        ("beta_schedule", args.beta_schedule), ("kl_targets", args.kl_targets),
    ):  # fmt: skip
        if value is not None:
            overrides[field] = value
    cfg = preset(args.preset, **overrides)
    if args.steps is not None and args.lambda_steps is None:
        cfg = dataclasses.replace(cfg, lambda_steps=min(cfg.lambda_steps, max(args.steps // 3, 1)))
    validate(cfg)
    return cfg


def main(argv: list[str]) -> int:
    """Train what is missing, evaluate, draw and save the deep-experiment figures; returns 0 on success."""
    args = parser().parse_args(argv)
    try:
        cfg = config_from_args(args)
        from linvae.deep.train import open_dataset

        dataset = open_dataset(cfg)
    except (ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    import matplotlib

    matplotlib.use("Agg")
    from linvae.deep.config import validate
    from linvae.deep.evaluate import evaluate_sweep, summary
    from linvae.deep.train import for_target, target_folders, train_sweep

    try:
        validate(cfg, num_images=None if dataset.name == "linear_gaussian" else dataset.num_images)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    runs = Path(args.runs) if args.runs else Path("runs") / "deep" / f"{cfg.dataset}-{args.preset}"
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    print(f"data: {dataset.provenance}; runs: {runs}; figures: {out}", file=sys.stderr)
    t0 = time.perf_counter()
    trained = train_sweep(cfg, runs, dataset=dataset, progress=not args.no_progress)
    t_train = time.perf_counter() - t0
    records = []
    for target, folder in target_folders(cfg, runs):
        for r in evaluate_sweep(for_target(cfg, target), folder, dataset=dataset):
            if target is not None:
                r["member"]["kl_target"] = target
            records.append(r)
    t_eval = time.perf_counter() - t0 - t_train
    data = compute(cfg, records, runs, dataset)
    data.update(dataset=cfg.dataset, stand_in=dataset.provenance.is_stand_in)
    stem = f"deep_{cfg.dataset}_{args.preset}"
    files = []
    for name, plot in PLOTS.items():
        fig = plot(data)
        path = out / f"{stem}_{name}.pdf"
        fig.savefig(path)
        files.append(str(path))
    sidecar = {
        "config": cfg.to_dict(),
        "preset": args.preset,
        "provenance": dataset.provenance.to_dict(),
        "summary": summary(records),
        "trained": trained,
        "wall_s": {"train": t_train, "evaluate": t_eval, "total": time.perf_counter() - t0},
        "figures": files,
        "data": {k: v for k, v in data.items() if k not in ("traversals", "probe")},
    }
    (out / f"{stem}.json").write_text(json.dumps(sidecar, indent=1, allow_nan=True))
    print(f"wrote {len(files)} figures to {out} ({sidecar['wall_s']['total']:.0f} s)", file=sys.stderr)
    return 0
