"""The command line: exit statuses, tables and one-line errors."""

import json

import pytest

from pipeline.cli import EXIT_BAD_INPUT, EXIT_GATES_FAILED


def test_list_shows_the_shipped_surrogates(cli):
    status, out, _ = cli("list")
    assert status == 0 and "paraboloid" in out and "x [1] 0..1" in out


def test_unknown_surrogate(cli):
    status, out, err = cli("train", "no_such_model")
    assert status == EXIT_BAD_INPUT
    assert err.startswith("error: unknown surrogate 'no_such_model'") and err.count("\n") == 1


def test_bad_spec_is_one_line_and_writes_nothing(cli, write_spec, tmp_path):
    path = write_spec()
    text = open(path).read().replace("min = 0.0\nmax = 1.0", "min = 2.0\nmax = 1.0", 1)
    open(path, "w").write(text)
    status, _, err = cli("train", path)
    assert status == EXIT_BAD_INPUT and "min (2.0) must be < max (1.0)" in err and err.count("\n") == 1
    assert not (tmp_path / "runs").exists()


@pytest.mark.slow
def test_verify_passes_then_fails_with_a_table(cli, write_spec, tmp_path):
    good = write_spec(name="good", rmse=1e-3, max_abs=1e-2)
    assert cli("train", good)[0] == 0
    status, out, _ = cli("verify", good)
    assert status == 0 and "all gates pass" in out and "grid" in out and "holdout" in out
    report = json.loads((tmp_path / "runs" / "good" / "gates.json").read_text())
    assert report["passed"] and len(report["rows"]) == 4

    bad = write_spec(name="bad", rmse=1e-9, max_abs=1e-9, steps=3)
    status, out, _ = cli("train", bad)  # the budget ends short of the gates: the table and a next step, exit 1
    assert status == EXIT_GATES_FAILED and "2 of 2 gates FAIL" in out and "next step: " in out
    assert (tmp_path / "runs" / "bad" / "checkpoint.pt").is_file()  # kept, for verify and a look
    status, out, _ = cli("verify", bad)
    assert status == EXIT_GATES_FAILED
    assert "4 of 4 gates FAIL" in out and "FAIL" in out and "worst at" in out and "x=" in out
    assert "next step: " in out and "[training] max_steps" in out  # still improving when 3 steps ran out


def test_verify_without_checkpoint(cli, write_spec):
    status, _, err = cli("verify", write_spec(name="untrained"))
    assert status == EXIT_BAD_INPUT and "no checkpoint" in err and "pipeline train" in err


@pytest.mark.slow
def test_changed_spec_needs_retraining(cli, write_spec):
    path = write_spec(name="changed", steps=200)
    assert cli("train", path)[0] == 0
    write_spec(name="changed", steps=201)
    status, _, err = cli("verify", path)
    assert status == EXIT_BAD_INPUT and "different spec" in err
