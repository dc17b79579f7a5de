r"""The alternating (block) map of the linear λβ-VAE (THEORY.md §3.3), run to convergence.

**Decoder block** (exact minimiser over :math:`(A, \Sigma_Z)` given the encoder; independent of β and λ):

.. math::
    A = \Sigma_YB^\top\Sigma_X^{-1},\qquad \Sigma_Z = E = \Sigma_Y - \Sigma_YB^\top\Sigma_X^{-1}B\Sigma_Y
      = (\Sigma_Y^{-1} + B^\top\Sigma_W^{-1}B)^{-1}.

For D2 :math:`\sigma_d^2 = \operatorname{tr}E / n`; for D3 :math:`\Sigma_Z` stays :math:`\sigma_d^2 I`.

**Encoder block** (exact minimiser over :math:`(B, \Sigma_W)` given the decoder), :math:`N = \Sigma_Z^{-1} + 2\lambda I`:

.. math::
    \Sigma_W = \beta(\beta I_m + A^\top NA)^{-1},\qquad B = (\beta I_m + A^\top NA)^{-1}A^\top N ;

the diagonal encoder (E2) takes :math:`(\Sigma_W)_{ii} = \beta / (\beta + (A^\top NA)_{ii})` and the same B.

One sweep is decoder then encoder. The stopping rule is the published one: after every half-step,
stop when the Frobenius change of both matrices of that block is at most ``tol`` (the first decoder
step is never tested). Each half-step minimises a block, so the loss never increases (T4).

Theorems: ``decoder-block`` (T3), ``encoder-block`` (T4), ``gain-identity`` (T5), ``gain-contraction``
(T6), ``collapse-limit`` (T8).
"""

from __future__ import annotations

import functools
import warnings
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import Array

from linvae.numeric._linalg import fro, inv_spd, inv_spd_small, solve_spd, sym
from linvae.numeric._precision import float64
from linvae.numeric._validation import as_finite_array, check_beta_lam, check_latent_dim, check_spd
from linvae.numeric.loss import sigma_x
from linvae.numeric.model import D1, State, Variant
from linvae.numeric.problem import Problem


class DegenerateProblemWarning(UserWarning):
    """β ≤ 1 in the D1 model: the optimum is not attained or the loss is unbounded (THEORY.md §3.10)."""


class NotConvergedWarning(UserWarning):
    """The alternating map hit its iteration cap, or produced non-finite values."""


# ---------------------------------------------------------------------------------------------------
# Blocks
# ---------------------------------------------------------------------------------------------------


def decoder_block(Sigma_Y: Array, B: Array, Sigma_W: Array, variant: Variant = D1) -> tuple[Array, Array]:
    """Exact minimiser ``(A, Sigma_Z)`` of the loss given the encoder ``(B, Sigma_W)`` (THEORY.md §3.3).

    Theorem: decoder-block
    """
    n = Sigma_Y.shape[-1]
    SyBt = Sigma_Y @ B.T
    A = solve_spd(sigma_x(Sigma_Y, B, Sigma_W), SyBt.T).T
    E = sym(Sigma_Y - A @ SyBt.T)
    eye = jnp.eye(n, dtype=Sigma_Y.dtype)
    if variant.decoder == "full":
        Sigma_Z = E
    elif variant.decoder == "isotropic":
        Sigma_Z = (jnp.trace(E) / n) * eye
    else:
        Sigma_Z = variant.sigma_d2 * eye
    return A, Sigma_Z


def _encoder_from_NA(A: Array, NA: Array, beta, variant: Variant, inverse=inv_spd):
    """``(B, Sigma_W, Sigma_W^{-1})`` of the encoder block from ``N A``; ``inverse`` inverts an SPD matrix."""
    m = A.shape[-1]
    H = sym(A.T @ NA)
    M = beta * jnp.eye(m, dtype=A.dtype) + H
    Mi = inverse(M)
    B = Mi @ NA.T
    if variant.encoder == "full":
        return B, beta * Mi, M / beta
    d = beta + jnp.diagonal(H)
    return B, jnp.diag(beta / d), jnp.diag(d / beta)


