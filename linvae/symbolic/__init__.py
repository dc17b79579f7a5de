"""Sympy derivations of the linear-Gaussian VAE theory; never imports jax (docs/theory.md, proofs/).

Every ``derive_*`` function returns sympy objects (never floats), is cached, and is named after what it
derives. Modules, one concept each:

    objective        per-direction and matrix population objective; T1, T2, T14, T16 identities
    stationarity     solved stationary points: blocks, collapse, water-filling, Lucas, learned isotropic
    spectrum         encoder-gain spectra b_i, k_i per decoder variant
    stability        linearisation at collapse; thresholds beta_c (T11, T17, T19)
    dynamics         the alternating map; gain identity (T5), contraction, caution case, beta <= 1
    information      per-direction I(X;Y) and the MI-chain bound (T10)
    rate_distortion  rate, distortion and slope at the D3 optimum (T18)
    optimality       global optimality over all matrices: the Lucas (T17) and water-filling (T12) points
    kumar_poole      exact second-order objective, Hadamard gap (T20, T21)
    ichikawa         order-parameter ODE, fixed points and threshold (T22-T24)
    controllers      DynamicVAE telescoping identity and PI equilibria (T25)
    notes            LaTeX blocks for proofs/ and their regeneration
    report           the readable report printed by ``python -m linvae.symbolic``

``python -m linvae.symbolic`` prints the derivations.
"""

from linvae.symbolic.controllers import derive_equilibria as derive_equilibria
from linvae.symbolic.controllers import derive_pi_equilibrium as derive_pi_equilibrium
from linvae.symbolic.controllers import derive_telescoping as derive_telescoping
from linvae.symbolic.dynamics import derive_beta_one as derive_beta_one
from linvae.symbolic.dynamics import derive_caution_case as derive_caution_case
from linvae.symbolic.dynamics import derive_contraction as derive_contraction
from linvae.symbolic.dynamics import derive_decoder_forms as derive_decoder_forms
from linvae.symbolic.dynamics import derive_gain_identity as derive_gain_identity
from linvae.symbolic.dynamics import derive_matrix_gain_identity as derive_matrix_gain_identity
from linvae.symbolic.dynamics import derive_scalar_map as derive_scalar_map
from linvae.symbolic.ichikawa import derive_fixed_points as derive_fixed_points
from linvae.symbolic.ichikawa import derive_invariance as derive_invariance
from linvae.symbolic.ichikawa import derive_superfluous as derive_superfluous
from linvae.symbolic.ichikawa import derive_threshold as derive_threshold
from linvae.symbolic.information import derive_mi_bound as derive_mi_bound
from linvae.symbolic.kumar_poole import derive_kumar_poole as derive_kumar_poole
from linvae.symbolic.kumar_poole import derive_rotation_gap as derive_rotation_gap
from linvae.symbolic.objective import derive_decomposition as derive_decomposition
from linvae.symbolic.objective import derive_matrix_gradients as derive_matrix_gradients
from linvae.symbolic.objective import derive_objective as derive_objective
from linvae.symbolic.objective import derive_population_identities as derive_population_identities
from linvae.symbolic.objective import derive_rotation_invariance as derive_rotation_invariance
from linvae.symbolic.objective import direction_objective as direction_objective
from linvae.symbolic.objective import matrix_objective as matrix_objective
from linvae.symbolic.optimality import derive_global_optimum as derive_global_optimum
from linvae.symbolic.optimality import derive_tight_elbo as derive_tight_elbo
from linvae.symbolic.rate_distortion import derive_rate_distortion as derive_rate_distortion
from linvae.symbolic.spectrum import derive_equivalence as derive_equivalence
from linvae.symbolic.spectrum import derive_gain_spectra as derive_gain_spectra
from linvae.symbolic.stability import derive_flow_linearisation as derive_flow_linearisation
from linvae.symbolic.stability import derive_sweep_factor as derive_sweep_factor
from linvae.symbolic.stability import derive_thresholds as derive_thresholds
from linvae.symbolic.stationarity import derive_activation_gain as derive_activation_gain
from linvae.symbolic.stationarity import derive_block_convexity as derive_block_convexity
from linvae.symbolic.stationarity import derive_collapse_branch as derive_collapse_branch
from linvae.symbolic.stationarity import derive_decoder_block as derive_decoder_block
from linvae.symbolic.stationarity import derive_encoder_block as derive_encoder_block
from linvae.symbolic.stationarity import derive_learned_isotropic as derive_learned_isotropic
from linvae.symbolic.stationarity import derive_lucas as derive_lucas
from linvae.symbolic.stationarity import derive_lucas_in_theta as derive_lucas_in_theta
from linvae.symbolic.stationarity import derive_stationarity as derive_stationarity
from linvae.symbolic.stationarity import derive_stationary_set_lambda0 as derive_stationary_set_lambda0
from linvae.symbolic.stationarity import derive_water_filling as derive_water_filling
from linvae.symbolic.stationarity import derive_water_filling_information as derive_water_filling_information
