"""Benchmark: a small deep sweep on 1 vs 4 host devices and with 1 vs 3 workers on one runs folder.

The sweep is the one the sweep tests use (``tests/deep/test_sweep.py``'s ``SMALL``: a linear model on
procedural dSprites, 2 beta-VAE + 4 lambda-beta models, seconds of training), so the numbers show the
machinery's overhead and scaling, not a model's speed. Every configuration runs in fresh processes
(startup and compilation included, as a user pays them), ``--runs`` alternating repetitions, medians
reported; each configuration's models are checked bit-identical to the 1-device single-process run.

On a 2-core CPU neither more host devices nor more workers can be faster: the point is that they cost
little and change no result. On a node with several GPUs or a cluster the same commands spread the models.

Run:  python benchmarks/sweep_scale.py [--runs 3]  ->  benchmarks/results/sweep_scale.json
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
from _results import write_result  # noqa: E402

from tests.deep.test_sweep import _assert_same, _models  # noqa: E402

_SWEEP = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, {root!r})
    import jax
    from tests.deep.test_sweep import SMALL
    from linvae.deep.sweep import train_sweep
    train_sweep(SMALL, {runs!r}, devices=jax.devices()[:{devices}], progress=False, poll_s=0.1)
    """
)


def _run(runs: Path, devices: int, workers: int) -> float:
    env = dict(os.environ)
    if devices > 1:
        env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices}"
    code = _SWEEP.format(root=str(ROOT), runs=str(runs), devices=devices)
    t = time.perf_counter()
    procs = [subprocess.Popen([sys.executable, "-c", code], env=env, cwd=ROOT) for _ in range(workers)]
    for p in procs:
        if p.wait() != 0:
            raise RuntimeError(f"a sweep process failed ({devices} device(s), {workers} worker(s))")
    return time.perf_counter() - t


def main() -> None:
    load_before = os.getloadavg()
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3, help="alternating repetitions")
    args = ap.parse_args()
    configs = {"1 device, 1 worker": (1, 1), "4 devices, 1 worker": (4, 1), "1 device, 3 workers": (1, 3)}
    walls: dict[str, list[float]] = {k: [] for k in configs}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.runs):
            for name, (devices, workers) in configs.items():
                runs = Path(tmp) / f"r{r}-{devices}d{workers}w"
                walls[name].append(_run(runs, devices, workers))
                print(f"[{r + 1}/{args.runs}] {name}: {walls[name][-1]:.1f} s", flush=True)
                _assert_same(_models(runs), _models(Path(tmp) / f"r{r}-1d1w"))
    numbers = {
        "median_wall_s": {k: float(np.median(v)) for k, v in walls.items()},
        "wall_s": walls,
        "models": 2 + 4,  # SMALL: 2 beta-VAE + 4 lambda-beta
        "bit_identical_to_1_device_1_worker": True,
    }
    for k, v in numbers["median_wall_s"].items():
        print(f"{k}: median {v:.1f} s")
    write_result(
        "sweep_scale", numbers, {"sweep": "tests/deep/test_sweep.py SMALL", "runs": args.runs}, load_before
    )


if __name__ == "__main__":
    main()
