"""T11 collapse-stability: the collapsed point is a fixed point of the flow and the map for every (β, λ),
linearly stable for both iff β > 1 + 2λμ_1, with per-direction sweep factor (1 + 2λμ_i)/β (docs/theory.md §3.8).

Assumptions (proofs/collapse-stability.md): A1 D1 model, Σ_Y SPD with distinct eigenvalues;
A2 β > 0, λ ≥ 0; A3 β away from the thresholds 1 + 2λμ_i (at equality a direction is flat).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from hypothesis import assume, given
from hypothesis import strategies as st
from jax.flatten_util import ravel_pytree

import linvae.numeric as nm
from linvae._tolerance import IDENTITY, ROUNDOFF
from linvae.numeric import flow as fl
from tests.helpers import assert_close

N, M = 4, 2


@st.composite
def cases(draw):
    mu = np.sort(np.array([draw(st.floats(0.1, 6.0)) for _ in range(N)]))[::-1]
    assume(np.all(np.diff(mu[::-1]) > 1e-2 * mu[0]))  # A1
    q, _ = np.linalg.qr(np.random.default_rng(draw(st.integers(0, 2**31 - 1))).normal(size=(N, N)))
    beta = draw(st.floats(0.2, 12.0))
    lam = draw(st.one_of(st.just(0.0), st.floats(0.0, 2.0)))
    thresholds = 1.0 + 2.0 * lam * mu
    assume(np.min(np.abs(beta - thresholds)) > 1e-2 * beta)  # A3
    return nm.from_spectrum(mu, basis=q), beta, lam


def _tril_indices(y: fl.Coordinates) -> np.ndarray:
    """Indices of the free coordinates (B, tril L_W, A, tril L_Z) in the flattened state."""
    masks = fl.Coordinates(
        np.ones(y.B.shape, bool), np.tril(np.ones(y.W.shape, bool)), np.ones(y.A.shape, bool),
        np.tril(np.ones(y.Z.shape, bool)),
    )
    flat, _ = ravel_pytree(jax.tree_util.tree_map(jnp.asarray, masks))
    return np.flatnonzero(np.asarray(flat))


@functools.cache
def _flow_jacobian(metric: str):
    cfg = fl.FlowConfig(metric=metric)

    @jax.jit
    def run(prob, beta, lam):
        col = nm.collapsed(prob, M)
        y = fl.to_coordinates(col, cfg)
        flat, unravel = ravel_pytree(y)
        f = fl.make_vector_field(prob.Sigma_Y, cfg)
        g = lambda x: ravel_pytree(f(0.0, unravel(x), (beta, lam)))[0]  # noqa: E731
        return g(flat), jax.jacfwd(g)(flat)

    return cfg, run


@functools.cache
def _map_jacobian():
    @jax.jit
    def run(prob, beta, lam):
        def sweep(x):
            B, W = x
            A, Z = nm.decoder_block(prob.Sigma_Y, B, W)
            return nm.encoder_block(A, Z, beta, lam)

        x0 = (jnp.zeros((M, N)), jnp.eye(M))
        flat, unravel = ravel_pytree(x0)
        g = lambda v: ravel_pytree(sweep(unravel(v)))[0]  # noqa: E731
        return g(flat) - flat, jax.jacfwd(g)(flat)

    return run


@given(case=cases())
def test_collapse_stability_flow(case):
    """Flow side: a fixed point; all eigenvalues negative iff β > β_c; (B, A) spectrum = 2×2 blocks."""
    prob, beta, lam = case
    for metric in ("euclidean", "block"):
        cfg, run = _flow_jacobian(metric)
        f0, J = run(prob, beta, lam)
        assert_close(f0, np.zeros_like(f0), ROUNDOFF, "field at the collapsed point")
        y = fl.to_coordinates(nm.collapsed(prob, M), cfg)
        # Free coordinates: Cholesky factors (euclidean) or symmetric matrices (block) are lower triangles.
        idx = _tril_indices(y)
        Js = np.asarray(J)[np.ix_(idx, idx)]
        ev = np.linalg.eigvals(Js)
        stable = bool(np.max(ev.real) < 0)
        assert stable == (beta > fl.collapse_threshold(prob, lam)), (metric, beta, np.max(ev.real))
        # The (B, A) coordinates: eigenvalues = those of the per-direction 2x2 blocks, m times each.
        nB = M * N
        ba = np.r_[np.arange(nB), nB + M * M + np.arange(N * M)]
        got = np.sort(np.linalg.eigvals(np.asarray(J)[np.ix_(ba, ba)]).real)
        mu = np.asarray(prob.mu)
        nu = 1.0 / mu + 2.0 * lam
        if metric == "euclidean":
            blocks = [np.array([[-beta * m_, n_ * m_], [n_ * m_, -n_]]) for m_, n_ in zip(mu, nu, strict=True)]
        else:
            blocks = [np.array([[-1.0, n_ / beta], [m_, -1.0]]) for m_, n_ in zip(mu, nu, strict=True)]
        exp = np.sort(np.concatenate([np.linalg.eigvals(b).real for b in blocks for _ in range(M)]))
        assert_close(got, exp, IDENTITY, f"{metric} (B, A) spectrum")
        r = np.asarray(fl.linearised_rates(prob, beta, lam, cfg))
        assert_close(np.sort(r), np.sort([np.max(np.linalg.eigvals(b).real) for b in blocks]), IDENTITY,
                     "linearised_rates")


@given(case=cases())
def test_collapse_stability_map(case):
    """Map side: a fixed point; sweep factors (1 + 2λμ_i)/β (m times each); stable iff β > β_c."""
    prob, beta, lam = case
    step, J = _map_jacobian()(prob, beta, lam)
    assert_close(step, np.zeros_like(step), ROUNDOFF, "sweep at the collapsed point")
    ev = np.linalg.eigvals(np.asarray(J))
    mags = np.sort(np.abs(ev))[::-1]
    mu = np.asarray(prob.mu)
    factors = np.sort(np.repeat((1.0 + 2.0 * lam * mu) / beta, M))[::-1]
    assert_close(mags[: N * M], factors, IDENTITY, "sweep factors")
    assert_close(mags[N * M :], np.zeros(mags.size - N * M), IDENTITY, "Sigma_W block")
    assert (mags[0] < 1.0) == (beta > fl.collapse_threshold(prob, lam))
    assert (mags[0] < 1.0) == (beta > 1.0 + 2.0 * lam * mu[0])
