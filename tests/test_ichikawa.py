"""[IH23] high-dimensional dynamics (linvae.numeric.ichikawa): KL annealing, simulation, input checks.

The theorems themselves are in tests/theorems/test_ichikawa_{ode,fixed_point,threshold}.py.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from linvae.numeric import ichikawa as ik


def test_kl_annealing_intermediate_speed_is_fastest():
    """docs/theory.md §6: an intermediate γ converges faster than constant β; very slow annealing is slower."""
    for schedule in ("tanh", "linear"):
        out = ik.annealing_times([1e-3, 1e-2, 3e-2], rel_band=1e-2, rho=1.0, eta=1.0, beta=1.0, tau=0.1,
                                 schedule=schedule, t1=2000.0, num_times=2001)
        times = np.asarray(out.times)
        assert np.all(np.isfinite(times)) and math.isfinite(out.constant_time)
        assert times.min() < out.constant_time, (schedule, times, out.constant_time)
        assert times[0] > out.constant_time, (schedule, times, out.constant_time)


@pytest.mark.slow
def test_sgd_collapses_above_the_threshold_and_learns_below():
    """Finite-N online SGD: from a small overlap, m grows for β < ρ + η and decays to 0 for β > ρ + η."""
    kw = dict(rho=1.0, eta=1.0, tau=0.2, t1=60.0, saves=6, seeds=2, m0=0.2, mt0=0.2, sigma0=0.1)
    below = ik.online_sgd(400, beta=1.0, key=0, **kw)
    above = ik.online_sgd(400, beta=3.0, key=0, **kw)
    assert np.all(np.abs(np.asarray(below.order.m[:, -1])) > 0.5)
    assert np.all(np.abs(np.asarray(above.order.m[:, -1])) < 0.1)


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(N=100, t1=1.0, saves=3),  # N t1 not a multiple of saves
        dict(N=100, t1=1.0, saves=10, tau=-0.1),
        dict(N=0, t1=1.0, saves=1),
        dict(N=100, t1=1.0, saves=10, beta=float("nan")),
    ],
)
def test_online_sgd_bad_input(kwargs):
    with pytest.raises(ValueError):
        ik.online_sgd(key=0, **kwargs)


def test_fixed_point_and_ode_bad_input():
    with pytest.raises(ValueError):
        ik.fixed_point(1.0, 1.0, 2.5)  # β >= Λ: no non-collapsed point
    with pytest.raises(ValueError):
        ik.integrate_ode(ik.collapsed_point(), [1.0, 0.5])
    with pytest.raises(ValueError):
        ik.integrate_ode(ik.collapsed_point(), [1.0], schedule="tanh", gamma=0.0)
    with pytest.raises(ValueError):
        ik.annealing_times([-1.0], rel_band=1e-2)
