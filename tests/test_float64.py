"""The float64 promise: every public function of linvae.numeric computes in float64 without global x64.

``conftest.py`` turns x64 on for the whole suite, so no other test could see a function that forgot its
:func:`~linvae.numeric._precision.float64` guard: without global x64 such a function silently returns
float32 (``objective`` 49.738976 instead of 49.738992 on the published instance). Here one fresh
interpreter, with ``JAX_ENABLE_X64`` unset, calls every public function on small examples; the test
checks that every floating-point array it returns is float64 and equals the same call made here, with
x64 on, to REPRODUCED.

"Public" is read off the package, not listed by hand: the functions ``linvae.numeric`` exports and the
public functions of its public modules. A new one without an entry in ``CALLS`` fails the test.
Closures returned by factories (schedules, controllers, ``make_vector_field``) follow their caller's
precision by design (they drive float32 training steps too); the factories themselves are checked.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import os
import pickle
import pkgutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import jax
import numpy as np
import pytest

from linvae import numeric as nm
from linvae._tolerance import REPRODUCED
from linvae.numeric import flow, loss, problem
from linvae.numeric import ichikawa as ich
from linvae.numeric import optimizers as opt
from linvae.numeric import schedules as sc

inf = importlib.import_module("linvae.numeric.information")  # nm.information is the function

ROOT = Path(__file__).resolve().parents[1]


def public_functions() -> dict[str, Callable]:
    """``"module.name" -> function`` for every public function of linvae.numeric."""
    found: dict[str, Callable] = {}

    def add(fn: Callable) -> None:
        found[f"{fn.__module__.removeprefix('linvae.numeric.')}.{fn.__name__}"] = fn

    for name, obj in vars(nm).items():
        if not name.startswith("_") and inspect.isfunction(obj):
            add(obj)
    for info in pkgutil.iter_modules(nm.__path__):
        if info.name.startswith("_"):
            continue
        mod = importlib.import_module(f"linvae.numeric.{info.name}")
        for name, obj in vars(mod).items():
            if not name.startswith("_") and inspect.isfunction(obj) and obj.__module__ == mod.__name__:
                add(obj)
    return found


class _Inputs:
    """Arguments of the example calls, built identically in both processes: NumPy float64 (or float32)
    values, or outputs of linvae itself; never ``jnp`` arrays made outside linvae, whose dtype would
    follow the process's flag. Computed on first use, so listing the table costs nothing."""

    beta, lam, m = 4.0, 0.5, 2
    cfg = nm.FlowConfig()
    h = ich.Hyper(1.0, 1.0, 0.5, 0.1, 0.0)
    proto = opt.AdamWProtocol(steps=4)
    _rng = np.random.default_rng(0)
    N = 6
    W, Wt, W_star = _rng.normal(size=(N, 1)), _rng.normal(size=(N, 1)), _rng.normal(size=(N, 1))
    v, x = np.full((1,), 0.8), _rng.normal(size=(N,))
    Y, eps = _rng.normal(size=(3, 4)), _rng.normal(size=(3, m))
    op_matrix = ich.OrderParams(
        *(
            np.full(shape, a)
            for a, shape in zip((0.3, 0.2, 0.5, 0.4, 0.1, 1.0), [(1, 1)] * 5 + [(1,)], strict=True)
        )
    )

    @functools.cached_property
    def prob(self) -> nm.Problem:
        return nm.from_spectrum(np.array([4.0, 2.0, 1.0, 0.5]), sigma2=0.1)

    @property
    def n(self) -> int:
        return self.prob.n

    @functools.cached_property
    def st(self) -> nm.State:
        return nm.water_filling(self.prob, self.beta, self.lam, self.m)

    @functools.cached_property
    def f32(self) -> list[np.ndarray]:
        """``Sigma_Y, B, Sigma_W, A, Sigma_Z`` in float32, which the guard widens."""
        return [np.asarray(a, np.float32) for a in (self.prob.Sigma_Y, *self.st[:4])]

    @functools.cached_property
    def key(self):
        return jax.random.key(0)

    @functools.cached_property
    def y(self):
        return flow.to_coordinates(self.st, self.cfg)

    @functools.cached_property
    def init(self) -> nm.State:
        return nm.flow_init(self.prob, self.m, key=0)

    @functools.cached_property
    def grads(self) -> nm.Gradients:
        return nm.gradients(self.prob, self.st, self.beta, self.lam)

    @functools.cached_property
    def L_W(self) -> np.ndarray:
        return np.linalg.cholesky(np.asarray(self.st.Sigma_W))

    @functools.cached_property
    def op_scalar(self):
        return ich.fixed_point(1.0, 1.0, 0.5)

    @functools.cached_property
    def rho2(self):
        return inf.squared_correlations(self.prob, self.st.B, self.st.Sigma_W)

    @functools.cached_property
    def pairwise(self) -> np.ndarray:
        return -0.5 * np.log1p(-np.asarray(self.rho2))

    @functools.cached_property
    def p0(self) -> dict:
        return opt.adamw_init(self.key, self.n, self.m, 1)

    @functools.cached_property
    def a_state(self):
        return opt.adamw_start(self.p0, self.proto)

    @functools.cached_property
    def sp(self):
        return sc.constant_setpoint(3.0)


