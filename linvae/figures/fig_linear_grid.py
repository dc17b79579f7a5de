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
#: Version of the cache format and of what a block computes; part of every fingerprint.
_CACHE_VERSION = "linear-grid-adamw/2"
#: The CPU default of the AdamW half: the published optimiser, step count and initialisation recipe on
#: every (β, λ) cell of n = 50, with the first of the 50 published initialisations per cell, all
#: 25 runs in one vmapped scan (a step of the n = 50 problem is latency-bound on a CPU: 25 lanes cost
#: about 70 % of 50). n = 100 (a step costs ~4.5x more) runs only with ``--full``.
BUDGET = {"sizes": (50,), "inits": 1, "steps": ((50, 30_000),)}
#: A run has converged when its best loss fell by at most this relative amount over the last
#: :data:`CONVERGENCE_WINDOW` of its steps.
CONVERGED_RTOL = 1e-6
CONVERGENCE_WINDOW = 0.1


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


#: Per-run arrays of a cell, as cached.
_CELL_ARRAYS = ("recon", "sap", "i_m", "mi_xy", "mi_xv", "converged", "steps")


def _alternating_half(
    betas, lams, n_inits: int, config: dict, theory: dict, cache: Path | None
) -> list[dict]:
    """Every alternating-map cell of the grid, read back from ``<cache>/alternating.npz`` when it holds this
    configuration (a background process may have computed it, :func:`background`), else computed (and
    saved there)."""
    p = nm.AUTHORS
    fp = _fingerprint(
        {
            "half": "alternating",
            "Sigma_Y": {
                n: hashlib.sha256(
                    np.asarray(nm.authors_instance(n).Sigma_Y, np.float64).tobytes()
                ).hexdigest()
                for n in p.sizes
            },
            "betas": list(betas),
            "lams": list(lams),
            "n_inits": n_inits,
            "config": config,
        }
    )
    path = cache / "alternating.npz" if cache is not None else None
    if path is not None and (done := _load(path, fp)) is not None:
        cells = []
        for i, (n, b, lam) in enumerate(np.asarray(done["cells"]).tolist()):
            n = int(n)
            cell = {"n": n, "optimizer": "alternating", "beta": b, "lam": lam}
            cell.update({key: done[f"c{i}_{key}"] for key in _CELL_ARRAYS})
            cells.append(_summarise(cell, np.ones(cell["recon"].shape, bool), theory[(n, b, lam)]))
        return cells
    cells = []
    for n in p.sizes:
        prob = nm.authors_instance(n)
        B0, W0 = nm.authors_inits(n)
        init = (B0[:n_inits], W0[:n_inits])
        tol, cap = dict(p.tol)[n], config["max_sweeps"][n]
        for (b, lam), st in _alternating_cells(prob, n, betas, lams, init, tol, cap).items():
            cells.append(_cell(n, "alternating", b, lam, st, prob, theory[(n, b, lam)]))
    if path is not None:
        arrays = {f"c{i}_{key}": c[key] for i, c in enumerate(cells) for key in _CELL_ARRAYS}
        _save(path, {"fingerprint": fp, "cells": [(c["n"], c["beta"], c["lam"]) for c in cells], **arrays})
    return cells


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
    return _summarise(cell, np.ones(rec.shape, bool), theory)


def _summarise(cell: dict, ok: np.ndarray, theory: dict | None) -> dict:
    """Add the means over the runs ``ok`` of ``cell`` and, where the theory determines them, the closed
    forms and the largest deviation of those runs from them (``None`` when no run is ``ok``)."""
    for key in ("recon", "sap", "i_m", "mi_xy", "mi_xv"):
        cell[f"{key.replace('i_m', 'im')}_mean"] = float(np.mean(cell[key][ok])) if ok.any() else None
    if theory is not None:
        for key in ("recon", "mi_xy", "mi_xv"):
            cell[f"{key}_theory"] = theory[key]
        for key in ("recon", "mi_xy"):
            dev = np.abs(cell[key][ok] - theory[key])
            cell[f"{key}_max_abs_dev"] = float(np.max(dev)) if ok.any() else None
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
        # R is a function of the point alone (its β and λ only weight the other terms).
        "recon": np.asarray(nm.losses(prob, best, 1.0, 0.0).recon),
        "sap": np.asarray(info.sap),
        "i_m": np.asarray(info.i_m),
        "mi_xy": np.asarray(info.mi_xy),
        "mi_xv": np.asarray(info.mi_xv),
    }


