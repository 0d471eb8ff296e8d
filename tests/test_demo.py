"""The end-to-end demo, shortened to two epochs: every phase runs and the report tells the truth."""

from __future__ import annotations

import json

import pytest

from arinext.apps.demo import bundled_sample
from arinext.cli import main


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    code = main(["demo", "--out", str(out), "--epochs", "2", "--bench-runs", "2", "--workers", "0", "-q"])
    return out, code


def test_demo_runs_every_phase_and_writes_the_report(demo_run, capsys):
    out, code = demo_run
    results = json.loads((out / "results.json").read_text())
    n = results["test_clips"]
    # exit 0 iff fused, fully folded and ONNX predictions equal the training form's and int8 passes its check
    # (after 2 epochs the logits are close together and int8 may flip enough of them to be refused)
    int8 = results["export"]["int8_check"]
    assert code == (0 if int8["passed"] else 1)
    assert n == 130 and results["words"][:2] == ["down", "go"] and len(results["words"]) == 10
    for row in results["fusion"].values():
        assert row["same_predictions"] == n and row["max_abs_logit_diff"] < 1e-4
    assert results["export"]["onnx_same_predictions"] == n
    assert results["export"]["onnx_check_max_abs_diff"] < 1e-4
    assert set(results["latency"]) >= {"ARIN training form", "ARIN fused (full fold)", "slowfast_audio_r50 (eager)"}
    top3 = results["classify"]["top3"]
    assert len(top3) == 3 and top3[0]["score"] >= top3[1]["score"] and top3[0]["label"] in results["words"]
    report = (out / "report.md").read_text()
    for png in ("train/curves.png", "eval/confusion.png", "latency.png"):
        assert f"]({png})" in report and (out / png).is_file()
    assert f"{results['fusion']['training form']['accuracy']:.1%}" in report
    assert (out / "model.onnx").is_file() and (out / "model.int8.onnx").is_file() == int8["passed"]
    assert int8["clips"] == n and int8["portable"] and int8["fp32_accuracy"] == results["export"]["onnx_accuracy"]
    assert f"top-1 agreement with ONNX fp32 {int8['agreement']:.1%}" in report
    assert ("passed" if int8["passed"] else "**refused**") in report
    budget = results["train"]["budget"]  # the default budget: at most --epochs, set after the first epoch
    assert budget["minutes"] == 4.5 and budget["max_epochs"] == 2 and results["train"]["epochs"] == 2
    assert budget["first_epoch_seconds"] > 0 and budget["total_seconds"] > budget["first_epoch_seconds"]
    assert f"Time budget 4.5 min (`--minutes`): the first epoch took {budget['first_epoch_seconds']:.1f} s" in report


def test_bundled_sample_is_found():
    root = bundled_sample()
    assert (root / "testing_list.txt").is_file() and (root / "_background_noise_").is_dir()


def test_demo_with_a_held_out_source_reports_both_accuracies(tmp_path, capsys):
    out = tmp_path / "demo"
    args = ["demo", "--out", str(out), "--epochs", "1", "--minutes", "0", "--bench-runs", "1", "--workers", "0",
            "--holdout", "engine=flite"]  # fmt: skip
    code = main([*args, "-q"])
    results = json.loads((out / "results.json").read_text())
    assert code == (0 if results["export"]["int8_check"]["passed"] else 1)  # after 1 epoch int8 may be refused
    assert results["train"]["epochs"] == 1 and results["train"]["budget"]["minutes"] is None
    held = results["holdout"]
    assert held["source"] == "engine=flite" and held["heldout_clips"] == 40  # 4 flite voices x 10 words
    assert held["split"]["closure_leaks"] == {"speaker=cmu-kal": 10, "speaker=cmu-slt": 10}
    assert results["test_clips"] == results["test"]["clips"] == 110, "the in-source test: 130 minus the closure"
    assert set(results["test"]["by_engine"]) == {"espeak-ng"}, "the bundle's festival test speaker is kal or slt"
    report = (out / "report.md").read_text()
    assert f"| held-out source engine=flite (never trained on) | 40 | {held['heldout_top1']:.1%} |" in report
    assert "held-out engine=flite" in capsys.readouterr().out
    assert main(["demo", "--out", str(tmp_path / "x"), "--holdout", "flite"]) == 2
    for bad in (["--minutes", "-1"], ["--augment", "{speed: true, echo: 1}"]):  # refused by the parser
        with pytest.raises(SystemExit) as exc:
            main(["demo", "--out", str(tmp_path / "x"), *bad])
        assert exc.value.code == 2
    assert "got '-1'" in capsys.readouterr().err


def test_budget_epochs_fit_the_minutes():
    from arinext.apps.demo import AFTER_TRAINING_EPOCHS, MIN_BUDGET_EPOCHS, budget_epochs

    # 4 min, 20 s gone, 2 s per epoch: (240 - 20 - 5 * 2) / 2.2 = 95.5 -> 1 + 95 epochs
    assert AFTER_TRAINING_EPOCHS == 5.0
    assert budget_epochs(4.0, 20.0, 2.0, 120) == 96
    assert budget_epochs(4.0, 20.0, 1.0, 120) == 120  # a fast machine: capped at the most epochs
    assert budget_epochs(4.0, 20.0, 2.0, 60) == 60
    # a machine twice as slow trains about half the epochs in the same minutes
    assert budget_epochs(4.0, 40.0, 4.0, 120) == 1 + int((240 - 40 - 20) // 4.4)
    assert budget_epochs(1.0, 50.0, 5.0, 120) == MIN_BUDGET_EPOCHS  # never fewer, with a warning
    assert budget_epochs(1.0, 50.0, 5.0, 3) == 3
