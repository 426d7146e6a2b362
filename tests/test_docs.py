"""The README and the pages in docs/: links that resolve, commands the CLI accepts, a front page that stays short,
and the results block where `make readme` rewrites it."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
PAGES = [README, *sorted((ROOT / "docs").glob("*.md"))]
BEGIN, END = "<!-- results:begin -->", "<!-- results:end -->"

FENCE = re.compile(r"^\s*(```|~~~)")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
INLINE_CODE = re.compile(r"(`+)(.+?)\1", re.S)
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")


def rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


def split_fences(text: str) -> tuple[list[tuple[int, str]], list[tuple[int, str]]]:
    """(prose lines, lines inside fenced code blocks), each as (line number, text)."""
    prose, code, fenced = [], [], False
    for number, line in enumerate(text.split("\n"), 1):
        if FENCE.match(line):
            fenced = not fenced
            continue
        (code if fenced else prose).append((number, line))
    return prose, code


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: the text without markdown (inline code keeps its text, a link its label),
    lowercased, every character but letters, digits, spaces, '-' and '_' dropped, spaces turned into '-'."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)
    text = text.replace("`", "").strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(text: str) -> set[str]:
    """Every heading's anchor, outside code blocks; a repeated one gets -1, -2, ... as on GitHub."""
    seen: dict[str, int] = {}
    out = set()
    for _, line in split_fences(text)[0]:
        m = HEADING.match(line)
        if not m:
            continue
        base = slug(m.group(2))
        n = seen.get(base, 0)
        seen[base] = n + 1
        out.add(base if n == 0 else f"{base}-{n}")
    return out


def broken_links(text: str, page: Path) -> list[str]:
    """Relative links of `text`, read as the page `page`, that name a missing file or a missing heading."""
    prose = "\n".join(line for _, line in split_fences(text)[0])
    prose = INLINE_CODE.sub(lambda m: "x" * len(m.group(2)), prose)  # `[a](b)` in code is not a link
    broken = []
    for m in LINK.finditer(prose):
        target = m.group(1)
        if SCHEME.match(target):
            continue  # https:, mailto: ...: not this repository's files
        path, _, anchor = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        where = f"{rel(page)}: ({target})"
        if not file.exists():
            broken.append(f"{where}: no such file {file}")
        elif not file.is_relative_to(ROOT):
            broken.append(f"{where}: outside the repository")
        elif anchor and file.suffix == ".md":
            heads = anchors(text if file == page else file.read_text())
            if anchor not in heads:
                broken.append(f"{where}: no heading with anchor #{anchor} in {rel(file)}")
    return broken


def test_relative_links_resolve():
    """Every relative link of README.md and docs/*.md names an existing file or folder (from the page's own folder:
    links in docs/ start with ../), and an #anchor into a markdown file names one of its headings."""
    broken = [b for page in PAGES for b in broken_links(page.read_text(), page)]
    assert not broken, "\n".join(broken)


def test_link_checker_sees_broken_links(tmp_path):
    page = ROOT / "docs" / "results.md"
    text = "# T\n\n## Speed (time per sample; `make bench`)\n\n[a](../README.md) [b](README.md) [c](#speed) [d](#t)\n"
    assert slug("Speed (time per sample; `make bench`)") == "speed-time-per-sample-make-bench"
    assert [b.split(": ")[1] for b in broken_links(text, page)] == ["(README.md)", "(#speed)"]
    assert not broken_links("```\n[x](nowhere.md)\n```\n`[y](nowhere.md)`\n[z](https://example.org)\n", page)


PLACEHOLDER = re.compile(r"<[^<>\s]*>|\$|…|\.\.\.")
SHELL_OPERATORS = {"|", "||", "&", "&&", ";", "<", ">", ">>", "(", ")"}