def encoder_block(A: Array, Sigma_Z: Array, beta, lam, variant: Variant = D1) -> tuple[Array, Array]:
    r"""Exact minimiser ``(B, Sigma_W)`` of :math:`\mathcal L_{\lambda\beta}` given the decoder (THEORY.md §3.3).

    Theorem: encoder-block
    """
    NA = solve_spd(Sigma_Z, A) + 2.0 * lam * A
    return _encoder_from_NA(A, NA, beta, variant)[:2]


# ---------------------------------------------------------------------------------------------------
# The map, run to the published stopping rule, in the eigenbasis of Sigma_Y
# ---------------------------------------------------------------------------------------------------
#
# Inside the map every quantity is carried in the eigenbasis of Sigma_Y = U diag(mu) U^T:
# B~ = B U, A~ = U^T A, Sigma~_Z = U^T Sigma_Z U. Frobenius norms are invariant under U, so the published
# stopping rule is unchanged. There Sigma_Y is diagonal, the decoder covariance is the low-rank update
# Sigma~_Z = diag(mu) - A~ S^T with S = diag(mu) B~^T, and its precision is the second Woodbury form
# diag(1/mu) + B~^T Sigma_W^{-1} B~ (THEORY.md §3.3). Every step then costs O(n m^2) instead of O(n^2 m)
# or O(n^3); (n, n) matrices appear only when the final state is rotated back.


class _Carry(NamedTuple):
    Bt: Array  # (m, n) encoder mean map in the eigenbasis
    Sigma_W: Array
    Sigma_W_inv: Array  # carried: the encoder block yields it exactly as M / beta
    At: Array  # (n, m) last decoder mean map in the eigenbasis
    S: Array  # (n, m) diag(mu) B~^T of the encoder that produced At
    s2: Array  # isotropic decoder variance (D2/D3); unused for D1
    sweeps: Array
    done: Array
    delta: Array


def _lowrank_change(dA: Array, dS: Array, A0: Array, S1: Array) -> Array:
    """``||A1 S1^T - A0 S0^T||_F`` for ``A1 = A0 + dA``, ``S1 = S0 + dS`` through (m, m) Gram matrices.

    ``A1 S1^T - A0 S0^T = dA S1^T + A0 dS^T``; every term of its squared norm is a product of the small
    differences, so no large terms cancel.
    """
    t1 = jnp.sum((S1.T @ S1) * (dA.T @ dA))
    t2 = jnp.sum((dS.T @ dS) * (A0.T @ A0))
    t3 = jnp.sum((dA.T @ A0) * (S1.T @ dS))
    return jnp.sqrt(jnp.maximum(t1 + t2 + 2.0 * t3, 0.0))


