r"""``linear-grid``: the published linear experiment reproduced (docs/theory.md §2.3).

For n ∈ {50, 100} (m = 10, s = 5, σ² = 0.05, seed 42) and the grid
β ∈ {1, 4, 8, 16, 32} × λ ∈ {0, 2, 4, 6, 8}:

* **alternating map** — the published fixed-point method from the 50 published initialisations per cell,
  published stopping tolerance and cap (full protocol in the default run);
* **AdamW** — the published protocol of :func:`linvae.numeric.optimizers.adamw` (50 inits × 30,000 / 50,000
  steps, per-group clipping, best iterate kept) in the default run. That takes hours on a CPU, so each
  (n, β, λ) cell is saved under ``<out>/.cache/linear-grid/`` when it finishes, and a running cell is
  checkpointed every :data:`CHECKPOINT_EVERY` steps (the whole optimiser state): a rerun skips finished
  cells and resumes the running one with the same numbers as an uninterrupted run. Cache files carry a
  fingerprint of their configuration; one that does not match is ignored and recomputed. ``--fast`` runs
  a few inits for a few hundred steps and says so in the figure title and the JSON. The initial
  :math:`A, B` of the published runs came from torch's generator and cannot be replayed; the
  initialisations here follow the same recipe (:func:`~linvae.numeric.optimizers.adamw_init`) from JAX
  key :data:`ADAMW_SEED`.

Per cell: reconstruction error :math:`\mathcal R` (Gaussian NLL), linear SAP, :math:`I_m`, :math:`I(X;Y)`,
:math:`I(X;V)` per initialisation and their means; where the theory determines them (β > 1), the closed
forms (collapsed point at λ = 0, water filling at λ > 0) and the largest deviation from them. Plot: per
(n, optimiser) boxplots over initialisations at λ = 0 and heatmaps of the means over (β, λ), the baseline
(β = 1, λ = 0) outlined.
"""

from __future__ import annotations

import hashlib
import io
import json
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import numpy as np

from linvae import numeric as nm
from linvae._atomic import atomic_write
from linvae.figures import Figure, style
from linvae.figures._linear import information_along
from linvae.numeric import optimizers as opt
from linvae.numeric._precision import float64

#: Steps between two checkpoints of a running AdamW cell (published protocol).
CHECKPOINT_EVERY = 2_000
#: JAX key of the AdamW initialisations (the published A, B came from torch and are not replayable).
ADAMW_SEED = 42
#: Version of the cache format and of what a cell computes; part of every fingerprint.
_CACHE_VERSION = "linear-grid-adamw/1"


def _alternating_cells(prob, n: int, betas, lams, init, tol, cap) -> dict:
    """Run the map per cell (one vmapped call per cell; the β = 1, λ > 0 cells, which all run to the cap,
    together), returning ``{(beta, lam): State}``."""
    out = {}
    slow = [lam for lam in lams if lam > 0] if 1.0 in betas else []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", nm.NotConvergedWarning)
        warnings.simplefilter("ignore", nm.DegenerateProblemWarning)
        if slow:
            st = nm.alternating_grid(prob, [1.0], slow, init, tol=tol, max_sweeps=cap, warn=False)
            for j, lam in enumerate(slow):
                out[(1.0, lam)] = nm.State(*(x[0, j] for x in st))
        for beta in betas:
            for lam in lams:
                if (beta, lam) in out:
                    continue
                st = nm.alternating_grid(prob, [beta], [lam], init, tol=tol, max_sweeps=cap, warn=False)
                out[(beta, lam)] = nm.State(*(x[0, 0] for x in st))
    return out


def _theory(prob, beta: float, lam: float, m: int) -> dict | None:
    if beta <= 1:
        return None
    st = nm.water_filling(prob, beta, lam, m)
    info = nm.information(prob, st)
    return {
        "recon": float(nm.losses(prob, st, beta, lam).recon),
        "mi_xy": float(info.mi_xy),
        "mi_xv": float(info.mi_xv),
    }


