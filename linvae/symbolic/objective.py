r"""The population objective of the linear-Gaussian λβ-VAE, symbolically (docs/theory.md §2.1).

Per eigen-direction of :math:`\Sigma_Y` (eigenvalue :math:`\mu`), with one latent aligned to it (the
optimum can always be rotated there, §3.9/§4): encoder gain :math:`b`, encoder variance :math:`w`,
decoder gain :math:`a`, decoder variance :math:`z`:

.. math::
    E = (1 - ab)^2\mu + a^2w,\qquad
    \mathcal L = \tfrac12\Big[\frac Ez + \log z + \log2\pi\Big] + \frac\beta2\big[b^2\mu + w - \log w -
    1\big] + \lambda E .

Variants (docs/theory.md §2.2): ``"D1"`` learns :math:`z` per direction, ``"D2"`` shares one learned
:math:`z = \sigma_d^2` over all directions, ``"D3"`` fixes :math:`z = \sigma_d^2`. The matrix form
(:func:`matrix_objective`) takes sympy matrices of any (small) size.

Theorems: ``population-loss`` (T1), ``lambda-beta-equivalence`` (T14), ``rotation-invariance`` (T16).
"""

from __future__ import annotations

import functools

import sympy as sp

from linvae.symbolic._symbols import a, b, beta, lam, mu, sigma_d2, w, z

VARIANTS = ("D1", "D2", "D3")


def _check_variant(variant: str) -> str:
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {VARIANTS}; got {variant!r}")
    return variant


def reconstruction_moment() -> sp.Expr:
    r"""Per-direction :math:`E = \mathbb E(y - ax)^2 = (1 - ab)^2\mu + a^2w`."""
    return (1 - a * b) ** 2 * mu + a**2 * w


def rate() -> sp.Expr:
    r"""Per-direction :math:`\mathcal K = \tfrac12[b^2\mu + w - \log w - 1]`."""
    return sp.Rational(1, 2) * (b**2 * mu + w - sp.log(w) - 1)


def decoder_variance(variant: str) -> sp.Expr:
    """The symbol the decoder variance is along one direction: ``z`` (D1) or ``sigma_d2`` (D2, D3)."""
    return z if _check_variant(variant) == "D1" else sigma_d2


@functools.cache
def direction_objective(variant: str = "D1") -> sp.Expr:
    r"""Per-direction :math:`\mathcal L_{\lambda\beta}(b, w, a, z)` for decoder variant D1, D2 or D3."""
    zz = decoder_variance(variant)
    E = reconstruction_moment()
    R = sp.Rational(1, 2) * (E / zz + sp.log(zz) + sp.log(2 * sp.pi))
    return R + beta * rate() + lam * E


def inactive_objective(variant: str = "D1") -> sp.Expr:
    r"""Per-direction objective of a direction that no latent carries (:math:`a = b = 0`, :math:`w = 1`)."""
    return direction_objective(variant).subs({a: 0, b: 0, w: 1})


def matrix_objective(
    Sigma_Y: sp.Matrix, B: sp.Matrix, Sigma_W: sp.Matrix, A: sp.Matrix, Sigma_Z: sp.Matrix, beta_, lam_
) -> dict[str, sp.Expr]:
    r"""Matrix :math:`\mathcal R`, :math:`\mathcal K`, :math:`\operatorname{tr}E` and :math:`\mathcal
    L_{\lambda\beta}` (§2.1).

    Args:
        Sigma_Y: (n, n) sympy matrix; B: (m, n); Sigma_W: (m, m); A: (n, m); Sigma_Z: (n, n).
        beta_, lam_: sympy scalars.

    Returns:
        ``{"E", "recon", "kl", "l2", "total"}`` (E is a matrix, the rest scalars).
    """
    n, m = A.shape
    In = sp.eye(n)
    Rm = In - A * B
    E = Rm * Sigma_Y * Rm.T + A * Sigma_W * A.T
    Sigma_X = B * Sigma_Y * B.T + Sigma_W
    recon = sp.Rational(1, 2) * ((Sigma_Z.inv() * E).trace() + sp.log(Sigma_Z.det()) + n * sp.log(2 * sp.pi))
    kl = sp.Rational(1, 2) * (Sigma_X.trace() - sp.log(Sigma_W.det()) - m)
    l2 = E.trace()
    return {"E": E, "recon": recon, "kl": kl, "l2": l2, "total": recon + beta_ * kl + lam_ * l2}


