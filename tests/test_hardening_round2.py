"""Hardening, round 2 (issue 23): each test names the fault it guards against. Models are the committed ones, copied
into tmp_path and, where a case needs it, edited and resealed as export would; nothing here trains."""

import hashlib
import json
import os
import shutil
import subprocess
import sys
import textwrap
import threading
import tomllib
import warnings
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper

from pipeline import codegen
from pipeline.build import data, report, spec
from pipeline.cli import EXIT_BAD_INPUT
from pipeline.codegen import fmu
from pipeline.errors import PipelineError, SpecError
from pipeline.loader import CARD_KEY, LoaderError, card_path, load, pending_card_path, seal, verify_integrity
from pipeline.runtime.files import replace_model
from tests.test_hardening import resealed

ROOT = Path(__file__).resolve().parents[1]
EXPORTED = ROOT / "exported"
PARABOLOID, COLEBROOK = EXPORTED / "paraboloid.onnx", EXPORTED / "colebrook.onnx"
HAS_CC = shutil.which(os.environ.get("CC", "cc").split()[0] if os.environ.get("CC") else "cc") is not None
needs_cc = pytest.mark.skipif(not HAS_CC, reason="no C compiler (cc) on PATH")


def card_file_for(blob: bytes) -> bytes:
    card = verify_integrity(blob)
    return (json.dumps(card.to_dict() | {"onnx_sha256": hashlib.sha256(blob).hexdigest()}, indent=2) + "\n").encode()


def steeper(proto, factor: float = 2.0) -> None:
    """Scale the last layer (weights and bias): another model with other slopes."""
    last = proto.graph.node[-1]
    for init in proto.graph.initializer:
        if init.name in last.input[1:]:
            init.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(init) * np.float32(factor), init.name))


def install(folder: Path, blob: bytes, name: str = "paraboloid") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.onnx"
    path.write_bytes(blob)
    card_path(path).write_bytes(card_file_for(blob))
    return path


X_PARABOLOID = np.array([[0.3, 0.4], [0.7, 0.2], [0.5, 0.9]])


# --- 1. the Jacobian of the model that was loaded ---------------------------------------------------------------


@needs_cc
def test_jacobian_is_the_loaded_models_after_a_reexport(tmp_path):
    """f.jacobian compiled from the path at first call: after a re-export of the name, f(X) was the old model and
    f.jacobian(X) the new one."""
    path = install(tmp_path, PARABOLOID.read_bytes())
    f = load(path)
    replace_model(path, new := resealed(PARABOLOID, edit_proto=steeper), card_file_for(new))
    J_old, J_new = load(PARABOLOID).jacobian(X_PARABOLOID), load(path).jacobian(X_PARABOLOID)
    assert not np.allclose(J_old, J_new)
    assert np.allclose(f.jacobian(X_PARABOLOID), J_old)
    c = load(path, backend="c")  # compiled from the bytes it verified, whatever the path holds later
    replace_model(path, PARABOLOID.read_bytes(), card_file_for(PARABOLOID.read_bytes()))
    assert np.allclose(c.jacobian(X_PARABOLOID), J_new)


@needs_cc
def test_load_bytes_with_the_c_backend():
    """load(bytes, backend="c") raised TypeError."""
    f = load(PARABOLOID.read_bytes(), backend="c")
    assert np.allclose(f(X_PARABOLOID), load(PARABOLOID)(X_PARABOLOID), rtol=1e-5, atol=1e-6)
    with pytest.raises(LoaderError, match="a path or the bytes"):
        load(12345)


# --- 2, 9, 12: what a reference returns ----------------------------------------------------------------------------

SPEC = """
spec_version = 1
name = "{name}"
[reference]
callable = "ref:f"
{reference_extra}
[[inputs]]
name = "a"
unit = "K"
min = 1.0
max = 3.0
[[inputs]]
name = "b"
unit = "Pa"
min = 1.0
max = 10.0
scale = "log"
{domain}
[[outputs]]
name = "y"
unit = "1"
[sampling]
count = 200
holdout = 100
grid = 11
[model]
widths = [4]
[gates]
max_abs = 1e-2
"""


def spec_file(tmp_path, ref: str, name="t", reference_extra="", domain="", bounds="") -> str:
    (tmp_path / "ref.py").write_text(textwrap.dedent(ref))
    if bounds:
        (tmp_path / "bounds.py").write_text(textwrap.dedent(bounds))
    path = tmp_path / f"{name}.toml"
    path.write_text(SPEC.format(name=name, reference_extra=reference_extra, domain=domain))
    return str(path)


