"""Norm-wise comparisons with named tolerances (see linvae/_tolerance.py)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from linvae._tolerance import Tol


def assert_finite(*arrays) -> None:
    for a in arrays:
        a = np.asarray(a)
        assert np.all(np.isfinite(a)), f"non-finite values: {a}"


def assert_close(actual, expected, tol: Tol, what: str = "") -> None:
    """``||actual - expected|| <= atol + rtol * ||expected||`` (Frobenius norm for matrices).

    Norm-wise, not elementwise: Gram and covariance matrices are compared as matrices.
    """
    a = np.asarray(actual, dtype=np.float64)
    e = np.asarray(expected, dtype=np.float64)
    assert a.shape == e.shape, f"{what}: shape {a.shape} != {e.shape}"
    assert_finite(a, e)
    err = float(np.linalg.norm(a - e))
    bound = tol.atol + tol.rtol * float(np.linalg.norm(e))
    assert err <= bound, f"{what}: ||a - e|| = {err:.3e} > {bound:.3e} ({tol.why})\na={a}\ne={e}"


def assert_stationary(grads, scale, tol: Tol, what: str = "gradient") -> None:
    """``||grad|| <= atol + rtol * (1 + ||theta||)`` over a tuple of gradient blocks."""
    g = np.sqrt(sum(float(np.sum(np.asarray(x) ** 2)) for x in grads))
    s = np.sqrt(sum(float(np.sum(np.asarray(x) ** 2)) for x in scale))
    bound = tol.atol + tol.rtol * (1.0 + s)
    assert np.isfinite(g) and g <= bound, f"{what}: ||grad|| = {g:.3e} > {bound:.3e} ({tol.why})"


def objective_grad(prob, s, beta, lam):
    """Autodiff gradient of L_lambda-beta at a state, w.r.t. (B, Sigma_W, A, Sigma_Z); jitted once per shape."""
    return _objective_grad(*(jnp.asarray(x) for x in s[:4]), prob.Sigma_Y, beta, lam)


def _make_objective_grad():
    from linvae import numeric as nm

    return jax.jit(jax.grad(nm.objective, argnums=(0, 1, 2, 3)))


_objective_grad = _make_objective_grad()
