"""Named tolerance tiers: the only place in linvae where numeric tolerances are defined.

Every comparison in the tests and numeric checks imports one of these tiers. Each carries the reason
for its size, which the test helpers print when a comparison fails.
"""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class Tol:
    """A relative/absolute tolerance pair with its justification."""

    rtol: float
    atol: float
    why: str


ROUNDOFF = Tol(
    1e-10,
    1e-12,
    "same closed form, two codings, float64; ~1e6 eps to absorb the conditioning of Sigma_Y (cond <= ~1e3)",
)
NOISE_FLOOR = Tol(
    1e-12,
    0.0,
    "an eigenvalue of Sigma_Y within rtol * mu_max of sigma^2 is the noise floor (eigh puts the n - s equal "
    "eigenvalues ~1e-16 * mu_max * n apart); the map reduces that eigenspace exactly",
)
IDENTITY = Tol(
    1e-9,
    1e-11,
    "an exact algebraic identity evaluated along an iterated map (tens of float64 solves); ~1e7 eps",
)
STATIONARY = Tol(
    1e-8,
    1e-10,
    "||grad|| / (1 + ||theta||) at an analytic optimum, float64",
)
CONVERGED = Tol(
    1e-6,
    1e-8,
    "an iterated map stopped at Frobenius step 1e-10..1e-12; linear convergence with ratio <= 0.99 leaves"
    " an error of <= 100x the last step, and loss values are quadratic in the error",
)
REPRODUCED = Tol(
    1e-12,
    1e-14,
    "the same float64 call in two processes (global x64 vs linvae's local x64 context): the same XLA"
    " programs, so equal up to a few eps; a result computed in float32 misses by ~1e-7 relative",
)
FLOW = Tol(1e-5, 1e-7, "adaptive ODE solver at rtol=atol=1e-8 integrated to t1 = c/gap")
FINITE_DIFF = Tol(
    1e-6,
    1e-8,
    "central finite differences with h ~ eps^(1/3) ~ 6e-6 in float64: truncation + roundoff ~ 1e-10/h^2..1e-7",
)
F32 = Tol(1e-4, 1e-6, "same as ROUNDOFF but float32 / GPU")
SVM_SOLVER = Tol(
    1e-3,
    0.0,
    "relative excess of liblinear's squared-hinge objective over its exact minimum: TRON stops at"
    " ||grad|| <= 1e-4 max(min(n+, n-), 1)/n ||grad_0||; measured <= 2e-4 over 200 one-feature problems"
    " (scales 1e-2..1e2, offsets to 3 sd); the coefficients can still differ by tens of percent when"
    " slope and intercept are ill-conditioned, so accuracies differ where a threshold moves past a point",
)

# --- learning dynamics (issue 4: flow, optimisers, high-dimensional SGD, controllers) -------------
SOLVER = Tol(
    1e-8,
    1e-8,
    "step-size controller of the adaptive ODE solvers (diffrax PID, scipy solve_ivp): global error"
    " ~1e2 x the local tolerance over a run, which is the budget of the FLOW tier",
)
STEADY = Tol(
    1e-6,
    1e-6,
    "a flow lane is steady when its block residual (distance of each block from its exact minimiser"
    " given the others) is <= atol + rtol ||theta||: 100x SOLVER, above the ~tol floor at which an"
    " explicit adaptive solver dithers around a stable point; residual ~ distance to the fixed point",
)
CONE = Tol(
    1e-2,
    0.0,
    "a steady flow lane must also have each covariance block steady relative to its own size,"
    " ||Sigma^-1 (Sigma* - Sigma)||_F <= 1e-2: at a stationary point with SPD covariances this is"
    " <= STEADY's residual x ||Sigma^-1|| (<= 1e-5 x 1e3 on the published instance), while a run sliding"
    " to the boundary of the SPD cone (D1 with beta < 1, or beta = 1 and lam > 0: the infimum is not"
    " attained, T15) keeps it O(1) as Sigma -> 0 and its absolute residual shrinks with Sigma",
)
RATE = Tol(
    1e-3,
    1e-6,
    "an exponential rate read off a trajectory as a log-slope, late enough that the next mode has"
    " decayed by >= e^-7 relative to the slowest one (the remaining bias is ~1e-3 of the rate)",
)
#: z-score of stochastic checks (STYLE 2.6): |estimate - exact| <= Z_SCORE * standard error, fixed seeds.
Z_SCORE = 4.0
SQRT_N_SCALING = Tol(
    0.0,
    0.25,
    "ratio of the sup error of online SGD vs its ODE at 4N and at N: O(N^-1/2) fluctuations predict 1/2;"
    " a seed-averaged ratio within 1/2 +- 1/4 is 'roughly halves' (T22), far from 1 (no convergence)",
)
PROTOCOL = Tol(
    1e-6,
    1e-8,
    "the published AdamW protocol minimises a slightly different objective (weight decay 0.01,"
    " Sigma floor 5e-5 I) within a finite budget (30k steps); its best loss lands within ~2e-11 relative"
    " of the exact minimum on small beta > 1, lam > 0 problems; we accept 1e-6",
)
DEEP_BRIDGE = Tol(
    5e-3,
    2e-2,
    "float32 linear-layer VAE trained by Adam on Monte-Carlo minibatches (512 per step, 6,000 steps,"
    " cosine decay 1e-2 -> 1e-5) vs the D3 closed form, both evaluated exactly in float64: |L - L*| and"
    " |I(X;Y) - I*| <= atol + rtol |.|; measured worst 1.6e-2 nats (loss, rel 7.8e-4) and 2.3e-2 nats"
    " (I(X;Y) = 6.8 nats, theta = 0.25), i.e. >= 2x inside; SGD noise sets the floor",
)
