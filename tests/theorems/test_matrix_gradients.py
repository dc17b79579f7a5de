"""T2 matrix-gradients: the closed-form gradients of docs/theory.md §3.1 equal autodiff and finite differences."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from linvae import numeric as nm
from linvae._tolerance import FINITE_DIFF, ROUNDOFF
from tests.helpers import assert_close
from tests.strategies import problems, random_state

VARIANTS = [
    nm.Variant(),
    nm.Variant(encoder="diagonal"),
    nm.Variant(decoder="isotropic"),
    nm.Variant(decoder="fixed", sigma_d2=0.7),
    nm.Variant(decoder="fixed", sigma_d2=0.7, encoder="diagonal"),
]


def _state_for(variant, s):
    Z = s.Sigma_Z
    n = Z.shape[0]
    if variant.decoder == "isotropic":
        Z = 0.8 * np.eye(n)
    elif variant.decoder == "fixed":
        Z = variant.sigma_d2 * np.eye(n)
    W = np.diag(np.diag(s.Sigma_W)) if variant.encoder == "diagonal" else s.Sigma_W
    return s._replace(Sigma_Z=Z, Sigma_W=W)


def _autodiff(prob, s, beta, lam, variant):
    f = lambda B, W, A, Z: nm.objective(B, W, A, Z, prob.Sigma_Y, beta, lam)  # noqa: E731
    gB, gW, gA, gZ = jax.grad(f, argnums=(0, 1, 2, 3))(*(jnp.asarray(x) for x in s[:4]))
    # jax.grad of a function of the symmetrised matrix is the symmetric gradient already.
    if variant.encoder == "diagonal":
        gW = jnp.diag(jnp.diagonal(gW))
    if variant.decoder == "isotropic":
        gZ = jnp.trace(gZ)  # d/d sigma_d2 of L(sigma_d2 I)
    elif variant.decoder == "fixed":
        gZ = jnp.zeros(())
    return gB, gW, gA, gZ


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: v.label)
@given(case=problems(), beta=st.floats(0.2, 20.0), lam=st.floats(0.0, 5.0))
def test_matrix_gradients_closed_form_equals_autodiff(variant, case, beta, lam):
    prob, m = case.prob, case.m
    s = _state_for(variant, random_state(prob.n, m, case.seed))
    closed = nm.gradients(prob, s, beta, lam, variant)
    auto = _autodiff(prob, s, beta, lam, variant)
    for name, c, a in zip(closed._fields, closed, auto, strict=True):
        assert_close(c, a, ROUNDOFF, f"d/d{name} ({variant.label})")


@given(case=problems(), beta=st.floats(0.2, 20.0), lam=st.floats(0.0, 5.0), seed=st.integers(0, 2**16))
def test_matrix_gradients_match_finite_differences(case, beta, lam, seed):
    """Directional derivative along a random symmetric direction, central differences."""
    prob, m = case.prob, case.m
    s = random_state(prob.n, m, case.seed)
    g = nm.gradients(prob, s, beta, lam)
    rng = np.random.default_rng(seed)
    dirs = [rng.standard_normal(np.shape(x)) for x in s[:4]]
    dirs[1] = 0.5 * (dirs[1] + dirs[1].T)
    dirs[3] = 0.5 * (dirs[3] + dirs[3].T)
    h = 1e-5
    names = ("B", "Sigma_W", "A", "Sigma_Z")

    def f(t: float) -> float:
        moved = {k: v + t * d for k, v, d in zip(names, s[:4], dirs, strict=True)}
        return float(nm.losses(prob, s._replace(**moved), beta, lam).total)

    fd = (f(h) - f(-h)) / (2 * h)
    analytic = sum(float(np.sum(np.asarray(gi) * d)) for gi, d in zip(g, dirs, strict=True))
    assert_close(fd, analytic, FINITE_DIFF, "directional derivative")


@given(case=problems(), beta=st.floats(0.2, 20.0), lam=st.floats(0.0, 5.0))
def test_cholesky_chain_rule(case, beta, lam):
    """d/dL of L(LL^T + eps I) = tril(2 G L) with G the symmetric gradient."""
    prob, m = case.prob, case.m
    s = random_state(prob.n, m, case.seed)
    eps = 5e-5
    Lw = jnp.linalg.cholesky(jnp.asarray(s.Sigma_W))
    Lz = jnp.linalg.cholesky(jnp.asarray(s.Sigma_Z))

    def f(Lw, Lz):
        W = Lw @ Lw.T + eps * jnp.eye(m)
        Z = Lz @ Lz.T + eps * jnp.eye(prob.n)
        return nm.objective(jnp.asarray(s.B), W, jnp.asarray(s.A), Z, prob.Sigma_Y, beta, lam)

    gLw, gLz = jax.grad(f, argnums=(0, 1))(Lw, Lz)
    st_eps = s._replace(Sigma_W=Lw @ Lw.T + eps * jnp.eye(m), Sigma_Z=Lz @ Lz.T + eps * jnp.eye(prob.n))
    g = nm.gradients(prob, st_eps, beta, lam)
    assert_close(jnp.tril(gLw), nm.cholesky_gradient(g.Sigma_W, Lw), ROUNDOFF, "d/dL_W")
    assert_close(jnp.tril(gLz), nm.cholesky_gradient(g.Sigma_Z, Lz), ROUNDOFF, "d/dL_Z")
