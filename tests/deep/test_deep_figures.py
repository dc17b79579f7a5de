"""The deep-experiment entry point on the smoke preset: trains, evaluates, draws; resumable; bad input."""

import json

import pytest

from linvae.figures.deep import PANELS, main, pareto_front

ARGS = ["--dataset", "dsprites", "--preset", "smoke", "--steps", "8", "--lambda-steps", "4",
        "--betas", "1 8", "--lambdas", "0 4", "--seeds", "0", "--no-progress"]  # fmt: skip


#: The smoke preset with a smaller evaluation (200 + 100 images, two batches of 100 instead of 1,000 + 500
#: in batches of 250): ~20 s less of conv encoding and metric fitting, the same code path.
SMALL_EVAL = {"eval_train": 200, "eval_test": 100, "eval_batch": 100}


def test_smoke_preset_with_a_small_evaluation_draws_every_figure(tmp_path, monkeypatch):
    import dataclasses

    from linvae.deep.config import PRESETS

    monkeypatch.setitem(PRESETS, "smoke", dataclasses.replace(PRESETS["smoke"], **SMALL_EVAL))
    _smoke_preset_draws_every_figure(tmp_path)


@pytest.mark.slow
def test_smoke_preset_draws_every_figure(tmp_path):
    _smoke_preset_draws_every_figure(tmp_path)


def _smoke_preset_draws_every_figure(tmp_path):
    runs, out = tmp_path / "runs", tmp_path / "figs"
    assert main([*ARGS, "--runs", str(runs), "--out", str(out)]) == 0
    for panel in PANELS:
        assert (out / f"deep_dsprites_smoke_{panel}.pdf").stat().st_size > 0
    side = json.loads((out / "deep_dsprites_smoke.json").read_text())
    assert side["trained"] == {"beta": 2, "lambda": 4}
    assert side["provenance"]["kind"] == "procedural stand-in"
    assert side["summary"]["models"] == 6 and side["summary"]["finite_metrics"]
    assert side["config"]["beta_steps"] == 8
    record = json.loads((runs / "lambda" / "b8_l4_s0" / "eval.json").read_text())
    assert set(record["metrics"]) >= {"mig", "sap", "i_m", "mi"}
    assert record["provenance"]["kind"] == "procedural stand-in" and "commit" in record["revision"]
    assert record["config"]["lambda_steps"] == 4
    # A second call finds every model trained and the figures up to date: it trains and draws nothing.
    before = (out / "deep_dsprites_smoke.json").stat().st_mtime_ns
    assert main([*ARGS, "--runs", str(runs), "--out", str(out)]) == 0
    assert (out / "deep_dsprites_smoke.json").stat().st_mtime_ns == before
    # --aggregate draws them again, training nothing.
    assert main([*ARGS, "--runs", str(runs), "--out", str(out), "--aggregate"]) == 0
    assert json.loads((out / "deep_dsprites_smoke.json").read_text())["trained"] == {"beta": 0, "lambda": 0}
    assert (out / "deep_dsprites_smoke.json").stat().st_mtime_ns > before


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--dataset", "mnist"], "unknown data set"),
        (["--dataset", "dsprites", "--preset", "huge"], "unknown preset"),
        (["--dataset", "dsprites", "--betas", "1 -2"], "beta must be >= 0"),
        (["--dataset", "dsprites", "--lambdas", "-1"], "lambda must be >= 0"),
    ],
)
def test_bad_input_fails_before_training(tmp_path, capsys, extra, message):
    assert main([*extra, "--runs", str(tmp_path / "r"), "--out", str(tmp_path / "f")]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_missing_real_file_is_reported(tmp_path, capsys):
    args = [
        "--dataset",
        "shapes3d",
        "--source",
        "real",
        "--data-dir",
        str(tmp_path),
        "--runs",
        str(tmp_path / "r"),
    ]
    assert main(args) == 2
    assert "3dshapes" in capsys.readouterr().err.lower() or "shapes3d" in capsys.readouterr().err.lower()


def test_pareto_front():
    pts = [(3.0, 0.1), (1.0, 0.2), (2.0, 0.5), (2.5, 0.4), (4.0, 0.6)]
    assert pareto_front(pts) == [1, 2, 4]


def test_controller_sweep_over_kl_targets_draws_every_figure(tmp_path, monkeypatch):
    # A linear model with a small evaluation keeps this to seconds; the conv path runs above.
    import dataclasses

    from linvae.deep.config import PRESETS

    small = dataclasses.replace(
        PRESETS["smoke"], model="linear", eval_train=200, eval_test=100, eval_batch=100
    )
    monkeypatch.setitem(PRESETS, "smoke", small)
    runs, out = tmp_path / "runs", tmp_path / "figs"
    args = ["--dataset", "dsprites", "--steps", "4", "--lambda-steps", "2", "--betas", "1", "--lambdas", "0 4",
            "--seeds", "0", "--beta-schedule", "controlvae", "--kl-targets", "2 6", "--no-progress"]  # fmt: skip
    assert main([*args, "--runs", str(runs), "--out", str(out)]) == 0
    for panel in PANELS:
        assert (out / f"deep_dsprites_smoke_{panel}.pdf").stat().st_size > 0
    side = json.loads((out / "deep_dsprites_smoke.json").read_text())
    assert side["trained"] == {"beta": 2, "lambda": 4}
    assert side["data"]["axis"]["name"] == "kl_target" and side["data"]["xs"] == [2.0, 6.0]
    assert side["config"]["kl_targets"] == [2.0, 6.0] and side["config"]["beta_schedule"] == "controlvae"
    record = json.loads((runs / "C6" / "lambda" / "b1_l4_s0" / "eval.json").read_text())
    assert record["config"]["kl_targets"] == [6.0] and record["metrics"] is not None


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--beta-schedule", "controlvae", "--betas", "1", "--kl-targets", "2 -1"], "KL target must be > 0"),
        (["--kl-targets", "2"], "need beta_schedule"),
        (["--beta-schedule", "dynamicvae", "--betas", "1 4", "--kl-targets", "2"], "one beta"),
    ],
)
def test_bad_kl_targets_fail_before_training(tmp_path, capsys, extra, message):
    args = ["--dataset", "dsprites", *extra, "--runs", str(tmp_path / "r"), "--out", str(tmp_path / "f")]
    assert main(args) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "r").exists()
