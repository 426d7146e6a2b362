"""Generated C and Fortran: compiled with real compilers, matched against onnxruntime on 10,000 inputs each, for
every build flag set a solver is likely to use; Jacobians against central differences; linking several surrogates
into C and C++ programs, CMake and pkg-config consumers; bad files and hostile card text."""

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import helper
from toolchains import TOOLCHAINS, languages

from pipeline import codegen, loader
from pipeline.build import data, spec
from pipeline.errors import PipelineError
from pipeline.loader import CARD_KEY, load
from pipeline.runtime import domain

ROOT = Path(__file__).resolve().parents[1]
EXPORTED = ROOT / "exported"
RTOL, ATOL_FRACTION = codegen.RTOL, codegen.ATOL_FRACTION
# The builds the contract is checked for: a solver's usual flags, a build for this machine, and -ffast-math.
BUILDS = {"O2": ["-O2"], "native": ["-O3", "-march=native"], "fast-math": ["-O2", "-ffast-math"]}

C_DRIVER = r"""#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "{n}.h"
#define NI {N}_N_INPUTS
#define NO {N}_N_OUTPUTS
/* argv[1]: single (eval per row), batch, soa, jac (eval_jac per row). Prints the batch status, then per row:
   status (single/jac; -1 otherwise), the outputs, and for jac the Jacobian row-major. */
int main(int argc, char **argv) {{
    long n, i; int k, status = 0;
    const char *mode = argc > 1 ? argv[1] : "single";
    double *x, *y, *d, *xs[NI], *ys[NO];
    if (scanf("%ld", &n) != 1) return 3;
    x = malloc(sizeof(double) * n * NI); y = malloc(sizeof(double) * n * NO); d = malloc(sizeof(double) * n * NO * NI);
    for (i = 0; i < n * NI; ++i) if (scanf("%lf", &x[i]) != 1) return 3;
    if (!strcmp(mode, "batch")) status = {n}_eval_batch((size_t)n, x, y);
    if (!strcmp(mode, "soa")) {{
        for (k = 0; k < NI; ++k) {{ xs[k] = malloc(sizeof(double) * n); for (i = 0; i < n; ++i) xs[k][i] = x[i * NI + k]; }}
        for (k = 0; k < NO; ++k) ys[k] = malloc(sizeof(double) * n);
        status = {n}_eval_soa((size_t)n, (const double *const *)xs, ys);
        for (k = 0; k < NO; ++k) for (i = 0; i < n; ++i) y[i * NO + k] = ys[k][i];
    }}
    printf("%d\n", status);
    for (i = 0; i < n; ++i) {{
        int s = -1;
        if (!strcmp(mode, "single")) s = {n}_eval(x + i * NI, y + i * NO);
        if (!strcmp(mode, "jac")) s = {n}_eval_jac(x + i * NI, y + i * NO, d + i * NO * NI);
        printf("%d", s);
        for (k = 0; k < NO; ++k) printf(" %.17g", y[i * NO + k]);
        if (!strcmp(mode, "jac")) for (k = 0; k < NO * NI; ++k) printf(" %.17g", d[i * NO * NI + k]);
        printf("\n");
    }}
    return 0;
}}
"""

F_DRIVER = """program driver
  use, intrinsic :: iso_fortran_env, only: dp => real64
  use {n}_surrogate
  implicit none
  integer :: n, i, status
  real(dp) :: x({n}_n_inputs), y({n}_n_outputs), dydx({n}_n_outputs, {n}_n_inputs)
  read (*, *) n
  write (*, '(i0)') 0
  do i = 1, n
    read (*, *) x
    status = {n}_eval_jac(x, y, dydx)
    write (*, '(i0, *(1x, es25.17e3))') status, y, transpose(dydx)
  end do
end program driver
"""

DRIVERS = {"c": (C_DRIVER, ("single", "batch", "soa", "jac")), "fortran": (F_DRIVER, ("jac",))}
"""language -> (driver program, the modes it runs; with one mode it ignores the mode argument). Every driver prints
the batch status, then per row: status (-1 for a batched mode), outputs, and for jac the Jacobian row-major."""


def test_every_language_has_a_toolchain_and_a_driver():
    assert set(codegen.LANGUAGES) <= set(TOOLCHAINS) & set(DRIVERS)


