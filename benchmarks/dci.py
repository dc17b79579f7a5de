"""DCI's two paths at the published sizes, timed in separate processes, and how far apart they are.

    python benchmarks/dci.py [--fast-reps 3] [--reference-reps 1] [--reference-jobs 1] [--reuse-reference]

Scores three synthetic 10-latent codes of dSprites' factor grid (3, 6, 40, 32, 32 classes) at the
published evaluation sizes (10,000 train / 5,000 test points, 100 boosting stages): a disentangled
code (one latent per factor, five collapsed latents), an entangled one (the same five signals under
a random rotation) and a partially collapsed one (scale and orientation not encoded). Each
(code, path, repetition) runs in a fresh process, so neither path warms the other's caches. Result:
``benchmarks/results/dci.json`` (seconds, importance matrices, D / C / I of both paths and their
largest differences) and the agreement figure ``docs/deep/dci-agreement.png``.

``--reference-jobs 3`` runs the reference processes side by side (their wall times then include
each other's contention; their CPU times do not). ``--reuse-reference`` keeps the reference runs
of an earlier ``dci.json`` of the same configuration (the reference costs minutes per code) and
re-times only the fast path.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _results import RESULTS, write_result  # noqa: E402

FACTOR_SIZES = (3, 6, 40, 32, 32)  # dSprites: shape, scale, orientation, posX, posY
NUM_LATENTS = 10
NUM_TRAIN, NUM_TEST = 10_000, 5_000  # disentanglement_lib's DCI sizes (linvae.deep.config PAPER)
NOISE = 0.05  # per-latent noise of the active codes, in units of the factor's range
COLLAPSED = 1e-3  # standard deviation of a collapsed latent's mean
MODELS = ("disentangled", "entangled", "collapsed")
FIGURE = Path(__file__).resolve().parents[1] / "docs" / "deep" / "dci-agreement.png"
FIGURE_MAX_BYTES = 150_000


def codes_of(model: str, factors: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A 10-latent code of the factor rows: ``model`` in :data:`MODELS`."""
    sizes = np.asarray(FACTOR_SIZES)
    signal = (factors + 0.5) / sizes - 0.5  # each factor on [-0.5, 0.5]
    n, k = factors.shape
    active = signal + NOISE * rng.normal(size=(n, k))
    if model == "entangled":
        rotation, _ = np.linalg.qr(np.random.default_rng(7).normal(size=(k, k)))
        active = active @ rotation
    elif model == "collapsed":
        active[:, 1:3] = COLLAPSED * rng.normal(size=(n, 2))
    elif model != "disentangled":
        raise ValueError(f"unknown model {model!r}; known: {', '.join(MODELS)}")
    rest = COLLAPSED * rng.normal(size=(n, NUM_LATENTS - k))
    return np.concatenate([active, rest], axis=1)


