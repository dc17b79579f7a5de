"""Run figures and write ``<slug>.png``, ``<slug>.pdf`` and ``<slug>.json`` atomically.

The only module of :mod:`linvae.figures` that touches files. Each figure is computed, plotted and saved
on its own: a failure is reported (with its traceback) and the remaining figures still run. Every file
is written to a temporary file in the output folder and moved into place with :func:`os.replace`, so a
reader never sees a half-written figure; the JSON sidecar is written last and only when both images
were written. Figures with ``uses_cache`` get ``<out>/.cache/<slug>`` for their resumable pieces.
"""

from __future__ import annotations

import dataclasses
import datetime
import importlib.metadata
import json
import math
import multiprocessing
import platform
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from linvae._atomic import atomic_write
from linvae.figures import EXTRAS, Figure, style

#: Packages whose versions every JSON sidecar records.
VERSIONED = ("linvae", "jax", "jaxlib", "numpy", "scipy", "matplotlib", "diffrax", "optax", "equinox")


@dataclasses.dataclass(frozen=True)
class Outcome:
    """What happened to one figure: ``status`` is ``"ok"``, ``"skipped"`` or ``"failed"``."""

    slug: str
    status: str
    seconds: float
    message: str = ""
    cpu_seconds: float = 0.0
    files: tuple[str, ...] = ()


