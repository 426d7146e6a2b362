"""Exported ONNX model -> FMI 2.0 FMU (co-simulation and model exchange), for Modelica tools, Simulink, FMPy.

    python -m pipeline fmu NAME --dest DIR      # writes DIR/NAME.fmu

The FMU is the generated C99 (pipeline/codegen/, so it computes what the .onnx file computes) behind a small
FMI 2.0 wrapper, generated here from the model card:

    modelDescription.xml        inputs (causality "input") and outputs ("output"), all Real, variability
                                "continuous", with the card's names and units (UnitDefinitions), the valid range as
                                min/max, and in-domain start values; both CoSimulation and ModelExchange
    sources/                    NAME.c, NAME.h (the generated network) and fmu_NAME.c (the wrapper); the FMI
                                headers come from the importing tool, as the standard says
    binaries/linux64/NAME.so    compiled here with the system C compiler ($CC, else cc) against the FMI 2.0
                                headers that FMPy ships (fmpy/c-code, 2-clause BSD, not copied into this repo)
    resources/NAME.json         the model card

The model has no states: outputs are algebraic functions of the inputs. fmi2DoStep (co-simulation) and
fmi2GetReal of an output (both interfaces) evaluate the network for the current inputs.

Out-of-domain policy: an input outside the card's range [min, max], or beyond one of the card's domain bounds
(card.bounds, e.g. T <= T_sat(p) - 2 K, pipeline/runtime/domain.py), or not finite, makes that evaluation
return fmi2Error, with one logged message (category logStatusError) naming the input, its value and the limit; the
outputs are NaN. The check runs when outputs are needed, not in fmi2SetReal, so that an importer may set the
inputs of a bounded pair in any order.
"""

from __future__ import annotations

import io
import json
import os
import platform
import shlex
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from xml.sax.saxutils import quoteattr

import numpy as np

from ..errors import PipelineError
from ..runtime import domain
from ..runtime.card import Card, Input
from ..runtime.files import atomic_write
from . import c as codegen_c, graph as codegen

FMPY_PIN = "fmpy==0.3.32"
CFLAGS = ["-std=c99", "-O2", "-fPIC", "-shared", "-fvisibility=hidden", "-Wall", "-Wextra", "-Werror"]
"""-fvisibility=hidden keeps the network's symbols private; the FMI functions are exported by FMI2_Export"""


def fmi_headers() -> Path:
    """The folder holding fmi2Functions.h: FMPy ships the FMI 2.0 headers."""
    try:
        import fmpy
    except ImportError:
        raise PipelineError(
            f"fmpy is not installed: pip install {FMPY_PIN} (it provides the FMI 2.0 headers)"
        ) from None
    folder = Path(fmpy.__file__).parent / "c-code"
    if not (folder / "fmi2Functions.h").is_file():
        raise PipelineError(f"no fmi2Functions.h in {folder}: install {FMPY_PIN}")
    return folder


def platform_dir() -> tuple[str, str]:
    """The FMI 2.0 binaries/ folder and shared-library suffix for this machine."""
    machine = platform.machine().lower()
    if sys.platform.startswith("linux") and machine in ("x86_64", "amd64"):
        return "linux64", ".so"
    if sys.platform == "darwin":
        return "darwin64", ".dylib"
    raise PipelineError(f"building an FMU binary on {sys.platform}/{machine} is not supported (linux64, darwin64)")


def start_values(card: Card) -> list[float]:
    """In-domain start values: the middle of each input's range (geometric for log-scaled inputs), where a domain
    bound narrows the range at the other inputs' start values. Raises if the point is still outside."""
    inputs, bounds, names = card.inputs, card.bounds, card.input_names

    def middle(i: Input, lo: float, hi: float) -> float:
        return float(np.sqrt(lo * hi)) if i.scale == "log" and lo > 0 else 0.5 * (lo + hi)

    start = [middle(i, i.min, i.max) for i in inputs]
    bounded = {b["input"] for b in bounds}
    for k, i in enumerate(inputs):
        if i.name not in bounded:
            continue
        lo, hi = i.min, i.max
        for b in (b for b in bounds if b["input"] == i.name):
            limit = float(domain.bound_value(b, np.array([start[names.index(b["of"])]]))[0])
            lo, hi = (lo, min(hi, limit)) if b["side"] == "max" else (max(lo, limit), hi)
        start[k] = middle(i, lo, hi)
    X = np.array([start])
    if (
        domain.violations(bounds, names, X).any()
        or (X < [i.min for i in inputs]).any()
        or (X > [i.max for i in inputs]).any()
    ):
        raise PipelineError(f"{card.name}: found no in-domain start point ({dict(zip(names, start))})")
    return start


