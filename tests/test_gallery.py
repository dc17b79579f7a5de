"""The README's gallery: a small committed PNG per figure, shown in the README, written by the entry point.

``python -m linvae.figures --gallery docs/figures`` regenerates the pictures from the shipped code.
"""

from __future__ import annotations

import re
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from linvae.figures import load_figures, runner

ROOT = Path(__file__).resolve().parents[1]
GALLERY = ROOT / "docs" / "figures"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_every_figure_has_a_small_gallery_png_shown_in_the_readme():
    readme = (ROOT / "README.md").read_text()
    shown = set(re.findall(r"!\[[^\]]*\]\(docs/figures/([a-z0-9-]+)\.png\)", readme))
    for slug in load_figures():
        path = GALLERY / f"{slug}.png"
        assert path.is_file(), f"{path.relative_to(ROOT)} missing: python -m linvae.figures --gallery docs/figures"
        assert path.read_bytes()[:8] == PNG_MAGIC, slug
        assert path.stat().st_size <= runner.GALLERY_MAX_BYTES, (slug, path.stat().st_size)
        assert slug in shown, f"README.md does not show docs/figures/{slug}.png"
    stale = {p.stem for p in GALLERY.glob("*.png")} - set(load_figures())
    assert not stale, f"gallery images of no figure: {sorted(stale)}"


def test_gallery_png_fits_the_size_cap(tmp_path):
    """A busy figure is written at the highest resolution whose file fits the cap."""
    fig, ax = plt.subplots(figsize=(10, 7))
    # Noise compresses badly: ~260 kB at the top resolution, under the cap only at the lowest.
    ax.imshow(np.random.default_rng(0).uniform(size=(250, 250)), interpolation="nearest")
    dpi = runner.write_gallery_png(fig, tmp_path / "noise.png")
    plt.close(fig)
    size = (tmp_path / "noise.png").stat().st_size
    assert size <= runner.GALLERY_MAX_BYTES and dpi < runner.GALLERY_DPIS[0]