def converged_lanes(best_trace: np.ndarray, trace_steps: np.ndarray, steps: int) -> np.ndarray:
    r"""Which runs have stopped improving: the best loss fell by at most :data:`CONVERGED_RTOL`
    :math:`\cdot\max(1, |L|)` over the last :data:`CONVERGENCE_WINDOW` of the steps (from the last
    recorded step at or before :math:`(1 - w)T` to :math:`T`). A judgement on the run alone, never on the
    closed form it is compared with afterwards. ``best_trace``: (lanes, records) best loss after each
    recorded step ``trace_steps``."""
    best_trace = np.asarray(best_trace, np.float64)
    trace_steps = np.asarray(trace_steps)
    before = trace_steps <= (1.0 - CONVERGENCE_WINDOW) * steps
    if not before.any() or trace_steps[-1] != steps:
        return np.zeros(best_trace.shape[0], bool)
    then, now = best_trace[:, np.flatnonzero(before)[-1]], best_trace[:, -1]
    scale = np.maximum(1.0, np.abs(now))
    return np.isfinite(now) & (then - now <= CONVERGED_RTOL * scale)


@float64
def adamw_block(
    prob: nm.Problem,
    beta,
    lam,
    *,
    m: int,
    proto: opt.AdamWProtocol,
    inits: np.ndarray,
    num_drawn: int,
    seed: int,
    cache: Path | None,
    stem: str,
    chunk: int,
    log: Callable[[str], None] = print,
) -> dict[str, np.ndarray]:
    """AdamW runs of one block of lanes, all in one vmapped scan, resumable through ``cache``.

    Lane ``j`` runs the cell ``(beta[j], lam[j])`` from initialisation ``inits[j]`` of the ``num_drawn``
    drawn with key ``seed`` (:func:`~linvae.numeric.optimizers.adamw_init`), so a run with fewer inits
    per cell uses the first of the published ones. A block may hold one cell (the published protocol on a
    CPU: one checkpoint file per cell) or a whole grid (every cell's lanes in one scan: on a CPU a step of
    the n = 50 problem is latency-bound, so 50 lanes cost about what one costs).

    Runs in chunks of ``chunk`` steps (the same chunks whether or not it is interrupted, so a resumed
    block gives the numbers of an uninterrupted one bit for bit). After each chunk the whole scan state
    (params, optimiser state, best params, best loss, step, best-loss trace) is written to
    ``<stem>-partial.npz``; the finished block's per-lane values to ``<stem>.npz``, and the checkpoint is
    then removed. Files whose fingerprint (problem, lanes, protocol, seed, chunk) differs are ignored.

    Returns:
        per-lane ``best_loss``, ``final_loss``, ``recon``, ``sap``, ``i_m``, ``mi_xy``, ``mi_xv``,
        ``converged`` (:func:`converged_lanes`), ``best_trace`` (lanes, chunks) with ``trace_steps``, the
        scalar ``steps``; ``from_cache``: whether the block was read back instead of computed.
    """
    n = prob.n
    inits = np.asarray(inits, np.int64)
    k = inits.shape[0]
    beta = np.broadcast_to(np.asarray(beta, np.float64), (k,))
    lam = np.broadcast_to(np.asarray(lam, np.float64), (k,))
    fp = _fingerprint(
        {
            "Sigma_Y": hashlib.sha256(np.asarray(prob.Sigma_Y, np.float64).tobytes()).hexdigest(),
            "n": n,
            "m": m,
            "beta": beta.tolist(),
            "lam": lam.tolist(),
            "protocol": proto._asdict(),
            "inits": inits.tolist(),
            "num_drawn": num_drawn,
            "seed": seed,
            "chunk": chunk,
        }
    )
    done_path = cache / f"{stem}.npz" if cache is not None else None
    part_path = cache / f"{stem}-partial.npz" if cache is not None else None
    if done_path is not None and (done := _load(done_path, fp)) is not None:
        return {**{k: v for k, v in done.items() if k != "fingerprint"}, "from_cache": np.asarray(True)}
    drawn = opt.adamw_init(jax.random.key(seed), n, m, num_drawn)
    state = opt.adamw_start(jax.tree_util.tree_map(lambda x: x[inits], drawn), proto)
    leaves, treedef = jax.tree_util.tree_flatten(state[:4])
    trace, trace_steps = [], []
    if part_path is not None and (part := _load(part_path, fp)) is not None:
        restored = [np.asarray(part[f"leaf{i}"]) for i in range(len(leaves))]
        state = opt.AdamWState(*jax.tree_util.tree_unflatten(treedef, restored), int(part["step"]))
        trace, trace_steps = list(np.asarray(part["best_trace"]).T), list(np.asarray(part["trace_steps"]))
        log(f"resumed at step {state.step:,}/{proto.steps:,}")
    while state.step < proto.steps:
        todo = min(chunk, proto.steps - state.step)
        state, _ = opt.adamw_advance(prob, state, beta, lam, proto, todo, record_every=todo)
        if state.step == proto.steps:
            break  # the last record is taken after adamw_finish
        trace.append(np.asarray(state.best_loss))
        trace_steps.append(state.step)
        if part_path is not None:
            leaves = jax.tree_util.tree_leaves(state[:4])
            _save(
                part_path,
                {
                    "fingerprint": fp,
                    "step": state.step,
                    "best_trace": np.stack(trace, -1),
                    "trace_steps": np.asarray(trace_steps),
                    **{f"leaf{i}": x for i, x in enumerate(leaves)},
                },
            )
            log(f"checkpoint at step {state.step:,}/{proto.steps:,}")
    final_loss, best_p, best_loss = opt.adamw_finish(prob, state, beta, lam, proto)
    trace.append(np.asarray(best_loss))
    trace_steps.append(state.step)
    best_trace, trace_steps = np.stack(trace, -1), np.asarray(trace_steps)
    out = {
        "best_loss": np.asarray(best_loss),
        "final_loss": np.asarray(final_loss),
        "steps": np.asarray(state.step),
        "best_trace": best_trace,
        "trace_steps": trace_steps,
        "converged": converged_lanes(best_trace, trace_steps, proto.steps),
        **_adamw_metrics(prob, beta, lam, proto, best_p),
    }
    if done_path is not None and part_path is not None:
        _save(done_path, {"fingerprint": fp, **out})
        part_path.unlink(missing_ok=True)
    return {**out, "from_cache": np.asarray(False)}


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
    """One AdamW cell: ``num_inits`` runs of ``proto.steps`` steps, a block of its own (:func:`adamw_block`)."""
    return adamw_block(
        prob,
        beta,
        lam,
        m=m,
        proto=proto,
        inits=np.arange(num_inits),
        num_drawn=num_inits,
        seed=seed,
        cache=cache,
        stem=f"adamw-n{prob.n}-beta{beta:g}-lam{lam:g}",
        chunk=chunk,
        log=log,
    )


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    return f"{h}h{rest // 60:02d}m" if h else f"{rest // 60}m{rest % 60:02d}s"


