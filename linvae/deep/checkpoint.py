"""Atomic checkpoints of array pytrees: ``save(path, tree, meta)`` and ``load(path, like)``.

A checkpoint is one ``.npz`` holding every array leaf of the tree (in ``jax.tree_util`` order) and a
JSON metadata record. It is written to a temporary file in the same folder, flushed, fsynced and
renamed over the target (``os.replace`` is atomic on POSIX), so a run killed at any moment leaves
either the previous checkpoint or the new one, never a torn file. Loading needs a template of the
same structure (``like``) and restores dtypes and shapes exactly, so training resumed from a
checkpoint continues bit-for-bit.
"""

from __future__ import annotations

import json
import os
from typing import Any, TypeVar

import jax
import numpy as np

from linvae._atomic import atomic_write

T = TypeVar("T")


class CheckpointError(RuntimeError):
    """A checkpoint that does not match the structure it is loaded into."""


def save(path: str | os.PathLike[str], tree: Any, meta: dict[str, Any] | None = None) -> None:
    """Write ``tree``'s array leaves and ``meta`` (JSON-serialisable) atomically to ``path``."""
    leaves = [np.asarray(x) for x in jax.tree_util.tree_leaves(tree)]
    arrays = {f"leaf_{i:05d}": leaf for i, leaf in enumerate(leaves)}
    arrays["meta"] = np.frombuffer(json.dumps(meta or {}).encode(), dtype=np.uint8)
    atomic_write(path, lambda f: np.savez(f, **arrays))


def load_meta(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The metadata record of a checkpoint."""
    with np.load(path) as f:
        return json.loads(bytes(f["meta"]).decode())


def load(path: str | os.PathLike[str], like: T) -> tuple[T, dict[str, Any]]:
    """The tree stored at ``path``, in the structure of ``like``, and its metadata.

    Raises:
        CheckpointError: leaf count, shapes or dtypes differ from ``like``.
    """
    leaves, treedef = jax.tree_util.tree_flatten(like)
    with np.load(path) as f:
        meta = json.loads(bytes(f["meta"]).decode())
        stored = [f[f"leaf_{i:05d}"] for i in range(sum(k.startswith("leaf_") for k in f.files))]
    if len(stored) != len(leaves):
        raise CheckpointError(f"{path}: {len(stored)} arrays stored, the template has {len(leaves)}")
    out = []
    for i, (s, t) in enumerate(zip(stored, leaves, strict=True)):
        t = np.asarray(t)
        if s.shape != t.shape or s.dtype != t.dtype:
            raise CheckpointError(
                f"{path}: leaf {i} is {s.dtype}{s.shape}, the template expects {t.dtype}{t.shape}"
            )
        out.append(jax.numpy.asarray(s))
    return jax.tree_util.tree_unflatten(treedef, out), meta
