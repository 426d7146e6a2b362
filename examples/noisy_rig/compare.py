"""The figures of docs/noisy-data.md: how close the exported model is to the noise-free trend, beside what an
engineer would do by hand (a quadratic fit in the logs) and a Gaussian process (scikit-learn, if installed:
`pip install ".[compare]"`), all fitted to the same 240 training rows. Run after the export in rig.toml's header:

    python examples/noisy_rig/compare.py [examples/noisy_rig/exported/noisy_rig.onnx]
"""

import sys
import time
from pathlib import Path

import numpy as np

from pipeline.build import data, spec as spec_mod
from pipeline.loader import load

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
from make_data import HIGH, LOW, trend  # noqa: E402


def quadratic(Z: np.ndarray) -> np.ndarray:
    """1, the logs, their squares and products: a second-order response surface in the logs."""
    d = Z.shape[1]
    pairs = [Z[:, [i]] * Z[:, [j]] for i in range(d) for j in range(i + 1, d)]
    return np.concatenate([np.ones((len(Z), 1)), Z, Z**2, *pairs], axis=1)


def gaussian_process(L: np.ndarray, t: np.ndarray, L_test: np.ndarray):
    """sklearn's GP with an anisotropic RBF and a white-noise kernel on the logs, or None without sklearn."""
    try:
        from sklearn.gaussian_process import GaussianProcessRegressor
        from sklearn.gaussian_process.kernels import RBF, ConstantKernel, WhiteKernel
    except ImportError:
        return None
    kernel = ConstantKernel() * RBF(np.ones(L.shape[1]), (1e-2, 1e3)) + WhiteKernel(1e-3, (1e-6, 1.0))
    gp = GaussianProcessRegressor(kernel, normalize_y=True, n_restarts_optimizer=3, random_state=0).fit(L, t)
    return np.exp(gp.predict(L_test))


def main(onnx_path: Path) -> None:
    spec = spec_mod.load(str(HERE / "rig.toml"))
    rows = data.build(spec, verification=False)  # the pipeline's own split: the rows it trained on
    X_test = np.exp(LOW + (HIGH - LOW) * np.random.default_rng(1).uniform(size=(5000, 3)))
    truth = trend(X_test)
    model = load(onnx_path)
    L, L_test, t = np.log(rows.x_train), np.log(X_test), np.log(rows.y_train[:, 0])
    start = time.perf_counter()
    gp = gaussian_process(L, t, L_test)
    fits = {
        "exported model (this pipeline)": model(X_test)[:, 0],
        "quadratic in the logs": np.exp(quadratic(L_test) @ np.linalg.lstsq(quadratic(L), t, rcond=None)[0]),
    }
    if gp is not None:
        fits[f"Gaussian process, RBF + white noise ({time.perf_counter() - start:.1f} s)"] = gp
    print(f"against the noise-free trend on 5,000 points ({len(rows.x_train)} training rows):")
    print("| fit | rms | max |\n|---|---:|---:|")
    for name, prediction in fits.items():
        r = prediction / truth - 1
        print(f"| {name} | {100 * np.sqrt(np.mean(r**2)):.2f} % | {100 * np.abs(r).max():.2f} % |")
    e = model.card.noise["estimates"]["Nu"]
    print(
        f"the card's estimates: scatter {100 * e['scatter']:.2f} % (true 4 %), held-out rms "
        f"{100 * e['holdout_rms']:.2f} %, error against the trend {100 * e['trend_error_rms']:.2f} % rms, "
        f"largest σ {100 * e['trend_sigma_max']:.2f} %"
    )


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE / "exported" / "noisy_rig.onnx")
