"""T16 rotation-invariance: loss, map and flow are O(m)-equivariant; I(X;Y), I(X;V) invariant; SAP, I_m not."""

import jax.numpy as jnp
from hypothesis import given
from hypothesis import strategies as st

from linvae import numeric as nm
from linvae._tolerance import IDENTITY, ROUNDOFF
from tests.helpers import assert_close
from tests.strategies import factor_problems, orthogonal, problems, random_state


def rotate(s, R):
    return s._replace(B=R @ s.B, Sigma_W=R @ s.Sigma_W @ R.T, A=s.A @ R.T)


@given(case=problems(), beta=st.floats(0.2, 20.0), lam=st.floats(0.0, 5.0))
def test_loss_and_information_are_invariant(case, beta, lam):
    prob, m = case.prob, case.m
    s = random_state(prob.n, m, case.seed)
    R = orthogonal(m, case.seed + 2)
    L0, L1 = nm.losses(prob, s, beta, lam), nm.losses(prob, rotate(s, R), beta, lam)
    for name in L0._fields:
        assert_close(getattr(L1, name), getattr(L0, name), ROUNDOFF, name)
    I0, I1 = nm.information(prob, s), nm.information(prob, rotate(s, R))
    assert_close(I1.mi_xy, I0.mi_xy, ROUNDOFF, "I(X;Y)")
    assert_close(I1.mi_xv, I0.mi_xv, ROUNDOFF, "I(X;V)")


@given(case=problems(), beta=st.floats(0.2, 20.0), lam=st.floats(0.0, 5.0))
def test_map_is_equivariant(case, beta, lam):
    prob, m = case.prob, case.m
    s = random_state(prob.n, m, case.seed)
    R = jnp.asarray(orthogonal(m, case.seed + 2))
    A, Z = nm.decoder_block(prob.Sigma_Y, s.B, s.Sigma_W)
    B1, W1 = nm.encoder_block(A, Z, beta, lam)
    Ar, Zr = nm.decoder_block(prob.Sigma_Y, R @ s.B, R @ s.Sigma_W @ R.T)
    B1r, W1r = nm.encoder_block(Ar, Zr, beta, lam)
    assert_close(Ar, A @ R.T, IDENTITY, "A -> A R^T")
    assert_close(Zr, Z, IDENTITY, "Sigma_Z invariant")
    assert_close(B1r, R @ B1, IDENTITY, "B -> R B")
    assert_close(W1r, R @ W1 @ R.T, IDENTITY, "Sigma_W -> R Sigma_W R^T")


@given(case=factor_problems())
def test_disentanglement_scores_are_not_invariant(case):
    """Some rotation changes SAP: the linear theory fixes informativeness, not the axes."""
    prob, m = case.prob, case.m
    wf = nm.water_filling(prob, 4.0, 5.0, m)
    base = float(nm.information(prob, wf).sap)
    saps = [float(nm.information(prob, rotate(wf, jnp.asarray(orthogonal(m, k)))).sap) for k in range(8)]
    assert max(abs(x - base) for x in saps) > 1e3 * ROUNDOFF.atol