def _eta(rate: dict[int, float], left: list[tuple[int, int]]) -> float | None:
    """Seconds for the ``(n, lane-steps)`` still to run, from the measured seconds per lane-step of each
    n; a size not measured yet is scaled from a measured one by the O(n³) cost of a step."""
    if not rate:
        return None
    n0, r0 = next(iter(rate.items()))
    return sum(w * rate.get(n, r0 * (n / n0) ** 3) for n, w in left)


def _adamw_cells(config: dict, betas, lams, cache: Path | None, theory: dict, log) -> list[dict]:
    """Every AdamW cell of ``config`` (one block per cell or per grid), with a progress line per block
    (elapsed time and an ETA from the blocks run)."""
    cells_of = {n: [(b, lam) for b in betas for lam in lams] for n in config["sizes"]}
    k = config["inits"]
    blocks = (
        [(n, [c]) for n in config["sizes"] for c in cells_of[n]]
        if config["block"] == "cell"
        else [(n, cells_of[n]) for n in config["sizes"]]
    )
    cells, start = [], time.perf_counter()
    spent: dict[int, list[float]] = {}  # n -> [seconds, lane-steps] of the blocks computed in this run
    for i, (n, block) in enumerate(blocks, 1):
        prob = nm.authors_instance(n)
        proto = opt.ADAMW_PROTOCOL[n]._replace(steps=config["steps"][n])
        where = (
            f"beta={block[0][0]:g} lam={block[0][1]:g}"
            if len(block) == 1
            else f"{len(block)} cells x {k} inits"
        )
        head = f"  linear-grid AdamW [{i}/{len(blocks)}] n={n} {where}"
        stem = (
            f"adamw-n{n}-beta{block[0][0]:g}-lam{block[0][1]:g}"
            if len(block) == 1
            else f"adamw-n{n}-grid{len(block)}x{k}"
        )
        t0 = time.perf_counter()
        res = adamw_block(
            prob,
            np.repeat([b for b, _ in block], k),
            np.repeat([lam for _, lam in block], k),
            m=config["m"],
            proto=proto,
            inits=np.tile(np.arange(k), len(block)),
            num_drawn=config["inits_drawn"],
            seed=config["seed"],
            cache=cache,
            stem=stem,
            chunk=config["checkpoint_every"],
            log=lambda msg, head=head, t0=t0: log(f"{head}: {msg} ({_duration(time.perf_counter() - t0)})"),
        )
        dt = time.perf_counter() - t0
        cached = bool(res.pop("from_cache"))
        if not cached:  # a block read back from the cache says nothing about the speed
            acc = spent.setdefault(n, [0.0, 0.0])
            acc[0] += dt
            acc[1] += len(block) * k * config["steps"][n]
        rate = {key: v[0] / v[1] for key, v in spent.items()}
        eta = _eta(rate, [(nn, len(bb) * k * config["steps"][nn]) for nn, bb in blocks[i:]])
        what = "read from the cache" if cached else "done"
        log(
            f"{head}: {what} in {_duration(dt)} (elapsed {_duration(time.perf_counter() - start)}"
            + (f", ETA {_duration(eta)})" if eta is not None and i < len(blocks) else ")")
        )
        for j, (b, lam) in enumerate(block):
            lane = slice(j * k, (j + 1) * k)
            per = {key: v[lane] for key, v in res.items() if np.ndim(v) >= 1 and key != "trace_steps"}
            cell = {"n": n, "optimizer": "adamw", "beta": b, "lam": lam, **per}
            cell["steps"] = res["steps"]
            cell["trace_steps"] = res["trace_steps"]
            ok = np.asarray(per["converged"], bool)
            cell["n_converged"] = int(ok.sum())
            # Means and deviations over the converged runs only: an unconverged run is not a result.
            cells.append(_summarise(cell, ok, theory[(n, b, lam)]))
    return cells


