"""A process-wide workaround for a deadlock of XLA's CPU runtime (jaxlib 0.10, machines with few cores).

Batched LAPACK kernels on CPU (Cholesky, triangular solves, ... under ``vmap``) split their batch over
XLA's intra-op thread pool and block until the pieces finish (``jax::ParallelBatchMap``). The pool has
one thread per core. When the thunk executor runs two such kernels at once on a 2-core machine, both
pool threads wait for work that only they could do: the process hangs at 0 % CPU with every thread
asleep (seen in the vmapped AdamW protocol and in vmapped diffrax solves; native stacks show both
``tf_XLAEigen`` threads in ``ParallelBatchMap`` -> ``BlockingCounter::Wait``).

The concurrency-optimised HLO scheduler is what lets independent LAPACK calls overlap; turning it off
with ``--xla_cpu_enable_concurrency_optimized_scheduler=false`` removed the hang in every reproducer
we have, at no measurable cost for linvae's workloads (they are batched, not concurrent).

:func:`configure` appends that flag to ``XLA_FLAGS`` unless the user set it either way, or set
``LINVAE_KEEP_XLA_FLAGS=1``. ``import linvae`` calls it; it takes effect only if JAX's CPU backend has not
been initialised yet in this process (the flag is read once, when the backend starts), so scripts that
run JAX computations before importing linvae should set the flag themselves.
"""

from __future__ import annotations

import os

#: The flag that keeps batched LAPACK kernels from running concurrently on the CPU.
FLAG = "--xla_cpu_enable_concurrency_optimized_scheduler=false"


def configure() -> None:
    """Add :data:`FLAG` to ``XLA_FLAGS`` (see the module docstring); idempotent."""
    if os.environ.get("LINVAE_KEEP_XLA_FLAGS"):
        return
    flags = os.environ.get("XLA_FLAGS", "")
    if "xla_cpu_enable_concurrency_optimized_scheduler" in flags:
        return
    os.environ["XLA_FLAGS"] = f"{flags} {FLAG}".strip()
