"""Theory bridge: a linear-layer VAE trained by the deep pipeline reaches the D3 closed-form optimum.

Statistical band: ``DEEP_BRIDGE`` (Adam on Monte-Carlo minibatches, fixed seeds; see its ``why``).
"""

import json

import numpy as np
import pytest

from linvae._tolerance import DEEP_BRIDGE, ROUNDOFF
from linvae.deep.linear_bridge import BridgeConfig, bridge, bridge_problem
from tests.helpers import assert_close


def _check(rows):
    for r in rows:
        assert r["alive"]
        what = f"beta={r['beta']:g} lambda={r['lambda']:g} (theta={r['theta']:.3g})"
        loss_err = abs(r["loss_trained"] - r["loss_closed"])
        assert loss_err <= DEEP_BRIDGE.atol + DEEP_BRIDGE.rtol * abs(r["loss_closed"]), (
            what,
            loss_err,
            DEEP_BRIDGE.why,
        )
        mi_err = abs(r["mi_trained"] - r["mi_closed"])
        assert mi_err <= DEEP_BRIDGE.atol + DEEP_BRIDGE.rtol * abs(r["mi_closed"]), (
            what,
            mi_err,
            DEEP_BRIDGE.why,
        )
        # The trained loss can only be above the global optimum (up to the band).
        assert r["loss_trained"] >= r["loss_closed"] - DEEP_BRIDGE.atol
        assert r["active_trained"] == r["active_closed"], what


def test_bridge_problem_has_the_prescribed_spectrum():
    cfg = BridgeConfig()
    mu = np.asarray(bridge_problem(cfg).mu)
    expected = np.concatenate(
        [np.asarray(cfg.scales) + cfg.sigma2, np.full(cfg.data_dim - len(cfg.scales), cfg.sigma2)]
    )
    assert_close(mu, expected, ROUNDOFF, "spectrum of Sigma_Y")


def test_linear_vae_reaches_closed_form_with_and_without_lambda():
    # The registered figure's own --fast computation (three betas, both lambdas), drawn from its JSON
    # round trip as from its sidecar: this is the CI run of deep-linear-bridge (its entry-point smoke test,
    # which computes the same again, is under -m slow).
    from linvae.figures.fig_deep_linear_bridge import FIGURE

    data = FIGURE.compute(True)
    rows = data["rows"]
    assert {r["lambda"] for r in rows} == {0.0, 0.5} and {r["beta"] for r in rows} == {0.5, 3.0, 16.0}
    _check(rows)
    assert data["tolerance"]["rtol"] == DEEP_BRIDGE.rtol
    assert len(FIGURE.plot(json.loads(json.dumps(data))).axes) == 3


@pytest.mark.slow
def test_linear_vae_reaches_closed_form_full_grid():
    _check(bridge()["rows"])
