"""Input validation for the numeric module: host-side checks on concrete values.

Every public function validates its arguments before tracing and raises ``ValueError`` naming the
argument and what was expected.
"""

from __future__ import annotations

import numpy as np

#: Relative asymmetry ``||S - S^T||_F / ||S||_F`` accepted for a covariance given by a user: float64
#: matrices built as ``G @ D @ G.T`` are symmetric to ~1e-16; 1e-10 leaves room for products of several.
_SYMMETRY_RTOL = 1e-10


def as_finite_array(name: str, x, ndim: int | None = None) -> np.ndarray:
    """``x`` as a float64 NumPy array, or a ``ValueError`` naming ``name`` if it is not finite."""
    try:
        a = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name} must be a real array; got {type(x).__name__}: {err}") from None
    if ndim is not None and a.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimension(s); got shape {a.shape}")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name} must be finite; it contains NaN or inf")
    return a


def check_spd(name: str, S, size: int | None = None) -> np.ndarray:
    """Validate a symmetric positive-definite matrix; return it as float64 NumPy."""
    S = as_finite_array(name, S, ndim=2)
    if S.shape[0] != S.shape[1]:
        raise ValueError(f"{name} must be square; got shape {S.shape}")
    if size is not None and S.shape[0] != size:
        raise ValueError(f"{name} must have shape ({size}, {size}); got {S.shape}")
    scale = max(np.linalg.norm(S), np.finfo(np.float64).tiny)
    if np.linalg.norm(S - S.T) > _SYMMETRY_RTOL * scale:
        raise ValueError(
            f"{name} must be symmetric; ||S - S^T|| / ||S|| = {np.linalg.norm(S - S.T) / scale:.2e}"
        )
    try:
        np.linalg.cholesky(0.5 * (S + S.T))
    except np.linalg.LinAlgError:
        lo = float(np.linalg.eigvalsh(0.5 * (S + S.T))[0])
        raise ValueError(
            f"{name} must be positive definite (SPD); its smallest eigenvalue is {lo:.3e}"
        ) from None
    return 0.5 * (S + S.T)


def check_positive(name: str, x, *, allow_zero: bool = False) -> float:
    """Validate a finite positive (or non-negative) scalar."""
    a = as_finite_array(name, x)
    if a.ndim != 0:
        raise ValueError(f"{name} must be a scalar; got shape {a.shape}")
    v = float(a)
    if v < 0 or (v == 0 and not allow_zero):
        raise ValueError(f"{name} must be {'>= 0' if allow_zero else '> 0'}; got {v}")
    return v


def check_beta_lam(beta, lam) -> tuple[float, float]:
    """Validate the KL weight (beta > 0) and the L2 weight (lam >= 0) as scalars."""
    return check_positive("beta", beta), check_positive("lam", lam, allow_zero=True)


def check_latent_dim(m, n: int) -> int:
    """Validate the latent dimension ``1 <= m <= n``."""
    if isinstance(m, bool) or int(m) != m or not 1 <= int(m) <= n:
        raise ValueError(f"m (latent dimension) must be an integer in [1, n] = [1, {n}]; got {m}")
    return int(m)


def check_state(st, n: int) -> None:
    """Validate a (possibly batched) state against the data dimension ``n``.

    Shapes ``B (..., m, n)``, ``Sigma_W (..., m, m)``, ``A (..., n, m)``, ``Sigma_Z (..., n, n)``; all finite;
    both covariances SPD. Skipped for traced values (inside ``jit``/``vmap``).
    """
    import jax

    names = ("B", "Sigma_W", "A", "Sigma_Z")
    arrays = st[:4]
    if any(isinstance(x, jax.core.Tracer) for x in arrays):
        return
    B, W, A, Z = (np.asarray(x, dtype=np.float64) for x in arrays)
    if B.ndim < 2 or B.shape[-1] != n:
        raise ValueError(f"state B must have shape (..., m, n) with n = {n}; got {B.shape}")
    lead, m = B.shape[:-2], B.shape[-2]
    expected = {"Sigma_W": lead + (m, m), "A": lead + (n, m), "Sigma_Z": lead + (n, n)}
    for name, x in zip(names[1:], (W, A, Z), strict=True):
        if x.shape != expected[name]:
            raise ValueError(f"state {name} must have shape {expected[name]}; got {x.shape}")
    for name, x in zip(names, (B, W, A, Z), strict=True):
        if not np.all(np.isfinite(x)):
            raise ValueError(f"state {name} must be finite; it contains NaN or inf")
    for name, x in (("Sigma_W", W), ("Sigma_Z", Z)):
        try:
            np.linalg.cholesky(0.5 * (x + np.swapaxes(x, -1, -2)))
        except np.linalg.LinAlgError:
            raise ValueError(f"state {name} must be symmetric positive definite") from None