def build(
    name: str,
    lang: str,
    tmp: Path,
    flags=("-O2",),
    precision: str = "float",
    exported: Path = EXPORTED,
    expected_name: str | None = None,
) -> Path:
    """Generate and compile a driver; returns the executable."""
    generated = codegen.generate(exported / f"{name}.onnx", lang, tmp, precision, expected_name)
    tc, (driver, _) = TOOLCHAINS[lang], DRIVERS[lang]
    exe = tmp / f"{name}_{lang}_{precision}_{'_'.join(f.strip('-') for f in flags)}"
    (tmp / f"driver{tc.suffix}").write_text(driver.format(n=name, N=name.upper()))
    sources = [*(p for p in generated if p.suffix == tc.suffix), tmp / f"driver{tc.suffix}"]
    result = subprocess.run(tc.command(sources, tmp, flags, exe), capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    return exe


def run(exe: Path, X: np.ndarray, mode: str = "single", n_out: int = 1):
    """Run a driver over X: (batch status, row statuses, outputs (N, n_out), Jacobians (N, n_out, n_in) or None)."""
    stdin = f"{len(X)}\n" + "\n".join(" ".join(f"{v:.17g}" for v in row) for row in X) + "\n"
    lines = subprocess.run(
        [str(exe), mode], input=stdin, check=True, capture_output=True, text=True
    ).stdout.splitlines()
    table = np.array([line.split() for line in lines[1:]], dtype=float)
    J = table[:, 1 + n_out :].reshape(len(X), n_out, X.shape[1]) if table.shape[1] > 1 + n_out else None
    return int(lines[0]), table[:, 0].astype(int), table[:, 1 : 1 + n_out], J


def assert_matches(Y, ref, what: str):
    allowed = RTOL * np.abs(ref) + ATOL_FRACTION * np.abs(ref).max(axis=0)
    worst = np.max(np.abs(Y - ref) / allowed)
    assert worst <= 1.0, f"{what}: {worst:.2f}x the tolerance"


def batched(lang: str) -> list[str]:
    """The batched modes of a language's driver (eval_batch, eval_soa): each returns the first error code."""
    return [m for m in DRIVERS[lang][1] if m in ("batch", "soa")]


@pytest.mark.parametrize(
    "build_name, precision", [("O2", "float"), ("native", "float"), ("fast-math", "float"), ("O2", "double")]
)
@pytest.mark.slow
@pytest.mark.parametrize("lang", languages())
@pytest.mark.parametrize("name", spec.available())
def test_generated_code_matches_onnxruntime(name, lang, build_name, precision, tmp_path):
    """Every entry point the language's driver runs (C: eval, eval_batch, eval_soa, eval_jac; Fortran: eval_jac)
    of every build is within the codegen tolerance."""
    X = data.sample(spec.load(name), 10_000, "uniform", seed=2024)
    ref = load(EXPORTED / f"{name}.onnx")(X.astype(np.float32)).astype(np.float64)
    exe = build(name, lang, tmp_path, BUILDS[build_name], precision)
    for mode in DRIVERS[lang][1]:
        first, status, Y, _ = run(exe, X, mode, ref.shape[1])
        assert first == 0 and (status == (-1 if mode in batched(lang) else 0)).all()
        assert_matches(Y, ref, f"{name} {lang} {build_name} {precision} {mode}")


def central_differences(f, X: np.ndarray, rel: float = 1e-6) -> np.ndarray:
    """(N, n_out, n_in) central differences of f (a double-precision evaluation) at X."""
    cols = []
    for i in range(X.shape[1]):
        h = rel * np.abs(X[:, i])
        up, down = X.copy(), X.copy()
        up[:, i] += h
        down[:, i] -= h
        cols.append((f(up) - f(down)) / (2 * h[:, None]))
    return np.stack(cols, axis=2)


def assert_jacobian_close(J, J_fd, what: str, rtol: float = 1e-3):
    """Within rtol of the differences, relative to each entry, with a floor of rtol x that entry's largest
    magnitude over the samples (an entry that crosses zero has no meaningful relative error there)."""
    scale = np.abs(J_fd).max(axis=0, keepdims=True)
    worst = np.max(np.abs(J - J_fd) / (rtol * np.abs(J_fd) + rtol * scale + 1e-300))
    assert worst <= 1.0, f"{what}: Jacobian off by {worst:.2f}x the tolerance"


@pytest.mark.slow
@pytest.mark.parametrize("lang", languages())
@pytest.mark.parametrize("name", spec.available())
def test_jacobian_matches_central_differences(name, lang, tmp_path):
    """eval_jac, analytic through the scalings and log transforms, against central differences of the surrogate
    computed in double precision (the C's double build), in physical units."""
    s = spec.load(name)
    X = data.sample(s, 300, "uniform", seed=5)
    # keep the difference steps inside the domain
    lo, hi = np.array([i.min for i in s.inputs]), np.array([i.max for i in s.inputs])
    X = np.clip(X, lo * (1 + 1e-5) + 1e-5 * (hi - lo), hi * (1 - 1e-5) - 1e-5 * (hi - lo))
    double = build(name, "c", tmp_path / "double", precision="double")
    n_out = len(s.outputs)
    J_fd = central_differences(lambda Z: run(double, Z, "batch", n_out)[2], X)
    exe = build(name, lang, tmp_path / lang)
    _, status, Y, J = run(exe, X, "jac", n_out)
    assert (status == 0).all() and J.shape == (len(X), n_out, X.shape[1])
    assert_jacobian_close(J, J_fd, f"{name} {lang}")
    for mode in batched(lang):
        assert np.allclose(Y, run(exe, X, mode, n_out)[2], rtol=1e-6)  # eval_jac's y is eval's y


@pytest.mark.parametrize("flags", [("-O2",), ("-O2", "-ffast-math")], ids=["O2", "fast-math"])
@pytest.mark.parametrize("lang", languages())
def test_error_codes(lang, flags, tmp_path):
    """NaN/inf -> 1, outside the range -> 2, y NaN; also under -ffast-math, which lets the compiler assume that
    no NaN exists (isfinite() there is folded to true)."""
    s = spec.load("colebrook")
    X = np.array([[1e5, 1e-4], [np.nan, 1e-4], [1e5, np.inf], [1e3, 1e-4], [1e5, 0.1], [4e3, 1e-6]])
    exe = build("colebrook", lang, tmp_path, flags)
    _, status, Y, J = run(exe, X, "jac")
    assert status.tolist() == [0, 1, 1, 2, 2, 0]
    assert np.isnan(Y[1:5]).all() and np.isfinite(Y[[0, 5]]).all()
    assert np.isnan(J[1:5]).all() and np.isfinite(J[[0, 5]]).all()
    assert abs(Y[0, 0] / data.evaluate(s, X[:1])[0, 0] - 1) < 5e-4
    for mode in batched(lang):
        first, _, Yb, _ = run(exe, X, mode)
        assert first == 1 and np.isnan(Yb[1:5]).all() and np.allclose(Yb[[0, 5]], Y[[0, 5]], rtol=1e-12)


def test_c_batch_equals_single_calls(tmp_path):
    """The vector blocks are a separate code path: row by row they agree with eval, including a block that holds
    a bad row and a tail shorter than a block."""
    X = data.sample(spec.load("water"), 8 * 40 + 5, "uniform", seed=3)
    X[17, 0] = np.nan  # a non-finite input inside a block
    X[100, 1] = 2e7  # out of range
    exe = build("water", "c", tmp_path)
    _, status, single, _ = run(exe, X, "single", 4)
    first, _, batch, _ = run(exe, X, "batch", 4)
    assert first == 1  # the first error in row order: the NaN at row 17
    assert status[17] == 1 and status[100] == 2 and np.isnan(batch[[17, 100]]).all()
    ok = status == 0
    assert np.allclose(batch[ok], single[ok], rtol=2e-7, atol=0)


@pytest.mark.skipif(shutil.which("nm") is None, reason="nm (binutils) is not installed")
@pytest.mark.parametrize("flags", [["-O2"], ["-O3", "-march=native"]])
def test_batched_loop_fits_the_instruction_cache(flags, tmp_path):
    """The batched loop of the largest shipped network (friedel, 8-32-32-1) stays small: written out as straight-line
    code it was about 40 KiB at -O3 -march=native (127 KiB for -O2's SSE2 copy), more than a 32 KiB L1 instruction cache,
    and ran fetch-bound at about one instruction a cycle. Every compiled copy of it must stay under 16 KiB."""
    codegen.generate(EXPORTED / "friedel.onnx", "c", tmp_path)
    obj = tmp_path / "friedel.o"
    subprocess.run(
        ["gcc", *TOOLCHAINS["c"].strict, *flags, "-c", str(tmp_path / "friedel.c"), "-o", str(obj)], check=True
    )
    symbols = subprocess.run(["nm", "-S", "--defined-only", str(obj)], check=True, capture_output=True, text=True)
    sizes = {
        line.split()[3]: int(line.split()[1], 16)
        for line in symbols.stdout.splitlines()
        if len(line.split()) == 4 and line.split()[3].startswith("friedel_run")
    }
    assert sizes, symbols.stdout  # the loop is its own function (friedel_run_here, friedel_run_avx2)
    assert max(sizes.values()) < 16 * 1024, sizes


def test_c_header_documents_the_interface(tmp_path):
    header = codegen.generate(EXPORTED / "water.onnx", "c", tmp_path)[0].read_text()
    for decl in (
        "int water_eval(const double *x, double *y);",
        "int water_eval_jac(const double *x, double *y, double *dydx);",
        "int water_eval_soa(size_t n, const double *const *x, double *const *y);",
        '#ifdef __cplusplus\nextern "C" {',
    ):
        assert decl in header
    card = json.loads((EXPORTED / "water.json").read_text())
    T, p = card["inputs"]
    assert f"x[0] T [K] in [{T['min']:g}, {T['max']:g}]" in header and "y[1] mu [Pa s]" in header
    assert f"x[1] p [Pa] in [{p['min']:g}, {p['max']:g}]" in header
    (bound,) = card["domain"]["bounds"]
    assert f" *   and T <= {bound['label']}\n" in header  # the domain bound (T <= T_sat(p) - 2 K), by its label
    assert "#define WATER_ERR_RANGE 2" in header


LINK_MAIN = r"""#include <stdio.h>
#include "water.h"
#include "colebrook.h"
int main(void) {
    double xw[WATER_N_INPUTS] = {300.0, 1e6}, yw[WATER_N_OUTPUTS], xc[COLEBROOK_N_INPUTS] = {1e5, 1e-4};
    double yc[COLEBROOK_N_OUTPUTS], d[COLEBROOK_N_OUTPUTS * COLEBROOK_N_INPUTS];
    if (water_eval(xw, yw) != WATER_OK || colebrook_eval_jac(xc, yc, d) != COLEBROOK_OK) return 1;
    printf("%.6g %.6g %.6g\n", yw[0], yc[0], d[0]);
    return 0;
}
"""


@pytest.mark.slow
def test_two_surrogates_link_into_c_and_cpp_programs(tmp_path):
    """Every symbol carries the surrogate's name: two surrogates link into one program, from C and from C++."""
    for name in ("water", "colebrook"):
        codegen.generate(EXPORTED / f"{name}.onnx", "c", tmp_path)
        subprocess.run(
            [
                "gcc",
                *TOOLCHAINS["c"].strict,
                "-O2",
                "-c",
                str(tmp_path / f"{name}.c"),
                "-o",
                str(tmp_path / f"{name}.o"),
            ],
            check=True,
        )
    (tmp_path / "main.c").write_text(LINK_MAIN)
    (tmp_path / "main.cpp").write_text(LINK_MAIN.replace("<stdio.h>", "<cstdio>"))
    outputs = []
    for compiler, src in (("gcc", "main.c"), ("g++", "main.cpp")):
        if shutil.which(compiler) is None:
            pytest.skip(f"{compiler} is not installed (apt-get install {compiler})")
        exe = tmp_path / f"main_{compiler}"
        subprocess.run(
            [
                compiler,
                "-Wall",
                "-Werror",
                "-O2",
                "-I",
                str(tmp_path),
                str(tmp_path / src),
                str(tmp_path / "water.o"),
                str(tmp_path / "colebrook.o"),
                "-lm",
                "-o",
                str(exe),
            ],
            check=True,
        )
        outputs.append(subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout)
    assert outputs[0] == outputs[1]
    rho, fd, dfd_dRe = map(float, outputs[0].split())
    assert 990 < rho < 1000 and 0.015 < fd < 0.025 and dfd_dRe < 0


@pytest.mark.slow
def test_cmake_and_pkg_config_consumers(tmp_path):
    """The CMake package (find_package + water::water) and the pkg-config file build a consumer."""
    gen = tmp_path / "generated"
    codegen.generate(EXPORTED / "water.onnx", "c", gen)
    app = tmp_path / "app"
    app.mkdir()
    (app / "main.c").write_text(
        '#include <stdio.h>\n#include "water.h"\nint main(void) { double x[2] = {300.0, 1e6}, '
        'y[4]; int s = water_eval(x, y); printf("%d %.4f\\n", s, y[0]); return s; }\n'
    )
    results = []
    if shutil.which("cmake"):
        (app / "CMakeLists.txt").write_text(
            "cmake_minimum_required(VERSION 3.13)\nproject(app C)\n"
            f"find_package(water REQUIRED CONFIG PATHS {gen.as_posix()} NO_DEFAULT_PATH)\n"
            "add_executable(app main.c)\ntarget_link_libraries(app PRIVATE water::water)\n"
        )
        subprocess.run(
            ["cmake", "-S", str(app), "-B", str(app / "build"), "-DCMAKE_BUILD_TYPE=Release"],
            check=True,
            capture_output=True,
        )
        subprocess.run(["cmake", "--build", str(app / "build")], check=True, capture_output=True)
        results.append(subprocess.run([str(app / "build" / "app")], capture_output=True, text=True).stdout)
    if shutil.which("pkg-config"):
        subprocess.run(["gcc", "-O2", "-c", str(gen / "water.c"), "-o", str(gen / "water.o")], check=True)
        subprocess.run(["ar", "rcs", str(gen / "libwater.a"), str(gen / "water.o")], check=True)
        env = {"PKG_CONFIG_PATH": str(gen), "PATH": "/usr/bin:/bin"}
        flags = subprocess.run(
            ["pkg-config", "--cflags", "--libs", "water"], env=env, capture_output=True, text=True, check=True
        ).stdout.split()
        subprocess.run(["gcc", "-O2", str(app / "main.c"), *flags, "-o", str(app / "app_pc")], check=True)
        results.append(subprocess.run([str(app / "app_pc")], capture_output=True, text=True).stdout)
    if not results:
        pytest.skip("neither cmake nor pkg-config is installed (apt-get install cmake pkg-config)")
    assert len(set(results)) == 1 and results[0].startswith("0 99")


# --- bad files and hostile text ---------------------------------------------------------------------------------------


def copy_model(name: str, folder: Path, as_name: str | None = None, card_file: bool = True) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{as_name or name}.onnx"
    shutil.copy(EXPORTED / f"{name}.onnx", target)
    if card_file:
        shutil.copy(EXPORTED / f"{as_name or name}.json", folder / f"{as_name or name}.json")
    return target


def test_flipped_weight_byte_is_refused(tmp_path):
    path = copy_model("water", tmp_path)
    blob = bytearray(path.read_bytes())
    weights = onnx.load(path).graph.initializer[0].raw_data
    blob[bytes(blob).index(weights) + 5] ^= 0x10
    path.write_bytes(bytes(blob))
    # the loader's own check (codegen reads the model through loader.read_verified): the digest inside fails first
    with pytest.raises(PipelineError, match="does not match its card|changed since export"):
        codegen.generate(path, "c", tmp_path / "gen")
    assert not (tmp_path / "gen").exists()


def test_model_copied_over_another_is_refused(tmp_path):
    """water.onnx copied over paraboloid.onnx: refused by its hash, and (without the card file) by its name."""
    path = copy_model("water", tmp_path, as_name="paraboloid")
    with pytest.raises(PipelineError, match="out of step|not 'paraboloid'"):
        codegen.generate(path, "c", tmp_path / "gen")
    (tmp_path / "paraboloid.json").unlink()
    with pytest.raises(PipelineError, match="the model inside is 'water', not 'paraboloid'"):
        codegen.generate(path, "c", tmp_path / "gen")
    assert not (tmp_path / "gen").exists()


def test_truncated_model_is_one_line_error(tmp_path, cli):
    path = copy_model("water", tmp_path / "exported", card_file=False)
    path.write_bytes(path.read_bytes()[:300])
    with pytest.raises(PipelineError, match="not a readable ONNX model|not an ONNX model, or truncated") as info:
        codegen.generate(path, "c", tmp_path / "gen")
    assert "\n" not in str(info.value)
    status, _, err = cli("codegen", "water", "--lang", "c", "--dest", str(tmp_path / "gen"))
    assert status == 2 and "Traceback" not in err and len(err.strip().splitlines()) == 1


def save_model(model: onnx.ModelProto, path: Path) -> Path:
    """Save a model made or changed here as export would: with the integrity digest where the loader has one."""
    digest_key = getattr(loader, "DIGEST_KEY", None)
    if digest_key:
        props = {p.key: p.value for p in model.metadata_props if p.key != digest_key}
        helper.set_model_props(model, props)
    blob = model.SerializeToString()
    path.write_bytes(loader.seal(blob) if hasattr(loader, "seal") else blob)
    return path


def with_card(name: str, folder: Path, edit) -> Path:
    """A copy of an exported model whose embedded card was changed by edit(card) (no card file beside it)."""
    model = onnx.load(EXPORTED / f"{name}.onnx")
    meta = {p.key: p.value for p in model.metadata_props}
    card = json.loads(meta[CARD_KEY])
    edit(card)
    helper.set_model_props(model, {**meta, CARD_KEY: json.dumps(card)})
    folder.mkdir(parents=True, exist_ok=True)
    return save_model(model, folder / f"{card['name']}.onnx")


def test_card_text_cannot_break_or_inject_code(tmp_path):
    """A `*/` in a unit and a newline in a description stay inside comments: the code compiles and the text
    does not become code (a stray declaration would not compile under -Werror, and is looked for too)."""

    def hostile(card):
        card["description"] = "nice\nint injected_description = 1; */ int injected_2 = 2; /*"
        card["inputs"][0]["unit"] = "K */ int injected_unit = 3; /* ??/"
        card["outputs"][1]["name"] = "mu\n! Fortran comment end\n  stop"

    path = with_card("water", tmp_path, hostile)
    X = data.sample(spec.load("water"), 50, "uniform", seed=1)
    for lang in codegen.LANGUAGES:
        tc = TOOLCHAINS[lang]
        if tc.compiler is None:
            continue
        exe = build("water", lang, tmp_path / lang, exported=tmp_path)
        assert (run(exe, X, DRIVERS[lang][1][0], 4)[1] == 0).all()
        text = "\n".join(p.read_text() for p in (tmp_path / lang).glob("water*") if p.suffix in (".h", tc.suffix))
        assert "injected_unit" in text  # the text is kept, as a comment
        hostile_lines = [line for line in text.splitlines() if "injected" in line or line.strip() == "stop"]
        assert hostile_lines and all(line.lstrip().startswith(tc.comment) for line in hostile_lines), lang
    assert path.is_file()


def test_name_that_is_not_an_identifier_is_refused(tmp_path):
    def rename(card):
        card["name"] = "bad-name"

    path = with_card("paraboloid", tmp_path, rename)
    with pytest.raises(PipelineError, match="cannot prefix C/Fortran identifiers"):
        codegen.generate(path, "c", tmp_path / "gen")


def test_unsupported_operator_is_named(tmp_path):
    graph = helper.make_graph(
        [helper.make_node("Cos", ["x"], ["y"], name="cosine")],
        "g",
        [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, ["batch", 1])],
        [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, ["batch", 1])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    helper.set_model_props(
        model,
        {
            CARD_KEY: '{"card_version": 1, "name": "c", "inputs": [{"name": "x", "unit": "1", "min": 0, "max": 1}], "outputs": [{"name": "y", "unit": "1"}]}'
        },
    )
    path = save_model(model, tmp_path / "c.onnx")
    with pytest.raises(PipelineError, match="operator Cos \\(node cosine\\) is not supported by codegen"):
        codegen.generate(path, "c", tmp_path)


# --- domains that are not boxes --------------------------------------------------------------------------------------

BOUND = {
    "input": "y",
    "side": "max",
    "of": "x",
    "label": "0.2 + 0.6 x^2",
    "table": {"scale": "linear", "lo": 0.0, "hi": 1.0, "values": [0.2 + 0.6 * v * v for v in np.linspace(0, 1, 9)]},
    "interpolation_error": 0.01,
}
LOG_BOUND = {
    "input": "eD",
    "side": "min",
    "of": "Re",
    "label": "1e-6 Re^0.5 / 100",
    "table": {
        "scale": "log",
        "lo": 4e3,
        "hi": 1e8,
        "values": [1e-8 * (10**v) ** 0.5 for v in np.linspace(np.log10(4e3), 8, 17)],
    },
    "interpolation_error": 1e-6,
}


def bounded(name: str, bound: dict, folder: Path) -> Path:
    def add(card):
        card["domain"] = {"bounds": [bound]}

    return with_card(name, folder, add)


@pytest.mark.parametrize("name, bound", [("paraboloid", BOUND), ("colebrook", LOG_BOUND)])
@pytest.mark.parametrize("lang", languages())
def test_domain_bounds_give_the_range_error(name, bound, lang, tmp_path):
    """A point beyond the card's tabulated bound gets NAME_ERR_RANGE, as pipeline.domain says, in every entry
    point; points inside evaluate as before."""
    bounded(name, bound, tmp_path)
    s = spec.load(name)
    X = data.sample(s, 2000, "uniform", seed=9)
    card = json.loads({p.key: p.value for p in onnx.load(tmp_path / f"{name}.onnx").metadata_props}[CARD_KEY])
    outside = domain.violations(card["domain"]["bounds"], [i.name for i in s.inputs], X).any(axis=1)
    assert 0.1 < outside.mean() < 0.9
    exe = build(name, lang, tmp_path / lang, exported=tmp_path)
    _, status, Y, _ = run(exe, X, DRIVERS[lang][1][0])
    assert (status == np.where(outside, 2, 0)).all()
    assert np.isnan(Y[outside]).all() and np.isfinite(Y[~outside]).all()
    for mode in batched(lang):
        first, _, Yb, _ = run(exe, X, mode)
        assert first == 2 and np.array_equal(np.isnan(Yb[:, 0]), outside)


@pytest.mark.slow
def test_mixed_log_and_linear_columns(cli, write_spec, tmp_path):
    """A graph with masked Log/Exp (Mul/Add with constants) generates code that matches onnxruntime too, and its
    Jacobian (through the Mul/Add nodes) matches central differences."""
    from tests.conftest import PARABOLOID

    text = PARABOLOID.replace("min = 0.0\nmax = 1.0", 'min = 1.0\nmax = 100.0\nscale = "log"', 1)
    text = text.replace('unit = "1"\n\n[sampling]', 'unit = "1"\ntransform = "log"\n\n[sampling]')
    path = write_spec(text.format(name="mixed", steps=30, rmse=1e9, max_abs=1e9))
    assert cli("train", path)[0] == 0 and cli("export", path)[0] == 0
    out = tmp_path / "exported"
    assert "Mul" in {n.op_type for n in onnx.load(out / "mixed.onnx").graph.node}
    X = data.sample(spec.load(path), 2000, "uniform", seed=1)
    ref = load(out / "mixed.onnx")(X)
    exe = build("mixed", "c", tmp_path / "gen", exported=out)
    _, status, Y, J = run(exe, X, "jac")
    assert (status == 0).all() and np.allclose(Y, ref, rtol=RTOL, atol=ATOL_FRACTION * np.abs(ref).max())
    X = np.clip(X, [1.001, 1e-3], [99.9, 0.999])
    double = build("mixed", "c", tmp_path / "double", precision="double", exported=out)
    J_fd = central_differences(lambda Z: run(double, Z, "batch")[2], X)
    assert_jacobian_close(run(exe, X, "jac")[3], J_fd, "mixed")


def test_card_numbers_that_cannot_be_literals_are_refused(tmp_path):
    def infinite(card):
        card["inputs"][0]["max"] = float("inf")

    path = with_card("paraboloid", tmp_path, infinite)
    # refused when the card is read (Card.from_dict), before codegen's own check of the literals
    with pytest.raises(PipelineError, match=r"cannot be turned into code: input 'x' has the range|range \[0.0, inf\]"):
        codegen.generate(path, "c", tmp_path / "gen")
