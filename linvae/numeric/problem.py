r"""The linear-Gaussian data model :math:`Y = \Gamma V + \tilde Z` and its constructors.

:math:`V \sim \mathcal N(0, \Sigma_V)` (s factors), :math:`\tilde Z \sim \mathcal N(0, \sigma^2 I_n)`, so
:math:`\Sigma_Y = \Gamma\Sigma_V\Gamma^\top + \sigma^2 I_n` with eigenpairs :math:`(\mu_i, u_i)`, sorted
descending (docs/theory.md §1).

Constructors (all validate their input and raise ``ValueError`` naming the bad argument):

* :func:`from_factors` — explicit :math:`\Sigma_V, \Gamma, \sigma^2`;
* :func:`from_spectrum` — a prescribed spectrum of :math:`\Sigma_Y` (and optionally its eigenbasis);
* :func:`spiked` — the spiked-covariance model of Ichikawa & Hukushima (docs/theory.md §6);
* :func:`authors_instance` — the published seed-42 instance of Vu, Wan & Wei (docs/theory.md §2.3).
"""

from __future__ import annotations

import dataclasses
import functools
from typing import NamedTuple

import jax.numpy as jnp
import numpy as np
import scipy.linalg
from jax import Array

from linvae.numeric._precision import float64
from linvae.numeric._validation import as_finite_array, check_positive, check_spd


class Problem(NamedTuple):
    r"""A linear-Gaussian data model with its derived covariance and eigendecomposition.

    Attributes:
        Sigma_V: factor covariance :math:`\Sigma_V`, shape (s, s).
        Gamma: mixing matrix :math:`\Gamma`, shape (n, s).
        sigma2: data-noise variance :math:`\sigma^2` (a variance, never a standard deviation).
        Sigma_Y: data covariance :math:`\Gamma\Sigma_V\Gamma^\top + \sigma^2 I`, shape (n, n).
        mu: eigenvalues of :math:`\Sigma_Y`, descending, shape (n,).
        U: matching orthonormal eigenvectors as columns, shape (n, n).
    """

    Sigma_V: Array
    Gamma: Array
    sigma2: Array
    Sigma_Y: Array
    mu: Array
    U: Array

    @property
    def n(self) -> int:
        """Data dimension."""
        return self.Gamma.shape[-2]

    @property
    def s(self) -> int:
        """Number of factors."""
        return self.Gamma.shape[-1]


# ---------------------------------------------------------------------------------------------------
# Constructors
# ---------------------------------------------------------------------------------------------------


def _assemble(Sigma_V: np.ndarray, Gamma: np.ndarray, sigma2: float, mu=None, U=None) -> Problem:
    Sigma_Y = Gamma @ Sigma_V @ Gamma.T + sigma2 * np.eye(Gamma.shape[0])
    Sigma_Y = 0.5 * (Sigma_Y + Sigma_Y.T)
    if mu is None:
        evals, evecs = np.linalg.eigh(Sigma_Y)
        mu, U = evals[::-1].copy(), evecs[:, ::-1].copy()
    if mu[-1] <= 0:
        raise ValueError(
            f"Sigma_Y = Gamma Sigma_V Gamma^T + sigma2 I must be positive definite; smallest eigenvalue "
            f"{mu[-1]:.3e} (use sigma2 > 0 or a full-rank Gamma)"
        )
    f = lambda a: jnp.asarray(a, dtype=jnp.float64)  # noqa: E731
    return Problem(f(Sigma_V), f(Gamma), f(sigma2), f(Sigma_Y), f(mu), f(U))


@float64
def from_factors(Sigma_V, Gamma, sigma2) -> Problem:
    r"""The problem :math:`Y = \Gamma V + \tilde Z` with explicit factor covariance, mixing and noise.

    Args:
        Sigma_V: SPD factor covariance, shape (s, s).
        Gamma: mixing matrix, shape (n, s).
        sigma2: noise variance :math:`\sigma^2 \ge 0`; with 0, :math:`\Gamma\Sigma_V\Gamma^\top` must be SPD.

    Raises:
        ValueError: non-finite, non-symmetric or non-SPD input, shape mismatch, negative variance.
    """
    Sigma_V = check_spd("Sigma_V", Sigma_V)
    Gamma = as_finite_array("Gamma", Gamma, ndim=2)
    if Gamma.shape[1] != Sigma_V.shape[0]:
        raise ValueError(
            f"Gamma must have shape (n, s) with s = {Sigma_V.shape[0]} columns to match Sigma_V; "
            f"got {Gamma.shape}"
        )
    sigma2 = check_positive("sigma2", sigma2, allow_zero=True)
    return _assemble(Sigma_V, Gamma, sigma2)


