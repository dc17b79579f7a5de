"""T3 decoder-block: the decoder block is the unique minimiser over (A, Sigma_Z) for every beta, lam."""

import jax.numpy as jnp
import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from linvae import numeric as nm
from linvae._tolerance import ROUNDOFF, STATIONARY
from tests.helpers import assert_close, assert_stationary
from tests.strategies import problems, random_state


@given(case=problems(), beta=st.floats(0.2, 20.0), lam=st.floats(0.0, 5.0))
def test_decoder_block_is_stationary_for_every_beta_lam(case, beta, lam):
    prob, m = case.prob, case.m
    s = random_state(prob.n, m, case.seed)
    A, Z = nm.decoder_block(prob.Sigma_Y, jnp.asarray(s.B), jnp.asarray(s.Sigma_W))
    g = nm.gradients(prob, s._replace(A=A, Sigma_Z=Z), beta, lam)
    assert_stationary((g.A, g.Sigma_Z), (A, Z), STATIONARY, "decoder-block gradient")


@given(case=problems())
def test_decoder_block_woodbury_forms_agree_and_E_equals_Sigma_Z(case):
    prob, m = case.prob, case.m
    s = random_state(prob.n, m, case.seed)
    B, W, Sy = map(np.asarray, (s.B, s.Sigma_W, prob.Sigma_Y))
    A, Z = map(np.asarray, nm.decoder_block(prob.Sigma_Y, jnp.asarray(B), jnp.asarray(W)))
    Zw = np.linalg.inv(np.linalg.inv(Sy) + B.T @ np.linalg.solve(W, B))
    assert_close(Z, Zw, ROUNDOFF, "Sigma_Z: Sigma_Y - A B Sigma_Y vs (Sigma_Y^-1 + B^T Sigma_W^-1 B)^-1")
    assert_close(A, Zw @ B.T @ np.linalg.inv(W), ROUNDOFF, "A = Sigma_Z B^T Sigma_W^-1")
    E = nm.losses(prob, s._replace(A=A, Sigma_Z=Z), beta=1.0)  # noqa: F841  (validates the state)
    Sx = B @ Sy @ B.T + W
    E = Sy - A @ B @ Sy - Sy @ B.T @ A.T + A @ Sx @ A.T
    assert_close(E, Z, ROUNDOFF, "E = Sigma_Z at the decoder block")


@given(case=problems(), beta=st.floats(0.2, 20.0), lam=st.floats(0.0, 5.0), seed=st.integers(0, 2**16))
def test_decoder_block_is_the_minimum(case, beta, lam, seed):
    """Any perturbation of (A, Sigma_Z) that keeps Sigma_Z SPD does not decrease the loss."""
    prob, m = case.prob, case.m
    s = random_state(prob.n, m, case.seed)
    A, Z = nm.decoder_block(prob.Sigma_Y, jnp.asarray(s.B), jnp.asarray(s.Sigma_W))
    best = nm.losses(prob, s._replace(A=A, Sigma_Z=Z), beta, lam).total
    rng = np.random.default_rng(seed)
    for scale in (1e-3, 1e-1):
        dA = scale * rng.standard_normal(A.shape)
        dZ = scale * rng.standard_normal(Z.shape)
        Zp = np.asarray(Z) + 0.5 * (dZ + dZ.T) * float(jnp.linalg.eigvalsh(Z)[0])
        other = nm.losses(prob, s._replace(A=A + dA, Sigma_Z=Zp), beta, lam).total
        assert other >= best - ROUNDOFF.atol - ROUNDOFF.rtol * abs(best)