#: One example call per public function.
CALLS: dict[str, Callable[[_Inputs], object]] = {
    "alternating.decoder_block": lambda e: nm.decoder_block(e.prob.Sigma_Y, e.st.B, e.st.Sigma_W),
    "alternating.encoder_block": lambda e: nm.encoder_block(e.st.A, e.st.Sigma_Z, e.beta, e.lam),
    "alternating.spd_matrix": lambda e: nm.spd_matrix(e.key, 3),
    "alternating.random_init": lambda e: nm.random_init(e.key, e.n, e.m),
    "alternating.alternating": lambda e: nm.alternating(e.prob, e.beta, e.lam, e.m, key=0),
    "alternating.alternating_grid": lambda e: nm.alternating_grid(e.prob, [e.beta], [e.lam], e.init[:2]),
    "alternating.gain": lambda e: nm.gain(e.st),
    "flow.to_coordinates": lambda e: flow.to_coordinates(e.st, e.cfg),
    "flow.from_coordinates": lambda e: flow.from_coordinates(e.y, e.cfg),
    "flow.project_descent": lambda e: flow.project_descent(e.y, e.y, nm.D1),
    "flow.make_vector_field": lambda e: flow.make_vector_field(e.prob.Sigma_Y),
    "flow.linearised_rates": lambda e: nm.linearised_rates(e.prob, e.beta, e.lam),
    "flow.collapse_threshold": lambda e: nm.collapse_threshold(e.prob, e.lam),
    "flow.flow_init": lambda e: nm.flow_init(e.prob, e.m, key=0),
    "flow.integrate": lambda e: nm.integrate(e.prob, e.beta, e.lam, e.init, t1=0.5, ts=np.array([0.25, 0.5])),
    "flow.collapse_curves": lambda e: nm.collapse_curves(e.prob, [e.beta], e.lam, e.m, t1=0.5, num_times=2),
    "ichikawa.ode_scalar": lambda e: ich.ode_scalar(e.op_scalar, e.h),
    "ichikawa.ode_matrix": lambda e: ich.ode_matrix(e.op_matrix, e.h),
    # the grid and statics of annealing_times's constant-β run, so the two share one compilation
    "ichikawa.integrate_ode": lambda e: ich.integrate_ode(
        e.op_scalar, np.linspace(0.0, 2.0, 5), beta=0.5, form="scalar"
    ),
    "ichikawa.loss": lambda e: ich.loss(e.W, e.Wt, e.v, e.x, 0.5, 0.1),
    "ichikawa.order_parameters": lambda e: ich.order_parameters(e.W, e.Wt, e.v, e.W_star),
    "ichikawa.online_sgd": lambda e: ich.online_sgd(e.N, t1=1.0, saves=2, key=0, beta=0.5),
    "ichikawa.fixed_point": lambda e: ich.fixed_point(1.0, 1.0, 0.5),
    "ichikawa.collapsed_point": lambda e: ich.collapsed_point(),
    "ichikawa.collapse_threshold": lambda e: ich.collapse_threshold(1.0, 1.0, 0.1),
    "ichikawa.escape_rate": lambda e: ich.escape_rate(1.0, 1.0, 0.5, 0.1),
    "ichikawa.noise_threshold": lambda e: ich.noise_threshold(1.0, 2.0),
    "ichikawa.generalisation_error": lambda e: ich.generalisation_error(e.op_matrix, 1.0),
    "ichikawa.steady_generalisation_error": lambda e: ich.steady_generalisation_error(1.0, 1.0, 0.5),
    "ichikawa.superfluous_latent": lambda e: ich.superfluous_latent(1.0, 0.5),
    "ichikawa.annealing_times": lambda e: ich.annealing_times(
        [1.0], rel_band=0.1, beta=0.5, t1=2.0, num_times=5
    ),
    "information.squared_correlations": lambda e: inf.squared_correlations(e.prob, e.st.B, e.st.Sigma_W),
    "information.sap_score": lambda e: inf.sap_score(e.rho2),
    "information.matching_count": lambda e: inf.matching_count(e.m, e.prob.s),
    "information.max_matching": lambda e: inf.max_matching(e.pairwise),
    "information.max_matching_host": lambda e: inf.max_matching_host(e.pairwise),
    "information.information_terms": lambda e: nm.information_terms(e.prob, e.st.B, e.st.Sigma_W),
    "information.information": lambda e: nm.information(e.prob, e.st),
    # float32 arguments: the guard widens them, so these return float64 too
    "loss.sigma_x": lambda e: loss.sigma_x(*e.f32[:3]),
    "loss.reconstruction_moment": lambda e: loss.reconstruction_moment(*e.f32[:4]),
    "loss.loss_terms": lambda e: nm.loss_terms(*e.f32, e.beta, e.lam),
    "loss.objective": lambda e: nm.objective(*e.f32[1:], e.f32[0], e.beta, e.lam),
    "loss.losses": lambda e: nm.losses(e.prob, e.st, e.beta, e.lam),
    "loss.gradients_closed_form": lambda e: nm.gradients_closed_form(
        e.prob.Sigma_Y, *e.st[:4], e.beta, e.lam
    ),
    "loss.cholesky_gradient": lambda e: nm.cholesky_gradient(e.grads.Sigma_W, e.L_W),
    "loss.gradients": lambda e: nm.gradients(e.prob, e.st, e.beta, e.lam),
    "optimizers.gradient_descent": lambda e: nm.gradient_descent(
        e.prob, e.beta, e.lam, e.init, lr=0.01, steps=3
    ),
    "optimizers.minibatch_loss": lambda e: opt.minibatch_loss(e.y, e.Y, e.eps, e.beta, e.lam),
    "optimizers.draw_data": lambda e: opt.draw_data(e.prob, e.key, 3),
    "optimizers.sgd": lambda e: nm.sgd(e.prob, e.beta, e.lam, e.init, lr=0.01, steps=3, batch=4, key=0),
    "optimizers.adamw_start": lambda e: opt.adamw_start(e.p0, e.proto),
    # the steps and record_every of the adamw entry: one compilation for both
    "optimizers.adamw_advance": lambda e: opt.adamw_advance(
        e.prob, e.a_state, e.beta, e.lam, e.proto, e.proto.steps, record_every=2
    ),
    "optimizers.adamw_finish": lambda e: opt.adamw_finish(e.prob, e.a_state, e.beta, e.lam, e.proto),
    "optimizers.adamw_init": lambda e: opt.adamw_init(e.key, e.n, e.m, 1),
    "optimizers.adamw_states": lambda e: opt.adamw_states(e.proto, e.p0, e.p0),
    "optimizers.adamw": lambda e: nm.adamw(
        e.prob, e.beta, e.lam, e.m, key=0, protocol=e.proto, record_every=2
    ),
    "problem.from_factors": lambda e: nm.from_factors(np.eye(2), np.asarray(e.prob.Gamma)[:, :2], 0.1),
    "problem.from_spectrum": lambda e: nm.from_spectrum(np.array([3.0, 1.0]), sigma2=0.5),
    "problem.spiked": lambda e: nm.spiked(5, rho=1.0, eta=0.5),
    "problem.spd_matrix_numpy": lambda e: problem.spd_matrix_numpy(np.random.RandomState(0), 3),
    "problem.authors_instance": lambda e: nm.authors_instance(50),
    "problem.authors_inits": lambda e: nm.authors_inits(50),
    "schedules.constant_schedule": lambda e: nm.constant_schedule(2.0),
    "schedules.tanh_schedule": lambda e: nm.tanh_schedule(2.0, 0.1),
    "schedules.linear_schedule": lambda e: nm.linear_schedule(2.0, 0.1),
    "schedules.cyclical_schedule": lambda e: nm.cyclical_schedule(2.0, 10.0),
    "schedules.from_schedule": lambda e: sc.from_schedule(nm.tanh_schedule(2.0, 0.1)),
    "schedules.constant_setpoint": lambda e: sc.constant_setpoint(3.0),
    "schedules.controlvae_setpoint": lambda e: sc.controlvae_setpoint(),
    "schedules.dynamicvae_setpoint": lambda e: sc.dynamicvae_setpoint(),
    "schedules.controlvae_pi": lambda e: nm.controlvae_pi(e.sp),
    "schedules.dynamicvae_pi": lambda e: nm.dynamicvae_pi(e.sp),
    "schedules.optimal_rate": lambda e: sc.optimal_rate(e.prob, e.beta, e.lam, e.m),
    "schedules.equilibrium_beta": lambda e: nm.equilibrium_beta(e.prob, 1.0, e.lam, e.m),
    "schedules.closed_loop": lambda e: nm.closed_loop(
        e.prob, nm.controlvae_pi(e.sp), e.sp, steps=4, lam=e.lam, m=e.m
    ),
    "stationary.collapsed": lambda e: nm.collapsed(e.prob, e.m),
    "stationary.water_level": lambda e: nm.water_level(e.beta, e.lam),
    "stationary.water_filling": lambda e: nm.water_filling(e.prob, e.beta, e.lam, e.m),
    "stationary.lucas": lambda e: nm.lucas(e.prob, e.beta, e.lam, e.m, 0.5),
    "stationary.tipping_bishop": lambda e: nm.tipping_bishop(e.prob, e.m),
}


