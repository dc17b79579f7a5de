"""Results of a deep sweep: summary tables, the trade-off, the deep-effect figure, the interactive page,
runs-folder identity, bad input that loses nothing, and the real-file formats end to end."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from linvae.deep.config import PRESETS, deviations, preset, protocol_label, validate
from linvae.deep.data import Pooled, fingerprint, load, load_dsprites, load_mpi3d, load_shapes3d
from linvae.deep.evaluate import check_runs_evaluation, evaluate_sweep
from linvae.deep.model import make_model
from linvae.deep.runs import check_runs, model_path
from linvae.deep.summary import read_csv, summary_rows, to_markdown
from linvae.deep.sweep import train_sweep
from linvae.deep.tradeoff import pareto_front, tchebycheff, tchebycheff_scores
from linvae.figures import deep as fig_deep
from tests.deep.test_data_files import (
    DSPRITES_SIZES,
    MPI3D_SIZES,
    SHAPES3D_SIZES,
    write_dsprites,
    write_mpi3d,
    write_shapes3d,
)

# A linear model and a tiny evaluation keep every sweep here to seconds; the conv path runs in
# tests/deep/test_deep_figures.py.
TINY = dataclasses.replace(
    PRESETS["smoke"], model="linear", batch_size=8, beta_steps=4, lambda_steps=2, chunk_steps=2,
    checkpoint_every=2, log_window=2, betas=(1.0, 16.0), lambdas=(0.0, 4.0), seeds=(0,), eval_train=200,
    eval_test=100, eval_batch=100, max_models=4,
)  # fmt: skip


def _record(beta, lam, seed, *, mig, nll, kl_latent, status="ok", phase="lambda"):
    return {
        "member": {"beta": beta, "lambda": lam, "seed": seed},
        "phase": phase,
        "steps": 10,
        "status": status,
        "window": {"nll": nll, "kl": float(sum(kl_latent)), "l2": 1.0},
        "metrics": None if status != "ok" else {"mig": mig, "sap": 0.1, "i_m": 0.5, "kl_latent": kl_latent},
    }


# ---------------------------------------------------------------------------------------------------
# Tables


def test_summary_rows_mean_std_n_and_spectrum():
    recs = [
        _record(1.0, 0.0, 0, mig=0.1, nll=10.0, kl_latent=[0.0, 2.0, 0.5]),
        _record(1.0, 0.0, 1, mig=0.3, nll=14.0, kl_latent=[1.0, 0.001, 3.0]),
        _record(1.0, 0.0, 2, mig=0.0, nll=0.0, kl_latent=[0.0, 0.0, 0.0], status="failed"),
        _record(4.0, 0.0, 0, mig=0.2, nll=20.0, kl_latent=[0.0, 0.0, 0.02]),
    ]
    rows = summary_rows(recs, dataset="dsprites", source="stand-in", protocol="p", active_kl=0.01)
    assert [(r["beta"], r["models"], r["failed"]) for r in rows] == [(1.0, 3, 1), (4.0, 1, 0)]
    a, b = rows
    assert a["mig_mean"] == pytest.approx(0.2) and a["mig_std"] == pytest.approx(np.std([0.1, 0.3], ddof=1))
    assert a["mig_n"] == 2 and a["nll_mean"] == pytest.approx(12.0)
    assert a["active_mean"] == pytest.approx(2.0)  # (2 of 3) and (2 of 3) above 0.01 nats
    # The spectrum is averaged rank by rank: sorted (2, 0.5, 0) and (3, 1, 0.001).
    assert [a[f"kl_sorted_{i}"] for i in (1, 2, 3)] == pytest.approx([2.5, 0.75, 0.0005])
    assert b["active_mean"] == 1.0 and math.isnan(b["mig_std"]) and b["mig_n"] == 1
    md = to_markdown(rows, title="t", notes=["reduced configuration: x"])
    assert (
        "| lambda | 1 | 0 | 2 (+1 failed) |" in md and "0.200 ± 0.141" in md and "reduced configuration" in md
    )
    assert "| lambda | 4 | 0 | 1 |" in md and "0.200 |" in md


# ---------------------------------------------------------------------------------------------------
# Trade-off


def test_pareto_front_and_tchebycheff_on_a_known_example():
    pts = [(1.0, 0.1), (2.0, 0.5), (3.0, 0.6), (4.0, 0.2), (2.5, 0.3)]
    assert pareto_front(pts) == [0, 1, 2]
    # Normalised regrets: NLL (0, 1/3, 2/3, 1, 1/2), MIG (1, 0.2, 0, 0.8, 0.6).
    g = tchebycheff_scores(pts, 0.5)
    assert g == pytest.approx([0.5, 1 / 6, 1 / 3, 0.5, 0.3])
    assert tchebycheff(pts, 0.5) == 1
    assert tchebycheff(pts, 1.0) == 0 and tchebycheff(pts, 0.0) == 2
    assert all(tchebycheff(pts, w) in pareto_front(pts) for w in np.linspace(0, 1, 11))
    assert tchebycheff([(float("nan"), 0.1)], 0.5) is None
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        tchebycheff(pts, 1.5)


# ---------------------------------------------------------------------------------------------------
# The entry point on a tiny sweep: deep-effect figure, tables, interactive page, records


@pytest.fixture
def tiny_preset(monkeypatch):
    monkeypatch.setitem(PRESETS, "smoke", TINY)
    return TINY


def _args(tmp_path, *extra):
    return ["--dataset", "dsprites", "--no-progress", "--runs", str(tmp_path / "runs"), "--out", str(tmp_path / "f"),
            *extra]  # fmt: skip


@pytest.fixture(scope="module")
def tiny_sweep(tmp_path_factory):
    """One tiny sweep through the entry point, shared by the tests that read it (they do not write)."""
    tmp = tmp_path_factory.mktemp("sweep")
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(PRESETS, "smoke", TINY)
        assert fig_deep.main(_args(tmp)) == 0
    return tmp


def test_tiny_sweep_writes_deep_effect_tables_and_page(tiny_sweep):
    tmp_path = tiny_sweep
    out, runs = tmp_path / "f", tmp_path / "runs"
    for panel in fig_deep.PANELS:
        assert (out / f"deep_dsprites_smoke_{panel}.png").stat().st_size > 0
    rows = read_csv(out / "deep_dsprites_smoke_summary.csv")
    assert [(r["phase"], r["beta"], r["lambda"]) for r in rows] == [
        ("beta", 1.0, 0.0), ("beta", 16.0, 0.0),
        ("lambda", 1.0, 0.0), ("lambda", 1.0, 4.0), ("lambda", 16.0, 0.0), ("lambda", 16.0, 4.0),
    ]  # fmt: skip
    assert all(r["mig_n"] == 1 and np.isfinite(r["mig_mean"]) and r["kl_sorted_10"] >= 0 for r in rows)
    assert "reduced configuration" in rows[0]["protocol"] and "stand-in" in rows[0]["source"]
    assert (runs / "summary.csv").read_text() == (out / "deep_dsprites_smoke_summary.csv").read_text()
    md = (out / "deep_dsprites_smoke_summary.md").read_text()
    assert "reduced configuration" in md and "| lambda | 16 | 4 | 1 |" in md
    side = json.loads((out / "deep_dsprites_smoke.json").read_text())
    data = side["data"]
    assert set(data["lines"]) >= {"mig", "sap", "i_m", "active", "nll", "kl"}
    assert len(data["spectrum"]["0"]["mean"]) == 2 and len(data["spectrum"]["4"]["mean"][0]) == 10
    lin = data["linear"]
    assert math.isnan(lin["d1"]["0"][0]["i_m"]) and lin["d1"]["0"][1]["i_m"] == 0.0  # D1: beta = 1 undefined
    assert lin["d3"]["0"][0]["active"] == 5  # the instance's 5 signal directions are on at beta = 1
    assert side["runs_folder"]["invocations"][-1]["wall_s"] > 0 and "load_mean" in side["load_average"]
    assert side["evaluation"]["metric:mig"]["num_bins"] == 20 and side["data_fingerprint"]
    record = json.loads((runs / "lambda" / "b16_l4_s0" / "eval.json").read_text())
    assert set(record["metric_settings"]) == {"mig", "sap", "im"}
    assert record["metric_settings"]["sap"]["num_test"] == 100 and len(record["metrics"]["kl_latent"]) == 10
    # The page is standalone (plotly.js inside, no network) and carries the plotted numbers.
    html = (out / "deep_dsprites_smoke_pareto.html").read_text()
    assert "<script src=" not in html and "plotly" in html.lower() and "sliders" in html
    payload = html.split('<script type="application/json" id="linvae-data">')[1].split("</script>")[0]
    t = json.loads(payload)["tradeoff"]
    assert len(t["cells"]) == 4 and len(t["slider"]) == len(fig_deep.SLIDER_WEIGHTS)
    assert t["cells"][0]["nll"] == pytest.approx(data["tradeoff"]["cells"][0]["nll"])


def test_cross_dataset_summary(tiny_sweep, tmp_path):
    # A second data set's table in the same output folder gives the cross-data-set summary.
    text = (tiny_sweep / "f" / "deep_dsprites_smoke_summary.csv").read_text()
    (tmp_path / "deep_dsprites_smoke_summary.csv").write_text(text)
    (tmp_path / "deep_mpi3d_smoke_summary.csv").write_text(text.replace("\ndsprites,", "\nmpi3d,"))
    csv_path, md_path = fig_deep._cross_dataset(tmp_path, "smoke")
    both = read_csv(csv_path)
    assert [r["dataset"] for r in both] == ["dsprites"] * 6 + ["mpi3d"] * 6
    assert "| data set |" in Path(md_path).read_text() and fig_deep._cross_dataset(tmp_path, "demo") == []


def test_page_is_skipped_without_plotly(monkeypatch, capsys):
    import sys

    monkeypatch.setitem(sys.modules, "plotly", None)
    monkeypatch.setitem(sys.modules, "plotly.graph_objects", None)
    assert fig_deep.pareto_html({"tradeoff": {}}) is None


# ---------------------------------------------------------------------------------------------------
# Bad input: a clear error, status 2, nothing trained or lost


def _snapshot(runs):
    return {p: p.read_bytes() for p in sorted(runs.rglob("*")) if p.is_file()}


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--metrics", "mig", "hsic"], "unknown metric(s) 'hsic'"),
        (["--latent-dim", "0"], "latent_dim must be >= 1"),
        (["--latent-dim", "-3"], "latent_dim must be >= 1"),
        (["--weight", "2"], "--weight must lie in [0, 1]"),
    ],
)
def test_bad_values_fail_before_training(tmp_path, capsys, tiny_preset, extra, message):
    assert fig_deep.main(_args(tmp_path, *extra)) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "runs").exists() and not (tmp_path / "f").exists()


@pytest.mark.parametrize("name", ["paper", "paper-m15"])
def test_paper_preset_needs_the_real_files(tmp_path, capsys, monkeypatch, name):
    monkeypatch.delenv("LINVAE_DATA", raising=False)
    monkeypatch.delenv("DISENTANGLEMENT_LIB_DATA", raising=False)
    args = ["--dataset", "dsprites", "--preset", name, "--data-dir", str(tmp_path / "data"),
            "--runs", str(tmp_path / "r"), "--out", str(tmp_path / "f")]  # fmt: skip
    assert fig_deep.main(args) == 2
    err = capsys.readouterr().err
    assert "dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz" in err and str(tmp_path / "data") in err
    assert "--data-dir" in err and "--source procedural" in err and "$DISENTANGLEMENT_LIB_DATA" in err
    assert not (tmp_path / "r").exists()


def test_help_names_both_data_variables(capsys):
    with pytest.raises(SystemExit):
        fig_deep.main(["--help"])
    text = capsys.readouterr().out
    assert "$LINVAE_DATA" in text and "$DISENTANGLEMENT_LIB_DATA" in text and "// 3" in text


def test_mixed_runs_folder_is_refused_and_nothing_is_lost(tiny_sweep, capsys, tiny_preset):
    runs = tiny_sweep / "runs"
    before = _snapshot(runs)
    for extra, message in ((["--lr", "0.01"], "learning_rate: stored 0.001, requested 0.01"),
                           (["--image-size", "32"], "image fingerprint")):  # fmt: skip
        assert fig_deep.main(_args(tiny_sweep, *extra)) == 2
        assert message in capsys.readouterr().err
    assert _snapshot(runs) == before


def test_evaluation_settings_and_data_source_are_part_of_a_runs_folder(tmp_path):
    write_dsprites(tmp_path / "data")
    real = load_dsprites(tmp_path / "data", factor_sizes=DSPRITES_SIZES)
    cfg = dataclasses.replace(TINY, betas=(1.0,), lambdas=(0.0,), lambda_steps=0, source="real")
    train_sweep(cfg, tmp_path / "r", dataset=real, progress=False)
    evaluate_sweep(cfg, tmp_path / "r", dataset=real)
    stored = json.loads((tmp_path / "r" / "config.json").read_text())
    assert stored["data_source"] == "real file" and stored["data_fingerprint"] == fingerprint(real)
    with pytest.raises(ValueError, match="data source: stored 'real file', requested 'procedural stand-in'"):
        check_runs(cfg, tmp_path / "r", load("dsprites", source="procedural"))
    with pytest.raises(ValueError, match="eval_train: stored 200, requested 300"):
        check_runs_evaluation(dataclasses.replace(cfg, eval_train=300), tmp_path / "r")
    # A metric not computed yet is added to the folder and computed for every model that lacks it.
    more = dataclasses.replace(cfg, metrics=("mig", "sap", "im", "dci"))
    (rec,) = evaluate_sweep(more, tmp_path / "r", dataset=real)
    assert set(rec["metric_settings"]) == {"mig", "sap", "im", "dci"} and 0 <= rec["metrics"]["dci_d"] <= 1
    assert "metric:dci" in json.loads((tmp_path / "r" / "evaluation.json").read_text())


# ---------------------------------------------------------------------------------------------------
# Real-file formats end to end: tiny files in the published layouts, through the real loaders


@pytest.mark.parametrize(
    ("name", "write", "loader", "sizes", "image_size"),
    [
        ("dsprites", write_dsprites, load_dsprites, DSPRITES_SIZES, 64),
        ("shapes3d", write_shapes3d, load_shapes3d, SHAPES3D_SIZES, 64),
        ("mpi3d", write_mpi3d, load_mpi3d, MPI3D_SIZES, 32),
    ],
)
def test_real_format_files_train_and_evaluate_end_to_end(tmp_path, name, write, loader, sizes, image_size):
    write(tmp_path / "data")
    ds = loader(tmp_path / "data", factor_sizes=sizes)
    cfg = dataclasses.replace(
        TINY, dataset=name, source="real", image_size=image_size, betas=(4.0,), lambdas=(4.0,)
    )
    assert train_sweep(cfg, tmp_path / "r", dataset=ds, progress=False) == {"beta": 1, "lambda": 1}
    records = evaluate_sweep(cfg, tmp_path / "r", dataset=ds)
    assert [r["phase"] for r in records] == ["beta", "lambda"] and all(r["status"] == "ok" for r in records)
    for r in records:
        assert r["provenance"]["kind"] == "real file" and str(tmp_path / "data") in r["provenance"]["source"]
        assert all(np.isfinite(r["metrics"][k]) for k in ("mig", "sap", "i_m", "kl_eval", "nll_eval"))
    if image_size == 32:
        assert "mean-pooled 2x2 to 32x32" in records[0]["provenance"]["source"]
    rows = summary_rows(records, dataset=name, source="real", protocol=protocol_label(cfg), active_kl=0.01)
    assert len(rows) == 2 and all(r["models"] == 1 for r in rows)
    assert model_path(tmp_path / "r", "lambda", _member(records[-1])).exists()


def _member(record):
    from linvae.deep.record import Member

    m = record["member"]
    return Member(m["beta"], m["lambda"], m["seed"])


# ---------------------------------------------------------------------------------------------------
# Presets, the reduced configuration, the 32 x 32 model


def test_presets_and_their_labels():
    demo, paper, wide = preset("demo"), preset("paper"), preset("paper-m15")
    for c in (demo, paper, wide):
        validate(c)
    assert paper.source == "real" and protocol_label(paper) == "published protocol" and not deviations(wide)
    assert wide.latent_dim == 15 and wide.betas[-1] == 256 and wide.lambdas[-1] == 32
    assert (
        demo.source == "procedural" and len(demo.seeds) >= 3 and demo.betas == (1.0, 4.0, 16.0, 64.0, 256.0)
    )
    assert demo.lambdas[0] == 0 and sum(v > 0 for v in demo.lambdas) >= 2
    assert protocol_label(demo).startswith("reduced configuration: 32x32 images")


def test_conv_vae_on_32x32_images_and_pooling():
    import equinox as eqx

    model = make_model("conv", (32, 32, 3), 10, key=jax.random.key(0))
    shapes = jax.eval_shape(
        lambda m, x: (m.encode(x), m.decode(m.encode(x)[0])), model, jnp.zeros((32, 32, 3), jnp.float32)
    )
    assert shapes[0][0].shape == shapes[0][1].shape == (10,) and shapes[1].shape == (32, 32, 3)
    with pytest.raises(ValueError, match="64 x 64 or 32 x 32"):
        make_model("conv", (48, 48, 1), 10, key=jax.random.key(0))
    base = load("dsprites", source="procedural")
    pooled = Pooled(base)
    f = jnp.asarray([[2, 5, 10, 31, 0]], jnp.int32)
    images = eqx.filter_jit(lambda d, f: d.images(f))
    full = np.asarray(images(base, f), np.float64)[0, :, :, 0]
    small = np.asarray(images(pooled, f))[0, :, :, 0]
    assert small.shape == (32, 32) and np.abs(small - full.reshape(32, 2, 32, 2).mean((1, 3))).max() <= 0.5
    assert fingerprint(pooled) != fingerprint(base) and "mean-pooled" in str(pooled.provenance)
