r"""Mutual Information Gap (MIG), as in disentanglement_lib's ``compute_mig``.

Each latent is discretised into ``num_bins`` equal-width bins over its sample range; with the plug-in
discrete MI :math:`I_{jk} = I(\mathrm{bin}(z_j); c_k)` and factor entropy :math:`H_k = H(c_k)`,

.. math::
    \mathrm{MIG} = \frac{1}{|\mathcal K|} \sum_{k \in \mathcal K}
        \frac{I_{(1)k} - I_{(2)k}}{H_k},

where :math:`I_{(1)k} \ge I_{(2)k}` are the two largest entries of column :math:`k` and
:math:`\mathcal K` are the factors with :math:`H_k > 0`. disentanglement_lib averages over all factors
and so returns NaN when a factor is constant in the sample; here such factors are left out with a
:class:`ConstantFactorWarning`. Defaults: 20 bins, 10,000 points (unsupervised_study_v1).

References:
    Chen et al. 2018, "Isolating sources of disentanglement in VAEs", https://arxiv.org/abs/1802.04942,
    Eq. (5);
    Locatello et al. 2019, https://arxiv.org/abs/1811.12359, Appendix (MIG).
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import numpy as np
from jax import Array
from jaxtyping import Bool, Float, Int

from ._backend import Backend, check_backend, warn_dropped
from .ground_truth import GroundTruthData, Representation, check_codes_factors, sample_codes
from .histogram import NUM_BINS
from .mutual_information import code_factor_information


@dataclasses.dataclass(frozen=True, kw_only=True)
class MIGConfig:
    """MIG settings; defaults are disentanglement_lib's.

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


class MIGResult(NamedTuple):
    """MIG and the quantities it is built from.

    Attributes:
        score: MIG, the mean normalised gap over the kept factors.
        gaps: ``(K,)`` normalised gap :math:`(I_{(1)k} - I_{(2)k}) / H_k`; 0 for dropped factors.
        kept: ``(K,)`` whether each factor enters the average (``H_k > 0``).
        mi: ``(m, K)`` discrete mutual information in nats.
        entropy: ``(K,)`` factor entropies in nats.
    """

    score: float
    gaps: Float[np.ndarray, " k"]
    kept: Bool[np.ndarray, " k"]
    mi: Float[np.ndarray, "m k"]
    entropy: Float[np.ndarray, " k"]


def mig_from_information(mi: Float[np.ndarray, "m k"], entropy: Float[np.ndarray, " k"]) -> MIGResult:
    """MIG from a precomputed MI matrix and factor entropies (constant factors dropped, warned)."""
    if mi.shape[0] < 2:
        raise ValueError(f"MIG needs at least two latents; got {mi.shape[0]}")
    kept = entropy > 0
    warn_dropped("MIG", np.flatnonzero(~kept))
    if not kept.any():
        raise ValueError("MIG: every factor is constant in the sample")
    top = -np.sort(-mi, axis=0)
    gaps = np.zeros(mi.shape[1])
    gaps[kept] = (top[0, kept] - top[1, kept]) / entropy[kept]
    return MIGResult(score=float(np.mean(gaps[kept])), gaps=gaps, kept=kept, mi=mi, entropy=entropy)


def mig(
    codes: Float[np.ndarray | Array, "n m"],
    factors: Int[np.ndarray | Array, "n k"],
    cfg: MIGConfig = MIGConfig(),
) -> MIGResult:
    """MIG of precomputed codes against factor class indices.

    Args:
        codes: latent means ``(n, m)``, ``m >= 2``.
        factors: class indices ``(n, K)``.
        cfg: bins and backend (``num_train`` and ``batch_size`` are not used here).

    Returns:
        The :class:`MIGResult`.

    Example:
        >>> import numpy as np
        >>> f = np.stack([np.arange(96) % 4, np.arange(96) // 24], axis=1)  # a balanced 4 x 4 grid
        >>> float(mig(f.astype(float), f).score)  # identity codes, exactly independent factors
        1.0
    """
    check_backend(cfg.backend)
    codes, factors = check_codes_factors(codes, factors)
    mi, entropy = code_factor_information(codes, factors, num_bins=cfg.num_bins, backend=cfg.backend)
    return mig_from_information(mi, entropy)


def mig_on_data(
    data: GroundTruthData, representation: Representation, cfg: MIGConfig = MIGConfig(), *, key: Array
) -> MIGResult:
    """MIG of a representation on ``cfg.num_train`` points sampled from ``data`` with ``key``."""
    codes, factors = sample_codes(
        data, representation, key=key, num_points=cfg.num_train, batch_size=cfg.batch_size
    )
    return mig(codes, factors, cfg)
