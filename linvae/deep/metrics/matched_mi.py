r"""The matched mutual information :math:`I_m`: Hungarian max-sum of the discrete MI matrix.

With the same plug-in MI matrix :math:`I_{jk}` as MIG (``num_bins`` equal-width bins per latent),

.. math::
    I_m = \max_{\pi} \sum_{(j, k) \in \pi} I_{jk},

over one-to-one matchings :math:`\pi` of latents to factors (:math:`\min(m, K)` pairs), in nats and
unnormalised (``docs/theory.md`` §8). The matching is ``scipy.optimize.linear_sum_assignment``
with ``maximize=True`` on either backend's MI matrix. Constant factors contribute zero MI and need no
special case.

References:
    ``docs/theory.md`` §8 (the authors' :math:`I_m`); Kuhn 1955 (Hungarian algorithm).
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import numpy as np
from jax import Array
from jaxtyping import Float, Int
from scipy.optimize import linear_sum_assignment

from ._backend import Backend, check_backend
from .ground_truth import GroundTruthData, Representation, check_codes_factors, sample_codes
from .histogram import NUM_BINS
from .mutual_information import code_factor_information


@dataclasses.dataclass(frozen=True, kw_only=True)
class MatchedMIConfig:
    """:math:`I_m` settings (same sampling and binning as MIG).

    Attributes:
        num_train: points sampled to estimate the MI matrix.
        num_bins: equal-width histogram bins per latent.
        batch_size: images per representation call (speed only).
        backend: ``"reference"`` (numpy + sklearn) or ``"fast"`` (JAX float64).
    """

    num_train: int = 10_000
    num_bins: int = NUM_BINS
    batch_size: int = 256
    backend: Backend = "reference"


class MatchedMIResult(NamedTuple):
    """:math:`I_m` and its matching.

    Attributes:
        score: :math:`I_m` in nats.
        latents: matched latent of each pair, ``(min(m, K),)``.
        factors: matched factor of each pair.
        mi: ``(m, K)`` discrete MI matrix in nats.
    """

    score: float
    latents: Int[np.ndarray, " p"]
    factors: Int[np.ndarray, " p"]
    mi: Float[np.ndarray, "m k"]


def matched_mi_from_information(mi: Float[np.ndarray, "m k"]) -> MatchedMIResult:
    """:math:`I_m` of a precomputed MI matrix."""
    rows, cols = linear_sum_assignment(mi, maximize=True)
    return MatchedMIResult(score=float(mi[rows, cols].sum()), latents=rows, factors=cols, mi=mi)


def matched_mi(
    codes: Float[np.ndarray | Array, "n m"],
    factors: Int[np.ndarray | Array, "n k"],
    cfg: MatchedMIConfig = MatchedMIConfig(),
) -> MatchedMIResult:
    """:math:`I_m` of precomputed codes against factor class indices.

    Args:
        codes: latent means ``(n, m)``.
        factors: class indices ``(n, K)``.
        cfg: bins and backend.

    Returns:
        The :class:`MatchedMIResult`.
    """
    check_backend(cfg.backend)
    codes, factors = check_codes_factors(codes, factors)
    mi, _ = code_factor_information(codes, factors, num_bins=cfg.num_bins, backend=cfg.backend)
    return matched_mi_from_information(mi)


def matched_mi_on_data(
    data: GroundTruthData,
    representation: Representation,
    cfg: MatchedMIConfig = MatchedMIConfig(),
    *,
    key: Array,
) -> MatchedMIResult:
    """:math:`I_m` of a representation on ``cfg.num_train`` points sampled from ``data`` with ``key``."""
    codes, factors = sample_codes(
        data, representation, key=key, num_points=cfg.num_train, batch_size=cfg.batch_size
    )
    return matched_mi(codes, factors, cfg)