def data(model: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Train and test codes and factors of ``model`` (fixed seeds: every run sees the same points)."""
    rng = np.random.default_rng(MODELS.index(model))
    factors = np.stack([rng.integers(0, s, NUM_TRAIN + NUM_TEST) for s in FACTOR_SIZES], axis=1)
    codes = codes_of(model, factors, rng)
    return codes[:NUM_TRAIN], factors[:NUM_TRAIN], codes[NUM_TRAIN:], factors[NUM_TRAIN:]


def worker(model: str, backend: str) -> dict:
    """One timed DCI in this process (data generation and imports are not timed)."""
    import jax

    from linvae.deep import metrics as M

    codes, factors, codes_test, factors_test = data(model)
    cfg = M.DCIConfig(num_train=NUM_TRAIN, num_test=NUM_TEST, backend=backend)
    load = os.getloadavg()
    t0, c0 = time.perf_counter(), time.process_time()
    r = M.dci(codes, factors, codes_test, factors_test, cfg, key=jax.random.key(0))
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {
        "wall_s": wall,
        "cpu_s": cpu,
        "load_before": load,
        "load_after": os.getloadavg(),
        "disentanglement": r.disentanglement,
        "completeness": r.completeness,
        "informativeness_train": r.informativeness_train,
        "informativeness_test": r.informativeness_test,
        "importance": r.importance.tolist(),
    }


def run_worker(model: str, backend: str) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--worker", model, backend], check=True, capture_output=True, text=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


SCORES = ("disentanglement", "completeness", "informativeness_train", "informativeness_test")


def compare(fast: dict, reference: dict) -> dict:
    """Largest differences of the fast run from the reference run."""
    a, b = np.asarray(fast["importance"]), np.asarray(reference["importance"])
    return {
        "importance_max_abs": float(np.max(np.abs(a - b))),
        **{f"{s}_abs": abs(fast[s] - reference[s]) for s in SCORES},
    }


def tolerances() -> dict:
    """The accepted differences (linvae.deep.metrics.dci), keyed as :func:`compare`'s result."""
    from linvae.deep.metrics.dci import FAST_IMPORTANCE_ATOL, FAST_SCORE_ATOL, FAST_TRAIN_ACCURACY_ATOL

    score = FAST_SCORE_ATOL
    return {
        "importance_max_abs": FAST_IMPORTANCE_ATOL,
        "disentanglement_abs": score,
        "completeness_abs": score,
        "informativeness_test_abs": score,
        "informativeness_train_abs": FAST_TRAIN_ACCURACY_ATOL,
    }


def figure(per_model: dict, path: Path) -> None:
    """Fast vs reference importance entries, and D / C / I of both paths per code."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(9.0, 3.6), dpi=90)
    colours = dict(zip(MODELS, ("C0", "C1", "C2"), strict=True))
    for model, rec in per_model.items():
        ref = np.asarray(rec["reference"]["importance"]).ravel()
        fast = np.asarray(rec["fast"]["importance"]).ravel()
        dev = rec["deviation"]["importance_max_abs"]
        ax0.scatter(ref, fast, s=12, alpha=0.7, color=colours[model], label=f"{model} (max |diff| {dev:.3f})")
    ax0.plot([0, 1], [0, 1], color="0.5", lw=0.8)
    ax0.set(xlabel="reference importance $R_{jk}$", ylabel="fast importance $R_{jk}$", xlim=(-0.02, 1.02))
    ax0.set_ylim(-0.02, 1.02)
    ax0.legend(fontsize=7, loc="upper left")
    ax0.set_title("importance matrix entries", fontsize=9)
    labels = ("D", "C", "I (test)")
    keys = ("disentanglement", "completeness", "informativeness_test")
    width = 0.13
    x = np.arange(len(labels))
    for i, model in enumerate(per_model):
        for j, backend in enumerate(("reference", "fast")):
            vals = [per_model[model][backend][k] for k in keys]
            offset = (2 * i + j - 2.5) * width
            ax1.bar(
                x + offset, vals, width, color=colours[model], alpha=1.0 if backend == "reference" else 0.5,
                hatch="" if backend == "reference" else "//", label=f"{model}, {backend}",
            )  # fmt: skip
    ax1.set_xticks(x, labels)
    ax1.set_ylim(0, 1.05)
    ax1.legend(fontsize=6, ncol=3, loc="upper center", bbox_to_anchor=(0.5, -0.1))
    ax1.set_title("scores (solid: reference, hatched: fast)", fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    if path.stat().st_size > FIGURE_MAX_BYTES:
        raise RuntimeError(f"{path} is {path.stat().st_size} bytes; the limit is {FIGURE_MAX_BYTES}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--fast-reps", type=int, default=3, help="fast-path repetitions per code (median)")
    p.add_argument("--reference-reps", type=int, default=1, help="reference repetitions per code")
    p.add_argument("--models", default=",".join(MODELS), help="comma-separated codes to score")
    p.add_argument("--reference-jobs", type=int, default=1, help="reference processes run at once")
    p.add_argument("--reuse-reference", action="store_true", help="take reference runs from dci.json")
    p.add_argument("--worker", nargs=2, metavar=("MODEL", "BACKEND"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        print(json.dumps(worker(*args.worker)))
        return
    config = {
        "factor_sizes": FACTOR_SIZES,
        "num_latents": NUM_LATENTS,
        "num_train": NUM_TRAIN,
        "num_test": NUM_TEST,
        "noise": NOISE,
        "collapsed_std": COLLAPSED,
        "fast_reps": args.fast_reps,
        "reference_reps": args.reference_reps,
        "reference_jobs": args.reference_jobs,
        "dci": "linvae.deep.metrics.dci, DCIConfig defaults (100 stages; fast: 256 bins), key(0)",
    }
    old = {}
    if args.reuse_reference:
        stored = json.loads((RESULTS / "dci.json").read_text())
        keep = ("factor_sizes", "num_latents", "num_train", "num_test", "noise", "collapsed_std")
        if any(
            stored["config"][k] != (list(config[k]) if isinstance(config[k], tuple) else config[k])
            for k in keep
        ):
            raise SystemExit("dci.json was written with another configuration; run without --reuse-reference")
        old = {m: r["reference_runs"] for m, r in stored["numbers"]["models"].items()}
    load_before = os.getloadavg()
    models = args.models.split(",")
    todo = [(m, i) for m in models if m not in old for i in range(args.reference_reps)]
    with concurrent.futures.ThreadPoolExecutor(max(1, args.reference_jobs)) as pool:
        done = list(pool.map(lambda job: run_worker(job[0], "reference"), todo))
    for (model, _), run in zip(todo, done, strict=True):
        old.setdefault(model, []).append(run)
        print(f"{model} reference: {run['wall_s']:.1f} s wall, {run['cpu_s']:.1f} s CPU", flush=True)
    per_model = {}
    for model in models:
        fast_runs = [run_worker(model, "fast") for _ in range(args.fast_reps)]
        print(
            f"{model} fast: {[round(r['wall_s'], 2) for r in fast_runs]} s, load {os.getloadavg()}",
            flush=True,
        )
        ref_runs = old[model]
        fast, ref = fast_runs[0], ref_runs[0]
        per_model[model] = {
            "fast_wall_s_median": statistics.median(r["wall_s"] for r in fast_runs),
            "fast_cpu_s_median": statistics.median(r["cpu_s"] for r in fast_runs),
            "reference_wall_s_median": statistics.median(r["wall_s"] for r in ref_runs),
            "reference_cpu_s_median": statistics.median(r["cpu_s"] for r in ref_runs),
            "fast": fast,
            "reference": ref,
            "deviation": compare(fast, ref),
            "fast_runs": [
                {k: r[k] for k in ("wall_s", "cpu_s", "load_before", "load_after")} for r in fast_runs
            ],
            "reference_runs": ref_runs,
        }
    worst = {
        k: max(r["deviation"][k] for r in per_model.values())
        for k in next(iter(per_model.values()))["deviation"]
    }
    tol = tolerances()
    numbers = {
        "tolerance": tol,
        "within_tolerance": all(worst[k] <= tol[k] for k in tol),
        "fast_wall_s_median_max": max(r["fast_wall_s_median"] for r in per_model.values()),
        "reference_wall_s_median_max": max(r["reference_wall_s_median"] for r in per_model.values()),
        "max_deviation": worst,
        "models": per_model,
    }
    path = write_result("dci", numbers, config, load_before)
    figure(per_model, FIGURE)
    print(f"wrote {path} and {FIGURE}; worst deviation {worst}")


if __name__ == "__main__":
    main()
