"""T21 kumar-poole-exact: for a linear decoder and fixed Σ_Z, min_Σ L_β = L_det for the full and diagonal
families with Σ* = (I + H/β)⁻¹, H = AᵀNA; the Hadamard gap is ≥ 0 and zero iff H is diagonal;
(β/2) log det(I + H/β) increases to ½ tr H (proofs/kumar-poole-exact.md)."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
from hypothesis import assume, given
from hypothesis import strategies as st

from linvae import bridge
from linvae import numeric as nm
from linvae import symbolic as S
from linvae._tolerance import ROUNDOFF, STATIONARY
from linvae.symbolic._symbols import beta as beta_s
from linvae.symbolic.kumar_poole import h11, h12, h22
from tests.helpers import assert_close, assert_stationary
from tests.strategies import problems, random_state

M = 2  # the symbolic certificate carries a symbolic 2x2 H

_objective = jax.jit(nm.objective)
_grad2 = jax.jit(jax.grad(nm.objective, argnums=(0, 1)))

FULL = nm.D1
DIAG = nm.Variant(encoder="diagonal")


@functools.cache
def _sym():
    k = S.derive_kumar_poole()
    args = (h11, h12, h22, beta_s)
    return (
        bridge.lambdify(k["Sigma_star"], args, modules="numpy"),
        bridge.lambdify(k["hadamard_gap"], args, modules="numpy"),
    )


def _setup(case, lam):
    prob = case.prob
    s = random_state(prob.n, M, case.seed)
    N = np.linalg.inv(np.asarray(s.Sigma_Z)) + 2.0 * lam * np.eye(prob.n)
    H = np.asarray(s.A).T @ N @ np.asarray(s.A)
    return prob, s, 0.5 * (H + H.T)


def _sigma_part(H, W, beta):
    """The Σ-dependent part of the β-ELBO of a linear decoder: ½tr(HΣ) + β/2 (tr Σ − log|Σ| − m)."""
    return 0.5 * np.trace(H @ W) + beta / 2 * (np.trace(W) - np.linalg.slogdet(W)[1] - W.shape[0])


@given(problems(), st.floats(0.05, 20.0), st.floats(0.0, 3.0))
def test_kumar_poole_exact_symbolic_matches_numeric(case, beta, lam):
    """Σ* of the symbolic solution = the numeric encoder block's Σ_W (full and diagonal families)."""
    prob, s, H = _setup(case, lam)
    Sigma_star, _ = _sym()
    _, W = nm.encoder_block(s.A, s.Sigma_Z, beta, lam, FULL)
    assert_close(W, np.asarray(Sigma_star(H[0, 0], H[0, 1], H[1, 1], beta), dtype=float), ROUNDOFF, "Sigma*")
    _, Wd = nm.encoder_block(s.A, s.Sigma_Z, beta, lam, DIAG)
    assert_close(np.diag(Wd), 1.0 / (1.0 + np.diag(H) / beta), ROUNDOFF, "diagonal Sigma*")


@given(problems(), st.floats(0.05, 20.0), st.floats(0.0, 3.0))
def test_kumar_poole_exact_value(case, beta, lam):
    """min over Σ of the exact population loss − its value at Σ = I = (β/2) log det(I + H/β) − ½ tr H, and the
    diagonal family pays exactly the symbolic Hadamard gap on top (≥ 0)."""
    prob, s, H = _setup(case, lam)
    _, hadamard = _sym()
    B, W = nm.encoder_block(s.A, s.Sigma_Z, beta, lam, FULL)
    _, Wd = nm.encoder_block(s.A, s.Sigma_Z, beta, lam, DIAG)
    L = lambda W_: float(_objective(B, W_, s.A, s.Sigma_Z, prob.Sigma_Y, beta, lam))  # noqa: E731
    reg = beta / 2 * np.linalg.slogdet(np.eye(M) + H / beta)[1]
    assert_close(L(W) - L(jnp.eye(M)), reg - 0.5 * np.trace(H), ROUNDOFF, "L_det")
    gap = float(hadamard(H[0, 0], H[0, 1], H[1, 1], beta))
    assert gap >= 0.0
    assert_close(L(Wd) - L(W), gap, ROUNDOFF, "Hadamard gap")
    assert_close(_sigma_part(H, np.asarray(W), beta), reg, ROUNDOFF, "min of the Sigma part")