def _cell(n, optimizer, beta, lam, st, prob, theory) -> dict:
    rec = np.asarray(nm.losses(prob, st, beta, lam).recon)
    info = information_along(prob, st.B, st.Sigma_W)
    cell = {
        "n": n,
        "optimizer": optimizer,
        "beta": beta,
        "lam": lam,
        "recon": rec,
        "sap": np.asarray(info.sap),
        "i_m": np.asarray(info.i_m),
        "mi_xy": np.asarray(info.mi_xy),
        "mi_xv": np.asarray(info.mi_xv),
        "converged": np.asarray(st.converged),
        "steps": np.asarray(st.steps),
    }
    for key in ("recon", "sap", "i_m", "mi_xy", "mi_xv"):
        cell[f"{key.replace('i_m', 'im')}_mean"] = float(np.mean(cell[key]))
    if theory is not None:
        cell["recon_theory"] = theory["recon"]
        cell["mi_xy_theory"] = theory["mi_xy"]
        cell["mi_xv_theory"] = theory["mi_xv"]
        cell["recon_max_abs_dev"] = float(np.max(np.abs(rec - theory["recon"])))
        cell["mi_xy_max_abs_dev"] = float(np.max(np.abs(cell["mi_xy"] - theory["mi_xy"])))
    return cell


def _fingerprint(config: dict) -> str:
    text = json.dumps({"version": _CACHE_VERSION, **config}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _load(path: Path, fingerprint: str) -> dict[str, np.ndarray] | None:
    """The arrays of a cache file, or ``None`` when it is missing, unreadable or from another config."""
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files}
    except (OSError, ValueError, EOFError):
        return None
    return arrays if str(arrays.get("fingerprint", "")) == fingerprint else None


def _save(path: Path, arrays: dict[str, Any]) -> None:
    buf = io.BytesIO()
    np.savez(buf, **{k: np.asarray(v) for k, v in arrays.items()})
    atomic_write(path, lambda fh: fh.write(buf.getvalue()))


def _adamw_metrics(prob, beta, lam, proto, best_p) -> dict[str, np.ndarray]:
    best, _ = opt.adamw_states(proto, best_p, best_p)
    info = information_along(prob, best.B, best.Sigma_W)
    return {
        "recon": np.asarray(nm.losses(prob, best, beta, lam).recon),
        "sap": np.asarray(info.sap),
        "i_m": np.asarray(info.i_m),
        "mi_xy": np.asarray(info.mi_xy),
        "mi_xv": np.asarray(info.mi_xv),
    }


@float64
def adamw_cell(
    prob: nm.Problem,
    beta: float,
    lam: float,
    *,
    m: int,
    proto: opt.AdamWProtocol,
    num_inits: int,
    seed: int,
    cache: Path | None,
    chunk: int,
    log: Callable[[str], None] = print,
) -> dict[str, np.ndarray]:
    """One AdamW cell: ``num_inits`` runs of ``proto.steps`` steps, resumable through ``cache``.

    Runs in chunks of ``chunk`` steps (the same chunks whether or not it is interrupted, so a resumed
    cell gives the numbers of an uninterrupted one bit for bit). After each chunk the whole scan state
    (params, optimiser state, best params, best loss, step) is written to ``<stem>-partial.npz``; the
    finished cell's per-init values to ``<stem>.npz``, and the checkpoint is then removed. Files whose
    fingerprint (problem, β, λ, protocol, inits, seed, chunk) differs are ignored, never reused.

    Returns:
        per-init ``best_loss``, ``final_loss``, ``recon``, ``sap``, ``i_m``, ``mi_xy``, ``mi_xv`` and the
        scalar ``steps``; ``from_cache``: whether the cell was read back instead of computed.
    """
    n = prob.n
    fp = _fingerprint(
        {
            "Sigma_Y": hashlib.sha256(np.asarray(prob.Sigma_Y, np.float64).tobytes()).hexdigest(),
            "n": n,
            "m": m,
            "beta": float(beta),
            "lam": float(lam),
            "protocol": proto._asdict(),
            "num_inits": num_inits,
            "seed": seed,
            "chunk": chunk,
        }
    )
    stem = f"adamw-n{n}-beta{beta:g}-lam{lam:g}"
    done_path = cache / f"{stem}.npz" if cache is not None else None
    part_path = cache / f"{stem}-partial.npz" if cache is not None else None
    if done_path is not None and (done := _load(done_path, fp)) is not None:
        return {**{k: v for k, v in done.items() if k != "fingerprint"}, "from_cache": np.asarray(True)}
    init = opt.adamw_init(jax.random.key(seed), n, m, num_inits)
    state = opt.adamw_start(init, proto)
    leaves, treedef = jax.tree_util.tree_flatten(state[:4])
    if part_path is not None and (part := _load(part_path, fp)) is not None:
        restored = [np.asarray(part[f"leaf{i}"]) for i in range(len(leaves))]
        state = opt.AdamWState(*jax.tree_util.tree_unflatten(treedef, restored), int(part["step"]))
        log(f"resumed at step {state.step:,}/{proto.steps:,}")
    while state.step < proto.steps:
        todo = min(chunk, proto.steps - state.step)
        state, _ = opt.adamw_advance(prob, state, beta, lam, proto, todo, record_every=todo)
        if part_path is not None and state.step < proto.steps:
            leaves = jax.tree_util.tree_leaves(state[:4])
            _save(
                part_path,
                {"fingerprint": fp, "step": state.step, **{f"leaf{i}": x for i, x in enumerate(leaves)}},
            )
            log(f"checkpoint at step {state.step:,}/{proto.steps:,}")
    final_loss, best_p, best_loss = opt.adamw_finish(prob, state, beta, lam, proto)
    out = {
        "best_loss": np.asarray(best_loss),
        "final_loss": np.asarray(final_loss),
        "steps": np.asarray(state.step),
        **_adamw_metrics(prob, beta, lam, proto, best_p),
    }
    if done_path is not None and part_path is not None:
        _save(done_path, {"fingerprint": fp, **out})
        part_path.unlink(missing_ok=True)
    return {**out, "from_cache": np.asarray(False)}


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    return f"{h}h{rest // 60:02d}m" if h else f"{rest // 60}m{rest % 60:02d}s"