@pytest.mark.parametrize(
    "body, message",
    [
        ("return X[:, 0] + 1j * X[:, 1]", "complex values"),
        ("return np.sqrt(X[:, 0] - 2 + 0j)", "complex values"),
        ("return np.array([str(v) for v in X[:, 0]])", "strings"),
        ("return [str(v) for v in X[:, 0]]", "strings"),
        ("return np.array([1.0 if k else '2' for k in range(len(X))], dtype=object)", "strings"),
    ],
)
def test_complex_and_string_results_are_refused(tmp_path, body, message):
    """Complex results were trained on their real part with only a ComplexWarning; numeric strings were accepted
    although the README says strings are refused."""
    s = spec.load(spec_file(tmp_path, f"import numpy as np\ndef f(X):\n    {body}\n"))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(PipelineError, match=f"returned {message}") as e:
            data.evaluate(s, np.array([[1.5, 2.0], [2.5, 5.0]]))
    assert "\n" not in str(e.value) and not caught  # refused before any ComplexWarning


def test_every_point_failing_under_drop_is_one_line(tmp_path, cli):
    """on_error = "drop" with every point failing gave 'argmax of an empty sequence'."""
    path = spec_file(
        tmp_path,
        "import numpy as np\ndef f(X):\n    return np.full(len(X), np.nan)\n",
        reference_extra='on_error = "drop"',
    )
    with pytest.raises(PipelineError, match='failed on all .* on_error = "drop" has nothing left'):
        data.build(spec.load(path))
    status, _, err = cli("train", path)
    assert status == EXIT_BAD_INPUT and "Traceback" not in err and len(err.strip().splitlines()) == 1


# --- 3. nonfinite = "nan" with a domain min bound -----------------------------------------------------------------


def min_bound(card):
    """y >= 0.2 + 0.1 x: the box's lower corner (0, 0) lies outside."""
    card["domain"] = {
        "bounds": [
            {
                "input": "y",
                "side": "min",
                "of": "x",
                "label": "0.2 + 0.1 x",
                "table": {"scale": "linear", "lo": 0.0, "hi": 1.0, "values": [0.2, 0.3]},
            }
        ]
    }


@pytest.mark.parametrize("backend", ["onnxruntime", pytest.param("c", marks=needs_cc)])
def test_nonfinite_nan_with_a_min_bound_returns_nan(backend):
    """NaN rows were replaced by the box's lower corner, outside a min bound: an error naming values never passed."""
    f = load(resealed(PARABOLOID, edit_card=min_bound), backend=backend, nonfinite="nan")
    Y = f(np.array([[np.nan, 0.5], [0.5, 0.5], [0.4, np.inf]]))
    assert np.isnan(Y[[0, 2]]).all() and np.isfinite(Y[1]).all()
    assert np.isnan(f.point(np.nan, 0.5)).all()
    with pytest.raises(LoaderError, match=r"y = 0\.1 .* is below 0\.2 \+ 0\.1 x"):
        f(np.array([[np.nan, 0.5], [0.0, 0.1]]))  # a real violation is still named, not the placeholder


# --- 4. a torn export ----------------------------------------------------------------------------------------------


def torn(folder: Path) -> tuple[Path, bytes]:
    """An export killed between its renames: the new model, its card parked as pending, the old card file."""
    path = install(folder, PARABOLOID.read_bytes())
    new = resealed(PARABOLOID, edit_proto=steeper)
    pending_card_path(path).write_bytes(card_file_for(new))
    path.write_bytes(new)
    return path, new


def test_torn_export_is_accepted_by_loader_and_codegen(tmp_path):
    path, new = torn(tmp_path / "exported")
    assert load(path).blob == new
    for lang in codegen.LANGUAGES:
        written = codegen.generate(path, lang, tmp_path / lang)
        assert any(hashlib.sha256(new).hexdigest() in p.read_text() for p in written), lang


@needs_cc
def test_torn_export_is_accepted_by_the_c_backend_jacobian_and_fmu(tmp_path):
    path, new = torn(tmp_path / "exported")
    f = load(path)
    assert np.allclose(load(path, backend="c")(X_PARABOLOID), f(X_PARABOLOID), rtol=1e-5, atol=1e-6)
    assert f.jacobian(X_PARABOLOID).shape == (3, 1, 2)
    assert fmu.build(path, tmp_path / "fmu").is_file()


