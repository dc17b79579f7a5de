"""Test configuration: float64 JAX, strict promotion, hypothesis profiles.

Profiles (select with ``--hypothesis-profile=NAME``):
    dev   25 examples per property (default; quick local runs)
    ci    100 examples per property, printing the reproduction blob on failure
Both disable the deadline: the first call of a jitted function compiles.
"""

import os

import jax
import pytest
from hypothesis import HealthCheck, settings

jax.config.update("jax_enable_x64", True)
jax.config.update("jax_numpy_rank_promotion", "raise")

settings.register_profile(
    "dev", max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "ci",
    max_examples=100,
    deadline=None,
    print_blob=True,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))


@pytest.fixture(autouse=True)
def _no_stray_figures():
    """Close matplotlib figures a test leaves open."""
    yield
    import sys

    if "matplotlib.pyplot" in sys.modules:
        sys.modules["matplotlib.pyplot"].close("all")


@pytest.fixture(autouse=True, scope="module")
def _bounded_compilation_cache():
    """Drop JAX's compiled executables after each test module.

    Every compiled XLA:CPU executable keeps memory mappings of its code. The suite compiles thousands of
    programs (hypothesis draws new shapes and static arguments), and one process accumulated enough
    mappings to approach the kernel's per-process limit (vm.max_map_count = 65530): XLA's compiler then
    segfaulted late in the run. Clearing the caches between modules bounds the count; a module only
    recompiles what it uses itself.
    """
    yield
    jax.clear_caches()
