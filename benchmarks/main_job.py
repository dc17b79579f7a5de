"""The main job as a new user runs it: ``python -m linvae.figures`` in a fresh process, timed.

    python benchmarks/main_job.py [--runs 1] [--out DIR] [-- extra figure arguments]

Runs the README's figure regeneration (every figure, built-in defaults) in a subprocess with a cold
JAX compilation cache, each run into an empty folder, and records the wall time of each run, every
figure's own wall and CPU time (from its JSON sidecar), and how many figures were written. Result:
``benchmarks/results/main_job.json``. Measure on a quiet machine; the load average before and after is
recorded with the numbers.
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

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _results import write_result  # noqa: E402


def one_run(out: Path, extra: list[str]) -> dict:
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "linvae.figures", "--out", str(out), *extra], check=False)
    wall = time.perf_counter() - t0
    figures = {}
    for path in sorted(out.glob("*.json")):
        rec = json.loads(path.read_text())
        written = all((out / f"{path.stem}.{ext}").is_file() for ext in ("png", "pdf"))
        figures[rec["slug"]] = {
            "wall_s": rec["wall_time_s"]["total"],
            "cpu_s": rec["cpu_time_s"],
            "png_pdf_json": written,
        }
    return {"wall_s": wall, "exit_code": proc.returncode, "figures": figures, "written": len(figures)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=1, help="repetitions (each in a fresh process and folder)")
    p.add_argument("--keep", metavar="DIR", help="write the last run's figures here instead of a temp folder")
    p.add_argument("extra", nargs="*", help="arguments passed to python -m linvae.figures (after --)")
    args = p.parse_args()
    load_before = os.getloadavg()
    runs = []
    for i in range(args.runs):
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(args.keep) if args.keep and i == args.runs - 1 else Path(tmp) / "figures"
            out.mkdir(parents=True, exist_ok=True)
            runs.append(one_run(out, args.extra))
            print(f"run {i + 1}/{args.runs}: {runs[-1]['wall_s']:.1f} s, {runs[-1]['written']} figures", flush=True)
    numbers = {
        "median_wall_s": statistics.median(r["wall_s"] for r in runs),
        "wall_s": [r["wall_s"] for r in runs],
        "figures_written": [r["written"] for r in runs],
        "exit_codes": [r["exit_code"] for r in runs],
        "per_figure_last_run": runs[-1]["figures"],
    }
    config = {"command": "python -m linvae.figures " + " ".join(args.extra), "runs": args.runs}
    path = write_result("main_job", numbers, config, load_before)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