# --- 5. concurrent exports of one name -----------------------------------------------------------------------------


def test_concurrent_exports_of_one_name_leave_a_loadable_pair(tmp_path):
    """Two exports at once shared the parked card: unloadable pairs, 'cannot write NAME.json: No such file'."""
    path = install(tmp_path, PARABOLOID.read_bytes())
    blobs = [PARABOLOID.read_bytes(), resealed(PARABOLOID, edit_proto=steeper)]
    cards = [card_file_for(b) for b in blobs]
    errors = []

    def export(k: int) -> None:
        try:
            for _ in range(15):
                replace_model(path, blobs[k % 2], cards[k % 2])
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=export, args=(k,)) for k in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert load(path).blob in blobs and not pending_card_path(path).exists()
    # and from processes
    code = (
        "import sys; from pathlib import Path; from pipeline.runtime.files import replace_model\n"
        "p, m, c = Path(sys.argv[1]), Path(sys.argv[2]).read_bytes(), Path(sys.argv[3]).read_bytes()\n"
        "for _ in range(30): replace_model(p, m, c)\n"
    )
    for k in range(2):
        (tmp_path / f"m{k}").write_bytes(blobs[k])
        (tmp_path / f"c{k}").write_bytes(cards[k])
    procs = [
        subprocess.Popen([sys.executable, "-c", code, str(path), str(tmp_path / f"m{k}"), str(tmp_path / f"c{k}")])
        for k in (0, 1, 0, 1)
    ]
    assert [p.wait() for p in procs] == [0, 0, 0, 0]
    assert load(path).blob in blobs


# --- 6. domains ---------------------------------------------------------------------------------------------------

SMOOTH = "import numpy as np\ndef f(X):\n    return np.sin(X[:, 0]) * np.log(X[:, 1]) / 3\n"


def domain_text(side: str, fn: str, label: str = "bound") -> str:
    return f'[[domain]]\ninput = "a"\n{side} = "bounds:{fn}"\nof = "b"\nlabel = "{label}"\n'


def test_report_along_a_narrow_bound_stays_in_the_domain(tmp_path):
    """A narrow domain touching the box: the report moved the bound inward past the box, and export failed."""
    path = spec_file(
        tmp_path, SMOOTH, domain=domain_text("max", "a_max"), bounds="def a_max(b):\n    return 1.02 + 0 * b\n"
    )
    s = spec.load(path)
    (bound,) = data.bounds(s)

    def model(X):
        assert data.in_domain(s, X).all(), "a point outside the domain was evaluated"
        return np.zeros((len(X), 1))

    assert report.boundary_errors(s, model, bound)[:4] == b"\x89PNG"


def test_crossing_bounds_are_refused(tmp_path):
    both = domain_text("max", "a_max", "upper") + domain_text("min", "a_min", "lower")
    path = spec_file(
        tmp_path,
        SMOOTH,
        domain=both,
        bounds="import numpy as np\ndef a_max(b):\n    return 1.5 + np.log10(b)\ndef a_min(b):\n    return 2.0 + 0 * b\n",
    )
    with pytest.raises(PipelineError, match=r"'lower' \(min\) and 'upper' \(max\) of a cross at b = 1"):
        data.bounds(spec.load(path))


def test_a_bound_empty_mid_range_names_where(tmp_path):
    """An empty mid-range bound was reported 'near b = 10' (the table's end)."""
    fn = "import numpy as np\ndef a_max(b):\n    return 2.9 - 2.6 * np.exp(-(((np.log10(b) - 0.5) / 0.1) ** 2))\n"
    path = spec_file(tmp_path, SMOOTH, domain=domain_text("max", "a_max"), bounds=fn)
    with pytest.raises(PipelineError, match=r"leaves no room for a .* near b = 2\.78\d*:"):
        data.bounds(spec.load(path))


