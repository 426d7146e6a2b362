"""Measured data with scatter (noisy.py, bayes.py): the scatter is estimated, gates the data cannot support fail
naming it, the card holds the estimates, the ±σ band covers the trend about as often as it should, and exact
references are left as they were."""

import json
from pathlib import Path

import numpy as np
import pytest

from pipeline.build import data, noisy, spec as spec_mod, train

ROOT = Path(__file__).resolve().parents[1]
SCATTER = 0.04


def trend(X: np.ndarray) -> np.ndarray:
    """A power law that bends: what a correlation of rig data looks like."""
    return 0.02 * X[:, 0] ** 0.8 * (1 + 0.3 * np.tanh(np.log(X[:, 0] / 1e4))) * X[:, 1] ** 0.4


def write_rig(folder: Path, gates: str, rows: int = 300, seed: int = 0, noise: str = "") -> str:
    """A CSV of rows about the trend with SCATTER (log-normal), and a spec with only names, ranges and gates."""
    rng = np.random.default_rng(seed)
    X = np.exp(np.log([1e3, 0.7]) + np.log([100.0, 100.0]) * rng.uniform(size=(rows, 2)))
    y = trend(X) * np.exp(rng.normal(0.0, SCATTER, rows))
    np.savetxt(folder / "rig.csv", np.c_[X, y], delimiter=",", header="Re,Pr,Nu", comments="", fmt="%.6g")
    inputs = "".join(
        f'[[inputs]]\nname = "{n}"\nunit = "1"\nmin = {lo}\nmax = {hi}\nscale = "log"\n\n'
        for n, lo, hi in (("Re", 1e3, 1e5), ("Pr", 0.7, 70.0))
    )
    text = (
        f'spec_version = 1\nname = "rig"\n\n[reference]\ndata = "rig.csv"\n\n{inputs}'
        f'[[outputs]]\nname = "Nu"\nunit = "1"\ntransform = "log"\n\n{noise}\n[gates]\n{gates}\n'
    )
    (folder / "rig.toml").write_text(text)
    return str(folder / "rig.toml")


FAST = "[noise]\nrestarts = 2\nfolds = 0\n"


def fitted(tmp_path: Path, seed: int = 0):
    spec = spec_mod.load(write_rig(tmp_path, "max_rel = 0.2", seed=seed, noise=FAST))
    dataset = data.build(spec, verification=False)
    return spec, dataset, train.train(spec, dataset, progress=False)


def test_scatter_estimate_is_close_to_the_true_scatter(tmp_path):
    spec, _, result = fitted(tmp_path)
    e = result.noise["estimates"]["Nu"]
    assert spec.noisy and e["units"] == "relative" and e["rows"] == 240
    assert abs(e["scatter"] / SCATTER - 1) < 0.15, e
    assert e["effective_parameters"] < 30  # far fewer than the rows: the fit follows the trend, not the scatter
    assert e["train_rms"] > 0.8 * SCATTER  # the training rows are not interpolated


def test_band_covers_the_trend_about_as_often_as_sigma_should(tmp_path):
    spec, _, result = fitted(tmp_path, seed=1)
    folder = tmp_path / "runs"
    from pipeline.build import checkpoint

    checkpoint.save(folder / spec.name, spec, result.model, result.history, train.summary(spec, _, result))
    noisy.save_members(folder / spec.name, result.noise["members"])
    X = data.sample(spec, 2000, "sobol", seed=5)
    b = noisy.band(spec, X, runs=folder)
    error = np.log(b.mean[:, 0] / trend(X))
    inside = np.mean(np.abs(error) <= b.sigma[:, 0])
    assert 0.5 < inside < 0.97, inside  # about 68 % for a calibrated ±σ band
    assert np.all(b.lower[:, 0] < b.mean[:, 0]) and np.all(b.mean[:, 0] < b.upper[:, 0])


@pytest.mark.slow  # gate and export through the command line (about 20 s)
def test_card_holds_the_estimates_and_the_runtime_reads_them(cli, tmp_path):
    path = write_rig(tmp_path, "max_rel = 0.16\nrms_scatter = 1.4")
    status, out, _ = cli("gate", path)
    assert status == 0, out
    assert "estimated scatter" in out and "against the underlying trend" in out
    assert cli("export", path)[0] == 0
    card = json.loads((tmp_path / "exported" / "rig.json").read_text())
    e = card["noise"]["estimates"]["Nu"]
    for key in ("scatter", "holdout_rms", "trend_error_rms", "trend_sigma_max", "cv_rms", "effective_parameters"):
        assert key in e
    assert abs(e["scatter"] / SCATTER - 1) < 0.2
    assert card["achieved"]["holdout"]["Nu"]["rms_scatter"] <= 1.4
    from pipeline.loader import load

    model = load(tmp_path / "exported" / "rig.onnx")  # the torch-free runtime
    assert model.card.noise["estimates"]["Nu"]["scatter"] == e["scatter"]
    assert (tmp_path / "exported" / "rig_report" / "band.png").is_file()


