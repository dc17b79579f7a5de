"""linvae: the theory of linear-Gaussian VAEs, verified end to end.

Subpackages:
    linvae.numeric   float64 JAX: exact population losses, the alternating map, closed forms, information.
    linvae.symbolic  sympy derivations (never imports jax).
    linvae.deep      the JAX deep-model bridge (optional extra ``linvae[deep]``).
    linvae.figures   ``python -m linvae.figures`` regenerates every figure.

Modules:
    linvae.theorems  the registry of T1-T25: statement, hypotheses, and the four faces of each theorem.
    linvae.bridge    the one place sympy meets jax (lambdify, LaTeX export).

Importing linvae adds ``--xla_cpu_enable_concurrency_optimized_scheduler=false`` to ``XLA_FLAGS`` (unless
you set that flag yourself or ``LINVAE_KEEP_XLA_FLAGS=1``): it avoids a deadlock of jaxlib's batched CPU
LAPACK kernels on machines with few cores (see :mod:`linvae._xla`). It touches nothing else.
"""

from linvae import _xla

_xla.configure()

__version__ = "0.1.0"
