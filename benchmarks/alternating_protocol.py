"""Benchmark: the published alternating-map protocol, vmapped JAX vs a per-init NumPy loop.

The protocol (docs/theory.md §2.3): n in {50, 100}, m = 10, the 25 cells beta in {1, 4, 8, 16, 32} x
lam in {0, 2, 4, 6, 8}, the 50 published initialisations per cell, stop when a block's Frobenius change
is <= 1e-6 (n = 50) / 1e-5 (n = 100) or after 50,000 / 100,000 half-steps. Reported per cell: the
reconstruction error R (Gaussian NLL), linear SAP and I_m.

linvae runs each cell as one compiled call vmapped over the 50 initialisations. The baseline is the
straightforward per-init NumPy loop the published code uses (explicit inverses, one init at a time);
it is too slow to run in full, so it runs on ``--numpy-inits`` of the 50 initialisations per cell and its
time is extrapolated linearly to 50. Both see the same initialisations, so their per-run results are
compared directly. Like the published script, the baseline runs with one BLAS thread per process (its
joblib pool has cpu_count - 1 = 1 worker on a 2-core machine); linvae uses XLA's own thread pool.

    python benchmarks/alternating_protocol.py                  # full JAX protocol + NumPy subsample
    python benchmarks/alternating_protocol.py --sizes 50 --numpy-inits 1
"""

from __future__ import annotations

import os

# As the published script does: one BLAS thread per process (it parallelises over initialisations with
# joblib across cpu_count - 1 processes, i.e. one process on a 2-core machine). XLA ignores these.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402

import jax  # noqa: E402
import numpy as np  # noqa: E402
import scipy.optimize  # noqa: E402
from numpy.linalg import inv  # noqa: E402

from linvae import numeric as nm  # noqa: E402
from linvae.numeric.problem import AUTHORS  # noqa: E402


def numpy_fixed_point(B, W, beta, lam, Sigma_Y, Sigma_Y_inv, tol, max_half_steps):
    """The published fixed-point loop, op for op: alternate decoder / encoder half-steps with explicit
    inverses (the published code inverts the same matrix twice per block; so does this baseline)."""
    n, m = Sigma_Y.shape[0], B.shape[0]
    enc_prev = (B, W)
    dec_prev = None
    A = Z = None
    for i in range(max_half_steps):
        if i % 2 == 0:
            Wi = inv(W)
            A = inv(Sigma_Y_inv + B.T @ Wi @ B) @ B.T @ Wi
            Z = inv(Sigma_Y_inv + B.T @ Wi @ B)
            if dec_prev is not None and (
                np.linalg.norm(A - dec_prev[0], "fro") <= tol
                and np.linalg.norm(Z - dec_prev[1], "fro") <= tol
            ):
                break
            dec_prev = (A, Z)
        else:
            N = (inv(Z) + 2 * lam * np.eye(n)) / beta if lam != 0 else inv(Z) / beta
            B = inv(np.eye(m) + A.T @ N @ A) @ A.T @ N
            W = inv(np.eye(m) + A.T @ N @ A)
            if (
                np.linalg.norm(B - enc_prev[0], "fro") <= tol
                and np.linalg.norm(W - enc_prev[1], "fro") <= tol
            ):
                break
            enc_prev = (B, W)
    return B, W, A, Z