def _leaves(out) -> list:
    """The leaves of a call's result as picklable values: NumPy arrays keep the dtype JAX gave them."""
    import jax

    leaves = []
    for leaf in jax.tree_util.tree_leaves(out):
        if callable(leaf):
            leaves.append("<callable>")
        elif isinstance(leaf, jax.Array) and jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key):
            leaves.append(np.asarray(jax.random.key_data(leaf)))
        elif isinstance(leaf, jax.Array | np.ndarray | np.generic):
            leaves.append(np.asarray(leaf))
        elif isinstance(leaf, float):  # a Python float is a double: compared like a float64 array
            leaves.append(np.asarray(leaf, np.float64))
        else:
            leaves.append(leaf)
    return leaves


#: Example calls that compile a solver or an optimiser loop (most of the full test's minute); the CI-sized
#: test leaves them out, the slow one runs them all.
HEAVY = frozenset(
    {
        "alternating.alternating",
        "alternating.alternating_grid",
        "flow.integrate",
        "flow.collapse_curves",
        "ichikawa.integrate_ode",
        "ichikawa.online_sgd",
        "ichikawa.annealing_times",
        "optimizers.gradient_descent",
        "optimizers.sgd",
        "optimizers.adamw_advance",
        "optimizers.adamw_finish",
        "optimizers.adamw",
        "schedules.closed_loop",
    }
)


