"""Disentanglement metrics with disentanglement_lib's definitions and defaults, and fast JAX paths.

Every metric takes either a ground-truth data set and a representation (``evaluate(cfg, data,
encoder, key=key)``) or precomputed codes ``(n, m)`` and factor class indices ``(n, K)`` (``mig``,
``matched_mi``, ``sap``, ``dci``). Configs are frozen dataclasses whose defaults are the reference's
except DCI's (its reference takes ~6 minutes of CPU per model, so the fast path is its default);
``backend="fast"`` selects the fast path where one exists (JAX paths compute in float64 inside a local x64
context).

| metric | reference | fast path | agreement |
|---|---|---|---|
| MIG, I_m | numpy histogram + sklearn MI | JAX histogram + bincount MI | bins equal; MI to ROUNDOFF |
| SAP (discrete) | sklearn LinearSVC (liblinear) | exact 1-D SVM in JAX | accuracies to SVM_SOLVER |
| SAP (continuous) | numpy | JAX | ROUNDOFF |
| DCI | sklearn gradient boosting | numpy boosting on 256 bins per code (default) | R <= 0.05, D/C/I_test <= 0.03 |
| FactorVAE | numpy vote loop | JAX votes + majority vote | identical votes |
| BetaVAE | numpy features + sklearn LR | JAX features + sklearn LR | features to ROUNDOFF |
"""

from ._backend import Backend as Backend
from ._backend import ConstantFactorWarning as ConstantFactorWarning
from .beta_vae import BetaVAEConfig as BetaVAEConfig
from .beta_vae import BetaVAEResult as BetaVAEResult
from .beta_vae import beta_vae_from_features as beta_vae_from_features
from .beta_vae import beta_vae_score as beta_vae_score
from .dci import DCIConfig as DCIConfig
from .dci import DCIResult as DCIResult
from .dci import completeness as completeness
from .dci import dci as dci
from .dci import disentanglement as disentanglement
from .evaluation import MetricConfig as MetricConfig
from .evaluation import MetricResult as MetricResult
from .evaluation import evaluate as evaluate
from .factor_vae import FactorVAEConfig as FactorVAEConfig
from .factor_vae import FactorVAEResult as FactorVAEResult
from .factor_vae import factor_vae_score as factor_vae_score
from .factor_vae import majority_vote_accuracy as majority_vote_accuracy
from .ground_truth import FactorObservations as FactorObservations
from .ground_truth import GroundTruthData as GroundTruthData
from .ground_truth import Representation as Representation
from .ground_truth import factor_codes as factor_codes
from .ground_truth import sample_codes as sample_codes
from .ground_truth import sample_train_test as sample_train_test
from .histogram import histogram_bins as histogram_bins
from .histogram import histogram_bins_fast as histogram_bins_fast
from .matched_mi import MatchedMIConfig as MatchedMIConfig
from .matched_mi import MatchedMIResult as MatchedMIResult
from .matched_mi import matched_mi as matched_mi
from .mig import MIGConfig as MIGConfig
from .mig import MIGResult as MIGResult
from .mig import mig as mig
from .mutual_information import discrete_entropy as discrete_entropy
from .mutual_information import discrete_mutual_information as discrete_mutual_information
from .mutual_information import discrete_mutual_information_fast as discrete_mutual_information_fast
from .sap import SAPConfig as SAPConfig
from .sap import SAPResult as SAPResult
from .sap import sap as sap
