"""One entry point: score a representation on a ground-truth data set with any metric's config.

``evaluate(cfg, data, representation, key=key)`` dispatches on the config's type to the metric's
``*_on_data`` / ``*_score`` function, so a sweep over metrics is a list of configs:

    results = {type(c).__name__: evaluate(c, data, encoder, key=k)
               for c, k in zip(configs, jax.random.split(key, len(configs)))}
"""

from __future__ import annotations

import functools

from jax import Array

from .beta_vae import BetaVAEConfig, BetaVAEResult, beta_vae_score
from .dci import DCIConfig, DCIResult, dci_on_data
from .factor_vae import FactorVAEConfig, FactorVAEResult, factor_vae_score
from .ground_truth import GroundTruthData, Representation
from .matched_mi import MatchedMIConfig, MatchedMIResult, matched_mi_on_data
from .mig import MIGConfig, MIGResult, mig_on_data
from .sap import SAPConfig, SAPResult, sap_on_data

MetricConfig = MIGConfig | MatchedMIConfig | SAPConfig | DCIConfig | FactorVAEConfig | BetaVAEConfig
MetricResult = MIGResult | MatchedMIResult | SAPResult | DCIResult | FactorVAEResult | BetaVAEResult


@functools.singledispatch
def _dispatch(cfg: object, data: GroundTruthData, representation: Representation, key: Array) -> MetricResult:
    raise TypeError(f"no metric is registered for config type {type(cfg).__name__}")


_dispatch.register(MIGConfig)(lambda cfg, data, rep, key: mig_on_data(data, rep, cfg, key=key))
_dispatch.register(MatchedMIConfig)(lambda cfg, data, rep, key: matched_mi_on_data(data, rep, cfg, key=key))
_dispatch.register(SAPConfig)(lambda cfg, data, rep, key: sap_on_data(data, rep, cfg, key=key))
_dispatch.register(DCIConfig)(lambda cfg, data, rep, key: dci_on_data(data, rep, cfg, key=key))
_dispatch.register(FactorVAEConfig)(lambda cfg, data, rep, key: factor_vae_score(data, rep, cfg, key=key))
_dispatch.register(BetaVAEConfig)(lambda cfg, data, rep, key: beta_vae_score(data, rep, cfg, key=key))


def evaluate(
    cfg: MetricConfig, data: GroundTruthData, representation: Representation, *, key: Array
) -> MetricResult:
    """Score ``representation`` on ``data`` with the metric that ``cfg`` configures.

    Args:
        cfg: a metric config (``MIGConfig()``, ``SAPConfig(backend="fast")``, ...).
        data: the ground-truth data set (see :class:`GroundTruthData`).
        representation: batched mean encoder, ``uint8 (b, H, W, C) -> (b, m)``.
        key: PRNG key; the result is a deterministic function of it.

    Returns:
        The metric's result tuple.
    """
    return _dispatch(cfg, data, representation, key)
