"""load(path, backend="c"): the generated C through ctypes, with the loader's API, checks and policies."""

import shutil
import threading

import numpy as np
import onnx
import pytest

from pipeline.build import data, spec
from pipeline.codegen.cbackend import python_headers
from pipeline.loader import LoaderError, load
from pipeline.runtime import domain
from tests.test_codegen import (
    BOUND,
    EXPORTED,
    assert_jacobian_close,
    assert_matches,
    central_differences,
    save_model,
    with_card,
)

pytestmark = pytest.mark.skipif(
    shutil.which("cc") is None and shutil.which("gcc") is None, reason="no C compiler (apt-get install gcc)"
)


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    """A private compile cache per test."""
    folder = tmp_path / "cache"
    monkeypatch.setenv("SURROGATE_C_CACHE", str(folder))
    return folder


@pytest.mark.parametrize("name", spec.available())
def test_same_api_and_values_as_onnxruntime(name):
    s = spec.load(name)
    X = data.sample(s, 5000, "uniform", seed=11)
    c, o = load(EXPORTED / f"{name}.onnx", backend="c"), load(EXPORTED / f"{name}.onnx")
    ref = o(X.astype(np.float32)).astype(np.float64)
    assert_matches(c(X), ref, f"{name} call")
    assert c(X.astype(np.float32)).dtype == np.float32
    assert_matches(np.array([c.point(*row) for row in X[:50]]), ref[:50], f"{name} point")
    named = c.named(**{i.name: X[:, k] for k, i in enumerate(s.inputs)})
    assert_matches(np.stack([named[o_.name] for o_ in s.outputs], axis=1), ref, f"{name} named")


@pytest.mark.parametrize("name", ["colebrook", "water"])
def test_jacobian(name):
    """f.jacobian(X): (N, n_outputs, n_inputs), against central differences of the double-precision build; the
    onnxruntime backend gives the same (it computes it through the C)."""
    s = spec.load(name)
    lo, hi = np.array([i.min for i in s.inputs]), np.array([i.max for i in s.inputs])
    X = np.clip(data.sample(s, 500, "uniform", seed=4), lo * 1.0001, hi * 0.9999)
    c = load(EXPORTED / f"{name}.onnx", backend="c")
    J = c.jacobian(X)
    assert J.shape == (len(X), len(s.outputs), len(s.inputs))
    double = load(EXPORTED / f"{name}.onnx", backend="c", precision="double")
    assert_jacobian_close(J, central_differences(double, X), name)
    assert np.array_equal(load(EXPORTED / f"{name}.onnx").jacobian(X), J)


def test_policies_as_in_the_loader():
    path = EXPORTED / "colebrook.onnx"
    X = np.array([[1e5, 1e-4], [1e3, 1e-4], [1e5, np.nan]])
    for kwargs in ({}, {"nonfinite": "nan"}):
        messages = []
        for backend in ("onnxruntime", "c"):
            with pytest.raises(LoaderError) as info:
                load(path, backend=backend, **kwargs)(X)
            messages.append(str(info.value))
        assert messages[0] == messages[1]
    c = load(path, backend="c", out_of_range="clip", nonfinite="nan")
    o = load(path, out_of_range="clip", nonfinite="nan")
    Yc, Yo = c(X), o(X.astype(np.float32))
    assert np.isnan(Yc[2]).all() and np.allclose(Yc[:2], Yo[:2], rtol=2e-5)
    assert np.allclose(c.point(1e3, 1e-4), c.point(4e3, 1e-4))  # clipped onto the range
    assert np.isnan(c.jacobian(X)[2]).all() and np.isfinite(c.jacobian(X)[:2]).all()
    with pytest.warns(UserWarning, match="outside the valid range"):
        load(path, backend="c", out_of_range="warn")(X[:2])
    assert np.isfinite(load(path, backend="c", out_of_range="allow")(X[:2])).all()


def test_domain_bound_policies_follow_the_loader(tmp_path):
    """With a non-box domain the C reports the bound; the call then goes through the loader's own policy code,
    so both backends give the same result (or the same error) for a point beyond the bound."""
    path = with_card("paraboloid", tmp_path, lambda card: card.update(domain={"bounds": [BOUND]}))
    X = np.array([[0.5, 0.1], [0.1, 0.9]])  # the second row is beyond y <= 0.2 + 0.6 x^2
    assert domain.violations([BOUND], ["x", "y"], X)[:, 1].tolist() == [False, True]
    for policy in ("error", "clip", "allow"):
        results = []
        for backend in ("onnxruntime", "c"):
            try:
                results.append(load(path, backend=backend, out_of_range=policy)(X))
            except LoaderError as e:
                results.append(str(e))
        if isinstance(results[0], str):
            assert results[0] == results[1]
        else:
            assert np.allclose(results[0], results[1], rtol=1e-5, atol=1e-6)
    try:
        load(path)(X[1:])
    except LoaderError:
        clipped = domain.clip([BOUND], ["x", "y"], X[1:])
        assert np.allclose(
            load(path, backend="c", out_of_range="clip")(X[1:]),
            load(path, backend="c", out_of_range="allow")(clipped),
            rtol=1e-6,
        )
    else:
        pytest.skip("the loader does not apply domain bounds yet (its policies land with the loader's domain change)")


