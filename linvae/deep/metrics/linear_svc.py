r"""The exact one-feature linear SVM of scikit-learn's ``LinearSVC`` (squared hinge, L2, liblinear OvR).

For one feature :math:`x_i` and labels :math:`y_i \in \{-1, +1\}`, liblinear (which ``LinearSVC``
calls, with ``fit_intercept=True, intercept_scaling=1``) minimises over :math:`\theta = (w, b)`, the
intercept being regularised like the weight,

.. math::
    f(\theta) = \tfrac12 (w^2 + b^2) + \sum_i C_i \max\big(0,\ 1 - y_i (w x_i + b)\big)^2,

with :math:`C_i = C_{+}` for :math:`y_i = +1` and :math:`C_{-}` otherwise. With
``class_weight="balanced"`` the weight of class :math:`c` is :math:`\omega_c = n / (P\, n_c)` over the
:math:`P` classes present, and liblinear uses

* two classes :math:`c_0 < c_1`: one problem, :math:`y = +1` for :math:`c_1`, :math:`C_+ = C\omega_{c_1}`,
  :math:`C_- = C\omega_{c_0}`; predict :math:`c_1` iff :math:`w x + b > 0`;
* :math:`P \ge 3` classes, one-vs-rest: problem :math:`c` has :math:`y = +1` for class :math:`c`,
  :math:`C_+ = C\omega_c` and **unweighted** :math:`C_- = C`; predict the first
  :math:`\arg\max_c (w_c x + b_c)`.

:func:`fit_linear_svc_1d` solves each problem to machine precision by generalised Newton steps
(:math:`f` is convex and piecewise quadratic, with Hessian :math:`I + 2\sum_{\text{active}} C_i
\tilde x_i \tilde x_i^\top`, :math:`\tilde x_i = (x_i, 1)`) with Armijo backtracking. On the sorted
feature the active points of each label sign form a prefix or a suffix of the ranks, and a class's
share of a rank range is a range of the (class, rank)-sorted samples: after two sorts and two sets of
prefix sums per latent (shared by all its problems), every Newton step of every problem costs O(log n).
liblinear's trust-region Newton solver (TRON) instead stops at a gradient norm of
:math:`10^{-4}\max(\min(n_+, n_-), 1)/n` times the initial one. Its objective then exceeds the exact
minimum by at most ~2e-4 relative (``SVM_SOLVER``), but where slope and intercept are ill-conditioned
(codes far from zero relative to their spread) its :math:`(w, b)` can be off by tens of percent.
The decision rule is reproduced bit for bit (sklearn's coefficients through :func:`predict_linear_svc_1d`
give sklearn's predictions), so the accuracies differ only by test points that the two solutions put on
opposite sides of a threshold: at most 2 of 5,000 per classifier for centred codes in
``tests/deep/test_metrics_sap.py`` and ``benchmarks/metrics.py``.

References:
    Fan et al. 2008, "LIBLINEAR: a library for large linear classification", JMLR 9
    (``train``, ``l2r_l2_svc_fun``);
    Mangasarian 2002, "A finite Newton method for classification", Optim. Methods Softw. 17.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array
from jaxtyping import Float, Int

from linvae.numeric._precision import float64

from ._backend import padded_size

_MAX_NEWTON_STEPS = 100
_MIN_SAMPLES = 1024  # small problems share one compiled solver; their solve time is negligible
_ARMIJO = 1e-4


class _Sorted(NamedTuple):
    """One latent's centred feature, sorted two ways, with prefix sums of its powers.

    ``xs`` is the feature in ascending order and ``total[r, i]`` the sum of ``xs[:i] ** r``
    (r = 0, 1, 2; padding samples weigh 0). ``keys`` sorts the samples by (class, rank of x):
    ``keys = class * n + rank``, so each class is a contiguous run ordered by x, and ``by_class[r, i]``
    are the prefix sums of the powers in that order.
    """

    xs: Float[Array, " n"]
    total: Float[Array, "3 n1"]
    keys: Int[Array, " n"]
    by_class: Float[Array, "3 n1"]


class _Problem(NamedTuple):
    """A binary problem: ``y = +1`` (cost ``cp``) for class ``positive``, ``y = -1`` (cost ``cn``) else."""

    positive: Int[Array, ""]
    cp: Float[Array, ""]
    cn: Float[Array, ""]


def _active_sums(
    theta: Float[Array, " 2"], data: _Sorted, problem: _Problem
) -> tuple[Float[Array, " 3"], Float[Array, " 3"]]:
    r"""Cost-weighted sums of :math:`x_i^r` over the active points of each sign at :math:`\theta = (w, b)`.

    Point i is active iff :math:`y_i (w x_i + b) < 1`: for y = +1 iff :math:`w x_i < 1 - b`, for y = -1
    iff :math:`w x_i > -1 - b`. Each is a range of ranks of x (a prefix or a suffix), found by
    bisection; the positive class's share of a rank range is found by bisection on ``keys``.
    """
    w, b = theta[0], theta[1]
    n = data.xs.shape[0]
    flat = w == 0.0
    thresholds = jnp.stack([1.0 - b, -1.0 - b]) / jnp.where(flat, 1.0, w)
    left = jnp.searchsorted(data.xs, thresholds, side="left")  # #{x < t}
    right = jnp.searchsorted(data.xs, thresholds, side="right")  # #{x <= t}
    # y = +1 is active below its threshold when w > 0, y = -1 above; w < 0 swaps; w = 0: all or none.
    below = jnp.stack([w > 0.0, w < 0.0])
    everything = jnp.stack([b < 1.0, b > -1.0])
    lo = jnp.where(flat, 0, jnp.where(below, 0, right))
    hi = jnp.where(flat, jnp.where(everything, n, 0), jnp.where(below, left, n))
    # positions in the class-sorted order of the positive class's samples with rank < lo / hi
    bounds = jnp.searchsorted(data.keys, problem.positive * n + jnp.concatenate([lo, hi]), side="left")
    in_class = data.by_class[:, bounds[2:]] - data.by_class[:, bounds[:2]]  # (3, 2): both signs' ranges
    everyone = data.total[:, hi] - data.total[:, lo]
    return problem.cp * in_class[:, 0], problem.cn * (everyone[:, 1] - in_class[:, 1])


def _objective_gradient_hessian(theta, data: _Sorted, problem: _Problem, reg: Float[Array, "2 2"]):
    r"""f, grad f and the generalised Hessian from the active-set sums (O(log n)).

    With :math:`A_r = \sum_{\text{active}, y_i = y} C_i x_i^r`, each sign contributes
    :math:`(1 - y b)^2 A_0 - 2 (1 - y b) y w A_1 + w^2 A_2` to f, :math:`2 (w A_2 + b A_1 - y A_1,\
    w A_1 + b A_0 - y A_0)` to the gradient and :math:`2 [[A_2, A_1], [A_1, A_0]]` to the Hessian.
    """
    w, b = theta[0], theta[1]
    f = 0.5 * theta @ (reg @ theta)
    g = reg @ theta
    h = reg
    for sums, y in zip(_active_sums(theta, data, problem), (1.0, -1.0), strict=True):
        a0, a1, a2 = sums[0], sums[1], sums[2]
        f = f + (1.0 - y * b) ** 2 * a0 - 2.0 * (1.0 - y * b) * y * w * a1 + w * w * a2
        g = g + 2.0 * jnp.stack([w * a2 + b * a1 - y * a1, w * a1 + b * a0 - y * a0])
        h = h + 2.0 * jnp.stack([jnp.stack([a2, a1]), jnp.stack([a1, a0])])
    return f, g, h


def _solve_sorted(data: _Sorted, problem: _Problem, mu: Float[Array, ""]) -> Float[Array, " 2"]:
    r"""Exact minimiser for one binary problem, given prefix sums over the centred feature.

    The feature is centred, :math:`x' = x - \mu`, for conditioning; with :math:`b' = b + w\mu` the
    margins are unchanged and the regulariser :math:`w^2 + b^2` becomes :math:`\theta'^\top R \theta'`,
    :math:`R = [[1 + \mu^2, -\mu], [-\mu, 1]]`. Returns :math:`(w, b)` of the original problem.
    """
    dtype = data.xs.dtype
    tiny = jnp.finfo(dtype).eps
    reg = jnp.stack([jnp.stack([1.0 + mu * mu, -mu]), jnp.stack([-mu, jnp.ones_like(mu)])])

    def newton(state):
        theta, f, _, it = state
        _, g, h = _objective_gradient_hessian(theta, data, problem, reg)
        det = h[0, 0] * h[1, 1] - h[0, 1] * h[1, 0]
        step = -jnp.stack([h[1, 1] * g[0] - h[0, 1] * g[1], h[0, 0] * g[1] - h[1, 0] * g[0]]) / det
        slope = g @ step
        # Roundoff slack: at the optimum the Newton step is ~eps and f cannot decrease measurably.
        slack = 64 * tiny * (jnp.abs(f) + 1.0)

        def too_long(trial):
            s, f_s = trial
            return (f_s > f + _ARMIJO * s * slope + slack) & (s > 1e-10)

        def shrink(trial):
            s = 0.5 * trial[0]
            return s, _objective_gradient_hessian(theta + s * step, data, problem, reg)[0]

        one = jnp.asarray(1.0, dtype=dtype)
        first = _objective_gradient_hessian(theta + step, data, problem, reg)[0]
        s, f_new = jax.lax.while_loop(too_long, shrink, (one, first))
        new = theta + s * step
        moved = jnp.max(jnp.abs(new - theta)) > 4 * tiny * (1.0 + jnp.max(jnp.abs(new)))
        return new, f_new, moved, it + 1

    def going(state):
        return state[2] & (state[3] < _MAX_NEWTON_STEPS)

    theta0 = jnp.zeros(2, dtype=dtype)
    f0 = _objective_gradient_hessian(theta0, data, problem, reg)[0]
    theta = jax.lax.while_loop(going, newton, (theta0, f0, jnp.asarray(True), jnp.asarray(0)))[0]
    return jnp.stack([theta[0], theta[1] - theta[0] * mu])


def _prefix(values: Float[Array, "p n"]) -> Float[Array, "p n1"]:
    return jnp.concatenate([jnp.zeros_like(values[:, :1]), jnp.cumsum(values, axis=1)], axis=1)


@jax.jit
def _solve_latent(
    x: Float[Array, " n"], labels: Int[Array, " n"], mask: Float[Array, " n"], problems: _Problem
) -> Float[Array, "q 2"]:
    """Exact ``(w, b)`` of every binary problem on one latent ``x`` (``labels``: class of each sample).

    Two sorts and two sets of prefix sums per latent (O(n log n), independent of the number of
    problems); every Newton step of every problem is then O(log n). Compiled per (n, q) only.
    """
    n = x.shape[0]
    mu = jnp.sum(mask * x) / jnp.sum(mask)
    order = jnp.argsort(x)
    xs = x[order] - mu
    rank = jnp.zeros(n, dtype=labels.dtype).at[order].set(jnp.arange(n, dtype=labels.dtype))
    keys = labels * n + rank
    by_key = jnp.argsort(keys)
    xc, mc = x[by_key] - mu, mask[by_key]
    ms = mask[order]
    data = _Sorted(
        xs=xs,
        total=_prefix(jnp.stack([ms, ms * xs, ms * xs * xs])),
        keys=keys[by_key],
        by_class=_prefix(jnp.stack([mc, mc * xc, mc * xc * xc])),
    )
    return jax.vmap(lambda problem: _solve_sorted(data, problem, mu))(problems)


class LinearSVC1D(NamedTuple):
    """Fitted one-feature classifiers, one per latent, for one factor.

    Attributes:
        classes: ``(P,)`` sorted class labels present in training.
        theta: ``(m, Q, 2)`` ``(w, b)`` of each binary problem (``Q = 1`` if ``P = 2``, else ``P``).
    """

    classes: Int[np.ndarray, " p"]
    theta: Float[np.ndarray, "m q 2"]


@float64
def fit_linear_svc_1d(
    codes: Float[np.ndarray, "n m"], labels: Int[np.ndarray, " n"], *, C: float
) -> LinearSVC1D:
    """Exact balanced one-feature LinearSVC on each latent (one column of ``codes`` each), for one factor.

    Args:
        codes: training codes ``(n, m)``.
        labels: training class indices of the factor (at least two distinct values).
        C: the SVM's inverse regularisation strength.

    Returns:
        The fitted :class:`LinearSVC1D`.
    """
    present, counts = np.unique(labels, return_counts=True)
    if present.size < 2:
        raise ValueError("a classifier needs at least two classes in the training labels")
    n = labels.shape[0]
    weight = n / (present.size * counts)
    index = np.searchsorted(present, labels)
    if present.size == 2:
        positive, cp, cn = np.array([1]), np.array([C * weight[1]]), np.array([C * weight[0]])
    else:
        positive, cp, cn = np.arange(present.size), C * weight, np.full(present.size, C)
    # Pad samples (class P, weight 0) and problems (zero costs: solution 0) to shared buckets.
    num_problems = positive.size
    pad_n = max(padded_size(n), _MIN_SAMPLES) - n
    pad_q = _problem_bucket(num_problems) - num_problems
    problems = _Problem(
        positive=jnp.asarray(np.pad(positive, (0, pad_q), constant_values=present.size)),
        cp=jnp.asarray(np.pad(cp, (0, pad_q)), dtype=jnp.float64),
        cn=jnp.asarray(np.pad(cn, (0, pad_q)), dtype=jnp.float64),
    )
    labels_padded = jnp.asarray(np.pad(index, (0, pad_n), constant_values=present.size))
    mask = jnp.asarray(np.pad(np.ones(n), (0, pad_n)))
    x = np.pad(np.asarray(codes, dtype=np.float64).T, ((0, 0), (0, pad_n)))
    theta = np.stack([np.asarray(_solve_latent(jnp.asarray(xj), labels_padded, mask, problems)) for xj in x])
    return LinearSVC1D(classes=present, theta=theta[:, :num_problems])


def _problem_bucket(q: int) -> int:
    # Newton steps are O(log n), so padded problems cost little; few buckets mean few compilations.
    return 1 if q == 1 else max(8, 1 << (q - 1).bit_length())


@jax.jit
def _predict_index(theta: Float[Array, "m q 2"], x: Float[Array, "m t"]) -> Int[Array, "m t"]:
    scores = theta[:, :, 0, None] * x[:, None, :] + theta[:, :, 1, None]  # (m, q, t)
    if theta.shape[1] == 1:
        return (scores[:, 0, :] > 0).astype(jnp.int32)
    return jnp.argmax(scores, axis=1).astype(jnp.int32)


@float64
def predict_linear_svc_1d(model: LinearSVC1D, codes: Float[np.ndarray, "t m"]) -> Int[np.ndarray, "t m"]:
    """Predicted class label of every code under each latent's classifier (sklearn's decision rule)."""
    t = codes.shape[0]
    x = np.pad(np.asarray(codes, dtype=np.float64).T, ((0, 0), (0, padded_size(t) - t)))
    index = np.asarray(_predict_index(jnp.asarray(model.theta), jnp.asarray(x)))[:, :t]
    return model.classes[index].T


def linear_svc_1d_accuracy(
    codes: Float[np.ndarray, "n m"],
    labels: Int[np.ndarray, " n"],
    codes_test: Float[np.ndarray, "t m"],
    labels_test: Int[np.ndarray, " t"],
    *,
    C: float,
) -> Float[np.ndarray, " m"]:
    """Test accuracy of the exact balanced one-feature LinearSVC on each latent, for one factor.

    Args:
        codes: training codes ``(n, m)``; latent ``j`` is the single feature of classifier ``j``.
        labels: training class indices of the factor (at least two distinct values).
        codes_test: test codes ``(t, m)``.
        labels_test: test class indices.
        C: the SVM's inverse regularisation strength.

    Returns:
        ``(m,)`` fraction of test labels predicted correctly.
    """
    pred = predict_linear_svc_1d(fit_linear_svc_1d(codes, labels, C=C), codes_test)
    return np.mean(pred == labels_test[:, None], axis=0)
