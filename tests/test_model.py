import numpy as np
import pytest
import torch

from pipeline.build import data, spec
from pipeline.build.model import Surrogate, flops_per_sample, parameter_count
from pipeline.build.train import mse
from tests.conftest import PARABOLOID


def test_scaling_maps_the_domain_to_unit_box_and_back(write_spec):
    text = PARABOLOID.replace("min = 0.0\nmax = 1.0", 'min = 10.0\nmax = 1000.0\nscale = "log"', 1)
    s = spec.load(write_spec(text.format(name="s", steps=1, rmse=1, max_abs=1)))
    X = data.grid(s)
    Y = np.exp(X[:, :1] / 1000)  # any positive outputs
    m = Surrogate(s, Y)
    u = m.features(torch.as_tensor(X))
    assert torch.allclose(u.min(0).values, torch.tensor([-1.0, -1.0], dtype=torch.float64))
    assert torch.allclose(u.max(0).values, torch.tensor([1.0, 1.0], dtype=torch.float64))
    z = m.targets(torch.as_tensor(Y))
    assert torch.allclose(m.physical(z), torch.as_tensor(Y))


def test_export_model_computes_the_same_function(write_spec):
    text = PARABOLOID.replace("min = 0.0\nmax = 1.0", 'min = 10.0\nmax = 1000.0\nscale = "log"', 1)
    text = text.replace('unit = "1"\n\n[sampling]', 'unit = "1"\ntransform = "log"\n\n[sampling]')
    s = spec.load(write_spec(text.format(name="s", steps=1, rmse=1, max_abs=1)))
    X = data.sample(s, 500, "uniform", 0)
    torch.manual_seed(0)
    m = Surrogate(s, 1 + X[:, 1:] ** 2)
    with torch.no_grad():
        ref = m(torch.as_tensor(X)).numpy()
        got = m.export_model()(torch.as_tensor(X, dtype=torch.float32)).numpy()
    assert m.export_model().in_mode == "mixed" and m.export_model().out_mode == "all"
    assert np.allclose(got, ref, rtol=1e-5)


def test_mse_refuses_to_broadcast():
    with pytest.raises(ValueError, match="refusing to broadcast"):
        mse(torch.zeros(5, 1), torch.zeros(5))
    assert float(mse(torch.ones(5, 1), torch.zeros(5, 1))) == 1.0


def test_counts():
    assert parameter_count([16, 16], 2, 1) == 2 * 16 + 16 + 16 * 16 + 16 + 16 + 1 == 337
    assert flops_per_sample([16, 16], 2, 1) == 2 * (32 + 256 + 16)