@functools.cache
def derive_objective() -> dict[str, sp.Expr]:
    """The per-direction objective of each variant and of an inactive direction (for display)."""
    out: dict[str, sp.Expr] = {"E": reconstruction_moment(), "K": rate()}
    for v in VARIANTS[::2]:
        out[f"L_{v}"] = direction_objective(v)
    out["L_inactive_D1"] = inactive_objective("D1")
    return out


def _rational_spd(rng, n: int) -> sp.Matrix:
    G = sp.Matrix(n, n, lambda i, j: sp.Rational(rng.randint(-9, 9), rng.randint(1, 5)))
    return G * G.T + sp.Rational(rng.randint(1, 9), 4) * sp.eye(n)


def _rational_matrix(rng, r: int, c: int) -> sp.Matrix:
    return sp.Matrix(r, c, lambda i, j: sp.Rational(rng.randint(-9, 9), rng.randint(1, 7)))


def rational_rotation(t_: sp.Rational) -> sp.Matrix:
    r"""An exact rational rotation :math:`\frac1{1+t^2}\begin{pmatrix}1-t^2 & -2t\\ 2t &
    1-t^2\end{pmatrix}`."""
    c, s = (1 - t_**2) / (1 + t_**2), 2 * t_ / (1 + t_**2)
    return sp.Matrix([[c, -s], [s, c]])


@functools.cache
def derive_population_identities(seed: int = 0) -> dict[str, sp.Expr]:
    r"""T1: the algebra behind the closed forms of §2.1 (all residuals 0).

    * ``E_expansion``: :math:`(I - AB)\Sigma_Y(I - AB)^\top + A\Sigma_WA^\top - [\Sigma_Y - AB\Sigma_Y -
        \Sigma_YB^\top A^\top + A\Sigma_XA^\top]`
      with symbolic entries (n = 2, m = 1);
    * ``rate_split``: :math:`\mathcal K - I(X;Y) - \mathrm{KL}(\mathcal N(0,\Sigma_X)\|\mathcal N(0,I))` at
        exact
      rationals (n = 3, m = 2);
    * ``lambda_likelihood``: :math:`\lambda(y - \hat y)^2 - [-\log\mathcal N(y;\hat y,(2\lambda)^{-1}) -
        \tfrac12\log(\pi/\lambda)]`.
    """
    import random

    rng = random.Random(seed)
    Sy = sp.Matrix(2, 2, lambda i, j: sp.Symbol(f"s_{min(i, j) + 1}{max(i, j) + 1}", real=True))
    B = sp.Matrix(1, 2, lambda i, j: sp.Symbol(f"b_{j + 1}", real=True))
    A = sp.Matrix(2, 1, lambda i, j: sp.Symbol(f"a_{i + 1}", real=True))
    W = sp.Matrix([[w]])
    Rm = sp.eye(2) - A * B
    Sx = B * Sy * B.T + W
    lhs = Rm * Sy * Rm.T + A * W * A.T
    rhs = Sy - A * B * Sy - Sy * B.T * A.T + A * Sx * A.T
    E_res = (lhs - rhs).applyfunc(sp.expand)
    Sy3, W2 = _rational_spd(rng, 3), _rational_spd(rng, 2)
    B3 = _rational_matrix(rng, 2, 3)
    Sx3 = B3 * Sy3 * B3.T + W2
    K = sp.Rational(1, 2) * (Sx3.trace() - sp.log(W2.det()) - 2)
    mi = sp.Rational(1, 2) * sp.log(Sx3.det() / W2.det())
    kl_marg = sp.Rational(1, 2) * (Sx3.trace() - 2 - sp.log(Sx3.det()))
    split = sp.simplify(sp.expand_log(K - mi - kl_marg, force=True))
    y, yh = sp.symbols("y yhat", real=True)
    v = 1 / (2 * lam)
    gauss_nll = (y - yh) ** 2 / (2 * v) + sp.log(2 * sp.pi * v) / 2
    lam_lik = sp.simplify(
        sp.expand_log(lam * (y - yh) ** 2 - (gauss_nll - sp.log(sp.pi / lam) / 2), force=True)
    )
    return {"E_expansion": E_res, "rate_split": split, "lambda_likelihood": lam_lik}


