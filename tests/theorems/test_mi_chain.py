"""T10 mi-chain (D1, λ = 0, β > 1, t ≥ 1), docs/theory.md §3.7: along the alternating map

    max_ij I(x_i; v_j) <= I(X;V) <= I(X;Y) <= ½ tr(K Σ_Y Kᵀ Σ_W) <= ½ ||Σ_Y||_2 ||K_0||_F² β^(-2t),

    I_m <= Σ_j I(X; v_j) <= I(X;V)  (independent factors),
    SAP <= 1 - exp(-2 max_ij I(x_i; v_j)) <= 2 I(X;V),

so SAP_t, I_m,t -> 0. "SAP <= I(X;V)" is false: SAP ≈ 2 I(X;V) as the code collapses (m = s = 1 below).
The continuous-time analogue (MI decaying at the linearised rate under the flow) is
tests/test_flow.py::test_collapse_gain_contracts_and_mi_decays_at_the_linearised_rate.

Assumptions (proofs/mi-chain.md): A1 D1, λ = 0, β > 1, t ≥ 1 (the initial Σ_W need not satisfy Σ_W ⪯ I);
A2 Markov chain V → Y → X with Σ_Y = ΓΣ_VΓᵀ + σ²I and diagonal Σ_V (independent factors). The starts
are not eigen-aligned (B_0 and Σ_W,0 are drawn as full matrices), so the general step is exercised.
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

T = 12
#: (n, m, s): data, latent and factor dimensions. With m = s = 1, SAP = ρ² ≈ 2 I(X;V) once collapsing.
SHAPES = ((6, 3, 2), (3, 1, 1))


@st.composite
def cases(draw):
    n, m, s = draw(st.sampled_from(SHAPES))
    rng = np.random.default_rng(draw(st.integers(0, 2**31 - 1)))
    Sigma_V = np.diag([draw(st.floats(0.1, 1.0)) for _ in range(s)])  # A2: diagonal factor covariance
    Gamma = rng.normal(size=(n, s))
    sigma2 = draw(st.floats(0.01, 1.0))
    beta = draw(st.floats(1.05, 8.0))  # A1
    scale = draw(st.floats(0.1, 3.0))
    B0 = scale * rng.uniform(size=(m, n))
    G = rng.normal(size=(m, m))
    W0 = G @ G.T / m + draw(st.floats(0.01, 2.0)) * np.eye(m)
    return nm.from_factors(Sigma_V, Gamma, sigma2), beta, jnp.asarray(B0), jnp.asarray(W0)


@functools.partial(jax.jit, static_argnums=(4,))
def _run(prob, beta, B0, W0, steps=T):
    def sweep(carry, _):
        B, W = carry
        A, Z = nm.decoder_block(prob.Sigma_Y, B, W)
        B, W = nm.encoder_block(A, Z, beta, 0.0)
        info = nm.information_terms(prob, B, W)
        K = jnp.linalg.solve(W, B)
        quad = 0.5 * jnp.trace(K @ prob.Sigma_Y @ K.T @ W)
        return (B, W), (info, quad, jnp.linalg.eigvalsh(W)[-1])

    _, out = jax.lax.scan(sweep, (B0, W0), None, length=steps)
    return out


def _slack(x):
    return x * (1.0 + IDENTITY.rtol) + IDENTITY.atol


@given(case=cases())
def test_mi_chain(case):
    prob, beta, B0, W0 = case
    info, quad, w_max = _run(prob, beta, B0, W0)
    K0 = np.linalg.solve(np.asarray(W0), np.asarray(B0))
    t = np.arange(1, T + 1)
    envelope = 0.5 * float(np.max(np.asarray(prob.mu))) * float(np.sum(K0**2)) * beta ** (-2.0 * t)
    pairwise = np.asarray(info.pairwise)
    max_pair = np.max(pairwise, axis=(-2, -1))
    mi_xv, mi_xy, quad = np.asarray(info.mi_xv), np.asarray(info.mi_xy), np.asarray(quad)
    sap, i_m = np.asarray(info.sap), np.asarray(info.i_m)
    assert np.all(np.asarray(w_max) <= _slack(1.0)), "Sigma_W <= I after an encoder step"
    assert np.all(max_pair <= _slack(mi_xv)), "max pairwise <= I(X;V)"
    assert np.all(mi_xv <= _slack(mi_xy)), "I(X;V) <= I(X;Y) (data processing)"
    assert np.all(mi_xy <= _slack(quad)), "I(X;Y) <= tr(K Sigma_Y K^T Sigma_W) / 2"
    assert np.all(quad <= _slack(envelope)), "tr(K Sigma_Y K^T Sigma_W) / 2 <= envelope beta^(-2t)"
    # The scores, against the information they are bounded by (not against the envelope).
    assert np.all(i_m <= _slack(mi_xv)), "I_m <= I(X;V) (independent factors)"
    rho2_max = -np.expm1(-2.0 * max_pair)
    assert np.all(sap <= _slack(rho2_max)), "SAP <= max rho^2 = 1 - exp(-2 max pairwise)"
    assert np.all(rho2_max <= _slack(2.0 * mi_xv)), "1 - exp(-2 max pairwise) <= 2 I(X;V)"


def test_mi_chain_sap_is_not_bounded_by_mi():
    """m = s = 1: SAP = ρ² = 1 - e^(-2I) with I = I(x; v) = I(X;V), so SAP / I(X;V) -> 2 as the code
    collapses. The corrected bound holds with equality; the old "SAP <= I(X;V)" fails at every sweep."""
    rng = np.random.default_rng(0)
    prob = nm.from_factors(np.diag([1.0]), rng.normal(size=(3, 1)), 0.2)
    info, _, _ = _run(prob, 2.0, jnp.asarray(0.3 * rng.normal(size=(1, 3))), jnp.eye(1), 6)
    sap, mi_xv, pair = np.asarray(info.sap), np.asarray(info.mi_xv), np.asarray(info.pairwise)[:, 0, 0]
    rho2 = -np.expm1(-2.0 * pair)
    assert np.all(sap <= _slack(rho2)) and np.all(rho2 <= _slack(2.0 * mi_xv))
    assert np.all(sap > 1.9 * mi_xv), "SAP ~ 2 I(X;V): 'SAP <= I(X;V)' is false"
    assert np.all(np.diff(sap) < 0) and sap[-1] < 1e-5
