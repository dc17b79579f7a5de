"""Run records: the code revision, atomic JSON writes, and the layout of a runs folder.

A runs folder holds one experiment (one :class:`~linvae.deep.config.DeepConfig` grid)::

    <runs>/config.json                      # training config, data source, image fingerprint; a mismatch is refused
    <runs>/evaluation.json                  # evaluation settings (sizes, bins, each metric's settings); ditto
    <runs>/invocations/*.json               # wall time, CPU time and load average of every command that ran here
    <runs>/summary.csv, summary.md          # the result table of the sweep (one row per phase, beta, lambda)
    <runs>/beta/b<β>_s<seed>/model.npz      # β-VAE phase: parameters + controller state (+ record)
    <runs>/beta/b<β>_s<seed>/train.json     # window means, history, status, config, provenance, revision
    <runs>/lambda/b<β>_l<λ>_s<seed>/...     # λβ phase, same files
    <runs>/<phase>/.../eval.json            # metrics of that model
    <runs>/<phase>/.../checkpoint.npz       # the model's in-progress checkpoint (linvae.deep.runs)
    <runs>/<phase>/.../claim.json           # the worker training it now (linvae.deep.runs.Claims)
    <runs>/aggregate.json                   # what the figures were last drawn from
"""

from __future__ import annotations

import contextlib
import datetime
import functools
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

from linvae._atomic import atomic_write


class Member(NamedTuple):
    """One model of a sweep: its KL weight, L2 weight and seed."""

    beta: float
    lam: float
    seed: int

    def to_dict(self) -> dict[str, float | int]:
        return {"beta": self.beta, "lambda": self.lam, "seed": self.seed}


def _num(v: float) -> str:
    return f"{v:g}"


def member_dir(runs: Path, phase: str, member: Member) -> Path:
    """Folder of one model: ``beta/b<β>_s<seed>`` (phase ``"beta"``) or ``lambda/b<β>_l<λ>_s<seed>``."""
    if phase == "beta":
        return Path(runs) / "beta" / f"b{_num(member.beta)}_s{member.seed}"
    if phase == "lambda":
        return Path(runs) / "lambda" / f"b{_num(member.beta)}_l{_num(member.lam)}_s{member.seed}"
    raise ValueError(f"phase must be 'beta' or 'lambda'; got {phase!r}")


@functools.cache
def code_revision() -> dict[str, Any]:
    """Git commit of the linvae checkout and whether its working tree has changes (read-only git)."""
    root = Path(__file__).resolve().parents[2]

    def git(*args: str) -> str | None:
        try:
            out = subprocess.run(
                ["git", *args], cwd=root, capture_output=True, text=True, timeout=20, check=True
            )
        except (OSError, subprocess.SubprocessError):
            return None
        return out.stdout.strip()

    commit = git("rev-parse", "HEAD")
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "dirty": None if status is None else bool(status)}


def write_json(path: str | os.PathLike[str], record: dict[str, Any]) -> None:
    """Write ``record`` as indented JSON, atomically (temporary file + rename)."""
    atomic_write(path, lambda f: json.dump(record, f, indent=1, allow_nan=False), mode="w")


def read_json(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A JSON record."""
    with open(path) as f:
        return json.load(f)


def finite_or_none(x: float) -> float | None:
    """``x`` as a float, or ``None`` if it is not finite (JSON has no NaN)."""
    x = float(x)
    return x if x == x and abs(x) != float("inf") else None


def check_or_record(
    path: str | os.PathLike[str], mine: dict[str, Any], what: str, names: dict[str, str] | None = None
) -> None:
    """Compare ``mine`` with the record at ``path``: ``ValueError`` naming every differing key (stored
    and requested values) if they differ; write ``mine`` if there is no record yet, and add the keys
    the record lacks (a folder written by an older linvae). Never removes or rewrites anything else.

    Args:
        path: the JSON record (``<runs>/config.json``, ``<runs>/evaluation.json``).
        mine: what this run would record.
        what: what the record describes, for the message.
        names: readable names of some keys, for the message.
    """
    path = Path(path)
    names = names or {}
    if not path.exists():
        write_json(path, mine)
        return
    theirs = read_json(path)
    diff = {k: (theirs[k], v) for k, v in mine.items() if k in theirs and theirs[k] != v}
    if diff:
        lines = "; ".join(f"{names.get(k, k)}: stored {a!r}, requested {b!r}" for k, (a, b) in diff.items())
        raise ValueError(
            f"{path.parent} holds runs of a different configuration ({what}: {lines}); nothing was"
            " changed there. Use the stored settings, or choose another --runs folder"
        )
    missing = {k: v for k, v in mine.items() if k not in theirs}
    if missing:
        write_json(path, {**theirs, **missing})


#: Seconds between load-average samples while a command runs.
LOAD_SAMPLE_S = 15.0


@contextlib.contextmanager
def measured(what: str) -> Iterator[dict[str, Any]]:
    """Measure a command: wall and CPU time (all threads of this process) and the machine's 1-minute
    load average, sampled every :data:`LOAD_SAMPLE_S` s (``uptime``'s first number; on a quiet
    machine it stays near the cores this process keeps busy). Yields a dict filled in on exit.

    The CPU time is what a quiet machine would also spend; ``cpu_s / cores`` is a lower bound of the
    wall time there, ``cpu_s`` an upper bound (one core busy throughout).
    """
    record: dict[str, Any] = {
        "what": what,
        "command": sys.argv,
        "started": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "cores": os.cpu_count(),
        "load_start": list(os.getloadavg()),
    }
    samples: list[float] = []
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(LOAD_SAMPLE_S):
            samples.append(os.getloadavg()[0])

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    t0, c0 = time.perf_counter(), time.process_time()
    try:
        yield record
    finally:
        stop.set()
        thread.join()
        record.update(
            wall_s=time.perf_counter() - t0,
            cpu_s=time.process_time() - c0,
            load_end=list(os.getloadavg()),
            load_mean=float(sum(samples) / len(samples)) if samples else os.getloadavg()[0],
            load_max=max(samples) if samples else os.getloadavg()[0],
            load_samples=len(samples),
        )


def append_invocation(runs: str | os.PathLike[str], record: dict[str, Any]) -> list[dict[str, Any]]:
    """Add ``record`` (from :func:`measured`) to the runs folder's invocations; returns all of them,
    oldest first.

    Each invocation is its own file, ``<runs>/invocations/<start>-<host>-<pid>-<n>.json``, so workers
    that finish at the same moment never overwrite each other's record (a single read-modify-write
    file would lose one); a legacy ``<runs>/invocations.json`` is read as well.
    """
    import socket
    import uuid

    folder = Path(runs) / "invocations"
    stamp = record.get("started", "").replace(":", "")
    write_json(folder / f"{stamp}-{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}.json", record)
    legacy = Path(runs) / "invocations.json"
    items = read_json(legacy)["invocations"] if legacy.exists() else []
    items += [read_json(p) for p in sorted(folder.glob("*.json"))]
    return sorted(items, key=lambda r: r.get("started", ""))
