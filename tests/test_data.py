import numpy as np
import pytest

from pipeline.build import data, spec
from pipeline.errors import PipelineError
from tests.conftest import PARABOLOID

LOG_SPEC = PARABOLOID.replace("min = 0.0\nmax = 1.0", 'min = 1e2\nmax = 1e6\nscale = "log"', 1)


def test_samples_stay_in_range_and_are_seeded(write_spec):
    s = spec.load(write_spec())
    a, b = data.sample(s, 100, "sobol", 3), data.sample(s, 100, "sobol", 3)
    assert np.array_equal(a, b) and a.shape == (100, 2)
    assert not np.array_equal(a, data.sample(s, 100, "sobol", 4))
    assert a.min() >= 0 and a.max() <= 1


def test_log_axis_is_sampled_per_decade(write_spec):
    s = spec.load(write_spec(LOG_SPEC.format(name="logx", steps=1, rmse=1, max_abs=1)))
    x = data.sample(s, 4000, "uniform", 0)[:, 0]
    assert x.min() >= 1e2 and x.max() <= 1e6
    per_decade = np.histogram(np.log10(x), bins=4, range=(2, 6))[0]
    assert per_decade.min() > 800  # ~1000 per decade; a linear draw would put 90% in the last decade


def test_grid_spans_edges_and_corners(write_spec):
    s = spec.load(write_spec())
    g = data.grid(s)
    assert g.shape == (51 * 51, 2)
    for corner in ([0, 0], [0, 1], [1, 0], [1, 1]):
        assert (np.abs(g - corner).sum(axis=1) == 0).any()


def test_dataset_includes_corners_and_reference_values(write_spec):
    s = spec.load(write_spec())
    d = data.build(s)
    assert len(d.x_train) == 500 + 4
    assert np.allclose(d.y_train[:, 0], (d.x_train**2).sum(axis=1))
    assert set(d.sets()) == {"holdout", "grid"}


def bad_reference(X):
    y = X[:, 0] + X[:, 1]
    y[3] = np.nan
    return y


def test_non_finite_reference_is_refused(write_spec):
    text = PARABOLOID.replace("pipeline.references:paraboloid", "tests.test_data:bad_reference")
    s = spec.load(write_spec(text.format(name="nan", steps=1, rmse=1, max_abs=1)))
    with pytest.raises(PipelineError, match="failed on 1 of 10 inputs \\(first at x=.*returned z=nan.*on_error"):
        data.evaluate(s, data.sample(s, 10, "uniform", 0))


def test_missing_callable_is_named(write_spec):
    text = PARABOLOID.replace("pipeline.references:paraboloid", "pipeline.references:nothing")
    s = spec.load(write_spec(text.format(name="missing", steps=1, rmse=1, max_abs=1)))
    with pytest.raises(PipelineError, match="has no function 'nothing'"):
        data.evaluate(s, np.zeros((2, 2)))


CSV_SPEC = """
name = "table"
[reference]
data = "table.csv"
bad_rows = "{policy}"
[[inputs]]
name = "a"
unit = "1"
min = 0.0
max = 1.0
[[outputs]]
name = "b"
unit = "1"
[gates]
max_abs = 0.1
"""


def write_csv(tmp_path, rows, policy="error", header="a,b"):
    (tmp_path / "table.csv").write_text("\n".join([header, *rows]) + "\n")
    (tmp_path / "table.toml").write_text(CSV_SPEC.format(policy=policy))
    return spec.load(str(tmp_path / "table.toml"))


def good_rows(n=40):
    return [f"{x:.4f},{2 * x:.4f}" for x in np.linspace(0, 1, n)]


def test_csv_split_is_seeded_and_complete(tmp_path):
    d = data.build(write_csv(tmp_path, good_rows(50)))
    assert len(d.x_train) + len(d.x_holdout) == 50 and len(d.x_holdout) == 10
    assert d.x_grid is None and set(d.sets()) == {"holdout"}
    assert np.allclose(d.y_train, 2 * d.x_train, atol=1e-4)


def test_csv_missing_column(tmp_path):
    with pytest.raises(PipelineError, match="lacks column\\(s\\) b \\(has: a, c\\)"):
        data.build(write_csv(tmp_path, good_rows(), header="a,c"))


@pytest.mark.parametrize(
    "bad_row, why",
    [
        ("0.5,", "a missing or non-finite value"),
        ("0.5,nan", "a missing or non-finite value"),
        ("x,1", "a missing or non-finite value"),
        ("1.5,3.0", "an input outside its declared range"),
    ],
)
def test_csv_bad_rows_error_names_the_line(tmp_path, bad_row, why):
    rows = good_rows()
    rows.insert(5, bad_row)
    with pytest.raises(PipelineError, match=f"1 bad row\\(s\\); line 7 has {why}"):
        data.build(write_csv(tmp_path, rows))


def test_csv_bad_rows_dropped_and_counted(tmp_path):
    rows = good_rows() + ["0.5,", "2.0,1.0", "inf,1"]
    d = data.build(write_csv(tmp_path, rows, policy="drop"))
    assert d.dropped_rows == 3 and len(d.x_train) + len(d.x_holdout) == 40


def test_csv_too_few_rows(tmp_path):
    with pytest.raises(PipelineError, match="has 5 usable rows; at least 20 are needed"):
        data.build(write_csv(tmp_path, good_rows(5)))


def test_csv_file_missing(tmp_path):
    s = write_csv(tmp_path, good_rows())
    (tmp_path / "table.csv").unlink()
    with pytest.raises(PipelineError, match="cannot read"):
        data.build(s)


def test_csv_with_a_byte_order_mark(tmp_path):
    """Excel's "CSV UTF-8" starts with a BOM: it was read as part of the first column's name."""
    s = write_csv(tmp_path, good_rows())
    path = tmp_path / "table.csv"
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    d = data.build(s)
    assert len(d.x_train) + len(d.x_holdout) == 40


def test_csv_duplicated_column_is_refused(tmp_path):
    with pytest.raises(PipelineError, match="has column 'b' more than once \\(columns 2, 3\\)"):
        data.build(write_csv(tmp_path, [r + ",0" for r in good_rows()], header="a,b,b"))


@pytest.mark.parametrize(
    "content, message",
    [
        ("a,b\n0.5,1.0\nµ,1\n".encode("latin-1"), "is not UTF-8 \\(byte 0xb5 on line 3; Latin-1"),
        ("a,b\n0.5,1.0\n".encode("utf-16"), "is UTF-16; save it as UTF-8"),
        (bytes(range(256)) * 4, "has NUL bytes: a binary file"),
    ],
)
def test_csv_in_another_encoding_is_one_line(tmp_path, content, message):
    s = write_csv(tmp_path, good_rows())
    (tmp_path / "table.csv").write_bytes(content)
    with pytest.raises(PipelineError, match=message) as e:
        data.build(s)
    assert "\n" not in str(e.value)


def test_csv_overflowing_values_are_bad_rows(tmp_path):
    """An output of 1e308 trained to a NaN loss: its square overflows (and float32 cannot hold it)."""
    rows = good_rows()
    rows.insert(3, "0.5,1e308")
    with pytest.raises(PipelineError, match="line 5 has a value beyond float32's range"):
        data.build(write_csv(tmp_path, rows))
    d = data.build(write_csv(tmp_path, rows + ["0.25,-4e38", "0.25,3e38"], policy="drop"))
    assert d.dropped_rows == 2 and np.abs(d.y_train).max() < 1e39
