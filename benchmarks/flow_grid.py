"""Benchmark: the gradient flow to steady state over a 64 x 64 (beta, lambda) grid, one vmapped solve,
against a per-cell ``scipy.integrate.solve_ivp`` loop on the same vector field.

Instance: the published n = 50 problem (``authors_instance(50)``), m = 10, the first published
fixed-point initialisation for the encoder and the exact decoder block for the decoder. Metric: the
block (Newton/Fisher) metric of :mod:`linvae.numeric.flow` -- the same landscape as the literal
Euclidean flow, without the stiffness that Sigma_Y's three decades of spectrum put into it.

Steady state: a lane stops when its block residual is within STEADY (1e-6 + 1e-6 ||theta||); both sides
stop each cell there (the loop with a terminal ``solve_ivp`` event on the same test). The grid is hard:
near the thresholds beta = 1 + 2 lam mu_i the slowest rate falls to ~3e-4 while the fastest is 2, so a
cell needs t up to ~5e4. The vmapped side uses ``FlowConfig(solver="rkc")`` (Runge-Kutta-Chebyshev: the
flow's spectrum is real, and RKC's stability interval grows like s^2 with the stage count s), each lane
stopping on its own and the running lanes compacted into groups; the loop uses RK45 and LSODA (the
automatic stiff/non-stiff switch, given the exact Jacobian from ``jax.jacfwd``) and the faster of the
two is the baseline. Both run at the same local error tolerance; ``--tols`` lists the tolerances to time
(default: the SOLVER tier 1e-8, and 1e-6, where only LSODA runs: RK45 dithers at its stability limit with
a residual of the order of the tolerance, which is STEADY's threshold).

Exact symmetry reduction. Sigma_Y has 45 equal bulk eigenvalues sigma^2. With U_eff = [signal eigenvectors,
an orthonormal basis of the bulk part of the rows of B0] (n x 15), the start is block diagonal in
span(U_eff) + its complement (B, A vanish on the complement and Sigma_Z = sigma^2 I there), and the flow,
which is equivariant under rotations fixing Sigma_Y, keeps it so. So the flow is integrated on the
15-dimensional problem from_factors(Sigma_V, U_eff^T Gamma, sigma^2); losses differ by the constant
(n - 15)[(log 2 pi sigma^2 + 1)/2 + lam sigma^2] and every information measure is unchanged. The script
checks this on a few cells against the full n = 50 flow.

Run:  python benchmarks/flow_grid.py  [--loop-cells 8] [--tols 1e-8,1e-6]
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
import warnings
from pathlib import Path

import jax
import numpy as np
import scipy.integrate
from jax.flatten_util import ravel_pytree

import linvae.numeric as nm
from linvae._tolerance import FLOW, SOLVER, STEADY, Tol
from linvae.numeric import flow as fl

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import write_result  # noqa: E402

jax.config.update("jax_enable_x64", True)

M = 10
BETAS = np.geomspace(1.25, 32.0, 64)
LAMS = np.linspace(0.0, 8.0, 64)
T1 = 1e6  # a cap only: every cell stops at its steady state (the slowest need t ~ 5e4)


def config(tol: float, progress: bool = True) -> fl.FlowConfig:
    return fl.FlowConfig(metric="block", solver="rkc", tol=Tol(tol, tol, "benchmark"), max_lanes=256, progress=progress)


def reduce_problem(prob: nm.Problem, B0: np.ndarray) -> tuple[nm.Problem, np.ndarray]:
    """The exact 15-dimensional reduction described in the module docstring."""
    mu, U = np.asarray(prob.mu), np.asarray(prob.U)
    signal = U[:, mu > float(prob.sigma2) * (1 + 1e-9)]
    bulk_rows = B0.T - signal @ (signal.T @ B0.T)
    Q, _ = np.linalg.qr(bulk_rows)
    U_eff = np.concatenate([signal, Q], axis=1)
    return nm.from_factors(np.asarray(prob.Sigma_V), U_eff.T @ np.asarray(prob.Gamma), float(prob.sigma2)), U_eff


def loss_offset(prob: nm.Problem, n_eff: int, lam: float) -> float:
    s2 = float(prob.sigma2)
    return (prob.n - n_eff) * (0.5 * (math.log(2 * math.pi * s2) + 1.0) + lam * s2)


def start(prob: nm.Problem, B0, W0) -> nm.State:
    A0, Z0 = nm.decoder_block(prob.Sigma_Y, B0, W0)
    z = np.zeros(1)
    return nm.State(B0[None], W0[None], A0[None], Z0[None], z, z, z)


def grid_run(red, init, prob, n_eff, tol: float) -> tuple[float, float, fl.FlowSolution]:
    """Compile, then time the whole grid; print the status and the agreement with the closed forms."""
    cfg = config(tol)
    t0 = time.perf_counter()
    with warnings.catch_warnings():  # the warm-up stops at t = 1, not steady: expected
        warnings.simplefilter("ignore", nm.NotConvergedWarning)
        for width in (256, 64, 16):  # compile the group widths the run uses (256 lanes; 64 and 16 for the tail)
            fl.integrate(red, BETAS[: width // 4], LAMS[:4], init, t1=1.0, cfg=config(tol, progress=False))
    t_compile = time.perf_counter() - t0
    t0 = time.perf_counter()
    sol = fl.integrate(red, BETAS, LAMS, init, t1=T1, cfg=cfg)
    jax.block_until_ready(sol.final.B)
    t_grid = time.perf_counter() - t0
    status = sol.status[:, :, 0]
    kinds = {k: int((status == k).sum()) for k in np.unique(status)}
    steps = np.asarray(sol.final.steps)
    print(f"[tol {tol:g}] vmapped grid to steady state: {t_grid:.1f} s warm (+{t_compile:.1f} s compiling); "
          f"status {kinds}; RKC steps per cell mean {steps.mean():.0f}, max {steps.max()}")
    agree, worst = 0, 0.0
    for i, b in enumerate(BETAS):
        for j, lam in enumerate(LAMS):
            st = nm.State(*(np.asarray(x[i, j, 0]) for x in sol.final[:4]), 0, 0, 0)
            got = float(nm.losses(red, st, b, lam).total) + loss_offset(prob, n_eff, lam)
            exp = float(nm.losses(prob, nm.water_filling(prob, b, lam, M), b, lam).total)
            agree += abs(got - exp) <= FLOW.atol + FLOW.rtol * abs(exp)
            worst = max(worst, abs(got - exp) / abs(exp))
    print(f"[tol {tol:g}] steady loss = closed-form global minimum (water filling / collapse) within FLOW in {agree} "
          f"of {BETAS.size * LAMS.size} cells (worst relative difference {worst:.1e})")
    return t_grid, t_compile, sol


def loop_run(red, init, picks, tol: float, method: str) -> float:
    """Per-cell ``solve_ivp`` to the same steady-state test (terminal event), on the jitted vector field."""
    cfg = fl.FlowConfig(metric="block")
    f = fl.make_vector_field(red.Sigma_Y, cfg)
    y0 = fl.to_coordinates(tuple(np.asarray(x[0]) for x in init[:4]), cfg)
    flat0, unravel = ravel_pytree(y0)
    rhs = jax.jit(lambda t, x, b, lam: ravel_pytree(f(t, unravel(x), (b, lam)))[0])
    jac = jax.jit(jax.jacfwd(rhs, argnums=1))  # LSODA's stiff phase gets the exact Jacobian, as a user would pass
    b0, l0 = BETAS[0], LAMS[0]  # numpy scalars, as in the loop: compile outside the timing
    rhs(0.0, flat0, b0, l0).block_until_ready()
    jac(0.0, flat0, b0, l0).block_until_ready()
    # One untimed short solve: the first solve_ivp call of a method pays ~1.5 s of one-off set-up.
    warm = {"jac": lambda t, x: np.asarray(jac(t, x, b0, l0))} if method == "LSODA" else {}
    scipy.integrate.solve_ivp(lambda t, x: np.asarray(rhs(t, x, b0, l0)), (0.0, 1.0), np.asarray(flat0), method=method,
                              **warm)
    t0 = time.perf_counter()
    for p in picks:
        b, lam = BETAS[p // LAMS.size], LAMS[p % LAMS.size]
        fun = lambda t, x, b=b, lam=lam: np.asarray(rhs(t, x, b, lam))  # noqa: E731
        extra = {"jac": lambda t, x, b=b, lam=lam: np.asarray(jac(t, x, b, lam))} if method == "LSODA" else {}
        t_cell = time.perf_counter()

        def steady(t, x, fun=fun):
            return np.linalg.norm(fun(t, x)) - (STEADY.atol + STEADY.rtol * np.linalg.norm(x))

        steady.terminal = True
        out = scipy.integrate.solve_ivp(fun, (0.0, T1), np.asarray(flat0), method=method, rtol=tol, atol=tol,
                                        events=steady, **extra)
        assert out.status == 1, f"cell beta={b:.3g}, lam={lam:.3g}: {method} did not reach the steady state"
        print(f"  {method} cell beta = {b:.3g}, lam = {lam:.3g}: t = {out.t[-1]:.3g}, {out.nfev} evaluations, "
              f"{time.perf_counter() - t_cell:.1f} s", flush=True)
    dt = time.perf_counter() - t0
    return dt * BETAS.size * LAMS.size / len(picks)


def main() -> None:
    load_before = os.getloadavg()
    ap = argparse.ArgumentParser()
    ap.add_argument("--loop-cells", type=int, default=8)
    ap.add_argument("--tols", default=f"{SOLVER.rtol:g},1e-6")
    args = ap.parse_args()
    tols = [float(x) for x in args.tols.split(",")]

    prob = nm.authors_instance(50)
    B0s, W0s = nm.authors_inits(50)
    B0, W0 = np.asarray(B0s[0]), np.asarray(W0s[0])
    red, U_eff = reduce_problem(prob, B0)
    n_eff = red.n
    init = start(red, B0 @ U_eff, W0)
    print(f"authors_instance(50), m = {M}: reduced n = 50 -> {n_eff}; grid {BETAS.size} x {LAMS.size} = "
          f"{BETAS.size * LAMS.size} cells, each to its steady state (cap t = {T1:g})")
    rng = np.random.default_rng(0)
    picks = rng.choice(BETAS.size * LAMS.size, size=args.loop_cells, replace=False)

    results = []
    for tol in tols:
        t_grid, t_compile, sol = grid_run(red, init, prob, n_eff, tol)
        # RK45 only at tight tolerances: at rtol = atol = 1e-6 it dithers at its stability limit with a
        # residual ~ the tolerance, i.e. at STEADY's threshold, and a cell may never be declared steady.
        methods = ("RK45", "LSODA") if tol <= 1e-7 else ("LSODA",)
        loops = {m: loop_run(red, init, picks, tol, m) for m in methods}
        for m, t in loops.items():
            print(f"[tol {tol:g}] per-cell solve_ivp {m} loop: {t:.0f} s for the grid (extrapolated from "
                  f"{args.loop_cells} random cells)")
        best = min(loops, key=loops.get)
        results.append((tol, t_grid, t_compile, best, loops[best]))
        print(f"[tol {tol:g}] speed-up over the faster loop ({best}): {loops[best] / t_grid:.1f}x warm, "
              f"{loops[best] / (t_grid + t_compile):.1f}x with compilation", flush=True)

    # --- the reduction is exact: a few cells against the full n = 50 flow -----------------------------
    full_init = start(prob, B0, W0)
    cells = [(0, 0), (20, 40), (63, 63)]
    worst = 0.0
    cfg_full = config(tols[-1], progress=False)
    for i, j in cells:
        full = fl.integrate(prob, BETAS[i], LAMS[j], full_init, t1=T1, cfg=cfg_full)
        st_f = nm.State(*(np.asarray(x[0, 0, 0]) for x in full.final[:4]), 0, 0, 0)
        st_r = nm.State(*(np.asarray(x[i, j, 0]) for x in sol.final[:4]), 0, 0, 0)
        lf = float(nm.losses(prob, st_f, BETAS[i], LAMS[j]).total)
        lr = float(nm.losses(red, st_r, BETAS[i], LAMS[j]).total) + loss_offset(prob, n_eff, LAMS[j])
        worst = max(worst, abs(lf - lr) / abs(lf))
    print(f"reduction check on {len(cells)} cells vs the full n = 50 flow: max relative loss difference {worst:.2e}")
    print("summary (tol, grid s warm, compile s, loop method, loop s):")
    for r in results:
        print(f"  {r[0]:g}: {r[1]:.1f} s, +{r[2]:.1f} s compile; {r[3]} loop {r[4]:.0f} s -> {r[4] / r[1]:.1f}x")
    path = write_result(
        "flow_grid",
        {
            str(tol): {
                "grid_warm_s": t_grid,
                "grid_compile_s": t_compile,
                "loop_method": best,
                "loop_s_extrapolated": t_loop,
                "speedup_warm": t_loop / t_grid,
            }
            for tol, t_grid, t_compile, best, t_loop in results
        }
        | {"reduction_max_rel_loss_diff": worst},
        {
            "instance": "authors_instance(50)",
            "m": M,
            "grid": [int(BETAS.size), int(LAMS.size)],
            "reduced_n": n_eff,
            "loop_cells": args.loop_cells,
            "tols": tols,
            "t1_cap": T1,
        },
        load_before,
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
