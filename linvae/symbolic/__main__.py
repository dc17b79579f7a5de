"""``python -m linvae.symbolic``: print the derivations; ``--out FILE`` writes them; ``--write-proofs``
regenerates the generated blocks of ``proofs/*.md``; ``--check-proofs`` exits 1 if any note is stale."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from linvae.symbolic.report import report


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m linvae.symbolic", description=__doc__)
    p.add_argument("--out", type=Path, help="write the report to this file instead of stdout")
    p.add_argument("--latex", action="store_true", help="LaTeX instead of plain text")
    p.add_argument("--write-proofs", action="store_true", help="regenerate the blocks in proofs/")
    p.add_argument("--check-proofs", action="store_true", help="exit 1 if a proof note is stale")
    p.add_argument(
        "--proofs-dir", type=Path, default=None, help="proofs/ directory (default: the checkout's)"
    )
    args = p.parse_args(argv)
    t0 = time.perf_counter()
    if args.write_proofs or args.check_proofs:
        from linvae.symbolic import notes

        if args.write_proofs:
            changed = notes.write_notes(args.proofs_dir)
            print(f"regenerated {len(changed)} note(s): {', '.join(changed) or '-'}")
        stale = notes.stale_notes(args.proofs_dir)
        if args.check_proofs and stale:
            print(f"stale proof notes: {', '.join(stale)}", file=sys.stderr)
            return 1
    else:
        text = report(latex=args.latex)
        if args.out:
            args.out.write_text(text)
            print(f"wrote {args.out}")
        else:
            print(text)
    print(f"[linvae.symbolic: {time.perf_counter() - t0:.1f} s]", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