def _eta(rate: dict[int, float], left: list[tuple[int, int]]) -> float | None:
    """Seconds for the ``(n, init-steps)`` still to run, from the measured seconds per init-step of each n;
    a size not measured yet is scaled from a measured one by the O(n³) cost of a step."""
    if not rate:
        return None
    n0, r0 = next(iter(rate.items()))
    return sum(w * rate.get(n, r0 * (n / n0) ** 3) for n, w in left)


def _adamw_cells(config: dict, sizes, betas, lams, cache: Path | None, theory: dict, log) -> list[dict]:
    """Every AdamW cell, with a progress line per cell (elapsed time and an ETA from the cells run)."""
    todo = [(n, b, lam) for n in sizes for b in betas for lam in lams]
    cells, start = [], time.perf_counter()
    spent: dict[int, list[float]] = {}  # n -> [seconds, init-steps] of the cells computed in this run
    for i, (n, b, lam) in enumerate(todo, 1):
        prob = nm.authors_instance(n)
        proto = opt.ADAMW_PROTOCOL[n]._replace(steps=config["steps"][n])
        head = f"  linear-grid AdamW [{i}/{len(todo)}] n={n} beta={b:g} lam={lam:g}"
        t0 = time.perf_counter()
        res = adamw_cell(
            prob,
            b,
            lam,
            m=config["m"],
            proto=proto,
            num_inits=config["inits"],
            seed=config["seed"],
            cache=cache,
            chunk=config["checkpoint_every"],
            log=lambda msg, head=head, t0=t0: log(f"{head}: {msg} ({_duration(time.perf_counter() - t0)})"),
        )
        dt = time.perf_counter() - t0
        cached = bool(res.pop("from_cache"))
        if not cached:  # a cell read back from the cache says nothing about the speed
            acc = spent.setdefault(n, [0.0, 0.0])
            acc[0] += dt
            acc[1] += config["inits"] * config["steps"][n]
        rate = {k: v[0] / v[1] for k, v in spent.items()}
        eta = _eta(rate, [(k, config["inits"] * config["steps"][k]) for k, _, _ in todo[i:]])
        what = "read from the cache" if cached else "done"
        log(
            f"{head}: {what} in {_duration(dt)} (elapsed {_duration(time.perf_counter() - start)}"
            + (f", ETA {_duration(eta)})" if eta is not None and i < len(todo) else ")")
        )
        cell = {"n": n, "optimizer": "adamw", "beta": b, "lam": lam, **res}
        for key in ("recon", "sap", "i_m", "mi_xy", "mi_xv"):
            cell[f"{key.replace('i_m', 'im')}_mean"] = float(np.mean(res[key]))
        th = theory[(n, b, lam)]
        if th is not None:
            cell["recon_theory"] = th["recon"]
            cell["mi_xy_theory"] = th["mi_xy"]
            cell["mi_xv_theory"] = th["mi_xv"]
            cell["recon_max_abs_dev"] = float(np.max(np.abs(res["recon"] - th["recon"])))
            cell["mi_xy_max_abs_dev"] = float(np.max(np.abs(res["mi_xy"] - th["mi_xy"])))
        cells.append(cell)
    return cells


