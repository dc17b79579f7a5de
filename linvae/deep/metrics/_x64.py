"""The fast (JAX) metric paths compute in float64, to give the reference's numbers."""

from __future__ import annotations

import jax


def require_x64() -> None:
    """Raise unless ``jax_enable_x64`` is on (float32 would move histogram edges and MI sums)."""
    if not jax.config.read("jax_enable_x64"):
        raise RuntimeError(
            "the fast metric paths compute in float64 to match the reference; enable it with"
            " jax.config.update('jax_enable_x64', True) or run inside `with jax.enable_x64(True):`"
        )
