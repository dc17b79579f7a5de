"""Hypothesis strategies that encode the theorems' hypotheses.

Covariances are built from drawn eigenvalues and a drawn seed (not from raw matrices): they shrink
well and can be made to satisfy a theorem's gap assumptions. Shapes come from a short list, because
every new shape recompiles the jitted kernels.
"""

from __future__ import annotations

from typing import NamedTuple

import hypothesis.strategies as st
import numpy as np

from linvae import numeric as nm

#: (n, m) pairs drawn by the strategies: data dimension and latent dimension.
SHAPES: tuple[tuple[int, int], ...] = ((4, 2), (6, 3))


def orthogonal(n: int, seed: int) -> np.ndarray:
    """A Haar-random orthogonal matrix from a seed (QR of a Gaussian matrix, sign-fixed)."""
    rng = np.random.default_rng(seed)
    Q, R = np.linalg.qr(rng.standard_normal((n, n)))
    return Q * np.sign(np.diag(R))[None, :]


def spd(n: int, seed: int, lo: float = 0.2, hi: float = 3.0) -> np.ndarray:
    """A random SPD matrix with eigenvalues in [lo, hi]."""
    rng = np.random.default_rng(seed + 1)
    Q = orthogonal(n, seed)
    S = (Q * rng.uniform(lo, hi, n)[None, :]) @ Q.T
    return 0.5 * (S + S.T)


@st.composite
def spectra(draw, n: int, *, min_ratio: float = 1.15, lo: float = 0.1, hi: float = 50.0) -> np.ndarray:
    """Distinct eigenvalues, descending, consecutive ratios >= ``min_ratio`` (a relative gap)."""
    top = draw(st.floats(lo * min_ratio ** (n - 1), hi))
    ratios = draw(st.lists(st.floats(min_ratio, 3.0), min_size=n - 1, max_size=n - 1))
    mu = [top]
    for r in ratios:
        mu.append(mu[-1] / r)
    mu = np.array(mu)
    if mu[-1] < lo:
        mu = mu * (lo / mu[-1])
    return mu


class Case(NamedTuple):
    prob: nm.Problem
    m: int
    seed: int


@st.composite
def problems(draw, *, min_ratio: float = 1.15, shapes=SHAPES) -> Case:
    """A problem with a drawn spectrum (distinct eigenvalues), a random eigenbasis and noise.

    One factor per eigendirection (``from_spectrum``); sigma2 is a drawn fraction of the smallest eigenvalue.
    """
    n, m = draw(st.sampled_from(shapes))
    mu = draw(spectra(n, min_ratio=min_ratio))
    seed = draw(st.integers(0, 2**31 - 1))
    frac = draw(st.floats(0.0, 0.9))
    prob = nm.from_spectrum(mu, sigma2=frac * float(mu.min()), basis=orthogonal(n, seed))
    return Case(prob, m, seed)


@st.composite
def factor_problems(draw) -> Case:
    """A problem in the authors' form: diagonal Sigma_V (s = 2 factors), Gaussian Gamma, sigma2 > 0."""
    n, m = draw(st.sampled_from(SHAPES))
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    Sigma_V = np.diag(rng.uniform(0.1, 1.0, 2))
    Gamma = rng.standard_normal((n, 2))
    sigma2 = draw(st.floats(0.01, 1.0))
    return Case(nm.from_factors(Sigma_V, Gamma, sigma2), m, seed)


def random_state(n: int, m: int, seed: int, *, scale: float = 1.0) -> nm.State:
    """An arbitrary feasible point: Gaussian B and A, SPD Sigma_W and Sigma_Z."""
    rng = np.random.default_rng(seed + 7)
    return nm.State(
        B=scale * rng.standard_normal((m, n)),
        Sigma_W=spd(m, seed + 11, 0.1, 2.0),
        A=scale * rng.standard_normal((n, m)),
        Sigma_Z=spd(n, seed + 13, 0.1, 2.0),
        steps=np.int32(0),
        converged=np.bool_(True),
        delta=np.float64(0.0),
    )


def random_encoder(n: int, m: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A random initial encoder with B != 0 (the collapsed point is a fixed point for every start B = 0)."""
    rng = np.random.default_rng(seed + 3)
    return rng.standard_normal((m, n)), spd(m, seed + 5, 0.05, 3.0)


betas = st.floats(1.05, 20.0)
lams = st.floats(0.05, 10.0)
