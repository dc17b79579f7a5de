"""Benchmark: the gradient flow to steady state over a 64 x 64 (beta, lambda) grid, one vmapped solve,
against a per-cell ``scipy.integrate.solve_ivp`` loop on the same vector field.

Instance: the published n = 50 problem (``authors_instance(50)``), m = 10, the first published
fixed-point initialisation for the encoder and the exact decoder block for the decoder. Metric: the
block (Newton/Fisher) metric of :mod:`linvae.numeric.flow` -- the same landscape as the literal
Euclidean flow, without the stiffness that Sigma_Y's three decades of spectrum put into it.

Exact symmetry reduction. Sigma_Y has 45 equal bulk eigenvalues sigma^2. With U_eff = [signal eigenvectors,
an orthonormal basis of the bulk part of the rows of B0] (n x 15), the start is block diagonal in
span(U_eff) + its complement (B, A vanish on the complement and Sigma_Z = sigma^2 I there), and the flow,
which is equivariant under rotations fixing Sigma_Y, keeps it so. So the flow is integrated on the
15-dimensional problem from_factors(Sigma_V, U_eff^T Gamma, sigma^2); losses differ by the constant
(n - 15)[(log 2 pi sigma^2 + 1)/2 + lam sigma^2] and every information measure is unchanged. The script
checks this on a few cells against the full n = 50 flow.

Run:  python benchmarks/flow_grid.py  [--loop-cells 16]
"""

from __future__ import annotations

import argparse
import math
import time

import jax
import numpy as np
import scipy.integrate
from jax.flatten_util import ravel_pytree

import linvae.numeric as nm
from linvae._tolerance import FLOW, SOLVER
from linvae.numeric import flow as fl

jax.config.update("jax_enable_x64", True)

M = 10
BETAS = np.geomspace(1.25, 32.0, 64)
LAMS = np.linspace(0.0, 8.0, 64)
T1 = 400.0
CFG = fl.FlowConfig(metric="block", chunks=2, progress=True)


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


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--loop-cells", type=int, default=16)
    args = ap.parse_args()

    prob = nm.authors_instance(50)
    B0s, W0s = nm.authors_inits(50)
    B0, W0 = np.asarray(B0s[0]), np.asarray(W0s[0])
    red, U_eff = reduce_problem(prob, B0)
    n_eff = red.n
    init = start(red, B0 @ U_eff, W0)
    print(f"authors_instance(50), m = {M}: reduced n = 50 -> {n_eff}; grid {BETAS.size} x {LAMS.size} = "
          f"{BETAS.size * LAMS.size} cells, t1 = {T1}")

    # --- compile once on a single group of lanes, then one vmapped solve over the whole grid -----------
    t0 = time.perf_counter()
    fl.integrate(red, BETAS[:4], LAMS, init, t1=1.0, cfg=CFG)
    t_compile = time.perf_counter() - t0
    t0 = time.perf_counter()
    sol = fl.integrate(red, BETAS, LAMS, init, t1=T1, cfg=CFG)
    jax.block_until_ready(sol.final.B)
    t_grid = time.perf_counter() - t0
    t_grid_cold = t_grid + t_compile
    status = sol.status[:, :, 0]
    kinds = {k: int((status == k).sum()) for k in np.unique(status)}
    print(f"vmapped grid: {t_grid:.1f} s warm (+{t_compile:.1f} s compiling on a 256-lane warm-up); status {kinds}")

    # --- the steady states against the closed forms ---------------------------------------------------
    agree = 0
    for i, b in enumerate(BETAS):
        for j, lam in enumerate(LAMS):
            st = nm.State(*(np.asarray(x[i, j, 0]) for x in sol.final[:4]), 0, 0, 0)
            got = float(nm.losses(red, st, b, lam).total) + loss_offset(prob, n_eff, lam)
            exp = float(nm.losses(prob, nm.water_filling(prob, b, lam, M), b, lam).total)
            agree += abs(got - exp) <= FLOW.atol + FLOW.rtol * abs(exp)
    print(f"steady loss = closed-form global minimum (water filling / collapse) within FLOW in {agree} of "
          f"{BETAS.size * LAMS.size} cells")

    # --- the reduction is exact: a few cells against the full n = 50 flow -----------------------------
    full_init = start(prob, B0, W0)
    cells = [(0, 0), (20, 40), (63, 63)]
    worst = 0.0
    for i, j in cells:
        full = fl.integrate(prob, BETAS[i], LAMS[j], full_init, t1=T1, cfg=fl.FlowConfig(metric="block"))
        st_f = nm.State(*(np.asarray(x[0, 0, 0]) for x in full.final[:4]), 0, 0, 0)
        st_r = nm.State(*(np.asarray(x[i, j, 0]) for x in sol.final[:4]), 0, 0, 0)
        lf = float(nm.losses(prob, st_f, BETAS[i], LAMS[j]).total)
        lr = float(nm.losses(red, st_r, BETAS[i], LAMS[j]).total) + loss_offset(prob, n_eff, LAMS[j])
        worst = max(worst, abs(lf - lr) / abs(lf))
    print(f"reduction check on {len(cells)} cells vs the full n = 50 flow: max relative loss difference {worst:.2e}")

    # --- the per-cell solve_ivp loop on the same (reduced) vector field, subsampled ---------------------
    f = fl.make_vector_field(red.Sigma_Y, fl.FlowConfig(metric="block"))
    y0 = fl.to_coordinates(tuple(np.asarray(x[0]) for x in init[:4]), fl.FlowConfig(metric="block"))
    flat0, unravel = ravel_pytree(y0)
    rhs = jax.jit(lambda t, x, b, lam: ravel_pytree(f(t, unravel(x), (b, lam)))[0])
    rhs(0.0, flat0, 2.0, 1.0).block_until_ready()  # compile outside the timing
    rng = np.random.default_rng(0)
    picks = rng.choice(BETAS.size * LAMS.size, size=args.loop_cells, replace=False)
    t0 = time.perf_counter()
    for p in picks:
        b, lam = BETAS[p // LAMS.size], LAMS[p % LAMS.size]
        out = scipy.integrate.solve_ivp(
            lambda t, x, b=b, lam=lam: np.asarray(rhs(t, x, b, lam)), (0.0, T1), np.asarray(flat0), method="RK45",
            rtol=SOLVER.rtol, atol=SOLVER.atol,
        )
        assert out.success
    t_loop_sub = time.perf_counter() - t0
    t_loop = t_loop_sub * BETAS.size * LAMS.size / args.loop_cells
    print(f"per-cell solve_ivp loop: {t_loop_sub:.1f} s for {args.loop_cells} cells -> {t_loop:.0f} s for the "
          f"grid (extrapolated)")
    print(f"speed-up (warm vmapped grid vs loop): {t_loop / t_grid:.1f}x; with compilation: "
          f"{t_loop / t_grid_cold:.1f}x")


if __name__ == "__main__":
    main()
