"""Deep training throughput: our JAX step vs a straightforward PyTorch step, and vmapped sweeps.

    python benchmarks/deep_train.py [--steps 30] [--models 1 2 4]

Measures, on this machine:

* CPU training steps/s of the published conv β-VAE (batch 64, Adam 1e-4, Bernoulli + β KL) for
  ``linvae.deep.train`` (one model; data rendered on the device each step) and for the same
  architecture written plainly in PyTorch (``nn.Conv2d`` / ``nn.ConvTranspose2d``, ``torch.optim.Adam``,
  batches indexed from a pre-rendered uint8 tensor), and their ratio;
* images/s of one model and of vmapped groups of M models (the sweep path);
* FLOPs per model-step (XLA cost analysis) with the decoder's transposed convs in each form of
  ``linvae.deep.model.ConvTranspose4x2`` -- "subpixel" (what runs on the CPU) and "direct" (what
  ``form="auto"`` runs on a GPU; 4/9 of the sub-pixel FLOPs in those layers) -- and the projected wall
  time of the full published grid (3 data sets x 5 beta x 5 lambda x 10 seeds; 150k beta-VAE steps
  per (beta, seed), 50k continuation steps per (beta, lambda, seed)) on one GPU at a stated sustained
  throughput, the same for both forms. The headline projection uses the direct form. It is a FLOP
  count, not a GPU measurement.

    python benchmarks/deep_train.py --projection-only   # FLOP counts and projection only (~1 min on 2 CPU cores)

torch is a benchmark baseline only (``pip install torch``), never a linvae dependency.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import jax
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import time_chunk_twice  # noqa: E402


def bench_ours(models: int, steps: int) -> dict:
    from linvae.deep.config import PRESETS
    from linvae.deep.data import load, to_device
    from linvae.deep.record import Member
    from linvae.deep.train import init_state, make_chunk

    cfg = PRESETS["smoke"]
    ds = load("dsprites", source="procedural")
    data = to_device(ds)
    members = [Member(4.0, 0.0, s) for s in range(models)]
    state, static = init_state(cfg, ds, members, steps=10 * steps)
    chunk = make_chunk(cfg, static, 10 * steps, steps, 0)
    state, compile_s, wall = time_chunk_twice(chunk, state, data)
    return {
        "models": models,
        "steps_per_s": steps / wall,
        "images_per_s": steps * models * cfg.batch_size / wall,
        "first_chunk_s": compile_s,
        "mode": "scan" if jax.devices()[0].platform != "cpu" else "loop of jitted steps",
    }


def flops_per_step(form: str) -> float:
    """XLA's FLOP count of one model's training step (forward, backward, Adam), transposed convs in ``form``.

    Counted from the program compiled for this machine's backend; the cost analysis counts only the
    taps that meet the input (not padding, not the zeros of a dilated input), so it is the work of the
    form whatever the backend.
    """
    from linvae.deep.config import PRESETS
    from linvae.deep.data import load, to_device
    from linvae.deep.model import with_conv_transpose_form
    from linvae.deep.record import Member
    from linvae.deep.train import init_state, make_chunk

    cfg = PRESETS["smoke"]
    ds = load("dsprites", source="procedural")
    state, static = init_state(cfg, ds, [Member(4.0, 0.0, 0)], steps=10)
    # The form is a static field: switch it in the parameters, the Adam moments and the static half.
    state, static = with_conv_transpose_form(state, form), with_conv_transpose_form(static, form)
    chunk = make_chunk(cfg, static, 10, 1, 0, scan=True)
    lowered = jax.jit(lambda s, d: chunk(s, d)).lower(state, to_device(ds))
    cost = lowered.compile().cost_analysis()
    cost = cost[0] if isinstance(cost, list) else cost
    return float(cost.get("flops", float("nan")))


def bench_torch(steps: int) -> dict:
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

    from linvae.deep.data import load

    ds = load("dsprites", source="procedural")
    images = np.asarray(ds.batch(jax.random.key(0), 4096).images).transpose(0, 3, 1, 2)
    pool = torch.from_numpy(np.array(images, copy=True))
    model = VAE()
    opt = torch.optim.Adam(model.parameters(), lr=1e-4, betas=(0.9, 0.999), eps=1e-8)
    bce = nn.BCEWithLogitsLoss(reduction="sum")

    def step():
        idx = torch.randint(0, pool.shape[0], (64,))
        x = pool[idx].float() / 255.0
        logits, mu, log_var = model(x)
        nll = bce(logits, x) / 64
        kl = 0.5 * (mu.pow(2) + log_var.exp() - log_var - 1).sum(1).mean()
        loss = nll + 4.0 * kl
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(3):
        step()
    t = time.perf_counter()
    for _ in range(steps):
        step()
    wall = time.perf_counter() - t
    return {"steps_per_s": steps / wall, "threads": torch.get_num_threads(), "version": torch.__version__}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--models", type=int, nargs="+", default=[1, 2, 4])
    p.add_argument("--gpu-tflops", type=float, default=15.0, help="assumed sustained fp32/TF32 TFLOP/s")
    p.add_argument("--projection-only", action="store_true", help="skip the timings; FLOPs and projection")
    args = p.parse_args()
    out: dict = {"device": str(jax.devices()[0]), "cpus": os.cpu_count(), "load_avg": os.getloadavg()}
    if not args.projection_only:
        try:
            out["torch"] = bench_torch(args.steps)
        except ImportError:
            out["torch"] = None
        out["ours"] = [bench_ours(m, args.steps) for m in args.models]
        if out["torch"]:
            out["speed_ratio_one_model"] = out["ours"][0]["steps_per_s"] / out["torch"]["steps_per_s"]
    model_steps = 3 * (5 * 10 * 150_000 + 5 * 5 * 10 * 50_000)
    hours = {}
    for form in ("subpixel", "direct"):
        flops = flops_per_step(form)
        hours[form] = model_steps * flops / (args.gpu_tflops * 1e12) / 3600
        out[f"flops_per_model_step_{form}"] = flops
        out[f"projected_grid_gpu_hours_{form}"] = hours[form]
    out["flops_ratio_subpixel_to_direct"] = (
        out["flops_per_model_step_subpixel"] / out["flops_per_model_step_direct"]
    )
    out["grid_model_steps"] = model_steps
    # What form="auto" runs on a GPU.
    out["flops_per_model_step"] = out["flops_per_model_step_direct"]
    out["projected_grid_gpu_hours"] = hours["direct"]
    out["projection_assumptions"] = (
        f"one GPU sustaining {args.gpu_tflops:g} TFLOP/s on vmapped groups (about 3% of an H100's dense"
        " TF32 peak, 25% of its FP32 peak) for either form, data resident on the device, the lambda=0 row"
        " continued like the others, evaluation excluded; FLOPs are XLA's cost analysis of one model's"
        " step (forward, backward, Adam) with the transposed convs in the named form, and the headline"
        " (projected_grid_gpu_hours) is the direct form that form='auto' runs on a GPU; a FLOP count, not"
        " a GPU measurement"
    )
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
