r"""The BetaVAE score, as in disentanglement_lib's ``compute_beta_vae_sklearn``.

Each point draws a factor :math:`k` uniformly and two groups of ``group_size`` (64) factor rows,
:math:`c^{(1)}, c^{(2)}`, with :math:`c^{(2)}_k` set to :math:`c^{(1)}_k` row by row; its feature is

.. math::
    \phi = \frac{1}{B} \sum_{b=1}^{B} \big| z(x(c^{(1)}_b)) - z(x(c^{(2)}_b)) \big| \in \mathbb R^m,

and its label :math:`k`. A ``LogisticRegression`` (scikit-learn defaults: lbfgs, C = 1, 100 iterations,
multinomial) is trained on ``num_train`` (10,000) points; the score is its accuracy on ``num_eval``
(5,000) fresh points. disentanglement_lib ran with scikit-learn < 0.22, whose default was liblinear
one-vs-rest; current defaults are used here (a stated difference in the classifier, not the features).

Backends: the features are computed by numpy (``"reference"``) or JAX (``"fast"``, equal to
``ROUNDOFF``); the classifier is scikit-learn on both. A ``ConvergenceWarning`` of lbfgs is caught and
reported as ``converged=False``.

References:
    Higgins et al. 2017, "beta-VAE: learning basic visual concepts with a constrained variational
    framework", ICLR, Sec. 3; Locatello et al. 2019, Appendix (BetaVAE score).
"""

from __future__ import annotations

import dataclasses
import warnings
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array
from jaxtyping import Float, Int
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression

from linvae.numeric._precision import float64

from ._backend import Backend, check_backend
from .ground_truth import GroundTruthData, Representation, encode, numpy_generator, sample_factors


@dataclasses.dataclass(frozen=True, kw_only=True)
class BetaVAEConfig:
    """BetaVAE-score settings; defaults are disentanglement_lib's.

    Attributes:
        group_size: pairs averaged per point (disentanglement_lib's ``batch_size``).
        num_train: training points.
        num_eval: evaluation points.
        batch_size: images per representation call (speed only).
        backend: ``"reference"`` (numpy features) or ``"fast"`` (JAX features).
    """

    group_size: int = 64
    num_train: int = 10_000
    num_eval: int = 5_000
    batch_size: int = 4096
    backend: Backend = "reference"


class BetaVAEResult(NamedTuple):
    """BetaVAE score.

    Attributes:
        train_accuracy: logistic-regression accuracy on the training points.
        eval_accuracy: accuracy on the evaluation points (the score).
        converged: whether lbfgs converged within its iteration budget.
    """

    train_accuracy: float
    eval_accuracy: float
    converged: bool


def sample_pair_groups(
    data: GroundTruthData, *, key: Array, num_points: int, group_size: int
) -> tuple[Int[np.ndarray, " p"], Int[np.ndarray, "p b k"], Int[np.ndarray, "p b k"]]:
    """Labels and two ``(p, group_size, K)`` factor groups agreeing, row by row, in the labelled factor."""
    key_label, key_first, key_second = jax.random.split(key, 3)
    num_factors = len(data.factor_sizes)
    labels = numpy_generator(key_label).integers(0, num_factors, num_points)
    first = sample_factors(data, key=key_first, num_points=num_points * group_size)
    second = sample_factors(data, key=key_second, num_points=num_points * group_size)
    first = first.reshape(num_points, group_size, num_factors)
    second = second.reshape(num_points, group_size, num_factors)
    p = np.arange(num_points)
    second[p, :, labels] = first[p, :, labels]
    return labels, first, second


def features_reference(codes_first: Float[np.ndarray, "p b m"], codes_second: Float[np.ndarray, "p b m"]):
    """Per point, the mean absolute code difference over its pairs (numpy)."""
    return np.stack([np.mean(np.abs(a - b), axis=0) for a, b in zip(codes_first, codes_second, strict=True)])


@jax.jit
def _features(first: Float[Array, "p b m"], second: Float[Array, "p b m"]) -> Float[Array, "p m"]:
    return jnp.mean(jnp.abs(first - second), axis=1)


@float64
def features_fast(codes_first: Float[np.ndarray, "p b m"], codes_second: Float[np.ndarray, "p b m"]):
    """Per point, the mean absolute code difference over its pairs (JAX float64)."""
    return np.asarray(
        _features(jnp.asarray(codes_first, jnp.float64), jnp.asarray(codes_second, jnp.float64))
    )


def beta_vae_from_features(
    train_features: Float[np.ndarray, "p m"],
    train_labels: Int[np.ndarray, " p"],
    eval_features: Float[np.ndarray, "q m"],
    eval_labels: Int[np.ndarray, " q"],
) -> BetaVAEResult:
    """Train and eval accuracy of scikit-learn's default ``LogisticRegression`` on precomputed features."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        model = LogisticRegression().fit(train_features, train_labels)
    converged = True
    for w in caught:
        if issubclass(w.category, ConvergenceWarning):
            converged = False
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    train_accuracy = float(np.mean(model.predict(train_features) == train_labels))
    eval_accuracy = float(np.mean(model.predict(eval_features) == eval_labels))
    return BetaVAEResult(train_accuracy, eval_accuracy, converged)


def beta_vae_score(
    data: GroundTruthData, representation: Representation, cfg: BetaVAEConfig = BetaVAEConfig(), *, key: Array
) -> BetaVAEResult:
    """BetaVAE score of a representation on ``data``.

    Args:
        data: the ground-truth data set.
        representation: the batched mean encoder.
        cfg: sizes and backend.
        key: PRNG key (split into the training and evaluation draws).

    Returns:
        The :class:`BetaVAEResult`.
    """
    check_backend(cfg.backend)
    num_factors = len(data.factor_sizes)
    sets = []
    for key_set, num_points in zip(jax.random.split(key), (cfg.num_train, cfg.num_eval), strict=True):
        labels, first, second = sample_pair_groups(
            data, key=key_set, num_points=num_points, group_size=cfg.group_size
        )
        codes = [
            encode(data, representation, g.reshape(-1, num_factors), batch_size=cfg.batch_size).reshape(
                num_points, cfg.group_size, -1
            )
            for g in (first, second)
        ]
        featurize = features_reference if cfg.backend == "reference" else features_fast
        sets.append((featurize(*codes), labels))
    return beta_vae_from_features(sets[0][0], sets[0][1], sets[1][0], sets[1][1])
