r"""Separated Attribute Predictability (SAP), as in disentanglement_lib's ``compute_sap``.

A score matrix :math:`S \in \mathbb R^{m \times K}` rates how well latent :math:`j` alone predicts
factor :math:`k`, and

.. math::
    \mathrm{SAP} = \frac{1}{|\mathcal K|} \sum_{k \in \mathcal K} \big(S_{(1)k} - S_{(2)k}\big),

the mean over factors of the gap between the two best latents.

* Discrete factors (the default): :math:`S_{jk}` is the test accuracy of a one-feature
  ``LinearSVC(C=0.01, class_weight="balanced")`` trained on ``num_train`` points and evaluated on
  ``num_test`` fresh points.
* Continuous factors: :math:`S_{jk} = \mathrm{cov}(z_j, c_k)^2 / (\mathrm{var}\, z_j\, \mathrm{var}\, c_k)`
  (``ddof=1``) on the training points, and 0 when :math:`\mathrm{var}\, z_j \le 10^{-12}`.

Factors that are constant in the training sample are left out with a :class:`ConstantFactorWarning`
(disentanglement_lib fails for them: the SVM cannot train, the correlation divides by zero).

Backends: ``"reference"`` fits scikit-learn's ``LinearSVC`` (liblinear, primal trust-region Newton
under sklearn's ``dual="auto"``); ``"fast"`` solves the same problems exactly in JAX
(:mod:`.linear_svc`). Their accuracies differ only where liblinear's stopping tolerance moves a
decision threshold past a test point: by a few multiples of ``1/num_test`` per entry (liblinear's
objective is within ``SVM_SOLVER`` of the exact minimum). The continuous variant agrees to ``ROUNDOFF``.
disentanglement_lib ran with scikit-learn < 1.5, whose ``LinearSVC`` default was the dual coordinate
descent solver (``dual=True``, 1,000 iterations); the problem is the same, the early stop differs.

References:
    Kumar et al. 2018, "Variational inference of disentangled latent concepts from unlabeled
    observations", https://arxiv.org/abs/1711.00848, Sec. 3; Locatello et al. 2019, Appendix (SAP).
"""

from __future__ import annotations

import dataclasses
import warnings
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array
from jaxtyping import Bool, Float, Int
from sklearn.exceptions import ConvergenceWarning
from sklearn.svm import LinearSVC

from linvae.numeric._precision import float64

from ._backend import Backend, check_backend, warn_dropped
from .ground_truth import (
    GroundTruthData,
    Representation,
    check_codes_factors,
    constant_factors,
    sample_train_test,
)
from .linear_svc import linear_svc_1d_accuracy

SVM_C = 0.01
"""Inverse regularisation of the per-pair LinearSVC (disentanglement_lib)."""


@dataclasses.dataclass(frozen=True, kw_only=True)
class SAPConfig:
    """SAP settings; defaults are disentanglement_lib's (unsupervised_study_v1).

    Attributes:
        num_train: training points (also the points of the continuous variant).
        num_test: test points of the discrete variant.
        batch_size: images per representation call (speed only).
        continuous_factors: use the squared-correlation score instead of SVM accuracy.
        backend: ``"reference"`` (scikit-learn) or ``"fast"`` (exact JAX solver).
    """

    num_train: int = 10_000
    num_test: int = 5_000
    batch_size: int = 256
    continuous_factors: bool = False
    backend: Backend = "reference"


class SAPResult(NamedTuple):
    """SAP and its score matrix.

    Attributes:
        score: the mean top-two gap over kept factors.
        matrix: ``(m, K)`` score matrix (0 in dropped columns).
        kept: ``(K,)`` factors that enter the mean.
        unconverged: number of reference SVM fits that raised a ``ConvergenceWarning`` (0 on ``"fast"``).
    """

    score: float
    matrix: Float[np.ndarray, "m k"]
    kept: Bool[np.ndarray, " k"]
    unconverged: int


def sap_from_matrix(matrix: Float[np.ndarray, "m k"], kept: Bool[np.ndarray, " k"]) -> float:
    """Mean over the kept columns of the gap between the two largest entries."""
    if matrix.shape[0] < 2:
        raise ValueError(f"SAP needs at least two latents; got {matrix.shape[0]}")
    top = np.sort(matrix[:, kept], axis=0)
    return float(np.mean(top[-1] - top[-2]))