@float64
def from_spectrum(eigenvalues, *, sigma2: float = 0.0, basis=None) -> Problem:
    r"""A problem whose data covariance has a prescribed spectrum.

    :math:`\Sigma_Y = U\,\mathrm{diag}(\mu)\,U^\top` with one factor per eigendirection:
    :math:`\Sigma_V = I_n`, :math:`\Gamma = U\,\mathrm{diag}(\sqrt{\mu - \sigma^2})`, so that factor j is the
    (noise-free part of the) j-th principal component. The spectrum is stored exactly as given (sorted),
    not recomputed from :math:`\Sigma_Y`, so closed forms evaluated on it carry no eigensolver error.

    Args:
        eigenvalues: positive eigenvalues, any order, shape (n,).
        sigma2: noise variance, ``0 <= sigma2 <= min(eigenvalues)``.
        basis: orthogonal (n, n) eigenbasis; the identity if omitted.
    """
    mu = as_finite_array("eigenvalues", eigenvalues, ndim=1)
    if mu.size == 0 or np.any(mu <= 0):
        raise ValueError(f"eigenvalues must be a non-empty vector of positive numbers; got {mu}")
    order = np.argsort(-mu, kind="stable")
    mu = mu[order]
    n = mu.size
    sigma2 = check_positive("sigma2", sigma2, allow_zero=True)
    if sigma2 > mu[-1]:
        raise ValueError(f"sigma2 must be <= the smallest eigenvalue {mu[-1]}; got {sigma2}")
    if basis is None:
        U = np.eye(n)
    else:
        U = as_finite_array("basis", basis, ndim=2)
        if U.shape != (n, n):
            raise ValueError(f"basis must have shape ({n}, {n}); got {U.shape}")
        if np.linalg.norm(U.T @ U - np.eye(n)) > 1e3 * n * np.finfo(np.float64).eps:
            raise ValueError("basis must be orthogonal (U^T U = I)")
    U = U[:, order]
    Gamma = U * np.sqrt(mu - sigma2)[None, :]
    return _assemble(np.eye(n), Gamma, sigma2, mu=mu, U=U)


@float64
def spiked(N: int, *, rho: float = 1.0, eta: float = 1.0, M_star: int = 1, teacher=None) -> Problem:
    r"""The spiked-covariance model of Ichikawa & Hukushima (docs/theory.md §6).

    :math:`x = \sqrt{\rho/N}\,W_\star c + \sqrt\eta\,\xi`, :math:`c \sim \mathcal N(0, I_{M^\ast})`, with
    :math:`W_\star^\top W_\star / N = I_{M^\ast}`; i.e. :math:`\Gamma = \sqrt{\rho/N}\,W_\star`,
    :math:`\Sigma_V = I`, :math:`\sigma^2 = \eta`. Signal eigenvalue :math:`\Lambda = \rho + \eta`, bulk :math:`\eta`.

    Args:
        N: data dimension.
        rho: signal strength :math:`\rho > 0`.
        eta: noise variance :math:`\eta > 0`.
        M_star: number of teacher directions.
        teacher: :math:`W_\star`, shape (N, M_star), with :math:`W_\star^\top W_\star = N I`. Default: the
            all-ones column (the official code) for M_star = 1, else the orthonormalised
            polynomial columns :math:`1, t, t^2, \dots` on an even grid, scaled by :math:`\sqrt N`.
    """
    if int(N) != N or N < 1:
        raise ValueError(f"N must be a positive integer; got {N}")
    if int(M_star) != M_star or not 1 <= M_star <= N:
        raise ValueError(f"M_star must be an integer in [1, N]; got {M_star}")
    rho = check_positive("rho", rho)
    eta = check_positive("eta", eta)
    if teacher is None:
        if M_star == 1:
            W = np.ones((N, 1))
        else:
            Q, _ = np.linalg.qr(np.vander(np.linspace(-1.0, 1.0, N), M_star, increasing=True))
            W = Q * np.sqrt(N)
    else:
        W = as_finite_array("teacher", teacher, ndim=2)
        if W.shape != (N, M_star):
            raise ValueError(f"teacher must have shape ({N}, {M_star}); got {W.shape}")
    if np.linalg.norm(W.T @ W / N - np.eye(M_star)) > 1e-8:
        raise ValueError("teacher must satisfy W*^T W* / N = I")
    # The spectrum is known exactly (ρ + η on the teacher directions, η on their complement), so it is
    # stored as such rather than recomputed by an O(N³) eigensolver: a complete QR of the orthonormal
    # teacher columns gives the complement, and its first columns are the teacher directions themselves.
    Q, R = np.linalg.qr(W / np.sqrt(N), mode="complete")
    Q[:, :M_star] *= np.sign(np.diag(R))[None, :]
    mu = np.concatenate([np.full(M_star, rho + eta), np.full(N - M_star, eta)])
    return _assemble(np.eye(M_star), np.sqrt(rho / N) * W, eta, mu=mu, U=Q)