def shown_commands() -> list[tuple[str, str]]:
    """(where, the words after `python -m pipeline`) for every such command in a fenced code block of the README
    and docs/*.md, whatever runs the interpreter (`.venv/bin/python`, `python3`, a `VAR=1` prefix).

    The rule for what is checked: a command ends at the end of its line, at a shell comment (`#`), at a backquote
    (a command quoted inside a program's output ends there) and at a shell operator (`|`, `&&`, `;`, `>` ...).
    A command holding a placeholder that is not a word the CLI could be given (`<owner>`, `$VAR`, `$(...)`, `…`,
    `...`) or that shlex cannot split (an unclosed quote) is skipped: it is a pattern, not a command. A placeholder
    that is a plain word (`NAME`, `SPEC`) is parsed: the CLI takes any word for a surrogate's name."""
    found = []
    for page in PAGES:
        for number, line in split_fences(page.read_text())[1]:
            m = re.search(r"\bpython3?\s+-m\s+pipeline\b(.*)", line)
            if not m:
                continue
            rest = m.group(1).split("`")[0]
            if PLACEHOLDER.search(rest.split("#")[0]):
                continue
            lexer = shlex.shlex(rest, posix=True, punctuation_chars=True)
            lexer.whitespace_split = True
            try:
                words = list(lexer)
            except ValueError:
                continue
            for k, word in enumerate(words):
                if word in SHELL_OPERATORS:
                    words = words[:k]
                    break
            found.append((f"{rel(page)}:{number}", shlex.join(words)))
    return found


def test_shown_commands_are_accepted_by_the_cli(capsys):
    """Every `python -m pipeline ...` command shown in a code block parses with the CLI's own argparse parser
    (pipeline.cli.parser: subcommand, options and their values); argparse refuses with SystemExit."""
    from pipeline.cli import parser

    commands = shown_commands()
    assert len(commands) >= 10, commands  # the docs show a dozen: a rule that finds none checks nothing
    refused = []
    for where, command in commands:
        try:
            parser().parse_args(shlex.split(command))
        except SystemExit:
            refused.append(f"{where}: python -m pipeline {command}: {capsys.readouterr().err.strip()}")
    assert not refused, "\n".join(refused)


def test_the_readme_is_a_front_page():
    """Read in five minutes: the rest is in docs/."""
    lines = README.read_text().count("\n")
    assert lines <= 250, f"README.md has {lines} lines; move detail to a page in docs/"


def results_page() -> Path:
    """The file whose results block the Makefile's `readme` target rewrites (`--readme FILE` or a variable)."""
    makefile = (ROOT / "Makefile").read_text()
    recipe = re.search(r"^readme:.*\n((?:\t.*\n|#.*\n)+)", makefile, re.M).group(1)
    target = re.search(r"--readme\s+(\S+)", recipe).group(1)
    variable = re.fullmatch(r"\$[({](\w+)[)}]", target)
    if variable:
        target = re.search(rf"^{variable.group(1)}\s*\??=\s*(\S+)", makefile, re.M).group(1)
    return ROOT / target


def test_the_results_block_is_where_make_readme_writes():
    page = results_page()
    assert page in PAGES, f"the Makefile's readme target writes {page}, a page the README does not reach"
    text = page.read_text()
    assert text.count(BEGIN) == 1 and text.count(END) == 1 and text.index(BEGIN) < text.index(END)
    link = re.escape(os.path.relpath(page, README.parent))
    assert re.search(rf"\]\({link}(#[^)]*)?\)", README.read_text()), "the README must link to the results"


@pytest.mark.skipif(shutil.which("make") is None, reason="no make on PATH")
def test_make_readme_keeps_the_results_page_whole(tmp_path):
    """`make readme` on a copy of the results page (from the committed bench.json and cards, nothing written in the
    checkout): both markers stay, and every link of the rewritten page still resolves from docs/."""
    page = results_page()
    copy = tmp_path / page.name
    copy.write_text(page.read_text())
    variable = re.search(r"--readme\s+\$[({](\w+)[)}]", (ROOT / "Makefile").read_text()).group(1)
    subprocess.run(
        ["make", "-s", "--no-print-directory", "-o", ".venv/.installed", "readme", f"{variable}={copy}",
         f"PY={sys.executable}"],
        cwd=ROOT, check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    text = copy.read_text()
    assert text.count(BEGIN) == 1 and text.count(END) == 1
    assert not broken_links(text, page), broken_links(text, page)


def python_example() -> str:
    blocks = re.findall(r"^```python\n(.*?)^```", README.read_text(), re.M | re.S)
    assert blocks, "the README shows no Python example"
    return blocks[0]


def test_the_readme_example_is_short():
    assert python_example().count("\n") <= 25


@pytest.mark.slow
@pytest.mark.skipif(
    not (os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")),
    reason="f.jacobian compiles the model's C: no C compiler",
)
def test_the_readme_example_runs(tmp_path):
    """The README's Python example, as a user runs it from the checkout (it trains a 100-step paraboloid)."""
    env = {**os.environ, "SURROGATE_C_CACHE": str(tmp_path / "c-cache")}
    done = subprocess.run(
        [sys.executable, "-c", python_example()], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert "step budget" in done.stdout or "gates met" in done.stdout
