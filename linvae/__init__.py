"""linvae: the theory of linear-Gaussian VAEs, verified end to end.

Subpackages:
    linvae.numeric   float64 JAX: exact population losses, the alternating map, closed forms, information.
    linvae.symbolic  sympy derivations (never imports jax).
    linvae.deep      the JAX deep-model bridge (optional extra ``linvae[deep]``).
    linvae.figures   ``python -m linvae.figures`` regenerates every figure.

Modules:
    linvae.theorems  the registry of T1-T25: statement, hypotheses, and the four faces of each theorem.
    linvae.bridge    the one place sympy meets jax (lambdify, LaTeX export).
"""

__version__ = "0.1.0"
