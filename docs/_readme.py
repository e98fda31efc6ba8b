"""The README's "What xpml guarantees" section as a page of the site, so the text lives in one place.

The section is plain Markdown: paragraphs and ``- **Title.** text`` bullets with inline code and
links. That subset converts to reStructuredText line by line; anything else (a table, a code
block) is refused with a message, so the build fails instead of showing it wrong.
"""

from __future__ import annotations

import pathlib
import re

HEADING = "## What xpml guarantees"


def section(readme: str) -> tuple[str, list[str]]:
    """The title and the lines of the README section whose heading starts with :data:`HEADING`."""
    lines = readme.splitlines()
    starts = [i for i, line in enumerate(lines) if line.startswith(HEADING)]
    if len(starts) != 1:
        raise ValueError(f"README.md must have exactly one section headed {HEADING!r}..., found {len(starts)}")
    start = starts[0] + 1
    end = next((i for i in range(start, len(lines)) if lines[i].startswith("## ")), len(lines))
    return lines[start - 1].removeprefix("## ").strip(), lines[start:end]


def _inline(text: str) -> str:
    # Inline code first: the links made next use single backticks of their own.
    text = re.sub(r"(?<!`)`([^`]+)`(?!`)", r"``\1``", text)
    text = re.sub(r"\[([^\]]+)\]\((https?://[^)]+)\)", r"`\1 <\2>`__", text)
    # A link into the checkout (RESULTS.md, #a-section) has no page in the site: its text stays.
    return re.sub(r"\[([^\]]+)\]\([^)]*\)", r"\1", text)


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
    title, lines = section(readme.read_text(encoding="utf-8"))
    text = "\n".join([title, "=" * len(title), "",
                      ".. This page is generated from README.md's section at every build; edit it there.", "",
                      *to_rst(lines), ""])
    if not page.exists() or page.read_text(encoding="utf-8") != text:
        page.write_text(text, encoding="utf-8")