def _continuous_reference(codes: np.ndarray, factors: np.ndarray) -> np.ndarray:
    out = np.zeros((codes.shape[1], factors.shape[1]))
    for j in range(codes.shape[1]):
        for k in range(factors.shape[1]):
            cov = np.cov(codes[:, j], factors[:, k], ddof=1)
            out[j, k] = cov[0, 1] ** 2 / (cov[0, 0] * cov[1, 1]) if cov[0, 0] > 1e-12 else 0.0
    return out


@jax.jit
def _continuous_fast(codes: Float[Array, "n m"], factors: Float[Array, "n k"]) -> Float[Array, "m k"]:
    n = codes.shape[0]
    zc = codes - jnp.mean(codes, axis=0, keepdims=True)
    fc = factors - jnp.mean(factors, axis=0, keepdims=True)
    cov = zc.T @ fc / (n - 1)
    var_z = jnp.sum(zc * zc, axis=0) / (n - 1)
    var_f = jnp.sum(fc * fc, axis=0) / (n - 1)
    score = cov**2 / (var_z[:, None] * var_f[None, :])
    return jnp.where(var_z[:, None] > 1e-12, score, 0.0)


def _svm_reference(codes, labels, codes_test, labels_test) -> tuple[np.ndarray, int]:
    acc = np.zeros(codes.shape[1])
    unconverged = 0
    for j in range(codes.shape[1]):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ConvergenceWarning)
            clf = LinearSVC(C=SVM_C, class_weight="balanced").fit(codes[:, j : j + 1], labels)
        unconverged += sum(issubclass(w.category, ConvergenceWarning) for w in caught)
        for w in caught:
            if not issubclass(w.category, ConvergenceWarning):
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        acc[j] = np.mean(clf.predict(codes_test[:, j : j + 1]) == labels_test)
    return acc, unconverged


@float64
def _continuous_fast_host(codes: np.ndarray, factors: np.ndarray) -> np.ndarray:
    return np.asarray(_continuous_fast(jnp.asarray(codes), jnp.asarray(factors, dtype=jnp.float64)))


def sap(
    codes: Float[np.ndarray | Array, "n m"],
    factors: Int[np.ndarray | Array, "n k"],
    codes_test: Float[np.ndarray | Array, "t m"] | None = None,
    factors_test: Int[np.ndarray | Array, "t k"] | None = None,
    cfg: SAPConfig = SAPConfig(),
) -> SAPResult:
    """SAP of precomputed codes against factor class indices.

    Args:
        codes: training codes ``(n, m)``, ``m >= 2``.
        factors: training class indices ``(n, K)``.
        codes_test: test codes (required unless ``cfg.continuous_factors``).
        factors_test: test class indices.
        cfg: variant and backend.

    Returns:
        The :class:`SAPResult`.
    """
    check_backend(cfg.backend)
    codes, factors = check_codes_factors(codes, factors)
    dropped = constant_factors(factors)
    kept = np.ones(factors.shape[1], dtype=bool)
    kept[dropped] = False
    warn_dropped("SAP", dropped)
    if not kept.any():
        raise ValueError("SAP: every factor is constant in the sample")
    matrix = np.zeros((codes.shape[1], factors.shape[1]))
    unconverged = 0
    if cfg.continuous_factors:
        if cfg.backend == "reference":
            matrix[:, kept] = _continuous_reference(codes, factors[:, kept])
        else:
            matrix[:, kept] = _continuous_fast_host(codes, factors[:, kept])
    else:
        if codes_test is None or factors_test is None:
            raise ValueError("discrete SAP needs codes_test and factors_test")
        codes_test, factors_test = check_codes_factors(codes_test, factors_test)
        for k in np.flatnonzero(kept):
            if cfg.backend == "reference":
                matrix[:, k], bad = _svm_reference(codes, factors[:, k], codes_test, factors_test[:, k])
                unconverged += bad
            else:
                matrix[:, k] = linear_svc_1d_accuracy(
                    codes, factors[:, k], codes_test, factors_test[:, k], C=SVM_C
                )
    return SAPResult(score=sap_from_matrix(matrix, kept), matrix=matrix, kept=kept, unconverged=unconverged)


def sap_on_data(
    data: GroundTruthData, representation: Representation, cfg: SAPConfig = SAPConfig(), *, key: Array
) -> SAPResult:
    """SAP of a representation on train/test points sampled from ``data`` with ``key``."""
    codes, factors, codes_test, factors_test = sample_train_test(
        data,
        representation,
        key=key,
        num_train=cfg.num_train,
        num_test=cfg.num_test,
        batch_size=cfg.batch_size,
    )
    return sap(codes, factors, codes_test, factors_test, cfg)
