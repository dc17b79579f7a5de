r"""The FactorVAE score, as in disentanglement_lib's ``compute_factor_vae``.

1. Global scales: :math:`s_j^2 = \mathrm{var}(z_j)` (``ddof=1``) over ``num_variance_estimate`` points;
   latent :math:`j` is active iff :math:`s_j \ge` ``prune_threshold`` (0.05).
2. A vote draws a factor :math:`k` uniformly, a group of ``group_size`` (64) factor rows sharing the
   value of :math:`c_k` (that of the first row), and records
   :math:`(k,\ \arg\min_{j\ \text{active}} \mathrm{var}_{\text{group}}(z_j) / s_j^2)`.
3. The majority-vote classifier maps each latent to the factor it was voted for most often (the first
   such factor on ties); the score is the fraction of votes it gets right, on ``num_train`` (10,000)
   training votes and on ``num_eval`` (5,000) fresh ones. No active latent: score 0.

Backends: ``"reference"`` computes each vote with numpy as disentanglement_lib does (a loop over
votes); ``"fast"`` computes all group variances, argmins and the vote histogram at once in JAX. They
share the sampled codes and give the same votes (identical except for exact ties in the variance
ratio, which roundoff could order differently). disentanglement_lib stores votes by the argmin's
position among the active latents rather than the latent index; the accuracy is the same either
way, and here votes are indexed by latent. Its ``num_active_dims`` is the length of the boolean mask
(always :math:`m`); ``num_active`` here counts the active latents.

References:
    Kim & Mnih 2018, "Disentangling by factorising", https://arxiv.org/abs/1802.05983, Sec. 4;
    Locatello et al. 2019, Appendix (FactorVAE score).
"""

from __future__ import annotations

import dataclasses
import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array
from jaxtyping import Bool, Float, Int

from linvae.numeric._precision import float64

from ._backend import Backend, check_backend
from .ground_truth import GroundTruthData, Representation, encode, numpy_generator, sample_factors


@dataclasses.dataclass(frozen=True, kw_only=True)
class FactorVAEConfig:
    """FactorVAE-score settings; defaults are disentanglement_lib's.

    Attributes:
        group_size: points per vote sharing the fixed factor (disentanglement_lib's ``batch_size``).
        num_train: training votes.
        num_eval: evaluation votes.
        num_variance_estimate: points for the global variances.
        prune_threshold: minimum global standard deviation of an active latent.
        batch_size: images per representation call (speed only).
        backend: ``"reference"`` (numpy loop) or ``"fast"`` (JAX).
    """

    group_size: int = 64
    num_train: int = 10_000
    num_eval: int = 5_000
    num_variance_estimate: int = 10_000
    prune_threshold: float = 0.05
    batch_size: int = 4096
    backend: Backend = "reference"


class FactorVAEResult(NamedTuple):
    """FactorVAE score and its votes.

    Attributes:
        train_accuracy: majority-vote accuracy on the training votes.
        eval_accuracy: majority-vote accuracy on the evaluation votes (the score).
        num_active: number of active latents.
        active: ``(m,)`` active-latent mask.
        train_votes: ``(K, m)`` vote counts (factor, argmin latent) of the training votes.
        eval_votes: ``(K, m)`` vote counts of the evaluation votes.
    """

    train_accuracy: float
    eval_accuracy: float
    num_active: int
    active: Bool[np.ndarray, " m"]
    train_votes: Int[np.ndarray, "k m"]
    eval_votes: Int[np.ndarray, "k m"]


def sample_fixed_factor_groups(
    data: GroundTruthData, *, key: Array, num_groups: int, group_size: int
) -> tuple[Int[np.ndarray, " g"], Int[np.ndarray, "g b k"]]:
    """Groups of factor rows that share the value of one uniformly drawn factor per group.

    Returns:
        ``(fixed, factors)``: the fixed factor of each group and the ``(g, group_size, K)`` rows, whose
        fixed factor equals the group's first row.
    """
    key_fixed, key_rows = jax.random.split(key)
    num_factors = len(data.factor_sizes)
    fixed = numpy_generator(key_fixed).integers(0, num_factors, num_groups)
    rows = sample_factors(data, key=key_rows, num_points=num_groups * group_size)
    rows = rows.reshape(num_groups, group_size, num_factors)
    g = np.arange(num_groups)
    rows[g, :, fixed] = rows[g, 0, fixed][:, None]
    return fixed, rows