@float64
def compute(
    fast: bool, cache: Path | str | None = None, log: Callable[[str], None] = print
) -> dict[str, Any]:
    """Both halves of the grid. ``cache``: folder of the resumable AdamW cells (``None``: no caching)."""
    p = nm.AUTHORS
    betas = (1.0, 8.0) if fast else p.betas
    lams = (0.0, 4.0) if fast else p.lams
    n_inits = 4 if fast else p.num_inits
    cells, config = [], {"betas": betas, "lams": lams, "m": p.m, "sizes": p.sizes}
    config["alternating"] = {
        "inits": f"first {n_inits} of the 50 published",
        "tol": dict(p.tol),
        "max_sweeps": {n: (200 if fast else h // 2) for n, h in p.max_half_steps},
    }
    published = {n: opt.ADAMW_PROTOCOL[n] for n in p.sizes}
    config["adamw"] = {
        "published_protocol": not fast,
        "m": p.m,
        "inits": 2 if fast else p.num_inits,
        "steps": {n: (300 if fast else published[n].steps) for n in p.sizes},
        "published_steps": {n: published[n].steps for n in p.sizes},
        "clip_mean": {n: published[n].clip_mean for n in p.sizes},
        "clip_cholesky": {n: published[n].clip_cholesky for n in p.sizes},
        "lr": published[50].lr,
        "betas_adam": (published[50].b1, published[50].b2),
        "eps": published[50].eps,
        "weight_decay": published[50].weight_decay,
        "sigma_floor": published[50].floor,
        "seed": ADAMW_SEED,
        "init": "A, B ~ N(0, 1), Sigma's from make_spd_matrix, L = chol(Sigma) (adamw_init, JAX key seed)",
        "best_iterate": "lowest population loss among p_0 .. p_T",
        "checkpoint_every": 100 if fast else CHECKPOINT_EVERY,
    }
    theory = {}
    for n in p.sizes:
        prob = nm.authors_instance(n)
        B0, W0 = nm.authors_inits(n)
        init = (B0[:n_inits], W0[:n_inits])
        tol = dict(p.tol)[n]
        cap = config["alternating"]["max_sweeps"][n]
        for b in betas:
            for lam in lams:
                theory[(n, b, lam)] = _theory(prob, b, lam, p.m)
        for (b, lam), st in _alternating_cells(prob, n, betas, lams, init, tol, cap).items():
            cells.append(_cell(n, "alternating", b, lam, st, prob, theory[(n, b, lam)]))
    cache = Path(cache) if cache is not None else None
    cells += _adamw_cells(config["adamw"], p.sizes, betas, lams, cache, theory, log)
    alt = [c for c in cells if c["optimizer"] == "alternating" and "recon_theory" in c]
    ada = [c for c in cells if c["optimizer"] == "adamw" and "recon_theory" in c]
    return {
        "config": config,
        "cells": sorted(cells, key=lambda c: (c["n"], c["optimizer"], c["beta"], c["lam"])),
        "alternating_max_abs_dev_recon_vs_closed_form": max(
            (c["recon_max_abs_dev"] for c in alt), default=None
        ),
        "alternating_max_abs_dev_mi_xy_vs_closed_form": max(
            (c["mi_xy_max_abs_dev"] for c in alt), default=None
        ),
        "adamw_max_abs_dev_recon_vs_closed_form": max((c["recon_max_abs_dev"] for c in ada), default=None),
    }


_METRICS = (("recon", r"reconstruction $\mathcal{R}$ (nats)"), ("sap", "SAP"), ("i_m", r"$I_m$ (nats)"))


def _steps(ad: dict, key: str = "steps") -> str:
    return (
        " / ".join(f"{int(v):,}" for v in ad[key].values())
        + " (n = "
        + " / ".join(str(k) for k in ad[key])
        + ")"
    )


def plot(data: dict[str, Any]):
    import matplotlib.patches as mpatches

    cells = data["cells"]
    betas = list(data["config"]["betas"])
    lams = list(data["config"]["lams"])
    groups = sorted({(c["n"], c["optimizer"]) for c in cells}, key=lambda g: (g[1] != "alternating", g[0]))
    fig, axes = style.figure(len(groups), 6, width=2.55, height=2.35)
    for r, (n, optimizer) in enumerate(groups):
        sel = {(c["beta"], c["lam"]): c for c in cells if c["n"] == n and c["optimizer"] == optimizer}
        label = "alternating map" if optimizer == "alternating" else "AdamW"
        for j, (key, title) in enumerate(_METRICS):
            ax = axes[r, j]
            vals = [style.arr(sel[(b, 0.0)][key]) for b in betas if (b, 0.0) in sel]
            ax.boxplot(
                vals,
                positions=range(len(vals)),
                widths=0.55,
                showfliers=True,
                medianprops={"color": "k"},
                flierprops={"marker": ".", "ms": 3},
            )
            for i, b in enumerate(betas):
                c = sel.get((b, 0.0))
                th = c.get(f"{key}_theory") if c and key in ("recon",) else (0.0 if c and b > 1 else None)
                if th is not None:
                    ax.plot(
                        [i - 0.4, i + 0.4],
                        [th, th],
                        color=style.shades(3)[1],
                        lw=2,
                        ls="--",
                        label="closed form" if i == 1 else None,
                    )
            ax.set_xticks(range(len(betas)), [f"{b:g}" for b in betas])
            ax.set_xlabel("β (λ = 0)")
            ax.set_title(f"{title.split(' (')[0]}, n = {n}, {label}", fontsize=8)
            if j == 0:
                ax.set_ylabel(title)
            if r == 0 and j == 0:
                ax.legend(loc="best", fontsize=7)
            ax.grid(False)
        for j, (key, title) in enumerate(_METRICS):
            ax = axes[r, 3 + j]
            mean_key = {"recon": "recon_mean", "sap": "sap_mean", "i_m": "im_mean"}[key]
            M = np.array(
                [
                    [
                        sel[(b, lam)][mean_key]
                        if (b, lam) in sel and sel[(b, lam)][mean_key] is not None
                        else np.nan
                        for b in betas
                    ]
                    for lam in lams
                ],
                float,
            )
            # The colour scale follows the beta > 1 cells; the degenerate beta = 1 column (docs/theory.md §3.10:
            # its numbers reflect the stopping rule) saturates but keeps its printed value.
            ref = M[:, [b > 1 for b in betas]] if any(b > 1 for b in betas) else M
            ref = ref[np.isfinite(ref)]
            lo, hi = (float(ref.min()), float(ref.max())) if ref.size else (0.0, 1.0)
            im = ax.imshow(
                M, origin="lower", cmap=style.CMAP, aspect="auto", vmin=lo, vmax=max(hi, lo + 1e-12)
            )
            for li in range(len(lams)):
                for bi in range(len(betas)):
                    v = M[li, bi]
                    light = im.norm(v) > 0.55 if np.isfinite(v) else False
                    ax.text(
                        bi,
                        li,
                        f"{v:.3g}" if abs(v) < 1e3 else f"{v:.0f}",
                        ha="center",
                        va="center",
                        fontsize=5.5,
                        color="k" if light else "w",
                    )
            if 1.0 in betas and 0.0 in lams:
                ax.add_patch(
                    mpatches.Rectangle(
                        (betas.index(1.0) - 0.5, lams.index(0.0) - 0.5), 1, 1, fill=False, ec="r", lw=2
                    )
                )
            ax.set_xticks(range(len(betas)), [f"{b:g}" for b in betas])
            ax.set_yticks(range(len(lams)), [f"{x:g}" for x in lams])
            ax.set_xlabel("β")
            ax.set_ylabel("λ")
            ax.set_title(f"mean {title.split(' (')[0]}", fontsize=8)
            ax.grid(False)
    ad = data["config"]["adamw"]
    if "skipped" in ad:
        msg = f"AdamW half {ad['skipped']}"
    elif ad.get("published_protocol"):
        msg = f"AdamW: published protocol ({ad['inits']} inits, {_steps(ad)} steps)"
    else:
        msg = (
            f"AdamW NOT the published protocol: {ad['inits']} inits x {_steps(ad)} steps (--fast; "
            f"published: 50 inits x {_steps(ad, 'published_steps')} steps)"
        )
    dev = data.get("alternating_max_abs_dev_recon_vs_closed_form")
    fig.suptitle(
        "Published linear experiment (seed 42, m = 10): boxplots over initialisations at λ = 0; "
        "heatmaps of means (baseline β = 1, λ = 0 outlined; the degenerate β = 1 column, §3.10, saturates the colours)\n"
        + msg
        + (f"; alternating map vs closed form (β > 1): max |ΔR| = {dev:.1e} nats" if dev is not None else ""),
        fontsize=9,
    )
    return fig


FIGURE = Figure(
    slug="linear-grid",
    description="the published linear experiment: n in {50,100}, alternating map and AdamW (hours on a CPU; "
    "resumable), boxplots over the 50 inits at lambda=0 and heatmaps of R, SAP, I_m over (beta, lambda)",
    compute=compute,
    plot=plot,
    uses_cache=True,
)