def model_description(card: Card, identifier: str, sources: list[str], guid: str) -> str:
    """modelDescription.xml for FMI 2.0: value references 0..n_in-1 are the inputs, then the outputs."""
    inputs, outputs = card.inputs, card.outputs
    units = sorted({v.unit for v in (*inputs, *outputs) if v.unit})
    files = "".join(f"\n      <File name={quoteattr(f)}/>" for f in sources)
    source_files = f"\n    <SourceFiles>{files}\n    </SourceFiles>\n  "
    lines = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        f'<fmiModelDescription fmiVersion="2.0" modelName={quoteattr(card.name)} '
        f"guid={quoteattr(guid)} description={quoteattr(card.description)} "
        f'generationTool="surrogate pipeline (python -m pipeline fmu)" variableNamingConvention="flat" '
        f'numberOfEventIndicators="0">',
        f'  <ModelExchange modelIdentifier={quoteattr(identifier)} canNotUseMemoryManagementFunctions="false">'
        f"{source_files}</ModelExchange>",
        f'  <CoSimulation modelIdentifier={quoteattr(identifier)} canHandleVariableCommunicationStepSize="true" '
        f'canNotUseMemoryManagementFunctions="false">{source_files}</CoSimulation>',
        "  <UnitDefinitions>",
        *(f"    <Unit name={quoteattr(u)}/>" for u in units),
        "  </UnitDefinitions>",
        "  <LogCategories>",
        '    <Category name="logStatusError" description="an input outside the valid domain, and other errors"/>',
        '    <Category name="logAll" description="every call that changes the state"/>',
        "  </LogCategories>",
        '  <DefaultExperiment startTime="0" stopTime="1"/>',
        "  <ModelVariables>",
    ]
    for vr, (i, start) in enumerate(zip(inputs, start_values(card))):
        unit = f" unit={quoteattr(i.unit)}" if i.unit else ""
        lines += [
            f'    <ScalarVariable name={quoteattr(i.name)} valueReference="{vr}" causality="input" '
            f'variability="continuous" description={quoteattr(_describe_input(card, i))}>',
            f'      <Real{unit} min="{i.min!r}" max="{i.max!r}" start="{start!r}"/>',
            "    </ScalarVariable>",
        ]
    for k, o in enumerate(outputs):
        unit = f" unit={quoteattr(o.unit)}" if o.unit else ""
        lines += [
            f'    <ScalarVariable name={quoteattr(o.name)} valueReference="{len(inputs) + k}" '
            f'causality="output" variability="continuous" initial="calculated">',
            f"      <Real{unit}/>",
            "    </ScalarVariable>",
        ]
    deps = " ".join(str(k + 1) for k in range(len(inputs)))
    kinds = " ".join(["dependent"] * len(inputs))
    unknowns = [
        f'      <Unknown index="{len(inputs) + k + 1}" dependencies="{deps}" dependenciesKind="{kinds}"/>'
        for k in range(len(outputs))
    ]
    lines += [
        "  </ModelVariables>",
        "  <ModelStructure>",
        "    <Outputs>",
        *unknowns,
        "    </Outputs>",
        "    <InitialUnknowns>",
        *[u.replace(' dependenciesKind="' + kinds + '"', "") for u in unknowns],
        "    </InitialUnknowns>",
        "  </ModelStructure>",
        "</fmiModelDescription>",
        "",
    ]
    return "\n".join(lines)


def _describe_input(card: Card, i: Input) -> str:
    text = f"{i.name} [{i.unit}] valid in [{i.min:g}, {i.max:g}]"
    for b in card.bounds:
        if b["input"] == i.name:
            text += f", {'<=' if b['side'] == 'max' else '>='} {b['label']}"
    return text


