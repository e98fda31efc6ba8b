"""The README's "What xpml guarantees" section as a page of the site, so the text lives in one place.

The section is plain Markdown: paragraphs and ``- **Title.** text`` bullets with inline code and
links. That subset converts to reStructuredText line by line; anything else (a table, a code
block) is refused with a message, so the build fails instead of showing it wrong.
"""

from __future__ import annotations

import pathlib
import re

HEADING = "## What xpml guarantees"
TITLE = "What xpml guarantees"


def section(readme: str) -> list[str]:
    """The lines of the README section whose heading starts with :data:`HEADING`, heading excluded."""
    lines = readme.splitlines()
    starts = [i for i, line in enumerate(lines) if line.startswith(HEADING)]
    if len(starts) != 1:
        raise ValueError(f"README.md must have exactly one section headed {HEADING!r}..., found {len(starts)}")
    start = starts[0] + 1
    end = next((i for i in range(start, len(lines)) if lines[i].startswith("## ")), len(lines))
    return lines[start:end]


def _inline(text: str) -> str:
    text = re.sub(r"\[([^\]]+)\]\(#[^)]*\)", r"\1", text)  # README-internal anchors: text only
    text = re.sub(r"\[([^\]]+)\]\(([^)]+)\)", r"`\1 <\2>`__", text)
    return re.sub(r"(?<!`)`([^`]+)`(?!`)", r"``\1``", text)


def to_rst(lines: list[str]) -> list[str]:
    out = []
    for line in lines:
        stripped = line.strip()
        if stripped.startswith(("```", "|", "#", ">")):
            raise ValueError(f"the README's guarantees section may hold only paragraphs and bullets; "
                             f"convert docs/_readme.py for this line: {line!r}")
        if stripped.startswith("### "):
            raise ValueError(f"subheadings are not converted: {line!r}")
        out.append(_inline(line))
    return out


def write_guarantees_page(readme: pathlib.Path, page: pathlib.Path) -> None:
    text = "\n".join([TITLE, "=" * len(TITLE), "",
                      ".. This page is generated from README.md's section at every build; edit it there.", "",
                      *to_rst(section(readme.read_text(encoding="utf-8"))), ""])
    if not page.exists() or page.read_text(encoding="utf-8") != text:
        page.write_text(text, encoding="utf-8")