def numpy_scores(B, W, A, Z, prob_np):
    """R, SAP and I_m of one run, in NumPy."""
    Sy, G, Sv = prob_np
    n = Sy.shape[0]
    Sx = B @ Sy @ B.T + W
    E = Sy - A @ B @ Sy - Sy @ B.T @ A.T + A @ Sx @ A.T
    R = 0.5 * (np.trace(inv(Z) @ E) + np.linalg.slogdet(Z)[1] + n * np.log(2 * np.pi))
    rho2 = (B @ G @ Sv) ** 2 / np.outer(np.diag(Sx), np.diag(Sv))
    top = np.sort(rho2, axis=0)[::-1]
    sap = np.mean(top[0] - top[1])
    mi = -0.5 * np.log(1 - rho2)
    r, c = scipy.optimize.linear_sum_assignment(-mi)
    return R, sap, mi[r, c].sum()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", type=int, nargs="+", default=list(AUTHORS.sizes))
    p.add_argument("--numpy-inits", type=int, default=2, help="inits per cell run by the NumPy baseline")
    args = p.parse_args()
    warnings.simplefilter("ignore", nm.DegenerateProblemWarning)
    warnings.simplefilter("ignore", nm.NotConvergedWarning)
    half = dict(AUTHORS.max_half_steps)
    tols = dict(AUTHORS.tol)
    total_jax = total_np_extrap = 0.0
    total_runs = 0
    worst = np.zeros(3)
    for n in args.sizes:
        prob = nm.authors_instance(n)
        B0, W0 = nm.authors_inits(n)
        tol, cap = tols[n], half[n]
        prob_np = tuple(np.asarray(x) for x in (prob.Sigma_Y, prob.Gamma, prob.Sigma_V))
        Sy_inv = inv(prob_np[0])
        # Compile the map, the losses and the information measures once per size (not timed: a fixed cost,
        # reported separately).
        t = time.perf_counter()
        warm = nm.alternating_grid(prob, [4.0], [2.0], (B0, W0), tol=tol, max_sweeps=2, warn=False)
        jax.block_until_ready((warm, nm.losses(prob, warm, 4.0, 2.0), nm.information(prob, warm)))
        compile_s = time.perf_counter() - t
        print(f"n = {n}: compile {compile_s:.1f} s; tol {tol:g}, cap {cap} half-steps")
        print(
            f"{'beta':>5} {'lam':>4} {'jax s':>7} {'sweeps':>7} {'np s/run':>9} {'max|dR|':>9} "
            f"{'max|dSAP|':>9} {'max|dIm|':>9}"
        )
        n_jax = n_np = 0.0
        for beta in AUTHORS.betas:
            for lam in AUTHORS.lams:
                t = time.perf_counter()
                st = nm.alternating_grid(
                    prob, [beta], [lam], (B0, W0), tol=tol, max_sweeps=cap // 2, warn=False
                )
                L = nm.losses(prob, st, beta, lam)
                info = nm.information(prob, st)
                jax.block_until_ready((L, info))
                dt = time.perf_counter() - t
                n_jax += dt
                k = args.numpy_inits
                t = time.perf_counter()
                ref = [
                    numpy_scores(
                        *numpy_fixed_point(
                            np.asarray(B0[i]), np.asarray(W0[i]), beta, lam, prob_np[0], Sy_inv, tol, cap
                        ),
                        prob_np,
                    )
                    for i in range(k)
                ]
                dt_np = (time.perf_counter() - t) / max(k, 1)
                n_np += dt_np * AUTHORS.num_inits
                ours = np.stack(
                    [
                        np.asarray(L.recon[0, 0, :k]),
                        np.asarray(info.sap[0, 0, :k]),
                        np.asarray(info.i_m[0, 0, :k]),
                    ],
                    axis=1,
                )
                diff = np.max(np.abs(ours - np.array(ref)), axis=0) if k else np.zeros(3)
                worst = np.maximum(worst, diff)
                sweeps = int(np.max(np.asarray(st.steps)))
                print(
                    f"{beta:5g} {lam:4g} {dt:7.2f} {sweeps:7d} {dt_np:9.3f} {diff[0]:9.1e} {diff[1]:9.1e} "
                    f"{diff[2]:9.1e}",
                    flush=True,
                )
        runs = len(AUTHORS.betas) * len(AUTHORS.lams) * AUTHORS.num_inits
        print(
            f"n = {n}: linvae {n_jax:.1f} s for {runs} runs ({runs / n_jax:.1f} runs/s); "
            f"NumPy loop (extrapolated from {args.numpy_inits}/cell) {n_np:.0f} s; "
            f"speed-up {n_np / n_jax:.1f}x\n"
        )
        total_jax += n_jax
        total_np_extrap += n_np
        total_runs += runs
    print(
        f"TOTAL: linvae {total_jax:.1f} s, {total_runs} runs, {total_runs / total_jax:.1f} runs/s; NumPy loop "
        f"{total_np_extrap:.0f} s (extrapolated); speed-up {total_np_extrap / total_jax:.1f}x; "
        f"max |diff| R {worst[0]:.1e}, SAP {worst[1]:.1e}, I_m {worst[2]:.1e}"
    )


if __name__ == "__main__":
    main()