@functools.partial(jax.jit, static_argnames=("variant",))
def _run(mu, U, beta, lam, B0, Sigma_W0, tol, max_sweeps, variant: Variant) -> State:
    n, m = mu.shape[0], B0.shape[-2]
    dt = mu.dtype
    sum_mu = jnp.sum(mu)

    def body(c: _Carry) -> _Carry:
        # Decoder block: A~ = S Sigma_X^{-1}, Sigma~_Z = diag(mu) - A~ S^T (or its isotropic version).
        S1 = mu[:, None] * c.Bt.T
        A1 = S1 @ inv_spd_small(c.Bt @ S1 + c.Sigma_W)
        dA = A1 - c.At
        if variant.decoder == "full":
            dZ = _lowrank_change(dA, S1 - c.S, c.At, S1)
            s2 = c.s2
        elif variant.decoder == "isotropic":
            s2 = (sum_mu - jnp.sum(A1 * S1)) / n
            dZ = jnp.sqrt(n) * jnp.abs(s2 - c.s2)
        else:
            s2, dZ = c.s2, jnp.zeros((), dt)
        d_dec = jnp.maximum(fro(dA), dZ)
        dec_stop = (c.sweeps > 0) & (d_dec <= tol)
        # Encoder block with N A~ = Sigma~_Z^{-1} A~ + 2 lam A~.
        if variant.decoder == "full":
            PA = A1 / mu[:, None] + c.Bt.T @ (c.Sigma_W_inv @ (c.Bt @ A1))
        else:
            PA = A1 / s2
        B1, W1, Wi1 = _encoder_from_NA(A1, PA + 2.0 * lam * A1, beta, variant, inv_spd_small)
        d_enc = jnp.maximum(fro(B1 - c.Bt), fro(W1 - c.Sigma_W))
        enc_stop = d_enc <= tol
        # Stopping at the decoder half-step keeps the encoder that produced this decoder.
        Bt = jnp.where(dec_stop, c.Bt, B1)
        W = jnp.where(dec_stop, c.Sigma_W, W1)
        Wi = jnp.where(dec_stop, c.Sigma_W_inv, Wi1)
        delta = jnp.where(dec_stop, d_dec, jnp.maximum(d_dec, d_enc))
        return _Carry(Bt, W, Wi, A1, S1, s2, c.sweeps + 1, dec_stop | enc_stop, delta)

    def cond(c: _Carry) -> Array:
        return (~c.done) & (c.sweeps < max_sweeps) & jnp.isfinite(c.delta)

    s2_0 = jnp.asarray(variant.sigma_d2 if variant.decoder == "fixed" else 0.0, dt)
    zeros = jnp.zeros((n, m), dt)
    c0 = _Carry(
        B0 @ U,
        Sigma_W0,
        inv_spd(Sigma_W0),
        zeros,
        zeros,
        s2_0,
        jnp.asarray(0, jnp.int32),
        jnp.asarray(False),
        jnp.asarray(0.0, dt),
    )
    c = jax.lax.while_loop(cond, body, c0)
    if variant.decoder == "full":
        Zt = sym(jnp.diag(mu) - c.At @ c.S.T)
        Sigma_Z = sym(U @ Zt @ U.T)
    else:
        Sigma_Z = c.s2 * jnp.eye(n, dtype=dt)
    finite = jnp.isfinite(c.delta)
    return State(c.Bt @ U.T, c.Sigma_W, U @ c.At, Sigma_Z, c.sweeps, c.done & finite, c.delta)


# ---------------------------------------------------------------------------------------------------
# Initialisation
# ---------------------------------------------------------------------------------------------------


def spd_matrix(key: Array, dim: int) -> Array:
    r"""A random SPD matrix with scikit-learn's ``make_spd_matrix`` recipe, drawn with a JAX key.

    :math:`A \sim U[0,1)^{d\times d}`, :math:`USV^\top = \mathrm{svd}(A^\top A)`,
    :math:`X = U(1 + \mathrm{diag}(u))V^\top`, :math:`u \sim U[0,1)^d`; eigenvalues lie in [1, 2).
    """
    kA, ku = jax.random.split(key)
    A = jax.random.uniform(kA, (dim, dim), dtype=jnp.float64)
    U, _, Vt = jnp.linalg.svd(A.T @ A)
    u = jax.random.uniform(ku, (dim,), dtype=jnp.float64)
    return sym((U * (1.0 + u)[None, :]) @ Vt)


def random_init(key: Array, n: int, m: int) -> tuple[Array, Array]:
    """The published initialisation scheme: ``B ~ U[0,1)^{m x n}``, ``Sigma_W`` from :func:`spd_matrix`."""
    kB, kW = jax.random.split(key)
    return jax.random.uniform(kB, (m, n), dtype=jnp.float64), spd_matrix(kW, m)


def _as_key(key) -> Array:
    if isinstance(key, int | jnp.integer) and not isinstance(key, bool):
        return jax.random.key(int(key))
    return key


