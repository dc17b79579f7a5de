"""The map's fast path (eigenbasis, low-rank Sigma_Z, Gauss-Jordan inverses) against the plain blocks."""

import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from linvae import numeric as nm
from linvae._tolerance import IDENTITY
from tests.helpers import assert_close
from tests.strategies import problems, random_encoder

VARIANTS = [
    nm.Variant(),
    nm.Variant(encoder="diagonal"),
    nm.Variant(decoder="isotropic"),
    nm.Variant(decoder="fixed", sigma_d2=0.3),
]


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: v.label)
@given(case=problems(), beta=st.floats(0.5, 20.0), lam=st.floats(0.0, 5.0), sweeps=st.integers(1, 6))
def test_map_equals_the_plain_blocks(variant, case, beta, lam, sweeps):
    prob, m = case.prob, case.m
    B0, W0 = random_encoder(prob.n, m, case.seed)
    if variant.encoder == "diagonal":
        W0 = np.diag(np.diag(W0))
    run = nm.alternating_grid(
        prob, [beta], [lam], (B0[None], W0[None]), variant=variant, tol=1e-300, max_sweeps=sweeps, warn=False
    )
    B, W = jnp.asarray(B0), jnp.asarray(W0)
    for _ in range(sweeps):
        A, Z = nm.decoder_block(prob.Sigma_Y, B, W, variant)
        B, W = nm.encoder_block(A, Z, beta, lam, variant)
    got = nm.State(*(x[0, 0, 0] for x in run))
    assert_close(got.B, B, IDENTITY, "B")
    assert_close(got.Sigma_W, W, IDENTITY, "Sigma_W")
    assert_close(got.A, A, IDENTITY, "A (decoder of the previous encoder)")
    assert_close(got.Sigma_Z, Z, IDENTITY, "Sigma_Z")


def published_loop(B, W, beta, lam, Sy, tol, max_half_steps):
    """The published stopping rule in NumPy (half-steps; the first decoder step is never tested)."""
    n, m = Sy.shape[0], B.shape[0]
    Syi = np.linalg.inv(Sy)
    enc_prev, dec_prev = (B, W), None
    for i in range(max_half_steps):
        if i % 2 == 0:
            Wi = np.linalg.inv(W)
            Z = np.linalg.inv(Syi + B.T @ Wi @ B)
            A = Z @ B.T @ Wi
            if (
                dec_prev is not None
                and max(np.linalg.norm(A - dec_prev[0]), np.linalg.norm(Z - dec_prev[1])) <= tol
            ):
                return B, W, A, Z, i
            dec_prev = (A, Z)
        else:
            N = np.linalg.inv(Z) + 2 * lam * np.eye(n)
            W = np.linalg.inv(np.eye(m) + A.T @ N @ A / beta)
            B = W @ A.T @ N / beta
            if max(np.linalg.norm(B - enc_prev[0]), np.linalg.norm(W - enc_prev[1])) <= tol:
                return B, W, A, Z, i
            enc_prev = (B, W)
    return B, W, A, Z, max_half_steps


@given(case=problems(), beta=st.floats(1.2, 20.0), lam=st.floats(0.0, 5.0))
def test_stopping_rule_is_the_published_one(case, beta, lam):
    prob, m = case.prob, case.m
    mu = np.asarray(prob.mu)
    if lam > 0:  # A7: no direction at the water level, where convergence is sublinear
        assume(np.min(np.abs(mu[: m + 1] - (beta - 1) / (2 * lam)) / mu[: m + 1]) > 0.05)
    B0, W0 = random_encoder(prob.n, m, case.seed)
    tol = 1e-7
    B, W, A, Z, half = published_loop(B0, W0, beta, lam, np.asarray(prob.Sigma_Y), tol, 20_000)
    run = nm.alternating(prob, beta, lam, init=(B0, W0), tol=tol, max_sweeps=10_000)
    assert int(run.steps) == half // 2 + 1, "same half-step at which the rule fired"
    for name, ref in zip(("B", "Sigma_W", "A", "Sigma_Z"), (B, W, A, Z), strict=True):
        assert_close(getattr(run, name), ref, IDENTITY, name)


@pytest.mark.parametrize("variant", VARIANTS[:3], ids=lambda v: v.label)
@given(seed=st.integers(0, 2**31 - 1), beta=st.floats(1.5, 20.0), lam=st.floats(0.0, 5.0))
def test_noise_floor_reduction_is_exact(variant, seed, beta, lam):
    """A factor model with a noise floor of multiplicity d = n - s > m runs reduced to n_eff = s + m
    coordinates; it must give the plain blocks' iterates and the same stopping sweep as the full basis."""
    from linvae.numeric.alternating import _run

    rng = np.random.default_rng(seed)
    n, s, m, sweeps = 12, 2, 3, 8
    prob = nm.from_factors(np.diag(rng.uniform(0.5, 2.0, s)), rng.normal(size=(n, s)), 0.1)
    B0, W0 = random_encoder(n, m, seed)
    if variant.encoder == "diagonal":
        W0 = np.diag(np.diag(W0))
    def run_reduced(tol, cap):
        st = nm.alternating_grid(prob, [beta], [lam], (B0[None], W0[None]), variant=variant, tol=tol,
                                 max_sweeps=cap, warn=False)
        return nm.State(*(x[0, 0, 0] for x in st))

    reduced = run_reduced(1e-300, sweeps)
    assert reduced.B.shape == (m, n)
    full = _run(prob.mu, prob.U, 0.0, jnp.sum(prob.mu), 0.0, beta, lam, jnp.asarray(B0), jnp.asarray(W0),
                1e-300, sweeps, variant)
    B, W = jnp.asarray(B0), jnp.asarray(W0)
    for _ in range(sweeps):
        A, Z = nm.decoder_block(prob.Sigma_Y, B, W, variant)
        B, W = nm.encoder_block(A, Z, beta, lam, variant)
    for got in (reduced, full):
        assert_close(got.B, B, IDENTITY, "B")
        assert_close(got.Sigma_W, W, IDENTITY, "Sigma_W")
        assert_close(got.A, A, IDENTITY, "A")
        assert_close(got.Sigma_Z, Z, IDENTITY, "Sigma_Z")
    # With a real tolerance both paths stop at the same sweep.
    tol = 1e-8
    r = run_reduced(tol, 5000)
    f = _run(prob.mu, prob.U, 0.0, jnp.sum(prob.mu), 0.0, beta, lam, jnp.asarray(B0), jnp.asarray(W0), tol, 5000,
             variant)
    assert int(r.steps) == int(f.steps)
