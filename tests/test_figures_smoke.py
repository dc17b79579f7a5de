"""Smoke tests of ``python -m linvae.figures``: every figure in ``--fast`` mode, the files it writes, the
JSON sidecar, ``--list``/``--help``, failure isolation, atomic writes and the extras skip.

Each per-figure test goes through the entry point (compute + plot + atomic PNG/PDF/JSON writes) and then
redraws the figure from the JSON it wrote, so ``plot`` is exercised on both the computed dict and its
JSON round trip.
"""

from __future__ import annotations

import json
import math
import os
import stat

import matplotlib
import pytest

from linvae.figures import Figure, load_figures, style
from linvae.figures import __main__ as cli
from linvae.figures.runner import jsonable, run

FIGURES = load_figures()
#: Figures whose --fast compute takes more than a few seconds of CPU; still run, under -m slow.
#: deep-linear-bridge's --fast compute and plot run in CI in tests/deep/test_bridge_linear.py.
HEAVY = {
    "ichikawa-dynamics", "linear-grid", "flow-vs-map", "gain-contraction", "lambda-recovery", "datasets",
    "deep-linear-bridge",
}  # fmt: skip
META_KEYS = {
    "slug",
    "description",
    "fast",
    "wall_time_s",
    "cpu_time_s",
    "versions",
    "git",
    "created_utc",
    "command",
    "data",
}


def _no_temp_files(path) -> bool:
    """No temporary files of atomic writes; ``.cache/`` (resumable figures' pieces) holds none either."""
    files = [p for p in path.iterdir() if p.name != ".cache"] + list((path / ".cache").rglob("*"))
    return not [p for p in files if p.name.startswith(".")]


def _params():
    for slug in FIGURES:
        marks = [pytest.mark.slow] if slug in HEAVY else []
        yield pytest.param(slug, marks=marks, id=slug)


