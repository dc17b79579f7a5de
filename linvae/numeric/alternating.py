r"""The alternating (block) map of the linear λβ-VAE (docs/theory.md §3.3), run to convergence.

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

import dataclasses
import functools
import warnings
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array

from linvae._tolerance import NOISE_FLOOR
from linvae.numeric._linalg import fro, inv_spd, solve_spd, sym
from linvae.numeric._precision import float64
from linvae.numeric._validation import as_finite_array, check_beta_lam, check_latent_dim, check_spd
from linvae.numeric.loss import sigma_x
from linvae.numeric.model import D1, State, Variant
from linvae.numeric.problem import Problem


class DegenerateProblemWarning(UserWarning):
    """β ≤ 1 in the D1 model: the optimum is not attained or the loss is unbounded (docs/theory.md §3.10)."""


class NotConvergedWarning(UserWarning):
    """The alternating map hit its iteration cap, or produced non-finite values."""


# ---------------------------------------------------------------------------------------------------
# Blocks
# ---------------------------------------------------------------------------------------------------


@float64
def decoder_block(Sigma_Y: Array, B: Array, Sigma_W: Array, variant: Variant = D1) -> tuple[Array, Array]:
    """Exact minimiser ``(A, Sigma_Z)`` of the loss given the encoder ``(B, Sigma_W)`` (docs/theory.md §3.3).

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


def _encoder_from_NA(A: Array, NA: Array, beta, variant: Variant):
    """``(B, Sigma_W, Sigma_W^{-1})`` of the encoder block from ``N A``."""
    m = A.shape[-1]
    H = sym(A.T @ NA)
    M = beta * jnp.eye(m, dtype=A.dtype) + H
    Mi = inv_spd(M)
    B = Mi @ NA.T
    if variant.encoder == "full":
        return B, beta * Mi, M / beta
    d = beta + jnp.diagonal(H)
    return B, jnp.diag(beta / d), jnp.diag(d / beta)


@float64
def encoder_block(A: Array, Sigma_Z: Array, beta, lam, variant: Variant = D1) -> tuple[Array, Array]:
    r"""Exact minimiser ``(B, Sigma_W)`` of :math:`\mathcal L_{\lambda\beta}` given the decoder (docs/theory.md §3.3).

    Theorem: encoder-block
    """
    NA = solve_spd(Sigma_Z, A) + 2.0 * lam * A
    return _encoder_from_NA(A, NA, beta, variant)[:2]


# ---------------------------------------------------------------------------------------------------
# The map, run to the published stopping rule, in the eigenbasis of Sigma_Y
# ---------------------------------------------------------------------------------------------------
#
# Exact symmetry reduction. When sigma^2 is an eigenvalue of Sigma_Y of multiplicity d > m (the noise
# floor of a factor model: d = n - s), the map commutes with every rotation of that eigenspace. Rotate it,
# per initialisation, so that the floor part of B0's rows spans its first m directions (a QR of the
# d x m block): then B~, A~ and S vanish on the remaining d - m directions at every sweep, Sigma~_Z is
# sigma^2 I there, and the map runs on n_eff = (n - d) + m coordinates with the same Frobenius norms (so
# the same stopping decisions) -- O(n_eff m^2) per sweep instead of O(n m^2): 15 instead of 50 or 100 in
# the published protocol. Eigenvalues within NOISE_FLOOR of sigma^2 are taken as exactly sigma^2.
#
# Inside the map every quantity is carried in the eigenbasis of Sigma_Y = U diag(mu) U^T:
# B~ = B U, A~ = U^T A, Sigma~_Z = U^T Sigma_Z U. Frobenius norms are invariant under U, so the published
# stopping rule is unchanged. There Sigma_Y is diagonal, the decoder covariance is the low-rank update
# Sigma~_Z = diag(mu) - A~ S^T with S = diag(mu) B~^T, and its precision is the second Woodbury form
# diag(1/mu) + B~^T Sigma_W^{-1} B~ (docs/theory.md §3.3). Every step then costs O(n m^2) instead of O(n^2 m)
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


def _decoder_half(mu: Array, Bt: Array, Sigma_W: Array) -> tuple[Array, Array]:
    """One lane's decoder mean map in the eigenbasis: ``S = diag(mu) B~^T``, ``A~ = S Sigma_X^{-1}``."""
    S1 = mu[:, None] * Bt.T
    return S1, S1 @ inv_spd(Bt @ S1 + Sigma_W)