def votes_reference(
    codes: Float[np.ndarray, "g b m"],
    fixed: Int[np.ndarray, " g"],
    global_variances: Float[np.ndarray, " m"],
    active: Bool[np.ndarray, " m"],
    num_factors: int,
) -> Int[np.ndarray, "k m"]:
    """Vote counts, one numpy vote at a time (disentanglement_lib's ``_generate_training_batch``)."""
    votes = np.zeros((num_factors, codes.shape[2]), dtype=np.int64)
    latents = np.flatnonzero(active)
    for g in range(codes.shape[0]):
        local = np.var(codes[g], axis=0, ddof=1)
        votes[fixed[g], latents[np.argmin(local[active] / global_variances[active])]] += 1
    return votes


@functools.partial(jax.jit, static_argnames=("num_factors",))
def _votes(
    codes: Float[Array, "g b m"],
    fixed: Int[Array, " g"],
    global_variances: Float[Array, " m"],
    active: Bool[Array, " m"],
    num_factors: int,
) -> Int[Array, "k m"]:
    local = jnp.var(codes, axis=1, ddof=1)
    ratio = jnp.where(active[None, :], local / jnp.where(active, global_variances, 1.0)[None, :], jnp.inf)
    argmin = jnp.argmin(ratio, axis=1)
    m = codes.shape[2]
    return jnp.bincount(fixed * m + argmin, length=num_factors * m).reshape(num_factors, m)


@float64
def votes_fast(
    codes: Float[np.ndarray, "g b m"],
    fixed: Int[np.ndarray, " g"],
    global_variances: Float[np.ndarray, " m"],
    active: Bool[np.ndarray, " m"],
    num_factors: int,
) -> Int[np.ndarray, "k m"]:
    """Vote counts of all groups at once (JAX float64; equal to :func:`votes_reference`)."""
    out = _votes(
        jnp.asarray(codes, dtype=jnp.float64),
        jnp.asarray(fixed, dtype=jnp.int32),
        jnp.asarray(global_variances, dtype=jnp.float64),
        jnp.asarray(active),
        num_factors,
    )
    return np.asarray(out, dtype=np.int64)


def majority_vote_accuracy(
    train_votes: Int[np.ndarray, "k m"], eval_votes: Int[np.ndarray, "k m"]
) -> tuple[float, float]:
    r"""Train and eval accuracy of the majority vote :math:`j \mapsto \arg\max_k` ``train_votes[k, j]``."""
    classifier = np.argmax(train_votes, axis=0)
    columns = np.arange(train_votes.shape[1])
    train = train_votes[classifier, columns].sum() / train_votes.sum()
    evaluation = eval_votes[classifier, columns].sum() / eval_votes.sum()
    return float(train), float(evaluation)


def factor_vae_score(
    data: GroundTruthData,
    representation: Representation,
    cfg: FactorVAEConfig = FactorVAEConfig(),
    *,
    key: Array,
) -> FactorVAEResult:
    """FactorVAE score of a representation on ``data``.

    Args:
        data: the ground-truth data set.
        representation: the batched mean encoder.
        cfg: sizes, threshold and backend.
        key: PRNG key (split into the variance, training and evaluation draws).

    Returns:
        The :class:`FactorVAEResult`.
    """
    check_backend(cfg.backend)
    key_var, key_train, key_eval = jax.random.split(key, 3)
    num_factors = len(data.factor_sizes)
    rows = sample_factors(data, key=key_var, num_points=cfg.num_variance_estimate)
    global_variances = np.var(encode(data, representation, rows, batch_size=cfg.batch_size), axis=0, ddof=1)
    active = np.sqrt(global_variances) >= cfg.prune_threshold
    if not active.any():
        zero = np.zeros((num_factors, global_variances.size), dtype=np.int64)
        return FactorVAEResult(0.0, 0.0, 0, active, zero, zero)
    counts = []
    for key_set, num_votes in ((key_train, cfg.num_train), (key_eval, cfg.num_eval)):
        fixed, groups = sample_fixed_factor_groups(
            data, key=key_set, num_groups=num_votes, group_size=cfg.group_size
        )
        flat = groups.reshape(-1, num_factors)
        codes = encode(data, representation, flat, batch_size=cfg.batch_size).reshape(
            num_votes, cfg.group_size, -1
        )
        tally = votes_reference if cfg.backend == "reference" else votes_fast
        counts.append(tally(codes, fixed, global_variances, active, num_factors))
    train_accuracy, eval_accuracy = majority_vote_accuracy(counts[0], counts[1])
    return FactorVAEResult(train_accuracy, eval_accuracy, int(active.sum()), active, counts[0], counts[1])
