"""Run records: the code revision, atomic JSON writes, and the layout of a runs folder.

A runs folder holds one experiment (one :class:`~linvae.deep.config.DeepConfig` grid)::

    <runs>/config.json                      # the training-relevant config; a mismatch is refused
    <runs>/beta/b<β>_s<seed>/model.npz      # β-VAE phase: parameters + controller state (+ record)
    <runs>/beta/b<β>_s<seed>/train.json     # window means, history, status, config, provenance, revision
    <runs>/lambda/b<β>_l<λ>_s<seed>/...     # λβ phase, same files
    <runs>/<phase>/.../eval.json            # metrics of that model
    <runs>/groups/<phase>-<hash>.npz        # in-progress checkpoint of a vmapped group
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
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