def test_cache_is_keyed_by_the_model(tmp_path, cache):
    """The first load compiles; the second reuses the library; a changed model gets a new library."""
    path = tmp_path / "water.onnx"
    shutil.copy(EXPORTED / "water.onnx", path)
    first = load(path, backend="c").library
    mtime = first.stat().st_mtime_ns
    assert load(path, backend="c").library == first and first.stat().st_mtime_ns == mtime
    model = onnx.load(path)
    w = onnx.numpy_helper.to_array(model.graph.initializer[0]).copy()
    w.flat[0] += 0.5
    model.graph.initializer[0].CopyFrom(onnx.numpy_helper.from_array(w, model.graph.initializer[0].name))
    save_model(model, path)
    changed = load(path, backend="c")
    assert changed.library != first
    X = np.array([[300.0, 1e6]])
    assert not np.allclose(changed(X), load(EXPORTED / "water.onnx", backend="c")(X))
    assert np.allclose(changed(X), load(path)(X), rtol=1e-5)


def test_no_compiler_is_one_line(monkeypatch):
    monkeypatch.setenv("CC", "no-such-compiler")
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(LoaderError, match="needs a C compiler and none was found") as info:
        load(EXPORTED / "paraboloid.onnx", backend="c")
    assert "\n" not in str(info.value)


def test_unknown_backend():
    with pytest.raises(LoaderError, match="backend must be"):
        load(EXPORTED / "paraboloid.onnx", backend="tensorflow")


def test_point_from_threads():
    c = load(EXPORTED / "water.onnx", backend="c")
    X = data.sample(spec.load("water"), 200, "uniform", seed=2)
    expected = np.array([c.point(*row) for row in X])  # one thread
    got = {}

    def work(k):
        got[k] = np.array([c.point(*row) for row in X])

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(np.array_equal(g, expected) for g in got.values())


def _outcome(fn, *args):
    """fn(*args) as ("ok", float64 array) or (exception type, message)."""
    try:
        out = fn(*args)
    except Exception as e:  # noqa: BLE001 - the point is to compare whatever is raised
        return type(e), str(e)
    return "ok", np.asarray(out)


@pytest.mark.parametrize("name", spec.available())
def test_point_is_the_onnxruntime_point(name):
    """point() through the extension module: the onnxruntime backend's values (within the float32 contract), its
    return type for one and for several outputs, and its errors, message for message."""
    s = spec.load(name)
    c, o = load(EXPORTED / f"{name}.onnx", backend="c"), load(EXPORTED / f"{name}.onnx")
    if python_headers()[1] is None:  # else the ctypes path, held to the same below
        assert c.point_path.startswith("C extension module"), c.point_path
    X = data.sample(s, 300, "uniform", seed=5)
    got, ref = [c.point(*row) for row in X.tolist()], [o.point(*row) for row in X.tolist()]
    assert all(type(g) is np.ndarray and g.dtype == np.float64 and g.shape == (len(s.outputs),) for g in got)
    assert type(ref[0]) is np.ndarray and ref[0].shape == got[0].shape and ref[0].dtype == got[0].dtype
    assert_matches(np.array(got), np.array(ref), f"{name} point")
    row = X[0].tolist()
    assert_matches(c.point(*np.float32(X[0])), o.point(*np.float32(X[0])), f"{name} point(float32 scalars)")
    assert np.array_equal(c.point(*[int(v) if v.is_integer() else v for v in row]), c.point(*row))
    lo, hi = s.inputs[0].min, s.inputs[0].max
    bad = [
        row[:-1],
        row + [1.0],
        [lo - abs(lo) - 1.0, *row[1:]],
        [hi + abs(hi) + 1.0, *row[1:]],
        [np.nan, *row[1:]],
        [*row[:-1], np.inf],
        ["1.0", *row[1:]],
        [None, *row[1:]],
    ]
    for args in bad:
        expected, outcome = _outcome(o.point, *args), _outcome(c.point, *args)
        assert outcome[0] == expected[0] and expected[0] != "ok", (args, outcome, expected)
        assert outcome[1] == expected[1], args


