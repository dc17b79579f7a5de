"""Deep training on whatever accelerator is present: one command, one JSON.

    python benchmarks/deep_gpu.py            # the published sizes (64 x 64, groups up to 32, a 5-minute slice)
    python benchmarks/deep_gpu.py --quick    # minutes on a CPU: 32 x 32, groups of 1 and 2, a 20 s slice

Measures, on ``jax.devices()[0]`` (GPU, TPU or CPU; the JSON says which):

* images/s of one model and of vmapped groups of M models, with the decoder's transposed
  convolutions in each form of :class:`linvae.deep.model.ConvTranspose4x2` (``subpixel`` and
  ``direct``), steady state (the first chunk, which compiles, is timed apart);
* peak memory: the device's ``peak_bytes_in_use`` on an accelerator, the process's peak resident set on
  CPU (which then holds everything);
* a slice of the published protocol: the paper configuration (procedural dSprites unless the real
  file is found; conv VAE, batch 64, Adam 1e-4) in a group of the size :func:`linvae.deep.train.group_size`
  picks for this device, trained for ``--slice-s`` seconds; it reports model-steps/s and what the
  full grid (3 data sets x 5 beta x 5 lambda x 10 seeds, 150k + 50k steps) would take at that rate,
  labelled as a projection from the measured slice.

Writes ``benchmarks/results/deep_gpu_<platform>.json`` (``benchmarks/_results.py``). Until it has run
on a GPU, no GPU number of this project is a measurement.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import resource
import sys
import time
from pathlib import Path

import jax

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._results import time_chunk_twice  # noqa: E402

#: Model-steps of the published grid per data set: β phase 5 x 10 x 150k, λβ phase 5 x 5 x 10 x 50k.
GRID_MODEL_STEPS = 5 * 10 * 150_000 + 5 * 5 * 10 * 50_000
GRID_DATASETS = 3


def peak_memory(device: jax.Device) -> dict:
    stats = device.memory_stats() if hasattr(device, "memory_stats") else None
    if stats and "peak_bytes_in_use" in stats:
        return {"what": "device peak_bytes_in_use", "bytes": int(stats["peak_bytes_in_use"])}
    return {
        "what": "process peak resident set (CPU)",
        "bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
    }


def throughput(cfg, dataset, models: int, form: str, steps: int) -> dict:
    """Images/s of a vmapped group of ``models`` with the transposed convolutions in ``form``."""
    from linvae.deep.model import with_conv_transpose_form
    from linvae.deep.record import Member
    from linvae.deep.train import init_state, make_chunk, model_mesh, place_data, place_models

    mesh = model_mesh()
    data = place_data(dataset, mesh)
    state, static = init_state(cfg, dataset, [Member(4.0, 0.0, s) for s in range(models)], steps=10 * steps)
    state = state._replace(
        params=with_conv_transpose_form(state.params, form),
        opt_state=with_conv_transpose_form(state.opt_state, form),
    )
    chunk = make_chunk(cfg, with_conv_transpose_form(static, form), 10 * steps, steps, 0, mesh=mesh)
    state = place_models(state, mesh)
    state, first, wall = time_chunk_twice(chunk, state, data)
    return {
        "models": models, "form": form, "steps": steps, "first_chunk_s": first, "wall_s": wall,
        "steps_per_s": steps / wall, "images_per_s": steps * models * cfg.batch_size / wall,
        "model_steps_per_s": steps * models / wall,
    }  # fmt: skip


def protocol_slice(cfg, dataset, seconds: float) -> dict:
    """The published protocol's β phase in one automatically sized group, for ``seconds``."""
    from linvae.deep.record import Member
    from linvae.deep.train import group_size, init_state, make_chunk, model_mesh, place_data, place_models

    mesh = model_mesh()
    data = place_data(dataset, mesh)
    m = group_size(cfg, data, 5 * 10)
    state, static = init_state(
        cfg, dataset, [Member(b, 0.0, s) for s in range(10) for b in cfg.betas][:m], steps=cfg.beta_steps
    )
    chunk = make_chunk(
        cfg, static, cfg.beta_steps, cfg.chunk_steps, cfg.beta_steps - cfg.log_window, mesh=mesh
    )
    state = place_models(state, mesh)
    t0 = time.perf_counter()
    state, _ = chunk(state, data)
    jax.block_until_ready(state)
    compile_s = time.perf_counter() - t0
    t0, done = time.perf_counter(), 0
    while time.perf_counter() - t0 < seconds:
        state, _ = chunk(state, data)
        jax.block_until_ready(state)
        done += cfg.chunk_steps
    wall = time.perf_counter() - t0
    rate = done * m / wall
    return {
        "group_size": m, "steps": done, "wall_s": wall, "first_chunk_s": compile_s, "model_steps_per_s": rate,
        "projection": {
            "what": "full published grid at the measured slice rate, one device (a projection, not a run)",
            "model_steps": GRID_MODEL_STEPS * GRID_DATASETS,
            "hours": GRID_MODEL_STEPS * GRID_DATASETS / rate / 3600,
        },
    }  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="CPU-sized: 32 x 32, groups 1 and 2, short slice")
    p.add_argument("--models", type=int, nargs="+", help="group sizes M (default 1 4 16 32; quick: 1 2)")
    p.add_argument("--steps", type=int, help="steps per timed chunk (default 50; quick: 5)")
    p.add_argument("--slice-s", type=float, help="seconds of the protocol slice (default 300; quick: 20)")
    args = p.parse_args(argv)
    load_before = os.getloadavg()
    from benchmarks._results import write_result
    from linvae.deep.config import PRESETS
    from linvae.deep.data import to_device
    from linvae.deep.train import open_dataset

    device = jax.devices()[0]
    quick = args.quick
    models = args.models or ([1, 2] if quick else [1, 4, 16, 32])
    steps = args.steps or (5 if quick else 50)
    slice_s = args.slice_s or (20.0 if quick else 300.0)
    cfg = dataclasses.replace(
        PRESETS["paper"], source="auto", image_size=32 if quick else 64, chunk_steps=steps, max_models=0
    )
    dataset = to_device(open_dataset(cfg))
    rows = []
    for form in ("subpixel", "direct"):
        for m in models:
            rows.append(throughput(cfg, dataset, m, form, steps))
            print(f"{form:8s} M={m:3d}: {rows[-1]['images_per_s']:10.0f} images/s", file=sys.stderr)
    slice_cfg = dataclasses.replace(cfg, chunk_steps=steps)
    sl = protocol_slice(slice_cfg, dataset, slice_s)
    print(
        f"protocol slice: {sl['model_steps_per_s']:.1f} model-steps/s in groups of {sl['group_size']}",
        file=sys.stderr,
    )
    numbers = {
        "device": str(device), "platform": device.platform, "device_kind": getattr(device, "device_kind", None),
        "device_count": jax.device_count(), "throughput": rows, "peak_memory": peak_memory(device),
        "protocol_slice": sl, "data": dataset.provenance.to_dict(),
    }  # fmt: skip
    config = {"quick": quick, "models": models, "steps": steps, "slice_s": slice_s, "image_size": cfg.image_size,
              "batch_size": cfg.batch_size}  # fmt: skip
    path = write_result(
        f"deep_gpu_{device.platform}{'_quick' if quick else ''}", numbers, config, load_before
    )
    print(f"wrote {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
