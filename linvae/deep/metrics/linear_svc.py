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
feature the active points of each label sign form a prefix or a suffix, so after one sort and six
prefix sums per problem every Newton step costs O(log n).
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

from ._backend import padded_size
from ._x64 import require_x64

_MAX_NEWTON_STEPS = 100
_MIN_SAMPLES = 1024  # small problems share one compiled solver; their solve time is negligible
_ARMIJO = 1e-4


class _PrefixSums(NamedTuple):
    """Cumulative sums over the sorted, centred feature of one problem, per label sign.

    ``pos[r, i] = sum_{l < i, y_l = +1} C_l x_l^r`` for r = 0, 1, 2, and ``neg`` likewise for y = -1.
    """

    xs: Float[Array, " n"]
    pos: Float[Array, "3 n1"]
    neg: Float[Array, "3 n1"]


def _range_sums(sums: Float[Array, "3 n1"], lo: Int[Array, ""], hi: Int[Array, ""]) -> Float[Array, " 3"]:
    return sums[:, hi] - sums[:, lo]


def _active_sums(
    theta: Float[Array, " 2"], data: _PrefixSums
) -> tuple[Float[Array, " 3"], Float[Array, " 3"]]:
    r"""Sums of :math:`C_i x_i^r` over the active points of each sign at :math:`\theta = (w, b)`.

    Point i is active iff :math:`y_i (w x_i + b) < 1`: for y = +1 iff :math:`w x_i < 1 - b`, for y = -1
    iff :math:`w x_i > -1 - b`; on the sorted feature each is a prefix or a suffix, found by bisection.
    """
    w, b = theta[0], theta[1]
    n = data.xs.shape[0]
    safe = jnp.where(w == 0.0, 1.0, w)
    zero, full = jnp.asarray(0), jnp.asarray(n)

    def span(threshold, below_when_positive, all_when_flat):
        left = jnp.searchsorted(data.xs, threshold, side="left")  # #{x < threshold}
        right = jnp.searchsorted(data.xs, threshold, side="right")  # #{x <= threshold}
        below = (zero, left)  # x < threshold
        above = (right, full)  # x > threshold
        use_below = (w > 0.0) == below_when_positive
        lo = jnp.where(use_below, below[0], above[0])
        hi = jnp.where(use_below, below[1], above[1])
        lo = jnp.where(w == 0.0, 0, lo)
        hi = jnp.where(w == 0.0, jnp.where(all_when_flat, n, 0), hi)
        return lo, hi

    lo_p, hi_p = span((1.0 - b) / safe, True, b < 1.0)
    lo_n, hi_n = span((-1.0 - b) / safe, False, b > -1.0)
    return _range_sums(data.pos, lo_p, hi_p), _range_sums(data.neg, lo_n, hi_n)


def _objective_gradient_hessian(theta, data: _PrefixSums, reg: Float[Array, "2 2"]):
    r"""f, grad f and the generalised Hessian from the active-set sums (O(log n)).

    With :math:`A_r = \sum_{\text{active}, y_i = y} C_i x_i^r`, each sign contributes
    :math:`(1 - y b)^2 A_0 - 2 (1 - y b) y w A_1 + w^2 A_2` to f, :math:`2 (w A_2 + b A_1 - y A_1,\
    w A_1 + b A_0 - y A_0)` to the gradient and :math:`2 [[A_2, A_1], [A_1, A_0]]` to the Hessian.
    """
    w, b = theta[0], theta[1]
    f = 0.5 * theta @ (reg @ theta)
    g = reg @ theta
    h = reg
    for sums, y in zip(_active_sums(theta, data), (1.0, -1.0), strict=True):
        a0, a1, a2 = sums[0], sums[1], sums[2]
        f = f + (1.0 - y * b) ** 2 * a0 - 2.0 * (1.0 - y * b) * y * w * a1 + w * w * a2
        g = g + 2.0 * jnp.stack([w * a2 + b * a1 - y * a1, w * a1 + b * a0 - y * a0])
        h = h + 2.0 * jnp.stack([jnp.stack([a2, a1]), jnp.stack([a1, a0])])
    return f, g, h


def _solve_sorted(data: _PrefixSums, mu: Float[Array, ""]) -> Float[Array, " 2"]:
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
        _, g, h = _objective_gradient_hessian(theta, data, reg)
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
            return s, _objective_gradient_hessian(theta + s * step, data, reg)[0]

        one = jnp.asarray(1.0, dtype=dtype)
        first = _objective_gradient_hessian(theta + step, data, reg)[0]
        s, f_new = jax.lax.while_loop(too_long, shrink, (one, first))
        new = theta + s * step
        moved = jnp.max(jnp.abs(new - theta)) > 4 * tiny * (1.0 + jnp.max(jnp.abs(new)))
        return new, f_new, moved, it + 1

    def going(state):
        return state[2] & (state[3] < _MAX_NEWTON_STEPS)

    theta0 = jnp.zeros(2, dtype=dtype)
    f0 = _objective_gradient_hessian(theta0, data, reg)[0]
    theta = jax.lax.while_loop(going, newton, (theta0, f0, jnp.asarray(True), jnp.asarray(0)))[0]
    return jnp.stack([theta[0], theta[1] - theta[0] * mu])