@given(problems(), st.floats(0.05, 20.0), st.floats(0.0, 3.0))
def test_kumar_poole_exact_is_stationary(case, beta, lam):
    """Σ* zeroes the autodiff gradient of the population loss in Σ_W; the mean map B zeroes it in B."""
    prob, s, _ = _setup(case, lam)
    B, W = nm.encoder_block(s.A, s.Sigma_Z, beta, lam, FULL)
    g = _grad2(B, W, s.A, s.Sigma_Z, prob.Sigma_Y, beta, lam)
    assert_stationary(g, (B, W), STATIONARY)


@given(problems(), st.floats(0.05, 20.0), st.floats(0.0, 3.0))
def test_kumar_poole_exact_hadamard_zero_iff_diagonal(case, beta, lam):
    """At any β > 0 the diagonal family loses nothing iff H is diagonal, from the loss itself: with the
    decoder turned to diagonalise H (A -> AV, V the eigenvectors of H) the best diagonal Σ attains the full
    minimum and the symbolic gap is 0; with the drawn (non-diagonal) H both are > 0, and they agree (A1, A2)."""
    prob, s, H = _setup(case, lam)
    _, hadamard = _sym()

    def loss_gap(A):
        B, W = nm.encoder_block(A, s.Sigma_Z, beta, lam, FULL)
        _, Wd = nm.encoder_block(A, s.Sigma_Z, beta, lam, DIAG)
        L = lambda W_: float(_objective(B, W_, A, s.Sigma_Z, prob.Sigma_Y, beta, lam))  # noqa: E731
        return L(Wd) - L(W), L(W)

    w, V = np.linalg.eigh(H)
    gap_d, L_d = loss_gap(jnp.asarray(np.asarray(s.A) @ V))
    # Two loss values that agree to rounding: ROUNDOFF relative to the loss.
    assert abs(gap_d) <= ROUNDOFF.atol + ROUNDOFF.rtol * abs(L_d), f"loss gap {gap_d:.3e} with H diagonal"
    assert_close(float(hadamard(w[0], 0.0, w[1], beta)), 0.0, ROUNDOFF, "symbolic gap, diagonal H")
    assume(abs(H[0, 1]) > 1e-6 * np.trace(H))  # the drawn H is not (numerically) diagonal
    gap, _ = loss_gap(s.A)
    gap_sym = float(hadamard(H[0, 0], H[0, 1], H[1, 1], beta))
    assert gap > 0.0 and gap_sym > 0.0, (gap, gap_sym)
    assert_close(gap, gap_sym, ROUNDOFF, "loss gap = symbolic gap")


@given(problems(), st.floats(0.0, 3.0))
def test_kumar_poole_exact_large_beta(case, lam):
    """(β/2) log det(I + H/β) increases in β and approaches ½ tr H from below, within ‖H‖_F²/(4β)
    (from x − x²/2 ≤ log(1 + x) ≤ x on the eigenvalues of H/β)."""
    _, _, H = _setup(case, lam)
    betas = np.geomspace(0.01, 1e4, 30)
    reg = np.array([b / 2 * np.linalg.slogdet(np.eye(M) + H / b)[1] for b in betas])
    deficit = 0.5 * np.trace(H) - reg
    assert np.all(np.diff(reg) > 0) and np.all(deficit >= 0)
    assert np.all(deficit <= np.sum(H**2) / (4 * betas))
    assert str(S.derive_kumar_poole()["large_beta"]) == "h_11/2 + h_22/2"