def adamw_protocol(fast: bool, full: bool | None) -> str:
    """Which AdamW protocol a run uses: ``"fast"`` (smoke), ``"published"`` (``full``, or by default on an
    accelerator), else ``"budget"`` (the CPU default, :data:`BUDGET`)."""
    if fast:
        return "fast"
    if full is None:
        full = jax.default_backend() != "cpu"
    return "published" if full else "budget"


def adamw_config(protocol: str, betas, lams) -> dict[str, Any]:
    """The AdamW half's configuration for ``protocol`` (recorded in the JSON and drawn in the title)."""
    p = nm.AUTHORS
    published = {n: opt.ADAMW_PROTOCOL[n] for n in p.sizes}
    if protocol == "published":
        sizes, inits, steps = p.sizes, p.num_inits, {n: published[n].steps for n in p.sizes}
        # One block per cell on a CPU (resumable cell by cell); the whole grid per n in one scan elsewhere.
        block = "cell" if jax.default_backend() == "cpu" else "grid"
    elif protocol == "budget":
        sizes, inits, steps, block = BUDGET["sizes"], BUDGET["inits"], dict(BUDGET["steps"]), "grid"
    else:
        sizes, inits, steps, block = p.sizes, 2, {n: 300 for n in p.sizes}, "grid"
    return {
        "protocol": protocol,
        "published_protocol": protocol == "published",
        "sizes": tuple(sizes),
        "sizes_not_run": tuple(n for n in p.sizes if n not in sizes),
        "m": p.m,
        "inits": inits,
        "inits_drawn": p.num_inits,
        "steps": steps,
        "published_steps": {n: published[n].steps for n in p.sizes},
        "block": block,
        "clip_mean": {n: published[n].clip_mean for n in p.sizes},
        "clip_cholesky": {n: published[n].clip_cholesky for n in p.sizes},
        "lr": published[50].lr,
        "betas_adam": (published[50].b1, published[50].b2),
        "eps": published[50].eps,
        "weight_decay": published[50].weight_decay,
        "sigma_floor": published[50].floor,
        "seed": ADAMW_SEED,
        "init": "A, B ~ N(0, 1), Sigma's from make_spd_matrix, L = chol(Sigma) (adamw_init, JAX key seed); "
        f"cell runs use the first `inits` of {p.num_inits} draws",
        "best_iterate": "lowest population loss among p_0 .. p_T",
        "converged": f"best loss fell by <= {CONVERGED_RTOL:g} max(1, |L|) over the last "
        f"{CONVERGENCE_WINDOW:.0%} of the steps; means and boxplots use converged runs only",
        "checkpoint_every": 100 if protocol == "fast" else CHECKPOINT_EVERY,
    }


