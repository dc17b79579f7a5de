"""T1 population-loss: closed-form R, K, tr E equal their Monte-Carlo expectations; K = I(X;Y) + KL."""

import jax
import jax.numpy as jnp
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from linvae import numeric as nm
from linvae._tolerance import ROUNDOFF
from tests.helpers import assert_close
from tests.strategies import problems, random_state

#: Monte-Carlo z-score band: a fixed-seed estimate is within 4 standard errors of its expectation.
Z_BAND = 4.0
N_MC = 200_000


def _mc_terms(prob, s, key, beta, lam):
    """Sample Y ~ N(0, Sigma_Y), X ~ q(X|Y), and average the per-sample losses (and the λβ loss itself)."""
    n, m = s.A.shape
    k1, k2 = jax.random.split(key)
    Ly = jnp.linalg.cholesky(prob.Sigma_Y)
    Lw = jnp.linalg.cholesky(s.Sigma_W)
    Y = jax.random.normal(k1, (N_MC, n), jnp.float64) @ Ly.T
    X = Y @ s.B.T + jax.random.normal(k2, (N_MC, m), jnp.float64) @ Lw.T
    Rz = Y - X @ s.A.T
    Zi = jnp.linalg.inv(s.Sigma_Z)
    nll = 0.5 * (
        jnp.einsum("ij,jk,ik->i", Rz, Zi, Rz) + jnp.linalg.slogdet(s.Sigma_Z)[1] + n * jnp.log(2 * jnp.pi)
    )
    # KL(N(BY, Sigma_W) || N(0, I)) per sample, exact in the Gaussian conditional
    mean = Y @ s.B.T
    kl = 0.5 * (jnp.trace(s.Sigma_W) + jnp.sum(mean**2, -1) - m - jnp.linalg.slogdet(s.Sigma_W)[1])
    sq = jnp.sum(Rz**2, -1)
    total = nll + beta * kl + lam * sq  # the per-sample λβ loss, assembled here, not read from the code
    return [(float(jnp.mean(v)), float(jnp.std(v) / np.sqrt(N_MC))) for v in (nll, kl, sq, total)]


@settings(max_examples=10)
@given(problems(), st.integers(0, 2**16), st.floats(0.1, 10.0), st.floats(0.0, 5.0))
def test_population_loss_matches_monte_carlo(case, seed, beta, lam):
    """R, K, tr E and the λβ loss L = E[-log p(y|x)] + β E KL(q(x|y) || p(x)) + λ E||y - Ax||² equal
    their fixed-seed Monte-Carlo averages within Z_BAND standard errors (A1, A2)."""
    prob, m = case.prob, case.m
    s = random_state(prob.n, m, case.seed, scale=0.5)
    exact = nm.losses(prob, s, beta=beta, lam=lam)
    mc = _mc_terms(prob, s, jax.random.key(seed), beta, lam)
    for name, value, (mean, se) in zip(("recon", "kl", "l2", "total"), exact, mc, strict=True):
        assert abs(float(value) - mean) <= Z_BAND * se, f"{name}: exact {float(value)} vs MC {mean} +- {se}"


@given(problems())
def test_kl_splits_into_rate_and_marginal_kl(case):
    """K = I(X;Y) + KL(N(0, Sigma_X) || N(0, I)) (ELBO surgery)."""
    prob, m = case.prob, case.m
    s = random_state(prob.n, m, case.seed)
    K = nm.losses(prob, s, beta=1.0).kl
    info = nm.information(prob, s)
    Sx = np.asarray(s.B @ prob.Sigma_Y @ s.B.T + s.Sigma_W)
    kl_marg = 0.5 * (np.trace(Sx) - m - np.linalg.slogdet(Sx)[1])
    assert_close(K, info.mi_xy + kl_marg, ROUNDOFF, "K = I(X;Y) + KL(q(x) || p(x))")


@given(problems(), st.floats(0.1, 10.0), st.floats(0.0, 5.0))
def test_total_is_linear_in_beta_and_lambda(case, beta, lam):
    """L is affine in (β, λ) with slopes K and tr E, read off the loss at four weights (not its fields),
    and tr E equals its expanded coding."""
    prob, m = case.prob, case.m
    s = random_state(prob.n, m, case.seed)
    total = lambda b, lm: float(nm.losses(prob, s, beta=b, lam=lm).total)  # noqa: E731
    L = nm.losses(prob, s, beta=beta, lam=lam)
    Sy, A, B, W = map(np.asarray, (prob.Sigma_Y, s.A, s.B, s.Sigma_W))
    Sx = B @ Sy @ B.T + W
    E = Sy - A @ B @ Sy - Sy @ B.T @ A.T + A @ Sx @ A.T
    K = 0.5 * (np.trace(Sx) - np.linalg.slogdet(W)[1] - m)
    assert_close(L.l2, np.trace(E), ROUNDOFF, "tr E")
    # Differences of the loss at shifted weights, against K and tr E coded here.
    assert_close(total(beta + 1.0, lam) - total(beta, lam), K, ROUNDOFF, "dL/dbeta = K")
    assert_close(total(beta, lam + 1.0) - total(beta, lam), np.trace(E), ROUNDOFF, "dL/dlam = tr E")