def test_csv_rows_past_a_domain_bound_are_refused_or_dropped(tmp_path):
    rng = np.random.default_rng(0)
    a, b = rng.uniform(1, 3, 80), 10 ** rng.uniform(0, 1, 80)
    a[:5] = 2.9  # past a <= 1.5 + log10(b) wherever b < 25
    b[:5] = 2.0
    rows = "\n".join(f"{x},{z},{np.sin(x):.6f}" for x, z in zip(a, b))
    (tmp_path / "d.csv").write_text("a,b,y\n" + rows + "\n")
    for policy in ("error", "drop"):
        text = SPEC.format(name="t", reference_extra="", domain=domain_text("max", "a_max")).replace(
            'callable = "ref:f"', f'data = "d.csv"\nbad_rows = "{policy}"'
        )
        (tmp_path / "bounds.py").write_text("import numpy as np\ndef a_max(b):\n    return 1.5 + np.log10(b)\n")
        (tmp_path / "t.toml").write_text(text)
        s = spec.load(str(tmp_path / "t.toml"))
        if policy == "error":
            with pytest.raises(PipelineError, match="line 2 has an input outside its declared range or past a domain"):
                data.read_csv(s)
        else:
            X, _, dropped = data.read_csv(s)
            assert dropped >= 5 and data.in_domain(s, X).all()


def test_errors_from_a_model_loaded_as_bytes_name_the_surrogate():
    """Late errors (the report of an export, from the sealed bytes) said 'model: ...'."""
    with pytest.raises(LoaderError, match=r"^paraboloid: input 'x' = 2 \(row 0\)"):
        load(PARABOLOID.read_bytes())(np.array([[2.0, 0.5]]))


# --- 7. float32 at a range end, C backend -------------------------------------------------------------------------


@needs_cc
def test_c_backend_takes_float32_at_a_range_end():
    """eD = 0.05 as float32 is 0.0500000007: onnxruntime accepted it, backend="c" refused it."""
    X = np.array([[1e5, 0.05], [4000.0, 1e-6]], dtype=np.float32)
    ref = load(COLEBROOK)(X)
    c = load(COLEBROOK, backend="c")
    assert np.allclose(c(X), ref, rtol=1e-5) and c(X).dtype == np.float32
    assert c.jacobian(X).shape == (2, 1, 2)


# --- 8. the C cache -----------------------------------------------------------------------------------------------

CHILD = "import sys; from pipeline.loader import load; print(load(sys.argv[1], backend='c')([[0.5, 0.5]])[0, 0])"


def run_child(cache, env_extra=None):
    env = {**os.environ, "SURROGATE_C_CACHE": str(cache), **(env_extra or {})}
    return subprocess.run(
        [sys.executable, "-W", "always", "-c", CHILD, str(PARABOLOID)], env=env, capture_output=True, text=True
    )


@needs_cc
def test_a_truncated_cached_library_is_rebuilt_not_mapped(tmp_path):
    """A truncated library under its right name killed the process with SIGBUS."""
    cache = tmp_path / "cache"
    assert run_child(cache).returncode == 0
    (lib,) = [p for p in cache.iterdir() if p.suffix == ".so"]
    lib.write_bytes(lib.read_bytes()[:4096])
    done = run_child(cache)
    assert done.returncode == 0, done.stderr
    assert abs(float(done.stdout) - 0.5) < 0.01 and lib.stat().st_size > 4096


@needs_cc
def test_an_unusable_cache_falls_back_with_a_warning(tmp_path):
    (tmp_path / "file").write_text("not a folder")
    done = run_child(tmp_path / "file")
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    assert "cache is not usable" in done.stderr


@needs_cc
def test_cc_with_arguments_is_used(tmp_path):
    """CC="ccache gcc" was ignored (looked up as one program name)."""
    assert run_child(tmp_path / "a", {"CC": "env gcc"}).returncode == 0
    done = run_child(tmp_path / "b", {"CC": "env false"})  # proves $CC is the command that runs
    assert done.returncode == 1 and "with " in done.stderr and "env false" in done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith("pipeline.errors.LoaderError")


# --- 10. names that shadow system headers ------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["math", "string", "time", "limits", "Math"])
def test_names_that_shadow_system_headers_are_refused(tmp_path, name):
    with pytest.raises(SpecError, match=f"{name}.h, which shadows the system header"):
        spec.load(spec_file(tmp_path, SMOOTH, name=name))

    def rename(card):
        card["name"] = name

    path = tmp_path / "exported" / f"{name}.onnx"
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(resealed(PARABOLOID, edit_card=rename))
    with pytest.raises(PipelineError, match="would shadow the system header"):
        codegen.generate(path, "c", tmp_path / "gen")
    with pytest.raises(PipelineError, match="would shadow the system header"):
        fmu.build(path, tmp_path / "fmu")
    if HAS_CC:
        with pytest.raises(LoaderError, match="would shadow the system header"):
            load(path, backend="c")
    assert not (tmp_path / "gen").exists() and load(path)(X_PARABOLOID).shape == (3, 1)


