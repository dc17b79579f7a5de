"""T10 mi-chain (D1, λ = 0, β > 1, t ≥ 1), docs/theory.md §3.7: along the alternating map

    max_ij I(x_i; v_j) <= I(X;V) <= I(X;Y) <= ½ tr(K Σ_Y Kᵀ Σ_W) <= ½ ||Σ_Y||_2 ||K_0||_F² β^(-2t),

and SAP_t, I_m,t -> 0 at the same rate. Its continuous-time analogue (MI decaying at the linearised
rate under the flow) is tests/test_flow.py::test_collapse_gain_contracts_and_mi_decays_at_the_linearised_rate.

Assumptions (proofs/mi-chain.md): A1 D1 model with Σ_Y = ΓΣ_VΓᵀ + σ²I, diagonal Σ_V; A2 λ = 0, β > 1;
A3 t ≥ 1 (the initial Σ_W need not satisfy Σ_W ⪯ I).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from hypothesis import given
from hypothesis import strategies as st

import linvae.numeric as nm
from linvae._tolerance import IDENTITY

N, M, S, T = 6, 3, 2, 12


@st.composite
def cases(draw):
    rng = np.random.default_rng(draw(st.integers(0, 2**31 - 1)))
    Sigma_V = np.diag([draw(st.floats(0.1, 1.0)) for _ in range(S)])  # A1: diagonal factor covariance
    Gamma = rng.normal(size=(N, S))
    sigma2 = draw(st.floats(0.01, 1.0))
    beta = draw(st.floats(1.05, 8.0))  # A2
    scale = draw(st.floats(0.1, 3.0))
    B0 = scale * rng.uniform(size=(M, N))
    G = rng.normal(size=(M, M))
    W0 = G @ G.T / M + draw(st.floats(0.01, 2.0)) * np.eye(M)
    return nm.from_factors(Sigma_V, Gamma, sigma2), beta, jnp.asarray(B0), jnp.asarray(W0)


@functools.partial(jax.jit, static_argnums=())
def _run(prob, beta, B0, W0):
    def sweep(carry, _):
        B, W = carry
        A, Z = nm.decoder_block(prob.Sigma_Y, B, W)
        B, W = nm.encoder_block(A, Z, beta, 0.0)
        info = nm.information_terms(prob, B, W)
        K = jnp.linalg.solve(W, B)
        quad = 0.5 * jnp.trace(K @ prob.Sigma_Y @ K.T @ W)
        return (B, W), (info, quad, jnp.linalg.eigvalsh(W)[-1])

    _, out = jax.lax.scan(sweep, (B0, W0), None, length=T)
    return out


@given(case=cases())
def test_mi_chain(case):
    prob, beta, B0, W0 = case
    info, quad, w_max = _run(prob, beta, B0, W0)
    K0 = np.linalg.solve(np.asarray(W0), np.asarray(B0))
    t = np.arange(1, T + 1)
    envelope = 0.5 * float(np.max(np.asarray(prob.mu))) * float(np.sum(K0**2)) * beta ** (-2.0 * t)
    slack = lambda x: x * (1.0 + IDENTITY.rtol) + IDENTITY.atol  # noqa: E731
    max_pair = np.max(np.asarray(info.pairwise), axis=(-2, -1))
    mi_xv, mi_xy, quad = np.asarray(info.mi_xv), np.asarray(info.mi_xy), np.asarray(quad)
    assert np.all(np.asarray(w_max) <= slack(1.0)), "Sigma_W <= I after an encoder step"
    assert np.all(max_pair <= slack(mi_xv)), "max pairwise <= I(X;V)"
    assert np.all(mi_xv <= slack(mi_xy)), "I(X;V) <= I(X;Y) (data processing)"
    assert np.all(mi_xy <= slack(quad)), "I(X;Y) <= tr(K Sigma_Y K^T Sigma_W) / 2"
    assert np.all(quad <= slack(envelope)), "tr(K Sigma_Y K^T Sigma_W) / 2 <= envelope beta^(-2t)"
    # SAP <= max rho^2 = 1 - exp(-2 max pairwise) <= 2 max pairwise; I_m <= min(m, s) max pairwise.
    assert np.all(np.asarray(info.sap) <= slack(2.0 * envelope))
    assert np.all(np.asarray(info.i_m) <= slack(min(M, S) * envelope))