def test_a_gate_tighter_than_the_scatter_fails_naming_it(cli, tmp_path):
    path = write_rig(tmp_path, "max_rel = 0.02", noise=FAST)
    status, out, _ = cli("gate", path)
    assert status == 1, out
    assert "tighter than the data support" in out
    scatter = float(out.split("their estimated scatter is ")[1].split()[0])
    assert abs(scatter / 100 / SCATTER - 1) < 0.15, out


def test_exact_references_keep_their_path_and_digests():
    for name in spec_mod.available():
        s = spec_mod.load(name)
        assert not s.noisy
        d = s.to_dict()
        assert "noise" not in d and "noisy" not in d["reference"]
        card = json.loads((ROOT / "exported" / f"{name}.json").read_text())
        assert card["spec_sha256"] == spec_mod.sha256(s), name  # the committed models still match their specs
        assert "noise" not in card


def test_spec_checks_for_noisy_references(tmp_path):
    path = write_rig(tmp_path, "max_rel = 0.2")
    s = spec_mod.load(path)
    assert s.model.widths == [5 * 6 + 2]  # members x the widest candidate, plus one unit per input
    raw = Path(path).read_text()
    for extra, message in (
        ('[model]\nactivation = "relu"\n', "tanh"),
        ("[model]\nwidths = [8, 8]\n", "one hidden layer"),
        ("[noise]\nmembers = 50\n", "exceeds"),
    ):
        Path(path).write_text(raw.replace("[gates]", extra + "\n[gates]"))
        with pytest.raises(spec_mod.SpecError, match=message):
            spec_mod.load(path)
    exact = (
        (ROOT / "pipeline" / "specs" / "paraboloid.toml").read_text().replace("[gates]", "[gates]\nrms_scatter = 1.2")
    )
    (tmp_path / "p.toml").write_text(exact)
    with pytest.raises(spec_mod.SpecError, match="noisy reference"):
        spec_mod.load(str(tmp_path / "p.toml"))


def test_advice_follows_from_the_numbers(tmp_path):
    from pipeline.build.verify import noisy_next_step

    spec = spec_mod.load(write_rig(tmp_path, "max_rel = 0.2"))
    e = {"scatter": 0.04, "units": "relative", "rows": 240}
    overfit = {"estimates": {"Nu": e | {"train_rms": 0.02, "holdout_rms": 0.05}}, "floors": {"Nu": {"max_rel": 0.1}}}
    assert "over-fitting" in noisy_next_step(spec, overfit) and "wider" in noisy_next_step(spec, overfit)
    short = {"estimates": {"Nu": e | {"train_rms": 0.09, "holdout_rms": 0.1}}, "floors": {"Nu": {"max_rel": 0.1}}}
    assert "too little capacity" in noisy_next_step(spec, short)
    tight = {"estimates": {"Nu": e | {"train_rms": 0.04, "holdout_rms": 0.04}}, "floors": {"Nu": {"max_rel": 0.25}}}
    assert "estimated scatter is 4 %" in noisy_next_step(spec, tight)


SCATTERED = """
import numpy as np


def scattered(X):
    # the trend of test_noisy.py times a deterministic 3 % pseudo-noise of the inputs
    t = 0.02 * X[:, 0] ** 0.8 * (1 + 0.3 * np.tanh(np.log(X[:, 0] / 1e4))) * X[:, 1] ** 0.4
    return t * np.exp(0.03 * np.sqrt(2) * np.sin(1e5 * X[:, 0] * X[:, 1]))
"""


def test_a_callable_declared_noisy_is_fitted_as_data(tmp_path):
    path = write_rig(tmp_path, "max_rel = 0.2", noise=FAST)
    (tmp_path / "rigref.py").write_text(SCATTERED)  # a module beside the spec is found
    text = Path(path).read_text().replace('data = "rig.csv"', 'callable = "rigref:scattered"\nnoisy = true')
    Path(path).write_text(text.replace("[gates]", "[sampling]\ncount = 400\nholdout = 400\n\n[gates]"))
    spec = spec_mod.load(path)
    assert spec.noisy and spec.sampling.grid == 0  # gated on the held-out points only
    dataset = data.build(spec)
    assert dataset.x_grid is None and dataset.x_domain is None
    e = train.train(spec, dataset, progress=False).noise["estimates"]["Nu"]
    assert abs(e["scatter"] / 0.03 - 1) < 0.2, e


def test_the_committed_rig_example_is_its_spec_and_its_model():
    """examples/noisy_rig/exported/ is what its spec and data give today: the card's spec digest and model checksum
    (a change to what the digest holds means exporting the example again)."""
    import hashlib

    folder = ROOT / "examples" / "noisy_rig"
    card = json.loads((folder / "exported" / "noisy_rig.json").read_text())
    assert card["spec_sha256"] == spec_mod.sha256(spec_mod.load(str(folder / "rig.toml")))
    assert card["onnx_sha256"] == hashlib.sha256((folder / "exported" / "noisy_rig.onnx").read_bytes()).hexdigest()