def results(*, catch: bool = False, light: bool = False) -> dict[str, list]:
    """Every example call's result leaves (run in both processes); with ``catch``, a call that raises
    gives ``["<error: ...>"]`` instead, so that the report names every failing function at once.
    ``light``: only the calls not in :data:`HEAVY`."""
    inputs = _Inputs()
    out = {}
    for name, call in CALLS.items():
        if light and name in HEAVY:
            continue
        try:
            out[name] = _leaves(call(inputs))
        except Exception as exc:
            if not catch:
                raise
            out[name] = [f"<error: {type(exc).__name__}: {exc}>"[:300]]
    return out


def _child(path: str, light: bool = False) -> None:
    """The subprocess: no global x64, before and after every call."""
    import jax
    import jax.numpy as jnp

    assert not jax.config.jax_enable_x64, "the subprocess must run without global x64"
    out = results(catch=True, light=light)
    # linvae's local contexts must not leak into the user's configuration.
    assert not jax.config.jax_enable_x64 and jnp.ones(()).dtype == jnp.float32
    Path(path).write_bytes(pickle.dumps(out))


def _floating(leaf) -> bool:
    return isinstance(leaf, np.ndarray) and np.issubdtype(leaf.dtype, np.floating)


def _same(a, e) -> bool:
    """``a`` reproduces ``e``: float arrays norm-wise to REPRODUCED (non-finite entries identical),
    everything else exactly."""
    if not _floating(e):
        return type(a) is type(e) and bool(np.all(np.asarray(a == e)))
    if not _floating(a) or a.shape != e.shape:
        return False
    a64, e64 = a.astype(np.float64), e.astype(np.float64)
    fin = np.isfinite(e64)
    if not np.array_equal(np.isfinite(a64), fin) or not np.array_equal(a64[~fin], e64[~fin], equal_nan=True):
        return False
    err = float(np.linalg.norm(a64[fin] - e64[fin]))
    return err <= REPRODUCED.atol + REPRODUCED.rtol * float(np.linalg.norm(e64[fin]))