def _grid(fast: bool) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """The (β, λ) grid of a run."""
    p = nm.AUTHORS
    return ((1.0, 8.0) if fast else p.betas), ((0.0, 4.0) if fast else p.lams)


def _closed_forms(betas, lams) -> dict:
    """The closed-form values of every (n, β, λ) cell where the theory determines them (else ``None``)."""
    p = nm.AUTHORS
    theory = {}
    for n in p.sizes:
        prob = nm.authors_instance(n)
        for b in betas:
            for lam in lams:
                theory[(n, b, lam)] = _theory(prob, b, lam, p.m)
    return theory


@float64
def background(
    fast: bool,
    cache: Path | str,
    full: bool | None = None,
    log: Callable[[str], None] = print,
) -> None:
    """Both halves into ``cache``, AdamW first: the entry point runs this in a process of its own while
    the other figures are drawn. The runs are those :func:`compute` would make; it then reads them back
    from the cache (or finishes what is missing, an AdamW block from its last checkpoint, if this process
    died)."""
    betas, lams = _grid(fast)
    cache, theory = Path(cache), _closed_forms(betas, lams)
    _adamw_cells(adamw_config(adamw_protocol(fast, full), betas, lams), betas, lams, cache, theory, log)
    config, n_inits = _alternating_config(fast)
    start = time.perf_counter()
    _alternating_half(betas, lams, n_inits, config, theory, cache)
    log(f"  linear-grid alternating map: done in {_duration(time.perf_counter() - start)}")


