"""Test configuration: float64 JAX, strict promotion, hypothesis profiles.

Profiles (select with ``--hypothesis-profile=NAME``):
    dev   25 examples per property (default; quick local runs)
    ci    100 examples per property, printing the reproduction blob on failure
Both disable the deadline: the first call of a jitted function compiles.
"""

import os
import shutil
import tempfile

import jax
import pytest
from hypothesis import HealthCheck, settings

jax.config.update("jax_enable_x64", True)
jax.config.update("jax_numpy_rank_promotion", "raise")

#: Compilation caches for this session only (``LINVAE_TEST_COMPILE_CACHE=0`` turns them off). The suite
#: compiles the same programs again and again: after each module's cache clear (below), in each worker
#: subprocess of the sweep and checkpoint tests, and in every test that builds the conv model (its layers'
#: random initialisers). XLA's compilation is deterministic, so a program read back from the cache is the
#: program a fresh compile gives; the folders start empty and are removed at the end, so every run still
#: compiles each program once. This process has a folder of its own, and the subprocesses the tests start
#: share another (through the environment they inherit): JAX writes an entry in place, without a lock, so
#: a process that ran beside the writer could read a torn entry, and here its warning would be an error.
_COMPILE_CACHE = None
if os.environ.get("LINVAE_TEST_COMPILE_CACHE", "1") != "0" and "JAX_COMPILATION_CACHE_DIR" not in os.environ:
    _COMPILE_CACHE = tempfile.mkdtemp(prefix="linvae-jax-cache-")
    os.environ.update(
        JAX_COMPILATION_CACHE_DIR=os.path.join(_COMPILE_CACHE, "subprocesses"),
        JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
        JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="0",
    )
    jax.config.update("jax_compilation_cache_dir", os.path.join(_COMPILE_CACHE, "pytest"))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)


def pytest_unconfigure(config):
    if _COMPILE_CACHE is not None:
        shutil.rmtree(_COMPILE_CACHE, ignore_errors=True)


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
