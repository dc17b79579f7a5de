"""T7 raw-gain-bound: for t >= 1, Sigma_W,t <= I and ||B_t||_2 <= beta^-t ||K_0||_2; no per-step law for B."""

import jax.numpy as jnp
import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from linvae import numeric as nm
from linvae._tolerance import ROUNDOFF
from tests.strategies import problems, random_encoder


@given(case=problems(), beta=st.floats(1.05, 30.0))
def test_raw_gain_bound(case, beta):
    prob, m = case.prob, case.m
    B, W = map(jnp.asarray, random_encoder(prob.n, m, case.seed))
    K0 = np.linalg.norm(np.linalg.solve(np.asarray(W), np.asarray(B)), 2)
    slack = 1 + ROUNDOFF.rtol
    for t in range(1, 10):
        A, Z = nm.decoder_block(prob.Sigma_Y, B, W)
        B, W = nm.encoder_block(A, Z, beta, 0.0)
        assert float(jnp.linalg.eigvalsh(W)[-1]) <= slack, "Sigma_W,t <= I after an encoder step"
        assert np.linalg.norm(np.asarray(B), 2) <= slack * beta ** (-t) * K0


def test_per_step_raw_gain_contraction_is_false():
    """docs/theory.md §3.5 caution case: scalar, Sigma_Y = 1, beta = 2, b0 = 0.5, w0 = 0.01: |b_1| > |b_0|/beta."""
    prob = nm.from_spectrum([1.0])
    B, W = jnp.array([[0.5]]), jnp.array([[0.01]])
    A, Z = nm.decoder_block(prob.Sigma_Y, B, W)
    B1, W1 = nm.encoder_block(A, Z, 2.0, 0.0)
    assert abs(float(B1[0, 0])) > 0.5 / 2.0
    assert abs(float(B1[0, 0])) > 0.5, "the raw gain even grows on the first sweep"
    # ... while the precision-weighted gain halves exactly.
    assert np.isclose(float(B1[0, 0] / W1[0, 0]), 0.5 * 0.5 / 0.01, rtol=ROUNDOFF.rtol)
