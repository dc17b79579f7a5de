"""Local float64: linvae computes in float64 without touching the user's global JAX config.

Every public function of :mod:`linvae.numeric` runs inside :func:`float64`, which enables x64 for the
duration of the call only. Arrays it returns are float64; to keep float64 in your own follow-up ``jnp``
code, enable x64 globally (``jax.config.update("jax_enable_x64", True)``).
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

import jax

P = ParamSpec("P")
R = TypeVar("R")


def _x64_context() -> contextlib.AbstractContextManager:
    if hasattr(jax, "enable_x64"):  # jax >= 0.7
        return jax.enable_x64(True)
    from jax.experimental import enable_x64  # older jax

    return enable_x64(True)


def float64(fn: Callable[P, R]) -> Callable[P, R]:
    """Run ``fn`` with JAX x64 enabled locally (a no-op if it is already enabled globally)."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        if jax.config.jax_enable_x64:
            return fn(*args, **kwargs)
        with _x64_context():
            return fn(*args, **kwargs)

    return wrapper