def _c_string(s: str) -> str:
    """A C string literal holding `s` in UTF-8: printable ASCII as itself (\\ and " escaped), every other byte as a
    three-digit octal escape. (JSON's \\uD83D\\uDE00 for an emoji is not C: surrogates are not characters.)"""
    out = []
    for byte in str(s).encode("utf-8"):
        c = chr(byte)
        out.append("\\" + c if c in '\\"' else c if 32 <= byte < 127 and c != "?" else f"\\{byte:03o}")
    return '"' + "".join(out) + '"'  # '?' escaped too: no trigraph


def _c_doubles(values) -> str:
    return "{" + ", ".join(repr(float(v)) for v in values) + "}"


def wrapper_code(card: Card, guid: str) -> str:
    """fmu_NAME.c: the FMI 2.0 functions over NAME_eval, with the range and domain checks named per input."""
    n, N = card.name, card.name.upper()
    inputs, outputs, names, bounds = card.inputs, card.outputs, card.input_names, card.bounds
    # each bound's table and interpolation as the generated C writes them (codegen/c.py, runtime/domain.py)
    tables = "\n".join(
        codegen_c.bound_function(domain.BoundTable.of_bound(b), f"bound{k}") for k, b in enumerate(bounds)
    )
    rows = ",\n    ".join(
        f"{{{names.index(b['input'])}, {names.index(b['of'])}, {int(b['side'] == 'max')}, bound{k}, "
        f"{_c_string(b['label'])}}}"
        for k, b in enumerate(bounds)
    )
    # C has no empty arrays: a model without domain bounds gets one unused entry and N_BOUNDS 0.
    rows = rows or '{0, 0, 0, 0, ""}'
    return WRAPPER.format(
        n=n,
        N=N,
        n_in=len(inputs),
        n_out=len(outputs),
        n_bounds=len(bounds),
        tables=tables,
        rows=rows,
        names=", ".join(_c_string(i.name) for i in inputs),
        units=", ".join(_c_string(i.unit) for i in inputs),
        lo=_c_doubles(i.min for i in inputs),
        hi=_c_doubles(i.max for i in inputs),
        start=_c_doubles(start_values(card)),
        guid=_c_string(guid),
    )


def build(model_path: Path, dest: Path) -> Path:
    """Write dest/NAME.fmu from an exported model; returns its path."""
    graph = codegen.read_graph(model_path)
    card, n = graph.card, graph.name
    header, source = codegen_c.c_code(graph)
    guid = "{" + graph.sha256 + "}"  # the .onnx file's sha256: binary and description must come from one model
    wrapper = wrapper_code(card, guid)
    sources = {f"{n}.h": header, f"{n}.c": source, f"fmu_{n}.c": wrapper}
    folder, suffix = platform_dir()
    cc = shlex.split(os.environ.get("CC") or "cc") or ["cc"]  # CC="ccache gcc" is two words
    if shutil.which(cc[0]) is None:
        raise PipelineError(f"no C compiler '{cc[0]}' on PATH: the FMU needs a compiled binary (apt-get install gcc)")
    with tempfile.TemporaryDirectory() as tmp:
        for name, text in sources.items():
            Path(tmp, name).write_text(text, encoding="utf-8")
        binary = Path(tmp, n + suffix)
        cmd = [
            *cc,
            *CFLAGS,
            "-I",
            str(fmi_headers()),
            "-I",
            tmp,
            str(Path(tmp, f"fmu_{n}.c")),
            str(Path(tmp, f"{n}.c")),
            "-lm",
            "-o",
            str(binary),
        ]
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            first = (done.stderr.strip().splitlines() or ["(no message)"])[0]
            raise PipelineError(f"{n}: compiling the FMU binary failed: {first}")
        blob = io.BytesIO()
        with zipfile.ZipFile(blob, "w", zipfile.ZIP_DEFLATED) as z:
            z.writestr("modelDescription.xml", model_description(card, n, list(sources), guid))
            for name, text in sources.items():
                z.writestr(f"sources/{name}", text)
            z.write(binary, f"binaries/{folder}/{n}{suffix}")
            card_text = json.dumps({**card.to_dict(), "onnx_sha256": graph.sha256}, indent=1, sort_keys=True) + "\n"
            z.writestr(f"resources/{n}.json", card_text)
    path = Path(dest) / f"{n}.fmu"
    atomic_write(path, blob.getvalue())
    return path


def summary(card: Card) -> str:
    """'inputs T [K], p [Pa]; outputs rho [kg/m3], ...' for the CLI."""

    def fmt(vs):
        return ", ".join(f"{v.name} [{v.unit}]" for v in vs)

    return f"inputs {fmt(card.inputs)}; outputs {fmt(card.outputs)}"