def _run_lanes(mu, U, floor, sum_mu, s2_fixed, beta, lam, B0, Sigma_W0, tol, max_sweeps, variant: Variant) -> State:
    """The map on a flat batch of lanes: ``beta, lam`` of shape (k,), ``B0`` (k, m, n), ``Sigma_W0`` (k, m, m).

    ``mu`` (n_eff,) and the per-lane bases ``U`` (k, n, n_eff) are the (reduced) eigenbasis, ``floor`` the
    eigenvalue of the directions left out, ``sum_mu`` the trace of Sigma_Y, ``s2_fixed`` D3's variance
    (a traced value, so that drawing many sigma_d2 does not recompile; ``variant.sigma_d2`` is unused).

    The lane axis is explicit (not a ``vmap`` of a per-lane loop) so that one batch-level decision can
    skip work that no lane needs: the exact change of the full decoder covariance, about half the cost
    of a sweep, only matters for a lane whose decoder mean change is already within ``tol`` (the block
    stops only if both changes are), so it is computed only in sweeps where some running lane is there.
    Stopping decisions are exactly those of the per-lane rule; ``delta`` is exact for every stopped lane.
    Finished lanes are frozen.
    """
    dt = mu.dtype
    n = B0.shape[-1]
    lanes = jax.vmap
    bcast = lambda x: x[:, None, None]  # noqa: E731  per-lane scalar against per-lane matrices

    def body(c: _Carry) -> _Carry:
        active = (~c.done) & (c.sweeps < max_sweeps) & jnp.isfinite(c.delta)
        # Decoder block: A~ = S Sigma_X^{-1}, Sigma~_Z = diag(mu) - A~ S^T (or its isotropic version).
        S1, A1 = lanes(_decoder_half, in_axes=(None, 0, 0))(mu, c.Bt, c.Sigma_W)
        dA = A1 - c.At
        nA = fro(dA)
        tested = active & (c.sweeps > 0)
        if variant.decoder == "full":
            need = jnp.any(tested & (nA <= tol))
            dZ = jax.lax.cond(
                need,
                lambda: lanes(_lowrank_change)(dA, S1 - c.S, c.At, S1),
                lambda: jnp.zeros_like(nA),
            )
            s2 = c.s2
        elif variant.decoder == "isotropic":
            s2 = (sum_mu - jnp.sum(A1 * S1, axis=(-2, -1))) / n
            dZ = jnp.sqrt(n) * jnp.abs(s2 - c.s2)
        else:
            s2, dZ = c.s2, jnp.zeros_like(nA)
        d_dec = jnp.maximum(nA, dZ)
        dec_stop = tested & (d_dec <= tol)
        # Encoder block with N A~ = Sigma~_Z^{-1} A~ + 2 lam A~.
        if variant.decoder == "full":
            BA = c.Bt @ A1
            PA = A1 / mu[None, :, None] + jnp.swapaxes(c.Bt, -1, -2) @ (c.Sigma_W_inv @ BA)
        else:
            PA = A1 / bcast(s2)
        enc = lambda A, NA, b: _encoder_from_NA(A, NA, b, variant)  # noqa: E731
        B1, W1, Wi1 = lanes(enc)(A1, PA + 2.0 * bcast(lam) * A1, beta)
        d_enc = jnp.maximum(fro(B1 - c.Bt), fro(W1 - c.Sigma_W))
        enc_stop = d_enc <= tol
        # Stopping at the decoder half-step keeps the encoder that produced this decoder.
        keep_enc = bcast(dec_stop | ~active)
        keep = bcast(~active)
        return _Carry(
            jnp.where(keep_enc, c.Bt, B1),
            jnp.where(keep_enc, c.Sigma_W, W1),
            jnp.where(keep_enc, c.Sigma_W_inv, Wi1),
            jnp.where(keep, c.At, A1),
            jnp.where(keep, c.S, S1),
            jnp.where(active, s2, c.s2),
            c.sweeps + active.astype(c.sweeps.dtype),
            c.done | (active & (dec_stop | enc_stop)),
            jnp.where(active, jnp.where(dec_stop, d_dec, jnp.maximum(d_dec, d_enc)), c.delta),
        )

    def cond(c: _Carry) -> Array:
        return jnp.any((~c.done) & (c.sweeps < max_sweeps) & jnp.isfinite(c.delta))

    k, m, n_eff = B0.shape[0], B0.shape[-2], mu.shape[0]
    s2_0 = jnp.broadcast_to(jnp.asarray(s2_fixed, dt), (k,))
    zeros = jnp.zeros((k, n_eff, m), dt)
    c0 = _Carry(
        B0 @ U,
        Sigma_W0,
        inv_spd(Sigma_W0),
        zeros,
        zeros,
        s2_0,
        jnp.zeros((k,), jnp.int32),
        jnp.zeros((k,), bool),
        jnp.zeros((k,), dt),
    )
    c = jax.lax.while_loop(cond, body, c0)

    def rotate_back(U, Bt, At, S, s2):
        eye = jnp.eye(n, dtype=dt)
        if variant.decoder == "full":
            # Sigma_Z = U Z~ U^T on span(U) and floor * I on its complement.
            Zt = sym(jnp.diag(mu - floor) - At @ S.T)
            return Bt @ U.T, U @ At, sym(floor * eye + U @ Zt @ U.T)
        return Bt @ U.T, U @ At, s2 * eye

    B, A, Sigma_Z = lanes(rotate_back)(U, c.Bt, c.At, c.S, c.s2)
    finite = jnp.isfinite(c.delta)
    return State(B, c.Sigma_W, A, Sigma_Z, c.sweeps, c.done & finite, c.delta)