def test_every_public_function_has_an_example():
    public, examples = set(public_functions()), set(CALLS)
    assert not public - examples, f"public functions without an entry in CALLS: {sorted(public - examples)}"
    assert not examples - public, (
        f"entries in CALLS that are not public functions: {sorted(examples - public)}"
    )


def test_every_public_function_is_guarded():
    """Each one is the :func:`float64` wrapper, whatever it returns (a Python float, an int, a closure)."""
    from linvae.numeric._precision import float64

    wrapper = float64(lambda: None).__code__
    bare = sorted(name for name, fn in public_functions().items() if fn.__code__ is not wrapper)
    assert not bare, f"public functions without the float64 guard: {bare}"


def test_public_api_is_float64_without_global_x64_light(tmp_path):
    """CI-sized: every public function but the solver and optimiser loops of :data:`HEAVY`."""
    _check_without_x64(tmp_path, light=True)


@pytest.mark.slow  # ~1 min of CPU per process: it compiles every public function twice
def test_public_api_is_float64_without_global_x64(tmp_path):
    _check_without_x64(tmp_path, light=False)


def _check_without_x64(tmp_path, *, light: bool) -> None:
    out = tmp_path / "results.pkl"
    env = {k: v for k, v in os.environ.items() if k != "JAX_ENABLE_X64"}
    log = tmp_path / "child.log"
    with log.open("w") as sink:
        child = subprocess.Popen(
            [sys.executable, "-c", f"from tests.test_float64 import _child; _child({str(out)!r}, {light})"],
            cwd=ROOT,
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
        try:
            expected = results(light=light)  # meanwhile, here with global x64 (conftest)
            child.wait(timeout=900)
        finally:
            child.kill()
    assert child.returncode == 0, f"subprocess failed:\n{log.read_text()[-4000:]}"
    got = pickle.loads(out.read_bytes())

    errors = {name: leaves[0] for name, leaves in got.items() if str(leaves[:1]).startswith("['<error")}
    narrow = {
        name: sorted({str(leaf.dtype) for leaf in leaves if _floating(leaf) and leaf.dtype != np.float64})
        for name, leaves in got.items()
    }
    narrow = {name: dtypes for name, dtypes in narrow.items() if dtypes}
    differ = sorted(
        name
        for name in expected
        if name not in errors
        and (
            len(got[name]) != len(expected[name])
            or not all(_same(a, e) for a, e in zip(got[name], expected[name], strict=True))
        )
    )
    assert not (errors or narrow or differ), (
        f"without global x64, {len(errors)} public functions raised: {errors}\n"
        f"{len(narrow)} returned floats below float64: {narrow}\n"
        f"{len(differ)} differ from the x64 process beyond REPRODUCED ({REPRODUCED.why}): {differ}"
    )