# ---------------------------------------------------------------------------------------------------
# Public entry points
# ---------------------------------------------------------------------------------------------------


def _warn_degenerate(betas, lams, variant: Variant) -> None:
    """One warning per call for the degenerate β ≤ 1 regimes of D1 (THEORY.md §3.10)."""
    if variant.decoder != "full":
        return
    notes = []
    if any(b < 1 for b in betas):
        notes.append("beta < 1: the loss is unbounded below; the map runs to its cap or diverges")
    if any(b == 1 for b in betas) and any(lam > 0 for lam in lams):
        notes.append(
            "beta = 1 with lam > 0: the infimum is not attained (Sigma_W -> 0); the result "
            "reflects the stopping rule"
        )
    if any(b == 1 for b in betas) and any(lam == 0 for lam in lams):
        notes.append("beta = 1 with lam = 0: the optimum is a continuum; the result depends on the start")
    if notes:
        warnings.warn(
            "degenerate D1 problem (THEORY.md §3.10): " + "; ".join(notes),
            DegenerateProblemWarning,
            stacklevel=3,
        )


def _warn_unconverged(st: State) -> None:
    bad = int(jnp.sum(~st.converged))
    if bad:
        warnings.warn(
            f"{bad} of {st.converged.size} run(s) did not meet the stopping rule (iteration cap or "
            f"non-finite values); inspect State.converged / State.delta",
            NotConvergedWarning,
            stacklevel=3,
        )


def _check_init(init, n: int, m: int | None) -> tuple[Array, Array]:
    B0, W0 = init
    B0 = as_finite_array("init B0", B0)
    W0 = as_finite_array("init Sigma_W0", W0)
    if B0.ndim < 2 or B0.shape[-1] != n:
        raise ValueError(f"init B0 must have shape (..., m, n) with n = {n}; got {B0.shape}")
    mm = B0.shape[-2]
    if m is not None and mm != m:
        raise ValueError(f"init B0 has m = {mm} rows but m = {m} was requested")
    if W0.shape != B0.shape[:-2] + (mm, mm):
        raise ValueError(f"init Sigma_W0 must have shape {B0.shape[:-2] + (mm, mm)}; got {W0.shape}")
    for W in W0.reshape(-1, mm, mm):
        check_spd("init Sigma_W0", W)
    return jnp.asarray(B0), jnp.asarray(0.5 * (W0 + jnp.swapaxes(W0, -1, -2)))


def _initial_dims(prob: Problem, m, init) -> int:
    n = prob.n
    if m is None and init is None:
        raise ValueError("give the latent dimension m (or an init (B0, Sigma_W0))")
    return check_latent_dim(m if m is not None else jnp.shape(init[0])[-2], n)


def _check_run_options(tol, max_sweeps) -> None:
    if not (float(tol) > 0):
        raise ValueError(f"tol must be > 0; got {tol}")
    if int(max_sweeps) != max_sweeps or max_sweeps < 1:
        raise ValueError(f"max_sweeps must be a positive integer; got {max_sweeps}")


