"""Speed and fidelity of the procedural data sets (issue 6), printed as a small table.

    python benchmarks/datasets.py                     # ~1 CPU minute on 2 cores
    python benchmarks/datasets.py --compare out.png   # also save Shapes3D-like frames above 3dshapes.gif's

Measures: seconds to render all 737,280 dSprites-replica images into a host uint8 array (spec < 60 s
on a 2-core CPU, compilation included); Shapes3D-like images per second, both composed from the
ray-cast coverage table (the data set's path) and ray-cast from scratch per image (spec >= 2,000/s);
the IoU of the dSprites replica against every frame of dsprites.gif, per shape (spec >= 0.95 square,
>= 0.9 ellipse and heart).
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import jax
import jax.numpy as jnp
import numpy as np

from linvae.deep.data import Shapes3DLike, calibration, make_batcher, room, sprite


def _time(fn, repeats: int) -> float:
    fn()  # compile
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - start) / repeats


def dsprites_full_render() -> float:
    start = time.perf_counter()
    out = sprite.render_all()
    seconds = time.perf_counter() - start
    assert out.shape == (737280, 64, 64, 1)
    return seconds


def shapes3d_rates(batch: int = 2048) -> dict[str, float]:
    start = time.perf_counter()
    ds = Shapes3DLike()
    table_seconds = time.perf_counter() - start
    draw = make_batcher(ds, batch)
    keys = iter(jax.random.split(jax.random.key(0), 64))
    composed = _time(lambda: draw(next(keys)).images.block_until_ready(), 5)
    factors = ds.sample_factors(jax.random.key(1), 256)
    direct = _time(lambda: room.render_direct(factors).block_until_ready(), 3)
    return {
        "table build s (480 geometries, compile incl.)": table_seconds,
        "composed images/s": batch / composed,
        "ray-cast images/s (4 rays/pixel)": 256 / direct,
    }


def compare_png(path: str) -> None:
    """Shapes3D-like frames (orientation sweep, then shapes and scales) above 3dshapes.gif frames."""
    from PIL import Image

    ref = calibration.gif_frames(calibration.reference_dir() / "3dshapes.gif")[:16]
    ref = np.stack([np.asarray(Image.fromarray(f).resize((128, 128))) for f in ref])
    f = [[0, 6, 3, 3, 0, o] for o in range(15)] + [[0, 6, 3, 3, 1, 14]]
    ours = np.asarray(room.render_direct(jnp.asarray(f)))
    ours = np.kron(ours, np.ones((2, 2, 1), np.uint8))
    top, bottom = np.concatenate(list(ours[:8]), 1), np.concatenate(list(ours[8:]), 1)
    rtop, rbottom = np.concatenate(list(ref[:8]), 1), np.concatenate(list(ref[8:]), 1)
    Image.fromarray(np.concatenate([top, bottom, rtop, rbottom], 0)).save(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--compare", help="save a Shapes3D-like vs 3dshapes.gif PNG here")
    args = parser.parse_args()
    print(
        f"# {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs,"
        f" jax {jax.__version__} {jax.default_backend()}"
    )
    print(f"dSprites replica, all 737,280 images: {dsprites_full_render():.1f} s   (spec < 60 s)")
    for name, value in shapes3d_rates().items():
        print(
            f"Shapes3D-like, {name}: {value:,.0f}"
            if "images/s" in name
            else f"Shapes3D-like, {name}: {value:.1f}"
        )
    print("  (spec >= 2,000 images/s)")
    match = calibration.calibrate()
    mean, worst = match.iou_per_shape(), match.min_iou_per_shape()
    counts = {s: int(np.sum(match.factors[:, 0] == k)) for k, s in enumerate(mean)}
    for shape in mean:
        print(
            f"IoU vs dsprites.gif, {shape:7s}: mean {mean[shape]:.3f},"
            f" worst {worst[shape]:.3f} over {counts[shape]} frames"
        )
    print("  (spec mean >= 0.95 square, >= 0.9 ellipse and heart)")
    if args.compare:
        compare_png(args.compare)
        print(f"wrote {args.compare}")


if __name__ == "__main__":
    main()