@functools.partial(jax.jit, static_argnames=("variant",))
def _run(mu, U, floor, sum_mu, s2_fixed, beta, lam, B0, Sigma_W0, tol, max_sweeps, variant: Variant) -> State:
    """The map for lanes with any leading shape: ``beta, lam``, ``B0[..., :, :]`` and the bases ``U[..., :, :]``
    broadcast together."""
    lead = jnp.broadcast_shapes(
        jnp.shape(beta), jnp.shape(lam), B0.shape[:-2], Sigma_W0.shape[:-2], U.shape[:-2]
    )
    flat = lambda x, tail: jnp.broadcast_to(x, lead + tail).reshape((-1,) + tail)  # noqa: E731
    m, n_full = B0.shape[-2:]
    st = _run_lanes(
        mu, flat(U, U.shape[-2:]), floor, sum_mu, s2_fixed, flat(beta, ()), flat(lam, ()), flat(B0, (m, n_full)),
        flat(Sigma_W0, (m, m)), tol, max_sweeps, variant,
    )
    return jax.tree_util.tree_map(lambda x: x.reshape(lead + x.shape[1:]), st)


def _reduced_basis(prob: Problem, B0: Array) -> tuple[Array, Array, float]:
    """``(mu_eff, U_eff, floor)`` of the exact symmetry reduction (see above); ``U_eff`` has B0's batch axes.

    Without a reducible noise floor this is the full eigenbasis, shared by every lane.
    """
    mu, U = np.asarray(prob.mu), np.asarray(prob.U)
    m = B0.shape[-2]
    floor = float(prob.sigma2)
    bulk = np.abs(mu - floor) <= NOISE_FLOOR.rtol * mu[0]
    if int(bulk.sum()) <= m:
        return jnp.asarray(mu), jnp.asarray(U), 0.0
    Ub = U[:, bulk]
    Q, _ = np.linalg.qr(Ub.T @ np.swapaxes(np.asarray(B0), -1, -2))  # (..., d, m)
    U_eff = np.concatenate([np.broadcast_to(U[:, ~bulk], Q.shape[:-2] + U[:, ~bulk].shape), Ub @ Q], axis=-1)
    mu_eff = np.concatenate([mu[~bulk], np.full(m, floor)])
    return jnp.asarray(mu_eff), jnp.asarray(U_eff), floor


def _map(prob: Problem, beta, lam, B0, W0, tol, max_sweeps, variant: Variant) -> State:
    """Reduce (if possible), then run :func:`_run`; ``B0, W0`` batched like ``U_eff``."""
    mu_eff, U_eff, floor = _reduced_basis(prob, B0)
    s2_fixed = variant.sigma_d2 if variant.decoder == "fixed" else 0.0
    if variant.decoder == "fixed":  # one compilation for every sigma_d2
        variant = dataclasses.replace(variant, sigma_d2=1.0)
    return _run(
        mu_eff, U_eff, floor, jnp.sum(prob.mu), s2_fixed, beta, lam, B0, W0, tol, max_sweeps, variant
    )


# ---------------------------------------------------------------------------------------------------
# Initialisation
# ---------------------------------------------------------------------------------------------------


@float64
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


@float64
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
    """One warning per call for the degenerate β ≤ 1 regimes of D1 (docs/theory.md §3.10)."""
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
            "degenerate D1 problem (docs/theory.md §3.10): " + "; ".join(notes),
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
    r"""Run the alternating block map to convergence (docs/theory.md §3.3).

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
    dt = prob.mu.dtype
    st = _map(prob, jnp.asarray(beta, dt), jnp.asarray(lam, dt), B0, W0, tol, max_sweeps, variant)
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
    dt = prob.mu.dtype
    b = jnp.asarray(betas, dt)[:, None, None]
    lam = jnp.asarray(lams, dt)[None, :, None]
    st = _map(prob, b, lam, B0[None, None], W0[None, None], tol, max_sweeps, variant)
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