def _alternating_config(fast: bool) -> tuple[dict, int]:
    """The alternating half's configuration (recorded in the JSON) and its number of inits."""
    p = nm.AUTHORS
    n_inits = 4 if fast else p.num_inits
    config = {
        "inits": f"first {n_inits} of the 50 published",
        "tol": dict(p.tol),
        "max_sweeps": {n: (200 if fast else h // 2) for n, h in p.max_half_steps},
    }
    return config, n_inits


@float64
def compute(
    fast: bool,
    cache: Path | str | None = None,
    full: bool | None = None,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Both halves of the grid. ``cache``: folder of the resumable AdamW blocks and of the finished
    alternating half (``None``: no caching).

    ``full``: run the published AdamW protocol (hours on a CPU); ``None`` chooses it on an accelerator
    and :data:`BUDGET` on a CPU.
    """
    p = nm.AUTHORS
    betas, lams = _grid(fast)
    cells, config = [], {"betas": betas, "lams": lams, "m": p.m, "sizes": p.sizes}
    config["alternating"], n_inits = _alternating_config(fast)
    config["adamw"] = adamw_config(adamw_protocol(fast, full), betas, lams)
    theory = _closed_forms(betas, lams)
    cache = Path(cache) if cache is not None else None
    cells += _alternating_half(betas, lams, n_inits, config["alternating"], theory, cache)
    cells += _adamw_cells(config["adamw"], betas, lams, cache, theory, log)
    alt = [c for c in cells if c["optimizer"] == "alternating" and "recon_theory" in c]
    ada = [c for c in cells if c["optimizer"] == "adamw" and c.get("recon_max_abs_dev") is not None]
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
        "adamw_converged_runs": sum(c["n_converged"] for c in cells if c["optimizer"] == "adamw"),
        "adamw_runs": sum(len(c["recon"]) for c in cells if c["optimizer"] == "adamw"),
    }


def _converged(cell: dict, key: str) -> np.ndarray:
    """The values of ``key`` over the runs of ``cell`` that converged (all runs of the map)."""
    vals = style.arr(cell[key])
    if "converged" not in cell or cell["optimizer"] != "adamw":
        return vals
    return vals[np.asarray(cell["converged"], bool)]


def adamw_caption(data: dict[str, Any]) -> str:
    """One line saying exactly which AdamW protocol ran and how many of its runs converged."""
    ad = data["config"]["adamw"]
    n_ok, n_all = data.get("adamw_converged_runs"), data.get("adamw_runs")
    conv = f"; {n_ok}/{n_all} runs converged (unconverged runs are left out, 'n.c.')" if n_all else ""
    sizes = ad.get("sizes", data["config"]["sizes"])
    steps = {n: ad["steps"][n] if n in ad["steps"] else ad["steps"][str(n)] for n in sizes}
    ran = f"{ad['inits']} init{'s' if ad['inits'] != 1 else ''}/cell x " + " / ".join(
        f"{int(v):,}" for v in steps.values()
    )
    ran += " steps (n = " + " / ".join(str(n) for n in sizes) + ")"
    not_run = (
        f"; n = {', '.join(str(n) for n in ad['sizes_not_run'])} not run (--full)"
        if ad.get("sizes_not_run")
        else ""
    )
    protocol = ad.get("protocol", "published" if ad.get("published_protocol") else "fast")
    if protocol == "published":
        head = "AdamW: the published protocol"
    elif protocol == "budget":
        head = "AdamW: CPU budget protocol (published optimiser and steps, fewer inits; --full for the published one)"
    else:
        head = "AdamW NOT converged by design (--fast smoke run)"
    return f"{head}: {ran}{not_run}{conv}"


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
            vals = [_converged(sel[(b, 0.0)], key) for b in betas if (b, 0.0) in sel]
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
                    light = im.norm(v) > 0.55 if np.isfinite(v) else True  # "n.c." on white: black
                    ax.text(
                        bi,
                        li,
                        ("n.c." if not np.isfinite(v) else f"{v:.3g}" if abs(v) < 1e3 else f"{v:.0f}"),
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
    msg = adamw_caption(data)
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
    description="the published linear experiment: alternating map (n in {50,100}, published protocol) and AdamW "
    "(CPU budget by default, --full: the published protocol, hours, resumable); boxplots at lambda=0, "
    "heatmaps of R, SAP, I_m over (beta, lambda)",
    compute=compute,
    plot=plot,
    uses_cache=True,
    has_full=True,
    background=background,
)
