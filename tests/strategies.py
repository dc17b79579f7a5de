"""Hypothesis strategies that encode the theorems' hypotheses.

Covariances are built from drawn eigenvalues and a drawn seed (not from raw matrices): they shrink
well and can be made to satisfy a theorem's gap assumptions. Shapes come from a short list, because
every new shape recompiles the jitted kernels.

Two regimes:

* :func:`problems` -- small shapes (:data:`SHAPES`), eigen-gaps of at least ``min_ratio`` (default 1.15);
  ``near_degenerate=True`` lets consecutive eigenvalues come within a relative 1e-6..1e-2 of each other
  (for statements with no gap assumption).
* :func:`published_problems` -- the published regime of Vu, Wan & Wei (docs/theory.md §2.3):
  (n, m) = :data:`PUBLISHED_SHAPE` = (50, 10), s = 5 signal eigenvalues (some near-degenerate) at least
  45x above a noise floor sigma^2 of multiplicity n - s. One shape, so one compilation per kernel.
"""

from __future__ import annotations

from typing import NamedTuple

import hypothesis.strategies as st
import numpy as np

from linvae import numeric as nm

#: (n, m) pairs drawn by the strategies: data dimension and latent dimension.
SHAPES: tuple[tuple[int, int], ...] = ((4, 2), (6, 3))
#: The shape of the tests that take an autodiff Hessian of the loss (one compilation, ~6 s of CPU, per
#: shape and test module; (6, 3) costs twice that).
HESSIAN_SHAPES: tuple[tuple[int, int], ...] = ((4, 2),)
#: The published (n, m) (n = 50 instance, 10 latents).
PUBLISHED_SHAPE: tuple[int, int] = (50, 10)
#: Signal factors of the published regime and the least signal-to-floor eigenvalue ratio drawn.
PUBLISHED_FACTORS = 5
PUBLISHED_MIN_SNR = 45.0


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


#: Consecutive eigenvalue ratios of a near-degenerate spectrum: 1 + 10^u, u in [-6, -2].
near_degenerate_ratios = st.floats(-6.0, -2.0).map(lambda u: 1.0 + 10.0**u)


@st.composite
def spectra(
    draw, n: int, *, min_ratio: float = 1.15, lo: float = 0.1, hi: float = 50.0, near_degenerate: bool = False
) -> np.ndarray:
    """Distinct eigenvalues, descending, consecutive ratios >= ``min_ratio`` (a relative gap).

    With ``near_degenerate`` each ratio is, with even odds, instead ``1 + 10^u``, u in [-6, -2].
    """
    top = draw(st.floats(lo * min_ratio ** (n - 1), hi))
    ratio = st.floats(min_ratio, 3.0)
    if near_degenerate:
        ratio = st.one_of(ratio, near_degenerate_ratios)
    ratios = draw(st.lists(ratio, min_size=n - 1, max_size=n - 1))
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
def problems(draw, *, min_ratio: float = 1.15, shapes=SHAPES, near_degenerate: bool = False) -> Case:
    """A problem with a drawn spectrum (distinct eigenvalues), a random eigenbasis and noise.

    One factor per eigendirection (``from_spectrum``); sigma2 is a drawn fraction of the smallest eigenvalue.
    ``near_degenerate``: see :func:`spectra`.
    """
    n, m = draw(st.sampled_from(shapes))
    mu = draw(spectra(n, min_ratio=min_ratio, near_degenerate=near_degenerate))
    seed = draw(st.integers(0, 2**31 - 1))
    frac = draw(st.floats(0.0, 0.9))
    prob = nm.from_spectrum(mu, sigma2=frac * float(mu.min()), basis=orthogonal(n, seed))
    return Case(prob, m, seed)


@st.composite
def published_problems(draw) -> Case:
    """The published regime: (n, m) = (50, 10), 5 signal eigenvalues over a noise floor of multiplicity 45.

    The floor sigma^2 is drawn in [0.01, 0.1] (published: 0.05); the weakest signal eigenvalue is 45..220
    times the floor (published: 217 for n = 50); consecutive signal ratios are drawn from [1.15, 2] or are
    near-degenerate (1 + 10^u, u in [-6, -2]). The floor eigenvalues are exactly equal (a factor model), so
    latents 6..10 face a degenerate eigenspace, as in the published instance.
    """
    n, m = PUBLISHED_SHAPE
    s = PUBLISHED_FACTORS
    sigma2 = draw(st.floats(0.01, 0.1))
    weakest = sigma2 * draw(st.floats(PUBLISHED_MIN_SNR, 220.0))
    ratios = draw(
        st.lists(st.one_of(st.floats(1.15, 2.0), near_degenerate_ratios), min_size=s - 1, max_size=s - 1)
    )
    signal = weakest * np.cumprod([1.0, *ratios])[::-1]
    seed = draw(st.integers(0, 2**31 - 1))
    mu = np.concatenate([signal, np.full(n - s, sigma2)])
    return Case(nm.from_spectrum(mu, sigma2=sigma2, basis=orthogonal(n, seed)), m, seed)


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