@functools.cache
def derive_matrix_gradients(seed: int = 0) -> dict[str, sp.Matrix]:
    r"""T2: the symbolic gradient of :math:`\mathcal L_{\lambda\beta}` (n = 2, m = 2, symmetric covariances
    parametrised by their upper triangles) minus the closed forms of §3.1, at exact random rationals.

    For a symmetric Σ, :math:`\partial\mathcal L/\partial\Sigma_{ij} = (2 - \delta_{ij})G_{ij}` with G the
    symmetric gradient of §3.1. All residual entries are 0.
    """
    import random

    rng = random.Random(seed)
    n, m = 2, 2

    def sym_mat(name: str, k: int) -> sp.Matrix:
        return sp.Matrix(k, k, lambda i, j: sp.Symbol(f"{name}_{min(i, j)}{max(i, j)}", real=True))

    B = sp.Matrix(m, n, lambda i, j: sp.Symbol(f"B_{i}{j}", real=True))
    A = sp.Matrix(n, m, lambda i, j: sp.Symbol(f"A_{i}{j}", real=True))
    W, Z = sym_mat("W", m), sym_mat("Z", n)
    Sy = _rational_spd(rng, n)
    be, la = sp.Rational(rng.randint(2, 30), 7), sp.Rational(rng.randint(1, 30), 11)
    L = matrix_objective(Sy, B, W, A, Z, be, la)["total"]
    vals: dict[sp.Symbol, sp.Expr] = {}
    vals.update(dict(zip(B, _rational_matrix(rng, m, n), strict=True)))
    vals.update(dict(zip(A, _rational_matrix(rng, n, m), strict=True)))
    for M_sym, M_val in ((W, _rational_spd(rng, m)), (Z, _rational_spd(rng, n))):
        for i in range(M_sym.shape[0]):
            for j in range(i, M_sym.shape[0]):
                vals[M_sym[i, j]] = M_val[i, j]
    Bv, Av, Wv, Zv = (M.subs(vals) for M in (B, A, W, Z))
    N = Zv.inv() + 2 * la * sp.eye(n)
    Sx = Bv * Sy * Bv.T + Wv
    Rm = sp.eye(n) - Av * Bv
    E = Rm * Sy * Rm.T + Av * Wv * Av.T
    closed = {
        "B": (Av.T * N * Av + be * sp.eye(m)) * Bv * Sy - Av.T * N * Sy,
        "Sigma_W": Av.T * N * Av / 2 + be / 2 * (sp.eye(m) - Wv.inv()),
        "A": N * (Av * Sx - Sy * Bv.T),
        "Sigma_Z": Zv.inv() * (Zv - E) * Zv.inv() / 2,
    }

    def grad(M_sym: sp.Matrix, symmetric: bool) -> sp.Matrix:
        def entry(i: int, j: int) -> sp.Expr:
            g = sp.diff(L, M_sym[i, j]).subs(vals)
            return sp.cancel(g / (2 if symmetric and i != j else 1))

        return sp.Matrix(M_sym.shape[0], M_sym.shape[1], entry)

    return {
        "B": (grad(B, False) - closed["B"]).applyfunc(sp.simplify),
        "Sigma_W": (grad(W, True) - closed["Sigma_W"]).applyfunc(sp.simplify),
        "A": (grad(A, False) - closed["A"]).applyfunc(sp.simplify),
        "Sigma_Z": (grad(Z, True) - closed["Sigma_Z"]).applyfunc(sp.simplify),
    }


