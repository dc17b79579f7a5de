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


def assert_psd(H, tol: Tol, what: str = "Hessian") -> float:
    """``min eig(H) >= -(atol + rtol ||H||_2)`` (Weyl: roundoff in H moves each eigenvalue by at most ||dH||_2).

    Returns the smallest eigenvalue.
    """
    H = np.asarray(H, dtype=np.float64)
    assert_finite(H)
    ev = np.linalg.eigvalsh(0.5 * (H + H.T))
    bound = tol.atol + tol.rtol * float(np.max(np.abs(ev)))
    assert ev[0] >= -bound, f"{what}: min eig {ev[0]:.3e} < -{bound:.3e} ({tol.why})"
    return float(ev[0])


def assert_pd(H, tol: Tol, what: str = "Hessian") -> float:
    """``min eig(H) > atol + rtol ||H||_2``: positive definite beyond roundoff (a strict local minimum)."""
    H = np.asarray(H, dtype=np.float64)
    assert_finite(H)
    ev = np.linalg.eigvalsh(0.5 * (H + H.T))
    bound = tol.atol + tol.rtol * float(np.max(np.abs(ev)))
    assert ev[0] > bound, f"{what}: min eig {ev[0]:.3e} <= {bound:.3e} ({tol.why})"
    return float(ev[0])


def negative_curvature(H, tol: Tol) -> bool:
    """Whether ``H`` has an eigenvalue below ``-(atol + rtol ||H||_2)``: a direction that strictly lowers the loss."""
    ev = np.linalg.eigvalsh(0.5 * (np.asarray(H, dtype=np.float64) + np.asarray(H, dtype=np.float64).T))
    return bool(ev[0] < -(tol.atol + tol.rtol * float(np.max(np.abs(ev)))))


#: The parameter blocks of L_lambda-beta that a Hessian or a perturbation may move (the rest stay fixed).
ALL_BLOCKS = ("B", "Sigma_W", "A", "Sigma_Z")


def objective_hessian(prob, s, beta, lam, *, blocks=ALL_BLOCKS, diagonal_W: bool = False) -> np.ndarray:
    r"""Autodiff Hessian of :math:`\mathcal L_{\lambda\beta}` at a state along the free ``blocks``.

    Coordinates: ``dB``, ``dA`` entrywise; a covariance moves by the symmetric matrix whose upper
    triangle is its block of coordinates (no spurious zero modes). ``diagonal_W`` keeps only the diagonal
    of ``Sigma_W`` (E2); leaving ``"Sigma_Z"`` out fixes the decoder covariance (D3). Every variant is a
    principal submatrix of the one full Hessian, so there is one compilation per shape.
    """
    args = tuple(jnp.asarray(x, jnp.float64) for x in s[:4])
    H = np.asarray(_hessian(*args, prob.Sigma_Y, beta, lam))
    m, n = args[0].shape
    tri = lambda k: [i == j for i, j in zip(*np.triu_indices(k), strict=True)]  # noqa: E731
    keep = {
        "B": [True] * (m * n),
        "Sigma_W": tri(m) if diagonal_W else [True] * (m * (m + 1) // 2),
        "A": [True] * (n * m),
        "Sigma_Z": [True] * (n * (n + 1) // 2),
    }
    idx = np.flatnonzero(np.concatenate([np.asarray(keep[k]) & (k in blocks) for k in ALL_BLOCKS]))
    return H[np.ix_(idx, idx)]


@jax.jit
def _hessian(B, W, A, Z, Sigma_Y, beta, lam):
    from linvae import numeric as nm

    m, n = B.shape
    cuts = np.cumsum([m * n, m * (m + 1) // 2, n * m])

    def cov(S, d):
        U = jnp.zeros(S.shape, d.dtype).at[np.triu_indices(S.shape[0])].set(d)
        return S + U + U.T - jnp.diag(jnp.diagonal(U))

    def f(x):
        dB, dW, dA, dZ = jnp.split(x, cuts)
        return nm.objective(
            B + dB.reshape(B.shape), cov(W, dW), A + dA.reshape(A.shape), cov(Z, dZ), Sigma_Y, beta, lam
        )

    return jax.hessian(f)(jnp.zeros(int(cuts[-1]) + n * (n + 1) // 2, jnp.float64))


def _unit_sym(rng, k: int) -> np.ndarray:
    S = rng.standard_normal((k, k))
    S = 0.5 * (S + S.T)
    return S / np.max(np.abs(np.linalg.eigvalsh(S)))


def _unit(rng, shape) -> np.ndarray:
    G = rng.standard_normal(shape)
    return G / np.linalg.norm(G, 2)


def _sqrtm_spd(S) -> np.ndarray:
    w, V = np.linalg.eigh(np.asarray(S, dtype=np.float64))
    return (V * np.sqrt(np.clip(w, 0.0, None))[None, :]) @ V.T


def perturbation(prob, s, seed: int, *, blocks=ALL_BLOCKS, diagonal_W: bool = False):
    r"""A random direction ``d`` at a state, in the state's natural units, with a spectral norm 1 per block.

    ``dB = G Sigma_Y^{-1/2}``, ``dA = Sigma_Y^{1/2} G``, ``dSigma = Sigma^{1/2} S Sigma^{1/2}`` with ``||G||_2 =
    ||S||_2 = 1`` (S symmetric; diagonal for E2), so ``s + eps d`` stays feasible (SPD) for every ``|eps| < 1``
    and ``eps`` is a relative size. Blocks not listed get a zero direction. Returns ``(dB, dW, dA, dZ)``.
    """
    rng = np.random.default_rng(seed)
    B, W, A, Z = (np.asarray(x, dtype=np.float64) for x in s[:4])
    m, n = B.shape
    Sy = np.asarray(prob.Sigma_Y, dtype=np.float64)
    Sy_half = _sqrtm_spd(Sy)
    d = {k: np.zeros_like(v) for k, v in zip(ALL_BLOCKS, (B, W, A, Z), strict=True)}
    if "B" in blocks:
        d["B"] = _unit(rng, (m, n)) @ np.linalg.inv(Sy_half)
    if "Sigma_W" in blocks:
        S = (
            np.diag(rng.choice([-1.0, 1.0], m) * rng.uniform(0.5, 1.0, m))
            if diagonal_W
            else _unit_sym(rng, m)
        )
        Wh = _sqrtm_spd(W)
        d["Sigma_W"] = Wh @ S @ Wh
    if "A" in blocks:
        d["A"] = Sy_half @ _unit(rng, (n, m))
    if "Sigma_Z" in blocks:
        Zh = _sqrtm_spd(Z)
        d["Sigma_Z"] = Zh @ _unit_sym(rng, n) @ Zh
    return tuple(d[k] for k in ALL_BLOCKS)


def moved(s, d, eps: float):
    """The state ``s + eps d`` (``d`` from :func:`perturbation`), symmetrised covariances."""
    out = [np.asarray(x, dtype=np.float64) + eps * dx for x, dx in zip(s[:4], d, strict=True)]
    out[1], out[3] = 0.5 * (out[1] + out[1].T), 0.5 * (out[3] + out[3].T)
    return s._replace(B=out[0], Sigma_W=out[1], A=out[2], Sigma_Z=out[3])