# --- 11. Fortran for a wide network -------------------------------------------------------------------------------


def wide_model(width: int = 200) -> bytes:
    rng = np.random.default_rng(0)
    sizes = [2, width, width, 1]
    nodes, inits, value = [], [], "x"
    for k, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        W = (rng.normal(size=(b, a)) / np.sqrt(a)).astype(np.float32)
        inits += [numpy_helper.from_array(W, f"w{k}"), numpy_helper.from_array(np.zeros(b, np.float32), f"b{k}")]
        out = "y" if k == len(sizes) - 2 else f"h{k}"
        nodes.append(helper.make_node("Gemm", [value, f"w{k}", f"b{k}"], [out], transB=1))
        if out != "y":
            nodes.append(helper.make_node("Tanh", [out], [f"t{k}"]))
            out = f"t{k}"
        value = out
    graph = helper.make_graph(
        nodes,
        "wide",
        [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, ["batch", 2])],
        [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, ["batch", 1])],
        inits,
    )
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    proto.ir_version = onnx.load(PARABOLOID).ir_version
    card = json.loads(next(p.value for p in onnx.load(PARABOLOID).metadata_props if p.key == CARD_KEY))
    entry = proto.metadata_props.add()
    entry.key, entry.value = CARD_KEY, json.dumps(card, sort_keys=True)
    return seal(proto.SerializeToString())


@pytest.mark.skipif(
    shutil.which("gfortran") is None, reason="gfortran is not installed (on Debian: apt-get install gfortran)"
)
def test_fortran_for_a_wide_network_compiles_and_matches(tmp_path):
    """widths = [200, 200] exceeded F2008's 255 continuation lines in one parameter array."""
    path = tmp_path / "paraboloid.onnx"
    path.write_bytes(wide_model())
    (f90,) = codegen.generate(path, "fortran", tmp_path)
    driver = tmp_path / "driver.f90"
    driver.write_text(
        "program driver\n  use paraboloid_surrogate\n  implicit none\n  integer, parameter :: dp = kind(1.0d0)\n"
        "  real(dp) :: x(2), y(1)\n  integer :: s\n  x = [0.3_dp, 0.4_dp]\n  s = paraboloid_eval(x, y)\n"
        "  print '(i0, 1x, es25.17)', s, y\nend program driver\n"
    )
    exe = tmp_path / "a.out"
    cmd = ["gfortran", "-std=f2008", "-Wall", "-Werror", "-O0", "-J", str(tmp_path), str(f90), str(driver)]
    done = subprocess.run([*cmd, "-o", str(exe)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    status, y = subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout.split()
    ref = load(path)(np.array([[0.3, 0.4]]))[0, 0]
    assert status == "0" and abs(float(y) - ref) <= 1e-5 * abs(ref) + 1e-6


# --- 12. smaller ones ---------------------------------------------------------------------------------------------


def test_report_refuses_a_model_exported_from_another_spec(tmp_path, cli, write_spec):
    """`report` drew a same-named spec's plots under the card's pass."""
    path = write_spec(name="paraboloid")
    install(tmp_path / "exported", PARABOLOID.read_bytes())
    status, _, err = cli("report", path)
    assert status == EXIT_BAD_INPUT and "exported from another spec" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "exported" / "paraboloid_report").exists()


def test_a_card_with_more_outputs_than_its_graph_is_refused(tmp_path):
    def extra(card):
        card["outputs"].append({"name": "z2", "unit": "1", "transform": "linear"})

    blob = resealed(PARABOLOID, edit_card=extra)
    with pytest.raises(LoaderError, match=r"2 output\(s\), the graph takes 2 and returns 1"):
        load(blob)
    path = tmp_path / "paraboloid.onnx"
    path.write_bytes(blob)
    with pytest.raises(PipelineError, match="the card names 2 outputs, the graph returns 1"):
        codegen.generate(path, "c", tmp_path / "gen")


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda c: c["inputs"][0].update(max=float("nan")), "range"),
        (lambda c: c["inputs"][1].update(min=float("-inf")), "range"),
        (lambda c: c["inputs"][0].update(min=2.0), "min <= max"),
        (lambda c: (min_bound(c), c["domain"]["bounds"][0]["table"].update(values=[0.2])), "at least 2"),
        (lambda c: (min_bound(c), c["domain"]["bounds"][0]["table"].update(values=[0.2, float("nan")])), "finite"),
        (lambda c: (min_bound(c), c["domain"]["bounds"][0]["table"].update(hi=0.0)), "lo < hi"),
    ],
)
def test_cards_whose_numbers_turn_a_check_off_are_refused(edit, message):
    """NaN in a range turned its check off; a bound table of one value raised ZeroDivisionError."""
    with pytest.raises(LoaderError, match=message) as e:
        load(resealed(PARABOLOID, edit_card=edit))
    assert "\n" not in str(e.value)


