"""T15 beta-one-degenerate (D1): β = 1, λ = 0 freezes K and L*_col is attained on a continuum; β = 1, λ > 0
has
the unattained infimum L*_col + λ Σ_{i>m} μ_i with R → −∞; β < 1 is unbounded below
(proofs/beta-one-degenerate.md)."""

import math

import jax
import jax.numpy as jnp
import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from linvae import bridge
from linvae import numeric as nm
from linvae import symbolic as S
from linvae._tolerance import IDENTITY, ROUNDOFF, STATIONARY
from linvae.symbolic._symbols import beta as beta_sym
from tests.helpers import assert_close, assert_stationary
from tests.strategies import betas, lams, problems, random_encoder, random_state

_objective = jax.jit(nm.objective)
_grad4 = jax.jit(jax.grad(nm.objective, argnums=(0, 1, 2, 3)))


def _l_col(prob) -> float:
    return 0.5 * (prob.n * math.log(2 * math.pi) + float(np.sum(np.log(prob.mu))) + prob.n)


@given(problems())
def test_beta_one_degenerate_gain_is_frozen(case):
    """β = 1, λ = 0: one sweep of the map leaves K = Σ_W⁻¹B unchanged (A1)."""
    prob, m = case.prob, case.m
    B0, W0 = random_encoder(prob.n, m, case.seed)
    A, Z = nm.decoder_block(prob.Sigma_Y, jnp.asarray(B0), jnp.asarray(W0))
    B1, W1 = nm.encoder_block(A, Z, 1.0, 0.0)
    assert_close(np.linalg.solve(W1, B1), np.linalg.solve(W0, B0), IDENTITY, "K_1 = K_0")


@given(problems(), betas, lams)
def test_beta_one_degenerate_continuum_is_stationary(case, beta_other, lam_other):
    """β = 1, λ = 0: every water-filling point (any β' > 1, λ' > 0) attains L*_col and is stationary."""
    prob, m = case.prob, case.m
    wf = nm.water_filling(prob, beta_other, lam_other, m)
    assert_close(nm.losses(prob, wf, 1.0, 0.0).total, _l_col(prob), ROUNDOFF, "L = L*_col")
    g = _grad4(wf.B, wf.Sigma_W, wf.A, wf.Sigma_Z, prob.Sigma_Y, 1.0, 0.0)
    assert_stationary(g, wf[:4], STATIONARY)


@given(problems(), lams)
def test_beta_one_degenerate_infimum_not_attained(case, lam):
    """β = 1, λ > 0: along water-filling points with β' → 1⁺ the loss decreases to L*_col + λΣ_{i>m}μ_i and
    R → −∞; no random feasible point reaches the infimum (A2)."""
    prob, m = case.prob, case.m
    inf = _l_col(prob) + lam * float(np.sum(prob.mu[m:]))
    values, recons = [], []
    for eps in (1e-1, 1e-2, 1e-3, 1e-4):
        L = nm.losses(prob, nm.water_filling(prob, 1.0 + eps, lam, m), 1.0, lam)
        values.append(float(L.total))
        recons.append(float(L.recon))
    assert all(v > inf for v in values) and np.all(np.diff(values) < 0) and np.all(np.diff(recons) < 0)
    # The minimum over beta' itself, minus the infimum, is the symbolic per-direction gap summed over
    # the active directions; it tends to 0 as beta' -> 1+ (the symbolic limit is 0).
    expr = S.derive_beta_one()["wf_loss_gap"]
    assert S.derive_beta_one()["wf_loss_limit"] == 0
    gap = bridge.lambdify(expr, sorted(expr.free_symbols, key=str), modules="numpy")  # (beta, lambda, mu)
    b1 = 1.0 + 1e-4
    L1 = float(nm.losses(prob, nm.water_filling(prob, b1, lam, m), b1, lam).total)
    expected = inf + sum(gap(b1, lam, float(x)) for x in prob.mu[:m])
    assert_close(L1, expected, ROUNDOFF, "symbolic gap")
    s = random_state(prob.n, m, case.seed)
    assert float(nm.losses(prob, s, 1.0, lam).total) > inf


@given(problems(), st.floats(0.1, 0.95), st.floats(0.05, 0.9), st.floats(0.05, 0.9))
def test_beta_one_degenerate_symbolic_matches_numeric(case, beta, w1, w2):
    """β < 1: along Σ_X = 1 with the exact decoder the loss is (1 − β)/2 log w + const, slope from the
    symbolic profile (A2)."""
    prob = case.prob
    slope = float(S.derive_beta_one()["profile_dlogw"].subs(beta_sym, beta))
    mu1 = float(prob.mu[0])
    u1 = np.asarray(prob.U[:, 0])

    def loss(w):
        B = (np.sqrt((1.0 - w) / mu1) * u1)[None, :]
        W = np.array([[w]])
        A, Z = nm.decoder_block(prob.Sigma_Y, jnp.asarray(B), jnp.asarray(W))
        return float(_objective(B, W, A, Z, prob.Sigma_Y, beta, 0.0))

    assert_close(loss(w1) - loss(w2), slope * math.log(w1 / w2), ROUNDOFF, "profile")
    assert loss(1e-8) < loss(1e-4) < loss(1e-1)
