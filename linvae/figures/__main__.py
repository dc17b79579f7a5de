"""``python -m linvae.figures``: regenerate the figures of the theory (PNG + PDF + JSON sidecar each).

python -m linvae.figures                   # every figure into figures/ (minutes on a CPU)
python -m linvae.figures --full            # published protocols where the default is reduced (hours)
python -m linvae.figures --gallery docs/figures   # also the README's small PNGs
python -m linvae.figures --list            # slugs and one-line descriptions
python -m linvae.figures mi-collapse --fast --out /tmp/f
python -m linvae.figures deep ...          # deep-model figures (linvae.figures.deep)
"""

from __future__ import annotations

import argparse
import importlib.util
import sys

from linvae.figures import load_figures
from linvae.figures.runner import run, skip_note


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["deep"]:
        if importlib.util.find_spec("linvae.figures.deep") is None:
            print(
                "linvae.figures.deep is not available in this version of linvae; the deep-model figures "
                "cannot be drawn yet",
                file=sys.stderr,
            )
            return 2
        from linvae.figures import deep

        return int(deep.main(argv[1:]) or 0)
    figures = load_figures()
    p = argparse.ArgumentParser(
        prog="python -m linvae.figures",
        description="Regenerate the figures of the linear-VAE theory. Each figure is written as "
        "<slug>.png, <slug>.pdf and <slug>.json (the numbers plotted, configuration, package versions, "
        "git revision, wall time), atomically. A failing figure is reported and the others still run; "
        "the exit status is 0 only if every selected figure was written. Figures that need an optional "
        "extra (e.g. 'datasets' needs linvae[deep]) are skipped with a note when it is not installed. "
        "'python -m linvae.figures deep ...' runs the deep-model figures (see its own --help).",
        epilog="Data sets: the 'datasets' figure reads the real dSprites, Shapes3D and MPI3D files from "
        "$LINVAE_DATA, else $DISENTANGLEMENT_LIB_DATA, and draws labelled procedural stand-ins for any it "
        "does not find (file names and formats: docs/data.md).",
    )
    p.add_argument("slugs", nargs="*", metavar="slug", help="figures to draw (default: all; see --list)")
    p.add_argument("--all", action="store_true", help="draw every figure (the default without slugs)")
    p.add_argument("--list", action="store_true", help="list the slugs with one-line descriptions and exit")
    p.add_argument("--fast", action="store_true", help="tiny sizes for smoke tests (seconds per figure)")
    p.add_argument("--out", default="figures", help="output folder (default: figures/)")
    p.add_argument(
        "--full",
        action="store_true",
        default=None,
        help="run the published protocol where the default is reduced to fit minutes on a CPU: "
        "linear-grid's AdamW half, 50 inits x 25 cells x 30,000 / 50,000 steps for n = 50 / 100 "
        "(about 6 h on 2 CPU cores, resumable: rerun the same command after an interruption). On a "
        "GPU or TPU backend the published protocol is the default.",
    )
    p.add_argument(
        "--gallery",
        metavar="DIR",
        help="also write a small PNG per figure (<= 150 kB) into DIR, e.g. docs/figures for the README",
    )
    args = p.parse_args(argv)
    if args.fast and args.full:
        p.error("--fast and --full contradict each other: choose one")
    if args.list:
        for fig in figures.values():
            note = skip_note(fig)
            print(f"{fig.slug:20s} {fig.description}" + (f"  [skipped here: {note}]" if note else ""))
        return 0
    unknown = [s for s in args.slugs if s not in figures]
    if unknown:
        p.error(f"unknown figure(s) {', '.join(unknown)}; choose from {', '.join(figures)}")
    chosen = (
        [figures[s] for s in dict.fromkeys(args.slugs)]
        if args.slugs and not args.all
        else list(figures.values())
    )
    outcomes = run(
        chosen,
        args.out,
        fast=args.fast,
        explicit=bool(args.slugs) and not args.all,
        gallery=args.gallery,
        full=args.full,
    )
    return 0 if all(o.status != "failed" for o in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
