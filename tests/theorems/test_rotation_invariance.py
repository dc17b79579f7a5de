"""T16 rotation-invariance: loss, map and flow are O(m)-equivariant; I(X;Y), I(X;V) invariant; SAP, I_m not."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from linvae import numeric as nm
from linvae._tolerance import FLOW, IDENTITY, ROUNDOFF
from linvae.numeric import flow as fl
from tests.helpers import assert_close, objective_grad
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


def _velocity(prob, s, beta, lam, cfg):
    """The flow's velocity in the parameters (B, Σ_W, A, Σ_Z): its vector field pushed through the
    coordinate map (Cholesky factors or covariances)."""
    return _velocity_jit(prob.Sigma_Y, tuple(jnp.asarray(x) for x in s[:4]), beta, lam, cfg)


@functools.partial(jax.jit, static_argnames=("cfg",))
def _velocity_jit(Sigma_Y, s, beta, lam, cfg):
    y = fl.to_coordinates(s, cfg)
    dy = fl.make_vector_field(Sigma_Y, cfg)(0.0, y, (beta, lam))
    return jax.jvp(lambda c: fl.from_coordinates(c, cfg), (y,), (dy,))[1]


def _assert_rotated(a, b, R, tol, what):
    """(B, Σ_W, A, Σ_Z)-shaped ``b`` is ``a`` transformed by R."""
    aB, aW, aA, aZ = a
    bB, bW, bA, bZ = b
    assert_close(bB, R @ aB, tol, f"{what}: B -> R B")
    assert_close(bW, R @ aW @ R.T, tol, f"{what}: Sigma_W -> R Sigma_W R^T")
    assert_close(bA, aA @ R.T, tol, f"{what}: A -> A R^T")
    assert_close(bZ, aZ, tol, f"{what}: Sigma_Z invariant")


@given(case=problems(shapes=((4, 2),)), beta=st.floats(0.2, 20.0), lam=st.floats(0.0, 5.0))
def test_flow_is_equivariant(case, beta, lam):
    """The flow's vector field commutes with the O(m) action (A1, A2): the block (natural-gradient) flow's
    velocity, and the loss gradient in the matrices (B, Σ_W, A, Σ_Z), which is the Euclidean flow there.

    The default Euclidean flow on Cholesky factors (FlowConfig()) moves B, A and Σ_Z equivariantly too, but
    not Σ_W: chol(RΣ_WRᵀ) is not R chol(Σ_W), and the lower-triangular projection of the metric picks axes.
    One shape: three vector fields compile per shape.
    """
    prob, m = case.prob, case.m
    s = random_state(prob.n, m, case.seed)
    R = orthogonal(m, case.seed + 2)
    cfg = fl.FlowConfig(metric="block")
    _assert_rotated(
        _velocity(prob, s, beta, lam, cfg),
        _velocity(prob, rotate(s, R), beta, lam, cfg),
        R,
        IDENTITY,
        "block flow velocity",
    )
    _assert_rotated(
        objective_grad(prob, s, beta, lam),
        objective_grad(prob, rotate(s, R), beta, lam),
        R,
        ROUNDOFF,
        "gradient flow velocity",
    )
    cho = fl.FlowConfig()
    v0, v1 = _velocity(prob, s, beta, lam, cho), _velocity(prob, rotate(s, R), beta, lam, cho)
    assert_close(v1[0], R @ v0[0], IDENTITY, "Cholesky flow: B -> R B")
    assert_close(v1[2], v0[2] @ R.T, IDENTITY, "Cholesky flow: A -> A R^T")
    assert_close(v1[3], v0[3], IDENTITY, "Cholesky flow: Sigma_Z invariant")


@settings(max_examples=5)
@given(case=problems(shapes=((4, 2),)), beta=st.floats(1.05, 20.0), lam=st.floats(0.0, 5.0))
def test_flow_trajectory_is_equivariant(case, beta, lam):
    """Integrated for t = 1 from θ and from Rθ, the block flow ends at states related by R (FLOW: the two
    lanes are separate adaptive solves)."""
    prob, m = case.prob, case.m
    s = random_state(prob.n, m, case.seed)
    R = orthogonal(m, case.seed + 2)
    init = [np.stack([np.asarray(a), np.asarray(b)]) for a, b in zip(s[:4], rotate(s, R)[:4], strict=True)]
    sol = fl.integrate(
        prob, beta, lam, tuple(init), t1=1.0, ts=np.array([1.0]), cfg=fl.FlowConfig(metric="block")
    )
    end = [np.asarray(x)[0, 0] for x in sol.final[:4]]
    _assert_rotated([x[0] for x in end], [x[1] for x in end], R, FLOW, "block flow at t = 1")


@given(case=factor_problems())
def test_disentanglement_scores_are_not_invariant(case):
    """Some rotation changes SAP: the linear theory fixes informativeness, not the axes."""
    prob, m = case.prob, case.m
    wf = nm.water_filling(prob, 4.0, 5.0, m)
    base = float(nm.information(prob, wf).sap)
    saps = [float(nm.information(prob, rotate(wf, jnp.asarray(orthogonal(m, k)))).sap) for k in range(8)]
    assert max(abs(x - base) for x in saps) > 1e3 * ROUNDOFF.atol
