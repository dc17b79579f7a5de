"""T4 encoder-block: exact block minimiser; the map never increases the loss; fixed points are stationary."""

import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from linvae import numeric as nm
from linvae._tolerance import ROUNDOFF, STATIONARY
from tests.helpers import assert_stationary
from tests.strategies import lams, problems, random_encoder, random_state

VARIANTS = [nm.Variant(), nm.Variant(encoder="diagonal"), nm.Variant(decoder="fixed", sigma_d2=0.5)]


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: v.label)
@given(case=problems(), beta=st.floats(0.2, 20.0), lam=st.floats(0.0, 5.0))
def test_encoder_block_is_stationary(variant, case, beta, lam):
    prob, m = case.prob, case.m
    s = random_state(prob.n, m, case.seed)
    if variant.decoder == "fixed":
        s = s._replace(Sigma_Z=variant.sigma_d2 * np.eye(prob.n))
    B, W = nm.encoder_block(jnp.asarray(s.A), jnp.asarray(s.Sigma_Z), beta, lam, variant)
    g = nm.gradients(prob, s._replace(B=B, Sigma_W=W), beta, lam, variant)
    assert_stationary((g.B, g.Sigma_W), (B, W), STATIONARY, f"encoder-block gradient ({variant.label})")


@given(case=problems(), beta=st.floats(0.5, 20.0), lam=st.floats(0.0, 5.0))
def test_map_never_increases_the_loss(case, beta, lam):
    """Each half-step minimises its block, so the loss is monotone along the map."""
    prob, m = case.prob, case.m
    B, W = map(jnp.asarray, random_encoder(prob.n, m, case.seed))
    A, Z = nm.decoder_block(prob.Sigma_Y, B, W)
    prev = nm.losses(prob, nm.State(B, W, A, Z, 0, True, 0.0), beta, lam).total
    for _ in range(8):
        B, W = nm.encoder_block(A, Z, beta, lam)
        after_enc = nm.losses(prob, nm.State(B, W, A, Z, 0, True, 0.0), beta, lam).total
        A, Z = nm.decoder_block(prob.Sigma_Y, B, W)
        after_dec = nm.losses(prob, nm.State(B, W, A, Z, 0, True, 0.0), beta, lam).total
        slack = ROUNDOFF.atol + ROUNDOFF.rtol * abs(float(prev))
        assert after_enc <= prev + slack and after_dec <= after_enc + slack
        prev = after_dec


@given(case=problems(), beta=st.floats(1.5, 20.0), lam=lams)
def test_fixed_points_are_stationary(case, beta, lam):
    """A converged run of the map is a stationary point of the loss (autodiff gradient ~ 0)."""
    prob, m = case.prob, case.m
    st_ = nm.alternating(
        prob, beta, lam, init=random_encoder(prob.n, m, case.seed), tol=1e-11, max_sweeps=50_000
    )
    assert bool(st_.converged)
    g = nm.gradients(prob, st_, beta, lam)
    assert_stationary(g, st_[:4], STATIONARY, "gradient at a fixed point of the map")
