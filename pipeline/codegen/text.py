"""Text from a model card placed into generated code: it must never end a comment or become code.

Card text (descriptions, units, labels) comes from a spec anyone may write. In C it lands inside /* ... */
comments, in Fortran after `!`: a newline, a `*/` or a control character there would end the comment and put
the rest into the source. These functions make such text inert; identifiers are refused instead, since an
escaped name would no longer be the name the solver expects.
"""

from __future__ import annotations

import re

from ..errors import PipelineError
from ..runtime.files import SYSTEM_HEADERS, shadowed_header  # noqa: F401 (both named here for codegen)

IDENTIFIER = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,39}\Z")
"""a surrogate name usable as a C and Fortran identifier prefix (Fortran: a letter first, and NAME_surrogate and
the other names built from it within 63 characters)"""


def _one_line(text: str) -> str:
    """Printable ASCII on one line: control characters and line breaks become spaces, others '?'."""
    return "".join(c if " " <= c <= "~" else (" " if c.isspace() or ord(c) < 32 else "?") for c in str(text))


def c_comment(text: str) -> str:
    """Text safe inside a C block comment: one line, no `*/` (nor `/*`, which -Wcomment reports), no trigraph."""
    text = _one_line(text)
    while "*/" in text or "/*" in text or "??" in text:
        text = text.replace("*/", "* /").replace("/*", "/ *").replace("??", "? ?")
    return text


def fortran_comment(text: str, width: int = 120) -> list[str]:
    """Text safe after a Fortran `!`: one line per `width` characters (free form allows 132)."""
    text = _one_line(text)
    return [text[i : i + width] for i in range(0, max(len(text), 1), width)]


def check_name(name: str) -> str:
    """The surrogate's name, if it can prefix C and Fortran identifiers and name the generated files; PipelineError
    otherwise."""
    if not isinstance(name, str) or not IDENTIFIER.match(name):
        raise PipelineError(
            f"surrogate name {name!r} cannot prefix C/Fortran identifiers: it must be a letter "
            f"followed by up to 39 letters, digits or underscores"
        )
    if shadowed_header(name):
        raise PipelineError(
            f"surrogate name {name!r}: the generated {name}.h would shadow the system header <{name}.h> in any build "
            f"that adds its folder with -I; export it under another name"
        )
    return name