# ---------------------------------------------------------------------------------------------------
# The published instance: replay of the legacy global NumPy stream (seed 42)
# ---------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, kw_only=True)
class AuthorsProtocol:
    """Constants of the published linear experiment (docs/theory.md §2.3)."""

    sizes: tuple[int, ...] = (50, 100)
    m: int = 10
    s: int = 5
    sigma2: float = 0.05
    seed: int = 42
    num_inits: int = 50
    betas: tuple[float, ...] = (1.0, 4.0, 8.0, 16.0, 32.0)
    lams: tuple[float, ...] = (0.0, 2.0, 4.0, 6.0, 8.0)
    #: Fixed-point method: cap on half-steps (decoder or encoder updates) and Frobenius stopping tolerance.
    max_half_steps: tuple[tuple[int, int], ...] = ((50, 50_000), (100, 100_000))
    tol: tuple[tuple[int, float], ...] = ((50, 1e-6), (100, 1e-5))


AUTHORS = AuthorsProtocol()


@float64
def spd_matrix_numpy(rng: np.random.RandomState, dim: int) -> np.ndarray:
    """scikit-learn's ``make_spd_matrix(dim)`` drawn from ``rng``: same draws, same SVD, same result.

    ``A ~ U[0,1)^{d x d}``; ``U S V^T = svd(A^T A)``; return ``U (1 + diag(u)) V^T`` with ``u ~ U[0,1)^d``.
    """
    A = rng.uniform(size=(dim, dim))
    U, _, Vt = scipy.linalg.svd(A.T @ A, check_finite=False)
    return U @ (1.0 + np.diag(rng.uniform(size=dim))) @ Vt


@dataclasses.dataclass(frozen=True)
class _Replay:
    Sigma_V: np.ndarray
    Gamma: np.ndarray
    B0: np.ndarray  # (num_inits, m, n), fixed-point initial encoders
    Sigma_W0: np.ndarray  # (num_inits, m, m)
    adamw_Sigma_Z0: np.ndarray  # (num_inits, n, n); A0, B0 of AdamW come from torch and are not replayed
    adamw_Sigma_W0: np.ndarray  # (num_inits, m, m)


@functools.cache
def _replay(n: int) -> _Replay:
    """Replay the published script's global NumPy stream up to and including size ``n``.

    Order (one ``np.random.seed(42)`` for the whole script): for each n in (50, 100): Sigma_V uniforms,
    Gamma normals, 50 fixed-point inits (B ~ U[0,1)^{m x n}, make_spd_matrix(m)), 50 AdamW inits
    (make_spd_matrix(n), make_spd_matrix(m); their A, B come from torch and do not touch NumPy).
    """
    p = AUTHORS
    rng = np.random.RandomState(p.seed)
    for size in p.sizes:
        Sigma_V = np.diag(rng.uniform(0.1, 1.0, p.s))
        Gamma = rng.randn(size, p.s)
        B0, W0 = [], []
        for _ in range(p.num_inits):
            B0.append(rng.rand(p.m, size))
            W0.append(spd_matrix_numpy(rng, p.m))
        Z1, W1 = [], []
        for _ in range(p.num_inits):
            Z1.append(spd_matrix_numpy(rng, size))
            W1.append(spd_matrix_numpy(rng, p.m))
        if size == n:
            return _Replay(Sigma_V, Gamma, np.stack(B0), np.stack(W0), np.stack(Z1), np.stack(W1))
    raise ValueError(f"n must be one of the published sizes {p.sizes}; got {n}")


@float64
def authors_instance(n: int = 50) -> Problem:
    r"""The published instance of Vu, Wan & Wei (seed 42, docs/theory.md §2.3), replayed bit-exactly.

    :math:`s = 5`, :math:`\sigma^2 = 0.05`, :math:`\Sigma_V = \mathrm{diag}(U(0.1, 1)^5)`,
    :math:`\Gamma_{ij} \sim \mathcal N(0, 1)`, drawn from NumPy's legacy global generator seeded with 42.

    What is replayable: for n = 50 the first draws of the stream (Sigma_V, then Gamma); for n = 100
    the same stream continued through everything the published script draws in between (50 fixed-point
    initialisations and the NumPy half of 50 AdamW initialisations), so Sigma_V and Gamma are
    bit-identical to the script's. The fixed-point initialisations are returned by
    :func:`linvae.numeric.authors_inits`; their Sigma_W goes through LAPACK's SVD, so it is equal to the
    script's to rounding (bit-equal on the same LAPACK build). Not replayable: the AdamW initial A and
    B, which the script draws from torch's generator (``torch.manual_seed(42 + i)``).

    Args:
        n: 50 or 100.
    """
    r = _replay(n)
    return _assemble(r.Sigma_V, r.Gamma, AUTHORS.sigma2)


@float64
def authors_inits(n: int = 50) -> tuple[Array, Array]:
    """The 50 published fixed-point initialisations ``(B0, Sigma_W0)`` for size ``n``.

    Returns:
        ``B0`` of shape (50, 10, n) and ``Sigma_W0`` of shape (50, 10, 10), float64.
    """
    r = _replay(n)
    return jnp.asarray(r.B0), jnp.asarray(r.Sigma_W0)
