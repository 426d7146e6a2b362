"""How the tests compile what each registered codegen language (codegen.LANGUAGES) generates.

A test that compiles generated code loops over `languages()`, never over a hard-coded list of names: a language
added to codegen.LANGUAGES without a Toolchain here fails test_codegen.test_every_language_has_a_toolchain.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest


@dataclass(frozen=True)
class Toolchain:
    compiler: str | None
    """the compiler's path; None where it is not installed (the language's compiled tests are skipped)"""
    install: str
    """how to install the compiler, for the skip reason"""
    suffix: str
    """the generated (and driver) source files' suffix"""
    strict: tuple[str, ...]
    """the warnings every compile uses: generated code must compile clean under them"""
    comment: tuple[str, ...]
    """how the lines of a comment in the generated text begin"""
    module_dir: str | None = None
    """the flag that puts compiled modules into a folder (Fortran's -J), else the include flag"""
    libraries: tuple[str, ...] = ()

    def command(self, sources: list[Path], folder: Path, flags, exe: Path) -> list[str]:
        """The compile-and-link command line: sources (generated and driver) with `folder` holding the generated
        files (included or where modules go)."""
        where = [self.module_dir or "-I", str(folder)]
        return [self.compiler, *self.strict, *flags, *where, *map(str, sources), *self.libraries, "-o", str(exe)]


TOOLCHAINS = {
    "c": Toolchain(
        compiler=shutil.which("gcc"),
        install="apt-get install gcc",
        suffix=".c",
        strict=("-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic"),
        comment=("/*", "*"),
        libraries=("-lm",),
    ),
    "fortran": Toolchain(
        compiler=shutil.which("gfortran"),
        install="apt-get install gfortran (.ci/run installs it)",
        suffix=".f90",
        strict=("-std=f2008", "-Wall", "-Wextra", "-Werror"),
        comment=("!",),
        module_dir="-J",
    ),
}


def languages(*marks) -> list:
    """pytest parameters: every registered language, skipped where its compiler is missing."""
    from pipeline import codegen

    params = []
    for lang in codegen.LANGUAGES:
        tc = TOOLCHAINS.get(lang)
        missing = tc is None or tc.compiler is None
        reason = f"no toolchain for {lang!r} in tests/toolchains.py" if tc is None else f"needs {tc.install}"
        params.append(pytest.param(lang, marks=[*marks, pytest.mark.skipif(missing, reason=reason)], id=lang))
    return params