def test_fast_math_caveat_of_the_unchecked_entry_points_is_documented(tmp_path):
    (header,) = [p for p in codegen.generate(PARABOLOID, "c", tmp_path) if p.suffix == ".h"]
    assert "-ffast-math build (which assumes there is no NaN" in header.read_text()
    assert "return NaN for a NaN input only without `-ffast-math`" in (ROOT / "README.md").read_text()


@needs_cc
def test_an_emoji_in_a_unit_builds_the_fmu(tmp_path):
    def emoji(card):
        card["inputs"][0]["unit"] = "m³/s 🚀 ??="
        card["description"] = "line one\n*/ 🚀"

    path = tmp_path / "paraboloid.onnx"
    path.write_bytes(resealed(PARABOLOID, edit_card=emoji))
    assert fmu.build(path, tmp_path / "fmu").is_file()
    assert fmu._c_string('m³ 🚀"\\?') == '"m\\302\\263 \\360\\237\\232\\200\\"\\\\\\077"'


@pytest.mark.parametrize(
    "args, message", [(["--trials", "0"], "--trials"), (["--storage", "bogus://"], "--storage 'bogus://'")]
)
def test_search_arguments_are_one_line_errors(cli, write_spec, args, message):
    pytest.importorskip("optuna")
    status, _, err = cli("search", write_spec(), "--quiet", *args)
    assert status == EXIT_BAD_INPUT and message in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_storage_password_is_not_printed(cli, write_spec):
    pytest.importorskip("optuna")
    status, _, err = cli("search", write_spec(), "--quiet", "--storage", "bogus://user:secret@host/db")
    assert status == EXIT_BAD_INPUT and "secret" not in err and "user:***@" in err


def test_bool_widths_are_refused(write_spec):
    """widths = [true, 2] passed as [1, 2] and failed later with a traceback."""
    text = Path(write_spec()).read_text().replace("widths = [8, 8]", "widths = [true, 2]")
    with pytest.raises(SpecError, match="model.widths must be"):
        spec.parse(tomllib.loads(text))


@pytest.mark.parametrize("table, key", [("sampling", "seed"), ("training", "seed")])
def test_negative_seeds_are_refused(write_spec, table, key):
    raw = tomllib.loads(Path(write_spec()).read_text())
    raw.setdefault(table, {})[key] = -1
    with pytest.raises(SpecError, match=f"{table}.{key} must be in"):
        spec.parse(raw)


# --- a pass of our own ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["onnxruntime", pytest.param("c", marks=needs_cc)])
def test_point_takes_float32_scalars_at_a_range_end(backend):
    """f(X) took float32 0.05 for eD, f.point(np.float32(0.05)) refused it."""
    f = load(COLEBROOK, backend=backend)
    y = f.point(np.float32(1e5), np.float32(0.05))
    assert np.allclose(y, f(np.array([[1e5, 0.05]]))[0], rtol=1e-5)
    with pytest.raises(LoaderError, match="outside its valid range"):
        f.point(1e5, 0.0500001)


def test_a_card_naming_a_column_twice_is_refused():
    def twice(card):
        card["inputs"][1]["name"] = card["inputs"][0]["name"]

    with pytest.raises(LoaderError, match=r"name\(s\) \['x'\] used more than once"):
        load(resealed(PARABOLOID, edit_card=twice))


def test_cc_that_cannot_be_split_is_one_line(tmp_path):
    done = run_child(tmp_path / "c", {"CC": "'gcc"})
    assert done.returncode == 1 and "cannot be split into words" in done.stderr.strip().splitlines()[-1]
