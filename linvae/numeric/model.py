r"""Model variants and the parameter state of the linear-Gaussian VAE (docs/theory.md §1, §2.2).

Encoder :math:`q(X \mid Y) = \mathcal N(BY, \Sigma_W)`, decoder :math:`p(Y \mid X) = \mathcal N(AX, \Sigma_Z)`,
prior :math:`\mathcal N(0, I_m)`.

Decoder covariance variants: ``"full"`` (D1, learned SPD :math:`\Sigma_Z`), ``"isotropic"`` (D2, learned
:math:`\sigma_d^2 I`), ``"fixed"`` (D3, fixed :math:`\sigma_d^2 I`). Encoder covariance variants: ``"full"``
(E1) and ``"diagonal"`` (E2). The state always stores :math:`\Sigma_Z` as an (n, n) matrix, so losses and
information measures need no variant.
"""

from __future__ import annotations

import dataclasses
from typing import Literal, NamedTuple

from jax import Array


@dataclasses.dataclass(frozen=True, kw_only=True)
class Variant:
    """Which covariances are learned, and how (docs/theory.md §2.2). Hashable: a static argument of jit.

    Attributes:
        decoder: ``"full"`` (D1), ``"isotropic"`` (D2) or ``"fixed"`` (D3).
        encoder: ``"full"`` (E1) or ``"diagonal"`` (E2).
        sigma_d2: the fixed decoder variance of D3 (required there, forbidden elsewhere).
    """

    decoder: Literal["full", "isotropic", "fixed"] = "full"
    encoder: Literal["full", "diagonal"] = "full"
    sigma_d2: float | None = None

    def __post_init__(self) -> None:
        if self.decoder not in ("full", "isotropic", "fixed"):
            raise ValueError(f"decoder must be 'full', 'isotropic' or 'fixed'; got {self.decoder!r}")
        if self.encoder not in ("full", "diagonal"):
            raise ValueError(f"encoder must be 'full' or 'diagonal'; got {self.encoder!r}")
        if self.decoder == "fixed":
            if self.sigma_d2 is None or not (self.sigma_d2 > 0) or self.sigma_d2 == float("inf"):
                raise ValueError(f"the fixed decoder (D3) needs a finite sigma_d2 > 0; got {self.sigma_d2}")
        elif self.sigma_d2 is not None:
            raise ValueError(f"sigma_d2 is only used by the fixed decoder (D3); got decoder={self.decoder!r}")

    @property
    def label(self) -> str:
        d = {"full": "D1", "isotropic": "D2", "fixed": "D3"}[self.decoder]
        e = {"full": "E1", "diagonal": "E2"}[self.encoder]
        return f"{d}/{e}" + (f"(sigma_d2={self.sigma_d2:g})" if self.sigma_d2 is not None else "")


#: The authors' setting: learned full decoder covariance, full encoder covariance.
D1 = Variant()


class State(NamedTuple):
    r"""Parameters of the linear VAE, plus how they were reached.

    Attributes:
        B: encoder mean map, shape (m, n).
        Sigma_W: encoder covariance, shape (m, m).
        A: decoder mean map, shape (n, m).
        Sigma_Z: decoder covariance, shape (n, n) (:math:`\sigma_d^2 I` for D2/D3).
        steps: full decoder+encoder sweeps taken (0 for a closed form).
        converged: whether the stopping rule was met before the iteration cap (True for a closed form).
        delta: the last Frobenius change that the stopping rule saw (0 for a closed form).
    """

    B: Array
    Sigma_W: Array
    A: Array
    Sigma_Z: Array
    steps: Array
    converged: Array
    delta: Array