def jsonable(x: Any) -> Any:
    """Plain-JSON form of ``x``: arrays -> nested lists, numpy scalars -> Python, non-finite -> ``None``."""
    if isinstance(x, Mapping):
        return {str(k): jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [jsonable(v) for v in x]
    if hasattr(x, "__array__") and not isinstance(x, (str, bytes)):
        a = np.asarray(x)
        if a.ndim == 0:
            return jsonable(a.item())
        return [jsonable(v) for v in a.tolist()] if a.dtype.kind in "fc" else jsonable(a.tolist())
    if isinstance(x, (bool, np.bool_)):
        return bool(x)
    if isinstance(x, (int, np.integer)):
        return int(x)
    if isinstance(x, (float, np.floating)):
        f = float(x)
        return f if math.isfinite(f) else None
    if isinstance(x, complex):
        raise TypeError("complex values are not JSON-serialisable")
    if x is None or isinstance(x, str):
        return x
    raise TypeError(f"cannot serialise {type(x).__name__} to JSON")


def versions() -> dict[str, str | None]:
    """Installed versions of :data:`VERSIONED` plus Python (``None``: not installed)."""
    out: dict[str, str | None] = {"python": platform.python_version()}
    for name in VERSIONED:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    return out


def git_revision() -> dict[str, Any]:
    """``{"sha": ..., "dirty": ...}`` of the checkout holding linvae (``None`` outside a git checkout)."""
    root = Path(__file__).resolve().parents[2]
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        dirty = (
            subprocess.run(
                ["git", "status", "--porcelain", "--untracked-files=no"],
                cwd=root,
                capture_output=True,
                text=True,
                timeout=20,
                check=True,
            ).stdout.strip()
            != ""
        )
    except (OSError, subprocess.SubprocessError):
        return {"sha": None, "dirty": None}
    return {"sha": sha, "dirty": dirty}


def skip_note(fig: Figure) -> str | None:
    """Why ``fig`` cannot run on this install, or ``None``."""
    missing = fig.missing()
    if not missing:
        return None
    extras = sorted({EXTRAS.get(p, p) for p in missing})
    return f"needs {', '.join(missing)} (pip install -e '.[{','.join(extras)}]')"


def cache_dir(out: Path, fig: Figure) -> Path:
    """Where a resumable figure keeps its finished pieces: ``<out>/.cache/<slug>``."""
    return Path(out) / ".cache" / fig.slug


#: Largest gallery PNG (bytes): small enough to commit one per figure and show them all in the README.
GALLERY_MAX_BYTES = 150_000
#: Resolutions tried for a gallery PNG, highest first; the first that fits :data:`GALLERY_MAX_BYTES` wins.
GALLERY_DPIS = (80, 68, 56, 46, 38)


def write_gallery_png(mfig: Any, path: Path) -> int:
    """Save ``mfig`` as a small PNG at ``path`` (atomically): the highest of :data:`GALLERY_DPIS` whose
    file fits :data:`GALLERY_MAX_BYTES`. Returns the dpi used."""
    import io

    for dpi in GALLERY_DPIS:
        buf = io.BytesIO()
        mfig.savefig(buf, format="png", dpi=dpi, pil_kwargs={"optimize": True})
        if buf.tell() <= GALLERY_MAX_BYTES:
            break
    data = buf.getvalue()
    atomic_write(path, lambda fh: fh.write(data))
    return dpi


def run_one(
    fig: Figure,
    out: Path,
    *,
    fast: bool,
    meta: Mapping[str, Any],
    gallery: Path | None = None,
    full: bool | None = None,
) -> Outcome:
    """Compute, plot and write one figure; never raises for a figure's own failure.

    ``gallery``: also write a small ``<gallery>/<slug>.png`` (the README's pictures).
    """
    start = time.perf_counter()
    cpu = time.process_time()
    try:
        kwargs: dict[str, Any] = {}
        if fig.uses_cache:
            kwargs["cache"] = cache_dir(out, fig)
        if fig.has_full:
            kwargs["full"] = full
        data = fig.compute(fast, **kwargs)
        t_compute = time.perf_counter() - start
        with style.context():
            mfig = fig.plot(data)
            t_plot = time.perf_counter() - start - t_compute
            paths = [out / f"{fig.slug}.png", out / f"{fig.slug}.pdf"]
            for p in paths:
                atomic_write(p, lambda fh, p=p: mfig.savefig(fh, format=p.suffix[1:]))
            if gallery is not None:
                gallery.mkdir(parents=True, exist_ok=True)
                write_gallery_png(mfig, gallery / f"{fig.slug}.png")
        record = {
            "slug": fig.slug,
            "description": fig.description,
            "fast": fast,
            "wall_time_s": {"compute": t_compute, "plot": t_plot, "total": time.perf_counter() - start},
            # CPU seconds of this process (all threads): on a shared machine the wall time overstates
            # the cost; this does not.
            "cpu_time_s": time.process_time() - cpu,
            **meta,
            "data": data,
        }
        text = json.dumps(jsonable(record), indent=1, allow_nan=False)
        json_path = out / f"{fig.slug}.json"
        atomic_write(json_path, lambda fh: fh.write(text + "\n"), mode="w")
    except Exception as err:  # a figure's failure must not stop the others
        msg = "".join(traceback.format_exception(err))
        return Outcome(fig.slug, "failed", time.perf_counter() - start, msg, time.process_time() - cpu)
    files = tuple(str(p) for p in paths + [json_path])
    return Outcome(
        fig.slug, "ok", time.perf_counter() - start, cpu_seconds=time.process_time() - cpu, files=files
    )


def _background_main(work: Callable[..., None], fast: bool, cache: str, full: bool | None) -> None:
    """Entry of a background process (spawned: a fresh interpreter, its own JAX)."""
    work(fast, cache=cache, full=full, log=lambda msg: print(f"  (background) {msg}", flush=True))


def start_backgrounds(
    figures: list[Figure], out: Path, *, fast: bool, full: bool | None, log: Callable[[str], None] = print
) -> dict[str, multiprocessing.process.BaseProcess]:
    """Start the :attr:`~linvae.figures.Figure.background` work of ``figures`` (those not skipped), one
    spawned process each; ``{slug: process}``."""
    procs = {}
    ctx = multiprocessing.get_context("spawn")
    for fig in figures:
        if fig.background is None or not fig.uses_cache or skip_note(fig) is not None:
            continue
        proc = ctx.Process(
            target=_background_main, args=(fig.background, fast, str(cache_dir(out, fig)), full), daemon=True
        )
        proc.start()
        procs[fig.slug] = proc
        log(f"{fig.slug}: part of its work started in a background process (pid {proc.pid})")
    return procs


def join_background(
    slug: str, procs: Mapping[str, multiprocessing.process.BaseProcess], log: Callable[[str], None] = print
) -> None:
    """Wait for ``slug``'s background process, if any; a failed one leaves its work to ``compute``."""
    proc = procs.get(slug)
    if proc is None:
        return
    start = time.perf_counter()
    proc.join()
    waited = time.perf_counter() - start
    if proc.exitcode != 0:
        log(f"{slug}: its background process failed (exit code {proc.exitcode}); computing that part here")
    elif waited > 1.0:
        log(f"{slug}: waited {waited:.1f} s for its background process")


def _run_all(
    figures: list[Figure],
    out: Path,
    procs: Mapping[str, multiprocessing.process.BaseProcess],
    *,
    fast: bool,
    explicit: bool,
    gallery: Path | str | None,
    full: bool | None,
    log: Callable[[str], None],
    meta: Mapping[str, Any],
) -> list[Outcome]:
    outcomes = []
    for i, fig in enumerate(figures, 1):
        head = f"[{i}/{len(figures)}] {fig.slug}"
        note = skip_note(fig)
        if note is not None:
            status = "failed" if explicit else "skipped"
            outcomes.append(Outcome(fig.slug, status, 0.0, note))
            log(f"{head}: {status} — {note}")
            continue
        join_background(fig.slug, procs, log)
        log(f"{head}: computing{' (--fast)' if fast else ''} ...")
        res = run_one(
            fig, out, fast=fast, meta=meta, gallery=None if gallery is None else Path(gallery), full=full
        )
        outcomes.append(res)
        if res.status == "ok":
            log(
                f"{head}: ok in {res.seconds:.1f} s (CPU {res.cpu_seconds:.1f} s) -> "
                f"{out / fig.slug}.{{png,pdf,json}}"
            )
        else:
            log(f"{head}: FAILED after {res.seconds:.1f} s\n{res.message.rstrip()}")
    return outcomes


def run(
    figures: Iterable[Figure],
    out: Path | str,
    *,
    fast: bool = False,
    explicit: bool = False,
    gallery: Path | str | None = None,
    full: bool | None = None,
    log: Callable[[str], None] = print,
) -> list[Outcome]:
    """Run ``figures`` in order into ``out``, logging one progress line per figure.

    ``gallery``: a folder that also receives a small PNG per figure (:func:`write_gallery_png`).
    ``full``: passed to figures with ``has_full`` (``True``: their published protocol; ``None``: their
    choice by backend).

    A figure whose optional extra is missing is skipped with a note; it counts as a failure only when
    it was asked for by name (``explicit``).
    """
    figures = list(figures)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    meta = {
        "versions": versions(),
        "git": git_revision(),
        "created_utc": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.argv[0]).name] + sys.argv[1:]),
    }
    total = time.perf_counter()
    procs = start_backgrounds(figures, out, fast=fast, full=full, log=log) if len(figures) > 1 else {}
    try:
        outcomes = _run_all(
            figures, out, procs, fast=fast, explicit=explicit, gallery=gallery, full=full, log=log, meta=meta
        )
    finally:
        for proc in procs.values():
            if proc.is_alive():
                proc.terminate()
                proc.join()
    n_ok = sum(o.status == "ok" for o in outcomes)
    n_skip = sum(o.status == "skipped" for o in outcomes)
    failed = [o.slug for o in outcomes if o.status == "failed"]
    log(
        f"done in {time.perf_counter() - total:.1f} s: {n_ok} written, {n_skip} skipped, "
        f"{len(failed)} failed{(': ' + ', '.join(failed)) if failed else ''}"
    )
    return outcomes
