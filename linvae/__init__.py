"""linvae: the theory of linear-Gaussian VAEs, verified end to end.

Subpackages:
    linvae.numeric   float64 JAX: exact population losses, the alternating map, closed forms, information.
    linvae.symbolic  sympy derivations (never imports jax).
    linvae.deep      the JAX deep-model bridge (optional extra ``linvae[deep]``).
    linvae.figures   ``python -m linvae.figures`` regenerates every figure.
"""

__version__ = "0.1.0"
