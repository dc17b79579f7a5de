"""The theorem registry: every statement of docs/theory.md §9 with its four faces.

``THEOREMS[slug]`` is a frozen :class:`Theorem`: the one-sentence statement (identical to the
Statement line of ``proofs/<slug>.md``), its hypotheses (the note's assumptions A1..An), the model
variant, and the four faces:

    derive   the symbolic certificate, a function of :mod:`linvae.symbolic` returning sympy objects
    predict  the numeric prediction, a function of :mod:`linvae.numeric` (hand-written jnp)
    test     tests/theorems/test_<slug>.py (property tests; slug hyphens become underscores)
    proof    proofs/<slug>.md

plus the figure slug that shows it (``python -m linvae.figures``), where there is one.
``derive`` and ``predict`` are :class:`Ref`\\ s, imported on first call, so importing this module loads
neither sympy nor jax. ``tests/test_registry.py`` checks all faces generically.
Theory reference: [docs/theory.md](../docs/theory.md).
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable
from pathlib import Path
from typing import Literal

Status = Literal["proved", "sketch", "conjecture, numerically supported"]

#: The figures planned for ``python -m linvae.figures`` (issue 5) that a theorem may point to.
FIGURE_SLUGS: tuple[str, ...] = (
    "gain-contraction",
    "mi-collapse",
    "lambda-recovery",
    "phase-diagram",
    "encoder-spectrum",
    "linear-grid",
    "flow-vs-map",
    "diag-vs-full",
    "ichikawa-dynamics",
    "kumar-poole",
    "controllers",
)

_ROOT = Path(__file__).resolve().parents[1]


@dataclasses.dataclass(frozen=True)
class Ref:
    """A callable named ``"package.module:function"``, imported when first resolved or called."""

    target: str

    def resolve(self) -> Callable:
        module, _, attr = self.target.partition(":")
        return getattr(importlib.import_module(module), attr)

    def __call__(self, *args, **kwargs):
        return self.resolve()(*args, **kwargs)


@dataclasses.dataclass(frozen=True, kw_only=True)
class Theorem:
    """One theorem and its four faces (STYLE.md §2.5)."""

    slug: str
    number: str  # "T1".."T25" of docs/theory.md §9
    paper_label: str
    statement: str
    hypotheses: tuple[str, ...]
    variant: str
    status: Status
    derive: Ref
    predict: Ref
    figure: str | None

    @property
    def test_path(self) -> Path:
        return _ROOT / "tests" / "theorems" / f"test_{self.slug.replace('-', '_')}.py"

    @property
    def proof_path(self) -> Path:
        return _ROOT / "proofs" / f"{self.slug}.md"


def _sym(target: str) -> Ref:
    return Ref(f"linvae.symbolic.{target}")


def _num(target: str) -> Ref:
    return Ref(f"linvae.numeric.{target}")


_ENTRIES: tuple[Theorem, ...] = (
    Theorem(
        slug="population-loss",
        number="T1",
        paper_label="T1 (§2.1)",
        variant="D1, D2, D3",
        statement="For any B, Σ_W ≻ 0, A and Σ_Z ≻ 0 the closed forms of R, K and tr E equal their "
        "Monte-Carlo expectations, and K = I(X;Y) + KL(N(0, Σ_X) ‖ N(0, I)).",
        hypotheses=("Σ_Y ≻ 0, Σ_W ≻ 0, Σ_Z ≻ 0", "zero-mean Gaussian data, population expectations"),
        status="proved",
        derive=_sym("objective:derive_population_identities"),
        predict=_num("loss:losses"),
        figure=None,
    ),
    Theorem(
        slug="matrix-gradients",
        number="T2",
        paper_label="T2 (§3.1)",
        variant="D1, D2, D3 with E1",
        statement="The closed-form gradients of §3.1 equal autodiff and finite differences of L_λβ for "
        "all β > 0 and λ ≥ 0, and the Cholesky chain rule ∂_L = 2 (∂_Σ) L holds.",
        hypotheses=("β > 0, λ ≥ 0", "Σ_W ≻ 0, Σ_Z ≻ 0; gradients in covariances are the symmetric ones"),
        status="proved",
        derive=_sym("objective:derive_matrix_gradients"),
        predict=_num("loss:gradients"),
        figure=None,
    ),
    Theorem(
        slug="decoder-block",
        number="T3",
        paper_label="T3 (§3.3)",
        variant="D1",
        statement="Given B, Σ_W ≻ 0 and Σ_Y ≻ 0, the unique minimiser over (A, Σ_Z) is "
        "A = Σ_Y Bᵀ Σ_X⁻¹, Σ_Z = (Σ_Y⁻¹ + Bᵀ Σ_W⁻¹ B)⁻¹ for every β and λ, both Woodbury forms agree, "
        "and E = Σ_Z at it.",
        hypotheses=("Σ_Y ≻ 0, Σ_W ≻ 0", "D1: learned full Σ_Z ≻ 0"),
        status="proved",
        derive=_sym("dynamics:derive_decoder_forms"),
        predict=_num("alternating:decoder_block"),
        figure=None,
    ),
    Theorem(
        slug="encoder-block",
        number="T4",
        paper_label="T4 (§3.3)",
        variant="D1 or D3, E1",
        statement="Given A and Σ_Z ≻ 0, the unique minimiser over (B, Σ_W) is Σ_W = β(βI + AᵀNA)⁻¹, "
        "B = (βI + AᵀNA)⁻¹AᵀN; the alternating map never increases L_λβ and its fixed points are exactly "
        "the stationary points of L_λβ.",
        hypotheses=("β > 0, λ ≥ 0", "Σ_Z ≻ 0, N = Σ_Z⁻¹ + 2λI"),
        status="proved",
        derive=_sym("stationarity:derive_block_convexity"),
        predict=_num("alternating:encoder_block"),
        figure="flow-vs-map",
    ),
    Theorem(
        slug="gain-identity",
        number="T5",
        paper_label="T5 (§3.4)",
        variant="D1",
        statement="Along the alternating map the precision-weighted gain obeys "
        "K_{t+1} = (K_t + 2λ A_tᵀ)/β exactly, for any β > 0, λ ≥ 0 and any start with Σ_{W,0} ≻ 0.",
        hypotheses=("D1 (exact decoder block, so A_tᵀ Σ_{Z,t}⁻¹ = K_t)", "β > 0, λ ≥ 0, Σ_{W,0} ≻ 0"),
        status="proved",
        derive=_sym("dynamics:derive_gain_identity"),
        predict=_num("alternating:gain"),
        figure="gain-contraction",
    ),
    Theorem(
        slug="gain-contraction",
        number="T6",
        paper_label="T6 (§3.5)",
        variant="D1, λ = 0",
        statement="At λ = 0 the gain contracts exactly, K_t = β^{-t} K_0, so every singular value of K_t "
        "scales by β^{-t} and ‖K_{t+1}‖₂/‖K_t‖₂ = 1/β whenever B_0 ≠ 0.",
        hypotheses=("D1, λ = 0", "β > 0, Σ_{W,0} ≻ 0, B_0 ≠ 0"),
        status="proved",
        derive=_sym("dynamics:derive_contraction"),
        predict=_num("alternating:gain"),
        figure="gain-contraction",
    ),
    Theorem(
        slug="raw-gain-bound",
        number="T7",
        paper_label="T7 (§3.5)",
        variant="D1, λ = 0",
        statement="For λ = 0, β > 1 and t ≥ 1, Σ_{W,t} ⪯ I and ‖B_t‖₂ ≤ β^{-t}‖K_0‖₂, while a per-step "
        "1/β contraction or monotone decrease of ‖B_t‖ does not hold in general.",
        hypotheses=("D1, λ = 0, β > 1", "t ≥ 1 (Σ_{W,0} need not satisfy Σ_W ⪯ I)"),
        status="proved",
        derive=_sym("dynamics:derive_caution_case"),
        predict=_num("alternating:gain"),
        figure="gain-contraction",
    ),
    Theorem(
        slug="collapse-limit",
        number="T8",
        paper_label="T8 (§3.5)",
        variant="D1, λ = 0",
        statement="For λ = 0 and β > 1 the alternating map converges from any start to the collapsed point "
        "(0, I_m, 0, Σ_Y) and the loss tends to L*_col = ½(n log 2π + log|Σ_Y| + n).",
        hypotheses=("D1, λ = 0, β > 1", "any start with Σ_{W,0} ≻ 0"),
        status="proved",
        derive=_sym("dynamics:derive_contraction"),
        predict=_num("stationary:collapsed"),
        figure="mi-collapse",
    ),
    Theorem(
        slug="collapse-global-optimum",
        number="T9",
        paper_label="T9 (§3.6)",
        variant="D1, E1 or E2, λ = 0",
        statement="For λ = 0 and β > 1, L_β ≥ L*_col at every feasible point with equality iff the point is "
        "collapsed, and the collapsed point is the unique stationary point with Σ_W, Σ_Z ≻ 0.",
        hypotheses=("D1, λ = 0, β > 1", "Σ_W ≻ 0, Σ_Z ≻ 0 (E1 or E2)"),
        status="proved",
        derive=_sym("stationarity:derive_stationary_set_lambda0"),
        predict=_num("stationary:collapsed"),
        figure="linear-grid",
    ),
    Theorem(
        slug="mi-chain",
        number="T10",
        paper_label="T10 (§3.7)",
        variant="D1, λ = 0",
        statement="For λ = 0, β > 1 and t ≥ 1, max_{ij} I(x_i; v_j) ≤ I(X;V) ≤ I(X;Y) ≤ "
        "½‖Σ_Y‖₂‖K_0‖_F² β^{-2t}, I_{m,t} ≤ I(X;V) and SAP_t ≤ 1 − e^{−2 max_{ij} I(x_i; v_j)} ≤ 2I(X;V), "
        "so SAP_t and I_{m,t} tend to 0.",
        hypotheses=("D1, λ = 0, β > 1, t ≥ 1", "Markov chain V → Y → X, diagonal Σ_V (independent factors)"),
        status="proved",
        derive=_sym("information:derive_mi_bound"),
        predict=_num("information:information"),
        figure="mi-collapse",
    ),
    Theorem(
        slug="collapse-stability",
        number="T11",
        paper_label="T11 (§3.8)",
        variant="D1",
        statement="The collapsed point is a fixed point of the map and the flow for every β > 0 and λ ≥ 0, "
        "linearly stable for both iff β > 1 + 2λμ_1, with per-direction sweep factor (1 + 2λμ_i)/β.",
        hypotheses=("D1, β > 0, λ ≥ 0", "μ_1 > μ_2 or ties counted per direction"),
        status="proved",
        derive=_sym("stability:derive_flow_linearisation"),
        predict=_num("flow:collapse_threshold"),
        figure="phase-diagram",
    ),
    Theorem(
        slug="water-filling",
        number="T12",
        paper_label="T12 (§3.9)",
        variant="D1, E1",
        statement="For β > 1 and λ > 0 the reverse water-filling point of §3.9 is stationary and globally "
        "minimal, with Σ_X = I and AAᵀ + Σ_Z = Σ_Y, and every global minimiser equals it up to R ∈ O(m).",
        hypotheses=("D1, E1, β > 1, λ > 0", "distinct active eigenvalues (and μ_m > μ_{m+1} if |S| = m)"),
        status="proved",
        derive=_sym("stationarity:derive_water_filling"),
        predict=_num("stationary:water_filling"),
        figure="lambda-recovery",
    ),
    Theorem(
        slug="water-filling-information",
        number="T13",
        paper_label="T13 (§3.9)",
        variant="D1",
        statement="At the water-filling point I(X;Y) = K = Σ_{i∈S} ½ log(μ_i/D), and I(X;V), tr E, R and "
        "eig Σ_Z are as in §3.9, with I(X;Y) non-increasing in β, non-decreasing in λ and zero iff "
        "β ≥ 1 + 2λμ_1.",
        hypotheses=("D1, β > 1, λ > 0", "Σ_Y = ΓΣ_VΓᵀ + σ²I"),
        status="proved",
        derive=_sym("stationarity:derive_water_filling_information"),
        predict=_num("information:information"),
        figure="lambda-recovery",
    ),
    Theorem(
        slug="lambda-beta-equivalence",
        number="T14",
        paper_label="T14 (§3.12; not in [VWW26])",
        variant="D1 and D3",
        statement="L_λβ = (R + K) + [λ tr E + (β − 1)K] identically, the (B, Σ_W, A) of the λβ minimiser "
        "equals the D3 minimiser with β' = β − 1 and σ_d² = 1/(2λ), and for D3 itself L_λβ is a β-VAE with "
        "σ_eff⁻² = σ_d⁻² + 2λ up to a constant.",
        hypotheses=("D1: β > 1, λ > 0", "D3: σ_d² > 0, λ ≥ 0"),
        status="proved",
        derive=_sym("spectrum:derive_equivalence"),
        predict=_num("stationary:water_filling"),
        figure="encoder-spectrum",
    ),
    Theorem(
        slug="beta-one-degenerate",
        number="T15",
        paper_label="T15 (§3.10)",
        variant="D1",
        statement="At β = 1, λ = 0 the map freezes the gain (K_{t+1} = K_t) and L*_col is attained on a "
        "continuum; at β = 1, λ > 0 the infimum L*_col + λΣ_{i>m} μ_i is not attained and R → −∞ along "
        "minimising sequences; for β < 1 the loss is unbounded below.",
        hypotheses=("D1", "β ≤ 1, λ ≥ 0"),
        status="proved",
        derive=_sym("dynamics:derive_beta_one"),
        predict=_num("stationary:collapsed"),
        figure="flow-vs-map",
    ),
    Theorem(
        slug="rotation-invariance",
        number="T16",
        paper_label="T16 (§3.11)",
        variant="E1, any decoder",
        statement="For E1 and any R ∈ O(m) the loss, the map and the gradient flows in the matrix and block "
        "metrics are equivariant (the Euclidean flow on Cholesky factors is not, in Σ_W) under "
        "(B, Σ_W, A) → (RB, RΣ_WRᵀ, ARᵀ), so I(X;Y) and I(X;V) are invariant while pairwise MI, SAP and I_m "
        "are not.",
        hypotheses=("E1 (full Σ_W), isotropic prior", "R ∈ O(m)"),
        status="proved",
        derive=_sym("objective:derive_rotation_invariance"),
        predict=_num("information:information"),
        figure="diag-vs-full",
    ),
    Theorem(
        slug="lucas-threshold",
        number="T17",
        paper_label="T17 ([LTGN19], [WZ22] Thm 2)",
        variant="D3, E1 or E2",
        statement="With a fixed isotropic decoder the global optimum is the closed form of §4 with "
        "θ = βσ_eff², latent i is collapsed iff μ_i ≤ θ, and at λ = 0 the optimum depends on (β, σ_d²) "
        "only through βσ_d².",
        hypotheses=("D3: fixed σ_d² > 0, λ ≥ 0", "β > 0"),
        status="proved",
        derive=_sym("stationarity:derive_lucas_in_theta"),
        predict=_num("stationary:lucas"),
        figure="encoder-spectrum",
    ),
    Theorem(
        slug="lucas-rate-distortion",
        number="T18",
        paper_label="T18 (§4; [WZ22] Cor. 2)",
        variant="D3",
        statement="At the D3 optimum the rate is ½Σ_{i≤m} log⁺(μ_i/θ), the distortion is "
        "Σ_{i≤m} min(μ_i, θ) + Σ_{i>m} μ_i, the loss value is that of §4, and dD/dR_rate = −2θ within an "
        "active set.",
        hypotheses=("D3: fixed σ_d² > 0, λ ≥ 0", "a fixed active set (no μ_i = θ)"),
        status="proved",
        derive=_sym("rate_distortion:derive_rate_distortion"),
        predict=_num("stationary:lucas"),
        figure=None,
    ),
    Theorem(
        slug="learned-isotropic",
        number="T19",
        paper_label="T19 ([TB99]; §4)",
        variant="D2",
        statement="With a learned isotropic decoder variance, at β = 1, λ = 0 the variance is "
        "σ_d² = Σ_{j>m} μ_j/(n − m) with a tight ELBO, at stationarity σ_d² = tr E/n for general β and λ, "
        "and total collapse is a strict local minimum iff μ_1 < βs_0/(1 + 2λs_0) with s_0 = tr Σ_Y/n.",
        hypotheses=("D2: learned σ_d² > 0", "m < n; distinct eigenvalues for the β = 1 closed form"),
        status="sketch",
        derive=_sym("stationarity:derive_learned_isotropic"),
        predict=_num("stationary:tipping_bishop"),
        figure=None,
    ),
    Theorem(
        slug="diag-identifiability",
        number="T20",
        paper_label="T20 ([LTGN19], [RZM19], [KP20])",
        variant="D3 (D1 conjectured), E2",
        statement="With a diagonal encoder covariance and distinct eigenvalues every global optimum has "
        "AᵀA diagonal, and rotating it by a non-signed-permutation R and re-optimising (B, diag Σ_W) "
        "strictly increases the loss.",
        hypotheses=(
            "E2 (diagonal Σ_W); D3 proved, D1 by the same Hadamard argument with H = AᵀNA",
            "distinct active eigenvalues",
        ),
        status="sketch",
        derive=_sym("kumar_poole:derive_rotation_gap"),
        predict=_num("stationary:lucas"),
        figure="diag-vs-full",
    ),
    Theorem(
        slug="kumar-poole-exact",
        number="T21",
        paper_label="T21 ([KP20] §3, linear case)",
        variant="linear decoder, any fixed Σ_Z",
        statement="For a linear decoder and any fixed Σ_Z, min_Σ L_β(y; μ, Σ) = L_det(y; μ) for the full "
        "and the diagonal family with Σ* = (I + H/β)⁻¹, the Hadamard gap is ≥ 0 and zero iff H is diagonal, "
        "and (β/2) log det(I + H/β) increases to ½ tr H as β → ∞.",
        hypotheses=("linear decoder f(x) = Ax + c, fixed Σ_Z ≻ 0, λ ≥ 0 (H = AᵀNA)", "β > 0"),
        status="proved",
        derive=_sym("kumar_poole:derive_kumar_poole"),
        predict=_num("alternating:encoder_block"),
        figure="kumar-poole",
    ),
    Theorem(
        slug="ichikawa-ode",
        number="T22",
        paper_label="T22 ([IH23])",
        variant="[IH23] model (D3, σ_d² = 1)",
        statement="Online SGD with the official loss stays within O(N^{-1/2}) of the order-parameter ODE of "
        "§6 on t ∈ [0, T], and v ∈ (0, 1] is invariant.",
        hypotheses=(
            "spiked data x = √(ρ/N) W* c + √η ξ, one fresh sample per step",
            "learning rate τ for W, W̃ and τ/N for v; t = steps/N",
        ),
        status="sketch",
        derive=_sym("ichikawa:derive_invariance"),
        predict=_num("ichikawa:ode_scalar"),
        figure="ichikawa-dynamics",
    ),
    Theorem(
        slug="ichikawa-fixed-point",
        number="T23",
        paper_label="T23 ([IH23])",
        variant="[IH23], M = M* = 1",
        statement="For M = M* = 1, κ = 0 and τ → 0 the non-collapsed fixed point of §6 zeroes the ODE "
        "exactly for β < ρ + η, with ε_g* = (√ρ − √(ρ + η − β))² minimal (0) at β = η, and a "
        "superfluous latent fits the bulk iff β < η.",
        hypotheses=("M = M* = 1 (superfluous latent: M = 2, M* = 1)", "κ = 0, τ → 0, β < ρ + η"),
        status="proved",
        derive=_sym("ichikawa:derive_fixed_points"),
        predict=_num("ichikawa:fixed_point"),
        figure="ichikawa-dynamics",
    ),
    Theorem(
        slug="ichikawa-threshold",
        number="T24",
        paper_label="T24 ([IH23]; κ > 0 derived)",
        variant="[IH23] model",
        statement="The collapsed state is a fixed point for all τ and κ and is linearly stable iff "
        "β > β_c(κ) (β_c = ρ + η at κ = 0, Λ/(1 + κ) − κ/Λ for κ > 0) and τ < τ_c(β, η, κ) = 1/(η² r(−𝓛⁻¹Π)), "
        "the learning rate above which the τ² SGD-noise terms destabilise the bulk (Q, Q̃, R) block (r the "
        "spectral radius, 𝓛 and Π that block's drift and noise operators), so β_c alone decides stability "
        "only for τ < τ_c.",
        hypotheses=(
            "M = M* = 1, Λ = ρ + η",
            "any learning rate τ > 0; weight decay κ/(2N) per sample",
        ),
        status="proved",
        derive=_sym("ichikawa:derive_threshold"),
        predict=_num("ichikawa:collapse_threshold"),
        figure="ichikawa-dynamics",
    ),
    Theorem(
        slug="pi-equilibrium",
        number="T25",
        paper_label="T25 ([S+20], [S+22])",
        variant="controllers on a static linear plant",
        statement="Any interior equilibrium of the PI controllers satisfies R_rate(β*) = C (saturating at "
        "β_min when C > R_rate(β_min)), DynamicVAE's incremental form equals the telescoped positional form "
        "without clipping, outputs are ≥ β_min while the unclipped β never falls below β_min − K_p − K_iC, and "
        "with clamping anti-windup (the default) a KL held at ≥ C + δ after any history lifts β to at least "
        "b ≤ β_max from update w − 1 + ⌈(b − β_min + K_p/2 + K_iC)/(K_iδ)⌉ on (w the KL window, 1 for "
        "ControlVAE), whereas the published rule holds β at β_min for ever once the integral part of the "
        "unclipped β is ≤ −K_p.",
        hypotheses=(
            "quasi-static plant: measured KL = R_rate(β) (D3, or D1 with λ > 0)",
            "K_p, K_i > 0; e = C − KL with KL ≥ 0 and a constant set point C; DynamicVAE starts at β(0) ≥ β_min",
        ),
        status="proved",
        derive=_sym("controllers:derive_pi_equilibrium"),
        predict=_num("schedules:equilibrium_beta"),
        figure="controllers",
    ),
)

#: slug -> Theorem, in catalogue order T1..T25.
THEOREMS: dict[str, Theorem] = {t.slug: t for t in _ENTRIES}
