"""Local float64: linvae computes in float64 without touching the user's global JAX config.

Every public function of :mod:`linvae.numeric` (the names the package exports and the public functions
of its public modules) runs inside :func:`float64`, which enables x64 for the duration of the call only
and widens floating-point array arguments of lower precision to float64. Arrays it returns are float64;
to keep float64 in your own follow-up ``jnp`` code, enable x64 globally
(``jax.config.update("jax_enable_x64", True)``). ``tests/test_float64.py`` calls every one of them in
a process without global x64.

The closures that factories return (β schedules, set points and controllers of
:mod:`~linvae.numeric.schedules`, :func:`~linvae.numeric.flow.make_vector_field`) are the exception:
they compute in the precision of the context that calls them, so that the same controller can drive a
float32 training step. linvae's own entry points call them inside x64.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

import jax
import jax.numpy as jnp
import numpy as np

P = ParamSpec("P")
R = TypeVar("R")


def _x64_context() -> contextlib.AbstractContextManager:
    if hasattr(jax, "enable_x64"):  # jax >= 0.7
        return jax.enable_x64(True)
    from jax.experimental import enable_x64  # older jax

    return enable_x64(True)


def _narrow(x) -> bool:
    """Whether ``x`` is a floating-point array (or NumPy scalar) of less than 64 bits."""
    if not isinstance(x, (jax.Array, np.ndarray, np.generic)):
        return False
    return bool(jnp.issubdtype(x.dtype, jnp.floating)) and x.dtype.itemsize < 8


def _widen(x):
    if isinstance(x, jax.Array):  # also a tracer, when the caller jits linvae
        return x.astype(jnp.float64)
    return np.asarray(x, dtype=np.float64)


def _widen_arguments(args: tuple, kwargs: dict) -> tuple[tuple, dict]:
    """``(args, kwargs)`` with every float16/bfloat16/float32 array leaf as float64; unchanged (the very
    same objects) when there is none, which is the common case."""
    try:
        leaves, treedef = jax.tree_util.tree_flatten((args, kwargs))
    except (TypeError, ValueError):  # e.g. a dict with keys JAX cannot sort: pass it through untouched
        return args, kwargs
    if not any(_narrow(x) for x in leaves):
        return args, kwargs
    return jax.tree_util.tree_unflatten(treedef, [_widen(x) if _narrow(x) else x for x in leaves])


def float64(fn: Callable[P, R]) -> Callable[P, R]:
    """Run ``fn`` with JAX x64 enabled locally and its narrower floating-point array arguments widened
    to float64.

    The context is entered only when x64 is off (globally, or in the caller's context), so nested calls
    and calls made while jit traces linvae's own code cost a flag read and one pass over the arguments.
    Jitted kernels that ``fn`` calls are traced with x64 on; JAX keys its compile cache on the flag, so
    they never reuse an executable traced in float32.
    """

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        if jax.config.jax_enable_x64:
            a, k = _widen_arguments(args, kwargs)
            return fn(*a, **k)
        with _x64_context():
            a, k = _widen_arguments(args, kwargs)
            return fn(*a, **k)

    return wrapper
