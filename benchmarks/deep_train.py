"""Deep training on the CPU: linvae's step against a plain PyTorch process of the same model.

    python benchmarks/deep_train.py                  # 3 alternating repetitions (~3 min on 2 cores)
    python benchmarks/deep_train.py --reps 5 --steps 100
    python benchmarks/deep_train.py --models 1 2     # also images/s of vmapped groups (the sweep path)
    python benchmarks/deep_train.py --projection     # also FLOPs per step and the GPU-grid projection

Each measurement runs in a fresh process of its own (``--worker``), the two kinds alternating
(PyTorch, linvae, PyTorch, linvae, ...) with the same CPU affinity and thread count, and the medians
over the repetitions are compared; the JSON records every repetition, the machine, the versions and
the load average (``benchmarks/results/deep_train.json``). Both train the published conv β-VAE
(4 convs k4 s2 c→32→32→64→64, FC 256, 10 latents, the mirrored transposed convs; 64 x 64 x 1 images,
batch 64, Adam 1e-4, Bernoulli NLL + 4 KL, float32) on procedural dSprites:

* linvae: ``linvae.deep.train.make_chunk`` as ``train_phase`` runs it (chunks of ``--steps`` steps, each
  step drawing its shuffled batch and rendering it on the device); the first chunk (which compiles)
  and one warm chunk are excluded, then ``--chunks`` chunks are timed. The data path alone (drawing
  and rendering one batch) is timed apart;
* PyTorch: ``nn.Conv2d`` / ``nn.ConvTranspose2d``, ``torch.optim.Adam``, ``BCEWithLogitsLoss``, batches
  gathered from 4,096 images pre-rendered by linvae's renderer (written to a temporary file by the
  parent; the worker never imports JAX); 5 warm-up steps, then the same number of steps timed.

With ``--projection``: FLOPs per model-step (XLA cost analysis) with the decoder's transposed convs in
each form of ``linvae.deep.model.ConvTranspose4x2`` and the projected wall time of the full published
grid (3 data sets x 5 beta x 5 lambda x 10 seeds; 150k beta-VAE steps per (beta, seed), 50k continuation
steps per (beta, lambda, seed)) on one GPU at a stated sustained throughput -- a FLOP count, not a GPU
measurement. Both counts are of the program a GPU runs (the per-example layers under ``vmap``), also
when counted on the CPU.

torch is a benchmark baseline only (``pip install torch``), never a linvae dependency.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BETA = 4.0
BATCH = 64
POOL = 4096


# ---------------------------------------------------------------------------------------------------
# Workers (each in its own process)
# ---------------------------------------------------------------------------------------------------


def _pin(threads: int) -> list[int]:
    """Restrict this process to the first ``threads`` CPUs it may run on; return them."""
    cpus = sorted(os.sched_getaffinity(0))[:threads]
    os.sched_setaffinity(0, cpus)
    return cpus


def worker_linvae(steps: int, chunks: int, models: int) -> dict:
    import dataclasses

    import jax
    import jax.numpy as jnp

    from linvae.deep.config import PRESETS
    from linvae.deep.data import load, to_device
    from linvae.deep.data.sampler import minibatch
    from linvae.deep.record import Member
    from linvae.deep.train import init_state, make_chunk, model_mesh, place_data, place_models, use_scan

    cfg = dataclasses.replace(PRESETS["paper"], source="procedural", chunk_steps=steps, betas=(BETA,))
    dataset = load("dsprites", source="procedural")
    mesh = model_mesh()
    data = place_data(to_device(dataset), mesh)
    total = (chunks + 2) * steps
    state, static = init_state(cfg, dataset, [Member(BETA, 0.0, s) for s in range(models)], steps=total)
    chunk = make_chunk(cfg, static, total, steps, total - steps, mesh=mesh)
    state = place_models(state, mesh)
    walls = []
    for _ in range(chunks + 2):
        t = time.perf_counter()
        state, means = chunk(state, data)
        jax.block_until_ready((state, means))
        walls.append(time.perf_counter() - t)
    assert bool(jnp.all(state.alive)), "a model met a non-finite loss"
    timed = walls[2:]

    # The data path alone: the shuffled indices and the rendering of one batch, per step.
    draw = jax.jit(lambda d, s: minibatch(d, 0, s, cfg.batch_size))
    jax.block_until_ready(draw(data, jnp.int32(0)))
    t = time.perf_counter()
    for i in range(200):
        x = draw(data, jnp.int32(i))
    jax.block_until_ready(x)
    data_ms = (time.perf_counter() - t) / 200 * 1e3
    return {
        "models": models,
        "steps_per_s": steps * len(timed) / sum(timed),
        "images_per_s": steps * len(timed) * models * cfg.batch_size / sum(timed),
        "chunk_s": walls,
        "first_chunk_s": walls[0],
        "mode": "lax.scan per chunk" if use_scan(cfg, static=static) else "loop of jitted steps",
        "data_path_ms_per_batch": data_ms,
        "device": str(jax.devices()[0]),
    }


def worker_torch(steps: int, chunks: int, pool_path: str) -> dict:
    import numpy as np
    import torch
    from torch import nn

    torch.manual_seed(0)

    class VAE(nn.Module):
        def __init__(self, c: int = 1, k: int = 10):
            super().__init__()
            self.enc = nn.Sequential(
                nn.Conv2d(c, 32, 4, 2, 1), nn.ReLU(), nn.Conv2d(32, 32, 4, 2, 1), nn.ReLU(),
                nn.Conv2d(32, 64, 4, 2, 1), nn.ReLU(), nn.Conv2d(64, 64, 4, 2, 1), nn.ReLU(),
                nn.Flatten(), nn.Linear(1024, 256), nn.ReLU(),
            )  # fmt: skip
            self.mu, self.log_var = nn.Linear(256, k), nn.Linear(256, k)
            self.dec_fc = nn.Sequential(nn.Linear(k, 256), nn.ReLU(), nn.Linear(256, 1024), nn.ReLU())
            self.dec = nn.Sequential(
                nn.ConvTranspose2d(64, 64, 4, 2, 1), nn.ReLU(), nn.ConvTranspose2d(64, 32, 4, 2, 1), nn.ReLU(),
                nn.ConvTranspose2d(32, 32, 4, 2, 1), nn.ReLU(), nn.ConvTranspose2d(32, c, 4, 2, 1),
            )  # fmt: skip

        def forward(self, x):
            h = self.enc(x)
            mu, log_var = self.mu(h), self.log_var(h)
            z = mu + torch.exp(0.5 * log_var) * torch.randn_like(mu)
            logits = self.dec(self.dec_fc(z).view(-1, 64, 4, 4))
            return logits, mu, log_var

    pool = torch.from_numpy(np.load(pool_path))  # (POOL, 1, 64, 64) uint8
    model = VAE()
    opt = torch.optim.Adam(model.parameters(), lr=1e-4, betas=(0.9, 0.999), eps=1e-8)
    bce = nn.BCEWithLogitsLoss(reduction="sum")

    def step():
        idx = torch.randint(0, pool.shape[0], (BATCH,))
        x = pool[idx].float() / 255.0
        logits, mu, log_var = model(x)
        nll = bce(logits, x) / BATCH
        kl = 0.5 * (mu.pow(2) + log_var.exp() - log_var - 1).sum(1).mean()
        loss = nll + BETA * kl
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss

    for _ in range(5):
        step()
    walls = []
    for _ in range(chunks):
        t = time.perf_counter()
        for _ in range(steps):
            loss = step()
        walls.append(time.perf_counter() - t)
    assert bool(torch.isfinite(loss)), "non-finite loss"
    t = time.perf_counter()
    for _ in range(200):
        batch = pool[torch.randint(0, pool.shape[0], (BATCH,))].float() / 255.0
    assert batch.shape == (BATCH, 1, 64, 64)
    data_ms = (time.perf_counter() - t) / 200 * 1e3
    return {
        "steps_per_s": steps * chunks / sum(walls),
        "chunk_s": walls,
        "threads": torch.get_num_threads(),
        "version": torch.__version__,
        "parameters": sum(p.numel() for p in model.parameters()),
        "data_path_ms_per_batch": data_ms,
    }


def _worker_main(args: argparse.Namespace) -> None:
    cpus = _pin(args.threads)
    if args.worker == "torch":
        import torch

        torch.set_num_threads(args.threads)
        out = worker_torch(args.steps, args.chunks, args.pool)
    else:
        out = worker_linvae(args.steps, args.chunks, args.models[0])
    out["cpus"] = cpus
    print("RESULT " + json.dumps(out), flush=True)


# ---------------------------------------------------------------------------------------------------
# FLOP counts and the GPU projection (--projection)
# ---------------------------------------------------------------------------------------------------


def flops_per_step(form: str) -> float:
    """XLA's FLOP count of one model's training step (forward, backward, Adam) as a GPU runs it: the
    per-example layers under ``vmap`` (not the batched CPU kernels), transposed convs in ``form``.

    Counted from the program compiled for this machine's backend; the cost analysis counts only the
    taps that meet the input (not padding, not the zeros of a dilated input).
    """
    from unittest import mock

    import jax

    from linvae.deep.config import PRESETS
    from linvae.deep.data import load, to_device
    from linvae.deep.model import ConvVAE, with_conv_transpose_form
    from linvae.deep.record import Member
    from linvae.deep.train import init_state, make_step

    cfg = PRESETS["smoke"]
    ds = load("dsprites", source="procedural")
    state, static = init_state(cfg, ds, [Member(4.0, 0.0, 0)], steps=10)
    # The form is a static field: switch it in the parameters, the Adam moments and the static half.
    state, static = with_conv_transpose_form(state, form), with_conv_transpose_form(static, form)
    step_one = jax.vmap(make_step(cfg, static, 10), in_axes=(0,) * 8 + (None,) * 3)

    def step(s, d):
        args = (s.params, s.opt_state, s.ctrl_state, s.beta, s.lam, s.target, s.seed, s.alive)
        return step_one(*args, s.step, 0, d)

    with mock.patch.object(ConvVAE, "batched_kernels", lambda self: False):
        lowered = jax.jit(step).lower(state, to_device(ds))
    cost = lowered.compile().cost_analysis()
    cost = cost[0] if isinstance(cost, list) else cost
    return float(cost.get("flops", float("nan")))


def projection(gpu_tflops: float) -> dict:
    model_steps = 3 * (5 * 10 * 150_000 + 5 * 5 * 10 * 50_000)
    out: dict = {"grid_model_steps": model_steps}
    for form in ("subpixel", "direct"):
        flops = flops_per_step(form)
        out[f"flops_per_model_step_{form}"] = flops
        out[f"projected_grid_gpu_hours_{form}"] = model_steps * flops / (gpu_tflops * 1e12) / 3600
    out["flops_ratio_subpixel_to_direct"] = (
        out["flops_per_model_step_subpixel"] / out["flops_per_model_step_direct"]
    )
    out["projected_grid_gpu_hours"] = out["projected_grid_gpu_hours_direct"]  # what form="auto" runs on a GPU
    out["projection_assumptions"] = (
        f"one GPU sustaining {gpu_tflops:g} TFLOP/s on vmapped groups for either form, data resident on"
        " the device, the lambda=0 row continued like the others, evaluation excluded; FLOPs are XLA's"
        " cost analysis of one model's step (forward, backward, Adam) as a GPU runs it (per-example layers"
        " under vmap) with the transposed convs in the named form; a FLOP count, not a GPU measurement"
    )
    return out


# ---------------------------------------------------------------------------------------------------
# The parent: alternating repetitions
# ---------------------------------------------------------------------------------------------------


def _run_worker(kind: str, args: argparse.Namespace, pool: str | None, models: int = 1) -> dict:
    cmd = [
        sys.executable, str(Path(__file__).resolve()), "--worker", kind, "--steps", str(args.steps),
        "--chunks", str(args.chunks), "--threads", str(args.threads), "--models", str(models),
    ]  # fmt: skip
    if pool is not None:
        cmd += ["--pool", pool]
    t = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, check=False)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode or not lines:
        raise RuntimeError(f"{kind} worker failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    out = json.loads(lines[-1][len("RESULT ") :])
    out["process_wall_s"] = time.perf_counter() - t
    return out


def _render_pool(path: str) -> None:
    import jax
    import numpy as np

    from linvae.deep.data import load

    ds = load("dsprites", source="procedural")
    images = np.asarray(ds.batch(jax.random.key(0), POOL).images).transpose(0, 3, 1, 2)
    np.save(path, np.ascontiguousarray(images))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--reps", type=int, default=3, help="alternating repetitions of each (default 3)")
    p.add_argument("--steps", type=int, default=50, help="steps per timed chunk (default 50)")
    p.add_argument("--chunks", type=int, default=2, help="timed chunks per process (default 2)")
    p.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)), help="CPUs for both")
    p.add_argument("--models", type=int, nargs="+", default=[1], help="linvae group sizes (default 1)")
    p.add_argument("--projection", action="store_true", help="also FLOP counts and the GPU projection")
    p.add_argument("--gpu-tflops", type=float, default=15.0, help="assumed sustained fp32/TF32 TFLOP/s")
    p.add_argument("--no-write", action="store_true", help="print, do not write the results file")
    p.add_argument("--worker", choices=("torch", "linvae"), help=argparse.SUPPRESS)
    p.add_argument("--pool", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        _worker_main(args)
        return 0

    sys.path.insert(0, str(ROOT))
    from benchmarks._results import write_result

    load_before = os.getloadavg()
    try:
        import torch  # noqa: F401

        have_torch = True
    except ImportError:
        have_torch = False
    numbers: dict = {"torch": [], "linvae": []}
    with tempfile.TemporaryDirectory() as tmp:
        pool = str(Path(tmp) / "pool.npy")
        if have_torch:
            _render_pool(pool)
        for rep in range(args.reps):
            if have_torch:
                numbers["torch"].append(_run_worker("torch", args, pool))
            numbers["linvae"].append(_run_worker("linvae", args, None))
            t_s = numbers["torch"][-1]["steps_per_s"] if have_torch else float("nan")
            print(
                f"rep {rep + 1}/{args.reps}: torch {t_s:.2f} steps/s, linvae"
                f" {numbers['linvae'][-1]['steps_per_s']:.2f} steps/s",
                file=sys.stderr, flush=True,
            )  # fmt: skip
    med = {k: statistics.median(r["steps_per_s"] for r in v) for k, v in numbers.items() if v}
    numbers["median_steps_per_s"] = med
    if have_torch:
        numbers["ratio_of_medians"] = med["linvae"] / med["torch"]
        numbers["ratio_per_rep"] = [
            a["steps_per_s"] / b["steps_per_s"]
            for a, b in zip(numbers["linvae"], numbers["torch"], strict=True)
        ]
    else:
        numbers["torch_missing"] = "torch not installed: pip install torch"
    groups = [m for m in args.models if m != 1]
    if groups:
        numbers["groups"] = [_run_worker("linvae", args, None, models=m) for m in groups]
    if args.projection:
        numbers["projection"] = projection(args.gpu_tflops)
    config = {
        "reps": args.reps, "steps_per_chunk": args.steps, "timed_chunks": args.chunks, "threads": args.threads,
        "order": "alternating, torch first in each repetition", "batch_size": BATCH, "beta": BETA,
        "learning_rate": 1e-4, "image_shape": [64, 64, 1], "latent_dim": 10, "dtype": "float32",
        "data": "procedural dSprites (linvae renders each batch; torch gathers from a 4,096-image pool)",
        "xla_flags": os.environ.get("XLA_FLAGS", ""),
    }  # fmt: skip
    summary = {k: numbers[k] for k in ("median_steps_per_s", "ratio_of_medians") if k in numbers}
    print(json.dumps(summary, indent=1))
    if not args.no_write:
        path = write_result("deep_train", numbers, config, load_before)
        print(f"wrote {path.relative_to(ROOT)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
