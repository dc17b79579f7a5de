"""The resumable AdamW half of ``linear-grid`` (linvae.figures.fig_linear_grid.adamw_cell) and the cache
folder the entry point passes to figures that declare ``uses_cache``.

At tiny size: a cell interrupted after a checkpoint and resumed gives bit for bit the numbers of an
uninterrupted one; a finished cell is read back instead of recomputed; a cache file written for another
configuration is ignored, never reused.
"""

from __future__ import annotations

import numpy as np
import pytest

import linvae.numeric as nm
from linvae.figures import Figure, fig_linear_grid, style
from linvae.figures import __main__ as cli
from linvae.numeric import optimizers as op

N, M, S = 5, 2, 2
PROTO = op.AdamWProtocol(steps=40)
KEYS = ("best_loss", "final_loss", "recon", "sap", "i_m", "mi_xy", "mi_xv")


def _problem():
    rng = np.random.default_rng(3)
    return nm.from_factors(np.diag(rng.uniform(0.3, 1.0, S)), rng.normal(size=(N, S)), 0.1)


class _Interrupt(KeyboardInterrupt):
    pass


def _cell(cache, log=lambda s: None, proto=PROTO, num_inits=2):
    return fig_linear_grid.adamw_cell(
        _problem(), 4.0, 2.0, m=M, proto=proto, num_inits=num_inits, seed=0, cache=cache, chunk=10, log=log
    )


def test_resumed_cell_equals_uninterrupted(tmp_path):
    whole = _cell(tmp_path / "a")
    seen = []

    def stop_after_two(msg):
        seen.append(msg)
        if len(seen) == 2:
            raise _Interrupt

    with pytest.raises(_Interrupt):
        _cell(tmp_path / "b", log=stop_after_two)
    assert seen[-1].startswith("checkpoint at step 20")
    assert [p.name for p in (tmp_path / "b").iterdir()] == ["adamw-n5-beta4-lam2-partial.npz"]
    msgs = []
    resumed = _cell(tmp_path / "b", log=msgs.append)
    assert msgs[0] == "resumed at step 20/40"
    assert sorted(p.name for p in (tmp_path / "b").iterdir()) == ["adamw-n5-beta4-lam2.npz"]
    for key in KEYS:
        np.testing.assert_array_equal(resumed[key], whole[key], err_msg=key)
    assert int(resumed["steps"]) == 40
    # The cell is the published optimiser: same best loss as one uninterrupted adamw() call.
    run = op.adamw(_problem(), 4.0, 2.0, M, key=0, num_inits=2, protocol=PROTO, record_every=10)
    np.testing.assert_array_equal(np.asarray(run.best_loss), whole["best_loss"])


def test_finished_cell_is_reused_and_other_configs_are_not(tmp_path):
    first = _cell(tmp_path)
    path = tmp_path / "adamw-n5-beta4-lam2.npz"
    stamp = path.stat().st_mtime_ns
    msgs = []
    again = _cell(tmp_path, log=msgs.append)
    assert msgs == [] and path.stat().st_mtime_ns == stamp
    assert bool(again["from_cache"]) and not bool(first["from_cache"])
    for key in KEYS:
        np.testing.assert_array_equal(again[key], first[key])
    # Same file name, another configuration (3 inits, more steps): recomputed, not the stale file.
    other = _cell(tmp_path, proto=PROTO._replace(steps=50), num_inits=3)
    assert other["recon"].shape == (3,) and int(other["steps"]) == 50
    # A torn or foreign file is ignored too.
    path.write_bytes(b"not an npz")
    assert _cell(tmp_path)["recon"].shape == (2,)


def test_entry_point_passes_cache_folder(tmp_path, monkeypatch, capsys):
    seen = {}

    def compute(fast, cache=None):
        seen["cache"] = cache
        return {"x": [0.0, 1.0]}

    def plot(data):
        fig, axes = style.figure()
        axes[0, 0].plot(data["x"])
        return fig

    plain = Figure(slug="plain", description="no cache", compute=lambda fast: {"x": [1.0]}, plot=plot)
    cached = Figure(slug="cached", description="cache", compute=compute, plot=plot, uses_cache=True)
    monkeypatch.setattr(cli, "load_figures", lambda: {"plain": plain, "cached": cached})
    assert cli.main(["--out", str(tmp_path), "--fast"]) == 0
    assert seen["cache"] == tmp_path / ".cache" / "cached"


def test_linear_grid_is_last_and_cached():
    from linvae.figures import load_figures

    figures = load_figures()
    assert list(figures)[-1] == "linear-grid"
    assert figures["linear-grid"].uses_cache


def test_adamw_loss_matches_population_loss():
    """The fast AdamW loss (expanded traces, closed-form precision VJP) is ``loss_terms`` on the same
    covariances, value and gradient, with the upper triangles of the L's ignored."""
    import jax

    from linvae._tolerance import ROUNDOFF
    from linvae.numeric.loss import loss_terms
    from tests.helpers import assert_close

    prob, floor = _problem(), PROTO.floor
    p = jax.tree_util.tree_map(lambda x: x[0], op.adamw_init(jax.random.key(5), N, M, 1))
    p["L_Z"] = p["L_Z"] + 0.3 * np.triu(np.ones((N, N)), 1)

    def reference(p):
        W, Z = op._adamw_sigma(p["L_W"], floor), op._adamw_sigma(p["L_Z"], floor)
        return loss_terms(prob.Sigma_Y, p["B"], W, p["A"], Z, 4.0, 2.0).total

    with jax.enable_x64(True):
        v1, g1 = jax.value_and_grad(reference)(p)
        v2, g2 = jax.value_and_grad(lambda p: op._adamw_loss(p, prob.Sigma_Y, 4.0, 2.0, floor))(p)
    assert_close(v2, v1, ROUNDOFF, "AdamW loss")
    for key in g1:
        assert_close(g2[key], g1[key], ROUNDOFF, f"gradient {key}")
