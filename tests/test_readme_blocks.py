"""Every ``python`` and ``bash`` code block of README.md and of the documentation's pages runs as written.

A block that cannot run here (it needs the network, a GPU, a cluster or CIFAR-10, or takes many
minutes) says so in the source, right before the block: ``<!-- skip: needs CIFAR-10 -->`` in
Markdown, ``.. skip: needs CIFAR-10`` (a comment) in reStructuredText. The reason is required.
Blocks run one by one, each in a fresh interpreter (or bash) in its own empty folder, with the
``xpml`` command of this environment on the PATH and matplotlib drawing off screen.
"""

from __future__ import annotations

import os
import pathlib
import re
import subprocess
import sys
import textwrap

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
# Pages generated at build time (the API reference, the gallery, the README's section) are not sources.
GENERATED = ("_build", "api", "auto_examples", "gen_modules", "_templates")
LANGUAGES = ("python", "bash")
TIMEOUT = 300  # seconds per block, on a busy 2-core machine

_SKIP_MD = re.compile(r"^<!--\s*skip:(.*?)-->\s*$")
_SKIP_RST = re.compile(r"^\.\.\s+skip:(.*)$")
_FENCE = re.compile(r"^```(\w*)\s*$")
_DIRECTIVE = re.compile(r"^\.\.\s+(?:code-block|code|sourcecode)::\s*(\w+)\s*$")


class Block:
    def __init__(self, path: pathlib.Path, line: int, language: str, code: str, skip: str | None):
        self.path, self.line, self.language, self.code, self.skip = path, line, language, code, skip

    @property
    def id(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def _reason(match, where: str) -> str:
    reason = match.group(1).strip()
    if not reason:
        raise ValueError(f"{where}: a skip marker must say why the block cannot run here")
    return reason


def markdown_blocks(path: pathlib.Path) -> list[Block]:
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks, i, skip = [], 0, None
    while i < len(lines):
        marker = _SKIP_MD.match(lines[i])
        fence = _FENCE.match(lines[i])
        if marker:
            skip = _reason(marker, f"{path}:{i + 1}")
        elif fence:
            end = next(j for j in range(i + 1, len(lines)) if lines[j].startswith("```"))
            if fence.group(1) in LANGUAGES:
                blocks.append(Block(path, i + 1, fence.group(1), "\n".join(lines[i + 1:end]) + "\n", skip))
            elif skip is not None:
                raise ValueError(f"{path}:{i + 1}: a skip marker before a block that never runs")
            skip, i = None, end
        elif lines[i].strip() and skip is not None:
            raise ValueError(f"{path}:{i + 1}: a skip marker must come right before its code block")
        i += 1
    return blocks


def rst_blocks(path: pathlib.Path) -> list[Block]:
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks, i, skip = [], 0, None
    while i < len(lines):
        marker = _SKIP_RST.match(lines[i])
        directive = _DIRECTIVE.match(lines[i])
        if marker:
            skip = _reason(marker, f"{path}:{i + 1}")
        elif directive:
            body, j = [], i + 1
            while j < len(lines) and (not lines[j].strip() or lines[j].startswith((" ", "\t"))):
                body.append(lines[j])
                j += 1
            while body and body[0].strip().startswith(":"):  # the directive's options come first
                body.pop(0)
            code = textwrap.dedent("\n".join(body)).strip("\n") + "\n"
            if directive.group(1) in LANGUAGES:
                blocks.append(Block(path, i + 1, directive.group(1), code, skip))
            elif skip is not None:
                raise ValueError(f"{path}:{i + 1}: a skip marker before a block that never runs")
            skip, i = None, j - 1
        elif lines[i].strip() and skip is not None:
            raise ValueError(f"{path}:{i + 1}: a skip marker must come right before its code block")
        i += 1
    return blocks


def all_blocks() -> list[Block]:
    blocks = markdown_blocks(ROOT / "README.md")
    for page in sorted(DOCS.rglob("*.rst")):
        if page.relative_to(DOCS).parts[0] not in GENERATED:
            blocks += rst_blocks(page)
    return blocks


BLOCKS = all_blocks()


def _environment() -> dict:
    env = dict(os.environ)
    # The xpml command and python of this environment come first, as after activating it.
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    env["MPLBACKEND"] = "agg"
    env.pop("XPML_BACKEND", None)
    return env


def test_blocks_found():
    # The README's In Python section alone has four Python blocks; finding none means the parser broke.
    assert sum(b.path.name == "README.md" and b.language == "python" for b in BLOCKS) >= 4
    assert any(b.path.suffix == ".rst" for b in BLOCKS)


def test_skip_markers_need_a_reason(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("<!-- skip: -->\n```bash\nfalse\n```\n", encoding="utf-8")
    with pytest.raises(ValueError, match="must say why"):
        markdown_blocks(page)
    page.write_text("<!-- skip: needs a GPU -->\nSome text.\n```bash\nfalse\n```\n", encoding="utf-8")
    with pytest.raises(ValueError, match="right before"):
        markdown_blocks(page)
    page.write_text("<!-- skip: needs a GPU -->\n```bash\nfalse\n```\n```python\nx = 1\n```\n", encoding="utf-8")
    assert [(b.language, b.skip) for b in markdown_blocks(page)] == [("bash", "needs a GPU"), ("python", None)]


def test_rst_blocks_are_dedented(tmp_path):
    page = tmp_path / "page.rst"
    page.write_text(".. skip: needs a cluster\n\n.. code-block:: bash\n\n   echo one\n     two\n\nText.\n\n"
                    ".. code-block:: python\n\n   x = 1\n", encoding="utf-8")
    blocks = rst_blocks(page)
    assert [(b.language, b.code, b.skip) for b in blocks] == [("bash", "echo one\n  two\n", "needs a cluster"),
                                                              ("python", "x = 1\n", None)]


def test_guarantees_page_from_the_readme():
    sys.path.insert(0, str(DOCS))
    try:
        import _readme
    finally:
        sys.path.remove(str(DOCS))
    readme = ("# x\n\n## What xpml guarantees about files\n\n- **A.** `x`, [RESULTS](RESULTS.md) and "
              "[numpy](https://numpy.org).\n\n## Next\n")
    title, lines = _readme.section(readme)
    assert title == "What xpml guarantees about files"
    assert _readme.to_rst(lines) == ["", "- **A.** ``x``, RESULTS and `numpy <https://numpy.org>`__.", ""]
    with pytest.raises(ValueError, match="only paragraphs and bullets"):
        _readme.to_rst(["| a | b |"])
    with pytest.raises(ValueError, match="exactly one section"):
        _readme.section("# x\n")
    # The real README has the section, in the subset the page understands.
    _readme.to_rst(_readme.section((ROOT / "README.md").read_text(encoding="utf-8"))[1])


@pytest.mark.slow
@pytest.mark.parametrize("block", BLOCKS, ids=[b.id for b in BLOCKS])
def test_block_runs_as_written(block, tmp_path):
    if block.skip:
        pytest.skip(f"{block.id}: {block.skip}")
    command = [sys.executable, "-c", block.code] if block.language == "python" else \
        ["bash", "-euo", "pipefail", "-c", block.code]
    result = subprocess.run(command, cwd=tmp_path, env=_environment(), capture_output=True, text=True,
                            timeout=TIMEOUT)
    assert result.returncode == 0, (f"{block.id} ({block.language}) failed with status {result.returncode}:\n"
                                    f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
