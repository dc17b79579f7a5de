r"""scikit-learn's ``GradientBoostingClassifier`` (defaults) on histogram-binned codes, vectorised.

The algorithm is the reference's, step for step, except where a split may fall:

* init: class log-priors (multiclass, one tree per class and stage) or the prior's logit (two
  classes, one tree per stage);
* each stage fits, per tree, a depth-3 least-squares regression tree to the negative gradient
  :math:`g = y - p` of the (half) multinomial / binomial log-loss: a node splits where
  :math:`S_L^2/N_L + S_R^2/N_R` is largest (both children non-empty; nodes of fewer than 2 points
  or with zero residual variance are leaves), ties between features broken by a random feature order
  per node as scikit-learn's splitter does;
* leaves take one Newton step, :math:`\frac{K-1}{K}\sum g / \sum p(1-p)` (:math:`K` classes; the
  factor is 1 for two classes), added with learning rate 0.1;
* the impurity importance of a split is :math:`(S_L^2/N_L + S_R^2/N_R - S^2/N) / n` (the decrease
  of the node's squared error over the root's size); a feature's importance is the sum over trees,
  normalised to sum 1 (scikit-learn's mean over non-stump trees, normalised, is the same vector).

Split candidates are the edges between ``num_bins`` quantile bins of each code (computed on the
float32 codes, as scikit-learn casts its input) instead of every midpoint between distinct values.
A code with at most ``num_bins`` distinct values is binned exactly, and then the fitted trees are the
reference's up to the order of floating-point sums. Histograms of one level of every tree are one
sparse-times-dense product (bins x points times points x trees); a child's histogram is its parent's
minus its sibling's.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import scipy.sparse
from jaxtyping import Float, Int

MAX_DEPTH = 3  # scikit-learn's GradientBoostingClassifier default
LEARNING_RATE = 0.1  # scikit-learn's default
_SAFE_DIVIDE = 1e-150  # scikit-learn's _safe_divide: a smaller mean hessian gives a zero leaf
GAP_FRACTION = 8  # one edge in eight goes to the widest gaps between distinct values
_FEATURE_THRESHOLD = 1e-7  # scikit-learn's tree: values closer than this are one value
_PROB_CLIP = float(np.finfo(np.float64).eps)  # the prior is clipped to [eps, 1 - eps] before the link


class Binned(NamedTuple):
    """Codes mapped to bin indices, with the sparse bin-membership matrix of the training codes.

    Attributes:
        bins: ``(n, m)`` bin index of each training code.
        codes_test: ``(t, m)`` float32-cast test codes (routed by value, as scikit-learn's ``predict``).
        bin_low: ``(m, num_bins)`` smallest training value in each bin (``nan`` if empty).
        bin_high: ``(m, num_bins)`` largest training value in each bin (``nan`` if empty).
        membership: ``(m * num_bins, n)`` CSC 0/1 matrix, row ``j * num_bins + b`` marks the points
            whose code ``j`` falls in bin ``b``.
        num_bins: bins per code (the histogram width; some codes use fewer).
    """

    bins: Int[np.ndarray, "n m"]
    codes_test: Float[np.ndarray, "t m"]
    bin_low: Float[np.ndarray, "m b"]
    bin_high: Float[np.ndarray, "m b"]
    membership: scipy.sparse.csc_matrix
    num_bins: int


def bin_edges(x: Float[np.ndarray, " n"], num_bins: int) -> Float[np.ndarray, " e"]:
    """At most ``num_bins - 1`` increasing edges: midpoints between distinct values of ``x``.

    Every distinct value gets its own bin when there are at most ``num_bins``; otherwise
    ``num_bins / GAP_FRACTION`` edges sit in the widest gaps between distinct values and the rest
    at the midpoints just below evenly spaced quantiles (ties never straddle an edge). Quantiles
    alone put a bin across the gap between two clusters of a well-separated code, where the
    reference splits exactly, and the trees then spend later splits on other codes.
    """
    values = np.unique(x)
    # scikit-learn never splits between sorted values closer than FEATURE_THRESHOLD
    gaps = np.diff(values) > _FEATURE_THRESHOLD
    mids = (values[:-1][gaps] + values[1:][gaps]) / 2.0
    if mids.size < num_bins:
        return mids
    # the widest gaps (cluster boundaries, where the reference puts its splits) ...
    num_gaps = num_bins // GAP_FRACTION
    widest = np.argsort(np.diff(values)[gaps], kind="stable")[-num_gaps:]
    # ... and the edge just below the value at each quantile rank of the rest
    ranks = np.round(np.linspace(0, x.size, num_bins - num_gaps + 1)[1:-1]).astype(np.int64)
    at = np.searchsorted(mids, np.sort(x)[ranks])
    return mids[np.union1d(widest, at[at > 0] - 1)]


def bin_codes(codes: Float[np.ndarray, "n m"], codes_test: Float[np.ndarray, "t m"], num_bins: int) -> Binned:
    """Bin each code of the float32-cast training codes at its :func:`bin_edges`.

    A point exactly on an edge goes to the lower bin (scikit-learn sends ``x <= threshold`` left).
    The test codes are kept as values: a split's threshold for them is scikit-learn's, the midpoint
    between the node's last training value on the left and its first on the right.
    """
    train = np.asarray(codes, dtype=np.float32).astype(np.float64)
    test = np.asarray(codes_test, dtype=np.float32).astype(np.float64)
    n, m = train.shape
    bins = np.empty((n, m), dtype=np.int64)
    low = np.full((m, num_bins), np.nan)
    high = np.full((m, num_bins), np.nan)
    for j in range(m):
        edges = bin_edges(train[:, j], num_bins)
        bins[:, j] = np.searchsorted(edges, train[:, j], side="left")
        ordered = np.sort(train[:, j])
        first = np.searchsorted(edges, ordered, side="left")
        used = np.unique(first)
        low[j, used] = ordered[np.searchsorted(first, used, side="left")]
        high[j, used] = ordered[np.searchsorted(first, used, side="right") - 1]
    rows = (bins + num_bins * np.arange(m)).ravel()
    cols = np.repeat(np.arange(n), m)
    # CSC (a column per point): the product scatters each point's row into its m bins, reading the
    # dense columns in order; about 4x faster than CSR's gathers at these sizes
    membership = scipy.sparse.csc_matrix(
        (np.ones(n * m), (rows, cols)), shape=(m * num_bins, n), dtype=np.float64
    )
    membership.sum_duplicates()
    return Binned(bins, test, low, high, membership, num_bins)


class BoostedFit(NamedTuple):
    """What DCI needs from one boosted classifier.

    Attributes:
        importance: ``(m,)`` impurity importances summing to 1 (0 if no tree ever split).
        train_accuracy: accuracy of the final model on the training points.
        test_accuracy: accuracy on the test points.
    """

    importance: Float[np.ndarray, " m"]
    train_accuracy: float
    test_accuracy: float


def _histograms(binned: Binned, columns: Float[np.ndarray, "n c"]) -> Float[np.ndarray, "c m b"]:
    """Per column, the sums of its entries over the points of each (code, bin)."""
    m = binned.bins.shape[1]
    out = binned.membership @ columns  # (m * B, c)
    return out.reshape(m, binned.num_bins, columns.shape[1]).transpose(2, 0, 1)


def _best_splits(
    sums: Float[np.ndarray, "t p m b"],
    counts: Float[np.ndarray, "t p m b"],
    order: Int[np.ndarray, "t p m"],
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The best (code, bin) split of every node from its histograms.

    Returns ``(feature, threshold, gain)``: the code split on, the last bin that goes left, and the
    squared-error decrease :math:`S_L^2/N_L + S_R^2/N_R - S^2/N`. A node without a valid split (one
    point, or all its points in one bin of every code) gets gain 0 and sends every point one way,
    which is the reference's leaf; so does a node of equal residuals (gain 0 at every split).
    """
    left_sum = np.cumsum(sums, axis=-1)
    left_n = np.cumsum(counts, axis=-1)
    total = left_sum[..., -1:].copy()
    size = np.maximum(left_n[..., -1:], 1.0)
    # proxy = S_L^2 / N_L + S_R^2 / N_R, in place; an empty side contributes 0 / 1 = 0, so an invalid
    # position scores S^2 / N, which no valid split is below
    proxy, left_n = left_sum[..., :-1], left_n[..., :-1]
    right = np.subtract(total, proxy)
    right *= right
    right_n = np.subtract(size, left_n)
    right /= np.maximum(right_n, 1.0, out=right_n)
    np.square(proxy, out=proxy)
    proxy /= np.maximum(left_n, 1.0, out=left_n)
    proxy += right
    best_bin = np.argmax(proxy, axis=-1)  # first (lowest) threshold among ties, as scikit-learn
    best = np.take_along_axis(proxy, best_bin[..., None], axis=-1)[..., 0]  # (t, p, m)
    # features in a random order per node; the first best in that order wins (scikit-learn)
    pick = np.argmax(np.take_along_axis(best, order, axis=-1), axis=-1)
    feature = np.take_along_axis(order, pick[..., None], axis=-1)[..., 0]
    proxy_best = np.take_along_axis(best, feature[..., None], axis=-1)[..., 0]
    threshold = np.take_along_axis(best_bin, feature[..., None], axis=-1)[..., 0]
    root = total[:, :, 0, 0] ** 2 / size[:, :, 0, 0]
    return feature, threshold, np.maximum(proxy_best - root, 0.0)


def _threshold_values(
    binned: Binned,
    counts: Float[np.ndarray, "t p m b"],
    feature: Int[np.ndarray, "t p"],
    threshold: Int[np.ndarray, "t p"],
    bin_index: Int[np.ndarray, " b"],
) -> Float[np.ndarray, "t p"]:
    """scikit-learn's threshold of each split: ``a / 2 + b / 2`` for the node's last training value
    ``a`` on the left and first ``b`` on the right (``a`` if that rounds to ``b``); exact when every
    distinct value has its own bin, else the extremes of the bins. ``-inf`` / ``inf`` where the
    training points all went right / left."""
    node_counts = np.take_along_axis(counts, feature[:, :, None, None], axis=2)[:, :, 0, :] > 0.5
    on_left = bin_index <= threshold[..., None]
    last_left = np.max(np.where(node_counts & on_left, bin_index, -1), axis=-1)
    first_right = np.min(np.where(node_counts & ~on_left, bin_index, bin_index.size), axis=-1)
    a = binned.bin_high[feature, np.maximum(last_left, 0)]
    b = binned.bin_low[feature, np.minimum(first_right, bin_index.size - 1)]
    value = a / 2.0 + b / 2.0
    value = np.where(value == b, a, value)
    return np.where(last_left < 0, -np.inf, np.where(first_right >= bin_index.size, np.inf, value))


def fit_boosted(
    binned: Binned,
    labels: Int[np.ndarray, " n"],
    labels_test: Int[np.ndarray, " t"],
    *,
    n_estimators: int,
    rng: np.random.Generator,
) -> BoostedFit:
    """Boost ``n_estimators`` stages of depth-3 trees on the binned codes (see the module docstring).

    Args:
        binned: the training and test codes' bins (:func:`bin_codes`).
        labels: training class labels ``(n,)`` (any integers, at least two distinct).
        labels_test: test class labels ``(t,)``; a label absent from training is never predicted.
        n_estimators: boosting stages.
        rng: draws the feature order of each node's split search.

    Returns:
        The :class:`BoostedFit`.
    """
    classes, y = np.unique(labels, return_inverse=True)
    if classes.size < 2:
        raise ValueError(f"boosting needs at least two classes; got {classes.size}")
    n, m = binned.bins.shape
    n_test = binned.codes_test.shape[0]
    num_bins = binned.num_bins
    num_classes = classes.size
    binary = num_classes == 2
    num_trees = 1 if binary else num_classes
    onehot = (y[:, None] == (np.arange(1, 2) if binary else np.arange(num_classes))[None, :]).astype(float)
    prior = np.clip(np.bincount(y, minlength=num_classes) / n, _PROB_CLIP, 1.0 - _PROB_CLIP)
    init = np.log(prior[1] / prior[0])[None] if binary else np.log(prior)
    raw = np.tile(init, (n, 1))
    raw_test = np.tile(init, (n_test, 1))
    leaf_factor = 1.0 if binary else (num_classes - 1) / num_classes
    root_counts = np.asarray(binned.membership.sum(axis=1)).reshape(1, 1, m, num_bins)
    importance = np.zeros(num_trees * m)
    # routing runs on small integer types (about 5x faster than int64 gathers); point i's code j
    # is bins_flat[i * m + j], tree t's node k at this level is entry t * width + k of a split array
    bin_type = np.uint8 if num_bins <= 256 else np.uint16
    flat_bins, row = binned.bins.astype(bin_type).ravel(), (np.arange(n, dtype=np.int32) * m)[:, None]
    flat_test, row_test = binned.codes_test.ravel(), (np.arange(n_test, dtype=np.int32) * m)[:, None]
    bin_index = np.arange(num_bins)
    tree_index = np.arange(num_trees, dtype=np.int32)
    leaves = 1 << MAX_DEPTH
    for _ in range(n_estimators):
        if binary:
            p = 1.0 / (1.0 + np.exp(-raw))
        else:
            p = raw - raw.max(axis=1, keepdims=True)
            np.exp(p, out=p)
            p /= p.sum(axis=1, keepdims=True)
        grad = onehot - p  # negative gradient, (n, t)
        # tree t's node of each point, numbered 0 .. 2^depth - 1 within the level
        nodes = [np.zeros((n, num_trees), dtype=np.int32), np.zeros((n_test, num_trees), dtype=np.int32)]
        sums = _histograms(binned, grad)[:, None]  # (t, 1, m, B)
        counts = np.broadcast_to(root_counts, sums.shape)
        for depth in range(MAX_DEPTH):
            width = 1 << depth
            order = rng.permuted(np.tile(np.arange(m), (num_trees, width, 1)), axis=-1)
            feature, threshold, gain = _best_splits(sums, counts, order)
            importance += np.bincount(
                (tree_index[:, None] * m + feature).ravel(), gain.ravel() / n, num_trees * m
            )
            flat_feature = feature.astype(np.int32).ravel()
            node, node_test = nodes
            at = tree_index * width + node
            right = flat_bins[row + flat_feature[at]] > threshold.astype(bin_type).ravel()[at]
            node *= 2
            node += right
            at = tree_index * width + node_test
            value = _threshold_values(binned, counts, feature, threshold, bin_index).ravel()
            node_test *= 2
            node_test += flat_test[row_test + flat_feature[at]] > value[at]
            if depth + 1 < MAX_DEPTH:
                # left children's sums and counts by one product; right = parent - left
                node = nodes[0]
                columns = np.empty((n, 2, width, num_trees))
                for k in range(width):
                    left = node == 2 * k
                    np.multiply(grad, left, out=columns[:, 0, k])
                    columns[:, 1, k] = left
                hist = binned.membership @ columns.reshape(n, -1)  # (m * B, 2 * width * t)
                hist = hist.reshape(m, num_bins, 2, width, num_trees).transpose(2, 4, 3, 0, 1)
                left_sums, left_counts = hist[0], hist[1]  # (t, width, m, B)
                shape = (num_trees, 2 * width, m, num_bins)
                sums = np.stack([left_sums, sums - left_sums], axis=2).reshape(shape)
                counts = np.stack([left_counts, counts - left_counts], axis=2).reshape(shape)
        node = nodes[0]
        flat = (tree_index * leaves + node).ravel()
        numerator = np.bincount(flat, grad.ravel(), num_trees * leaves)
        denominator = np.bincount(flat, (p * (1.0 - p)).ravel(), num_trees * leaves)
        size = np.bincount(flat, minlength=num_trees * leaves)
        with np.errstate(divide="ignore", invalid="ignore"):
            safe = np.abs(denominator) >= _SAFE_DIVIDE * np.maximum(size, 1)  # mean hessian, as sklearn
            value = np.where(safe, leaf_factor * numerator / np.where(safe, denominator, 1.0), 0.0)
        value *= LEARNING_RATE
        raw += value[tree_index * leaves + node]
        raw_test += value[tree_index * leaves + nodes[1]]
    importance = importance.reshape(num_trees, m).sum(axis=0)
    total_importance = importance.sum()
    column = importance / total_importance if total_importance > 0 else np.zeros(m)
    predict = (raw[:, 0] >= 0).astype(np.int64) if binary else np.argmax(raw, axis=1)
    predict_test = (raw_test[:, 0] >= 0).astype(np.int64) if binary else np.argmax(raw_test, axis=1)
    return BoostedFit(
        importance=column,
        train_accuracy=float(np.mean(classes[predict] == labels)),
        test_accuracy=float(np.mean(classes[predict_test] == labels_test)),
    )