def test_point_policies_and_domain_bounds(tmp_path):
    """A sample the C refuses (box, domain bound, NaN) goes through the loader's policy exactly as in the
    onnxruntime backend: the same error, the same clipped value, NaN for nonfinite="nan", the same warning."""
    path = with_card("paraboloid", tmp_path, lambda card: card.update(domain={"bounds": [BOUND]}))
    inside, beyond, outside, nan = (0.5, 0.1), (0.1, 0.9), (1.5, 0.1), (0.5, np.nan)
    policies = ({}, {"out_of_range": "clip"}, {"out_of_range": "allow"}, {"out_of_range": "clip", "nonfinite": "nan"})
    for kwargs in policies:
        c, o = load(path, backend="c", **kwargs), load(path, **kwargs)
        for args in (inside, beyond, outside, nan):
            expected, outcome = _outcome(o.point, *args), _outcome(c.point, *args)
            assert outcome[0] == expected[0], (kwargs, args, outcome, expected)
            if expected[0] == "ok":
                assert np.allclose(outcome[1], expected[1], rtol=1e-5, atol=1e-6, equal_nan=True), (kwargs, args)
            else:
                assert outcome[1] == expected[1]
    with pytest.warns(UserWarning, match="outside the valid range") as record:
        load(path, backend="c", out_of_range="warn").point(*outside)
    with pytest.warns(UserWarning, match="outside the valid range") as expected_record:
        load(path, out_of_range="warn").point(*outside)
    assert [str(w.message) for w in record] == [str(w.message) for w in expected_record]


def test_point_without_python_headers_uses_ctypes_and_says_why(monkeypatch, tmp_path):
    """No Python.h (e.g. no python3-dev): the library is built without the extension, point() goes through
    ctypes with the same results and errors, and both f.point_path and a warning say why."""
    import sysconfig

    from pipeline.codegen import cbackend

    real = sysconfig.get_paths()
    monkeypatch.setattr(sysconfig, "get_paths", lambda *a, **k: {**real, "include": str(tmp_path / "no-headers")})
    monkeypatch.setattr(cbackend, "_warned_ctypes", set())
    with pytest.warns(RuntimeWarning, match="point\\(\\) goes through ctypes.*no Python.h"):
        c = load(EXPORTED / "water.onnx", backend="c")
    assert c.point_path.startswith("ctypes (slower): no Python.h in ") and "\n" not in c.point_path
    assert not c.library.name.endswith("-py.so")
    assert "point" not in vars(c)  # the class's ctypes point()
    o = load(EXPORTED / "water.onnx")
    X = data.sample(spec.load("water"), 50, "uniform", seed=8)
    assert_matches(np.array([c.point(*r) for r in X.tolist()]), np.array([o.point(*r) for r in X.tolist()]), "ctypes")
    for args in ((300.0,), (300.0, np.nan), (1.0, 1e6), ("x", 1e6)):
        assert _outcome(c.point, *args)[:2] == _outcome(o.point, *args)[:2] and _outcome(o.point, *args)[0] != "ok"


def test_cache_is_keyed_by_the_interpreter(monkeypatch):
    """Another interpreter ABI (EXT_SUFFIX) gets another library; the same one reuses it."""
    import sysconfig

    if python_headers()[1]:
        pytest.skip(python_headers()[1])
    first = load(EXPORTED / "paraboloid.onnx", backend="c").library
    assert first.name.endswith("-py.so") and load(EXPORTED / "paraboloid.onnx", backend="c").library == first
    real = sysconfig.get_config_var
    monkeypatch.setattr(
        sysconfig,
        "get_config_var",
        lambda name: ".cpython-399-x86_64-linux-gnu.so" if name == "EXT_SUFFIX" else real(name),
    )
    assert load(EXPORTED / "paraboloid.onnx", backend="c").library != first


def test_point_extension_that_does_not_import_falls_back_to_ctypes(monkeypatch):
    """An extension that compiles but does not import (another interpreter's symbols, say): the plain library
    is built for ctypes, and point_path says why."""
    from pipeline.codegen import cbackend

    if python_headers()[1]:
        pytest.skip(python_headers()[1])

    def refuse(lib):
        raise ImportError("undefined symbol: PyFloat_Type\nsecond line")

    monkeypatch.setattr(cbackend, "load_extension", refuse)
    monkeypatch.setattr(cbackend, "_warned_ctypes", set())
    with pytest.warns(RuntimeWarning, match="does not import: undefined symbol: PyFloat_Type$"):
        c = load(EXPORTED / "colebrook.onnx", backend="c")
    assert c.point_path == "ctypes (slower): the point() extension does not import: undefined symbol: PyFloat_Type"
    assert not c.library.name.endswith("-py.so")
    assert_matches(c.point(1e5, 1e-4)[None], load(EXPORTED / "colebrook.onnx").point(1e5, 1e-4)[None], "ctypes")
