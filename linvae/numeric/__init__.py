"""Float64 JAX numerics of the linear-Gaussian (λβ-)VAE; never imports sympy.

The public surface::

    from linvae import numeric as nm
    prob = nm.authors_instance(n=50)                            # published seed-42 instance
    st = nm.alternating(prob, beta=4.0, lam=2.0, m=10, key=0)   # block map to convergence
    nm.losses(prob, st, beta=4.0, lam=2.0)                      # recon, kl, l2, total
    nm.information(prob, st)                                    # mi_xy, mi_xv, pairwise, sap, i_m
    nm.water_filling(prob, beta=4.0, lam=2.0, m=10)             # closed-form stationary point

Every public function computes in float64 inside a local x64 context (see ``_precision.py``); the
user's global JAX configuration is left untouched.
"""

from linvae.numeric import ichikawa as ichikawa  # noqa: E402  (a namespace: its names overlap the above)
from linvae.numeric.alternating import DegenerateProblemWarning as DegenerateProblemWarning
from linvae.numeric.alternating import NotConvergedWarning as NotConvergedWarning
from linvae.numeric.alternating import alternating as alternating
from linvae.numeric.alternating import alternating_grid as alternating_grid
from linvae.numeric.alternating import decoder_block as decoder_block
from linvae.numeric.alternating import encoder_block as encoder_block
from linvae.numeric.alternating import gain as gain
from linvae.numeric.alternating import random_init as random_init
from linvae.numeric.alternating import spd_matrix as spd_matrix
from linvae.numeric.flow import CollapseCurves as CollapseCurves
from linvae.numeric.flow import FlowConfig as FlowConfig
from linvae.numeric.flow import FlowSolution as FlowSolution
from linvae.numeric.flow import Trajectory as Trajectory
from linvae.numeric.flow import collapse_curves as collapse_curves
from linvae.numeric.flow import collapse_threshold as collapse_threshold
from linvae.numeric.flow import flow_init as flow_init
from linvae.numeric.flow import integrate as integrate
from linvae.numeric.flow import linearised_rates as linearised_rates
from linvae.numeric.information import Information as Information
from linvae.numeric.information import information as information
from linvae.numeric.information import information_terms as information_terms
from linvae.numeric.loss import Gradients as Gradients
from linvae.numeric.loss import Losses as Losses
from linvae.numeric.loss import cholesky_gradient as cholesky_gradient
from linvae.numeric.loss import gradients as gradients
from linvae.numeric.loss import gradients_closed_form as gradients_closed_form
from linvae.numeric.loss import loss_terms as loss_terms
from linvae.numeric.loss import losses as losses
from linvae.numeric.loss import objective as objective
from linvae.numeric.model import D1 as D1
from linvae.numeric.model import State as State
from linvae.numeric.model import Variant as Variant
from linvae.numeric.optimizers import ADAMW_PROTOCOL as ADAMW_PROTOCOL
from linvae.numeric.optimizers import adamw as adamw
from linvae.numeric.optimizers import gradient_descent as gradient_descent
from linvae.numeric.optimizers import sgd as sgd
from linvae.numeric.problem import AUTHORS as AUTHORS
from linvae.numeric.problem import Problem as Problem
from linvae.numeric.problem import authors_inits as authors_inits
from linvae.numeric.problem import authors_instance as authors_instance
from linvae.numeric.problem import from_factors as from_factors
from linvae.numeric.problem import from_spectrum as from_spectrum
from linvae.numeric.problem import spiked as spiked
from linvae.numeric.schedules import BetaController as BetaController
from linvae.numeric.schedules import closed_loop as closed_loop
from linvae.numeric.schedules import constant_schedule as constant_schedule
from linvae.numeric.schedules import controlvae_pi as controlvae_pi
from linvae.numeric.schedules import cyclical_schedule as cyclical_schedule
from linvae.numeric.schedules import dynamicvae_pi as dynamicvae_pi
from linvae.numeric.schedules import equilibrium_beta as equilibrium_beta
from linvae.numeric.schedules import linear_schedule as linear_schedule
from linvae.numeric.schedules import tanh_schedule as tanh_schedule
from linvae.numeric.stationary import collapsed as collapsed
from linvae.numeric.stationary import lucas as lucas
from linvae.numeric.stationary import tipping_bishop as tipping_bishop
from linvae.numeric.stationary import water_filling as water_filling
from linvae.numeric.stationary import water_level as water_level
