"""T14 lambda-beta-equivalence: L_λβ = (R + K) + [λ tr E + (β−1)K]; the λβ minimiser's (B, Σ_W, A) is the D3
minimiser at β' = β − 1, σ_d² = 1/(2λ); a D3 λβ-VAE is a β-VAE at σ_eff
(proofs/lambda-beta-equivalence.md)."""

import math

import jax
import numpy as np
from hypothesis import assume, given
from hypothesis import strategies as st

from linvae import numeric as nm
from linvae import symbolic as S
from linvae._tolerance import ROUNDOFF, STATIONARY
from tests.helpers import assert_close, assert_stationary, moved, perturbation
from tests.strategies import betas, lams, orthogonal, problems, random_state

#: jitted once per shape (the shapes come from a short list); re-tracing per example is what costs.
_grad3 = jax.jit(jax.grad(nm.objective, argnums=(0, 1, 2)))


def _isotropic(st_: nm.State, s2: float) -> nm.State:
    n = st_.A.shape[0]
    return st_._replace(Sigma_Z=s2 * np.eye(n))


def test_lambda_beta_equivalence_certificate():
    """The symbolic certificate: every residual of the split and of the solution match is exactly 0."""
    import sympy as sp

    for name, v in {**S.derive_equivalence(), **S.derive_decomposition()}.items():
        assert sp.simplify(v) == 0, name


@given(problems(), betas, lams)
def test_lambda_beta_equivalence_symbolic_matches_numeric(case, beta, lam):
    """(B, Σ_W, A) of the water-filling point = nm.lucas at (β − 1, λ = 0, σ_d² = 1/(2λ)) (A1)."""
    prob, m = case.prob, case.m
    wf = nm.water_filling(prob, beta, lam, m)
    luc = nm.lucas(prob, beta - 1.0, 0.0, m, 1.0 / (2.0 * lam))
    for name in ("B", "Sigma_W", "A"):
        assert_close(getattr(wf, name), getattr(luc, name), ROUNDOFF, name)


def _brackets(prob, s, beta, lam):
    """(first, second) from two losses: second = the D3 (β−1)-VAE at σ_d² = 1/(2λ) less n/2 log(π/λ) (no Σ_Z
    of s), first = L_λβ(s) − second. T14 says first = R + K and second = λ tr E + (β − 1)K."""
    second = float(nm.losses(prob, _isotropic(s, 1.0 / (2.0 * lam)), beta - 1.0, 0.0).total)
    second -= prob.n / 2 * math.log(math.pi / lam)
    return float(nm.losses(prob, s, beta, lam).total) - second, second


@given(problems(near_degenerate=True), betas, lams)
def test_lambda_beta_equivalence_split(case, beta, lam):
    """The second bracket is the D3 (β−1)-VAE with σ_d² = 1/(2λ), less n/2 log(π/λ), at any feasible point."""
    prob, m = case.prob, case.m
    s = random_state(prob.n, m, case.seed)
    L = nm.losses(prob, s, beta, lam)
    _, second = _brackets(prob, s, beta, lam)
    assert_close(second, lam * L.l2 + (beta - 1.0) * L.kl, ROUNDOFF, "second bracket")


#: Relative perturbation sizes around the optimum: log-uniform in [1e-3, 1e-1].
eps_sizes = st.floats(-3.0, -1.0).map(lambda u: 10.0**u)


@given(problems(near_degenerate=True), betas, lams, eps_sizes)
def test_lambda_beta_equivalence_both_brackets_are_minimal(case, beta, lam, eps):
    """Split the λβ loss with the D3 (β−1)-VAE (two loss evaluations, no loss terms read): the first
    bracket is a negative ELBO, so it is >= −E log N(Y; 0, Σ_Y) = L*_col with equality at the water-filling
    point, and the second is minimised there over (B, Σ_W, A); every perturbation of size 1e-3..1e-1,
    either sign, strictly raises both (A1, A2)."""
    prob, m = case.prob, case.m
    L_col = 0.5 * (prob.n * math.log(2 * math.pi) + float(np.sum(np.log(prob.mu))) + prob.n)
    wf = nm.water_filling(prob, beta, lam, m, R=orthogonal(m, case.seed + 1))
    first_wf, second_wf = _brackets(prob, wf, beta, lam)
    assert_close(first_wf, L_col, ROUNDOFF, "first bracket at the water-filling point = L*_col (tight ELBO)")
    d = perturbation(prob, wf, case.seed)
    for sign in (1.0, -1.0):
        first, second = _brackets(prob, moved(wf, d, sign * eps), beta, lam)
        # Both excesses are second order, >= ~1e-9 at eps = 1e-3; the rounding of a loss is ~1e-14 |L|.
        assert first > L_col, f"first bracket - L*_col = {first - L_col:.3e} at eps = {sign * eps:.1e}"
        assert second > second_wf, f"second bracket rise {second - second_wf:.3e} at eps = {sign * eps:.1e}"


@given(problems(), st.floats(0.2, 10.0), st.floats(0.0, 5.0), st.floats(0.1, 5.0))
def test_lambda_beta_equivalence_sigma_eff(case, beta, lam, s2):
    """D3: L_λβ(σ_d²) − L_β(σ_eff²) = n/2 log(σ_d²/σ_eff²), a constant (A2)."""
    prob, m = case.prob, case.m
    s = random_state(prob.n, m, case.seed)
    s_eff = 1.0 / (1.0 / s2 + 2.0 * lam)
    lhs = (
        nm.losses(prob, _isotropic(s, s2), beta, lam).total
        - nm.losses(prob, _isotropic(s, s_eff), beta, 0.0).total
    )
    assert_close(lhs, prob.n / 2 * math.log(s2 / s_eff), ROUNDOFF, "sigma_eff")


@given(problems(), betas, lams)
def test_lambda_beta_equivalence_is_stationary(case, beta, lam):
    """The water-filling (B, Σ_W, A) is stationary for the D3 (β−1)-VAE with Σ_Z = I/(2λ) (autodiff)."""
    prob, m = case.prob, case.m
    assume(float(prob.mu[0]) > (beta - 1.0) / (2.0 * lam))  # A1: at least one active direction
    wf = nm.water_filling(prob, beta, lam, m)
    Z = np.eye(prob.n) / (2.0 * lam)
    g = _grad3(wf.B, wf.Sigma_W, wf.A, Z, prob.Sigma_Y, beta - 1.0, 0.0)
    assert_stationary(g, (wf.B, wf.Sigma_W, wf.A), STATIONARY)


@given(problems(), betas, lams)
def test_lambda_beta_equivalence_first_bracket_is_tight(case, beta, lam):
    """At the water-filling point R + K = L*_col (tight ELBO), so it minimises both brackets."""
    prob, m = case.prob, case.m
    L = nm.losses(prob, nm.water_filling(prob, beta, lam, m), beta, lam)
    L_col = 0.5 * (prob.n * math.log(2 * math.pi) + float(np.sum(np.log(prob.mu))) + prob.n)
    assert_close(L.recon + L.kl, L_col, ROUNDOFF, "R + K")