def _prefix(values: Float[Array, "p n"]) -> Float[Array, "p n1"]:
    return jnp.concatenate([jnp.zeros_like(values[:, :1]), jnp.cumsum(values, axis=1)], axis=1)


@jax.jit
def _solve_latent(x: Float[Array, " n"], y: Float[Array, "p n"], c: Float[Array, "p n"]) -> Float[Array, "p 2"]:
    """Exact ``(w, b)`` of every binary problem (row of ``y``, ``c``) on one latent ``x``.

    The feature is centred and sorted once and six prefix sums are formed per problem (O(n) each);
    every Newton step is then O(log n). Compiled per (n, p) only: latents are looped over outside.
    """
    mu = jnp.mean(x)
    order = jnp.argsort(x)
    xs = x[order] - mu
    ys, cs = y[:, order], c[:, order]
    powers = jnp.stack([jnp.ones_like(xs), xs, xs * xs])  # (3, n)

    def prefix(weights):  # (p, n) -> (p, 3, n + 1)
        return jax.vmap(_prefix, in_axes=0, out_axes=1)(weights[None, :, :] * powers[:, None, :])

    pos_sums = prefix(jnp.where(ys > 0, cs, 0.0))
    neg_sums = prefix(jnp.where(ys < 0, cs, 0.0))
    return jax.vmap(lambda ps, ns: _solve_sorted(_PrefixSums(xs=xs, pos=ps, neg=ns), mu))(pos_sums, neg_sums)


class LinearSVC1D(NamedTuple):
    """Fitted one-feature classifiers, one per latent, for one factor.

    Attributes:
        classes: ``(P,)`` sorted class labels present in training.
        theta: ``(m, Q, 2)`` ``(w, b)`` of each binary problem (``Q = 1`` if ``P = 2``, else ``P``).
    """

    classes: Int[np.ndarray, " p"]
    theta: Float[np.ndarray, "m q 2"]


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
    require_x64()
    present, counts = np.unique(labels, return_counts=True)
    if present.size < 2:
        raise ValueError("a classifier needs at least two classes in the training labels")
    n = labels.shape[0]
    weight = n / (present.size * counts)
    index = np.searchsorted(present, labels)
    if present.size == 2:
        sign = np.where(index == 1, 1.0, -1.0)[None, :]
        cost = np.where(index == 1, C * weight[1], C * weight[0])[None, :]
    else:
        member = index[None, :] == np.arange(present.size)[:, None]
        sign = np.where(member, 1.0, -1.0)
        cost = np.where(member, C * weight[:, None], C)
    # Pad samples (cost 0: no term in f) and problems (all costs 0: solution 0) to shared buckets.
    num_problems, pad_n = sign.shape[0], max(padded_size(n), _MIN_SAMPLES) - n
    pad_q = _problem_bucket(num_problems) - num_problems
    x = np.pad(np.asarray(codes, dtype=np.float64).T, ((0, 0), (0, pad_n)))
    sign = np.pad(sign, ((0, pad_q), (0, pad_n)), constant_values=1.0)
    cost = np.pad(cost, ((0, pad_q), (0, pad_n)))
    sign, cost = jnp.asarray(sign), jnp.asarray(cost, dtype=jnp.float64)
    theta = np.stack([np.asarray(_solve_latent(jnp.asarray(xj), sign, cost)) for xj in x])
    return LinearSVC1D(classes=present, theta=theta[:, :num_problems])


def _problem_bucket(q: int) -> int:
    return 1 if q == 1 else -(-q // 8) * 8


@jax.jit
def _predict_index(theta: Float[Array, "m q 2"], x: Float[Array, "m t"]) -> Int[Array, "m t"]:
    scores = theta[:, :, 0, None] * x[:, None, :] + theta[:, :, 1, None]  # (m, q, t)
    if theta.shape[1] == 1:
        return (scores[:, 0, :] > 0).astype(jnp.int32)
    return jnp.argmax(scores, axis=1).astype(jnp.int32)


def predict_linear_svc_1d(model: LinearSVC1D, codes: Float[np.ndarray, "t m"]) -> Int[np.ndarray, "t m"]:
    """Predicted class label of every code under each latent's classifier (sklearn's decision rule)."""
    require_x64()
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
