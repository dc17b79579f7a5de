"""Discrete optimisers (linvae.numeric.optimizers): GD, Monte-Carlo minibatch SGD, the AdamW protocol."""

from __future__ import annotations

import jax
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import linvae.numeric as nm
from linvae._tolerance import FLOW, PROTOCOL, SQRT_N_SCALING, Z_SCORE
from linvae.numeric import flow as fl
from linvae.numeric import optimizers as op
from tests.helpers import assert_close

N, M, S = 5, 2, 2


def _problem(seed):
    rng = np.random.default_rng(seed)
    return nm.from_factors(np.diag(rng.uniform(0.3, 1.0, S)), rng.normal(size=(N, S)), rng.uniform(0.05, 0.3))


@jax.jit
def _gradients(prob, y, beta, lam, keys):
    """Minibatch gradients for many independent batches, and the exact population gradient."""
    cfg = fl.FlowConfig()

    def mc(k):
        kd, ke = jax.random.split(k)
        Y = op.draw_data(prob, kd, 8)
        eps = jax.random.normal(ke, (8, M))
        return jax.grad(op.minibatch_loss)(y, Y, eps, beta, lam)

    def exact(c):
        B, W, A, Z = fl.from_coordinates(c, cfg)
        return nm.objective(B, W, A, Z, prob.Sigma_Y, beta, lam)

    return jax.vmap(mc)(keys), jax.grad(exact)(y)


@settings(max_examples=20)
@given(seed=st.integers(0, 2**31 - 1), beta=st.floats(0.5, 6.0), lam=st.floats(0.0, 2.0))
def test_minibatch_gradient_is_unbiased(seed, beta, lam):
    """Mean of 4000 minibatch gradients = population gradient, every coordinate within Z_SCORE stderr."""
    prob = _problem(seed % 997)
    init = fl.flow_init(prob, M, key=seed, num=1)
    y = fl.to_coordinates(tuple(x[0] for x in init[:4]), fl.FlowConfig())
    samples, exact = _gradients(prob, y, beta, lam, jax.random.split(jax.random.key(seed), 4000))
    for s, e, name in zip(samples, exact, "B L_W A L_Z".split(), strict=True):
        s, e = np.asarray(s), np.asarray(e)
        if name in ("L_W", "L_Z"):  # only the lower triangle is a parameter
            mask = np.tril(np.ones(e.shape, bool))
            s, e = s[:, mask], e[mask]
        mean = s.mean(axis=0)
        se = s.std(axis=0, ddof=1) / np.sqrt(s.shape[0])
        assert np.all(np.abs(mean - e) <= Z_SCORE * se + FLOW.atol), name


@pytest.mark.slow
def test_gradient_descent_reaches_water_filling_and_tracks_the_flow():
    prob = _problem(3)
    beta, lam = 2.0, 1.0
    init = fl.flow_init(prob, M, key=0, num=2)
    run = op.gradient_descent(prob, beta, lam, init, lr=0.01, steps=20_000, record_every=1000)
    wf = nm.losses(prob, nm.water_filling(prob, beta, lam, M), beta, lam).total
    assert bool(np.all(np.asarray(run.final.converged)))
    assert_close(run.trace_loss[:, -1], np.full(2, float(wf)), FLOW, "GD stationary loss")
    # First-order in the step: halving it halves the distance to the flow at a fixed time.
    t = 2.0
    ref = fl.integrate(prob, beta, lam, init, t1=t, ts=[t]).trajectory.losses.total[0, 0, :, 0]
    errs = []
    for h in (0.02, 0.01):
        gd = op.gradient_descent(prob, beta, lam, init, lr=h, steps=round(t / h), record_every=round(t / h))
        errs.append(float(np.max(np.abs(np.asarray(gd.trace_loss[:, -1]) - np.asarray(ref)))))
    # The same 1/2 +- 1/4 band as a halving law elsewhere (SQRT_N_SCALING): first order in h.
    assert_close(errs[1] / errs[0], 0.5, SQRT_N_SCALING, f"GD error ratio {errs}")


def test_sgd_descends_the_population_loss():
    """Monte-Carlo SGD (fresh data each step) lowers the exact loss towards the water-filling value."""
    prob = _problem(4)
    beta, lam = 2.0, 1.0
    init = fl.flow_init(prob, M, key=1, num=3)
    run = op.sgd(prob, beta, lam, init, lr=0.002, steps=4000, batch=32, key=0, record_every=500)
    wf = float(nm.losses(prob, nm.water_filling(prob, beta, lam, M), beta, lam).total)
    start = np.asarray(nm.losses(prob, nm.State(*init[:4], 0, 0, 0), beta, lam).total)
    loss = np.asarray(run.trace_loss)
    assert np.all(np.isfinite(loss)) and bool(np.all(np.asarray(run.final.converged)))
    assert np.all(loss[:, -1] < start) and np.all(loss[:, -1] >= wf)
    assert np.all(np.asarray(run.best_loss) <= loss.min(axis=1))


@pytest.mark.slow
def test_adamw_protocol_reaches_water_filling():
    """The published AdamW protocol (30k steps, best iterate) lands on the water-filling loss (β > 1)."""
    prob = _problem(5)
    beta, lam = 4.0, 2.0
    run = op.adamw(prob, beta, lam, M, key=0, num_inits=3)
    wf = float(nm.losses(prob, nm.water_filling(prob, beta, lam, M), beta, lam).total)
    assert_close(run.best_loss, np.full(3, wf), PROTOCOL, "AdamW best loss")


def test_adamw_short_run_and_clipping_groups():
    """A short protocol run is finite, its best loss is the minimum of its trace, and a huge gradient is
    clipped per group (the first update moves each group by at most lr per coordinate, as Adam's does)."""
    prob = _problem(6)
    proto = op.AdamWProtocol(steps=200)
    run = op.adamw(prob, 4.0, 2.0, M, key=1, num_inits=2, protocol=proto, record_every=10)
    assert np.all(np.isfinite(np.asarray(run.trace_loss)))
    assert np.all(np.asarray(run.best_loss) <= np.asarray(run.trace_loss).min(axis=1))
    assert op.ADAMW_PROTOCOL[100].clip_mean == 2.0 and op.ADAMW_PROTOCOL[50].steps == 30_000


@pytest.mark.parametrize(
    "kwargs", [dict(lr=-1.0, steps=10), dict(lr=0.1, steps=0), dict(lr=0.1, steps=10, record_every=3)]
)
def test_bad_input_raises(kwargs):
    prob = _problem(0)
    init = fl.flow_init(prob, M, key=0, num=1)
    with pytest.raises(ValueError):
        op.gradient_descent(prob, 2.0, 1.0, init, **kwargs)
    with pytest.raises(ValueError):
        op.sgd(prob, 2.0, 1.0, init, lr=0.1, steps=10, batch=0, key=0)