@pytest.mark.parametrize("slug", list(_params()))
def test_figure_fast_through_entry_point(slug, tmp_path, capsys):
    fig = FIGURES[slug]
    if fig.missing():
        pytest.skip(f"{slug} needs {fig.missing()}")
    rc = cli.main([slug, "--fast", "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert f"{slug}: ok" in out
    for ext in ("png", "pdf", "json"):
        assert (tmp_path / f"{slug}.{ext}").stat().st_size > 0
    assert _no_temp_files(tmp_path)
    record = json.loads((tmp_path / f"{slug}.json").read_text())
    assert META_KEYS <= set(record)
    assert record["slug"] == slug and record["fast"] is True
    assert record["versions"]["jax"] and record["versions"]["matplotlib"]
    assert set(record["git"]) == {"sha", "dirty"}
    assert record["wall_time_s"]["total"] >= record["wall_time_s"]["compute"] >= 0
    # The sidecar alone redraws the figure.
    with style.context():
        redrawn = fig.plot(record["data"])
    assert isinstance(redrawn, matplotlib.figure.Figure) and redrawn.axes


@pytest.mark.slow
def test_linear_grid_json_cells(tmp_path):
    rc = cli.main(["linear-grid", "--fast", "--out", str(tmp_path)])
    assert rc == 0
    cells = json.loads((tmp_path / "linear-grid.json").read_text())["data"]["cells"]
    keys = {"n", "optimizer", "beta", "lam", "recon_mean", "sap_mean", "im_mean", "mi_xy_mean", "mi_xv_mean"}
    assert cells and all(keys <= set(c) for c in cells)
    assert {c["n"] for c in cells} == {50, 100}
    for c in cells:
        assert len(c["recon"]) == len(c["sap"]) == len(c["i_m"]) >= 1
        # Means are over the converged runs (every run of the map; AdamW's --fast runs converge in no cell).
        ok = [
            r
            for r, good in zip(
                c["recon"],
                c["converged"] if c["optimizer"] == "adamw" else [True] * len(c["recon"]),
                strict=True,
            )
            if good
        ]
        if ok:
            assert math.isclose(c["recon_mean"], sum(ok) / len(ok), rel_tol=1e-12)
        else:
            assert c["recon_mean"] is None
        if c["optimizer"] == "alternating" and c["lam"] == 0 and c["beta"] > 1:
            assert c["im_mean"] < 1e-6 and c["sap_mean"] < 1e-6  # collapse (T8, T10)
    assert {c["optimizer"] for c in cells} == {"alternating", "adamw"}
    adamw = json.loads((tmp_path / "linear-grid.json").read_text())["data"]["config"]["adamw"]
    ada = [c for c in cells if c["optimizer"] == "adamw"]
    assert adamw["published_protocol"] is False and all(len(c["recon"]) == adamw["inits"] for c in ada)
    # The AdamW cells were cached: a rerun reads them back instead of recomputing.
    assert sorted(p.name for p in (tmp_path / ".cache" / "linear-grid").iterdir())[0].startswith("adamw-n100")


def test_list_and_help(capsys):
    assert cli.main(["--list"]) == 0
    out = capsys.readouterr().out
    for slug, fig in FIGURES.items():
        assert slug in out and fig.description[:30] in out
    with pytest.raises(SystemExit) as exc:
        cli.main(["--help"])
    assert exc.value.code == 0
    assert "--fast" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exc:
        cli.main(["no-such-figure"])
    assert exc.value.code == 2


def test_every_issue_figure_is_registered():
    from linvae.theorems import FIGURE_SLUGS

    assert set(FIGURE_SLUGS) | {"datasets"} <= set(FIGURES)


def _ok_compute(fast):
    return {"x": [0.0, 1.0], "y": [1.0, float("nan")], "fast": fast}


def _ok_plot(data):
    fig, axes = style.figure()
    axes[0, 0].plot(style.arr(data["x"]), style.arr(data["y"]), marker="o")
    return fig


def _boom(fast):
    raise RuntimeError("deliberate failure")


def test_failure_is_isolated_and_exit_code_nonzero(tmp_path, monkeypatch, capsys):
    registry = {
        "bad": Figure(slug="bad", description="fails", compute=_boom, plot=_ok_plot),
        "good": Figure(slug="good", description="works", compute=_ok_compute, plot=_ok_plot),
    }
    monkeypatch.setattr(cli, "load_figures", lambda: registry)
    rc = cli.main(["--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert rc == 1
    assert "bad: FAILED" in out and "deliberate failure" in out and "good: ok" in out
    assert not list(tmp_path.glob("bad.*"))
    data = json.loads((tmp_path / "good.json").read_text())["data"]
    assert data["y"] == [1.0, None]  # strict JSON: non-finite -> null
    mask = os.umask(0)
    os.umask(mask)
    for ext in ("png", "pdf", "json"):  # ordinary permissions, not mkstemp's 0600
        assert stat.S_IMODE((tmp_path / f"good.{ext}").stat().st_mode) == 0o666 & ~mask
    assert _no_temp_files(tmp_path)


def test_failed_save_leaves_old_files_untouched(tmp_path, monkeypatch):
    good = Figure(slug="good", description="works", compute=_ok_compute, plot=_ok_plot)
    assert all(o.status == "ok" for o in run([good], tmp_path, log=lambda s: None))
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}

    def broken_plot(data):
        fig = _ok_plot(data)

        def savefig(fh, format):
            fh.write(b"partial")
            raise OSError("disk full")

        fig.savefig = savefig
        return fig

    bad = Figure(slug="good", description="works", compute=_ok_compute, plot=broken_plot)
    (res,) = run([bad], tmp_path, log=lambda s: None)
    assert res.status == "failed" and "disk full" in res.message
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


def test_missing_extra_is_skipped_by_default_but_fails_when_named(tmp_path, monkeypatch, capsys):
    needy = Figure(
        slug="needy",
        description="needs an extra",
        compute=_ok_compute,
        plot=_ok_plot,
        requires=("linvae_no_such_package",),
    )
    good = Figure(slug="good", description="works", compute=_ok_compute, plot=_ok_plot)
    monkeypatch.setattr(cli, "load_figures", lambda: {"needy": needy, "good": good})
    assert cli.main(["--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "needy: skipped" in out and "linvae_no_such_package" in out
    assert cli.main(["needy", "--out", str(tmp_path)]) == 1
    assert not list(tmp_path.glob("needy.*"))


def test_deep_dispatch(monkeypatch, capsys):
    import importlib.util
    import sys
    import types

    if importlib.util.find_spec("linvae.figures.deep") is None:
        assert cli.main(["deep", "--help"]) == 2
        assert "linvae.figures.deep" in capsys.readouterr().err
    seen = []
    fake = types.ModuleType("linvae.figures.deep")
    fake.main = lambda argv: seen.append(argv) or 0
    monkeypatch.setitem(sys.modules, "linvae.figures.deep", fake)
    import linvae.figures

    monkeypatch.setattr(linvae.figures, "deep", fake, raising=False)
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: object())
    assert cli.main(["deep", "train", "--x"]) == 0
    assert seen == [["train", "--x"]]


def test_jsonable():
    import numpy as np

    rec = jsonable({"a": np.arange(3), "b": np.float32(2.5), "c": (np.inf, -np.nan), "d": np.bool_(True)})
    assert rec == {"a": [0, 1, 2], "b": 2.5, "c": [None, None], "d": True}
    json.dumps(rec, allow_nan=False)


def _background_work(fast, cache, full=None, log=print):
    """Background work of a test figure: leaves the pid of the process that ran it in the cache."""
    os.makedirs(cache, exist_ok=True)
    with open(os.path.join(cache, "pid"), "w") as fh:
        fh.write(str(os.getpid()))


def _reads_background(fast, cache):
    with open(os.path.join(cache, "pid")) as fh:
        return {**_ok_compute(fast), "pid": int(fh.read()), "here": os.getpid()}


def _background_failure(fast, cache, full=None, log=print):
    raise RuntimeError("deliberate background failure")


def _falls_back(fast, cache):
    os.makedirs(cache, exist_ok=True)
    return {**_ok_compute(fast), "pid": os.getpid(), "here": os.getpid()}


@pytest.mark.parametrize("fails", [False, True])
def test_background_work_runs_in_its_own_process_before_compute(tmp_path, capsys, fails):
    bg = Figure(
        slug="bg",
        description="reads its background work",
        compute=_falls_back if fails else _reads_background,
        plot=_ok_plot,
        uses_cache=True,
        background=_background_failure if fails else _background_work,
    )
    good = Figure(slug="good", description="works", compute=_ok_compute, plot=_ok_plot)
    outcomes = run([good, bg], tmp_path)
    assert [o.status for o in outcomes] == ["ok", "ok"]
    data = json.loads((tmp_path / "bg.json").read_text())["data"]
    out = capsys.readouterr().out
    assert "bg: part of its work started in a background process" in out
    if fails:
        assert "its background process failed" in out  # and compute did the work itself
    else:
        assert data["pid"] != data["here"]  # computed by another process, read back by compute
