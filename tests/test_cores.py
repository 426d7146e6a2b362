"""The core policy (pipeline/build/cores.py): surrogates in parallel processes give the bytes of a serial run."""

import re

import pytest
import torch

from pipeline.build import cores


def test_jobs_follow_the_cores_and_the_cap(monkeypatch):
    monkeypatch.delenv(cores.ENV, raising=False)
    assert cores.jobs(0, 100) == cores.available() >= 1
    assert cores.jobs(3, 2) == 2 and cores.jobs(None, 1) == 1
    monkeypatch.setenv(cores.ENV, "1")
    assert cores.available() == 1 and cores.jobs(0, 5) == 1


@pytest.mark.slow
def test_parallel_training_gives_the_serial_weights(cli, write_spec, tmp_path, capsys):
    """Two surrogates in two processes, then one after the other: the same weights, bit for bit; the output of
    each surrogate comes whole; a bad name among them is its one line and exit status 2, the others still run."""
    from pipeline.cli import main

    a, b = write_spec(name="tiny_a", steps=40), write_spec(name="tiny_b", steps=60)
    assert main(["train", "--quiet", "--jobs", "2", "--runs", str(tmp_path / "par"), a, b]) == 0
    out = capsys.readouterr().out
    assert "tiny_b, tiny_a in 2 processes" in out and len(re.findall(r"tiny_a: \d+ steps", out)) == 1
    assert main(["train", "--quiet", "--jobs", "1", "--runs", str(tmp_path / "ser"), a, b]) == 0
    for name in ("tiny_a", "tiny_b"):
        par = torch.load(tmp_path / "par" / name / "checkpoint.pt", weights_only=False)
        ser = torch.load(tmp_path / "ser" / name / "checkpoint.pt", weights_only=False)
        state_par, state_ser = par["state_dict"], ser["state_dict"]
        assert state_par.keys() == state_ser.keys()
        assert all(torch.equal(state_par[k], state_ser[k]) for k in state_par)
    capsys.readouterr()
    status = main(["train", "--quiet", "--jobs", "2", "--runs", str(tmp_path / "bad"), a, "no_such_surrogate"])
    out = capsys.readouterr().out
    assert (
        status == 2 and "error: unknown surrogate 'no_such_surrogate'" in out and re.search(r"tiny_a: \d+ steps", out)
    )