@float64
def alternating(
    prob: Problem,
    beta,
    lam=0.0,
    m: int | None = None,
    *,
    key=0,
    init=None,
    num_inits: int | None = None,
    variant: Variant = D1,
    tol: float = 1e-10,
    max_sweeps: int = 20_000,
) -> State:
    r"""Run the alternating block map to convergence (THEORY.md §3.3).

    Args:
        prob: the data model.
        beta: KL weight :math:`\beta > 0` (β ≤ 1 is legal but degenerate in D1 and warns).
        lam: weight :math:`\lambda \ge 0` of the auxiliary L2 reconstruction term.
        m: latent dimension, ``1 <= m <= n`` (taken from ``init`` if omitted).
        key: int seed or JAX key for the published random initialisation (:func:`random_init`).
        init: explicit initial encoder ``(B0, Sigma_W0)``, optionally batched ``(k, m, n), (k, m, m)``.
        num_inits: if given, run this many random initialisations at once (vmapped); the result has a
            leading axis of that length.
        variant: model variant (default D1/E1, the authors' setting).
        tol: Frobenius stopping tolerance of a block change (published: 1e-6 for n = 50, 1e-5 for n = 100).
        max_sweeps: cap on decoder+encoder sweeps; a capped run is flagged ``converged=False``.

    Returns:
        :class:`State` (``B, Sigma_W, A, Sigma_Z, steps, converged, delta``).

    Theorem: encoder-block, gain-identity, collapse-limit
    """
    beta, lam = check_beta_lam(beta, lam)
    _check_run_options(tol, max_sweeps)
    m = _initial_dims(prob, m, init)
    n = prob.n
    if init is not None:
        B0, W0 = _check_init(init, n, m)
    elif num_inits is not None:
        keys = jax.random.split(_as_key(key), int(num_inits))
        B0, W0 = jax.vmap(lambda k: random_init(k, n, m))(keys)
    else:
        B0, W0 = random_init(_as_key(key), n, m)
    _warn_degenerate([beta], [lam], variant)
    run = lambda b, w: _run(prob.mu, prob.U, beta, lam, b, w, tol, max_sweeps, variant)  # noqa: E731
    for _ in range(B0.ndim - 2):
        run = jax.vmap(run)
    st = run(B0, W0)
    _warn_unconverged(st)
    return st


@float64
def alternating_grid(
    prob: Problem,
    betas,
    lams,
    init,
    *,
    variant: Variant = D1,
    tol: float = 1e-10,
    max_sweeps: int = 20_000,
    warn: bool = True,
) -> State:
    r"""The map over a (β, λ) grid and a batch of initialisations, in one compiled, vmapped call.

    Args:
        prob: the data model.
        betas: KL weights, shape (b,).
        lams: L2 weights, shape (l,).
        init: initial encoders ``(B0, Sigma_W0)`` of shapes (k, m, n) and (k, m, m).
        variant, tol, max_sweeps: as in :func:`alternating`.
        warn: emit the degenerate-problem and not-converged warnings.

    Returns:
        :class:`State` whose fields have leading axes (b, l, k). All lanes of one call iterate until the
        slowest has stopped (finished lanes are frozen), so group cells of similar difficulty per call.
    """
    betas = [check_beta_lam(b, 0.0)[0] for b in as_finite_array("betas", betas, ndim=1)]
    lams = [check_beta_lam(1.0, x)[1] for x in as_finite_array("lams", lams, ndim=1)]
    _check_run_options(tol, max_sweeps)
    B0, W0 = _check_init(init, prob.n, None)
    if B0.ndim != 3:
        raise ValueError(f"init must be batched: B0 of shape (k, m, n); got {B0.shape}")
    if warn:
        _warn_degenerate(betas, lams, variant)
    run = lambda b, lam, B, W: _run(prob.mu, prob.U, b, lam, B, W, tol, max_sweeps, variant)  # noqa: E731
    run = jax.vmap(run, in_axes=(None, None, 0, 0))
    run = jax.vmap(run, in_axes=(None, 0, None, None))
    run = jax.vmap(run, in_axes=(0, None, None, None))
    st = run(jnp.asarray(betas), jnp.asarray(lams), B0, W0)
    if warn:
        _warn_unconverged(st)
    return st


@float64
def gain(st: State) -> Array:
    r"""The precision-weighted encoder gain :math:`K = \Sigma_W^{-1}B` (batched states give batched gains).

    Along the map :math:`K_{t+1} = (K_t + 2\lambda A_t^\top)/\beta`; at λ = 0, :math:`K_t = \beta^{-t}K_0`.

    Theorem: gain-identity, gain-contraction, raw-gain-bound
    """
    W = jnp.asarray(st.Sigma_W, jnp.float64)
    return solve_spd(W, jnp.asarray(st.B, jnp.float64))