WRAPPER = r"""/* FMI 2.0 wrapper (co-simulation and model exchange) around {n}_eval.
 * Generated by `python -m pipeline fmu {n}` from the model card. The model has no states: the outputs are
 * algebraic functions of the inputs, evaluated when an output is read or a step is done.
 * Out-of-domain policy: an input outside its range, beyond a domain bound, or not finite makes that evaluation
 * return fmi2Error, logs one message naming the input (category logStatusError), and sets the outputs to NaN.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include "fmi2Functions.h"
#include "{n}.h"

#define N_IN {n_in}
#define N_OUT {n_out}
#define N_BOUNDS {n_bounds}
static const char *const input_names[N_IN] = {{{names}}};
static const char *const input_units[N_IN] = {{{units}}};
static const double lo[N_IN] = {lo};
static const double hi[N_IN] = {hi};
static const double start[N_IN] = {start};

/* One input bounded by a piecewise-linear table of another (pipeline/runtime/domain.py): the card's tables,
   verbatim, each with its interpolation. */
typedef struct {{
    int input, of, side_max;
    double (*value)(double of);
    const char *label;
}} bound_t;
{tables}
static const bound_t bounds[] = {{
    {rows}
}};

typedef struct {{
    const fmi2CallbackFunctions *cb;
    char name[128];
    fmi2Boolean logging;
    double x[N_IN], y[N_OUT];
    int stale;  /* the inputs changed since the outputs were computed */
    double time;
}} instance_t;

static void log_error(instance_t *m, const char *message)
{{
    /* errors are always reported; the logger's format string is message, so pass it as an argument */
    if (m->cb && m->cb->logger)
        m->cb->logger(m->cb->componentEnvironment, m->name, fmi2Error, "logStatusError", "%s", message);
}}

static void log_info(instance_t *m, const char *message)
{{
    if (m->logging && m->cb && m->cb->logger)
        m->cb->logger(m->cb->componentEnvironment, m->name, fmi2OK, "logAll", "%s", message);
}}

/* Check the inputs against the card's domain, naming the first input that fails; then evaluate the network. */
static fmi2Status evaluate(instance_t *m)
{{
    char msg[512];
    int k, status;
    if (!m->stale) return fmi2OK;
    for (k = 0; k < N_OUT; ++k) m->y[k] = NAN;
    for (k = 0; k < N_IN; ++k) {{
        if (!isfinite(m->x[k])) {{
            snprintf(msg, sizeof msg, "input %s = %g is not finite", input_names[k], m->x[k]);
            log_error(m, msg);
            return fmi2Error;
        }}
        if (m->x[k] < lo[k] || m->x[k] > hi[k]) {{
            snprintf(msg, sizeof msg, "input %s = %.10g %s is outside its valid range [%.10g, %.10g] %s",
                     input_names[k], m->x[k], input_units[k], lo[k], hi[k], input_units[k]);
            log_error(m, msg);
            return fmi2Error;
        }}
    }}
    for (k = 0; k < N_BOUNDS; ++k) {{
        const bound_t *b = &bounds[k];
        const double limit = b->value(m->x[b->of]), v = m->x[b->input];
        if (b->side_max ? v > limit : v < limit) {{
            snprintf(msg, sizeof msg, "input %s = %.10g %s is %s %s = %.10g %s at %s = %.10g %s",
                     input_names[b->input], v, input_units[b->input], b->side_max ? "above" : "below", b->label,
                     limit, input_units[b->input], input_names[b->of], m->x[b->of], input_units[b->of]);
            log_error(m, msg);
            return fmi2Error;
        }}
    }}
    status = {n}_eval(m->x, m->y);
    if (status != {N}_OK) {{
        snprintf(msg, sizeof msg, "{n}_eval returned error %d for these inputs", status);
        log_error(m, msg);
        for (k = 0; k < N_OUT; ++k) m->y[k] = NAN;
        return fmi2Error;
    }}
    m->stale = 0;
    return fmi2OK;
}}

/* --- common functions ---------------------------------------------------------------------------------------- */

const char *fmi2GetTypesPlatform(void) {{ return fmi2TypesPlatform; }}
const char *fmi2GetVersion(void) {{ return fmi2Version; }}

fmi2Status fmi2SetDebugLogging(fmi2Component c, fmi2Boolean loggingOn, size_t nCategories,
                               const fmi2String categories[])
{{
    (void)nCategories; (void)categories;
    ((instance_t *)c)->logging = loggingOn;
    return fmi2OK;
}}

fmi2Component fmi2Instantiate(fmi2String instanceName, fmi2Type fmuType, fmi2String fmuGUID,
                              fmi2String fmuResourceLocation, const fmi2CallbackFunctions *functions,
                              fmi2Boolean visible, fmi2Boolean loggingOn)
{{
    instance_t *m;
    (void)fmuType; (void)fmuResourceLocation; (void)visible;
    if (!functions || !functions->allocateMemory || !functions->freeMemory) return NULL;
    if (!fmuGUID || strcmp(fmuGUID, {guid}) != 0) {{
        if (functions->logger)
            functions->logger(functions->componentEnvironment, instanceName, fmi2Error, "logStatusError",
                              "wrong GUID %s: this binary is model %s", fmuGUID ? fmuGUID : "(null)", {guid});
        return NULL;
    }}
    m = (instance_t *)functions->allocateMemory(1, sizeof(instance_t));
    if (!m) return NULL;
    m->cb = functions;
    snprintf(m->name, sizeof m->name, "%s", instanceName ? instanceName : "{n}");
    m->logging = loggingOn;
    memcpy(m->x, start, sizeof start);
    m->stale = 1;
    m->time = 0.0;
    return m;
}}

void fmi2FreeInstance(fmi2Component c)
{{
    instance_t *m = (instance_t *)c;
    if (m) m->cb->freeMemory(m);
}}

fmi2Status fmi2SetupExperiment(fmi2Component c, fmi2Boolean toleranceDefined, fmi2Real tolerance,
                               fmi2Real startTime, fmi2Boolean stopTimeDefined, fmi2Real stopTime)
{{
    (void)toleranceDefined; (void)tolerance; (void)stopTimeDefined; (void)stopTime;
    ((instance_t *)c)->time = startTime;
    return fmi2OK;
}}

fmi2Status fmi2EnterInitializationMode(fmi2Component c) {{ (void)c; return fmi2OK; }}

fmi2Status fmi2ExitInitializationMode(fmi2Component c)
{{
    log_info((instance_t *)c, "exit initialization mode");
    return evaluate((instance_t *)c);
}}

fmi2Status fmi2Terminate(fmi2Component c) {{ (void)c; return fmi2OK; }}

fmi2Status fmi2Reset(fmi2Component c)
{{
    instance_t *m = (instance_t *)c;
    memcpy(m->x, start, sizeof start);
    m->stale = 1;
    m->time = 0.0;
    return fmi2OK;
}}

fmi2Status fmi2GetReal(fmi2Component c, const fmi2ValueReference vr[], size_t nvr, fmi2Real value[])
{{
    instance_t *m = (instance_t *)c;
    size_t i;
    for (i = 0; i < nvr; ++i) {{
        if (vr[i] < N_IN) {{
            value[i] = m->x[vr[i]];
        }} else if (vr[i] < N_IN + N_OUT) {{
            const fmi2Status status = evaluate(m);
            value[i] = m->y[vr[i] - N_IN];
            if (status != fmi2OK) return status;
        }} else {{
            log_error(m, "fmi2GetReal: no such value reference");
            return fmi2Error;
        }}
    }}
    return fmi2OK;
}}

fmi2Status fmi2SetReal(fmi2Component c, const fmi2ValueReference vr[], size_t nvr, const fmi2Real value[])
{{
    instance_t *m = (instance_t *)c;
    size_t i;
    for (i = 0; i < nvr; ++i) {{
        if (vr[i] >= N_IN) {{
            log_error(m, "fmi2SetReal: only inputs can be set");
            return fmi2Error;
        }}
        m->x[vr[i]] = value[i];
        m->stale = 1;
    }}
    return fmi2OK;
}}

/* There are no Integer, Boolean or String variables. */
static fmi2Status none(fmi2Component c, size_t nvr, const char *what)
{{
    if (nvr == 0) return fmi2OK;
    log_error((instance_t *)c, what);
    return fmi2Error;
}}
fmi2Status fmi2GetInteger(fmi2Component c, const fmi2ValueReference vr[], size_t nvr, fmi2Integer value[])
{{ (void)vr; (void)value; return none(c, nvr, "fmi2GetInteger: the model has no Integer variables"); }}
fmi2Status fmi2GetBoolean(fmi2Component c, const fmi2ValueReference vr[], size_t nvr, fmi2Boolean value[])
{{ (void)vr; (void)value; return none(c, nvr, "fmi2GetBoolean: the model has no Boolean variables"); }}
fmi2Status fmi2GetString(fmi2Component c, const fmi2ValueReference vr[], size_t nvr, fmi2String value[])
{{ (void)vr; (void)value; return none(c, nvr, "fmi2GetString: the model has no String variables"); }}
fmi2Status fmi2SetInteger(fmi2Component c, const fmi2ValueReference vr[], size_t nvr, const fmi2Integer value[])
{{ (void)vr; (void)value; return none(c, nvr, "fmi2SetInteger: the model has no Integer variables"); }}
fmi2Status fmi2SetBoolean(fmi2Component c, const fmi2ValueReference vr[], size_t nvr, const fmi2Boolean value[])
{{ (void)vr; (void)value; return none(c, nvr, "fmi2SetBoolean: the model has no Boolean variables"); }}
fmi2Status fmi2SetString(fmi2Component c, const fmi2ValueReference vr[], size_t nvr, const fmi2String value[])
{{ (void)vr; (void)value; return none(c, nvr, "fmi2SetString: the model has no String variables"); }}

/* Not provided (canGetAndSetFMUstate and providesDirectionalDerivative are false in modelDescription.xml). */
static fmi2Status unsupported(fmi2Component c, const char *what)
{{
    log_error((instance_t *)c, what);
    return fmi2Error;
}}
fmi2Status fmi2GetFMUstate(fmi2Component c, fmi2FMUstate *s)
{{ (void)s; return unsupported(c, "fmi2GetFMUstate is not supported"); }}
fmi2Status fmi2SetFMUstate(fmi2Component c, fmi2FMUstate s)
{{ (void)s; return unsupported(c, "fmi2SetFMUstate is not supported"); }}
fmi2Status fmi2FreeFMUstate(fmi2Component c, fmi2FMUstate *s)
{{ (void)s; return unsupported(c, "fmi2FreeFMUstate is not supported"); }}
fmi2Status fmi2SerializedFMUstateSize(fmi2Component c, fmi2FMUstate s, size_t *size)
{{ (void)s; (void)size; return unsupported(c, "fmi2SerializedFMUstateSize is not supported"); }}
fmi2Status fmi2SerializeFMUstate(fmi2Component c, fmi2FMUstate s, fmi2Byte b[], size_t size)
{{ (void)s; (void)b; (void)size; return unsupported(c, "fmi2SerializeFMUstate is not supported"); }}
fmi2Status fmi2DeSerializeFMUstate(fmi2Component c, const fmi2Byte b[], size_t size, fmi2FMUstate *s)
{{ (void)b; (void)size; (void)s; return unsupported(c, "fmi2DeSerializeFMUstate is not supported"); }}
fmi2Status fmi2GetDirectionalDerivative(fmi2Component c, const fmi2ValueReference u[], size_t nu,
                                        const fmi2ValueReference z[], size_t nz, const fmi2Real du[], fmi2Real dz[])
{{
    (void)u; (void)nu; (void)z; (void)nz; (void)du; (void)dz;
    return unsupported(c, "fmi2GetDirectionalDerivative is not supported");
}}

/* --- model exchange: no continuous states, no event indicators ------------------------------------------------ */

fmi2Status fmi2EnterEventMode(fmi2Component c) {{ (void)c; return fmi2OK; }}

fmi2Status fmi2NewDiscreteStates(fmi2Component c, fmi2EventInfo *info)
{{
    (void)c;
    info->newDiscreteStatesNeeded = fmi2False;
    info->terminateSimulation = fmi2False;
    info->nominalsOfContinuousStatesChanged = fmi2False;
    info->valuesOfContinuousStatesChanged = fmi2False;
    info->nextEventTimeDefined = fmi2False;
    info->nextEventTime = 0.0;
    return fmi2OK;
}}

fmi2Status fmi2EnterContinuousTimeMode(fmi2Component c) {{ (void)c; return fmi2OK; }}

fmi2Status fmi2CompletedIntegratorStep(fmi2Component c, fmi2Boolean noSetFMUStatePriorToCurrentPoint,
                                       fmi2Boolean *enterEventMode, fmi2Boolean *terminateSimulation)
{{
    (void)c; (void)noSetFMUStatePriorToCurrentPoint;
    *enterEventMode = fmi2False;
    *terminateSimulation = fmi2False;
    return fmi2OK;
}}

fmi2Status fmi2SetTime(fmi2Component c, fmi2Real time) {{ ((instance_t *)c)->time = time; return fmi2OK; }}
fmi2Status fmi2SetContinuousStates(fmi2Component c, const fmi2Real x[], size_t nx)
{{ (void)x; return none(c, nx, "fmi2SetContinuousStates: the model has no states"); }}
fmi2Status fmi2GetDerivatives(fmi2Component c, fmi2Real derivatives[], size_t nx)
{{ (void)derivatives; return none(c, nx, "fmi2GetDerivatives: the model has no states"); }}
fmi2Status fmi2GetEventIndicators(fmi2Component c, fmi2Real eventIndicators[], size_t ni)
{{ (void)eventIndicators; return none(c, ni, "fmi2GetEventIndicators: the model has no event indicators"); }}
fmi2Status fmi2GetContinuousStates(fmi2Component c, fmi2Real x[], size_t nx)
{{ (void)x; return none(c, nx, "fmi2GetContinuousStates: the model has no states"); }}
fmi2Status fmi2GetNominalsOfContinuousStates(fmi2Component c, fmi2Real x_nominal[], size_t nx)
{{ (void)x_nominal; return none(c, nx, "fmi2GetNominalsOfContinuousStates: the model has no states"); }}

/* --- co-simulation -------------------------------------------------------------------------------------------- */

fmi2Status fmi2SetRealInputDerivatives(fmi2Component c, const fmi2ValueReference vr[], size_t nvr,
                                       const fmi2Integer order[], const fmi2Real value[])
{{
    (void)vr; (void)order; (void)value;
    return none(c, nvr, "fmi2SetRealInputDerivatives: canInterpolateInputs is false");
}}
fmi2Status fmi2GetRealOutputDerivatives(fmi2Component c, const fmi2ValueReference vr[], size_t nvr,
                                        const fmi2Integer order[], fmi2Real value[])
{{
    (void)vr; (void)order; (void)value;
    return none(c, nvr, "fmi2GetRealOutputDerivatives: maxOutputDerivativeOrder is 0");
}}

fmi2Status fmi2DoStep(fmi2Component c, fmi2Real currentCommunicationPoint, fmi2Real communicationStepSize,
                      fmi2Boolean noSetFMUStatePriorToCurrentCommunicationPoint)
{{
    instance_t *m = (instance_t *)c;
    (void)noSetFMUStatePriorToCurrentCommunicationPoint;
    m->time = currentCommunicationPoint + communicationStepSize;
    return evaluate(m);
}}

fmi2Status fmi2CancelStep(fmi2Component c) {{ return unsupported(c, "fmi2CancelStep: steps are never pending"); }}

/* fmi2DoStep never returns fmi2Pending, so there is no asynchronous status to report. */
fmi2Status fmi2GetStatus(fmi2Component c, const fmi2StatusKind s, fmi2Status *value)
{{ (void)c; (void)s; (void)value; return fmi2Discard; }}
fmi2Status fmi2GetRealStatus(fmi2Component c, const fmi2StatusKind s, fmi2Real *value)
{{
    instance_t *m = (instance_t *)c;
    if (s == fmi2LastSuccessfulTime) {{ *value = m->time; return fmi2OK; }}
    return fmi2Discard;
}}
fmi2Status fmi2GetIntegerStatus(fmi2Component c, const fmi2StatusKind s, fmi2Integer *value)
{{ (void)c; (void)s; (void)value; return fmi2Discard; }}
fmi2Status fmi2GetBooleanStatus(fmi2Component c, const fmi2StatusKind s, fmi2Boolean *value)
{{ (void)c; (void)s; (void)value; return fmi2Discard; }}
fmi2Status fmi2GetStringStatus(fmi2Component c, const fmi2StatusKind s, fmi2String *value)
{{ (void)c; (void)s; (void)value; return fmi2Discard; }}
"""