@functools.cache
def derive_rotation_invariance(seed: int = 0) -> dict[str, sp.Expr]:
    r"""T16: :math:`\mathcal L_{\lambda\beta}(RB, R\Sigma_WR^\top, AR^\top, \Sigma_Z) - \mathcal
    L_{\lambda\beta}(B, \Sigma_W, A, \Sigma_Z)`
    with an exact rational rotation, m = 2, n = 3, at exact random rationals (0), and the gain
    :math:`K \mapsto RK`."""
    import random

    rng = random.Random(seed)
    Sy, W, Z = _rational_spd(rng, 3), _rational_spd(rng, 2), _rational_spd(rng, 3)
    B, A = _rational_matrix(rng, 2, 3), _rational_matrix(rng, 3, 2)
    R = rational_rotation(sp.Rational(rng.randint(1, 9), rng.randint(1, 9)))
    be, la = sp.Rational(rng.randint(2, 30), 7), sp.Rational(rng.randint(1, 30), 11)
    L0 = matrix_objective(Sy, B, W, A, Z, be, la)["total"]
    L1 = matrix_objective(Sy, R * B, R * W * R.T, A * R.T, Z, be, la)["total"]
    K0, K1 = W.inv() * B, (R * W * R.T).inv() * (R * B)
    return {
        "loss_difference": sp.simplify(sp.expand_log(L1 - L0, force=True)),
        "gain_residual": (K1 - R * K0).applyfunc(sp.simplify),
        "R_orthogonal": (R.T * R - sp.eye(2)).applyfunc(sp.simplify),
    }


@functools.cache
def derive_decomposition() -> dict[str, sp.Expr]:
    r"""T14: the split of §3.12 and the λ ↔ decoder-precision equivalences (all residuals 0).

    * ``split``: :math:`\mathcal L_{\lambda\beta} - (\mathcal R + \mathcal K) - [\lambda\operatorname{tr}E
        + (\beta-1)\mathcal K]`;
    * ``second_bracket``: the bracket minus the D3 objective with :math:`\beta' = \beta - 1`,
      :math:`\sigma_d^2 = 1/(2\lambda)`, plus its constant :math:`\tfrac n2\log(\pi/\lambda)`;
    * ``sigma_eff``: D3 with λ minus the β-VAE with :math:`\sigma_{\rm eff}^{-2} = \sigma_d^{-2} +
        2\lambda`, up to
      the constant :math:`\tfrac n2\log(\sigma_d^2/\sigma_{\rm eff}^2)`.
    """
    R, K, trE, n = sp.symbols("R K trE n", positive=True)
    L = R + beta * K + lam * trE
    split = sp.simplify(L - (R + K) - (lam * trE + (beta - 1) * K))
    sd2 = 1 / (2 * lam)
    d3 = trE / (2 * sd2) + n / 2 * sp.log(2 * sp.pi * sd2) + (beta - 1) * K
    second = sp.simplify(
        sp.expand_log((lam * trE + (beta - 1) * K) - (d3 - n / 2 * sp.log(sp.pi / lam)), force=True)
    )
    s_eff = 1 / (1 / sigma_d2 + 2 * lam)
    d3_lam = trE / (2 * sigma_d2) + n / 2 * sp.log(2 * sp.pi * sigma_d2) + beta * K + lam * trE
    bvae = trE / (2 * s_eff) + n / 2 * sp.log(2 * sp.pi * s_eff) + beta * K
    eff = sp.simplify(sp.expand_log(d3_lam - bvae - n / 2 * sp.log(sigma_d2 / s_eff), force=True))
    return {"split": split, "second_bracket": second, "sigma_eff": eff}
