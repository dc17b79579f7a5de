r"""Disentanglement, completeness and informativeness (DCI), as in disentanglement_lib's ``compute_dci``.

For each factor :math:`k` a ``GradientBoostingClassifier`` (scikit-learn defaults) predicts
:math:`c_k` from all codes; its impurity importances give column :math:`k` of
:math:`R \in \mathbb R_{\ge 0}^{m \times K}`. With :math:`H_b(p) = -\sum_i p_i \log_b p_i` and the
reference's additive :math:`\epsilon = 10^{-11}` before normalising each row / column,

.. math::
    D_j = 1 - H_K\Big(\frac{R_{j\cdot} + \epsilon}{\sum_k (R_{jk} + \epsilon)}\Big), \quad
    D = \sum_j \frac{\sum_k R_{jk}}{\sum_{jk} R_{jk}} D_j, \qquad
    C_k = 1 - H_m\Big(\frac{R_{\cdot k} + \epsilon}{\sum_j (R_{jk} + \epsilon)}\Big), \quad
    C = \sum_k \frac{\sum_j R_{jk}}{\sum_{jk} R_{jk}} C_k,

(uniform weights if :math:`R = 0`; :math:`D_j = 1` when :math:`K = 1` and :math:`C_k = 1` when
:math:`m = 1`, where the reference divides by :math:`\log 1`), and informativeness is the mean over
factors of the classifiers'
train and test accuracies. Defaults: 10,000 train / 5,000 test points.

Two paths (``DCIConfig.backend``):

* ``"reference"``: scikit-learn's ``GradientBoostingClassifier`` (defaults: log-loss, 100 stages of
  depth-3 least-squares trees, learning rate 0.1, one tree per class and stage), as
  disentanglement_lib; about 500 s per model at the published sizes (10 codes, dSprites' 3 + 6 +
  40 + 32 + 32 classes) on a 2-core CPU, since every split of every tree is searched over all
  10,000 sorted values.
* ``"fast"`` (the default): the same boosting, written out in numpy (:mod:`.boosted_trees`): same
  init, residuals, split criterion, Newton leaf values, learning rate, impurity importances and test
  thresholds, the trees of one stage grown together from histograms (one sparse product per level),
  one factor per CPU core. The only change is where a split may fall: between ``num_bins`` = 256
  bins of each code (a code with at most 256 distinct values keeps them all, and then the trees are
  the reference's; otherwise one edge in eight sits in the widest gaps between values and the rest
  at quantiles) instead of between any two of its 10,000 values.

Agreement, measured at the published sizes on a disentangled, an entangled and a partially
collapsed synthetic 10-latent code of dSprites' factor grid (``benchmarks/dci.py``,
``benchmarks/results/dci.json``, figure ``docs/deep/dci-agreement.png``): importance entries within
0.030 (accepted: ``FAST_IMPORTANCE_ATOL`` = 0.05), :math:`D` within 0.012 and :math:`C` within 0.018,
the test informativeness (the reported :math:`I`) within 0.004 (accepted: ``FAST_SCORE_ATOL`` = 0.03),
the train informativeness 0.03-0.055 below the reference's (accepted: ``FAST_TRAIN_ACCURACY_ATOL`` =
0.08): the reference cuts finer through the training noise. The fast path's :math:`D` and :math:`C`
came out 0.002-0.018 lower on all three codes. At the CI size of the tests (1,000 points, 30 stages)
the differences are 0.005 on :math:`R` and 0.010 on the scores, while the reference differs from itself
by up to 0.001 between ``random_state`` values (both paths break ties between codes that isolate the
same points at random). Speed at the published sizes on the 2-core CPU: see ``dci.json``.

The classifiers' ``random_state`` (the fast path's generator) is drawn from the key
(disentanglement_lib leaves it unset, so its importances vary between runs where splits tie).
Factors constant in the training sample are left out with a :class:`ConstantFactorWarning` (the
classifier cannot train on one class).

References:
    Eastwood & Williams 2018, "A framework for the quantitative evaluation of disentangled
    representations", ICLR, Sec. 2; Locatello et al. 2019, Appendix (DCI).
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import os
from typing import NamedTuple

import jax
import numpy as np
import scipy.stats
from jax import Array
from jaxtyping import Bool, Float, Int
from sklearn.ensemble import GradientBoostingClassifier

from ._backend import Backend, check_backend, warn_dropped
from .boosted_trees import bin_codes, fit_boosted
from .ground_truth import (
    GroundTruthData,
    Representation,
    check_codes_factors,
    constant_factors,
    numpy_generator,
    sample_train_test,
)

_EPS = 1e-11  # disentanglement_lib's smoothing of the importance rows/columns
FAST_NUM_BINS = 256
MAX_BINS = 256  # the fast path routes bin indices as uint8
FAST_IMPORTANCE_ATOL = 0.05
"""Largest |fast - reference| of an importance entry accepted (columns sum to 1); measured 0.030."""
FAST_SCORE_ATOL = 0.03
"""Largest |fast - reference| of D, C and the test informativeness accepted; measured 0.018, 0.004."""
FAST_TRAIN_ACCURACY_ATOL = 0.08
"""Largest |fast - reference| of the train informativeness accepted; measured 0.055 (the reference,
splitting between any two of 10,000 values, fits the training noise more finely: its train accuracy
is higher at the same test accuracy)."""
"""Quantile bins per code on the fast path: the split candidates of its trees."""


@dataclasses.dataclass(frozen=True, kw_only=True)
class DCIConfig:
    """DCI settings; defaults are disentanglement_lib's.

    Attributes:
        num_train: points the classifiers are trained on.
        num_test: points the test accuracy is measured on.
        batch_size: images per representation call (speed only).
        n_estimators: boosting stages per classifier (sklearn's default 100 is the reference).
        backend: ``"fast"`` (the default: the same boosting on binned codes, :mod:`.boosted_trees`)
            or ``"reference"`` (scikit-learn's ``GradientBoostingClassifier``); see the module docstring.
        num_bins: split candidates per code on ``"fast"`` (at most 256; ignored by ``"reference"``).
    """

    num_train: int = 10_000
    num_test: int = 5_000
    batch_size: int = 256
    n_estimators: int = 100
    backend: Backend = "fast"
    num_bins: int = FAST_NUM_BINS


def _threads() -> int:
    """CPU cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


class DCIResult(NamedTuple):
    """DCI scores and the importance matrix.

    Attributes:
        disentanglement: :math:`D`.
        completeness: :math:`C`.
        informativeness_train: mean train accuracy over kept factors.
        informativeness_test: mean test accuracy over kept factors.
        importance: ``(m, K_kept)`` importance matrix :math:`R` (kept factors only).
        kept: ``(K,)`` factors that were scored.
    """

    disentanglement: float
    completeness: float
    informativeness_train: float
    informativeness_test: float
    importance: Float[np.ndarray, "m k"]
    kept: Bool[np.ndarray, " k"]


def disentanglement(importance: Float[np.ndarray, "m k"]) -> float:
    """Importance-weighted mean over codes of :math:`1 - H_K` of each code's normalised row."""
    importance = np.asarray(importance, dtype=np.float64)
    if importance.shape[1] == 1:  # one factor: H_1 is undefined (log 1 = 0); every code is pure
        per_code = np.ones(importance.shape[0])
    else:
        per_code = 1.0 - scipy.stats.entropy(importance.T + _EPS, base=importance.shape[1])
    weights = importance if importance.sum() != 0.0 else np.ones_like(importance)
    return float(np.sum(per_code * weights.sum(axis=1) / weights.sum()))


def completeness(importance: Float[np.ndarray, "m k"]) -> float:
    """Importance-weighted mean over factors of :math:`1 - H_m` of each factor's normalised column."""
    importance = np.asarray(importance, dtype=np.float64)
    if importance.shape[0] == 1:  # one code: H_1 is undefined (log 1 = 0); every factor is complete
        per_factor = np.ones(importance.shape[1])
    else:
        per_factor = 1.0 - scipy.stats.entropy(importance + _EPS, base=importance.shape[0])
    weights = importance if importance.sum() != 0.0 else np.ones_like(importance)
    return float(np.sum(per_factor * weights.sum(axis=0) / weights.sum()))


def dci(
    codes: Float[np.ndarray | Array, "n m"],
    factors: Int[np.ndarray | Array, "n k"],
    codes_test: Float[np.ndarray | Array, "t m"],
    factors_test: Int[np.ndarray | Array, "t k"],
    cfg: DCIConfig = DCIConfig(),
    *,
    key: Array,
) -> DCIResult:
    """DCI of precomputed train/test codes against factor class indices.

    Args:
        codes: training codes ``(n, m)``.
        factors: training class indices ``(n, K)``.
        codes_test: test codes ``(t, m)``.
        factors_test: test class indices ``(t, K)``.
        cfg: classifier size.
        key: PRNG key for the classifiers' ``random_state``.

    Returns:
        The :class:`DCIResult`.
    """
    check_backend(cfg.backend)
    if not 2 <= cfg.num_bins <= MAX_BINS:
        raise ValueError(f"DCI: num_bins must be in 2..{MAX_BINS}; got {cfg.num_bins}")
    codes, factors = check_codes_factors(codes, factors)
    codes_test, factors_test = check_codes_factors(codes_test, factors_test)
    if codes_test.shape[1] != codes.shape[1] or factors_test.shape[1] != factors.shape[1]:
        raise ValueError(
            f"DCI: test codes/factors {codes_test.shape}/{factors_test.shape} must have the training"
            f" ones' columns {codes.shape[1]}/{factors.shape[1]}"
        )
    dropped = constant_factors(factors)
    kept = np.ones(factors.shape[1], dtype=bool)
    kept[dropped] = False
    warn_dropped("DCI", dropped)
    if not kept.any():
        raise ValueError("DCI: every factor is constant in the sample")
    rng = numpy_generator(key)
    seeds = rng.integers(0, np.iinfo(np.int32).max, factors.shape[1])
    columns, train_acc, test_acc = [], [], []
    if cfg.backend == "fast":
        binned = bin_codes(codes, codes_test, cfg.num_bins)
        order = np.flatnonzero(kept)

        def fit(k: int):
            rng_k = np.random.default_rng(int(seeds[k]))
            return fit_boosted(
                binned, factors[:, k], factors_test[:, k], n_estimators=cfg.n_estimators, rng=rng_k
            )

        # one factor per thread (numpy and scipy release the GIL in the histogram work); each factor
        # has its own generator, so the result does not depend on the threads
        with concurrent.futures.ThreadPoolExecutor(min(_threads(), order.size)) as pool:
            fits = dict(zip(order, pool.map(fit, order), strict=True))
        for k in order:
            columns.append(fits[k].importance)
            train_acc.append(fits[k].train_accuracy)
            test_acc.append(fits[k].test_accuracy)
    else:
        for k in np.flatnonzero(kept):
            model = GradientBoostingClassifier(n_estimators=cfg.n_estimators, random_state=int(seeds[k]))
            model.fit(codes, factors[:, k])
            columns.append(np.abs(model.feature_importances_))
            train_acc.append(np.mean(model.predict(codes) == factors[:, k]))
            test_acc.append(np.mean(model.predict(codes_test) == factors_test[:, k]))
    importance = np.stack(columns, axis=1)
    return DCIResult(
        disentanglement=disentanglement(importance),
        completeness=completeness(importance),
        informativeness_train=float(np.mean(train_acc)),
        informativeness_test=float(np.mean(test_acc)),
        importance=importance,
        kept=kept,
    )


def dci_on_data(
    data: GroundTruthData, representation: Representation, cfg: DCIConfig = DCIConfig(), *, key: Array
) -> DCIResult:
    """DCI of a representation on train/test points sampled from ``data``.

    One half of the split key samples the points, the other seeds the trees.
    """
    key_sample, key_trees = jax.random.split(key)
    codes, factors, codes_test, factors_test = sample_train_test(
        data,
        representation,
        key=key_sample,
        num_train=cfg.num_train,
        num_test=cfg.num_test,
        batch_size=cfg.batch_size,
    )
    return dci(codes, factors, codes_test, factors_test, cfg, key=key_trees)
