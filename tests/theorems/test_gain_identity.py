"""T5 gain-identity: K_{t+1} = (K_t + 2 lam A_t^T) / beta along the map, for every beta > 0, lam >= 0."""

import jax.numpy as jnp
import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from linvae import numeric as nm
from linvae._tolerance import IDENTITY
from tests.helpers import assert_close
from tests.strategies import problems, random_encoder


@given(case=problems(), beta=st.floats(0.3, 30.0), lam=st.floats(0.0, 8.0))
def test_gain_identity_along_the_map(case, beta, lam):
    prob, m = case.prob, case.m
    B, W = map(jnp.asarray, random_encoder(prob.n, m, case.seed))
    for _ in range(6):
        K = np.linalg.solve(np.asarray(W), np.asarray(B))
        A, Z = nm.decoder_block(prob.Sigma_Y, B, W)
        # The generic encoder block (an (n, n) solve of Sigma_Z), not the map's Woodbury shortcut.
        B, W = nm.encoder_block(A, Z, beta, lam)
        K_next = np.linalg.solve(np.asarray(W), np.asarray(B))
        assert_close(K_next, (K + 2 * lam * np.asarray(A).T) / beta, IDENTITY, "K_{t+1}")


@given(case=problems(), beta=st.floats(1.05, 30.0), lam=st.floats(0.05, 8.0))
def test_fixed_point_gain_relation(case, beta, lam):
    """At a fixed point (beta - 1) K = 2 lam A^T: checked on the closed-form water-filling point."""
    prob, m = case.prob, case.m
    wf = nm.water_filling(prob, beta, lam, m)
    K = np.linalg.solve(np.asarray(wf.Sigma_W), np.asarray(wf.B))
    assert_close((beta - 1) * K, 2 * lam * np.asarray(wf.A).T, IDENTITY, "(beta-1) K = 2 lam A^T")
