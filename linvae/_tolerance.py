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
FLOW = Tol(1e-5, 1e-7, "adaptive ODE solver at rtol=atol=1e-8 integrated to t1 = c/gap")
FINITE_DIFF = Tol(
    1e-6,
    1e-8,
    "central finite differences with h ~ eps^(1/3) ~ 6e-6 in float64: truncation + roundoff ~ 1e-10/h^2..1e-7",
)
F32 = Tol(1e-4, 1e-6, "same as ROUNDOFF but float32 / GPU")
