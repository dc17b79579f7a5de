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


def test_a_grid_block_runs_each_cell_as_its_own_block_would(tmp_path):
    """Lanes of two cells in one scan give each cell's numbers (the CPU budget and GPU layout), and a
    lane's initialisation is the published draw of its index (fewer inits = the first published ones)."""
    from linvae._tolerance import ROUNDOFF
    from tests.helpers import assert_close

    prob = _problem()
    kw = dict(m=M, proto=PROTO, num_drawn=3, seed=0, cache=None, chunk=10, log=lambda s: None)
    block = fig_linear_grid.adamw_block(
        prob, [4.0, 4.0, 8.0, 8.0], [2.0, 2.0, 0.0, 0.0], inits=[0, 1, 0, 1], stem="grid", **kw
    )
    for j, (b, lam) in enumerate([(4.0, 2.0), (8.0, 0.0)]):
        alone = fig_linear_grid.adamw_block(prob, b, lam, inits=[0, 1], stem="one", **kw)
        for key in KEYS:
            assert_close(block[key][2 * j : 2 * j + 2], alone[key], ROUNDOFF, f"{key} of cell {j}")
    with pytest.raises(ValueError, match="beta must be > 0"):
        fig_linear_grid.adamw_block(prob, [4.0, -1.0], 0.0, inits=[0, 1], stem="bad", **kw)


def test_converged_lanes_judges_the_last_tenth_of_the_run():
    steps = np.array([2_000, 4_000, 6_000, 8_000, 9_000, 10_000])
    stalled = [50.0, 20.0, 12.0, 11.6, 11.6, 11.6 - 1e-7]
    creeping = [50.0, 20.0, 12.0, 11.7, 11.65, 11.6]
    diverged = [50.0, 20.0, 12.0, np.nan, np.nan, np.nan]
    got = fig_linear_grid.converged_lanes(np.array([stalled, creeping, diverged]), steps, 10_000)
    assert got.tolist() == [True, False, False]
    # A run cut short (last record before the planned end) is never converged.
    assert not fig_linear_grid.converged_lanes(np.array([stalled]), steps, 20_000).any()


def test_default_protocol_is_the_cpu_budget_and_says_so():
    assert fig_linear_grid.adamw_protocol(fast=False, full=None) == "budget"  # tests run on the CPU
    assert fig_linear_grid.adamw_protocol(fast=False, full=True) == "published"
    assert fig_linear_grid.adamw_protocol(fast=True, full=None) == "fast"
    p = nm.AUTHORS
    budget = fig_linear_grid.adamw_config("budget", p.betas, p.lams)
    published = fig_linear_grid.adamw_config("published", p.betas, p.lams)
    assert not budget["published_protocol"] and published["published_protocol"]
    # The budget keeps the published optimiser and step count, and every cell.
    assert budget["steps"][50] == published["steps"][50] == 30_000
    assert budget["sizes_not_run"] == (100,) and published["sizes_not_run"] == ()
    data = {"config": {"sizes": p.sizes, "adamw": budget}, "adamw_converged_runs": 21, "adamw_runs": 25}
    caption = fig_linear_grid.adamw_caption(data)
    assert "CPU budget" in caption and "1 init/cell x 30,000 steps (n = 50)" in caption
    assert "n = 100 not run (--full)" in caption and "21/25 runs converged" in caption
    data["config"]["adamw"] = published
    assert fig_linear_grid.adamw_caption(data).startswith("AdamW: the published protocol: 50 inits/cell")


def test_alternating_half_is_read_back_equal_and_only_for_its_configuration(tmp_path, monkeypatch):
    # The published grid at smoke size (2 x 2 cells, 2 inits, 50 sweeps), as a background process leaves it.
    betas, lams = (1.0, 8.0), (0.0, 4.0)
    config = {"inits": "first 2", "tol": dict(nm.AUTHORS.tol), "max_sweeps": {50: 50, 100: 50}}
    # Stand-in closed forms, one per cell (the real ones, _closed_forms, cost ~15 s of compilation at
    # n = 50 and 100 and are not part of what is cached): the cells' theory fields are read back too.
    theory = {
        (n, b, lam): {"recon": 1.0 + i, "mi_xy": 2.0 + i, "mi_xv": 3.0 + i}
        for i, (n, b, lam) in enumerate((n, b, lam) for n in nm.AUTHORS.sizes for b in betas for lam in lams)
    }
    first = fig_linear_grid._alternating_half(betas, lams, 2, config, theory, tmp_path)
    assert (tmp_path / "alternating.npz").is_file()
    calls = []
    real = fig_linear_grid._alternating_cells
    monkeypatch.setattr(fig_linear_grid, "_alternating_cells", lambda *a: calls.append(a) or real(*a))
    again = fig_linear_grid._alternating_half(betas, lams, 2, config, theory, tmp_path)
    assert not calls  # read back, not recomputed
    assert len(again) == len(first) == 2 * len(betas) * len(lams)
    for a, b in zip(first, again, strict=True):
        assert a.keys() == b.keys() and "recon_theory" in a
        for key in a:
            np.testing.assert_array_equal(np.asarray(a[key]), np.asarray(b[key]), err_msg=key)
    # Another configuration (here: a cap of 5 sweeps instead of 50; the same shapes, so no new
    # compilation) does not reuse the file.
    other = fig_linear_grid._alternating_half(
        betas, lams, 2, dict(config, max_sweeps={50: 5, 100: 5}), theory, tmp_path
    )
    assert calls and all(np.max(c["steps"]) <= 5 for c in other)
    assert max(np.max(c["steps"]) for c in first) > 5
