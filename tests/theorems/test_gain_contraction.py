"""T6 gain-contraction: with lam = 0, K_t = beta^-t K_0 and every singular value scales by beta^-t."""

import jax.numpy as jnp
import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from linvae import numeric as nm
from linvae._tolerance import IDENTITY
from tests.helpers import assert_close
from tests.strategies import problems, random_encoder


@given(case=problems(), beta=st.floats(1.05, 30.0), steps=st.integers(1, 12))
def test_gain_contraction_exact(case, beta, steps):
    prob, m = case.prob, case.m
    B0, W0 = random_encoder(prob.n, m, case.seed)
    K0 = np.linalg.solve(W0, B0)
    B, W = jnp.asarray(B0), jnp.asarray(W0)
    for _ in range(steps):
        A, Z = nm.decoder_block(prob.Sigma_Y, B, W)
        B, W = nm.encoder_block(A, Z, beta, 0.0)
    Kt = np.linalg.solve(np.asarray(W), np.asarray(B))
    assert_close(Kt, beta ** (-steps) * K0, IDENTITY, "K_t = beta^-t K_0")
    sv = np.linalg.svd(Kt, compute_uv=False)
    assert_close(sv, beta ** (-steps) * np.linalg.svd(K0, compute_uv=False), IDENTITY, "singular values")


@given(case=problems(), beta=st.floats(1.05, 30.0))
def test_spectral_norm_ratio_is_one_over_beta(case, beta):
    prob, m = case.prob, case.m
    B, W = map(jnp.asarray, random_encoder(prob.n, m, case.seed))
    norms = []
    for _ in range(5):
        norms.append(np.linalg.norm(np.linalg.solve(np.asarray(W), np.asarray(B)), 2))
        A, Z = nm.decoder_block(prob.Sigma_Y, B, W)
        B, W = nm.encoder_block(A, Z, beta, 0.0)
    ratios = np.array(norms[1:]) / np.array(norms[:-1])
    assert_close(ratios, np.full_like(ratios, 1 / beta), IDENTITY, "||K_{t+1}|| / ||K_t||")
