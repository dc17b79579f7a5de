r"""The one place where sympy meets jax/numpy: numeric callables and LaTeX from symbolic derivations.

The symbolic module (:mod:`linvae.symbolic`) never imports jax and the numeric module
(:mod:`linvae.numeric`) never imports sympy, so the two stay independent derivations; tests compare
them through this module. jax is imported lazily, only when a callable is built for it.

    >>> from linvae import bridge
    >>> from linvae.symbolic import derive_water_filling
    >>> from linvae.symbolic._symbols import beta, lam, mu
    >>> f = bridge.lambdify(derive_water_filling()["w"], (mu, beta, lam), modules="numpy")
    >>> float(f(4.0, 3.0, 0.5))
    0.5
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal

import sympy as sp

from linvae.symbolic._symbols import latex as _latex

Modules = Literal["jax", "numpy", "mpmath"]


def lambdify(
    expr: sp.Basic | Sequence[sp.Basic] | dict[str, sp.Basic],
    args: Sequence[sp.Symbol],
    *,
    modules: Modules = "jax",
) -> Callable:
    """A numeric callable of ``expr`` with positional ``args`` (``sympy.lambdify`` with jax or numpy).

    Args:
        expr: a sympy expression, a matrix, a sequence of them, or a dict ``name -> expr`` (the callable
            then returns a dict with the same keys).
        args: the symbols, in call order.
        modules: ``"jax"`` (jax.numpy; jit/grad-able), ``"numpy"`` or ``"mpmath"`` (arbitrary precision).

    Returns:
        A function of ``len(args)`` positional arguments.
    """
    if modules not in ("jax", "numpy", "mpmath"):
        raise ValueError(f"modules must be 'jax', 'numpy' or 'mpmath'; got {modules!r}")
    if modules == "jax":
        import jax.numpy as jnp

        mods: list = [jnp]
    else:
        mods = [modules]
    if isinstance(expr, dict):
        keys = list(expr)
        f = sp.lambdify(list(args), [expr[k] for k in keys], modules=mods)
        return lambda *xs: dict(zip(keys, f(*xs), strict=True))
    return sp.lambdify(list(args), expr, modules=mods)


def evaluate(expr: sp.Basic, values: dict[sp.Symbol, object]) -> sp.Basic:
    """Exact substitution (use ``sympy.Rational`` values to keep the result exact)."""
    return sp.sympify(expr).subs(values)


def latex(expr: sp.Basic) -> str:
    """LaTeX of a sympy object with the project's symbol names (λ, σ², σ_d², tilde m, ...)."""
    return _latex(expr)


def latex_equation(lhs: str, expr: sp.Basic) -> str:
    """A display equation ``$$ lhs = <expr> $$`` for Markdown."""
    return f"$$\n{lhs} = {latex(expr)}\n$$\n"
